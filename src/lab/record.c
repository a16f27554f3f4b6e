#include "lab/record.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/stats.h"

const struct record_metric_info record_metrics[RECORD_NMETRICS] = {
	[RECORD_M_CPU_CORES] = {"cpu_cores", "server_cpu.total_cores", "server CPU", "cores"},
	[RECORD_M_CPU_USER_CORES] = {"cpu_user_cores", "server_cpu.user_cores", "server user CPU", "cores"},
	[RECORD_M_CPU_SYS_CORES] = {"cpu_sys_cores", "server_cpu.sys_cores", "server system CPU", "cores"},
	[RECORD_M_CPU_PEAK_CORES] = {"cpu_peak_cores", "server_cpu.peak_cores", "server CPU peak", "cores"},
	[RECORD_M_CPU_US_PER_REQUEST] = {"cpu_us_per_request", "server_cpu.us_per_request",
					 "server CPU per request", "us"},
	[RECORD_M_CPU_MS_PER_MB] = {"cpu_ms_per_mb", "server_cpu.ms_per_mb", "server CPU per MB", "ms"},
	[RECORD_M_CTXSW_PER_S] = {"ctxsw_per_s", "ctxsw.per_s", "context switches", "/s"},
	[RECORD_M_CTXSW_PER_REQUEST] = {"ctxsw_per_request", "ctxsw.per_request",
					"context switches per request", ""},
	[RECORD_M_REQUESTS_PER_S] = {"requests_per_s", "throughput.requests_per_s", "throughput", "req/s"},
	[RECORD_M_BYTES_PER_S] = {"bytes_per_s", "throughput.bytes_per_s", "bytes moved", "B/s"},
	[RECORD_M_P50_US] = {"p50_us", "latency_us.p50", "p50 latency", "us"},
	[RECORD_M_P99_US] = {"p99_us", "latency_us.p99", "p99 latency", "us"},
	[RECORD_M_P99_9_US] = {"p99_9_us", "latency_us.p99_9", "p99.9 latency", "us"},
	[RECORD_M_P99_UNCORRECTED_US] = {"p99_uncorrected_us", "latency_uncorrected_us.p99",
					 "p99 latency (uncorrected)", "us"},
	[RECORD_M_RSS_BYTES] = {"rss_bytes", "memory.rss_bytes", "server RSS", "B"},
	[RECORD_M_PSS_BYTES] = {"pss_bytes", "memory.pss_bytes", "server PSS", "B"},
	[RECORD_M_ERRORS] = {"errors", "errors.total", "errors", ""},
	[RECORD_M_PP_NS_PER_RT] = {"pp_ns_per_round_trip", "pingpong.ns_per_round_trip.mean",
				   "time per round trip", "ns"},
	[RECORD_M_PP_VCSW_PER_RT] = {"pp_vcsw_per_round_trip", "pingpong.ctxsw_vol_per_round_trip",
				     "voluntary switches per round trip", ""},
	[RECORD_M_PP_IVCSW_PER_RT] = {"pp_ivcsw_per_round_trip",
				      "pingpong.ctxsw_invol_per_round_trip",
				      "involuntary switches per round trip", ""},
	[RECORD_M_PP_USER_NS_PER_RT] = {"pp_user_ns_per_round_trip",
					"pingpong.user_ns_per_round_trip",
					"user CPU per round trip", "ns"},
	[RECORD_M_PP_SYS_NS_PER_RT] = {"pp_sys_ns_per_round_trip", "pingpong.sys_ns_per_round_trip",
				       "system CPU per round trip", "ns"},
	[RECORD_M_PP_CPU_NS_PER_RT] = {"pp_cpu_ns_per_round_trip", "pingpong.cpu_ns_per_round_trip",
				       "CPU per round trip", "ns"},
	[RECORD_M_FRONT_US_PER_REQUEST] = {"front_us_per_request", "front_cpu.us_per_request",
					   "front process CPU per request", "us"},
	[RECORD_M_FRONT_SYS_CORES] = {"front_sys_cores", "front_cpu.sys_cores",
				      "front process system CPU", "cores"},
	[RECORD_M_SYSCALLS_PER_REQUEST] = {"syscalls_per_request", "syscalls.total_per_request",
					   "system calls per request", ""},
	[RECORD_M_ALLOC_CALLS_PER_REQUEST] = {"alloc_calls_per_request", "alloc.calls_per_request",
					      "allocations per request", ""},
	[RECORD_M_ALLOC_BYTES_PER_REQUEST] = {"alloc_bytes_per_request", "alloc.bytes_per_request",
					      "bytes allocated per request", "B"},
};

