/* stats: medians with order-statistic CIs, Hodges-Lehmann shifts, Mann-Whitney U, Holm,
 * Tukey fences. libc + libm only; see stats.h for the contracts. */
#include "core/stats.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Coverage comparisons tolerate rounding of the level itself (0.95 is not exact in binary). */
#define LEVEL_EPS 1e-12

static int cmp_double(const void *pa, const void *pb)
{
	double a = *(const double *)pa, b = *(const double *)pb;
	return (a > b) - (a < b);
}

static int all_finite(const double *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(x[i]))
			return 0;
	return 1;
}

static int check_sample(const double *x, size_t n)
{
	return x && n && all_finite(x, n) ? 0 : -EINVAL;
}

static int check_level(double level)
{
	return level > 0 && level < 1 ? 0 : -EINVAL;
}

/* A sorted private copy of x[0..n); NULL on ENOMEM. */
static double *sorted_copy(const double *x, size_t n)
{
	double *s = malloc(n * sizeof *s);
	if (!s)
		return NULL;
	memcpy(s, x, n * sizeof *s);
	qsort(s, n, sizeof *s, cmp_double);
	return s;
}

/* median of sorted s[0..n), n >= 1 */
static double sorted_median(const double *s, size_t n)
{
	return n % 2 ? s[n / 2] : s[n / 2 - 1] + (s[n / 2] - s[n / 2 - 1]) / 2;
}

/* type 7 quantile of sorted s[0..n), n >= 1, p in [0, 1] */
static double sorted_quantile(const double *s, size_t n, double p)
{
	double h = (double)(n - 1) * p;
	size_t i = (size_t)floor(h);
	if (i >= n - 1)
		return s[n - 1];
	return s[i] + (h - (double)i) * (s[i + 1] - s[i]);
}

/* P(Z <= z), standard normal */
static double norm_cdf(double z)
{
	return 0.5 * erfc(-z / M_SQRT2);
}

/* z with P(Z <= z) = p, 0 < p < 1: bisection to double precision (only a few calls per
 * comparison, so simplicity wins over a rational approximation). */
static double norm_quantile(double p)
{
	double lo = -40, hi = 40;
	for (int i = 0; i < 200 && hi - lo > 0; i++) {
		double mid = lo + (hi - lo) / 2;
		if (mid == lo || mid == hi)
			break;
		if (norm_cdf(mid) < p)
			lo = mid;
		else
			hi = mid;
	}
	return lo + (hi - lo) / 2;
}

/* ---- one sample -------------------------------------------------------------------- */

/* Order-statistic CI of the median from sorted s: fills everything but median. */
static void median_ci_sorted(const double *s, size_t n, double level, struct stats_median_ci *o)
{
	double alpha = 1 - level;
	/* cum = P(B <= j) for B ~ Bin(n, 1/2), pmf in log space so that large n cannot
	 * underflow the running product */
	double logpmf = -(double)n * M_LN2, cum = exp(logpmf);
	size_t l = 0;
	/* rank l is allowed when 2 P(B <= l - 1) <= alpha; P(B <= j) for j = l - 1 */
	for (size_t j = 0; j < n && 2 * cum <= alpha * (1 + LEVEL_EPS); j++) {
		l = j + 1;
		logpmf += log((double)(n - j) / (double)(j + 1));
		cum += exp(logpmf);
	}
	if (l == 0) {
		o->reached = 0;
		l = 1;
	} else {
		o->reached = 1;
	}
	/* coverage of [x(l), x(n + 1 - l)]: 1 - 2 P(B <= l - 1), recomputed exactly for l */
	double c = 0, lp = -(double)n * M_LN2;
	for (size_t j = 0; j < l; j++) {
		c += exp(lp);
		lp += log((double)(n - j) / (double)(j + 1));
	}
	o->n = n;
	o->lo_rank = l;
	o->hi_rank = n + 1 - l;
	o->lo = s[l - 1];
	o->hi = s[n - l];
	o->confidence = 1 - 2 * c;
	if (o->confidence < 0)
		o->confidence = 0;
}

int stats_median_ci(const double *x, size_t n, double level, struct stats_median_ci *out)
{
	if (check_sample(x, n) || check_level(level) || !out)
		return -EINVAL;
	double *s = sorted_copy(x, n);
	if (!s)
		return -ENOMEM;
	struct stats_median_ci o;
	median_ci_sorted(s, n, level, &o);
	o.median = sorted_median(s, n);
	free(s);
	*out = o;
	return 0;
}

int stats_quantile(const double *x, size_t n, double p, double *out)
{
	if (check_sample(x, n) || !(p >= 0 && p <= 1) || !out)
		return -EINVAL;
	double *s = sorted_copy(x, n);
	if (!s)
		return -ENOMEM;
	*out = sorted_quantile(s, n, p);
	free(s);
	return 0;
}

