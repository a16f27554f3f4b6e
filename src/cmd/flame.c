/* ctxlab flame: renders folded stacks as an interactive flame graph SVG, or two profiles as
 * a differential flame graph. Option parsing and wiring only: rendering is src/profile/. */
#include <errno.h>
#include <getopt.h>
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
	"Stacks deeper than 1024 frames are cut there, the rest drawn as one frame \"[deeper\n"
	"frames truncated]\"; bytes of a name that are not UTF-8 are drawn as '?'.\n"
	"\n"
	"options:\n"
	"  -o, --output FILE    write the SVG to FILE (default: stdout)\n"
	"  --diff               differential flame graph of A (before) and B (after)\n"
	"  --no-normalize       with --diff: compare raw counts, not shares of each total\n"
	"  --title TEXT         title (default \"Flame Graph\" / \"Differential Flame Graph\")\n"
	"  --subtitle TEXT      a second line under the title\n"
	"  --unit NAME          what a count is, for tooltips (default samples)\n"
	"  --width PX           image width (default 1200)\n"
	"  --min-width PX       leave out frames narrower than PX (default 0.1)\n";

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

extern const struct cmd_info cmd_info_flame;

static int cmd_flame(int argc, char **argv)
{
	static const struct option opts[] = {
		{"output", required_argument, NULL, 'o'},  {"diff", no_argument, NULL, 'D'},
		{"no-normalize", no_argument, NULL, 'N'},  {"title", required_argument, NULL, 't'},
		{"subtitle", required_argument, NULL, 's'}, {"unit", required_argument, NULL, 'u'},
		{"width", required_argument, NULL, 'w'},   {"min-width", required_argument, NULL, 'm'},
		{"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
	struct flamesvg_opts fo = {.normalize = 1};
	struct out out = {0};
	int diff = 0;
	if (cmd_wants_help(argc, argv))
		return cmd_print_usage(&cmd_info_flame);
	optind = 1;
	int o;
	while ((o = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		char *end;
		switch (o) {
		case 'o':
			out.path = optarg;
			break;
		case 'D':
			diff = 1;
			break;
		case 'N':
			fo.normalize = 0;
			break;
		case 't':
			fo.title = optarg;
			break;
		case 's':
			fo.subtitle = optarg;
			break;
		case 'u':
			fo.unit = optarg;
			break;
		case 'w': {
			long v = strtol(optarg, &end, 10);
			if (*end || v < 100 || v > 100000)
				return error("bad width '%s' (pixels, 100..100000, e.g. --width 1600)",
					     optarg), 2;
			fo.width_px = (int)v;
			break;
		}
		case 'm': {
			double v = strtod(optarg, &end);
			if (*end || !(v > 0) || v > 1000)
				return error("bad min width '%s' (pixels > 0, e.g. --min-width 0.5)",
					     optarg), 2;
			fo.min_width_px = v;
			break;
		}
		default:
			return error("see 'ctxlab flame --help'"), 2;
		}
	}
	int nfiles = argc - optind;
	if (nfiles != (diff ? 2 : 1))
		return error(diff ? "--diff takes two folded files: A (before) and B (after)"
				  : "one folded file expected (see 'ctxlab flame --help')"), 2;
	struct folded a, b;
	folded_init(&a);
	folded_init(&b);
	char err[512];
	int r = folded_read_file(&a, argv[optind], err, sizeof err);
	if (!r && diff)
		r = folded_read_file(&b, argv[optind + 1], err, sizeof err);
	if (r) {
		error("%s", err);
		goto done;
	}
	if (!diff && !a.total) {
		r = error("'%s' holds no samples (every count is 0 or the file is empty)",
			  argv[optind]);
		goto done;
	}
	if (diff && !b.total) {
		r = error("'%s' holds no samples: a differential graph takes B's shape",
			  argv[optind + 1]);
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
					usage};
