/* load: the open-loop pacing schedule and the --source address ranges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "load/pace.h"
#include "load/srcrange.h"

static void test_pace_schedule(void **st)
{
	(void)st;
	struct pace p;
	pace_init(&p, 1000, 1000.0, 4); /* 1000/s over 4 connections */
	assert_int_equal(pace_tick_ns(&p, 0), 1000);
	assert_int_equal(pace_tick_ns(&p, 1), 1000 + 1000000);
	assert_int_equal(pace_tick_ns(&p, 1000), 1000 + 1000000000ULL);
	/* no drift after a billion ticks at 3/s (interval 333333333.33 ns) */
	struct pace q;
	pace_init(&q, 0, 3.0, 1);
	assert_int_equal(pace_tick_ns(&q, 3000000000ULL), 1000000000ULL * 1000000000ULL);
	/* round-robin over connections; each connection at rate/n */
	uint32_t c;
	uint64_t k, when;
	int n = 0;
	while (pace_next_due(&p, 1000 + 9 * 1000000, &c, &k, &when)) {
		assert_int_equal(c, n % 4);
		assert_int_equal(k, n / 4);
		assert_int_equal(when, 1000 + (uint64_t)n * 1000000);
		assert_int_equal(pace_conn_ns(&p, c, k), when);
		n++;
	}
	assert_int_equal(n, 10);
	assert_int_equal(pace_next_ns(&p), 1000 + 10 * 1000000);
	/* a late caller gets every missed tick, in order, each with its own intended time */
	assert_int_equal(pace_next_due(&p, UINT64_MAX / 2, &c, &k, &when), 1);
	assert_int_equal(when, 1000 + 10 * 1000000);
	/* connection 2's 5th send */
	assert_int_equal(pace_conn_ns(&p, 2, 5), 1000 + (5 * 4 + 2) * 1000000ULL);
	/* high rates keep ns resolution: 1M/s */
	struct pace h;
	pace_init(&h, 0, 1e6, 1);
	assert_int_equal(pace_tick_ns(&h, 123456789), 123456789000ULL);
}

static uint32_t ip(const struct net_addr *a)
{
	return ntohl(((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr);
}

static void test_srcrange(void **st)
{
	(void)st;
	struct srcrange r;
	char err[200];
	struct net_addr a;
	assert_int_equal(srcrange_parse("127.0.0.2-127.0.0.20", &r, err, sizeof(err)), 0);
	assert_int_equal(r.count, 19);
	srcrange_addr(&r, 0, &a);
	assert_int_equal(ip(&a), 0x7f000002);
	srcrange_addr(&r, 18, &a);
	assert_int_equal(ip(&a), 0x7f000014);
	srcrange_addr(&r, 19, &a); /* wraps */
	assert_int_equal(ip(&a), 0x7f000002);
	assert_int_equal(((struct sockaddr_in *)&a.ss)->sin_port, 0);
	assert_int_equal(srcrange_parse("127.0.0.9,127.0.1.254-127.0.2.1", &r, err, sizeof(err)), 0);
	assert_int_equal(r.count, 5);
	srcrange_addr(&r, 1, &a);
	assert_int_equal(ip(&a), 0x7f0001fe);
	srcrange_addr(&r, 4, &a);
	assert_int_equal(ip(&a), 0x7f000201);
	const char *bad[] = {"", "127.0.0.5-127.0.0.2", "1.2.3", "127.0.0.1-", "::1", "a,b",
			     "127.0.0.1,,127.0.0.2"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(srcrange_parse(bad[i], &r, err, sizeof(err)), -1);
		assert_non_null(strchr(err, '\''));
	}
	assert_non_null(strstr(err, "e.g. 127.0.0.2-127.0.0.20"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pace_schedule),
		cmocka_unit_test(test_srcrange),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
