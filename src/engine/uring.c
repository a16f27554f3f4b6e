/* uring: completion-based event loops on io_uring (liburing), one ring per worker thread,
 * each with its own SO_REUSEPORT listener when --workers > 1 (like the epoll engine).
 *
 * Everything a connection does is an SQE: accept (multishot when the kernel has it, else one
 * accept re-armed after each completion), recv (multishot: armed once, a completion per
 * arrival, until it ends or is cancelled), send; the stop eventfd is watched by a poll SQE
 * and the idle/header timeouts by a timeout SQE that re-arms itself (a sweep every 1/8 of
 * the shortest timeout, 10..1000 ms, only when a timeout is set). A loop turn is one
 * io_uring_submit_and_wait: the SQEs of the previous turn go in, completions come out. So a
 * keep-alive request costs one SQE (its send) and, under load, well under one system call.
 *
 * The ring, best first (each fallback says so once, through info):
 *   - SINGLE_ISSUER|DEFER_TASKRUN (Linux 6.1+): completions' task work runs only when the
 *     worker waits, in one batch. Created disabled (R_DISABLED) by the thread that runs
 *     econn_srv_run's inits and enabled by the worker's own thread (the single issuer) in
 *     worker_start, which arms the first SQEs. Else COOP_TASKRUN (5.19+), else no flag.
 *   - Direct descriptors (5.19+): connections are accepted into a sparse registered file
 *     table (one slot per connection the worker may hold: --max-conns, at most
 *     RLIMIT_NOFILE), used with IOSQE_FIXED_FILE and closed with IORING_OP_CLOSE; they have
 *     no fd (a monitor's fd and socket counts leave them out). TCP_NODELAY is set once on the
 *     listener (accepted sockets inherit it). The FIN of a closing connection goes when its
 *     slot is closed, after its last op completed (an IORING_OP_SHUTDOWN would run on an
 *     io-wq thread). A table the kernel refuses: fds, as before.
 *   - Multishot recv (6.0+): a kernel without it fails the first one with EINVAL; the worker
 *     then receives with one recv per completion.
 *   - --sqpoll (cfg->sqpoll, not the default): SQPOLL, a kernel thread per ring (iou-sqp-PID,
 *     a thread of the server: its CPU is in the server's) that takes SQEs without
 *     io_uring_enter, pinned (SQ_AFF) to the n-th CPU the server may run on; waiting for
 *     completions still enters the kernel. No DEFER_TASKRUN with it (the kernel refuses).
 * Test seams, each making the kernel refuse exactly as an old one does, so the detection and
 * the fallback run (any value but empty or "0"): CTXLAB_URING_NO_DEFER_TASKRUN (a setup flag
 * no kernel knows), CTXLAB_URING_NO_DIRECT (a table larger than any kernel allows),
 * CTXLAB_URING_NO_MULTISHOT_RECV (a recv flag no kernel knows) and, below,
 * CTXLAB_URING_NO_MULTISHOT (accept).
 *
 * A kernel without multishot accept (before 5.19) fails the first multishot accept with
 * EINVAL: the worker then says so once (info) and accepts one connection at a time.
 * Test seam: the environment variable CTXLAB_URING_NO_MULTISHOT=1 (any value but empty or
 * "0") forces that single-shot path on any kernel: each worker's multishot accept carries an
 * accept flag no kernel knows, which every kernel rejects with EINVAL exactly as an old one
 * rejects the multishot flag, so the detection and the fallback both run. Provided-buffer
 * rings have no fallback (a kernel without them lacks multishot accept too): without them
 * the engine does not start (ring_error names the reason).
 *
 * Buffers: the same ENGINE_READ_BUF as every engine. A recv does not name a buffer: it picks
 * one from the worker's provided-buffer ring (URING_NBUFS buffers of ENGINE_READ_BUF, Linux
 * 5.19+), so idle connections hold no read buffer, as with epoll's per-worker buffer. A
 * completion feeds the protocol straight from that buffer and gives it back at once; only a
 * partial request is copied into the connection's own input buffer (then the next data is
 * appended to it and fed from there). A recv that finds the ring empty (-ENOBUFS) is re-armed
 * after the current batch of completions returned its buffers.
 *
 * Write strategy, as in the other engines: per completed recv one feed of all complete input
 * and one send of everything it produced. A connection has at most one recv and one send in
 * flight; output produced while a send is in flight waits in `out` and goes in the next send
 * (the in-flight bytes live in `sending`, which nothing appends to). Receiving pauses while
 * more than ECONN_OUT_HIGH_BYTES wait, so a client that does not read cannot make the server
 * buffer without bound: a multishot recv is cancelled then (its completions already posted
 * are still fed: at most a batch more), and armed again once the output drains; the same
 * when the input ends (closing: data after that is dropped). Nothing is allocated per
 * request.
 *
 * Closing: a connection with an op in flight cannot be freed; it is cancelled
 * (IORING_OP_ASYNC_CANCEL by user_data) and freed when its last completion arrives.
 * EMFILE/ENFILE on accept: accepting pauses for 100 ms (a timeout SQE), then is re-armed.
 *
 * Chat: rooms are room.h's in-process room set; chat runs with ONE worker (a --workers value
 * above 1 is reduced to 1 with a warning), so rooms need no locking and a delivery appends to
 * the receiver's output and marks it for a send after the current batch of completions.
 *
 * If io_uring cannot be set up (kernel.io_uring_disabled, a container's seccomp profile, an
 * old kernel), serve exits 1 before listening with a message naming the reason.
 */
