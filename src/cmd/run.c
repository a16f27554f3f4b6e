/* ctxlab run [SPEC.ini]: runs an experiment's matrix of trials and writes its report.
 * Option parsing and wiring only: the runner is src/lab/experiment.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/buf.h"
#include "core/log.h"
#include "lab/experiment.h"
#include "lab/host.h"
#include "lab/spec.h"
#include "report/report.h"

static const char usage[] =
	"usage: ctxlab run [options] [SPEC.ini | NAME]\n"
	"   or: ctxlab run --list\n"
	"   or: ctxlab run --resume DIR\n"
	"\n"
	"Runs an experiment: every cell of the spec's matrix (every list-valued key is an axis),\n"
	"each repeated, in rounds (repeat r of every cell before repeat r+1), each round in a\n"
	"random order from a seed (recorded in env.json; --dry-run prints the order). Then, while\n"
	"the spec's time budget allows, extra rounds for the cells whose CPU per request (throughput\n"
	"for saturated cells) has not reached the spec's precision (default: 95% CI half-width\n"
	"within 5% of the median), widest first, up to max_repeat each. Each trial starts 'ctxlab serve' on\n"
	"its CPUs, runs 'ctxlab load' on the other CPUs (when there are any), measures the\n"
	"server's whole process tree over the measured window, stops everything and appends one\n"
	"record to DIR/trials.jsonl. At the end it writes trials.csv, report.md and report.html\n"
	"and prints the path of report.html. NAME runs a bundled experiment (every\n"
	"experiments/NAME.ini is embedded in the binary; --list shows them with their question\n"
	"and estimated time here); a SPEC path that exists wins over a bundled name. With no\n"
	"argument it runs the bundled default, papaya (fork, thread, epoll, coro and Go at 1 to\n"
	"256 connections: sink at 1 Mbps per connection, HTTP closed loop and chat at a fixed\n"
	"room rate; on 1, 2 and 4 CPUs as the machine allows, always leaving the load CPUs of\n"
	"its own). In a bundled experiment, engines missing from this build and CPU counts this\n"
	"machine cannot run cleanly are left out with a note.\n"
	"\n";

static const char usage_tail[] =
	"\n"
	"Spec format, results layout and every figure: docs/metrics.md (\"Experiment records\").\n"
	"A spec's [answer.ID] sections state its questions (a metric, compare = A / B or grow =\n"
	"AXIS, where, say); the report answers each under \"Answers\" with the ratio, its 95% CI\n"
	"and its cells, or says why this run cannot (docs/metrics.md, \"Answers\"); --dry-run\n"
	"lists them. Before the first trial, run measures the machine's kernel and coroutine\n"
	"switch costs (~1 s, env.json switch_cost_ns) for the report's switching share.\n"
	"[experiment] kind = pingpong runs 'ctxlab pingpong' per trial instead of a server under\n"
	"load, its [pingpong] keys (mode, cpus, pin, pairs, size, working_set, stride) the axes\n"
	"(experiments/async.ini). [experiment] timeline = KEY=VALUE ... records the matching\n"
	"cells' first repeat per 200 ms interval (latency percentiles, server CPU, switches) into\n"
	"DIR/timeline/ID.json and .csv, charted in report.html. Every record has system_cpu (the\n"
	"server's and the load's CPUs from /proc/stat); a trial whose server CPUs something else\n"
	"took is flagged. [experiment] alloc = on|exact runs the server with libctxlab-alloc.so\n"
	"preloaded and records its allocations and bytes allocated per request over the window\n"
	"(record 'alloc', report 'Allocations per request'; the Go peer is static: its runtime's\n"
	"own heap allocation counters instead).\n"
	"A spec whose matrix has more than 10000 cells or 1000000 trials (cells x repeat) is\n"
	"refused before anything runs (exit 2).\n"
	"Ctrl-C stops every child; the files stay valid and --resume continues.\n"
	"\n"
	"Hosts ([hosts] in the spec): server and load each local, netns:NAME or ssh:user@host;\n"
	"load may list several hosts (load = H1, H2, ...): they share the connections and the rate,\n"
	"start together and their results are merged exactly (record: load_hosts). ssh runs\n"
	"'ssh $CTXLAB_SSH_OPTIONS -o BatchMode=yes -o ConnectTimeout=10 -T -- user@host ...' (e.g.\n"
	"CTXLAB_SSH_OPTIONS='-i KEY -o UserKnownHostsFile=FILE'). Each host is probed at the\n"
	"start (env.json: hosts): an unreachable one, one without ctxlab at --remote-bin or with\n"
	"another version fails every trial with the host named. Remote roles end with their ssh\n"
	"session: killing the run leaves nothing behind on any host.\n";

/* the options (a command runs once per process); profile: -1 = the spec's, else an
 * enum spec_profile */
