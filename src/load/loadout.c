#include "load/loadout.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "core/buf.h"
#include "core/units.h"


/* ns -> "123.45us" / "1.23ms" / "1.23s" */
static char *fmt_lat(uint64_t ns, char *b, size_t n)
{
	if (ns < 1000000)
		snprintf(b, n, "%.2fus", (double)ns / 1e3);
	else if (ns < 1000000000ULL)
		snprintf(b, n, "%.2fms", (double)ns / 1e6);
	else
		snprintf(b, n, "%.2fs", (double)ns / 1e9);
	return b;
}

static const double pcts[] = {50, 75, 90, 99, 99.9, 99.99};
static const char *const pct_keys[] = {"p50", "p75", "p90", "p99", "p99_9", "p99_99"};

static void bars(FILE *f, const struct hist *h)
{
	/* hey's histogram: 10 equal-width buckets from the fastest to the slowest */
	uint64_t lo = hist_min(h), hi = hist_max(h);
	uint64_t cnt[11] = {0};
	double width = (double)(hi - lo) / 10.0;
	struct hist_bucket_iter it;
	hist_bucket_iter_init(&it, h);
	while (hist_bucket_iter_next(&it)) {
		int b = width > 0 ? (int)((double)(it.lo - (it.lo < lo ? it.lo : lo)) / width) : 0;
		if (b > 10)
			b = 10;
		if (b < 0)
			b = 0;
		cnt[b] += it.count;
	}
	uint64_t max = 1;
	for (int i = 0; i <= 10; i++)
		if (cnt[i] > max)
			max = cnt[i];
	fprintf(f, "  Response time histogram:\n");
	for (int i = 0; i <= 10; i++) {
		char b[32];
		int len = (int)(40.0 * (double)cnt[i] / (double)max);
		fprintf(f, "    %10s [%" PRIu64 "]\t|", fmt_lat(lo + (uint64_t)(width * i), b, sizeof(b)),
			cnt[i]);
		for (int k = 0; k < len; k++)
			fputs("\u25a0", f);
		fputc('\n', f);
	}
}

