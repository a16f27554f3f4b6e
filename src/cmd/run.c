/* ctxlab run [SPEC.ini]: runs an experiment's matrix of trials and writes its report. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/buf.h"
#include "core/log.h"
#include "lab/experiment.h"
#include "lab/spec.h"
#include "report/report.h"

static const char usage[] =
	"usage: ctxlab run [options] [SPEC.ini]\n"
	"   or: ctxlab run --resume DIR\n"
	"\n"
	"Runs an experiment: every cell of the spec's matrix (every list-valued key is an axis),\n"
	"each repeated, engines interleaved within a repeat. Each trial starts 'ctxlab serve' on\n"
	"its CPUs, runs 'ctxlab load' on the other CPUs (when there are any), measures the\n"
	"server's whole process tree over the measured window, stops everything and appends one\n"
	"record to DIR/trials.jsonl. At the end it writes trials.csv, report.md and report.html\n"
	"and prints the path of report.html. With no SPEC it runs the embedded default\n"
	"experiment (experiments/papaya.ini: fork, thread, epoll, coro and Go at 1 to 256\n"
	"connections, sink at 1 Mbps per connection and HTTP closed loop, 1 CPU and all CPUs;\n"
	"engines missing from this build are left out with a note).\n"
	"\n"
	"  --dry-run        print the matrix and the estimated duration, run nothing\n"
	"  --quick          a short version (repeat 1, 200ms warm-up, 500ms trials, smallest and\n"
	"                   largest connections only): the default finishes in about a minute\n"
	"  --profile[=MODE] profile trials into flame graphs (DIR/flame/CELL/, linked from the\n"
	"                   report): first (MODE's default: the first repeat of every cell), all\n"
	"                   or off; overrides the spec's [experiment] profile. Sampling at 99 Hz\n"
	"                   adds a little to the server CPU of a profiled trial (docs/metrics.md)\n"
	"  -o, --out DIR    results directory (default results/NAME-YYYYmmdd-HHMMSS); it must\n"
	"                   be new or empty\n"
	"  --resume DIR     continue an interrupted run: the trials not yet in trials.jsonl\n"
	"                   (matched by cell and repeat; a corrupt line is skipped with a\n"
	"                   warning and kept). One run per directory at a time (a lock)\n"
	"  -q, --quiet      no progress on stderr\n"
	"  --bin PATH       the ctxlab binary that runs serve and load (default: this one)\n"
	"\n"
	"Spec format, results layout and every figure: docs/metrics.md (\"Experiment records\").\n"
	"A spec whose matrix has more than 10000 cells or 1000000 trials (cells x repeat) is\n"
	"refused before anything runs (exit 2).\n"
	"Ctrl-C stops every child; the files stay valid and --resume continues.\n";

static int cmd_run(int argc, char **argv)
{
	const char *spec_path = NULL, *out = NULL, *resume = NULL, *bin = NULL;
	int dry = 0, quick = 0, quiet = 0, profile = -1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--dry-run"))
			dry = 1;
		else if (!strcmp(a, "--profile"))
			profile = SPEC_PROFILE_FIRST;
		else if (!strncmp(a, "--profile=", 10)) {
			enum spec_profile pr;
			if (spec_profile_parse(a + 10, &pr) < 0)
				return cmd_usage_error("bad '%s' (allowed: --profile, "
						       "--profile=first, --profile=all, "
						       "--profile=off)", a);
			profile = (int)pr;
		}
		else if (!strcmp(a, "--quick"))
			quick = 1;
		else if (!strcmp(a, "-q") || !strcmp(a, "--quiet"))
			quiet = 1;
		else if (!strcmp(a, "-o") || !strcmp(a, "--out") || !strcmp(a, "--resume") ||
			 !strcmp(a, "--bin")) {
			if (++i >= argc)
				return cmd_usage_error("'%s' needs a path", a);
			if (!strcmp(a, "--resume"))
				resume = argv[i];
			else if (!strcmp(a, "--bin"))
				bin = argv[i];
			else
				out = argv[i];
		} else if (a[0] == '-' && a[1])
			return cmd_usage_error("unknown option '%s' (see 'ctxlab run --help')", a);
		else if (spec_path)
			return cmd_usage_error("too many arguments: '%s' (give one spec file)", a);
		else
			spec_path = a;
	}
	if (resume && (spec_path || out))
		return cmd_usage_error("'--resume DIR' takes no spec and no --out: the run's own "
				   "spec.ini is used (%s)", resume);
	if (resume && profile >= 0)
		return cmd_usage_error("'--resume DIR' takes no --profile: the run goes on with "
				   "the profiling it started with (env.json)");

	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		return error("cannot find the ctxlab binary (/proc/self/exe): %s", strerror(errno)), 1;
	self[n] = 0;
	if (bin) {
		if (access(bin, X_OK) < 0)
			return error("cannot run '--bin %s': %s (give an executable ctxlab)", bin,
				     strerror(errno)), 2;
		snprintf(self, sizeof self, "%s", bin);
	}

	log_set_quiet(quiet); /* -q: the run's messages go through info() */
	struct buf line = BUF_INIT;
	for (int i = 0; i < argc; i++)
		buf_appendf(&line, "%s%s", i ? " " : "ctxlab ", argv[i]);
	buf_append(&line, "", 1);
	struct experiment_opts o = {.self = self, .spec_path = spec_path, .out = out,
				    .resume = resume, .argv_line = buf_head(&line), .dry = dry,
				    .dry_out = stdout, .quick = quick, .quiet = quiet,
				    .profile = profile};
	struct experiment_result res;
	char err[1024];
	int rc = experiment_run(&o, &res, err, sizeof err);
	buf_free(&line);
	if (rc < 0) {
		error("%s", err);
		return res.usage ? 2 : 1;
	}
	if (dry)
		return 0;
	/* the report, also after an interrupt (of what was recorded) */
	if (report_write(res.dir, err, sizeof err) < 0) {
		close(res.lockfd);
		error("%s", err);
		return 1;
	}
	close(res.lockfd);
	printf("%s/report.html\n", res.dir);
	return rc;
}

const struct cmd_info cmd_info_run = {"run", cmd_run,
				      "run an experiment (default: the embedded one) and write its report",
				      usage};
