/* logroom: chat rooms for processes that share nothing else (engines fork and prefork).
 *
 * papayachat's design: every room is one append-only log file in a private directory that
 * the server's parent creates before it forks (logroom_dir_create). A publisher appends a
 * record {length, sender id, bytes} under flock(LOCK_EX); every connection keeps its own read
 * offset and sends, in log order, every record whose sender is not itself — exactly once,
 * since offsets only move forward over whole records.
 *
 * File layout: a LOGROOM_HDR_BYTES header (mmap'ed MAP_SHARED by every process in the room)
 * then the records. The header holds the committed end of the log (written, under the lock,
 * after the record's bytes: readers read up to it without taking the lock, so they never see
 * a partial record) and one slot per *process* in the room: {pid, waiting, min_off}.
 *
 * Wake-up: SIGUSR1 sent to the processes of the room, received through a signalfd (the
 * signal is blocked in every process that opens a logroom). Chosen over
 *  - SIGUSR1 to the process group: wakes every process of the server (other rooms, the
 *    parent, non-chat children) and can hit unrelated processes sharing the group (a pipe's
 *    other end); the room's own pid list wakes only its members;
 *  - an eventfd shared across fork: one counter cannot broadcast — the first process that
 *    reads it resets it and the others may miss the wake-up, and a counter nobody resets
 *    keeps every poller spinning.
 * Standard signals coalesce, which is what a "look at the log" notification wants. Like a
 * futex, a publisher signals only processes that declared they are about to sleep: a process
 * calls logroom_arm() before it waits (it drains the signalfd, sets its slots' waiting flag,
 * then re-checks the committed end); a publisher appends, then signals each slot whose
 * waiting flag it swapped from 1 to 0. Both sides use sequentially consistent atomics, so a
 * record is either seen by the re-check or announced by a signal: no lost wake-ups, and a
 * busy room costs no kill(2) per record.
 *
 * Space: when the log crosses a LOGROOM_PUNCH_STEP boundary the publisher punches a hole
 * (fallocate PUNCH_HOLE) up to the smallest min_off of the room's processes, so a long
 * benchmark keeps the file's allocated size near the readers' lag. When the last process
 * leaves a room (logroom_leave / logroom_close, or logroom_dir_scrub of a dead one) its file
 * is unlinked under the room's lock, so an empty room holds no memory; a joiner that opened
 * the file just before checks st_nlink once it holds the lock and, when it was unlinked,
 * opens (creates) the room anew. The number of room files is bounded by logroom_open's
 * max_rooms.
 *
 * Process rules: a struct logroom belongs to one process and one thread; never use one
 * across fork (open it in the child). A process that dies without logroom_close (SIGKILL)
 * leaves its slots behind: the parent, which reaps it, calls logroom_dir_scrub(pid) before
 * the pid can be reused (waitid WNOWAIT, then reap). A publisher also clears a slot whose
 * process is gone (kill: ESRCH).
 * All functions return 0 (or a count) / -errno.
 */
#ifndef CTXLAB_ENGINE_LOGROOM_H
#define CTXLAB_ENGINE_LOGROOM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"

#define LOGROOM_HDR_BYTES (256 * 1024)           /* header; room for ~16k processes */
#define LOGROOM_REC_BYTES 16                     /* per-record overhead in the log */
#define LOGROOM_PUNCH_STEP (4ULL * 1024 * 1024)
#define LOGROOM_WAKE_SIGNAL SIGUSR1

struct logroom;      /* one per process */
struct logroom_room; /* a room opened in this process */
struct proto_env;

/* One connection's membership; caller-owned storage (embed it in the connection). */
struct logroom_reader {
	struct logroom_room *room; /* NULL when not in a room */
	uint64_t off;              /* file offset of the next record to read */
	uint64_t self_id;          /* records with this sender id are not delivered to it */
	struct logroom_reader *prev, *next; /* the room's readers in this process */
	struct logroom *lr;        /* what logroom_env_join joins through; NULL: nothing */
};

/* Creates the private room directory (mode 0700) under /dev/shm, else $TMPDIR, else /tmp,
 * and writes its path into path[len]. Called by the parent before it forks. Without a
 * janitor: a SIGKILLed caller leaves the directory behind (prefer logroom_dir_start). */
int logroom_dir_create(char *path, size_t len);
/* Removes the directory and every room file in it. */
int logroom_dir_remove(const char *path);

/* The room directory of one server, with its janitor. */
struct logroom_dir {
	char path[512];
	int guard_fd;  /* write end of the janitor's pipe; -1 when none */
	pid_t janitor; /* removes the directory when the creator dies, however it dies */
};

/* logroom_dir_create, then forks the directory's janitor: a process that waits for EOF on a
 * pipe whose only writer is the caller and then removes the directory — so a SIGKILLed
 * server leaves no room files behind (they would hold memory in /dev/shm). The janitor
 * ignores SIGINT/SIGTERM/SIGHUP, keeps only the pipe and a descriptor of the directory (its
 * stdio goes to /dev/null), and is reaped by logroom_dir_stop. */
