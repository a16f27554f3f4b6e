/* econn: the engines' shared connection policy (see econn.h). */
#include "engine/econn.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/log.h"

#define SWEEP_MIN_NS (10 * NS_PER_MS)
#define SWEEP_MAX_NS (1000 * NS_PER_MS) /* the 10 s default: a tick a second */

void econn_defaults(struct engine_cfg *cfg)
{
	int64_t conns = ECONN_DEFAULT_MAX_CONNS;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)INT32_MAX) {
		int64_t nofile = (int64_t)rl.rlim_cur, reserve = ECONN_RESERVED_FDS;
		if (reserve > nofile / 2)
			reserve = nofile / 2;
		if (nofile - reserve < conns)
			conns = nofile - reserve;
	}
	cfg->max_conns = conns > 0 ? (int)conns : 1;
	cfg->max_children = 0;
	cfg->idle_timeout_ns = ECONN_DEFAULT_IDLE_TIMEOUT_NS;
	cfg->header_timeout_ns = ECONN_DEFAULT_HEADER_TIMEOUT_NS;
}

void econn_cfg_init(struct econn_cfg *ec, const struct engine_cfg *cfg)
{
	const struct proto_cfg *pc = &cfg->pcfg;
	memset(ec, 0, sizeof(*ec));
	ec->cfg = cfg;
	ec->p = cfg->proto;
	ec->max_outbuf_bytes = pc->max_outbuf ? pc->max_outbuf : ECONN_DEFAULT_OUTBUF_BYTES;
	ec->in_max_bytes = cfg->proto->in_max_bytes(pc) + 2 * ENGINE_READ_BUF;
	uint64_t t = cfg->idle_timeout_ns;
	if (cfg->header_timeout_ns && (!t || cfg->header_timeout_ns < t))
		t = cfg->header_timeout_ns;
	if (t) {
		ec->sweep_ns = t / 8;
		if (ec->sweep_ns < SWEEP_MIN_NS)
			ec->sweep_ns = SWEEP_MIN_NS;
		if (ec->sweep_ns > SWEEP_MAX_NS)
			ec->sweep_ns = SWEEP_MAX_NS;
	}
}

void econn_env_init(struct proto_env *env, const struct engine_cfg *cfg, uint64_t conn_id,
		    void *ud, int (*join)(struct proto_env *, const char *, size_t),
		    int (*publish)(struct proto_env *, const char *, size_t))
{
	env->cfg = &cfg->pcfg;
	env->conn_id = conn_id;
	env->engine_ud = ud;
	env->join = join;
	env->publish = publish;
}

/* The feed loop: data[0..len) to the protocol until it needs more input; the bytes used. */
static size_t feed(const struct proto *p, struct econn *c, void *state, const char *data,
		   size_t len, struct buf *out)
{
	size_t done = 0;
	while (done < len) {
		int flags = 0;
		ssize_t n = p->feed(state, data + done, len - done, out, &flags);
		if (n > 0)
			done += (size_t)n;
		if (n == PROTO_ERROR || (flags & PROTO_F_CLOSE)) {
			c->closing = 1;
			break;
		}
		if (n <= 0)
			break;
	}
	return done;
}

ssize_t econn_read(struct econn *c, int fd, char *rbuf, const char **data)
{
	if (rbuf && !buf_used(&c->in)) {
		*data = rbuf;
		return read(fd, rbuf, ENGINE_READ_BUF);
	}
	*data = NULL;
	if (buf_reserve(&c->in, ENGINE_READ_BUF)) {
		errno = ENOMEM;
		return -1;
	}
	ssize_t n = read(fd, c->in.data + c->in.len, ENGINE_READ_BUF);
	if (n > 0)
		c->in.len += (size_t)n;
	return n;
}

int econn_input(const struct econn_cfg *ec, struct econn *c, void *state, const char *data,
		size_t len, struct buf *out, uint64_t now_ns)
{
	int err = 0;
	size_t done;
	c->last_ns = now_ns;
	if (!buf_used(&c->in) && data) {
		/* the common case: whole requests straight from the read buffer */
		done = feed(ec->p, c, state, data, len, out);
		if (done < len && !c->closing)
			err = buf_append(&c->in, data + done, len - done);
	} else {
		if (data && len)
			err = buf_append(&c->in, data, len);
		done = err ? 0 : feed(ec->p, c, state, buf_head(&c->in), buf_used(&c->in), out);
		buf_consume(&c->in, done);
	}
	if (c->closing)
		buf_clear(&c->in);
	if (!buf_used(&c->in))
		c->partial_since_ns = 0;
	else if (done || !c->partial_since_ns)
		c->partial_since_ns = now_ns;
	return err || buf_used(&c->in) > ec->in_max_bytes ? -1 : 0;
}

void econn_fini(const struct econn_cfg *ec, struct econn *c, void *state)
{
	if (ec->p->fini)
		ec->p->fini(state);
	buf_free(&c->in);
}

