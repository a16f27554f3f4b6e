/* pingpong: context-switch micro-benchmarks (see pingpong.h for the modes and figures). */
#include "bench/pingpong.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "coro/coro.h"
#include "coro/runq.h"

#define READY_TIMEOUT_NS (10 * NS_PER_S)

static const char *const mode_names[PINGPONG_NMODES] = {
	"pipe-proc", "pipe-thread", "unix-thread", "unix-inline", "futex-thread", "coro", "coro-unix",
};
static const char *const pin_names[] = {"none", "same", "split"};

const char *pingpong_mode_name(enum pingpong_mode m)
{
	return (unsigned)m < PINGPONG_NMODES ? mode_names[m] : NULL;
}

int pingpong_mode_parse(const char *name)
{
	for (int i = 0; i < PINGPONG_NMODES; i++)
		if (!strcmp(name, mode_names[i]))
			return i;
	return -1;
}

const char *pingpong_pin_name(enum pingpong_pin p)
{
	return (unsigned)p < 3 ? pin_names[p] : NULL;
}

int pingpong_pin_parse(const char *name)
{
	for (int i = 0; i < 3; i++)
		if (!strcmp(name, pin_names[i]))
			return i;
	return -1;
}

int pingpong_mode_switches(enum pingpong_mode m)
{
	return m != PINGPONG_UNIX_INLINE;
}

/* ---- shared state ------------------------------------------------------------------ */

struct pair;
struct run;

/* One side of a pair. Lives in memory shared with pipe-proc's children: the fields the
 * parent reads back (received, end_ns, cpu_seen, aff_ok, ws_sum, would_block, err) are
 * written by the side itself; buffers are mapped by the side in its own context. */
struct side {
	struct pair *p;
	struct run *run;
	int id;              /* 0 = A (speaks first), 1 = B */
	int cpu;             /* -1 = not pinned */
	int rfd, wfd;
	unsigned char *msg;  /* msg_bytes, private to the side */
	unsigned char *ws;   /* ws_bytes */
	uint64_t received;
	uint64_t would_block;
	uint64_t end_ns;
	uint64_t ws_sum;
	int cpu_seen, aff_ok;
	int err;             /* 0 or a positive errno; EPROTO for a corrupt message */
	/* coroutine modes */
	struct coro *co;
	struct runq *sched;
	int waiting;
	size_t readable;     /* coro-unix: bytes written toward this side and not yet read */
	pthread_t thread;
	pid_t pid;
};

struct pair {
	struct side s[2];
	uint32_t token;        /* futex-thread: 0 = A's turn, 1 = B's turn */
	unsigned char *shared; /* futex-thread, coro: the buffer handed over */
};

struct run {
	const struct pingpong_opts *o;
	struct pair *pairs;    /* MAP_SHARED: visible to pipe-proc's children */
	size_t map_bytes;
	uint32_t *gate;        /* in the shared mapping: 0 closed, 1 go, 2 abort */
	uint32_t *ready;
	int fds_closed;        /* pipe-proc: the parent closed its copies already */
	uint64_t direct, via_loop; /* coro modes: the run queue's counts (struct runq) */
};


static long futex(uint32_t *uaddr, int op, uint32_t val)
{
	return syscall(SYS_futex, uaddr, op, val, NULL, NULL, 0);
}

static void *map_bytes(size_t n, int shared)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		       (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static size_t page_round(size_t n)
{
	size_t pg = 4096;
	return (n + pg - 1) / pg * pg;
}

static uint64_t tv_ns(struct timeval tv)
{
	return (uint64_t)tv.tv_sec * NS_PER_S + (uint64_t)tv.tv_usec * NS_PER_US;
}

/* ---- per side: preparation and the working set -------------------------------------- */

static int pin_self(int cpu, int *ok)
{
	*ok = 1;
	if (cpu < 0)
		return 0;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof set, &set) < 0)
		return errno;
	cpu_set_t back;
	CPU_ZERO(&back);
	if (sched_getaffinity(0, sizeof back, &back) < 0)
		return errno;
	*ok = CPU_COUNT(&back) == 1 && CPU_ISSET(cpu, &back);
	return 0;
}

