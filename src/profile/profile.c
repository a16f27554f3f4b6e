#include "profile/profile.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/tracefs.h"
#include "core/log.h"
#include "core/procfs.h"
#include "core/spawn.h"
#include "core/units.h"
#include "profile/symbols.h"
#include "profile/unwind.h"

#define ONCPU_PAGES 64
#define OFFCPU_PAGES 128
#define RAW_MAX_BYTES (512u << 20) /* raw samples kept in memory at most */
#define RESNAP_MAX 8               /* maps re-snapshots per process */

enum { KIND_ON = 0, KIND_OFF = 1 };

/* A raw sample as stored until symbolization; followed by nr u64 callchain entries. */
struct raw {
	uint32_t snap;
	uint32_t tid;
	uint64_t time;
	uint64_t period;
	uint32_t nr;
	uint32_t kind;
	uint32_t uw;  /* UW_* */
	uint32_t extra; /* UW_DEFER: bytes after the chain (struct deferred, then the stack) */
	uint32_t pid;   /* the sample's process (its own, not the snapshot's: a forked child
			 * shares its parent's snapshot), for opts.focus_pid */
	uint32_t pad;
};

/* A sample whose image was unknown when it was drained (a child whose fork record is in
 * another CPU's ring, not read yet): its registers and stack are kept and unwound when
 * symbolizing, once inherit_image has given it its parent's image. */
struct deferred {
	uint64_t regs[UNWIND_NREGS];
	uint64_t dyn;
	uint64_t full;
};

/* How a raw sample's user part was obtained (struct raw.uw) */
#define UW_DWARF 1u     /* unwound from the stack copy */
#define UW_FP 2u        /* the kernel's frame-pointer chain */
#define UW_TRUNC 4u     /* DWARF: the copy was too small */
#define UW_FAIL 8u      /* DWARF: a frame could not be unwound */
#define UW_DEFER 16u    /* not unwound yet: struct deferred and the stack follow the chain */
#define MAX_UFRAMES 127

struct swin {
	uint32_t tid;
	uint64_t time;
};

struct snap {
	pid_t pid;
	char comm[20];
	char *maps; /* NULL when the process was gone before it could be read */
};

struct pident {
	pid_t pid;   /* 0 = empty slot */
	int cur;     /* current snapshot index, -1 = none (take one at the next sample) */
	int resnaps;
	int sampled;
	char comm[20]; /* from PERF_RECORD_COMM, "" = unknown */
};

struct ring {
	int fd;
	void *base;
	size_t size; /* data area bytes */
	size_t mmap_len;
};

struct prof {
	const struct profile_opts *o;
	struct profile_result *res;
	struct ring *on, *off; /* [ncpu] */
	int *cpus, ncpu;
	int cgfd;               /* cgroup mode: the cgroup directory, else -1 */
	unsigned long pflags;   /* perf_event_open flags */
	int *fds;
	size_t nfds, capfds;
	struct buf raw;
	int raw_full;
	struct swin *sw;
	size_t nsw, capsw;
	struct snap *snaps;
	size_t nsnaps, capsnaps;
	struct pident *pids;
	size_t npids, nslots;
	struct symbols *sy;     /* for unwinding while draining, then symbolizing */
	struct lockey *lk;      /* res->locs' index: (image, address, kernel) -> index + 1 */
	size_t nlk;
	const char **mapkey;    /* per res->maps entry: the maps text it came from */
	size_t capmaps, caplocs;
	int want_stack;         /* samples carry user regs and a stack copy */
	uint64_t chain[2 * MAX_UFRAMES + 8]; /* a sample's callchain with the unwound user part */
	unsigned char rec[65536 + 8];
};

static long perf_open(struct perf_event_attr *a, pid_t tid, int cpu, int group,
		      unsigned long flags)
{
	return syscall(SYS_perf_event_open, a, tid, cpu, group, flags | PERF_FLAG_FD_CLOEXEC);
}

static int read_paranoid(void)
{
	int v = 99;
	FILE *f = fopen("/proc/sys/kernel/perf_event_paranoid", "re");
	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = 99;
		fclose(f);
	}
	return v;
}

static int hw_forced_off(void)
{
	const char *e = getenv("CTXLAB_PERF_NO_HW");
	return e && e[0] && strcmp(e, "0");
}

/* Test hook: CTXLAB_PROFILE_ATTACH_DELAY_MS=N holds the profiler N ms between opening the
 * events and starting the window, as a preemption on a loaded machine does. */
static void attach_delay(void)
{
	const char *e = getenv("CTXLAB_PROFILE_ATTACH_DELAY_MS");
	long ms = e ? strtol(e, NULL, 10) : 0;
	if (ms > 0 && ms <= 10000)
		clock_sleep_ns((uint64_t)ms * NS_PER_MS);
}

static uint32_t stack_bytes(const struct profile_opts *o)
{
	return o->stack_size ? o->stack_size : UNWIND_STACK_DEFAULT;
}

/* Ring pages per CPU: room for about 256 samples with their stack copies (at 999 Hz a
 * quarter of a second of one CPU: the profiler unwinds as it drains). */
static int ring_pages(const struct profile_opts *o, int base)
{
	if (o->call_graph == PROFILE_CG_FP)
		return base;
	int pages = base;
	while (pages < 4096 && (uint64_t)pages * 4096 < (uint64_t)stack_bytes(o) * 256)
		pages *= 2;
	return pages;
}

/* DWARF/auto: user registers and a copy of the user stack with every sample. */
static void attr_stack(struct perf_event_attr *a, const struct profile_opts *o)
{
	if (o->call_graph == PROFILE_CG_FP)
		return;
	a->sample_type |= PERF_SAMPLE_REGS_USER | PERF_SAMPLE_STACK_USER;
	a->sample_regs_user = UNWIND_REGS_MASK;
	a->sample_stack_user = stack_bytes(o);
	if (o->call_graph == PROFILE_CG_DWARF)
		a->exclude_callchain_user = 1; /* the kernel's walk would be thrown away */
	a->wakeup_watermark = (uint32_t)ring_pages(o, a->type == PERF_TYPE_TRACEPOINT ?
						   OFFCPU_PAGES : ONCPU_PAGES) * 4096 / 4;
}

static void attr_sampling(struct perf_event_attr *a, const struct profile_opts *o, int hz)
{
	memset(a, 0, sizeof(*a));
	a->size = sizeof(*a);
	if (o->event == PROFILE_EV_CYCLES) {
		a->type = PERF_TYPE_HARDWARE;
		a->config = PERF_COUNT_HW_CPU_CYCLES;
	} else {
		a->type = PERF_TYPE_SOFTWARE;
		a->config = PERF_COUNT_SW_CPU_CLOCK;
	}
	a->freq = 1;
	a->sample_freq = (uint64_t)hz;
	a->sample_type = PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_PERIOD |
			 PERF_SAMPLE_CALLCHAIN;
	a->inherit = o->cgroup ? 0 : 1; /* a cgroup event is per CPU: nothing to inherit */
	a->disabled = o->cgroup ? 1 : 0; /* per cgroup: enabled with the window (profile_run) */
	a->comm = 1;
	a->comm_exec = 1;
	a->task = 1; /* PERF_RECORD_FORK: a child starts with its parent's name and image */
	a->sample_id_all = 1;
	a->exclude_hv = 1;
	a->exclude_idle = 1;
	a->exclude_kernel = o->user_only ? 1 : 0;
	a->exclude_callchain_kernel = o->user_only ? 1 : 0;
	a->sample_max_stack = 127;
	a->watermark = 1;
	a->wakeup_watermark = ONCPU_PAGES * 4096 / 4;
	attr_stack(a, o);
}

static void attr_offcpu(struct perf_event_attr *a, const struct profile_opts *o, int tp)
{
	memset(a, 0, sizeof(*a));
	a->size = sizeof(*a);
	a->type = PERF_TYPE_TRACEPOINT;
	a->config = (uint64_t)tp;
	a->sample_period = 1;
	a->sample_type = PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_CALLCHAIN;
	a->inherit = o->cgroup ? 0 : 1;
	a->disabled = o->cgroup ? 1 : 0;
	a->context_switch = 1;
	a->sample_id_all = 1;
	a->exclude_callchain_kernel = o->user_only ? 1 : 0;
	a->sample_max_stack = 127;
	a->watermark = 1;
	a->wakeup_watermark = OFFCPU_PAGES * 4096 / 4;
	attr_stack(a, o);
}

