/* load: the streaming HTTP response parser and the request builder. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "load/httpreq.h"
#include "load/httpresp.h"

/* Copies s right before a PROT_NONE page, so any read past the end faults. */
static const char *guarded(const char *s, size_t n)
{
	static char *page;
	long ps = sysconf(_SC_PAGESIZE);
	if (!page) {
		page = mmap(NULL, (size_t)ps * 3, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		assert_true(page != MAP_FAILED);
		assert_int_equal(mprotect(page + 2 * ps, (size_t)ps, PROT_NONE), 0);
	}
	assert_true(n <= (size_t)ps * 2);
	char *dst = page + 2 * ps - n;
	memcpy(dst, s, n);
	return dst;
}

/* Feeds text in pieces of `step` bytes; returns the number of complete responses, checking
 * each status against statuses[]. */
static int feed_all(const char *text, size_t step, int head, const int *statuses, int *keep)
{
	struct httpresp p;
	httpresp_init(&p, head);
	size_t len = strlen(text), off = 0;
	int n = 0;
	while (off < len) {
		size_t chunk = len - off < step ? len - off : step;
		const char *b = guarded(text + off, chunk);
		size_t pos = 0;
		while (pos < chunk) {
			size_t used = 0;
			int rc = httpresp_feed(&p, b + pos, chunk - pos, &used);
			if (rc < 0)
				return -1;
			pos += used;
			if (rc == 1) {
				assert_int_equal(p.status, statuses[n]);
				if (keep)
					keep[n] = p.keepalive;
				n++;
				httpresp_init(&p, head);
			}
		}
		off += chunk;
	}
	if (httpresp_eof(&p) == 1) {
		assert_int_equal(p.status, statuses[n]);
		n++;
	}
	return n;
}

static const char pipelined[] =
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello"
	"HTTP/1.1 404 Not Found\r\ncontent-length:0\r\n\r\n"
	"HTTP/1.1 100 Continue\r\n\r\n"
	"HTTP/1.1 201 Created\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n"
	"5;name=v\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: t\r\n\r\n"
	"HTTP/1.1 204 No Content\r\n\r\n"
	"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok"
	"HTTP/1.1 500 Oops\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbad";

static void test_every_split(void **st)
{
	(void)st;
	int want[] = {200, 404, 201, 204, 200, 500};
	for (size_t step = 1; step <= sizeof(pipelined); step++) {
		int keep[6];
		assert_int_equal(feed_all(pipelined, step, 0, want, keep), 6);
		assert_int_equal(keep[0], 1);
		assert_int_equal(keep[4], 1); /* HTTP/1.0 + keep-alive */
		assert_int_equal(keep[5], 0); /* Connection: close */
	}
}

static void test_body_until_close(void **st)
{
	(void)st;
	int want[] = {200};
	const char *t = "HTTP/1.1 200 OK\r\nX: y\r\n\r\nsome body of unknown length";
	for (size_t step = 1; step < 10; step++)
		assert_int_equal(feed_all(t, step, 0, want, NULL), 1);
	/* cut short: Content-Length promises more than arrives */
	struct httpresp p;
	size_t used;
	httpresp_init(&p, 0);
	const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
	assert_int_equal(httpresp_feed(&p, s, strlen(s), &used), 0);
	assert_int_equal(httpresp_eof(&p), -1);
	httpresp_init(&p, 0);
	assert_int_equal(httpresp_eof(&p), 0);
}

static void test_head_has_no_body(void **st)
{
	(void)st;
	int want[] = {200, 200};
	const char *t = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
			"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
	assert_int_equal(feed_all(t, 7, 1, want, NULL), 2);
}

static void test_malformed(void **st)
{
	(void)st;
	const char *bad[] = {
		"HTTX/1.1 200 OK\r\n\r\n",
		"HTTP/1.1 2x0 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
		"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int want[] = {200};
		assert_int_equal(feed_all(bad[i], 3, 0, want, NULL), -1);
	}
	/* an endless header section is refused */
	struct httpresp p;
	size_t used;
	char big[4096];
	memset(big, 'a', sizeof(big));
	httpresp_init(&p, 0);
	const char *s = "HTTP/1.1 200 OK\r\nX: ";
	assert_int_equal(httpresp_feed(&p, s, strlen(s), &used), 0);
	int rc = 0;
	for (int i = 0; i < 20 && rc == 0; i++)
		rc = httpresp_feed(&p, big, sizeof(big), &used);
	assert_int_equal(rc, -1);
}

/* The whole-name and whole-status-line fast paths agree with the byte-by-byte path: every
 * split of every case gives the same answer. */
static void test_fast_paths_match_bytewise(void **st)
{
	(void)st;
	const char *bad[] = {
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\ncontent-LENGTH: 2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nBad\rHeader: x\r\n\r\n",
		"HTTP/1.1 099 OK\r\n\r\n",
		"HTTP/1.2 200 OK\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int want[] = {200};
		for (size_t step = 1; step <= strlen(bad[i]); step++)
			assert_int_equal(feed_all(bad[i], step, 0, want, NULL), -1);
	}
	/* near-miss names are not the headers they resemble: no length, so the body runs to
	 * the close and the two would-be responses are one */
	const char *t = "HTTP/1.1 200 OK\r\nContent-Lengths: 2\r\nXConnection: close\r\n"
			":\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n";
	const char *u = "HTTP/1.1  201 OK\r\nCONTENT-length: 2\r\nconnection: CLOSE\r\n\r\nok";
	for (size_t step = 1; step <= strlen(t); step++) {
		int want[] = {200};
		assert_int_equal(feed_all(t, step, 0, want, NULL), 1); /* ended by the close */
	}
	for (size_t step = 1; step <= strlen(u); step++) {
		int want[] = {201}, keep[1];
		assert_int_equal(feed_all(u, step, 0, want, keep), 1);
		assert_int_equal(keep[0], 0);
	}
}

static void test_request_builder(void **st)
{
	(void)st;
	char err[128];
	struct buf b = BUF_INIT;
	const char *hs[] = {"X-A: 1", "Accept: */*"};
	struct httpreq r = {.host = "127.0.0.1:80", .path = "/p?q=1", .headers = hs, .nheaders = 2,
			    .keepalive = 1};
	assert_int_equal(httpreq_build(&b, &r, err, sizeof(err)), 0);
	buf_append(&b, "", 1);
	assert_string_equal(buf_head(&b), "GET /p?q=1 HTTP/1.1\r\nHost: 127.0.0.1:80\r\nX-A: 1\r\n"
					  "Accept: */*\r\n\r\n");
	buf_clear(&b);
	struct httpreq r2 = {.method = "POST", .host = "h:1", .body = "abc", .body_len = 3,
			     .keepalive = 0};
	assert_int_equal(httpreq_build(&b, &r2, err, sizeof(err)), 0);
	buf_append(&b, "", 1);
	assert_string_equal(buf_head(&b), "POST / HTTP/1.1\r\nHost: h:1\r\nContent-Length: 3\r\n"
					  "Connection: close\r\n\r\nabc");
	buf_clear(&b);
	const char *hh[] = {"Host: other"};
	struct httpreq r3 = {.host = "h:1", .headers = hh, .nheaders = 1, .keepalive = 1};
	assert_int_equal(httpreq_build(&b, &r3, err, sizeof(err)), 0);
	buf_append(&b, "", 1);
	assert_string_equal(buf_head(&b), "GET / HTTP/1.1\r\nHost: other\r\n\r\n");
	/* injection and nonsense are refused */
	const char *evil[] = {"X: a\r\nY: b"};
	struct httpreq r4 = {.host = "h:1", .headers = evil, .nheaders = 1};
	assert_int_equal(httpreq_build(&b, &r4, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "bad header"));
	struct httpreq r5 = {.host = "h:1", .path = "/a b"};
	assert_int_equal(httpreq_build(&b, &r5, err, sizeof(err)), -EINVAL);
	struct httpreq r6 = {.host = "h:1", .method = "G T"};
	assert_int_equal(httpreq_build(&b, &r6, err, sizeof(err)), -EINVAL);
	buf_free(&b);
}

static void test_split_url(void **st)
{
	(void)st;
	char hp[64], path[64], err[160];
	assert_int_equal(httpreq_split_url("http://127.0.0.1:8080/a/b?c", hp, sizeof(hp), path,
					   sizeof(path), err, sizeof(err)), 0);
	assert_string_equal(hp, "127.0.0.1:8080");
	assert_string_equal(path, "/a/b?c");
	assert_int_equal(httpreq_split_url("127.0.0.1:7", hp, sizeof(hp), path, sizeof(path), err,
					   sizeof(err)), 0);
	assert_string_equal(path, "/");
	assert_int_equal(httpreq_split_url("http://localhost/", hp, sizeof(hp), path, sizeof(path),
					   err, sizeof(err)), 0);
	assert_string_equal(hp, "localhost:80");
	assert_int_equal(httpreq_split_url("[::1]:9/x", hp, sizeof(hp), path, sizeof(path), err,
					   sizeof(err)), 0);
	assert_string_equal(hp, "[::1]:9");
	assert_int_equal(httpreq_split_url("https://x:1/", hp, sizeof(hp), path, sizeof(path), err,
					   sizeof(err)), -1);
	assert_non_null(strstr(err, "https"));
	assert_int_equal(httpreq_split_url("nohost", hp, sizeof(hp), path, sizeof(path), err,
					   sizeof(err)), -1);
	assert_non_null(strstr(err, "'nohost'"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_split),
		cmocka_unit_test(test_body_until_close),
		cmocka_unit_test(test_head_has_no_body),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_fast_paths_match_bytewise),
		cmocka_unit_test(test_request_builder),
		cmocka_unit_test(test_split_url),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
