/* buf: a growable byte buffer with a read offset (caller-owned struct, heap storage).
 * Data lives in data[off .. len). Appends grow the storage (amortised doubling); consumed
 * bytes are reclaimed by buf_compact or automatically when the buffer empties.
 * Not thread-safe. Returns 0 / -ENOMEM. */
#ifndef CTXLAB_CORE_BUF_H
#define CTXLAB_CORE_BUF_H

#include <stddef.h>

struct buf {
	char *data;
	size_t off, len, cap;
};

#define BUF_INIT {0}

static inline size_t buf_used(const struct buf *b) { return b->len - b->off; }
/* NULL for a buffer that never held anything (no arithmetic on a null pointer) */
static inline char *buf_head(const struct buf *b) { return b->data ? b->data + b->off : NULL; }

int buf_reserve(struct buf *b, size_t extra); /* room for `extra` more bytes at data+len */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_appendf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_consume(struct buf *b, size_t n);    /* drop n bytes from the front */
void buf_compact(struct buf *b);              /* move unread bytes to the start */
void buf_clear(struct buf *b);
void buf_free(struct buf *b);
/* Appends the whole file at path, then a NUL that is not counted in the length (so
 * buf_head() is a C string). 0, or -errno (the buffer keeps what it had). */
int buf_read_file(struct buf *b, const char *path);

#endif
