/* monitor: the kept-open /proc fds (and the taskstats batch) across the lives of the tree's
 * tasks. A root forks A (burns, then execs a shell that burns: same task, new comm), B (a
 * thread that burns and exits, then burns itself) and C (burns, exits); once C is reaped, the
 * test process forks E outside the tree on C's pid (ns_last_pid) and lets it burn while
 * sampling. The tree's CPU must match the root's getrusage (E's CPU not in it: a cache that
 * reopened by pid would read E through C's entry), A must show as "sh" after its exec, no fd
 * of the monitor may name B's exited thread, and every fd is closed by monitor_stop. Run with
 * taskstats (root) and with the /proc files (CTXLAB_MONITOR_PROC=1). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/clock.h"
#include "monitor/monitor.h"
#include "monitor/workload.h"

#define MS NS_PER_MS

enum { MSG_A = 1, MSG_C, MSG_REAPED, MSG_TID, MSG_G, MSG_TRUTH };
struct msg {
	int type, pid;
	double user_s, sys_s;
};

static int rep_w = -1;

static void say(int type, int pid, double u, double s)
{
	struct msg m = {type, pid, u, s};
	if (write(rep_w, &m, sizeof m) != (ssize_t)sizeof m)
		_exit(3);
}

static void *thread_burn(void *arg)
{
	(void)arg;
	workload_burn_sys_ns(80 * MS);
	return NULL;
}

static int count_fds(const char *needle)
{
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		char path[300], link[256];
		snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
		ssize_t l = readlink(path, link, sizeof link - 1);
		if (l < 0)
			continue;
		link[l] = 0;
		n += !needle || strstr(link, needle) != NULL;
	}
	closedir(d);
	return n - !needle; /* the directory's own fd */
}

static void root_main(int go_r)
{
	char c;
	if (read(go_r, &c, 1) != 1)
		_exit(2);
	pid_t a = fork();
	if (a == 0) {
		workload_burn_user_ns(60 * MS);
		execl("/bin/sh", "sh", "-c",
		      "i=0; while [ $i -lt 80000 ]; do i=$((i+1)); done; sleep 0.1", (char *)NULL);
		_exit(4);
	}
	say(MSG_A, a, 0, 0);
	pid_t b = fork();
	if (b == 0) {
		pthread_t th;
		pthread_create(&th, NULL, thread_burn, NULL);
		pid_t tid = 0;
		/* the thread's id: the task that is not us */
		clock_sleep_ns(20 * MS);
		DIR *d = opendir("/proc/self/task");
		struct dirent *e;
		while (d && (e = readdir(d)))
			if (atoi(e->d_name) > 0 && atoi(e->d_name) != getpid())
				tid = atoi(e->d_name);
		if (d)
			closedir(d);
		pthread_join(th, NULL);
		/* pthread_join returns when the kernel clears the thread's tid, which is before
		 * its task leaves /proc: the thread has ended once its task directory is gone */
		char tdir[64];
		snprintf(tdir, sizeof tdir, "/proc/self/task/%d", (int)tid);
		for (int i = 0; i < 1000 && access(tdir, F_OK) == 0; i++)
			clock_sleep_ns(1 * MS);
		say(MSG_TID, tid, 0, 0);
		workload_burn_user_ns(40 * MS);
		/* B had no children for many samples: now G, which must be seen while it burns
		 * (B's children file is read again after its fork event) */
		clock_sleep_ns(100 * MS);
		pid_t g = fork();
		if (g == 0) {
			clock_sleep_ns(60 * MS);
			workload_burn_user_ns(120 * MS);
			_exit(0);
		}
		say(MSG_G, g, 0, 0);
		waitpid(g, NULL, 0);
		clock_sleep_ns(100 * MS);
		_exit(0);
	}
	pid_t cc = fork();
	if (cc == 0) {
		workload_burn_user_ns(40 * MS);
		_exit(0);
	}
	/* C a zombie: the test process lets us reap it between two samples, then takes its pid
	 * for E at once */
	siginfo_t si;
	waitid(P_PID, (id_t)cc, &si, WEXITED | WNOWAIT);
	say(MSG_C, cc, 0, 0);
	if (read(go_r, &c, 1) != 1)
		_exit(2);
	waitpid(cc, NULL, 0);
	say(MSG_REAPED, cc, 0, 0);
	if (read(go_r, &c, 1) != 1) /* E is gone */
		_exit(2);
	waitpid(a, NULL, 0);
	waitpid(b, NULL, 0);
	struct rusage ch, me;
	getrusage(RUSAGE_CHILDREN, &ch);
	getrusage(RUSAGE_SELF, &me);
	say(MSG_TRUTH, 0,
	    ch.ru_utime.tv_sec + ch.ru_utime.tv_usec / 1e6 + me.ru_utime.tv_sec +
		    me.ru_utime.tv_usec / 1e6,
	    ch.ru_stime.tv_sec + ch.ru_stime.tv_usec / 1e6 + me.ru_stime.tv_sec +
		    me.ru_stime.tv_usec / 1e6);
	clock_sleep_ns(200 * MS);
	_exit(0);
}

