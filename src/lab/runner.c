#include "lab/runner.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "alloc/alloc.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/lifeline.h"
#include "core/log.h"
#include "core/outfile.h"
#include "core/procfs.h"
#include "core/spawn.h"
#include "core/units.h"
#include "lab/env.h"
#include "lab/host.h"
#include "lab/multihost.h"
#include "load/client.h"
#include "load/load.h"
#include "lab/launch.h"
#include "lab/record.h"
#include "monitor/monitor.h"
#include "monitor/monout.h"
#include "monitor/syscpu.h"
#include "monitor/syscount.h"
#include "profile/profile.h"
#include "profile/symbols.h"

#define SAMPLE_NS (200 * NS_PER_MS)
#define LOAD_GRACE_NS (30 * NS_PER_S)   /* after the window, the load must have exited by then */
#define STOP_GRACE_NS (2 * NS_PER_S)
#define PROFILE_GRACE_NS (30 * NS_PER_S) /* after the window, the profiler must be done by then */

static volatile sig_atomic_t stop_sig;

static void on_stop(int sig)
{
	stop_sig = sig;
}

static int stopping(void) { return stop_sig != 0; }

/* Sleeps until deadline in short steps; 1 when a stop was requested. */
static int nap_until(uint64_t deadline_ns)
{
	while (!stopping()) {
		uint64_t now = clock_now_ns();
		if (now >= deadline_ns)
			return 0;
		uint64_t step = deadline_ns - now > 50 * NS_PER_MS ? 50 * NS_PER_MS : deadline_ns - now;
		clock_sleep_ns(step);
	}
	return 1;
}

/* ---- placement ---- */

int runner_placement(int cpus_count, const char *cpus_list, cpu_set_t *server, cpu_set_t *load,
		     int *shared)
{
	cpu_set_t mine;
	CPU_ZERO(server);
	CPU_ZERO(load);
	*shared = 0;
	if (sched_getaffinity(0, sizeof mine, &mine) < 0)
		return -1;
	if (cpus_count < 0) {
		char e[128];
		if (units_parse_cpulist(cpus_list, server, e, sizeof e) < 0)
			return -1;
		CPU_AND(server, server, &mine);
		if (!CPU_COUNT(server))
			return -1;
	} else if (cpus_count == 0) {
		*server = mine;
	} else {
		int n = 0;
		for (int c = 0; c < CPU_SETSIZE && n < cpus_count; c++)
			if (CPU_ISSET(c, &mine)) {
				CPU_SET(c, server);
				n++;
			}
		if (n < cpus_count)
			return -1;
	}
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &mine) && !CPU_ISSET(c, server))
			CPU_SET(c, load);
	if (!CPU_COUNT(load)) {
		*load = mine;
		*shared = 1;
	}
	return 0;
}

/* ---- small helpers ---- */

int runner_catalog(const char *self, const char *server_host, struct spec_catalog *cat,
		   char *err, size_t errlen)
{
	struct host h;
	if (host_parse(&h, server_host, err, errlen) < 0)
		return -1;
	const char *argv[] = {self, "serve", "--list-engines", NULL};
	char out[4096];
	int rc = launch_capture(&h, argv, host_remote_bin(), 0, out, sizeof out, 20 * NS_PER_S);
	if (rc < 0 || spec_catalog_parse(cat, out) <= 0)
		return errbuf(err, errlen, "cannot list the engines of the server host '%s' with "
			      "'ctxlab serve --list-engines'%s%s (is ctxlab installed there?)",
			      server_host, out[0] ? ": " : "", out);
	return 0;
}

/* ---- one trial ---- */

enum { TRIAL_OK, TRIAL_FAILED, TRIAL_INTERRUPTED };

/* one monitor sample of a timeline trial: its end on the window's axis and its figures */
struct tl_sample {
	double t_s, iv_s, cores, vol_per_s, invol_per_s;
};
#define TL_MAX 512
#define TL_INTERVAL "200ms" /* the load's intervals: SAMPLE_NS, the monitor's */

struct trial {
	int k, of, repeat;
	const struct spec_cell *cell;
	int status;
	char reason[512];
	uint64_t start_wall_ns;
	char server_cpus[64], load_cpus[64];
	int server_ncpus, load_ncpus, shared;
	char address[96];
	int have_mon;
	char acct_reason[256];       /* why this accounting method */
	struct monitor_sample total;
	struct monitor_peak peak;
	double window_s;
	json_t *load;  /* load's JSON */
	char warnings[8][256];
	int nwarn;
	const char *cell_id;   /* spec_cell_id: names the flame graph directory */
	int want_profile;      /* spec_profiled: this trial runs the profiler */
	int profiled;          /* the profiler wrote its flame graph */
	char flame_dir[256];   /* "flame/ID" (repeat 0) or "flame/ID-rN", relative to the dir */
	int load_remote;       /* a load host is an ssh host: its CPUs are not load_cpus */
	/* system-wide CPU of the server's and the load's CPUs over the window (/proc/stat) */
	int have_syscpu;
	struct record_syscpu sys_server, sys_load;
	char sys_reason[200];  /* why there is no system_cpu ("" = none given) */
	/* kind = pingpong: its JSON's one mode object, and the no-switch check */
	json_t *pp;
	const char *switch_check;
	/* [experiment] timeline: this trial is recorded per interval */
	int timeline;
	char timeline_path[256];  /* "timeline/ID.json" once written */
	uint64_t mon_wall_ns;     /* wall clock at the window's start (the monitor's) */
	int ntl;
	struct tl_sample tl[TL_MAX];
	pid_t server_pid;      /* from its ready line: the tree's root (gateway: the front) */
	struct record_syscalls sc; /* system calls by name over the window */
	uint64_t sc_count[SYSCOUNT_MAX];
	const char *sc_name[SYSCOUNT_MAX];
	struct syscount scnt;  /* open from the server's start to its stop (sc_open) */
	int sc_open;
	uint64_t x0_ns;        /* when the syscall counters and the front's times were read first */
	char sc_reason[256];
	struct record_front front; /* the root process's CPU over the window */
	/* [experiment] alloc: the server's preload environment, its record directory ("" =
	 * none), the counters at the window's start, and the figures or why there are none */
	const char *srv_env[6];
	char alloc_env[4][1200];
	char alloc_dir[256];
	struct alloc_counters alloc0;
	uint64_t alloc_t0;
	const char *alloc_mode;
	char alloc_reason[300];
	double alloc_calls_per_s, alloc_bytes_per_s, alloc_frees_per_s;
	int alloc_have;
	int alloc_go;            /* the Go peer: its runtime's counters, not the interposer's */
	/* the phases (lab/record.h, enum record_phase): the monotonic clock at the trial's
	 * start, at the end of each phase reached (0: not reached), at the window's end */
	uint64_t ph0, ph[RECORD_PH_N], win_end;
	struct record_timing timing;
};

static void phase(struct trial *t, int i)
{
	t->ph[i] = clock_now_ns();
}

/* t->timing from t->ph: each phase reached from the end of the one before it */
static void phases_done(struct trial *t)
{
	uint64_t prev = t->ph0;
	t->timing.ok = t->ph0 != 0;
	t->timing.profile_after_s = -1;
	for (int i = 0; i < RECORD_PH_N; i++) {
		t->timing.phase_s[i] = t->ph[i] ? (t->ph[i] - prev) / 1e9 : -1;
		if (t->ph[i])
			prev = t->ph[i];
	}
	if (t->profiled && t->win_end && t->ph[RECORD_PH_PROFILE])
		t->timing.profile_after_s = (t->ph[RECORD_PH_PROFILE] - t->win_end) / 1e9;
}

static void warn_trial(struct trial *t, const char *fmt, ...) CTXLAB_PRINTF(2, 3);
static void warn_trial(struct trial *t, const char *fmt, ...)
{
	if (t->nwarn >= 8)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->warnings[t->nwarn++], sizeof t->warnings[0], fmt, ap);
	va_end(ap);
}

static int trial_fail(struct trial *t, const char *fmt, ...) CTXLAB_PRINTF(2, 3);
static int trial_fail(struct trial *t, const char *fmt, ...)
{
	if (t->status == TRIAL_OK) {
		t->status = TRIAL_FAILED;
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(t->reason, sizeof t->reason, fmt, ap);
		va_end(ap);
	}
	return -1;
}

struct ctx {
	const struct spec *s;
	const struct runner_opts *o;
	struct host server_host, load_host;
	int logfd;
	/* [hosts] load = H1, H2, ...: the load hosts (load_host = the first) */
	struct host load_hosts[MULTIHOST_MAX];
	char load_names[MULTIHOST_MAX][256];
	int nload;
	/* every host probed at the start (env.json); host_err: why one is unusable (then every
	 * trial fails with it, the host named) */
	struct multihost_info info[MULTIHOST_MAX + 1];
	int ninfo;
	char host_err[600];
	/* the syscall tracepoints kept registered for the whole run (a local server host), so
	 * that a trial's counters open and close without the kernel's grace periods */
	struct syscount_hold sc_hold;
	/* the profilers' symbol cache (profile --symcache): a private directory made by the
	 * first profiled trial, removed at the end of the run; "" = none yet */
	char symcache[300];
};

static void log_marker(struct ctx *c, const struct trial *t, const char *role)
{
	if (c->logfd < 0)
		return;
	char line[768];
	int n = snprintf(line, sizeof line, "--- trial %d/%d %s: %s\n", t->k + 1, t->of, role,
			 t->cell->key);
	if (n > 0 && write(c->logfd, line, (size_t)n) < 0) {
		/* the log is best effort */
	}
}

/* The gateway's axes (--handoff, --balance) and the spec's functions directory
 * (--functions, http cells) after argv[0..n); returns the new n (at most 6 more). */
static int server_gateway_args(const struct spec *s, const struct spec_cell *cell,
			       const char **argv, int n)
{
	if (cell->handoff) {
		argv[n++] = "--handoff";
		argv[n++] = cell->handoff;
	}
	if (cell->balance) {
		argv[n++] = "--balance";
		argv[n++] = cell->balance;
	}
	const struct spec_key *fk = spec_get(s, "server", "functions");
	if (fk && fk->n && !strcmp(cell->proto, "http")) {
		argv[n++] = "--functions";
		argv[n++] = fk->v[0].text;
	}
	return n;
}

/* cgpath: a cgroup of ctxlab's own to start the server in ("" = none), so that its CPU is
 * accounted exactly, whatever its processes do. */
static int start_server(struct ctx *c, struct trial *t, const cpu_set_t *cpus,
			struct launch *srv, const char *cgpath)
{
	const struct spec_cell *cell = t->cell;
	char listen[96], workers[32], work[32];
	if (strchr(c->s->server_address, ':'))
		snprintf(listen, sizeof listen, "[%s]:0", c->s->server_address);
	else
		snprintf(listen, sizeof listen, "%s:0", c->s->server_address);
	const char *argv[32];
	int n = 0;
	argv[n++] = c->o->self;
	argv[n++] = "serve";
	argv[n++] = "--engine";
	argv[n++] = cell->engine;
	argv[n++] = "--proto";
	argv[n++] = cell->proto;
	argv[n++] = "--listen";
	argv[n++] = listen;
	if (cell->workers) {
		snprintf(workers, sizeof workers, "%d", cell->workers);
		argv[n++] = "--workers";
		argv[n++] = workers;
	}
	if (cell->work_cpu_us) {
		snprintf(work, sizeof work, "%llu", (unsigned long long)cell->work_cpu_us);
		argv[n++] = "--work-cpu-us";
		argv[n++] = work;
	}
	n = server_gateway_args(c->s, cell, argv, n);
	char cpulist[64];
	if (c->server_host.kind == HOST_SSH) {
		/* a remote server gets its CPUs from its own --cpus */
		units_format_cpulist(cpus, cpulist, sizeof cpulist);
		argv[n++] = "--cpus";
		argv[n++] = cpulist;
		/* it ends when its ssh session does (the run killed, the connection lost) */
		argv[n++] = "--control-stdin";
	}
	argv[n] = NULL;
	char err[256];
	log_marker(c, t, "server");
	struct launch_spec ls = {.host = &c->server_host, .argv = argv,
				 .remote_prog = host_remote_bin(), .cpus = cpus, .cgroup = cgpath,
				 .logfd = c->logfd, .stop = &stop_sig,
				 .control = c->server_host.kind == HOST_SSH,
				 .env = t->srv_env[0] ? t->srv_env : NULL};
	if (launch_start(srv, &ls, err, sizeof err) < 0)
		return trial_fail(t, "%s", err);
	if (srv->cgroup_leave_failed)
		warn_trial(t, "cannot leave the cgroup '%s': the load generator is accounted with "
			      "the server", cgpath);
	struct ready rl;
	int rc = launch_ready(srv, c->o->ready_timeout_ns, &rl, err, sizeof err);
	if (rc == -EINTR)
		return -1;
	if (rc < 0 && c->server_host.kind != HOST_LOCAL)
		return trial_fail(t, "the server on '%s' %s", c->s->server_host, err);
	if (rc < 0)
		return trial_fail(t, "the server %s", err);
	t->server_pid = rl.pid;
	/* the load connects to server_address (the server may print 0.0.0.0) */
	if (strchr(c->s->server_address, ':'))
		snprintf(t->address, sizeof t->address, "[%s]:%d", c->s->server_address, rl.port);
	else
		snprintf(t->address, sizeof t->address, "%s:%d", c->s->server_address, rl.port);
	return 0;
}

