/* http: an HTTP/1.1 origin server as a byte-level state machine (keep-alive, pipelining).
 *
 * Routes (GET and HEAD; HEAD gets the same headers and no body):
 *   /                                  200 "hello, world\n" (pre-built constant responses)
 *   /work?cpu_us=N&mem=SIZE&stride=S   runs proto_work(N, SIZE, S), then 200 "ok\n".
 *                                      N: decimal, <= cfg->work_max_cpu_us (--work-max-cpu-us,
 *                                      default 1 s; never over 10 s). SIZE, S: bytes with an
 *                                      optional binary suffix (k K KB KiB m M MB MiB g G GB GiB),
 *                                      SIZE <= cfg->work_max_mem_bytes (--work-max-mem, default
 *                                      64 MiB; never over 1 GiB), 1 <= S <= 1 GiB; unknown keys
 *                                      are ignored; a bad value or one over a cap is 400 naming
 *                                      the cap (connection kept: the request was well framed;
 *                                      no /work runs). The query may be absent.
 *   /api/NAME                          a function (GET, HEAD or POST; the request body is its
 *                                      input): "hello" is built in (200 "hello\n"); any other
 *                                      NAME goes to cfg->fn_call (serve --functions DIR runs
 *                                      DIR/NAME), which says the status (404 unknown, 502
 *                                      failed or too much output, 504 too slow); without
 *                                      fn_call 404. NAME must be [a-z0-9_-]{1,64} (a query is
 *                                      ignored): else 400 (/api/../x, /api/A, /api/).
 *   anything else                      404; a method other than GET/HEAD is 405 (Allow: GET, HEAD)
 *                                      whatever the path (/api/: other than GET/HEAD/POST).
 * The configured work knob (cfg->work_*) runs once for every complete request (200/404/405
 * and a bad /work query), /work's parameters on top of it; framing errors run no work.
 *
 * Responses are whole, appended to `out` when the request *including its body* has been read,
 * so pipelined responses come out in request order. The server always speaks HTTP/1.1.
 * Keep-alive: HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`
 * (then the response says `Connection: keep-alive`). A closing response says
 * `Connection: close` and sets PROTO_F_CLOSE; feed returns the request's length.
 *
 * Strictness (RFC 9112, choosing "reject" wherever the RFC allows it). Each of these answers
 * with the status given, `Connection: close`, PROTO_F_CLOSE and PROTO_ERROR:
 *   400  a line not ending in CRLF (bare LF, or CR without LF); NUL or any other control byte
 *        (or DEL) in the request line or a header; a method that is not a token; more than one
 *        SP between request-line parts; a request target with bytes outside 0x21..0x7e;
 *        a malformed version ("HTTP/1.10", "http/1.1", missing); a header line without a
 *        colon, with whitespace before the colon, with an empty name, or starting with
 *        whitespace (obs-fold); Content-Length not 1*DIGIT (sign, empty, garbage), or listed
 *        twice with different values ("5, 5" and repeated equal headers are accepted);
 *        Content-Length together with Transfer-Encoding (request smuggling defence);
 *        Transfer-Encoding twice or in an HTTP/1.0 request; a chunk size that is not 1..15
 *        hex digits, or whose line or chunk data is not followed by CRLF; a chunk extension
 *        over 1 KiB or with control bytes; a malformed trailer line.
 *   413  Content-Length, or the chunked body so far, over cfg->max_body (default 1 MiB).
 *   414  request line (without CRLF) over cfg->max_request_line (default 8 KiB).
 *   431  header section (every byte of the header lines, CRLFs and the final empty line
 *        included) over cfg->max_header_bytes (default 16 KiB), or more header fields than
 *        cfg->max_headers (default 100). Trailers are held to the same two limits.
 *   501  a Transfer-Encoding other than exactly "chunked" (case-insensitive).
 *   505  an HTTP major version other than 1 (HTTP/2.0, HTTP/0.9). HTTP/1.2..1.9 are served
 *        as HTTP/1.1.
 * The error is the one caused by the earliest offending byte of the stream, so it does not
 * depend on how the input was split. Error bodies are one line saying what to fix. Error
 * responses to a HEAD request carry no body once its method has been read.
 * Leniencies: empty lines (CRLF) before a request line are skipped; Host is not required;
 * Expect: 100-continue is not answered (the body is simply awaited).
 *
 * A function's request body is kept (in a buffer of the connection's state, allocated only for
 * /api requests with a body, at most max_body) until the request is complete.
 *
 * Parser contract: feed returns the bytes of one request (or one skipped empty line) once it
 * is complete; PROTO_AGAIN while the request head is incomplete (nothing consumed: the
 * scan position is remembered, so bytes are looked at once and the engine must re-present the
 * same unconsumed prefix); once the head is complete, request bodies are consumed as they
 * arrive (feed returns what it has read so far) and discarded. It never reads past in[len-1]
 * and allocates nothing except by growing `out`. State holds offsets, never pointers, so the
 * engine may move its input buffer between calls.
 */
