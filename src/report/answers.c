#include "report/answers.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/svg.h"

#define MAX_PAIRS 12
#define MAX_VALS 32

struct pair {
	char key[32];
	char val[64];
};

struct sel {
	int n;
	struct pair p[MAX_PAIRS];
};

/* "k=v k2=v2" -> sel; values stay as written ("fork", "a,b", "*", "max"). */
static void sel_parse(const char *from, const char *to, struct sel *s)
{
	s->n = 0;
	const char *p = from;
	while (p < to && s->n < MAX_PAIRS) {
		while (p < to && isspace((unsigned char)*p))
			p++;
		const char *w = p;
		while (p < to && !isspace((unsigned char)*p))
			p++;
		const char *eq = memchr(w, '=', (size_t)(p - w));
		if (!eq)
			continue;
		snprintf(s->p[s->n].key, sizeof s->p[0].key, "%.*s", (int)(eq - w), w);
		snprintf(s->p[s->n].val, sizeof s->p[0].val, "%.*s", (int)(p - eq - 1), eq + 1);
		s->n++;
	}
}

static int is_number(const char *v, double *d)
{
	char *e;
	*d = strtod(v, &e);
	return e != v && *e == 0;
}

/* Distinct values of param key among the cells matching sel (in cell order). */
static int cell_values(const struct trials *t, const struct sel *fixed, const char *key,
		       const char **vals, int max)
{
	int n = 0;
	for (int c = 0; c < t->ncells; c++) {
		int ok = 1;
		for (int i = 0; ok && i < fixed->n; i++) {
			const char *v = trials_cell_param(&t->cells[c], fixed->p[i].key);
			ok = v && !strcmp(v, fixed->p[i].val);
		}
		const char *v = ok ? trials_cell_param(&t->cells[c], key) : NULL;
		if (!v)
			continue;
		int seen = 0;
		for (int j = 0; j < n && !seen; j++)
			seen = !strcmp(vals[j], v);
		if (!seen && n < max)
			vals[n++] = v;
	}
	return n;
}

/* The numeric extreme (dir > 0: max) among vals, NULL when none is numeric. */
static const char *extreme(const char **vals, int n, int dir)
{
	const char *best = NULL;
	double bd = 0, d;
	for (int i = 0; i < n; i++)
		if (is_number(vals[i], &d) && (!best || (dir > 0 ? d > bd : d < bd))) {
			best = vals[i];
			bd = d;
		}
	return best;
}

/* The cells matching a and b (pairs of both), into idx[0..max); returns the count. */
static int match(const struct trials *t, const struct sel *a, const struct sel *b, int *idx,
		 int max)
{
	int n = 0;
	for (int c = 0; c < t->ncells; c++) {
		int ok = 1;
		for (int k = 0; k < 2 && ok; k++) {
			const struct sel *s = k ? b : a;
			for (int i = 0; ok && i < s->n; i++) {
				const char *v = trials_cell_param(&t->cells[c], s->p[i].key);
				ok = v && !strcmp(v, s->p[i].val);
			}
		}
		if (ok) {
			if (n < max)
				idx[n] = c;
			n++;
		}
	}
	return n;
}

/* A short name of a cell: proto-engine-cN-cpusX, then its other parameters. */
static void cell_name(const struct trials_cell *c, char *out, size_t len)
{
	static const char *const first[][2] = {
		{"proto", ""}, {"engine", ""}, {"connections", "c"}, {"cpus", "cpus"}};
	size_t o = 0;
	out[0] = 0;
	for (size_t f = 0; f < sizeof first / sizeof first[0]; f++) {
		const char *v = trials_cell_param(c, first[f][0]);
		if (v && o < len)
			o += snprintf(out + o, len - o, "%s%s%s", o ? "-" : "", first[f][1], v);
	}
	for (int i = 0; i < c->nparams && o < len; i++) {
		int skip = 0;
		for (size_t f = 0; f < sizeof first / sizeof first[0]; f++)
			skip |= !strcmp(c->pk[i], first[f][0]);
		if (!skip)
			o += snprintf(out + o, len - o, "%s%s%s", o ? "-" : "", c->pk[i], c->pv[i]);
	}
}

