/* chat: line-based rooms.
 *
 * Rooms: init joins the room "lobby" (env->join), so a connection receives every message
 * published in the lobby from the moment it is set up, before it has sent anything. If the
 * first non-empty line it sends is `/join ROOM`, chat calls env->join(ROOM) once more (a move:
 * the engine takes the connection out of its current room); `/join lobby` calls nothing.
 * ROOM is 1..CHAT_MAX_ROOM bytes of visible ASCII (0x21..0x7e); anything else is an error.
 * A `/join` line later on is an ordinary message.
 *
 * Lines end with '\n'; one '\r' right before it is stripped ("\r\n" works). Empty lines are
 * ignored. Every other line is published once (env->publish) formatted `<conn_id>: <line>\n`;
 * the engine delivers it to every *other* connection in the room, the sender gets nothing.
 * The work knob (cfg->work_*) runs once per published line.
 *
 * Errors: a line longer than cfg->max_line bytes (the '\n' and a stripped '\r' not counted)
 * appends `* error: line over N bytes (send shorter lines)\n` and returns PROTO_ERROR, as soon
 * as the over-long line is certain (it need not be complete). A bad room name or a failing
 * join/publish hook also end in an error line and PROTO_ERROR; a join the engine refuses with
 * -ENOSPC (cfg->max_rooms rooms exist) answers
 * `* error: too many rooms (this server allows N: --max-rooms; join an existing room)\n`.
 * overflow() appends `* disconnected: output queue over N bytes (slow reader)\n`,
 * N = cfg->max_outbuf (the engine's bound).
 *
 * feed handles every complete line in the input and returns the bytes of those lines, or
 * PROTO_AGAIN when there is none yet. It remembers how far it has scanned for a newline so
 * a slow sender costs O(n), relying on the engine re-presenting the same unconsumed prefix.
 */
#include "proto/proto.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHAT_LOBBY "lobby"
#define CHAT_MAX_ROOM 64

struct chat {
	struct proto_env *env;
	size_t max_line;
	size_t max_outbuf;
	uint64_t cpu_us, mem_bytes, stride_bytes;
	size_t scanned;       /* bytes of in[] known to hold no '\n' */
	int first_seen;       /* a non-empty line was received */
	char id[24];          /* "<conn_id>: " */
	size_t id_len;
	uint64_t published;
};

static int chat_init(void *state, struct proto_env *env)
{
	struct chat *c = state;
	const struct proto_cfg *cfg = env ? env->cfg : NULL;
	memset(c, 0, sizeof(*c));
	c->env = env;
	c->max_line = cfg && cfg->max_line ? cfg->max_line : PROTO_DEFAULT_MAX_LINE;
	c->max_outbuf = cfg && cfg->max_outbuf ? cfg->max_outbuf : PROTO_DEFAULT_MAX_OUTBUF;
	if (cfg) {
		c->cpu_us = cfg->work_cpu_us;
		c->mem_bytes = cfg->work_mem_bytes;
		c->stride_bytes = cfg->work_stride_bytes;
	}
	int n = snprintf(c->id, sizeof(c->id), "%" PRIu64 ": ", env ? env->conn_id : 0);
	c->id_len = n > 0 && (size_t)n < sizeof(c->id) ? (size_t)n : 0;
	if (env && env->join)
		return env->join(env, CHAT_LOBBY, sizeof(CHAT_LOBBY) - 1);
	return 0;
}

static ssize_t chat_fail(struct buf *out, int *flags, const char *fmt, size_t n)
{
	buf_appendf(out, fmt, n);
	*flags |= PROTO_F_CLOSE;
	return PROTO_ERROR;
}

static int chat_publish(struct chat *c, const char *line, size_t len)
{
	char stack[1024];
	size_t n = c->id_len + len + 1;
	char *msg = n <= sizeof(stack) ? stack : malloc(n);
	if (!msg)
		return -ENOMEM;
	memcpy(msg, c->id, c->id_len);
	memcpy(msg + c->id_len, line, len);
	msg[n - 1] = '\n';
	int r = c->env && c->env->publish ? c->env->publish(c->env, msg, n) : 0;
	if (msg != stack)
		free(msg);
	c->published++;
	return r;
}