#include "proto/proto.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define HTTP_DEFAULT_MAX_LINE PROTO_DEFAULT_MAX_REQUEST_LINE
#define HTTP_DEFAULT_MAX_HEADERS PROTO_DEFAULT_MAX_HEADERS
#define HTTP_DEFAULT_MAX_HEADER_BYTES PROTO_DEFAULT_MAX_HEADER_BYTES
#define HTTP_DEFAULT_MAX_BODY PROTO_DEFAULT_MAX_BODY
#define HTTP_MAX_CHUNK_DIGITS 15
#define HTTP_MAX_CHUNK_EXT 1024
#define HTTP_MAX_WORK_CPU_US 10000000ULL
#define HTTP_MAX_WORK_BYTES (1024ULL * 1024 * 1024)

enum st {
	S_START,          /* at a message's first byte */
	S_START_LF,       /* CR of an empty line before the request line */
	S_METHOD,
	S_TARGET0,        /* first byte of the request target */
	S_TARGET,
	S_VERSION,        /* "HTTP/d.d" then CR */
	S_LINE_LF,
	S_HDR,            /* at a header (or trailer) line's first byte */
	S_HDR_NAME,
	S_HDR_OWS,        /* after the colon */
	S_HDR_VALUE,
	S_HDR_LF,
	S_HEAD_LF,        /* CR of the empty line ending the head (or the trailers) */
	S_BODY,           /* Content-Length bytes */
	S_CHUNK_SIZE,
	S_CHUNK_EXT,
	S_CHUNK_SIZE_LF,
	S_CHUNK_DATA,
	S_CHUNK_DATA_CR,
	S_CHUNK_DATA_LF,
};

enum method { M_NONE, M_GET, M_HEAD, M_OTHER, M_POST };
enum route { R_ROOT, R_WORK, R_NOT_FOUND, R_BAD_METHOD, R_BAD_QUERY, R_API, R_BAD_API };
#define HTTP_FN_NAME_MAX 64
enum conn { C_KEEP, C_KEEP10, C_CLOSE };

struct http_msg {
	enum st st;
	size_t pos;          /* bytes of in[] already scanned */
	size_t method_end, target_start, target_end;
	size_t name_start, name_end, val_start, val_end;
	size_t hdr_bytes;
	size_t nhdr;
	int ver_i, major, minor;
	enum method method;
	int in_trailer, head_done;
	int have_cl, have_te, chunked, conn_close, conn_keep;
	uint64_t cl, remaining, body_bytes, chunk_size;
	unsigned chunk_digits, ext_bytes;
	enum route route;
	const char *query_err;
	uint64_t q_cpu_us, q_mem_bytes, q_stride_bytes;
	char fn[HTTP_FN_NAME_MAX + 1]; /* R_API: the function's name */
};

struct http {
	struct proto_env *env;
	size_t max_line, max_headers, max_header_bytes, max_body;
	uint64_t cpu_us, mem_bytes, stride_bytes;
	uint64_t work_max_cpu_us, work_max_mem_bytes; /* /work's caps (cfg, else the hard limits) */
	char query_err_buf[128]; /* a 400 body naming a cap (m.query_err points here) */
	int done;            /* closed or failed: no more input is accepted */
	struct http_msg m;
	struct buf fnbody;   /* R_API: the request body so far (the function's input) */
};

/* ---- responses ------------------------------------------------------------- */

#define HELLO_BODY "hello, world\n"
#define HELLO_HEAD "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n"
static const char hello_keep[] = HELLO_HEAD "\r\n" HELLO_BODY;
static const char hello_keep10[] = HELLO_HEAD "Connection: keep-alive\r\n\r\n" HELLO_BODY;
static const char hello_close[] = HELLO_HEAD "Connection: close\r\n\r\n" HELLO_BODY;
static const char *const hello[3] = {hello_keep, hello_keep10, hello_close};
static const size_t hello_len[3] = {sizeof(hello_keep) - 1, sizeof(hello_keep10) - 1,
				    sizeof(hello_close) - 1};
static const char *const conn_hdr[3] = {"", "Connection: keep-alive\r\n", "Connection: close\r\n"};

