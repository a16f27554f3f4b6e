/* buf: append, consume, compact, growth. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"

static void test_append_consume(void **state)
{
	struct buf b = BUF_INIT;
	assert_int_equal(buf_append(&b, "hello ", 6), 0);
	assert_int_equal(buf_appendf(&b, "%s %d", "world", 42), 0);
	assert_int_equal(buf_used(&b), 14);
	assert_memory_equal(buf_head(&b), "hello world 42", 14);
	buf_consume(&b, 6);
	assert_memory_equal(buf_head(&b), "world 42", 8);
	buf_compact(&b);
	assert_int_equal(b.off, 0);
	assert_memory_equal(b.data, "world 42", 8);
	buf_consume(&b, 100);
	assert_int_equal(buf_used(&b), 0);
	buf_free(&b);
	assert_null(b.data);
}

static void test_growth_keeps_data(void **state)
{
	struct buf b = BUF_INIT;
	char chunk[1000];
	for (int i = 0; i < 1000; i++) {
		memset(chunk, 'a' + i % 26, sizeof(chunk));
		assert_int_equal(buf_append(&b, chunk, sizeof(chunk)), 0);
		if (i % 3 == 0)
			buf_consume(&b, 500);
	}
	/* 1000 appends of 1000 bytes, 334 consumes of 500 */
	assert_int_equal(buf_used(&b), 1000 * 1000 - 334 * 500);
	assert_int_equal(buf_head(&b)[buf_used(&b) - 1], 'a' + 999 % 26);
	buf_free(&b);
}

static void test_read_file(void **state)
{
	char path[] = "/tmp/ctxlab-buf-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	static char big[200000];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 26);
	assert_int_equal(write(fd, big, sizeof(big)), (int)sizeof(big));
	close(fd);
	struct buf b = BUF_INIT;
	assert_int_equal(buf_append(&b, "head:", 5), 0);
	assert_int_equal(buf_read_file(&b, path), 0);
	assert_int_equal(buf_used(&b), 5 + sizeof(big));
	assert_memory_equal(buf_head(&b) + 5, big, sizeof(big));
	assert_int_equal(buf_head(&b)[buf_used(&b)], 0); /* NUL-terminated, not counted */
	unlink(path);
	/* a missing file: -ENOENT and the buffer keeps what it had */
	assert_int_equal(buf_read_file(&b, path), -ENOENT);
	assert_int_equal(buf_used(&b), 5 + sizeof(big));
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_consume),
		cmocka_unit_test(test_growth_keeps_data),
		cmocka_unit_test(test_read_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
