/* syscount: a cgroup's system calls by name over a window — the `strace -c` table, counted by
 * the kernel's tracepoints instead of ptrace (monitor-internal; the runner calls it for every
 * trial whose server runs in a cgroup of its own).
 *
 * One perf counter per CPU for raw_syscalls:sys_enter (every system call: the total) and for
 * each syscalls:sys_enter_NAME of a fixed list of names that matter to servers (read, write,
 * recvfrom, sendmsg, epoll_wait, futex, clone, ...: syscount_names), each opened per cgroup
 * (PERF_FLAG_PID_CGROUP, like `perf stat -G`), so processes of any life span count in full. A
 * name without a tracepoint on this kernel or architecture is left out of the list (never
 * counted as 0); "other" = total - the sum of the names is exact. Needs root (or
 * perf_event_paranoid <= 0) and tracefs (core/tracefs.h mounts it when root).
 * Cost: a counted system call passes one tracepoint per counter that matches it (the total's
 * and its name's) — a few tens of ns each, which the measured server pays.
 * Not thread-safe. Functions return 0 / -errno.
 */
#ifndef CTXLAB_MONITOR_SYSCOUNT_H
#define CTXLAB_MONITOR_SYSCOUNT_H

#include <stddef.h>
#include <stdint.h>

#define SYSCOUNT_MAX 48

struct syscount {
	int ncpu;                       /* rows of fds */
	int n;                          /* counted names (index 1..n in counts; 0 = the total) */
	const char *name[SYSCOUNT_MAX]; /* name[0] = "total" */
	int *fds;                       /* [ncpu * (n + 1)], -1 where a CPU is offline */
	uint64_t base[SYSCOUNT_MAX];    /* the values at open */
};

/* The fixed list of names, NULL-terminated (those this kernel has are counted). */
extern const char *const syscount_names[];

/* Opens the counters of cgroup directory cgdir (v2, or a v1 perf_event hierarchy). On failure
 * nothing stays open and reason says why the counts are unavailable, in the words a record
 * shows ("needs root: ...", "no tracefs: ..."). */
int syscount_open(struct syscount *s, const char *cgdir, char *reason, size_t len);
/* Counting starts again from now (open early, so that enabling the tracepoints — tens of ms
 * per open on a busy machine — falls outside the window; rebase at the window's start). */
int syscount_rebase(struct syscount *s);
/* Counts since syscount_open (or the last rebase) into counts[0..s->n] (counts[0] = every system call). */
int syscount_read(struct syscount *s, uint64_t *counts);
/* Closing costs one RCU grace period per tracepoint whose last perf event goes (the kernel's
 * tracepoint_synchronize_unregister, under its event_mutex: ~1 s for the whole list on a busy
 * 2-core guest) unless a syscount_hold keeps them registered. */
void syscount_close(struct syscount *s);

/* A hold: one disabled counting event per tracepoint of the list on this process (pid 0, any
 * CPU, not inherited; it never counts), which keeps each tracepoint registered with perf while
 * it is open. The kernel registers a tracepoint when its first perf event is made and
 * unregisters it (waiting out an RCU grace period) when its last one goes: with a hold open, a
 * syscount_open / syscount_close per trial only adds and removes events, and the
 * registrations happen once, at syscount_hold_open and syscount_hold_close (which pays the
 * grace periods). Counts are not changed by it. n: the events held (the total and every name
 * this kernel has); 0 = none (then syscount works as without it). */
struct syscount_hold {
	int n;
	int fds[SYSCOUNT_MAX];
};
/* 0, or -errno with reason (as syscount_open's) and nothing held. */
int syscount_hold_open(struct syscount_hold *h, char *reason, size_t len);
void syscount_hold_close(struct syscount_hold *h);

#endif
