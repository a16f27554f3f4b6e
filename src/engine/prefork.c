/* prefork: N worker processes (--workers N, default the number of CPUs this process may run
 * on) accept on one listening socket that the parent created before forking them.
 *
 * Each worker runs an event loop (core/ev, epoll) over nonblocking connections — the epoll
 * engine's per-connection logic in a process of its own — rather than a blocking accept and
 * one connection at a time, so a handful of workers serves many concurrent connections. Per
 * readiness a connection does one read of up to ENGINE_READ_BUF, feeds the protocol all
 * complete input and makes one write of the output; the rest waits for EV_WRITE, and reading
 * pauses while more than OUT_HIGH bytes wait. The listening socket is shared, so a new
 * connection wakes every idle worker (level-triggered epoll without EPOLLEXCLUSIVE: the
 * classic thundering herd of prefork servers); the losers' accept4 returns EAGAIN. EMFILE and
 * ENFILE pause that worker's accepting for 100 ms.
 *
 * Processes share nothing but a small MAP_SHARED block made by the parent: the next
 * connection id (unique across workers) and the live connection counts (--max-conns is a
 * server-wide bound; the parent takes a dead worker's connections off the total). Chat uses
 * the fork engine's log rooms (logroom.h): a worker is one process in a room however many of
 * its connections are members; after every loop iteration it arms its rooms and delivers
 * what arrived — its own connections' lines included — to its local members. The output
 * bound is the fork engine's: a member whose socket is full and that is more than
 * --max-outbuf behind the log end gets the overflow line and is closed. The room directory's
 * janitor removes it even when the parent is SIGKILLed.
 *
 * The parent supervises: it reaps (SIGCHLD through a signalfd), restarts a worker that dies
 * (after 1 s when the worker lived less than 1 s, so a crashing worker cannot make it spin),
 * and on stop sends SIGTERM to the workers — each stops accepting, closes idle connections,
 * flushes the others for at most 1 s and exits — then SIGKILLs and reaps what is left within
 * ENGINE_STOP_GRACE_NS. Workers set PR_SET_PDEATHSIG(SIGKILL): none outlives the parent.
 */
#include "engine/engine.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/ev.h"
#include "core/log.h"
#include "engine/econn.h"
#include "engine/logroom.h"

#define OUT_HIGH (256 * 1024)
#define TERM_WAIT_NS (ENGINE_STOP_GRACE_NS * 3 / 4) /* then SIGKILL */
#define WORKER_FINISH_NS (ENGINE_STOP_GRACE_NS / 2)
#define YOUNG_DEATH_NS NS_PER_S                     /* died younger: restart after RESTART_DELAY */
#define RESTART_DELAY_NS NS_PER_S

struct shared {
	_Atomic uint64_t next_id;
	_Atomic int64_t live;
	_Atomic int64_t per_worker[];
};

struct pworker;

struct pconn {
	int fd;
	int mask;
	int overflowed;
	struct pworker *w;
	struct pconn *next, *prev;
	struct econn e;    /* input, timeouts, closing (close once out is flushed) */
	struct buf out;
	struct logroom_reader rd;
	struct proto_env env;
	_Alignas(16) unsigned char state[];
};

struct pworker {
	struct econn_cfg ec;
	struct shared *sh;
	int idx;
	struct ev_loop *loop;
	struct econn_acceptor acc;
	char *rbuf;
	struct pconn *conns;
	size_t nconns;
	struct logroom *lr;
	int stopping;
};

static void conn_cb(struct ev_loop *l, int fd, int mask, void *ud);

static void set_mask(struct pconn *c, int mask)
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

static void maybe_finish(struct pworker *w)
{
	if (w->stopping && w->nconns == 0)
		ev_stop(w->loop);
}

static void conn_close(struct pconn *c)
{
	struct pworker *w = c->w;
	logroom_leave(&c->rd);
	if (c->mask)
		ev_del(w->loop, c->fd, c->mask);
	close(c->fd);
	if (w->ec.p->fini)
		w->ec.p->fini(c->state);
	if (c->next)
		c->next->prev = c->prev;
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	w->nconns--;
	atomic_fetch_sub(&w->sh->live, 1);
	atomic_fetch_sub(&w->sh->per_worker[w->idx], 1);
	buf_free(&c->e.in);
	buf_free(&c->out);
	free(c);
	maybe_finish(w);
}

/* Writes what out holds; 0, or -1 when the connection was closed. */
static int conn_flush(struct pconn *c)
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

