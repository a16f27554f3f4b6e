/* stats: every figure against a known value. Where each reference value comes from is said
 * next to it: a published table, R's documented output, a hand computation written out here,
 * or (for the exact U distribution) brute-force enumeration of all rank assignments with
 * Python's itertools.combinations — an independent method from the recurrence stats.c uses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <string.h>

#include "core/stats.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static void assert_close(double got, double want, double rel, const char *what)
{
	double tol = rel * fabs(want);
	if (tol < 1e-15)
		tol = 1e-15;
	if (!(fabs(got - want) <= tol))
		fail_msg("%s: got %.17g, want %.17g (rel tol %g)", what, got, want, rel);
}

/* ---- Mann-Whitney, exact -------------------------------------------------------------- */

static void test_mw_exact_small(void **state)
{
	struct stats_mw mw;
	/* R: wilcox.test(1:3, 4:6) -> W = 0, p-value = 0.1 (2 x 1/C(6,3) = 2/20) */
	double a3[] = {1, 2, 3}, b3[] = {4, 5, 6};
	assert_int_equal(stats_mann_whitney(a3, 3, b3, 3, &mw), 0);
	assert_true(mw.exact);
	assert_false(mw.ties);
	assert_close(mw.u, 9, 0, "u");
	assert_close(mw.p, 0.1, 1e-12, "p 3v3");
	/* swapped sides: same p, U mirrored */
	assert_int_equal(stats_mann_whitney(b3, 3, a3, 3, &mw), 0);
	assert_close(mw.u, 0, 0, "u swapped");
	assert_close(mw.p, 0.1, 1e-12, "p 3v3 swapped");

	/* R: wilcox.test(1:5, 6:10) -> p-value = 0.007937 (= 2/252) */
	double a5[] = {1, 2, 3, 4, 5}, b5[] = {6, 7, 8, 9, 10};
	assert_int_equal(stats_mann_whitney(a5, 5, b5, 5, &mw), 0);
	assert_close(mw.p, 2.0 / 252, 1e-12, "p 5v5");
	assert_close(round(mw.p * 1e6) / 1e6, 0.007937, 0, "p 5v5 as R prints it");

	/* Hollander & Wolfe (1973) p. 69, R's ?wilcox.test example: x = permeability constants
	 * at term, y = 12-26 weeks; wilcox.test(x, y, alternative = "g") gives W = 35 and
	 * one-sided p = 0.1272, so the two-sided p is 0.2544 (enumeration: 0.25441225441...). */
	double x[] = {0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46};
	double y[] = {1.15, 0.88, 0.90, 0.74, 1.21};
	assert_int_equal(stats_mann_whitney(x, 10, y, 5, &mw), 0);
	assert_true(mw.exact);
	assert_close(mw.u, 15, 0, "u HW"); /* #{y > x} = 50 - W */
	assert_close(mw.p, 0.2544122544122544, 1e-12, "p HW");
	assert_close(round(mw.p / 2 * 1e4) / 1e4, 0.1272, 0, "one-sided p HW as R prints it");

	/* unequal sizes, interleaved: enumeration of C(13,6) = 1716 assignments gives U = 36,
	 * two-sided p = 60/1716 = 0.034965034965... */
	double a6[] = {10.2, 11.5, 9.8, 10.9, 12.1, 10.4};
	double b7[] = {11.9, 12.8, 10.6, 13.4, 12.2, 11.1, 13.9};
	assert_int_equal(stats_mann_whitney(a6, 6, b7, 7, &mw), 0);
	assert_close(mw.u, 36, 0, "u 6v7");
	assert_close(mw.p, 0.03496503496503497, 1e-12, "p 6v7");

	/* 5 v 5, one crossing: enumeration gives U = 22, p = 14/252 = 0.0555... */
	double c5[] = {1.1, 2.3, 2.9, 4.2, 5.0}, d5[] = {3.1, 4.4, 5.2, 6.9, 8.0};
	assert_int_equal(stats_mann_whitney(c5, 5, d5, 5, &mw), 0);
	assert_close(mw.p, 14.0 / 252, 1e-12, "p c5 d5");

	/* identical distributions in the middle: U = N/2 -> p = 1 */
	double e[] = {1, 4}, f[] = {2, 3};
	assert_int_equal(stats_mann_whitney(e, 2, f, 2, &mw), 0);
	assert_close(mw.p, 1, 0, "p at the centre");
}