#include "engine/engine.h"

#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "engine/econn.h"
#include "engine/room.h"

#define RING_ENTRIES 1024
#define URING_NBUFS 128 /* provided read buffers per worker (a power of two) */
#define BGID 1
/* an accept flag (in sqe->ioprio) that no kernel knows: every kernel fails the accept with
 * EINVAL, as one without multishot accept fails IORING_ACCEPT_MULTISHOT (the test seam) */
#define ACCEPT_UNKNOWN_FLAG (1U << 15)
/* the same for recv (its flags are in sqe->ioprio too): the multishot recv seam */
#define RECV_UNKNOWN_FLAG (1U << 15)
/* a setup flag that no kernel knows: io_uring_setup fails with EINVAL, as one without
 * DEFER_TASKRUN does (the DEFER_TASKRUN seam) */
#define SETUP_UNKNOWN_FLAG (1U << 31)
#define URING_SQPOLL_IDLE_MS 50 /* --sqpoll: the kernel thread sleeps after this long idle */

/* user_data: a 16-byte aligned object | op */
enum {
	OP_NONE = 0,    /* completions nobody waits for (cancels) */
	OP_RECV,
	OP_SEND,
	OP_ACCEPT,
	OP_STOP,
	OP_SWEEP,
	OP_RESUME,      /* the EMFILE pause is over */
	OP_GRACE,       /* the stop grace is over */
	OP_MASK = 15,
};

struct uworker;

struct uconn {
	int fd;
	int overflowed;    /* chat: over max_outbuf; send the reason and close */
	int dead;          /* closed: waiting for its ops' completions to free it */
	int recv_armed, send_armed;
	int recv_multi;    /* the armed recv is multishot: it stays armed across completions */
	int recv_cancelling; /* its multishot recv is being cancelled (backpressure, closing) */
	int starved;       /* its recv found no buffer: on the worker's starved list */
	int dirty;         /* on the worker's dirty list (chat deliveries) */
	struct uworker *w;
	LIST_ENTRY(uconn) link;      /* worker's live connections, or its dead ones */
	SLIST_ENTRY(uconn) dirty_link, starved_link;
	struct econn e;     /* input, timeouts, closing (close once everything is sent) */
	struct buf out;     /* output not yet handed to a send */
	struct buf sending; /* the in-flight send's bytes */
	struct room_member member;
	struct proto_env env;
	_Alignas(16) unsigned char state[];
};

struct uworker {
	_Alignas(16) struct econn_srv *s;
	struct io_uring ring;
	int ring_ok;
	int lfd;
	int stop_fd;
	struct io_uring_buf_ring *br;
	size_t br_bytes;
	char *bufs;
	int multishot;      /* multishot accept works here */
	int no_multishot;   /* CTXLAB_URING_NO_MULTISHOT: make multishot accept fail (a seam) */
	int recv_ms;        /* multishot recv is used (until a kernel rejects it) */
	int recv_ms_ok;     /* a multishot recv succeeded here: an EINVAL is not "unsupported" */
	int no_recv_ms;     /* CTXLAB_URING_NO_MULTISHOT_RECV: make multishot recv fail (a seam) */
	int defer;          /* the ring runs with SINGLE_ISSUER|DEFER_TASKRUN (enabled by its thread) */
	int direct;         /* connections are direct descriptors: slots of the ring's file table */
	int started;        /* worker_run armed the accept: the ring is live */
	uint64_t now_ns;    /* the clock when the current batch of completions came out: the
			     * time of every input and send in it (one clock read per loop turn) */
	int accept_armed;
	int accept_seen;    /* a completion of the current accept arrived */
	int stopping;
	int done;
	LIST_HEAD(, uconn) conns, dead;
	size_t nconns;
	SLIST_HEAD(uconn_queue, uconn) dirty, starved;
	struct __kernel_timespec sweep_ts, pause_ts, grace_ts;
};

static atomic_int single_shot_said; /* the fallback was reported (once per process) */
static atomic_int recv_single_said, defer_said; /* the same, for multishot recv, DEFER_TASKRUN */
static atomic_int direct_said;                  /* and for direct descriptors */

static void *ud_of(const void *obj, int op)
{
	return (void *)((uintptr_t)obj | (uintptr_t)op);
}

static struct io_uring_sqe *get_sqe(struct uworker *w)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
	while (!sqe) {
		io_uring_submit(&w->ring);
		sqe = io_uring_get_sqe(&w->ring);
	}
	return sqe;
}

