/* gateway: a front process that accepts client connections and hands each one, round-robin,
 * to one of N worker processes (--workers N, default 2) that run the protocol — the FaaS
 * gateway of the seeds, in its two designs (--handoff). --balance least-conn picks the worker
 * with the fewest open connections instead (the shared per-worker counts):
 *
 *   fdpass (default): the front passes the accepted client socket to the worker with
 *     SCM_RIGHTS over the worker's control socketpair (AF_UNIX, SOCK_SEQPACKET) and closes its
 *     own copy. The worker serves the client directly; the front never touches a byte of it.
 *   proxy: the front keeps the client socket. For every client it makes a socketpair
 *     (AF_UNIX, SOCK_STREAM), hands one end to the worker the same way and relays bytes both
 *     ways between the client and the other end in its own event loop: per readiness one read
 *     of up to ENGINE_READ_BUF into the front's buffer and one write of it; what the other side
 *     does not take waits in the relay (and reading that side pauses until it drained). A
 *     client's EOF becomes shutdown(SHUT_WR) towards the worker; the worker closing its end
 *     closes the client once the bytes before it were written.
 * The worker code is the same in both modes: it receives descriptors on its control socket
 * and serves each as a connection (a TCP socket, or a socketpair end). Each control message
 * carries the connection id the front assigned (unique across workers) and one descriptor.
 *
 * Worker: the prefork engine's worker loop (pworker.h), an event loop (core/ev) over
 * nonblocking connections with the epoll engine's per-connection logic: one read of up to
 * ENGINE_READ_BUF, feed the protocol all complete input, one write of the output; the rest
 * waits for EV_WRITE and reading pauses while more than ECONN_OUT_HIGH_BYTES wait. Idle and
 * header timeouts: a sweep timer per worker. A descriptor the worker cannot receive (out of
 * descriptors: MSG_CTRUNC) is dropped by the kernel, which closes it; the connection counts
 * are corrected.
 *
 * Chat: the workers share nothing, so rooms are the fork/prefork engines' log rooms
 * (logroom.h), in both modes: a worker is one process in a room however many of its
 * connections are members, and after every loop iteration it arms its rooms and delivers.
 * The output bound is the fork engine's (logroom_read_upto): a member whose socket is full and
 * that is more than --max-outbuf behind the log end gets the overflow line and is closed. The
 * room directory's janitor removes it even when the front is SIGKILLed.
 *
 * Front: an event loop over the listener (the only process that has it), the stop eventfd,
 * a signalfd for SIGCHLD and, with proxy, every relay. --max-conns is server-wide: a small
 * MAP_SHARED block holds the live count (the front adds a connection when it hands it over,
 * the worker takes it off when it closes it; a dead worker's connections are taken off by the
 * front). If a worker's control socket is full (the worker is stuck) the next worker is
 * tried; when none takes it the connection is closed. EMFILE/ENFILE on accept (or socketpair
 * with proxy) pause accepting for 100 ms.
 *
 * Supervision (psup.h, shared with the prefork engine): workers are forked by the front with
 * PR_SET_PDEATHSIG(SIGKILL) and keep only stdio, their control socket and their stop eventfd
 * (everything else the front had open is closed in the child: a worker must not hold other
 * clients' sockets). The front reaps them (SIGCHLD through a signalfd) and restarts a worker
 * that dies (after 1 s when it lived less than 1 s). Stop: the front closes the listener and
 * sends SIGTERM to the workers — each stops taking connections, closes idle ones and flushes
 * the others for at most 1 s — keeps relaying (proxy) until they are gone, and SIGKILLs what
 * is left after 1.5 s.
 */
#include "engine/engine.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/ev.h"
#include "core/log.h"
#include "engine/econn.h"
#include "engine/psup.h"
#include "engine/pworker.h"

#define CTL_BATCH 64
#define DEFAULT_WORKERS 2

/* one control message: the connection id, with one descriptor attached */
struct ctl_msg {
	uint64_t conn_id;
};

