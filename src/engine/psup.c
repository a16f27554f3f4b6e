/* psup: the parent side of the engines that fork server processes (see psup.h). */
#include "engine/psup.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "engine/econn.h"

/* ---- any parent ----------------------------------------------------------------------- */

int psup_rooms(const struct engine_cfg *cfg, struct logroom_dir *d, const char **rooms)
{
	*rooms = NULL;
	if (!cfg->proto->fanout)
		return 0;
	int r = logroom_dir_start(d);
	if (r < 0) {
		engine_fail(cfg, "cannot create the chat room directory in '/dev/shm' or '/tmp': %s "
				 "(set TMPDIR to a writable directory)", strerror(-r));
		return r;
	}
	*rooms = d->path;
	return 0;
}

int psup_sigchld(const struct engine_cfg *cfg, sigset_t *old_mask)
{
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, old_mask);
	int sfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0) {
		int e = errno;
		engine_fail(cfg, "cannot create a signalfd for SIGCHLD: %s", strerror(e));
		return -e;
	}
	return sfd;
}

void psup_drain(int sfd)
{
	struct signalfd_siginfo si[16];
	while (read(sfd, si, sizeof(si)) > 0)
		;
}

int psup_wait_chld(int sfd, uint64_t deadline_ns)
{
	uint64_t now = clock_now_ns();
	if (now >= deadline_ns)
		return 0;
	struct timespec ts;
	struct pollfd pfd = {.fd = sfd, .events = POLLIN};
	ppoll(&pfd, 1, econn_timeout(deadline_ns, now, &ts), NULL);
	psup_drain(sfd);
	return 1;
}

pid_t psup_reap_pid(const char *rooms, int block, int *status)
{
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	if (waitid(P_ALL, 0, &si, WEXITED | WNOWAIT | (block ? 0 : WNOHANG)) < 0 || si.si_pid <= 0)
		return 0;
	if (rooms && !(si.si_code == CLD_EXITED && si.si_status == 0))
		logroom_dir_scrub(rooms, si.si_pid);
	while (waitpid(si.si_pid, status, 0) < 0 && errno == EINTR)
		;
	return si.si_pid;
}

void psup_child(pid_t parent, struct logroom_dir *rooms, const sigset_t *old_mask)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent) /* the parent died before the line above */
		_exit(0);
	if (rooms)
		logroom_dir_forked(rooms);
	engine_stop_reset(); /* a SIGTERM to this child stops this child only */
	sigprocmask(SIG_SETMASK, old_mask, NULL);
}

/* ---- a parent of N worker processes --------------------------------------------------- */

int psup_init(struct psup *ps, const struct engine_cfg *cfg, int n, psup_spawn_fn *spawn,
	      void *ud)
{
	memset(ps, 0, sizeof(*ps));
	ps->cfg = cfg;
	ps->n = n;
	ps->sfd = -1;
	ps->self = getpid();
	ps->spawn = spawn;
	ps->ud = ud;
	ps->sh_bytes = sizeof(*ps->sh) + (size_t)n * sizeof(ps->sh->per_worker[0]);
	void *m = mmap(NULL, ps->sh_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
		       0);
	ps->slots = calloc((size_t)n, sizeof(*ps->slots));
	if (m != MAP_FAILED)
		ps->sh = m;
	if (!ps->sh || !ps->slots)
		return engine_fail(cfg, "out of memory starting %d %s workers", n, cfg->engine_name);
	atomic_init(&ps->sh->next_id, 1);
	atomic_init(&ps->sh->live, 0);
	if (psup_rooms(cfg, &ps->room_dir, &ps->rooms) < 0)
		return -1;
	ps->masked = 1;
	ps->sfd = psup_sigchld(cfg, &ps->old_mask);
	return ps->sfd < 0 ? -1 : 0;
}

int psup_start(struct psup *ps)
{
	for (int i = 0; i < ps->n; i++) {
		int r = ps->spawn(ps, i);
		if (r < 0) {
			engine_fail(ps->cfg, "cannot start %s worker %d of %d: %s (use fewer --workers)",
				    ps->cfg->engine_name, i, ps->n, strerror(-r));
			psup_kill(ps);
			return -1;
		}
	}
	return 0;
}

pid_t psup_fork(struct psup *ps, int i)
{
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		psup_child(ps->self, ps->rooms ? &ps->room_dir : NULL, &ps->old_mask);
		close(ps->sfd);
		return 0;
	}
	ps->slots[i].pid = pid;
	ps->slots[i].started_ns = clock_now_ns();
	ps->slots[i].restart_at_ns = 0;
	return pid;
}

int psup_restart(struct psup *ps, int i)
{
	int r = ps->spawn(ps, i);
	if (r < 0)
		warn("cannot restart %s worker %d: %s (retrying in 1 s)", ps->cfg->engine_name, i,
		     strerror(-r));
	return r < 0 ? -1 : 0;
}

int psup_reap(struct psup *ps, int block, int *status)
{
	pid_t pid = psup_reap_pid(ps->rooms, block, status);
	if (pid <= 0)
		return -2;
	for (int i = 0; i < ps->n; i++) {
		if (ps->slots[i].pid == pid) {
			ps->slots[i].pid = 0;
			/* its connections died with it */
			int64_t gone = atomic_exchange(&ps->sh->per_worker[i], 0);
			atomic_fetch_sub(&ps->sh->live, gone);
			return i;
		}
	}
	return -1;
}

uint64_t psup_died(const struct psup *ps, int i, int status)
{
	const char *name = ps->cfg->engine_name;
	int young = clock_now_ns() - ps->slots[i].started_ns < PSUP_YOUNG_DEATH_NS;
	if (WIFSIGNALED(status))
		warn("%s worker %d died of signal %d; restarting it%s", name, i, WTERMSIG(status),
		     young ? " in 1 s" : "");
	else
		warn("%s worker %d exited with status %d; restarting it%s", name, i,
		     WEXITSTATUS(status), young ? " in 1 s" : "");
	return young ? PSUP_RESTART_DELAY_NS : 0;
}

int psup_running(const struct psup *ps)
{
	int n = 0;
	for (int i = 0; i < ps->n; i++)
		n += ps->slots[i].pid > 0;
	return n;
}

void psup_signal(const struct psup *ps, int sig)
{
	for (int i = 0; i < ps->n; i++)
		if (ps->slots[i].pid > 0)
			kill(ps->slots[i].pid, sig);
}

void psup_stop(struct psup *ps)
{
	psup_signal(ps, SIGTERM);
	uint64_t deadline = clock_now_ns() + PSUP_TERM_WAIT_NS;
	int st;
	do {
		while (psup_reap(ps, 0, &st) != -2)
			;
	} while (psup_running(ps) && psup_wait_chld(ps->sfd, deadline));
	psup_kill(ps);
}

void psup_kill(struct psup *ps)
{
	int st;
	psup_signal(ps, SIGKILL);
	while (psup_running(ps) && psup_reap(ps, 1, &st) != -2)
		;
}

void psup_fini(struct psup *ps)
{
	if (ps->sfd >= 0)
		close(ps->sfd);
	if (ps->masked)
		sigprocmask(SIG_SETMASK, &ps->old_mask, NULL);
	if (ps->rooms)
		logroom_dir_stop(&ps->room_dir);
	if (ps->sh)
		munmap(ps->sh, ps->sh_bytes);
	free(ps->slots);
	ps->sfd = -1;
	ps->masked = 0;
	ps->rooms = NULL;
	ps->sh = NULL;
	ps->slots = NULL;
}
