/* logroom: chat rooms as append-only log files under flock, for fork and prefork.
 * The design and its reasons are in logroom.h. */
#include "engine/logroom.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto/proto.h"

#define LR_MAGIC 0x314d4f4f52474f4cULL /* "LOGROOM1" */
#define LR_REC_MAGIC 0x4345524cU       /* "LREC" */
#define LR_MAX_MSG (1U << 30)
#define LR_NAME_HEX_MAX 100            /* longer room names are hashed */

struct lr_slot {
	_Atomic int32_t pid;       /* 0 = free */
	_Atomic int32_t waiting;   /* 1: the process is about to sleep, signal it */
	_Atomic uint64_t min_off;  /* no reader of the process is before this offset */
};

struct lr_hdr {
	uint64_t magic;
	_Atomic uint64_t end;      /* committed end of the log (file offset) */
	uint64_t punched;          /* [LOGROOM_HDR_BYTES, punched) has been released */
	_Atomic uint32_t nslots;   /* slots in use are below this */
	uint32_t pad;
	uint64_t reserved[4];
	struct lr_slot slots[];
};

#define LR_NSLOTS ((LOGROOM_HDR_BYTES - sizeof(struct lr_hdr)) / sizeof(struct lr_slot))

struct lr_rec {
	uint32_t len;
	uint32_t magic;
	uint64_t sender;
};

_Static_assert(sizeof(struct lr_rec) == LOGROOM_REC_BYTES, "record header size");
_Static_assert(sizeof(struct lr_slot) == 16, "slot size");

struct logroom_room {
	struct logroom *lr;
	struct logroom_room *prev, *next;
	char *name;
	size_t name_len;
	int fd;
	struct lr_hdr *hdr;
	uint32_t slot;
	struct logroom_reader *readers;
	int nreaders;
	int iterating;
};

struct logroom {
	char dir[PATH_MAX];
	size_t max_rooms; /* room files at once in dir; 0 = no bound */
	int sfd;
	pid_t pid;
	struct logroom_room *rooms;
};

/* ---- directory ----------------------------------------------------------------------- */

