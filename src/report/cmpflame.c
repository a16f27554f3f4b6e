#include "report/cmpflame.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "core/log.h"
#include "core/outfile.h"
#include "profile/flamesvg.h"
#include "profile/folded.h"
#include "report/svg.h"

static double requests_of(const struct record *r)
{
	json_t *th = r->json ? json_object_get(r->json, "throughput") : NULL;
	json_t *v = th ? json_object_get(th, "requests") : NULL;
	return v && json_is_number(v) ? json_number_value(v) : 0;
}

/* Merges the folded profiles of the profiled ok trials of cell key into f. 0 or -errno. */
static int side_load(const struct trials *t, const char *key, const char *fname,
		     struct folded *f, struct cmpflame_side *s, char *err, size_t errlen)
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
		snprintf(path, sizeof path, "%s/%.*s/%s", t->dir, (int)(slash - fl), fl, fname);
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
	return cmpflame_cell_req(a, key_a, b, key_b, dir, title, NULL, out, why, err, errlen);
}

int cmpflame_cell_req(const struct trials *a, const char *key_a, const struct trials *b,
		      const char *key_b, const char *dir, const char *title,
		      const struct cmpflame_req *req, struct cmpflame *out, const char **why,
		      char *err, size_t errlen)
{
	static const struct cmpflame_req dflt;
	if (!req)
		req = &dflt;
	const char *fname = req->folded ? req->folded : "profile.folded";
	const char *la = req->label_a ? req->label_a : "A", *lb = req->label_b ? req->label_b : "B";
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
	rc = side_load(a, key_a, fname, &fa, &out->a, err, errlen);
	if (!rc)
		rc = side_load(b, key_b, fname, &fb, &out->b, err, errlen);
	if (rc < 0)
		goto done;
	if (!out->a.ntrials || !out->b.ntrials) {
		*why = !out->a.ntrials && !out->b.ntrials ? "neither side has a profiled trial"
		       : !out->a.ntrials ? "A has no profiled trial" : "B has no profiled trial";
		goto done;
	}
	folded_sort(&fa);
	folded_sort(&fb);
	if (req->file)
		snprintf(out->file, sizeof out->file, "flame-diff/%s", req->file);
	else if (strcmp(out->a.id, out->b.id))
		snprintf(out->file, sizeof out->file, "flame-diff/%s--%s.svg", out->a.id, out->b.id);
	else
		snprintf(out->file, sizeof out->file, "flame-diff/%s.svg", out->a.id);
	for (char *p = out->file + strlen("flame-diff/"); *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", *p))
			*p = '_';
	char svg_path[4400];
	snprintf(svg_path, sizeof svg_path, "%s/%s", dir, out->file);
	char sub[256];
	snprintf(sub, sizeof sub, "CPU per request: %.40s %.1f us (%d trial%s), %.40s %.1f us (%d "
		 "trial%s), %+.1f%%; red = more in %.40s", la, out->a.ns_per_request / 1e3,
		 out->a.ntrials, out->a.ntrials == 1 ? "" : "s", lb,
		 out->b.ns_per_request / 1e3, out->b.ntrials, out->b.ntrials == 1 ? "" : "s",
		 100.0 * (out->b.ns_per_request - out->a.ns_per_request) / out->a.ns_per_request,
		 lb);
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

static int write_text(const char *dir, const char *name, const struct buf *b, char *err,
		      size_t errlen)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int e = outfile_write(path, buf_head(b), buf_used(b), 0);
	if (e < 0)
		errbuf(err, errlen, "cannot write '%s': %s", path, outfile_strerror(e));
	return e < 0 ? e : 0;
}

static const char cmp_blurb[] =
	"Each side's profile (the trials `run --profile` sampled at 99 Hz) in CPU-ns per request: "
	"samples x 1/99 s / the requests of those trials. Width = B's cost per request, red = more "
	"CPU per request in B, blue = less; the tooltip gives both costs and the change.";

int cmpflame_write_dir(const struct compare_result *r, const struct trials *a,
		       const struct trials *b, const char *label_a, const char *label_b,
		       const struct compare_opts *opts, const char *dir, struct buf *lines,
		       char *err, size_t errlen)
{
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return errbuf(err, errlen, "cannot create '%s': %s (name a directory that can be "
			      "made)", dir, strerror(errno)), -errno;
	int rc = outfile_mkdirs_under(dir, "flame-diff");
	if (rc < 0)
		return errbuf(err, errlen, "cannot create '%s/flame-diff': %s", dir,
			      outfile_strerror(rc)), rc;
	struct buf md = BUF_INIT, html = BUF_INIT, txt = BUF_INIT, rows = BUF_INIT;
	int nfl = 0;
	compare_text(r, label_a, label_b, opts, &txt);
	buf_append(&txt, "", 1); /* NUL for svg_escape; not counted below */
	for (int i = 0; i < r->nrows && !rc; i++) {
		const struct compare_row *w = &r->rows[i];
		if (i && r->rows[i - 1].cell_a == w->cell_a && r->rows[i - 1].cell_b == w->cell_b)
			continue;
		struct cmpflame f;
		const char *why;
		char title[700];
		snprintf(title, sizeof title, "CPU per request, A -> B: %s", w->cell_b ? w->cell_b : "");
		int k = cmpflame_cell(a, w->cell_a, b, w->cell_b, dir, title, &f, &why, err, errlen);
		if (k < 0)
			rc = k;
		if (k <= 0)
			continue;
		double pct = 100.0 * (f.b.ns_per_request - f.a.ns_per_request) / f.a.ns_per_request;
		if (!nfl++)
			buf_appendf(&md, "| cell | A us/request | B us/request | change | graph |\n"
					 "|---|---:|---:|---:|---|\n");
		buf_appendf(&md, "| %s | %.2f (%d trial%s) | %.2f (%d trial%s) | %+.1f%% | [%s](%s) |\n",
			    w->cell_b, f.a.ns_per_request / 1e3, f.a.ntrials,
			    f.a.ntrials == 1 ? "" : "s", f.b.ns_per_request / 1e3, f.b.ntrials,
			    f.b.ntrials == 1 ? "" : "s", pct, f.file, f.file);
		buf_appendf(&rows, "<tr><td>");
		svg_escape(&rows, w->cell_b);
		buf_appendf(&rows, "</td><td>%.2f (%d)</td><td>%.2f (%d)</td><td>%+.1f%%</td>"
				   "<td><a href=\"", f.a.ns_per_request / 1e3, f.a.ntrials,
			    f.b.ns_per_request / 1e3, f.b.ntrials, pct);
		svg_escape(&rows, f.file);
		buf_appendf(&rows, "\">");
		svg_escape(&rows, f.file);
		buf_appendf(&rows, "</a></td></tr>\n");
		buf_appendf(lines, "differential flame graph per request: %s/%s (A %.2f us, B %.2f "
				   "us per request, %+.1f%%)\n", dir, f.file,
			    f.a.ns_per_request / 1e3, f.b.ns_per_request / 1e3, pct);
	}
	if (rc < 0)
		goto out;
	static const char none[] = "No cell has flame graphs on both sides (profile them with "
				   "`ctxlab run --profile`).";
	struct buf head = BUF_INIT;
	buf_appendf(&head, "# ctxlab compare\n\nA: `%s`  \nB: `%s`\n\n```\n%s```\n\n"
			   "## Differential flame graphs, CPU per request\n\n%s\n\n", label_a,
		    label_b, buf_head(&txt), cmp_blurb);
	if (!nfl)
		buf_appendf(&head, "%s\n", none);
	buf_append(&head, buf_head(&md), buf_used(&md));
	rc = write_text(dir, "compare.md", &head, err, errlen);
	buf_free(&head);
	if (rc < 0)
		goto out;
	buf_appendf(&html, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
			   "<title>ctxlab compare</title><style>body{font-family:sans-serif}"
			   "td,th{padding:2px 8px;text-align:right}td:first-child{text-align:left}"
			   "</style></head><body>\n<h1>ctxlab compare</h1>\n<p>A: <code>");
	svg_escape(&html, label_a);
	buf_appendf(&html, "</code><br>B: <code>");
	svg_escape(&html, label_b);
	buf_appendf(&html, "</code></p>\n<pre>");
	svg_escape(&html, buf_head(&txt));
	buf_appendf(&html, "</pre>\n<h2>Differential flame graphs, CPU per request</h2>\n<p>");
	svg_escape(&html, cmp_blurb);
	buf_appendf(&html, "</p>\n");
	if (nfl)
		buf_appendf(&html, "<table id=\"flame-diff\"><tr><th>cell</th><th>A us/request "
				   "(trials)</th><th>B us/request (trials)</th><th>change</th>"
				   "<th>graph</th></tr>\n%.*s</table>\n",
			    (int)buf_used(&rows), buf_head(&rows));
	else
		buf_appendf(&html, "<p>%s</p>\n", none);
	buf_appendf(&html, "</body></html>\n");
	rc = write_text(dir, "compare.html", &html, err, errlen);
out:
	buf_free(&md);
	buf_free(&html);
	buf_free(&txt);
	buf_free(&rows);
	return rc;
}