int econn_expired(const struct econn_cfg *ec, const struct econn *c, size_t out_pending_bytes,
		  uint64_t now_ns)
{
	const struct engine_cfg *cfg = ec->cfg;
	if (cfg->header_timeout_ns && c->partial_since_ns &&
	    now_ns - c->partial_since_ns >= cfg->header_timeout_ns)
		return 1;
	return cfg->idle_timeout_ns && now_ns - c->last_ns >= cfg->idle_timeout_ns &&
	       !out_pending_bytes;
}

static uint64_t min_deadline(uint64_t a, uint64_t b) { return !a ? b : !b ? a : a < b ? a : b; }

uint64_t econn_deadline_ns(const struct econn_cfg *ec, const struct econn *c)
{
	const struct engine_cfg *cfg = ec->cfg;
	uint64_t d = 0;
	if (cfg->idle_timeout_ns)
		d = c->last_ns + cfg->idle_timeout_ns;
	if (cfg->header_timeout_ns && c->partial_since_ns)
		d = min_deadline(d, c->partial_since_ns + cfg->header_timeout_ns);
	return d;
}

struct timespec *econn_timeout(uint64_t deadline_ns, uint64_t now_ns, struct timespec *ts)
{
	if (!deadline_ns)
		return NULL;
	uint64_t d = deadline_ns > now_ns ? deadline_ns - now_ns : 0;
	ts->tv_sec = (time_t)(d / NS_PER_S);
	ts->tv_nsec = (long)(d % NS_PER_S);
	return ts;
}

/* ---- accept policy -------------------------------------------------------------------- */

int econn_accept_error(int err)
{
	switch (err) {
	case -EMFILE:
	case -ENFILE:
	case -ENOBUFS:
	case -ENOMEM:
		return ECONN_ACCEPT_PAUSE;
	case -ECONNABORTED:
	case -EINTR:
	case -EPROTO:
		return ECONN_ACCEPT_NEXT;
	default:
		return ECONN_ACCEPT_DONE;
	}
}

int econn_full(const struct engine_cfg *cfg, int64_t live)
{
	return cfg->max_conns > 0 && live >= cfg->max_conns;
}

int econn_listen(const struct engine_cfg *cfg, int i, int n, int flags, struct net_addr *bound)
{
	const struct net_addr *addr = i == 0 ? &cfg->listen : bound;
	struct net_addr got;
	if (n > 1)
		flags |= NET_REUSEPORT;
	int fd = net_listen(addr, cfg->backlog > 0 ? cfg->backlog : ECONN_DEFAULT_BACKLOG, flags,
			    &got);
	if (fd < 0) {
		char a[128];
		engine_fail(cfg, "cannot listen on '%s': %s (pick another --listen address or port)",
			    net_format(addr, a, sizeof(a)), strerror(-fd));
		return fd;
	}
	if (i == 0)
		*bound = got;
	return fd;
}

static void acceptor_cb(struct ev_loop *l, int fd, int mask, void *ud);

static int64_t acceptor_resume(struct ev_loop *l, uint64_t id, void *ud)
{
	struct econn_acceptor *a = ud;
	(void)id;
	if (a->fd >= 0)
		ev_add(l, a->fd, EV_READ, acceptor_cb, a);
	return EV_NOMORE;
}

static void acceptor_pause(struct econn_acceptor *a)
{
	ev_del(a->loop, a->fd, EV_READ);
	ev_timer_add(a->loop, ECONN_ACCEPT_PAUSE_NS, acceptor_resume, a);
}

static void acceptor_cb(struct ev_loop *l, int fd, int mask, void *ud)
{
	struct econn_acceptor *a = ud;
	(void)l;
	(void)mask;
	for (int i = 0; i < ECONN_ACCEPT_BATCH && a->fd >= 0; i++) {
		int cfd = net_accept(fd, NET_NONBLOCK, NULL);
		if (cfd < 0) {
			int what = econn_accept_error(cfd);
			if (what == ECONN_ACCEPT_NEXT)
				continue;
			if (what == ECONN_ACCEPT_PAUSE)
				acceptor_pause(a);
			return;
		}
		if (a->take(a->ud, cfd) < 0) {
			if (a->fd >= 0)
				acceptor_pause(a);
			return;
		}
	}
}

int econn_acceptor_start(struct econn_acceptor *a, struct ev_loop *l, int lfd,
			 econn_take_fn *take, void *ud)
{
	a->loop = l;
	a->fd = lfd;
	a->take = take;
	a->ud = ud;
	int r = ev_add(l, lfd, EV_READ, acceptor_cb, a);
	if (r < 0)
		a->fd = -1;
	return r;
}

void econn_acceptor_close(struct econn_acceptor *a)
{
	if (a->fd < 0)
		return;
	ev_del(a->loop, a->fd, EV_READ);
	close(a->fd);
	a->fd = -1;
}

/* ---- workers: an engine run by N threads of one process ------------------------------ */

