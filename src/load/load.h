/* load: the load generator behind `ctxlab load` (wrk's design: one event loop per thread,
 * every counter and histogram owned by its thread and merged after join).
 *
 * Modes: closed loop (each connection keeps `pipeline` requests in flight), open loop
 * (rate_per_s total, dealt round-robin over the connections by pace.h; latency measured from
 * each request's intended send time, the uncorrected latency from the actual send kept
 * beside it) and bandwidth (bandwidth_bps per connection, turned into a message rate).
 * Protocols come from load/client.h, one file each: http, echo (a message counts when its echo
 * fully arrived), sink (send only), chat (every line a client sends is delivered to the other
 * clients of the room; latency = delivery time - send time, both embedded in the line). This
 * file keys its behaviour on the client's LOAD_C_* flags, never on a protocol's name.
 *
 * Every request sent in the measured window ends in exactly one place:
 *   messages_sent = answered + errors (connect excluded: those are connections, not
 *   requests) + unfinished (still in flight when a -d run ended)
 * where answered = requests (2xx, or every echo) + non-2xx answers.
 * Memory is O(connections * pipeline), never O(requests).
 * Only one load_run may run at a time in a process (load_interrupt is process-wide).
 */
#ifndef CTXLAB_LOAD_LOAD_H
#define CTXLAB_LOAD_LOAD_H

#include <stddef.h>
#include <stdint.h>

#include "core/hist.h"
#include "core/net.h"
#include "load/client.h"
#include "load/srcrange.h"

/* A send more than this after its intended time is a late send. */
#define LOAD_LATE_NS (1000 * 1000ULL)
#define LOAD_STATUS_MAX 1000

/* the line of cfg->announce_window */
#define LOAD_WINDOW_LINE "ctxlab-window: warmup"

/* The I/O mechanism (load_cfg.io): the protocol and measurement logic is the same on both. */
enum {
	LOAD_IO_AUTO,  /* uring where this kernel supports it (load/uio.h's probe), else epoll */
	LOAD_IO_EPOLL, /* readiness: core/ev.h, one recv/send syscall per read/write */
	LOAD_IO_URING, /* completions: one ring per thread, multishot recv into provided
			* buffers, every send of a loop turn submitted in one io_uring_enter */
};

struct load_cfg {
	struct net_addr target;
	const char *target_str;        /* as the user wrote it, for output */
	const struct load_client *client; /* the protocol (load_client_find) */
	uint32_t conns, threads, pipeline;
	double rate_per_s;             /* open loop: total messages/s; 0 = closed loop */
	double bandwidth_bps;          /* per connection (bits/s); sets rate_per_s when > 0 */
	uint64_t duration_ns;          /* measured window; 0 when requests > 0 */
	uint64_t requests;             /* -n: sends in the measured window; 0 = by duration */
	uint64_t warmup_ns;
	/* 1: write LOAD_WINDOW_LINE on stdout when the warm-up starts (every connection up, every
	 * fan-out member in its room): `ctxlab run` times the server's window from it */
	int announce_window;
	uint64_t timeout_ns;           /* a request unanswered this long is a timeout; 0 = none */
	double connect_rate_per_s;     /* new connections per second at start; 0 = all at once */
	const struct srcrange *source; /* NULL: the kernel picks the source address */
	/* the client's frame(): the message every send repeats (http: one complete request;
	 * echo/sink: one message); a fan-out client stamps each line: msg unused, msg_len = line
	 * size */
	const char *msg;
	size_t msg_len;
	int keepalive;                 /* http: 0 = a new connection per request */
	int head;                      /* http: the method is HEAD (responses have no body) */
	const char *room;              /* chat room */
	int live;                      /* a live line on stderr each second */
	uint64_t interval_ns;          /* > 0: also one latency HDR per interval of the window
					* (load_result.ivl); at most LOAD_MAX_INTERVALS of them (the
					* interval is widened to fit) */
	int io;                        /* LOAD_IO_*; 0 = LOAD_IO_AUTO */
};
#define LOAD_MAX_INTERVALS 128

struct load_result {
	uint64_t start_wall_ns;        /* CLOCK_REALTIME at the start of the measured window */
	double duration_s;             /* measured window */
	uint64_t requests;             /* completed successfully (http 2xx; echo messages) */
	uint64_t answered;             /* every complete response, any status */
	uint64_t messages_sent, bytes_sent, bytes_received;
	uint64_t late_sends;           /* open loop: sent > LOAD_LATE_NS late, or never sent */
	uint64_t unsent;               /* open loop: of late_sends, never sent at all */
	uint64_t unfinished;           /* in flight when the run ended */
	double target_rate_per_s;      /* 0 in closed loop */
	uint64_t err_connect, err_reset, err_timeout, err_parse, err_closed;
	uint64_t err_status;           /* answers outside 2xx */
	uint64_t status[LOAD_STATUS_MAX];
	uint64_t conns_opened;
	uint64_t chat_sent, chat_delivered, chat_expected;
	struct hist *lat;              /* corrected (= uncorrected in closed loop), ns */
	struct hist *lat_unc;          /* from the actual send, ns */
	double cpu_user_s, cpu_sys_s;  /* getrusage(RUSAGE_SELF) over the measured window */
	int interrupted;               /* Ctrl-C / load_interrupt */
	int ports_exhausted;           /* EADDRNOTAVAIL seen: suggest --source */
	char stop_reason[160];         /* why the run ended early, "" when it did not */
	/* cfg.interval_ns: ivl[k] holds the corrected latencies (as lat) of the answers that
	 * arrived in [k, k+1) x interval_ns from the window's start (answers after the window's
	 * end: in the last one), so that merging every ivl[k] gives exactly lat */
	int nintervals;
	uint64_t interval_ns;
	struct hist **ivl;
	const char *io;                /* the io path that ran: "epoll" or "uring" */
};

static inline uint64_t load_errors_total(const struct load_result *r)
{
	return r->err_connect + r->err_reset + r->err_timeout + r->err_parse + r->err_closed +
	       r->err_status;
}

/* Runs the load. Blocks until the run ends (duration, count, interrupt, or every connection
 * refused). Returns 0 with *res filled (release it with load_result_release), or -errno with
 * err saying why nothing could run: the target refused the first connection, no memory...
 * The caller decides the exit status from res (requests == 0 is a failure). */
int load_run(const struct load_cfg *cfg, struct load_result *res, char *err, size_t errlen);
void load_result_release(struct load_result *res);

/* Ends the current run early, as if the duration had passed. Async-signal-safe. */
void load_interrupt(void);

#endif
