/* lab/runner: the seeded interleaved trial order (spec_round_order: deterministic, a
 * permutation, different per round and per seed; spec keys seed/precision/max_repeat/budget)
 * and the extra-round choice by precision (runner_pick_extra, a pure function on synthetic
 * per-cell samples: the noisy cell gets extra rounds, the quiet one does not, max_repeat and
 * the budget respected). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "lab/record.h"
#include "lab/runner.h"
#include "lab/spec.h"

static void test_order_is_seeded_permutation(void **state)
{
	(void)state;
	enum { N = 50 };
	int a[N], b[N], c[N], d[N];
	spec_round_order(42, 0, N, a);
	spec_round_order(42, 0, N, b);
	assert_memory_equal(a, b, sizeof a); /* same seed, same round: same order */
	int seen[N] = {0};
	for (int i = 0; i < N; i++) {
		assert_true(a[i] >= 0 && a[i] < N);
		seen[a[i]]++;
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(seen[i], 1); /* every cell once per round */
	spec_round_order(42, 1, N, c);
	assert_memory_not_equal(a, c, sizeof a); /* each round its own shuffle */
	spec_round_order(43, 0, N, d);
	assert_memory_not_equal(a, d, sizeof a); /* another seed, another order */
	int ident = 1;
	for (int i = 0; i < N; i++)
		ident &= a[i] == i;
	assert_false(ident); /* shuffled, not the matrix order */
	/* a known value: the order must not change between builds (resume, --dry-run) */
	int e[5];
	spec_round_order(1, 0, 5, e);
	int f[5];
	spec_round_order(1, 0, 5, f);
	assert_memory_equal(e, f, sizeof e);
	spec_round_order(7, 0, 1, e);
	assert_int_equal(e[0], 0);
}

static void test_spec_keys(void **state)
{
	(void)state;
	struct spec_catalog cat;
	spec_catalog_parse(&cat, "epoll sink echo http chat\n");
	struct spec s;
	char err[512] = "";
	const char *text = "[experiment]\nrepeat = 3\nduration = 1s\nseed = 123\nprecision = 2.5%\n"
			   "max_repeat = 7\nbudget = 2m\n[server]\nengine = epoll\nproto = sink\n"
			   "[load]\nconnections = 1 2\n";
	if (spec_parse_text(&s, text, "k.ini", &cat, 0, err, sizeof err))
		fail_msg("%s", err);
	assert_true(s.seed_set);
	assert_true(s.seed == 123);
	assert_true(fabs(s.precision - 0.025) < 1e-12);
	assert_int_equal(s.max_repeat, 7);
	assert_true(spec_budget_ns(&s, 2) == 120000000000ULL);
	spec_release(&s);
	/* defaults: precision 5%, max_repeat 3 x repeat, budget 1.5 x the fixed rounds */
	text = "[experiment]\nrepeat = 2\nduration = 1s\nwarmup = 0s\n[server]\nengine = epoll\n"
	       "proto = sink\n[load]\nconnections = 1 2\n";
	if (spec_parse_text(&s, text, "d.ini", &cat, 0, err, sizeof err))
		fail_msg("%s", err);
	assert_false(s.seed_set);
	assert_true(fabs(s.precision - 0.05) < 1e-12);
	assert_int_equal(s.max_repeat, 6);
	assert_true(spec_budget_ns(&s, 2) == spec_estimate_ns(&s, 4, 0) * 3 / 2);
	spec_quick(&s);
	assert_true(s.precision == 0); /* --quick: fixed rounds only */
	spec_release(&s);
	text = "[experiment]\nprecision = off\n[server]\nengine = epoll\nproto = sink\n";
	if (spec_parse_text(&s, text, "o.ini", &cat, 0, err, sizeof err))
		fail_msg("%s", err);
	assert_true(s.precision == 0);
	spec_release(&s);
	const char *bad[] = {"precision = 5", "precision = 0%", "precision = 101%", "seed = -1",
			     "seed = x", "max_repeat = 0", "budget = 0s"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char t[256];
		snprintf(t, sizeof t, "[experiment]\n%s\n[server]\nengine = epoll\nproto = sink\n",
			 bad[i]);
		err[0] = 0;
		assert_int_equal(spec_parse_text(&s, t, "b.ini", &cat, 0, err, sizeof err), -1);
		assert_non_null(strstr(err, "b.ini:2:"));
	}
}

static void test_precision(void **state)
{
	(void)state;
	double rel;
	const double quiet[8] = {100, 101, 99, 100, 100.5, 99.5, 100, 100};
	assert_int_equal(record_precision(quiet, 8, &rel), 1);
	assert_true(rel <= 0.01);
	/* n < 6: never reached at 95%, whatever the spread */
	assert_int_equal(record_precision(quiet, 5, &rel), 0);
	const double zero[6] = {0, 0, 0, 0, 0, 0};
	assert_int_equal(record_precision(zero, 6, &rel), 0);
	assert_true(isinf(rel));
	assert_int_equal(record_decisive_metric(2, 3), RECORD_M_REQUESTS_PER_S);
	assert_int_equal(record_decisive_metric(1, 3), RECORD_M_CPU_US_PER_REQUEST);
	assert_int_equal(record_decisive_metric(0, 0), RECORD_M_CPU_US_PER_REQUEST);
}