/* A connection's socket is a direct descriptor (a slot of the ring's registered file table:
 * no fd, no fget/fput per op, IOSQE_FIXED_FILE) or, without them, an fd. Call after the
 * io_uring_prep_* (which clears sqe->flags). */
static void sock_sqe(const struct uworker *w, struct io_uring_sqe *sqe)
{
	if (w->direct)
		sqe->flags |= IOSQE_FIXED_FILE;
}

/* Closes a connection's socket. A direct one: IORING_OP_CLOSE of its slot (nobody waits for
 * the completion); nothing once the ring is gone (its exit closed every slot). */
static void sock_close(struct uworker *w, int fd)
{
	if (!w->direct) {
		close(fd);
		return;
	}
	if (!w->ring_ok)
		return;
	struct io_uring_sqe *sqe = get_sqe(w);
	io_uring_prep_close_direct(sqe, (unsigned)fd);
	io_uring_sqe_set_data(sqe, NULL);
}

/* The FIN now, before the close that waits for in-flight ops: an fd only. A direct socket is
 * closed (its slot) once its last op completed, which sends the FIN then; an
 * IORING_OP_SHUTDOWN would run on an io-wq thread (it always goes async). */
static void sock_shutdown_wr(struct uworker *w, int fd)
{
	if (!w->direct)
		shutdown(fd, SHUT_WR);
}

static void cancel_op(struct uworker *w, const void *obj, int op)
{
	struct io_uring_sqe *sqe = get_sqe(w);
	io_uring_prep_cancel(sqe, ud_of(obj, op), 0);
	io_uring_sqe_set_data(sqe, NULL);
}

/* ---- connections ---------------------------------------------------------------------- */

/* Closes c's socket and frees it: no op of it is in flight (or the ring is gone). */
static void conn_release(struct uconn *c)
{
	sock_close(c->w, c->fd);
	econn_fini(&c->w->s->ec, &c->e, c->state);
	buf_free(&c->out);
	buf_free(&c->sending);
	free(c);
}

/* A closed connection's last completion arrived: off the dead list, freed. */
static void conn_free(struct uconn *c)
{
	LIST_REMOVE(c, link);
	conn_release(c);
}

static void unlink_lists(struct uconn *c)
{
	struct uworker *w = c->w;
	if (c->dirty) {
		SLIST_REMOVE(&w->dirty, c, uconn, dirty_link);
		c->dirty = 0;
	}
	if (c->starved) {
		SLIST_REMOVE(&w->starved, c, uconn, starved_link);
		c->starved = 0;
	}
}

/* Closes now (abort): cancels what is in flight; freed when nothing is. */
static void conn_close(struct uconn *c)
{
	struct uworker *w = c->w;
	struct econn_srv *s = w->s;
	if (c->dead)
		return;
	c->dead = 1;
	if (c->member.room)
		room_leave(s->rooms, &c->member);
	unlink_lists(c);
	LIST_REMOVE(c, link);
	LIST_INSERT_HEAD(&w->dead, c, link);
	w->nconns--;
	atomic_fetch_sub(&s->nconns, 1);
	if (c->recv_armed)
		cancel_op(w, c, OP_RECV);
	if (c->send_armed)
		cancel_op(w, c, OP_SEND);
	if (!c->recv_armed && !c->send_armed)
		conn_free(c);
}

/* Whether c should be receiving now: not closing, not starved, output below the mark. */
static int recv_wanted(const struct uconn *c)
{
	return !c->dead && !c->e.closing && !c->starved &&
	       buf_used(&c->out) + buf_used(&c->sending) < ECONN_OUT_HIGH_BYTES;
}

/* Brings c's recv in line with recv_wanted: arms one (multishot where the worker can) when it
 * has none, or cancels its multishot recv (which would go on receiving) when it should stop;
 * the cancelled recv's last completion clears recv_armed, and a later call re-arms. */
static void arm_recv(struct uconn *c)
{
	struct uworker *w = c->w;
	if (!recv_wanted(c)) {
		if (c->recv_armed && c->recv_multi && !c->recv_cancelling && !c->dead) {
			cancel_op(w, c, OP_RECV);
			c->recv_cancelling = 1;
		}
		return;
	}
	if (c->recv_armed)
		return;
	struct io_uring_sqe *sqe = get_sqe(w);
	if (w->recv_ms) {
		io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
		if (w->no_recv_ms)
			sqe->ioprio |= RECV_UNKNOWN_FLAG;
	} else {
		io_uring_prep_recv(sqe, c->fd, NULL, ENGINE_READ_BUF, 0);
	}
	sock_sqe(w, sqe);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data(sqe, ud_of(c, OP_RECV));
	c->recv_armed = 1;
	c->recv_multi = w->recv_ms;
	c->recv_cancelling = 0;
}

