/* http protocol: exact response bytes, keep-alive rules, pipelining in order under every split
 * of the input, bodies skipped, limits, and the shared malformed corpus
 * (tests/data/http-malformed, also sent over sockets by the engine robustness test). Every
 * input sits right before a PROT_NONE page (see test_proto_harness.h). */
#include "unit/test_proto_harness.h"

#include <errno.h>
#include <stdio.h>

#include "core/clock.h"

#define HELLO_HEAD "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n"
#define HELLO HELLO_HEAD "\r\nhello, world\n"
#define HELLO_CLOSE HELLO_HEAD "Connection: close\r\n\r\nhello, world\n"
#define HELLO_KEEP10 HELLO_HEAD "Connection: keep-alive\r\n\r\nhello, world\n"
#define HEAD_HELLO HELLO_HEAD "\r\n"
#define NOT_FOUND_BODY "not found: try GET / or GET /work?cpu_us=N&mem=SIZE&stride=S\n"
#define NOT_FOUND                                                                          \
	"HTTP/1.1 404 Not Found\r\nContent-Length: 61\r\nContent-Type: text/plain\r\n\r\n" \
	NOT_FOUND_BODY
#define BAD_METHOD                                                                          \
	"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 36\r\nContent-Type: text/plain\r\n" \
	"Allow: GET, HEAD\r\n\r\nmethod not allowed: use GET or HEAD\n"
#define WORK_OK "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nok\n"

static void one(const char *req, const char *want, int closed, int errored)
{
	struct harness h;
	harness_init(&h, "http", NULL, 1);
	harness_feed_str(&h, req);
	assert_buf_eq(&h.out, want, strlen(want));
	assert_int_equal(h.closed, closed);
	assert_int_equal(h.errored, errored);
	harness_free(&h);
}

static void test_get_root(void **unused)
{
	one("GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n", HELLO, 0, 0);
	one("GET /?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", HELLO, 0, 0);
	one("GET / HTTP/1.1\r\n\r\n", HELLO, 0, 0); /* Host is not required */
	one("GET / HTTP/1.1\r\nUser-Agent: \xc3\xa9t\xc3\xa9\r\nX-Empty:\r\nX-Ws: a b\t \r\n\r\n",
	    HELLO, 0, 0);
	/* the 404/405 bodies' Content-Length figures above are right */
	assert_int_equal(strlen(NOT_FOUND_BODY), 61);
	assert_int_equal(strlen("method not allowed: use GET or HEAD\n"), 36);
}

static void test_head(void **unused)
{
	one("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", HEAD_HELLO, 0, 0);
	one("HEAD /nope HTTP/1.1\r\n\r\n",
	    "HTTP/1.1 404 Not Found\r\nContent-Length: 61\r\nContent-Type: text/plain\r\n\r\n", 0, 0);
	/* an error to a HEAD request has no body either */
	one("HEAD / HTTP/1.1\r\nX: a\x01\r\n\r\n",
	    "HTTP/1.1 400 Bad Request\r\nContent-Length: 31\r\nContent-Type: text/plain\r\n"
	    "Connection: close\r\n\r\n",
	    1, 1);
}

static void test_keepalive(void **unused)
{
	one("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", HELLO_CLOSE, 1, 0);
	one("GET / HTTP/1.1\r\nConnection: foo, CLOSE\r\n\r\n", HELLO_CLOSE, 1, 0);
	one("GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", HELLO, 0, 0);
	one("GET / HTTP/1.0\r\n\r\n", HELLO_CLOSE, 1, 0);
	one("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", HELLO_KEEP10, 0, 0);
	one("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", HELLO_CLOSE, 1, 0);
	one("GET / HTTP/1.2\r\n\r\n", HELLO, 0, 0); /* 1.x is served as 1.1 */
	/* nothing after a closing request is answered */
	one("GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n", HELLO_CLOSE, 1, 0);
	one("GET / HTTP/1.0\r\n\r\nGET / HTTP/1.1\r\n\r\n", HELLO_CLOSE, 1, 0);
}