/* Maps and pre-faults the side's buffers (in the side's own process), pins it. */
static int side_prepare(struct side *s, const struct pingpong_opts *o, int pin)
{
	if (pin) {
		int e = pin_self(s->cpu, &s->aff_ok);
		if (e)
			return s->err = e;
	} else {
		s->aff_ok = 1;
	}
	s->msg = map_bytes(page_round(o->msg_bytes), 0);
	if (!s->msg)
		return s->err = ENOMEM;
	memset(s->msg, 'a' + s->id, o->msg_bytes);
	if (o->ws_bytes) {
		s->ws = map_bytes(page_round(o->ws_bytes), 0);
		if (!s->ws)
			return s->err = ENOMEM;
		memset(s->ws, 1, o->ws_bytes);
	}
	return 0;
}

static void side_unmap(struct side *s, const struct pingpong_opts *o)
{
	if (s->msg)
		munmap(s->msg, page_round(o->msg_bytes));
	if (s->ws)
		munmap(s->ws, page_round(o->ws_bytes));
	s->msg = NULL;
	s->ws = NULL;
}

static inline void touch(struct side *s, const struct pingpong_opts *o)
{
	unsigned char *ws = s->ws;
	if (!ws)
		return;
	for (size_t i = 0; i < o->ws_bytes; i += o->stride_bytes)
		ws[i]++;
}

static void ws_finish(struct side *s, const struct pingpong_opts *o)
{
	uint64_t sum = 0;
	if (s->ws)
		for (size_t i = 0; i < o->ws_bytes; i += o->stride_bytes)
			sum += s->ws[i];
	s->ws_sum = sum;
}

/* The first byte of every message carries the round number (mod 256); B echoes it. */
static inline void stamp(struct side *s, uint64_t round) { s->msg[0] = (unsigned char)round; }
static inline int check(struct side *s, uint64_t round)
{
	return s->msg[0] == (unsigned char)round ? 0 : EPROTO;
}

/* ---- blocking fd modes (pipe-proc, pipe-thread, unix-thread) ------------------------- */

