#include "profile/flamesvg.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FRAME_H 16
#define PAD_X 10
#define PAD_TOP 50 /* title, controls */
#define PAD_BOTTOM 34 /* details line */
#define FONT_PX 12
#define CHAR_PX 7.0 /* average glyph width of Verdana 12px, for label truncation */

struct node {
	char *name;
	uint64_t b;   /* inclusive count (B in a diff) */
	double a;     /* diff: inclusive count of A (scaled) */
	uint32_t first, last, next; /* children: linked list, 0 = none (node 0 is the root) */
};

struct tree {
	struct node *v;
	size_t n, cap;
};

static long node_new(struct tree *t, const char *name, size_t len)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 256;
		struct node *nv = realloc(t->v, cap * sizeof(*nv));
		if (!nv)
			return -1;
		t->v = nv;
		t->cap = cap;
	}
	char *s = strndup(name, len);
	if (!s)
		return -1;
	t->v[t->n] = (struct node){.name = s};
	return (long)t->n++;
}

static long child(struct tree *t, uint32_t parent, const char *name, size_t len)
{
	struct node *p = &t->v[parent];
	if (p->last) {
		const char *ln = t->v[p->last].name;
		if (!strncmp(ln, name, len) && !ln[len])
			return p->last;
	}
	for (uint32_t c = p->first; c; c = t->v[c].next) {
		const char *cn = t->v[c].name;
		if (!strncmp(cn, name, len) && !cn[len])
			return c;
	}
	long k = node_new(t, name, len);
	if (k < 0)
		return -1;
	p = &t->v[parent]; /* may have moved */
	if (p->last)
		t->v[p->last].next = (uint32_t)k;
	else
		p->first = (uint32_t)k;
	p->last = (uint32_t)k;
	return k;
}

static int tree_add(struct tree *t, const char *stack, uint64_t b, double a)
{
	uint32_t cur = 0;
	int depth = 0;
	t->v[0].b += b;
	t->v[0].a += a;
	const char *p = stack;
	for (;;) {
		const char *semi = strchr(p, ';');
		size_t len = semi ? (size_t)(semi - p) : strlen(p);
		if (len && depth == FLAMESVG_MAX_DEPTH) {
			/* deeper frames are cut (rendering recurses once per level): one marker
			 * frame stands for all of them */
			p = FLAMESVG_TRUNCATED;
			len = strlen(p);
			semi = NULL;
		}
		if (len) { /* empty frames (";;") are skipped, as flamegraph.pl does */
			depth++;
			long k = child(t, cur, p, len);
			if (k < 0)
				return -ENOMEM;
			t->v[k].b += b;
			t->v[k].a += a;
			cur = (uint32_t)k;
		}
		if (!semi)
			break;
		p = semi + 1;
	}
	return 0;
}

static void tree_free(struct tree *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].name);
	free(t->v);
}

static struct tree *sort_tree_ctx;
static int cmp_child(const void *x, const void *y)
{
	const struct node *v = sort_tree_ctx->v;
	return strcmp(v[*(const uint32_t *)x].name, v[*(const uint32_t *)y].name);
}

/* Sorts every node's children by name (flamegraph.pl's alphabetical order). */
static int sort_children(struct tree *t)
{
	size_t cap = 64;
	uint32_t *tmp = malloc(cap * sizeof(*tmp));
	if (!tmp)
		return -ENOMEM;
	sort_tree_ctx = t;
	for (size_t i = 0; i < t->n; i++) {
		size_t k = 0;
		for (uint32_t c = t->v[i].first; c; c = t->v[c].next) {
			if (k == cap) {
				uint32_t *nt = realloc(tmp, cap * 2 * sizeof(*nt));
				if (!nt) {
					free(tmp);
					return -ENOMEM;
				}
				tmp = nt;
				cap *= 2;
			}
			tmp[k++] = c;
		}
		if (k < 2)
			continue;
		qsort(tmp, k, sizeof(*tmp), cmp_child);
		t->v[i].first = tmp[0];
		for (size_t j = 0; j + 1 < k; j++)
			t->v[tmp[j]].next = tmp[j + 1];
		t->v[tmp[k - 1]].next = 0;
		t->v[i].last = tmp[k - 1];
	}
	free(tmp);
	return 0;
}

struct render {
	const struct tree *t;
	FILE *out;
	double scale;   /* px per count */
	double min_w;
	int height;
	int max_depth;
	int diff;
	double max_delta;
	const char *unit;
	uint64_t total;
	double kb;      /* per request: B' per count of B (ns/req); 0 = count mode */
	double full;    /* per request: the value the full width stands for (ns/req) */
	const struct flamesvg_opts *o;
};

