/* spawn: no descendant outlives its spawner (SIGKILLed parent, program exiting with orphans,
 * signal guard), affinity, stdout lines with timeouts, exit status, env/cwd/stdin/stderr,
 * graceful and forced stops. The child program is the spawn_helper test helper. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/clock.h"
#include "core/spawn.h"

static char helper[PATH_MAX + 32];

static int find_helper(void)
{
	char dir[PATH_MAX];
	const char *c = getenv("CTXLAB");
	if (c && *c) {
		snprintf(dir, sizeof(dir), "%s", c);
	} else {
		ssize_t n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
		if (n < 0)
			return -1;
		dir[n] = 0;
	}
	char *slash = strrchr(dir, '/');
	if (!slash)
		return -1;
	*slash = 0;
	snprintf(helper, sizeof(helper), "%s/spawn_helper", dir);
	return access(helper, X_OK);
}

static int setup(void **state)
{
	if (find_helper() < 0) {
		fprintf(stderr, "# cannot find 'spawn_helper' next to $CTXLAB or this test (build it)\n");
		return -1;
	}
	/* Orphans that escaped would be reparented to us: we can see and reap them. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	return 0;
}

/* A process is gone when kill says ESRCH or it is a zombie (dead, not yet reaped). */
static int gone(pid_t pid)
{
	if (kill(pid, 0) < 0 && errno == ESRCH)
		return 1;
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *rp = strrchr(buf, ')');
	return rp && (rp[2] == 'Z' || rp[2] == 'X');
}

/* Waits (bounded) until every pid is gone, reaping whatever was reparented to us. */
static int all_gone(const pid_t *pids, int n, uint64_t within_ns)
{
	uint64_t t0 = clock_now_ns();
	for (;;) {
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		int alive = 0;
		for (int i = 0; i < n; i++)
			alive += !gone(pids[i]);
		if (!alive)
			return 1;
		if (clock_now_ns() - t0 > within_ns) {
			for (int i = 0; i < n; i++) {
				if (!gone(pids[i])) {
					fprintf(stderr, "# pid %d still alive\n", (int)pids[i]);
					kill(pids[i], SIGKILL); /* leave nothing behind even on failure */
				}
			}
			return 0;
		}
		clock_sleep_ns(5 * NS_PER_MS);
	}
}

static int start(struct spawn_child *c, const char *const *argv, int capture)
{
	struct spawn_opts o = {.argv = argv, .capture_stdout = capture, .stdin_null = 1, .stderr_fd = -1};
	return spawn_start(&o, c);
}

/* Reads "pids A B C" from a tree helper. */
static void read_tree_pids(struct spawn_child *c, pid_t out[3])
{
	char line[128];
	assert_int_equal(spawn_read_line(c, line, sizeof(line), 10 * NS_PER_S), 1);
	int a, b, e;
	assert_int_equal(sscanf(line, "pids %d %d %d", &a, &b, &e), 3);
	out[0] = a;
	out[1] = b;
	out[2] = e;
}

/* Forks an intermediate that spawns a tree and reports keeper, program and tree pids, then
 * waits to be killed. guard: the intermediate installs the signal guard first. */
static pid_t intermediate(int guard, pid_t pids[5])
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t m = fork();
	assert_true(m >= 0);
	if (m == 0) {
		close(p[0]);
		if (guard)
			spawn_guard_init();
		const char *argv[] = {helper, "tree", "stay", NULL};
		struct spawn_child c;
		pid_t out[5] = {0};
		if (start(&c, argv, 1) == 0) {
			out[0] = c.keeper;
			out[1] = c.pid;
			read_tree_pids(&c, out + 2);
		}
		if (write(p[1], out, sizeof(out)) != sizeof(out))
			_exit(3);
		for (;;)
			pause();
	}
	close(p[1]);
	ssize_t n = read(p[0], pids, 5 * sizeof(pid_t));
	close(p[0]);
	assert_int_equal(n, 5 * sizeof(pid_t));
	for (int i = 0; i < 5; i++) {
		assert_true(pids[i] > 0);
		assert_false(gone(pids[i]));
	}
	return m;
}

static void test_parent_sigkill(void **state)
{
	pid_t pids[5];
	pid_t m = intermediate(0, pids);
	/* the escaped one really left the keeper's process group */
	assert_int_equal(getpgid(pids[1]), pids[0]);
	assert_true(getpgid(pids[4]) != pids[0]);
	assert_int_equal(kill(m, SIGKILL), 0);
	int st;
	assert_int_equal(waitpid(m, &st, 0), m);
	assert_true(all_gone(pids, 5, 5 * NS_PER_S));
}