/* Starts load host i of c->nload with its share of the connections and of the rate (*rate:
 * its rate, 0 in closed loop). */
static int start_load(struct ctx *c, struct trial *t, const cpu_set_t *cpus, struct launch *ld,
		      int i, double *rate)
{
	const struct spec_cell *cell = t->cell;
	char conns[32], dur[32], warm[32], thr[32], pipe_[32], target[160], rateb[64];
	snprintf(conns, sizeof conns, "%llu",
		 (unsigned long long)multihost_share((uint64_t)cell->connections, c->nload, i));
	*rate = 0;
	units_format_duration(c->s->duration_ns, dur, sizeof dur);
	units_format_duration(c->s->warmup_ns, warm, sizeof warm);
	int tr = load_client_target(cell->proto, t->address, target, sizeof target);
	if (tr < 0)
		return trial_fail(t, "no load target for protocol '%s': %s", cell->proto,
				  strerror(-tr));
	size_t tl = strlen(target);
	if (cell->function && !strcmp(cell->proto, "http") && tl && target[tl - 1] == '/')
		snprintf(target + tl, sizeof target - tl, "api/%s", cell->function);
	const char *argv[40];
	int n = 0;
	argv[n++] = c->o->self;
	argv[n++] = "load";
	argv[n++] = "-q";
	argv[n++] = "-c";
	argv[n++] = conns;
	argv[n++] = "-d";
	argv[n++] = dur;
	argv[n++] = "--warmup";
	argv[n++] = warm;
	argv[n++] = "--proto";
	argv[n++] = cell->proto;
	if (cell->threads) {
		snprintf(thr, sizeof thr, "%d", cell->threads);
		argv[n++] = "-t";
		argv[n++] = thr;
	}
	if (cell->pipeline) {
		snprintf(pipe_, sizeof pipe_, "%d", cell->pipeline);
		argv[n++] = "--pipeline";
		argv[n++] = pipe_;
	}
	if (cell->bandwidth) {
		argv[n++] = "--bandwidth";
		argv[n++] = cell->bandwidth;
	}
	if (cell->no_keepalive)
		argv[n++] = "--no-keepalive";
	if (cell->rate) {
		char e[128];
		if (units_parse_rate_per_s(cell->rate, rate, e, sizeof e) < 0)
			return trial_fail(t, "bad rate '%s': %s", cell->rate, e);
		*rate /= c->nload;
		snprintf(rateb, sizeof rateb, "%.17g", *rate);
		argv[n++] = "--rate";
		argv[n++] = c->nload > 1 ? rateb : cell->rate;
	}
	if (cell->size) {
		argv[n++] = "--size";
		argv[n++] = cell->size;
	}
	if (t->timeline) {
		argv[n++] = "--intervals";
		argv[n++] = TL_INTERVAL;
	}
	argv[n++] = "--json";
	argv[n++] = "-";
	/* started at a line "go" (the barrier of several hosts), ended when stdin closes; its
	 * histograms in the JSON for the exact merge */
	argv[n++] = "--control-stdin";
	argv[n++] = "--json-hist";
	argv[n++] = target;
	argv[n] = NULL;
	char err[256];
	log_marker(c, t, "load");
	struct launch_spec ls = {.host = &c->load_hosts[i], .argv = argv,
				 .remote_prog = host_remote_bin(), .cpus = cpus, .logfd = c->logfd,
				 .stop = &stop_sig, .control = 1};
	if (launch_start(ld, &ls, err, sizeof err) < 0)
		return c->nload > 1 || c->load_hosts[i].kind != HOST_LOCAL
			? trial_fail(t, "cannot start the load generator on '%s': %s",
				     c->load_names[i], err)
			: trial_fail(t, "cannot start the load generator: %s", err);
	return 0;
}

/* "the load generator" (one local host) or "the load generator on 'HOST'" */
static void load_who(const struct ctx *c, int i, char *out, size_t len)
{
	if (c->nload == 1 && c->load_hosts[0].kind == HOST_LOCAL)
		snprintf(out, len, "the load generator");
	else
		snprintf(out, len, "the load generator on '%s'", c->load_names[i]);
}

/* Starts every load host, waits until each is set up (its LIFELINE_WAITING line), then lets
 * them all go at once: a barrier, not a sleep. 0, or -1 (the trial failed, or interrupted). */
static int start_loads(struct ctx *c, struct trial *t, const cpu_set_t *cpus,
		       struct launch *lds, double *rates)
{
	if (c->nload > t->cell->connections)
		return trial_fail(t, "%d load hosts need at least as many connections (connections "
				  "= %d)", c->nload, t->cell->connections);
	/* a fan-out protocol's expected deliveries count the members one process knows */
	const struct load_client *lc = load_client_find(t->cell->proto);
	if (c->nload > 1 && lc && (lc->flags & LOAD_C_FANOUT))
		return trial_fail(t, "protocol '%s' fans out within one load generator: it runs on "
				  "one load host, not %d", t->cell->proto, c->nload);
	for (int i = 0; i < c->nload; i++)
		if (start_load(c, t, cpus, &lds[i], i, &rates[i]) < 0)
			return -1;
	/* ssh hosts take a connection first: a longer wait than a local start */
	uint64_t wait = c->o->ready_timeout_ns > 30 * NS_PER_S ? c->o->ready_timeout_ns
							      : 30 * NS_PER_S;
	for (int i = 0; i < c->nload; i++) {
		char why[400], who[300];
		int rc = launch_await_line(&lds[i], LIFELINE_WAITING, wait, why, sizeof why);
		if (rc == -EINTR)
			return -1;
		load_who(c, i, who, sizeof who);
		/* one that ended already fails the trial when it is collected, after the window,
		 * as a load that fails later does (the server is measured either way) */
		if (rc < 0 && rc != -ECHILD)
			return trial_fail(t, "%s %s", who, why);
	}
	for (int i = 0; i < c->nload; i++)
		if (!launch_ended(&lds[i], NULL) && launch_send(&lds[i], "go\n") < 0) {
			char who[300];
			load_who(c, i, who, sizeof who);
			return trial_fail(t, "%s ended before the start", who);
		}
	return 0;
}

/* Waits until every load generator has started its warm-up (LOAD_WINDOW_LINE: its connections
 * are up and, for a fan-out protocol, every member is in the room), so that the server's window
 * starts with the load's and not before: connecting 256 clients to a server that forks for each
 * one, or a chat room's joins, can take a second on a busy CPU. A load that ended already fails
 * the trial when it is collected. 0, or -1 (the trial failed, or interrupted). */
static int await_warmup(struct ctx *c, struct trial *t, struct launch *lds)
{
	uint64_t wait = c->o->ready_timeout_ns + 15 * NS_PER_S; /* the fan-out join waits 10 s */
	for (int i = 0; i < c->nload; i++) {
		char why[400], who[300];
		int rc = launch_await_line(&lds[i], LOAD_WINDOW_LINE, wait, why, sizeof why);
		if (rc == -EINTR)
			return -1;
		if (rc < 0 && rc != -ECHILD) {
			load_who(c, i, who, sizeof who);
			return trial_fail(t, "%s did not start its warm-up: %s", who, why);
		}
	}
	return 0;
}

/* The run's symbol cache directory (profile --symcache): a private one under $TMPDIR. */
static void symcache_make(struct ctx *c)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(c->symcache, sizeof c->symcache, "%s/ctxlab-symcache.XXXXXX",
		 tmp && tmp[0] ? tmp : "/tmp");
	if (!mkdtemp(c->symcache))
		c->symcache[0] = 0; /* each profiler symbolizes afresh */
}

/* Before the first trial of a run that profiles: the cache made and filled from this
 * process's own image (the servers run the same binaries), so that no trial's profiler pays
 * for the kernel's table or for decompressing a debug file after its window. */
static void symcache_prepare(struct ctx *c)
{
	symcache_make(c);
	if (!c->symcache[0])
		return;
	symbols_cache_dir(c->symcache);
	symbols_cache_fill(getpid());
	symbols_cache_dir(NULL);
}

/* Removes the run's symbol cache: its files (no subdirectories), then itself. */
static void symcache_remove(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		char p[600];
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    snprintf(p, sizeof p, "%s/%s", dir, de->d_name) < (int)sizeof p)
			unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

/* Starts `SELF profile -q (--cgroup CGPATH | --pid PID) -d DUR -o DIR/flame/ID --title CELL
 * --focus ROOT:front` (ROOT: the server's pid from its ready line, when known) on
 * the load CPUs for the rest of the window (until until_ns): per cgroup when the server runs in
 * a cgroup of its own that perf can sample (cgpath, "" = none), so that thread- and
 * fork-per-connection servers are sampled in proportion to their CPU; else per task on the
 * keeper's tree. A failure to start is a warning. 0 or -1. */
static int start_profiler(struct ctx *c, struct trial *t, const cpu_set_t *cpus, pid_t pid,
			  const char *cgpath, uint64_t until_ns, struct launch *pr)
{
	char dir[4096], pidb[32], dur[32], title[640], why[256];
	snprintf(dir, sizeof dir, "%s/%s", c->o->dir, t->flame_dir);
	snprintf(pidb, sizeof pidb, "%d", (int)pid);
	uint64_t now = clock_now_ns();
	uint64_t d_ms = until_ns > now + 10 * NS_PER_MS ? (until_ns - now) / NS_PER_MS : 10;
	snprintf(dur, sizeof dur, "%llums", (unsigned long long)d_ms);
	snprintf(title, sizeof title, "CPU flame graph: %s (repeat %d)", t->cell->key, t->repeat);
	/* a v1 cgroup (cpuacct), or perf_event bound to a v1 hierarchy: per task */
	int per_cgroup = cgpath[0] && profile_cgroup_usable(cgpath, why, sizeof why);
	/* the tree's root (gateway: the front) alone also goes to DIR/flame/ID/front.folded */
	char focus[48];
	snprintf(focus, sizeof focus, "%d:front", (int)t->server_pid);
	if (!c->symcache[0])
		symcache_make(c);
	const char *argv[16] = {c->o->self, "profile", "-q", per_cgroup ? "--cgroup" : "--pid",
				per_cgroup ? cgpath : pidb, "-d", dur, "-o", dir, "--title", title};
	int n = 11;
	if (c->symcache[0]) {
		argv[n++] = "--symcache";
		argv[n++] = c->symcache;
	}
	if (t->server_pid > 0) {
		argv[n++] = "--focus";
		argv[n++] = focus;
	}
	argv[n] = NULL;
	/* DIR/flame/ID made here, never through a link planted in the results directory */
	int mk = outfile_mkdirs_under(c->o->dir, t->flame_dir);
	if (mk < 0) {
		warn_trial(t, "not profiled: cannot create '%s': %s", dir, outfile_strerror(mk));
		return -1;
	}
	log_marker(c, t, "profile");
	/* stdout captured (and unread: -q prints nothing there) so that nothing reaches run's;
	 * always on this machine (the server host is local or netns) */
	struct host here = {.kind = HOST_LOCAL};
	struct launch_spec ls = {.host = &here, .argv = argv, .cpus = cpus, .logfd = c->logfd,
				 .stop = &stop_sig};
	if (launch_start(pr, &ls, why, sizeof why) < 0) {
		warn_trial(t, "not profiled: %s", why);
		return -1;
	}
	return 0;
}

