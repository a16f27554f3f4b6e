/* forkev: the kernel's fork events (the process connector, NETLINK_CONNECTOR / CN_IDX_PROC),
 * monitor-internal: which processes forked since the last read, so that the walk can skip the
 * children file of a process that had no children and has not forked since.
 *
 * Only fork events are asked for (the connector's event filter, Linux >= 6.6); forkev_open
 * proves that events arrive (a thread of its own is created and its event awaited), so an
 * older kernel that ignores the filter request, or a namespace where the connector is refused
 * (it needs CAP_NET_ADMIN in the initial user namespace), is a failure with a reason, never a
 * silent absence of events. Not thread-safe. Functions return 0 / -errno.
 */
#ifndef CTXLAB_MONITOR_FORKEV_H
#define CTXLAB_MONITOR_FORKEV_H

#include <stdint.h>
#include <sys/types.h>

struct forkev {
	int fd;             /* -1 when closed */
	uint64_t lost;      /* times the socket overflowed (events dropped) */
	uint64_t forged;    /* messages not from the kernel, ignored */
	char why[160];      /* why forkev_open failed */
};

/* Subscribes to fork events (nonblocking socket, a 4 MiB buffer when root may force it) and
 * waits up to 500 ms for the event of a probe thread. 0, or -errno with why set. */
int forkev_open(struct forkev *f);
/* Reads the queued events, without blocking: the parent process (tgid) of every new process
 * (not of new threads) into parents[max], calling again while it returns max. Returns the count,
 * or -ENOBUFS when events were lost since the last call (the caller must assume that any
 * process may have forked), or another -errno. */
int forkev_read(struct forkev *f, pid_t *parents, int max);
void forkev_close(struct forkev *f);

#endif
