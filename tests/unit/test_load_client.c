/* load: the client-protocol table (one file per protocol): lookup, default targets, request
 * framing and response parsing of each client under every split of the input. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "load/client.h"
#include "load/load.h"

static void test_table(void **st)
{
	(void)st;
	assert_string_equal(load_client_names(), "http, echo, sink or chat");
	size_t i = 0;
	for (; load_client_at(i); i++) {
		const struct load_client *c = load_client_at(i);
		assert_ptr_equal(load_client_find(c->name), c);
		assert_non_null(c->frame);
		assert_non_null(c->unit);
		assert_non_null(c->answers);
		/* what counts as a message: exactly one of the three kinds */
		unsigned kind = c->flags & (LOAD_C_REQRESP | LOAD_C_SENDONLY | LOAD_C_FANOUT);
		assert_true(kind == LOAD_C_REQRESP || kind == LOAD_C_SENDONLY || kind == LOAD_C_FANOUT);
		assert_true((c->parse == NULL) == (kind == LOAD_C_SENDONLY));
		if (kind == LOAD_C_FANOUT)
			assert_true(c->stamp && c->greet);
		if (c->state_size)
			assert_non_null(c->reset);
	}
	assert_int_equal(i, 4);
	assert_null(load_client_at(i));
	assert_null(load_client_find("HTTP"));
	assert_null(load_client_find(NULL));
	assert_true(load_client_find("http")->flags & LOAD_C_STATUS);
	assert_false(load_client_find("echo")->flags & LOAD_C_STATUS);
}

static void test_target(void **st)
{
	(void)st;
	char out[64];
	assert_int_equal(load_client_target("http", "127.0.0.1:7000", out, sizeof(out)), 0);
	assert_string_equal(out, "http://127.0.0.1:7000/");
	assert_int_equal(load_client_target("http", "[::1]:80", out, sizeof(out)), 0);
	assert_string_equal(out, "http://[::1]:80/");
	const char *bare[] = {"echo", "sink", "chat"};
	for (int i = 0; i < 3; i++) {
		assert_int_equal(load_client_target(bare[i], "10.0.0.2:9", out, sizeof(out)), 0);
		assert_string_equal(out, "10.0.0.2:9");
	}
	assert_int_equal(load_client_target("nope", "x:1", out, sizeof(out)), -ENOENT);
	assert_int_equal(load_client_target("http", "127.0.0.1:7000", out, 10), -ENAMETOOLONG);
}

/* parses all of in[0..len) fed in pieces of `step`, counting answers */
static int feed(const struct load_client *c, void *state, const char *in, size_t len, size_t step,
		uint64_t inflight, struct load_answer *last)
{
	int n = 0;
	for (size_t off = 0; off < len;) {
		size_t piece = len - off < step ? len - off : step;
		const char *s = in + off;
		size_t left = piece;
		while (left) {
			size_t used = 0;
			struct load_answer a;
			memset(&a, 0, sizeof(a));
			int rc = c->parse(state, s, left, inflight, &used, &a);
			if (rc < 0)
				return -1;
			assert_true(used > 0 && used <= left);
			s += used;
			left -= used;
			if (rc == 1) {
				n++;
				*last = a;
			}
		}
		off += piece;
	}
	return n;
}

