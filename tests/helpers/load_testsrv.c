/* load_testsrv: a deliberately misbehaving server for ctxlab load's tests.
 *
 *   load_testsrv MODE [options]      MODE: http | echo | chat
 *   --port P            listen on 127.0.0.1:P (default 0: any); prints "listening on HOST:PORT"
 *   http options (every K-th request counts requests over the whole server, from 1):
 *   --status N          answer with status N (default 200)
 *   --chunked           chunked bodies, split over several writes
 *   --stall-ms M        stall the whole server once for M ms ...
 *   --stall-after-ms T  ... T ms after the first request (default 1000)
 *   --close-every K     every K-th request: half a response, then close
 *   --reset-every K     every K-th request: no answer, close with RST
 *   --garbage-every K   every K-th request: a malformed response
 *   --silent-every K    every K-th request: never answered (the connection stays open)
 *   --conn-close        answer with Connection: close and close
 *   --die-after-ms T    exit T ms after the first request
 * Single-threaded, epoll, blocking writes: small and predictable, not fast.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXC 65536

/* Per-fd state, small on purpose: the table is indexed by fd (MAXC entries), so anything
 * large (the chat line buffer) is allocated per connection, and chat fans out over a member
 * list, never over the table. The cost of a chat line must not depend on MAXC or on how the
 * kernel backs a large table (transparent huge pages). */
#define LINE_MAX_BYTES 8192
struct cl {
	int used, match, joined, silent;
	int member_ix; /* index in members[] while joined */
	unsigned id;
	char *line;
	size_t llen;
};

static struct cl *cls;
static int *members, nmembers;
static int ep;
static const char *mode;
static int status = 200, chunked, conn_close;
static long stall_ms, stall_after_ms = 1000, close_every, reset_every, garbage_every,
	    silent_every, die_after_ms;
static unsigned long long nreq;
static double first_req;
static int stalled;
static unsigned next_id = 1;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void wr(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				usleep(100);
				continue;
			}
			return;
		}
		s += w;
		n -= (size_t)w;
	}
}

