#include "profile/unwind.h"

#include <elfutils/libdwfl.h>
#include <gelf.h>
#include <stdlib.h>
#include <string.h>

#include "profile/symbols.h"

/* perf's x86 register numbers (asm/perf_regs.h), and their slots in a sample: the registers
 * of UNWIND_REGS_MASK in bit order (AX..SS = 0..11, then R8..R15 = 16..23 at slots 12..19). */
enum { P_AX, P_BX, P_CX, P_DX, P_SI, P_DI, P_BP, P_SP, P_IP, P_FLAGS, P_CS, P_SS };
static int slot_of(int perf_reg) { return perf_reg < 12 ? perf_reg : perf_reg - 4; }

/* The sample being unwound: the callbacks' dwfl_arg (one at a time, see unwind.h). */
static struct {
	const struct unwind_input *in;
	uint64_t sp;
	int truncated;
	pid_t tid;
} cur;

static pid_t next_thread(Dwfl *dwfl, void *dwfl_arg, void **thread_argp)
{
	(void)dwfl, (void)dwfl_arg;
	if (*thread_argp)
		return 0;
	*thread_argp = &cur;
	return cur.tid;
}

static bool get_thread(Dwfl *dwfl, pid_t tid, void *dwfl_arg, void **thread_argp)
{
	(void)dwfl, (void)dwfl_arg, (void)tid;
	*thread_argp = &cur;
	return true;
}

/* 8 bytes at addr from the file contents of the module mapped there (a PT_LOAD's file part). */
static int read_module(Dwfl *dwfl, Dwarf_Addr addr, void *out, size_t len)
{
	Dwfl_Module *mod = dwfl_addrmodule(dwfl, addr);
	Dwarf_Addr bias;
	Elf *elf = mod ? dwfl_module_getelf(mod, &bias) : NULL;
	size_t n, fsize;
	const char *raw = elf ? elf_rawfile(elf, &fsize) : NULL;
	if (!raw || elf_getphdrnum(elf, &n))
		return -1;
	uint64_t va = addr - bias;
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (va < ph.p_vaddr || va + len > ph.p_vaddr + ph.p_filesz)
			continue;
		uint64_t off = ph.p_offset + (va - ph.p_vaddr);
		if (off + len > fsize)
			return -1;
		memcpy(out, raw + off, len);
		return 0;
	}
	return -1;
}

static bool memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *dwfl_arg)
{
	(void)dwfl_arg;
	const struct unwind_input *in = cur.in;
	if (addr >= cur.sp && addr - cur.sp + 8 <= in->stack_len) {
		memcpy(result, in->stack + (addr - cur.sp), 8);
		return true;
	}
	uint64_t w;
	if (read_module(dwfl, addr, &w, 8) == 0) {
		*result = w;
		return true;
	}
	/* above the copy, within a stack's reach: the copy was too small (when it was full;
	 * else the stack really ends there and this is an unwinding error) */
	if (addr >= cur.sp && in->stack_full && addr - cur.sp < (64u << 20))
		cur.truncated = 1;
	return false;
}

static bool set_initial_registers(Dwfl_Thread *thread, void *thread_arg)
{
	(void)thread_arg;
	const uint64_t *r = cur.in->regs;
	/* DWARF numbering of x86-64: rax rdx rcx rbx rsi rdi rbp rsp r8..r15, then the
	 * return address column (rip) */
	static const int perf_of_dwarf[8] = {P_AX, P_DX, P_CX, P_BX, P_SI, P_DI, P_BP, P_SP};
	Dwarf_Word d[17];
	for (int i = 0; i < 8; i++)
		d[i] = r[slot_of(perf_of_dwarf[i])];
	for (int i = 0; i < 8; i++)
		d[8 + i] = r[12 + i];
	d[16] = r[slot_of(P_IP)];
	if (!dwfl_thread_state_registers(thread, 0, 17, d))
		return false;
	dwfl_thread_state_register_pc(thread, d[16]);
	return true;
}

static const Dwfl_Thread_Callbacks callbacks = {
	.next_thread = next_thread,
	.get_thread = get_thread,
	.memory_read = memory_read,
	.set_initial_registers = set_initial_registers,
};

struct frames {
	uint64_t *pcs;
	int n, max;
};

static int frame_cb(Dwfl_Frame *state, void *arg)
{
	struct frames *f = arg;
	Dwarf_Addr pc;
	bool act;
	if (!dwfl_frame_pc(state, &pc, &act))
		return DWARF_CB_ABORT;
	if (pc == 0 || f->n >= f->max)
		return DWARF_CB_ABORT;
	/* (the same pc twice is recursion, not a loop: the frame limit bounds a real loop) */
	f->pcs[f->n++] = pc;
	return DWARF_CB_OK;
}

