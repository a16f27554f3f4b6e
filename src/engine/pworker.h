/* pworker: the worker process of the multi-process event-loop engines (prefork, gateway).
 *
 * One worker process runs one event loop (core/ev, epoll) over nonblocking connections, the
 * epoll engine's per-connection logic in a process of its own: per readiness a connection
 * does one read of up to ENGINE_READ_BUF (econn_read), feeds the protocol all complete input
 * (econn_input) and makes one write of the output; the rest waits for EV_WRITE, and reading
 * pauses while more than ECONN_OUT_HIGH_BYTES wait (econn_interest). Idle and header
 * timeouts: a sweep timer (econn_expired; send progress counts in last_ns).
 *
 * Chat: the workers share nothing, so rooms are log rooms (logroom.h): a worker is one
 * process in a room however many of its connections are members; after every loop iteration
 * it arms its rooms and delivers what arrived — its own connections' lines included — to its
 * local members. The output bound is the fork engine's (logroom_read_upto): a member whose
 * socket is full and that is more than --max-outbuf behind the log end gets the overflow line
 * and is closed.
 *
 * Stop: when engine_stop_fd() becomes readable the worker stops taking connections (the
 * source's stop), closes idle connections, flushes the others for at most
 * PWORKER_FINISH_NS and returns.
 *
 * What differs between the engines is only where a connection comes from — the source: the
 * prefork engine accepts on a listener shared by every worker, the gateway receives
 * descriptors from its front. The source is a struct pworker_ops the engine passes in; it
 * hands each new connection to pworker_add.
 *
 * Processes and threads: pworker_run is called in a worker process the engine forked (after
 * engine_stop_reset), on its one thread, and returns when the worker is done; pworker_add,
 * pworker_uncount, pworker_loop and pworker_stopping are called from inside it (the source's
 * callbacks, on that thread). Nothing here is shared with another process except the two
 * counters the engine passes in (MAP_SHARED memory that the engine owns).
 *
 * The parent (the process that forks and supervises the workers) is psup.h's: it sets up
 * and honours what the workers rely on — the room directory with its janitor, the shared
 * counters, the logroom rule that a worker which died without leaving its rooms has its
 * slots scrubbed before its pid is reaped — and restarts and stops them.
 */
#ifndef CTXLAB_ENGINE_PWORKER_H
#define CTXLAB_ENGINE_PWORKER_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/ev.h"
#include "engine/engine.h"
#include "engine/logroom.h"

#define PWORKER_FINISH_NS (ENGINE_STOP_GRACE_NS / 2) /* stop: flush for at most this long */

struct pworker; /* one per worker process, inside pworker_run */

/* Where connections come from. ud is pworker_cfg.ud. */
struct pworker_ops {
	/* Starts taking connections on pworker_loop(w) (called once, before the loop runs):
	 * 0, or -errno and the worker ends with status 1. */
	int (*start)(struct pworker *w, void *ud);
	/* A stop was requested: take no more connections (called at most once, in the loop). */
	void (*stop)(struct pworker *w, void *ud);
	/* After the loop, every connection closed, the loop still open: release the source. */
	void (*fini)(struct pworker *w, void *ud);
};

struct pworker_cfg {
	const struct engine_cfg *cfg;
	const char *name;       /* the engine, for messages ("prefork worker 3: ...") */
	int idx;                /* this worker's index */
	const char *room_dir;   /* the logroom directory; NULL when the protocol has no rooms */
	_Atomic int64_t *live;  /* the server's live connection count (shared memory) */
	_Atomic int64_t *mine;  /* this worker's live connection count (shared memory) */
	const struct pworker_ops *ops;
	void *ud;
};

/* Runs the worker until it is done. Returns the process exit status: 0, or 1 when it could
 * not be set up. pc and what it points to are the caller's and must outlive the call. */
int pworker_run(const struct pworker_cfg *pc);

/* A new connection: fd (nonblocking, a stream socket or socketpair end) becomes w's, and is
 * closed when the connection ends. The caller has counted it in *live and *mine already;
 * pworker takes it off both when it closes it (also when it cannot take it: no memory). */
void pworker_add(struct pworker *w, int fd, uint64_t conn_id);

/* Takes one connection off *live and *mine: one counted that never reached pworker_add. */
void pworker_uncount(struct pworker *w);

struct ev_loop *pworker_loop(struct pworker *w);

/* 1 once a stop was requested (the source takes nothing more). */
int pworker_stopping(const struct pworker *w);

#endif