/* Waits (at most PROFILE_GRACE_NS) for the profiler started by start_profiler and records
 * whether it wrote its flame graph; every failure is a trial warning with the reason. */
static void finish_profiler(struct ctx *c, struct trial *t, struct launch *pr)
{
	uint64_t deadline = clock_now_ns() + PROFILE_GRACE_NS;
	int status = 0;
	while (!launch_ended(pr, &status) && !stopping() && clock_now_ns() < deadline)
		launch_wait(pr, 100 * (int64_t)NS_PER_MS);
	if (!launch_ended(pr, &status)) {
		launch_stop(pr);
		if (!stopping())
			warn_trial(t, "not profiled: the profiler did not finish within %.0f s "
				      "after the window (stopped)", PROFILE_GRACE_NS / 1e9);
		return;
	}
	/* its stdout: the symbol cache's line (--symcache), nothing else with -q */
	struct buf out = BUF_INIT;
	if (launch_read_all(pr, &out, clock_now_ns() + NS_PER_S) == 0 &&
	    buf_append(&out, "", 1) == 0) {
		const char *l = strstr(buf_head(&out), "symcache: ");
		unsigned kh, km, dh, dm;
		if (l && sscanf(l, "symcache: kernel_hits=%u kernel_misses=%u debug_hits=%u "
				"debug_misses=%u", &kh, &km, &dh, &dm) == 4) {
			t->timing.symcache_hits = (int)(kh + dh);
			t->timing.symcache_misses = (int)(km + dm);
		}
	}
	buf_free(&out);
	char tail[200];
	launch_tail(pr, tail, sizeof tail);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char st[96];
		launch_status_text(status, st, sizeof st);
		warn_trial(t, "not profiled: the profiler %s%s%s", st, tail[0] ? ": " : "", tail);
		return;
	}
	char path[4096];
	struct stat sb;
	snprintf(path, sizeof path, "%s/%s/flame.svg", c->o->dir, t->flame_dir);
	if (stat(path, &sb) == 0 && sb.st_size) {
		t->profiled = 1;
		return;
	}
	/* an empty profile.folded: no sample (the message stays the same for every cell) */
	snprintf(path, sizeof path, "%s/%s/profile.folded", c->o->dir, t->flame_dir);
	if (stat(path, &sb) == 0 && !sb.st_size)
		warn_trial(t, "not profiled: the profiler recorded no samples (an idle server, "
			      "or, sampled per task for want of a cgroup (run as root), threads "
			      "that each run only microseconds at a time: docs/metrics.md, "
			      "\"profile\")");
	else
		warn_trial(t, "not profiled: the profiler wrote no flame graph%s%s",
			   tail[0] ? ": " : "", tail);
}

/* ---- system-wide CPU over the window (/proc/stat, per CPU group) ---- */

struct win_sys {
	struct syscpu sc;
	int ok, err;
};

static void win_sys_start(struct win_sys *w)
{
	w->err = syscpu_open(&w->sc);
	w->ok = w->err == 0;
}

/* The group's percentages: the mean of its CPUs' rows. */
static void sys_group(const struct syscpu *sc, const double *pct, const cpu_set_t *set,
		      const char *cpus, struct record_syscpu *g)
{
	memset(g, 0, sizeof *g);
	g->cpus = cpus;
	for (int c = 0; c < sc->ncpus && c < CPU_SETSIZE; c++) {
		if (!CPU_ISSET(c, set))
			continue;
		const double *p = pct + (size_t)(1 + c) * SYSCPU_N;
		g->user += p[SYSCPU_US] + p[SYSCPU_NI];
		g->system += p[SYSCPU_SY];
		g->softirq += p[SYSCPU_SI];
		g->steal += p[SYSCPU_ST];
		g->idle += p[SYSCPU_ID];
		g->iowait += p[SYSCPU_WA];
		g->ncpus++;
	}
	if (!g->ncpus)
		return;
	g->busy_cores = (g->user + g->system) / 100.0;
	g->user /= g->ncpus, g->system /= g->ncpus, g->softirq /= g->ncpus;
	g->steal /= g->ncpus, g->idle /= g->ncpus, g->iowait /= g->ncpus;
}

static void win_sys_end(struct win_sys *w, struct trial *t, const cpu_set_t *scpus,
			const cpu_set_t *lcpus)
{
	if (!w->ok) {
		snprintf(t->sys_reason, sizeof t->sys_reason, "cannot read /proc/stat: %s",
			 strerror(w->err ? -w->err : EINVAL));
		return;
	}
	double *pct = calloc((size_t)(1 + w->sc.maxcpus) * SYSCPU_N, sizeof *pct);
	int rr = pct ? syscpu_read(&w->sc, pct) : -ENOMEM;
	if (rr)
		snprintf(t->sys_reason, sizeof t->sys_reason, "cannot read /proc/stat: %s",
			 strerror(-rr));
	if (!rr) {
		sys_group(&w->sc, pct, scpus, t->server_cpus, &t->sys_server);
		if (lcpus)
			sys_group(&w->sc, pct, lcpus, t->load_cpus, &t->sys_load);
		t->have_syscpu = t->sys_server.ncpus > 0;
	}
	free(pct);
	syscpu_close(&w->sc);
	w->ok = 0;
}

/* ---- kind = pingpong: one trial is one `ctxlab pingpong` of one mode ---- */

static void run_pingpong_trial(struct ctx *c, struct trial *t)
{
	const struct spec_cell *cell = t->cell;
	cpu_set_t scpus, lcpus;
	t->status = TRIAL_OK;
	t->start_wall_ns = clock_wall_ns();
	if (!host_is_local_machine(&c->server_host)) {
		trial_fail(t, "kind = pingpong runs on local and netns hosts only, not on '%s'",
			   c->s->server_host);
		return;
	}
	if (runner_placement(cell->cpus_count, cell->cpus_list, &scpus, &lcpus, &t->shared) < 0) {
		trial_fail(t, "cannot place pingpong on cpus '%s' (CPUs this process may use "
			   "changed?)", cell->cpus);
		return;
	}
	units_format_cpulist(&scpus, t->server_cpus, sizeof t->server_cpus);
	t->server_ncpus = CPU_COUNT(&scpus);
	if (!t->shared) {
		units_format_cpulist(&lcpus, t->load_cpus, sizeof t->load_cpus);
		t->load_ncpus = CPU_COUNT(&lcpus);
	}
	t->shared = 0; /* there is no load generator */
	char cgpath[512] = "", cgerr[256];
	int cgv = 0;
	if (monitor_cgroup_create(0, "run", cgpath, sizeof cgpath, &cgv, cgerr, sizeof cgerr))
		snprintf(t->acct_reason, sizeof t->acct_reason, "%s", cgerr), cgpath[0] = 0;
	char pairs[16], size[32], ws[32], stride[32], dur[32];
	snprintf(pairs, sizeof pairs, "%d", cell->pairs ? cell->pairs : 1);
	snprintf(size, sizeof size, "%llu",
		 (unsigned long long)(cell->size_bytes ? cell->size_bytes : 1));
	snprintf(ws, sizeof ws, "%llu", (unsigned long long)cell->working_set_bytes);
	snprintf(stride, sizeof stride, "%llu",
		 (unsigned long long)(cell->stride_bytes ? cell->stride_bytes : 64));
	units_format_duration(c->s->duration_ns, dur, sizeof dur);
	const char *argv[] = {c->o->self, "pingpong", "-q", "-m", cell->mode, "--pin",
			      cell->pin ? cell->pin : "same", "--pairs", pairs, "--size", size,
			      "--working-set", ws, "--stride", stride, "-d", dur, "-r", "1",
			      "--json", "-", NULL};
	char err[256];
	struct launch pp = {.started = 0};
	struct buf json = BUF_INIT;
	struct win_sys ws_ = {.ok = 0};
	log_marker(c, t, "pingpong");
	struct launch_spec ls = {.host = &c->server_host, .argv = argv, .cpus = &scpus,
				 .cgroup = cgpath, .logfd = c->logfd, .stop = &stop_sig};
	if (launch_start(&pp, &ls, err, sizeof err) < 0) {
		trial_fail(t, "cannot start pingpong: %s", err);
		goto out;
	}
	/* the window is the pingpong process's whole life (its sizing included): its own
	 * figures come from getrusage around its timed run; the monitor's and /proc/stat's
	 * cover the same span, for the interference check */
	uint64_t t0 = clock_now_ns();
	win_sys_start(&ws_);
	struct monitor_opts mo = {.pid = pp.child.keeper, .cpu_cgroup = cgpath[0] ? cgpath : NULL,
				  .from_birth = 1};
	struct monitor *mon = monitor_start(&mo, err, sizeof err);
	if (!mon)
		warn_trial(t, "pingpong's CPU not monitored: %s", err);
	uint64_t deadline = t0 + 3 * (c->s->warmup_ns + c->s->duration_ns) + LOAD_GRACE_NS;
	/* its JSON comes at its end; the monitor samples meanwhile (a sample per SAMPLE_NS) */
	int rr;
	for (;;) {
		uint64_t next = clock_now_ns() + SAMPLE_NS;
		rr = launch_read_all(&pp, &json, next < deadline ? next : deadline);
		if (rr != -ETIMEDOUT || clock_now_ns() >= deadline)
			break;
		struct monitor_sample smp;
		if (mon && monitor_sample(mon, &smp) == 0)
			monout_peak_update(&t->peak, &smp);
	}
	if (mon) {
		struct monitor_sample smp;
		if (monitor_sample(mon, &smp) == 0)
			monout_peak_update(&t->peak, &smp);
		monitor_stop(mon, &t->total);
		t->have_mon = 1;
		t->window_s = (clock_now_ns() - t0) / 1e9;
		if (!t->acct_reason[0] || t->total.method != MONITOR_PROCWALK)
			snprintf(t->acct_reason, sizeof t->acct_reason, "%s",
				 t->total.method_reason);
	}
	win_sys_end(&ws_, t, &scpus, t->load_ncpus ? &lcpus : NULL);
	if (rr == -EINTR)
		goto out;
	if (rr == -ETIMEDOUT) {
		trial_fail(t, "pingpong did not finish within %.0f s", (deadline - t0) / 1e9);
		goto out;
	}
	launch_wait(&pp, 5 * (int64_t)NS_PER_S);
	int status = 0;
	if (!launch_ended(&pp, &status) || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char st[96] = "did not exit", tail[256];
		if (launch_ended(&pp, &status))
			launch_status_text(status, st, sizeof st);
		launch_tail(&pp, tail, sizeof tail);
		trial_fail(t, "pingpong %s%s%s", st, tail[0] ? ": " : "", tail);
		goto out;
	}
	char jerr[256];
	json_t *doc = NULL;
	if (!json.len || buf_append(&json, "", 1) ||
	    !(doc = json_read_str(buf_head(&json), jerr, sizeof jerr))) {
		trial_fail(t, "pingpong wrote no JSON%s%s", doc ? "" : ": ", doc ? "" : jerr);
		goto out;
	}
	json_t *m0 = json_array_get(json_object_get(doc, "modes"), 0);
	if (!json_is_object(m0)) {
		json_decref(doc);
		trial_fail(t, "pingpong's JSON has no mode");
		goto out;
	}
	t->pp = json_incref(m0);
	json_decref(doc);
	/* user + system: what a round trip costs in CPU, whatever else shares the CPU (elapsed
	 * time also counts the waits behind other work) */
	json_object_set_new(t->pp, "cpu_ns_per_round_trip",
			    json_real(json_number_value(json_object_get(t->pp, "user_ns_per_round_trip")) +
				      json_number_value(json_object_get(t->pp, "sys_ns_per_round_trip"))));
	double vol = json_number_value(json_object_get(t->pp, "ctxsw_vol_per_round_trip"));
	double invol = json_number_value(json_object_get(t->pp, "ctxsw_invol_per_round_trip"));
	t->switch_check = record_pp_switch_check(cell->mode, vol, invol);
	if (t->switch_check && strcmp(t->switch_check, "ok"))
		warn_trial(t, "no-switch check failed (%s): %s made %.4f kernel switches per round "
			      "trip (voluntary %.4f, involuntary %.4f; an in-process mode is allowed "
			      "< %g): %s, its time is not switch-free", t->switch_check,
			   cell->mode, vol + invol, vol, invol, RECORD_PP_SWITCH_MAX,
			   !strcmp(t->switch_check, "blocked") ? "it waited in the kernel"
							       : "other work preempted it");
	if (!json_is_true(json_object_get(t->pp, "affinity_ok")))
		warn_trial(t, "pingpong's pin was not applied (placement %s)",
			   json_string_value(json_object_get(t->pp, "placement")));
out:
	buf_free(&json);
	if (ws_.ok)
		syscpu_close(&ws_.sc);
	launch_stop(&pp);
	if (cgpath[0]) {
		int rc = monitor_cgroup_remove(cgpath);
		if (rc)
			warn_trial(t, "cannot remove the cgroup '%s': %s", cgpath, strerror(-rc));
	}
	if (stopping() && t->status == TRIAL_OK)
		t->status = TRIAL_INTERRUPTED;
}

