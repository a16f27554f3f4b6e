/* econn: what every engine does with a connection apart from waiting and switching.
 *
 * The lab compares engines that differ only in how they wait (blocking read, poll, epoll,
 * io_uring completions, coroutine parks) and how they switch (processes, threads,
 * coroutines, callbacks). Everything else is here, once, so that it cannot differ by accident:
 *   - limits: the bound of a connection's pending input and of its queued output, derived
 *     from the protocol limits (struct econn_cfg);
 *   - the feed loop: pending input to the protocol until it needs more, errs or asks to close,
 *     the rest kept as a partial request (econn_input);
 *   - output policy: the bound of queued output that pauses reading (ECONN_OUT_HIGH_BYTES),
 *     what a flush leaves the connection waiting for (econn_interest), a chat delivery with
 *     its --max-outbuf bound and overflow line (econn_deliver), and for core/ev loops the
 *     change of a descriptor's interest (econn_set_mask);
 *   - timeouts arithmetic: the idle and header (slowloris) rules, the sweep period, the nearest
 *     deadline, a deadline as a ppoll timeout (econn_expired, econn_deadline_ns,
 *     econn_timeout);
 *   - the defaults of the limits (econn_defaults);
 *   - accept policy: what an accept error means, --max-conns, the listener(s) with their
 *     SO_REUSEPORT rule and their error message, and for core/ev loops an acceptor that pauses
 *     on EMFILE/ENFILE instead of spinning (econn_accept_*, econn_full, econn_listen,
 *     econn_acceptor_*);
 *   - for the engines run by N threads of one process, their shared state, start-up and
 *     teardown: N workers around a listener each, worker 0 on the calling thread and the
 *     others on threads of their own (struct econn_srv, econn_srv_run), and for core/ev
 *     workers their loop, read buffer, listener, stop and sweep (econn_loop_*).
 * Connections are kept on <sys/queue.h> lists by every engine (LIST for a worker's
 * connections, SLIST for work queues), so that none writes its own list code.
 * Nothing here waits for I/O except econn_srv_run (which runs the workers and joins them)
 * and econn_loop_run, and nothing allocates on the hot path except econn_input, to keep a
 * partial request in the connection's buffer, and econn_deliver, to queue a delivery. The
 * per-event helpers are static inline: sharing them costs no call.
 *
 * Threads: struct econn_cfg is read-only after econn_cfg_init (any thread), and so is a
 * struct econn_srv once its workers run, but for its atomics and its (locked) rooms; a struct
 * econn, a struct econn_acceptor and a struct econn_loop belong to the thread that runs the
 * connection / the loop.
 */
#ifndef CTXLAB_ENGINE_ECONN_H
#define CTXLAB_ENGINE_ECONN_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/ev.h"
#include "engine/engine.h"
#include "engine/room.h"

#define ECONN_ACCEPT_BATCH 64                      /* accepts per listener readiness */
#define ECONN_ACCEPT_PAUSE_NS (100 * NS_PER_MS)    /* out of descriptors: wait this long */
#define ECONN_DEFAULT_BACKLOG 1024
#define ECONN_DEFAULT_OUTBUF_BYTES PROTO_DEFAULT_MAX_OUTBUF /* --max-outbuf default */
#define ECONN_OUT_HIGH_BYTES (256 * 1024)          /* queued output that pauses reading */

/* The defaults of `ctxlab serve`: every limit on what a client can make the server hold is
 * on unless the user sets it to 0. Chosen above what the lab's experiments and tests use
 * (at most about 1000 connections; requests complete in milliseconds). */
#define ECONN_DEFAULT_MAX_CONNS 10000              /* --max-conns, within RLIMIT_NOFILE */
#define ECONN_RESERVED_FDS 64                      /* descriptors kept for listeners, loops */
#define ECONN_DEFAULT_IDLE_TIMEOUT_NS (60 * NS_PER_S)   /* --idle-timeout */
#define ECONN_DEFAULT_HEADER_TIMEOUT_NS (10 * NS_PER_S) /* --header-timeout */

/* Sets cfg's connection limits to their defaults: max_conns ECONN_DEFAULT_MAX_CONNS, or the
 * soft RLIMIT_NOFILE less ECONN_RESERVED_FDS (less half of it, when that is less) when that
 * is lower (at least 1); max_children 0
 * (= max_conns); the idle and header timeouts. The protocol's limits are proto_cfg_defaults'. */
