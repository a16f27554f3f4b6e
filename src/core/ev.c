/* ev: event loop with a redis-ae-like backend contract; epoll backend.
 *
 * fd table: indexed by fd, grows on demand. Timers: a binary min-heap of slot indices over a
 * slot array (ordered by deadline, then id, so timers with equal deadlines fire in the order
 * they were added); an id encodes its slot in the low 32 bits and a loop-wide sequence in the
 * high 32, so lookup is O(1) and ids are never reused. A periodic timer is re-armed at
 * (the loop's now at the wake-up that fired it) + the returned delay.
 *
 * Precision: the wait uses epoll_pwait2 (ns timespec); when the kernel lacks it (ENOSYS) the
 * backend arms a timerfd with the absolute deadline and waits on epoll without a timeout.
 * Timers never fire early: a timer runs only when the monotonic clock has reached its deadline.
 */
#include "core/ev.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"

#define EV_FIRED_MAX 4096 /* events taken from the backend per wait */

struct ev_file {
	int mask;
	ev_fd_fn *fn;
	void *ud;
};

struct ev_fired {
	int fd;
	int mask;
};

enum { T_FREE, T_ARMED, T_RUNNING, T_DELETED };

struct ev_timer {
	uint64_t id;
	uint64_t deadline_ns;
	ev_timer_fn *fn;
	void *ud;
	uint32_t heap_pos; /* valid when T_ARMED */
	uint32_t next_free;
	int state;
};

/* ---- backend contract ---------------------------------------------------------------- */

struct ev_backend {
	void *(*create)(int setsize);
	int (*resize)(void *b, int setsize);
	int (*add)(void *b, int fd, int old_mask, int new_mask);
	int (*del)(void *b, int fd, int old_mask, int del_mask);
	/* Waits until deadline_ns (monotonic; 0 = do not block, UINT64_MAX = forever). Writes at
	 * most `max` fired (fd, mask) pairs; *woken is set when the stop eventfd fired.
	 * Returns the number written, or -errno. */
	int (*poll)(void *b, uint64_t deadline_ns, struct ev_fired *fired, int max, int *woken);
	void (*free)(void *b);
	int (*wake)(void *b); /* async-signal-safe */
	const char *(*name)(void);
};

struct ep_state {
	int epfd;
	int evfd;  /* stop wake-up */
	int tfd;   /* timerfd, only when epoll_pwait2 is missing */
	uint64_t tfd_armed_ns;
	int no_pwait2;
	int nevents;
	struct epoll_event *events;
};

static void ep_free(void *p)
{
	struct ep_state *s = p;
	if (!s)
		return;
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->evfd >= 0)
		close(s->evfd);
	if (s->tfd >= 0)
		close(s->tfd);
	free(s->events);
	free(s);
}

static int ep_resize(void *p, int setsize)
{
	struct ep_state *s = p;
	int n = setsize < EV_FIRED_MAX ? setsize : EV_FIRED_MAX;
	if (n < 64)
		n = 64;
	if (n <= s->nevents)
		return 0;
	struct epoll_event *e = realloc(s->events, (size_t)n * sizeof(*e));
	if (!e)
		return -ENOMEM;
	s->events = e;
	s->nevents = n;
	return 0;
}

static void *ep_create(int setsize)
{
	struct ep_state *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->evfd = s->tfd = -1;
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0)
		goto fail;
	s->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->evfd < 0)
		goto fail;
	struct epoll_event ee = {.events = EPOLLIN, .data.fd = s->evfd};
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->evfd, &ee) < 0)
		goto fail;
	if (ep_resize(s, setsize) < 0)
		goto fail;
	return s;
fail:
	ep_free(s);
	return NULL;
}

static uint32_t ep_events(int mask)
{
	uint32_t e = 0;
	if (mask & EV_READ)
		e |= EPOLLIN;
	if (mask & EV_WRITE)
		e |= EPOLLOUT;
	return e;
}