/* Places the trial's server and load on their CPUs. 0, or -1 with the trial failed. */
static int place_trial(struct trial *t, cpu_set_t *scpus, cpu_set_t *lcpus)
{
	const struct spec_cell *cell = t->cell;
	if (runner_placement(cell->cpus_count, cell->cpus_list, scpus, lcpus, &t->shared) < 0)
		return trial_fail(t, "cannot place the server on cpus '%s' (CPUs this process may "
				  "use changed?)", cell->cpus);
	units_format_cpulist(scpus, t->server_cpus, sizeof t->server_cpus);
	units_format_cpulist(lcpus, t->load_cpus, sizeof t->load_cpus);
	t->server_ncpus = CPU_COUNT(scpus);
	t->load_ncpus = CPU_COUNT(lcpus);
	if (t->shared)
		warn_trial(t, "load generator shared CPUs with the server");
	return 0;
}

/* The window's figures beside the monitor's: system calls by name of the server's cgroup
 * (monitor/syscount.h; its reason when unavailable) and the root process's own CPU from
 * /proc/PID/stat (the gateway's front, apart from its workers). 1 when sc is open. */
static int window_extras_start(struct trial *t, const char *cgpath, struct syscount *sc)
{
	(void)cgpath;
	int ok = t->sc_open && syscount_rebase(sc) == 0;
	t->x0_ns = clock_now_ns();
	t->front.ok = t->server_pid > 0 && procfs_read_stat(t->server_pid, &t->front.at0) == 0;
	return ok;
}

/* Opens the server cgroup's syscall counters before the load starts (enabling tracepoints
 * takes time: not in the window); t->sc_open, or the reason in t->sc_reason. */
static void syscalls_open(struct trial *t, const char *cgpath, int held)
{
	t->sc.reason = t->sc_reason;
	if (!cgpath[0])
		snprintf(t->sc_reason, sizeof t->sc_reason, "the server has no cgroup of its own "
			 "(needs root and cgroup v2 or a v1 perf_event hierarchy)");
	else
		t->sc_open = syscount_open(&t->scnt, cgpath, t->sc_reason, sizeof t->sc_reason) == 0;
	t->timing.counters_held = t->sc_open ? held : -1;
}

static void window_extras_end(struct trial *t, struct syscount *sc)
{
	if (sc) {
		if (syscount_read(sc, t->sc_count) == 0) {
			t->sc.ok = 1;
			t->sc.n = sc->n + 1;
			memcpy(t->sc_name, sc->name, sizeof(t->sc_name));
			t->sc.name = t->sc_name;
			t->sc.count = t->sc_count;
		} else {
			snprintf(t->sc_reason, sizeof t->sc_reason, "cannot read the counters");
		}
	}
	if (t->front.ok)
		t->front.ok = procfs_read_stat(t->server_pid, &t->front.at1) == 0;
	/* their own window: the monitor's window_s also covers monitor_stop */
	t->sc.window_s = t->front.window_s = (clock_now_ns() - t->x0_ns) / 1e9;
}

/* The server's monitor (keeper pid, its cgroup when cgpath), started before the window: NULL
 * with the trial failed when it cannot start. */
static struct monitor *window_monitor(struct trial *t, pid_t keeper, const char *cgpath)
{
	char err[256] = "";
	struct monitor_opts mo = {.pid = keeper, .cpu_cgroup = cgpath[0] ? cgpath : NULL};
	struct monitor *mon = monitor_start(&mo, err, sizeof err);
	if (!mon)
		trial_fail(t, "cannot monitor the server: %s", err);
	return mon;
}

/* Samples the server's tree from now until m1 into t->total and the peaks, with the monitor
 * window_monitor started during the warm-up (its first walk of a tree of hundreds of
 * processes can take most of a second): its span starts over now (monitor_rebase), so the
 * window excludes start-up and warm-up. Consumes mon (stopped here; NULL for a server on
 * another host). 0, or -1 when interrupted or the monitor failed. */
static int measure_window(struct ctx *c, struct trial *t, struct monitor *mon, const char *cgpath,
			  uint64_t m1, const cpu_set_t *scpus, const cpu_set_t *lcpus)
{
	if (!host_is_local_machine(&c->server_host)) {
		warn_trial(t, "server on '%s': its CPU is not measured (the monitor runs in-process "
			      "on local and netns hosts only)", c->s->server_host);
		snprintf(t->sys_reason, sizeof t->sys_reason, "the server runs on '%.100s': this "
			 "machine's /proc/stat does not show its CPUs", c->s->server_host);
		return nap_until(m1) ? -1 : 0;
	}
	struct win_sys wsys;
	win_sys_start(&wsys);
	int rb = monitor_rebase(mon);
	if (rb) {
		monitor_stop(mon, NULL);
		if (wsys.ok)
			syscpu_close(&wsys.sc);
		return trial_fail(t, "cannot monitor the server: %s", strerror(-rb));
	}
	uint64_t mstart = clock_now_ns();
	t->mon_wall_ns = clock_wall_ns();
	int sc_ok = window_extras_start(t, cgpath, &t->scnt);
	for (;;) {
		uint64_t next = clock_now_ns() + SAMPLE_NS;
		if (nap_until(next > m1 ? m1 : next)) {
			monitor_stop(mon, NULL);
			if (wsys.ok)
				syscpu_close(&wsys.sc);
			return -1;
		}
		struct monitor_sample smp;
		if (monitor_sample(mon, &smp) == 0) {
			monout_peak_update(&t->peak, &smp);
			if (t->timeline && t->ntl < TL_MAX)
				t->tl[t->ntl++] = (struct tl_sample){
					(clock_now_ns() - mstart) / 1e9, smp.interval_s,
					smp.cpu_total_cores, smp.ctxsw_vol_per_s, smp.ctxsw_invol_per_s};
		}
		if (clock_now_ns() >= m1)
			break;
	}
	window_extras_end(t, sc_ok ? &t->scnt : NULL);
	monitor_stop(mon, &t->total);
	win_sys_end(&wsys, t, scpus, t->shared ? NULL : lcpus);
	t->have_mon = 1;
	if (!t->acct_reason[0] || t->total.method != MONITOR_PROCWALK)
		snprintf(t->acct_reason, sizeof t->acct_reason, "%s", t->total.method_reason);
	t->window_s = (clock_now_ns() - mstart) / 1e9;
	if (t->total.cpu_total_cores > t->peak.cpu_total_cores)
		t->peak.cpu_total_cores = t->total.cpu_total_cores;
	return 0;
}

/* Reads the load generator's JSON into t->load once it is done. 0, or -1 (interrupted, or
 * the trial failed). */
static int collect_load(struct trial *t, struct launch *ld, uint64_t m1, const char *who,
			json_t **doc)
{
	struct buf json = BUF_INIT;
	int rc = 0, rr = launch_read_all(ld, &json, m1 + LOAD_GRACE_NS);
	if (rr == -EINTR) {
		rc = -1;
		goto out;
	}
	if (rr == -ETIMEDOUT) {
		rc = trial_fail(t, "%s did not finish within %.0f s after its duration", who,
				LOAD_GRACE_NS / 1e9);
		goto out;
	}
	launch_wait(ld, 5 * (int64_t)NS_PER_S);
	int status = 0;
	if (!launch_ended(ld, &status) || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char st[96] = "did not exit", tail[256];
		if (launch_ended(ld, &status))
			launch_status_text(status, st, sizeof st);
		launch_tail(ld, tail, sizeof tail);
		trial_fail(t, "%s %s%s%s", who, st, tail[0] ? ": " : "", tail);
	}
	if (json.len && buf_append(&json, "", 1) == 0) {
		char jerr[256];
		*doc = json_read_str(buf_head(&json), jerr, sizeof jerr);
		if (!*doc)
			trial_fail(t, "cannot read the JSON of %s: %s", who, jerr);
	} else {
		trial_fail(t, "%s wrote no JSON", who);
	}
out:
	buf_free(&json);
	return rc;
}

/* Collects every load host's JSON and merges them exactly into t->load (lab/multihost.h). */
static int collect_loads(struct ctx *c, struct trial *t, struct launch *lds, const double *rates,
			 uint64_t m1)
{
	json_t *docs[MULTIHOST_MAX] = {NULL};
	const char *names[MULTIHOST_MAX];
	int rc = 0, have = 0;
	for (int i = 0; i < c->nload && rc == 0; i++) {
		char who[300];
		load_who(c, i, who, sizeof who);
		names[i] = c->load_names[i];
		rc = collect_load(t, &lds[i], m1, who, &docs[i]);
		have += docs[i] != NULL;
	}
	if (rc == 0 && have == c->nload) {
		char err[256];
		t->load = multihost_merge(docs, names, rates, c->nload, err, sizeof err);
		if (!t->load)
			trial_fail(t, "%s", err);
	}
	for (int i = 0; i < c->nload; i++)
		json_decref(docs[i]);
	return rc;
}

/* ---- the per-interval timeline of a chosen cell ([experiment] timeline) ---- */

/* The mean of the monitor samples whose middle falls in [a, b) (weighted by their length);
 * NAN when none. f: 0 cores, 1 voluntary, 2 involuntary switches per second. */
static double tl_bin(const struct trial *t, double a, double b, int f)
{
	double sum = 0, w = 0;
	for (int i = 0; i < t->ntl; i++) {
		const struct tl_sample *x = &t->tl[i];
		double mid = x->t_s - x->iv_s / 2;
		if (mid < a || mid >= b)
			continue;
		double v = f == 0 ? x->cores : f == 1 ? x->vol_per_s : x->invol_per_s;
		sum += v * x->iv_s;
		w += x->iv_s;
	}
	return w > 0 ? sum / w : NAN;
}

static void jw_knum(struct jw *w, const char *k, double v)
{
	if (isfinite(v)) {
		jw_kdouble(w, k, v);
	} else {
		jw_key(w, k);
		jw_null(w);
	}
}

/* DIR/timeline/ID.json (+ .csv): the load's per-interval latency (exact HDR percentiles)
 * and the monitor's server CPU and switches on one time axis, the window's (seconds from
 * the monitor's start). A failure is a trial warning. */
