#include "load/load.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/ev.h"
#include "core/log.h"
#include "load/client.h"
#include "load/pace.h"
#include "load/uio.h"

#define RBUF_BYTES (64 * 1024)
#define SINK_CHUNK_BYTES (64 * 1024)
#define FANOUT_MAX_OUT_BYTES (256 * 1024)
#define STAMP_MAX_LINE 4096            /* the longest stamped line */
#define HK_NS (10 * NS_PER_MS)       /* housekeeping period once running */
#define HK_CONNECT_NS (1 * NS_PER_MS) /* while waiting for the start */
#define FANOUT_SETTLE_NS (100 * NS_PER_MS)
#define FANOUT_DRAIN_NS (1000 * NS_PER_MS)
#define FANOUT_JOIN_WAIT_NS (10 * NS_PER_S) /* the most the start waits for the room */

enum { PH_CONNECT, PH_RUN, PH_STOP };
enum { CS_CLOSED, CS_CONNECTING, CS_OPEN, CS_DEAD };
enum { E_CONNECT, E_RESET, E_TIMEOUT, E_PARSE, E_CLOSED };

struct stats {
	uint64_t ok, answered, sent, bytes_tx, bytes_rx, late, unsent, unfinished;
	uint64_t err[5];
	uint64_t err_status;
	uint64_t chat_sent, chat_delivered, chat_expected;
	uint64_t conns_opened;
	uint64_t status[LOAD_STATUS_MAX];
};

struct thr;

struct conn {
	struct thr *t;
	int fd;
	uint8_t state;
	uint8_t wantw;
	uint32_t idx;           /* within the thread */
	uint32_t gidx;          /* across the run (chat client id) */
	uint32_t wpos;          /* offset of the next byte to write within one message */
	uint64_t wleft;         /* bytes queued, not yet written (fixed-message protocols) */
	uint64_t sent, done;    /* messages queued / finished (answered or failed) */
	uint64_t issued;        /* open loop: schedule ticks dealt to this connection */
	uint64_t start_ns;      /* when the current connect started */
	uint64_t *ring;         /* send times of the messages in flight [pipeline] */
	uint32_t hellos;        /* fan-out: other members' hellos received */
	void *cst;              /* the client's per-connection state (client->state_size) */
	struct buf out;         /* fan-out only: bytes not yet written */
	/* --io uring: */
	uint32_t gen;           /* bumped when the fd is dropped: older completions are stale */
	uint32_t wfly;          /* bytes of the send in flight (0: none; one at a time) */
	uint8_t rarmed;         /* a multishot recv is armed */
	struct buf fly;         /* fan-out: the bytes of the send in flight (out fills meanwhile) */
};

struct run {
	const struct load_cfg *cfg;
	const struct load_client *client;
	unsigned flags;         /* client->flags */
	int conn_per_req;       /* LOAD_C_KEEPALIVE and --no-keepalive: a connection per request */
	atomic_int phase;
	atomic_uint ready, finished;
	atomic_int joined;
	atomic_int hello_max;   /* fan-out: the most hellos one connection received */
	atomic_int ports_exhausted;
	int evfd;
	/* written before phase = PH_RUN (release), read after (acquire) */
	uint64_t t0_ns, measure_ns, end_ns;
	const char *rep;
	size_t rep_len, msg_len;
	uint32_t pipeline;
	int paced;
	int uring;              /* the io path: 1 = io_uring (uio.h), 0 = epoll (core/ev.h) */
	int nintervals;         /* cfg->interval_ns: histograms per thread (0 = off) */
	uint64_t interval_ns;
};

struct thr {
	struct run *run;
	const struct load_cfg *cfg;
	int id;
	pthread_t th;
	struct ev_loop *loop;   /* --io epoll */
	struct uio *u;          /* --io uring */
	struct tmr {
		struct thr *t;
		uint64_t (*fn)(struct thr *t, uint64_t now); /* next deadline, 0 = no more */
		uint64_t at;
		int on;
	} tm[8];
	struct conn *conns;
	uint32_t n, gbase;
	uint64_t *rings;
	char *cstates;          /* the connections' client states, state_stride bytes each */
	char *rbuf;
	struct stats st;
	struct hist *lat, *lat_unc;
	struct hist **ivl;      /* cfg->interval_ns: one per interval of the window */
	struct pace pace;
	double rate_per_s;
	uint64_t quota;         /* -n share; 0 = none */
	uint64_t dealt;         /* sends dealt/queued in the window (quota accounting) */
	uint64_t inflight, owed;
	uint32_t alive, pending_connects, next_open;
	int started, finished, sending_over, in_window, ready_sent;
	uint64_t finish_ns;
	uint64_t next_scan_ns, next_snap_ns;
	/* live snapshot, under mu */
	pthread_mutex_t mu;
	struct stats snap;
	struct hist *snap_lat;
	uint32_t snap_open;
	int snap_valid;
	char reason[128];
	int err;
};

static atomic_int g_interrupt;
static int g_evfd = -1;

void load_interrupt(void)
{
	atomic_store(&g_interrupt, 1);
	if (g_evfd >= 0) {
		uint64_t one = 1;
		ssize_t w = write(g_evfd, &one, sizeof(one));
		(void)w;
	}
}

static void wake_main(struct run *r)
{
	uint64_t one = 1;
	ssize_t w = write(r->evfd, &one, sizeof(one));
	(void)w;
}

static int is_reqresp(const struct thr *t) { return (t->run->flags & LOAD_C_REQRESP) != 0; }

static void client_reset(struct thr *t, struct conn *c)
{
	if (t->run->client->reset)
		t->run->client->reset(c->cst, t->cfg);
}

/* ---- connection lifecycle ------------------------------------------------------------- */

static void on_io(struct ev_loop *l, int fd, int mask, void *ud);
static void conn_open(struct thr *t, struct conn *c);
static void conn_fill(struct thr *t, struct conn *c, uint64_t now);
static void thr_finish(struct thr *t, const char *reason);
static int quota_done(const struct thr *t);
static void stats_window_start(struct thr *t);

/* ---- the io_uring mechanism (--io uring): user_data = op << 56 | gen << 32 | idx ------ */

enum { OP_CANCEL = 1, OP_CONNECT, OP_RECV, OP_SEND };
#define UD_CANCEL ((uint64_t)OP_CANCEL << 56)

static uint64_t ud_of(const struct conn *c, unsigned op)
{
	return (uint64_t)op << 56 | (uint64_t)(c->gen & 0xffffff) << 32 | c->idx;
}

/* c's fd is about to close: cancel what is in flight on it (the ring holds the file until
 * then) and make every later completion of it stale. */
static void uring_drop(struct thr *t, struct conn *c)
{
	if (c->state == CS_CONNECTING)
		uio_cancel(t->u, ud_of(c, OP_CONNECT), UD_CANCEL);
	if (c->rarmed)
		uio_cancel(t->u, ud_of(c, OP_RECV), UD_CANCEL);
	if (c->wfly)
		uio_cancel(t->u, ud_of(c, OP_SEND), UD_CANCEL);
	c->rarmed = 0;
	c->wfly = 0;
	buf_clear(&c->fly);
	c->gen++;
}

static void conn_drop_fd(struct thr *t, struct conn *c)
{
	if (c->fd >= 0) {
		if (t->u)
			uring_drop(t, c);
		else
			ev_del(t->loop, c->fd, EV_READ | EV_WRITE);
		close(c->fd);
		c->fd = -1;
	}
	c->wantw = 0;
	if ((t->run->flags & LOAD_C_FANOUT) && c->state == CS_OPEN)
		atomic_fetch_sub(&t->run->joined, 1);
}

/* The messages in flight on c end with error class e; c is closed. */
static void conn_fail_inflight(struct thr *t, struct conn *c, int e)
{
	uint64_t k = c->sent - c->done;
	if (is_reqresp(t)) {
		t->st.err[e] += k;
		t->inflight -= k;
		c->done = c->sent;
	}
	c->wleft = 0;
	c->wpos = 0;
	buf_clear(&c->out);
	client_reset(t, c);
}

