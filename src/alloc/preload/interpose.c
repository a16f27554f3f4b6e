/* libctxlab-alloc.so: the allocation interposer of `ctxlab profile --alloc` (LD_PRELOADed into
 * the profiled command). It wraps malloc, calloc, realloc, free, memalign, posix_memalign,
 * aligned_alloc, valloc and pvalloc, and writes one record per recorded call (alloc/allocrec.h
 * describes the files, the order and the sampling). It links nothing of ctxlab's.
 *
 * Rules it keeps, since it runs inside any program:
 * - the real functions come from dlsym(RTLD_NEXT); while they are being looked up (dlsym may
 *   allocate), allocations come from a small static arena whose blocks are never freed;
 * - a thread-local in-hook flag: an allocation made while recording (by libc inside
 *   pthread_getattr_np, open, mmap...) goes to the real function unrecorded;
 * - thread-local state uses the initial-exec TLS model (no allocation on first access);
 * - records go to per-thread chunks of a MAP_SHARED file: no lock per call, one atomic add
 *   for seq, one per chunk claimed; a thread's chunk is unmapped at its exit (key destructor);
 *   allocations after that (glibc's own thread teardown) go to one shared chunk under a lock;
 * - fork: the child drops the parent's chunks and header and starts files of its own;
 * - stacks by frame pointers, bounded by ALLOCREC_MAX_DEPTH and by the top of the thread's
 *   stack (see thread_init; a frame pointer that does not go up, or goes past it, ends the
 *   walk: code built without frame pointers gives short stacks);
 * Anything that fails (no directory, disk full) turns recording off; the program runs on.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "alloc/allocrec.h"

extern void *__libc_stack_end; /* ld.so's: the main thread's stack, above main's frames */

#define EXPORT __attribute__((visibility("default")))
#define TLS __thread __attribute__((tls_model("initial-exec")))
#define INLINE static inline __attribute__((always_inline))

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static void *(*real_memalign)(size_t, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_valloc)(size_t);
static void *(*real_pvalloc)(size_t);
static void *(*real_dlopen)(const char *, int);

/* ---- bootstrap arena (while dlsym runs) -------------------------------------------- */

static _Alignas(64) char arena[256 * 1024];
static size_t arena_used;

static void *arena_alloc(size_t n, size_t align)
{
	if (align < 16)
		align = 16;
	size_t off = (__atomic_load_n(&arena_used, __ATOMIC_RELAXED) + 16 + align - 1) & ~(align - 1);
	if (off + n > sizeof arena)
		return NULL;
	__atomic_store_n(&arena_used, off + n, __ATOMIC_RELAXED);
	((size_t *)(arena + off))[-1] = n;
	return arena + off;
}

static int in_arena(const void *p)
{
	return (const char *)p >= arena && (const char *)p < arena + sizeof arena;
}

static int resolving;

static void resolve(void)
{
	if (resolving)
		return;
	resolving = 1;
	real_malloc = dlsym(RTLD_NEXT, "malloc");
	real_calloc = dlsym(RTLD_NEXT, "calloc");
	real_realloc = dlsym(RTLD_NEXT, "realloc");
	real_free = dlsym(RTLD_NEXT, "free");
	real_memalign = dlsym(RTLD_NEXT, "memalign");
	real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
	real_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
	real_valloc = dlsym(RTLD_NEXT, "valloc");
	real_pvalloc = dlsym(RTLD_NEXT, "pvalloc");
	real_dlopen = dlsym(RTLD_NEXT, "dlopen");
	resolving = 0;
}

/* ---- process state ---------------------------------------------------------------- */

static int state;         /* 0 not set up, 1 recording, -1 off */
static int ctor_done;     /* our constructor has run: the environment is surely readable */
static int setup_lock;
static int fd = -1;
static struct allocrec_hdr *hdr;
static char maps_path[4200];
static uint64_t sample_mean;
static uint64_t seq_counter;
static pthread_key_t exit_key;
static int have_key;

/* the chunk of threads past their exit destructor, under a lock */
static int late_lock;
static char *late_chunk;
static uint32_t late_used;

/* sampled mode: live sampled addresses (open addressing, 0 = empty, 1 = deleted) */
#define SLOTS (1u << 20)
static uintptr_t *sampled;