int logroom_dir_start(struct logroom_dir *d);
/* In a child the creator forked: closes the child's copy of the janitor's pipe. */
void logroom_dir_forked(struct logroom_dir *d);
/* Removes the directory, then ends and reaps the janitor. */
int logroom_dir_stop(struct logroom_dir *d);
/* Clears the slots of process `pid` in every room of the directory (a process that died
 * without leaving). Returns the number of slots cleared. */
int logroom_dir_scrub(const char *path, pid_t pid);

/* Per process: blocks LOGROOM_WAKE_SIGNAL (it stays blocked after logroom_close: a late
 * wake-up must not kill the process) and opens the signalfd. *out is owned by the caller
 * until logroom_close. max_rooms bounds the room files in dir (--max-rooms, counted across
 * every process of the server; 0 = no bound): a join that would create one more fails with
 * -ENOSPC. */
int logroom_open(struct logroom **out, const char *dir, size_t max_rooms);
/* Leaves every room (readers are detached), closes files; NULL is a no-op. */
void logroom_close(struct logroom *lr);
/* Readable (level) when some other process announced new records: poll it, then call
 * logroom_for_pending / logroom_arm. */
int logroom_wake_fd(const struct logroom *lr);

/* Puts rd in room[0..len) (leaving its current room first), reading from the current end:
 * a member gets what is published after it joined. On failure rd is in no room: -ENOSPC
 * when the room does not exist and max_rooms do (logroom_open), else -errno. */
int logroom_join(struct logroom *lr, struct logroom_reader *rd, const char *room, size_t len,
		 uint64_t self_id);
void logroom_leave(struct logroom_reader *rd); /* no-op when not in a room */

/* Appends one record from rd->self_id to rd's room and wakes the waiting processes of the
 * room. -ENOTCONN when rd is in no room, -EMSGSIZE over 1 GiB. */
int logroom_publish(struct logroom_reader *rd, const void *msg, size_t len);

/* The protocol's join and publish hooks (econn_env_init) for a connection whose
 * env->engine_ud is its reader rd: join is logroom_join(rd->lr, rd, ..., env->conn_id), or
 * -ENOTSUP when rd->lr is NULL (the process could not open its logroom: chat answers with
 * its error line); publish is logroom_publish, or 0 when rd is in no room (nobody to
 * deliver to). */
int logroom_env_join(struct proto_env *env, const char *room, size_t len);
int logroom_env_publish(struct proto_env *env, const char *msg, size_t len);

/* Appends to `out` the bytes of every committed record after rd->off not sent by
 * rd->self_id, in log order, and advances rd->off. Returns the bytes appended, or
 * -EOVERFLOW (nothing appended, rd->off unchanged) when the unread log plus what `out` still
 * holds exceeds max_lag_bytes (0 = no bound): the caller appends its overflow line and
 * closes the connection. Strict: a process that was not scheduled while others published
 * max_lag_bytes is dropped too (fork and prefork use logroom_read_upto instead). */
ssize_t logroom_read(struct logroom_reader *rd, struct buf *out, size_t max_lag_bytes);

/* Moves committed records after rd->off that rd->self_id did not send, in log order, into
 * `out` while it holds at most max_out_bytes (0 = no bound), and advances rd->off past them
 * (and past rd's own records); it stops before a record that does not fit. Returns the
 * bytes appended (0 when out is full: flush and call again), or -EOVERFLOW when the next
 * record for rd is larger than max_out_bytes on its own (it could never be delivered).
 * The engines' bound (fork, prefork): after a flush that left output queued (the socket is
 * full), a connection with logroom_lag_bytes + queued output over --max-outbuf is a slow
 * reader: overflow line, close. A process that merely was not scheduled while others
 * published finds its socket empty and catches up from the log instead of being dropped. */
ssize_t logroom_read_upto(struct logroom_reader *rd, struct buf *out, size_t max_out_bytes);
/* Bytes of the log after rd->off (its own records included). */
uint64_t logroom_lag_bytes(const struct logroom_reader *rd);
/* 1 when the room's committed end is beyond rd->off. */
int logroom_pending(const struct logroom_reader *rd);

/* Calls fn(rd, ud) for every reader of this process with pending records. fn may call
 * logroom_leave(rd) on the reader it was given, not on others. Returns the number of calls. */
int logroom_for_pending(struct logroom *lr, void (*fn)(struct logroom_reader *rd, void *ud),
			void *ud);

/* Before sleeping: drains the wake fd, marks this process waiting in each of its rooms and
 * re-checks. Returns 1 when a reader has pending records (run logroom_for_pending and arm
 * again instead of sleeping), 0 when it is safe to sleep on logroom_wake_fd. */
int logroom_arm(struct logroom *lr);

#endif