/* "proto=http, 256 connections, 1 CPU" */
static void human_where(const struct sel *s, char *out, size_t len)
{
	size_t o = 0;
	out[0] = 0;
	for (int i = 0; i < s->n && o < len; i++) {
		const char *k = s->p[i].key, *v = s->p[i].val, *sep = o ? ", " : "";
		if (!strcmp(k, "connections"))
			o += snprintf(out + o, len - o, "%s%s connection%s", sep, v,
				      strcmp(v, "1") ? "s" : "");
		else if (!strcmp(k, "cpus"))
			o += snprintf(out + o, len - o, "%s%s CPU%s", sep, v, strcmp(v, "1") ? "s" : "");
		else
			o += snprintf(out + o, len - o, "%s%s=%s", sep, k, v);
	}
	if (!o)
		snprintf(out, len, "every cell");
}

/* The first note of env.json that names the value (engines left out, core counts...). */
static const char *note_about(const struct trials *t, const char *key, const char *val)
{
	json_t *notes = json_object_get(json_object_get(t->env, "experiment"), "notes");
	char q1[96], q2[96];
	snprintf(q1, sizeof q1, "'%s'", val);
	snprintf(q2, sizeof q2, "%s=%s", key, val);
	size_t i;
	json_t *n;
	json_array_foreach(notes, i, n) {
		const char *s = json_string_value(n);
		if (s && (strstr(s, q1) || strstr(s, q2)))
			return s;
	}
	return NULL;
}

static int env_cores(const struct trials *t)
{
	json_t *c = json_object_get(t->env, "cores");
	return json_is_integer(c) ? (int)json_integer_value(c) : 0;
}

/* Why no cell matches sel at fixed: the first pair no cell has, with a note about it. */
static void why_missing(const struct trials *t, const struct sel *side, const struct sel *fixed,
		       char *out, size_t len)
{
	struct sel all = *fixed;
	for (int i = 0; i < side->n && all.n < MAX_PAIRS; i++)
		all.p[all.n++] = side->p[i];
	struct sel none = {0};
	for (int i = 0; i < all.n; i++) {
		int idx;
		struct sel one = {.n = 1};
		one.p[0] = all.p[i];
		if (match(t, &one, &none, &idx, 1))
			continue;
		const char *note = note_about(t, all.p[i].key, all.p[i].val);
		snprintf(out, len, "no cell of this run has %s=%s%s%s%s", all.p[i].key, all.p[i].val,
			 note ? " (" : " (it is not in the experiment's matrix)", note ? note : "",
			 note ? ")" : "");
		return;
	}
	size_t o = (size_t)snprintf(out, len, "no cell of this run has");
	for (int i = 0; i < all.n && o < len; i++)
		o += (size_t)snprintf(out + o, len - o, " %s=%s", all.p[i].key, all.p[i].val);
	if (o < len)
		snprintf(out + o, len - o, " together");
}

/* Whether cell c can give metric m: 1, or 0 with why. */
static int cell_usable(const struct trials *t, int c, int m, char *why, size_t len)
{
	const struct trials_cell *cl = &t->cells[c];
	char nm[160];
	cell_name(cl, nm, sizeof nm);
	if (cl->nok == 0) {
		snprintf(why, len, "every trial of cell %s failed (%d of %d%s%s)", nm, cl->nfailed,
			 cl->ntrials, cl->fail_reason ? ": " : "",
			 cl->fail_reason ? cl->fail_reason : "");
		return 0;
	}
	if (cl->st[m].n == 0) {
		snprintf(why, len, "cell %s has no value of %s (%s) in its %d ok trial%s", nm,
			 record_metrics[m].id, record_metrics[m].path, cl->nok, cl->nok > 1 ? "s" : "");
		return 0;
	}
	return 1;
}

static void fmt_num(char *out, size_t len, double v)
{
	if (v >= 100)
		snprintf(out, len, "%.0f", v);
	else if (v >= 10)
		snprintf(out, len, "%.1f", v);
	else
		snprintf(out, len, "%.2f", v);
}