/* Length of the well-formed UTF-8 sequence at s that XML 1.0 allows (no surrogates,
 * overlongs, U+FFFE/U+FFFF), or 0 when the bytes at s are not one. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		unsigned char lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
		if (s[1] < lo || s[1] > hi || (s[2] & 0xc0) != 0x80)
			return 0;
		if (c == 0xef && s[1] == 0xbf && (s[2] == 0xbe || s[2] == 0xbf))
			return 0; /* U+FFFE, U+FFFF: not XML characters */
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		unsigned char lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
		if (s[1] < lo || s[1] > hi || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
			return 0;
		return 4;
	}
	return 0;
}

/* Characters in s, counting each byte that is not well-formed UTF-8 as one ('?' when
 * written). */
static size_t utf8_chars(const char *s)
{
	size_t n = 0;
	while (*s) {
		size_t l = utf8_len((const unsigned char *)s);
		s += l ? l : 1;
		n++;
	}
	return n;
}

/* Writes at most max characters of s as XML text: markup characters escaped, control
 * characters and bytes that are not well-formed UTF-8 as '?', never half a sequence (a
 * frame name is any bytes; the SVG must stay well-formed). */
static void xml_escape(FILE *out, const char *s, size_t max)
{
	for (size_t n = 0; *s && n < max; n++) {
		unsigned char c = (unsigned char)*s;
		size_t l = utf8_len((const unsigned char *)s);
		switch (c) {
		case '&': fputs("&amp;", out); break;
		case '<': fputs("&lt;", out); break;
		case '>': fputs("&gt;", out); break;
		case '"': fputs("&quot;", out); break;
		case '\'': fputs("&apos;", out); break;
		default:
			if (c < 0x20 || !l)
				fputc('?', out); /* not allowed in XML 1.0, or not UTF-8 */
			else
				fwrite(s, 1, l, out);
		}
		s += l ? l : 1;
	}
}

static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* A frame's B value: its count, or CPU-ns per request in per-request mode. */
static double bval(const struct render *r, const struct node *nd)
{
	return r->kb > 0 ? (double)nd->b * r->kb : (double)nd->b;
}

static void color(const struct render *r, const struct node *nd, int depth, char *buf,
		  size_t len)
{
	if (r->diff) {
		double d = bval(r, nd) - nd->a;
		double s = r->max_delta > 0 ? fabs(d) / r->max_delta : 0;
		int v = (int)lround(255 - 200 * (s > 1 ? 1 : s));
		if (d > 0 && v < 255)
			snprintf(buf, len, "rgb(255,%d,%d)", v, v);
		else if (d < 0 && v < 255)
			snprintf(buf, len, "rgb(%d,%d,255)", v, v);
		else
			snprintf(buf, len, "rgb(250,250,250)");
		return;
	}
	if (depth == 0) {
		snprintf(buf, len, "rgb(200,200,200)");
		return;
	}
	uint32_t h = name_hash(nd->name);
	double v1 = (double)(h & 0xff) / 255.0, v2 = (double)((h >> 8) & 0xff) / 255.0;
	size_t nl = strlen(nd->name);
	if (nl > 4 && !strcmp(nd->name + nl - 4, "_[k]"))
		snprintf(buf, len, "rgb(%d,%d,%d)", 220 + (int)(30 * v1), 120 + (int)(60 * v2),
			 40 + (int)(30 * v1));
	else
		snprintf(buf, len, "rgb(%d,%d,%d)", 205 + (int)(50 * v1), (int)(200 * v2),
			 (int)(55 * v1));
}

