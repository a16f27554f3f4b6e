/* opt: every accepted form (short, clustered, attached, long with = and with a separate value,
 * optional values, `--`, operands mixed in, stop at the first operand), every usage error and
 * its exact wording, value checking by type and by callback, and the help rows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/opt.h"

static int flag_a, flag_b;
static const char *str, *mode;
static uint64_t dur_ns, size_bytes, count;
static int level;
static int mode_given;

static int cb_level(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	char *end;
	long v = strtol(arg, &end, 10);
	if (!arg[0] || *end || v < 1 || v > 9)
		return errbuf(err, errlen, "use 1..9");
	*(int *)o->value = (int)v;
	return 0;
}

static int cb_mode(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	mode_given = 1;
	if (arg && strcmp(arg, "first") && strcmp(arg, "all"))
		return errbuf(err, errlen, "use first or all");
	*(const char **)o->value = arg ? arg : "default";
	return 0;
}

static const struct opt opts[] = {
	OPT_GROUP("options:"),
	OPT_FLAG('a', "alpha", &flag_a, "the a flag"),
	OPT_FLAG('b', NULL, &flag_b, "only short"),
	OPT_STRING('o', "output", &str, "FILE", "where to write\nsecond line"),
	OPT_DURATION('d', "duration", &dur_ns, "DUR", "how long"),
	OPT_SIZE(0, "size", &size_bytes, "SIZE", "how big"),
	OPT_COUNT('n', "count", &count, "N", "how many"),
	OPT_CALLBACK('l', "level", &level, "L", "a level 1..9", cb_level),
	OPT_CALLBACK_OPTARG(0, "mode", &mode, "MODE", "optional value", cb_mode),
	OPT_DOC("-- CMD", "a command"),
	OPT_END(),
};

static char err[512];

static void reset(void)
{
	flag_a = flag_b = level = mode_given = 0;
	str = mode = NULL;
	dur_ns = size_bytes = count = 0;
	err[0] = 0;
}

/* argv from a space-separated line (argv[0] = "cmd"); words stay valid until the next call */
static char *words[32];
static char line_buf[512];
static int split(const char *line)
{
	snprintf(line_buf, sizeof line_buf, "cmd %s", line);
	int n = 0;
	for (char *p = strtok(line_buf, " "); p && n < 31; p = strtok(NULL, " "))
		words[n++] = p;
	words[n] = NULL;
	return n;
}

static int parse(const char *line, int flags, int *dd)
{
	reset();
	int argc = split(line);
	return opt_parse(opts, argc, words, flags, dd, err, sizeof err);
}

static void test_short_forms(void **state)
{
	assert_int_equal(parse("-a -o out.svg -d 2s", 0, NULL), 0);
	assert_true(flag_a);
	assert_string_equal(str, "out.svg");
	assert_int_equal(dur_ns, 2000000000ULL);
	/* attached value, clustered flags, a cluster ending in a valued option */
	assert_int_equal(parse("-oFILE -ab -abn7", 0, NULL), 0);
	assert_string_equal(str, "FILE");
	assert_true(flag_a && flag_b);
	assert_int_equal(count, 7);
	/* a value may start with '-' (it is the next argument) */
	assert_int_equal(parse("-o -", 0, NULL), 0);
	assert_string_equal(str, "-");
}

static void test_long_forms(void **state)
{
	assert_int_equal(parse("--alpha --output=x --size 64k --count=10k", 0, NULL), 0);
	assert_true(flag_a);
	assert_string_equal(str, "x");
	assert_int_equal(size_bytes, 65536);
	assert_int_equal(count, 10000);
	/* an empty value with = is a value */
	assert_int_equal(parse("--output=", 0, NULL), 0);
	assert_non_null(str);
	assert_string_equal(str, "");
	/* the last one wins */
	assert_int_equal(parse("--output a -o b", 0, NULL), 0);
	assert_string_equal(str, "b");
}

static void test_optional_value(void **state)
{
	assert_int_equal(parse("--mode", 0, NULL), 0);
	assert_true(mode_given);
	assert_string_equal(mode, "default");
	assert_int_equal(parse("--mode=all", 0, NULL), 0);
	assert_string_equal(mode, "all");
	/* without '=' the next word is an operand, not the value */
	assert_int_equal(parse("--mode all", 0, NULL), 1);
	assert_string_equal(mode, "default");
	assert_string_equal(words[0], "all");
	assert_int_equal(parse("--mode=sometimes", 0, NULL), -1);
	assert_string_equal(err, "bad value 'sometimes' for --mode: use first or all");
}

