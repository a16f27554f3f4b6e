#include "lab/multihost.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hist.h"
#include "core/json.h"
#include "core/log.h"
#include "lab/launch.h"
#include "load/loadout.h"

uint64_t multihost_share(uint64_t total, int n, int i)
{
	if (n <= 0)
		return 0;
	return total / (uint64_t)n + ((uint64_t)i < total % (uint64_t)n ? 1 : 0);
}

/* one line per figure, each prefixed, so that an empty answer cannot shift the others */
static const char probe_script[] =
	"echo \"kernel:$(uname -r)\"; echo \"cores:$(getconf _NPROCESSORS_ONLN)\"; "
	"echo \"model:$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)\"; "
	"v=$(\"$1\" --version 2>&1 | head -n1); echo \"rc:$?\"; "
	"command -v \"$1\" >/dev/null 2>&1 || echo \"missing:1\"; echo \"version:$v\"";

static void field(const char *out, const char *key, char *dst, size_t len)
{
	dst[0] = 0;
	size_t kl = strlen(key);
	for (const char *p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, key, kl) && p[kl] == ':') {
			const char *v = p + kl + 1, *e = strchr(v, '\n');
			size_t n = e ? (size_t)(e - v) : strlen(v);
			if (n >= len)
				n = len - 1;
			memcpy(dst, v, n);
			dst[n] = 0;
			return;
		}
}

int multihost_probe(const struct host *h, const char *spec, const char *bin,
		    const char *local_version, uint64_t timeout_ns, struct multihost_info *out)
{
	memset(out, 0, sizeof *out);
	snprintf(out->host, sizeof out->host, "%s", spec);
	const char *argv[] = {"sh", "-c", probe_script, "sh", bin, NULL};
	char buf[2048], tmp[64];
	if (launch_capture(h, argv, NULL, 0, buf, sizeof buf, timeout_ns) < 0 || !strstr(buf, "kernel:")) {
		char why[512] = "";
		if (h->kind == HOST_SSH)
			launch_capture(h, argv, NULL, 1, why, sizeof why, timeout_ns);
		for (char *p = why; *p; p++)
			if (*p == '\n' || *p == '\r')
				*p = ' ';
		snprintf(out->error, sizeof out->error, "host '%s' cannot be reached%s%s", spec,
			 why[0] ? ": " : "", why[0] ? why : "");
		return -1;
	}
	field(buf, "kernel", out->kernel, sizeof out->kernel);
	field(buf, "model", out->cpu_model, sizeof out->cpu_model);
	field(buf, "version", out->version, sizeof out->version);
	field(buf, "cores", tmp, sizeof tmp);
	out->cores = atoi(tmp);
	field(buf, "missing", tmp, sizeof tmp);
	if (tmp[0] || strncmp(out->version, "ctxlab version ", 15)) {
		snprintf(out->error, sizeof out->error, "host '%s' has no ctxlab at '%s'%s%.120s%s "
			 "(install this build there, or give 'ctxlab run --remote-bin PATH')", spec,
			 bin, out->version[0] ? " ('" : "", out->version, out->version[0] ? "')" : "");
		out->version[0] = 0;
		return -1;
	}
	if (strcmp(out->version, local_version)) {
		snprintf(out->error, sizeof out->error, "host '%s' runs '%s' at '%s', this is '%s' "
			 "(install this build there, or give 'ctxlab run --remote-bin PATH')", spec,
			 out->version, bin, local_version);
		return -1;
	}
	return 0;
}

/* ---- merging ---- */

static double num(const json_t *o, const char *k)
{
	return json_number_value(json_object_get(o, k));
}

/* dst.k += src.k for every number of src (recursively in objects); absent keys are added */
static int sum_into(json_t *dst, const json_t *src)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)src, k, v) {
		json_t *d = json_object_get(dst, k);
		if (json_is_object(v)) {
			if (!d) {
				d = json_object();
				if (!d || json_object_set_new(dst, k, d) < 0)
					return -1;
			}
			if (json_is_object(d) && sum_into(d, v) < 0)
				return -1;
		} else if (json_is_integer(v) && (!d || json_is_integer(d))) {
			json_int_t a = d ? json_integer_value(d) : 0;
			if (json_object_set_new(dst, k, json_integer(a + json_integer_value(v))) < 0)
				return -1;
		} else if (json_is_number(v) && (!d || json_is_number(d))) {
			double a = d ? json_number_value(d) : 0;
			if (json_object_set_new(dst, k, json_real(a + json_number_value(v))) < 0)
				return -1;
		}
	}
	return 0;
}