static void conn_dead(struct thr *t, struct conn *c)
{
	c->state = CS_DEAD;
	if (t->alive)
		t->alive--;
	/* its owed schedule ticks will never be sent */
	uint64_t owed = c->issued - c->sent;
	t->st.unsent += owed;
	t->st.late += owed;
	t->owed -= owed;
	c->sent = c->done = c->issued;
	if (!t->alive && t->started && !t->finished)
		thr_finish(t, "every connection was refused: the server went away");
}

/* Closes c after error class e (or a clean close when e < 0) and reconnects while the run
 * goes on. */
static void conn_reset(struct thr *t, struct conn *c, int e)
{
	if (e >= 0 && e != E_CONNECT)
		conn_fail_inflight(t, c, e);
	else
		conn_fail_inflight(t, c, E_CLOSED);
	conn_drop_fd(t, c);
	c->state = CS_CLOSED;
	if (t->finished || t->sending_over) {
		c->state = CS_DEAD;
		return;
	}
	conn_open(t, c);
}

static void connect_failed(struct thr *t, struct conn *c, int r)
{
	t->st.err[E_CONNECT]++;
	if (r == -EADDRNOTAVAIL)
		atomic_store(&t->run->ports_exhausted, 1);
	if (!t->reason[0]) {
		char a[80];
		snprintf(t->reason, sizeof(t->reason), "cannot connect to '%s': %s",
			 net_format(&t->cfg->target, a, sizeof(a)), strerror(-r));
	}
	conn_drop_fd(t, c);
	c->state = CS_CLOSED;
	if (t->pending_connects && !t->started)
		t->pending_connects--;
	conn_dead(t, c);
}

static void conn_open(struct thr *t, struct conn *c)
{
	const struct load_cfg *cfg = t->cfg;
	struct net_addr src;
	const struct net_addr *sp = NULL;
	if (cfg->source) {
		srcrange_addr(cfg->source, c->gidx, &src);
		sp = &src;
	}
	c->start_ns = clock_now_ns();
	int fd = net_connect(&cfg->target, sp, NET_NONBLOCK | NET_NODELAY);
	if (fd < 0) {
		c->fd = -1;
		connect_failed(t, c, fd);
		return;
	}
	c->fd = fd;
	c->state = CS_CONNECTING;
	client_reset(t, c);
	int r = t->u ? uio_poll_out(t->u, fd, ud_of(c, OP_CONNECT))
		     : ev_add(t->loop, fd, EV_WRITE, on_io, c);
	if (r < 0)
		connect_failed(t, c, r);
}

static void out_flush(struct thr *t, struct conn *c);

static void conn_opened(struct thr *t, struct conn *c, uint64_t now)
{
	c->state = CS_OPEN;
	c->hellos = 0;
	t->st.conns_opened++;
	c->wantw = 0;
	if (t->u) {
		if (uio_recv_multishot(t->u, c->fd, ud_of(c, OP_RECV)) < 0) {
			conn_reset(t, c, E_RESET);
			return;
		}
		c->rarmed = 1;
	} else {
		int mask = (t->run->flags & LOAD_C_SENDONLY) && !t->run->paced ? EV_WRITE : 0;
		ev_del(t->loop, c->fd, EV_WRITE);
		if (mask)
			c->wantw = 1;
		if (ev_add(t->loop, c->fd, EV_READ | mask, on_io, c) < 0) {
			conn_reset(t, c, E_RESET);
			return;
		}
	}
	if (t->run->client->greet) {
		if (t->run->client->greet(c->cst, t->cfg, &c->out) == 0) {
			if (t->run->flags & LOAD_C_FANOUT)
				atomic_fetch_add(&t->run->joined, 1);
			out_flush(t, c);
		}
	}
	if (!t->started) {
		if (t->pending_connects)
			t->pending_connects--;
		return;
	}
	conn_fill(t, c, now);
}

/* ---- writing -------------------------------------------------------------------------- */

static void want_write(struct thr *t, struct conn *c, int on)
{
	if (on == c->wantw || t->u)
		return;
	c->wantw = (uint8_t)on;
	if (on)
		ev_add(t->loop, c->fd, EV_WRITE, on_io, c);
	else
		ev_del(t->loop, c->fd, EV_WRITE);
}

/* --io uring: one send in flight per connection (the next one when it completes), queued
 * in the ring with every other connection's sends of this turn. 0, or -1 when c was reset. */
static int uring_send(struct thr *t, struct conn *c, const void *p, size_t n)
{
	if (uio_send(t->u, c->fd, p, n, ud_of(c, OP_SEND)) < 0) {
		conn_reset(t, c, E_RESET);
		return -1;
	}
	c->wfly = (uint32_t)n;
	return 0;
}

/* Writes the queued copies of the fixed message. Returns 0, or -1 when c was reset. */
static int conn_flush(struct thr *t, struct conn *c)
{
	const struct run *r = t->run;
	if (t->u) {
		if (c->wfly || !c->wleft)
			return 0;
		size_t n = r->rep_len - c->wpos;
		if (n > c->wleft)
			n = (size_t)c->wleft;
		return uring_send(t, c, r->rep + c->wpos, n);
	}
	while (c->wleft) {
		size_t n = r->rep_len - c->wpos;
		if (n > c->wleft)
			n = (size_t)c->wleft;
		ssize_t w = send(c->fd, r->rep + c->wpos, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				want_write(t, c, 1);
				return 0;
			}
			conn_reset(t, c, E_RESET);
			return -1;
		}
		t->st.bytes_tx += (uint64_t)w;
		c->wleft -= (uint64_t)w;
		c->wpos = (uint32_t)((c->wpos + (size_t)w) % r->msg_len);
	}
	if (c->wantw)
		want_write(t, c, 0);
	return 0;
}

/* Writes c->out (fan-out: the greeting and the stamped lines). */
static void out_flush(struct thr *t, struct conn *c)
{
	if (t->u) {
		/* the ring reads c->fly until the send completes: c->out fills meanwhile */
		if (c->wfly || c->state != CS_OPEN)
			return;
		if (!buf_used(&c->fly)) {
			if (!buf_used(&c->out))
				return;
			struct buf tmp = c->fly;
			c->fly = c->out;
			c->out = tmp;
			buf_clear(&c->out);
		}
		uring_send(t, c, buf_head(&c->fly), buf_used(&c->fly));
		return;
	}
	while (buf_used(&c->out)) {
		ssize_t w = send(c->fd, buf_head(&c->out), buf_used(&c->out),
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				want_write(t, c, 1);
				return;
			}
			conn_reset(t, c, E_RESET);
			return;
		}
		t->st.bytes_tx += (uint64_t)w;
		buf_consume(&c->out, (size_t)w);
	}
	if (c->wantw)
		want_write(t, c, 0);
}

/* Unpaced sink: writes until the socket is full. */
static void sink_pump(struct thr *t, struct conn *c)
{
	const struct run *r = t->run;
	if (t->u) {
		if (!c->wfly)
			uring_send(t, c, r->rep + c->wpos, r->rep_len - c->wpos);
		return;
	}
	for (int i = 0; i < 16; i++) {
		ssize_t w = send(c->fd, r->rep + c->wpos, r->rep_len - c->wpos,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			conn_reset(t, c, E_RESET);
			return;
		}
		t->st.bytes_tx += (uint64_t)w;
		c->wpos = (uint32_t)((c->wpos + (size_t)w) % r->msg_len);
	}
}

/* Sends c's next line, stamped with the actual send time `now` and the schedule's intended
 * time, so the receiver records both the corrected and the uncorrected latency. */