static const char *status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 502: return "Bad Gateway";
	case 504: return "Gateway Timeout";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

static int append_str(struct buf *out, const char *s) { return buf_append(out, s, strlen(s)); }

static int append_u64(struct buf *out, uint64_t v)
{
	char tmp[24];
	size_t i = sizeof(tmp);
	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return buf_append(out, tmp + i, sizeof(tmp) - i);
}

static int respond_n(struct buf *out, int status, const char *body, size_t blen, int head_only,
		     enum conn conn)
{
	char line[64];
	const char *text = status_text(status);
	size_t n = 0;
	memcpy(line, "HTTP/1.1 ", 9);
	n = 9;
	line[n++] = (char)('0' + status / 100);
	line[n++] = (char)('0' + status / 10 % 10);
	line[n++] = (char)('0' + status % 10);
	line[n++] = ' ';
	int r = buf_append(out, line, n);
	r = r ? r : append_str(out, text);
	r = r ? r : append_str(out, "\r\nContent-Length: ");
	r = r ? r : append_u64(out, blen);
	r = r ? r : append_str(out, "\r\nContent-Type: text/plain\r\n");
	if (status == 405)
		r = r ? r : append_str(out, "Allow: GET, HEAD\r\n");
	r = r ? r : append_str(out, conn_hdr[conn]);
	r = r ? r : buf_append(out, "\r\n", 2);
	if (!head_only)
		r = r ? r : buf_append(out, body, blen);
	return r;
}

static int respond(struct buf *out, int status, const char *body, int head_only, enum conn conn)
{
	return respond_n(out, status, body, strlen(body), head_only, conn);
}

/* ---- character classes (RFC 9110 5.6.2, 5.5) ------------------------------------ */

enum { C_TCHAR = 1, C_VCHAR = 2, C_FIELD = 4 };

/* tchar (token), VCHAR (0x21..0x7e), field byte (VCHAR or obs-text 0x80..0xff) */
static const unsigned char cls[256] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x00 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
	0, 7, 6, 7, 7, 7, 7, 7, 6, 6, 7, 7, 6, 7, 7, 6, /* 0x20 */
	7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 6, /* 0x30 */
	6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, /* 0x40 */
	7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 7, 7, /* 0x50 */
	7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, /* 0x60 */
	7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 7, 6, 7, 0, /* 0x70 */
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 0x80 */
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 0x90 */
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 0xa0 */
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 0xb0 */
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 0xc0 */
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 0xd0 */
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 0xe0 */
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 0xf0 */
};

static int is_tchar(unsigned char c) { return cls[c] & C_TCHAR; }
static int is_vchar(unsigned char c) { return cls[c] & C_VCHAR; }
static int is_field_byte(unsigned char c) { return cls[c] & C_FIELD; }
static int is_ws(unsigned char c) { return c == ' ' || c == '\t'; }

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* ---- header semantics --------------------------------------------------------- */

struct fail {
	int status;
	const char *why;
};

static int name_is(const char *p, size_t n, const char *lit)
{
	return n == strlen(lit) && !strncasecmp(p, lit, n);
}

/* Content-Length: 1#(1*DIGIT) with OWS around commas; every element equal. */
static int parse_cl(const char *v, size_t n, uint64_t *out)
{
	size_t i = 0;
	int have = 0;
	uint64_t first = 0;
	for (;;) {
		while (i < n && is_ws((unsigned char)v[i]))
			i++;
		if (i == n || v[i] < '0' || v[i] > '9')
			return -1;
		uint64_t x = 0;
		while (i < n && v[i] >= '0' && v[i] <= '9') {
			unsigned d = (unsigned)(v[i++] - '0');
			x = x > (UINT64_MAX - d) / 10 ? UINT64_MAX : x * 10 + d;
		}
		if (have && x != first)
			return -1;
		first = x;
		have = 1;
		while (i < n && is_ws((unsigned char)v[i]))
			i++;
		if (i == n)
			break;
		if (v[i++] != ',')
			return -1;
	}
	*out = first;
	return 0;
}

static void parse_connection(struct http_msg *m, const char *v, size_t n)
{
	size_t i = 0;
	while (i < n) {
		while (i < n && (is_ws((unsigned char)v[i]) || v[i] == ','))
			i++;
		size_t s = i;
		while (i < n && v[i] != ',' && !is_ws((unsigned char)v[i]))
			i++;
		if (name_is(v + s, i - s, "close"))
			m->conn_close = 1;
		else if (name_is(v + s, i - s, "keep-alive"))
			m->conn_keep = 1;
	}
}

