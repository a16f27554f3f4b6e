#include "report/trials.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "core/stats.h"
#include "lab/record.h"

void trials_stat_compute(struct trials_stat *st, const double *vals, int n)
{
	trials_stat_compute_flags(st, vals, n, NULL);
}

void trials_stat_compute_flags(struct trials_stat *st, const double *vals, int n,
			       signed char *flags)
{
	memset(st, 0, sizeof(*st));
	st->n = n;
	if (n <= 0)
		return;
	double sum = 0;
	st->min = st->max = vals[0];
	for (int i = 0; i < n; i++) {
		sum += vals[i];
		if (vals[i] < st->min)
			st->min = vals[i];
		if (vals[i] > st->max)
			st->max = vals[i];
	}
	st->mean = sum / n;
	if (n > 1) {
		double ss = 0;
		for (int i = 0; i < n; i++)
			ss += (vals[i] - st->mean) * (vals[i] - st->mean);
		st->sd = sqrt(ss / (n - 1));
	}
	st->cv = st->mean != 0 ? st->sd / fabs(st->mean) : 0;
	struct stats_median_ci mc;
	struct stats_fences f;
	if (stats_median_ci(vals, (size_t)n, TRIALS_LEVEL, &mc) == 0) {
		st->median = mc.median;
		st->ci_lo = mc.lo;
		st->ci_hi = mc.hi;
		st->ci_conf = mc.confidence;
		st->ci_reached = mc.reached;
	}
	if (flags)
		memset(flags, 0, (size_t)n);
	if (stats_tukey(vals, (size_t)n, flags, &f) == 0)
		st->n_outliers = (int)(f.n_low + f.n_high);
}

int trials_ratio_of(const double *a, int na, const double *b, int nb, struct trials_ratio *out)
{
	if (na <= 0 || nb <= 0 || !a || !b)
		return -EINVAL;
	double *la = malloc((size_t)na * sizeof(double)), *lb = malloc((size_t)nb * sizeof(double));
	int rc = 0;
	if (!la || !lb) {
		rc = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < na; i++) {
		if (!(a[i] > 0)) {
			rc = -EDOM;
			goto out;
		}
		la[i] = log(a[i]);
	}
	for (int i = 0; i < nb; i++) {
		if (!(b[i] > 0)) {
			rc = -EDOM;
			goto out;
		}
		lb[i] = log(b[i]);
	}
	struct stats_median_ci ma, mb;
	struct stats_shift hl;
	if ((rc = stats_median_ci(a, (size_t)na, TRIALS_LEVEL, &ma)) < 0 ||
	    (rc = stats_median_ci(b, (size_t)nb, TRIALS_LEVEL, &mb)) < 0 ||
	    (rc = stats_hodges_lehmann(la, (size_t)na, lb, (size_t)nb, TRIALS_LEVEL, &hl)) < 0)
		goto out;
	if (!(ma.median > 0)) {
		rc = -EDOM;
		goto out;
	}
	out->ratio = mb.median / ma.median;
	out->lo = exp(hl.lo);
	out->hi = exp(hl.hi);
	out->conf = hl.confidence;
	out->reached = hl.reached;
	out->na = na;
	out->nb = nb;
out:
	free(la);
	free(lb);
	return rc;
}

/* The ok values of metric m in cell ci: *n of them in a new array (caller frees). */
static double *cell_values(const struct trials *t, int ci, int m, int *n)
{
	double *v = malloc(((size_t)t->nrec + 1) * sizeof(double));
	*n = 0;
	if (!v)
		return NULL;
	for (int r = 0; r < t->nrec; r++) {
		double x;
		if (t->rec_cell[r] == ci && t->rec[r].ok && record_metric(&t->rec[r], m, &x))
			v[(*n)++] = x;
	}
	return v;
}

