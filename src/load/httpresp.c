#include "load/httpresp.h"

#include <string.h>

enum {
	ST_START,
	ST_PROTO,
	ST_VER,
	ST_SP,
	ST_CODE,
	ST_STATUS_REST,
	ST_HSTART,
	ST_HNAME,
	ST_HVAL,
	ST_HEND_LF,
	ST_BODY,
	ST_BODY_EOF,
	ST_CSIZE,
	ST_CEXT,
	ST_CDATA,
	ST_CDATA_CR,
	ST_CDATA_LF,
	ST_TRAILER_START,
	ST_TRAILER_LINE,
	ST_TRAILER_LF,
	ST_DONE,
};

enum { H_NONE, H_LEN, H_TE, H_CONN };

static const char *const hnames[] = {NULL, "content-length", "transfer-encoding", "connection"};
static const uint8_t hlens[] = {0, 14, 17, 10};
#define CAND_ALL 0x0e /* bits 1..3 */

void httpresp_init(struct httpresp *p, int head)
{
	memset(p, 0, sizeof(*p));
	p->state = ST_START;
	p->head = head ? 1 : 0;
}

static inline int lower(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

static inline int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* The header section ended. Returns 1 when the response is complete, 0 to go on. */
static int end_headers(struct httpresp *p)
{
	if (p->status >= 100 && p->status < 200 && p->status != 101) {
		/* interim response: the real one follows */
		int head = p->head;
		httpresp_init(p, head);
		p->state = ST_PROTO;
		return 0;
	}
	p->keepalive = p->http10 ? p->conn_keep : !p->conn_close;
	p->hbytes = 0; /* from here on it counts trailer bytes */
	if (p->head || p->status == 204 || p->status == 304 || p->status == 101)
		return 1;
	if (p->chunked) {
		p->state = ST_CSIZE;
		p->remaining = 0;
		p->sub = 0;
		return 0;
	}
	if (p->has_len) {
		if (!p->remaining)
			return 1;
		p->state = ST_BODY;
		return 0;
	}
	p->state = ST_BODY_EOF;
	p->keepalive = 0;
	return 0;
}

/* Fast path for a header name wholly inside buf[i..len): returns the offset just past its
 * ':' with p set up for the value (as the byte-wise ST_HNAME path would), 0 when the name
 * runs past the end of buf (the caller goes byte by byte), or -1 on a malformed name. */
static long name_fast(struct httpresp *p, const char *buf, size_t i, size_t len)
{
	size_t k = i;
	for (; k < len; k++) {
		char c = buf[k];
		if (c == ':')
			break;
		if (c == '\n' || c == '\r' || c == ' ')
			return -1;
	}
	if (k == len)
		return 0;
	size_t n = k - i;
	uint8_t hdr = H_NONE;
	for (int h = 1; h <= 3; h++) {
		if (n != hlens[h])
			continue;
		size_t j = 0;
		while (j < n && lower((unsigned char)buf[i + j]) == hnames[h][j])
			j++;
		if (j == n)
			hdr = (uint8_t)h;
		break;
	}
	if (hdr == H_LEN && p->has_len)
		return -1; /* a second Content-Length */
	p->hbytes += (uint32_t)(n + 1);
	if (p->hbytes > HTTPRESP_MAX_HEADER_BYTES)
		return -1;
	p->hdr = hdr;
	p->state = ST_HVAL;
	p->sub = 0;
	p->cand = 0;
	return (long)(k + 1);
}

/* The chunk-size line ended. */
static int chunk_line_end(struct httpresp *p)
{
	if (!p->sub)
		return -1;
	if (!p->remaining) {
		p->state = ST_TRAILER_START;
	} else {
		p->state = ST_CDATA;
	}
	return 0;
}

int httpresp_feed(struct httpresp *p, const char *buf, size_t len, size_t *used)
{
	size_t i = 0;
	while (i < len) {
		int c = (unsigned char)buf[i];
		switch (p->state) {
		case ST_START:
			if (len - i >= 12 && !memcmp(buf + i, "HTTP/1.", 7) &&
			    (buf[i + 7] == '0' || buf[i + 7] == '1') && buf[i + 8] == ' ' &&
			    buf[i + 9] >= '1' && buf[i + 9] <= '9' && buf[i + 10] >= '0' &&
			    buf[i + 10] <= '9' && buf[i + 11] >= '0' && buf[i + 11] <= '9') {
				/* the whole "HTTP/1.x ddd" at once; anything else goes byte by byte */
				p->http10 = buf[i + 7] == '0';
				p->status = (buf[i + 9] - '0') * 100 + (buf[i + 10] - '0') * 10 +
					    (buf[i + 11] - '0');
				p->sub = 3;
				p->hbytes += 12;
				p->state = ST_STATUS_REST;
				i += 12;
				continue;
			}
			p->state = ST_PROTO;
			p->sub = 0;
			/* fall through */
		case ST_PROTO:
			if (c != (unsigned char)"HTTP/1."[p->sub])
				return -1;
			if (++p->sub == 7)
				p->state = ST_VER;
			i++;
			p->hbytes++;
			continue;
		case ST_VER:
			if (c != '0' && c != '1')
				return -1;
			p->http10 = c == '0';
			p->state = ST_SP;
			p->sub = 0;
			break;
		case ST_SP:
			if (c == ' ') {
				p->sub = 1;
				break;
			}
			if (!p->sub || c < '0' || c > '9')
				return -1;
			p->state = ST_CODE;
			p->sub = 0;
			p->status = 0;
			/* fall through */
		case ST_CODE:
			if (c < '0' || c > '9')
				return -1;
			p->status = p->status * 10 + (c - '0');
			if (++p->sub == 3) {
				if (p->status < 100)
					return -1;
				p->state = ST_STATUS_REST;
			}
			break;
		case ST_STATUS_REST:
		case ST_HVAL:
			if (p->state == ST_HVAL && p->hdr != H_NONE) {
				if (c == '\n') {
					if (p->hdr == H_LEN)
						p->has_len = 1;
					p->state = ST_HSTART;
					break;
				}
				if (c == '\r')
					break;
				if (p->hdr == H_LEN) {
					if (c == ' ' || c == '\t')
						break;
					if (c < '0' || c > '9' || p->has_len)
						return -1;
					if (p->remaining > (UINT64_C(1) << 58))
						return -1;
					p->remaining = p->remaining * 10 + (uint64_t)(c - '0');
					p->sub = 1;
				} else if (p->hdr == H_TE) {
					c = lower(c);
					if (c == (unsigned char)"chunked"[p->sub]) {
						if (++p->sub == 7) {
							p->chunked = 1;
							p->sub = 0;
						}
					} else {
						p->sub = c == 'c';
					}
				} else { /* H_CONN: "close" in sub, "keep-alive" in cand */
					c = lower(c);
					if (c == (unsigned char)"close"[p->sub]) {
						if (++p->sub == 5) {
							p->conn_close = 1;
							p->sub = 0;
						}
					} else {
						p->sub = c == 'c';
					}
					if (c == (unsigned char)"keep-alive"[p->cand]) {
						if (++p->cand == 10) {
							p->conn_keep = 1;
							p->cand = 0;
						}
					} else {
						p->cand = c == 'k';
					}
				}
				break;
			} else {
				const char *nl = memchr(buf + i, '\n', len - i);
				size_t n = nl ? (size_t)(nl - (buf + i)) + 1 : len - i;
				p->hbytes += (uint32_t)n;
				if (p->hbytes > HTTPRESP_MAX_HEADER_BYTES)
					return -1;
				i += n;
				if (nl)
					p->state = ST_HSTART;
				continue;
			}
		case ST_HSTART:
			if (c == '\r') {
				p->state = ST_HEND_LF;
				break;
			}
			if (c == '\n') {
				i++;
				if (end_headers(p)) {
					p->state = ST_DONE;
					*used = i;
					return 1;
				}
				continue;
			}
			{
				long r = name_fast(p, buf, i, len);
				if (r < 0)
					return -1;
				if (r > 0) {
					i = (size_t)r;
					continue;
				}
			}
			p->state = ST_HNAME;
			p->cand = CAND_ALL;
			p->sub = 0;
			/* fall through */
		case ST_HNAME:
			if (c == ':') {
				p->hdr = H_NONE;
				for (int h = 1; h <= 3; h++)
					if ((p->cand & (1 << h)) && p->sub == hlens[h])
						p->hdr = (uint8_t)h;
				p->state = ST_HVAL;
				p->sub = 0;
				p->cand = 0;
				if (p->hdr == H_LEN && p->has_len)
					return -1; /* a second Content-Length */
				break;
			}
			if (c == '\n' || c == '\r' || c == ' ')
				return -1;
			c = lower(c);
			for (int h = 1; h <= 3; h++)
				if ((p->cand & (1 << h)) &&
				    (p->sub >= hlens[h] || hnames[h][p->sub] != c))
					p->cand &= (uint8_t) ~(1 << h);
			if (p->sub < 255)
				p->sub++;
			break;
		case ST_HEND_LF:
			if (c != '\n')
				return -1;
			i++;
			if (end_headers(p)) {
				p->state = ST_DONE;
				*used = i;
				return 1;
			}
			continue;
		case ST_BODY: {
			size_t n = len - i;
			if (n > p->remaining)
				n = (size_t)p->remaining;
			p->remaining -= n;
			p->body_bytes += n;
			i += n;
			if (!p->remaining) {
				p->state = ST_DONE;
				*used = i;
				return 1;
			}
			continue;
		}
		case ST_BODY_EOF:
			p->body_bytes += len - i;
			i = len;
			continue;
		case ST_CSIZE: {
			int v = hexval(c);
			if (v >= 0) {
				if (p->remaining >= (UINT64_C(1) << 56))
					return -1;
				p->remaining = p->remaining * 16 + (uint64_t)v;
				p->sub = 1;
				break;
			}
			if (c == ';' || c == ' ' || c == '\t') {
				p->state = ST_CEXT;
				break;
			}
			if (c == '\r')
				break;
			if (c != '\n' || chunk_line_end(p) < 0)
				return -1;
			break;
		}
		case ST_CEXT: {
			const char *nl = memchr(buf + i, '\n', len - i);
			if (!nl) {
				i = len;
				continue;
			}
			i = (size_t)(nl - buf) + 1;
			if (chunk_line_end(p) < 0)
				return -1;
			continue;
		}
		case ST_CDATA: {
			size_t n = len - i;
			if (n > p->remaining)
				n = (size_t)p->remaining;
			p->remaining -= n;
			p->body_bytes += n;
			i += n;
			if (!p->remaining)
				p->state = ST_CDATA_CR;
			continue;
		}
		case ST_CDATA_CR:
			if (c == '\r') {
				p->state = ST_CDATA_LF;
				break;
			}
			/* fall through */
		case ST_CDATA_LF:
			if (c != '\n')
				return -1;
			p->state = ST_CSIZE;
			p->remaining = 0;
			p->sub = 0;
			break;
		case ST_TRAILER_START:
			if (c == '\r') {
				p->state = ST_TRAILER_LF;
				break;
			}
			if (c == '\n') {
				p->state = ST_DONE;
				*used = i + 1;
				return 1;
			}
			p->state = ST_TRAILER_LINE;
			/* fall through */
		case ST_TRAILER_LINE: {
			const char *nl = memchr(buf + i, '\n', len - i);
			size_t n = nl ? (size_t)(nl - (buf + i)) + 1 : len - i;
			p->hbytes += (uint32_t)n;
			if (p->hbytes > HTTPRESP_MAX_HEADER_BYTES)
				return -1;
			i += n;
			if (nl)
				p->state = ST_TRAILER_START;
			continue;
		}
		case ST_TRAILER_LF:
			if (c != '\n')
				return -1;
			p->state = ST_DONE;
			*used = i + 1;
			return 1;
		default: /* ST_DONE: caller forgot httpresp_init */
			return -1;
		}
		/* one byte of the header section (or of a chunk's framing) consumed */
		i++;
		if (p->state < ST_BODY && ++p->hbytes > HTTPRESP_MAX_HEADER_BYTES)
			return -1;
	}
	*used = len;
	return 0;
}

int httpresp_eof(struct httpresp *p)
{
	if (p->state == ST_START)
		return 0;
	if (p->state == ST_BODY_EOF) {
		p->state = ST_DONE;
		return 1;
	}
	return -1;
}
