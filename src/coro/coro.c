#include "coro/coro.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/log.h"

#if defined(__SANITIZE_ADDRESS__)
#define CORO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORO_ASAN 1
#endif
#endif

#ifdef CORO_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#if defined(__x86_64__)
#define CORO_ASM "asm-x86_64"
#elif defined(__aarch64__)
#define CORO_ASM "asm-aarch64"
#else
#include <ucontext.h>
#endif

/* The registry a stack dump walks (`ctxlab stack`, src/profile/stack.c): every live
 * coroutine is on the list ctxlab_coro_all, and ctxlab_coro_layout says how its first fields
 * are laid out, read from outside the process (x86-64 asm only; 0 = no registry):
 *   layout 1: offset 0 sp (saved while suspended: r15 r14 r13 r12 rbx rbp, then the return
 *   address), 8 next, 16 prev, 24 stack_lo, 32 stack_bytes, 40 int done, 44 int running.
 * Kept by coro_new and coro_free under a mutex; switches do not touch it. */
struct coro {
#ifdef CORO_ASM
	void *sp; /* saved stack pointer while suspended */
	struct coro *next_all, *prev_all;
	char *stack_lo_dbg; /* = stack_lo, at its fixed offset */
	size_t stack_bytes_dbg;
#else
	ucontext_t uc;
#endif
	int done, running; /* (at offsets 40 and 44 with the asm backend: the registry's) */
	struct coro *caller; /* who resumed us (NULL = the thread's own stack) */
	coro_fn *fn;
	void *arg;
	void *map; /* the whole mapping, guard page included */
	size_t map_bytes;
	char *stack_lo; /* usable stack [stack_lo, stack_lo + stack_bytes) */
	size_t stack_bytes;
};

/* The thread's own context, used when a coroutine switches back to the thread stack. */
struct thread_ctx {
#ifdef CORO_ASM
	void *sp;
#else
	ucontext_t uc;
#endif
	const void *stack_lo; /* ASan: the thread stack's bounds, learnt at the first switch */
	size_t stack_bytes;
};

#if defined(CORO_ASM) && defined(__x86_64__)
_Static_assert(offsetof(struct coro, next_all) == 8 && offsetof(struct coro, stack_lo_dbg) == 24 &&
		       offsetof(struct coro, done) == 40 && offsetof(struct coro, running) == 44,
	       "the registry's layout 1 (read by ctxlab stack)");
struct coro *ctxlab_coro_all;
const volatile unsigned ctxlab_coro_layout = 1;
#endif
static pthread_mutex_t all_lock = PTHREAD_MUTEX_INITIALIZER;

static void registry_add(struct coro *c)
{
#if defined(CORO_ASM) && defined(__x86_64__)
	c->stack_lo_dbg = c->stack_lo;
	c->stack_bytes_dbg = c->stack_bytes;
	pthread_mutex_lock(&all_lock);
	c->next_all = ctxlab_coro_all;
	if (ctxlab_coro_all)
		ctxlab_coro_all->prev_all = c;
	ctxlab_coro_all = c;
	pthread_mutex_unlock(&all_lock);
#else
	(void)c, (void)all_lock;
#endif
}

static void registry_remove(struct coro *c)
{
#if defined(CORO_ASM) && defined(__x86_64__)
	pthread_mutex_lock(&all_lock);
	if (c->prev_all)
		c->prev_all->next_all = c->next_all;
	else
		ctxlab_coro_all = c->next_all;
	if (c->next_all)
		c->next_all->prev_all = c->prev_all;
	pthread_mutex_unlock(&all_lock);
#else
	(void)c;
#endif
}

static _Thread_local struct coro *current;
static _Thread_local struct thread_ctx main_ctx;
#ifdef CORO_ASAN
static _Thread_local int from_thread_stack; /* the last switch started on the thread's stack */
#endif

