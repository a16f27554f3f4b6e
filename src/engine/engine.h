/* engine: concurrency models that run any protocol (see proto/proto.h). Engines know sockets,
 * processes, threads and waiting; they never look inside the bytes.
 *
 * `ctxlab serve` fills a struct engine_cfg, installs SIGINT/SIGTERM handlers that call
 * engine_request_stop(), and calls e->run(cfg). The engine:
 *   1. creates its listening socket(s) on cfg->listen (port 0 = ephemeral; with --workers N
 *      and SO_REUSEPORT the first bound port is reused by the others),
 *   2. calls engine_ready(cfg, &bound) exactly once when it accepts connections (this prints
 *      "listening on HOST:PORT engine=E proto=P pid=PID" to stdout and flushes),
 *   3. serves until engine_stop_requested(); then stops accepting, finishes in-flight work for
 *      at most 2 s, closes everything, reaps every child process and returns 0.
 * Every engine uses the same buffer sizes (ENGINE_READ_BUF) and write strategy: read up to
 * ENGINE_READ_BUF, feed the protocol, write the whole output, no per-request printing.
 */
#ifndef CTXLAB_ENGINE_ENGINE_H
#define CTXLAB_ENGINE_ENGINE_H

#include <sched.h>
#include <signal.h>
#include <stdint.h>

#include "core/net.h"
#include "proto/proto.h"

#define ENGINE_READ_BUF 16384
#define ENGINE_STOP_GRACE_NS (2ULL * 1000000000ULL)

struct engine_cfg {
	const char *engine_name;
	const struct proto *proto;
	struct proto_cfg pcfg;
	struct net_addr listen;
	int workers;               /* prefork processes / epoll loops; 0 = engine default */
	int max_conns;             /* 0 = unlimited; beyond it new connections are accepted and closed
				    * (fork: see max_children); serve's default: econn_defaults */
	int max_children;          /* fork: live children; at the cap the engine stops accepting
				    * (connections wait in the backlog); 0 = max_conns */
	uint64_t idle_timeout_ns;  /* 0 = none: close a connection idle this long */
	uint64_t header_timeout_ns;/* 0 = none: close a connection whose request is incomplete this long (slowloris) */
	int backlog;               /* default 1024 */
	const char *peer_bin;      /* external engines (go): path of the peer binary, NULL = default */
	const char *handoff;       /* gateway: "proxy" or "fdpass"; NULL = fdpass */
	const char *balance;       /* gateway: "rr" or "least-conn"; NULL = rr */
	int sqpoll;                /* uring: IORING_SETUP_SQPOLL, a kernel submission thread per
				    * ring (a thread of the server, counted in its CPU) */
	/* Set-up errors: the engine writes the first one here (engine_fail) and run returns
	 * non-zero; `ctxlab serve` prints it. NULL: engine_fail prints it through the logger.
	 * Run-time trouble (a worker died, an event loop failed) goes through core/log.h. */
	char *err;
	size_t errlen;
};

/* An engine names no protocol. One that runs struct proto code (every in-tree engine) needs
 * nothing and speaks every protocol in the table; one that stands an outside program in for
 * that code needs the protocol capabilities the program provides (nginx: PROTO_CAP_HTTP1; the
 * Go peer: PROTO_CAP_PEER). */
struct engine {
	const char *name;
	const char *summary;
	unsigned needs;            /* PROTO_CAP_* a protocol must all have; 0 = any protocol */
	int (*run)(const struct engine_cfg *cfg); /* returns the exit code */
};

const struct engine *engine_find(const char *name);
const char *engine_names(void);          /* space-separated, in table order */
/* 1 when e can serve p (p's caps include e->needs), else 0. */
int engine_speaks(const struct engine *e, const struct proto *p);
/* The protocols e speaks, space-separated in table order, into buf (whole names only, as many
 * as fit in len); returns buf. */
char *engine_protos(const struct engine *e, char *buf, size_t len);

/* Stop handling, async-signal-safe. engine_stop_fd() is an eventfd that becomes readable
 * when a stop is requested: engines poll/epoll it next to their listeners. */
void engine_request_stop(void);
int engine_stop_requested(void);
int engine_stop_fd(void);
void engine_stop_reset(void); /* in a freshly forked child that serves independently */

/* Records a set-up error in cfg->err (the first one wins: later ones are consequences) or,
 * without a buffer, prints it through the logger. Thread-safe. Returns -1, so
 * `return engine_fail(cfg, ...)` works. */
int engine_fail(const struct engine_cfg *cfg, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Prints the ready line once (thread-safe). */
void engine_ready(const struct engine_cfg *cfg, const struct net_addr *bound);

#endif