static void test_guard_signal(void **state)
{
	pid_t pids[5];
	pid_t m = intermediate(1, pids);
	assert_int_equal(kill(m, SIGTERM), 0);
	int st;
	assert_int_equal(waitpid(m, &st, 0), m);
	/* the guard re-raised SIGTERM with the default action */
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGTERM);
	/* the guard waited for the keepers: gone already (a short bound for the zombies) */
	assert_true(all_gone(pids, 5, NS_PER_S));
}

static void test_exit_leaves_orphans(void **state)
{
	const char *argv[] = {helper, "tree", "exit", NULL};
	struct spawn_child c;
	assert_int_equal(start(&c, argv, 1), 0);
	pid_t pids[5] = {c.keeper, c.pid};
	read_tree_pids(&c, pids + 2);
	assert_int_equal(spawn_wait(&c, 10 * NS_PER_S), 0);
	assert_true(c.exited);
	assert_true(WIFEXITED(c.status));
	assert_int_equal(WEXITSTATUS(c.status), 0);
	/* the keeper reaped the whole tree before exiting: nothing left, not even zombies */
	for (int i = 0; i < 5; i++)
		if (!gone(pids[i]))
			fail_msg("pid %d outlived the program", (int)pids[i]);
	for (int i = 1; i < 5; i++)
		assert_int_equal(kill(pids[i], 0), -1);
	char line[16];
	assert_int_equal(spawn_read_line(&c, line, sizeof(line), NS_PER_S), 0); /* EOF */
	close(c.stdout_fd);
}

static void test_descendants_and_kill_tree(void **state)
{
	const char *argv[] = {helper, "tree", "stay", NULL};
	struct spawn_child c;
	assert_int_equal(start(&c, argv, 1), 0);
	pid_t tree[3];
	read_tree_pids(&c, tree);
	pid_t d[64];
	int n = spawn_descendants(c.keeper, d, 64);
	/* program, child, grandchild, escaped great-grandchild (reparented to the keeper) */
	assert_int_equal(n, 4);
	pid_t want[4] = {c.pid, tree[0], tree[1], tree[2]};
	for (int i = 0; i < 4; i++) {
		int found = 0;
		for (int j = 0; j < n; j++)
			found |= d[j] == want[i];
		if (!found)
			fail_msg("pid %d not among the descendants", (int)want[i]);
	}
	/* max smaller than the count: the count is still the total */
	assert_int_equal(spawn_descendants(c.keeper, d, 1), 4);
	assert_int_equal(spawn_descendants(c.pid, d, 64), 2); /* child and grandchild */
	assert_true(spawn_kill_tree(c.keeper, SIGKILL) >= 5);
	assert_int_equal(spawn_wait(&c, 5 * NS_PER_S), 0);
	assert_true(WIFSIGNALED(c.status));
	pid_t all[5] = {c.keeper, c.pid, tree[0], tree[1], tree[2]};
	assert_true(all_gone(all, 5, 5 * NS_PER_S));
	close(c.stdout_fd);
}

static void test_affinity(void **state)
{
	cpu_set_t mine, want;
	assert_int_equal(sched_getaffinity(0, sizeof(mine), &mine), 0);
	int last = -1, count = CPU_COUNT(&mine);
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &mine))
			last = i;
	if (count < 2)
		printf("# only one CPU allowed: the affinity check cannot differ from the default\n");
	CPU_ZERO(&want);
	CPU_SET(last, &want);
	const char *argv[] = {helper, "affinity", NULL};
	struct spawn_opts o = {.argv = argv, .capture_stdout = 1, .stderr_fd = -1, .cpus = &want};
	struct spawn_child c;
	assert_int_equal(spawn_start(&o, &c), 0);
	char line[256], expect[64];
	assert_int_equal(spawn_read_line(&c, line, sizeof(line), 10 * NS_PER_S), 1);
	snprintf(expect, sizeof(expect), "cpus %d", last);
	assert_string_equal(line, expect);
	assert_int_equal(spawn_wait(&c, 10 * NS_PER_S), 0);
	assert_true(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0);
	close(c.stdout_fd);
}

