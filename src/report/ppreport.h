/* ppreport: the report's sections for an experiment of kind = pingpong (docs/metrics.md,
 * "pingpong trials"): its own figures (time, switches and CPU per round trip), never server CPU
 * per request. Used by report.c; appends to out. Not thread-safe.
 */
#ifndef CTXLAB_REPORT_PPREPORT_H
#define CTXLAB_REPORT_PPREPORT_H

#include "core/buf.h"
#include "report/trials.h"

/* 1 when the results hold pingpong trials (a record with "kind": "pingpong"). */
int ppreport_is(const struct trials *t);
/* Findings, one sentence per line: async vs blocking (coro-unix vs unix-thread), the syscalls
 * without switches (unix-inline vs unix-thread), a user-space vs a kernel switch (coro vs
 * futex-thread), each a ratio of medians of time per round trip with its CI, per matching
 * cell pair; the cells whose no-switch check failed; the trials whose CPUs were disturbed.
 * Returns the count. */
int ppreport_findings(const struct trials *t, struct buf *out);
/* HTML charts: time per round trip (median, 95% CI) over pairs, one line per mode, one chart
 * per combination of the other parameters. Returns the number of charts with points. */
int ppreport_charts(const struct trials *t, struct buf *out);
/* The results table (html: a <table id="pingpong">; else Markdown). */
void ppreport_table(const struct trials *t, struct buf *out, int html);

#endif
