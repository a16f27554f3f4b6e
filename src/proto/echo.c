/* echo: every byte received is sent back, in order, as soon as it is fed.
 *
 * With a work knob set, proto_work runs once per newline ('\n') received (a line split across
 * feeds counts once, at its newline); the bytes are echoed whatever the knob.
 * Returns len, PROTO_AGAIN for len 0, PROTO_ERROR when `out` cannot grow.
 */
#include "proto/proto.h"

#include <string.h>

struct echo {
	struct proto_env *env;
	uint64_t cpu_us, mem_bytes, stride_bytes;
	int work;
};

static int echo_init(void *state, struct proto_env *env)
{
	struct echo *e = state;
	memset(e, 0, sizeof(*e));
	e->env = env;
	if (env && env->cfg) {
		e->cpu_us = env->cfg->work_cpu_us;
		e->mem_bytes = env->cfg->work_mem_bytes;
		e->stride_bytes = env->cfg->work_stride_bytes;
	}
	e->work = e->cpu_us || e->mem_bytes;
	return 0;
}

static ssize_t echo_feed(void *state, const char *in, size_t len, struct buf *out, int *flags)
{
	struct echo *e = state;
	if (!len)
		return PROTO_AGAIN;
	if (e->work) {
		const char *p = in, *end = in + len;
		while ((p = memchr(p, '\n', (size_t)(end - p)))) {
			p++;
			proto_work(e->cpu_us, e->mem_bytes, e->stride_bytes);
		}
	}
	if (buf_append(out, in, len))
		return PROTO_ERROR;
	return (ssize_t)len;
}

/* feed consumes everything: no input is ever kept */
static size_t echo_in_max_bytes(const struct proto_cfg *cfg) { return 0; }

const struct proto echo_proto = {
	.name = "echo",
	.summary = "every byte received is sent back; work knob per line",
	.state_size = sizeof(struct echo),
	.init = echo_init,
	.feed = echo_feed,
	.in_max_bytes = echo_in_max_bytes,
	.caps = PROTO_CAP_PEER,
};
