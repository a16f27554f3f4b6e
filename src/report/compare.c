#include "report/compare.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "report/svg.h"

/* One side of a comparison: the statistics of a cell, or of every ok trial pooled. */
struct side {
	const char *label;
	const char *cell;
	struct trials_stat st[RECORD_NMETRICS];
	double peak_cores; /* max over trials of the peak (or of the average when no peak) */
	int has_peak;
};

/* 0, or -ENOMEM */
static int side_from_records(struct side *s, const struct trials *t, const char *cell_key)
{
	double *vals = malloc((t->nrec + 1) * sizeof(double));
	if (!vals)
		return -ENOMEM;
	s->has_peak = 0;
	for (int m = 0; m < RECORD_NMETRICS; m++) {
		int n = 0;
		for (int r = 0; r < t->nrec; r++) {
			const struct record *rec = &t->rec[r];
			const char *cell = rec->cell;
			if (!rec->ok)
				continue;
			if (cell_key && (!cell || strcmp(cell, cell_key)))
				continue;
			double v;
			if (record_metric(rec, m, &v))
				vals[n++] = v;
		}
		trials_stat_compute(&s->st[m], vals, n);
	}
	free(vals);
	if (s->st[RECORD_M_CPU_PEAK_CORES].n) {
		s->peak_cores = s->st[RECORD_M_CPU_PEAK_CORES].max;
		s->has_peak = 1;
	} else if (s->st[RECORD_M_CPU_CORES].n) {
		s->peak_cores = s->st[RECORD_M_CPU_CORES].max;
		s->has_peak = 1;
	}
	return 0;
}

static void change(struct buf *out, double a, double b)
{
	if (a == 0 && b == 0)
		buf_appendf(out, "0.0%%");
	else if (a == 0)
		buf_appendf(out, "n/a (A is 0)");
	else
		buf_appendf(out, "%+.1f%%", (b - a) / fabs(a) * 100);
}

static void line(struct buf *out, const char *name, const struct trials_stat *st, const char *unit)
{
	char m[64], sd[64];
	if (!st->n) {
		buf_appendf(out, "  %-3s n/a\n", name);
		return;
	}
	buf_appendf(out, "  %-3s %s %s (± %s, CV %.1f%%, n=%d)\n", name, svg_fmt_num(st->mean, m, sizeof m),
		    unit, svg_fmt_num(st->sd, sd, sizeof sd), st->cv * 100, st->n);
}

static void section(struct buf *out, const char *title, const struct side *a, const struct side *b,
		    int m, const char *unit)
{
	buf_appendf(out, "%s:\n", title);
	line(out, "A:", &a->st[m], unit);
	line(out, "B:", &b->st[m], unit);
	buf_appendf(out, "  -> change: ");
	if (a->st[m].n && b->st[m].n)
		change(out, a->st[m].mean, b->st[m].mean);
	else
		buf_appendf(out, "n/a");
	buf_appendf(out, "\n\n");
}

static void report_pair(struct buf *out, const struct side *a, const struct side *b)
{
	char x[64], y[64], z[64];
	buf_appendf(out, "A/B COMPARISON\n==============\nA: %s  [%s]\nB: %s  [%s]\n\n", a->label,
		    a->cell ? a->cell : "all ok trials", b->label, b->cell ? b->cell : "all ok trials");
	int m = RECORD_M_CPU_CORES;
	buf_appendf(out, "CPU USAGE (server, cores):\n");
	for (int i = 0; i < 2; i++) {
		const struct side *s = i ? b : a;
		if (!s->st[m].n) {
			buf_appendf(out, "  %s: n/a\n", i ? "B" : "A");
			continue;
		}
		buf_appendf(out, "  %s:  %s avg, %s peak (± %s, CV %.1f%%, n=%d)\n", i ? "B" : "A",
			    svg_fmt_num(s->st[m].mean, x, sizeof x), svg_fmt_num(s->peak_cores, y, sizeof y),
			    svg_fmt_num(s->st[m].sd, z, sizeof z), s->st[m].cv * 100, s->st[m].n);
	}
	buf_appendf(out, "  -> change: ");
	if (a->st[m].n && b->st[m].n) {
		change(out, a->st[m].mean, b->st[m].mean);
		buf_appendf(out, " avg, ");
		change(out, a->peak_cores, b->peak_cores);
		buf_appendf(out, " peak");
	} else {
		buf_appendf(out, "n/a");
	}
	buf_appendf(out, "\n\n");
	section(out, "SYSTEM CPU (server, cores)", a, b, RECORD_M_CPU_SYS_CORES, "cores");
	section(out, "CPU PER REQUEST (server)", a, b, RECORD_M_CPU_US_PER_REQUEST, "us");
	section(out, "CONTEXT SWITCHES (server)", a, b, RECORD_M_CTXSW_PER_S, "/s");
	section(out, "THROUGHPUT", a, b, RECORD_M_REQUESTS_PER_S, "req/s");
	section(out, "LATENCY (p99)", a, b, RECORD_M_P99_US, "us");
}

