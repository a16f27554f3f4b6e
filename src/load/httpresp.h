/* httpresp: a streaming HTTP/1.x response parser for the load generator.
 *
 * Unlike proto/'s re-parsing contract, this parser keeps all of its state in the small struct
 * (no bytes are retained), so a connection needs no input buffer of its own: the load
 * generator reads into one per-thread buffer and feeds whatever arrived, split anywhere.
 * Memory per connection is sizeof(struct httpresp); nothing is allocated.
 *
 * Understands: status line (HTTP/1.0 and 1.1), Content-Length, Transfer-Encoding: chunked
 * (with extensions and trailers), Connection: close / keep-alive, bodies delimited by the
 * end of the connection, 1xx interim responses (skipped), 204/304 and responses to HEAD
 * (no body). Header section limit: HTTPRESP_MAX_HEADER_BYTES.
 *
 * Not thread-safe (one per connection, owned by the connection's thread).
 */
#ifndef CTXLAB_LOAD_HTTPRESP_H
#define CTXLAB_LOAD_HTTPRESP_H

#include <stddef.h>
#include <stdint.h>

#define HTTPRESP_MAX_HEADER_BYTES (64 * 1024)

struct httpresp {
	/* outputs, valid after httpresp_feed returned 1 (until the next feed) */
	int status;        /* 100..999 */
	int keepalive;     /* 0 when the server will close the connection after this response */
	uint64_t body_bytes;
	/* private */
	uint8_t state, sub, hdr, cand, http10, chunked, conn_close, conn_keep, has_len, head;
	uint32_t hbytes;
	uint64_t remaining;
};

/* Resets for a new response. head: 1 when the request was HEAD (no body follows). */
void httpresp_init(struct httpresp *p, int head);

/* Feeds bytes. Returns 1 when a response completed: *used is the number of bytes of buf that
 * belong to it (the rest starts the next response; call httpresp_init before feeding it);
 * 0 when all len bytes were consumed and the response is not complete yet (*used = len);
 * -1 on a malformed response (the connection cannot be used any more). */
int httpresp_feed(struct httpresp *p, const char *buf, size_t len, size_t *used);

/* The connection reached end of file. Returns 1 when that completes the response in progress
 * (a body delimited by the close), 0 when no response was in progress (nothing fed since
 * init), -1 when a response was cut short. */
int httpresp_eof(struct httpresp *p);

#endif
