/* spawn: child programs under a keeper process, so that no descendant outlives ctxlab.
 *
 * ctxlab ── keeper ── program ── ...
 *
 * The keeper is a fork of ctxlab that never execs, so it only uses async-signal-safe calls
 * (ctxlab may have threads): raw open/read/getdents64 on /proc, kill, waitpid, sigwaitinfo.
 * It blocks every signal and waits with sigwaitinfo for SIGCHLD (reaps; when the program is
 * reaped it kills and reaps the rest of its tree and exits with the program's status) or for
 * SIGTERM/SIGINT/SIGHUP/SIGQUIT (its parent-death signal is SIGTERM, and spawn_stop and the
 * guard send it too): it then SIGKILLs the whole tree, reaps it and exits with the program's
 * status. The keeper reports the program's pid, and the program any error before execvp,
 * through a CLOEXEC status pipe; ctxlab reads it until EOF (= exec succeeded).
 *
 * Exit status mirroring: a program killed by signal S makes the keeper kill itself with S
 * (core dumps off), so waitpid on the keeper reads like waitpid on the program.
 *
 * Finding the tree: /proc/<pid>/task/<tid>/children when the kernel has it
 * (CONFIG_PROC_CHILDREN), else one scan of /proc/<pid>/stat ppids, sorted, walked breadth-first.
 */
#include "core/spawn.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"

extern char **environ;

#define GUARD_MAX 256          /* keepers the signal guard can track */
#define KEEPER_PIDS 8192       /* tree size the keeper handles per pass */
#define KEEPER_PAIRS 32768     /* processes on the host the /proc scan handles */
#define GUARD_WAIT_NS (2 * NS_PER_S)

/* ---- async-signal-safe /proc helpers ------------------------------------------------- */

struct pp {
	pid_t pid;
	pid_t ppid;
};

struct dirent64_raw {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

static char *put_str(char *p, const char *s)
{
	while (*s)
		*p++ = *s++;
	return p;
}

static char *put_uint(char *p, unsigned long v)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

/* "123" -> 123; anything else -> -1 */
static long parse_uint(const char *s)
{
	long v = 0;
	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > 100000000)
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v;
}

