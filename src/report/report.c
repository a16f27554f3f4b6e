#include "report/report.h"
#include "report/allocreport.h"
#include "report/answers.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/json.h"
#include "core/log.h"
#include "core/outfile.h"
#include "report/ppreport.h"
#include "report/rundiff.h"
#include "report/svg.h"
#include "report/timeline.h"

const int report_chart_metrics[] = {RECORD_M_CPU_CORES, RECORD_M_CPU_US_PER_REQUEST,
				    RECORD_M_CTXSW_PER_S, RECORD_M_REQUESTS_PER_S, RECORD_M_P99_US};
const int report_nchart_metrics = sizeof report_chart_metrics / sizeof report_chart_metrics[0];

/* columns of the Markdown/HTML table */
static const int table_metrics[] = {RECORD_M_CPU_CORES,    RECORD_M_CPU_SYS_CORES,
				    RECORD_M_CPU_US_PER_REQUEST, RECORD_M_CTXSW_PER_S,
				    RECORD_M_REQUESTS_PER_S, RECORD_M_P99_US, RECORD_M_ERRORS};
#define NTABLE ((int)(sizeof table_metrics / sizeof table_metrics[0]))

#define CV_NOISY 0.10

static const char *default_question =
	"What does concurrency cost? The same protocol served by a process per connection (fork), "
	"a thread per connection, an event loop (epoll), coroutines (coro) and Go's runtime: how much "
	"server CPU, how many context switches and what latency each model needs as connections grow, "
	"and does having more cores make one model more efficient than another?";

/* ---- layout: panels (everything but x and series), x values, series ---- */

struct panel {
	char *key;   /* "proto=sink cpus=1", "" when no other parameter */
	char *proto; /* its proto value, "" when none */
	int n;
	int *cells;
};

struct layout {
	const char *xkey, *skey; /* "connections", "engine"; NULL when absent */
	int nx, ns, np;
	char **xv, **sv;
	struct panel *p;
};

/* Allocation failures: the piece being built is left out and oom is set; report_write then
 * fails with "out of memory" instead of writing an incomplete report (no die() in a library).
 * The report is built by one thread (see report.h). */
static int oom;

static void *rcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz);
	if (!p)
		oom = 1;
	return p;
}

static char *rstrdup(const char *s)
{
	char *d = strdup(s ? s : "");
	if (!d)
		oom = 1;
	return d;
}

static int has_pkey(const struct trials *t, const char *k)
{
	for (int i = 0; i < t->npkeys; i++)
		if (!strcmp(t->pkeys[i], k))
			return 1;
	return 0;
}

static int add_unique(char **v, int n, const char *s)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(v[i], s))
			return n;
	if (!(v[n] = rstrdup(s)))
		return n;
	return n + 1;
}

static int is_num(const char *s, double *d)
{
	char *end;
	*d = strtod(s, &end);
	return end != s && !*end;
}

static void sort_values(char **v, int n)
{
	double a, b;
	for (int i = 0; i < n; i++)
		if (!is_num(v[i], &a))
			return; /* keep order of appearance */
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0; j--) {
			is_num(v[j - 1], &a);
			is_num(v[j], &b);
			if (a <= b)
				break;
			char *tmp = v[j];
			v[j] = v[j - 1];
			v[j - 1] = tmp;
		}
}

static void panel_key(const struct trials_cell *c, const struct layout *L, struct buf *b)
{
	buf_clear(b);
	for (int i = 0; i < c->nparams; i++) {
		if ((L->xkey && !strcmp(c->pk[i], L->xkey)) || (L->skey && !strcmp(c->pk[i], L->skey)))
			continue;
		buf_appendf(b, "%s%s=%s", b->len ? " " : "", c->pk[i], c->pv[i]);
	}
	buf_append(b, "", 1);
}

static void layout_release(struct layout *L);

/* On an allocation failure the layout is empty (no panel: no chart, no finding; oom set). */
static void layout_build(const struct trials *t, struct layout *L)
{
	memset(L, 0, sizeof(*L));
	L->xkey = has_pkey(t, "connections") ? "connections" : NULL;
	L->skey = has_pkey(t, "engine") ? "engine" : NULL;
	L->xv = rcalloc(t->ncells + 1, sizeof(char *));
	L->sv = rcalloc(t->ncells + 1, sizeof(char *));
	L->p = rcalloc(t->ncells + 1, sizeof(struct panel));
	struct buf b = BUF_INIT;
	if (!L->xv || !L->sv || !L->p)
		goto fail;
	for (int i = 0; i < t->ncells; i++) {
		const struct trials_cell *c = &t->cells[i];
		const char *xv = L->xkey ? trials_cell_param(c, L->xkey) : NULL;
		const char *sv = L->skey ? trials_cell_param(c, L->skey) : NULL;
		L->nx = add_unique(L->xv, L->nx, xv ? xv : "all");
		L->ns = add_unique(L->sv, L->ns, sv ? sv : "all");
		panel_key(c, L, &b);
		int p;
		for (p = 0; p < L->np; p++)
			if (!strcmp(L->p[p].key, buf_head(&b)))
				break;
		if (p == L->np) {
			L->p[p].key = rstrdup(buf_head(&b));
			const char *proto = trials_cell_param(c, "proto");
			L->p[p].proto = rstrdup(proto ? proto : "");
			L->p[p].cells = rcalloc(t->ncells, sizeof(int));
			L->np++;
			if (!L->p[p].key || !L->p[p].proto || !L->p[p].cells)
				goto fail;
		}
		L->p[p].cells[L->p[p].n++] = i;
	}
	buf_free(&b);
	if (oom)
		goto fail;
	sort_values(L->xv, L->nx);
	return;
fail:
	buf_free(&b);
	layout_release(L);
	memset(L, 0, sizeof(*L));
	oom = 1;
}

static void layout_release(struct layout *L)
{
	for (int i = 0; i < L->nx; i++)
		free(L->xv[i]);
	for (int i = 0; i < L->ns; i++)
		free(L->sv[i]);
	for (int i = 0; i < L->np; i++) {
		free(L->p[i].key);
		free(L->p[i].proto);
		free(L->p[i].cells);
	}
	free(L->xv);
	free(L->sv);
	free(L->p);
}

/* The cell of panel p at series s and x value x, or NULL. */
static const struct trials_cell *cell_at(const struct trials *t, const struct layout *L,
					 const struct panel *p, int s, int x)
{
	for (int i = 0; i < p->n; i++) {
		const struct trials_cell *c = &t->cells[p->cells[i]];
		const char *xv = L->xkey ? trials_cell_param(c, L->xkey) : NULL;
		const char *sv = L->skey ? trials_cell_param(c, L->skey) : NULL;
		if (!strcmp(xv ? xv : "all", L->xv[x]) && !strcmp(sv ? sv : "all", L->sv[s]))
			return c;
	}
	return NULL;
}

static const char *panel_title(const struct panel *p)
{
	return p->key[0] ? p->key : "all cells";
}

/* ---- formatting ---- */

static void fmt_stat(struct buf *b, const struct trials_stat *st)
{
	char m[64], s[64];
	if (st->n == 0) {
		buf_appendf(b, "n/a");
		return;
	}
	buf_appendf(b, "%s ± %s (%.1f%%)", svg_fmt_num(st->mean, m, sizeof m),
		    svg_fmt_num(st->sd, s, sizeof s), st->cv * 100);
}

/* The median with its CI as stats reports it: "12.4 [11.9, 13.1] 96.9%" (the achieved
 * confidence), or "12.4 [11.9, 13.1] n=3: range, 75%" when n is too small for TRIALS_LEVEL. */
static void fmt_ci(struct buf *b, const struct trials_stat *st)
{
	char m[64], lo[64], hi[64];
	if (st->n == 0) {
		buf_appendf(b, "n/a");
		return;
	}
	buf_appendf(b, "%s [%s, %s] ", svg_fmt_num(st->median, m, sizeof m),
		    svg_fmt_num(st->ci_lo, lo, sizeof lo), svg_fmt_num(st->ci_hi, hi, sizeof hi));
	if (!st->ci_reached)
		buf_appendf(b, "n=%d: range, ", st->n);
	buf_appendf(b, "%.1f%%", st->ci_conf * 100);
}

