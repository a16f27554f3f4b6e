/* coro: a coroutine per connection on an event loop — the Go-like model, in C.
 *
 * Each connection runs conn_main() on its own stackful coroutine (src/coro), written as plain
 * blocking code: read, feed the protocol, write. When a read or write would block, the
 * coroutine records what it waits for and yields to the worker's event loop (src/core/ev);
 * the loop resumes it when the fd is ready. Switching between connections is a user-space
 * register swap, never a kernel context switch: that is what this engine is here to measure
 * against fork (a process per connection) and thread (a kernel thread per connection).
 *
 * `--workers N` runs N such loops on threads with SO_REUSEPORT listeners (Go's GOMAXPROCS).
 * Chat needs the room's members on one loop (a delivery wakes the receiving coroutine through
 * its loop), so chat always runs one worker.
 *
 * A connection stays registered for EV_READ while it waits to read; a delivery (chat) to a
 * coroutine parked in read adds EV_WRITE so the loop wakes it to write the new output. While a
 * write blocks, EV_READ is dropped (level-triggered readiness would spin) and restored after.
 * Timeouts: one sweep timer per loop, like the epoll engine. EMFILE: the listener pauses 100 ms.
 */
#include "engine/engine.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/ev.h"
#include "core/log.h"
#include "coro/coro.h"
#include "engine/econn.h"
#include "engine/room.h"

#define CORO_STACK (64 * 1024)

struct worker;

struct cconn {
	int fd;
	int mask;       /* registered ev interest */
	int wait;       /* what the coroutine is parked on (EV_READ / EV_WRITE), 0 = running */
	int kill;       /* close at the next resume (timeout, stop grace) */
	int dead;       /* output over the bound (chat): nothing more is delivered */
	struct worker *w;
	struct coro *co;
	struct cconn *next, *prev;
	struct econn e; /* input, timeouts, closing (finish writing out, then close) */
	struct buf out;
	struct room_member member;
	struct proto_env env;
	_Alignas(16) unsigned char state[];
};

struct csrv {
	struct econn_cfg ec;
	struct room_set *rooms; /* chat: one worker, no lock */
	atomic_int nconns;
	atomic_uint_fast64_t next_id;
};

struct worker {
	struct csrv *s;
	struct ev_loop *loop;
	struct econn_acceptor acc;
	char *rbuf; /* shared by the worker's coroutines: a coroutine never yields holding data in it */
	struct cconn *conns;
	size_t nconns;
	int stopping;
};

static void conn_cb(struct ev_loop *l, int fd, int mask, void *ud);

static void set_mask(struct cconn *c, int mask)
{
	if (mask == c->mask)
		return;
	if (c->mask & ~mask)
		ev_del(c->w->loop, c->fd, c->mask & ~mask);
	if (mask & ~c->mask)
		ev_add(c->w->loop, c->fd, mask & ~c->mask, conn_cb, c);
	c->mask = mask;
}

/* Parks the running coroutine until `what` is ready (or it is woken to write / killed). */
static void park(struct cconn *c, int what)
{
	c->wait = what;
	coro_yield();
	c->wait = 0;
}

