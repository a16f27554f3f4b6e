#include "core/fnexec.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"

extern char **environ;

static void close2(int p[2])
{
	for (int i = 0; i < 2; i++)
		if (p[i] >= 0)
			close(p[i]);
}

/* Kills (when kill_it) and reaps pid; waits at most until deadline for a voluntary exit. */
static int reap(pid_t pid, int kill_it, uint64_t deadline, int *status)
{
	int st = 0;
	if (!kill_it) {
		for (;;) {
			pid_t r = waitpid(pid, &st, WNOHANG);
			if (r == pid) {
				*status = st;
				return 0;
			}
			if (r < 0 && errno != EINTR)
				return -errno;
			if (clock_now_ns() >= deadline)
				break;
			poll(NULL, 0, 1);
		}
		kill_it = 1;
	}
	kill(-pid, SIGKILL); /* the function's process group: what it started dies with it */
	kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	*status = st;
	return -ETIMEDOUT;
}

int fnexec_run(const char *path, const char *in, size_t inlen, uint64_t timeout_ns,
	       size_t max_out, struct buf *out, int *status)
{
	*status = 0;
	if (access(path, X_OK) < 0)
		return -errno;
	int ip[2] = {-1, -1}, op[2] = {-1, -1};
	if (pipe2(ip, O_CLOEXEC) < 0 || pipe2(op, O_CLOEXEC) < 0) {
		int e = errno;
		close2(ip);
		return -e;
	}
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	posix_spawn_file_actions_adddup2(&fa, ip[0], 0);
	posix_spawn_file_actions_adddup2(&fa, op[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	sigset_t none, def;
	sigemptyset(&none);
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	sigaddset(&def, SIGTERM);
	sigaddset(&def, SIGINT);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &def);
	posix_spawnattr_setpgroup(&at, 0); /* its own group: a kill takes its children too */
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
				      POSIX_SPAWN_SETPGROUP);
	char *const argv[] = {(char *)path, NULL};
	pid_t pid;
	int se = posix_spawn(&pid, path, &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(ip[0]);
	close(op[1]);
	ip[0] = op[1] = -1;
	if (se) {
		close2(ip);
		close2(op);
		return -se;
	}
	fcntl(ip[1], F_SETFL, O_NONBLOCK);
	fcntl(op[0], F_SETFL, O_NONBLOCK);
	uint64_t deadline = clock_now_ns() + timeout_ns;
	size_t sent = 0, got = 0;
	int rc = 0;
	if (!inlen) {
		close(ip[1]);
		ip[1] = -1;
	}
	while (op[0] >= 0) {
		uint64_t now = clock_now_ns();
		if (now >= deadline) {
			rc = -ETIMEDOUT;
			break;
		}
		struct pollfd pf[2] = {{.fd = op[0], .events = POLLIN}, {.fd = ip[1], .events = POLLOUT}};
		int ms = (int)((deadline - now + 999999) / 1000000);
		int r = poll(pf, ip[1] >= 0 ? 2 : 1, ms);
		if (r < 0 && errno != EINTR) {
			rc = -errno;
			break;
		}
		if (ip[1] >= 0 && (pf[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t n = write(ip[1], in + sent, inlen - sent);
			if (n > 0)
				sent += (size_t)n;
			if ((n < 0 && errno != EAGAIN && errno != EINTR) || sent == inlen) {
				close(ip[1]); /* done, or the function does not read it (EPIPE) */
				ip[1] = -1;
			}
		}
		if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			char b[16384];
			ssize_t n = read(op[0], b, sizeof b);
			if (n == 0) {
				close(op[0]);
				op[0] = -1;
			} else if (n > 0) {
				if (got + (size_t)n > max_out) {
					rc = -EFBIG;
					break;
				}
				if (buf_append(out, b, (size_t)n) < 0) {
					rc = -ENOMEM;
					break;
				}
				got += (size_t)n;
			} else if (errno != EAGAIN && errno != EINTR) {
				rc = -errno;
				break;
			}
		}
	}
	close2(ip);
	close2(op);
	int rr = reap(pid, rc != 0, deadline, status);
	return rc ? rc : rr;
}
