#include "monitor/perfev.h"

#include "core/procfs.h"
#include "core/tracefs.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static long perf_open(struct perf_event_attr *a, pid_t tid, int group_fd)
{
	return syscall(SYS_perf_event_open, a, tid, -1, group_fd, PERF_FLAG_FD_CLOEXEC);
}

/* Row t's event: thread tids[t] (inherited by what it creates), or per cgroup CPU tids[t]. */
static long perf_open_row(const struct perfev *p, struct perf_event_attr *a, pid_t id, int group_fd)
{
	if (p->cg_fd < 0)
		return perf_open(a, id, group_fd);
	a->inherit = 0; /* a cgroup event counts every task of the cgroup on its CPU */
	return syscall(SYS_perf_event_open, a, p->cg_fd, (int)id, group_fd,
		       PERF_FLAG_FD_CLOEXEC | PERF_FLAG_PID_CGROUP);
}

static int force_no_hw(void)
{
	const char *e = getenv("CTXLAB_PERF_NO_HW"); /* test hook: exercise the fallback */
	return e && *e && strcmp(e, "0");
}

static void attr_for(enum perfev_id id, long tp, struct perf_event_attr *a)
{
	memset(a, 0, sizeof *a);
	a->size = sizeof *a;
	a->inherit = 1;
	a->read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
	a->exclude_hv = 1;
	switch (id) {
	case PERFEV_TASK_CLOCK:
		a->type = PERF_TYPE_SOFTWARE, a->config = PERF_COUNT_SW_TASK_CLOCK;
		break;
	case PERFEV_CTXSW:
		a->type = PERF_TYPE_SOFTWARE, a->config = PERF_COUNT_SW_CONTEXT_SWITCHES;
		break;
	case PERFEV_MIGRATIONS:
		a->type = PERF_TYPE_SOFTWARE, a->config = PERF_COUNT_SW_CPU_MIGRATIONS;
		break;
	case PERFEV_PAGE_FAULTS:
		a->type = PERF_TYPE_SOFTWARE, a->config = PERF_COUNT_SW_PAGE_FAULTS;
		break;
	case PERFEV_SYSCALLS:
		a->type = PERF_TYPE_TRACEPOINT, a->config = (uint64_t)tp;
		break;
	case PERFEV_CYCLES:
		a->type = PERF_TYPE_HARDWARE, a->config = PERF_COUNT_HW_CPU_CYCLES;
		break;
	case PERFEV_INSTRUCTIONS:
		a->type = PERF_TYPE_HARDWARE, a->config = PERF_COUNT_HW_INSTRUCTIONS;
		break;
	case PERFEV_CACHE_MISSES:
		a->type = PERF_TYPE_HARDWARE, a->config = PERF_COUNT_HW_CACHE_MISSES;
		break;
	case PERFEV_DTLB_MISSES:
		a->type = PERF_TYPE_HW_CACHE;
		a->config = PERF_COUNT_HW_CACHE_DTLB | (PERF_COUNT_HW_CACHE_OP_READ << 8) |
			    (PERF_COUNT_HW_CACHE_RESULT_MISS << 16);
		break;
	default:
		break;
	}
}

static int is_hw(int id) { return id >= PERFEV_CYCLES; }
static int leader_of(int id) { return is_hw(id) ? PERFEV_CYCLES : PERFEV_TASK_CLOCK; }

int perfev_hw_supported(char *reason, size_t len)
{
	if (force_no_hw()) {
		snprintf(reason, len, "not supported here (disabled by CTXLAB_PERF_NO_HW)");
		return 0;
	}
	struct perf_event_attr a;
	attr_for(PERFEV_CYCLES, 0, &a);
	a.inherit = 0;
	long fd = perf_open(&a, 0, -1);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT || e == EOPNOTSUPP || e == ENODEV)
			snprintf(reason, len, "not supported here (no hardware PMU: %s)", strerror(e));
		else
			snprintf(reason, len, "unavailable (perf_event_open: %s)", strerror(e));
		return 0;
	}
	close((int)fd);
	return 1;
}

static void close_event(struct perfev *p, int id)
{
	for (int t = 0; t < p->nthreads; t++)
		if (p->fds[t * PERFEV_N + id] >= 0)
			close(p->fds[t * PERFEV_N + id]), p->fds[t * PERFEV_N + id] = -1;
}

/* Opens event id on every thread: a group leader, a member of its leader's group (grouped),
 * or on its own. Returns how many opened; *gone counts threads that exited (or whose leader
 * did not open), *lasterr the last other errno. */
