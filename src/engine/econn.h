/* econn: what every engine does with a connection apart from waiting and switching.
 *
 * The lab compares engines that differ only in how they wait (blocking read, poll, epoll,
 * io_uring completions, coroutine parks) and how they switch (processes, threads,
 * coroutines, callbacks). Everything else is here, once, so that it cannot differ by accident:
 *   - limits: the bound of a connection's pending input and of its queued output, derived
 *     from the protocol limits (struct econn_cfg);
 *   - the feed loop: pending input to the protocol until it needs more, errs or asks to close,
 *     the rest kept as a partial request (econn_input);
 *   - timeouts arithmetic: the idle and header (slowloris) rules, the sweep period, the nearest
 *     deadline (econn_expired, econn_deadline_ns);
 *   - accept policy: what an accept error means, --max-conns, the listener(s) with their
 *     SO_REUSEPORT rule and their error message, and for core/ev loops an acceptor that pauses
 *     on EMFILE/ENFILE instead of spinning (econn_accept_*, econn_full, econn_listen,
 *     econn_acceptor_*);
 *   - starting N worker threads around a listener each (econn_threads_run).
 * Nothing here waits for I/O except econn_threads_run (which joins), and nothing allocates on
 * the hot path except econn_input, to keep a partial request in the connection's buffer.
 *
 * Threads: struct econn_cfg is read-only after econn_cfg_init (any thread); a struct econn and
 * a struct econn_acceptor belong to the thread that runs the connection / the loop.
 */
#ifndef CTXLAB_ENGINE_ECONN_H
#define CTXLAB_ENGINE_ECONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/ev.h"
#include "engine/engine.h"

#define ECONN_ACCEPT_BATCH 64                      /* accepts per listener readiness */
#define ECONN_ACCEPT_PAUSE_NS (100 * NS_PER_MS)    /* out of descriptors: wait this long */
#define ECONN_DEFAULT_BACKLOG 1024
#define ECONN_DEFAULT_OUTBUF_BYTES (1024 * 1024)   /* --max-outbuf default */

/* ---- per server ----------------------------------------------------------------------- */

struct econn_cfg {
	const struct engine_cfg *cfg;
	const struct proto *p;
	size_t in_max_bytes;     /* pending input beyond this closes the connection: the
				  * largest request the protocol accepts (body + header block +
				  * line) plus two reads */
	size_t max_outbuf_bytes; /* pcfg.max_outbuf, or ECONN_DEFAULT_OUTBUF_BYTES */
	uint64_t sweep_ns;       /* timeout check period: 1/8 of the shortest of
				  * --idle-timeout / --header-timeout, within 10..250 ms;
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

/* 1 when c is to be closed for a timeout at now_ns: its partial request is older than
 * --header-timeout, or it has been idle (no input) for --idle-timeout while no output is
 * queued (out_pending_bytes == 0: a connection whose peer does not read is not idle; engines
 * that count output progress in last_ns pass 0). */
int econn_expired(const struct econn_cfg *ec, const struct econn *c, size_t out_pending_bytes,
		  uint64_t now_ns);

/* The nearest timeout deadline of c (monotonic ns), 0 when no timeout applies. */
uint64_t econn_deadline_ns(const struct econn_cfg *ec, const struct econn *c);

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
 * the fd, or -errno after printing "cannot listen on 'ADDR': ..." . */
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

/* ---- worker threads ------------------------------------------------------------------- */

/* Runs n workers, each with its own listener already open: worker 0 on the calling thread,
 * workers 1..n-1 on threads of their own, and returns when every one has returned. ws is an
 * array of n workers of `size` bytes; run(w) runs one worker until it ends. engine_ready(cfg,
 * bound) is called once the threads are started. When thread i cannot be started the stop is
 * requested (the running workers end as on SIGTERM) and abandon(w) is called for each of the
 * workers i..n-1, which never run: it closes the worker's listener at once, so SO_REUSEPORT
 * routes no connection to a listener nobody accepts on.
 * Returns 0, or -errno when a thread could not be started (reported). */
int econn_threads_run(const struct engine_cfg *cfg, const struct net_addr *bound, void *ws,
		      size_t size, int n, void *(*run)(void *), void (*abandon)(void *));

#endif