static void stamped_send(struct thr *t, struct conn *c, uint64_t now, uint64_t intended)
{
	char line[STAMP_MAX_LINE];
	size_t len = t->run->client->stamp(line, sizeof(line), t->run->msg_len, c->gidx, c->sent,
					   now, intended);
	if (!len)
		return;
	if (buf_used(&c->out) + len > FANOUT_MAX_OUT_BYTES)
		return; /* the server does not read: this tick stays owed */
	if (buf_append(&c->out, line, len) < 0)
		return;
	c->sent++;
	t->owed--;
	if (now >= t->run->measure_ns) {
		if (!t->in_window)
			stats_window_start(t);
		t->st.chat_sent++;
		t->st.sent++;
		int members = atomic_load_explicit(&t->run->joined, memory_order_relaxed);
		if (members > 1)
			t->st.chat_expected += (uint64_t)(members - 1);
	}
	out_flush(t, c);
}

/* Queues k copies of the fixed message, stamped now. */
static int conn_queue(struct thr *t, struct conn *c, uint64_t k, uint64_t now)
{
	uint32_t p = t->run->pipeline;
	uint64_t stamp = now;
	if (t->run->conn_per_req && !t->run->paced)
		stamp = c->start_ns; /* a connection per request: the connect is part of it */
	for (uint64_t i = 0; i < k; i++)
		c->ring[(c->sent + i) % p] = stamp;
	c->sent += k;
	t->st.sent += k;
	if (is_reqresp(t))
		t->inflight += k;
	c->wleft += k * t->run->msg_len;
	return conn_flush(t, c);
}

/* Sends what c may send now: closed loop fills the pipeline, open loop sends owed ticks. */
static void conn_fill(struct thr *t, struct conn *c, uint64_t now)
{
	const struct run *r = t->run;
	if (c->state != CS_OPEN || t->sending_over)
		return;
	if (!r->paced) {
		if (r->flags & LOAD_C_SENDONLY) {
			sink_pump(t, c);
			return;
		}
		uint64_t room = r->pipeline - (c->sent - c->done);
		if (r->conn_per_req && c->sent != c->done)
			room = 0;
		if (t->quota && t->in_window) {
			uint64_t left = t->quota - t->dealt;
			if (room > left)
				room = left;
		}
		if (room) {
			t->dealt += room;
			conn_queue(t, c, room, now);
		}
		return;
	}
	uint64_t owed = c->issued - c->sent;
	if (!owed)
		return;
	if (r->flags & LOAD_C_FANOUT) {
		while (c->issued != c->sent && c->state == CS_OPEN) {
			uint64_t intended = pace_conn_ns(&t->pace, c->idx, c->sent);
			uint64_t before = c->sent;
			stamped_send(t, c, now, intended);
			if (c->sent == before)
				break;
			if (now > intended + LOAD_LATE_NS && intended >= r->measure_ns)
				t->st.late++;
		}
		return;
	}
	uint64_t room;
	if (r->flags & LOAD_C_SENDONLY)
		room = (r->rep_len / r->msg_len) - (c->wleft + r->msg_len - 1) / r->msg_len;
	else
		room = r->pipeline - (c->sent - c->done);
	if (owed > room)
		owed = room;
	if (!owed)
		return;
	for (uint64_t i = 0; i < owed; i++) {
		uint64_t intended = pace_conn_ns(&t->pace, c->idx, c->sent + i);
		if (now > intended + LOAD_LATE_NS && intended >= r->measure_ns)
			t->st.late++;
	}
	t->owed -= owed;
	if (r->flags & LOAD_C_SENDONLY) {
		/* nothing comes back: a message is done when queued */
		c->sent += owed;
		c->done += owed;
		t->st.sent += owed;
		c->wleft += owed * r->msg_len;
		conn_flush(t, c);
		return;
	}
	conn_queue(t, c, owed, now);
}

/* ---- reading -------------------------------------------------------------------------- */

/* The interval histogram of an answer at now (NULL when intervals are off or outside the
 * window: then lat does not keep it either) */
static struct hist *ivl_of(struct thr *t, uint64_t now)
{
	const struct run *r = t->run;
	if (!t->ivl || !t->in_window)
		return NULL;
	uint64_t k = now > r->measure_ns ? (now - r->measure_ns) / r->interval_ns : 0;
	return t->ivl[k < (uint64_t)r->nintervals ? k : (uint64_t)r->nintervals - 1];
}

static void record(struct thr *t, struct conn *c, uint64_t now)
{
	const struct run *r = t->run;
	uint64_t sent_ns = c->ring[c->done % r->pipeline];
	uint64_t unc = now > sent_ns ? now - sent_ns : 0;
	if (r->paced) {
		uint64_t intended = pace_conn_ns(&t->pace, c->idx, c->done);
		hist_record(t->lat, now > intended ? now - intended : 0);
		hist_record(t->lat_unc, unc);
		struct hist *iv = ivl_of(t, now);
		if (iv)
			hist_record(iv, now > intended ? now - intended : 0);
	} else {
		hist_record(t->lat, unc);
		struct hist *iv = ivl_of(t, now);
		if (iv)
			hist_record(iv, unc);
	}
	c->done++;
	t->inflight--;
	t->st.answered++;
}

/* A fan-out answer: a delivery, timed by the stamps it carries. */
static void delivered(struct thr *t, const struct load_answer *a, uint64_t now)
{
	if (a->sent_ns < t->run->measure_ns)
		return;
	if (!t->in_window)
		stats_window_start(t);
	t->st.chat_delivered++;
	/* corrected from the intended send time (a tick held back while the server did not
	 * read still counts from when it was due), uncorrected from the actual send */
	uint64_t intended = a->intended_ns && a->intended_ns <= a->sent_ns ? a->intended_ns
									  : a->sent_ns;
	hist_record(t->lat, now > intended ? now - intended : 0);
	hist_record(t->lat_unc, now > a->sent_ns ? now - a->sent_ns : 0);
	struct hist *iv = ivl_of(t, now);
	if (iv)
		hist_record(iv, now > intended ? now - intended : 0);
}

/* A fan-out hello from another member reached c: both are in the room. When c has seen
 * every other member's hello, the whole room is in (fanout_join_wait). */
static void hello_seen(struct thr *t, struct conn *c)
{
	int n = (int)++c->hellos;
	int max = atomic_load(&t->run->hello_max);
	while (n > max && !atomic_compare_exchange_weak(&t->run->hello_max, &max, n))
		;
	if (n > max && n + 1 >= atomic_load(&t->run->joined))
		wake_main(t->run);
}

/* An answer to the oldest message in flight on c. */
static void answered(struct thr *t, struct conn *c, const struct load_answer *a, uint64_t now)
{
	if (t->run->flags & LOAD_C_STATUS) {
		int st = a->status;
		t->st.status[st < LOAD_STATUS_MAX ? st : 0]++;
		if (st >= 200 && st < 300)
			t->st.ok++;
		else
			t->st.err_status++;
	} else {
		t->st.ok++;
	}
	record(t, c, now);
}

/* Received bytes through the client's parser. Returns 0, or -1 when c was closed/reset. */
static int conn_input(struct thr *t, struct conn *c, const char *s, size_t n, uint64_t now)
{
	const struct run *r = t->run;
	while (n) {
		size_t used = n;
		struct load_answer a;
		int rc = r->client->parse(c->cst, s, n, c->sent - c->done, &used, &a);
		if (rc < 0) {
			conn_reset(t, c, E_PARSE);
			return -1;
		}
		s += used;
		n -= used;
		if (rc == 0)
			continue;
		if ((r->flags & LOAD_C_FANOUT) && a.hello) {
			hello_seen(t, c);
			continue;
		}
		if (r->flags & LOAD_C_FANOUT) {
			delivered(t, &a, now);
			continue;
		}
		answered(t, c, &a, now);
		if (a.close || r->conn_per_req) {
			/* the server closes after this answer: what else is in flight is lost */
			conn_reset(t, c, c->sent != c->done ? E_CLOSED : -1);
			return -1;
		}
	}
	return 0;
}

/* The server closed c (both io paths). */
static void conn_eof(struct thr *t, struct conn *c)
{
	int e = E_CLOSED;
	const struct load_client *cl = t->run->client;
	if (cl->eof && c->sent != c->done) {
		struct load_answer a;
		if (cl->eof(c->cst, &a) == 1)
			answered(t, c, &a, clock_now_ns());
	}
	conn_reset(t, c, c->sent != c->done ? e : -1);
}

