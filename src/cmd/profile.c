/* ctxlab profile: samples a process tree's or a cgroup's call stacks (on-CPU, optionally
 * off-CPU) and writes folded stacks, an interactive flame graph and a gzipped pprof profile.
 * Option parsing and wiring only: the profiler is src/profile/; a command it starts goes into
 * a cgroup of ctxlab's own made by src/monitor/ (monitor_cgroup_create). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/outfile.h"
#include "core/spawn.h"
#include "core/units.h"
#include "monitor/monitor.h"
#include "profile/flamesvg.h"
#include "profile/folded.h"
#include "profile/pprof.h"
#include "profile/profile.h"
#include "profile/unwind.h"

static const char usage[] =
	"usage: ctxlab profile [options] (--pid PID | --cgroup PATH | -- CMD [ARGS...])\n"
	"\n"
	"Samples the call stacks (kernel and user) of a whole process tree or\n"
	"cgroup with perf_event_open, following every thread and child it starts, and prints the\n"
	"functions with the most samples. With -o it writes folded stacks, an interactive flame\n"
	"graph and a gzipped pprof profile (go tool pprof). Figures are defined in docs/metrics.md.\n"
	"\n"
	"Per task (--pid) each thread and child counts its own sampling period, so threads or\n"
	"processes that each run less than one period (10 ms at 99 Hz) in all are never sampled:\n"
	"a thread- or fork-per-connection server shows next to nothing. Per cgroup (--cgroup,\n"
	"like perf record -a -G) the period runs per CPU over every task of the cgroup, so they\n"
	"are sampled in proportion to their CPU; it needs root (or perf_event_paranoid <= 0).\n"
	"\n"
	"User stacks (--call-graph): fp walks frame pointers in the kernel (cheap, but programs\n"
	"built without them -- most distribution binaries and libc -- give wrong, garbage\n"
	"stacks); dwarf copies the user registers and the top --stack-size bytes of the stack\n"
	"with every sample and unwinds them with libdwfl over .eh_frame/.debug_frame (right\n"
	"for any program, more work per sample); auto (default) keeps the frame-pointer stack\n"
	"where every frame lies in a binary built with frame pointers and unwinds the others.\n"
	"After the run it says how many user stacks reached a thread's start (complete),\n"
	"were truncated (stack copy too small) or ended in an unresolvable frame, and warns\n"
	"above 10%, naming the binary. Symbols come from the binaries, their separate debug\n"
	"files (/usr/lib/debug/.build-id, Debian's -dbgsym packages) and debuginfod when\n"
	"DEBUGINFOD_URLS is set; binaries without symbols are named.\n"
	"\n";

static volatile sig_atomic_t stop_flag;
static void on_stop(int sig) { (void)sig, stop_flag = 1; }

static int mkdir_p(const char *dir)
{
	char path[4096];
	int n = snprintf(path, sizeof path, "%s", dir);
	if (n < 0 || (size_t)n >= sizeof path)
		return -ENAMETOOLONG;
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Writes whole through a fresh temporary and renames (core/outfile.h), so a crash never
 * leaves a half file and a link planted at the name is refused, not written through. */
static int write_file(const char *dir, const char *name, int (*fn)(FILE *, const void *),
		      const void *arg)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	struct outfile o;
	int r = outfile_open(&o, path, 0);
	if (r)
		return error("cannot write '%s': %s", path, outfile_strerror(r));
	int fd = dup(o.fd); /* the FILE's own: fclose closes it, the outfile keeps its fd */
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		outfile_abort(&o);
		return error("cannot write '%s': %s", path, strerror(-r));
	}
	r = fn(f, arg);
	if (fclose(f) != 0 && !r)
		r = -EIO;
	if (r)
		outfile_abort(&o);
	else
		r = outfile_commit(&o);
	if (r)
		return error("cannot write '%s': %s", path, outfile_strerror(r));
	return 0;
}

static const char *call_graph = "auto";

/* One line on the unwind quality (profile.h: struct profile_unwind), e.g. "unwind dwarf:
 * 245 user stacks, 98.4% complete, 1.2% truncated, 0.4% unresolved" */
static void unwind_line(const struct profile_unwind *u, char *b, size_t len)
{
	double n = u->user_stacks ? (double)u->user_stacks : 1;
	snprintf(b, len, "unwind %s: %llu user stacks (%llu dwarf, %llu fp), %.1f%% complete, "
		 "%.1f%% truncated, %.1f%% unresolved", call_graph,
		 (unsigned long long)u->user_stacks, (unsigned long long)u->by_dwarf,
		 (unsigned long long)u->by_fp, 100.0 * (double)u->complete / n,
		 100.0 * (double)u->truncated / n, 100.0 * (double)u->unresolved / n);
}

