/* pworker: the worker process of the prefork and gateway engines (see pworker.h). */
#include "engine/pworker.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "engine/econn.h"

struct wconn {
	int fd;
	int mask;
	int overflowed;
	struct pworker *w;
	LIST_ENTRY(wconn) link; /* worker's connections */
	struct econn e;    /* input, timeouts, closing (close once out is flushed) */
	struct buf out;
	struct logroom_reader rd;
	struct proto_env env;
	_Alignas(16) unsigned char state[];
};

struct pworker {
	const struct pworker_cfg *pc;
	struct econn_cfg ec;
	struct ev_loop *loop;
	char *rbuf;
	LIST_HEAD(, wconn) conns;
	size_t nconns;
	struct logroom *lr;
	int stopping;
};

static void conn_cb(struct ev_loop *l, int fd, int mask, void *ud);

static void maybe_finish(struct pworker *w)
{
	if (w->stopping && w->nconns == 0)
		ev_stop(w->loop);
}

void pworker_uncount(struct pworker *w)
{
	atomic_fetch_sub(w->pc->live, 1);
	atomic_fetch_sub(w->pc->mine, 1);
}

static void conn_close(struct wconn *c)
{
	struct pworker *w = c->w;
	logroom_leave(&c->rd);
	if (c->mask)
		ev_del(w->loop, c->fd, c->mask);
	close(c->fd);
	econn_fini(&w->ec, &c->e, c->state);
	LIST_REMOVE(c, link);
	w->nconns--;
	pworker_uncount(w);
	buf_free(&c->out);
	free(c);
	maybe_finish(w);
}

/* Writes what out holds; 0, or -1 when the connection was closed. */
static int conn_flush(struct wconn *c)
{
	size_t used = buf_used(&c->out);
	if (used) {
		ssize_t n = send(c->fd, buf_head(&c->out), used, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			buf_consume(&c->out, (size_t)n);
			c->e.last_ns = ev_now_ns(c->w->loop);
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			conn_close(c);
			return -1;
		}
		used = buf_used(&c->out);
	}
	int mask = econn_interest(&c->e, used);
	if (!mask) { /* closing, everything sent */
		shutdown(c->fd, SHUT_WR);
		conn_close(c);
		return -1;
	}
	econn_set_mask(c->w->loop, c->fd, &c->mask, mask, conn_cb, c);
	return 0;
}

/* Room records for a local member (logroom_for_pending callback): into out up to the
 * bound, flushed; when output stays queued (the socket is full) and the member is more than
 * the bound behind the log end, it is a slow reader: overflow line, close after flushing
 * (the fork engine's rule, logroom_read_upto). */
static void conn_pump(struct logroom_reader *rd, void *ud)
{
	struct wconn *c = (struct wconn *)((char *)rd - offsetof(struct wconn, rd));
	size_t max = c->w->ec.max_outbuf_bytes;
	(void)ud;
	ssize_t r = logroom_read_upto(rd, &c->out, max);
	if (r < 0 && r != -EOVERFLOW) { /* the log cannot be read */
		c->e.closing = 1;
		logroom_leave(rd);
		conn_flush(c);
		return;
	}
	if (r >= 0) {
		if (buf_used(&c->out) && conn_flush(c) < 0)
			return; /* closed */
		if (!buf_used(&c->out) || logroom_lag_bytes(rd) + buf_used(&c->out) <= max)
			return;
	}
	/* a slow reader, or a record larger than the bound */
	if (c->w->ec.p->overflow)
		c->w->ec.p->overflow(c->state, &c->out);
	c->overflowed = c->e.closing = 1;
	buf_clear(&c->e.in);
	logroom_leave(rd);
	conn_flush(c);
}

static void conn_read(struct wconn *c)
{
	struct pworker *w = c->w;
	const char *data;
	ssize_t n = econn_read(&c->e, c->fd, w->rbuf, &data);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			conn_close(c);
		return;
	}
	if (n == 0) { /* the peer is done sending: answer what is complete, then close */
		c->e.closing = 1;
		buf_clear(&c->e.in);
		conn_flush(c);
		return;
	}
	if (econn_input(&w->ec, &c->e, c->state, data, (size_t)n, &c->out, ev_now_ns(w->loop)) < 0) {
		conn_close(c);
		return;
	}
	conn_flush(c);
}

static void conn_cb(struct ev_loop *l, int fd, int mask, void *ud)
{
	struct wconn *c = ud;
	(void)l;
	(void)fd;
	if (mask & EV_WRITE) {
		if (conn_flush(c) < 0)
			return;
	}
	if ((mask & EV_READ) && (c->mask & EV_READ) && !c->e.closing)
		conn_read(c);
}

