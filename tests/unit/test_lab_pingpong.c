/* lab: kind = pingpong experiments (spec parsing, cells, errors) and the record's checks of
 * issue 11: the no-switch check of in-process pingpong modes and the system-CPU interference
 * rule. Pure functions: no process is started. */
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lab/record.h"
#include "lab/spec.h"

static struct spec_catalog cat;

static int setup(void **state)
{
	(void)state;
	assert_int_equal(spec_catalog_parse(&cat, "epoll sink echo http chat\n"), 1);
	return 0;
}

static int parse(struct spec *s, const char *text, char *err, size_t len)
{
	return spec_parse_text(s, text, "pp.ini", &cat, 0, err, len);
}

static void test_pp_cells(void **state)
{
	(void)state;
	struct spec s;
	char err[512];
	if (parse(&s, "[experiment]\nkind = pingpong\nrepeat = 2\n[pingpong]\n"
		      "mode = unix-thread coro-unix\npairs = 1 4\nworking_set = 0 64KiB\n"
		      "stride = 4k\nsize = 64\n", err, sizeof err))
		fail_msg("%s", err);
	assert_true(s.pingpong);
	struct spec_cell *c;
	int n = spec_cells(&s, &c);
	assert_int_equal(n, 8);
	/* mode varies fastest, defaults are spelled out in the key */
	assert_string_equal(c[0].key, "mode=unix-thread cpus=all pin=same pairs=1 size=64 "
				      "working_set=0 stride=4k");
	assert_string_equal(c[1].mode, "coro-unix");
	assert_string_equal(c[0].engine, "pingpong");
	assert_null(c[0].proto);
	assert_int_equal(c[0].size_bytes, 64);
	assert_int_equal(c[0].stride_bytes, 4096);
	assert_string_equal(c[0].pin, "same");
	assert_int_equal(c[0].cpus_count, 0);
	/* pairs before working_set: the last axis varies next */
	assert_int_equal(c[2].working_set_bytes, 65536);
	assert_int_equal(c[2].pairs, 1);
	assert_int_equal(c[4].pairs, 4);
	char id[128];
	spec_cell_id(c, n, 3, id, sizeof id);
	assert_string_equal(id, "pingpong-coro-unix-cpusall-pairs1-working_set64KiB");
	free(c);
	spec_release(&s);
}

static void expect_error(const char *text, const char *what)
{
	struct spec s;
	char err[512] = "";
	assert_int_equal(parse(&s, text, err, sizeof err), -1);
	if (!strstr(err, what))
		fail_msg("expected '%s' in: %s", what, err);
}

static void test_pp_errors(void **state)
{
	(void)state;
	expect_error("[experiment]\nkind = pingpong\n[pingpong]\nmode = nap\n",
		     "pp.ini:4: unknown pingpong mode 'nap' (allowed: pipe-proc");
	expect_error("[experiment]\nkind = pingpong\n[pingpong]\npairs = 2\n",
		     "[pingpong] has no 'mode'");
	expect_error("[experiment]\nkind = pingpong\n[server]\nengine = epoll\n[pingpong]\n"
		     "mode = coro\n", "pp.ini:4: [server] is for kind = serve");
	expect_error("[experiment]\n[server]\nengine = epoll\nproto = http\n[pingpong]\n"
		     "mode = coro\n", "[pingpong] needs kind = pingpong");
	expect_error("[experiment]\nkind = async\n", "bad kind 'async' (allowed: serve, pingpong)");
	expect_error("[experiment]\nkind = pingpong\n[pingpong]\nmode = coro\npin = both\n",
		     "bad pin 'both' (allowed: same split none)");
	expect_error("[experiment]\nkind = pingpong\n[pingpong]\nmode = coro\ncpus = 1\n"
		     "pin = same split\n", "pin split needs 2 CPUs, but cpus lists '1'");
}

