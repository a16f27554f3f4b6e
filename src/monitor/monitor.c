/* monitor: the process-tree walk, CPU accounting (cgroup v2 / v1 / procwalk) and the figures
 * of one interval. See monitor.h for the contract and docs/metrics.md for every definition.
 *
 * Procwalk CPU, in short: each process p has T_p = utime+stime+cutime+cstime (its own time plus
 * what it reaped). The tree's CPU accumulates, every sample, the growth of T_p of every process
 * seen twice and the whole T_p of a process seen for the first time. When a process vanishes
 * (reaped), what we had counted of it, T_p(last), becomes a credit on its nearest live ancestor:
 * the ancestor's next cutime/cstime growth (which contains the child's final total) is counted
 * net of that credit, so nothing is counted twice and the child's tail is not lost. Parents are
 * read before their children (breadth-first), which closes the race where a child is reaped
 * between the two reads. Kept-open /proc fds make PID reuse harmless: a fd of a dead process
 * reads ESRCH, never the new process.
 */
#include "monitor/monitor.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <regex.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/procfs.h"
#include "monitor/forkev.h"
#include "monitor/perfev.h"
#include "monitor/syscpu.h"
#include "monitor/tstats.h"

#define STATBUF 1024
#define BIGBUF 4096
#define SLOW_BUDGET 0.003 /* of one core: PSS and fd counts */
#define SLOW_MAX_EVERY 30

struct task_ent {
	pid_t tid;
	int fd_status, fd_sched, fd_children, fd_stat;
	uint64_t vol, invol, run_ns, wait_ns, ut, st; /* last seen */
	uint64_t d_vol, d_invol, d_ut, d_st, d_run;    /* over the current interval */
};

struct proc_ent {
	pid_t pid, ppid;
	uint64_t start_ticks;
	unsigned gen;
	int dirfd, fd_stat, fd_smaps, fd_sched;
	/* /proc/PID/schedstat when it was last found idle (ss_ok): a pread of it (~1.5 us)
	 * proves it has not run since, cheaper than a taskstats request (~6 us) */
	uint64_t ss_run_ns, ss_wait_ns, ss_slices;
	int ss_ok;
	unsigned ss_gen;  /* == monitor gen: ss_quiet is this round's schedstat check (made by
			   * ts_prefetch) */
	int ss_quiet;
	int kids_dirty;   /* a fork event names it since its children file was last read */
	char comm[16];
	char state;
	uint64_t ut, st, cut, cst, minflt, majflt, cminflt, cmajflt; /* last seen */
	uint64_t credit_ut, credit_st, credit_min, credit_maj;       /* from vanished children */
	uint64_t d_ut, d_st;                                         /* own, this interval */
	/* exact CPU (ns): own time of every thread, live or exited, and the children's */
	uint64_t own_ns, cur_own_ns, d_own_ns, credit_ns;
	uint64_t raw_u_us, raw_s_us;  /* taskstats' tick-sampled split (last seen) */
	int slow_read;                /* PSS / fds read at least once */
	pid_t *kids;                  /* children at the last read (single-threaded; nkids -1:
				       * unknown) */
	int nkids, capkids;
	int fds, sockets;             /* last read (refreshed every slow_every intervals) */
	uint64_t pss_bytes;
	int threads;
	struct procfs_stat cur; /* read this round, counted after the sweep */
	int fresh, base;
	struct task_ent *tasks;
	int ntasks, captasks;
};

struct acc {
	uint64_t ut, st;        /* ticks */
	uint64_t minflt, majflt;
	uint64_t vol, invol;
	uint64_t wait_ns;
	uint64_t cg_user_ns, cg_sys_ns; /* exact CPU split user/system (every method) */
	uint64_t run_ns;                /* procwalk: the tree's exact CPU (ns) */
	uint64_t raw_u_us, raw_s_us;    /* procwalk: taskstats' tick-sampled split */
	uint64_t perf[PERFEV_N];
	uint64_t ts_batched, ts_single; /* taskstats process figures asked in a batch / alone */
	uint64_t kids_skipped;          /* children files not read (no children, no fork since) */
};

/* a task's switch counts, for the exit events (see credit_exits) */
struct swent {
	pid_t tid, tgid;
	uint64_t vol, invol;
};

struct monitor {
	struct monitor_opts opts;
	enum monitor_method method;
	char method_reason[160];
	char cgpath[512];
	int cg_version;
	int cg_fd_stat, cg_fd_user, cg_fd_sys, cg_fd_usage, cg_fd_procs;
	uint64_t cg1_tot, cg1_u, cg1_s, cg1_acc_u, cg1_acc_s;
	uint64_t cg_u0, cg_s0, cg_tot0, cg_span_u, cg_span_done;
	int cg1_primed;
	int name_mode;
	regex_t re;

	struct proc_ent **procs;
	int nprocs, capprocs;
	int *hash; /* index into procs, -1 empty */
	unsigned hashmask;
	unsigned gen;

	pid_t *queue;
	int capqueue;
	pid_t *tids;
	int captids;

	long tck;
	long pagesize;
	int fd_budget;

	struct acc acc, prev, base;
	uint64_t start_ns, prev_ns;
	uint64_t tree0_ut, tree0_st;   /* the tree's T_p sum at the baseline (for monitor_reaped) */
	uint64_t tree0_ns;
	uint64_t reaped_ns;            /* exact-CPU floor from monitor_reaped */
	uint64_t tick_ns;

	struct tstats ts;              /* taskstats: one request per process instead of files */
	int ts_ok;
	/* taskstats answers asked ahead, in one batch, for the next processes of the walk's
	 * queue (see ts_prefetch); ahead_end: the queue index the batch reached */
	struct tsahead {
		pid_t pid; /* 0: used */
		int rc;
		struct tstats_fig f;
	} ahead[TSTATS_BATCH];
	int nahead, ahead_pos, ahead_end;
	/* fork events: a process that had no children at its last read and has not forked
	 * since still has none (a reparented orphan is found by walk's second pass) */
	struct forkev fe;
	int fe_ok;
	int fe_trust;                  /* this round: no event lost since the last walk */
	pid_t *feparents;
	int capfe;
	/* taskstats exit events: the final switch counts of every task that exits */
	struct tstats tl;
	int tl_ok;
	struct tstats_exit *ev;        /* this round's events, then those kept for the next */
	int nev, capev, npend;
	struct swent *grave;           /* tasks dropped by this round's walk, with their counts */
	int ngrave, capgrave;
	struct swent *ghost;           /* tasks credited from their event without being seen: a
					* zombie the next walk finds counts from these figures */
	int nghost, capghost;
	pid_t *members;                /* processes accepted as the tree's from their events */
	int nmembers, capmembers;
	char source[160];
	struct task_ent *scratch;      /* read_tasks' new thread list (reused) */
	int capscratch;

	/* PSS and fd counts (the costliest reads) are refreshed every slow_every intervals,
	 * chosen so that they cost at most SLOW_BUDGET of a core */
	int slow_every;
	uint64_t nsamples, slow_cost_ns, slow_cost_n;
	int root_gone;
	uint64_t root_start;
	uint64_t reaped_ut, reaped_st; /* ticks-equivalent floor from monitor_reaped */
	uint64_t reaped_vol, reaped_invol; /* switch floor from monitor_reaped (from_birth) */
	int have_reaped;
	int seen_any, exited;

	struct syscpu sc;
	int sc_ok;
	double *sc_pct;
	struct monitor_syscpu *per_cpu;

	struct perfev pe;
	int pe_on;
	int pe_cgroup;                 /* the counters are per cgroup and CPU */

	struct monitor_task *tasks;
	int captasks;

	/* gauges: max over samples, for the total */
	int max_procs, max_threads, max_fds, max_sockets;
	uint64_t max_rss, max_pss;
	int tot_gone, tot_left;

	char buf[BIGBUF];
	char *big;      /* children lists and cgroup.procs: grown on demand */
	size_t biglen;
};

const char *monitor_method_name(enum monitor_method m)
{
	switch (m) {
	case MONITOR_CGROUP2:
		return "cgroup2";
	case MONITOR_CGROUP1:
		return "cgroup1";
	default:
		return "procwalk";
	}
}

enum monitor_method monitor_method_of(const struct monitor *m) { return m->method; }

/* ---- small readers --------------------------------------------------------------------- */

static uint64_t parse_u64(const char **pp)
{
	const char *p = *pp;
	uint64_t v = 0;
	while (*p == ' ' || *p == '\t')
		p++;
	while (*p >= '0' && *p <= '9')
		v = v * 10 + (uint64_t)(*p++ - '0');
	*pp = p;
	return v;
}

/* Reads a /proc file through a kept fd (opened on first use when the fd budget allows, else
 * opened and closed each time). Returns bytes read (NUL-terminated), or -errno. */
static ssize_t rd(struct monitor *m, int *fd, int dirfd, const char *rel, char *buf, size_t len)
{
	int tmp = -1;
	if (*fd < 0) {
		tmp = openat(dirfd, rel, O_RDONLY | O_CLOEXEC);
		if (tmp < 0)
			return -errno;
		if (m->fd_budget > 0) {
			*fd = tmp, tmp = -1;
			m->fd_budget--;
		}
	}
	ssize_t n = pread(*fd >= 0 ? *fd : tmp, buf, len - 1, 0);
	int e = errno;
	if (tmp >= 0)
		close(tmp);
	if (n < 0)
		return -e;
	buf[n] = 0;
	return n;
}

/* Like rd into m->big, growing it until the whole file fits (children lists of a forking
 * server, cgroup.procs). */
static ssize_t rd_big(struct monitor *m, int *fd, int dirfd, const char *rel)
{
	for (;;) {
		if (!m->big) {
			m->biglen = 16384;
			m->big = malloc(m->biglen);
			if (!m->big)
				return -ENOMEM;
		}
		ssize_t n = rd(m, fd, dirfd, rel, m->big, m->biglen);
		if (n < 0 || (size_t)n < m->biglen - 1 || m->biglen >= (64u << 20))
			return n;
		char *nb = realloc(m->big, m->biglen * 2);
		if (!nb)
			return n;
		m->big = nb, m->biglen *= 2;
	}
}

static void closefd(struct monitor *m, int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		m->fd_budget++;
		*fd = -1;
	}
}


static uint64_t field_after(const char *buf, const char *key)
{
	const char *p = strstr(buf, key);
	if (!p)
		return 0;
	p += strlen(key);
	return parse_u64(&p);
}

static uint64_t dsub(uint64_t now, uint64_t last) { return now > last ? now - last : 0; }

/* ---- the process table ----------------------------------------------------------------- */

static unsigned hslot(pid_t pid, unsigned mask) { return ((unsigned)pid * 2654435761u) & mask; }

