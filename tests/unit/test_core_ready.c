/* ready: the ready line formatted and parsed in one place; the examples here are the ones
 * tests/integration/ctxlabtest.py's READY_RE must accept too (test_cli.py checks a real one). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "core/ready.h"

static void test_round_trip(void **state)
{
	(void)state;
	char line[256];
	assert_true(ready_format(line, sizeof line, "127.0.0.1:7000", "epoll", "http", 42) > 0);
	assert_string_equal(line, "listening on 127.0.0.1:7000 engine=epoll proto=http pid=42");
	struct ready r;
	assert_int_equal(ready_parse(line, &r), 0);
	assert_string_equal(r.addr, "127.0.0.1:7000");
	assert_string_equal(r.host, "127.0.0.1");
	assert_int_equal(r.port, 7000);
	assert_string_equal(r.engine, "epoll");
	assert_string_equal(r.proto, "http");
	assert_int_equal(r.pid, 42);
}

static void test_ipv6_and_newline(void **state)
{
	(void)state;
	struct ready r;
	assert_int_equal(ready_parse("listening on [::1]:65535 engine=go proto=echo pid=7\n", &r), 0);
	assert_string_equal(r.host, "::1");
	assert_int_equal(r.port, 65535);
	assert_string_equal(r.proto, "echo");
	assert_int_equal(r.pid, 7);
}

static void test_address_only(void **state)
{
	(void)state;
	/* outside peers (load_testsrv) print only the address */
	struct ready r;
	assert_int_equal(ready_parse("listening on 0.0.0.0:80", &r), 0);
	assert_int_equal(r.port, 80);
	assert_string_equal(r.engine, "");
	assert_int_equal(r.pid, 0);
}

static void test_not_ready_lines(void **state)
{
	(void)state;
	struct ready r;
	assert_int_equal(ready_parse("ctxlab: warning: something", &r), -EINVAL);
	assert_int_equal(ready_parse("listening on ", &r), -EINVAL);
	assert_int_equal(ready_parse("listening on 127.0.0.1 engine=x", &r), -EINVAL);  /* no port */
	assert_int_equal(ready_parse("listening on 127.0.0.1:99999", &r), -EINVAL);     /* port range */
	assert_int_equal(ready_parse("listening on 1.2.3.4:80 pid=abc", &r), -EINVAL);
	assert_int_equal(ready_parse("listening on 1.2.3.4:80 pid=-3", &r), -EINVAL);
	assert_int_equal(ready_parse("listening on [::1:80", &r), -EINVAL);
	assert_int_equal(ready_parse("listening on  1.2.3.4:80", &r), -EINVAL);
	char longname[200];
	memset(longname, 'e', sizeof longname);
	longname[sizeof longname - 1] = 0;
	char line[300];
	snprintf(line, sizeof line, "listening on 1.2.3.4:80 engine=%s", longname);
	assert_int_equal(ready_parse(line, &r), -ERANGE);
	/* a later field this version does not know is ignored */
	assert_int_equal(ready_parse("listening on 1.2.3.4:80 engine=e proto=p pid=1 tls=no", &r), 0);
}

static void test_format_refuses_spaces(void **state)
{
	(void)state;
	char line[128];
	assert_int_equal(ready_format(line, sizeof line, "1.2.3.4:80", "two words", "p", 1), -EINVAL);
	assert_int_equal(ready_format(line, sizeof line, "1.2.3.4:80", "e", "", 1), -EINVAL);
	assert_int_equal(ready_format(line, sizeof line, "1.2.3.4:80", "e", "p", 0), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_ipv6_and_newline),
		cmocka_unit_test(test_address_only),
		cmocka_unit_test(test_not_ready_lines),
		cmocka_unit_test(test_format_refuses_spaces),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
