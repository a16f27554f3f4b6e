/* psup: the parent side of the engines that fork server processes (fork, prefork, gateway).
 *
 * What a parent owes the processes it forks, once for the three engines:
 *   - the chat room directory with its janitor when the protocol has rooms (psup_rooms);
 *   - SIGCHLD through a signalfd, and waiting on it with a deadline (psup_sigchld,
 *     psup_drain, psup_wait_chld);
 *   - in each child, the lifetime rules (psup_child): PR_SET_PDEATHSIG(SIGKILL) and then a
 *     getppid check, so that no child outlives the parent, even one SIGKILLed; the child's
 *     copy of the room directory's janitor pipe closed; a stop eventfd of its own (a SIGTERM
 *     to the child stops that child only); the parent's signal mask restored;
 *   - reaping (psup_reap_pid): waitid WNOWAIT first, so that a child that died without
 *     leaving its rooms has its slots scrubbed while its pid is still a zombie's, before the
 *     pid can be reused.
 *
 * The engines with a fixed set of worker processes (prefork, gateway) keep them in a struct
 * psup: the workers' slots, the counters they share with the parent (MAP_SHARED: the next
 * connection id, unique across workers; the live connections server-wide, for --max-conns,
 * and per worker, so that a dead worker's connections are taken off the total), starting
 * them, reaping them with the counts corrected, the restart rule (a worker that lived less
 * than PSUP_YOUNG_DEATH_NS is restarted after PSUP_RESTART_DELAY_NS, so that a crashing
 * worker cannot make the parent spin) and the stop (SIGTERM; SIGKILL for what is left after
 * PSUP_TERM_WAIT_NS). How the parent waits and when it restarts is the engine's: prefork
 * polls, the gateway's front runs an event loop.
 *
 * Threads: the parent is single-threaded; all of this runs on its thread (psup_child in the
 * child, right after fork). Errors: -errno, or -1 after engine_fail(cfg, ...) said what failed.
 */
#ifndef CTXLAB_ENGINE_PSUP_H
#define CTXLAB_ENGINE_PSUP_H

#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/clock.h"
#include "engine/engine.h"
#include "engine/logroom.h"

#define PSUP_TERM_WAIT_NS (ENGINE_STOP_GRACE_NS * 3 / 4) /* after SIGTERM: then SIGKILL */
#define PSUP_YOUNG_DEATH_NS NS_PER_S   /* a worker that died younger restarts after a delay */
#define PSUP_RESTART_DELAY_NS NS_PER_S

/* ---- any parent ----------------------------------------------------------------------- */

/* When the protocol has rooms (cfg->proto->fanout): starts the room directory with its
 * janitor (logroom_dir_start) and sets *rooms to d->path — pass d to psup_child in each
 * child and call logroom_dir_stop(d) at the end; else sets *rooms to NULL. Returns 0, or
 * -errno after engine_fail(cfg, ...). */
int psup_rooms(const struct engine_cfg *cfg, struct logroom_dir *d, const char **rooms);

/* Blocks SIGCHLD (the previous mask into *old_mask: restore it at the end, also when this
 * fails) and returns a nonblocking close-on-exec signalfd for it, or -errno after
 * engine_fail(cfg, ...). */
int psup_sigchld(const struct engine_cfg *cfg, sigset_t *old_mask);

/* Reads everything pending on the SIGCHLD signalfd sfd. */
void psup_drain(int sfd);

/* Waits until a SIGCHLD arrives on sfd (then drains it) or deadline_ns (monotonic) passes.
 * Returns 1 when woken before the deadline, 0 once it has passed. */
int psup_wait_chld(int sfd, uint64_t deadline_ns);

/* Reaps one exited child, waiting for one when block: when rooms (the room directory's
 * path, or NULL) and the child did not exit with status 0, first clears its slots in every
 * room (logroom_dir_scrub). Returns its pid with *status, or 0 when none (no child has
 * exited and !block, or there are no children). */
pid_t psup_reap_pid(const char *rooms, int block, int *status);