static char unwind_text[256]; /* unwind_line of the run, for the outputs' metadata */

/* The folded file: a '#' line with the unwind quality when there are user stacks
 * (folded_parse and flamegraph.pl skip it; no sample still gives an empty file, which the
 * lab's runner reads as such), then the stacks. */
static int put_folded(FILE *f, const void *arg)
{
	if (unwind_text[0])
		fprintf(f, "# ctxlab %s\n", unwind_text);
	return folded_write(arg, f);
}

/* ---- the flame graph's file:line per function: its most sampled source line ---------- */

struct where {
	const char *func;
	char at[160];
	uint64_t n;
};

static struct where *wh;
static size_t nwh;

static int cmp_where(const void *a, const void *b)
{
	return strcmp(((const struct where *)a)->func, ((const struct where *)b)->func);
}

static void where_build(const struct profile_result *res, const struct folded *loc)
{
	uint64_t *cnt = calloc(res->nlocs ? res->nlocs : 1, sizeof(*cnt));
	wh = calloc(res->nlocs ? res->nlocs : 1, sizeof(*wh));
	if (!cnt || !wh) {
		free(cnt);
		free(wh);
		wh = NULL;
		return;
	}
	for (size_t i = 0; i < loc->n; i++) {
		const char *p = strchr(loc->e[i].stack, ';'); /* after the root (comm) */
		while (p) {
			unsigned long long k = strtoull(p + 1, NULL, 10);
			if (k < res->nlocs)
				cnt[k] += loc->e[i].count;
			p = strchr(p + 1, ';');
		}
	}
	nwh = 0;
	for (size_t k = 0; k < res->nlocs; k++) {
		const struct pprof_loc *l = &res->locs[k];
		if (!l->file || l->line <= 0 || !cnt[k])
			continue;
		size_t j = 0;
		while (j < nwh && strcmp(wh[j].func, l->func)) /* few functions have lines */
			j++;
		if (j == nwh)
			wh[nwh++] = (struct where){.func = l->func};
		if (cnt[k] > wh[j].n) {
			const char *base = strrchr(l->file, '/');
			wh[j].n = cnt[k];
			snprintf(wh[j].at, sizeof wh[j].at, "%s:%lld", base ? base + 1 : l->file,
				 (long long)l->line);
		}
	}
	free(cnt);
	qsort(wh, nwh, sizeof(*wh), cmp_where);
}

static const char *where_of(const char *frame, void *arg)
{
	(void)arg;
	if (!nwh)
		return NULL;
	struct where key = {.func = frame};
	const struct where *w = bsearch(&key, wh, nwh, sizeof(*wh), cmp_where);
	return w ? w->at : NULL;
}

struct svg_arg {
	const struct folded *f;
	struct flamesvg_opts o;
};

static int put_svg(FILE *f, const void *arg)
{
	const struct svg_arg *a = arg;
	return flamesvg_write(a->f, &a->o, f);
}

static int write_pprof(const char *dir, const struct profile_result *res, int off_cpu,
		       const char *event, uint64_t hz, const char *binary)
{
	char path[4096], comment[512];
	snprintf(path, sizeof path, "%s/profile.pb.gz", dir);
	snprintf(comment, sizeof comment, "ctxlab profile: %s at %llu Hz%s%s", event,
		 (unsigned long long)hz, unwind_text[0] ? "; " : "", unwind_text);
	struct pprof_desc d = {
		.nvalues = off_cpu ? 3 : 2,
		.type = {"samples", "cpu", "offcpu"},
		.unit = {"count", "nanoseconds", "nanoseconds"},
		.default_type = "cpu",
		.period_type = "cpu",
		.period_unit = "nanoseconds",
		.period = (int64_t)res->period_ns,
		.time_nanos = (int64_t)res->start_wall_ns,
		.duration_nanos = (int64_t)res->duration_ns,
		.comment = comment,
		.main_binary = binary,
	};
	struct pprof_loctab lt = {res->locs, res->nlocs, res->maps, res->nmaps};
	d.loctab = &lt;
	const struct folded *sets[2] = {&res->on_cpu_loc, &res->off_cpu_loc};
	int vc[2] = {0, -1}, vn[2] = {1, 2};
	struct buf b = BUF_INIT;
	int r = pprof_encode(&d, sets, vc, vn, off_cpu ? 2 : 1, &b);
	if (!r)
		r = pprof_write_gz(buf_head(&b), buf_used(&b), path);
	buf_free(&b);
	if (r)
		return error("cannot write '%s': %s", path, outfile_strerror(r));
	return 0;
}

