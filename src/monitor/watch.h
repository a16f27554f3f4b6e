/* watch: what `ctxlab watch` does once its options are parsed — start the command it watches
 * (held, in a cgroup of its own when one can be made), sample the target every interval and
 * print each sample as a table row, CSV or JSON (monitor/monout.h), then the summary.
 * The output on stdout is the product; errors go to the caller through err. Call from the main
 * thread (a started command has a parent-death signal). */
#ifndef CTXLAB_MONITOR_WATCH_H
#define CTXLAB_MONITOR_WATCH_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "monitor/monitor.h"

enum watch_fmt { WATCH_FMT_TABLE, WATCH_FMT_CSV, WATCH_FMT_JSON };

struct watch_opts {
	struct monitor_opts mo;      /* the target (pid, cgroup, name) and what to read */
	uint64_t interval_ns;
	uint64_t count;              /* stop after N samples (0 = until the target ends) */
	enum watch_fmt fmt;
	int quiet, selftest, no_perf;
	const char *method;          /* with cmd: "auto" (NULL), "cgroup2", "cgroup1", "procwalk" */
	char **cmd;                  /* NULL, or the command to start and watch (NULL-terminated) */
	volatile sig_atomic_t *stop; /* set by the caller's signal handler: end cleanly */
	uint64_t attach_delay_ns;    /* tests: a pause between starting cmd and attaching */
};

/* Runs the watch. Returns the exit status to give (the command's own when one was started and
 * ended, else 0), or -1 with err set (nothing could be watched). */
int watch_run(const struct watch_opts *o, char *err, size_t errlen);

/* `watch --selftest`: known CPU burns and context switches against getrusage, per accounting
 * method (a method not available here is skipped). Prints its lines; 0 = every check passed. */
int watch_selftest(void);

#endif