int logroom_dir_create(char *path, size_t len)
{
	const char *cands[3] = {"/dev/shm", getenv("TMPDIR"), "/tmp"};
	int err = -ENOENT;
	for (int i = 0; i < 3; i++) {
		struct stat st;
		if (!cands[i] || !*cands[i] || stat(cands[i], &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		int n = snprintf(path, len, "%s/ctxlab-chat-XXXXXX", cands[i]);
		if (n < 0 || (size_t)n >= len) {
			err = -ENAMETOOLONG;
			continue;
		}
		if (mkdtemp(path))
			return 0;
		err = -errno;
	}
	if (len)
		path[0] = '\0';
	return err;
}

typedef int dir_fn(int dfd, const char *name, void *ud);

static int dir_each(const char *path, dir_fn *fn, void *ud)
{
	DIR *d = opendir(path);
	if (!d)
		return -errno;
	int total = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		int r = fn(dirfd(d), de->d_name, ud);
		if (r > 0)
			total += r;
	}
	closedir(d);
	return total;
}

static int unlink_one(int dfd, const char *name, void *ud)
{
	(void)ud;
	return unlinkat(dfd, name, 0) < 0 ? -errno : 0;
}

int logroom_dir_remove(const char *path)
{
	if (!path || !*path)
		return 0;
	int r = dir_each(path, unlink_one, NULL);
	if (r < 0 && r != -ENOENT)
		return r;
	if (rmdir(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

static void close_except(int a, int b)
{
	int lo = a < b ? a : b, hi = a < b ? b : a;
	if (lo > 3)
		close_range(3, (unsigned)lo - 1, 0);
	if (hi > lo + 1)
		close_range((unsigned)lo + 1, (unsigned)hi - 1, 0);
	close_range((unsigned)hi + 1, ~0U, 0);
}

static _Noreturn void janitor_main(const char *path, int rfd)
{
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* also names it in /proc */
	close_except(rfd, dfd >= 0 ? dfd : rfd);
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC); /* let go of the server's stdio pipes */
	if (nul >= 0) {
		dup2(nul, 0);
		dup2(nul, 1);
		dup2(nul, 2);
		if (nul > 2)
			close(nul);
	}
	char c;
	while (read(rfd, &c, 1) < 0 && errno == EINTR)
		;
	logroom_dir_remove(path);
	_exit(0);
}

int logroom_dir_start(struct logroom_dir *d)
{
	d->guard_fd = -1;
	d->janitor = 0;
	int err = logroom_dir_create(d->path, sizeof(d->path));
	if (err)
		return err;
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		err = -errno;
		logroom_dir_remove(d->path);
		d->path[0] = '\0';
		return err;
	}
	pid_t pid = fork();
	if (pid == 0) {
		close(p[1]);
		janitor_main(d->path, p[0]);
	}
	close(p[0]);
	if (pid < 0) {
		err = -errno;
		close(p[1]);
		logroom_dir_remove(d->path);
		d->path[0] = '\0';
		return err;
	}
	d->guard_fd = p[1];
	d->janitor = pid;
	return 0;
}

void logroom_dir_forked(struct logroom_dir *d)
{
	if (d && d->guard_fd >= 0) {
		close(d->guard_fd);
		d->guard_fd = -1;
	}
}

int logroom_dir_stop(struct logroom_dir *d)
{
	if (!d)
		return 0;
	int err = d->path[0] ? logroom_dir_remove(d->path) : 0;
	if (d->guard_fd >= 0) {
		close(d->guard_fd);
		d->guard_fd = -1;
	}
	if (d->janitor > 0) {
		while (waitpid(d->janitor, NULL, 0) < 0 && errno == EINTR)
			;
		d->janitor = 0;
	}
	d->path[0] = '\0';
	return err;
}

static int lock_fd(int fd, int op);

/* 1 when no process holds a slot of the room (h: its mapped header). */
static int hdr_empty(struct lr_hdr *h)
{
	uint32_t ns = atomic_load(&h->nslots);
	for (uint32_t i = 0; i < ns && i < LR_NSLOTS; i++)
		if (atomic_load(&h->slots[i].pid) != 0)
			return 0;
	return 1;
}

/* Under the room file's lock (fd): removes the room's file when no process is left in it,
 * so that its log (up to LOGROOM_PUNCH_STEP unpunched bytes in /dev/shm) is freed once the
 * last mapping and descriptor go; a process that opened the file just before then finds it
 * unlinked once it has the lock and opens the room anew (room_open). */
static void unlink_if_empty(int dfd, const char *name, int fd, struct lr_hdr *h)
{
	struct stat st;
	if (h->magic == LR_MAGIC && hdr_empty(h) && fstat(fd, &st) == 0 && st.st_nlink > 0)
		unlinkat(dfd, name, 0);
}

static int scrub_one(int dfd, const char *name, void *ud)
{
	pid_t pid = *(pid_t *)ud;
	int fd = openat(dfd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return 0;
	struct stat st;
	int n = 0;
	if (fstat(fd, &st) == 0 && st.st_size >= LOGROOM_HDR_BYTES) {
		struct lr_hdr *h = mmap(NULL, LOGROOM_HDR_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED,
					fd, 0);
		if (h != MAP_FAILED) {
			if (h->magic == LR_MAGIC) {
				uint32_t ns = atomic_load(&h->nslots);
				for (uint32_t i = 0; i < ns && i < LR_NSLOTS; i++) {
					int32_t want = pid;
					if (atomic_compare_exchange_strong(&h->slots[i].pid, &want, 0)) {
						atomic_store(&h->slots[i].waiting, 0);
						n++;
					}
				}
				/* the dead process was the last one in the room */
				if (n && lock_fd(fd, LOCK_EX) == 0) {
					unlink_if_empty(dfd, name, fd, h);
					lock_fd(fd, LOCK_UN);
				}
			}
			munmap(h, LOGROOM_HDR_BYTES);
		}
	}
	close(fd);
	return n;
}

int logroom_dir_scrub(const char *path, pid_t pid)
{
	if (!path || !*path || pid <= 0)
		return 0;
	return dir_each(path, scrub_one, &pid);
}

/* ---- process handle ------------------------------------------------------------------ */

int logroom_open(struct logroom **out, const char *dir, size_t max_rooms)
{
	*out = NULL;
	struct logroom *lr = calloc(1, sizeof(*lr));
	if (!lr)
		return -ENOMEM;
	lr->max_rooms = max_rooms;
	int n = snprintf(lr->dir, sizeof(lr->dir), "%s", dir);
	if (n < 0 || (size_t)n >= sizeof(lr->dir)) {
		free(lr);
		return -ENAMETOOLONG;
	}
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, LOGROOM_WAKE_SIGNAL);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) {
		int e = -errno;
		free(lr);
		return e;
	}
	lr->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (lr->sfd < 0) {
		int e = -errno;
		free(lr);
		return e;
	}
	lr->pid = getpid();
	*out = lr;
	return 0;
}

int logroom_wake_fd(const struct logroom *lr) { return lr->sfd; }

static int lock_fd(int fd, int op)
{
	while (flock(fd, op) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

static void room_name_file(const char *room, size_t len, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	if (len <= LR_NAME_HEX_MAX && outlen > 2 + 2 * len) {
		size_t o = 0;
		out[o++] = 'r';
		out[o++] = '-';
		for (size_t i = 0; i < len; i++) {
			out[o++] = hex[(unsigned char)room[i] >> 4];
			out[o++] = hex[(unsigned char)room[i] & 15];
		}
		out[o] = '\0';
		return;
	}
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)room[i];
		h *= 0x100000001b3ULL;
	}
	snprintf(out, outlen, "h-%016" PRIx64 "-%zu", h, len);
}

static void room_file(const struct logroom *lr, const char *room, size_t len, char *path,
		      size_t pathlen)
{
	char file[2 * LR_NAME_HEX_MAX + 8];
	room_name_file(room, len, file, sizeof(file));
	snprintf(path, pathlen, "%s/%s", lr->dir, file);
}

static void room_free(struct logroom_room *r)
{
	struct logroom *lr = r->lr;
	if (r->hdr) {
		struct lr_slot *s = &r->hdr->slots[r->slot];
		int locked = lock_fd(r->fd, LOCK_EX) == 0;
		atomic_store(&s->waiting, 0);
		int32_t me = lr->pid;
		atomic_compare_exchange_strong(&s->pid, &me, 0);
		if (locked) {
			char path[PATH_MAX + 2 * LR_NAME_HEX_MAX + 10];
			room_file(lr, r->name, r->name_len, path, sizeof(path));
			unlink_if_empty(AT_FDCWD, path, r->fd, r->hdr);
			lock_fd(r->fd, LOCK_UN);
		}
		munmap(r->hdr, LOGROOM_HDR_BYTES);
	}
	if (r->fd >= 0)
		close(r->fd);
	if (r->prev)
		r->prev->next = r->next;
	else
		lr->rooms = r->next;
	if (r->next)
		r->next->prev = r->prev;
	free(r->name);
	free(r);
}

static int count_one(int dfd, const char *name, void *ud)
{
	(void)dfd;
	(void)name;
	(void)ud;
	return 1;
}

/* Creates the room file at path, unless lr->max_rooms room files exist: the fd, or -ENOSPC,
 * -errno. The directory's lock (flock on it) makes count-and-create one step across the
 * server's processes. */
static int room_create(struct logroom *lr, const char *path)
{
	int dfd = open(lr->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	int fd = lock_fd(dfd, LOCK_EX);
	if (fd < 0) {
		close(dfd);
		return fd;
	}
	/* another process may have created it since our open: then it is not one more */
	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno != ENOENT) {
		fd = -errno;
	} else if (fd < 0) {
		int n = lr->max_rooms ? dir_each(lr->dir, count_one, NULL) : 0;
		if (n < 0)
			fd = n;
		else if (lr->max_rooms && (size_t)n >= lr->max_rooms)
			fd = -ENOSPC;
		else if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
			fd = -errno;
	}
	lock_fd(dfd, LOCK_UN);
	close(dfd);
	return fd;
}

/* Opens (creating when needed) the room file and claims a slot for this process. */
static int room_open(struct logroom *lr, const char *name, size_t len, struct logroom_room **out)
{
	for (struct logroom_room *r = lr->rooms; r; r = r->next) {
		if (r->name_len == len && !memcmp(r->name, name, len)) {
			*out = r;
			return 0;
		}
	}
	struct logroom_room *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->lr = lr;
	r->fd = -1;
	r->name = malloc(len + 1);
	if (!r->name) {
		free(r);
		return -ENOMEM;
	}
	memcpy(r->name, name, len);
	r->name[len] = '\0';
	r->name_len = len;
	r->next = lr->rooms;
	if (lr->rooms)
		lr->rooms->prev = r;
	lr->rooms = r;

	char path[PATH_MAX + 2 * LR_NAME_HEX_MAX + 10];
	room_file(lr, name, len, path, sizeof(path));
	int err;
	struct stat st;
	for (;;) {
		r->fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (r->fd < 0 && errno == ENOENT)
			r->fd = room_create(lr, path);
		else if (r->fd < 0)
			r->fd = -errno;
		if (r->fd < 0) {
			err = r->fd;
			r->fd = -1;
			goto fail;
		}
		err = lock_fd(r->fd, LOCK_EX);
		if (err)
			goto fail;
		if (fstat(r->fd, &st) < 0) {
			err = -errno;
			goto unlock;
		}
		if (st.st_nlink > 0)
			break;
		/* its last member left (and removed it) between our open and our lock */
		lock_fd(r->fd, LOCK_UN);
		close(r->fd);
		r->fd = -1;
	}
	if (st.st_size < LOGROOM_HDR_BYTES && ftruncate(r->fd, LOGROOM_HDR_BYTES) < 0) {
		err = -errno;
		goto unlock;
	}
	void *m = mmap(NULL, LOGROOM_HDR_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
	if (m == MAP_FAILED) {
		err = -errno;
		goto unlock;
	}
	struct lr_hdr *h = m;
	if (h->magic != LR_MAGIC) {
		atomic_store(&h->end, LOGROOM_HDR_BYTES);
		h->punched = LOGROOM_HDR_BYTES;
		atomic_store(&h->nslots, 0);
		h->magic = LR_MAGIC;
	}
	uint32_t ns = atomic_load(&h->nslots), i;
	for (i = 0; i < ns; i++) {
		int32_t zero = 0;
		if (atomic_compare_exchange_strong(&h->slots[i].pid, &zero, lr->pid))
			break;
	}
	if (i == ns) {
		if (ns >= LR_NSLOTS) {
			munmap(m, LOGROOM_HDR_BYTES);
			err = -ENOSPC;
			goto unlock;
		}
		atomic_store(&h->slots[i].pid, lr->pid);
		atomic_store(&h->nslots, ns + 1);
	}
	atomic_store(&h->slots[i].waiting, 0);
	atomic_store(&h->slots[i].min_off, atomic_load(&h->end));
	r->hdr = h;
	r->slot = i;
	lock_fd(r->fd, LOCK_UN);
	*out = r;
	return 0;
unlock:
	lock_fd(r->fd, LOCK_UN);
fail:
	room_free(r);
	return err;
}

void logroom_leave(struct logroom_reader *rd)
{
	struct logroom_room *r = rd->room;
	if (!r)
		return;
	if (rd->prev)
		rd->prev->next = rd->next;
	else
		r->readers = rd->next;
	if (rd->next)
		rd->next->prev = rd->prev;
	rd->prev = rd->next = NULL;
	rd->room = NULL;
	if (--r->nreaders == 0 && !r->iterating)
		room_free(r);
}

int logroom_join(struct logroom *lr, struct logroom_reader *rd, const char *room, size_t len,
		 uint64_t self_id)
{
	logroom_leave(rd);
	struct logroom_room *r;
	int err = room_open(lr, room, len, &r);
	if (err)
		return err;
	rd->room = r;
	rd->self_id = self_id;
	rd->off = atomic_load(&r->hdr->end);
	rd->prev = NULL;
	rd->next = r->readers;
	if (r->readers)
		r->readers->prev = rd;
	r->readers = rd;
	r->nreaders++;
	return 0;
}

void logroom_close(struct logroom *lr)
{
	if (!lr)
		return;
	while (lr->rooms) {
		struct logroom_room *r = lr->rooms;
		for (struct logroom_reader *rd = r->readers, *nx; rd; rd = nx) {
			nx = rd->next;
			rd->room = NULL;
			rd->prev = rd->next = NULL;
		}
		room_free(r);
	}
	if (lr->sfd >= 0)
		close(lr->sfd);
	free(lr);
}

/* ---- publish / read ------------------------------------------------------------------ */

/* Under the lock: releases the log below the smallest reader offset of the room. */
static void room_punch(struct logroom_room *r)
{
	struct lr_hdr *h = r->hdr;
	uint64_t min = atomic_load(&h->end);
	uint32_t ns = atomic_load(&h->nslots);
	for (uint32_t i = 0; i < ns && i < LR_NSLOTS; i++) {
		if (atomic_load(&h->slots[i].pid) == 0)
			continue;
		uint64_t m = atomic_load(&h->slots[i].min_off);
		if (m < min)
			min = m;
	}
	min &= ~(uint64_t)4095;
	if (min > h->punched) {
		if (fallocate(r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)h->punched,
			      (off_t)(min - h->punched)) == 0)
			h->punched = min;
	}
}

int logroom_publish(struct logroom_reader *rd, const void *msg, size_t len)
{
	struct logroom_room *r = rd->room;
	if (!r)
		return -ENOTCONN;
	if (len > LR_MAX_MSG)
		return -EMSGSIZE;
	struct lr_hdr *h = r->hdr;
	struct lr_rec rec = {.len = (uint32_t)len, .magic = LR_REC_MAGIC, .sender = rd->self_id};
	int err = lock_fd(r->fd, LOCK_EX);
	if (err)
		return err;
	uint64_t start = atomic_load(&h->end), pos = start;
	uint64_t total = sizeof(rec) + len;
	while (pos - start < total) {
		uint64_t done = pos - start;
		struct iovec iov[2];
		int n = 0;
		if (done < sizeof(rec)) {
			iov[n].iov_base = (char *)&rec + done;
			iov[n++].iov_len = sizeof(rec) - done;
			iov[n].iov_base = (void *)msg;
			iov[n++].iov_len = len;
		} else {
			iov[n].iov_base = (char *)msg + (done - sizeof(rec));
			iov[n++].iov_len = total - done;
		}
		ssize_t w = pwritev(r->fd, iov, n, (off_t)pos);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			err = w < 0 ? -errno : -EIO;
			lock_fd(r->fd, LOCK_UN);
			return err;
		}
		pos += (uint64_t)w;
	}
	atomic_store(&h->end, pos); /* commit: readers may now read the record */
	if (pos / LOGROOM_PUNCH_STEP != start / LOGROOM_PUNCH_STEP)
		room_punch(r);
	lock_fd(r->fd, LOCK_UN);
	if (rd->off == start) /* nothing unread before our own record: skip it */
		rd->off = pos;

	/* Wake the other processes that are (about to be) asleep. */
	uint32_t ns = atomic_load(&h->nslots);
	for (uint32_t i = 0; i < ns && i < LR_NSLOTS; i++) {
		if (i == r->slot)
			continue;
		struct lr_slot *s = &h->slots[i];
		int32_t pid = atomic_load(&s->pid);
		if (pid <= 0 || !atomic_load(&s->waiting) || !atomic_exchange(&s->waiting, 0))
			continue;
		if (kill(pid, LOGROOM_WAKE_SIGNAL) < 0 && errno == ESRCH)
			atomic_compare_exchange_strong(&s->pid, &pid, 0);
	}
	return 0;
}

