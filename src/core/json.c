#include "core/json.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"

void jw_init(struct jw *w)
{
	memset(w, 0, sizeof(*w));
	w->first[0] = 1;
}

void jw_release(struct jw *w)
{
	free(w->buf);
	jw_init(w);
}

void jw_reset(struct jw *w)
{
	char *b = w->buf;
	size_t cap = w->cap;
	jw_init(w);
	w->buf = b;
	w->cap = cap;
	if (b)
		b[0] = 0;
}

static void put(struct jw *w, const char *s, size_t n)
{
	if (w->oom)
		return;
	if (w->len + n + 1 > w->cap) {
		size_t cap = w->cap ? w->cap : 256;
		while (cap < w->len + n + 1)
			cap *= 2;
		char *b = realloc(w->buf, cap);
		if (!b) {
			w->oom = 1;
			return;
		}
		w->buf = b;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = 0;
}

static void puts_(struct jw *w, const char *s) { put(w, s, strlen(s)); }

/* Called before every value or key: writes the separating comma. */
static void sep(struct jw *w)
{
	if (w->after_key) {
		w->after_key = 0;
		return;
	}
	if (!w->first[w->depth])
		put(w, ",", 1);
	w->first[w->depth] = 0;
}

static void open_(struct jw *w, const char *c, char closer)
{
	sep(w);
	put(w, c, 1);
	if (w->depth + 1 >= JW_MAX_DEPTH)
		BUG("json nesting deeper than %d", JW_MAX_DEPTH);
	w->depth++;
	w->first[w->depth] = 1;
	w->closer[w->depth] = closer;
}

void jw_obj(struct jw *w) { open_(w, "{", '}'); }
void jw_arr(struct jw *w) { open_(w, "[", ']'); }

void jw_end(struct jw *w)
{
	if (w->depth <= 0)
		BUG("jw_end without an open object or array");
	put(w, &w->closer[w->depth], 1);
	w->depth--;
}

void jw_key(struct jw *w, const char *k)
{
	jw_str(w, k);
	put(w, ":", 1);
	w->after_key = 1;
}

static int utf8_len(const unsigned char *s, size_t n)
{
	/* Length of a valid UTF-8 sequence at s, or 0 when it is not valid. */
	unsigned c = s[0];
	int len;
	unsigned min;
	if (c < 0x80)
		return 1;
	if ((c & 0xE0) == 0xC0)
		len = 2, min = 0x80;
	else if ((c & 0xF0) == 0xE0)
		len = 3, min = 0x800;
	else if ((c & 0xF8) == 0xF0)
		len = 4, min = 0x10000;
	else
		return 0;
	if ((size_t)len > n)
		return 0;
	unsigned cp = c & (0x7F >> len);
	for (int i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

void jw_strn(struct jw *w, const char *s, size_t n)
{
	sep(w);
	put(w, "\"", 1);
	const unsigned char *p = (const unsigned char *)s;
	size_t run = 0; /* start of the pending run of plain bytes */
	for (size_t i = 0; i < n;) {
		unsigned c = p[i];
		const char *esc = NULL;
		char ubuf[8];
		int l = 1;
		if (c == '"')
			esc = "\\\"";
		else if (c == '\\')
			esc = "\\\\";
		else if (c == '\n')
			esc = "\\n";
		else if (c == '\r')
			esc = "\\r";
		else if (c == '\t')
			esc = "\\t";
		else if (c < 0x20 || c == 0x7F) {
			snprintf(ubuf, sizeof(ubuf), "\\u%04x", c);
			esc = ubuf;
		} else if (c >= 0x80) {
			l = utf8_len(p + i, n - i);
			if (l == 0) {
				snprintf(ubuf, sizeof(ubuf), "\\u%04x", c);
				esc = ubuf;
				l = 1;
			}
		}
		if (esc) {
			put(w, s + run, i - run);
			puts_(w, esc);
			run = i + 1;
		}
		i += (size_t)l;
	}
	put(w, s + run, n - run);
	put(w, "\"", 1);
}

void jw_str(struct jw *w, const char *s)
{
	if (!s)
		jw_null(w);
	else
		jw_strn(w, s, strlen(s));
}

void jw_int(struct jw *w, int64_t v)
{
	char b[32];
	sep(w);
	snprintf(b, sizeof(b), "%" PRId64, v);
	puts_(w, b);
}

void jw_uint(struct jw *w, uint64_t v)
{
	char b[32];
	sep(w);
	snprintf(b, sizeof(b), "%" PRIu64, v);
	puts_(w, b);
}

void jw_double(struct jw *w, double v)
{
	char b[40];
	sep(w);
	if (!isfinite(v)) {
		puts_(w, "null");
		return;
	}
	snprintf(b, sizeof(b), "%.17g", v);
	/* shorten when a shorter form round-trips */
	for (int prec = 6; prec < 17; prec++) {
		char t[40];
		snprintf(t, sizeof(t), "%.*g", prec, v);
		if (strtod(t, NULL) == v) {
			memcpy(b, t, sizeof(t));
			break;
		}
	}
	puts_(w, b);
}

void jw_bool(struct jw *w, int v)
{
	sep(w);
	puts_(w, v ? "true" : "false");
}

void jw_null(struct jw *w)
{
	sep(w);
	puts_(w, "null");
}

void jw_raw(struct jw *w, const char *json)
{
	sep(w);
	puts_(w, json);
}

void jw_kstr(struct jw *w, const char *k, const char *s) { jw_key(w, k); jw_str(w, s); }
void jw_kint(struct jw *w, const char *k, int64_t v) { jw_key(w, k); jw_int(w, v); }
void jw_kuint(struct jw *w, const char *k, uint64_t v) { jw_key(w, k); jw_uint(w, v); }
void jw_kdouble(struct jw *w, const char *k, double v) { jw_key(w, k); jw_double(w, v); }
void jw_kbool(struct jw *w, const char *k, int v) { jw_key(w, k); jw_bool(w, v); }

void *json_read_file(const char *path, char *err, size_t errlen)
{
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);
	if (!j)
		errbuf(err, errlen, "cannot read JSON from '%s': line %d column %d: %s", path, je.line,
		       je.column, je.text);
	return j;
}

void *json_read_str(const char *text, char *err, size_t errlen)
{
	json_error_t je;
	json_t *j = json_loads(text, 0, &je);
	if (!j)
		errbuf(err, errlen, "bad JSON at line %d column %d: %s", je.line, je.column, je.text);
	return j;
}
