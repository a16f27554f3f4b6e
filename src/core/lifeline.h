/* lifeline: a role started by `ctxlab run` on another host (ssh) ends when its run does.
 *
 * ssh runs a remote command without a PTY: when the local ssh client dies (SIGKILL of the
 * run, a lost connection), sshd closes the command's stdin, and nothing else tells it. A role
 * started with --control-stdin treats its stdin as the control channel from the run:
 *   lifeline_wait_go()   prints LIFELINE_WAITING on stdout and blocks until a line "go"
 *                        arrives (the start barrier of several load hosts); -EPIPE when stdin
 *                        closed first
 *   lifeline_start()     watches stdin from a thread: at EOF (or a read error) it sends the
 *                        process SIGTERM (the role's graceful stop), and when the process is
 *                        still alive grace_ns later, SIGKILL to its process group (the role and
 *                        its workers) when it leads one, else to itself.
 * Both return 0 or -errno. Call once per process, from the main thread, before other threads.
 */
#ifndef CTXLAB_CORE_LIFELINE_H
#define CTXLAB_CORE_LIFELINE_H

#include <stdint.h>

#define LIFELINE_WAITING "ctxlab-barrier: waiting"

int lifeline_wait_go(void);
int lifeline_start(uint64_t grace_ns);

#endif
