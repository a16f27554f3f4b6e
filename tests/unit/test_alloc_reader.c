/* alloc reader (alloc/alloc.h): record files written here by hand (alloc/allocrec.h), so the
 * matching, the weights, the curve and its peak are checked against known answers without the
 * interposer: records out of seq order across two chunks (two threads), an address reused
 * after its free, a free with no allocation, a damaged record, sampled weights, and many
 * blocks freed in a scrambled order (the live table's deletions). */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc/alloc.h"

struct writer {
	unsigned char *data;
	size_t nchunks;
	size_t used[8];
};

static void w_init(struct writer *w, size_t nchunks, uint64_t mean)
{
	w->nchunks = nchunks;
	w->data = calloc(1, ALLOCREC_HDR_SIZE + nchunks * ALLOCREC_CHUNK);
	assert_non_null(w->data);
	for (int i = 0; i < 8; i++)
		w->used[i] = ALLOCREC_CHUNKHDR;
	struct allocrec_hdr *h = (void *)w->data;
	h->magic = ALLOCREC_MAGIC;
	h->version = 1;
	h->pid = 100;
	h->sample_mean = mean;
	h->start_ts = 1000;
	h->next_chunk = nchunks;
	strcpy(h->comm, "prog");
}

static void w_rec(struct writer *w, int chunk, int kind, uint64_t seq, uint64_t ts, uint64_t addr,
		  uint64_t size, uint64_t frame)
{
	unsigned char *c = w->data + ALLOCREC_HDR_SIZE + (size_t)chunk * ALLOCREC_CHUNK;
	struct allocrec *r = (void *)(c + w->used[chunk]);
	int depth = kind < ALLOCREC_NALLOC_KINDS ? 1 : 0;
	assert_true(w->used[chunk] + sizeof(*r) + 8u * (unsigned)depth <= ALLOCREC_CHUNK);
	r->kind = (uint8_t)kind;
	r->depth = (uint8_t)depth;
	r->seq = seq;
	r->ts = ts;
	r->addr = addr;
	r->size = size;
	if (depth)
		r->frames[0] = frame;
	w->used[chunk] += sizeof(*r) + 8u * (unsigned)depth;
	struct allocrec_chunkhdr *h = (void *)c; /* the chunk's counters */
	if (kind < ALLOCREC_NALLOC_KINDS) {
		h->calls[kind]++;
		h->bytes += size;
	} else {
		h->frees++;
	}
}

static void w_save(struct writer *w, const char *dir)
{
	char path[512];
	snprintf(path, sizeof path, "%s/rec.100.0", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(w->data, 1, ALLOCREC_HDR_SIZE + w->nchunks * ALLOCREC_CHUNK, f),
			 ALLOCREC_HDR_SIZE + w->nchunks * ALLOCREC_CHUNK);
	fclose(f);
	free(w->data);
}

static void rm_dir(const char *dir)
{
	char path[512];
	snprintf(path, sizeof path, "%s/rec.100.0", dir);
	unlink(path);
	rmdir(dir);
}

static uint64_t folded_sum(const struct folded *f)
{
	uint64_t s = 0;
	for (size_t i = 0; i < f->n; i++)
		s += f->e[i].count;
	return s;
}

static void test_exact_matching(void **state)
{
	(void)state;
	char dir[] = "/tmp/ctxlab-alloc-unit.XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct writer w;
	w_init(&w, 2, 0);
	/* thread 1 (chunk 0) and thread 2 (chunk 1); seq says the order */
	w_rec(&w, 0, ALLOCREC_MALLOC, 1, 1010, 0x1000, 100, 0x400001); /* X */
	w_rec(&w, 1, ALLOCREC_MALLOC, 2, 1020, 0x2000, 200, 0x400002); /* Y: peak 300 */
	w_rec(&w, 1, ALLOCREC_FREE, 3, 1030, 0x1000, 0, 0);            /* X freed by thread 2 */
	w_rec(&w, 0, ALLOCREC_CALLOC, 4, 1040, 0x1000, 50, 0x400001);  /* X reused */
	w_rec(&w, 0, ALLOCREC_FREE, 5, 1050, 0x9000, 0, 0);            /* never allocated */
	/* a damaged record (depth too large) ends chunk 1 */
	unsigned char *c1 = w.data + ALLOCREC_HDR_SIZE + ALLOCREC_CHUNK + w.used[1];
	((struct allocrec *)c1)->kind = ALLOCREC_MALLOC;
	((struct allocrec *)c1)->depth = 200;
	w_save(&w, dir);

	struct alloc_result r;
	char err[256];
	assert_int_equal(alloc_read_dir(dir, &r, err, sizeof err), 0);
	assert_int_equal(r.images, 1);
	assert_int_equal(r.records, 5);
	assert_int_equal(r.bad_records, 1);
	assert_int_equal(r.unmatched_frees, 1);
	assert_int_equal(r.calls[ALLOCREC_MALLOC], 2);
	assert_int_equal(r.calls[ALLOCREC_CALLOC], 1);
	assert_int_equal(r.calls_total, 3);
	assert_true(fabs(r.alloc_objects - 3) < 1e-9);
	assert_true(fabs(r.alloc_bytes - 350) < 1e-9);
	assert_true(fabs(r.inuse_objects - 2) < 1e-9);
	assert_true(fabs(r.inuse_bytes - 250) < 1e-9);
	assert_true(fabs(r.peak_bytes - 300) < 1e-9);
	assert_int_equal(r.peak_t_ns, 20);
	assert_int_equal(r.duration_ns, 40);
	/* the curve: +100 +200 -100 +50 */
	assert_int_equal(r.ncurve, 4);
	double want[] = {100, 300, 200, 250};
	for (int i = 0; i < 4; i++)
		assert_true(fabs(r.curve[i].inuse - want[i]) < 1e-9);
	assert_int_equal(folded_sum(&r.alloc), 350);
	assert_int_equal(folded_sum(&r.inuse), 250);
	assert_int_equal(folded_sum(&r.peak), 300);
	/* no maps file: frames are unknown, under the comm */
	for (size_t i = 0; i < r.alloc.n; i++)
		assert_int_equal(strncmp(r.alloc.e[i].stack, "prog;", 5), 0);
	alloc_result_release(&r);
	struct alloc_counters ac;
	assert_int_equal(alloc_counters_read(dir, &ac), 0);
	assert_int_equal(ac.images, 1);
	assert_int_equal(ac.calls, 3);
	assert_int_equal(ac.bytes, 350);
	assert_int_equal(ac.frees, 2);
	rm_dir(dir);
}