static int env_join(struct proto_env *env, const char *room, size_t len)
{
	struct pconn *c = env->engine_ud;
	if (!c->w->lr)
		return -ENOTSUP;
	return logroom_join(c->w->lr, &c->rd, room, len, env->conn_id);
}

static int env_publish(struct proto_env *env, const char *msg, size_t len)
{
	struct pconn *c = env->engine_ud;
	if (!c->rd.room)
		return 0;
	return logroom_publish(&c->rd, msg, len);
}

/* Room records for a local member (logroom_for_pending callback): into out up to the
 * bound, flushed; when output stays queued (the socket is full) and the member is more than
 * the bound behind the log end, it is a slow reader: overflow line, close after flushing. */
static void conn_pump(struct logroom_reader *rd, void *ud)
{
	struct pconn *c = (struct pconn *)((char *)rd - offsetof(struct pconn, rd));
	size_t max = c->w->ec.max_outbuf_bytes;
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

static void conn_read(struct pconn *c)
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
	struct pconn *c = ud;
	if (mask & EV_WRITE) {
		if (conn_flush(c) < 0)
			return;
	}
	if ((mask & EV_READ) && (c->mask & EV_READ) && !c->e.closing)
		conn_read(c);
}

static void conn_new(struct pworker *w, int fd)
{
	struct pconn *c = calloc(1, sizeof(*c) + w->ec.p->state_size);
	if (!c) {
		atomic_fetch_sub(&w->sh->live, 1);
		close(fd);
		return;
	}
	c->fd = fd;
	c->w = w;
	c->e.last_ns = ev_now_ns(w->loop);
	econn_env_init(&c->env, w->ec.cfg, atomic_fetch_add(&w->sh->next_id, 1), c, env_join,
		       env_publish);
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
	atomic_fetch_add(&w->sh->per_worker[w->idx], 1);
	net_set_nodelay(fd, 1);
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

/* econn_acceptor's take: a new connection, unless --max-conns are open server-wide */
static int take(void *ud, int fd)
{
	struct pworker *w = ud;
	if (econn_full(w->ec.cfg, atomic_fetch_add(&w->sh->live, 1))) {
		atomic_fetch_sub(&w->sh->live, 1);
		close(fd);
	} else {
		conn_new(w, fd);
	}
	return 0;
}

static void wake_cb(struct ev_loop *l, int fd, int mask, void *ud)
{
	/* nothing: the loop drains the signalfd in logroom_arm and delivers right after */
}

static int64_t grace_over(struct ev_loop *l, uint64_t id, void *ud)
{
	ev_stop(l);
	return EV_NOMORE;
}

static void stop_cb(struct ev_loop *l, int fd, int mask, void *ud)
{
	struct pworker *w = ud;
	ev_del(l, fd, EV_READ);
	if (w->stopping)
		return;
	w->stopping = 1;
	econn_acceptor_close(&w->acc);
	/* idle connections go now; those with output pending finish it */
	for (struct pconn *c = w->conns, *next; c; c = next) {
		next = c->next;
		c->e.closing = 1;
		buf_clear(&c->e.in);
		conn_flush(c);
	}
	ev_timer_add(l, WORKER_FINISH_NS, grace_over, w);
	maybe_finish(w);
}

static int64_t sweep(struct ev_loop *l, uint64_t id, void *ud)
{
	struct pworker *w = ud;
	uint64_t now = clock_now_ns();
	for (struct pconn *c = w->conns, *next; c; c = next) {
		next = c->next;
		if (econn_expired(&w->ec, &c->e, 0, now)) /* send progress counts in last_ns */
			conn_close(c);
	}
	return (int64_t)w->ec.sweep_ns;
}

static int worker_main(const struct engine_cfg *cfg, int lfd, struct shared *sh, int idx,
		       const char *room_dir)
{
	struct pworker w;
	memset(&w, 0, sizeof(w));
	econn_cfg_init(&w.ec, cfg);
	w.sh = sh;
	w.idx = idx;
	w.acc.fd = -1;
	w.loop = ev_new(1024);
	w.rbuf = malloc(ENGINE_READ_BUF);
	if (!w.loop || !w.rbuf)
		return 1;
	if (room_dir && logroom_open(&w.lr, room_dir) < 0)
		w.lr = NULL; /* joins fail: chat answers with its error line */
	int stop_fd = engine_stop_fd();
	if (econn_acceptor_start(&w.acc, w.loop, lfd, take, &w) < 0 ||
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
			error("prefork worker %d: event loop failed: %s", idx, strerror(-r));
			break;
		}
	}
	while (w.conns)
		conn_close(w.conns);
	logroom_close(w.lr);
	econn_acceptor_close(&w.acc);
	ev_free(w.loop);
	free(w.rbuf);
	return 0;
}

