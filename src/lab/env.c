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

#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/outfile.h"
#include "lab/launch.h"

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
	jw_end(&w);
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
