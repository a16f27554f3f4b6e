/* coro: resume/yield order, nesting, many coroutines, registers and FP preserved. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "coro/coro.h"

static char trace[256];
static size_t tlen;
static void mark(char c) { trace[tlen++] = c; trace[tlen] = 0; }

static void fn_abc(void *arg)
{
	mark('a');
	coro_yield();
	mark('b');
	coro_yield();
	mark('c');
}

static void test_order(void **state)
{
	tlen = 0;
	struct coro *c = coro_new(fn_abc, NULL, 0);
	assert_non_null(c);
	assert_null(coro_current());
	coro_resume(c);
	mark('1');
	coro_resume(c);
	mark('2');
	assert_false(coro_done(c));
	coro_resume(c);
	assert_true(coro_done(c));
	assert_string_equal(trace, "a1b2c");
	coro_free(c);
}

static void inner(void *arg)
{
	mark('i');
	coro_yield();
	mark('j');
}

static void outer(void *arg)
{
	struct coro *in = coro_new(inner, NULL, 0);
	mark('o');
	coro_resume(in); /* nested: inner yields back to outer, not to main */
	mark('p');
	coro_yield();
	coro_resume(in);
	assert_true(coro_done(in));
	coro_free(in);
	mark('q');
}

static void test_nested(void **state)
{
	tlen = 0;
	struct coro *c = coro_new(outer, NULL, 0);
	coro_resume(c);
	mark('M');
	coro_resume(c);
	assert_true(coro_done(c));
	assert_string_equal(trace, "oipMjq");
	coro_free(c);
}

/* Values live in callee-saved registers and FP registers across yields. */
static void fn_math(void *arg)
{
	volatile double acc = 0.5;
	uint64_t x = 0x9E3779B97F4A7C15ULL, sum = 0;
	for (int i = 0; i < 1000; i++) {
		sum += x ^ (uint64_t)i;
		acc = acc * 1.000001 + 0.25;
		coro_yield();
	}
	((double *)arg)[0] = acc;
	((double *)arg)[1] = (double)(sum % 1000003);
}

static void test_many_interleaved(void **state)
{
	enum { N = 2000 };
	static struct coro *cs[N];
	static double out[N][2];
	for (int i = 0; i < N; i++) {
		cs[i] = coro_new(fn_math, out[i], 16384);
		assert_non_null(cs[i]);
	}
	for (int round = 0; round < 1001; round++)
		for (int i = 0; i < N; i++)
			if (!coro_done(cs[i]))
				coro_resume(cs[i]);
	/* every coroutine computed the same thing as a plain loop would */
	volatile double acc = 0.5;
	uint64_t x = 0x9E3779B97F4A7C15ULL, sum = 0;
	for (int i = 0; i < 1000; i++) {
		sum += x ^ (uint64_t)i;
		acc = acc * 1.000001 + 0.25;
	}
	for (int i = 0; i < N; i++) {
		assert_true(coro_done(cs[i]));
		assert_true(out[i][0] == acc);
		assert_true(out[i][1] == (double)(sum % 1000003));
		coro_free(cs[i]);
	}
}

/* coro_transfer: one coroutine hands over to another directly; the one transferred to takes
 * over the caller (its yield returns to main), the one that transferred resumes later. */
static struct coro *t_b;

static void fn_ta(void *arg)
{
	mark('a');
	coro_transfer(t_b);
	mark('c'); /* resumed by main after b yielded */
	coro_transfer(t_b);
	mark('e');
}

static void fn_tb(void *arg)
{
	mark('b');
	assert_true(coro_current() == t_b);
	coro_yield(); /* back to main, not to a */
	mark('d');
	coro_yield();
}

static void test_transfer(void **state)
{
	tlen = 0;
	struct coro *a = coro_new(fn_ta, NULL, 0);
	t_b = coro_new(fn_tb, NULL, 0);
	coro_resume(a); /* a, then b, then back here */
	assert_string_equal(trace, "ab");
	assert_null(coro_current());
	assert_false(coro_done(a));
	coro_resume(a);
	assert_string_equal(trace, "abcd");
	coro_resume(a);
	assert_string_equal(trace, "abcde");
	assert_true(coro_done(a));
	assert_false(coro_done(t_b));
	coro_free(a);
	coro_free(t_b);
}

static void spin(void *arg)
{
	for (;;)
		coro_yield();
}

static void test_switch_is_cheap(void **state)
{
	/* Not a benchmark: just shows the switch is user-space (far below a syscall's ~1 us). */
	struct coro *c = coro_new(spin, NULL, 0);
	uint64_t t0 = clock_now_ns();
	for (int i = 0; i < 100000; i++)
		coro_resume(c);
	uint64_t ns = (clock_now_ns() - t0) / 100000;
	printf("coro (%s): %llu ns per resume+yield\n", coro_backend(), (unsigned long long)ns);
	assert_true(ns < 2000);
	/* leave it suspended: freeing a suspended (not running) coroutine is allowed */
	coro_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_nested),
		cmocka_unit_test(test_many_interleaved),
		cmocka_unit_test(test_transfer),
		cmocka_unit_test(test_switch_is_cheap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