static void test_not_found_and_method(void **unused)
{
	one("GET /nope HTTP/1.1\r\n\r\n", NOT_FOUND, 0, 0);
	one("GET /work/x HTTP/1.1\r\n\r\n", NOT_FOUND, 0, 0);
	one("GET http://a/ HTTP/1.1\r\n\r\n", NOT_FOUND, 0, 0);
	one("DELETE / HTTP/1.1\r\n\r\n", BAD_METHOD, 0, 0);
	one("get / HTTP/1.1\r\n\r\n", BAD_METHOD, 0, 0); /* methods are case-sensitive */
	/* 405 with a body: the body is skipped and the next request is served */
	one("POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n",
	    BAD_METHOD HELLO, 0, 0);
}

static void test_work(void **unused)
{
	uint64_t t0 = clock_thread_cpu_ns();
	one("GET /work?cpu_us=3000&mem=64k&stride=64 HTTP/1.1\r\n\r\n", WORK_OK, 0, 0);
	uint64_t spent = clock_thread_cpu_ns() - t0;
	assert_true(spent >= 3000 * NS_PER_US);
	one("GET /work HTTP/1.1\r\n\r\n", WORK_OK, 0, 0);
	one("GET /work?x=1&&cpu_us=1&mem=1KiB&stride=1&junk HTTP/1.1\r\n\r\n", WORK_OK, 0, 0);
	one("HEAD /work?cpu_us=1 HTTP/1.1\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\n", 0, 0);
	const char *bad[] = {
		"GET /work?cpu_us=abc HTTP/1.1\r\n\r\n",   "GET /work?cpu_us=-1 HTTP/1.1\r\n\r\n",
		"GET /work?cpu_us= HTTP/1.1\r\n\r\n",      "GET /work?cpu_us=10000001 HTTP/1.1\r\n\r\n",
		"GET /work?mem=2G HTTP/1.1\r\n\r\n",       "GET /work?mem=1x HTTP/1.1\r\n\r\n",
		"GET /work?stride=0 HTTP/1.1\r\n\r\n",     "GET /work?mem=99999999999999999999 HTTP/1.1\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct harness h;
		harness_init(&h, "http", NULL, 1);
		harness_feed_str(&h, bad[i]);
		harness_feed_str(&h, "GET / HTTP/1.1\r\n\r\n");
		assert_true(buf_used(&h.out) > 12 && !memcmp(buf_head(&h.out), "HTTP/1.1 400 ", 13));
		/* well framed: the connection stays open and the next request is answered */
		assert_false(h.closed);
		assert_true(buf_used(&h.out) > strlen(HELLO));
		assert_memory_equal(buf_head(&h.out) + buf_used(&h.out) - strlen(HELLO), HELLO,
				    strlen(HELLO));
		harness_free(&h);
	}
}

/* /work's server-side caps: the defaults (1 s, 64 MiB) and a lowered cap answer 400 naming
 * the cap, without running the work; at the cap the request is served. */
static void work_status(const struct proto_cfg *cfg, const char *req, const char *want_head,
			const char *want_in_body, uint64_t max_cpu_ns)
{
	struct harness h;
	harness_init(&h, "http", cfg, 1);
	uint64_t t0 = clock_thread_cpu_ns();
	harness_feed_str(&h, req);
	uint64_t spent = clock_thread_cpu_ns() - t0;
	harness_feed_str(&h, "GET / HTTP/1.1\r\n\r\n");
	assert_true(buf_used(&h.out) > strlen(want_head));
	assert_memory_equal(buf_head(&h.out), want_head, strlen(want_head));
	if (want_in_body) {
		/* not strndup: ASan's strict_string_checks reads past unterminated bytes */
		size_t n = buf_used(&h.out);
		char *o = malloc(n + 1);
		assert_non_null(o);
		memcpy(o, buf_head(&h.out), n);
		o[n] = 0;
		if (!strstr(o, want_in_body))
			fail_msg("reply to %s lacks '%s': %s", req, want_in_body, o);
		free(o);
	}
	assert_true(spent <= max_cpu_ns);
	assert_false(h.closed);
	harness_free(&h);
}

