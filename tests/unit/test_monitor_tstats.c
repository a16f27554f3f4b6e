/* tstats: taskstats answers are taken from the kernel only (a message another process sends
 * to our netlink port with the right sequence number is ignored), and the exit listener
 * reports an exited child's final switch counts as its parent's getrusage(RUSAGE_CHILDREN)
 * sees them. Skips without root or taskstats. */
#include <errno.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/taskstats.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "monitor/tstats.h"

#define FORGED_VOL 987654321u

/* Sends to `port` (a netlink socket's port id) a TASKSTATS answer with sequence number seq
 * whose switch counts are FORGED_VOL, from an ordinary (user) netlink socket. */
static void send_forged(uint32_t port, uint16_t family, uint32_t seq, int type)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	assert_true(fd >= 0);
	struct sockaddr_nl me = {.nl_family = AF_NETLINK};
	assert_int_equal(bind(fd, (struct sockaddr *)&me, sizeof me), 0);
	struct {
		struct nlmsghdr n;
		struct genlmsghdr g;
		struct nlattr aggr;
		struct nlattr pid;
		uint32_t pidv;
		struct nlattr st;
		struct taskstats s;
	} __attribute__((packed, aligned(8))) m;
	memset(&m, 0, sizeof m);
	m.n.nlmsg_type = family;
	m.n.nlmsg_seq = seq;
	m.n.nlmsg_len = sizeof m;
	m.g.cmd = (uint8_t)type;
	m.g.version = 1;
	m.aggr.nla_type = TASKSTATS_TYPE_AGGR_PID;
	m.aggr.nla_len = (uint16_t)(sizeof m - offsetof(__typeof__(m), aggr));
	m.pid.nla_type = TASKSTATS_TYPE_PID;
	m.pid.nla_len = NLA_HDRLEN + 4;
	m.pidv = (uint32_t)getpid();
	m.st.nla_type = TASKSTATS_TYPE_STATS;
	m.st.nla_len = (uint16_t)(NLA_HDRLEN + sizeof m.s);
	m.s.version = TASKSTATS_VERSION;
	m.s.ac_pid = (uint32_t)getpid();
	m.s.ac_ppid = (uint32_t)getppid();
	m.s.nvcsw = m.s.nivcsw = FORGED_VOL;
	m.s.cpu_run_virtual_total = 1;
	struct sockaddr_nl to = {.nl_family = AF_NETLINK, .nl_pid = port};
	ssize_t w = sendto(fd, &m, sizeof m, 0, (struct sockaddr *)&to, sizeof to);
	close(fd);
	assert_int_equal(w, (ssize_t)sizeof m);
}

static uint32_t port_of(int fd)
{
	struct sockaddr_nl a;
	socklen_t l = sizeof a;
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
	return a.nl_pid;
}

static void test_reply_from_user_ignored(void **state)
{
	(void)state;
	struct tstats t;
	if (getuid() != 0 || tstats_open(&t)) {
		print_message("skip: taskstats not available (%s)\n",
			      getuid() ? "not root" : t.why);
		skip();
	}
	/* queued before the request: without the sender check it would be taken as the answer */
	send_forged(port_of(t.fd), t.family, t.seq + 1, TASKSTATS_CMD_NEW);
	struct tstats_fig f;
	assert_int_equal(tstats_get(&t, getpid(), 1, &f), 0);
	assert_true(f.vol != FORGED_VOL && f.invol != FORGED_VOL);
	assert_true(t.forged == 1);
	tstats_close(&t);
}

static void test_exit_events(void **state)
{
	(void)state;
	struct tstats t;
	if (getuid() != 0 || tstats_listen(&t)) {
		print_message("skip: taskstats exit events not available (%s)\n",
			      getuid() ? "not root" : t.why);
		skip();
	}
	/* a forged exit event first: ignored */
	send_forged(port_of(t.fd), t.family, 0, TASKSTATS_CMD_NEW);
	pid_t k = fork();
	assert_true(k >= 0);
	if (k == 0) {
		for (int i = 0; i < 50; i++) {
			struct timespec ts = {0, 200000};
			nanosleep(&ts, NULL);
		}
		_exit(0);
	}
	int st;
	assert_int_equal(waitpid(k, &st, 0), k);
	struct rusage ru;
	getrusage(RUSAGE_CHILDREN, &ru);
	struct tstats_exit ev[64];
	int n = tstats_exits(&t, ev, 64), found = 0;
	assert_true(n >= 1);
	for (int i = 0; i < n; i++) {
		assert_true(ev[i].vol != FORGED_VOL);
		if (ev[i].tid != k)
			continue;
		found++;
		assert_int_equal(ev[i].ppid, getpid());
		assert_true(ev[i].tgid == 0 || ev[i].tgid == k);
		/* the only child reaped so far: its final counts are RUSAGE_CHILDREN's, but for
		 * the switch out of the dead task, which comes after the event */
		assert_int_equal(ev[i].vol + 1, (uint64_t)ru.ru_nvcsw);
		assert_int_equal(ev[i].invol, (uint64_t)ru.ru_nivcsw);
		assert_true(ev[i].vol >= 50);
	}
	assert_int_equal(found, 1);
	assert_true(t.forged >= 1);
	tstats_close(&t);
}

/* K children blocked on a pipe (figures frozen) and one reaped pid: tstats_get_many's answers
 * are tstats_get's, each in its place (process and thread requests), a forged answer queued
 * before is ignored, and more than TSTATS_BATCH is refused. */
