/* profile sampler: profiles the known workload tests/helpers/profile_burn (70% of its CPU in
 * burn_a, 30% in burn_b, both under main) and checks the shares, the stacks, that the folded
 * counts add up to the samples, that a forked child is followed, the off-CPU profile of a
 * sleeper, and the hardware-event fallback. Skips when perf_event_open is not permitted. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/clock.h"
#include "core/spawn.h"
#include "profile/profile.h"

static char burn_path[PATH_MAX + 32];

static int find_helper(void)
{
	char self[PATH_MAX];
	const char *env = getenv("CTXLAB");
	ssize_t n = env ? (ssize_t)snprintf(self, sizeof self, "%s", env)
			: readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		return -1;
	self[n] = 0;
	char *slash = strrchr(self, '/');
	if (!slash)
		return -1;
	*slash = 0;
	snprintf(burn_path, sizeof burn_path, "%s/profile_burn", self);
	return access(burn_path, X_OK);
}

static void skip_unless_permitted(void)
{
	char reason[256];
	if (find_helper() < 0) {
		print_message("SKIP: helper profile_burn not built next to the test\n");
		skip();
	}
	if (!profile_event_supported(PROFILE_EV_CPU_CLOCK, reason, sizeof reason)) {
		print_message("SKIP: cpu-clock sampling %s\n", reason);
		skip();
	}
}

/* Runs profile_burn ARGS under the profiler. */
static int run(const char *mode, const char *secs, struct profile_opts *po,
	       struct profile_result *res, char *err, size_t errlen)
{
	const char *argv[4] = {burn_path, mode ? mode : secs, mode ? secs : NULL, NULL};
	struct spawn_opts so = {.argv = argv, .stderr_fd = -1, .stdin_null = 1};
	struct spawn_child child;
	spawn_guard_init();
	int r = spawn_start(&so, &child);
	assert_int_equal(r, 0);
	pid_t root = child.keeper;
	po->pids = &root;
	po->npids = 1;
	r = profile_run(po, res, err, errlen);
	if (spawn_wait(&child, 10 * (int64_t)NS_PER_S) != 0)
		spawn_stop(&child, 0);
	return r;
}

static uint64_t count_with(const struct folded *f, const char *frame, const char *also)
{
	uint64_t n = 0;
	for (size_t i = 0; i < f->n; i++) {
		const char *s = f->e[i].stack;
		size_t fl = strlen(frame);
		const char *p = strstr(s, frame);
		/* a whole frame: delimited by ';' or the ends */
		while (p && !((p == s || p[-1] == ';') && (p[fl] == ';' || p[fl] == 0)))
			p = strstr(p + 1, frame);
		if (p && (!also || strstr(s, also)))
			n += f->e[i].count;
	}
	return n;
}

static void check_burn_shares(const struct profile_result *res, const char *who)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < res->on_cpu.n; i++)
		sum += res->on_cpu.e[i].count;
	assert_int_equal(sum, res->samples);
	assert_int_equal(res->on_cpu.total, res->samples);
	uint64_t a = count_with(&res->on_cpu, "burn_a", ";main;");
	uint64_t b = count_with(&res->on_cpu, "burn_b", ";main;");
	double pa = 100.0 * (double)a / (double)res->samples;
	double pb = 100.0 * (double)b / (double)res->samples;
	print_message("%s: %llu samples, burn_a %.1f%%, burn_b %.1f%% (with main in the stack)\n",
		      who, (unsigned long long)res->samples, pa, pb);
	assert_true(res->samples >= 50);
	assert_true(pa >= 60 && pa <= 80);
	assert_true(pb >= 20 && pb <= 40);
	/* every stack starts with the process name */
	for (size_t i = 0; i < res->on_cpu.n; i++)
		if (strncmp(res->on_cpu.e[i].stack, "profile_burn;", 13))
			fail_msg("stack not under profile_burn: %s", res->on_cpu.e[i].stack);
}

static void test_burn(void **state)
{
	(void)state;
	skip_unless_permitted();
	struct profile_opts po = {.hz = 499};
	struct profile_result res;
	char err[512] = "";
	int r = run(NULL, "1.5", &po, &res, err, sizeof err);
	if (r)
		fail_msg("profile_run: %d %s", r, err);
	check_burn_shares(&res, "burn");
	assert_true(res.threads_attached >= 2); /* keeper + program */
	assert_true(res.on_cpu.total_ns > 0);
	profile_result_release(&res);
}