/* E: C's pid when ns_last_pid lets us (else any), outside the tree; burns 150 ms, then waits
 * for *hold to close. Returns when it has burned. */
static pid_t fork_outsider(pid_t want, int *hold)
{
	int h[2], done[2];
	assert_int_equal(pipe(h), 0);
	assert_int_equal(pipe(done), 0);
	int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY);
	if (fd >= 0) {
		char num[16];
		int len = snprintf(num, sizeof num, "%d", (int)want - 1);
		if (write(fd, num, (size_t)len) < 0)
			(void)0;
		close(fd);
	}
	pid_t e = fork();
	assert_true(e >= 0);
	if (e == 0) {
		close(h[1]), close(done[0]);
		workload_burn_user_ns(150 * MS);
		char c = 'b';
		if (write(done[1], &c, 1) != 1)
			_exit(1);
		while (read(h[0], &c, 1) > 0)
			;
		_exit(0);
	}
	close(h[0]), close(done[1]);
	char c;
	assert_int_equal(read(done[0], &c, 1), 1);
	close(done[0]);
	*hold = h[1];
	return e;
}

static void fdcache_case(int proc_files)
{
	if (proc_files)
		setenv("CTXLAB_MONITOR_PROC", "1", 1);
	else
		unsetenv("CTXLAB_MONITOR_PROC");
	int fds0 = count_fds(NULL);
	int rep[2], go[2];
	assert_int_equal(pipe(rep), 0);
	assert_int_equal(pipe(go), 0);
	pid_t root = fork();
	assert_true(root >= 0);
	if (root == 0) {
		close(rep[0]), close(go[1]);
		rep_w = rep[1];
		root_main(go[0]);
	}
	close(rep[1]), close(go[0]);
	fcntl(rep[0], F_SETFL, O_NONBLOCK);
	char err[256];
	struct monitor_opts o = {.pid = root, .top_n = 10};
	struct monitor *m = monitor_start(&o, err, sizeof err);
	assert_non_null(m);
	assert_int_equal(write(go[1], "g", 1), 1);
	double u = 0, s = 0;
	pid_t a = 0, e = 0, cpid = 0, tid = 0, g = 0;
	int a_sh = 0, g_seen = 0, skipped = 0, got = 0, tid_checked = 0, reused = 0, batched = 0, hold = -1, e_samples = 0;
	struct msg truth = {0};
	for (int i = 0; i < 1000 && !got; i++) {
		clock_sleep_ns(20 * MS);
		struct monitor_sample smp;
		assert_int_equal(monitor_sample(m, &smp), 0);
		assert_true(smp.cpu_user_s >= 0 && smp.cpu_sys_s >= 0);
		u += smp.cpu_user_s, s += smp.cpu_sys_s;
		batched += (int)smp.ts_batched;
		skipped += (int)smp.kids_skipped;
		for (int k = 0; k < smp.ntasks; k++) {
			if (a && smp.tasks[k].pid == a && !strcmp(smp.tasks[k].comm, "sh"))
				a_sh = 1;
			if (g && smp.tasks[k].pid == g && smp.tasks[k].cpu_total_cores > 0)
				g_seen = 1;
		}
		if (tid && !tid_checked) {
			/* the sample after the thread ended: none of its fds kept */
			char needle[48], reused_as_pid[64];
			snprintf(needle, sizeof needle, "/task/%d/", (int)tid);
			/* its tid may already name a new process (A's sleep, say), whose own files
			 * are /proc/TID/task/TID/...: those are not the thread's */
			snprintf(reused_as_pid, sizeof reused_as_pid, "/proc/%d/task/%d/", (int)tid,
				 (int)tid);
			assert_int_equal(count_fds(needle) - count_fds(reused_as_pid), 0);
			tid_checked = 1;
		}
		if (e > 0 && ++e_samples == 3) {
			/* E lived through three samples on C's pid: let it go */
			close(hold);
			assert_int_equal(waitpid(e, NULL, 0), e);
			e = -1;
			assert_int_equal(write(go[1], "g", 1), 1);
		}
		struct msg msg;
		while (read(rep[0], &msg, sizeof msg) == (ssize_t)sizeof msg) {
			if (msg.type == MSG_A)
				a = msg.pid;
			else if (msg.type == MSG_G)
				g = msg.pid;
			else if (msg.type == MSG_TID)
				tid = msg.pid;
			else if (msg.type == MSG_C) {
				/* no sample until E holds C's pid: the next one finds C gone */
				cpid = msg.pid;
				assert_int_equal(write(go[1], "g", 1), 1);
				fcntl(rep[0], F_SETFL, 0);
				while (read(rep[0], &msg, sizeof msg) == (ssize_t)sizeof msg &&
				       msg.type != MSG_REAPED)
					if (msg.type == MSG_TID)
						tid = msg.pid;
					else if (msg.type == MSG_G)
						g = msg.pid;
				fcntl(rep[0], F_SETFL, O_NONBLOCK);
				e = fork_outsider(cpid, &hold);
				reused = e == cpid;
			} else if (msg.type == MSG_TRUTH) {
				truth = msg;
				got = 1;
			}
		}
	}
	assert_true(got);
	struct monitor_sample last;
	assert_int_equal(monitor_sample(m, &last), 0);
	u += last.cpu_user_s, s += last.cpu_sys_s;
	assert_int_equal(monitor_stop(m, NULL), 0);
	waitpid(root, NULL, 0);
	close(rep[0]), close(go[1]);
	double tt = truth.user_s + truth.sys_s;
	printf("# fdcache (%s): measured %.3fs, truth %.3fs; outsider on C's pid: %s; A as sh: %d; "
	       "thread checked: %d; taskstats batched: %d; G seen: %d; children files skipped: %d\n",
	       proc_files ? "/proc" : "taskstats", u + s, tt, reused ? "yes" : "no (ns_last_pid raced)",
	       a_sh, tid_checked, batched, g_seen, skipped);
	assert_true(tt > 0.2);
	/* 3% and 2 ticks per task of truncation; the outsider's 150 ms would be far outside */
	assert_true(fabs(u + s - tt) <= 0.03 * tt + 0.04);
	assert_true(a_sh);
	assert_true(tid_checked);
	assert_true(g_seen);
	if (!proc_files) {
		assert_true(batched > 0); /* the batch path ran */
		assert_true(skipped > 0); /* and childless processes' children files were skipped */
	}
	assert_int_equal(count_fds(NULL), fds0);
}

static void test_fdcache_taskstats(void **state)
{
	(void)state;
	if (getuid() != 0) {
		print_message("skip: taskstats needs root\n");
		skip();
	}
	fdcache_case(0);
}

static void test_fdcache_proc(void **state)
{
	(void)state;
	fdcache_case(1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fdcache_taskstats),
		cmocka_unit_test(test_fdcache_proc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
