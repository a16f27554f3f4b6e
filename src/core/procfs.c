/* procfs: /proc/PID/task listing and /proc/PID/stat parsing (see procfs.h). */
#include "core/procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* one numeric field; a negative one reads 0 (and is consumed, so the next field stays aligned) */
static uint64_t parse_u64(const char **pp)
{
	const char *p = *pp;
	uint64_t v = 0;
	while (*p == ' ' || *p == '\t')
		p++;
	int neg = *p == '-';
	p += neg;
	while (*p >= '0' && *p <= '9')
		v = v * 10 + (uint64_t)(*p++ - '0');
	*pp = p;
	return neg ? 0 : v;
}

/* skips one field (a negative number included) */
static void skip_field(const char **pp)
{
	const char *p = *pp;
	while (*p == ' ')
		p++;
	while (*p && *p != ' ')
		p++;
	*pp = p;
}

int procfs_parse_stat(const char *buf, struct procfs_stat *ps)
{
	const char *lp = strchr(buf, '('), *rp = strrchr(buf, ')');
	if (!lp || !rp || rp < lp)
		return -EINVAL;
	memset(ps, 0, sizeof *ps);
	size_t cl = (size_t)(rp - lp - 1);
	if (cl > sizeof ps->comm - 1)
		cl = sizeof ps->comm - 1;
	memcpy(ps->comm, lp + 1, cl);
	ps->comm[cl] = 0;
	const char *p = rp + 1;
	while (*p == ' ')
		p++;
	ps->state = *p;
	skip_field(&p);                        /* 3 state */
	ps->ppid = (pid_t)parse_u64(&p);       /* 4 */
	for (int i = 5; i <= 9; i++)
		skip_field(&p);
	ps->minflt = parse_u64(&p);            /* 10 */
	ps->cminflt = parse_u64(&p);
	ps->majflt = parse_u64(&p);
	ps->cmajflt = parse_u64(&p);
	ps->ut = parse_u64(&p);                /* 14 */
	ps->st = parse_u64(&p);
	ps->cut = parse_u64(&p);
	ps->cst = parse_u64(&p);               /* 17 */
	skip_field(&p);                        /* 18 priority (may be negative) */
	skip_field(&p);                        /* 19 nice */
	ps->threads = (int)parse_u64(&p);      /* 20 */
	skip_field(&p);                        /* 21 */
	ps->start = parse_u64(&p);             /* 22 */
	skip_field(&p);                        /* 23 vsize */
	ps->rss_pages = parse_u64(&p);         /* 24 */
	return 0;
}

int procfs_read_stat(pid_t pid, struct procfs_stat *st)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	int e = errno;
	close(fd);
	if (n < 0)
		return -e;
	buf[n] = 0;
	return procfs_parse_stat(buf, st);
}

int procfs_each_numeric(int fd, int (*fn)(const char *name, void *arg), void *arg)
{
	/* getdents64 rather than readdir: no DIR to allocate, one syscall per 4 KiB of names
	 * (the monitor lists every thread and fd of the tree every interval) */
	char dbuf[4096];
	for (;;) {
		long r = syscall(SYS_getdents64, fd, dbuf, sizeof dbuf);
		if (r < 0)
			return -errno;
		if (r == 0)
			return 0;
		for (long off = 0; off < r;) {
			struct {
				uint64_t ino;
				int64_t off;
				unsigned short reclen;
				unsigned char type;
				char name[];
			} *de = (void *)(dbuf + off);
			off += de->reclen;
			if (de->name[0] < '0' || de->name[0] > '9')
				continue;
			int e = fn(de->name, arg);
			if (e)
				return e;
		}
	}
}

struct tids_acc {
	pid_t **tids;
	int n, *cap;
};

static int add_tid(const char *name, void *arg)
{
	struct tids_acc *a = arg;
	if (a->n == *a->cap) {
		int nc = *a->cap ? *a->cap * 2 : 64;
		pid_t *t = realloc(*a->tids, (size_t)nc * sizeof *t);
		if (!t)
			return -ENOMEM;
		*a->tids = t, *a->cap = nc;
	}
	(*a->tids)[a->n++] = (pid_t)parse_u64(&name);
	return 0;
}

int procfs_list_tasks(int dirfd, pid_t pid, pid_t **tids, int n, int *cap)
{
	int fd;
	if (dirfd >= 0) {
		fd = openat(dirfd, "task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	} else {
		char path[64];
		snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
		fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (fd < 0)
		return -errno;
	struct tids_acc a = {tids, n, cap};
	int e = procfs_each_numeric(fd, add_tid, &a);
	close(fd);
	return e == -ENOMEM ? e : a.n;
}