int profile_event_supported(enum profile_event ev, char *reason, size_t len)
{
	if (ev == PROFILE_EV_CYCLES && hw_forced_off()) {
		snprintf(reason, len, "not supported here (hardware events disabled by "
			 "CTXLAB_PERF_NO_HW)");
		return 0;
	}
	struct profile_opts o = {.event = ev, .user_only = 1};
	struct perf_event_attr a;
	attr_sampling(&a, &o, 99);
	a.inherit = 0;
	a.disabled = 1;
	long fd = perf_open(&a, 0, -1, -1, 0);
	if (fd >= 0) {
		close((int)fd);
		return 1;
	}
	int e = errno;
	if (e == ENOENT || e == EOPNOTSUPP || e == ENODEV || e == EINVAL)
		snprintf(reason, len, "not supported here (perf_event_open: %s; no hardware PMU, "
			 "as on most VMs)", strerror(e));
	else if (e == EACCES || e == EPERM)
		snprintf(reason, len, "permission denied (perf_event_open: %s; "
			 "kernel.perf_event_paranoid=%d: run as root or lower it)", strerror(e),
			 read_paranoid());
	else
		snprintf(reason, len, "unavailable (perf_event_open: %s)", strerror(e));
	return 0;
}

/* ---- targets ------------------------------------------------------------------------ */

static int root_alive(pid_t pid)
{
	struct procfs_stat st;
	if (procfs_read_stat(pid, &st))
		return 0;
	return st.state != 'Z' && st.state != 'X';
}

static int online_cpus(int **cpus)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	char line[1024] = "";
	FILE *f = fopen("/sys/devices/system/cpu/online", "re");
	if (f) {
		if (!fgets(line, sizeof line, f))
			line[0] = 0;
		fclose(f);
	}
	line[strcspn(line, "\n")] = 0;
	char err[128];
	if (!line[0] || units_parse_cpulist(line, &set, err, sizeof err) < 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		for (long i = 0; i < n && i < CPU_SETSIZE; i++)
			CPU_SET(i, &set);
	}
	int n = CPU_COUNT(&set);
	*cpus = calloc((size_t)(n ? n : 1), sizeof(int));
	if (!*cpus)
		return -ENOMEM;
	int k = 0;
	for (int i = 0; i < CPU_SETSIZE && k < n; i++)
		if (CPU_ISSET(i, &set))
			(*cpus)[k++] = i;
	return k;
}

/* ---- cgroups ----------------------------------------------------------------------- */

/* err for a cgroup event perf_event_open refused with errno e. Returns -e. */
static int cgroup_error(int e, const char *path, char *err, size_t errlen)
{
	if (e == EACCES || e == EPERM)
		return errbuf(err, errlen, "cannot sample cgroup '%s': per-CPU events not permitted "
			      "(perf_event_open: %s; kernel.perf_event_paranoid=%d): run as root, or "
			      "'sysctl kernel.perf_event_paranoid=0'", path, strerror(e),
			      read_paranoid()), -e;
	if (e == EBADF || e == ENOENT) /* not a cgroup directory / one of another hierarchy */
		return errbuf(err, errlen, "'%s' is not a cgroup of the perf_event hierarchy "
			      "(perf_event_open: %s): pass a cgroup v2 directory, e.g. "
			      "/sys/fs/cgroup/NAME (perf_event must not be bound to a v1 hierarchy: "
			      "see /proc/cgroups)", path, strerror(e)), -e;
	return errbuf(err, errlen, "cannot sample cgroup '%s': perf_event_open: %s", path,
		      strerror(e)), -e;
}

/* Opens the cgroup directory: the fd, or -errno with err filled. */
static int cgroup_open(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	int e = errno;
	errbuf(err, errlen, "cannot open cgroup '%s': %s (pass a cgroup v2 directory, e.g. "
	       "/sys/fs/cgroup/NAME)", path, strerror(e));
	return -e;
}

static int first_online_cpu(void)
{
	int *cpus = NULL;
	int n = online_cpus(&cpus);
	int c = n > 0 ? cpus[0] : 0;
	free(cpus);
	return c;
}

int profile_cgroup_usable(const char *path, char *reason, size_t len)
{
	int cg = cgroup_open(path, reason, len);
	if (cg < 0)
		return 0;
	struct perf_event_attr a;
	memset(&a, 0, sizeof a);
	a.size = sizeof a;
	a.type = PERF_TYPE_SOFTWARE;
	a.config = PERF_COUNT_SW_CPU_CLOCK;
	a.disabled = 1;
	long fd = perf_open(&a, cg, first_online_cpu(), -1, PERF_FLAG_PID_CGROUP);
	int e = errno;
	close(cg);
	if (fd >= 0) {
		close((int)fd);
		return 1;
	}
	cgroup_error(e, path, reason, len);
	return 0;
}

/* 1 when the cgroup (or one below it) has a process, 0 when not, -1 when unknown. */
static int cgroup_populated(const char *path)
{
	char f[4200], b[512];
	snprintf(f, sizeof f, "%s/cgroup.events", path);
	int fd = open(f, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, b, sizeof b - 1);
		close(fd);
		if (n > 0) {
			b[n] = 0;
			const char *q = strstr(b, "populated ");
			if (q)
				return q[10] == '1';
		}
	}
	snprintf(f, sizeof f, "%s/cgroup.procs", path); /* v1: this cgroup's own processes */
	fd = open(f, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, b, 1);
	close(fd);
	return n < 0 ? -1 : n > 0;
}

/* CPU the cgroup has used (cpu.stat usage_usec, v2; cpuacct.usage where perf_event shares
 * a v1 hierarchy with cpuacct). 0, or -1 when neither is readable. */
static int cgroup_cpu_ns(const char *path, uint64_t *ns)
{
	char f[4200], b[1024];
	snprintf(f, sizeof f, "%s/cpu.stat", path);
	FILE *fp = fopen(f, "re");
	if (fp) {
		unsigned long long us;
		int ok = 0;
		while (fgets(b, sizeof b, fp))
			if (sscanf(b, "usage_usec %llu", &us) == 1) {
				*ns = (uint64_t)us * 1000;
				ok = 1;
				break;
			}
		fclose(fp);
		if (ok)
			return 0;
	}
	snprintf(f, sizeof f, "%s/cpuacct.usage", path);
	fp = fopen(f, "re");
	if (fp) {
		unsigned long long v;
		int ok = fscanf(fp, "%llu", &v) == 1;
		fclose(fp);
		if (ok) {
			*ns = (uint64_t)v;
			return 0;
		}
	}
	return -1;
}

/* utime+stime+cutime+cstime of a process, in clock ticks (0 when it is gone). Its children
 * reaped so far are in cutime/cstime, its exited threads in utime/stime. */
static uint64_t proc_cpu_ticks(pid_t pid)
{
	struct procfs_stat st;
	if (procfs_read_stat(pid, &st))
		return 0;
	return st.ut + st.st + st.cut + st.cst;
}

/* CPU used so far by the trees of the roots (every live process once; the reaped ones through
 * their parents' cutime). 0, or -1 on allocation failure. */
static int tree_cpu_ns(const struct profile_opts *o, uint64_t *ns)
{
	pid_t *desc = malloc(PROFILE_MAX_THREADS * sizeof(*desc));
	if (!desc)
		return -1;
	uint64_t ticks = 0;
	for (int i = 0; i < o->npids; i++) {
		ticks += proc_cpu_ticks(o->pids[i]);
		int nd = spawn_descendants(o->pids[i], desc, PROFILE_MAX_THREADS);
		for (int j = 0; j < nd && j < PROFILE_MAX_THREADS; j++)
			ticks += proc_cpu_ticks(desc[j]);
	}
	free(desc);
	long hz = sysconf(_SC_CLK_TCK);
	*ns = ticks * (NS_PER_S / (uint64_t)(hz > 0 ? hz : 100));
	return 0;
}

/* The target's CPU so far (see profile.h: target_cpu_ns). 0 or -1 (unknown). */
static int target_cpu_ns(const struct profile_opts *o, uint64_t *ns)
{
	return o->cgroup ? cgroup_cpu_ns(o->cgroup, ns) : tree_cpu_ns(o, ns);
}