#ifdef CORO_ASM
/* ctxlab_coro_switch(void **save_sp, void *load_sp): pushes the callee-saved registers on the
 * current stack, stores sp into *save_sp, loads load_sp, pops the registers saved there and
 * returns into the other context. A fresh stack is laid out so that this return lands in
 * trampoline(). */
void ctxlab_coro_switch(void **save_sp, void *load_sp);
#if defined(__x86_64__)
__asm__(".text\n"
	".globl ctxlab_coro_switch\n"
	".type ctxlab_coro_switch,@function\n"
	"ctxlab_coro_switch:\n"
	"	pushq %rbp\n"
	"	pushq %rbx\n"
	"	pushq %r12\n"
	"	pushq %r13\n"
	"	pushq %r14\n"
	"	pushq %r15\n"
	"	movq %rsp, (%rdi)\n"
	"	movq %rsi, %rsp\n"
	"	popq %r15\n"
	"	popq %r14\n"
	"	popq %r13\n"
	"	popq %r12\n"
	"	popq %rbx\n"
	"	popq %rbp\n"
	"	ret\n"
	".size ctxlab_coro_switch,.-ctxlab_coro_switch\n");
#elif defined(__aarch64__)
__asm__(".text\n"
	".globl ctxlab_coro_switch\n"
	".type ctxlab_coro_switch,%function\n"
	"ctxlab_coro_switch:\n"
	"	sub sp, sp, #176\n"
	"	stp x19, x20, [sp, #0]\n"
	"	stp x21, x22, [sp, #16]\n"
	"	stp x23, x24, [sp, #32]\n"
	"	stp x25, x26, [sp, #48]\n"
	"	stp x27, x28, [sp, #64]\n"
	"	stp x29, x30, [sp, #80]\n"
	"	stp d8, d9, [sp, #96]\n"
	"	stp d10, d11, [sp, #112]\n"
	"	stp d12, d13, [sp, #128]\n"
	"	stp d14, d15, [sp, #144]\n"
	"	mov x2, sp\n"
	"	str x2, [x0]\n"
	"	mov sp, x1\n"
	"	ldp x19, x20, [sp, #0]\n"
	"	ldp x21, x22, [sp, #16]\n"
	"	ldp x23, x24, [sp, #32]\n"
	"	ldp x25, x26, [sp, #48]\n"
	"	ldp x27, x28, [sp, #64]\n"
	"	ldp x29, x30, [sp, #80]\n"
	"	ldp d8, d9, [sp, #96]\n"
	"	ldp d10, d11, [sp, #112]\n"
	"	ldp d12, d13, [sp, #128]\n"
	"	ldp d14, d15, [sp, #144]\n"
	"	add sp, sp, #176\n"
	"	ret\n"
	".size ctxlab_coro_switch,.-ctxlab_coro_switch\n");
#endif
#endif

static void trampoline(void)
{
	struct coro *c = current;
#ifdef CORO_ASAN
	const void *lo;
	size_t size;
	__sanitizer_finish_switch_fiber(NULL, &lo, &size);
	if (from_thread_stack && !main_ctx.stack_lo) {
		main_ctx.stack_lo = lo;
		main_ctx.stack_bytes = size;
	}
#endif
	c->fn(c->arg);
	c->done = 1;
	coro_yield(); /* never returns */
	BUG("a finished coroutine was resumed");
}