/* Starts a send of what is waiting, or finishes a closing connection; re-arms the recv. */
static void conn_kick(struct uconn *c)
{
	struct uworker *w = c->w;
	if (c->dead)
		return;
	if (c->overflowed)
		c->e.closing = 1;
	if (!c->send_armed) {
		if (!buf_used(&c->sending) && buf_used(&c->out)) {
			struct buf t = c->sending;
			c->sending = c->out;
			c->out = t;
			buf_clear(&c->out);
		}
		if (buf_used(&c->sending)) {
			struct io_uring_sqe *sqe = get_sqe(w);
			io_uring_prep_send(sqe, c->fd, buf_head(&c->sending), buf_used(&c->sending),
					   MSG_NOSIGNAL);
			sock_sqe(w, sqe);
			io_uring_sqe_set_data(sqe, ud_of(c, OP_SEND));
			c->send_armed = 1;
		} else if (c->e.closing) {
			sock_shutdown_wr(w, c->fd);
			conn_close(c);
			return;
		}
	}
	arm_recv(c);
}

static void mark_dirty(struct uconn *c)
{
	if (c->dirty)
		return;
	c->dirty = 1;
	SLIST_INSERT_HEAD(&c->w->dirty, c, dirty_link);
}

/* room delivery (one worker: the publisher's thread is the owner's) */
static void conn_deliver(struct room_member *m, const char *msg, size_t len)
{
	struct uconn *t = (struct uconn *)((char *)m - offsetof(struct uconn, member));
	if (t->dead || t->overflowed)
		return;
	if (econn_deliver(&t->w->s->ec, t->state, &t->out, buf_used(&t->sending), msg, len) < 0)
		t->overflowed = 1;
	mark_dirty(t);
}

static void buf_give_back(struct uworker *w, unsigned bid)
{
	io_uring_buf_ring_add(w->br, w->bufs + (size_t)bid * ENGINE_READ_BUF, ENGINE_READ_BUF,
			      (unsigned short)bid, io_uring_buf_ring_mask(URING_NBUFS), 0);
	io_uring_buf_ring_advance(w->br, 1);
}

static void on_recv(struct uworker *w, struct uconn *c, int res, unsigned flags)
{
	const char *data = NULL;
	int bid = -1;
	int was_multi = c->recv_multi;
	if (!(flags & IORING_CQE_F_MORE)) { /* the recv is over (a multishot one: ended) */
		c->recv_armed = 0;
		c->recv_cancelling = 0;
	}
	if (flags & IORING_CQE_F_BUFFER) {
		bid = (int)(flags >> IORING_CQE_BUFFER_SHIFT);
		data = w->bufs + (size_t)bid * ENGINE_READ_BUF;
	}
	if (c->dead) {
		if (bid >= 0)
			buf_give_back(w, (unsigned)bid);
		if (!c->recv_armed && !c->send_armed)
			conn_free(c);
		return;
	}
	if (res == -EINVAL && was_multi && w->recv_ms && !w->recv_ms_ok) {
		/* a kernel without multishot recv (before 6.0): one recv at a time */
		w->recv_ms = 0;
		if (!atomic_exchange(&recv_single_said, 1))
			info("uring: no multishot recv here (Linux < 6.0%s); receiving with one recv "
			     "per completion",
			     w->no_recv_ms ? ", or CTXLAB_URING_NO_MULTISHOT_RECV is set" : "");
	}
	if (res == -EINVAL && was_multi && !w->recv_ms) {
		arm_recv(c);
		return;
	}
	if (res >= 0 && was_multi)
		w->recv_ms_ok = 1;
	if (res == -ENOBUFS) { /* no read buffer free: again after this batch */
		if (!c->recv_armed && !c->starved) {
			c->starved = 1;
			SLIST_INSERT_HEAD(&w->starved, c, starved_link);
		}
		return;
	}
	if (res < 0 || (res > 0 && !data)) {
		if (bid >= 0)
			buf_give_back(w, (unsigned)bid);
		if (res == -EINTR || res == -EAGAIN || res == -ECANCELED) {
			arm_recv(c); /* a cancelled multishot recv: re-armed when wanted */
			return;
		}
		conn_close(c);
		return;
	}
	if (res == 0) { /* the peer is done sending: answer what is complete, then close */
		if (bid >= 0)
			buf_give_back(w, (unsigned)bid);
		c->e.closing = 1;
		buf_clear(&c->e.in);
		c->e.partial_since_ns = 0;
		conn_kick(c);
		return;
	}
	if (c->e.closing) { /* a multishot recv's data after the input ended: dropped */
		buf_give_back(w, (unsigned)bid);
		conn_kick(c);
		return;
	}
	/* fed straight from the provided buffer, which goes back at once */
	int r = econn_input(&w->s->ec, &c->e, c->state, data, (size_t)res, &c->out, w->now_ns);
	buf_give_back(w, (unsigned)bid);
	if (r < 0) {
		conn_close(c);
		return;
	}
	conn_kick(c);
}

static void on_send(struct uconn *c, int res)
{
	c->send_armed = 0;
	if (c->dead) {
		if (!c->recv_armed)
			conn_free(c);
		return;
	}
	if (res < 0 && res != -EINTR && res != -EAGAIN) {
		conn_close(c);
		return;
	}
	if (res > 0) {
		buf_consume(&c->sending, (size_t)res);
		c->e.last_ns = c->w->now_ns;
	}
	conn_kick(c);
}

