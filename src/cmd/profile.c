/* ctxlab profile: samples a process tree's or a cgroup's call stacks (on-CPU, optionally
 * off-CPU) and writes folded stacks, an interactive flame graph and a gzipped pprof profile.
 * Option parsing and wiring only: the profiler is src/profile/; a command it starts goes into
 * a cgroup of ctxlab's own made by src/monitor/ (monitor_cgroup_create). */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc/alloc.h"
#include "cmd/cmd.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/outfile.h"
#include "core/spawn.h"
#include "core/units.h"
#include "monitor/monitor.h"
#include "profile/flamesvg.h"
#include "profile/symbols.h"
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
	"With --alloc it profiles allocations instead: CMD runs with libctxlab-alloc.so preloaded\n"
	"(LD_PRELOAD; found next to the ctxlab binary), which records malloc, calloc, realloc,\n"
	"free, memalign, posix_memalign, aligned_alloc, valloc and pvalloc with their stacks (frame\n"
	"pointers); ctxlab matches frees to allocations and prints pprof's alloc_space and\n"
	"inuse_space tops. With -o: heap.pb.gz (alloc_objects, alloc_space, inuse_objects,\n"
	"inuse_space), alloc.folded/.svg, inuse.folded/.svg, peak.folded, heap-time.svg (heap in\n"
	"use over time, the peak and its top stacks) and heap-time.tsv. A static or set-user-ID\n"
	"program cannot be preloaded: an error says so.\n"

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
static char focus_name[64] = "focus";
static uint64_t top = 15;
static int quiet;

/* --focus PID[:NAME]: NAME of [a-z0-9_-]+ (a file name under -o DIR) */
static int opt_focus(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	char num[32];
	const char *colon = strchr(arg, ':');
	size_t nl = colon ? (size_t)(colon - arg) : strlen(arg);
	if (colon) {
		const char *nm = colon + 1;
		size_t l = strlen(nm);
		if (!l || l >= sizeof focus_name || strspn(nm, "abcdefghijklmnopqrstuvwxyz"
						   "0123456789_-") != l)
			return errbuf(err, errlen, "a name of [a-z0-9_-] after the pid, e.g. "
					  "--focus 1234:front");
		memcpy(focus_name, nm, l + 1);
	}
	if (nl >= sizeof num)
		nl = sizeof num - 1;
	memcpy(num, arg, nl);
	num[nl] = 0;
	if (cmd_opt_pid(o, num, err, errlen) < 0)
		return errbuf(err, errlen, "a positive process id, optionally ':NAME', e.g. "
			      "--focus 1234:front"), -1;
	return 0;
}

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

static const char *symcache;
static int alloc_mode;
static uint64_t alloc_mean = 512 * 1024;
static int alloc_mean_set;

static int opt_alloc_sample(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	alloc_mean_set = 1;
	if (!strcmp(arg, "exact")) {
		*(uint64_t *)o->value = 0;
		return 0;
	}
	uint64_t v;
	if (units_parse_size_bytes(arg, &v, err, errlen) < 0 || v < 1 || v > (1ull << 40))
		return errbuf(err, errlen, "bytes per sample, 1B..1TiB (e.g. 512KiB), or exact");
	*(uint64_t *)o->value = v;
	return 0;
}

