#include "lab/launch.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "monitor/monitor.h"

#define STOP_GRACE_NS (2 * NS_PER_S)

static int stopped(const struct launch *l)
{
	return l->stop && *l->stop;
}

int launch_start(struct launch *l, const struct launch_spec *sp, char *err, size_t errlen)
{
	memset(l, 0, sizeof *l);
	l->logfd = sp->logfd;
	l->stop = sp->stop;
	struct host_cmd hc;
	if (host_cmd(sp->host, sp->argv, sp->remote_prog, &hc, err, errlen) < 0)
		return -EINVAL;
	l->log_since = l->logfd >= 0 ? lseek(l->logfd, 0, SEEK_END) : 0;
	if (l->log_since < 0)
		l->log_since = 0;
	struct spawn_opts so = {.argv = hc.argv, .cpus = sp->host->kind == HOST_SSH ? NULL : sp->cpus,
				.capture_stdout = 1, .stdin_null = !sp->control,
				.stdin_pipe = sp->control, .stderr_fd = sp->logfd,
				.netns = hc.netns,
				.env = sp->host->kind == HOST_SSH ? NULL : sp->env};
	/* forked inside the cgroup (joined for the fork, left at once): nothing the role does
	 * escapes its accounting */
	int joined = sp->cgroup && sp->cgroup[0] && !monitor_cgroup_join(sp->cgroup, 0);
	int rc = spawn_start(&so, &l->child);
	if (joined && monitor_cgroup_leave(sp->cgroup))
		l->cgroup_leave_failed = 1;
	host_cmd_release(&hc);
	if (rc < 0) {
		snprintf(err, errlen, "cannot start '%s': %s", sp->argv[0], strerror(-rc));
		return rc;
	}
	l->started = 1;
	return 0;
}

void launch_tail(const struct launch *l, char *out, size_t len)
{
	out[0] = 0;
	if (l->logfd < 0)
		return;
	off_t end = lseek(l->logfd, 0, SEEK_END);
	if (end <= l->log_since)
		return;
	off_t from = end - l->log_since > 4096 ? end - 4096 : l->log_since;
	char buf[4097];
	ssize_t n = pread(l->logfd, buf, (size_t)(end - from), from);
	if (n <= 0)
		return;
	buf[n] = 0;
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	const char *last = strrchr(buf, '\n');
	const char *src = last ? last + 1 : buf;
	size_t sl = strlen(src);
	if (sl >= len)
		sl = len - 1;
	memcpy(out, src, sl);
	out[sl] = 0;
}

