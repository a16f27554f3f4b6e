/* proto: protocols as byte-level state machines. No sockets, no threads, no clocks of their own.
 *
 * Every engine runs the same protocol code, so engines differ only in how they wait and switch.
 * The engine owns the connection's input and output buffers. It reads bytes, then calls
 *     n = p->feed(state, in, len, out, &flags)
 * with all unconsumed input (in[0..len)) and loops while n > 0:
 *     n > 0   n bytes consumed; reply bytes (if any) were appended to `out`
 *     PROTO_AGAIN (-2)  need more input: keep in[0..len) and read more, then present the same
 *             unconsumed prefix again with the new bytes behind it (a protocol may remember
 *             how far it has scanned, as http.c and chat.c do, so it must get the same
 *             prefix back; any split of the input gives the same replies)
 *     PROTO_ERROR (-1)  protocol error: `out` may hold a final reply (e.g. a 400); the engine
 *             sends it and closes the connection.
 * After a call, (flags & PROTO_F_CLOSE) asks the engine to close once `out` is flushed
 * (Connection: close, HTTP/1.0) and to stop feeding input.
 * feed never blocks and never allocates on the hot path except by growing `out`.
 *
 * Chat fan-out goes through hooks the engine provides in struct proto_env: the protocol
 * formats a message and calls env->publish; the engine delivers the bytes to every *other*
 * connection in the same room (appending them to that connection's output, in the order the
 * engine accepted the publishes). Per-connection output is bounded by the engine
 * (cfg->max_outbuf); a connection over the bound gets p->overflow()'s reason line appended and
 * is closed after it is flushed.
 * A protocol that publishes sets `fanout`: engines key their delivery machinery (wake-ups,
 * locked output buffers, keeping a room on one loop) on that flag, never on the name.
 *
 * Engines never name protocols. A protocol declares what an engine may need to know:
 *   fanout        (above) output can come from other connections;
 *   caps          PROTO_CAP_* flags: the wire shape, for engines that do not run this code
 *                 (an outside server such as nginx, an outside peer such as peers/go);
 *   in_max_bytes  the most unconsumed input it may ask the engine to keep (a partial
 *                 message under the limits of its cfg): the engine's input bound is this plus
 *                 its read slack, so a new protocol brings its own bound.
 * An engine declares the caps it needs (struct engine .needs in engine/engine.h); engines
 * that run struct proto code need none and speak every protocol in the table.
 */
#ifndef CTXLAB_PROTO_PROTO_H
#define CTXLAB_PROTO_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"

#define PROTO_ERROR (-1)
#define PROTO_AGAIN (-2)
#define PROTO_F_CLOSE 1

/* The defaults of the limits below, stated once (proto_cfg_defaults, http.c, chat.c). */
#define PROTO_DEFAULT_MAX_REQUEST_LINE 8192
#define PROTO_DEFAULT_MAX_HEADERS 100
#define PROTO_DEFAULT_MAX_HEADER_BYTES 16384
#define PROTO_DEFAULT_MAX_BODY (1024 * 1024)
#define PROTO_DEFAULT_MAX_LINE (64 * 1024)
#define PROTO_DEFAULT_MAX_OUTBUF (1024 * 1024)

