#include "core/hist.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

/*
 * Layout (HdrHistogram's, unit magnitude 0): 2^12 sub-buckets per bucket. Bucket 0 holds
 * values 0..4095 one per slot; bucket b >= 1 holds values [2048 << b, 4096 << b) in 2048
 * slots of width 2^b. A slot's width is at most 1/2048 of its lowest value, so any value is
 * reported back within 0.049% relative -- half the 0.1% that the contract promises.
 * The flat counts[] index of bucket b, sub-bucket s is ((b + 1) << 11) + (s - 2048), which
 * for bucket 0 is the value itself.
 */
#define SUB_BITS 12
#define SUB_COUNT (1u << SUB_BITS)              /* 4096 */
#define SUB_HALF_BITS (SUB_BITS - 1)
#define SUB_HALF (1u << SUB_HALF_BITS)          /* 2048 */
#define SUB_MASK ((uint64_t)SUB_COUNT - 1)

struct hist {
	uint64_t total;
	uint64_t clamped;
	uint64_t min, max;        /* exact recorded extremes (after clamping) */
	size_t min_idx, max_idx;  /* slots of min and max, bounding every scan */
	size_t len;
	uint64_t counts[];
};

static inline int bucket_of(uint64_t v)
{
	return (64 - __builtin_clzll(v | SUB_MASK)) - SUB_BITS;
}

static inline size_t index_of(uint64_t v)
{
	int b = bucket_of(v);
	uint64_t sub = v >> b;
	return ((size_t)(b + 1) << SUB_HALF_BITS) + (size_t)(sub - SUB_HALF);
}

static inline uint64_t lowest_of(size_t idx)
{
	int b = (int)(idx >> SUB_HALF_BITS) - 1;
	uint64_t sub = (idx & (SUB_HALF - 1)) + SUB_HALF;
	if (b < 0) {
		sub -= SUB_HALF;
		b = 0;
	}
	return sub << b;
}

static inline uint64_t width_of(size_t idx)
{
	int b = (int)(idx >> SUB_HALF_BITS) - 1;
	return 1ULL << (b < 0 ? 0 : b);
}

static inline uint64_t highest_of(size_t idx) { return lowest_of(idx) + width_of(idx) - 1; }
static inline uint64_t median_of(size_t idx) { return lowest_of(idx) + width_of(idx) / 2; }

struct hist *hist_new(void)
{
	size_t len = index_of(HIST_MAX_VALUE) + 1;
	struct hist *h = calloc(1, sizeof(*h) + len * sizeof(h->counts[0]));

	if (!h)
		return NULL;
	h->len = len;
	hist_reset(h);
	return h;
}

void hist_free(struct hist *h)
{
	free(h);
}

/* Only the slots between min and max can be non-zero: clearing just those keeps a reset of
 * a narrow histogram cheap. */
void hist_reset(struct hist *h)
{
	if (h->total)
		memset(h->counts + h->min_idx, 0, (h->max_idx - h->min_idx + 1) * sizeof(h->counts[0]));
	h->total = 0;
	h->clamped = 0;
	h->min = 0;
	h->max = 0;
	h->min_idx = 0;
	h->max_idx = 0;
}

/* Adds count values lying in one slot, the smallest lo and the largest hi (both inside the
 * range; lo == hi for a single value). */
static inline void add_slot(struct hist *h, uint64_t lo, uint64_t hi, uint64_t count)
{
	size_t idx = index_of(lo);

	h->counts[idx] += count;
	if (!h->total || lo < h->min) {
		h->min = lo;
		h->min_idx = idx;
	}
	if (!h->total || hi > h->max) {
		h->max = hi;
		h->max_idx = idx;
	}
	h->total += count;
}

static inline void add(struct hist *h, uint64_t v, uint64_t count)
{
	add_slot(h, v, v, count);
}

static inline uint64_t clamp(struct hist *h, uint64_t v, uint64_t count)
{
	if (v < HIST_MIN_VALUE) {
		h->clamped += count;
		return HIST_MIN_VALUE;
	}
	if (v > HIST_MAX_VALUE) {
		h->clamped += count;
		return HIST_MAX_VALUE;
	}
	return v;
}

