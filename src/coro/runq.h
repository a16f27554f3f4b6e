/* runq: a FIFO run queue of coroutines with direct hand-over — the scheduler of the
 * coroutine modes of `ctxlab pingpong` (src/bench/pingpong.c).
 *
 * A coroutine that must wait calls runq_wait(): when the queue holds a runnable coroutine, it
 * switches straight to the queue's head (coro_transfer: one context switch, counted in
 * `direct`); when the queue is empty it yields to the loop runq_run() on the thread's stack
 * (counted in `via_loop` when the loop resumes the next one). Either way the head of the FIFO
 * runs next, so the order — and the fairness — is that of a plain "yield to the loop, loop
 * resumes the head" scheduler; the direct path only saves the second switch through the
 * thread's stack.
 *
 *   struct runq q;
 *   runq_init(&q, 2);           // room for 2 runnable coroutines
 *   runq_push(&q, a); runq_push(&q, b);
 *   runq_run(&q);               // thread stack: runs until nothing is runnable
 *   ...inside a coroutine: runq_push(&q, peer); runq_wait(&q);  // wake peer, wait to be woken
 *   ...or runq_yield(&q);       // stay runnable, let the others run first
 *
 * A coroutine must be on the queue at most once (the caller tracks "already woken"), and must
 * have been created by this thread. Not thread-safe: one queue per thread.
 */
#ifndef CTXLAB_CORO_RUNQ_H
#define CTXLAB_CORO_RUNQ_H

#include <stddef.h>
#include <stdint.h>

#include "coro/coro.h"

struct runq {
	struct coro **q;
	size_t cap, head, n;
	uint64_t direct;   /* hand-overs straight from a waiting coroutine to the head */
	uint64_t via_loop; /* coroutines resumed by runq_run (the thread's stack) */
};

int runq_init(struct runq *q, size_t cap); /* 0 or -ENOMEM; cap >= 1 */
void runq_fini(struct runq *q);
void runq_push(struct runq *q, struct coro *c); /* BUG() when full */
/* Inside a coroutine: suspends it until it is pushed and picked again (see above). */
void runq_wait(struct runq *q);
/* Inside a coroutine: push itself, then runq_wait (the others queued before run first). */
void runq_yield(struct runq *q);
/* On the thread's stack: resumes the head until the queue is empty. */
void runq_run(struct runq *q);

#endif