/* The precision a cell reached (its decisive figure's CI half-width relative to its median):
 * "±3.2% CPU/req n=9", "±12.0% req/s n=3: range" when n is too small for a 95% CI, "n/a". */
static void fmt_precision(struct buf *b, const struct trials_cell *c)
{
	if (!c->precision_n || !isfinite(c->precision)) {
		buf_appendf(b, "n/a");
		return;
	}
	buf_appendf(b, "±%.1f%% %s n=%d%s", c->precision * 100,
		    c->decisive == RECORD_M_REQUESTS_PER_S ? "req/s" : "CPU/req", c->precision_n,
		    c->precision_reached ? "" : ": range");
}

/* A ratio of medians with its CI (trials_ratio_ci): " (0.34× fork [0.30, 0.38])" with a
 * base name, " 0.34× [0.30, 0.38]" without (base_name NULL); when the CI is out of reach
 * (too few trials, a value not positive) it says so instead of printing one. */
/* quiet: NULL, or the ratio is printed bare when its CI is out of reach and *quiet set to 1
 * (the caller says why once). */
static void fmt_ratio_q(struct buf *b, const struct trials *t, const struct trials_cell *base,
			const struct trials_cell *c, int m, const char *base_name, int *quiet)
{
	struct trials_ratio r;
	char lo[64], hi[64];
	int rc = trials_ratio_ci(t, (int)(base - t->cells), (int)(c - t->cells), m, &r);
	if (rc < 0 && !(base->st[m].median > 0))
		return;
	double ratio = rc < 0 ? c->st[m].median / base->st[m].median : r.ratio;
	buf_appendf(b, " %s%.2f×%s%s", base_name ? "(" : "", ratio, base_name ? " " : "",
		    base_name ? base_name : "");
	const char *open = base_name ? ", " : " (", *close = base_name ? ")" : ")";
	if (quiet && (rc < 0 || !r.reached)) {
		*quiet = 1;
		buf_appendf(b, "%s", base_name ? ")" : "");
	} else if (rc < 0)
		buf_appendf(b, "%sno CI: a value is not positive%s", open, close);
	else if (!r.reached)
		buf_appendf(b, "%sn=%d vs %d: too few trials for a %.0f%% CI%s", open, r.nb, r.na,
			    TRIALS_LEVEL * 100, close);
	else
		buf_appendf(b, " [%s, %s]%s", svg_fmt_num(r.lo, lo, sizeof lo),
			    svg_fmt_num(r.hi, hi, sizeof hi), base_name ? ")" : "");
}

static const char *unit_suffix(int m)
{
	const char *u = record_metrics[m].unit;
	return u[0] ? u : "";
}

static void csv_field(struct buf *b, const char *s)
{
	if (!strpbrk(s, ",\"\n\r")) {
		buf_append(b, s, strlen(s));
		return;
	}
	buf_append(b, "\"", 1);
	for (; *s; s++) {
		if (*s == '"')
			buf_append(b, "\"", 1);
		buf_append(b, s, 1);
	}
	buf_append(b, "\"", 1);
}

static const char *jstr(const json_t *o, const char *path)
{
	return json_string_value(record_path(o, path));
}

/* ---- CSV ---- */

void report_csv(const struct trials *t, struct buf *out)
{
	buf_appendf(out, "trial,repeat,status");
	for (int k = 0; k < t->npkeys; k++) {
		buf_append(out, ",", 1);
		csv_field(out, t->pkeys[k]);
	}
	for (int m = 0; m < RECORD_NMETRICS; m++)
		buf_appendf(out, ",%s", record_metrics[m].id);
	buf_appendf(out, ",server_cpus,load_cpus,accounting,reason,warnings,outliers");
	for (int m = 0; m < RECORD_NMETRICS; m++)
		buf_appendf(out, ",%s_median,%s_ci_low,%s_ci_high,%s_ci_confidence", record_metrics[m].id,
			    record_metrics[m].id, record_metrics[m].id, record_metrics[m].id);
	buf_appendf(out, "\n");
	for (int r = 0; r < t->nrec; r++) {
		const struct record *R = &t->rec[r];
		const json_t *rec = R->json;
		json_t *params = json_object_get(rec, "params");
		const char *st = jstr(rec, "status");
		buf_appendf(out, "%lld,%lld,", (long long)json_integer_value(json_object_get(rec, "trial")),
			    (long long)json_integer_value(json_object_get(rec, "repeat")));
		csv_field(out, st ? st : "unknown");
		for (int k = 0; k < t->npkeys; k++) {
			const char *v = json_string_value(json_object_get(params, t->pkeys[k]));
			buf_append(out, ",", 1);
			csv_field(out, v ? v : "");
		}
		for (int m = 0; m < RECORD_NMETRICS; m++) {
			double v;
			if (record_metric(R, m, &v))
				buf_appendf(out, ",%.17g", v);
			else
				buf_append(out, ",", 1);
		}
		const char *f[] = {R->server_cpus, R->load_cpus, R->accounting, R->reason};
		for (int i = 0; i < 4; i++) {
			buf_append(out, ",", 1);
			csv_field(out, f[i] ? f[i] : "");
		}
		struct buf w = BUF_INIT;
		size_t i;
		json_t *v;
		json_array_foreach(json_object_get(rec, "warnings"), i, v)
			buf_appendf(&w, "%s%s", i ? "; " : "", json_string_value(v) ? json_string_value(v) : "");
		buf_append(&w, "", 1);
		buf_append(out, ",", 1);
		csv_field(out, buf_head(&w));
		buf_free(&w);
		/* outliers: "cpu_cores:high;p99_us:low", the metrics of this trial outside its
		 * cell's Tukey fences */
		buf_append(out, ",", 1);
		int first = 1;
		for (int m = 0; m < RECORD_NMETRICS && t->outlier; m++) {
			signed char fl = t->outlier[(size_t)r * RECORD_NMETRICS + m];
			if (fl)
				buf_appendf(out, "%s%s:%s", first ? "" : ";", record_metrics[m].id,
					    fl < 0 ? "low" : "high");
			first &= !fl;
		}
		const struct trials_cell *c = t->rec_cell ? &t->cells[t->rec_cell[r]] : NULL;
		for (int m = 0; m < RECORD_NMETRICS; m++) {
			if (!c || !c->st[m].n) {
				buf_appendf(out, ",,,,");
				continue;
			}
			const struct trials_stat *s = &c->st[m];
			buf_appendf(out, ",%.17g,%.17g,%.17g,%.4f", s->median, s->ci_lo, s->ci_hi,
				    s->ci_conf);
		}
		buf_append(out, "\n", 1);
	}
}

/* ---- findings ---- */

/* The metric that best answers "how much CPU": per request when every compared cell has it. */
static int value_of(const struct trials_cell *c, int m, double *v)
{
	if (!c || c->st[m].n == 0)
		return 0;
	*v = c->st[m].median;
	return 1;
}

/* One line per panel (protocol x CPUs x ...) at the largest connection count where at least
 * two engines have data: the engines ranked by median server CPU per request (server CPU in
 * cores when there are no requests), each with the 95 % CI of its median and its ratio to the
 * baseline (fork when present, else the first engine) with the ratio's CI, and the context
 * switches each paid per request (median). */