/* n > 0 bytes received on c (both io paths): parse, send what may be sent now. 0, or -1
 * when c is no longer open (reset, or the thread finished). */
static int conn_got(struct thr *t, struct conn *c, const char *s, size_t n)
{
	uint64_t now = clock_now_ns();
	t->st.bytes_rx += (uint64_t)n;
	if (t->run->client->parse && conn_input(t, c, s, n, now) < 0)
		return -1;
	if (t->started)
		conn_fill(t, c, now);
	if (c->state != CS_OPEN)
		return -1;
	if (quota_done(t) && is_reqresp(t)) {
		thr_finish(t, NULL);
		return -1;
	}
	return 0;
}

static void on_readable(struct thr *t, struct conn *c)
{
	for (;;) {
		ssize_t n = recv(c->fd, t->rbuf, RBUF_BYTES, MSG_DONTWAIT);
		if (n == 0) {
			conn_eof(t, c);
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			conn_reset(t, c, E_RESET);
			return;
		}
		if (conn_got(t, c, t->rbuf, (size_t)n) < 0)
			return;
		if (n < RBUF_BYTES)
			return; /* drained, most likely: level-triggered epoll tells us otherwise */
	}
}

/* --io uring: a completion of a multishot recv on c. */
static void uring_recv(struct thr *t, struct conn *c, int res, uint32_t flags)
{
	if (!(flags & IORING_CQE_F_MORE))
		c->rarmed = 0;
	if (res > 0) {
		unsigned bid;
		const char *b = uio_buf(t->u, flags, &bid);
		int r = conn_got(t, c, b, (size_t)res);
		uio_buf_put(t->u, bid);
		if (r < 0)
			return;
	} else if (res == 0) {
		conn_eof(t, c);
		return;
	} else if (res != -ENOBUFS) { /* no buffer free: re-armed below */
		conn_reset(t, c, E_RESET);
		return;
	}
	if (!c->rarmed && c->state == CS_OPEN) {
		if (uio_recv_multishot(t->u, c->fd, ud_of(c, OP_RECV)) < 0)
			conn_reset(t, c, E_RESET);
		else
			c->rarmed = 1;
	}
}

/* --io uring: the send in flight on c completed with res. */
static void uring_sent(struct thr *t, struct conn *c, int res)
{
	const struct run *r = t->run;
	c->wfly = 0;
	if (res <= 0) {
		conn_reset(t, c, E_RESET);
		return;
	}
	t->st.bytes_tx += (uint64_t)res;
	if (r->flags & LOAD_C_FANOUT) {
		buf_consume(&c->fly, (size_t)res);
		out_flush(t, c);
	} else if ((r->flags & LOAD_C_SENDONLY) && !r->paced) {
		c->wpos = (uint32_t)((c->wpos + (size_t)res) % r->msg_len);
		sink_pump(t, c);
	} else {
		c->wleft -= (uint64_t)res;
		c->wpos = (uint32_t)((c->wpos + (size_t)res) % r->msg_len);
		conn_flush(t, c);
	}
}

/* --io uring: one completion. */
static void uring_cqe(struct thr *t, const struct io_uring_cqe *cqe)
{
	uint64_t ud = cqe->user_data;
	unsigned op = (unsigned)(ud >> 56);
	uint32_t gen = (uint32_t)(ud >> 32) & 0xffffff, idx = (uint32_t)ud;
	if (op == OP_CANCEL || op == 0)
		return;
	struct conn *c = idx < t->n ? &t->conns[idx] : NULL;
	if (!c || gen != (c->gen & 0xffffff) || c->fd < 0 ||
	    (op == OP_CONNECT) != (c->state == CS_CONNECTING) ||
	    (op != OP_CONNECT && c->state != CS_OPEN)) {
		if (cqe->flags & IORING_CQE_F_BUFFER) { /* stale, but the buffer is ours */
			unsigned bid;
			uio_buf(t->u, cqe->flags, &bid);
			uio_buf_put(t->u, bid);
		}
		if (c && op == OP_RECV && gen == (c->gen & 0xffffff) && !(cqe->flags & IORING_CQE_F_MORE))
			c->rarmed = 0;
		return;
	}
	if (op == OP_CONNECT) {
		if (cqe->res < 0) {
			connect_failed(t, c, cqe->res);
		} else if (cqe->res & (POLLERR | POLLHUP)) {
			int r = net_connect_result(c->fd);
			connect_failed(t, c, r < 0 ? r : -ECONNREFUSED);
		} else {
			conn_opened(t, c, clock_now_ns());
		}
	} else if (op == OP_RECV) {
		uring_recv(t, c, cqe->res, cqe->flags);
	} else if (op == OP_SEND) {
		uring_sent(t, c, cqe->res);
	}
}

static void on_io(struct ev_loop *l, int fd, int mask, void *ud)
{
	struct conn *c = ud;
	struct thr *t = c->t;
	if (c->state == CS_CONNECTING) {
		int r = net_connect_result(fd);
		if (r < 0) {
			connect_failed(t, c, r);
			return;
		}
		conn_opened(t, c, clock_now_ns());
		return;
	}
	if (c->state != CS_OPEN)
		return;
	if (mask & EV_READ) {
		on_readable(t, c);
		if (c->state != CS_OPEN || c->fd != fd)
			return;
	}
	if (mask & EV_WRITE) {
		if (t->run->flags & LOAD_C_FANOUT)
			out_flush(t, c);
		else if ((t->run->flags & LOAD_C_SENDONLY) && !t->run->paced)
			sink_pump(t, c);
		else
			conn_flush(t, c);
	}
}

/* ---- timers --------------------------------------------------------------------------- */

/* A few timers per thread (t->tm): a callback gets the time and returns its next deadline
 * (absolute, ns), or 0 to end. --io epoll runs them through core/ev.h's timers, --io uring
 * through the ring's wait timeout (uring_turn). */
typedef uint64_t tm_fn(struct thr *t, uint64_t now);

static int64_t tm_ev(struct ev_loop *l, uint64_t id, void *ud)
{
	(void)id;
	struct tmr *m = ud;
	uint64_t next = m->fn(m->t, clock_now_ns());
	if (!next) {
		m->on = 0;
		return EV_NOMORE;
	}
	uint64_t base = ev_now_ns(l);
	return next > base ? (int64_t)(next - base) : 0;
}

static void tm_at(struct thr *t, uint64_t at, tm_fn *fn)
{
	for (size_t i = 0; i < sizeof t->tm / sizeof t->tm[0]; i++) {
		struct tmr *m = &t->tm[i];
		if (m->on)
			continue;
		m->t = t;
		m->fn = fn;
		m->at = at;
		m->on = 1;
		if (t->loop)
			ev_timer_add_at(t->loop, at, tm_ev, m);
		return;
	}
	/* BUG: more timers than t->tm holds (load.c adds at most 6) */
	abort();
}

/* --io uring: runs the due timers; returns the next deadline, 0 when none */
static uint64_t tm_run(struct thr *t)
{
	for (int guard = 0; guard < 64 && !t->finished; guard++) {
		struct tmr *m = NULL;
		for (size_t i = 0; i < sizeof t->tm / sizeof t->tm[0]; i++)
			if (t->tm[i].on && (!m || t->tm[i].at < m->at))
				m = &t->tm[i];
		if (!m)
			return 0;
		uint64_t now = clock_now_ns();
		if (m->at > now)
			return m->at;
		uint64_t next = m->fn(t, now);
		if (next)
			m->at = next;
		else
			m->on = 0;
	}
	return t->finished ? 0 : clock_now_ns(); /* more due: poll without blocking */
}