static void test_mw_exact_large(void **state)
{
	/* 50 v 50, complete separation: p = 2 / C(100, 50), C(100, 50) =
	 * 100891344545564193334812497256 (Python math.comb): the counts pass 2^53 and must
	 * still come out right */
	double a[50], b[50];
	for (int i = 0; i < 50; i++) {
		a[i] = i;
		b[i] = 100 + i;
	}
	struct stats_mw mw;
	assert_int_equal(stats_mann_whitney(a, 50, b, 50, &mw), 0);
	assert_true(mw.exact);
	assert_close(mw.p, 2.0 / 100891344545564193334812497256.0, 1e-9, "p 50v50");
	/* 100 v 100 is still exact (10000 pairs), 101 v 100 is not */
	double c[101], d[100];
	for (int i = 0; i < 101; i++)
		c[i] = 2 * i;
	for (int i = 0; i < 100; i++)
		d[i] = 2 * i + 1;
	/* c = 0,2,..,198, d = 1,3,..,199: U = 5050 of 10000; at this size the exact p is within
	 * 0.005 of the continuity-corrected normal one, 2 P(Z >= (50 - 0.5) / sqrt(10000*201/12))
	 * = erfc(0.120946 / sqrt 2) = 0.903732 */
	assert_int_equal(stats_mann_whitney(c, 100, d, 100, &mw), 0);
	assert_true(mw.exact);
	assert_close(mw.u, 5050, 0, "u 100v100");
	assert_true(fabs(mw.p - 0.903732) < 0.005);
	/* adding c = 200 adds no pair with d above it: U = 5050 = 10100 / 2 exactly, z = 0, p = 1 */
	assert_int_equal(stats_mann_whitney(c, 101, d, 100, &mw), 0);
	assert_false(mw.exact);
	assert_close(mw.u, 5050, 0, "u 101v100");
	assert_close(mw.z, 0, 0, "z 101v100");
	assert_close(mw.p, 1, 0, "p 101v100");
}

/* ---- Mann-Whitney, normal approximation ------------------------------------------------ */

static void test_mw_ties_normal(void **state)
{
	/* Hand computation. a = {1,2,2,3}, b = {2,3,4,5}. Pooled ranks: 1 -> 1; the three 2s share
	 * ranks 2..4 -> 3; the two 3s share 5..6 -> 5.5; 4 -> 7; 5 -> 8. W_b = 3+5.5+7+8 = 23.5,
	 * U_b = 23.5 - 4*5/2 = 13.5. Ties: t = 3 and 2, sum(t^3 - t) = 24 + 6 = 30.
	 * sigma^2 = 4*4/12 * ((8+1) - 30/(8*7)) = 4/3 * 237/28 = 79/7.
	 * z = (13.5 - 8 - 0.5) / sqrt(79/7) = 1.4883513944689680, p = erfc(z/sqrt 2) =
	 * 0.13665824773814753 (R's wilcox.test(correct = TRUE) formula). */
	double a[] = {1, 2, 2, 3}, b[] = {2, 3, 4, 5};
	struct stats_mw mw;
	assert_int_equal(stats_mann_whitney(a, 4, b, 4, &mw), 0);
	assert_false(mw.exact);
	assert_true(mw.ties);
	assert_close(mw.u, 13.5, 0, "u ties");
	assert_close(mw.z, 1.488351394468968, 1e-12, "z ties");
	assert_close(mw.p, 0.13665824773814753, 1e-10, "p ties");
	/* the other way round: z negative, same p */
	assert_int_equal(stats_mann_whitney(b, 4, a, 4, &mw), 0);
	assert_close(mw.z, -1.488351394468968, 1e-12, "z ties swapped");
	assert_close(mw.p, 0.13665824773814753, 1e-10, "p ties swapped");
	/* everything equal: sigma = 0, p = 1 */
	double c[] = {7, 7, 7}, d[] = {7, 7};
	assert_int_equal(stats_mann_whitney(c, 3, d, 2, &mw), 0);
	assert_close(mw.p, 1, 0, "p all equal");
}

/* ---- Hodges-Lehmann -------------------------------------------------------------------- */