static void finding_engines(const struct trials *t, const struct layout *L, const struct panel *p,
			    struct buf *out, int *count)
{
	int X = -1;
	for (int x = L->nx - 1; x >= 0 && X < 0; x--) {
		int have = 0;
		double v;
		for (int s = 0; s < L->ns; s++)
			have += value_of(cell_at(t, L, p, s, x), RECORD_M_CPU_CORES, &v);
		if (have >= 2)
			X = x;
	}
	if (X < 0)
		return;
	int m = RECORD_M_CPU_US_PER_REQUEST;
	const char *unit = " us/request";
	int have_pr = 0;
	double v;
	for (int s = 0; s < L->ns; s++)
		have_pr += value_of(cell_at(t, L, p, s, X), m, &v);
	if (have_pr < 2) {
		m = RECORD_M_CPU_CORES;
		unit = " cores";
	}
	/* sized by the data: a trials.jsonl may name any number of engines */
	int *order = rcalloc((size_t)L->ns, sizeof(*order)), n = 0, base = -1;
	double *val = rcalloc((size_t)L->ns, sizeof(*val));
	if (!order || !val)
		goto out;
	for (int s = 0; s < L->ns; s++) {
		if (!value_of(cell_at(t, L, p, s, X), m, &val[s]))
			continue;
		order[n++] = s;
		if (!strcmp(L->sv[s], "fork"))
			base = s;
	}
	if (n < 2)
		goto out;
	if (base < 0)
		base = order[0];
	for (int i = 1; i < n; i++) /* insertion sort by value, cheapest first */
		for (int j = i; j > 0 && val[order[j]] < val[order[j - 1]]; j--) {
			int tmp = order[j];
			order[j] = order[j - 1];
			order[j - 1] = tmp;
		}
	char a[64], b[64];
	buf_appendf(out, "at %s %s, %s: median server CPU %s [%.0f%% CI] — ", L->xv[X],
		    L->xkey ? L->xkey : "", panel_title(p),
		    m == RECORD_M_CPU_CORES ? "(cores)" : "per request", TRIALS_LEVEL * 100);
	/* when no cell of the sentence has enough trials for a 95 % CI, say so once at its end
	 * instead of after every figure */
	int few = 1, nmin = 0, nmax = 0, bare = 0;
	for (int i = 0; i < n; i++) {
		const struct trials_stat *st = &cell_at(t, L, p, order[i], X)->st[m];
		few &= !st->ci_reached;
		nmin = i && nmin < st->n ? nmin : st->n;
		nmax = nmax > st->n ? nmax : st->n;
	}
	for (int i = 0; i < n; i++) {
		int s = order[i];
		const struct trials_cell *c = cell_at(t, L, p, s, X);
		char lo[64], hi[64];
		buf_appendf(out, "%s%s %s [%s, %s]%s", i ? ", " : "", L->sv[s],
			    svg_fmt_num(val[s], a, sizeof a), svg_fmt_num(c->st[m].ci_lo, lo, sizeof lo),
			    svg_fmt_num(c->st[m].ci_hi, hi, sizeof hi), unit);
		if (!c->st[m].ci_reached && !few)
			buf_appendf(out, " (n=%d: range, %.0f%% confidence)", c->st[m].n,
				    c->st[m].ci_conf * 100);
		if (s != base && val[base] > 0)
			fmt_ratio_q(out, t, cell_at(t, L, p, base, X), c, m, L->sv[base],
				    few ? &bare : NULL);
	}
	if (few) {
		if (nmin == nmax)
			buf_appendf(out, " — n=%d per cell, too few for a %.0f%% CI of a median: each "
					 "interval is the range of the trials (%.0f%% confidence)",
				    nmin, TRIALS_LEVEL * 100, (1 - ldexp(1, 1 - nmin)) * 100);
		else
			buf_appendf(out, " — n=%d to %d per cell, too few for a %.0f%% CI of a median: "
					 "each interval is the range of the trials",
				    nmin, nmax, TRIALS_LEVEL * 100);
		if (bare)
			buf_appendf(out, "; a ratio without an interval has too few trials for one");
	}
	double cx;
	int first = 1;
	for (int i = 0; i < n; i++) {
		int s = order[i];
		if (!value_of(cell_at(t, L, p, s, X), RECORD_M_CTXSW_PER_REQUEST, &cx))
			continue;
		buf_appendf(out, "%s%s %s", first ? "; context switches per request: " : ", ", L->sv[s],
			    svg_fmt_num(cx, b, sizeof b));
		first = 0;
	}
	buf_appendf(out, ".\n");
	(*count)++;
out:
	free(order);
	free(val);
}

/* "Does having more cores make one implementation more efficient?": the same cell at the
 * largest vs the smallest cpus value. */
#define MAX_GROUPS 32
static void finding_cores(const struct trials *t, const struct layout *L, struct buf *out,
			  int *count)
{
	if (!has_pkey(t, "cpus"))
		return;
	struct {
		char key[256];
		struct buf text;
		int bare; /* a ratio was printed without its CI (too few trials) */
	} groups[MAX_GROUPS];
	int ngroups = 0;
	for (int i = 0; i < t->ncells; i++) {
		const struct trials_cell *lo = &t->cells[i];
		const char *lx = L->xkey ? trials_cell_param(lo, L->xkey) : NULL;
		if (lx && strcmp(lx, L->xv[L->nx - 1]))
			continue; /* compare at the largest x only */
		/* the partner: same params but a different cpus value, appearing later */
		for (int j = i + 1; j < t->ncells; j++) {
			const struct trials_cell *hi = &t->cells[j];
			int same = hi->nparams == lo->nparams, diff = 0;
			for (int k = 0; same && k < lo->nparams; k++) {
				const char *hv = trials_cell_param(hi, lo->pk[k]);
				if (!hv)
					same = 0;
				else if (strcmp(hv, lo->pv[k]))
					diff += strcmp(lo->pk[k], "cpus") ? 99 : 1;
			}
			if (!same || diff != 1)
				continue;
			int m = RECORD_M_CPU_US_PER_REQUEST;
			double a, b;
			if (!value_of(lo, m, &a) || !value_of(hi, m, &b)) {
				m = RECORD_M_CPU_CORES;
				if (!value_of(lo, m, &a) || !value_of(hi, m, &b))
					continue;
			}
			if (a <= 0)
				continue;
			const char *sv = L->skey ? trials_cell_param(lo, L->skey) : "the server";
			const char *proto = trials_cell_param(lo, "proto");
			char key[256];
			snprintf(key, sizeof key, "with cpus=%s instead of cpus=%s (%s%s%s%s), %s",
				 trials_cell_param(hi, "cpus"), trials_cell_param(lo, "cpus"),
				 proto ? proto : "", proto && lx ? ", " : "", lx ? lx : "",
				 lx && L->xkey ? " connections" : "",
				 m == RECORD_M_CPU_CORES ? "server CPU" : "server CPU per request");
			int g = 0;
			while (g < ngroups && strcmp(groups[g].key, key))
				g++;
			if (g == ngroups) {
				if (ngroups == MAX_GROUPS)
					continue;
				snprintf(groups[g].key, sizeof groups[g].key, "%s", key);
				groups[g].text = (struct buf)BUF_INIT;
				groups[g].bare = 0;
				ngroups++;
			}
			buf_appendf(&groups[g].text, "%s%s", buf_used(&groups[g].text) ? ", " : "", sv);
			fmt_ratio_q(&groups[g].text, t, lo, hi, m, NULL, &groups[g].bare);
		}
	}
	for (int g = 0; g < ngroups; g++) {
		const char *txt = buf_used(&groups[g].text) ? buf_head(&groups[g].text) : "";
		buf_appendf(out, "%s [%.0f%% CI]: %.*s%s.\n", groups[g].key, TRIALS_LEVEL * 100,
			    (int)buf_used(&groups[g].text), txt,
			    groups[g].bare ? " — a ratio without an interval has too few trials for one"
					   : "");
		buf_free(&groups[g].text);
		(*count)++;
	}
}

/* The trials whose server CPUs something else took (system_cpu.interference): one sentence
 * naming them (trial numbers, at most 8). Returns 1 when there are any. */
static int finding_disturbed(const struct trials *t, struct buf *out)
{
	int n = 0, with = 0;
	struct buf list = BUF_INIT;
	for (int r = 0; r < t->nrec; r++) {
		const json_t *j = t->rec[r].json;
		if (!t->rec[r].ok || !record_path(j, "system_cpu"))
			continue;
		with++;
		if (!json_is_true(record_path(j, "system_cpu.interference")))
			continue;
		if (n < 8)
			buf_appendf(&list, "%s%lld (%.2f cores)", n ? ", " : "",
				    (long long)json_integer_value(json_object_get(j, "trial")),
				    json_number_value(record_path(j, "system_cpu.server.other_cores")));
		n++;
	}
	if (n) {
		buf_append(&list, "", 1);
		buf_appendf(out, "%d of %d trials ran while something else took the server's CPUs "
				 "(system_cpu.interference: busy beyond the server's tree, or steal): "
				 "trials %s%s; their figures are disturbed, rerun them on a quiet "
				 "machine.\n", n, with, buf_head(&list), n > 8 ? ", ..." : "");
	}
	buf_free(&list);
	return n > 0;
}

