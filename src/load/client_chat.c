/* client_chat: every connection joins one room; each line it sends carries
 * "ctx ID SEQ SENT_NS INTENDED_NS" padded with 'x' to --size, and reaches every other member
 * as "SENDER: ctx ...". An answer is such a delivery, timed from the stamps it carries.
 * The greeting is "/join ROOM" then the hello line "ctx-hello": a member that receives
 * "SENDER: ctx-hello" knows SENDER is in the room (a->hello). */
#include "load/client.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "load/load.h"

#define CHAT_MAX_LINE 4096
#define CHAT_MIN_SIZE 48 /* the stamps' room */
#define CHAT_HELLO "ctx-hello"

struct chat_client {
	struct buf in; /* a partial line received */
};

static int chat_check(const struct load_cfg *cfg, char *err, size_t errlen)
{
	if (cfg->bandwidth_bps > 0) {
		errbuf(err, errlen, "--bandwidth is for raw TCP: use it with --proto sink or echo");
		return -EINVAL;
	}
	if (cfg->requests) {
		errbuf(err, errlen, "chat runs for a duration: use -d");
		return -EINVAL;
	}
	return 0;
}

/* No fixed message: lines are stamped per send; msg_len is the line size. */
static int chat_frame(struct load_cfg *cfg, const struct load_client_opts *o, struct buf *msg,
		      char *note, size_t notelen, char *err, size_t errlen)
{
	uint64_t size = o->size;
	if (size < CHAT_MIN_SIZE) {
		if (o->have_size)
			errbuf(note, notelen, "chat lines carry 'ctx ID SEQ SENT_NS INTENDED_NS': "
					      "--size raised to %d", CHAT_MIN_SIZE);
		size = CHAT_MIN_SIZE;
	}
	cfg->msg_len = (size_t)size;
	return 0;
}

static void chat_reset(void *state, const struct load_cfg *cfg) { buf_clear(&((struct chat_client *)state)->in); }

static void chat_fini(void *state) { buf_free(&((struct chat_client *)state)->in); }

/* "<senderid>: ctx <gidx> <seq> <send_ns> <intended_ns> xxx": 1 with the stamps, else 0 */
static int chat_stamps(const char *s, size_t n, struct load_answer *a)
{
	const char *p = memchr(s, ':', n);
	if (p && (size_t)(s + n - p) == 2 + sizeof(CHAT_HELLO) - 1 &&
	    !memcmp(p + 2, CHAT_HELLO, sizeof(CHAT_HELLO) - 1) && p[1] == ' ') {
		memset(a, 0, sizeof(*a));
		a->hello = 1;
		return 1;
	}
	if (!p || (size_t)(s + n - p) < 7 || memcmp(p, ": ctx ", 6))
		return 0;
	p += 6;
	const char *end = s + n;
	uint64_t v[4] = {0, 0, 0, 0};
	for (int i = 0; i < 4; i++) {
		if (p >= end || *p < '0' || *p > '9')
			return 0;
		while (p < end && *p >= '0' && *p <= '9')
			v[i] = v[i] * 10 + (uint64_t)(*p++ - '0');
		if (p < end && *p == ' ')
			p++;
	}
	a->status = 0;
	a->close = 0;
	a->hello = 0;
	a->sent_ns = v[2];
	a->intended_ns = v[3];
	return 1;
}

static int chat_parse(void *state, const char *in, size_t len, uint64_t inflight, size_t *used,
		      struct load_answer *a)
{
	struct chat_client *cc = state;
	const char *nl = memchr(in, '\n', len);
	if (!nl) {
		/* a partial line: kept, unless it is overlong (then dropped) */
		if (buf_used(&cc->in) + len > CHAT_MAX_LINE)
			buf_clear(&cc->in);
		else
			buf_append(&cc->in, in, len);
		*used = len;
		return 0;
	}
	size_t n = (size_t)(nl - in);
	*used = n + 1;
	if (!buf_used(&cc->in))
		return chat_stamps(in, n, a);
	if (buf_append(&cc->in, in, n) < 0) {
		buf_clear(&cc->in);
		return 0;
	}
	int got = chat_stamps(buf_head(&cc->in), buf_used(&cc->in), a);
	buf_clear(&cc->in);
	return got;
}

static int chat_greet(void *state, const struct load_cfg *cfg, struct buf *out)
{
	return buf_appendf(out, "/join %s\n" CHAT_HELLO "\n", cfg->room);
}

static size_t chat_stamp(char *line, size_t cap, size_t size, uint32_t id, uint64_t seq,
			 uint64_t now_ns, uint64_t intended_ns)
{
	if (cap > CHAT_MAX_LINE)
		cap = CHAT_MAX_LINE;
	int n = snprintf(line, cap, "ctx %" PRIu32 " %" PRIu64 " %" PRIu64 " %" PRIu64 " ", id, seq,
			 now_ns, intended_ns);
	if (n < 0 || (size_t)n + 1 >= cap)
		return 0;
	size_t len = (size_t)n;
	while (len + 1 < size && len + 1 < cap)
		line[len++] = 'x';
	line[len++] = '\n';
	return len;
}

const struct load_client load_client_chat = {
	.name = "chat",
	.summary = "one room; every line reaches the other members, timed by its stamps",
	.flags = LOAD_C_FANOUT,
	.unit = "message",
	.answers = "deliveries",
	.state_size = sizeof(struct chat_client),
	.check = chat_check,
	.frame = chat_frame,
	.reset = chat_reset,
	.fini = chat_fini,
	.parse = chat_parse,
	.greet = chat_greet,
	.stamp = chat_stamp,
};