static void test_hl_textbook(void **state)
{
	/* Hollander & Wolfe's permeability data (as above): the 50 differences y - x have median
	 * -0.305 (R's wilcox.test(x, y, conf.int = TRUE) reports the location difference of x - y
	 * as 0.305). Exact CI: 2 P(U <= 8) = 0.03996 <= 0.05 < 2 P(U <= 9), so k = 9 and the CI is
	 * [D(9), D(42)] = [-0.76, 0.15] with coverage 1 - 0.03996 = 0.96004 (enumeration). */
	double x[] = {0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46};
	double y[] = {1.15, 0.88, 0.90, 0.74, 1.21};
	struct stats_shift s;
	assert_int_equal(stats_hodges_lehmann(x, 10, y, 5, 0.95, &s), 0);
	assert_true(s.exact);
	assert_true(s.reached);
	assert_close(s.shift, -0.305, 1e-12, "HL HW");
	assert_int_equal(s.k, 9);
	assert_close(s.lo, -0.76, 1e-12, "HL HW lo");
	assert_close(s.hi, 0.15, 1e-12, "HL HW hi");
	assert_close(s.confidence, 0.9600399600399601, 1e-12, "HL HW coverage");
}

static void test_hl_hand(void **state)
{
	/* a = {1,2,4}, b = {3,5,9}: differences b - a = 2,1,-1, 4,3,1, 8,7,5; sorted
	 * -1,1,1,2,3,4,5,7,8 -> median 3. 3 v 3 cannot reach 95 %: 2 P(U <= 0) = 2/20 = 0.1,
	 * so the CI is the full range [-1, 8] with coverage 0.9, flagged. */
	double a[] = {1, 2, 4}, b[] = {3, 5, 9};
	struct stats_shift s;
	assert_int_equal(stats_hodges_lehmann(a, 3, b, 3, 0.95, &s), 0);
	assert_close(s.shift, 3, 0, "HL hand");
	assert_false(s.reached);
	assert_int_equal(s.k, 1);
	assert_close(s.lo, -1, 0, "lo");
	assert_close(s.hi, 8, 0, "hi");
	assert_close(s.confidence, 0.9, 1e-12, "coverage 3v3");
	/* at 90 % the same interval is reached exactly */
	assert_int_equal(stats_hodges_lehmann(a, 3, b, 3, 0.90, &s), 0);
	assert_true(s.reached);

	/* 5 v 5: P(U <= 2) = 4/252, P(U <= 3) = 7/252 (U counts 1,1,2,3,...), so k = 3 and the
	 * coverage is 1 - 8/252 = 0.968254 (Hollander & Wolfe Table A.6: C = 3 for m = n = 5 at
	 * 1 - alpha = .968). c5, d5: sorted differences give D(3) = -0.6, D(23) = 5.7, median 2.3
	 * (enumeration). */
	double c5[] = {1.1, 2.3, 2.9, 4.2, 5.0}, d5[] = {3.1, 4.4, 5.2, 6.9, 8.0};
	assert_int_equal(stats_hodges_lehmann(c5, 5, d5, 5, 0.95, &s), 0);
	assert_int_equal(s.k, 3);
	assert_close(s.shift, 2.3, 1e-12, "HL 5v5");
	assert_close(s.lo, -0.6, 1e-12, "HL 5v5 lo");
	assert_close(s.hi, 5.7, 1e-12, "HL 5v5 hi");
	assert_close(s.confidence, 1 - 8.0 / 252, 1e-12, "HL 5v5 coverage");

	/* a shift of exactly 10 recovers exactly 10 with a CI around it */
	double p[] = {3, 1, 4, 1.5, 5, 9, 2.6}, q[7];
	for (int i = 0; i < 7; i++)
		q[i] = p[i] + 10;
	assert_int_equal(stats_hodges_lehmann(p, 7, q, 7, 0.95, &s), 0);
	assert_close(s.shift, 10, 1e-12, "HL pure shift");
	assert_true(s.lo < 10 && s.hi > 10);
}

