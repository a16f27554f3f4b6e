/* report: cell statistics, chart points and generated findings from known trial records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <limits.h>
#include <sys/resource.h>
#include <string.h>

#include <cmocka.h>

#include "report/compare.h"
#include "report/report.h"
#include "report/svg.h"
#include "report/trials.h"
#include "core/stats.h"
#include <math.h>

static void test_stats(void **state)
{
	(void)state;
	struct trials_stat st;
	double v[] = {2, 4, 4, 4, 5, 5, 7, 9};
	trials_stat_compute(&st, v, 8);
	assert_int_equal(st.n, 8);
	assert_true(st.mean == 5);
	/* sample stddev: sqrt(32/7) */
	assert_true(st.sd > 2.1380899 && st.sd < 2.1380900);
	assert_true(st.cv > 0.4276179 && st.cv < 0.4276181);
	assert_true(st.min == 2 && st.max == 9);
	trials_stat_compute(&st, v, 1);
	assert_true(st.sd == 0 && st.cv == 0);
	trials_stat_compute(&st, v, 0);
	assert_int_equal(st.n, 0);
}

/* median, its 95 % CI from order statistics and Tukey flags of a known sample */
static void test_stats_median_ci_outliers(void **state)
{
	(void)state;
	struct trials_stat st;
	double v[] = {2, 4, 4, 4, 5, 5, 7, 9};
	signed char fl[8];
	trials_stat_compute_flags(&st, v, 8, fl);
	assert_true(st.median == 4.5);
	/* n = 8: ranks 1..8 cover 1 - 2/256; ranks 2..7 only 1 - 18/256 < 95 % */
	assert_true(st.ci_lo == 2 && st.ci_hi == 9 && st.ci_reached == 1);
	assert_true(fabs(st.ci_conf - (1 - 2.0 / 256)) < 1e-12);
	/* q1 = 4, q3 = 5.5 (type 7), fences 1.75 and 7.75: 9 is the one outlier, above */
	assert_int_equal(st.n_outliers, 1);
	for (int i = 0; i < 7; i++)
		assert_int_equal(fl[i], 0);
	assert_int_equal(fl[7], 1);
	/* n = 3 cannot reach 95 %: the range, at 1 - 2^(1-3) = 75 % */
	double w[] = {3, 1, 2};
	trials_stat_compute(&st, w, 3);
	assert_true(st.median == 2 && st.ci_lo == 1 && st.ci_hi == 3);
	assert_int_equal(st.ci_reached, 0);
	assert_true(fabs(st.ci_conf - 0.75) < 1e-12);
	assert_int_equal(st.n_outliers, 0);
}

/* the ratio of medians with the CI of the Hodges-Lehmann shift of the logs */
static void test_ratio_ci(void **state)
{
	(void)state;
	double a[] = {10, 11, 12, 13, 14, 15, 16, 17}, b[8], la[8], lb[8];
	for (int i = 0; i < 8; i++) {
		b[i] = 0.5 * a[i];
		la[i] = log(a[i]);
		lb[i] = log(b[i]);
	}
	struct trials_ratio r;
	assert_int_equal(trials_ratio_of(a, 8, b, 8, &r), 0);
	assert_true(fabs(r.ratio - 0.5) < 1e-12); /* medians 6.75 / 13.5 */
	struct stats_shift hl;
	assert_int_equal(stats_hodges_lehmann(la, 8, lb, 8, 0.95, &hl), 0);
	assert_true(fabs(r.lo - exp(hl.lo)) < 1e-12 && fabs(r.hi - exp(hl.hi)) < 1e-12);
	assert_true(r.lo < 0.5 && r.hi > 0.5 && r.hi < 1); /* excludes 1: b is cheaper */
	assert_int_equal(r.reached, 1);
	assert_true(r.conf >= 0.95);
	assert_int_equal(r.na, 8);
	assert_int_equal(r.nb, 8);
	/* a constant factor with no spread: the CI collapses on it */
	double c[] = {10, 10, 10, 10, 10, 10}, d[] = {3, 3, 3, 3, 3, 3};
	assert_int_equal(trials_ratio_of(c, 6, d, 6, &r), 0);
	assert_true(fabs(r.ratio - 0.3) < 1e-12 && fabs(r.lo - 0.3) < 1e-12 && fabs(r.hi - 0.3) < 1e-12);
	/* 3 vs 3 cannot reach 95 %: reached is 0 (the report says so instead of a CI) */
	assert_int_equal(trials_ratio_of(a, 3, b, 3, &r), 0);
	assert_int_equal(r.reached, 0);
	assert_true(r.conf < 0.95);
	/* no log of 0: -EDOM */
	double z[] = {0, 1, 2};
	assert_int_equal(trials_ratio_of(z, 3, b, 3, &r), -EDOM);
	assert_int_equal(trials_ratio_of(a, 0, b, 3, &r), -EINVAL);
}

