#include "report/timeline.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report/svg.h"

/* "timeline/NAME.json" with NAME of safe characters, else NULL */
static const char *safe_rel(const json_t *rec)
{
	const char *p = json_string_value(json_object_get(rec, "timeline"));
	if (!p || strncmp(p, "timeline/", 9) || strstr(p, ".."))
		return NULL;
	size_t n = strlen(p);
	if (n < 15 || n > 250 || strcmp(p + n - 5, ".json"))
		return NULL;
	for (const char *c = p + 9; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || strchr("._-", *c)))
			return NULL;
	return p;
}

static json_t *load_rel(const struct trials *t, const char *rel)
{
	if (!t->dir)
		return NULL;
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", t->dir, rel);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	json_error_t e;
	json_t *j = json_loadfd(fd, 0, &e);
	close(fd);
	if (j && !json_is_array(json_object_get(j, "rows"))) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static double num(const json_t *o, const char *k, int *has)
{
	const json_t *v = json_object_get(o, k);
	*has = json_is_number(v);
	return *has ? json_number_value(v) : 0;
}

/* One chart of series keys[0..ns) over the rows. */
static void chart(struct buf *out, const json_t *rows, const char *id, const char *title,
		  const char *ylabel, int ns, const char *const *keys, const char *const *names,
		  double scale)
{
	size_t nx = json_array_size(rows);
	if (!nx)
		return;
	char **xl = calloc(nx, sizeof *xl);
	struct svg_point *pts = calloc(nx * (size_t)ns, sizeof *pts);
	char **tips = calloc(nx * (size_t)ns, sizeof *tips);
	if (!xl || !pts || !tips)
		goto out;
	for (size_t x = 0; x < nx; x++) {
		const json_t *r = json_array_get(rows, x);
		int h;
		double ts = num(r, "t_s", &h);
		char b[32];
		snprintf(b, sizeof b, "%.1f", ts);
		xl[x] = strdup(b);
		for (int s = 0; s < ns; s++) {
			double v = num(r, keys[s], &h);
			if (!h)
				continue;
			char tip[160], a[64];
			snprintf(tip, sizeof tip, "t=%.2f s: %s %s %s", ts, names[s],
				 svg_fmt_num(v * scale, a, sizeof a), ylabel);
			tips[s * nx + x] = strdup(tip);
			pts[s * nx + x] = (struct svg_point){1, v * scale, 0, 0, tips[s * nx + x]};
		}
	}
	struct svg_chart ch = {id, title, ylabel, "time in the window (s)", (int)nx,
			       (const char *const *)xl, ns, names, pts};
	buf_appendf(out, "<figure data-timeline=\"");
	svg_escape(out, id);
	buf_appendf(out, "\">\n");
	svg_line_chart(out, &ch);
	buf_appendf(out, "</figure>\n");
out:
	for (size_t i = 0; xl && i < nx; i++)
		free(xl[i]);
	for (size_t i = 0; tips && i < nx * (size_t)ns; i++)
		free(tips[i]);
	free(xl);
	free(pts);
	free(tips);
}

int timeline_html(const struct trials *t, struct buf *out)
{
	int n = 0;
	for (int r = 0; r < t->nrec; r++) {
		const char *rel = safe_rel(t->rec[r].json);
		json_t *j = rel ? load_rel(t, rel) : NULL;
		if (!j)
			continue;
		if (!n++)
			buf_appendf(out, "<h2>Timeline</h2>\n<p>Per interval of the measured window, "
					 "on one time axis (seconds from the window's start): the "
					 "client's latency percentiles (exact: one HDR histogram per "
					 "interval, their merge is the window's), the server tree's CPU "
					 "and context switches (the monitor's samples).</p>\n");
		const json_t *rows = json_object_get(j, "rows");
		const char *cell = json_string_value(json_object_get(j, "cell"));
		buf_appendf(out, "<h3>");
		svg_escape(out, cell ? cell : rel);
		buf_appendf(out, "</h3>\n<p><a href=\"");
		svg_escape(out, rel);
		buf_appendf(out, "\">");
		svg_escape(out, rel);
		buf_appendf(out, "</a> (and .csv)</p>\n<div class=\"charts\">\n");
		char id[64];
		static const char *const lk[] = {"p50_us", "p90_us", "p99_us"};
		static const char *const ln[] = {"p50", "p90", "p99"};
		snprintf(id, sizeof id, "timeline-%d-latency", n);
		chart(out, rows, id, "client latency per interval", "us", 3, lk, ln, 1);
		static const char *const ck[] = {"server_cpu_cores"};
		static const char *const cn[] = {"server CPU"};
		snprintf(id, sizeof id, "timeline-%d-cpu", n);
		chart(out, rows, id, "server CPU per interval", "cores", 1, ck, cn, 1);
		static const char *const sk[] = {"ctxsw_vol_per_s", "ctxsw_invol_per_s"};
		static const char *const sn[] = {"voluntary", "involuntary"};
		snprintf(id, sizeof id, "timeline-%d-ctxsw", n);
		chart(out, rows, id, "server context switches per interval", "/s", 2, sk, sn, 1);
		buf_appendf(out, "</div>\n");
		json_decref(j);
	}
	return n;
}

int timeline_md(const struct trials *t, struct buf *out)
{
	int n = 0;
	for (int r = 0; r < t->nrec; r++) {
		const char *rel = safe_rel(t->rec[r].json);
		json_t *j = rel ? load_rel(t, rel) : NULL;
		if (!j)
			continue;
		if (!n++)
			buf_appendf(out, "\n## Timeline\n\nPer-interval latency (exact HDR percentiles), "
					 "server CPU and context switches of the chosen cells, charted "
					 "in report.html:\n\n");
		const json_t *rows = json_object_get(j, "rows");
		double worst = 0, wt = 0;
		for (size_t k = 0; k < json_array_size(rows); k++) {
			int h;
			double v = num(json_array_get(rows, k), "p99_us", &h);
			if (v > worst)
				worst = v, wt = num(json_array_get(rows, k), "t_s", &h);
		}
		buf_appendf(out, "- %s: %s (.csv beside it), %zu intervals of %.3g s; worst p99 "
				 "%.1f us at t=%.1f s\n", json_string_value(json_object_get(j, "cell")),
			    rel, json_array_size(rows),
			    json_number_value(json_object_get(j, "interval_s")), worst, wt);
		json_decref(j);
	}
	return n;
}
