/* lab/spec: [answer.ID] sections — parsed into spec_answers, every mistake refused with
 * FILE:LINE and what is allowed, and papaya's questions parse. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lab/bundled.h"
#include "lab/record.h"
#include "lab/spec.h"

static struct spec_catalog cat;

static int setup(void **state)
{
	(void)state;
	assert_int_equal(spec_catalog_parse(&cat, "epoll sink echo http chat\n"
						  "thread sink echo http chat\n"
						  "fork sink echo http chat\n"
						  "coro sink echo http chat\n"
						  "go sink echo http\n"),
			 5);
	return 0;
}

#define HEAD "[server]\nengine = fork epoll\nproto = http\n[load]\nconnections = 1 64\n"

static void test_answers_parsed(void **state)
{
	(void)state;
	static const char text[] = HEAD
		"[answer.fork_vs_epoll]\n"                                   /* line 6 */
		"question = Is a process per connection more expensive\n"
		"  than an event loop?\n"
		"metric = server_cpu.us_per_request\n"
		"compare = engine=fork / engine=epoll\n"
		"where = connections=max\n"
		"say = A process per connection needs {ratio} at {where}\n"
		"[answer.growth]\n"
		"question = How does p99 grow?\n"
		"metric = p99_us\n"
		"grow = connections\n"
		"where = engine=*\n"
		"needs_cpus = 2\n";
	struct spec s;
	char err[1024] = "";
	assert_int_equal(spec_parse_text(&s, text, "a.ini", &cat, 0, err, sizeof err), 0);
	struct spec_answer a[SPEC_MAX_ANSWERS];
	assert_int_equal(spec_answers(&s, a, SPEC_MAX_ANSWERS), 2);
	assert_string_equal(a[0].id, "fork_vs_epoll");
	assert_int_equal(a[0].line, 7);
	assert_string_equal(a[0].question, "Is a process per connection more expensive than an event loop?");
	assert_int_equal(a[0].metric, RECORD_M_CPU_US_PER_REQUEST);
	assert_string_equal(a[0].compare, "engine=fork / engine=epoll");
	assert_null(a[0].grow);
	assert_string_equal(a[0].where, "connections=max");
	assert_int_equal(a[0].needs_cpus, 0);
	assert_string_equal(a[1].id, "growth");
	assert_int_equal(a[1].metric, RECORD_M_P99_US);
	assert_string_equal(a[1].grow, "connections");
	assert_null(a[1].compare);
	assert_int_equal(a[1].needs_cpus, 2);
	/* --dry-run lists the questions */
	char buf[4096];
	FILE *f = fmemopen(buf, sizeof buf, "w");
	spec_print_answers(&s, f);
	fclose(f);
	assert_non_null(strstr(buf, "questions (2, answered in the report):"));
	assert_non_null(strstr(buf, "  growth: How does p99 grow?\n"));
	/* a question that needs more CPUs than this machine has says so */
	s.machine_cpus = 1;
	f = fmemopen(buf, sizeof buf, "w");
	spec_print_answers(&s, f);
	fclose(f);
	assert_non_null(strstr(buf, "  growth: How does p99 grow?\n    (cannot be answered here: "
				 "needs >= 2 CPUs, this machine has 1)\n"));
	spec_release(&s);
}

static void expect_error(const char *text, const char *want1, const char *want2)
{
	struct spec s;
	char err[1024] = "";
	int rc = spec_parse_text(&s, text, "bad.ini", &cat, 0, err, sizeof err);
	if (rc != -1)
		fail_msg("accepted: %s", text);
	if (!strstr(err, want1) || (want2 && !strstr(err, want2)))
		fail_msg("error '%s' lacks '%s' / '%s'", err, want1, want2 ? want2 : "");
}

