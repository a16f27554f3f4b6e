/* units: parse and format the quantities users type.
 *
 * Parsers return 0 and store the value, or -1 and write into err[errlen] a message that
 * quotes the bad text and gives an example of good text, e.g.
 *   "bad duration '10x': unknown unit 'x' (use ns, us, ms, s, m, h: e.g. 250ms, 10s, 2m)"
 * Parsers accept surrounding whitespace only at neither end (the text is the whole value),
 * reject empty text, negative values, overflow, trailing garbage.
 *
 *  duration: NUMBER[UNIT], UNIT in ns us ms s m h; a bare number is seconds; decimals ok
 *            ("1.5s", "250ms", "2m", "0.5"). Stored in nanoseconds.
 *  size:     NUMBER[UNIT], UNIT in b k K kb KB KiB m M MB MiB g G GB GiB (all binary, 1k = 1024),
 *            a bare number is bytes ("4k", "64KiB", "1M", "1.5G").
 *  bandwidth: NUMBER UNIT, UNIT in bps kbps Kbps Mbps Gbps (decimal, bits/s) or
 *            B/s KB/s MB/s GB/s KiB/s MiB/s (bytes/s). Stored as bits per second ("1Mbps" -> 1e6).
 *  rate:     NUMBER[k|M][/s] events per second ("10k/s", "5000", "2.5k"). Stored as a double.
 *  cpulist:  Linux list syntax "0-3,6" into a cpu_set_t; CPUs must be < CPU_SETSIZE.
 *  count:    NUMBER[k|M] a non-negative integer ("10k" -> 10000).
 *
 * Formatters write a short human string that the matching parser reads back to the same value
 * (within the printed precision) and return buf. They never fail; buf must hold >= 32 bytes.
 */
#ifndef CTXLAB_CORE_UNITS_H
#define CTXLAB_CORE_UNITS_H

#include <sched.h>
#include <stddef.h>
#include <stdint.h>

int units_parse_duration_ns(const char *s, uint64_t *ns, char *err, size_t errlen);
int units_parse_size_bytes(const char *s, uint64_t *bytes, char *err, size_t errlen);
int units_parse_bandwidth_bps(const char *s, double *bits_per_s, char *err, size_t errlen);
int units_parse_rate_per_s(const char *s, double *per_s, char *err, size_t errlen);
int units_parse_count(const char *s, uint64_t *n, char *err, size_t errlen);
int units_parse_cpulist(const char *s, cpu_set_t *set, char *err, size_t errlen);

char *units_format_duration(uint64_t ns, char *buf, size_t len);   /* "250ms", "1.5s", "12.3us" */
char *units_format_size(uint64_t bytes, char *buf, size_t len);    /* "64KiB", "1.5MiB", "100B" */
char *units_format_bandwidth(double bits_per_s, char *buf, size_t len); /* "1Mbps", "2.5Gbps" */
char *units_format_rate(double per_s, char *buf, size_t len);      /* "10k/s", "1.5M/s", "12/s" */
char *units_format_cpulist(const cpu_set_t *set, char *buf, size_t len); /* "0-3,6" */

#endif
