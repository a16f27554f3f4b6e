/* hist: percentiles against exact (sorted) percentiles, merge, coordinated-omission
 * correction, moments, clamping and both iterators. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hist.h"

#define NVALUES 1000000

static uint64_t xs;
static void seed(uint64_t s) { xs = s ? s : 88172645463325252ULL; }
static uint64_t xorshift(void)
{
	xs ^= xs << 13;
	xs ^= xs >> 7;
	xs ^= xs << 17;
	return xs;
}
static double unit_rand(void) /* (0, 1) */
{
	return ((double)(xorshift() >> 11) + 0.5) / 9007199254740992.0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* exact percentile: smallest value with at least p% of values <= it */
static uint64_t exact_pct(const uint64_t *sorted, size_t n, double p)
{
	size_t rank = (size_t)ceil(p / 100.0 * (double)n - 1e-9);
	if (rank < 1)
		rank = 1;
	return sorted[rank - 1];
}

enum dist { UNIFORM, EXPONENTIAL, BIMODAL };

static uint64_t draw(enum dist d)
{
	switch (d) {
	case UNIFORM: /* 1 us .. 10 ms */
		return 1000 + xorshift() % 9999000;
	case EXPONENTIAL: /* mean 200 us */
		return 1 + (uint64_t)(-log(unit_rand()) * 200000.0);
	case BIMODAL: /* 90% around 50 us, 10% around 20 ms */
		if (xorshift() % 10)
			return 45000 + xorshift() % 10000;
		return 15000000 + xorshift() % 10000000;
	}
	return 1;
}

static void check_dist(enum dist d, uint64_t s)
{
	uint64_t *v = malloc(NVALUES * sizeof(*v));
	struct hist *h = hist_new();
	assert_non_null(v);
	assert_non_null(h);
	seed(s);
	double sum = 0;
	for (size_t i = 0; i < NVALUES; i++) {
		v[i] = draw(d);
		sum += (double)v[i];
		hist_record(h, v[i]);
	}
	double mean = sum / NVALUES, acc = 0;
	for (size_t i = 0; i < NVALUES; i++)
		acc += ((double)v[i] - mean) * ((double)v[i] - mean);
	double sd = sqrt(acc / NVALUES);
	qsort(v, NVALUES, sizeof(*v), cmp_u64);

	assert_int_equal(hist_count(h), NVALUES);
	assert_int_equal(hist_clamped(h), 0);
	assert_int_equal(hist_min(h), v[0]);
	assert_int_equal(hist_max(h), v[NVALUES - 1]);
	static const double ps[] = {50, 90, 99, 99.9, 99.99};
	for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
		uint64_t want = exact_pct(v, NVALUES, ps[i]), got = hist_percentile(h, ps[i]);
		double rel = fabs((double)got - (double)want) / (double)want;
		if (rel > 0.001)
			fail_msg("dist %d p%g: hist %llu exact %llu (%.4f%% off)", d, ps[i],
				 (unsigned long long)got, (unsigned long long)want, rel * 100);
		/* the reported value is the top of the exact value's slot: never below it */
		assert_true(got >= want);
	}
	assert_int_equal(hist_percentile(h, 0), v[0]);
	assert_int_equal(hist_percentile(h, 100), v[NVALUES - 1]);
	if (fabs(hist_mean(h) - mean) / mean > 0.001)
		fail_msg("dist %d mean %f exact %f", d, hist_mean(h), mean);
	if (fabs(hist_stddev(h) - sd) / sd > 0.001)
		fail_msg("dist %d stddev %f exact %f", d, hist_stddev(h), sd);
	hist_free(h);
	free(v);
}

static void test_uniform(void **state) { check_dist(UNIFORM, 1); }
static void test_exponential(void **state) { check_dist(EXPONENTIAL, 2); }
static void test_bimodal(void **state) { check_dist(BIMODAL, 3); }

/* Every value in the range lands in a slot no wider than 1/2048 of its lowest value, so it
 * reads back within 0.1% (in fact 0.049%). */
