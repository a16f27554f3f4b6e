#include "core/units.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

/* How much of a bad input an error message quotes. */
#define QUOTE_MAX 64

#define HINT_DURATION "use ns, us, ms, s, m, h: e.g. 250ms, 10s, 2m"
#define HINT_SIZE "use B, KiB, MiB, GiB (k, M, G, KB, MB, GB are binary too): e.g. 4k, 64KiB, 1.5G"
#define HINT_BANDWIDTH "use bps, kbps, Mbps, Gbps, B/s, KB/s, MB/s, GB/s, KiB/s, MiB/s: e.g. 100Mbps, 10MB/s"
#define HINT_RATE "use a number of events per second with optional k or M: e.g. 5000, 10k/s, 2.5M/s"
#define HINT_COUNT "use a whole number with optional k, M or G: e.g. 100, 10k, 2M"
#define HINT_CPULIST "use CPU numbers and ranges: e.g. 0-3,6"

struct unit {
	const char *name;
	double mult;
};

static int bad(char *err, size_t errlen, const char *what, const char *s, const char *hint,
	       const char *fmt, ...) CTXLAB_PRINTF(6, 7);

static int bad(char *err, size_t errlen, const char *what, const char *s, const char *hint,
	       const char *fmt, ...)
{
	char reason[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	return errbuf(err, errlen, "bad %s '%.*s%s': %s (%s)", what, QUOTE_MAX, s,
		      strlen(s) > QUOTE_MAX ? "..." : "", reason, hint);
}

/* A decimal number: DIGITS [ '.' DIGITS ]. */
struct num {
	uint64_t ip;      /* integer part */
	uint64_t frac;    /* first fdigits digits of the fraction */
	int fdigits;
	int overflow;     /* integer part does not fit in 64 bits */
	const char *end;  /* first character after the number */
};

static const uint64_t pow10_u64[] = {
	1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
	100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL,
	10000000000000ULL, 100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
	100000000000000000ULL, 1000000000000000000ULL,
};
#define FRAC_MAX_DIGITS 18

/* Checks what every parser rejects and parses the leading number. 0 or -1 (err written). */
static int lead_number(const char *s, struct num *n, const char *what, const char *hint,
		       char *err, size_t errlen)
{
	const char *p = s;

	memset(n, 0, sizeof(*n));
	if (!s || !*s)
		return bad(err, errlen, what, s ? s : "", hint, "empty value");
	if (isspace((unsigned char)s[0]) || isspace((unsigned char)s[strlen(s) - 1]))
		return bad(err, errlen, what, s, hint, "remove the surrounding whitespace");
	if (*p == '-')
		return bad(err, errlen, what, s, hint, "negative values are not allowed");
	if (*p == '+')
		return bad(err, errlen, what, s, hint, "a sign is not allowed");
	if (!isdigit((unsigned char)*p))
		return bad(err, errlen, what, s, hint, "not a number");
	for (; isdigit((unsigned char)*p); p++) {
		unsigned d = (unsigned)(*p - '0');
		if (n->ip > (UINT64_MAX - d) / 10)
			n->overflow = 1;
		else
			n->ip = n->ip * 10 + d;
	}
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return bad(err, errlen, what, s, hint, "expected digits after '.'");
		for (; isdigit((unsigned char)*p); p++) {
			if (n->fdigits < FRAC_MAX_DIGITS) {
				n->frac = n->frac * 10 + (uint64_t)(*p - '0');
				n->fdigits++;
			}
		}
		/* Trailing zeros carry no value; dropping them keeps whole-number checks exact. */
		while (n->fdigits > 0 && n->frac % 10 == 0) {
			n->frac /= 10;
			n->fdigits--;
		}
	}
	n->end = p;
	return 0;
}

static double num_double(const struct num *n)
{
	return (double)n->ip + (double)n->frac / (double)pow10_u64[n->fdigits];
}

static const struct unit *find_unit(const struct unit *u, const char *name)
{
	for (; u->name; u++)
		if (!strcmp(u->name, name))
			return u;
	return NULL;
}

/* n * mult rounded to the nearest integer; -1 on overflow. */
static int num_scale_u64(const struct num *n, uint64_t mult, uint64_t *out)
{
	if (n->overflow || (mult && n->ip > UINT64_MAX / mult))
		return -1;
	uint64_t v = n->ip * mult;
	long double f = (long double)n->frac * (long double)mult / (long double)pow10_u64[n->fdigits];
	long double r = floorl(f + 0.5L);
	if (r >= 18446744073709551616.0L || (uint64_t)r > UINT64_MAX - v)
		return -1;
	*out = v + (uint64_t)r;
	return 0;
}

static const struct unit duration_units[] = {
	{"ns", 1}, {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9},
	{"min", 60e9}, {"h", 3600e9}, {NULL, 0},
};