static int ep_add(void *p, int fd, int old_mask, int new_mask)
{
	struct ep_state *s = p;
	struct epoll_event ee = {.events = ep_events(old_mask | new_mask), .data.fd = fd};
	int op = old_mask == EV_NONE ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
	return epoll_ctl(s->epfd, op, fd, &ee) < 0 ? -errno : 0;
}

static int ep_del(void *p, int fd, int old_mask, int del_mask)
{
	struct ep_state *s = p;
	int mask = old_mask & ~del_mask;
	struct epoll_event ee = {.events = ep_events(mask), .data.fd = fd};
	int op = mask == EV_NONE ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
	return epoll_ctl(s->epfd, op, fd, &ee) < 0 ? -errno : 0;
}

static int ep_wake(void *p)
{
	struct ep_state *s = p;
	uint64_t one = 1;
	return write(s->evfd, &one, sizeof(one)) < 0 ? -errno : 0;
}

static int ep_timerfd_arm(struct ep_state *s, uint64_t deadline_ns)
{
	if (s->tfd < 0) {
		s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		if (s->tfd < 0)
			return -errno;
		struct epoll_event ee = {.events = EPOLLIN, .data.fd = s->tfd};
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->tfd, &ee) < 0)
			return -errno;
	}
	if (deadline_ns == s->tfd_armed_ns)
		return 0;
	struct itimerspec its = {0};
	if (deadline_ns != UINT64_MAX) {
		its.it_value.tv_sec = (time_t)(deadline_ns / NS_PER_S);
		its.it_value.tv_nsec = (long)(deadline_ns % NS_PER_S);
		if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
			its.it_value.tv_nsec = 1; /* zero would disarm */
	}
	if (timerfd_settime(s->tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		return -errno;
	s->tfd_armed_ns = deadline_ns;
	return 0;
}

static int ep_wait(struct ep_state *s, uint64_t deadline_ns, int max)
{
	if (deadline_ns == 0)
		return epoll_wait(s->epfd, s->events, max, 0);
	if (!s->no_pwait2) {
		struct timespec ts, *tsp = NULL;
		if (deadline_ns != UINT64_MAX) {
			uint64_t now = clock_now_ns();
			uint64_t d = deadline_ns > now ? deadline_ns - now : 0;
			ts.tv_sec = (time_t)(d / NS_PER_S);
			ts.tv_nsec = (long)(d % NS_PER_S);
			tsp = &ts;
		}
		int n = epoll_pwait2(s->epfd, s->events, max, tsp, NULL);
		if (n >= 0 || errno != ENOSYS)
			return n;
		s->no_pwait2 = 1;
	}
	int r = ep_timerfd_arm(s, deadline_ns);
	if (r < 0) {
		errno = -r;
		return -1;
	}
	return epoll_wait(s->epfd, s->events, max, -1);
}

static int ep_poll(void *p, uint64_t deadline_ns, struct ev_fired *fired, int max, int *woken)
{
	struct ep_state *s = p;
	if (max > s->nevents)
		max = s->nevents;
	int n = ep_wait(s, deadline_ns, max);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	int out = 0;
	for (int i = 0; i < n; i++) {
		struct epoll_event *e = &s->events[i];
		uint64_t junk;
		if (e->data.fd == s->evfd) {
			while (read(s->evfd, &junk, sizeof(junk)) > 0)
				;
			*woken = 1;
			continue;
		}
		if (e->data.fd == s->tfd && s->tfd >= 0) {
			while (read(s->tfd, &junk, sizeof(junk)) > 0)
				;
			s->tfd_armed_ns = 0; /* expired: re-arm next time */
			continue;
		}
		int mask = 0;
		if (e->events & EPOLLIN)
			mask |= EV_READ;
		if (e->events & EPOLLOUT)
			mask |= EV_WRITE;
		if (e->events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP))
			mask |= EV_READ | EV_WRITE; /* let the callback see the error */
		fired[out].fd = e->data.fd;
		fired[out].mask = mask;
		out++;
	}
	return out;
}

static const char *ep_name(void) { return "epoll"; }

