/* json: writing JSON into a growable buffer (reading goes through jansson, see json_read_file).
 *
 *   struct jw w; jw_init(&w);
 *   jw_obj(&w); jw_key(&w, "rate"); jw_double(&w, 1.5); jw_kstr(&w, "engine", "epoll"); jw_end(&w);
 *   fwrite(w.buf, 1, w.len, f); jw_release(&w);
 *
 * Commas and nesting are tracked by the writer; strings are escaped correctly for any byte:
 * ", \, control characters as \uXXXX, and bytes that are not valid UTF-8 as \u00XX of the byte
 * (so the output is always valid JSON). Non-finite doubles are written as null.
 * On ENOMEM the writer sets w.oom and ignores further writes.
 */
#ifndef CTXLAB_CORE_JSON_H
#define CTXLAB_CORE_JSON_H

#include <stddef.h>
#include <stdint.h>

#define JW_MAX_DEPTH 32

struct jw {
	char *buf;
	size_t len, cap;
	int depth;
	int oom;
	unsigned char first[JW_MAX_DEPTH]; /* 1 until the first element at that depth */
	char closer[JW_MAX_DEPTH];         /* what closes each open level */
	unsigned char after_key;
};

void jw_init(struct jw *w);
void jw_release(struct jw *w);
void jw_reset(struct jw *w);    /* empties, keeps memory */
void jw_obj(struct jw *w);      /* { */
void jw_arr(struct jw *w);      /* [ */
void jw_end(struct jw *w);      /* } or ] */
void jw_key(struct jw *w, const char *k);
void jw_str(struct jw *w, const char *s);   /* NULL writes null */
void jw_strn(struct jw *w, const char *s, size_t n);
void jw_int(struct jw *w, int64_t v);
void jw_uint(struct jw *w, uint64_t v);
void jw_double(struct jw *w, double v);
void jw_bool(struct jw *w, int v);
void jw_null(struct jw *w);
void jw_raw(struct jw *w, const char *json); /* an already-encoded value */
/* key + value shorthands */
void jw_kstr(struct jw *w, const char *k, const char *s);
void jw_kint(struct jw *w, const char *k, int64_t v);
void jw_kuint(struct jw *w, const char *k, uint64_t v);
void jw_kdouble(struct jw *w, const char *k, double v);
void jw_kbool(struct jw *w, const char *k, int v);

/* Reads and parses a JSON file with jansson. Returns a new reference (json_decref it), or
 * NULL with err naming the file, line and column. Declared with void* to keep jansson out
 * of this header: cast to json_t*. */
void *json_read_file(const char *path, char *err, size_t errlen);
void *json_read_str(const char *text, char *err, size_t errlen);

/* Writing files: core/outfile.h (outfile_write). */

#endif
