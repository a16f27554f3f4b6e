/* libFuzzer target for the http protocol. Each input is fed whole, split in two at a point
 * chosen from its bytes, and (when short) byte by byte, as an engine would feed it; the three
 * runs must produce identical output. Invariants checked on every feed call: the return value
 * is PROTO_AGAIN, PROTO_ERROR or 1..len; each call appends nothing or exactly one whole
 * response (status line, headers, a body of Content-Length bytes or none for HEAD); an error
 * appends a closing response and sets PROTO_F_CLOSE. Small limits make the limit paths
 * reachable. /work's cpu_us and mem parameters are defused so inputs stay fast. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "proto/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_response(const char *o, size_t n)
{
	if (n < 13 || memcmp(o, "HTTP/1.1 ", 9) || o[12] != ' ')
		abort();
	for (int i = 9; i < 12; i++)
		if (o[i] < '0' || o[i] > '9')
			abort();
	const char *end = memmem(o, n, "\r\n\r\n", 4);
	const char *cl = memmem(o, n, "\r\nContent-Length: ", 18);
	if (!end || !cl || cl > end)
		abort();
	size_t head = (size_t)(end + 4 - o);
	size_t body = strtoul(cl + 18, NULL, 10);
	if (n != head && n != head + body)
		abort();
}

static void run(const char *in, size_t n, size_t split, int bytewise, struct buf *out, int *closed)
{
	const struct proto *p = proto_find("http");
	struct proto_cfg cfg;
	proto_cfg_defaults(&cfg);
	cfg.max_request_line = 128;
	cfg.max_headers = 6;
	cfg.max_header_bytes = 256;
	cfg.max_body = 512;
	struct proto_env env = {.cfg = &cfg, .conn_id = 1};
	void *st = malloc(p->state_size);
	struct buf ib = BUF_INIT;
	if (!st || p->init(st, &env))
		abort();
	*closed = 0;
	size_t off = 0;
	while (off < n && !*closed) {
		size_t k = bytewise ? 1 : off < split ? split - off : n - off;
		if (buf_append(&ib, in + off, k))
			abort();
		off += k;
		for (;;) {
			/* an exact-size copy so that ASan sees any read past the end */
			size_t used = buf_used(&ib);
			char *copy = malloc(used ? used : 1);
			if (used)
				memcpy(copy, buf_head(&ib), used);
			size_t before = out->len;
			int flags = 0;
			ssize_t r = p->feed(st, copy, used, out, &flags);
			free(copy);
			if (!(r == PROTO_AGAIN || r == PROTO_ERROR || (r > 0 && (size_t)r <= used)))
				abort();
			if (out->len != before)
				check_response(out->data + before, out->len - before);
			if (r == PROTO_ERROR) {
				if (out->len == before || !(flags & PROTO_F_CLOSE) ||
				    !memmem(out->data + before, out->len - before,
					    "\r\nConnection: close\r\n", 21))
					abort();
				*closed = 1;
				break;
			}
			if (r > 0)
				buf_consume(&ib, (size_t)r);
			if (flags & PROTO_F_CLOSE) {
				*closed = 1;
				break;
			}
			if (r == PROTO_AGAIN)
				break;
		}
	}
	free(st);
	buf_free(&ib);
}

static void defuse(char *s, size_t n, const char *word)
{
	size_t wl = strlen(word);
	for (char *p = s; (p = memmem(p, n - (size_t)(p - s), word, wl)); p += wl)
		p[0] ^= 0x20; /* cpu_us -> Cpu_us, mem= -> Mem=: unknown keys, ignored */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size ? size : 1);
	memcpy(in, data, size);
	defuse(in, size, "cpu_us");
	defuse(in, size, "mem=");
	size_t split = size ? ((size_t)data[0] | (size_t)data[size - 1] << 8) % (size + 1) : 0;
	struct buf a = BUF_INIT, b = BUF_INIT, c = BUF_INIT;
	int ca, cb, cc;
	run(in, size, size, 0, &a, &ca);
	run(in, size, split, 0, &b, &cb);
	if (a.len != b.len || (a.len && memcmp(a.data, b.data, a.len)) || ca != cb)
		abort();
	if (size <= 512) {
		run(in, size, 0, 1, &c, &cc);
		if (a.len != c.len || (a.len && memcmp(a.data, c.data, a.len)) || ca != cc)
			abort();
	}
	buf_free(&a);
	buf_free(&b);
	buf_free(&c);
	free(in);
	return 0;
}
