#include "profile/stack.h"

#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "profile/symbols.h"
#include "profile/unwind.h"

#define MAX_FRAMES 256

static const Dwfl_Callbacks attach_callbacks = {
	.find_elf = dwfl_linux_proc_find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
};

struct dump {
	pid_t pid;
	struct buf *out;
	struct stack_result *res;
	struct symbols *sy;
	const char *maps;
	uint64_t pcs[MAX_FRAMES];
	int npc;
	int acts[MAX_FRAMES];
};

static void task_comm(pid_t pid, pid_t tid, char *b, size_t len)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task/%d/comm", (int)pid, (int)tid);
	b[0] = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, b, len - 1);
		close(fd);
		b[n > 0 ? n : 0] = 0;
		b[strcspn(b, "\n")] = 0;
	}
}

static int frame_cb(Dwfl_Frame *state, void *arg)
{
	struct dump *d = arg;
	Dwarf_Addr pc;
	bool act;
	if (!dwfl_frame_pc(state, &pc, &act) || pc == 0 || d->npc >= MAX_FRAMES)
		return DWARF_CB_ABORT;
	d->acts[d->npc] = act;
	d->pcs[d->npc++] = pc;
	return DWARF_CB_OK;
}

static int thread_cb(Dwfl_Thread *t, void *arg)
{
	struct dump *d = arg;
	pid_t tid = dwfl_thread_tid(t);
	char comm[32];
	task_comm(d->pid, tid, comm, sizeof comm);
	d->npc = 0;
	/* the thread is attached (stopped) in set_initial_registers and detached at the end */
	uint64_t t0 = clock_now_ns();
	int r = dwfl_thread_getframes(t, frame_cb, d);
	uint64_t dt = clock_now_ns() - t0;
	if (r < 0 && d->npc == 0) {
		buf_appendf(d->out, "thread %d (%s): not dumped: %s\n", (int)tid, comm,
			   dwfl_errmsg(-1));
		d->res->failed++;
		return DWARF_CB_OK;
	}
	d->res->threads++;
	d->res->total_stop_ns += dt;
	if (dt > d->res->max_stop_ns)
		d->res->max_stop_ns = dt;
	buf_appendf(d->out, "thread %d (%s): stopped for %.3f ms, %d frame%s\n", (int)tid, comm,
		   (double)dt / 1e6, d->npc, d->npc == 1 ? "" : "s");
	for (int i = 0; i < d->npc; i++) {
		uint64_t a = d->acts[i] ? d->pcs[i] : d->pcs[i] - 1;
		char tmp[300], mod[64];
		const char *name = symbols_user(d->sy, d->maps, a, tmp, sizeof tmp);
		const char *file;
		int line;
		buf_appendf(d->out, "  #%-3d 0x%016" PRIx64 "  %s", i, d->pcs[i], name);
		if (symbols_srcline(d->sy, d->maps, a, &file, &line))
			buf_appendf(d->out, " (%s:%d)", file, line);
		else if (symbols_module_of(d->maps, a, mod, sizeof mod))
			buf_appendf(d->out, " (%s)", mod);
		buf_appendf(d->out, "\n");
	}
	return DWARF_CB_OK;
}

/* Loads every module's ELF and CFI before any thread is stopped, so that a thread's stop
 * covers reading its stack and unwinding, not opening files. */
static int preload(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr base,
		   void *arg)
{
	(void)userdata, (void)name, (void)base, (void)arg;
	Dwarf_Addr bias;
	if (dwfl_module_getelf(mod, &bias)) {
		dwfl_module_eh_cfi(mod, &bias);
		dwfl_module_dwarf_cfi(mod, &bias);
	}
	return DWARF_CB_OK;
}

/* ---- coroutines: the registry of src/coro/coro.c (layout 1, x86-64) ------------------ */

struct symfind {
	const char *name;
	uint64_t addr;
};

static int find_sym(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr base,
		    void *arg)
{
	(void)userdata, (void)name, (void)base;
	struct symfind *f = arg;
	int n = dwfl_module_getsymtab(mod);
	for (int i = 1; i < n; i++) {
		GElf_Sym sym;
		GElf_Addr addr;
		const char *nm = dwfl_module_getsym_info(mod, i, &sym, &addr, NULL, NULL, NULL);
		if (nm && !strcmp(nm, f->name) && sym.st_shndx != SHN_UNDEF) {
			f->addr = addr;
			return DWARF_CB_ABORT;
		}
	}
	return DWARF_CB_OK;
}

static uint64_t sym_addr(Dwfl *dw, const char *name)
{
	struct symfind f = {name, 0};
	dwfl_getmodules(dw, find_sym, &f, 0);
	return f.addr;
}

static int mem_read(int fd, uint64_t addr, void *out, size_t len)
{
	return pread(fd, out, len, (off_t)addr) == (ssize_t)len ? 0 : -1;
}

/* Dumps every suspended coroutine of the registry, if the process has one: read while the
 * process runs (a coroutine resumed meanwhile may show a stale stack). */