int logroom_env_join(struct proto_env *env, const char *room, size_t len)
{
	struct logroom_reader *rd = env->engine_ud;
	if (!rd->lr)
		return -ENOTSUP;
	return logroom_join(rd->lr, rd, room, len, env->conn_id);
}

int logroom_env_publish(struct proto_env *env, const char *msg, size_t len)
{
	struct logroom_reader *rd = env->engine_ud;
	if (!rd->room)
		return 0; /* in no room: nobody to deliver to */
	return logroom_publish(rd, msg, len);
}

static void room_update_min(struct logroom_room *r)
{
	uint64_t min = UINT64_MAX;
	for (struct logroom_reader *rd = r->readers; rd; rd = rd->next)
		if (rd->off < min)
			min = rd->off;
	if (min != UINT64_MAX)
		atomic_store(&r->hdr->slots[r->slot].min_off, min);
}

static int pread_full(int fd, char *p, size_t n, uint64_t off)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(fd, p + got, n - got, (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		got += (size_t)r;
	}
	return 0;
}

ssize_t logroom_read_upto(struct logroom_reader *rd, struct buf *out, size_t max_out_bytes)
{
	struct logroom_room *r = rd->room;
	if (!r)
		return 0;
	uint64_t end = atomic_load(&r->hdr->end);
	size_t appended = 0;
	int overflow = 0, full = 0;
	while (rd->off < end && !full) {
		uint64_t unread = end - rd->off;
		size_t used = buf_used(out), want;
		if (!max_out_bytes)
			want = unread > SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)unread;
		else {
			/* what can still fit, plus one record header to learn the next length */
			size_t room = used < max_out_bytes ? max_out_bytes - used : 0;
			want = room + sizeof(struct lr_rec);
			if (want > unread)
				want = (size_t)unread;
		}
		int err = buf_reserve(out, want);
		if (err)
			return err;
		char *p = out->data + out->len;
		if ((err = pread_full(r->fd, p, want, rd->off)))
			return err;
		/* keep the records for rd, stripped of headers, in place */
		size_t q = 0, w = 0;
		struct lr_rec rec = {0};
		while (q + sizeof(rec) <= want) {
			memcpy(&rec, p + q, sizeof(rec));
			if (rec.magic != LR_REC_MAGIC || rec.len > LR_MAX_MSG)
				return -EIO;
			if (rec.sender != rd->self_id && max_out_bytes &&
			    used + w + rec.len > max_out_bytes) {
				/* full: stop here (the caller flushes and comes back); a record
				 * larger than the bound can never be delivered */
				if (used + w == 0)
					overflow = 1;
				full = 1;
				break;
			}
			if (rec.len > want - q - sizeof(rec))
				break; /* not all in this chunk */
			if (rec.sender != rd->self_id) {
				memmove(p + w, p + q + sizeof(rec), rec.len);
				w += rec.len;
			}
			q += sizeof(rec) + rec.len;
		}
		if (q == 0 && !full) {
			/* the chunk held only the header of a record that is not for us (own) or
			 * (no bound) cannot happen; skip our own record without reading it */
			if (rec.sender != rd->self_id)
				return -EIO;
			q = sizeof(rec) + rec.len;
		}
		out->len += w;
		appended += w;
		rd->off += q;
	}
	if (r->nreaders == 1)
		atomic_store(&r->hdr->slots[r->slot].min_off, rd->off);
	return overflow ? -EOVERFLOW : (ssize_t)appended;
}