/* ---- rings ------------------------------------------------------------------------- */

static int ring_map(struct ring *r, int fd, int pages)
{
	long pg = sysconf(_SC_PAGESIZE);
	for (int p = pages; p >= 4; p /= 2) {
		size_t len = (size_t)(p + 1) * (size_t)pg;
		void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (m != MAP_FAILED) {
			r->fd = fd;
			r->base = m;
			r->size = (size_t)p * (size_t)pg;
			r->mmap_len = len;
			return 0;
		}
		if (errno != EPERM && errno != ENOMEM)
			return -errno;
	}
	return -errno;
}

static int add_fd(struct prof *p, int fd)
{
	if (p->nfds == p->capfds) {
		size_t cap = p->capfds ? p->capfds * 2 : 64;
		int *n = realloc(p->fds, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		p->fds = n;
		p->capfds = cap;
	}
	p->fds[p->nfds++] = fd;
	return 0;
}

/* Opens attr on tid/cpu and routes it into ring r (mapping r on first use). 0, or -errno
 * from perf_event_open (-ESRCH: the thread is gone). */
static int open_into(struct prof *p, struct perf_event_attr *a, pid_t tid, int cpu,
		     struct ring *r, int pages)
{
	long fd = perf_open(a, tid, cpu, -1, p->pflags);
	if (fd < 0)
		return -errno;
	int e = add_fd(p, (int)fd);
	if (e) {
		close((int)fd);
		return e;
	}
	if (r->fd < 0)
		return ring_map(r, (int)fd, pages);
	if (ioctl((int)fd, PERF_EVENT_IOC_SET_OUTPUT, r->fd) < 0)
		return -errno;
	return 0;
}

/* ---- pids and snapshots ------------------------------------------------------------ */

static struct pident *pid_get(struct prof *p, pid_t pid)
{
	if ((p->npids + 1) * 2 > p->nslots) {
		size_t ns = p->nslots ? p->nslots * 2 : 64;
		struct pident *n = calloc(ns, sizeof(*n));
		if (!n)
			return NULL;
		for (size_t i = 0; i < p->nslots; i++) {
			if (!p->pids[i].pid)
				continue;
			size_t j = (size_t)p->pids[i].pid * 2654435761u & (ns - 1);
			while (n[j].pid)
				j = (j + 1) & (ns - 1);
			n[j] = p->pids[i];
		}
		free(p->pids);
		p->pids = n;
		p->nslots = ns;
	}
	size_t j = (size_t)pid * 2654435761u & (p->nslots - 1);
	while (p->pids[j].pid && p->pids[j].pid != pid)
		j = (j + 1) & (p->nslots - 1);
	if (!p->pids[j].pid) {
		p->pids[j] = (struct pident){.pid = pid, .cur = -1};
		p->npids++;
	}
	return &p->pids[j];
}

static void read_comm(pid_t pid, char *out, size_t len)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
	out[0] = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, out, len - 1);
		close(fd);
		if (n > 0) {
			out[n] = 0;
			out[strcspn(out, "\n")] = 0;
		} else {
			out[0] = 0;
		}
	}
	if (!out[0])
		snprintf(out, len, "[pid %d]", (int)pid);
}

static int snap_new(struct prof *p, struct pident *pe)
{
	if (p->nsnaps == p->capsnaps) {
		size_t cap = p->capsnaps ? p->capsnaps * 2 : 32;
		struct snap *n = realloc(p->snaps, cap * sizeof(*n));
		if (!n)
			return -1;
		p->snaps = n;
		p->capsnaps = cap;
	}
	struct snap *s = &p->snaps[p->nsnaps];
	size_t len;
	s->pid = pe->pid;
	if (pe->pid == -1) {
		/* the kernel gives pid -1 for a task already unhashed in its last steps of exit
		 * (exit_mmap and so on): whose it was is lost, its kernel stack is not */
		s->maps = NULL;
		snprintf(s->comm, sizeof s->comm, "[exiting]");
		pe->cur = (int)p->nsnaps;
		return (int)p->nsnaps++;
	}
	s->maps = symbols_snapshot_maps(pe->pid, &len);
	if (pe->comm[0])
		snprintf(s->comm, sizeof s->comm, "%s", pe->comm);
	else
		read_comm(pe->pid, s->comm, sizeof s->comm);
	pe->cur = (int)p->nsnaps;
	return (int)p->nsnaps++;
}

static int snap_for(struct prof *p, pid_t pid, uint64_t user_ip)
{
	struct pident *pe = pid_get(p, pid);
	if (!pe)
		return -1;
	pe->sampled = 1;
	if (pe->cur < 0)
		return snap_new(p, pe);
	struct snap *s = &p->snaps[pe->cur];
	if (user_ip && s->maps && pe->resnaps < RESNAP_MAX && !symbols_maps_covers(s->maps, user_ip)) {
		int old = pe->cur;
		pe->resnaps++;
		int n = snap_new(p, pe);
		if (n >= 0 && !p->snaps[n].maps) {
			/* the process is gone: the image it had (its parent's, or its own earlier
			 * snapshot) resolves more than nothing */
			p->nsnaps--;
			pe->cur = old;
			pe->resnaps = RESNAP_MAX;
			return old;
		}
		return n;
	}
	return pe->cur;
}

/* A new process (fork) has its parent's image until it execs: share the parent's snapshot,
 * or fill in the child's when it was taken too late (the child already gone). */
static void inherit_image(struct prof *p, pid_t child, pid_t parent)
{
	struct pident *pp = pid_get(p, parent);
	if (!pp)
		return;
	int was = pp->sampled;
	int ps = snap_for(p, parent, 0);
	pp = pid_get(p, parent);
	if (pp)
		pp->sampled = was; /* looked up here, not sampled */
	if (ps < 0)
		return;
	struct pident *ce = pid_get(p, child);
	if (!ce)
		return;
	if (ce->cur < 0) {
		ce->cur = ps;
		return;
	}
	struct snap *cs = &p->snaps[ce->cur], *src = &p->snaps[ps];
	if (cs != src && !cs->maps && src->maps && cs->pid == child) {
		cs->maps = strdup(src->maps);
		memcpy(cs->comm, src->comm, sizeof cs->comm);
	}
}

/* ---- reading records --------------------------------------------------------------- */

struct lockey {
	const char *maps;
	uint64_t addr;
	uint32_t kernel, idx; /* idx: index + 1, 0 = empty slot */
};

static size_t lk_hash(const char *maps, uint64_t addr, uint32_t kernel, size_t n)
{
	uint64_t h = (uint64_t)(uintptr_t)maps * 0x9e3779b97f4a7c15ULL ^ addr * 0xff51afd7ed558ccdULL ^
		     kernel;
	return (size_t)(h ^ h >> 29) & (n - 1);
}

/* The index in res->maps of the mapping holding addr in image maps, or -1. */
static int map_index(struct prof *p, const char *maps, uint64_t addr)
{
	struct profile_result *res = p->res;
	uint64_t lo, hi, off;
	char path[512], bid[128];
	for (size_t i = 0; i < res->nmaps; i++)
		if (p->mapkey[i] == maps && addr >= res->maps[i].start && addr < res->maps[i].limit)
			return (int)i;
	if (!symbols_mapping(p->sy, maps, addr, &lo, &hi, &off, path, sizeof path, bid, sizeof bid))
		return -1;
	if (res->nmaps == p->capmaps) {
		size_t cap = p->capmaps ? p->capmaps * 2 : 64;
		struct pprof_map *n = realloc(res->maps, cap * sizeof(*n));
		const char **k = n ? realloc(p->mapkey, cap * sizeof(*k)) : NULL;
		if (n)
			res->maps = n;
		if (!k)
			return -1;
		p->mapkey = k;
		p->capmaps = cap;
	}
	char *f = strdup(path), *b = strdup(bid);
	if (!f || !b) {
		free(f);
		free(b);
		return -1;
	}
	res->maps[res->nmaps] = (struct pprof_map){lo, hi, off, f, b, 1, 0};
	p->mapkey[res->nmaps] = maps;
	return (int)res->nmaps++;
}

