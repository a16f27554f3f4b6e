#include "load/pace.h"

void pace_init(struct pace *p, uint64_t start_ns, double rate_per_s, uint32_t nconns)
{
	p->start_ns = start_ns;
	p->interval_ns = 1e9 / rate_per_s;
	p->rate_per_s = rate_per_s;
	p->nconns = nconns ? nconns : 1;
	p->next = 0;
}

uint64_t pace_tick_ns(const struct pace *p, uint64_t tick)
{
	/* tick * 1e9 / rate in long double (64-bit mantissa on x86): exact to the ns for any
	 * schedule shorter than ~290 years, with no rounding of the interval accumulated */
	return p->start_ns + (uint64_t)((long double)tick * 1e9L / (long double)p->rate_per_s);
}

int pace_next_due(struct pace *p, uint64_t now_ns, uint32_t *conn, uint64_t *k,
		  uint64_t *intended_ns)
{
	uint64_t t = pace_tick_ns(p, p->next);
	if (t > now_ns)
		return 0;
	*conn = (uint32_t)(p->next % p->nconns);
	*k = p->next / p->nconns;
	*intended_ns = t;
	p->next++;
	return 1;
}
