#include "core/outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Splits path into its directory (opened, followed) and its last component. */
static int open_parent(const char *path, char *name, size_t len)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
		return -EISDIR;
	if (strlen(base) >= len)
		return -ENAMETOOLONG;
	snprintf(name, len, "%s", base);
	char dir[4096];
	if (!slash) {
		snprintf(dir, sizeof dir, ".");
	} else if (slash == path) {
		snprintf(dir, sizeof dir, "/");
	} else {
		if ((size_t)(slash - path) >= sizeof dir)
			return -ENAMETOOLONG;
		memcpy(dir, path, (size_t)(slash - path));
		dir[slash - path] = 0;
	}
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return dfd < 0 ? -errno : dfd;
}

static uint64_t random_u64(void)
{
	uint64_t v;
	if (getrandom(&v, sizeof v, GRND_NONBLOCK) == (ssize_t)sizeof v)
		return v;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40);
}

/* Writes in place into what path names (a device or FIFO the user named). */
static int open_in_place(struct outfile *o, const char *path)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0 || S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
		close(fd);
		return -EAGAIN; /* it changed under us: let the caller go the atomic way */
	}
	o->fd = fd;
	o->dfd = -1;
	o->tmp[0] = 0;
	return 0;
}

/* /dev/stdout, /dev/stderr, /dev/fd/N: the descriptor itself (N, -1 for another path) */
static int fd_path(const char *path)
{
	if (!strcmp(path, "/dev/stdout"))
		return 1;
	if (!strcmp(path, "/dev/stderr"))
		return 2;
	const char *n = !strncmp(path, "/dev/fd/", 8) ? path + 8
			: !strncmp(path, "/proc/self/fd/", 14) ? path + 14 : NULL;
	if (!n || !*n || strspn(n, "0123456789") != strlen(n) || strlen(n) > 6)
		return -1;
	return atoi(n);
}

