#include "lab/experiment.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "lab/bundled.h"
#include "lab/env.h"
#include "lab/runner.h"
#include "lab/spec.h"

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
 * own list when the spec names one). 0, or the parser's negative return with err set. */
static int load_spec(struct spec *s, const char *text, const char *file, const char *self,
		     int flags, char *err, size_t errlen)
{
	struct spec_catalog cat;
	if (runner_catalog(self, "local", &cat, err, errlen) < 0)
		return -1;
	int r = spec_parse_text(s, text, file, &cat, flags, err, errlen);
	if (r < 0)
		return r;
	if (!strncmp(s->server_host, "ssh:", 4)) {
		char host[256];
		snprintf(host, sizeof host, "%s", s->server_host);
		if (runner_catalog(self, host, &cat, err, errlen) < 0) {
			/* an unusable host fails every trial with its reason (the run's host probe),
			 * the run goes on: the spec stays checked against this machine's engines */
			warn("%s: the spec is checked against this machine's engines", err);
			err[0] = 0;
			return 0;
		}
		spec_release(s);
		r = spec_parse_text(s, text, file, &cat, flags, err, errlen);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The spec's text and file name: DIR/spec.ini on resume, the file, a bundled experiment by
 * name (an operand that is no file), or the bundled default. NULL with err set. */
static char *spec_source(const struct experiment_opts *o, char *file, size_t flen,
			 int *is_default, char *err, size_t errlen)
{
	char *text = NULL;
	const struct bundled_spec *b = NULL;
	*is_default = 0;
	if (o->resume) {
		snprintf(file, flen, "%s/spec.ini", o->resume);
		if (!(text = read_text(file)))
			errbuf(err, errlen, "cannot read '%s': %s (is '%s' a results directory of "
			       "'ctxlab run'?)", file, strerror(errno), o->resume);
		return text;
	}
	struct stat st;
	if (!o->spec_path)
		b = bundled_find(BUNDLED_DEFAULT);
	else if (stat(o->spec_path, &st) < 0 && errno == ENOENT)
		b = bundled_find(o->spec_path);
	if (b) {
		snprintf(file, flen, "%s (embedded)", b->file);
		*is_default = 1;
		if (!(text = strdup(b->text)))
			errbuf(err, errlen, "out of memory");
		return text;
	}
	if (!o->spec_path) {
		errbuf(err, errlen, "this ctxlab has no bundled experiment '%s' (give the path of "
		       "an .ini file)", BUNDLED_DEFAULT);
		return NULL;
	}
	snprintf(file, flen, "%s", o->spec_path);
	if (!(text = read_text(file))) {
		int e = errno;
		char names[512];
		if (e == ENOENT)
			errbuf(err, errlen, "cannot open spec '%s': %s, and no bundled experiment has "
			       "that name (bundled: %s; see 'ctxlab run --list'; or give the path of "
			       "an .ini file)", file, strerror(e), bundled_names(names, sizeof names));
		else
			errbuf(err, errlen, "cannot open spec '%s': %s (give the path of an .ini file, "
			       "a bundled experiment's name, or no argument for the default "
			       "experiment)", file, strerror(e));
		return NULL;
	}
	/* a bundled experiment's own file (experiments/papaya.ini) runs as `run NAME` does */
	for (int i = 0; i < bundled_count; i++)
		*is_default |= !strcmp(text, bundled_specs[i].text);
	return text;
}

/* --resume: the same cells as the run being resumed (engines dropped at its start stay out) */
static void keep_resumed_engines(struct spec *s, const struct env_resume *env)
{
	const struct spec_key *ek = spec_get(s, "server", "engine");
	char names[SPEC_MAX_VALUES][32];
	int ne = ek ? ek->n : 0;
	for (int i = 0; i < ne; i++)
		snprintf(names[i], sizeof names[i], "%s", ek->v[i].text);
	for (int i = 0; i < ne; i++)
		if (!env_resume_has_engine(env, names[i]))
			spec_drop_engine(s, names[i], "not in the run being resumed (env.json): "
					 "left out");
}

/* The default keeps only the engines that start here (e.g. no Go peer built). 0 or -1. */
static int probe_default_engines(struct spec *s, const char *self, char *err, size_t errlen)
{
	if (s->pingpong) /* no server: nothing to probe */
		return 0;
	const struct spec_key *ek = spec_get(s, "server", "engine");
	const struct spec_key *pk = spec_get(s, "server", "proto");
	char names[SPEC_MAX_VALUES][32];
	int ne = ek ? ek->n : 0;
	for (int i = 0; i < ne; i++)
		snprintf(names[i], sizeof names[i], "%s", ek->v[i].text);
	for (int i = 0; i < ne && pk && pk->n; i++) {
		char why[600], note[700];
		if (runner_probe(self, s->server_host, names[i], pk->v[pk->n - 1].text, why,
				 sizeof why) == 0)
			continue;
		snprintf(note, sizeof note, "cannot start here (%.500s): dropped from the default "
			 "experiment", why);
		spec_drop_engine(s, names[i], note);
	}
	ek = spec_get(s, "server", "engine");
	if (!ek || !ek->n)
		return errbuf(err, errlen, "no engine of the default experiment starts here (see "
			      "the notes above; try 'ctxlab serve --engine epoll')");
	return 0;
}

/* [server] functions = DIR is handed to every server as it is written: a directory that is not
 * there would make every function cell a column of 404s, so it is an error before anything
 * runs (on this machine's server only: a remote host's paths are its own). 0 or -1. */
static int check_functions_dir(const struct spec *s, char *err, size_t errlen)
{
	const struct spec_key *fk = spec_get(s, "server", "functions");
	struct stat st;
	if (!fk || !fk->n || strncmp(s->server_host, "ssh:", 4) == 0)
		return 0;
	const char *d = fk->v[0].text;
	if (stat(d, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	char cwd[1024];
	if (!getcwd(cwd, sizeof cwd))
		snprintf(cwd, sizeof cwd, "?");
	return errbuf(err, errlen, "%s:%d: the functions directory '%s' is not a directory here "
		      "(%s%s%s; run from the source tree, e.g. 'cd ctxlab && build/ctxlab run "
		      "gateway', or give an absolute path)", s->file, fk->line, d,
		      d[0] == '/' ? "" : "relative to the current directory '",
		      d[0] == '/' ? "it does not exist" : cwd, d[0] == '/' ? "" : "'");
}

/* The spec to run, every option applied. 0, or -1 with err set. */
static int experiment_spec(const struct experiment_opts *o, struct spec *s, char **text,
			   int *is_default, struct experiment_result *res, char *err, size_t errlen)
{
	char file[4200];
	*text = spec_source(o, file, sizeof file, is_default, err, errlen);
	if (!*text)
		return -1;
	struct env_resume env = {.profile = -1};
	int quick = o->quick, profile = o->profile;
	if (o->resume) {
		char eerr[256];
		env_read(o->resume, &env, eerr, sizeof eerr); /* absent: the defaults */
		quick = env.quick;
		*is_default = env.is_default;
		profile = env.profile;
	}
	int lr = load_spec(s, *text, file, o->self, *is_default ? SPEC_LENIENT : 0, err, errlen);
	if (lr < 0) {
		res->usage = lr == -E2BIG; /* a matrix too large to run is a usage error */
		return -1;
	}
	if (o->resume && env.have_engines)
		keep_resumed_engines(s, &env);
	if (check_functions_dir(s, err, errlen) < 0) {
		spec_release(s);
		return -1;
	}
	if (*is_default && !o->resume && probe_default_engines(s, o->self, err, errlen) < 0) {
		spec_release(s);
		return -1;
	}
	if (quick)
		spec_quick(s);
	if (profile >= 0)
		s->profile = (enum spec_profile)profile;
	/* the trial order's seed: --seed, the spec's, the one the resumed run drew, or drawn */
	if (o->seed_set) {
		s->seed = o->seed;
		s->seed_set = 1;
	} else if (o->resume && env.have_seed) {
		s->seed = env.seed;
	} else if (!s->seed_set) {
		uint64_t x = 0;
		if (getrandom(&x, sizeof x, GRND_NONBLOCK) != (ssize_t)sizeof x)
			x = clock_now_ns() ^ ((uint64_t)getpid() << 32);
		s->seed = x % 1000000000ULL; /* short enough to type back as seed = N */
	}
	return 0;
}

/* Picks (or takes) the results directory and locks it. 0, or -1 with err set. */
static int experiment_dir(const struct experiment_opts *o, const struct spec *s,
			  struct experiment_result *res, char *err, size_t errlen)
{
	char *dir = res->dir;
	size_t len = sizeof res->dir;
	if (o->resume) {
		snprintf(dir, len, "%s", o->resume);
	} else if (o->out) {
		snprintf(dir, len, "%s", o->out);
	} else {
		char stamp[32];
		time_t now = time(NULL);
		struct tm tm;
		localtime_r(&now, &tm);
		strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
		snprintf(dir, len, "results/%s-%s", s->name, stamp);
		struct stat st;
		for (int i = 2; stat(dir, &st) == 0 && i < 100; i++)
			snprintf(dir, len, "results/%s-%s-%d", s->name, stamp, i);
	}
	if (!o->resume) {
		int rc = mkdirs(dir);
		if (rc < 0)
			return errbuf(err, errlen, "cannot create '%s': %s", dir, strerror(-rc));
	}
	/* one run per directory at a time: held until the report is written */
	res->lockfd = runner_lock(dir, err, errlen);
	if (res->lockfd < 0)
		return -1;
	if (!o->resume && !dir_empty(dir)) {
		close(res->lockfd);
		res->lockfd = -1;
		return errbuf(err, errlen, "'%s' exists and is not empty: a run writes into a fresh "
			      "directory (name another with -o, or continue the run there with "
			      "'ctxlab run --resume %s')", dir, dir);
	}
	return 0;
}

int experiment_run(const struct experiment_opts *o, struct experiment_result *res, char *err,
		   size_t errlen)
{
	memset(res, 0, sizeof *res);
	res->lockfd = -1;
	struct spec s;
	char *text = NULL;
	int is_default = 0;
	if (experiment_spec(o, &s, &text, &is_default, res, err, errlen) < 0) {
		free(text);
		return -1;
	}
	int rc;
	if (o->dry) {
		spec_print_matrix(&s, o->dry_out ? o->dry_out : stdout);
		spec_print_answers(&s, o->dry_out ? o->dry_out : stdout);
		rc = 1;
	} else if (experiment_dir(o, &s, res, err, errlen) < 0) {
		rc = -1;
	} else {
		struct runner_opts ro = {.self = o->self, .dir = res->dir, .spec_text = text,
					 .argv_line = o->argv_line, .resume = o->resume != NULL,
					 .quiet = o->quiet, .is_default = is_default,
					 .ready_timeout_ns = 10000000000ULL};
		rc = runner_run(&s, &ro, err, errlen);
		if (rc < 0) {
			close(res->lockfd);
			res->lockfd = -1;
		}
	}
	spec_release(&s);
	free(text);
	return rc;
}

/* The question's first sentence (up to and with its first '.', '?' or '!' followed by a blank
 * or the end), on one line. */
static void first_sentence(const char *q, char *out, size_t len)
{
	size_t o = 0;
	for (const char *p = q; *p && o + 1 < len; p++) {
		out[o++] = *p == '\n' || *p == '\t' ? ' ' : *p;
		if (strchr(".?!", *p) && (!p[1] || p[1] == ' ' || p[1] == '\n'))
			break;
	}
	out[o] = 0;
	/* one line of a terminal: a long first sentence ends in "..." at a word */
	if (o > 96 && len > 100) {
		size_t cut = 96;
		while (cut > 40 && out[cut] != ' ')
			cut--;
		snprintf(out + cut, len - cut, " ...");
	}
}

static void minutes(uint64_t ns, char *out, size_t len)
{
	if (ns < 60 * 1000000000ULL)
		snprintf(out, len, "%.0f s", ns / 1e9);
	else
		snprintf(out, len, "%.1f min", ns / 60e9);
}

/* The fixed rounds' and the whole run's estimate of a parsed spec, as "8.2 min" texts. */
static void list_estimate(const struct spec *s, char *fixed, size_t flen, char *whole,
			  size_t wlen)
{
	struct spec_cell *cells;
	int n = spec_cells(s, &cells);
	free(cells);
	int trials = n * s->repeat;
	uint64_t est = spec_estimate_ns(s, trials, spec_profiled_trials(s, n, 0, trials));
	minutes(est, fixed, flen);
	whole[0] = 0;
	if (s->precision > 0 && s->max_repeat > s->repeat) {
		uint64_t b = spec_budget_ns(s, n);
		if (b > est)
			minutes(b, whole, wlen);
	}
}

int experiment_list(const char *self, FILE *out, char *err, size_t errlen)
{
	struct spec_catalog cat;
	if (runner_catalog(self, "local", &cat, err, errlen) < 0)
		return -1;
	fprintf(out, "bundled experiments ('ctxlab run NAME'; estimated time on this machine, "
		     "--quick and full):\n");
	for (int i = 0; i < bundled_count; i++) {
		const struct bundled_spec *b = &bundled_specs[i];
		char file[300], q[300], qf[32], qw[32], ff[32], fw[32], perr[512];
		snprintf(file, sizeof file, "%s (embedded)", b->file);
		struct spec s;
		if (spec_parse_text(&s, b->text, file, &cat, SPEC_LENIENT, perr, sizeof perr) < 0) {
			fprintf(out, "  %-10s cannot run here: %s\n", b->name, perr);
			continue;
		}
		first_sentence(s.question, q, sizeof q);
		list_estimate(&s, ff, sizeof ff, fw, sizeof fw);
		spec_quick(&s);
		list_estimate(&s, qf, sizeof qf, qw, sizeof qw);
		fprintf(out, "  %-10s %s\n  %-10s quick ~%s, full ~%s%s%s%s\n", b->name,
			q[0] ? q : "(no question stated)", "", qf, ff, fw[0] ? " (fixed rounds; " : "",
			fw[0] ? fw : "", fw[0] ? " with the extra rounds by precision)" : "");
		spec_release(&s);
	}
	return 0;
}
