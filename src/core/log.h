/* log: diagnostics for ctxlab (git-style).
 *
 * Every message goes to stderr prefixed with the program name ("ctxlab: ").
 * Messages are lowercase, name their subject in quotes and say what to do:
 *   error("cannot open '%s': %s (run as root or pass --pid)", path, strerror(errno));
 *
 *  die()   prints "ctxlab: fatal: ..." and exits 1. Only in command setup, never in a server's hot path.
 *  error() prints "ctxlab: error: ..." and returns -1, so `return error(...)` works.
 *  warn()  prints "ctxlab: warning: ...".
 *  BUG()   prints file:line and aborts: an invariant of ctxlab itself was broken.
 *  info()  prints "ctxlab: ..." unless quiet.
 * Quiet (log_set_quiet(1), what a command's -q/--quiet sets) silences info() only: progress
 * and notes; warn(), error(), die() and BUG() always print.
 * Thread-safe: each message is written with a single write(2).
 */
#ifndef CTXLAB_CORE_LOG_H
#define CTXLAB_CORE_LOG_H

#include <stdarg.h>

#define CTXLAB_PRINTF(a, b) __attribute__((format(printf, a, b)))

void log_set_prog(const char *name);
void log_set_quiet(int quiet);

_Noreturn void die(const char *fmt, ...) CTXLAB_PRINTF(1, 2);
int error(const char *fmt, ...) CTXLAB_PRINTF(1, 2);
void warn(const char *fmt, ...) CTXLAB_PRINTF(1, 2);
void info(const char *fmt, ...) CTXLAB_PRINTF(1, 2);
_Noreturn void bug_at(const char *file, int line, const char *fmt, ...) CTXLAB_PRINTF(3, 4);
#define BUG(...) bug_at(__FILE__, __LINE__, __VA_ARGS__)

/* Formats into err[errlen] (always NUL-terminated); returns -1. For modules that report
 * errors to their caller through an err buffer instead of printing. */
int errbuf(char *err, unsigned long errlen, const char *fmt, ...) CTXLAB_PRINTF(3, 4);

#endif
