/* svg: inline SVG line charts for the HTML report (no script, no external resources).
 *
 * A chart has categorical x positions (e.g. connections 1 4 16 64, equally spaced) and one
 * series per line (e.g. engine). Every present point is drawn as exactly one
 * <circle class="pt"> holding a <title> (the hover text), with an error bar (the point's
 * interval [lo, hi]; the report draws the 95 % CI of the median) of <line class="err"> elements; each series with a point is one <path class="line">. The legend
 * uses <rect>, so counting circle.pt in a chart counts its points. The y axis starts at 0.
 * Appends to out; returns the number of points drawn. Not thread-safe (pure function of its
 * inputs apart from out).
 */
#ifndef CTXLAB_REPORT_SVG_H
#define CTXLAB_REPORT_SVG_H

#include "core/buf.h"

struct svg_point {
	int has;          /* 0: no point here */
	double y;         /* the point (the report: the median) */
	double lo, hi;    /* the error bar from lo to hi; none when hi <= lo */
	const char *tip;  /* hover text (escaped by svg) */
};

struct svg_chart {
	const char *id;              /* element id (escaped) */
	const char *title, *ylabel, *xlabel;
	int nx;
	const char *const *xlabels;  /* nx labels */
	int nseries;
	const char *const *names;    /* nseries names */
	const struct svg_point *pts; /* nseries * nx, row per series */
};

int svg_line_chart(struct buf *out, const struct svg_chart *c);
/* Appends s with &, <, >, ", ' escaped for HTML/SVG text and attributes. */
void svg_escape(struct buf *out, const char *s);
/* A "nice" number format for axes and tables: 4 significant digits, no exponent below 1e9. */
char *svg_fmt_num(double v, char *buf, size_t len);

#endif
