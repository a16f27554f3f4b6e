/* logroom: the fork/prefork chat room. Forked writers append concurrently under flock; every
 * reader gets every other writer's records exactly once, in log order, through its own
 * wake-ups (a lost wake-up shows up as a timeout); the overflow bound; leave/scrub; holes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "engine/logroom.h"

#define WRITERS 4
#define PER_WRITER 400

struct msg {
	uint32_t sender;
	uint32_t seq;
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Parses "w<sender> <seq>\n" records from out into msgs; returns the count or -1. */
static int parse_msgs(struct buf *out, struct msg *msgs, int max, int have)
{
	char *p = buf_head(out), *end = p + buf_used(out);
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			break;
		unsigned s, q;
		if (sscanf(p, "w%u %u", &s, &q) != 2 || have >= max)
			return -1;
		msgs[have].sender = s;
		msgs[have].seq = q;
		have++;
		buf_consume(out, (size_t)(nl + 1 - p));
		p = nl + 1;
	}
	return have;
}

/* Drains every pending record of rd into msgs, sleeping on the wake fd (after arming) when
 * there is none, until `want` records arrived or 10 s passed. */
static int collect(struct logroom *lr, struct logroom_reader *rd, struct msg *msgs, int have,
		   int want, int block)
{
	struct buf out = BUF_INIT;
	uint64_t deadline = now_ms() + 10000;
	while (have < want) {
		ssize_t n = logroom_read(rd, &out, 0);
		if (n < 0)
			break;
		have = parse_msgs(&out, msgs, want, have);
		if (have < 0 || !block)
			break;
		if (have >= want)
			break;
		if (logroom_arm(lr))
			continue;
		uint64_t t = now_ms();
		if (t >= deadline)
			break;
		struct pollfd pfd = {.fd = logroom_wake_fd(lr), .events = POLLIN};
		poll(&pfd, 1, (int)(deadline - t));
	}
	buf_free(&out);
	return have;
}

static void wait_byte(int fd)
{
	char c;
	while (read(fd, &c, 1) < 0 && errno == EINTR)
		;
}

static void writer_child(const char *dir, int id, int ready_w, int go_r, const char *result)
{
	struct logroom *lr;
	if (logroom_open(&lr, dir, 0))
		_exit(10);
	struct logroom_reader rd = {0};
	if (logroom_join(lr, &rd, "lobby", 5, (uint64_t)id))
		_exit(11);
	if (write(ready_w, "r", 1) != 1)
		_exit(12);
	wait_byte(go_r);
	int want = (WRITERS - 1) * PER_WRITER;
	struct msg *msgs = calloc((size_t)want + 1, sizeof(*msgs));
	int have = 0;
	char line[64];
	for (int i = 0; i < PER_WRITER; i++) {
		int n = snprintf(line, sizeof(line), "w%d %d\n", id, i);
		if (logroom_publish(&rd, line, (size_t)n))
			_exit(13);
		if (i % 16 == 0) /* interleave reads with writes */
			have = collect(lr, &rd, msgs, have, want, 0);
		if (have < 0)
			_exit(14);
	}
	have = collect(lr, &rd, msgs, have, want, 1);
	if (have != want)
		_exit(15);
	int fd = open(result, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, msgs, sizeof(*msgs) * (size_t)have) != (ssize_t)(sizeof(*msgs) * (size_t)have))
		_exit(16);
	close(fd);
	logroom_close(lr);
	_exit(0);
}

