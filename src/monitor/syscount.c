#include "monitor/syscount.h"

#include "core/tracefs.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

const char *const syscount_names[] = {
	"read",       "write",       "readv",      "writev",     "pread64",    "pwrite64",
	"recvfrom",   "sendto",      "recvmsg",    "sendmsg",    "recvmmsg",   "sendmmsg",
	"sendfile64", "splice",      "accept",     "accept4",    "connect",    "shutdown",
	"close",      "socketpair",  "pipe2",      "epoll_wait", "epoll_pwait","epoll_pwait2",
	"epoll_ctl",  "poll",        "ppoll",      "select",     "pselect6",   "io_uring_enter",
	"futex",      "clone",       "clone3",     "execve",     "wait4",      "nanosleep",
	"clock_nanosleep", "mmap",   "munmap",     "fcntl",      "ioctl",      "setsockopt",
	"getsockopt", NULL,
};

static long open_one(long tp, int cg, int cpu)
{
	struct perf_event_attr a;
	memset(&a, 0, sizeof a);
	a.size = sizeof a;
	a.type = PERF_TYPE_TRACEPOINT;
	a.config = (uint64_t)tp;
	return syscall(SYS_perf_event_open, &a, cg, cpu, -1,
		       PERF_FLAG_FD_CLOEXEC | PERF_FLAG_PID_CGROUP);
}

/* ids[0]: raw_syscalls:sys_enter, then the names this kernel has (names[1..]); the count of
 * ids, or -errno with reason */
static int tracepoint_ids(long *ids, const char **names, char *reason, size_t len)
{
	char why[256];
	ids[0] = tracefs_event_id("raw_syscalls/sys_enter", why, sizeof why);
	if (ids[0] < 0) {
		snprintf(reason, len, "no syscall tracepoints: %s", why);
		return (int)ids[0];
	}
	names[0] = "total";
	int n = 1;
	for (int i = 0; syscount_names[i] && n < SYSCOUNT_MAX; i++) {
		char ev[80];
		snprintf(ev, sizeof ev, "syscalls/sys_enter_%s", syscount_names[i]);
		long id = tracefs_event_id(ev, NULL, 0);
		if (id < 0)
			continue; /* not on this kernel or architecture */
		names[n] = syscount_names[i];
		ids[n++] = id;
	}
	return n;
}

int syscount_hold_open(struct syscount_hold *h, char *reason, size_t len)
{
	memset(h, 0, sizeof *h);
	long ids[SYSCOUNT_MAX];
	const char *names[SYSCOUNT_MAX];
	int n = tracepoint_ids(ids, names, reason, len);
	if (n < 0)
		return n;
	for (int k = 0; k < n; k++) {
		struct perf_event_attr a;
		memset(&a, 0, sizeof a);
		a.size = sizeof a;
		a.type = PERF_TYPE_TRACEPOINT;
		a.config = (uint64_t)ids[k];
		a.disabled = 1;
		long fd = syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
		if (fd < 0) {
			int e = errno;
			snprintf(reason, len, "cannot open a tracepoint event: %s", strerror(e));
			syscount_hold_close(h);
			return -e;
		}
		h->fds[h->n++] = (int)fd;
	}
	return 0;
}

void syscount_hold_close(struct syscount_hold *h)
{
	for (int k = 0; k < h->n; k++)
		close(h->fds[k]);
	h->n = 0;
}

void syscount_close(struct syscount *s)
{
	if (s->fds) {
		for (int i = 0; i < s->ncpu * (s->n + 1); i++)
			if (s->fds[i] >= 0)
				close(s->fds[i]);
		free(s->fds);
	}
	memset(s, 0, sizeof *s);
}

/* Reads row k of every CPU into v[k] for the rows [k0, k1). */
static int read_rows(struct syscount *s, uint64_t *v, int k0, int k1)
{
	int rows = s->n + 1;
	for (int c = 0; c < s->ncpu; c++)
		for (int k = k0; k < k1; k++) {
			int fd = s->fds[c * rows + k];
			uint64_t x;
			if (fd < 0)
				continue;
			if (read(fd, &x, sizeof x) != (ssize_t)sizeof x)
				return -EIO;
			v[k] += x;
		}
	return 0;
}

/* Reads every counter while the cgroup keeps running: the total (row 0) first at a baseline
 * and last at an end, so that the total's span contains every named counter's span and the
 * total over the window is never below the sum of its named parts (the few system calls made
 * between the reads fall into `other`). */
static int read_all(struct syscount *s, uint64_t *v, int total_last)
{
	int rows = s->n + 1;
	memset(v, 0, sizeof(uint64_t) * (size_t)rows);
	if (total_last)
		return read_rows(s, v, 1, rows) < 0 || read_rows(s, v, 0, 1) < 0 ? -EIO : 0;
	return read_rows(s, v, 0, 1) < 0 || read_rows(s, v, 1, rows) < 0 ? -EIO : 0;
}

int syscount_open(struct syscount *s, const char *cgdir, char *reason, size_t len)
{
	memset(s, 0, sizeof *s);
	long tp[SYSCOUNT_MAX];
	int nt = tracepoint_ids(tp, s->name, reason, len);
	if (nt < 0)
		return nt;
	s->n = nt - 1;
	int cg = open(cgdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg < 0) {
		int e = errno;
		snprintf(reason, len, "cannot open the cgroup '%.200s': %s", cgdir, strerror(e));
		return -e;
	}
	long ncpu = sysconf(_SC_NPROCESSORS_CONF);
	s->ncpu = ncpu < 1 ? 1 : (int)ncpu;
	int rows = s->n + 1;
	s->fds = malloc(sizeof(int) * (size_t)(s->ncpu * rows));
	if (!s->fds) {
		close(cg);
		snprintf(reason, len, "out of memory");
		return -ENOMEM;
	}
	int opened = 0, err = 0;
	for (int c = 0; c < s->ncpu; c++)
		for (int k = 0; k < rows; k++) {
			long fd = open_one(tp[k], cg, c);
			s->fds[c * rows + k] = fd < 0 ? -1 : (int)fd;
			if (fd >= 0)
				opened++;
			else if (errno != ENODEV && !err) /* ENODEV: an offline CPU */
				err = errno;
		}
	close(cg);
	if (err || !opened) {
		err = err ? err : ENODEV;
		snprintf(reason, len, "cannot open per-cgroup tracepoint counters: %s%s", strerror(err),
			 err == EACCES || err == EPERM ? " (needs root, or kernel.perf_event_paranoid "
							 "<= 0)" : err == EMFILE ? " (raise ulimit -n)" : "");
		syscount_close(s);
		return -err;
	}
	if (read_all(s, s->base, 0) < 0) {
		snprintf(reason, len, "cannot read the tracepoint counters");
		syscount_close(s);
		return -EIO;
	}
	return 0;
}

int syscount_read(struct syscount *s, uint64_t *counts)
{
	uint64_t v[SYSCOUNT_MAX];
	int r = read_all(s, v, 1);
	if (r < 0)
		return r;
	for (int k = 0; k <= s->n; k++)
		counts[k] = v[k] >= s->base[k] ? v[k] - s->base[k] : 0;
	return 0;
}

int syscount_rebase(struct syscount *s)
{
	return read_all(s, s->base, 0);
}
