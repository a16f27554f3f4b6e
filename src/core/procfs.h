/* procfs: the two /proc readers every module shares: a process's thread ids and its
 * /proc/PID/stat line. No allocation except growing the caller's tid array; no printing. */
#ifndef CTXLAB_CORE_PROCFS_H
#define CTXLAB_CORE_PROCFS_H

#include <stdint.h>
#include <sys/types.h>

/* The fields of /proc/PID/stat (or /proc/PID/task/TID/stat) that ctxlab reads; numbered as
 * in proc(5). Times are in clock ticks (sysconf(_SC_CLK_TCK)). */
struct procfs_stat {
	char comm[16];                    /* 2, without the parentheses, cut to 15 bytes */
	char state;                       /* 3: R, S, D, Z, X, ... */
	pid_t ppid;                       /* 4 */
	uint64_t minflt, cminflt;         /* 10, 11 */
	uint64_t majflt, cmajflt;         /* 12, 13 */
	uint64_t ut, st;                  /* 14 utime, 15 stime: ticks */
	uint64_t cut, cst;                /* 16 cutime, 17 cstime: ticks of reaped children */
	int threads;                      /* 20 */
	uint64_t start;                   /* 22 starttime: ticks after boot */
	uint64_t rss_pages;               /* 24 */
};

/* Parses the text of a stat line (NUL-terminated; a comm holding ')' or spaces is handled:
 * the last ')' ends it). Fields missing at the end of a short line read 0.
 * 0, or -EINVAL when there is no "(comm)". */
int procfs_parse_stat(const char *buf, struct procfs_stat *st);

/* Reads and parses /proc/PID/stat. 0, -errno of open/read (-ENOENT: the process is gone), or
 * -EINVAL. */
int procfs_read_stat(pid_t pid, struct procfs_stat *st);

/* Appends the thread ids of process pid (the entries of /proc/PID/task, in directory order)
 * to *tids, which holds n of *cap entries and is grown with realloc (the caller frees it;
 * *tids may start NULL with *cap 0). dirfd: an open /proc/PID directory, or -1 to find it by
 * pid. Returns the new count, or -errno: the directory could not be opened (-ENOENT: the
 * process is gone) or -ENOMEM (the entries appended so far stay in *tids). */
int procfs_list_tasks(int dirfd, pid_t pid, pid_t **tids, int n, int *cap);

/* Calls fn(name, arg) for every entry of the open directory fd whose name starts with a digit
 * (tasks, pids, fds), with getdents64. Stops at fn's first non-zero return and returns it;
 * 0 at the end, or -errno from getdents64. fd stays open. */
int procfs_each_numeric(int fd, int (*fn)(const char *name, void *arg), void *arg);

#endif