static void test_pp_switch_check(void **state)
{
	(void)state;
	/* two-sided modes switch by design: no check */
	assert_null(record_pp_switch_check("unix-thread", 2.0, 0.1));
	assert_null(record_pp_switch_check("futex-thread", 0, 0));
	assert_string_equal(record_pp_switch_check("coro-unix", 0, 0), "ok");
	assert_string_equal(record_pp_switch_check("coro", 0.0001, 0.0002), "ok");
	/* one switch per 1000 round trips is the limit, voluntary or not */
	assert_string_equal(record_pp_switch_check("unix-inline", 0.0005, 0.0005), "preempted");
	assert_string_equal(record_pp_switch_check("coro-unix", 1.0, 0), "blocked");
	assert_string_equal(record_pp_switch_check("coro-unix", 0.001, 0.5), "blocked");
	assert_string_equal(record_pp_switch_check("coro-unix", 0, 0.002), "preempted");
}

static void test_syscpu_interference(void **state)
{
	(void)state;
	char why[256];
	struct record_syscpu g = {.cpus = "0", .ncpus = 1, .busy_cores = 0.95, .other_cores = 0.05};
	assert_int_equal(record_syscpu_interference(&g, why, sizeof why), 0);
	assert_string_equal(why, "");
	g.other_cores = 0.45; /* a busy loop sharing the server's CPU */
	assert_int_equal(record_syscpu_interference(&g, why, sizeof why), 1);
	assert_non_null(strstr(why, "something else ran on the server's CPUs (0): 0.45 cores"));
	/* the threshold scales with the group's CPUs */
	struct record_syscpu g2 = {.cpus = "0-3", .ncpus = 4, .other_cores = 0.35};
	assert_int_equal(record_syscpu_interference(&g2, why, sizeof why), 0);
	g2.other_cores = 0.45;
	assert_int_equal(record_syscpu_interference(&g2, why, sizeof why), 1);
	struct record_syscpu g3 = {.cpus = "1", .ncpus = 1, .steal = 7.5};
	assert_int_equal(record_syscpu_interference(&g3, why, sizeof why), 1);
	assert_non_null(strstr(why, "7.5% of the server's CPUs (1) as steal"));
}

/* the record's system_cpu: the groups and the flag, or the reason there are none */
static void test_record_system_cpu(void **state)
{
	(void)state;
	struct record r = {.cell = "c", .reason = "", .server_cpus = "0", .load_cpus = "1",
			   .server_host = "local", .load_host = "local", .server_address = "x",
			   .ok = 1, .have_syscpu = 1, .interference = 1,
			   .sys_server = {.cpus = "0", .ncpus = 1, .user = 50, .system = 40, .idle = 10,
					  .busy_cores = 0.9, .other_cores = 0.6},
			   .sys_load = {.cpus = "1", .ncpus = 1, .idle = 100}};
	struct jw w;
	jw_init(&w);
	record_write(&w, &r);
	struct record back;
	char err[128];
	assert_int_equal(record_parse(w.buf, w.len, &back, err, sizeof err), 0);
	assert_true(json_is_true(record_path(back.json, "system_cpu.interference")));
	assert_true(json_number_value(record_path(back.json, "system_cpu.server.other_cores")) == 0.6);
	assert_true(json_number_value(record_path(back.json, "system_cpu.load.idle")) == 100);
	assert_null(record_path(back.json, "system_cpu.load.other_cores"));
	record_release(&back);
	jw_reset(&w);
	r.have_syscpu = 0;
	r.syscpu_reason = "the server runs on 'ssh:u@h'";
	record_write(&w, &r);
	assert_int_equal(record_parse(w.buf, w.len, &back, err, sizeof err), 0);
	assert_string_equal(json_string_value(record_path(back.json, "system_cpu.unavailable")),
			    "the server runs on 'ssh:u@h'");
	assert_null(record_path(back.json, "system_cpu.server"));
	record_release(&back);
	jw_release(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pp_cells),
		cmocka_unit_test(test_pp_errors),
		cmocka_unit_test(test_pp_switch_check),
		cmocka_unit_test(test_syscpu_interference),
		cmocka_unit_test(test_record_system_cpu),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
