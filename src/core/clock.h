/* clock: the one time source for intervals (CLOCK_MONOTONIC). Never gettimeofday for intervals.
 * All functions are thread-safe and async-signal-safe except clock_sleep_until_ns's spin phase,
 * which is fine anywhere but burns CPU for at most CLOCK_SPIN_NS. */
#ifndef CTXLAB_CORE_CLOCK_H
#define CTXLAB_CORE_CLOCK_H

#include <stdint.h>

#define NS_PER_US 1000ULL
#define NS_PER_MS 1000000ULL
#define NS_PER_S 1000000000ULL
/* The last part of a precise sleep is a spin; below this a kernel sleep is not trusted. */
#define CLOCK_SPIN_NS (50 * NS_PER_US)

uint64_t clock_now_ns(void);        /* CLOCK_MONOTONIC */
uint64_t clock_wall_ns(void);       /* CLOCK_REALTIME, for timestamps in results only */
uint64_t clock_thread_cpu_ns(void); /* CPU time of the calling thread */

/* Sleeps until the monotonic deadline: clock_nanosleep(TIMER_ABSTIME) to within
 * CLOCK_SPIN_NS, then spins. Returns at once when the deadline has passed. Precise to
 * about 50 us when the CPU is free; `precise`=0 skips the spin (cheap, ~timer slack). */
void clock_sleep_until_ns(uint64_t deadline_ns, int precise);
void clock_sleep_ns(uint64_t ns);

/* Burns CPU in user mode for `ns` of this thread's CPU time (a known workload). */
void clock_burn_cpu_ns(uint64_t ns);

#endif