void pworker_add(struct pworker *w, int fd, uint64_t conn_id)
{
	struct wconn *c = calloc(1, sizeof(*c) + w->ec.p->state_size);
	if (!c) {
		pworker_uncount(w);
		close(fd);
		return;
	}
	c->fd = fd;
	c->w = w;
	c->e.last_ns = ev_now_ns(w->loop);
	c->rd.lr = w->lr;
	econn_env_init(&c->env, w->ec.cfg, conn_id, &c->rd, logroom_env_join, logroom_env_publish);
	LIST_INSERT_HEAD(&w->conns, c, link);
	w->nconns++;
	net_set_nodelay(fd, 1); /* fails harmlessly on a socketpair end (gateway proxy) */
	if (w->ec.p->init(c->state, &c->env) < 0) {
		c->e.closing = 1;
		conn_flush(c);
		return;
	}
	if (ev_add(w->loop, fd, EV_READ, conn_cb, c) < 0) {
		conn_close(c);
		return;
	}
	c->mask = EV_READ;
	if (buf_used(&c->out))
		conn_flush(c);
}

struct ev_loop *pworker_loop(struct pworker *w)
{
	return w->loop;
}

int pworker_stopping(const struct pworker *w)
{
	return w->stopping;
}

static void wake_cb(struct ev_loop *l, int fd, int mask, void *ud)
{
	/* nothing: the loop drains the signalfd in logroom_arm and delivers right after */
	(void)l;
	(void)fd;
	(void)mask;
	(void)ud;
}

static int64_t grace_over(struct ev_loop *l, uint64_t id, void *ud)
{
	(void)id;
	(void)ud;
	ev_stop(l);
	return EV_NOMORE;
}

static void stop_cb(struct ev_loop *l, int fd, int mask, void *ud)
{
	struct pworker *w = ud;
	(void)mask;
	ev_del(l, fd, EV_READ);
	if (w->stopping)
		return;
	w->stopping = 1;
	w->pc->ops->stop(w, w->pc->ud);
	/* idle connections go now; those with output pending finish it */
	for (struct wconn *c = LIST_FIRST(&w->conns), *next; c; c = next) {
		next = LIST_NEXT(c, link);
		c->e.closing = 1;
		buf_clear(&c->e.in);
		conn_flush(c);
	}
	ev_timer_add(l, PWORKER_FINISH_NS, grace_over, w);
	maybe_finish(w);
}

static int64_t sweep(struct ev_loop *l, uint64_t id, void *ud)
{
	struct pworker *w = ud;
	uint64_t now = clock_now_ns();
	(void)l;
	(void)id;
	for (struct wconn *c = LIST_FIRST(&w->conns), *next; c; c = next) {
		next = LIST_NEXT(c, link);
		if (econn_expired(&w->ec, &c->e, 0, now)) /* send progress counts in last_ns */
			conn_close(c);
	}
	return (int64_t)w->ec.sweep_ns;
}

int pworker_run(const struct pworker_cfg *pc)
{
	struct pworker w;
	memset(&w, 0, sizeof(w));
	w.pc = pc;
	econn_cfg_init(&w.ec, pc->cfg);
	w.loop = ev_new(1024);
	w.rbuf = malloc(ENGINE_READ_BUF);
	if (!w.loop || !w.rbuf)
		return 1;
	if (pc->room_dir && logroom_open(&w.lr, pc->room_dir, pc->cfg->pcfg.max_rooms) < 0)
		w.lr = NULL; /* joins fail: chat answers with its error line */
	int stop_fd = engine_stop_fd();
	if (pc->ops->start(&w, pc->ud) < 0 ||
	    ev_add(w.loop, stop_fd, EV_READ, stop_cb, &w) < 0 ||
	    (w.lr && ev_add(w.loop, logroom_wake_fd(w.lr), EV_READ, wake_cb, &w) < 0))
		return 1;
	if (w.ec.sweep_ns)
		ev_timer_add(w.loop, w.ec.sweep_ns, sweep, &w);
	while (!ev_stopped(w.loop)) {
		/* deliver room records (other workers' and our own connections') before sleeping */
		while (w.lr && logroom_arm(w.lr))
			logroom_for_pending(w.lr, conn_pump, &w);
		if (ev_stopped(w.loop))
			break;
		int r = ev_poll(w.loop, -1);
		if (r < 0 && r != -EINTR) {
			error("%s worker %d: event loop failed: %s", pc->name, pc->idx, strerror(-r));
			break;
		}
	}
	while (!LIST_EMPTY(&w.conns))
		conn_close(LIST_FIRST(&w.conns));
	logroom_close(w.lr);
	pc->ops->fini(&w, pc->ud);
	ev_free(w.loop);
	free(w.rbuf);
	return 0;
}