static uint64_t pace_cb(struct thr *t, uint64_t now)
{
	const struct run *r = t->run;
	if (t->sending_over || t->finished)
		return 0;
	uint32_t ci;
	uint64_t k, intended;
	if (!t->in_window && now >= r->measure_ns)
		stats_window_start(t);
	while (pace_next_due(&t->pace, now, &ci, &k, &intended)) {
		if (r->end_ns && intended >= r->end_ns)
			return 0;
		struct conn *c = &t->conns[ci];
		if (t->quota && intended >= r->measure_ns) {
			if (t->dealt >= t->quota)
				return 0;
			t->dealt++;
		}
		c->issued++;
		if (c->state == CS_DEAD) {
			c->sent++;
			c->done++;
			if (intended >= r->measure_ns) {
				t->st.unsent++;
				t->st.late++;
			}
			continue;
		}
		t->owed++;
		if (c->state == CS_OPEN)
			conn_fill(t, c, now);
	}
	return pace_next_ns(&t->pace);
}

static void stats_window_start(struct thr *t)
{
	/* connections are counted over the whole run: a refused connect in the connect phase
	 * must show in the figures */
	uint64_t opened = t->st.conns_opened, refused = t->st.err[E_CONNECT];
	memset(&t->st, 0, sizeof(t->st));
	t->st.conns_opened = opened;
	t->st.err[E_CONNECT] = refused;
	hist_reset(t->lat);
	hist_reset(t->lat_unc);
	for (int k = 0; t->ivl && k < t->run->nintervals; k++)
		hist_reset(t->ivl[k]);
	/* what is already in flight belongs to the window: it will be answered or fail in it */
	t->st.sent = t->inflight;
	t->dealt = 0;
	t->in_window = 1;
}

static uint64_t warmup_cb(struct thr *t, uint64_t now)
{
	if (t->in_window)
		return 0;
	stats_window_start(t);
	if (!t->run->paced) {
		for (uint32_t i = 0; i < t->n && !t->finished; i++)
			conn_fill(t, &t->conns[i], now);
	}
	return 0;
}

static int quota_done(const struct thr *t)
{
	return t->quota && t->in_window && !t->inflight && !t->owed && t->dealt >= t->quota;
}

static uint64_t drain_cb(struct thr *t, uint64_t now)
{
	thr_finish(t, NULL);
	return 0;
}

static uint64_t end_cb(struct thr *t, uint64_t now)
{
	if (t->finished)
		return 0;
	if (t->run->flags & LOAD_C_FANOUT) {
		t->sending_over = 1;
		t->finish_ns = now;
		uint64_t drain = FANOUT_DRAIN_NS;
		if (t->cfg->timeout_ns && t->cfg->timeout_ns < drain)
			drain = t->cfg->timeout_ns;
		tm_at(t, now + drain, drain_cb);
		return 0;
	}
	thr_finish(t, NULL);
	return 0;
}

static void thr_start(struct thr *t)
{
	const struct run *r = t->run;
	uint64_t now = clock_now_ns();
	t->started = 1;
	if (r->paced) {
		/* stagger the threads within one tick */
		double per_tick = 1e9 / t->rate_per_s;
		uint64_t off = (uint64_t)(per_tick * t->id / t->cfg->threads);
		pace_init(&t->pace, r->t0_ns + off, t->rate_per_s, t->n);
		tm_at(t, t->pace.start_ns, pace_cb);
	}
	if (r->measure_ns > now)
		tm_at(t, r->measure_ns, warmup_cb);
	else
		stats_window_start(t);
	if (r->end_ns)
		tm_at(t, r->end_ns, end_cb);
	if (!r->paced)
		for (uint32_t i = 0; i < t->n && !t->finished; i++)
			conn_fill(t, &t->conns[i], now);
	if (!t->alive)
		thr_finish(t, "every connection was refused");
}

static void scan_timeouts(struct thr *t, uint64_t now)
{
	uint64_t to = t->cfg->timeout_ns;
	for (uint32_t i = 0; i < t->n && !t->finished; i++) {
		struct conn *c = &t->conns[i];
		if (c->state == CS_CONNECTING && now - c->start_ns >= to) {
			connect_failed(t, c, -ETIMEDOUT);
			continue;
		}
		if (c->state != CS_OPEN || c->sent == c->done || !is_reqresp(t))
			continue;
		uint64_t oldest = c->ring[c->done % t->run->pipeline];
		if (now - oldest >= to)
			conn_reset(t, c, E_TIMEOUT);
	}
}

static void snapshot(struct thr *t)
{
	uint32_t open = 0;
	for (uint32_t i = 0; i < t->n; i++)
		open += t->conns[i].state == CS_OPEN;
	pthread_mutex_lock(&t->mu);
	t->snap = t->st;
	hist_reset(t->snap_lat);
	hist_merge(t->snap_lat, t->lat);
	t->snap_open = open;
	t->snap_valid = 1;
	pthread_mutex_unlock(&t->mu);
}

static uint64_t hk_cb(struct thr *t, uint64_t now)
{
	struct run *r = t->run;
	if (t->finished)
		return 0;
	int phase = atomic_load_explicit(&r->phase, memory_order_acquire);
	if (phase == PH_STOP || (t->loop && ev_stopped(t->loop))) {
		thr_finish(t, NULL);
		return 0;
	}
	if (!t->started) {
		if (!t->ready_sent && !t->pending_connects && t->next_open >= t->n) {
			t->ready_sent = 1;
			atomic_fetch_add(&r->ready, 1);
			wake_main(r);
		}
		if (t->cfg->timeout_ns && now >= t->next_scan_ns) {
			scan_timeouts(t, now);
			t->next_scan_ns = now + t->cfg->timeout_ns / 20;
		}
		if (phase == PH_RUN) {
			thr_start(t);
			if (t->finished)
				return 0;
		} else {
			return now + HK_CONNECT_NS;
		}
	}
	if (t->cfg->timeout_ns && now >= t->next_scan_ns) {
		scan_timeouts(t, now);
		uint64_t step = t->cfg->timeout_ns / 20;
		if (step > 100 * NS_PER_MS)
			step = 100 * NS_PER_MS;
		t->next_scan_ns = now + step;
	}
	if (quota_done(t) && is_reqresp(t))
		thr_finish(t, NULL);
	if (t->cfg->live && now >= t->next_snap_ns) {
		snapshot(t);
		t->next_snap_ns = now + NS_PER_S / 2;
	}
	if (t->finished)
		return 0;
	return now + HK_NS;
}

static uint64_t open_cb(struct thr *t, uint64_t now)
{
	if (t->next_open >= t->n || t->finished)
		return 0;
	t->pending_connects++;
	conn_open(t, &t->conns[t->next_open++]);
	if (t->next_open >= t->n)
		return 0;
	return now + (uint64_t)(1e9 * t->cfg->threads / t->cfg->connect_rate_per_s);
}

/* --io uring, at the end: submits what is queued; the bytes of every send that completed
 * count (the epoll path counts a send's bytes when send() returns). Nothing is re-armed. */
static void uring_last_sends(struct thr *t)
{
	uio_submit(t->u);
	unsigned head, k = 0;
	struct io_uring_cqe *cqe;
	io_uring_for_each_cqe(&t->u->ring, head, cqe)
	{
		k++;
		uint64_t ud = cqe->user_data;
		uint32_t idx = (uint32_t)ud, gen = (uint32_t)(ud >> 32) & 0xffffff;
		if (cqe->flags & IORING_CQE_F_BUFFER) {
			unsigned bid;
			uio_buf(t->u, cqe->flags, &bid);
			uio_buf_put(t->u, bid);
		}
		if ((ud >> 56) != OP_SEND || idx >= t->n || cqe->res <= 0)
			continue;
		struct conn *c = &t->conns[idx];
		if (gen == (c->gen & 0xffffff) && c->fd >= 0 && c->wfly) {
			t->st.bytes_tx += (uint64_t)cqe->res;
			c->wfly = 0;
		}
	}
	io_uring_cq_advance(&t->u->ring, k);
}

