/* ctxlab flame: renders folded stacks as an interactive flame graph SVG, or two profiles as
 * a differential flame graph. Option parsing and wiring only: rendering is src/profile/. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/log.h"
#include "core/outfile.h"
#include "profile/flamesvg.h"
#include "profile/folded.h"

static const char usage[] =
	"usage: ctxlab flame [options] FILE.folded\n"
	"       ctxlab flame --diff [options] A.folded B.folded\n"
	"\n"
	"Renders folded stacks (`frame;frame;frame COUNT` lines, as ctxlab profile and\n"
	"stackcollapse-*.pl write them; '-' reads stdin) as a self-contained interactive flame\n"
	"graph: click to zoom, Search (regex, Ctrl-F), a tooltip per frame.\n"
	"With --diff, the graph has the shape of B and each frame is coloured by its change from\n"
	"A to B: red grew, blue shrank, white unchanged (inclusive counts, A scaled to B's total\n"
	"unless --no-normalize; frames only in A are not drawn: swap the files to see them).\n"
	"With --per-request NA,NB (the requests of A's and B's trials) each side is converted to\n"
	"CPU-ns per request (samples x 1e9/HZ / requests, --hz as sampled, default 99), so A and B\n"
	"compare by cost per request, not by share: the width is B's cost per request (the image\n"
	"stands for the larger total of the two, so a cheaper B is narrower), the colour the change\n"
	"per frame (red: more CPU per request in B, blue: less), the tooltip both costs and the %.\n"
	"Stacks deeper than 1024 frames are cut there, the rest drawn as one frame \"[deeper\n"
	"frames truncated]\"; bytes of a name that are not UTF-8 are drawn as '?'.\n"
	"\n";

struct out {
	const char *path; /* NULL: stdout */
	struct outfile of;
	FILE *f;
};

/* -o FILE names a path of the user's: /dev/null or a FIFO is written in place, never renamed
 * over; anything else is replaced whole (core/outfile.h). */
static int out_open(struct out *o)
{
	if (!o->path) {
		o->f = stdout;
		return 0;
	}
	int r = outfile_open(&o->of, o->path, OUTFILE_NAMED);
	if (r)
		return error("cannot write '%s': %s", o->path, outfile_strerror(r));
	int fd = dup(o->of.fd); /* the FILE's own: fclose closes it, the outfile keeps its fd */
	o->f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!o->f) {
		if (fd >= 0)
			close(fd);
		outfile_abort(&o->of);
		return error("cannot write '%s': %s", o->path, strerror(errno));
	}
	return 0;
}

static int out_close(struct out *o, int r)
{
	if (!o->path) {
		if (fflush(stdout) != 0 && !r)
			r = -EIO;
		return r;
	}
	if (fclose(o->f) != 0 && !r)
		r = -EIO;
	if (r) {
		outfile_abort(&o->of);
		return r;
	}
	return outfile_commit(&o->of);
}

static struct flamesvg_opts fo = {.normalize = 1};
static const char *out_path; /* NULL: stdout */
static int diff, no_normalize;
static double per_req[2]; /* --per-request NA,NB */
static int hz = 99;

static int opt_per_request(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	double *v = o->value;
	char *end;
	errno = 0;
	v[0] = strtod(arg, &end);
	if (end != arg && *end == ',') {
		const char *b = end + 1;
		v[1] = strtod(b, &end);
		if (end != b && !*end && !errno && v[0] > 0 && v[1] > 0 && isfinite(v[0]) &&
		    isfinite(v[1]))
			return 0;
	}
	return errbuf(err, errlen, "two request counts > 0, A's and B's, e.g. --per-request "
				   "120000,118000");
}

static int opt_hz(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	char *end;
	long v = strtol(arg, &end, 10);
	if (!arg[0] || *end || v < 1 || v > 100000)
		return errbuf(err, errlen, "samples per second, 1..100000, e.g. --hz 99");
	*(int *)o->value = (int)v;
	return 0;
}

