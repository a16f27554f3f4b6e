/* serve: runs a server under test, `--engine` x `--proto`. Option parsing and wiring only. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/lifeline.h"
#include "core/fnexec.h"
#include "core/log.h"
#include "core/net.h"
#include "core/units.h"
#include "engine/econn.h"
#include "engine/engine.h"
#include "proto/proto.h"

static const char usage_head[] =
	"usage: ctxlab serve [--engine E] [--proto P] [--listen HOST:PORT] [options]\n"
	"\n"
	"Runs a server under test: one concurrency engine speaking one protocol. Every engine\n"
	"runs the same protocol code, so engines differ only in how they wait and switch.\n"
	"When it accepts connections it prints exactly one line to stdout:\n"
	"    listening on HOST:PORT engine=E proto=P pid=PID\n"
	"SIGINT/SIGTERM stop accepting, finish in-flight work within 2 s and exit 0.\n"
	"\n";

static const char usage_tail[] =
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
	"    ctxlab serve --engine gateway --handoff proxy --workers 2\n"
	"    ctxlab serve --engine gateway --functions ./functions --balance least-conn\n"
	"\n"
	"Functions (http): GET/POST /api/NAME answers the built-in \"hello\", or runs\n"
	"DIR/NAME (--functions DIR) once per request: fork+exec, the request body on its stdin,\n"
	"its stdout the response body (200 when it exits 0; 502 when it fails or writes more\n"
	"than --function-output; 504 when it runs longer than --function-timeout; 404 when\n"
	"DIR/NAME is not an executable; 400 for a NAME not of [a-z0-9_-]). A function occupies\n"
	"the worker (process or thread) that serves its connection while it runs.\n";

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

/* option callbacks: check and store one value (core/opt.h) */
static int to_int(const char *arg, int min, int *out, char *err, size_t errlen)
{
	uint64_t n;
	if (units_parse_count(arg, &n, err, errlen) < 0)
		return -1;
	if (n < (uint64_t)min || n > INT_MAX)
		return errbuf(err, errlen, "use a whole number from %d to %d", min, INT_MAX);
	*out = (int)n;
	return 0;
}

static int opt_int0(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	return to_int(arg, 0, o->value, err, errlen);
}

static int opt_int1(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	return to_int(arg, 1, o->value, err, errlen);
}

static int opt_size_t0(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	int n = 0;
	if (to_int(arg, 0, &n, err, errlen) < 0)
		return -1;
	*(size_t *)o->value = (size_t)n;
	return 0;
}

static int opt_size_t1(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	int n = 0;
	if (to_int(arg, 1, &n, err, errlen) < 0)
		return -1;
	*(size_t *)o->value = (size_t)n;
	return 0;
}

static int opt_bytes(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	uint64_t v;
	if (units_parse_size_bytes(arg, &v, err, errlen) < 0)
		return -1;
	*(size_t *)o->value = (size_t)v;
	return 0;
}

static int opt_work_max_cpu(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	uint64_t n;
	if (units_parse_count(arg, &n, err, errlen) < 0)
		return -1;
	if (n > 10000000)
		return errbuf(err, errlen, "use at most 10000000 (10 s), or 0 for that hard limit");
	*(uint64_t *)o->value = n;
	return 0;
}

static int opt_work_max_mem(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	uint64_t n;
	if (units_parse_size_bytes(arg, &n, err, errlen) < 0)
		return -1;
	if (n > (1ULL << 30))
		return errbuf(err, errlen, "use at most 1G, or 0 for that hard limit");
	*(uint64_t *)o->value = n;
	return 0;
}

static int opt_handoff(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	if (strcmp(arg, "proxy") && strcmp(arg, "fdpass"))
		return errbuf(err, errlen, "use proxy or fdpass");
	*(const char **)o->value = arg;
	return 0;
}

static int opt_balance(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	if (strcmp(arg, "rr") && strcmp(arg, "least-conn"))
		return errbuf(err, errlen, "use rr or least-conn");
	*(const char **)o->value = arg;
	return 0;
}

/* proto_cfg.fn_call: /api/NAME runs DIR/NAME (core/fnexec) and the outcome becomes a status */
static int serve_fn_call(const struct proto_cfg *pc, const char *name, const char *in,
			 size_t inlen, struct buf *body)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof path, "%s/%s", pc->fn_dir, name) >= (int)sizeof path)
		return buf_appendf(body, "no such function\n"), 404;
	int st = 0;
	int r = fnexec_run(path, in, inlen, pc->fn_timeout_ns, pc->fn_max_output, body, &st);
	if (r == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 200;
	buf_clear(body);
	if (r == -ENOENT || r == -EACCES || r == -ENOTDIR)
		return buf_appendf(body, "no such function: %s\n", name), 404;
	if (r == -ETIMEDOUT)
		return buf_appendf(body, "function %s ran over its time limit\n", name), 504;
	if (r == -EFBIG)
		return buf_appendf(body, "function %s wrote more than its output limit\n", name), 502;
	if (r < 0)
		return buf_appendf(body, "function %s could not run: %s\n", name, strerror(-r)), 502;
	if (WIFEXITED(st))
		return buf_appendf(body, "function %s failed: exit status %d\n", name,
				   WEXITSTATUS(st)), 502;
	return buf_appendf(body, "function %s failed: killed by signal %d\n", name,
			   WTERMSIG(st)), 502;
}

