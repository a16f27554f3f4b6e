/* ctxlab run [SPEC.ini]: runs an experiment's matrix of trials and writes its report. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "lab/default_spec.h"
#include "lab/runner.h"
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

/* The whole file as a C string (caller frees), or NULL with errno set. */
static char *read_text(const char *path)
{
	struct buf b = BUF_INIT;
	int r = buf_read_file(&b, path);
	if (r) {
		errno = -r;
		return NULL;
	}
	return b.data ? b.data : strdup("");
}

static int mkdirs(const char *path)
{
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* 1 when dir holds no entry (or cannot be read: the run's own open reports that). */
static int dir_empty(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return 1;
	struct dirent *e;
	int empty = 1;
	while (empty && (e = readdir(d)))
		empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
	closedir(d);
	return empty;
}

/* Parses the spec against the server host's engines (local first; a remote server host's
 * own list when the spec names one). */
static int load_spec(struct spec *s, const char *text, const char *file, const char *self,
		     int flags)
{
	struct spec_catalog cat;
	char err[1024];
	if (runner_catalog(self, "local", &cat, err, sizeof err) < 0)
		return error("%s", err);
	int r = spec_parse_text(s, text, file, &cat, flags, err, sizeof err);
	if (r < 0)
		return error("%s", err), r;
	if (!strncmp(s->server_host, "ssh:", 4)) {
		char host[256];
		snprintf(host, sizeof host, "%s", s->server_host);
		spec_release(s);
		if (runner_catalog(self, host, &cat, err, sizeof err) < 0)
			return error("%s", err);
		r = spec_parse_text(s, text, file, &cat, flags, err, sizeof err);
		if (r < 0)
			return error("%s", err), r;
	}
	return 0;
}

static int cmd_run(int argc, char **argv)
{
	const char *spec_path = NULL, *out = NULL, *resume = NULL, *bin = NULL;
	json_t *engines = NULL; /* --resume: the engines the run ran (env.json) */
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

	char *text = NULL;
	const char *file;
	int is_default = 0;
	char rfile[4200];
	if (resume) {
		snprintf(rfile, sizeof rfile, "%s/spec.ini", resume);
		text = read_text(rfile);
		if (!text)
			return error("cannot read '%s': %s (is '%s' a results directory of 'ctxlab run'?)",
				     rfile, strerror(errno), resume), 1;
		char env[4200], jerr[256];
		snprintf(env, sizeof env, "%s/env.json", resume);
		json_t *j = json_read_file(env, jerr, sizeof jerr);
		json_t *e = j ? json_object_get(j, "experiment") : NULL;
		json_t *en = e ? json_object_get(e, "engines") : NULL;
		if (json_is_array(en)) { /* the effective matrix of the run (after the probe) */
			json_incref(en);
			engines = en;
		}
		quick = e && json_is_true(json_object_get(e, "quick"));
		is_default = e && json_is_true(json_object_get(e, "embedded_default"));
		enum spec_profile pr;
		const char *ps = e ? json_string_value(json_object_get(e, "profile")) : NULL;
		if (ps && spec_profile_parse(ps, &pr) == 0)
			profile = (int)pr;
		json_decref(j);
		file = rfile;
	} else if (spec_path) {
		text = read_text(spec_path);
		if (!text)
			return error("cannot open spec '%s': %s (give the path of an .ini file, or no "
				     "argument for the default experiment)",
				     spec_path, strerror(errno)), 1;
		file = spec_path;
	} else {
		text = strdup(default_spec_text);
		if (!text)
			return error("out of memory"), 1;
		file = DEFAULT_SPEC_FILE " (embedded)";
		is_default = 1;
	}
	struct spec s;
	int lr = load_spec(&s, text, file, self, is_default ? SPEC_LENIENT : 0);
	if (lr < 0) {
		free(text);
		json_decref(engines);
		return lr == -E2BIG ? 2 : 1; /* a matrix too large to run is a usage error */
	}
	if (engines) {
		/* the same cells as the run being resumed: engines dropped at its start stay out */
		const struct spec_key *ek = spec_get(&s, "server", "engine");
		char names[SPEC_MAX_VALUES][32];
		int ne = ek ? ek->n : 0;
		for (int i = 0; i < ne; i++)
			snprintf(names[i], sizeof names[i], "%s", ek->v[i].text);
		for (int i = 0; i < ne; i++) {
			size_t k;
			json_t *v;
			int kept = 0;
			json_array_foreach(engines, k, v)
				kept |= json_is_string(v) && !strcmp(json_string_value(v), names[i]);
			if (!kept)
				spec_drop_engine(&s, names[i], "not in the run being resumed (env.json): "
					 "left out");
		}
		json_decref(engines);
		engines = NULL;
	}
	if (is_default && !resume) {
		/* the default keeps only the engines that start here (e.g. no Go peer built) */
		const struct spec_key *ek = spec_get(&s, "server", "engine");
		const struct spec_key *pk = spec_get(&s, "server", "proto");
		char names[SPEC_MAX_VALUES][32];
		int ne = ek ? ek->n : 0;
		for (int i = 0; i < ne; i++)
			snprintf(names[i], sizeof names[i], "%s", ek->v[i].text);
		for (int i = 0; i < ne && pk && pk->n; i++) {
			char why[600], note[700];
			if (runner_probe(self, s.server_host, names[i], pk->v[pk->n - 1].text, why,
					 sizeof why) == 0)
				continue;
			snprintf(note, sizeof note, "cannot start here (%.500s): dropped from the default "
				 "experiment", why);
			spec_drop_engine(&s, names[i], note);
		}
		ek = spec_get(&s, "server", "engine");
		if (!ek || !ek->n) {
			spec_release(&s);
			free(text);
			return error("no engine of the default experiment starts here (see the notes "
				     "above; try 'ctxlab serve --engine epoll')"), 1;
		}
	}
	if (quick)
		spec_quick(&s);
	if (profile >= 0)
		s.profile = (enum spec_profile)profile;
	if (dry) {
		spec_print_matrix(&s, stdout);
		spec_release(&s);
		free(text);
		return 0;
	}
	char dir[4096];
	if (resume) {
		snprintf(dir, sizeof dir, "%s", resume);
	} else if (out) {
		snprintf(dir, sizeof dir, "%s", out);
	} else {
		char stamp[32];
		time_t now = time(NULL);
		struct tm tm;
		localtime_r(&now, &tm);
		strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
		snprintf(dir, sizeof dir, "results/%s-%s", s.name, stamp);
		struct stat st;
		for (int i = 2; stat(dir, &st) == 0 && i < 100; i++)
			snprintf(dir, sizeof dir, "results/%s-%s-%d", s.name, stamp, i);
	}
	if (!resume) {
		int rc = mkdirs(dir);
		if (rc < 0) {
			spec_release(&s);
			free(text);
			return error("cannot create '%s': %s", dir, strerror(-rc)), 1;
		}
	}
	char err[1024];
	/* one run per directory at a time: held until the report is written */
	int lockfd = runner_lock(dir, err, sizeof err);
	if (lockfd < 0) {
		spec_release(&s);
		free(text);
		return error("%s", err), 1;
	}
	if (!resume && !dir_empty(dir)) {
		spec_release(&s);
		free(text);
		close(lockfd);
		return error("'%s' exists and is not empty: a run writes into a fresh directory "
			     "(name another with -o, or continue the run there with 'ctxlab run "
			     "--resume %s')", dir, dir), 1;
	}
	struct buf line = BUF_INIT;
	for (int i = 0; i < argc; i++)
		buf_appendf(&line, "%s%s", i ? " " : "ctxlab ", argv[i]);
	buf_append(&line, "", 1);
	struct runner_opts o = {.self = self, .dir = dir, .spec_text = text,
				.argv_line = buf_head(&line), .resume = resume != NULL, .quiet = quiet,
				.is_default = is_default, .ready_timeout_ns = 10000000000ULL};
	int rc = runner_run(&s, &o, err, sizeof err);
	buf_free(&line);
	spec_release(&s);
	free(text);
	if (rc < 0) {
		close(lockfd);
		error("%s", err);
		return 1;
	}
	/* the report, also after an interrupt (of what was recorded) */
	if (report_write(dir, err, sizeof err) < 0) {
		close(lockfd);
		error("%s", err);
		return 1;
	}
	close(lockfd);
	printf("%s/report.html\n", dir);
	return rc;
}

const struct cmd_info cmd_info_run = {"run", cmd_run,
				      "run an experiment (default: the embedded one) and write its report",
				      usage};
