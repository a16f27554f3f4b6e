#include "monitor/watch.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/spawn.h"
#include "core/units.h"
#include "monitor/monout.h"
#include "monitor/series.h"
#include "monitor/workload.h"

static void fmt_size(double b, char *buf, size_t len)
{
	if (b >= 1024.0 * 1024 * 1024)
		snprintf(buf, len, "%.1fG", b / (1024.0 * 1024 * 1024));
	else if (b >= 1024.0 * 1024)
		snprintf(buf, len, "%.1fM", b / (1024.0 * 1024));
	else
		snprintf(buf, len, "%.0fK", b / 1024.0);
}

static void table_header(const struct monitor_sample *s)
{
	printf("%-8s %6s %6s %6s %6s %9s %9s %5s %5s %7s %7s %5s %5s %8s %6s %6s %5s %5s %5s %5s %5s "
	       "%9s %6s %5s\n", "time", "usr", "sys", "cores", "%cpu", "cswch/s", "nvcswch/s",
	       "procs", "thr", "rss", "pss", "fds", "socks", "minflt/s", "majf/s", "runq", "us",
	       "sy", "id", "wa", "si", "syscall/s", "migr/s", "ipc");
	(void)s;
}

static void table_row(const struct monitor_sample *s, double t_s)
{
	double v[SERIES_NFIG];
	series_row(s, v);
	char rss[16], pss[16], sc[16], mg[16], ipc[16];
	fmt_size((double)s->rss_bytes, rss, sizeof rss);
	fmt_size((double)s->pss_bytes, pss, sizeof pss);
	if (s->syscalls_ok)
		snprintf(sc, sizeof sc, "%.0f", v[24]);
	else
		snprintf(sc, sizeof sc, "n/a");
	if (s->sw_ok)
		snprintf(mg, sizeof mg, "%.0f", v[25]);
	else
		snprintf(mg, sizeof mg, "n/a");
	if (s->hw_ok)
		snprintf(ipc, sizeof ipc, "%.2f", s->ipc);
	else
		snprintf(ipc, sizeof ipc, "n/a");
	printf("%8.2f %6.3f %6.3f %6.3f %6.1f %9.0f %9.0f %5d %5d %7s %7s %5d %5d %8.0f %6.0f %6.1f "
	       "%5.1f %5.1f %5.1f %5.1f %5.1f %9s %6s %5s\n",
	       t_s, s->cpu_user_cores, s->cpu_sys_cores, s->cpu_total_cores, s->cpu_pct,
	       s->ctxsw_vol_per_s, s->ctxsw_invol_per_s, s->procs, s->threads, rss, pss, s->fds,
	       s->sockets, v[13], v[14], v[15], s->sys.us, s->sys.sy, s->sys.id, s->sys.wa, s->sys.si,
	       sc, mg, ipc);
	for (int i = 0; i < s->ncpus; i++)
		printf("         cpu%-3d us %5.1f sy %5.1f ni %5.1f id %5.1f wa %5.1f hi %5.1f si %5.1f "
		       "st %5.1f\n", i, s->per_cpu[i].us, s->per_cpu[i].sy, s->per_cpu[i].ni,
		       s->per_cpu[i].id, s->per_cpu[i].wa, s->per_cpu[i].hi, s->per_cpu[i].si,
		       s->per_cpu[i].st);
	for (int i = 0; i < s->ntasks; i++) {
		const struct monitor_task *t = &s->tasks[i];
		printf("         %7d %7d %-16s usr %6.3f sys %6.3f cswch %6llu nvcswch %6llu\n",
		       (int)t->pid, (int)t->tid, t->comm, t->cpu_user_cores, t->cpu_sys_cores,
		       (unsigned long long)t->ctxsw_vol, (unsigned long long)t->ctxsw_invol);
	}
}

static void csv_header(void)
{
	printf("t_s");
	for (int i = 0; i < SERIES_NFIG; i++)
		printf(",%s", series_names[i]);
	printf(",method\n");
}

static void csv_row(const struct monitor_sample *s, double t_s)
{
	double v[SERIES_NFIG];
	series_row(s, v);
	printf("%.3f", t_s);
	for (int i = 0; i < SERIES_NFIG; i++) {
		if (isnan(v[i]))
			printf(",");
		else
			printf(",%.6g", v[i]);
	}
	printf(",%s\n", monitor_method_name(s->method));
}

