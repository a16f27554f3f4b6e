/* tstats: per-process figures from the kernel's taskstats interface over generic netlink
 * (monitor-internal). One request per process (TASKSTATS_CMD_ATTR_TGID) or per thread
 * (TASKSTATS_CMD_ATTR_PID) replaces reading /proc/PID/task/TID/{status,schedstat} file by file.
 *
 * A TGID answer sums the process's live threads plus, once one of its threads has exited, the
 * exited ones (the kernel's signal->stats): run_ns (sum_exec_runtime, exact ns) and wait_ns
 * (run-queue delay) include exited threads, vol/invol (context switches) only live ones.
 * A zombie leader is left out by the kernel (its figures are in /proc/PID/stat).
 * Needs CONFIG_TASKSTATS (and CONFIG_TASK_DELAY_ACCT for run_ns/wait_ns; tstats_open checks
 * both with a probe of the caller itself); other processes' figures need root or the same
 * user. Not thread-safe: one thread drives a handle. Functions return 0 / -errno.
 */
#ifndef CTXLAB_MONITOR_TSTATS_H
#define CTXLAB_MONITOR_TSTATS_H

#include <stdint.h>
#include <sys/types.h>

struct tstats {
	int fd;               /* generic netlink socket, -1 when closed */
	uint16_t family;      /* TASKSTATS family id */
	uint32_t seq;
	char why[160];        /* why tstats_open / tstats_listen failed */
	uint64_t forged;      /* messages ignored because the kernel did not send them (nl_pid != 0) */
	uint64_t lost;        /* listener: times the socket overflowed (exit events dropped) */
	char mask[64];        /* listener: the CPU list registered ("" = not a listener) */
};

struct tstats_fig {
	uint64_t run_ns;      /* CPU time, exact (sum_exec_runtime) */
	uint64_t wait_ns;     /* time runnable but waiting for a CPU */
	uint64_t vol, invol;  /* voluntary / involuntary context switches */
	uint64_t utime_us, stime_us; /* tick-sampled user / system time */
};

/* Opens the socket, resolves the family and probes the caller. 0, or -errno with why set. */
int tstats_open(struct tstats *t);
/* Figures of process `id` (tgid = 1) or of thread `id` (tgid = 0). 0, -ESRCH when it is gone,
 * other -errno on failure. */
int tstats_get(struct tstats *t, pid_t id, int tgid, struct tstats_fig *f);
/* The same for ids[n] (n <= TSTATS_BATCH) with one request message and one recvmmsg per 16
 * answers instead of a request and an answer each: rc[i] is what tstats_get would return for
 * ids[i] (0 with f[i] filled, -ESRCH when it is gone, ...; -EAGAIN when its answer was lost
 * to a full socket buffer: ask again alone). Returns 0, or -errno when the request could not
 * be sent (every rc is that then). */
#define TSTATS_BATCH 64
int tstats_get_many(struct tstats *t, const pid_t *ids, int n, int tgid, struct tstats_fig *f,
		    int *rc);
/* Closes the socket (a listener is deregistered first). */
void tstats_close(struct tstats *t);

/* Exit events: the kernel sends every exiting task's final figures to the listeners registered
 * for the CPU it exits on (TASKSTATS_CMD_ATTR_REGISTER_CPUMASK). A task's event is queued in
 * do_exit, before its /proc entry goes away: once a task is gone from /proc, its event can be
 * read. Only messages from the kernel (nl_pid 0) are accepted; others count in t->forged. */
struct tstats_exit {
	pid_t tid;            /* the task that exited */
	pid_t tgid;           /* its process; 0 when the kernel does not say (taskstats < v12) */
	pid_t ppid;           /* the parent of its process (real parent's tgid) */
	uint64_t vol, invol;  /* the task's context-switch counts at exit (this thread only): vol
			       * lacks the dead task's last switch out, made after the event
			       * (getrusage counts it for a reaped process, not for a thread) */
};
/* Opens a listener for every possible CPU on a socket of its own (nonblocking, a 32 MiB
 * buffer when root may force it). Needs root (CAP_NET_ADMIN) in the initial PID and user
 * namespaces (the kernel refuses listeners elsewhere). 0, or -errno with why set. */
int tstats_listen(struct tstats *t);
/* Reads the queued exit events, without blocking, into ev[max]: the count (call again while it
 * returns max), or -errno. An overflow of the socket buffer adds to t->lost. */
int tstats_exits(struct tstats *t, struct tstats_exit *ev, int max);

#endif