static void test_fork_followed(void **state)
{
	(void)state;
	skip_unless_permitted();
	struct profile_opts po = {.hz = 499, .user_only = 1};
	struct profile_result res;
	char err[512] = "";
	int r = run("--fork", "1.5", &po, &res, err, sizeof err);
	if (r)
		fail_msg("profile_run: %d %s", r, err);
	/* only the child burns (the parent waits): these samples are the child's */
	check_burn_shares(&res, "fork");
	/* user-only: no kernel frame anywhere */
	for (size_t i = 0; i < res.on_cpu.n; i++)
		assert_null(strstr(res.on_cpu.e[i].stack, "_[k]"));
	profile_result_release(&res);
}

static void test_offcpu_sleep(void **state)
{
	(void)state;
	skip_unless_permitted();
	struct profile_opts po = {.off_cpu = 1};
	struct profile_result res;
	char err[512] = "";
	int r = run("--sleep", "1", &po, &res, err, sizeof err);
	if (r)
		fail_msg("profile_run: %d %s", r, err);
	if (!res.off_cpu_ok) {
		print_message("SKIP: off-CPU unavailable: %s\n", res.off_cpu_reason);
		profile_result_release(&res);
		skip();
	}
	uint64_t ns = 0;
	for (size_t i = 0; i < res.off_cpu.n; i++)
		if (strstr(res.off_cpu.e[i].stack, "nanosleep"))
			ns += res.off_cpu.e[i].ns;
	print_message("off-CPU: %.3fs blocked in nanosleep stacks of %.3fs total, %llu switches\n",
		      (double)ns / 1e9, (double)res.off_cpu.total_ns / 1e9,
		      (unsigned long long)res.offcpu_switches);
	/* the helper sleeps ~1 s in 20 ms naps: most of it must be seen, in nanosleep */
	assert_true(ns >= 600 * NS_PER_MS && ns <= 1500 * NS_PER_MS);
	assert_true(res.offcpu_switches >= 20);
	assert_true(count_with(&res.off_cpu, "main", NULL) > 0);
	profile_result_release(&res);
}

static void test_cycles_fallback(void **state)
{
	(void)state;
	skip_unless_permitted();
	char reason[256];
	setenv("CTXLAB_PERF_NO_HW", "1", 1);
	assert_int_equal(profile_event_supported(PROFILE_EV_CYCLES, reason, sizeof reason), 0);
	assert_non_null(strstr(reason, "not supported here"));
	struct profile_opts po = {.event = PROFILE_EV_CYCLES};
	struct profile_result res;
	char err[512] = "";
	pid_t self = getpid();
	po.pids = &self;
	po.npids = 1;
	assert_int_equal(profile_run(&po, &res, err, sizeof err), -EOPNOTSUPP);
	assert_non_null(strstr(err, "not supported here"));
	assert_non_null(strstr(err, "cpu-clock"));
	unsetenv("CTXLAB_PERF_NO_HW");
	/* on this machine (no PMU) the real probe says the same; where there is a PMU it works */
	if (!profile_event_supported(PROFILE_EV_CYCLES, reason, sizeof reason))
		assert_non_null(strstr(reason, "not supported here"));
	/* and cpu-clock works regardless */
	assert_int_equal(profile_event_supported(PROFILE_EV_CPU_CLOCK, reason, sizeof reason), 1);
}

static void test_no_target(void **state)
{
	(void)state;
	struct profile_opts po = {0};
	struct profile_result res;
	char err[256];
	pid_t gone = 0x7ffffff0;
	po.pids = &gone;
	po.npids = 1;
	assert_int_equal(profile_run(&po, &res, err, sizeof err), -ESRCH);
	assert_non_null(strstr(err, "no process"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burn),           cmocka_unit_test(test_fork_followed),
		cmocka_unit_test(test_offcpu_sleep),   cmocka_unit_test(test_cycles_fallback),
		cmocka_unit_test(test_no_target),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
