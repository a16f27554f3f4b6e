/* sink and echo, the protocol table, and the work knob: byte counts and echo identity under
 * every split, CPU burnt on the thread clock at least as asked, the working set touched. */
#include "unit/test_proto_harness.h"

#include <pthread.h>
#include <sys/resource.h>

#include "core/clock.h"

static void test_table(void **unused)
{
	assert_string_equal(proto_names(), "sink echo http chat");
	const char *names[] = {"sink", "echo", "http", "chat"};
	for (size_t i = 0; i < 4; i++) {
		const struct proto *p = proto_find(names[i]);
		assert_non_null(p);
		assert_string_equal(p->name, names[i]);
		assert_non_null(p->summary);
		assert_non_null(p->init);
		assert_non_null(p->feed);
		assert_true(p->state_size > 0);
	}
	/* proto_names() and proto_at() read the table: every name once, in table order */
	char want[256] = "";
	size_t i = 0;
	for (; proto_at(i); i++) {
		if (i)
			strcat(want, " ");
		strcat(want, proto_at(i)->name);
		assert_ptr_equal(proto_find(proto_at(i)->name), proto_at(i));
		assert_non_null(proto_at(i)->in_max_bytes);
	}
	assert_int_equal(i, 4);
	assert_string_equal(proto_names(), want);
	assert_null(proto_at(i));
	assert_null(proto_find("nope"));
	assert_null(proto_find(NULL));
	assert_null(proto_find("HTTP"));
	assert_non_null(proto_find("chat")->overflow);

	struct proto_cfg cfg;
	memset(&cfg, 0xff, sizeof(cfg));
	proto_cfg_defaults(&cfg);
	assert_int_equal(cfg.max_request_line, 8192);
	assert_int_equal(cfg.max_headers, 100);
	assert_int_equal(cfg.max_header_bytes, 16384);
	assert_int_equal(cfg.max_body, 1024 * 1024);
	assert_int_equal(cfg.max_line, 64 * 1024);
	assert_int_equal(cfg.max_outbuf, 1024 * 1024);
	assert_int_equal(cfg.work_cpu_us, 0);
	assert_int_equal(cfg.work_mem_bytes, 0);
	assert_int_equal(cfg.work_stride_bytes, 0);
}

/* Each protocol states its own input bound from its own limits (econn adds its read slack). */
static void test_in_max_bytes(void **unused)
{
	struct proto_cfg cfg;
	proto_cfg_defaults(&cfg);
	assert_int_equal(proto_find("sink")->in_max_bytes(&cfg), 0);
	assert_int_equal(proto_find("echo")->in_max_bytes(&cfg), 0);
	assert_int_equal(proto_find("chat")->in_max_bytes(&cfg), 64 * 1024 + 2);
	assert_int_equal(proto_find("http")->in_max_bytes(&cfg), 8192 + 16384 + 1024 * 1024);
	/* 0 = the protocol's default, the same as proto_cfg_defaults' */
	struct proto_cfg zero;
	memset(&zero, 0, sizeof(zero));
	for (size_t i = 0; proto_at(i); i++)
		assert_int_equal(proto_at(i)->in_max_bytes(&zero), proto_at(i)->in_max_bytes(&cfg));
	cfg.max_line = 100;
	cfg.max_body = 10;
	cfg.max_header_bytes = 20;
	cfg.max_request_line = 30;
	assert_int_equal(proto_find("chat")->in_max_bytes(&cfg), 102);
	assert_int_equal(proto_find("http")->in_max_bytes(&cfg), 60);
	/* capabilities: only http is plain HTTP/1.1 */
	assert_true(proto_find("http")->caps & PROTO_CAP_HTTP1);
	assert_false(proto_find("chat")->caps & PROTO_CAP_HTTP1);
	assert_true(proto_find("chat")->fanout);
	assert_false(proto_find("echo")->fanout);
}

static char data[5000];

