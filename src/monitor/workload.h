/* workload: built-in workloads with known answers, the ground truth the monitor is checked
 * against (`ctxlab watch --selftest`, the monitor's tests, bench/watch-overhead) — like
 * `perf test -w noploop`.
 *
 * A burn tree: a root process that, on "go", forks `children` children; child i sleeps
 * i*stagger, then burns user_ns of user-mode CPU (even i) or sys_ns of kernel-mode CPU (odd i:
 * read(2) of /dev/zero into a 64 KiB buffer) and exits; with `nested`, every third child
 * does its burn in a grandchild it forks and reaps. The root reaps every child as it exits,
 * then reports getrusage(RUSAGE_CHILDREN) and RUSAGE_SELF (the truth, CPU and context
 * switches), and lingers until
 * workload_tree_end. With `idle` > 0, that many extra children just sleep (a large tree).
 *
 * A ping-pong: a process whose two threads hand a byte back and forth `rounds` times over two
 * pipes (each hand-off blocks: 2 voluntary switches per round), reporting each thread's
 * getrusage(RUSAGE_THREAD) switch counts; its main thread only waits.
 *
 * All functions return 0 / -errno. The caller reaps through workload_*_end. Not thread-safe.
 */
#ifndef CTXLAB_MONITOR_WORKLOAD_H
#define CTXLAB_MONITOR_WORKLOAD_H

#include <stdint.h>
#include <sys/types.h>

void workload_burn_user_ns(uint64_t ns); /* burns ns of this thread's CPU in user mode */
void workload_burn_sys_ns(uint64_t ns);  /* burns ns of this thread's CPU mostly in the kernel */

struct workload_tree_opts {
	int children;
	uint64_t user_ns, sys_ns; /* per child */
	uint64_t stagger_ns;      /* child i starts its burn after i * stagger_ns */
	int nested;
	int idle;                 /* extra children that only sleep until the end */
	uint64_t idle_tick_ns;    /* > 0: the extra children wake every tick and burn ~20 us
				   * of user CPU (a busy tree: every process runs every
				   * interval, so a sampler can skip none) */
	int sleeps;               /* each child then sleeps 200 us and burns 50 us this many
				   * times (voluntary switches; involuntary ones on busy CPUs) */
	int par;                  /* > 0: at most this many children at once (the root reaps
				   * one before it forks the next: short lives, like a server
				   * forking per connection) */
};

struct workload_truth {
	double children_user_s, children_sys_s; /* the root's RUSAGE_CHILDREN */
	double self_user_s, self_sys_s;         /* the root's RUSAGE_SELF */
	long children_nvcsw, children_nivcsw;
	long self_nvcsw, self_nivcsw;           /* the root's own, over its life */
};

struct workload_tree {
	pid_t pid;       /* the root */
	int go_fd;       /* write end: a byte starts the burn; closing it ends the root */
	int report_fd;   /* read end: the truth, once every child is reaped */
};

int workload_tree_start(const struct workload_tree_opts *o, struct workload_tree *t);
int workload_tree_go(struct workload_tree *t);
/* Waits (at most timeout_ns) for every burning child to be reaped and reads the truth. */
int workload_tree_truth(struct workload_tree *t, struct workload_truth *truth, uint64_t timeout_ns);
/* Ends the root (and its idle children) and reaps it. */
int workload_tree_end(struct workload_tree *t);

struct workload_pingpong {
	pid_t pid;
	int go_fd, report_fd;
};
struct workload_pp_truth {
	long nvcsw[2], nivcsw[2]; /* per ping-pong thread, over the rounds */
	long main_nvcsw;          /* the main thread's (what /proc/PID/status shows) */
};
/* cpu0/cpu1 >= 0: pin the two threads there. */
int workload_pingpong_start(long rounds, int cpu0, int cpu1, struct workload_pingpong *p);
int workload_pingpong_go(struct workload_pingpong *p);
int workload_pingpong_truth(struct workload_pingpong *p, struct workload_pp_truth *t, uint64_t timeout_ns);
int workload_pingpong_end(struct workload_pingpong *p);

#endif
