/* profile_burn: a known workload for the profiler's tests (like `perf test -w noploop`).
 *
 *   profile_burn [SECONDS]          burns CPU for SECONDS (default 1.5) of wall time: 70% of
 *                                   it in burn_a, 30% in burn_b (the same loop, 7:3 iteration
 *                                   counts), both called from main
 *   profile_burn --fork [SECONDS]   the same, in a child process (main -> burn_child -> ...)
 *   profile_burn --sleep [SECONDS]  sleeps in nanosleep(2) 20 ms at a time, called from nap
 *                                   (an off-CPU workload)
 *   profile_burn --threads [SECONDS]  starts short-lived threads, 4 at a time, for SECONDS:
 *                                   each runs short_task once (burn_a 7 : burn_b 3, ~1-3 ms
 *                                   of CPU) and exits -- no thread ever runs one sampling
 *                                   period (10 ms at 99 Hz), like a thread-per-connection
 *                                   server with many connections
 *   profile_burn --forks [SECONDS]  the same with forked children (main -> spawn_forks ->
 *                                   short_task), each reaped before the next: children that
 *                                   are gone before a profiler could read their maps
 *
 * Functions are noinline and the project builds with frame pointers, so the call chains
 * are exact. Exits 0 (1 when a thread or process could not be started).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* noclone: at -O3 GCC clones these into burn_a.constprop.0, which the tests would not find */
#if defined(__GNUC__) && !defined(__clang__)
#define NOINLINE __attribute__((noinline, noclone))
#else
#define NOINLINE __attribute__((noinline))
#endif

#define ROUND_ITERS 1000000ULL /* one tenth of a round; a round is ~10-30 ms */
#define SHORT_ITERS 100000ULL  /* one tenth of a short task: ~1-3 ms in all */

volatile uint64_t burn_sink;

static inline __attribute__((always_inline)) uint64_t spin(uint64_t n, uint64_t x)
{
	for (uint64_t i = 0; i < n; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		__asm__ volatile("" : "+r"(x));
	}
	return x;
}

NOINLINE void burn_a(uint64_t n)
{
	burn_sink = spin(n, burn_sink + 1);
}

NOINLINE void burn_b(uint64_t n)
{
	burn_sink = spin(n, burn_sink + 3);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

NOINLINE static void burn_for(double seconds)
{
	double end = now_s() + seconds;
	while (now_s() < end) {
		burn_a(7 * ROUND_ITERS);
		burn_b(3 * ROUND_ITERS);
	}
}

NOINLINE void burn_child(double seconds)
{
	burn_for(seconds);
}

NOINLINE void short_task(void)
{
	burn_a(7 * SHORT_ITERS);
	burn_b(3 * SHORT_ITERS);
	__asm__ volatile("" ::: "memory"); /* no tail call: keep short_task in burn_b's stack */
}

static void *short_thread(void *arg)
{
	(void)arg;
	short_task();
	return NULL;
}

static int failed;

NOINLINE static void spawn_threads(double seconds)
{
	double end = now_s() + seconds;
	while (now_s() < end) {
		pthread_t t[4];
		int n = 0;
		for (int k = 0; k < 4; k++)
			if (!pthread_create(&t[n], NULL, short_thread, NULL))
				n++;
		if (!n) {
			failed = 1;
			return;
		}
		for (int k = 0; k < n; k++)
			pthread_join(t[k], NULL);
	}
}

NOINLINE static void spawn_forks(double seconds)
{
	double end = now_s() + seconds;
	while (now_s() < end) {
		pid_t pid = fork();
		if (pid < 0) {
			failed = 1;
			return;
		}
		if (pid == 0) {
			short_task();
			_exit(0);
		}
		int st;
		while (waitpid(pid, &st, 0) < 0)
			;
	}
}

NOINLINE void nap(double seconds)
{
	double end = now_s() + seconds;
	struct timespec ts = {0, 20 * 1000 * 1000};
	while (now_s() < end)
		nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
	const char *mode = "burn";
	int i = 1;
	if (argc > 1 && !strncmp(argv[1], "--", 2)) {
		mode = argv[1] + 2;
		i = 2;
	}
	double seconds = argc > i ? atof(argv[i]) : 1.5;
	if (seconds <= 0 || seconds > 60) {
		fprintf(stderr, "profile_burn: bad seconds '%s' (0 < s <= 60)\n", argv[i]);
		return 2;
	}
	if (!strcmp(mode, "burn")) {
		burn_for(seconds);
	} else if (!strcmp(mode, "fork")) {
		/* The profiler attaches by pid to the tree it lists, with inherit: children forked
		 * after the attach are followed, and so are those it lists. A child forked in
		 * between is missed (perf record -p has the same window). An -O3 build reaches
		 * this fork within the attach window (tests saw 0 samples); wait first, so the
		 * test checks inheritance and not that race. */
		nap(0.3);
		pid_t pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0) {
			burn_child(seconds);
			_exit(0);
		}
		int st;
		while (waitpid(pid, &st, 0) < 0)
			;
	} else if (!strcmp(mode, "sleep")) {
		nap(seconds);
	} else if (!strcmp(mode, "threads")) {
		spawn_threads(seconds);
	} else if (!strcmp(mode, "forks")) {
		spawn_forks(seconds);
	} else {
		fprintf(stderr, "profile_burn: unknown mode '%s' (burn, --fork, --sleep, --threads, "
			"--forks)\n", argv[1]);
		return 2;
	}
	return failed; /* not a tail call: main stays in the stacks */
}