static void thr_finish(struct thr *t, const char *reason)
{
	if (t->finished)
		return;
	t->finished = 1;
	if (!t->finish_ns || !t->sending_over)
		t->finish_ns = clock_now_ns();
	if (reason && !t->reason[0])
		snprintf(t->reason, sizeof(t->reason), "%s", reason);
	else if (reason && !strstr(t->reason, "went away") && strstr(reason, "went away")) {
		char old[sizeof(t->reason)];
		snprintf(old, sizeof(old), "%s", t->reason);
		snprintf(t->reason, sizeof(t->reason), "the server went away (%.100s)", old);
	}
	/* --io uring: the sends queued this turn are counted as sent: issue them before the
	 * close, as the epoll path's send() already did (the server must get them), and count
	 * the bytes of those that completed */
	if (t->u)
		uring_last_sends(t);
	t->st.unfinished += t->inflight;
	t->st.unsent += t->owed;
	t->st.late += t->owed;
	for (uint32_t i = 0; i < t->n; i++) {
		struct conn *c = &t->conns[i];
		conn_drop_fd(t, c);
		c->state = CS_DEAD;
	}
	if (t->loop)
		ev_stop(t->loop);
}

/* --io uring: one loop turn: due timers, then one io_uring_enter that submits every SQE
 * queued since the last turn (sends across connections, re-arms, cancels) and waits for a
 * completion or the next timer, then every completion. */
static void uring_turn(struct thr *t)
{
	uint64_t next = tm_run(t);
	if (t->finished)
		return;
	int64_t wait_ns = -1;
	if (next) {
		uint64_t now = clock_now_ns();
		wait_ns = next > now ? (int64_t)(next - now) : 0;
	}
	int r = uio_wait(t->u, wait_ns);
	if (r < 0) {
		t->err = r;
		thr_finish(t, "event loop failure");
		return;
	}
	unsigned head, k = 0;
	struct io_uring_cqe *cqe;
	io_uring_for_each_cqe(&t->u->ring, head, cqe)
	{
		uring_cqe(t, cqe);
		k++;
	}
	io_uring_cq_advance(&t->u->ring, k);
}

static void *thr_main(void *arg)
{
	struct thr *t = arg;
	int r0 = -ENOMEM;
	if (t->run->uring) {
		const char *what = "";
		t->u = calloc(1, sizeof(*t->u));
		r0 = t->u ? uio_init(t->u, t->n, &what) : -ENOMEM;
		if (r0 < 0 && t->u) {
			uio_fini(t->u);
			free(t->u);
			t->u = NULL;
			snprintf(t->reason, sizeof(t->reason), "cannot set up io_uring (%s): %s",
				 what, strerror(-r0));
		} else if (t->u && !t->u->fast && t->id == 0) {
			info("io_uring without SINGLE_ISSUER/DEFER_TASKRUN (Linux 6.1+): a plain ring");
		}
	} else {
		t->loop = ev_new((int)t->n + 64);
	}
	if (!t->loop && !t->u) {
		t->err = r0;
		t->finished = 1;
		atomic_fetch_add(&t->run->ready, 1);
		atomic_fetch_add(&t->run->finished, 1);
		wake_main(t->run);
		return NULL;
	}
	t->alive = t->n;
	uint64_t t_start = clock_now_ns();
	tm_at(t, t_start, hk_cb);
	if (t->cfg->connect_rate_per_s > 0) {
		tm_at(t, t_start, open_cb);
	} else {
		for (; t->next_open < t->n; t->next_open++) {
			t->pending_connects++;
			conn_open(t, &t->conns[t->next_open]);
		}
	}
	while (!t->finished && t->u)
		uring_turn(t);
	if (t->u) {
		uio_fini(t->u);
		free(t->u);
		t->u = NULL;
	}
	while (!t->finished) {
		int r = ev_poll(t->loop, -1);
		if (r < 0) {
			t->err = r;
			thr_finish(t, "event loop failure");
		}
		if (ev_stopped(t->loop))
			thr_finish(t, NULL);
	}
	if (!t->ready_sent)
		atomic_fetch_add(&t->run->ready, 1);
	if (t->cfg->live)
		snapshot(t);
	atomic_fetch_add(&t->run->finished, 1);
	wake_main(t->run);
	return NULL;
}

/* ---- the run -------------------------------------------------------------------------- */

static void raise_nofile(uint64_t need)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= need)
		return;
	if (rl.rlim_max < need) {
		struct rlimit want = {need, need};
		if (setrlimit(RLIMIT_NOFILE, &want) == 0)
			return;
	}
	rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < need)
		warn("only %llu file descriptors allowed, %llu wanted (raise 'ulimit -n')",
		     (unsigned long long)rl.rlim_cur, (unsigned long long)need);
}

/* One blocking connect with a deadline, so an absent server is reported at once. */
static int probe(const struct load_cfg *cfg, char *err, size_t errlen)
{
	struct net_addr src;
	const struct net_addr *sp = NULL;
	if (cfg->source) {
		srcrange_addr(cfg->source, 0, &src);
		sp = &src;
	}
	char a[80];
	net_format(&cfg->target, a, sizeof(a));
	int fd = net_connect(&cfg->target, sp, NET_NONBLOCK);
	if (fd >= 0) {
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		int ms = cfg->timeout_ns ? (int)(cfg->timeout_ns / NS_PER_MS) : 5000;
		if (ms > 5000)
			ms = 5000;
		int n = poll(&pfd, 1, ms);
		int r = n == 0 ? -ETIMEDOUT : n < 0 ? -errno : net_connect_result(fd);
		close(fd);
		fd = r;
	}
	if (fd >= 0)
		return 0;
	if (fd == -ECONNREFUSED)
		errbuf(err, errlen, "cannot connect to '%s': connection refused (is the server running? "
			       "start one with 'ctxlab serve')", a);
	else if (fd == -EADDRNOTAVAIL)
		errbuf(err, errlen, "cannot connect to '%s': no local address or port available "
			       "(ephemeral ports exhausted? spread connections with --source "
			       "127.0.0.2-127.0.0.20)", a);
	else
		errbuf(err, errlen, "cannot connect to '%s': %s", a, strerror(-fd));
	return fd;
}

static void add_stats(struct load_result *res, const struct stats *s)
{
	res->requests += s->ok;
	res->answered += s->answered;
	res->messages_sent += s->sent;
	res->bytes_sent += s->bytes_tx;
	res->bytes_received += s->bytes_rx;
	res->late_sends += s->late;
	res->unsent += s->unsent;
	res->unfinished += s->unfinished;
	res->err_connect += s->err[E_CONNECT];
	res->err_reset += s->err[E_RESET];
	res->err_timeout += s->err[E_TIMEOUT];
	res->err_parse += s->err[E_PARSE];
	res->err_closed += s->err[E_CLOSED];
	res->err_status += s->err_status;
	res->conns_opened += s->conns_opened;
	res->chat_sent += s->chat_sent;
	res->chat_delivered += s->chat_delivered;
	res->chat_expected += s->chat_expected;
	for (int i = 0; i < LOAD_STATUS_MAX; i++)
		res->status[i] += s->status[i];
}

static void live_line(struct thr *ts, uint32_t nt, struct hist *h, double elapsed_s,
		      uint64_t *last_ok, double *last_s)
{
	struct load_result sum;
	memset(&sum, 0, sizeof(sum));
	uint32_t open = 0;
	hist_reset(h);
	for (uint32_t i = 0; i < nt; i++) {
		pthread_mutex_lock(&ts[i].mu);
		if (ts[i].snap_valid) {
			add_stats(&sum, &ts[i].snap);
			hist_merge(h, ts[i].snap_lat);
			open += ts[i].snap_open;
		}
		pthread_mutex_unlock(&ts[i].mu);
	}
	uint64_t done = sum.requests + sum.chat_delivered;
	double dt = elapsed_s - *last_s;
	double rate = dt > 0 && done >= *last_ok ? (double)(done - *last_ok) / dt : 0;
	*last_ok = done;
	*last_s = elapsed_s;
	fprintf(stderr,
		"\r\033[K[%5.1fs] %10.0f/s  p50 %8.3fms  p99 %8.3fms  errors %" PRIu64
		"  conns %" PRIu32,
		elapsed_s, rate, (double)hist_percentile(h, 50) / 1e6,
		(double)hist_percentile(h, 99) / 1e6, load_errors_total(&sum), open);
	fflush(stderr);
}

