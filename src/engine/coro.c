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
#include <sys/queue.h>
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
	int readable;   /* the socket may hold input: not known drained since the loop last
			 * reported EV_READ (a short read or EAGAIN clears it) */
	int dead;       /* output over the bound (chat): nothing more is delivered */
	struct worker *w;
	struct coro *co;
	LIST_ENTRY(cconn) link; /* worker's connections */
	struct econn e; /* input, timeouts, closing (finish writing out, then close) */
	struct buf out;
	struct room_member member;
	struct proto_env env;
	_Alignas(16) unsigned char state[];
};

struct worker {
	struct econn_srv *s;
	struct econn_loop el; /* its rbuf is shared by the worker's coroutines: a coroutine never
			       * yields holding data in it */
	LIST_HEAD(, cconn) conns;
	size_t nconns;
	int stopping;
};

static void conn_cb(struct ev_loop *l, int fd, int mask, void *ud);

static void set_mask(struct cconn *c, int mask)
{
	econn_set_mask(c->w->el.loop, c->fd, &c->mask, mask, conn_cb, c);
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
		if (!c->readable) {
			/* drained: a read now would return EAGAIN; wait for the loop's EV_READ
			 * (level-triggered: data that came after the short read is reported) */
			park(c, EV_READ);
			continue;
		}
		ssize_t n = read(c->fd, buf, len);
		if (n >= 0) {
			if ((size_t)n < len)
				c->readable = 0; /* a short read took all there was */
			return n;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -1;
		c->readable = 0;
	}
}

/* The connection, written as blocking code. */
static void conn_main(void *arg)
{
	struct cconn *c = arg;
	struct worker *w = c->w;
	struct econn_srv *s = w->s;
	while (!c->e.closing) {
		if (co_flush(c) < 0 || c->e.closing)
			break;
		ssize_t n = co_read(c, w->el.rbuf, ENGINE_READ_BUF);
		if (n == -2)
			continue; /* output to write first */
		if (n < 0)
			break;
		if (n == 0) {
			c->e.closing = 1; /* peer done sending: answer what is complete */
			break;
		}
		if (econn_input(&s->ec, &c->e, c->state, w->el.rbuf, (size_t)n, &c->out,
				ev_now_ns(w->el.loop)) < 0)
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
	struct econn_srv *s = w->s;
	if (c->member.room)
		room_leave(s->rooms, &c->member);
	if (c->mask)
		ev_del(w->el.loop, c->fd, c->mask);
	close(c->fd);
	econn_fini(&s->ec, &c->e, c->state);
	LIST_REMOVE(c, link);
	w->nconns--;
	atomic_fetch_sub(&s->nconns, 1);
	coro_free(c->co);
	buf_free(&c->out);
	free(c);
	if (w->stopping && !w->nconns)
		ev_stop(w->el.loop);
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
	if (mask & EV_READ)
		c->readable = 1;
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
	if (t->dead)
		return;
	if (econn_deliver(&t->w->s->ec, t->state, &t->out, 0, msg, len) < 0)
		t->dead = 1;
	if (t->wait == EV_READ)
		set_mask(t, EV_READ | EV_WRITE);
}

static void conn_new(struct worker *w, int fd)
{
	struct econn_srv *s = w->s;
	struct cconn *c = calloc(1, sizeof(*c) + s->ec.p->state_size);
	if (!c) {
		close(fd);
		return;
	}
	c->fd = fd;
	c->w = w;
	c->e.last_ns = ev_now_ns(w->el.loop);
	c->member.deliver = conn_deliver;
	c->member.set = s->rooms;
	econn_env_init(&c->env, s->ec.cfg, atomic_fetch_add(&s->next_id, 1), &c->member,
		       room_env_join, room_env_publish);
	c->co = coro_new(conn_main, c, CORO_STACK);
	if (!c->co) {
		close(fd);
		free(c);
		return;
	}
	LIST_INSERT_HEAD(&w->conns, c, link);
	w->nconns++;
	atomic_fetch_add(&s->nconns, 1);
	net_set_nodelay(fd, 1);
	if (s->ec.p->init(c->state, &c->env) < 0 ||
	    ev_add(w->el.loop, fd, EV_READ, conn_cb, c) < 0) {
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
	for (struct cconn *c = LIST_FIRST(&w->conns), *next; c; c = next) {
		next = LIST_NEXT(c, link);
		if (c->wait && (c->kill || (c->wait == EV_READ && c->e.closing)))
			conn_run(c);
	}
}

static int64_t grace_over(struct ev_loop *l, uint64_t id, void *ud)
{
	struct worker *w = ud;
	struct cconn *c;
	LIST_FOREACH(c, &w->conns, link)
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
	econn_acceptor_close(&w->el.acc);
	/* connections parked in read have nothing in flight: they end now; those writing finish */
	struct cconn *c;
	LIST_FOREACH(c, &w->conns, link)
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
	struct cconn *c;
	LIST_FOREACH(c, &w->conns, link)
		if (econn_expired(&w->s->ec, &c->e, buf_used(&c->out), now))
			c->kill = 1;
	wake_for_end(w);
	return (int64_t)w->s->ec.sweep_ns;
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	econn_loop_run(&w->el);
	struct cconn *c;
	LIST_FOREACH(c, &w->conns, link)
		c->kill = 1;
	while (!LIST_EMPTY(&w->conns))
		conn_run(LIST_FIRST(&w->conns)); /* each one ends at once, being killed */
	return NULL;
}

/* econn_srv_run's init: 0, or -1 after engine_fail */
static int worker_init(struct econn_srv *s, void *arg, int i, struct net_addr *bound)
{
	struct worker *w = arg;
	w->s = s;
	return econn_loop_init(&w->el, &s->ec, i, s->nworkers, bound, take, stop_cb, sweep, w);
}

static void worker_fini(void *arg)
{
	struct worker *w = arg;
	econn_loop_fini(&w->el);
}

/* chat: a delivery wakes the receiving coroutine through its loop, so one worker */
static int coro_run(const struct engine_cfg *cfg)
{
	struct econn_srv s;
	return econn_srv_run(&s, cfg, 0, sizeof(struct worker), worker_init, worker_run,
			     worker_fini);
}

const struct engine engine_coro = {
	.name = "coro",
	.summary = "a coroutine per connection on an event loop (Go-like); --workers N loops",
	.run = coro_run,
};
