/* compare: the seeds' A/B report: server CPU average and peak, system CPU, context
 * switches, throughput and p99 latency of A and B, each with B's change relative to A in %.
 *
 * Two results directories: cells are paired by identical parameters; when none match, by
 * parameters other than the engine; when still none, every ok trial of A is compared with
 * every ok trial of B. One directory and two engines: cells that differ only in the engine.
 * Appends the report to out; returns the number of pairs compared, or -1 with err set.
 */
#ifndef CTXLAB_REPORT_COMPARE_H
#define CTXLAB_REPORT_COMPARE_H

#include <stddef.h>

#include "core/buf.h"
#include "report/trials.h"

int compare_dirs(const char *dir_a, const char *dir_b, struct buf *out, char *err, size_t errlen);
int compare_engines(const char *dir, const char *engine_a, const char *engine_b, struct buf *out,
		    char *err, size_t errlen);
/* The core: compares loaded trial sets (what the two functions above call). `engine_a` and
 * `engine_b` NULL: pairing as for two directories. */
int compare_trials(const struct trials *a, const char *label_a, const struct trials *b,
		   const char *label_b, const char *engine_a, const char *engine_b, struct buf *out,
		   char *err, size_t errlen);

#endif