static void drop(int fd, int rst)
{
	if (rst) {
		struct linger lg = {1, 0};
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
	if (cls[fd].joined) { /* swap-remove from the member list */
		int ix = cls[fd].member_ix, last = members[--nmembers];
		members[ix] = last;
		cls[last].member_ix = ix;
	}
	free(cls[fd].line);
	memset(&cls[fd], 0, sizeof(cls[fd]));
}

static int every(long k) { return k > 0 && nreq % (unsigned long long)k == 0; }

/* Returns -1 when fd was closed. */
static int http_request(int fd)
{
	nreq++;
	if (nreq == 1)
		first_req = now_ms();
	if (stall_ms && !stalled && now_ms() - first_req >= stall_after_ms) {
		stalled = 1;
		usleep((useconds_t)stall_ms * 1000);
	}
	if (die_after_ms && now_ms() - first_req >= die_after_ms)
		exit(0);
	char resp[512];
	const char *reason = status == 200 ? "OK" : "Status";
	if (every(reset_every)) {
		drop(fd, 1);
		return -1;
	}
	if (every(silent_every)) {
		cls[fd].silent = 1;
		return 0;
	}
	if (every(garbage_every)) {
		wr(fd, "HTTX/9 nonsense\r\n\r\n", 19);
		return 0;
	}
	int n;
	if (chunked)
		n = snprintf(resp, sizeof(resp),
			     "HTTP/1.1 %d %s\r\nTransfer-Encoding: chunked\r\n%s\r\n"
			     "5;ext=1\r\nhello\r\n8\r\n, world\n\r\n0\r\nX-Trailer: 1\r\n\r\n",
			     status, reason, conn_close ? "Connection: close\r\n" : "");
	else
		n = snprintf(resp, sizeof(resp),
			     "HTTP/1.1 %d %s\r\nContent-Length: 13\r\n%s\r\nhello, world\n", status,
			     reason, conn_close ? "Connection: close\r\n" : "");
	if (every(close_every)) {
		wr(fd, resp, (size_t)n / 2);
		drop(fd, 0);
		return -1;
	}
	if (chunked) {
		/* split the response across writes so the client parses across reads */
		size_t half = (size_t)n / 2;
		wr(fd, resp, half);
		wr(fd, resp + half, (size_t)n - half);
	} else {
		wr(fd, resp, (size_t)n);
	}
	if (conn_close) {
		shutdown(fd, SHUT_WR);
		drop(fd, 0);
		return -1;
	}
	return 0;
}

static void chat_line(int fd, const char *s, size_t n)
{
	struct cl *c = &cls[fd];
	if (!c->joined) {
		if (n >= 6 && !memcmp(s, "/join ", 6)) {
			c->joined = 1;
			c->member_ix = nmembers;
			members[nmembers++] = fd;
		}
		return;
	}
	char out[8300];
	int k = snprintf(out, sizeof(out), "%u: %.*s\n", c->id, (int)n, s);
	if (k < 0 || (size_t)k >= sizeof(out))
		return;
	for (int i = 0; i < nmembers; i++)
		if (members[i] != fd)
			wr(members[i], out, (size_t)k);
}

static void on_data(int fd, const char *b, size_t n)
{
	struct cl *c = &cls[fd];
	if (!strcmp(mode, "echo")) {
		wr(fd, b, n);
		return;
	}
	if (!strcmp(mode, "chat")) {
		for (size_t i = 0; i < n; i++) {
			if (b[i] == '\n') {
				chat_line(fd, c->line, c->llen);
				c->llen = 0;
			} else if (c->llen < LINE_MAX_BYTES) {
				c->line[c->llen++] = b[i];
			}
		}
		return;
	}
	/* http: a request ends at CRLF CRLF (no request bodies here) */
	static const char end[] = "\r\n\r\n";
	for (size_t i = 0; i < n; i++) {
		if (b[i] == end[c->match])
			c->match++;
		else
			c->match = b[i] == '\r';
		if (c->match == 4) {
			c->match = 0;
			if (c->silent)
				continue;
			if (http_request(fd) < 0)
				return;
		}
	}
}

int main(int argc, char **argv)
{
	int port = 0;
	if (argc < 2) {
		fprintf(stderr, "usage: load_testsrv http|echo|chat [options]\n");
		return 2;
	}
	mode = argv[1];
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : "0";
		if (!strcmp(a, "--chunked"))
			chunked = 1;
		else if (!strcmp(a, "--conn-close"))
			conn_close = 1;
		else {
			long x = atol(v);
			i++;
			if (!strcmp(a, "--port"))
				port = (int)x;
			else if (!strcmp(a, "--status"))
				status = (int)x;
			else if (!strcmp(a, "--stall-ms"))
				stall_ms = x;
			else if (!strcmp(a, "--stall-after-ms"))
				stall_after_ms = x;
			else if (!strcmp(a, "--close-every"))
				close_every = x;
			else if (!strcmp(a, "--reset-every"))
				reset_every = x;
			else if (!strcmp(a, "--garbage-every"))
				garbage_every = x;
			else if (!strcmp(a, "--silent-every"))
				silent_every = x;
			else if (!strcmp(a, "--die-after-ms"))
				die_after_ms = x;
			else {
				fprintf(stderr, "load_testsrv: unknown option '%s'\n", a);
				return 2;
			}
		}
	}
	cls = calloc(MAXC, sizeof(*cls));
	members = calloc(MAXC, sizeof(*members));
	if (!cls || !members) {
		perror("load_testsrv: calloc");
		return 1;
	}
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4096) < 0) {
		perror("load_testsrv: bind/listen");
		return 1;
	}
	socklen_t sl = sizeof(sa);
	getsockname(lfd, (struct sockaddr *)&sa, &sl);
	printf("listening on 127.0.0.1:%d mode=%s pid=%d\n", ntohs(sa.sin_port), mode, (int)getpid());
	fflush(stdout);
	ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	static char b[65536];
	for (;;) {
		struct epoll_event evs[64];
		int n = epoll_wait(ep, evs, 64, 100);
		if (die_after_ms && nreq && now_ms() - first_req >= die_after_ms)
			return 0;
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == lfd) {
				int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
				if (c < 0)
					continue;
				if (c >= MAXC) {
					close(c);
					continue;
				}
				setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
				memset(&cls[c], 0, sizeof(cls[c]));
				cls[c].line = malloc(LINE_MAX_BYTES);
				if (!cls[c].line) {
					close(c);
					continue;
				}
				cls[c].used = 1;
				cls[c].id = next_id++;
				struct epoll_event e2 = {.events = EPOLLIN, .data.fd = c};
				epoll_ctl(ep, EPOLL_CTL_ADD, c, &e2);
				continue;
			}
			ssize_t r = recv(fd, b, sizeof(b), MSG_DONTWAIT);
			if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
				drop(fd, 0);
				continue;
			}
			if (r > 0)
				on_data(fd, b, (size_t)r);
		}
	}
}