/* watch's own CPU (getrusage(RUSAGE_SELF)) from the end of the first sample to the end of the
 * last: the steady cost of sampling, start-up (first walk, counters opened) left out */
static double self_cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void flush_jw(struct jw *w)
{
	fwrite(w->buf, 1, w->len, stdout);
	fputc('\n', stdout);
	fflush(stdout);
	jw_reset(w);
}

static double ru_s(struct timeval tv) { return (double)tv.tv_sec + (double)tv.tv_usec / 1e6; }

/* ---- selftest -------------------------------------------------------------------------- */

static int selftest_one(const char *name, int cg_version)
{
	struct workload_tree_opts o = {.children = 6, .user_ns = 300 * NS_PER_MS,
				       .sys_ns = 300 * NS_PER_MS, .stagger_ns = 60 * NS_PER_MS,
				       .nested = 1};
	char path[512] = "", err[256];
	int v = 0;
	if (cg_version && monitor_cgroup_create(cg_version, "selftest", path, sizeof path, &v, err,
						sizeof err)) {
		printf("%-9s SKIP  %s\n", name, err);
		return 0;
	}
	struct workload_tree t;
	if (workload_tree_start(&o, &t))
		return error("cannot fork the selftest workload: %s", strerror(errno));
	if (cg_version && monitor_cgroup_join(path, t.pid)) {
		printf("%-9s SKIP  cannot move a process into '%s'\n", name, path);
		workload_tree_end(&t);
		monitor_cgroup_remove(path);
		return 0;
	}
	struct monitor_opts mo = {.pid = t.pid, .cpu_cgroup = cg_version ? path : NULL};
	struct monitor *m = monitor_start(&mo, err, sizeof err);
	if (!m) {
		workload_tree_end(&t);
		return error("%s", err);
	}
	workload_tree_go(&t);
	struct workload_truth tr;
	double u = 0, s = 0;
	int got = 0;
	for (int i = 0; i < 400 && !got; i++) {
		clock_sleep_ns(50 * NS_PER_MS);
		struct monitor_sample smp;
		monitor_sample(m, &smp);
		u += smp.cpu_user_s, s += smp.cpu_sys_s;
		got = workload_tree_truth(&t, &tr, 1) == 0;
	}
	struct monitor_sample smp;
	monitor_sample(m, &smp);
	u += smp.cpu_user_s, s += smp.cpu_sys_s;
	enum monitor_method meth = smp.method;
	monitor_stop(m, NULL);
	workload_tree_end(&t);
	if (cg_version)
		monitor_cgroup_remove(path);
	if (!got) {
		printf("%-9s FAIL  the workload did not finish\n", name);
		return -1;
	}
	double tu = tr.children_user_s + tr.self_user_s, ts = tr.children_sys_s + tr.self_sys_s;
	double tot = tu + ts, err_pct = 100 * (u + s - tot) / tot;
	int ok = fabs(u + s - tot) <= 0.02 * tot && fabs(u - tu) <= 0.05 * tot &&
		 fabs(s - ts) <= 0.05 * tot && meth == (cg_version == 2 ? MONITOR_CGROUP2
							: cg_version == 1 ? MONITOR_CGROUP1
									  : MONITOR_PROCWALK);
	printf("%-9s %s  user %.3fs sys %.3fs vs getrusage user %.3fs sys %.3fs: total %+.2f%% "
	       "(limit 2%%), split %+.2f pts (limit 5)\n", name, ok ? "PASS" : "FAIL", u, s, tu, ts,
	       err_pct, 100 * (u / (u + s) - tu / tot));
	return ok ? 0 : -1;
}

/* Context switches of a tree of short-lived children (procwalk: the children are born and
 * gone between samples; only the kernel's exit events can account them) against the root's
 * getrusage: voluntary within 5% (+5); involuntary within 5% (+5) less 0.5 per exit (the
 * preemptions of a process's teardown after its exit event reach only its reaper). */