static int opt_width(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	char *end;
	long v = strtol(arg, &end, 10);
	if (!arg[0] || *end || v < 100 || v > 100000)
		return errbuf(err, errlen, "pixels, 100..100000, e.g. --width 1600");
	*(int *)o->value = (int)v;
	return 0;
}

static int opt_min_width(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	char *end;
	double v = strtod(arg, &end);
	if (!arg[0] || *end || !(v > 0) || v > 1000)
		return errbuf(err, errlen, "pixels > 0, e.g. --min-width 0.5");
	*(double *)o->value = v;
	return 0;
}

static const struct opt options[] = {
	OPT_GROUP("options:"),
	OPT_STRING('o', "output", &out_path, "FILE", "write the SVG to FILE (default: stdout)"),
	OPT_FLAG(0, "diff", &diff, "differential flame graph of A (before) and B (after)"),
	OPT_FLAG(0, "no-normalize", &no_normalize,
		 "with --diff: compare raw counts, not shares of each total"),
	OPT_CALLBACK(0, "per-request", per_req, "NA,NB",
		     "with --diff: CPU-ns per request of each side (NA, NB: requests served)",
		     opt_per_request),
	OPT_CALLBACK(0, "hz", &hz, "HZ",
		     "with --per-request: the sampling rate of both profiles (default 99)", opt_hz),
	OPT_STRING(0, "title", &fo.title, "TEXT",
		   "title (default \"Flame Graph\" / \"Differential Flame Graph\")"),
	OPT_STRING(0, "subtitle", &fo.subtitle, "TEXT", "a second line under the title"),
	OPT_STRING(0, "unit", &fo.unit, "NAME", "what a count is, for tooltips (default samples)"),
	OPT_CALLBACK(0, "width", &fo.width_px, "PX", "image width (default 1200)", opt_width),
	OPT_CALLBACK(0, "min-width", &fo.min_width_px, "PX",
		     "leave out frames narrower than PX (default 0.1)", opt_min_width),
	OPT_END(),
};

extern const struct cmd_info cmd_info_flame;

static int cmd_flame(int argc, char **argv)
{
	int nfiles = cmd_parse_options(&cmd_info_flame, argc, argv, 0, NULL);
	if (nfiles < 0)
		return 2;
	if (no_normalize)
		fo.normalize = 0;
	struct out out = {.path = out_path};
	if (per_req[0] > 0 && !diff)
		return error("--per-request goes with --diff A.folded B.folded"), 2;
	if (per_req[0] > 0) {
		fo.ns_per_count_a = 1e9 / hz / per_req[0];
		fo.ns_per_count_b = 1e9 / hz / per_req[1];
	}
	if (nfiles != (diff ? 2 : 1))
		return error(diff ? "--diff takes two folded files: A (before) and B (after)"
				  : "one folded file expected (see 'ctxlab flame --help')"), 2;
	struct folded a, b;
	folded_init(&a);
	folded_init(&b);
	char err[512];
	int r = folded_read_file(&a, argv[0], err, sizeof err);
	if (!r && diff)
		r = folded_read_file(&b, argv[1], err, sizeof err);
	if (r) {
		error("%s", err);
		goto done;
	}
	if (!diff && !a.total) {
		r = error("'%s' holds no samples (every count is 0 or the file is empty)",
			  argv[0]);
		goto done;
	}
	if (diff && !b.total) {
		r = error("'%s' holds no samples: a differential graph takes B's shape",
			  argv[1]);
		goto done;
	}
	folded_sort(&a);
	folded_sort(&b);
	r = out_open(&out);
	if (r)
		goto done;
	r = diff ? flamesvg_write_diff(&a, &b, &fo, out.f) : flamesvg_write(&a, &fo, out.f);
	r = out_close(&out, r);
	if (r)
		error("cannot write '%s': %s", out.path ? out.path : "stdout",
		      outfile_strerror(r));
done:
	folded_release(&a);
	folded_release(&b);
	return r ? 1 : 0;
}

const struct cmd_info cmd_info_flame = {"flame", cmd_flame,
					"render folded stacks as a flame graph (or a differential one)",
					usage, options, NULL};