static int write_all(int fd, const unsigned char *b, size_t n)
{
	while (n) {
		ssize_t k = write(fd, b, n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		b += k;
		n -= (size_t)k;
	}
	return 0;
}

static int read_all(int fd, unsigned char *b, size_t n)
{
	while (n) {
		ssize_t k = read(fd, b, n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		if (k == 0)
			return EPIPE;
		b += k;
		n -= (size_t)k;
	}
	return 0;
}

static int loop_fd(struct side *s, const struct pingpong_opts *o)
{
	int e = 0;
	for (uint64_t r = 0; r < o->rounds; r++) {
		if (s->id == 0) {
			stamp(s, r);
			if ((e = write_all(s->wfd, s->msg, o->msg_bytes)))
				break;
			if ((e = read_all(s->rfd, s->msg, o->msg_bytes)) || (e = check(s, r)))
				break;
			s->received++;
			touch(s, o);
		} else {
			if ((e = read_all(s->rfd, s->msg, o->msg_bytes)) || (e = check(s, r)))
				break;
			s->received++;
			touch(s, o);
			if ((e = write_all(s->wfd, s->msg, o->msg_bytes)))
				break;
		}
	}
	return e;
}

/* ---- futex-thread ------------------------------------------------------------------- */

static int loop_futex(struct side *s, const struct pingpong_opts *o)
{
	struct pair *p = s->p;
	uint32_t me = (uint32_t)s->id, other = me ^ 1;
	for (uint64_t r = 0; r < o->rounds; r++) {
		if (s->id == 0) {
			stamp(s, r);
			memcpy(p->shared, s->msg, o->msg_bytes);
			__atomic_store_n(&p->token, other, __ATOMIC_RELEASE);
			futex(&p->token, FUTEX_WAKE_PRIVATE, 1);
		}
		while (__atomic_load_n(&p->token, __ATOMIC_ACQUIRE) != me)
			futex(&p->token, FUTEX_WAIT_PRIVATE, other);
		memcpy(s->msg, p->shared, o->msg_bytes);
		if (check(s, r))
			return EPROTO;
		s->received++;
		touch(s, o);
		if (s->id == 1) {
			memcpy(p->shared, s->msg, o->msg_bytes);
			__atomic_store_n(&p->token, other, __ATOMIC_RELEASE);
			futex(&p->token, FUTEX_WAKE_PRIVATE, 1);
		}
	}
	return 0;
}

/* ---- kernel-task sides: threads and processes --------------------------------------- */

static void gate_wait(struct run *run)
{
	__atomic_add_fetch(run->ready, 1, __ATOMIC_ACQ_REL);
	uint32_t g;
	while ((g = __atomic_load_n(run->gate, __ATOMIC_ACQUIRE)) == 0)
		futex(run->gate, FUTEX_WAIT, 0); /* shared futex: works across fork */
}

static void side_fail_close(struct side *s, enum pingpong_mode m)
{
	/* let the peer see EOF instead of blocking forever */
	if (m == PINGPONG_UNIX_THREAD) {
		shutdown(s->wfd, SHUT_RDWR);
	} else if (s->wfd >= 0) {
		close(s->wfd);
		s->wfd = -1;
	}
}

static void side_body(struct run *run, struct side *s)
{
	const struct pingpong_opts *o = run->o;
	int e = side_prepare(s, o, o->pin != PINGPONG_PIN_NONE);
	gate_wait(run);
	if (e || __atomic_load_n(run->gate, __ATOMIC_ACQUIRE) != 1)
		goto out;
	if (o->mode == PINGPONG_FUTEX_THREAD)
		e = loop_futex(s, o);
	else
		e = loop_fd(s, o);
	s->end_ns = clock_now_ns();
	s->cpu_seen = sched_getcpu();
	if (e) {
		s->err = e;
		side_fail_close(s, o->mode);
	}
	ws_finish(s, o);
out:
	side_unmap(s, o);
}

static void *side_thread(void *arg)
{
	struct side *s = arg;
	side_body(s->run, s);
	return NULL;
}

/* ---- coroutine modes ---------------------------------------------------------------- */

/* The tiny scheduler of the coroutine modes (src/coro/runq): a waiting side hands over
 * straight to the next runnable one (one switch) when there is one. */
static inline void co_wait(struct side *s)
{
	s->waiting = 1;
	runq_wait(s->sched);
}

static inline void co_notify(struct side *peer)
{
	if (peer->waiting) {
		peer->waiting = 0;
		runq_push(peer->sched, peer->co);
	}
}

/* the run's options, for the coroutine bodies (one run at a time per thread) */
static _Thread_local const struct pingpong_opts *tl_opts;

/* coro: the pair's shared buffer and token; a handoff is yield + resume of the peer. */
static void co_body(void *arg)
{
	struct side *s = arg;
	const struct pingpong_opts *o = tl_opts;
	struct pair *p = s->p;
	struct side *peer = &p->s[s->id ^ 1];
	uint32_t me = (uint32_t)s->id;
	for (uint64_t r = 0; r < o->rounds; r++) {
		if (s->id == 0) {
			stamp(s, r);
			memcpy(p->shared, s->msg, o->msg_bytes);
			p->token = 1;
			co_notify(peer);
		}
		while (p->token != me)
			co_wait(s);
		memcpy(s->msg, p->shared, o->msg_bytes);
		if (check(s, r)) {
			s->err = EPROTO;
			return;
		}
		s->received++;
		touch(s, o);
		if (s->id == 1) {
			memcpy(p->shared, s->msg, o->msg_bytes);
			p->token = 0;
			co_notify(peer);
		}
	}
}

/* coro-unix: nonblocking socketpair; a side reads only what its peer has written. */
static int co_send(struct side *s, struct side *peer, size_t n)
{
	size_t off = 0;
	while (off < n) {
		ssize_t k = write(s->wfd, s->msg + off, n - off);
		if (k > 0) {
			off += (size_t)k;
			peer->readable += (size_t)k;
			co_notify(peer);
		} else if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			s->would_block++;
			co_wait(s); /* the peer notifies after it reads */
		} else if (k < 0 && errno == EINTR) {
			continue;
		} else {
			return k < 0 ? errno : EPIPE;
		}
	}
	return 0;
}

static int co_recv(struct side *s, struct side *peer, size_t n)
{
	size_t off = 0;
	while (off < n) {
		while (!s->readable)
			co_wait(s);
		size_t want = n - off < s->readable ? n - off : s->readable;
		ssize_t k = read(s->rfd, s->msg + off, want);
		if (k > 0) {
			off += (size_t)k;
			s->readable -= (size_t)k;
			co_notify(peer); /* only if it waits for room to write */
		} else if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			s->would_block++;
			co_wait(s);
		} else if (k < 0 && errno == EINTR) {
			continue;
		} else {
			return k < 0 ? errno : EPIPE;
		}
	}
	return 0;
}

