/* ctxlab compare DIR_A DIR_B | DIR --engines A,B: the seeds' A/B report with % changes. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/buf.h"
#include "core/log.h"
#include "report/compare.h"

static const char usage[] =
	"usage: ctxlab compare DIR_A DIR_B\n"
	"   or: ctxlab compare DIR --engines A,B\n"
	"\n"
	"Prints an A/B report of two results directories of 'ctxlab run' (or of two engines of one\n"
	"run): server CPU average and peak, system CPU, CPU per request, context switches per\n"
	"second, throughput and p99 latency, each as mean (± stddev, CV, n) with B's change\n"
	"relative to A in %. Cells are paired by identical parameters, else by every parameter\n"
	"but the engine, else all ok trials of A are compared with all ok trials of B.\n"
	"\n";

static const char *engines;

static const struct opt options[] = {
	OPT_STRING(0, "engines", &engines, "A,B",
		   "compare engine A with engine B inside one results directory"),
	OPT_END(),
};

extern const struct cmd_info cmd_info_compare;

static int cmd_compare(int argc, char **argv)
{
	int nd = cmd_parse_options(&cmd_info_compare, argc, argv, 0, NULL);
	if (nd < 0)
		return 2;
	if (nd > 2)
		return cmd_usage_error("too many arguments: '%s' (give two directories, or one with "
				       "--engines A,B)", argv[2]);
	char *const *dirs = argv;
	char err[1024];
	struct buf out = BUF_INIT;
	int rc;
	if (engines) {
		char a[64], b[64];
		const char *comma = strchr(engines, ',');
		if (nd != 1 || !comma || comma == engines || !comma[1] ||
		    (size_t)(comma - engines) >= sizeof a || strlen(comma + 1) >= sizeof b)
			return cmd_usage_error("'--engines' takes one directory and two engines like "
				     "'ctxlab compare DIR --engines fork,epoll'");
		memcpy(a, engines, comma - engines);
		a[comma - engines] = 0;
		snprintf(b, sizeof b, "%s", comma + 1);
		rc = compare_engines(dirs[0], a, b, &out, err, sizeof err);
	} else {
		if (nd != 2)
			return cmd_usage_error("give two results directories (or one with --engines A,B); see "
				     "'ctxlab compare --help'");
		rc = compare_dirs(dirs[0], dirs[1], &out, err, sizeof err);
	}
	if (rc < 0) {
		buf_free(&out);
		error("%s", err);
		return 1;
	}
	fwrite(buf_head(&out), 1, buf_used(&out), stdout);
	buf_free(&out);
	return 0;
}

const struct cmd_info cmd_info_compare = {"compare", cmd_compare,
					  "A/B comparison of two runs or two engines, with % changes",
					  usage, options, NULL};
