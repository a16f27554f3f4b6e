#include "monitor/monout.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

/* ---- the field table ---------------------------------------------------------------- */

enum fig {
	F_SPAN_S,
	F_CPU_USER_CORES,
	F_CPU_SYS_CORES,
	F_CPU_TOTAL_CORES,
	F_CPU_PEAK_CORES,
	F_CPU_USER_S,
	F_CPU_SYS_S,
	F_CPU_US_PER_REQUEST,
	F_CPU_MS_PER_MB,
	F_CTXSW_VOL_PER_S,
	F_CTXSW_INVOL_PER_S,
	F_CTXSW_PER_S,
	F_CTXSW_PER_REQUEST,
	F_CTXSW_VOL,
	F_CTXSW_INVOL,
	F_MINFLT,
	F_MAJFLT,
	F_RUNQ_WAIT_S,
	F_PROCS,
	F_THREADS,
	F_RSS_BYTES,
	F_PSS_BYTES,
	F_GONE,
	F_LEFT,
	F_N
};

enum kind { K_DOUBLE, K_UINT, K_INT };

struct field {
	const char *watch;   /* key in watch's objects (NULL: not in watch) */
	const char *group;   /* the record's object (NULL: not in the record) */
	const char *rec;     /* key in that object */
	enum kind kind;
};

static const struct field fields[F_N] = {
	[F_SPAN_S] = {"span_s", NULL, NULL, K_DOUBLE},
	[F_CPU_USER_CORES] = {"cpu_user_cores", "server_cpu", "user_cores", K_DOUBLE},
	[F_CPU_SYS_CORES] = {"cpu_sys_cores", "server_cpu", "sys_cores", K_DOUBLE},
	[F_CPU_TOTAL_CORES] = {"cpu_total_cores", "server_cpu", "total_cores", K_DOUBLE},
	[F_CPU_PEAK_CORES] = {NULL, "server_cpu", "peak_cores", K_DOUBLE},
	[F_CPU_USER_S] = {"cpu_user_s", "server_cpu", "user_s", K_DOUBLE},
	[F_CPU_SYS_S] = {"cpu_sys_s", "server_cpu", "sys_s", K_DOUBLE},
	[F_CPU_US_PER_REQUEST] = {NULL, "server_cpu", "us_per_request", K_DOUBLE},
	[F_CPU_MS_PER_MB] = {NULL, "server_cpu", "ms_per_mb", K_DOUBLE},
	[F_CTXSW_VOL_PER_S] = {"ctxsw_vol_per_s", "ctxsw", "voluntary_per_s", K_DOUBLE},
	[F_CTXSW_INVOL_PER_S] = {"ctxsw_invol_per_s", "ctxsw", "involuntary_per_s", K_DOUBLE},
	[F_CTXSW_PER_S] = {NULL, "ctxsw", "per_s", K_DOUBLE},
	[F_CTXSW_PER_REQUEST] = {NULL, "ctxsw", "per_request", K_DOUBLE},
	[F_CTXSW_VOL] = {"ctxsw_vol", "ctxsw", "voluntary", K_UINT},
	[F_CTXSW_INVOL] = {"ctxsw_invol", "ctxsw", "involuntary", K_UINT},
	[F_MINFLT] = {"minflt", NULL, NULL, K_UINT},
	[F_MAJFLT] = {"majflt", NULL, NULL, K_UINT},
	[F_RUNQ_WAIT_S] = {"runq_wait_s", NULL, NULL, K_DOUBLE},
	[F_PROCS] = {"max_procs", "memory", "procs", K_INT},
	[F_THREADS] = {"max_threads", "memory", "threads", K_INT},
	[F_RSS_BYTES] = {"max_rss_bytes", "memory", "rss_bytes", K_UINT},
	[F_PSS_BYTES] = {"max_pss_bytes", "memory", "pss_bytes", K_UINT},
	[F_GONE] = {"gone", NULL, NULL, K_INT},
	[F_LEFT] = {"left", NULL, NULL, K_INT},
};

/* what a figure is computed from */
struct src {
	const struct monitor_sample *s;
	const struct monitor_peak *pk;   /* NULL: none (watch) */
	double rate, bps;
};

/* The value of figure f; 0 when it does not exist here (a per-request figure without a
 * request rate), which the caller leaves out. */
