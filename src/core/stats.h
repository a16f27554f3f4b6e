/* stats: distribution-free statistics for repeated measurements (benchstat's method).
 *
 * One trial = one sample value; never feed pooled per-request latencies. Every function:
 *  - takes caller-owned arrays and never modifies them (sorting is done on a private copy),
 *  - keeps no global state (safe from any thread on distinct outputs),
 *  - returns 0 on success or a negative errno: -EINVAL for an empty sample, a NULL pointer,
 *    a non-finite value or a level/alpha outside (0, 1); -ENOMEM when a copy cannot be
 *    allocated; -E2BIG when the pairwise differences of two samples would exceed
 *    STATS_MAX_PAIRS. Outputs are written only on success.
 * No I/O. Definitions of every figure: docs/metrics.md, "Statistics".
 *
 * Typical use (compare, one cell x metric):
 *   struct stats_compare c;
 *   stats_compare(a, na, b, nb, 0.95, &c);      // medians + CIs, HL shift + CI, MW p
 *   ... collect c.mw.p of every metric of the cell, stats_holm() them ...
 *   unsigned why; int sig = stats_significant(p_adj, c.hl.lo, c.hl.hi, c.rel_shift, na, nb,
 *                                             STATS_ALPHA, STATS_NOISE_FLOOR, &why);
 */
#ifndef CTXLAB_CORE_STATS_H
#define CTXLAB_CORE_STATS_H

#include <stddef.h>

/* Mann-Whitney p-values and the Hodges-Lehmann CI are exact (the U distribution, counted)
 * when the pooled sample has no ties and n_a * n_b <= STATS_EXACT_MAX_PAIRS; otherwise the
 * normal approximation with tie and continuity correction is used. */
#define STATS_EXACT_MAX_PAIRS 10000u
/* Upper bound on n_a * n_b for the Hodges-Lehmann estimate (one double per pair: 128 MiB). */
#define STATS_MAX_PAIRS (1u << 24)
/* Default practical threshold: |relative shift| must exceed 2 % to be called significant. */
#define STATS_NOISE_FLOOR 0.02
#define STATS_ALPHA 0.05

/* ---- one sample ------------------------------------------------------------------- */

/* Median of x[0..n) (mean of the two middle values when n is even) with the distribution-free
 * CI from order statistics (binomial method): [x(l), x(u)], u = n + 1 - l, 1-based ranks of
 * the sorted sample, l the largest rank whose coverage 1 - 2 P(Bin(n, 1/2) <= l - 1) is at
 * least `level`. `confidence` is that achieved coverage (>= level). When even l = 1 cannot
 * reach `level` (level 0.95: n < 6), `reached` is 0, the CI is the full range [min, max]
 * (l = 1, u = n) and `confidence` is its coverage, 1 - 2^(1-n). */
struct stats_median_ci {
	size_t n;
	double median;
	double lo, hi;          /* CI bounds: x(lo_rank), x(hi_rank) */
	size_t lo_rank, hi_rank; /* 1-based order-statistic ranks */
	double confidence;      /* achieved coverage in [0, 1] */
	int reached;            /* 1: confidence >= level; 0: n too small, full range returned */
};
int stats_median_ci(const double *x, size_t n, double level, struct stats_median_ci *out);

/* Quantile of x[0..n) at probability p in [0, 1], type 7 (R's default, Excel's PERCENTILE):
 * h = (n - 1) p, q = x(floor h) + (h - floor h) (x(floor h + 1) - x(floor h)), 0-based. */
int stats_quantile(const double *x, size_t n, double p, double *out);

/* Tukey fences: q1, q3 (type 7), iqr = q3 - q1, low = q1 - 1.5 iqr, high = q3 + 1.5 iqr.
 * flags (may be NULL; else n entries, caller-owned) gets -1 for x[i] < low, +1 for
 * x[i] > high, 0 otherwise (a value on a fence is not an outlier). Nothing is dropped. */
struct stats_fences {
	double q1, q3, iqr, low, high;
	size_t n_low, n_high;   /* outliers below / above */
};
int stats_tukey(const double *x, size_t n, signed char *flags, struct stats_fences *out);

/* One-sample summary: n, mean, sample stddev (n - 1; 0 when n = 1), min, max, the median
 * with its CI at `level`, and the Tukey fences (flags as for stats_tukey, may be NULL). */
struct stats_summary {
	size_t n;
	double mean, stddev, min, max;
	struct stats_median_ci median;
	struct stats_fences fences;
};
int stats_describe(const double *x, size_t n, double level, signed char *flags,
		   struct stats_summary *out);

/* ---- two samples ------------------------------------------------------------------ */

/* Two-sided Mann-Whitney U test (Wilcoxon rank-sum) of a against b.
 * u = #{(i, j): b[j] > a[i]} + 0.5 #{(i, j): b[j] == a[i]}, in [0, n_a n_b] (u > n_a n_b / 2:
 * b tends to be larger). Exact (ties == 0 and n_a n_b <= STATS_EXACT_MAX_PAIRS):
 * p = min(1, 2 min(P(U <= u), P(U >= u))) from the exact null distribution of U, as R's
 * wilcox.test(exact = TRUE). Otherwise z = (u - n_a n_b / 2 - sign * 0.5) / sigma with
 * sigma^2 = n_a n_b / 12 ((N + 1) - sum(t^3 - t) / (N (N - 1))), N = n_a + n_b, t the sizes of
 * the groups of tied values, p = 2 P(Z >= |z|) (R's wilcox.test(correct = TRUE)); p = 1
 * when sigma = 0 (all values equal). */
