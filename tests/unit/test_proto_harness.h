/* A fake engine for protocol unit tests: it feeds bytes to a protocol exactly as the engine
 * contract in proto/proto.h says (keep the unconsumed input, loop while n > 0, stop after
 * PROTO_ERROR or PROTO_F_CLOSE), records chat hooks, and places every input it hands to feed
 * right before a PROT_NONE page, so a protocol that reads past in[len-1] crashes the test
 * (picohttpparser's technique). The input is copied there before every call, which also moves
 * it between calls: a protocol that kept pointers into it would read stale bytes. */
#ifndef CTXLAB_TEST_PROTO_HARNESS_H
#define CTXLAB_TEST_PROTO_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/buf.h"
#include "proto/proto.h"

#define HARNESS_GUARD_BYTES (512 * 1024)

struct harness {
	const struct proto *p;
	void *state;
	struct proto_cfg cfg;
	struct proto_env env;
	struct buf in;     /* unconsumed input, as an engine keeps it */
	struct buf out;    /* everything the protocol wrote */
	struct buf log;    /* chat hooks: "J room\n", "P <msg>" */
	int closed, errored, init_rc;
	size_t calls, consumed;
	int join_rc, publish_rc; /* what the fake hooks return */
	char *guard;       /* HARNESS_GUARD_BYTES read-write, then one PROT_NONE page */
	size_t page;
};

static int harness_join(struct proto_env *env, const char *room, size_t len)
{
	struct harness *h = env->engine_ud;
	buf_append(&h->log, "J ", 2);
	buf_append(&h->log, room, len);
	buf_append(&h->log, "\n", 1);
	return h->join_rc;
}

static int harness_publish(struct proto_env *env, const char *msg, size_t len)
{
	struct harness *h = env->engine_ud;
	buf_append(&h->log, "P ", 2);
	buf_append(&h->log, msg, len);
	return h->publish_rc;
}

/* cfg NULL: proto_cfg_defaults. */
static void harness_init(struct harness *h, const char *proto, const struct proto_cfg *cfg,
			 uint64_t conn_id)
{
	memset(h, 0, sizeof(*h));
	h->p = proto_find(proto);
	assert_non_null(h->p);
	if (cfg)
		h->cfg = *cfg;
	else
		proto_cfg_defaults(&h->cfg);
	h->env.cfg = &h->cfg;
	h->env.conn_id = conn_id;
	h->env.engine_ud = h;
	h->env.join = harness_join;
	h->env.publish = harness_publish;
	h->state = malloc(h->p->state_size);
	assert_non_null(h->state);
	memset(h->state, 0xa5, h->p->state_size); /* init must not rely on zeroed memory */
	h->page = (size_t)sysconf(_SC_PAGESIZE);
	h->guard = mmap(NULL, HARNESS_GUARD_BYTES + h->page, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(h->guard != MAP_FAILED);
	assert_int_equal(mprotect(h->guard + HARNESS_GUARD_BYTES, h->page, PROT_NONE), 0);
	h->init_rc = h->p->init(h->state, &h->env);
}

static void harness_free(struct harness *h)
{
	if (h->p->fini)
		h->p->fini(h->state);
	free(h->state);
	munmap(h->guard, HARNESS_GUARD_BYTES + h->page);
	buf_free(&h->in);
	buf_free(&h->out);
	buf_free(&h->log);
}

/* One read of n bytes: append, then feed until the protocol wants more or closes. */
static void harness_feed(struct harness *h, const void *data, size_t n)
{
	if (h->closed)
		return;
	assert_int_equal(buf_append(&h->in, data, n), 0);
	for (;;) {
		size_t used = buf_used(&h->in);
		assert_true(used <= HARNESS_GUARD_BYTES);
		char *at = h->guard + HARNESS_GUARD_BYTES - used;
		if (used)
			memcpy(at, buf_head(&h->in), used);
		int flags = 0;
		ssize_t r = h->p->feed(h->state, at, used, &h->out, &flags);
		h->calls++;
		assert_true(r == PROTO_AGAIN || r == PROTO_ERROR || (r > 0 && (size_t)r <= used));
		if (r > 0) {
			buf_consume(&h->in, (size_t)r);
			h->consumed += (size_t)r;
		}
		if (r == PROTO_ERROR) {
			h->errored = 1;
			h->closed = 1;
			return;
		}
		if (flags & PROTO_F_CLOSE) {
			h->closed = 1;
			return;
		}
		if (r == PROTO_AGAIN)
			return;
	}
}

static void harness_feed_str(struct harness *h, const char *s) { harness_feed(h, s, strlen(s)); }

/* Feeds data in pieces of the given sizes (the last piece takes the rest). */
static void harness_feed_split(struct harness *h, const char *data, size_t n, size_t at)
{
	if (at > n)
		at = n;
	harness_feed(h, data, at);
	harness_feed(h, data + at, n - at);
}

static void harness_feed_bytewise(struct harness *h, const char *data, size_t n)
{
	for (size_t i = 0; i < n && !h->closed; i++)
		harness_feed(h, data + i, 1);
}

static void assert_buf_eq(const struct buf *b, const char *want, size_t n)
{
	if (buf_used(b) != n || memcmp(buf_head(b), want, n)) {
		print_error("want %zu bytes:\n%.*s\ngot %zu bytes:\n%.*s\n", n, (int)n, want,
			    buf_used(b), (int)buf_used(b), buf_head(b));
		fail();
	}
}

#endif