static ssize_t read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t got = 0;
	while (got + 1 < len) {
		ssize_t n = read(fd, buf + got, len - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = 0;
	return (ssize_t)got;
}

/* Calls fn(name, arg) for each numeric entry of a /proc directory. */
static int for_each_num(const char *dir, void (*fn)(long num, void *arg), void *arg)
{
	char buf[4096] __attribute__((aligned(8)));
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		long n = syscall(SYS_getdents64, fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		for (long off = 0; off < n;) {
			struct dirent64_raw *d = (struct dirent64_raw *)(buf + off);
			long v = parse_uint(d->d_name);
			if (v > 0)
				fn(v, arg);
			off += d->d_reclen;
		}
	}
	close(fd);
	return 0;
}

static pid_t stat_ppid(pid_t pid)
{
	char path[48], buf[512], *p = path;
	p = put_str(p, "/proc/");
	p = put_uint(p, (unsigned long)pid);
	p = put_str(p, "/stat");
	*p = 0;
	if (read_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	char *rp = NULL;
	for (char *q = buf; *q; q++)
		if (*q == ')')
			rp = q;
	/* ") S PPID ..." */
	if (!rp || !rp[1] || !rp[2] || !rp[3] || !rp[4])
		return -1;
	long v = 0;
	for (p = rp + 4; *p >= '0' && *p <= '9'; p++)
		v = v * 10 + (*p - '0');
	return (pid_t)v;
}

struct scan {
	struct pp *pairs;
	int n, cap;
};

static void scan_one(long pid, void *arg)
{
	struct scan *s = arg;
	if (s->n >= s->cap)
		return;
	pid_t ppid = stat_ppid((pid_t)pid);
	if (ppid <= 0)
		return;
	s->pairs[s->n].pid = (pid_t)pid;
	s->pairs[s->n].ppid = ppid;
	s->n++;
}

static void sort_pairs(struct pp *a, int n) /* shell sort by ppid: no malloc */
{
	static const int gaps[] = {701, 301, 132, 57, 23, 10, 4, 1};
	for (unsigned g = 0; g < sizeof(gaps) / sizeof(gaps[0]); g++) {
		int gap = gaps[g];
		for (int i = gap; i < n; i++) {
			struct pp t = a[i];
			int j = i;
			for (; j >= gap && a[j - gap].ppid > t.ppid; j -= gap)
				a[j] = a[j - gap];
			a[j] = t;
		}
	}
}

struct children_ctx {
	pid_t *out;
	int n, cap;
	pid_t pid;
	int total;
};

static void add_pid(struct children_ctx *c, pid_t p)
{
	for (int i = 0; i < c->n; i++) /* guard against loops from racing reparenting */
		if (c->out[i] == p)
			return;
	if (c->n < c->cap)
		c->out[c->n++] = p;
	c->total++;
}

static void task_children(long tid, void *arg)
{
	struct children_ctx *c = arg;
	char path[80], buf[4096], *p = path;
	p = put_str(p, "/proc/");
	p = put_uint(p, (unsigned long)c->pid);
	p = put_str(p, "/task/");
	p = put_uint(p, (unsigned long)tid);
	p = put_str(p, "/children");
	*p = 0;
	if (read_file(path, buf, sizeof(buf)) <= 0)
		return;
	long v = -1;
	for (char *q = buf;; q++) {
		if (*q >= '0' && *q <= '9') {
			v = (v < 0 ? 0 : v * 10) + (*q - '0');
		} else {
			if (v > 0)
				add_pid(c, (pid_t)v);
			v = -1;
			if (!*q)
				break;
		}
	}
}

static int have_children_file(void)
{
	static int have = -1; /* benign race: every thread computes the same */
	if (have < 0) {
		char path[64], *p = path;
		p = put_str(p, "/proc/");
		p = put_uint(p, (unsigned long)getpid());
		p = put_str(p, "/task/");
		p = put_uint(p, (unsigned long)getpid());
		p = put_str(p, "/children");
		*p = 0;
		have = access(path, R_OK) == 0;
	}
	return have;
}

/* Descendants of root (not root) into out[cap], breadth-first. Returns how many were found
 * (more than cap: only cap were written and explored). Async-signal-safe. */
static int collect(pid_t root, pid_t *out, int cap, struct pp *pairs, int pcap)
{
	struct children_ctx c = {.out = out, .cap = cap};
	if (have_children_file()) {
		pid_t cur = root;
		for (int i = -1; i < c.n; i++) {
			char dir[48], *p = dir;
			cur = i < 0 ? root : c.out[i];
			p = put_str(p, "/proc/");
			p = put_uint(p, (unsigned long)cur);
			p = put_str(p, "/task");
			*p = 0;
			c.pid = cur;
			for_each_num(dir, task_children, &c);
		}
		return c.total;
	}
	struct scan s = {.pairs = pairs, .cap = pcap};
	for_each_num("/proc", scan_one, &s);
	sort_pairs(pairs, s.n);
	for (int i = -1; i < c.n; i++) {
		pid_t cur = i < 0 ? root : c.out[i];
		int lo = 0, hi = s.n; /* first pair with ppid >= cur */
		while (lo < hi) {
			int mid = lo + (hi - lo) / 2;
			if (pairs[mid].ppid < cur)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (; lo < s.n && pairs[lo].ppid == cur; lo++)
			if (pairs[lo].pid != root)
				add_pid(&c, pairs[lo].pid);
	}
	return c.total;
}

/* ---- the signal guard ---------------------------------------------------------------- */

static pid_t guard_pids[GUARD_MAX];
static int guard_on;

static void guard_add(pid_t k)
{
	for (int i = 0; i < GUARD_MAX; i++) {
		pid_t zero = 0;
		if (__atomic_compare_exchange_n(&guard_pids[i], &zero, k, 0, __ATOMIC_SEQ_CST,
						__ATOMIC_SEQ_CST))
			return;
	}
	/* table full: this tree still dies with ctxlab through the keeper's parent-death signal */
}

static void guard_del(pid_t k)
{
	for (int i = 0; i < GUARD_MAX; i++) {
		pid_t want = k;
		if (__atomic_compare_exchange_n(&guard_pids[i], &want, 0, 0, __ATOMIC_SEQ_CST,
						__ATOMIC_SEQ_CST))
			return;
	}
}

static void guard_handler(int sig)
{
	int saved_errno = errno;
	for (int i = 0; i < GUARD_MAX; i++) {
		pid_t k = __atomic_load_n(&guard_pids[i], __ATOMIC_SEQ_CST);
		if (k > 0)
			kill(k, SIGTERM); /* the keeper SIGKILLs its whole tree, reaps it and exits */
	}
	/* Wait (bounded) for the keepers, so nothing is left when the shell prompt returns. */
	struct timespec ts = {0, 2 * 1000 * 1000};
	for (uint64_t waited = 0; waited < GUARD_WAIT_NS; waited += 2 * NS_PER_MS) {
		int alive = 0;
		for (int i = 0; i < GUARD_MAX; i++) {
			pid_t k = __atomic_load_n(&guard_pids[i], __ATOMIC_SEQ_CST);
			if (k <= 0)
				continue;
			pid_t r = waitpid(k, NULL, WNOHANG);
			if (r == k || (r < 0 && errno == ECHILD))
				__atomic_store_n(&guard_pids[i], 0, __ATOMIC_SEQ_CST);
			else
				alive++;
		}
		if (!alive)
			break;
		nanosleep(&ts, NULL);
	}
	for (int i = 0; i < GUARD_MAX; i++) {
		pid_t k = __atomic_load_n(&guard_pids[i], __ATOMIC_SEQ_CST);
		if (k > 0) {
			kill(-k, SIGKILL);
			kill(k, SIGKILL);
		}
	}
	struct sigaction sa = {.sa_handler = SIG_DFL};
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, sig);
	sigprocmask(SIG_UNBLOCK, &s, NULL);
	raise(sig);
	errno = saved_errno;
}

void spawn_guard_init(void)
{
	int expected = 0;
	if (!__atomic_compare_exchange_n(&guard_on, &expected, 1, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		return;
	struct sigaction sa = {.sa_handler = guard_handler};
	sigfillset(&sa.sa_mask); /* one guard run at a time */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/* ---- keeper and program ---------------------------------------------------------------- */

enum { MSG_PID = 1, MSG_ERR = 2, MSG_HELD = 3 };

struct msg {
	int kind;
	int val;
};

struct prep {
	const struct spawn_opts *o;
	char *const *envp; /* NULL: environ */
	char netns_path[300];
	int out_wr;        /* stdout pipe write end or -1 */
	int in_rd;         /* stdin pipe read end or -1 */
	int st_wr;         /* status pipe write end */
	int go_rd, go_wr;  /* hold: the program waits for EOF on go_rd before execvp; else -1 */
	pid_t parent;
};

static void send_msg(int fd, int kind, int val)
{
	struct msg m = {kind, val};
	ssize_t r;
	do
		r = write(fd, &m, sizeof(m));
	while (r < 0 && errno == EINTR);
}

/* dup2 that also works when from == to (clears close-on-exec). */
static int move_fd(int from, int to)
{
	if (from == to)
		return fcntl(to, F_SETFD, 0);
	return dup2(from, to) < 0 ? -1 : 0;
}

static _Noreturn void program_fail(const struct prep *p)
{
	send_msg(p->st_wr, MSG_ERR, errno ? errno : EINVAL);
	_exit(127);
}

static _Noreturn void program_main(const struct prep *p, pid_t keeper)
{
	const struct spawn_opts *o = p->o;
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		program_fail(p);
	if (getppid() != keeper)
		_exit(127);
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigemptyset(&dfl.sa_mask);
	sigaction(SIGPIPE, &dfl, NULL); /* the keeper ignores it; the program gets the default */
	if (p->netns_path[0]) {
		int nfd = open(p->netns_path, O_RDONLY | O_CLOEXEC);
		if (nfd < 0 || setns(nfd, CLONE_NEWNET) < 0)
			program_fail(p);
		close(nfd);
	}
	if (o->cwd && chdir(o->cwd) < 0)
		program_fail(p);
	if (o->cpus && sched_setaffinity(0, sizeof(cpu_set_t), o->cpus) < 0)
		program_fail(p);
	if (o->stderr_fd >= 0 && move_fd(o->stderr_fd, 2) < 0)
		program_fail(p);
	if (o->stdin_null) {
		int nfd = open("/dev/null", O_RDONLY);
		if (nfd < 0 || move_fd(nfd, 0) < 0)
			program_fail(p);
		if (nfd != 0)
			close(nfd);
	}
	if (p->in_rd >= 0 && move_fd(p->in_rd, 0) < 0)
		program_fail(p);
	if (p->out_wr >= 0 && move_fd(p->out_wr, 1) < 0)
		program_fail(p);
	/* Nothing of ctxlab's leaks into the program: every other fd closes at exec. */
	syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */);
	if (p->go_rd >= 0) {
		/* held: everything is ready; exec when ctxlab closes its end (spawn_release) */
		close(p->go_wr);
		send_msg(p->st_wr, MSG_HELD, 0);
		char c;
		ssize_t n;
		do
			n = read(p->go_rd, &c, 1);
		while (n < 0 && errno == EINTR);
		if (n != 0)
			_exit(127); /* nothing is ever written: ctxlab went away some other way */
		close(p->go_rd);
	}
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (p->envp)
		execvpe(o->argv[0], (char *const *)o->argv, p->envp);
	else
		execvp(o->argv[0], (char *const *)o->argv);
	program_fail(p);
}

static pid_t k_out[KEEPER_PIDS];
static struct pp k_pairs[KEEPER_PAIRS];

/* Records the program's status when `r` is the program. */
static void keeper_note(pid_t r, int st, pid_t prog, int *prog_st, int *have)
{
	if (r == prog && (WIFEXITED(st) || WIFSIGNALED(st))) {
		*prog_st = st;
		*have = 1;
	}
}

/* SIGKILLs every descendant and reaps until the keeper has no children left (no child
 * means no descendant: orphans are reparented to the keeper). A listing can miss a process
 * being reparented at that instant, so the wait for SIGCHLD is bounded and the tree listed
 * again. */
static void keeper_kill_all(pid_t prog, int *prog_st, int *have)
{
	pid_t self = getpid();
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	for (;;) {
		int n = collect(self, k_out, KEEPER_PIDS, k_pairs, KEEPER_PAIRS);
		if (n > KEEPER_PIDS)
			n = KEEPER_PIDS;
		for (int i = 0; i < n; i++)
			kill(k_out[i], SIGKILL);
		int st;
		pid_t r;
		while ((r = waitpid(-1, &st, WNOHANG)) > 0)
			keeper_note(r, st, prog, prog_st, have);
		if (r < 0 && errno == ECHILD)
			break;
		struct timespec ts = {0, 50 * 1000 * 1000};
		sigtimedwait(&chld, NULL, &ts);
	}
}

static _Noreturn void keeper_exit(int st)
{
	if (WIFEXITED(st))
		_exit(WEXITSTATUS(st));
	int sig = WTERMSIG(st);
	struct rlimit nocore = {0, 0};
	setrlimit(RLIMIT_CORE, &nocore);
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigemptyset(&dfl.sa_mask);
	sigaction(sig, &dfl, NULL);
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, sig);
	sigprocmask(SIG_UNBLOCK, &s, NULL);
	kill(getpid(), sig);
	_exit(128 + sig);
}

static _Noreturn void keeper_main(const struct prep *p)
{
	/* Signals are all blocked (inherited from spawn_start). Dispositions back to default
	 * (ctxlab's handlers must not run here), SIGPIPE ignored. */
	struct sigaction sa = {.sa_handler = SIG_DFL};
	sigemptyset(&sa.sa_mask);
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			sigaction(s, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	setpgid(0, 0);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0 || prctl(PR_SET_PDEATHSIG, SIGTERM) < 0) {
		send_msg(p->st_wr, MSG_ERR, errno);
		_exit(127);
	}
	if (getppid() != p->parent)
		_exit(127); /* ctxlab died before the parent-death signal was armed */

	pid_t self = getpid();
	pid_t prog = fork();
	if (prog < 0) {
		send_msg(p->st_wr, MSG_ERR, errno);
		_exit(127);
	}
	if (prog == 0)
		program_main(p, self);
	send_msg(p->st_wr, MSG_PID, prog);
	/* Hold none of ctxlab's fds (listening sockets, pipes): close everything. */
	if (syscall(SYS_close_range, 0U, ~0U, 0U) < 0)
		for (int fd = 0; fd < 1024; fd++)
			close(fd);

	sigset_t wait_set;
	sigemptyset(&wait_set);
	sigaddset(&wait_set, SIGCHLD);
	sigaddset(&wait_set, SIGTERM);
	sigaddset(&wait_set, SIGINT);
	sigaddset(&wait_set, SIGHUP);
	sigaddset(&wait_set, SIGQUIT);
	int prog_st = 0, have = 0;
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&wait_set, &si);
		if (sig < 0)
			continue;
		if (sig != SIGCHLD)
			break;
		int st;
		pid_t r;
		while ((r = waitpid(-1, &st, WNOHANG)) > 0)
			keeper_note(r, st, prog, &prog_st, &have);
		if (have || (r < 0 && errno == ECHILD))
			break;
	}
	keeper_kill_all(prog, &prog_st, &have);
	keeper_exit(have ? prog_st : (W_EXITCODE(127, 0)));
}

/* Environment with the extra "K=V" entries replacing or adding to environ. */
static char **build_env(const char *const *extra)
{
	size_t n = 0, m = 0;
	while (environ && environ[n])
		n++;
	while (extra[m])
		m++;
	char **e = calloc(n + m + 1, sizeof(*e));
	if (!e)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(environ[i], '=');
		size_t kl = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
		int replaced = 0;
		for (size_t j = 0; j < m && !replaced; j++)
			replaced = !strncmp(extra[j], environ[i], kl) && extra[j][kl] == '=';
		if (!replaced)
			e[k++] = environ[i];
	}
	for (size_t j = 0; j < m; j++)
		e[k++] = (char *)extra[j];
	e[k] = NULL;
	return e;
}