struct tstate {
	char *chunk;
	uint32_t used;
	int in_hook;
	int registered, dead;
	uint32_t tid;
	int64_t until_sample;
	uint64_t rng;
	uintptr_t stack_lo, stack_hi;
};
static TLS struct tstate T;

static void spin_lock(int *l)
{
	while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(l, __ATOMIC_RELAXED)) {
#if defined(__x86_64__) || defined(__i386__)
			__builtin_ia32_pause();
#endif
		}
}
static void spin_unlock(int *l) { __atomic_store_n(l, 0, __ATOMIC_RELEASE); }

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void read_small(const char *path, char *out, size_t len, int link)
{
	out[0] = 0;
	if (link) {
		ssize_t n = readlink(path, out, len - 1);
		out[n > 0 ? n : 0] = 0;
		return;
	}
	int f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return;
	ssize_t n = read(f, out, len - 1);
	close(f);
	out[n > 0 ? n : 0] = 0;
	char *nl = strchr(out, '\n');
	if (nl)
		*nl = 0;
}

static char maps_buf[1 << 20];
static int maps_lock;

/* Copies /proc/self/maps to maps.PID.N (through a temporary, renamed: the reader never sees a
 * half copy). */
static void save_maps(void)
{
	if (state != 1 || !maps_path[0])
		return;
	spin_lock(&maps_lock);
	int in = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	size_t n = 0;
	if (in >= 0) {
		ssize_t r;
		while (n < sizeof maps_buf && (r = read(in, maps_buf + n, sizeof maps_buf - n)) > 0)
			n += (size_t)r;
		close(in);
	}
	char tmp[4300];
	snprintf(tmp, sizeof tmp, "%s.tmp", maps_path);
	int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out >= 0) {
		size_t off = 0;
		while (off < n) {
			ssize_t w = write(out, maps_buf + off, n - off);
			if (w <= 0)
				break;
			off += (size_t)w;
		}
		close(out);
		rename(tmp, maps_path);
	}
	spin_unlock(&maps_lock);
}

static void thread_exit(void *arg)
{
	(void)arg;
	T.in_hook++;
	if (T.chunk)
		munmap(T.chunk, ALLOCREC_CHUNK);
	T.chunk = NULL;
	T.dead = 1;
	T.in_hook--;
}

static void after_fork_child(void)
{
	/* the parent's files are the parent's: unmap them here (the parent keeps its own) */
	if (T.chunk)
		munmap(T.chunk, ALLOCREC_CHUNK);
	T.chunk = NULL;
	T.used = 0;
	T.tid = 0;
	T.stack_lo = T.stack_hi = 0;
	if (late_chunk)
		munmap(late_chunk, ALLOCREC_CHUNK);
	late_chunk = NULL;
	late_used = 0;
	late_lock = maps_lock = setup_lock = 0;
	if (hdr)
		munmap(hdr, ALLOCREC_HDR_SIZE);
	hdr = NULL;
	if (fd >= 0)
		close(fd);
	fd = -1;
	maps_path[0] = 0;
	if (state == 1)
		state = 0; /* set up again, with files of the child's own, at its next record */
}

