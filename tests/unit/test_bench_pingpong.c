/* bench/pingpong: every mode moves exactly the messages it should; getrusage's switch counts
 * are the ground truth (no switch inline or between coroutines, ~2 per round trip between
 * two threads on one CPU); affinity is really applied (read back); options are checked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "bench/pingpong.h"

#define ROUNDS 2000

static struct pingpong_opts opts(enum pingpong_mode m, enum pingpong_pin pin)
{
	struct pingpong_opts o = {
		.mode = m, .rounds = ROUNDS, .pin = pin, .pairs = 1, .msg_bytes = 1,
		.stride_bytes = 64,
	};
	return o;
}

static void run_ok(const struct pingpong_opts *o, struct pingpong_result *r)
{
	char err[256] = "";
	int rc = pingpong_run(o, r, err, sizeof err);
	if (rc)
		printf("# %s: %s\n", pingpong_mode_name(o->mode), err);
	assert_int_equal(rc, 0);
}

static int first_cpus(int *cpus, int max)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
	int n = 0;
	for (int c = 0; c < CPU_SETSIZE && n < max; c++)
		if (CPU_ISSET(c, &set))
			cpus[n++] = c;
	return n;
}

/* Every mode: exactly 2 messages per round trip, per pair, whatever the size and pairs. */
static void test_exact_counts(void **state)
{
	for (int m = 0; m < PINGPONG_NMODES; m++) {
		struct pingpong_opts o = opts(m, PINGPONG_PIN_SAME);
		struct pingpong_result r;
		run_ok(&o, &r);
		assert_int_equal(r.round_trips, ROUNDS);
		assert_int_equal(r.messages, 2 * ROUNDS);
		assert_true(r.elapsed_ns > 0);
		assert_true(r.affinity_ok);
		printf("# %-12s %8.0f ns/rt  vol %.2f invol %.2f per rt  %s\n",
		       pingpong_mode_name(m), (double)r.elapsed_ns / ROUNDS,
		       (double)r.ctxsw_vol / ROUNDS, (double)r.ctxsw_invol / ROUNDS, r.placement);

		/* 3 pairs, 100 KB messages (larger than a pipe or socket buffer: partial
		 * writes and reads) and a working set touched every 256 bytes */
		o.pairs = 3;
		o.rounds = 50;
		o.msg_bytes = 100 * 1000;
		o.ws_bytes = 64 * 1024;
		o.stride_bytes = 256;
		run_ok(&o, &r);
		assert_int_equal(r.round_trips, 150);
		assert_int_equal(r.messages, 300);
		/* each of the 6 sides touched its 256 bytes 50 times: 1 + 50 each, mod 256 */
		assert_int_equal(r.ws_sum, 6ull * (64 * 1024 / 256) * ((1 + 50) % 256));
	}
}

/* unix-inline does the syscalls of a round trip without blocking: ~0 switches. */
static void test_inline_no_switch(void **state)
{
	struct pingpong_opts o = opts(PINGPONG_UNIX_INLINE, PINGPONG_PIN_SAME);
	struct pingpong_result r;
	run_ok(&o, &r);
	double vol = (double)r.ctxsw_vol / (double)r.round_trips;
	printf("# unix-inline: %.4f voluntary switches per round trip\n", vol);
	assert_true(vol < 0.05);
	assert_int_equal(r.would_block, 0);
	assert_true(r.sys_ns > 0 || r.user_ns > 0);
}

/* Two threads on one CPU: every hand-over is a switch, ~2 per round trip. Whether the writer
 * blocks in its read (voluntary) or is preempted by the reader it woke (involuntary) is the
 * scheduler's choice (EEVDF's wake-up preemption makes it ~0.85 involuntary on 6.x), so the
 * sum is what is asserted; a side always blocks at least once per round trip. */
static void test_pipe_thread_switches(void **state)
{
	struct pingpong_opts o = opts(PINGPONG_PIPE_THREAD, PINGPONG_PIN_SAME);
	struct pingpong_result r;
	run_ok(&o, &r);
	double vol = (double)r.ctxsw_vol / (double)r.round_trips;
	double inv = (double)r.ctxsw_invol / (double)r.round_trips;
	printf("# pipe-thread same CPU: %.3f voluntary + %.3f involuntary per round trip\n", vol,
	       inv);
	assert_true(vol + inv >= 1.5);
	assert_true(vol >= 0.9);
	assert_true(vol + inv < 4.0);
	assert_int_equal(r.cpu_a, r.cpu_b);

	/* pipe-proc counts the children through RUSAGE_CHILDREN: the same ~2 */
	o.mode = PINGPONG_PIPE_PROC;
	run_ok(&o, &r);
	vol = (double)r.ctxsw_vol / (double)r.round_trips;
	inv = (double)r.ctxsw_invol / (double)r.round_trips;
	printf("# pipe-proc same CPU: %.3f voluntary + %.3f involuntary per round trip\n", vol, inv);
	assert_true(vol + inv >= 1.5);
	assert_true(vol >= 0.9);
}