/* The key of c with its engine parameter removed. */
static void key_without_engine(const struct trials_cell *c, struct buf *k)
{
	buf_clear(k);
	for (int i = 0; i < c->nparams; i++)
		if (strcmp(c->pk[i], "engine"))
			buf_appendf(k, "%s%s=%s", k->len ? " " : "", c->pk[i], c->pv[i]);
	buf_append(k, "", 1);
}

int compare_trials(const struct trials *a, const char *label_a, const struct trials *b,
		   const char *label_b, const char *engine_a, const char *engine_b, struct buf *out,
		   char *err, size_t errlen)
{
	int pairs = 0;
	struct buf ka = BUF_INIT, kb = BUF_INIT;
	for (int pass = engine_a ? 1 : 0; pass < 2 && !pairs; pass++) {
		for (int i = 0; i < a->ncells; i++) {
			const struct trials_cell *ca = &a->cells[i];
			if (engine_a) {
				const char *e = trials_cell_param(ca, "engine");
				if (!e || strcmp(e, engine_a))
					continue;
			}
			key_without_engine(ca, &ka);
			for (int j = 0; j < b->ncells; j++) {
				const struct trials_cell *cb = &b->cells[j];
				if (engine_b) {
					const char *e = trials_cell_param(cb, "engine");
					if (!e || strcmp(e, engine_b))
						continue;
				}
				if (pass == 0) {
					if (strcmp(ca->key, cb->key))
						continue;
				} else {
					key_without_engine(cb, &kb);
					if (strcmp(buf_head(&ka), buf_head(&kb)))
						continue;
				}
				struct side sa = {label_a, ca->key, {{0}}, 0, 0};
				struct side sb = {label_b, cb->key, {{0}}, 0, 0};
				if (side_from_records(&sa, a, ca->key) < 0 ||
				    side_from_records(&sb, b, cb->key) < 0) {
					buf_free(&ka);
					buf_free(&kb);
					return errbuf(err, errlen, "out of memory");
				}
				if (pairs)
					buf_appendf(out, "\n");
				report_pair(out, &sa, &sb);
				pairs++;
			}
		}
	}
	buf_free(&ka);
	buf_free(&kb);
	if (!pairs && engine_a)
		return errbuf(err, errlen,
			      "no cells of engine '%s' and engine '%s' share their other parameters "
			      "(list the engines of the run with 'ctxlab report')",
			      engine_a, engine_b);
	if (!pairs) {
		if (!a->nrec || !b->nrec)
			return errbuf(err, errlen, "nothing to compare: '%s' has no trials",
				      a->nrec ? label_b : label_a);
		struct side sa = {label_a, NULL, {{0}}, 0, 0};
		struct side sb = {label_b, NULL, {{0}}, 0, 0};
		if (side_from_records(&sa, a, NULL) < 0 || side_from_records(&sb, b, NULL) < 0)
			return errbuf(err, errlen, "out of memory");
		report_pair(out, &sa, &sb);
		pairs = 1;
	}
	return pairs;
}

int compare_dirs(const char *dir_a, const char *dir_b, struct buf *out, char *err, size_t errlen)
{
	struct trials a, b;
	if (trials_load(&a, dir_a, err, errlen) < 0)
		return -1;
	if (trials_load(&b, dir_b, err, errlen) < 0) {
		trials_release(&a);
		return -1;
	}
	int rc = compare_trials(&a, dir_a, &b, dir_b, NULL, NULL, out, err, errlen);
	trials_release(&a);
	trials_release(&b);
	return rc;
}

int compare_engines(const char *dir, const char *engine_a, const char *engine_b, struct buf *out,
		    char *err, size_t errlen)
{
	struct trials t;
	if (trials_load(&t, dir, err, errlen) < 0)
		return -1;
	int rc = compare_trials(&t, engine_a, &t, engine_b, engine_a, engine_b, out, err, errlen);
	trials_release(&t);
	return rc;
}