static int cmd_profile_alloc(char **cmd);

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
	OPT_CALLBACK(0, "focus", &po.focus_pid, "PID[:NAME]",
		     "with -o, also write DIR/NAME.folded (default focus.folded):\n"
		     "the on-CPU stacks of process PID alone (its threads, not its\n"
		     "children), e.g. a server tree's root", opt_focus),
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
	OPT_FLAG(0, "alloc", &alloc_mode,
		 "profile allocations of -- CMD (LD_PRELOAD interposer) instead\n"
		 "of CPU: in use, allocated, the peak (see above)"),
	OPT_CALLBACK(0, "alloc-sample", &alloc_mean, "N",
		     "--alloc: record one allocation per N bytes allocated on\n"
		     "average (Poisson, as tcmalloc; figures are then estimates;\n"
		     "default 512KiB), or 'exact': every call", opt_alloc_sample),
	OPT_COUNT(0, "top", &top, "N", "rows of the self/total table (default 15, 0 = none)"),
	OPT_STRING(0, "title", &title, "TEXT", "flame graph title"),
	OPT_STRING(0, "symcache", &symcache, "DIR",
		   "keep what symbolizing costs most in DIR for the next profile\n"
		   "given it (the kernel's symbol table, debug files decompressed):\n"
		   "an existing directory of yours ('ctxlab run' makes one per run);\n"
		   "prints 'symcache: kernel_hits=N kernel_misses=N debug_hits=N\n"
		   "debug_misses=N' on stdout (also with -q)"),
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
	if (alloc_mode) {
		if (pid || cgroup || !cmd)
			return error("--alloc profiles a command it starts: pass -- CMD [ARGS...] (a "
				     "running process cannot be preloaded)"), 2;
		return cmd_profile_alloc(cmd);
	}
	if (alloc_mean_set)
		return error("--alloc-sample needs --alloc"), 2;
	if (po.focus_pid && !outdir)
		return error("--focus needs -o DIR (it writes DIR/NAME.folded)"), 2;
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
	if (symcache) {
		struct stat sb;
		if (stat(symcache, &sb) < 0 || !S_ISDIR(sb.st_mode))
			return error("cannot use '%s' as the symbol cache: %s (make the directory "
				     "first)", symcache, stat(symcache, &sb) < 0 ? strerror(errno)
				     : "not a directory"), 2;
		symbols_cache_dir(symcache);
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
		if (po.focus_pid > 0) {
			char fname[80];
			folded_sort(&res.focus);
			snprintf(fname, sizeof fname, "%s.folded", focus_name);
			rc |= write_file(outdir, fname, put_folded, &res.focus);
		}
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
	if (symcache) {
		struct symbols_cache_stats cs;
		symbols_cache_stats(&cs);
		printf("symcache: kernel_hits=%u kernel_misses=%u debug_hits=%u debug_misses=%u\n",
		       cs.kernel_hits, cs.kernel_misses, cs.debug_hits, cs.debug_misses);
		fflush(stdout);
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

/* ---- --alloc: allocation profiling through libctxlab-alloc.so ---------------------------- */


/* argv[0] as execvp finds it. */
static int alloc_which(const char *name, char *out, size_t len)
{
	if (strchr(name, '/')) {
		snprintf(out, len, "%s", name);
		return access(out, X_OK) == 0 ? 0 : -errno;
	}
	const char *path = getenv("PATH");
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		const char *c = strchr(path, ':');
		size_t dl = c ? (size_t)(c - path) : strlen(path);
		snprintf(out, len, "%.*s/%s", (int)dl, dl ? path : ".", name);
		struct stat st;
		if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
			return 0;
		path += dl + (c ? 1 : 0);
	}
	return -ENOENT;
}

/* Whether LD_PRELOAD can reach the program at path: 0, or -1 with why filled (a static
 * binary: no PT_INTERP, the kernel starts it without ld.so; set-user-ID / set-group-ID to
 * someone else: the loader runs in secure mode and ignores a preload with a '/'). A script
 * is judged by its interpreter. */
static int alloc_preloadable(const char *path, char *why, size_t wlen, int depth)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		snprintf(why, wlen, "cannot stat '%s': %s", path, strerror(errno));
		return -1;
	}
	if (((st.st_mode & S_ISUID) && st.st_uid != geteuid()) ||
	    ((st.st_mode & S_ISGID) && st.st_gid != getegid())) {
		snprintf(why, wlen, "'%s' is set-%s-ID: the dynamic loader runs it in secure mode and "
			 "ignores LD_PRELOAD (profile a copy without the bit, or run as its owner)",
			 path, (st.st_mode & S_ISUID) ? "user" : "group");
		return -1;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, wlen, "cannot open '%s': %s", path, strerror(errno));
		return -1;
	}
	unsigned char h[512];
	ssize_t n = pread(fd, h, sizeof h, 0);
	if (n >= 2 && h[0] == '#' && h[1] == '!' && depth < 2) {
		close(fd);
		char interp[512];
		size_t i = 2, j = 0;
		while (i < (size_t)n && (h[i] == ' ' || h[i] == '\t'))
			i++;
		while (i < (size_t)n && h[i] != ' ' && h[i] != '\t' && h[i] != '\n' && j + 1 < sizeof interp)
			interp[j++] = (char)h[i++];
		interp[j] = 0;
		return j ? alloc_preloadable(interp, why, wlen, depth + 1) : 0;
	}
	int r = 0;
	if (n < (ssize_t)sizeof(Elf64_Ehdr) || memcmp(h, ELFMAG, SELFMAG)) {
		close(fd);
		return 0; /* not ELF: let exec say what it is */
	}
	if (h[EI_CLASS] != ELFCLASS64) {
		snprintf(why, wlen, "'%s' is a 32-bit program: the interposer is a 64-bit library", path);
		close(fd);
		return -1;
	}
	Elf64_Ehdr eh;
	memcpy(&eh, h, sizeof eh);
	int interp = 0, dynamic = 0;
	for (int i = 0; i < eh.e_phnum && i < 4096; i++) {
		Elf64_Phdr ph;
		if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (uint64_t)i * eh.e_phentsize)) !=
		    (ssize_t)sizeof ph)
			break;
		interp |= ph.p_type == PT_INTERP;
		dynamic |= ph.p_type == PT_DYNAMIC;
	}
	close(fd);
	if (eh.e_type == ET_EXEC || eh.e_type == ET_DYN) {
		if (!interp) {
			snprintf(why, wlen, "'%s' is statically linked (no PT_INTERP%s): LD_PRELOAD has no "
				 "effect on it, so its allocations cannot be recorded (a Go program: "
				 "use its runtime's pprof heap profile)",
				 path, dynamic ? ", a static PIE" : ", no PT_DYNAMIC");
			r = -1;
		}
	}
	return r;
}