static void write_timeline(struct ctx *c, struct trial *t)
{
	const json_t *iv = t->load ? json_object_get(t->load, "intervals") : NULL;
	const json_t *rows = json_object_get(iv, "rows");
	if (t->status != TRIAL_OK || !json_is_array(rows) || !t->have_mon) {
		if (t->status == TRIAL_OK)
			warn_trial(t, "no timeline: %s", !t->have_mon ? "the server was not monitored"
								      : "the load generator wrote no intervals");
		return;
	}
	double ivs = json_number_value(json_object_get(iv, "interval_s"));
	double off = ((double)json_integer_value(json_object_get(t->load, "start_wall_ns")) -
		      (double)t->mon_wall_ns) / 1e9;
	struct jw w;
	jw_init(&w);
	struct buf csv = BUF_INIT;
	buf_appendf(&csv, "t_s,count,p50_us,p90_us,p99_us,p99_9_us,max_us,server_cpu_cores,"
			  "ctxsw_per_s,ctxsw_vol_per_s,ctxsw_invol_per_s\n");
	jw_obj(&w);
	jw_kstr(&w, "cell", t->cell->key);
	jw_kstr(&w, "cell_id", t->cell_id);
	jw_kint(&w, "repeat", t->repeat);
	jw_kdouble(&w, "interval_s", ivs);
	jw_kdouble(&w, "load_offset_s", off);
	jw_key(&w, "rows");
	jw_arr(&w);
	for (size_t k = 0; k < json_array_size(rows); k++) {
		const json_t *r = json_array_get(rows, k);
		double t0 = off + json_number_value(json_object_get(r, "t_s"));
		double cores = tl_bin(t, t0, t0 + ivs, 0), vol = tl_bin(t, t0, t0 + ivs, 1);
		double invol = tl_bin(t, t0, t0 + ivs, 2);
		static const char *const lk[] = {"p50_us", "p90_us", "p99_us", "p99_9_us", "max_us"};
		jw_obj(&w);
		jw_kdouble(&w, "t_s", t0);
		jw_kuint(&w, "count", (uint64_t)json_integer_value(json_object_get(r, "count")));
		buf_appendf(&csv, "%.3f,%lld", t0,
			    (long long)json_integer_value(json_object_get(r, "count")));
		for (int i = 0; i < 5; i++) {
			double v = json_number_value(json_object_get(r, lk[i]));
			jw_kdouble(&w, lk[i], v);
			buf_appendf(&csv, ",%.3f", v);
		}
		jw_knum(&w, "server_cpu_cores", cores);
		jw_knum(&w, "ctxsw_per_s", vol + invol);
		jw_knum(&w, "ctxsw_vol_per_s", vol);
		jw_knum(&w, "ctxsw_invol_per_s", invol);
		if (isfinite(cores))
			buf_appendf(&csv, ",%.4f,%.1f,%.1f,%.1f\n", cores, vol + invol, vol, invol);
		else
			buf_appendf(&csv, ",,,,\n");
		jw_end(&w);
	}
	jw_end(&w);
	jw_key(&w, "server_samples");
	jw_arr(&w);
	for (int i = 0; i < t->ntl; i++) {
		jw_obj(&w);
		jw_kdouble(&w, "t_s", t->tl[i].t_s);
		jw_kdouble(&w, "interval_s", t->tl[i].iv_s);
		jw_kdouble(&w, "server_cpu_cores", t->tl[i].cores);
		jw_kdouble(&w, "ctxsw_vol_per_s", t->tl[i].vol_per_s);
		jw_kdouble(&w, "ctxsw_invol_per_s", t->tl[i].invol_per_s);
		jw_end(&w);
	}
	jw_end(&w);
	jw_end(&w);
	char rel[256], path[4096];
	int rc = outfile_mkdirs_under(c->o->dir, "timeline");
	if (!rc && !w.oom) {
		snprintf(rel, sizeof rel, "timeline/%s%s%.0d.json", t->cell_id, t->repeat ? "-r" : "",
			 t->repeat);
		snprintf(path, sizeof path, "%s/%s", c->o->dir, rel);
		rc = outfile_write(path, w.buf, w.len, 0);
		if (!rc) {
			snprintf(t->timeline_path, sizeof t->timeline_path, "%s", rel);
			snprintf(path + strlen(path) - 5, 6, ".csv");
			rc = outfile_write(path, buf_head(&csv), buf_used(&csv), 0);
		}
	}
	if (rc || w.oom)
		warn_trial(t, "no timeline: cannot write '%s/timeline': %s", c->o->dir,
			   w.oom ? "out of memory" : outfile_strerror(rc));
	buf_free(&csv);
	jw_release(&w);
}

/* ---- [experiment] alloc: the server preloaded with libctxlab-alloc.so ---- */



/* Before the server starts: its preload environment in t->srv_env, or t->alloc_reason. */
static void alloc_prepare(struct ctx *c, struct trial *t)
{
	t->alloc_mode = c->s->alloc == SPEC_ALLOC_EXACT ? "exact" : "sampled";
	char lib[1100];
	int go = !strcmp(t->cell->engine, "go");
	if (go && !host_is_local_machine(&c->server_host)) {
		snprintf(t->alloc_reason, sizeof t->alloc_reason, "static binary: the Go peer "
			 "(ctxlab-peer-go) is statically linked, LD_PRELOAD has no effect on it; its "
			 "runtime's own figure is read on local and netns server hosts only: n/a");
		return;
	}
	if (!host_is_local_machine(&c->server_host)) {
		snprintf(t->alloc_reason, sizeof t->alloc_reason, "the server runs on '%.100s': the "
			 "interposer's counters are files on that machine (local and netns server "
			 "hosts only)", c->s->server_host);
		return;
	}
	if (!go && alloc_lib_path(c->o->self, lib, sizeof lib)) {
		snprintf(t->alloc_reason, sizeof t->alloc_reason, "cannot find libctxlab-alloc.so "
			 "next to '%.150s' (it is built with ctxlab: cmake --build build)", c->o->self);
		return;
	}
	const char *tmp = getenv("TMPDIR");
	snprintf(t->alloc_dir, sizeof t->alloc_dir, "%.200s/ctxlab-alloc.XXXXXX",
		 tmp && tmp[0] ? tmp : "/tmp");
	if (!mkdtemp(t->alloc_dir)) {
		snprintf(t->alloc_reason, sizeof t->alloc_reason, "cannot create '%s': %s (set "
			 "TMPDIR)", t->alloc_dir, strerror(errno));
		t->alloc_dir[0] = 0;
		return;
	}
	if (go) {
		/* the peer writes its runtime's counters there (peers/go/memstats.go) */
		t->alloc_go = 1;
		t->alloc_mode = "go-runtime";
		snprintf(t->alloc_env[0], sizeof t->alloc_env[0], "CTXLAB_GO_MEMSTATS=%s/go-memstats",
			 t->alloc_dir);
		t->srv_env[0] = t->alloc_env[0];
		t->srv_env[1] = NULL;
		return;
	}
	const char *old = getenv("LD_PRELOAD"), *asan = getenv("ASAN_OPTIONS");
	snprintf(t->alloc_env[0], sizeof t->alloc_env[0], "LD_PRELOAD=%s%s%.100s", lib,
		 old && old[0] ? ":" : "", old ? old : "");
	snprintf(t->alloc_env[1], sizeof t->alloc_env[1], "CTXLAB_ALLOC_DIR=%s", t->alloc_dir);
	/* sampled: the interposer's default mean (profile --alloc's 512 KiB) */
	snprintf(t->alloc_env[2], sizeof t->alloc_env[2], "CTXLAB_ALLOC_SAMPLE=%d",
		 c->s->alloc == SPEC_ALLOC_EXACT ? 0 : 512 * 1024);
	/* an ASan build aborts when a preload comes before its runtime */
	snprintf(t->alloc_env[3], sizeof t->alloc_env[3], "ASAN_OPTIONS=%.1000s%sverify_asan_link_order=0",
		 asan ? asan : "", asan && asan[0] ? ":" : "");
	for (int i = 0; i < 4; i++)
		t->srv_env[i] = t->alloc_env[i];
	t->srv_env[4] = NULL;
}

/* The Go peer's runtime counters (peers/go/memstats.go: "NS OBJECTS BYTES", NS wall clock when
 * it read them), as calls and bytes; *ns = NS. 0 or -errno (-ENOENT: not written). */
static int alloc_go_read(const char *dir, struct alloc_counters *a, uint64_t *ns)
{
	char path[300], line[128];
	snprintf(path, sizeof path, "%s/go-memstats", dir);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	unsigned long long t, o, b;
	int ok = fgets(line, sizeof line, f) && sscanf(line, "%llu %llu %llu", &t, &o, &b) == 3;
	fclose(f);
	if (!ok)
		return -EBADMSG;
	*a = (struct alloc_counters){.calls = o, .bytes = b, .images = 1};
	*ns = t;
	return 0;
}

/* At the window's start (first) and its end: the counters' difference over the time between
 * the two readings, so start-up and warm-up allocations do not count. */
static void alloc_window(struct trial *t, int first)
{
	if (!t->alloc_dir[0] || t->alloc_reason[0])
		return;
	struct alloc_counters a;
	uint64_t now;
	int e;
	if (t->alloc_go) {
		e = alloc_go_read(t->alloc_dir, &a, &now);
		if (e) {
			snprintf(t->alloc_reason, sizeof t->alloc_reason, "static binary: the Go peer is "
				 "statically linked (LD_PRELOAD has no effect on it) and its runtime's "
				 "counters could not be read (%s; a peer built before it wrote them?): n/a",
				 strerror(-e));
			return;
		}
	} else {
		e = alloc_counters_read(t->alloc_dir, &a);
		now = clock_now_ns();
	}
	if (e == -ENOENT) {
		snprintf(t->alloc_reason, sizeof t->alloc_reason, "preload refused: the interposer "
			 "did not start in the server (no record file)");
		return;
	}
	if (e) {
		snprintf(t->alloc_reason, sizeof t->alloc_reason, "cannot read the interposer's "
			 "counters in '%.200s': %s", t->alloc_dir, strerror(-e));
		return;
	}
	if (first) {
		t->alloc0 = a;
		t->alloc_t0 = now;
		return;
	}
	if (!a.calls) {
		snprintf(t->alloc_reason, sizeof t->alloc_reason, "the server made no call to malloc "
			 "& co. that the interposer saw (an allocator of its own?)");
		return;
	}
	double s = (double)(now - t->alloc_t0) / 1e9;
	if (s <= 0)
		return;
	t->alloc_calls_per_s = (double)(a.calls - t->alloc0.calls) / s;
	t->alloc_bytes_per_s = (double)(a.bytes - t->alloc0.bytes) / s;
	t->alloc_frees_per_s = (double)(a.frees - t->alloc0.frees) / s;
	t->alloc_have = 1;
}