ssize_t logroom_read(struct logroom_reader *rd, struct buf *out, size_t max_lag_bytes)
{
	struct logroom_room *r = rd->room;
	if (!r)
		return 0;
	uint64_t end = atomic_load(&r->hdr->end);
	if (end <= rd->off)
		return 0;
	uint64_t unread = end - rd->off;
	if (max_lag_bytes && unread + buf_used(out) > max_lag_bytes)
		return -EOVERFLOW;
	return logroom_read_upto(rd, out, 0);
}

uint64_t logroom_lag_bytes(const struct logroom_reader *rd)
{
	if (!rd->room)
		return 0;
	uint64_t end = atomic_load(&rd->room->hdr->end);
	return end > rd->off ? end - rd->off : 0;
}

int logroom_pending(const struct logroom_reader *rd)
{
	return rd->room && atomic_load(&rd->room->hdr->end) > rd->off;
}

int logroom_for_pending(struct logroom *lr, void (*fn)(struct logroom_reader *rd, void *ud),
			void *ud)
{
	int calls = 0;
	for (struct logroom_room *r = lr->rooms, *rnext; r; r = rnext) {
		r->iterating = 1;
		uint64_t end = atomic_load(&r->hdr->end);
		for (struct logroom_reader *rd = r->readers, *nx; rd; rd = nx) {
			nx = rd->next;
			if (end > rd->off) {
				fn(rd, ud);
				calls++;
			}
		}
		r->iterating = 0;
		rnext = r->next;
		if (r->nreaders == 0)
			room_free(r);
		else
			room_update_min(r);
	}
	return calls;
}

int logroom_arm(struct logroom *lr)
{
	struct signalfd_siginfo si[8];
	while (read(lr->sfd, si, sizeof(si)) > 0)
		;
	int pending = 0;
	for (struct logroom_room *r = lr->rooms; r; r = r->next) {
		atomic_store(&r->hdr->slots[r->slot].waiting, 1);
		uint64_t end = atomic_load(&r->hdr->end);
		for (struct logroom_reader *rd = r->readers; rd; rd = rd->next)
			if (end > rd->off) {
				pending = 1;
				break;
			}
	}
	return pending;
}