static void test_concurrent_writers_exactly_once_in_order(void **state)
{
	(void)state;
	struct logroom_dir rdir;
	assert_int_equal(logroom_dir_start(&rdir), 0);
	const char *dir = rdir.path;
	int ready[2], go[2];
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	pid_t pids[WRITERS];
	char results[WRITERS][600];
	for (int i = 0; i < WRITERS; i++) {
		snprintf(results[i], sizeof(results[i]), "%s.res%d", dir, i);
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			logroom_dir_forked(&rdir);
			close(ready[0]);
			close(go[1]);
			writer_child(dir, i + 1, ready[1], go[0], results[i]);
		}
	}
	close(ready[1]);
	close(go[0]);
	for (int i = 0; i < WRITERS; i++)
		wait_byte(ready[0]);
	/* The parent is a pure reader that joined before the first record: the global order. */
	struct logroom *lr;
	assert_int_equal(logroom_open(&lr, dir, 0), 0);
	struct logroom_reader all = {0};
	assert_int_equal(logroom_join(lr, &all, "lobby", 5, 9999), 0);
	char go_bytes[WRITERS];
	memset(go_bytes, 'g', sizeof(go_bytes));
	assert_int_equal(write(go[1], go_bytes, sizeof(go_bytes)), WRITERS);
	int total = WRITERS * PER_WRITER;
	struct msg *global = calloc((size_t)total, sizeof(*global));
	int got = collect(lr, &all, global, 0, total, 1);
	assert_int_equal(got, total);
	for (int i = 0; i < WRITERS; i++) {
		int st;
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
	/* per sender: 0..PER_WRITER-1 in order in the global log */
	int next[WRITERS + 1] = {0};
	for (int i = 0; i < total; i++) {
		assert_true(global[i].sender >= 1 && global[i].sender <= WRITERS);
		assert_int_equal(global[i].seq, next[global[i].sender]);
		next[global[i].sender]++;
	}
	/* each writer: the global order minus its own records, exactly */
	int want = (WRITERS - 1) * PER_WRITER;
	struct msg *mine = calloc((size_t)want, sizeof(*mine));
	for (int w = 0; w < WRITERS; w++) {
		int fd = open(results[w], O_RDONLY);
		assert_true(fd >= 0);
		assert_int_equal(read(fd, mine, sizeof(*mine) * (size_t)want),
				 (ssize_t)(sizeof(*mine) * (size_t)want));
		close(fd);
		unlink(results[w]);
		int j = 0;
		for (int i = 0; i < total; i++) {
			if (global[i].sender == (uint32_t)(w + 1))
				continue;
			assert_int_equal(mine[j].sender, global[i].sender);
			assert_int_equal(mine[j].seq, global[i].seq);
			j++;
		}
		assert_int_equal(j, want);
	}
	free(mine);
	free(global);
	logroom_close(lr);
	close(ready[0]);
	close(go[1]);
	assert_int_equal(logroom_dir_stop(&rdir), 0);
	assert_int_equal(access(dir, F_OK), -1);
}

static void test_skip_own_and_join_position(void **state)
{
	(void)state;
	struct logroom_dir rdir;
	assert_int_equal(logroom_dir_start(&rdir), 0);
	const char *dir = rdir.path;
	struct logroom *lr;
	assert_int_equal(logroom_open(&lr, dir, 0), 0);
	struct logroom_reader a = {0}, b = {0}, c = {0};
	assert_int_equal(logroom_join(lr, &a, "r1", 2, 1), 0);
	assert_int_equal(logroom_join(lr, &b, "r1", 2, 2), 0);
	assert_int_equal(logroom_publish(&a, "from a\n", 7), 0);
	assert_int_equal(logroom_publish(&b, "from b\n", 7), 0);
	/* c joins after: sees nothing of the history */
	assert_int_equal(logroom_join(lr, &c, "r1", 2, 3), 0);
	assert_false(logroom_pending(&c));
	struct buf out = BUF_INIT;
	assert_int_equal(logroom_read(&a, &out, 0), 7);
	assert_memory_equal(buf_head(&out), "from b\n", 7);
	buf_clear(&out);
	assert_int_equal(logroom_read(&b, &out, 0), 7);
	assert_memory_equal(buf_head(&out), "from a\n", 7);
	buf_clear(&out);
	assert_int_equal(logroom_read(&c, &out, 0), 0);
	/* another room is separate */
	struct logroom_reader d = {0};
	assert_int_equal(logroom_join(lr, &d, "r2", 2, 4), 0);
	assert_int_equal(logroom_publish(&d, "in r2\n", 6), 0);
	assert_false(logroom_pending(&a));
	/* moving c to r2 */
	assert_int_equal(logroom_join(lr, &c, "r2", 2, 3), 0);
	assert_int_equal(logroom_publish(&d, "again\n", 6), 0);
	assert_int_equal(logroom_read(&c, &out, 0), 6);
	assert_memory_equal(buf_head(&out), "again\n", 6);
	logroom_leave(&a);
	assert_null(a.room);
	assert_int_equal(logroom_publish(&a, "x", 1), -ENOTCONN);
	buf_free(&out);
	logroom_close(lr);
	assert_null(b.room);
	assert_int_equal(logroom_dir_stop(&rdir), 0);
}