static double tv_s(struct timeval tv) { return (double)tv.tv_sec + (double)tv.tv_usec / 1e6; }

/* Fan-out: a connection is up when its connect completed, but the server may accept it, fork
 * for it or read its /join much later (a busy server, a backlog): lines sent before would
 * count as expected for a member that cannot get them. So the clock starts once one
 * connection has received the hello of every other joined member (the first member the
 * server put in the room receives them all: each hello follows its sender's join), or after
 * FANOUT_JOIN_WAIT_NS (a warning; the loss then counts the members still out). */
static void fanout_join_wait(struct run *r, struct pollfd *pfd)
{
	uint64_t deadline = clock_now_ns() + FANOUT_JOIN_WAIT_NS;
	for (;;) {
		int joined = atomic_load(&r->joined);
		if (joined <= 1 || atomic_load(&r->hello_max) + 1 >= joined ||
		    atomic_load(&g_interrupt))
			return;
		if (clock_now_ns() >= deadline) {
			warn("only %d of %d members seen in the room after %llu s: starting anyway "
			     "(the loss counts the members still out)",
			     atomic_load(&r->hello_max) + 1, joined,
			     (unsigned long long)(FANOUT_JOIN_WAIT_NS / NS_PER_S));
			return;
		}
		poll(pfd, 1, 10);
		uint64_t junk;
		ssize_t rr = read(r->evfd, &junk, sizeof(junk));
		(void)rr;
	}
}

