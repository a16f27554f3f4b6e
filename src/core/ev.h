/* ev: a small event loop with a redis-ae-like backend contract (epoll backend here).
 *
 * Level-triggered fd events (EV_READ / EV_WRITE), one callback per fd receiving the mask of
 * what is ready, and one-shot or periodic timers with nanosecond deadlines (precise to well
 * under 1 ms: the wait uses epoll_pwait2 or a timerfd, never a millisecond timeout).
 * Each readiness yields exactly one callback invocation per ev_poll iteration.
 * A loop belongs to one thread; nothing here is thread-safe except ev_stop (async-signal-safe
 * and callable from any thread: it sets a flag and wakes the loop through an eventfd).
 * Callbacks may add/delete fds and timers, including their own, and may call ev_stop.
 *
 * Backend contract (ev.c's static backend ops, like ae_epoll.c): create(setsize), resize,
 * add(fd, old_mask, new_mask), del(fd, old_mask, del_mask), poll(timeout_ns) -> fired list,
 * name(). Return 0 / -errno.
 */
#ifndef CTXLAB_CORE_EV_H
#define CTXLAB_CORE_EV_H

#include <stdint.h>

#define EV_NONE 0
#define EV_READ 1
#define EV_WRITE 2
#define EV_NOMORE (-1) /* a timer callback returns this to end itself */

struct ev_loop;
typedef void ev_fd_fn(struct ev_loop *l, int fd, int mask, void *ud);
/* Returns the next delay in ns to re-arm (periodic), or EV_NOMORE. */
typedef int64_t ev_timer_fn(struct ev_loop *l, uint64_t id, void *ud);

struct ev_loop *ev_new(int setsize);  /* setsize: max fd+1, grows on demand; NULL on error */
void ev_free(struct ev_loop *l);

/* Adds `mask` to fd's interest; fn/ud replace the previous ones. 0 or -errno. */
int ev_add(struct ev_loop *l, int fd, int mask, ev_fd_fn *fn, void *ud);
/* Removes `mask` from fd's interest; removing everything forgets the fd. 0 or -errno. */
int ev_del(struct ev_loop *l, int fd, int mask);
int ev_mask(const struct ev_loop *l, int fd);

/* Timer ids are > 0 and never reused within a loop. */
uint64_t ev_timer_add(struct ev_loop *l, uint64_t delay_ns, ev_timer_fn *fn, void *ud);
uint64_t ev_timer_add_at(struct ev_loop *l, uint64_t deadline_ns, ev_timer_fn *fn, void *ud);
int ev_timer_del(struct ev_loop *l, uint64_t id); /* 0, or -ENOENT */

/* One iteration: waits at most timeout_ns (-1 = until an event or timer; 0 = do not block),
 * runs fd callbacks then due timers. Returns the number of callbacks run, or -errno. */
int ev_poll(struct ev_loop *l, int64_t timeout_ns);
/* Runs until ev_stop. Returns 0, or -errno on a backend failure. */
int ev_run(struct ev_loop *l);
void ev_stop(struct ev_loop *l);
int ev_stopped(const struct ev_loop *l);

uint64_t ev_now_ns(const struct ev_loop *l); /* monotonic time cached at the last wake-up */
const char *ev_backend_name(void);           /* "epoll" */

#endif