/* Opens rec.PID.N and maps its header. Called with T.in_hook set. */
static void setup(void)
{
	spin_lock(&setup_lock);
	if (state) {
		spin_unlock(&setup_lock);
		return;
	}
	const char *dir = getenv("CTXLAB_ALLOC_DIR");
	const char *smp = getenv("CTXLAB_ALLOC_SAMPLE");
	int ok = 0;
	if (dir && dir[0]) {
		sample_mean = smp ? strtoull(smp, NULL, 10) : 0;
		int pid = (int)getpid();
		char path[4200];
		for (int n = 0; n < 1000 && fd < 0; n++) {
			snprintf(path, sizeof path, "%s/rec.%d.%d", dir, pid, n);
			fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
			if (fd < 0 && errno != EEXIST)
				break;
			if (fd >= 0)
				snprintf(maps_path, sizeof maps_path, "%s/maps.%d.%d", dir, pid, n);
		}
		if (fd >= 0 && ftruncate(fd, ALLOCREC_HDR_SIZE) == 0) {
			void *h = mmap(NULL, ALLOCREC_HDR_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
				       0);
			if (h != MAP_FAILED) {
				hdr = h;
				hdr->version = 1;
				hdr->pid = (uint32_t)pid;
				hdr->sample_mean = sample_mean;
				hdr->start_ts = now_ns();
				read_small("/proc/self/comm", hdr->comm, sizeof hdr->comm, 0);
				read_small("/proc/self/exe", hdr->exe, sizeof hdr->exe, 1);
				__atomic_store_n(&hdr->magic, ALLOCREC_MAGIC, __ATOMIC_RELEASE);
				ok = 1;
			}
		}
		if (ok && sample_mean) {
			void *s = mmap(NULL, SLOTS * sizeof(uintptr_t), PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
			if (s == MAP_FAILED)
				ok = 0;
			else if (!sampled)
				sampled = s;
			else
				munmap(s, SLOTS * sizeof(uintptr_t)); /* a forked child keeps its copy */
		}
		if (ok && !have_key) {
			have_key = pthread_key_create(&exit_key, thread_exit) == 0;
			pthread_atfork(NULL, NULL, after_fork_child);
		}
	}
	/* a call before the environment is set up (an early initializer: ASan's) finds no
	 * CTXLAB_ALLOC_DIR: stay unset and try again, until our constructor has run */
	__atomic_store_n(&state, ok ? 1 : (dir || ctor_done) ? -1 : 0, __ATOMIC_RELEASE);
	spin_unlock(&setup_lock);
	if (ok)
		save_maps();
}

static char *claim_chunk(void)
{
	uint64_t k = __atomic_fetch_add(&hdr->next_chunk, 1, __ATOMIC_RELAXED);
	off_t off = (off_t)ALLOCREC_HDR_SIZE + (off_t)k * ALLOCREC_CHUNK;
	/* fallocate only grows the file (ftruncate could shrink it under a race); where it
	 * fails (no space, a file system without it) this thread records no more: writing a
	 * mapping past the end of the file would be SIGBUS */
	if (fallocate(fd, 0, off, ALLOCREC_CHUNK) != 0)
		return NULL;
	void *c = mmap(NULL, ALLOCREC_CHUNK, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off);
	return c == MAP_FAILED ? NULL : c;
}

static double rand01(void)
{
	uint64_t x = T.rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	T.rng = x;
	/* (0, 1]: 53 bits */
	return ((double)((x * 0x2545F4914F6CDD1Dull) >> 11) + 1.0) / 9007199254740992.0;
}

static int64_t next_interval(void)
{
	double v = -log(rand01()) * (double)sample_mean;
	return v < 1 ? 1 : v > 9e18 ? INT64_MAX : (int64_t)v;
}

static void thread_init(void)
{
	T.tid = (uint32_t)syscall(SYS_gettid);
	/* The top of this thread's stack, bounding the frame-pointer walk (which only goes up
	 * from the hook's own frame). Never pthread_getattr_np: the thread may be inside it
	 * (it allocates, holding the thread's lock: ASan's start-up does that), and it would
	 * deadlock. The main thread: __libc_stack_end (its frames lie below it). Another
	 * thread with a glibc-made or attr_setstack stack: its descriptor (pthread_self) sits
	 * at the top of that stack. Else (a coroutine's stack, a clone without glibc): 256 KiB
	 * above here, a guess that gives short stacks rather than a bad read. */
	uintptr_t here = (uintptr_t)__builtin_frame_address(0), top = 0;
	if (T.tid == (uint32_t)getpid() && __libc_stack_end)
		top = (uintptr_t)__libc_stack_end;
	else if ((uintptr_t)pthread_self() > here && (uintptr_t)pthread_self() - here < (64u << 20))
		top = (uintptr_t)pthread_self();
	if (top <= here)
		top = here + 256 * 1024;
	T.stack_lo = 0;
	T.stack_hi = top;
	T.rng = ((uint64_t)T.tid * 0x9E3779B97F4A7C15ull) ^ now_ns() ^ (uintptr_t)&T;
	if (!T.rng)
		T.rng = 1;
	if (sample_mean)
		T.until_sample = next_interval();
}

static void new_chunk(char **chunk, uint32_t *used, int late)
{
	*chunk = claim_chunk();
	*used = ALLOCREC_CHUNKHDR;
	if (!late && *chunk && !T.registered) {
		T.registered = 1;
		pthread_setspecific(exit_key, (void *)1);
	}
}

/* The counters of the calling thread: those of its chunk (claimed when it has none); NULL
 * when no chunk can be had. A thread past its exit destructor uses the shared late chunk,
 * under late_lock: taken here (*late = 1), released by ctr_done. */
static struct allocrec_chunkhdr *ctr_get(int *late)
{
	*late = T.dead || !have_key;
	char **chunk = &T.chunk;
	uint32_t *used = &T.used;
	if (*late) {
		spin_lock(&late_lock);
		chunk = &late_chunk;
		used = &late_used;
	}
	if (!*chunk)
		new_chunk(chunk, used, *late);
	return (struct allocrec_chunkhdr *)*chunk;
}

static void ctr_done(int late)
{
	if (late)
		spin_unlock(&late_lock);
}

/* Writes one record in this thread's chunk (or the late one: late_lock held by ctr_get). */
static void emit(int late, int kind, uint64_t seq, uint64_t ts, uintptr_t addr, uint64_t size,
		 const uintptr_t *frames, int depth)
{
	size_t need = sizeof(struct allocrec) + (size_t)depth * 8;
	char **chunk = late ? &late_chunk : &T.chunk;
	uint32_t *used = late ? &late_used : &T.used;
	if (*chunk && *used + need > ALLOCREC_CHUNK) {
		munmap(*chunk, ALLOCREC_CHUNK);
		*chunk = NULL;
	}
	if (!*chunk)
		new_chunk(chunk, used, late);
	if (!*chunk)
		return;
	struct allocrec *r = (struct allocrec *)(*chunk + *used);
	r->depth = (uint8_t)depth;
	r->tid = T.tid;
	r->seq = seq;
	r->ts = ts;
	r->addr = addr;
	r->size = size;
	memcpy(r->frames, frames, (size_t)depth * 8);
	__atomic_store_n(&r->kind, (uint8_t)kind, __ATOMIC_RELEASE);
	*used += (uint32_t)need;
}

/* The frames above the hook (its caller first). Inlined into each hook, so frame 0 is the
 * hook's own frame and its return address is the caller's. */
INLINE int walk(uintptr_t *out)
{
	uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
	int d = 0;
	while (d < ALLOCREC_MAX_DEPTH) {
		if (fp < T.stack_lo || fp + 16 > T.stack_hi || (fp & 7))
			break;
		uintptr_t next = ((uintptr_t *)fp)[0], ret = ((uintptr_t *)fp)[1];
		if (!ret)
			break;
		out[d++] = ret;
		if (next <= fp)
			break;
		fp = next;
	}
	return d;
}

static int enter(void)
{
	if (T.in_hook)
		return 0;
	int s = __atomic_load_n(&state, __ATOMIC_ACQUIRE);
	if (s < 0)
		return 0;
	T.in_hook++;
	if (!s) {
		setup();
		if (__atomic_load_n(&state, __ATOMIC_ACQUIRE) != 1) {
			T.in_hook--;
			return 0;
		}
	}
	if (!T.tid)
		thread_init();
	return 1;
}

static void leave(void) { T.in_hook--; }

/* hash of live sampled addresses */
static size_t slot_of(uintptr_t a) { return (size_t)((a >> 4) * 0x9E3779B97F4A7C15ull >> 44); }

static int sampled_add(uintptr_t a)
{
	size_t i = slot_of(a);
	for (unsigned n = 0; n < 4096; n++, i = (i + 1) & (SLOTS - 1)) {
		uintptr_t v = __atomic_load_n(&sampled[i], __ATOMIC_RELAXED);
		if ((v == 0 || v == 1) &&
		    __atomic_compare_exchange_n(&sampled[i], &v, a, 0, __ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED))
			return 1;
	}
	return 0;
}

static int sampled_del(uintptr_t a)
{
	size_t i = slot_of(a);
	for (unsigned n = 0; n < 4096; n++, i = (i + 1) & (SLOTS - 1)) {
		uintptr_t v = __atomic_load_n(&sampled[i], __ATOMIC_ACQUIRE);
		if (v == 0)
			return 0;
		if (v == a)
			return __atomic_compare_exchange_n(&sampled[i], &v, 1, 0, __ATOMIC_ACQ_REL,
							   __ATOMIC_RELAXED);
	}
	return 0;
}

/* Counts an allocation (p, size) made by kind and records it (exact mode, or when sampled),
 * with the stack in frames. */
static void on_alloc(int kind, void *p, size_t size, const uintptr_t *frames, int depth)
{
	int late;
	struct allocrec_chunkhdr *c = ctr_get(&late);
	if (c) {
		c->calls[kind]++;
		c->bytes += size;
	}
	if (!p)
		goto out;
	if (sample_mean) {
		T.until_sample -= (int64_t)size;
		if (T.until_sample > 0)
			goto out;
		T.until_sample = next_interval();
		if (!sampled_add((uintptr_t)p)) {
			if (c)
				c->dropped++;
			goto out;
		}
	}
	uint64_t seq = __atomic_fetch_add(&seq_counter, 1, __ATOMIC_RELAXED);
	emit(late, kind, seq, now_ns(), (uintptr_t)p, size, frames, depth);
out:
	ctr_done(late);
}

/* Counts a free of p and records it (exact mode, or p sampled), before the real free runs
 * (see allocrec.h: order). */
static void on_free(void *p)
{
	int late;
	struct allocrec_chunkhdr *c = ctr_get(&late);
	if (c)
		c->frees++;
	if (!sample_mean || sampled_del((uintptr_t)p)) {
		uint64_t seq = __atomic_fetch_add(&seq_counter, 1, __ATOMIC_RELAXED);
		emit(late, ALLOCREC_FREE, seq, now_ns(), (uintptr_t)p, 0, NULL, 0);
	}
	ctr_done(late);
}

/* ---- the hooks --------------------------------------------------------------------- */

EXPORT void *malloc(size_t n)
{
	if (!real_malloc) {
		resolve();
		if (!real_malloc)
			return arena_alloc(n, 16);
	}
	if (!enter())
		return real_malloc(n);
	void *p = real_malloc(n);
	uintptr_t fr[ALLOCREC_MAX_DEPTH];
	int d = walk(fr);
	on_alloc(ALLOCREC_MALLOC, p, n, fr, d);
	leave();
	return p;
}

EXPORT void *calloc(size_t n, size_t size)
{
	if (!real_calloc) {
		resolve();
		if (!real_calloc) {
			size_t t;
			if (__builtin_mul_overflow(n, size, &t))
				return NULL;
			return arena_alloc(t, 16); /* static: already zero */
		}
	}
	if (!enter())
		return real_calloc(n, size);
	void *p = real_calloc(n, size);
	uintptr_t fr[ALLOCREC_MAX_DEPTH];
	int d = walk(fr);
	size_t t = 0;
	if (__builtin_mul_overflow(n, size, &t))
		t = 0; /* refused (p is NULL): nothing was requested that could be given */
	on_alloc(ALLOCREC_CALLOC, p, t, fr, d);
	leave();
	return p;
}

EXPORT void free(void *p)
{
	if (!p || in_arena(p))
		return;
	if (!real_free)
		resolve();
	if (!real_free)
		return;
	if (!enter()) {
		real_free(p);
		return;
	}
	on_free(p);
	leave();
	real_free(p);
}

INLINE void *realloc_impl(void *p, size_t n)
{
	if (p && in_arena(p)) {
		void *q = malloc(n);
		if (q) {
			size_t old = ((size_t *)p)[-1];
			memcpy(q, p, old < n ? old : n);
		}
		return q;
	}
	if (!real_realloc) {
		resolve();
		if (!real_realloc)
			return p ? NULL : arena_alloc(n, 16);
	}
	if (!enter())
		return real_realloc(p, n);
	/* the free's place in the order is before the real call, but it is written only when
	 * the call succeeds (a failed realloc leaves p allocated) */
	uint64_t fseq = 0, fts = 0;
	int fsampled = 0;
	if (p) {
		fsampled = !sample_mean || sampled_del((uintptr_t)p);
		if (fsampled) {
			fseq = __atomic_fetch_add(&seq_counter, 1, __ATOMIC_RELAXED);
			fts = now_ns();
		}
	}
	void *q = real_realloc(p, n);
	if (p && fsampled) {
		if (q || !n) {
			int late;
			ctr_get(&late);
			emit(late, ALLOCREC_FREE_REALLOC, fseq, fts, (uintptr_t)p, 0, NULL, 0);
			ctr_done(late);
		}
		else if (sample_mean)
			sampled_add((uintptr_t)p); /* failed: still allocated, still sampled */
	}
	uintptr_t fr[ALLOCREC_MAX_DEPTH];
	int d = walk(fr);
	if (q || n)
		on_alloc(ALLOCREC_REALLOC, q, n, fr, d);
	leave();
	return q;
}

/* glibc's reallocarray may call its realloc directly: through ours, so the old block's free
 * and the new block are seen */
EXPORT void *realloc(void *p, size_t n) { return realloc_impl(p, n); }

EXPORT void *reallocarray(void *p, size_t n, size_t size)
{
	size_t t;
	if (__builtin_mul_overflow(n, size, &t)) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc_impl(p, t);
}

#define ALIGNED_HOOK(name, kind, call, bootstrap)                                              \
	EXPORT void *name(size_t align, size_t n)                                              \
	{                                                                                      \
		if (!real_##name) {                                                            \
			resolve();                                                             \
			if (!real_##name)                                                      \
				return bootstrap;                                              \
		}                                                                              \
		if (!enter())                                                                  \
			return call;                                                           \
		void *p = call;                                                                \
		uintptr_t fr[ALLOCREC_MAX_DEPTH];                                              \
		int d = walk(fr);                                                              \
		on_alloc(kind, p, n, fr, d);                                                   \
		leave();                                                                       \
		return p;                                                                      \
	}

ALIGNED_HOOK(memalign, ALLOCREC_MEMALIGN, real_memalign(align, n), arena_alloc(n, align))
ALIGNED_HOOK(aligned_alloc, ALLOCREC_ALIGNED_ALLOC, real_aligned_alloc(align, n),
	     arena_alloc(n, align))

EXPORT void *valloc(size_t n)
{
	if (!real_valloc) {
		resolve();
		if (!real_valloc)
			return arena_alloc(n, 4096);
	}
	if (!enter())
		return real_valloc(n);
	void *p = real_valloc(n);
	uintptr_t fr[ALLOCREC_MAX_DEPTH];
	int d = walk(fr);
	on_alloc(ALLOCREC_VALLOC, p, n, fr, d);
	leave();
	return p;
}

EXPORT void *pvalloc(size_t n)
{
	if (!real_pvalloc) {
		resolve();
		if (!real_pvalloc)
			return arena_alloc(n, 4096);
	}
	if (!enter())
		return real_pvalloc(n);
	void *p = real_pvalloc(n);
	uintptr_t fr[ALLOCREC_MAX_DEPTH];
	int d = walk(fr);
	on_alloc(ALLOCREC_PVALLOC, p, n, fr, d);
	leave();
	return p;
}

EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
	if (!real_posix_memalign) {
		resolve();
		if (!real_posix_memalign) {
			*out = arena_alloc(n, align);
			return *out ? 0 : ENOMEM;
		}
	}
	if (!enter())
		return real_posix_memalign(out, align, n);
	int r = real_posix_memalign(out, align, n);
	uintptr_t fr[ALLOCREC_MAX_DEPTH];
	int d = walk(fr);
	on_alloc(ALLOCREC_POSIX_MEMALIGN, r ? NULL : *out, n, fr, d);
	leave();
	return r;
}

EXPORT void *dlopen(const char *file, int flags)
{
	if (!real_dlopen)
		resolve();
	if (!real_dlopen)
		return NULL;
	void *h = real_dlopen(file, flags);
	if (h && !T.in_hook && __atomic_load_n(&state, __ATOMIC_ACQUIRE) == 1) {
		T.in_hook++;
		save_maps();
		T.in_hook--;
	}
	return h;
}

__attribute__((constructor)) static void alloc_init(void)
{
	if (!real_malloc)
		resolve();
	ctor_done = 1;
	if (enter()) /* set up now: the files and the first maps copy */
		T.in_hook--;
}

__attribute__((destructor)) static void alloc_fini(void)
{
	if (__atomic_load_n(&state, __ATOMIC_ACQUIRE) != 1)
		return;
	T.in_hook++;
	save_maps();
	T.in_hook--;
}
