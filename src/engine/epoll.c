/* epoll: nonblocking event loops (core/ev), one per worker thread, each with its own
 * SO_REUSEPORT listener when --workers > 1.
 *
 * Per readiness a connection does one read, feeds the protocol until it needs more input and
 * makes one write of everything the batch produced; what the socket does not take waits for
 * EV_WRITE (and reading pauses while more than ECONN_OUT_HIGH_BYTES wait, so a client that
 * does not read cannot make the server buffer without bound). The read goes into the worker's
 * buffer; only a partial request is copied into the connection's own input buffer. Nothing is
 * allocated per request.
 *
 * Chat: a room set shared by all workers. With one worker everything is single-threaded. With
 * several, a connection's output buffer is guarded by its mutex (the feed output goes through
 * the worker's scratch buffer, so no connection lock is held while publishing), and a delivery
 * to a connection of another worker queues it on that worker's wake list and writes its
 * eventfd; the owning loop does the write.
 *
 * Timeouts: one sweep timer per loop (only when --idle-timeout or --header-timeout is set).
 * EMFILE/ENFILE on accept: the listener is paused for 100 ms, then retried.
 */
#include "engine/engine.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/ev.h"
#include "core/log.h"
#include "engine/econn.h"
#include "engine/room.h"

struct worker;

struct conn {
	int fd;
	int mask;           /* our ev interest */
	int dead;           /* overflowed (chat): no more deliveries */
	int dirty;          /* on the worker's same-thread flush list */
	int wake_queued;    /* on the worker's cross-thread wake list (wake_mu) */
	struct worker *w;
	LIST_ENTRY(conn) link;         /* worker's connections */
	SLIST_ENTRY(conn) dirty_link, wake_link;
	struct econn e;     /* input, timeouts, closing */
	struct buf out;
	pthread_mutex_t lock;      /* out, dead: only with several workers */
	struct room_member member;
	struct proto_env env;
	_Alignas(16) unsigned char state[];
};

struct worker {
	struct econn_srv *s;
	struct econn_loop el; /* loop, listener, read buffer */
	int wake_fd;
	struct buf scratch;
	LIST_HEAD(, conn) conns;
	size_t nconns;
	SLIST_HEAD(, conn) dirty;      /* same-thread flush list */
	pthread_mutex_t wake_mu;
	SLIST_HEAD(, conn) wake;       /* cross-thread wake list (wake_mu) */
	int stopping;
};

static _Thread_local struct worker *cur_w;

static void conn_cb(struct ev_loop *l, int fd, int mask, void *ud);

static void lock_conn(struct conn *c)
{
	if (c->w->s->shared)
		pthread_mutex_lock(&c->lock);
}

static void unlock_conn(struct conn *c)
{
	if (c->w->s->shared)
		pthread_mutex_unlock(&c->lock);
}

static void maybe_finish(struct worker *w)
{
	if (w->stopping && w->nconns == 0)
		ev_stop(w->el.loop);
}

static void conn_close(struct conn *c)
{
	struct worker *w = c->w;
	struct econn_srv *s = w->s;
	if (c->member.room)
		room_leave(s->rooms, &c->member);
	if (s->shared) {
		pthread_mutex_lock(&w->wake_mu);
		if (c->wake_queued) {
			SLIST_REMOVE(&w->wake, c, conn, wake_link);
			c->wake_queued = 0;
		}
		pthread_mutex_unlock(&w->wake_mu);
	}
	if (c->dirty) {
		SLIST_REMOVE(&w->dirty, c, conn, dirty_link);
		c->dirty = 0;
	}
	if (c->mask)
		ev_del(w->el.loop, c->fd, c->mask);
	close(c->fd);
	econn_fini(&s->ec, &c->e, c->state);
	LIST_REMOVE(c, link);
	w->nconns--;
	atomic_fetch_sub(&s->nconns, 1);
	buf_free(&c->out);
	if (s->shared)
		pthread_mutex_destroy(&c->lock);
	free(c);
	maybe_finish(w);
}