/* ---- the parent ---------------------------------------------------------------------- */

struct slot {
	pid_t pid;            /* 0 = not running */
	uint64_t started_ns;
	uint64_t restart_at_ns; /* when pid == 0 and not stopping */
};

struct psrv {
	const struct engine_cfg *cfg;
	int lfd, sfd, n;
	pid_t self;
	sigset_t old_mask;
	struct shared *sh;
	size_t sh_bytes;
	struct slot *slots;
	struct logroom_dir room_dir;
	const char *rooms;
};

static int spawn_worker(struct psrv *s, int i)
{
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != s->self)
			_exit(0);
		close(s->sfd);
		if (s->rooms)
			logroom_dir_forked(&s->room_dir);
		engine_stop_reset(); /* a SIGTERM to this worker stops this worker only */
		sigprocmask(SIG_SETMASK, &s->old_mask, NULL);
		_exit(worker_main(s->cfg, s->lfd, s->sh, i, s->rooms));
	}
	s->slots[i].pid = pid;
	s->slots[i].started_ns = clock_now_ns();
	s->slots[i].restart_at_ns = 0;
	return 0;
}

/* Reaps one exited worker; returns its slot index, -1 for none. Scrubs room slots first when
 * it did not exit cleanly (its pid is still a zombie's, not reusable). */
static int reap_one(struct psrv *s, int block, int *status)
{
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	if (waitid(P_ALL, 0, &si, WEXITED | WNOWAIT | (block ? 0 : WNOHANG)) < 0 || si.si_pid <= 0)
		return -2;
	if (s->rooms && !(si.si_code == CLD_EXITED && si.si_status == 0))
		logroom_dir_scrub(s->rooms, si.si_pid);
	while (waitpid(si.si_pid, status, 0) < 0 && errno == EINTR)
		;
	for (int i = 0; i < s->n; i++) {
		if (s->slots[i].pid == si.si_pid) {
			s->slots[i].pid = 0;
			/* its connections died with it */
			int64_t gone = atomic_exchange(&s->sh->per_worker[i], 0);
			atomic_fetch_sub(&s->sh->live, gone);
			return i;
		}
	}
	return -1;
}

static int running(const struct psrv *s)
{
	int n = 0;
	for (int i = 0; i < s->n; i++)
		n += s->slots[i].pid > 0;
	return n;
}

static void drain_sigfd(int sfd)
{
	struct signalfd_siginfo si[16];
	while (read(sfd, si, sizeof(si)) > 0)
		;
}

static void supervise(struct psrv *s, int stop_fd)
{
	while (!engine_stop_requested()) {
		uint64_t now = clock_now_ns(), next = 0;
		for (int i = 0; i < s->n; i++) {
			struct slot *w = &s->slots[i];
			if (w->pid || !w->restart_at_ns)
				continue;
			if (w->restart_at_ns <= now) {
				int r = spawn_worker(s, i);
				if (r < 0) {
					warn("cannot restart prefork worker %d: %s (retrying in 1 s)", i,
					     strerror(-r));
					w->restart_at_ns = now + RESTART_DELAY_NS;
				}
			}
			if (!w->pid && (!next || w->restart_at_ns < next))
				next = w->restart_at_ns;
		}
		struct timespec ts, *tsp = NULL;
		if (next) {
			uint64_t d = next > now ? next - now : 0;
			ts.tv_sec = (time_t)(d / NS_PER_S);
			ts.tv_nsec = (long)(d % NS_PER_S);
			tsp = &ts;
		}
		struct pollfd pfd[2] = {{.fd = stop_fd, .events = POLLIN},
					{.fd = s->sfd, .events = POLLIN}};
		int n = ppoll(pfd, 2, tsp, NULL);
		if (n < 0 && errno != EINTR) {
			error("prefork supervisor: waiting failed: %s", strerror(errno));
			return;
		}
		if (n > 0 && pfd[0].revents)
			return;
		if (n <= 0 || !pfd[1].revents)
			continue;
		drain_sigfd(s->sfd);
		int st, i;
		while ((i = reap_one(s, 0, &st)) != -2) {
			if (i < 0 || engine_stop_requested())
				continue;
			now = clock_now_ns();
			int young = now - s->slots[i].started_ns < YOUNG_DEATH_NS;
			if (WIFSIGNALED(st))
				warn("prefork worker %d died of signal %d; restarting it%s", i,
				     WTERMSIG(st), young ? " in 1 s" : "");
			else
				warn("prefork worker %d exited with status %d; restarting it%s", i,
				     WEXITSTATUS(st), young ? " in 1 s" : "");
			s->slots[i].restart_at_ns = young ? now + RESTART_DELAY_NS : now;
		}
	}
}

