/* perfev: perf_event counters over a process tree (monitor-internal).
 *
 * Counters are opened per thread with inherit=1, so every process and thread the tree
 * creates afterwards is counted, live or exited (read() on an inherited event sums its
 * children). Software events always (task-clock, context-switches, cpu-migrations,
 * page-faults); raw_syscalls:sys_enter when tracefs is readable; hardware events (cycles,
 * instructions, cache-misses, dTLB-load-misses) where the PMU supports them. What is not
 * available is reported with a reason, never as zero.
 * Not thread-safe. Functions return 0 / -errno.
 */
#ifndef CTXLAB_MONITOR_PERFEV_H
#define CTXLAB_MONITOR_PERFEV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum perfev_id {
	PERFEV_TASK_CLOCK,
	PERFEV_CTXSW,
	PERFEV_MIGRATIONS,
	PERFEV_PAGE_FAULTS,
	PERFEV_SYSCALLS,
	PERFEV_CYCLES,
	PERFEV_INSTRUCTIONS,
	PERFEV_CACHE_MISSES,
	PERFEV_DTLB_MISSES,
	PERFEV_N
};

#define PERFEV_MAX_THREADS 512 /* threads opened at attach; more are counted only if forked later */

struct perfev {
	int nthreads;
	int *fds;                 /* [nthreads * PERFEV_N], -1 when not open */
	int ok[PERFEV_N];         /* 1 when the event counts for the tree */
	uint64_t last[PERFEV_N];  /* values at the previous read */
	uint64_t base[PERFEV_N];  /* values at attach */
	char hw_reason[128];      /* why hardware events are n/a */
	char sc_reason[128];      /* why the syscall count is n/a */
	char sw_reason[128];
};

/* Opens counters on every thread of the given pids (their tasks, listed from /proc), inherit=1.
 * Unavailable events are marked !ok with a reason; returns 0 when at least the software
 * events count, else -errno (reasons filled). */
int perfev_attach(struct perfev *p, const pid_t *pids, int npids);
/* Reads the tree's totals into cur[PERFEV_N] (cumulative since attach). */
void perfev_read(struct perfev *p, uint64_t *cur);
void perfev_close(struct perfev *p);

/* Whether hardware counters open on this machine: 1, or 0 with a reason. */
int perfev_hw_supported(char *reason, size_t len);

#endif