static const struct ev_backend backend = {
	.create = ep_create,
	.resize = ep_resize,
	.add = ep_add,
	.del = ep_del,
	.poll = ep_poll,
	.free = ep_free,
	.wake = ep_wake,
	.name = ep_name,
};

/* ---- the loop ------------------------------------------------------------------------ */

struct ev_loop {
	void *be;
	struct ev_file *files;
	int setsize;
	struct ev_fired *fired;
	int nfired_max;

	struct ev_timer *timers; /* slots */
	uint32_t ntimers_cap;
	uint32_t free_head;      /* UINT32_MAX = none */
	uint32_t *heap;          /* slot indices */
	uint32_t heap_len;
	uint64_t timer_seq;

	uint64_t now_ns;
	int stop; /* accessed with __atomic builtins (lock-free: async-signal-safe) */
};

#define NO_SLOT UINT32_MAX

struct ev_loop *ev_new(int setsize)
{
	if (setsize < 64)
		setsize = 64;
	struct ev_loop *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->be = backend.create(setsize);
	l->files = calloc((size_t)setsize, sizeof(*l->files));
	l->nfired_max = setsize < EV_FIRED_MAX ? setsize : EV_FIRED_MAX;
	l->fired = calloc((size_t)EV_FIRED_MAX, sizeof(*l->fired));
	if (!l->be || !l->files || !l->fired) {
		ev_free(l);
		return NULL;
	}
	l->setsize = setsize;
	l->free_head = NO_SLOT;
	l->now_ns = clock_now_ns();
	return l;
}

void ev_free(struct ev_loop *l)
{
	if (!l)
		return;
	if (l->be)
		backend.free(l->be);
	free(l->files);
	free(l->fired);
	free(l->timers);
	free(l->heap);
	free(l);
}

static int grow_files(struct ev_loop *l, int fd)
{
	int n = l->setsize;
	while (n <= fd)
		n *= 2;
	struct ev_file *f = realloc(l->files, (size_t)n * sizeof(*f));
	if (!f)
		return -ENOMEM;
	memset(f + l->setsize, 0, (size_t)(n - l->setsize) * sizeof(*f));
	l->files = f;
	int r = backend.resize(l->be, n);
	if (r < 0)
		return r;
	l->setsize = n;
	l->nfired_max = n < EV_FIRED_MAX ? n : EV_FIRED_MAX;
	return 0;
}

int ev_add(struct ev_loop *l, int fd, int mask, ev_fd_fn *fn, void *ud)
{
	if (fd < 0 || !fn || (mask & ~(EV_READ | EV_WRITE)))
		return -EINVAL;
	if (fd >= l->setsize) {
		int r = grow_files(l, fd);
		if (r < 0)
			return r;
	}
	struct ev_file *f = &l->files[fd];
	if ((f->mask | mask) != f->mask) {
		int r = backend.add(l->be, fd, f->mask, f->mask | mask);
		if (r < 0)
			return r;
	}
	f->mask |= mask;
	f->fn = fn;
	f->ud = ud;
	return 0;
}

int ev_del(struct ev_loop *l, int fd, int mask)
{
	if (fd < 0 || fd >= l->setsize)
		return -EINVAL;
	struct ev_file *f = &l->files[fd];
	int r = 0;
	if (f->mask & mask) {
		r = backend.del(l->be, fd, f->mask, mask);
		/* An fd closed before ev_del has already left the epoll set: forget it anyway. */
		if (r == -EBADF || r == -ENOENT)
			r = 0;
	}
	if (r == 0) {
		f->mask &= ~mask;
		if (f->mask == EV_NONE) {
			f->fn = NULL;
			f->ud = NULL;
		}
	}
	return r;
}

int ev_mask(const struct ev_loop *l, int fd)
{
	if (fd < 0 || fd >= l->setsize)
		return EV_NONE;
	return l->files[fd].mask;
}

/* ---- timer heap ---------------------------------------------------------------------- */