static int open_event(struct perfev *p, int id, long tp, const pid_t *tids, int n, int grouped,
		      int *lasterr, int *gone)
{
	struct perf_event_attr a;
	attr_for(id, tp, &a);
	if (grouped)
		a.read_format |= PERF_FORMAT_GROUP | PERF_FORMAT_ID;
	int lead = leader_of(id), opened = 0;
	*lasterr = 0, *gone = 0;
	for (int t = 0; t < n; t++) {
		int gfd = -1;
		if (grouped && id != lead) {
			gfd = p->fds[t * PERFEV_N + lead];
			if (gfd < 0) {
				(*gone)++; /* its thread was gone when the leader was opened */
				continue;
			}
		}
		long fd = perf_open_row(p, &a, tids[t], gfd);
		if (fd < 0) {
			if (errno == ESRCH || (p->cg_fd >= 0 && errno == ENODEV))
				(*gone)++; /* the thread exited since it was listed (a CPU offline) */
			else
				*lasterr = errno;
			continue;
		}
		uint64_t eid = 0;
		if (grouped && ioctl((int)fd, PERF_EVENT_IOC_ID, &eid) < 0) {
			*lasterr = EINVAL; /* cannot tell members apart: not grouped */
			close((int)fd);
			continue;
		}
		p->fds[t * PERFEV_N + id] = (int)fd;
		p->ids[t * PERFEV_N + id] = eid;
		opened++;
	}
	return opened;
}

static int cmp_tid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return x < y ? -1 : x > y;
}

