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

struct trials_stat {
	int n;                  /* values used */
	double mean, sd, cv;    /* sd: sample stddev (n-1), 0 when n < 2; cv = sd/mean, 0 when mean is 0 */
	double min, max;
};

struct trials_cell {
	char *key;              /* "engine=fork proto=sink cpus=1 connections=4" (params in record order) */
	int nparams;
	char **pk, **pv;        /* parameter names and values (strings) */
	int ntrials, nok, nfailed;
	char *fail_reason;      /* first failure reason, NULL when none */
	struct trials_stat st[RECORD_NMETRICS];
};

struct trials {
	char *dir;
	json_t *env;            /* env.json, or NULL when absent */
	int nrec;
	struct record *rec;     /* every parsed record of trials.jsonl, in file order */
	int ncells;
	struct trials_cell *cells; /* in order of first appearance */
	int npkeys;
	char **pkeys;           /* union of parameter names, in order of first appearance */
	int bad_lines;          /* lines of trials.jsonl that were not valid JSON objects (skipped) */
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
/* Statistics of vals[0..n). */
void trials_stat_compute(struct trials_stat *st, const double *vals, int n);

#endif