static void conn_new(struct uworker *w, int fd)
{
	struct econn_srv *s = w->s;
	struct uconn *c = calloc(1, sizeof(*c) + s->ec.p->state_size);
	if (!c) {
		sock_close(w, fd);
		atomic_fetch_sub(&s->nconns, 1);
		return;
	}
	c->fd = fd;
	c->w = w;
	c->e.last_ns = w->now_ns;
	c->member.deliver = conn_deliver;
	c->member.set = s->rooms;
	econn_env_init(&c->env, s->ec.cfg, atomic_fetch_add(&s->next_id, 1), &c->member,
		       room_env_join, room_env_publish);
	LIST_INSERT_HEAD(&w->conns, c, link);
	w->nconns++;
	if (!w->direct) /* a direct socket has the listener's TCP_NODELAY (Linux inherits it) */
		net_set_nodelay(fd, 1);
	if (s->ec.p->init(c->state, &c->env) < 0) {
		c->e.closing = 1;
		conn_kick(c);
		return;
	}
	conn_kick(c); /* a greeting, or deliveries made while joining; and the first recv */
}

/* ---- accept, stop, timers ------------------------------------------------------------- */

static void arm_accept(struct uworker *w)
{
	if (w->stopping || w->lfd < 0 || w->accept_armed)
		return;
	struct io_uring_sqe *sqe = get_sqe(w);
	if (w->multishot && w->direct)
		io_uring_prep_multishot_accept_direct(sqe, w->lfd, NULL, NULL, 0);
	else if (w->multishot)
		io_uring_prep_multishot_accept(sqe, w->lfd, NULL, NULL, SOCK_CLOEXEC);
	else if (w->direct)
		/* liburing 2.3 stores the index + 1 (0 = not direct): ALLOC - 1 asks for a free
		 * slot, as its own io_uring_prep_multishot_accept_direct does */
		io_uring_prep_accept_direct(sqe, w->lfd, NULL, NULL, 0, IORING_FILE_INDEX_ALLOC - 1);
	else
		io_uring_prep_accept(sqe, w->lfd, NULL, NULL, SOCK_CLOEXEC);
	if (w->multishot && w->no_multishot)
		sqe->ioprio |= ACCEPT_UNKNOWN_FLAG;
	io_uring_sqe_set_data(sqe, ud_of(w, OP_ACCEPT));
	w->accept_armed = 1;
	w->accept_seen = 0;
}

static void set_ts(struct __kernel_timespec *ts, uint64_t ns)
{
	ts->tv_sec = (long long)(ns / NS_PER_S);
	ts->tv_nsec = (long long)(ns % NS_PER_S);
}

static void arm_timeout(struct uworker *w, struct __kernel_timespec *ts, uint64_t ns, int op)
{
	set_ts(ts, ns);
	struct io_uring_sqe *sqe = get_sqe(w);
	io_uring_prep_timeout(sqe, ts, 0, 0);
	io_uring_sqe_set_data(sqe, ud_of(w, op));
}

static void on_accept(struct uworker *w, int res, unsigned flags)
{
	struct econn_srv *s = w->s;
	int more = (flags & IORING_CQE_F_MORE) != 0;
	int first = !w->accept_seen;
	w->accept_seen = 1;
	if (!more)
		w->accept_armed = 0;
	if (res >= 0) {
		if (w->stopping) {
			sock_close(w, res);
		} else if (econn_full(s->ec.cfg, atomic_fetch_add(&s->nconns, 1))) {
			atomic_fetch_sub(&s->nconns, 1);
			sock_close(w, res);
		} else {
			conn_new(w, res);
		}
		arm_accept(w);
		return;
	}
	if (res == -EINVAL && first && w->multishot && !w->stopping) {
		/* a kernel without multishot accept: one accept at a time */
		w->multishot = 0;
		if (!atomic_exchange(&single_shot_said, 1))
			info("uring: no multishot accept here (Linux < 5.19%s); accepting one "
			     "connection at a time",
			     w->no_multishot ? ", or CTXLAB_URING_NO_MULTISHOT is set" : "");
		arm_accept(w);
		return;
	}
	if (w->stopping || res == -ECANCELED)
		return;
	if (econn_accept_error(res) == ECONN_ACCEPT_PAUSE) {
		/* out of descriptors: pause instead of spinning on a full backlog */
		if (!w->accept_armed)
			arm_timeout(w, &w->pause_ts, ECONN_ACCEPT_PAUSE_NS, OP_RESUME);
		return;
	}
	arm_accept(w);
}

static void maybe_finish(struct uworker *w)
{
	if (w->stopping && w->nconns == 0)
		w->done = 1;
}