static int value(enum fig f, const struct src *x, double *d)
{
	const struct monitor_sample *s = x->s;
	const struct monitor_peak *pk = x->pk;
	switch (f) {
	case F_SPAN_S: *d = s->interval_s; return 1;
	case F_CPU_USER_CORES: *d = s->cpu_user_cores; return 1;
	case F_CPU_SYS_CORES: *d = s->cpu_sys_cores; return 1;
	case F_CPU_TOTAL_CORES: *d = s->cpu_total_cores; return 1;
	case F_CPU_PEAK_CORES: *d = pk ? pk->cpu_total_cores : s->cpu_total_cores; return 1;
	case F_CPU_USER_S: *d = s->cpu_user_s; return 1;
	case F_CPU_SYS_S: *d = s->cpu_sys_s; return 1;
	case F_CPU_US_PER_REQUEST: *d = s->cpu_total_cores * 1e6 / x->rate; return x->rate > 0;
	case F_CPU_MS_PER_MB: *d = s->cpu_total_cores * 1e3 / (x->bps / 1e6); return x->bps > 0;
	case F_CTXSW_VOL_PER_S: *d = s->ctxsw_vol_per_s; return 1;
	case F_CTXSW_INVOL_PER_S: *d = s->ctxsw_invol_per_s; return 1;
	case F_CTXSW_PER_S: *d = s->ctxsw_vol_per_s + s->ctxsw_invol_per_s; return 1;
	case F_CTXSW_PER_REQUEST:
		*d = (s->ctxsw_vol_per_s + s->ctxsw_invol_per_s) / x->rate;
		return x->rate > 0;
	case F_CTXSW_VOL: *d = (double)s->ctxsw_vol; return 1;
	case F_CTXSW_INVOL: *d = (double)s->ctxsw_invol; return 1;
	case F_MINFLT: *d = (double)s->minflt; return 1;
	case F_MAJFLT: *d = (double)s->majflt; return 1;
	case F_RUNQ_WAIT_S: *d = s->runq_wait_s; return 1;
	/* the record's memory figures are the window's peaks (the total's when no sample) */
	case F_PROCS: *d = pk && pk->procs ? pk->procs : s->procs; return 1;
	case F_THREADS: *d = pk && pk->threads ? pk->threads : s->threads; return 1;
	case F_RSS_BYTES:
		*d = (double)(pk && pk->rss_bytes ? pk->rss_bytes : s->rss_bytes);
		return 1;
	case F_PSS_BYTES:
		*d = (double)(pk && pk->pss_bytes ? pk->pss_bytes : s->pss_bytes);
		return 1;
	case F_GONE: *d = s->gone; return 1;
	case F_LEFT: *d = s->left; return 1;
	case F_N: break;
	}
	return 0;
}

/* exact integers are written from the struct, never through a double */
static uint64_t uvalue(enum fig f, const struct src *x)
{
	const struct monitor_sample *s = x->s;
	const struct monitor_peak *pk = x->pk;
	switch (f) {
	case F_CTXSW_VOL: return s->ctxsw_vol;
	case F_CTXSW_INVOL: return s->ctxsw_invol;
	case F_MINFLT: return s->minflt;
	case F_MAJFLT: return s->majflt;
	case F_RSS_BYTES: return pk && pk->rss_bytes ? pk->rss_bytes : s->rss_bytes;
	case F_PSS_BYTES: return pk && pk->pss_bytes ? pk->pss_bytes : s->pss_bytes;
	default: return 0;
	}
}

static void put(struct jw *w, const char *key, enum fig f, const struct src *x)
{
	double d;
	if (!value(f, x, &d))
		return;
	switch (fields[f].kind) {
	case K_DOUBLE: jw_kdouble(w, key, d); break;
	case K_UINT: jw_kuint(w, key, uvalue(f, x)); break;
	case K_INT: jw_kint(w, key, (long long)d); break;
	}
}

/* the layouts: which figures each output has, in its order */
static const enum fig watch_sample_figs[] = {F_CTXSW_VOL, F_CTXSW_INVOL, F_CPU_USER_S,
					     F_CPU_SYS_S, F_GONE, F_LEFT};
