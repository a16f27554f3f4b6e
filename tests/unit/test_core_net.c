/* net: parsing and formatting; real connections over loopback (v4, v6, source address,
 * SO_REUSEPORT, refused connects, nonblocking connect). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/net.h"

static void parse_ok(const char *in, const char *want)
{
	struct net_addr a;
	char err[256] = "", buf[64];
	int r = net_parse(in, &a, err, sizeof(err));
	if (r != 0)
		fail_msg("'%s': %s", in, err);
	assert_string_equal(net_format(&a, buf, sizeof(buf)), want);
}

static void parse_bad(const char *in, const char *want_in_err)
{
	struct net_addr a;
	char err[256] = "";
	assert_int_equal(net_parse(in, &a, err, sizeof(err)), -1);
	if (!strstr(err, want_in_err))
		fail_msg("'%s': error '%s' lacks '%s'", in, err, want_in_err);
	/* every message names an example to follow */
	assert_non_null(strstr(err, "e.g."));
}

static void test_parse(void **state)
{
	parse_ok("127.0.0.1:7000", "127.0.0.1:7000");
	parse_ok("10.1.2.3:0", "10.1.2.3:0");
	parse_ok("7000", "127.0.0.1:7000");
	parse_ok(":65535", "127.0.0.1:65535");
	parse_ok("localhost:80", "127.0.0.1:80");
	parse_ok("[::1]:7000", "[::1]:7000");
	parse_ok("[::]:1", "[::]:1");
	parse_ok("[2001:db8::5]:443", "[2001:db8::5]:443");

	struct net_addr a;
	assert_int_equal(net_parse("[::1]:9", &a, NULL, 0), 0);
	assert_int_equal(a.ss.ss_family, AF_INET6);
	assert_int_equal(a.len, sizeof(struct sockaddr_in6));
	assert_int_equal(net_port(&a), 9);
	assert_int_equal(net_parse("1.2.3.4:5", &a, NULL, 0), 0);
	assert_int_equal(a.ss.ss_family, AF_INET);
	assert_int_equal(a.len, sizeof(struct sockaddr_in));
	assert_int_equal(net_port(&a), 5);

	parse_bad("", "empty address");
	parse_bad("127.0.0.1:65536", "invalid port in '127.0.0.1:65536'");
	parse_bad("127.0.0.1:", "invalid port in '127.0.0.1:'");
	parse_bad("127.0.0.1:7x", "invalid port");
	parse_bad("127.0.0.1:-1", "invalid port");
	parse_bad("abc", "invalid address 'abc'");
	parse_bad("999.1.1.1:80", "invalid host '999.1.1.1'");
	parse_bad("127.1:80", "invalid host '127.1'");
	parse_bad("example.com:80", "invalid host 'example.com'");
	parse_bad("::1:80", "brackets");
	parse_bad("[::1]", "invalid address '[::1]'");
	parse_bad("[::1]:", "invalid port");
	parse_bad("[zz::1]:80", "invalid IPv6 address");
	parse_bad("[]:80", "invalid IPv6 address");

	/* truncation never overflows */
	char small[8];
	assert_int_equal(net_parse("[::1]:7000", &a, NULL, 0), 0);
	net_format(&a, small, sizeof(small));
	assert_int_equal(strlen(small), 7);
}

