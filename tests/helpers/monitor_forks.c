/* monitor_forks: a tree of many short-lived processes with known context switches, for the
 * monitor's switch counts (watch's integration tests). Prints its pid, waits (the watcher
 * takes its baseline), then forks `children` processes, `par` at a time; each sleeps `sleeps`
 * times (voluntary switches) and burns between sleeps (involuntary ones when the CPUs are
 * shared); --nested: each child does its work in a grandchild it forks and reaps (a chain
 * that exits child first), --threads: in a thread it starts and joins. When all are reaped,
 * prints the truth as one JSON line: its own switches since the start (RUSAGE_SELF) plus
 * its reaped children's (RUSAGE_CHILDREN), and exits.
 *   monitor_forks [--children N] [--par P] [--sleeps K] [--sleep-us U] [--burn-us B]
 *                 [--wait-ms W] [--nested] [--threads]
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int sleeps = 5, sleep_us = 300, burn_us = 300;

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void *work(void *arg)
{
	(void)arg;
	volatile uint64_t x = 0;
	for (int i = 0; i < sleeps; i++) {
		uint64_t end = now_us() + (uint64_t)burn_us;
		while (now_us() < end)
			x++;
		struct timespec ts = {0, sleep_us * 1000L};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static void child(int nested, int threads)
{
	if (nested) {
		pid_t g = fork();
		if (g == 0) {
			work(NULL);
			_exit(0);
		}
		if (g > 0)
			waitpid(g, NULL, 0);
	} else if (threads) {
		pthread_t t;
		if (!pthread_create(&t, NULL, work, NULL))
			pthread_join(t, NULL);
	} else {
		work(NULL);
	}
	_exit(0);
}

int main(int argc, char **argv)
{
	int children = 200, par = 4, wait_ms = 300, nested = 0, threads = 0;
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : "0";
		if (!strcmp(argv[i], "--children"))
			children = atoi(v), i++;
		else if (!strcmp(argv[i], "--par"))
			par = atoi(v), i++;
		else if (!strcmp(argv[i], "--sleeps"))
			sleeps = atoi(v), i++;
		else if (!strcmp(argv[i], "--sleep-us"))
			sleep_us = atoi(v), i++;
		else if (!strcmp(argv[i], "--burn-us"))
			burn_us = atoi(v), i++;
		else if (!strcmp(argv[i], "--wait-ms"))
			wait_ms = atoi(v), i++;
		else if (!strcmp(argv[i], "--nested"))
			nested = 1;
		else if (!strcmp(argv[i], "--threads"))
			threads = 1;
		else {
			fprintf(stderr, "monitor_forks: unknown option '%s'\n", argv[i]);
			return 2;
		}
	}
	if (par < 1)
		par = 1;
	printf("%d\n", (int)getpid());
	fflush(stdout);
	struct timespec w = {wait_ms / 1000, (wait_ms % 1000) * 1000000L};
	nanosleep(&w, NULL);
	struct rusage s0, s1, c1;
	getrusage(RUSAGE_SELF, &s0);
	int running = 0;
	for (int i = 0; i < children; i++) {
		if (running >= par) {
			wait(NULL);
			running--;
		}
		pid_t k = fork();
		if (k == 0)
			child(nested, threads);
		if (k > 0)
			running++;
	}
	while (running > 0 && wait(NULL) > 0)
		running--;
	getrusage(RUSAGE_SELF, &s1);
	getrusage(RUSAGE_CHILDREN, &c1);
	printf("{\"truth_vol\": %ld, \"truth_invol\": %ld, \"self_vol\": %ld, \"self_invol\": %ld}\n",
	       s1.ru_nvcsw - s0.ru_nvcsw + c1.ru_nvcsw, s1.ru_nivcsw - s0.ru_nivcsw + c1.ru_nivcsw,
	       s1.ru_nvcsw - s0.ru_nvcsw, s1.ru_nivcsw - s0.ru_nivcsw);
	fflush(stdout);
	return 0;
}