static void fences_sorted(const double *s, size_t n, struct stats_fences *f)
{
	f->q1 = sorted_quantile(s, n, 0.25);
	f->q3 = sorted_quantile(s, n, 0.75);
	f->iqr = f->q3 - f->q1;
	f->low = f->q1 - 1.5 * f->iqr;
	f->high = f->q3 + 1.5 * f->iqr;
}

static void flag_outliers(const double *x, size_t n, signed char *flags, struct stats_fences *f)
{
	f->n_low = f->n_high = 0;
	for (size_t i = 0; i < n; i++) {
		signed char v = x[i] < f->low ? -1 : x[i] > f->high ? 1 : 0;
		f->n_low += v < 0;
		f->n_high += v > 0;
		if (flags)
			flags[i] = v;
	}
}

int stats_tukey(const double *x, size_t n, signed char *flags, struct stats_fences *out)
{
	if (check_sample(x, n) || !out)
		return -EINVAL;
	double *s = sorted_copy(x, n);
	if (!s)
		return -ENOMEM;
	struct stats_fences f;
	fences_sorted(s, n, &f);
	free(s);
	flag_outliers(x, n, flags, &f);
	*out = f;
	return 0;
}

int stats_describe(const double *x, size_t n, double level, signed char *flags,
		   struct stats_summary *out)
{
	if (check_sample(x, n) || check_level(level) || !out)
		return -EINVAL;
	double *s = sorted_copy(x, n);
	if (!s)
		return -ENOMEM;
	struct stats_summary o;
	o.n = n;
	o.min = s[0];
	o.max = s[n - 1];
	double sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += x[i];
	o.mean = sum / (double)n;
	double ss = 0;
	for (size_t i = 0; i < n; i++)
		ss += (x[i] - o.mean) * (x[i] - o.mean);
	o.stddev = n > 1 ? sqrt(ss / (double)(n - 1)) : 0;
	median_ci_sorted(s, n, level, &o.median);
	o.median.median = sorted_median(s, n);
	fences_sorted(s, n, &o.fences);
	free(s);
	flag_outliers(x, n, flags, &o.fences);
	*out = o;
	return 0;
}

/* ---- the Mann-Whitney U distribution ----------------------------------------------- */

/* cdf[u] = P(U <= u), u = 0 .. m n, for U of samples of sizes m and n without ties, by the
 * counting recurrence f(m, n, u) = f(m - 1, n, u) + f(m, n - 1, u - m) (the largest pooled
 * value is an a, adding no pair, or a b, above all m a's). Counts are kept as doubles: only
 * additions, so the relative error stays ~1e-16 per step even past 2^53.
 * Returns a malloc'ed array of m n + 1 doubles, NULL on ENOMEM. */
static double *mw_cdf(size_t m, size_t n)
{
	if (m > n) {
		size_t t = m;
		m = n;
		n = t;
	}
	size_t len = m * n + 1;
	double *f = calloc((m + 1) * len, sizeof *f);
	double *cdf = malloc(len * sizeof *cdf);
	if (!f || !cdf) {
		free(f);
		free(cdf);
		return NULL;
	}
#define F(i, u) f[(i) * len + (u)]
	for (size_t i = 0; i <= m; i++)
		F(i, 0) = 1; /* n = 0: one arrangement, U = 0 */
	for (size_t nn = 1; nn <= n; nn++)
		for (size_t i = 1; i <= m; i++) {
			/* row i goes from nn - 1 to nn in place: u descending keeps F(i, u - i) old;
			 * row i - 1 is already at nn */
			for (size_t u = i * nn + 1; u-- > 0;) {
				double v = u <= (i - 1) * nn ? F(i - 1, u) : 0;
				if (u >= i)
					v += F(i, u - i);
				F(i, u) = v;
			}
		}
	double total = 0;
	for (size_t u = 0; u < len; u++)
		total += F(m, u);
	double c = 0;
	for (size_t u = 0; u < len; u++) {
		c += F(m, u);
		cdf[u] = c / total;
	}
#undef F
	free(f);
	return cdf;
}

struct tagged {
	double v;
	int side; /* 0: a, 1: b */
};

static int cmp_tagged(const void *pa, const void *pb)
{
	const struct tagged *a = pa, *b = pb;
	return (a->v > b->v) - (a->v < b->v);
}

