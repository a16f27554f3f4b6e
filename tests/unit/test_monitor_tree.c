/* monitor: ground truth tests. Known CPU burns in known children (user and kernel mode,
 * staggered exits, nested reaping) must add up to what the tree's root saw with
 * getrusage(RUSAGE_CHILDREN), on every accounting method available; a known number of
 * blocking ping-pongs must show as that many voluntary switches summed over threads; figures
 * never go negative or jump when processes exit mid-read or a PID is reused. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/clock.h"
#include "monitor/monitor.h"
#include "monitor/workload.h"

#define MS NS_PER_MS

/* Seconds (all CPUs) of steal, irq and softirq so far, from /proc/stat: time perf's task-clock
 * (a clock running while the task is current) may include but the scheduler's run time excludes
 * (PARAVIRT_TIME_ACCOUNTING takes the hypervisor's steal out; IRQ_TIME_ACCOUNTING irq time). */
static double unsched_s(void)
{
	unsigned long long v[8] = {0};
	FILE *f = fopen("/proc/stat", "r");
	if (!f)
		return 0;
	int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		       &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	return n == 8 ? (double)(v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK) : 0;
}

static int nonneg(const struct monitor_sample *s)
{
	return s->cpu_user_s >= 0 && s->cpu_sys_s >= 0 && s->cpu_total_cores >= 0 &&
	       s->ctxsw_vol_per_s >= 0 && s->runq_wait_s >= 0 && s->interval_s >= 0;
}

/* Samples every period until the root reports; returns the summed CPU of the samples. */
static void run_tree(struct monitor_opts *o, struct workload_tree *t, enum monitor_method want,
		     double *user_s, double *sys_s, struct workload_truth *truth)
{
	char err[256];
	struct monitor *m = monitor_start(o, err, sizeof err);
	assert_non_null(m);
	assert_int_equal(workload_tree_go(t), 0);
	double u = 0, s = 0;
	int got = 0;
	uint64_t deadline = clock_now_ns() + 20000 * MS;
	while (!got && clock_now_ns() < deadline) {
		clock_sleep_ns(80 * MS);
		struct monitor_sample smp;
		assert_int_equal(monitor_sample(m, &smp), 0);
		assert_true(nonneg(&smp));
		assert_int_equal(smp.method, want);
		/* no jump: the tree cannot use more than the machine's CPUs (+ tick slack) */
		assert_true(smp.cpu_total_cores <= smp.cpus_allowed * 1.0 + 0.5 / smp.interval_s + 0.3);
		u += smp.cpu_user_s, s += smp.cpu_sys_s;
		got = workload_tree_truth(t, truth, 0) == 0;
	}
	assert_true(got);
	struct monitor_sample last, total;
	assert_int_equal(monitor_sample(m, &last), 0);
	u += last.cpu_user_s, s += last.cpu_sys_s;
	assert_int_equal(monitor_stop(m, &total), 0);
	/* the total is the sum of the samples */
	assert_true(fabs(total.cpu_user_s - u) < 1e-6 && fabs(total.cpu_sys_s - s) < 1e-6);
	*user_s = u, *sys_s = s;
}

static void check(const char *method, double u, double s, const struct workload_truth *t)
{
	double tu = t->children_user_s + t->self_user_s, ts = t->children_sys_s + t->self_sys_s;
	double tot = tu + ts, got = u + s;
	printf("# %s: measured user %.3fs sys %.3fs, truth (getrusage) user %.3fs sys %.3fs, "
	       "total error %.2f%%\n", method, u, s, tu, ts, 100 * (got - tot) / tot);
	assert_true(tot > 0.5);
	assert_true(fabs(got - tot) <= 0.02 * tot);          /* total within 2% */
	assert_true(fabs(u - tu) <= 0.05 * tot);             /* split within 5% */
	assert_true(fabs(s - ts) <= 0.05 * tot);
	assert_true(ts > 0.2 * tot && tu > 0.2 * tot);       /* both modes really burned */
}

static const struct workload_tree_opts burn = {
	.children = 8, .user_ns = 300 * MS, .sys_ns = 300 * MS, .stagger_ns = 70 * MS, .nested = 1,
};

static void test_procwalk_matches_rusage(void **state)
{
	struct workload_tree t;
	assert_int_equal(workload_tree_start(&burn, &t), 0);
	struct monitor_opts o = {.pid = t.pid};
	double u, s;
	struct workload_truth truth;
	run_tree(&o, &t, MONITOR_PROCWALK, &u, &s, &truth);
	workload_tree_end(&t);
	check("procwalk", u, s, &truth);
}