static json_t *lat_json(const char *key, const struct hist *h)
{
	struct jw w;
	jw_init(&w);
	jw_obj(&w);
	loadout_lat_obj(&w, key, h);
	jw_end(&w);
	json_t *doc = w.oom ? NULL : json_read_str(w.buf, NULL, 0);
	jw_release(&w);
	json_t *v = doc ? json_incref(json_object_get(doc, key)) : NULL;
	json_decref(doc);
	return v;
}

static int set(json_t *o, const char *k, json_t *v)
{
	return v ? json_object_set_new(o, k, v) : -1;
}

json_t *multihost_merge(json_t *const *docs, const char *const *names, const double *rates,
			int n, char *err, size_t errlen)
{
	static const char *const summed[] = {
		"requests", "answered", "messages_sent", "unfinished", "bytes_sent",
		"bytes_received", "late_sends", "unsent", "connections_opened", "target_rate_per_s",
		"rate_per_s", "sent_rate_per_s", "throughput_bytes_per_s"};
	static const char *const hkeys[][2] = {{"latency_hist", "latency_us"},
					       {"latency_uncorrected_hist", "latency_uncorrected_us"}};
	struct hist *hs[2] = {hist_new(), hist_new()};
	json_t *m = NULL, *hosts = json_array(), *errs = json_object(), *st = json_object(),
	       *cc = json_object(), *chat = NULL, *cfg = NULL;
	double dur = 0, user = 0, sys = 0, crate = 0;
	json_int_t conns = 0, threads = 0;
	int interrupted = 0, exhausted = 0;
	if (!hs[0] || !hs[1] || !hosts || !errs || !st || !cc || n <= 0) {
		errbuf(err, errlen, "out of memory");
		goto fail;
	}
	m = json_object();
	if (!m)
		goto oom;
	for (int i = 0; i < n; i++) {
		const json_t *d = docs[i];
		for (int j = 0; j < 2; j++) {
			const char *t = json_string_value(json_object_get(d, hkeys[j][0]));
			if (!t || hist_merge_encoded(hs[j], t) < 0) {
				errbuf(err, errlen, "the load generator on '%s' wrote no valid '%s'",
				       names[i], hkeys[j][0]);
				goto fail;
			}
		}
		for (size_t k = 0; k < sizeof summed / sizeof summed[0]; k++) {
			json_t *v = json_object_get(d, summed[k]);
			json_t *a = json_object_get(m, summed[k]);
			if (json_is_integer(v) && (!a || json_is_integer(a)))
				set(m, summed[k], json_integer((a ? json_integer_value(a) : 0) +
							       json_integer_value(v)));
			else if (json_is_number(v))
				set(m, summed[k], json_real((a ? json_number_value(a) : 0) +
							    json_number_value(v)));
		}
		if (sum_into(errs, json_object_get(d, "errors")) < 0 ||
		    sum_into(st, json_object_get(d, "status")) < 0)
			goto oom;
		if (json_object_get(d, "chat")) {
			if (!chat && !(chat = json_object()))
				goto oom;
			if (sum_into(chat, json_object_get(d, "chat")) < 0)
				goto oom;
		}
		const json_t *c = json_object_get(d, "client_cpu");
		double u = num(c, "user_s"), s = num(c, "sys_s");
		user += u, sys += s;
		dur += num(d, "duration_s");
		const json_t *dc = json_object_get(d, "config");
		conns += json_integer_value(json_object_get(dc, "connections"));
		threads += json_integer_value(json_object_get(dc, "threads"));
		crate += num(dc, "rate");
		if (!cfg && !(cfg = json_deep_copy(dc)))
			goto oom;
		interrupted |= json_is_true(json_object_get(d, "interrupted"));
		exhausted |= json_is_true(json_object_get(d, "ports_exhausted"));
		json_t *o = json_object();
		if (!o || json_array_append_new(hosts, o) < 0 ||
		    set(o, "host", json_string(names[i])) < 0 ||
		    set(o, "requests", json_integer(json_integer_value(json_object_get(d, "requests")))) < 0 ||
		    set(o, "requests_per_s", json_real(num(d, "rate_per_s"))) < 0 ||
		    set(o, "messages_sent", json_integer(json_integer_value(json_object_get(d, "messages_sent")))) < 0 ||
		    set(o, "unfinished", json_integer(json_integer_value(json_object_get(d, "unfinished")))) < 0 ||
		    set(o, "errors", json_integer(json_integer_value(json_object_get(json_object_get(d, "errors"), "total")))) < 0 ||
		    set(o, "client_cpu_s", json_real(u + s)) < 0 ||
		    /* the rate the host's load generator reports it ran (its config), which is
		     * rates[i] when it took its share */
		    set(o, "rate", json_real(dc ? num(dc, "rate") : rates[i])) < 0 ||
		    set(o, "connections", json_integer(json_integer_value(json_object_get(dc, "connections")))) < 0 ||
		    set(o, "duration_s", json_real(num(d, "duration_s"))) < 0 ||
		    set(o, "start_wall_ns", json_integer(json_integer_value(json_object_get(d, "start_wall_ns")))) < 0)
			goto oom;
	}
	/* the windows are simultaneous (one start barrier): the merged window is their mean */
	dur /= n;
	json_int_t req = json_integer_value(json_object_get(m, "requests"));
	if (set(m, "tool", json_string("ctxlab load")) < 0 ||
	    set(cfg, "connections", json_integer(conns)) < 0 ||
	    set(cfg, "threads", json_integer(threads)) < 0 || set(cfg, "rate", json_real(crate)) < 0 ||
	    json_object_set(m, "config", cfg) < 0 ||
	    set(m, "start_wall_ns",
		json_integer(json_integer_value(json_object_get(docs[0], "start_wall_ns")))) < 0 ||
	    set(m, "duration_s", json_real(dur)) < 0 ||
	    json_object_set(m, "errors", errs) < 0 || json_object_set(m, "status", st) < 0 ||
	    set(m, "latency_us", lat_json("latency_us", hs[0])) < 0 ||
	    set(m, "latency_uncorrected_us", lat_json("latency_uncorrected_us", hs[1])) < 0 ||
	    (chat && json_object_set(m, "chat", chat) < 0) ||
	    set(cc, "user_s", json_real(user)) < 0 || set(cc, "sys_s", json_real(sys)) < 0 ||
	    set(cc, "us_per_request", json_real(req ? (user + sys) * 1e6 / (double)req : 0)) < 0 ||
	    json_object_set(m, "client_cpu", cc) < 0 ||
	    set(m, "interrupted", json_boolean(interrupted)) < 0 ||
	    set(m, "ports_exhausted", json_boolean(exhausted)) < 0 ||
	    set(m, "stop_reason", json_string("")) < 0 ||
	    json_object_set(m, "load_hosts", hosts) < 0)
		goto oom;
	/* one host: its other keys as they are (e.g. `intervals`, the per-interval HDRs of a
	 * timeline trial; several hosts' intervals are not merged: their timeline says so) */
	if (n == 1) {
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)docs[0], k, v) {
			if (!json_object_get(m, k) && strcmp(k, hkeys[0][0]) && strcmp(k, hkeys[1][0]) &&
			    json_object_set(m, k, v) < 0)
				goto oom;
		}
	}
	json_decref(hosts), json_decref(errs), json_decref(st), json_decref(cc), json_decref(chat);
	json_decref(cfg);
	hist_free(hs[0]), hist_free(hs[1]);
	return m;
oom:
	errbuf(err, errlen, "out of memory merging the load hosts' results");
fail:
	json_decref(m), json_decref(hosts), json_decref(errs), json_decref(st), json_decref(cc);
	json_decref(chat), json_decref(cfg);
	hist_free(hs[0]), hist_free(hs[1]);
	return NULL;
}