static void copy_obj(struct jw *w, const char *key, const json_t *v);

int record_pp_inprocess(const char *mode)
{
	return mode && (!strcmp(mode, "unix-inline") || !strcmp(mode, "coro") ||
			!strcmp(mode, "coro-unix"));
}

const char *record_pp_switch_check(const char *mode, double vol, double invol)
{
	if (!record_pp_inprocess(mode))
		return NULL;
	if (vol >= RECORD_PP_SWITCH_MAX)
		return "blocked";
	return vol + invol >= RECORD_PP_SWITCH_MAX ? "preempted" : "ok";
}

int record_syscpu_interference(const struct record_syscpu *g, char *why, size_t len)
{
	if (g->ncpus > 0 && g->other_cores > RECORD_OTHER_CPU_MAX * g->ncpus) {
		snprintf(why, len, "something else ran on the server's CPUs (%s): %.2f cores busy "
			 "beyond the server's tree (%.0f%% of them; allowed %.0f%%): its figures are "
			 "disturbed, rerun it on a quiet machine", g->cpus ? g->cpus : "?",
			 g->other_cores, 100.0 * g->other_cores / g->ncpus,
			 100.0 * RECORD_OTHER_CPU_MAX);
		return 1;
	}
	if (g->steal > RECORD_STEAL_MAX_PCT) {
		snprintf(why, len, "the hypervisor took %.1f%% of the server's CPUs (%s) as steal "
			 "(allowed %.0f%%): its figures are disturbed", g->steal,
			 g->cpus ? g->cpus : "?", RECORD_STEAL_MAX_PCT);
		return 1;
	}
	if (len)
		why[0] = 0;
	return 0;
}

static void write_syscpu_group(struct jw *w, const char *key, const struct record_syscpu *g,
			       int server)
{
	jw_key(w, key);
	jw_obj(w);
	jw_kstr(w, "cpus", g->cpus ? g->cpus : "");
	jw_kint(w, "ncpus", g->ncpus);
	jw_kdouble(w, "user", g->user);
	jw_kdouble(w, "system", g->system);
	jw_kdouble(w, "softirq", g->softirq);
	jw_kdouble(w, "steal", g->steal);
	jw_kdouble(w, "idle", g->idle);
	jw_kdouble(w, "iowait", g->iowait);
	jw_kdouble(w, "busy_cores", g->busy_cores);
	if (server)
		jw_kdouble(w, "other_cores", g->other_cores);
	jw_end(w);
}

/* "system_cpu" (and the pingpong objects of kind = pingpong) */
static void write_issue11(struct jw *w, const struct record *r)
{
	if (r->kind)
		jw_kstr(w, "kind", r->kind);
	if (r->timeline)
		jw_kstr(w, "timeline", r->timeline);
	if (r->pingpong) {
		copy_obj(w, "pingpong", r->pingpong);
		if (r->switch_check)
			jw_kstr(w, "switch_check", r->switch_check);
	}
	if (!r->have_syscpu) {
		if (r->syscpu_reason) {
			jw_key(w, "system_cpu");
			jw_obj(w);
			jw_kstr(w, "unavailable", r->syscpu_reason);
			jw_end(w);
		}
		return;
	}
	jw_key(w, "system_cpu");
	jw_obj(w);
	write_syscpu_group(w, "server", &r->sys_server, 1);
	if (r->sys_load.ncpus > 0)
		write_syscpu_group(w, "load", &r->sys_load, 0);
	jw_kbool(w, "interference", r->interference);
	jw_end(w);
}

/* ---- writing ---- */

static double jnum(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_number(v) ? json_number_value(v) : 0;
}

static void copy_obj(struct jw *w, const char *key, const json_t *v)
{
	if (!v)
		return;
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!s) {
		w->oom = 1;
		return;
	}
	jw_key(w, key);
	jw_raw(w, s);
	free(s);
}

void record_load_figs(const json_t *L, struct record_load_figs *f)
{
	memset(f, 0, sizeof *f);
	if (!L)
		return;
	f->duration_s = jnum(L, "duration_s");
	f->requests = jnum(L, "requests");
	if (f->requests <= 0)
		f->requests = jnum(L, "messages_sent");
	f->bytes = jnum(L, "bytes_sent") + jnum(L, "bytes_received");
	f->requests_per_s = f->duration_s > 0 ? f->requests / f->duration_s : 0;
	f->bytes_per_s = f->duration_s > 0 ? f->bytes / f->duration_s : 0;
}