static const enum fig watch_total_figs[] = {
	F_SPAN_S,    F_CPU_USER_S, F_CPU_SYS_S,    F_CPU_TOTAL_CORES, F_CTXSW_VOL, F_CTXSW_INVOL,
	F_MINFLT,    F_MAJFLT,     F_RUNQ_WAIT_S,  F_PROCS,           F_THREADS,   F_RSS_BYTES,
	F_PSS_BYTES, F_GONE,       F_LEFT};
/* grouped by the record's object, in its order */
static const enum fig record_figs[] = {
	F_CPU_USER_CORES,  F_CPU_SYS_CORES,     F_CPU_TOTAL_CORES,    F_CPU_PEAK_CORES,
	F_CPU_USER_S,      F_CPU_SYS_S,         F_CPU_US_PER_REQUEST, F_CPU_MS_PER_MB,
	F_CTXSW_VOL_PER_S, F_CTXSW_INVOL_PER_S, F_CTXSW_PER_S,        F_CTXSW_PER_REQUEST,
	F_CTXSW_VOL,       F_CTXSW_INVOL,       F_RSS_BYTES,          F_PSS_BYTES,
	F_PROCS,           F_THREADS};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

void monout_peak_update(struct monitor_peak *pk, const struct monitor_sample *s)
{
	if (s->cpu_total_cores > pk->cpu_total_cores && s->interval_s >= 0.05)
		pk->cpu_total_cores = s->cpu_total_cores;
	if (s->rss_bytes > pk->rss_bytes)
		pk->rss_bytes = s->rss_bytes;
	if (s->pss_bytes > pk->pss_bytes)
		pk->pss_bytes = s->pss_bytes;
	if (s->procs > pk->procs)
		pk->procs = s->procs;
	if (s->threads > pk->threads)
		pk->threads = s->threads;
}

void monout_sample(struct jw *w, const struct monitor_sample *s, double t_s)
{
	double v[SERIES_NFIG];
	series_row(s, v);
	struct src x = {.s = s};
	jw_obj(w);
	jw_kdouble(w, "t_s", t_s);
	for (int i = 0; i < SERIES_NFIG; i++) {
		jw_key(w, series_names[i]);
		if (isnan(v[i]))
			jw_null(w);
		else
			jw_double(w, v[i]);
	}
	for (size_t i = 0; i < NELEM(watch_sample_figs); i++)
		put(w, fields[watch_sample_figs[i]].watch, watch_sample_figs[i], &x);
	jw_kint(w, "slow_every", s->slow_every);
	jw_kstr(w, "method", monitor_method_name(s->method));
	if (s->ntasks) {
		jw_key(w, "top");
		jw_arr(w);
		for (int i = 0; i < s->ntasks; i++) {
			jw_obj(w);
			jw_kint(w, "pid", s->tasks[i].pid);
			if (s->tasks[i].tid)
				jw_kint(w, "tid", s->tasks[i].tid);
			jw_kstr(w, "comm", s->tasks[i].comm);
			jw_kdouble(w, "cpu_user_cores", s->tasks[i].cpu_user_cores);
			jw_kdouble(w, "cpu_sys_cores", s->tasks[i].cpu_sys_cores);
			jw_kuint(w, "ctxsw_vol", s->tasks[i].ctxsw_vol);
			jw_kuint(w, "ctxsw_invol", s->tasks[i].ctxsw_invol);
			jw_end(w);
		}
		jw_end(w);
	}
	if (s->ncpus) {
		jw_key(w, "per_cpu");
		jw_arr(w);
		for (int i = 0; i < s->ncpus; i++) {
			const struct monitor_syscpu *c = &s->per_cpu[i];
			jw_obj(w);
			jw_kdouble(w, "us", c->us), jw_kdouble(w, "sy", c->sy);
			jw_kdouble(w, "ni", c->ni), jw_kdouble(w, "id", c->id);
			jw_kdouble(w, "wa", c->wa), jw_kdouble(w, "hi", c->hi);
			jw_kdouble(w, "si", c->si), jw_kdouble(w, "st", c->st);
			jw_end(w);
		}
		jw_end(w);
	}
	jw_end(w);
}

