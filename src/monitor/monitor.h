/* monitor: measures a process tree (or a cgroup) correctly — the library behind `ctxlab watch`,
 * called in-process by the experiment runner.
 *
 *   struct monitor *m = monitor_start(&opts, err, sizeof err);   // baseline taken here
 *   ... monitor_sample(m, &s) every interval: figures over the interval since the last sample
 *   monitor_stop(m, &total);   // figures over the whole span from start, then frees m
 *
 * CPU covers every live process and thread of the tree plus children that exited in between
 * (cgroup accounting where available, else /proc walk + reaped-children times), in cores
 * (1.0 = one core busy). Context switches are summed over every thread, live or exited: a
 * task that exits is credited with its final counts from the kernel's taskstats exit event
 * (root, CONFIG_TASKSTATS), including tasks born and gone between two samples; without it,
 * only what the walks saw while the tasks lived. Figures never go
 * negative: a vanished or reused PID contributes what it had at its last read.
 * Not thread-safe: one thread drives a monitor. Returns 0 / -errno (err filled on start).
 *
 * Owned by the monitor module; fields may be added, none removed or renamed.
 */
#ifndef CTXLAB_MONITOR_MONITOR_H
#define CTXLAB_MONITOR_MONITOR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
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
	/* added by the monitor module; zero = the default */
	const char *name_regex;  /* or: every process whose comm matches (POSIX ERE), with its tree */
	const char *cpu_cgroup;  /* with pid: a cgroup holding exactly this tree, used for CPU
				  * accounting (what watch does for '-- CMD'); per-process figures
				  * still come from the tree walk */
	int top_n;               /* > 0: sample->tasks lists the N busiest processes (or threads) */
	int threads;             /* 1: the breakdown is per thread, not per process */
	int per_cpu;             /* 1: sample->per_cpu holds the /proc/stat breakdown of each CPU */
	int no_pss;              /* 1: skip smaps_rollup (PSS; the costliest read per process) */
	int no_fds;              /* 1: skip counting fds and sockets */
	int from_birth;          /* 1: the caller started the tree (and cpu_cgroup) just now: count
				  * everything it did since birth, not since monitor_start */
};

/* top's %Cpu(s) line over the interval, in percent of the CPUs' time (system-wide). */
struct monitor_syscpu {
	double us, sy, ni, id, wa, hi, si, st;
};

/* One process (or thread) in the breakdown, over the interval. */
struct monitor_task {
	pid_t pid, tid;          /* tid == 0 for a whole process */
	char comm[16];
	double cpu_user_cores, cpu_sys_cores, cpu_total_cores;
	uint64_t ctxsw_vol, ctxsw_invol;
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
	/* added by the monitor module */
	double cpu_pct;                  /* cpu_total_cores / cpus_allowed * 100 */
	int cpus_allowed;                /* CPUs the root may run on (online CPUs for a cgroup) */
	double ipc;                      /* instructions / cycles (hw_ok only) */
	char sw_reason[128], syscalls_reason[320]; /* why the software / syscall counters are n/a */
	char method_reason[160];         /* why this CPU accounting method */
	int exited;                      /* 1: the target is gone; this is the last sample */
	int gone;                        /* processes that exited during the interval */
	int left;                        /* processes that left the tree alive (reparented away) */
	struct monitor_syscpu sys;       /* system-wide breakdown */
	int ncpus;                       /* rows in per_cpu (opts.per_cpu) */
	const struct monitor_syscpu *per_cpu; /* owned by the monitor, valid until the next call */
	int ntasks;                      /* rows in tasks (opts.top_n) */
	const struct monitor_task *tasks;     /* busiest first; owned by the monitor, valid until
					       * the next call */
	char source[160];                /* where per-process figures come from: "taskstats"
					  * (one netlink request per process) or "/proc (why)" */
	int perf_per_cgroup;             /* 1: the perf counters count the target's cgroup (v2) per
					  * CPU; 0: per task of the tree, inherited (see
					  * docs/metrics.md) */
	int slow_every;                  /* PSS, fds and sockets are refreshed every slow_every
					  * intervals (1 = every one; more when they would cost
					  * over 0.3% of a core); new processes are read at once */
	uint64_t ts_batched, ts_single;  /* taskstats per-process requests over the interval:
					  * answered from a batch (many requests in one message,
					  * see tstats_get_many) / asked alone */
	uint64_t kids_skipped;           /* children files not read over the interval: the
					  * process had none at its last read and no fork event
					  * names it since (fork events: root, Linux >= 6.6) */
};