static void cgroup_case(int version, enum monitor_method want)
{
	char path[512], err[256];
	int v = 0;
	if (monitor_cgroup_create(version, "test", path, sizeof path, &v, err, sizeof err)) {
		printf("# skip: %s\n", err);
		skip();
	}
	struct workload_tree t;
	assert_int_equal(workload_tree_start(&burn, &t), 0);
	if (monitor_cgroup_join(path, t.pid)) {
		printf("# skip: cannot move a process into '%s'\n", path);
		workload_tree_end(&t);
		monitor_cgroup_remove(path);
		skip();
	}
	struct monitor_opts o = {.pid = t.pid, .cpu_cgroup = path};
	double u, s;
	struct workload_truth truth;
	run_tree(&o, &t, want, &u, &s, &truth);
	workload_tree_end(&t);
	assert_int_equal(monitor_cgroup_remove(path), 0);
	check(want == MONITOR_CGROUP2 ? "cgroup2" : "cgroup1", u, s, &truth);
}

static void test_cgroup2_matches_rusage(void **state) { cgroup_case(2, MONITOR_CGROUP2); }
static void test_cgroup1_matches_rusage(void **state) { cgroup_case(1, MONITOR_CGROUP1); }

/* The cgroup as the target (--cgroup): membership from cgroup.procs. */
static void test_cgroup_target(void **state)
{
	char path[512], err[256];
	int v = 0;
	if (monitor_cgroup_create(0, "target", path, sizeof path, &v, err, sizeof err)) {
		printf("# skip: %s\n", err);
		skip();
	}
	struct workload_tree_opts o1 = burn;
	o1.children = 4;
	struct workload_tree t;
	assert_int_equal(workload_tree_start(&o1, &t), 0);
	assert_int_equal(monitor_cgroup_join(path, t.pid), 0);
	struct monitor_opts o = {.cgroup = path};
	double u, s;
	struct workload_truth truth;
	run_tree(&o, &t, v == 2 ? MONITOR_CGROUP2 : MONITOR_CGROUP1, &u, &s, &truth);
	workload_tree_end(&t);
	monitor_cgroup_remove(path);
	check("cgroup target", u, s, &truth);
}

static void test_voluntary_switches_summed_over_threads(void **state)
{
	const long rounds = 4000;
	struct workload_pingpong p;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	assert_int_equal(workload_pingpong_start(rounds, 0, ncpu > 1 ? 1 : 0, &p), 0);
	char err[256];
	struct monitor_opts o = {.pid = p.pid};
	struct monitor *m = monitor_start(&o, err, sizeof err);
	assert_non_null(m);
	assert_int_equal(workload_pingpong_go(&p), 0);
	struct workload_pp_truth t;
	assert_int_equal(workload_pingpong_truth(&p, &t, 20000 * MS), 0);
	struct monitor_sample s;
	assert_int_equal(monitor_sample(m, &s), 0);
	monitor_stop(m, NULL);
	/* what /proc/PID/status would have said: the main thread only */
	char path[64], buf[4096];
	snprintf(path, sizeof path, "/proc/%d/status", (int)p.pid);
	int fd = open(path, O_RDONLY);
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	const char *v = strstr(buf, "\nvoluntary_ctxt_switches:");
	long main_vol = v ? atol(v + 25) : -1;
	workload_pingpong_end(&p);
	long truth = t.nvcsw[0] + t.nvcsw[1];
	printf("# ping-pong %ld rounds: expected ~%ld voluntary, threads' rusage %ld, monitor %llu, "
	       "/proc/PID/status (main thread) %ld\n", rounds, 2 * rounds, truth,
	       (unsigned long long)s.ctxsw_vol, main_vol);
	assert_true(s.threads == 3);
	/* within 5% of the known number of blocking hand-offs */
	assert_true(fabs((double)s.ctxsw_vol - 2.0 * rounds) <= 0.05 * 2 * rounds);
	/* and within a few switches of the threads' own count (+ main thread, + the final waits) */
	assert_true(llabs((long long)s.ctxsw_vol - truth) <= 10 + truth / 100);
	assert_true(main_vol >= 0 && main_vol < rounds / 10);
}

