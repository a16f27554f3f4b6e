/* lifeline: the barrier line and "go"; the end of stdin stops the process (SIGTERM, and
 * SIGKILL after the grace when SIGTERM is ignored); EOF before "go" is -EPIPE. spawn's
 * stdin_pipe: the program reads what the caller writes to child->stdin_fd. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/lifeline.h"
#include "core/spawn.h"

static void on_term(int sig)
{
	(void)sig;
	static const char m[] = "term\n";
	if (write(1, m, sizeof m - 1) < 0)
		_exit(8);
	_exit(7);
}

/* a child whose stdin/stdout are pipes to us; ignore_term: SIGTERM ignored */
static pid_t child(int *to, int *from, int ignore_term)
{
	int in[2], out[2];
	assert_int_equal(pipe(in), 0);
	assert_int_equal(pipe(out), 0);
	pid_t p = fork();
	assert_true(p >= 0);
	if (p == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[0]), close(in[1]), close(out[0]), close(out[1]);
		setpgid(0, 0);
		signal(SIGTERM, ignore_term ? SIG_IGN : on_term);
		int g = lifeline_wait_go();
		if (g < 0) {
			printf("nogo %d\n", g);
			fflush(stdout);
			_exit(3);
		}
		if (lifeline_start(200 * 1000000ULL) < 0)
			_exit(4);
		static const char m[] = "started\n";
		if (write(1, m, sizeof m - 1) < 0)
			_exit(5);
		for (;;)
			pause();
	}
	close(in[0]), close(out[1]);
	*to = in[1];
	*from = out[0];
	return p;
}

static void read_line(int fd, char *buf, size_t len)
{
	size_t n = 0;
	char c;
	while (n + 1 < len && read(fd, &c, 1) == 1 && c != '\n')
		buf[n++] = c;
	buf[n] = 0;
}

static double wait_s(pid_t p, int *st)
{
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(waitpid(p, st, 0), p);
	clock_gettime(CLOCK_MONOTONIC, &b);
	return (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
}

static void test_go_then_eof_terms(void **state)
{
	(void)state;
	int to, from, st;
	char line[128];
	pid_t p = child(&to, &from, 0);
	read_line(from, line, sizeof line);
	assert_string_equal(line, LIFELINE_WAITING);
	assert_int_equal(write(to, "go\n", 3), 3);
	read_line(from, line, sizeof line);
	assert_string_equal(line, "started");
	/* still running while stdin is open */
	usleep(100000);
	assert_int_equal(waitpid(p, &st, WNOHANG), 0);
	close(to);
	double s = wait_s(p, &st);
	read_line(from, line, sizeof line);
	assert_string_equal(line, "term");
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 7);
	assert_true(s < 2.0);
	close(from);
}

static void test_ignored_term_gets_killed(void **state)
{
	(void)state;
	int to, from, st;
	char line[128];
	pid_t p = child(&to, &from, 1);
	read_line(from, line, sizeof line);
	assert_int_equal(write(to, "go\n", 3), 3);
	read_line(from, line, sizeof line);
	assert_string_equal(line, "started");
	close(to);
	double s = wait_s(p, &st);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	assert_true(s >= 0.15 && s < 3.0); /* after the 200 ms grace */
	close(from);
}

static void test_eof_before_go(void **state)
{
	(void)state;
	int to, from, st;
	char line[128];
	pid_t p = child(&to, &from, 0);
	read_line(from, line, sizeof line);
	assert_string_equal(line, LIFELINE_WAITING);
	close(to);
	wait_s(p, &st);
	read_line(from, line, sizeof line);
	char want[32];
	snprintf(want, sizeof want, "nogo %d", -EPIPE);
	assert_string_equal(line, want);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 3);
	close(from);
}

static void test_spawn_stdin_pipe(void **state)
{
	(void)state;
	const char *argv[] = {"sh", "-c", "read x; echo got:$x; read y || echo eof", NULL};
	struct spawn_opts o = {.argv = argv, .capture_stdout = 1, .stdin_pipe = 1, .stderr_fd = -1};
	struct spawn_child c;
	assert_int_equal(spawn_start(&o, &c), 0);
	assert_true(c.stdin_fd >= 0);
	assert_int_equal(write(c.stdin_fd, "hello\n", 6), 6);
	char line[64];
	assert_int_equal(spawn_read_line(&c, line, sizeof line, 5000000000ULL), 1);
	assert_string_equal(line, "got:hello");
	close(c.stdin_fd);
	c.stdin_fd = -1;
	assert_int_equal(spawn_read_line(&c, line, sizeof line, 5000000000ULL), 1);
	assert_string_equal(line, "eof");
	assert_int_equal(spawn_wait(&c, 5000000000LL), 0);
	assert_true(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_go_then_eof_terms),
		cmocka_unit_test(test_ignored_term_gets_killed),
		cmocka_unit_test(test_eof_before_go),
		cmocka_unit_test(test_spawn_stdin_pipe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