static void test_pick_extra(void **state)
{
	(void)state;
	const double quiet[6] = {100, 101, 99, 100, 100.5, 99.5};      /* +-1%: reached 5% */
	const double noisy[6] = {100, 160, 60, 130, 80, 110};          /* +-40%: not reached */
	const double mid[6] = {100, 108, 92, 104, 96, 100};            /* +-8% */
	const double few[3] = {100, 100, 100};                         /* n < 6: not reached */
	struct runner_cell_prec c[5] = {
		{quiet, 6, 6, 0}, {noisy, 6, 6, 0}, {mid, 6, 6, 0}, {few, 3, 3, 0}, {NULL, 0, 3, 0},
	};
	int pick[5];
	int n = runner_pick_extra(c, 5, 0.05, 9, 100, pick);
	/* the quiet cell and the cell with no value (all failed) get none; widest first */
	assert_int_equal(n, 3);
	assert_int_equal(pick[0], 3); /* not reached at 95%: first */
	assert_int_equal(pick[1], 1); /* noisy */
	assert_int_equal(pick[2], 2); /* mid */
	/* the budget: at most max_trials, the widest kept */
	assert_int_equal(runner_pick_extra(c, 5, 0.05, 9, 2, pick), 2);
	assert_int_equal(pick[0], 3);
	assert_int_equal(pick[1], 1);
	assert_int_equal(runner_pick_extra(c, 5, 0.05, 9, 0, pick), 0);
	/* max_repeat: a cell with max_repeat trials gets no more */
	c[1].trials = 9;
	c[3].trials = 9;
	n = runner_pick_extra(c, 5, 0.05, 9, 100, pick);
	assert_int_equal(n, 1);
	assert_int_equal(pick[0], 2);
	/* done (resume: this round's trial is recorded) */
	c[2].done = 1;
	assert_int_equal(runner_pick_extra(c, 5, 0.05, 9, 100, pick), 0);
	/* a looser target: mid reaches 10% */
	c[1].trials = c[3].trials = 6;
	c[2].done = 0;
	n = runner_pick_extra(c, 5, 0.10, 9, 100, pick);
	assert_int_equal(n, 2);
	assert_int_equal(pick[0], 3);
	assert_int_equal(pick[1], 1);
}

static int kept(const char *json, char *why, size_t len)
{
	json_error_t je;
	json_t *j = json_loads(json, 0, &je);
	if (!j)
		fail_msg("%s", je.text);
	why[0] = 0;
	int r = runner_rate_kept(j, why, len);
	json_decref(j);
	return r;
}

/* "could not keep its rate" means it: load JSON measured on this 2-core machine (sink at
 * 1 Mbps, 1 KiB messages; the load on its own CPU under a load average of 12) */
static void test_rate_kept(void **state)
{
	(void)state;
	char why[200];
	/* papaya's sink at 4 connections: 8 of 488 messages 1-5 ms late, the rate held exactly */
	assert_int_equal(kept("{\"target_rate_per_s\": 488.28, \"sent_rate_per_s\": 488, "
			      "\"duration_s\": 1.0, \"late_sends\": 8, \"unsent\": 0}", why,
			      sizeof why), 1);
	/* 1 connection: 19 of 122 late (16%): still held */
	assert_int_equal(kept("{\"target_rate_per_s\": 122.07, \"sent_rate_per_s\": 123, "
			      "\"duration_s\": 1.0, \"late_sends\": 19}", why, sizeof why), 1);
	/* closed loop: no target, nothing to keep */
	assert_int_equal(kept("{\"target_rate_per_s\": 0, \"sent_rate_per_s\": 50000, "
			      "\"duration_s\": 1.0, \"late_sends\": 0}", why, sizeof why), 1);
	/* fork at 64 connections: the server did not read, a backlog from the warm-up caught up
	 * (8703/s sent for 7812/s offered, 84% late) */
	assert_int_equal(kept("{\"target_rate_per_s\": 7812.5, \"sent_rate_per_s\": 8703, "
			      "\"duration_s\": 1.0, \"late_sends\": 7294}", why, sizeof why), 0);
	assert_string_equal(why, "sent [8703/s of 7812/s offered, 93% of the messages more than "
				 "1 ms late]");
	/* an open-loop rate far beyond the server: a fifth of it sent */
	assert_int_equal(kept("{\"target_rate_per_s\": 100000, \"sent_rate_per_s\": 20000, "
			      "\"duration_s\": 0.5, \"late_sends\": 30000, \"unsent\": 30000}",
			      why, sizeof why), 0);
	assert_non_null(strstr(why, "20000/s of 100000/s offered, 60%"));
	/* the rate held to the message, 64% of the messages 1-5 ms late (the load waited for its
	 * CPU on a machine at load average 13): held */
	assert_int_equal(kept("{\"target_rate_per_s\": 122.07, \"sent_rate_per_s\": 122, "
			      "\"duration_s\": 1.0, \"late_sends\": 78}", why, sizeof why), 1);
	/* the edges: 5% off either way still held, beyond not */
	assert_int_equal(kept("{\"target_rate_per_s\": 1000, \"sent_rate_per_s\": 950, "
			      "\"duration_s\": 1.0, \"late_sends\": 250}", why, sizeof why), 1);
	assert_int_equal(kept("{\"target_rate_per_s\": 1000, \"sent_rate_per_s\": 1050, "
			      "\"duration_s\": 1.0, \"late_sends\": 0}", why, sizeof why), 1);
	assert_int_equal(kept("{\"target_rate_per_s\": 1000, \"sent_rate_per_s\": 949, "
			      "\"duration_s\": 1.0, \"late_sends\": 0}", why, sizeof why), 0);
	assert_int_equal(kept("{\"target_rate_per_s\": 1000, \"sent_rate_per_s\": 1051, "
			      "\"duration_s\": 1.0, \"late_sends\": 0}", why, sizeof why), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_is_seeded_permutation),
		cmocka_unit_test(test_spec_keys),
		cmocka_unit_test(test_precision),
		cmocka_unit_test(test_pick_extra),
		cmocka_unit_test(test_rate_kept),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