static int put_heap_svg(FILE *f, const void *arg)
{
	const struct alloc_result *r = arg;
	return alloc_heap_svg(r, title ? title : "Heap in use over time", 10, f);
}

static int put_heap_tsv(FILE *f, const void *arg) { return alloc_curve_tsv(arg, f); }

static int alloc_write_pprof(const char *dir, const struct alloc_result *r)
{
	char path[4096], comment[256];
	snprintf(path, sizeof path, "%s/heap.pb.gz", dir);
	if (r->sample_mean)
		snprintf(comment, sizeof comment, "ctxlab profile --alloc: sampled, one allocation per "
			 "%llu bytes on average; values are estimates (weight 1/(1-exp(-size/%llu)))",
			 (unsigned long long)r->sample_mean, (unsigned long long)r->sample_mean);
	else
		snprintf(comment, sizeof comment, "ctxlab profile --alloc: exact (every call)");
	struct pprof_desc d = {
		.nvalues = 4,
		.type = {"alloc_objects", "alloc_space", "inuse_objects", "inuse_space"},
		.unit = {"count", "bytes", "count", "bytes"},
		.default_type = "inuse_space",
		.period_type = "space",
		.period_unit = "bytes",
		.period = r->sample_mean ? (int64_t)r->sample_mean : 1,
		.duration_nanos = (int64_t)r->duration_ns,
		.comment = comment,
		.main_binary = r->exe[0] ? r->exe : NULL,
	};
	/* folded: count = bytes, ns = objects */
	const struct folded *sets[2] = {&r->alloc, &r->inuse};
	int vc[2] = {1, 3}, vn[2] = {0, 2};
	struct buf b = BUF_INIT;
	int e = pprof_encode(&d, sets, vc, vn, 2, &b);
	if (!e)
		e = pprof_write_gz(buf_head(&b), buf_used(&b), path);
	buf_free(&b);
	if (e)
		return error("cannot write '%s': %s", path, outfile_strerror(e));
	return 0;
}

/* pprof -top's columns: flat flat% sum% cum cum% over bytes. */
static void alloc_print_top(const struct folded *f, size_t n_top, const char *what)
{
	size_t n;
	struct folded_fn *fns = folded_functions(f, 1, &n);
	if (!fns)
		return;
	double total = f->total ? (double)f->total : 1, sum = 0;
	printf("%12s %7s %7s %12s %7s  %s\n", "flat", "flat%", "sum%", "cum", "cum%", what);
	for (size_t i = 0; i < n && i < n_top; i++) {
		char a[32], b[32];
		sum += (double)fns[i].self;
		printf("%12s %6.2f%% %6.2f%% %12s %6.2f%%  %s\n",
		       units_format_size(fns[i].self, a, sizeof a), 100.0 * (double)fns[i].self / total,
		       100.0 * sum / total, units_format_size(fns[i].total, b, sizeof b),
		       100.0 * (double)fns[i].total / total, fns[i].name);
	}
	folded_fns_free(fns, n);
}