static void summary_perf(struct jw *w, const struct monitor_sample *tot)
{
	jw_key(w, "perf");
	jw_obj(w);
	jw_kstr(w, "scope", tot->perf_per_cgroup ? "cgroup" : "tasks");
	if (tot->sw_ok) {
		jw_kuint(w, "task_clock_ns", tot->task_clock_ns);
		jw_kuint(w, "context_switches", tot->perf_ctxsw);
		jw_kuint(w, "cpu_migrations", tot->cpu_migrations);
		jw_kuint(w, "page_faults", tot->page_faults);
	} else {
		jw_kstr(w, "software", tot->sw_reason);
	}
	if (tot->syscalls_ok)
		jw_kuint(w, "syscalls", tot->syscalls);
	else
		jw_kstr(w, "syscalls", tot->syscalls_reason);
	if (tot->hw_ok) {
		jw_kuint(w, "cycles", tot->cycles);
		jw_kuint(w, "instructions", tot->instructions);
		jw_kdouble(w, "ipc", tot->ipc);
		jw_kuint(w, "cache_misses", tot->cache_misses);
		jw_kuint(w, "dtlb_misses", tot->dtlb_misses);
	} else {
		jw_kstr(w, "hardware", tot->na_reason);
	}
	jw_end(w);
}

void monout_summary(struct jw *w, const struct series *se, const struct monitor_sample *tot,
		    const struct monout_overhead *oh)
{
	jw_obj(w);
	jw_key(w, "summary");
	jw_obj(w);
	jw_kuint(w, "samples", se->n);
	jw_kstr(w, "method", monitor_method_name(tot->method));
	jw_kstr(w, "method_reason", tot->method_reason);
	jw_kstr(w, "source", tot->source);
	jw_kuint(w, "taskstats_batched", tot->ts_batched);
	jw_kuint(w, "taskstats_single", tot->ts_single);
	jw_kuint(w, "children_reads_skipped", tot->kids_skipped);
	jw_key(w, "monitor_overhead");
	if (oh->ok) {
		jw_obj(w);
		jw_kdouble(w, "cpu_s", oh->cpu_s);
		jw_kdouble(w, "span_s", oh->span_s);
		jw_kdouble(w, "pct_of_core", oh->span_s > 0 ? 100 * oh->cpu_s / oh->span_s : 0);
		jw_end(w);
	} else {
		jw_null(w);
	}
	for (int i = 0; i < SERIES_NFIG; i++) {
		struct series_stats st;
		series_stats(se, i, &st);
		jw_key(w, series_names[i]);
		if (!st.count) {
			jw_null(w);
			continue;
		}
		jw_obj(w);
		jw_kdouble(w, "mean", st.mean), jw_kdouble(w, "stddev", st.stddev);
		jw_kdouble(w, "cv", st.cv), jw_kdouble(w, "min", st.min);
		jw_kdouble(w, "max", st.max), jw_kdouble(w, "p95", st.p95);
		jw_end(w);
	}
	jw_end(w);
	jw_key(w, "total");
	jw_obj(w);
	struct src x = {.s = tot};
	for (size_t i = 0; i < NELEM(watch_total_figs); i++)
		put(w, fields[watch_total_figs[i]].watch, watch_total_figs[i], &x);
	summary_perf(w, tot);
	jw_end(w);
	jw_end(w);
}

static void record_group(struct jw *w, const char *group, const struct src *x)
{
	jw_key(w, group);
	jw_obj(w);
	for (size_t i = 0; i < NELEM(record_figs); i++)
		if (!strcmp(fields[record_figs[i]].group, group))
			put(w, fields[record_figs[i]].rec, record_figs[i], x);
	jw_end(w);
}

void monout_record(struct jw *w, const struct monitor_sample *tot, const struct monitor_peak *pk,
		   double rate_per_s, double bytes_per_s)
{
	struct src x = {.s = tot, .pk = pk, .rate = rate_per_s, .bps = bytes_per_s};
	record_group(w, "server_cpu", &x);
	record_group(w, "ctxsw", &x);
	record_group(w, "memory", &x);
}

void monout_keys(void (*fn)(const char *key, void *arg), void *arg)
{
	for (int i = 0; i < F_N; i++) {
		if (fields[i].watch)
			fn(fields[i].watch, arg);
		if (fields[i].group) {
			fn(fields[i].group, arg);
			fn(fields[i].rec, arg);
		}
	}
	for (int i = 0; i < SERIES_NFIG; i++)
		fn(series_names[i], arg);
}
