/* monout: the one serialiser of the monitor's figures (as load/loadout.c is load's). Both
 * public spellings of a struct monitor_sample are written here and nowhere else:
 *
 *   `ctxlab watch --json`   one object per interval (monout_sample), then {"summary", "total"}
 *                           (monout_summary): keys "cpu_user_s", "ctxsw_vol", "max_rss_bytes"...
 *   the trial record        (lab/record.c) objects "server_cpu", "ctxsw", "memory"
 *                           (monout_record): keys "user_s", "voluntary", "rss_bytes"...
 *
 * Choice: one field table (monout.c, `fields[]`) gives every figure both of its names (watch's
 * key; the record's object and key) and its value; each output is a list of figure ids in its
 * order. Both outputs stay byte-compatible with what they were before this table; a figure
 * added to the table and to a layout appears in that output, named as the table says
 * (docs/metrics.md defines every key: tests/integration/test_metrics_keys.py checks it).
 *
 * Pure writers into a caller's struct jw (core/json.h); not thread-safe per jw.
 */
#ifndef CTXLAB_MONITOR_MONOUT_H
#define CTXLAB_MONITOR_MONOUT_H

#include <stdint.h>

#include "core/json.h"
#include "monitor/monitor.h"
#include "monitor/series.h"

/* The largest values seen over a window of samples (the record's peaks). */
struct monitor_peak {
	double cpu_total_cores;        /* of samples covering at least 50 ms */
	uint64_t rss_bytes, pss_bytes;
	int procs, threads;
};
/* Raises pk to s's values. */
void monout_peak_update(struct monitor_peak *pk, const struct monitor_sample *s);

/* watch's own CPU over the samples (the overhead object of the summary); ok = 0: null. */
struct monout_overhead {
	int ok;
	double cpu_s, span_s;
};

/* One interval of `watch --json` at t_s seconds, as an object. */
void monout_sample(struct jw *w, const struct monitor_sample *s, double t_s);
/* The summary object of `watch --json`: {"summary": {...stats of se}, "total": {...tot}}. */
void monout_summary(struct jw *w, const struct series *se, const struct monitor_sample *tot,
		    const struct monout_overhead *oh);
/* The record's keys "server_cpu", "ctxsw", "memory" (members of an object being written)
 * from a window's total and peaks; rate_per_s and bytes_per_s (0 = unknown) give the per
 * request / per MB figures. */
void monout_record(struct jw *w, const struct monitor_sample *tot, const struct monitor_peak *pk,
		   double rate_per_s, double bytes_per_s);

/* Every key monout writes, for the docs test (`ctxlab` has no command for it: the unit test
 * tests/unit/test_monitor_monout.c prints them). Calls fn(key) once per distinct key. */
void monout_keys(void (*fn)(const char *key, void *arg), void *arg);

#endif