static void co_unix_body(void *arg)
{
	struct side *s = arg;
	const struct pingpong_opts *o = tl_opts;
	struct side *peer = &s->p->s[s->id ^ 1];
	int e = 0;
	for (uint64_t r = 0; r < o->rounds; r++) {
		if (s->id == 0) {
			stamp(s, r);
			if ((e = co_send(s, peer, o->msg_bytes)))
				break;
			if ((e = co_recv(s, peer, o->msg_bytes)) || (e = check(s, r)))
				break;
			s->received++;
			touch(s, o);
		} else {
			if ((e = co_recv(s, peer, o->msg_bytes)) || (e = check(s, r)))
				break;
			s->received++;
			touch(s, o);
			if ((e = co_send(s, peer, o->msg_bytes)))
				break;
		}
	}
	s->err = e;
}

/* ---- unix-inline: every pair's round trip done by the calling thread ---------------- */

/* Moves n bytes from a's buffer through (wfd -> rfd) into b's buffer, nonblocking, so that
 * messages larger than the socket buffer cannot deadlock the single thread. Small messages
 * are exactly one write and one read. */
static int inline_xfer(struct side *from, struct side *to, size_t n)
{
	size_t wr = 0, rd = 0;
	while (rd < n) {
		if (wr < n) {
			ssize_t k = write(from->wfd, from->msg + wr, n - wr);
			if (k > 0)
				wr += (size_t)k;
			else if (k < 0 && errno == EAGAIN)
				from->would_block++;
			else if (!(k < 0 && errno == EINTR))
				return k < 0 ? errno : EPIPE;
		}
		ssize_t k = read(to->rfd, to->msg + rd, n - rd);
		if (k > 0)
			rd += (size_t)k;
		else if (k < 0 && errno == EAGAIN)
			to->would_block++;
		else if (!(k < 0 && errno == EINTR))
			return k < 0 ? errno : EPIPE;
	}
	return 0;
}

static int loop_inline(struct run *run)
{
	const struct pingpong_opts *o = run->o;
	for (uint64_t r = 0; r < o->rounds; r++) {
		for (int i = 0; i < o->pairs; i++) {
			struct side *a = &run->pairs[i].s[0], *b = &run->pairs[i].s[1];
			int e;
			stamp(a, r);
			if ((e = inline_xfer(a, b, o->msg_bytes)) || (e = check(b, r)))
				return b->err = e;
			b->received++;
			touch(b, o);
			if ((e = inline_xfer(b, a, o->msg_bytes)) || (e = check(a, r)))
				return a->err = e;
			a->received++;
			touch(a, o);
		}
	}
	return 0;
}

/* ---- setup and teardown ------------------------------------------------------------- */

static int single_thread_mode(enum pingpong_mode m)
{
	return m == PINGPONG_UNIX_INLINE || m == PINGPONG_CORO || m == PINGPONG_CORO_UNIX;
}

static int allowed_cpus(int *cpus, int max)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof set, &set) < 0)
		return -errno;
	int n = 0;
	for (int c = 0; c < CPU_SETSIZE && n < max; c++)
		if (CPU_ISSET(c, &set))
			cpus[n++] = c;
	return n;
}

static int assign_cpus(struct run *run, char *err, size_t errlen)
{
	const struct pingpong_opts *o = run->o;
	for (int i = 0; i < o->pairs; i++)
		run->pairs[i].s[0].cpu = run->pairs[i].s[1].cpu = -1;
	if (o->pin == PINGPONG_PIN_NONE)
		return 0;
	int cpus[CPU_SETSIZE];
	int n = allowed_cpus(cpus, CPU_SETSIZE);
	if (n < 0)
		return errbuf(err, errlen, "cannot read the CPU affinity: %s", strerror(-n)), n;
	if (n < 1)
		return errbuf(err, errlen, "no CPU allowed for this process"), -EINVAL;
	if (o->pin == PINGPONG_PIN_SPLIT && n < 2 && !single_thread_mode(o->mode))
		return errbuf(err, errlen, "'--pin split' needs 2 CPUs, this process may use 1 "
			      "(use --pin same or none)"), -EINVAL;
	for (int i = 0; i < o->pairs; i++) {
		if (o->pin == PINGPONG_PIN_SAME) {
			run->pairs[i].s[0].cpu = run->pairs[i].s[1].cpu = cpus[i % n];
		} else {
			run->pairs[i].s[0].cpu = cpus[(2 * i) % n];
			run->pairs[i].s[1].cpu = cpus[(2 * i + 1) % n];
		}
	}
	return 0;
}