void econn_defaults(struct engine_cfg *cfg);

/* ---- per server ----------------------------------------------------------------------- */

struct econn_cfg {
	const struct engine_cfg *cfg;
	const struct proto *p;
	size_t in_max_bytes;     /* pending input beyond this closes the connection: the
				  * protocol's p->in_max_bytes(pcfg) plus two reads */
	size_t max_outbuf_bytes; /* pcfg.max_outbuf, or ECONN_DEFAULT_OUTBUF_BYTES */
	uint64_t sweep_ns;       /* timeout check period: 1/8 of the shortest of
				  * --idle-timeout / --header-timeout, within 10..1000 ms;
				  * 0 when neither is set */
};

/* Fills *ec from cfg (the defaults of struct proto_cfg apply to zero fields). */
void econn_cfg_init(struct econn_cfg *ec, const struct engine_cfg *cfg);

/* The protocol's environment for one connection: conn_id unique per server, ud the engine's
 * pointer for the hooks, join/publish NULL for engines or protocols without rooms. */
void econn_env_init(struct proto_env *env, const struct engine_cfg *cfg, uint64_t conn_id,
		    void *ud, int (*join)(struct proto_env *, const char *, size_t),
		    int (*publish)(struct proto_env *, const char *, size_t));

/* ---- per connection ------------------------------------------------------------------- */

/* Embedded in the engine's connection; zero-initialised storage is a valid new connection
 * (set last_ns to its start). in is freed by the engine (buf_free) when it frees the
 * connection. */
struct econn {
	struct buf in;             /* unconsumed input: a partial request only */
	uint64_t last_ns;          /* last input (the fork, prefork and gateway engines also
				    * count output progress) */
	uint64_t partial_since_ns; /* since when a partial request is pending; 0 = none */
	int closing;               /* the protocol ended the input (PROTO_ERROR, PROTO_F_CLOSE)
				    * or the engine did (EOF, stop): feed nothing more, close
				    * once the output is flushed */
};

/* One read(2) of up to ENGINE_READ_BUF bytes from fd: into rbuf (ENGINE_READ_BUF bytes,
 * shared by the caller's connections) while no partial request is pending, with *data =
 * rbuf; else (or when rbuf is NULL) straight behind the pending input in c->in, with *data =
 * NULL. Returns read's result (-1 with errno set; ENOMEM when c->in cannot grow). Pass *data
 * and the count to econn_input. */
ssize_t econn_read(struct econn *c, int fd, char *rbuf, const char **data);

/* Feeds the protocol (state: the connection's protocol state) the pending input c->in
 * followed by data[0..len): bytes just read; data NULL when the len bytes were read straight
 * into c->in (econn_read). While c->in is empty the new bytes are fed from where they are
 * and only an unconsumed rest is copied into c->in. Replies go to `out`.
 * Then: c->closing is set on PROTO_ERROR or PROTO_F_CLOSE, and the pending input dropped;
 * the rest stays in c->in; c->last_ns = now_ns; c->partial_since_ns is 0 when nothing is
 * pending, now_ns when a request completed (or a partial one started), else unchanged.
 * Returns 0, or -1 when the connection must be closed at once (no flush): pending input
 * over ec->in_max_bytes, or no memory to keep it. */
int econn_input(const struct econn_cfg *ec, struct econn *c, void *state, const char *data,
		size_t len, struct buf *out, uint64_t now_ns);

/* The end of a connection: the protocol's fini on its state (when the protocol has one) and
 * the pending input freed. The engine closes the socket and frees the rest. */
void econn_fini(const struct econn_cfg *ec, struct econn *c, void *state);

/* 1 when c is to be closed for a timeout at now_ns: its partial request is older than
 * --header-timeout, or it has been idle (no input) for --idle-timeout while no output is
 * queued (out_pending_bytes == 0: a connection whose peer does not read is not idle; engines
 * that count output progress in last_ns pass 0). */
int econn_expired(const struct econn_cfg *ec, const struct econn *c, size_t out_pending_bytes,
		  uint64_t now_ns);

/* The nearest timeout deadline of c (monotonic ns), 0 when no timeout applies. */
uint64_t econn_deadline_ns(const struct econn_cfg *ec, const struct econn *c);

