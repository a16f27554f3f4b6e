/* net: TCP sockets over IPv4/IPv6 for servers and load generators. */
#include "core/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define NET_EXAMPLE "e.g. 127.0.0.1:7000, [::1]:7000 or 7000"

static int parse_port(const char *s, size_t n, int *port)
{
	if (n == 0 || n > 5)
		return -1;
	long v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*port = (int)v;
	return 0;
}

static void set_v4(struct net_addr *addr, const struct in_addr *ip, int port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&addr->ss;
	memset(addr, 0, sizeof(*addr));
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	sin->sin_addr = *ip;
	addr->len = sizeof(*sin);
}

/* A numeric IPv6 address, with an optional %scope (getaddrinfo with AI_NUMERICHOST: no DNS). */
static int set_v6(struct net_addr *addr, const char *host, int port)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&addr->ss;
	memset(addr, 0, sizeof(*addr));
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		addr->len = sizeof(*sin6);
		return 0;
	}
	if (!strchr(host, '%'))
		return -1;
	struct addrinfo hints = {.ai_family = AF_INET6, .ai_flags = AI_NUMERICHOST}, *res = NULL;
	if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
		return -1;
	memcpy(sin6, res->ai_addr, sizeof(*sin6));
	freeaddrinfo(res);
	sin6->sin6_port = htons((uint16_t)port);
	addr->len = sizeof(*sin6);
	return 0;
}

int net_parse(const char *hostport, struct net_addr *addr, char *err, size_t errlen)
{
	char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
	const char *port_s;
	int port;

	if (!hostport || !*hostport)
		return errbuf(err, errlen, "empty address (expected HOST:PORT, " NET_EXAMPLE ")");
	const char *colon = strrchr(hostport, ':');
	if (hostport[0] == '[') {
		const char *close = strchr(hostport, ']');
		if (!close || close[1] != ':')
			return errbuf(err, errlen, "invalid address '%s' (expected [IPV6]:PORT, e.g. [::1]:7000)",
				      hostport);
		size_t n = (size_t)(close - hostport - 1);
		if (n == 0 || n >= sizeof(host))
			return errbuf(err, errlen, "invalid IPv6 address in '%s' (e.g. [::1]:7000)", hostport);
		memcpy(host, hostport + 1, n);
		host[n] = 0;
		port_s = close + 2;
		if (parse_port(port_s, strlen(port_s), &port) < 0)
			return errbuf(err, errlen, "invalid port in '%s' (a number 0-65535, e.g. [::1]:7000)",
				      hostport);
		if (set_v6(addr, host, port) < 0)
			return errbuf(err, errlen, "invalid IPv6 address in '%s' (e.g. [::1]:7000)", hostport);
		return 0;
	}
	if (!colon) {
		if (parse_port(hostport, strlen(hostport), &port) < 0)
			return errbuf(err, errlen, "invalid address '%s' (expected HOST:PORT, " NET_EXAMPLE ")",
				      hostport);
		host[0] = 0;
	} else {
		if (strchr(hostport, ':') != colon)
			return errbuf(err, errlen,
				      "invalid address '%s' (put IPv6 addresses in brackets, e.g. [::1]:7000)",
				      hostport);
		size_t n = (size_t)(colon - hostport);
		if (n >= sizeof(host))
			return errbuf(err, errlen, "invalid host in '%s' (a numeric address or localhost, "
				      NET_EXAMPLE ")", hostport);
		memcpy(host, hostport, n);
		host[n] = 0;
		port_s = colon + 1;
		if (parse_port(port_s, strlen(port_s), &port) < 0)
			return errbuf(err, errlen, "invalid port in '%s' (a number 0-65535, " NET_EXAMPLE ")",
				      hostport);
	}
	struct in_addr ip;
	if (!host[0] || !strcmp(host, "localhost")) {
		ip.s_addr = htonl(INADDR_LOOPBACK);
	} else if (inet_pton(AF_INET, host, &ip) != 1) {
		return errbuf(err, errlen, "invalid host '%s' in '%s' (a numeric address or localhost, "
			      NET_EXAMPLE ")", host, hostport);
	}
	set_v4(addr, &ip, port);
	return 0;
}

