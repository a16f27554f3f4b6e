/* units: every parser and formatter, round trips, and the error text of malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/units.h"

static char err[256];

/* ---- parsing good input ---------------------------------------------------- */

static uint64_t dur(const char *s)
{
	uint64_t v = 12345;
	err[0] = 0;
	int r = units_parse_duration_ns(s, &v, err, sizeof(err));
	if (r)
		fail_msg("duration '%s' rejected: %s", s, err);
	return v;
}

static void test_parse_duration(void **state)
{
	assert_int_equal(dur("250ms"), 250000000ULL);
	assert_int_equal(dur("1.5s"), 1500000000ULL);
	assert_int_equal(dur("2m"), 120000000000ULL);
	assert_int_equal(dur("0.5"), 500000000ULL);
	assert_int_equal(dur("10"), 10000000000ULL);
	assert_int_equal(dur("0"), 0);
	assert_int_equal(dur("7ns"), 7);
	assert_int_equal(dur("12.3us"), 12300);
	assert_int_equal(dur("1h"), 3600000000000ULL);
	assert_int_equal(dur("1.25h"), 4500000000000ULL);
	assert_int_equal(dur("0.001ms"), 1000);
	assert_int_equal(dur("1.5ns"), 2); /* rounded to the nearest ns */
	assert_int_equal(dur("18446744073709551615ns"), UINT64_MAX);
}

static uint64_t size(const char *s)
{
	uint64_t v = 0;
	if (units_parse_size_bytes(s, &v, err, sizeof(err)))
		fail_msg("size '%s' rejected: %s", s, err);
	return v;
}

static void test_parse_size(void **state)
{
	assert_int_equal(size("4k"), 4096);
	assert_int_equal(size("64KiB"), 65536);
	assert_int_equal(size("1M"), 1048576);
	assert_int_equal(size("1.5G"), 1610612736ULL);
	assert_int_equal(size("100"), 100);
	assert_int_equal(size("100B"), 100);
	assert_int_equal(size("100b"), 100);
	assert_int_equal(size("2KB"), 2048);
	assert_int_equal(size("2kb"), 2048);
	assert_int_equal(size("3MB"), 3 * 1048576);
	assert_int_equal(size("3MiB"), 3 * 1048576);
	assert_int_equal(size("1GB"), 1073741824ULL);
	assert_int_equal(size("1GiB"), 1073741824ULL);
	assert_int_equal(size("0"), 0);
	assert_int_equal(size("15EiB"), 15ULL << 60);
}

static double bw(const char *s)
{
	double v = 0;
	if (units_parse_bandwidth_bps(s, &v, err, sizeof(err)))
		fail_msg("bandwidth '%s' rejected: %s", s, err);
	return v;
}

static void test_parse_bandwidth(void **state)
{
	assert_true(bw("1Mbps") == 1e6);
	assert_true(bw("2.5Gbps") == 2.5e9);
	assert_true(bw("100bps") == 100);
	assert_true(bw("10kbps") == 1e4);
	assert_true(bw("10Kbps") == 1e4);
	assert_true(bw("1B/s") == 8);
	assert_true(bw("1KB/s") == 8000);
	assert_true(bw("10MB/s") == 8e7);
	assert_true(bw("1GB/s") == 8e9);
	assert_true(bw("1KiB/s") == 8192);
	assert_true(bw("1MiB/s") == 8.0 * 1048576);
}

static double rate(const char *s)
{
	double v = 0;
	if (units_parse_rate_per_s(s, &v, err, sizeof(err)))
		fail_msg("rate '%s' rejected: %s", s, err);
	return v;
}

static void test_parse_rate(void **state)
{
	assert_true(rate("10k/s") == 10000);
	assert_true(rate("5000") == 5000);
	assert_true(rate("2.5k") == 2500);
	assert_true(rate("1.5M/s") == 1.5e6);
	assert_true(rate("12/s") == 12);
	assert_true(rate("0.5") == 0.5);
	assert_true(rate("0") == 0);
}

static uint64_t count(const char *s)
{
	uint64_t v = 0;
	if (units_parse_count(s, &v, err, sizeof(err)))
		fail_msg("count '%s' rejected: %s", s, err);
	return v;
}