static void test_lines_and_timeout(void **state)
{
	const char *argv[] = {helper, "lines", "3", "0", NULL};
	struct spawn_child c;
	char line[64];
	assert_int_equal(start(&c, argv, 1), 0);
	for (int i = 0; i < 3; i++) {
		char want[16];
		snprintf(want, sizeof(want), "line %d", i);
		assert_int_equal(spawn_read_line(&c, line, sizeof(line), 10 * NS_PER_S), 1);
		assert_string_equal(line, want);
	}
	assert_int_equal(spawn_read_line(&c, line, sizeof(line), 10 * NS_PER_S), 0);
	assert_int_equal(spawn_wait(&c, -1), 0);
	close(c.stdout_fd);

	/* a line cut by a timeout comes back whole on the next call; a last line without '\n' */
	const char *argv2[] = {helper, "partial", NULL};
	assert_int_equal(start(&c, argv2, 1), 0);
	uint64_t t0 = clock_now_ns();
	assert_int_equal(spawn_read_line(&c, line, sizeof(line), 100 * NS_PER_MS), -ETIMEDOUT);
	uint64_t took = clock_now_ns() - t0;
	assert_true(took >= 100 * NS_PER_MS && took < 290 * NS_PER_MS + 2 * NS_PER_S);
	assert_int_equal(spawn_read_line(&c, line, sizeof(line), 10 * NS_PER_S), 1);
	assert_string_equal(line, "hello");
	assert_int_equal(spawn_read_line(&c, line, sizeof(line), 10 * NS_PER_S), 1);
	assert_string_equal(line, "world");
	assert_int_equal(spawn_read_line(&c, line, sizeof(line), 10 * NS_PER_S), 0);
	assert_int_equal(spawn_wait(&c, -1), 0);
	close(c.stdout_fd);

	/* truncation: "line 0" into 5 bytes */
	assert_int_equal(start(&c, argv, 1), 0);
	assert_int_equal(spawn_read_line(&c, line, 5, 10 * NS_PER_S), 1);
	assert_string_equal(line, "line");
	assert_int_equal(spawn_read_line(&c, line, sizeof(line), 10 * NS_PER_S), 1);
	assert_string_equal(line, "line 1");
	spawn_wait(&c, -1);
	close(c.stdout_fd);
}

static void test_exit_status(void **state)
{
	const char *argv[] = {helper, "exit", "7", NULL};
	struct spawn_child c;
	assert_int_equal(start(&c, argv, 0), 0);
	assert_int_equal(c.stdout_fd, -1);
	assert_int_equal(spawn_wait(&c, 10 * NS_PER_S), 0);
	assert_true(WIFEXITED(c.status));
	assert_int_equal(WEXITSTATUS(c.status), 7);
	assert_int_equal(spawn_signal(&c, SIGTERM), -ESRCH);

	/* death by a signal reads the same through the keeper */
	const char *argv2[] = {helper, "ignore-term", NULL};
	char line[32];
	assert_int_equal(start(&c, argv2, 1), 0);
	assert_int_equal(spawn_read_line(&c, line, sizeof(line), 10 * NS_PER_S), 1);
	assert_int_equal(spawn_signal(&c, SIGUSR1), 0);
	assert_int_equal(spawn_wait(&c, 10 * NS_PER_S), 0);
	assert_true(WIFSIGNALED(c.status));
	assert_int_equal(WTERMSIG(c.status), SIGUSR1);
	close(c.stdout_fd);

	/* exec failure is reported by spawn_start itself */
	const char *bad[] = {"/nonexistent/ctxlab-no-such-program", NULL};
	assert_int_equal(start(&c, bad, 1), -ENOENT);
	assert_int_equal(c.stdout_fd, -1);
	const char *bad2[] = {"ctxlab-no-such-program-in-path", NULL};
	assert_int_equal(start(&c, bad2, 0), -ENOENT);
	const char *empty[] = {NULL};
	assert_int_equal(start(&c, empty, 0), -EINVAL);
}

