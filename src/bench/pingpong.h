/* pingpong: context-switch micro-benchmarks — kernel vs user-space switching.
 *
 * A pair is two sides, A and B, handing a message back and forth: A sends `msg_bytes`, B
 * receives them all and sends `msg_bytes` back, A receives them: one round trip. Between
 * receiving and sending, each side touches its own working set (`ws_bytes`, every
 * `stride_bytes`-th byte incremented), to show what a switch does to the caches.
 *
 * Modes (how the sides run and wait):
 *   pipe-proc     two processes, two pipes (like `perf bench sched pipe`)
 *   pipe-thread   two threads, two pipes
 *   unix-thread   two threads, one AF_UNIX SOCK_STREAM socketpair, blocking
 *   unix-inline   one thread writes and reads both ends of a socketpair: the same 4 syscalls
 *                 per round trip as unix-thread, without any switch (the baseline)
 *   futex-thread  two threads, a shared buffer and a token handed over with futex wait/wake
 *   coro          two coroutines handing a shared buffer over through a tiny run queue
 *                 (pure user-space switch, no syscall)
 *   coro-unix     the coroutines of a pair do nonblocking socketpair ping-pong under a tiny
 *                 event loop: a side reads only once its peer has written (no epoll, no
 *                 EAGAIN expected — counted in `would_block`), the async version of unix-thread
 * With `pairs` > 1: the two-sided modes run 2×pairs threads (pipe-proc: 2×pairs processes);
 * unix-inline, coro and coro-unix run every pair in the one calling thread, interleaved.
 *
 * Placement (`pin`): same = both sides of pair i on CPU cpus[i % n]; split = side A on
 * cpus[2i % n], side B on cpus[(2i+1) % n] (needs 2 CPUs); none = affinity left alone. `cpus`
 * is the calling thread's allowed set at the call. Single-thread modes pin the calling thread
 * to the CPU of pair 0's side A for the run and restore its affinity afterwards.
 *
 * Counters: context switches and CPU time come from getrusage(2): RUSAGE_SELF (all threads of
 * the process) plus, for pipe-proc, RUSAGE_CHILDREN (the reaped side processes), each as a
 * difference across the run. They include the few switches of starting and reaping the
 * sides (a handful per run, not per round trip). Elapsed time runs from the release of the
 * start gate to the last side finishing its last round trip.
 *
 * Threads: pingpong_run may be called from any thread, one run at a time per thread; it
 * allocates (threads, buffers, stacks) before the timed section, never inside it.
 */
#ifndef CTXLAB_BENCH_PINGPONG_H
#define CTXLAB_BENCH_PINGPONG_H

#include <stddef.h>
#include <stdint.h>

enum pingpong_mode {
	PINGPONG_PIPE_PROC,
	PINGPONG_PIPE_THREAD,
	PINGPONG_UNIX_THREAD,
	PINGPONG_UNIX_INLINE,
	PINGPONG_FUTEX_THREAD,
	PINGPONG_CORO,
	PINGPONG_CORO_UNIX,
	PINGPONG_NMODES
};

enum pingpong_pin { PINGPONG_PIN_NONE, PINGPONG_PIN_SAME, PINGPONG_PIN_SPLIT };

#define PINGPONG_MAX_PAIRS 256
#define PINGPONG_MAX_MSG_BYTES (16u << 20)

struct pingpong_opts {
	enum pingpong_mode mode;
	uint64_t rounds;        /* round trips per pair, >= 1 */
	enum pingpong_pin pin;
	int pairs;              /* 1..PINGPONG_MAX_PAIRS */
	size_t msg_bytes;       /* 1..PINGPONG_MAX_MSG_BYTES */
	size_t ws_bytes;        /* working set per side; 0 = none */
	size_t stride_bytes;    /* >= 1 when ws_bytes > 0 */
};

struct pingpong_result {
	uint64_t round_trips;   /* completed, all pairs (= rounds × pairs) */
	uint64_t messages;      /* messages fully received, both directions, all pairs */
	uint64_t would_block;   /* coro-unix: reads/writes that returned EAGAIN */
	uint64_t elapsed_ns;
	uint64_t ctxsw_vol, ctxsw_invol; /* getrusage deltas (see above) */
	uint64_t user_ns, sys_ns;
	int threads;            /* kernel tasks that ran sides (threads or processes) */
	/* placement of pair 0, read back after the run: the CPU each side last ran on
	 * (sched_getcpu), -1 when unknown; affinity_ok = every pinned side read its affinity
	 * back (sched_getaffinity) equal to the single CPU it asked for (1 when pin = none) */
	int cpu_a, cpu_b;
	int affinity_ok;
	char placement[96];     /* e.g. "A:cpu0 B:cpu0", "A:cpu0 B:cpu1", "1 thread: cpu0", "unpinned" */
	uint64_t ws_sum;        /* sum of working-set bytes at the end (keeps the touches real) */
	/* coro, coro-unix: how the run queue handed over. direct = a waiting side switched
	 * straight to the queue's head (coro_transfer, one switch); via_loop = the scheduler loop
	 * on the thread's stack resumed the head (the start, or after a side ended: two switches
	 * counting the yield to it). 0 for the other modes. */
	uint64_t handoffs_direct, handoffs_via_loop;
};

/* "pipe-proc" ... "coro-unix"; NULL for an out-of-range mode. */
const char *pingpong_mode_name(enum pingpong_mode m);
/* Mode by name: the enum value, or -1. */
int pingpong_mode_parse(const char *name);
const char *pingpong_pin_name(enum pingpong_pin p);
int pingpong_pin_parse(const char *name); /* enum value or -1 */
/* 1 when a round trip is two switches between two parties (every mode but unix-inline). */
int pingpong_mode_switches(enum pingpong_mode m);

/* Runs one measurement. 0, or -errno with a message in err (invalid options: -EINVAL;
 * --pin split with one CPU: -EINVAL; a side failed: -EIO). r is filled on success. */
int pingpong_run(const struct pingpong_opts *o, struct pingpong_result *r, char *err,
		 size_t errlen);

/* Warm-up and sizing: runs o (its `rounds` ignored) with growing round counts until a run
 * takes at least target_ns / 20 (and at least 20 ms), then stores in *rounds the count
 * that would take about target_ns (at least 100). 0 or -errno as pingpong_run. */
int pingpong_calibrate(const struct pingpong_opts *o, uint64_t target_ns, uint64_t *rounds,
		       char *err, size_t errlen);

#endif