int spawn_start(const struct spawn_opts *opts, struct spawn_child *child)
{
	struct prep p = {.o = opts, .out_wr = -1, .in_rd = -1, .st_wr = -1, .go_rd = -1,
			 .go_wr = -1};
	int out[2] = {-1, -1}, st[2] = {-1, -1}, go[2] = {-1, -1}, in[2] = {-1, -1};
	char **envp = NULL;
	int r = 0;

	child->pid = child->keeper = -1;
	child->stdout_fd = -1;
	child->stdin_fd = -1;
	child->go_fd = child->st_fd = -1;
	child->exited = 0;
	child->status = 0;
	if (!opts->argv || !opts->argv[0] || !opts->argv[0][0])
		return -EINVAL;
	if (opts->netns) {
		if (!opts->netns[0] || strchr(opts->netns, '/') || !strcmp(opts->netns, ".") ||
		    !strcmp(opts->netns, ".."))
			return -EINVAL;
		int n = snprintf(p.netns_path, sizeof(p.netns_path), "/run/netns/%s", opts->netns);
		if (n < 0 || (size_t)n >= sizeof(p.netns_path))
			return -ENAMETOOLONG;
		if (access(p.netns_path, R_OK) < 0)
			return -errno;
	}
	if (opts->env && opts->env[0]) {
		envp = build_env(opts->env);
		if (!envp)
			return -ENOMEM;
		p.envp = envp;
	}
	if (opts->capture_stdout && pipe2(out, O_CLOEXEC) < 0) {
		r = -errno;
		goto out;
	}
	if (pipe2(st, O_CLOEXEC) < 0) {
		r = -errno;
		goto out;
	}
	if (opts->stdin_pipe && pipe2(in, O_CLOEXEC) < 0) {
		r = -errno;
		goto out;
	}
	p.in_rd = in[0];
	if (opts->hold && pipe2(go, O_CLOEXEC) < 0) {
		r = -errno;
		goto out;
	}
	p.go_rd = go[0], p.go_wr = go[1];
	p.out_wr = out[1];
	p.st_wr = st[1];
	p.parent = getpid();

	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid_t k = fork();
	if (k == 0)
		keeper_main(&p);
	if (k < 0) {
		r = -errno;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		goto out;
	}
	setpgid(k, k); /* also done by the keeper: whichever runs first */
	guard_add(k);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(st[1]);
	st[1] = -1;
	if (out[1] >= 0) {
		close(out[1]);
		out[1] = -1;
	}
	if (go[0] >= 0) {
		close(go[0]);
		go[0] = -1;
	}
	if (in[0] >= 0) {
		close(in[0]);
		in[0] = -1;
	}

	/* Read until EOF: the keeper closes its end after sending the pid, the program's end
	 * closes at exec (or an error comes first). Held: until the program says it waits. */
	pid_t prog = -1;
	int err = 0, held = 0;
	while (!(held && prog > 0)) {
		struct msg m;
		ssize_t n = read(st[0], &m, sizeof(m));
		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(m))
			break;
		if (m.kind == MSG_PID)
			prog = m.val;
		else if (m.kind == MSG_ERR && !err)
			err = m.val > 0 ? m.val : EINVAL;
		else if (m.kind == MSG_HELD)
			held = 1;
	}
	child->keeper = k;
	if (err || prog <= 0) {
		int ws;
		while (waitpid(k, &ws, 0) < 0 && errno == EINTR)
			;
		guard_del(k);
		child->keeper = -1;
		r = err ? -err : -ECHILD;
		goto out;
	}
	child->pid = prog;
	child->stdout_fd = out[0];
	out[0] = -1;
	child->stdin_fd = in[1];
	in[1] = -1;
	if (opts->hold) {
		child->go_fd = go[1], go[1] = -1;
		child->st_fd = st[0], st[0] = -1;
	}
