/* coro: stackful user-space coroutines — the Go-like model, in C.
 *
 * A coroutine runs fn(arg) on its own mmap'd stack (with a PROT_NONE guard page below it).
 * Switching saves only the callee-saved registers and the stack pointer (x86-64 and aarch64
 * assembly; other architectures fall back to ucontext, which also saves the signal mask with
 * a syscall). No kernel involvement: a switch costs a few nanoseconds.
 *
 *   struct coro *c = coro_new(fn, arg, 64 * 1024);
 *   coro_resume(c);      // runs c until it yields or returns; then returns in the caller
 *   ...inside fn: coro_yield();   // back to whoever resumed it
 *   coro_done(c)         // 1 once fn has returned
 *   coro_free(c);
 *   ...or inside fn: coro_transfer(d);   // straight to suspended coroutine d (one switch)
 *
 * Threads: a coroutine may be resumed only by the thread that created it (each thread has its
 * own "current" coroutine). Nested resume (a coroutine resuming another) is allowed.
 * Under ASan the switches are announced with __sanitizer_{start,finish}_switch_fiber.
 */
#ifndef CTXLAB_CORO_CORO_H
#define CTXLAB_CORO_CORO_H

#include <stddef.h>

struct coro;
typedef void coro_fn(void *arg);

#define CORO_DEFAULT_STACK (64 * 1024)

struct coro *coro_new(coro_fn *fn, void *arg, size_t stack_bytes); /* NULL, errno set */
void coro_free(struct coro *c);      /* c must not be running; NULL ok */
void coro_resume(struct coro *c);    /* BUG() when c is done or running */
void coro_yield(void);               /* BUG() outside a coroutine */
/* Symmetric hand-over: suspends the running coroutine and runs `to` (suspended, not done)
 * directly, in one switch; `to` takes over the caller, so its next coro_yield returns to
 * whoever resumed the coroutine that transferred. The transferring coroutine continues when it
 * is next resumed or transferred to. to == the running coroutine: returns at once. BUG()
 * outside a coroutine, or when `to` is done or running. A scheduler uses it to hand over to the
 * next runnable coroutine without a round trip through its own loop (yield + resume = 2
 * switches; transfer = 1). */
void coro_transfer(struct coro *to);
int coro_done(const struct coro *c);
struct coro *coro_current(void);     /* NULL on a thread's own stack */
const char *coro_backend(void);      /* "asm-x86_64", "asm-aarch64" or "ucontext" */

#endif
