/* loadout: what `ctxlab load` prints: the wrk-like summary, wrk2's percentile spectrum and the
 * JSON document the experiment runner reads. No I/O besides the FILE/jw given. */
#ifndef CTXLAB_LOAD_LOADOUT_H
#define CTXLAB_LOAD_LOADOUT_H

#include <stdio.h>

#include "core/json.h"
#include "load/load.h"

void loadout_summary(FILE *f, const struct load_cfg *cfg, const struct load_result *r);
/* wrk2's "Detailed Percentile spectrum" (values in ms), from r->lat. */
void loadout_spectrum(FILE *f, const struct load_result *r);
/* The whole result as one JSON object (keys documented in docs/metrics.md). */
void loadout_json(struct jw *w, const struct load_cfg *cfg, const struct load_result *r);
/* The same with "latency_hist" and "latency_uncorrected_hist" added: both histograms in
 * hist_encode's exact text (core/hist.h), so that `ctxlab run` merges several load hosts
 * exactly. */
/* The "latency_us"-shaped object (mean, stdev, min, max, p50 .. p99_99 in us, count) of h
 * under key: what loadout_json writes for each latency histogram. */
void loadout_lat_obj(struct jw *w, const char *key, const struct hist *h);
void loadout_json_hist(struct jw *w, const struct load_cfg *cfg, const struct load_result *r);

#endif
