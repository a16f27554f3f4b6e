/* fork: a process per connection, like papayachat.
 *
 * The parent listens, accepts and forks one child per connection; it assigns the connection
 * id before the fork, so ids are unique across processes. The child runs a read -> feed ->
 * write loop on its blocking socket and exits when the connection ends. Its only wait is a
 * ppoll(2) on the socket, its stop eventfd and (chat) its room wake-up fd, with the nearest
 * idle/header/stop deadline as the timeout; a read follows POLLIN, so it never blocks. Writes
 * are MSG_DONTWAIT: what the socket does not take waits for POLLOUT, and reading pauses while
 * more than ECONN_OUT_HIGH_BYTES wait (as in epoll), so a client that does not read cannot
 * make a child buffer without bound.
 *
 * Chat: papayachat's design (logroom.h): one append-only log per room in a private directory
 * the parent creates; a child appends its lines under flock and wakes the room's sleeping
 * processes with SIGUSR1 (a signalfd each); each child sends, from its own offset, every
 * record it did not write. Records move from the log into the connection's output (at most
 * --max-outbuf bytes); when the socket is full and the child is more than --max-outbuf
 * behind the log end (unread log plus queued output), it appends the protocol's overflow
 * line and closes. A child that was merely not scheduled while others published finds its
 * socket empty and catches up from the log instead of being dropped. The
 * parent's room directory has a janitor process that removes it even when the parent is
 * SIGKILLed.
 *
 * Lifetime (psup.h, the parent side shared with prefork and gateway): every child sets
 * PR_SET_PDEATHSIG(SIGKILL) and checks getppid() right after, so no child outlives the
 * parent, even one killed with SIGKILL. The parent reaps on SIGCHLD (a signalfd; waitid
 * WNOWAIT first, so a child that died inside a room has its room slots scrubbed before its
 * pid can be reused). --max-children (default: --max-conns) bounds the live children: at the
 * cap the parent stops polling the listener, so further connections wait in the backlog
 * (and the kernel's SYN handling) until a child is reaped, instead of being forked for; with
 * a --max-children above --max-conns, connections beyond --max-conns are accepted and closed.
 * EMFILE/ENFILE on accept, or a failing fork, pause accepting for 100 ms instead of
 * spinning.
 *
 * Stop: the parent stops accepting, sends SIGTERM to every child (a child stops reading,
 * flushes its output and exits), waits PSUP_TERM_WAIT_NS, then SIGKILLs and reaps the rest —
 * all within ENGINE_STOP_GRACE_NS. While it runs, the engine owns the process's children:
 * it reaps any child that exits.
 */
#include "engine/engine.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "engine/econn.h"
#include "engine/logroom.h"
#include "engine/psup.h"

#define CHILD_FINISH_NS (ENGINE_STOP_GRACE_NS / 2) /* a child's own flush budget */

/* ---- the child: one connection ------------------------------------------------------- */

struct fconn {
	struct econn_cfg ec;
	int fd;
	struct econn e;    /* input, timeouts, closing (exit once out is flushed) */
	struct buf out;
	struct logroom *lr;
	struct logroom_reader rd;
	struct proto_env env;
	void *state;
	int overflowed;
	uint64_t finish_by_ns;
};

static void conn_overflow(struct fconn *c)
{
	if (c->ec.p->overflow)
		c->ec.p->overflow(c->state, &c->out);
	c->overflowed = c->e.closing = 1;
	buf_clear(&c->e.in);
	logroom_leave(&c->rd);
}

/* Chat: room records move into out, up to the bound. */
static void conn_pump(struct fconn *c)
{
	if (!c->rd.room || c->overflowed)
		return;
	ssize_t r = logroom_read_upto(&c->rd, &c->out, c->ec.max_outbuf_bytes);
	if (r == -EOVERFLOW) {
		conn_overflow(c);
	} else if (r < 0) {
		c->e.closing = 1;
		logroom_leave(&c->rd);
	}
}

/* After a flush: output still queued means the socket is full; a member that is then more
 * than the bound behind the log end is a slow reader. */
static void conn_check_lag(struct fconn *c)
{
	if (c->rd.room && !c->overflowed && buf_used(&c->out) &&
	    logroom_lag_bytes(&c->rd) + buf_used(&c->out) > c->ec.max_outbuf_bytes)
		conn_overflow(c);
}

