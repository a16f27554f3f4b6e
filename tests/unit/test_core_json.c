/* json writer: structure, escaping of every byte, round trip through jansson. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/json.h"

static void test_structure(void **state)
{
	struct jw w;
	jw_init(&w);
	jw_obj(&w);
	jw_kstr(&w, "engine", "epoll");
	jw_kint(&w, "neg", -5);
	jw_kuint(&w, "big", 18446744073709551615ULL);
	jw_kdouble(&w, "rate", 1.5);
	jw_kdouble(&w, "nan", NAN);
	jw_kbool(&w, "ok", 1);
	jw_key(&w, "list");
	jw_arr(&w);
	jw_int(&w, 1);
	jw_obj(&w);
	jw_end(&w);
	jw_arr(&w);
	jw_end(&w);
	jw_null(&w);
	jw_end(&w);
	jw_end(&w);
	assert_false(w.oom);
	assert_string_equal(w.buf, "{\"engine\":\"epoll\",\"neg\":-5,\"big\":18446744073709551615,"
				   "\"rate\":1.5,\"nan\":null,\"ok\":true,\"list\":[1,{},[],null]}");
	jw_release(&w);
}

static void test_every_byte_round_trips(void **state)
{
	/* All 256 byte values in one string: the output must parse, and valid UTF-8 and ASCII
	 * must come back unchanged; invalid bytes come back as U+00XX. */
	char s[256];
	for (int i = 0; i < 256; i++)
		s[i] = (char)i;
	struct jw w;
	jw_init(&w);
	jw_arr(&w);
	jw_strn(&w, s, sizeof(s));
	jw_str(&w, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	jw_str(&w, "\xed\xa0\x80"); /* a UTF-16 surrogate encoded in UTF-8: invalid */
	jw_end(&w);
	json_error_t je;
	json_t *j = json_loads(w.buf, JSON_ALLOW_NUL, &je); /* \u0000 is valid JSON */
	assert_non_null(j);
	json_t *a = json_array_get(j, 0);
	assert_true(json_is_string(a));
	const char *v = json_string_value(a);
	size_t vlen = json_string_length(a);
	/* bytes 0..127 unchanged, 128..255 each became a 2-byte UTF-8 sequence of U+00XX */
	assert_int_equal(vlen, 128 + 128 * 2);
	assert_memory_equal(v, s, 128);
	for (int i = 128; i < 256; i++) {
		unsigned cp = ((unsigned char)v[128 + (i - 128) * 2] & 0x1F) << 6 |
			      ((unsigned char)v[128 + (i - 128) * 2 + 1] & 0x3F);
		assert_int_equal(cp, (unsigned)i);
	}
	assert_string_equal(json_string_value(json_array_get(j, 1)),
			    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	assert_int_equal(json_string_length(json_array_get(j, 2)), 6);
	json_decref(j);
	jw_release(&w);
}

static void test_doubles(void **state)
{
	double vals[] = {0.1, 1e-300, 123456789.123, -2.5e17, 3.0};
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		struct jw w;
		jw_init(&w);
		jw_double(&w, vals[i]);
		assert_true(strtod(w.buf, NULL) == vals[i]);
		jw_release(&w);
	}
}

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void test_read_file(void **state)
{
	char dir[] = "/tmp/ctxlab-json-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[256];
	snprintf(path, sizeof(path), "%s/a.json", dir);
	put(path, "{\"x\": [1, 2, 3]}\n");
	char err[256];
	json_t *j = json_read_file(path, err, sizeof(err));
	assert_non_null(j);
	assert_int_equal(json_array_size(json_object_get(j, "x")), 3);
	json_decref(j);
	/* a bad file gives an error naming the file and the position */
	put(path, "{\"x\": [1, 2,\n}");
	assert_null(json_read_file(path, err, sizeof(err)));
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "line 2"));
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_structure),
		cmocka_unit_test(test_every_byte_round_trips),
		cmocka_unit_test(test_doubles),
		cmocka_unit_test(test_read_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
