/* env: DIR/env.json, the environment and the experiment of a run — its one writer and its one
 * reader (`run --resume` reads back what the run started with). Keys: docs/metrics.md,
 * "env.json" (tests/integration/test_metrics_keys.py checks that each one is defined there).
 * Not thread-safe. */
#ifndef CTXLAB_LAB_ENV_H
#define CTXLAB_LAB_ENV_H

#include <stddef.h>

#include "lab/multihost.h"
#include "lab/spec.h"

/* The machine's switch costs, measured once per run (env_switch_measure, ~1 s): the kernel's
 * (pingpong pipe-proc: two processes on one CPU handing a byte over two pipes) and the
 * coroutines' (pingpong coro: two coroutines of one thread), each pinned to one CPU.
 * ns per switch = CPU time (user + sys, both sides) / (2 x round trips): on one CPU that is
 * the elapsed time less what other tasks took from it (kernel_elapsed_ns: elapsed / (2 x round
 * trips), which perf bench sched pipe reports). The kernel figure includes the pipe write and
 * read around each switch.
 * -1 with *_why when a measurement failed. */
struct env_switch {
	double kernel_ns, coro_ns, kernel_elapsed_ns;
	char kernel_why[160], coro_why[160];
};
#define ENV_SWITCH_HOW "pingpong pinned to one CPU, ns per switch = CPU time (user + sys) / " \
	"(2 x round trips) (kernel_elapsed: elapsed / (2 x round trips)): " \
	"kernel = pipe-proc (2 processes, 1-byte messages over 2 pipes; includes the pipe " \
	"write + read per switch, as perf bench sched pipe), coro = coro (2 coroutines, 1 thread)"
void env_switch_measure(struct env_switch *sw);

struct env_run {
	const struct env_switch *sw; /* switch_cost_ns; NULL = left out */
	const char *argv_line;  /* the command line ("command"), NULL = left out */
	int is_default;         /* a bundled experiment (read leniently) */
	int ncells, ntrials;
	const struct multihost_info *hosts; /* each host of the run, probed (lab/multihost.h) */
	int nhosts;
};

/* Writes DIR/env.json (whole, through core/outfile.h): the machine (kernel, CPU model, cores,
 * governor, versions of the outside peers the spec runs) and the experiment. 0, or -1 with err
 * set. */
int env_write(const char *dir, const struct spec *s, const struct env_run *run, char *err,
	      size_t errlen);

#define ENV_MAX_ENGINES 64

/* What a resumed run takes from env.json. */
struct env_resume {
	int have_engines;                       /* "engines" was there */
	int nengines;
	char engines[ENV_MAX_ENGINES][32];      /* the effective matrix (after the start-up probe) */
	int quick, is_default;
	int profile;                            /* enum spec_profile, -1 when absent */
	int have_seed;                          /* experiment.seed was there */
	unsigned long long seed;
};

/* Reads DIR/env.json. 0; -ENOENT (absent or unreadable: err says why; *r holds the defaults,
 * the caller goes on with them). */
int env_read(const char *dir, struct env_resume *r, char *err, size_t errlen);
int env_resume_has_engine(const struct env_resume *r, const char *engine);

#endif