/* 0, or -1 when the connection is broken. */
static int conn_flush(struct fconn *c, uint64_t now)
{
	while (buf_used(&c->out)) {
		ssize_t n = send(c->fd, buf_head(&c->out), buf_used(&c->out),
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			buf_consume(&c->out, (size_t)n);
			c->e.last_ns = now;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		return -1;
	}
	return 0;
}

/* 0 = keep going, -1 = the connection is over. */
static int conn_read(struct fconn *c, uint64_t now)
{
	const char *data;
	ssize_t n = econn_read(&c->e, c->fd, NULL, &data);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -1;
	if (n == 0) { /* the peer is done sending: answer what is complete, then close */
		c->e.closing = 1;
		buf_clear(&c->e.in);
		return 0;
	}
	return econn_input(&c->ec, &c->e, c->state, data, (size_t)n, &c->out, now);
}

static void conn_loop(struct fconn *c, int stop_fd)
{
	for (;;) {
		uint64_t now = clock_now_ns();
		conn_pump(c);
		if (conn_flush(c, now) < 0)
			return;
		conn_check_lag(c);
		if (c->e.closing && !buf_used(&c->out))
			return;
		if (econn_expired(&c->ec, &c->e, 0, now))
			return;
		if (c->finish_by_ns && now >= c->finish_by_ns)
			return;
		/* records arrived: read them before sleeping (out has room: the pump stopped
		 * only at the bound, and then the socket is full and the lag check decided) */
		if (c->rd.room && logroom_arm(c->lr) && buf_used(&c->out) < c->ec.max_outbuf_bytes)
			continue;

		uint64_t deadline = econn_deadline_ns(&c->ec, &c->e);
		if (c->finish_by_ns && (!deadline || c->finish_by_ns < deadline))
			deadline = c->finish_by_ns;
		struct timespec ts;
		int want_read = !c->e.closing && buf_used(&c->out) < ECONN_OUT_HIGH_BYTES;
		struct pollfd pfd[3] = {
			{.fd = c->fd,
			 .events = (short)((want_read ? POLLIN : 0) | (buf_used(&c->out) ? POLLOUT : 0))},
			{.fd = c->finish_by_ns ? -1 : stop_fd, .events = POLLIN},
			{.fd = c->rd.room ? logroom_wake_fd(c->lr) : -1, .events = POLLIN},
		};
		int n = ppoll(pfd, 3, econn_timeout(deadline, now, &ts), NULL);
		if (n < 0 && errno != EINTR)
			return;
		if (n <= 0)
			continue;
		now = clock_now_ns();
		if (pfd[1].revents) {
			/* stop: no new input; what is queued is flushed, for a bounded time */
			c->e.closing = 1;
			buf_clear(&c->e.in);
			c->e.partial_since_ns = 0;
			c->finish_by_ns = now + CHILD_FINISH_NS;
		}
		if (want_read && !c->e.closing && (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)))
			if (conn_read(c, now) < 0)
				return;
		if (!want_read && !buf_used(&c->out) && (pfd[0].revents & (POLLHUP | POLLERR)))
			return;
	}
}

static int child_serve(const struct engine_cfg *cfg, int fd, uint64_t conn_id,
		       const char *room_dir)
{
	struct fconn c = {0};
	econn_cfg_init(&c.ec, cfg);
	c.fd = fd;
	c.e.last_ns = clock_now_ns();
	c.state = calloc(1, c.ec.p->state_size ? c.ec.p->state_size : 1);
	if (!c.state)
		return 1;
	if (room_dir && logroom_open(&c.lr, room_dir, cfg->pcfg.max_rooms) < 0)
		c.lr = NULL; /* join fails: chat answers with its error line */
	c.rd.lr = c.lr;
	econn_env_init(&c.env, cfg, conn_id, &c.rd, logroom_env_join, logroom_env_publish);
	net_set_nodelay(fd, 1);
	int stop_fd = engine_stop_fd();
	if (c.ec.p->init(c.state, &c.env) == 0)
		conn_loop(&c, stop_fd);
	else
		conn_flush(&c, c.e.last_ns);
	logroom_leave(&c.rd);
	logroom_close(c.lr);
	if (c.ec.p->fini)
		c.ec.p->fini(c.state);
	close(fd);
	buf_free(&c.e.in);
	buf_free(&c.out);
	free(c.state);
	return 0;
}

/* ---- the parent ---------------------------------------------------------------------- */

struct kids {
	pid_t *pids;
	size_t n, cap;
};