out:
	for (int i = 0; i < 2; i++) {
		if (go[i] >= 0)
			close(go[i]);
		if (out[i] >= 0)
			close(out[i]);
		if (st[i] >= 0)
			close(st[i]);
		if (in[i] >= 0)
			close(in[i]);
	}
	free(envp);
	return r;
}

int spawn_release(struct spawn_child *child)
{
	if (child->go_fd < 0)
		return -EINVAL;
	close(child->go_fd);
	child->go_fd = -1;
	int err = 0;
	for (;;) {
		struct msg m;
		ssize_t n = read(child->st_fd, &m, sizeof(m));
		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(m))
			break;
		if (m.kind == MSG_ERR && !err)
			err = m.val > 0 ? m.val : EINVAL;
	}
	close(child->st_fd);
	child->st_fd = -1;
	return -err;
}

/* ---- reading lines ------------------------------------------------------------------- */

/* A line cut by a timeout is kept here and handed back by the next call on the same fd. */
#define CARRY_SLOTS 16
#define CARRY_BYTES 1024

struct carry {
	int fd;
	int used;
	size_t len;
	char buf[CARRY_BYTES];
};

static struct carry carries[CARRY_SLOTS];
static pthread_mutex_t carry_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t carry_take(int fd, char *buf, size_t cap)
{
	size_t n = 0;
	pthread_mutex_lock(&carry_lock);
	for (int i = 0; i < CARRY_SLOTS; i++) {
		if (carries[i].used && carries[i].fd == fd) {
			n = carries[i].len < cap ? carries[i].len : cap;
			memcpy(buf, carries[i].buf, n);
			carries[i].used = 0;
			break;
		}
	}
	pthread_mutex_unlock(&carry_lock);
	return n;
}

