/* chat protocol: rooms joined through the engine's hooks, publish formatting, "\r\n", empty
 * lines, line limits, splits across feeds, the overflow reason line. The fake engine
 * (test_proto_harness.h) records hook calls as "J room\n" and "P <message>". */
#include "unit/test_proto_harness.h"

#include <errno.h>
#include <stdio.h>

#include "core/clock.h"

static void test_join_and_publish(void **unused)
{
	struct harness h;
	harness_init(&h, "chat", NULL, 42);
	assert_int_equal(h.init_rc, 0);
	/* joined the lobby at init, before any byte */
	assert_buf_eq(&h.log, "J lobby\n", 8);
	harness_feed_str(&h, "hello\nworld\r\n\n\r\n/join x\n");
	const char want[] = "J lobby\nP 42: hello\nP 42: world\nP 42: /join x\n";
	assert_buf_eq(&h.log, want, sizeof(want) - 1);
	/* the sender gets nothing back */
	assert_int_equal(buf_used(&h.out), 0);
	assert_false(h.closed);
	/* a partial line waits */
	harness_feed_str(&h, "par");
	assert_buf_eq(&h.log, want, sizeof(want) - 1);
	harness_feed_str(&h, "tial\r");
	assert_buf_eq(&h.log, want, sizeof(want) - 1);
	harness_feed_str(&h, "\n");
	const char want2[] = "J lobby\nP 42: hello\nP 42: world\nP 42: /join x\nP 42: partial\n";
	assert_buf_eq(&h.log, want2, sizeof(want2) - 1);
	assert_int_equal(buf_used(&h.in), 0);
	harness_free(&h);
}

static void test_join_room(void **unused)
{
	struct harness h;
	harness_init(&h, "chat", NULL, 7);
	/* empty lines before the first line do not count as the first line */
	harness_feed_str(&h, "\r\n\n/join kitchen\r\nhi\n/join other\n");
	const char want[] = "J lobby\nJ kitchen\nP 7: hi\nP 7: /join other\n";
	assert_buf_eq(&h.log, want, sizeof(want) - 1);
	harness_free(&h);

	/* /join lobby: already there, no second join */
	harness_init(&h, "chat", NULL, 7);
	harness_feed_str(&h, "/join lobby\nhi\n");
	assert_buf_eq(&h.log, "J lobby\nP 7: hi\n", 16);
	harness_free(&h);

	/* "/joinx" is a message */
	harness_init(&h, "chat", NULL, 7);
	harness_feed_str(&h, "/joinx\n");
	assert_buf_eq(&h.log, "J lobby\nP 7: /joinx\n", 20);
	harness_free(&h);

	const char *bad[] = {"/join\n", "/join \n", "/join a b\n", "/join a\tb\n",
			     "/join 01234567890123456789012345678901234567890123456789012345678901234\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		harness_init(&h, "chat", NULL, 7);
		harness_feed_str(&h, bad[i]);
		assert_true(h.errored);
		assert_true(buf_used(&h.out) > 0 && !memcmp(buf_head(&h.out), "* error: bad room", 17));
		assert_buf_eq(&h.log, "J lobby\n", 8);
		harness_free(&h);
	}
	/* 64 characters is the longest room name */
	harness_init(&h, "chat", NULL, 7);
	harness_feed_str(&h, "/join 0123456789012345678901234567890123456789012345678901234567890123\n");
	assert_false(h.errored);
	assert_int_equal(buf_used(&h.log), 8 + 2 + 64 + 1);
	harness_free(&h);
}

static void test_hook_errors(void **unused)
{
	struct harness h;
	harness_init(&h, "chat", NULL, 1);
	h.publish_rc = -ENOMEM;
	harness_feed_str(&h, "a\n");
	assert_true(h.errored);
	assert_true(buf_used(&h.out) > 8 && !memcmp(buf_head(&h.out), "* error: ", 9));
	harness_free(&h);

	harness_init(&h, "chat", NULL, 1);
	h.join_rc = -EINVAL;
	harness_feed_str(&h, "/join r\n");
	assert_true(h.errored);
	harness_free(&h);
}