static void test_precision_every_scale(void **state)
{
	struct hist *h = hist_new();
	struct hist_bucket_iter it;
	seed(7);
	for (int i = 0; i < 200000; i++) {
		uint64_t v = 1 + xorshift() % (1ULL << (xorshift() % 42 + 1));
		if (v > HIST_MAX_VALUE)
			v = HIST_MAX_VALUE;
		hist_reset(h);
		hist_record(h, v);
		hist_bucket_iter_init(&it, h);
		assert_true(hist_bucket_iter_next(&it));
		assert_true(it.lo <= v && v <= it.hi);
		if ((double)(it.hi - it.lo) / (double)it.lo > 1.0 / 2048)
			fail_msg("value %llu in slot [%llu, %llu]", (unsigned long long)v,
				 (unsigned long long)it.lo, (unsigned long long)it.hi);
		assert_false(hist_bucket_iter_next(&it));
		assert_int_equal(hist_percentile(h, 50), v); /* clamped to the max */
	}
	/* values below 4096 are exact */
	for (uint64_t v = 1; v < 4096; v++) {
		hist_reset(h);
		hist_record(h, v);
		hist_record(h, 5000);
		assert_int_equal(hist_percentile(h, 50), v);
	}
	hist_free(h);
}

static void assert_same(const struct hist *a, const struct hist *b)
{
	assert_int_equal(hist_count(a), hist_count(b));
	assert_int_equal(hist_clamped(a), hist_clamped(b));
	assert_int_equal(hist_min(a), hist_min(b));
	assert_int_equal(hist_max(a), hist_max(b));
	assert_true(hist_mean(a) == hist_mean(b));
	assert_true(hist_stddev(a) == hist_stddev(b));
	for (double p = 0; p <= 100; p += 0.5)
		assert_int_equal(hist_percentile(a, p), hist_percentile(b, p));
	struct hist_bucket_iter ia, ib;
	hist_bucket_iter_init(&ia, a);
	hist_bucket_iter_init(&ib, b);
	for (;;) {
		int ra = hist_bucket_iter_next(&ia), rb = hist_bucket_iter_next(&ib);
		assert_int_equal(ra, rb);
		if (!ra)
			break;
		assert_int_equal(ia.lo, ib.lo);
		assert_int_equal(ia.count, ib.count);
	}
}

static void test_merge(void **state)
{
	struct hist *one = hist_new(), *parts[4], *merged = hist_new();
	for (int i = 0; i < 4; i++)
		parts[i] = hist_new();
	seed(11);
	for (int i = 0; i < 200000; i++) {
		uint64_t v = draw((enum dist)(i % 3)) * (uint64_t)(1 + i % 4);
		hist_record(one, v);
		hist_record(parts[i % 4], v);
	}
	hist_record(one, 0);            /* clamped values merge too */
	hist_record(parts[2], 0);
	struct hist *empty = hist_new();
	hist_merge(merged, empty);      /* merging an empty one changes nothing */
	for (int i = 0; i < 4; i++)
		hist_merge(merged, parts[i]);
	hist_merge(merged, empty);
	assert_same(one, merged);
	assert_int_equal(hist_clamped(merged), 1);
	for (int i = 0; i < 4; i++)
		hist_free(parts[i]);
	hist_free(one);
	hist_free(merged);
	hist_free(empty);
}

static void test_empty(void **state)
{
	struct hist *h = hist_new();
	assert_int_equal(hist_count(h), 0);
	assert_int_equal(hist_clamped(h), 0);
	assert_int_equal(hist_min(h), 0);
	assert_int_equal(hist_max(h), 0);
	assert_true(hist_mean(h) == 0);
	assert_true(hist_stddev(h) == 0);
	assert_int_equal(hist_percentile(h, 50), 0);
	assert_int_equal(hist_percentile(h, 100), 0);
	struct hist_iter it;
	hist_iter_init(&it, h, 5);
	assert_int_equal(hist_iter_next(&it), 0);
	struct hist_bucket_iter bi;
	hist_bucket_iter_init(&bi, h);
	assert_int_equal(hist_bucket_iter_next(&bi), 0);
	hist_record_n(h, 5, 0);
	assert_int_equal(hist_count(h), 0);
	hist_free(NULL);
	hist_free(h);
}

static void test_clamping(void **state)
{
	struct hist *h = hist_new();
	hist_record(h, 0);
	hist_record(h, HIST_MAX_VALUE + 1);
	hist_record(h, UINT64_MAX);
	hist_record(h, HIST_MAX_VALUE);
	hist_record(h, 1);
	assert_int_equal(hist_count(h), 5);
	assert_int_equal(hist_clamped(h), 3);
	assert_int_equal(hist_min(h), 1);
	assert_int_equal(hist_max(h), HIST_MAX_VALUE);
	assert_int_equal(hist_percentile(h, 40), 1);
	assert_int_equal(hist_percentile(h, 100), HIST_MAX_VALUE);
	hist_record_n(h, 0, 10);
	assert_int_equal(hist_clamped(h), 13);
	assert_int_equal(hist_count(h), 15);
	hist_reset(h);
	assert_int_equal(hist_count(h), 0);
	assert_int_equal(hist_clamped(h), 0);
	hist_free(h);
}