static void frame(struct render *r, uint32_t i, double x, int depth)
{
	const struct node *nd = &r->t->v[i];
	double w = (double)nd->b * r->scale;
	if (w < r->min_w)
		return;
	FILE *o = r->out;
	double y = r->height - PAD_BOTTOM - (depth + 1) * FRAME_H;
	char fill[64];
	color(r, nd, depth, fill, sizeof fill);
	fprintf(o, "<g class=\"f\" data-x=\"%.2f\" data-w=\"%.2f\" data-d=\"%d\" data-n=\"", x, w,
		depth);
	xml_escape(o, nd->name, SIZE_MAX);
	fputs("\"><title>", o);
	xml_escape(o, nd->name, SIZE_MAX);
	const char *at = r->o && r->o->where ? r->o->where(nd->name, r->o->where_arg) : NULL;
	if (at) { /* the frame's source position, e.g. "ev.c:203" */
		fputs(" at ", o);
		xml_escape(o, at, SIZE_MAX);
	}
	double pct = r->total ? 100.0 * (double)nd->b / (double)r->total : 0;
	if (r->diff && r->kb > 0) {
		double bv = bval(r, nd);
		fprintf(o, " (A %.1f %s, B %.1f %s, ", nd->a, r->unit, bv, r->unit);
		if (nd->a > 0)
			fprintf(o, "%+.1f%%)", 100.0 * (bv - nd->a) / nd->a);
		else
			fputs("new)", o);
	} else if (r->diff) {
		double d = (double)nd->b - nd->a;
		fprintf(o, " (B %llu %s, %.2f%%; A %.0f; delta %+.0f, %+.2f%%)",
			(unsigned long long)nd->b, r->unit, pct, nd->a, d,
			r->total ? 100.0 * d / (double)r->total : 0);
	} else {
		fprintf(o, " (%llu %s, %.2f%%)", (unsigned long long)nd->b, r->unit, pct);
	}
	fprintf(o, "</title><rect x=\"%.2f\" y=\"%.0f\" width=\"%.2f\" height=\"%d\" fill=\"%s\" "
		   "rx=\"2\" ry=\"2\"/><text x=\"%.2f\" y=\"%.0f\">",
		PAD_X + x, y, w, FRAME_H - 1, fill, PAD_X + x + 3, y + FRAME_H - 4.5);
	size_t fit = w > 3 * CHAR_PX ? (size_t)((w - 6) / CHAR_PX) : 0;
	size_t nl = utf8_chars(nd->name);
	if (fit >= nl) {
		xml_escape(o, nd->name, SIZE_MAX);
	} else if (fit >= 3) {
		xml_escape(o, nd->name, fit - 2);
		fputs("..", o);
	}
	fputs("</text></g>\n", o);
	double cx = x;
	for (uint32_t c = nd->first; c; c = r->t->v[c].next) {
		frame(r, c, cx, depth + 1);
		cx += (double)r->t->v[c].b * r->scale;
	}
}

/* Deepest drawn frame and, for a diff, the largest |delta| among drawn frames. */
static void measure(struct render *r, uint32_t i, int depth)
{
	const struct node *nd = &r->t->v[i];
	if ((double)nd->b * r->scale < r->min_w)
		return;
	if (depth > r->max_depth)
		r->max_depth = depth;
	if (r->diff && depth > 0) {
		double d = fabs(bval(r, nd) - nd->a);
		if (d > r->max_delta)
			r->max_delta = d;
	}
	for (uint32_t c = nd->first; c; c = r->t->v[c].next)
		measure(r, c, depth + 1);
}

