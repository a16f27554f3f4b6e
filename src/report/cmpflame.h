/* cmpflame: the differential flame graph per request of one compared cell pair (compare -o).
 *
 * A side's profile is the merge of DIR/flame/ID/profile.folded of every ok trial of the cell
 * that `run --profile` (or `profile =` in the spec) profiled; its cost per request is
 * samples x CMPFLAME_PERIOD_NS / the requests those trials served (throughput.requests of
 * their records), so A and B compare by CPU-ns per request, not by raw samples or shares
 * (flamesvg.h, "Per request"). The graph has B's shape, red = more CPU per request in B.
 *
 * The folded files are read through the "flame" path of each record: a path that is absolute
 * or holds ".." is ignored (a record may come from anyone). No output but svg_path. Not
 * thread-safe.
 */
#ifndef CTXLAB_REPORT_CMPFLAME_H
#define CTXLAB_REPORT_CMPFLAME_H

#include <stddef.h>

#include "core/buf.h"
#include "report/compare.h"
#include "report/trials.h"

/* ctxlab run profiles at 99 Hz of CPU time (cpu-clock): one sample stands for 1/99 s of CPU */
#define CMPFLAME_HZ 99
#define CMPFLAME_PERIOD_NS (1e9 / CMPFLAME_HZ)

struct cmpflame_side {
	int ntrials;       /* profiled ok trials merged */
	double samples;    /* their on-CPU samples */
	double requests;   /* the requests they served */
	double ns_per_request; /* samples x period / requests */
	char id[128];      /* the first trial's flame directory name ("http-epoll-c16-cpus1") */
};

struct cmpflame {
	struct cmpflame_side a, b;
	char file[300];    /* written: "flame-diff/ID.svg" ("flame-diff/IDA--IDB.svg" when the ids
			    * differ), relative to the output directory */
};

/* Writes the differential flame graph per request of cell key_a of a against key_b of b to
 * DIR/out->file (replaced whole; DIR/flame-diff/ must exist), titled title. 1 when written; 0 when a side has no profiled ok
 * trial with samples and requests (nothing written; *why says which); -errno with err set
 * (unreadable folded file, write error). */
int cmpflame_cell(const struct trials *a, const char *key_a, const struct trials *b,
		  const char *key_b, const char *dir, const char *title, struct cmpflame *out,
		  const char **why, char *err, size_t errlen);

/* What cmpflame_cell_req compares and where it writes; NULL members take cmpflame_cell's
 * defaults. */
struct cmpflame_req {
	const char *folded;  /* the folded file of each flame directory ("front.folded"); NULL =
			      * "profile.folded" (the server's whole tree) */
	const char *file;    /* written as "flame-diff/FILE" (a plain name); NULL = from the ids */
	const char *label_a, *label_b; /* the sides' names in the subtitle; NULL = "A", "B" */
};

/* cmpflame_cell with req (NULL = cmpflame_cell). a and b may be the same run. */
int cmpflame_cell_req(const struct trials *a, const char *key_a, const struct trials *b,
		      const char *key_b, const char *dir, const char *title,
		      const struct cmpflame_req *req, struct cmpflame *out, const char **why,
		      char *err, size_t errlen);

/* `compare -o DIR`: creates DIR (and DIR/flame-diff/), writes the differential flame graph per
 * request of every cell pair of r both sides profiled, then DIR/compare.md and
 * DIR/compare.html: the text report (compare_text) and a table "Differential flame graphs, CPU
 * per request" (cell, A and B us per request with their profiled trials, change, link), or a
 * line saying no cell has flame graphs on both sides. Appends one line per graph to lines
 * ("differential flame graph per request: DIR/FILE (A x us, B y us per request, +p%)").
 * 0, or -errno with err set. */
int cmpflame_write_dir(const struct compare_result *r, const struct trials *a,
		       const struct trials *b, const char *label_a, const char *label_b,
		       const struct compare_opts *opts, const char *dir, struct buf *lines,
		       char *err, size_t errlen);

#endif