static struct fail on_header(struct http *h, const char *in)
{
	struct http_msg *m = &h->m;
	const char *name = in + m->name_start, *val = in + m->val_start;
	size_t nlen = m->name_end - m->name_start, vlen = m->val_end - m->val_start;
	struct fail f = {0, NULL};

	if (name_is(name, nlen, "content-length")) {
		uint64_t cl;
		if (m->have_te)
			return (struct fail){400, "Content-Length together with Transfer-Encoding"};
		if (parse_cl(val, vlen, &cl))
			return (struct fail){400, "Content-Length is not a decimal number"};
		if (m->have_cl && cl != m->cl)
			return (struct fail){400, "conflicting Content-Length headers"};
		m->have_cl = 1;
		m->cl = cl;
		if (cl > h->max_body)
			return (struct fail){413, "request body over the server's limit"};
	} else if (name_is(name, nlen, "transfer-encoding")) {
		if (m->have_cl)
			return (struct fail){400, "Content-Length together with Transfer-Encoding"};
		if (m->have_te)
			return (struct fail){400, "Transfer-Encoding given twice"};
		if (m->minor == 0)
			return (struct fail){400, "Transfer-Encoding in an HTTP/1.0 request"};
		m->have_te = 1;
		if (!name_is(val, vlen, "chunked"))
			return (struct fail){501, "only Transfer-Encoding: chunked is supported"};
		m->chunked = 1;
	} else if (name_is(name, nlen, "connection")) {
		parse_connection(m, val, vlen);
	}
	return f;
}

/* ---- /work query -------------------------------------------------------------- */

static int parse_u64(const char *s, size_t n, size_t *used, uint64_t *out)
{
	size_t i = 0;
	uint64_t x = 0;
	if (!n || s[0] < '0' || s[0] > '9')
		return -1;
	while (i < n && s[i] >= '0' && s[i] <= '9') {
		unsigned d = (unsigned)(s[i++] - '0');
		if (x > (UINT64_MAX - d) / 10)
			return -1;
		x = x * 10 + d;
	}
	*used = i;
	*out = x;
	return 0;
}

static int parse_size(const char *s, size_t n, uint64_t *out)
{
	static const struct {
		const char *suffix;
		unsigned shift;
	} units[] = {
		{"", 0},    {"b", 0},   {"B", 0},    {"k", 10},  {"K", 10}, {"kb", 10}, {"KB", 10},
		{"KiB", 10}, {"m", 20}, {"M", 20},   {"MB", 20}, {"MiB", 20}, {"g", 30}, {"G", 30},
		{"GB", 30}, {"GiB", 30},
	};
	size_t used;
	uint64_t x;
	if (parse_u64(s, n, &used, &x))
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strlen(units[i].suffix) == n - used && !memcmp(units[i].suffix, s + used, n - used)) {
			if (x > (UINT64_MAX >> units[i].shift))
				return -1;
			*out = x << units[i].shift;
			return 0;
		}
	}
	return -1;
}

static const char *parse_work_query(struct http *h, const char *q, size_t n)
{
	struct http_msg *m = &h->m;
	size_t i = 0;
	while (i < n) {
		size_t s = i;
		while (i < n && q[i] != '&')
			i++;
		const char *kv = q + s;
		size_t kvlen = i - s;
		if (i < n)
			i++;
		const char *eq = memchr(kv, '=', kvlen);
		if (!eq)
			continue;
		const char *k = kv, *v = eq + 1;
		size_t klen = (size_t)(eq - kv), vlen = kvlen - klen - 1;
		if (klen == 6 && !memcmp(k, "cpu_us", 6)) {
			size_t used;
			if (parse_u64(v, vlen, &used, &m->q_cpu_us) || used != vlen ||
			    m->q_cpu_us > h->work_max_cpu_us) {
				snprintf(h->query_err_buf, sizeof(h->query_err_buf),
					 "bad cpu_us: use a number of microseconds up to %" PRIu64
					 " (this server's --work-max-cpu-us), e.g. cpu_us=100\n",
					 h->work_max_cpu_us);
				return h->query_err_buf;
			}
		} else if (klen == 3 && !memcmp(k, "mem", 3)) {
			if (parse_size(v, vlen, &m->q_mem_bytes) ||
			    m->q_mem_bytes > h->work_max_mem_bytes) {
				snprintf(h->query_err_buf, sizeof(h->query_err_buf),
					 "bad mem: use a size up to %" PRIu64
					 " bytes (this server's --work-max-mem), e.g. mem=64k\n",
					 h->work_max_mem_bytes);
				return h->query_err_buf;
			}
		} else if (klen == 6 && !memcmp(k, "stride", 6)) {
			if (parse_size(v, vlen, &m->q_stride_bytes) || !m->q_stride_bytes ||
			    m->q_stride_bytes > HTTP_MAX_WORK_BYTES)
				return "bad stride: use a size from 1 to 1GiB, e.g. stride=64\n";
		}
	}
	return NULL;
}