static int selftest_switches(void)
{
	const char *name = "switches";
	struct workload_tree_opts o = {.children = 200, .par = 4, .sleeps = 5,
				       .user_ns = 300 * NS_PER_US, .sys_ns = 300 * NS_PER_US};
	char err[256];
	struct workload_tree t;
	if (workload_tree_start(&o, &t))
		return error("cannot fork the selftest workload: %s", strerror(errno));
	struct monitor_opts mo = {.pid = t.pid};
	struct monitor *m = monitor_start(&mo, err, sizeof err);
	if (!m) {
		workload_tree_end(&t);
		return error("%s", err);
	}
	workload_tree_go(&t);
	struct workload_truth tr;
	uint64_t vol = 0, invol = 0;
	int got = 0;
	struct monitor_sample smp;
	for (int i = 0; i < 400 && !got; i++) {
		clock_sleep_ns(50 * NS_PER_MS);
		monitor_sample(m, &smp);
		vol += smp.ctxsw_vol, invol += smp.ctxsw_invol;
		got = workload_tree_truth(&t, &tr, 1) == 0;
	}
	monitor_sample(m, &smp);
	vol += smp.ctxsw_vol, invol += smp.ctxsw_invol;
	monitor_stop(m, NULL);
	workload_tree_end(&t);
	if (!got) {
		printf("%-9s FAIL  the workload did not finish\n", name);
		return -1;
	}
	if (strncmp(smp.source, "taskstats + exit events", 23)) {
		printf("%-9s SKIP  no taskstats exit events (source: %s)\n", name, smp.source);
		return 0;
	}
	double tv = (double)(tr.children_nvcsw + tr.self_nvcsw);
	double ti = (double)(tr.children_nivcsw + tr.self_nivcsw);
	double exits = o.children;
	int ok = fabs((double)vol - tv) <= 0.05 * tv + 5 &&
		 (double)invol >= 0.95 * ti - 0.5 * exits - 5 && (double)invol <= 1.05 * ti + 5;
	printf("%-9s %s  %d short-lived children: voluntary %llu vs getrusage %.0f (%+.2f%%, limit "
	       "5%%), involuntary %llu vs %.0f (%+.2f%%, limit +5%% / -5%% - 0.5 per exit)\n", name,
	       ok ? "PASS" : "FAIL", o.children, (unsigned long long)vol, tv,
	       tv ? 100 * ((double)vol - tv) / tv : 0, (unsigned long long)invol, ti,
	       ti ? 100 * ((double)invol - ti) / ti : 0);
	return ok ? 0 : -1;
}

int watch_selftest(void)
{
	printf("selftest: 6 children (3 user-mode, 3 kernel-mode burners, staggered exits, nested "
	       "reaping) against the root's getrusage(RUSAGE_CHILDREN)\n");
	int r = 0;
	r |= selftest_one("procwalk", 0);
	r |= selftest_one("cgroup2", 2);
	r |= selftest_one("cgroup1", 1);
	r |= selftest_switches();
	return r ? -1 : 0;
}

/* ---- the run ---- */

struct watch_state {
	struct spawn_child child;
	int started;               /* child is valid */
	char cgpath[512];          /* our cgroup for the command ("" = none) */
	struct rusage ru0;         /* RUSAGE_CHILDREN before the command */
	struct monitor_opts mo;
};

/* Starts o->cmd held (before exec), in a cgroup of its own when one can be made. 0 or -1. */
static int start_cmd(const struct watch_opts *o, struct watch_state *ws, char *err,
		     size_t errlen)
{
	spawn_guard_init();
	int want = !o->method || !strcmp(o->method, "auto") ? 0
		   : !strcmp(o->method, "cgroup2")          ? 2
		   : !strcmp(o->method, "cgroup1")          ? 1
							    : -1;
	int v = 0;
	char cerr[256];
	if (want >= 0 && monitor_cgroup_create(want, "watch", ws->cgpath, sizeof ws->cgpath, &v,
					       cerr, sizeof cerr)) {
		if (want)
			return errbuf(err, errlen, "%s", cerr);
		ws->cgpath[0] = 0;
	}
	/* the child is forked inside the cgroup: nothing it does escapes accounting */
	int joined = ws->cgpath[0] && !monitor_cgroup_join(ws->cgpath, 0);
	/* held before exec until the monitor (and its perf counters, inherited by all the tree
	 * forks) is attached: nothing CMD does escapes the counters */
	struct spawn_opts so = {.argv = (const char *const *)o->cmd, .stderr_fd = -1, .hold = 1};
	int r = spawn_start(&so, &ws->child);
	if (joined)
		monitor_cgroup_leave(ws->cgpath);
	if (r) {
		if (ws->cgpath[0])
			monitor_cgroup_remove(ws->cgpath);
		ws->cgpath[0] = 0;
		return errbuf(err, errlen, "cannot start '%s': %s", o->cmd[0], strerror(-r));
	}
	ws->started = 1;
	ws->mo.pid = ws->child.keeper;
	ws->mo.cpu_cgroup = joined ? ws->cgpath : NULL;
	ws->mo.from_birth = 1;
	return 0;
}