static void test_parse_count(void **state)
{
	assert_int_equal(count("10k"), 10000);
	assert_int_equal(count("0"), 0);
	assert_int_equal(count("42"), 42);
	assert_int_equal(count("2M"), 2000000);
	assert_int_equal(count("1.5k"), 1500);
	assert_int_equal(count("2.50k"), 2500);
	assert_int_equal(count("1G"), 1000000000ULL);
	assert_int_equal(count("18446744073709551615"), UINT64_MAX);
}

static void test_parse_cpulist(void **state)
{
	cpu_set_t set;
	assert_int_equal(units_parse_cpulist("0-3,6", &set, err, sizeof(err)), 0);
	assert_int_equal(CPU_COUNT(&set), 5);
	for (int c = 0; c < 4; c++)
		assert_true(CPU_ISSET(c, &set));
	assert_false(CPU_ISSET(4, &set));
	assert_false(CPU_ISSET(5, &set));
	assert_true(CPU_ISSET(6, &set));

	assert_int_equal(units_parse_cpulist("1", &set, err, sizeof(err)), 0);
	assert_int_equal(CPU_COUNT(&set), 1);
	assert_true(CPU_ISSET(1, &set));

	assert_int_equal(units_parse_cpulist("0-7:2", &set, err, sizeof(err)), 0);
	assert_int_equal(CPU_COUNT(&set), 4);
	assert_true(CPU_ISSET(0, &set) && CPU_ISSET(2, &set) && CPU_ISSET(4, &set) && CPU_ISSET(6, &set));

	char last[16];
	snprintf(last, sizeof(last), "%d", CPU_SETSIZE - 1);
	assert_int_equal(units_parse_cpulist(last, &set, err, sizeof(err)), 0);
	assert_true(CPU_ISSET(CPU_SETSIZE - 1, &set));

	/* overlapping and unordered items are a union */
	assert_int_equal(units_parse_cpulist("5,0-2,1", &set, err, sizeof(err)), 0);
	assert_int_equal(CPU_COUNT(&set), 4);
}

/* ---- formatting --------------------------------------------------------------- */

static void test_format(void **state)
{
	char b[64];
	assert_string_equal(units_format_duration(250000000ULL, b, sizeof(b)), "250ms");
	assert_string_equal(units_format_duration(1500000000ULL, b, sizeof(b)), "1.5s");
	assert_string_equal(units_format_duration(12300, b, sizeof(b)), "12.3us");
	assert_string_equal(units_format_duration(12345, b, sizeof(b)), "12.3us");
	assert_string_equal(units_format_duration(0, b, sizeof(b)), "0ns");
	assert_string_equal(units_format_duration(999, b, sizeof(b)), "999ns");
	assert_string_equal(units_format_duration(1000, b, sizeof(b)), "1us");
	assert_string_equal(units_format_duration(999999, b, sizeof(b)), "1ms");
	assert_string_equal(units_format_duration(120000000000ULL, b, sizeof(b)), "2m");
	assert_string_equal(units_format_duration(90000000000ULL, b, sizeof(b)), "90s");
	assert_string_equal(units_format_duration(3600000000000ULL, b, sizeof(b)), "1h");
	assert_string_equal(units_format_duration(5400000000000ULL, b, sizeof(b)), "1.5h");

	assert_string_equal(units_format_size(65536, b, sizeof(b)), "64KiB");
	assert_string_equal(units_format_size(1572864, b, sizeof(b)), "1.5MiB");
	assert_string_equal(units_format_size(100, b, sizeof(b)), "100B");
	assert_string_equal(units_format_size(0, b, sizeof(b)), "0B");
	assert_string_equal(units_format_size(1023, b, sizeof(b)), "1023B");
	assert_string_equal(units_format_size(1ULL << 30, b, sizeof(b)), "1GiB");
	assert_string_equal(units_format_size(UINT64_MAX, b, sizeof(b)), "18446744073709551615B");

	assert_string_equal(units_format_bandwidth(1e6, b, sizeof(b)), "1Mbps");
	assert_string_equal(units_format_bandwidth(2.5e9, b, sizeof(b)), "2.5Gbps");
	assert_string_equal(units_format_bandwidth(999.96e3, b, sizeof(b)), "1Mbps");
	assert_string_equal(units_format_bandwidth(0, b, sizeof(b)), "0bps");
	assert_string_equal(units_format_bandwidth(123, b, sizeof(b)), "123bps");

	assert_string_equal(units_format_rate(10000, b, sizeof(b)), "10k/s");
	assert_string_equal(units_format_rate(1.5e6, b, sizeof(b)), "1.5M/s");
	assert_string_equal(units_format_rate(12, b, sizeof(b)), "12/s");
	assert_string_equal(units_format_rate(0.25, b, sizeof(b)), "0.25/s");
	assert_string_equal(units_format_rate(-3, b, sizeof(b)), "0/s");

	cpu_set_t set;
	CPU_ZERO(&set);
	for (int c = 0; c < 4; c++)
		CPU_SET(c, &set);
	CPU_SET(6, &set);
	assert_string_equal(units_format_cpulist(&set, b, sizeof(b)), "0-3,6");
	CPU_ZERO(&set);
	CPU_SET(7, &set);
	assert_string_equal(units_format_cpulist(&set, b, sizeof(b)), "7");
	CPU_ZERO(&set);
	assert_string_equal(units_format_cpulist(&set, b, sizeof(b)), "");
}