static void write_head(struct jw *w, const struct record *r)
{
	jw_kstr(w, "schema", RECORD_SCHEMA);
	jw_kint(w, "trial", r->trial);
	jw_kint(w, "of", r->of);
	jw_kint(w, "repeat", r->repeat);
	jw_kstr(w, "cell", r->cell);
	jw_kint(w, "cell_index", r->cell_index);
	jw_key(w, "params");
	jw_obj(w);
	for (int i = 0; i < r->nparams; i++)
		jw_kstr(w, r->params[i].key, r->params[i].value);
	jw_end(w);
	jw_kstr(w, "status", r->ok ? "ok" : "failed");
	if (r->ok) {
		jw_key(w, "reason");
		jw_null(w);
	} else {
		jw_kstr(w, "reason", r->reason);
	}
	jw_kbool(w, "profiled", r->profiled);
	if (r->profiled) {
		char flame[300];
		snprintf(flame, sizeof flame, "%s/flame.svg", r->flame_dir);
		jw_kstr(w, "flame", flame);
	}
	jw_kuint(w, "start_wall_ns", r->start_wall_ns);
	jw_kdouble(w, "warmup_s", r->warmup_s);
	jw_kdouble(w, "duration_s", r->duration_s);
	jw_key(w, "hosts");
	jw_obj(w);
	jw_kstr(w, "server", r->server_host);
	jw_kstr(w, "load", r->load_host);
	jw_kstr(w, "server_address", r->server_address);
	jw_end(w);
	jw_key(w, "placement");
	jw_obj(w);
	jw_kstr(w, "server_cpus", r->server_cpus);
	jw_kint(w, "server_ncpus", r->server_ncpus);
	jw_kstr(w, "load_cpus", r->load_cpus);
	jw_kint(w, "load_ncpus", r->load_ncpus);
	jw_kbool(w, "shared", r->shared);
	jw_end(w);
}

static void write_load(struct jw *w, const json_t *L, const struct record_load_figs *f)
{
	jw_key(w, "throughput");
	jw_obj(w);
	jw_kdouble(w, "requests", f->requests);
	jw_kdouble(w, "requests_per_s", f->requests_per_s);
	jw_kdouble(w, "bytes_per_s", f->bytes_per_s);
	jw_end(w);
	/* latency exists only where responses were timed (not for sink) */
	const json_t *lat = json_object_get(L, "latency_us");
	if (lat && jnum(lat, "count") > 0) {
		copy_obj(w, "latency_us", lat);
		copy_obj(w, "latency_uncorrected_us", json_object_get(L, "latency_uncorrected_us"));
	}
	copy_obj(w, "errors", json_object_get(L, "errors"));
	copy_obj(w, "client_cpu", json_object_get(L, "client_cpu"));
	copy_obj(w, "load_hosts", json_object_get(L, "load_hosts"));
	jw_key(w, "load");
	jw_obj(w);
	copy_obj(w, "config", json_object_get(L, "config"));
	copy_obj(w, "target_rate_per_s", json_object_get(L, "target_rate_per_s"));
	copy_obj(w, "late_sends", json_object_get(L, "late_sends"));
	copy_obj(w, "duration_s", json_object_get(L, "duration_s"));
	jw_end(w);
}

/* chat (a fan-out protocol): the load's chat counts, deliveries per second and the server's CPU
 * per delivered line (= us_per_request: a chat trial's requests are its deliveries) */
static void write_chat(struct jw *w, const struct record *r, const struct record_load_figs *f)
{
	const json_t *c = json_object_get(r->load, "chat");
	if (!json_is_object(c))
		return;
	double delivered = jnum(c, "delivered");
	double per_s = f->duration_s > 0 ? delivered / f->duration_s : 0;
	jw_key(w, "chat");
	jw_obj(w);
	jw_kdouble(w, "sent", jnum(c, "sent"));
	jw_kdouble(w, "delivered", delivered);
	jw_kdouble(w, "expected", jnum(c, "expected"));
	jw_kdouble(w, "loss", jnum(c, "loss"));
	jw_kdouble(w, "deliveries_per_s", per_s);
	if (r->have_mon && r->total && per_s > 0)
		jw_kdouble(w, "server_us_per_delivery", r->total->cpu_total_cores * 1e6 / per_s);
	jw_end(w);
}