/* A deadline as the timeout of ppoll(2): sets *ts to the time from now_ns to deadline_ns (0
 * when it has passed) and returns ts; returns NULL (no timeout) when deadline_ns is 0. */
struct timespec *econn_timeout(uint64_t deadline_ns, uint64_t now_ns, struct timespec *ts);

/* ---- output policy -------------------------------------------------------------------- */

/* What a connection waits for after a flush that left queued_bytes of output: EV_WRITE while
 * output is queued, with EV_READ too unless it is closing or ECONN_OUT_HIGH_BYTES or more are
 * queued (a client that does not read cannot make the server buffer without bound); EV_READ
 * alone when nothing is queued; 0 when it is closing and nothing is queued: it is done (shut
 * down its write side and close it). */
static inline int econn_interest(const struct econn *c, size_t queued_bytes)
{
	if (!queued_bytes)
		return c->closing ? 0 : EV_READ;
	if (c->closing || queued_bytes >= ECONN_OUT_HIGH_BYTES)
		return EV_WRITE;
	return EV_WRITE | EV_READ;
}

/* A room delivery to a connection whose protocol state is `state`: appends msg[0..len) to
 * out; or, when that would queue more than ec->max_outbuf_bytes (queued_bytes: its output
 * queued outside out, e.g. in a send in flight) or there is no memory, appends the
 * protocol's overflow line instead and returns -1: the receiver is a slow reader, gets
 * nothing more and is closed once its output is flushed. Else 0. */
static inline int econn_deliver(const struct econn_cfg *ec, void *state, struct buf *out,
				size_t queued_bytes, const char *msg, size_t len)
{
	if (buf_used(out) + queued_bytes + len <= ec->max_outbuf_bytes &&
	    !buf_append(out, msg, len))
		return 0;
	if (ec->p->overflow)
		ec->p->overflow(state, out);
	return -1;
}

/* On a core/ev loop: changes fd's interest from *cur to `mask` (removing what goes, adding
 * what comes, with callback fn(ud)) and records it in *cur. */
static inline void econn_set_mask(struct ev_loop *l, int fd, int *cur, int mask, ev_fd_fn *fn,
				  void *ud)
{
	if (mask == *cur)
		return;
	if (*cur & ~mask)
		ev_del(l, fd, *cur & ~mask);
	if (mask & ~*cur)
		ev_add(l, fd, mask & ~*cur, fn, ud);
	*cur = mask;
}

/* ---- accept policy -------------------------------------------------------------------- */

#define ECONN_ACCEPT_DONE 0  /* nothing to accept now (EAGAIN) or an unexpected error */
#define ECONN_ACCEPT_PAUSE 1 /* out of descriptors or memory: stop accepting for
			      * ECONN_ACCEPT_PAUSE_NS instead of spinning on the listener */
#define ECONN_ACCEPT_NEXT 2  /* that one connection failed (aborted, EINTR): accept on */

/* What a failed accept (-errno, as net_accept returns) means: ECONN_ACCEPT_*. */
int econn_accept_error(int err);

/* 1 when `live` connections fill --max-conns (then a new one is accepted and closed). */
int econn_full(const struct engine_cfg *cfg, int64_t live);

/* Opens the listener of worker i of n: worker 0 binds cfg->listen and sets *bound to what it
 * got (the port the kernel picked for port 0); workers 1.. bind *bound. SO_REUSEPORT when
 * n > 1; flags: NET_NONBLOCK or 0; backlog cfg->backlog or ECONN_DEFAULT_BACKLOG. Returns
 * the fd, or -errno after engine_fail(cfg, "cannot listen on 'ADDR': ..."). */
int econn_listen(const struct engine_cfg *cfg, int i, int n, int flags, struct net_addr *bound);

/* A new connection for the engine (nonblocking, close-on-exec). Returns 0 to go on
 * accepting, or < 0 when the engine ran out of descriptors itself: accepting pauses. The
 * engine owns fd (and applies --max-conns: econn_full). */
typedef int econn_take_fn(void *ud, int fd);

/* Accepting on a core/ev loop: up to ECONN_ACCEPT_BATCH connections per readiness, each
 * given to take(ud, fd); on ECONN_ACCEPT_PAUSE (or take < 0) the listener leaves the loop
 * for ECONN_ACCEPT_PAUSE_NS. Caller-owned storage that must outlive the loop's timers
 * (embed it in the worker). */