static void fill(void)
{
	unsigned seed = 7;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(rand_r(&seed) % 5 == 0 ? '\n' : rand_r(&seed));
}

static void test_sink_counts(void **unused)
{
	fill();
	struct harness h;
	for (size_t at = 0; at <= sizeof(data); at += 97) {
		harness_init(&h, "sink", NULL, 1);
		harness_feed_split(&h, data, sizeof(data), at);
		assert_int_equal(h.consumed, sizeof(data));
		assert_int_equal(buf_used(&h.out), 0);
		assert_int_equal(buf_used(&h.in), 0);
		assert_false(h.closed);
		harness_free(&h);
	}
	harness_init(&h, "sink", NULL, 1);
	harness_feed_bytewise(&h, data, 1000);
	assert_int_equal(h.consumed, 1000);
	harness_free(&h);
}

static void test_echo_identity(void **unused)
{
	fill();
	struct harness h;
	for (size_t at = 0; at <= sizeof(data); at++) {
		harness_init(&h, "echo", NULL, 1);
		harness_feed_split(&h, data, sizeof(data), at);
		assert_buf_eq(&h.out, data, sizeof(data));
		assert_int_equal(buf_used(&h.in), 0);
		harness_free(&h);
	}
	harness_init(&h, "echo", NULL, 1);
	harness_feed_bytewise(&h, data, sizeof(data));
	assert_buf_eq(&h.out, data, sizeof(data));
	harness_free(&h);
}

static void test_proto_work_cpu(void **unused)
{
	uint64_t t0 = clock_thread_cpu_ns();
	proto_work(5000, 0, 0);
	uint64_t spent = clock_thread_cpu_ns() - t0;
	assert_true(spent >= 5000 * NS_PER_US);
	t0 = clock_thread_cpu_ns();
	proto_work(0, 0, 0);
	assert_true(clock_thread_cpu_ns() - t0 < 1000 * NS_PER_US);
}

/* Fresh memory faults when first touched: touching 32 MiB must fault in at least its
 * huge-page count (2 MiB pages under THP, many more with 4 KiB pages). */
static void *touch_thread(void *arg)
{
	long *faults = arg;
	struct rusage a, b;
	getrusage(RUSAGE_THREAD, &a);
	proto_work(0, 32u << 20, 4096);
	getrusage(RUSAGE_THREAD, &b);
	*faults = b.ru_minflt - a.ru_minflt;
	return NULL;
}

static void test_proto_work_mem(void **unused)
{
	pthread_t t;
	long faults = 0;
	assert_int_equal(pthread_create(&t, NULL, touch_thread, &faults), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_true(faults >= 16);
	/* the thread's buffer was freed at its exit (ASan's leak check would say otherwise) */
}

static void test_sink_echo_work_per_line(void **unused)
{
	struct proto_cfg cfg;
	proto_cfg_defaults(&cfg);
	cfg.work_cpu_us = 1000;
	const char *names[] = {"sink", "echo"};
	for (int i = 0; i < 2; i++) {
		struct harness h;
		harness_init(&h, names[i], &cfg, 1);
		uint64_t t0 = clock_thread_cpu_ns();
		harness_feed_str(&h, "a\nb");
		harness_feed_str(&h, "b\n\nc"); /* three newlines in all */
		uint64_t spent = clock_thread_cpu_ns() - t0;
		assert_true(spent >= 3 * 1000 * NS_PER_US);
		assert_true(spent < 60 * 1000 * NS_PER_US);
		if (i == 1)
			assert_buf_eq(&h.out, "a\nbb\n\nc", 7);
		else
			assert_int_equal(h.consumed, 7);
		harness_free(&h);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_in_max_bytes),
		cmocka_unit_test(test_sink_counts),
		cmocka_unit_test(test_echo_identity),
		cmocka_unit_test(test_proto_work_cpu),
		cmocka_unit_test(test_proto_work_mem),
		cmocka_unit_test(test_sink_echo_work_per_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
