/* serve: runs a server under test, `--engine` x `--proto`. Option parsing and wiring only. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/log.h"
#include "core/net.h"
#include "core/units.h"
#include "engine/econn.h"
#include "engine/engine.h"
#include "proto/proto.h"

static const char usage[] =
	"usage: ctxlab serve [--engine E] [--proto P] [--listen HOST:PORT] [options]\n"
	"\n"
	"Runs a server under test: one concurrency engine speaking one protocol. Every engine\n"
	"runs the same protocol code, so engines differ only in how they wait and switch.\n"
	"When it accepts connections it prints exactly one line to stdout:\n"
	"    listening on HOST:PORT engine=E proto=P pid=PID\n"
	"SIGINT/SIGTERM stop accepting, finish in-flight work within 2 s and exit 0.\n"
	"\n"
	"options:\n"
	"    --engine E             concurrency engine (default epoll); --list-engines shows them\n"
	"    --proto P              protocol: sink, echo, http, chat (default http)\n"
	"    --listen HOST:PORT     address to listen on (default 127.0.0.1:7000; port 0 picks a\n"
	"                           free port, printed in the ready line); [::1]:PORT for IPv6\n"
	"    --workers N            epoll, uring: event loops (threads, SO_REUSEPORT each);\n"
	"                           prefork, gateway: processes; nginx: worker_processes;\n"
	"                           go: GOMAXPROCS\n"
	"    --cpus LIST            CPU affinity of the whole server, e.g. 0 or 0-1,3\n"
	"    --max-conns N          connections served at once; beyond it new ones are accepted\n"
	"                           and closed (fork: left in the backlog, see --max-children);\n"
	"                           default 10000, or when lower the open-file limit less 64\n"
	"                           (less half of it, for a limit under 128); 0 = unlimited\n"
	"    --max-children N       fork: live child processes; at the cap the server stops\n"
	"                           accepting (connections wait in the backlog) rather than fork\n"
	"                           (default: --max-conns; 0 = --max-conns)\n"
	"    --idle-timeout D       close a connection that sends nothing for D while none of\n"
	"                           its output is pending (default 60s; 0 = never)\n"
	"    --header-timeout D     close a connection whose request stays incomplete for D\n"
	"                           (slowloris; default 10s; 0 = never)\n"
	"    --backlog N            listen backlog (default 1024)\n"
	"    --work-cpu-us N        burn N us of CPU per message (http: per request; sink, echo,\n"
	"                           chat: per line)\n"
	"    --work-mem SIZE        touch a working set of SIZE per message (e.g. 64k, 1M)\n"
	"    --work-stride SIZE     stride of that touch (default 64)\n"
	"    --work-max-cpu-us N    http: largest cpu_us a /work request may ask for; above it\n"
	"                           the answer is 400 naming the cap (default 1000000 = 1 s;\n"
	"                           0 = the hard limit, 10 s)\n"
	"    --work-max-mem SIZE    http: largest mem a /work request may ask for, else 400\n"
	"                           (default 64M; 0 = the hard limit, 1G)\n"
	"    --max-request-line SIZE  http: longest request line (default 8k)\n"
	"    --max-headers N        http: most header fields (default 100)\n"
	"    --max-header-bytes SIZE  http: largest header block (default 16k, then 431)\n"
	"    --max-body SIZE        http: largest request body (default 1M, then 413)\n"
	"    --max-line SIZE        chat: longest line (default 64k)\n"
	"    --max-outbuf SIZE      output queued per connection before a slow chat reader is\n"
	"                           disconnected (default 1M)\n"
	"    --max-rooms N          chat: rooms at once; a /join that would open one more is\n"
	"                           answered \"* error: too many rooms ...\" and closed (default\n"
	"                           1024; 0 = unlimited). An emptied room is freed (fork,\n"
	"                           prefork: its log file is removed)\n"
	"    --peer-bin PATH        go: the peer binary (default $CTXLAB_GO_PEER, else\n"
	"                           ctxlab-peer-go next to ctxlab)\n"
	"    --handoff MODE         gateway: how the front hands a connection to a worker:\n"
	"                           fdpass (default; the client socket moves to the worker with\n"
	"                           SCM_RIGHTS) or proxy (the front relays bytes both ways)\n"
	"    --list-engines         print the engines that exist, one \"NAME PROTOS\" line each\n"
	"    -h, --help             this text\n"
	"\n"
	"Every limit on what clients can make the server hold is on by default; 0 turns one off.\n"
	"Durations take ns, us, ms, s, m, h (a bare number is seconds); sizes take k, M, G\n"
	"(binary). Bad values exit with status 2.\n"
	"\n"
	"examples:\n"
	"    ctxlab serve --engine epoll --proto http --listen 127.0.0.1:8080 --cpus 0\n"
	"    ctxlab serve --engine thread --proto chat --listen :0 --max-conns 1000\n"
	"    ctxlab serve --engine fork --proto http --max-children 200 --idle-timeout 0\n"
	"    ctxlab serve --engine nginx --proto http --workers 2\n"
	"    ctxlab serve --engine gateway --handoff proxy --workers 2\n";

static int cmd_serve(int argc, char **argv);

const struct cmd_info cmd_info_serve = {"serve", cmd_serve,
					"run a server under test: --engine x --proto", usage};

static void on_stop(int sig)
{
	(void)sig;
	engine_request_stop();
}

static int bad(const char *opt, const char *val, const char *why)
{
	error("bad value '%s' for %s: %s", val, opt, why);
	return 2;
}

static int parse_int(const char *opt, const char *val, int min, int *out)
{
	uint64_t n;
	char err[256];
	if (units_parse_count(val, &n, err, sizeof(err)) < 0)
		return bad(opt, val, err);
	if (n < (uint64_t)min || n > INT_MAX) {
		char why[64];
		snprintf(why, sizeof(why), "use a whole number from %d to %d", min, INT_MAX);
		return bad(opt, val, why);
	}
	*out = (int)n;
	return 0;
}

static int parse_size(const char *opt, const char *val, uint64_t *out)
{
	char err[256];
	if (units_parse_size_bytes(val, out, err, sizeof(err)) < 0)
		return bad(opt, val, err);
	return 0;
}

static int parse_size_t(const char *opt, const char *val, size_t *out)
{
	uint64_t v;
	int r = parse_size(opt, val, &v);
	if (!r)
		*out = (size_t)v;
	return r;
}

static int parse_dur(const char *opt, const char *val, uint64_t *out)
{
	char err[256];
	if (units_parse_duration_ns(val, out, err, sizeof(err)) < 0)
		return bad(opt, val, err);
	return 0;
}

static int list_engines(void)
{
	char names[256];
	snprintf(names, sizeof(names), "%s", engine_names());
	for (char *p = names, *end; *p; p = end) {
		end = strchr(p, ' ');
		if (end)
			*end++ = 0;
		else
			end = p + strlen(p);
		const struct engine *e = engine_find(p);
		char protos[256];
		if (e)
			printf("%s %s\n", e->name, engine_protos(e, protos, sizeof(protos)));
	}
	return 0;
}

static int cmd_serve(int argc, char **argv)
{
	/* static: engine threads may outlive this frame by a moment at exit */
	static struct engine_cfg cfg;
	const char *engine = "epoll", *proto = "http", *listen = "127.0.0.1:7000";
	const char *cpus = NULL;
	int r;

	memset(&cfg, 0, sizeof(cfg));
	econn_defaults(&cfg);
	proto_cfg_defaults(&cfg.pcfg);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL;
		char name[64];
		const char *eq = strchr(a, '=');
		if (!strncmp(a, "--", 2) && eq && (size_t)(eq - a) < sizeof(name)) {
			memcpy(name, a, (size_t)(eq - a));
			name[eq - a] = 0;
			val = eq + 1;
			a = name;
		}
		if (!strcmp(a, "--list-engines")) {
			if (val)
				return bad(a, val, "it takes no value");
			return list_engines();
		}
		static const char *const valued[] = {
			"--engine", "--proto", "--listen", "--workers", "--cpus", "--max-conns",
			"--idle-timeout", "--header-timeout", "--backlog", "--work-cpu-us",
			"--work-mem", "--work-stride", "--max-request-line", "--max-headers",
			"--max-header-bytes", "--max-body", "--max-line", "--max-outbuf",
			"--peer-bin", "--handoff", "--max-children", "--max-rooms",
			"--work-max-cpu-us", "--work-max-mem", NULL};
		int known = 0;
		for (int k = 0; valued[k]; k++)
			known |= !strcmp(a, valued[k]);
		if (!known) {
			error("unknown option '%s' (see 'ctxlab serve --help')", argv[i]);
			return 2;
		}
		if (!val) {
			if (i + 1 >= argc) {
				error("option '%s' needs a value (see 'ctxlab serve --help')", a);
				return 2;
			}
			val = argv[++i];
		}
		r = 0;
		if (!strcmp(a, "--engine"))
			engine = val;
		else if (!strcmp(a, "--proto"))
			proto = val;
		else if (!strcmp(a, "--listen"))
			listen = val;
		else if (!strcmp(a, "--cpus"))
			cpus = val;
		else if (!strcmp(a, "--peer-bin"))
			cfg.peer_bin = val;
		else if (!strcmp(a, "--handoff")) {
			if (strcmp(val, "proxy") && strcmp(val, "fdpass"))
				r = bad(a, val, "use proxy or fdpass");
			else
				cfg.handoff = val;
		}
		else if (!strcmp(a, "--workers"))
			r = parse_int(a, val, 1, &cfg.workers);
		else if (!strcmp(a, "--max-conns"))
			r = parse_int(a, val, 0, &cfg.max_conns);
		else if (!strcmp(a, "--max-children"))
			r = parse_int(a, val, 0, &cfg.max_children);
		else if (!strcmp(a, "--max-rooms")) {
			int n;
			r = parse_int(a, val, 0, &n);
			if (!r)
				cfg.pcfg.max_rooms = (size_t)n;
		} else if (!strcmp(a, "--work-max-cpu-us")) {
			uint64_t n;
			char err[256];
			if (units_parse_count(val, &n, err, sizeof(err)) < 0)
				r = bad(a, val, err);
			else if (n > 10000000)
				r = bad(a, val, "use at most 10000000 (10 s), or 0 for that hard limit");
			else
				cfg.pcfg.work_max_cpu_us = n;
		} else if (!strcmp(a, "--work-max-mem")) {
			r = parse_size(a, val, &cfg.pcfg.work_max_mem_bytes);
			if (!r && cfg.pcfg.work_max_mem_bytes > (1ULL << 30))
				r = bad(a, val, "use at most 1G, or 0 for that hard limit");
		} else if (!strcmp(a, "--backlog"))
			r = parse_int(a, val, 1, &cfg.backlog);
		else if (!strcmp(a, "--idle-timeout"))
			r = parse_dur(a, val, &cfg.idle_timeout_ns);
		else if (!strcmp(a, "--header-timeout"))
			r = parse_dur(a, val, &cfg.header_timeout_ns);
		else if (!strcmp(a, "--work-cpu-us")) {
			uint64_t n;
			char err[256];
			if (units_parse_count(val, &n, err, sizeof(err)) < 0)
				r = bad(a, val, err);
			else
				cfg.pcfg.work_cpu_us = n;
		} else if (!strcmp(a, "--work-mem"))
			r = parse_size(a, val, &cfg.pcfg.work_mem_bytes);
		else if (!strcmp(a, "--work-stride"))
			r = parse_size(a, val, &cfg.pcfg.work_stride_bytes);
		else if (!strcmp(a, "--max-request-line"))
			r = parse_size_t(a, val, &cfg.pcfg.max_request_line);
		else if (!strcmp(a, "--max-header-bytes"))
			r = parse_size_t(a, val, &cfg.pcfg.max_header_bytes);
		else if (!strcmp(a, "--max-body"))
			r = parse_size_t(a, val, &cfg.pcfg.max_body);
		else if (!strcmp(a, "--max-line"))
			r = parse_size_t(a, val, &cfg.pcfg.max_line);
		else if (!strcmp(a, "--max-outbuf"))
			r = parse_size_t(a, val, &cfg.pcfg.max_outbuf);
		else if (!strcmp(a, "--max-headers")) {
			int n;
			r = parse_int(a, val, 1, &n);
			if (!r)
				cfg.pcfg.max_headers = (size_t)n;
		}
		if (r)
			return r;
	}
	if (cfg.pcfg.max_outbuf == 0)
		return bad("--max-outbuf", "0", "use at least 1 byte (e.g. 64k)");

	const struct engine *e = engine_find(engine);
	if (!e) {
		error("unknown engine '%s' for --engine (engines here: %s)", engine, engine_names());
		return 2;
	}
	cfg.proto = proto_find(proto);
	if (!cfg.proto) {
		error("unknown protocol '%s' for --proto (use one of: %s)", proto, proto_names());
		return 2;
	}
	if (!engine_speaks(e, cfg.proto)) {
		char protos[256];
		error("engine '%s' does not speak '%s' (it speaks: %s)", engine, proto,
		      engine_protos(e, protos, sizeof(protos)));
		return 2;
	}
	cfg.engine_name = e->name;
	char err[256];
	if (net_parse(listen, &cfg.listen, err, sizeof(err)) < 0) {
		error("bad value '%s' for --listen: %s", listen, err);
		return 2;
	}
	if (cpus) {
		cpu_set_t set;
		if (units_parse_cpulist(cpus, &set, err, sizeof(err)) < 0)
			return bad("--cpus", cpus, err);
		if (sched_setaffinity(0, sizeof(set), &set) < 0) {
			error("cannot pin the server to CPUs '%s': %s (list CPUs that exist and are "
			      "allowed, see nproc / taskset -p $$)",
			      cpus, strerror(errno));
			return 2;
		}
	}

	/* stop handling: the engine polls engine_stop_fd() */
	(void)engine_stop_fd();
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	static char engine_err[512];
	engine_err[0] = 0;
	cfg.err = engine_err;
	cfg.errlen = sizeof(engine_err);
	int rc = e->run(&cfg);
	if (rc && engine_err[0])
		error("%s", engine_err);
	return rc;
}
