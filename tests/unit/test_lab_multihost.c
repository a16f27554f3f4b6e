/* multihost: the split of connections over hosts sums to the total; two load documents merge
 * into counts summed and percentiles read from the merged histogram (equal to recording every
 * value in one histogram, never the average of the two p99s); host lists parse; ssh options
 * from CTXLAB_SSH_OPTIONS come first in the ssh argv. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/hist.h"
#include "lab/host.h"
#include "lab/multihost.h"

static void test_share(void **state)
{
	(void)state;
	for (uint64_t total = 0; total < 50; total++)
		for (int n = 1; n <= 7; n++) {
			uint64_t sum = 0;
			for (int i = 0; i < n; i++) {
				uint64_t s = multihost_share(total, n, i);
				assert_true(s == total / n || s == total / n + 1);
				sum += s;
			}
			assert_int_equal(sum, total);
		}
	assert_int_equal(multihost_share(5, 2, 0), 3);
	assert_int_equal(multihost_share(5, 2, 1), 2);
}

static json_t *doc(const struct hist *h, long long requests, double user, double dur)
{
	struct buf b = BUF_INIT;
	assert_int_equal(hist_encode(h, &b), 0);
	assert_int_equal(buf_append(&b, "", 1), 0);
	json_t *d = json_pack("{s:I, s:I, s:I, s:f, s:f, s:{s:I, s:I}, s:{s:I}, s:{s:f, s:f}, "
			      "s:{s:I, s:I, s:f}, s:s, s:s}",
			      "requests", (json_int_t)requests, "messages_sent",
			      (json_int_t)(requests + 1), "unfinished", (json_int_t)1,
			      "duration_s", dur, "rate_per_s", requests / dur, "errors", "total",
			      (json_int_t)0, "reset", (json_int_t)0, "status", "200",
			      (json_int_t)requests, "client_cpu", "user_s", user, "sys_s", 0.5,
			      "config", "connections", (json_int_t)2, "threads", (json_int_t)1,
			      "rate", 0.0, "latency_hist", buf_head(&b),
			      "latency_uncorrected_hist", buf_head(&b));
	buf_free(&b);
	assert_non_null(d);
	return d;
}

static void test_merge_exact(void **state)
{
	(void)state;
	struct hist *a = hist_new(), *b = hist_new(), *all = hist_new();
	/* a fast host and a slow one: the merged p99 is the slow host's, not an average */
	for (int i = 0; i < 9000; i++) {
		hist_record(a, 100000 + i);        /* ~100 us */
		hist_record(all, 100000 + i);
	}
	for (int i = 0; i < 1000; i++) {
		hist_record(b, 50000000 + i * 10); /* ~50 ms */
		hist_record(all, 50000000 + i * 10);
	}
	json_t *docs[2] = {doc(a, 9000, 1.0, 1.0), doc(b, 1000, 2.0, 1.0)};
	const char *names[2] = {"netns:a", "ssh:root@b"};
	double rates[2] = {0, 0};
	char err[256];
	json_t *m = multihost_merge(docs, names, rates, 2, err, sizeof err);
	assert_non_null(m);
	assert_int_equal(json_integer_value(json_object_get(m, "requests")), 10000);
	assert_int_equal(json_integer_value(json_object_get(m, "messages_sent")), 10002);
	json_t *lat = json_object_get(m, "latency_us");
	assert_int_equal(json_integer_value(json_object_get(lat, "count")), 10000);
	assert_true(json_real_value(json_object_get(lat, "p99")) ==
		    (double)hist_percentile(all, 99) / 1e3);
	assert_true(json_real_value(json_object_get(lat, "p50")) ==
		    (double)hist_percentile(all, 50) / 1e3);
	assert_true(json_real_value(json_object_get(lat, "max")) == (double)hist_max(all) / 1e3);
	assert_true(json_real_value(json_object_get(lat, "p99")) > 49000); /* in the slow mode */
	json_t *st = json_object_get(m, "status");
	assert_int_equal(json_integer_value(json_object_get(st, "200")), 10000);
	json_t *cc = json_object_get(m, "client_cpu");
	assert_true(json_real_value(json_object_get(cc, "user_s")) == 3.0);
	json_t *lh = json_object_get(m, "load_hosts");
	assert_int_equal(json_array_size(lh), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(lh, 1), "host")),
			    "ssh:root@b");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(lh, 0), "requests")),
			 9000);
	assert_true(json_real_value(json_object_get(json_array_get(lh, 1), "client_cpu_s")) == 2.5);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "config"),
							     "connections")), 4);
	assert_null(json_object_get(m, "latency_hist"));
	json_decref(m);
	/* a host without its histogram: refused, the host named */
	json_object_del(docs[1], "latency_hist");
	assert_null(multihost_merge(docs, names, rates, 2, err, sizeof err));
	assert_non_null(strstr(err, "'ssh:root@b'"));
	json_decref(docs[0]), json_decref(docs[1]);
	hist_free(a), hist_free(b), hist_free(all);
}

static void test_host_list(void **state)
{
	(void)state;
	struct host h[4];
	char err[256];
	assert_int_equal(host_parse_list("local", h, 4, err, sizeof err), 1);
	assert_int_equal(host_parse_list(" netns:a ,ssh:root@10.0.0.2,  local ", h, 4, err,
					 sizeof err), 3);
	assert_int_equal(h[0].kind, HOST_NETNS);
	assert_string_equal(h[0].target, "a");
	assert_int_equal(h[1].kind, HOST_SSH);
	assert_string_equal(h[1].target, "root@10.0.0.2");
	assert_int_equal(h[2].kind, HOST_LOCAL);
	assert_int_equal(host_parse_list("local,", h, 4, err, sizeof err), -1);
	assert_int_equal(host_parse_list("local, bogus", h, 4, err, sizeof err), -1);
	assert_int_equal(host_parse_list("local,local,local,local,local", h, 4, err, sizeof err), -1);
	assert_non_null(strstr(err, "at most 4"));
}

static void test_ssh_options(void **state)
{
	(void)state;
	struct host h;
	char err[256];
	assert_int_equal(host_parse(&h, "ssh:root@10.0.0.2", err, sizeof err), 0);
	setenv("CTXLAB_SSH_OPTIONS", " -i /k/id  -o UserKnownHostsFile=/k/kh ", 1);
	const char *argv[] = {"/usr/bin/ctxlab", "serve", NULL};
	struct host_cmd c;
	assert_int_equal(host_cmd(&h, argv, "/opt/ctxlab", &c, err, sizeof err), 0);
	const char *want[] = {"ssh", "-i", "/k/id", "-o", "UserKnownHostsFile=/k/kh", "-o",
			      "BatchMode=yes", "-o", "ConnectTimeout=10", "-T", "--",
			      "root@10.0.0.2", "'/opt/ctxlab'", "'serve'", NULL};
	for (int i = 0; want[i]; i++)
		assert_string_equal(c.argv[i], want[i]);
	assert_null(c.argv[14]);
	host_cmd_release(&c);
	unsetenv("CTXLAB_SSH_OPTIONS");
	assert_int_equal(host_cmd(&h, argv, NULL, &c, err, sizeof err), 0);
	assert_string_equal(c.argv[1], "-o");
	assert_string_equal(c.argv[2], "BatchMode=yes");
	host_cmd_release(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_share),
		cmocka_unit_test(test_merge_exact),
		cmocka_unit_test(test_host_list),
		cmocka_unit_test(test_ssh_options),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
