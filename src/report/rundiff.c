#include "report/rundiff.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/outfile.h"
#include "report/svg.h"

/* Whether cell ci has an ok profiled trial with a flame directory. */
static int cell_profiled(const struct trials *t, int ci)
{
	for (int i = 0; i < t->nrec; i++)
		if (t->rec_cell[i] == ci && t->rec[i].ok && t->rec[i].profiled &&
		    t->rec[i].flame_dir)
			return 1;
	return 0;
}

/* The one parameter cells a and b differ in (its index in a), or -1 when they differ in none,
 * in more than one, or not in the same parameter names. */
static int one_axis(const struct trials_cell *a, const struct trials_cell *b)
{
	if (a->nparams != b->nparams)
		return -1;
	int at = -1;
	for (int k = 0; k < a->nparams; k++) {
		const char *v = trials_cell_param(b, a->pk[k]);
		if (!v)
			return -1;
		if (strcmp(v, a->pv[k])) {
			if (at >= 0)
				return -1;
			at = k;
		}
	}
	return at;
}

static void sanitize(char *s)
{
	for (; *s; s++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", *s))
			*s = '_';
}

/* "flame-diff/NAME.svg" not used yet by d[0..n): NAME, then NAME-2, NAME-3... */
static void unique_name(const struct rundiffs *d, const char *base, char *name, size_t len)
{
	for (int k = 1;; k++) {
		if (k == 1)
			snprintf(name, len, "%s.svg", base);
		else
			snprintf(name, len, "%s-%d.svg", base, k);
		int used = 0;
		for (int i = 0; i < d->n && !used; i++)
			used = !strcmp(d->d[i].f.file + strlen("flame-diff/"), name);
		if (!used)
			return;
	}
}

static int is_gateway(const struct trials_cell *c)
{
	const char *e = trials_cell_param(c, "engine");
	return e && !strcmp(e, "gateway");
}

/* One graph of the pair (ca, cb) along parameter ax: 0 (written and listed, or nothing to
 * compare), -errno. */
static int one(const struct trials *t, int ca, int cb, int ax, int front, struct rundiffs *out,
	       int *made_dir, char *err, size_t errlen)
{
	if (out->n >= RUNDIFF_MAX) {
		out->left_out++;
		return 0;
	}
	const struct trials_cell *a = &t->cells[ca], *b = &t->cells[cb];
	const char *axis = a->pk[ax], *va = a->pv[ax], *vb = trials_cell_param(b, axis);
	char base[300], name[320], title[900], la[200], lb[200];
	snprintf(base, sizeof base, "%s-%s-vs-%s", front ? "front" : axis, va, vb);
	sanitize(base);
	unique_name(out, base, name, sizeof name);
	snprintf(la, sizeof la, "%s", va);
	snprintf(lb, sizeof lb, "%s", vb);
	snprintf(title, sizeof title, "%s CPU per request, %s=%s -> %s: %s",
		 front ? "Front process" : "Server", axis, va, vb, b->key);
	if (!*made_dir) {
		int rc = outfile_mkdirs_under(t->dir, "flame-diff");
		if (rc < 0)
			return errbuf(err, errlen, "cannot create '%s/flame-diff': %s", t->dir,
				      outfile_strerror(rc)), rc;
		*made_dir = 1;
	}
	struct cmpflame_req req = {.folded = front ? "front.folded" : "profile.folded",
				   .file = name, .label_a = la, .label_b = lb};
	struct cmpflame f;
	const char *why;
	int k = cmpflame_cell_req(t, a->key, t, b->key, t->dir, title, &req, &f, &why, err,
				  errlen);
	if (k <= 0)
		return k;
	struct rundiff *n = realloc(out->d, (size_t)(out->n + 1) * sizeof *n);
	if (!n)
		return errbuf(err, errlen, "out of memory"), -ENOMEM;
	out->d = n;
	out->d[out->n++] = (struct rundiff){.ca = ca, .cb = cb, .axis = axis, .va = va, .vb = vb,
					    .front = front, .f = f};
	return 0;
}

int rundiffs_write(const struct trials *t, struct rundiffs *out, char *err, size_t errlen)
{
	out->n = out->left_out = 0;
	out->d = NULL;
	if (!t->dir)
		return 0;
	int made_dir = 0, rc = 0;
	for (int i = 0; i < t->ncells && !rc; i++) {
		if (!cell_profiled(t, i))
			continue;
		for (int j = i + 1; j < t->ncells && !rc; j++) {
			int ax = one_axis(&t->cells[i], &t->cells[j]);
			if (ax < 0 || !cell_profiled(t, j))
				continue;
			rc = one(t, i, j, ax, 0, out, &made_dir, err, errlen);
			if (!rc && is_gateway(&t->cells[i]) && is_gateway(&t->cells[j]))
				rc = one(t, i, j, ax, 1, out, &made_dir, err, errlen);
		}
	}
	return rc;
}

void rundiffs_release(struct rundiffs *d)
{
	free(d->d);
	d->d = NULL;
	d->n = d->left_out = 0;
}

/* "the front process (the gateway's root: accepts and hands over), handoff=proxy -> fdpass
 * at engine=gateway ...; proxy 12.3 us per request (456 samples, 1 trial) -> fdpass 8.1 us
 * (301 samples, 1 trial), -34.1%" */
static void caption(const struct trials *t, const struct rundiff *d, struct buf *out)
{
	const struct trials_cell *a = &t->cells[d->ca];
	buf_appendf(out, "%s, %s=%s → %s at", d->front ? "The front process alone (the "
		    "gateway's root process: it accepts every client and hands it to a worker)"
		    : "The server's whole process tree", d->axis, d->va, d->vb);
	for (int k = 0; k < a->nparams; k++)
		if (strcmp(a->pk[k], d->axis))
			buf_appendf(out, " %s=%s", a->pk[k], a->pv[k]);
	const struct cmpflame_side *sa = &d->f.a, *sb = &d->f.b;
	buf_appendf(out, ": %s %.2f us CPU per request (%.0f samples, %d trial%s) → %s %.2f us "
		    "(%.0f samples, %d trial%s), %+.1f%%; red = costs more per request in %s, "
		    "blue = less", d->va, sa->ns_per_request / 1e3, sa->samples, sa->ntrials,
		    sa->ntrials == 1 ? "" : "s", d->vb, sb->ns_per_request / 1e3, sb->samples,
		    sb->ntrials, sb->ntrials == 1 ? "" : "s",
		    100.0 * (sb->ns_per_request - sa->ns_per_request) / sa->ns_per_request, d->vb);
}

static const char blurb[] =
	"Each pair of profiled cells that differ in one parameter only: the CPU of each side's "
	"profile per request (samples x 1/99 s / the requests of the profiled trials), so the two "
	"compare by cost per request, not by raw samples. Width = the second side's cost per "
	"request; the tooltip gives both and the change.";

void rundiffs_md(const struct trials *t, const struct rundiffs *d, struct buf *out)
{
	if (!d || !d->n)
		return;
	buf_appendf(out, "\n## Differential flame graphs\n\n%s\n\n", blurb);
	for (int i = 0; i < d->n; i++) {
		buf_appendf(out, "- [%s](%s): ", d->d[i].f.file, d->d[i].f.file);
		caption(t, &d->d[i], out);
		buf_appendf(out, ".\n");
	}
	if (d->left_out)
		buf_appendf(out, "- %d more graph%s not drawn (at most %d per report).\n",
			    d->left_out, d->left_out == 1 ? "" : "s", RUNDIFF_MAX);
}

void rundiffs_html(const struct trials *t, const struct rundiffs *d, struct buf *out)
{
	if (!d || !d->n)
		return;
	buf_appendf(out, "<h2>Differential flame graphs</h2>\n<p>");
	svg_escape(out, blurb);
	buf_appendf(out, "</p>\n<ul id=\"flame-diff\">\n");
	for (int i = 0; i < d->n; i++) {
		struct buf c = BUF_INIT;
		caption(t, &d->d[i], &c);
		buf_append(&c, "", 1);
		buf_appendf(out, "<li><a href=\"");
		svg_escape(out, d->d[i].f.file);
		buf_appendf(out, "\">");
		svg_escape(out, d->d[i].f.file);
		buf_appendf(out, "</a>: ");
		svg_escape(out, buf_head(&c));
		buf_appendf(out, ".</li>\n");
		buf_free(&c);
	}
	if (d->left_out)
		buf_appendf(out, "<li>%d more graph%s not drawn (at most %d per report).</li>\n",
			    d->left_out, d->left_out == 1 ? "" : "s", RUNDIFF_MAX);
	buf_appendf(out, "</ul>\n");
}
