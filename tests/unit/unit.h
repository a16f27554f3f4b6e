/* unit.h: what every unit test gets, force-included by CMake before the test's own code
 * (`-include tests/unit/unit.h`), so that test files stay plain cmocka.
 *
 * - One ctest test per cmocka case: CMake registers `unit/test_FILE/CASE` for each
 *   `cmocka_unit_test(CASE)` in the file and runs the binary with CTXLAB_TEST_CASE=CASE;
 *   cmocka_run_group_tests() below then runs that case alone. A name that matches no case
 *   is an error (exit 1), never an empty pass.
 * - A skip is a skip: cmocka's skip() marks the case, and the binary exits 77, ctest's
 *   SKIP_RETURN_CODE, when nothing failed and something was skipped. Print the reason before
 *   skip() ("SKIP: why"); scripts/test.sh lists skipped tests with their reasons.
 */
#ifndef CTXLAB_TESTS_UNIT_H
#define CTXLAB_TESTS_UNIT_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define UNIT_SKIP_RC 77

static int unit_skipped;

static inline void unit_skip_at(const char *file, int line)
{
	unit_skipped = 1;
	fflush(stdout);
	_skip(file, line);
}

static inline int unit_run(const char *group, const struct CMUnitTest *tests, size_t n,
			   CMFixtureFunction setup, CMFixtureFunction teardown)
{
	const char *only = getenv("CTXLAB_TEST_CASE");
	if (only && *only) {
		size_t i = 0;
		while (i < n && strcmp(tests[i].name, only))
			i++;
		if (i == n) {
			fprintf(stderr, "unit: no test case '%s' in this binary\n", only);
			return 1;
		}
		cmocka_set_test_filter(only);
	}
	int failed = _cmocka_run_group_tests(group, tests, n, setup, teardown);
	if (failed)
		return failed > 125 ? 125 : failed;
	return unit_skipped ? UNIT_SKIP_RC : 0;
}

#undef skip
#define skip() unit_skip_at(__FILE__, __LINE__)
#undef cmocka_run_group_tests
#define cmocka_run_group_tests(group_tests, group_setup, group_teardown)                      \
	unit_run(#group_tests, group_tests, sizeof(group_tests) / sizeof((group_tests)[0]),    \
		 group_setup, group_teardown)

#endif