/* ---- worker: pworker.h's loop over the descriptors handed over on its control socket -- */

struct gwsrc {
	int ctl;
	struct pworker *w;
};

/* Receives one handed-over descriptor: 1 with *fd (or -1 when the kernel dropped it) and
 * *id, 0 when the front closed the channel, -errno (-EAGAIN: nothing there). */
static int ctl_recv(int ctl, int *fd, uint64_t *id)
{
	struct ctl_msg m;
	struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} cb;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.b,
			    .msg_controllen = sizeof(cb.b)};
	ssize_t n = recvmsg(ctl, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	if (n == 0)
		return 0;
	*fd = -1;
	*id = n == (ssize_t)sizeof(m) ? m.conn_id : 0;
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&mh); h; h = CMSG_NXTHDR(&mh, h)) {
		if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS &&
		    h->cmsg_len >= CMSG_LEN(sizeof(int)))
			memcpy(fd, CMSG_DATA(h), sizeof(int));
	}
	return 1;
}

/* each descriptor is counted in sh->live and per_worker[idx] already (by the front) */
static void ctl_cb(struct ev_loop *l, int fd, int mask, void *ud)
{
	struct gwsrc *g = ud;
	(void)mask;
	for (int i = 0; i < CTL_BATCH && !pworker_stopping(g->w); i++) {
		int cfd = -1;
		uint64_t id = 0;
		int r = ctl_recv(fd, &cfd, &id);
		if (r == -EAGAIN || r == -EINTR)
			return;
		if (r <= 0) { /* the front is gone (it is our parent: we die with it) */
			ev_del(l, fd, EV_READ);
			return;
		}
		if (cfd < 0) { /* out of descriptors here: the kernel closed it */
			pworker_uncount(g->w);
			continue;
		}
		net_set_nonblock(cfd, 1);
		pworker_add(g->w, cfd, id);
	}
}

static int src_start(struct pworker *w, void *ud)
{
	struct gwsrc *g = ud;
	g->w = w;
	return ev_add(pworker_loop(w), g->ctl, EV_READ, ctl_cb, g);
}

static void src_stop(struct pworker *w, void *ud)
{
	struct gwsrc *g = ud;
	ev_del(pworker_loop(w), g->ctl, EV_READ);
}

static void src_fini(struct pworker *w, void *ud)
{
	struct gwsrc *g = ud;
	(void)w;
	close(g->ctl);
}

static const struct pworker_ops src_ops = {
	.start = src_start,
	.stop = src_stop,
	.fini = src_fini,
};

static int worker_main(const struct engine_cfg *cfg, int ctl, struct psup_shared *sh, int idx,
		       const char *room_dir)
{
	struct gwsrc g = {.ctl = ctl};
	struct pworker_cfg pc = {
		.cfg = cfg,
		.name = "gateway",
		.idx = idx,
		.room_dir = room_dir,
		.live = &sh->live,
		.mine = &sh->per_worker[idx],
		.ops = &src_ops,
		.ud = &g,
	};
	return pworker_run(&pc);
}

/* ---- the front ------------------------------------------------------------------------ */

struct gsrv;

/* the front's side of worker idx, beside its psup slot */
struct slot {
	struct gsrv *s;
	int idx;
	int ctl;                /* the front's end of the control socketpair, -1 = none */
	uint64_t restart_timer; /* pending restart, 0 = none */
};

struct relay;

struct rend {
	struct relay *r;
	int side;
};

/* proxy: side 0 = the client socket, side 1 = the socketpair end towards the worker.
 * pend[d] holds bytes read from fd[d] that fd[1-d] has not taken yet. */
struct relay {
	struct gsrv *s;
	int fd[2];
	int mask[2];
	int eof[2];
	int shut;               /* shutdown(fd[1], SHUT_WR) done after the client's EOF */
	struct buf pend[2];
	struct rend end[2];
	LIST_ENTRY(relay) link;  /* the front's relays */
};