void hist_record(struct hist *h, uint64_t value)
{
	add(h, clamp(h, value, 1), 1);
}

void hist_record_n(struct hist *h, uint64_t value, uint64_t count)
{
	if (!count)
		return;
	add(h, clamp(h, value, count), count);
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	if (!src->total) {
		dst->clamped += src->clamped;
		return;
	}
	for (size_t i = src->min_idx; i <= src->max_idx; i++)
		dst->counts[i] += src->counts[i];
	if (!dst->total || src->min < dst->min) {
		dst->min = src->min;
		dst->min_idx = src->min_idx;
	}
	if (!dst->total || src->max > dst->max) {
		dst->max = src->max;
		dst->max_idx = src->max_idx;
	}
	dst->total += src->total;
	dst->clamped += src->clamped;
}

int hist_encode(const struct hist *h, struct buf *b)
{
	if (buf_appendf(b, "hist1 %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64, h->total,
			h->clamped, h->total ? h->min : 0, h->total ? h->max : 0) < 0)
		return -ENOMEM;
	if (h->total)
		for (size_t i = h->min_idx; i <= h->max_idx; i++)
			if (h->counts[i] &&
			    buf_appendf(b, " %zu:%" PRIu64, i, h->counts[i]) < 0)
				return -ENOMEM;
	return 0;
}

static int parse_u64(const char **p, uint64_t *v)
{
	char *end;
	errno = 0;
	if (**p < '0' || **p > '9')
		return -1;
	unsigned long long x = strtoull(*p, &end, 10);
	if (errno)
		return -1;
	*v = x;
	*p = end;
	return 0;
}

int hist_merge_encoded(struct hist *h, const char *text)
{
	const char *p = text;
	uint64_t total, clamped, mn, mx, sum = 0, idx = 0, cnt = 0;
	if (strncmp(p, "hist1 ", 6))
		return -EINVAL;
	p += 6;
	if (parse_u64(&p, &total) || *p++ != ' ' || parse_u64(&p, &clamped) || *p++ != ' ' ||
	    parse_u64(&p, &mn) || *p++ != ' ' || parse_u64(&p, &mx))
		return -EINVAL;
	/* first pass: validate (h stays unchanged on bad text) */
	const char *slots = p;
	uint64_t prev = 0;
	int first = 1;
	while (*p == ' ') {
		p++;
		if (parse_u64(&p, &idx) || *p++ != ':' || parse_u64(&p, &cnt) || !cnt ||
		    idx >= h->len || (!first && idx <= prev) || sum + cnt < sum)
			return -EINVAL;
		first = 0;
		prev = idx;
		sum += cnt;
	}
	if (*p || sum != total || (total && (mn > mx || mn < HIST_MIN_VALUE ||
					     mx > HIST_MAX_VALUE || index_of(mn) > index_of(mx))))
		return -EINVAL;
	if (!total) {
		h->clamped += clamped;
		return 0;
	}
	p = slots;
	while (*p == ' ') {
		p++;
		parse_u64(&p, &idx);
		p++;
		parse_u64(&p, &cnt);
		h->counts[idx] += cnt;
	}
	if (!h->total || mn < h->min) {
		h->min = mn;
		h->min_idx = index_of(mn);
	}
	if (!h->total || mx > h->max) {
		h->max = mx;
		h->max_idx = index_of(mx);
	}
	h->total += total;
	h->clamped += clamped;
	return 0;
}

uint64_t hist_count(const struct hist *h) { return h->total; }
uint64_t hist_clamped(const struct hist *h) { return h->clamped; }
uint64_t hist_min(const struct hist *h) { return h->total ? h->min : 0; }
uint64_t hist_max(const struct hist *h) { return h->total ? h->max : 0; }

/* Mean and stddev use each slot's middle value, as HdrHistogram does: merging and then
 * asking gives exactly what recording everything into one histogram gives. */
double hist_mean(const struct hist *h)
{
	if (!h->total)
		return 0;
	double sum = 0;
	for (size_t i = h->min_idx; i <= h->max_idx; i++)
		if (h->counts[i])
			sum += (double)median_of(i) * (double)h->counts[i];
	return sum / (double)h->total;
}

