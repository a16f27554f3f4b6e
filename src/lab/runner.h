/* runner: the trial loop — executes an experiment's trials and records them.
 *
 * Order: rounds (repeat r of every cell before any cell's repeat r + 1), each in the seeded
 * random order of spec_round_order(s->seed, r). After the spec's `repeat` rounds, extra rounds
 * (repeat indexes repeat .. max_repeat - 1) run the cells whose decisive figure has not
 * reached s->precision (runner_pick_extra), as many as the rest of spec_budget_ns holds at the
 * pace measured so far (the budget counts the time of this process plus the trials recorded
 * before a --resume at their estimated cost, spec_estimate_ns). Resume matches records by
 * cell key and repeat, never by position.
 * For each trial: start `ctxlab serve` on the server host with its CPU set and wait for its
 * ready line (lab/launch.h, core/ready.h),
 * start `ctxlab load` (on the other CPUs when there are any), let the warm-up pass, measure the
 * server's whole tree with the monitor (in-process, on the keeper pid) over the measured
 * window, stop everything (the server is always stopped and reaped) and append one record to
 * DIR/trials.jsonl (lab/record.h writes it; write + fsync; every file of DIR is written through
 * core/outfile.h, never through a link or into a device planted there). DIR/env.json is
 * lab/env.h's. A profiled trial (spec_profiled) also runs `ctxlab profile` on the keeper pid
 * over the window, on the load CPUs, into DIR/flame/ID/ (ID: spec_cell_id, "-rN" for repeat
 * N >= 1); a profiler failure is a warning of the trial, never its failure. A failed trial is
 * recorded with its reason and the run goes on. SIGINT/SIGTERM stop every child and end the
 * run with the files valid. Messages go through core/log.h (info: silenced by -q). The caller
 * then writes the report (report_write: trials.csv, report.md, report.html). Record schema:
 * docs/metrics.md.
 *
 * Call from the main thread (children are spawned with a parent-death signal).
 */
#ifndef CTXLAB_LAB_RUNNER_H
#define CTXLAB_LAB_RUNNER_H

#include <sched.h>
#include <stddef.h>
#include <stdint.h>

#include "lab/spec.h"

struct runner_opts {
	const char *self;       /* path of the ctxlab binary to run as serve/load */
	const char *dir;        /* results directory (created; or the one to resume) */
	const char *spec_text;  /* the spec as text, copied to DIR/spec.ini */
	const char *argv_line;  /* the command line, recorded in env.json */
	int resume;             /* 1: DIR exists; skip the trials already recorded (matched by
				 * cell key and repeat; invalid lines are skipped and kept) */
	int quiet;              /* no progress bar (the messages go through info(): the caller
				 * sets log_set_quiet for -q) */
	int is_default;         /* a bundled experiment (recorded for --resume) */
	uint64_t ready_timeout_ns; /* wait for the listening line (default 10 s) */
};

/* Runs every trial of s not yet in DIR. Returns 0 when all ran (some may have failed),
 * 130 when interrupted (files valid, resumable), or -1 with err set (nothing to run, DIR
 * unusable). */
int runner_run(const struct spec *s, const struct runner_opts *o, char *err, size_t errlen);

/* One cell's state for the extra-round choice: its decisive values v[0..n) (one per ok
 * trial), the trials it has run (ok or failed) and whether this round's trial of it is
 * recorded already (done: resume). */
struct runner_cell_prec {
	const double *v;
	int n, trials, done;
};

/* The cells of the next extra round: those with values (n > 0), fewer than max_repeat trials,
 * not done, whose precision (record_precision) has not reached `precision` (n < 6 never
 * reaches 95%): the widest relative CI first (not reached: first), then fewer values, then
 * index; at most max_trials of them. pick[0..ncells) gets their indexes; returns the count.
 * Pure: no I/O, no state. */
int runner_pick_extra(const struct runner_cell_prec *cells, int ncells, double precision,
		      int max_repeat, int max_trials, int *pick);

/* Takes the results directory's lock (flock LOCK_EX on DIR itself, non-blocking) so that two
 * runs or resumes of one directory cannot interleave their records. Returns the fd that holds
 * it (close it once the run and its report are written), or -1 with err set: DIR is in use
 * by another run, or cannot be opened. */
int runner_lock(const char *dir, char *err, size_t errlen);

/* The engine catalog of the server host (`ctxlab serve --list-engines`). 0 or -1. */
int runner_catalog(const char *self, const char *server_host, struct spec_catalog *cat,
		   char *err, size_t errlen);

/* Starts `serve --engine E --proto P` once on the server host and stops it: 0 when it
 * printed its listening line, else -1 with why filled (the child's last message). */
int runner_probe(const char *self, const char *server_host, const char *engine,
		 const char *proto, char *why, size_t len);

/* Whether an open-loop load kept its rate, from its JSON (load --json): 0 when it did not, why
 * then says how far off it was ("sent [800/s of 1000/s offered, 40% of the messages more than
 * 1 ms late]"); 1 when it did, or when it ran a closed loop (no target rate). Not kept: the
 * rate sent in the window is more than RUNNER_RATE_OFF off the target (too few, or a backlog
 * of the warm-up caught up in the window). Late messages alone are not: measured here, they
 * leave 1-5 ms late when the load waits for its CPU, on a per-connection interval of 8 ms
 * (1 Mbps of 1 KiB messages), and the rate held to the message (docs/metrics.md). */
#define RUNNER_RATE_OFF 0.05
struct json_t;
int runner_rate_kept(const struct json_t *load, char *why, size_t len);

/* Splits the CPUs this process may use into the server's and the load generator's for a
 * cell: count N = the first N CPUs, 0 = all, -1 = list. *shared = 1 when the load has to
 * share the server's CPUs (no CPU left). 0 or -1 (list not usable). */
int runner_placement(int cpus_count, const char *cpus_list, cpu_set_t *server, cpu_set_t *load,
		     int *shared);

#endif
