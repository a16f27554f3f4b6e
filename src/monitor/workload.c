#include "monitor/workload.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"

void workload_burn_user_ns(uint64_t ns)
{
	uint64_t end = clock_thread_cpu_ns() + ns;
	volatile uint64_t x = 1;
	/* the clock read is a syscall: check it rarely so that the burn stays in user mode */
	do {
		for (int i = 0; i < 200000; i++)
			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
	} while (clock_thread_cpu_ns() < end);
}

void workload_burn_sys_ns(uint64_t ns)
{
	static char buf[64 * 1024];
	int fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	uint64_t end = clock_thread_cpu_ns() + ns;
	do {
		for (int i = 0; i < 16; i++)
			if (read(fd, buf, sizeof buf) < 0)
				break;
	} while (clock_thread_cpu_ns() < end);
	close(fd);
}

static double tv_s(struct timeval tv) { return (double)tv.tv_sec + (double)tv.tv_usec / 1e6; }

/* Reads n bytes (written by one write(2) of at most PIPE_BUF), waiting at most timeout_ns
 * for the first byte (0: just look). 0, -ETIMEDOUT, -EPIPE or -errno. */
static int read_full(int fd, void *p, size_t n, uint64_t timeout_ns)
{
	uint64_t deadline = clock_now_ns() + timeout_ns;
	size_t got = 0;
	while (got < n) {
		uint64_t now = clock_now_ns();
		int ms = got ? 1000 : now >= deadline ? 0 : (int)((deadline - now + NS_PER_MS - 1) / NS_PER_MS);
		struct pollfd pfd = {fd, POLLIN, 0};
		int r = poll(&pfd, 1, ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0) {
			if (!got && clock_now_ns() >= deadline)
				return -ETIMEDOUT;
			continue;
		}
		ssize_t k = read(fd, (char *)p + got, n - got);
		if (k == 0)
			return -EPIPE;
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)k;
	}
	return 0;
}

static void burn_child(const struct workload_tree_opts *o, int i)
{
	if (o->stagger_ns)
		clock_sleep_ns((uint64_t)i * o->stagger_ns);
	if (i % 2 == 0)
		workload_burn_user_ns(o->user_ns);
	else
		workload_burn_sys_ns(o->sys_ns);
	for (int k = 0; k < o->sleeps; k++) {
		clock_sleep_ns(200 * NS_PER_US);
		workload_burn_user_ns(50 * NS_PER_US);
	}
}

static _Noreturn void tree_root(const struct workload_tree_opts *o, int go, int report)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	char c;
	if (read(go, &c, 1) != 1)
		_exit(1);
	pid_t *idle = calloc((size_t)(o->idle ? o->idle : 1), sizeof *idle);
	for (int i = 0; i < o->idle; i++) {
		idle[i] = fork();
		if (idle[i] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (!o->idle_tick_ns)
				for (;;)
					pause();
			/* ticks from a common start, spread over the tick so the
			 * wake-ups do not all land at once */
			uint64_t next = clock_now_ns() + o->idle_tick_ns * (uint64_t)i / o->idle;
			for (;;) {
				clock_sleep_until_ns(next, 0);
				uint64_t end = clock_thread_cpu_ns() + 20 * NS_PER_US;
				volatile uint64_t x = 1;
				do {
					for (int k = 0; k < 2000; k++)
						x = x * 6364136223846793005ULL + 1;
				} while (clock_thread_cpu_ns() < end);
				next += o->idle_tick_ns;
			}
		}
	}
	int started = 0, reaped = 0;
	for (int i = 0; i < o->children; i++) {
		while (o->par > 0 && started - reaped >= o->par && wait(NULL) > 0)
			reaped++; /* only burning children exit */
		pid_t pid = fork();
		if (pid == 0) {
			if (o->nested && i % 3 == 2) {
				pid_t g = fork();
				if (g == 0) {
					burn_child(o, i);
					_exit(0);
				}
				int st;
				waitpid(g, &st, 0);
			} else {
				burn_child(o, i);
			}
			_exit(0);
		}
		if (pid > 0)
			started++;
	}
	for (int i = reaped; i < started; i++) {
		int st;
		/* only the burning children: the idle ones are still alive */
		pid_t r = -1;
		for (;;) {
			r = wait(&st);
			int is_idle = 0;
			for (int k = 0; k < o->idle; k++)
				is_idle |= idle[k] == r;
			if (r < 0 || !is_idle)
				break;
		}
		if (r < 0)
			break;
	}
	struct rusage ch, self;
	getrusage(RUSAGE_CHILDREN, &ch);
	getrusage(RUSAGE_SELF, &self);
	struct workload_truth t = {tv_s(ch.ru_utime), tv_s(ch.ru_stime), tv_s(self.ru_utime),
				   tv_s(self.ru_stime), ch.ru_nvcsw, ch.ru_nivcsw,
				   self.ru_nvcsw, self.ru_nivcsw};
	if (write(report, &t, sizeof t) != (ssize_t)sizeof t)
		_exit(1);
	/* linger until the go pipe closes */
	while (read(go, &c, 1) > 0)
		;
	for (int i = 0; i < o->idle; i++)
		if (idle[i] > 0)
			kill(idle[i], SIGKILL);
	while (wait(NULL) > 0)
		;
	_exit(0);
}

