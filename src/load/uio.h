/* uio: the io_uring mechanism of the load generator's `--io uring` path (load.c keeps the
 * protocol and measurement logic; this file knows rings, not connections).
 *
 * One struct uio per load thread, created and used by that thread only (the ring is set up
 * with IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN where the kernel has them,
 * 6.1+; without them otherwise). Reads are multishot recvs into a provided-buffer ring (buffer
 * group 0): a completion carries a buffer id that the caller hands back with uio_buf_put once
 * it has parsed the bytes. Every prep call only queues an SQE (submitting early only when the
 * SQ is full); uio_wait submits everything queued and waits in one io_uring_enter.
 *
 * Test seam: CTXLAB_LOAD_NO_URING=1 (any value but empty or "0") makes uio_probe and uio_init
 * fail with -ENOSYS, as a kernel without io_uring would.
 */
#ifndef CTXLAB_LOAD_UIO_H
#define CTXLAB_LOAD_UIO_H

#include <liburing.h>
#include <stddef.h>
#include <stdint.h>

struct uio {
	struct io_uring ring;
	struct io_uring_buf_ring *br;
	char *bufs;
	size_t br_bytes;
	unsigned nbufs, buf_bytes;
	int ring_ok;
	int fast;            /* SINGLE_ISSUER | DEFER_TASKRUN took */
};

/* Whether this kernel (and process) can run the uring path: a ring, a provided-buffer ring
 * and the single-syscall wait with a timeout (IORING_FEAT_EXT_ARG). 0, or -errno with err
 * saying why and what to do (it also checks that a multishot recv works). Any thread. */
int uio_probe(char *err, size_t errlen);

/* Sets up u for a thread that owns `conns` connections. 0, or -errno with *what naming the
 * step that failed. Call from the thread that will use it. */
int uio_init(struct uio *u, unsigned conns, const char **what);
void uio_fini(struct uio *u);

/* Queue one SQE each; user_data ud comes back in its completions. 0, or -EBUSY when no SQE
 * could be had even after submitting (the caller treats it as a failed operation). */
int uio_send(struct uio *u, int fd, const void *p, size_t len, uint64_t ud);
int uio_recv_multishot(struct uio *u, int fd, uint64_t ud);
int uio_poll_out(struct uio *u, int fd, uint64_t ud);
int uio_cancel(struct uio *u, uint64_t target_ud, uint64_t ud);

/* The bytes of a recv completion with IORING_CQE_F_BUFFER in flags, *bid its id. */
static inline const char *uio_buf(const struct uio *u, uint32_t flags, unsigned *bid)
{
	*bid = flags >> IORING_CQE_BUFFER_SHIFT;
	return u->bufs + (size_t)*bid * u->buf_bytes;
}
/* Hands buffer bid back to the kernel. */
void uio_buf_put(struct uio *u, unsigned bid);

/* Submits what is queued without waiting: 0, or -errno. */
int uio_submit(struct uio *u);

/* Submits what is queued and waits for one completion at most timeout_ns (< 0: no limit).
 * 0 (completions may be there, or the time ran out), or -errno. */
int uio_wait(struct uio *u, int64_t timeout_ns);

#endif
