/* outfile: whole-file writes and appends that a planted link, device, FIFO, hard link or
 * temporary name cannot turn against another file (issue 9). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/outfile.h"

static char dir[64];

static int setup(void **state)
{
	snprintf(dir, sizeof dir, "/tmp/ctxlab-outfile-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *at(const char *name)
{
	static char p[4][256];
	static int i;
	i = (i + 1) % 4;
	snprintf(p[i], sizeof p[i], "%s/%s", dir, name);
	return p[i];
}

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static char *get(const char *path)
{
	static char b[4096];
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	size_t n = fread(b, 1, sizeof b - 1, f);
	fclose(f);
	b[n] = 0;
	return b;
}

static int entries(void)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

static int is_link(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
}

static void test_writes_whole_and_replaces(void **state)
{
	assert_int_equal(outfile_write(at("a.csv"), "one\n", 4, 0), 0);
	assert_string_equal(get(at("a.csv")), "one\n");
	assert_int_equal(outfile_write(at("a.csv"), "two\n", 4, 0), 0);
	assert_string_equal(get(at("a.csv")), "two\n");
	struct stat st;
	assert_int_equal(stat(at("a.csv"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	assert_int_equal(entries(), 1); /* no temporary left */
	/* an aborted write leaves the old file and no temporary */
	struct outfile o;
	assert_int_equal(outfile_open(&o, at("a.csv"), 0), 0);
	assert_int_equal(write(o.fd, "half", 4), 4);
	outfile_abort(&o);
	assert_string_equal(get(at("a.csv")), "two\n");
	assert_int_equal(entries(), 1);
	/* a directory that does not exist; a name that is a directory */
	assert_int_equal(outfile_write("/nonexistent-dir/x.json", "1", 1, 0), -ENOENT);
	assert_int_equal(outfile_write(dir, "1", 1, 0), -EISDIR);
}

static void test_symlink_at_name_refused(void **state)
{
	put(at("victim"), "precious\n");
	assert_int_equal(symlink(at("victim"), at("report.html")), 0);
	int r = outfile_write(at("report.html"), "evil\n", 5, 0);
	assert_int_equal(r, -ELOOP);
	assert_non_null(strstr(outfile_strerror(r), "symbolic link"));
	assert_string_equal(get(at("victim")), "precious\n");
	assert_true(is_link(at("report.html")));
	assert_int_equal(entries(), 2);
	/* a link to a device: refused too (trials.csv -> /dev/full) */
	assert_int_equal(symlink("/dev/full", at("trials.csv")), 0);
	assert_int_equal(outfile_write(at("trials.csv"), "x\n", 2, 0), -ELOOP);
	/* a path the user named: the link is replaced by the file, never written through */
	assert_int_equal(outfile_write(at("report.html"), "mine\n", 5, OUTFILE_NAMED), 0);
	assert_false(is_link(at("report.html")));
	assert_string_equal(get(at("report.html")), "mine\n");
	assert_string_equal(get(at("victim")), "precious\n");
}

static void test_planted_temporary_names(void **state)
{
	/* the names the old writer used (NAME.tmp.PID, NAME.tmp), planted as links */
	put(at("victim"), "precious\n");
	char tmp1[64];
	snprintf(tmp1, sizeof tmp1, "trials.csv.tmp.%d", (int)getpid());
	assert_int_equal(symlink(at("victim"), at(tmp1)), 0);
	assert_int_equal(symlink(at("victim"), at("trials.csv.tmp")), 0);
	assert_int_equal(outfile_write(at("trials.csv"), "a,b\n", 4, 0), 0);
	assert_string_equal(get(at("trials.csv")), "a,b\n");
	assert_string_equal(get(at("victim")), "precious\n");
	assert_true(is_link(at(tmp1)));
	struct stat st;
	assert_int_equal(lstat(at("trials.csv"), &st), 0);
	assert_true(S_ISREG(st.st_mode));
}