/* Short-lived children (most born and gone between two samples; chains through a grandchild)
 * that block and burn: the tree's switches match the root's getrusage (self + children).
 * Voluntary within 5% (+5); involuntary within 5% (+5) less 0.5 per exited process (their
 * preemptions during the kernel's teardown after the exit event reach only the reaper).
 * Needs taskstats exit events: skipped, with the monitor's reason, where it cannot have them. */
static void test_switches_of_exited_children(void **state)
{
	struct workload_tree_opts o = {.children = 150, .par = 3, .sleeps = 5, .nested = 1,
				       .user_ns = 300 * NS_PER_US, .sys_ns = 300 * NS_PER_US};
	struct workload_tree t;
	assert_int_equal(workload_tree_start(&o, &t), 0);
	char err[256];
	struct monitor_opts mo = {.pid = t.pid};
	struct monitor *m = monitor_start(&mo, err, sizeof err);
	assert_non_null(m);
	assert_int_equal(workload_tree_go(&t), 0);
	struct workload_truth tr;
	struct monitor_sample smp;
	uint64_t vol = 0, invol = 0;
	int got = 0;
	uint64_t deadline = clock_now_ns() + 30000 * MS;
	while (!got && clock_now_ns() < deadline) {
		clock_sleep_ns(60 * MS);
		assert_int_equal(monitor_sample(m, &smp), 0);
		vol += smp.ctxsw_vol, invol += smp.ctxsw_invol;
		got = workload_tree_truth(&t, &tr, 0) == 0;
	}
	assert_true(got);
	assert_int_equal(monitor_sample(m, &smp), 0);
	vol += smp.ctxsw_vol, invol += smp.ctxsw_invol;
	monitor_stop(m, NULL);
	workload_tree_end(&t);
	if (strncmp(smp.source, "taskstats + exit events", 23)) {
		/* root, CONFIG_TASKSTATS, the initial PID and user namespaces: the reason is in
		 * the source */
		printf("# skip: no taskstats exit events (%s)\n", smp.source);
		skip();
	}
	double tv = (double)(tr.children_nvcsw + tr.self_nvcsw);
	double ti = (double)(tr.children_nivcsw + tr.self_nivcsw);
	double exits = o.children + o.children / 3; /* every third child works in a grandchild */
	printf("# %d short-lived children: voluntary %llu vs getrusage %.0f, involuntary %llu vs "
	       "%.0f\n", o.children, (unsigned long long)vol, tv, (unsigned long long)invol, ti);
	assert_true(tv >= 5.0 * o.children);
	assert_true(fabs((double)vol - tv) <= 0.05 * tv + 5);
	assert_true((double)invol >= 0.95 * ti - 0.5 * exits - 5 && (double)invol <= 1.05 * ti + 5);
}

/* Processes exiting mid-read and a reused PID inside the tree: nothing negative, nothing
 * counted twice, nothing lost. The root forks short burners back to back, the second on the
 * first's PID (ns_last_pid) when the kernel allows. */
static void test_exits_and_pid_reuse(void **state)
{
	int rep[2];
	assert_int_equal(pipe(rep), 0);
	pid_t root = fork();
	if (root == 0) {
		close(rep[0]);
		clock_sleep_ns(100 * MS);
		int reused = 0;
		for (int i = 0; i < 12; i++) {
			pid_t c = fork();
			if (c == 0) {
				if (i % 2)
					workload_burn_sys_ns(40 * MS);
				else
					workload_burn_user_ns(40 * MS);
				_exit(0);
			}
			waitpid(c, NULL, 0);
			/* next fork gets the same pid when ns_last_pid is writable and no one
			 * else forks in between */
			int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY);
			if (fd >= 0) {
				char num[16];
				int len = snprintf(num, sizeof num, "%d", (int)c - 1);
				if (write(fd, num, (size_t)len) < 0)
					(void)0;
				close(fd);
			}
			pid_t c2 = fork();
			if (c2 == 0) {
				workload_burn_user_ns(30 * MS);
				_exit(0);
			}
			reused += c2 == c;
			waitpid(c2, NULL, 0);
		}
		struct rusage ru;
		getrusage(RUSAGE_CHILDREN, &ru);
		double tot[3] = {ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
				 ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6, reused};
		if (write(rep[1], tot, sizeof tot) < 0)
			_exit(1);
		clock_sleep_ns(300 * MS);
		_exit(0);
	}
	close(rep[1]);
	char err[256];
	struct monitor_opts o = {.pid = root, .top_n = 5};
	struct monitor *m = monitor_start(&o, err, sizeof err);
	assert_non_null(m);
	double u = 0, s = 0, tot[3];
	int got = 0;
	fcntl(rep[0], F_SETFL, O_NONBLOCK);
	for (int i = 0; i < 4000 && !got; i++) {
		clock_sleep_ns(3 * MS); /* fast sampling: many reads race with exits */
		struct monitor_sample smp;
		assert_int_equal(monitor_sample(m, &smp), 0);
		assert_true(nonneg(&smp));
		u += smp.cpu_user_s, s += smp.cpu_sys_s;
		got = read(rep[0], tot, sizeof tot) == (ssize_t)sizeof tot;
	}
	assert_true(got);
	struct monitor_sample last;
	assert_int_equal(monitor_sample(m, &last), 0);
	u += last.cpu_user_s, s += last.cpu_sys_s;
	monitor_stop(m, NULL);
	waitpid(root, NULL, 0);
	close(rep[0]);
	printf("# churn: measured %.3fs, truth %.3fs, pid reused %d/12 times\n", u + s,
	       tot[0] + tot[1], (int)tot[2]);
	/* short runs: allow 2 ticks per process of truncation on top of 3% */
	double truth = tot[0] + tot[1];
	assert_true(fabs(u + s - truth) <= 0.03 * truth + 0.02);
}

