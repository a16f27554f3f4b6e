/* perfev: perf_event counters over a process tree (monitor-internal).
 *
 * Counters are opened per thread with inherit=1, so every process and thread the tree
 * creates afterwards is counted, live or exited (read() on an inherited event sums its
 * children); an exited task's inherited counts stop when the kernel detaches its counters,
 * before the end of its exit. Or per cgroup and CPU (perfev_attach_cgroup), which has no
 * such gap. Software events always (task-clock, context-switches, cpu-migrations,
 * page-faults); raw_syscalls:sys_enter when tracefs is readable; hardware events (cycles,
 * instructions, cache-misses, dTLB-load-misses) where the PMU supports them. What is not
 * available is reported with a reason, never as zero.
 * Each thread's counters are opened as two groups (software + syscalls led by task-clock,
 * hardware led by cycles, PERF_FORMAT_GROUP), so a read costs one read(2) per group per
 * thread, not one per counter; an event the kernel will not group is opened on its own.
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
	int cg_fd;                /* >= 0: per-cgroup counters (perfev_attach_cgroup): the rows
				   * below are CPUs, not threads */
	int nthreads;
	int *fds;                 /* [nthreads * PERFEV_N], -1 when not open */
	uint64_t *ids;            /* [nthreads * PERFEV_N]: PERF_EVENT_IOC_ID of each fd */
	int grouped[PERFEV_N];    /* 1: read through its group leader's PERF_FORMAT_GROUP read */
	pid_t *tids;              /* [nthreads], ascending: the thread each row of fds counts */
	uint64_t *tval;           /* [nthreads * PERFEV_N]: each thread's values at its last read */
	unsigned char *quiet;     /* [nthreads]: perfev_quiet marks for the next read */
	int ok[PERFEV_N];         /* 1 when the event counts for the tree */
	uint64_t last[PERFEV_N];  /* values at the previous read */
	uint64_t base[PERFEV_N];  /* values at attach */
	char hw_reason[128];      /* why hardware events are n/a */
	char sc_reason[320];      /* why the syscall count is n/a */
	char sw_reason[128];
};

/* Opens counters on every thread of the given pids (their tasks, listed from /proc), inherit=1.
 * Unavailable events are marked !ok with a reason; returns 0 when at least the software
 * events count, else -errno (reasons filled). */
int perfev_attach(struct perfev *p, const pid_t *pids, int npids);
/* Or: counters of every task in cgroup directory cgdir, one per CPU (PERF_FLAG_PID_CGROUP, like
 * perf stat -G): processes of any life span count in full, with no per-thread limit. Needs
 * cgroup v2 (or a v1 perf_event hierarchy) and CPU-wide counters (root, or
 * perf_event_paranoid <= 0). Returns like perfev_attach; on failure nothing stays open. */
int perfev_attach_cgroup(struct perfev *p, const char *cgdir);
/* Reads the tree's totals into cur[PERFEV_N] (cumulative since attach). Threads marked with
 * perfev_quiet are not read: their values at their last read are used; the marks are cleared. */
void perfev_read(struct perfev *p, uint64_t *cur);
/* Whether thread tid has counters of its own (was a thread of the tree at attach): 1 / 0. */
int perfev_attached(const struct perfev *p, pid_t tid);
/* The caller has proved that thread tid's counters cannot have changed since the previous
 * perfev_read: the thread has not run since, and no task inheriting its counters has run,
 * been born, exited or gone out of sight. The next perfev_read skips its read(2)s.
 * Returns 1 when tid has counters (marked), else 0. */
int perfev_quiet(struct perfev *p, pid_t tid);
/* Clears every perfev_quiet mark (the proof failed for this round). */
void perfev_unquiet(struct perfev *p);
void perfev_close(struct perfev *p);

/* Whether hardware counters open on this machine: 1, or 0 with a reason. */
int perfev_hw_supported(char *reason, size_t len);

#endif