/* 1 when the started command has ended (its tree reaped: the monitor is told), after waiting
 * at most until next; without a command, sleeps until next. */
static int wait_interval(const struct watch_opts *o, struct watch_state *ws, struct monitor *m,
			 uint64_t next)
{
	if (!o->cmd) {
		clock_sleep_until_ns(next, 0);
		return 0;
	}
	uint64_t now = clock_now_ns();
	int64_t left = next > now ? (int64_t)(next - now) : 0;
	if (spawn_wait(&ws->child, left) != 0)
		return 0;
	/* reaped: the keeper's rusage covers the whole tree */
	struct rusage ru;
	getrusage(RUSAGE_CHILDREN, &ru);
	struct rusage d = {0};
	double us = ru_s(ru.ru_utime) - ru_s(ws->ru0.ru_utime);
	double ss = ru_s(ru.ru_stime) - ru_s(ws->ru0.ru_stime);
	d.ru_utime.tv_sec = (time_t)us;
	d.ru_utime.tv_usec = (suseconds_t)((us - (double)(time_t)us) * 1e6);
	d.ru_stime.tv_sec = (time_t)ss;
	d.ru_stime.tv_usec = (suseconds_t)((ss - (double)(time_t)ss) * 1e6);
	d.ru_nvcsw = ru.ru_nvcsw - ws->ru0.ru_nvcsw;
	d.ru_nivcsw = ru.ru_nivcsw - ws->ru0.ru_nivcsw;
	monitor_reaped(m, &d);
	return 1;
}

static void print_sample(const struct watch_opts *o, struct jw *w, const struct monitor_sample *s,
			 double t_s, int *rows, int tty)
{
	if (o->quiet)
		return;
	if (o->fmt == WATCH_FMT_TABLE) {
		if (*rows % (tty ? 20 : 1000000) == 0)
			table_header(s);
		(*rows)++;
		table_row(s, t_s);
		fflush(stdout);
	} else if (o->fmt == WATCH_FMT_CSV) {
		csv_row(s, t_s);
		fflush(stdout);
	} else {
		monout_sample(w, s, t_s);
		flush_jw(w);
	}
}

static void print_total(const struct watch_opts *o, struct jw *w, const struct series *se,
			const struct monitor_sample *tot, const struct monout_overhead *oh)
{
	if (o->fmt == WATCH_FMT_JSON) {
		monout_summary(w, se, tot, oh);
		flush_jw(w);
		return;
	}
	if (o->fmt != WATCH_FMT_TABLE || o->quiet)
		return;
	struct series_stats st;
	series_stats(se, 3, &st);
	printf("# total over %.2fs: user %.3fs sys %.3fs (%.3f cores, mean %.3f sd %.3f cv %.2f "
	       "p95 %.3f), cswch %llu nvcswch %llu, method %s (%s)\n",
	       tot->interval_s, tot->cpu_user_s, tot->cpu_sys_s, tot->cpu_total_cores, st.mean,
	       st.stddev, st.cv, st.p95, (unsigned long long)tot->ctxsw_vol,
	       (unsigned long long)tot->ctxsw_invol, monitor_method_name(tot->method),
	       tot->method_reason);
	printf("# source %s; pss/fds refreshed every %d interval(s)\n", tot->source,
	       tot->slow_every);
	if (oh->ok)
		printf("# monitor overhead: %.2f%% of one core (watch's own CPU %.3fs over "
		       "%.2fs after the first sample)\n",
		       oh->span_s > 0 ? 100 * oh->cpu_s / oh->span_s : 0, oh->cpu_s, oh->span_s);
	if (!tot->hw_ok && o->mo.perf_counters)
		printf("# hardware counters: %s\n", tot->na_reason);
	if (tot->left)
		printf("# %d processes left the tree alive (reparented away): counted until "
		       "they left\n", tot->left);
}