/* The index in res->locs of (image, address, kernel), made with its name, file:line and
 * mapping on first use; -1 on ENOMEM. pc: the address as sampled; a: where it is looked up. */
static long loc_index(struct prof *p, const char *maps, uint64_t pc, uint64_t a, int kernel,
		      const char *name)
{
	struct profile_result *res = p->res;
	if ((res->nlocs + 1) * 2 > p->nlk) {
		size_t n = p->nlk ? p->nlk * 2 : 4096;
		struct lockey *t = calloc(n, sizeof(*t));
		if (!t)
			return -1;
		for (size_t i = 0; i < p->nlk; i++) {
			if (!p->lk[i].idx)
				continue;
			size_t j = lk_hash(p->lk[i].maps, p->lk[i].addr, p->lk[i].kernel, n);
			while (t[j].idx)
				j = (j + 1) & (n - 1);
			t[j] = p->lk[i];
		}
		free(p->lk);
		p->lk = t;
		p->nlk = n;
	}
	if (kernel)
		maps = NULL;
	size_t j = lk_hash(maps, pc, (uint32_t)kernel, p->nlk);
	while (p->lk[j].idx) {
		if (p->lk[j].maps == maps && p->lk[j].addr == pc && p->lk[j].kernel == (uint32_t)kernel)
			return (long)p->lk[j].idx - 1;
		j = (j + 1) & (p->nlk - 1);
	}
	if (res->nlocs == p->caplocs) {
		size_t cap = p->caplocs ? p->caplocs * 2 : 1024;
		struct pprof_loc *n = realloc(res->locs, cap * sizeof(*n));
		if (!n)
			return -1;
		res->locs = n;
		p->caplocs = cap;
	}
	struct pprof_loc *l = &res->locs[res->nlocs];
	const char *file = NULL;
	int line = 0;
	*l = (struct pprof_loc){.addr = pc, .map = -1};
	l->func = strdup(name);
	if (kernel) {
		l->file = strdup("[kernel.kallsyms]");
	} else if (maps) {
		l->map = map_index(p, maps, a);
		if (symbols_srcline(p->sy, maps, a, &file, &line)) {
			l->file = strdup(file);
			l->line = line;
			if (l->map >= 0)
				res->maps[l->map].has_lines = 1;
		}
	}
	if (!l->func)
		return -1;
	p->lk[j] = (struct lockey){maps, pc, (uint32_t)kernel, (uint32_t)res->nlocs + 1};
	return (long)res->nlocs++;
}

static void append_loc(struct buf *b, long idx)
{
	char t[24];
	int n = snprintf(t, sizeof t, ";%ld", idx);
	buf_append(b, t, (size_t)n);
}

/* Whether a function is where a thread's stack begins (the unwinding reached its root). */
static int is_stack_root(const char *fn)
{
	static const char *const roots[] = {"_start", "__libc_start_main", "__libc_start_call_main",
					    "main", "clone", "clone3", "__clone", "__clone3",
					    "start_thread", "__GI___clone", "__GI___clone3",
					    "__libc_start_main_impl", NULL};
	for (int i = 0; roots[i]; i++)
		if (!strcmp(fn, roots[i]))
			return 1;
	return 0;
}

/* The user part of a sample with a stack copy (DWARF/auto): replaces the frame-pointer part
 * of the callchain q[0..nr) in p->chain by the frames unwound from regs and stack (or keeps
 * it, in auto mode, where every frame lies in a module built with frame pointers). Returns
 * the new chain's length; *uw says how. */
static uint64_t user_part(struct prof *p, const struct snap *sn, uint32_t tid,
			  const unsigned char *q, uint64_t nr, const uint64_t *regs,
			  const unsigned char *stack, uint64_t dyn, int full, uint32_t *uw)
{
	uint64_t k = 0, ufirst = nr;
	for (uint64_t i = 0; i < nr; i++) {
		uint64_t v;
		memcpy(&v, q + i * 8, 8);
		if (v == (uint64_t)PERF_CONTEXT_USER) {
			ufirst = i;
			break;
		}
	}
	for (k = 0; k < ufirst && k < MAX_UFRAMES + 2; k++)
		memcpy(&p->chain[k], q + k * 8, 8);
	if (p->o->call_graph == PROFILE_CG_AUTO && ufirst + 1 < nr && sn->maps) {
		/* The frame-pointer walk is right while every frame's function keeps a frame
		 * record: each frame is read from its callee's record, so the first frame in a
		 * module without frame pointers is still right, the ones above it are not --
		 * accepted when it is a thread's start (libc's __libc_start_call_main,
		 * start_thread calling fp-built code), else the copy is unwound. The leaf must
		 * have set up its own record (its caller comes from it): unwind.h. */
		uint64_t end = nr, leaf;
		memcpy(&leaf, q + (ufirst + 1) * 8, 8);
		int fp = unwind_leaf_has_frame(p->sy, sn->maps, leaf);
		for (uint64_t i = ufirst + 1; i < nr && fp; i++) {
			uint64_t v;
			memcpy(&v, q + i * 8, 8);
			if (v >= (uint64_t)PERF_CONTEXT_MAX) {
				fp = 0;
				break;
			}
			if (unwind_module_has_fp(p->sy, sn->maps, v) == 1)
				continue;
			char tmp[300];
			fp = i > ufirst + 1 &&
			     is_stack_root(symbols_user(p->sy, sn->maps, v - 1, tmp, sizeof tmp));
			end = i + 1;
			break;
		}
		if (fp) {
			for (uint64_t i = ufirst; i < end && k < sizeof p->chain / 8; i++)
				memcpy(&p->chain[k++], q + i * 8, 8);
			*uw = UW_FP;
			return k;
		}
	}
	if (!regs || !sn->maps) { /* a kernel thread, or an image we could not read */
		if (p->o->call_graph == PROFILE_CG_AUTO && ufirst < nr) { /* the walk, as it is */
			for (uint64_t i = ufirst; i < nr && k < sizeof p->chain / 8; i++)
				memcpy(&p->chain[k++], q + i * 8, 8);
			*uw = UW_FP;
			return k;
		}
		*uw = regs ? UW_DWARF | UW_FAIL : 0;
		return k;
	}
	struct unwind_input in = {regs, stack, (size_t)dyn, full};
	enum unwind_status st;
	p->chain[k++] = (uint64_t)PERF_CONTEXT_USER;
	int n = unwind_user(p->sy, sn->maps, (pid_t)tid, &in, &p->chain[k], MAX_UFRAMES, &st);
	k += (uint64_t)n;
	*uw = UW_DWARF | (st == UNWIND_TRUNCATED ? UW_TRUNC : st == UNWIND_FAILED ? UW_FAIL : 0);
	return k;
}

