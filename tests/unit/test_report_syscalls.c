/* report.md's "System calls per request" table (issue 11): per cell, the median over its ok
 * trials of each name's calls per request, largest first; a name absent from a trial counts 0
 * there; failed trials are left out; no section when no record has syscalls. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "report/report.h"
#include "report/trials.h"

#define SREC(t, st, pr, tot)                                                                        \
	"{\"trial\":" #t ",\"repeat\":" #t ",\"cell\":\"engine=gateway\",\"params\":{\"engine\":"   \
	"\"gateway\"},\"status\":\"" st "\",\"syscalls\":{\"total_per_request\":" tot                \
	",\"per_request\":{" pr "}}}\n"

static void test_table(void **state)
{
	(void)state;
	static const char j[] =
		SREC(0, "ok", "\"sendto\":5,\"read\":1", "7")
		SREC(1, "ok", "\"sendto\":5,\"read\":2,\"futex\":0.9", "8")
		SREC(2, "ok", "\"read\":3,\"sendto\":5", "9")
		SREC(3, "failed", "\"sendmsg\":100", "100");
	struct trials t;
	char err[256];
	assert_int_equal(trials_load_text(&t, j, err, sizeof err), 0);
	struct buf b = BUF_INIT;
	report_md(&t, &b);
	buf_append(&b, "", 1);
	const char *s = strstr(buf_head(&b), "## System calls per request");
	assert_non_null(s);
	/* medians: sendto 5, read 2, futex 0 (absent in two trials): left out; total 8 */
	if (!strstr(s, "| engine=gateway | 3 | 8.00 | sendto 5.00, read 2.00 |"))
		fail_msg("table wrong:\n%s", s);
	assert_null(strstr(s, "futex"));
	assert_null(strstr(s, "sendmsg"));
	buf_free(&b);
	trials_release(&t);
}

static void test_absent(void **state)
{
	(void)state;
	static const char j[] = "{\"trial\":0,\"repeat\":0,\"cell\":\"engine=epoll\",\"params\":"
				"{\"engine\":\"epoll\"},\"status\":\"ok\"}\n";
	struct trials t;
	char err[256];
	assert_int_equal(trials_load_text(&t, j, err, sizeof err), 0);
	struct buf b = BUF_INIT;
	report_md(&t, &b);
	buf_append(&b, "", 1);
	assert_null(strstr(buf_head(&b), "System calls per request"));
	buf_free(&b);
	trials_release(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_absent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