static void carry_put(int fd, const char *buf, size_t len)
{
	pthread_mutex_lock(&carry_lock);
	for (int i = 0; i < CARRY_SLOTS; i++) {
		if (!carries[i].used) {
			carries[i].used = 1;
			carries[i].fd = fd;
			carries[i].len = len < CARRY_BYTES ? len : CARRY_BYTES;
			memcpy(carries[i].buf, buf, carries[i].len);
			break;
		}
	}
	pthread_mutex_unlock(&carry_lock);
}

int spawn_read_line(struct spawn_child *child, char *buf, size_t len, uint64_t timeout_ns)
{
	int fd = child->stdout_fd;
	if (fd < 0 || !buf || len == 0)
		return -EINVAL;
	char line[CARRY_BYTES];
	size_t n = carry_take(fd, line, sizeof(line));
	uint64_t now0 = clock_now_ns();
	uint64_t deadline = timeout_ns > UINT64_MAX - now0 ? UINT64_MAX : now0 + timeout_ns;
	int avail = 0, r;
	for (;;) {
		if (avail <= 0) {
			uint64_t now = clock_now_ns();
			uint64_t left = deadline > now ? deadline - now : 0;
			struct timespec ts = {(time_t)(left / NS_PER_S), (long)(left % NS_PER_S)};
			struct pollfd pfd = {.fd = fd, .events = POLLIN};
			int pr = ppoll(&pfd, 1, &ts, NULL);
			if (pr < 0 && errno == EINTR)
				continue;
			if (pr < 0) {
				r = -errno;
				break;
			}
			if (pr == 0) {
				r = -ETIMEDOUT;
				break;
			}
			if (ioctl(fd, FIONREAD, &avail) < 0 || avail <= 0)
				avail = 1; /* EOF or error: the read says which */
		}
		char c;
		ssize_t got = read(fd, &c, 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = -errno;
			break;
		}
		avail--;
		if (got == 0) {
			r = n > 0 ? 1 : 0; /* a last line without '\n', then EOF */
			break;
		}
		if (c == '\n') {
			r = 1;
			break;
		}
		if (n < sizeof(line))
			line[n++] = c;
	}
	if (r == -ETIMEDOUT && n > 0)
		carry_put(fd, line, n);
	if (r == 1) {
		size_t k = n < len - 1 ? n : len - 1;
		memcpy(buf, line, k);
		buf[k] = 0;
	} else {
		buf[0] = 0;
	}
	return r;
}