static void test_work_caps(void **unused)
{
	struct proto_cfg cfg;
	proto_cfg_defaults(&cfg);
	assert_int_equal(cfg.work_max_cpu_us, 1000000);
	assert_int_equal(cfg.work_max_mem_bytes, 64 << 20);
	const uint64_t quick = 200 * NS_PER_MS; /* refused: no work ran */
	work_status(&cfg, "GET /work?cpu_us=1000001 HTTP/1.1\r\n\r\n", "HTTP/1.1 400 ",
		    "up to 1000000 (this server's --work-max-cpu-us)", quick);
	work_status(&cfg, "GET /work?mem=65M HTTP/1.1\r\n\r\n", "HTTP/1.1 400 ",
		    "up to 67108864 bytes (this server's --work-max-mem)", quick);
	work_status(&cfg, "GET /work?cpu_us=10000000&mem=1g HTTP/1.1\r\n\r\n", "HTTP/1.1 400 ",
		    "--work-max-cpu-us", quick);
	work_status(&cfg, "GET /work?mem=64M&stride=4096 HTTP/1.1\r\n\r\n", "HTTP/1.1 200 ",
		    NULL, UINT64_MAX);
	cfg.work_max_cpu_us = 500;
	cfg.work_max_mem_bytes = 4096;
	work_status(&cfg, "GET /work?cpu_us=500&mem=4k HTTP/1.1\r\n\r\n", "HTTP/1.1 200 ", NULL,
		    UINT64_MAX);
	work_status(&cfg, "GET /work?cpu_us=501 HTTP/1.1\r\n\r\n", "HTTP/1.1 400 ",
		    "up to 500 ", quick);
	work_status(&cfg, "GET /work?mem=4097 HTTP/1.1\r\n\r\n", "HTTP/1.1 400 ",
		    "up to 4096 bytes", quick);
	/* 0 = no cap beyond the hard limits */
	cfg.work_max_cpu_us = 0;
	cfg.work_max_mem_bytes = 0;
	work_status(&cfg, "GET /work?cpu_us=10000001 HTTP/1.1\r\n\r\n", "HTTP/1.1 400 ",
		    "up to 10000000 ", quick);
	work_status(&cfg, "GET /work?mem=2G HTTP/1.1\r\n\r\n", "HTTP/1.1 400 ",
		    "up to 1073741824 bytes", quick);
}

static void test_cfg_work_knob(void **unused)
{
	struct proto_cfg cfg;
	proto_cfg_defaults(&cfg);
	cfg.work_cpu_us = 2000;
	struct harness h;
	harness_init(&h, "http", &cfg, 1);
	uint64_t t0 = clock_thread_cpu_ns();
	harness_feed_str(&h, "GET / HTTP/1.1\r\n\r\nGET /work?cpu_us=1000 HTTP/1.1\r\n\r\n");
	uint64_t spent = clock_thread_cpu_ns() - t0;
	/* 2000 per request + 1000 from the query */
	assert_true(spent >= 5000 * NS_PER_US);
	assert_buf_eq(&h.out, HELLO WORK_OK, strlen(HELLO WORK_OK));
	harness_free(&h);
}

/* A pipeline exercising every path that keeps the connection open, then a closing request
 * and garbage that must be ignored. */
static const char pipeline[] =
	"\r\n"
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"
	"GET /nope HTTP/1.1\r\n\r\n"
	"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world"
	"GET /?a=b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	"5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: t\r\n\r\n"
	"GET /work?cpu_us=1 HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n"
	"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
	"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"
	"GET / HTTP/1.1\r\n\r\n";
static const char pipeline_out[] = HELLO HEAD_HELLO NOT_FOUND BAD_METHOD HELLO WORK_OK
	HELLO_KEEP10 HELLO_CLOSE;

static void check_pipeline(struct harness *h)
{
	assert_buf_eq(&h->out, pipeline_out, sizeof(pipeline_out) - 1);
	assert_true(h->closed);
	assert_false(h->errored);
}

static void test_pipeline_every_split(void **unused)
{
	size_t n = sizeof(pipeline) - 1;
	struct harness h;

	harness_init(&h, "http", NULL, 1);
	harness_feed(&h, pipeline, n);
	check_pipeline(&h);
	harness_free(&h);

	harness_init(&h, "http", NULL, 1);
	harness_feed_bytewise(&h, pipeline, n);
	check_pipeline(&h);
	harness_free(&h);

	for (size_t at = 0; at <= n; at++) {
		harness_init(&h, "http", NULL, 1);
		harness_feed_split(&h, pipeline, n, at);
		check_pipeline(&h);
		harness_free(&h);
	}

	/* random chunkings (three pieces or more), fixed seed */
	unsigned seed = 12345;
	for (int iter = 0; iter < 300; iter++) {
		harness_init(&h, "http", NULL, 1);
		size_t off = 0;
		while (off < n && !h.closed) {
			size_t k = 1 + (size_t)rand_r(&seed) % 40;
			if (k > n - off)
				k = n - off;
			harness_feed(&h, pipeline + off, k);
			off += k;
		}
		check_pipeline(&h);
		harness_free(&h);
	}
}