/* The head is complete: decide the route and whether the connection stays open. */
static void on_head(struct http *h, const char *in)
{
	struct http_msg *m = &h->m;
	const char *t = in + m->target_start;
	size_t tlen = m->target_end - m->target_start;
	const char *qm = memchr(t, '?', tlen);
	size_t plen = qm ? (size_t)(qm - t) : tlen;

	if (plen >= 5 && !memcmp(t, "/api/", 5)) {
		const char *nm = t + 5;
		size_t nl = plen - 5, k = 0;
		while (k < nl && ((nm[k] >= 'a' && nm[k] <= 'z') || (nm[k] >= '0' && nm[k] <= '9') ||
				  nm[k] == '_' || nm[k] == '-'))
			k++;
		if (m->method == M_OTHER)
			m->route = R_BAD_METHOD;
		else if (!nl || k < nl || nl > HTTP_FN_NAME_MAX)
			m->route = R_BAD_API;
		else {
			m->route = R_API;
			memcpy(m->fn, nm, nl);
			m->fn[nl] = 0;
		}
	} else if (m->method == M_OTHER || m->method == M_POST) {
		m->route = R_BAD_METHOD;
	} else if (plen == 1 && t[0] == '/') {
		m->route = R_ROOT;
	} else if (plen == 5 && !memcmp(t, "/work", 5)) {
		m->route = R_WORK;
		if (qm)
			m->query_err = parse_work_query(h, qm + 1, tlen - plen - 1);
		if (m->query_err)
			m->route = R_BAD_QUERY;
	} else {
		m->route = R_NOT_FOUND;
	}
}

/* ---- the state machine ---------------------------------------------------------- */

static void msg_reset(struct http_msg *m) { memset(m, 0, sizeof(*m)); }

static ssize_t http_fail(struct http *h, struct buf *out, int *flags, int status, const char *why)
{
	char body[160];
	size_t n = strlen(why);
	if (n > sizeof(body) - 2)
		n = sizeof(body) - 2;
	memcpy(body, why, n);
	body[n++] = '\n';
	body[n] = 0;
	respond(out, status, body, h->m.method == M_HEAD, C_CLOSE);
	*flags |= PROTO_F_CLOSE;
	h->done = 1;
	return PROTO_ERROR;
}

/* /api/NAME: the built-in hello, or the server's fn_call on the body read */
static int call_function(struct http *h, struct buf *out, int head_only, enum conn conn)
{
	struct http_msg *m = &h->m;
	const struct proto_cfg *cfg = h->env ? h->env->cfg : NULL;
	if (!strcmp(m->fn, "hello"))
		return respond(out, 200, "hello\n", head_only, conn);
	if (!cfg || !cfg->fn_call)
		return respond(out, 404, "no such function (serve --functions DIR runs DIR/NAME)\n",
			       head_only, conn);
	struct buf res = BUF_INIT;
	int st = cfg->fn_call(cfg, m->fn, buf_head(&h->fnbody), buf_used(&h->fnbody), &res);
	buf_clear(&h->fnbody);
	int r = respond_n(out, st, buf_used(&res) ? buf_head(&res) : "", buf_used(&res), head_only,
			  conn);
	buf_free(&res);
	return r;
}

