/* report/answers: the answers of [answer.ID] sections computed from synthetic cells — the ratio
 * and its CI are trials_ratio_ci's, the sentence carries them and the cells, and every reason a
 * run cannot answer is named; the switching share is switches x cost against CPU. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/json.h"
#include "report/answers.h"
#include "report/trials.h"

/* n ok records of one cell: us_per_request = base * (1 + 0.01 i), p99 = 10 * that,
 * ctxsw per request = sw */
static void gen(struct buf *b, const char *eng, int conns, int n, double base, double sw)
{
	for (int i = 0; i < n; i++)
		buf_appendf(b, "{\"schema\": \"1.2\", \"trial\": 0, \"repeat\": %d, \"cell\": "
			    "\"engine=%s proto=http connections=%d\", \"params\": {\"engine\": \"%s\", "
			    "\"proto\": \"http\", \"connections\": \"%d\"}, \"status\": \"ok\", "
			    "\"server_cpu\": {\"us_per_request\": %.17g}, \"ctxsw\": {\"per_request\": "
			    "%.17g}, \"latency_us\": {\"p99\": %.17g}, \"throughput\": "
			    "{\"requests_per_s\": 100}}\n",
			    i, eng, conns, eng, conns, base * (1 + 0.01 * i), sw, 10 * base * (1 + 0.01 * i));
}

static void gen_failed(struct buf *b, const char *eng, int conns, int n)
{
	for (int i = 0; i < n; i++)
		buf_appendf(b, "{\"schema\": \"1.2\", \"trial\": 0, \"repeat\": %d, \"cell\": "
			    "\"engine=%s proto=http connections=%d\", \"params\": {\"engine\": \"%s\", "
			    "\"proto\": \"http\", \"connections\": \"%d\"}, \"status\": \"failed\", "
			    "\"reason\": \"server did not listen\"}\n", i, eng, conns, eng, conns);
}

static void load(struct trials *t, struct buf *b, const char *env)
{
	char err[256];
	buf_append(b, "", 1);
	assert_int_equal(trials_load_text(t, buf_head(b), err, sizeof err), 0);
	json_error_t je;
	t->env = json_loads(env, 0, &je);
	if (!t->env)
		fail_msg("bad env json: %s", je.text);
}

#define ENV(answers) "{\"cores\": 2, \"experiment\": {\"notes\": [\"engine 'go' is left out: go " \
	"not found\"], \"answers\": [" answers "]}, \"switch_cost_ns\": {\"kernel\": 2000, \"coro\": 50}}"

static void test_ratio_with_ci(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	gen(&b, "fork", 256, 6, 40, 2);
	gen(&b, "epoll", 256, 6, 10, 0.1);
	gen(&b, "fork", 1, 6, 30, 1);
	gen(&b, "epoll", 1, 6, 12, 0.5);
	struct trials t;
	load(&t, &b, ENV("{\"id\": \"fe\", \"question\": \"Is fork dearer?\", \"metric\": "
			 "\"cpu_us_per_request\", \"compare\": \"engine=fork / engine=epoll\", \"where\": "
			 "\"connections=max\", \"say\": \"fork needs {ratio} of epoll at {where}\"}"));
	struct answers as;
	assert_int_equal(answers_compute(&t, &as), 1);
	const struct answer *a = &as.a[0];
	assert_int_equal(a->status, ANSWER_OK);
	/* the numerator is fork at 256 connections, the denominator epoll at 256 */
	assert_string_equal(t.cells[a->num].key, "engine=fork proto=http connections=256");
	assert_string_equal(t.cells[a->den].key, "engine=epoll proto=http connections=256");
	struct trials_ratio r;
	assert_int_equal(trials_ratio_ci(&t, a->den, a->num, RECORD_M_CPU_US_PER_REQUEST, &r), 0);
	assert_true(fabs(a->ratio - 4.0) < 1e-9 && a->ratio == r.ratio);
	assert_true(a->lo == r.lo && a->hi == r.hi && a->lo < 4 && a->hi > 4 && r.reached);
	char want[512];
	snprintf(want, sizeof want, "fork needs 4.00× (95%% CI %.2f–%.2f) of epoll at 256 connections "
		 "(cells http-fork-c256 vs http-epoll-c256, n=6 each).", r.lo, r.hi);
	if (strcmp(a->text, want))
		fail_msg("got  '%s'\nwant '%s'", a->text, want);
	assert_string_equal(a->question, "Is fork dearer?");
	/* the sections of report.md */
	struct buf md = BUF_INIT;
	answers_format(&as, 1, &md);
	buf_append(&md, "", 1);
	assert_non_null(strstr(buf_head(&md), "- **Is fork dearer?**\n  - fork needs 4.00×"));
	buf_free(&md);
	buf_free(&b);
	trials_release(&t);
}