static void test_long_lines(void **unused)
{
	struct proto_cfg cfg;
	proto_cfg_defaults(&cfg);
	cfg.max_line = 8;
	struct harness h;
	const char *err = "* error: line over 8 bytes (send shorter lines)\n";

	/* exactly 8 bytes, with and without \r */
	harness_init(&h, "chat", &cfg, 3);
	harness_feed_str(&h, "12345678\n12345678\r\n");
	assert_buf_eq(&h.log, "J lobby\nP 3: 12345678\nP 3: 12345678\n", 36);
	assert_false(h.closed);
	harness_free(&h);

	/* 9 bytes: error, even before the newline arrives */
	harness_init(&h, "chat", &cfg, 3);
	harness_feed_str(&h, "ok\n123456789");
	assert_true(h.errored);
	assert_buf_eq(&h.out, err, strlen(err));
	assert_buf_eq(&h.log, "J lobby\nP 3: ok\n", 16);
	harness_free(&h);

	/* 8 bytes and a \r: still waiting (the \r may precede \n) */
	harness_init(&h, "chat", &cfg, 3);
	harness_feed_str(&h, "12345678\r");
	assert_false(h.closed);
	harness_feed_str(&h, "x");
	assert_true(h.errored);
	assert_buf_eq(&h.out, err, strlen(err));
	harness_free(&h);

	/* a complete over-long line */
	harness_init(&h, "chat", &cfg, 3);
	harness_feed_str(&h, "123456789\n");
	assert_true(h.errored);
	assert_buf_eq(&h.out, err, strlen(err));
	assert_buf_eq(&h.log, "J lobby\n", 8);
	harness_free(&h);

	/* a long line with the default limit: published whole (heap path) */
	harness_init(&h, "chat", NULL, 3);
	static char big[60000];
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\n';
	harness_feed(&h, big, sizeof(big));
	assert_false(h.closed);
	assert_int_equal(buf_used(&h.log), 8 + 2 + 3 + sizeof(big));
	harness_free(&h);
}

static void test_every_split(void **unused)
{
	const char in[] = "\n/join r1\r\nfirst line\nsecond\r\n\r\nthird one is a bit longer\nlast\r\n";
	size_t n = sizeof(in) - 1;
	struct harness a, b;
	harness_init(&a, "chat", NULL, 5);
	harness_feed(&a, in, n);
	const char want[] = "J lobby\nJ r1\nP 5: first line\nP 5: second\n"
			    "P 5: third one is a bit longer\nP 5: last\n";
	assert_buf_eq(&a.log, want, sizeof(want) - 1);
	for (size_t at = 0; at <= n; at++) {
		harness_init(&b, "chat", NULL, 5);
		harness_feed_split(&b, in, n, at);
		assert_buf_eq(&b.log, want, sizeof(want) - 1);
		assert_int_equal(buf_used(&b.out), 0);
		harness_free(&b);
	}
	harness_init(&b, "chat", NULL, 5);
	harness_feed_bytewise(&b, in, n);
	assert_buf_eq(&b.log, want, sizeof(want) - 1);
	harness_free(&b);
	harness_free(&a);
}

static void test_overflow_line(void **unused)
{
	struct proto_cfg cfg;
	proto_cfg_defaults(&cfg);
	cfg.max_outbuf = 4096;
	struct harness h;
	harness_init(&h, "chat", &cfg, 1);
	assert_non_null(h.p->overflow);
	h.p->overflow(h.state, &h.out);
	const char want[] = "* disconnected: output queue over 4096 bytes (slow reader)\n";
	assert_buf_eq(&h.out, want, sizeof(want) - 1);
	harness_free(&h);
}

static void test_work_per_line(void **unused)
{
	struct proto_cfg cfg;
	proto_cfg_defaults(&cfg);
	cfg.work_cpu_us = 1500;
	struct harness h;
	harness_init(&h, "chat", &cfg, 1);
	uint64_t t0 = clock_thread_cpu_ns();
	harness_feed_str(&h, "a\n\nb\nc"); /* two published lines; the empty one and "c" do no work */
	uint64_t spent = clock_thread_cpu_ns() - t0;
	assert_true(spent >= 2 * 1500 * NS_PER_US);
	assert_true(spent < 60 * 1500 * NS_PER_US); /* not per byte */
	harness_free(&h);
}

static void test_no_hooks(void **unused)
{
	/* an engine without chat hooks: lines are consumed, nothing crashes */
	const struct proto *p = proto_find("chat");
	struct proto_cfg cfg;
	proto_cfg_defaults(&cfg);
	struct proto_env env = {.cfg = &cfg, .conn_id = 1};
	void *st = malloc(p->state_size);
	assert_int_equal(p->init(st, &env), 0);
	struct buf out = BUF_INIT;
	int flags = 0;
	assert_int_equal(p->feed(st, "a\nb", 3, &out, &flags), 2);
	assert_int_equal(p->feed(st, "b", 1, &out, &flags), PROTO_AGAIN);
	assert_int_equal(p->feed(st, "", 0, &out, &flags), PROTO_AGAIN);
	assert_int_equal(buf_used(&out), 0);
	free(st);
	buf_free(&out);
}

/* Engines pick their delivery machinery from p->fanout, never from the name: exactly the
 * protocols that publish have it. */
static void test_fanout_flag(void **unused)
{
	(void)unused;
	assert_int_equal(proto_find("chat")->fanout, 1);
	assert_int_equal(proto_find("sink")->fanout, 0);
	assert_int_equal(proto_find("echo")->fanout, 0);
	assert_int_equal(proto_find("http")->fanout, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_join_and_publish),
		cmocka_unit_test(test_join_room),
		cmocka_unit_test(test_hook_errors),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_every_split),
		cmocka_unit_test(test_overflow_line),
		cmocka_unit_test(test_work_per_line),
		cmocka_unit_test(test_no_hooks),
		cmocka_unit_test(test_fanout_flag),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
