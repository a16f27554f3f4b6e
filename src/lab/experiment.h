/* experiment: what `ctxlab run` does, from its options to a results directory full of trial
 * records: read the spec (a file, a bundled experiment (lab/bundled.h), or DIR/spec.ini and DIR/env.json on
 * --resume), drop the default's engines that do not start here (runner_probe), apply --quick
 * and --profile, pick and lock the results directory, and run the trials (runner_run).
 * The report is the caller's next step (report_write on res.dir, with the lock still held).
 *
 * Data flow: spec (lab/spec.h) -> cells -> trials (lab/runner.h: launch, monitor, record) ->
 * DIR/trials.jsonl (lab/record.h) + DIR/env.json (lab/env.h) -> report (report/report.h).
 * Call from the main thread. */
#ifndef CTXLAB_LAB_EXPERIMENT_H
#define CTXLAB_LAB_EXPERIMENT_H

#include <stddef.h>
#include <stdio.h>

struct experiment_opts {
	const char *self;        /* the ctxlab binary that runs serve and load (--bin, or this one) */
	const char *spec_path;   /* a file, or a bundled experiment's name when no such file
				  * exists (lab/bundled.h); NULL: the bundled default (unless resume) */
	const char *out;         /* -o DIR, NULL: results/NAME-STAMP */
	const char *resume;      /* --resume DIR, or NULL */
	const char *argv_line;   /* the command line, recorded in env.json */
	int dry;                 /* print the matrix to dry_out and run nothing */
	FILE *dry_out;
	int quick, quiet;
	int profile;             /* enum spec_profile, -1 = the spec's */
	int seed_set;            /* --seed given: seed replaces the spec's (and a drawn one) */
	unsigned long long seed;
};

struct experiment_result {
	char dir[4096];          /* the results directory (valid when the run started) */
	int lockfd;              /* the directory's lock (close it after the report), -1 = none */
	int usage;               /* 1: the error is a usage error (exit 2: a matrix too large) */
};

/* Runs the experiment. Returns 0 when every trial ran (some may have failed), 130 when
 * interrupted (files valid, resumable), 1 for a dry run (nothing ran, no directory), or -1 with
 * err set (and res->usage for a usage error). res->lockfd >= 0 whenever trials ran. */
int experiment_run(const struct experiment_opts *o, struct experiment_result *res, char *err,
		   size_t errlen);

/* `run --list`: one entry per bundled experiment (lab/bundled.h): its name, its question's
 * first sentence and its estimated time on this machine, --quick and full (spec_estimate_ns
 * of the fixed rounds, and the budget when extra rounds by precision may use it), printed to
 * out. 0, or -1 with err set (the engines of this machine cannot be listed). */
int experiment_list(const char *self, FILE *out, char *err, size_t errlen);

#endif
