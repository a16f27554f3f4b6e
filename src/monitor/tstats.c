/* tstats: taskstats over generic netlink. See tstats.h. */
#include "monitor/tstats.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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
		struct sockaddr_nl from;
		socklen_t fl = sizeof from;
		ssize_t n = recvfrom(t->fd, buf, len, 0, (struct sockaddr *)&from, &fl);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (fl < sizeof from || from.nl_family != AF_NETLINK || from.nl_pid != 0) {
			t->forged++;
			continue; /* not from the kernel: another process may write to our port */
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

/* Copies the kernel's struct (which may be longer or shorter than ours) into s. 0, or -EPROTO
 * when it is too short to hold the switch counts. */
static int copy_stats(const struct taskstats *ts, size_t len, struct taskstats *s)
{
	memset(s, 0, sizeof *s);
	memcpy(s, ts, len < sizeof *s ? len : sizeof *s);
	if (len < offsetof(struct taskstats, nivcsw) + sizeof s->nivcsw)
		return -EPROTO;
	return 0;
}

static int parse_fig(const struct nlmsghdr *nh, struct tstats_fig *f);

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
	return parse_fig((struct nlmsghdr *)buf, f);
}

/* The figures of one answer (a TASKSTATS_CMD_NEW message). 0, or -errno. */
static int parse_fig(const struct nlmsghdr *nh, struct tstats_fig *f)
{
	size_t len = 0;
	const struct taskstats *ts = find_stats(GENL_DATA(nh), (const char *)nh + nh->nlmsg_len,
						&len);
	if (!ts)
		return -EBADMSG;
	/* the kernel's struct may be longer (newer) or shorter (older) than ours */
	struct taskstats s;
	if (copy_stats(ts, len, &s))
		return -EPROTO;
	f->run_ns = s.cpu_run_virtual_total;
	f->wait_ns = s.cpu_delay_total;
	f->vol = s.nvcsw;
	f->invol = s.nivcsw;
	f->utime_us = s.ac_utime;
	f->stime_us = s.ac_stime;
	return 0;
}

