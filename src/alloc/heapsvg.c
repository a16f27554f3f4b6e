/* The massif-like heap chart of `profile --alloc` (alloc_heap_svg in alloc/alloc.h). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc/alloc.h"

#define W 900
#define H 360
#define ML 80
#define MR 30
#define MT 34
#define MB 46

static void esc(FILE *out, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		switch (c) {
		case '&': fputs("&amp;", out); break;
		case '<': fputs("&lt;", out); break;
		case '>': fputs("&gt;", out); break;
		case '"': fputs("&quot;", out); break;
		case '\'': fputs("&#39;", out); break;
		default: fputc(c < 0x20 || c == 0x7f ? '?' : c, out);
		}
	}
}

static double nice_step(double max, int ticks)
{
	double raw = max / ticks, mag = pow(10, floor(log10(raw))), f = raw / mag;
	return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * mag;
}

static const char *human(double b, char *buf, size_t len)
{
	const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int i = 0;
	while (fabs(b) >= 1024 && i < 4) {
		b /= 1024;
		i++;
	}
	snprintf(buf, len, i ? "%.2f %s" : "%.0f %s", b, u[i]);
	return buf;
}

static int cmp_bytes_desc(const void *a, const void *b)
{
	const struct folded_entry *x = *(const struct folded_entry *const *)a;
	const struct folded_entry *y = *(const struct folded_entry *const *)b;
	return x->count < y->count ? 1 : x->count > y->count ? -1 : strcmp(x->stack, y->stack);
}

int alloc_heap_svg(const struct alloc_result *r, const char *title, int top, FILE *out)
{
	const struct folded_entry **rows = NULL;
	size_t nrows = r->peak.n;
	if (nrows) {
		rows = malloc(nrows * sizeof(*rows));
		if (!rows)
			return -ENOMEM;
		for (size_t i = 0; i < nrows; i++)
			rows[i] = &r->peak.e[i];
		qsort(rows, nrows, sizeof(*rows), cmp_bytes_desc);
	}
	int shown = (int)(nrows < (size_t)top ? nrows : (size_t)top);
	int height = H + 22 + 16 * shown;
	double ymax = r->peak_bytes > 0 ? r->peak_bytes : 1;
	/* round steps in the unit the labels use (KiB, MiB...), so ticks read 1, 2, 2.5... */
	double unit = 1;
	while (ymax / unit >= 1024 && unit < 1099511627776.0)
		unit *= 1024;
	double step = nice_step(ymax / unit, 5) * unit, ytop = ceil(ymax / step) * step;
	double tmax = r->duration_ns > 0 ? (double)r->duration_ns * 1.02 : 1;
	double tstep = nice_step(tmax, 6);
	double pw = W - ML - MR, ph = H - MT - MB;
