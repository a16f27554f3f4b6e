#include "report/compare.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "report/svg.h"

#define LEVEL 0.95

void compare_result_init(struct compare_result *r)
{
	memset(r, 0, sizeof *r);
}

void compare_result_release(struct compare_result *r)
{
	free(r->rows);
	compare_result_init(r);
}

/* The values of metric m of the ok trials of cell key (NULL: every ok trial). */
static size_t values(const struct trials *t, const char *key, int m, double *v)
{
	size_t n = 0;
	for (int i = 0; i < t->nrec; i++) {
		const struct record *rec = &t->rec[i];
		if (!rec->ok || (key && (!rec->cell || strcmp(rec->cell, key))))
			continue;
		double x;
		if (record_metric(rec, m, &x))
			v[n++] = x;
	}
	return n;
}

int compare_cell(const struct trials *a, const char *key_a, const struct trials *b,
		 const char *key_b, const double floor[RECORD_NMETRICS], double alpha,
		 struct compare_result *r)
{
	if (!(alpha > 0 && alpha < 1))
		return -EINVAL;
	if (r->nrows + RECORD_NMETRICS > r->cap) {
		int cap = r->cap ? 2 * r->cap + RECORD_NMETRICS : 4 * RECORD_NMETRICS;
		struct compare_row *nr = realloc(r->rows, (size_t)cap * sizeof *nr);
		if (!nr)
			return -ENOMEM;
		r->rows = nr;
		r->cap = cap;
	}
	double *va = malloc(((size_t)a->nrec + 1) * sizeof(double));
	double *vb = malloc(((size_t)b->nrec + 1) * sizeof(double));
	int rc = -ENOMEM;
	if (!va || !vb)
		goto out;
	struct compare_row *first = &r->rows[r->nrows];
	double p[RECORD_NMETRICS];
	int k = 0;
	for (int m = 0; m < RECORD_NMETRICS; m++) {
		size_t na = values(a, key_a, m, va), nb = values(b, key_b, m, vb);
		if (!na || !nb)
			continue;
		struct compare_row *row = &first[k];
		memset(row, 0, sizeof *row);
		row->cell_a = key_a;
		row->cell_b = key_b;
		row->metric = m;
		row->na = na;
		row->nb = nb;
		row->floor = floor[m];
		rc = stats_compare(va, na, vb, nb, LEVEL, &row->c);
		if (rc < 0)
			goto out;
		p[k++] = row->c.mw.p;
	}
	rc = stats_holm(p, (size_t)k, p);
	if (rc < 0 && k)
		goto out;
	size_t short_na = 0, short_nb = 0;
	int can = !k;
	for (int i = 0; i < k; i++) {
		struct compare_row *row = &first[i];
		row->p_adj = p[i];
		row->m_tested = k;
		rc = stats_significant(row->p_adj, row->c.hl.lo, row->c.hl.hi, row->c.rel_shift,
				       row->na, row->nb, alpha, row->floor, &row->why);
		if (rc < 0)
			goto out;
		row->significant = rc;
		r->nsig += rc;
		/* Holm multiplies the smallest p by k: can any row of this cell get below alpha? */
		if (stats_mw_min_p(row->na, row->nb) * k < alpha)
			can = 1;
		else if (!short_na)
			short_na = row->na, short_nb = row->nb;
	}
	if (!can) {
		if (!r->short_cells++) {
			r->short_na = short_na;
			r->short_nb = short_nb;
			r->short_m = k;
			if (stats_mw_min_n(alpha / k, &r->short_need) < 0)
				r->short_need = 0;
		}
	}
	r->nrows += k;
	rc = 0;
out:
	free(va);
	free(vb);
	return rc;
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

static int cell_error(int rc, char *err, size_t errlen)
{
	if (rc == -E2BIG)
		return errbuf(err, errlen, "too many trials in one cell for the Hodges-Lehmann shift "
			      "(n_A x n_B > %u): compare fewer repeats", (unsigned)STATS_MAX_PAIRS);
	if (rc == -ENOMEM)
		return errbuf(err, errlen, "out of memory");
	return errbuf(err, errlen, "cannot compare: %s", strerror(-rc));
}

/* Pairs the cells of a and b and appends their rows to r. Pairs, or -1 with err. */
static int pair_cells(const struct trials *a, const struct trials *b, const char *engine_a,
		      const char *engine_b, const double floor[RECORD_NMETRICS], double alpha,
		      struct compare_result *r, char *err, size_t errlen)
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
				int rc = compare_cell(a, ca->key, b, cb->key, floor, alpha, r);
				if (rc < 0) {
					buf_free(&ka);
					buf_free(&kb);
					return cell_error(rc, err, errlen);
				}
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
			return errbuf(err, errlen, "nothing to compare: %s has no trials",
				      a->nrec ? "B" : "A");
		int rc = compare_cell(a, NULL, b, NULL, floor, alpha, r);
		if (rc < 0)
			return cell_error(rc, err, errlen);
		pairs = 1;
	}
	return pairs;
}