/* grow: largest value against smallest, one sentence per engine of 'where engine=*' */
static void test_grow_per_engine(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	gen(&b, "fork", 1, 4, 10, 1);
	gen(&b, "fork", 64, 4, 50, 1);
	gen(&b, "epoll", 1, 4, 10, 1);
	gen(&b, "epoll", 64, 4, 20, 1);
	struct trials t;
	load(&t, &b, ENV("{\"id\": \"g\", \"question\": \"p99?\", \"metric\": \"p99_us\", \"grow\": "
			 "\"connections\", \"where\": \"engine=*\", \"say\": \"p99 of {engine} grows "
			 "{ratio} from {from} to {to}\"}"));
	struct answers as;
	assert_int_equal(answers_compute(&t, &as), 2);
	assert_int_equal(as.a[0].status, ANSWER_OK);
	assert_true(fabs(as.a[0].ratio - 5.0) < 1e-9);
	assert_true(fabs(as.a[1].ratio - 2.0) < 1e-9);
	assert_non_null(strstr(as.a[0].text, "p99 of fork grows 5.00× (95% CI "));
	assert_non_null(strstr(as.a[0].text, "from 1 to 64 (cells http-fork-c64 vs http-fork-c1, n=4 each)."));
	assert_non_null(strstr(as.a[1].text, "p99 of epoll grows 2.00×"));
	buf_free(&b);
	trials_release(&t);
}

/* every reason this run cannot answer */
static void test_cannot_answer(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	gen(&b, "fork", 4, 3, 40, 2);
	gen(&b, "epoll", 4, 3, 10, 0.1);
	gen(&b, "thread", 4, 3, 20, 1);
	gen(&b, "thread", 8, 3, 20, 1);
	gen_failed(&b, "coro", 4, 2);
	struct trials t;
	load(&t, &b, ENV(
		"{\"id\": \"small\", \"question\": \"n?\", \"metric\": \"cpu_us_per_request\", "
		"\"compare\": \"engine=fork / engine=epoll\"},"
		"{\"id\": \"go\", \"question\": \"go?\", \"metric\": \"cpu_us_per_request\", "
		"\"compare\": \"engine=go / engine=epoll\"},"
		"{\"id\": \"absent\", \"question\": \"uring?\", \"metric\": \"cpu_us_per_request\", "
		"\"compare\": \"engine=uring / engine=epoll\"},"
		"{\"id\": \"cores\", \"question\": \"cores?\", \"metric\": \"cpu_us_per_request\", "
		"\"grow\": \"cpus\", \"needs_cpus\": 4},"
		"{\"id\": \"failed\", \"question\": \"coro?\", \"metric\": \"cpu_us_per_request\", "
		"\"compare\": \"engine=coro / engine=epoll\"},"
		"{\"id\": \"ambiguous\", \"question\": \"thread?\", \"metric\": \"cpu_us_per_request\", "
		"\"compare\": \"engine=thread / engine=epoll\"},"
		"{\"id\": \"single\", \"question\": \"grow?\", \"metric\": \"cpu_us_per_request\", "
		"\"grow\": \"connections\", \"where\": \"engine=fork\"},"
		"{\"id\": \"novalue\", \"question\": \"mb?\", \"metric\": \"cpu_ms_per_mb\", "
		"\"compare\": \"engine=fork / engine=epoll\"}"));
	struct answers as;
	assert_int_equal(answers_compute(&t, &as), 8);
	/* n = 3 per cell: the ratio, but no CI, and said so */
	assert_int_equal(as.a[0].status, ANSWER_NO_CI);
	assert_true(fabs(as.a[0].ratio - 4.0) < 1e-9);
	assert_non_null(strstr(as.a[0].text, "4.00× (no 95% CI: too few trials)"));
	assert_non_null(strstr(as.a[0].text, "n=3 each). Not answered with confidence"));
	/* an engine the run left out: the note says why */
	assert_int_equal(as.a[1].status, ANSWER_CANNOT);
	assert_string_equal(as.a[1].text, "Cannot be answered by this run: no cell of this run has "
			    "engine=go (engine 'go' is left out: go not found).");
	assert_non_null(strstr(as.a[2].text, "no cell of this run has engine=uring (it is not in "
				"the experiment's matrix)"));
	assert_string_equal(as.a[3].text, "Cannot be answered here: needs ≥ 4 CPUs (this machine has "
			    "2); run it on a machine with 4 or more CPUs.");
	assert_non_null(strstr(as.a[4].text, "every trial of cell http-coro-c4 failed (2 of 2: "
				"server did not listen)"));
	assert_non_null(strstr(as.a[5].text, "2 cells match one side (they differ in connections"));
	assert_non_null(strstr(as.a[6].text, "at engine=fork: the connections axis has a single value"));
	assert_non_null(strstr(as.a[7].text, "cell http-fork-c4 has no value of cpu_ms_per_mb"));
	for (int i = 1; i < 8; i++) {
		assert_int_equal(as.a[i].status, ANSWER_CANNOT);
		assert_non_null(strstr(as.a[i].text, "Cannot be answered"));
	}
	buf_free(&b);
	trials_release(&t);
}