static const char *out, *resume, *bin, *remote_bin;
static int dry, quick, quiet, list, profile = -1;
static const char *seed;

/* --profile (arg NULL: first) or --profile=MODE */
static int opt_profile(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	enum spec_profile pr = SPEC_PROFILE_FIRST;
	if (arg && (spec_profile_parse(arg, &pr) < 0 || pr == SPEC_PROFILE_CELLS))
		return errbuf(err, errlen, "use --profile, --profile=first, --profile=all or "
				  "--profile=off");
	*(int *)o->value = (int)pr;
	return 0;
}

static const struct opt options[] = {
	OPT_GROUP("options:"),
	OPT_FLAG(0, "list", &list,
		 "list the bundled experiments: name, question, estimated time\n"
		 "here (--quick and full); run one with 'ctxlab run NAME'"),
	OPT_FLAG(0, "dry-run", &dry, "print the matrix and the estimated duration, run nothing"),
	OPT_FLAG(0, "quick", &quick,
		 "a short version (repeat 1, 200ms warm-up, 500ms trials, smallest\n"
		 "and largest connections only): the default finishes in about a\n"
		 "minute"),
	OPT_CALLBACK_OPTARG(0, "profile", &profile, "MODE",
			    "profile trials into flame graphs (DIR/flame/CELL/, linked from\n"
			    "the report): first (MODE's default: the first repeat of every\n"
			    "cell), all or off; overrides the spec's [experiment] profile\n"
			    "(which may also be cells:KEY=VALUE...: the first repeat of the\n"
			    "matching cells only, e.g. one cell per engine).\n"
			    "Sampling at 99 Hz adds a little to the server CPU of a profiled\n"
			    "trial (docs/metrics.md)",
			    opt_profile),
	OPT_STRING(0, "seed", &seed, "N",
		   "the seed of the trial order (replaces the spec's [experiment]\n"
		   "seed; default: drawn, recorded in env.json); --dry-run prints\n"
		   "the order it gives"),
	OPT_STRING('o', "out", &out, "DIR",
		   "results directory (default results/NAME-YYYYmmdd-HHMMSS); it\n"
		   "must be new or empty"),
	OPT_STRING(0, "resume", &resume, "DIR",
		   "continue an interrupted run: the trials not yet in trials.jsonl\n"
		   "(matched by cell and repeat; a corrupt line is skipped with a\n"
		   "warning and kept). One run per directory at a time (a lock)"),
	OPT_FLAG('q', "quiet", &quiet, "no progress on stderr"),
	OPT_STRING(0, "bin", &bin, "PATH",
		   "the ctxlab binary that runs serve and load (default: this one)"),
	OPT_STRING(0, "remote-bin", &remote_bin, "PATH",
		   "the ctxlab on ssh hosts (default: the same path as the local one); its "
		   "version must match this one's"),
	OPT_END(),
};

extern const struct cmd_info cmd_info_run;