int load_run(const struct load_cfg *cfg, struct load_result *res, char *err, size_t errlen)
{
	int rc = 0;
	memset(res, 0, sizeof(*res));
	struct run run;
	memset(&run, 0, sizeof(run));
	struct thr *ts = NULL;
	char *rep = NULL;
	uint32_t nt = cfg->threads ? cfg->threads : 1;
	uint32_t started = 0;
	struct hist *live_h = NULL;
	struct rusage ru0, ru1;
	int have_ru0 = 0;

	if (!cfg->client) {
		errbuf(err, errlen, "no protocol client given");
		return -EINVAL;
	}
	if (!cfg->conns || nt > cfg->conns) {
		errbuf(err, errlen, "need at least as many connections as threads");
		return -EINVAL;
	}
	raise_nofile((uint64_t)cfg->conns + 64 * nt + 64);
	rc = probe(cfg, err, errlen);
	if (rc < 0)
		return rc;
	if (cfg->io != LOAD_IO_EPOLL) {
		char why[300];
		int r = uio_probe(why, sizeof(why));
		if (r < 0 && cfg->io == LOAD_IO_URING) {
			errbuf(err, errlen, "--io uring: %s", why);
			return r;
		}
		if (r < 0)
			info("--io auto: %s: using epoll", why);
		run.uring = r == 0;
	}
	res->io = run.uring ? "uring" : "epoll";

	run.cfg = cfg;
	run.client = cfg->client;
	run.flags = cfg->client->flags;
	run.conn_per_req = (run.flags & LOAD_C_KEEPALIVE) && !cfg->keepalive;
	run.pipeline = cfg->pipeline ? cfg->pipeline : 1;
	if (run.conn_per_req)
		run.pipeline = 1;
	run.msg_len = cfg->msg_len ? cfg->msg_len : 1;
	double rate = cfg->rate_per_s;
	if (cfg->bandwidth_bps > 0)
		rate = cfg->bandwidth_bps / (8.0 * (double)run.msg_len) * cfg->conns;
	if ((run.flags & LOAD_C_FANOUT) && rate <= 0)
		rate = 10.0 * cfg->conns;
	run.paced = rate > 0;
	res->target_rate_per_s = rate;

	/* the fixed message repeated: pipeline+1 copies (any write position has `pipeline`
	 * contiguous copies after it), or >= 64 KiB for an unpaced sink */
	size_t copies = run.pipeline + 1;
	if (run.flags & LOAD_C_SENDONLY) {
		copies = SINK_CHUNK_BYTES / run.msg_len + 2;
	}
	if (!(run.flags & LOAD_C_FANOUT)) {
		if (!cfg->msg || !cfg->msg_len) {
			errbuf(err, errlen, "no message to send");
			return -EINVAL;
		}
		rep = malloc(copies * run.msg_len);
		if (!rep) {
			errbuf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		for (size_t i = 0; i < copies; i++)
			memcpy(rep + i * run.msg_len, cfg->msg, run.msg_len);
		run.rep = rep;
		run.rep_len = copies * run.msg_len;
	}

	run.evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (run.evfd < 0) {
		rc = -errno;
		errbuf(err, errlen, "eventfd: %s", strerror(errno));
		goto out;
	}
	atomic_store(&g_interrupt, 0);
	g_evfd = run.evfd;

	if (cfg->interval_ns) {
		/* one histogram per interval of the window, at most LOAD_MAX_INTERVALS (wider
		 * intervals when the window needs more); -n runs: answers past the last
		 * interval go into it */
		uint64_t iv = cfg->interval_ns, d = cfg->duration_ns;
		if (d && (d + iv - 1) / iv > LOAD_MAX_INTERVALS)
			iv = (d + LOAD_MAX_INTERVALS - 1) / LOAD_MAX_INTERVALS;
		run.interval_ns = iv;
		run.nintervals = d ? (int)((d + iv - 1) / iv) : LOAD_MAX_INTERVALS;
	}
	ts = calloc(nt, sizeof(*ts));
	if (!ts) {
		rc = -ENOMEM;
		goto oom;
	}
	uint32_t base = 0;
	/* the client states, each on a 16-byte boundary */
	size_t stride = (cfg->client->state_size + 15) & ~(size_t)15;
	for (uint32_t i = 0; i < nt; i++) {
		struct thr *t = &ts[i];
		t->run = &run;
		t->cfg = cfg;
		t->id = (int)i;
		t->n = cfg->conns / nt + (i < cfg->conns % nt);
		t->gbase = base;
		base += t->n;
		t->rate_per_s = rate * t->n / cfg->conns;
		if (cfg->requests)
			t->quota = cfg->requests / nt + (i < cfg->requests % nt);
		pthread_mutex_init(&t->mu, NULL);
		t->conns = calloc(t->n, sizeof(*t->conns));
		t->rings = calloc((size_t)t->n * run.pipeline, sizeof(uint64_t));
		if (stride)
			t->cstates = calloc(t->n, stride);
		t->rbuf = malloc(RBUF_BYTES);
		t->lat = hist_new();
		t->lat_unc = hist_new();
		if (cfg->live)
			t->snap_lat = hist_new();
		if (run.nintervals) {
			t->ivl = calloc((size_t)run.nintervals, sizeof *t->ivl);
			for (int k = 0; t->ivl && k < run.nintervals; k++)
				if (!(t->ivl[k] = hist_new())) {
					rc = -ENOMEM;
					goto oom;
				}
			if (!t->ivl) {
				rc = -ENOMEM;
				goto oom;
			}
		}
		if (!t->conns || !t->rings || !t->rbuf || !t->lat || !t->lat_unc ||
		    (stride && !t->cstates) ||
		    (cfg->live && !t->snap_lat)) {
			rc = -ENOMEM;
			goto oom;
		}
		for (uint32_t k = 0; k < t->n; k++) {
			struct conn *c = &t->conns[k];
			c->t = t;
			c->fd = -1;
			c->idx = k;
			c->gidx = t->gbase + k;
			c->ring = t->rings + (size_t)k * run.pipeline;
			c->cst = stride ? t->cstates + (size_t)k * stride : NULL;
		}
	}
	if (cfg->live && !(live_h = hist_new())) {
		rc = -ENOMEM;
		goto oom;
	}

	/* threads inherit a mask without SIGINT/SIGTERM: the caller's handler runs here */
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	for (; started < nt; started++) {
		int e = pthread_create(&ts[started].th, NULL, thr_main, &ts[started]);
		if (e) {
			rc = -e;
			errbuf(err, errlen, "cannot start a thread: %s", strerror(e));
			break;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (started < nt) {
		atomic_store(&run.phase, PH_STOP);
		goto join;
	}

	/* connect phase: wait until every thread has its connections up (or refused) */
	struct pollfd pfd = {.fd = run.evfd, .events = POLLIN};
	while (atomic_load(&run.ready) < nt && !atomic_load(&g_interrupt)) {
		poll(&pfd, 1, 100);
		uint64_t junk;
		ssize_t rr = read(run.evfd, &junk, sizeof(junk));
		(void)rr;
	}
	if (run.flags & LOAD_C_FANOUT)
		fanout_join_wait(&run, &pfd);
	uint64_t now = clock_now_ns();
	run.t0_ns = now + (run.flags & LOAD_C_FANOUT ? FANOUT_SETTLE_NS : 0);
	run.measure_ns = run.t0_ns + cfg->warmup_ns;
	run.end_ns = cfg->duration_ns ? run.measure_ns + cfg->duration_ns : 0;
	atomic_store_explicit(&run.phase, atomic_load(&g_interrupt) ? PH_STOP : PH_RUN,
			      memory_order_release);
	if (cfg->announce_window) {
		/* at t0 (the threads start on their own): the warm-up starts now */
		clock_sleep_until_ns(run.t0_ns, 0);
		static const char line[] = LOAD_WINDOW_LINE "\n";
		if (write(STDOUT_FILENO, line, sizeof line - 1) < 0) {
			/* the run reads it; a closed stdout ends the run's wait by EOF */
		}
	}

	uint64_t next_live = run.measure_ns + NS_PER_S;
	uint64_t last_ok = 0;
	double last_s = 0;
	int stopping = 0;
	while (atomic_load(&run.finished) < nt) {
		now = clock_now_ns();
		if (!have_ru0 && now >= run.measure_ns) {
			getrusage(RUSAGE_SELF, &ru0);
			res->start_wall_ns = clock_wall_ns();
			have_ru0 = 1;
		}
		if (!stopping && atomic_load(&g_interrupt)) {
			stopping = 1;
			res->interrupted = 1;
			atomic_store(&run.phase, PH_STOP);
			for (uint32_t i = 0; i < nt; i++)
				if (ts[i].loop)
					ev_stop(ts[i].loop);
		}
		if (!stopping && run.end_ns && now > run.end_ns + FANOUT_DRAIN_NS + 5 * NS_PER_S) {
			/* a thread did not end on its own: never hang */
			stopping = 1;
			atomic_store(&run.phase, PH_STOP);
			for (uint32_t i = 0; i < nt; i++)
				if (ts[i].loop)
					ev_stop(ts[i].loop);
		}
		if (cfg->live && now >= next_live) {
			live_line(ts, nt, live_h, (double)(now - run.measure_ns) / 1e9, &last_ok,
				  &last_s);
			next_live += NS_PER_S;
		}
		uint64_t wake = have_ru0 ? (cfg->live ? next_live : now + NS_PER_S) : run.measure_ns;
		int ms = wake > now ? (int)((wake - now) / NS_PER_MS) + 1 : 0;
		if (ms > 1000)
			ms = 1000;
		poll(&pfd, 1, ms);
		uint64_t junk;
		ssize_t rr = read(run.evfd, &junk, sizeof(junk));
		(void)rr;
	}
	if (cfg->live)
		fprintf(stderr, "\r\033[K");
join:
	for (uint32_t i = 0; i < started; i++)
		pthread_join(ts[i].th, NULL);
	getrusage(RUSAGE_SELF, &ru1);
	if (started < nt)
		goto out;
	if (!have_ru0) {
		ru0 = ru1;
		res->start_wall_ns = clock_wall_ns();
	}
	res->cpu_user_s = tv_s(ru1.ru_utime) - tv_s(ru0.ru_utime);
	res->cpu_sys_s = tv_s(ru1.ru_stime) - tv_s(ru0.ru_stime);

	res->lat = hist_new();
	res->lat_unc = hist_new();
	if (!res->lat || !res->lat_unc) {
		rc = -ENOMEM;
		goto oom;
	}
	if (run.nintervals) {
		res->ivl = calloc((size_t)run.nintervals, sizeof *res->ivl);
		if (!res->ivl) {
			rc = -ENOMEM;
			goto oom;
		}
		res->nintervals = run.nintervals;
		res->interval_ns = run.interval_ns;
		for (int k = 0; k < run.nintervals; k++) {
			if (!(res->ivl[k] = hist_new())) {
				rc = -ENOMEM;
				goto oom;
			}
			for (uint32_t i = 0; i < nt; i++)
				hist_merge(res->ivl[k], ts[i].ivl[k]);
		}
	}
	uint64_t last = 0;
	for (uint32_t i = 0; i < nt; i++) {
		struct thr *t = &ts[i];
		add_stats(res, &t->st);
		hist_merge(res->lat, t->lat);
		hist_merge(res->lat_unc, run.paced ? t->lat_unc : t->lat);
		if (t->finish_ns > last)
			last = t->finish_ns;
		if (t->reason[0] && !res->stop_reason[0] &&
		    (t->alive == 0 || strstr(t->reason, "went away")))
			snprintf(res->stop_reason, sizeof(res->stop_reason), "%s", t->reason);
		if (t->err && !rc) {
			rc = t->err;
			if (t->reason[0] && strstr(t->reason, "io_uring"))
				errbuf(err, errlen, "%s (use --io epoll)", t->reason);
			else
				errbuf(err, errlen, "event loop failure: %s", strerror(-t->err));
		}
	}
	if ((run.flags & LOAD_C_SENDONLY) && !run.paced)
		res->messages_sent = res->bytes_sent / run.msg_len;
	if (run.flags & LOAD_C_SENDONLY)
		res->requests = res->messages_sent;
	if (run.flags & LOAD_C_FANOUT)
		res->requests = res->chat_delivered;
	if (run.end_ns && last > run.end_ns && !res->interrupted)
		last = run.end_ns; /* chat drain is not part of the window */
	res->duration_s = last > run.measure_ns ? (double)(last - run.measure_ns) / 1e9 : 0;
	res->ports_exhausted = atomic_load(&run.ports_exhausted);
	goto out;
oom:
	errbuf(err, errlen, "out of memory for %u connections", cfg->conns);
out:
	g_evfd = -1;
	if (ts) {
		for (uint32_t i = 0; i < nt; i++) {
			struct thr *t = &ts[i];
			if (t->loop)
				ev_free(t->loop);
			if (t->conns)
				for (uint32_t k = 0; k < t->n; k++) {
					if (t->conns[k].cst && cfg->client->fini)
						cfg->client->fini(t->conns[k].cst);
					buf_free(&t->conns[k].out);
					buf_free(&t->conns[k].fly);
				}
			free(t->conns);
			free(t->cstates);
			free(t->rings);
			free(t->rbuf);
			hist_free(t->lat);
			hist_free(t->lat_unc);
			hist_free(t->snap_lat);
			for (int k = 0; t->ivl && k < run.nintervals; k++)
				hist_free(t->ivl[k]);
			free(t->ivl);
			pthread_mutex_destroy(&t->mu);
		}
		free(ts);
	}
	hist_free(live_h);
	if (run.evfd > 0)
		close(run.evfd);
	free(rep);
	if (rc < 0)
		load_result_release(res);
	return rc;
}

void load_result_release(struct load_result *res)
{
	hist_free(res->lat);
	hist_free(res->lat_unc);
	res->lat = res->lat_unc = NULL;
	for (int k = 0; res->ivl && k < res->nintervals; k++)
		hist_free(res->ivl[k]);
	free(res->ivl);
	res->ivl = NULL;
	res->nintervals = 0;
}