static ssize_t http_complete(struct http *h, size_t consumed, struct buf *out, int *flags)
{
	struct http_msg *m = &h->m;
	enum conn conn;
	int head_only = m->method == M_HEAD;
	int r;

	if (m->minor == 0)
		conn = m->conn_keep && !m->conn_close ? C_KEEP10 : C_CLOSE;
	else
		conn = m->conn_close ? C_CLOSE : C_KEEP;
	if (h->cpu_us || h->mem_bytes)
		proto_work(h->cpu_us, h->mem_bytes, h->stride_bytes);
	switch (m->route) {
	case R_ROOT:
		if (head_only)
			r = respond(out, 200, HELLO_BODY, 1, conn);
		else
			r = buf_append(out, hello[conn], hello_len[conn]);
		break;
	case R_WORK:
		proto_work(m->q_cpu_us, m->q_mem_bytes, m->q_stride_bytes);
		r = respond(out, 200, "ok\n", head_only, conn);
		break;
	case R_NOT_FOUND:
		r = respond(out, 404, "not found: try GET / or GET /work?cpu_us=N&mem=SIZE&stride=S\n",
			    head_only, conn);
		break;
	case R_BAD_METHOD:
		r = respond(out, 405, "method not allowed: use GET or HEAD\n", head_only, conn);
		break;
	case R_API:
		r = call_function(h, out, head_only, conn);
		break;
	case R_BAD_API:
		r = respond(out, 400, "bad function name: use /api/NAME with NAME of [a-z0-9_-], at "
				      "most 64\n", head_only, conn);
		break;
	default:
		r = respond(out, 400, m->query_err, head_only, conn);
		break;
	}
	msg_reset(m);
	if (r) {
		*flags |= PROTO_F_CLOSE;
		h->done = 1;
		return PROTO_ERROR;
	}
	if (conn == C_CLOSE) {
		*flags |= PROTO_F_CLOSE;
		h->done = 1;
	}
	return (ssize_t)consumed;
}

#define FAIL(status, why) return http_fail(h, out, flags, status, why)