static void test_operands_and_dashdash(void **state)
{
	int dd = 99;
	/* operands keep their order and move to argv[0..n) */
	assert_int_equal(parse("A -a B --count 3 C", 0, &dd), 3);
	assert_int_equal(dd, -1);
	assert_string_equal(words[0], "A");
	assert_string_equal(words[1], "B");
	assert_string_equal(words[2], "C");
	assert_null(words[3]);
	assert_true(flag_a);
	assert_int_equal(count, 3);
	/* "-" alone is an operand */
	assert_int_equal(parse("- -a", 0, &dd), 1);
	assert_string_equal(words[0], "-");
	/* -- ends the options: what follows is not parsed, and dashdash says where it starts */
	assert_int_equal(parse("-a -- sleep -a --alpha", 0, &dd), 3);
	assert_int_equal(dd, 0);
	assert_true(flag_a);
	assert_string_equal(words[0], "sleep");
	assert_string_equal(words[1], "-a");
	assert_string_equal(words[2], "--alpha");
	assert_int_equal(parse("X -- Y", 0, &dd), 2);
	assert_int_equal(dd, 1);
	assert_int_equal(parse("-a --", 0, &dd), 0);
	assert_int_equal(dd, 0);
	/* OPT_STOP_AT_OPERAND: the first operand ends the options */
	assert_int_equal(parse("-a CMD -b --count 1", OPT_STOP_AT_OPERAND, &dd), 4);
	assert_int_equal(dd, -1);
	assert_false(flag_b);
	assert_int_equal(count, 0);
	assert_string_equal(words[0], "CMD");
	assert_string_equal(words[1], "-b");
}

static void test_usage_errors(void **state)
{
	static const struct {
		const char *line, *msg;
	} cases[] = {
		{"--nope", "unknown option '--nope'"},
		{"--nope=3", "unknown option '--nope'"},
		{"-x", "unknown option '-x'"},
		{"-ax", "unknown option '-x'"},
		{"--alph", "unknown option '--alph'"}, /* no abbreviations */
		{"--help", "unknown option '--help'"}, /* the dispatcher handles help */
		{"--output", "option '--output' needs a value"},
		{"-o", "option '-o' needs a value"},
		{"-a -n", "option '-n' needs a value"},
		{"--alpha=1", "option '--alpha' takes no value"},
		{"--duration 10x", "bad value '10x' for --duration: "},
		{"-d 10x", "bad value '10x' for -d: "},
		{"--size 1Q", "bad value '1Q' for --size: "},
		{"--count many", "bad value 'many' for --count: "},
		{"--level 0", "bad value '0' for --level: use 1..9"},
		{"-l10", "bad value '10' for -l: use 1..9"},
		{"-- --nope", NULL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int r = parse(cases[i].line, 0, NULL);
		if (!cases[i].msg) {
			assert_int_equal(r, 1);
			continue;
		}
		if (r != -1)
			fail_msg("'%s' parsed (%d), want an error", cases[i].line, r);
		if (strncmp(err, cases[i].msg, strlen(cases[i].msg)))
			fail_msg("'%s': message '%s', want '%s...'", cases[i].line, err,
				 cases[i].msg);
	}
	/* the value's parser explains itself after the colon */
	parse("--duration 10x", 0, NULL);
	assert_true(strlen(err) > strlen("bad value '10x' for --duration: "));
	/* a small error buffer is still terminated */
	reset();
	char small[8];
	int argc = split("--nope");
	assert_int_equal(opt_parse(opts, argc, words, 0, NULL, small, sizeof small), -1);
	assert_int_equal(strlen(small), sizeof small - 1);
}

static void test_usage_rows(void **state)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	opt_usage(f, opts);
	fclose(f);
	/* the widest spec, "-d, --duration DUR" (18), sets the column: 2 + 18 + 2 */
	assert_non_null(strstr(text, "options:\n"));
	assert_non_null(strstr(text, "  -a, --alpha         the a flag\n"));
	assert_non_null(strstr(text, "  -b                  only short\n"));
	assert_non_null(strstr(text, "  -o, --output FILE   where to write\n"
				     "                      second line\n"));
	assert_non_null(strstr(text, "  --mode[=MODE]       optional value\n"));
	assert_non_null(strstr(text, "  -l, --level L       a level 1..9\n"));
	assert_non_null(strstr(text, "  -- CMD              a command\n"));
	assert_non_null(strstr(text, "  -d, --duration DUR  how long\n"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_short_forms),
		cmocka_unit_test(test_long_forms),
		cmocka_unit_test(test_optional_value),
		cmocka_unit_test(test_operands_and_dashdash),
		cmocka_unit_test(test_usage_errors),
		cmocka_unit_test(test_usage_rows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