/* Writes all of c->out; yields while the socket is full. 0, or -1 when the peer is gone. */
static int co_flush(struct cconn *c)
{
	while (buf_used(&c->out) && !c->kill) {
		ssize_t n = send(c->fd, buf_head(&c->out), buf_used(&c->out), MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			buf_consume(&c->out, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			return -1;
		set_mask(c, EV_WRITE);
		park(c, EV_WRITE);
		set_mask(c, EV_READ);
	}
	if (c->dead)
		c->e.closing = 1;
	return c->kill ? -1 : 0;
}

/* Reads into the worker buffer, parking while there is nothing. n > 0 bytes, 0 EOF, -1 error
 * or killed, -2 woken because output is waiting (chat delivery). */
static ssize_t co_read(struct cconn *c, char *buf, size_t len)
{
	for (;;) {
		if (c->kill || c->e.closing)
			return -1;
		if (buf_used(&c->out))
			return -2;
		ssize_t n = read(c->fd, buf, len);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -1;
		park(c, EV_READ);
	}
}

/* The connection, written as blocking code. */
static void conn_main(void *arg)
{
	struct cconn *c = arg;
	struct worker *w = c->w;
	struct csrv *s = w->s;
	while (!c->e.closing) {
		if (co_flush(c) < 0 || c->e.closing)
			break;
		ssize_t n = co_read(c, w->rbuf, ENGINE_READ_BUF);
		if (n == -2)
			continue; /* output to write first */
		if (n < 0)
			break;
		if (n == 0) {
			c->e.closing = 1; /* peer done sending: answer what is complete */
			break;
		}
		if (econn_input(&s->ec, &c->e, c->state, w->rbuf, (size_t)n, &c->out,
				ev_now_ns(w->loop)) < 0)
			break;
	}
	if (c->e.closing && !c->kill) {
		co_flush(c);
		shutdown(c->fd, SHUT_WR);
	}
}

static void conn_free(struct cconn *c)
{
	struct worker *w = c->w;
	struct csrv *s = w->s;
	if (c->member.room)
		room_leave(s->rooms, &c->member);
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
	coro_free(c->co);
	buf_free(&c->e.in);
	buf_free(&c->out);
	free(c);
	if (w->stopping && !w->nconns)
		ev_stop(w->loop);
}

/* Runs c until it parks again; frees it when its coroutine has ended. */
static void conn_run(struct cconn *c)
{
	coro_resume(c->co);
	if (coro_done(c->co))
		conn_free(c);
}

static void conn_cb(struct ev_loop *l, int fd, int mask, void *ud)
{
	struct cconn *c = ud;
	if (c->wait == EV_WRITE && (mask & EV_WRITE))
		conn_run(c);
	else if (c->wait == EV_READ && (mask & EV_READ))
		conn_run(c);
	else if (c->wait == EV_READ && (mask & EV_WRITE)) {
		/* woken to write deliveries */
		set_mask(c, EV_READ);
		conn_run(c);
	}
}

/* chat delivery, on the publisher's coroutine (same worker: chat runs one worker) */
static void conn_deliver(struct room_member *m, const char *msg, size_t len)
{
	struct cconn *t = (struct cconn *)((char *)m - offsetof(struct cconn, member));
	struct csrv *s = t->w->s;
	if (t->dead)
		return;
	if (buf_used(&t->out) + len > s->ec.max_outbuf_bytes || buf_append(&t->out, msg, len)) {
		if (s->ec.p->overflow)
			s->ec.p->overflow(t->state, &t->out);
		t->dead = 1;
	}
	if (t->wait == EV_READ)
		set_mask(t, EV_READ | EV_WRITE);
}

static int env_join(struct proto_env *env, const char *room, size_t len)
{
	struct cconn *c = env->engine_ud;
	return room_join(c->w->s->rooms, &c->member, room, len);
}

static int env_publish(struct proto_env *env, const char *msg, size_t len)
{
	struct cconn *c = env->engine_ud;
	int r = room_publish(c->w->s->rooms, &c->member, msg, len);
	return r < 0 && r != -ENOENT ? r : 0;
}

static void conn_new(struct worker *w, int fd)
{
	struct csrv *s = w->s;
	struct cconn *c = calloc(1, sizeof(*c) + s->ec.p->state_size);
	if (!c) {
		close(fd);
		return;
	}
	c->fd = fd;
	c->w = w;
	c->e.last_ns = ev_now_ns(w->loop);
	c->member.deliver = conn_deliver;
	econn_env_init(&c->env, s->ec.cfg, atomic_fetch_add(&s->next_id, 1), c, env_join,
		       env_publish);
	c->co = coro_new(conn_main, c, CORO_STACK);
	if (!c->co) {
		close(fd);
		free(c);
		return;
	}
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
	atomic_fetch_add(&s->nconns, 1);
	net_set_nodelay(fd, 1);
	if (s->ec.p->init(c->state, &c->env) < 0 || ev_add(w->loop, fd, EV_READ, conn_cb, c) < 0) {
		c->kill = 1;
		conn_run(c);
		return;
	}
	c->mask = EV_READ;
	conn_run(c); /* runs until its first read parks */
}

/* econn_acceptor's take: a new connection, unless --max-conns are open */
static int take(void *ud, int fd)
{
	struct worker *w = ud;
	if (econn_full(w->s->ec.cfg, atomic_load(&w->s->nconns)))
		close(fd);
	else
		conn_new(w, fd);
	return 0;
}

/* Resumes every parked coroutine marked kill or closing so it can end. */
static void wake_for_end(struct worker *w)
{
	struct cconn *c = w->conns;
	while (c) {
		struct cconn *next = c->next;
		if (c->wait && (c->kill || (c->wait == EV_READ && c->e.closing)))
			conn_run(c);
		c = next;
	}
}

static int64_t grace_over(struct ev_loop *l, uint64_t id, void *ud)
{
	struct worker *w = ud;
	for (struct cconn *c = w->conns; c; c = c->next)
		c->kill = 1;
	wake_for_end(w);
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
	/* connections parked in read have nothing in flight: they end now; those writing finish */
	for (struct cconn *c = w->conns; c; c = c->next)
		if (c->wait == EV_READ)
			c->e.closing = 1;
	wake_for_end(w);
	if (!w->nconns)
		ev_stop(l);
	else
		ev_timer_add(l, ENGINE_STOP_GRACE_NS, grace_over, w);
}

static int64_t sweep(struct ev_loop *l, uint64_t id, void *ud)
{
	struct worker *w = ud;
	uint64_t now = clock_now_ns();
	for (struct cconn *c = w->conns; c; c = c->next)
		if (econn_expired(&w->s->ec, &c->e, buf_used(&c->out), now))
			c->kill = 1;
	wake_for_end(w);
	return (int64_t)w->s->ec.sweep_ns;
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	while (!ev_stopped(w->loop)) {
		int r = ev_poll(w->loop, -1);
		if (r < 0 && r != -EINTR) {
			error("event loop failed: %s", strerror(-r));
			break;
		}
	}
	for (struct cconn *c = w->conns; c; c = c->next)
		c->kill = 1;
	while (w->conns)
		conn_run(w->conns); /* each one ends at once, being killed */
	return NULL;
}

/* 0, or -1 after printing why */
static int worker_init(struct csrv *s, struct worker *w, int i, int nworkers,
		       struct net_addr *bound)
{
	w->s = s;
	w->acc.fd = -1;
	w->loop = ev_new(1024);
	w->rbuf = malloc(ENGINE_READ_BUF);
	if (!w->loop || !w->rbuf)
		return error("out of memory starting coro worker %d", i), -1;
	int fd = econn_listen(s->ec.cfg, i, nworkers, NET_NONBLOCK, bound);
	if (fd < 0)
		return -1;
	int r = econn_acceptor_start(&w->acc, w->loop, fd, take, w);
	if (r < 0)
		close(fd);
	if (r == 0)
		r = ev_add(w->loop, engine_stop_fd(), EV_READ, stop_cb, w);
	if (r < 0)
		return error("cannot start coro worker %d: %s", i, strerror(-r)), -1;
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
	econn_acceptor_close(&w->acc);
	if (w->loop)
		ev_free(w->loop);
	free(w->rbuf);
}

static int coro_run(const struct engine_cfg *cfg)
{
	struct csrv s = {0};
	econn_cfg_init(&s.ec, cfg);
	int nworkers = cfg->workers > 0 ? cfg->workers : 1;
	if (s.ec.p->fanout && nworkers > 1) {
		warn("engine 'coro' runs '%s' on one worker (a room lives on one loop); ignoring "
		     "--workers %d", s.ec.p->name, nworkers);
		nworkers = 1;
	}
	atomic_init(&s.nconns, 0);
	atomic_init(&s.next_id, 1);
	s.rooms = room_set_new(0);
	struct worker *ws = calloc((size_t)nworkers, sizeof(*ws));
	if (!s.rooms || !ws) {
		room_set_free(s.rooms);
		free(ws);
		return error("out of memory starting %d coro workers", nworkers), 1;
	}
	int rc = 1, inited = 0;
	struct net_addr bound;
	for (; inited < nworkers; inited++)
		if (worker_init(&s, &ws[inited], inited, nworkers, &bound) < 0)
			break;
	if (inited == nworkers)
		rc = econn_threads_run(cfg, &bound, ws, sizeof(*ws), nworkers, worker_run,
				       worker_abandon) < 0;
	for (int i = 0; i < nworkers && i <= inited; i++)
		worker_fini(&ws[i]);
	free(ws);
	room_set_free(s.rooms);
	return rc;
}

const struct engine engine_coro = {
	.name = "coro",
	.summary = "a coroutine per connection on an event loop (Go-like); --workers N loops",
	.protos = "sink echo http chat",
	.run = coro_run,
};