static void store_sample(struct prof *p, int kind, const unsigned char *q, const unsigned char *end)
{
	uint64_t period = 0;
	uint32_t pid, tid;
	uint64_t time, nr;
	if (kind == KIND_ON) {
		if (end - q < 8)
			return;
		q += 8; /* ip: the callchain's first entry repeats it */
	}
	if (end - q < 16)
		return;
	memcpy(&pid, q, 4);
	memcpy(&tid, q + 4, 4);
	memcpy(&time, q + 8, 8);
	q += 16;
	if (kind == KIND_ON) {
		if (end - q < 8)
			return;
		memcpy(&period, q, 8);
		q += 8;
	}
	if (end - q < 8)
		return;
	memcpy(&nr, q, 8);
	q += 8;
	if (nr > (uint64_t)(end - q) / 8)
		return;
	const unsigned char *chain = q;
	uint64_t regs[UNWIND_NREGS], dyn = 0, size = 0;
	const unsigned char *stack = NULL;
	int have_regs = 0;
	if (p->want_stack) { /* REGS_USER: abi, regs; STACK_USER: size, data, dyn_size */
		const unsigned char *r = q + nr * 8;
		uint64_t abi;
		if (end - r < 8)
			return;
		memcpy(&abi, r, 8);
		r += 8;
		if (abi != PERF_SAMPLE_REGS_ABI_NONE) {
			if ((size_t)(end - r) < sizeof regs)
				return;
			memcpy(regs, r, sizeof regs);
			r += sizeof regs;
			have_regs = abi == PERF_SAMPLE_REGS_ABI_64;
		}
		if (end - r < 8)
			return;
		memcpy(&size, r, 8);
		r += 8;
		if (size) {
			if ((uint64_t)(end - r) < size + 8)
				return;
			stack = r;
			memcpy(&dyn, r + size, 8);
			if (dyn > size)
				dyn = size;
		}
	}
	if (p->raw_full || buf_used(&p->raw) + sizeof(struct raw) + sizeof p->chain > RAW_MAX_BYTES) {
		p->raw_full = 1;
		p->res->lost++;
		return;
	}
	uint64_t uip = 0;
	if (have_regs)
		uip = regs[8]; /* P_IP's slot */
	for (uint64_t i = 0; !uip && i + 1 < nr; i++) {
		uint64_t v;
		memcpy(&v, q + i * 8, 8);
		if (v == (uint64_t)PERF_CONTEXT_USER) {
			memcpy(&uip, q + (i + 1) * 8, 8);
			break;
		}
	}
	int s = snap_for(p, (pid_t)pid, uip);
	if (s < 0)
		return;
	uint32_t uw = nr ? UW_FP : 0;
	if (p->want_stack && have_regs && !p->snaps[s].maps && p->snaps[s].pid > 0) {
		/* no image yet: keep what is needed to unwind later (struct deferred) */
		struct deferred df = {.dyn = dyn, .full = size && dyn == size};
		memcpy(df.regs, regs, sizeof regs);
		uint32_t extra = (uint32_t)(sizeof df + ((dyn + 7) & ~7ULL));
		struct raw r = {(uint32_t)s, tid, time, period, (uint32_t)nr, (uint32_t)kind,
				UW_DEFER, extra, pid, 0};
		if (buf_reserve(&p->raw, sizeof r + nr * 8 + extra))
			return;
		static const unsigned char zero[8];
		buf_append(&p->raw, &r, sizeof r);
		buf_append(&p->raw, chain, nr * 8);
		buf_append(&p->raw, &df, sizeof df);
		buf_append(&p->raw, stack, (size_t)dyn);
		buf_append(&p->raw, zero, (size_t)(((dyn + 7) & ~7ULL) - dyn));
		return;
	}
	if (p->want_stack) {
		nr = user_part(p, &p->snaps[s], tid, chain, nr, have_regs ? regs : NULL, stack, dyn,
			       size && dyn == size, &uw);
		chain = (const unsigned char *)p->chain;
	}
	struct raw r = {(uint32_t)s, tid, time, period, (uint32_t)nr, (uint32_t)kind, uw, 0, pid, 0};
	if (buf_reserve(&p->raw, sizeof r + nr * 8))
		return;
	buf_append(&p->raw, &r, sizeof r);
	buf_append(&p->raw, chain, nr * 8);
}

/* A deferred sample (UW_DEFER) unwound now: r and *ips updated to the unwound chain. */
static void undefer(struct prof *p, struct raw *r, const uint64_t **ips)
{
	if (!(r->uw & UW_DEFER))
		return;
	struct deferred df;
	const unsigned char *q = (const unsigned char *)*ips;
	memcpy(&df, q + (size_t)r->nr * 8, sizeof df);
	const unsigned char *stack = q + (size_t)r->nr * 8 + sizeof df;
	uint32_t uw = 0;
	uint64_t n = user_part(p, &p->snaps[r->snap], r->tid, q, r->nr, df.regs, stack, df.dyn,
			       (int)df.full, &uw);
	r->nr = (uint32_t)n;
	r->uw = uw;
	*ips = p->chain;
}

static void handle(struct prof *p, int kind, const unsigned char *rec, size_t len)
{
	struct perf_event_header h;
	memcpy(&h, rec, sizeof h);
	const unsigned char *q = rec + sizeof h, *end = rec + len;
	switch (h.type) {
	case PERF_RECORD_SAMPLE:
		store_sample(p, kind, q, end);
		break;
	case PERF_RECORD_LOST:
		if (end - q >= 16) {
			uint64_t lost;
			memcpy(&lost, q + 8, 8);
			p->res->lost += lost;
		}
		break;
	case PERF_RECORD_COMM:
		if (end - q > 8) {
			uint32_t pid, tid;
			memcpy(&pid, q, 4);
			memcpy(&tid, q + 4, 4);
			if (pid == tid) {
				struct pident *pe = pid_get(p, (pid_t)pid);
				if (pe) {
					/* at most 16 bytes, and none past the record */
					int cl = end - q - 8 < 16 ? (int)(end - q - 8) : 16;
					snprintf(pe->comm, sizeof pe->comm, "%.*s", cl,
						 (const char *)q + 8);
					if (h.misc & PERF_RECORD_MISC_COMM_EXEC) {
						pe->cur = -1; /* new image: snapshot again */
						pe->resnaps = 0;
					}
				}
			}
		}
		break;
	case PERF_RECORD_FORK:
		if (end - q >= 16) {
			uint32_t pid, ppid;
			memcpy(&pid, q, 4);
			memcpy(&ppid, q + 4, 4);
			if (pid != ppid)
				inherit_image(p, (pid_t)pid, (pid_t)ppid);
		}
		break;
	case PERF_RECORD_SWITCH_CPU_WIDE:
		/* cgroup mode: next_prev_pid, next_prev_tid, then the same sample_id as below */
		q += 8;
		/* fall through */
	case PERF_RECORD_SWITCH:
		/* sample_id: pid, tid (the task switched in), time */
		if (!(h.misc & PERF_RECORD_MISC_SWITCH_OUT) && end - q >= 16) {
			uint32_t tid;
			uint64_t time;
			memcpy(&tid, q + 4, 4);
			memcpy(&time, q + 8, 8);
			if (p->nsw == p->capsw) {
				size_t cap = p->capsw ? p->capsw * 2 : 4096;
				if (cap * sizeof(struct swin) > RAW_MAX_BYTES / 4)
					break;
				struct swin *n = realloc(p->sw, cap * sizeof(*n));
				if (!n)
					break;
				p->sw = n;
				p->capsw = cap;
			}
			p->sw[p->nsw++] = (struct swin){tid, time};
		}
		break;
	default:
		break;
	}
}

static void drain(struct prof *p, struct ring *r, int kind)
{
	if (r->fd < 0)
		return;
	struct perf_event_mmap_page *mp = r->base;
	const unsigned char *data = (const unsigned char *)r->base + mp->data_offset;
	size_t size = mp->data_size ? mp->data_size : r->size;
	uint64_t head = __atomic_load_n(&mp->data_head, __ATOMIC_ACQUIRE);
	uint64_t tail = mp->data_tail;
	while (tail + sizeof(struct perf_event_header) <= head) {
		struct perf_event_header h;
		for (size_t i = 0; i < sizeof h; i++)
			((unsigned char *)&h)[i] = data[(tail + i) % size];
		if (h.size < sizeof h || tail + h.size > head)
			break;
		size_t off = (size_t)(tail % size);
		if (off + h.size <= size) {
			memcpy(p->rec, data + off, h.size);
		} else {
			size_t first = size - off;
			memcpy(p->rec, data + off, first);
			memcpy(p->rec + first, data, h.size - first);
		}
		tail += h.size;
		/* the record is copied out: give its room back before unwinding it */
		__atomic_store_n(&mp->data_tail, tail, __ATOMIC_RELEASE);
		handle(p, kind, p->rec, h.size);
	}
	__atomic_store_n(&mp->data_tail, tail, __ATOMIC_RELEASE);
}

static void drain_all(struct prof *p)
{
	for (int c = 0; c < p->ncpu; c++) {
		drain(p, &p->on[c], KIND_ON);
		drain(p, &p->off[c], KIND_OFF);
	}
}

/* ---- symbolization ----------------------------------------------------------------- */

static void append_frame(struct buf *b, const char *name, int kernel)
{
	buf_append(b, ";", 1);
	folded_append_frame(b, name);
	if (kernel)
		buf_append(b, "_[k]", 4);
}

struct frame_ref {
	uint64_t addr;
	int kernel, exact;
};

/* The outermost user frame of the sample fold_sample last folded: set by fold_sample. */
struct outer {
	int has_user;
	int root;
	uint64_t addr;
};

