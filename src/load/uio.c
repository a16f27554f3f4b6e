#include "load/uio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"

#define BGID 0
#define UIO_BUF_BYTES (8 * 1024)
#define UIO_MIN_BUFS 256u
#define UIO_MAX_BUFS 2048u

static int seam_no_uring(void)
{
	const char *s = getenv("CTXLAB_LOAD_NO_URING");
	return s && *s && strcmp(s, "0");
}

static unsigned pow2_at_least(unsigned n, unsigned lo, unsigned hi)
{
	unsigned p = lo;
	while (p < n && p < hi)
		p <<= 1;
	return p;
}

static const char *hint_of(int r)
{
	if (r == -EPERM || r == -EACCES)
		return "io_uring is disabled here: kernel.io_uring_disabled is set or a seccomp "
		       "profile blocks it; enable it or use --io epoll";
	if (r == -ENOSYS)
		return "this kernel has no io_uring (or a seccomp filter hides it, or "
		       "CTXLAB_LOAD_NO_URING is set); use --io epoll";
	if (r == -ENOMEM)
		return "not enough locked memory for the ring (raise ulimit -l) or use --io epoll";
	return "the uring path needs Linux 5.19+ with io_uring enabled; use --io epoll";
}

/* A multishot recv on a socket pair: one byte must come back in a provided buffer, the recv
 * still armed (IORING_CQE_F_MORE). 0, or -errno. */
static int probe_multishot(struct uio *u)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	int r = uio_recv_multishot(u, sv[0], 1);
	if (r == 0 && write(sv[1], "x", 1) != 1)
		r = -errno;
	struct io_uring_cqe *cqe = NULL;
	if (r == 0)
		r = io_uring_submit_and_wait(&u->ring, 1);
	if (r >= 0)
		r = io_uring_peek_cqe(&u->ring, &cqe);
	if (r == 0) {
		if (cqe->res < 0)
			r = cqe->res;
		else if (cqe->res != 1 || !(cqe->flags & IORING_CQE_F_BUFFER) ||
			 !(cqe->flags & IORING_CQE_F_MORE))
			r = -EINVAL;
	}
	close(sv[0]);
	close(sv[1]);
	return r;
}

int uio_probe(char *err, size_t errlen)
{
	if (seam_no_uring()) {
		errbuf(err, errlen, "cannot set up io_uring: %s (%s)", strerror(ENOSYS),
		       hint_of(-ENOSYS));
		return -ENOSYS;
	}
	struct uio u;
	const char *what = "";
	int r = uio_init(&u, 1, &what);
	if (r == 0 && !(u.ring.features & IORING_FEAT_EXT_ARG)) {
		what = "IORING_FEAT_EXT_ARG (Linux 5.11+)";
		r = -EINVAL;
	}
	if (r == 0) {
		what = "multishot recv with provided buffers (Linux 6.0+)";
		r = probe_multishot(&u);
	}
	uio_fini(&u);
	if (r < 0)
		errbuf(err, errlen, "cannot set up io_uring (%s): %s (%s)", what, strerror(-r),
		       hint_of(r));
	return r;
}