static int cmd_serve(int argc, char **argv);

/* static: engine threads may outlive cmd_serve's frame by a moment at exit */
static struct engine_cfg cfg;
static const char *engine = "epoll", *proto = "http", *listen_at = "127.0.0.1:7000", *cpus;
static int list_only, control_stdin;
static const char *functions_dir;
static uint64_t fn_timeout_ns = 1000000000ULL, fn_max_output = 1 << 20;

static const struct opt options[] = {
	OPT_GROUP("options:"),
	OPT_STRING(0, "engine", &engine, "E",
		   "concurrency engine (default epoll); --list-engines shows them"),
	OPT_STRING(0, "proto", &proto, "P", "protocol: sink, echo, http, chat (default http)"),
	OPT_STRING(0, "listen", &listen_at, "HOST:PORT",
		   "address to listen on (default 127.0.0.1:7000; port 0 picks a\n"
		   "free port, printed in the ready line); [::1]:PORT for IPv6"),
	OPT_CALLBACK(0, "workers", &cfg.workers, "N",
		     "epoll, uring: event loops (threads, SO_REUSEPORT each);\n"
		     "prefork, gateway: processes; nginx: worker_processes;\n"
		     "go: GOMAXPROCS", opt_int1),
	OPT_STRING(0, "cpus", &cpus, "LIST", "CPU affinity of the whole server, e.g. 0 or 0-1,3"),
	OPT_CALLBACK(0, "max-conns", &cfg.max_conns, "N",
		     "connections served at once; beyond it new ones are accepted\n"
		     "and closed (fork: left in the backlog, see --max-children);\n"
		     "default 10000, or when lower the open-file limit less 64\n"
		     "(less half of it, for a limit under 128); 0 = unlimited", opt_int0),
	OPT_CALLBACK(0, "max-children", &cfg.max_children, "N",
		     "fork: live child processes; at the cap the server stops\n"
		     "accepting (connections wait in the backlog) rather than fork\n"
		     "(default: --max-conns; 0 = --max-conns)", opt_int0),
	OPT_DURATION(0, "idle-timeout", &cfg.idle_timeout_ns, "D",
		     "close a connection that sends nothing for D while none of\n"
		     "its output is pending (default 60s; 0 = never)"),
	OPT_DURATION(0, "header-timeout", &cfg.header_timeout_ns, "D",
		     "close a connection whose request stays incomplete for D\n"
		     "(slowloris; default 10s; 0 = never)"),
	OPT_CALLBACK(0, "backlog", &cfg.backlog, "N", "listen backlog (default 1024)", opt_int1),
	OPT_COUNT(0, "work-cpu-us", &cfg.pcfg.work_cpu_us, "N",
		  "burn N us of CPU per message (http: per request; sink, echo,\n"
		  "chat: per line)"),
	OPT_SIZE(0, "work-mem", &cfg.pcfg.work_mem_bytes, "SIZE",
		 "touch a working set of SIZE per message (e.g. 64k, 1M)"),
	OPT_SIZE(0, "work-stride", &cfg.pcfg.work_stride_bytes, "SIZE",
		 "stride of that touch (default 64)"),
	OPT_CALLBACK(0, "work-max-cpu-us", &cfg.pcfg.work_max_cpu_us, "N",
		     "http: largest cpu_us a /work request may ask for; above it\n"
		     "the answer is 400 naming the cap (default 1000000 = 1 s;\n"
		     "0 = the hard limit, 10 s)", opt_work_max_cpu),
	OPT_CALLBACK(0, "work-max-mem", &cfg.pcfg.work_max_mem_bytes, "SIZE",
		     "http: largest mem a /work request may ask for, else 400\n"
		     "(default 64M; 0 = the hard limit, 1G)", opt_work_max_mem),
	OPT_CALLBACK(0, "max-request-line", &cfg.pcfg.max_request_line, "SIZE",
		     "http: longest request line (default 8k)", opt_bytes),
	OPT_CALLBACK(0, "max-headers", &cfg.pcfg.max_headers, "N",
		     "http: most header fields (default 100)", opt_size_t1),
	OPT_CALLBACK(0, "max-header-bytes", &cfg.pcfg.max_header_bytes, "SIZE",
		     "http: largest header block (default 16k, then 431)", opt_bytes),
	OPT_CALLBACK(0, "max-body", &cfg.pcfg.max_body, "SIZE",
		     "http: largest request body (default 1M, then 413)", opt_bytes),
	OPT_CALLBACK(0, "max-line", &cfg.pcfg.max_line, "SIZE", "chat: longest line (default 64k)",
		     opt_bytes),
	OPT_CALLBACK(0, "max-outbuf", &cfg.pcfg.max_outbuf, "SIZE",
		     "output queued per connection before a slow chat reader is\n"
		     "disconnected (default 1M)", opt_bytes),
	OPT_CALLBACK(0, "max-rooms", &cfg.pcfg.max_rooms, "N",
		     "chat: rooms at once; a /join that would open one more is\n"
		     "answered \"* error: too many rooms ...\" and closed (default\n"
		     "1024; 0 = unlimited). An emptied room is freed (fork,\n"
		     "prefork: its log file is removed)", opt_size_t0),
	OPT_STRING(0, "peer-bin", &cfg.peer_bin, "PATH",
		   "go: the peer binary (default $CTXLAB_GO_PEER, else\n"
		   "ctxlab-peer-go next to ctxlab)"),
	OPT_CALLBACK(0, "handoff", &cfg.handoff, "MODE",
		     "gateway: how the front hands a connection to a worker:\n"
		     "fdpass (default; the client socket moves to the worker with\n"
		     "SCM_RIGHTS) or proxy (the front relays bytes both ways)", opt_handoff),
	OPT_FLAG(0, "control-stdin", &control_stdin,
		 "stdin is the control channel of 'ctxlab run' (ssh hosts): exit when it closes"),
	OPT_CALLBACK(0, "balance", &cfg.balance, "HOW",
		     "gateway: which worker gets the next connection: rr (default;\n"
		     "round-robin) or least-conn (the one with the fewest open\n"
		     "connections; ties: the next in round-robin order)", opt_balance),
	OPT_FLAG(0, "sqpoll", &cfg.sqpoll,
		 "uring: each ring gets a kernel submission thread (SQPOLL) on\n"
		 "one of --cpus; measured as an option, not the default"),
	OPT_STRING(0, "functions", &functions_dir, "DIR",
		   "http: /api/NAME runs the executable DIR/NAME per request\n"
		   "(see below); without it only the built-in /api/hello"),
	OPT_DURATION(0, "function-timeout", &fn_timeout_ns, "D",
		     "a function still running after D is killed: 504 (default 1s)"),
	OPT_SIZE(0, "function-output", &fn_max_output, "SIZE",
		 "a function writing more than SIZE is killed: 502 (default 1M)"),
	OPT_FLAG(0, "list-engines", &list_only,
		 "print the engines that exist, one \"NAME PROTOS\" line each"),
	OPT_DOC("-h, --help", "this text"),
	OPT_END(),
};