static void test_body_consumed_incrementally(void **unused)
{
	struct harness h;
	harness_init(&h, "http", NULL, 1);
	harness_feed_str(&h, "POST / HTTP/1.1\r\nContent-Length: 100000\r\n\r\n");
	char chunk[1000];
	memset(chunk, 'x', sizeof(chunk));
	for (int i = 0; i < 99; i++) {
		harness_feed(&h, chunk, sizeof(chunk));
		/* the engine does not have to keep the body */
		assert_int_equal(buf_used(&h.in), 0);
		assert_int_equal(buf_used(&h.out), 0);
	}
	harness_feed(&h, chunk, sizeof(chunk) - 1);
	assert_int_equal(buf_used(&h.out), 0);
	harness_feed_str(&h, "xGET / HTTP/1.1\r\n\r\n");
	assert_buf_eq(&h.out, BAD_METHOD HELLO, strlen(BAD_METHOD HELLO));
	harness_free(&h);
}

static void test_limits(void **unused)
{
	struct proto_cfg cfg;
	struct harness h;
	struct {
		size_t line, headers, header_bytes, body;
		const char *req;
		const char *status;
	} cases[] = {
		{16, 0, 0, 0, "GET /0123456789 HTTP/1.1\r\n\r\n", "HTTP/1.1 414 "},
		{32, 0, 0, 0, "GET /0123456789 HTTP/1.1\r\n\r\n", "HTTP/1.1 404 "},
		/* exactly at the limit (request line without CRLF = 16 bytes) is fine */
		{16, 0, 0, 0, "GET /?a HTTP/1.1\r\n\r\n", "HTTP/1.1 200 "},
		{15, 0, 0, 0, "GET /?a HTTP/1.1\r\n\r\n", "HTTP/1.1 414 "},
		{0, 2, 0, 0, "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n", "HTTP/1.1 200 "},
		{0, 2, 0, 0, "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", "HTTP/1.1 431 "},
		/* header section = "A: 1\r\nB: 2\r\n\r\n" = 14 bytes */
		{0, 0, 14, 0, "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n", "HTTP/1.1 200 "},
		{0, 0, 13, 0, "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n", "HTTP/1.1 431 "},
		{0, 0, 0, 10, "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789", "HTTP/1.1 405 "},
		{0, 0, 0, 10, "POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n0123456789x", "HTTP/1.1 413 "},
		{0, 0, 0, 10, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n5\r\n"
			      "56789\r\n0\r\n\r\n", "HTTP/1.1 405 "},
		{0, 0, 0, 10, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n6\r\n"
			      "56789a\r\n0\r\n\r\n", "HTTP/1.1 413 "},
		/* trailers are held to the header limits */
		{0, 1, 0, 0, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: 1\r\nB: 2\r\n\r\n",
		 "HTTP/1.1 431 "},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		proto_cfg_defaults(&cfg);
		if (cases[i].line)
			cfg.max_request_line = cases[i].line;
		if (cases[i].headers)
			cfg.max_headers = cases[i].headers;
		if (cases[i].header_bytes)
			cfg.max_header_bytes = cases[i].header_bytes;
		if (cases[i].body)
			cfg.max_body = cases[i].body;
		harness_init(&h, "http", &cfg, 1);
		harness_feed_str(&h, cases[i].req);
		size_t sl = strlen(cases[i].status);
		if (buf_used(&h.out) < sl || memcmp(buf_head(&h.out), cases[i].status, sl)) {
			print_error("case %zu: want %s got %.*s\n", i, cases[i].status,
				    (int)buf_used(&h.out), buf_head(&h.out));
			fail();
		}
		harness_free(&h);
	}
	/* a zeroed cfg means the defaults */
	memset(&cfg, 0, sizeof(cfg));
	harness_init(&h, "http", &cfg, 1);
	harness_feed_str(&h, "GET / HTTP/1.1\r\n\r\n");
	assert_buf_eq(&h.out, HELLO, strlen(HELLO));
	harness_free(&h);
}

