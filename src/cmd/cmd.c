/* cmd: the command table and the helpers every command shares (see cmd.h). */
#include "cmd/cmd.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

extern const struct cmd_info cmd_info_serve, cmd_info_load, cmd_info_watch, cmd_info_profile,
	cmd_info_flame, cmd_info_pingpong, cmd_info_run, cmd_info_report, cmd_info_compare,
	cmd_info_stats, cmd_info_stack;

const struct cmd_info *const cmd_table[] = {
	&cmd_info_serve,    &cmd_info_load, &cmd_info_watch,  &cmd_info_profile, &cmd_info_flame,
	&cmd_info_pingpong, &cmd_info_run,  &cmd_info_report, &cmd_info_compare,
	&cmd_info_stats, &cmd_info_stack, NULL};

const struct cmd_info *cmd_find(const char *name)
{
	for (int i = 0; cmd_table[i]; i++)
		if (!strcmp(cmd_table[i]->name, name))
			return cmd_table[i];
	return NULL;
}

int cmd_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			return 0;
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return 1;
	}
	return 0;
}

static void put_text(const char *s)
{
	if (!s || !s[0])
		return;
	fputs(s, stdout);
	if (s[strlen(s) - 1] != '\n')
		fputc('\n', stdout);
}

int cmd_print_usage(const struct cmd_info *ci)
{
	put_text(ci->usage);
	if (ci->opts)
		opt_usage(stdout, ci->opts);
	put_text(ci->usage_tail);
	return 0;
}

int cmd_usage_error(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	error("%s", msg);
	return 2;
}

int cmd_parse_options(const struct cmd_info *ci, int argc, char **argv, int flags,
		      int *dashdash)
{
	char err[768];
	int n = opt_parse(ci->opts, argc, argv, flags, dashdash, err, sizeof err);
	if (n < 0)
		return error("%s (see 'ctxlab %s --help')", err, ci->name);
	return n;
}

int cmd_opt_pid(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	char *end;
	errno = 0;
	long v = strtol(arg, &end, 10);
	if (arg[0] < '0' || arg[0] > '9' || *end || errno || v <= 0 || v > INT_MAX)
		return errbuf(err, errlen, "a positive process id, e.g. --pid 1234");
	*(pid_t *)o->value = (pid_t)v;
	return 0;
}
