#include "core/ready.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int word_ok(const char *s)
{
	return s && s[0] && !strpbrk(s, " \t\n");
}

int ready_format(char *buf, size_t len, const char *addr, const char *engine, const char *proto,
		 pid_t pid)
{
	if (!word_ok(addr) || !word_ok(engine) || !word_ok(proto) || pid <= 0)
		return -EINVAL;
	return snprintf(buf, len, READY_PREFIX "%s engine=%s proto=%s pid=%d", addr, engine, proto,
			(int)pid);
}

int ready_is_ready_line(const char *line)
{
	return !strncmp(line, READY_PREFIX, strlen(READY_PREFIX));
}

/* copies [s, s+n) into out[len]; -ERANGE when it does not fit */
static int copy_word(char *out, size_t len, const char *s, size_t n)
{
	if (n >= len)
		return -ERANGE;
	memcpy(out, s, n);
	out[n] = 0;
	return 0;
}

static int parse_addr(struct ready *r, const char *s, size_t n)
{
	if (copy_word(r->addr, sizeof r->addr, s, n) < 0)
		return -ERANGE;
	char *colon = strrchr(r->addr, ':');
	if (!colon || colon == r->addr || !colon[1])
		return -EINVAL;
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535)
		return -EINVAL;
	r->port = (int)port;
	const char *h = r->addr;
	size_t hl = (size_t)(colon - r->addr);
	if (h[0] == '[') {
		if (hl < 2 || h[hl - 1] != ']')
			return -EINVAL;
		h++;
		hl -= 2;
	}
	return copy_word(r->host, sizeof r->host, h, hl);
}

int ready_parse(const char *line, struct ready *r)
{
	memset(r, 0, sizeof *r);
	if (!ready_is_ready_line(line))
		return -EINVAL;
	const char *p = line + strlen(READY_PREFIX);
	int field = 0; /* 0 addr, then key=value words */
	while (*p && *p != '\n') {
		size_t n = strcspn(p, " \n");
		if (!n)
			return -EINVAL; /* two spaces, or a leading one */
		int rc;
		if (field == 0) {
			rc = parse_addr(r, p, n);
		} else if (n > 7 && !strncmp(p, "engine=", 7)) {
			rc = copy_word(r->engine, sizeof r->engine, p + 7, n - 7);
		} else if (n > 6 && !strncmp(p, "proto=", 6)) {
			rc = copy_word(r->proto, sizeof r->proto, p + 6, n - 6);
		} else if (n > 4 && !strncmp(p, "pid=", 4)) {
			char num[16], *end;
			rc = copy_word(num, sizeof num, p + 4, n - 4);
			long v = rc ? 0 : strtol(num, &end, 10);
			if (!rc && (*end || v <= 0))
				rc = -EINVAL;
			r->pid = (pid_t)v;
		} else {
			rc = 0; /* a later field this version does not know: ignored */
		}
		if (rc < 0)
			return rc;
		field++;
		p += n;
		if (*p == ' ')
			p++;
	}
	return field ? 0 : -EINVAL;
}