static void print_top(const struct folded *f, size_t top, const char *what, int ms)
{
	size_t n;
	struct folded_fn *fns = folded_functions(f, 1, &n);
	if (!fns)
		return;
	double total = f->total ? (double)f->total : 1;
	if (ms)
		printf("%8s %7s %10s %10s  %s (%s)\n", "self%", "total%", "self_ms", "total_ms",
		       "function", what);
	else
		printf("%8s %7s %8s %8s  %s (%s)\n", "self%", "total%", "self", "total", "function",
		       what);
	for (size_t i = 0; i < n && i < top; i++) {
		if (ms)
			printf("%7.2f%% %6.2f%% %10.1f %10.1f  %s\n", 100.0 * (double)fns[i].self / total,
			       100.0 * (double)fns[i].total / total, (double)fns[i].self / 1000.0,
			       (double)fns[i].total / 1000.0, fns[i].name);
		else
			printf("%7.2f%% %6.2f%% %8llu %8llu  %s\n", 100.0 * (double)fns[i].self / total,
			       100.0 * (double)fns[i].total / total, (unsigned long long)fns[i].self,
			       (unsigned long long)fns[i].total, fns[i].name);
	}
	folded_fns_free(fns, n);
}

extern const struct cmd_info cmd_info_profile;

/* Makes a cgroup v2 of ctxlab's own (perf_event lives in the v2 hierarchy) and moves the caller
 * into it, so that the command forked next starts there; the caller leaves it after the fork.
 * 0 (path filled), or -1 with why filled and path "" (nothing to clean up). */
static int start_in_cgroup(char *path, size_t len, char *why, size_t wlen)
{
	int v = 0;
	char err[512];
	if (monitor_cgroup_create(2, "profile", path, len, &v, err, sizeof err)) {
		/* the reason, without watch's "(run as root; falling back to ...)" */
		char *tail = strstr(err, " (run as root");
		if (tail)
			*tail = 0;
		snprintf(why, wlen, "%.400s (run as root)", err);
		path[0] = 0;
		return -1;
	}
	if (!profile_cgroup_usable(path, why, wlen)) {
		monitor_cgroup_remove(path);
		path[0] = 0;
		return -1;
	}
	int e = monitor_cgroup_join(path, 0);
	if (e) {
		snprintf(why, wlen, "cannot join cgroup '%s': %s", path, strerror(-e));
		monitor_cgroup_remove(path);
		path[0] = 0;
		return -1;
	}
	return 0;
}

static struct profile_opts po = {.hz = 99};
static const char *outdir, *title, *event = "cpu-clock", *cgroup;
static pid_t pid;
static uint64_t top = 15;
static int quiet;

static int opt_cgroup(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	if (!arg[0])
		return errbuf(err, errlen, "empty cgroup path (a cgroup v2 directory, e.g. "
				  "--cgroup /sys/fs/cgroup/NAME)");
	*(const char **)o->value = arg;
	return 0;
}

static int opt_freq(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	uint64_t hz;
	char why[256];
	if (units_parse_count(arg, &hz, why, sizeof why) < 0 || hz < 1 || hz > 100000)
		return errbuf(err, errlen, "samples per second, 1..100000, e.g. -F 99");
	*(int *)o->value = (int)hz;
	return 0;
}

static int opt_duration(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	if (units_parse_duration_ns(arg, o->value, err, errlen) < 0)
		return -1;
	if (!*(uint64_t *)o->value)
		return errbuf(err, errlen, "must be > 0, e.g. -d 10s");
	return 0;
}

static int opt_call_graph(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	if (!strcmp(arg, "fp"))
		po.call_graph = PROFILE_CG_FP;
	else if (!strcmp(arg, "dwarf"))
		po.call_graph = PROFILE_CG_DWARF;
	else if (!strcmp(arg, "auto"))
		po.call_graph = PROFILE_CG_AUTO;
	else
		return errbuf(err, errlen, "unknown call graph mode (use fp, dwarf or auto)");
	*(const char **)o->value = arg;
	return 0;
}