struct gsrv {
	const struct engine_cfg *cfg;
	int proxy;
	int least;                 /* --balance least-conn */
	int lfd, n;
	struct psup ps;            /* the workers */
	struct ev_loop *loop;
	struct econn_acceptor acc; /* owns lfd once the loop runs */
	struct slot *slots;
	unsigned rr;
	char *rbuf;
	LIST_HEAD(, relay) relays;
	size_t nrelays;
	int stopping;
};

static void close_from(unsigned lo, unsigned hi)
{
	if (lo > hi)
		return;
	if (close_range(lo, hi, 0) < 0) {
		for (unsigned fd = lo; fd <= hi && fd < 65536; fd++)
			close((int)fd);
	}
}

/* In the child: keeps stdio, a and b; closes every other descriptor the front had. */
static void close_all_but(int a, int b)
{
	unsigned lo = (unsigned)(a < b ? a : b), hi = (unsigned)(a < b ? b : a);
	if (lo > 3)
		close_from(3, lo - 1);
	if (hi > lo + 1)
		close_from(lo + 1, hi - 1);
	close_from(hi + 1, ~0U);
}

/* psup's spawn: worker i with its control socketpair */
static int spawn_worker(struct psup *ps, int i)
{
	struct gsrv *s = ps->ud;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	net_set_nonblock(sv[0], 1);
	pid_t pid = psup_fork(ps, i);
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return (int)pid;
	}
	if (pid == 0) {
		close_all_but(sv[1], engine_stop_fd());
		_exit(worker_main(ps->cfg, sv[1], ps->sh, i, ps->rooms));
	}
	close(sv[1]);
	s->slots[i].ctl = sv[0];
	return 0;
}

/* ---- proxy relays ---- */

static void relay_cb(struct ev_loop *l, int fd, int mask, void *ud);

static void relay_close(struct relay *r)
{
	struct gsrv *s = r->s;
	for (int d = 0; d < 2; d++) {
		if (r->mask[d])
			ev_del(s->loop, r->fd[d], r->mask[d]);
		close(r->fd[d]);
		buf_free(&r->pend[d]);
	}
	LIST_REMOVE(r, link);
	s->nrelays--;
	free(r);
	if (s->stopping && !s->nrelays && !psup_running(&s->ps))
		ev_stop(s->loop);
}

/* Interest per side from the state; closes the relay when it is done. 0, or -1 if closed. */
static int relay_update(struct relay *r)
{
	/* the worker closed its end and everything it sent reached the client */
	if (r->eof[1] && !buf_used(&r->pend[1])) {
		relay_close(r);
		return -1;
	}
	if (r->eof[0] && !buf_used(&r->pend[0]) && !r->shut) {
		shutdown(r->fd[1], SHUT_WR);
		r->shut = 1;
	}
	for (int d = 0; d < 2; d++) {
		int m = 0;
		if (!r->eof[d] && !buf_used(&r->pend[d]))
			m |= EV_READ;
		if (buf_used(&r->pend[1 - d]))
			m |= EV_WRITE;
		econn_set_mask(r->s->loop, r->fd[d], &r->mask[d], m, relay_cb, &r->end[d]);
	}
	return 0;
}

/* A write towards fd[1-from] failed. Towards the client: the relay is over (-1). Towards the
 * worker, which closed its end: the client's further bytes are dropped, and what the worker
 * sent before closing still goes to the client (0). */
static int relay_write_failed(struct relay *r, int from)
{
	if (from == 1)
		return -1;
	buf_clear(&r->pend[0]);
	r->eof[0] = 1;
	r->shut = 1;
	return 0;
}