static void shutdown_workers(struct psrv *s)
{
	for (int i = 0; i < s->n; i++)
		if (s->slots[i].pid > 0)
			kill(s->slots[i].pid, SIGTERM);
	uint64_t deadline = clock_now_ns() + TERM_WAIT_NS;
	int st;
	while (running(s)) {
		while (reap_one(s, 0, &st) != -2)
			;
		uint64_t now = clock_now_ns();
		if (!running(s) || now >= deadline)
			break;
		uint64_t d = deadline - now;
		struct timespec ts = {(time_t)(d / NS_PER_S), (long)(d % NS_PER_S)};
		struct pollfd pfd = {.fd = s->sfd, .events = POLLIN};
		ppoll(&pfd, 1, &ts, NULL);
		drain_sigfd(s->sfd);
	}
	for (int i = 0; i < s->n; i++)
		if (s->slots[i].pid > 0)
			kill(s->slots[i].pid, SIGKILL);
	while (running(s) && reap_one(s, 1, &st) != -2)
		;
}

static int default_workers(void)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

static int prefork_run(const struct engine_cfg *cfg)
{
	struct psrv s;
	memset(&s, 0, sizeof(s));
	s.cfg = cfg;
	s.sfd = -1;
	s.n = cfg->workers > 0 ? cfg->workers : default_workers();
	s.self = getpid();
	signal(SIGPIPE, SIG_IGN);
	int rc = 1;

	struct net_addr bound;
	s.lfd = econn_listen(cfg, 0, 1, NET_NONBLOCK, &bound);
	if (s.lfd < 0)
		return 1;
	s.sh_bytes = sizeof(struct shared) + (size_t)s.n * sizeof(s.sh->per_worker[0]);
	void *m = mmap(NULL, s.sh_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	s.slots = calloc((size_t)s.n, sizeof(*s.slots));
	if (m == MAP_FAILED || !s.slots) {
		error("out of memory starting %d prefork workers", s.n);
		if (m != MAP_FAILED)
			munmap(m, s.sh_bytes);
		free(s.slots);
		close(s.lfd);
		return 1;
	}
	s.sh = m;
	atomic_init(&s.sh->next_id, 1);
	atomic_init(&s.sh->live, 0);
	if (cfg->proto->fanout) {
		int r = logroom_dir_start(&s.room_dir);
		if (r < 0) {
			error("cannot create the chat room directory in '/dev/shm' or '/tmp': %s "
			      "(set TMPDIR to a writable directory)", strerror(-r));
			goto out;
		}
		s.rooms = s.room_dir.path;
	}
	int stop_fd = engine_stop_fd();
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &s.old_mask);
	s.sfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
	if (s.sfd < 0) {
		error("cannot create a signalfd for SIGCHLD: %s", strerror(errno));
		goto out_mask;
	}
	for (int i = 0; i < s.n; i++) {
		int r = spawn_worker(&s, i);
		if (r < 0) {
			error("cannot start prefork worker %d of %d: %s (use fewer --workers)", i, s.n,
			      strerror(-r));
			shutdown_workers(&s);
			goto out_mask;
		}
	}
	engine_ready(cfg, &bound);
	rc = 0;
	supervise(&s, stop_fd);
	close(s.lfd);
	s.lfd = -1;
	shutdown_workers(&s);
out_mask:
	if (s.sfd >= 0)
		close(s.sfd);
	sigprocmask(SIG_SETMASK, &s.old_mask, NULL);
out:
	if (s.lfd >= 0)
		close(s.lfd);
	if (s.rooms)
		logroom_dir_stop(&s.room_dir);
	munmap(s.sh, s.sh_bytes);
	free(s.slots);
	return rc;
}

const struct engine engine_prefork = {
	.name = "prefork",
	.summary = "N worker processes, each an event loop, accepting on one shared socket",
	.protos = "sink echo http chat",
	.run = prefork_run,
};
