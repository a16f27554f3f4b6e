#include "monitor/series.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const series_names[SERIES_NFIG] = {
	"interval_s",      "cpu_user_cores", "cpu_sys_cores",  "cpu_total_cores", "cpu_pct",
	"ctxsw_vol_per_s", "ctxsw_invol_per_s", "procs",       "threads",         "rss_bytes",
	"pss_bytes",       "fds",            "sockets",        "minflt_per_s",    "majflt_per_s",
	"runq_wait_ms_per_s", "sys_us",      "sys_sy",         "sys_ni",          "sys_id",
	"sys_wa",          "sys_hi",         "sys_si",         "sys_st",          "syscalls_per_s",
	"cpu_migrations_per_s", "ipc",
};

const char *const series_units[SERIES_NFIG] = {
	"s", "cores", "cores", "cores", "%", "1/s", "1/s", "", "", "B", "B", "", "", "1/s", "1/s",
	"ms/s", "%", "%", "%", "%", "%", "%", "%", "%", "1/s", "1/s", "",
};

void series_row(const struct monitor_sample *s, double *v)
{
	double sec = s->interval_s > 0 ? s->interval_s : NAN;
	int i = 0;
	v[i++] = s->interval_s;
	v[i++] = s->cpu_user_cores;
	v[i++] = s->cpu_sys_cores;
	v[i++] = s->cpu_total_cores;
	v[i++] = s->cpu_pct;
	v[i++] = s->ctxsw_vol_per_s;
	v[i++] = s->ctxsw_invol_per_s;
	v[i++] = s->procs;
	v[i++] = s->threads;
	v[i++] = (double)s->rss_bytes;
	v[i++] = (double)s->pss_bytes;
	v[i++] = s->fds;
	v[i++] = s->sockets;
	v[i++] = (double)s->minflt / sec;
	v[i++] = (double)s->majflt / sec;
	v[i++] = s->runq_wait_s * 1000 / sec;
	v[i++] = s->sys.us;
	v[i++] = s->sys.sy;
	v[i++] = s->sys.ni;
	v[i++] = s->sys.id;
	v[i++] = s->sys.wa;
	v[i++] = s->sys.hi;
	v[i++] = s->sys.si;
	v[i++] = s->sys.st;
	v[i++] = s->syscalls_ok ? (double)s->syscalls / sec : NAN;
	v[i++] = s->sw_ok ? (double)s->cpu_migrations / sec : NAN;
	v[i++] = s->hw_ok ? s->ipc : NAN;
}

int series_add(struct series *se, const struct monitor_sample *s)
{
	if (se->n == se->cap) {
		size_t nc = se->cap ? se->cap * 2 : 64;
		double *r = realloc(se->rows, nc * SERIES_NFIG * sizeof *r);
		if (!r)
			return -ENOMEM;
		se->rows = r, se->cap = nc;
	}
	series_row(s, se->rows + se->n * SERIES_NFIG);
	se->n++;
	return 0;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

void series_stats(const struct series *se, int fig, struct series_stats *st)
{
	memset(st, 0, sizeof *st);
	double *v = malloc((se->n ? se->n : 1) * sizeof *v);
	if (!v)
		return;
	size_t n = 0;
	for (size_t i = 0; i < se->n; i++) {
		double x = se->rows[i * SERIES_NFIG + (size_t)fig];
		if (!isnan(x))
			v[n++] = x;
	}
	st->count = n;
	if (n) {
		double sum = 0;
		for (size_t i = 0; i < n; i++)
			sum += v[i];
		st->mean = sum / (double)n;
		double ss = 0;
		for (size_t i = 0; i < n; i++)
			ss += (v[i] - st->mean) * (v[i] - st->mean);
		st->stddev = n > 1 ? sqrt(ss / (double)(n - 1)) : 0;
		st->cv = st->mean != 0 ? st->stddev / fabs(st->mean) : 0;
		qsort(v, n, sizeof *v, cmp_d);
		st->min = v[0], st->max = v[n - 1];
		size_t rank = (size_t)ceil(0.95 * (double)n); /* nearest rank, 1-based */
		st->p95 = v[rank ? rank - 1 : 0];
	}
	free(v);
}

void series_free(struct series *se)
{
	free(se->rows);
	memset(se, 0, sizeof *se);
}