#define Q "question = q?\n"
static void test_answer_errors(void **state)
{
	(void)state;
	expect_error(HEAD "[answer.x]\n" Q "metric = cpu_us_per_request\ncompare = engine=fork / engine=epoll\ncolour = red\n",
		     "bad.ini:10: unknown key 'colour' in [answer.x]", "compare, grow, where, say, needs_cpus");
	expect_error(HEAD "[answer.x]\n" Q "metric = cpu_per_request\n",
		     "bad.ini:8: unknown metric 'cpu_per_request'", "cpu_us_per_request");
	expect_error(HEAD "[answer.x]\n" Q "compare = engine=fork / engine=epoll\n",
		     "bad.ini:7: [answer.x] has no 'metric'", NULL);
	expect_error(HEAD "[answer.x]\nmetric = p99_us\ngrow = connections\n",
		     "bad.ini:7: [answer.x] has no 'question'", NULL);
	expect_error(HEAD "[answer.x]\n" Q "metric = p99_us\n",
		     "[answer.x] needs one of 'compare'", "not neither");
	expect_error(HEAD "[answer.x]\n" Q "metric = p99_us\ncompare = engine=fork / engine=epoll\ngrow = connections\n",
		     "bad.ini:9: [answer.x] needs one of 'compare'", "not both");
	expect_error(HEAD "[answer.x]\n" Q "metric = p99_us\ncompare = engine=fork engine=epoll\n",
		     "bad.ini:9: bad compare 'engine=fork engine=epoll'", "NUMERATOR / DENOMINATOR");
	expect_error(HEAD "[answer.x]\n" Q "metric = p99_us\ncompare = engin=fork / engin=epoll\n",
		     "bad.ini:9: unknown axis 'engin' in compare", "engine, proto, cpus");
	expect_error(HEAD "[answer.x]\n" Q "metric = p99_us\ncompare = engine=fork / proto=http\n",
		     "bad.ini:9: compare 'engine=fork / proto=http' names different axes", NULL);
	expect_error(HEAD "[answer.x]\n" Q "metric = p99_us\ncompare = engine=fork,thread / engine=epoll\n",
		     "bad.ini:9: compare 'engine=fork,thread' has several values", NULL);
	expect_error(HEAD "[answer.x]\n" Q "metric = p99_us\ncompare = engine / engine=epoll\n",
		     "bad.ini:9: bad compare 'engine'", "KEY=VALUE");
	expect_error(HEAD "[answer.x]\n" Q "metric = p99_us\ngrow = conections\n",
		     "bad.ini:9: bad grow 'conections'", "connections");
	expect_error(HEAD "[answer.x]\n" Q "metric = p99_us\ngrow = connections\nwhere = connections=max\n",
		     "bad.ini:10: axis 'connections' is named twice", NULL);
	expect_error(HEAD "[answer.x]\n" Q "metric = p99_us\ngrow = connections\nwhere = proto http\n",
		     "bad.ini:10: bad where 'proto'", NULL);
	expect_error(HEAD "[answer.x]\n" Q "metric = p99_us\ngrow = connections\nsay = grows {ratop}\n",
		     "bad.ini:10: unknown placeholder '{ratop}' in say", "{ratio}");
	expect_error(HEAD "[answer.x]\n" Q "metric = p99_us\ngrow = connections\nneeds_cpus = 0\n",
		     "bad.ini:10: bad needs_cpus '0'", NULL);
	expect_error(HEAD "[answer.a/b]\n" Q, "bad.ini:7: bad section [answer.a/b]", "[answer.ID]");
	expect_error(HEAD "[answer.]\n" Q, "bad.ini:7: bad section [answer.]", NULL);
	expect_error(HEAD "[answers]\n" Q, "bad.ini:7: unknown section [answers]", "answer.ID");
	expect_error(HEAD "[answer.x]\n" Q "metric = p99_us\nmetric = p50_us\n",
		     "bad.ini:9: 'metric' is set twice in [answer.x]", NULL);
}

/* the embedded default (papaya) states its questions, and every one of them parses */
static void test_papaya_questions(void **state)
{
	(void)state;
	struct spec s;
	char err[1024] = "";
	assert_int_equal(spec_parse_text(&s, bundled_find(BUNDLED_DEFAULT)->text, "papaya.ini", &cat, SPEC_LENIENT, err,
					 sizeof err), 0);
	struct spec_answer a[SPEC_MAX_ANSWERS];
	int n = spec_answers(&s, a, SPEC_MAX_ANSWERS);
	assert_true(n >= 7);
	int cores = 0, growth = 0;
	for (int i = 0; i < n; i++) {
		assert_non_null(a[i].question);
		assert_true(a[i].metric >= 0);
		cores |= a[i].needs_cpus > 2 && a[i].grow && !strcmp(a[i].grow, "cpus");
		growth |= a[i].grow && !strcmp(a[i].grow, "connections") && a[i].metric == RECORD_M_P99_US;
	}
	assert_true(cores && growth);
	spec_release(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_answers_parsed),
		cmocka_unit_test(test_answer_errors),
		cmocka_unit_test(test_papaya_questions),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