#define XPOS(t) (ML + pw * (double)(t) / tmax)
#define YPOS(v) (MT + ph - ph * ((v) < 0 ? 0 : (v)) / ytop)
	char a[64], b[64];
	fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg class=\"chart\" id=\"heap-time\" "
		     "xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" width=\"%d\" "
		     "height=\"%d\" role=\"img\">\n<style>svg{font-family:sans-serif;background:#fff}"
		     ".grid{stroke:#eee}.axis{stroke:#444}.line{fill:none;stroke-width:2}"
		     "text{font-size:11px;fill:#333}.ct{font-size:13px;font-weight:bold}"
		     ".yt{text-anchor:end}.xt{text-anchor:middle}.xl{text-anchor:middle}"
		     ".yl{text-anchor:middle}.pk{fill:#d62728}.st{font-family:monospace}</style>\n",
		W, height, W, height);
	fprintf(out, "<text class=\"ct\" x=\"%d\" y=\"18\">", ML);
	esc(out, title ? title : "Heap in use over time");
	fprintf(out, "</text>\n");
	for (double v = 0; v <= ytop * 1.0001; v += step)
		fprintf(out, "<line class=\"grid\" x1=\"%d\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>"
			     "<text class=\"yt\" x=\"%d\" y=\"%.1f\">%s</text>\n",
			ML, ML + pw, YPOS(v), YPOS(v), ML - 6, YPOS(v) + 4, human(v, a, sizeof a));
	for (double t = 0; t <= tmax * 1.0001; t += tstep)
		fprintf(out, "<text class=\"xt\" x=\"%.1f\" y=\"%.1f\">%.4g</text>\n", XPOS(t),
			MT + ph + 16, t / 1e9);
	fprintf(out, "<line class=\"axis\" x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%.1f\"/>\n", ML, ML, MT,
		MT + ph);
	fprintf(out, "<line class=\"axis\" x1=\"%d\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>\n", ML,
		ML + pw, MT + ph, MT + ph);
	fprintf(out, "<text class=\"xl\" x=\"%.1f\" y=\"%d\">time since the first allocation (s)"
		     "</text>\n<text class=\"yl\" transform=\"translate(14 %.1f) rotate(-90)\">heap "
		     "in use (bytes requested%s)</text>\n",
		ML + pw / 2, H - 8, MT + ph / 2, r->sample_mean ? ", estimated" : "");
	/* the curve: a step line (the heap stays at a value until the next event) */
	fprintf(out, "<path class=\"line\" stroke=\"#1f77b4\" d=\"M%.1f %.1f", XPOS(0), YPOS(0));
	double prev = 0;
	for (size_t i = 0; i < r->ncurve; i++) {
		fprintf(out, " L%.1f %.1f L%.1f %.1f", XPOS(r->curve[i].t_ns), YPOS(prev),
			XPOS(r->curve[i].t_ns), YPOS(r->curve[i].inuse));
		prev = r->curve[i].inuse;
	}
	fprintf(out, " L%.1f %.1f\"/>\n", XPOS(tmax), YPOS(prev));
	if (r->peak_bytes > 0) {
		fprintf(out, "<circle class=\"pk\" id=\"peak\" cx=\"%.1f\" cy=\"%.1f\" r=\"5\"><title>"
			     "peak: %s in use at %.6fs</title></circle>\n<text class=\"pk\" x=\"%.1f\" "
			     "y=\"%.1f\">peak %s at %.4gs</text>\n",
			XPOS(r->peak_t_ns), YPOS(r->peak_bytes), human(r->peak_bytes, a, sizeof a),
			(double)r->peak_t_ns / 1e9,
			XPOS(r->peak_t_ns) + (XPOS(r->peak_t_ns) > W - 260 ? -200 : 8),
			YPOS(r->peak_bytes) - 8, human(r->peak_bytes, b, sizeof b),
			(double)r->peak_t_ns / 1e9);
	}
	fprintf(out, "<text class=\"ct\" x=\"%d\" y=\"%d\">At the peak: top %d of %zu stacks "
		     "(bytes, share of the peak; leaf first)</text>\n",
		ML - 70, H + 14, shown, nrows);
	for (int i = 0; i < shown; i++) {
		const char *s = rows[i]->stack, *semi = strchr(s, ';');
		/* leaf first, up to 4 callers: the way massif prints a snapshot */
		char line[1024] = "";
		size_t ll = 0;
		const char *end = s + strlen(s);
		int nf = 0;
		while (end > s && nf < 5 && ll < sizeof line - 8) {
			const char *p = end;
			while (p > s && p[-1] != ';')
				p--;
			if (p == s && semi) /* the root (comm) */
				break;
			ll += (size_t)snprintf(line + ll, sizeof line - ll, "%s%.*s", nf ? " < " : "",
					       (int)(end - p), p);
			nf++;
			end = p > s ? p - 1 : s;
		}
		fprintf(out, "<text class=\"st\" xml:space=\"preserve\" x=\"%d\" y=\"%d\">%10s %5.1f%%  ",
			ML - 70, H + 32 + 16 * i,
			human((double)rows[i]->count, a, sizeof a),
			100.0 * (double)rows[i]->count / (r->peak_bytes > 0 ? r->peak_bytes : 1));
		esc(out, line);
		fprintf(out, "</text>\n");
	}
	fprintf(out, "</svg>\n");
	free(rows);
#undef XPOS
#undef YPOS
	return ferror(out) ? -EIO : 0;
}