/* Writes pend[from] to fd[1-from]; 0, or -1 when the relay is over. */
static int relay_push(struct relay *r, int from)
{
	struct buf *b = &r->pend[from];
	if (!buf_used(b))
		return 0;
	ssize_t n = send(r->fd[1 - from], buf_head(b), buf_used(b), MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n > 0)
		buf_consume(b, (size_t)n);
	else if (n < 0 && errno != EAGAIN && errno != EINTR)
		return relay_write_failed(r, from);
	return 0;
}

/* One read from fd[d] and one write of it to the other side; 0, or < 0 when the relay is
 * over (a reset, a client that went away). */
static int relay_pull(struct relay *r, int d)
{
	char *rb = r->s->rbuf;
	ssize_t n = read(r->fd[d], rb, ENGINE_READ_BUF);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (n == 0) {
		r->eof[d] = 1;
		return 0;
	}
	ssize_t w = send(r->fd[1 - d], rb, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (w < 0) {
		if (errno != EAGAIN && errno != EINTR)
			return relay_write_failed(r, d);
		w = 0;
	}
	if (w < n && buf_append(&r->pend[d], rb + w, (size_t)(n - w)))
		return -ENOMEM;
	return 0;
}

static void relay_cb(struct ev_loop *l, int fd, int mask, void *ud)
{
	struct rend *e = ud;
	struct relay *r = e->r;
	int side = e->side;
	(void)l;
	(void)fd;
	if ((mask & EV_WRITE) && relay_push(r, 1 - side) < 0) {
		relay_close(r);
		return;
	}
	if ((mask & EV_READ) && (r->mask[side] & EV_READ) && relay_pull(r, side) < 0) {
		/* a reset client or worker: drop the other side too */
		relay_close(r);
		return;
	}
	relay_update(r);
}

static int relay_new(struct gsrv *s, int cfd, int wfd)
{
	struct relay *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->s = s;
	r->fd[0] = cfd;
	r->fd[1] = wfd;
	for (int d = 0; d < 2; d++) {
		r->end[d].r = r;
		r->end[d].side = d;
	}
	LIST_INSERT_HEAD(&s->relays, r, link);
	s->nrelays++;
	relay_update(r);
	return 0;
}

/* ---- handoff ---- */

static int send_fd(int ctl, int fd, uint64_t id)
{
	struct ctl_msg m = {.conn_id = id};
	struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} cb;
	memset(&cb, 0, sizeof(cb));
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.b,
			    .msg_controllen = sizeof(cb.b)};
	struct cmsghdr *h = CMSG_FIRSTHDR(&mh);
	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(h), &fd, sizeof(int));
	for (;;) {
		ssize_t n = sendmsg(ctl, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n >= 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

/* The worker to try first: round-robin, or (least-conn) the live one with the fewest open
 * connections (per_worker counts: the front adds a handed-over connection, the worker takes a
 * closed one off), ties broken in round-robin order. */
static unsigned pick_first(struct gsrv *s)
{
	unsigned start = s->rr;
	if (!s->least)
		return start;
	struct psup_shared *sh = s->ps.sh;
	unsigned best = start;
	long bestn = -1;
	for (int k = 0; k < s->n; k++) {
		unsigned j = (start + (unsigned)k) % (unsigned)s->n;
		if (s->ps.slots[j].pid <= 0 || s->slots[j].ctl < 0)
			continue;
		long c = (long)atomic_load(&sh->per_worker[j]);
		if (bestn < 0 || c < bestn) {
			bestn = c;
			best = start + (unsigned)k;
		}
	}
	return best;
}

/* Hands cfd to the next worker that takes it; the front keeps no copy with fdpass. Returns
 * 0, -EMFILE/-ENFILE (proxy: no socketpair; cfd closed), or -EAGAIN (no worker took it;
 * closed). */
static int handoff(struct gsrv *s, int cfd)
{
	s->rr = pick_first(s);
	for (int tries = 0; tries < s->n; tries++) {
		struct slot *sl = &s->slots[s->rr++ % (unsigned)s->n];
		if (s->ps.slots[sl->idx].pid <= 0 || sl->ctl < 0)
			continue;
		int pass = cfd, pair[2] = {-1, -1};
		if (s->proxy) {
			if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) < 0) {
				int e = errno;
				close(cfd);
				return -e;
			}
			pass = pair[1];
		}
		struct psup_shared *sh = s->ps.sh;
		uint64_t id = atomic_fetch_add(&sh->next_id, 1);
		atomic_fetch_add(&sh->live, 1);
		atomic_fetch_add(&sh->per_worker[sl->idx], 1);
		int r = send_fd(sl->ctl, pass, id);
		if (r == 0) {
			if (!s->proxy) {
				close(cfd);
				return 0;
			}
			close(pair[1]);
			if (relay_new(s, cfd, pair[0]) < 0) {
				close(pair[0]); /* the worker sees EOF and takes it off the count */
				close(cfd);
			}
			return 0;
		}
		atomic_fetch_sub(&sh->live, 1);
		atomic_fetch_sub(&sh->per_worker[sl->idx], 1);
		if (pair[0] >= 0) {
			close(pair[0]);
			close(pair[1]);
		}
		/* EAGAIN: this worker's queue is full; EPIPE/ECONNREFUSED: it just died */
	}
	close(cfd);
	return -EAGAIN;
}