/* Incomplete input never answers and never reads past its end, at every length. */
static void test_prefixes_need_more(void **unused)
{
	const char *req = "POST /work?cpu_us=1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\nA: b\r\n\r\n"
			  "3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n";
	size_t n = strlen(req);
	for (size_t k = 0; k < n; k++) {
		struct harness h;
		harness_init(&h, "http", NULL, 1);
		harness_feed(&h, req, k);
		assert_int_equal(buf_used(&h.out), 0);
		assert_false(h.closed);
		harness_free(&h);
	}
}

/* ---- the malformed corpus shared with the engine robustness test ------------------ */

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	struct buf b = BUF_INIT;
	char tmp[4096];
	size_t n;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		buf_append(&b, tmp, n);
	fclose(f);
	buf_append(&b, "", 1);
	*len = buf_used(&b) - 1;
	return b.data;
}

static void check_malformed(const char *name, const char *data, size_t n, int status, int close,
			    int bytewise)
{
	struct harness h;
	char want[16];
	harness_init(&h, "http", NULL, 1);
	if (bytewise)
		harness_feed_bytewise(&h, data, n);
	else
		harness_feed(&h, data, n);
	snprintf(want, sizeof(want), "HTTP/1.1 %d ", status);
	const char *o = buf_used(&h.out) ? buf_head(&h.out) : "";
	size_t ol = buf_used(&h.out);
	if (ol < strlen(want) || memcmp(o, want, strlen(want)) || h.closed != close ||
	    (close && !memmem(o, ol, "\r\nConnection: close\r\n", 21))) {
		print_error("%s (bytewise %d): want status %d close %d, got close %d:\n%.*s\n", name,
			    bytewise, status, close, h.closed, (int)ol, ol ? o : "");
		fail();
	}
	/* exactly one response: it ends with its Content-Length body */
	const char *cl = memmem(o, ol, "Content-Length: ", 16);
	const char *end = memmem(o, ol, "\r\n\r\n", 4);
	assert_non_null(cl);
	assert_non_null(end);
	assert_int_equal((size_t)(end + 4 - o) + strtoul(cl + 16, NULL, 10), ol);
	if (close)
		assert_int_equal(h.errored, status >= 400);
	harness_free(&h);
}

static void test_malformed_corpus(void **unused)
{
	const char *src = getenv("CTXLAB_SRC");
	if (!src) {
		print_message("skipped: CTXLAB_SRC is not set (run through ctest)\n");
		skip();
	}
	char path[4096];
	snprintf(path, sizeof(path), "%s/tests/data/http-malformed/expected.tsv", src);
	size_t tl;
	char *tsv = slurp(path, &tl);
	if (!tsv) {
		print_error("cannot read '%s': %s\n", path, strerror(errno));
		fail();
	}
	int count = 0;
	for (char *line = tsv, *nl; *line; line = nl + 1) {
		nl = strchr(line, '\n');
		assert_non_null(nl); /* every line of expected.tsv ends with a newline */
		*nl = 0;
		char name[256];
		int status, close;
		assert_int_equal(sscanf(line, "%255[^\t]\t%d\t%d", name, &status, &close), 3);
		snprintf(path, sizeof(path), "%s/tests/data/http-malformed/%s", src, name);
		size_t n = 0;
		char *data = slurp(path, &n);
		if (!data) {
			print_error("cannot read '%s': %s\n", path, strerror(errno));
			fail();
		}
		check_malformed(name, data, n, status, close, 0);
		check_malformed(name, data, n, status, close, 1);
		/* and split at every point for the small ones */
		if (n < 300) {
			for (size_t at = 1; at < n; at++) {
				struct harness a, b;
				harness_init(&a, "http", NULL, 1);
				harness_init(&b, "http", NULL, 1);
				harness_feed(&a, data, n);
				harness_feed_split(&b, data, n, at);
				assert_buf_eq(&b.out, buf_head(&a.out), buf_used(&a.out));
				harness_free(&a);
				harness_free(&b);
			}
		}
		free(data);
		count++;
	}
	free(tsv);
	assert_true(count >= 30);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_root),
		cmocka_unit_test(test_head),
		cmocka_unit_test(test_keepalive),
		cmocka_unit_test(test_not_found_and_method),
		cmocka_unit_test(test_work),
		cmocka_unit_test(test_cfg_work_knob),
		cmocka_unit_test(test_pipeline_every_split),
		cmocka_unit_test(test_body_consumed_incrementally),
		cmocka_unit_test(test_work_caps),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_prefixes_need_more),
		cmocka_unit_test(test_malformed_corpus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
