/* stack: a one-off dump of every thread's user call stack of a live process (the eu-stack /
 * gops-stack analog), with the profiler's unwinder (libdwfl, over .eh_frame/.debug_frame)
 * and symbols (symbols.h: names, file:line from debug info).
 *
 * How it touches the target: libdwfl's dwfl_linux_proc_attach. Threads are taken one at a
 * time: each is ptrace-attached (PTRACE_ATTACH: stopped with SIGSTOP), its registers read,
 * its stack unwound through /proc/PID/mem reads, then detached; the other threads run on
 * meanwhile. Nothing is written to the target. Each thread's stop is measured (from just
 * before the attach to just after the detach) and reported. A thread already traced (a
 * debugger, strace) cannot be attached: it is reported, not dumped.
 *
 * Coroutines: a process with ctxlab's coroutine registry (src/coro/coro.c: the symbols
 * ctxlab_coro_all and ctxlab_coro_layout, x86-64) also gets each suspended coroutine's stack,
 * unwound from the registers its switch saved (unwind.h) over its stack read from
 * /proc/PID/mem, after the threads and without stopping anything (best effort: a coroutine
 * resumed meanwhile may show a stale stack).
 *
 * Not thread-safe. Returns 0 or -errno with err[] filled: -ESRCH (no such process), -EPERM
 * (ptrace refused: not root, another user's process, kernel.yama.ptrace_scope).
 */
#ifndef CTXLAB_PROFILE_STACK_H
#define CTXLAB_PROFILE_STACK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct buf;

struct stack_result {
	int threads;            /* threads dumped */
	int failed;             /* threads that could not be attached or unwound */
	uint64_t max_stop_ns;   /* the longest a thread was stopped */
	uint64_t total_stop_ns; /* all threads' stops added */
	int coroutines;         /* suspended coroutines dumped (ctxlab's coro engine) */
};

/* Appends the dump of process pid to out: a header line "pid PID (COMM): N threads", then
 * per thread "thread TID (COMM): stopped for X ms" and one line per frame, leaf first:
 * "  #N  0xADDRESS  FUNCTION (FILE:LINE)" (or "(BINARY)" when there is no line information).
 * res accumulates over calls. */
int stack_dump(pid_t pid, struct buf *out, struct stack_result *res, char *err, size_t errlen);

#endif
