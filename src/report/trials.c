#include "report/trials.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"

const struct trials_metric trials_metrics[TRIALS_NMETRICS] = {
	[TRIALS_M_CPU_CORES] = {"cpu_cores", "server_cpu.total_cores", "server CPU", "cores"},
	[TRIALS_M_CPU_USER_CORES] = {"cpu_user_cores", "server_cpu.user_cores", "server user CPU", "cores"},
	[TRIALS_M_CPU_SYS_CORES] = {"cpu_sys_cores", "server_cpu.sys_cores", "server system CPU", "cores"},
	[TRIALS_M_CPU_PEAK_CORES] = {"cpu_peak_cores", "server_cpu.peak_cores", "server CPU peak", "cores"},
	[TRIALS_M_CPU_US_PER_REQUEST] = {"cpu_us_per_request", "server_cpu.us_per_request",
					 "server CPU per request", "us"},
	[TRIALS_M_CPU_MS_PER_MB] = {"cpu_ms_per_mb", "server_cpu.ms_per_mb", "server CPU per MB", "ms"},
	[TRIALS_M_CTXSW_PER_S] = {"ctxsw_per_s", "ctxsw.per_s", "context switches", "/s"},
	[TRIALS_M_CTXSW_PER_REQUEST] = {"ctxsw_per_request", "ctxsw.per_request",
					"context switches per request", ""},
	[TRIALS_M_REQUESTS_PER_S] = {"requests_per_s", "throughput.requests_per_s", "throughput", "req/s"},
	[TRIALS_M_BYTES_PER_S] = {"bytes_per_s", "throughput.bytes_per_s", "bytes moved", "B/s"},
	[TRIALS_M_P50_US] = {"p50_us", "latency_us.p50", "p50 latency", "us"},
	[TRIALS_M_P99_US] = {"p99_us", "latency_us.p99", "p99 latency", "us"},
	[TRIALS_M_P99_9_US] = {"p99_9_us", "latency_us.p99_9", "p99.9 latency", "us"},
	[TRIALS_M_P99_UNCORRECTED_US] = {"p99_uncorrected_us", "latency_uncorrected_us.p99",
					 "p99 latency (uncorrected)", "us"},
	[TRIALS_M_RSS_BYTES] = {"rss_bytes", "memory.rss_bytes", "server RSS", "B"},
	[TRIALS_M_PSS_BYTES] = {"pss_bytes", "memory.pss_bytes", "server PSS", "B"},
	[TRIALS_M_ERRORS] = {"errors", "errors.total", "errors", ""},
};

json_t *trials_path(const json_t *obj, const char *path)
{
	char part[64];
	const char *p = path;
	json_t *cur = (json_t *)obj;
	while (cur && *p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		if (n >= sizeof part || !json_is_object(cur))
			return NULL;
		memcpy(part, p, n);
		part[n] = 0;
		cur = json_object_get(cur, part);
		p += n + (dot ? 1 : 0);
	}
	return cur;
}

int trials_rec_metric(const json_t *rec, int metric, double *v)
{
	if (metric < 0 || metric >= TRIALS_NMETRICS)
		return 0;
	json_t *j = trials_path(rec, trials_metrics[metric].path);
	if (!j || !json_is_number(j))
		return 0;
	*v = json_number_value(j);
	return isfinite(*v);
}

void trials_stat_compute(struct trials_stat *st, const double *vals, int n)
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
}

const char *trials_cell_param(const struct trials_cell *c, const char *key)
{
	for (int i = 0; i < c->nparams; i++)
		if (!strcmp(c->pk[i], key))
			return c->pv[i];
	return NULL;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s ? s : "");
	if (!d)
		die("out of memory");
	return d;
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		die("out of memory");
	return q;
}

static void add_pkey(struct trials *t, const char *k)
{
	for (int i = 0; i < t->npkeys; i++)
		if (!strcmp(t->pkeys[i], k))
			return;
	t->pkeys = xrealloc(t->pkeys, (t->npkeys + 1) * sizeof(char *));
	t->pkeys[t->npkeys++] = xstrdup(k);
}

/* The cell key of a record: its "cell" string, else its params joined. */
static void rec_key(const json_t *rec, struct buf *b)
{
	buf_clear(b);
	const char *cell = json_string_value(json_object_get(rec, "cell"));
	if (cell) {
		buf_append(b, cell, strlen(cell) + 1);
		return;
	}
	const char *k;
	json_t *v;
	json_t *params = json_object_get(rec, "params");
	json_object_foreach(params, k, v)
	{
		const char *s = json_string_value(v);
		buf_appendf(b, "%s%s=%s", b->len ? " " : "", k, s ? s : "?");
	}
	buf_append(b, "", 1);
}

