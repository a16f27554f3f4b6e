/* lab/host: the argv that runs a role on local, ssh and netns hosts; shell quoting for ssh
 * (the remote side gets each argument back unchanged: checked by running the quoted line
 * through /bin/sh). lab/runner: CPU placement of server and load. */
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lab/host.h"
#include "lab/runner.h"

static void test_parse(void **state)
{
	(void)state;
	struct host h;
	char err[256];
	assert_int_equal(host_parse(&h, "local", err, sizeof err), 0);
	assert_int_equal(h.kind, HOST_LOCAL);
	assert_int_equal(host_parse(&h, "ssh:bench@lab1", err, sizeof err), 0);
	assert_int_equal(h.kind, HOST_SSH);
	assert_string_equal(h.target, "bench@lab1");
	assert_int_equal(host_parse(&h, "netns:srv", err, sizeof err), 0);
	assert_int_equal(h.kind, HOST_NETNS);
	assert_int_equal(host_parse(&h, "ssh:-oProxyCommand=x", err, sizeof err), -1);
	assert_non_null(strstr(err, "allowed: local, ssh:user@host, netns:NAME"));
	assert_int_equal(host_parse(&h, "netns:../x", err, sizeof err), -1);
}

static void test_local_and_netns(void **state)
{
	(void)state;
	struct host h;
	struct host_cmd c;
	char err[256];
	const char *argv[] = {"/usr/bin/ctxlab", "serve", "--engine", "epoll", NULL};
	host_parse(&h, "netns:srv", err, sizeof err);
	assert_int_equal(host_cmd(&h, argv, "ctxlab", &c, err, sizeof err), 0);
	assert_string_equal(c.argv[0], "/usr/bin/ctxlab");
	assert_string_equal(c.argv[3], "epoll");
	assert_null(c.argv[4]);
	assert_string_equal(c.netns, "srv");
	host_cmd_release(&c);
}

/* Runs `sh -c 'printf "[%s]" LINE'` and returns what the shell made of the words. */
static void shell_words(const char *line, char *out, size_t len)
{
	char cmd[2048 + 32];
	snprintf(cmd, sizeof cmd, "printf '[%%s]' %s", line);
	char *argv_sh[] = {"sh", "-c", cmd, NULL};
	(void)argv_sh;
	FILE *f;
	char full[4096];
	struct buf q = BUF_INIT;
	host_quote(&q, cmd);
	buf_append(&q, "", 1);
	snprintf(full, sizeof full, "sh -c %s", buf_head(&q));
	buf_free(&q);
	f = popen(full, "r");
	assert_non_null(f);
	size_t n = fread(out, 1, len - 1, f);
	out[n] = 0;
	pclose(f);
}

static void test_ssh_quoting(void **state)
{
	(void)state;
	struct host h;
	struct host_cmd c;
	char err[256];
	const char *argv[] = {"/build/ctxlab", "load", "it's", "$(rm -rf /)", "a b", "`x`;|&", "", NULL};
	host_parse(&h, "ssh:bench@lab1", err, sizeof err);
	assert_int_equal(host_cmd(&h, argv, "ctxlab", &c, err, sizeof err), 0);
	assert_string_equal(c.argv[0], "ssh");
	assert_string_equal(c.argv[1], "-o");
	assert_string_equal(c.argv[2], "BatchMode=yes");
	/* options end before the destination */
	int i = 3;
	while (strcmp(c.argv[i], "--"))
		i++;
	assert_string_equal(c.argv[i + 1], "bench@lab1");
	assert_null(c.netns);
	/* ssh joins the remaining words with spaces and hands them to the remote shell */
	char line[2048] = "";
	for (int k = i + 2; c.argv[k]; k++) {
		strcat(line, " ");
		strcat(line, c.argv[k]);
	}
	char out[2048];
	shell_words(line, out, sizeof out);
	assert_string_equal(out, "[ctxlab][load][it's][$(rm -rf /)][a b][`x`;|&][]");
	host_cmd_release(&c);
}

static void test_placement(void **state)
{
	(void)state;
	cpu_set_t mine, s, l;
	sched_getaffinity(0, sizeof mine, &mine);
	int n = CPU_COUNT(&mine), shared;
	assert_int_equal(runner_placement(1, NULL, &s, &l, &shared), 0);
	assert_int_equal(CPU_COUNT(&s), 1);
	if (n >= 2) {
		/* disjoint: the load gets every other CPU */
		assert_int_equal(shared, 0);
		assert_int_equal(CPU_COUNT(&l), n - 1);
		cpu_set_t both;
		CPU_AND(&both, &s, &l);
		assert_int_equal(CPU_COUNT(&both), 0);
	}
	assert_int_equal(runner_placement(0, NULL, &s, &l, &shared), 0);
	assert_int_equal(CPU_COUNT(&s), n);
	assert_int_equal(shared, 1); /* nothing left: the load shares, and a warning is recorded */
	assert_true(CPU_EQUAL(&l, &mine));
	assert_int_equal(runner_placement(n + 1, NULL, &s, &l, &shared), -1);
	int first = 0;
	while (!CPU_ISSET(first, &mine))
		first++;
	char list[16];
	snprintf(list, sizeof list, "%d", first);
	assert_int_equal(runner_placement(-1, list, &s, &l, &shared), 0);
	assert_true(CPU_ISSET(first, &s) && CPU_COUNT(&s) == 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_local_and_netns),
		cmocka_unit_test(test_ssh_quoting),
		cmocka_unit_test(test_placement),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
