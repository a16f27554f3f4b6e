/* ctxlab: measures what concurrency costs. git/perf-style dispatch over the command table
 * (cmd_table[] in src/cmd/cmd.c). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/log.h"

static void list_commands(FILE *f)
{
	for (int i = 0; cmd_table[i]; i++)
		fprintf(f, "   %-10s %s\n", cmd_table[i]->name, cmd_table[i]->summary);
}

static int usage(FILE *f)
{
	fprintf(f, "usage: ctxlab [--version] [help] <command> [<args>]\n\n"
		   "ctxlab measures what concurrency costs: the same protocols under fork, thread,\n"
		   "event-loop and coroutine engines, loaded, watched and profiled side by side.\n\n"
		   "commands:\n");
	list_commands(f);
	fprintf(f, "\n'ctxlab help <command>' or 'ctxlab <command> --help' shows a command's options.\n"
		   "'ctxlab run' with no argument runs the default experiment and writes a report.\n");
	return 0;
}

/* Damerau-free Levenshtein distance, small strings only. */
static int distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 63 || lb > 63)
		return 99;
	int d[64][64];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = (int)i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = (int)j;
	for (size_t i = 1; i <= la; i++)
		for (size_t j = 1; j <= lb; j++) {
			int c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			if (d[i - 1][j] + 1 < c)
				c = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < c)
				c = d[i][j - 1] + 1;
			d[i][j] = c;
		}
	return d[la][lb];
}

static int unknown(const char *name)
{
	const char *best = NULL;
	int bd = 99;
	for (int i = 0; cmd_table[i]; i++) {
		int dd = distance(name, cmd_table[i]->name);
		if (!strncmp(name, cmd_table[i]->name, strlen(name)) && strlen(name) >= 2)
			dd = 1;
		if (dd < bd)
			bd = dd, best = cmd_table[i]->name;
	}
	fprintf(stderr, "ctxlab: '%s' is not a ctxlab command. See 'ctxlab help'.\n", name);
	if (best && bd <= 3)
		fprintf(stderr, "\nThe most similar command is\n\t%s\n(did you mean '%s'?)\n", best,
			best);
	return 2;
}

int main(int argc, char **argv)
{
	log_set_prog("ctxlab");
	if (argc < 2)
		return usage(stdout);
	const char *name = argv[1];
	if (!strcmp(name, "--version") || !strcmp(name, "version")) {
#ifdef CTXLAB_SANITIZED
		printf("ctxlab version %s (ASan+UBSan build)\n", CTXLAB_VERSION);
#else
		printf("ctxlab version %s\n", CTXLAB_VERSION);
#endif
		return 0;
	}
	if (!strcmp(name, "help") || !strcmp(name, "--help") || !strcmp(name, "-h")) {
		if (argc < 3)
			return usage(stdout);
		const struct cmd_info *c = cmd_find(argv[2]);
		if (!c)
			return unknown(argv[2]);
		return cmd_print_usage(c);
	}
	const struct cmd_info *c = cmd_find(name);
	if (!c)
		return unknown(name);
	if (cmd_wants_help(argc - 1, argv + 1))
		return cmd_print_usage(c);
	return c->fn(argc - 1, argv + 1);
}