static void on_stop(struct uworker *w)
{
	if (w->stopping)
		return;
	w->stopping = 1;
	if (w->lfd >= 0) {
		/* stop listening now (an in-flight accept holds the socket open), then cancel it */
		shutdown(w->lfd, SHUT_RD);
		if (w->accept_armed)
			cancel_op(w, w, OP_ACCEPT);
		close(w->lfd);
		w->lfd = -1;
	}
	/* idle connections go now; those with output pending finish it */
	for (struct uconn *c = LIST_FIRST(&w->conns), *next; c; c = next) {
		next = LIST_NEXT(c, link);
		c->e.closing = 1;
		buf_clear(&c->e.in);
		if (c->recv_armed && !c->send_armed && !buf_used(&c->out)) {
			sock_shutdown_wr(w, c->fd);
			conn_close(c);
		} else {
			conn_kick(c);
		}
	}
	arm_timeout(w, &w->grace_ts, ENGINE_STOP_GRACE_NS, OP_GRACE);
	maybe_finish(w);
}

static void sweep(struct uworker *w)
{
	uint64_t now = clock_now_ns();
	for (struct uconn *c = LIST_FIRST(&w->conns), *next; c; c = next) {
		next = LIST_NEXT(c, link);
		if (econn_expired(&w->s->ec, &c->e, buf_used(&c->out) + buf_used(&c->sending), now))
			conn_close(c);
	}
}

static void handle(struct uworker *w, struct io_uring_cqe *cqe)
{
	uintptr_t ud = (uintptr_t)io_uring_cqe_get_data(cqe);
	int op = (int)(ud & OP_MASK);
	void *obj = (void *)(ud & ~(uintptr_t)OP_MASK);
	switch (op) {
	case OP_RECV:
		on_recv(w, obj, cqe->res, cqe->flags);
		break;
	case OP_SEND:
		on_send(obj, cqe->res);
		break;
	case OP_ACCEPT:
		on_accept(w, cqe->res, cqe->flags);
		break;
	case OP_STOP:
		on_stop(w);
		break;
	case OP_SWEEP:
		if (w->stopping)
			break;
		sweep(w);
		arm_timeout(w, &w->sweep_ts, w->s->ec.sweep_ns, OP_SWEEP);
		break;
	case OP_RESUME:
		arm_accept(w);
		break;
	case OP_GRACE:
		w->done = 1;
		break;
	default:
		break;
	}
}

static void after_batch(struct uworker *w)
{
	struct uconn *c;
	while ((c = SLIST_FIRST(&w->dirty))) {
		SLIST_REMOVE_HEAD(&w->dirty, dirty_link);
		c->dirty = 0;
		conn_kick(c);
	}
	/* the starved ones of this batch (a recv re-armed now may starve again: next batch) */
	struct uconn_queue starved = w->starved;
	SLIST_INIT(&w->starved);
	while ((c = SLIST_FIRST(&starved))) {
		SLIST_REMOVE_HEAD(&starved, starved_link);
		c->starved = 0;
		arm_recv(c);
	}
	maybe_finish(w);
}

static void reap_cqes(struct uworker *w)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	io_uring_for_each_cqe(&w->ring, head, cqe) {
		handle(w, cqe);
		n++;
	}
	io_uring_cq_advance(&w->ring, n);
}

/* Closes what is left (after the grace period) and waits, briefly, for the completions of
 * the cancelled ops, so that no buffer is freed while the kernel may still use it. */
static void worker_drain(struct uworker *w)
{
	w->stopping = 1;
	while (!LIST_EMPTY(&w->conns))
		conn_close(LIST_FIRST(&w->conns));
	uint64_t deadline = clock_now_ns() + 500 * NS_PER_MS;
	while (!LIST_EMPTY(&w->dead) && clock_now_ns() < deadline) {
		struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 50 * 1000000};
		struct io_uring_cqe *cqe;
		int r = io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, &ts, NULL);
		if (r < 0 && r != -ETIME && r != -EINTR)
			break;
		w->now_ns = clock_now_ns();
		reap_cqes(w);
	}
}

static int worker_start(struct uworker *w);

static void *worker_run(void *arg)
{
	struct uworker *w = arg;
	int r0 = worker_start(w);
	if (r0 < 0) {
		error("io_uring worker: cannot start: %s", strerror(-r0));
		engine_request_stop();
		w->done = 1;
	}
	while (!w->done) {
		int r = io_uring_submit_and_wait(&w->ring, 1);
		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
			error("io_uring worker: waiting failed: %s", strerror(-r));
			break;
		}
		w->now_ns = clock_now_ns();
		reap_cqes(w);
		after_batch(w);
	}
	worker_drain(w);
	return NULL;
}

/* ---- setup ---------------------------------------------------------------------------- */

/* The n-th CPU (modulo their count) of those this process may run on, or -1. */
static int nth_allowed_cpu(int n)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) < 0 || CPU_COUNT(&set) == 0)
		return -1;
	n %= CPU_COUNT(&set);
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, &set) && n-- == 0)
			return cpu;
	return -1;
}

/* The ring, best set-up first: --sqpoll: SQPOLL with its thread on one of the server's CPUs
 * (no fallback: the user asked for it); else SINGLE_ISSUER|DEFER_TASKRUN (Linux 6.1+;
 * R_DISABLED, enabled by the worker's own thread, the single issuer), else COOP_TASKRUN
 * (5.19+), else none: a kernel without a flag fails with EINVAL and the next is tried. */