/* "syscalls": per request by name (largest first, then "other"), or why unavailable */
static void write_syscalls(struct jw *w, const struct record_syscalls *sc, double requests_per_s)
{
	double window_s = sc->window_s;
	jw_key(w, "syscalls");
	jw_obj(w);
	if (!sc->ok || sc->n < 1 || window_s <= 0) {
		jw_kstr(w, "unavailable", sc->reason && sc->reason[0] ? sc->reason : "not measured");
		jw_end(w);
		return;
	}
	double per = requests_per_s > 0 ? 1.0 / (requests_per_s * window_s) : 0;
	uint64_t named = 0;
	int order[64], n = 0;
	for (int i = 1; i < sc->n && n < 64; i++)
		if (sc->count[i]) {
			named += sc->count[i];
			int j = n++;
			while (j > 0 && sc->count[order[j - 1]] < sc->count[i]) {
				order[j] = order[j - 1];
				j--;
			}
			order[j] = i;
		}
	uint64_t other = sc->count[0] > named ? sc->count[0] - named : 0;
	jw_kdouble(w, "total_per_s", (double)sc->count[0] / window_s);
	if (per > 0) {
		jw_kdouble(w, "total_per_request", (double)sc->count[0] * per);
		jw_key(w, "per_request");
		jw_obj(w);
		for (int k = 0; k < n; k++)
			jw_kdouble(w, sc->name[order[k]], (double)sc->count[order[k]] * per);
		jw_kdouble(w, "other", (double)other * per);
		jw_end(w);
	}
	jw_key(w, "counts");
	jw_obj(w);
	for (int k = 0; k < n; k++)
		jw_kuint(w, sc->name[order[k]], sc->count[order[k]]);
	jw_kuint(w, "other", other);
	jw_kuint(w, "total", sc->count[0]);
	jw_end(w);
	jw_end(w);
}

/* "front_cpu" (the server's root process alone) and "workers_cpu" (the rest of its tree) */
static void write_front(struct jw *w, const struct record_front *f, const struct monitor_sample *t,
			double requests_per_s)
{
	double window_s = f->window_s;
	if (!f->ok || window_s <= 0 || f->at1.ut < f->at0.ut || f->at1.st < f->at0.st)
		return;
	long tck = sysconf(_SC_CLK_TCK);
	double hz = tck > 0 ? (double)tck : 100.0;
	double u = (double)(f->at1.ut - f->at0.ut) / hz / window_s;
	double s = (double)(f->at1.st - f->at0.st) / hz / window_s;
	double wu = t->cpu_user_cores - u, ws = t->cpu_sys_cores - s;
	jw_key(w, "front_cpu");
	jw_obj(w);
	jw_kdouble(w, "user_cores", u);
	jw_kdouble(w, "sys_cores", s);
	jw_kdouble(w, "total_cores", u + s);
	if (requests_per_s > 0)
		jw_kdouble(w, "us_per_request", (u + s) * 1e6 / requests_per_s);
	jw_end(w);
	jw_key(w, "workers_cpu");
	jw_obj(w);
	jw_kdouble(w, "user_cores", wu > 0 ? wu : 0);
	jw_kdouble(w, "sys_cores", ws > 0 ? ws : 0);
	jw_kdouble(w, "total_cores", (wu > 0 ? wu : 0) + (ws > 0 ? ws : 0));
	if (requests_per_s > 0)
		jw_kdouble(w, "us_per_request",
			   ((wu > 0 ? wu : 0) + (ws > 0 ? ws : 0)) * 1e6 / requests_per_s);
	jw_end(w);
}

/* "alloc" ([experiment] alloc): the server's allocation calls and bytes requested per request
 * over the window, or why there are none */
static void write_alloc(struct jw *w, const struct record *r, const struct record_load_figs *f)
{
	if (!r->alloc_mode)
		return;
	jw_key(w, "alloc");
	jw_obj(w);
	jw_kstr(w, "mode", r->alloc_mode);
	if (r->alloc_reason) {
		jw_kstr(w, "unavailable", r->alloc_reason);
	} else {
		jw_kdouble(w, "calls_per_s", r->alloc_calls_per_s);
		jw_kdouble(w, "bytes_per_s", r->alloc_bytes_per_s);
		if (r->alloc_note)
			jw_kstr(w, "note", r->alloc_note);
		else
			jw_kdouble(w, "frees_per_s", r->alloc_frees_per_s);
		if (f->requests_per_s > 0) {
			jw_kdouble(w, "calls_per_request", r->alloc_calls_per_s / f->requests_per_s);
			jw_kdouble(w, "bytes_per_request", r->alloc_bytes_per_s / f->requests_per_s);
		}
	}
	jw_end(w);
}