char *net_format(const struct net_addr *addr, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];
	if (!len)
		return buf;
	if (addr->ss.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&addr->ss;
		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%d", ip, ntohs(sin->sin_port));
	} else if (addr->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&addr->ss;
		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%d", ip, ntohs(sin6->sin6_port));
	} else {
		snprintf(buf, len, "(family %d)", addr->ss.ss_family);
	}
	return buf;
}

int net_port(const struct net_addr *addr)
{
	if (addr->ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&addr->ss)->sin_port);
	if (addr->ss.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&addr->ss)->sin6_port);
	return -1;
}

static int set_int(int fd, int level, int opt, int v)
{
	return setsockopt(fd, level, opt, &v, sizeof(v)) < 0 ? -errno : 0;
}

static int new_socket(int family, int flags)
{
	int type = SOCK_STREAM | SOCK_CLOEXEC | ((flags & NET_NONBLOCK) ? SOCK_NONBLOCK : 0);
	int fd = socket(family, type, 0);
	return fd < 0 ? -errno : fd;
}

static int fail(int fd, int r)
{
	close(fd);
	return r;
}

int net_listen(const struct net_addr *addr, int backlog, int flags, struct net_addr *bound)
{
	int fd = new_socket(addr->ss.ss_family, flags);
	if (fd < 0)
		return fd;
	int r = set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
	if (!r && (flags & NET_REUSEPORT))
		r = set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
	if (r < 0)
		return fail(fd, r);
	if (bind(fd, (const struct sockaddr *)&addr->ss, addr->len) < 0)
		return fail(fd, -errno);
	if (listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0)
		return fail(fd, -errno);
	if (bound && (r = net_local_addr(fd, bound)) < 0)
		return fail(fd, r);
	return fd;
}

int net_accept(int lfd, int flags, struct net_addr *peer)
{
	struct net_addr tmp;
	struct net_addr *p = peer ? peer : &tmp;
	p->len = sizeof(p->ss);
	int fd = accept4(lfd, (struct sockaddr *)&p->ss, &p->len,
			 SOCK_CLOEXEC | ((flags & NET_NONBLOCK) ? SOCK_NONBLOCK : 0));
	if (fd < 0)
		return -errno;
	if ((flags & NET_NODELAY) && net_set_nodelay(fd, 1) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/* A blocking connect interrupted by a signal goes on in the background: wait for it. */
static int connect_wait(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	for (;;) {
		int n = poll(&p, 1, -1);
		if (n > 0)
			return net_connect_result(fd);
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

int net_connect(const struct net_addr *dst, const struct net_addr *src, int flags)
{
	if (src && src->ss.ss_family != dst->ss.ss_family)
		return -EAFNOSUPPORT;
	int fd = new_socket(dst->ss.ss_family, flags);
	if (fd < 0)
		return fd;
	int r;
	if ((flags & NET_NODELAY) && (r = net_set_nodelay(fd, 1)) < 0)
		return fail(fd, r);
	if (src) {
		/* Port 0: let connect() pick the port, so many sources share the ephemeral range
		 * per destination instead of reserving a port per socket at bind time. */
		if (net_port(src) == 0)
			set_int(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1);
		if (bind(fd, (const struct sockaddr *)&src->ss, src->len) < 0)
			return fail(fd, -errno);
	}
	if (connect(fd, (const struct sockaddr *)&dst->ss, dst->len) < 0) {
		r = -errno;
		if (r == -EINPROGRESS && (flags & NET_NONBLOCK))
			return fd;
		if (r == -EINTR && !(flags & NET_NONBLOCK))
			r = connect_wait(fd);
		if (r < 0)
			return fail(fd, r);
	}
	return fd;
}

int net_connect_result(int fd)
{
	int e = 0;
	socklen_t len = sizeof(e);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
		return -errno;
	return -e;
}

int net_set_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
	return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

int net_set_nodelay(int fd, int on) { return set_int(fd, IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0); }

int net_set_bufsize(int fd, int sndbuf, int rcvbuf)
{
	int r = 0;
	if (sndbuf > 0)
		r = set_int(fd, SOL_SOCKET, SO_SNDBUF, sndbuf);
	if (!r && rcvbuf > 0)
		r = set_int(fd, SOL_SOCKET, SO_RCVBUF, rcvbuf);
	return r;
}

int net_local_addr(int fd, struct net_addr *addr)
{
	addr->len = sizeof(addr->ss);
	return getsockname(fd, (struct sockaddr *)&addr->ss, &addr->len) < 0 ? -errno : 0;
}