static int tid_index(const struct perfev *p, pid_t tid)
{
	int lo = 0, hi = p->nthreads - 1;
	while (p->tids && lo <= hi) {
		int mid = lo + (hi - lo) / 2;
		if (p->tids[mid] == tid)
			return mid;
		if (p->tids[mid] < tid)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

int perfev_attached(const struct perfev *p, pid_t tid)
{
	return p->cg_fd < 0 && tid_index(p, tid) >= 0;
}

int perfev_quiet(struct perfev *p, pid_t tid)
{
	if (p->cg_fd >= 0)
		return 0; /* per CPU: every task of the cgroup counts there */
	int t = tid_index(p, tid);
	if (t < 0)
		return 0;
	p->quiet[t] = 1;
	return 1;
}

void perfev_unquiet(struct perfev *p)
{
	if (p->quiet)
		memset(p->quiet, 0, (size_t)p->nthreads);
}

static int attach_rows(struct perfev *p, pid_t *tids, int n);

int perfev_attach(struct perfev *p, const pid_t *pids, int npids)
{
	memset(p, 0, sizeof *p);
	p->cg_fd = -1;
	pid_t *tids = NULL;
	int n = 0, cap = 0;
	for (int i = 0; i < npids; i++) {
		int r = procfs_list_tasks(-1, pids[i], &tids, n, &cap);
		if (r >= 0) /* else gone, or out of memory: the threads listed so far */
			n = r;
	}
	if (n > PERFEV_MAX_THREADS) {
		snprintf(p->sw_reason, sizeof p->sw_reason,
			 "n/a (tree has %d threads at start, more than %d: start the command under "
			 "watch with '-- CMD' instead)", n, PERFEV_MAX_THREADS);
		snprintf(p->hw_reason, sizeof p->hw_reason, "%s", p->sw_reason);
		snprintf(p->sc_reason, sizeof p->sc_reason, "%s", p->sw_reason);
		free(tids);
		return -E2BIG;
	}
	return attach_rows(p, tids, n);
}

int perfev_attach_cgroup(struct perfev *p, const char *cgdir)
{
	memset(p, 0, sizeof *p);
	p->cg_fd = open(cgdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p->cg_fd < 0) {
		int e = errno;
		snprintf(p->sw_reason, sizeof p->sw_reason, "n/a (cannot open '%.80s': %s)", cgdir,
			 strerror(e));
		return -e;
	}
	long n = sysconf(_SC_NPROCESSORS_CONF);
	if (n < 1)
		n = 1;
	pid_t *cpus = malloc((size_t)n * sizeof *cpus);
	if (!cpus) {
		close(p->cg_fd);
		p->cg_fd = -1;
		return -ENOMEM;
	}
	for (long c = 0; c < n; c++)
		cpus[c] = (pid_t)c;
	int r = attach_rows(p, cpus, (int)n);
	if (r) {
		perfev_close(p);
		return r;
	}
	return 0;
}

/* Opens every event on every row (threads, or a cgroup's CPUs); takes tids. */
static int attach_rows(struct perfev *p, pid_t *tids, int n)
{
	p->nthreads = n;
	if (n)
		qsort(tids, (size_t)n, sizeof *tids, cmp_tid);
	size_t rows = (size_t)(n ? n : 1);
	p->fds = malloc(sizeof(int) * rows * PERFEV_N);
	p->ids = calloc(rows * PERFEV_N, sizeof(uint64_t));
	p->tval = calloc(rows * PERFEV_N, sizeof(uint64_t));
	p->quiet = calloc(rows, 1);
	if (!p->fds || !p->ids || !p->tval || !p->quiet) {
		free(p->fds), free(p->ids), free(p->tval), free(p->quiet), free(tids);
		int cg = p->cg_fd;
		memset(p, 0, sizeof *p);
		p->cg_fd = cg;
		return -ENOMEM;
	}
	for (int i = 0; i < n * PERFEV_N; i++)
		p->fds[i] = -1;
	char hwr[128];
	int hw = perfev_hw_supported(hwr, sizeof hwr);
	char tpr[256];
	long tp = tracefs_event_id("raw_syscalls/sys_enter", tpr, sizeof tpr);
	if (tp < 0)
		snprintf(p->sc_reason, sizeof p->sc_reason, "n/a (%s)", tpr);
	if (!hw)
		snprintf(p->hw_reason, sizeof p->hw_reason, "%s", hwr);
	for (int id = 0; id < PERFEV_N; id++) {
		if (is_hw(id) && !hw)
			continue;
		if (id == PERFEV_SYSCALLS && tp < 0)
			continue;
		int lead = leader_of(id);
		int grouped = id == lead ? 1 : p->ok[lead] && p->grouped[lead];
		int opened, lasterr, gone;
		opened = open_event(p, id, tp, tids, n, grouped, &lasterr, &gone);
		if (grouped && !(opened && opened + gone == n) && lasterr == EINVAL) {
			/* the kernel will not group this one (or inherit a group): on its own */
			close_event(p, id);
			grouped = 0;
			opened = open_event(p, id, tp, tids, n, grouped, &lasterr, &gone);
		}
		p->grouped[id] = grouped;
		if (opened && opened + gone == n) {
			p->ok[id] = 1;
		} else {
			close_event(p, id);
			char *r = is_hw(id) ? p->hw_reason : id == PERFEV_SYSCALLS ? p->sc_reason
										    : p->sw_reason;
			if (!r[0])
				snprintf(r, 128, "n/a (perf_event_open: %s)",
					 strerror(lasterr ? lasterr : ESRCH));
		}
	}
	p->tids = tids;
	perfev_read(p, p->base);
	memcpy(p->last, p->base, sizeof p->last);
	return p->ok[PERFEV_TASK_CLOCK] ? 0 : -ENOTSUP;
}

/* value scaled by enabled/running when the counter was multiplexed */
static uint64_t scaled(uint64_t v, uint64_t ena, uint64_t run)
{
	if (run && run < ena)
		return (uint64_t)((double)v * (double)ena / (double)run);
	return v;
}

/* One PERF_FORMAT_GROUP read of thread t's group led by lead into val[] (its tval row). */
static void read_group(struct perfev *p, int t, int lead, uint64_t *val)
{
	int fd = p->fds[t * PERFEV_N + lead];
	uint64_t buf[3 + 2 * PERFEV_N]; /* nr, time_enabled, time_running, {value, id}[nr] */
	if (fd < 0)
		return;
	ssize_t got = read(fd, buf, sizeof buf);
	if (got < (ssize_t)(3 * sizeof(uint64_t)))
		return;
	uint64_t nr = buf[0], have = ((uint64_t)got / sizeof(uint64_t) - 3) / 2;
	if (nr > have)
		nr = have;
	const uint64_t *ids = p->ids + t * PERFEV_N;
	for (uint64_t i = 0; i < nr; i++) {
		uint64_t v = buf[3 + 2 * i], eid = buf[4 + 2 * i];
		for (int id = 0; id < PERFEV_N; id++) {
			if (p->ok[id] && p->grouped[id] && leader_of(id) == lead &&
			    p->fds[t * PERFEV_N + id] >= 0 && ids[id] == eid) {
				val[id] = scaled(v, buf[1], buf[2]);
				break;
			}
		}
	}
}

void perfev_read(struct perfev *p, uint64_t *cur)
{
	uint64_t sum[PERFEV_N] = {0};
	for (int t = 0; t < p->nthreads; t++) {
		/* a thread's values stay as last read when its read fails or it is quiet */
		uint64_t *val = p->tval + t * PERFEV_N;
		for (int id = 0; id < PERFEV_N && !p->quiet[t]; id++) {
			if (!p->ok[id])
				continue;
			if (p->grouped[id]) {
				if (id == leader_of(id))
					read_group(p, t, id, val);
				continue;
			}
			int fd = p->fds[t * PERFEV_N + id];
			uint64_t v[3];
			if (fd < 0 || read(fd, v, sizeof v) != (ssize_t)sizeof v)
				continue;
			val[id] = scaled(v[0], v[1], v[2]);
		}
		p->quiet[t] = 0;
		for (int id = 0; id < PERFEV_N; id++)
			sum[id] += val[id];
	}
	/* never go backwards (a scaled estimate may wobble) */
	for (int id = 0; id < PERFEV_N; id++)
		cur[id] = !p->ok[id] ? 0 : sum[id] < p->last[id] ? p->last[id] : sum[id];
	memcpy(p->last, cur, sizeof p->last);
}

void perfev_close(struct perfev *p)
{
	if (p->fds)
		for (int i = 0; i < p->nthreads * PERFEV_N; i++)
			if (p->fds[i] >= 0)
				close(p->fds[i]);
	free(p->fds);
	free(p->ids);
	free(p->tids);
	free(p->tval);
	free(p->quiet);
	p->fds = NULL;
	p->ids = NULL;
	p->tids = NULL;
	p->tval = NULL;
	p->quiet = NULL;
	p->nthreads = 0;
	if (p->cg_fd >= 0)
		close(p->cg_fd);
	p->cg_fd = -1;
}