static void test_overflow_bound(void **state)
{
	(void)state;
	struct logroom_dir rdir;
	assert_int_equal(logroom_dir_start(&rdir), 0);
	struct logroom *lr;
	assert_int_equal(logroom_open(&lr, rdir.path, 0), 0);
	struct logroom_reader slow = {0}, pub = {0};
	assert_int_equal(logroom_join(lr, &slow, "lobby", 5, 1), 0);
	assert_int_equal(logroom_join(lr, &pub, "lobby", 5, 2), 0);
	char msg[100];
	memset(msg, 'x', sizeof(msg));
	const size_t bound = 4096;
	/* 100 records = 10000 bytes for slow: a reader that drains its output keeps up, however
	 * far behind the log end it is (it was not scheduled) */
	for (int i = 0; i < 100; i++)
		assert_int_equal(logroom_publish(&pub, msg, sizeof(msg)), 0);
	struct buf out = BUF_INIT;
	size_t total = 0;
	while (logroom_pending(&slow)) {
		ssize_t n = logroom_read_upto(&slow, &out, bound);
		assert_true(n > 0);
		assert_true(buf_used(&out) <= bound);
		total += (size_t)n;
		buf_clear(&out); /* the socket took it */
	}
	assert_int_equal(total, 10000);
	/* a reader whose output is not drained: filled to the bound, then -EOVERFLOW */
	for (int i = 0; i < 50; i++)
		assert_int_equal(logroom_publish(&pub, msg, sizeof(msg)), 0);
	assert_int_equal(logroom_read_upto(&slow, &out, bound), 4000); /* 40; the 41st waits */
	assert_int_equal(logroom_read_upto(&slow, &out, bound), 0);      /* full */
	assert_int_equal(buf_used(&out), 4000);
	for (size_t i = 0; i < buf_used(&out); i++)
		assert_int_equal(buf_head(&out)[i], 'x');
	/* what the engines check when the socket is full: behind by more than the bound */
	assert_int_equal(logroom_lag_bytes(&slow), 10 * 116);
	assert_true(logroom_lag_bytes(&slow) + buf_used(&out) > bound);
	/* the strict variant refuses the whole lag */
	assert_int_equal(logroom_read(&slow, &out, bound), -EOVERFLOW);
	assert_int_equal(buf_used(&out), 4000);
	/* the socket took 100 bytes: exactly one more record fits */
	buf_consume(&out, 100);
	assert_int_equal(logroom_read_upto(&slow, &out, bound), 100);
	assert_int_equal(logroom_read_upto(&slow, &out, bound), 0);
	buf_clear(&out);
	assert_int_equal(logroom_read_upto(&slow, &out, 900), 900);
	assert_int_equal(logroom_read(&slow, &out, 0), 0);
	assert_false(logroom_pending(&slow));
	/* our own records never count against us, even when they exceed the bound */
	static char big[8192];
	memset(big, 'b', sizeof(big));
	assert_int_equal(logroom_publish(&pub, msg, sizeof(msg)), 0);
	assert_int_equal(logroom_publish(&slow, big, sizeof(big)), 0); /* unread before it: kept */
	assert_int_equal(logroom_publish(&pub, msg, sizeof(msg)), 0);
	buf_clear(&out);
	assert_int_equal(logroom_read_upto(&slow, &out, 1100), 200);
	assert_false(logroom_pending(&slow));
	/* a single record over the bound can never be delivered */
	assert_int_equal(logroom_publish(&pub, big, sizeof(big)), 0);
	buf_clear(&out);
	assert_int_equal(logroom_read_upto(&slow, &out, 4096), -EOVERFLOW);
	buf_free(&out);
	logroom_close(lr);
	assert_int_equal(logroom_dir_stop(&rdir), 0);
}

static void test_janitor_removes_dir_when_creator_dies(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct logroom_dir d;
		struct logroom *lr;
		struct logroom_reader rd = {0};
		if (logroom_dir_start(&d) || logroom_open(&lr, d.path, 0) ||
		    logroom_join(lr, &rd, "lobby", 5, 1) || logroom_publish(&rd, "m\n", 2))
			_exit(1);
		if (write(p[1], d.path, strlen(d.path) + 1) < 0)
			_exit(2);
		raise(SIGKILL); /* no cleanup of its own */
		_exit(3);
	}
	close(p[1]);
	char path[600] = {0};
	assert_true(read(p[0], path, sizeof(path) - 1) > 0);
	close(p[0]);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	uint64_t deadline = now_ms() + 2000;
	while (access(path, F_OK) == 0 && now_ms() < deadline)
		usleep(10000);
	assert_int_equal(access(path, F_OK), -1);
}

static void test_scrub_dead_member(void **state)
{
	(void)state;
	struct logroom_dir rdir;
	assert_int_equal(logroom_dir_start(&rdir), 0);
	const char *dir = rdir.path;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		logroom_dir_forked(&rdir);
		struct logroom *lr;
		struct logroom_reader rd = {0};
		if (logroom_open(&lr, dir, 0) || logroom_join(lr, &rd, "lobby", 5, 7))
			_exit(1);
		raise(SIGKILL); /* dies without leaving */
		_exit(2);
	}
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
	assert_int_equal(si.si_code, CLD_KILLED);
	assert_int_equal(logroom_dir_scrub(dir, pid), 1);
	assert_int_equal(logroom_dir_scrub(dir, pid), 0);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_int_equal(logroom_dir_stop(&rdir), 0);
}