static void test_perf_fallback(void **state)
{
	struct workload_tree_opts o1 = {.children = 2, .user_ns = 100 * MS, .sys_ns = 100 * MS};
	for (int forced = 0; forced < 2; forced++) {
		if (forced)
			setenv("CTXLAB_PERF_NO_HW", "1", 1);
		struct workload_tree t;
		assert_int_equal(workload_tree_start(&o1, &t), 0);
		char err[256];
		struct monitor_opts o = {.pid = t.pid, .perf_counters = 1};
		struct monitor *m = monitor_start(&o, err, sizeof err);
		assert_non_null(m);
		double unsched0 = unsched_s();
		workload_tree_go(&t);
		struct workload_truth truth;
		assert_int_equal(workload_tree_truth(&t, &truth, 20000 * MS), 0);
		struct monitor_sample s;
		assert_int_equal(monitor_sample(m, &s), 0);
		monitor_stop(m, NULL);
		workload_tree_end(&t);
		printf("# perf (forced fallback %d): sw_ok %d task-clock %.3fs ctxsw %llu "
		       "syscalls_ok %d syscalls %llu hw_ok %d reason '%s'\n", forced, s.sw_ok,
		       s.task_clock_ns / 1e9, (unsigned long long)s.perf_ctxsw, s.syscalls_ok,
		       (unsigned long long)s.syscalls, s.hw_ok, s.na_reason);
		if (!s.sw_ok) {
			printf("# skip: software perf events unavailable: %s\n", s.sw_reason);
			skip();
		}
		/* inherit: the children's CPU is in the root's counter */
		double tc = s.task_clock_ns / 1e9, tt = truth.children_user_s + truth.children_sys_s;
		double unsched = unsched_s() - unsched0;
		printf("# task-clock %.3fs, run time %.3fs, steal/irq meanwhile %.3fs\n", tc, tt,
		       unsched);
		assert_true(tc - tt >= -0.05 * tt - 0.02);
		assert_true(tc - tt <= 0.05 * tt + 0.02 + unsched);
		if (s.syscalls_ok)
			assert_true(s.syscalls > 100); /* the sys burner's reads */
		if (s.hw_ok) {
			assert_true(s.cycles > 0 && s.instructions > 0 && s.ipc > 0);
		} else {
			assert_true(s.na_reason[0] != 0);
			assert_true(s.cycles == 0 && s.instructions == 0);
		}
		if (forced)
			assert_false(s.hw_ok);
	}
	unsetenv("CTXLAB_PERF_NO_HW");
}

/* Many live processes, each using less CPU than one clock tick (a forking server at low load):
 * /proc/PID/stat cuts each process's time down to whole ticks, so summing per-process tick
 * deltas saw ~0 (the runner reported 0 server CPU for the fork engine at 256 connections).
 * The tree's total must match what the children measured of themselves (getrusage). */
