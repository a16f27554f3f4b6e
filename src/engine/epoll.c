/* epoll: nonblocking event loops (core/ev), one per worker thread, each with its own
 * SO_REUSEPORT listener when --workers > 1.
 *
 * Per readiness a connection does one read, feeds the protocol until it needs more input and
 * makes one write of everything the batch produced; what the socket does not take waits for
 * EV_WRITE (and reading pauses while more than OUT_HIGH bytes wait, so a client that does not
 * read cannot make the server buffer without bound). The read goes into the worker's buffer;
 * only a partial request is copied into the connection's own input buffer. Nothing is
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
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/ev.h"
#include "core/log.h"
#include "engine/econn.h"
#include "engine/room.h"

#define OUT_HIGH (256 * 1024)

struct worker;

struct conn {
	int fd;
	int mask;           /* our ev interest */
	int dead;           /* overflowed (chat): no more deliveries */
	int dirty;          /* on the worker's same-thread flush list */
	int wake_queued;    /* on the worker's cross-thread wake list (wake_mu) */
	struct worker *w;
	struct conn *next, *prev;      /* worker's connections */
	struct conn *dirty_next, *wake_next;
	struct econn e;     /* input, timeouts, closing */
	struct buf out;
	pthread_mutex_t lock;      /* out, dead: only with several workers */
	struct room_member member;
	struct proto_env env;
	_Alignas(16) unsigned char state[];
};

struct srv {
	struct econn_cfg ec;
	struct room_set *rooms;
	int nworkers;
	int shared;            /* several workers: lock connections */
	atomic_int nconns;
	atomic_uint_fast64_t next_id;
};

