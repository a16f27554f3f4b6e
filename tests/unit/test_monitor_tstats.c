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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_from_user_ignored),
		cmocka_unit_test(test_exit_events),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