struct proto_cfg {
	/* http limits (0 = default) */
	size_t max_request_line;  /* default 8 KiB; over it: 414 (see http.c) */
	size_t max_headers;       /* default 100; over it: 431 */
	size_t max_header_bytes;  /* default 16 KiB; over it: 431 */
	size_t max_body;          /* default 1 MiB; over it: 413 */
	/* chat */
	size_t max_line;          /* default 64 KiB */
	size_t max_outbuf;        /* engine-enforced output bound per connection, default 1 MiB */
	size_t max_rooms;         /* engine-enforced bound on rooms at once (a join that would
				   * create one more fails: chat's "too many rooms" line);
				   * default PROTO_DEFAULT_MAX_ROOMS, 0 = no bound */
	/* work knobs applied per message (sink/echo/chat: per line; http: per request) */
	uint64_t work_cpu_us;
	uint64_t work_mem_bytes;
	uint64_t work_stride_bytes;
	/* http: server-side caps of a /work request's own cpu_us and mem (a request over a cap
	 * is answered 400); set by proto_cfg_defaults, 0 = no cap beyond the hard limits
	 * (10 s, 1 GiB) */
	uint64_t work_max_cpu_us;
	uint64_t work_max_mem_bytes;
	/* http: /api/NAME functions other than the built-in "hello" (NAME is [a-z0-9_-]{1,64}).
	 * fn_call runs function NAME on the request body and returns the status to answer (200
	 * with the output appended to body; 404: no such function; 502, 504: it failed, it ran too
	 * long) with, for an error, a one-line reason in body. NULL: only hello (404 otherwise).
	 * Set by whoever starts the server (serve --functions: the exec mechanics are core/fnexec);
	 * it runs on the engine's thread that serves the connection, and may block it. */
	int (*fn_call)(const struct proto_cfg *cfg, const char *name, const char *in, size_t inlen,
		       struct buf *body);
	const char *fn_dir;       /* for fn_call: the directory of the functions */
	uint64_t fn_timeout_ns;   /* for fn_call: a run's time limit */
	size_t fn_max_output;     /* for fn_call: a run's largest output */
};

#define PROTO_DEFAULT_MAX_ROOMS 1024
#define PROTO_DEFAULT_WORK_MAX_CPU_US 1000000ULL          /* 1 s */
#define PROTO_DEFAULT_WORK_MAX_MEM_BYTES (64ULL << 20)   /* 64 MiB */

/* The defaults of every limit above (what `ctxlab serve` starts from). */
void proto_cfg_defaults(struct proto_cfg *cfg);

struct proto_env {
	const struct proto_cfg *cfg;
	uint64_t conn_id;        /* unique per server (per process tree), assigned by the engine */
	void *engine_ud;         /* engine's own pointer for the hooks */
	/* chat hooks (NULL for engines' non-chat use): 0 or -errno.
	 * chat calls join(env, "lobby") from init, and once more when the connection's first
	 * non-empty line is `/join ROOM` with ROOM != "lobby": a join MOVES the connection (it
	 * leaves its current room). env must stay valid until fini. */
	int (*join)(struct proto_env *env, const char *room, size_t room_len);
	int (*publish)(struct proto_env *env, const char *msg, size_t len);
};

/* Capability flags of a protocol (struct proto .caps). */
#define PROTO_CAP_HTTP1 1u /* the wire is plain HTTP/1.1 request/response: an outside HTTP
			    * server (nginx) can stand in for this code */
#define PROTO_CAP_PEER 2u  /* the outside peers (peers/go) implement it too: set it when a
			    * peer learns the protocol, not before */

struct proto {
	const char *name;
	const char *summary;
	size_t state_size;                               /* engine allocates this per connection */
	int (*init)(void *state, struct proto_env *env); /* 0 or -errno; sends nothing (no
							  * greeting: output comes from feed) */
	ssize_t (*feed)(void *state, const char *in, size_t len, struct buf *out, int *flags);
	void (*overflow)(void *state, struct buf *out);  /* reason line for an output overflow; may be NULL */
	void (*fini)(void *state);                       /* may be NULL */
	/* The most unconsumed input feed may leave to the engine under cfg's limits (0 = its
	 * defaults): a partial message. Required. */
	size_t (*in_max_bytes)(const struct proto_cfg *cfg);
	int fanout;        /* 1: calls env->publish, so a connection's output can grow from
			    * other connections (chat); 0: output comes only from its own feed */
	unsigned caps;     /* PROTO_CAP_* */
};

const struct proto *proto_find(const char *name); /* NULL when unknown */
const struct proto *proto_at(size_t i);           /* the table in order; NULL past its end */
const char *proto_names(void);                    /* the table's names, space-separated */

/* The work knob (burn CPU, touch a working set): used by every protocol. Thread-safe: the
 * working-set buffer is per thread. */
void proto_work(uint64_t cpu_us, uint64_t mem_bytes, uint64_t stride_bytes);

#endif