static int hash_rebuild(struct monitor *m)
{
	unsigned size = 64;
	while (size < (unsigned)m->nprocs * 2 + 2)
		size <<= 1;
	if (size - 1 != m->hashmask) {
		int *h = realloc(m->hash, size * sizeof *h);
		if (!h)
			return -ENOMEM;
		m->hash = h, m->hashmask = size - 1;
	}
	for (unsigned i = 0; i <= m->hashmask; i++)
		m->hash[i] = -1;
	for (int i = 0; i < m->nprocs; i++) {
		unsigned s = hslot(m->procs[i]->pid, m->hashmask);
		while (m->hash[s] >= 0)
			s = (s + 1) & m->hashmask;
		m->hash[s] = i;
	}
	return 0;
}

static int hash_find(struct monitor *m, pid_t pid)
{
	unsigned s = hslot(pid, m->hashmask);
	while (m->hash[s] >= 0) {
		if (m->procs[m->hash[s]]->pid == pid)
			return m->hash[s];
		s = (s + 1) & m->hashmask;
	}
	return -1;
}

static void task_close(struct monitor *m, struct task_ent *t)
{
	closefd(m, &t->fd_status);
	closefd(m, &t->fd_sched);
	closefd(m, &t->fd_children);
	closefd(m, &t->fd_stat);
}

static void proc_free(struct monitor *m, struct proc_ent *p)
{
	for (int i = 0; i < p->ntasks; i++)
		task_close(m, &p->tasks[i]);
	free(p->tasks);
	closefd(m, &p->fd_stat);
	closefd(m, &p->fd_smaps);
	closefd(m, &p->fd_sched);
	closefd(m, &p->dirfd);
	free(p->kids);
	free(p);
}

/* Adds a new entry (pid with a live /proc dir); index, or -errno. */
static int proc_add(struct monitor *m, pid_t pid)
{
	char path[32];
	snprintf(path, sizeof path, "/proc/%d", (int)pid);
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	struct proc_ent *p = calloc(1, sizeof *p);
	if (!p) {
		close(dfd);
		return -ENOMEM;
	}
	if (m->nprocs == m->capprocs) {
		int nc = m->capprocs ? m->capprocs * 2 : 64;
		struct proc_ent **np = realloc(m->procs, (size_t)nc * sizeof *np);
		if (!np) {
			close(dfd), free(p);
			return -ENOMEM;
		}
		m->procs = np, m->capprocs = nc;
	}
	m->fd_budget--;
	p->pid = pid;
	p->dirfd = dfd;
	p->fd_stat = p->fd_smaps = p->fd_sched = -1;
	p->nkids = -1;
	p->gen = 0;
	m->procs[m->nprocs++] = p;
	if ((unsigned)m->nprocs * 2 + 2 > m->hashmask + 1) {
		if (hash_rebuild(m))
			return -ENOMEM;
	} else {
		unsigned s = hslot(pid, m->hashmask);
		while (m->hash[s] >= 0)
			s = (s + 1) & m->hashmask;
		m->hash[s] = m->nprocs - 1;
	}
	return m->nprocs - 1;
}