static int make_channels(struct run *run, char *err, size_t errlen)
{
	const struct pingpong_opts *o = run->o;
	for (int i = 0; i < o->pairs; i++) {
		struct pair *p = &run->pairs[i];
		struct side *a = &p->s[0], *b = &p->s[1];
		if (o->mode == PINGPONG_PIPE_PROC || o->mode == PINGPONG_PIPE_THREAD) {
			int ab[2], ba[2];
			if (pipe2(ab, O_CLOEXEC) < 0) {
				int e = errno;
				errbuf(err, errlen, "cannot create a pipe: %s (raise ulimit -n)",
				       strerror(e));
				return -e;
			}
			if (pipe2(ba, O_CLOEXEC) < 0) {
				int e = errno;
				close(ab[0]);
				close(ab[1]);
				errbuf(err, errlen, "cannot create a pipe: %s (raise ulimit -n)",
				       strerror(e));
				return -e;
			}
			a->wfd = ab[1], b->rfd = ab[0];
			b->wfd = ba[1], a->rfd = ba[0];
		} else if (o->mode == PINGPONG_UNIX_THREAD || o->mode == PINGPONG_UNIX_INLINE ||
			   o->mode == PINGPONG_CORO_UNIX) {
			int sv[2], fl = SOCK_CLOEXEC;
			if (o->mode != PINGPONG_UNIX_THREAD)
				fl |= SOCK_NONBLOCK;
			if (socketpair(AF_UNIX, SOCK_STREAM | fl, 0, sv) < 0) {
				int e = errno;
				errbuf(err, errlen, "cannot create a socketpair: %s (raise ulimit -n)",
				       strerror(e));
				return -e;
			}
			a->rfd = a->wfd = sv[0];
			b->rfd = b->wfd = sv[1];
		} else {
			p->shared = map_bytes(page_round(o->msg_bytes), 0);
			if (!p->shared)
				return errbuf(err, errlen, "cannot map %zu bytes: out of memory",
					      o->msg_bytes), -ENOMEM;
			memset(p->shared, 0, o->msg_bytes);
		}
	}
	return 0;
}

/* Closes the side's descriptors in this process only; the fields are left as they are
 * (they live in memory shared with pipe-proc's children, who still use them). */
static void close_side_fds_here(const struct side *s)
{
	if (s->rfd >= 0)
		close(s->rfd);
	if (s->wfd >= 0 && s->wfd != s->rfd)
		close(s->wfd);
}

static void close_side_fds(struct side *s)
{
	if (s->rfd >= 0)
		close(s->rfd);
	if (s->wfd >= 0 && s->wfd != s->rfd)
		close(s->wfd);
	s->rfd = s->wfd = -1;
}

static void destroy_run(struct run *run)
{
	if (!run->pairs)
		return;
	for (int i = 0; i < run->o->pairs; i++) {
		struct pair *p = &run->pairs[i];
		for (int j = 0; j < 2; j++) {
			if (!run->fds_closed)
				close_side_fds(&p->s[j]);
			if (run->o->mode != PINGPONG_PIPE_PROC) /* children map their own */
				side_unmap(&p->s[j], run->o);
			coro_free(p->s[j].co);
			p->s[j].co = NULL;
		}
		if (p->shared)
			munmap(p->shared, page_round(run->o->msg_bytes));
	}
	munmap(run->pairs, run->map_bytes);
	run->pairs = NULL;
}

struct usage {
	uint64_t t_ns;
	struct rusage self, kids;
};

static void usage_now(struct usage *u)
{
	getrusage(RUSAGE_SELF, &u->self);
	getrusage(RUSAGE_CHILDREN, &u->kids);
	u->t_ns = clock_now_ns();
}

static void usage_diff(const struct usage *a, const struct usage *b, int kids,
		       struct pingpong_result *r)
{
	r->ctxsw_vol = (uint64_t)(b->self.ru_nvcsw - a->self.ru_nvcsw);
	r->ctxsw_invol = (uint64_t)(b->self.ru_nivcsw - a->self.ru_nivcsw);
	r->user_ns = tv_ns(b->self.ru_utime) - tv_ns(a->self.ru_utime);
	r->sys_ns = tv_ns(b->self.ru_stime) - tv_ns(a->self.ru_stime);
	if (kids) {
		r->ctxsw_vol += (uint64_t)(b->kids.ru_nvcsw - a->kids.ru_nvcsw);
		r->ctxsw_invol += (uint64_t)(b->kids.ru_nivcsw - a->kids.ru_nivcsw);
		r->user_ns += tv_ns(b->kids.ru_utime) - tv_ns(a->kids.ru_utime);
		r->sys_ns += tv_ns(b->kids.ru_stime) - tv_ns(a->kids.ru_stime);
	}
}

