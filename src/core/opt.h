/* opt: one table per command gives its option parsing and its help text (git's
 * parse-options and perf's OPT_* arrays are the models).
 *
 * A table is an array of struct opt ended by OPT_END():
 *
 *   static const char *out;
 *   static int quiet;
 *   static const struct opt opts[] = {
 *           OPT_STRING('o', "output", &out, "FILE", "write the SVG to FILE (default: stdout)"),
 *           OPT_FLAG('q', "quiet", &quiet, "print nothing on success"),
 *           OPT_END(),
 *   };
 *   char err[256];
 *   int n = opt_parse(opts, argc, argv, 0, &ndash, err, sizeof err);
 *
 * Forms accepted: `-o FILE`, `-oFILE`, `--output FILE`, `--output=FILE`, clustered short
 * flags (`-qU`), `--opt[=V]` for an optional value (OPT_OPTARG: only the `=` form gives it a
 * value), `--` ends the options. Long names must be given whole (no abbreviations). An
 * operand is any other argument ("-" alone included); operands and options may mix unless
 * OPT_STOP_AT_OPERAND is given. -h/--help is not parsed here: the command dispatcher prints
 * the help before a command runs (cmd_wants_help).
 *
 * Values are stored where `value` points; an OPT_CALLBACK gets the argument (NULL for a flag
 * or an absent optional value) and checks and stores it itself, filling err on a bad value.
 * Help: opt_usage() prints one row per option, its help aligned in a column; a help text
 * may hold '\n' for continuation lines. OPT_GROUP prints a heading, OPT_DOC a row for
 * something that is not an option (e.g. "-- CMD [ARGS...]"); neither is parsed.
 *
 * No allocation, no printing except opt_usage; not thread-safe only in that callbacks may
 * write globals the caller chose. */
#ifndef CTXLAB_CORE_OPT_H
#define CTXLAB_CORE_OPT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum opt_type {
	OPT_T_END = 0,
	OPT_T_FLAG,     /* int *value = 1 */
	OPT_T_STRING,   /* const char **value = the argument */
	OPT_T_CALLBACK, /* cb(opt, arg, err, errlen) */
	OPT_T_DURATION, /* uint64_t *value = ns (core/units.h syntax: 10s, 500ms) */
	OPT_T_SIZE,     /* uint64_t *value = bytes (64k, 1M) */
	OPT_T_COUNT,    /* uint64_t *value = a whole number (1000, 10k) */
	OPT_T_GROUP,    /* help only: a heading */
	OPT_T_DOC,      /* help only: a row for something not an option */
};

enum {
	OPT_OPTARG = 1 << 0, /* the value is optional: `--opt` or `--opt=V` (callbacks only) */
	OPT_HIDDEN = 1 << 1, /* parsed, not listed in the help */
};

struct opt;
/* Checks and stores arg (NULL: the option was given without a value). 0, or -1 with err
 * filled: the reason only, e.g. "use proxy or fdpass"; opt_parse names option and value. */
typedef int (*opt_cb)(const struct opt *o, const char *arg, char *err, size_t errlen);

struct opt {
	enum opt_type type;
	int short_name;        /* 0: none */
	const char *long_name; /* without the dashes; NULL: none (OPT_GROUP/OPT_DOC: the text) */
	void *value;
	const char *argh;      /* the value's placeholder in the help, e.g. "PID"; NULL: a flag */
	const char *help;
	int flags;
	opt_cb cb;
};

#define OPT_END() {OPT_T_END, 0, NULL, NULL, NULL, NULL, 0, NULL}
#define OPT_GROUP(title) {OPT_T_GROUP, 0, (title), NULL, NULL, NULL, 0, NULL}
#define OPT_DOC(spec, help) {OPT_T_DOC, 0, (spec), NULL, NULL, (help), 0, NULL}
#define OPT_FLAG(s, l, v, h) {OPT_T_FLAG, (s), (l), (v), NULL, (h), 0, NULL}
#define OPT_STRING(s, l, v, a, h) {OPT_T_STRING, (s), (l), (v), (a), (h), 0, NULL}
#define OPT_DURATION(s, l, v, a, h) {OPT_T_DURATION, (s), (l), (v), (a), (h), 0, NULL}
#define OPT_SIZE(s, l, v, a, h) {OPT_T_SIZE, (s), (l), (v), (a), (h), 0, NULL}
#define OPT_COUNT(s, l, v, a, h) {OPT_T_COUNT, (s), (l), (v), (a), (h), 0, NULL}
/* a value (a != NULL) or a flag (a == NULL) checked and stored by cb */
#define OPT_CALLBACK(s, l, v, a, h, cb) {OPT_T_CALLBACK, (s), (l), (v), (a), (h), 0, (cb)}
/* `--l` (cb gets NULL) or `--l=V`; the help shows "--l[=A]" */
#define OPT_CALLBACK_OPTARG(s, l, v, a, h, cb)                                                 \
	{OPT_T_CALLBACK, (s), (l), (v), (a), (h), OPT_OPTARG, (cb)}

enum {
	OPT_STOP_AT_OPERAND = 1 << 0, /* the first operand ends the options (like `--`) */
};

/* Parses argv[1..argc) (argv[0] is the command's name) against opts.
 * Returns the number n of operands, moved in their order to argv[0..n) (argv[n] = NULL),
 * or -1 with err filled with a usage error, worded the same for every command:
 *   unknown option '--x'            unknown option '-x'
 *   option '--x' needs a value      option '--x' takes no value
 *   bad value 'V' for --x: REASON
 * *dashdash (may be NULL) is set to the index in argv[0..n) of the first operand that came
 * after `--`, or -1 when there was no `--` (so `watch -- CMD` finds CMD at argv[*dashdash]).
 * With OPT_STOP_AT_OPERAND the first operand and every argument after it are operands, a
 * later `--` included (dashdash stays -1 then). */
int opt_parse(const struct opt *opts, int argc, char **argv, int flags, int *dashdash,
	      char *err, size_t errlen);

/* Prints the rows of opts to f: "  -s, --long ARG   help", help in one column. */
void opt_usage(FILE *f, const struct opt *opts);

#endif
