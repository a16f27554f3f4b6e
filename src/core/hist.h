/* hist: HDR-style log-linear histogram of uint64 values (nanoseconds by convention).
 *
 * Range 1 .. 3.6e12 (1 ns .. 1 hour); values outside are clamped and counted in
 * hist->clamped. Precision: >= 3 significant decimal digits, i.e. any recorded value is
 * reported back within 0.1% relative (HdrHistogram with 3 significant digits, or finer).
 * Memory is fixed at hist_new; hist_record never allocates and is O(1).
 * A struct hist is not thread-safe: one per thread, merged after join (wrk's way).
 *
 * Coordinated omission (HdrHistogram's recordValueWithExpectedInterval): when a value is
 * larger than expected_interval, the samples that "should have been" taken are added too:
 * value - k*expected_interval for k = 1, 2, ... while that stays >= expected_interval.
 */
#ifndef CTXLAB_CORE_HIST_H
#define CTXLAB_CORE_HIST_H

#include <stddef.h>
#include <stdint.h>

#define HIST_MIN_VALUE 1ULL
#define HIST_MAX_VALUE 3600000000000ULL

struct hist;

struct hist *hist_new(void);             /* NULL on ENOMEM */
void hist_free(struct hist *h);          /* NULL ok */
void hist_reset(struct hist *h);

void hist_record(struct hist *h, uint64_t value);
void hist_record_n(struct hist *h, uint64_t value, uint64_t count);
void hist_merge(struct hist *dst, const struct hist *src);   /* dst += src */

/* Exact text form, to carry a histogram between processes (hosts) and merge it there:
 *   "hist1 TOTAL CLAMPED MIN MAX IDX:COUNT IDX:COUNT ..." (decimal; slots in increasing order)
 * hist_encode appends it to b (0, or -ENOMEM); hist_merge_encoded adds it to h exactly as
 * hist_merge would the original (0, or -EINVAL for text that is not such a histogram: then h
 * is unchanged). */
struct buf;
int hist_encode(const struct hist *h, struct buf *b);
int hist_merge_encoded(struct hist *h, const char *text);

uint64_t hist_count(const struct hist *h);
uint64_t hist_clamped(const struct hist *h);   /* values recorded outside the range */
uint64_t hist_min(const struct hist *h);       /* 0 when empty */
uint64_t hist_max(const struct hist *h);       /* 0 when empty */
double hist_mean(const struct hist *h);        /* 0 when empty */
double hist_stddev(const struct hist *h);      /* population stddev, 0 when empty */
/* Value at percentile p in [0, 100]: the smallest recorded value v such that at least p% of
 * the recorded values are <= v (reported as the highest value equivalent to its bucket,
 * clamped to max). 0 when empty. */
uint64_t hist_percentile(const struct hist *h, double p);

/* Percentile spectrum iteration in HdrHistogram's format: ticks_per_half_distance steps per
 * halving of the remaining distance to 100% (wrk2 uses 5).
 *   struct hist_iter it; hist_iter_init(&it, h, 5);
 *   while (hist_iter_next(&it)) printf("%llu %f %llu\n", it.value, it.percentile, it.count_to_here);
 */
struct hist_iter {
	const struct hist *h;
	int ticks_per_half;
	/* outputs */
	uint64_t value;          /* highest equivalent value at this step */
	double percentile;       /* percentile reached (0..100) */
	uint64_t count_to_here;  /* cumulative count */
	/* private */
	double next_pct;
	size_t idx;
	uint64_t cum;
	int done;
};
void hist_iter_init(struct hist_iter *it, const struct hist *h, int ticks_per_half_distance);
int hist_iter_next(struct hist_iter *it); /* 1 while there is a step, 0 at the end */

/* Bucket iteration (for bar charts): every non-empty bucket in increasing value order. */
struct hist_bucket_iter {
	const struct hist *h;
	uint64_t lo, hi, count; /* outputs: [lo, hi] values, count in this bucket */
	size_t idx;             /* private */
};
void hist_bucket_iter_init(struct hist_bucket_iter *it, const struct hist *h);
int hist_bucket_iter_next(struct hist_bucket_iter *it);

#endif
