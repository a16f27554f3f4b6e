#include "core/tracefs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#ifndef TRACEFS_MAGIC
#define TRACEFS_MAGIC 0x74726163
#endif
#ifndef DEBUGFS_MAGIC
#define DEBUGFS_MAGIC 0x64626720
#endif

static const char *const roots[] = {"/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events"};

static long read_id(const char *event, int *err)
{
	*err = ENOENT;
	for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
		char path[320], buf[32];
		if (snprintf(path, sizeof path, "%s/%s/id", roots[i], event) >= (int)sizeof path) {
			*err = ENAMETOOLONG;
			return -1;
		}
		int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			if (errno != ENOENT || *err == ENOENT)
				*err = errno;
			continue;
		}
		ssize_t n = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = 0;
		char *end;
		long id = strtol(buf, &end, 10);
		if (end != buf && id >= 0)
			return id;
	}
	return -1;
}

/* 1 if dir is already a mount of the given file system type. */
static int is_fs(const char *dir, long magic)
{
	struct statfs sf;
	return statfs(dir, &sf) == 0 && (long)sf.f_type == magic;
}

/* Mounts tracefs (or debugfs) where the kernel expects it; 0 if one got mounted. */
static int try_mount(void)
{
	const char *no = getenv("CTXLAB_NO_TRACEFS_MOUNT");
	if ((no && *no && strcmp(no, "0")) || geteuid() != 0)
		return -EPERM;
	struct stat st;
	if (stat("/sys/kernel/tracing", &st) == 0 && S_ISDIR(st.st_mode) &&
	    !is_fs("/sys/kernel/tracing", TRACEFS_MAGIC) &&
	    mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL) == 0)
		return 0;
	if (stat("/sys/kernel/debug", &st) == 0 && S_ISDIR(st.st_mode) &&
	    !is_fs("/sys/kernel/debug", DEBUGFS_MAGIC) &&
	    mount("nodev", "/sys/kernel/debug", "debugfs", 0, NULL) == 0)
		return 0;
	return -errno;
}

long tracefs_event_id(const char *event, char *reason, size_t len)
{
	static int mount_tried;
	int err;
	long id = read_id(event, &err);
	if (id >= 0)
		return id;
	if (!mount_tried && (err == ENOENT || err == ENOTDIR)) {
		mount_tried = 1;
		if (try_mount() == 0 && (id = read_id(event, &err)) >= 0)
			return id;
	}
	if (reason && len)
		snprintf(reason, len,
			 "tracepoint '%s' unavailable: cannot read its id under "
			 "/sys/kernel/tracing/events (%s; as root ctxlab mounts tracefs itself: "
			 "run as root, or mount -t tracefs nodev /sys/kernel/tracing)",
			 event, strerror(err));
	return -err;
}