void loadout_summary(FILE *f, const struct load_cfg *cfg, const struct load_result *r)
{
	int fanout = (cfg->client->flags & LOAD_C_FANOUT) != 0;
	char b1[32], b2[32], b3[32], b4[32];
	const char *mode = cfg->bandwidth_bps > 0 ? "bandwidth" : r->target_rate_per_s > 0 ? "open loop" : "closed loop";
	fprintf(f, "%s test @ %s (%s, %s)\n", units_format_duration((uint64_t)(r->duration_s * 1e9), b1, sizeof(b1)),
		cfg->target_str, cfg->client->name, mode);
	fprintf(f, "  %u threads and %u connections, pipeline %u", cfg->threads, cfg->conns,
		cfg->pipeline);
	if (r->target_rate_per_s > 0)
		fprintf(f, ", target %s", units_format_rate(r->target_rate_per_s, b1, sizeof(b1)));
	if (cfg->bandwidth_bps > 0)
		fprintf(f, " (%s per connection)", units_format_bandwidth(cfg->bandwidth_bps, b1, sizeof(b1)));
	fputc('\n', f);
	const struct hist *h = r->lat;
	if (h && hist_count(h)) {
		fprintf(f, "  Latency%s     mean %s  stdev %s  min %s  max %s\n",
			r->target_rate_per_s > 0 && !fanout ? " (corrected)" : "",
			fmt_lat((uint64_t)hist_mean(h), b1, sizeof(b1)),
			fmt_lat((uint64_t)hist_stddev(h), b2, sizeof(b2)),
			fmt_lat(hist_min(h), b3, sizeof(b3)), fmt_lat(hist_max(h), b4, sizeof(b4)));
		fprintf(f, "  Latency Distribution%s\n",
			r->target_rate_per_s > 0 && !fanout ? " (corrected | uncorrected)" : "");
		for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
			fprintf(f, "  %7.2f%%  %10s", pcts[i], fmt_lat(hist_percentile(h, pcts[i]), b1, sizeof(b1)));
			if (r->target_rate_per_s > 0 && !fanout)
				fprintf(f, " | %10s", fmt_lat(hist_percentile(r->lat_unc, pcts[i]), b2, sizeof(b2)));
			fputc('\n', f);
		}
		bars(f, h);
	}
	fprintf(f, "  %" PRIu64 " %s in %.2fs, %s sent, %s read\n",
		fanout ? r->chat_delivered : r->requests, cfg->client->answers,
		r->duration_s, units_format_size(r->bytes_sent, b1, sizeof(b1)),
		units_format_size(r->bytes_received, b2, sizeof(b2)));
	fprintf(f, "  sent %" PRIu64 ", answered %" PRIu64 ", in flight at the end %" PRIu64 "\n",
		r->messages_sent, r->answered, r->unfinished);
	uint64_t et = load_errors_total(r);
	if (et) {
		fprintf(f, "  Errors: %" PRIu64 " (connect %" PRIu64 ", reset %" PRIu64 ", timeout %" PRIu64
			", closed %" PRIu64 ", parse %" PRIu64 ", non-2xx %" PRIu64 ")\n",
			et, r->err_connect, r->err_reset, r->err_timeout, r->err_closed, r->err_parse,
			r->err_status);
		if (r->err_status) {
			fprintf(f, "  Non-2xx responses:");
			for (int i = 0; i < LOAD_STATUS_MAX; i++)
				if (r->status[i] && (i < 200 || i >= 300))
					fprintf(f, " %d x %" PRIu64, i, r->status[i]);
			fputc('\n', f);
		}
	}
	if (fanout) {
		double loss = r->chat_expected ? 1.0 - (double)r->chat_delivered / (double)r->chat_expected : 0;
		fprintf(f, "  Chat: sent %" PRIu64 ", delivered %" PRIu64 " of %" PRIu64
			" expected (loss %.3f%%), fan-out %.1f deliveries/s\n",
			r->chat_sent, r->chat_delivered, r->chat_expected, 100 * loss,
			r->duration_s > 0 ? (double)r->chat_delivered / r->duration_s : 0);
	}
	double rate = r->duration_s > 0 ? (double)r->requests / r->duration_s : 0;
	fprintf(f, "%c%ss/sec: %12.2f\n", toupper((unsigned char)cfg->client->unit[0]),
		cfg->client->unit + 1, rate);
	fprintf(f, "Transfer/sec: %s read, %s sent\n",
		units_format_size(r->duration_s > 0 ? (uint64_t)(r->bytes_received / r->duration_s) : 0, b1, sizeof(b1)),
		units_format_size(r->duration_s > 0 ? (uint64_t)(r->bytes_sent / r->duration_s) : 0, b2, sizeof(b2)));
	if (r->target_rate_per_s > 0) {
		double sent_rate = r->duration_s > 0 ? (double)r->messages_sent / r->duration_s : 0;
		fprintf(f, "Target rate: %.1f/s, sent %.1f/s, late sends %" PRIu64 " (%" PRIu64 " never sent)%s\n",
			r->target_rate_per_s, sent_rate, r->late_sends, r->unsent,
			sent_rate < 0.99 * r->target_rate_per_s ? "  -- the target rate was NOT held" : "");
	}
	double cpu = r->cpu_user_s + r->cpu_sys_s;
	uint64_t n = r->requests ? r->requests : r->messages_sent;
	fprintf(f, "Client CPU: user %.2fs sys %.2fs", r->cpu_user_s, r->cpu_sys_s);
	if (n)
		fprintf(f, " (%.2f us per %s)", cpu * 1e6 / (double)n,
			cfg->client->unit);
	fputc('\n', f);
}

void loadout_spectrum(FILE *f, const struct load_result *r)
{
	const struct hist *h = r->lat;
	if (!h || !hist_count(h))
		return;
	fprintf(f, "\n  Detailed Percentile spectrum:\n");
	fprintf(f, "       Value   Percentile   TotalCount 1/(1-Percentile)\n\n");
	struct hist_iter it;
	hist_iter_init(&it, h, 5);
	while (hist_iter_next(&it)) {
		double q = it.percentile / 100.0;
		if (q < 1.0)
			fprintf(f, "%12.3f %12.6f %12" PRIu64 " %12.2f\n", (double)it.value / 1e6, q,
				it.count_to_here, 1.0 / (1.0 - q));
		else
			fprintf(f, "%12.3f %12.6f %12" PRIu64 "\n", (double)it.value / 1e6, q,
				it.count_to_here);
	}
	fprintf(f, "#[Mean    = %12.3f, StdDeviation   = %12.3f]\n", hist_mean(h) / 1e6,
		hist_stddev(h) / 1e6);
	fprintf(f, "#[Max     = %12.3f, Total count    = %12" PRIu64 "]\n",
		(double)hist_max(h) / 1e6, hist_count(h));
	fprintf(f, "----------------------------------------------------------\n");
}