struct worker {
	struct srv *s;
	struct ev_loop *loop;
	struct econn_acceptor acc;
	int stop_fd;
	int wake_fd;
	char *rbuf;
	struct buf scratch;
	struct conn *conns;
	size_t nconns;
	struct conn *dirty;
	pthread_mutex_t wake_mu;
	struct conn *wake;
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

static void set_mask(struct conn *c, int mask)
{
	if (mask == c->mask)
		return;
	struct ev_loop *l = c->w->loop;
	if (c->mask & ~mask)
		ev_del(l, c->fd, c->mask & ~mask);
	if (mask & ~c->mask)
		ev_add(l, c->fd, mask & ~c->mask, conn_cb, c);
	c->mask = mask;
}

static void maybe_finish(struct worker *w)
{
	if (w->stopping && w->nconns == 0)
		ev_stop(w->loop);
}

static void conn_close(struct conn *c)
{
	struct worker *w = c->w;
	struct srv *s = w->s;
	if (c->member.room)
		room_leave(s->rooms, &c->member);
	if (s->shared) {
		pthread_mutex_lock(&w->wake_mu);
		if (c->wake_queued) {
			struct conn **pp = &w->wake;
			while (*pp && *pp != c)
				pp = &(*pp)->wake_next;
			if (*pp)
				*pp = c->wake_next;
			c->wake_queued = 0;
		}
		pthread_mutex_unlock(&w->wake_mu);
	}
	if (c->dirty) {
		struct conn **pp = &w->dirty;
		while (*pp && *pp != c)
			pp = &(*pp)->dirty_next;
		if (*pp)
			*pp = c->dirty_next;
		c->dirty = 0;
	}
	if (c->mask)
		ev_del(w->loop, c->fd, c->mask);
	close(c->fd);
	if (s->ec.p->fini)
		s->ec.p->fini(c->state);
	if (c->next)
		c->next->prev = c->prev;
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	w->nconns--;
	atomic_fetch_sub(&s->nconns, 1);
	buf_free(&c->e.in);
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
	if (used) {
		int mask = EV_WRITE;
		if (!c->e.closing && used < OUT_HIGH)
			mask |= EV_READ;
		set_mask(c, mask);
		return 0;
	}
	if (c->e.closing) {
		shutdown(c->fd, SHUT_WR);
		conn_close(c);
		return -1;
	}
	set_mask(c, EV_READ);
	return 0;
}

static void flush_dirty(struct worker *w)
{
	while (w->dirty) {
		struct conn *d = w->dirty;
		w->dirty = d->dirty_next;
		d->dirty = 0;
		conn_flush(d);
	}
}

/* room delivery: the publisher's thread, room lock held */
static void conn_deliver(struct room_member *m, const char *msg, size_t len)
{
	struct conn *t = (struct conn *)((char *)m - offsetof(struct conn, member));
	struct worker *w = t->w;
	struct srv *s = w->s;
	lock_conn(t);
	if (!t->dead) {
		if (buf_used(&t->out) + len > s->ec.max_outbuf_bytes || buf_append(&t->out, msg, len)) {
			if (s->ec.p->overflow)
				s->ec.p->overflow(t->state, &t->out);
			t->dead = 1;
		}
	}
	unlock_conn(t);
	if (w == cur_w) {
		if (!t->dirty) {
			t->dirty = 1;
			t->dirty_next = w->dirty;
			w->dirty = t;
		}
		return;
	}
	pthread_mutex_lock(&w->wake_mu);
	int kick = 0;
	if (!t->wake_queued) {
		t->wake_queued = 1;
		kick = w->wake == NULL;
		t->wake_next = w->wake;
		w->wake = t;
	}
	pthread_mutex_unlock(&w->wake_mu);
	if (kick) {
		uint64_t one = 1;
		ssize_t r = write(w->wake_fd, &one, sizeof(one));
		(void)r;
	}
}

static int env_join(struct proto_env *env, const char *room, size_t len)
{
	struct conn *c = env->engine_ud;
	return room_join(c->w->s->rooms, &c->member, room, len);
}

static int env_publish(struct proto_env *env, const char *msg, size_t len)
{
	struct conn *c = env->engine_ud;
	int r = room_publish(c->w->s->rooms, &c->member, msg, len);
	return r < 0 && r != -ENOENT ? r : 0;
}

static void conn_read(struct conn *c)
{
	struct worker *w = c->w;
	struct srv *s = w->s;
	const char *data;
	ssize_t n = econn_read(&c->e, c->fd, w->rbuf, &data);
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
	int r = econn_input(&s->ec, &c->e, c->state, data, (size_t)n, out, ev_now_ns(w->loop));
	if (s->shared && buf_used(out)) {
		lock_conn(c);
		if (!c->dead && buf_append(&c->out, buf_head(out), buf_used(out)))
			c->e.closing = 1;
		unlock_conn(c);
		buf_clear(out);
	}
	if (w->dirty)
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
	struct srv *s = w->s;
	struct conn *c = calloc(1, sizeof(*c) + s->ec.p->state_size);
	if (!c) {
		close(fd);
		return;
	}
	c->fd = fd;
	c->w = w;
	c->e.last_ns = ev_now_ns(w->loop);
	if (s->shared)
		pthread_mutex_init(&c->lock, NULL);
	c->member.deliver = conn_deliver;
	econn_env_init(&c->env, s->ec.cfg, atomic_fetch_add(&s->next_id, 1), c, env_join,
		       env_publish);
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
	atomic_fetch_add(&s->nconns, 1);
	net_set_nodelay(fd, 1);
	if (s->ec.p->init(c->state, &c->env) < 0) {
		conn_close(c);
		return;
	}
	if (ev_add(w->loop, fd, EV_READ, conn_cb, c) < 0) {
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
	struct srv *s = w->s;
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
		struct conn *c = w->wake;
		if (c) {
			w->wake = c->wake_next;
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
	econn_acceptor_close(&w->acc);
	/* idle connections go now; those with output pending finish it */
	struct conn *c = w->conns;
	while (c) {
		struct conn *next = c->next;
		c->e.closing = 1;
		buf_clear(&c->e.in);
		conn_flush(c);
		c = next;
	}
	ev_timer_add(l, ENGINE_STOP_GRACE_NS, grace_over, w);
	maybe_finish(w);
}

static int64_t sweep(struct ev_loop *l, uint64_t id, void *ud)
{
	struct worker *w = ud;
	uint64_t now = clock_now_ns();
	struct conn *c = w->conns;
	while (c) {
		struct conn *next = c->next;
		if (econn_expired(&w->s->ec, &c->e, buf_used(&c->out), now))
			conn_close(c);
		c = next;
	}
	return (int64_t)w->s->ec.sweep_ns;
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	cur_w = w;
	while (!ev_stopped(w->loop)) {
		int r = ev_poll(w->loop, -1);
		if (r < 0 && r != -EINTR) {
			error("event loop failed: %s", strerror(-r));
			break;
		}
	}
	/* whatever is left after the grace period */
	while (w->conns)
		conn_close(w->conns);
	return NULL;
}

/* 0, or -1 after printing why */
static int worker_init(struct srv *s, struct worker *w, int i, struct net_addr *bound)
{
	w->s = s;
	w->acc.fd = w->wake_fd = -1;
	pthread_mutex_init(&w->wake_mu, NULL);
	w->loop = ev_new(1024);
	w->rbuf = malloc(ENGINE_READ_BUF);
	if (!w->loop || !w->rbuf)
		return error("out of memory starting epoll worker %d", i), -1;
	int fd = econn_listen(s->ec.cfg, i, s->nworkers, NET_NONBLOCK, bound);
	if (fd < 0)
		return -1;
	int r = econn_acceptor_start(&w->acc, w->loop, fd, take, w);
	if (r < 0)
		close(fd);
	w->stop_fd = engine_stop_fd();
	if (r == 0)
		r = ev_add(w->loop, w->stop_fd, EV_READ, stop_cb, w);
	if (r == 0 && s->shared) {
		w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		r = w->wake_fd < 0 ? -errno : ev_add(w->loop, w->wake_fd, EV_READ, wake_cb, w);
	}
	if (r < 0)
		return error("cannot start epoll worker %d: %s", i, strerror(-r)), -1;
	if (s->ec.sweep_ns)
		ev_timer_add(w->loop, s->ec.sweep_ns, sweep, w);
	return 0;
}

/* econn_threads_run's abandon: a worker whose thread could not be started */
static void worker_abandon(void *arg)
{
	struct worker *w = arg;
	econn_acceptor_close(&w->acc);
}

static void worker_fini(struct worker *w)
{
	while (w->conns)
		conn_close(w->conns);
	econn_acceptor_close(&w->acc);
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	if (w->loop)
		ev_free(w->loop);
	free(w->rbuf);
	buf_free(&w->scratch);
	pthread_mutex_destroy(&w->wake_mu);
}

static int epoll_run(const struct engine_cfg *cfg)
{
	struct srv s = {0};
	econn_cfg_init(&s.ec, cfg);
	s.nworkers = cfg->workers > 0 ? cfg->workers : 1;
	s.shared = s.nworkers > 1;
	atomic_init(&s.nconns, 0);
	atomic_init(&s.next_id, 1);
	s.rooms = room_set_new(s.shared);
	struct worker *ws = calloc((size_t)s.nworkers, sizeof(*ws));
	if (!s.rooms || !ws) {
		room_set_free(s.rooms);
		free(ws);
		return error("out of memory starting %d epoll workers", s.nworkers), 1;
	}
	int rc = 1, inited = 0;
	struct net_addr bound;
	for (; inited < s.nworkers; inited++)
		if (worker_init(&s, &ws[inited], inited, &bound) < 0)
			break;
	if (inited == s.nworkers)
		rc = econn_threads_run(cfg, &bound, ws, sizeof(*ws), s.nworkers, worker_run,
				       worker_abandon) < 0;
	for (int i = 0; i < s.nworkers && i <= inited; i++)
		worker_fini(&ws[i]);
	free(ws);
	room_set_free(s.rooms);
	return rc;
}

const struct engine engine_epoll = {
	.name = "epoll",
	.summary = "nonblocking event loop; --workers N loops with SO_REUSEPORT",
	.protos = "sink echo http chat",
	.run = epoll_run,
};