static struct trials_cell *find_cell(struct trials *t, const json_t *rec, const char *key)
{
	for (int i = 0; i < t->ncells; i++)
		if (!strcmp(t->cells[i].key, key))
			return &t->cells[i];
	t->cells = xrealloc(t->cells, (t->ncells + 1) * sizeof(*t->cells));
	struct trials_cell *c = &t->cells[t->ncells++];
	memset(c, 0, sizeof(*c));
	c->key = xstrdup(key);
	json_t *params = json_object_get(rec, "params");
	int n = (int)json_object_size(params);
	c->pk = xrealloc(NULL, (n + 1) * sizeof(char *));
	c->pv = xrealloc(NULL, (n + 1) * sizeof(char *));
	const char *k;
	json_t *v;
	json_object_foreach(params, k, v)
	{
		char num[64];
		const char *s = json_string_value(v);
		if (!s && json_is_number(v)) {
			snprintf(num, sizeof num, "%g", json_number_value(v));
			s = num;
		}
		c->pk[c->nparams] = xstrdup(k);
		c->pv[c->nparams] = xstrdup(s ? s : "?");
		c->nparams++;
		add_pkey(t, k);
	}
	return c;
}

static void aggregate(struct trials *t)
{
	struct buf key = BUF_INIT;
	double *vals = xrealloc(NULL, (t->nrec + 1) * sizeof(double));
	int *cellof = xrealloc(NULL, (t->nrec + 1) * sizeof(int));
	char *okrec = xrealloc(NULL, (t->nrec + 1));
	for (int r = 0; r < t->nrec; r++) {
		rec_key(t->rec[r], &key);
		struct trials_cell *c = find_cell(t, t->rec[r], buf_head(&key));
		cellof[r] = (int)(c - t->cells);
		c->ntrials++;
		const char *status = json_string_value(json_object_get(t->rec[r], "status"));
		okrec[r] = status && !strcmp(status, "ok");
		if (okrec[r]) {
			c->nok++;
		} else {
			c->nfailed++;
			const char *why = json_string_value(json_object_get(t->rec[r], "reason"));
			if (!c->fail_reason)
				c->fail_reason = xstrdup(why ? why : "unknown reason");
		}
	}
	for (int i = 0; i < t->ncells; i++) {
		struct trials_cell *c = &t->cells[i];
		for (int m = 0; m < TRIALS_NMETRICS; m++) {
			int n = 0;
			for (int r = 0; r < t->nrec; r++) {
				double v;
				if (cellof[r] == i && okrec[r] && trials_rec_metric(t->rec[r], m, &v))
					vals[n++] = v;
			}
			trials_stat_compute(&c->st[m], vals, n);
		}
	}
	free(vals);
	free(cellof);
	free(okrec);
	buf_free(&key);
}

static void load_text(struct trials *t, const char *jsonl)
{
	const char *p = jsonl;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		if (n > 0) {
			json_error_t je;
			json_t *j = json_loadb(p, n, 0, &je);
			if (j && json_is_object(j)) {
				t->rec = xrealloc(t->rec, (t->nrec + 1) * sizeof(json_t *));
				t->rec[t->nrec++] = j;
			} else {
				json_decref(j);
				t->bad_lines++;
			}
		}
		p += n + (nl ? 1 : 0);
	}
	aggregate(t);
}

int trials_load_text(struct trials *t, const char *jsonl, char *err, size_t errlen)
{
	memset(t, 0, sizeof(*t));
	load_text(t, jsonl);
	(void)err;
	(void)errlen;
	return 0;
}

int trials_load(struct trials *t, const char *dir, char *err, size_t errlen)
{
	memset(t, 0, sizeof(*t));
	t->dir = xstrdup(dir);
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
		return -1;
	}
	snprintf(path, sizeof path, "%s/env.json", dir);
	char jerr[256];
	t->env = json_read_file(path, jerr, sizeof jerr);
	load_text(t, text);
	free(text);
	return 0;
}

void trials_release(struct trials *t)
{
	for (int i = 0; i < t->nrec; i++)
		json_decref(t->rec[i]);
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
	json_decref(t->env);
	free(t->dir);
	memset(t, 0, sizeof(*t));
}
