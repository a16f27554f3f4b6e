/* answers: the experiment's questions ([answer.ID] sections of its spec, kept in env.json's
 * experiment.answers) answered from the cells, and the switching share of CPU per request.
 * Definitions: docs/metrics.md, "Answers" and "Switching share".
 *
 * An answer is the ratio of two cells' medians of one metric with its 95 % CI
 * (trials_ratio_ci: exp of the Hodges-Lehmann CI of the log values), written as a sentence
 * with the number, the CI and the cells it came from; or a sentence saying why this run
 * cannot answer it (the machine has too few CPUs, a cell is missing and why, its trials
 * failed, a value is missing, too few trials for a CI, several cells match).
 * Nothing here allocates what the caller must free except through answers_release.
 * Not thread-safe.
 */
#ifndef CTXLAB_REPORT_ANSWERS_H
#define CTXLAB_REPORT_ANSWERS_H

#include <stddef.h>

#include "core/buf.h"
#include "report/trials.h"

#define ANSWERS_MAX 64 /* sentences in all (a 'where' list gives one per value) */

/* ANSWER_OK: a ratio with its 95 % CI; ANSWER_NO_CI: a ratio, but too few trials for a CI;
 * ANSWER_CANNOT: no ratio (text says why). */
enum answer_status { ANSWER_OK, ANSWER_NO_CI, ANSWER_CANNOT };

struct answer {
	const char *id, *question;   /* point into t->env */
	enum answer_status status;
	double ratio, lo, hi;        /* ANSWER_OK: ratio and CI; ANSWER_NO_CI: ratio */
	int num, den;                /* cell indexes, -1 when not found */
	char text[1024];             /* the sentence, or why it cannot be answered */
};

struct answers {
	int n;
	struct answer a[ANSWERS_MAX];
};

/* Computes every answer of t->env's experiment.answers (none when there is no env or no
 * answers). Returns the count. */
int answers_compute(const struct trials *t, struct answers *out);

/* The report's "Answers" section body: md = 1 for markdown ("- **question** sentence"), 0 for
 * HTML (<li>, escaped). Appends a line saying there are none when n is 0. */
void answers_format(const struct answers *as, int md, struct buf *out);

/* The switching share of CPU per request, per cell with a CPU per request: context switches
 * per request x env.json's switch_cost_ns.kernel, against the measured CPU per request
 * (markdown table, or HTML), with a caption saying it is an estimate and how. */
void answers_switch_share(const struct trials *t, int md, struct buf *out);

#endif