int compare_run(const struct trials *a, const struct trials *b, const char *engine_a,
		const char *engine_b, const struct compare_opts *opts, struct compare_result *r,
		char *err, size_t errlen)
{
	for (int m = 0; m < RECORD_NMETRICS; m++)
		r->floor[m] = opts->noise_floor;
	if (opts->noise) {
		/* A against its second run: the noise floor of each metric is the largest
		 * |relative shift| seen, never below opts->noise_floor */
		struct compare_result n;
		compare_result_init(&n);
		double zero[RECORD_NMETRICS] = {0};
		int np = pair_cells(a, opts->noise, engine_a, engine_a, zero, opts->alpha, &n, err,
				    errlen);
		if (np < 0) {
			compare_result_release(&n);
			return -1;
		}
		for (int i = 0; i < n.nrows; i++) {
			double s = fabs(n.rows[i].c.rel_shift);
			int m = n.rows[i].metric;
			if (isfinite(s) && s > r->floor[m])
				r->floor[m] = s;
		}
		r->noise_pairs = np;
		compare_result_release(&n);
	}
	return r->npairs = pair_cells(a, b, engine_a, engine_b, r->floor, opts->alpha, r, err,
				      errlen);
}

/* ---- output ---------------------------------------------------------------------------- */

void compare_warning(const struct compare_result *r, const struct compare_opts *opts,
		     struct buf *out)
{
	if (!r->short_cells)
		return;
	buf_appendf(out, "with %zu", r->short_na);
	if (r->short_nb != r->short_na)
		buf_appendf(out, " and %zu", r->short_nb);
	buf_appendf(out, " repeats per side no difference can be significant at %g after Holm over "
		    "%d metrics", opts->alpha, r->short_m);
	if (r->short_cells > 1)
		buf_appendf(out, " (%d cells)", r->short_cells);
	if (r->short_need)
		buf_appendf(out, ": use at least %zu repeats", r->short_need);
	buf_appendf(out, "; decide n in advance, do not rerun until significant");
}

static void pct(struct buf *out, double x)
{
	if (isfinite(x))
		buf_appendf(out, "%+.1f%%", 100 * x);
	else
		buf_appendf(out, "n/a");
}

