/* outfile: writing files as root into directories that others may have written (results
 * directories, -o paths), so that a planted link, device or temporary name cannot turn the
 * write against another file.
 *
 *   struct outfile o;
 *   int r = outfile_open(&o, "DIR/report.html", 0);
 *   if (!r) { r = write_all(o.fd, ...); r = r ? (outfile_abort(&o), r) : outfile_commit(&o); }
 *   if (r) error("cannot write '%s': %s", path, outfile_strerror(r));
 *
 * A file is written whole or not at all: to a fresh temporary ".NAME.XXXXXX" in the same
 * directory (openat O_CREAT|O_EXCL|O_NOFOLLOW, mode 0644, random suffix), fsynced, then
 * renamed over NAME with renameat on the directory's fd (so the directory cannot be swapped
 * between the check and the rename). A crash leaves at most a hidden temporary behind.
 *
 * What may already be at NAME:
 *   - nothing, or a regular file: replaced.
 *   - a symbolic link, a device, a FIFO, a socket: refused, -ELOOP for a link and
 *     -EMEDIUMTYPE for the others (outfile_strerror says it in words), unless flags has
 *     OUTFILE_NAMED: the user named this path on the command line, so an existing character
 *     device or FIFO (--json /dev/null) is written in place, and a link is resolved the
 *     same way (a link to /dev/null is written in place; a link to a regular file is replaced
 *     by the new file, never written through).
 *   - a directory: -EISDIR.
 * With OUTFILE_NAMED, /dev/stdout, /dev/stderr and /dev/fd/N write into that descriptor as it
 * is (a shell's `> file` or `>> file`), whatever it is open on.
 * The directory part of the path is the caller's (the results directory the user named, or
 * the cwd): it is followed like any path. Subdirectories that ctxlab creates inside a results
 * directory go through outfile_mkdirs_under, which never follows a link.
 *
 * All functions return 0 (or an fd) / -errno. Thread-safe (no shared state).
 */
#ifndef CTXLAB_CORE_OUTFILE_H
#define CTXLAB_CORE_OUTFILE_H

#include <stddef.h>

#define OUTFILE_NAMED 1 /* the path was named by the user: devices and FIFOs written in place */

struct outfile {
	int fd;         /* write here (the temporary, or the device in place) */
	int dfd;        /* the parent directory; -1 when written in place */
	char name[256]; /* the final name in dfd */
	char tmp[300];  /* the temporary name in dfd ("" when in place) */
};

/* Opens a write of path. On success o->fd takes the bytes; finish with outfile_commit or
 * outfile_abort (exactly one). On failure nothing is left open or created. */
int outfile_open(struct outfile *o, const char *path, int flags);
/* fsyncs, closes and renames the temporary over the name (or closes the device). Releases o
 * whatever the result; on failure the temporary is removed and the old file is intact. */
int outfile_commit(struct outfile *o);
/* Drops the write: closes, removes the temporary. The old file is intact. */
void outfile_abort(struct outfile *o);

/* outfile_open + the bytes + outfile_commit. */
int outfile_write(const char *path, const void *data, size_t len, int flags);

/* Opens path for appending (created 0644 when absent): a symbolic link is refused (-ELOOP),
 * anything but a regular file too (-EMEDIUMTYPE, opened non-blocking so a FIFO cannot hang
 * the check). rdwr: 1 = O_RDWR (pread the log back), 0 = O_WRONLY. An fd (O_CLOEXEC) or
 * -errno. */
int outfile_open_append(const char *path, int rdwr);

/* Creates the directories of rel ("flame/ID") under base (followed: the user named it),
 * each component mkdir'd 0755 when absent and then opened O_NOFOLLOW|O_DIRECTORY: a link or
 * a non-directory on the way gives -ELOOP / -ENOTDIR and nothing is created through it. */
int outfile_mkdirs_under(const char *base, const char *rel);

/* strerror, with the words for this module's refusals (-ELOOP, -EMEDIUMTYPE). */
const char *outfile_strerror(int neg_errno);

#endif
