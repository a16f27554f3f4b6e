/* profile: a sampling profiler for process trees or cgroups (on-CPU and off-CPU) built on
 * perf_event_open, producing symbolized folded stacks.
 *
 * Two ways to choose what is sampled; everything after the events are open (rings, records,
 * symbolization, folded output) is shared:
 *
 * Per task (opts.pids): a sampling event (cpu-clock by default, a software event that works
 * without a PMU; `cycles` when asked and the PMU has it) at `hz` samples per second of each
 * thread's CPU time, PERF_SAMPLE_IP|TID|TIME|PERIOD|CALLCHAIN, kernel and user call chains
 * (frame pointers; with call_graph dwarf/auto also the user registers and stack: see enum
 * profile_callgraph). One event per (thread of the target trees at attach, online CPU), all with
 * inherit=1 so every thread and process created afterwards is followed; the events of one
 * CPU share one mmap ring buffer (PERF_EVENT_IOC_SET_OUTPUT), the standard perf record -p
 * layout (the kernel refuses to mmap inherited per-task events with cpu=-1). Blind spot:
 * every inherited event counts its own period, so a thread or process that runs less than one
 * period (1/hz of CPU) in all is never sampled -- a thread-per-connection server at hundreds of
 * connections, or short-lived forked children, give almost no samples while using a core.
 *
 * Per cgroup (opts.cgroup, what `perf record -a -G` does): one event per online CPU with
 * pid = an fd of the cgroup directory and PERF_FLAG_PID_CGROUP, inherit=0. The kernel runs
 * the event only while a task of the cgroup (or of a cgroup below it) is on that CPU, and its
 * period carries over from task to task, so many short-running tasks are sampled in
 * proportion to their CPU. Needs per-CPU events: root, CAP_PERFMON or
 * kernel.perf_event_paranoid <= 0 (-EACCES otherwise), and a directory of the hierarchy that
 * carries perf_event (cgroup v2 where perf_event is not bound to a v1 hierarchy): -EBADF
 * otherwise. opts.pids may be given too: they then only end the run when they have all exited.
 * Side-band records (PERF_RECORD_COMM, FORK) arrive for cgroup events as well (the kernel
 * filters them by the cgroup of the task that causes them), so exec and fork are followed.
 *
 * Off-CPU (opts.off_cpu): the sched:sched_switch tracepoint on the same tasks (or cgroup) with
 * call chains (sample_period 1: every switch-out) plus switch records (context_switch=1;
 * PERF_RECORD_SWITCH per task, PERF_RECORD_SWITCH_CPU_WIDE per cgroup): a switch-out at t_out
 * followed by the same thread's next switch-in at t_in counts t_in - t_out of blocked time
 * against the switch-out's stack. Switch-outs with no switch-in before the end (the thread
 * exited, or was still blocked) are not counted. When the tracepoint id cannot be read
 * (tracefs missing/unreadable) off-CPU is skipped with the reason in result.off_cpu_reason and
 * the on-CPU profile goes on.
 *
 * Stacks are symbolized after collection (symbols.h) against /proc/PID/maps snapshots taken
 * when a process is first seen (and again when it execs or samples land outside the
 * snapshot); a forked child shares its parent's snapshot until it execs (PERF_RECORD_FORK), so
 * processes that exit before the end, or before their maps could be read, still resolve.
 * Folded stacks are `comm;outermost;...;leaf`, kernel frames suffixed "_[k]".
 *
 * result.target_cpu_ns is the CPU the target used over the sampling window, measured apart
 * from the samples (per task: utime+stime of the trees from /proc, reaped children included;
 * per cgroup: cpu.stat usage_usec), so that samples * period can be checked against it; in
 * per-task mode result.note says so when the samples cover less than half of it. Per cgroup
 * the events are enabled after the first reading and disabled before the second, so every
 * sample lies inside that window (test hook: CTXLAB_PROFILE_ATTACH_DELAY_MS=N holds the
 * profiler N ms between opening the events and the first reading).
 *
 * Runs on the calling thread; not thread-safe. Returns 0 or -errno with err[] saying what
 * to do: -EOPNOTSUPP (event not supported here), -EACCES/-EPERM (perf_event_paranoid or
 * permissions), -ESRCH (no target thread left to attach to, or an empty cgroup without a
 * duration), -ENOENT / -EBADF (the cgroup path does not exist or is a cgroup of another
 * hierarchy / is not a cgroup directory).
 */
#ifndef CTXLAB_PROFILE_PROFILE_H
#define CTXLAB_PROFILE_PROFILE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "profile/folded.h"
#include "profile/pprof.h"

enum profile_event { PROFILE_EV_CPU_CLOCK, PROFILE_EV_CYCLES };

/* How user stacks are walked (perf's --call-graph names). FP: the kernel's frame-pointer
 * callchain. DWARF: each sample also carries the user registers and a copy of the top
 * stack_size bytes of the user stack (PERF_SAMPLE_REGS_USER | PERF_SAMPLE_STACK_USER), unwound
 * with libdwfl (unwind.h) while the rings are drained; the kernel part stays the kernel
 * callchain. AUTO: both are recorded; a sample whose frame-pointer chain lies wholly in
 * modules built with frame pointers (unwind_module_has_fp) keeps it, the others are unwound
 * from the copy. */
