/* ctxlab report DIR: (re)writes trials.csv, report.md and report.html of a results directory. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/log.h"
#include "report/report.h"

static const char usage[] =
	"usage: ctxlab report [--quiet] DIR\n"
	"\n"
	"Writes DIR/trials.csv, DIR/report.md and DIR/report.html from the trial records of a\n"
	"'ctxlab run' results directory (DIR/trials.jsonl, DIR/env.json), then prints the path of\n"
	"report.html. The HTML report is self-contained (inline SVG and CSS, no script, no network):\n"
	"the question, the setup, findings computed from the data, per protocol charts of server\n"
	"CPU, CPU per request, context switches, throughput and p99 latency against connections\n"
	"(one line per engine, a point = the median, error bars: its 95% CI), and a table of\n"
	"mean ± stddev (CV) and median [95% CI] per cell; findings carry their CIs and outlier\n"
	"trials (Tukey fences) are listed, never dropped. Figures are defined in docs/metrics.md,\n"
	"\"Experiment records\" and \"Statistics\".\n"
	"\n"
	"Every pair of profiled cells that differ in one parameter also gets a differential flame\n"
	"graph per request, DIR/flame-diff/AXIS-A-vs-B.svg (gateway cells: also the front process\n"
	"alone, front-A-vs-B.svg), linked from both reports (docs/metrics.md, \"Differential flame\n"
	"graphs within a run\").\n"
	"\n";

static int quiet;

static const struct opt options[] = {
	OPT_FLAG('q', "quiet", &quiet, "print nothing on success"),
	OPT_END(),
};

extern const struct cmd_info cmd_info_report;

static int cmd_report(int argc, char **argv)
{
	int n = cmd_parse_options(&cmd_info_report, argc, argv, 0, NULL);
	if (n < 0)
		return 2;
	log_set_quiet(quiet); /* -q: info() says nothing */
	if (n > 1)
		return cmd_usage_error("too many arguments: '%s' (give one results directory)", argv[1]);
	if (n < 1)
		return cmd_usage_error("missing results directory (usage: ctxlab report DIR)");
	const char *dir = argv[0];
	char err[1024];
	if (report_write(dir, err, sizeof err) < 0) {
		error("%s", err);
		return 1;
	}
	if (!quiet)
		printf("%s/report.html\n", dir);
	return 0;
}

const struct cmd_info cmd_info_report = {"report", cmd_report,
					 "write the HTML and Markdown report of a results directory",
					 usage, options, NULL};