int uio_init(struct uio *u, unsigned conns, const char **what)
{
	memset(u, 0, sizeof(*u));
	*what = "io_uring_queue_init";
	if (seam_no_uring())
		return -ENOSYS;
	/* SQ: a send, a recv and two cancels per connection may be queued in one turn; the SQ
	 * is submitted early when full. CQ: room for a turn's completions. */
	unsigned sq = pow2_at_least(conns * 2, 256, 4096);
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	p.cq_entries = sq * 4;
	int r = io_uring_queue_init_params(sq, &u->ring, &p);
	if (r == -EINVAL) { /* before 6.1: no SINGLE_ISSUER / DEFER_TASKRUN */
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = sq * 4;
		r = io_uring_queue_init_params(sq, &u->ring, &p);
	} else if (r == 0) {
		u->fast = 1;
	}
	if (r < 0)
		return r;
	u->ring_ok = 1;
	u->nbufs = pow2_at_least(conns * 2, UIO_MIN_BUFS, UIO_MAX_BUFS);
	u->buf_bytes = UIO_BUF_BYTES;
	u->br_bytes = u->nbufs * sizeof(struct io_uring_buf);
	void *m = mmap(NULL, u->br_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1,
		       0);
	if (m == MAP_FAILED) {
		*what = "mmap of the buffer ring";
		return -errno;
	}
	u->br = m;
	u->bufs = malloc((size_t)u->nbufs * u->buf_bytes);
	if (!u->bufs) {
		*what = "read buffers";
		return -ENOMEM;
	}
	struct io_uring_buf_reg reg;
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (unsigned long)(uintptr_t)u->br;
	reg.ring_entries = u->nbufs;
	reg.bgid = BGID;
	r = io_uring_register_buf_ring(&u->ring, &reg, 0);
	if (r < 0) {
		*what = "io_uring_register_buf_ring (provided buffer rings need Linux 5.19+)";
		return r;
	}
	io_uring_buf_ring_init(u->br);
	int mask = io_uring_buf_ring_mask(u->nbufs);
	for (unsigned i = 0; i < u->nbufs; i++)
		io_uring_buf_ring_add(u->br, u->bufs + (size_t)i * u->buf_bytes, u->buf_bytes,
				      (unsigned short)i, mask, (int)i);
	io_uring_buf_ring_advance(u->br, (int)u->nbufs);
	/* io_uring_enter by a registered ring index: no fd lookup per turn (5.18+; optional) */
	io_uring_register_ring_fd(&u->ring);
	*what = "";
	return 0;
}

void uio_fini(struct uio *u)
{
	if (u->ring_ok)
		io_uring_queue_exit(&u->ring);
	if (u->br)
		munmap(u->br, u->br_bytes);
	free(u->bufs);
	memset(u, 0, sizeof(*u));
}

static struct io_uring_sqe *get_sqe(struct uio *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	if (!sqe) {
		io_uring_submit(&u->ring);
		sqe = io_uring_get_sqe(&u->ring);
	}
	return sqe;
}

int uio_send(struct uio *u, int fd, const void *p, size_t len, uint64_t ud)
{
	struct io_uring_sqe *sqe = get_sqe(u);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_send(sqe, fd, p, len, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, ud);
	return 0;
}

int uio_recv_multishot(struct uio *u, int fd, uint64_t ud)
{
	struct io_uring_sqe *sqe = get_sqe(u);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, ud);
	return 0;
}

int uio_poll_out(struct uio *u, int fd, uint64_t ud)
{
	struct io_uring_sqe *sqe = get_sqe(u);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_poll_add(sqe, fd, POLLOUT);
	io_uring_sqe_set_data64(sqe, ud);
	return 0;
}

int uio_cancel(struct uio *u, uint64_t target_ud, uint64_t ud)
{
	struct io_uring_sqe *sqe = get_sqe(u);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_cancel64(sqe, target_ud, 0);
	io_uring_sqe_set_data64(sqe, ud);
	return 0;
}

void uio_buf_put(struct uio *u, unsigned bid)
{
	io_uring_buf_ring_add(u->br, u->bufs + (size_t)bid * u->buf_bytes, u->buf_bytes,
			      (unsigned short)bid, io_uring_buf_ring_mask(u->nbufs), 0);
	io_uring_buf_ring_advance(u->br, 1);
}

int uio_submit(struct uio *u)
{
	int r = io_uring_submit(&u->ring);
	return r < 0 ? r : 0;
}

int uio_wait(struct uio *u, int64_t timeout_ns)
{
	struct io_uring_cqe *cqe;
	int r;
	if (timeout_ns < 0) {
		r = io_uring_submit_and_wait(&u->ring, 1);
	} else {
		struct __kernel_timespec ts = {.tv_sec = timeout_ns / 1000000000,
					       .tv_nsec = timeout_ns % 1000000000};
		r = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
	}
	if (r == -ETIME || r == -EINTR || r == -EAGAIN || r == -EBUSY)
		return 0;
	return r < 0 ? r : 0;
}