static int opt_stack_size(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	uint64_t v;
	char why[256];
	if (units_parse_size_bytes(arg, &v, why, sizeof why) < 0 || v < 8 || v > UNWIND_STACK_MAX)
		return errbuf(err, errlen, "bytes of user stack copied per sample, 8..%u (rounded "
			      "down to a multiple of 8), e.g. --stack-size 16k", UNWIND_STACK_MAX);
	*(uint32_t *)o->value = (uint32_t)(v & ~7ULL);
	return 0;
}

static int opt_event(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	if (!strcmp(arg, "cpu-clock"))
		po.event = PROFILE_EV_CPU_CLOCK;
	else if (!strcmp(arg, "cycles"))
		po.event = PROFILE_EV_CYCLES;
	else
		return errbuf(err, errlen, "unknown event (use cpu-clock or cycles)");
	*(const char **)o->value = arg;
	return 0;
}

static const struct opt options[] = {
	OPT_GROUP("target:"),
	OPT_CALLBACK('p', "pid", &pid, "PID",
		     "the process, its threads and descendants, per task (Ctrl-C\n"
		     "stops); a note says when the samples miss most of its CPU", cmd_opt_pid),
	OPT_CALLBACK('G', "cgroup", &cgroup, "PATH",
		     "every task of a cgroup v2 directory (and the cgroups below it),\n"
		     "per CPU; until Ctrl-C, -d, or the cgroup is empty", opt_cgroup),
	OPT_DOC("-- CMD [ARGS...]", "start CMD and profile it until it exits: in a cgroup of ctxlab's\n"
		"own, sampled per cgroup, when one can be made (root); else per\n"
		"task, with a note"),
	OPT_GROUP("options:"),
	OPT_CALLBACK('F', "freq", &po.hz, "HZ",
		     "samples per second of CPU time (per thread; per CPU for a\n"
		     "cgroup; default 99)", opt_freq),
	OPT_CALLBACK('d', "duration", &po.duration_ns, "DUR",
		     "stop after DUR (a started CMD is then stopped; e.g. 10s, 500ms)", opt_duration),
	OPT_STRING('o', "output", &outdir, "DIR",
		   "write DIR/profile.folded, DIR/flame.svg, DIR/profile.pb.gz\n"
		   "(with --off-cpu also DIR/offcpu.folded, DIR/offcpu.svg)"),
	OPT_CALLBACK('e', "event", &event, "EV",
		     "cpu-clock (default: a software timer, works without a PMU) or\n"
		     "cycles (needs a hardware PMU: an error where there is none)", opt_event),
	OPT_CALLBACK(0, "call-graph", &call_graph, "MODE",
		     "how user stacks are walked: fp (frame pointers), dwarf\n"
		     "(copy the stack, unwind with .eh_frame) or auto (default: fp\n"
		     "where the binaries have frame pointers, dwarf elsewhere)", opt_call_graph),
	OPT_CALLBACK(0, "stack-size", &po.stack_size, "BYTES",
		     "user stack copied per sample for dwarf/auto (default 8192,\n"
		     "max 65528); raise it when stacks are reported truncated", opt_stack_size),
	OPT_FLAG(0, "user-only", &po.user_only, "user-space frames only (no kernel samples)"),
	OPT_FLAG(0, "off-cpu", &po.off_cpu,
		 "also record the time each stack spends blocked (sched_switch)"),
	OPT_COUNT(0, "top", &top, "N", "rows of the self/total table (default 15, 0 = none)"),
	OPT_STRING(0, "title", &title, "TEXT", "flame graph title"),
	OPT_FLAG('q', "quiet", &quiet, "no table, only errors"),
	OPT_END(),
};