static void row_text(struct buf *out, const struct compare_row *w)
{
	const struct record_metric_info *mi = &record_metrics[w->metric];
	char x[3][32];
	const struct stats_median_ci *s[2] = {&w->c.a, &w->c.b};
	buf_appendf(out, "  %-22s", mi->id);
	for (int i = 0; i < 2; i++)
		buf_appendf(out, " %s %s [%s, %s] n=%zu", i ? " B" : "A",
			    svg_fmt_num(s[i]->median, x[0], sizeof x[0]),
			    svg_fmt_num(s[i]->lo, x[1], sizeof x[1]),
			    svg_fmt_num(s[i]->hi, x[2], sizeof x[2]), i ? w->nb : w->na);
	double ma = fabs(w->c.a.median);
	if (w->significant) {
		buf_appendf(out, "  ");
		pct(out, w->c.rel_shift);
		buf_appendf(out, " [");
		pct(out, ma > 0 ? w->c.hl.lo / ma : NAN);
		buf_appendf(out, ", ");
		pct(out, ma > 0 ? w->c.hl.hi / ma : NAN);
		buf_appendf(out, "] p=%.3g\n", w->p_adj);
		return;
	}
	buf_appendf(out, "  ~ (");
	pct(out, w->c.rel_shift);
	buf_appendf(out, ", p=%.3g; not:", w->p_adj);
	const char *sep = " ";
	for (unsigned bit = 1; bit <= STATS_FAIL_N; bit <<= 1)
		if (w->why & bit) {
			buf_appendf(out, "%s%s", sep, stats_fail_name(bit));
			sep = ", ";
		}
	buf_appendf(out, ")\n");
}

static void cell_head(struct buf *out, const struct compare_row *w)
{
	const char *ka = w->cell_a ? w->cell_a : "all ok trials";
	const char *kb = w->cell_b ? w->cell_b : "all ok trials";
	if (!strcmp(ka, kb))
		buf_appendf(out, "%s\n", ka);
	else
		buf_appendf(out, "A: %s  B: %s\n", ka, kb);
}

static void rows_text(const struct compare_result *r, int sig, struct buf *out)
{
	const struct compare_row *prev = NULL;
	for (int i = 0; i < r->nrows; i++) {
		const struct compare_row *w = &r->rows[i];
		if (w->significant != sig)
			continue;
		if (!prev || prev->cell_a != w->cell_a || prev->cell_b != w->cell_b)
			cell_head(out, w);
		row_text(out, w);
		prev = w;
	}
}

void compare_text(const struct compare_result *r, const char *label_a, const char *label_b,
		  const struct compare_opts *opts, struct buf *out)
{
	buf_appendf(out, "A/B COMPARISON\n==============\nA: %s\nB: %s\n", label_a, label_b);
	buf_appendf(out, "%d cell pair(s), %d cell x metric rows, %d significant: Holm-adjusted "
		    "Mann-Whitney p < %g, the Hodges-Lehmann shift's 95%% CI excludes 0 and "
		    "|shift| > the noise floor (", r->npairs, r->nrows, r->nsig, opts->alpha);
	if (r->noise_pairs) {
		buf_appendf(out, "per metric: max of %g%% and |shift| of A against the --noise run, "
			    "%d cell pair(s):", 100 * opts->noise_floor, r->noise_pairs);
		int any = 0;
		for (int m = 0; m < RECORD_NMETRICS; m++)
			if (r->floor[m] > opts->noise_floor) {
				buf_appendf(out, " %s %.1f%%", record_metrics[m].id, 100 * r->floor[m]);
				any = 1;
			}
		if (!any)
			buf_appendf(out, " none above");
	} else {
		buf_appendf(out, "%g%%", 100 * opts->noise_floor);
	}
	buf_appendf(out, ").\nEach row: median [95%% CI] per side, one value per trial; shift of "
		    "B against A in %% of A's median [95%% CI], p after Holm.\n");
	if (r->short_cells) {
		buf_appendf(out, "warning: ");
		compare_warning(r, opts, out);
		buf_appendf(out, "\n");
	}
	buf_appendf(out, "\nSIGNIFICANT (%d)\n", r->nsig);
	if (r->nsig)
		rows_text(r, 1, out);
	else
		buf_appendf(out, "  none\n");
	buf_appendf(out, "\nNO SIGNIFICANT DIFFERENCE (~) (%d)\n", r->nrows - r->nsig);
	rows_text(r, 0, out);
}