/* Expands say: {ratio} {where} {from} {to} {AXIS}. */
static void expand(const char *say, const char *ratio, const char *where, const char *from,
		   const char *to, const struct trials_cell *num, const struct sel *fixed,
		   char *out, size_t len)
{
	size_t o = 0;
	for (const char *p = say; *p && o + 1 < len;) {
		const char *e = *p == '{' ? strchr(p, '}') : NULL;
		if (!e) {
			out[o++] = *p++;
			continue;
		}
		char name[40];
		snprintf(name, sizeof name, "%.*s", (int)(e - p - 1), p + 1);
		const char *v = NULL;
		if (!strcmp(name, "ratio"))
			v = ratio;
		else if (!strcmp(name, "where"))
			v = where;
		else if (!strcmp(name, "from"))
			v = from;
		else if (!strcmp(name, "to"))
			v = to;
		else {
			for (int i = 0; i < fixed->n && !v; i++)
				if (!strcmp(fixed->p[i].key, name))
					v = fixed->p[i].val;
			if (!v && num)
				v = trials_cell_param(num, name);
		}
		o += (size_t)snprintf(out + o, len - o, "%s", v ? v : "?");
		if (o >= len)
			o = len - 1;
		p = e + 1;
	}
	out[o] = 0;
}

struct def {
	const char *id, *question, *compare, *grow, *where, *say;
	int metric, needs_cpus;
};

static struct answer *next(struct answers *as, const struct def *d)
{
	if (as->n >= ANSWERS_MAX)
		return NULL;
	struct answer *a = &as->a[as->n++];
	memset(a, 0, sizeof *a);
	a->id = d->id;
	a->question = d->question;
	a->status = ANSWER_CANNOT;
	a->num = a->den = -1;
	return a;
}