/* econn_acceptor's take: hand cfd over, unless --max-conns are open server-wide; < 0 when
 * the front is out of descriptors itself (proxy: no socketpair), which pauses accepting */
static int take(void *ud, int cfd)
{
	struct gsrv *s = ud;
	if (econn_full(s->cfg, atomic_load(&s->ps.sh->live))) {
		close(cfd);
		return 0;
	}
	int r = handoff(s, cfd);
	return r == -EMFILE || r == -ENFILE ? r : 0;
}

/* ---- supervision ---- */

/* Reaps one exited child (psup_reap); a worker's control socket goes with it. */
static int reap_one(struct gsrv *s, int block, int *status)
{
	int i = psup_reap(&s->ps, block, status);
	if (i >= 0 && s->slots[i].ctl >= 0) {
		close(s->slots[i].ctl);
		s->slots[i].ctl = -1;
	}
	return i;
}

static int64_t restart_cb(struct ev_loop *l, uint64_t id, void *ud)
{
	struct slot *sl = ud;
	struct gsrv *s = sl->s;
	(void)id;
	sl->restart_timer = 0;
	if (s->stopping || s->ps.slots[sl->idx].pid > 0)
		return EV_NOMORE;
	if (psup_restart(&s->ps, sl->idx) < 0)
		sl->restart_timer = ev_timer_add(l, PSUP_RESTART_DELAY_NS, restart_cb, sl);
	return EV_NOMORE;
}

static void chld_cb(struct ev_loop *l, int fd, int mask, void *ud)
{
	struct gsrv *s = ud;
	(void)mask;
	psup_drain(fd);
	int st, i;
	while ((i = reap_one(s, 0, &st)) != -2)
		if (i >= 0 && !s->stopping)
			s->slots[i].restart_timer = ev_timer_add(l, psup_died(&s->ps, i, st),
								 restart_cb, &s->slots[i]);
	if (s->stopping && !psup_running(&s->ps) && !s->nrelays)
		ev_stop(l);
}

static int64_t term_over(struct ev_loop *l, uint64_t id, void *ud)
{
	(void)id;
	(void)ud;
	ev_stop(l); /* the rest is killed after the loop */
	return EV_NOMORE;
}

static void front_stop_cb(struct ev_loop *l, int fd, int mask, void *ud)
{
	struct gsrv *s = ud;
	(void)mask;
	ev_del(l, fd, EV_READ);
	if (s->stopping)
		return;
	s->stopping = 1;
	econn_acceptor_close(&s->acc);
	for (int i = 0; i < s->n; i++) {
		struct slot *sl = &s->slots[i];
		if (sl->restart_timer) {
			ev_timer_del(l, sl->restart_timer);
			sl->restart_timer = 0;
		}
	}
	psup_signal(&s->ps, SIGTERM);
	/* proxy: the relays keep running until the workers close their ends */
	ev_timer_add(l, PSUP_TERM_WAIT_NS, term_over, s);
	if (!psup_running(&s->ps) && !s->nrelays)
		ev_stop(l);
}

