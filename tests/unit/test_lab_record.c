/* record: a trial record written by record_write reads back through record_parse with the same
 * values; schema versions: none = 1.0, older and same major read, a newer major refused; the
 * monitor's figures appear under the record's names (monout), the same values as watch's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "core/json.h"
#include "lab/record.h"
#include "monitor/monout.h"

static void fill(struct record *r, struct monitor_sample *tot, struct monitor_peak *pk,
		 json_t **load, struct record_param *params, const char **warnings)
{
	memset(tot, 0, sizeof *tot);
	tot->cpu_user_cores = 0.25;
	tot->cpu_sys_cores = 0.5;
	tot->cpu_total_cores = 0.75;
	tot->cpu_user_s = 2.5;
	tot->cpu_sys_s = 5;
	tot->ctxsw_vol_per_s = 1000;
	tot->ctxsw_invol_per_s = 10;
	tot->ctxsw_vol = 10000;
	tot->ctxsw_invol = 100;
	tot->rss_bytes = 1 << 20;
	tot->procs = 1;
	tot->threads = 3;
	memset(pk, 0, sizeof *pk);
	pk->cpu_total_cores = 0.9;
	pk->rss_bytes = 2 << 20;
	json_error_t je;
	*load = json_loads("{\"duration_s\": 10, \"requests\": 5000, \"bytes_sent\": 1000000,"
			   " \"bytes_received\": 1000000, \"latency_us\": {\"count\": 5000, \"p50\": 40,"
			   " \"p99\": 90, \"p99_9\": 120}, \"errors\": {\"total\": 0},"
			   " \"config\": {\"connections\": 4}}", 0, &je);
	assert_non_null(*load);
	params[0] = (struct record_param){"engine", "epoll"};
	params[1] = (struct record_param){"proto", "echo"};
	warnings[0] = "load generator shared CPUs with the server";
	*r = (struct record){
		.trial = 3, .of = 8, .repeat = 1, .cell = "engine=epoll proto=echo", .nparams = 2,
		.params = params, .ok = 1, .start_wall_ns = 123456789, .warmup_s = 1,
		.duration_s = 10, .server_host = "local", .load_host = "local",
		.server_address = "127.0.0.1:4000", .server_cpus = "0", .load_cpus = "1",
		.server_ncpus = 1, .load_ncpus = 1, .have_mon = 1, .accounting = "cgroup2",
		.accounting_reason = "its own cgroup", .window_s = 10, .total = tot, .peak = pk,
		.load = *load, .nwarn = 1, .warnings = warnings,
	};
}

/* [experiment] alloc: per request = the window's rate / requests_per_s (500 /s here); absent
 * without alloc_mode; "unavailable" carries no figure */
static void test_alloc(void **state)
{
	(void)state;
	struct record w, r;
	struct monitor_sample tot;
	struct monitor_peak pk;
	json_t *load;
	struct record_param params[2];
	const char *warnings[1];
	fill(&w, &tot, &pk, &load, params, warnings);
	struct jw jw;
	jw_init(&jw);
	char err[256];
	double v;
	record_write(&jw, &w);
	assert_int_equal(record_parse(jw.buf, jw.len, &r, err, sizeof err), 0);
	assert_null(json_object_get(r.json, "alloc"));
	assert_false(record_metric(&r, RECORD_M_ALLOC_CALLS_PER_REQUEST, &v));
	record_release(&r);
	w.alloc_mode = "sampled";
	w.alloc_calls_per_s = 1500;
	w.alloc_bytes_per_s = 4.5e6;
	w.alloc_frees_per_s = 1400;
	jw_reset(&jw);
	record_write(&jw, &w);
	assert_int_equal(record_parse(jw.buf, jw.len, &r, err, sizeof err), 0);
	assert_true(record_metric(&r, RECORD_M_ALLOC_CALLS_PER_REQUEST, &v));
	assert_true(v > 2.999999 && v < 3.000001);
	assert_true(record_metric(&r, RECORD_M_ALLOC_BYTES_PER_REQUEST, &v));
	assert_true(v > 8999.99 && v < 9000.01);
	assert_string_equal(json_string_value(record_path(r.json, "alloc.mode")), "sampled");
	assert_true(json_number_value(record_path(r.json, "alloc.frees_per_s")) == 1400);
	record_release(&r);
	w.alloc_reason = "static binary";
	jw_reset(&jw);
	record_write(&jw, &w);
	assert_int_equal(record_parse(jw.buf, jw.len, &r, err, sizeof err), 0);
	assert_false(record_metric(&r, RECORD_M_ALLOC_CALLS_PER_REQUEST, &v));
	assert_string_equal(json_string_value(record_path(r.json, "alloc.unavailable")),
			    "static binary");
	record_release(&r);
	jw_release(&jw);
	json_decref(load);
}