static int queue_push(struct monitor *m, int *n, pid_t pid)
{
	if (*n == m->capqueue) {
		int nc = m->capqueue ? m->capqueue * 2 : 256;
		pid_t *q = realloc(m->queue, (size_t)nc * sizeof *q);
		if (!q)
			return -ENOMEM;
		m->queue = q, m->capqueue = nc;
	}
	m->queue[(*n)++] = pid;
	return 0;
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

static int cmp_sw(const void *a, const void *b)
{
	pid_t x = ((const struct swent *)a)->tid, y = ((const struct swent *)b)->tid;
	return (x > y) - (x < y);
}

/* Entry of tid in a[n] sorted by tid, or NULL. */
static const struct swent *sw_find(const struct swent *a, int n, pid_t tid)
{
	int lo = 0, hi = n - 1;
	while (lo <= hi) {
		int mid = lo + (hi - lo) / 2;
		if (a[mid].tid == tid)
			return &a[mid];
		if (a[mid].tid < tid)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return NULL;
}

static int sw_push(struct swent **a, int *n, int *cap, pid_t tid, pid_t tgid, uint64_t vol,
		   uint64_t invol)
{
	if (*n == *cap) {
		int nc = *cap ? *cap * 2 : 256;
		struct swent *g = realloc(*a, (size_t)nc * sizeof *g);
		if (!g)
			return -ENOMEM;
		*a = g, *cap = nc;
	}
	(*a)[(*n)++] = (struct swent){tid, tgid, vol, invol};
	return 0;
}

/* A task of process tgid that this walk no longer finds: its counts so far, for its exit
 * event (which the kernel queued before the task left /proc). */
static void grave_add(struct monitor *m, pid_t tgid, const struct task_ent *t)
{
	if (m->tl_ok)
		sw_push(&m->grave, &m->ngrave, &m->capgrave, t->tid, tgid, t->vol, t->invol);
}

/* Lists p's threads into m->tids (sorted). Count, or -errno. */
static int list_tids(struct monitor *m, struct proc_ent *p)
{
	if (p->threads <= 1 || p->state == 'Z') {
		if (m->captids < 1) {
			m->tids = malloc(64 * sizeof *m->tids);
			if (!m->tids)
				return -ENOMEM;
			m->captids = 64;
		}
		m->tids[0] = p->pid;
		return 1;
	}
	int n = procfs_list_tasks(p->dirfd, p->pid, &m->tids, 0, &m->captids);
	if (n < 0)
		return n;
	qsort(m->tids, (size_t)n, sizeof *m->tids, cmp_pid);
	return n;
}

/* ---- one process's read ---------------------------------------------------------------- */

static int ts_tgid(struct monitor *m, pid_t pid, struct tstats_fig *f);

struct walk {
	int first;      /* baseline: record, count nothing */
	int slow;       /* refresh PSS and fd counts of every process this round */
	int procs, threads, fds, sockets;
	uint64_t rss, pss;
	uint64_t slow_ns; /* time the slow reads took */
	int slow_n;
	int ran_unattached; /* processes read in full that have no perf counters of their own */
};

struct fd_count {
	int dirfd, fds, sockets;
};

static int count_fd(const char *name, void *arg)
{
	struct fd_count *c = arg;
	char link[64], rel[32];
	c->fds++;
	snprintf(rel, sizeof rel, "fd/%s", name);
	ssize_t l = readlinkat(c->dirfd, rel, link, sizeof link - 1);
	if (l >= 7 && !memcmp(link, "socket:", 7))
		c->sockets++;
	return 0;
}

static void count_fds(struct proc_ent *p, int *fds, int *sockets)
{
	int fd = openat(p->dirfd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	struct fd_count c = {p->dirfd, 0, 0};
	procfs_each_numeric(fd, count_fd, &c);
	*fds += c.fds;
	*sockets += c.sockets;
	close(fd);
}

/* Reads the threads of p: switch counts, run-queue wait, CPU, children (pushed on the queue).
 * With taskstats, one request per process (single-threaded) or per thread replaces the
 * status and schedstat files; p->cur_own_ns gets the process's exact CPU so far (taskstats:
 * every thread, exited ones included; /proc: the live threads' sum), before clamping. */
static int read_tasks(struct monitor *m, struct proc_ent *p, struct walk *w, int *qn, int base,
		      const struct tstats_fig *pre)
{
	int n = list_tids(m, p);
	if (n < 0)
		return n;
	if (n > m->capscratch) {
		struct task_ent *ns = realloc(m->scratch, (size_t)n * sizeof *ns);
		if (!ns)
			return -ENOMEM;
		m->scratch = ns, m->capscratch = n;
	}
	struct task_ent *nt = m->scratch;
	int j = 0, k = 0;
	uint64_t live_run = 0;
	char rel[64];
	struct tstats_fig pf;
	int have_pf = 0;
	if (pre) {
		pf = *pre, have_pf = 1;
	} else if (m->ts_ok && p->state != 'Z') {
		/* the whole process: exact CPU including exited threads */
		int r = ts_tgid(m, p->pid, &pf);
		if (!r)
			have_pf = 1;
	}
	int q0 = *qn;
	for (int i = 0; i < n; i++) {
		pid_t tid = m->tids[i];
		while (j < p->ntasks && p->tasks[j].tid < tid) {
			/* a thread that exited: its tail comes with its exit event */
			grave_add(m, p->pid, &p->tasks[j]);
			task_close(m, &p->tasks[j++]);
		}
		struct task_ent *t = &nt[k];
		int fresh = 1;
		if (j < p->ntasks && p->tasks[j].tid == tid) {
			*t = p->tasks[j++];
			fresh = 0;
		} else {
			memset(t, 0, sizeof *t);
			t->tid = tid;
			t->fd_status = t->fd_sched = t->fd_children = t->fd_stat = -1;
			const struct swent *g = sw_find(m->ghost, m->nghost, tid);
			if (g) {
				/* already counted from its exit event: only growth beyond that */
				t->vol = g->vol, t->invol = g->invol;
				fresh = 0;
			}
		}
		t->d_vol = t->d_invol = t->d_ut = t->d_st = t->d_run = 0;
		uint64_t vol, invol, wait_ns = t->wait_ns, run_ns = t->run_ns;
		struct tstats_fig tf;
		if (have_pf && n == 1 && tid == p->pid) {
			vol = pf.vol, invol = pf.invol, wait_ns = pf.wait_ns, run_ns = pf.run_ns;
		} else if (m->ts_ok && p->state != 'Z' && !tstats_get(&m->ts, tid, 0, &tf)) {
			vol = tf.vol, invol = tf.invol, wait_ns = tf.wait_ns, run_ns = tf.run_ns;
		} else {
			snprintf(rel, sizeof rel, "task/%d/status", (int)tid);
			if (rd(m, &t->fd_status, p->dirfd, rel, m->buf, sizeof m->buf) < 0) {
				if (!fresh)
					grave_add(m, p->pid, t); /* its tail: from its exit event */
				task_close(m, t);
				continue; /* gone since the listing */
			}
			vol = field_after(m->buf, "\nvoluntary_ctxt_switches:");
			invol = field_after(m->buf, "\nnonvoluntary_ctxt_switches:");
			snprintf(rel, sizeof rel, "task/%d/schedstat", (int)tid);
			if (rd(m, &t->fd_sched, p->dirfd, rel, m->buf, sizeof m->buf) > 0) {
				const char *q = m->buf;
				run_ns = parse_u64(&q);
				wait_ns = parse_u64(&q);
			}
		}
		if (m->opts.threads && m->opts.top_n > 0) {
			snprintf(rel, sizeof rel, "task/%d/stat", (int)tid);
			struct procfs_stat ts;
			if (rd(m, &t->fd_stat, p->dirfd, rel, m->buf, sizeof m->buf) > 0 &&
			    !procfs_parse_stat(m->buf, &ts)) {
				if (!base) {
					t->d_ut = fresh ? ts.ut : dsub(ts.ut, t->ut);
					t->d_st = fresh ? ts.st : dsub(ts.st, t->st);
				}
				t->ut = ts.ut, t->st = ts.st;
			}
		}
		if (!base) {
			/* a thread first seen now was born during the interval: all of it counts */
			t->d_vol = fresh ? vol : dsub(vol, t->vol);
			t->d_invol = fresh ? invol : dsub(invol, t->invol);
			t->d_run = fresh ? run_ns : dsub(run_ns, t->run_ns);
			m->acc.vol += t->d_vol;
			m->acc.invol += t->d_invol;
			m->acc.wait_ns += fresh ? wait_ns : dsub(wait_ns, t->wait_ns);
		}
		if (vol >= t->vol)
			t->vol = vol;
		if (invol >= t->invol)
			t->invol = invol;
		if (wait_ns >= t->wait_ns)
			t->wait_ns = wait_ns;
		if (run_ns >= t->run_ns)
			t->run_ns = run_ns;
		live_run += t->run_ns;
		if (n == 1 && m->fe_trust && p->nkids == 0 && !p->kids_dirty && !m->opts.cgroup) {
			/* no children at the last read and no fork since: none now */
			m->acc.kids_skipped++;
			k++;
			continue;
		}
		p->kids_dirty = 0;
		snprintf(rel, sizeof rel, "task/%d/children", (int)tid);
		if (!m->opts.cgroup && rd_big(m, &t->fd_children, p->dirfd, rel) > 0) {
			const char *q = m->big;
			while (*q) {
				while (*q == ' ' || *q == '\n')
					q++;
				if (!*q)
					break;
				pid_t c = (pid_t)parse_u64(&q);
				if (c > 0 && queue_push(m, qn, c))
					break;
				if (*q && *q != ' ' && *q != '\n')
					q++;
			}
		}
		k++;
	}
	while (j < p->ntasks) {
		grave_add(m, p->pid, &p->tasks[j]);
		task_close(m, &p->tasks[j++]);
	}
	if (k > p->captasks) {
		struct task_ent *grown = realloc(p->tasks, (size_t)k * sizeof *grown);
		if (!grown) {
			for (int i = 0; i < k; i++)
				task_close(m, &nt[i]);
			p->ntasks = 0;
			return -ENOMEM;
		}
		p->tasks = grown, p->captasks = k;
	}
	if (k)
		memcpy(p->tasks, nt, (size_t)k * sizeof *nt);
	p->ntasks = k;
	w->threads += k;
	if (n == 1 && k == 1) {
		/* a single-threaded process's children, for the rounds it sleeps through */
		int nk = *qn - q0;
		if (nk > p->capkids) {
			pid_t *g = realloc(p->kids, (size_t)nk * sizeof *g);
			if (!g)
				return -ENOMEM;
			p->kids = g, p->capkids = nk;
		}
		if (nk)
			memcpy(p->kids, m->queue + q0, (size_t)nk * sizeof *p->kids);
		p->nkids = nk;
	} else {
		p->nkids = -1;
	}
	p->cur_own_ns = have_pf && pf.run_ns > live_run ? pf.run_ns : live_run;
	if (have_pf) {
		/* taskstats' own split (tick-sampled, live threads): the ratio when the
		 * /proc figures show no tick at all */
		if (!base && !p->fresh) {
			m->acc.raw_u_us += dsub(pf.utime_us, p->raw_u_us);
			m->acc.raw_s_us += dsub(pf.stime_us, p->raw_s_us);
		} else if (!base) {
			m->acc.raw_u_us += pf.utime_us, m->acc.raw_s_us += pf.stime_us;
		}
		if (pf.utime_us > p->raw_u_us)
			p->raw_u_us = pf.utime_us;
		if (pf.stime_us > p->raw_s_us)
			p->raw_s_us = pf.stime_us;
	}
	return 0;
}

/* Counts p's growth since its last read. fresh: first sight (born during the interval). */
static void account(struct monitor *m, struct proc_ent *p, const struct procfs_stat *ps, int fresh,
		    int first)
{
	p->d_ut = p->d_st = p->d_own_ns = 0;
	/* exact own CPU: what the threads report, kept inside what /proc/PID/stat proves (its
	 * utime and stime are the exact total split and cut down to whole ticks, exited threads
	 * included): at least (ut+st) ticks, less than (ut+st+2) ticks */
	uint64_t lo = (ps->ut + ps->st) * m->tick_ns, hi = lo + 2 * m->tick_ns - 1;
	uint64_t own = p->cur_own_ns < lo ? lo : p->cur_own_ns > hi ? hi : p->cur_own_ns;
	if (!fresh && own < p->own_ns)
		own = p->own_ns;
	if (first) {
		m->tree0_ut += ps->ut + ps->cut;
		m->tree0_st += ps->st + ps->cst;
		m->tree0_ns += own + (ps->cut + ps->cst) * m->tick_ns;
	} else {
		uint64_t down = fresh ? own : dsub(own, p->own_ns);
		uint64_t dcn = ((fresh ? ps->cut : dsub(ps->cut, p->cut)) +
				(fresh ? ps->cst : dsub(ps->cst, p->cst))) * m->tick_ns;
		uint64_t cn = dcn < p->credit_ns ? dcn : p->credit_ns;
		dcn -= cn, p->credit_ns -= cn;
		m->acc.run_ns += down + dcn;
		p->d_own_ns = down;
		uint64_t dut = fresh ? ps->ut : dsub(ps->ut, p->ut);
		uint64_t dst = fresh ? ps->st : dsub(ps->st, p->st);
		uint64_t dcut = fresh ? ps->cut : dsub(ps->cut, p->cut);
		uint64_t dcst = fresh ? ps->cst : dsub(ps->cst, p->cst);
		uint64_t dmin = fresh ? ps->minflt : dsub(ps->minflt, p->minflt);
		uint64_t dmaj = fresh ? ps->majflt : dsub(ps->majflt, p->majflt);
		uint64_t dcmin = fresh ? ps->cminflt : dsub(ps->cminflt, p->cminflt);
		uint64_t dcmaj = fresh ? ps->cmajflt : dsub(ps->cmajflt, p->cmajflt);
		/* reaped children's totals, net of what was counted while they lived */
		uint64_t c;
		c = dcut < p->credit_ut ? dcut : p->credit_ut, dcut -= c, p->credit_ut -= c;
		c = dcst < p->credit_st ? dcst : p->credit_st, dcst -= c, p->credit_st -= c;
		c = dcmin < p->credit_min ? dcmin : p->credit_min, dcmin -= c, p->credit_min -= c;
		c = dcmaj < p->credit_maj ? dcmaj : p->credit_maj, dcmaj -= c, p->credit_maj -= c;
		m->acc.ut += dut + dcut;
		m->acc.st += dst + dcst;
		m->acc.minflt += dmin + dcmin;
		m->acc.majflt += dmaj + dcmaj;
		p->d_ut = dut, p->d_st = dst;
	}
	/* keep the high-water marks: a counter never steps back for one process */
	p->own_ns = own;
	if (ps->ut > p->ut) p->ut = ps->ut;
	if (ps->st > p->st) p->st = ps->st;
	if (ps->cut > p->cut) p->cut = ps->cut;
	if (ps->cst > p->cst) p->cst = ps->cst;
	if (ps->minflt > p->minflt) p->minflt = ps->minflt;
	if (ps->majflt > p->majflt) p->majflt = ps->majflt;
	if (ps->cminflt > p->cminflt) p->cminflt = ps->cminflt;
	if (ps->cmajflt > p->cmajflt) p->cmajflt = ps->cmajflt;
}

/* Visits pid: reads it, counts it, queues its children. */
/* /proc/PID/schedstat of a single-threaded process: run ns, wait ns, times run. 0 / -1. */
static int read_schedstat(struct monitor *m, struct proc_ent *p, uint64_t ss[3])
{
	char buf[96];
	if (rd(m, &p->fd_sched, p->dirfd, "schedstat", buf, sizeof buf) <= 0)
		return -1;
	const char *q = buf;
	for (int i = 0; i < 3; i++)
		ss[i] = parse_u64(&q);
	return 0;
}

/* Whether visit can prove p idle from /proc/PID/schedstat alone (no taskstats request). */
static int schedstat_check(const struct monitor *m, const struct proc_ent *p, const struct walk *w)
{
	return m->ts_ok && !w->first && p->threads == 1 && p->ntasks == 1 && p->nkids >= 0 &&
	       p->state != 'Z' && p->tasks[0].tid == p->pid && p->ss_ok && !p->kids_dirty;
}

/* Asks taskstats in one batch (tstats_get_many) for the processes at queue[i..qn) that visit
 * will ask about: not visited yet this round, not a zombie, not to be proved idle by
 * schedstat; up to TSTATS_BATCH of them, once queue index i passes the last batch. */
static void ts_prefetch(struct monitor *m, const struct walk *w, int i, int qn)
{
	if (!m->ts_ok || i < m->ahead_end)
		return;
	pid_t ids[TSTATS_BATCH];
	struct tstats_fig f[TSTATS_BATCH];
	int rc[TSTATS_BATCH];
	int n = 0, j = i;
	for (; j < qn && n < TSTATS_BATCH; j++) {
		int idx = hash_find(m, m->queue[j]);
		struct proc_ent *p = idx >= 0 ? m->procs[idx] : NULL;
		if (p && (p->gen == m->gen || p->state == 'Z'))
			continue;
		if (p && schedstat_check(m, p, w) && p->ss_gen != m->gen) {
			/* visit's idle check, made now: one that ran needs taskstats, in this
			 * batch */
			uint64_t ss[3];
			p->ss_quiet = read_schedstat(m, p, ss) == 0 && ss[0] == p->ss_run_ns &&
				      ss[1] == p->ss_wait_ns && ss[2] == p->ss_slices;
			p->ss_gen = m->gen;
			if (p->ss_quiet)
				continue;
		}
		ids[n++] = m->queue[j];
	}
	m->ahead_end = j;
	m->nahead = m->ahead_pos = 0;
	if (n < 2 || tstats_get_many(&m->ts, ids, n, 1, f, rc))
		return; /* one alone costs the same; a failed batch: each asked alone */
	for (int k = 0; k < n; k++)
		m->ahead[k] = (struct tsahead){ids[k], rc[k], f[k]};
	m->nahead = n;
}

/* taskstats figures of process pid: from the batch asked ahead when it is there (each answer
 * used once), else one request. Like tstats_get. */
static int ts_tgid(struct monitor *m, pid_t pid, struct tstats_fig *f)
{
	for (int c = 0; c < m->nahead; c++) {
		int k = (m->ahead_pos + c) % m->nahead;
		struct tsahead *a = &m->ahead[k];
		if (a->pid != pid)
			continue;
		a->pid = 0;
		m->ahead_pos = k + 1 < m->nahead ? k + 1 : 0;
		if (a->rc == -EAGAIN)
			break; /* its answer was lost: ask again */
		m->acc.ts_batched++;
		*f = a->f;
		return a->rc;
	}
	m->acc.ts_single++;
	return tstats_get(&m->ts, pid, 1, f);
}

static int visit(struct monitor *m, pid_t pid, struct walk *w, int *qn, int root)
{
	int idx = hash_find(m, pid);
	struct proc_ent *p = idx >= 0 ? m->procs[idx] : NULL;
	if (p && p->gen == m->gen)
		return 0; /* already visited this round */
	struct procfs_stat ps;
	int fresh = 0;
	struct tstats_fig pf;
	int have_pf = 0;
	int quiet = 0;
	if (p && m->ts_ok && !w->first && p->threads == 1 && p->ntasks == 1 && p->nkids >= 0 &&
	    p->state != 'Z' && p->tasks[0].tid == p->pid && !p->kids_dirty) {
		/* (kids_dirty: it forked since its children file was read, maybe right after:
		 * read it again even if it has not run since) */
		const struct task_ent *t = &p->tasks[0];
		uint64_t ss[3];
		if (p->ss_ok) {
			/* idle last time: schedstat (run ns, wait ns, times run) unchanged proves it
			 * has not run since; else the full read below (ts_prefetch may have made the
			 * check already this round) */
			if (p->ss_gen == m->gen)
				quiet = p->ss_quiet;
			else
				quiet = read_schedstat(m, p, ss) == 0 && ss[0] == p->ss_run_ns &&
					ss[1] == p->ss_wait_ns && ss[2] == p->ss_slices;
			p->ss_ok = quiet;
		} else if (!ts_tgid(m, p->pid, &pf)) {
			have_pf = 1;
			quiet = pf.run_ns == t->run_ns && pf.vol == t->vol && pf.invol == t->invol &&
				pf.wait_ns == t->wait_ns;
			/* found idle: from now on, the cheaper check, with this baseline only if it
			 * is the state just proved idle (same run time as taskstats': it has not
			 * run in between, and had no other thread; zeros: schedstat not kept) */
			if (quiet && read_schedstat(m, p, ss) == 0 && ss[0] == pf.run_ns &&
			    ss[1] == pf.wait_ns && ss[2]) {
				p->ss_run_ns = ss[0], p->ss_wait_ns = ss[1], p->ss_slices = ss[2];
				p->ss_ok = 1;
			}
		}
		if (quiet) {
			/* it has not run (nor waited to) since the last read: nothing in its stat
			 * or children list can have changed but through it running (a reparent
			 * moves it out of its parent's list, which we read). Carry over. */
			p->gen = m->gen;
			p->fresh = 0, p->base = 0;
			p->tasks[0].d_vol = p->tasks[0].d_invol = p->tasks[0].d_ut = 0;
			p->tasks[0].d_st = p->tasks[0].d_run = 0;
			if (m->pe_on)
				perfev_quiet(&m->pe, p->pid); /* its counters cannot have moved */
			w->procs++;
			w->threads++;
			w->rss += p->cur.rss_pages * (uint64_t)m->pagesize;
			for (int i = 0; i < p->nkids; i++)
				if (queue_push(m, qn, p->kids[i]))
					return -ENOMEM;
			goto slow;
		}
	}
	/* it ran, was born, died or could not be checked: if it counts through a parent's
	 * inherited counters, those may have moved (see take) */
	if (m->pe_on && !perfev_attached(&m->pe, pid))
		w->ran_unattached++;
	if (p)
		p->ss_ok = 0; /* the schedstat check needs a baseline taken while idle */
	if (p) {
		if (rd(m, &p->fd_stat, p->dirfd, "stat", m->buf, sizeof m->buf) < 0 ||
		    procfs_parse_stat(m->buf, &ps)) {
			/* the process we knew is dead and the pid reused: the sweep deals with the
			 * old entry; track the new one under a fresh entry */
			p->pid = -p->pid - 1; /* retire from lookups until swept */
			hash_rebuild(m);
			p = NULL;
			if (root && m->opts.pid > 0)
				return 0; /* the root died: a reused pid is not our target */
		}
	}
	if (!p) {
		idx = proc_add(m, pid);
		if (idx < 0)
			return idx == -ENOENT || idx == -ESRCH ? 0 : idx;
		p = m->procs[idx];
		if (rd(m, &p->fd_stat, p->dirfd, "stat", m->buf, sizeof m->buf) < 0 ||
		    procfs_parse_stat(m->buf, &ps)) {
			p->gen = m->gen - 1; /* vanished already: swept, nothing counted */
			p->start_ticks = UINT64_MAX;
			return 0;
		}
		fresh = 1;
		p->start_ticks = ps.start;
		p->ppid = ps.ppid;
	}
	p->gen = m->gen;
	p->ppid = ps.ppid;
	p->state = ps.state;
	p->threads = ps.threads;
	memcpy(p->comm, ps.comm, sizeof p->comm);
	/* at the baseline nothing counts; a process first seen later was born in the interval
	 * (all of it counts), unless it is a root newly matched by name (it existed before) */
	int base = (w->first && !m->opts.from_birth) || (fresh && root && m->name_mode);
	/* counted after the sweep, so that the credits of children that vanished this round
	 * apply to this round's growth of the parent's cutime */
	p->cur = ps, p->fresh = fresh, p->base = base;
	w->procs++;
	w->rss += ps.rss_pages * (uint64_t)m->pagesize;
	int r = read_tasks(m, p, w, qn, base, have_pf && !fresh ? &pf : NULL);
	if (r == -ENOMEM)
		return r;
slow:
	/* the slow, slow-changing figures: every slow_every-th interval, and at first sight */
	if ((!m->opts.no_pss || !m->opts.no_fds) && p->state != 'Z' &&
	    (w->slow || !p->slow_read)) {
		uint64_t t0 = clock_now_ns();
		p->pss_bytes = 0;
		p->fds = p->sockets = 0;
		if (!m->opts.no_pss &&
		    rd(m, &p->fd_smaps, p->dirfd, "smaps_rollup", m->buf, sizeof m->buf) > 0)
			p->pss_bytes = field_after(m->buf, "\nPss:") * 1024;
		if (!m->opts.no_fds)
			count_fds(p, &p->fds, &p->sockets);
		p->slow_read = 1;
		w->slow_ns += clock_now_ns() - t0;
		w->slow_n++;
	}
	if (p->state != 'Z') {
		w->pss += p->pss_bytes;
		w->fds += p->fds;
		w->sockets += p->sockets;
	}
	return 0;
}

/* Processes not visited this round: reaped (credit their ancestor) or moved out of the tree. */
static void sweep(struct monitor *m, int *gone, int *left)
{
	for (int i = 0; i < m->nprocs; i++) {
		struct proc_ent *p = m->procs[i];
		if (p->gen == m->gen || p->start_ticks == UINT64_MAX)
			continue;
		struct procfs_stat ps;
		int alive = p->pid > 0 && p->fd_stat >= 0 &&
			    rd(m, &p->fd_stat, p->dirfd, "stat", m->buf, sizeof m->buf) > 0 &&
			    !procfs_parse_stat(m->buf, &ps);
		if (alive) {
			/* still exists but no longer in the tree (reparented away): count up to now,
			 * then forget it */
			p->cur_own_ns = p->own_ns;
			account(m, p, &ps, 0, 0);
			(*left)++;
			continue;
		}
		(*gone)++;
		for (int j = 0; j < p->ntasks; j++)
			grave_add(m, p->pid < 0 ? -p->pid - 1 : p->pid, &p->tasks[j]);
		/* nearest live ancestor in the tree gets the credit */
		pid_t pp = p->ppid;
		for (int hops = 0; hops < 64 && pp > 0; hops++) {
			int j = hash_find(m, pp);
			if (j < 0)
				break;
			struct proc_ent *a = m->procs[j];
			if (a->gen == m->gen) {
				a->credit_ut += p->ut + p->cut;
				a->credit_st += p->st + p->cst;
				a->credit_min += p->minflt + p->cminflt;
				a->credit_maj += p->majflt + p->cmajflt;
				a->credit_ns += p->own_ns + (p->cut + p->cst) * m->tick_ns;
				break;
			}
			pp = a->ppid;
		}
	}
	/* free everything not visited */
	int k = 0;
	for (int i = 0; i < m->nprocs; i++) {
		if (m->procs[i]->gen == m->gen)
			m->procs[k++] = m->procs[i];
		else
			proc_free(m, m->procs[i]);
	}
	m->nprocs = k;
	hash_rebuild(m);
}

/* ---- roots ----------------------------------------------------------------------------- */

static int push_cgroup_procs(struct monitor *m, int *qn)
{
	ssize_t n = rd_big(m, &m->cg_fd_procs, AT_FDCWD, "");
	if (n < 0)
		return (int)n;
	const char *q = m->big;
	while (*q) {
		while (*q == '\n')
			q++;
		if (!*q)
			break;
		pid_t pid = (pid_t)parse_u64(&q);
		if (pid > 0 && queue_push(m, qn, pid))
			return -ENOMEM;
		if (*q && *q != '\n')
			q++;
	}
	return 0;
}

static int push_name_matches(struct monitor *m, int *qn)
{
	DIR *d = opendir("/proc");
	if (!d)
		return -errno;
	struct dirent *de;
	char rel[300], comm[64];
	while ((de = readdir(d))) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(rel, sizeof rel, "/proc/%s/comm", de->d_name);
		int fd = open(rel, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t n = read(fd, comm, sizeof comm - 1);
		close(fd);
		if (n <= 0)
			continue;
		comm[n] = 0;
		if (comm[n - 1] == '\n')
			comm[n - 1] = 0;
		pid_t pid = (pid_t)atoi(de->d_name);
		if (pid == getpid())
			continue;
		if (!regexec(&m->re, comm, 0, NULL, 0))
			queue_push(m, qn, pid);
	}
	closedir(d);
	return 0;
}

/* ---- cgroup CPU ------------------------------------------------------------------------ */

static int cg_open(struct monitor *m, const char *dir, char *err, size_t errlen)
{
	char path[600];
	snprintf(path, sizeof path, "%s/cpu.stat", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char b[512];
	if (fd >= 0) {
		ssize_t n = pread(fd, b, sizeof b - 1, 0);
		b[n > 0 ? n : 0] = 0;
		if (n > 0 && strstr(b, "usage_usec") && strstr(b, "user_usec")) {
			m->cg_fd_stat = fd;
			m->cg_version = 2;
			return 0;
		}
		close(fd);
	}
	snprintf(path, sizeof path, "%s/cpuacct.usage", dir);
	m->cg_fd_usage = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof path, "%s/cpuacct.usage_user", dir);
	m->cg_fd_user = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof path, "%s/cpuacct.usage_sys", dir);
	m->cg_fd_sys = open(path, O_RDONLY | O_CLOEXEC);
	if (m->cg_fd_usage >= 0 && m->cg_fd_user >= 0 && m->cg_fd_sys >= 0) {
		m->cg_version = 1;
		return 0;
	}
	snprintf(err, errlen,
		 "cannot account cpu of cgroup '%s': neither cpu.stat (v2) nor cpuacct.usage* (v1) "
		 "readable (pass a cgroup v2 directory or a v1 cpuacct one)", dir);
	return -ENOENT;
}

static uint64_t read_num_fd(int fd)
{
	char b[64];
	ssize_t n = pread(fd, b, sizeof b - 1, 0);
	if (n <= 0)
		return 0;
	b[n] = 0;
	const char *q = b;
	return parse_u64(&q);
}

/* Cumulative user/sys ns of the cgroup. v1: cpuacct.usage is exact, the user/sys split is
 * tick-sampled, so the exact total is split in the tick ratio. */
static void cg_read(struct monitor *m, uint64_t *user_ns, uint64_t *sys_ns)
{
	if (m->cg_version == 2) {
		char b[1024];
		ssize_t n = pread(m->cg_fd_stat, b, sizeof b - 1, 0);
		b[n > 0 ? n : 0] = 0;
		uint64_t u = field_after(b, "user_usec"), s = field_after(b, "system_usec");
		uint64_t tot = field_after(b, "usage_usec");
		/* usage = user + system; keep the exact sum if they disagree by rounding */
		*user_ns = u * 1000;
		*sys_ns = (tot > u ? tot - u : s) * 1000;
		return;
	}
	uint64_t tot = read_num_fd(m->cg_fd_usage), u = read_num_fd(m->cg_fd_user),
		 s = read_num_fd(m->cg_fd_sys);
	if (!m->cg1_primed) {
		/* the baseline: split the history in its own ratio */
		double fu = u + s ? (double)u / (double)(u + s) : 1.0;
		m->cg1_acc_u = (uint64_t)((double)tot * fu);
		m->cg1_acc_s = tot - m->cg1_acc_u;
	} else {
		/* each interval's exact usage split in that interval's tick ratio (falling back
		 * to the ratio so far when no tick landed), so the sums stay monotonic */
		uint64_t dt = dsub(tot, m->cg1_tot), du = dsub(u, m->cg1_u), ds = dsub(s, m->cg1_s);
		double fu = du + ds ? (double)du / (double)(du + ds)
			  : u + s ? (double)u / (double)(u + s) : 1.0;
		uint64_t add_u = (uint64_t)((double)dt * fu);
		m->cg1_acc_u += add_u;
		m->cg1_acc_s += dt - add_u;
	}
	*user_ns = m->cg1_acc_u, *sys_ns = m->cg1_acc_s;
	if (tot >= m->cg1_tot)
		m->cg1_tot = tot;
	m->cg1_u = u, m->cg1_s = s, m->cg1_primed = 1;
}

/* ---- sampling -------------------------------------------------------------------------- */

/* Marks the processes that forked since the last walk (kids_dirty); fe_trust = 0 when events
 * were lost (every children file is read this round). */
static void fe_drain(struct monitor *m)
{
	m->fe_trust = 0;
	if (!m->fe_ok)
		return;
	if (!m->feparents) {
		m->capfe = 1024;
		m->feparents = malloc((size_t)m->capfe * sizeof *m->feparents);
		if (!m->feparents)
			return;
	}
	int lost = 0;
	for (;;) {
		int n = forkev_read(&m->fe, m->feparents, m->capfe);
		if (n == -ENOBUFS) {
			lost = 1;
			continue;
		}
		if (n < 0) {
			lost = 1;
			break;
		}
		for (int i = 0; i < n; i++) {
			int j = hash_find(m, m->feparents[i]);
			if (j >= 0)
				m->procs[j]->kids_dirty = 1;
		}
		if (n < m->capfe)
			break;
	}
	m->fe_trust = !lost;
}

static int walk(struct monitor *m, struct walk *w, int *gone, int *left)
{
	m->gen++;
	m->ngrave = 0;
	int qn = 0, r = 0;
	if (m->opts.cgroup)
		r = push_cgroup_procs(m, &qn);
	else if (m->name_mode)
		r = push_name_matches(m, &qn);
	else if (!m->root_gone)
		r = queue_push(m, &qn, m->opts.pid);
	if (r == -ENOMEM)
		return r;
	int roots = qn;
	m->nahead = m->ahead_pos = m->ahead_end = 0;
	fe_drain(m);
	/* breadth-first: parents are read before their children */
	for (int i = 0; i < qn; i++) {
		ts_prefetch(m, w, i, qn);
		if (i == 0 && m->opts.pid > 0 && m->root_start && !w->first) {
			/* the root is only ever the process we started with, never a reused pid */
			int j = hash_find(m, m->opts.pid);
			if (j < 0 || m->procs[j]->start_ticks != m->root_start)
				continue;
		}
		r = visit(m, m->queue[i], w, &qn, i < roots);
		if (r == -ENOMEM)
			return r;
	}
	/* /proc/.../children is not reliable while a sibling exits (the kernel walks the list by
	 * position): a child it skipped is still alive under a parent we visited. Pick such
	 * children (and, through them, their subtrees) up, or they would look like they left the
	 * tree and be counted again from scratch when listed next time. */
	for (int pass = 0; pass < 8 && !m->opts.cgroup && !m->name_mode; pass++) {
		int before = qn;
		for (int i = 0; i < m->nprocs; i++) {
			struct proc_ent *p = m->procs[i];
			if (p->gen == m->gen || p->pid <= 0 || p->start_ticks == UINT64_MAX ||
			    p->fd_stat < 0)
				continue;
			struct procfs_stat ps;
			if (rd(m, &p->fd_stat, p->dirfd, "stat", m->buf, sizeof m->buf) < 0 ||
			    procfs_parse_stat(m->buf, &ps))
				continue;
			int j = hash_find(m, ps.ppid);
			if (j >= 0 && m->procs[j]->gen == m->gen && queue_push(m, &qn, p->pid))
				return -ENOMEM;
		}
		if (qn == before)
			break;
		for (int i = before; i < qn; i++) {
			ts_prefetch(m, w, i, qn);
			r = visit(m, m->queue[i], w, &qn, 0);
			if (r == -ENOMEM)
				return r;
		}
	}
	m->nahead = 0; /* answers not used this round are never used later */
	sweep(m, gone, left);
	for (int i = 0; i < m->nprocs; i++)
		account(m, m->procs[i], &m->procs[i]->cur, m->procs[i]->fresh, m->procs[i]->base);
	if (m->opts.pid > 0) {
		int j = hash_find(m, m->opts.pid);
		if (j < 0 || (m->root_start && m->procs[j]->start_ticks != m->root_start))
			m->root_gone = 1;
		else if (!m->root_start)
			m->root_start = m->procs[j]->start_ticks;
	}
	return 0;
}

static int cmp_task(const void *a, const void *b)
{
	const struct monitor_task *x = a, *y = b;
	double dx = x->cpu_total_cores, dy = y->cpu_total_cores;
	if (dx != dy)
		return dx < dy ? 1 : -1;
	uint64_t sx = x->ctxsw_vol + x->ctxsw_invol, sy = y->ctxsw_vol + y->ctxsw_invol;
	if (sx != sy)
		return sx < sy ? 1 : -1;
	return (x->tid ? x->tid : x->pid) - (y->tid ? y->tid : y->pid);
}

static void fill_tasks(struct monitor *m, struct monitor_sample *s, double secs)
{
	s->tasks = NULL;
	s->ntasks = 0;
	if (m->opts.top_n <= 0 || secs <= 0)
		return;
	int need = 0;
	for (int i = 0; i < m->nprocs; i++)
		need += m->opts.threads ? m->procs[i]->ntasks : 1;
	if (need > m->captasks) {
		struct monitor_task *t = realloc(m->tasks, (size_t)need * sizeof *t);
		if (!t)
			return;
		m->tasks = t, m->captasks = need;
	}
	double tck = (double)m->tck;
	int n = 0;
	for (int i = 0; i < m->nprocs; i++) {
		struct proc_ent *p = m->procs[i];
		if (m->opts.threads) {
			for (int j = 0; j < p->ntasks; j++) {
				struct task_ent *t = &p->tasks[j];
				struct monitor_task *o = &m->tasks[n++];
				memset(o, 0, sizeof *o);
				o->pid = p->pid, o->tid = t->tid;
				memcpy(o->comm, p->comm, sizeof o->comm);
				o->cpu_user_cores = (double)t->d_ut / tck / secs;
				o->cpu_sys_cores = (double)t->d_st / tck / secs;
				o->ctxsw_vol = t->d_vol, o->ctxsw_invol = t->d_invol;
			}
		} else {
			struct monitor_task *o = &m->tasks[n++];
			memset(o, 0, sizeof *o);
			o->pid = p->pid;
			memcpy(o->comm, p->comm, sizeof o->comm);
			o->cpu_user_cores = (double)p->d_ut / tck / secs;
			o->cpu_sys_cores = (double)p->d_st / tck / secs;
			for (int j = 0; j < p->ntasks; j++)
				o->ctxsw_vol += p->tasks[j].d_vol, o->ctxsw_invol += p->tasks[j].d_invol;
		}
		m->tasks[n - 1].cpu_total_cores =
			m->tasks[n - 1].cpu_user_cores + m->tasks[n - 1].cpu_sys_cores;
	}
	qsort(m->tasks, (size_t)n, sizeof *m->tasks, cmp_task);
	s->tasks = m->tasks;
	s->ntasks = n < m->opts.top_n ? n : m->opts.top_n;
}

static int cpus_allowed(struct monitor *m)
{
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	if (m->opts.pid > 0 && !m->opts.cgroup) {
		cpu_set_t set;
		if (!sched_getaffinity(m->opts.pid, sizeof set, &set))
			return CPU_COUNT(&set);
	}
	return online > 0 ? (int)online : 1;
}

/* Fills s with acc - from over secs. */
static void fill(struct monitor *m, struct monitor_sample *s, const struct acc *now,
		 const struct acc *from, double secs)
{
	s->interval_s = secs;
	s->method = m->method;
	snprintf(s->method_reason, sizeof s->method_reason, "%s", m->method_reason);
	s->cpu_user_s = (double)dsub(now->cg_user_ns, from->cg_user_ns) / 1e9;
	s->cpu_sys_s = (double)dsub(now->cg_sys_ns, from->cg_sys_ns) / 1e9;
	snprintf(s->source, sizeof s->source, "%s", m->source);
	s->slow_every = m->slow_every;
	s->ts_batched = dsub(now->ts_batched, from->ts_batched);
	s->ts_single = dsub(now->ts_single, from->ts_single);
	s->kids_skipped = dsub(now->kids_skipped, from->kids_skipped);
	s->ctxsw_vol = dsub(now->vol, from->vol);
	s->ctxsw_invol = dsub(now->invol, from->invol);
	s->minflt = dsub(now->minflt, from->minflt);
	s->majflt = dsub(now->majflt, from->majflt);
	s->runq_wait_s = (double)dsub(now->wait_ns, from->wait_ns) / 1e9;
	if (secs > 0) {
		s->cpu_user_cores = s->cpu_user_s / secs;
		s->cpu_sys_cores = s->cpu_sys_s / secs;
		s->ctxsw_vol_per_s = (double)s->ctxsw_vol / secs;
		s->ctxsw_invol_per_s = (double)s->ctxsw_invol / secs;
	}
	s->cpu_total_cores = s->cpu_user_cores + s->cpu_sys_cores;
	s->cpus_allowed = cpus_allowed(m);
	s->cpu_pct = 100.0 * s->cpu_total_cores / (double)s->cpus_allowed;
	if (m->pe_on) {
		s->sw_ok = m->pe.ok[PERFEV_TASK_CLOCK];
		s->perf_per_cgroup = m->pe_cgroup;
		s->task_clock_ns = dsub(now->perf[PERFEV_TASK_CLOCK], from->perf[PERFEV_TASK_CLOCK]);
		s->perf_ctxsw = dsub(now->perf[PERFEV_CTXSW], from->perf[PERFEV_CTXSW]);
		s->cpu_migrations = dsub(now->perf[PERFEV_MIGRATIONS], from->perf[PERFEV_MIGRATIONS]);
		s->page_faults = dsub(now->perf[PERFEV_PAGE_FAULTS], from->perf[PERFEV_PAGE_FAULTS]);
		s->syscalls_ok = m->pe.ok[PERFEV_SYSCALLS];
		s->syscalls = dsub(now->perf[PERFEV_SYSCALLS], from->perf[PERFEV_SYSCALLS]);
		s->hw_ok = m->pe.ok[PERFEV_CYCLES] && m->pe.ok[PERFEV_INSTRUCTIONS];
		s->cycles = dsub(now->perf[PERFEV_CYCLES], from->perf[PERFEV_CYCLES]);
		s->instructions = dsub(now->perf[PERFEV_INSTRUCTIONS], from->perf[PERFEV_INSTRUCTIONS]);
		s->cache_misses = dsub(now->perf[PERFEV_CACHE_MISSES], from->perf[PERFEV_CACHE_MISSES]);
		s->dtlb_misses = dsub(now->perf[PERFEV_DTLB_MISSES], from->perf[PERFEV_DTLB_MISSES]);
		s->ipc = s->hw_ok && s->cycles ? (double)s->instructions / (double)s->cycles : 0;
		snprintf(s->na_reason, sizeof s->na_reason, "%s", m->pe.hw_reason);
		snprintf(s->sw_reason, sizeof s->sw_reason, "%s", m->pe.sw_reason);
		snprintf(s->syscalls_reason, sizeof s->syscalls_reason, "%s", m->pe.sc_reason);
	} else {
		snprintf(s->na_reason, sizeof s->na_reason, "n/a (perf counters not requested)");
		snprintf(s->sw_reason, sizeof s->sw_reason, "n/a (perf counters not requested)");
		snprintf(s->syscalls_reason, sizeof s->syscalls_reason,
			 "n/a (perf counters not requested)");
	}
}

/* Splits the span's exact CPU total (ns) into user and system in the ratio the tree's
 * processes show (their tick split, the one getrusage/pidstat/top report), falling back to
 * (fb_u, fb_s) when no process showed a tick; monotonic: each interval gets at most its own
 * total. u0/s0: the figures at the baseline. */
static void split_exact(struct monitor *m, uint64_t span, uint64_t fb_u, uint64_t fb_s,
			uint64_t u0, uint64_t s0)
{
	uint64_t dt = dsub(span, m->cg_span_done);
	uint64_t pu = m->acc.ut, ps = m->acc.st;
	double fu = pu + ps ? (double)pu / (double)(pu + ps)
		  : fb_u + fb_s ? (double)fb_u / (double)(fb_u + fb_s) : 1.0;
	double target = (double)span * fu - (double)m->cg_span_u;
	uint64_t add_u = target <= 0 ? 0 : target >= (double)dt ? dt : (uint64_t)(target + 0.5);
	m->cg_span_u += add_u;
	m->cg_span_done += dt;
	m->acc.cg_user_ns = u0 + m->cg_span_u;
	m->acc.cg_sys_ns = s0 + (m->cg_span_done - m->cg_span_u);
}

/* The task of event e in the table (a thread this walk read), found through its process (or,
 * when the kernel does not give the tgid, a process with its pid); NULL when not there. */
static struct task_ent *find_task(struct monitor *m, const struct tstats_exit *e)
{
	pid_t pids[2] = {e->tgid > 0 ? e->tgid : e->tid, e->tid};
	for (int i = 0; i < (e->tgid > 0 ? 1 : 2); i++) {
		int j = hash_find(m, pids[i]);
		if (j < 0)
			continue;
		struct proc_ent *p = m->procs[j];
		int lo = 0, hi = p->ntasks - 1;
		while (lo <= hi) {
			int mid = lo + (hi - lo) / 2;
			if (p->tasks[mid].tid == e->tid)
				return &p->tasks[mid];
			if (p->tasks[mid].tid < e->tid)
				lo = mid + 1;
			else
				hi = mid - 1;
		}
	}
	return NULL;
}

static int is_member(struct monitor *m, pid_t pid)
{
	if (pid <= 0)
		return 0;
	if (hash_find(m, pid) >= 0)
		return 1;
	for (int i = 0; i < m->ngrave; i++) /* sorted by tid: a process's leader has tid == pid */
		if (m->grave[i].tgid == pid)
			return 1;
	for (int i = 0; i < m->nmembers; i++)
		if (m->members[i] == pid)
			return 1;
	return 0;
}

/* Credits the switches of the tasks that exited, from the kernel's exit events: a task the
 * walks had read adds what it did since its last read (its tail, otherwise lost); a task
 * born and gone between two walks adds all of it when its process belongs to the tree (its
 * process, or for a process its parent, is one of the tree's, live, just gone, or itself
 * accepted from an event: children usually exit before their parents). A process's last
 * switch out, made after its event, is added to it, as getrusage counts it. Called right
 * after the walk: every task the walk no longer found has its event queued by then. */
static void credit_exits(struct monitor *m, int count)
{
	/* this round's events after the ones kept from the last round */
	int n = m->npend;
	for (;;) {
		if (m->capev - n < 256) {
			int nc = m->capev ? m->capev * 2 : 1024;
			struct tstats_exit *g = realloc(m->ev, (size_t)nc * sizeof *g);
			if (!g)
				break;
			m->ev = g, m->capev = nc;
		}
		int k = tstats_exits(&m->tl, m->ev + n, m->capev - n);
		if (k <= 0)
			break;
		n += k;
		if (k < m->capev - (n - k))
			break;
	}
	int npend = m->npend;
	m->nev = n;
	if (m->ngrave > 1)
		qsort(m->grave, (size_t)m->ngrave, sizeof *m->grave, cmp_sw);
	m->nghost = 0;
	m->nmembers = 0;
	unsigned char *done = calloc((size_t)(n ? n : 1), 1);
	if (!done)
		return;
	for (int i = 0; i < n; i++) {
		struct tstats_exit *e = &m->ev[i];
		struct task_ent *t = find_task(m, e);
		const struct swent *g = t ? NULL : sw_find(m->grave, m->ngrave, e->tid);
		if (!t && !g)
			continue;
		int leader = e->tgid ? e->tgid == e->tid : !!t && hash_find(m, e->tid) >= 0;
		if (g)
			leader = g->tgid == e->tid;
		uint64_t vol = e->vol + (uint64_t)leader, invol = e->invol;
		uint64_t lv = t ? t->vol : g->vol, li = t ? t->invol : g->invol;
		if (count) {
			m->acc.vol += dsub(vol, lv);
			m->acc.invol += dsub(invol, li);
		}
		if (t) {
			if (vol > t->vol)
				t->vol = vol;
			if (invol > t->invol)
				t->invol = invol;
		}
		done[i] = 1;
	}
	/* unseen tasks: accept through their process or parent, until nothing changes (a chain of
	 * processes that exited in one interval is reported child first) */
	for (int pass = 0, more = 1; more && pass < 16; pass++) {
		more = 0;
		for (int i = 0; i < n; i++) {
			struct tstats_exit *e = &m->ev[i];
			if (done[i])
				continue;
			int thread = e->tgid > 0 && e->tgid != e->tid;
			if (!(thread ? is_member(m, e->tgid) : is_member(m, e->ppid)))
				continue;
			uint64_t vol = e->vol + (uint64_t)!thread;
			if (count) {
				m->acc.vol += vol;
				m->acc.invol += e->invol;
			}
			sw_push(&m->ghost, &m->nghost, &m->capghost, e->tid, thread ? e->tgid : e->tid,
				vol, e->invol);
			if (!thread && m->nmembers < (1 << 20)) {
				if (m->nmembers == m->capmembers) {
					int nc = m->capmembers ? m->capmembers * 2 : 256;
					pid_t *g = realloc(m->members, (size_t)nc * sizeof *g);
					if (g)
						m->members = g, m->capmembers = nc;
				}
				if (m->nmembers < m->capmembers)
					m->members[m->nmembers++] = e->tid;
			}
			done[i] = 1;
			more = 1;
		}
	}
	if (m->nghost > 1)
		qsort(m->ghost, (size_t)m->nghost, sizeof *m->ghost, cmp_sw);
	/* keep this round's unresolved events one more round (their process may show up in the
	 * next walk's graveyard or events); the last round's are dropped */
	int k = 0;
	for (int i = npend; i < n; i++)
		if (!done[i])
			m->ev[k++] = m->ev[i];
	m->npend = k;
	free(done);
}

static int take(struct monitor *m, struct walk *w, int *gone, int *left)
{
	int r = walk(m, w, gone, left);
	if (r)
		return r;
	if (m->tl_ok)
		credit_exits(m, !w->first || m->opts.from_birth);
	if (m->have_reaped) {
		/* the root was reaped: its rusage covers the whole tree reaped inside it */
		if (m->acc.ut < m->reaped_ut)
			m->acc.ut = m->reaped_ut;
		if (m->acc.st < m->reaped_st)
			m->acc.st = m->reaped_st;
		if (m->acc.run_ns < m->reaped_ns)
			m->acc.run_ns = m->reaped_ns;
		/* switches: only from birth (the tree's switches before a later start are not
		 * known); this adds what exited processes did after their exit event (the
		 * involuntary switches of tearing them down), which only their reaper sees */
		if (m->opts.from_birth && m->acc.vol < m->reaped_vol)
			m->acc.vol = m->reaped_vol;
		if (m->opts.from_birth && m->acc.invol < m->reaped_invol)
			m->acc.invol = m->reaped_invol;
	}
	if (m->method != MONITOR_PROCWALK) {
		/* the cgroup's exact total; its own tick split only when no process of the tree
		 * showed CPU in the interval */
		uint64_t ru, rs;
		cg_read(m, &ru, &rs);
		if (w->first) {
			m->cg_u0 = m->opts.from_birth ? 0 : ru;
			m->cg_s0 = m->opts.from_birth ? 0 : rs;
			m->cg_tot0 = m->cg_u0 + m->cg_s0;
		}
		split_exact(m, dsub(ru + rs, m->cg_tot0), dsub(ru, m->cg_u0), dsub(rs, m->cg_s0),
			    m->cg_u0, m->cg_s0);
	} else {
		/* the walk's exact total (ns, never cut to ticks per process) */
		split_exact(m, m->acc.run_ns, m->acc.raw_u_us, m->acc.raw_s_us, 0, 0);
	}
	if (m->pe_on) {
		/* a thread that did not run keeps its counters' values, unless they are inherited
		 * by a task that may have counted: one outside the attached set that ran, was
		 * born or died, or one out of sight (left the tree) */
		if (w->first || m->opts.pid <= 0 || w->ran_unattached || *gone || *left ||
		    m->tot_left)
			perfev_unquiet(&m->pe);
		perfev_read(&m->pe, m->acc.perf);
	}
	return 0;
}

struct monitor *monitor_start(const struct monitor_opts *opts, char *err, size_t errlen)
{
	struct monitor *m = calloc(1, sizeof *m);
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	m->opts = *opts;
	m->cg_fd_stat = m->cg_fd_user = m->cg_fd_sys = m->cg_fd_usage = m->cg_fd_procs = -1;
	m->tck = sysconf(_SC_CLK_TCK);
	m->tick_ns = NS_PER_S / (uint64_t)(m->tck > 0 ? m->tck : 100);
	m->pagesize = sysconf(_SC_PAGESIZE);
	m->ts.fd = -1;
	m->tl.fd = -1;
	m->slow_every = 1;
	/* taskstats when the kernel gives it (root, CONFIG_TASKSTATS + TASK_DELAY_ACCT), else
	 * the per-thread /proc files; CTXLAB_MONITOR_PROC=1 forces the files (for tests) */
	const char *force = getenv("CTXLAB_MONITOR_PROC");
	if (force && *force && strcmp(force, "0")) {
		snprintf(m->source, sizeof m->source, "/proc (taskstats disabled by "
			 "CTXLAB_MONITOR_PROC)");
	} else if (!tstats_open(&m->ts)) {
		m->ts_ok = 1;
		m->tl_ok = !tstats_listen(&m->tl);
		snprintf(m->source, sizeof m->source, "taskstats%s%.100s",
			 m->tl_ok ? " + exit events" : "; exited tasks' last switches lost: ",
			 m->tl_ok ? "" : m->tl.why);
	} else {
		snprintf(m->source, sizeof m->source, "/proc (%.150s)", m->ts.why);
	}
	/* fork events (root, Linux >= 6.6): childless processes' children files skipped;
	 * CTXLAB_MONITOR_NO_FORKEV=1 reads every one (for tests and comparisons) */
	m->fe.fd = -1;
	const char *nofe = getenv("CTXLAB_MONITOR_NO_FORKEV");
	if (!opts->cgroup && !(nofe && *nofe && strcmp(nofe, "0")))
		m->fe_ok = !forkev_open(&m->fe);
	/* raise the soft fd limit: kept-open /proc fds are what makes sampling cheap */
	struct rlimit rl;
	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		if (rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
			getrlimit(RLIMIT_NOFILE, &rl);
		}
		m->fd_budget = (int)(rl.rlim_cur > 200000 ? 100000 : rl.rlim_cur / 2);
	}
	int targets = (opts->pid > 0) + (opts->cgroup != NULL) + (opts->name_regex != NULL);
	if (targets != 1) {
		snprintf(err, errlen, "give exactly one target: a pid, a cgroup or a name");
		goto fail;
	}
	if (opts->name_regex) {
		int rc = regcomp(&m->re, opts->name_regex, REG_EXTENDED | REG_NOSUB);
		if (rc) {
			char msg[128];
			regerror(rc, &m->re, msg, sizeof msg);
			snprintf(err, errlen, "bad regex '%s': %s", opts->name_regex, msg);
			goto fail;
		}
		m->name_mode = 1;
	}
	if (opts->pid > 0 && kill(opts->pid, 0) && errno == ESRCH) {
		snprintf(err, errlen, "no process %d (pass the pid of a running process)",
			 (int)opts->pid);
		goto fail;
	}
	if (hash_rebuild(m))
		goto oom;
	m->method = MONITOR_PROCWALK;
	snprintf(m->method_reason, sizeof m->method_reason,
		 "/proc walk + reaped children (the target has no cgroup of its own)");
	const char *cg = opts->cgroup ? opts->cgroup : opts->cpu_cgroup;
	if (cg) {
		if (cg_open(m, cg, err, errlen))
			goto fail;
		m->method = m->cg_version == 2 ? MONITOR_CGROUP2 : MONITOR_CGROUP1;
		snprintf(m->method_reason, sizeof m->method_reason, "%s of '%.100s'",
			 m->cg_version == 2 ? "cpu.stat" : "cpuacct.usage", cg);
	}
	if (opts->cgroup) {
		char path[600];
		snprintf(path, sizeof path, "%s/cgroup.procs", opts->cgroup);
		m->cg_fd_procs = open(path, O_RDONLY | O_CLOEXEC);
		if (m->cg_fd_procs < 0) {
			snprintf(err, errlen, "cannot open '%s': %s (pass a cgroup directory)", path,
				 strerror(errno));
			goto fail;
		}
	}
	m->sc_pct = NULL;
	if (!syscpu_open(&m->sc)) {
		m->sc_ok = 1;
		m->sc_pct = calloc((size_t)(1 + m->sc.maxcpus) * SYSCPU_N, sizeof(double));
		m->per_cpu = calloc((size_t)m->sc.maxcpus, sizeof *m->per_cpu);
		if (!m->sc_pct || !m->per_cpu)
			goto oom;
	}
	struct walk w = {.first = 1};
	int gone = 0, left = 0;
	if (take(m, &w, &gone, &left))
		goto oom;
	/* perf counters per cgroup and CPU when the target has a v2 cgroup of its own (every
	 * process counted in full, short-lived ones included), else per task, inherited */
	const char *pcg = opts->cgroup ? opts->cgroup : opts->cpu_cgroup;
	if (opts->perf_counters && pcg && m->cg_version == 2 && !getenv("CTXLAB_PERF_PER_TASK") &&
	    !perfev_attach_cgroup(&m->pe, pcg)) {
		m->pe_on = 1;
		m->pe_cgroup = 1;
		memcpy(m->acc.perf, m->pe.base, sizeof m->acc.perf);
	} else if (opts->perf_counters) {
		pid_t *pids = malloc((size_t)(m->nprocs ? m->nprocs : 1) * sizeof *pids);
		if (!pids)
			goto oom;
		for (int i = 0; i < m->nprocs; i++)
			pids[i] = m->procs[i]->pid;
		perfev_attach(&m->pe, pids, m->nprocs);
		free(pids);
		m->pe_on = 1;
		memcpy(m->acc.perf, m->pe.base, sizeof m->acc.perf);
	}
	m->seen_any = m->nprocs > 0;
	if (opts->from_birth) {
		/* everything since birth is in the span: the baseline is zero */
		struct acc z = {0};
		memcpy(z.perf, m->acc.perf, sizeof z.perf);
		m->base = m->prev = z;
	} else {
		m->base = m->prev = m->acc;
	}
	m->start_ns = m->prev_ns = clock_now_ns();
	return m;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	monitor_stop(m, NULL);
	return NULL;
}

static void syscpu_fill(struct monitor *m, struct monitor_sample *s)
{
	memset(&s->sys, 0, sizeof s->sys);
	s->ncpus = 0;
	s->per_cpu = NULL;
	if (!m->sc_ok || syscpu_read(&m->sc, m->sc_pct))
		return;
	for (int row = 0; row <= m->sc.ncpus; row++) {
		const double *p = m->sc_pct + (size_t)row * SYSCPU_N;
		struct monitor_syscpu c = {p[SYSCPU_US], p[SYSCPU_SY], p[SYSCPU_NI], p[SYSCPU_ID],
					   p[SYSCPU_WA], p[SYSCPU_HI], p[SYSCPU_SI], p[SYSCPU_ST]};
		if (row == 0)
			s->sys = c;
		else
			m->per_cpu[row - 1] = c;
	}
	if (m->opts.per_cpu) {
		s->ncpus = m->sc.ncpus;
		s->per_cpu = m->per_cpu;
	}
}

int monitor_sample(struct monitor *m, struct monitor_sample *s)
{
	memset(s, 0, sizeof *s);
	struct walk w = {0};
	int gone = 0, left = 0;
	m->nsamples++;
	w.slow = m->nsamples % (uint64_t)m->slow_every == 0;
	int r = take(m, &w, &gone, &left);
	if (r)
		return r;
	uint64_t now = clock_now_ns();
	if (w.slow && w.slow_n) {
		/* what a full refresh costs, against the interval: refresh every k-th interval
		 * so that it stays within SLOW_BUDGET of a core */
		double iv = (double)(now - m->prev_ns);
		double k = iv > 0 ? ceil((double)w.slow_ns / (SLOW_BUDGET * iv)) : 1;
		m->slow_every = k < 1 ? 1 : k > SLOW_MAX_EVERY ? SLOW_MAX_EVERY : (int)k;
		m->nsamples = 0;
	}
	double secs = (double)(now - m->prev_ns) / 1e9;
	fill(m, s, &m->acc, &m->prev, secs);
	s->procs = w.procs, s->threads = w.threads, s->fds = w.fds, s->sockets = w.sockets;
	s->rss_bytes = w.rss, s->pss_bytes = w.pss;
	s->gone = gone, s->left = left;
	m->tot_gone += gone, m->tot_left += left;
	if (w.procs)
		m->seen_any = 1;
	/* the target is gone: a pid tree whose root vanished, or a cgroup/name that is empty
	 * after having had processes */
	if (m->opts.pid > 0)
		s->exited = m->root_gone;
	else
		s->exited = m->seen_any && w.procs == 0;
	m->exited = s->exited;
	fill_tasks(m, s, secs);
	syscpu_fill(m, s);
	if (w.procs > m->max_procs) m->max_procs = w.procs;
	if (w.threads > m->max_threads) m->max_threads = w.threads;
	if (w.fds > m->max_fds) m->max_fds = w.fds;
	if (w.sockets > m->max_sockets) m->max_sockets = w.sockets;
	if (w.rss > m->max_rss) m->max_rss = w.rss;
	if (w.pss > m->max_pss) m->max_pss = w.pss;
	m->prev = m->acc;
	m->prev_ns = now;
	return 0;
}

int monitor_rebase(struct monitor *m)
{
	if (!m || m->opts.from_birth)
		return -EINVAL;
	struct monitor_sample s;
	int r = monitor_sample(m, &s);
	if (r)
		return r;
	m->base = m->prev;
	m->start_ns = m->prev_ns;
	m->tot_gone = m->tot_left = 0;
	return 0;
}

void monitor_reaped(struct monitor *m, const struct rusage *ru)
{
	double tck = (double)m->tck;
	double u = (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec / 1e6;
	double s = (double)ru->ru_stime.tv_sec + (double)ru->ru_stime.tv_usec / 1e6;
	/* the root's rusage covers its whole life; what the tree had at the baseline was
	 * before our span (accumulators start at 0 there) */
	double u_t = u * tck - (double)m->tree0_ut, s_t = s * tck - (double)m->tree0_st;
	m->reaped_ut = (uint64_t)(u_t > 0 ? u_t + 0.5 : 0);
	m->reaped_st = (uint64_t)(s_t > 0 ? s_t + 0.5 : 0);
	double n_t = (u + s) * 1e9 - (double)m->tree0_ns;
	m->reaped_ns = (uint64_t)(n_t > 0 ? n_t + 0.5 : 0);
	m->reaped_vol = ru->ru_nvcsw > 0 ? (uint64_t)ru->ru_nvcsw : 0;
	m->reaped_invol = ru->ru_nivcsw > 0 ? (uint64_t)ru->ru_nivcsw : 0;
	m->have_reaped = 1;
}

int monitor_stop(struct monitor *m, struct monitor_sample *total)
{
	if (!m)
		return -EINVAL;
	if (total) {
		memset(total, 0, sizeof *total);
		fill(m, total, &m->prev, &m->base, (double)(m->prev_ns - m->start_ns) / 1e9);
		total->procs = m->max_procs, total->threads = m->max_threads;
		total->fds = m->max_fds, total->sockets = m->max_sockets;
		total->rss_bytes = m->max_rss, total->pss_bytes = m->max_pss;
		total->gone = m->tot_gone, total->left = m->tot_left;
		total->exited = m->exited;
	}
	for (int i = 0; i < m->nprocs; i++)
		proc_free(m, m->procs[i]);
	free(m->procs);
	free(m->hash);
	free(m->queue);
	free(m->tids);
	free(m->tasks);
	free(m->scratch);
	tstats_close(&m->ts);
	tstats_close(&m->tl);
	if (m->fe_ok)
		forkev_close(&m->fe);
	free(m->feparents);
	free(m->ev);
	free(m->grave);
	free(m->ghost);
	free(m->members);
	free(m->big);
	free(m->sc_pct);
	free(m->per_cpu);
	if (m->sc_ok)
		syscpu_close(&m->sc);
	if (m->pe_on)
		perfev_close(&m->pe);
	if (m->name_mode)
		regfree(&m->re);
	int *fds[] = {&m->cg_fd_stat, &m->cg_fd_user, &m->cg_fd_sys, &m->cg_fd_usage, &m->cg_fd_procs};
	for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
		if (*fds[i] >= 0)
			close(*fds[i]);
	free(m);
	return 0;
}

/* ---- cgroups of ctxlab's own ----------------------------------------------------------- */

static ssize_t slurp(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t n = 0;
	for (;;) {
		ssize_t r = read(fd, buf + n, len - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n >= len - 1)
			break;
	}
	close(fd);
	buf[n] = 0;
	return (ssize_t)n;
}

/* Mount point of the cgroup2 hierarchy (v=2) or of the v1 one carrying cpuacct (v=1). */
static int cg_mount(int v, char *mnt, size_t len, char *mroot, size_t rlen)
{
	static char b[32768];
	if (slurp("/proc/self/mountinfo", b, sizeof b) < 0)
		return -errno;
	for (char *line = b; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		char *sep = strstr(line, " - ");
		char root[256], mp[256];
		if (sep && sscanf(line, "%*s %*s %*s %255s %255s", root, mp) == 2) {
			char fstype[32], opts[512];
			if (sscanf(sep + 3, "%31s %*s %511s", fstype, opts) == 2) {
				int hit = v == 2 ? !strcmp(fstype, "cgroup2")
						 : !strcmp(fstype, "cgroup") && strstr(opts, "cpuacct");
				if (hit) {
					snprintf(mnt, len, "%s", mp);
					snprintf(mroot, rlen, "%s", root);
					return 0;
				}
			}
		}
		line = nl ? nl + 1 : NULL;
	}
	return -ENOENT;
}

/* The caller's cgroup path in hierarchy v (2, or the v1 one with cpuacct), relative to it. */
static int cg_self(int v, char *path, size_t len)
{
	char b[4096];
	if (slurp("/proc/self/cgroup", b, sizeof b) < 0)
		return -errno;
	for (char *line = b; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (c1 && c2) {
			*c2 = 0;
			const char *ctrl = c1 + 1;
			int hit = v == 2 ? !strcmp(line, "0") && !*ctrl : !!strstr(ctrl, "cpuacct");
			if (hit) {
				snprintf(path, len, "%s", c2 + 1);
				return 0;
			}
		}
		line = nl ? nl + 1 : NULL;
	}
	return -ENOENT;
}

int monitor_cgroup_create(int want, const char *tag, char *path, size_t len, int *version,
			  char *err, size_t errlen)
{
	char why[2][160] = {"", ""};
	for (int v = 2; v >= 1; v--) {
		if (want && want != v)
			continue;
		char mnt[256], mroot[256], self[256] = "/";
		if (cg_mount(v, mnt, sizeof mnt, mroot, sizeof mroot)) {
			snprintf(why[v - 1], sizeof why[0], "no cgroup%s hierarchy mounted",
				 v == 2 ? "2" : " v1 cpuacct");
			continue;
		}
		if (v == 2) {
			/* a hierarchy without cpu.stat cannot account (pre-4.15 kernels) */
			char probe[300];
			snprintf(probe, sizeof probe, "%s/cpu.stat", mnt);
			if (access(probe, R_OK)) {
				snprintf(why[1], sizeof why[0], "'%.120s' not readable", probe);
				continue;
			}
		}
		cg_self(v, self, sizeof self);
		if (strcmp(mroot, "/") && !strncmp(self, mroot, strlen(mroot)))
			memmove(self, self + strlen(mroot), strlen(self + strlen(mroot)) + 1);
		for (int attempt = 0; attempt < 2; attempt++) {
			const char *parent = attempt == 0 && strcmp(self, "/") ? self : "";
			snprintf(path, len, "%s%s/ctxlab-%s-%d", mnt, parent, tag, (int)getpid());
			int made = !mkdir(path, 0755);
			if (!made && errno == EEXIST) {
				/* ours by name: left by a process that had our pid, or by an earlier
				 * call of ours that could not remove it. Never reused as it is: an
				 * empty one is made afresh, one that holds processes is refused. */
				if (rmdir(path) < 0) {
					snprintf(why[v - 1], sizeof why[0],
						 "the cgroup '%s' exists already and cannot be removed "
						 "(%s): not reused; remove it",
						 path, errno == EBUSY ? "it still holds processes"
								      : strerror(errno));
					break;
				}
				made = !mkdir(path, 0755);
			}
			if (made) {
				*version = v;
				return 0;
			}
			snprintf(why[v - 1], sizeof why[0], "cannot create '%s': %s", path,
				 strerror(errno));
		}
	}
	snprintf(err, errlen, "no cgroup of ctxlab's own: %s%s%s (run as root; falling back to "
		 "the /proc walk)", why[1], why[1][0] && why[0][0] ? "; " : "", why[0]);
	return -EACCES;
}

/* name "ctxlab-TAG-PID" (TAG letters): the pid, else 0 */
static pid_t cg_owner(const char *name)
{
	if (strncmp(name, "ctxlab-", 7))
		return 0;
	const char *p = name + 7;
	while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
		p++;
	if (p == name + 7 || *p != '-' || !p[1])
		return 0;
	char *end;
	long pid = strtol(p + 1, &end, 10);
	return *end || pid <= 0 || pid > 0x3fffffff ? 0 : (pid_t)pid;
}

static void sweep_dir(const char *dir, int *removed, char *note, size_t len)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		pid_t pid = cg_owner(e->d_name);
		if (!pid || pid == getpid() || kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		char path[600], procs[8];
		snprintf(path, sizeof path, "%s/%s/cgroup.procs", dir, e->d_name);
		ssize_t n = slurp(path, procs, sizeof procs);
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		size_t used = strlen(note);
		if (n != 0) { /* holds processes (or unreadable): an orphaned tree, left alone */
			snprintf(note + used, len - used, "%skept '%s' (its owner pid %d is gone but "
				 "it holds processes: stop them, then rmdir it)",
				 used ? "; " : "", path, (int)pid);
			continue;
		}
		if (rmdir(path) == 0) {
			(*removed)++;
			snprintf(note + used, len - used, "%sremoved '%s' (its owner pid %d is gone)",
				 used ? "; " : "", path, (int)pid);
		}
	}
	closedir(d);
}

int monitor_cgroup_sweep(char *note, size_t len)
{
	int removed = 0;
	note[0] = 0;
	for (int v = 2; v >= 1; v--) {
		char mnt[256], mroot[256], self[256] = "/";
		if (cg_mount(v, mnt, sizeof mnt, mroot, sizeof mroot))
			continue;
		cg_self(v, self, sizeof self);
		if (strcmp(mroot, "/") && !strncmp(self, mroot, strlen(mroot)))
			memmove(self, self + strlen(mroot), strlen(self + strlen(mroot)) + 1);
		sweep_dir(mnt, &removed, note, len);
		if (strcmp(self, "/") && self[0]) {
			char dir[600];
			snprintf(dir, sizeof dir, "%s%s", mnt, self);
			sweep_dir(dir, &removed, note, len);
		}
	}
	return removed;
}

static int cg_write_pid(const char *dir, pid_t pid)
{
	char path[600], num[24];
	snprintf(path, sizeof path, "%s/cgroup.procs", dir);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int n = snprintf(num, sizeof num, "%d\n", (int)pid);
	ssize_t w = write(fd, num, (size_t)n);
	int e = errno;
	close(fd);
	return w == n ? 0 : -e;
}

int monitor_cgroup_join(const char *path, pid_t pid) { return cg_write_pid(path, pid); }

int monitor_cgroup_leave(const char *path)
{
	char parent[600];
	snprintf(parent, sizeof parent, "%s", path);
	char *slash = strrchr(parent, '/');
	if (!slash)
		return -EINVAL;
	*slash = 0;
	return cg_write_pid(parent, 0);
}

int monitor_cgroup_remove(const char *path)
{
	for (int i = 0; i < 100; i++) {
		if (!rmdir(path) || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			return -errno;
		clock_sleep_ns(10 * NS_PER_MS); /* the last processes are still being released */
	}
	return -EBUSY;
}