/* One sentence: the answer at one combination of the where values. */
static void answer_one(const struct trials *t, const struct def *d, const struct sel *fixed,
		       struct answers *as)
{
	struct answer *a = next(as, d);
	if (!a)
		return;
	char where[256], why[600], at[272];
	human_where(fixed, where, sizeof where);
	snprintf(at, sizeof at, "%s%s", fixed->n ? " at " : "", fixed->n ? where : "");
	struct sel num = {0}, den = {0};
	const char *from = NULL, *to = NULL;
	if (d->compare) {
		const char *slash = strchr(d->compare, '/');
		sel_parse(d->compare, slash, &num);
		sel_parse(slash + 1, slash + strlen(slash), &den);
	} else {
		const char *vals[MAX_VALS];
		int nv = cell_values(t, fixed, d->grow, vals, MAX_VALS);
		from = extreme(vals, nv, -1);
		to = extreme(vals, nv, +1);
		if (!from || !strcmp(from, to)) {
			snprintf(a->text, sizeof a->text, "Cannot be answered by this run%s: the %s "
				 "axis has %s here (it needs two values to see how %s grows).",
				 at, d->grow, nv ? "a single value" : "no numeric value",
				 record_metrics[d->metric].label);
			return;
		}
		num.n = den.n = 1;
		snprintf(num.p[0].key, sizeof num.p[0].key, "%s", d->grow);
		snprintf(den.p[0].key, sizeof den.p[0].key, "%s", d->grow);
		snprintf(num.p[0].val, sizeof num.p[0].val, "%s", to);
		snprintf(den.p[0].val, sizeof den.p[0].val, "%s", from);
	}
	int ni[8], di[8];
	int nn = match(t, &num, fixed, ni, 8), nd = match(t, &den, fixed, di, 8);
	for (int side = 0; side < 2; side++) {
		int cnt = side ? nd : nn;
		const struct sel *s = side ? &den : &num;
		if (cnt == 0) {
			why_missing(t, s, fixed, why, sizeof why);
			snprintf(a->text, sizeof a->text, "Cannot be answered by this run%s: %s.",
				 at, why);
			return;
		}
		if (cnt > 1) {
			/* which axis tells them apart */
			const int *ix = side ? di : ni;
			const struct trials_cell *c0 = &t->cells[ix[0]], *c1 = &t->cells[ix[1]];
			const char *axis = "?";
			for (int i = 0; i < c0->nparams; i++) {
				const char *v1 = trials_cell_param(c1, c0->pk[i]);
				if (!v1 || strcmp(v1, c0->pv[i])) {
					axis = c0->pk[i];
					break;
				}
			}
			snprintf(a->text, sizeof a->text, "Cannot be answered by this run%s: %d cells "
				 "match one side (they differ in %s: name it in the answer's 'where').",
				 at, cnt, axis);
			return;
		}
	}
	a->num = ni[0];
	a->den = di[0];
	int m = d->metric;
	if (!cell_usable(t, a->num, m, why, sizeof why) || !cell_usable(t, a->den, m, why, sizeof why)) {
		snprintf(a->text, sizeof a->text, "Cannot be answered by this run%s: %s.", at, why);
		return;
	}
	struct trials_ratio r;
	int rc = trials_ratio_ci(t, a->den, a->num, m, &r);
	char nmn[160], nmd[160];
	cell_name(&t->cells[a->num], nmn, sizeof nmn);
	cell_name(&t->cells[a->den], nmd, sizeof nmd);
	if (rc < 0) {
		snprintf(a->text, sizeof a->text, "Cannot be answered by this run%s: %s (cells %s "
			 "vs %s).", at, rc == -EDOM ? "a value or a median is 0, so there is no ratio"
			 : "the ratio could not be computed", nmn, nmd);
		return;
	}
	char ratio[160], rs[32], ls[32], hs[32], sent[700];
	fmt_num(rs, sizeof rs, r.ratio);
	a->ratio = r.ratio;
	if (r.reached) {
		fmt_num(ls, sizeof ls, r.lo);
		fmt_num(hs, sizeof hs, r.hi);
		snprintf(ratio, sizeof ratio, "%s× (95%% CI %s–%s)", rs, ls, hs);
		a->status = ANSWER_OK;
		a->lo = r.lo;
		a->hi = r.hi;
	} else {
		snprintf(ratio, sizeof ratio, "%s× (no 95%% CI: too few trials)", rs);
		a->status = ANSWER_NO_CI;
	}
	char dflt[256];
	if (!d->say) {
		if (d->compare)
			snprintf(dflt, sizeof dflt, "The %s of %.*s is {ratio} that of %s at {where}",
				 record_metrics[m].label, (int)(strchr(d->compare, '/') - d->compare),
				 d->compare, strchr(d->compare, '/') + 1);
		else
			snprintf(dflt, sizeof dflt, "The %s grows {ratio} from %s={from} to %s={to} at "
				 "{where}", record_metrics[m].label, d->grow, d->grow);
	}
	expand(d->say ? d->say : dflt, ratio, where, from, to, &t->cells[a->num], fixed, sent,
	       sizeof sent);
	const struct trials_cell *cn = &t->cells[a->num], *cd = &t->cells[a->den];
	char ns[64];
	if (r.na == r.nb)
		snprintf(ns, sizeof ns, "n=%d each", r.nb);
	else
		snprintf(ns, sizeof ns, "n=%d and %d", r.nb, r.na);
	int o = snprintf(a->text, sizeof a->text, "%s (cells %s vs %s, %s", sent, nmn, nmd, ns);
	if ((cn->nfailed || cd->nfailed) && o > 0 && (size_t)o < sizeof a->text)
		o += snprintf(a->text + o, sizeof a->text - (size_t)o, "; %d failed trial%s left out",
			      cn->nfailed + cd->nfailed, cn->nfailed + cd->nfailed > 1 ? "s" : "");
	if (o > 0 && (size_t)o < sizeof a->text)
		o += snprintf(a->text + o, sizeof a->text - (size_t)o, ")%s",
			      r.reached ? "." : ". Not answered with confidence: a 95% CI of a "
					    "ratio needs at least 4 trials per cell (the precision "
					    "rounds or a larger repeat give them).");
}