static int worker_count(const struct engine_cfg *cfg, int rooms_shared)
{
	int n = cfg->workers > 0 ? cfg->workers : 1;
	if (n > 1 && cfg->proto->fanout && !rooms_shared) {
		warn("engine '%s' runs '%s' on one worker (its rooms are not shared across loops); "
		     "ignoring --workers %d", cfg->engine_name, cfg->proto->name, n);
		n = 1;
	}
	return n;
}

/* Runs the n workers of `size` bytes at w: worker 0 here, 1..n-1 on threads; returns when
 * every one has returned, with *started set to how many ran. When thread i cannot be started
 * the stop is requested and workers i..n-1 are fini'd at once. Returns 0, or -errno when a
 * thread could not be started (reported). */
static int threads_run(const struct econn_srv *s, char *w, size_t size, void *(*run)(void *),
		       void (*fini)(void *), const struct net_addr *bound, int *started)
{
	int n = s->nworkers, err = 0;
	pthread_t *tids = n > 1 ? calloc((size_t)n, sizeof(*tids)) : NULL;
	*started = 1;
	if (n > 1 && !tids)
		err = -ENOMEM;
	for (int i = 1; i < n && !err; i++) {
		int r = pthread_create(&tids[i], NULL, run, w + (size_t)i * size);
		if (r)
			err = -r;
		else
			*started = i + 1;
	}
	if (err) {
		engine_fail(s->ec.cfg, "cannot start %s worker %d of %d: %s (use fewer --workers)",
			    s->ec.cfg->engine_name, *started, n, strerror(-err));
		engine_request_stop();
		for (int i = *started; i < n; i++)
			fini(w + (size_t)i * size);
	}
	engine_ready(s->ec.cfg, bound);
	run(w);
	for (int i = 1; i < *started; i++)
		pthread_join(tids[i], NULL);
	free(tids);
	return err;
}

int econn_srv_run(struct econn_srv *s, const struct engine_cfg *cfg, int rooms_shared,
		  size_t size, econn_worker_init_fn *init, void *(*run)(void *w),
		  void (*fini)(void *w))
{
	memset(s, 0, sizeof(*s));
	econn_cfg_init(&s->ec, cfg);
	s->nworkers = worker_count(cfg, rooms_shared);
	s->shared = s->nworkers > 1;
	atomic_init(&s->nconns, 0);
	atomic_init(&s->next_id, 1);
	s->rooms = room_set_new(s->shared, cfg->pcfg.max_rooms);
	char *ws = calloc((size_t)s->nworkers, size);
	if (!s->rooms || !ws) {
		room_set_free(s->rooms);
		free(ws);
		return engine_fail(cfg, "out of memory starting %d %s workers", s->nworkers,
				   cfg->engine_name),
		       1;
	}
	int rc = 1, inited = 0, live;
	struct net_addr bound;
	for (; inited < s->nworkers; inited++)
		if (init(s, ws + (size_t)inited * size, inited, &bound) < 0)
			break;
	if (inited == s->nworkers)
		rc = threads_run(s, ws, size, run, fini, &bound, &live) < 0;
	else
		live = inited + 1; /* the failed one too */
	for (int i = 0; i < live; i++)
		fini(ws + (size_t)i * size);
	free(ws);
	room_set_free(s->rooms);
	return rc;
}

/* ---- event-loop workers (core/ev) ------------------------------------------------------ */

int econn_loop_init(struct econn_loop *el, const struct econn_cfg *ec, int i, int n,
		    struct net_addr *bound, econn_take_fn *take, ev_fd_fn *stop,
		    ev_timer_fn *sweep, void *ud)
{
	const char *name = ec->cfg->engine_name;
	el->acc.fd = -1;
	el->loop = ev_new(1024);
	el->rbuf = malloc(ENGINE_READ_BUF);
	if (!el->loop || !el->rbuf)
		return engine_fail(ec->cfg, "out of memory starting %s worker %d", name, i);
	int fd = econn_listen(ec->cfg, i, n, NET_NONBLOCK, bound);
	if (fd < 0)
		return -1;
	int r = econn_acceptor_start(&el->acc, el->loop, fd, take, ud);
	if (r < 0)
		close(fd);
	else
		r = ev_add(el->loop, engine_stop_fd(), EV_READ, stop, ud);
	if (r < 0)
		return engine_fail(ec->cfg, "cannot start %s worker %d: %s", name, i, strerror(-r));
	if (ec->sweep_ns)
		ev_timer_add(el->loop, ec->sweep_ns, sweep, ud);
	return 0;
}

void econn_loop_run(struct econn_loop *el)
{
	while (!ev_stopped(el->loop)) {
		int r = ev_poll(el->loop, -1);
		if (r < 0 && r != -EINTR) {
			error("event loop failed: %s", strerror(-r));
			break;
		}
	}
}

void econn_loop_fini(struct econn_loop *el)
{
	econn_acceptor_close(&el->acc);
	if (el->loop)
		ev_free(el->loop);
	free(el->rbuf);
}