static ssize_t http_feed(void *state, const char *in, size_t len, struct buf *out, int *flags)
{
	struct http *h = state;
	struct http_msg *m = &h->m;
	const unsigned char *p = (const unsigned char *)in;

	if (h->done)
		return PROTO_ERROR;
	if (m->pos > len) /* the engine did not re-present the prefix: parse it again */
		msg_reset(m);
	size_t i = m->pos;
	while (i < len) {
		unsigned char c = p[i];
		if (m->st >= S_METHOD && m->st <= S_VERSION && c != '\r' && i >= h->max_line)
			FAIL(414, "request line too long: shorten the URI");
		if (m->st >= S_HDR && m->st <= S_HEAD_LF && ++m->hdr_bytes > h->max_header_bytes)
			FAIL(431, "header section too large: send fewer or shorter headers");
		switch (m->st) {
		case S_START:
			if (c == '\r') {
				m->st = S_START_LF;
				break;
			}
			if (c == '\n')
				FAIL(400, "bare LF: end lines with CRLF");
			if (!is_tchar(c))
				FAIL(400, "a request line starts with a method token");
			m->st = S_METHOD;
			break;
		case S_START_LF:
			if (c != '\n')
				FAIL(400, "CR without LF: end lines with CRLF");
			msg_reset(m); /* an empty line before a request: skip it */
			return (ssize_t)(i + 1);
		case S_METHOD:
			if (c == ' ') {
				m->method_end = i;
				if (i == 3 && !memcmp(in, "GET", 3))
					m->method = M_GET;
				else if (i == 4 && !memcmp(in, "HEAD", 4))
					m->method = M_HEAD;
				else if (i == 4 && !memcmp(in, "POST", 4))
					m->method = M_POST;
				else
					m->method = M_OTHER;
				m->st = S_TARGET0;
			} else if (!is_tchar(c)) {
				FAIL(400, "bad method: use a token followed by one space");
			}
			break;
		case S_TARGET0:
			if (!is_vchar(c))
				FAIL(400, "bad request target: one space, then a URI without spaces or "
					  "control bytes");
			m->target_start = i;
			m->st = S_TARGET;
			break;
		case S_TARGET:
			if (c == ' ') {
				m->target_end = i;
				m->st = S_VERSION;
			} else if (c == '\r' || c == '\n') {
				FAIL(400, "missing HTTP version: end the request line with HTTP/1.1");
			} else if (!is_vchar(c)) {
				FAIL(400, "bad byte in the request target: percent-encode it");
			} else {
				/* a run of target bytes, stopping where the 414 check must look */
				while (i + 1 < len && i + 1 < h->max_line && is_vchar(p[i + 1]))
					i++;
			}
			break;
		case S_VERSION: {
			int k = m->ver_i++;
			if (k < 5) {
				if (c != (unsigned char)"HTTP/"[k])
					FAIL(400, "bad HTTP version: use HTTP/1.1");
			} else if (k == 5 || k == 7) {
				if (c < '0' || c > '9')
					FAIL(400, "bad HTTP version: use HTTP/1.1");
				if (k == 5)
					m->major = c - '0';
				else
					m->minor = c - '0';
			} else if (k == 6) {
				if (c != '.')
					FAIL(400, "bad HTTP version: use HTTP/1.1");
			} else {
				if (c != '\r')
					FAIL(400, c == '\n' ? "bare LF: end lines with CRLF"
							    : "bad HTTP version: use HTTP/1.1");
				m->st = S_LINE_LF;
			}
			break;
		}
		case S_LINE_LF:
			if (c != '\n')
				FAIL(400, "CR without LF: end lines with CRLF");
			if (m->major != 1)
				FAIL(505, "HTTP version not supported: use HTTP/1.1 or HTTP/1.0");
			m->st = S_HDR;
			break;
		case S_HDR:
			if (c == '\r') {
				m->st = S_HEAD_LF;
			} else if (is_tchar(c)) {
				if (++m->nhdr > h->max_headers)
					FAIL(431, "too many header fields: send fewer headers");
				m->name_start = i;
				m->st = S_HDR_NAME;
			} else if (c == '\n') {
				FAIL(400, "bare LF: end lines with CRLF");
			} else if (is_ws(c)) {
				FAIL(400, "header line starts with whitespace (obsolete line folding)");
			} else if (c == ':') {
				FAIL(400, "empty header name");
			} else {
				FAIL(400, "bad byte in a header name");
			}
			break;
		case S_HDR_NAME:
			if (c == ':') {
				m->name_end = i;
				m->st = S_HDR_OWS;
			} else if (c == '\r' || c == '\n') {
				FAIL(400, "header line without a colon: use Name: value");
			} else if (is_ws(c)) {
				FAIL(400, "whitespace before the colon in a header line");
			} else if (!is_tchar(c)) {
				FAIL(400, "bad byte in a header name");
			} else {
				while (i + 1 < len && m->hdr_bytes < h->max_header_bytes &&
				       is_tchar(p[i + 1])) {
					i++;
					m->hdr_bytes++;
				}
			}
			break;
		case S_HDR_OWS:
			if (c == '\r') {
				m->val_start = m->val_end = i;
				m->st = S_HDR_LF;
			} else if (is_field_byte(c)) {
				m->val_start = i;
				m->val_end = i + 1;
				m->st = S_HDR_VALUE;
			} else if (!is_ws(c)) {
				FAIL(400, c == '\n' ? "bare LF: end lines with CRLF"
						    : "control byte in a header value");
			}
			break;
		case S_HDR_VALUE:
			if (is_field_byte(c)) {
				while (i + 1 < len && m->hdr_bytes < h->max_header_bytes &&
				       is_field_byte(p[i + 1])) {
					i++;
					m->hdr_bytes++;
				}
				m->val_end = i + 1;
			} else if (c == '\r') {
				m->st = S_HDR_LF;
			} else if (!is_ws(c)) {
				FAIL(400, c == '\n' ? "bare LF: end lines with CRLF"
						    : "control byte in a header value");
			}
			break;
		case S_HDR_LF:
			if (c != '\n')
				FAIL(400, "CR without LF: end lines with CRLF");
			if (!m->in_trailer) {
				struct fail f = on_header(h, in);
				if (f.status)
					FAIL(f.status, f.why);
			}
			m->st = S_HDR;
			break;
		case S_HEAD_LF:
			if (c != '\n')
				FAIL(400, "CR without LF: end lines with CRLF");
			if (m->in_trailer)
				return http_complete(h, i + 1, out, flags);
			on_head(h, in);
			m->head_done = 1;
			if (m->chunked) {
				m->st = S_CHUNK_SIZE;
			} else if (m->cl) {
				m->remaining = m->cl;
				m->st = S_BODY;
			} else {
				return http_complete(h, i + 1, out, flags);
			}
			break;
		case S_BODY:
		case S_CHUNK_DATA: {
			uint64_t take = len - i < m->remaining ? len - i : m->remaining;
			if (m->route == R_API && take && buf_append(&h->fnbody, in + i, take))
				FAIL(413, "out of memory for the request body");
			m->remaining -= take;
			i += take;
			if (m->remaining)
				continue;
			if (m->st == S_BODY)
				return http_complete(h, i, out, flags);
			m->st = S_CHUNK_DATA_CR;
			continue;
		}
		case S_CHUNK_SIZE: {
			int v = hexval(c);
			if (v >= 0) {
				if (++m->chunk_digits > HTTP_MAX_CHUNK_DIGITS)
					FAIL(400, "bad chunk size: too many hex digits");
				m->chunk_size = m->chunk_size * 16 + (unsigned)v;
				break;
			}
			if (!m->chunk_digits || (c != ';' && c != '\r'))
				FAIL(400, "bad chunk size: use hex digits followed by CRLF");
			if (m->chunk_size > h->max_body - m->body_bytes)
				FAIL(413, "request body over the server's limit");
			m->st = c == ';' ? S_CHUNK_EXT : S_CHUNK_SIZE_LF;
			break;
		}
		case S_CHUNK_EXT:
			if (c == '\r') {
				m->st = S_CHUNK_SIZE_LF;
			} else if (!is_field_byte(c) && !is_ws(c)) {
				FAIL(400, "control byte in a chunk extension");
			} else if (++m->ext_bytes > HTTP_MAX_CHUNK_EXT) {
				FAIL(400, "chunk extension too long");
			}
			break;
		case S_CHUNK_SIZE_LF:
			if (c != '\n')
				FAIL(400, "CR without LF after a chunk size: end lines with CRLF");
			if (m->chunk_size == 0) {
				m->in_trailer = 1;
				m->hdr_bytes = 0;
				m->nhdr = 0;
				m->st = S_HDR;
			} else {
				m->body_bytes += m->chunk_size;
				m->remaining = m->chunk_size;
				m->st = S_CHUNK_DATA;
			}
			m->chunk_size = 0;
			m->chunk_digits = 0;
			m->ext_bytes = 0;
			break;
		case S_CHUNK_DATA_CR:
			if (c != '\r')
				FAIL(400, "chunk data longer than its size");
			m->st = S_CHUNK_DATA_LF;
			break;
		case S_CHUNK_DATA_LF:
			if (c != '\n')
				FAIL(400, "chunk data not followed by CRLF");
			m->st = S_CHUNK_SIZE;
			break;
		}
		i++;
	}
	if (m->head_done && i > 0) {
		/* inside the body (or trailers): consume what was read, offsets restart at 0 */
		m->pos = 0;
		return (ssize_t)i;
	}
	m->pos = i;
	return PROTO_AGAIN;
}

