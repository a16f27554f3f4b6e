#include "lab/env.h"

#include <errno.h>
#include <jansson.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench/pingpong.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/outfile.h"
#include "lab/launch.h"
#include "lab/record.h"

static void read_file_str(const char *path, char *out, size_t len)
{
	out[0] = 0;
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	if (fgets(out, (int)len, f)) {
		size_t l = strlen(out);
		while (l && (out[l - 1] == '\n' || out[l - 1] == ' '))
			out[--l] = 0;
	}
	fclose(f);
}

static void cpu_model(char *out, size_t len)
{
	snprintf(out, len, "unknown");
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (!f)
		return;
	char line[512];
	while (fgets(line, sizeof line, f)) {
		if (!strncmp(line, "model name", 10)) {
			char *c = strchr(line, ':');
			if (c) {
				c++;
				while (*c == ' ' || *c == '\t')
					c++;
				c[strcspn(c, "\n")] = 0;
				snprintf(out, len, "%s", c);
			}
			break;
		}
	}
	fclose(f);
}

static int spec_uses_engine(const struct spec *s, const char *engine)
{
	const struct spec_key *k = spec_get(s, "server", "engine");
	for (int i = 0; k && i < k->n; i++)
		if (!strcmp(k->v[i].text, engine))
			return 1;
	return 0;
}

static void env_write_answers(struct jw *w, const struct spec *s);
static void env_write_switch(struct jw *w, const struct env_switch *sw);

int env_write(const char *dir, const struct spec *s, const struct env_run *o, char *err,
	      size_t errlen)
{
	struct jw w;
	jw_init(&w);
	struct utsname u;
	char buf[1024];
	jw_obj(&w);
	if (uname(&u) == 0) {
		snprintf(buf, sizeof buf, "%s %s %s %s", u.sysname, u.release, u.version, u.machine);
		jw_kstr(&w, "kernel", buf);
		jw_kstr(&w, "hostname", u.nodename);
	}
	cpu_model(buf, sizeof buf);
	jw_kstr(&w, "cpu_model", buf);
	cpu_set_t mine;
	CPU_ZERO(&mine);
	sched_getaffinity(0, sizeof mine, &mine);
	jw_kint(&w, "cores", CPU_COUNT(&mine));
	jw_kint(&w, "cores_online", sysconf(_SC_NPROCESSORS_ONLN));
	read_file_str("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", buf, sizeof buf);
	jw_kstr(&w, "governor", buf[0] ? buf : "n/a (no cpufreq on this machine)");
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
	jw_kstr(&w, "started", buf);
	jw_key(&w, "versions");
	jw_obj(&w);
	jw_kstr(&w, "ctxlab", CTXLAB_VERSION);
	struct host here = {.kind = HOST_LOCAL};
	if (spec_uses_engine(s, "go")) {
		const char *argv[] = {"go", "version", NULL};
		if (launch_capture(&here, argv, NULL, 0, buf, sizeof buf, 10 * NS_PER_S) == 0)
			jw_kstr(&w, "go", buf);
		else
			jw_kstr(&w, "go", "n/a (go not found)");
	}
	if (spec_uses_engine(s, "nginx")) {
		const char *argv[] = {"nginx", "-v", NULL};
		if (launch_capture(&here, argv, NULL, 1, buf, sizeof buf, 10 * NS_PER_S) == 0)
			jw_kstr(&w, "nginx", buf);
		else
			jw_kstr(&w, "nginx", "n/a (nginx not found)");
	}
	jw_end(&w);
	jw_key(&w, "experiment");
	jw_obj(&w);
	jw_kstr(&w, "name", s->name);
	if (s->question[0])
		jw_kstr(&w, "question", s->question);
	jw_kstr(&w, "spec", s->file);
	jw_kint(&w, "repeat", s->repeat);
	jw_kdouble(&w, "warmup_s", s->warmup_ns / 1e9);
	jw_kdouble(&w, "duration_s", s->duration_ns / 1e9);
	jw_kbool(&w, "quick", s->quick);
	jw_kstr(&w, "profile", spec_profile_name(s->profile));
	if (s->profile == SPEC_PROFILE_CELLS)
		jw_kstr(&w, "profile_cells", s->profile_cells);
	/* a decimal string: a uint64 does not fit a JSON number every reader keeps exact */
	char seed[32];
	snprintf(seed, sizeof seed, "%llu", (unsigned long long)s->seed);
	jw_kstr(&w, "seed", seed);
	if (s->precision > 0)
		jw_kdouble(&w, "precision", s->precision);
	else
		jw_kstr(&w, "precision", "off");
	jw_kint(&w, "max_repeat", s->max_repeat);
	jw_kdouble(&w, "budget_s", spec_budget_ns(s, o->ncells) / 1e9);
	jw_kbool(&w, "embedded_default", o->is_default);
	jw_kint(&w, "cells", o->ncells);
	jw_kint(&w, "trials", o->ntrials);
	/* the effective matrix: engines the start-up probe dropped are not in it, and --resume
	 * drops them again (the cells and their keys stay those of this run) */
	const struct spec_key *ek = spec_get(s, "server", "engine");
	jw_key(&w, "engines");
	jw_arr(&w);
	for (int i = 0; ek && i < ek->n; i++)
		jw_str(&w, ek->v[i].text);
	jw_end(&w);
	jw_kstr(&w, "server_host", s->server_host);
	jw_kstr(&w, "load_host", s->load_host);
	jw_kstr(&w, "server_address", s->server_address);
	if (o->argv_line)
		jw_kstr(&w, "command", o->argv_line);
	jw_key(&w, "notes");
	jw_arr(&w);
	for (int i = 0; i < s->nnotes; i++)
		jw_str(&w, s->notes[i]);
	jw_end(&w);
	env_write_answers(&w, s);
	jw_end(&w);
	if (o->sw)
		env_write_switch(&w, o->sw);
	/* every host of the run as probed at its start (lab/multihost.h) */
	jw_key(&w, "hosts");
	jw_arr(&w);
	for (int i = 0; i < o->nhosts; i++) {
		const struct multihost_info *h = &o->hosts[i];
		jw_obj(&w);
		jw_kstr(&w, "host", h->host);
		jw_kstr(&w, "kernel", h->kernel);
		jw_kstr(&w, "cpu_model", h->cpu_model);
		jw_kint(&w, "cores", h->cores);
		jw_kstr(&w, "ctxlab_version", h->version);
		if (h->error[0])
			jw_kstr(&w, "error", h->error);
		jw_end(&w);
	}
	jw_end(&w);
	jw_end(&w);
	char path[4096];
	snprintf(path, sizeof path, "%s/env.json", dir);
	int rc = w.oom ? -ENOMEM : outfile_write(path, w.buf, w.len, 0);
	jw_release(&w);
	if (rc < 0)
		return errbuf(err, errlen, "cannot write '%s': %s", path, outfile_strerror(rc));
	return 0;
}