int outfile_open(struct outfile *o, const char *path, int flags)
{
	memset(o, 0, sizeof *o);
	o->fd = o->dfd = -1;
	struct stat st;
	int std = (flags & OUTFILE_NAMED) ? fd_path(path) : -1;
	if (std >= 0) {
		/* the descriptor as it is (a shell's `> file` or `>> file`), never renamed over */
		o->fd = fcntl(std, F_DUPFD_CLOEXEC, 3);
		return o->fd < 0 ? -errno : 0;
	}
	if ((flags & OUTFILE_NAMED) && stat(path, &st) == 0 && !S_ISREG(st.st_mode) &&
	    !S_ISDIR(st.st_mode) && (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode))) {
		int r = open_in_place(o, path);
		if (r != -EAGAIN)
			return r;
	}
	int dfd = open_parent(path, o->name, sizeof o->name);
	if (dfd < 0)
		return dfd;
	if (fstatat(dfd, o->name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		int r = 0;
		if (S_ISDIR(st.st_mode))
			r = -EISDIR;
		else if (S_ISLNK(st.st_mode) && !(flags & OUTFILE_NAMED))
			r = -ELOOP;
		else if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
			r = -EMEDIUMTYPE;
		if (S_ISLNK(st.st_mode) && (flags & OUTFILE_NAMED) &&
		    fstatat(dfd, o->name, &st, 0) == 0 && S_ISDIR(st.st_mode))
			r = -EISDIR;
		if (r) {
			close(dfd);
			return r;
		}
	} else if (errno != ENOENT) {
		int e = -errno;
		close(dfd);
		return e;
	}
	for (int i = 0; i < 100; i++) {
		static const char digits[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
		uint64_t v = random_u64();
		char suf[7];
		for (int k = 0; k < 6; k++, v /= 62)
			suf[k] = digits[v % 62];
		suf[6] = 0;
		snprintf(o->tmp, sizeof o->tmp, ".%.255s.%s", o->name, suf);
		int fd = openat(dfd, o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
				0644);
		if (fd >= 0) {
			o->fd = fd;
			o->dfd = dfd;
			return 0;
		}
		if (errno != EEXIST) {
			int e = -errno;
			close(dfd);
			o->tmp[0] = 0;
			return e;
		}
	}
	close(dfd);
	o->tmp[0] = 0;
	return -EEXIST;
}

void outfile_abort(struct outfile *o)
{
	if (o->fd >= 0)
		close(o->fd);
	if (o->dfd >= 0) {
		if (o->tmp[0])
			unlinkat(o->dfd, o->tmp, 0);
		close(o->dfd);
	}
	o->fd = o->dfd = -1;
	o->tmp[0] = 0;
}

int outfile_commit(struct outfile *o)
{
	int r = 0;
	if (o->dfd < 0) { /* in place */
		if (close(o->fd) < 0)
			r = -errno;
		o->fd = -1;
		return r;
	}
	if (fsync(o->fd) < 0)
		r = -errno;
	if (close(o->fd) < 0 && !r)
		r = -errno;
	o->fd = -1;
	if (!r && renameat(o->dfd, o->tmp, o->dfd, o->name) < 0)
		r = -errno;
	if (r) {
		outfile_abort(o);
		return r;
	}
	o->tmp[0] = 0;
	close(o->dfd);
	o->dfd = -1;
	return 0;
}

static int write_all(int fd, const char *data, size_t len)
{
	size_t off = 0;
	while (off < len) {
		ssize_t n = write(fd, data + off, len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		off += (size_t)n;
	}
	return 0;
}

int outfile_write(const char *path, const void *data, size_t len, int flags)
{
	struct outfile o;
	int r = outfile_open(&o, path, flags);
	if (r)
		return r;
	r = write_all(o.fd, data, len);
	if (r) {
		outfile_abort(&o);
		return r;
	}
	return outfile_commit(&o);
}

int outfile_open_append(const char *path, int rdwr)
{
	int fd = open(path, (rdwr ? O_RDWR : O_WRONLY) | O_CREAT | O_APPEND | O_NOFOLLOW |
				    O_NONBLOCK | O_CLOEXEC, 0644);
	if (fd < 0) {
		int e = errno;
		struct stat st;
		if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
			return S_ISLNK(st.st_mode) ? -ELOOP : -EMEDIUMTYPE;
		return -e;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	/* a hard link planted in place of the file would append to its other name */
	if (!S_ISREG(st.st_mode) || st.st_nlink > 1) {
		close(fd);
		return -EMEDIUMTYPE;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	return fd;
}

int outfile_mkdirs_under(const char *base, const char *rel)
{
	int dfd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	char part[256];
	const char *p = rel;
	while (*p) {
		while (*p == '/')
			p++;
		size_t n = strcspn(p, "/");
		if (!n)
			break;
		if (n >= sizeof part || (n == 2 && !strncmp(p, "..", 2))) {
			close(dfd);
			return n >= sizeof part ? -ENAMETOOLONG : -EINVAL;
		}
		memcpy(part, p, n);
		part[n] = 0;
		p += n;
		if (mkdirat(dfd, part, 0755) < 0 && errno != EEXIST) {
			int e = -errno;
			close(dfd);
			return e;
		}
		int next = openat(dfd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int e = -errno;
		close(dfd);
		if (next < 0) {
			/* O_NOFOLLOW|O_DIRECTORY on a link: ENOTDIR on some kernels, ELOOP on others */
			struct stat st;
			char whole[4096];
			snprintf(whole, sizeof whole, "%s/%.*s", base, (int)(p - rel), rel);
			if (lstat(whole, &st) == 0 && S_ISLNK(st.st_mode))
				return -ELOOP;
			return e;
		}
		dfd = next;
	}
	close(dfd);
	return 0;
}

const char *outfile_strerror(int neg_errno)
{
	switch (-neg_errno) {
	case ELOOP:
		return "it is a symbolic link (ctxlab never writes through a link it did not "
		       "create: remove it, or name another path)";
	case EMEDIUMTYPE:
		return "it is not a regular file (a device, FIFO, socket or hard-linked file: "
		       "ctxlab never writes into one inside a results directory; remove it)";
	default:
		return strerror(-neg_errno);
	}
}