int report_findings(const struct trials *t, struct buf *out)
{
	int count = 0;
	if (ppreport_is(t)) /* kind = pingpong: its own figures */
		return ppreport_findings(t, out);
	struct layout L;
	layout_build(t, &L);
	if (L.ns >= 2)
		for (int p = 0; p < L.np; p++)
			finding_engines(t, &L, &L.p[p], out, &count);
	finding_cores(t, &L, out, &count);
	int noisy = 0, with = 0, failed = 0;
	const char *first_noisy = NULL, *first_fail = NULL;
	for (int i = 0; i < t->ncells; i++) {
		const struct trials_cell *c = &t->cells[i];
		failed += c->nfailed;
		if (c->nfailed && !first_fail)
			first_fail = c->fail_reason;
		if (c->st[RECORD_M_CPU_CORES].n >= 2) {
			with++;
			if (c->st[RECORD_M_CPU_CORES].cv > CV_NOISY) {
				noisy++;
				if (!first_noisy)
					first_noisy = c->key;
			}
		}
	}
	if (with) {
		if (noisy)
			buf_appendf(out, "%d of %d cells have a server CPU CV above %.0f%% (e.g. %s): "
					 "treat their differences with care.\n",
				    noisy, with, CV_NOISY * 100, first_noisy);
		else
			buf_appendf(out, "every cell with repeats has a server CPU CV at or below %.0f%%.\n",
				    CV_NOISY * 100);
		count++;
	}
	if (failed) {
		buf_appendf(out, "%d trial(s) failed; first reason: %s.\n", failed, first_fail);
		count++;
	}
	count += finding_disturbed(t, out);
	layout_release(&L);
	return count;
}

/* ---- outliers ---- */

/* One line per trial with a value outside its cell's Tukey fences (q1 - 1.5 IQR, q3 + 1.5 IQR):
 * "trial 7 (engine=fork ...): cpu_cores high (0.9), ...". Returns the number of such trials.
 * The values stay in every statistic: flagged, never dropped. */
static int outlier_lines(const struct trials *t, struct buf *out, const char *pre,
			 const char *post, int html)
{
	int count = 0;
	for (int r = 0; r < t->nrec && t->outlier; r++) {
		int any = 0;
		for (int m = 0; m < RECORD_NMETRICS; m++)
			any |= t->outlier[(size_t)r * RECORD_NMETRICS + m] != 0;
		if (!any)
			continue;
		struct buf line = BUF_INIT;
		buf_appendf(&line, "trial %lld (%s):",
			    (long long)json_integer_value(json_object_get(t->rec[r].json, "trial")),
			    t->cells[t->rec_cell[r]].key);
		int first = 1;
		for (int m = 0; m < RECORD_NMETRICS; m++) {
			signed char fl = t->outlier[(size_t)r * RECORD_NMETRICS + m];
			double v;
			char a[64];
			if (!fl || !record_metric(&t->rec[r], m, &v))
				continue;
			buf_appendf(&line, "%s %s %s (%s)", first ? "" : ",", record_metrics[m].id,
				    fl < 0 ? "low" : "high", svg_fmt_num(v, a, sizeof a));
			first = 0;
		}
		buf_append(&line, "", 1);
		buf_appendf(out, "%s", pre);
		if (html)
			svg_escape(out, buf_head(&line));
		else
			buf_appendf(out, "%s", buf_head(&line));
		buf_appendf(out, "%s", post);
		buf_free(&line);
		count++;
	}
	return count;
}

static int count_outlier_trials(const struct trials *t)
{
	struct buf tmp = BUF_INIT;
	int n = outlier_lines(t, &tmp, "", "", 0);
	buf_free(&tmp);
	return n;
}

/* ---- Markdown ---- */

static void md_table(const struct trials *t, struct buf *out)
{
	buf_appendf(out, "|");
	for (int k = 0; k < t->npkeys; k++)
		buf_appendf(out, " %s |", t->pkeys[k]);
	for (int i = 0; i < NTABLE; i++) {
		int m = table_metrics[i];
		buf_appendf(out, " %s%s%s%s |", record_metrics[m].label, unit_suffix(m)[0] ? " (" : "",
			    unit_suffix(m), unit_suffix(m)[0] ? ")" : "");
	}
	for (int i = 0; i < NTABLE; i++)
		buf_appendf(out, " %s median [95%% CI] |", record_metrics[table_metrics[i]].label);
	buf_appendf(out, " precision reached | ok/trials |\n|");
	for (int k = 0; k < t->npkeys + 2 * NTABLE + 2; k++)
		buf_appendf(out, "---|");
	buf_appendf(out, "\n");
	for (int i = 0; i < t->ncells; i++) {
		const struct trials_cell *c = &t->cells[i];
		buf_appendf(out, "|");
		for (int k = 0; k < t->npkeys; k++) {
			const char *v = trials_cell_param(c, t->pkeys[k]);
			buf_appendf(out, " %s |", v ? v : "");
		}
		for (int j = 0; j < NTABLE; j++) {
			buf_appendf(out, " ");
			fmt_stat(out, &c->st[table_metrics[j]]);
			buf_appendf(out, " |");
		}
		for (int j = 0; j < NTABLE; j++) {
			buf_appendf(out, " ");
			fmt_ci(out, &c->st[table_metrics[j]]);
			buf_appendf(out, " |");
		}
		buf_appendf(out, " ");
		fmt_precision(out, c);
		buf_appendf(out, " | %d/%d |\n", c->nok, c->ntrials);
	}
}

static const char *env_str(const struct trials *t, const char *path, const char *dflt)
{
	const char *s = t->env ? jstr(t->env, path) : NULL;
	return s ? s : dflt;
}

static void env_lines(const struct trials *t, struct buf *out, const char *pre, const char *post)
{
	if (!t->env) {
		buf_appendf(out, "%senvironment not recorded (no env.json)%s", pre, post);
		return;
	}
	const char *keys[][2] = {{"kernel", "kernel"},          {"cpu_model", "CPU model"},
				 {"governor", "governor"},      {"versions.ctxlab", "ctxlab"},
				 {"versions.go", "go"},         {"versions.nginx", "nginx"},
				 {"hostname", "host"},          {"started", "started"}};
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		const char *v = jstr(t->env, keys[i][0]);
		if (v)
			buf_appendf(out, "%s%s: %s%s", pre, keys[i][1], v, post);
	}
	json_t *n = record_path(t->env, "cores");
	if (json_is_integer(n))
		buf_appendf(out, "%scores: %lld%s", pre, (long long)json_integer_value(n), post);
	json_t *e = json_object_get(t->env, "experiment");
	if (e) {
		json_t *r = json_object_get(e, "repeat"), *w = json_object_get(e, "warmup_s"),
		       *d = json_object_get(e, "duration_s");
		buf_appendf(out, "%sper trial: %g s warm-up, %g s measured; repeat %lld%s", pre,
			    json_number_value(w), json_number_value(d), (long long)json_integer_value(r),
			    post);
		const char *sh = jstr(e, "server_host"), *lh = jstr(e, "load_host");
		if (sh && lh)
			buf_appendf(out, "%shosts: server %s, load %s%s", pre, sh, lh, post);
		size_t i;
		json_t *v;
		json_array_foreach(json_object_get(e, "notes"), i, v)
			if (json_is_string(v))
				buf_appendf(out, "%snote: %s%s", pre, json_string_value(v), post);
	}
}

