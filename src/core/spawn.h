/* spawn: start child programs from an argv array (never a shell) and guarantee that none
 * of them, nor any process they start, outlives ctxlab.
 *
 * Design: each spawned program runs under a small "keeper" process forked by ctxlab:
 *   ctxlab ── keeper (own process group, PR_SET_CHILD_SUBREAPER, PR_SET_PDEATHSIG) ── program ── ...
 * The keeper forks the program (affinity, stdout capture, environment applied before execvp),
 * and then only waits. Orphaned descendants of the program are reparented to the keeper
 * (subreaper), so the keeper always knows the whole tree. When the program exits, the keeper
 * kills and reaps what is left of its tree and exits with the program's status. When ctxlab
 * dies for any reason (exit, signal, SIGKILL), the kernel sends the keeper its parent-death
 * signal and the keeper kills the whole tree with SIGKILL before it exits. No child survives.
 * PR_SET_PDEATHSIG fires when the *thread* that forked exits: spawn from a long-lived thread
 * (the main thread).
 *
 * All functions return 0 (or a count) on success and -errno on failure.
 */
#ifndef CTXLAB_CORE_SPAWN_H
#define CTXLAB_CORE_SPAWN_H

#include <sched.h>
#include <stdint.h>
#include <sys/types.h>

struct spawn_opts {
	const char *const *argv;   /* argv[0] looked up in PATH; required */
	const char *const *env;    /* extra "K=V" entries added to the environment; NULL-terminated or NULL */
	const cpu_set_t *cpus;     /* affinity of the program (inherited by its tree); NULL = unchanged */
	const char *cwd;           /* NULL = unchanged */
	int capture_stdout;        /* 1: the program's stdout is a pipe, read end in child->stdout_fd */
	int stdin_null;            /* 1: stdin from /dev/null */
	int stdin_pipe;            /* 1: stdin is a pipe, write end in child->stdin_fd (the
				    * program sees EOF when ctxlab closes it or dies) */
	int stderr_fd;             /* >= 0: the program's stderr goes there; -1: inherited */
	const char *netns;         /* NULL, or a network namespace name (/run/netns/NAME) to enter */
	int hold;                  /* 1: the program is forked and set up but waits before execvp
				    * until spawn_release (so that monitors attach before its first
				    * instruction); the caller must release it */
};

struct spawn_child {
	pid_t pid;        /* the program (after exec) */
	pid_t keeper;     /* the keeper; root of the whole tree (monitor this one to miss nothing) */
	int stdout_fd;    /* read end when capture_stdout, else -1 (nonblocking: no; O_CLOEXEC) */
	int stdin_fd;     /* write end when stdin_pipe, else -1 (O_CLOEXEC; the caller closes it,
			   * or spawn_wait/spawn_stop do once the program is reaped) */
	int exited;       /* set by spawn_wait/spawn_stop */
	int status;       /* the program's wait status (as waitpid), valid when exited */
	int go_fd, st_fd; /* hold: the program's go pipe and the status pipe, until released */
};

/* Installs the process-wide guard once: SIGINT/SIGTERM/SIGHUP handlers that kill every live
 * spawned tree and then re-raise the signal with the default action. Idempotent. Commands
 * that spawn call it first. */
void spawn_guard_init(void);

int spawn_start(const struct spawn_opts *opts, struct spawn_child *child);
/* Lets a program started with opts.hold run: it calls execvp now. 0 once the exec succeeded,
 * or -errno of the failed exec (the program exits 127: reap it with spawn_wait). */
int spawn_release(struct spawn_child *child);

/* Reads one line from the child's stdout into buf (without '\n', NUL-terminated), waiting at
 * most timeout_ns. 1 = a line, 0 = EOF, -ETIMEDOUT, or -errno. Buffered per child fd; lines
 * longer than len are truncated. */
int spawn_read_line(struct spawn_child *child, char *buf, size_t len, uint64_t timeout_ns);

/* Signals the program only (e.g. SIGTERM for a graceful stop). */
int spawn_signal(struct spawn_child *child, int sig);
/* Waits for the program's tree to end (keeper reaped) at most timeout_ns (-1 = forever).
 * 0 = exited (status in child->status), -ETIMEDOUT. */
int spawn_wait(struct spawn_child *child, int64_t timeout_ns);
/* Graceful stop: SIGTERM to the program, wait grace_ns, then SIGKILL to the whole tree and
 * reap. Always leaves nothing alive. Returns 0 when the program ended within the grace. */
int spawn_stop(struct spawn_child *child, uint64_t grace_ns);

/* Kills every process in the tree rooted at pid (found through /proc children links, and
 * the process group) with sig. Returns how many were signalled. */
int spawn_kill_tree(pid_t pid, int sig);
/* Lists the live descendants of pid (not pid itself) from /proc into pids[max]; returns the
 * count (may exceed max: then only max were written). */
int spawn_descendants(pid_t pid, pid_t *pids, int max);

#endif