/* Waits until every side has reached the gate (bounded), then snapshots and opens it. */
static int open_gate(struct run *run, uint32_t nsides, struct usage *start)
{
	uint64_t deadline = clock_now_ns() + READY_TIMEOUT_NS;
	while (__atomic_load_n(run->ready, __ATOMIC_ACQUIRE) < nsides) {
		if (clock_now_ns() > deadline) {
			__atomic_store_n(run->gate, 2, __ATOMIC_RELEASE);
			futex(run->gate, FUTEX_WAKE, INT_MAX);
			return -ETIMEDOUT;
		}
		clock_sleep_ns(50 * NS_PER_US);
	}
	/* a side that failed its preparation aborts the run */
	int failed = 0;
	for (int i = 0; i < run->o->pairs; i++)
		failed |= run->pairs[i].s[0].err | run->pairs[i].s[1].err;
	if (!failed)
		usage_now(start);
	__atomic_store_n(run->gate, failed ? 2 : 1, __ATOMIC_RELEASE);
	futex(run->gate, FUTEX_WAKE, INT_MAX);
	return failed ? -EIO : 0;
}

static int run_tasks(struct run *run, struct usage *start, struct usage *end, char *err,
		     size_t errlen)
{
	const struct pingpong_opts *o = run->o;
	int nsides = 2 * o->pairs, started = 0, rc = 0;
	int procs = o->mode == PINGPONG_PIPE_PROC;
	for (int i = 0; i < o->pairs && !rc; i++) {
		for (int j = 0; j < 2; j++) {
			struct side *s = &run->pairs[i].s[j];
			if (procs) {
				pid_t pid = fork();
				if (pid < 0) {
					rc = errbuf(err, errlen, "cannot fork: %s", strerror(errno));
					rc = -EAGAIN;
					break;
				}
				if (pid == 0) {
					prctl(PR_SET_PDEATHSIG, SIGKILL);
					/* keep only this side's ends, so that EOF reaches the peer */
					for (int k = 0; k < o->pairs; k++)
						for (int m = 0; m < 2; m++)
							if (&run->pairs[k].s[m] != s)
								close_side_fds_here(&run->pairs[k].s[m]);
					side_body(run, s);
					_exit(s->err ? 1 : 0);
				}
				s->pid = pid;
			} else {
				int e = pthread_create(&s->thread, NULL, side_thread, s);
				if (e) {
					rc = errbuf(err, errlen, "cannot create a thread: %s",
						    strerror(e));
					rc = -e;
					break;
				}
			}
			started++;
		}
	}
	if (procs) { /* the parent keeps no end open */
		for (int i = 0; i < o->pairs; i++)
			for (int j = 0; j < 2; j++)
				close_side_fds_here(&run->pairs[i].s[j]);
		run->fds_closed = 1;
	}
	if (!rc) {
		rc = open_gate(run, (uint32_t)nsides, start);
		if (rc == -ETIMEDOUT)
			errbuf(err, errlen, "the sides did not start within 10 s (machine overloaded?)");
		else if (rc)
			errbuf(err, errlen, "a side could not start (pinning or memory failed)");
	} else {
		__atomic_store_n(run->gate, 2, __ATOMIC_RELEASE);
		futex(run->gate, FUTEX_WAKE, INT_MAX);
	}
	int k = 0;
	for (int i = 0; i < o->pairs && k < started; i++) {
		for (int j = 0; j < 2 && k < started; j++, k++) {
			struct side *s = &run->pairs[i].s[j];
			if (procs) {
				int st;
				while (waitpid(s->pid, &st, 0) < 0 && errno == EINTR)
					;
			} else {
				pthread_join(s->thread, NULL);
			}
		}
	}
	usage_now(end);
	return rc;
}

