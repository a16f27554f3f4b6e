/* log: the message format, and quiet (a command's -q): info() silent, warn() and error() not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

/* Runs fn with stderr going to a pipe; returns what it wrote (static buffer). */
static const char *captured(void (*fn)(void))
{
	static char got[1024];
	int p[2];
	assert_int_equal(pipe(p), 0);
	int saved = dup(2);
	assert_true(saved >= 0);
	assert_int_equal(dup2(p[1], 2), 2);
	close(p[1]);
	fn();
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	ssize_t n = read(p[0], got, sizeof got - 1);
	close(p[0]);
	got[n > 0 ? n : 0] = 0;
	return got;
}

static void say_all(void)
{
	info("an info %d", 1);
	warn("a warning %d", 2);
	error("an error %d", 3);
}

static void test_loud(void **state)
{
	log_set_prog("ctxlab");
	log_set_quiet(0);
	assert_string_equal(captured(say_all), "ctxlab: an info 1\n"
					       "ctxlab: warning: a warning 2\n"
					       "ctxlab: error: an error 3\n");
}

static void test_quiet(void **state)
{
	log_set_prog("ctxlab");
	log_set_quiet(1);
	assert_string_equal(captured(say_all), "ctxlab: warning: a warning 2\n"
					       "ctxlab: error: an error 3\n");
	log_set_quiet(0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loud),
		cmocka_unit_test(test_quiet),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