/* "timing": the trial's phases in seconds, their sum, and the part that is not the warm-up
 * and the window (docs/metrics.md, "timing") */
static void write_timing(struct jw *w, const struct record_timing *tm)
{
	static const char *const names[RECORD_PH_N] = {
		"setup_s", "server_s", "counters_s", "load_s", "connect_s", "warmup_s",
		"window_s", "collect_s", "profile_s", "stop_s"};
	if (!tm || !tm->ok)
		return;
	double total = 0, measured = 0;
	jw_key(w, "timing");
	jw_obj(w);
	for (int i = 0; i < RECORD_PH_N; i++) {
		if (tm->phase_s[i] < 0)
			continue;
		jw_kdouble(w, names[i], tm->phase_s[i]);
		total += tm->phase_s[i];
		if (i == RECORD_PH_WARMUP || i == RECORD_PH_WINDOW)
			measured += tm->phase_s[i];
	}
	if (tm->profile_after_s >= 0)
		jw_kdouble(w, "profile_after_window_s", tm->profile_after_s);
	if (tm->counters_held >= 0)
		jw_kbool(w, "counters_held", tm->counters_held);
	if (tm->symcache_hits >= 0) {
		jw_kint(w, "symcache_hits", tm->symcache_hits);
		jw_kint(w, "symcache_misses", tm->symcache_misses);
	}
	jw_kdouble(w, "total_s", total);
	jw_kdouble(w, "overhead_s", total - measured);
	jw_end(w);
}

void record_write(struct jw *w, const struct record *r)
{
	struct record_load_figs f;
	record_load_figs(r->load, &f);
	jw_obj(w);
	write_head(w, r);
	jw_kstr(w, "accounting", r->have_mon ? r->accounting : "none");
	if (r->have_mon) {
		jw_kstr(w, "accounting_reason", r->accounting_reason);
		jw_kdouble(w, "window_s", r->window_s);
		monout_record(w, r->total, r->peak, f.requests_per_s, f.bytes_per_s);
		if (r->front)
			write_front(w, r->front, r->total, f.requests_per_s);
		if (r->syscalls)
			write_syscalls(w, r->syscalls, f.requests_per_s);
	} else if (r->syscalls) {
		jw_key(w, "syscalls");
		jw_obj(w);
		jw_kstr(w, "unavailable", "the server was not monitored (it runs on another host, or "
					  "the trial failed before its window)");
		jw_end(w);
	}
	if (r->load) {
		write_load(w, r->load, &f);
		write_chat(w, r, &f);
	}
	write_issue11(w, r);
	write_alloc(w, r, &f);
	write_timing(w, r->timing);
	jw_key(w, "warnings");
	jw_arr(w);
	for (int i = 0; i < r->nwarn; i++)
		jw_str(w, r->warnings[i]);
	jw_end(w);
	jw_end(w);
}

/* ---- reading ---- */

json_t *record_path(const json_t *obj, const char *path)
{
	char part[64];
	const char *p = path;
	json_t *cur = (json_t *)obj;
	while (cur && *p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		if (n >= sizeof part || !json_is_object(cur))
			return NULL;
		memcpy(part, p, n);
		part[n] = 0;
		cur = json_object_get(cur, part);
		p += n + (dot ? 1 : 0);
	}
	return cur;
}

int record_metric(const struct record *r, int metric, double *v)
{
	if (metric < 0 || metric >= RECORD_NMETRICS || !r->json)
		return 0;
	json_t *j = record_path(r->json, record_metrics[metric].path);
	if (!j || !json_is_number(j))
		return 0;
	*v = json_number_value(j);
	return isfinite(*v);
}

int record_saturated(const struct record *r)
{
	double cores;
	json_t *n = r->json ? record_path(r->json, "placement.server_ncpus") : NULL;
	if (!r->ok || !n || !json_is_integer(n) || json_integer_value(n) <= 0 ||
	    !record_metric(r, RECORD_M_CPU_CORES, &cores))
		return 0;
	return cores >= RECORD_SATURATED * (double)json_integer_value(n);
}