#define EREC(t, eng, v)                                                                             \
	"{\"trial\":" #t ",\"repeat\":0,\"cell\":\"engine=" eng "\",\"params\":{\"engine\":\"" eng "\"},"    \
	"\"status\":\"ok\",\"server_cpu\":{\"total_cores\":" v ",\"us_per_request\":" v "}}\n"

/* with 6 trials per engine the finding's ratio carries its CI and the medians theirs */
static void test_findings_ratio_ci(void **state)
{
	(void)state;
	static const char j[] = EREC(0, "fork", "0.80") EREC(1, "epoll", "0.20") EREC(2, "fork", "0.81")
		EREC(3, "epoll", "0.21") EREC(4, "fork", "0.79") EREC(5, "epoll", "0.19")
		EREC(6, "fork", "0.82") EREC(7, "epoll", "0.20") EREC(8, "fork", "0.78")
		EREC(9, "epoll", "0.22") EREC(10, "fork", "0.80") EREC(11, "epoll", "0.18");
	struct trials t;
	char err[256];
	assert_int_equal(trials_load_text(&t, j, err, sizeof err), 0);
	struct trials_ratio r;
	assert_int_equal(trials_ratio_ci(&t, 0, 1, RECORD_M_CPU_US_PER_REQUEST, &r), 0);
	assert_int_equal(r.reached, 1);
	assert_true(fabs(r.ratio - 0.25) < 1e-12 && r.lo < 0.25 && r.hi > 0.25 && r.hi < 0.3);
	char want[256], lo[64], hi[64];
	snprintf(want, sizeof want, "epoll 0.2 [0.18, 0.22] us/request (0.25× fork [%s, %s]), fork 0.8 [0.78, 0.82] us/request.",
		 svg_fmt_num(r.lo, lo, sizeof lo), svg_fmt_num(r.hi, hi, sizeof hi));
	struct buf f = BUF_INIT;
	report_findings(&t, &f);
	buf_append(&f, "", 1);
	assert_non_null(strstr(buf_head(&f), want));
	assert_null(strstr(buf_head(&f), "too few"));
	buf_free(&f);
	trials_release(&t);
}

#define OREC(t, cores)                                                                              \
	"{\"trial\":" #t ",\"repeat\":" #t ",\"cell\":\"engine=fork\",\"params\":{\"engine\":\"fork\"},"   \
	"\"status\":\"ok\",\"server_cpu\":{\"total_cores\":" cores "}}\n"

/* an outlying trial is flagged per record and metric, listed in the report and kept in the mean */
static void test_outlier_flagged_not_dropped(void **state)
{
	(void)state;
	static const char o[] = OREC(0, "1.0") OREC(1, "1.1") OREC(2, "0.9") OREC(3, "1.0")
		OREC(4, "1.05") OREC(5, "5.0");
	struct trials t;
	char err[256];
	assert_int_equal(trials_load_text(&t, o, err, sizeof err), 0);
	assert_int_equal(t.ncells, 1);
	const struct trials_stat *st = &t.cells[0].st[RECORD_M_CPU_CORES];
	assert_int_equal(st->n, 6);
	assert_int_equal(st->n_outliers, 1);
	assert_true(fabs(st->mean - 10.05 / 6) < 1e-9); /* kept */
	for (int r = 0; r < 5; r++)
		assert_int_equal(t.outlier[r * RECORD_NMETRICS + RECORD_M_CPU_CORES], 0);
	assert_int_equal(t.outlier[5 * RECORD_NMETRICS + RECORD_M_CPU_CORES], 1);
	struct buf b = BUF_INIT;
	report_csv(&t, &b);
	buf_append(&b, "", 1);
	assert_non_null(strstr(buf_head(&b), ",outliers,"));
	assert_non_null(strstr(buf_head(&b), ",cpu_cores:high,"));
	buf_clear(&b);
	report_md(&t, &b);
	buf_append(&b, "", 1);
	assert_non_null(strstr(buf_head(&b), "- trial 5 (engine=fork): cpu_cores high (5)"));
	/* n = 6 reaches 95 %: ranks 1..6, 1 - 2/64 */
	assert_non_null(strstr(buf_head(&b), "| 1.025 [0.9, 5] 96.9% |"));
	buf_free(&b);
	trials_release(&t);
}

