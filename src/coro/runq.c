#include "coro/runq.h"

#include <errno.h>
#include <stdlib.h>

#include "core/log.h"

int runq_init(struct runq *q, size_t cap)
{
	*q = (struct runq){0};
	q->q = calloc(cap ? cap : 1, sizeof *q->q);
	if (!q->q)
		return -ENOMEM;
	q->cap = cap ? cap : 1;
	return 0;
}

void runq_fini(struct runq *q)
{
	free(q->q);
	q->q = NULL;
	q->cap = q->n = 0;
}

void runq_push(struct runq *q, struct coro *c)
{
	if (q->n == q->cap)
		BUG("runq_push: the run queue is full (%zu)", q->cap);
	size_t i = q->head + q->n;
	if (i >= q->cap)
		i -= q->cap;
	q->q[i] = c;
	q->n++;
}

static struct coro *pop(struct runq *q)
{
	struct coro *c = q->q[q->head];
	if (++q->head == q->cap)
		q->head = 0;
	q->n--;
	return c;
}

void runq_wait(struct runq *q)
{
	if (q->n) {
		q->direct++;
		coro_transfer(pop(q));
	} else {
		coro_yield();
	}
}

void runq_yield(struct runq *q)
{
	runq_push(q, coro_current());
	runq_wait(q);
}

void runq_run(struct runq *q)
{
	while (q->n) {
		q->via_loop++;
		coro_resume(pop(q));
	}
}