static int run_single(struct run *run, struct usage *start, struct usage *end, char *err,
		      size_t errlen)
{
	const struct pingpong_opts *o = run->o;
	int rc = 0;
	cpu_set_t saved;
	int pinned = o->pin != PINGPONG_PIN_NONE;
	if (pinned && sched_getaffinity(0, sizeof saved, &saved) < 0) {
		int e2 = errno;
		errbuf(err, errlen, "cannot read the CPU affinity: %s", strerror(e2));
		return -e2;
	}
	int cpu = run->pairs[0].s[0].cpu, aff_ok = 1;
	int e = pin_self(pinned ? cpu : -1, &aff_ok);
	if (e)
		return errbuf(err, errlen, "cannot pin to CPU %d: %s", cpu, strerror(e)), -e;
	struct runq q = {0};
	for (int i = 0; i < o->pairs && !rc; i++) {
		for (int j = 0; j < 2; j++) {
			struct side *s = &run->pairs[i].s[j];
			s->cpu = pinned ? cpu : -1;
			if (side_prepare(s, o, 0)) {
				rc = errbuf(err, errlen, "cannot map %zu bytes: out of memory",
					    o->msg_bytes + o->ws_bytes);
				rc = -ENOMEM;
				break;
			}
			s->aff_ok = aff_ok;
			if (o->mode == PINGPONG_CORO || o->mode == PINGPONG_CORO_UNIX) {
				s->co = coro_new(o->mode == PINGPONG_CORO ? co_body : co_unix_body, s,
						 CORO_DEFAULT_STACK);
				if (!s->co) {
					rc = errbuf(err, errlen, "cannot create a coroutine: %s",
						    strerror(errno));
					rc = -ENOMEM;
					break;
				}
			}
		}
	}
	if (!rc && o->mode != PINGPONG_UNIX_INLINE) {
		if (runq_init(&q, 2 * (size_t)o->pairs) < 0) {
			errbuf(err, errlen, "out of memory");
			rc = -ENOMEM;
		}
	}
	if (!rc) {
		const struct pingpong_opts *saved_opts = tl_opts;
		tl_opts = o;
		usage_now(start);
		if (o->mode == PINGPONG_UNIX_INLINE) {
			loop_inline(run);
		} else {
			for (int i = 0; i < o->pairs; i++)
				for (int j = 0; j < 2; j++) {
					run->pairs[i].s[j].sched = &q;
					runq_push(&q, run->pairs[i].s[j].co);
				}
			runq_run(&q);
		}
		uint64_t t = clock_now_ns();
		usage_now(end);
		tl_opts = saved_opts;
		int c = sched_getcpu();
		for (int i = 0; i < o->pairs; i++)
			for (int j = 0; j < 2; j++) {
				struct side *s = &run->pairs[i].s[j];
				s->end_ns = t;
				s->cpu_seen = c;
				ws_finish(s, o);
				if (s->co && !coro_done(s->co) && !s->err)
					s->err = EDEADLK; /* waiting with nobody to wake it: a bug */
			}
	}
	run->direct = q.direct;
	run->via_loop = q.via_loop;
	runq_fini(&q);
	if (pinned)
		sched_setaffinity(0, sizeof saved, &saved);
	return rc;
}

static int check_opts(const struct pingpong_opts *o, char *err, size_t errlen)
{
	if ((unsigned)o->mode >= PINGPONG_NMODES)
		return errbuf(err, errlen, "unknown mode %d", (int)o->mode), -EINVAL;
	if (o->rounds < 1)
		return errbuf(err, errlen, "rounds must be at least 1"), -EINVAL;
	if (o->pairs < 1 || o->pairs > PINGPONG_MAX_PAIRS)
		return errbuf(err, errlen, "pairs must be 1..%d, not %d", PINGPONG_MAX_PAIRS,
			      o->pairs), -EINVAL;
	if (o->msg_bytes < 1 || o->msg_bytes > PINGPONG_MAX_MSG_BYTES)
		return errbuf(err, errlen, "message size must be 1 byte..16MiB, not %zu",
			      o->msg_bytes), -EINVAL;
	if (o->ws_bytes && o->stride_bytes < 1)
		return errbuf(err, errlen, "stride must be at least 1 byte"), -EINVAL;
	if ((unsigned)o->pin > PINGPONG_PIN_SPLIT)
		return errbuf(err, errlen, "unknown pin %d", (int)o->pin), -EINVAL;
	return 0;
}

static void describe_placement(const struct run *run, struct pingpong_result *r)
{
	const struct pingpong_opts *o = run->o;
	const struct side *a = &run->pairs[0].s[0], *b = &run->pairs[0].s[1];
	r->cpu_a = a->cpu_seen;
	r->cpu_b = b->cpu_seen;
	r->affinity_ok = 1;
	for (int i = 0; i < o->pairs; i++)
		for (int j = 0; j < 2; j++)
			r->affinity_ok &= run->pairs[i].s[j].aff_ok;
	if (single_thread_mode(o->mode)) {
		if (o->pin == PINGPONG_PIN_NONE)
			snprintf(r->placement, sizeof r->placement, "1 thread, unpinned (last cpu%d)",
				 a->cpu_seen);
		else
			snprintf(r->placement, sizeof r->placement, "1 thread: cpu%d", a->cpu);
	} else if (o->pin == PINGPONG_PIN_NONE) {
		snprintf(r->placement, sizeof r->placement, "unpinned (last A:cpu%d B:cpu%d)",
			 a->cpu_seen, b->cpu_seen);
	} else {
		snprintf(r->placement, sizeof r->placement, "A:cpu%d B:cpu%d%s", a->cpu, b->cpu,
			 o->pairs > 1 ? " (pair 0)" : "");
	}
}

