/* compare: A/B comparison of two results directories (or two engines of one) with benchstat's
 * method and a practical threshold (criterion's noise floor). Definitions: docs/metrics.md,
 * "Statistics", "compare".
 *
 * Per pair of cells and per metric of record_metrics[] that both sides have: one ok trial =
 * one sample value (never pooled per-request values); each side's median with its 95% CI
 * (order statistics), the Hodges-Lehmann shift of B against A with its 95% CI, the shift in %
 * of A's median, the two-sided Mann-Whitney p, Holm's adjustment over the metrics tested in
 * that cell, and the verdict of stats_significant (adjusted p < alpha, the shift's CI excludes
 * 0, |relative shift| > the metric's noise floor, n large enough for an exact p < alpha).
 *
 * Pairing: two results directories: cells with identical keys; when none match, cells whose
 * parameters other than the engine match; when still none, every ok trial of A against every
 * ok trial of B (one pair, cell NULL). One directory and two engines: cells of engine A and
 * engine B whose other parameters match.
 *
 * Noise floor: opts->noise_floor for every metric; with opts->noise (a second run of A, an
 * A/A pair), the floor of metric m is max(noise_floor, the largest |relative shift| of m over
 * the pairs of A against that run), paired as above.
 *
 *   struct compare_result r;
 *   compare_result_init(&r);
 *   if (compare_run(&a, &b, NULL, NULL, &opts, &r, err, sizeof err) < 0) ...;
 *   compare_text(&r, "dirA", "dirB", &opts, &out);  compare_json(&r, "dirA", "dirB", &opts, &w);
 *   compare_result_release(&r);
 *
 * No I/O; not thread-safe on one result; the result points into the trials (keep them
 * loaded while it is used).
 */
#ifndef CTXLAB_REPORT_COMPARE_H
#define CTXLAB_REPORT_COMPARE_H

#include <stddef.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/stats.h"
#include "report/trials.h"

struct compare_opts {
	double alpha;               /* significance level after Holm (STATS_ALPHA) */
	double noise_floor;         /* fraction of A's median (STATS_NOISE_FLOOR) */
	const struct trials *noise; /* a second run of A (A/A pair) or NULL */
};
#define COMPARE_OPTS_INIT {STATS_ALPHA, STATS_NOISE_FLOOR, NULL}

/* One cell x metric. */
struct compare_row {
	const char *cell_a, *cell_b; /* cell keys (into the trials); NULL: all ok trials */
	int metric;                  /* index into record_metrics[] */
	size_t na, nb;               /* values (ok trials with the metric) per side */
	struct stats_compare c;      /* medians + CIs, HL shift + CI, rel_shift, Mann-Whitney */
	double p_adj;                /* Holm over the m_tested metrics of the cell */
	double floor;                /* the noise floor applied (fraction) */
	int m_tested;                /* metrics of the cell under Holm */
	int significant;
	unsigned why;                /* STATS_FAIL_* bits, 0 when significant */
};

struct compare_result {
	struct compare_row *rows;    /* in pair order, metrics in record_metrics[] order */
	int nrows, cap;
	int npairs;                  /* cell pairs compared */
	int nsig;                    /* significant rows */
	double floor[RECORD_NMETRICS]; /* noise floor per metric (fraction) */
	int noise_pairs;             /* cell pairs of A against opts->noise (0: no --noise) */
	/* cells where no row can be significant because n is too small (first such cell's n) */
	int short_cells;
	size_t short_na, short_nb, short_need;
	int short_m;
};

void compare_result_init(struct compare_result *r);
void compare_result_release(struct compare_result *r);

/* Appends the rows of one cell pair (key NULL: every ok trial of that side) with the noise
 * floors floor[] (fractions). 0; -ENOMEM; -E2BIG when n_a x n_b exceeds STATS_MAX_PAIRS;
 * -EINVAL for alpha outside (0, 1). A metric that either side lacks gives no row. */
int compare_cell(const struct trials *a, const char *key_a, const struct trials *b,
		 const char *key_b, const double floor[RECORD_NMETRICS], double alpha,
		 struct compare_result *r);

/* Pairs the cells (see above), measures the noise floor when opts->noise is set, and fills r.
 * Returns the number of cell pairs (>= 1), or -1 with err set (nothing to compare, engines
 * that share no cells, out of memory, too many values). */
int compare_run(const struct trials *a, const struct trials *b, const char *engine_a,
		const char *engine_b, const struct compare_opts *opts, struct compare_result *r,
		char *err, size_t errlen);

/* The text report: significant rows first, then the others marked '~'; the n warning. */
void compare_text(const struct compare_result *r, const char *label_a, const char *label_b,
		  const struct compare_opts *opts, struct buf *out);
/* The n warning alone ("" when none), one line without '\n'. */
void compare_warning(const struct compare_result *r, const struct compare_opts *opts,
		     struct buf *out);
/* One JSON object: {"a", "b", "alpha", "noise_floor_pct": {metric: pct}, "warnings": [],
 * "rows": [one per cell x metric, significant first]}. */
void compare_json(const struct compare_result *r, const char *label_a, const char *label_b,
		  const struct compare_opts *opts, struct jw *w);

/* Convenience: compare_run + compare_text with the default options. Pairs, or -1 with err. */
int compare_trials(const struct trials *a, const char *label_a, const struct trials *b,
		   const char *label_b, const char *engine_a, const char *engine_b, struct buf *out,
		   char *err, size_t errlen);

#endif