struct econn_acceptor {
	struct ev_loop *loop;
	int fd;                 /* the listener; -1 once closed */
	econn_take_fn *take;
	void *ud;
};

/* Starts accepting on lfd: 0, and the acceptor owns lfd; or -errno from ev_add, and the
 * caller still owns lfd. */
int econn_acceptor_start(struct econn_acceptor *a, struct ev_loop *l, int lfd,
			 econn_take_fn *take, void *ud);
/* Stops accepting and closes the listener; a no-op when closed. */
void econn_acceptor_close(struct econn_acceptor *a);

/* ---- workers: an engine run by N threads of one process (epoll, coro, uring) ----------- */

/* The server's state the workers share. The engines use it as their server: econn_srv_run
 * fills it before the first worker's init. */
struct econn_srv {
	struct econn_cfg ec;
	int nworkers;                 /* --workers, default 1; 1 for a protocol with rooms when
				       * the engine cannot share them across its loops */
	int shared;                   /* nworkers > 1: the rooms and whatever a worker may touch
				       * of another's connections are shared across threads */
	struct room_set *rooms;       /* the chat rooms, locked when shared (room.h) */
	atomic_int nconns;            /* live connections of all workers (--max-conns) */
	atomic_uint_fast64_t next_id; /* the next connection id, from 1 */
};

typedef int econn_worker_init_fn(struct econn_srv *s, void *w, int i, struct net_addr *bound);

/* Runs the engine cfg->engine_name: fills *s (rooms_shared 0: the engine cannot share rooms
 * across its loops, so a protocol with rooms runs one worker, with a warning that --workers
 * is ignored), allocates s->nworkers workers of `size` bytes (zeroed), inits them in order up
 * to the first failure, then (all set up) runs them, calling engine_ready(cfg, bound) once
 * their threads are started, and returns when every one has returned; last, finis each
 * worker whose init was called and frees the rooms. The engine's callbacks:
 *   init(s, w, i, bound): sets w up as worker i of s->nworkers, its listener included
 *     (econn_listen(s->ec.cfg, i, s->nworkers, ..., bound): worker 0 sets *bound); 0, or -1
 *     after engine_fail;
 *   run(w): runs w until it ends (worker 0 on the calling thread, the others on threads of
 *     their own);
 *   fini(w): releases what init set up, also after a failed init. A worker whose thread
 *     cannot be started is fini'd at once, while the others run (the stop is requested:
 *     they end as on SIGTERM), so that its listener leaves the SO_REUSEPORT group now
 *     rather than be routed connections nobody accepts.
 * Returns the exit code: 0, or 1 when a worker could not be set up or its thread not started
 * (reported). */
int econn_srv_run(struct econn_srv *s, const struct engine_cfg *cfg, int rooms_shared,
		  size_t size, econn_worker_init_fn *init, void *(*run)(void *w),
		  void (*fini)(void *w));

/* ---- event-loop workers (core/ev) ------------------------------------------------------ */

/* What a worker of the epoll and coro engines sets up around its connections. */
struct econn_loop {
	struct ev_loop *loop;
	struct econn_acceptor acc;
	char *rbuf; /* ENGINE_READ_BUF bytes, shared by the worker's connections (econn_read) */
};

/* Sets el up as worker i of n of engine ec->cfg->engine_name: a loop, its read buffer, its
 * nonblocking listener (econn_listen; bound as there) accepting into take(ud, fd), stop(ud)
 * on engine_stop_fd() and, when a timeout is set, sweep(ud) every ec->sweep_ns. Returns 0, or
 * -1 after engine_fail; econn_loop_fini releases what it set up in both cases. */
int econn_loop_init(struct econn_loop *el, const struct econn_cfg *ec, int i, int n,
		    struct net_addr *bound, econn_take_fn *take, ev_fd_fn *stop,
		    ev_timer_fn *sweep, void *ud);
/* Runs the loop until ev_stop; a failing wait is reported and ends it too. */
void econn_loop_run(struct econn_loop *el);
/* Closes the listener (a no-op when closed), frees the loop and the read buffer. */
void econn_loop_fini(struct econn_loop *el);

#endif