/* Coroutines switch in user space: no kernel switch, no system call. */
static void test_coro_no_kernel_switch(void **state)
{
	struct pingpong_opts o = opts(PINGPONG_CORO, PINGPONG_PIN_SAME);
	struct pingpong_result r;
	run_ok(&o, &r);
	printf("# coro: %llu voluntary, %llu involuntary switches in %d round trips\n",
	       (unsigned long long)r.ctxsw_vol, (unsigned long long)r.ctxsw_invol, ROUNDS);
	/* never blocks; involuntary switches are other tasks preempting this one (a loaded
	 * machine), not the benchmark's doing: allowed, but rare */
	assert_int_equal(r.ctxsw_vol, 0);
	assert_true(r.ctxsw_invol < ROUNDS / 100);
	/* the run queue hands over directly (one switch): only the two starts go through the
	 * scheduler loop on the thread's stack */
	printf("# coro: %llu direct hand-overs, %llu via the loop\n",
	       (unsigned long long)r.handoffs_direct, (unsigned long long)r.handoffs_via_loop);
	assert_true(r.handoffs_direct >= 2 * ROUNDS - 2 && r.handoffs_direct <= 2 * ROUNDS);
	assert_true(r.handoffs_via_loop <= 2);

	/* coro-unix: the syscalls of unix-thread, never a blocking one, never EAGAIN */
	o.mode = PINGPONG_CORO_UNIX;
	run_ok(&o, &r);
	assert_true((double)r.ctxsw_vol / ROUNDS < 0.05);
	assert_int_equal(r.would_block, 0);
}

static void test_affinity(void **state)
{
	int cpus[2];
	int n = first_cpus(cpus, 2);
	cpu_set_t before;
	assert_int_equal(sched_getaffinity(0, sizeof before, &before), 0);

	for (int m = 0; m < PINGPONG_NMODES; m++) {
		struct pingpong_opts o = opts(m, PINGPONG_PIN_SAME);
		o.rounds = 200;
		struct pingpong_result r;
		run_ok(&o, &r);
		assert_true(r.affinity_ok);
		assert_int_equal(r.cpu_a, cpus[0]);
		assert_int_equal(r.cpu_b, cpus[0]);
		/* single-thread modes pin the caller for the run only */
		cpu_set_t after;
		assert_int_equal(sched_getaffinity(0, sizeof after, &after), 0);
		assert_true(CPU_EQUAL(&before, &after));
	}
	if (n < 2) {
		printf("# skip: --pin split needs 2 CPUs, this process may use 1\n");
		skip();
	}
	enum pingpong_mode two[] = {PINGPONG_PIPE_PROC, PINGPONG_PIPE_THREAD, PINGPONG_UNIX_THREAD,
				    PINGPONG_FUTEX_THREAD};
	for (size_t i = 0; i < sizeof two / sizeof two[0]; i++) {
		struct pingpong_opts o = opts(two[i], PINGPONG_PIN_SPLIT);
		o.rounds = 200;
		struct pingpong_result r;
		run_ok(&o, &r);
		assert_true(r.affinity_ok);
		assert_int_equal(r.cpu_a, cpus[0]);
		assert_int_equal(r.cpu_b, cpus[1]);
		char want[64];
		snprintf(want, sizeof want, "A:cpu%d B:cpu%d", cpus[0], cpus[1]);
		assert_string_equal(r.placement, want);
	}
}

static void test_bad_options(void **state)
{
	char err[256];
	struct pingpong_result r;
	struct pingpong_opts o = opts(PINGPONG_PIPE_THREAD, PINGPONG_PIN_NONE);
	o.rounds = 0;
	assert_int_equal(pingpong_run(&o, &r, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "rounds"));
	o = opts(PINGPONG_PIPE_THREAD, PINGPONG_PIN_NONE);
	o.pairs = 0;
	assert_int_equal(pingpong_run(&o, &r, err, sizeof err), -EINVAL);
	o = opts(PINGPONG_PIPE_THREAD, PINGPONG_PIN_NONE);
	o.msg_bytes = 0;
	assert_int_equal(pingpong_run(&o, &r, err, sizeof err), -EINVAL);
	o = opts(PINGPONG_CORO, PINGPONG_PIN_NONE);
	o.ws_bytes = 4096;
	o.stride_bytes = 0;
	assert_int_equal(pingpong_run(&o, &r, err, sizeof err), -EINVAL);

	assert_int_equal(pingpong_mode_parse("futex-thread"), PINGPONG_FUTEX_THREAD);
	assert_int_equal(pingpong_mode_parse("nope"), -1);
	assert_int_equal(pingpong_pin_parse("split"), PINGPONG_PIN_SPLIT);
	assert_string_equal(pingpong_mode_name(PINGPONG_CORO_UNIX), "coro-unix");
	assert_false(pingpong_mode_switches(PINGPONG_UNIX_INLINE));
	assert_true(pingpong_mode_switches(PINGPONG_CORO));
}

static void test_calibrate(void **state)
{
	char err[256];
	struct pingpong_opts o = opts(PINGPONG_CORO, PINGPONG_PIN_NONE);
	uint64_t rounds = 0;
	assert_int_equal(pingpong_calibrate(&o, 50 * 1000 * 1000ull, &rounds, err, sizeof err), 0);
	/* a coroutine round trip is well under 5 us even under ASan on a loaded machine */
	printf("# coro: %llu rounds for 50 ms\n", (unsigned long long)rounds);
	assert_true(rounds >= 10000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_counts),
		cmocka_unit_test(test_inline_no_switch),
		cmocka_unit_test(test_pipe_thread_switches),
		cmocka_unit_test(test_coro_no_kernel_switch),
		cmocka_unit_test(test_affinity),
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test(test_calibrate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
