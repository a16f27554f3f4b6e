#include "report/cmpflame.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/outfile.h"
#include "profile/flamesvg.h"
#include "profile/folded.h"

static double requests_of(const struct record *r)
{
	json_t *th = r->json ? json_object_get(r->json, "throughput") : NULL;
	json_t *v = th ? json_object_get(th, "requests") : NULL;
	return v && json_is_number(v) ? json_number_value(v) : 0;
}

/* Merges the folded profiles of the profiled ok trials of cell key into f. 0 or -errno. */
static int side_load(const struct trials *t, const char *key, struct folded *f,
		     struct cmpflame_side *s, char *err, size_t errlen)
{
	memset(s, 0, sizeof *s);
	for (int i = 0; i < t->nrec; i++) {
		const struct record *r = &t->rec[i];
		const struct trials_cell *c = &t->cells[t->rec_cell[i]];
		if (!r->ok || !r->profiled || !r->flame_dir || strcmp(c->key, key))
			continue;
		const char *fl = r->flame_dir, *slash = strrchr(fl, '/');
		double req = requests_of(r);
		if (!slash || fl[0] == '/' || strstr(fl, "..") || !(req > 0))
			continue;
		char path[4096];
		snprintf(path, sizeof path, "%s/%.*s/profile.folded", t->dir, (int)(slash - fl), fl);
		struct folded one;
		folded_init(&one);
		char e[512];
		int rc = folded_read_file(&one, path, e, sizeof e);
		if (rc == -ENOENT) {
			folded_release(&one);
			continue;
		}
		if (rc < 0) {
			folded_release(&one);
			return rc == -EINVAL ? errbuf(err, errlen, "%s", e), -EINVAL
					     : (errbuf(err, errlen, "cannot read '%s': %s", path,
						       strerror(-rc)), rc);
		}
		for (size_t k = 0; k < one.n && !rc; k++)
			rc = folded_add(f, one.e[k].stack, strlen(one.e[k].stack), one.e[k].count, 0);
		uint64_t samples = one.total;
		folded_release(&one);
		if (rc < 0)
			return errbuf(err, errlen, "out of memory"), rc;
		if (!samples)
			continue;
		if (!s->ntrials) { /* "flame/ID/flame.svg" -> ID */
			const char *d = slash;
			while (d > fl && d[-1] != '/')
				d--;
			snprintf(s->id, sizeof s->id, "%.*s", (int)(slash - d), d);
		}
		s->ntrials++;
		s->samples += (double)samples;
		s->requests += req;
	}
	if (s->ntrials)
		s->ns_per_request = s->samples * CMPFLAME_PERIOD_NS / s->requests;
	return 0;
}

int cmpflame_cell(const struct trials *a, const char *key_a, const struct trials *b,
		  const char *key_b, const char *dir, const char *title, struct cmpflame *out,
		  const char **why, char *err, size_t errlen)
{
	struct folded fa, fb;
	folded_init(&fa);
	folded_init(&fb);
	*why = NULL;
	memset(out, 0, sizeof *out);
	int rc = 0;
	if (!key_a || !key_b) {
		*why = "the trials are not paired by cell";
		goto done;
	}
	rc = side_load(a, key_a, &fa, &out->a, err, errlen);
	if (!rc)
		rc = side_load(b, key_b, &fb, &out->b, err, errlen);
	if (rc < 0)
		goto done;
	if (!out->a.ntrials || !out->b.ntrials) {
		*why = !out->a.ntrials && !out->b.ntrials ? "neither side has a profiled trial"
		       : !out->a.ntrials ? "A has no profiled trial" : "B has no profiled trial";
		goto done;
	}
	folded_sort(&fa);
	folded_sort(&fb);
	if (strcmp(out->a.id, out->b.id))
		snprintf(out->file, sizeof out->file, "flame-diff/%s--%s.svg", out->a.id, out->b.id);
	else
		snprintf(out->file, sizeof out->file, "flame-diff/%s.svg", out->a.id);
	for (char *p = out->file + strlen("flame-diff/"); *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", *p))
			*p = '_';
	char svg_path[4400];
	snprintf(svg_path, sizeof svg_path, "%s/%s", dir, out->file);
	char sub[256];
	snprintf(sub, sizeof sub, "CPU per request: A %.1f us (%d trial%s), B %.1f us (%d trial%s), "
		 "%+.1f%%; red = more in B", out->a.ns_per_request / 1e3, out->a.ntrials,
		 out->a.ntrials == 1 ? "" : "s", out->b.ns_per_request / 1e3, out->b.ntrials,
		 out->b.ntrials == 1 ? "" : "s",
		 100.0 * (out->b.ns_per_request - out->a.ns_per_request) / out->a.ns_per_request);
	struct flamesvg_opts o = {.title = title, .subtitle = sub,
				  .ns_per_count_a = CMPFLAME_PERIOD_NS / out->a.requests,
				  .ns_per_count_b = CMPFLAME_PERIOD_NS / out->b.requests};
	char *mem = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&mem, &len);
	if (!m) {
		rc = -ENOMEM;
		errbuf(err, errlen, "out of memory");
		goto done;
	}
	rc = flamesvg_write_diff(&fa, &fb, &o, m);
	if (fclose(m) && !rc)
		rc = -ENOMEM;
	if (!rc)
		rc = outfile_write(svg_path, mem, len, 0);
	free(mem);
	if (rc < 0)
		errbuf(err, errlen, "cannot write '%s': %s", svg_path, outfile_strerror(rc));
	else
		rc = 1;
done:
	folded_release(&fa);
	folded_release(&fb);
	return rc;
}