enum profile_callgraph { PROFILE_CG_AUTO = 0, PROFILE_CG_FP, PROFILE_CG_DWARF };

/* Unwind quality of the on-CPU user stacks (whatever the mode): a stack is complete when its
 * outermost frame is a thread's start (_start, __libc_start_main, __libc_start_call_main,
 * clone, clone3, start_thread) or main; truncated when DWARF unwinding needed stack above the
 * copy (a larger stack_size helps); unresolved otherwise (garbage frame-pointer walks, no
 * CFI, unwinding into an unknown address). worst: the binary where most incomplete stacks
 * end (their outermost frame's file). */
struct profile_unwind {
	uint64_t user_stacks, complete, truncated, unresolved;
	uint64_t by_dwarf, by_fp; /* how the user part of each sample was obtained */
	char worst[64];
	uint64_t worst_count;
	char nosym[256]; /* binaries with addresses but no symbols, ", "-separated, or "" */
};

#define PROFILE_MAX_THREADS 4096 /* threads attached at start; later ones follow by inherit */

struct profile_opts {
	const pid_t *pids;     /* roots: each with all its descendants and their threads */
	int npids;
	const char *cgroup;    /* or: a cgroup directory, sampled per CPU (see above); with pids
				* too, the pids only end the run. NULL = per-task mode */
	int hz;                /* 0 = 99 */
	enum profile_event event;
	int user_only;         /* no kernel samples or kernel frames */
	int off_cpu;
	enum profile_callgraph call_graph; /* default (0): auto */
	uint32_t stack_size;   /* dwarf/auto: bytes of user stack per sample; 0 = 8192 */
	uint64_t duration_ns;  /* 0 = until every root has exited, or without roots until the
				* cgroup is empty (or *stop) */
	volatile sig_atomic_t *stop; /* polled every 100 ms; NULL = none */
	pid_t focus_pid;       /* > 0: result.focus also gets the on-CPU samples of this process
				* alone (its threads, not its children; matched on the sample's pid,
				* as the kernel sees it), e.g. a server tree's root; 0 = none */
};

struct profile_result {
	struct folded on_cpu;   /* count = samples, ns = sampled CPU time (sum of periods) */
	struct folded focus;    /* the on_cpu samples of opts.focus_pid (empty without it) */
	struct folded off_cpu;  /* count = microseconds blocked, ns = nanoseconds blocked */
	uint64_t samples;       /* on-CPU samples recorded (= on_cpu.total) */
	uint64_t lost;          /* records the kernel dropped (ring buffer full) */
	uint64_t offcpu_switches;   /* matched switch-out/switch-in pairs */
	uint64_t offcpu_unmatched;  /* switch-outs with no switch-in before the end */
	uint64_t start_wall_ns, duration_ns;
	uint64_t period_ns;     /* the nominal sampling period, 1e9 / hz */
	int threads_attached, cpus; /* threads_attached: 0 in cgroup mode */
	int cgroup_mode;        /* 1: sampled per cgroup (opts.cgroup) */
	int target_cpu_ok;      /* 1: target_cpu_ns was measured */
	uint64_t target_cpu_ns; /* CPU the target used over the sampling window (see above) */
	int processes_seen;     /* distinct pids that produced samples */
	int kernel_stacks;      /* 1 when kernel frames were recorded */
	int off_cpu_ok;
	struct profile_unwind unwind;
	/* the same stacks with real locations, for pprof (pprof.h: loctab): frames after the
	 * root are indices into locs (address, function, file:line, mapping with build id) */
	struct folded on_cpu_loc, off_cpu_loc;
	struct pprof_loc *locs;
	size_t nlocs;
	struct pprof_map *maps;
	size_t nmaps;
	char off_cpu_reason[320]; /* why off-CPU was skipped (off_cpu requested and !off_cpu_ok) */
	char note[512];           /* degradations worth telling the user ("; "-separated), or "" */
};

int profile_run(const struct profile_opts *o, struct profile_result *res, char *err,
		size_t errlen);
void profile_result_release(struct profile_result *res);

/* Whether `event` can be opened for this process (1) or not (0, reason filled: "not
 * supported here (...)", "permission denied (...)"). Honours CTXLAB_PERF_NO_HW=1, which
 * makes hardware events unsupported (tests of the fallback). */
int profile_event_supported(enum profile_event ev, char *reason, size_t len);

/* Whether cgroup directory `path` can be sampled per cgroup by this process: opens (and
 * closes) a cpu-clock counting event on it on the first online CPU. 1, or 0 with reason filled
 * ("cannot open cgroup '...': ...", "'...' is not a cgroup of the perf_event hierarchy ...",
 * "per-CPU events not permitted ..."). For callers choosing between the modes. */
int profile_cgroup_usable(const char *path, char *reason, size_t len);

#endif