static void test_devices_and_fifos(void **state)
{
	/* a FIFO inside a results directory: refused, without blocking */
	assert_int_equal(mkfifo(at("fifo"), 0644), 0);
	int r = outfile_write(at("fifo"), "x", 1, 0);
	assert_int_equal(r, -EMEDIUMTYPE);
	assert_non_null(strstr(outfile_strerror(r), "not a regular file"));
	/* /dev/null named by the user: written in place, still a device */
	assert_int_equal(outfile_write("/dev/null", "{}", 2, OUTFILE_NAMED), 0);
	struct stat st;
	assert_int_equal(stat("/dev/null", &st), 0);
	assert_true(S_ISCHR(st.st_mode));
	/* a link to /dev/null named by the user: in place too */
	assert_int_equal(symlink("/dev/null", at("null")), 0);
	assert_int_equal(outfile_write(at("null"), "{}", 2, OUTFILE_NAMED), 0);
	assert_true(is_link(at("null")));
	/* /dev/fd/N named by the user: into that descriptor, even when it is a regular file
	 * (a shell's `> out.json`), and /dev/fd is not renamed over */
	int fd = open(at("redirected"), O_WRONLY | O_CREAT | O_APPEND, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "a", 1), 1);
	char devfd[32];
	snprintf(devfd, sizeof devfd, "/dev/fd/%d", fd);
	assert_int_equal(outfile_write(devfd, "{}", 2, OUTFILE_NAMED), 0);
	close(fd);
	assert_string_equal(get(at("redirected")), "a{}");
	assert_int_equal(lstat("/dev/fd", &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	/* /dev/null not named by the user (a file of a results directory in /dev): refused */
	assert_int_equal(outfile_write("/dev/null", "{}", 2, 0), -EMEDIUMTYPE);
}

static void test_append(void **state)
{
	int fd = outfile_open_append(at("trials.jsonl"), 0);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "1\n", 2), 2);
	close(fd);
	fd = outfile_open_append(at("trials.jsonl"), 1);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "2\n", 2), 2);
	close(fd);
	assert_string_equal(get(at("trials.jsonl")), "1\n2\n");

	put(at("victim"), "precious\n");
	assert_int_equal(symlink(at("victim"), at("run.log")), 0);
	assert_int_equal(outfile_open_append(at("run.log"), 1), -ELOOP);
	assert_int_equal(symlink("/dev/full", at("full.log")), 0);
	assert_int_equal(outfile_open_append(at("full.log"), 0), -ELOOP);
	assert_int_equal(mkfifo(at("fifo.log"), 0644), 0);
	assert_int_equal(outfile_open_append(at("fifo.log"), 0), -EMEDIUMTYPE); /* no hang */
	assert_int_equal(link(at("victim"), at("hard.log")), 0);
	assert_int_equal(outfile_open_append(at("hard.log"), 0), -EMEDIUMTYPE);
	assert_string_equal(get(at("victim")), "precious\n");
}

static void test_mkdirs_under(void **state)
{
	assert_int_equal(outfile_mkdirs_under(dir, "flame/http-epoll-c1"), 0);
	struct stat st;
	assert_int_equal(stat(at("flame/http-epoll-c1"), &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(outfile_mkdirs_under(dir, "flame/http-epoll-c1"), 0); /* exists: fine */
	/* a planted link on the way: refused, nothing made through it */
	assert_int_equal(mkdir(at("elsewhere"), 0755), 0);
	assert_int_equal(symlink(at("elsewhere"), at("flame2")), 0);
	assert_int_equal(outfile_mkdirs_under(dir, "flame2/x"), -ELOOP);
	assert_int_equal(stat(at("elsewhere/x"), &st), -1);
	assert_int_equal(outfile_mkdirs_under(dir, "../x"), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_writes_whole_and_replaces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_at_name_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_planted_temporary_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_devices_and_fifos, setup, teardown),
		cmocka_unit_test_setup_teardown(test_append, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mkdirs_under, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
