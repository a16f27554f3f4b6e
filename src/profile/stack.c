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
out:
	if (dw)
		dwfl_end(dw); /* detaches what is still attached */
	symbols_free(sy);
	symbols_files_release();
	free(maps);
	return rc;
}