static int t_less(const struct ev_loop *l, uint32_t a, uint32_t b)
{
	const struct ev_timer *x = &l->timers[a], *y = &l->timers[b];
	if (x->deadline_ns != y->deadline_ns)
		return x->deadline_ns < y->deadline_ns;
	return x->id < y->id;
}

static void h_set(struct ev_loop *l, uint32_t pos, uint32_t slot)
{
	l->heap[pos] = slot;
	l->timers[slot].heap_pos = pos;
}

static void h_up(struct ev_loop *l, uint32_t pos)
{
	uint32_t slot = l->heap[pos];
	while (pos > 0) {
		uint32_t parent = (pos - 1) / 2;
		if (!t_less(l, slot, l->heap[parent]))
			break;
		h_set(l, pos, l->heap[parent]);
		pos = parent;
	}
	h_set(l, pos, slot);
}

static void h_down(struct ev_loop *l, uint32_t pos)
{
	uint32_t slot = l->heap[pos];
	for (;;) {
		uint32_t c = 2 * pos + 1;
		if (c >= l->heap_len)
			break;
		if (c + 1 < l->heap_len && t_less(l, l->heap[c + 1], l->heap[c]))
			c++;
		if (!t_less(l, l->heap[c], slot))
			break;
		h_set(l, pos, l->heap[c]);
		pos = c;
	}
	h_set(l, pos, slot);
}

static void h_remove(struct ev_loop *l, uint32_t pos)
{
	uint32_t last = l->heap[--l->heap_len];
	if (pos == l->heap_len)
		return;
	h_set(l, pos, last);
	if (pos > 0 && t_less(l, last, l->heap[(pos - 1) / 2]))
		h_up(l, pos);
	else
		h_down(l, pos);
}

static void h_push(struct ev_loop *l, uint32_t slot)
{
	l->heap[l->heap_len] = slot;
	l->timers[slot].heap_pos = l->heap_len;
	h_up(l, l->heap_len++);
}

static void slot_free(struct ev_loop *l, uint32_t slot)
{
	struct ev_timer *t = &l->timers[slot];
	t->state = T_FREE;
	t->id = 0;
	t->fn = NULL;
	t->ud = NULL;
	t->next_free = l->free_head;
	l->free_head = slot;
}

static int grow_timers(struct ev_loop *l)
{
	uint32_t n = l->ntimers_cap ? l->ntimers_cap * 2 : 64;
	if (n > (uint32_t)INT32_MAX)
		return -ENOMEM;
	struct ev_timer *t = realloc(l->timers, (size_t)n * sizeof(*t));
	if (!t)
		return -ENOMEM;
	l->timers = t;
	uint32_t *h = realloc(l->heap, (size_t)n * sizeof(*h));
	if (!h)
		return -ENOMEM;
	l->heap = h;
	for (uint32_t i = n; i-- > l->ntimers_cap;) {
		memset(&t[i], 0, sizeof(t[i]));
		t[i].next_free = l->free_head;
		l->free_head = i;
	}
	l->ntimers_cap = n;
	return 0;
}

uint64_t ev_timer_add_at(struct ev_loop *l, uint64_t deadline_ns, ev_timer_fn *fn, void *ud)
{
	if (!fn)
		return 0;
	if (l->free_head == NO_SLOT && grow_timers(l) < 0)
		return 0;
	uint32_t slot = l->free_head;
	struct ev_timer *t = &l->timers[slot];
	l->free_head = t->next_free;
	t->id = (++l->timer_seq << 32) | (uint64_t)(slot + 1);
	t->deadline_ns = deadline_ns;
	t->fn = fn;
	t->ud = ud;
	t->state = T_ARMED;
	h_push(l, slot);
	return t->id;
}

uint64_t ev_timer_add(struct ev_loop *l, uint64_t delay_ns, ev_timer_fn *fn, void *ud)
{
	return ev_timer_add_at(l, clock_now_ns() + delay_ns, fn, ud);
}

static struct ev_timer *timer_find(struct ev_loop *l, uint64_t id)
{
	uint64_t s = id & 0xffffffffu;
	if (s == 0 || s > l->ntimers_cap)
		return NULL;
	struct ev_timer *t = &l->timers[s - 1];
	return t->id == id && t->state != T_FREE ? t : NULL;
}