/* Listens on addr port 0, connects, sends bytes both ways, checks the peer addresses. */
static void roundtrip(const char *listen_at, const struct net_addr *src, const char *want_peer_ip)
{
	struct net_addr la, bound, peer, local;
	char buf[64];
	assert_int_equal(net_parse(listen_at, &la, NULL, 0), 0);
	int lfd = net_listen(&la, 16, 0, &bound);
	assert_true(lfd >= 0);
	assert_true(net_port(&bound) > 0);
	int cfd = net_connect(&bound, src, NET_NODELAY);
	assert_true(cfd >= 0);
	int afd = net_accept(lfd, NET_NONBLOCK, &peer);
	assert_true(afd >= 0);
	assert_int_equal(write(cfd, "ping", 4), 4);
	struct pollfd p = {.fd = afd, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 5000), 1);
	assert_int_equal(read(afd, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "ping", 4);
	assert_int_equal(write(afd, "pong!", 5), 5);
	assert_int_equal(read(cfd, buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "pong!", 5);

	/* the accepted socket's peer is the client's local address */
	assert_int_equal(net_local_addr(cfd, &local), 0);
	char a1[64], a2[64];
	assert_string_equal(net_format(&peer, a1, sizeof(a1)), net_format(&local, a2, sizeof(a2)));
	/* and getpeername agrees */
	struct net_addr gp = {.len = sizeof(gp.ss)};
	assert_int_equal(getpeername(afd, (struct sockaddr *)&gp.ss, &gp.len), 0);
	assert_string_equal(net_format(&gp, a2, sizeof(a2)), a1);
	/* want_peer_ip is "127.0.0.2" or "[::1]": the formatted peer starts with it then ':' */
	size_t wl = strlen(want_peer_ip);
	if (strncmp(a1, want_peer_ip, wl) || a1[wl] != ':')
		fail_msg("peer '%s' is not '%s'", a1, want_peer_ip);
	/* accept honoured CLOEXEC and NONBLOCK */
	assert_true(fcntl(afd, F_GETFD) & FD_CLOEXEC);
	assert_true(fcntl(afd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(cfd, F_GETFD) & FD_CLOEXEC);
	assert_false(fcntl(cfd, F_GETFL) & O_NONBLOCK);
	int nd = 0;
	socklen_t ndl = sizeof(nd);
	assert_int_equal(getsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &nd, &ndl), 0);
	assert_true(nd);
	close(afd);
	close(cfd);
	close(lfd);
}

static void test_v4(void **state)
{
	roundtrip("127.0.0.1:0", NULL, "127.0.0.1");
}

static int have_v6(void)
{
	struct net_addr a;
	net_parse("[::1]:0", &a, NULL, 0);
	int fd = net_listen(&a, 1, 0, NULL);
	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

static void test_v6(void **state)
{
	if (!have_v6()) {
		printf("# skip: cannot listen on [::1] (no IPv6 loopback)\n");
		skip();
	}
	roundtrip("[::1]:0", NULL, "[::1]");
}

static void test_source_address(void **state)
{
	struct net_addr src;
	assert_int_equal(net_parse("127.0.0.2:0", &src, NULL, 0), 0);
	roundtrip("127.0.0.1:0", &src, "127.0.0.2");
	/* a source of the wrong family is refused before any syscall */
	struct net_addr dst;
	assert_int_equal(net_parse("[::1]:1", &dst, NULL, 0), 0);
	assert_int_equal(net_connect(&dst, &src, 0), -EAFNOSUPPORT);
}

static void test_reuseport(void **state)
{
	struct net_addr a, b1, b2;
	assert_int_equal(net_parse("127.0.0.1:0", &a, NULL, 0), 0);
	int l1 = net_listen(&a, 16, NET_REUSEPORT, &b1);
	assert_true(l1 >= 0);
	int l2 = net_listen(&b1, 16, NET_REUSEPORT, &b2);
	assert_true(l2 >= 0);
	assert_int_equal(net_port(&b1), net_port(&b2));
	/* without SO_REUSEPORT the same port is taken */
	int l3 = net_listen(&b1, 16, 0, NULL);
	assert_int_equal(l3, -EADDRINUSE);
	/* connections land on both listeners (the kernel hashes the 4-tuple): 32 tries */
	int got[2] = {0, 0};
	for (int i = 0; i < 32 && !(got[0] && got[1]); i++) {
		int c = net_connect(&b1, NULL, 0);
		assert_true(c >= 0);
		struct pollfd p[2] = {{.fd = l1, .events = POLLIN}, {.fd = l2, .events = POLLIN}};
		assert_true(poll(p, 2, 5000) >= 1);
		for (int k = 0; k < 2; k++) {
			if (p[k].revents & POLLIN) {
				int s = net_accept(p[k].fd, 0, NULL);
				assert_true(s >= 0);
				close(s);
				got[k]++;
			}
		}
		close(c);
	}
	assert_true(got[0] > 0 && got[1] > 0);
	close(l1);
	close(l2);
}

static void test_refused_and_nonblock(void **state)
{
	struct net_addr a, bound;
	assert_int_equal(net_parse("127.0.0.1:0", &a, NULL, 0), 0);
	/* find a free port: bind one, close it */
	int l = net_listen(&a, 1, 0, &bound);
	assert_true(l >= 0);
	close(l);
	assert_int_equal(net_connect(&bound, NULL, 0), -ECONNREFUSED);

	/* nonblocking connect to a closed port: in progress or refused at once; SO_ERROR says so */
	int fd = net_connect(&bound, NULL, NET_NONBLOCK);
	if (fd >= 0) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		assert_int_equal(poll(&p, 1, 5000), 1);
		assert_int_equal(net_connect_result(fd), -ECONNREFUSED);
		close(fd);
	} else {
		assert_int_equal(fd, -ECONNREFUSED);
	}

	/* nonblocking connect to a listener completes with SO_ERROR 0 */
	l = net_listen(&a, 4, 0, &bound);
	assert_true(l >= 0);
	fd = net_connect(&bound, NULL, NET_NONBLOCK);
	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	assert_int_equal(poll(&p, 1, 5000), 1);
	assert_int_equal(net_connect_result(fd), 0);
	assert_int_equal(net_set_nonblock(fd, 0), 0);
	assert_false(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_int_equal(net_set_nodelay(fd, 1), 0);

	/* buffer sizes: the kernel doubles what it is given */
	assert_int_equal(net_set_bufsize(fd, 65536, 0), 0);
	int v = 0;
	socklen_t vl = sizeof(v);
	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, &vl), 0);
	assert_int_equal(v, 2 * 65536);
	assert_int_equal(net_set_bufsize(fd, 0, 32768), 0);
	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &vl), 0);
	assert_int_equal(v, 2 * 32768);
	assert_int_equal(net_set_bufsize(-1, 1, 1), -EBADF);
	close(fd);
	close(l);
}

static void test_listen_errors(void **state)
{
	struct net_addr a;
	/* an address this host does not have */
	assert_int_equal(net_parse("192.0.2.1:0", &a, NULL, 0), 0);
	assert_int_equal(net_listen(&a, 1, 0, NULL), -EADDRNOTAVAIL);
	assert_int_equal(net_accept(-1, 0, NULL), -EBADF);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_v4),
		cmocka_unit_test(test_v6),
		cmocka_unit_test(test_source_address),
		cmocka_unit_test(test_reuseport),
		cmocka_unit_test(test_refused_and_nonblock),
		cmocka_unit_test(test_listen_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
