/* monitor: measures a process tree (or a cgroup) correctly — the library behind `ctxlab watch`,
 * called in-process by the experiment runner.
 *
 *   struct monitor *m = monitor_start(&opts, err, sizeof err);   // baseline taken here
 *   ... monitor_sample(m, &s) every interval: figures over the interval since the last sample
 *   monitor_stop(m, &total);   // figures over the whole span from start, then frees m
 *
 * CPU covers every live process and thread of the tree plus children that exited in between
 * (cgroup accounting where available, else /proc walk + reaped-children times), in cores
 * (1.0 = one core busy). Context switches are summed over every thread. Figures never go
 * negative: a vanished or reused PID contributes what it had at its last read.
 * Not thread-safe: one thread drives a monitor. Returns 0 / -errno (err filled on start).
 *
 * Owned by the monitor module; fields may be added, none removed or renamed.
 */
#ifndef CTXLAB_MONITOR_MONITOR_H
#define CTXLAB_MONITOR_MONITOR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum monitor_method {
	MONITOR_CGROUP2,  /* cgroup v2 cpu.stat */
	MONITOR_CGROUP1,  /* cgroup v1 cpuacct */
	MONITOR_PROCWALK, /* /proc walk + reaped children */
};
const char *monitor_method_name(enum monitor_method m); /* "cgroup2" "cgroup1" "procwalk" */

struct monitor_opts {
	pid_t pid;               /* root of the tree (with all descendants, found each sample) */
	const char *cgroup;      /* or: a cgroup directory to account (v1 or v2) */
	int perf_counters;       /* 1: open perf_event counters (software; hardware where supported) */
};

struct monitor_sample {
	double interval_s;               /* wall time covered */
	double cpu_user_cores, cpu_sys_cores, cpu_total_cores;
	double ctxsw_vol_per_s, ctxsw_invol_per_s;
	uint64_t ctxsw_vol, ctxsw_invol; /* counts over the interval */
	double cpu_user_s, cpu_sys_s;    /* CPU seconds over the interval */
	int procs, threads, fds, sockets;
	uint64_t rss_bytes, pss_bytes;
	uint64_t minflt, majflt;         /* over the interval */
	double runq_wait_s;              /* schedstat wait over the interval */
	enum monitor_method method;
	/* perf_event counters over the interval; *_ok = 0 when not supported (show "n/a") */
	int hw_ok;
	uint64_t cycles, instructions, cache_misses, dtlb_misses;
	int sw_ok;
	uint64_t task_clock_ns, perf_ctxsw, cpu_migrations, page_faults;
	int syscalls_ok;
	uint64_t syscalls;
	char na_reason[128];             /* why hardware counters are n/a */
};

struct monitor;
struct monitor *monitor_start(const struct monitor_opts *opts, char *err, size_t errlen);
int monitor_sample(struct monitor *m, struct monitor_sample *s);
int monitor_stop(struct monitor *m, struct monitor_sample *total); /* frees m; total may be NULL */

#endif