/* no answers in env.json: the section says so */
static void test_none(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	gen(&b, "fork", 4, 2, 40, 2);
	struct trials t;
	load(&t, &b, "{\"cores\": 2}");
	struct answers as;
	assert_int_equal(answers_compute(&t, &as), 0);
	struct buf md = BUF_INIT;
	answers_format(&as, 1, &md);
	buf_append(&md, "", 1);
	assert_non_null(strstr(buf_head(&md), "states no questions"));
	buf_free(&md);
	buf_free(&b);
	trials_release(&t);
}

/* switching share: ctxsw per request x switch_cost_ns.kernel against CPU per request */
static void test_switch_share(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	gen(&b, "fork", 4, 3, 40, 2);   /* 2 x 2000 ns = 4 us of 40: 10% */
	gen(&b, "coro", 4, 3, 10, 0.5); /* 0.5 x 2000 ns = 1 us of 10: 10% */
	struct trials t;
	load(&t, &b, ENV(""));
	struct buf md = BUF_INIT;
	answers_switch_share(&t, 1, &md);
	buf_append(&md, "", 1);
	const char *s = buf_head(&md);
	assert_non_null(strstr(s, "An estimate, not a measurement"));
	assert_non_null(strstr(s, "2000 ns"));
	assert_non_null(strstr(s, "| engine=fork proto=http connections=4 | 40.4 | 2 | 4 | 10% | none"));
	assert_non_null(strstr(s, "| engine=coro proto=http connections=4 | 10.1 | 0.5 | 1 | 10% | n/a"));
	buf_free(&md);
	json_decref(t.env);
	t.env = json_loads("{\"cores\": 2}", 0, NULL);
	struct buf none = BUF_INIT;
	answers_switch_share(&t, 1, &none);
	buf_append(&none, "", 1);
	assert_non_null(strstr(buf_head(&none), "No switch cost in env.json"));
	buf_free(&none);
	buf_free(&b);
	trials_release(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ratio_with_ci),
		cmocka_unit_test(test_grow_per_engine),
		cmocka_unit_test(test_cannot_answer),
		cmocka_unit_test(test_none),
		cmocka_unit_test(test_switch_share),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