static int http_init(void *state, struct proto_env *env)
{
	struct http *h = state;
	const struct proto_cfg *cfg = env ? env->cfg : NULL;
	memset(h, 0, sizeof(*h));
	h->env = env;
	h->max_line = cfg && cfg->max_request_line ? cfg->max_request_line : HTTP_DEFAULT_MAX_LINE;
	h->max_headers = cfg && cfg->max_headers ? cfg->max_headers : HTTP_DEFAULT_MAX_HEADERS;
	h->max_header_bytes =
		cfg && cfg->max_header_bytes ? cfg->max_header_bytes : HTTP_DEFAULT_MAX_HEADER_BYTES;
	h->max_body = cfg && cfg->max_body ? cfg->max_body : HTTP_DEFAULT_MAX_BODY;
	h->work_max_cpu_us = HTTP_MAX_WORK_CPU_US;
	h->work_max_mem_bytes = HTTP_MAX_WORK_BYTES;
	if (cfg && cfg->work_max_cpu_us && cfg->work_max_cpu_us < HTTP_MAX_WORK_CPU_US)
		h->work_max_cpu_us = cfg->work_max_cpu_us;
	if (cfg && cfg->work_max_mem_bytes && cfg->work_max_mem_bytes < HTTP_MAX_WORK_BYTES)
		h->work_max_mem_bytes = cfg->work_max_mem_bytes;
	if (cfg) {
		h->cpu_us = cfg->work_cpu_us;
		h->mem_bytes = cfg->work_mem_bytes;
		h->stride_bytes = cfg->work_stride_bytes;
	}
	return 0;
}

static void http_fini(void *state)
{
	struct http *h = state;
	buf_free(&h->fnbody);
}

/* A partial request: its head within the limits, plus (conservatively: bodies are consumed as
 * they arrive) a body up to max_body. */
static size_t http_in_max_bytes(const struct proto_cfg *cfg)
{
	size_t line = cfg && cfg->max_request_line ? cfg->max_request_line : HTTP_DEFAULT_MAX_LINE;
	size_t hdr =
		cfg && cfg->max_header_bytes ? cfg->max_header_bytes : HTTP_DEFAULT_MAX_HEADER_BYTES;
	size_t body = cfg && cfg->max_body ? cfg->max_body : HTTP_DEFAULT_MAX_BODY;
	return line + hdr + body;
}

const struct proto http_proto = {
	.name = "http",
	.summary = "HTTP/1.1 keep-alive and pipelining: GET / and /work?cpu_us=&mem=&stride=, "
		   "/api/NAME functions",
	.state_size = sizeof(struct http),
	.init = http_init,
	.feed = http_feed,
	.fini = http_fini,
	.in_max_bytes = http_in_max_bytes,
	.caps = PROTO_CAP_HTTP1 | PROTO_CAP_PEER,
};
