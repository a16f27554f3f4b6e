/* alloc: reads what the allocation interposer (libctxlab-alloc.so, alloc/allocrec.h) wrote for
 * `ctxlab profile --alloc`, matches frees to their allocations and computes pprof's four heap
 * figures per call stack (alloc_objects, alloc_space, inuse_objects, inuse_space), the heap in
 * use over time with its peak, and the stacks in use at the peak (massif's peak snapshot).
 *
 * Matching: per process image (one rec.PID.N file), records are replayed in seq order; an
 * allocation adds a live block (address -> stack, size, weight), a free of a live address
 * removes it; a free of an address not live (allocated before the interposer was loaded, or
 * inherited over fork) is counted in unmatched_frees and otherwise ignored. What is live at
 * the end of the replay is "in use" (at exit, or when CMD was stopped).
 *
 * Sampled mode (sample_mean > 0): each recorded allocation of s bytes stands for
 * w = 1 / (1 - exp(-s / sample_mean)) allocations and s * w bytes (tcmalloc's estimate,
 * unbiased for a Poisson process over bytes); every figure is then an estimate. Exact mode:
 * w = 1.
 *
 * The curve: every allocation and free of every image, ordered by ts, summed (estimated
 * bytes). The peak is the curve's maximum (the first one); the blocks in use at the peak are
 * those allocated at or before it and freed after it (or never).
 *
 * Folded sets (profile/folded.h): root = the image's comm, then frames root first, leaf = the
 * function that called malloc & co; each entry's `count` is bytes (rounded) and its `ns`
 * objects (rounded), so folded files and flame graphs are by bytes and pprof takes both.
 *
 * Not thread-safe. Functions return 0 / -errno with err filled.
 */
#ifndef CTXLAB_ALLOC_ALLOC_H
#define CTXLAB_ALLOC_ALLOC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "alloc/allocrec.h"
#include "profile/folded.h"

struct alloc_point {
	uint64_t t_ns;  /* since the first record of any image */
	double inuse;   /* bytes in use just after it (estimated in sampled mode) */
};

struct alloc_result {
	uint64_t sample_mean;   /* 0 = exact */
	int images;             /* rec files read (processes, or process images after exec) */
	uint64_t records, unmatched_frees, dropped, bad_records;
	/* exact call counts from the headers (every call, sampled or not) */
	uint64_t calls[ALLOCREC_NALLOC_KINDS], calls_total, frees, bytes_requested;
	/* recorded allocations per kind */
	uint64_t recorded[ALLOCREC_NALLOC_KINDS];
	/* totals (estimates in sampled mode) */
	double alloc_objects, alloc_bytes, inuse_objects, inuse_bytes;
	double peak_bytes, peak_objects;
	uint64_t peak_t_ns, duration_ns;
	struct folded alloc, inuse, peak; /* count = bytes, ns = objects */
	struct alloc_point *curve;        /* at most ALLOC_CURVE_MAX points, in time order */
	size_t ncurve;
	char comm[32], exe[1024];         /* of the first image (the command) */
};

#define ALLOC_CURVE_MAX 4000

/* Reads every rec.PID.N (and maps.PID.N) in dir. *r is initialised here; release it with
 * alloc_result_release whatever the return. -ENOENT when dir holds no record file. */
int alloc_read_dir(const char *dir, struct alloc_result *r, char *err, size_t errlen);
void alloc_result_release(struct alloc_result *r);

/* The massif-like chart: heap in use over time (a step line), the peak marked, and the peak's
 * top `top` stacks (leaf functions with their callers) listed below it with their bytes.
 * A self-contained SVG, styled like the report's charts. 0 / -EIO. */
int alloc_heap_svg(const struct alloc_result *r, const char *title, int top, FILE *out);
/* The curve as text: "t_ns\tinuse_bytes" lines after a "# " header. 0 / -EIO. */
int alloc_curve_tsv(const struct alloc_result *r, FILE *out);

/* The exact call counters of every rec.PID.N in dir, summed, read while the processes run
 * (the files are shared mappings: a reading is current to the last call): allocation calls,
 * bytes requested, frees. For figures per request over a window (read at its start and end,
 * divide the difference by the requests answered). 0, or -errno (-ENOENT: no record file). */
struct alloc_counters {
	uint64_t calls, bytes, frees;
	int images;
};
int alloc_counters_read(const char *dir, struct alloc_counters *c);

/* The interposer libctxlab-alloc.so for the ctxlab binary at exe (NULL: this process's own,
 * /proc/self/exe): next to it (the build tree), else in ../lib/ctxlab/ (an install). 0 with
 * out filled, or -1 when neither is readable. */
int alloc_lib_path(const char *exe, char *out, size_t len);

/* Removes a record directory the interposer wrote into (its plain files, then the directory;
 * nothing below it is followed). Errors are ignored: it is clean-up. */
void alloc_dir_remove(const char *dir);

/* Human names of the allocation kinds ("malloc", "calloc", ...); "?" when out of range. */
const char *alloc_kind_name(int kind);

#endif