static void test_hl_ties_normal(void **state)
{
	/* with ties, k comes from the normal approximation: a = {1,2,2,3}, b = {2,3,4,5}:
	 * sigma = sqrt(79/7), k = floor(16/2 + 0.5 - 1.959964 * 3.359422) = floor(1.9157) = 1;
	 * differences (b = 2: 1,0,0,-1; 3: 2,1,1,0; 4: 3,2,2,1; 5: 4,3,3,2) sorted:
	 * -1,0,0,0,1,1,1,1,2,2,2,2,3,3,3,4 -> median (1 + 2)/2 = 1.5, CI [D(1), D(16)] = [-1, 4] */
	double a[] = {1, 2, 2, 3}, b[] = {2, 3, 4, 5};
	struct stats_shift s;
	assert_int_equal(stats_hodges_lehmann(a, 4, b, 4, 0.95, &s), 0);
	assert_false(s.exact);
	assert_true(s.reached);
	assert_int_equal(s.k, 1);
	assert_close(s.shift, 1.5, 0, "HL ties");
	assert_close(s.lo, -1, 0, "lo");
	assert_close(s.hi, 4, 0, "hi");
	/* coverage 1 - 2 Phi((1 - 0.5 - 8) / sigma) = 1 - 2 Phi(-2.232527) = 0.974420 */
	assert_close(s.confidence, 0.97442, 1e-4, "coverage ties");

	/* where the continuity correction moves k: a = {1,2,2,3,4,5}, b = {2,...,7}. Tied groups
	 * 2 (x3), 3, 4, 5 (x2 each): sum(t^3 - t) = 24 + 3*6 = 42; sigma^2 = 36/12 (13 - 42/132)
	 * = 38.045455, z sigma = 1.959964 * 6.168100 = 12.089259; k = floor(18 + 0.5 - 12.089259)
	 * = 6 (without the +0.5 it would be 5); coverage 1 - 2 Phi((6 - 0.5 - 18) / sigma) =
	 * 0.957292. Sorted differences: D(6) = -1, D(31) = 4; median 2. */
	double c[] = {1, 2, 2, 3, 4, 5}, d[] = {2, 3, 4, 5, 6, 7};
	assert_int_equal(stats_hodges_lehmann(c, 6, d, 6, 0.95, &s), 0);
	assert_false(s.exact);
	assert_int_equal(s.k, 6);
	assert_close(s.lo, -1, 0, "lo cc");
	assert_close(s.hi, 4, 0, "hi cc");
	assert_close(s.shift, 2, 0, "HL cc");
	assert_close(s.confidence, 0.9572921670758195, 1e-9, "coverage cc");
}

/* ---- median CI ------------------------------------------------------------------------- */

static void test_median_ci_table(void **state)
{
	/* Ranks of the distribution-free 95 % CI of a median, n = 6..20: Campbell & Gardner,
	 * "Calculating confidence intervals for some non-parametric analyses", BMJ 1988;
	 * 296:1454 (Table 1; also "Statistics with Confidence", Table 18.4), recomputed here as
	 * the largest l with 2 P(Bin(n, 1/2) <= l - 1) <= 0.05, coverage 1 - 2 P(B <= l - 1). */
	static const struct {
		size_t n, l, u;
		double cov;
	} t[] = {
		{6, 1, 6, 0.96875},          {7, 1, 7, 0.984375},
		{8, 1, 8, 0.9921875},        {9, 2, 8, 0.9609375},
		{10, 2, 9, 0.978515625},     {11, 2, 10, 0.98828125},
		{12, 3, 10, 0.96142578125},  {13, 3, 11, 0.9775390625},
		{14, 3, 12, 0.987060546875}, {15, 4, 12, 0.96484375},
		{16, 4, 13, 0.978729248046875}, {17, 5, 13, 0.950958251953125},
		{18, 5, 14, 0.9691162109375},   {19, 5, 15, 0.9807891845703125},
		{20, 6, 15, 0.9586105346679688},
	};
	double x[20];
	for (size_t i = 0; i < N_OF(t); i++) {
		/* values 10, 20, ..., in reverse order: x(r) = 10 r after sorting */
		for (size_t j = 0; j < t[i].n; j++)
			x[j] = 10.0 * (double)(t[i].n - j);
		struct stats_median_ci m;
		assert_int_equal(stats_median_ci(x, t[i].n, 0.95, &m), 0);
		assert_true(m.reached);
		assert_int_equal(m.lo_rank, t[i].l);
		assert_int_equal(m.hi_rank, t[i].u);
		assert_close(m.lo, 10.0 * (double)t[i].l, 0, "lo value");
		assert_close(m.hi, 10.0 * (double)t[i].u, 0, "hi value");
		assert_close(m.confidence, t[i].cov, 1e-12, "coverage");
		assert_close(m.median, 10.0 * (double)(t[i].n + 1) / 2, 1e-15, "median");
	}
	/* n < 6 cannot reach 95 %: full range, flagged, coverage 1 - 2^(1-n) */
	for (size_t n = 1; n < 6; n++) {
		struct stats_median_ci m;
		assert_int_equal(stats_median_ci(x, n, 0.95, &m), 0);
		assert_false(m.reached);
		assert_int_equal(m.lo_rank, 1);
		assert_int_equal(m.hi_rank, n);
		assert_close(m.confidence, 1 - pow(2, 1 - (double)n), 1e-15, "small n coverage");
	}
	/* a coverage equal to the level counts as reaching it: n = 3 at 75 %, 1 - 2/8 = 0.75 */
	{
		struct stats_median_ci m3;
		assert_int_equal(stats_median_ci(x, 3, 0.75, &m3), 0);
		assert_true(m3.reached);
		assert_close(m3.confidence, 0.75, 0, "coverage = level");
	}
	/* large n: for n = 10001 the exact rank is 4902: 2 P(B <= 4901) = 0.047709,
	 * 2 P(B <= 4902) = 0.0500018 > 0.05 (exact sums of Python math.comb as fractions) */
	static double big[10001];
	for (size_t i = 0; i < N_OF(big); i++)
		big[i] = (double)i;
	struct stats_median_ci m;
	assert_int_equal(stats_median_ci(big, N_OF(big), 0.95, &m), 0);
	assert_int_equal(m.lo_rank, 4902);
	assert_int_equal(m.hi_rank, 5100);
	assert_close(m.median, 5000, 0, "median big");
}

