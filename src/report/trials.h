/* trials: reads a results directory written by `ctxlab run` (env.json, trials.jsonl) and
 * aggregates its trial records into cells (one cell = one combination of parameters; its
 * repeats are the trials). Records are read through lab/record.h (their one reader); the
 * schema is defined in docs/metrics.md, "Experiment records".
 *
 *   struct trials t;
 *   if (trials_load(&t, dir, err, sizeof err) < 0) ...;
 *   for (int i = 0; i < t.ncells; i++) t.cells[i].st[RECORD_M_CPU_CORES].mean ...
 *   trials_release(&t);
 *
 * Statistics use the trials whose status is "ok" only; failed trials are counted and their
 * first reason kept. A metric missing (or null) in a record is left out of that metric's
 * statistics (n counts the values used). Not thread-safe; the caller owns struct trials.
 */
#ifndef CTXLAB_REPORT_TRIALS_H
#define CTXLAB_REPORT_TRIALS_H

#include <jansson.h>
#include <stddef.h>

#include "lab/record.h"

/* TRIALS_LEVEL: the confidence level of every interval of the report (docs/metrics.md,
 * "Statistics"). */
#define TRIALS_LEVEL 0.95

struct trials_stat {
	int n;                  /* values used */
	double mean, sd, cv;    /* sd: sample stddev (n-1), 0 when n < 2; cv = sd/mean, 0 when mean is 0 */
	double min, max;
	/* the median with its distribution-free CI at TRIALS_LEVEL (core/stats.h,
	 * stats_median_ci): ci_reached 0 when n is too small (n < 6 at 95 %): the CI is then the
	 * range [min, max] and ci_conf its coverage 1 - 2^(1-n). All 0 when n is 0. */
	double median, ci_lo, ci_hi, ci_conf;
	int ci_reached;
	int n_outliers;         /* values outside the Tukey fences (flagged, never dropped) */
};

/* The ratio b / a of two cells' medians of one metric, with a CI from the Hodges-Lehmann shift
 * of log(b) against log(a) (core/stats.h, stats_hodges_lehmann): [exp(lo), exp(hi)] at
 * TRIALS_LEVEL. reached 0: n too small for that level (3 vs 3 at 95 %), lo/hi are then the
 * extreme ratios and conf their coverage; do not print them as a CI. */
struct trials_ratio {
	double ratio, lo, hi, conf;
	int reached;
	int na, nb;
};

struct trials_cell {
	char *key;              /* "engine=fork proto=sink cpus=1 connections=4" (params in record order) */
	int nparams;
	char **pk, **pv;        /* parameter names and values (strings) */
	int ntrials, nok, nfailed;
	char *fail_reason;      /* first failure reason, NULL when none */
	struct trials_stat st[RECORD_NMETRICS];
	/* "precision reached" (docs/metrics.md, "Precision"): the decisive metric
	 * (record_decisive_metric: throughput when most ok trials were saturated, else CPU per
	 * request), the half-width of its median's 95% CI relative to the median
	 * (record_precision; +inf when no value or a median of 0) over n values, and whether
	 * that CI reached 95% (n >= 6; else precision is the range's half-width). */
	int decisive;
	double precision;
	int precision_n, precision_reached;
};

struct trials {
	char *dir;
	json_t *env;            /* env.json, or NULL when absent */
	int nrec;
	struct record *rec;     /* every parsed record of trials.jsonl, in file order */
	int ncells;
	struct trials_cell *cells; /* in matrix order (records' cell_index), then cells of
				    * records without one in order of first appearance */
	int npkeys;
	char **pkeys;           /* union of parameter names, in order of first appearance */
	int bad_lines;          /* lines of trials.jsonl that were not valid JSON objects (skipped) */
	int *rec_cell;          /* nrec entries: the cell index of each record */
	/* nrec * RECORD_NMETRICS entries, [r * RECORD_NMETRICS + m]: -1 / +1 when record r's value
	 * of metric m is below / above its cell's Tukey fences, 0 otherwise (and for failed or
	 * missing values). */
	signed char *outlier;
};

/* Reads dir/trials.jsonl (required) and dir/env.json (optional). 0, or -errno with err set:
 * the file cannot be read, memory ran out, or a record is of a newer schema major version than
 * this ctxlab reads (-EPROTONOSUPPORT: the report would be wrong, so none is made). */
int trials_load(struct trials *t, const char *dir, char *err, size_t errlen);
/* Same from a jsonl text already in memory (env NULL); for tests and compare. */
int trials_load_text(struct trials *t, const char *jsonl, char *err, size_t errlen);
void trials_release(struct trials *t);

/* The value of a cell's parameter, NULL when the cell has no such parameter. */
const char *trials_cell_param(const struct trials_cell *c, const char *key);
/* Statistics of vals[0..n) (allocates nothing the caller must free). flags: NULL, or n entries
 * that get each value's Tukey flag (-1, 0, +1). */
void trials_stat_compute(struct trials_stat *st, const double *vals, int n);
void trials_stat_compute_flags(struct trials_stat *st, const double *vals, int n,
			       signed char *flags);
/* The ratio of cell cb's median of metric m to cell ca's (ok trials), with its CI (see struct
 * trials_ratio). 0; -EDOM when a value is not > 0 or a median is 0 (no log, no ratio); -EINVAL
 * when a cell has no value of m or an index is out of range; -ENOMEM. */
int trials_ratio_ci(const struct trials *t, int ca, int cb, int m, struct trials_ratio *out);
/* Same from two arrays (vals > 0). */
int trials_ratio_of(const double *a, int na, const double *b, int nb, struct trials_ratio *out);

#endif