int env_read(const char *dir, struct env_resume *r, char *err, size_t errlen)
{
	memset(r, 0, sizeof *r);
	r->profile = -1;
	char path[4096], jerr[256];
	snprintf(path, sizeof path, "%s/env.json", dir);
	json_t *j = json_read_file(path, jerr, sizeof jerr);
	if (!j) {
		snprintf(err, errlen, "%s", jerr);
		return -ENOENT;
	}
	json_t *e = json_object_get(j, "experiment");
	json_t *en = json_object_get(e, "engines");
	if (json_is_array(en)) {
		size_t k;
		json_t *v;
		json_array_foreach(en, k, v)
		{
			if (!json_is_string(v) || r->nengines >= ENV_MAX_ENGINES)
				continue;
			snprintf(r->engines[r->nengines++], sizeof r->engines[0], "%s",
				 json_string_value(v));
		}
		r->have_engines = 1;
	}
	r->quick = json_is_true(json_object_get(e, "quick"));
	r->is_default = json_is_true(json_object_get(e, "embedded_default"));
	enum spec_profile pr;
	const char *ps = json_string_value(json_object_get(e, "profile"));
	if (ps && spec_profile_parse(ps, &pr) == 0)
		r->profile = (int)pr;
	uint64_t seed;
	const char *ss = json_string_value(json_object_get(e, "seed"));
	if (ss && spec_seed_parse(ss, &seed) == 0) {
		r->seed = seed;
		r->have_seed = 1;
	}
	json_decref(j);
	return 0;
}