/* ---- quantiles, Tukey fences, describe ------------------------------------------------- */

static void test_quantile_type7(void **state)
{
	/* R: quantile(c(1, 3, 7, 15), 0.4, type = 7) = 3.8 (h = 1.2: 3 + 0.2 * 4) */
	double x[] = {15, 1, 7, 3};
	double q;
	assert_int_equal(stats_quantile(x, 4, 0.4, &q), 0);
	assert_close(q, 3.8, 1e-15, "q.4");
	assert_int_equal(stats_quantile(x, 4, 0, &q), 0);
	assert_close(q, 1, 0, "q0");
	assert_int_equal(stats_quantile(x, 4, 1, &q), 0);
	assert_close(q, 15, 0, "q1");
	assert_int_equal(stats_quantile(x, 4, 1.01, &q), -EINVAL);
	/* the input was not sorted in place */
	assert_true(x[0] == 15 && x[1] == 1 && x[2] == 7 && x[3] == 3);
}

static void test_tukey(void **state)
{
	/* R: quantile(c(1:9, 100), c(.25, .75)) = 3.25, 7.75; IQR 4.5; fences -3.5, 14.5 */
	double x[] = {100, 1, 2, 3, 4, 5, 6, 7, 8, 9};
	signed char fl[10];
	struct stats_fences f;
	assert_int_equal(stats_tukey(x, 10, fl, &f), 0);
	assert_close(f.q1, 3.25, 1e-15, "q1");
	assert_close(f.q3, 7.75, 1e-15, "q3");
	assert_close(f.iqr, 4.5, 1e-15, "iqr");
	assert_close(f.low, -3.5, 1e-15, "low");
	assert_close(f.high, 14.5, 1e-15, "high");
	assert_int_equal(f.n_high, 1);
	assert_int_equal(f.n_low, 0);
	assert_int_equal(fl[0], 1);
	for (int i = 1; i < 10; i++)
		assert_int_equal(fl[i], 0);
	/* a value exactly on the fence is kept: same quartiles with 14.5 in place of 100 */
	x[0] = 14.5;
	assert_int_equal(stats_tukey(x, 10, fl, &f), 0);
	assert_close(f.high, 14.5, 1e-15, "high again");
	assert_int_equal(f.n_high, 0);
	assert_int_equal(fl[0], 0);
	/* a low outlier */
	double y[] = {10, 11, 12, 13, 14, -50};
	assert_int_equal(stats_tukey(y, 6, NULL, &f), 0);
	assert_int_equal(f.n_low, 1);
	assert_int_equal(f.n_high, 0);
}