/* Expands the where list of key k (index i) recursively: one sentence per combination. */
static void expand_where(const struct trials *t, const struct def *d, const struct sel *w, int i,
			 struct sel *fixed, struct answers *as)
{
	if (i == w->n) {
		answer_one(t, d, fixed, as);
		return;
	}
	const char *v = w->p[i].val, *key = w->p[i].key;
	const char *vals[MAX_VALS];
	int nv = 0;
	char buf[64];
	snprintf(buf, sizeof buf, "%s", v);
	if (!strcmp(v, "*") || !strcmp(v, "max") || !strcmp(v, "min")) {
		/* among the cells matching the pairs fixed so far */
		const char *all[MAX_VALS];
		int na = cell_values(t, fixed, key, all, MAX_VALS);
		if (!strcmp(v, "*")) {
			for (int j = 0; j < na; j++)
				vals[nv++] = all[j];
		} else {
			const char *x = extreme(all, na, v[1] == 'a' ? 1 : -1);
			if (x)
				vals[nv++] = x;
		}
		if (!nv) {
			struct answer *a = next(as, d);
			char where[256], at[272];
			human_where(fixed, where, sizeof where);
			snprintf(at, sizeof at, "%s%s", fixed->n ? " at " : "", fixed->n ? where : "");
			if (a)
				snprintf(a->text, sizeof a->text, "Cannot be answered by this run%s: no "
					 "cell has a %s%s value.", at, !strcmp(v, "*") ? "" : "numeric ",
					 key);
			return;
		}
	} else {
		char *save = NULL;
		for (char *tok = strtok_r(buf, ",", &save); tok && nv < MAX_VALS;
		     tok = strtok_r(NULL, ",", &save))
			vals[nv++] = tok;
	}
	for (int j = 0; j < nv; j++) {
		snprintf(fixed->p[fixed->n].key, sizeof fixed->p[0].key, "%s", key);
		snprintf(fixed->p[fixed->n].val, sizeof fixed->p[0].val, "%s", vals[j]);
		fixed->n++;
		expand_where(t, d, w, i + 1, fixed, as);
		fixed->n--;
	}
}

int answers_compute(const struct trials *t, struct answers *out)
{
	out->n = 0;
	json_t *defs = json_object_get(json_object_get(t->env, "experiment"), "answers");
	size_t i;
	json_t *j;
	json_array_foreach(defs, i, j) {
		struct def d = {
			.id = json_string_value(json_object_get(j, "id")),
			.question = json_string_value(json_object_get(j, "question")),
			.compare = json_string_value(json_object_get(j, "compare")),
			.grow = json_string_value(json_object_get(j, "grow")),
			.where = json_string_value(json_object_get(j, "where")),
			.say = json_string_value(json_object_get(j, "say")),
			.metric = -1,
		};
		const char *mn = json_string_value(json_object_get(j, "metric"));
		for (int m = 0; mn && m < RECORD_NMETRICS; m++)
			if (!strcmp(mn, record_metrics[m].id) || !strcmp(mn, record_metrics[m].path))
				d.metric = m;
		json_t *nc = json_object_get(j, "needs_cpus");
		d.needs_cpus = json_is_integer(nc) ? (int)json_integer_value(nc) : 0;
		if (!d.id)
			d.id = "?";
		if (!d.question)
			d.question = d.id;
		int cores = env_cores(t);
		if (d.needs_cpus && cores < d.needs_cpus) {
			struct answer *a = next(out, &d);
			if (a) {
				if (cores)
					snprintf(a->text, sizeof a->text, "Cannot be answered here: needs ≥ %d "
						 "CPUs (this machine has %d); run it on a machine with %d or "
						 "more CPUs.", d.needs_cpus, cores, d.needs_cpus);
				else
					snprintf(a->text, sizeof a->text, "Cannot be answered here: needs ≥ %d "
						 "CPUs and env.json does not say how many this machine has.",
						 d.needs_cpus);
			}
			continue;
		}
		if (d.metric < 0 || (!d.compare == !d.grow) || (d.compare && !strchr(d.compare, '/'))) {
			struct answer *a = next(out, &d);
			if (a)
				snprintf(a->text, sizeof a->text, "Cannot be answered: its definition in "
					 "env.json is incomplete (metric '%s', compare or grow).",
					 mn ? mn : "");
			continue;
		}
		struct sel w = {0}, fixed = {0};
		if (d.where)
			sel_parse(d.where, d.where + strlen(d.where), &w);
		expand_where(t, &d, &w, 0, &fixed, out);
	}
	return out->n;
}

