/* flamesvg: renders folded stacks as a self-contained interactive flame graph (SVG 1.1).
 *
 * Layout (as flamegraph.pl): one rectangle per frame, the root ("all") at the bottom, each
 * frame's children above it sorted by name, width proportional to the frame's inclusive
 * count; frames narrower than min_width_px are left out (with their children, which are
 * narrower still). Every frame is a <g class="f"> holding a <title> tooltip ("name (N unit,
 * P%)"), a <rect> and a <text> label. Inline JavaScript: click a frame to zoom into it
 * (ancestors stretch to the full width, unrelated frames hide), "Reset Zoom", "Search" (a
 * regular expression; matching frames turn magenta and the matched share of the total is
 * shown, each sample counted once), Ctrl-F = search. Kernel frames (name ending "_[k]") are
 * drawn in orange, user frames in the warm red-yellow palette, colours keyed by name so the
 * same function has the same colour in every graph.
 *
 * Differential mode (flamesvg_write_diff): the graph has the shape of B (widths = B's
 * counts); each frame is coloured by its change from A to B in inclusive count,
 * delta = B - A' where A' is A scaled by total(B)/total(A) when normalize (so two profiles
 * of different lengths compare by share), else A itself. Red = grew, blue = shrank, white =
 * unchanged; saturation = |delta| / the largest |delta| of any frame. Frames that exist
 * only in A have no width in B and are not drawn (swap the arguments to see them). Tooltips
 * give A', B and the delta.
 *
 * Per request (flamesvg_opts.ns_per_count_a/_b both > 0, e.g. the sampling period divided by
 * the requests the trial served): every count is converted to CPU-ns per request, A's with
 * ns_per_count_a and B's with ns_per_count_b (normalize is then ignored): A' = count_A x
 * ns_per_count_a, B' = count_B x ns_per_count_b. The image width stands for the larger of
 * the two totals, so a B that costs less per request than A is drawn narrower than the image
 * (B's root = B's total share of it); widths are B' (B's shape, as above). Colour by
 * delta = B' - A' per frame (red: costs more per request in B, blue: less), saturation =
 * |delta| / the largest |delta|. Tooltips: "name (A 1234 ns/req, B 1100 ns/req, -10.9%)"
 * (the % is delta / A'; "new" when A' = 0).
 *
 * Depth: a stack deeper than FLAMESVG_MAX_DEPTH frames (below "all") is cut there; its
 * deeper frames are drawn as one frame named FLAMESVG_TRUNCATED. Names are any bytes: what
 * is not well-formed UTF-8, and control characters, are drawn as '?'; labels are shortened
 * by characters, never inside a UTF-8 sequence, so the SVG is always well-formed XML.
 *
 * Not thread-safe. Returns 0 / -errno (-ENOMEM, -EIO on a write error, -ENODATA when there is
 * nothing to draw: every count is 0).
 */
#ifndef CTXLAB_PROFILE_FLAMESVG_H
#define CTXLAB_PROFILE_FLAMESVG_H

#include <stdio.h>

#include "profile/folded.h"

#define FLAMESVG_MAX_DEPTH 1024
#define FLAMESVG_TRUNCATED "[deeper frames truncated]"

struct flamesvg_opts {
	const char *title;     /* NULL = "Flame Graph" ("Differential Flame Graph") */
	const char *subtitle;  /* NULL = none */
	const char *unit;      /* what a count is: NULL = "samples" */
	int width_px;          /* 0 = 1200 */
	double min_width_px;   /* 0 = 0.1 */
	int normalize;         /* diff only: scale A to B's total (1 recommended) */
	double ns_per_count_a; /* diff only: per-request mode when both > 0 (see above) */
	double ns_per_count_b;
	/* the tooltip's source position of a frame ("file:line", shown after the name), or NULL
	 * (none known); NULL = no positions */
	const char *(*where)(const char *frame, void *arg);
	void *where_arg;
};

int flamesvg_write(const struct folded *f, const struct flamesvg_opts *o, FILE *out);
int flamesvg_write_diff(const struct folded *a, const struct folded *b,
			const struct flamesvg_opts *o, FILE *out);

#endif
