/* srcrange: the --source address list, to spread connections over many local IPv4 addresses
 * (each gives its own ~28k ephemeral ports; 127.0.0.0/8 is all local on Linux).
 *
 * Syntax: comma-separated items, each an IPv4 address or an inclusive range A-B with A <= B:
 * "127.0.0.2-127.0.0.20", "127.0.0.2,127.0.0.5-127.0.0.9". At most SRCRANGE_MAX_ITEMS items.
 * Pure functions, no I/O. */
#ifndef CTXLAB_LOAD_SRCRANGE_H
#define CTXLAB_LOAD_SRCRANGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/net.h"

#define SRCRANGE_MAX_ITEMS 32

struct srcrange {
	size_t n;                 /* number of items */
	uint32_t lo[SRCRANGE_MAX_ITEMS], hi[SRCRANGE_MAX_ITEMS]; /* host byte order */
	uint64_t count;           /* total addresses */
};

/* 0, or -1 with err quoting the bad text and giving an example. */
int srcrange_parse(const char *s, struct srcrange *r, char *err, size_t errlen);
/* The i-th address (i taken modulo count), port 0, as a bindable net_addr. */
void srcrange_addr(const struct srcrange *r, uint64_t i, struct net_addr *out);

#endif
