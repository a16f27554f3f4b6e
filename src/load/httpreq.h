/* httpreq: builds the HTTP/1.1 request the load generator sends, and splits a target URL.
 * Pure functions, no I/O; thread-safe. */
#ifndef CTXLAB_LOAD_HTTPREQ_H
#define CTXLAB_LOAD_HTTPREQ_H

#include <stddef.h>

#include "core/buf.h"

struct httpreq {
	const char *method;          /* "GET" when NULL */
	const char *host;            /* Host header value ("127.0.0.1:8080"); required */
	const char *path;            /* "/" when NULL */
	const char *const *headers;  /* "Name: value" lines without CRLF; may be NULL */
	size_t nheaders;
	const char *body;            /* may be NULL */
	size_t body_len;
	int keepalive;               /* 0 adds "Connection: close" */
};

/* Appends one request to out: request line, Host (unless a header names one), the user's
 * headers, Content-Length when there is a body (or the method is POST/PUT/PATCH) and the user
 * gave none, Connection: close when !keepalive, then the body.
 * Returns 0, -EINVAL when a field holds CR/LF/NUL, a method holds a space or a header has
 * no "Name:" (err says which), or -ENOMEM. */
int httpreq_build(struct buf *out, const struct httpreq *r, char *err, size_t errlen);

/* Splits "http://HOST:PORT/path?q", "HOST:PORT/path", "HOST:PORT" or "[::1]:PORT/x" into
 * hostport ("HOST:PORT", port 80 when http:// has none) and path ("/" when none).
 * Returns 0, or -1 with err quoting the text (https:// is refused: no TLS). */
int httpreq_split_url(const char *url, char *hostport, size_t hplen, char *path, size_t pathlen,
		      char *err, size_t errlen);

#endif