static void test_http(void **st)
{
	(void)st;
	const struct load_client *c = load_client_find("http");
	struct load_cfg cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.keepalive = 1;
	const char *hdrs[] = {"X-A: b"};
	struct load_client_opts o = {.hostport = "h:1", .path = "/p", .method = "HEAD",
				     .headers = hdrs, .nheaders = 1};
	struct buf msg = BUF_INIT;
	char note[64] = "", err[128];
	assert_int_equal(c->frame(&cfg, &o, &msg, note, sizeof(note), err, sizeof(err)), 0);
	const char want[] = "HEAD /p HTTP/1.1\r\nHost: h:1\r\nX-A: b\r\n\r\n";
	assert_int_equal(cfg.msg_len, strlen(want));
	assert_memory_equal(buf_head(&msg), want, strlen(want));
	assert_int_equal(cfg.head, 1);
	assert_string_equal(note, "");
	buf_free(&msg);

	cfg.head = 0;
	char state[256];
	assert_true(c->state_size <= sizeof(state));
	const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
			    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
	for (size_t step = 1; step <= sizeof(resp); step++) {
		memset(state, 0, sizeof(state));
		c->reset(state, &cfg);
		struct load_answer a;
		assert_int_equal(feed(c, state, resp, sizeof(resp) - 1, step, 2, &a), 2);
		assert_int_equal(a.status, 404);
		assert_int_equal(a.close, 1);
	}
	/* bytes nobody asked for, and garbage, reset the connection */
	c->reset(state, &cfg);
	struct load_answer a;
	assert_int_equal(feed(c, state, resp, 10, 10, 0, &a), -1);
	c->reset(state, &cfg);
	assert_int_equal(feed(c, state, "XTTP/1.1 200\r\n", 14, 14, 1, &a), -1);
	/* a body delimited by the end of the connection ends at eof */
	c->reset(state, &cfg);
	assert_int_equal(feed(c, state, "HTTP/1.0 200 OK\r\n\r\nab", 21, 21, 1, &a), 0);
	assert_int_equal(c->eof(state, &a), 1);
	assert_int_equal(a.status, 200);
}