/* Writes what out holds; returns 0, or -1 when the connection was closed. */
static int conn_flush(struct conn *c)
{
	int err = 0;
	lock_conn(c);
	if (c->dead)
		c->e.closing = 1;
	size_t used = buf_used(&c->out);
	if (used) {
		ssize_t n = send(c->fd, buf_head(&c->out), used, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0)
			buf_consume(&c->out, (size_t)n);
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
			err = 1;
		used = buf_used(&c->out);
	}
	unlock_conn(c);
	if (err) {
		conn_close(c);
		return -1;
	}
	int mask = econn_interest(&c->e, used);
	if (!mask) { /* closing, everything sent */
		shutdown(c->fd, SHUT_WR);
		conn_close(c);
		return -1;
	}
	econn_set_mask(c->w->el.loop, c->fd, &c->mask, mask, conn_cb, c);
	return 0;
}

static void flush_dirty(struct worker *w)
{
	struct conn *d;
	while ((d = SLIST_FIRST(&w->dirty))) {
		SLIST_REMOVE_HEAD(&w->dirty, dirty_link);
		d->dirty = 0;
		conn_flush(d);
	}
}

/* room delivery: the publisher's thread, room lock held */
static void conn_deliver(struct room_member *m, const char *msg, size_t len)
{
	struct conn *t = (struct conn *)((char *)m - offsetof(struct conn, member));
	struct worker *w = t->w;
	lock_conn(t);
	if (!t->dead && econn_deliver(&w->s->ec, t->state, &t->out, 0, msg, len) < 0)
		t->dead = 1;
	unlock_conn(t);
	if (w == cur_w) {
		if (!t->dirty) {
			t->dirty = 1;
			SLIST_INSERT_HEAD(&w->dirty, t, dirty_link);
		}
		return;
	}
	pthread_mutex_lock(&w->wake_mu);
	int kick = 0;
	if (!t->wake_queued) {
		t->wake_queued = 1;
		kick = SLIST_EMPTY(&w->wake);
		SLIST_INSERT_HEAD(&w->wake, t, wake_link);
	}
	pthread_mutex_unlock(&w->wake_mu);
	if (kick) {
		uint64_t one = 1;
		ssize_t r = write(w->wake_fd, &one, sizeof(one));
		(void)r;
	}
}

static void conn_read(struct conn *c)
{
	struct worker *w = c->w;
	struct econn_srv *s = w->s;
	const char *data;
	ssize_t n = econn_read(&c->e, c->fd, w->el.rbuf, &data);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		conn_close(c);
		return;
	}
	if (n == 0) {
		/* the peer is done sending: answer what is complete, then close */
		c->e.closing = 1;
		conn_flush(c);
		return;
	}
	/* several workers: the output goes through the worker's scratch buffer, so that no
	 * connection lock is held while the protocol publishes */
	struct buf *out = s->shared ? &w->scratch : &c->out;
	int r = econn_input(&s->ec, &c->e, c->state, data, (size_t)n, out, ev_now_ns(w->el.loop));
	if (s->shared && buf_used(out)) {
		lock_conn(c);
		if (!c->dead && buf_append(&c->out, buf_head(out), buf_used(out)))
			c->e.closing = 1;
		unlock_conn(c);
		buf_clear(out);
	}
	if (!SLIST_EMPTY(&w->dirty))
		flush_dirty(w);
	if (r < 0) {
		conn_close(c);
		return;
	}
	conn_flush(c);
}

static void conn_cb(struct ev_loop *l, int fd, int mask, void *ud)
{
	struct conn *c = ud;
	if (mask & EV_WRITE) {
		if (conn_flush(c) < 0)
			return;
	}
	if ((mask & EV_READ) && (c->mask & EV_READ) && !c->e.closing)
		conn_read(c);
}

static void conn_new(struct worker *w, int fd)
{
	struct econn_srv *s = w->s;
	struct conn *c = calloc(1, sizeof(*c) + s->ec.p->state_size);
	if (!c) {
		close(fd);
		return;
	}
	c->fd = fd;
	c->w = w;
	c->e.last_ns = ev_now_ns(w->el.loop);
	if (s->shared)
		pthread_mutex_init(&c->lock, NULL);
	c->member.deliver = conn_deliver;
	c->member.set = s->rooms;
	econn_env_init(&c->env, s->ec.cfg, atomic_fetch_add(&s->next_id, 1), &c->member,
		       room_env_join, room_env_publish);
	LIST_INSERT_HEAD(&w->conns, c, link);
	w->nconns++;
	atomic_fetch_add(&s->nconns, 1);
	net_set_nodelay(fd, 1);
	if (s->ec.p->init(c->state, &c->env) < 0) {
		conn_close(c);
		return;
	}
	if (ev_add(w->el.loop, fd, EV_READ, conn_cb, c) < 0) {
		conn_close(c);
		return;
	}
	c->mask = EV_READ;
	/* a greeting, or deliveries made while joining */
	if (buf_used(&c->out))
		conn_flush(c);
}

