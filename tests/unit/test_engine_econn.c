/* econn: the default connection limits of `ctxlab serve` (every one on, none unlimited). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <sys/resource.h>

#include "engine/econn.h"

static void test_defaults(void **state)
{
	(void)state;
	struct rlimit old;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	struct engine_cfg cfg;
	memset(&cfg, 0, sizeof(cfg));

	/* plenty of descriptors: the fixed default */
	struct rlimit rl = old;
	if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= 20000) {
		rl.rlim_cur = 20000;
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
		econn_defaults(&cfg);
		assert_int_equal(cfg.max_conns, ECONN_DEFAULT_MAX_CONNS);
		assert_int_equal(ECONN_DEFAULT_MAX_CONNS, 10000);
	}
	/* few descriptors: the limit less the reserve */
	rl.rlim_cur = 200;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	econn_defaults(&cfg);
	assert_int_equal(cfg.max_conns, 200 - ECONN_RESERVED_FDS);
	/* under 128: the reserve is half the limit */
	rl.rlim_cur = 64;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	econn_defaults(&cfg);
	assert_int_equal(cfg.max_conns, 32);
	rl.rlim_cur = 1;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	econn_defaults(&cfg);
	assert_int_equal(cfg.max_conns, 1);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);

	assert_int_equal(cfg.max_children, 0);
	assert_true(cfg.idle_timeout_ns == 60 * NS_PER_S);
	assert_true(cfg.header_timeout_ns == 10 * NS_PER_S);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
