/* unwind: user call stacks from a sampled register set and a copy of the top of the user
 * stack (perf's PERF_SAMPLE_REGS_USER + PERF_SAMPLE_STACK_USER, what `perf record
 * --call-graph dwarf` records), unwound offline with libdwfl's unwinder over the CFI
 * (.eh_frame / .debug_frame) of the modules of a maps snapshot (symbols.h). x86-64 only.
 *
 * The unwinder reads memory through one callback: addresses inside the stack copy come from
 * it; other addresses from the file contents of the module mapped there (read-only data
 * only, e.g. a CFI expression's constant); anything else fails. A read above the copy when
 * the copy was full (the kernel copied `size` bytes, not fewer because the stack ended) means
 * the copy was too small: the stack is then reported truncated, with the frames found so far.
 *
 * Also the per-module frame-pointer verdict for --call-graph auto (unwind_module_has_fp).
 *
 * Not thread-safe (one unwinding at a time per process). Uses the Dwfl that symbols.c keeps
 * per maps snapshot (dwfl_attach_state is done once on it, with this file's callbacks).
 */
#ifndef CTXLAB_PROFILE_UNWIND_H
#define CTXLAB_PROFILE_UNWIND_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct symbols;

/* The x86-64 user registers sampled (perf's mask: every general register but DS, ES, FS, GS)
 * as attr.sample_regs_user, and how many u64 a sample carries for them. */
#define UNWIND_REGS_MASK (((1ULL << 24) - 1) & ~(0xFULL << 12))
#define UNWIND_NREGS 20

/* Stack copy sizes (attr.sample_stack_user): a multiple of 8, at most 65528. */
#define UNWIND_STACK_DEFAULT 8192
#define UNWIND_STACK_MAX 65528

enum unwind_status {
	UNWIND_OK = 0,        /* ended normally (outermost frame, or the frame limit) */
	UNWIND_TRUNCATED = 1, /* needed stack above the copy: the copy was too small */
	UNWIND_FAILED = 2,    /* a frame could not be unwound (no CFI, pc in no module, no regs) */
};

struct unwind_input {
	const uint64_t *regs; /* UNWIND_NREGS values in perf's x86 register order (mask above) */
	const unsigned char *stack; /* the copy, starting at regs' SP */
	size_t stack_len;           /* bytes valid in the copy (the sample's dyn_size) */
	int stack_full;             /* 1: the kernel copied all it was asked (more may exist) */
};

/* Unwinds one sample of process pid (image = maps snapshot text) into pcs[] (leaf first, at
 * most max): pcs[0] is the sampled IP, the others are return addresses (look them up at
 * pc - 1). Returns the number of frames (>= 1 when regs were given) and sets *status. */
int unwind_user(struct symbols *s, const char *maps, pid_t pid, const struct unwind_input *in,
		uint64_t *pcs, int max, enum unwind_status *status);

/* Whether the module mapped at addr was built with frame pointers: 1 yes, 0 no, -1 unknown
 * (no module, no symbol table). Decided once per module from the prologues of up to 256 of
 * its functions (push %rbp ... mov %rsp,%rbp within their first 32 bytes: compilers shrink-wrap):
 * yes when at least half have it. */
int unwind_module_has_fp(struct symbols *s, const char *maps, uint64_t addr);
/* Whether the function containing ip (a sampled leaf) has set up its frame record there:
 * it starts with the frame-pointer prologue, ip is past it and not at a ret. Compilers leave
 * the record out of small leaf functions even with -fno-omit-frame-pointer, and then the
 * frame-pointer walk skips the leaf's caller. 1 yes, 0 no or unknown. */
int unwind_leaf_has_frame(struct symbols *s, const char *maps, uint64_t ip);
/* Forgets the verdicts (keyed by libdwfl modules): call before freeing the symbols. */
void unwind_release(void);

#endif