#define REC(t, r, eng, conns, cores, status)                                                         \
	"{\"trial\":" #t ",\"repeat\":" #r ",\"cell\":\"engine=" eng " proto=http connections=" conns  \
	"\",\"params\":{\"engine\":\"" eng "\",\"proto\":\"http\",\"connections\":\"" conns "\"},"    \
	"\"status\":\"" status "\",\"reason\":\"boom\",\"server_cpu\":{\"total_cores\":" cores        \
	",\"peak_cores\":" cores ",\"us_per_request\":" cores "},\"throughput\":{\"requests_per_s\":100}}\n"

static const char jsonl[] = REC(0, 0, "fork", "4", "0.40", "ok") REC(1, 0, "epoll", "4", "0.20", "ok")
	REC(2, 0, "fork", "16", "0.80", "ok") REC(3, 0, "epoll", "16", "0.20", "ok")
	REC(4, 1, "fork", "4", "0.60", "ok") REC(5, 1, "epoll", "4", "0.20", "ok")
	REC(6, 1, "fork", "16", "0.80", "ok") REC(7, 1, "epoll", "16", "9.99", "failed")
	"{\"trial\": 8, \"trunc";

static void test_cells_and_findings(void **state)
{
	(void)state;
	struct trials t;
	char err[256];
	assert_int_equal(trials_load_text(&t, jsonl, err, sizeof err), 0);
	assert_int_equal(t.nrec, 8);
	assert_int_equal(t.bad_lines, 1);
	assert_int_equal(t.ncells, 4);
	const struct trials_cell *fork4 = &t.cells[0], *epoll16 = &t.cells[3];
	assert_string_equal(fork4->key, "engine=fork proto=http connections=4");
	assert_true(fork4->st[RECORD_M_CPU_CORES].mean > 0.4999 && fork4->st[RECORD_M_CPU_CORES].mean < 0.5001);
	assert_int_equal(epoll16->ntrials, 2);
	assert_int_equal(epoll16->nok, 1);
	assert_string_equal(epoll16->fail_reason, "boom");
	assert_true(epoll16->st[RECORD_M_CPU_CORES].mean == 0.2); /* the failed 9.99 is not averaged */
	assert_int_equal(epoll16->st[RECORD_M_P99_US].n, 0);      /* absent metric: no value */

	struct buf f = BUF_INIT;
	int n = report_findings(&t, &f);
	buf_append(&f, "", 1);
	assert_true(n >= 2);
	/* at the largest connection count: 0.2 / 0.8 */
	assert_non_null(strstr(buf_head(&f), "at 16 connections, proto=http: median server CPU per request [95% CI] — "
					     "epoll 0.2 [0.2, 0.2] us/request (0.25× fork), "
					     "fork 0.8 [0.8, 0.8] us/request — n=1 to 2 per cell, too few for a 95% CI of a "
					     "median: each interval is the range of the trials; a ratio without an "
					     "interval has too few trials for one"));
	assert_non_null(strstr(buf_head(&f), "1 trial(s) failed; first reason: boom"));
	buf_free(&f);

	/* the HTML has one circle per cell with data, per chart */
	struct buf h = BUF_INIT;
	report_html(&t, &h);
	buf_append(&h, "", 1);
	int circles = 0;
	for (const char *p = buf_head(&h); (p = strstr(p, "<circle class=\"pt\"")); p++)
		circles++;
	/* cpu_cores, cpu_us_per_request, requests_per_s: 4 points each; ctxsw, p99: no data */
	assert_int_equal(circles, 12);
	assert_null(strstr(buf_head(&h), "<script"));
	buf_free(&h);

	/* compare the two engines: the Hodges-Lehmann shift in % of fork's median; with 1-2
	 * trials per side nothing can be significant, and the report says so */
	struct buf c = BUF_INIT;
	assert_int_equal(compare_trials(&t, "fork", &t, "epoll", "fork", "epoll", &c, err, sizeof err), 2);
	buf_append(&c, "", 1);
	/* 4 conns: fork {0.4, 0.6}, epoll {0.2, 0.2}: shift median{-0.2, -0.4, -0.2, -0.4} = -0.3 */
	assert_non_null(strstr(buf_head(&c), "A 0.5 [0.4, 0.6] n=2  B 0.2 [0.2, 0.2] n=2  ~ (-60.0%"));
	/* 16 conns: fork {0.8, 0.8}, epoll {0.2} (the failed 9.99 left out): -0.6 / 0.8 */
	assert_non_null(strstr(buf_head(&c), "B 0.2 [0.2, 0.2] n=1  ~ (-75.0%"));
	assert_non_null(strstr(buf_head(&c), "SIGNIFICANT (0)"));
	assert_non_null(strstr(buf_head(&c), "warning: with 2 repeats per side no difference can be significant"));
	buf_free(&c);
	trials_release(&t);
}

