#include "core/clock.h"

#include <errno.h>
#include <time.h>

static uint64_t ts_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

uint64_t clock_now_ns(void) { return ts_ns(CLOCK_MONOTONIC); }
uint64_t clock_wall_ns(void) { return ts_ns(CLOCK_REALTIME); }
uint64_t clock_thread_cpu_ns(void) { return ts_ns(CLOCK_THREAD_CPUTIME_ID); }

void clock_sleep_until_ns(uint64_t deadline_ns, int precise)
{
	uint64_t now = clock_now_ns();
	if (now >= deadline_ns)
		return;
	uint64_t sleep_to = deadline_ns;
	if (precise) {
		if (deadline_ns - now <= CLOCK_SPIN_NS)
			sleep_to = 0;
		else
			sleep_to = deadline_ns - CLOCK_SPIN_NS;
	}
	if (sleep_to) {
		struct timespec ts = {.tv_sec = (time_t)(sleep_to / NS_PER_S),
				      .tv_nsec = (long)(sleep_to % NS_PER_S)};
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
	}
	if (precise)
		while (clock_now_ns() < deadline_ns)
			;
}

void clock_sleep_ns(uint64_t ns) { clock_sleep_until_ns(clock_now_ns() + ns, 0); }

static volatile uint64_t burn_sink;

void clock_burn_cpu_ns(uint64_t ns)
{
	uint64_t end = clock_thread_cpu_ns() + ns;
	uint64_t x = 0;
	while (clock_thread_cpu_ns() < end)
		for (int i = 0; i < 1000; i++)
			x += (uint64_t)i * 2654435761u;
	burn_sink = x;
}