static void test_format_small_buffer(void **state)
{
	/* every other CPU set: the list is far longer than 32 bytes and must end in "..." */
	char b[32];
	cpu_set_t set;
	CPU_ZERO(&set);
	for (int c = 0; c < 200; c += 2)
		CPU_SET(c, &set);
	units_format_cpulist(&set, b, sizeof(b));
	assert_true(strlen(b) < sizeof(b));
	assert_non_null(strstr(b, "..."));
	assert_int_equal(strncmp(b, "0,2,4,", 6), 0);
}

/* ---- round trips: format -> parse gives the value back within the printed precision
 * (three significant digits: 0.5% relative) ----------------------------------------- */

static uint64_t xs = 0x9e3779b97f4a7c15ULL;
static uint64_t xorshift(void)
{
	xs ^= xs << 13;
	xs ^= xs >> 7;
	xs ^= xs << 17;
	return xs;
}

/* log-uniform over [1, 2^bits) */
static uint64_t logrand(int bits)
{
	int b = (int)(xorshift() % (uint64_t)bits) + 1;
	uint64_t v = xorshift() & (b == 64 ? UINT64_MAX : ((1ULL << b) - 1));
	return v ? v : 1;
}

static void near(double want, double got, const char *text)
{
	double tol = want * 0.005 + 1e-9;
	if (fabs(want - got) > tol)
		fail_msg("'%s' reads back as %.17g, wanted %.17g", text, got, want);
}

static void test_round_trip(void **state)
{
	char b[64];
	for (int i = 0; i < 20000; i++) {
		uint64_t v = logrand(64), back = 0;
		units_format_duration(v, b, sizeof(b));
		if (units_parse_duration_ns(b, &back, err, sizeof(err)))
			fail_msg("formatted duration '%s' does not parse: %s", b, err);
		near((double)v, (double)back, b);

		units_format_size(v, b, sizeof(b));
		if (units_parse_size_bytes(b, &back, err, sizeof(err)))
			fail_msg("formatted size '%s' does not parse: %s", b, err);
		near((double)v, (double)back, b);

		double d = (double)logrand(50) / 1024.0, dback = 0;
		units_format_bandwidth(d, b, sizeof(b));
		if (units_parse_bandwidth_bps(b, &dback, err, sizeof(err)))
			fail_msg("formatted bandwidth '%s' does not parse: %s", b, err);
		near(d, dback, b);

		units_format_rate(d, b, sizeof(b));
		if (units_parse_rate_per_s(b, &dback, err, sizeof(err)))
			fail_msg("formatted rate '%s' does not parse: %s", b, err);
		near(d, dback, b);

		cpu_set_t set, set2;
		CPU_ZERO(&set);
		for (int k = 0; k < 8; k++)
			CPU_SET(xorshift() % 64, &set);
		units_format_cpulist(&set, b, sizeof(b));
		if (units_parse_cpulist(b, &set2, err, sizeof(err)))
			fail_msg("formatted cpu list '%s' does not parse: %s", b, err);
		assert_true(CPU_EQUAL(&set, &set2));
	}
}

