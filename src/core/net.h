/* net: sockets for servers and load generators. IPv4 and IPv6, TCP.
 * Return values: an fd or 0 on success, -errno on failure (never sets a global error string).
 * `hostport` is "HOST:PORT", "[V6]:PORT", ":PORT" or "PORT" (host defaults to 127.0.0.1);
 * HOST may be a numeric address or "localhost" (no DNS lookups beyond getaddrinfo's files).
 */
#ifndef CTXLAB_CORE_NET_H
#define CTXLAB_CORE_NET_H

#include <stddef.h>
#include <sys/socket.h>

#define NET_NONBLOCK 1
#define NET_REUSEPORT 2 /* SO_REUSEPORT on a listener */
#define NET_NODELAY 4   /* TCP_NODELAY on a connection */

struct net_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/* Parses hostport into addr. 0, or -1 with err naming the text and an example ("127.0.0.1:7000"). */
int net_parse(const char *hostport, struct net_addr *addr, char *err, size_t errlen);
/* "127.0.0.1:7000" / "[::1]:7000" */
char *net_format(const struct net_addr *addr, char *buf, size_t len);
int net_port(const struct net_addr *addr);

/* socket + SO_REUSEADDR (+ SO_REUSEPORT) + bind + listen. Port 0 binds an ephemeral port:
 * the bound address is written back into *bound when non-NULL. fd or -errno. */
int net_listen(const struct net_addr *addr, int backlog, int flags, struct net_addr *bound);
/* accept4 with SOCK_CLOEXEC (| SOCK_NONBLOCK with NET_NONBLOCK). fd or -errno. */
int net_accept(int lfd, int flags, struct net_addr *peer);
/* socket + optional bind to src (port 0) + connect. With NET_NONBLOCK a connect in progress
 * returns the fd (check completion with net_connect_result when writable). fd or -errno. */
int net_connect(const struct net_addr *dst, const struct net_addr *src, int flags);
int net_connect_result(int fd); /* 0, or -errno from SO_ERROR */

int net_set_nonblock(int fd, int on);
int net_set_nodelay(int fd, int on);
int net_set_bufsize(int fd, int sndbuf, int rcvbuf); /* 0 leaves one unchanged */
int net_local_addr(int fd, struct net_addr *addr);

#endif