int unwind_user(struct symbols *s, const char *maps, pid_t pid, const struct unwind_input *in,
		uint64_t *pcs, int max, enum unwind_status *status)
{
	*status = UNWIND_FAILED;
	if (max < 1 || !in->regs)
		return 0;
	uint64_t ip = in->regs[slot_of(P_IP)];
	pcs[0] = ip;
	Dwfl *d = symbols_dwfl(s, maps);
	if (!d)
		return 1;
	if (dwfl_pid(d) < 0 && !dwfl_attach_state(d, NULL, pid > 0 ? pid : 1, &callbacks, &cur))
		return 1;
	cur.in = in;
	cur.sp = in->regs[slot_of(P_SP)];
	cur.truncated = 0;
	cur.tid = dwfl_pid(d);
	struct frames f = {pcs, 0, max};
	int r = dwfl_getthread_frames(d, cur.tid, frame_cb, &f);
	if (f.n == 0)
		f.pcs[f.n++] = ip;
	if (cur.truncated)
		*status = UNWIND_TRUNCATED;
	else if (r == 0 || f.n >= max)
		*status = UNWIND_OK;
	else if (r == DWARF_CB_ABORT)
		*status = UNWIND_FAILED;
	else
		/* libdwfl ends some backtraces with an error instead of 0 (libdwfl.h): the
		 * caller judges completeness by the outermost frame */
		*status = UNWIND_OK;
	return f.n;
}

/* ---- frame pointers per module (--call-graph auto) --------------------------------- */

#define FP_CACHE 256

struct fp_verdict {
	Dwfl_Module *mod;
	int verdict;
};
static struct fp_verdict fpc[FP_CACHE];

/* Leaf verdicts by (session, ip): direct-mapped, since the lookup of the function scans the
 * module's symbol table (libdwfl) and hot loops sample the same few addresses. */
#define LEAF_CACHE 4096
static struct {
	Dwfl *d;
	uint64_t ip;
	int verdict;
} leafc[LEAF_CACHE];

static int nfpc;

/* The offset just past `mov %rsp,%rbp` of a `push %rbp` ... `mov %rsp,%rbp` prologue in the
 * first len bytes of a function (compilers shrink-wrap: a test and an early return may come
 * first, and an instruction or two between the push and the mov), or 0 when there is none. */
static size_t fp_prologue_end(const unsigned char *b, size_t len)
{
	for (size_t i = 0; i + 4 <= len; i++) {
		if (b[i] != 0x55)
			continue;
		for (size_t j = i + 1; j + 3 <= len && j <= i + 8; j++)
			if (b[j] == 0x48 && b[j + 1] == 0x89 && b[j + 2] == 0xe5)
				return j + 3;
		return 0;
	}
	return 0;
}

static int judge_module(Dwfl *d, Dwfl_Module *mod)
{
	int nsym = dwfl_module_getsymtab(mod);
	if (nsym <= 0)
		return -1;
	int funcs = 0, fp = 0;
	/* spread the looks over the table: up to 256 functions of at least 16 bytes */
	int step = nsym / 1024 > 1 ? nsym / 1024 : 1;
	for (int i = 1; i < nsym && funcs < 256; i += step) {
		GElf_Sym sym;
		GElf_Addr addr;
		const char *name = dwfl_module_getsym_info(mod, i, &sym, &addr, NULL, NULL, NULL);
		if (!name || GELF_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_size < 16 ||
		    sym.st_shndx == SHN_UNDEF)
			continue;
		unsigned char b[32];
		size_t n = sym.st_size < sizeof b ? sym.st_size : sizeof b;
		if (read_module(d, addr, b, n))
			continue;
		funcs++;
		fp += fp_prologue_end(b, n) > 0;
	}
	if (funcs < 4)
		return -1;
	return fp * 2 >= funcs;
}

int unwind_module_has_fp(struct symbols *s, const char *maps, uint64_t addr)
{
	Dwfl *d = symbols_dwfl(s, maps);
	Dwfl_Module *mod = d ? dwfl_addrmodule(d, addr) : NULL;
	if (!mod)
		return -1;
	for (int i = 0; i < nfpc; i++)
		if (fpc[i].mod == mod)
			return fpc[i].verdict;
	int v = judge_module(d, mod);
	if (nfpc < FP_CACHE)
		fpc[nfpc++] = (struct fp_verdict){mod, v};
	return v;
}

void unwind_release(void)
{
	nfpc = 0;
	memset(leafc, 0, sizeof leafc);
}


static int leaf_judge(Dwfl *d, uint64_t ip);

int unwind_leaf_has_frame(struct symbols *s, const char *maps, uint64_t ip)
{
	Dwfl *d = symbols_dwfl(s, maps);
	if (!d)
		return 0;
	size_t k = (size_t)((ip ^ (ip >> 12) ^ (uintptr_t)d) * 0x9e3779b97f4a7c15ULL >> 52) &
		   (LEAF_CACHE - 1);
	if (leafc[k].d == d && leafc[k].ip == ip)
		return leafc[k].verdict;
	int v = leaf_judge(d, ip);
	leafc[k].d = d;
	leafc[k].ip = ip;
	leafc[k].verdict = v;
	return v;
}

static int leaf_judge(Dwfl *d, uint64_t ip)
{
	Dwfl_Module *mod = d ? dwfl_addrmodule(d, ip) : NULL;
	GElf_Off off;
	GElf_Sym sym;
	if (!mod || !dwfl_module_addrinfo(mod, ip, &off, &sym, NULL, NULL, NULL))
		return 0;
	unsigned char b[32], at;
	size_t n = sym.st_size && sym.st_size < sizeof b ? sym.st_size : sizeof b;
	if (read_module(d, ip - off, b, n) || read_module(d, ip, &at, 1))
		return 0;
	/* past push %rbp; mov %rsp,%rbp and not at a ret (after pop %rbp, or the early return
	 * of a shrink-wrapped function, which has no record) */
	size_t end = fp_prologue_end(b, n);
	return end && off >= end && at != 0xc3;
}
