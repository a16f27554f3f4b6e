/* monitor_rebase: a monitor started early (during a trial's warm-up) counts only what its
 * process does after the rebase. Ground truth: a child burns 250 ms of user CPU before the
 * rebase and 100 ms after it; the total must be the 100 ms (a total over the whole span would
 * be 350 ms), and over the same span without a rebase the whole 350 ms. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/clock.h"
#include "monitor/monitor.h"
#include "monitor/workload.h"

#define MS NS_PER_MS

struct child {
	pid_t pid;
	int cmd, ack;
};

/* A child that burns `ms` of user CPU for every byte (its value) it reads, then acks. */
static void child_start(struct child *c)
{
	int cmd[2], ack[2];
	assert_int_equal(pipe(cmd), 0);
	assert_int_equal(pipe(ack), 0);
	c->pid = fork();
	assert_true(c->pid >= 0);
	if (c->pid == 0) {
		close(cmd[1]), close(ack[0]);
		unsigned char ms;
		while (read(cmd[0], &ms, 1) == 1) {
			workload_burn_user_ns((uint64_t)ms * MS);
			if (write(ack[1], &ms, 1) != 1)
				_exit(1);
		}
		_exit(0);
	}
	close(cmd[0]), close(ack[1]);
	c->cmd = cmd[1], c->ack = ack[0];
}

static void child_burn(struct child *c, unsigned char ms)
{
	assert_int_equal(write(c->cmd, &ms, 1), 1);
	unsigned char got;
	assert_int_equal(read(c->ack, &got, 1), 1);
}

static void child_end(struct child *c)
{
	close(c->cmd);
	close(c->ack);
	waitpid(c->pid, NULL, 0);
}

static double span_cpu(int rebase)
{
	struct child c;
	child_start(&c);
	char err[256];
	struct monitor_opts o = {.pid = c.pid};
	struct monitor *m = monitor_start(&o, err, sizeof err);
	assert_non_null(m);
	child_burn(&c, 250);
	if (rebase)
		assert_int_equal(monitor_rebase(m), 0);
	child_burn(&c, 100);
	struct monitor_sample s, total;
	assert_int_equal(monitor_sample(m, &s), 0);
	assert_int_equal(monitor_stop(m, &total), 0);
	child_end(&c);
	return total.cpu_user_s + total.cpu_sys_s;
}

static void test_rebase_counts_only_after(void **state)
{
	(void)state;
	double after = span_cpu(1), whole = span_cpu(0);
	printf("# rebased span %.3f s (truth 0.100), whole span %.3f s (truth 0.350)\n", after, whole);
	/* the /proc walk's tick resolution (10 ms) and the burn's own overshoot */
	assert_true(fabs(after - 0.100) <= 0.03);
	assert_true(fabs(whole - 0.350) <= 0.05);
}

static void test_rebase_refuses_from_birth(void **state)
{
	(void)state;
	char err[256];
	struct monitor_opts o = {.pid = getpid(), .from_birth = 1};
	struct monitor *m = monitor_start(&o, err, sizeof err);
	assert_non_null(m);
	assert_int_equal(monitor_rebase(m), -EINVAL);
	assert_int_equal(monitor_stop(m, NULL), 0);
	assert_int_equal(monitor_rebase(NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rebase_counts_only_after),
		cmocka_unit_test(test_rebase_refuses_from_birth),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