static void run_trial(struct ctx *c, struct trial *t)
{
	if (c->s->pingpong) {
		run_pingpong_trial(c, t);
		return;
	}
	cpu_set_t scpus, lcpus;
	t->status = TRIAL_OK;
	t->start_wall_ns = clock_wall_ns();
	t->ph0 = clock_now_ns();
	t->timing.counters_held = -1;
	t->timing.symcache_hits = t->timing.symcache_misses = -1;
	if (place_trial(t, &scpus, &lcpus) < 0)
		return;
	struct launch srv = {.started = 0}, prof = {.started = 0}, lds[MULTIHOST_MAX];
	double rates[MULTIHOST_MAX] = {0};
	for (int i = 0; i < MULTIHOST_MAX; i++)
		lds[i].started = 0;
	if (c->host_err[0]) {
		trial_fail(t, "%s", c->host_err);
		return;
	}
	/* exact accounting: the server's whole tree in a cgroup of its own when we may create
	 * one (root); else the /proc walk */
	char cgpath[512] = "", cgerr[256];
	int cgv = 0;
	if (host_is_local_machine(&c->server_host) &&
	    monitor_cgroup_create(0, "run", cgpath, sizeof cgpath, &cgv, cgerr, sizeof cgerr))
		snprintf(t->acct_reason, sizeof t->acct_reason, "%s", cgerr), cgpath[0] = 0;
	if (c->s->alloc)
		alloc_prepare(c, t);
	phase(t, RECORD_PH_SETUP);
	if (start_server(c, t, &scpus, &srv, cgpath) < 0 || stopping())
		goto out;
	phase(t, RECORD_PH_SERVER);
	for (int i = 0; i < c->nload; i++)
		t->load_remote |= !host_is_local_machine(&c->load_hosts[i]);
	if (host_is_local_machine(&c->server_host))
		syscalls_open(t, cgpath, c->sc_hold.n > 0);
	phase(t, RECORD_PH_COUNTERS);
	if (start_loads(c, t, &lcpus, lds, rates) < 0)
		goto out;
	phase(t, RECORD_PH_LOAD);
	if (await_warmup(c, t, lds) < 0)
		goto out;
	phase(t, RECORD_PH_CONNECT);
	uint64_t m0 = clock_now_ns() + c->s->warmup_ns, m1 = m0 + c->s->duration_ns;
	struct monitor *mon = NULL;
	if (host_is_local_machine(&c->server_host) &&
	    !(mon = window_monitor(t, srv.child.keeper, cgpath)))
		goto out;
	if (nap_until(m0)) {
		if (mon)
			monitor_stop(mon, NULL);
		goto out;
	}
	phase(t, RECORD_PH_WARMUP);
	if (t->want_profile && host_is_local_machine(&c->server_host))
		/* the profiler samples the server's cgroup (else the keeper's tree) over the
		 * window, on the load CPUs */
		start_profiler(c, t, &lcpus, srv.child.keeper, cgpath, m1, &prof);
	else if (t->want_profile)
		warn_trial(t, "not profiled: the server runs on '%s' (profiling runs on local and "
			      "netns server hosts only)", c->s->server_host);
	alloc_window(t, 1);
	if (measure_window(c, t, mon, cgpath, m1, &scpus, &lcpus) < 0)
		goto out;
	alloc_window(t, 0);
	phase(t, RECORD_PH_WINDOW);
	t->win_end = t->ph[RECORD_PH_WINDOW];
	/* the server must still be up at the end of the window */
	int status;
	if (launch_ended(&srv, &status)) {
		char st[96];
		launch_status_text(status, st, sizeof st);
		if (c->server_host.kind != HOST_LOCAL)
			trial_fail(t, "the server on '%s' %s during the trial", c->s->server_host, st);
		else
			trial_fail(t, "the server %s during the trial", st);
	}
	if (collect_loads(c, t, lds, rates, m1) < 0)
		goto out;
	if (t->timeline)
		write_timeline(c, t);
	phase(t, RECORD_PH_COLLECT);
	/* the profiler ends before the server is stopped, so that no shutdown is sampled */
	if (prof.started) {
		finish_profiler(c, t, &prof);
		phase(t, RECORD_PH_PROFILE);
	}
out:
	if (t->sc_open)
		syscount_close(&t->scnt);
	t->sc_open = 0;
	launch_stop(&prof);
	for (int i = 0; i < c->nload; i++)
		launch_stop(&lds[i]);
	launch_stop(&srv);
	if (t->alloc_dir[0])
		alloc_dir_remove(t->alloc_dir);
	if (cgpath[0]) {
		int rc = monitor_cgroup_remove(cgpath);
		if (rc)
			warn_trial(t, "cannot remove the cgroup '%s': %s (a server process outlived "
				      "the trial?)", cgpath, strerror(-rc));
	}
	phase(t, RECORD_PH_STOP);
	phases_done(t);
	if (stopping() && t->status == TRIAL_OK)
		t->status = TRIAL_INTERRUPTED;
}

int runner_probe(const char *self, const char *server_host, const char *engine,
		 const char *proto, char *why, size_t len)
{
	struct spec fake;
	memset(&fake, 0, sizeof fake);
	snprintf(fake.server_address, sizeof fake.server_address, "127.0.0.1");
	struct runner_opts o = {.self = self, .ready_timeout_ns = 10 * NS_PER_S};
	struct ctx c = {.s = &fake, .o = &o, .logfd = -1};
	if (host_parse(&c.server_host, server_host, why, len) < 0)
		return -1;
	struct spec_cell cell;
	memset(&cell, 0, sizeof cell);
	snprintf(cell.key, sizeof cell.key, "probe engine=%s proto=%s", engine, proto);
	cell.engine = engine;
	cell.proto = proto;
	struct trial t;
	memset(&t, 0, sizeof t);
	t.cell = &cell;
	t.status = TRIAL_OK;
	/* its stderr into a pipe-less temporary log, for the reason */
	char path[] = "/tmp/ctxlab-probe-XXXXXX";
	c.logfd = mkstemp(path);
	if (c.logfd >= 0)
		unlink(path);
	struct launch srv = {.started = 0};
	cpu_set_t mine;
	sched_getaffinity(0, sizeof mine, &mine);
	start_server(&c, &t, &mine, &srv, NULL);
	launch_stop(&srv);
	if (c.logfd >= 0)
		close(c.logfd);
	if (t.status != TRIAL_OK) {
		snprintf(why, len, "%s", t.reason);
		return -1;
	}
	return stopping() ? -1 : 0;
}

/* ---- the record ---- */

int runner_rate_kept(const struct json_t *L, char *why, size_t len)
{
	double target = json_number_value(json_object_get(L, "target_rate_per_s"));
	double sent = json_number_value(json_object_get(L, "sent_rate_per_s"));
	double dur = json_number_value(json_object_get(L, "duration_s"));
	double late = json_number_value(json_object_get(L, "late_sends"));
	if (!(target > 0) || !(dur > 0))
		return 1;
	/* the schedule's messages in the window: the share of them that left late */
	double due = target * dur, share = due > 0 ? late / due : 0;
	if (share > 1)
		share = 1;
	if (fabs(sent - target) <= RUNNER_RATE_OFF * target)
		return 1;
	snprintf(why, len, "sent [%.0f/s of %.0f/s offered, %.0f%% of the messages more than 1 ms "
		 "late]", sent, target, share * 100);
	return 0;
}

/* Checks the load generator's figures: a trial that moved nothing failed; errors, late sends and
 * a CPU-bound client are warnings of the trial. */
static void check_load(struct trial *t)
{
	const json_t *L = t->load;
	if (t->status != TRIAL_OK || !L)
		return;
	struct record_load_figs f;
	record_load_figs(L, &f);
	if (f.requests <= 0 && f.bytes <= 0) {
		trial_fail(t, "the load generator moved no data");
		return;
	}
	json_t *e = json_object_get(L, "errors");
	double ne = json_number_value(json_object_get(e, "total"));
	if (ne > 0)
		warn_trial(t, "the load generator counted errors [%.0f]", ne);
	char why[200];
	if (!runner_rate_kept(L, why, sizeof why))
		warn_trial(t, "the load generator could not keep its rate: %s", why);
	json_t *cc = json_object_get(L, "client_cpu");
	if (cc && f.duration_s > 0 && t->load_ncpus > 0 && !t->load_remote) {
		double cores = (json_number_value(json_object_get(cc, "user_s")) +
				json_number_value(json_object_get(cc, "sys_s"))) / f.duration_s;
		if (cores >= 0.9 * t->load_ncpus)
			warn_trial(t, "load generator was CPU-bound: throughput is client-bound, "
				      "compare CPU per request [%.2f of %d CPUs]", cores, t->load_ncpus);
	}
}

/* The record of a finished trial (lab/record.h writes it). */
/* The server group's CPU beyond the server's tree (and the load's when it shared them), and
 * the interference warning. */
static int check_syscpu(struct trial *t)
{
	if (!t->have_syscpu || !t->have_mon || t->status != TRIAL_OK)
		return 0;
	double other = t->sys_server.busy_cores - t->total.cpu_total_cores;
	json_t *cc = t->load ? json_object_get(t->load, "client_cpu") : NULL;
	double ld = t->load ? json_number_value(json_object_get(t->load, "duration_s")) : 0;
	if (t->shared && cc && ld > 0)
		other -= (json_number_value(json_object_get(cc, "user_s")) +
			  json_number_value(json_object_get(cc, "sys_s"))) / ld;
	t->sys_server.other_cores = other > 0 ? other : 0;
	char why[256];
	if (!record_syscpu_interference(&t->sys_server, why, sizeof why))
		return 0;
	warn_trial(t, "%s", why);
	return 1;
}

static void record(struct trial *t, const struct spec *s, struct jw *w)
{
	check_load(t);
	int interference = check_syscpu(t);
	const struct spec_cell *cell = t->cell;
	struct record_param params[SPEC_MAX_PARAMS];
	for (int i = 0; i < cell->nparams; i++)
		params[i] = (struct record_param){cell->p[i].key, cell->p[i].value};
	const char *warnings[8];
	for (int i = 0; i < t->nwarn; i++)
		warnings[i] = t->warnings[i];
	if (t->alloc_mode && !t->alloc_have && !t->alloc_reason[0])
		snprintf(t->alloc_reason, sizeof t->alloc_reason, "the trial ended before its "
			 "window was measured");
	struct record r = {
		.trial = t->k, .of = t->of, .repeat = t->repeat, .cell = cell->key,
		.cell_index = cell->index,
		.nparams = cell->nparams, .params = params, .ok = t->status == TRIAL_OK,
		.reason = t->reason, .profiled = t->profiled, .flame_dir = t->flame_dir,
		.start_wall_ns = t->start_wall_ns, .warmup_s = s->warmup_ns / 1e9,
		.duration_s = s->duration_ns / 1e9, .server_host = s->server_host,
		.load_host = s->load_host,
		.server_address = t->address[0] ? t->address : s->server_address,
		.server_cpus = t->server_cpus, .load_cpus = t->load_cpus,
		.server_ncpus = t->server_ncpus, .load_ncpus = t->load_ncpus, .shared = t->shared,
		.have_mon = t->have_mon, .accounting = monitor_method_name(t->total.method),
		.accounting_reason = t->acct_reason, .window_s = t->window_s, .total = &t->total,
		.peak = &t->peak, .load = t->load, .nwarn = t->nwarn, .warnings = warnings,
		.have_syscpu = t->have_syscpu, .sys_server = t->sys_server, .sys_load = t->sys_load,
		.interference = interference, .kind = s->pingpong ? "pingpong" : NULL,
		.pingpong = t->pp, .switch_check = t->switch_check,
		.timeline = t->timeline_path[0] ? t->timeline_path : NULL,
		.syscpu_reason = t->sys_reason[0] ? t->sys_reason : NULL,
		.syscalls = &t->sc, .front = &t->front,
		.alloc_mode = t->alloc_mode, .alloc_reason = t->alloc_reason[0] ? t->alloc_reason : NULL,
		.alloc_calls_per_s = t->alloc_calls_per_s, .alloc_bytes_per_s = t->alloc_bytes_per_s,
		.alloc_frees_per_s = t->alloc_frees_per_s,
		.timing = s->pingpong ? NULL : &t->timing,
		.alloc_note = t->alloc_go && !t->alloc_reason[0]
			? "static binary: LD_PRELOAD has no effect on the Go peer; these are its "
			  "runtime's own counters (runtime/metrics /gc/heap/allocs: heap allocations "
			  "and bytes, go test -benchmem's allocs/op and B/op), not malloc calls"
			: NULL,
	};
	record_write(w, &r);
}

/* ---- the run ---- */

static int append_record(int fd, struct jw *w)
{
	if (w->oom)
		return -ENOMEM;
	size_t off = 0;
	/* one write of the line (with its newline), then fsync */
	w->buf[w->len] = '\n';
	size_t len = w->len + 1;
	while (off < len) {
		ssize_t n = write(fd, w->buf + off, len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			w->buf[w->len] = 0;
			return -errno;
		}
		off += (size_t)n;
	}
	w->buf[w->len] = 0;
	return fsync(fd) < 0 ? -errno : 0;
}

/* Which trials DIR/trials.jsonl holds already: done[repeat * ncells + i] = 1 for every valid
 * record whose "cell" is the key of cells[i] and whose "repeat" is in range (below max_repeat:
 * the extra rounds' records count too), its decisive figures noted in sm. Matched by cell
 * key and repeat, never by trial number: a resumed matrix may be ordered or sized otherwise.
 * A line that is not a valid record (a crash mid-write, a corrupt line) is skipped with a
 * warning and kept in the file: no byte is ever removed. *unterminated = 1 when the file does
 * not end with a newline (the caller ends that line before appending). Returns how many
 * trials are done, or -errno (a link or non-regular file: -ELOOP / -EMEDIUMTYPE). */
/* The ok trials' decisive figures per cell: cpu[i * cap + j], rps[...] for j < n[i]. */
struct samples {
	int cap;
	double *cpu, *rps;
	int *n, *nsat;
	int *trials;    /* trials recorded per cell (ok or failed) */
};

