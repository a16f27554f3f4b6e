/* pprof: encodes folded stacks as a pprof profile (profile.proto, protobuf wire format written
 * by hand) and writes it gzipped (zlib), the format `go tool pprof` reads.
 *
 * Mapping from folded stacks (without a loctab, below): every distinct frame name becomes
 * one Function and one Location (ids 1..n, address 0, one Line); every folded entry becomes one Sample whose
 * location_ids run leaf first. The root frame (comm) is kept as the outermost location, so
 * pprof's tree matches the flame graph. Kernel frames ("name_[k]") become Functions named
 * "name" with filename "[kernel.kallsyms]".
 *
 * Values: the profile has d->nvalues sample types. Folded set i contributes its entries'
 * `count` to value index vc[i] and their `ns` to value index vn[i] (-1 = not used); the other
 * values of those samples are 0.
 *
 * Not thread-safe. Returns 0 / -errno.
 */
#ifndef CTXLAB_PROFILE_PPROF_H
#define CTXLAB_PROFILE_PPROF_H

#include <stdint.h>

#include "core/buf.h"
#include "profile/folded.h"

#define PPROF_MAX_VALUES 4

/* Real locations (optional, pprof_desc.loctab): the folded sets' frames after the root are
 * then decimal indices into locs ("comm;12;7;3"), each one Location with its address, its
 * Mapping (maps[map], map -1 = none) and one Line {Function(func, file), line}; the root
 * (comm) stays a name-only location. Mappings get ids 1..nmaps (main_binary is not used). */
struct pprof_loc {
	uint64_t addr;
	const char *func, *file; /* file NULL = unknown */
	int64_t line;            /* 0 = unknown */
	int map;
};
struct pprof_map {
	uint64_t start, limit, offset;
	const char *file, *build_id; /* build_id: hex, "" = none */
	int has_functions, has_lines;
};
struct pprof_loctab {
	const struct pprof_loc *locs;
	size_t nlocs;
	const struct pprof_map *maps;
	size_t nmaps;
};

struct pprof_desc {
	int nvalues;
	const char *type[PPROF_MAX_VALUES]; /* e.g. "samples", "cpu", "offcpu" */
	const char *unit[PPROF_MAX_VALUES]; /* e.g. "count", "nanoseconds" */
	const char *default_type;           /* NULL = pprof's default (the last) */
	const char *period_type, *period_unit; /* NULL = none */
	int64_t period;
	int64_t time_nanos, duration_nanos; /* wall-clock start (ns since the epoch), length */
	const char *comment;                /* NULL = none */
	const char *main_binary;            /* the profiled program's path: one Mapping with
					     * has_functions set, so pprof does not try to
					     * re-symbolize; NULL = no mapping */
	const struct pprof_loctab *loctab;   /* NULL = frames are names (see above) */
};

/* Appends the encoded (uncompressed) Profile message to out. */
int pprof_encode(const struct pprof_desc *d, const struct folded *const *sets, const int *vc,
		 const int *vn, int nsets, struct buf *out);
/* Writes data gzip-compressed to path, whole (core/outfile.h: a fresh temporary, renamed;
 * a link or device at path is refused). 0 or -errno. */
int pprof_write_gz(const void *data, size_t len, const char *path);

#endif