static void read_into(struct logroom_reader *rd, void *ud)
{
	assert_true(logroom_read(rd, ud, 0) >= 0);
}

static void test_punch_releases_read_log(void **state)
{
	(void)state;
	struct logroom_dir rdir;
	assert_int_equal(logroom_dir_start(&rdir), 0);
	const char *dir = rdir.path;
	struct logroom *lr;
	assert_int_equal(logroom_open(&lr, dir, 0), 0);
	struct logroom_reader rd = {0}, pub = {0};
	assert_int_equal(logroom_join(lr, &rd, "big", 3, 1), 0);
	assert_int_equal(logroom_join(lr, &pub, "big", 3, 2), 0);
	static char msg[16384 - LOGROOM_REC_BYTES];
	memset(msg, 'y', sizeof(msg));
	struct buf out = BUF_INIT;
	for (int i = 0; i < 640; i++) { /* 10 MiB of log, read as it goes */
		assert_int_equal(logroom_publish(&pub, msg, sizeof(msg)), 0);
		/* our own record is skipped at publish: only rd is pending */
		assert_int_equal(logroom_for_pending(lr, read_into, &out), 1);
		assert_int_equal(buf_used(&out), sizeof(msg));
		buf_clear(&out);
	}
	buf_free(&out);
	char path[600];
	snprintf(path, sizeof(path), "%s/r-626967", dir);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size > 10 * 1024 * 1024);
	if ((uint64_t)st.st_blocks * 512 >= 6ULL * 1024 * 1024) {
		logroom_close(lr);
		logroom_dir_stop(&rdir);
		skip(); /* the file system does not punch holes */
	}
	logroom_close(lr);
	assert_int_equal(logroom_dir_stop(&rdir), 0);
}

/* The room's file goes when its last member leaves: no log is kept in /dev/shm for nobody.
 * A room left by one of two members keeps its file. */
static void test_empty_room_file_removed(void **state)
{
	(void)state;
	struct logroom_dir rdir;
	assert_int_equal(logroom_dir_start(&rdir), 0);
	char path[600];
	snprintf(path, sizeof(path), "%s/r-7a", rdir.path);
	struct logroom *lr;
	assert_int_equal(logroom_open(&lr, rdir.path, 0), 0);
	struct logroom_reader a = {0}, b = {0};
	assert_int_equal(logroom_join(lr, &a, "z", 1, 1), 0);
	assert_int_equal(logroom_join(lr, &b, "z", 1, 2), 0);
	static char msg[65536];
	memset(msg, 'x', sizeof(msg));
	for (int i = 0; i < 16; i++) /* 1 MiB of log, below the punch step */
		assert_int_equal(logroom_publish(&a, msg, sizeof(msg)), 0);
	assert_int_equal(access(path, F_OK), 0);
	logroom_leave(&a);
	assert_int_equal(access(path, F_OK), 0); /* b is still in it */
	logroom_leave(&b);
	assert_int_equal(access(path, F_OK), -1);
	/* and the room works again from scratch */
	assert_int_equal(logroom_join(lr, &a, "z", 1, 1), 0);
	assert_int_equal(logroom_join(lr, &b, "z", 1, 2), 0);
	assert_int_equal(logroom_publish(&a, "hi", 2), 0);
	struct buf out = BUF_INIT;
	assert_int_equal(logroom_read(&b, &out, 0), 2);
	buf_free(&out);
	logroom_close(lr); /* close leaves too */
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(logroom_dir_stop(&rdir), 0);
}

/* A member killed in its room: the parent's scrub removes the then empty room's file. */
static void test_scrub_removes_empty_room(void **state)
{
	(void)state;
	struct logroom_dir rdir;
	assert_int_equal(logroom_dir_start(&rdir), 0);
	char path[600];
	snprintf(path, sizeof(path), "%s/r-6c6f626279", rdir.path);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		logroom_dir_forked(&rdir);
		struct logroom *lr;
		struct logroom_reader rd = {0};
		if (logroom_open(&lr, rdir.path, 0) || logroom_join(lr, &rd, "lobby", 5, 7))
			_exit(1);
		raise(SIGKILL);
		_exit(2);
	}
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
	assert_int_equal(si.si_code, CLD_KILLED);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(logroom_dir_scrub(rdir.path, pid), 1);
	assert_int_equal(access(path, F_OK), -1);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_int_equal(logroom_dir_stop(&rdir), 0);
}

