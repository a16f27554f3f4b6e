/* alloc_workload: known allocation patterns for `ctxlab profile --alloc` tests.
 *   ab [N]        workload_a: N x 1000 B allocated then freed; workload_b: 3N x 1000 B kept
 *                 (N = 1000 by default: 1000 000 B and 3000 000 B)
 *   realloc       realloc_chain: malloc(100), then 10 reallocs doubling it (kept: 102400 B);
 *                 do_reallocarray: reallocarray(NULL, 10, 100), then to 20 x 100 (kept: 2000 B)
 *   align         one kept block from each of do_memalign (64, 1000), do_posix_memalign
 *                 (128, 2000), do_aligned_alloc (256, 4096), do_valloc (3000), do_calloc
 *                 (10 x 500), do_pvalloc (5000)
 *   threads T N   T threads each run thread_work: pthread_getattr_np first (it allocates), then
 *                 N x 64 B, kept until joined; then main frees them all (alloc 64*N*T, in
 *                 use 0 at exit)
 *   curve         steps, 2 ms apart: grow_phase 8 x 512 KiB (the peak: 4 MiB), shrink_phase
 *                 frees 6 of them (1 MiB left), regrow_phase 2 x 512 KiB (2 MiB in use at exit)
 *   hold          ab (N = 1000), then sleeps 60 s (to be stopped by a signal)
 * main also makes one calloc (the table of kept blocks: 8 x (3N + 64) bytes for ab, else
 * 512 bytes).
 * Functions are noinline so each shows as its own frame. Prints nothing; exits 0. */
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

static void *volatile sink;
static void **kept;
static size_t nkept;

static NOINLINE void keep(void *p)
{
	kept[nkept++] = p;
	memset(p, 1, 1);
}

static NOINLINE void workload_a(long n)
{
	for (long i = 0; i < n; i++) {
		void *p = malloc(1000);
		sink = p;
		free(p);
	}
}

static NOINLINE void workload_b(long n)
{
	for (long i = 0; i < 3 * n; i++)
		keep(malloc(1000));
}

static NOINLINE void realloc_chain(void)
{
	size_t n = 100;
	char *p = malloc(n);
	for (int i = 0; i < 10; i++) {
		n *= 2;
		p = realloc(p, n);
	}
	keep(p);
}

static NOINLINE void do_reallocarray(void)
{
	char *p = reallocarray(NULL, 10, 100);
	keep(reallocarray(p, 20, 100));
}

static NOINLINE void do_memalign(void) { keep(memalign(64, 1000)); }
static NOINLINE void do_posix_memalign(void)
{
	void *p = NULL;
	if (posix_memalign(&p, 128, 2000) == 0)
		keep(p);
}
static NOINLINE void do_aligned_alloc(void) { keep(aligned_alloc(256, 4096)); }
static NOINLINE void do_valloc(void) { keep(valloc(3000)); }
static NOINLINE void do_calloc(void) { keep(calloc(10, 500)); }
static NOINLINE void do_pvalloc(void) { keep(pvalloc(5000)); }

struct targ {
	long n;
	void **p;
};

static NOINLINE void *thread_work(void *arg)
{
	struct targ *t = arg;
	/* the thread's first allocation is made inside pthread_getattr_np, which holds the
	 * thread's lock (as ASan's start-up does): an interposer must not call it again there */
	pthread_attr_t a;
	if (pthread_getattr_np(pthread_self(), &a) == 0)
		pthread_attr_destroy(&a);
	for (long i = 0; i < t->n; i++)
		t->p[i] = malloc(64);
	return NULL;
}

static NOINLINE void grow_phase(void **blk)
{
	for (int i = 0; i < 8; i++) {
		blk[i] = malloc(512 * 1024);
		memset(blk[i], 1, 512 * 1024);
		usleep(2000);
	}
}

static NOINLINE void shrink_phase(void **blk)
{
	for (int i = 0; i < 6; i++) {
		free(blk[i]);
		usleep(2000);
	}
}

static NOINLINE void regrow_phase(void **blk)
{
	for (int i = 0; i < 2; i++) {
		blk[i] = malloc(512 * 1024);
		memset(blk[i], 1, 512 * 1024);
		usleep(2000);
	}
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "ab";
	long cap = 64;
	if (!strcmp(mode, "ab") && argc > 2)
		cap = 3 * atol(argv[2]) + 64;
	else if (!strcmp(mode, "ab") || !strcmp(mode, "hold"))
		cap = 3064;
	if (cap < 64 || cap > 4000000)
		return 2;
	kept = calloc((size_t)cap, sizeof(void *)); /* one calloc of 8 * cap bytes, from main */
	if (!kept)
		return 1;
	if (!strcmp(mode, "ab")) {
		long n = argc > 2 ? atol(argv[2]) : 1000;
		if (n < 1 || n > 1000000)
			return 2;
		workload_a(n);
		workload_b(n);
	} else if (!strcmp(mode, "hold")) {
		workload_a(1000);
		workload_b(1000);
		sleep(60);
	} else if (!strcmp(mode, "realloc")) {
		realloc_chain();
		do_reallocarray();
	} else if (!strcmp(mode, "align")) {
		do_memalign();
		do_posix_memalign();
		do_aligned_alloc();
		do_valloc();
		do_calloc();
		do_pvalloc();
	} else if (!strcmp(mode, "threads")) {
		int nt = argc > 2 ? atoi(argv[2]) : 8;
		long n = argc > 3 ? atol(argv[3]) : 10000;
		if (nt < 1 || nt > 64 || n < 1 || n > 1000000)
			return 2;
		pthread_t th[64];
		struct targ ta[64];
		for (int i = 0; i < nt; i++) {
			ta[i].n = n;
			ta[i].p = calloc((size_t)n, sizeof(void *));
			if (!ta[i].p || pthread_create(&th[i], NULL, thread_work, &ta[i]))
				return 1;
		}
		for (int i = 0; i < nt; i++) {
			pthread_join(th[i], NULL);
			for (long j = 0; j < n; j++)
				free(ta[i].p[j]);
			free(ta[i].p);
		}
	} else if (!strcmp(mode, "curve")) {
		void *blk[8];
		grow_phase(blk);
		shrink_phase(blk);
		regrow_phase(blk);
	} else {
		fprintf(stderr, "alloc_workload: unknown mode '%s'\n", mode);
		return 2;
	}
	return 0;
}