static void test_describe(void **state)
{
	double x[] = {2, 4, 4, 4, 5, 5, 7, 9};
	struct stats_summary s;
	signed char fl[8];
	assert_int_equal(stats_describe(x, 8, 0.95, fl, &s), 0);
	assert_int_equal(s.n, 8);
	assert_close(s.mean, 5, 1e-15, "mean");
	/* sum of squares 32, / (n - 1) = 32/7 */
	assert_close(s.stddev, sqrt(32.0 / 7), 1e-15, "stddev");
	assert_close(s.min, 2, 0, "min");
	assert_close(s.max, 9, 0, "max");
	assert_close(s.median.median, 4.5, 0, "median");
	assert_int_equal(s.median.lo_rank, 1);
	assert_close(s.median.lo, 2, 0, "median lo");
	assert_close(s.median.hi, 9, 0, "median hi");
	double one = 3;
	assert_int_equal(stats_describe(&one, 1, 0.95, NULL, &s), 0);
	assert_close(s.stddev, 0, 0, "stddev n=1");
	assert_false(s.median.reached);
}

/* ---- Holm ------------------------------------------------------------------------------- */

static void test_holm(void **state)
{
	/* Worked example: p = 0.01, 0.04, 0.03, 0.005 (m = 4). Sorted 0.005, 0.01, 0.03, 0.04 ->
	 * 4*0.005 = 0.02, 3*0.01 = 0.03, 2*0.03 = 0.06, 1*0.04 = 0.04 -> monotone max 0.06.
	 * R: p.adjust(c(.01, .04, .03, .005), "holm") = 0.03 0.06 0.06 0.02 */
	double p[] = {0.01, 0.04, 0.03, 0.005}, adj[4];
	assert_int_equal(stats_holm(p, 4, adj), 0);
	assert_close(adj[0], 0.03, 1e-12, "holm 0");
	assert_close(adj[1], 0.06, 1e-12, "holm 1");
	assert_close(adj[2], 0.06, 1e-12, "holm 2");
	assert_close(adj[3], 0.02, 1e-12, "holm 3");
	assert_close(p[1], 0.04, 0, "input untouched");
	/* capped at 1, in place, ties kept equal */
	double q[] = {0.5, 0.6, 0.5};
	assert_int_equal(stats_holm(q, 3, q), 0);
	assert_close(q[0], 1, 0, "cap 0");
	assert_close(q[1], 1, 0, "cap 1");
	assert_close(q[2], 1, 0, "cap 2");
	/* one test: unchanged */
	double r = 0.03;
	assert_int_equal(stats_holm(&r, 1, &r), 0);
	assert_close(r, 0.03, 0, "m = 1");
	double bad[] = {0.1, NAN};
	assert_int_equal(stats_holm(bad, 2, adj), -EINVAL);
	double bad2[] = {1.5};
	assert_int_equal(stats_holm(bad2, 1, adj), -EINVAL);
}

/* ---- decisions, minimum n ---------------------------------------------------------------- */