static void small_burners(int force_proc)
{
	enum { N = 120 };
	const uint64_t burn_ns = 3 * MS; /* under one 10 ms tick */
	if (force_proc)
		setenv("CTXLAB_MONITOR_PROC", "1", 1);
	else
		unsetenv("CTXLAB_MONITOR_PROC");
	int go[2], res[2], quit[2];
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(res), 0);
	assert_int_equal(pipe(quit), 0);
	pid_t root = fork();
	assert_true(root >= 0);
	if (root == 0) {
		close(go[1]), close(res[0]), close(quit[1]);
		for (int i = 0; i < N; i++) {
			if (fork() == 0) {
				char b;
				if (read(go[0], &b, 1) != 1)
					_exit(1);
				struct rusage r0, r1;
				getrusage(RUSAGE_SELF, &r0);
				struct timespec ts;
				clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
				uint64_t end = (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec + burn_ns;
				int k = 0;
				do {
					if (++k % 64 == 0)
						getppid(); /* some kernel time too */
					clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
				} while ((uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec < end);
				getrusage(RUSAGE_SELF, &r1);
				int64_t us = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) * 1000000 +
					     (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) +
					     (r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) * 1000000 +
					     (r1.ru_stime.tv_usec - r0.ru_stime.tv_usec);
				if (write(res[1], &us, sizeof us) != sizeof us)
					_exit(1);
				if (read(quit[0], &b, 1) < 0)
					_exit(1);
				_exit(0);
			}
		}
		char b;
		if (read(quit[0], &b, 1) < 0)
			_exit(1);
		while (wait(NULL) > 0)
			;
		_exit(0);
	}
	close(go[0]), close(res[1]), close(quit[0]);
	/* wait until every child exists */
	struct monitor_opts o = {.pid = root};
	char err[256];
	struct monitor *m = NULL;
	uint64_t deadline = clock_now_ns() + 10000 * MS;
	while (clock_now_ns() < deadline) {
		m = monitor_start(&o, err, sizeof err);
		assert_non_null(m);
		struct monitor_sample smp;
		assert_int_equal(monitor_sample(m, &smp), 0);
		if (smp.procs == N + 1)
			break;
		monitor_stop(m, NULL);
		m = NULL;
		clock_sleep_ns(20 * MS);
	}
	assert_non_null(m);
	struct monitor_sample smp;
	assert_int_equal(monitor_sample(m, &smp), 0); /* a fresh interval */
	char gob[N];
	memset(gob, 'g', sizeof gob);
	assert_int_equal(write(go[1], gob, sizeof gob), (ssize_t)sizeof gob);
	int64_t truth_us = 0;
	for (int i = 0; i < N; i++) {
		int64_t us;
		assert_int_equal(read(res[0], &us, sizeof us), (ssize_t)sizeof us);
		truth_us += us;
	}
	double cpu = 0;
	assert_int_equal(monitor_sample(m, &smp), 0);
	cpu += smp.cpu_user_s + smp.cpu_sys_s;
	assert_int_equal(smp.procs, N + 1); /* alive: no reaped-children figures to lean on */
	printf("# %d live processes x %.0f ms (source %s): measured %.3fs, their own getrusage "
	       "%.3fs\n", N, burn_ns / 1e6, smp.source, cpu, truth_us / 1e6);
	monitor_stop(m, NULL);
	close(quit[1]); /* everyone exits */
	waitpid(root, NULL, 0);
	close(go[1]), close(res[0]);
	unsetenv("CTXLAB_MONITOR_PROC");
	double truth = truth_us / 1e6;
	assert_true(truth > N * burn_ns / 1e9 * 0.9);
	/* the window also holds each child's wake-up and write: a little over the truth */
	assert_true(cpu >= 0.95 * truth);
	assert_true(cpu <= 1.25 * truth + 0.02);
}

static void test_small_burners_taskstats(void **state)
{
	(void)state;
	small_burners(0);
}

static void test_small_burners_proc(void **state)
{
	(void)state;
	small_burners(1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_procwalk_matches_rusage),
		cmocka_unit_test(test_cgroup2_matches_rusage),
		cmocka_unit_test(test_cgroup1_matches_rusage),
		cmocka_unit_test(test_cgroup_target),
		cmocka_unit_test(test_voluntary_switches_summed_over_threads),
		cmocka_unit_test(test_exits_and_pid_reuse),
		cmocka_unit_test(test_switches_of_exited_children),
		cmocka_unit_test(test_perf_fallback),
		cmocka_unit_test(test_small_burners_taskstats),
		cmocka_unit_test(test_small_burners_proc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