int ev_timer_del(struct ev_loop *l, uint64_t id)
{
	struct ev_timer *t = timer_find(l, id);
	if (!t || t->state == T_DELETED)
		return -ENOENT;
	if (t->state == T_RUNNING) { /* deleting itself from its callback */
		t->state = T_DELETED;
		return 0;
	}
	uint32_t slot = (uint32_t)(t - l->timers);
	h_remove(l, t->heap_pos);
	slot_free(l, slot);
	return 0;
}

/* Runs the timers due at l->now_ns. A timer added by a callback does not run in the same pass;
 * a periodic timer re-armed with a zero delay ends the pass (it runs again at the next ev_poll,
 * which then does not block), so a pass always terminates. */
static int run_timers(struct ev_loop *l)
{
	int ran = 0;
	uint64_t max_seq = l->timer_seq;
	while (l->heap_len > 0) {
		uint32_t slot = l->heap[0];
		struct ev_timer *t = &l->timers[slot];
		if (t->deadline_ns > l->now_ns || (t->id >> 32) > max_seq)
			break;
		h_remove(l, 0);
		t->state = T_RUNNING;
		uint64_t id = t->id;
		ev_timer_fn *fn = t->fn;
		int64_t next = fn(l, id, t->ud);
		ran++;
		t = &l->timers[slot]; /* the slot array may have moved */
		if (t->state == T_RUNNING && next >= 0) {
			t->state = T_ARMED;
			t->deadline_ns = l->now_ns + (uint64_t)next;
			h_push(l, slot);
			if (next == 0)
				break; /* a zero-delay periodic timer runs once per ev_poll */
		} else {
			slot_free(l, slot);
		}
	}
	return ran;
}

int ev_poll(struct ev_loop *l, int64_t timeout_ns)
{
	int total = 0;
	uint64_t start = clock_now_ns();
	uint64_t until = timeout_ns < 0 ? UINT64_MAX : start + (uint64_t)timeout_ns;
	for (;;) {
		uint64_t deadline = until;
		if (timeout_ns == 0)
			deadline = 0;
		if (l->heap_len > 0) {
			uint64_t td = l->timers[l->heap[0]].deadline_ns;
			if (td <= clock_now_ns())
				deadline = 0;
			else if (td < deadline)
				deadline = td;
		}
		int woken = 0;
		int n = backend.poll(l->be, deadline, l->fired, l->nfired_max, &woken);
		if (n < 0)
			return n;
		l->now_ns = clock_now_ns();
		for (int i = 0; i < n; i++) {
			int fd = l->fired[i].fd;
			if (fd >= l->setsize)
				continue;
			struct ev_file *f = &l->files[fd];
			/* A callback earlier in this batch may have deleted this fd or part of it. */
			int mask = l->fired[i].mask & f->mask;
			if (!mask || !f->fn)
				continue;
			f->fn(l, fd, mask, f->ud);
			total++;
		}
		if (l->heap_len > 0) {
			l->now_ns = clock_now_ns();
			total += run_timers(l);
		}
		if (total > 0 || woken || timeout_ns >= 0 || ev_stopped(l))
			break;
		/* Waiting forever and woken early (EINTR, timer slack rounding): wait again. */
	}
	return total;
}

int ev_run(struct ev_loop *l)
{
	while (!ev_stopped(l)) {
		int r = ev_poll(l, -1);
		if (r < 0)
			return r;
	}
	return 0;
}

void ev_stop(struct ev_loop *l)
{
	__atomic_store_n(&l->stop, 1, __ATOMIC_SEQ_CST);
	backend.wake(l->be);
}

int ev_stopped(const struct ev_loop *l) { return __atomic_load_n(&l->stop, __ATOMIC_SEQ_CST); }

uint64_t ev_now_ns(const struct ev_loop *l) { return l->now_ns; }

const char *ev_backend_name(void) { return backend.name(); }