static void test_significant(void **state)
{
	unsigned why = 99;
	assert_int_equal(stats_significant(0.01, 0.5, 2.0, 0.10, 10, 10, 0.05, 0.02, &why), 1);
	assert_int_equal(why, 0);
	/* each condition alone */
	assert_int_equal(stats_significant(0.05, 0.5, 2.0, 0.10, 10, 10, 0.05, 0.02, &why), 0);
	assert_int_equal(why, STATS_FAIL_P); /* p = alpha is not below alpha */
	assert_int_equal(stats_significant(0.01, -0.5, 2.0, 0.10, 10, 10, 0.05, 0.02, &why), 0);
	assert_int_equal(why, STATS_FAIL_CI);
	assert_int_equal(stats_significant(0.01, 0, 2.0, 0.10, 10, 10, 0.05, 0.02, &why), 0);
	assert_int_equal(why, STATS_FAIL_CI); /* a bound at 0 does not exclude 0 */
	assert_int_equal(stats_significant(0.01, 0.5, 2.0, 0.02, 10, 10, 0.05, 0.02, &why), 0);
	assert_int_equal(why, STATS_FAIL_FLOOR); /* on the floor is not above it */
	assert_int_equal(stats_significant(0.01, -2.0, -0.5, -0.30, 10, 10, 0.05, 0.02, &why), 1);
	assert_int_equal(stats_significant(0.01, -2.0, -0.5, NAN, 10, 10, 0.05, 0.02, &why), 0);
	assert_int_equal(why, STATS_FAIL_FLOOR);
	/* all three */
	assert_int_equal(stats_significant(0.5, -1, 1, 0.001, 10, 10, 0.05, 0.02, &why), 0);
	assert_int_equal(why, STATS_FAIL_P | STATS_FAIL_CI | STATS_FAIL_FLOOR);
	assert_int_equal(stats_significant(NAN, -1, 1, 0.001, 10, 10, 0.05, 0.02, &why), -EINVAL);
	assert_int_equal(stats_significant(0.01, -1, 1, 0.001, 10, 10, 0, 0.02, &why), -EINVAL);
	assert_int_equal(stats_significant(0.01, -1, 1, 0.001, 10, 10, 0.05, -1, &why), -EINVAL);
	assert_string_equal(stats_fail_name(STATS_FAIL_P), "p");
	assert_string_equal(stats_fail_name(STATS_FAIL_CI), "ci");
	assert_string_equal(stats_fail_name(STATS_FAIL_FLOOR), "noise floor");
	assert_string_equal(stats_fail_name(STATS_FAIL_N), "n");
	assert_string_equal(stats_fail_name(16), "?");
	/* n: 3 v 3 can never reach 0.05 (smallest exact p 0.1), 4 v 4 can (2/70) */
	assert_int_equal(stats_significant(0.01, 0.5, 2.0, 0.10, 3, 3, 0.05, 0.02, &why), 0);
	assert_int_equal(why, STATS_FAIL_N);
	assert_int_equal(stats_significant(0.01, 0.5, 2.0, 0.10, 4, 4, 0.05, 0.02, &why), 1);
	assert_int_equal(stats_significant(0.01, 0.5, 2.0, 0.10, 0, 4, 0.05, 0.02, &why), -EINVAL);
	/* the case the n condition exists for: ties in tiny samples push the normal
	 * approximation below what any exact test allows. a = {1,1,1}, b = {2,2,2}: U = 9,
	 * sum(t^3 - t) = 48, sigma^2 = 9/12 (7 - 48/30) = 4.05, z = 4/sqrt(4.05) = 1.987616,
	 * p = erfc(z/sqrt 2) = 0.046854 < 0.05; HL = 1 with CI [1, 1]: every other condition holds */
	double t1[] = {1, 1, 1}, t2[] = {2, 2, 2};
	struct stats_compare c;
	assert_int_equal(stats_compare(t1, 3, t2, 3, 0.95, &c), 0);
	assert_false(c.mw.exact);
	assert_close(c.mw.p, 0.046854177603873774, 1e-10, "tiny tied p");
	assert_close(c.hl.lo, 1, 0, "tiny tied lo");
	assert_int_equal(stats_significant(c.mw.p, c.hl.lo, c.hl.hi, c.rel_shift, 3, 3, 0.05, 0.02,
					   &why), 0);
	assert_int_equal(why, STATS_FAIL_N);
}

static void test_min_n(void **state)
{
	/* smallest exact two-sided p = 2 / C(2n, n): n = 3 -> 2/20 = 0.1, n = 4 -> 2/70 */
	assert_close(stats_mw_min_p(3, 3), 0.1, 1e-15, "min p 3");
	assert_close(stats_mw_min_p(4, 4), 2.0 / 70, 1e-15, "min p 4");
	assert_close(stats_mw_min_p(2, 20), 2.0 / 231, 1e-15, "min p 2v20");
	assert_close(stats_mw_min_p(1, 1), 1, 0, "min p 1v1 capped");
	assert_true(isnan(stats_mw_min_p(0, 3)));
	size_t n = 0;
	assert_int_equal(stats_mw_min_n(0.05, &n), 0);
	assert_int_equal(n, 4);
	/* Holm over 7 metrics: need 2 / C(2n, n) < 0.05 / 7 = 0.00714: C(10,5) = 252 gives
	 * 0.00794 (not enough), C(12,6) = 924 gives 0.00216 -> 6 */
	assert_int_equal(stats_mw_min_n(0.05 / 7, &n), 0);
	assert_int_equal(n, 6);
	assert_int_equal(stats_mw_min_n(0, &n), -EINVAL);
	assert_int_equal(stats_mw_min_n(1e-300, &n), -ERANGE);
	/* consistency with the test itself: at the minimum n, complete separation is below
	 * alpha, one n less is not */
	double a4[] = {1, 2, 3, 4}, b4[] = {5, 6, 7, 8};
	struct stats_mw mw;
	assert_int_equal(stats_mann_whitney(a4, 4, b4, 4, &mw), 0);
	assert_true(mw.p < 0.05);
	assert_close(mw.p, stats_mw_min_p(4, 4), 1e-12, "min p reached");
}