int trials_ratio_ci(const struct trials *t, int ca, int cb, int m, struct trials_ratio *out)
{
	if (ca < 0 || cb < 0 || ca >= t->ncells || cb >= t->ncells || m < 0 ||
	    m >= RECORD_NMETRICS || !t->rec_cell)
		return -EINVAL;
	int na, nb, rc;
	double *a = cell_values(t, ca, m, &na), *b = cell_values(t, cb, m, &nb);
	if (!a || !b)
		rc = -ENOMEM;
	else
		rc = trials_ratio_of(a, na, b, nb, out);
	free(a);
	free(b);
	return rc;
}

const char *trials_cell_param(const struct trials_cell *c, const char *key)
{
	for (int i = 0; i < c->nparams; i++)
		if (!strcmp(c->pk[i], key))
			return c->pv[i];
	return NULL;
}

static int add_pkey(struct trials *t, const char *k)
{
	for (int i = 0; i < t->npkeys; i++)
		if (!strcmp(t->pkeys[i], k))
			return 0;
	char **p = realloc(t->pkeys, (t->npkeys + 1) * sizeof(char *));
	if (!p)
		return -ENOMEM;
	t->pkeys = p;
	if (!(t->pkeys[t->npkeys] = strdup(k)))
		return -ENOMEM;
	t->npkeys++;
	return 0;
}

/* The cell key of a record: its "cell" string, else its params joined. */
static int rec_key(const struct record *rec, struct buf *b)
{
	buf_clear(b);
	if (rec->cell)
		return buf_append(b, rec->cell, strlen(rec->cell) + 1);
	for (int i = 0; i < rec->nparams; i++)
		if (buf_appendf(b, "%s%s=%s", b->len ? " " : "", rec->params[i].key,
				rec->params[i].value ? rec->params[i].value : "?") < 0)
			return -ENOMEM;
	return buf_append(b, "", 1);
}