static void test_sampled_weights(void **state)
{
	(void)state;
	char dir[] = "/tmp/ctxlab-alloc-unit.XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct writer w;
	w_init(&w, 1, 4096);
	w_rec(&w, 0, ALLOCREC_MALLOC, 1, 1010, 0x1000, 1000, 0x400001);
	w_rec(&w, 0, ALLOCREC_MALLOC, 2, 1020, 0x2000, 1 << 20, 0x400001);
	w_rec(&w, 0, ALLOCREC_FREE, 3, 1030, 0x2000, 0, 0);
	w_save(&w, dir);
	struct alloc_result r;
	char err[256];
	assert_int_equal(alloc_read_dir(dir, &r, err, sizeof err), 0);
	assert_int_equal(r.sample_mean, 4096);
	double w1 = 1.0 / (1.0 - exp(-1000.0 / 4096)), w2 = 1.0 / (1.0 - exp(-1048576.0 / 4096));
	assert_true(fabs(r.alloc_objects - (w1 + w2)) < 1e-6);
	assert_true(fabs(r.alloc_bytes - (1000 * w1 + 1048576 * w2)) < 1e-3);
	assert_true(fabs(r.inuse_bytes - 1000 * w1) < 1e-6);
	assert_true(w1 > 4.6 && w1 < 4.7); /* a 1000-byte sample stands for ~4.6 blocks */
	assert_true(fabs(w2 - 1) < 1e-9);  /* a block far above the mean is always sampled */
	alloc_result_release(&r);
	rm_dir(dir);
}

static void test_many_scrambled(void **state)
{
	(void)state;
	char dir[] = "/tmp/ctxlab-alloc-unit.XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct writer w;
	w_init(&w, 8, 0);
	enum { N = 12000 };
	uint64_t seq = 1, ts = 1001;
	/* N blocks, at addresses that collide in the table (multiples of 4096) */
	for (int i = 0; i < N; i++)
		w_rec(&w, i % 8, ALLOCREC_MALLOC, seq++, ts++, 0x100000 + (uint64_t)i * 4096, 16,
		      0x400001 + (uint64_t)(i % 3));
	/* free all but every 7th, in a scrambled order (a permutation: i * 7919 mod N) */
	for (int k = 0; k < N; k++) {
		int i = (int)((uint64_t)k * 7919 % N);
		if (i % 7)
			w_rec(&w, k % 8, ALLOCREC_FREE, seq++, ts++, 0x100000 + (uint64_t)i * 4096, 0,
			      0);
	}
	w_save(&w, dir);
	struct alloc_result r;
	char err[256];
	assert_int_equal(alloc_read_dir(dir, &r, err, sizeof err), 0);
	int kept = (N + 6) / 7;
	assert_int_equal(r.unmatched_frees, 0);
	assert_true(fabs(r.inuse_objects - kept) < 1e-9);
	assert_true(fabs(r.inuse_bytes - 16.0 * kept) < 1e-9);
	assert_true(fabs(r.peak_bytes - 16.0 * N) < 1e-9);
	assert_true(r.ncurve <= ALLOC_CURVE_MAX + 1);
	assert_true(fabs(r.curve[r.ncurve - 1].inuse - 16.0 * kept) < 1e-9);
	alloc_result_release(&r);
	rm_dir(dir);
}

static void test_empty_dir(void **state)
{
	(void)state;
	char dir[] = "/tmp/ctxlab-alloc-unit.XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct alloc_result r;
	char err[256];
	assert_int_equal(alloc_read_dir(dir, &r, err, sizeof err), -ENOENT);
	assert_non_null(strstr(err, "no allocation records"));
	struct alloc_counters ac;
	assert_int_equal(alloc_counters_read(dir, &ac), -ENOENT);
	alloc_result_release(&r);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_matching),
		cmocka_unit_test(test_sampled_weights),
		cmocka_unit_test(test_many_scrambled),
		cmocka_unit_test(test_empty_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