static const char script[] =
	"<script type=\"text/ecmascript\"><![CDATA[\n"
	"'use strict';\n"
	"var W, PAD = 10, CH = 7.0, frames, details, matched, unzoomBtn, searchBtn;\n"
	"function init(evt) {\n"
	"  var svg = document.documentElement;\n"
	"  W = +svg.getAttribute('width');\n"
	"  frames = document.getElementsByClassName('f');\n"
	"  details = document.getElementById('details');\n"
	"  matched = document.getElementById('matched');\n"
	"  unzoomBtn = document.getElementById('unzoom');\n"
	"  searchBtn = document.getElementById('search');\n"
	"  for (var i = 0; i < frames.length; i++) {\n"
	"    var g = frames[i];\n"
	"    g.addEventListener('click', function (e) { zoom(this); e.stopPropagation(); });\n"
	"    g.addEventListener('mouseover', function () {\n"
	"      details.textContent = this.getElementsByTagName('title')[0].textContent; });\n"
	"    g.addEventListener('mouseout', function () { details.textContent = ' '; });\n"
	"  }\n"
	"  unzoomBtn.addEventListener('click', unzoom);\n"
	"  searchBtn.addEventListener('click', searchPrompt);\n"
	"  window.addEventListener('keydown', function (e) {\n"
	"    if ((e.ctrlKey || e.metaKey) && e.keyCode === 70) { e.preventDefault(); searchPrompt(); }\n"
	"  });\n"
	"}\n"
	"function label(g, w) {\n"
	"  var t = g.getElementsByTagName('text')[0], n = g.getAttribute('data-n');\n"
	"  var fit = w > 3 * CH ? Math.floor((w - 6) / CH) : 0;\n"
	"  t.textContent = fit >= n.length ? n : (fit >= 3 ? n.substring(0, fit - 2) + '..' : '');\n"
	"}\n"
	"function place(g, x, w, show, faded) {\n"
	"  var r = g.getElementsByTagName('rect')[0], t = g.getElementsByTagName('text')[0];\n"
	"  g.style.display = show ? '' : 'none';\n"
	"  if (!show) return;\n"
	"  r.setAttribute('x', (PAD + x).toFixed(2));\n"
	"  r.setAttribute('width', w.toFixed(2));\n"
	"  t.setAttribute('x', (PAD + x + 3).toFixed(2));\n"
	"  g.style.opacity = faded ? '0.6' : '';\n"
	"  label(g, w);\n"
	"}\n"
	"function zoom(z) {\n"
	"  var x0 = +z.getAttribute('data-x'), w0 = +z.getAttribute('data-w');\n"
	"  var d0 = +z.getAttribute('data-d'), full = W - 2 * PAD, s = full / w0, eps = 0.0001;\n"
	"  for (var i = 0; i < frames.length; i++) {\n"
	"    var g = frames[i], x = +g.getAttribute('data-x'), w = +g.getAttribute('data-w');\n"
	"    var d = +g.getAttribute('data-d');\n"
	"    if (d <= d0 && x <= x0 + eps && x + w >= x0 + w0 - eps) place(g, 0, full, true, d < d0);\n"
	"    else if (d > d0 && x >= x0 - eps && x + w <= x0 + w0 + eps) place(g, (x - x0) * s, w * s, true, false);\n"
	"    else place(g, 0, 0, false, false);\n"
	"  }\n"
	"  unzoomBtn.style.opacity = '1';\n"
	"}\n"
	"function unzoom() {\n"
	"  for (var i = 0; i < frames.length; i++) {\n"
	"    var g = frames[i];\n"
	"    place(g, +g.getAttribute('data-x'), +g.getAttribute('data-w'), true, false);\n"
	"  }\n"
	"  unzoomBtn.style.opacity = '0';\n"
	"}\n"
	"function searchPrompt() {\n"
	"  var term = prompt('Search for (regular expression; empty resets):', '');\n"
	"  if (term === null) return;\n"
	"  search(term);\n"
	"}\n"
	"function search(term) {\n"
	"  var re = null, spans = [], total = 0;\n"
	"  if (term) { try { re = new RegExp(term); } catch (e) { alert('bad regular expression: ' + e); return; } }\n"
	"  for (var i = 0; i < frames.length; i++) {\n"
	"    var g = frames[i], r = g.getElementsByTagName('rect')[0];\n"
	"    if (!r.hasAttribute('data-c')) r.setAttribute('data-c', r.getAttribute('fill'));\n"
	"    var d = +g.getAttribute('data-d'), x = +g.getAttribute('data-x'), w = +g.getAttribute('data-w');\n"
	"    if (d === 0) total = w;\n"
	"    if (re && d > 0 && re.test(g.getAttribute('data-n'))) {\n"
	"      r.setAttribute('fill', 'rgb(230,0,230)'); spans.push([x, x + w]);\n"
	"    } else r.setAttribute('fill', r.getAttribute('data-c'));\n"
	"  }\n"
	"  if (!re) { matched.textContent = ' '; searchBtn.textContent = 'Search'; return; }\n"
	"  spans.sort(function (a, b) { return a[0] - b[0] || b[1] - a[1]; });\n"
	"  var sum = 0, end = -1;\n"
	"  for (var j = 0; j < spans.length; j++) {\n"
	"    var a = spans[j][0], b = spans[j][1];\n"
	"    if (a >= end) { sum += b - a; end = b; } else if (b > end) { sum += b - end; end = b; }\n"
	"  }\n"
	"  matched.textContent = 'Matched: ' + (total ? (100 * sum / total).toFixed(1) : '0') + '%';\n"
	"  searchBtn.textContent = 'Search: ' + term;\n"
	"}\n"
	"]]></script>\n";

