/* folded: aggregated call stacks in Brendan Gregg's folded format.
 *
 * A folded line is `frame;frame;...;frame COUNT`: the root first (by convention the process
 * name, comm), the leaf last, then one space and a non-negative integer. Identical stacks are
 * merged (their counts add). The file format is what stackcollapse-*.pl write and
 * flamegraph.pl / `ctxlab flame` read.
 *
 * Each entry carries two values: `count` (what the folded file holds: samples for an on-CPU
 * profile, microseconds for an off-CPU one) and `ns` (the time the entry stands for: CPU time
 * for on-CPU samples, blocked time for off-CPU; 0 when read from a file). pprof output uses
 * both.
 *
 * Ownership: the struct owns every stack string (copied in). Not thread-safe.
 * Functions return 0 / -errno.
 */
#ifndef CTXLAB_PROFILE_FOLDED_H
#define CTXLAB_PROFILE_FOLDED_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct buf;

struct folded_entry {
	char *stack;     /* "comm;f1;f2", NUL-terminated */
	uint64_t count;
	uint64_t ns;
};

struct folded {
	struct folded_entry *e; /* entries in insertion order (or sorted by folded_sort) */
	size_t n, cap;
	uint32_t *slots;        /* hash index: entry index + 1, 0 = empty */
	size_t nslots;
	uint64_t total;         /* sum of count */
	uint64_t total_ns;      /* sum of ns */
};

void folded_init(struct folded *f);
void folded_release(struct folded *f);

/* Adds count/ns to the stack (len bytes, no NUL needed), creating it when new; -EINVAL when
 * the len bytes hold a NUL. */
int folded_add(struct folded *f, const char *stack, size_t len, uint64_t count, uint64_t ns);

/* Parses folded text: one stack per line, count after the last space; blank lines and lines
 * starting with '#' are skipped. Returns the number of lines merged, or -EINVAL with
 * err[] naming the line ("line 3: no count after the last space ...", "line 3: NUL byte").
 * text is any bytes (len of them, no NUL terminator needed): it may come from anyone. */
int folded_parse(struct folded *f, const char *text, size_t len, char *err, size_t errlen);
/* Reads a whole file (path "-" = stdin) and parses it; -errno or -EINVAL (err filled). */
int folded_read_file(struct folded *f, const char *path, char *err, size_t errlen);

/* Appends one frame name to a folded stack being built in b, made safe for the format: ';'
 * (the frame separator) becomes ':', '\n', '\r' and '\t' (line and count separators) a space,
 * other control characters '?'. For every name that reaches a stack: functions, and the
 * process name (comm) that is the root frame. Returns 0 / -ENOMEM. */
int folded_append_frame(struct buf *b, const char *name);

/* Sorts entries by stack string (byte order, like flamegraph.pl's sort). Rebuilds the index. */
void folded_sort(struct folded *f);
/* Writes every entry as a folded line (entries with count 0 are skipped). */
int folded_write(const struct folded *f, FILE *out);

/* Per-function totals over all stacks (the root frame, comm, is not a function and is left
 * out when skip_root). self = count of stacks whose leaf is the function; total = count of
 * stacks containing it at least once (recursion counted once). */
struct folded_fn {
	char *name;
	uint64_t self, total;
};
/* Returns a malloc'd array (*n entries) sorted by self descending (ties: total, name);
 * free with folded_fns_free. NULL on ENOMEM (and *n = 0) or when there is no entry. */
struct folded_fn *folded_functions(const struct folded *f, int skip_root, size_t *n);
void folded_fns_free(struct folded_fn *fns, size_t n);

#endif