const struct cmd_info cmd_info_serve = {"serve", cmd_serve,
					"run a server under test: --engine x --proto", usage_head,
					options, usage_tail};

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
	econn_defaults(&cfg);
	proto_cfg_defaults(&cfg.pcfg);
	int n = cmd_parse_options(&cmd_info_serve, argc, argv, 0, NULL);
	if (n < 0)
		return 2;
	if (n > 0)
		return cmd_usage_error("unexpected argument '%s' (see 'ctxlab serve --help')", argv[0]);
	if (list_only)
		return list_engines();
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
	if (cfg.sqpoll && strcmp(e->name, "uring")) {
		error("--sqpoll needs --engine uring (only io_uring has a submission queue to poll)");
		return 2;
	}
	if (functions_dir) {
		struct stat sb;
		errno = 0;
		if (stat(functions_dir, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
			error("cannot open '%s': %s (--functions takes a directory of executables)",
			      functions_dir, errno ? strerror(errno) : "not a directory");
			return 2;
		}
		if (!fn_timeout_ns)
			return bad("--function-timeout", "0", "use a duration above 0 (e.g. 200ms)");
		cfg.pcfg.fn_call = serve_fn_call;
		cfg.pcfg.fn_dir = functions_dir;
		cfg.pcfg.fn_timeout_ns = fn_timeout_ns;
		cfg.pcfg.fn_max_output = (size_t)fn_max_output;
	}
	char err[256];
	if (net_parse(listen_at, &cfg.listen, err, sizeof(err)) < 0) {
		error("bad value '%s' for --listen: %s", listen_at, err);
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
	if (control_stdin && lifeline_start(3 * 1000000000ULL) < 0) {
		error("cannot watch stdin (--control-stdin): %s", strerror(errno));
		return 1;
	}
	static char engine_err[512];
	engine_err[0] = 0;
	cfg.err = engine_err;
	cfg.errlen = sizeof(engine_err);
	int rc = e->run(&cfg);
	if (rc && engine_err[0])
		error("%s", engine_err);
	return rc;
}