static void json_row(struct jw *j, const struct compare_row *w)
{
	double ma = fabs(w->c.a.median);
	jw_obj(j);
	jw_kstr(j, "cell", w->cell_a);
	jw_kstr(j, "cell_b", w->cell_b);
	jw_kstr(j, "metric", record_metrics[w->metric].id);
	jw_kuint(j, "n_a", w->na);
	jw_kuint(j, "n_b", w->nb);
	jw_kdouble(j, "median_a", w->c.a.median);
	jw_kdouble(j, "median_b", w->c.b.median);
	const struct stats_median_ci *s[2] = {&w->c.a, &w->c.b};
	for (int i = 0; i < 2; i++) {
		jw_key(j, i ? "ci_b" : "ci_a");
		jw_arr(j);
		jw_double(j, s[i]->lo);
		jw_double(j, s[i]->hi);
		jw_end(j);
	}
	jw_kdouble(j, "shift", w->c.hl.shift);
	jw_kdouble(j, "shift_pct", 100 * w->c.rel_shift); /* null when A's median is 0 */
	jw_kdouble(j, "ci_low", w->c.hl.lo);
	jw_kdouble(j, "ci_high", w->c.hl.hi);
	jw_kdouble(j, "ci_low_pct", ma > 0 ? 100 * w->c.hl.lo / ma : NAN);
	jw_kdouble(j, "ci_high_pct", ma > 0 ? 100 * w->c.hl.hi / ma : NAN);
	jw_kdouble(j, "p_value", w->c.mw.p);
	jw_kdouble(j, "p_adjusted", w->p_adj);
	jw_kuint(j, "metrics_in_holm", (uint64_t)w->m_tested);
	jw_kdouble(j, "noise_floor_pct", 100 * w->floor);
	jw_kbool(j, "significant", w->significant);
	jw_key(j, "why_not");
	jw_arr(j);
	for (unsigned bit = 1; bit <= STATS_FAIL_N; bit <<= 1)
		if (w->why & bit)
			jw_str(j, stats_fail_name(bit));
	jw_end(j);
	jw_end(j);
}

void compare_json(const struct compare_result *r, const char *label_a, const char *label_b,
		  const struct compare_opts *opts, struct jw *j)
{
	jw_obj(j);
	jw_kstr(j, "a", label_a);
	jw_kstr(j, "b", label_b);
	jw_kdouble(j, "alpha", opts->alpha);
	jw_kdouble(j, "level", LEVEL);
	jw_kuint(j, "cell_pairs", (uint64_t)r->npairs);
	jw_kuint(j, "noise_cell_pairs", (uint64_t)r->noise_pairs);
	jw_key(j, "noise_floor_pct");
	jw_obj(j);
	for (int m = 0; m < RECORD_NMETRICS; m++)
		jw_kdouble(j, record_metrics[m].id, 100 * r->floor[m]);
	jw_end(j);
	jw_key(j, "warnings");
	jw_arr(j);
	if (r->short_cells) {
		struct buf b = BUF_INIT;
		compare_warning(r, opts, &b);
		buf_append(&b, "", 1);
		jw_str(j, buf_head(&b));
		buf_free(&b);
	}
	jw_end(j);
	jw_key(j, "rows");
	jw_arr(j);
	for (int sig = 1; sig >= 0; sig--)
		for (int i = 0; i < r->nrows; i++)
			if (r->rows[i].significant == sig)
				json_row(j, &r->rows[i]);
	jw_end(j);
	jw_end(j);
}

int compare_trials(const struct trials *a, const char *label_a, const struct trials *b,
		   const char *label_b, const char *engine_a, const char *engine_b, struct buf *out,
		   char *err, size_t errlen)
{
	struct compare_opts opts = COMPARE_OPTS_INIT;
	struct compare_result r;
	compare_result_init(&r);
	int rc = compare_run(a, b, engine_a, engine_b, &opts, &r, err, errlen);
	if (rc >= 0)
		compare_text(&r, label_a, label_b, &opts, out);
	compare_result_release(&r);
	return rc;
}
