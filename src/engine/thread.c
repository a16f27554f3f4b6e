/* thread: a thread per connection, blocking I/O.
 *
 * The main thread accepts (poll on the listener and the stop fd) and starts a detached thread
 * per connection; --max-conns bounds how many run at once (connections beyond it are accepted
 * and closed). A connection thread reads (blocking), feeds the protocol until it needs more
 * input, and writes the whole output (blocking). Timeouts use SO_RCVTIMEO as a tick, checked
 * after every read. On stop the main thread shuts down the read side of every connection, so
 * blocked reads return and threads finish their in-flight output; it waits for them at most
 * ENGINE_STOP_GRACE_NS.
 *
 * Chat (a protocol with p->fanout set: it publishes) needs a wake-up when another connection
 * delivers: its
 * connections poll the socket and a per-connection eventfd instead of blocking in read, and
 * their output buffer is guarded by a mutex. A delivery appends and writes the eventfd; the
 * owning thread writes. Publishes are ordered by the room lock.
 * EMFILE on accept: the accept loop waits 100 ms (on the stop fd) and retries.
 * A connection whose thread cannot be started (pthread_create fails: EAGAIN at the process's
 * or the user's thread limit, ENOMEM) is closed, a warning is printed once per run of such
 * failures, and the accept loop pauses the same 100 ms before the next accept rather than
 * spin through the backlog; the next thread that starts ends the run.
 * Test seam: CTXLAB_THREAD_FAIL_CREATE=N makes the first N thread starts fail with EAGAIN.
 */
#include "engine/engine.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "engine/econn.h"
#include "engine/room.h"

#ifdef CTXLAB_SANITIZED
#define THREAD_STACK_BYTES (1024 * 1024)
#else
#define THREAD_STACK_BYTES (256 * 1024)
#endif

struct tsrv;

struct tconn {
	int fd;
	int wake_fd;        /* chat only */
	int dead;           /* overflowed: no more deliveries (lock) */
	struct tsrv *s;
	LIST_ENTRY(tconn) link;    /* active list (s->mu) */
	pthread_mutex_t lock;      /* out, dead (chat) */
	struct econn e;            /* input, timeouts, closing */
	struct buf out;
	struct room_member member;
	struct proto_env env;
	_Alignas(16) unsigned char state[];
};

struct tsrv {
	struct econn_cfg ec;       /* ec.sweep_ns: the SO_RCVTIMEO tick, 0 = no timeouts */
	int pubsub;
	struct room_set *rooms;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	LIST_HEAD(, tconn) active;
	int nactive;
	int stopping;
	uint64_t next_id;
	long fail_create;          /* CTXLAB_THREAD_FAIL_CREATE: thread starts left to fail */
};

static void tconn_deliver(struct room_member *m, const char *msg, size_t len)
{
	struct tconn *t = (struct tconn *)((char *)m - offsetof(struct tconn, member));
	pthread_mutex_lock(&t->lock);
	if (!t->dead && econn_deliver(&t->s->ec, t->state, &t->out, 0, msg, len) < 0)
		t->dead = 1;
	pthread_mutex_unlock(&t->lock);
	uint64_t one = 1;
	ssize_t r = write(t->wake_fd, &one, sizeof(one));
	(void)r;
}

static int write_all(int fd, struct buf *b)
{
	while (buf_used(b)) {
		ssize_t n = send(fd, buf_head(b), buf_used(b), MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN && !engine_stop_requested())
				continue; /* SO_SNDTIMEO tick */
			return -1;
		}
		buf_consume(b, (size_t)n);
	}
	return 0;
}

/* Blocking loop for protocols that never publish. */
static void serve_blocking(struct tconn *c)
{
	const struct econn_cfg *ec = &c->s->ec;
	c->e.last_ns = clock_now_ns();
	for (;;) {
		const char *data;
		ssize_t n = econn_read(&c->e, c->fd, NULL, &data);
		uint64_t now = ec->sweep_ns ? clock_now_ns() : 0;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN && !engine_stop_requested()) {
				if (econn_expired(ec, &c->e, 0, now))
					return;
				continue; /* SO_RCVTIMEO tick */
			}
			return;
		}
		if (n == 0)
			return;
		int r = econn_input(ec, &c->e, c->state, data, (size_t)n, &c->out, now);
		if (write_all(c->fd, &c->out) < 0 || c->e.closing || r < 0)
			return;
		if (ec->sweep_ns && econn_expired(ec, &c->e, 0, now))
			return;
	}
}

