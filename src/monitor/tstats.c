/* tstats: taskstats over generic netlink. See tstats.h. */
#include "monitor/tstats.h"

#include <errno.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/taskstats.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NLA_DATA(na) ((void *)((char *)(na) + NLA_HDRLEN))
#define GENL_DATA(nh) ((char *)NLMSG_DATA(nh) + GENL_HDRLEN)

struct req {
	struct nlmsghdr n;
	struct genlmsghdr g;
	char buf[256];
};

static int send_req(struct tstats *t, uint16_t type, uint8_t cmd, uint16_t attr, const void *data,
		    uint16_t len)
{
	struct req r;
	memset(&r, 0, sizeof r);
	r.n.nlmsg_type = type;
	r.n.nlmsg_flags = NLM_F_REQUEST;
	r.n.nlmsg_seq = ++t->seq;
	r.n.nlmsg_pid = 0;
	r.g.cmd = cmd;
	r.g.version = 1;
	struct nlattr *na = (struct nlattr *)r.buf;
	na->nla_type = attr;
	na->nla_len = (uint16_t)(NLA_HDRLEN + len);
	memcpy(NLA_DATA(na), data, len);
	r.n.nlmsg_len = (uint32_t)(NLMSG_LENGTH(GENL_HDRLEN) + NLA_ALIGN(na->nla_len));
	struct sockaddr_nl to = {.nl_family = AF_NETLINK};
	for (;;) {
		ssize_t w = sendto(t->fd, &r, r.n.nlmsg_len, 0, (struct sockaddr *)&to, sizeof to);
		if (w >= 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

/* Receives the answer to the last request into buf. Length, or -errno (the kernel's). */
static ssize_t recv_ans(struct tstats *t, char *buf, size_t len)
{
	for (;;) {
		ssize_t n = recv(t->fd, buf, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		struct nlmsghdr *nh = (struct nlmsghdr *)buf;
		if (n < (ssize_t)sizeof *nh || !NLMSG_OK(nh, (size_t)n))
			return -EBADMSG;
		if (nh->nlmsg_seq != t->seq)
			continue; /* a stale answer (an earlier request that timed out) */
		if (nh->nlmsg_type == NLMSG_ERROR) {
			struct nlmsgerr *e = NLMSG_DATA(nh);
			return e->error ? e->error : -EBADMSG;
		}
		return n;
	}
}

static int resolve_family(struct tstats *t)
{
	char name[] = TASKSTATS_GENL_NAME;
	int r = send_req(t, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, CTRL_ATTR_FAMILY_NAME, name,
			 sizeof name);
	if (r)
		return r;
	char buf[4096];
	ssize_t n = recv_ans(t, buf, sizeof buf);
	if (n < 0)
		return (int)n;
	struct nlmsghdr *nh = (struct nlmsghdr *)buf;
	char *p = GENL_DATA(nh), *end = (char *)nh + nh->nlmsg_len;
	while (p + NLA_HDRLEN <= end) {
		struct nlattr *na = (struct nlattr *)p;
		if (na->nla_len < NLA_HDRLEN)
			break;
		if ((na->nla_type & NLA_TYPE_MASK) == CTRL_ATTR_FAMILY_ID) {
			t->family = *(uint16_t *)NLA_DATA(na);
			return 0;
		}
		p += NLA_ALIGN(na->nla_len);
	}
	return -ENOENT;
}

/* Finds the struct taskstats nested in the answer (AGGR_PID or AGGR_TGID → STATS). */
static const struct taskstats *find_stats(const char *p, const char *end, size_t *len)
{
	while (p + NLA_HDRLEN <= end) {
		const struct nlattr *na = (const struct nlattr *)p;
		if (na->nla_len < NLA_HDRLEN || p + na->nla_len > end)
			return NULL;
		int type = na->nla_type & NLA_TYPE_MASK;
		if (type == TASKSTATS_TYPE_AGGR_PID || type == TASKSTATS_TYPE_AGGR_TGID) {
			return find_stats(p + NLA_HDRLEN, p + na->nla_len, len);
		} else if (type == TASKSTATS_TYPE_STATS) {
			*len = na->nla_len - NLA_HDRLEN;
			return (const struct taskstats *)(p + NLA_HDRLEN);
		}
		p += NLA_ALIGN(na->nla_len);
	}
	return NULL;
}

int tstats_get(struct tstats *t, pid_t id, int tgid, struct tstats_fig *f)
{
	uint32_t v = (uint32_t)id;
	int r = send_req(t, t->family, TASKSTATS_CMD_GET,
			 tgid ? TASKSTATS_CMD_ATTR_TGID : TASKSTATS_CMD_ATTR_PID, &v, sizeof v);
	if (r)
		return r;
	char buf[1024] __attribute__((aligned(8)));
	ssize_t n = recv_ans(t, buf, sizeof buf);
	if (n < 0)
		return (int)n;
	struct nlmsghdr *nh = (struct nlmsghdr *)buf;
	size_t len = 0;
	const struct taskstats *ts = find_stats(GENL_DATA(nh), (char *)nh + nh->nlmsg_len, &len);
	if (!ts)
		return -EBADMSG;
	/* the kernel's struct may be longer (newer) or shorter (older) than ours */
	struct taskstats s;
	memset(&s, 0, sizeof s);
	memcpy(&s, ts, len < sizeof s ? len : sizeof s);
	if (len < offsetof(struct taskstats, nivcsw) + sizeof s.nivcsw)
		return -EPROTO;
	f->run_ns = s.cpu_run_virtual_total;
	f->wait_ns = s.cpu_delay_total;
	f->vol = s.nvcsw;
	f->invol = s.nivcsw;
	f->utime_us = s.ac_utime;
	f->stime_us = s.ac_stime;
	return 0;
}

int tstats_open(struct tstats *t)
{
	memset(t, 0, sizeof *t);
	t->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (t->fd < 0) {
		int e = errno;
		snprintf(t->why, sizeof t->why, "no generic netlink socket: %s", strerror(e));
		return -e;
	}
	struct sockaddr_nl me = {.nl_family = AF_NETLINK};
	if (bind(t->fd, (struct sockaddr *)&me, sizeof me) < 0) {
		int e = errno;
		snprintf(t->why, sizeof t->why, "cannot bind a netlink socket: %s", strerror(e));
		tstats_close(t);
		return -e;
	}
	struct timeval tv = {.tv_sec = 1};
	setsockopt(t->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	int r = resolve_family(t);
	if (r) {
		snprintf(t->why, sizeof t->why, "no taskstats in this kernel (CONFIG_TASKSTATS): %s",
			 strerror(-r));
		tstats_close(t);
		return r;
	}
	/* probe: a kernel with delay accounting reports run_ns > 0 for a process that has run
	 * (the caller's own figure may still be 0: the kernel updates a running task's total
	 * when it is switched out; so the parent, then init) */
	struct tstats_fig f;
	r = tstats_get(t, getppid(), 1, &f);
	if (r || !f.run_ns)
		r = tstats_get(t, 1, 1, &f);
	if (r || !f.run_ns) {
		snprintf(t->why, sizeof t->why, "taskstats %s", r ? strerror(-r)
			 : "reports no CPU time (CONFIG_TASK_DELAY_ACCT off)");
		tstats_close(t);
		return r ? r : -ENOTSUP;
	}
	return 0;
}

void tstats_close(struct tstats *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
}
