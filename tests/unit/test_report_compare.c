/* compare: the rows of cell x metric on synthetic trial records (one trial = one value). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/json.h"
#include "report/compare.h"
#include "report/trials.h"

/* n records of engine `eng`: us_per_request = base + step * i, requests_per_s = 100 */
static void gen(struct buf *b, const char *eng, int n, double base, double step)
{
	for (int i = 0; i < n; i++)
		buf_appendf(b, "{\"schema\": \"1.1\", \"trial\": %d, \"repeat\": %d, \"cell\": "
			    "\"engine=%s proto=http\", \"params\": {\"engine\": \"%s\", \"proto\": "
			    "\"http\"}, \"status\": \"ok\", \"server_cpu\": {\"us_per_request\": %.17g}, "
			    "\"throughput\": {\"requests_per_s\": 100}}\n",
			    i, i, eng, eng, base + step * i);
}

static void load(struct trials *t, const char *eng, int n, double base, double step)
{
	struct buf b = BUF_INIT;
	char err[256];
	gen(&b, eng, n, base, step);
	buf_append(&b, "", 1);
	assert_int_equal(trials_load_text(t, buf_head(&b), err, sizeof err), 0);
	buf_free(&b);
}

static const struct compare_row *row(const struct compare_result *r, int metric)
{
	for (int i = 0; i < r->nrows; i++)
		if (r->rows[i].metric == metric)
			return &r->rows[i];
	fail_msg("no row for metric %d", metric);
	return NULL;
}

/* B costs 20% more per request, 8 trials per side with no overlap: significant; throughput is
 * identical on both sides: not significant, for every reason */
static void test_clear_shift_is_significant(void **state)
{
	(void)state;
	struct trials a, b;
	load(&a, "fork", 8, 10, 0.01);
	load(&b, "fork", 8, 12, 0.01);
	struct compare_opts o = COMPARE_OPTS_INIT;
	struct compare_result r;
	compare_result_init(&r);
	char err[256];
	assert_int_equal(compare_run(&a, &b, NULL, NULL, &o, &r, err, sizeof err), 1);
	assert_int_equal(r.nrows, 2); /* the metrics both sides have */
	assert_int_equal(r.nsig, 1);
	assert_int_equal(r.short_cells, 0);
	const struct compare_row *c = row(&r, RECORD_M_CPU_US_PER_REQUEST);
	assert_int_equal(c->na, 8);
	assert_int_equal(c->m_tested, 2);
	assert_true(c->significant);
	assert_int_equal(c->why, 0);
	assert_true(c->c.hl.shift > 1.9999 && c->c.hl.shift < 2.0001);
	assert_true(c->c.rel_shift > 0.19 && c->c.rel_shift < 0.21);
	/* exact p = 2 / C(16, 8); Holm over 2 metrics doubles the smallest */
	assert_true(fabs(c->c.mw.p - 2.0 / 12870) < 1e-12);
	assert_true(fabs(c->p_adj - 4.0 / 12870) < 1e-12);
	const struct compare_row *t = row(&r, RECORD_M_REQUESTS_PER_S);
	assert_false(t->significant);
	assert_int_equal(t->why, STATS_FAIL_P | STATS_FAIL_CI | STATS_FAIL_FLOOR);
	/* text: the significant row first, the other marked '~' */
	struct buf out = BUF_INIT;
	compare_text(&r, "A", "B", &o, &out);
	buf_append(&out, "", 1);
	const char *s = buf_head(&out);
	const char *sig = strstr(s, "SIGNIFICANT (1)"), *cpu = strstr(s, "cpu_us_per_request");
	const char *rest = strstr(s, "NO SIGNIFICANT DIFFERENCE (~) (1)");
	const char *rps = strstr(s, "requests_per_s");
	assert_non_null(sig);
	assert_non_null(rest);
	assert_true(sig < cpu && cpu < rest && rest < rps);
	assert_non_null(strstr(rps, "~ (+0.0%, p=1; not: p, ci, noise floor)"));
	assert_null(strstr(s, "warning"));
	buf_free(&out);
	/* JSON: rows, significant first, with the keys compare documents */
	struct jw w;
	jw_init(&w);
	compare_json(&r, "A", "B", &o, &w);
	assert_false(w.oom);
	json_error_t je;
	json_t *j = json_loadb(w.buf, w.len, 0, &je);
	assert_non_null(j);
	json_t *rows = json_object_get(j, "rows");
	assert_int_equal(json_array_size(rows), 2);
	json_t *r0 = json_array_get(rows, 0);
	assert_string_equal(json_string_value(json_object_get(r0, "metric")), "cpu_us_per_request");
	assert_true(json_is_true(json_object_get(r0, "significant")));
	assert_int_equal(json_array_size(json_object_get(r0, "ci_a")), 2);
	assert_int_equal(json_array_size(json_object_get(json_array_get(rows, 1), "why_not")), 3);
	json_decref(j);
	jw_release(&w);
	compare_result_release(&r);
	trials_release(&a);
	trials_release(&b);
}