static void test_stop(void **state)
{
	/* ignores SIGTERM: killed after the grace */
	const char *argv[] = {helper, "ignore-term", NULL};
	struct spawn_child c;
	char line[32];
	assert_int_equal(start(&c, argv, 1), 0);
	assert_int_equal(spawn_read_line(&c, line, sizeof(line), 10 * NS_PER_S), 1);
	assert_string_equal(line, "ready");
	uint64_t t0 = clock_now_ns();
	assert_int_equal(spawn_stop(&c, 200 * NS_PER_MS), -ETIMEDOUT);
	uint64_t took = clock_now_ns() - t0;
	assert_true(took >= 200 * NS_PER_MS && took < 5 * NS_PER_S);
	assert_true(c.exited);
	assert_true(WIFSIGNALED(c.status));
	assert_int_equal(WTERMSIG(c.status), SIGKILL);
	pid_t both[2] = {c.pid, c.keeper};
	assert_true(all_gone(both, 2, NS_PER_S));
	close(c.stdout_fd);

	/* a program that honours SIGTERM ends within the grace */
	const char *argv2[] = {helper, "lines", "100", "100", NULL};
	assert_int_equal(start(&c, argv2, 1), 0);
	assert_int_equal(spawn_read_line(&c, line, sizeof(line), 10 * NS_PER_S), 1);
	assert_int_equal(spawn_stop(&c, 5 * NS_PER_S), 0);
	assert_true(WIFSIGNALED(c.status));
	assert_int_equal(WTERMSIG(c.status), SIGTERM);
	assert_int_equal(spawn_stop(&c, 0), 0); /* idempotent */
	close(c.stdout_fd);
}

static void test_env_cwd_stdio(void **state)
{
	char line[256];
	struct spawn_child c;
	const char *env[] = {"CTXLAB_SPAWN_T=42", "HOME=/nowhere", NULL};
	const char *a1[] = {helper, "env", "CTXLAB_SPAWN_T", NULL};
	struct spawn_opts o = {.argv = a1, .env = env, .capture_stdout = 1, .stderr_fd = -1};
	assert_int_equal(spawn_start(&o, &c), 0);
	assert_int_equal(spawn_read_line(&c, line, sizeof(line), 10 * NS_PER_S), 1);
	assert_string_equal(line, "42");
	spawn_wait(&c, -1);
	close(c.stdout_fd);
	const char *a2[] = {helper, "env", "HOME", NULL}; /* replaced, not duplicated */
	o.argv = a2;
	assert_int_equal(spawn_start(&o, &c), 0);
	assert_int_equal(spawn_read_line(&c, line, sizeof(line), 10 * NS_PER_S), 1);
	assert_string_equal(line, "/nowhere");
	spawn_wait(&c, -1);
	close(c.stdout_fd);

	const char *a3[] = {helper, "cwd", NULL};
	struct spawn_opts o3 = {.argv = a3, .cwd = "/proc", .capture_stdout = 1, .stderr_fd = -1};
	assert_int_equal(spawn_start(&o3, &c), 0);
	assert_int_equal(spawn_read_line(&c, line, sizeof(line), 10 * NS_PER_S), 1);
	assert_string_equal(line, "/proc");
	spawn_wait(&c, -1);
	close(c.stdout_fd);
	o3.cwd = "/nonexistent-ctxlab-dir";
	assert_int_equal(spawn_start(&o3, &c), -ENOENT);

	/* stdin from /dev/null: EOF at once, even though our stdin is a pipe that stays open */
	int in[2];
	assert_int_equal(pipe(in), 0);
	int saved = dup(0);
	assert_int_equal(dup2(in[0], 0), 0);
	const char *a4[] = {helper, "stdin", NULL};
	struct spawn_opts o4 = {.argv = a4, .stdin_null = 1, .capture_stdout = 1, .stderr_fd = -1};
	assert_int_equal(spawn_start(&o4, &c), 0);
	int r = spawn_read_line(&c, line, sizeof(line), 10 * NS_PER_S);
	dup2(saved, 0);
	close(saved);
	close(in[0]);
	close(in[1]);
	assert_int_equal(r, 1);
	assert_string_equal(line, "stdin 0");
	spawn_wait(&c, -1);
	close(c.stdout_fd);

	/* stderr into a pipe of ours */
	int er[2];
	assert_int_equal(pipe(er), 0);
	const char *a5[] = {helper, "stderr", "to-the-pipe", NULL};
	struct spawn_opts o5 = {.argv = a5, .stderr_fd = er[1]};
	assert_int_equal(spawn_start(&o5, &c), 0);
	close(er[1]);
	assert_int_equal(spawn_wait(&c, 10 * NS_PER_S), 0);
	ssize_t n = read(er[0], line, sizeof(line) - 1);
	assert_int_equal(n, 12);
	line[n] = 0;
	assert_string_equal(line, "to-the-pipe\n");
	close(er[0]);
}