/* Unique strings found at path (a string or an array of strings) over every record. With
 * `generic`, the trial-specific part of a message (in [brackets], or else runs of digits, shown
 * as N) is left out and each string gets its trial count, so that "messages sent late [3]" and
 * "messages sent late [15]" are one line. */
static int uniq_strings_g(const struct trials *t, const char *path, char **v, int max, int generic)
{
	int n = 0, counts[64] = {0};
	for (int r = 0; r < t->nrec; r++) {
		json_t *j = record_path(t->rec[r].json, path);
		json_t *one = json_is_string(j) ? j : NULL;
		size_t i, len = one ? 1 : json_array_size(j);
		for (i = 0; i < len; i++) {
			json_t *e = one ? one : json_array_get(j, i);
			if (!json_is_string(e))
				continue;
			struct buf b = BUF_INIT;
			for (const char *p = json_string_value(e); *p; p++) {
				if (generic && p[0] == ' ' && p[1] == '[' && strchr(p, ']')) {
					p = strchr(p, ']');
				} else if (generic && *p >= '0' && *p <= '9') {
					while (p[1] >= '0' && p[1] <= '9')
						p++;
					buf_append(&b, "N", 1);
				} else {
					buf_append(&b, p, 1);
				}
			}
			buf_append(&b, "", 1);
			int k;
			for (k = 0; k < n; k++)
				if (!strcmp(v[k], buf_head(&b)))
					break;
			if (k == n && n < max && n < 64)
				if ((v[n] = rstrdup(buf_head(&b))))
					n++;
			if (k < 64)
				counts[k]++;
			buf_free(&b);
		}
	}
	for (int k = 0; generic && k < n; k++) {
		char *s = NULL;
		if (asprintf(&s, "%s (%d of %d trials)", v[k], counts[k], t->nrec) > 0) {
			free(v[k]);
			v[k] = s;
		}
	}
	return n;
}

static int uniq_strings(const struct trials *t, const char *path, char **v, int max)
{
	return uniq_strings_g(t, path, v, max, 0);
}

static void placements(const struct trials *t, char **v, int *n, int max)
{
	*n = 0;
	for (int r = 0; r < t->nrec && *n < max; r++) {
		const char *s = t->rec[r].server_cpus, *l = t->rec[r].load_cpus;
		if (!s || !l)
			continue;
		char line[160];
		snprintf(line, sizeof line, "server on CPUs %s, load generator on CPUs %s", s, l);
		*n = add_unique(v, *n, line);
	}
}

static void fanout_note(const struct trials *t, const char *proto, struct buf *out, int md);

static void md_flames(const struct trials *t, struct buf *out);
/* the differential flame graphs report_write made for the run being written (rundiff.h) */
static const struct rundiffs *cur_diffs;