static void test_http_check(void **st)
{
	(void)st;
	struct load_cfg cfg;
	memset(&cfg, 0, sizeof(cfg));
	char err[128];
	cfg.bandwidth_bps = 1000;
	assert_int_equal(load_client_find("http")->check(&cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--proto sink or echo"));
	assert_int_equal(load_client_find("chat")->check(&cfg, err, sizeof(err)), -EINVAL);
	cfg.bandwidth_bps = 0;
	cfg.requests = 5;
	assert_int_equal(load_client_find("chat")->check(&cfg, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "chat runs for a duration: use -d");
	assert_int_equal(load_client_find("sink")->check(&cfg, err, sizeof(err)), -EINVAL);
	cfg.rate_per_s = 10;
	assert_int_equal(load_client_find("sink")->check(&cfg, err, sizeof(err)), 0);
	assert_int_equal(load_client_find("http")->check(&cfg, err, sizeof(err)), 0);
}

static void test_echo(void **st)
{
	(void)st;
	const struct load_client *c = load_client_find("echo");
	struct load_cfg cfg;
	memset(&cfg, 0, sizeof(cfg));
	struct load_client_opts o = {.size = 5};
	struct buf msg = BUF_INIT;
	char note[64] = "", err[128];
	assert_int_equal(c->frame(&cfg, &o, &msg, note, sizeof(note), err, sizeof(err)), 0);
	assert_int_equal(cfg.msg_len, 5);
	assert_memory_equal(buf_head(&msg), "xxxx\n", 5);
	buf_free(&msg);
	o.message = "";
	assert_int_equal(c->frame(&cfg, &o, &msg, note, sizeof(note), err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "the message is empty");
	buf_free(&msg);
	o.message = "abc";
	assert_int_equal(c->frame(&cfg, &o, &msg, note, sizeof(note), err, sizeof(err)), 0);
	assert_int_equal(cfg.msg_len, 3);
	buf_free(&msg);

	char state[64];
	assert_true(c->state_size <= sizeof(state));
	const char in[] = "abcabcabcabc"; /* four echoes of 3 bytes */
	for (size_t step = 1; step <= 12; step++) {
		memset(state, 0, sizeof(state));
		c->reset(state, &cfg);
		struct load_answer a;
		assert_int_equal(feed(c, state, in, 12, step, 4, &a), 4);
	}
	/* a complete echo of nothing sent */
	c->reset(state, &cfg);
	struct load_answer a;
	assert_int_equal(feed(c, state, in, 3, 3, 0, &a), -1);
	/* a partial one is not an error yet */
	c->reset(state, &cfg);
	assert_int_equal(feed(c, state, in, 2, 2, 0, &a), 0);
}

static void test_chat(void **st)
{
	(void)st;
	const struct load_client *c = load_client_find("chat");
	struct load_cfg cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.room = "r1";
	struct load_client_opts o = {.size = 10, .have_size = 1};
	struct buf msg = BUF_INIT;
	char note[128] = "", err[128];
	assert_int_equal(c->frame(&cfg, &o, &msg, note, sizeof(note), err, sizeof(err)), 0);
	assert_int_equal(cfg.msg_len, 48);
	assert_non_null(strstr(note, "--size raised to 48"));
	buf_free(&msg);

	char state[64];
	assert_true(c->state_size <= sizeof(state));
	memset(state, 0, sizeof(state));
	c->reset(state, &cfg);
	struct buf out = BUF_INIT;
	assert_int_equal(c->greet(state, &cfg, &out), 0);
	/* the join, then the hello that tells the other members this one is in the room */
	assert_int_equal(buf_used(&out), strlen("/join r1\nctx-hello\n"));
	assert_memory_equal(buf_head(&out), "/join r1\nctx-hello\n", buf_used(&out));
	buf_free(&out);

	char line[4096];
	size_t n = c->stamp(line, sizeof(line), 60, 7, 3, 123456789, 123000000);
	assert_int_equal(n, 60);
	assert_memory_equal(line, "ctx 7 3 123456789 123000000 x", 29);
	assert_int_equal(line[59], '\n');
	/* longer than the buffer: cut at its end, still one line */
	n = c->stamp(line, 40, 60, 7, 3, 123456789, 123000000);
	assert_int_equal(n, 40);
	assert_int_equal(line[39], '\n');

	/* deliveries under every split, a foreign line and an overlong one in between */
	char in[8192];
	int len = snprintf(in, sizeof(in), "42: ctx 7 3 1000 900 xx\nhello\n12: ctx 1 2 2000 0 x\n");
	for (size_t step = 1; step <= (size_t)len; step++) {
		c->reset(state, &cfg);
		struct load_answer a;
		assert_int_equal(feed(c, state, in, (size_t)len, step, 0, &a), 2);
		assert_int_equal(a.sent_ns, 2000);
		assert_int_equal(a.intended_ns, 0);
	}
	memset(in, 'y', 5000);
	len = 5000 + snprintf(in + 5000, sizeof(in) - 5000, "\n1: ctx 1 1 5 4 x\n");
	c->reset(state, &cfg);
	struct load_answer a;
	assert_int_equal(feed(c, state, in, (size_t)len, 1000, 0, &a), 1);
	assert_int_equal(a.sent_ns, 5);
	assert_int_equal(a.intended_ns, 4);
	assert_int_equal(a.hello, 0);

	/* another member's hello is reported as such, under every split; a line that merely
	 * starts like one is not */
	len = snprintf(in, sizeof(in), "9: ctx-hello\n9: ctx-hellox\n3: ctx-hello\r\n");
	for (size_t step = 1; step <= (size_t)len; step++) {
		c->reset(state, &cfg);
		memset(&a, 0, sizeof(a));
		assert_int_equal(feed(c, state, in, 14, step, 0, &a), 1);
		assert_int_equal(a.hello, 1);
		c->reset(state, &cfg);
		assert_int_equal(feed(c, state, in + 14, (size_t)len - 14, step, 0, &a), 0);
	}
	c->fini(state);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),   cmocka_unit_test(test_target),
		cmocka_unit_test(test_http),    cmocka_unit_test(test_http_check),
		cmocka_unit_test(test_echo),    cmocka_unit_test(test_chat),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
