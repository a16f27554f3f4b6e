/* ctxlab watch: monitors a process tree, a cgroup, processes by name, or a command it starts.
 * Option parsing and wiring only: the measuring is src/monitor/. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/units.h"
#include "monitor/monitor.h"
#include "monitor/watch.h"

static const char usage[] =
	"usage: ctxlab watch [options] (--pid PID | --cgroup PATH | --name REGEX | -- CMD [ARGS...])\n"
	"       ctxlab watch --selftest\n"
	"\n"
	"Measures a whole process tree every interval: CPU user/system in cores (children that\n"
	"exited included), context switches summed over every thread, processes, threads, RSS, PSS,\n"
	"fds, sockets, faults, run-queue wait, the system-wide %Cpu(s) breakdown and perf counters.\n"
	"Figures are defined in docs/metrics.md.\n"
	"\n"
	"target:\n"
	"  -p, --pid PID        the process and all its descendants (found every interval)\n"
	"  --cgroup PATH        every process of a cgroup (v2 cpu.stat or v1 cpuacct accounting)\n"
	"  --name REGEX         every process whose name (comm) matches, with its descendants\n"
	"  -- CMD [ARGS...]     start CMD (in a cgroup of ctxlab's own when possible) and watch it\n"
	"                       until it exits\n"
	"options:\n"
	"  -i, --interval DUR   sampling interval (default 1s; fractions allowed: 100ms, 0.5)\n"
	"  -n, --count N        stop after N samples (a started CMD is then stopped)\n"
	"  --csv                one CSV row per interval\n"
	"  --json               one JSON object per interval, then a summary object\n"
	"  --per-cpu            the system-wide breakdown of every CPU\n"
	"  --top N              the N busiest processes each interval\n"
	"  --threads            with --top: threads instead of processes\n"
	"  --no-perf            do not open perf_event counters\n"
	"  --no-pss             skip PSS (smaps_rollup; the costliest read)\n"
	"  --no-fds             skip fd and socket counts\n"
	"  --method M           for -- CMD: auto (default), cgroup2, cgroup1 or procwalk\n"
	"  --quiet              no table: only the summary (with --json) or nothing\n"
	"  --selftest           burn known CPU in a forked tree and check every accounting method,\n"
	"                       and the context switches of short-lived children, against\n"
	"                       getrusage (exit 0 when all pass)\n";

static volatile sig_atomic_t stop_flag;
static void on_stop(int sig) { (void)sig, stop_flag = 1; }

/* ---- the run --------------------------------------------------------------------------- */

static int parse_args(int argc, char **argv, struct watch_opts *o)
{
	char err[256];
	o->interval_ns = NS_PER_S;
	o->mo.perf_counters = 1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED()                                                                               \
	do {                                                                                 \
		if (!val)                                                                    \
			return error("option '%s' needs a value (see 'ctxlab watch --help')", a); \
		i++;                                                                         \
	} while (0)
		if (!strcmp(a, "--")) {
			if (i + 1 >= argc)
				return error("'--' needs a command to start (e.g. -- sleep 5)");
			o->cmd = argv + i + 1;
			break;
		} else if (!strcmp(a, "-p") || !strcmp(a, "--pid")) {
			NEED();
			char *end;
			long p = strtol(val, &end, 10);
			if (*end || p <= 0)
				return error("bad pid '%s' (give a process id, e.g. --pid 1234)", val);
			o->mo.pid = (pid_t)p;
		} else if (!strcmp(a, "--cgroup")) {
			NEED();
			o->mo.cgroup = val;
		} else if (!strcmp(a, "--name")) {
			NEED();
			o->mo.name_regex = val;
		} else if (!strcmp(a, "-i") || !strcmp(a, "--interval")) {
			NEED();
			if (units_parse_duration_ns(val, &o->interval_ns, err, sizeof err))
				return error("%s", err);
			if (o->interval_ns < NS_PER_MS)
				return error("interval '%s' is too short (use 1ms or more)", val);
		} else if (!strcmp(a, "-n") || !strcmp(a, "--count")) {
			NEED();
			if (units_parse_count(val, &o->count, err, sizeof err))
				return error("%s", err);
		} else if (!strcmp(a, "--top")) {
			NEED();
			uint64_t n;
			if (units_parse_count(val, &n, err, sizeof err))
				return error("%s", err);
			o->mo.top_n = (int)n;
		} else if (!strcmp(a, "--method")) {
			NEED();
			if (strcmp(val, "auto") && strcmp(val, "cgroup2") && strcmp(val, "cgroup1") &&
			    strcmp(val, "procwalk"))
				return error("bad method '%s' (use auto, cgroup2, cgroup1 or procwalk)",
					     val);
			o->method = val;
		} else if (!strcmp(a, "--csv")) {
			o->fmt = WATCH_FMT_CSV;
		} else if (!strcmp(a, "--json")) {
			o->fmt = WATCH_FMT_JSON;
		} else if (!strcmp(a, "--per-cpu")) {
			o->mo.per_cpu = 1;
		} else if (!strcmp(a, "--threads")) {
			o->mo.threads = 1;
		} else if (!strcmp(a, "--no-perf")) {
			o->mo.perf_counters = 0;
		} else if (!strcmp(a, "--no-pss")) {
			o->mo.no_pss = 1;
		} else if (!strcmp(a, "--no-fds")) {
			o->mo.no_fds = 1;
		} else if (!strcmp(a, "--quiet")) {
			o->quiet = 1;
		} else if (!strcmp(a, "--selftest")) {
			o->selftest = 1;
		} else {
			return error("unknown option '%s' (see 'ctxlab watch --help')", a);
		}
#undef NEED
	}
	if (o->mo.threads && !o->mo.top_n)
		o->mo.top_n = 10;
	if (o->selftest)
		return 0;
	int targets = (o->mo.pid > 0) + !!o->mo.cgroup + !!o->mo.name_regex + !!o->cmd;
	if (targets != 1)
		return error("give one target: --pid PID, --cgroup PATH, --name REGEX or -- CMD "
			     "(see 'ctxlab watch --help')");
	if (o->method && !o->cmd)
		return error("--method applies to '-- CMD' only");
	return 0;
}

int cmd_watch(int argc, char **argv)
{
	struct watch_opts o = {0};
	if (parse_args(argc, argv, &o))
		return 2;
	if (o.selftest)
		return watch_selftest() ? 1 : 0;
	/* Ctrl-C ends the watch cleanly: the summary is printed, a started CMD is stopped (its
	 * keeper still dies with us if we are killed) and our cgroup removed */
	signal(SIGINT, on_stop);
	signal(SIGTERM, on_stop);
	o.stop = &stop_flag;
	/* tests only: a pause between starting CMD and attaching, where a CMD that were not held
	 * would run uncounted by the perf counters */
	const char *delay = getenv("CTXLAB_WATCH_ATTACH_DELAY_MS");
	if (delay && atoi(delay) > 0)
		o.attach_delay_ns = (uint64_t)atoi(delay) * NS_PER_MS;
	char err[256];
	int rc = watch_run(&o, err, sizeof err);
	if (rc < 0) {
		error("%s", err);
		return 1;
	}
	return rc;
}

const struct cmd_info cmd_info_watch = {"watch", cmd_watch,
					"monitor a process tree: CPU usr/sys, context switches, memory",
					usage};