#define NKIDS 40
static void start_kids(pid_t *kids, int *pfd)
{
	assert_int_equal(pipe(pfd), 0);
	for (int i = 0; i < NKIDS; i++) {
		kids[i] = fork();
		assert_true(kids[i] >= 0);
		if (kids[i] == 0) {
			close(pfd[1]);
			/* a few switches of its own, distinct per child, then blocked */
			for (int j = 0; j < i % 5; j++) {
				struct timespec ts = {0, 100000};
				nanosleep(&ts, NULL);
			}
			char c;
			while (read(pfd[0], &c, 1) > 0)
				;
			_exit(0);
		}
	}
	close(pfd[0]);
}

/* Waits (up to 5 s) until no child's figures move between two reads 20 ms apart: all blocked
 * in read(2), so that a batch and single requests must see the same figures. */
static void wait_frozen(struct tstats *t, const pid_t *kids)
{
	struct tstats_fig a[NKIDS], b;
	for (int tries = 0; tries < 250; tries++) {
		for (int i = 0; i < NKIDS; i++)
			assert_int_equal(tstats_get(t, kids[i], 1, &a[i]), 0);
		struct timespec ts = {0, 20 * 1000000};
		nanosleep(&ts, NULL);
		int moved = 0;
		for (int i = 0; i < NKIDS; i++) {
			assert_int_equal(tstats_get(t, kids[i], 1, &b), 0);
			moved += b.run_ns != a[i].run_ns || b.vol != a[i].vol ||
				 b.invol != a[i].invol || b.wait_ns != a[i].wait_ns;
		}
		if (!moved)
			return;
	}
	fail_msg("children still running after 5 s");
}

static void end_kids(pid_t *kids, int *pfd)
{
	close(pfd[1]);
	for (int i = 0; i < NKIDS; i++)
		waitpid(kids[i], NULL, 0);
}

static void test_batch_matches_single(void **state)
{
	(void)state;
	struct tstats t;
	if (getuid() != 0 || tstats_open(&t)) {
		print_message("skip: taskstats not available (%s)\n",
			      getuid() ? "not root" : t.why);
		skip();
	}
	pid_t gone = fork();
	assert_true(gone >= 0);
	if (gone == 0)
		_exit(0);
	waitpid(gone, NULL, 0);
	pid_t kids[NKIDS];
	int pfd[2];
	start_kids(kids, pfd);
	wait_frozen(&t, kids);
	pid_t ids[NKIDS + 1];
	for (int i = 0; i < NKIDS; i++)
		ids[i] = kids[NKIDS - 1 - i]; /* not in creation order */
	ids[NKIDS] = gone;
	for (int tgid = 1; tgid >= 0; tgid--) {
		struct tstats_fig f[NKIDS + 1];
		int rc[NKIDS + 1];
		uint64_t forged0 = t.forged;
		send_forged(port_of(t.fd), t.family, t.seq + 3, TASKSTATS_CMD_NEW);
		assert_int_equal(tstats_get_many(&t, ids, NKIDS + 1, tgid, f, rc), 0);
		assert_int_equal(t.forged, forged0 + 1);
		assert_int_equal(rc[NKIDS], -ESRCH);
		for (int i = 0; i < NKIDS; i++) {
			struct tstats_fig one;
			assert_int_equal(rc[i], 0);
			assert_int_equal(tstats_get(&t, ids[i], tgid, &one), 0);
			assert_int_equal(f[i].vol, one.vol);
			assert_int_equal(f[i].invol, one.invol);
			assert_int_equal(f[i].run_ns, one.run_ns);
			assert_int_equal(f[i].wait_ns, one.wait_ns);
			assert_true(f[i].vol != FORGED_VOL && f[i].run_ns > 0);
		}
	}
	struct tstats_fig f[TSTATS_BATCH + 1];
	int rc[TSTATS_BATCH + 1];
	pid_t many[TSTATS_BATCH + 1];
	for (int i = 0; i <= TSTATS_BATCH; i++)
		many[i] = getpid();
	assert_int_equal(tstats_get_many(&t, many, TSTATS_BATCH + 1, 1, f, rc), -EINVAL);
	end_kids(kids, pfd);
	tstats_close(&t);
}

/* A socket buffer too small for the batch's answers: those that did not fit come back
 * -EAGAIN (never a wrong figure, never a hang), the others right; the next request works. */
static void test_batch_overflow(void **state)
{
	(void)state;
	struct tstats t;
	if (getuid() != 0 || tstats_open(&t)) {
		print_message("skip: taskstats not available (%s)\n",
			      getuid() ? "not root" : t.why);
		skip();
	}
	int sz = 4096; /* the kernel doubles it: room for a few answers */
	assert_int_equal(setsockopt(t.fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz), 0);
	pid_t ids[TSTATS_BATCH];
	for (int i = 0; i < TSTATS_BATCH; i++)
		ids[i] = getppid();
	struct tstats_fig f[TSTATS_BATCH], one;
	int rc[TSTATS_BATCH], ok = 0, lost = 0;
	assert_int_equal(tstats_get_many(&t, ids, TSTATS_BATCH, 1, f, rc), 0);
	for (int i = 0; i < TSTATS_BATCH; i++) {
		if (rc[i] == 0) {
			ok++;
			assert_true(f[i].run_ns > 0);
		} else {
			assert_int_equal(rc[i], -EAGAIN);
			lost++;
		}
	}
	assert_true(ok >= 1);
	assert_true(lost >= 1);
	assert_int_equal(tstats_get(&t, getppid(), 1, &one), 0);
	assert_true(one.run_ns >= f[0].run_ns);
	tstats_close(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_from_user_ignored),
		cmocka_unit_test(test_exit_events),
		cmocka_unit_test(test_batch_matches_single),
		cmocka_unit_test(test_batch_overflow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