static int new_cell(struct trials *t, const struct record *rec, const char *key)
{
	struct trials_cell *cells = realloc(t->cells, (t->ncells + 1) * sizeof(*t->cells));
	if (!cells)
		return -ENOMEM;
	t->cells = cells;
	struct trials_cell *c = &t->cells[t->ncells++];
	memset(c, 0, sizeof(*c));
	c->key = strdup(key);
	c->pk = calloc(rec->nparams + 1, sizeof(char *));
	c->pv = calloc(rec->nparams + 1, sizeof(char *));
	if (!c->key || !c->pk || !c->pv)
		return -ENOMEM;
	json_t *params = json_object_get(rec->json, "params");
	for (int i = 0; i < rec->nparams; i++) {
		char num[64];
		const char *s = rec->params[i].value;
		json_t *v = json_object_get(params, rec->params[i].key);
		if (!s && json_is_number(v)) {
			snprintf(num, sizeof num, "%g", json_number_value(v));
			s = num;
		}
		c->pk[c->nparams] = strdup(rec->params[i].key);
		c->pv[c->nparams] = strdup(s ? s : "?");
		if (!c->pk[c->nparams] || !c->pv[c->nparams]) {
			free(c->pk[c->nparams]);
			free(c->pv[c->nparams]);
			return -ENOMEM;
		}
		c->nparams++;
		if (add_pkey(t, rec->params[i].key) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* The index of the record's cell (added when new), or -ENOMEM. */
static int find_cell(struct trials *t, const struct record *rec, const char *key)
{
	for (int i = 0; i < t->ncells; i++)
		if (!strcmp(t->cells[i].key, key))
			return i;
	int rc = new_cell(t, rec, key);
	return rc < 0 ? rc : t->ncells - 1;
}

/* Puts the cells in matrix order (the cell_index of their first record; a run's order is
 * shuffled), cells without one after them in order of first appearance; remaps cellof. */
static int order_cells(struct trials *t, int *cellof)
{
	int n = t->ncells;
	if (n == 0)
		return 0; /* nothing to order (t->cells may be NULL) */
	int *idx = malloc((size_t)(n + 1) * sizeof *idx), *ord = malloc((size_t)(n + 1) * sizeof *ord);
	int *newof = malloc((size_t)(n + 1) * sizeof *newof);
	struct trials_cell *nc = malloc((size_t)(n + 1) * sizeof *nc);
	if (!idx || !ord || !newof || !nc) {
		free(idx);
		free(ord);
		free(newof);
		free(nc);
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++)
		idx[i] = -2;
	for (int r = 0; r < t->nrec; r++)
		if (idx[cellof[r]] == -2)
			idx[cellof[r]] = t->rec[r].cell_index >= 0 ? t->rec[r].cell_index : INT_MAX;
	for (int i = 0; i < n; i++) { /* stable insertion sort by idx */
		int j = i;
		while (j > 0 && idx[ord[j - 1]] > idx[i]) {
			ord[j] = ord[j - 1];
			j--;
		}
		ord[j] = i;
	}
	for (int k = 0; k < n; k++) {
		nc[k] = t->cells[ord[k]];
		newof[ord[k]] = k;
	}
	memcpy(t->cells, nc, (size_t)n * sizeof *nc);
	for (int r = 0; r < t->nrec; r++)
		cellof[r] = newof[cellof[r]];
	free(idx);
	free(ord);
	free(newof);
	free(nc);
	return 0;
}

static int aggregate(struct trials *t)
{
	struct buf key = BUF_INIT;
	int rc = 0;
	double *vals = malloc((t->nrec + 1) * sizeof(double));
	int *cellof = malloc((t->nrec + 1) * sizeof(int));
	int *recof = malloc((t->nrec + 1) * sizeof(int));
	signed char *flags = malloc((size_t)t->nrec + 1);
	t->outlier = calloc((size_t)t->nrec * RECORD_NMETRICS + 1, 1);
	if (!vals || !cellof || !recof || !flags || !t->outlier) {
		rc = -ENOMEM;
		goto out;
	}
	for (int r = 0; r < t->nrec; r++) {
		const struct record *rec = &t->rec[r];
		int ci = rec_key(rec, &key) < 0 ? -ENOMEM : find_cell(t, rec, buf_head(&key));
		if (ci < 0) {
			rc = ci;
			goto out;
		}
		cellof[r] = ci;
		struct trials_cell *c = &t->cells[ci];
		c->ntrials++;
		if (rec->ok) {
			c->nok++;
		} else {
			c->nfailed++;
			if (!c->fail_reason &&
			    !(c->fail_reason = strdup(rec->reason ? rec->reason : "unknown reason"))) {
				rc = -ENOMEM;
				goto out;
			}
		}
	}
	if ((rc = order_cells(t, cellof)) < 0)
		goto out;
	for (int i = 0; i < t->ncells; i++) {
		struct trials_cell *c = &t->cells[i];
		for (int m = 0; m < RECORD_NMETRICS; m++) {
			int n = 0;
			for (int r = 0; r < t->nrec; r++) {
				double v;
				if (cellof[r] == i && t->rec[r].ok && record_metric(&t->rec[r], m, &v)) {
					recof[n] = r;
					vals[n++] = v;
				}
			}
			trials_stat_compute_flags(&c->st[m], vals, n, flags);
			for (int k = 0; k < n; k++)
				t->outlier[(size_t)recof[k] * RECORD_NMETRICS + m] = flags[k];
		}
		/* the precision reached by the decisive figure (the runner's own rule) */
		int nsat = 0, nok = 0, n = 0;
		for (int r = 0; r < t->nrec; r++)
			if (cellof[r] == i && t->rec[r].ok) {
				nok++;
				nsat += record_saturated(&t->rec[r]);
			}
		c->decisive = record_decisive_metric(nsat, nok);
		for (int r = 0; r < t->nrec; r++) {
			double v;
			if (cellof[r] == i && t->rec[r].ok && record_metric(&t->rec[r], c->decisive, &v))
				vals[n++] = v;
		}
		c->precision_n = n;
		c->precision_reached = record_precision(vals, n, &c->precision);
	}
	t->rec_cell = cellof;
	cellof = NULL;
out:
	free(vals);
	free(cellof);
	free(recof);
	free(flags);
	buf_free(&key);
	return rc;
}

/* Parses every line; a line that is no JSON object is counted in bad_lines and skipped. */
static int load_text(struct trials *t, const char *jsonl, char *err, size_t errlen)
{
	const char *p = jsonl;
	int lineno = 0;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		lineno++;
		if (n > 0) {
			struct record rec;
			char rerr[256];
			int rc = record_parse(p, n, &rec, rerr, sizeof rerr);
			if (rc == -EPROTONOSUPPORT) {
				record_release(&rec);
				errbuf(err, errlen, "cannot read trial record %d of '%s/trials.jsonl': %s",
				       lineno, t->dir ? t->dir : ".", rerr);
				return rc;
			}
			if (rc == -ENOMEM) {
				record_release(&rec);
				errbuf(err, errlen, "out of memory");
				return rc;
			}
			if (rc < 0) {
				record_release(&rec);
				t->bad_lines++;
			} else {
				struct record *rs = realloc(t->rec, (t->nrec + 1) * sizeof(*rs));
				if (!rs) {
					record_release(&rec);
					errbuf(err, errlen, "out of memory");
					return -ENOMEM;
				}
				t->rec = rs;
				t->rec[t->nrec++] = rec;
			}
		}
		p += n + (nl ? 1 : 0);
	}
	int rc = aggregate(t);
	if (rc < 0)
		errbuf(err, errlen, "out of memory");
	return rc;
}

int trials_load_text(struct trials *t, const char *jsonl, char *err, size_t errlen)
{
	memset(t, 0, sizeof(*t));
	int rc = load_text(t, jsonl, err, errlen);
	if (rc < 0)
		trials_release(t);
	return rc;
}

int trials_load(struct trials *t, const char *dir, char *err, size_t errlen)
{
	memset(t, 0, sizeof(*t));
	t->dir = strdup(dir);
	if (!t->dir) {
		errbuf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	char path[4096];
	snprintf(path, sizeof path, "%s/trials.jsonl", dir);
	struct buf tb = BUF_INIT;
	int r = buf_read_file(&tb, path);
	char *text = tb.data;
	if (!r && !text)
		text = calloc(1, 1); /* an empty file */
	if (r || !text) {
		errbuf(err, errlen, "cannot read '%s': %s (is '%s' a results directory of 'ctxlab run'?)",
		       path, strerror(r ? -r : ENOMEM), dir);
		trials_release(t);
		return r ? r : -ENOMEM;
	}
	snprintf(path, sizeof path, "%s/env.json", dir);
	char jerr[256];
	t->env = json_read_file(path, jerr, sizeof jerr);
	int rc = load_text(t, text, err, errlen);
	free(text);
	if (rc < 0)
		trials_release(t);
	return rc;
}

void trials_release(struct trials *t)
{
	for (int i = 0; i < t->nrec; i++)
		record_release(&t->rec[i]);
	free(t->rec);
	for (int i = 0; i < t->ncells; i++) {
		struct trials_cell *c = &t->cells[i];
		for (int j = 0; j < c->nparams; j++) {
			free(c->pk[j]);
			free(c->pv[j]);
		}
		free(c->pk);
		free(c->pv);
		free(c->key);
		free(c->fail_reason);
	}
	free(t->cells);
	for (int i = 0; i < t->npkeys; i++)
		free(t->pkeys[i]);
	free(t->pkeys);
	free(t->rec_cell);
	free(t->outlier);
	json_decref(t->env);
	free(t->dir);
	memset(t, 0, sizeof(*t));
}