static int gateway_run(const struct engine_cfg *cfg)
{
	const char *mode = cfg->handoff ? cfg->handoff : "fdpass";
	if (strcmp(mode, "fdpass") && strcmp(mode, "proxy")) {
		engine_fail(cfg, "unknown handoff '%s' for --handoff (use proxy or fdpass)", mode);
		return 2;
	}
	struct gsrv s;
	memset(&s, 0, sizeof(s));
	s.cfg = cfg;
	s.proxy = !strcmp(mode, "proxy");
	const char *bal = cfg->balance ? cfg->balance : "rr";
	if (strcmp(bal, "rr") && strcmp(bal, "least-conn")) {
		engine_fail(cfg, "unknown balance '%s' for --balance (use rr or least-conn)", bal);
		return 2;
	}
	s.least = !strcmp(bal, "least-conn");
	s.n = cfg->workers > 0 ? cfg->workers : DEFAULT_WORKERS;
	signal(SIGPIPE, SIG_IGN);
	int rc = 1;

	struct net_addr bound;
	s.acc.fd = -1;
	s.lfd = econn_listen(cfg, 0, 1, NET_NONBLOCK, &bound);
	if (s.lfd < 0)
		return 1;
	s.slots = calloc((size_t)s.n, sizeof(*s.slots));
	s.rbuf = malloc(ENGINE_READ_BUF);
	s.loop = ev_new(1024);
	if (!s.slots || !s.rbuf || !s.loop) {
		engine_fail(cfg, "out of memory starting %d gateway workers", s.n);
		free(s.slots);
		free(s.rbuf);
		if (s.loop)
			ev_free(s.loop);
		close(s.lfd);
		return 1;
	}
	for (int i = 0; i < s.n; i++) {
		s.slots[i].s = &s;
		s.slots[i].idx = i;
		s.slots[i].ctl = -1;
	}
	if (psup_init(&s.ps, cfg, s.n, spawn_worker, &s) < 0 || psup_start(&s.ps) < 0)
		goto out;
	if (econn_acceptor_start(&s.acc, s.loop, s.lfd, take, &s) == 0)
		s.lfd = -1; /* the acceptor's now */
	if (s.acc.fd < 0 ||
	    ev_add(s.loop, engine_stop_fd(), EV_READ, front_stop_cb, &s) < 0 ||
	    ev_add(s.loop, s.ps.sfd, EV_READ, chld_cb, &s) < 0) {
		engine_fail(cfg, "cannot set up the gateway's event loop: %s", strerror(errno));
		psup_kill(&s.ps);
		goto out;
	}
	engine_ready(cfg, &bound);
	rc = 0;
	while (!ev_stopped(s.loop)) {
		int r = ev_poll(s.loop, -1);
		if (r < 0 && r != -EINTR) {
			error("gateway front: event loop failed: %s", strerror(-r));
			break;
		}
	}
	while (!LIST_EMPTY(&s.relays))
		relay_close(LIST_FIRST(&s.relays));
	psup_kill(&s.ps);
out:
	for (int i = 0; i < s.n; i++)
		if (s.slots[i].ctl >= 0)
			close(s.slots[i].ctl);
	psup_fini(&s.ps);
	if (s.lfd >= 0)
		close(s.lfd);
	econn_acceptor_close(&s.acc);
	free(s.slots);
	free(s.rbuf);
	ev_free(s.loop);
	return rc;
}

const struct engine engine_gateway = {
	.name = "gateway",
	.summary = "front process handing connections to N worker processes; --handoff proxy|fdpass, "
		   "--balance rr|least-conn",
	.run = gateway_run,
};