/* report and compare read through lab/record: a record of a newer schema major version is
 * refused with the reason (a report of figures it may misread would be wrong), older ones are
 * read (no "schema" = 1.0) */
static void test_newer_schema_refused(void **state)
{
	(void)state;
	struct trials t;
	char err[256] = "";
	static const char newer[] = REC(0, 0, "fork", "4", "0.40", "ok")
		"{\"schema\": \"2.0\", \"trial\": 1, \"repeat\": 0, \"cell\": \"x\", \"status\": \"ok\"}\n";
	assert_int_equal(trials_load_text(&t, newer, err, sizeof err), -EPROTONOSUPPORT);
	assert_non_null(strstr(err, "record 2"));
	assert_non_null(strstr(err, "schema 2.0"));
	assert_int_equal(t.nrec, 0); /* released */
	static const char older[] = "{\"schema\": \"1.0\", \"trial\": 0, \"repeat\": 0, \"cell\": \"x\","
		" \"status\": \"ok\", \"server_cpu\": {\"total_cores\": 0.5}}\n";
	assert_int_equal(trials_load_text(&t, older, err, sizeof err), 0);
	assert_int_equal(t.nrec, 1);
	assert_true(t.cells[0].st[RECORD_M_CPU_CORES].mean == 0.5);
	trials_release(&t);
}

/* an allocation that fails is an error returned to the caller, never die() (which would end
 * this test's process with status 1): a trial set whose per-record buffer cannot be had under
 * a 1 GiB address-space limit */
static void test_compare_out_of_memory_is_an_error(void **state)
{
	(void)state;
#ifdef CTXLAB_SANITIZED
	/* ASan reserves terabytes of shadow address space (RLIMIT_AS breaks it) and aborts on a
	 * failed allocation instead of returning NULL */
	printf("SKIP: out-of-memory paths cannot be provoked under ASan (RLIMIT_AS)\n");
	skip();
#endif
	struct rlimit rl = {1UL << 30, 1UL << 30};
	if (setrlimit(RLIMIT_AS, &rl) < 0) {
		printf("SKIP: setrlimit(RLIMIT_AS): %s\n", strerror(errno));
		skip();
	}
	struct trials t;
	memset(&t, 0, sizeof t);
	t.nrec = INT_MAX - 1; /* (nrec + 1) doubles: 16 GiB */
	struct buf out = BUF_INIT;
	char err[256] = "";
	assert_int_equal(compare_trials(&t, "a", &t, "b", NULL, NULL, &out, err, sizeof err), -1);
	assert_string_equal(err, "out of memory");
	buf_free(&out);
}

static void test_svg_escape_and_points(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	const char *xl[] = {"1", "4"};
	const char *names[] = {"a<b", "c"};
	struct svg_point pts[4] = {{1, 1, 0.9, 1.1, "t&1"}, {0, 0, 0, 0, NULL}, {1, 2, 0, 0, "x"}, {1, 3, 0, 0, "y"}};
	struct svg_chart ch = {"id\"", "T", "Y", "X", 2, xl, 2, names, pts};
	assert_int_equal(svg_line_chart(&b, &ch), 3);
	buf_append(&b, "", 1);
	assert_non_null(strstr(buf_head(&b), "<title>t&amp;1</title>"));
	assert_non_null(strstr(buf_head(&b), "a&lt;b"));
	assert_non_null(strstr(buf_head(&b), "id=\"id&quot;\""));
	buf_free(&b);
}