int env_resume_has_engine(const struct env_resume *r, const char *engine)
{
	for (int i = 0; i < r->nengines; i++)
		if (!strcmp(r->engines[i], engine))
			return 1;
	return 0;
}

/* experiment.answers: the [answer.*] sections as written (the report computes them). */
static void env_write_answers(struct jw *w, const struct spec *s)
{
	struct spec_answer a[SPEC_MAX_ANSWERS];
	int n = spec_answers(s, a, SPEC_MAX_ANSWERS);
	jw_key(w, "answers");
	jw_arr(w);
	for (int i = 0; i < n; i++) {
		jw_obj(w);
		jw_kstr(w, "id", a[i].id);
		jw_kstr(w, "question", a[i].question);
		jw_kstr(w, "metric", a[i].metric >= 0 ? record_metrics[a[i].metric].id : "");
		if (a[i].compare)
			jw_kstr(w, "compare", a[i].compare);
		if (a[i].grow)
			jw_kstr(w, "grow", a[i].grow);
		if (a[i].where)
			jw_kstr(w, "where", a[i].where);
		if (a[i].say)
			jw_kstr(w, "say", a[i].say);
		if (a[i].needs_cpus)
			jw_kint(w, "needs_cpus", a[i].needs_cpus);
		jw_end(w);
	}
	jw_end(w);
}

/* ns per switch of one mode on one CPU: elapsed / (2 x round trips), sized to ~target_ns. */
static int switch_measure(enum pingpong_mode mode, uint64_t target_ns, double *ns,
			  double *elapsed_ns, char *err, size_t errlen)
{
	struct pingpong_opts po = {.mode = mode, .pin = PINGPONG_PIN_SAME, .pairs = 1,
				   .msg_bytes = 1, .rounds = 1};
	struct pingpong_result r;
	int rc = pingpong_calibrate(&po, target_ns, &po.rounds, err, errlen);
	if (rc == 0)
		rc = pingpong_run(&po, &r, err, errlen);
	if (rc < 0)
		return rc;
	if (!r.round_trips || !r.affinity_ok || r.cpu_a != r.cpu_b) {
		snprintf(err, errlen, "the two sides did not run on one CPU (%s)", r.placement);
		return -EIO;
	}
	/* CPU time, not elapsed: both sides share one CPU, so their CPU time is the time the
	 * ping-pong took without what other tasks of a busy machine took from that CPU */
	*ns = (double)(r.user_ns + r.sys_ns) / (2.0 * (double)r.round_trips);
	if (elapsed_ns)
		*elapsed_ns = (double)r.elapsed_ns / (2.0 * (double)r.round_trips);
	return 0;
}

void env_switch_measure(struct env_switch *sw)
{
	memset(sw, 0, sizeof *sw);
	sw->kernel_ns = sw->coro_ns = -1;
	if (switch_measure(PINGPONG_PIPE_PROC, 400 * NS_PER_MS, &sw->kernel_ns, &sw->kernel_elapsed_ns, sw->kernel_why,
			   sizeof sw->kernel_why) < 0)
		sw->kernel_ns = -1;
	if (switch_measure(PINGPONG_CORO, 200 * NS_PER_MS, &sw->coro_ns, NULL, sw->coro_why,
			   sizeof sw->coro_why) < 0)
		sw->coro_ns = -1;
}

/* switch_cost_ns: {kernel, coro, how} (a value is null with kernel_why/coro_why when it could
 * not be measured). */
static void env_write_switch(struct jw *w, const struct env_switch *sw)
{
	jw_key(w, "switch_cost_ns");
	jw_obj(w);
	if (sw->kernel_ns > 0) {
		jw_kdouble(w, "kernel", sw->kernel_ns);
		jw_kdouble(w, "kernel_elapsed", sw->kernel_elapsed_ns);
	} else {
		jw_key(w, "kernel");
		jw_null(w);
		jw_kstr(w, "kernel_why", sw->kernel_why);
	}
	if (sw->coro_ns > 0) {
		jw_kdouble(w, "coro", sw->coro_ns);
	} else {
		jw_key(w, "coro");
		jw_null(w);
		jw_kstr(w, "coro_why", sw->coro_why);
	}
	jw_kstr(w, "how", ENV_SWITCH_HOW);
	jw_end(w);
}