/* U of b, the tie term sum(t^3 - t) and whether there are ties. */
static int mw_rank(const double *a, size_t na, const double *b, size_t nb, double *u,
		   double *tie_term, int *ties)
{
	size_t n = na + nb;
	struct tagged *t = malloc(n * sizeof *t);
	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < na; i++)
		t[i] = (struct tagged){a[i], 0};
	for (size_t j = 0; j < nb; j++)
		t[na + j] = (struct tagged){b[j], 1};
	qsort(t, n, sizeof *t, cmp_tagged);
	double wb = 0, tt = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && t[j].v == t[i].v)
			j++;
		double g = (double)(j - i);
		double midrank = (double)(i + 1 + j) / 2; /* ranks i+1 .. j, 1-based */
		for (size_t k = i; k < j; k++)
			if (t[k].side)
				wb += midrank;
		tt += g * g * g - g;
		i = j;
	}
	free(t);
	*u = wb - (double)nb * (double)(nb + 1) / 2;
	*tie_term = tt;
	*ties = tt > 0;
	return 0;
}

static double mw_sigma(size_t na, size_t nb, double tie_term)
{
	double n = (double)na + (double)nb;
	double v = (double)na * (double)nb / 12 * ((n + 1) - tie_term / (n * (n - 1)));
	return v > 0 ? sqrt(v) : 0;
}

static int use_exact(size_t na, size_t nb, int ties)
{
	return !ties && na <= STATS_EXACT_MAX_PAIRS && nb <= STATS_EXACT_MAX_PAIRS &&
	       na * nb <= STATS_EXACT_MAX_PAIRS;
}

int stats_mann_whitney(const double *a, size_t na, const double *b, size_t nb,
		       struct stats_mw *out)
{
	if (check_sample(a, na) || check_sample(b, nb) || !out)
		return -EINVAL;
	struct stats_mw o = {0};
	double tie_term;
	int rc = mw_rank(a, na, b, nb, &o.u, &tie_term, &o.ties);
	if (rc < 0)
		return rc;
	double nn = (double)na * (double)nb;
	if (use_exact(na, nb, o.ties)) {
		double *cdf = mw_cdf(na, nb);
		if (!cdf)
			return -ENOMEM;
		size_t u = (size_t)o.u, npairs = na * nb;
		double lower = cdf[u];          /* P(U <= u) */
		double upper = cdf[npairs - u]; /* P(U >= u) = P(U <= N - u), symmetry */
		free(cdf);
		o.exact = 1;
		o.p = 2 * (lower < upper ? lower : upper);
	} else {
		double sigma = mw_sigma(na, nb, tie_term);
		double d = o.u - nn / 2;
		if (sigma == 0) {
			o.z = 0;
			o.p = 1;
		} else {
			double corr = d > 0 ? 0.5 : d < 0 ? -0.5 : 0;
			o.z = (d - corr) / sigma;
			o.p = erfc(fabs(o.z) / M_SQRT2); /* 2 P(Z >= |z|) */
		}
	}
	if (o.p > 1)
		o.p = 1;
	*out = o;
	return 0;
}

int stats_hodges_lehmann(const double *a, size_t na, const double *b, size_t nb, double level,
			 struct stats_shift *out)
{
	if (!a || !na || !b || !nb || check_level(level) || !out)
		return -EINVAL;
	if (na > STATS_MAX_PAIRS || nb > STATS_MAX_PAIRS || na * nb > STATS_MAX_PAIRS)
		return -E2BIG;
	if (!all_finite(a, na) || !all_finite(b, nb))
		return -EINVAL;
	size_t npairs = na * nb;
	double alpha = 1 - level;
	double u, tie_term;
	int ties;
	int rc = mw_rank(a, na, b, nb, &u, &tie_term, &ties);
	if (rc < 0)
		return rc;
	struct stats_shift o = {0};
	size_t k = 0;
	if (use_exact(na, nb, ties)) {
		double *cdf = mw_cdf(na, nb);
		if (!cdf)
			return -ENOMEM;
		while (k < npairs && 2 * cdf[k] <= alpha * (1 + LEVEL_EPS))
			k++; /* rank k + 1 allowed when 2 P(U <= k) <= alpha */
		o.exact = 1;
		o.reached = k >= 1;
		if (!k)
			k = 1;
		o.confidence = 1 - 2 * cdf[k - 1]; /* coverage of rank k */
		free(cdf);
	} else {
		double sigma = mw_sigma(na, nb, tie_term);
		double half = (double)npairs / 2;
		if (sigma == 0) { /* every value equal: every difference is 0 */
			k = 1;
			o.reached = 1;
			o.confidence = 1;
		} else {
			double z = norm_quantile(1 - alpha / 2);
			double kk = floor(half + 0.5 - z * sigma);
			o.reached = kk >= 1;
			k = kk >= 1 ? (size_t)kk : 1;
			/* P(U <= k - 1) ~ Phi((k - 1 + 0.5 - N/2) / sigma) */
			o.confidence = 1 - 2 * norm_cdf(((double)k - 0.5 - half) / sigma);
			if (o.confidence < 0)
				o.confidence = 0;
		}
	}
	double *d = malloc(npairs * sizeof *d);
	if (!d)
		return -ENOMEM;
	for (size_t i = 0; i < na; i++)
		for (size_t j = 0; j < nb; j++)
			d[i * nb + j] = b[j] - a[i];
	qsort(d, npairs, sizeof *d, cmp_double);
	o.shift = sorted_median(d, npairs);
	o.k = k;
	o.lo = d[k - 1];
	o.hi = d[npairs - k];
	free(d);
	*out = o;
	return 0;
}

