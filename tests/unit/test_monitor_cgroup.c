/* cgroups of ctxlab's own (issue 9, clean-up): a group that exists already under our name is
 * never reused silently (an empty one is made afresh, one holding processes is refused), and
 * monitor_cgroup_sweep removes the empty groups of dead owners and only those.
 * Needs root and a writable cgroup hierarchy: skipped otherwise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "monitor/monitor.h"

static pid_t dead_pid(void)
{
	pid_t p = fork();
	if (p == 0)
		_exit(0);
	waitpid(p, NULL, 0);
	return p;
}

static int exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static void test_existing_group_not_reused(void **state)
{
	char path[512], err[512];
	int v;
	if (monitor_cgroup_create(0, "unit", path, sizeof path, &v, err, sizeof err))
		skip();
	/* a process in "our" group (as if left by an earlier holder of our pid) */
	pid_t kid = fork();
	if (kid == 0) {
		pause();
		_exit(0);
	}
	assert_true(kid > 0);
	assert_int_equal(monitor_cgroup_join(path, kid), 0);
	char again[512];
	int r = monitor_cgroup_create(v, "unit", again, sizeof again, &v, err, sizeof err);
	assert_true(r < 0); /* not reused with the process in it */
	assert_non_null(strstr(err, "exists already"));
	assert_non_null(strstr(err, "not reused"));
	kill(kid, SIGKILL);
	waitpid(kid, NULL, 0);
	/* empty now: made afresh */
	for (int i = 0; i < 100 && r; i++) {
		r = monitor_cgroup_create(v, "unit", again, sizeof again, &v, err, sizeof err);
		if (r)
			usleep(10000); /* the killed child is still being released */
	}
	assert_int_equal(r, 0);
	assert_string_equal(again, path);
	char procs[600];
	snprintf(procs, sizeof procs, "%s/cgroup.procs", path);
	FILE *f = fopen(procs, "r");
	assert_non_null(f);
	assert_int_equal(fgetc(f), EOF);
	fclose(f);
	assert_int_equal(monitor_cgroup_remove(path), 0);
}

static void test_sweep_dead_owners_only(void **state)
{
	char mine[512], err[512];
	int v;
	if (monitor_cgroup_create(0, "unit", mine, sizeof mine, &v, err, sizeof err))
		skip();
	/* next to ours: one of a dead pid (swept), one of a live other process (kept) */
	char parent[512], stale[600], live[600];
	snprintf(parent, sizeof parent, "%s", mine);
	*strrchr(parent, '/') = 0;
	pid_t gone = dead_pid();
	snprintf(stale, sizeof stale, "%s/ctxlab-run-%d", parent, (int)gone);
	assert_int_equal(mkdir(stale, 0755), 0);
	snprintf(live, sizeof live, "%s/ctxlab-run-%d", parent, (int)getppid());
	int made_live = mkdir(live, 0755) == 0;
	char note[2048];
	int n = monitor_cgroup_sweep(note, sizeof note);
	assert_true(n >= 1);
	assert_false(exists(stale));
	assert_non_null(strstr(note, stale));
	assert_true(exists(mine)); /* our own pid: alive */
	if (made_live) {
		assert_true(exists(live));
		rmdir(live);
	}
	/* a dead owner's group that still holds a process: kept, named in the note */
	pid_t kid = fork();
	if (kid == 0) {
		pause();
		_exit(0);
	}
	gone = dead_pid();
	snprintf(stale, sizeof stale, "%s/ctxlab-run-%d", parent, (int)gone);
	assert_int_equal(mkdir(stale, 0755), 0);
	assert_int_equal(monitor_cgroup_join(stale, kid), 0);
	monitor_cgroup_sweep(note, sizeof note);
	assert_true(exists(stale));
	assert_non_null(strstr(note, "holds processes"));
	kill(kid, SIGKILL);
	waitpid(kid, NULL, 0);
	assert_int_equal(monitor_cgroup_remove(stale), 0);
	assert_int_equal(monitor_cgroup_remove(mine), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_existing_group_not_reused),
		cmocka_unit_test(test_sweep_dead_owners_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
