/* monitor_burn: a process tree with known CPU, for watch's integration tests and
 * bench/watch-overhead. Starts the monitor module's burn tree (see src/monitor/workload.h),
 * prints the root's pid on stdout, lets it burn, and when every burner is reaped prints the
 * root's getrusage truth as one JSON line; ends the tree when stdin closes (or at once with
 * --exit).
 *   monitor_burn [--children K] [--user-ms MS] [--sys-ms MS] [--stagger-ms MS] [--nested]
 *                [--idle N [--idle-tick-ms MS]] [--exit]
 * --idle-tick-ms: the N extra children wake every MS and burn ~20 us (a busy tree).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/clock.h"
#include "../../src/monitor/workload.c"

int main(int argc, char **argv)
{
	struct workload_tree_opts o = {0};
	int exit_now = 0;
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : "0";
		if (!strcmp(argv[i], "--children"))
			o.children = atoi(v), i++;
		else if (!strcmp(argv[i], "--user-ms"))
			o.user_ns = strtoull(v, NULL, 10) * NS_PER_MS, i++;
		else if (!strcmp(argv[i], "--sys-ms"))
			o.sys_ns = strtoull(v, NULL, 10) * NS_PER_MS, i++;
		else if (!strcmp(argv[i], "--stagger-ms"))
			o.stagger_ns = strtoull(v, NULL, 10) * NS_PER_MS, i++;
		else if (!strcmp(argv[i], "--idle"))
			o.idle = atoi(v), i++;
		else if (!strcmp(argv[i], "--idle-tick-ms"))
			o.idle_tick_ns = strtoull(v, NULL, 10) * NS_PER_MS, i++;
		else if (!strcmp(argv[i], "--nested"))
			o.nested = 1;
		else if (!strcmp(argv[i], "--exit"))
			exit_now = 1;
		else {
			fprintf(stderr, "monitor_burn: unknown option '%s'\n", argv[i]);
			return 2;
		}
	}
	struct workload_tree t;
	if (workload_tree_start(&o, &t))
		return 1;
	printf("%d\n", (int)t.pid);
	fflush(stdout);
	clock_sleep_ns(200 * NS_PER_MS); /* let the watcher take its baseline */
	workload_tree_go(&t);
	struct workload_truth tr;
	if (workload_tree_truth(&t, &tr, 120 * NS_PER_S) == 0) {
		/* and this process's own CPU: it is in the watched tree too (its start-up, the
		 * fork of the root: tens of ms in an ASan build) */
		struct rusage me;
		getrusage(RUSAGE_SELF, &me);
		printf("{\"children_user_s\": %.6f, \"children_sys_s\": %.6f, \"self_user_s\": %.6f, "
		       "\"self_sys_s\": %.6f, \"main_user_s\": %.6f, \"main_sys_s\": %.6f}\n",
		       tr.children_user_s, tr.children_sys_s, tr.self_user_s, tr.self_sys_s,
		       (double)me.ru_utime.tv_sec + me.ru_utime.tv_usec / 1e6,
		       (double)me.ru_stime.tv_sec + me.ru_stime.tv_usec / 1e6);
		fflush(stdout);
	}
	if (!exit_now) {
		char c;
		while (read(0, &c, 1) > 0)
			;
	}
	workload_tree_end(&t);
	return 0;
}
