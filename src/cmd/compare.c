/* ctxlab compare DIR_A DIR_B | DIR --engines A,B: the A/B report with benchstat's method
 * (report/compare.h): medians with CIs, Hodges-Lehmann shift, Mann-Whitney + Holm, noise floor. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "core/outfile.h"
#include "report/cmpflame.h"
#include "report/compare.h"

static const char usage[] =
	"usage: ctxlab compare [--noise DIR_A2] [--noise-floor PCT] [--json FILE|-] DIR_A DIR_B\n"
	"   or: ctxlab compare [--noise-floor PCT] [--json FILE|-] DIR --engines A,B\n"
	"\n"
	"Compares two results directories of 'ctxlab run' (or two engines of one run) with\n"
	"benchstat's method. Cells are paired by identical parameters, else by every parameter but\n"
	"the engine, else all ok trials of A are compared with all ok trials of B. For each pair and\n"
	"each metric both sides have (cpu_us_per_request, requests_per_s, p99_us,\n"
	"ctxsw_per_request, ...): one trial = one value; each side's median with its 95% CI (order\n"
	"statistics); the Hodges-Lehmann shift of B against A with its 95% CI, also in % of A's\n"
	"median; the two-sided Mann-Whitney p, Holm-adjusted over the metrics of the cell. A row is\n"
	"significant only when the adjusted p < 0.05, the shift's CI excludes 0, |shift| exceeds\n"
	"the noise floor and n is large enough for an exact p < 0.05 at all. Significant rows come\n"
	"first; the others are marked '~' with the conditions they failed. When n is too small for\n"
	"any row of a cell to be significant, a warning says how many repeats would do: decide n in\n"
	"advance, do not rerun until significant. Every figure: docs/metrics.md, \"Statistics\".\n"
	"With -o DIR, also writes DIR/compare.md and DIR/compare.html (the same report) and, for\n"
	"every cell pair where both runs have flame graphs (run --profile), DIR/flame-diff/CELL.svg:\n"
	"a differential flame graph normalised per request (CPU-ns per request of each side =\n"
	"samples x 1/99 s / requests of its profiled trials; width = B's cost, red = more CPU per\n"
	"request in B, blue = less), linked from both.\n"
	"\n";

static const char *engines, *noise_dir, *json_path, *out_dir;
static double floor_frac = STATS_NOISE_FLOOR;

static int opt_floor(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	char *end;
	errno = 0;
	double v = strtod(arg, &end);
	if (!*arg || *end || errno || !isfinite(v) || !(v >= 0)) {
		snprintf(err, errlen, "a percentage >= 0, e.g. 2");
		return -1;
	}
	*(double *)o->value = v / 100;
	return 0;
}

static const struct opt options[] = {
	OPT_STRING(0, "engines", &engines, "A,B",
		   "compare engine A with engine B inside one results directory"),
	OPT_CALLBACK(0, "noise-floor", &floor_frac, "PCT",
		     "smallest |shift| that counts, in % of A's median (default 2)", opt_floor),
	OPT_STRING(0, "noise", &noise_dir, "DIR_A2",
		   "a second run of A (an A/A pair): the noise floor of each metric becomes\n"
		   "the max of --noise-floor and the largest |shift| of A against DIR_A2"),
	OPT_STRING('o', "output", &out_dir, "DIR",
		   "also write DIR/compare.md, DIR/compare.html and the differential\n"
		   "flame graphs per request of the cells both runs profiled\n"
		   "(DIR/flame-diff/)"),
	OPT_STRING(0, "json", &json_path, "FILE|-",
		   "also write one JSON row per cell x metric to FILE ('-': standard output,\n"
		   "instead of the text)"),
	OPT_END(),
};

extern const struct cmd_info cmd_info_compare;

static int load(struct trials *t, const char *dir, int *loaded)
{
	char err[1024];
	if (trials_load(t, dir, err, sizeof err) < 0)
		return error("%s", err);
	*loaded = 1;
	return 0;
}

static int cmd_compare(int argc, char **argv)
{
	int nd = cmd_parse_options(&cmd_info_compare, argc, argv, 0, NULL);
	if (nd < 0)
		return 2;
	if (nd > 2)
		return cmd_usage_error("too many arguments: '%s' (give two directories, or one with "
				       "--engines A,B)", argv[2]);
	char a[64] = "", b[64] = "";
	if (engines) {
		const char *comma = strchr(engines, ',');
		if (nd != 1 || !comma || comma == engines || !comma[1] ||
		    (size_t)(comma - engines) >= sizeof a || strlen(comma + 1) >= sizeof b)
			return cmd_usage_error("'--engines' takes one directory and two engines like "
				     "'ctxlab compare DIR --engines fork,epoll'");
		memcpy(a, engines, comma - engines);
		a[comma - engines] = 0;
		snprintf(b, sizeof b, "%s", comma + 1);
	} else if (nd != 2) {
		return cmd_usage_error("give two results directories (or one with --engines A,B); see "
				       "'ctxlab compare --help'");
	}
	struct trials ta, tb, tn;
	int la = 0, lb = 0, ln = 0, rc = 1;
	struct compare_opts opts = COMPARE_OPTS_INIT;
	struct compare_result r;
	struct buf out = BUF_INIT, flames = BUF_INIT;
	struct jw w;
	jw_init(&w);
	compare_result_init(&r);
	opts.noise_floor = floor_frac;
	if (load(&ta, argv[0], &la) < 0 || (!engines && load(&tb, argv[1], &lb) < 0) ||
	    (noise_dir && load(&tn, noise_dir, &ln) < 0))
		goto out;
	if (ln)
		opts.noise = &tn;
	for (int i = 0; i < (engines ? 1 : 2) + ln; i++) {
		const struct trials *t = i == 0 ? &ta : i == 1 && !engines ? &tb : &tn;
		const char *d = i == 0 ? argv[0] : i == 1 && !engines ? argv[1] : noise_dir;
		if (!t->nrec) {
			error("nothing to compare: '%s' has no trials (give a results directory of "
			      "'ctxlab run')", d);
			goto out;
		}
	}
	char err[1024];
	const char *label_a = engines ? a : argv[0], *label_b = engines ? b : argv[1];
	if (compare_run(&ta, engines ? &ta : &tb, engines ? a : NULL, engines ? b : NULL, &opts,
			&r, err, sizeof err) < 0) {
		error("%s", err);
		goto out;
	}
	if (out_dir && cmpflame_write_dir(&r, &ta, engines ? &ta : &tb, label_a, label_b, &opts,
					  out_dir, &flames, err, sizeof err) < 0) {
		error("%s", err);
		goto out;
	}
	int json_stdout = json_path && !strcmp(json_path, "-");
	if (json_path) {
		compare_json(&r, label_a, label_b, &opts, &w);
		if (w.oom) {
			error("out of memory writing JSON");
			goto out;
		}
		if (json_stdout) {
			fwrite(w.buf, 1, w.len, stdout);
			fputc('\n', stdout);
			if (r.short_cells) {
				compare_warning(&r, &opts, &out);
				buf_append(&out, "", 1);
				warn("%s", buf_head(&out));
			}
		} else {
			struct buf jb = BUF_INIT;
			int e = buf_append(&jb, w.buf, w.len);
			if (!e)
				e = buf_append(&jb, "\n", 1);
			if (!e)
				e = outfile_write(json_path, buf_head(&jb), buf_used(&jb), OUTFILE_NAMED);
			buf_free(&jb);
			if (e < 0) {
				error("cannot write '%s': %s (name a writable file, or '-')", json_path,
				      outfile_strerror(e));
				goto out;
			}
		}
	}
	if (!json_stdout) {
		compare_text(&r, label_a, label_b, &opts, &out);
		if (buf_used(&out)) /* never fwrite from NULL: an empty buf has no head */
			fwrite(buf_head(&out), 1, buf_used(&out), stdout);
		if (buf_used(&flames))
			fwrite(buf_head(&flames), 1, buf_used(&flames), stdout);
	}
	if (fflush(stdout) || ferror(stdout)) {
		error("cannot write to standard output: %s", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	buf_free(&out);
	buf_free(&flames);
	jw_release(&w);
	compare_result_release(&r);
	if (la)
		trials_release(&ta);
	if (lb)
		trials_release(&tb);
	if (ln)
		trials_release(&tn);
	return rc;
}

const struct cmd_info cmd_info_compare = {
	"compare", cmd_compare,
	"A/B comparison of two runs or two engines: medians, shift, CI, p, significance", usage,
	options, NULL};