static void samples_note(struct samples *sm, int i, const struct record *rec)
{
	sm->trials[i]++;
	double cpu, rps = 0;
	/* kind = pingpong: time per round trip decides */
	int pp = rec->ok && record_metric(rec, RECORD_M_PP_NS_PER_RT, &cpu);
	if (!rec->ok || sm->n[i] >= sm->cap ||
	    (!pp && (!record_metric(rec, RECORD_M_CPU_US_PER_REQUEST, &cpu) ||
		     !record_metric(rec, RECORD_M_REQUESTS_PER_S, &rps))))
		return;
	sm->cpu[i * sm->cap + sm->n[i]] = cpu;
	sm->rps[i * sm->cap + sm->n[i]] = rps;
	sm->n[i]++;
	sm->nsat[i] += pp ? 0 : record_saturated(rec);
}

/* Cell i's decisive values (a pointer into sm) and their count. */
static const double *samples_decisive(const struct samples *sm, int i, int *n)
{
	*n = sm->n[i];
	int m = record_decisive_metric(sm->nsat[i], sm->n[i]);
	return (m == RECORD_M_REQUESTS_PER_S ? sm->rps : sm->cpu) + (size_t)i * sm->cap;
}

static int load_done(const char *path, const struct spec_cell *cells, int ncells, int repeat,
		     char *done, int *unterminated, struct samples *sm)
{
	*unterminated = 0;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return errno == ELOOP ? -ELOOP : -errno;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EMEDIUMTYPE;
	}
	FILE *f = fdopen(fd, "r");
	if (!f) {
		int e = -errno;
		close(fd);
		return e;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int count = 0, lineno = 0, bad = 0, foreign = 0;
	while ((n = getline(&line, &cap, f)) > 0) {
		lineno++;
		int last = line[n - 1] != '\n';
		if (last)
			*unterminated = 1;
		struct record rec;
		char rerr[256];
		int rc = record_parse(line, (size_t)n, &rec, rerr, sizeof rerr);
		if (rc == -EPROTONOSUPPORT) {
			/* a newer ctxlab's records: appending older ones would mix schemas */
			error("'%s' line %d: %s", path, lineno, rerr);
			record_release(&rec);
			count = -EPROTONOSUPPORT;
			break;
		}
		if (rc < 0 || !rec.cell || !json_is_integer(json_object_get(rec.json, "repeat"))) {
			if (++bad <= 5)
				warn("'%s' line %d is not a valid trial record%s: skipped (kept in "
				     "the file)", path, lineno, last ? " (cut short)" : "");
			record_release(&rec);
			continue;
		}
		int r = rec.repeat;
		int i = 0;
		while (i < ncells && strcmp(cells[i].key, rec.cell))
			i++;
		if (i == ncells || r < 0 || r >= repeat) {
			foreign++;
		} else if (!done[r * ncells + i]) {
			done[r * ncells + i] = 1;
			count++;
			samples_note(sm, i, &rec);
		}
		record_release(&rec);
	}
	free(line);
	fclose(f);
	if (bad > 5)
		warn("'%s': %d lines in all are not valid trial records (skipped, kept)", path, bad);
	if (foreign)
		warn("'%s': %d record%s of cells or repeats not in this matrix (kept, not counted)",
		     path, foreign, foreign == 1 ? "" : "s");
	return count;
}

static void progress(const struct runner_opts *o, int tty, int done, int total, const char *cell,
		     uint64_t eta_ns)
{
	if (o->quiet)
		return;
	char eta[32];
	uint64_t s = eta_ns / NS_PER_S;
	snprintf(eta, sizeof eta, "%llum%02llus", (unsigned long long)(s / 60),
		 (unsigned long long)(s % 60));
	if (tty) {
		int width = 24, fill = total ? done * width / total : width;
		char bar[32];
		for (int i = 0; i < width; i++)
			bar[i] = i < fill ? '#' : '.';
		bar[width] = 0;
		fprintf(stderr, "\r\033[K[%s] %d/%d ETA %s  %.80s", bar, done, total, eta, cell);
		fflush(stderr);
	} else {
		info("trial %d/%d, ETA %s: %s", done + 1 > total ? total : done + 1, total, eta, cell);
	}
}

int runner_lock(const char *dir, char *err, size_t errlen)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errbuf(err, errlen, "cannot open '%s': %s", dir, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		close(fd);
		if (e == EWOULDBLOCK)
			return errbuf(err, errlen, "'%s' is in use by another 'ctxlab run' (it holds "
				      "the directory's lock): wait for it to end, or use another "
				      "directory", dir);
		return errbuf(err, errlen, "cannot lock '%s': %s", dir, strerror(e));
	}
	return fd;
}

/* A run's open files and what is already done. */
struct run {
	struct spec_cell *cells;
	int ncells, ntrials, ndone, nprof_left;  /* ntrials, ndone: the fixed rounds' */
	int maxrep;                /* s->max_repeat (s->repeat when precision is off) */
	int nextra_done;           /* trials of extra rounds recorded already (resume) */
	char *done;                /* [ncells * maxrep]: [repeat * ncells + i] recorded already */
	struct samples sm;
	char (*ids)[160];          /* [ncells]: spec_cell_id */
	int fd;                    /* trials.jsonl, appended to */
};

static void run_release(struct run *r, struct ctx *c)
{
	if (r->fd >= 0)
		close(r->fd);
	if (c->logfd >= 0)
		close(c->logfd);
	free(r->cells);
	free(r->done);
	free(r->ids);
	free(r->sm.cpu);
	free(r->sm.rps);
	free(r->sm.n);
	free(r->sm.nsat);
	free(r->sm.trials);
}

/* A new run: DIR, DIR/spec.ini and DIR/env.json. 0 or -1 with err set. */
/* The load hosts of s, and every host probed once (lab/multihost.h): its facts for env.json,
 * and c->host_err when one cannot be used (every trial then fails, the host named: the run
 * goes on and records why). 0, or -1 with err set (a bad host list). */
static int runner_hosts_open(struct ctx *c, const struct spec *s, char *err, size_t errlen)
{
	c->nload = host_parse_list(s->load_host, c->load_hosts, MULTIHOST_MAX, err, errlen);
	if (c->nload < 0)
		return -1;
	c->load_host = c->load_hosts[0];
	for (int i = 0; i < c->nload; i++) {
		const char *p = s->load_host;
		/* the i-th item as written, trimmed */
		for (int k = 0; k < i; k++)
			p = strchr(p, ',') + 1;
		while (*p == ' ' || *p == '\t')
			p++;
		size_t n = strcspn(p, ",");
		while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		snprintf(c->load_names[i], sizeof c->load_names[i], "%.*s", (int)n, p);
	}
	/* this binary's own version, as the roles' hosts must report it */
	struct host here = {.kind = HOST_LOCAL};
	struct multihost_info me;
	multihost_probe(&here, "local", c->o->self, "", 20 * NS_PER_S, &me);
	const char *names[MULTIHOST_MAX + 1];
	const struct host *hosts[MULTIHOST_MAX + 1];
	int n = 0;
	names[n] = s->server_host, hosts[n++] = &c->server_host;
	for (int i = 0; i < c->nload; i++) {
		int dup = 0;
		for (int k = 0; k < n; k++)
			dup |= !strcmp(names[k], c->load_names[i]);
		if (!dup)
			names[n] = c->load_names[i], hosts[n++] = &c->load_hosts[i];
	}
	for (int k = 0; k < n; k++) {
		struct multihost_info *in = &c->info[c->ninfo++];
		const char *bin = hosts[k]->kind == HOST_SSH ? host_remote_bin() : c->o->self;
		if (multihost_probe(hosts[k], names[k], bin, me.version, 30 * NS_PER_S, in) < 0 &&
		    !c->host_err[0]) {
			snprintf(c->host_err, sizeof c->host_err, "%s", in->error);
			warn("%s: every trial fails", in->error);
		}
	}
	return 0;
}

static int run_create(const struct spec *s, const struct runner_opts *o, const struct run *r,
		      const struct ctx *c, char *err, size_t errlen)
{
	char path[4096];
	if (mkdir(o->dir, 0755) < 0 && errno != EEXIST)
		return errbuf(err, errlen, "cannot create '%s': %s", o->dir, strerror(errno));
	snprintf(path, sizeof path, "%s/spec.ini", o->dir);
	int rc = outfile_write(path, o->spec_text, strlen(o->spec_text), 0);
	if (rc < 0)
		return errbuf(err, errlen, "cannot write '%s': %s", path, outfile_strerror(rc));
	/* the machine's kernel and coroutine switch costs, once per run (~1 s) */
	struct env_switch sw;
	info("measuring the kernel and coroutine switch costs (pingpong, ~1 s)");
	env_switch_measure(&sw);
	struct env_run er = {.argv_line = o->argv_line, .is_default = o->is_default,
			     .ncells = r->ncells, .ntrials = r->ntrials, .sw = &sw, .hosts = c->info,
			     .nhosts = c->ninfo};
	return env_write(o->dir, s, &er, err, errlen);
}

/* Opens the run: its cells, the trials already recorded (resume), trials.jsonl for appending
 * and run.log. 0, or -1 with err set (run_release it either way). */
static int run_open(struct run *r, struct ctx *c, const struct spec *s,
		    const struct runner_opts *o, char *err, size_t errlen)
{
	memset(r, 0, sizeof *r);
	r->fd = -1;
	r->ncells = spec_cells(s, &r->cells);
	if (r->ncells <= 0)
		return errbuf(err, errlen, "the experiment has no cells to run");
	r->ntrials = r->ncells * s->repeat;
	if (host_parse(&c->server_host, s->server_host, err, errlen) < 0 ||
	    runner_hosts_open(c, s, err, errlen) < 0)
		return -1;
	if (host_is_local_machine(&c->server_host)) {
		/* cgroups of runs that were killed (SIGKILL leaves ctxlab-run-PID behind) */
		char note[1024];
		if (monitor_cgroup_sweep(note, sizeof note) >= 0 && note[0])
			warn("stale cgroups: %s", note);
	}
	if (!o->resume && run_create(s, o, r, c, err, errlen) < 0)
		return -1;
	char path[4096];
	snprintf(path, sizeof path, "%s/trials.jsonl", o->dir);
	r->maxrep = s->precision > 0 && s->max_repeat > s->repeat ? s->max_repeat : s->repeat;
	size_t cap = (size_t)r->ncells * (size_t)r->maxrep;
	r->done = calloc(cap, 1);
	r->ids = calloc(r->ncells, sizeof *r->ids);
	r->sm.cap = r->maxrep;
	r->sm.cpu = calloc(cap, sizeof *r->sm.cpu);
	r->sm.rps = calloc(cap, sizeof *r->sm.rps);
	r->sm.n = calloc(r->ncells, sizeof *r->sm.n);
	r->sm.nsat = calloc(r->ncells, sizeof *r->sm.nsat);
	r->sm.trials = calloc(r->ncells, sizeof *r->sm.trials);
	if (!r->done || !r->ids || !r->sm.cpu || !r->sm.rps || !r->sm.n || !r->sm.nsat ||
	    !r->sm.trials)
		return errbuf(err, errlen, "out of memory");
	int unterminated = 0;
	r->ndone = o->resume ? load_done(path, r->cells, r->ncells, r->maxrep, r->done,
					 &unterminated, &r->sm) : 0;
	if (r->ndone == -EPROTONOSUPPORT)
		return errbuf(err, errlen, "cannot resume '%s': it holds records of a newer schema "
			      "than this ctxlab writes (resume it with that ctxlab)", o->dir);
	if (r->ndone < 0)
		return errbuf(err, errlen, "cannot read '%s': %s", path, outfile_strerror(r->ndone));
	/* ndone counts the fixed rounds' trials; the extra rounds' are counted apart */
	for (size_t k = (size_t)r->ntrials; k < cap; k++)
		r->nextra_done += r->done[k];
	r->ndone -= r->nextra_done;
	for (int k = 0; k < r->ntrials; k++)
		r->nprof_left += !r->done[k] &&
				  spec_profiled_cell(s, &r->cells[k % r->ncells], k / r->ncells);
	for (int i = 0; i < r->ncells; i++)
		spec_cell_id(r->cells, r->ncells, i, r->ids[i], sizeof r->ids[i]);
	/* appended to, never through a link or into a device planted in the directory */
	r->fd = outfile_open_append(path, 0);
	if (r->fd >= 0 && unterminated && write(r->fd, "\n", 1) != 1) { /* end the cut line */
		int e = -errno;
		close(r->fd);
		r->fd = e;
	}
	if (r->fd < 0)
		return errbuf(err, errlen, "cannot append to '%s': %s", path, outfile_strerror(r->fd));
	snprintf(path, sizeof path, "%s/run.log", o->dir);
	c->logfd = outfile_open_append(path, 1); /* best effort */
	if (c->logfd < 0)
		warn("cannot append to '%s': %s (the children's messages are not kept)", path,
		     outfile_strerror(c->logfd));
	return 0;
}

