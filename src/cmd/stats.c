/* ctxlab stats FILE | A B: one-sample summary or two-sample comparison of numbers, one per line,
 * with core/stats (medians with order-statistic CIs, Hodges-Lehmann, Mann-Whitney, Tukey). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/json.h"
#include "core/log.h"
#include "core/stats.h"

#define LEVEL 0.95
#define MAX_LISTED_OUTLIERS 10

static const char usage[] =
	"usage: ctxlab stats [--json] FILE\n"
	"   or: ctxlab stats [--json] [--alpha P] [--noise-floor PCT] A B\n"
	"\n"
	"Reads numbers, one per line, from FILE ('-': standard input): one value per trial, never\n"
	"pooled per-request values. Blank lines and lines starting with '#' are skipped; any other\n"
	"line that is not a finite decimal number is an error naming the file and the line.\n"
	"\n"
	"One file: n, the median with its distribution-free 95% CI (order statistics, binomial\n"
	"method) and the confidence that CI achieves (n < 6 cannot reach 95%: the full range is\n"
	"shown and says so), mean, stddev (n - 1), min, max, and the values outside Tukey's fences\n"
	"(1.5 IQR beyond the quartiles, type 7) with their lines: flagged, never dropped.\n"
	"\n"
	"Two files A and B: each side's median with its CI; the Hodges-Lehmann shift of B against A\n"
	"(the median of every difference b - a) with its 95% CI; that shift in % of A's median; the\n"
	"two-sided Mann-Whitney U p-value (exact when no value is tied and n_A x n_B <= 10000, else\n"
	"the normal approximation with tie and continuity correction); and whether the difference\n"
	"is significant: p < alpha, the shift's CI excludes 0 and |shift| > the noise floor (one\n"
	"comparison: Holm leaves p as it is). When n is too small for any p < alpha, it says how\n"
	"many values per side would be needed: decide n in advance, do not rerun until significant.\n"
	"Every figure is defined in docs/metrics.md, \"Statistics\".\n"
	"\n";

static const char usage_tail[] =
	"\n"
	"Exit status: 0 when the figures were computed (significant or not), 1 for a file that\n"
	"cannot be read or holds bad data, 2 for bad usage.\n";

struct sample {
	const char *path; /* as given; "-" is stdin */
	const char *name; /* for messages */
	double *v;
	size_t *line;     /* line of each value */
	size_t n, cap;
	signed char *flags;
	struct stats_summary sum;
};

static void sample_release(struct sample *s)
{
	free(s->v);
	free(s->line);
	free(s->flags);
}

/* A printable excerpt of a bad line for the message. */
static void excerpt(const char *s, size_t len, char *out, size_t outlen)
{
	size_t j = 0;
	for (size_t i = 0; i < len && j + 4 < outlen; i++)
		out[j++] = isprint((unsigned char)s[i]) ? s[i] : '?';
	if (len > outlen - 4 && j + 3 < outlen) {
		out[j++] = '.';
		out[j++] = '.';
		out[j++] = '.';
	}
	out[j] = 0;
}

/* Strict: optional sign, digits, '.', exponent; finite; the whole field. */
static int parse_number(const char *s, size_t len, double *v)
{
	if (!len)
		return -1;
	for (size_t i = 0; i < len; i++)
		if (!strchr("0123456789+-.eE", s[i]) || !s[i])
			return -1;
	char buf[128];
	if (len >= sizeof buf)
		return -1;
	memcpy(buf, s, len);
	buf[len] = 0;
	char *end;
	errno = 0;
	double d = strtod(buf, &end);
	if (end != buf + len || end == buf)
		return -1;
	if (!isfinite(d) || (errno == ERANGE && fabs(d) > 1))
		return -2; /* overflow */
	*v = d;
	return 0;
}

static int add_value(struct sample *s, double v, size_t line)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		double *nv = realloc(s->v, cap * sizeof *nv);
		if (!nv)
			return -ENOMEM;
		s->v = nv;
		size_t *nl = realloc(s->line, cap * sizeof *nl);
		if (!nl)
			return -ENOMEM;
		s->line = nl;
		s->cap = cap;
	}
	s->v[s->n] = v;
	s->line[s->n] = line;
	s->n++;
	return 0;
}

