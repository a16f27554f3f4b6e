/* client_echo: a fixed message; an answer is the message's length in bytes received back
 * (the content is not compared: echo returns the bytes in order). */
#include "load/client.h"

#include <errno.h>
#include <string.h>

#include "core/log.h"
#include "load/client_line.h"
#include "load/load.h"

struct echo_client {
	uint64_t msg_len;
	uint64_t rx;      /* bytes of the current echo received */
};

int client_line_frame(struct load_cfg *cfg, const struct load_client_opts *o, struct buf *msg,
		      char *note, size_t notelen, char *err, size_t errlen)
{
	if (o->message) {
		if (!*o->message) {
			errbuf(err, errlen, "the message is empty");
			return -EINVAL;
		}
		if (buf_append(msg, o->message, strlen(o->message)) < 0)
			goto oom;
	} else {
		for (uint64_t i = 0; i + 1 < o->size; i++)
			if (buf_append(msg, "x", 1) < 0)
				goto oom;
		if (buf_append(msg, "\n", 1) < 0)
			goto oom;
	}
	cfg->msg_len = buf_used(msg);
	return 0;
oom:
	errbuf(err, errlen, "out of memory for the message");
	return -ENOMEM;
}

static void echo_reset(void *state, const struct load_cfg *cfg)
{
	struct echo_client *e = state;
	e->msg_len = cfg->msg_len ? cfg->msg_len : 1;
	e->rx = 0;
}

static int echo_parse(void *state, const char *in, size_t len, uint64_t inflight, size_t *used,
		      struct load_answer *a)
{
	struct echo_client *e = state;
	uint64_t need = e->msg_len - e->rx;
	if (len < need) {
		e->rx += len;
		*used = len;
		return 0;
	}
	if (!inflight)
		return -1; /* an echo of nothing sent */
	e->rx = 0;
	*used = (size_t)need;
	a->status = 0;
	a->close = 0;
	return 1;
}

const struct load_client load_client_echo = {
	.name = "echo",
	.summary = "a fixed message; answered when its length has come back",
	.flags = LOAD_C_REQRESP,
	.unit = "message",
	.answers = "messages",
	.state_size = sizeof(struct echo_client),
	.frame = client_line_frame,
	.reset = echo_reset,
	.parse = echo_parse,
};
