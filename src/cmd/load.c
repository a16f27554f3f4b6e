/* ctxlab load: option parsing and wiring; the work is in src/load/. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/buf.h"
#include "core/json.h"
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
	"  -c, --connections N    connections (default 10)\n"
	"  -t, --threads N        threads, each its own event loop (default: CPUs, <= connections)\n"
	"      --pipeline N       requests in flight per connection (default 1)\n"
	"  -d, --duration DUR     measured duration (default 10s unless -n)\n"
	"  -n, --requests N       send exactly N requests (after warm-up), wait for every answer\n"
	"      --warmup DUR       run this long first, excluded from every figure (default 0)\n"
	"  -R, --rate R           open loop: R requests (messages) per second in total\n"
	"      --bandwidth BW     per connection, e.g. 1Mbps (sink/echo; with --size/--message)\n"
	"  -P, --proto P          http (default), echo, sink, chat\n"
	"  -m, --method M         http method (default GET)\n"
	"  -H, --header 'N: V'    extra http header (repeatable)\n"
	"      --body STR         http request body\n"
	"      --no-keepalive     a new connection per request (latency includes the connect)\n"
	"      --message STR      echo/sink message (default: --size bytes of 'x' ending in \\n)\n"
	"      --size N           message size for echo/sink/chat (default 64)\n"
	"      --room NAME        chat room (default ctxlab)\n"
	"      --connect-rate R   open at most R new connections per second at start\n"
	"      --timeout DUR      an unanswered request is a timeout after DUR (default 10s; 0 = none)\n"
	"      --source A-B       spread connections over local IPv4 addresses (past 64k connections)\n"
	"      --latency-spectrum print the full percentile distribution (wrk2 format)\n"
	"      --json FILE|-      write every figure as JSON (- = stdout, the summary then goes to stderr)\n"
	"  -q, --quiet            no live line, no summary (errors still printed)\n"
	"\n"
	"Counts: sent = answered + errors + in flight at the end. Exit status 1 when nothing\n"
	"succeeded or the target could not be reached.\n";

static void on_signal(int sig)
{
	(void)sig;
	load_interrupt();
}

static int parse_u32(const char *opt, const char *s, uint32_t *v)
{
	uint64_t n;
	char err[160];
	if (units_parse_count(s, &n, err, sizeof(err)) < 0 || n > UINT32_MAX)
		return error("bad value '%s' for %s (use a whole number, e.g. 50)", s, opt);
	*v = (uint32_t)n;
	return 0;
}

static int cmd_load(int argc, char **argv)
{
	struct load_cfg cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.conns = 10;
	cfg.pipeline = 1;
	cfg.keepalive = 1;
	cfg.timeout_ns = 10 * 1000000000ULL;
	cfg.room = "ctxlab";
	const char *proto = "http", *method = "GET", *body = NULL, *message = NULL;
	const char *json_path = NULL, *source = NULL;
	const char *headers[MAX_HEADERS];
	size_t nheaders = 0;
	uint64_t size = 64;
	int spectrum = 0, quiet = 0, have_duration = 0, have_size = 0;
	uint32_t threads = 0;
	char err[256];
	static const struct option opts[] = {
		{"connections", required_argument, 0, 'c'},
		{"threads", required_argument, 0, 't'},
		{"pipeline", required_argument, 0, 'p'},
		{"duration", required_argument, 0, 'd'},
		{"requests", required_argument, 0, 'n'},
		{"warmup", required_argument, 0, 'w'},
		{"rate", required_argument, 0, 'R'},
		{"bandwidth", required_argument, 0, 'b'},
		{"proto", required_argument, 0, 'P'},
		{"method", required_argument, 0, 'm'},
		{"header", required_argument, 0, 'H'},
		{"body", required_argument, 0, 'B'},
		{"no-keepalive", no_argument, 0, 'K'},
		{"message", required_argument, 0, 'M'},
		{"size", required_argument, 0, 's'},
		{"room", required_argument, 0, 'r'},
		{"connect-rate", required_argument, 0, 'C'},
		{"timeout", required_argument, 0, 'T'},
		{"source", required_argument, 0, 'S'},
		{"latency-spectrum", no_argument, 0, 'L'},
		{"json", required_argument, 0, 'j'},
		{"quiet", no_argument, 0, 'q'},
		{0, 0, 0, 0},
	};
	optind = 1;
	int o;
	while ((o = getopt_long(argc, argv, "c:t:d:n:R:P:m:H:q", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			if (parse_u32("--connections", optarg, &cfg.conns) < 0)
				return 2;
			break;
		case 't':
			if (parse_u32("--threads", optarg, &threads) < 0)
				return 2;
			break;
		case 'p':
			if (parse_u32("--pipeline", optarg, &cfg.pipeline) < 0)
				return 2;
			break;
		case 'd':
			if (units_parse_duration_ns(optarg, &cfg.duration_ns, err, sizeof(err)) < 0)
				return error("%s", err), 2;
			have_duration = 1;
			break;
		case 'n':
			if (units_parse_count(optarg, &cfg.requests, err, sizeof(err)) < 0)
				return error("%s", err), 2;
			break;
		case 'w':
			if (units_parse_duration_ns(optarg, &cfg.warmup_ns, err, sizeof(err)) < 0)
				return error("%s", err), 2;
			break;
		case 'R':
			if (units_parse_rate_per_s(optarg, &cfg.rate_per_s, err, sizeof(err)) < 0)
				return error("%s", err), 2;
			break;
		case 'b':
			if (units_parse_bandwidth_bps(optarg, &cfg.bandwidth_bps, err, sizeof(err)) < 0)
				return error("%s", err), 2;
			break;
		case 'P':
			proto = optarg;
			break;
		case 'm':
			method = optarg;
			break;
		case 'H':
			if (nheaders == MAX_HEADERS)
				return error("more than %d headers", MAX_HEADERS), 2;
			headers[nheaders++] = optarg;
			break;
		case 'B':
			body = optarg;
			break;
		case 'K':
			cfg.keepalive = 0;
			break;
		case 'M':
			message = optarg;
			break;
		case 's':
			if (units_parse_size_bytes(optarg, &size, err, sizeof(err)) < 0)
				return error("%s", err), 2;
			have_size = 1;
			break;
		case 'r':
			cfg.room = optarg;
			break;
		case 'C':
			if (units_parse_rate_per_s(optarg, &cfg.connect_rate_per_s, err, sizeof(err)) < 0)
				return error("%s", err), 2;
			break;
		case 'T':
			if (units_parse_duration_ns(optarg, &cfg.timeout_ns, err, sizeof(err)) < 0)
				return error("%s", err), 2;
			break;
		case 'S':
			source = optarg;
			break;
		case 'L':
			spectrum = 1;
			break;
		case 'j':
			json_path = optarg;
			break;
		case 'q':
			quiet = 1;
			break;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		error("need exactly one target (e.g. 'ctxlab load -c 50 -d 10s http://127.0.0.1:8080/')");
		return 2;
	}
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

const struct cmd_info cmd_info_load = {"load", cmd_load,
				       "load generator: closed/open loop, bandwidth; http echo sink chat",
				       usage};
