#include "load/httpreq.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"

static int has_ctl(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\r' || s[i] == '\n' || s[i] == 0)
			return 1;
	return 0;
}

static int header_is(const char *h, const char *name)
{
	size_t n = strlen(name);
	return !strncasecmp(h, name, n) && h[n] == ':';
}

int httpreq_build(struct buf *out, const struct httpreq *r, char *err, size_t errlen)
{
	const char *method = r->method ? r->method : "GET";
	const char *path = r->path ? r->path : "/";
	int has_host = 0, has_len = 0, has_conn = 0;

	if (!*method || strchr(method, ' ') || has_ctl(method, strlen(method))) {
		errbuf(err, errlen, "bad method '%s' (use e.g. GET, POST)", method);
		return -EINVAL;
	}
	if (path[0] != '/' || strchr(path, ' ') || has_ctl(path, strlen(path))) {
		errbuf(err, errlen, "bad path '%s' (use e.g. /index.html)", path);
		return -EINVAL;
	}
	if (!r->host || !*r->host || has_ctl(r->host, strlen(r->host))) {
		errbuf(err, errlen, "bad host '%s'", r->host ? r->host : "");
		return -EINVAL;
	}
	for (size_t i = 0; i < r->nheaders; i++) {
		const char *h = r->headers[i];
		const char *colon = strchr(h, ':');
		if (!colon || colon == h || has_ctl(h, strlen(h)) ||
		    strcspn(h, " \t") < (size_t)(colon - h)) {
			errbuf(err, errlen, "bad header '%s' (use 'Name: value')", h);
			return -EINVAL;
		}
		has_host |= header_is(h, "host");
		has_len |= header_is(h, "content-length");
		has_conn |= header_is(h, "connection");
	}
	int rc = buf_appendf(out, "%s %s HTTP/1.1\r\n", method, path);
	if (!rc && !has_host)
		rc = buf_appendf(out, "Host: %s\r\n", r->host);
	for (size_t i = 0; !rc && i < r->nheaders; i++)
		rc = buf_appendf(out, "%s\r\n", r->headers[i]);
	if (!rc && !has_len &&
	    (r->body_len || !strcmp(method, "POST") || !strcmp(method, "PUT") ||
	     !strcmp(method, "PATCH")))
		rc = buf_appendf(out, "Content-Length: %zu\r\n", r->body_len);
	if (!rc && !r->keepalive && !has_conn)
		rc = buf_append(out, "Connection: close\r\n", 19);
	if (!rc)
		rc = buf_append(out, "\r\n", 2);
	if (!rc && r->body_len)
		rc = buf_append(out, r->body, r->body_len);
	if (rc)
		errbuf(err, errlen, "out of memory building the request");
	return rc;
}

int httpreq_split_url(const char *url, char *hostport, size_t hplen, char *path, size_t pathlen,
		      char *err, size_t errlen)
{
	const char *s = url;
	int scheme = 0;
	if (!strncasecmp(s, "https://", 8))
		return errbuf(err, errlen, "bad target '%s': https is not supported (use http:// or HOST:PORT)", url);
	if (!strncasecmp(s, "http://", 7)) {
		s += 7;
		scheme = 1;
	}
	const char *slash = strchr(s, '/');
	size_t hl = slash ? (size_t)(slash - s) : strlen(s);
	if (!hl)
		return errbuf(err, errlen, "bad target '%s': no host (use e.g. 127.0.0.1:8080 or http://127.0.0.1:8080/)", url);
	/* does the host part carry a port? ("[v6]:p", "h:p") */
	const char *rb = memchr(s, ']', hl);
	const char *colon = NULL;
	for (const char *q = rb ? rb : s; q < s + hl; q++)
		if (*q == ':')
			colon = q;
	int n;
	if (!colon && !scheme)
		return errbuf(err, errlen, "bad target '%s': no port (use e.g. 127.0.0.1:8080)", url);
	if (colon)
		n = snprintf(hostport, hplen, "%.*s", (int)hl, s);
	else
		n = snprintf(hostport, hplen, "%.*s:80", (int)hl, s);
	if (n < 0 || (size_t)n >= hplen)
		return errbuf(err, errlen, "bad target '%s': too long", url);
	n = snprintf(path, pathlen, "%s", slash ? slash : "/");
	if (n < 0 || (size_t)n >= pathlen)
		return errbuf(err, errlen, "bad target '%s': path too long", url);
	return 0;
}