static int ring_setup(struct uworker *w, int i, int no_defer, const char **what)
{
	struct io_uring_params p;
	int r;
	memset(&p, 0, sizeof(p));
	if (w->s->ec.cfg->sqpoll) {
		p.flags = IORING_SETUP_SQPOLL;
		p.sq_thread_idle = URING_SQPOLL_IDLE_MS;
		int cpu = nth_allowed_cpu(i);
		if (cpu >= 0) { /* else the kernel thread would run on any CPU */
			p.flags |= IORING_SETUP_SQ_AFF;
			p.sq_thread_cpu = (unsigned)cpu;
		}
		r = io_uring_queue_init_params(RING_ENTRIES, &w->ring, &p);
		if (r < 0)
			*what = "io_uring_queue_init with IORING_SETUP_SQPOLL (--sqpoll; Linux 5.11+ "
				"for unprivileged use)";
		return r;
	}
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED;
	if (no_defer)
		p.flags |= SETUP_UNKNOWN_FLAG;
	r = io_uring_queue_init_params(RING_ENTRIES, &w->ring, &p);
	if (r == 0) {
		w->defer = 1;
		return 0;
	}
	if (r == -EINVAL && !atomic_exchange(&defer_said, 1))
		info("uring: no IORING_SETUP_DEFER_TASKRUN here (Linux < 6.1%s); completions run "
		     "as cooperative task work",
		     no_defer ? ", or CTXLAB_URING_NO_DEFER_TASKRUN is set" : "");
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_COOP_TASKRUN;
	if (r == -EINVAL)
		r = io_uring_queue_init_params(RING_ENTRIES, &w->ring, &p);
	if (r == -EINVAL) { /* older kernel: no COOP_TASKRUN */
		memset(&p, 0, sizeof(p));
		r = io_uring_queue_init_params(RING_ENTRIES, &w->ring, &p);
	}
	if (r < 0)
		*what = "io_uring_queue_init";
	return r;
}

static int ring_init(struct uworker *w, int i, int no_defer, const char **what)
{
	int r = ring_setup(w, i, no_defer, what);
	if (r < 0)
		return r;
	w->ring_ok = 1;
	w->br_bytes = URING_NBUFS * sizeof(struct io_uring_buf);
	void *m = mmap(NULL, w->br_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1,
		       0);
	if (m == MAP_FAILED) {
		*what = "mmap of the buffer ring";
		return -errno;
	}
	w->br = m;
	w->bufs = malloc((size_t)URING_NBUFS * ENGINE_READ_BUF);
	if (!w->bufs) {
		*what = "read buffers";
		return -ENOMEM;
	}
	struct io_uring_buf_reg reg;
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (unsigned long)(uintptr_t)w->br;
	reg.ring_entries = URING_NBUFS;
	reg.bgid = BGID;
	r = io_uring_register_buf_ring(&w->ring, &reg, 0);
	if (r < 0) {
		*what = "io_uring_register_buf_ring (provided buffer rings need Linux 5.19+)";
		return r;
	}
	io_uring_buf_ring_init(w->br);
	for (unsigned b = 0; b < URING_NBUFS; b++)
		io_uring_buf_ring_add(w->br, w->bufs + (size_t)b * ENGINE_READ_BUF, ENGINE_READ_BUF,
				      (unsigned short)b, io_uring_buf_ring_mask(URING_NBUFS), (int)b);
	io_uring_buf_ring_advance(w->br, URING_NBUFS);
	return 0;
}

static void ring_error(const struct engine_cfg *cfg, int r, const char *what)
{
	const char *hint;
	if (r == -EPERM || r == -EACCES)
		hint = "io_uring is disabled here: kernel.io_uring_disabled is set or a seccomp "
		       "profile (e.g. a container's) blocks it; enable it (sysctl "
		       "kernel.io_uring_disabled=0, or allow io_uring_setup in the profile) or use "
		       "--engine epoll";
	else if (r == -ENOSYS)
		hint = "this kernel has no io_uring (or a seccomp filter hides it); use --engine "
		       "epoll";
	else if (r == -ENOMEM)
		hint = "not enough locked memory for the ring (raise ulimit -l) or use --engine "
		       "epoll";
	else
		hint = "the uring engine needs Linux 5.19+ with io_uring enabled; use --engine "
		       "epoll";
	engine_fail(cfg, "cannot set up io_uring (%s): %s (%s)", what, strerror(-r), hint);
}

/* Direct descriptors: a sparse file table of one slot per connection this worker may hold
 * (--max-conns, else the open-file limit; never above RLIMIT_NOFILE, which the kernel
 * enforces on the table). A kernel that refuses the table (before 5.19) leaves fds in use.
 * Seam: no_direct asks for a table larger than the kernel allows, which it refuses. */