static int cmd_profile(int argc, char **argv)
{
	char err[512];
	int dashdash;
	int nops = cmd_parse_options(&cmd_info_profile, argc, argv, 0, &dashdash);
	if (nops < 0)
		return 2;
	log_set_quiet(quiet); /* -q: info() says nothing */
	char **cmd = NULL;
	if (nops > 0 && dashdash != 0)
		return error("unexpected argument '%s' (a command to profile goes after '--')",
			     argv[0]), 2;
	if (nops > 0)
		cmd = argv;
	int targets = !!cmd + !!pid + !!cgroup;
	if (!targets)
		return error("no target: pass --pid PID, --cgroup PATH or -- CMD [ARGS...] (see "
			     "'ctxlab profile --help')"), 2;
	if (targets > 1)
		return error("more than one target given (--pid, --cgroup, -- CMD): pass one"), 2;

	if (po.event == PROFILE_EV_CYCLES) {
		char reason[256];
		if (!profile_event_supported(PROFILE_EV_CYCLES, reason, sizeof reason))
			return error("event 'cycles' is %s: leave out --event to use the default "
				     "cpu-clock", reason), 1;
	}
	if (outdir) {
		int r = mkdir_p(outdir);
		if (r)
			return error("cannot create '%s': %s", outdir, strerror(-r)), 1;
	}

	struct spawn_child child = {.pid = -1, .keeper = -1};
	pid_t root = pid;
	char cgpath[512] = "";
	if (cmd) {
		spawn_guard_init();
		char why[512];
		int joined = start_in_cgroup(cgpath, sizeof cgpath, why, sizeof why) == 0;
		struct spawn_opts so = {.argv = (const char *const *)cmd, .stderr_fd = -1};
		int r = spawn_start(&so, &child);
		if (joined && monitor_cgroup_leave(cgpath) && !r) {
			/* we would be sampled with CMD: stop it and give up */
			spawn_stop(&child, NS_PER_S);
			monitor_cgroup_remove(cgpath);
			return error("cannot leave cgroup '%s' after starting '%s'", cgpath,
				     cmd[0]), 1;
		}
		if (r) {
			if (cgpath[0])
				monitor_cgroup_remove(cgpath);
			return error("cannot start '%s': %s", cmd[0], strerror(-r)), 1;
		}
		root = child.keeper;
		if (joined)
			po.cgroup = cgpath;
		else
			warn("sampling '%s' per task, not per cgroup: %s (threads and processes that "
			     "each run less than one period are missed)", cmd[0], why);
	}
	signal(SIGINT, on_stop);
	signal(SIGTERM, on_stop);
	if (cgroup)
		po.cgroup = cgroup;
	if (root) {
		po.pids = &root;
		po.npids = 1;
	}
	po.stop = &stop_flag;

	struct profile_result res;
	int r = profile_run(&po, &res, err, sizeof err);
	if (cmd) {
		if (child.exited || spawn_wait(&child, 0) == 0)
			;
		else
			spawn_stop(&child, NS_PER_S);
		if (child.exited && WIFEXITED(child.status) && WEXITSTATUS(child.status))
			warn("'%s' exited with status %d", cmd[0], WEXITSTATUS(child.status));
		if (cgpath[0]) {
			int e = monitor_cgroup_remove(cgpath);
			if (e)
				warn("cannot remove cgroup '%s': %s", cgpath, strerror(-e));
		}
	}
	if (r) {
		error("%s", err);
		return r == -EOPNOTSUPP ? 1 : r == -EACCES || r == -EPERM ? 3 : 1;
	}
	if (res.note[0])
		warn("%s", res.note);
	if (po.off_cpu && !res.off_cpu_ok)
		warn("off-CPU profile skipped: %s", res.off_cpu_reason);
	if (res.lost)
		warn("%llu records lost (ring buffer full): shares stay fair, counts are low; "
		     "lower -F", (unsigned long long)res.lost);

	const struct profile_unwind *u = &res.unwind;
	if (u->user_stacks)
		unwind_line(u, unwind_text, sizeof unwind_text);
	if (u->user_stacks && (u->truncated + u->unresolved) * 10 > u->user_stacks) {
		char todo[256];
		if (u->truncated * 2 > u->truncated + u->unresolved)
			snprintf(todo, sizeof todo, "raise --stack-size (now %u, max %u)",
				 po.stack_size ? po.stack_size : UNWIND_STACK_DEFAULT,
				 UNWIND_STACK_MAX);
		else if (po.call_graph == PROFILE_CG_FP)
			snprintf(todo, sizeof todo, "use --call-graph dwarf (it has no frame "
				 "pointers)");
		else
			snprintf(todo, sizeof todo, "install its -dbgsym package or set "
				 "DEBUGINFOD_URLS (no unwind info for it), or raise --stack-size");
		warn("%.1f%% of the user stacks are incomplete (%llu truncated, %llu unresolved), "
		     "most in '%s' (%llu): %s",
		     100.0 * (double)(u->truncated + u->unresolved) / (double)u->user_stacks,
		     (unsigned long long)u->truncated, (unsigned long long)u->unresolved,
		     u->worst, (unsigned long long)u->worst_count, todo);
	}
	if (u->nosym[0])
		warn("addresses without a symbol in: %s (shown as FILE+0xOFFSET; install their "
		     "-dbgsym packages, or set DEBUGINFOD_URLS)", u->nosym);

	int rc = 0;
	folded_sort(&res.on_cpu);
	folded_sort(&res.off_cpu);
	if (outdir) {
		char sub[256];
		snprintf(sub, sizeof sub, "%llu samples, %s at %d Hz, %.2fs; %.1f%% of user stacks "
			 "complete, %.1f%% truncated, %.1f%% unresolved (%s)",
			 (unsigned long long)res.samples, event, po.hz,
			 (double)res.duration_ns / 1e9,
			 100.0 * (double)u->complete / (double)(u->user_stacks ? u->user_stacks : 1),
			 100.0 * (double)u->truncated / (double)(u->user_stacks ? u->user_stacks : 1),
			 100.0 * (double)u->unresolved / (double)(u->user_stacks ? u->user_stacks : 1),
			 call_graph);
		where_build(&res, &res.on_cpu_loc);
		struct svg_arg sa = {&res.on_cpu, {.title = title ? title : "CPU Flame Graph",
						   .subtitle = sub, .where = where_of}};
		rc |= write_file(outdir, "profile.folded", put_folded, &res.on_cpu);
		if (res.samples)
			rc |= write_file(outdir, "flame.svg", put_svg, &sa);
		else if (!res.off_cpu.total)
			warn("no samples: '%s/flame.svg' not written (did the target run on a CPU?)",
			     outdir);
		if (res.off_cpu_ok) {
			struct svg_arg so = {&res.off_cpu, {.title = "Off-CPU Flame Graph",
							    .unit = "us", .subtitle = "time blocked"}};
			rc |= write_file(outdir, "offcpu.folded", put_folded, &res.off_cpu);
			if (res.off_cpu.total)
				rc |= write_file(outdir, "offcpu.svg", put_svg, &so);
		}
		char exe[4096] = "";
		if (cmd) {
			snprintf(exe, sizeof exe, "%s", cmd[0]);
		} else if (pid) {
			char link[64];
			snprintf(link, sizeof link, "/proc/%d/exe", (int)pid);
			ssize_t n = readlink(link, exe, sizeof exe - 1);
			exe[n > 0 ? n : 0] = 0;
		}
		rc |= write_pprof(outdir, &res, res.off_cpu_ok, event, (uint64_t)po.hz,
				  exe[0] ? exe : NULL);
	}
	if (!quiet) {
		char used[64] = "", scope[600];
		if (res.target_cpu_ok)
			snprintf(used, sizeof used, "; the target used %.2fs",
				 (double)res.target_cpu_ns / 1e9);
		if (res.cgroup_mode)
			snprintf(scope, sizeof scope, "cgroup %s", po.cgroup);
		else
			snprintf(scope, sizeof scope, "%d thread%s attached", res.threads_attached,
				 res.threads_attached == 1 ? "" : "s");
		printf("profile: %llu samples (%s at %d Hz, %.2fs of CPU%s) over %.2fs, "
		       "%d process%s, %s, %d CPU%s, %llu lost\n",
		       (unsigned long long)res.samples, event, po.hz,
		       (double)res.on_cpu.total_ns / 1e9, used, (double)res.duration_ns / 1e9,
		       res.processes_seen, res.processes_seen == 1 ? "" : "es", scope, res.cpus,
		       res.cpus == 1 ? "" : "s", (unsigned long long)res.lost);
		if (top && res.samples)
			print_top(&res.on_cpu, top, "on-CPU samples", 0);
		if (u->user_stacks) /* after the table: scripts read the table's rows by '%' */
			printf("%s\n", unwind_text);
		if (res.off_cpu_ok) {
			printf("off-CPU: %.3fs blocked over %llu switches (%llu unmatched)\n",
			       (double)res.off_cpu.total_ns / 1e9,
			       (unsigned long long)res.offcpu_switches,
			       (unsigned long long)res.offcpu_unmatched);
			if (top && res.off_cpu.total)
				print_top(&res.off_cpu, top, "off-CPU time", 1);
		}
		if (outdir)
			printf("wrote %s/: profile.folded%s profile.pb.gz%s%s\n", outdir,
			       res.samples ? " flame.svg" : "", res.off_cpu_ok ? " offcpu.folded" : "",
			       res.off_cpu_ok && res.off_cpu.total ? " offcpu.svg" : "");
	}
	profile_result_release(&res);
	free(wh);
	return rc ? 1 : 0;
}

const struct cmd_info cmd_info_profile = {"profile", cmd_profile,
					  "sample a process tree's stacks: flame graph, folded, pprof",
					  usage, options, NULL};
