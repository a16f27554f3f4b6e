/* procfs: the stat parser on hostile comms and short lines, the stat of this process, and the
 * thread listing of this process while it runs known threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/procfs.h"

static void test_parse_stat(void **state)
{
	struct procfs_stat st;
	/* a comm with ") (", spaces and digits: the last ')' ends it */
	const char *line = "4242 (a) (b 1 2) S 77 4242 4242 0 -1 4194560 11 12 13 14 "
			   "150 160 -170 180 20 0 3 0 999 123456 789 18446744073709551615\n";
	assert_int_equal(procfs_parse_stat(line, &st), 0);
	assert_string_equal(st.comm, "a) (b 1 2");
	assert_int_equal(st.state, 'S');
	assert_int_equal(st.ppid, 77);
	assert_int_equal(st.minflt, 11);
	assert_int_equal(st.cminflt, 12);
	assert_int_equal(st.majflt, 13);
	assert_int_equal(st.cmajflt, 14);
	assert_int_equal(st.ut, 150);
	assert_int_equal(st.st, 160);
	assert_int_equal(st.cut, 0); /* negative: 0, and the fields after it stay aligned */
	assert_int_equal(st.cst, 180);
	assert_int_equal(st.threads, 3);
	assert_int_equal(st.start, 999);
	assert_int_equal(st.rss_pages, 789);
	/* comm cut to 15 bytes */
	assert_int_equal(procfs_parse_stat("1 (0123456789abcdefgh) R 0", &st), 0);
	assert_string_equal(st.comm, "0123456789abcde");
	assert_int_equal(st.state, 'R');
	assert_int_equal(st.ut, 0); /* missing fields read 0 */
	assert_int_equal(procfs_parse_stat("1 no parentheses R", &st), -EINVAL);
	assert_int_equal(procfs_parse_stat("", &st), -EINVAL);
}

static void test_read_stat_self(void **state)
{
	struct procfs_stat st;
	assert_int_equal(procfs_read_stat(getpid(), &st), 0);
	assert_int_equal(st.ppid, getppid());
	assert_int_equal(st.state, 'R');
	assert_true(st.threads >= 1);
	assert_true(st.start > 0);
	assert_true(st.rss_pages > 0);
	/* a pid that cannot exist (above PID_MAX_LIMIT, 2^22) */
	assert_int_equal(procfs_read_stat(5000000, &st), -ENOENT);
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int started, release;
static pid_t thread_tids[3];

static void *sleeper(void *arg)
{
	pthread_mutex_lock(&mu);
	thread_tids[started++] = (pid_t)syscall(SYS_gettid);
	pthread_cond_broadcast(&cv);
	while (!release)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	return arg;
}

static int has(const pid_t *v, int n, pid_t x)
{
	for (int i = 0; i < n; i++)
		if (v[i] == x)
			return 1;
	return 0;
}

static void test_list_tasks_self(void **state)
{
	pthread_t th[3];
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&th[i], NULL, sleeper, NULL), 0);
	pthread_mutex_lock(&mu);
	while (started < 3)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);

	/* appends after what is there, growing a full array */
	pid_t *tids = malloc(sizeof *tids);
	assert_non_null(tids);
	tids[0] = -7;
	int cap = 1;
	int n = procfs_list_tasks(-1, getpid(), &tids, 1, &cap);
	assert_int_equal(n, 1 + 4);
	assert_true(cap >= n);
	assert_int_equal(tids[0], -7);
	assert_true(has(tids + 1, 4, getpid()));
	for (int i = 0; i < 3; i++)
		assert_true(has(tids + 1, 4, thread_tids[i]));
	/* through an open /proc/PID directory: the same threads */
	int dfd = open("/proc/self", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	assert_int_equal(procfs_list_tasks(dfd, 0, &tids, 0, &cap), 4);
	close(dfd);
	free(tids);
	/* a process that is gone: -ENOENT, nothing allocated */
	pid_t *none = NULL;
	cap = 0;
	assert_int_equal(procfs_list_tasks(-1, 5000000, &none, 0, &cap), -ENOENT);
	assert_null(none);

	pthread_mutex_lock(&mu);
	release = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_stat),
		cmocka_unit_test(test_read_stat_self),
		cmocka_unit_test(test_list_tasks_self),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