/* the same samples on both sides: nothing significant */
static void test_identical_samples_are_not(void **state)
{
	(void)state;
	struct trials a;
	load(&a, "fork", 10, 10, 0.5);
	struct compare_opts o = COMPARE_OPTS_INIT;
	struct compare_result r;
	compare_result_init(&r);
	char err[256];
	assert_int_equal(compare_run(&a, &a, NULL, NULL, &o, &r, err, sizeof err), 1);
	assert_int_equal(r.nsig, 0);
	const struct compare_row *c = row(&r, RECORD_M_CPU_US_PER_REQUEST);
	assert_false(c->significant);
	assert_true(c->c.hl.shift == 0);
	assert_true(c->why & STATS_FAIL_P);
	assert_true(c->why & STATS_FAIL_CI);
	assert_true(c->why & STATS_FAIL_FLOOR);
	compare_result_release(&r);
	trials_release(&a);
}

/* 3 trials per side, B twice A: an exact p cannot go below 0.1, so not significant, and the
 * warning says how many repeats would do (alpha / 2 metrics: C(10, 5) = 252 > 2 / 0.025) */
static void test_three_per_side_warns(void **state)
{
	(void)state;
	struct trials a, b;
	load(&a, "fork", 3, 10, 0.1);
	load(&b, "fork", 3, 20, 0.1);
	struct compare_opts o = COMPARE_OPTS_INIT;
	struct compare_result r;
	compare_result_init(&r);
	char err[256];
	assert_int_equal(compare_run(&a, &b, NULL, NULL, &o, &r, err, sizeof err), 1);
	assert_int_equal(r.nsig, 0);
	const struct compare_row *c = row(&r, RECORD_M_CPU_US_PER_REQUEST);
	assert_false(c->significant);
	assert_true(c->why & STATS_FAIL_N);
	assert_int_equal(r.short_cells, 1);
	assert_int_equal(r.short_need, 5);
	struct buf out = BUF_INIT;
	compare_text(&r, "A", "B", &o, &out);
	buf_append(&out, "", 1);
	assert_non_null(strstr(buf_head(&out),
			       "warning: with 3 repeats per side no difference can be significant at "
			       "0.05 after Holm over 2 metrics: use at least 5 repeats; decide n in "
			       "advance, do not rerun until significant"));
	buf_free(&out);
	compare_result_release(&r);
	trials_release(&a);
	trials_release(&b);
}

/* a 3% shift is significant over the 2% default floor; an A/A pair that moved 5% raises the
 * floor of that metric to 5% and the same shift is not */
static void test_noise_run_raises_the_floor(void **state)
{
	(void)state;
	struct trials a, a2, b;
	load(&a, "fork", 8, 10, 0.001);
	load(&a2, "fork", 8, 10.5, 0.001);
	load(&b, "fork", 8, 10.3, 0.001);
	struct compare_opts o = COMPARE_OPTS_INIT;
	struct compare_result r;
	char err[256];
	compare_result_init(&r);
	assert_int_equal(compare_run(&a, &b, NULL, NULL, &o, &r, err, sizeof err), 1);
	assert_true(row(&r, RECORD_M_CPU_US_PER_REQUEST)->significant);
	compare_result_release(&r);
	o.noise = &a2;
	assert_int_equal(compare_run(&a, &b, NULL, NULL, &o, &r, err, sizeof err), 1);
	assert_int_equal(r.noise_pairs, 1);
	assert_true(r.floor[RECORD_M_CPU_US_PER_REQUEST] > 0.0499 &&
		    r.floor[RECORD_M_CPU_US_PER_REQUEST] < 0.0501);
	assert_true(r.floor[RECORD_M_REQUESTS_PER_S] == 0.02); /* no shift there: the default */
	const struct compare_row *c = row(&r, RECORD_M_CPU_US_PER_REQUEST);
	assert_false(c->significant);
	assert_int_equal(c->why, STATS_FAIL_FLOOR);
	compare_result_release(&r);
	trials_release(&a);
	trials_release(&a2);
	trials_release(&b);
}

/* --engines: cells matched by every parameter but the engine, inside one trial set */
static void test_two_engines_of_one_run(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	gen(&b, "fork", 6, 10, 0.01);
	gen(&b, "epoll", 6, 5, 0.01);
	buf_append(&b, "", 1);
	struct trials t;
	char err[256];
	assert_int_equal(trials_load_text(&t, buf_head(&b), err, sizeof err), 0);
	struct compare_opts o = COMPARE_OPTS_INIT;
	struct compare_result r;
	compare_result_init(&r);
	assert_int_equal(compare_run(&t, &t, "fork", "epoll", &o, &r, err, sizeof err), 1);
	const struct compare_row *c = row(&r, RECORD_M_CPU_US_PER_REQUEST);
	assert_string_equal(c->cell_a, "engine=fork proto=http");
	assert_string_equal(c->cell_b, "engine=epoll proto=http");
	assert_true(c->significant);
	assert_true(c->c.rel_shift < -0.49 && c->c.rel_shift > -0.51);
	compare_result_release(&r);
	assert_int_equal(compare_run(&t, &t, "fork", "nope", &o, &r, err, sizeof err), -1);
	assert_non_null(strstr(err, "'nope'"));
	compare_result_release(&r);
	trials_release(&t);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clear_shift_is_significant),
		cmocka_unit_test(test_identical_samples_are_not),
		cmocka_unit_test(test_three_per_side_warns),
		cmocka_unit_test(test_noise_run_raises_the_floor),
		cmocka_unit_test(test_two_engines_of_one_run),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
