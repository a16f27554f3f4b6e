#include "monitor/perfev.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static long perf_open(struct perf_event_attr *a, pid_t tid)
{
	return syscall(SYS_perf_event_open, a, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

/* raw_syscalls:sys_enter's id from tracefs, or -errno. */
static long tracepoint_id(const char *ev)
{
	static const char *roots[] = {"/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events"};
	char path[256], buf[32];
	int err = -ENOENT;
	for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
		snprintf(path, sizeof path, "%s/%s/id", roots[i], ev);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			err = -errno;
			continue;
		}
		ssize_t n = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = 0;
		return strtol(buf, NULL, 10);
	}
	return err;
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

int perfev_hw_supported(char *reason, size_t len)
{
	if (force_no_hw()) {
		snprintf(reason, len, "not supported here (disabled by CTXLAB_PERF_NO_HW)");
		return 0;
	}
	struct perf_event_attr a;
	attr_for(PERFEV_CYCLES, 0, &a);
	a.inherit = 0;
	long fd = perf_open(&a, 0);
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

/* Appends the tids of pid into *tids (grown); returns the new count. */
static int list_tasks(pid_t pid, pid_t **tids, int n, int *cap)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return n;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		if (n == *cap) {
			int nc = *cap ? *cap * 2 : 64;
			pid_t *t = realloc(*tids, (size_t)nc * sizeof *t);
			if (!t)
				break;
			*tids = t, *cap = nc;
		}
		(*tids)[n++] = (pid_t)atoi(de->d_name);
	}
	closedir(d);
	return n;
}

int perfev_attach(struct perfev *p, const pid_t *pids, int npids)
{
	memset(p, 0, sizeof *p);
	pid_t *tids = NULL;
	int n = 0, cap = 0;
	for (int i = 0; i < npids; i++)
		n = list_tasks(pids[i], &tids, n, &cap);
	if (n > PERFEV_MAX_THREADS) {
		snprintf(p->sw_reason, sizeof p->sw_reason,
			 "n/a (tree has %d threads at start, more than %d: start the command under "
			 "watch with '-- CMD' instead)", n, PERFEV_MAX_THREADS);
		snprintf(p->hw_reason, sizeof p->hw_reason, "%s", p->sw_reason);
		snprintf(p->sc_reason, sizeof p->sc_reason, "%s", p->sw_reason);
		free(tids);
		return -E2BIG;
	}
	p->nthreads = n;
	p->fds = malloc(sizeof(int) * (size_t)(n ? n : 1) * PERFEV_N);
	if (!p->fds) {
		free(tids);
		return -ENOMEM;
	}
	for (int i = 0; i < n * PERFEV_N; i++)
		p->fds[i] = -1;
	char hwr[128];
	int hw = perfev_hw_supported(hwr, sizeof hwr);
	long tp = tracepoint_id("raw_syscalls/sys_enter");
	if (tp < 0)
		snprintf(p->sc_reason, sizeof p->sc_reason,
			 "n/a (tracefs not readable: %s; mount -t tracefs nodev /sys/kernel/tracing)",
			 strerror((int)-tp));
	if (!hw)
		snprintf(p->hw_reason, sizeof p->hw_reason, "%s", hwr);
	for (int id = 0; id < PERFEV_N; id++) {
		if (is_hw(id) && !hw)
			continue;
		if (id == PERFEV_SYSCALLS && tp < 0)
			continue;
		struct perf_event_attr a;
		attr_for(id, tp, &a);
		int opened = 0, lasterr = 0, gone = 0;
		for (int t = 0; t < n; t++) {
			long fd = perf_open(&a, tids[t]);
			if (fd < 0) {
				if (errno == ESRCH)
					gone++; /* the thread exited since it was listed */
				else
					lasterr = errno;
				continue;
			}
			p->fds[t * PERFEV_N + id] = (int)fd;
			opened++;
		}
		if (opened && opened + gone == n) {
			p->ok[id] = 1;
		} else {
			for (int t = 0; t < n; t++)
				if (p->fds[t * PERFEV_N + id] >= 0)
					close(p->fds[t * PERFEV_N + id]), p->fds[t * PERFEV_N + id] = -1;
			char *r = is_hw(id) ? p->hw_reason : id == PERFEV_SYSCALLS ? p->sc_reason
										    : p->sw_reason;
			if (!r[0])
				snprintf(r, 128, "n/a (perf_event_open: %s)",
					 strerror(lasterr ? lasterr : ESRCH));
		}
	}
	free(tids);
	perfev_read(p, p->base);
	memcpy(p->last, p->base, sizeof p->last);
	return p->ok[PERFEV_TASK_CLOCK] ? 0 : -ENOTSUP;
}

void perfev_read(struct perfev *p, uint64_t *cur)
{
	for (int id = 0; id < PERFEV_N; id++) {
		cur[id] = 0;
		if (!p->ok[id])
			continue;
		uint64_t sum = 0;
		for (int t = 0; t < p->nthreads; t++) {
			int fd = p->fds[t * PERFEV_N + id];
			uint64_t v[3];
			if (fd < 0 || read(fd, v, sizeof v) != (ssize_t)sizeof v)
				continue;
			if (v[2] && v[2] < v[1]) /* multiplexed: scale */
				v[0] = (uint64_t)((double)v[0] * (double)v[1] / (double)v[2]);
			sum += v[0];
		}
		/* never go backwards (a scaled estimate may wobble) */
		cur[id] = sum < p->last[id] ? p->last[id] : sum;
	}
}

void perfev_close(struct perfev *p)
{
	if (p->fds)
		for (int i = 0; i < p->nthreads * PERFEV_N; i++)
			if (p->fds[i] >= 0)
				close(p->fds[i]);
	free(p->fds);
	p->fds = NULL;
	p->nthreads = 0;
}
