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

#if defined(__x86_64__) && !defined(CTXLAB_SANITIZED)
/* regs_across(fn, arg): loads rbx rbp r12-r15 with fixed patterns, calls fn(arg), and returns
 * a bitmap of the registers that did not come back intact (the SysV callee-saved set). */
uint64_t regs_across(void (*fn)(void *), void *arg);
__asm__(".text\n"
	".globl regs_across\n"
	".type regs_across,@function\n"
	"regs_across:\n"
	"	pushq %rbp\n pushq %rbx\n pushq %r12\n pushq %r13\n pushq %r14\n pushq %r15\n"
	"	subq $8, %rsp\n" /* 16-aligned at the call */
	"	movq %rdi, %rax\n movq %rsi, %rdi\n"
	"	movabsq $0x1111111111111111, %rbx\n movabsq $0x2222222222222222, %rbp\n"
	"	movabsq $0x3333333333333333, %r12\n movabsq $0x4444444444444444, %r13\n"
	"	movabsq $0x5555555555555555, %r14\n movabsq $0x6666666666666666, %r15\n"
	"	callq *%rax\n"
	"	xorl %eax, %eax\n"
	"	movabsq $0x1111111111111111, %rcx\n cmpq %rcx, %rbx\n je 1f\n orq $1, %rax\n1:\n"
	"	movabsq $0x2222222222222222, %rcx\n cmpq %rcx, %rbp\n je 1f\n orq $2, %rax\n1:\n"
	"	movabsq $0x3333333333333333, %rcx\n cmpq %rcx, %r12\n je 1f\n orq $4, %rax\n1:\n"
	"	movabsq $0x4444444444444444, %rcx\n cmpq %rcx, %r13\n je 1f\n orq $8, %rax\n1:\n"
	"	movabsq $0x5555555555555555, %rcx\n cmpq %rcx, %r14\n je 1f\n orq $16, %rax\n1:\n"
	"	movabsq $0x6666666666666666, %rcx\n cmpq %rcx, %r15\n je 1f\n orq $32, %rax\n1:\n"
	"	addq $8, %rsp\n"
	"	popq %r15\n popq %r14\n popq %r13\n popq %r12\n popq %rbx\n popq %rbp\n"
	"	ret\n"
	".size regs_across,.-regs_across\n");

/* clobbers every callee-saved register (the compiler saves and restores them around it) */
static void __attribute__((noinline)) clobber(void)
{
	__asm__ volatile("movq $-1, %%rbx\n movq $-2, %%r12\n movq $-3, %%r13\n"
			 "movq $-4, %%r14\n movq $-5, %%r15\n" ::: "rbx", "r12", "r13", "r14", "r15",
			 "memory");
}

static struct coro *r_a, *r_b;
static uint64_t r_bad[2];
static int r_misaligned;

static void do_transfer(void *to) { coro_transfer(to); }
static void do_yield(void *unused) { (void)unused; coro_yield(); }

static void __attribute__((noinline)) check_alignment(void)
{
	/* a frame pointer is 16-aligned when the ABI's entry alignment (rsp + 8) holds */
	if ((uintptr_t)__builtin_frame_address(0) % 16)
		r_misaligned = 1;
}

static void fn_ra(void *arg)
{
	check_alignment();
	r_bad[0] |= regs_across(do_transfer, r_b); /* b runs, clobbers, transfers back */
	clobber();
	r_bad[0] |= regs_across(do_yield, NULL); /* main runs, clobbers, resumes */
}

static void fn_rb(void *arg)
{
	check_alignment(); /* first entry through a transfer */
	clobber();
	r_bad[1] |= regs_across(do_transfer, r_a);
	clobber();
}

/* Callee-saved registers survive a transfer and a yield in both directions, and a coroutine
 * entered for the first time through a transfer starts on an ABI-aligned stack. */
static void test_callee_saved_and_alignment(void **state)
{
	r_bad[0] = r_bad[1] = 0;
	r_misaligned = 0;
	r_a = coro_new(fn_ra, NULL, 0);
	r_b = coro_new(fn_rb, NULL, 0);
	coro_resume(r_a); /* a -> b -> a, then a yields */
	clobber();
	coro_resume(r_a); /* a ends */
	assert_true(coro_done(r_a));
	coro_resume(r_b); /* b ends */
	assert_true(coro_done(r_b));
	assert_int_equal(r_bad[0], 0);
	assert_int_equal(r_bad[1], 0);
	assert_int_equal(r_misaligned, 0);
	/* and the main stack's own registers across a resume */
	struct coro *c = coro_new(fn_ra, NULL, 0);
	r_b = coro_new(fn_rb, NULL, 0);
	r_a = c;
	assert_int_equal(regs_across((void (*)(void *))coro_resume, c), 0);
	assert_int_equal(regs_across((void (*)(void *))coro_resume, c), 0);
	coro_resume(r_b);
	assert_true(coro_done(c) && coro_done(r_b));
	coro_free(c);
	coro_free(r_b);
}
#else
static void test_callee_saved_and_alignment(void **state) { skip(); }
#endif

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
		cmocka_unit_test(test_callee_saved_and_alignment),
		cmocka_unit_test(test_switch_is_cheap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