double hist_stddev(const struct hist *h)
{
	if (!h->total)
		return 0;
	double mean = hist_mean(h), acc = 0;
	for (size_t i = h->min_idx; i <= h->max_idx; i++) {
		if (h->counts[i]) {
			double d = (double)median_of(i) - mean;
			acc += d * d * (double)h->counts[i];
		}
	}
	return sqrt(acc / (double)h->total);
}

static uint64_t report_value(const struct hist *h, size_t idx)
{
	uint64_t v = highest_of(idx);
	return v > h->max ? h->max : v;
}

uint64_t hist_percentile(const struct hist *h, double p)
{
	if (!h->total)
		return 0;
	if (!(p > 0))
		return h->min;
	if (p >= 100)
		return h->max;
	/* rank = ceil(p% of total), forgiving the last bit of floating-point noise */
	double t = p / 100.0 * (double)h->total;
	uint64_t rank = (uint64_t)t;
	if (t - (double)rank > t * 1e-12)
		rank++;
	if (rank < 1)
		rank = 1;
	uint64_t cum = 0;
	for (size_t i = h->min_idx; i <= h->max_idx; i++) {
		cum += h->counts[i];
		if (cum >= rank)
			return report_value(h, i);
	}
	return h->max;
}

/* ---- percentile spectrum (HdrHistogram's PercentileIterator) -------------------- */

void hist_iter_init(struct hist_iter *it, const struct hist *h, int ticks_per_half_distance)
{
	memset(it, 0, sizeof(*it));
	it->h = h;
	it->ticks_per_half = ticks_per_half_distance > 0 ? ticks_per_half_distance : 1;
	it->next_pct = 0.0;
	it->idx = (size_t)-1; /* not started */
}

/* Moves to the next slot; 0 past the last one. */
static int iter_step(struct hist_iter *it)
{
	const struct hist *h = it->h;
	size_t i = it->idx == (size_t)-1 ? h->min_idx : it->idx + 1;

	if (i > h->max_idx)
		return 0;
	it->idx = i;
	it->cum += h->counts[i];
	return 1;
}

int hist_iter_next(struct hist_iter *it)
{
	const struct hist *h = it->h;

	if (it->done)
		return 0;
	if (!h->total) {
		it->done = 1;
		return 0;
	}
	if (it->idx != (size_t)-1 && it->cum >= h->total) {
		/* past the last recorded value: the closing 100% step */
		it->done = 1;
		it->percentile = 100.0;
		it->count_to_here = h->total;
		it->value = h->max;
		return 1;
	}
	if (it->idx == (size_t)-1 && !iter_step(it))
		return 0;
	do {
		double cur = 100.0 * (double)it->cum / (double)h->total;
		if (h->counts[it->idx] && it->next_pct <= cur) {
			it->value = report_value(h, it->idx);
			it->percentile = it->next_pct;
			it->count_to_here = it->cum;
			double rest = 100.0 - it->next_pct;
			int halvings = rest > 1e-12 ? (int)(log(100.0 / rest) / log(2.0)) + 1 : 48;
			if (halvings > 48)
				halvings = 48;
			double ticks = (double)it->ticks_per_half * ldexp(1.0, halvings);
			it->next_pct += 100.0 / ticks;
			return 1;
		}
	} while (iter_step(it));
	/* unreachable with consistent counts: the last slot brings cum to total */
	it->done = 1;
	return 0;
}

/* ---- buckets ------------------------------------------------------------------------ */

void hist_bucket_iter_init(struct hist_bucket_iter *it, const struct hist *h)
{
	memset(it, 0, sizeof(*it));
	it->h = h;
	it->idx = h->min_idx;
}

int hist_bucket_iter_next(struct hist_bucket_iter *it)
{
	const struct hist *h = it->h;

	if (!h->total)
		return 0;
	for (; it->idx <= h->max_idx; it->idx++) {
		if (h->counts[it->idx]) {
			it->lo = lowest_of(it->idx);
			it->hi = highest_of(it->idx);
			it->count = h->counts[it->idx];
			it->idx++;
			return 1;
		}
	}
	return 0;
}