/* In a child, right after fork: the lifetime rules above. parent: the parent's pid (the child
 * exits with status 0 at once when the parent is already gone); rooms: the room directory,
 * NULL without rooms; old_mask: the mask psup_sigchld saved. The caller then closes what the
 * child must not hold. */
void psup_child(pid_t parent, struct logroom_dir *rooms, const sigset_t *old_mask);

/* ---- a parent of N worker processes --------------------------------------------------- */

struct psup_shared {
	_Atomic uint64_t next_id;     /* the next connection id; starts at 1 */
	_Atomic int64_t live;         /* live connections, server-wide */
	_Atomic int64_t per_worker[]; /* live connections per worker */
};

struct psup_slot {
	pid_t pid;              /* 0 = not running */
	uint64_t started_ns;
	uint64_t restart_at_ns; /* the engine's restart schedule (0 = none); psup_fork clears it */
};

struct psup;

/* The engine's: forks worker i with psup_fork and whatever it needs; 0 or -errno. */
typedef int psup_spawn_fn(struct psup *ps, int i);

struct psup {
	const struct engine_cfg *cfg;
	int n;                      /* workers */
	struct psup_slot *slots;    /* [n] */
	struct psup_shared *sh;     /* MAP_SHARED, with n per-worker counters */
	size_t sh_bytes;
	const char *rooms;          /* room_dir.path, or NULL when the protocol has no rooms */
	struct logroom_dir room_dir;
	int sfd;                    /* the SIGCHLD signalfd, -1 = none */
	int masked;                 /* SIGCHLD is blocked: old_mask is to be restored */
	sigset_t old_mask;
	pid_t self;
	psup_spawn_fn *spawn;
	void *ud;                   /* the engine's */
};

/* Sets ps up for n workers of cfg->engine_name that spawn(ps, i) starts: the shared
 * counters, the slots, the room directory (psup_rooms), SIGCHLD (psup_sigchld). Returns 0,
 * or -1 after engine_fail; psup_fini releases what it set up in both cases. */
int psup_init(struct psup *ps, const struct engine_cfg *cfg, int n, psup_spawn_fn *spawn,
	      void *ud);

/* Starts the n workers; on a failure records "cannot start ENGINE worker I of N"
 * (engine_fail), kills and reaps those started (psup_kill) and returns -1. */
int psup_start(struct psup *ps);

/* fork() for worker i: in the child, psup_child (and the SIGCHLD signalfd closed), then 0 is
 * returned there; in the parent the slot records the pid, which is returned; -errno when
 * fork fails. */
pid_t psup_fork(struct psup *ps, int i);

/* Restarts worker i (spawn): 0, or -1 after warning "cannot restart ... (retrying in 1 s)":
 * schedule another try after PSUP_RESTART_DELAY_NS. */
int psup_restart(struct psup *ps, int i);

/* Reaps one exited child (psup_reap_pid). For a worker: its slot is emptied and its
 * connections, which died with it, are taken off the live count; returns its index. -1 for
 * another child, -2 when none was reaped. */
int psup_reap(struct psup *ps, int block, int *status);

/* Worker i exited with `status` while the server runs: warns "ENGINE worker I died of
 * signal S / exited with status X; restarting it" and returns the delay before restarting
 * it (0, or PSUP_RESTART_DELAY_NS when it died young). */
uint64_t psup_died(const struct psup *ps, int i, int status);

/* The number of workers running. */
int psup_running(const struct psup *ps);

/* Sends sig to every running worker. */
void psup_signal(const struct psup *ps, int sig);

/* Stops the workers: SIGTERM, reaps them as they exit for at most PSUP_TERM_WAIT_NS, then
 * psup_kill. */
void psup_stop(struct psup *ps);

/* SIGKILLs every running worker and reaps them all. */
void psup_kill(struct psup *ps);

/* Closes the signalfd, restores the signal mask, removes the room directory, frees the rest. */
void psup_fini(struct psup *ps);

#endif