void launch_status_text(int status, char *out, size_t len)
{
	if (WIFEXITED(status))
		snprintf(out, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(out, len, "was killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(out, len, "ended (status 0x%x)", status);
}

int launch_ready(struct launch *l, uint64_t timeout_ns, struct ready *r, char *why, size_t len)
{
	char line[512], tail[256];
	uint64_t deadline = clock_now_ns() + timeout_ns;
	for (;;) {
		if (stopped(l)) {
			snprintf(why, len, "interrupted");
			return -EINTR;
		}
		uint64_t now = clock_now_ns();
		if (now >= deadline) {
			launch_tail(l, tail, sizeof tail);
			snprintf(why, len, "printed no '" READY_PREFIX "' line within %.0f s%s%s",
				 timeout_ns / 1e9, tail[0] ? ": " : "", tail);
			return -ETIMEDOUT;
		}
		uint64_t step = deadline - now > 100 * NS_PER_MS ? 100 * NS_PER_MS : deadline - now;
		int rc = spawn_read_line(&l->child, line, sizeof line, step);
		if (rc == -ETIMEDOUT)
			continue;
		if (rc <= 0) {
			char st[96] = "ended";
			spawn_wait(&l->child, 2 * (int64_t)NS_PER_S);
			if (l->child.exited)
				launch_status_text(l->child.status, st, sizeof st);
			launch_tail(l, tail, sizeof tail);
			snprintf(why, len, "%s before it listened%s%s", st, tail[0] ? ": " : "", tail);
			return -ECHILD;
		}
		if (!ready_is_ready_line(line))
			continue;
		if (ready_parse(line, r) < 0) {
			snprintf(why, len, "printed a malformed ready line '%.200s'", line);
			return -EINVAL;
		}
		return 0;
	}
}

int launch_await_line(struct launch *l, const char *want, uint64_t timeout_ns, char *why,
		      size_t len)
{
	char line[512], tail[256];
	uint64_t deadline = clock_now_ns() + timeout_ns;
	for (;;) {
		if (stopped(l)) {
			snprintf(why, len, "interrupted");
			return -EINTR;
		}
		uint64_t now = clock_now_ns();
		if (now >= deadline) {
			launch_tail(l, tail, sizeof tail);
			snprintf(why, len, "printed no '%s' line within %.0f s%s%s", want,
				 timeout_ns / 1e9, tail[0] ? ": " : "", tail);
			return -ETIMEDOUT;
		}
		uint64_t step = deadline - now > 100 * NS_PER_MS ? 100 * NS_PER_MS : deadline - now;
		int rc = spawn_read_line(&l->child, line, sizeof line, step);
		if (rc == -ETIMEDOUT)
			continue;
		if (rc <= 0) {
			char st[96] = "ended";
			spawn_wait(&l->child, 2 * (int64_t)NS_PER_S);
			if (l->child.exited)
				launch_status_text(l->child.status, st, sizeof st);
			launch_tail(l, tail, sizeof tail);
			/* the same words as when it fails later (collect_load) */
			snprintf(why, len, "%s%s%s", st, tail[0] ? ": " : "", tail);
			return -ECHILD;
		}
		if (!strcmp(line, want))
			return 0;
	}
}

int launch_send(struct launch *l, const char *text)
{
	if (!l->started || l->child.stdin_fd < 0)
		return -EPIPE;
	size_t n = strlen(text), off = 0;
	while (off < n) {
		ssize_t w = write(l->child.stdin_fd, text + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		off += (size_t)w;
	}
	return 0;
}

int launch_read_all(struct launch *l, struct buf *out, uint64_t deadline_ns)
{
	char chunk[8192];
	for (;;) {
		if (stopped(l))
			return -EINTR;
		if (clock_now_ns() >= deadline_ns)
			return -ETIMEDOUT;
		struct pollfd pfd = {.fd = l->child.stdout_fd, .events = POLLIN};
		int r = poll(&pfd, 1, 100);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r <= 0)
			continue;
		ssize_t n = read(l->child.stdout_fd, chunk, sizeof chunk);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return n < 0 ? -errno : 0;
		if (buf_append(out, chunk, (size_t)n) < 0)
			return -ENOMEM;
	}
}

int launch_wait(struct launch *l, int64_t timeout_ns)
{
	if (!l->started)
		return 0;
	return spawn_wait(&l->child, timeout_ns);
}

int launch_ended(struct launch *l, int *status)
{
	if (!l->started)
		return 0;
	if (!l->child.exited && spawn_wait(&l->child, 0) != 0)
		return 0;
	if (status)
		*status = l->child.status;
	return 1;
}

void launch_stop(struct launch *l)
{
	if (l->started && !l->child.exited)
		spawn_stop(&l->child, STOP_GRACE_NS);
}

int launch_capture(const struct host *h, const char *const *argv, const char *remote_prog,
		   int want_stderr, char *out, size_t len, uint64_t timeout_ns)
{
	out[0] = 0;
	char err[256];
	struct host_cmd hc;
	if (host_cmd(h, argv, remote_prog, &hc, err, sizeof err) < 0)
		return -1;
	int pfd[2] = {-1, -1};
	if (want_stderr && pipe2(pfd, O_CLOEXEC) < 0) {
		host_cmd_release(&hc);
		return -1;
	}
	int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	struct spawn_opts so = {.argv = hc.argv, .capture_stdout = !want_stderr, .stdin_null = 1,
				.stderr_fd = want_stderr ? pfd[1] : devnull, .netns = hc.netns};
	struct spawn_child ch;
	int rc = spawn_start(&so, &ch);
	host_cmd_release(&hc);
	if (pfd[1] >= 0)
		close(pfd[1]);
	if (devnull >= 0)
		close(devnull);
	if (rc < 0) {
		if (pfd[0] >= 0)
			close(pfd[0]);
		return -1;
	}
	size_t o = 0;
	uint64_t deadline = clock_now_ns() + timeout_ns;
	if (want_stderr) {
		ssize_t n;
		while (o + 1 < len && (n = read(pfd[0], out + o, len - 1 - o)) > 0)
			o += (size_t)n;
		out[o] = 0;
		close(pfd[0]);
	} else {
		char line[1024];
		while (clock_now_ns() < deadline) {
			int r = spawn_read_line(&ch, line, sizeof line, deadline - clock_now_ns());
			if (r <= 0)
				break;
			o += snprintf(out + o, o < len ? len - o : 0, "%s\n", line);
			if (o >= len)
				o = len - 1;
		}
	}
	/* its output ended: let it exit by itself (an ssh client is still closing its session)
	 * before a stop, which would turn a success into "killed by SIGTERM" */
	uint64_t now = clock_now_ns();
	spawn_wait(&ch, now < deadline ? (int64_t)(deadline - now) : 0);
	spawn_stop(&ch, STOP_GRACE_NS);
	while (o && (out[o - 1] == '\n' || out[o - 1] == ' '))
		out[--o] = 0;
	return (WIFEXITED(ch.status) && WEXITSTATUS(ch.status) == 0) ? 0 : -1;
}
