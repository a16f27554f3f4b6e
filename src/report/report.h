/* report: turns a results directory of `ctxlab run` into trials.csv, report.md and a
 * self-contained report.html (inline CSS and SVG, no script, no network).
 *
 * Every figure is computed from the trial records (report/trials.h); the findings are
 * sentences generated from the data, never hand-written. Definitions: docs/metrics.md,
 * "Experiment records". Files are written whole with outfile_write (a fresh temporary,
 * fsynced and renamed); a link, device or FIFO planted at one of their names is refused with
 * an error naming it, never written through.
 * Functions return 0 or -1 with err set. Not thread-safe.
 */
#ifndef CTXLAB_REPORT_REPORT_H
#define CTXLAB_REPORT_REPORT_H

#include <stddef.h>

#include "core/buf.h"
#include "report/trials.h"

/* Writes dir/trials.csv, dir/report.md and dir/report.html. */
int report_write(const char *dir, char *err, size_t errlen);

/* The pieces, for tests and for compare: each appends to out. */
void report_csv(const struct trials *t, struct buf *out);
void report_md(const struct trials *t, struct buf *out);
void report_html(const struct trials *t, struct buf *out);
/* Findings computed from the data, one sentence per line ("\n"-separated), appended to out;
 * returns the number of findings. */
int report_findings(const struct trials *t, struct buf *out);

/* The metrics charted per protocol, in order (ids of trials_metrics). */
extern const int report_chart_metrics[];
extern const int report_nchart_metrics;

#endif
