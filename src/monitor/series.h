/* series: the figures of monitor samples as named columns, and their summary statistics
 * (mean, stddev, CV, min, max, p95 — what `ctxlab watch --json` ends with).
 *
 * Every figure is a double taken from a struct monitor_sample; `series_names` lists them in a
 * fixed order (the CSV/JSON keys, defined in docs/metrics.md). Zero samples are kept.
 * A figure that is n/a (a perf counter not supported) is NaN in the row and is left out of
 * its summary (count 0: shown as null). Caller-owned struct; not thread-safe; 0 / -ENOMEM.
 */
#ifndef CTXLAB_MONITOR_SERIES_H
#define CTXLAB_MONITOR_SERIES_H

#include <stddef.h>

#include "monitor/monitor.h"

#define SERIES_NFIG 27
extern const char *const series_names[SERIES_NFIG];
extern const char *const series_units[SERIES_NFIG];

/* The figures of one sample, in series_names order (NaN where n/a). */
void series_row(const struct monitor_sample *s, double *v);

struct series {
	double *rows; /* [n * SERIES_NFIG] */
	size_t n, cap;
};

struct series_stats {
	size_t count;                  /* samples where the figure was available */
	double mean, stddev, cv, min, max, p95;
};

int series_add(struct series *se, const struct monitor_sample *s);
/* stddev: sample (n-1) standard deviation (0 for one sample); cv = stddev / mean (0 when the
 * mean is 0); p95: nearest-rank 95th percentile. */
void series_stats(const struct series *se, int fig, struct series_stats *st);
void series_free(struct series *se);

#endif
