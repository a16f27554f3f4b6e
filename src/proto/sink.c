/* sink: read and discard (papayachat's benchmarked server). Counts the bytes consumed.
 *
 * feed consumes everything it is given and never replies. With no work knob set it does not
 * look at the bytes at all (the cheap path); with a knob set it runs proto_work once per
 * newline ('\n') received, a line split across feeds counting once, at its newline.
 */
#include "proto/proto.h"

#include <string.h>

struct sink {
	struct proto_env *env;
	uint64_t bytes;
	uint64_t lines;
	uint64_t cpu_us, mem_bytes, stride_bytes;
	int work;
};

static int sink_init(void *state, struct proto_env *env)
{
	struct sink *s = state;
	memset(s, 0, sizeof(*s));
	s->env = env;
	if (env && env->cfg) {
		s->cpu_us = env->cfg->work_cpu_us;
		s->mem_bytes = env->cfg->work_mem_bytes;
		s->stride_bytes = env->cfg->work_stride_bytes;
	}
	s->work = s->cpu_us || s->mem_bytes;
	return 0;
}

static ssize_t sink_feed(void *state, const char *in, size_t len, struct buf *out, int *flags)
{
	struct sink *s = state;
	if (!len)
		return PROTO_AGAIN;
	s->bytes += len;
	if (s->work) {
		const char *p = in, *end = in + len;
		while ((p = memchr(p, '\n', (size_t)(end - p)))) {
			p++;
			s->lines++;
			proto_work(s->cpu_us, s->mem_bytes, s->stride_bytes);
		}
	}
	return (ssize_t)len;
}

/* feed consumes everything: no input is ever kept */
static size_t sink_in_max_bytes(const struct proto_cfg *cfg) { return 0; }

const struct proto sink_proto = {
	.name = "sink",
	.summary = "read and discard (papayachat's benchmark); work knob per line",
	.state_size = sizeof(struct sink),
	.init = sink_init,
	.feed = sink_feed,
	.in_max_bytes = sink_in_max_bytes,
	.caps = PROTO_CAP_PEER,
};