/* Samples until the target ends, the count is reached or a stop; the summary into *tot. */
static int sample_loop(const struct watch_opts *o, struct watch_state *ws, struct monitor *m,
		       struct monitor_sample *tot, char *err, size_t errlen)
{
	struct series se = {0};
	struct jw w;
	jw_init(&w);
	int tty = isatty(1), rows = 0, rc = 0;
	uint64_t start = clock_now_ns(), next = start, n = 0, oh_t0 = 0;
	double oh_cpu0 = 0;
	if (!o->quiet && o->fmt == WATCH_FMT_CSV)
		csv_header();
	if (!o->quiet && o->fmt == WATCH_FMT_TABLE)
		printf("# ctxlab watch: %s, cpu accounting %s\n",
		       o->cmd ? o->cmd[0] : o->mo.cgroup ? o->mo.cgroup
				: o->mo.name_regex ? o->mo.name_regex : "pid",
		       monitor_method_name(monitor_method_of(m)));
	for (;;) {
		next += o->interval_ns;
		int exited = wait_interval(o, ws, m, next);
		struct monitor_sample s;
		int r = monitor_sample(m, &s);
		if (r) {
			rc = errbuf(err, errlen, "sampling failed: %s", strerror(-r));
			break;
		}
		if (exited)
			s.exited = 1;
		if (++n == 1)
			oh_cpu0 = self_cpu_s(), oh_t0 = clock_now_ns();
		series_add(&se, &s);
		print_sample(o, &w, &s, (double)(clock_now_ns() - start) / 1e9, &rows, tty);
		if (s.exited || (o->stop && *o->stop) || (o->count && n >= o->count))
			break;
	}
	struct monout_overhead oh = {0};
	if (n >= 2) {
		oh.ok = 1;
		oh.cpu_s = self_cpu_s() - oh_cpu0;
		oh.span_s = (double)(clock_now_ns() - oh_t0) / 1e9;
	}
	if (ws->started && !ws->child.exited)
		spawn_stop(&ws->child, NS_PER_S);
	monitor_stop(m, tot);
	print_total(o, &w, &se, tot, &oh); /* also after a failed sample: what was seen */
	jw_release(&w);
	series_free(&se);
	return rc;
}

int watch_run(const struct watch_opts *o, char *err, size_t errlen)
{
	struct watch_state ws = {.started = 0};
	ws.mo = o->mo;
	getrusage(RUSAGE_CHILDREN, &ws.ru0);
	if (o->cmd && start_cmd(o, &ws, err, errlen) < 0)
		return -1;
	if (o->cmd && o->attach_delay_ns)
		clock_sleep_ns(o->attach_delay_ns);
	char merr[256];
	struct monitor *m = monitor_start(&ws.mo, merr, sizeof merr);
	if (!m) {
		if (ws.started)
			spawn_stop(&ws.child, NS_PER_S);
		if (ws.cgpath[0])
			monitor_cgroup_remove(ws.cgpath);
		return errbuf(err, errlen, "%s", merr);
	}
	if (ws.started) {
		int r = spawn_release(&ws.child);
		if (r) {
			spawn_wait(&ws.child, -1);
			monitor_stop(m, NULL);
			if (ws.cgpath[0])
				monitor_cgroup_remove(ws.cgpath);
			return errbuf(err, errlen, "cannot start '%s': %s", o->cmd[0], strerror(-r));
		}
	}
	struct monitor_sample tot;
	int rc = sample_loop(o, &ws, m, &tot, err, errlen);
	if (ws.cgpath[0])
		monitor_cgroup_remove(ws.cgpath);
	if (rc < 0)
		return -1;
	if (ws.started && ws.child.exited) {
		if (WIFEXITED(ws.child.status))
			return WEXITSTATUS(ws.child.status);
		return 128 + (WIFSIGNALED(ws.child.status) ? WTERMSIG(ws.child.status) : 0);
	}
	return 0;
}