/* max_rooms: a join that would create one room too many fails with -ENOSPC (the reader is
 * in no room); joining an existing room still works, and a freed room makes room. */
static void test_max_rooms(void **state)
{
	(void)state;
	struct logroom_dir rdir;
	assert_int_equal(logroom_dir_start(&rdir), 0);
	struct logroom *lr;
	assert_int_equal(logroom_open(&lr, rdir.path, 2), 0);
	struct logroom_reader a = {0}, b = {0}, c = {0};
	assert_int_equal(logroom_join(lr, &a, "lobby", 5, 1), 0);
	assert_int_equal(logroom_join(lr, &b, "one", 3, 2), 0);
	assert_int_equal(logroom_join(lr, &c, "two", 3, 3), -ENOSPC);
	assert_null(c.room);
	assert_int_equal(logroom_join(lr, &c, "one", 3, 3), 0);
	logroom_leave(&b);
	logroom_leave(&c); /* "one" is empty and gone */
	assert_int_equal(logroom_join(lr, &c, "two", 3, 3), 0);
	assert_int_equal(logroom_join(lr, &b, "three", 5, 2), -ENOSPC);
	logroom_close(lr);
	assert_int_equal(logroom_dir_stop(&rdir), 0);
}

/* max_rooms across processes: members of the server racing to create the same new room
 * are one room, not one each (the count is taken under the directory's lock, after a second
 * look for the file): with the cap just room for it, none of them is refused. */
#define RACERS 4
#define RACE_ROUNDS 150
static void test_max_rooms_same_room_race(void **state)
{
	(void)state;
	struct logroom_dir rdir;
	assert_int_equal(logroom_dir_start(&rdir), 0);
	struct logroom *lr;
	assert_int_equal(logroom_open(&lr, rdir.path, 2), 0);
	struct logroom_reader lobby = {0};
	assert_int_equal(logroom_join(lr, &lobby, "lobby", 5, 1), 0);
	int refused = 0;
	for (int round = 0; round < RACE_ROUNDS && !refused; round++) {
		int go[2], res[2], done[2];
		assert_int_equal(pipe(go), 0);
		assert_int_equal(pipe(res), 0);
		assert_int_equal(pipe(done), 0);
		char name[16];
		int len = snprintf(name, sizeof(name), "r%d", round);
		pid_t pids[RACERS];
		for (int i = 0; i < RACERS; i++) {
			pids[i] = fork();
			assert_true(pids[i] >= 0);
			if (pids[i] == 0) {
				logroom_dir_forked(&rdir);
				struct logroom *clr;
				struct logroom_reader rd = {0};
				if (logroom_open(&clr, rdir.path, 2))
					_exit(1);
				wait_byte(go[0]);
				char r = logroom_join(clr, &rd, name, (size_t)len, 10 + (uint64_t)i)
						 ? 'n' : 'y';
				if (write(res[1], &r, 1) != 1)
					_exit(2);
				wait_byte(done[0]); /* stay in the room until every racer joined */
				logroom_close(clr);
				_exit(0);
			}
		}
		char go_bytes[RACERS];
		memset(go_bytes, 'g', sizeof(go_bytes));
		assert_int_equal(write(go[1], go_bytes, RACERS), RACERS);
		for (int i = 0; i < RACERS; i++) {
			char r;
			assert_int_equal(read(res[0], &r, 1), 1);
			refused += r != 'y';
		}
		assert_int_equal(write(done[1], go_bytes, RACERS), RACERS);
		for (int i = 0; i < RACERS; i++) {
			int st;
			assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
			assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		}
		close(go[0]);
		close(go[1]);
		close(res[0]);
		close(res[1]);
		close(done[0]);
		close(done[1]);
	}
	assert_int_equal(refused, 0);
	logroom_close(lr);
	assert_int_equal(logroom_dir_stop(&rdir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_concurrent_writers_exactly_once_in_order),
		cmocka_unit_test(test_skip_own_and_join_position),
		cmocka_unit_test(test_overflow_bound),
		cmocka_unit_test(test_scrub_dead_member),
		cmocka_unit_test(test_janitor_removes_dir_when_creator_dies),
		cmocka_unit_test(test_punch_releases_read_log),
		cmocka_unit_test(test_empty_room_file_removed),
		cmocka_unit_test(test_scrub_removes_empty_room),
		cmocka_unit_test(test_max_rooms),
		cmocka_unit_test(test_max_rooms_same_room_race),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