/* ---- malformed input: -1, and the message quotes the input and shows an example ----- */

struct badcase {
	const char *in;
	const char *reason; /* a piece of the reason */
};

typedef int (*parse_fn)(const char *s, void *out, char *e, size_t el);

static int p_dur(const char *s, void *o, char *e, size_t el) { return units_parse_duration_ns(s, o, e, el); }
static int p_size(const char *s, void *o, char *e, size_t el) { return units_parse_size_bytes(s, o, e, el); }
static int p_bw(const char *s, void *o, char *e, size_t el) { return units_parse_bandwidth_bps(s, o, e, el); }
static int p_rate(const char *s, void *o, char *e, size_t el) { return units_parse_rate_per_s(s, o, e, el); }
static int p_count(const char *s, void *o, char *e, size_t el) { return units_parse_count(s, o, e, el); }
static int p_cpu(const char *s, void *o, char *e, size_t el) { return units_parse_cpulist(s, o, e, el); }

static void check_bad(parse_fn fn, const char *what, const char *example, const struct badcase *c,
		      size_t n)
{
	assert_true(n >= 10);
	for (size_t i = 0; i < n; i++) {
		union {
			uint64_t u;
			double d;
			cpu_set_t set;
		} out, before;
		memset(&out, 0x5a, sizeof(out));
		before = out;
		char quoted[128];
		err[0] = 0;
		int r = fn(c[i].in, &out, err, sizeof(err));
		if (r != -1)
			fail_msg("%s '%s' accepted (r=%d)", what, c[i].in, r);
		if (memcmp(&out, &before, sizeof(out)))
			fail_msg("%s '%s': output written on error", what, c[i].in);
		snprintf(quoted, sizeof(quoted), "bad %s '%s'", what, c[i].in);
		if (!strstr(err, quoted))
			fail_msg("%s '%s': message does not quote it: %s", what, c[i].in, err);
		if (!strstr(err, c[i].reason))
			fail_msg("%s '%s': message lacks '%s': %s", what, c[i].in, c[i].reason, err);
		if (!strstr(err, example))
			fail_msg("%s '%s': message lacks the example '%s': %s", what, c[i].in, example, err);
	}
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_bad_duration(void **state)
{
	static const struct badcase c[] = {
		{"", "empty"},
		{"10x", "unknown unit 'x'"},
		{"-5s", "negative"},
		{"+5s", "sign"},
		{" 5s", "whitespace"},
		{"5s ", "whitespace"},
		{"5 s", "unknown unit ' s'"},
		{"ms", "not a number"},
		{"1.s", "digits after '.'"},
		{".5s", "not a number"},
		{"1e3", "unknown unit 'e3'"},
		{"5sec", "unknown unit 'sec'"},
		{"99999999999999999999s", "too large"},
		{"18446744073709551616ns", "too large"},
		{"6000000h", "too large"},
		{"1.2.3s", "unknown unit '.3s'"},
		{"nan", "not a number"},
	};
	check_bad(p_dur, "duration", "e.g. 250ms", c, N(c));
}

static void test_bad_size(void **state)
{
	static const struct badcase c[] = {
		{"", "empty"},
		{"4x", "unknown unit 'x'"},
		{"-4k", "negative"},
		{"4 k", "unknown unit ' k'"},
		{"\t4k", "whitespace"},
		{"4k\n", "whitespace"},
		{"k", "not a number"},
		{"4.k", "digits after '.'"},
		{"4kibibytes", "unknown unit"},
		{"16EiB", "too large"},
		{"99999999999999999999", "too large"},
		{"4Kb/s", "unknown unit"},
		{"0x10", "unknown unit 'x10'"},
	};
	check_bad(p_size, "size", "e.g. 4k", c, N(c));
}

static void test_bad_bandwidth(void **state)
{
	static const struct badcase c[] = {
		{"", "empty"},
		{"100", "missing unit"},
		{"100M", "unknown unit 'M'"},
		{"-1Mbps", "negative"},
		{"1 Mbps", "unknown unit ' Mbps'"},
		{" 1Mbps", "whitespace"},
		{"Mbps", "not a number"},
		{"1.Mbps", "digits after '.'"},
		{"1Mb", "unknown unit 'Mb'"},
		{"1e30Gbps", "unknown unit 'e30Gbps'"},
		{"99999999999999999999999Gbps", "too large"},
		{"1MiBps", "unknown unit"},
	};
	check_bad(p_bw, "bandwidth", "e.g. 100Mbps", c, N(c));
}

static void test_bad_rate(void **state)
{
	static const struct badcase c[] = {
		{"", "empty"},
		{"10x", "unknown unit 'x'"},
		{"-10", "negative"},
		{"10 k", "unknown unit ' k'"},
		{"10k ", "whitespace"},
		{"k/s", "not a number"},
		{"10./s", "digits after '.'"},
		{"10/m", "unknown unit '/m'"},
		{"10kk", "unknown unit 'kk'"},
		{"1e3", "unknown unit 'e3'"},
		{"9999999999999999999999", "too large"},
		{"inf", "not a number"},
	};
	check_bad(p_rate, "rate", "e.g. 5000", c, N(c));
}

static void test_bad_count(void **state)
{
	static const struct badcase c[] = {
		{"", "empty"},
		{"10x", "unknown suffix 'x'"},
		{"-1", "negative"},
		{"1.5", "not a whole number"},
		{"1.2345k", "not a whole number"},
		{"10 k", "unknown suffix ' k'"},
		{" 10", "whitespace"},
		{"k", "not a number"},
		{"3.k", "digits after '.'"},
		{"18446744073709551616", "too large"},
		{"20000000000G", "too large"},
		{"10/s", "unknown suffix"},
		{"0.0000000001G", "not a whole number"},
	};
	check_bad(p_count, "count", "e.g. 100, 10k", c, N(c));
}

static void test_bad_cpulist(void **state)
{
	static const struct badcase c[] = {
		{"", "empty"},
		{",", "empty item"},
		{"1,,2", "empty item"},
		{"1,", "empty item"},
		{"3-1", "range 3-1 is reversed"},
		{"a", "expected a CPU number"},
		{"1-", "expected a CPU number"},
		{"-1", "negative"},
		{" 1", "whitespace"},
		{"1 ", "whitespace"},
		{"1;2", "unexpected ';'"},
		{"99999", "CPU_SETSIZE"},
		{"0-99999999999999", "too large"},
		{"0-7:0", "stride"},
		{"1.5", "unexpected '.'"},
	};
	check_bad(p_cpu, "cpu list", "e.g. 0-3,6", c, N(c));
}

static void test_long_input_quoted_shortened(void **state)
{
	char in[300];
	uint64_t v;
	memset(in, '7', sizeof(in));
	memcpy(in + sizeof(in) - 3, "xy", 3);
	assert_int_equal(units_parse_duration_ns(in, &v, err, sizeof(err)), -1);
	assert_true(strlen(err) < sizeof(err));
	assert_non_null(strstr(err, "bad duration '7777"));
	assert_non_null(strstr(err, "...'"));
	/* a NULL error buffer is allowed */
	assert_int_equal(units_parse_duration_ns("x", &v, NULL, 0), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_bandwidth),
		cmocka_unit_test(test_parse_rate),
		cmocka_unit_test(test_parse_count),
		cmocka_unit_test(test_parse_cpulist),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_format_small_buffer),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_bad_duration),
		cmocka_unit_test(test_bad_size),
		cmocka_unit_test(test_bad_bandwidth),
		cmocka_unit_test(test_bad_rate),
		cmocka_unit_test(test_bad_count),
		cmocka_unit_test(test_bad_cpulist),
		cmocka_unit_test(test_long_input_quoted_shortened),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
