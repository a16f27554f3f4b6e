/* work: the per-message work knob shared by every protocol.
 *
 * proto_work(cpu_us, mem_bytes, stride_bytes) first touches mem_bytes of a per-thread
 * working-set buffer, one read-modify-write every stride_bytes (0 = 64, a cache line), then
 * burns cpu_us of the calling thread's CPU time (clock_burn_cpu_ns: the thread CPU clock, so
 * time spent descheduled does not count). The touching costs CPU of its own on top of cpu_us.
 *
 * The buffer belongs to the calling thread: it grows (free + malloc, contents are irrelevant)
 * the first time a larger working set is asked for and is freed when the thread exits
 * (pthread key destructor), so thread-per-connection engines do not leak it. When it cannot
 * be allocated the touch is skipped (best effort: the work knob never fails a request).
 *
 * Test hook (injected noise, for the adaptive-precision test): CTXLAB_TEST_WORK_JITTER=US:PCT
 * scales every burn of exactly US microseconds by one factor per process, drawn uniformly in
 * [1 - PCT/100, 1 + PCT/100] when the process first burns (so each server started by `ctxlab
 * run`, one per trial for a single-process engine, gets its own CPU per request).
 */
#include "proto/proto.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/clock.h"

#define WORK_DEFAULT_STRIDE 64

struct work_set {
	unsigned char *p;
	size_t size_bytes;
};

static pthread_key_t work_key;
static pthread_once_t work_once = PTHREAD_ONCE_INIT;
static _Thread_local struct work_set *work_tls;

static void work_free(void *v)
{
	struct work_set *w = v;
	free(w->p);
	free(w);
}

static void work_key_init(void) { (void)pthread_key_create(&work_key, work_free); }

static struct work_set *work_get(size_t size_bytes)
{
	struct work_set *w = work_tls;
	if (!w) {
		pthread_once(&work_once, work_key_init);
		w = calloc(1, sizeof(*w));
		if (!w)
			return NULL;
		pthread_setspecific(work_key, w);
		work_tls = w;
	}
	if (w->size_bytes < size_bytes) {
		free(w->p);
		w->p = malloc(size_bytes);
		w->size_bytes = w->p ? size_bytes : 0;
		if (!w->p)
			return NULL;
	}
	return w;
}

static unsigned long long jitter_us;
static double jitter_factor = 1.0;
static pthread_once_t jitter_once = PTHREAD_ONCE_INIT;

static void jitter_init(void)
{
	const char *e = getenv("CTXLAB_TEST_WORK_JITTER");
	unsigned long long us;
	double pct;
	if (!e || sscanf(e, "%llu:%lf", &us, &pct) != 2 || !(pct >= 0 && pct < 100))
		return;
	uint64_t x = clock_now_ns() ^ ((uint64_t)getpid() << 32);
	x ^= x >> 33; /* splitmix-style mixing of pid and time */
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	double u = (double)(x >> 11) / 9007199254740992.0; /* [0, 1) */
	jitter_us = us;
	jitter_factor = 1 + pct / 100 * (2 * u - 1);
}

void proto_work(uint64_t cpu_us, uint64_t mem_bytes, uint64_t stride_bytes)
{
	if (cpu_us) {
		pthread_once(&jitter_once, jitter_init);
		if (jitter_us && cpu_us == jitter_us)
			cpu_us = (uint64_t)((double)cpu_us * jitter_factor + 0.5);
	}
	if (mem_bytes && mem_bytes <= (uint64_t)SIZE_MAX) {
		struct work_set *w = work_get((size_t)mem_bytes);
		if (w) {
			volatile unsigned char *b = w->p;
			uint64_t stride = stride_bytes ? stride_bytes : WORK_DEFAULT_STRIDE;
			for (uint64_t off = 0; off < mem_bytes; off += stride)
				b[off]++;
		}
	}
	if (cpu_us)
		clock_burn_cpu_ns(cpu_us * NS_PER_US);
}
