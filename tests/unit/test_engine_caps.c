/* engine: engines declare the protocol capabilities they need, never protocol names; the input
 * bound of a connection is the protocol's own plus the read slack; set-up errors go to the
 * caller's error buffer, not to stderr. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine/econn.h"
#include "engine/engine.h"

static void test_speaks(void **state)
{
	(void)state;
	char buf[256];
	const char *in_tree[] = {"fork", "prefork", "thread", "epoll", "coro", "uring", "gateway"};
	for (size_t i = 0; i < sizeof(in_tree) / sizeof(in_tree[0]); i++) {
		const struct engine *e = engine_find(in_tree[i]);
		assert_non_null(e);
		assert_int_equal(e->needs, 0);
		/* an engine that runs struct proto code speaks the whole table */
		assert_string_equal(engine_protos(e, buf, sizeof(buf)), proto_names());
		for (size_t k = 0; proto_at(k); k++)
			assert_true(engine_speaks(e, proto_at(k)));
	}
	const struct engine *nginx = engine_find("nginx");
	assert_non_null(nginx);
	assert_string_equal(engine_protos(nginx, buf, sizeof(buf)), "http");
	assert_false(engine_speaks(nginx, proto_find("chat")));
	assert_false(engine_speaks(nginx, NULL));
	assert_string_equal(engine_protos(engine_find("go"), buf, sizeof(buf)),
			    "sink echo http chat");

	/* a protocol without the capability an outside engine needs is refused by it only */
	struct proto fresh = *proto_find("echo");
	fresh.name = "fresh";
	fresh.caps = 0;
	assert_false(engine_speaks(engine_find("go"), &fresh));
	assert_false(engine_speaks(nginx, &fresh));
	assert_true(engine_speaks(engine_find("epoll"), &fresh));

	/* truncation keeps a terminated string */
	assert_string_equal(engine_protos(nginx, buf, 3), "");
}

static void test_in_bound(void **state)
{
	(void)state;
	struct engine_cfg cfg;
	memset(&cfg, 0, sizeof(cfg));
	proto_cfg_defaults(&cfg.pcfg);
	struct econn_cfg ec;
	for (size_t k = 0; proto_at(k); k++) {
		cfg.proto = proto_at(k);
		econn_cfg_init(&ec, &cfg);
		assert_int_equal(ec.in_max_bytes,
				 proto_at(k)->in_max_bytes(&cfg.pcfg) + 2 * ENGINE_READ_BUF);
	}
	cfg.proto = proto_find("chat");
	cfg.pcfg.max_line = 1000;
	econn_cfg_init(&ec, &cfg);
	assert_int_equal(ec.in_max_bytes, 1002 + 2 * ENGINE_READ_BUF);
}

/* stderr into a temp file while fn runs; returns the bytes written there */
static long stderr_bytes(void (*fn)(void *), void *arg)
{
	fflush(stderr);
	FILE *tmp = tmpfile();
	assert_non_null(tmp);
	int saved = dup(2);
	dup2(fileno(tmp), 2);
	fn(arg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	long n = lseek(fileno(tmp), 0, SEEK_END);
	fclose(tmp);
	return n;
}

static void fail_twice(void *arg)
{
	const struct engine_cfg *cfg = arg;
	assert_int_equal(engine_fail(cfg, "first %d", 1), -1);
	assert_int_equal(engine_fail(cfg, "second"), -1);
}

static void listen_taken(void *arg)
{
	struct engine_cfg *cfg = arg;
	struct net_addr bound;
	int fd = econn_listen(cfg, 0, 1, 0, &bound);
	assert_true(fd < 0);
}

static void test_fail_buffer(void **state)
{
	(void)state;
	char err[128] = "";
	struct engine_cfg cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.err = err;
	cfg.errlen = sizeof(err);
	/* with a buffer: nothing printed, the first message kept */
	assert_int_equal(stderr_bytes(fail_twice, &cfg), 0);
	assert_string_equal(err, "first 1");
	/* without one: printed through the logger */
	cfg.err = NULL;
	assert_true(stderr_bytes(fail_twice, &cfg) > 0);

	/* a library set-up error (a taken port) lands in the buffer, not on stderr */
	char eb[64];
	struct net_addr any;
	assert_int_equal(net_parse("127.0.0.1:0", &any, eb, sizeof(eb)), 0);
	struct net_addr got;
	int lfd = net_listen(&any, 16, 0, &got);
	assert_true(lfd >= 0);
	cfg.listen = got;
	cfg.err = err;
	err[0] = 0;
	assert_int_equal(stderr_bytes(listen_taken, &cfg), 0);
	assert_non_null(strstr(err, "cannot listen on '127.0.0.1:"));
	close(lfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_speaks),
		cmocka_unit_test(test_in_bound),
		cmocka_unit_test(test_fail_buffer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