/* Builds "comm;user outermost..;user leaf;kernel outermost..;kernel leaf" for one sample. */
static int fold_sample(struct prof *p, struct symbols *sy, const struct raw *r,
		       const uint64_t *ips, struct buf *out, struct frame_ref *fr,
		       struct outer *ot, struct buf *lout)
{
	struct outer dummy;
	if (!ot)
		ot = &dummy;
	memset(ot, 0, sizeof *ot);
	const struct snap *s = &p->snaps[r->snap];
	buf_clear(out);
	folded_append_frame(out, s->comm); /* comm is the task's to choose: ';', '\n'... */
	buf_clear(lout);
	folded_append_frame(lout, s->comm);
	int n = 0, ctx = 0, first_in_ctx = 0;
	for (uint32_t i = 0; i < r->nr && n < 256; i++) {
		uint64_t ip = ips[i];
		if (ip >= (uint64_t)PERF_CONTEXT_MAX) {
			ctx = ip == (uint64_t)PERF_CONTEXT_KERNEL ? 1 : ip == (uint64_t)PERF_CONTEXT_USER ? 2 : 0;
			first_in_ctx = 1;
			continue;
		}
		if (!ctx)
			continue;
		fr[n++] = (struct frame_ref){ip, ctx == 1, first_in_ctx};
		first_in_ctx = 0;
	}
	int kern = 0;
	/* user frames come after kernel frames in the chain: print user (reversed), then kernel */
	for (int i = n - 1; i >= 0; i--) {
		if (fr[i].kernel)
			continue;
		char tmp[300];
		uint64_t a = fr[i].exact ? fr[i].addr : fr[i].addr - 1;
		const char *name = symbols_user(sy, s->maps, a, tmp, sizeof tmp);
		if (!ot->has_user) {
			ot->has_user = 1;
			ot->root = is_stack_root(name);
			ot->addr = a;
		}
		append_loc(lout, loc_index(p, s->maps, fr[i].addr, a, 0, name));
		append_frame(out, name, 0);
	}
	for (int i = n - 1; i >= 0; i--) {
		if (!fr[i].kernel)
			continue;
		uint64_t a = fr[i].exact ? fr[i].addr : fr[i].addr - 1;
		const char *kn = symbols_kernel(sy, a);
		append_loc(lout, loc_index(p, NULL, fr[i].addr, a, 1, kn));
		append_frame(out, kn, 1);
		kern = 1;
	}
	if (n == 0) {
		append_frame(out, "[unknown]", 0);
		append_loc(lout, loc_index(p, NULL, 0, 0, 0, "[unknown]"));
	}
	return kern;
}

struct offev {
	uint32_t tid;
	uint64_t time;
	size_t raw_off; /* SIZE_MAX for a switch-in */
};

static int cmp_offev(const void *a, const void *b)
{
	const struct offev *x = a, *y = b;
	if (x->tid != y->tid)
		return x->tid < y->tid ? -1 : 1;
	if (x->time != y->time)
		return x->time < y->time ? -1 : 1;
	/* at equal times the switch-out comes first */
	return (x->raw_off == SIZE_MAX) - (y->raw_off == SIZE_MAX);
}

struct worst {
	char name[64];
	uint64_t n;
};
#define NWORST 32

/* Counts one on-CPU sample in res->unwind (profile.h) */
static void quality_add(struct prof *p, const struct raw *r, const struct outer *ot,
			struct worst *w, int *nw)
{
	struct profile_unwind *u = &p->res->unwind;
	if (!ot->has_user)
		return;
	u->user_stacks++;
	u->by_dwarf += !!(r->uw & UW_DWARF);
	u->by_fp += !!(r->uw & UW_FP);
	if (ot->root) {
		u->complete++;
		return;
	}
	if (r->uw & UW_TRUNC)
		u->truncated++;
	else
		u->unresolved++;
	char mod[64];
	if (!symbols_module_of(p->snaps[r->snap].maps, ot->addr, mod, sizeof mod))
		snprintf(mod, sizeof mod, "[unknown]");
	int i = 0;
	while (i < *nw && strcmp(w[i].name, mod))
		i++;
	if (i == *nw) {
		if (*nw == NWORST)
			return;
		snprintf(w[i].name, sizeof w[i].name, "%s", mod);
		w[i].n = 0;
		(*nw)++;
	}
	if (++w[i].n > u->worst_count) {
		u->worst_count = w[i].n;
		snprintf(u->worst, sizeof u->worst, "%s", w[i].name);
	}
}

static int symbolize(struct prof *p)
{
	struct profile_result *res = p->res;
	struct symbols *sy = p->sy;
	struct worst worst[NWORST];
	int nworst = 0;
	struct buf line = BUF_INIT, lline = BUF_INIT;
	struct frame_ref *fr = malloc(256 * sizeof(*fr));
	struct offev *ev = NULL;
	size_t nev = 0, capev = 0;
	int rc = -ENOMEM;
	if (!sy || !fr)
		goto out;
	size_t off = 0;
	while (off + sizeof(struct raw) <= p->raw.len) {
		struct raw r;
		memcpy(&r, p->raw.data + off, sizeof r);
		const uint64_t *ips = (const uint64_t *)(void *)(p->raw.data + off + sizeof r);
		size_t roff = off;
		off += sizeof r + (size_t)r.nr * 8 + r.extra;
		if (r.kind == KIND_ON) {
			undefer(p, &r, &ips);
			struct outer ot;
			res->kernel_stacks |= fold_sample(p, sy, &r, ips, &line, fr, &ot, &lline);
			quality_add(p, &r, &ot, worst, &nworst);
			if (folded_add(&res->on_cpu, buf_head(&line), buf_used(&line), 1, r.period) ||
			    folded_add(&res->on_cpu_loc, buf_head(&lline), buf_used(&lline), 1,
				       r.period))
				goto out;
			if (p->o->focus_pid > 0 && r.pid == (uint32_t)p->o->focus_pid &&
			    folded_add(&res->focus, buf_head(&line), buf_used(&line), 1, r.period))
				goto out;
			res->samples++;
		} else {
			if (nev == capev) {
				size_t cap = capev ? capev * 2 : 1024;
				struct offev *n = realloc(ev, cap * sizeof(*n));
				if (!n)
					goto out;
				ev = n;
				capev = cap;
			}
			ev[nev++] = (struct offev){r.tid, r.time, roff};
		}
	}
	if (nev) {
		size_t need = nev + p->nsw;
		struct offev *n = realloc(ev, need * sizeof(*n));
		if (!n)
			goto out;
		ev = n;
		for (size_t i = 0; i < p->nsw; i++)
			ev[nev++] = (struct offev){p->sw[i].tid, p->sw[i].time, SIZE_MAX};
		qsort(ev, nev, sizeof(*ev), cmp_offev);
		size_t pending = SIZE_MAX;
		uint32_t cur_tid = 0;
		for (size_t i = 0; i < nev; i++) {
			if (ev[i].tid != cur_tid) {
				if (pending != SIZE_MAX)
					res->offcpu_unmatched++;
				pending = SIZE_MAX;
				cur_tid = ev[i].tid;
			}
			if (ev[i].raw_off != SIZE_MAX) {
				if (pending != SIZE_MAX)
					res->offcpu_unmatched++;
				pending = i;
				continue;
			}
			if (pending == SIZE_MAX)
				continue;
			uint64_t dt = ev[i].time - ev[pending].time;
			struct raw r;
			memcpy(&r, p->raw.data + ev[pending].raw_off, sizeof r);
			const uint64_t *ips = (const uint64_t *)(void *)(p->raw.data +
									 ev[pending].raw_off + sizeof r);
			undefer(p, &r, &ips);
			fold_sample(p, sy, &r, ips, &line, fr, NULL, &lline);
			if (folded_add(&res->off_cpu, buf_head(&line), buf_used(&line),
				       (dt + 500) / 1000, dt) ||
			    folded_add(&res->off_cpu_loc, buf_head(&lline), buf_used(&lline),
				       (dt + 500) / 1000, dt))
				goto out;
			res->offcpu_switches++;
			pending = SIZE_MAX;
		}
		if (pending != SIZE_MAX)
			res->offcpu_unmatched++;
	}
	int procs = 0;
	for (size_t i = 0; i < p->nslots; i++)
		procs += p->pids[i].pid > 0 && p->pids[i].sampled; /* not -1: "[exiting]" */
	res->processes_seen = procs;
	const char *nosym[16];
	int nn = symbols_unresolved_modules(sy, nosym, 16);
	for (int i = 0; i < nn; i++) {
		size_t l = strlen(res->unwind.nosym);
		snprintf(res->unwind.nosym + l, sizeof res->unwind.nosym - l, "%s%s", i ? ", " : "",
			 nosym[i]);
	}
	rc = 0;
out:
	free(ev);
	free(fr);
	buf_free(&line);
	buf_free(&lline);
	return rc;
}

