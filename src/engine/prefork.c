/* prefork: N worker processes (--workers N, default the number of CPUs this process may run
 * on) accept on one listening socket that the parent created before forking them.
 *
 * Each worker runs an event loop (core/ev, epoll) over nonblocking connections (pworker.h,
 * shared with the gateway engine) — the epoll engine's per-connection logic in a process of
 * its own — rather than a blocking accept and one connection at a time, so a handful of
 * workers serves many concurrent connections. Per readiness a connection does one read of up
 * to ENGINE_READ_BUF, feeds the protocol all complete input and makes one write of the
 * output; the rest waits for EV_WRITE, and reading pauses while more than PWORKER_OUT_HIGH
 * bytes wait. The listening socket is shared, so a new connection wakes every idle worker
 * (level-triggered epoll without EPOLLEXCLUSIVE: the classic thundering herd of prefork
 * servers); the losers' accept4 returns EAGAIN. EMFILE and ENFILE pause that worker's
 * accepting for 100 ms.
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
#include "engine/pworker.h"

#define TERM_WAIT_NS (ENGINE_STOP_GRACE_NS * 3 / 4) /* then SIGKILL */
#define YOUNG_DEATH_NS NS_PER_S                     /* died younger: restart after RESTART_DELAY */
#define RESTART_DELAY_NS NS_PER_S

struct shared {
	_Atomic uint64_t next_id;
	_Atomic int64_t live;
	_Atomic int64_t per_worker[];
};

/* ---- a worker: pworker.h's loop over the connections it accepts ----------------------- */

struct pfworker {
	const struct engine_cfg *cfg;
	struct shared *sh;
	int idx;
	int lfd;
	struct pworker *w;
	struct econn_acceptor acc;
};

/* econn_acceptor's take: a new connection, unless --max-conns are open server-wide */
static int take(void *ud, int fd)
{
	struct pfworker *pf = ud;
	struct shared *sh = pf->sh;
	if (econn_full(pf->cfg, atomic_fetch_add(&sh->live, 1))) {
		atomic_fetch_sub(&sh->live, 1);
		close(fd);
		return 0;
	}
	atomic_fetch_add(&sh->per_worker[pf->idx], 1);
	pworker_add(pf->w, fd, atomic_fetch_add(&sh->next_id, 1));
	return 0;
}

static int src_start(struct pworker *w, void *ud)
{
	struct pfworker *pf = ud;
	pf->w = w;
	return econn_acceptor_start(&pf->acc, pworker_loop(w), pf->lfd, take, pf);
}

/* stop: accept no more; fini: the same (a no-op when closed) */
static void src_close(struct pworker *w, void *ud)
{
	struct pfworker *pf = ud;
	econn_acceptor_close(&pf->acc);
}

static const struct pworker_ops src_ops = {
	.start = src_start,
	.stop = src_close,
	.fini = src_close,
};

static int worker_main(const struct engine_cfg *cfg, int lfd, struct shared *sh, int idx,
		       const char *room_dir)
{
	struct pfworker pf = {.cfg = cfg, .sh = sh, .idx = idx, .lfd = lfd, .acc = {.fd = -1}};
	struct pworker_cfg pc = {
		.cfg = cfg,
		.name = "prefork",
		.idx = idx,
		.room_dir = room_dir,
		.live = &sh->live,
		.mine = &sh->per_worker[idx],
		.ops = &src_ops,
		.ud = &pf,
	};
	return pworker_run(&pc);
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
	pid_t pid = pworker_parent_reap(s->rooms, block, status);
	if (pid <= 0)
		return -2;
	for (int i = 0; i < s->n; i++) {
		if (s->slots[i].pid == pid) {
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
	if (pworker_parent_rooms(cfg, &s.room_dir, &s.rooms) < 0)
		goto out;
	int stop_fd = engine_stop_fd();
	s.sfd = pworker_parent_sigchld(&s.old_mask);
	if (s.sfd < 0)
		goto out_mask;
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