int workload_tree_start(const struct workload_tree_opts *o, struct workload_tree *t)
{
	int go[2], rep[2];
	if (pipe2(go, O_CLOEXEC))
		return -errno;
	if (pipe2(rep, O_CLOEXEC)) {
		int e = errno;
		close(go[0]), close(go[1]);
		return -e;
	}
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(go[0]), close(go[1]), close(rep[0]), close(rep[1]);
		return -e;
	}
	if (pid == 0) {
		close(go[1]), close(rep[0]);
		tree_root(o, go[0], rep[1]);
	}
	close(go[0]), close(rep[1]);
	t->pid = pid, t->go_fd = go[1], t->report_fd = rep[0];
	return 0;
}

int workload_tree_go(struct workload_tree *t)
{
	return write(t->go_fd, "g", 1) == 1 ? 0 : -errno;
}

int workload_tree_truth(struct workload_tree *t, struct workload_truth *truth, uint64_t timeout_ns)
{
	return read_full(t->report_fd, truth, sizeof *truth, timeout_ns);
}

static int end_child(pid_t pid, int *fd1, int *fd2)
{
	if (*fd1 >= 0)
		close(*fd1), *fd1 = -1;
	if (*fd2 >= 0)
		close(*fd2), *fd2 = -1;
	int st;
	for (int i = 0; i < 500; i++) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid || (r < 0 && errno == ECHILD))
			return 0;
		clock_sleep_ns(10 * NS_PER_MS);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -ETIMEDOUT;
}

int workload_tree_end(struct workload_tree *t) { return end_child(t->pid, &t->go_fd, &t->report_fd); }

/* ---- ping-pong ------------------------------------------------------------------------- */

struct pp_arg {
	int in, out, cpu, first, done, hold;
	long rounds;
	long nvcsw, nivcsw;
};

static void *pp_thread(void *a_)
{
	struct pp_arg *a = a_;
	if (a->cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(a->cpu, &set);
		sched_setaffinity(0, sizeof set, &set);
	}
	struct rusage r0, r1;
	getrusage(RUSAGE_THREAD, &r0);
	char c = 'p';
	for (long i = 0; i < a->rounds; i++) {
		if (a->first && write(a->out, &c, 1) != 1)
			break;
		if (read(a->in, &c, 1) != 1)
			break;
		if (!a->first && write(a->out, &c, 1) != 1)
			break;
	}
	getrusage(RUSAGE_THREAD, &r1);
	a->nvcsw = r1.ru_nvcsw - r0.ru_nvcsw;
	a->nivcsw = r1.ru_nivcsw - r0.ru_nivcsw;
	/* stay alive (blocked) until the end, so the monitor sees the thread's counts */
	if (write(a->done, &c, 1) != 1)
		return NULL;
	while (read(a->hold, &c, 1) > 0)
		;
	return NULL;
}

static _Noreturn void pp_main(long rounds, int cpu0, int cpu1, int go, int report)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	int ab[2], ba[2], done[2], hold[2];
	if (pipe(ab) || pipe(ba) || pipe(done) || pipe(hold))
		_exit(1);
	char c;
	if (read(go, &c, 1) != 1)
		_exit(1);
	struct rusage m0, m1;
	getrusage(RUSAGE_THREAD, &m0);
	struct pp_arg a = {ba[0], ab[1], cpu0, 1, done[1], hold[0], rounds, 0, 0};
	struct pp_arg b = {ab[0], ba[1], cpu1, 0, done[1], hold[0], rounds, 0, 0};
	pthread_t ta, tb;
	pthread_create(&ta, NULL, pp_thread, &a);
	pthread_create(&tb, NULL, pp_thread, &b);
	/* the main thread only waits (one or two switches) */
	char d[2];
	if (read(done[0], d, 1) != 1 || read(done[0], d + 1, 1) != 1)
		_exit(1);
	getrusage(RUSAGE_THREAD, &m1);
	struct workload_pp_truth t = {{a.nvcsw, b.nvcsw}, {a.nivcsw, b.nivcsw},
				      m1.ru_nvcsw - m0.ru_nvcsw};
	if (write(report, &t, sizeof t) != (ssize_t)sizeof t)
		_exit(1);
	while (read(go, &c, 1) > 0)
		;
	close(hold[1]);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	_exit(0);
}

int workload_pingpong_start(long rounds, int cpu0, int cpu1, struct workload_pingpong *p)
{
	int go[2], rep[2];
	if (pipe2(go, O_CLOEXEC))
		return -errno;
	if (pipe2(rep, O_CLOEXEC)) {
		int e = errno;
		close(go[0]), close(go[1]);
		return -e;
	}
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(go[0]), close(go[1]), close(rep[0]), close(rep[1]);
		return -e;
	}
	if (pid == 0) {
		close(go[1]), close(rep[0]);
		pp_main(rounds, cpu0, cpu1, go[0], rep[1]);
	}
	close(go[0]), close(rep[1]);
	p->pid = pid, p->go_fd = go[1], p->report_fd = rep[0];
	return 0;
}

int workload_pingpong_go(struct workload_pingpong *p)
{
	return write(p->go_fd, "g", 1) == 1 ? 0 : -errno;
}

int workload_pingpong_truth(struct workload_pingpong *p, struct workload_pp_truth *t, uint64_t timeout_ns)
{
	return read_full(p->report_fd, t, sizeof *t, timeout_ns);
}

int workload_pingpong_end(struct workload_pingpong *p) { return end_child(p->pid, &p->go_fd, &p->report_fd); }