/* Poll loop for chat: socket + wake eventfd + stop fd. */
static void serve_pubsub(struct tconn *c)
{
	const struct econn_cfg *ec = &c->s->ec;
	struct buf scratch = BUF_INIT;
	int eof = 0;
	struct pollfd pf[3] = {{c->fd, POLLIN, 0}, {c->wake_fd, POLLIN, 0},
			       {engine_stop_fd(), POLLIN, 0}};
	c->e.last_ns = clock_now_ns();
	net_set_nonblock(c->fd, 1);
	for (;;) {
		pthread_mutex_lock(&c->lock);
		if (c->dead)
			c->e.closing = 1;
		if (buf_used(&c->out)) {
			ssize_t n = send(c->fd, buf_head(&c->out), buf_used(&c->out),
					 MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n > 0)
				buf_consume(&c->out, (size_t)n);
			else if (n < 0 && errno != EAGAIN && errno != EINTR)
				eof = c->e.closing = 1, buf_clear(&c->out);
		}
		size_t pending = buf_used(&c->out);
		pthread_mutex_unlock(&c->lock);
		int closing = c->e.closing || eof;
		if (closing && !pending)
			break;
		pf[0].events = (short)((closing ? 0 : POLLIN) | (pending ? POLLOUT : 0));
		int timeout_ms = -1;
		if (ec->sweep_ns)
			timeout_ms = (int)(ec->sweep_ns / NS_PER_MS) + 1;
		int r = poll(pf, 3, timeout_ms);
		if (r < 0 && errno != EINTR)
			break;
		uint64_t now = clock_now_ns();
		if (pf[2].revents) {
			c->e.closing = 1;
			pf[2].fd = -1;
		}
		if (pf[1].revents & POLLIN) {
			uint64_t v;
			ssize_t rr = read(c->wake_fd, &v, sizeof(v));
			(void)rr;
		}
		if (pf[0].revents & (POLLIN | POLLHUP | POLLERR) && !c->e.closing && !eof) {
			const char *data;
			ssize_t n = econn_read(&c->e, c->fd, NULL, &data);
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
				eof = 1;
			} else if (n > 0) {
				int in_err = econn_input(ec, &c->e, c->state, data, (size_t)n, &scratch,
							 now);
				if (buf_used(&scratch)) {
					pthread_mutex_lock(&c->lock);
					if (!c->dead && buf_append(&c->out, buf_head(&scratch),
								   buf_used(&scratch)))
						c->e.closing = 1;
					pthread_mutex_unlock(&c->lock);
					buf_clear(&scratch);
				}
				if (in_err < 0)
					break;
			}
		}
		if (ec->sweep_ns && econn_expired(ec, &c->e, 0, now))
			break;
	}
	buf_free(&scratch);
}

static void *conn_thread(void *arg)
{
	struct tconn *c = arg;
	struct tsrv *s = c->s;
	if (s->pubsub)
		serve_pubsub(c);
	else
		serve_blocking(c);
	if (c->member.room)
		room_leave(s->rooms, &c->member);
	/* everything that touches s happens before nactive drops: at 0 thread_run frees s */
	econn_fini(&s->ec, &c->e, c->state);
	shutdown(c->fd, SHUT_WR);
	pthread_mutex_lock(&s->mu);
	LIST_REMOVE(c, link);
	/* closed under s->mu: the stop path shuts down the fds of listed connections, and a
	 * closed-then-reused fd number must not be among them */
	close(c->fd);
	s->nactive--;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	if (c->wake_fd >= 0)
		close(c->wake_fd);
	buf_free(&c->out);
	pthread_mutex_destroy(&c->lock);
	free(c);
	return NULL;
}

/* pthread_create, or the seam's failure */
static int thread_start(struct tsrv *s, pthread_attr_t *attr, struct tconn *c)
{
	if (s->fail_create > 0) {
		s->fail_create--;
		return EAGAIN;
	}
	pthread_t tid;
	return pthread_create(&tid, attr, conn_thread, c);
}

/* Starts fd's connection thread: 0, or -errno when fd was closed because its thread could not
 * be started (other failures, out of memory, close fd and return 0: they are not a reason to
 * slow accepting). */