/* Reads s->path; prints the error and returns -1 on failure. */
static int sample_read(struct sample *s)
{
	int is_stdin = !strcmp(s->path, "-");
	s->name = is_stdin ? "standard input" : s->path;
	FILE *f = is_stdin ? stdin : fopen(s->path, "r");
	if (!f)
		return error("cannot open '%s': %s (give a file of numbers, one per line, or '-')",
			     s->path, strerror(errno));
	char *buf = NULL;
	size_t bufcap = 0, lineno = 0;
	ssize_t got;
	int rc = 0;
	while ((got = getline(&buf, &bufcap, f)) >= 0) {
		lineno++;
		size_t len = (size_t)got;
		if (memchr(buf, 0, len)) {
			rc = error("'%s' line %zu: holds a NUL byte (give one decimal number per line)",
				   s->name, lineno);
			goto out;
		}
		const char *p = buf;
		while (len && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		while (len && strchr(" \t\r\n", p[len - 1]))
			len--;
		if (!len || *p == '#')
			continue;
		double v;
		int r = parse_number(p, len, &v);
		if (r) {
			char ex[48];
			excerpt(p, len, ex, sizeof ex);
			rc = error("'%s' line %zu: '%s' is %s (give one finite decimal number per line; "
				   "'#' starts a comment)", s->name, lineno, ex,
				   r == -2 ? "out of range" : "not a number");
			goto out;
		}
		if (add_value(s, v, lineno) < 0) {
			rc = error("'%s': out of memory after %zu values", s->name, s->n);
			goto out;
		}
	}
	if (ferror(f)) {
		rc = error("cannot read '%s': %s", s->name, strerror(errno));
		goto out;
	}
	if (!s->n)
		rc = error("'%s' holds no numbers (give one number per line)", s->name);
out:
	free(buf);
	if (!is_stdin)
		fclose(f);
	return rc;
}

static int sample_describe(struct sample *s)
{
	s->flags = malloc(s->n);
	if (!s->flags)
		return error("out of memory");
	int r = stats_describe(s->v, s->n, LEVEL, s->flags, &s->sum);
	if (r < 0)
		return error("cannot summarize '%s': %s", s->name, strerror(-r));
	return 0;
}

/* smallest n whose full range reaches the level: 1 - 2^(1-n) >= level */
static size_t median_min_n(void)
{
	size_t n = 1;
	while (1 - pow(2, 1 - (double)n) < LEVEL)
		n++;
	return n;
}

/* ---- text ----------------------------------------------------------------------------- */

static void print_median_ci(const struct stats_median_ci *m)
{
	if (m->reached)
		printf("[%.6g, %.6g] (order statistics %zu..%zu, achieved %.1f%%)", m->lo, m->hi,
		       m->lo_rank, m->hi_rank, 100 * m->confidence);
	else
		printf("not reachable with n = %zu (needs n >= %zu): full range [%.6g, %.6g] covers "
		       "%.1f%%", m->n, median_min_n(), m->lo, m->hi, 100 * m->confidence);
}

static void print_outliers(const struct sample *s)
{
	size_t k = s->sum.fences.n_low + s->sum.fences.n_high;
	if (!k) {
		printf("none (Tukey fences [%.6g, %.6g])\n", s->sum.fences.low, s->sum.fences.high);
		return;
	}
	printf("%zu (Tukey fences [%.6g, %.6g]):", k, s->sum.fences.low, s->sum.fences.high);
	size_t shown = 0;
	for (size_t i = 0; i < s->n && shown < MAX_LISTED_OUTLIERS; i++)
		if (s->flags[i]) {
			printf("%s %.6g (line %zu)", shown ? "," : "", s->v[i], s->line[i]);
			shown++;
		}
	if (k > shown)
		printf(", and %zu more", k - shown);
	printf("; flagged, not dropped\n");
}

static void text_one(const struct sample *s)
{
	const struct stats_summary *m = &s->sum;
	printf("file       %s\n", s->name);
	printf("n          %zu\n", m->n);
	printf("median     %.6g   95%% CI ", m->median.median);
	print_median_ci(&m->median);
	printf("\n");
	printf("mean       %.6g   stddev %.6g", m->mean, m->stddev);
	if (m->mean != 0)
		printf(" (CV %.1f%%)", 100 * m->stddev / fabs(m->mean));
	printf("\nrange      %.6g .. %.6g\n", m->min, m->max);
	printf("outliers   ");
	print_outliers(s);
}

/* ---- JSON ----------------------------------------------------------------------------- */

static void json_median(struct jw *w, const struct stats_median_ci *m)
{
	jw_kdouble(w, "median", m->median);
	jw_kdouble(w, "ci_low", m->lo);
	jw_kdouble(w, "ci_high", m->hi);
	jw_kuint(w, "ci_low_rank", m->lo_rank);
	jw_kuint(w, "ci_high_rank", m->hi_rank);
	jw_kdouble(w, "ci_confidence", m->confidence);
	jw_kbool(w, "ci_reached", m->reached);
}

static void json_sample(struct jw *w, const struct sample *s)
{
	const struct stats_summary *m = &s->sum;
	jw_obj(w);
	jw_kstr(w, "file", s->path);
	jw_kuint(w, "n", m->n);
	jw_kdouble(w, "level", LEVEL);
	json_median(w, &m->median);
	jw_kdouble(w, "mean", m->mean);
	jw_kdouble(w, "stddev", m->stddev);
	jw_kdouble(w, "min", m->min);
	jw_kdouble(w, "max", m->max);
	jw_kdouble(w, "q1", m->fences.q1);
	jw_kdouble(w, "q3", m->fences.q3);
	jw_kdouble(w, "fence_low", m->fences.low);
	jw_kdouble(w, "fence_high", m->fences.high);
	jw_key(w, "outliers");
	jw_arr(w);
	for (size_t i = 0; i < s->n; i++)
		if (s->flags[i]) {
			jw_obj(w);
			jw_kuint(w, "line", s->line[i]);
			jw_kdouble(w, "value", s->v[i]);
			jw_kstr(w, "side", s->flags[i] < 0 ? "low" : "high");
			jw_end(w);
		}
	jw_end(w);
	jw_end(w);
}

static int emit_json(struct jw *w)
{
	if (w->oom)
		return error("out of memory writing JSON");
	fwrite(w->buf, 1, w->len, stdout);
	fputc('\n', stdout);
	return 0;
}

/* ---- two samples ---------------------------------------------------------------------- */

struct verdict {
	struct stats_compare c;
	double p_adj;
	int significant;
	unsigned why;
	double min_p;        /* smallest exact p possible with these n */
	size_t need_n;       /* per side for p < alpha to be possible; 0 when not computable */
};

static void text_two(const struct sample *a, const struct sample *b, const struct verdict *v,
		     double alpha, double floor_frac)
{
	const struct stats_compare *c = &v->c;
	printf("A  %s: n = %zu, median %.6g, 95%% CI ", a->name, a->n, c->a.median);
	print_median_ci(&c->a);
	printf("\nB  %s: n = %zu, median %.6g, 95%% CI ", b->name, b->n, c->b.median);
	print_median_ci(&c->b);
	printf("\n\n");
	printf("shift B - A      %+.6g (Hodges-Lehmann), 95%% CI [%+.6g, %+.6g] (", c->hl.shift,
	       c->hl.lo, c->hl.hi);
	if (c->hl.reached)
		printf("achieved %.1f%%, %s)\n", 100 * c->hl.confidence,
		       c->hl.exact ? "exact" : "normal approximation");
	else
		printf("95%% not reachable with these n: full range, covers %.1f%%)\n",
		       100 * c->hl.confidence);
	if (isfinite(c->rel_shift))
		printf("relative shift   %+.2f%% of A's median\n", 100 * c->rel_shift);
	else
		printf("relative shift   undefined (A's median is 0)\n");
	printf("Mann-Whitney     U = %.6g of %zu pairs, p = %.4g (%s, two-sided)\n", c->mw.u,
	       a->n * b->n, c->mw.p,
	       c->mw.exact ? "exact" : "normal approximation, tie and continuity corrected");
	if (v->significant) {
		printf("significant      yes: p < %g, the CI excludes 0, |shift| %.2f%% > noise floor "
		       "%g%%\n", alpha, 100 * fabs(c->rel_shift), 100 * floor_frac);
	} else {
		printf("significant      no:");
		const char *sep = " ";
		if (v->why & STATS_FAIL_P) {
			printf("%sp = %.4g is not below %g", sep, v->p_adj, alpha);
			sep = "; ";
		}
		if (v->why & STATS_FAIL_CI) {
			printf("%sthe shift's CI includes 0", sep);
			sep = "; ";
		}
		if (v->why & STATS_FAIL_FLOOR) {
			if (isnan(c->rel_shift))
				printf("%sthe relative shift is undefined", sep);
			else
				printf("%s|shift| %.2f%% is within the noise floor %g%%", sep,
				       100 * fabs(c->rel_shift), 100 * floor_frac);
			sep = "; ";
		}
		if (v->why & STATS_FAIL_N)
			printf("%sn is too small for any p < %g (see the note)", sep, alpha);
		printf("\n");
	}
	printf("outliers         A: %zu, B: %zu (Tukey fences; 'ctxlab stats FILE' lists them)\n",
	       a->sum.fences.n_low + a->sum.fences.n_high,
	       b->sum.fences.n_low + b->sum.fences.n_high);
	if (!(v->min_p < alpha)) {
		printf("\nnote: with %zu and %zu values the smallest p an exact test can give is %.4g,\n"
		       "so p < %g is out of reach (a smaller approximate p does not count).",
		       a->n, b->n, v->min_p, alpha);
		if (v->need_n)
			printf(" Use at least %zu values per side.", v->need_n);
		printf("\nChoose n before measuring: do not rerun until significant.\n");
	}
}

static void json_two(struct jw *w, const struct sample *a, const struct sample *b,
		     const struct verdict *v, double alpha, double floor_frac)
{
	const struct stats_compare *c = &v->c;
	jw_obj(w);
	jw_key(w, "a");
	json_sample(w, a);
	jw_key(w, "b");
	json_sample(w, b);
	jw_kdouble(w, "level", LEVEL);
	jw_kdouble(w, "median_a", c->a.median);
	jw_kdouble(w, "median_b", c->b.median);
	jw_kdouble(w, "shift", c->hl.shift);
	jw_kdouble(w, "ci_low", c->hl.lo);
	jw_kdouble(w, "ci_high", c->hl.hi);
	jw_kdouble(w, "ci_confidence", c->hl.confidence);
	jw_kbool(w, "ci_reached", c->hl.reached);
	jw_kbool(w, "ci_exact", c->hl.exact);
	jw_kdouble(w, "relative_shift", c->rel_shift); /* null when A's median is 0 */
	jw_kdouble(w, "u", c->mw.u);
	jw_kdouble(w, "p_value", c->mw.p);
	jw_kbool(w, "p_exact", c->mw.exact);
	jw_kbool(w, "ties", c->mw.ties);
	jw_kdouble(w, "p_adjusted", v->p_adj);
	jw_kdouble(w, "alpha", alpha);
	jw_kdouble(w, "noise_floor", floor_frac);
	jw_kbool(w, "significant", v->significant);
	jw_key(w, "failed");
	jw_arr(w);
	for (unsigned bit = 1; bit <= STATS_FAIL_N; bit <<= 1)
		if (v->why & bit)
			jw_str(w, stats_fail_name(bit));
	jw_end(w);
	jw_kdouble(w, "min_p", v->min_p);
	jw_kbool(w, "n_too_small", !(v->min_p < alpha));
	if (v->need_n)
		jw_kuint(w, "min_n_per_side", v->need_n);
	else
		jw_key(w, "min_n_per_side"), jw_null(w);
	jw_end(w);
}

static int compare_two(struct sample *a, struct sample *b, struct verdict *v, double alpha,
		       double floor_frac)
{
	int r = stats_compare(a->v, a->n, b->v, b->n, LEVEL, &v->c);
	if (r == -E2BIG)
		return error("'%s' and '%s': %zu x %zu values make more pairs than the "
			     "Hodges-Lehmann shift takes (%u); give fewer values (one per trial)",
			     a->name, b->name, a->n, b->n, (unsigned)STATS_MAX_PAIRS);
	if (r < 0)
		return error("cannot compare '%s' with '%s': %s", a->name, b->name, strerror(-r));
	/* one comparison: Holm over a single p leaves it as it is; compare runs it per cell over
	 * every metric */
	r = stats_holm(&v->c.mw.p, 1, &v->p_adj);
	if (r == 0)
		r = stats_significant(v->p_adj, v->c.hl.lo, v->c.hl.hi, v->c.rel_shift, a->n, b->n,
				      alpha, floor_frac, &v->why);
	if (r < 0)
		return error("cannot decide significance: %s", strerror(-r));
	v->significant = r;
	v->min_p = stats_mw_min_p(a->n, b->n);
	if (stats_mw_min_n(alpha, &v->need_n) < 0)
		v->need_n = 0;
	return 0;
}

/* ---- the command ---------------------------------------------------------------------- */

extern const struct cmd_info cmd_info_stats;

static int json;
static double alpha = STATS_ALPHA, floor_frac = STATS_NOISE_FLOOR;

static int opt_alpha(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	double v;
	if (parse_number(arg, strlen(arg), &v) < 0 || !(v > 0 && v < 1)) {
		snprintf(err, errlen, "a number between 0 and 1, e.g. 0.05");
		return -1;
	}
	*(double *)o->value = v;
	return 0;
}

static int opt_floor(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	double v;
	if (parse_number(arg, strlen(arg), &v) < 0 || !(v >= 0)) {
		snprintf(err, errlen, "a percentage >= 0, e.g. 2");
		return -1;
	}
	*(double *)o->value = v / 100;
	return 0;
}

static const struct opt options[] = {
	OPT_FLAG(0, "json", &json, "print one JSON object instead of text"),
	OPT_CALLBACK(0, "alpha", &alpha, "P", "significance level, 0 < P < 1 (default 0.05)",
		     opt_alpha),
	OPT_CALLBACK(0, "noise-floor", &floor_frac, "PCT",
		     "smallest |shift| that counts, in % of A's median (default 2)", opt_floor),
	OPT_END(),
};

static int cmd_stats(int argc, char **argv)
{
	int nfiles = cmd_parse_options(&cmd_info_stats, argc, argv, 0, NULL);
	if (nfiles < 0)
		return 2;
	const int optind = 0; /* the operands are argv[0..nfiles) */
	if (nfiles < 1 || nfiles > 2)
		return cmd_usage_error("give one file (a summary) or two files A B (a comparison); see "
				       "'ctxlab stats --help'");
	if (nfiles == 2 && !strcmp(argv[optind], "-") && !strcmp(argv[optind + 1], "-"))
		return cmd_usage_error("only one of A and B can be '-' (standard input)");
	struct sample s[2] = {{.path = argv[optind]}, {.path = nfiles == 2 ? argv[optind + 1] : ""}};
	struct jw w;
	jw_init(&w);
	int rc = 1;
	for (int i = 0; i < nfiles; i++)
		if (sample_read(&s[i]) < 0 || sample_describe(&s[i]) < 0)
			goto out;
	if (nfiles == 1) {
		if (json) {
			json_sample(&w, &s[0]);
			if (emit_json(&w) < 0)
				goto out;
		} else {
			text_one(&s[0]);
		}
	} else {
		struct verdict v = {0};
		if (compare_two(&s[0], &s[1], &v, alpha, floor_frac) < 0)
			goto out;
		if (json) {
			json_two(&w, &s[0], &s[1], &v, alpha, floor_frac);
			if (emit_json(&w) < 0)
				goto out;
		} else {
			text_two(&s[0], &s[1], &v, alpha, floor_frac);
		}
	}
	if (fflush(stdout) || ferror(stdout)) {
		error("cannot write to standard output: %s", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	jw_release(&w);
	sample_release(&s[0]);
	sample_release(&s[1]);
	return rc;
}

const struct cmd_info cmd_info_stats = {
	"stats", cmd_stats, "median, CI, outliers of numbers; A/B shift, p and significance", usage,
	options, usage_tail};
