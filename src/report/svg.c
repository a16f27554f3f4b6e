#include "report/svg.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define W 640
#define H 330
#define ML 70  /* margins: left, right, top, bottom */
#define MR 130
#define MT 30
#define MB 48

static const char *palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
				"#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

void svg_escape(struct buf *out, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&': buf_append(out, "&amp;", 5); break;
		case '<': buf_append(out, "&lt;", 4); break;
		case '>': buf_append(out, "&gt;", 4); break;
		case '"': buf_append(out, "&quot;", 6); break;
		case '\'': buf_append(out, "&#39;", 5); break;
		default: buf_append(out, s, 1);
		}
	}
}

char *svg_fmt_num(double v, char *buf, size_t len)
{
	if (!isfinite(v))
		snprintf(buf, len, "n/a");
	else if (v != 0 && fabs(v) < 1e9 && fabs(v) >= 1e4)
		snprintf(buf, len, "%.0f", v);
	else
		snprintf(buf, len, "%.4g", v);
	return buf;
}

/* A round step giving about `ticks` intervals up to max. */
static double nice_step(double max, int ticks)
{
	double raw = max / ticks;
	double mag = pow(10, floor(log10(raw)));
	double f = raw / mag;
	double nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
	return nf * mag;
}

int svg_line_chart(struct buf *out, const struct svg_chart *c)
{
	double ymax = 0;
	int npts = 0;
	for (int s = 0; s < c->nseries; s++)
		for (int x = 0; x < c->nx; x++) {
			const struct svg_point *p = &c->pts[s * c->nx + x];
			if (!p->has)
				continue;
			double top = p->hi > p->lo && p->hi > p->y ? p->hi : p->y;
			if (top > ymax)
				ymax = top;
		}
	if (!(ymax > 0))
		ymax = 1;
	double step = nice_step(ymax, 5);
	double ytop = ceil(ymax / step) * step;
	double pw = W - ML - MR, ph = H - MT - MB;
#define XPOS(i) (ML + (c->nx > 1 ? pw * (i) / (c->nx - 1) : pw / 2))
#define YPOS(v) (MT + ph - ph * ((v) < 0 ? 0 : (v)) / ytop)
	char num[64];

	buf_appendf(out, "<svg class=\"chart\" id=\"");
	svg_escape(out, c->id);
	buf_appendf(out, "\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" width=\"%d\" "
			 "height=\"%d\" role=\"img\">\n<text class=\"ct\" x=\"%d\" y=\"18\">",
		    W, H, W, H, ML);
	svg_escape(out, c->title);
	buf_appendf(out, "</text>\n");
	/* axes and grid */
	for (double v = 0; v <= ytop * 1.0001; v += step) {
		buf_appendf(out, "<line class=\"grid\" x1=\"%d\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>"
				 "<text class=\"yt\" x=\"%d\" y=\"%.1f\">%s</text>\n",
			    ML, ML + pw, YPOS(v), YPOS(v), ML - 6, YPOS(v) + 4,
			    svg_fmt_num(v, num, sizeof num));
	}
	buf_appendf(out, "<line class=\"axis\" x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%.1f\"/>\n", ML, ML,
		    MT, MT + ph);
	buf_appendf(out, "<line class=\"axis\" x1=\"%d\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>\n", ML,
		    ML + pw, MT + ph, MT + ph);
	for (int x = 0; x < c->nx; x++) {
		buf_appendf(out, "<text class=\"xt\" x=\"%.1f\" y=\"%.1f\">", XPOS(x), MT + ph + 16);
		svg_escape(out, c->xlabels[x]);
		buf_appendf(out, "</text>\n");
	}
	buf_appendf(out, "<text class=\"xl\" x=\"%.1f\" y=\"%d\">", ML + pw / 2, H - 8);
	svg_escape(out, c->xlabel);
	buf_appendf(out, "</text>\n<text class=\"yl\" transform=\"translate(14 %.1f) rotate(-90)\">",
		    MT + ph / 2);
	svg_escape(out, c->ylabel);
	buf_appendf(out, "</text>\n");

	/* series */
	int legend = 0;
	for (int s = 0; s < c->nseries; s++) {
		const char *col = palette[s % (sizeof palette / sizeof palette[0])];
		int any = 0;
		for (int x = 0; x < c->nx; x++)
			any |= c->pts[s * c->nx + x].has;
		if (!any)
			continue;
		buf_appendf(out, "<g class=\"series\" data-series=\"");
		svg_escape(out, c->names[s]);
		buf_appendf(out, "\">\n<path class=\"line\" stroke=\"%s\" d=\"", col);
		int first = 1;
		for (int x = 0; x < c->nx; x++) {
			const struct svg_point *p = &c->pts[s * c->nx + x];
			if (!p->has)
				continue;
			buf_appendf(out, "%s%.1f %.1f", first ? "M" : " L", XPOS(x), YPOS(p->y));
			first = 0;
		}
		buf_appendf(out, "\"/>\n");
		for (int x = 0; x < c->nx; x++) {
			const struct svg_point *p = &c->pts[s * c->nx + x];
			if (!p->has)
				continue;
			if (p->hi > p->lo) {
				double x0 = XPOS(x), lo = YPOS(p->lo), hi = YPOS(p->hi);
				buf_appendf(out, "<line class=\"err\" stroke=\"%s\" x1=\"%.1f\" x2=\"%.1f\" "
						 "y1=\"%.1f\" y2=\"%.1f\"/><line class=\"err\" stroke=\"%s\" "
						 "x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/><line "
						 "class=\"err\" stroke=\"%s\" x1=\"%.1f\" x2=\"%.1f\" "
						 "y1=\"%.1f\" y2=\"%.1f\"/>\n",
					    col, x0, x0, lo, hi, col, x0 - 4, x0 + 4, lo, lo, col, x0 - 4,
					    x0 + 4, hi, hi);
			}
			buf_appendf(out, "<circle class=\"pt\" fill=\"%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"4\">"
					 "<title>",
				    col, XPOS(x), YPOS(p->y));
			svg_escape(out, p->tip);
			buf_appendf(out, "</title></circle>\n");
			npts++;
		}
		buf_appendf(out, "</g>\n");
		double ly = MT + 10 + 18 * legend++;
		buf_appendf(out, "<rect x=\"%d\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>"
				 "<text class=\"lg\" x=\"%d\" y=\"%.1f\">",
			    W - MR + 14, ly - 10, col, W - MR + 32, ly);
		svg_escape(out, c->names[s]);
		buf_appendf(out, "</text>\n");
	}
	buf_appendf(out, "</svg>\n");
#undef XPOS
#undef YPOS
	return npts;
}