static void dump_coroutines(Dwfl *dw, struct dump *d)
{
	uint64_t head_at = sym_addr(dw, "ctxlab_coro_all"), lay_at = sym_addr(dw, "ctxlab_coro_layout");
	if (!head_at || !lay_at)
		return;
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/mem", (int)d->pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint32_t layout = 0;
	uint64_t c = 0;
	if (fd < 0 || mem_read(fd, lay_at, &layout, 4) || layout != 1 ||
	    mem_read(fd, head_at, &c, 8)) {
		if (fd >= 0)
			close(fd);
		return;
	}
	unsigned char *stack = malloc(UNWIND_STACK_MAX + 8);
	int shown = 0, running = 0;
	for (int guard = 0; c && stack && guard < 100000; guard++) {
		struct {
			uint64_t sp, next, prev, lo, bytes;
			int32_t done, running;
		} co;
		uint64_t saved[7]; /* r15 r14 r13 r12 rbx rbp, return address */
		if (mem_read(fd, c, &co, sizeof co))
			break;
		uint64_t hi = co.lo + co.bytes;
		if (co.done || co.running || co.sp < co.lo || co.sp + sizeof saved > hi ||
		    mem_read(fd, co.sp, saved, sizeof saved)) {
			running += co.running != 0;
			c = co.next;
			continue;
		}
		uint64_t regs[UNWIND_NREGS] = {0};
		regs[1] = saved[4];                  /* BX */
		regs[6] = saved[5];                  /* BP */
		regs[7] = co.sp + sizeof saved;      /* SP after the ret */
		regs[8] = saved[6];                  /* IP: where the switch returns */
		regs[16] = saved[3], regs[17] = saved[2], regs[18] = saved[1], regs[19] = saved[0];
		size_t len = hi - regs[7] < UNWIND_STACK_MAX ? (size_t)(hi - regs[7]) : UNWIND_STACK_MAX;
		if (mem_read(fd, regs[7], stack, len))
			len = 0;
		struct unwind_input in = {regs, stack, len, len == UNWIND_STACK_MAX};
		enum unwind_status st;
		d->npc = unwind_user(d->sy, d->maps, d->pid, &in, d->pcs, MAX_FRAMES, &st);
		buf_appendf(d->out, "coroutine 0x%" PRIx64 " (suspended; stack 0x%" PRIx64 "-0x%" PRIx64
			    "): %d frame%s%s\n", c, co.lo, hi, d->npc, d->npc == 1 ? "" : "s",
			    st == UNWIND_TRUNCATED ? " (truncated)" : "");
		for (int i = 0; i < d->npc; i++) {
			uint64_t a = d->pcs[i] - 1; /* every frame is a return address here */
			char tmp[300], mod[64];
			const char *file;
			int line;
			buf_appendf(d->out, "  #%-3d 0x%016" PRIx64 "  %s", i, d->pcs[i],
				    symbols_user(d->sy, d->maps, a, tmp, sizeof tmp));
			if (symbols_srcline(d->sy, d->maps, a, &file, &line))
				buf_appendf(d->out, " (%s:%d)", file, line);
			else if (symbols_module_of(d->maps, a, mod, sizeof mod))
				buf_appendf(d->out, " (%s)", mod);
			buf_appendf(d->out, "\n");
		}
		shown++;
		c = co.next;
	}
	if (shown || running)
		buf_appendf(d->out, "%d suspended coroutine%s shown, %d running (in the threads "
			    "above)\n", shown, shown == 1 ? "" : "s", running);
	d->res->coroutines += shown;
	free(stack);
	close(fd);
}

int stack_dump(pid_t pid, struct buf *out, struct stack_result *res, char *err, size_t errlen)
{
	char comm[32];
	size_t mlen;
	char *maps = symbols_snapshot_maps(pid, &mlen);
	if (!maps) {
		int e = errno ? errno : ESRCH;
		return errbuf(err, errlen, "cannot read the memory map of pid %d: %s (is it running? "
			      "a kernel thread has none)", (int)pid, strerror(e)), -e;
	}
	Dwfl *dw = dwfl_begin(&attach_callbacks);
	struct symbols *sy = symbols_new();
	int rc = 0;
	if (!dw || !sy) {
		rc = -ENOMEM;
		errbuf(err, errlen, "out of memory");
		goto out;
	}
	dwfl_report_begin(dw);
	int r = dwfl_linux_proc_report(dw, pid);
	dwfl_report_end(dw, NULL, NULL);
	if (r) {
		rc = r > 0 ? -r : -ESRCH;
		errbuf(err, errlen, "cannot read the modules of pid %d: %s", (int)pid,
		       r > 0 ? strerror(r) : dwfl_errmsg(-1));
		goto out;
	}
	dwfl_getmodules(dw, preload, NULL, 0);
	r = dwfl_linux_proc_attach(dw, pid, false);
	if (r) {
		rc = r > 0 ? -r : -EPERM;
		errbuf(err, errlen, "cannot attach to pid %d: %s (ptrace: run as root, or check "
		       "kernel.yama.ptrace_scope)", (int)pid, r > 0 ? strerror(r) : dwfl_errmsg(-1));
		goto out;
	}
	task_comm(pid, pid, comm, sizeof comm);
	buf_appendf(out, "pid %d (%s)\n", (int)pid, comm);
	struct dump d = {.pid = pid, .out = out, .res = res, .sy = sy, .maps = maps};
	r = dwfl_getthreads(dw, thread_cb, &d);
	if (r < 0 && !res->threads) {
		rc = -EPERM;
		errbuf(err, errlen, "cannot walk the threads of pid %d: %s (ptrace: run as root, or "
		       "check kernel.yama.ptrace_scope)", (int)pid, dwfl_errmsg(-1));
	}
	if (!rc)
		dump_coroutines(dw, &d);
out:
	if (dw)
		dwfl_end(dw); /* detaches what is still attached */
	unwind_release();
	symbols_free(sy);
	symbols_files_release();
	free(maps);
	return rc;
}