static int render(const struct tree *t, int diff, const struct flamesvg_opts *o, FILE *out)
{
	struct render r = {.t = t, .out = out, .diff = diff, .o = o};
	if (diff && o && o->ns_per_count_a > 0 && o->ns_per_count_b > 0) {
		r.kb = o->ns_per_count_b;
		double tb = (double)t->v[0].b * r.kb;
		r.full = tb > t->v[0].a ? tb : t->v[0].a;
	}
	int width = o && o->width_px > 0 ? o->width_px : 1200;
	r.min_w = o && o->min_width_px > 0 ? o->min_width_px : 0.1;
	r.unit = o && o->unit ? o->unit : r.kb > 0 ? "ns/req" : "samples";
	r.total = t->v[0].b;
	if (!r.total)
		return -ENODATA;
	r.scale = (double)(width - 2 * PAD_X) / (double)r.total;
	if (r.kb > 0) /* px per count of B: the full width is the larger total per request */
		r.scale = (double)(width - 2 * PAD_X) * r.kb / r.full;
	measure(&r, 0, 0);
	r.height = PAD_TOP + PAD_BOTTOM + (r.max_depth + 1) * FRAME_H;
	const char *title = o && o->title ? o->title
					  : (diff ? "Differential Flame Graph" : "Flame Graph");
	fprintf(out, "<?xml version=\"1.0\" standalone=\"no\"?>\n"
		     "<svg version=\"1.1\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
		     "onload=\"init(evt)\" xmlns=\"http://www.w3.org/2000/svg\">\n"
		     "<!-- generated by ctxlab flame -->\n",
		width, r.height, width, r.height);
	fprintf(out, "<style type=\"text/css\">\n"
		     "text { font-family: Verdana, sans-serif; font-size: %dpx; fill: rgb(0,0,0); }\n"
		     ".f text { pointer-events: none; }\n"
		     ".f:hover rect { stroke: rgb(0,0,0); stroke-width: 0.5; cursor: pointer; }\n"
		     "#title { font-size: 17px; }\n"
		     "#unzoom, #search { cursor: pointer; }\n"
		     "</style>\n",
		FONT_PX);
	fputs(script, out);
	fprintf(out, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"rgb(248,248,240)\"/>\n",
		width, r.height);
	fprintf(out, "<text id=\"title\" x=\"%d\" y=\"24\" text-anchor=\"middle\">", width / 2);
	xml_escape(out, title, SIZE_MAX);
	fputs("</text>\n", out);
	if (o && o->subtitle) {
		fprintf(out, "<text id=\"subtitle\" x=\"%d\" y=\"40\" text-anchor=\"middle\" "
			     "fill=\"rgb(120,120,120)\">", width / 2);
		xml_escape(out, o->subtitle, SIZE_MAX);
		fputs("</text>\n", out);
	}
	fprintf(out, "<text id=\"unzoom\" x=\"%d\" y=\"24\" style=\"opacity:0\">Reset Zoom</text>\n",
		PAD_X);
	fprintf(out, "<text id=\"search\" x=\"%d\" y=\"24\" text-anchor=\"end\">Search</text>\n",
		width - PAD_X);
	fprintf(out, "<text id=\"details\" x=\"%d\" y=\"%d\"> </text>\n", PAD_X,
		r.height - PAD_BOTTOM / 2 + 4);
	fprintf(out, "<text id=\"matched\" x=\"%d\" y=\"%d\" text-anchor=\"end\"> </text>\n",
		width - PAD_X, r.height - PAD_BOTTOM / 2 + 4);
	fputs("<g id=\"frames\">\n", out);
	frame(&r, 0, 0, 0);
	fputs("</g>\n</svg>\n", out);
	return ferror(out) ? -EIO : 0;
}

static int build(struct tree *t)
{
	t->n = t->cap = 0;
	t->v = NULL;
	return node_new(t, "all", 3) < 0 ? -ENOMEM : 0;
}

int flamesvg_write(const struct folded *f, const struct flamesvg_opts *o, FILE *out)
{
	struct tree t;
	int r = build(&t);
	for (size_t i = 0; !r && i < f->n; i++)
		if (f->e[i].count)
			r = tree_add(&t, f->e[i].stack, f->e[i].count, 0);
	if (!r)
		r = sort_children(&t);
	if (!r)
		r = render(&t, 0, o, out);
	tree_free(&t);
	return r;
}

int flamesvg_write_diff(const struct folded *a, const struct folded *b,
			const struct flamesvg_opts *o, FILE *out)
{
	struct tree t;
	int r = build(&t);
	double scale = 1.0;
	if (o && o->ns_per_count_a > 0 && o->ns_per_count_b > 0)
		scale = o->ns_per_count_a; /* per request: A' in ns/req */
	else if (o && o->normalize && a->total)
		scale = (double)b->total / (double)a->total;
	for (size_t i = 0; !r && i < b->n; i++)
		if (b->e[i].count)
			r = tree_add(&t, b->e[i].stack, b->e[i].count, 0);
	for (size_t i = 0; !r && i < a->n; i++)
		if (a->e[i].count)
			r = tree_add(&t, a->e[i].stack, 0, (double)a->e[i].count * scale);
	if (!r)
		r = sort_children(&t);
	if (!r)
		r = render(&t, 1, o, out);
	tree_free(&t);
	return r;
}