/* "Answers": the experiment's questions answered from the cells (report/answers.h). */
static void report_answers(const struct trials *t, int md, struct buf *out)
{
	struct answers *as = malloc(sizeof *as);
	buf_appendf(out, md ? "## Answers\n\n" : "<h2>Answers</h2>\n");
	if (!as) {
		oom = 1;
		return;
	}
	answers_compute(t, as);
	answers_format(as, md, out);
	buf_appendf(out, md ? "\n" : "");
	free(as);
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* "System calls per request": per cell, the median over its ok trials of each name's calls per
 * request (the record's syscalls.per_request), the largest first: the strace -c table. */
static void md_syscalls(const struct trials *t, struct buf *out)
{
	int any = 0;
	for (int r = 0; r < t->nrec && !any; r++)
		any = t->rec[r].json && record_path(t->rec[r].json, "syscalls.per_request") != NULL;
	if (!any)
		return;
	buf_appendf(out, "\n## System calls per request (the strace -c table, per cgroup; median "
			 "over the ok trials)\n\n| cell | n | total | largest |\n|---|---|---|---|\n");
	double *v = malloc(sizeof(double) * (size_t)(t->nrec + 1));
	if (!v)
		return;
	for (int ci = 0; ci < t->ncells; ci++) {
		const char *names[64];
		double med[64];
		int nn = 0, n = 0;
		for (int r = 0; r < t->nrec; r++) {
			json_t *pr;
			if (t->rec_cell[r] != ci || !t->rec[r].ok || !t->rec[r].json ||
			    !(pr = record_path(t->rec[r].json, "syscalls.per_request")))
				continue;
			n++;
			const char *k;
			json_t *x;
			json_object_foreach(pr, k, x) {
				int i;
				for (i = 0; i < nn && strcmp(names[i], k); i++)
					;
				if (i == nn && nn < 64)
					names[nn++] = k;
			}
		}
		if (!n)
			continue;
		for (int i = 0; i < nn; i++) {
			int m = 0;
			for (int r = 0; r < t->nrec; r++) {
				json_t *pr;
				if (t->rec_cell[r] != ci || !t->rec[r].ok || !t->rec[r].json ||
				    !(pr = record_path(t->rec[r].json, "syscalls.per_request")))
					continue;
				json_t *x = json_object_get(pr, names[i]);
				v[m++] = json_is_number(x) ? json_number_value(x) : 0;
			}
			qsort(v, (size_t)m, sizeof *v, cmp_dbl);
			med[i] = m % 2 ? v[m / 2] : (v[m / 2 - 1] + v[m / 2]) / 2;
		}
		int m = 0;
		for (int r = 0; r < t->nrec; r++) {
			double x;
			if (t->rec_cell[r] == ci && t->rec[r].ok &&
			    record_metric(&t->rec[r], RECORD_M_SYSCALLS_PER_REQUEST, &x))
				v[m++] = x;
		}
		qsort(v, (size_t)m, sizeof *v, cmp_dbl);
		buf_appendf(out, "| %s | %d | ", t->cells[ci].key, n);
		if (m)
			buf_appendf(out, "%.2f", m % 2 ? v[m / 2] : (v[m / 2 - 1] + v[m / 2]) / 2);
		buf_appendf(out, " | ");
		for (int k = 0; k < 6; k++) {
			int best = -1;
			for (int i = 0; i < nn; i++)
				if (names[i] && med[i] > 0.005 && (best < 0 || med[i] > med[best]))
					best = i;
			if (best < 0)
				break;
			buf_appendf(out, "%s%s %.2f", k ? ", " : "", names[best], med[best]);
			names[best] = NULL;
		}
		buf_appendf(out, " |\n");
	}
	free(v);
}

void report_md(const struct trials *t, struct buf *out)
{
	const char *name = env_str(t, "experiment.name", "experiment");
	buf_appendf(out, "# ctxlab report: %s\n\n## Question\n\n%s\n\n", name,
		    env_str(t, "experiment.question", default_question));
	report_answers(t, 1, out);
	buf_appendf(out, "## Setup\n\n");
	env_lines(t, out, "- ", "\n");
	char *v[64];
	int n;
	placements(t, v, &n, 64);
	for (int i = 0; i < n; i++) {
		buf_appendf(out, "- placement: %s\n", v[i]);
		free(v[i]);
	}
	n = uniq_strings_g(t, "warnings", v, 64, 1);
	for (int i = 0; i < n; i++) {
		buf_appendf(out, "- warning: %s\n", v[i]);
		free(v[i]);
	}
	n = uniq_strings(t, "accounting", v, 64);
	for (int i = 0; i < n; i++) {
		buf_appendf(out, "- CPU accounting: %s\n", v[i]);
		free(v[i]);
	}
	buf_appendf(out, "- trials: %d records in %d cells\n\n## Findings\n\n", t->nrec, t->ncells);
	struct buf f = BUF_INIT;
	report_findings(t, &f);
	buf_append(&f, "", 1);
	for (char *line = buf_head(&f), *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		buf_appendf(out, "- %.*s\n", nl ? (int)(nl - line) : (int)strlen(line), line);
	}
	buf_free(&f);
	if (ppreport_is(t)) {
		buf_appendf(out, "\n## Results (pingpong: median over the ok trials of each cell with "
				 "its distribution-free 95%% CI, the range when n < 6; the no-switch "
				 "check of the in-process modes; CPUs disturbed: system_cpu.interference)"
				 "\n\n");
		ppreport_table(t, out, 0);
	} else {
	buf_appendf(out, "\n## Switching share (estimate)\n\n");
	answers_switch_share(t, 1, out);
	buf_appendf(out, "\n");
	fanout_note(t, NULL, out, 1);
	buf_appendf(out, "## Results (mean ± stddev (CV) over the ok trials of each cell; median with "
			 "its distribution-free 95%% CI and the confidence it reaches; precision "
			 "reached: that CI's half-width relative to the median of the cell's decisive "
			 "figure, CPU per request or, saturated, throughput)\n\n");
	md_table(t, out);
	allocreport_md(t, out);
	}
	if (count_outlier_trials(t)) {
		buf_appendf(out, "\nOutlier trials (outside their cell's Tukey fences, q1 − 1.5 IQR or "
				 "q3 + 1.5 IQR; flagged, kept in every figure):\n\n");
		outlier_lines(t, out, "- ", "\n", 0);
	}
	md_syscalls(t, out);
	md_flames(t, out);
	rundiffs_md(t, cur_diffs, out);
	timeline_md(t, out);
	buf_appendf(out, "\nFigures are defined in docs/metrics.md (\"Experiment records\"); "
			 "the raw trials are in trials.jsonl and trials.csv.\n");
}

/* ---- HTML ---- */

static const char *css =
	"body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1400px;color:#222;padding:0 1em}"
	"h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}"
	"table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ccc;padding:2px 6px;"
	"text-align:right}th{background:#f3f3f3}td.p{text-align:left}.tw{overflow-x:auto}"
	".charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(480px,1fr));gap:1em}"
	"figure{margin:0}figcaption{font-size:.8em;color:#555}svg.chart{max-width:100%;height:auto}svg.chart{background:#fff;border:1px solid #ddd}"
	"svg .grid{stroke:#eee}svg .axis{stroke:#444}svg .line{fill:none;stroke-width:2}"
	"svg .err{stroke-width:1.2}svg text{font-size:11px;fill:#333}svg .ct{font-size:13px;"
	"font-weight:600}svg .yt{text-anchor:end}svg .xt,svg .xl{text-anchor:middle}"
	"svg .yl{text-anchor:middle}svg circle.pt:hover{r:6}.warn{color:#a40}.q{font-size:1.1em;"
	"background:#f7f7f0;padding:.6em 1em;border-left:4px solid #cc9}";

static void html_metric_charts(const struct trials *t, const struct layout *L, const char *proto,
			       struct buf *out, int *chart_no)
{
	for (int mi = 0; mi < report_nchart_metrics; mi++) {
		int m = report_chart_metrics[mi];
		/* any data for this metric in this protocol? */
		int any = 0;
		for (int p = 0; p < L->np; p++)
			if (!strcmp(L->p[p].proto, proto))
				for (int i = 0; i < L->p[p].n; i++)
					any |= t->cells[L->p[p].cells[i]].st[m].n > 0;
		buf_appendf(out, "<h3>%s</h3>\n", record_metrics[m].label);
		if (!any) {
			buf_appendf(out, "<p>n/a: no trial of this protocol recorded %s.</p>\n",
				    record_metrics[m].label);
			continue;
		}
		buf_appendf(out, "<div class=\"charts\">\n");
		for (int p = 0; p < L->np; p++) {
			if (strcmp(L->p[p].proto, proto))
				continue;
			struct svg_point *pts = rcalloc((size_t)L->ns * L->nx, sizeof(*pts));
			char **tips = rcalloc((size_t)L->ns * L->nx, sizeof(char *));
			if (!pts || !tips) {
				free(pts);
				free(tips);
				continue;
			}
			for (int s = 0; s < L->ns; s++)
				for (int x = 0; x < L->nx; x++) {
					const struct trials_cell *c = cell_at(t, L, &L->p[p], s, x);
					if (!c || c->st[m].n == 0)
						continue;
					const struct trials_stat *st = &c->st[m];
					char a[64], b[64], lo[64], hi[64];
					struct buf tip = BUF_INIT;
					buf_appendf(&tip, "%s, %s %s: median ", L->sv[s], L->xv[x],
						    L->xkey ? L->xkey : "");
					fmt_ci(&tip, st);
					buf_appendf(&tip, " %s; mean %s ± %s (CV %.1f%%), n=%d, min %s, max %s",
						    record_metrics[m].unit,
						    svg_fmt_num(st->mean, a, sizeof a),
						    svg_fmt_num(st->sd, b, sizeof b), st->cv * 100, st->n,
						    svg_fmt_num(st->min, lo, sizeof lo),
						    svg_fmt_num(st->max, hi, sizeof hi));
					if (st->n_outliers)
						buf_appendf(&tip, ", %d outlier(s)", st->n_outliers);
					buf_append(&tip, "", 1);
					tips[s * L->nx + x] = tip.data;
					pts[s * L->nx + x] = (struct svg_point){1, st->median, st->ci_lo,
										st->ci_hi, tip.data};
				}
			char id[64], title[512], ylabel[128];
			snprintf(id, sizeof id, "chart-%d", (*chart_no)++);
			snprintf(title, sizeof title, "%s — %s", record_metrics[m].label,
				 panel_title(&L->p[p]));
			snprintf(ylabel, sizeof ylabel, "%s%s%s%s", record_metrics[m].label,
				 unit_suffix(m)[0] ? " (" : "", unit_suffix(m), unit_suffix(m)[0] ? ")" : "");
			struct svg_chart ch = {id, title, ylabel, L->xkey ? L->xkey : "",
					       L->nx, (const char *const *)L->xv, L->ns,
					       (const char *const *)L->sv, pts};
			buf_appendf(out, "<figure data-metric=\"%s\" data-panel=\"", record_metrics[m].id);
			svg_escape(out, L->p[p].key);
			buf_appendf(out, "\">\n");
			svg_line_chart(out, &ch);
			buf_appendf(out, "<figcaption>median of the repeats; error bars: its 95%% CI "
					 "(order statistics; the range when n &lt; 6)</figcaption>\n</figure>\n");
			for (int i = 0; i < L->ns * L->nx; i++)
				free(tips[i]);
			free(tips);
			free(pts);
		}
		buf_appendf(out, "</div>\n");
	}
}

static void html_table(const struct trials *t, struct buf *out)
{
	buf_appendf(out, "<table id=\"results\">\n<tr>");
	for (int k = 0; k < t->npkeys; k++) {
		buf_appendf(out, "<th>");
		svg_escape(out, t->pkeys[k]);
		buf_appendf(out, "</th>");
	}
	for (int i = 0; i < NTABLE; i++) {
		int m = table_metrics[i];
		buf_appendf(out, "<th>%s%s%s%s</th>", record_metrics[m].label,
			    unit_suffix(m)[0] ? " (" : "", unit_suffix(m), unit_suffix(m)[0] ? ")" : "");
	}
	for (int i = 0; i < NTABLE; i++)
		buf_appendf(out, "<th>%s median [95%% CI]</th>", record_metrics[table_metrics[i]].label);
	buf_appendf(out, "<th>precision reached</th><th>ok/trials</th></tr>\n");
	for (int i = 0; i < t->ncells; i++) {
		const struct trials_cell *c = &t->cells[i];
		buf_appendf(out, "<tr>");
		for (int k = 0; k < t->npkeys; k++) {
			const char *v = trials_cell_param(c, t->pkeys[k]);
			buf_appendf(out, "<td class=\"p\">");
			svg_escape(out, v ? v : "");
			buf_appendf(out, "</td>");
		}
		for (int j = 0; j < NTABLE; j++) {
			struct buf cellb = BUF_INIT;
			fmt_stat(&cellb, &c->st[table_metrics[j]]);
			buf_append(&cellb, "", 1);
			buf_appendf(out, "<td>");
			svg_escape(out, buf_head(&cellb));
			buf_appendf(out, "</td>");
			buf_free(&cellb);
		}
		for (int j = 0; j < NTABLE; j++) {
			struct buf cellb = BUF_INIT;
			fmt_ci(&cellb, &c->st[table_metrics[j]]);
			buf_append(&cellb, "", 1);
			buf_appendf(out, "<td class=\"ci\">");
			svg_escape(out, buf_head(&cellb));
			buf_appendf(out, "</td>");
			buf_free(&cellb);
		}
		struct buf pb = BUF_INIT;
		fmt_precision(&pb, c);
		buf_append(&pb, "", 1);
		buf_appendf(out, "<td class=\"ci\">");
		svg_escape(out, buf_head(&pb));
		buf_appendf(out, "</td>");
		buf_free(&pb);
		buf_appendf(out, "<td%s>%d/%d", c->nfailed ? " class=\"warn\"" : "", c->nok, c->ntrials);
		if (c->fail_reason) {
			buf_appendf(out, " <span title=\"");
			svg_escape(out, c->fail_reason);
			buf_appendf(out, "\">(failed)</span>");
		}
		buf_appendf(out, "</td></tr>\n");
	}
	buf_appendf(out, "</table>\n");
}

/* ---- flame graphs ---- */

/* A fan-out protocol (its records have a "chat" object: chat) counts its deliveries as its
 * requests: say what the figures mean there, once, for proto (NULL: any protocol), as an HTML
 * paragraph or (md) a Markdown one. */
static void fanout_note(const struct trials *t, const char *proto, struct buf *out, int md)
{
	for (int r = 0; r < t->nrec; r++) {
		const char *p = json_string_value(record_path(t->rec[r].json, "params.proto"));
		if (!p || (proto && strcmp(p, proto)) || !json_object_get(t->rec[r].json, "chat"))
			continue;
		if (md) {
			buf_appendf(out, "%s", p);
		} else {
			buf_appendf(out, "<p>");
			svg_escape(out, p); /* the records may come from anyone */
		}
		buf_appendf(out, ": a fan-out protocol: every line a member sends is delivered "
				 "to every other member, and a request there is a delivered line: "
				 "throughput = deliveries per second, server CPU per request = server "
				 "CPU per delivered line, p99 latency = fan-out latency (from the line's "
				 "intended send time to its receipt by another member). Lines lost: the "
				 "records' chat.loss.%s", md ? "\n\n" : "</p>\n");
		return;
	}
}

/* The flame table's parameter columns: proto, engine, cpus, connections (those present), then
 * the other parameters. Returns the count; names point into t. */
static int flame_columns(const struct trials *t, const char **cols, int max)
{
	static const char *const first[] = {"proto", "engine", "cpus", "connections"};
	int n = 0;
	for (size_t i = 0; i < sizeof first / sizeof first[0] && n < max; i++)
		for (int k = 0; k < t->npkeys; k++)
			if (!strcmp(t->pkeys[k], first[i]))
				cols[n++] = t->pkeys[k];
	for (int k = 0; k < t->npkeys && n < max; k++) {
		int seen = 0;
		for (size_t i = 0; i < sizeof first / sizeof first[0]; i++)
			seen |= !strcmp(t->pkeys[k], first[i]);
		if (!seen)
			cols[n++] = t->pkeys[k];
	}
	return n;
}

/* A record's flame graph path (relative to the results dir) when it is one to link:
 * "flame/" then one or more '/'-separated components of letters, digits, '.', '_' and '-'
 * (what the runner writes: flame/CELL-ID/flame.svg), none of them "." or "..". Anything else
 * (an absolute path, a URL such as javascript:..., a backslash, a query) is not linked: the
 * records may come from someone else. NULL when not linkable. */
static const char *rec_flame(const json_t *rec)
{
	const char *f = jstr(rec, "flame");
	if (!f || strncmp(f, "flame/", 6))
		return NULL;
	const char *c = f + 6;
	for (;;) {
		size_t n = strspn(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				     "0123456789._-");
		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return NULL;
		if (c[n] == 0)
			return f;
		if (c[n] != '/')
			return NULL;
		c += n + 1;
	}
}

static int flame_exists(const struct trials *t, const char *rel)
{
	char path[4096];
	struct stat st;
	snprintf(path, sizeof path, "%s/%s", t->dir ? t->dir : ".", rel);
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int cell_has_flame(const struct trials *t, const struct trials_cell *c)
{
	for (int r = 0; r < t->nrec; r++) {
		const char *ck = t->rec[r].cell;
		if (ck && !strcmp(ck, c->key) && rec_flame(t->rec[r].json))
			return 1;
	}
	return 0;
}

/* Appends the links of a cell's flame graphs, one per profiled trial ("repeat N"), as HTML
 * (html = 1) or Markdown. */
static void flame_links(const struct trials *t, const struct trials_cell *c, int html,
			struct buf *out)
{
	int n = 0;
	for (int r = 0; r < t->nrec; r++) {
		const char *ck = t->rec[r].cell, *f = rec_flame(t->rec[r].json);
		if (!ck || strcmp(ck, c->key) || !f)
			continue;
		long long rep = t->rec[r].repeat;
		int ok = flame_exists(t, f);
		if (n++)
			buf_appendf(out, html ? " " : ", ");
		if (html && ok) {
			buf_appendf(out, "<a href=\"");
			svg_escape(out, f);
			buf_appendf(out, "\">repeat %lld</a>", rep);
		} else if (ok) {
			buf_appendf(out, "[repeat %lld](%s)", rep, f);
		} else {
			buf_appendf(out, "repeat %lld (%s missing)", rep, html ? "file" : f);
		}
	}
}

static const char *flame_note =
	"sampled at 99 Hz (on-CPU, kernel and user stacks of the server's whole tree) over the "
	"measured window of the profiled trials; the sampling adds a little to those trials' "
	"server CPU (docs/metrics.md, \"Experiment records\")";

static void md_flames(const struct trials *t, struct buf *out)
{
	int any = 0;
	for (int i = 0; i < t->ncells && !any; i++)
		any = cell_has_flame(t, &t->cells[i]);
	if (!any)
		return;
	const char *cols[64];
	int nc = flame_columns(t, cols, 64);
	buf_appendf(out, "\n## Flame graphs\n\nProfile = %s: %s.\n\n|",
		    env_str(t, "experiment.profile", "?"), flame_note);
	for (int k = 0; k < nc; k++)
		buf_appendf(out, " %s |", cols[k]);
	buf_appendf(out, " flame graph |\n|");
	for (int k = 0; k <= nc; k++)
		buf_appendf(out, "---|");
	buf_appendf(out, "\n");
	for (int i = 0; i < t->ncells; i++) {
		const struct trials_cell *c = &t->cells[i];
		if (!cell_has_flame(t, c))
			continue;
		buf_appendf(out, "|");
		for (int k = 0; k < nc; k++) {
			const char *v = trials_cell_param(c, cols[k]);
			buf_appendf(out, " %s |", v ? v : "");
		}
		buf_appendf(out, " ");
		flame_links(t, c, 0, out);
		buf_appendf(out, " |\n");
	}
}

/* A table of the cells' flame graphs (from the records' "flame" paths), then any other SVG
 * in DIR/flame/ (put there by hand) as a list. */
static void html_flames(const struct trials *t, struct buf *out)
{
	const char *cols[64];
	int nc = flame_columns(t, cols, 64), rows = 0;
	for (int i = 0; i < t->ncells; i++) {
		const struct trials_cell *c = &t->cells[i];
		if (!cell_has_flame(t, c))
			continue;
		if (!rows++) {
			buf_appendf(out, "<h2>Flame graphs</h2>\n<p>Profile = ");
			svg_escape(out, env_str(t, "experiment.profile", "?"));
			buf_appendf(out, ": ");
			svg_escape(out, flame_note);
			buf_appendf(out, ". Each opens as an interactive SVG (click to zoom, "
					 "search).</p>\n<table id=\"flames\">\n<tr>");
			for (int k = 0; k < nc; k++) {
				buf_appendf(out, "<th>");
				svg_escape(out, cols[k]);
				buf_appendf(out, "</th>");
			}
			buf_appendf(out, "<th>flame graph</th></tr>\n");
		}
		buf_appendf(out, "<tr>");
		for (int k = 0; k < nc; k++) {
			const char *v = trials_cell_param(c, cols[k]);
			buf_appendf(out, "<td class=\"p\">");
			svg_escape(out, v ? v : "");
			buf_appendf(out, "</td>");
		}
		buf_appendf(out, "<td class=\"p\">");
		flame_links(t, c, 1, out);
		buf_appendf(out, "</td></tr>\n");
	}
	if (rows)
		buf_appendf(out, "</table>\n");

	char path[4096];
	snprintf(path, sizeof path, "%s/flame", t->dir ? t->dir : ".");
	DIR *d = t->dir ? opendir(path) : NULL;
	if (!d)
		return;
	struct dirent *de;
	int n = 0;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 5 || strcmp(de->d_name + l - 4, ".svg"))
			continue;
		if (!n++)
			buf_appendf(out, rows ? "<h3>Other flame graphs</h3>\n<ul>\n"
					      : "<h2>Flame graphs</h2>\n<ul>\n");
		buf_appendf(out, "<li><a href=\"flame/");
		svg_escape(out, de->d_name);
		buf_appendf(out, "\">");
		svg_escape(out, de->d_name);
		buf_appendf(out, "</a></li>\n");
	}
	closedir(d);
	if (n)
		buf_appendf(out, "</ul>\n");
}

void report_html(const struct trials *t, struct buf *out)
{
	const char *name = env_str(t, "experiment.name", "experiment");
	buf_appendf(out, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
			 "<title>ctxlab report: ");
	svg_escape(out, name);
	buf_appendf(out, "</title>\n<style>%s</style></head><body>\n<h1>ctxlab report: ", css);
	svg_escape(out, name);
	buf_appendf(out, "</h1>\n<h2>Question</h2>\n<p class=\"q\">");
	svg_escape(out, env_str(t, "experiment.question", default_question));
	buf_appendf(out, "</p>\n");
	report_answers(t, 0, out);
	buf_appendf(out, "<h2>Setup</h2>\n<ul>\n");
	struct buf env = BUF_INIT;
	env_lines(t, &env, "", "\n");
	buf_append(&env, "", 1);
	for (char *line = buf_head(&env), *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		buf_appendf(out, "<li>");
		svg_escape(out, line);
		buf_appendf(out, "</li>\n");
	}
	buf_free(&env);
	char *v[64];
	int n;
	placements(t, v, &n, 64);
	for (int i = 0; i < n; i++) {
		buf_appendf(out, "<li>placement: ");
		svg_escape(out, v[i]);
		buf_appendf(out, "</li>\n");
		free(v[i]);
	}
	n = uniq_strings(t, "accounting", v, 64);
	for (int i = 0; i < n; i++) {
		buf_appendf(out, "<li>CPU accounting: ");
		svg_escape(out, v[i]);
		buf_appendf(out, "</li>\n");
		free(v[i]);
	}
	n = uniq_strings_g(t, "warnings", v, 64, 1);
	for (int i = 0; i < n; i++) {
		buf_appendf(out, "<li class=\"warn\">warning: ");
		svg_escape(out, v[i]);
		buf_appendf(out, "</li>\n");
		free(v[i]);
	}
	buf_appendf(out, "<li>%d trial records in %d cells</li>\n</ul>\n<h2>Findings</h2>\n<ul id=\"findings\">\n",
		    t->nrec, t->ncells);
	struct buf f = BUF_INIT;
	report_findings(t, &f);
	buf_append(&f, "", 1);
	for (char *line = buf_head(&f), *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		buf_appendf(out, "<li>");
		svg_escape(out, line);
		buf_appendf(out, "</li>\n");
	}
	buf_free(&f);
	buf_appendf(out, "</ul>\n<h2>Switching share (estimate)</h2>\n");
	answers_switch_share(t, 0, out);

	struct layout L;
	layout_build(t, &L);
	char *protos[64];
	int np = 0;
	for (int p = 0; p < L.np && np < 64; p++)
		np = add_unique(protos, np, L.p[p].proto);
	int chart_no = 0;
	if (ppreport_is(t)) { /* kind = pingpong: its own charts, no server charts */
		for (int i = 0; i < np; i++)
			free(protos[i]);
		ppreport_charts(t, out);
	}
	if (ppreport_is(t))
		np = 0;
	for (int i = 0; i < np; i++) {
		buf_appendf(out, "<h2 class=\"proto\">Protocol ");
		svg_escape(out, protos[i][0] ? protos[i] : "(any)");
		buf_appendf(out, "</h2>\n<p>Median over the repeats of each cell; error bars: the "
				 "distribution-free 95%% confidence interval of the median (order "
				 "statistics; with fewer than 6 repeats no interval reaches 95%%, and the "
				 "bar is the range of the repeats). Hover a point for its value.</p>\n");
		fanout_note(t, protos[i], out, 0);
		html_metric_charts(t, &L, protos[i], out, &chart_no);
		free(protos[i]);
	}
	layout_release(&L);
	buf_appendf(out, "<h2>Results table</h2>\n<p>mean ± stddev (CV) over the ok trials of each "
			 "cell; median [95%% CI] with the confidence the interval reaches (n &lt; 6: "
			 "the range, at 1 − 2<sup>1−n</sup>); precision reached: that CI's half-width "
			 "relative to the median of the cell's decisive figure (CPU per request, or "
			 "throughput when saturated; docs/metrics.md, \"Precision\").</p>\n");
	buf_appendf(out, "<div class=\"tw\">\n");
	if (ppreport_is(t))
		ppreport_table(t, out, 1);
	else
		html_table(t, out);
	buf_appendf(out, "</div>\n");
	allocreport_html(t, out);
	if (count_outlier_trials(t)) {
		buf_appendf(out, "<h3>Outlier trials</h3>\n<p>Outside their cell's Tukey fences "
				 "(q1 − 1.5 IQR, q3 + 1.5 IQR); flagged, kept in every figure.</p>\n"
				 "<ul id=\"outliers\">\n");
		outlier_lines(t, out, "<li>", "</li>\n", 1);
		buf_appendf(out, "</ul>\n");
	}
	html_flames(t, out);
	rundiffs_html(t, cur_diffs, out);
	timeline_html(t, out);
	buf_appendf(out, "<p>Figures are defined in docs/metrics.md (\"Experiment records\"); the raw "
			 "trials are in <a href=\"trials.jsonl\">trials.jsonl</a> and "
			 "<a href=\"trials.csv\">trials.csv</a>.</p>\n</body></html>\n");
}

static int write_out(const char *dir, const char *name, struct buf *b, char *err, size_t errlen)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	/* never through a link or into a device planted in the results directory */
	int rc = outfile_write(path, buf_head(b), buf_used(b), 0);
	if (rc < 0)
		return errbuf(err, errlen, "cannot write '%s': %s", path, outfile_strerror(rc));
	return 0;
}