/* ---- compare ------------------------------------------------------------------------------ */

static void test_compare(void **state)
{
	/* c5 -> d5 as in test_hl_hand: median a 2.9, median b 5.2, HL 2.3, rel 2.3/2.9 */
	double a[] = {1.1, 2.3, 2.9, 4.2, 5.0}, b[] = {3.1, 4.4, 5.2, 6.9, 8.0};
	struct stats_compare c;
	assert_int_equal(stats_compare(a, 5, b, 5, 0.95, &c), 0);
	assert_close(c.a.median, 2.9, 0, "median a");
	assert_close(c.b.median, 5.2, 0, "median b");
	assert_false(c.a.reached); /* n = 5 < 6 */
	assert_close(c.hl.shift, 2.3, 1e-12, "shift");
	assert_close(c.rel_shift, 2.3 / 2.9, 1e-12, "rel shift");
	assert_close(c.mw.p, 14.0 / 252, 1e-12, "p");
	unsigned why;
	assert_int_equal(stats_significant(c.mw.p, c.hl.lo, c.hl.hi, c.rel_shift, 5, 5, 0.05, 0.02, &why), 0);
	assert_int_equal(why, STATS_FAIL_P | STATS_FAIL_CI);
	/* median a = 0: relative shift is infinite with the sign of the shift */
	double z[] = {-1, 0, 1}, w[] = {5, 6, 7};
	assert_int_equal(stats_compare(z, 3, w, 3, 0.95, &c), 0);
	assert_true(isinf(c.rel_shift) && c.rel_shift > 0);
}

/* ---- bad input -------------------------------------------------------------------------- */

static void test_bad_input(void **state)
{
	double x[] = {1, 2, 3}, nan_x[] = {1, NAN, 3}, inf_x[] = {1, INFINITY};
	struct stats_median_ci m;
	struct stats_mw mw;
	struct stats_shift s;
	struct stats_fences f;
	struct stats_summary sum;
	assert_int_equal(stats_median_ci(x, 0, 0.95, &m), -EINVAL);
	assert_int_equal(stats_median_ci(NULL, 3, 0.95, &m), -EINVAL);
	assert_int_equal(stats_median_ci(nan_x, 3, 0.95, &m), -EINVAL);
	assert_int_equal(stats_median_ci(x, 3, 1.0, &m), -EINVAL);
	assert_int_equal(stats_median_ci(x, 3, 0, &m), -EINVAL);
	assert_int_equal(stats_mann_whitney(x, 3, x, 0, &mw), -EINVAL);
	assert_int_equal(stats_mann_whitney(x, 3, inf_x, 2, &mw), -EINVAL);
	assert_int_equal(stats_hodges_lehmann(x, 0, x, 3, 0.95, &s), -EINVAL);
	assert_int_equal(stats_hodges_lehmann(x, 3, nan_x, 3, 0.95, &s), -EINVAL);
	assert_int_equal(stats_tukey(x, 0, NULL, &f), -EINVAL);
	assert_int_equal(stats_describe(inf_x, 2, 0.95, NULL, &sum), -EINVAL);
	assert_int_equal(stats_holm(x, 0, x), -EINVAL);
	/* too many pairs for the HL differences: refused before reading or allocating anything
	 * (the sizes are checked before the values, so x is never read past its 3 entries) */
	assert_int_equal(stats_hodges_lehmann(x, (size_t)STATS_MAX_PAIRS, x, 2, 0.95, &s), -E2BIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mw_exact_small),  cmocka_unit_test(test_mw_exact_large),
		cmocka_unit_test(test_mw_ties_normal),  cmocka_unit_test(test_hl_textbook),
		cmocka_unit_test(test_hl_hand),         cmocka_unit_test(test_hl_ties_normal),
		cmocka_unit_test(test_median_ci_table), cmocka_unit_test(test_quantile_type7),
		cmocka_unit_test(test_tukey),           cmocka_unit_test(test_describe),
		cmocka_unit_test(test_holm),            cmocka_unit_test(test_significant),
		cmocka_unit_test(test_min_n),           cmocka_unit_test(test_compare),
		cmocka_unit_test(test_bad_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
