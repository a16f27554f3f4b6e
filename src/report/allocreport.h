/* allocreport: the report's "Allocations per request" table ([experiment] alloc; the runner
 * writes each record's "alloc", docs/metrics.md "Allocations per request"): per cell, the
 * median [95% CI] of server CPU per request beside allocation calls and bytes requested per
 * request, the interposer's mode (go-runtime: the Go peer's own counters, with its note), or
 * n/a with the reason a record gave. Nothing when no record has "alloc". Appends to out. Not thread-safe.
 */
#ifndef CTXLAB_REPORT_ALLOCREPORT_H
#define CTXLAB_REPORT_ALLOCREPORT_H

#include "core/buf.h"
#include "report/trials.h"

/* Markdown: a "## Allocations per request" section. Returns the number of cells listed. */
int allocreport_md(const struct trials *t, struct buf *out);
/* HTML: an <h2>Allocations per request</h2> and its table. Returns the number of cells. */
int allocreport_html(const struct trials *t, struct buf *out);

#endif