static void test_moments_small(void **state)
{
	struct hist *h = hist_new();
	/* 2, 4, 4, 4, 5, 5, 7, 9: mean 5, population stddev 2 (exact below 4096) */
	static const uint64_t v[] = {2, 4, 4, 4, 5, 5, 7, 9};
	for (size_t i = 0; i < 8; i++)
		hist_record(h, v[i]);
	assert_true(hist_mean(h) == 5.0);
	assert_true(hist_stddev(h) == 2.0);
	assert_int_equal(hist_percentile(h, 50), 4);
	assert_int_equal(hist_percentile(h, 50.1), 5);
	assert_int_equal(hist_percentile(h, 87.5), 7);
	assert_int_equal(hist_percentile(h, 99), 9);
	hist_record_n(h, 1000, 8);
	assert_int_equal(hist_count(h), 16);
	assert_int_equal(hist_percentile(h, 51), 1000);
	hist_free(h);
}

static void test_spectrum(void **state)
{
	struct hist *h = hist_new();
	seed(5);
	for (int i = 0; i < 100000; i++)
		hist_record(h, draw(EXPONENTIAL));
	struct hist_iter it;
	hist_iter_init(&it, h, 5);
	int steps = 0;
	double last_pct = -1;
	uint64_t last_val = 0, last_cum = 0;
	while (hist_iter_next(&it)) {
		assert_true(it.percentile >= last_pct);
		assert_true(it.value >= last_val);
		assert_true(it.count_to_here >= last_cum);
		/* the count reached covers the percentile level reported */
		assert_true(100.0 * (double)it.count_to_here / (double)hist_count(h) >= it.percentile - 1e-9);
		if (steps == 0)
			assert_true(it.percentile == 0.0);
		/* wrk2's ladder with 5 ticks per half distance: 0, 10, 20, 30, 40, 50, 55, 60 ... */
		if (steps > 0 && steps <= 5)
			assert_true(fabs(it.percentile - 10.0 * steps) < 1e-9);
		if (steps == 6)
			assert_true(fabs(it.percentile - 55.0) < 1e-9);
		last_pct = it.percentile;
		last_val = it.value;
		last_cum = it.count_to_here;
		steps++;
		assert_true(steps < 10000);
	}
	assert_true(steps > 50);
	assert_true(last_pct == 100.0);
	assert_int_equal(last_cum, hist_count(h));
	assert_int_equal(last_val, hist_max(h));
	assert_int_equal(hist_iter_next(&it), 0);

	/* a single value: one step at 0% and the closing 100% */
	hist_reset(h);
	hist_record(h, 42);
	hist_iter_init(&it, h, 5);
	assert_int_equal(hist_iter_next(&it), 1);
	assert_int_equal(it.value, 42);
	assert_int_equal(it.count_to_here, 1);
	assert_int_equal(hist_iter_next(&it), 1);
	assert_true(it.percentile == 100.0);
	assert_int_equal(it.count_to_here, 1);
	assert_int_equal(hist_iter_next(&it), 0);
	hist_free(h);
}

static void test_buckets(void **state)
{
	struct hist *h = hist_new();
	hist_record_n(h, 3, 2);
	hist_record(h, 1000000);
	hist_record(h, 1000001);
	hist_record(h, 7);
	struct hist_bucket_iter it;
	hist_bucket_iter_init(&it, h);
	assert_true(hist_bucket_iter_next(&it));
	assert_int_equal(it.lo, 3);
	assert_int_equal(it.hi, 3);
	assert_int_equal(it.count, 2);
	assert_true(hist_bucket_iter_next(&it));
	assert_int_equal(it.lo, 7);
	assert_int_equal(it.count, 1);
	uint64_t total = 3;
	while (hist_bucket_iter_next(&it)) {
		assert_true(it.lo <= 1000000 && it.hi >= 1000000 - 1);
		assert_true(it.hi - it.lo + 1 <= 1000000 / 2048 + 1);
		total += it.count;
	}
	assert_int_equal(total, 5);
	hist_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uniform),
		cmocka_unit_test(test_exponential),
		cmocka_unit_test(test_bimodal),
		cmocka_unit_test(test_precision_every_scale),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_clamping),
		cmocka_unit_test(test_moments_small),
		cmocka_unit_test(test_spectrum),
		cmocka_unit_test(test_buckets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
