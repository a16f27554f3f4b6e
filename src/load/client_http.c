/* client_http: HTTP/1.1 requests (one fixed request, pipelined or a connection each) and
 * streaming response parsing with httpresp. An answer is a complete response; 2xx count as
 * requests, others as non-2xx errors. */
#include "load/client.h"

#include <errno.h>
#include <string.h>

#include "core/log.h"
#include "load/httpreq.h"
#include "load/httpresp.h"
#include "load/load.h"

struct http_client {
	struct httpresp rp;
	int head;
};

static int http_check(const struct load_cfg *cfg, char *err, size_t errlen)
{
	if (cfg->bandwidth_bps > 0) {
		errbuf(err, errlen, "--bandwidth is for raw TCP: use it with --proto sink or echo");
		return -EINVAL;
	}
	return 0;
}

static int http_frame(struct load_cfg *cfg, const struct load_client_opts *o, struct buf *msg,
		      char *note, size_t notelen, char *err, size_t errlen)
{
	struct httpreq rq = {
		.method = o->method,
		.host = o->hostport,
		.path = o->path,
		.headers = o->headers,
		.nheaders = o->nheaders,
		.body = o->body,
		.body_len = o->body ? strlen(o->body) : 0,
		.keepalive = cfg->keepalive,
	};
	int r = httpreq_build(msg, &rq, err, errlen);
	if (r < 0)
		return r;
	cfg->head = o->method && !strcmp(o->method, "HEAD");
	cfg->msg_len = buf_used(msg);
	return 0;
}

static void http_reset(void *state, const struct load_cfg *cfg)
{
	struct http_client *h = state;
	h->head = cfg->head;
	httpresp_init(&h->rp, h->head);
}

static int http_parse(void *state, const char *in, size_t len, uint64_t inflight, size_t *used,
		      struct load_answer *a)
{
	struct http_client *h = state;
	if (!inflight)
		return -1; /* bytes nobody asked for */
	int rc = httpresp_feed(&h->rp, in, len, used);
	if (rc <= 0)
		return rc;
	a->status = h->rp.status;
	a->close = !h->rp.keepalive;
	httpresp_init(&h->rp, h->head);
	return 1;
}

static int http_eof(void *state, struct load_answer *a)
{
	struct http_client *h = state;
	int rc = httpresp_eof(&h->rp);
	if (rc == 1) {
		a->status = h->rp.status;
		a->close = 1;
	}
	return rc;
}

const struct load_client load_client_http = {
	.name = "http",
	.summary = "HTTP/1.1 requests, keep-alive and pipelining; 2xx answers count",
	.flags = LOAD_C_REQRESP | LOAD_C_STATUS | LOAD_C_KEEPALIVE,
	.unit = "request",
	.answers = "requests",
	.scheme = "http://",
	.state_size = sizeof(struct http_client),
	.check = http_check,
	.frame = http_frame,
	.reset = http_reset,
	.parse = http_parse,
	.eof = http_eof,
};