int units_parse_duration_ns(const char *s, uint64_t *ns, char *err, size_t errlen)
{
	struct num n;
	const struct unit *u;

	if (lead_number(s, &n, "duration", HINT_DURATION, err, errlen))
		return -1;
	if (!*n.end)
		u = find_unit(duration_units, "s");
	else if (!(u = find_unit(duration_units, n.end)))
		return bad(err, errlen, "duration", s, HINT_DURATION, "unknown unit '%.16s'", n.end);
	if (num_scale_u64(&n, (uint64_t)u->mult, ns))
		return bad(err, errlen, "duration", s, HINT_DURATION, "too large");
	return 0;
}

static const struct unit size_units[] = {
	{"b", 1}, {"B", 1},
	{"k", 0x1p10}, {"K", 0x1p10}, {"kb", 0x1p10}, {"kB", 0x1p10}, {"KB", 0x1p10}, {"KiB", 0x1p10}, {"kiB", 0x1p10},
	{"m", 0x1p20}, {"M", 0x1p20}, {"mb", 0x1p20}, {"MB", 0x1p20}, {"MiB", 0x1p20},
	{"g", 0x1p30}, {"G", 0x1p30}, {"gb", 0x1p30}, {"GB", 0x1p30}, {"GiB", 0x1p30},
	{"t", 0x1p40}, {"T", 0x1p40}, {"tb", 0x1p40}, {"TB", 0x1p40}, {"TiB", 0x1p40},
	{"P", 0x1p50}, {"PB", 0x1p50}, {"PiB", 0x1p50},
	{"E", 0x1p60}, {"EB", 0x1p60}, {"EiB", 0x1p60},
	{NULL, 0},
};

int units_parse_size_bytes(const char *s, uint64_t *bytes, char *err, size_t errlen)
{
	struct num n;
	const struct unit *u;

	if (lead_number(s, &n, "size", HINT_SIZE, err, errlen))
		return -1;
	if (!*n.end)
		u = size_units;
	else if (!(u = find_unit(size_units, n.end)))
		return bad(err, errlen, "size", s, HINT_SIZE, "unknown unit '%.16s'", n.end);
	if (num_scale_u64(&n, (uint64_t)u->mult, bytes))
		return bad(err, errlen, "size", s, HINT_SIZE, "too large");
	return 0;
}

static const struct unit bandwidth_units[] = {
	{"bps", 1}, {"kbps", 1e3}, {"Kbps", 1e3}, {"Mbps", 1e6}, {"mbps", 1e6}, {"Gbps", 1e9},
	{"gbps", 1e9}, {"Tbps", 1e12},
	{"B/s", 8}, {"kB/s", 8e3}, {"KB/s", 8e3}, {"MB/s", 8e6}, {"GB/s", 8e9}, {"TB/s", 8e12},
	{"KiB/s", 8 * 0x1p10}, {"MiB/s", 8 * 0x1p20}, {"GiB/s", 8 * 0x1p30}, {"TiB/s", 8 * 0x1p40},
	{NULL, 0},
};

int units_parse_bandwidth_bps(const char *s, double *bits_per_s, char *err, size_t errlen)
{
	struct num n;
	const struct unit *u;

	if (lead_number(s, &n, "bandwidth", HINT_BANDWIDTH, err, errlen))
		return -1;
	if (!*n.end)
		return bad(err, errlen, "bandwidth", s, HINT_BANDWIDTH, "missing unit");
	if (!(u = find_unit(bandwidth_units, n.end)))
		return bad(err, errlen, "bandwidth", s, HINT_BANDWIDTH, "unknown unit '%.16s'", n.end);
	double v = num_double(&n) * u->mult;
	if (n.overflow || !isfinite(v) || v > 1e18)
		return bad(err, errlen, "bandwidth", s, HINT_BANDWIDTH, "too large");
	*bits_per_s = v;
	return 0;
}

static const struct unit rate_units[] = {
	{"", 1}, {"/s", 1}, {"k", 1e3}, {"k/s", 1e3}, {"K", 1e3}, {"K/s", 1e3},
	{"M", 1e6}, {"M/s", 1e6}, {"G", 1e9}, {"G/s", 1e9}, {NULL, 0},
};

int units_parse_rate_per_s(const char *s, double *per_s, char *err, size_t errlen)
{
	struct num n;
	const struct unit *u;

	if (lead_number(s, &n, "rate", HINT_RATE, err, errlen))
		return -1;
	if (!(u = find_unit(rate_units, n.end)))
		return bad(err, errlen, "rate", s, HINT_RATE, "unknown unit '%.16s'", n.end);
	double v = num_double(&n) * u->mult;
	if (n.overflow || !isfinite(v) || v > 1e15)
		return bad(err, errlen, "rate", s, HINT_RATE, "too large");
	*per_s = v;
	return 0;
}

