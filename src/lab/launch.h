/* launch: starts a role (server, load, profiler, a one-shot command) on a host of any kind
 * (local | ssh | netns, lab/host.h) behind one interface, and talks to it:
 *
 *   struct launch l;
 *   launch_start(&l, &(struct launch_spec){.host = &h, .argv = argv, ...}, err, sizeof err);
 *   launch_ready(&l, timeout_ns, &rl, why, sizeof why);   server roles: its ready line
 *   launch_read_all(&l, &out, deadline);                   load roles: its whole stdout
 *   launch_stop(&l);                                       always: nothing is left alive
 *
 * What is host-specific stays in lab/host.c (the argv that runs a command there, and where
 * CPUs can be pinned); the role's stderr goes to the caller's log fd (the run's run.log), and
 * launch_tail reads back the last line the role wrote there, for the reason of a failure.
 * Every wait is bounded and polls *stop (the caller's stop flag, set by a signal handler):
 * -EINTR when it was set. Functions return 0 or -errno, with why/err filled where the message
 * is the product. Call from the main thread (children have a parent-death signal).
 */
#ifndef CTXLAB_LAB_LAUNCH_H
#define CTXLAB_LAB_LAUNCH_H

#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"
#include "core/ready.h"
#include "core/spawn.h"
#include "lab/host.h"

struct launch_spec {
	const struct host *host;
	const char *const *argv;    /* argv[0]: the local ctxlab (replaced by remote_prog on ssh) */
	const char *remote_prog;    /* "ctxlab", or NULL to keep argv[0] */
	const cpu_set_t *cpus;      /* pinned on local and netns hosts; ignored on ssh (pass the
				     * role its own --cpus there) */
	const char *cgroup;         /* a cgroup to fork the role in ("" or NULL = none; local) */
	int logfd;                  /* the role's stderr (-1: /dev/null is not used: inherited) */
	volatile sig_atomic_t *stop;/* the caller's stop flag; NULL = never */
	const char *const *env;     /* extra "K=V" entries for the role's environment (NULL =
				     * none; local and netns hosts: an ssh role does not get them) */
	int control;                /* 1: the role's stdin is a pipe from us (launch_send), for a
				     * role run with --control-stdin (core/lifeline.h); else
				     * /dev/null */
};

struct launch {
	struct spawn_child child;
	int started;                /* child is valid (stop it) */
	int logfd;
	off_t log_since;            /* where the role's messages begin in logfd */
	int cgroup_leave_failed;    /* the caller stayed in spec.cgroup after the fork */
	volatile sig_atomic_t *stop;
};

/* Starts the role. 0, or -errno with err set ("cannot start ..."). On failure nothing runs. */
int launch_start(struct launch *l, const struct launch_spec *sp, char *err, size_t errlen);

/* Waits at most timeout_ns for the role's ready line (core/ready.h), skipping other lines.
 * 0 and *r filled; -ETIMEDOUT, -ECHILD (it ended first), -EINTR (stop): why says what
 * happened, with the role's last message. */
int launch_ready(struct launch *l, uint64_t timeout_ns, struct ready *r, char *why, size_t len);

/* Appends the role's stdout to out until EOF, at most until deadline_ns (raw reads: a JSON
 * document may be one long line). 0 at EOF, -ETIMEDOUT, -EINTR, or -errno. */
int launch_read_all(struct launch *l, struct buf *out, uint64_t deadline_ns);

/* Waits at most timeout_ns for a line equal to `want` on the role's stdout (other lines are
 * skipped). 0, -ETIMEDOUT, -ECHILD (it ended first), -EINTR: why says what happened, with the
 * role's last message. */
int launch_await_line(struct launch *l, const char *want, uint64_t timeout_ns, char *why,
		      size_t len);
/* Writes text to the role's stdin (spec.control). 0 or -errno (-EPIPE: it is gone). */
int launch_send(struct launch *l, const char *text);

/* Waits at most timeout_ns for the role to end. 0 = ended (launch_status valid), -ETIMEDOUT. */
int launch_wait(struct launch *l, int64_t timeout_ns);
/* 1 when the role has ended (its wait status in *status), 0 while it runs. Does not block. */
int launch_ended(struct launch *l, int *status);
/* Stops the role when it still runs (SIGTERM, a grace, SIGKILL of its tree); idempotent. */
void launch_stop(struct launch *l);

/* The last non-empty line the role wrote to its log ("" when none). */
void launch_tail(const struct launch *l, char *out, size_t len);
/* "exited with status 1", "was killed by signal 9 (Killed)" */
void launch_status_text(int status, char *out, size_t len);

/* Runs argv on host h to its end (at most timeout_ns) and returns its stdout (or its stderr
 * when want_stderr) in out, trimmed. 0 when it exited 0, else -1 (out holds what it wrote). */
int launch_capture(const struct host *h, const char *const *argv, const char *remote_prog,
		   int want_stderr, char *out, size_t len, uint64_t timeout_ns);

#endif