static void direct_init(struct uworker *w, int no_direct)
{
	struct rlimit rl;
	unsigned n = 1024;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		n = rl.rlim_cur > (1U << 20) ? (1U << 20) : (unsigned)rl.rlim_cur;
	int max = w->s->ec.cfg->max_conns;
	if (max > 0 && (unsigned)max < n)
		n = (unsigned)max;
	if (no_direct)
		n = (1U << 20) + 1; /* over IORING_MAX_FIXED_FILES */
	int r = io_uring_register_files_sparse(&w->ring, n);
	if (r == 0) {
		w->direct = 1;
		return;
	}
	if (!atomic_exchange(&direct_said, 1))
		info("uring: no registered (direct) descriptors here (%s%s); connections use "
		     "file descriptors",
		     strerror(-r), no_direct ? ", CTXLAB_URING_NO_DIRECT is set" : "");
}

/* 1 when the environment variable `name` is set to anything but empty or "0" (a seam) */
static int env_on(const char *name)
{
	const char *v = getenv(name);
	return v && *v && strcmp(v, "0");
}

/* econn_srv_run's init (the calling thread, for every worker): the ring, its buffers and the
 * listener; 0, or -1 after engine_fail. The first SQEs wait for worker_start. */
static int worker_init(struct econn_srv *s, void *arg, int i, struct net_addr *bound)
{
	struct uworker *w = arg;
	w->s = s;
	w->lfd = -1;
	w->multishot = 1;
	w->no_multishot = env_on("CTXLAB_URING_NO_MULTISHOT");
	w->recv_ms = 1;
	w->no_recv_ms = env_on("CTXLAB_URING_NO_MULTISHOT_RECV");
	const char *what = "";
	int r = ring_init(w, i, env_on("CTXLAB_URING_NO_DEFER_TASKRUN"), &what);
	if (r < 0) {
		ring_error(s->ec.cfg, r, what);
		return -1;
	}
	direct_init(w, env_on("CTXLAB_URING_NO_DIRECT"));
	/* blocking sockets: io_uring never blocks on them, and retries through its own poll */
	w->lfd = econn_listen(s->ec.cfg, i, s->nworkers, 0, bound);
	if (w->lfd < 0)
		return -1;
	if (w->direct) /* accepted sockets inherit it: no setsockopt per connection */
		net_set_nodelay(w->lfd, 1);
	w->stop_fd = engine_stop_fd();
	return 0;
}

/* On the worker's own thread: enables a DEFER_TASKRUN ring (whose single issuer is the thread
 * that enables it), arms the accept, the stop poll and the sweep. 0 or -errno. */
static int worker_start(struct uworker *w)
{
	int r;
	/* io_uring_enable_rings is not exported by liburing 2.3: the system call itself */
	if (w->defer && syscall(__NR_io_uring_register, w->ring.ring_fd,
				IORING_REGISTER_ENABLE_RINGS, NULL, 0) < 0)
		return -errno;
	w->started = 1;
	w->now_ns = clock_now_ns();
	/* the ring's fd registered with this thread: io_uring_enter skips the fd lookup (Linux
	 * 5.18+; without it, the plain fd as before) */
	(void)io_uring_register_ring_fd(&w->ring);
	arm_accept(w);
	struct io_uring_sqe *sqe = get_sqe(w);
	io_uring_prep_poll_add(sqe, w->stop_fd, POLLIN);
	io_uring_sqe_set_data(sqe, ud_of(w, OP_STOP));
	if (w->s->ec.sweep_ns)
		arm_timeout(w, &w->sweep_ts, w->s->ec.sweep_ns, OP_SWEEP);
	r = io_uring_submit(&w->ring);
	return r < 0 ? r : 0;
}

static void worker_fini(void *arg)
{
	struct uworker *w = arg;
	/* a worker that never ran (its thread could not be started) still listens, with its
	 * accept in flight holding the socket open: leave the SO_REUSEPORT group now */
	if (w->lfd >= 0)
		shutdown(w->lfd, SHUT_RD);
	/* the ring goes first: that cancels every op, so no completion refers to a freed conn */
	if (w->ring_ok)
		io_uring_queue_exit(&w->ring);
	w->ring_ok = 0; /* and closed every direct descriptor */
	struct uconn *c;
	while ((c = LIST_FIRST(&w->conns))) {
		LIST_REMOVE(c, link);
		if (c->member.room)
			room_leave(w->s->rooms, &c->member);
		conn_release(c);
	}
	while ((c = LIST_FIRST(&w->dead))) {
		LIST_REMOVE(c, link);
		conn_release(c);
	}
	if (w->lfd >= 0)
		close(w->lfd);
	if (w->br)
		munmap(w->br, w->br_bytes);
	free(w->bufs);
}

/* chat: rooms are not shared across rings, so one worker */
static int uring_run(const struct engine_cfg *cfg)
{
	struct econn_srv s;
	return econn_srv_run(&s, cfg, 0, sizeof(struct uworker), worker_init, worker_run,
			     worker_fini);
}

const struct engine engine_uring = {
	.name = "uring",
	.summary = "io_uring completion loops (liburing); --workers N rings with SO_REUSEPORT",
	.run = uring_run,
};