static const struct unit count_units[] = {
	{"", 1}, {"k", 1e3}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {NULL, 0},
};

int units_parse_count(const char *s, uint64_t *out, char *err, size_t errlen)
{
	struct num n;
	const struct unit *u;

	if (lead_number(s, &n, "count", HINT_COUNT, err, errlen))
		return -1;
	if (!(u = find_unit(count_units, n.end)))
		return bad(err, errlen, "count", s, HINT_COUNT, "unknown suffix '%.16s'", n.end);
	uint64_t mult = (uint64_t)u->mult;
	/* After lead_number dropped trailing zeros, frac/10^fdigits * mult is whole iff
	 * 10^fdigits divides frac * mult; fdigits <= 9 keeps the product in 64 bits. */
	if (n.fdigits && (n.fdigits > 9 || (n.frac * mult) % pow10_u64[n.fdigits]))
		return bad(err, errlen, "count", s, HINT_COUNT, "not a whole number");
	if (num_scale_u64(&n, mult, out))
		return bad(err, errlen, "count", s, HINT_COUNT, "too large");
	return 0;
}

/* Reads a CPU number at *pp; -1 if there are no digits or it is too large. */
static int cpu_number(const char **pp, unsigned long *v)
{
	const char *p = *pp;
	unsigned long x = 0;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		if (x > 1000000)
			return -2;
		x = x * 10 + (unsigned long)(*p - '0');
	}
	*pp = p;
	*v = x;
	return 0;
}

int units_parse_cpulist(const char *s, cpu_set_t *set, char *err, size_t errlen)
{
	const char *p = s;
	cpu_set_t tmp;

	if (!s || !*s)
		return bad(err, errlen, "cpu list", s ? s : "", HINT_CPULIST, "empty value");
	if (isspace((unsigned char)s[0]) || isspace((unsigned char)s[strlen(s) - 1]))
		return bad(err, errlen, "cpu list", s, HINT_CPULIST, "remove the surrounding whitespace");
	CPU_ZERO(&tmp);
	for (;;) {
		unsigned long lo, hi, stride = 1;
		const char *item = p;
		int r;

		if (*p == ',' || !*p)
			return bad(err, errlen, "cpu list", s, HINT_CPULIST, "empty item at offset %d",
				   (int)(p - s));
		if (*p == '-')
			return bad(err, errlen, "cpu list", s, HINT_CPULIST, "negative CPU numbers are not allowed");
		if ((r = cpu_number(&p, &lo)))
			goto badnum;
		hi = lo;
		if (*p == '-') {
			p++;
			if ((r = cpu_number(&p, &hi)))
				goto badnum;
			if (*p == ':') {
				p++;
				if ((r = cpu_number(&p, &stride)))
					goto badnum;
				if (!stride)
					return bad(err, errlen, "cpu list", s, HINT_CPULIST, "stride must be at least 1");
			}
		}
		if (*p && *p != ',')
			return bad(err, errlen, "cpu list", s, HINT_CPULIST, "unexpected '%c' at offset %d",
				   *p, (int)(p - s));
		if (hi < lo)
			return bad(err, errlen, "cpu list", s, HINT_CPULIST, "range %lu-%lu is reversed", lo, hi);
		if (hi >= CPU_SETSIZE)
			return bad(err, errlen, "cpu list", s, HINT_CPULIST, "cpu %lu is not below CPU_SETSIZE %d",
				   hi, CPU_SETSIZE);
		for (unsigned long c = lo; c <= hi; c += stride)
			CPU_SET(c, &tmp);
		if (!*p)
			break;
		p++; /* ',' */
		continue;
badnum:
		if (r == -2)
			return bad(err, errlen, "cpu list", s, HINT_CPULIST, "cpu number in '%.*s' is too large",
				   (int)strcspn(item, ","), item);
		return bad(err, errlen, "cpu list", s, HINT_CPULIST, "expected a CPU number at offset %d",
			   (int)(p - s));
	}
	*set = tmp;
	return 0;
}

/* ---- formatting ---------------------------------------------------------- */

/* Decimals that give three significant digits (at most 6 decimals). */
static int sig3_decimals(double v)
{
	if (v >= 100 || v == 0)
		return 0;
	if (v >= 10)
		return 1;
	if (v >= 1)
		return 2;
	int d = 2 - (int)floor(log10(v));
	return d > 6 ? 6 : d;
}

/* Formats v with three significant digits, trailing zeros trimmed. */
static void fmt_sig3(double v, char *out, size_t len)
{
	snprintf(out, len, "%.*f", sig3_decimals(v), v);
	if (strchr(out, '.')) {
		size_t n = strlen(out);
		while (n > 0 && out[n - 1] == '0')
			out[--n] = 0;
		if (n > 0 && out[n - 1] == '.')
			out[--n] = 0;
	}
}