static void test_round_trip(void **state)
{
	(void)state;
	struct record w, r;
	struct monitor_sample tot;
	struct monitor_peak pk;
	json_t *load;
	struct record_param params[2];
	const char *warnings[1];
	fill(&w, &tot, &pk, &load, params, warnings);
	struct jw jw;
	jw_init(&jw);
	record_write(&jw, &w);
	assert_false(jw.oom);
	char err[256];
	assert_int_equal(record_parse(jw.buf, jw.len, &r, err, sizeof err), 0);
	assert_int_equal(r.schema_major, RECORD_SCHEMA_MAJOR);
	assert_int_equal(r.schema_minor, RECORD_SCHEMA_MINOR);
	assert_int_equal(r.trial, 3);
	assert_int_equal(r.of, 8);
	assert_int_equal(r.repeat, 1);
	assert_string_equal(r.cell, "engine=epoll proto=echo");
	assert_int_equal(r.nparams, 2);
	assert_string_equal(r.params[1].key, "proto");
	assert_string_equal(r.params[1].value, "echo");
	assert_true(r.ok);
	assert_null(r.reason);
	assert_string_equal(r.server_cpus, "0");
	assert_string_equal(r.load_cpus, "1");
	assert_string_equal(r.accounting, "cgroup2");
	assert_true(r.have_mon);
	double v;
	assert_true(record_metric(&r, RECORD_M_CPU_CORES, &v));
	assert_true(v == 0.75);
	assert_true(record_metric(&r, RECORD_M_CPU_PEAK_CORES, &v));
	assert_true(v == 0.9);
	assert_true(record_metric(&r, RECORD_M_REQUESTS_PER_S, &v));
	assert_true(v == 500);
	assert_true(record_metric(&r, RECORD_M_CPU_US_PER_REQUEST, &v)); /* 0.75 cores / 500 /s */
	assert_true(v > 1499.999 && v < 1500.001);
	assert_true(record_metric(&r, RECORD_M_CTXSW_PER_S, &v));
	assert_true(v == 1010);
	assert_true(record_metric(&r, RECORD_M_RSS_BYTES, &v)); /* the peak */
	assert_true(v == (double)(2 << 20));
	assert_true(record_metric(&r, RECORD_M_P99_US, &v));
	assert_true(v == 90);
	/* the monitor's figures under the record's names */
	assert_int_equal(json_integer_value(record_path(r.json, "ctxsw.voluntary")), 10000);
	assert_true(json_number_value(record_path(r.json, "server_cpu.user_s")) == 2.5);
	assert_int_equal(json_integer_value(record_path(r.json, "memory.threads")), 3);
	record_release(&r);
	/* a failed trial keeps its reason */
	w.ok = 0;
	w.reason = "the server exited with status 1";
	jw_reset(&jw);
	record_write(&jw, &w);
	assert_int_equal(record_parse(jw.buf, jw.len, &r, err, sizeof err), 0);
	assert_false(r.ok);
	assert_string_equal(r.reason, "the server exited with status 1");
	record_release(&r);
	jw_release(&jw);
	json_decref(load);
}

static void test_versions(void **state)
{
	(void)state;
	struct record r;
	char err[256] = "";
	const char *old = "{\"trial\":0,\"repeat\":0,\"cell\":\"c\",\"status\":\"ok\"}";
	assert_int_equal(record_parse(old, strlen(old), &r, err, sizeof err), 0);
	assert_int_equal(r.schema_major, 1);
	assert_int_equal(r.schema_minor, 0);
	record_release(&r);
	const char *minor = "{\"schema\":\"1.7\",\"repeat\":0,\"cell\":\"c\",\"new_key\":1}";
	assert_int_equal(record_parse(minor, strlen(minor), &r, err, sizeof err), 0);
	assert_int_equal(r.schema_minor, 7);
	record_release(&r);
	const char *newer = "{\"schema\":\"2.0\",\"repeat\":0,\"cell\":\"c\"}";
	assert_int_equal(record_parse(newer, strlen(newer), &r, err, sizeof err), -EPROTONOSUPPORT);
	assert_non_null(strstr(err, "schema 2.0"));
	assert_non_null(strstr(err, "newer ctxlab"));
	record_release(&r);
	const char *bad = "{\"schema\":\"one\"}";
	assert_int_equal(record_parse(bad, strlen(bad), &r, err, sizeof err), -EINVAL);
	record_release(&r);
	assert_int_equal(record_parse("[1,2]", 5, &r, err, sizeof err), -EINVAL);
	record_release(&r);
	assert_int_equal(record_parse("{\"cut", 5, &r, err, sizeof err), -EINVAL);
	record_release(&r);
}

/* watch's total and the record's objects: one figure, the same value under both names */
static void test_both_names_same_value(void **state)
{
	(void)state;
	struct record w;
	struct monitor_sample tot;
	struct monitor_peak pk;
	json_t *load;
	struct record_param params[2];
	const char *warnings[1];
	fill(&w, &tot, &pk, &load, params, warnings);
	struct series se = {0};
	struct monout_overhead oh = {0};
	struct jw a, b;
	jw_init(&a);
	jw_init(&b);
	monout_summary(&a, &se, &tot, &oh);
	record_write(&b, &w);
	json_error_t je;
	json_t *ja = json_loadb(a.buf, a.len, 0, &je), *jb = json_loadb(b.buf, b.len, 0, &je);
	assert_non_null(ja);
	assert_non_null(jb);
	const char *pairs[][2] = {{"total.cpu_user_s", "server_cpu.user_s"},
				  {"total.cpu_sys_s", "server_cpu.sys_s"},
				  {"total.cpu_total_cores", "server_cpu.total_cores"},
				  {"total.ctxsw_vol", "ctxsw.voluntary"},
				  {"total.ctxsw_invol", "ctxsw.involuntary"},
				  {"total.max_threads", "memory.threads"}};
	for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
		json_t *x = record_path(ja, pairs[i][0]), *y = record_path(jb, pairs[i][1]);
		if (!x || !y || json_number_value(x) != json_number_value(y))
			fail_msg("%s != %s", pairs[i][0], pairs[i][1]);
	}
	json_decref(ja);
	json_decref(jb);
	jw_release(&a);
	jw_release(&b);
	json_decref(load);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_alloc),
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_both_names_same_value),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