/* ---- the run ----------------------------------------------------------------------- */

static int open_error(struct prof *p, int e, pid_t tid, const char *what, char *err, size_t errlen)
{
	const struct profile_opts *o = p->o;
	if ((e == ENOENT || e == EOPNOTSUPP || e == ENODEV) && o->event == PROFILE_EV_CYCLES)
		return errbuf(err, errlen, "event 'cycles' is not supported here (perf_event_open: "
			      "%s; no hardware PMU, as on most VMs): leave out --event to use "
			      "cpu-clock", strerror(e)), -EOPNOTSUPP;
	if (e == EACCES || e == EPERM)
		return errbuf(err, errlen, "cannot open %s on pid %d: %s "
			      "(kernel.perf_event_paranoid=%d: run as root, or lower it with "
			      "'sysctl kernel.perf_event_paranoid=1', or pass --user-only)", what,
			      (int)tid, strerror(e), read_paranoid()), -e;
	if (e == EMFILE || e == ENFILE)
		return errbuf(err, errlen, "cannot open %s on pid %d: %s (too many threads to attach "
			      "to: raise 'ulimit -n' or profile fewer)", what, (int)tid,
			      strerror(e)), -e;
	return errbuf(err, errlen, "cannot open %s on pid %d: %s", what, (int)tid, strerror(e)), -e;
}

static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void add_note(struct profile_result *res, const char *fmt, ...) CTXLAB_PRINTF(2, 3);
static void add_note(struct profile_result *res, const char *fmt, ...)
{
	char tmp[sizeof res->note];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	size_t n = strlen(res->note);
	snprintf(res->note + n, sizeof res->note - n, "%s%s", n ? "; " : "", tmp);
}

/* Per-task mode: every thread of every root and its descendants into tids[PROFILE_MAX_THREADS].
 * The count (capped, with a warning). */
static int list_targets(const struct profile_opts *o, pid_t *tids)
{
	pid_t *desc = malloc(PROFILE_MAX_THREADS * sizeof(*desc));
	if (!desc)
		return -ENOMEM;
	pid_t *all = NULL;
	int ntids = 0, cap = 0, r;
	for (int i = 0; i < o->npids; i++) {
		if ((r = procfs_list_tasks(-1, o->pids[i], &all, ntids, &cap)) >= 0)
			ntids = r; /* else gone (or out of memory: the threads so far) */
		int nd = spawn_descendants(o->pids[i], desc, PROFILE_MAX_THREADS);
		for (int j = 0; j < nd && j < PROFILE_MAX_THREADS; j++)
			if ((r = procfs_list_tasks(-1, desc[j], &all, ntids, &cap)) >= 0)
				ntids = r;
	}
	free(desc);
	if (ntids)
		memcpy(tids, all, (size_t)(ntids < PROFILE_MAX_THREADS ? ntids : PROFILE_MAX_THREADS) *
					  sizeof *tids);
	free(all);
	if (ntids > PROFILE_MAX_THREADS) {
		warn("%d threads in the target trees: attaching to the first %d only", ntids,
		     PROFILE_MAX_THREADS);
		ntids = PROFILE_MAX_THREADS;
	}
	return ntids;
}

struct attach_ctx {
	struct perf_event_attr on, off;
	struct profile_opts eff; /* o, with user_only raised when kernel profiling is refused */
	int hz, tp, first;
};

/* Opens the on-CPU (and off-CPU) events of one target -- a thread, or in cgroup mode the
 * cgroup's fd -- on every CPU. 1 attached, 0 the thread is gone, or -errno (err filled). */
static int attach_one(struct prof *p, struct attach_ctx *ac, pid_t target, char *err,
		      size_t errlen)
{
	const struct profile_opts *o = p->o;
	struct profile_result *res = p->res;
	for (int c = 0; c < p->ncpu; c++) {
		int e = open_into(p, &ac->on, target, p->cpus[c], &p->on[c],
				  ring_pages(o, ONCPU_PAGES));
		if (e == -ESRCH && !o->cgroup)
			return 0;
		if ((e == -EACCES || e == -EPERM) && ac->first && !ac->eff.user_only && !o->cgroup) {
			/* kernel profiling refused (perf_event_paranoid=2 for non-root): fall back
			 * to user stacks only. (A cgroup needs per-CPU events, which that setting
			 * refuses whatever the stacks.) */
			ac->eff.user_only = 1;
			attr_sampling(&ac->on, &ac->eff, ac->hz);
			if (ac->tp >= 0)
				attr_offcpu(&ac->off, &ac->eff, ac->tp);
			e = open_into(p, &ac->on, target, p->cpus[c], &p->on[c],
				      ring_pages(o, ONCPU_PAGES));
			if (!e)
				add_note(res, "kernel stacks left out: kernel profiling not "
					 "permitted (kernel.perf_event_paranoid=%d; run as root for "
					 "them)", read_paranoid());
		}
		if (e && o->cgroup)
			return cgroup_error(-e, o->cgroup, err, errlen);
		if (e)
			return open_error(p, -e, target, o->event == PROFILE_EV_CYCLES ?
					  "event 'cycles'" : "event 'cpu-clock'", err, errlen);
		ac->first = 0;
		if (ac->tp < 0)
			continue;
		e = open_into(p, &ac->off, target, p->cpus[c], &p->off[c],
			      ring_pages(o, OFFCPU_PAGES));
		if (e == -ESRCH && !o->cgroup)
			return 0;
		if (e) {
			if (o->cgroup)
				snprintf(res->off_cpu_reason, sizeof res->off_cpu_reason,
					 "cannot open tracepoint 'sched:sched_switch' on cgroup "
					 "'%.80s': %s (run as root)", o->cgroup, strerror(-e));
			else
				snprintf(res->off_cpu_reason, sizeof res->off_cpu_reason,
					 "cannot open tracepoint 'sched:sched_switch' on pid %d: %s "
					 "(run as root)", (int)target, strerror(-e));
			ac->tp = -1;
		}
	}
	return 1;
}

/* Polls the rings until the duration, *stop, the roots' exit or (cgroup without roots nor
 * duration) the cgroup's emptying. */
static void collect(struct prof *p)
{
	const struct profile_opts *o = p->o;
	struct pollfd *pfd = calloc((size_t)p->ncpu * 2, sizeof(*pfd));
	int npfd = 0;
	for (int c = 0; pfd && c < p->ncpu; c++) {
		if (p->on[c].fd >= 0)
			pfd[npfd++] = (struct pollfd){.fd = p->on[c].fd, .events = POLLIN};
		if (p->off[c].fd >= 0)
			pfd[npfd++] = (struct pollfd){.fd = p->off[c].fd, .events = POLLIN};
	}
	uint64_t t0 = clock_now_ns();
	for (;;) {
		uint64_t now = clock_now_ns();
		if (o->duration_ns && now - t0 >= o->duration_ns)
			break;
		if (o->stop && *o->stop)
			break;
		if (o->npids > 0) {
			int alive = 0;
			for (int i = 0; i < o->npids; i++)
				alive |= root_alive(o->pids[i]);
			if (!alive)
				break;
		} else if (!o->duration_ns && cgroup_populated(o->cgroup) == 0) {
			break;
		}
		int wait_ms = 100;
		if (o->duration_ns) {
			uint64_t left = o->duration_ns - (now - t0);
			if (left / NS_PER_MS < (uint64_t)wait_ms)
				wait_ms = (int)(left / NS_PER_MS) + 1;
		}
		if (pfd)
			poll(pfd, (nfds_t)npfd, wait_ms);
		else
			clock_sleep_ns((uint64_t)wait_ms * NS_PER_MS);
		drain_all(p);
	}
	free(pfd);
}

