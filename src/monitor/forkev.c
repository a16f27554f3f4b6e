/* forkev: fork events from the process connector. See forkev.h. */
#include "monitor/forkev.h"

#include <errno.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"

/* struct proc_input of Linux >= 6.6 (not in older uapi headers): the op and an event filter */
struct fe_input {
	uint32_t mcast_op;
	uint32_t event_type;
};

static int fe_send(struct forkev *f, uint32_t op)
{
	struct {
		struct nlmsghdr n;
		struct cn_msg c;
		struct fe_input in;
	} __attribute__((packed, aligned(8))) m;
	memset(&m, 0, sizeof m);
	m.n.nlmsg_len = sizeof m;
	m.n.nlmsg_type = NLMSG_DONE;
	m.n.nlmsg_pid = 0;
	m.c.id.idx = CN_IDX_PROC;
	m.c.id.val = CN_VAL_PROC;
	m.c.len = sizeof m.in;
	m.in.mcast_op = op;
	m.in.event_type = PROC_EVENT_FORK;
	struct sockaddr_nl to = {.nl_family = AF_NETLINK};
	if (sendto(f->fd, &m, sizeof m, 0, (struct sockaddr *)&to, sizeof to) < 0)
		return -errno;
	return 0;
}

static void *fe_probe_thread(void *arg) { return arg; }

int forkev_read(struct forkev *f, pid_t *parents, int max)
{
	enum { VL = 32, AN = 256 };
	char in[VL][AN] __attribute__((aligned(8)));
	struct sockaddr_nl from[VL];
	struct iovec iov[VL];
	struct mmsghdr mm[VL];
	int k = 0, lost = 0;
	while (k < max) {
		for (int i = 0; i < VL; i++) {
			iov[i] = (struct iovec){in[i], AN};
			memset(&mm[i], 0, sizeof mm[i]);
			mm[i].msg_hdr.msg_name = &from[i];
			mm[i].msg_hdr.msg_namelen = sizeof from[i];
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
		}
		int got = recvmmsg(f->fd, mm, VL, MSG_DONTWAIT, NULL);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) {
				f->lost++;
				lost = 1;
				continue;
			}
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return -errno;
		}
		for (int i = 0; i < got; i++) {
			if (mm[i].msg_hdr.msg_namelen < sizeof from[i] || from[i].nl_pid != 0) {
				f->forged++;
				continue;
			}
			struct nlmsghdr *nh = (struct nlmsghdr *)in[i];
			size_t len = mm[i].msg_len;
			if (len < NLMSG_LENGTH(sizeof(struct cn_msg) + sizeof(struct proc_event)) ||
			    !NLMSG_OK(nh, len))
				continue;
			struct cn_msg *c = NLMSG_DATA(nh);
			if (c->id.idx != CN_IDX_PROC || c->id.val != CN_VAL_PROC)
				continue;
			struct proc_event ev;
			memcpy(&ev, c->data, sizeof ev);
			if (ev.what != PROC_EVENT_FORK ||
			    ev.event_data.fork.child_pid != ev.event_data.fork.child_tgid)
				continue; /* a new thread: not in any children list */
			if (k < max)
				parents[k++] = ev.event_data.fork.parent_tgid;
		}
		if (got < VL)
			break;
	}
	return lost ? -ENOBUFS : k;
}

int forkev_open(struct forkev *f)
{
	memset(f, 0, sizeof *f);
	f->fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_CONNECTOR);
	if (f->fd < 0) {
		int e = errno;
		snprintf(f->why, sizeof f->why, "no connector socket: %s", strerror(e));
		return -e;
	}
	struct sockaddr_nl me = {.nl_family = AF_NETLINK, .nl_groups = CN_IDX_PROC};
	if (bind(f->fd, (struct sockaddr *)&me, sizeof me) < 0) {
		int e = errno;
		snprintf(f->why, sizeof f->why, "cannot bind the process connector: %s", strerror(e));
		forkev_close(f);
		return -e;
	}
	int sz = 4 << 20;
	if (setsockopt(f->fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz))
		setsockopt(f->fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
	int r = fe_send(f, PROC_CN_MCAST_LISTEN);
	if (r) {
		snprintf(f->why, sizeof f->why, "cannot listen to fork events: %s", strerror(-r));
		forkev_close(f);
		return r;
	}
	/* the probe: a thread of ours must show as a fork event (thread events are read here,
	 * not by forkev_read) */
	pthread_t th;
	if (pthread_create(&th, NULL, fe_probe_thread, NULL) == 0)
		pthread_join(th, NULL);
	uint64_t until = clock_now_ns() + 500 * NS_PER_MS;
	for (;;) {
		char buf[512] __attribute__((aligned(8)));
		struct sockaddr_nl from;
		socklen_t fl = sizeof from;
		ssize_t n = recvfrom(f->fd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from,
				     &fl);
		if (n < 0 && errno == EAGAIN) {
			uint64_t now = clock_now_ns();
			if (now >= until)
				break;
			struct pollfd p = {.fd = f->fd, .events = POLLIN};
			poll(&p, 1, (int)((until - now) / NS_PER_MS) + 1);
			continue;
		}
		if (n < 0 && errno != EINTR && errno != ENOBUFS)
			break;
		if (n < (ssize_t)NLMSG_LENGTH(sizeof(struct cn_msg) + sizeof(struct proc_event)) ||
		    from.nl_pid != 0)
			continue;
		struct cn_msg *c = NLMSG_DATA((struct nlmsghdr *)buf);
		struct proc_event ev;
		memcpy(&ev, c->data, sizeof ev);
		if (ev.what == PROC_EVENT_FORK && ev.event_data.fork.child_tgid == getpid() &&
		    ev.event_data.fork.child_pid != getpid())
			return 0;
	}
	snprintf(f->why, sizeof f->why, "no fork events arrive (the connector's event filter needs "
		 "Linux >= 6.6, and root in the initial namespaces)");
	forkev_close(f);
	return -ENOTSUP;
}

void forkev_close(struct forkev *f)
{
	if (f->fd >= 0) {
		fe_send(f, PROC_CN_MCAST_IGNORE);
		close(f->fd);
	}
	f->fd = -1;
}