struct monitor;
struct monitor *monitor_start(const struct monitor_opts *opts, char *err, size_t errlen);
int monitor_sample(struct monitor *m, struct monitor_sample *s);
int monitor_stop(struct monitor *m, struct monitor_sample *total); /* frees m; total may be NULL */
/* Starts the span over now: one sample is taken (and dropped), and monitor_stop's total (CPU,
 * switches, rates) and its counts of processes gone or left cover only what comes after; its
 * peaks (processes, threads, fds, memory: refreshed on slow rounds only) keep what was seen. For a caller
 * whose baseline walk (monitor_start: long on a tree of hundreds of processes) must not eat
 * into a measured window: start during a warm-up, rebase at the window's start. 0, or
 * -EINVAL with opts.from_birth (whose span is the whole life), or monitor_sample's error. */
int monitor_rebase(struct monitor *m);
/* In `total`, counts and CPU cover the whole span; procs, threads, fds, sockets, rss and pss are
 * the largest values seen in any sample. */

/* The caller reaped the tree's root (wait4): `ru` is that child's rusage, which includes every
 * descendant reaped inside the tree. The tree's CPU (procwalk method) is raised to at least
 * ru minus the root's children's times at start, so the last child's tail is not lost; with
 * opts.from_birth, the context switches are raised to at least ru_nvcsw / ru_nivcsw.
 * Call before the last monitor_sample. */
void monitor_reaped(struct monitor *m, const struct rusage *ru);

/* Which CPU method a target would get, without starting: for watch's report. */
enum monitor_method monitor_method_of(const struct monitor *m);

/* cgroups of ctxlab's own, so that a command watch starts is accounted from its first instant:
 * create (cgroup v2 first: the unified hierarchy, /sys/fs/cgroup or /sys/fs/cgroup/unified; else
 * v1 cpuacct) a fresh directory named ctxlab-<tag>-<pid>, path written into path[len]. One
 * that exists already is never reused: removed and made afresh when empty, else an error.
 * 0, or -errno with err saying why (the caller falls back to the /proc walk).
 * `want`: 0 = best available, 2 = v2 only, 1 = v1 only. *version is set to 2 or 1. */
int monitor_cgroup_create(int want, const char *tag, char *path, size_t len, int *version,
			  char *err, size_t errlen);
/* Removes the cgroups ctxlab-<tag>-<pid> (any tag) that a killed ctxlab left behind: those
 * at the root and in the caller's cgroup of either hierarchy whose pid no longer exists and
 * which hold no process (one that still holds processes is kept and named in the note).
 * Returns how many were removed; note[len] says which ("" when nothing was found). */
int monitor_cgroup_sweep(char *note, size_t len);
/* Moves process pid (0 = the caller) into the cgroup. 0 / -errno. */
int monitor_cgroup_join(const char *path, pid_t pid);
/* Moves the caller back out: into the parent directory of path, which is the cgroup the caller
 * was in at monitor_cgroup_create (the new cgroup is made under it, or under the hierarchy's
 * root when that is not allowed). 0 / -errno. */
int monitor_cgroup_leave(const char *path);
/* Removes the directory (its processes must be gone; retries briefly). 0 / -errno. */
int monitor_cgroup_remove(const char *path);

#endif
