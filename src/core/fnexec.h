/* fnexec: runs a program once, with bytes on its stdin, and collects its stdout — bounded in
 * time and in output size. The exec mechanics of the gateway's functions (serve --functions):
 * core knows no HTTP; the caller maps the outcome to a status.
 *
 * The child is started with posix_spawn (vfork-like: cheap from a large process), stdin and
 * stdout are pipes, stderr is /dev/null, every other descriptor is closed in the child, its
 * signal mask is empty and SIGPIPE has its default action; it leads a process group of its
 * own, so that a kill over a limit takes what it started too (a shell script's children). The caller's thread waits for it
 * (poll over both pipes): a function occupies the thread that runs it. The child is always
 * reaped before fnexec_run returns (killed with SIGKILL when over a limit), so none is left as
 * a zombie. Thread-safe (it waits for its own pid only). */
#ifndef CTXLAB_CORE_FNEXEC_H
#define CTXLAB_CORE_FNEXEC_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* Runs path with no arguments, in[0..inlen) on its stdin. Returns 0 when it exited by itself
 * within timeout_ns having written at most max_out bytes (*status: its wait status; its
 * output appended to out), -ETIMEDOUT (still running at the deadline: killed), -EFBIG (wrote
 * more than max_out: killed), -ENOENT / -EACCES (not there, not executable), or another
 * -errno (pipes, spawn, memory). */
int fnexec_run(const char *path, const char *in, size_t inlen, uint64_t timeout_ns,
	       size_t max_out, struct buf *out, int *status);

#endif