int pingpong_run(const struct pingpong_opts *o, struct pingpong_result *r, char *err,
		 size_t errlen)
{
	int rc = check_opts(o, err, errlen);
	if (rc)
		return rc;
	struct run run = {.o = o};
	size_t pairs_bytes = (size_t)o->pairs * sizeof(struct pair);
	run.map_bytes = page_round(pairs_bytes + 64);
	run.pairs = map_bytes(run.map_bytes, 1);
	if (!run.pairs)
		return errbuf(err, errlen, "cannot map %zu bytes: out of memory", run.map_bytes),
		       -ENOMEM;
	run.gate = (uint32_t *)((char *)run.pairs + (pairs_bytes + 15) / 16 * 16);
	run.ready = run.gate + 1;
	for (int i = 0; i < o->pairs; i++)
		for (int j = 0; j < 2; j++) {
			struct side *s = &run.pairs[i].s[j];
			s->p = &run.pairs[i];
			s->run = &run;
			s->id = j;
			s->rfd = s->wfd = -1;
			s->cpu_seen = -1;
		}
	struct usage start, end;
	if ((rc = assign_cpus(&run, err, errlen)) || (rc = make_channels(&run, err, errlen)))
		goto out;
	if (single_thread_mode(o->mode))
		rc = run_single(&run, &start, &end, err, errlen);
	else
		rc = run_tasks(&run, &start, &end, err, errlen);
	if (rc)
		goto out;

	memset(r, 0, sizeof *r);
	r->handoffs_direct = run.direct;
	r->handoffs_via_loop = run.via_loop;
	uint64_t last = start.t_ns;
	for (int i = 0; i < o->pairs; i++)
		for (int j = 0; j < 2; j++) {
			const struct side *s = &run.pairs[i].s[j];
			r->messages += s->received;
			r->would_block += s->would_block;
			r->ws_sum += s->ws_sum;
			if (s->end_ns > last)
				last = s->end_ns;
			if (s->err && !rc) {
				rc = -EIO;
				errbuf(err, errlen, "%s: side %c of pair %d failed: %s",
				       mode_names[o->mode], 'A' + j, i,
				       s->err == EPROTO ? "corrupt message" : strerror(s->err));
			}
		}
	if (rc)
		goto out;
	r->round_trips = o->rounds * (uint64_t)o->pairs;
	if (r->messages != 2 * r->round_trips) {
		rc = errbuf(err, errlen, "%s: %llu messages received, %llu expected",
			    mode_names[o->mode], (unsigned long long)r->messages,
			    (unsigned long long)(2 * r->round_trips));
		rc = -EIO;
		goto out;
	}
	r->elapsed_ns = last - start.t_ns;
	usage_diff(&start, &end, o->mode == PINGPONG_PIPE_PROC, r);
	r->threads = single_thread_mode(o->mode) ? 1 : 2 * o->pairs;
	describe_placement(&run, r);
out:
	destroy_run(&run);
	return rc;
}

int pingpong_calibrate(const struct pingpong_opts *o, uint64_t target_ns, uint64_t *rounds,
		       char *err, size_t errlen)
{
	struct pingpong_opts c = *o;
	uint64_t floor_ns = target_ns / 20 > 20 * NS_PER_MS ? target_ns / 20 : 20 * NS_PER_MS;
	c.rounds = 200;
	for (int i = 0; i < 12; i++) {
		struct pingpong_result r;
		int rc = pingpong_run(&c, &r, err, errlen);
		if (rc)
			return rc;
		if (r.elapsed_ns >= floor_ns || i == 11) {
			double per = (double)r.elapsed_ns / (double)c.rounds;
			double n = per > 0 ? (double)target_ns / per : 1e9;
			if (n > 1e10)
				n = 1e10;
			*rounds = n < 100 ? 100 : (uint64_t)n;
			return 0;
		}
		c.rounds *= 4;
	}
	return 0;
}