void loadout_lat_obj(struct jw *w, const char *key, const struct hist *h)
{
	jw_key(w, key);
	jw_obj(w);
	int empty = !h || !hist_count(h);
	jw_kdouble(w, "mean", empty ? 0 : hist_mean(h) / 1e3);
	jw_kdouble(w, "stdev", empty ? 0 : hist_stddev(h) / 1e3);
	jw_kdouble(w, "min", empty ? 0 : (double)hist_min(h) / 1e3);
	jw_kdouble(w, "max", empty ? 0 : (double)hist_max(h) / 1e3);
	for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++)
		jw_kdouble(w, pct_keys[i], empty ? 0 : (double)hist_percentile(h, pcts[i]) / 1e3);
	jw_kuint(w, "count", empty ? 0 : hist_count(h));
	jw_end(w);
}

static void json_doc(struct jw *w, const struct load_cfg *cfg, const struct load_result *r,
		     int with_hist);
/* A histogram's non-empty buckets as [[highest equivalent value in ns, count], ...]: exact
 * and mergeable (the same buckets in every histogram). */
static void buckets_arr(struct jw *w, const char *key, const struct hist *h)
{
	jw_key(w, key);
	jw_arr(w);
	struct hist_bucket_iter it;
	hist_bucket_iter_init(&it, h);
	while (hist_bucket_iter_next(&it)) {
		jw_arr(w);
		jw_uint(w, it.hi);
		jw_uint(w, it.count);
		jw_end(w);
	}
	jw_end(w);
}

/* --intervals: the window's latency per interval, with its buckets (and the whole window's) */
static void intervals_obj(struct jw *w, const struct load_result *r)
{
	jw_key(w, "intervals");
	jw_obj(w);
	jw_kdouble(w, "interval_s", (double)r->interval_ns / 1e9);
	jw_key(w, "rows");
	jw_arr(w);
	for (int k = 0; k < r->nintervals; k++) {
		const struct hist *h = r->ivl[k];
		jw_obj(w);
		jw_kdouble(w, "t_s", (double)k * (double)r->interval_ns / 1e9);
		uint64_t n = hist_count(h);
		jw_kuint(w, "count", n);
		jw_kdouble(w, "p50_us", n ? (double)hist_percentile(h, 50) / 1e3 : 0);
		jw_kdouble(w, "p90_us", n ? (double)hist_percentile(h, 90) / 1e3 : 0);
		jw_kdouble(w, "p99_us", n ? (double)hist_percentile(h, 99) / 1e3 : 0);
		jw_kdouble(w, "p99_9_us", n ? (double)hist_percentile(h, 99.9) / 1e3 : 0);
		jw_kdouble(w, "max_us", n ? (double)hist_max(h) / 1e3 : 0);
		buckets_arr(w, "buckets", h);
		jw_end(w);
	}
	jw_end(w);
	buckets_arr(w, "window_buckets", r->lat);
	jw_end(w);
}

void loadout_json(struct jw *w, const struct load_cfg *cfg, const struct load_result *r)
{
	json_doc(w, cfg, r, 0);
}

static void hist_str(struct jw *w, const char *key, const struct hist *h)
{
	struct buf b = BUF_INIT;
	if (!h || hist_encode(h, &b) < 0 || buf_append(&b, "", 1) < 0)
		w->oom = 1;
	else
		jw_kstr(w, key, buf_head(&b));
	buf_free(&b);
}

void loadout_json_hist(struct jw *w, const struct load_cfg *cfg, const struct load_result *r)
{
	json_doc(w, cfg, r, 1);
}

