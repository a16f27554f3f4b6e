/* libFuzzer target for the chat protocol. Each input is fed whole, split in two at a point
 * chosen from its bytes, and (when short) byte by byte; the hook calls (joins, publishes) and
 * the output must be identical across the runs. Invariants: feed returns PROTO_AGAIN,
 * PROTO_ERROR or 1..len; every published message is "<id>: <line>\n" with no '\n' inside the
 * line (only one '\r' before '\n' is stripped, so "a\r\r\n" publishes "a\r") and at most
 * max_line bytes of it; errors append one "* " line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "proto/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_LINE 64

static int fz_join(struct proto_env *env, const char *room, size_t len)
{
	struct buf *log = env->engine_ud;
	if (len == 0 || len > 64 || memchr(room, ' ', len) || memchr(room, '\n', len))
		abort();
	buf_append(log, "J ", 2);
	buf_append(log, room, len);
	buf_append(log, "\n", 1);
	return 0;
}

static int fz_publish(struct proto_env *env, const char *msg, size_t len)
{
	struct buf *log = env->engine_ud;
	static const char id[] = "9: ";
	if (len < sizeof(id) || memcmp(msg, id, sizeof(id) - 1) || msg[len - 1] != '\n')
		abort();
	size_t line = len - sizeof(id);
	if (line == 0 || line > MAX_LINE || memchr(msg, '\n', len - 1))
		abort();
	buf_append(log, "P ", 2);
	buf_append(log, msg, len);
	return 0;
}

static void run(const char *in, size_t n, size_t split, int bytewise, struct buf *log)
{
	const struct proto *p = proto_find("chat");
	struct proto_cfg cfg;
	proto_cfg_defaults(&cfg);
	cfg.max_line = MAX_LINE;
	struct proto_env env = {.cfg = &cfg, .conn_id = 9, .engine_ud = log,
				.join = fz_join, .publish = fz_publish};
	void *st = malloc(p->state_size);
	struct buf ib = BUF_INIT, out = BUF_INIT;
	if (!st || p->init(st, &env))
		abort();
	int closed = 0;
	size_t off = 0;
	while (off < n && !closed) {
		size_t k = bytewise ? 1 : off < split ? split - off : n - off;
		buf_append(&ib, in + off, k);
		off += k;
		for (;;) {
			size_t used = buf_used(&ib);
			char *copy = malloc(used ? used : 1);
			if (used)
				memcpy(copy, buf_head(&ib), used);
			int flags = 0;
			ssize_t r = p->feed(st, copy, used, &out, &flags);
			free(copy);
			if (!(r == PROTO_AGAIN || r == PROTO_ERROR || (r > 0 && (size_t)r <= used)))
				abort();
			if (r == PROTO_ERROR) {
				if (buf_used(&out) < 3 || memcmp(buf_head(&out), "* ", 2) ||
				    out.data[out.len - 1] != '\n')
					abort();
				closed = 1;
				break;
			}
			if (buf_used(&out))
				abort(); /* chat never answers the sender otherwise */
			if (r > 0)
				buf_consume(&ib, (size_t)r);
			if (r == PROTO_AGAIN)
				break;
		}
	}
	buf_append(log, "O ", 2);
	if (buf_used(&out))
		buf_append(log, buf_head(&out), buf_used(&out));
	if (p->fini)
		p->fini(st);
	free(st);
	buf_free(&ib);
	buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	size_t split = size ? ((size_t)data[0] | (size_t)data[size - 1] << 8) % (size + 1) : 0;
	struct buf a = BUF_INIT, b = BUF_INIT, c = BUF_INIT;
	run(in, size, size, 0, &a);
	run(in, size, split, 0, &b);
	if (a.len != b.len || (a.len && memcmp(a.data, b.data, a.len)))
		abort();
	if (size <= 512) {
		run(in, size, 0, 1, &c);
		if (a.len != c.len || (a.len && memcmp(a.data, c.data, a.len)))
			abort();
	}
	buf_free(&a);
	buf_free(&b);
	buf_free(&c);
	return 0;
}