static int cmd_profile_alloc(char **cmd)
{
	char lib[4096], exe[4096], why[1024], err[512];
	if (alloc_lib_path(NULL, lib, sizeof lib))
		return error("cannot find the allocation interposer libctxlab-alloc.so next to the "
			     "ctxlab binary (it is built with ctxlab: cmake --build build)"), 1;
	int e = alloc_which(cmd[0], exe, sizeof exe);
	if (e)
		return error("cannot start '%s': %s", cmd[0], strerror(-e)), 1;
	if (alloc_preloadable(exe, why, sizeof why, 0))
		return error("cannot profile allocations of '%s': %s", cmd[0], why), 1;
	if (outdir) {
		int r = mkdir_p(outdir);
		if (r)
			return error("cannot create '%s': %s", outdir, strerror(-r)), 1;
	}
	/* the records: in $TMPDIR (else /tmp), removed once read */
	char dir[1100];
	const char *tmpdir = getenv("TMPDIR");
	snprintf(dir, sizeof dir, "%.1024s/ctxlab-alloc.XXXXXX", tmpdir && tmpdir[0] ? tmpdir : "/tmp");
	if (!mkdtemp(dir))
		return error("cannot create a directory for the records in '%s': %s (set TMPDIR)",
			     tmpdir && tmpdir[0] ? tmpdir : "/tmp", strerror(errno)), 1;
	char env_pre[8300], env_dir[1200], env_smp[64];
	const char *old = getenv("LD_PRELOAD");
	snprintf(env_pre, sizeof env_pre, "LD_PRELOAD=%s%s%s", lib, old && old[0] ? ":" : "",
		 old ? old : "");
	snprintf(env_dir, sizeof env_dir, "CTXLAB_ALLOC_DIR=%s", dir);
	snprintf(env_smp, sizeof env_smp, "CTXLAB_ALLOC_SAMPLE=%llu", (unsigned long long)alloc_mean);
	/* a program built with AddressSanitizer aborts when a preload comes before its runtime;
	 * the order is harmless here (ASan's malloc is still the one called, through ours) */
	char env_asan[1200];
	const char *asan = getenv("ASAN_OPTIONS");
	snprintf(env_asan, sizeof env_asan, "ASAN_OPTIONS=%.1000s%sverify_asan_link_order=0",
		 asan ? asan : "", asan && asan[0] ? ":" : "");
	const char *env[] = {env_pre, env_dir, env_smp, env_asan, NULL};
	spawn_guard_init();
	struct spawn_child child = {.pid = -1, .keeper = -1};
	struct spawn_opts so = {.argv = (const char *const *)cmd, .env = env, .stderr_fd = -1};
	uint64_t t0 = clock_now_ns();
	e = spawn_start(&so, &child);
	if (e) {
		alloc_dir_remove(dir);
		return error("cannot start '%s': %s", cmd[0], strerror(-e)), 1;
	}
	signal(SIGINT, on_stop);
	signal(SIGTERM, on_stop);
	while (!child.exited && spawn_wait(&child, 100 * 1000 * 1000LL) != 0) {
		if (stop_flag || (po.duration_ns && clock_now_ns() - t0 >= po.duration_ns)) {
			spawn_stop(&child, 2 * NS_PER_S);
			break;
		}
	}
	if (child.exited && WIFEXITED(child.status) && WEXITSTATUS(child.status))
		warn("'%s' exited with status %d", cmd[0], WEXITSTATUS(child.status));
	struct rusage ru;
	getrusage(RUSAGE_CHILDREN, &ru);
	struct alloc_result res;
	e = alloc_read_dir(dir, &res, err, sizeof err);
	alloc_dir_remove(dir);
	if (e == -ENOENT || (!e && !res.calls_total)) {
		error("'%s' made no call to malloc & co. that the interposer saw (%s; its largest "
		      "process reached %.1f MiB of RSS): it has an allocator of its own (linked in, or "
		      "a malloc defined in the program, which comes before LD_PRELOAD) or does not "
		      "allocate; nothing written",
		      cmd[0], e == -ENOENT ? "the interposer did not start in it: no record file"
					   : "0 calls",
		      (double)ru.ru_maxrss / 1024.0);
		alloc_result_release(&res);
		return 1;
	}
	if (e) {
		alloc_result_release(&res);
		return error("%s", err), 1;
	}
	folded_sort(&res.alloc);
	folded_sort(&res.inuse);
	folded_sort(&res.peak);
	int rc = 0;
	char mean_s[32] = "";
	if (res.sample_mean)
		units_format_size(res.sample_mean, mean_s, sizeof mean_s);
	if (outdir) {
		char sub[256];
		snprintf(sub, sizeof sub, "%s; %llu allocation calls in %d process image%s",
			 res.sample_mean ? "estimated from samples" : "exact", (unsigned long long)res.calls_total,
			 res.images, res.images == 1 ? "" : "s");
		struct svg_arg sa = {&res.alloc, {.title = "Allocations (bytes allocated)",
						   .subtitle = sub, .unit = "bytes"}};
		struct svg_arg si = {&res.inuse, {.title = "In use at exit (bytes)", .subtitle = sub,
						   .unit = "bytes"}};
		rc |= write_file(outdir, "alloc.folded", put_folded, &res.alloc);
		rc |= write_file(outdir, "inuse.folded", put_folded, &res.inuse);
		rc |= write_file(outdir, "peak.folded", put_folded, &res.peak);
		if (res.alloc.total)
			rc |= write_file(outdir, "alloc.svg", put_svg, &sa);
		if (res.inuse.total)
			rc |= write_file(outdir, "inuse.svg", put_svg, &si);
		rc |= write_file(outdir, "heap-time.svg", put_heap_svg, &res);
		rc |= write_file(outdir, "heap-time.tsv", put_heap_tsv, &res);
		rc |= alloc_write_pprof(outdir, &res);
	}
	if (!quiet) {
		char a[32], b[32], c[32];
		printf("alloc: %s; %llu calls (", res.sample_mean ? "sampled" : "exact",
		       (unsigned long long)res.calls_total);
		int first = 1;
		for (int k = 1; k < ALLOCREC_NALLOC_KINDS; k++)
			if (res.calls[k]) {
				printf("%s%s %llu", first ? "" : ", ", alloc_kind_name(k),
				       (unsigned long long)res.calls[k]);
				first = 0;
			}
		printf("), %llu frees, %s requested, %llu records, %d process image%s\n",
		       (unsigned long long)res.frees, units_format_size(res.bytes_requested, a, sizeof a),
		       (unsigned long long)res.records, res.images, res.images == 1 ? "" : "s");
		if (res.sample_mean)
			printf("estimates (one sample per %s allocated on average, weighted "
			       "1/(1-exp(-size/%llu))):\n", mean_s, (unsigned long long)res.sample_mean);
		printf("allocated %s in %.0f objects; in use at exit %s in %.0f objects; peak %s at "
		       "%.3fs of %.3fs\n",
		       units_format_size((uint64_t)llround(res.alloc_bytes), a, sizeof a),
		       res.alloc_objects, units_format_size((uint64_t)llround(res.inuse_bytes), b, sizeof b),
		       res.inuse_objects, units_format_size((uint64_t)llround(res.peak_bytes), c, sizeof c),
		       (double)res.peak_t_ns / 1e9, (double)res.duration_ns / 1e9);
		if (res.unmatched_frees || res.dropped || res.bad_records)
			printf("note: %llu frees of blocks allocated before the interposer (or in a "
			       "parent) ignored, %llu samples dropped, %llu damaged records\n",
			       (unsigned long long)res.unmatched_frees, (unsigned long long)res.dropped,
			       (unsigned long long)res.bad_records);
		if (top && res.alloc.total)
			alloc_print_top(&res.alloc, top, "(alloc_space)");
		if (top && res.inuse.total)
			alloc_print_top(&res.inuse, top, "(inuse_space at exit)");
		if (outdir)
			printf("wrote %s/: heap.pb.gz alloc.folded inuse.folded peak.folded%s%s heap-time.svg "
			       "heap-time.tsv\n",
			       outdir, res.alloc.total ? " alloc.svg" : "", res.inuse.total ? " inuse.svg" : "");
	}
	alloc_result_release(&res);
	return rc ? 1 : 0;
}

const struct cmd_info cmd_info_profile = {"profile", cmd_profile,
					  "sample a process tree's stacks: flame graph, folded, pprof",
					  usage, options, NULL};