static int room_ok(const char *room, size_t len)
{
	if (len == 0 || len > CHAT_MAX_ROOM)
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)room[i] < 0x21 || (unsigned char)room[i] > 0x7e)
			return 0;
	return 1;
}

/* One complete line (without '\n' and the stripped '\r'): 0 or PROTO_ERROR. */
static ssize_t chat_line(struct chat *c, const char *line, size_t len, struct buf *out, int *flags)
{
	if (len == 0)
		return 0;
	if (!c->first_seen) {
		c->first_seen = 1;
		if ((len == 5 || (len > 5 && line[5] == ' ')) && !memcmp(line, "/join", 5)) {
			const char *room = line + (len > 5 ? 6 : 5);
			size_t room_len = len > 5 ? len - 6 : 0;
			if (!room_ok(room, room_len))
				return chat_fail(out, flags,
						 "* error: bad room name (use /join NAME, NAME 1-%zu "
						 "visible characters, no spaces)\n",
						 (size_t)CHAT_MAX_ROOM);
			if (room_len == sizeof(CHAT_LOBBY) - 1 && !memcmp(room, CHAT_LOBBY, room_len))
				return 0;
			int jr = c->env && c->env->join ? c->env->join(c->env, room, room_len) : 0;
			if (jr == -ENOSPC)
				return chat_fail(out, flags,
						 "* error: too many rooms (this server allows %zu: "
						 "--max-rooms; join an existing room)\n",
						 c->env->cfg ? c->env->cfg->max_rooms : 0);
			if (jr < 0)
				return chat_fail(out, flags,
						 "* error: cannot join the room (server refused it; "
						 "%zu-byte name)\n", room_len);
			return 0;
		}
	}
	if (chat_publish(c, line, len) < 0)
		return chat_fail(out, flags, "* error: cannot publish a %zu-byte line\n", len);
	if (c->cpu_us || c->mem_bytes)
		proto_work(c->cpu_us, c->mem_bytes, c->stride_bytes);
	return 0;
}

static ssize_t chat_feed(void *state, const char *in, size_t len, struct buf *out, int *flags)
{
	struct chat *c = state;
	size_t done = 0;
	if (c->scanned > len)
		c->scanned = 0;
	size_t from = c->scanned;
	for (;;) {
		const char *nl = from < len ? memchr(in + from, '\n', len - from) : NULL;
		if (!nl) {
			/* the pending line in[done..len): over the limit already? */
			size_t pend = len - done;
			if (pend > c->max_line + 1 ||
			    (pend == c->max_line + 1 && in[len - 1] != '\r'))
				return chat_fail(out, flags,
						 "* error: line over %zu bytes (send shorter lines)\n",
						 c->max_line);
			c->scanned = len - done;
			break;
		}
		size_t end = (size_t)(nl - in);
		size_t l = end - done;
		if (l && in[end - 1] == '\r')
			l--;
		if (l > c->max_line)
			return chat_fail(out, flags,
					 "* error: line over %zu bytes (send shorter lines)\n",
					 c->max_line);
		if (chat_line(c, in + done, l, out, flags) < 0)
			return PROTO_ERROR;
		done = end + 1;
		from = done;
	}
	if (!done)
		return PROTO_AGAIN;
	return (ssize_t)done;
}

static void chat_overflow(void *state, struct buf *out)
{
	struct chat *c = state;
	buf_appendf(out, "* disconnected: output queue over %zu bytes (slow reader)\n",
		    c->max_outbuf);
}

/* a partial line: max_line bytes plus its "\r\n" (a longer one is an error) */
static size_t chat_in_max_bytes(const struct proto_cfg *cfg)
{
	return (cfg && cfg->max_line ? cfg->max_line : PROTO_DEFAULT_MAX_LINE) + 2;
}

const struct proto chat_proto = {
	.name = "chat",
	.summary = "line-based rooms: every line reaches every other client in the room",
	.state_size = sizeof(struct chat),
	.init = chat_init,
	.feed = chat_feed,
	.overflow = chat_overflow,
	.in_max_bytes = chat_in_max_bytes,
	.fanout = 1,
	.caps = PROTO_CAP_PEER,
};