static int cmd_run(int argc, char **argv)
{
	/* the command line as given, for env.json (parsing reorders argv) */
	struct buf line = BUF_INIT;
	for (int i = 0; i < argc; i++)
		buf_appendf(&line, "%s%s", i ? " " : "ctxlab ", argv[i]);
	buf_append(&line, "", 1);
	int rc = 2;
	int nops = cmd_parse_options(&cmd_info_run, argc, argv, 0, NULL);
	if (nops < 0)
		goto out;
	if (nops > 1) {
		rc = cmd_usage_error("too many arguments: '%s' (give one spec file) (see "
				     "'ctxlab run --help')", argv[1]);
		goto out;
	}
	const char *spec_path = nops ? argv[0] : NULL;
	if (list) {
		if (nops || resume || dry) {
			rc = cmd_usage_error("'--list' takes no spec, --resume or --dry-run (see "
					     "'ctxlab run --help')");
			goto out;
		}
	}
	if (resume && (spec_path || out)) {
		rc = cmd_usage_error("'--resume DIR' takes no spec and no --out: the run's own "
				     "spec.ini is used (%s) (see 'ctxlab run --help')", resume);
		goto out;
	}
	if (resume && profile >= 0) {
		rc = cmd_usage_error("'--resume DIR' takes no --profile: the run goes on with "
				     "the profiling it started with (env.json) (see 'ctxlab run "
				     "--help')");
		goto out;
	}

	uint64_t seedv = 0;
	if (seed && spec_seed_parse(seed, &seedv) < 0) {
		rc = cmd_usage_error("bad --seed '%s' (allowed: a whole number 0 to "
				     "18446744073709551615) (see 'ctxlab run --help')", seed);
		goto out;
	}
	if (resume && seed) {
		rc = cmd_usage_error("'--resume DIR' takes no --seed: the run goes on with the "
				     "seed it started with (env.json) (see 'ctxlab run --help')");
		goto out;
	}

	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0) {
		error("cannot find the ctxlab binary (/proc/self/exe): %s", strerror(errno));
		rc = 1;
		goto out;
	}
	self[n] = 0;
	if (bin) {
		if (access(bin, X_OK) < 0) {
			error("cannot run '--bin %s': %s (give an executable ctxlab)", bin,
			      strerror(errno));
			rc = 2;
			goto out;
		}
		snprintf(self, sizeof self, "%s", bin);
	}

	if (list) {
		char lerr[1024];
		rc = experiment_list(self, stdout, lerr, sizeof lerr) < 0 ? 1 : 0;
		if (rc)
			error("%s", lerr);
		goto out;
	}
	/* ssh hosts run the same path as this binary unless told otherwise */
	host_set_remote_bin(remote_bin ? remote_bin : self);
	log_set_quiet(quiet); /* -q: the run's messages go through info() */
	struct experiment_opts o = {.self = self, .spec_path = spec_path, .out = out,
				    .resume = resume, .argv_line = buf_head(&line), .dry = dry,
				    .dry_out = stdout, .quick = quick, .quiet = quiet,
				    .profile = profile, .seed_set = seed != NULL, .seed = seedv};
	struct experiment_result res;
	char err[1024];
	rc = experiment_run(&o, &res, err, sizeof err);
	if (rc < 0) {
		error("%s", err);
		rc = res.usage ? 2 : 1;
		goto out;
	}
	if (dry) {
		rc = 0;
		goto out;
	}
	/* the report, also after an interrupt (of what was recorded) */
	if (report_write(res.dir, err, sizeof err) < 0) {
		close(res.lockfd);
		error("%s", err);
		rc = 1;
		goto out;
	}
	close(res.lockfd);
	printf("%s/report.html\n", res.dir);
out:
	buf_free(&line);
	return rc;
}

const struct cmd_info cmd_info_run = {"run", cmd_run,
				      "run an experiment (default: the embedded one) and write its report",
				      usage, options, usage_tail};