/* econn_acceptor's take: a new connection, unless --max-conns are open */
static int take(void *ud, int fd)
{
	struct worker *w = ud;
	struct econn_srv *s = w->s;
	if (econn_full(s->ec.cfg, atomic_load(&s->nconns)))
		close(fd);
	else
		conn_new(w, fd);
	return 0;
}

static void wake_cb(struct ev_loop *l, int fd, int mask, void *ud)
{
	struct worker *w = ud;
	uint64_t v;
	ssize_t r = read(fd, &v, sizeof(v));
	(void)r;
	for (;;) {
		pthread_mutex_lock(&w->wake_mu);
		struct conn *c = SLIST_FIRST(&w->wake);
		if (c) {
			SLIST_REMOVE_HEAD(&w->wake, wake_link);
			c->wake_queued = 0;
		}
		pthread_mutex_unlock(&w->wake_mu);
		if (!c)
			break;
		conn_flush(c);
	}
}

static int64_t grace_over(struct ev_loop *l, uint64_t id, void *ud)
{
	ev_stop(l);
	return EV_NOMORE;
}

static void stop_cb(struct ev_loop *l, int fd, int mask, void *ud)
{
	struct worker *w = ud;
	ev_del(l, fd, EV_READ);
	if (w->stopping)
		return;
	w->stopping = 1;
	econn_acceptor_close(&w->el.acc);
	/* idle connections go now; those with output pending finish it */
	for (struct conn *c = LIST_FIRST(&w->conns), *next; c; c = next) {
		next = LIST_NEXT(c, link);
		c->e.closing = 1;
		buf_clear(&c->e.in);
		conn_flush(c);
	}
	ev_timer_add(l, ENGINE_STOP_GRACE_NS, grace_over, w);
	maybe_finish(w);
}

static int64_t sweep(struct ev_loop *l, uint64_t id, void *ud)
{
	struct worker *w = ud;
	uint64_t now = clock_now_ns();
	for (struct conn *c = LIST_FIRST(&w->conns), *next; c; c = next) {
		next = LIST_NEXT(c, link);
		if (econn_expired(&w->s->ec, &c->e, buf_used(&c->out), now))
			conn_close(c);
	}
	return (int64_t)w->s->ec.sweep_ns;
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	cur_w = w;
	econn_loop_run(&w->el);
	/* whatever is left after the grace period */
	while (!LIST_EMPTY(&w->conns))
		conn_close(LIST_FIRST(&w->conns));
	return NULL;
}

/* econn_srv_run's init: 0, or -1 after engine_fail */
static int worker_init(struct econn_srv *s, void *arg, int i, struct net_addr *bound)
{
	struct worker *w = arg;
	w->s = s;
	w->wake_fd = -1;
	pthread_mutex_init(&w->wake_mu, NULL);
	if (econn_loop_init(&w->el, &s->ec, i, s->nworkers, bound, take, stop_cb, sweep, w) < 0)
		return -1;
	if (s->shared) {
		w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		int r = w->wake_fd < 0 ? -errno
				       : ev_add(w->el.loop, w->wake_fd, EV_READ, wake_cb, w);
		if (r < 0)
			return engine_fail(s->ec.cfg, "cannot start epoll worker %d: %s", i,
					   strerror(-r));
	}
	return 0;
}

static void worker_fini(void *arg)
{
	struct worker *w = arg;
	while (!LIST_EMPTY(&w->conns))
		conn_close(LIST_FIRST(&w->conns));
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	econn_loop_fini(&w->el);
	buf_free(&w->scratch);
	pthread_mutex_destroy(&w->wake_mu);
}

static int epoll_run(const struct engine_cfg *cfg)
{
	struct econn_srv s;
	return econn_srv_run(&s, cfg, 1, sizeof(struct worker), worker_init, worker_run,
			     worker_fini);
}

const struct engine engine_epoll = {
	.name = "epoll",
	.summary = "nonblocking event loop; --workers N loops with SO_REUSEPORT",
	.run = epoll_run,
};