static void run_banner(const struct spec *s, const struct runner_opts *o, const struct run *r)
{
	char a[32];
	info("running '%s': %d cells x %d repeats = %d trials%s, about %s; results in %s", s->name,
	     r->ncells, s->repeat, r->ntrials, r->ndone ? " (resuming)" : "",
	     units_format_duration(spec_estimate_ns(s, r->ntrials - r->ndone, r->nprof_left), a,
				   sizeof a), o->dir);
	char b[32];
	if (r->maxrep > s->repeat)
		info("plan: %d fixed round%s in a random order (seed %llu), then up to %d extra "
		     "round%s for the cells whose CPU per request (throughput when saturated) has not "
		     "reached +-%.3g%% (95%% CI), widest first, while the budget of %s allows", s->repeat,
		     s->repeat == 1 ? "" : "s", (unsigned long long)s->seed, r->maxrep - s->repeat,
		     r->maxrep - s->repeat == 1 ? "" : "s", s->precision * 100,
		     units_format_duration(spec_budget_ns(s, r->ncells), b, sizeof b));
	else
		info("plan: %d fixed round%s in a random order (seed %llu); precision off", s->repeat,
		     s->repeat == 1 ? "" : "s", (unsigned long long)s->seed);
	for (int i = 0; i < s->nnotes; i++)
		info("note: %s", s->notes[i]);
	if (r->nprof_left)
		info("profiling %d trial%s (profile = %s): flame graphs in %s/flame/", r->nprof_left,
		     r->nprof_left == 1 ? "" : "s", spec_profile_name(s->profile), o->dir);
}

/* The trial of cell i in round (repeat) `repeat`, number k of `of` in the run's order. */
static void trial_init(struct trial *t, const struct spec *s, const struct run *r, int i,
		       int repeat, int k, int of)
{
	memset(t, 0, sizeof *t);
	t->k = k;
	t->of = of;
	t->repeat = repeat;
	t->cell = &r->cells[i];
	t->cell_id = r->ids[i];
	t->want_profile = spec_profiled_cell(s, t->cell, t->repeat);
	t->timeline = t->repeat == 0 && !s->pingpong && spec_timeline_match(s, t->cell);
	if (t->repeat)
		snprintf(t->flame_dir, sizeof t->flame_dir, "flame/%s-r%d", t->cell_id, t->repeat);
	else
		snprintf(t->flame_dir, sizeof t->flame_dir, "flame/%s", t->cell_id);
}

int runner_pick_extra(const struct runner_cell_prec *cells, int ncells, double precision,
		      int max_repeat, int max_trials, int *pick)
{
	int n = 0;
	for (int i = 0; i < ncells; i++) {
		const struct runner_cell_prec *c = &cells[i];
		double rel;
		if (c->done || c->trials >= max_repeat || c->n <= 0)
			continue;
		if (record_precision(c->v, c->n, &rel) && rel <= precision)
			continue;
		pick[n++] = i;
	}
	/* the widest relative CI first (not reached at 95%: +inf), then fewer values, then index */
	for (int a = 1; a < n; a++) {
		int x = pick[a], b = a;
		double rx;
		record_precision(cells[x].v, cells[x].n, &rx);
		if (!isfinite(rx) || cells[x].n < 6)
			rx = INFINITY;
		while (b > 0) {
			int y = pick[b - 1];
			double ry;
			record_precision(cells[y].v, cells[y].n, &ry);
			if (!isfinite(ry) || cells[y].n < 6)
				ry = INFINITY;
			int before = rx > ry || (rx == ry && (cells[x].n < cells[y].n ||
							      (cells[x].n == cells[y].n && x < y)));
			if (!before)
				break;
			pick[b] = y;
			b--;
		}
		pick[b] = x;
	}
	if (max_trials < 0)
		max_trials = 0;
	return n < max_trials ? n : max_trials;
}

/* One trial: run, record, append, note its figures. 1 ran, 0 interrupted, -1 append failed. */
static int run_one(struct ctx *c, struct run *r, struct trial *t, int tty, int *failed)
{
	const struct runner_opts *o = c->o;
	run_trial(c, t);
	if (t->status == TRIAL_INTERRUPTED) {
		json_decref(t->load);
		json_decref(t->pp);
		return 0;
	}
	struct jw w;
	jw_init(&w);
	record(t, c->s, &w);
	json_decref(t->load);
	json_decref(t->pp);
	int rc = append_record(r->fd, &w);
	if (rc < 0) {
		error("cannot append to '%s/trials.jsonl': %s", o->dir, strerror(-rc));
		jw_release(&w);
		return -1;
	}
	struct record rec;
	char rerr[64];
	int i = (int)(t->cell - r->cells);
	if (record_parse(w.buf, w.len, &rec, rerr, sizeof rerr) == 0)
		samples_note(&r->sm, i, &rec);
	record_release(&rec);
	jw_release(&w);
	r->done[t->repeat * r->ncells + i] = 1;
	if (t->status != TRIAL_OK) {
		(*failed)++;
		if (!o->quiet && tty)
			fputs("\r\033[K", stderr);
		info("trial %d/%d failed: %s", t->k + 1, t->of, t->reason);
	}
	return 1;
}

/* How many cells reached the precision (95% CI of the decisive figure within it). */
static int cells_reached(const struct run *r, double precision)
{
	int n = 0;
	for (int i = 0; i < r->ncells; i++) {
		int nv;
		double rel;
		const double *v = samples_decisive(&r->sm, i, &nv);
		n += record_precision(v, nv, &rel) && rel <= precision;
	}
	return n;
}

/* Runs the trials not yet recorded: the fixed rounds, then the extra rounds by precision
 * while the budget allows; *failed counts the failed ones, *total the trials planned. Returns
 * how many ran. */
static int run_trials(struct ctx *c, struct run *r, int tty, int *failed, int *total)
{
	const struct spec *s = c->s;
	const struct runner_opts *o = c->o;
	uint64_t started = clock_now_ns();
	int ran = 0, stop = 0;
	int *perm = malloc((size_t)r->ncells * sizeof *perm);
	int *pick = malloc((size_t)r->ncells * sizeof *pick);
	struct runner_cell_prec *cp = calloc((size_t)r->ncells, sizeof *cp);
	char *picked = calloc((size_t)r->ncells, 1);
	*total = r->ntrials + r->nextra_done;
	if (!perm || !pick || !cp || !picked) {
		error("out of memory");
		stop = 1;
	}
	for (int round = 0; !stop && round < s->repeat && !stopping(); round++) {
		spec_round_order(s->seed, round, r->ncells, perm);
		for (int j = 0; j < r->ncells && !stopping(); j++) {
			int i = perm[j];
			if (r->done[round * r->ncells + i])
				continue;
			struct trial t;
			trial_init(&t, s, r, i, round, round * r->ncells + j, r->ntrials);
			uint64_t eta = ran ? (clock_now_ns() - started) / ran *
						     (r->ntrials - r->ndone - ran)
					   : spec_estimate_ns(s, r->ntrials - r->ndone, r->nprof_left);
			progress(o, tty, r->ndone + ran, r->ntrials, t.cell->key, eta);
			int rc = run_one(c, r, &t, tty, failed);
			if (rc <= 0) {
				stop = 1;
				break;
			}
			ran++;
		}
	}
	/* extra rounds: the cells that have not reached the precision, widest first, as many as
	 * the rest of the budget holds at the pace measured so far */
	uint64_t budget = spec_budget_ns(s, r->ncells);
	int k = *total;
	for (int round = s->repeat; !stop && round < r->maxrep && !stopping(); round++) {
		/* the trials recorded before a --resume count at their estimated cost */
		uint64_t now = clock_now_ns(), here = now - started;
		uint64_t spent = here + spec_estimate_ns(s, r->ndone + r->nextra_done, 0);
		uint64_t per = ran ? here / ran : spec_estimate_ns(s, 1, spec_profiled(s, round));
		if (!per)
			per = 1;
		int fit = spent < budget ? (int)((budget - spent) / per) : 0;
		for (int i = 0; i < r->ncells; i++) {
			cp[i].v = samples_decisive(&r->sm, i, &cp[i].n);
			cp[i].trials = r->sm.trials[i];
			cp[i].done = r->done[round * r->ncells + i];
		}
		int np = runner_pick_extra(cp, r->ncells, s->precision, r->maxrep, fit, pick);
		if (np <= 0)
			break;
		memset(picked, 0, (size_t)r->ncells);
		for (int p = 0; p < np; p++)
			picked[pick[p]] = 1;
		*total += np;
		spec_round_order(s->seed, round, r->ncells, perm);
		for (int j = 0; j < r->ncells && !stopping(); j++) {
			int i = perm[j];
			if (!picked[i])
				continue;
			struct trial t;
			trial_init(&t, s, r, i, round, k, *total);
			progress(o, tty, r->ndone + r->nextra_done + ran, *total, t.cell->key,
				 (uint64_t)(*total - k) * per);
			int rc = run_one(c, r, &t, tty, failed);
			if (rc <= 0) {
				stop = 1;
				break;
			}
			ran++;
			k++;
		}
	}
	free(perm);
	free(pick);
	free(cp);
	free(picked);
	return ran;
}

int runner_run(const struct spec *s, const struct runner_opts *o, char *err, size_t errlen)
{
	struct ctx c = {.s = s, .o = o, .logfd = -1};
	struct run r;
	if (run_open(&r, &c, s, o, err, errlen) < 0) {
		run_release(&r, &c);
		return -1;
	}
	spawn_guard_init();
	struct sigaction sa = {.sa_handler = on_stop}, old_int, old_term;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	/* a role gone (a load host that died) must not kill the run when we write to its stdin */
	struct sigaction ign = {.sa_handler = SIG_IGN}, old_pipe;
	sigemptyset(&ign.sa_mask);
	sigaction(SIGPIPE, &ign, &old_pipe);
	stop_sig = 0;
	int tty = isatty(2);
	run_banner(s, o, &r);
	char why[256];
	if (host_is_local_machine(&c.server_host) && !s->pingpong &&
	    syscount_hold_open(&c.sc_hold, why, sizeof why) < 0)
		c.sc_hold.n = 0; /* each trial opens them itself (and says why it cannot) */
	if (r.nprof_left > 0 && host_is_local_machine(&c.server_host))
		symcache_prepare(&c);
	int failed = 0, total = r.ntrials, ran = run_trials(&c, &r, tty, &failed, &total);
	syscount_hold_close(&c.sc_hold);
	if (c.symcache[0])
		symcache_remove(c.symcache);
	if (!o->quiet) {
		progress(o, tty, r.ndone + r.nextra_done + ran, total,
			 stopping() ? "interrupted" : "done", 0);
		if (tty)
			fputc('\n', stderr);
	}
	if (s->precision > 0)
		info("precision: %d of %d cells reached +-%.3g%% (95%% CI of CPU per request, "
		     "throughput when saturated); %d extra trial%s by precision (report: "
		     "\"precision reached\" column)", cells_reached(&r, s->precision), r.ncells,
		     s->precision * 100, total - r.ntrials, total - r.ntrials == 1 ? "" : "s");
	run_release(&r, &c);
	int interrupted = stopping();
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGPIPE, &old_pipe, NULL);
	if (failed)
		info("%d of %d trials failed (reasons in trials.jsonl, children's messages in "
		     "%s/run.log)", failed, ran, o->dir);
	if (interrupted) {
		info("interrupted; every child stopped; continue with 'ctxlab run --resume %s'",
		     o->dir);
		return 130;
	}
	return 0;
}