void answers_format(const struct answers *as, int md, struct buf *out)
{
	if (!as->n) {
		buf_appendf(out, md ? "This experiment states no questions ([answer.ID] sections of "
				      "its spec).\n"
				    : "<p>This experiment states no questions ([answer.ID] sections of its "
				      "spec).</p>\n");
		return;
	}
	if (!md)
		buf_appendf(out, "<ul class=\"answers\">\n");
	for (int i = 0; i < as->n; i++) {
		const struct answer *a = &as->a[i];
		int same = i > 0 && as->a[i - 1].question == a->question;
		if (md) {
			if (same)
				buf_appendf(out, "  - %s\n", a->text);
			else
				buf_appendf(out, "- **%s**\n  - %s\n", a->question, a->text);
		} else {
			if (!same) {
				buf_appendf(out, "%s<li><b>", i ? "</ul></li>\n" : "");
				svg_escape(out, a->question);
				buf_appendf(out, "</b><ul>\n");
			}
			buf_appendf(out, "<li>");
			svg_escape(out, a->text);
			buf_appendf(out, "</li>\n");
		}
	}
	if (!md)
		buf_appendf(out, "</ul></li>\n</ul>\n");
}

static double env_switch_ns(const struct trials *t, const char *key)
{
	json_t *v = json_object_get(json_object_get(t->env, "switch_cost_ns"), key);
	return json_is_number(v) ? json_number_value(v) : -1;
}

void answers_switch_share(const struct trials *t, int md, struct buf *out)
{
	double kns = env_switch_ns(t, "kernel"), cns = env_switch_ns(t, "coro");
	if (!(kns > 0)) {
		buf_appendf(out, md ? "No switch cost in env.json (measured by `ctxlab run` since "
				      "this version), so no estimate.\n"
				    : "<p>No switch cost in env.json (measured by <code>ctxlab run</code> "
				      "since this version), so no estimate.</p>\n");
		return;
	}
	char cap[768], cs[48];
	if (cns > 0)
		snprintf(cs, sizeof cs, "%.0f ns each here", cns);
	else
		snprintf(cs, sizeof cs, "not measured");
	snprintf(cap, sizeof cap,
		 "An estimate, not a measurement: context switches per request (the record's "
		 "ctxsw.per_request, median) × this machine's kernel switch cost, %.0f ns "
		 "(env.json switch_cost_ns.kernel: two processes on one CPU handing a byte over "
		 "pipes, so it includes a pipe write and read per switch), against the measured "
		 "server CPU per request (median). User-space switches (coroutines: %s; "
		 "goroutines) are not counted by the coro or go engine, so their share is n/a. "
		 "A share above 100%% means this cell's switches are cheaper than the pipe "
		 "ping-pong's (no pipe, or a wake-up without a full switch).", kns, cs);
	if (md)
		buf_appendf(out, "%s\n\n| cell | CPU per request (µs) | switches per request | "
				 "kernel switching (µs per request) | share | coroutine switching |\n"
				 "|---|---:|---:|---:|---:|---|\n", cap);
	else {
		buf_appendf(out, "<p>");
		svg_escape(out, cap);
		buf_appendf(out, "</p>\n<table><tr><th>cell</th><th>CPU per request (µs)</th>"
				 "<th>switches per request</th><th>kernel switching (µs per request)"
				 "</th><th>share</th><th>coroutine switching</th></tr>\n");
	}
	for (int c = 0; c < t->ncells; c++) {
		const struct trials_cell *cl = &t->cells[c];
		const struct trials_stat *cpu = &cl->st[RECORD_M_CPU_US_PER_REQUEST],
					 *sw = &cl->st[RECORD_M_CTXSW_PER_REQUEST];
		if (!cpu->n || !sw->n || !(cpu->median > 0))
			continue;
		double est_us = sw->median * kns / 1000.0;
		const char *eng = trials_cell_param(cl, "engine");
		const char *coro = !eng ? "?"
				   : !strcmp(eng, "coro") ? "n/a (the engine does not count them)"
				   : !strcmp(eng, "go")   ? "n/a (Go's scheduler does not report them)"
							  : "none (no user-space switching)";
		if (md)
			buf_appendf(out, "| %s | %.3g | %.3g | %.3g | %.0f%% | %s |\n", cl->key,
				    cpu->median, sw->median, est_us, 100.0 * est_us / cpu->median, coro);
		else {
			buf_appendf(out, "<tr><td>");
			svg_escape(out, cl->key);
			buf_appendf(out, "</td><td>%.3g</td><td>%.3g</td><td>%.3g</td><td>%.0f%%</td>"
					 "<td>%s</td></tr>\n", cpu->median, sw->median, est_us,
				    100.0 * est_us / cpu->median, coro);
		}
	}
	if (!md)
		buf_appendf(out, "</table>\n");
}
