/* client: the load side of a protocol, one file per protocol (client_http.c, client_echo.c,
 * client_sink.c, client_chat.c), chosen once per run by name (wrk's `struct sock` model: a
 * table of functions, no protocol test on the hot path).
 *
 * A client says three things about its protocol:
 *   - request framing: check() validates the protocol's own options, frame() builds the one
 *     message every send repeats (an HTTP request, a line of --size bytes); a fan-out client
 *     instead stamps every line it sends (stamp()) and may greet a new connection (greet()).
 *   - response parsing: parse() turns received bytes into answers, one call per answer (an
 *     indirect call per response, never per byte). Its state lives per connection
 *     (state_size bytes, owned by the load generator, set by reset(), released by fini()).
 *   - what counts as a message: the LOAD_C_* flags below, and the nouns the summary uses.
 * Adding a protocol: write client_NAME.c exporting `const struct load_client load_client_NAME`
 * and list it in client.c's table; nothing else in src/load changes.
 * Clients are read-only tables: any thread may use them; a state belongs to one connection
 * (the thread that owns it).
 */
#ifndef CTXLAB_LOAD_CLIENT_H
#define CTXLAB_LOAD_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

struct load_cfg;

/* What the user gave that a protocol may frame its message from (cmd/load fills it). */
struct load_client_opts {
	const char *hostport, *path;   /* from TARGET (path "/" when TARGET had none) */
	const char *method;            /* http: request method */
	const char *const *headers;    /* http: extra "Name: value" lines */
	size_t nheaders;
	const char *body;              /* http: request body, NULL = none */
	const char *message;           /* echo/sink: the message, NULL = size bytes */
	uint64_t size;                 /* message size in bytes */
	int have_size;                 /* --size was given */
};

/* One complete answer found by parse(). */
struct load_answer {
	int status;           /* LOAD_C_STATUS: the status code (100..999) */
	int close;            /* the server closes the connection after this answer */
	uint64_t sent_ns;     /* LOAD_C_FANOUT: the send time the delivered line carries */
	uint64_t intended_ns; /* LOAD_C_FANOUT: its intended send time (0 = not given) */
	int hello;            /* LOAD_C_FANOUT: not a delivery but another member's greeting
			       * (greet()'s last line), which proves both are in the room */
};

/* What counts as a message (struct load_client .flags). */
#define LOAD_C_REQRESP 1u    /* every message sent gets one answer, in order; latency runs
			      * from its send (or intended send); -n waits for every answer */
#define LOAD_C_SENDONLY 2u   /* nothing comes back: a message is done once queued; an unpaced
			      * run writes as fast as the socket takes bytes */
#define LOAD_C_FANOUT 4u     /* each line sent is delivered to the other connections (a
			      * room); an answer is a delivery, timed by its stamps; runs for a
			      * duration, drains deliveries at the end */
#define LOAD_C_STATUS 8u     /* answers carry a status: counted per code, non-2xx are errors */
#define LOAD_C_KEEPALIVE 16u /* --no-keepalive applies (a connection per request) */

struct load_client {
	const char *name;          /* --proto NAME, the "proto" key of the JSON */
	const char *summary;
	unsigned flags;            /* LOAD_C_* */
	const char *unit;          /* what one message is: "request", "message" */
	const char *answers;       /* the counted answers in the summary: "requests",
				    * "messages", "deliveries" */
	const char *scheme;        /* a default TARGET is SCHEME HOST:PORT "/" ("http://"), or
				    * NULL for a bare HOST:PORT */
	size_t state_size;         /* per connection; 0 = none */
	/* Options that do not fit this protocol: 0, or -EINVAL with err saying what to use.
	 * cfg is complete except for the message. May be NULL. */
	int (*check)(const struct load_cfg *cfg, char *err, size_t errlen);
	/* Builds the message every send repeats into msg and sets cfg->msg_len (and any other
	 * field of cfg it owns, e.g. http's head). note (may stay "") receives a warning for the
	 * user, such as a raised --size. 0, or -EINVAL with err. */
	int (*frame)(struct load_cfg *cfg, const struct load_client_opts *o, struct buf *msg,
		     char *note, size_t notelen, char *err, size_t errlen);
	/* A fresh connection (or one whose answers were lost). state zeroed before the first
	 * call. May be NULL when state_size is 0. */
	void (*reset)(void *state, const struct load_cfg *cfg);
	void (*fini)(void *state); /* may be NULL */
	/* Received bytes in[0..len) (len > 0), inflight = messages sent and not yet answered.
	 * Returns 1: an answer, *a filled, *used = the bytes up to its end;
	 *         0: *used (> 0) bytes consumed without a complete answer (call again with the
	 *            rest while some is left);
	 *        -1: malformed, or an answer nobody asked for: the connection is reset.
	 * NULL for LOAD_C_SENDONLY. */
	int (*parse)(void *state, const char *in, size_t len, uint64_t inflight, size_t *used,
		     struct load_answer *a);
	/* The server closed the connection with inflight > 0: 1 when that ended an answer
	 * (*a filled), 0 when not, -1 when the answer is cut short. May be NULL. */
	int (*eof)(void *state, struct load_answer *a);
	/* LOAD_C_FANOUT: bytes a new connection sends first into out: 0 or -errno. They join a
	 * room and end with a hello line that parse() reports (a->hello) when another member's
	 * hello reaches this one: the load starts its clock once one member has seen every
	 * other member's hello (then every member is in the room). */
	int (*greet)(void *state, const struct load_cfg *cfg, struct buf *out);
	/* LOAD_C_FANOUT: one line of `size` bytes (newline included) into line[0..cap) for
	 * sender id, sequence seq, sent at now_ns for intended_ns; returns its length, 0 when it
	 * cannot be formed. */
	size_t (*stamp)(char *line, size_t cap, size_t size, uint32_t id, uint64_t seq,
			uint64_t now_ns, uint64_t intended_ns);
};

/* The client for --proto NAME, NULL when unknown. */
const struct load_client *load_client_find(const char *name);
/* The table in order (NULL past its end). */
const struct load_client *load_client_at(size_t i);
/* "http, echo, sink or chat": the names for a usage message. */
const char *load_client_names(void);
/* The default load TARGET for protocol `proto` against a server at address "HOST:PORT"
 * (what `ctxlab load` is given when a server prints that address on its ready line):
 * "http://HOST:PORT/" for http, the bare address otherwise. 0, -ENOENT for an unknown
 * protocol, -ENAMETOOLONG when out (len bytes) is too small. */
int load_client_target(const char *proto, const char *address, char *out, size_t len);

#endif
