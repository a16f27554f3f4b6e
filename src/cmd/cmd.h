/* cmd: the command table and what every command shares.
 *
 * Each src/cmd/<name>.c exports `const struct cmd_info cmd_info_<name>`; the table
 * cmd_table[] in src/cmd/cmd.c lists them in the order `ctxlab help` shows them (adding a
 * command: write src/cmd/NAME.c, add one line there). The help text of a command, which
 * `ctxlab help NAME` and `ctxlab NAME --help` print and scripts/gen-man.py copies into
 * docs/ctxlab.1, is `usage`, then the rows of its option table `opts` (core/opt.h), then
 * `usage_tail`. A command with an option table parses with cmd_parse_options, so usage errors
 * read the same and exit 2 everywhere. */
#ifndef CTXLAB_CMD_CMD_H
#define CTXLAB_CMD_CMD_H

#include <stddef.h>
#include <sys/types.h>

#include "core/opt.h"

struct cmd_info {
	const char *name;
	int (*fn)(int argc, char **argv); /* argv[0] is the command name; returns the exit code */
	const char *summary;              /* one line for `ctxlab help` */
	const char *usage;                /* help text before the option rows (all of it if no opts) */
	const struct opt *opts;           /* the option table (NULL: the command parses by hand) */
	const char *usage_tail;           /* help text after the option rows, or NULL */
};

/* The commands, in the order `ctxlab help` lists them; NULL-terminated. */
extern const struct cmd_info *const cmd_table[];
const struct cmd_info *cmd_find(const char *name);

/* True when argv has -h or --help before any "--": commands print usage and return 0. */
int cmd_wants_help(int argc, char **argv);
int cmd_print_usage(const struct cmd_info *ci);
/* A command-line mistake: prints "ctxlab: error: MESSAGE" and returns 2 (the exit code for
 * bad usage), so `return cmd_usage_error(...)` works. */
int cmd_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* opt_parse (core/opt.h) over ci->opts. Returns the number of operands (moved to argv[0..n)),
 * or -1 after printing "ctxlab: error: MESSAGE (see 'ctxlab NAME --help')": the command then
 * returns 2. */
int cmd_parse_options(const struct cmd_info *ci, int argc, char **argv, int flags,
		      int *dashdash);

/* An option callback for a process id (`--pid PID`; value: pid_t *): a whole number from
 * 1 to INT_MAX, else "bad value 'X' for --pid: a positive process id, e.g. --pid 1234".
 * watch and profile check --pid with it. */
int cmd_opt_pid(const struct opt *o, const char *arg, char *err, size_t errlen);

#endif