int tstats_get_many(struct tstats *t, const pid_t *ids, int n, int tgid, struct tstats_fig *f,
		    int *rc)
{
	/* one request: nlmsghdr + genlmsghdr + one u32 attribute (28 bytes, aligned) */
	enum { RQ = NLMSG_LENGTH(GENL_HDRLEN) + NLA_HDRLEN + 4 };
	char out[TSTATS_BATCH * NLMSG_ALIGN(RQ)] __attribute__((aligned(8)));
	if (n <= 0)
		return 0;
	if (n > TSTATS_BATCH)
		return -EINVAL;
	memset(out, 0, (size_t)n * NLMSG_ALIGN(RQ));
	uint32_t seq0 = t->seq + 1;
	for (int i = 0; i < n; i++) {
		struct nlmsghdr *nh = (struct nlmsghdr *)(out + (size_t)i * NLMSG_ALIGN(RQ));
		nh->nlmsg_len = RQ;
		nh->nlmsg_type = t->family;
		nh->nlmsg_flags = NLM_F_REQUEST;
		nh->nlmsg_seq = seq0 + (uint32_t)i;
		struct genlmsghdr *g = NLMSG_DATA(nh);
		g->cmd = TASKSTATS_CMD_GET;
		g->version = 1;
		struct nlattr *na = (struct nlattr *)((char *)g + GENL_HDRLEN);
		na->nla_type = tgid ? TASKSTATS_CMD_ATTR_TGID : TASKSTATS_CMD_ATTR_PID;
		na->nla_len = NLA_HDRLEN + 4;
		uint32_t v = (uint32_t)ids[i];
		memcpy((char *)na + NLA_HDRLEN, &v, 4);
		rc[i] = -EAGAIN; /* until its answer comes */
	}
	t->seq += (uint32_t)n;
	struct sockaddr_nl to = {.nl_family = AF_NETLINK};
	for (;;) {
		ssize_t w = sendto(t->fd, out, (size_t)n * NLMSG_ALIGN(RQ), 0,
				   (struct sockaddr *)&to, sizeof to);
		if (w >= 0)
			break;
		if (errno != EINTR) {
			int e = -errno;
			for (int i = 0; i < n; i++)
				rc[i] = e;
			return e;
		}
	}
	/* the kernel answers every request of the message inside that sendto (generic netlink
	 * runs in the sender's context), one message each, an error included: all are queued
	 * now; one that did not fit the socket buffer is missing (its rc stays -EAGAIN) */
	enum { AN = 1024, VL = 16 };
	char in[VL][AN] __attribute__((aligned(8)));
	struct sockaddr_nl from[VL];
	struct iovec iov[VL];
	struct mmsghdr mm[VL];
	int got = 0;
	while (got < n) {
		int want = n - got < VL ? n - got : VL;
		for (int i = 0; i < want; i++) {
			iov[i] = (struct iovec){in[i], AN};
			memset(&mm[i], 0, sizeof mm[i]);
			mm[i].msg_hdr.msg_name = &from[i];
			mm[i].msg_hdr.msg_namelen = sizeof from[i];
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
		}
		int k = recvmmsg(t->fd, mm, (unsigned)want, MSG_DONTWAIT, NULL);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) /* an answer was dropped: the rest are still queued */
				continue;
			break; /* EAGAIN: nothing more */
		}
		for (int i = 0; i < k; i++) {
			if (mm[i].msg_hdr.msg_namelen < sizeof from[i] ||
			    from[i].nl_family != AF_NETLINK || from[i].nl_pid != 0) {
				t->forged++;
				continue;
			}
			size_t len = mm[i].msg_len;
			struct nlmsghdr *nh = (struct nlmsghdr *)in[i];
			if (len < sizeof *nh || !NLMSG_OK(nh, len))
				continue;
			uint32_t j = nh->nlmsg_seq - seq0;
			if (j >= (uint32_t)n || rc[j] != -EAGAIN)
				continue; /* stale (an earlier request's) or a repeat */
			if (nh->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(nh);
				rc[j] = e->error ? e->error : -EBADMSG;
			} else {
				rc[j] = parse_fig(nh, &f[j]);
			}
			got++;
		}
	}
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
	if (t->fd >= 0) {
		if (t->mask[0]) /* the kernel also drops a listener whose socket is gone */
			send_req(t, t->family, TASKSTATS_CMD_GET,
				 TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK, t->mask,
				 (uint16_t)(strlen(t->mask) + 1));
		close(t->fd);
	}
	t->fd = -1;
	t->mask[0] = 0;
}

/* ---- exit events ------------------------------------------------------------------------ */