struct stats_mw {
	double u;
	double p;        /* two-sided p-value in [0, 1] */
	double z;        /* the normal approximation's z; 0 when exact */
	int exact;       /* 1: exact distribution, 0: normal approximation */
	int ties;        /* 1: the pooled sample has tied values */
};
int stats_mann_whitney(const double *a, size_t na, const double *b, size_t nb,
		       struct stats_mw *out);

/* Hodges-Lehmann shift of b relative to a: the median of the n_a n_b differences
 * b[j] - a[i], with its distribution-free CI [D(k), D(n_a n_b + 1 - k)] from the sorted
 * differences D (1-based), k the largest rank with 2 P(U <= k - 1) <= 1 - level: exact U
 * distribution under the same rule as stats_mann_whitney, else the normal approximation
 * with tie and continuity correction (k = floor(n_a n_b / 2 + 0.5 - z sigma)). When no k >= 1
 * qualifies (level 0.95: n_a = n_b = 3), `reached` is 0 and the CI is [min D, max D] (k = 1).
 * `confidence` is the achieved coverage 1 - 2 P(U <= k - 1) (approximate when !exact).
 * -E2BIG when n_a n_b > STATS_MAX_PAIRS. */
struct stats_shift {
	double shift;
	double lo, hi;
	size_t k;           /* CI = [D(k), D(N + 1 - k)] */
	double confidence;
	int exact;
	int reached;
};
int stats_hodges_lehmann(const double *a, size_t na, const double *b, size_t nb, double level,
			 struct stats_shift *out);

/* Everything compare needs for one cell x metric: both medians with CIs, the HL shift with
 * CI, rel_shift = shift / |median of a| (+-inf when that median is 0 and the shift is not,
 * 0 when both are 0), and the Mann-Whitney test. */
struct stats_compare {
	struct stats_median_ci a, b;
	struct stats_shift hl;
	double rel_shift;
	struct stats_mw mw;
};
int stats_compare(const double *a, size_t na, const double *b, size_t nb, double level,
		  struct stats_compare *out);

/* ---- several tests ---------------------------------------------------------------- */

/* Holm-Bonferroni: adj[i] for p[i], m = n: with p sorted ascending p(1) <= ... <= p(m),
 * adj(i) = max over j <= i of min(1, (m - j + 1) p(j)) (monotone, capped at 1; R's
 * p.adjust(method = "holm")). adj may alias p. -EINVAL when a p is outside [0, 1] or NaN. */
int stats_holm(const double *p, size_t n, double *adj);

/* ---- decisions -------------------------------------------------------------------- */

/* Why a difference was not called significant (bits of *why). */
#define STATS_FAIL_P     1u   /* adjusted p >= alpha */
#define STATS_FAIL_CI    2u   /* the shift's CI includes 0 */
#define STATS_FAIL_FLOOR 4u   /* |rel_shift| <= noise floor (or rel_shift is NaN) */
#define STATS_FAIL_N     8u   /* n_a, n_b too small: stats_mw_min_p(n_a, n_b) >= alpha */

/* Significant iff p_adjusted < alpha AND the shift CI excludes 0 (ci_lo > 0 or ci_hi < 0)
 * AND |rel_shift| > noise_floor AND an exact test with n_a and n_b values could reach
 * p < alpha at all (stats_mw_min_p(n_a, n_b) < alpha). The last condition guards the normal
 * approximation, which with ties in tiny samples can give p below what any exact test
 * allows (a = {1,1,1}, b = {2,2,2}: p = 0.047, exact conditional p = 0.1).
 * Returns 1 (significant) or 0, with every failed condition in *why (0 when significant; why
 * may be NULL); -EINVAL when alpha is outside (0, 1], noise_floor is negative or NaN,
 * p_adjusted / a CI bound is NaN, or n_a or n_b is 0. */
int stats_significant(double p_adjusted, double ci_lo, double ci_hi, double rel_shift,
		      size_t na, size_t nb, double alpha, double noise_floor, unsigned *why);

/* Short text of one STATS_FAIL_* bit ("p", "ci", "noise floor", "n"); "?" for anything else. */
const char *stats_fail_name(unsigned bit);

/* The smallest two-sided p-value an exact Mann-Whitney test can give with n_a and n_b values
 * (all of one side above the other): min(1, 2 / C(n_a + n_b, n_a)). n = 3 per side: 0.1.
 * Returns NaN when n_a or n_b is 0. */
double stats_mw_min_p(size_t na, size_t nb);

/* The smallest n (per side, equal sizes) with stats_mw_min_p(n, n) < alpha: 4 for alpha 0.05.
 * Pass alpha / m for m metrics under Holm (the smallest p is multiplied by m). -EINVAL when
 * alpha is outside (0, 1], -ERANGE when no n <= 500 suffices. */
int stats_mw_min_n(double alpha, size_t *n);

#endif