/* ---- waiting, stopping, killing ------------------------------------------------------ */

static void reaped(struct spawn_child *child, int st)
{
	child->status = st;
	child->exited = 1;
	guard_del(child->keeper);
	/* a held program that was never released */
	if (child->go_fd >= 0)
		close(child->go_fd), child->go_fd = -1;
	if (child->st_fd >= 0)
		close(child->st_fd), child->st_fd = -1;
	if (child->stdin_fd >= 0)
		close(child->stdin_fd), child->stdin_fd = -1;
}

int spawn_signal(struct spawn_child *child, int sig)
{
	if (child->exited || child->pid <= 0)
		return -ESRCH;
	return kill(child->pid, sig) < 0 ? -errno : 0;
}

int spawn_wait(struct spawn_child *child, int64_t timeout_ns)
{
	if (child->exited)
		return 0;
	if (child->keeper <= 0)
		return -ECHILD;
	int st;
	if (timeout_ns < 0) {
		pid_t r;
		while ((r = waitpid(child->keeper, &st, 0)) < 0 && errno == EINTR)
			;
		if (r < 0)
			return -errno;
		reaped(child, st);
		return 0;
	}
	uint64_t deadline = clock_now_ns() + (uint64_t)timeout_ns;
	int pfd = (int)syscall(SYS_pidfd_open, child->keeper, 0);
	int r;
	for (;;) {
		pid_t w = waitpid(child->keeper, &st, WNOHANG);
		if (w == child->keeper) {
			reaped(child, st);
			r = 0;
			break;
		}
		if (w < 0 && errno != EINTR) {
			r = -errno;
			break;
		}
		uint64_t now = clock_now_ns();
		if (now >= deadline) {
			r = -ETIMEDOUT;
			break;
		}
		uint64_t left = deadline - now;
		if (pfd >= 0) {
			struct timespec ts = {(time_t)(left / NS_PER_S), (long)(left % NS_PER_S)};
			struct pollfd p = {.fd = pfd, .events = POLLIN};
			ppoll(&p, 1, &ts, NULL);
		} else {
			clock_sleep_ns(left < NS_PER_MS ? left : NS_PER_MS);
		}
	}
	if (pfd >= 0)
		close(pfd);
	return r;
}

