/* cmd: the command table entry every src/cmd/<name>.c exports as `cmd_info_<name>`.
 * The table is generated from the files present (CMake), so a command exists iff its file does.
 * `usage` is the text `ctxlab help NAME` and `ctxlab NAME --help` print; it must match the
 * command's section in docs/ctxlab.1. */
#ifndef CTXLAB_CMD_CMD_H
#define CTXLAB_CMD_CMD_H

struct cmd_info {
	const char *name;
	int (*fn)(int argc, char **argv); /* argv[0] is the command name; returns the exit code */
	const char *summary;              /* one line for `ctxlab help` */
	const char *usage;                /* full help text */
};

/* True when argv has -h or --help before any "--": commands print usage and return 0. */
int cmd_wants_help(int argc, char **argv);
int cmd_print_usage(const struct cmd_info *ci);
/* A command-line mistake: prints "ctxlab: error: MESSAGE" and returns 2 (the exit code for
 * bad usage), so `return cmd_usage_error(...)` works. */
int cmd_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