int stats_compare(const double *a, size_t na, const double *b, size_t nb, double level,
		  struct stats_compare *out)
{
	if (!out)
		return -EINVAL;
	struct stats_compare o;
	int rc;
	if ((rc = stats_median_ci(a, na, level, &o.a)) < 0 ||
	    (rc = stats_median_ci(b, nb, level, &o.b)) < 0 ||
	    (rc = stats_hodges_lehmann(a, na, b, nb, level, &o.hl)) < 0 ||
	    (rc = stats_mann_whitney(a, na, b, nb, &o.mw)) < 0)
		return rc;
	double base = fabs(o.a.median);
	if (base > 0)
		o.rel_shift = o.hl.shift / base;
	else
		o.rel_shift = o.hl.shift > 0 ? INFINITY : o.hl.shift < 0 ? -INFINITY : 0;
	*out = o;
	return 0;
}

/* ---- Holm ------------------------------------------------------------------------- */

struct indexed {
	double p;
	size_t i;
};

static int cmp_indexed(const void *pa, const void *pb)
{
	const struct indexed *a = pa, *b = pb;
	if (a->p != b->p)
		return a->p < b->p ? -1 : 1;
	return (a->i > b->i) - (a->i < b->i);
}

int stats_holm(const double *p, size_t n, double *adj)
{
	if (!p || !n || !adj)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!(p[i] >= 0 && p[i] <= 1))
			return -EINVAL;
	struct indexed *s = malloc(n * sizeof *s);
	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		s[i] = (struct indexed){p[i], i};
	qsort(s, n, sizeof *s, cmp_indexed);
	double run = 0;
	for (size_t j = 0; j < n; j++) {
		double v = (double)(n - j) * s[j].p;
		if (v > 1)
			v = 1;
		if (v > run)
			run = v;
		adj[s[j].i] = run; /* adj may alias p: s holds the original values */
	}
	free(s);
	return 0;
}

/* ---- decisions -------------------------------------------------------------------- */

int stats_significant(double p_adjusted, double ci_lo, double ci_hi, double rel_shift,
		      size_t na, size_t nb, double alpha, double noise_floor, unsigned *why)
{
	if (!(alpha > 0 && alpha <= 1) || !(noise_floor >= 0) || isnan(p_adjusted) ||
	    isnan(ci_lo) || isnan(ci_hi) || !na || !nb)
		return -EINVAL;
	unsigned w = 0;
	if (!(p_adjusted < alpha))
		w |= STATS_FAIL_P;
	if (!(ci_lo > 0 || ci_hi < 0))
		w |= STATS_FAIL_CI;
	if (!(fabs(rel_shift) > noise_floor))
		w |= STATS_FAIL_FLOOR;
	if (!(stats_mw_min_p(na, nb) < alpha))
		w |= STATS_FAIL_N;
	if (why)
		*why = w;
	return w == 0;
}

const char *stats_fail_name(unsigned bit)
{
	switch (bit) {
	case STATS_FAIL_P:
		return "p";
	case STATS_FAIL_CI:
		return "ci";
	case STATS_FAIL_FLOOR:
		return "noise floor";
	case STATS_FAIL_N:
		return "n";
	default:
		return "?";
	}
}

double stats_mw_min_p(size_t na, size_t nb)
{
	if (!na || !nb)
		return NAN;
	size_t k = na < nb ? na : nb, n = na + nb;
	double c = 1; /* C(n, k), exact while it fits in 53 bits; may reach +inf, then p = 0 */
	for (size_t i = 1; i <= k; i++)
		c = c * (double)(n - k + i) / (double)i;
	double p = 2 / c;
	return p > 1 ? 1 : p;
}

int stats_mw_min_n(double alpha, size_t *n)
{
	if (!(alpha > 0 && alpha <= 1) || !n)
		return -EINVAL;
	for (size_t i = 1; i <= 500; i++)
		if (stats_mw_min_p(i, i) < alpha) {
			*n = i;
			return 0;
		}
	return -ERANGE;
}