int spawn_stop(struct spawn_child *child, uint64_t grace_ns)
{
	if (child->exited)
		return 0;
	if (child->keeper <= 0)
		return -ECHILD;
	spawn_signal(child, SIGTERM);
	if (grace_ns > (uint64_t)INT64_MAX / 2)
		grace_ns = (uint64_t)INT64_MAX / 2;
	if (spawn_wait(child, (int64_t)grace_ns) == 0)
		return 0;
	/* The keeper SIGKILLs the whole tree, reaps it and exits. */
	kill(child->keeper, SIGTERM);
	if (spawn_wait(child, 2 * (int64_t)NS_PER_S) < 0) {
		spawn_kill_tree(child->keeper, SIGKILL);
		spawn_wait(child, -1);
	}
	return -ETIMEDOUT;
}

int spawn_kill_tree(pid_t pid, int sig)
{
	if (pid <= 1)
		return -EINVAL;
	int cap = KEEPER_PIDS;
	pid_t *buf = malloc((size_t)cap * sizeof(*buf));
	struct pp *pairs = malloc((size_t)KEEPER_PAIRS * sizeof(*pairs));
	if (!buf || !pairs) {
		free(buf);
		free(pairs);
		return -ENOMEM;
	}
	pid_t me = getpid();
	int n;
	if (sig == SIGKILL) {
		/* Freeze the tree first so nothing forks between the listing and the kill. */
		kill(pid, SIGSTOP);
		int prev = -1;
		for (int round = 0; round < 16; round++) {
			n = collect(pid, buf, cap, pairs, KEEPER_PAIRS);
			if (n > cap)
				n = cap;
			for (int i = 0; i < n; i++)
				if (buf[i] != me)
					kill(buf[i], SIGSTOP);
			if (n == prev)
				break;
			prev = n;
		}
	}
	n = collect(pid, buf, cap, pairs, KEEPER_PAIRS);
	if (n > cap)
		n = cap;
	int count = 0;
	if (kill(pid, sig) == 0)
		count++;
	for (int i = 0; i < n; i++)
		if (buf[i] != me && kill(buf[i], sig) == 0)
			count++;
	if (getpgid(pid) == pid && pid != getpgrp())
		kill(-pid, sig);
	free(buf);
	free(pairs);
	return count;
}

int spawn_descendants(pid_t pid, pid_t *pids, int max)
{
	if (pid <= 0 || max < 0)
		return -EINVAL;
	int cap = max > KEEPER_PIDS ? max : KEEPER_PIDS;
	pid_t *buf = malloc((size_t)cap * sizeof(*buf));
	struct pp *pairs = malloc((size_t)KEEPER_PAIRS * sizeof(*pairs));
	if (!buf || !pairs) {
		free(buf);
		free(pairs);
		return -ENOMEM;
	}
	int n = collect(pid, buf, cap, pairs, KEEPER_PAIRS);
	int w = n < max ? n : max;
	if (w > cap)
		w = cap;
	memcpy(pids, buf, (size_t)w * sizeof(*pids));
	free(buf);
	free(pairs);
	return n;
}