struct coro *coro_new(coro_fn *fn, void *arg, size_t stack_bytes)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	if (stack_bytes < 16384)
		stack_bytes = 16384;
	stack_bytes = (stack_bytes + page - 1) & ~(page - 1);
	struct coro *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	size_t map_bytes = stack_bytes + page;
	void *map = mmap(NULL, map_bytes, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (map == MAP_FAILED) {
		free(c);
		return NULL;
	}
	mprotect(map, page, PROT_NONE); /* guard page: a stack overflow faults at once */
	c->map = map;
	c->map_bytes = map_bytes;
	c->stack_lo = (char *)map + page;
	c->stack_bytes = stack_bytes;
	c->fn = fn;
	c->arg = arg;
	/* A mapping may reuse addresses of an earlier coroutine's stack whose frames ASan
	 * left poisoned. */
	UNPOISON(c->stack_lo, stack_bytes);
#ifdef CORO_ASM
	uintptr_t top = ((uintptr_t)(c->stack_lo + stack_bytes)) & ~(uintptr_t)15;
#if defined(__x86_64__)
	/* First frame: six zeroed callee-saved registers, then the return address (trampoline),
	 * then a fake return address for trampoline so that rsp+8 is 16-aligned at its entry. */
	void **sp = (void **)top;
	*--sp = NULL;
	*--sp = (void *)trampoline;
	for (int i = 0; i < 6; i++)
		*--sp = NULL;
	c->sp = sp;
#else
	/* First frame: the 176-byte register block with x30 (lr) = trampoline. */
	void **sp = (void **)(top - 176);
	for (int i = 0; i < 176 / 8; i++)
		sp[i] = NULL;
	sp[11] = (void *)trampoline;
	c->sp = sp;
#endif
#else
	if (getcontext(&c->uc) < 0) {
		int e = errno;
		munmap(map, map_bytes);
		free(c);
		errno = e;
		return NULL;
	}
	c->uc.uc_stack.ss_sp = c->stack_lo;
	c->uc.uc_stack.ss_size = stack_bytes;
	c->uc.uc_link = NULL;
	makecontext(&c->uc, trampoline, 0);
#endif
	registry_add(c);
	return c;
}

void coro_free(struct coro *c)
{
	if (!c)
		return;
	if (c->running)
		BUG("coro_free of a running coroutine");
	registry_remove(c);
	UNPOISON(c->stack_lo, c->stack_bytes);
	munmap(c->map, c->map_bytes);
	free(c);
}

/* Switches from `from` (NULL = thread stack) to `to` (NULL = thread stack). */
static void switch_to(struct coro *from, struct coro *to, int from_done)
{
	current = to;
#ifdef CORO_ASAN
	void *fake = NULL;
	const void *lo = to ? to->stack_lo : main_ctx.stack_lo;
	size_t size = to ? to->stack_bytes : main_ctx.stack_bytes;
	from_thread_stack = !from;
	__sanitizer_start_switch_fiber(from_done ? NULL : &fake, lo, size);
#else
	(void)from_done;
#endif
#ifdef CORO_ASM
	ctxlab_coro_switch(from ? &from->sp : &main_ctx.sp, to ? to->sp : main_ctx.sp);
#else
	swapcontext(from ? &from->uc : &main_ctx.uc, to ? &to->uc : &main_ctx.uc);
#endif
#ifdef CORO_ASAN
	__sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
}

void coro_resume(struct coro *c)
{
	if (c->done)
		BUG("coro_resume of a finished coroutine");
	if (c->running)
		BUG("coro_resume of a running coroutine");
	c->caller = current;
	c->running = 1;
	switch_to(c->caller, c, 0);
}

void coro_transfer(struct coro *to)
{
	struct coro *c = current;
	if (!c)
		BUG("coro_transfer outside a coroutine");
	if (to == c)
		return;
	if (to->done)
		BUG("coro_transfer to a finished coroutine");
	if (to->running)
		BUG("coro_transfer to a running coroutine");
	to->caller = c->caller;
	c->running = 0;
	to->running = 1;
	switch_to(c, to, 0);
}

void coro_yield(void)
{
	struct coro *c = current;
	if (!c)
		BUG("coro_yield outside a coroutine");
	c->running = 0;
	switch_to(c, c->caller, c->done);
}

int coro_done(const struct coro *c) { return c->done; }
struct coro *coro_current(void) { return current; }

const char *coro_backend(void)
{
#ifdef CORO_ASM
	return CORO_ASM;
#else
	return "ucontext";
#endif
}