/* An allocation failure while building a piece (oom): nothing incomplete is written. */
static int built(char *err, size_t errlen)
{
	if (oom)
		return errbuf(err, errlen, "out of memory while writing the report");
	return 0;
}

int report_write(const char *dir, char *err, size_t errlen)
{
	struct trials t;
	if (trials_load(&t, dir, err, errlen) < 0)
		return -1;
	struct buf b = BUF_INIT;
	int rc = 0;
	oom = 0;
	struct rundiffs diffs;
	if (rundiffs_write(&t, &diffs, err, errlen) < 0)
		rc = -1;
	cur_diffs = &diffs;
	report_csv(&t, &b);
	if (built(err, errlen) < 0)
		rc = -1;
	if (!rc && write_out(dir, "trials.csv", &b, err, errlen) < 0)
		rc = -1;
	buf_clear(&b);
	report_md(&t, &b);
	if (!rc && (built(err, errlen) < 0 || write_out(dir, "report.md", &b, err, errlen) < 0))
		rc = -1;
	buf_clear(&b);
	report_html(&t, &b);
	if (!rc && (built(err, errlen) < 0 || write_out(dir, "report.html", &b, err, errlen) < 0))
		rc = -1;
	buf_free(&b);
	cur_diffs = NULL;
	rundiffs_release(&diffs);
	trials_release(&t);
	return rc;
}