static void test_no_fd_leak(void **state)
{
	/* a pipe without O_CLOEXEC: neither the keeper nor the program may hold its write end */
	int p[2];
	assert_int_equal(pipe(p), 0);
	const char *argv[] = {helper, "ignore-term", NULL};
	struct spawn_child c;
	char line[32];
	assert_int_equal(start(&c, argv, 1), 0);
	assert_int_equal(spawn_read_line(&c, line, sizeof(line), 10 * NS_PER_S), 1);
	close(p[1]);
	struct pollfd pf = {.fd = p[0], .events = POLLIN};
	assert_int_equal(poll(&pf, 1, 2000), 1); /* EOF at once */
	assert_int_equal(read(p[0], line, 1), 0);
	close(p[0]);
	assert_int_equal(spawn_stop(&c, 50 * NS_PER_MS), -ETIMEDOUT);
	close(c.stdout_fd);
}

/* The executable a process runs, from /proc/PID/exe. */
static void exe_of(pid_t pid, char *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	ssize_t n = readlink(path, buf, len - 1);
	buf[n > 0 ? n : 0] = 0;
}

static void test_hold(void **state)
{
	(void)state;
	/* held: forked and set up, but not exec'd (still this test's image) until released */
	const char *argv[] = {helper, "exit", "5", NULL};
	struct spawn_opts o = {.argv = argv, .stderr_fd = -1, .hold = 1};
	struct spawn_child c;
	assert_int_equal(spawn_start(&o, &c), 0);
	assert_true(c.pid > 0 && c.go_fd >= 0);
	char self[PATH_MAX], prog[PATH_MAX];
	exe_of(getpid(), self, sizeof(self));
	clock_sleep_ns(100 * NS_PER_MS);
	exe_of(c.pid, prog, sizeof(prog));
	assert_string_equal(prog, self);
	assert_int_equal(spawn_wait(&c, 50 * NS_PER_MS), -ETIMEDOUT);
	assert_int_equal(spawn_release(&c), 0);
	assert_int_equal(c.go_fd, -1);
	assert_int_equal(spawn_wait(&c, 10 * NS_PER_S), 0);
	assert_true(WIFEXITED(c.status));
	assert_int_equal(WEXITSTATUS(c.status), 5);
	assert_int_equal(spawn_release(&c), -EINVAL);

	/* an exec failure shows at the release */
	const char *bad[] = {"/nonexistent/ctxlab-no-such-program", NULL};
	o.argv = bad;
	assert_int_equal(spawn_start(&o, &c), 0);
	assert_int_equal(spawn_release(&c), -ENOENT);
	assert_int_equal(spawn_wait(&c, 10 * NS_PER_S), 0);
	assert_int_equal(WEXITSTATUS(c.status), 127);
}

static void test_netns(void **state)
{
	struct spawn_child c;
	const char *argv[] = {helper, "netns", NULL};
	struct spawn_opts o = {.argv = argv, .capture_stdout = 1, .stderr_fd = -1,
			       .netns = "ctxlab-no-such-netns"};
	assert_int_equal(spawn_start(&o, &c), -ENOENT);
	o.netns = "../etc";
	assert_int_equal(spawn_start(&o, &c), -EINVAL);

	const char *name = "ctxlab-coreb-test";
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "ip netns add %s 2>/dev/null", name);
	if (system(cmd) != 0) {
		printf("# skip: cannot create a network namespace (needs root and iproute2)\n");
		skip();
	}
	o.netns = name;
	int r = spawn_start(&o, &c);
	char line[128] = "", mine[128] = "";
	if (r == 0) {
		spawn_read_line(&c, line, sizeof(line), 10 * NS_PER_S);
		spawn_wait(&c, -1);
		close(c.stdout_fd);
	}
	snprintf(cmd, sizeof(cmd), "ip netns del %s", name);
	if (system(cmd) != 0)
		fprintf(stderr, "# could not delete netns '%s'\n", name);
	assert_int_equal(r, 0);
	ssize_t n = readlink("/proc/self/ns/net", mine, sizeof(mine) - 1);
	assert_true(n > 0);
	assert_true(!strncmp(line, "net:[", 5));
	assert_string_not_equal(line, mine);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parent_sigkill),
		cmocka_unit_test(test_guard_signal),
		cmocka_unit_test(test_exit_leaves_orphans),
		cmocka_unit_test(test_descendants_and_kill_tree),
		cmocka_unit_test(test_affinity),
		cmocka_unit_test(test_lines_and_timeout),
		cmocka_unit_test(test_exit_status),
		cmocka_unit_test(test_stop),
		cmocka_unit_test(test_env_cwd_stdio),
		cmocka_unit_test(test_no_fd_leak),
		cmocka_unit_test(test_hold),
		cmocka_unit_test(test_netns),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