static int kids_add(struct kids *k, pid_t pid)
{
	if (k->n == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 64;
		pid_t *p = realloc(k->pids, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		k->pids = p;
		k->cap = cap;
	}
	k->pids[k->n++] = pid;
	return 0;
}

static void kids_del(struct kids *k, pid_t pid)
{
	for (size_t i = k->n; i-- > 0;) {
		if (k->pids[i] == pid) {
			k->pids[i] = k->pids[--k->n];
			return;
		}
	}
}

/* Reaps one exited child (blocking when `block`; psup_reap_pid): 1, or 0 when none. */
static int reap_one(struct kids *k, const char *room_dir, int block)
{
	int st;
	pid_t pid = psup_reap_pid(room_dir, block, &st);
	if (pid <= 0)
		return 0;
	kids_del(k, pid);
	return 1;
}

struct fsrv {
	const struct engine_cfg *cfg;
	int lfd, sfd;
	sigset_t old_mask;
	struct logroom_dir room_dir;
	const char *rooms; /* room_dir.path, or NULL when the protocol has no rooms */
	struct kids kids;
	size_t max_kids; /* --max-children, else --max-conns; 0 = no cap */
	uint64_t next_id;
	uint64_t paused_until_ns;
};

static _Noreturn void child_start(struct fsrv *s, pid_t parent, int cfd, uint64_t id)
{
	psup_child(parent, s->rooms ? &s->room_dir : NULL, &s->old_mask);
	close(s->lfd);
	close(s->sfd);
	_exit(child_serve(s->cfg, cfd, id, s->rooms));
}

static void accept_batch(struct fsrv *s, pid_t self)
{
	const struct engine_cfg *cfg = s->cfg;
	for (int i = 0; i < ECONN_ACCEPT_BATCH; i++) {
		if (s->max_kids && s->kids.n >= s->max_kids)
			return; /* at the cap: the rest waits in the backlog */
		int cfd = net_accept(s->lfd, 0, NULL);
		if (cfd < 0) {
			int what = econn_accept_error(cfd);
			if (what == ECONN_ACCEPT_PAUSE)
				s->paused_until_ns = clock_now_ns() + ECONN_ACCEPT_PAUSE_NS;
			if (what == ECONN_ACCEPT_NEXT)
				continue;
			return;
		}
		if (econn_full(cfg, (int64_t)s->kids.n)) {
			close(cfd);
			continue;
		}
		uint64_t id = s->next_id++;
		pid_t pid = fork();
		if (pid == 0)
			child_start(s, self, cfd, id);
		close(cfd);
		if (pid < 0 || kids_add(&s->kids, pid) < 0) {
			/* out of processes (or memory): stop accepting for a while */
			if (pid > 0)
				kill(pid, SIGKILL);
			s->paused_until_ns = clock_now_ns() + ECONN_ACCEPT_PAUSE_NS;
			return;
		}
	}
}

static void shutdown_kids(struct fsrv *s)
{
	for (size_t i = 0; i < s->kids.n; i++)
		kill(s->kids.pids[i], SIGTERM);
	uint64_t deadline = clock_now_ns() + PSUP_TERM_WAIT_NS;
	do {
		while (reap_one(&s->kids, s->rooms, 0))
			;
	} while (s->kids.n && psup_wait_chld(s->sfd, deadline));
	for (size_t i = 0; i < s->kids.n; i++)
		kill(s->kids.pids[i], SIGKILL);
	while (s->kids.n && reap_one(&s->kids, s->rooms, 1))
		;
	s->kids.n = 0;
}

static int fork_run(const struct engine_cfg *cfg)
{
	struct fsrv s;
	memset(&s, 0, sizeof(s));
	s.cfg = cfg;
	s.lfd = s.sfd = -1;
	s.next_id = 1;
	s.max_kids = (size_t)(cfg->max_children > 0 ? cfg->max_children
				: cfg->max_conns > 0 ? cfg->max_conns : 0);
	signal(SIGPIPE, SIG_IGN);

	struct net_addr bound;
	s.lfd = econn_listen(cfg, 0, 1, NET_NONBLOCK, &bound);
	if (s.lfd < 0)
		return 1;
	if (psup_rooms(cfg, &s.room_dir, &s.rooms) < 0) {
		close(s.lfd);
		return 1;
	}
	int stop_fd = engine_stop_fd();
	s.sfd = psup_sigchld(cfg, &s.old_mask);
	if (s.sfd < 0) {
		sigprocmask(SIG_SETMASK, &s.old_mask, NULL);
		close(s.lfd);
		if (s.rooms)
			logroom_dir_stop(&s.room_dir);
		return 1;
	}
	pid_t self = getpid();
	engine_ready(cfg, &bound);

	while (!engine_stop_requested()) {
		uint64_t now = clock_now_ns();
		int accepting = now >= s.paused_until_ns && !(s.max_kids && s.kids.n >= s.max_kids);
		struct pollfd pfd[3] = {
			{.fd = stop_fd, .events = POLLIN},
			{.fd = s.sfd, .events = POLLIN},
			{.fd = accepting ? s.lfd : -1, .events = POLLIN},
		};
		struct timespec ts;
		uint64_t until = accepting ? 0 : s.paused_until_ns; /* 0: no timeout */
		int n = ppoll(pfd, 3, econn_timeout(until, now, &ts), NULL);
		if (n < 0 && errno != EINTR) {
			error("waiting for connections failed: %s", strerror(errno));
			break;
		}
		if (n <= 0)
			continue;
		if (pfd[0].revents)
			break;
		if (pfd[1].revents) {
			psup_drain(s.sfd);
			while (reap_one(&s.kids, s.rooms, 0))
				;
			s.paused_until_ns = 0; /* a descriptor or a process may be free again */
		}
		if (pfd[2].revents)
			accept_batch(&s, self);
	}

	close(s.lfd);
	shutdown_kids(&s);
	close(s.sfd);
	sigprocmask(SIG_SETMASK, &s.old_mask, NULL);
	if (s.rooms)
		logroom_dir_stop(&s.room_dir);
	free(s.kids.pids);
	return 0;
}

const struct engine engine_fork = {
	.name = "fork",
	.summary = "a process per connection (papayachat); chat through a shared log under flock",
	.run = fork_run,
};
