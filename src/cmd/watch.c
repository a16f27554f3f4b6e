/* ctxlab watch: monitors a process tree, a cgroup, processes by name, or a command it starts.
 * Option parsing and wiring only: the measuring is src/monitor/. */
#include <limits.h>
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
	"\n";

/* the options (a command runs once per process) */
static struct watch_opts o = {.interval_ns = NS_PER_S};

static int opt_interval(const struct opt *opt, const char *arg, char *err, size_t errlen)
{
	uint64_t ns;
	if (units_parse_duration_ns(arg, &ns, err, errlen) < 0)
		return -1;
	if (ns < NS_PER_MS)
		return errbuf(err, errlen, "too short (use 1ms or more)");
	*(uint64_t *)opt->value = ns;
	return 0;
}

static int opt_top(const struct opt *opt, const char *arg, char *err, size_t errlen)
{
	uint64_t n;
	if (units_parse_count(arg, &n, err, errlen) < 0)
		return -1;
	if (n > INT_MAX)
		return errbuf(err, errlen, "too many rows, e.g. --top 10");
	*(int *)opt->value = (int)n;
	return 0;
}

static int opt_method(const struct opt *opt, const char *arg, char *err, size_t errlen)
{
	if (strcmp(arg, "auto") && strcmp(arg, "cgroup2") && strcmp(arg, "cgroup1") &&
	    strcmp(arg, "procwalk"))
		return errbuf(err, errlen, "use auto, cgroup2, cgroup1 or procwalk");
	*(const char **)opt->value = arg;
	return 0;
}

/* --csv, --json (flags): the output format; the last one given wins */
static int opt_fmt(const struct opt *opt, const char *arg, char *err, size_t errlen)
{
	(void)arg, (void)err, (void)errlen;
	*(enum watch_fmt *)opt->value = !strcmp(opt->long_name, "csv") ? WATCH_FMT_CSV
									: WATCH_FMT_JSON;
	return 0;
}

static const struct opt options[] = {
	OPT_GROUP("target:"),
	OPT_CALLBACK('p', "pid", &o.mo.pid, "PID",
		     "the process and all its descendants (found every interval)", cmd_opt_pid),
	OPT_STRING(0, "cgroup", &o.mo.cgroup, "PATH",
		   "every process of a cgroup (v2 cpu.stat or v1 cpuacct accounting)"),
	OPT_STRING(0, "name", &o.mo.name_regex, "REGEX",
		   "every process whose name (comm) matches, with its descendants"),
	OPT_DOC("-- CMD [ARGS...]", "start CMD (in a cgroup of ctxlab's own when possible) and watch it\n"
		"until it exits"),
	OPT_GROUP("options:"),
	OPT_CALLBACK('i', "interval", &o.interval_ns, "DUR",
		     "sampling interval (default 1s; fractions allowed: 100ms, 0.5)", opt_interval),
	OPT_COUNT('n', "count", &o.count, "N", "stop after N samples (a started CMD is then stopped)"),
	OPT_CALLBACK(0, "csv", &o.fmt, NULL, "one CSV row per interval", opt_fmt),
	OPT_CALLBACK(0, "json", &o.fmt, NULL, "one JSON object per interval, then a summary object",
		     opt_fmt),
	OPT_FLAG(0, "per-cpu", &o.mo.per_cpu, "the system-wide breakdown of every CPU"),
	OPT_CALLBACK(0, "top", &o.mo.top_n, "N", "the N busiest processes each interval", opt_top),
	OPT_FLAG(0, "threads", &o.mo.threads, "with --top: threads instead of processes"),
	OPT_FLAG(0, "no-perf", &o.no_perf, "do not open perf_event counters"),
	OPT_FLAG(0, "no-pss", &o.mo.no_pss, "skip PSS (smaps_rollup; the costliest read)"),
	OPT_FLAG(0, "no-fds", &o.mo.no_fds, "skip fd and socket counts"),
	OPT_CALLBACK(0, "method", &o.method, "M",
		     "for -- CMD: auto (default), cgroup2, cgroup1 or procwalk", opt_method),
	OPT_FLAG(0, "quiet", &o.quiet, "no table: only the summary (with --json) or nothing"),
	OPT_FLAG(0, "selftest", &o.selftest,
		 "burn known CPU in a forked tree and check every accounting method,\n"
		 "and the context switches of short-lived children, against\n"
		 "getrusage (exit 0 when all pass)"),
	OPT_END(),
};

static volatile sig_atomic_t stop_flag;
static void on_stop(int sig) { (void)sig, stop_flag = 1; }

/* ---- the run --------------------------------------------------------------------------- */

extern const struct cmd_info cmd_info_watch;

static int cmd_watch(int argc, char **argv)
{
	int dashdash;
	int nops = cmd_parse_options(&cmd_info_watch, argc, argv, 0, &dashdash);
	if (nops < 0)
		return 2;
	log_set_quiet(o.quiet); /* --quiet: info() says nothing */
	if (nops > 0 && dashdash != 0)
		return cmd_usage_error("unexpected argument '%s' (a command to watch goes after "
				       "'--') (see 'ctxlab watch --help')", argv[0]);
	if (dashdash == nops)
		return cmd_usage_error("'--' needs a command to start (e.g. -- sleep 5) (see "
				       "'ctxlab watch --help')");
	if (dashdash == 0)
		o.cmd = argv;
	o.mo.perf_counters = !o.no_perf;
	if (o.mo.threads && !o.mo.top_n)
		o.mo.top_n = 10;
	if (o.selftest)
		return watch_selftest() ? 1 : 0;
	int targets = !!o.mo.pid + !!o.mo.cgroup + !!o.mo.name_regex + !!o.cmd;
	if (targets != 1)
		return cmd_usage_error("give one target: --pid PID, --cgroup PATH, --name REGEX or "
				       "-- CMD (see 'ctxlab watch --help')");
	if (o.method && !o.cmd)
		return cmd_usage_error("--method applies to '-- CMD' only (see 'ctxlab watch "
				       "--help')");
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
					usage, options, NULL};
