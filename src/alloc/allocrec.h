/* allocrec: the binary record format shared by the allocation interposer
 * (src/alloc/preload/interpose.c, libctxlab-alloc.so, LD_PRELOADed into the profiled command)
 * and its reader (alloc/alloc.h). No code, no includes beyond <stdint.h>: the interposer
 * links nothing of ctxlab's.
 *
 * The interposer writes, into the directory named by CTXLAB_ALLOC_DIR, per process image (a
 * process, or a process after exec) two files with the same suffix PID.N (N = 0, 1, ... the
 * first name free):
 *   rec.PID.N   a header page (struct allocrec_hdr, ALLOCREC_HDR_SIZE bytes) followed by
 *               chunks of ALLOCREC_CHUNK bytes. A thread owns one chunk at a time (claimed
 *               with one atomic add on the header's next_chunk, mapped MAP_SHARED), counts
 *               every call in the chunk's counters (struct allocrec_chunkhdr, the first
 *               ALLOCREC_CHUNKHDR bytes), fills the rest with records and claims the next
 *               one: counts and records are in the file as soon as they are written, so a
 *               command killed by a signal, or replaced by exec, loses nothing. A record
 *               never straddles two chunks; a chunk's records end at the first kind 0 (the
 *               file is sparse: unwritten space reads as zeros). The record's kind is stored
 *               last (release), so a record torn by a kill reads as the end of its chunk.
 *   maps.PID.N  a copy of /proc/self/maps, taken at start-up, after every dlopen and at exit
 *               (rewritten whole each time), for symbolization after the process is gone.
 *
 * Order: seq is one per-process atomic counter, taken after the real allocation returns and
 * before the real free is called, so a block's allocation always has a smaller seq than its
 * free, and a free that makes an address available has a smaller seq than the allocation
 * that reuses it, whatever threads they run on. ts is CLOCK_MONOTONIC ns taken with seq.
 *
 * Sampled mode (CTXLAB_ALLOC_SAMPLE=MEAN > 0): each thread draws exponential byte intervals
 * of mean MEAN (a Poisson process over the bytes it allocates, as tcmalloc does); an
 * allocation is recorded when it crosses a sample point, and its free is recorded only for
 * such sampled addresses (the interposer keeps a hash of the live sampled ones). The reader
 * weighs each sampled allocation of size s by 1 / (1 - exp(-s / MEAN)). Exact mode
 * (CTXLAB_ALLOC_SAMPLE=0): every call is recorded.
 */
#ifndef CTXLAB_ALLOC_ALLOCREC_H
#define CTXLAB_ALLOC_ALLOCREC_H

#include <stdint.h>

#define ALLOCREC_MAGIC 0x31434c41636c7863ULL /* "cxlcALC1" */
#define ALLOCREC_HDR_SIZE 4096u
#define ALLOCREC_CHUNK (256u * 1024u)
#define ALLOCREC_MAX_DEPTH 48

enum allocrec_kind {
	ALLOCREC_END = 0,
	ALLOCREC_MALLOC = 1,
	ALLOCREC_CALLOC,
	ALLOCREC_REALLOC,        /* the new block of a realloc (its old one: ALLOCREC_FREE_REALLOC) */
	ALLOCREC_MEMALIGN,
	ALLOCREC_POSIX_MEMALIGN,
	ALLOCREC_ALIGNED_ALLOC,
	ALLOCREC_VALLOC,
	ALLOCREC_PVALLOC,
	ALLOCREC_NALLOC_KINDS,   /* allocation kinds are 1 .. ALLOCREC_NALLOC_KINDS - 1 */
	ALLOCREC_FREE = 16,
	ALLOCREC_FREE_REALLOC = 17,
};

struct allocrec {
	uint8_t kind;
	uint8_t depth;     /* frames that follow (return addresses, the caller of malloc first) */
	uint16_t reserved;
	uint32_t tid;
	uint64_t seq;
	uint64_t ts;       /* CLOCK_MONOTONIC ns */
	uint64_t addr;
	uint64_t size;     /* bytes requested (calloc: n * size); 0 for frees */
	uint64_t frames[]; /* depth entries */
};

/* The header page of rec.PID.N. */
struct allocrec_hdr {
	uint64_t magic;
	uint32_t version;  /* 1 */
	uint32_t pid;
	uint64_t sample_mean; /* 0 = exact */
	uint64_t start_ts;    /* CLOCK_MONOTONIC ns at start-up */
	uint64_t next_chunk;  /* chunks claimed (atomic) */
	char comm[32];        /* /proc/self/comm at start-up */
	char exe[1024];       /* /proc/self/exe at start-up */
};

/* The start of every chunk: the calls its owner made while it owned the chunk. Exact in both
 * modes (every call counted, recorded or not); the reader adds up every chunk's. Records
 * follow at offset ALLOCREC_CHUNKHDR. */
#define ALLOCREC_CHUNKHDR 128u
struct allocrec_chunkhdr {
	uint64_t calls[ALLOCREC_NALLOC_KINDS]; /* per allocation kind (index 0 unused) */
	uint64_t frees;       /* free() calls with a non-NULL pointer (realloc's not counted) */
	uint64_t bytes;       /* bytes requested, all allocation kinds */
	uint64_t dropped;     /* sampled allocations not recorded (sampled-address table full) */
};

#endif