static void json_doc(struct jw *w, const struct load_cfg *cfg, const struct load_result *r,
		     int with_hist)
{
	jw_obj(w);
	jw_kstr(w, "tool", "ctxlab load");
	jw_key(w, "config");
	jw_obj(w);
	jw_kstr(w, "target", cfg->target_str);
	jw_kstr(w, "proto", cfg->client->name);
	jw_kuint(w, "connections", cfg->conns);
	jw_kuint(w, "threads", cfg->threads);
	jw_kuint(w, "pipeline", cfg->pipeline);
	jw_kdouble(w, "rate", cfg->rate_per_s);
	jw_kdouble(w, "bandwidth_bps", cfg->bandwidth_bps);
	jw_kdouble(w, "duration_s", (double)cfg->duration_ns / 1e9);
	jw_kdouble(w, "warmup_s", (double)cfg->warmup_ns / 1e9);
	jw_kuint(w, "requests", cfg->requests);
	jw_kdouble(w, "timeout_s", (double)cfg->timeout_ns / 1e9);
	jw_kbool(w, "keepalive", cfg->keepalive);
	jw_kuint(w, "message_bytes", cfg->msg_len);
	jw_end(w);
	jw_kstr(w, "io", r->io ? r->io : "epoll");
	jw_kuint(w, "start_wall_ns", r->start_wall_ns);
	jw_kdouble(w, "duration_s", r->duration_s);
	jw_kuint(w, "requests", r->requests);
	jw_kuint(w, "answered", r->answered);
	jw_kuint(w, "messages_sent", r->messages_sent);
	jw_kuint(w, "unfinished", r->unfinished);
	jw_kuint(w, "bytes_sent", r->bytes_sent);
	jw_kuint(w, "bytes_received", r->bytes_received);
	jw_kdouble(w, "rate_per_s", r->duration_s > 0 ? (double)r->requests / r->duration_s : 0);
	jw_kdouble(w, "throughput_bytes_per_s",
		   r->duration_s > 0 ? (double)(r->bytes_sent + r->bytes_received) / r->duration_s : 0);
	jw_kdouble(w, "target_rate_per_s", r->target_rate_per_s);
	jw_kdouble(w, "sent_rate_per_s", r->duration_s > 0 ? (double)r->messages_sent / r->duration_s : 0);
	jw_kuint(w, "late_sends", r->late_sends);
	jw_kuint(w, "unsent", r->unsent);
	jw_kuint(w, "connections_opened", r->conns_opened);
	jw_key(w, "errors");
	jw_obj(w);
	jw_kuint(w, "total", load_errors_total(r));
	jw_kuint(w, "connect", r->err_connect);
	jw_kuint(w, "reset", r->err_reset);
	jw_kuint(w, "timeout", r->err_timeout);
	jw_kuint(w, "parse", r->err_parse);
	jw_kuint(w, "closed", r->err_closed);
	jw_key(w, "status");
	jw_obj(w);
	for (int i = 0; i < LOAD_STATUS_MAX; i++)
		if (r->status[i] && (i < 200 || i >= 300)) {
			char k[8];
			snprintf(k, sizeof(k), "%d", i);
			jw_kuint(w, k, r->status[i]);
		}
	jw_end(w);
	jw_end(w);
	jw_key(w, "status");
	jw_obj(w);
	for (int i = 0; i < LOAD_STATUS_MAX; i++)
		if (r->status[i]) {
			char k[8];
			snprintf(k, sizeof(k), "%d", i);
			jw_kuint(w, k, r->status[i]);
		}
	jw_end(w);
	loadout_lat_obj(w, "latency_us", r->lat);
	loadout_lat_obj(w, "latency_uncorrected_us", r->lat_unc);
	if (r->nintervals && r->ivl && r->lat)
		intervals_obj(w, r);
	if (cfg->client->flags & LOAD_C_FANOUT) {
		jw_key(w, "chat");
		jw_obj(w);
		jw_kuint(w, "sent", r->chat_sent);
		jw_kuint(w, "delivered", r->chat_delivered);
		jw_kuint(w, "expected", r->chat_expected);
		jw_kdouble(w, "loss", r->chat_expected ? 1.0 - (double)r->chat_delivered / (double)r->chat_expected : 0);
		jw_kdouble(w, "delivery_rate_per_s", r->duration_s > 0 ? (double)r->chat_delivered / r->duration_s : 0);
		jw_end(w);
	}
	jw_key(w, "client_cpu");
	jw_obj(w);
	jw_kdouble(w, "user_s", r->cpu_user_s);
	jw_kdouble(w, "sys_s", r->cpu_sys_s);
	jw_kdouble(w, "us_per_request", (r->requests ? (r->cpu_user_s + r->cpu_sys_s) * 1e6 / (double)r->requests : 0));
	jw_end(w);
	jw_kbool(w, "interrupted", r->interrupted);
	jw_kbool(w, "ports_exhausted", r->ports_exhausted);
	jw_kstr(w, "stop_reason", r->stop_reason);
	if (with_hist) {
		hist_str(w, "latency_hist", r->lat);
		hist_str(w, "latency_uncorrected_hist", r->lat_unc);
	}
	jw_end(w);
}
