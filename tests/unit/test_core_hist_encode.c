/* hist_encode / hist_merge_encoded: two histograms carried as text and merged equal, slot for
 * slot, the in-memory hist_merge of the originals (count, min, max, every percentile, the
 * mean); bad text is refused and leaves the target unchanged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/hist.h"

static uint64_t xs = 88172645463325252ULL;
static uint64_t rnd(void)
{
	xs ^= xs << 13;
	xs ^= xs >> 7;
	xs ^= xs << 17;
	return xs;
}

static char *enc(const struct hist *h)
{
	struct buf b = BUF_INIT;
	assert_int_equal(hist_encode(h, &b), 0);
	assert_int_equal(buf_append(&b, "", 1), 0);
	char *s = strdup(buf_head(&b));
	buf_free(&b);
	return s;
}

static void test_merge_equals_in_memory(void **state)
{
	(void)state;
	struct hist *a = hist_new(), *b = hist_new(), *mem = hist_new(), *txt = hist_new();
	for (int i = 0; i < 200000; i++)
		hist_record(a, 1000 + rnd() % 5000000);          /* 1 us .. 5 ms */
	for (int i = 0; i < 50000; i++)
		hist_record(b, 20000000 + rnd() % 900000000);    /* a slower host */
	hist_record(b, 0);                                  /* clamped */
	hist_merge(mem, a);
	hist_merge(mem, b);
	char *ta = enc(a), *tb = enc(b);
	assert_int_equal(hist_merge_encoded(txt, ta), 0);
	assert_int_equal(hist_merge_encoded(txt, tb), 0);
	assert_int_equal(hist_count(txt), 250001);
	assert_int_equal(hist_count(txt), hist_count(mem));
	assert_int_equal(hist_clamped(txt), 1);
	assert_int_equal(hist_min(txt), hist_min(mem));
	assert_int_equal(hist_max(txt), hist_max(mem));
	assert_true(hist_mean(txt) == hist_mean(mem));
	for (double p = 0; p <= 100; p += 0.5)
		assert_int_equal(hist_percentile(txt, p), hist_percentile(mem, p));
	assert_int_equal(hist_percentile(txt, 99.99), hist_percentile(mem, 99.99));
	/* the round trip is the identity */
	char *tt = enc(txt), *tm = enc(mem);
	assert_string_equal(tt, tm);
	free(ta), free(tb), free(tt), free(tm);
	hist_free(a), hist_free(b), hist_free(mem), hist_free(txt);
}

static void test_empty_and_bad(void **state)
{
	(void)state;
	struct hist *e = hist_new(), *h = hist_new();
	char *te = enc(e);
	assert_string_equal(te, "hist1 0 0 0 0");
	assert_int_equal(hist_merge_encoded(h, te), 0);
	assert_int_equal(hist_count(h), 0);
	hist_record(h, 5000);
	const char *bad[] = {"", "hist1", "hist2 1 0 5 5 5:1", "hist1 2 0 5000 5000 5000:1",
			     "hist1 1 0 5000 5000 999999999:1", "hist1 2 0 1 9 9:1 1:1",
			     "hist1 1 0 5000 5000 5000:0", "hist1 1 0 5000 5000 5000:1 x",
			     "hist1 1 0 9 5 5:1"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(hist_merge_encoded(h, bad[i]), -22);
	assert_int_equal(hist_count(h), 1);
	assert_int_equal(hist_min(h), 5000);
	free(te);
	hist_free(e), hist_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge_equals_in_memory),
		cmocka_unit_test(test_empty_and_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