/* cells in matrix order (cell_index) whatever the run order; the precision reached per cell:
 * the decisive figure's CI half-width / median, CPU per request, or throughput when most of the
 * cell's trials were saturated */
#define PREC(k, ci, conns, cores, upr, rps) \
	"{\"schema\": \"1.2\", \"trial\": " #k ", \"repeat\": " #k ", \"cell_index\": " #ci \
	", \"cell\": \"engine=epoll connections=" #conns "\", \"params\": {\"engine\": " \
	"\"epoll\", \"connections\": \"" #conns "\"}, \"status\": \"ok\", \"placement\": " \
	"{\"server_ncpus\": 1}, \"server_cpu\": {\"total_cores\": " #cores ", " \
	"\"us_per_request\": " #upr "}, \"throughput\": {\"requests_per_s\": " #rps "}}\n"

static void test_cell_order_and_precision(void **state)
{
	(void)state;
	static const char text[] =
		PREC(0, 1, 64, 0.95, 10, 100) PREC(1, 0, 1, 0.1, 100, 1000)
		PREC(2, 1, 64, 0.97, 30, 110) PREC(3, 0, 1, 0.1, 101, 1000)
		PREC(4, 1, 64, 0.99, 50, 120) PREC(5, 0, 1, 0.1, 99, 1000)
		PREC(6, 1, 64, 0.5, 70, 100) PREC(7, 0, 1, 0.1, 100, 1000)
		PREC(8, 1, 64, 0.96, 90, 100) PREC(9, 0, 1, 0.1, 102, 1000)
		PREC(10, 1, 64, 0.98, 60, 100) PREC(11, 0, 1, 0.1, 98, 1000);
	struct trials t;
	char err[256];
	assert_int_equal(trials_load_text(&t, text, err, sizeof err), 0);
	assert_int_equal(t.ncells, 2);
	/* the first record is of cell_index 1: still listed second */
	assert_string_equal(t.cells[0].key, "engine=epoll connections=1");
	assert_string_equal(t.cells[1].key, "engine=epoll connections=64");
	assert_int_equal(t.rec_cell[0], 1);
	assert_int_equal(t.rec_cell[1], 0);
	/* connections=1: CPU per request {98..102}, n = 6: CI = range, half-width 2 / median 100 */
	assert_int_equal(t.cells[0].decisive, RECORD_M_CPU_US_PER_REQUEST);
	assert_int_equal(t.cells[0].precision_n, 6);
	assert_true(t.cells[0].precision_reached);
	assert_true(fabs(t.cells[0].precision - 0.02) < 1e-12);
	/* connections=64: 5 of 6 saturated: throughput {100,100,100,100,110,120}: median 100,
	 * CI [100, 120]: half-width 10 / 100 */
	assert_int_equal(t.cells[1].decisive, RECORD_M_REQUESTS_PER_S);
	assert_true(fabs(t.cells[1].precision - 0.10) < 1e-12);
	assert_true(t.cells[1].precision_reached);
	trials_release(&t);
	/* n < 6: never reached, the range's half-width */
	static const char few[] = PREC(0, 0, 1, 0.1, 90, 1000) PREC(1, 0, 1, 0.1, 110, 1000);
	assert_int_equal(trials_load_text(&t, few, err, sizeof err), 0);
	assert_int_equal(t.cells[0].precision_n, 2);
	assert_false(t.cells[0].precision_reached);
	assert_true(fabs(t.cells[0].precision - 0.10) < 1e-12);
	trials_release(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stats),
		cmocka_unit_test(test_cell_order_and_precision),
		cmocka_unit_test(test_stats_median_ci_outliers),
		cmocka_unit_test(test_ratio_ci),
		cmocka_unit_test(test_findings_ratio_ci),
		cmocka_unit_test(test_outlier_flagged_not_dropped),
		cmocka_unit_test(test_cells_and_findings),
		cmocka_unit_test(test_newer_schema_refused),
		cmocka_unit_test(test_compare_out_of_memory_is_an_error),
		cmocka_unit_test(test_svg_escape_and_points),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
