/* prefork: N worker processes (--workers N, default the number of CPUs this process may run
 * on) accept on one listening socket that the parent created before forking them.
 *
 * Each worker runs an event loop (core/ev, epoll) over nonblocking connections (pworker.h,
 * shared with the gateway engine) — the epoll engine's per-connection logic in a process of
 * its own — rather than a blocking accept and one connection at a time, so a handful of
 * workers serves many concurrent connections. Per readiness a connection does one read of up
 * to ENGINE_READ_BUF, feeds the protocol all complete input and makes one write of the output;
 * the rest waits for EV_WRITE, and reading pauses while more than ECONN_OUT_HIGH_BYTES wait.
 * The listening socket is shared, so a new connection wakes every idle worker (level-triggered
 * epoll without EPOLLEXCLUSIVE: the classic thundering herd of prefork servers); the losers'
 * accept4 returns EAGAIN. EMFILE and ENFILE pause that worker's accepting for 100 ms.
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
 * The parent supervises (psup.h, shared with the gateway engine): it reaps (SIGCHLD through a
 * signalfd), restarts a worker that dies (after 1 s when the worker lived less than 1 s, so a
 * crashing worker cannot make it spin), and on stop sends SIGTERM to the workers — each stops
 * accepting, closes idle connections, flushes the others for at most 1 s and exits — then
 * SIGKILLs and reaps what is left within ENGINE_STOP_GRACE_NS. Workers set
 * PR_SET_PDEATHSIG(SIGKILL): none outlives the parent.
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
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/ev.h"
#include "core/log.h"
#include "engine/econn.h"
#include "engine/psup.h"
#include "engine/pworker.h"

/* ---- a worker: pworker.h's loop over the connections it accepts ----------------------- */

struct pfworker {
	const struct engine_cfg *cfg;
	struct psup_shared *sh;
	int idx;
	int lfd;
	struct pworker *w;
	struct econn_acceptor acc;
};

/* econn_acceptor's take: a new connection, unless --max-conns are open server-wide */
static int take(void *ud, int fd)
{
	struct pfworker *pf = ud;
	struct psup_shared *sh = pf->sh;
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

static int worker_main(const struct engine_cfg *cfg, int lfd, struct psup_shared *sh, int idx,
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

/* psup's spawn: worker i, on the shared listener (psup's ud) */
static int spawn_worker(struct psup *ps, int i)
{
	const int *lfd = ps->ud;
	pid_t pid = psup_fork(ps, i);
	if (pid == 0)
		_exit(worker_main(ps->cfg, *lfd, ps->sh, i, ps->rooms));
	return pid < 0 ? (int)pid : 0;
}

/* Restarts the workers that die (psup's rule) until a stop is requested. */
static void supervise(struct psup *ps, int stop_fd)
{
	while (!engine_stop_requested()) {
		uint64_t now = clock_now_ns(), next = 0;
		for (int i = 0; i < ps->n; i++) {
			struct psup_slot *w = &ps->slots[i];
			if (w->pid || !w->restart_at_ns)
				continue;
			if (w->restart_at_ns <= now && psup_restart(ps, i) < 0)
				w->restart_at_ns = now + PSUP_RESTART_DELAY_NS;
			if (!w->pid && (!next || w->restart_at_ns < next))
				next = w->restart_at_ns;
		}
		struct timespec ts;
		struct pollfd pfd[2] = {{.fd = stop_fd, .events = POLLIN},
					{.fd = ps->sfd, .events = POLLIN}};
		int n = ppoll(pfd, 2, econn_timeout(next, now, &ts), NULL);
		if (n < 0 && errno != EINTR) {
			error("prefork supervisor: waiting failed: %s", strerror(errno));
			return;
		}
		if (n > 0 && pfd[0].revents)
			return;
		if (n <= 0 || !pfd[1].revents)
			continue;
		psup_drain(ps->sfd);
		int st, i;
		while ((i = psup_reap(ps, 0, &st)) != -2)
			if (i >= 0 && !engine_stop_requested())
				ps->slots[i].restart_at_ns = clock_now_ns() + psup_died(ps, i, st);
	}
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
	signal(SIGPIPE, SIG_IGN);
	struct net_addr bound;
	int lfd = econn_listen(cfg, 0, 1, NET_NONBLOCK, &bound);
	if (lfd < 0)
		return 1;
	int rc = 1;
	struct psup ps;
	if (psup_init(&ps, cfg, cfg->workers > 0 ? cfg->workers : default_workers(), spawn_worker,
		      &lfd) == 0 && psup_start(&ps) == 0) {
		engine_ready(cfg, &bound);
		rc = 0;
		supervise(&ps, engine_stop_fd());
		close(lfd);
		lfd = -1;
		psup_stop(&ps);
	}
	if (lfd >= 0)
		close(lfd);
	psup_fini(&ps);
	return rc;
}

const struct engine engine_prefork = {
	.name = "prefork",
	.summary = "N worker processes, each an event loop, accepting on one shared socket",
	.run = prefork_run,
};