static int conn_start(struct tsrv *s, int fd, pthread_attr_t *attr)
{
	int err = 0;
	struct tconn *c = calloc(1, sizeof(*c) + s->ec.p->state_size);
	if (!c) {
		close(fd);
		return 0;
	}
	c->fd = fd;
	c->s = s;
	c->wake_fd = -1;
	pthread_mutex_init(&c->lock, NULL);
	c->member.deliver = tconn_deliver;
	c->member.set = s->rooms;
	econn_env_init(&c->env, s->ec.cfg, ++s->next_id, &c->member,
		       s->pubsub ? room_env_join : NULL, s->pubsub ? room_env_publish : NULL);
	if (s->pubsub)
		c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	net_set_nodelay(fd, 1);
	uint64_t tick_ns = s->ec.sweep_ns;
	if (tick_ns) {
		struct timeval tv = {(time_t)(tick_ns / NS_PER_S),
				     (suseconds_t)(tick_ns % NS_PER_S / 1000)};
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	if ((s->pubsub && c->wake_fd < 0) || s->ec.p->init(c->state, &c->env) < 0) {
		if (c->member.room)
			room_leave(s->rooms, &c->member);
		goto fail;
	}
	pthread_mutex_lock(&s->mu);
	LIST_INSERT_HEAD(&s->active, c, link);
	s->nactive++;
	pthread_mutex_unlock(&s->mu);
	err = -thread_start(s, attr, c);
	if (!err)
		return 0;
	pthread_mutex_lock(&s->mu);
	LIST_REMOVE(c, link);
	s->nactive--;
	pthread_mutex_unlock(&s->mu);
	if (c->member.room)
		room_leave(s->rooms, &c->member);
	econn_fini(&s->ec, &c->e, c->state);
fail:
	close(fd);
	if (c->wake_fd >= 0)
		close(c->wake_fd);
	pthread_mutex_destroy(&c->lock);
	free(c);
	return err;
}

static int thread_run(const struct engine_cfg *cfg)
{
	/* on the heap: threads still blocked after the grace period keep using it until exit */
	struct tsrv *s = calloc(1, sizeof(*s));
	if (!s)
		return engine_fail(cfg, "out of memory starting the thread engine"), 1;
	econn_cfg_init(&s->ec, cfg);
	s->pubsub = cfg->proto->fanout;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->rooms = room_set_new(1, cfg->pcfg.max_rooms);
	if (!s->rooms) {
		free(s);
		return engine_fail(cfg, "out of memory starting the thread engine"), 1;
	}
	struct net_addr bound;
	int lfd = econn_listen(cfg, 0, 1, 0, &bound);
	if (lfd < 0) {
		room_set_free(s->rooms);
		free(s);
		return 1;
	}
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, THREAD_STACK_BYTES);
	const char *fail = getenv("CTXLAB_THREAD_FAIL_CREATE");
	s->fail_create = fail ? strtol(fail, NULL, 10) : 0;
	int warned = 0;
	engine_ready(cfg, &bound);
	struct pollfd pf[2] = {{lfd, POLLIN, 0}, {engine_stop_fd(), POLLIN, 0}};
	while (!engine_stop_requested()) {
		int r = poll(pf, 2, -1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			error("poll on the listener failed: %s", strerror(errno));
			break;
		}
		if (pf[1].revents)
			break;
		if (!(pf[0].revents & POLLIN))
			continue;
		int fd = net_accept(lfd, 0, NULL);
		if (fd < 0) {
			if (econn_accept_error(fd) == ECONN_ACCEPT_PAUSE) {
				/* out of descriptors: wait (for a stop, at most) before retrying */
				struct pollfd sp = {engine_stop_fd(), POLLIN, 0};
				poll(&sp, 1, (int)(ECONN_ACCEPT_PAUSE_NS / NS_PER_MS));
			}
			continue;
		}
		pthread_mutex_lock(&s->mu);
		int full = econn_full(cfg, s->nactive);
		pthread_mutex_unlock(&s->mu);
		if (full) {
			close(fd);
			continue;
		}
		int err = conn_start(s, fd, &attr);
		if (!err) {
			warned = 0;
			continue;
		}
		if (!warned)
			warn("cannot start a thread for a connection: %s (closing connections and "
			     "pausing accepts until threads start again; lower --max-conns or raise "
			     "the thread limit, ulimit -u)", strerror(-err));
		warned = 1;
		struct pollfd sp = {engine_stop_fd(), POLLIN, 0};
		poll(&sp, 1, (int)(ECONN_ACCEPT_PAUSE_NS / NS_PER_MS));
	}
	close(lfd);
	/* stop: let blocked reads return, threads flush their output and exit */
	pthread_mutex_lock(&s->mu);
	s->stopping = 1;
	struct tconn *c;
	LIST_FOREACH(c, &s->active, link)
		shutdown(c->fd, SHUT_RD);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += (time_t)(ENGINE_STOP_GRACE_NS / NS_PER_S);
	while (s->nactive > 0) {
		if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT)
			break;
	}
	int left = s->nactive;
	pthread_mutex_unlock(&s->mu);
	pthread_attr_destroy(&attr);
	if (left) {
		/* threads still blocked on a peer that does not read: the process exit ends them */
		return 0;
	}
	room_set_free(s->rooms);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
	return 0;
}

const struct engine engine_thread = {
	.name = "thread",
	.summary = "a thread per connection, blocking I/O, bounded by --max-conns",
	.run = thread_run,
};