int record_decisive_metric(int nsaturated, int nok)
{
	return nok > 0 && 2 * nsaturated > nok ? RECORD_M_REQUESTS_PER_S
					       : RECORD_M_CPU_US_PER_REQUEST;
}

int record_precision(const double *v, int n, double *rel)
{
	struct stats_median_ci ci;
	*rel = INFINITY;
	if (n <= 0 || stats_median_ci(v, (size_t)n, 0.95, &ci) < 0)
		return 0;
	if (ci.median != 0)
		*rel = (ci.hi - ci.lo) / 2 / fabs(ci.median);
	return ci.reached && isfinite(*rel);
}

/* "MAJOR.MINOR" (MINOR optional); -EINVAL when it is not that */
static int parse_version(const char *s, int *major, int *minor)
{
	char *end;
	long ma = strtol(s, &end, 10), mi = 0;
	if (end == s || ma < 0 || ma > 1000000)
		return -EINVAL;
	if (*end == '.') {
		const char *p = end + 1;
		mi = strtol(p, &end, 10);
		if (end == p || mi < 0 || mi > 1000000)
			return -EINVAL;
	}
	if (*end)
		return -EINVAL;
	*major = (int)ma;
	*minor = (int)mi;
	return 0;
}

static const char *jstr(const json_t *o, const char *path)
{
	return json_string_value(record_path(o, path));
}

static int jint(const json_t *o, const char *key, int dflt)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? (int)json_integer_value(v) : dflt;
}

static int read_params(struct record *r, const json_t *params)
{
	size_t n = json_object_size(params);
	r->params = calloc(n + 1, sizeof *r->params);
	if (!r->params)
		return -ENOMEM;
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)params, k, v)
	{
		r->params[r->nparams].key = k;
		r->params[r->nparams].value = json_string_value(v); /* NULL: not a string */
		r->nparams++;
	}
	return 0;
}

int record_parse(const char *line, size_t len, struct record *r, char *err, size_t errlen)
{
	memset(r, 0, sizeof *r);
	r->repeat = -1;
	json_error_t je;
	json_t *j = json_loadb(line, len, 0, &je);
	if (!j || !json_is_object(j)) {
		json_decref(j);
		snprintf(err, errlen, "not a JSON object%s%s", j ? "" : ": ", j ? "" : je.text);
		return -EINVAL;
	}
	r->json = j;
	r->schema_major = 1;
	json_t *sv = json_object_get(j, "schema");
	if (sv && (!json_is_string(sv) ||
		   parse_version(json_string_value(sv), &r->schema_major, &r->schema_minor) < 0)) {
		snprintf(err, errlen, "its \"schema\" is not a version MAJOR.MINOR");
		return -EINVAL;
	}
	if (r->schema_major > RECORD_SCHEMA_MAJOR) {
		snprintf(err, errlen, "the record has schema %d.%d, newer than this ctxlab reads "
			 "(%d.x): read it with a newer ctxlab", r->schema_major, r->schema_minor,
			 RECORD_SCHEMA_MAJOR);
		return -EPROTONOSUPPORT;
	}
	r->trial = jint(j, "trial", -1);
	r->of = jint(j, "of", 0);
	r->repeat = jint(j, "repeat", -1);
	r->cell = jstr(j, "cell");
	r->cell_index = jint(j, "cell_index", -1);
	if (read_params(r, json_object_get(j, "params")) < 0) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	const char *st = jstr(j, "status");
	r->ok = st && !strcmp(st, "ok");
	r->reason = jstr(j, "reason");
	r->profiled = json_is_true(json_object_get(j, "profiled"));
	r->flame_dir = jstr(j, "flame");
	r->server_host = jstr(j, "hosts.server");
	r->load_host = jstr(j, "hosts.load");
	r->server_address = jstr(j, "hosts.server_address");
	r->server_cpus = jstr(j, "placement.server_cpus");
	r->load_cpus = jstr(j, "placement.load_cpus");
	r->server_ncpus = jint(json_object_get(j, "placement"), "server_ncpus", 0);
	r->load_ncpus = jint(json_object_get(j, "placement"), "load_ncpus", 0);
	r->accounting = jstr(j, "accounting");
	r->accounting_reason = jstr(j, "accounting_reason");
	r->have_mon = json_object_get(j, "server_cpu") != NULL;
	return 0;
}

void record_release(struct record *r)
{
	free(r->params);
	json_decref(r->json);
	memset(r, 0, sizeof *r);
}