int tstats_listen(struct tstats *t)
{
	memset(t, 0, sizeof *t);
	t->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_GENERIC);
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
	/* a burst of exits between two reads must fit: ~1 KiB per exit */
	int sz = 32 << 20;
	if (setsockopt(t->fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz))
		setsockopt(t->fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
	/* resolve_family waits for its answer: blocking until then */
	struct timeval tv = {.tv_sec = 1};
	setsockopt(t->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	int fl = fcntl(t->fd, F_GETFL);
	fcntl(t->fd, F_SETFL, fl & ~O_NONBLOCK);
	int r = resolve_family(t);
	if (r) {
		snprintf(t->why, sizeof t->why, "no taskstats in this kernel (CONFIG_TASKSTATS): %s",
			 strerror(-r));
		tstats_close(t);
		return r;
	}
	fcntl(t->fd, F_SETFL, fl | O_NONBLOCK);
	/* every possible CPU: a task's exit is reported to the listeners of the CPU it exits on */
	char mask[sizeof t->mask];
	int fd = open("/sys/devices/system/cpu/possible", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, mask, sizeof mask - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0) {
		long c = sysconf(_SC_NPROCESSORS_CONF);
		n = snprintf(mask, sizeof mask, "0-%ld", c > 0 ? c - 1 : 0);
	}
	mask[n] = 0;
	while (n > 0 && (mask[n - 1] == '\n' || mask[n - 1] == ' '))
		mask[--n] = 0;
	r = send_req(t, t->family, TASKSTATS_CMD_GET, TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, mask,
		     (uint16_t)(n + 1));
	if (r) {
		snprintf(t->why, sizeof t->why, "cannot register for exit events: %s", strerror(-r));
		tstats_close(t);
		return r;
	}
	/* the kernel acknowledges only errors (no NLM_F_ACK): a refusal arrives now or never */
	struct pollfd pfd = {.fd = t->fd, .events = POLLIN};
	if (poll(&pfd, 1, 20) == 1) {
		char buf[512] __attribute__((aligned(8)));
		struct sockaddr_nl from;
		socklen_t sl = sizeof from;
		ssize_t m = recvfrom(t->fd, buf, sizeof buf, MSG_PEEK, (struct sockaddr *)&from, &sl);
		struct nlmsghdr *nh = (struct nlmsghdr *)buf;
		if (m >= (ssize_t)sizeof *nh && from.nl_pid == 0 && nh->nlmsg_type == NLMSG_ERROR &&
		    nh->nlmsg_seq == t->seq) {
			struct nlmsgerr *e = NLMSG_DATA(nh);
			if (e->error) {
				snprintf(t->why, sizeof t->why, "cannot register for exit events: %s%s",
					 strerror(-e->error), e->error == -EINVAL
					 ? " (listeners only from the initial PID and user namespaces)"
					 : "");
				r = e->error;
				tstats_close(t);
				return r;
			}
		}
	}
	memcpy(t->mask, mask, (size_t)n + 1);
	return 0;
}

/* One exit message: the AGGR_PID record (the task's own figures). 1 = filled, 0 = not one. */
static int parse_exit(const struct nlmsghdr *nh, uint16_t family, struct tstats_exit *ev)
{
	if (nh->nlmsg_type != family || nh->nlmsg_len < NLMSG_LENGTH(GENL_HDRLEN))
		return 0;
	const struct genlmsghdr *g = NLMSG_DATA(nh);
	if (g->cmd != TASKSTATS_CMD_NEW)
		return 0;
	const char *p = GENL_DATA(nh), *end = (const char *)nh + nh->nlmsg_len;
	while (p + NLA_HDRLEN <= end) {
		const struct nlattr *na = (const struct nlattr *)p;
		if (na->nla_len < NLA_HDRLEN || p + na->nla_len > end)
			return 0;
		if ((na->nla_type & NLA_TYPE_MASK) == TASKSTATS_TYPE_AGGR_PID) {
			size_t len = 0;
			const struct taskstats *ts = find_stats(p, p + na->nla_len, &len);
			struct taskstats s;
			if (!ts || copy_stats(ts, len, &s))
				return 0;
			ev->tid = (pid_t)s.ac_pid;
			ev->ppid = (pid_t)s.ac_ppid;
			ev->tgid = 0;
#if TASKSTATS_VERSION >= 12
			if (len >= offsetof(struct taskstats, ac_tgid) + sizeof s.ac_tgid)
				ev->tgid = (pid_t)s.ac_tgid;
#endif
			ev->vol = s.nvcsw;
			ev->invol = s.nivcsw;
			return ev->tid > 0;
		}
		p += NLA_ALIGN(na->nla_len);
	}
	return 0;
}

int tstats_exits(struct tstats *t, struct tstats_exit *ev, int max)
{
	int k = 0;
	char buf[8192] __attribute__((aligned(8)));
	while (k < max) {
		struct sockaddr_nl from;
		socklen_t fl = sizeof from;
		ssize_t n = recvfrom(t->fd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from,
				     &fl);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) {
				t->lost++; /* the buffer overflowed: some exits are gone */
				continue;
			}
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return k ? k : -errno;
		}
		if (fl < sizeof from || from.nl_family != AF_NETLINK || from.nl_pid != 0) {
			t->forged++;
			continue;
		}
		size_t left = (size_t)n;
		for (struct nlmsghdr *nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, left) && k < max;
		     nh = NLMSG_NEXT(nh, left))
			k += parse_exit(nh, t->family, &ev[k]);
	}
	return k;
}
