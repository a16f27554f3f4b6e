/* timeline: the report's per-interval timelines ([experiment] timeline; the runner writes
 * DIR/timeline/ID.json, docs/metrics.md "Timeline"): client latency percentiles per interval
 * (exact, from per-interval HDRs) and the server's CPU and context switches per interval, on
 * one time axis, drawn as SVG charts (report/svg.h). Only files named by a record's
 * "timeline" key as timeline/NAME.json (NAME of [A-Za-z0-9._-], no "..") are read, never
 * through a link. Appends to out. Not thread-safe.
 */
#ifndef CTXLAB_REPORT_TIMELINE_H
#define CTXLAB_REPORT_TIMELINE_H

#include "core/buf.h"
#include "report/trials.h"

/* HTML: a "Timeline" section with three charts per timeline (latency p50/p90/p99, server
 * CPU, context switches per second). Returns the number of timelines drawn. */
int timeline_html(const struct trials *t, struct buf *out);
/* Markdown: the list of timelines with their files. Returns the count. */
int timeline_md(const struct trials *t, struct buf *out);

#endif
