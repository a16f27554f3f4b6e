/* coro/runq: the run queue hands over directly to the next runnable coroutine (counted), in
 * FIFO order; a coroutine that yields in a loop does not starve the others. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "coro/coro.h"
#include "coro/runq.h"

static char trace[4096];
static size_t tlen;
static void mark(char c)
{
	if (tlen + 1 < sizeof trace) {
		trace[tlen++] = c;
		trace[tlen] = 0;
	}
}

/* ---- ping-pong: wake the peer, wait to be woken ---- */

#define ROUNDS 1000

struct pp {
	struct runq *q;
	struct coro *self, *peer_co;
	struct pp *peer;
	int waiting, turn_is_mine;
	char name;
	int rounds;
};

static void wake(struct pp *p)
{
	p->turn_is_mine = 1;
	if (p->waiting) {
		p->waiting = 0;
		runq_push(p->q, p->self);
	}
}

static void pp_body(void *arg)
{
	struct pp *p = arg;
	for (int r = 0; r < ROUNDS; r++) {
		while (!p->turn_is_mine) {
			p->waiting = 1;
			runq_wait(p->q);
		}
		p->turn_is_mine = 0;
		mark(p->name);
		p->rounds++;
		wake(p->peer);
	}
}

static void test_direct_handoff_counted(void **state)
{
	struct runq q;
	assert_int_equal(runq_init(&q, 2), 0);
	struct pp a = {.q = &q, .name = 'A', .turn_is_mine = 1}, b = {.q = &q, .name = 'B'};
	a.peer = &b;
	b.peer = &a;
	a.self = coro_new(pp_body, &a, 0);
	b.self = coro_new(pp_body, &b, 0);
	assert_non_null(a.self);
	assert_non_null(b.self);
	tlen = 0;
	runq_push(&q, a.self);
	runq_push(&q, b.self);
	runq_run(&q);
	assert_true(coro_done(a.self));
	assert_true(coro_done(b.self));
	assert_int_equal(a.rounds, ROUNDS);
	assert_int_equal(b.rounds, ROUNDS);
	/* strict alternation ABAB... */
	assert_int_equal(tlen, 2 * ROUNDS);
	for (size_t i = 0; i < tlen; i++)
		assert_int_equal(trace[i], i % 2 ? 'B' : 'A');
	/* Every hand-over but the first resume of each and the end went directly: the loop on
	 * the thread's stack resumed only the two starts. Without the direct path (yield to the
	 * loop, loop resumes) via_loop would be ~2 x ROUNDS and direct 0. */
	printf("# direct %llu, via the loop %llu\n", (unsigned long long)q.direct,
	       (unsigned long long)q.via_loop);
	assert_true(q.via_loop <= 2);
	assert_true(q.direct >= 2 * ROUNDS - 2);
	assert_true(q.direct <= 2 * ROUNDS);
	coro_free(a.self);
	coro_free(b.self);
	runq_fini(&q);
}

/* ---- fairness: a coroutine that yields in a loop does not starve the others ---- */

static struct runq *fq;
static int spins;

static void spinner(void *arg)
{
	(void)arg;
	for (int i = 0; i < 100000; i++) {
		spins++;
		mark('s');
		runq_yield(fq);
	}
}

static void worker(void *arg)
{
	char name = *(char *)arg;
	for (int i = 0; i < 5; i++) {
		mark(name);
		runq_yield(fq);
	}
}

static void test_yield_loop_fair(void **state)
{
	struct runq q;
	assert_int_equal(runq_init(&q, 3), 0);
	fq = &q;
	spins = 0;
	char nx = 'x', ny = 'y';
	struct coro *s = coro_new(spinner, NULL, 0), *x = coro_new(worker, &nx, 0),
		    *y = coro_new(worker, &ny, 0);
	tlen = 0;
	runq_push(&q, s);
	runq_push(&q, x);
	runq_push(&q, y);
	runq_run(&q);
	assert_true(coro_done(s) && coro_done(x) && coro_done(y));
	/* round robin: each of x and y marks once per turn of the spinner */
	assert_int_equal(strncmp(trace, "sxysxysxysxysxy", 15), 0);
	for (size_t i = 15; i < tlen; i++)
		assert_int_equal(trace[i], 's');
	assert_int_equal(spins, 100000);
	/* once x and y ended, the spinner hands over to itself: still counted as direct */
	assert_true(q.direct >= 100000);
	coro_free(s);
	coro_free(x);
	coro_free(y);
	runq_fini(&q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_direct_handoff_counted),
		cmocka_unit_test(test_yield_loop_fair),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