int profile_run(const struct profile_opts *o, struct profile_result *res, char *err,
		size_t errlen)
{
	struct prof p = {.o = o, .res = res, .cgfd = -1};
	p.want_stack = o->call_graph != PROFILE_CG_FP;
	pid_t *tids = NULL;
	int ntids = 0, rc = 0;
	memset(res, 0, sizeof(*res));
	folded_init(&res->on_cpu);
	folded_init(&res->focus);
	folded_init(&res->off_cpu);
	folded_init(&res->on_cpu_loc);
	folded_init(&res->off_cpu_loc);
	int hz = o->hz > 0 ? o->hz : 99;
	res->period_ns = NS_PER_S / (uint64_t)hz;
	res->cgroup_mode = o->cgroup != NULL;
	if (o->event == PROFILE_EV_CYCLES && hw_forced_off())
		return errbuf(err, errlen, "event 'cycles' is not supported here (hardware events "
			      "disabled by CTXLAB_PERF_NO_HW): leave out --event to use cpu-clock"),
		       -EOPNOTSUPP;
	if (o->npids < 1 && !o->cgroup)
		return errbuf(err, errlen, "no target: pass --pid PID, --cgroup PATH or -- CMD"),
		       -EINVAL;

	if (o->cgroup) {
		p.cgfd = cgroup_open(o->cgroup, err, errlen);
		if (p.cgfd < 0)
			return p.cgfd;
		p.pflags = PERF_FLAG_PID_CGROUP;
		if (o->npids < 1 && !o->duration_ns && cgroup_populated(o->cgroup) == 0) {
			errbuf(err, errlen, "cgroup '%s' has no process: nothing to profile (start "
			       "something in it first, or pass -d DUR to sample a window anyway)",
			       o->cgroup);
			rc = -ESRCH;
			goto out;
		}
	} else {
		tids = malloc(PROFILE_MAX_THREADS * sizeof(*tids));
		ntids = tids ? list_targets(o, tids) : -ENOMEM;
		if (ntids < 0) {
			rc = ntids;
			goto out;
		}
		if (ntids == 0) {
			errbuf(err, errlen, "no process %d: nothing to profile (check --pid)",
			       (int)o->pids[0]);
			rc = -ESRCH;
			goto out;
		}
	}
	raise_nofile();
	if (o->stack_size % 8 || o->stack_size > UNWIND_STACK_MAX) {
		errbuf(err, errlen, "stack copy size %u: a multiple of 8 up to %u bytes",
		       o->stack_size, UNWIND_STACK_MAX);
		rc = -EINVAL;
		goto out;
	}
	p.sy = symbols_new();
	if (!p.sy) {
		rc = -ENOMEM;
		goto out;
	}
	p.ncpu = online_cpus(&p.cpus);
	if (p.ncpu <= 0) {
		rc = p.ncpu < 0 ? p.ncpu : -ENODEV;
		goto out;
	}
	res->cpus = p.ncpu;
	p.on = calloc((size_t)p.ncpu, sizeof(*p.on));
	p.off = calloc((size_t)p.ncpu, sizeof(*p.off));
	if (!p.on || !p.off) {
		rc = -ENOMEM;
		goto out;
	}
	for (int c = 0; c < p.ncpu; c++)
		p.on[c].fd = p.off[c].fd = -1;

	struct attach_ctx ac = {.eff = *o, .hz = hz, .tp = -1, .first = 1};
	attr_sampling(&ac.on, &ac.eff, hz);
	if (o->off_cpu) {
		ac.tp = (int)tracefs_event_id("sched/sched_switch", res->off_cpu_reason,
					      sizeof res->off_cpu_reason);
		if (ac.tp >= 0)
			attr_offcpu(&ac.off, &ac.eff, ac.tp);
	}
	int attached = 0;
	if (o->cgroup) {
		rc = attach_one(&p, &ac, p.cgfd, err, errlen);
		if (rc < 0)
			goto out;
		rc = 0;
	} else {
		for (int t = 0; t < ntids; t++) {
			int r = attach_one(&p, &ac, tids[t], err, errlen);
			if (r < 0) {
				rc = r;
				goto out;
			}
			attached += r;
		}
		if (!attached) {
			errbuf(err, errlen, "every target thread exited before it could be attached "
			       "to");
			rc = -ESRCH;
			goto out;
		}
	}
	if (o->off_cpu && ac.tp < 0) {
		/* close the half-opened off-CPU events: they would only fill rings */
		for (int c = 0; c < p.ncpu; c++)
			if (p.off[c].fd >= 0) {
				munmap(p.off[c].base, p.off[c].mmap_len);
				p.off[c].base = NULL;
				p.off[c].fd = -1;
			}
	}
	res->off_cpu_ok = o->off_cpu && ac.tp >= 0;
	res->threads_attached = attached;
	attach_delay();
	/* The window. Per cgroup the events, opened disabled, count only between the two
	 * cpu.stat readings: no sample falls outside the CPU time target_cpu_ns covers, however
	 * long the profiler is held up between the attach and the first reading. */
	res->start_wall_ns = clock_wall_ns();
	uint64_t cpu0 = 0, cpu1 = 0;
	int cpu_ok = target_cpu_ns(o, &cpu0) == 0;
	if (o->cgroup)
		for (size_t i = 0; i < p.nfds; i++)
			ioctl(p.fds[i], PERF_EVENT_IOC_ENABLE, 0);
	uint64_t t0 = clock_now_ns();

	collect(&p);

	for (size_t i = 0; i < p.nfds; i++)
		ioctl(p.fds[i], PERF_EVENT_IOC_DISABLE, 0);
	res->duration_ns = clock_now_ns() - t0;
	if (cpu_ok && target_cpu_ns(o, &cpu1) == 0) {
		res->target_cpu_ok = 1;
		res->target_cpu_ns = cpu1 > cpu0 ? cpu1 - cpu0 : 0;
	}
	drain_all(&p);
	rc = symbolize(&p);
	if (rc) {
		errbuf(err, errlen, "out of memory while symbolizing");
		goto out;
	}
	uint64_t expect = res->target_cpu_ok ? res->target_cpu_ns / res->period_ns : 0;
	if (!o->cgroup && expect >= 20 && res->samples * 2 < expect)
		add_note(res, "only %llu samples for %.2f s of CPU the target used (~%llu "
			 "expected at %d Hz): per-task sampling misses threads and processes that "
			 "each run less than one period (%.1f ms of CPU) in all, as with many "
			 "short-running threads or forked children; sample their cgroup instead "
			 "(--cgroup PATH, or -- CMD as root)", (unsigned long long)res->samples,
			 (double)res->target_cpu_ns / 1e9, (unsigned long long)expect, hz,
			 (double)res->period_ns / 1e6);
out:
	for (int c = 0; p.on && c < p.ncpu; c++)
		if (p.on[c].base)
			munmap(p.on[c].base, p.on[c].mmap_len);
	for (int c = 0; p.off && c < p.ncpu; c++)
		if (p.off[c].base)
			munmap(p.off[c].base, p.off[c].mmap_len);
	for (size_t i = 0; i < p.nfds; i++)
		close(p.fds[i]);
	if (p.cgfd >= 0)
		close(p.cgfd);
	free(p.fds);
	free(p.on);
	free(p.off);
	free(p.cpus);
	free(tids);
	buf_free(&p.raw);
	free(p.sw);
	for (size_t i = 0; i < p.nsnaps; i++)
		free(p.snaps[i].maps);
	free(p.snaps);
	free(p.pids);
	unwind_release();
	symbols_free(p.sy);
	free(p.lk);
	free(p.mapkey);
	symbols_files_release(); /* the mapped files the snapshots opened */
	if (rc)
		profile_result_release(res);
	return rc;
}

void profile_result_release(struct profile_result *res)
{
	folded_release(&res->on_cpu);
	folded_release(&res->focus);
	folded_release(&res->off_cpu);
	folded_release(&res->on_cpu_loc);
	folded_release(&res->off_cpu_loc);
	for (size_t i = 0; i < res->nlocs; i++) {
		free((char *)res->locs[i].func);
		free((char *)res->locs[i].file);
	}
	free(res->locs);
	for (size_t i = 0; i < res->nmaps; i++) {
		free((char *)res->maps[i].file);
		free((char *)res->maps[i].build_id);
	}
	free(res->maps);
	res->locs = NULL;
	res->maps = NULL;
	res->nlocs = res->nmaps = 0;
}