/* Picks the largest unit not above x, prints x in it with three significant digits and moves
 * to the next unit when rounding reached it (999.7 -> "1k", not "1000"). */
static char *fmt_ladder(double x, const struct unit *u, size_t nu, const char *suffix, char *buf,
			size_t len)
{
	char num[48];
	size_t i = 0;

	if (!(x > 0)) /* negative and NaN */
		x = 0;
	if (isinf(x)) {
		snprintf(buf, len, "inf%s", suffix);
		return buf;
	}
	while (i + 1 < nu && x >= u[i + 1].mult)
		i++;
	for (;;) {
		fmt_sig3(x / u[i].mult, num, sizeof(num));
		if (i + 1 < nu && strtod(num, NULL) * u[i].mult >= u[i + 1].mult) {
			i++;
			continue;
		}
		break;
	}
	snprintf(buf, len, "%s%s%s", num, u[i].name, suffix);
	return buf;
}

char *units_format_duration(uint64_t ns, char *buf, size_t len)
{
	static const struct unit ladder[] = {{"ns", 1}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}};
	const uint64_t min_ns = 60000000000ULL, hour_ns = 3600000000000ULL;
	char num[48];

	if (ns >= 100 * hour_ns) {
		/* whole hours, rounded without leaving 64 bits (so it parses back) */
		uint64_t h = ns / hour_ns + (ns % hour_ns >= hour_ns / 2);
		if (h > UINT64_MAX / hour_ns)
			h--;
		snprintf(buf, len, "%" PRIu64 "h", h);
		return buf;
	}
	if (ns >= hour_ns - hour_ns / 2000) { /* rounds to >= 1h at three digits */
		fmt_sig3((double)ns / (double)hour_ns, num, sizeof(num));
		snprintf(buf, len, "%sh", num);
		return buf;
	}
	if (ns >= min_ns && ns % min_ns == 0) {
		snprintf(buf, len, "%" PRIu64 "m", ns / min_ns);
		return buf;
	}
	if (ns < 1000) {
		snprintf(buf, len, "%" PRIu64 "ns", ns);
		return buf;
	}
	return fmt_ladder((double)ns, ladder, 4, "", buf, len);
}

char *units_format_size(uint64_t bytes, char *buf, size_t len)
{
	static const struct unit ladder[] = {
		{"B", 1}, {"KiB", 0x1p10}, {"MiB", 0x1p20}, {"GiB", 0x1p30},
		{"TiB", 0x1p40}, {"PiB", 0x1p50}, {"EiB", 0x1p60},
	};
	/* At the very top, "16EiB" would not fit in 64 bits when read back: print it exactly. */
	if (bytes < 1024 || bytes > UINT64_MAX - UINT64_MAX / 256) {
		snprintf(buf, len, "%" PRIu64 "B", bytes);
		return buf;
	}
	return fmt_ladder((double)bytes, ladder, 7, "", buf, len);
}

char *units_format_bandwidth(double bits_per_s, char *buf, size_t len)
{
	static const struct unit ladder[] = {
		{"bps", 1}, {"kbps", 1e3}, {"Mbps", 1e6}, {"Gbps", 1e9}, {"Tbps", 1e12},
	};
	return fmt_ladder(bits_per_s, ladder, 5, "", buf, len);
}

char *units_format_rate(double per_s, char *buf, size_t len)
{
	static const struct unit ladder[] = {{"", 1}, {"k", 1e3}, {"M", 1e6}, {"G", 1e9}};
	return fmt_ladder(per_s, ladder, 4, "/s", buf, len);
}

char *units_format_cpulist(const cpu_set_t *set, char *buf, size_t len)
{
	size_t off = 0;
	int c = 0;

	if (!len)
		return buf;
	buf[0] = 0;
	while (c < CPU_SETSIZE) {
		if (!CPU_ISSET(c, set)) {
			c++;
			continue;
		}
		int lo = c;
		while (c + 1 < CPU_SETSIZE && CPU_ISSET(c + 1, set))
			c++;
		char item[32];
		int n = lo == c ? snprintf(item, sizeof(item), "%s%d", off ? "," : "", lo)
				: snprintf(item, sizeof(item), "%s%d-%d", off ? "," : "", lo, c);
		if (off + (size_t)n + 1 > len) {
			/* Does not fit: end with "..." so nobody mistakes it for the whole list. */
			size_t keep = len > 4 ? len - 4 : 0;
			if (off > keep)
				off = keep;
			snprintf(buf + off, len - off, "...");
			return buf;
		}
		memcpy(buf + off, item, (size_t)n + 1);
		off += (size_t)n;
		c++;
	}
	return buf;
}
