/* rundiff: differential flame graphs within one run. Every pair of profiled cells that differ
 * in exactly one parameter (the same parameter names, one value different) gets
 * DIR/flame-diff/AXIS-VA-vs-VB.svg: the server's whole tree (profile.folded), per request
 * (cmpflame.h: CPU-ns per request, width = B's cost, red = more CPU per request in B). A is the
 * cell that comes first in the run's matrix order (the axis's first value: handoff=proxy
 * before fdpass). When both cells are of the gateway engine and their trials wrote the front
 * process's own stacks (flame/ID/front.folded), the pair also gets
 * DIR/flame-diff/front-VA-vs-VB.svg: the front alone, per request of the whole gateway.
 * A name used twice (several pairs along one axis) gets "-2", "-3"... Names are sanitized to
 * [A-Za-z0-9._-]. Not thread-safe.
 */
#ifndef CTXLAB_REPORT_RUNDIFF_H
#define CTXLAB_REPORT_RUNDIFF_H

#include <stddef.h>

#include "core/buf.h"
#include "report/cmpflame.h"
#include "report/trials.h"

struct rundiff {
	int ca, cb;           /* the cells (indices into trials.cells) */
	const char *axis;     /* the parameter they differ in (points into trials) */
	const char *va, *vb;  /* its values in A and B */
	int front;            /* 1: the front process alone (front.folded), 0: the whole tree */
	struct cmpflame f;    /* f.file: "flame-diff/NAME.svg" relative to the run directory */
};

/* At most this many graphs per report (a `profile = all` run of many cells has many pairs);
 * the pairs beyond are counted in left_out and the reports say so. */
#define RUNDIFF_MAX 48

struct rundiffs {
	int n;
	struct rundiff *d;
	int left_out;         /* pairs not drawn for RUNDIFF_MAX */
};

/* Writes every graph above into t->dir/flame-diff/ (made when there is one to write) and lists
 * them in out (release with rundiffs_release). 0 (none is not an error), or -errno with err
 * set (unreadable folded file, write error). */
int rundiffs_write(const struct trials *t, struct rundiffs *out, char *err, size_t errlen);
void rundiffs_release(struct rundiffs *d);

/* The section "Differential flame graphs" (nothing when d has none), markdown or HTML. */
void rundiffs_md(const struct trials *t, const struct rundiffs *d, struct buf *out);
void rundiffs_html(const struct trials *t, const struct rundiffs *d, struct buf *out);

#endif
