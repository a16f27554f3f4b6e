/* pace: the send schedule of an open-loop (constant-rate) run.
 *
 * Tick j of a schedule is due at start_ns + j * 1e9 / rate_per_s, computed from the start
 * every time (no accumulated rounding: tick 1e9 of a 1 MHz schedule is exactly 1000 s late).
 * A thread's ticks are dealt round-robin to its n connections: tick j belongs to connection
 * j % n as that connection's (j / n)-th send, so each connection sends at rate/n and the
 * connections are evenly staggered. Pure arithmetic, no clock reads; not thread-safe per
 * struct (one per thread). */
#ifndef CTXLAB_LOAD_PACE_H
#define CTXLAB_LOAD_PACE_H

#include <stdint.h>

struct pace {
	uint64_t start_ns;
	double interval_ns; /* 1e9 / rate (informative) */
	double rate_per_s;
	uint32_t nconns;
	uint64_t next;      /* next tick to deal */
};

/* rate_per_s > 0, nconns >= 1. */
void pace_init(struct pace *p, uint64_t start_ns, double rate_per_s, uint32_t nconns);
uint64_t pace_tick_ns(const struct pace *p, uint64_t tick);
/* Intended send time of connection conn's k-th send. */
static inline uint64_t pace_conn_ns(const struct pace *p, uint32_t conn, uint64_t k)
{
	return pace_tick_ns(p, k * p->nconns + conn);
}
/* Deals the next tick if it is due at now_ns: returns 1 and sets *conn, *k, *intended_ns;
 * 0 when the next tick lies in the future. */
int pace_next_due(struct pace *p, uint64_t now_ns, uint32_t *conn, uint64_t *k,
		  uint64_t *intended_ns);
/* When the next tick is due. */
static inline uint64_t pace_next_ns(const struct pace *p) { return pace_tick_ns(p, p->next); }

#endif
