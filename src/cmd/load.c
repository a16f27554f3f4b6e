/* ctxlab load: option parsing and wiring; the work is in src/load/. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/clock.h"
#include "core/opt.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/lifeline.h"
#include "core/log.h"
#include "core/outfile.h"
#include "core/units.h"
#include "load/client.h"
#include "load/httpreq.h"
#include "load/load.h"
#include "load/loadout.h"
#include "load/srcrange.h"

#define MAX_HEADERS 64

static const char usage[] =
	"usage: ctxlab load [options] TARGET\n"
	"\n"
	"Load generator: closed loop (default), open loop (--rate, coordinated-omission corrected)\n"
	"or per-connection bandwidth (--bandwidth). TARGET is HOST:PORT or http://HOST:PORT/path.\n"
	"\n"
	"options:\n";

static const char usage_tail[] =
	"\n"
	"Counts: sent = answered + errors + in flight at the end. Exit status 1 when nothing\n"
	"succeeded or the target could not be reached.\n";

static void on_signal(int sig)
{
	(void)sig;
	load_interrupt();
}

extern const struct cmd_info cmd_info_load;

static struct load_cfg cfg = {
	.conns = 10,
	.pipeline = 1,
	.keepalive = 1,
	.timeout_ns = 10 * 1000000000ULL,
	.room = "ctxlab",
};
static const char *proto = "http", *method = "GET", *body, *message, *json_path, *source;
static const char *headers[MAX_HEADERS];
static size_t nheaders;
static uint64_t size = 64;
static int spectrum, quiet, have_duration, have_size, no_keepalive, control_stdin, json_hist;
static uint32_t threads;

static int opt_u32(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	uint64_t n;
	if (units_parse_count(arg, &n, err, errlen) < 0 || n > UINT32_MAX) {
		snprintf(err, errlen, "a whole number, e.g. 50");
		return -1;
	}
	*(uint32_t *)o->value = (uint32_t)n;
	return 0;
}

static int opt_duration(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	if (units_parse_duration_ns(arg, o->value, err, errlen) < 0)
		return -1;
	if (o->value == &cfg.duration_ns)
		have_duration = 1;
	return 0;
}

static int opt_interval(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	if (units_parse_duration_ns(arg, o->value, err, errlen) < 0)
		return -1;
	if (*(uint64_t *)o->value < 10 * NS_PER_MS)
		return errbuf(err, errlen, "at least 10ms");
	return 0;
}

static int opt_rate(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	return units_parse_rate_per_s(arg, o->value, err, errlen) < 0 ? -1 : 0;
}

static int opt_bandwidth(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	return units_parse_bandwidth_bps(arg, o->value, err, errlen) < 0 ? -1 : 0;
}

static int opt_size(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	if (units_parse_size_bytes(arg, &size, err, errlen) < 0)
		return -1;
	have_size = 1;
	return 0;
}

static int opt_io(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	if (!strcmp(arg, "auto"))
		cfg.io = LOAD_IO_AUTO;
	else if (!strcmp(arg, "epoll"))
		cfg.io = LOAD_IO_EPOLL;
	else if (!strcmp(arg, "uring"))
		cfg.io = LOAD_IO_URING;
	else
		return errbuf(err, errlen, "auto, epoll or uring");
	return 0;
}

static int opt_header(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	if (nheaders == MAX_HEADERS) {
		snprintf(err, errlen, "more than %d headers", MAX_HEADERS);
		return -1;
	}
	headers[nheaders++] = arg;
	return 0;
}

static const struct opt options[] = {
	OPT_CALLBACK('c', "connections", &cfg.conns, "N", "connections (default 10)", opt_u32),
	OPT_CALLBACK('t', "threads", &threads, "N",
		     "threads, each its own event loop (default: CPUs, <= connections)", opt_u32),
	OPT_CALLBACK(0, "pipeline", &cfg.pipeline, "N", "requests in flight per connection (default 1)",
		     opt_u32),
	OPT_CALLBACK('d', "duration", &cfg.duration_ns, "DUR",
		     "measured duration (default 10s unless -n)", opt_duration),
	OPT_COUNT('n', "requests", &cfg.requests, "N",
		  "send exactly N requests (after warm-up), wait for every answer"),
	OPT_CALLBACK(0, "warmup", &cfg.warmup_ns, "DUR",
		     "run this long first, excluded from every figure (default 0)", opt_duration),
	OPT_CALLBACK('R', "rate", &cfg.rate_per_s, "R",
		     "open loop: R requests (messages) per second in total", opt_rate),
	OPT_CALLBACK(0, "bandwidth", &cfg.bandwidth_bps, "BW",
		     "per connection, e.g. 1Mbps (sink/echo; with --size/--message)", opt_bandwidth),
	OPT_STRING('P', "proto", &proto, "P", "http (default), echo, sink, chat"),
	OPT_STRING('m', "method", &method, "M", "http method (default GET)"),
	OPT_CALLBACK('H', "header", NULL, "'N: V'", "extra http header (repeatable)", opt_header),
	OPT_STRING(0, "body", &body, "STR", "http request body"),
	OPT_FLAG(0, "no-keepalive", &no_keepalive,
		 "a new connection per request (latency includes the connect)"),
	OPT_STRING(0, "message", &message, "STR",
		   "echo/sink message (default: --size bytes of 'x' ending in \\n)"),
	OPT_CALLBACK(0, "size", &size, "N", "message size for echo/sink/chat (default 64)", opt_size),
	OPT_STRING(0, "room", &cfg.room, "NAME",
		   "chat room (default ctxlab); the run starts once every member is in it"),
	OPT_CALLBACK(0, "connect-rate", &cfg.connect_rate_per_s, "R",
		     "open at most R new connections per second at start", opt_rate),
	OPT_CALLBACK(0, "timeout", &cfg.timeout_ns, "DUR",
		     "an unanswered request is a timeout after DUR (default 10s; 0 = none)",
		     opt_duration),
	OPT_STRING(0, "source", &source, "A-B",
		   "spread connections over local IPv4 addresses (past 64k connections)"),
	OPT_FLAG(0, "latency-spectrum", &spectrum,
		 "print the full percentile distribution (wrk2 format)"),
	OPT_STRING(0, "json", &json_path, "FILE|-",
		   "write every figure as JSON (- = stdout, the summary then goes to stderr)"),
	OPT_CALLBACK(0, "intervals", &cfg.interval_ns, "DUR",
		     "with --json: the latency of every DUR of the window (percentiles and\n"
		     "HDR buckets, exact and mergeable; at most 128 intervals)", opt_interval),
	OPT_CALLBACK(0, "io", NULL, "IO",
		     "I/O mechanism: uring (io_uring: multishot recv into provided buffers,\n"
		     "one submission per loop turn for every send), epoll, or auto (default:\n"
		     "uring where the kernel allows it, else epoll with a note)", opt_io),
	OPT_FLAG('q', "quiet", &quiet, "no live line, no summary (errors still printed)"),
	OPT_FLAG(0, "control-stdin", &control_stdin,
		 "stdin is the control channel of 'ctxlab run': print '" LIFELINE_WAITING "', "
		 "start at a line 'go', print '" LOAD_WINDOW_LINE "' when the warm-up starts, "
		 "stop when stdin closes"),
	OPT_FLAG(0, "json-hist", &json_hist,
		 "add the latency histograms, encoded, to the JSON (for an exact merge)"),
	OPT_END(),
};

static int cmd_load(int argc, char **argv)
{
	char err[256];
	int nops = cmd_parse_options(&cmd_info_load, argc, argv, 0, NULL);
	if (nops < 0)
		return 2;
	if (nops != 1) {
		error("need exactly one target (e.g. 'ctxlab load -c 50 -d 10s http://127.0.0.1:8080/')");
		return 2;
	}
	if (no_keepalive)
		cfg.keepalive = 0;
	const int optind = 0; /* the operand is argv[0] */
	const char *target = argv[optind];
	cfg.target_str = target;
	cfg.client = load_client_find(proto);
	if (!cfg.client)
		return error("unknown protocol '%s' (use %s)", proto, load_client_names()), 2;
	if (!cfg.conns || !cfg.pipeline || size == 0 || size > 1 << 20)
		return error("connections, pipeline and size must be > 0 (size <= 1MiB)"), 2;
	if (cfg.rate_per_s > 0 && cfg.bandwidth_bps > 0)
		return error("give --rate or --bandwidth, not both"), 2;
	if (!cfg.keepalive && cfg.pipeline > 1)
		return error("--no-keepalive sends one request per connection: drop --pipeline"), 2;
	if (cfg.requests && have_duration)
		return error("give -d or -n, not both"), 2;
	if (!cfg.requests && !have_duration)
		cfg.duration_ns = 10 * 1000000000ULL;
	if (cfg.client->check && cfg.client->check(&cfg, err, sizeof(err)) < 0)
		return error("%s", err), 2;
	if (!have_duration && cfg.duration_ns == 0 && !cfg.requests)
		return error("the duration must be > 0"), 2;

	char hostport[256], path[2048];
	if (httpreq_split_url(target, hostport, sizeof(hostport), path, sizeof(path), err,
			      sizeof(err)) < 0)
		return error("%s", err), 2;
	if (net_parse(hostport, &cfg.target, err, sizeof(err)) < 0)
		return error("%s", err), 2;

	struct srcrange src;
	if (source) {
		if (srcrange_parse(source, &src, err, sizeof(err)) < 0)
			return error("%s", err), 2;
		if (cfg.target.ss.ss_family != AF_INET)
			return error("--source takes IPv4 addresses: the target '%s' is not IPv4", target), 2;
		cfg.source = &src;
	}

	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (!threads)
		threads = ncpu > 0 ? (uint32_t)ncpu : 1;
	if (threads > cfg.conns)
		threads = cfg.conns;
	cfg.threads = threads;

	struct buf msg = BUF_INIT;
	const struct load_client_opts co = {
		.hostport = hostport,
		.path = path,
		.method = method,
		.headers = headers,
		.nheaders = nheaders,
		.body = body,
		.message = message,
		.size = size,
		.have_size = have_size,
	};
	char note[256] = "";
	if (cfg.client->frame(&cfg, &co, &msg, note, sizeof(note), err, sizeof(err)) < 0) {
		buf_free(&msg);
		return error("%s", err), 2;
	}
	if (note[0])
		warn("%s", note);
	cfg.msg = buf_head(&msg);

	FILE *out = stdout;
	if (json_path && !strcmp(json_path, "-"))
		out = stderr;
	cfg.live = !quiet && isatty(STDERR_FILENO);

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (control_stdin) {
		cfg.announce_window = 1; /* the run times the server's window from it */
		int g = lifeline_wait_go();
		if (g < 0 || lifeline_start(3 * 1000000000ULL) < 0) {
			buf_free(&msg);
			error("--control-stdin: %s", g < 0 ? "the run closed the control channel "
			      "before the start" : "cannot watch stdin");
			return 1;
		}
	}

	struct load_result res;
	int rc = load_run(&cfg, &res, err, sizeof(err));
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	if (rc < 0) {
		buf_free(&msg);
		error("%s", err);
		return 1;
	}
	if (!quiet) {
		loadout_summary(out, &cfg, &res);
		if (spectrum)
			loadout_spectrum(out, &res);
	}
	int status = 0;
	if (json_path) {
		struct jw w;
		jw_init(&w);
		if (json_hist)
			loadout_json_hist(&w, &cfg, &res);
		else
			loadout_json(&w, &cfg, &res);
		if (w.oom) {
			error("out of memory writing the JSON result");
			status = 1;
		} else if (!strcmp(json_path, "-")) {
			fwrite(w.buf, 1, w.len, stdout);
			fputc('\n', stdout);
			fflush(stdout);
		} else {
			char *doc = w.buf;
			size_t len = w.len;
			int r = outfile_write(json_path, doc, len, OUTFILE_NAMED);
			if (r < 0) {
				error("cannot write '%s': %s (check the directory exists)", json_path,
				      outfile_strerror(r));
				status = 1;
			}
		}
		jw_release(&w);
	}
	if (res.ports_exhausted)
		warn("ephemeral ports exhausted (EADDRNOTAVAIL): spread connections over more source "
		     "addresses with --source 127.0.0.2-127.0.0.20");
	if (res.stop_reason[0])
		warn("the run ended early: %s", res.stop_reason);
	if (!res.requests) {
		error("nothing succeeded: %s", res.stop_reason[0] ? res.stop_reason
				: load_errors_total(&res) ? "every request failed (see the error counts)"
							  : "no request was answered");
		status = 1;
	}
	load_result_release(&res);
	buf_free(&msg);
	return status;
}

const struct cmd_info cmd_info_load = {
	"load", cmd_load, "load generator: closed/open loop, bandwidth; http echo sink chat", usage,
	options, usage_tail};
