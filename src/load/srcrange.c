#include "load/srcrange.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "core/log.h"

static int parse_ip(const char *s, size_t n, uint32_t *ip)
{
	char tmp[INET_ADDRSTRLEN];
	struct in_addr a;
	if (!n || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = 0;
	if (inet_pton(AF_INET, tmp, &a) != 1)
		return -1;
	*ip = ntohl(a.s_addr);
	return 0;
}

int srcrange_parse(const char *s, struct srcrange *r, char *err, size_t errlen)
{
	memset(r, 0, sizeof(*r));
	const char *p = s;
	if (!*s)
		goto bad;
	for (;;) {
		size_t n = strcspn(p, ",");
		const char *dash = memchr(p, '-', n);
		uint32_t lo, hi;
		if (r->n == SRCRANGE_MAX_ITEMS)
			return errbuf(err, errlen, "bad source list '%s': more than %d items", s,
				      SRCRANGE_MAX_ITEMS);
		if (dash) {
			if (parse_ip(p, (size_t)(dash - p), &lo) ||
			    parse_ip(dash + 1, n - (size_t)(dash - p) - 1, &hi))
				goto bad;
			if (lo > hi)
				return errbuf(err, errlen,
					      "bad source range '%.*s': the first address is above the last",
					      (int)n, p);
		} else {
			if (parse_ip(p, n, &lo))
				goto bad;
			hi = lo;
		}
		r->lo[r->n] = lo;
		r->hi[r->n] = hi;
		r->count += (uint64_t)hi - lo + 1;
		r->n++;
		if (!p[n])
			break;
		p += n + 1;
	}
	return 0;
bad:
	return errbuf(err, errlen,
		      "bad source list '%s' (use IPv4 addresses or ranges, e.g. 127.0.0.2-127.0.0.20)",
		      s);
}

void srcrange_addr(const struct srcrange *r, uint64_t i, struct net_addr *out)
{
	memset(out, 0, sizeof(*out));
	struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
	sin->sin_family = AF_INET;
	out->len = sizeof(*sin);
	if (!r->count)
		return;
	i %= r->count;
	for (size_t k = 0; k < r->n; k++) {
		uint64_t sz = (uint64_t)r->hi[k] - r->lo[k] + 1;
		if (i < sz) {
			sin->sin_addr.s_addr = htonl(r->lo[k] + (uint32_t)i);
			return;
		}
		i -= sz;
	}
}
