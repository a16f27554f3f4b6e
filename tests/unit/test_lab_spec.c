/* lab/spec: parsing experiment specs, every error with FILE:LINE and the allowed values,
 * the matrix product and its order, --quick and --dry-run, the bundled experiments. */
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lab/bundled.h"
#include "lab/spec.h"

static struct spec_catalog cat;

static int setup(void **state)
{
	(void)state;
	/* a synthetic catalog, as `ctxlab serve --list-engines` prints it (no coro here) */
	assert_int_equal(spec_catalog_parse(&cat, "epoll sink echo http chat\n"
						  "thread sink echo http chat\n"
						  "fork sink echo http chat\n"
						  "go sink echo http\n"
						  "nginx http\n"),
			 5);
	return 0;
}

static void test_catalog(void **state)
{
	(void)state;
	assert_true(spec_catalog_speaks(&cat, "go", "http"));
	assert_false(spec_catalog_speaks(&cat, "go", "chat"));
	assert_false(spec_catalog_speaks(&cat, "nginx", "sink"));
	assert_false(spec_catalog_speaks(&cat, "coro", "sink"));
}

/* Every bundled text is its experiments/NAME.ini byte for byte, and every experiments/NAME.ini
 * of the source tree is bundled (the build's glob: a new file needs no edit). */
static void test_bundled_equal_files(void **state)
{
	(void)state;
	const char *src = getenv("CTXLAB_SRC");
	if (!src)
		skip();
	assert_true(bundled_count >= 1);
	assert_null(bundled_specs[bundled_count].name);
	static char buf[1 << 17];
	for (int i = 0; i < bundled_count; i++) {
		const struct bundled_spec *b = &bundled_specs[i];
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", src, b->file);
		FILE *f = fopen(path, "rb");
		if (!f)
			fail_msg("bundled '%s' has no file %s: rebuild", b->name, path);
		size_t n = fread(buf, 1, sizeof buf, f);
		fclose(f);
		if (n != b->len || memcmp(buf, b->text, n) || strlen(b->text) != b->len)
			fail_msg("the bundled '%s' differs from %s: rebuild", b->name, path);
		assert_ptr_equal(bundled_find(b->name), b);
		if (i)
			assert_true(strcmp(bundled_specs[i - 1].name, b->name) < 0);
	}
	char dir[4096];
	snprintf(dir, sizeof dir, "%s/experiments", src);
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *e;
	int files = 0;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (l <= 4 || strcmp(e->d_name + l - 4, ".ini"))
			continue;
		char name[256];
		snprintf(name, sizeof name, "%.*s", (int)(l - 4), e->d_name);
		files++;
		if (!bundled_find(name))
			fail_msg("experiments/%s is not bundled: re-run cmake and rebuild", e->d_name);
	}
	closedir(d);
	assert_int_equal(files, bundled_count);
	assert_non_null(bundled_find(BUNDLED_DEFAULT));
	assert_null(bundled_find("no-such-experiment"));
	assert_null(bundled_find(NULL));
	char names[256];
	assert_non_null(strstr(bundled_names(names, sizeof names), "papaya"));
}

/* what `ctxlab serve --list-engines` prints in a full build */
static const char full_catalog[] = "fork sink echo http chat\nprefork sink echo http chat\n"
				   "thread sink echo http chat\nepoll sink echo http chat\n"
				   "coro sink echo http chat\nuring sink echo http chat\n"
				   "gateway sink echo http chat\ngo sink echo http chat\nnginx http\n";

static void test_default_parses_leniently(void **state)
{
	(void)state;
	const struct bundled_spec *b = bundled_find(BUNDLED_DEFAULT);
	assert_non_null(b);
	struct spec s;
	char err[512] = "";
	spec_test_machine_cpus = 2; /* the 2-CPU machine of the budget */
	int rc = spec_parse_text(&s, b->text, b->file, &cat, SPEC_LENIENT, err, sizeof err);
	spec_test_machine_cpus = 0;
	if (rc)
		fail_msg("%s", err);
	assert_string_equal(s.name, "papaya");
	assert_int_equal(s.repeat, 4);
	assert_non_null(strstr(s.question, "context switches"));
	assert_non_null(strstr(s.question, "more efficient?")); /* continuation lines joined */
	int dropped = 0, nochat = 0, cpus_note = 0, cores_note = 0;
	for (int i = 0; i < s.nnotes; i++) {
		dropped |= strstr(s.notes[i], "'coro' does not exist") != NULL;
		nochat |= strstr(s.notes[i], "'go' does not speak 'chat'") != NULL;
		cpus_note |= strstr(s.notes[i], "cpus left out") && strstr(s.notes[i], "(cpus=2: >= 3, cpus=4: >= 5 CPUs)");
		cores_note |= strstr(s.notes[i], "cores question cannot be answered") &&
			      strstr(s.notes[i], ">= 5 CPUs");
	}
	assert_true(dropped);
	assert_true(nochat);
	assert_true(cpus_note);
	assert_true(cores_note);
	struct spec_cell *cells;
	int n = spec_cells(&s, &cells);
	/* fork thread epoll go x (sink, http: connections 1 64 256; chat: 4 64 256, no go)
	 * x cpus 1 (2 and 4 leave the load no CPU on 2) */
	assert_int_equal(n, 4 * 3 + 4 * 3 + 3 * 3);
	/* engines interleaved: A B C D A B C D ... */
	const char *order[] = {"fork", "thread", "epoll", "go"};
	for (int i = 0; i < 24; i++)
		assert_string_equal(cells[i].engine, order[i % 4]);
	for (int i = 0; i < n; i++) {
		assert_int_equal(cells[i].cpus_count, 1); /* never the load on the server's CPUs */
		if (!strcmp(cells[i].proto, "chat")) {
			assert_true(cells[i].rate_per_s == 128);
			assert_true(cells[i].connections >= 4);
			assert_int_equal(cells[i].size_bytes, 0); /* the load's default: 64 */
		}
	}
	assert_string_equal(cells[0].key, "engine=fork proto=sink cpus=1 connections=1 bandwidth=1Mbps size=1k");
	char id[160];
	assert_string_equal(spec_cell_id(cells, n, 0, id, sizeof id), "sink-fork-c1-cpus1");
	assert_true(cells[0].bandwidth_bps == 1e6);
	assert_int_equal(cells[0].size_bytes, 1024);
	/* http is closed loop: no bandwidth, no rate */
	assert_string_equal(cells[23].key, "engine=go proto=http cpus=1 connections=256");
	assert_true(cells[23].bandwidth_bps == 0 && cells[23].rate_per_s == 0);
	assert_string_equal(cells[n - 1].key,
			    "engine=epoll proto=chat cpus=1 connections=256 rate=128/s");
	free(cells);
	spec_release(&s);

	/* the budget on a 2-core machine with every engine: the whole run <= 10 min, --quick
	 * <= 90 s */
	struct spec_catalog full;
	spec_catalog_parse(&full, full_catalog);
	spec_test_machine_cpus = 2;
	rc = spec_parse_text(&s, b->text, b->file, &full, SPEC_LENIENT, err, sizeof err);
	spec_test_machine_cpus = 0;
	if (rc)
		fail_msg("%s", err);
	n = spec_cells(&s, &cells);
	assert_int_equal(n, 5 * (3 + 3 + 3));
	/* flame graphs for one cell per engine (HTTP at 256 connections) */
	assert_int_equal(s.profile, SPEC_PROFILE_CELLS);
	int np = spec_profiled_trials(&s, n, 0, n * s.repeat);
	assert_int_equal(np, 5);
	uint64_t est = spec_estimate_ns(&s, n * s.repeat, np);
	assert_true(est <= spec_budget_ns(&s, n));
	assert_true(spec_budget_ns(&s, n) <= 600ULL * 1000000000ULL);
	spec_quick(&s);
	free(cells);
	n = spec_cells(&s, &cells);
	assert_int_equal(n, 5 * (2 + 2 + 2));
	assert_int_equal(cells[0].connections, 1);
	assert_int_equal(cells[5].connections, 256);
	assert_true(spec_estimate_ns(&s, n * s.repeat, 0) <= 90ULL * 1000000000ULL);
	free(cells);
	spec_release(&s);
}

/* Lenient (bundled) specs leave out the cpus values that would put the load on the server's
 * CPUs, and say which, why and what machine would run them; a user's spec is unchanged. */
static void test_cpus_pruned(void **state)
{
	(void)state;
	const char *text = "[server]\nengine = epoll\nproto = http\ncpus = 1 2 4 all\n"
			   "[load]\nconnections = 4\n";
	struct spec s;
	char err[512] = "";
	struct spec_cell *c;
	spec_test_machine_cpus = 8;
	int rc = spec_parse_text(&s, text, "c.ini", &cat, SPEC_LENIENT, err, sizeof err);
	spec_test_machine_cpus = 0;
	if (rc)
		fail_msg("%s", err);
	int n = spec_cells(&s, &c);
	assert_int_equal(n, 3); /* all = 8 leaves none: out */
	assert_string_equal(c[2].cpus, "4");
	free(c);
	assert_int_equal(s.nnotes, 2);
	assert_non_null(strstr(s.notes[0], "(cpus=all: >= 9 CPUs)"));
	assert_non_null(strstr(s.notes[1], "only cpus = 1 2 4 runs"));
	assert_non_null(strstr(s.notes[1], ">= 9 CPUs"));
	spec_release(&s);

	/* one CPU: nothing fits; the smallest stays, and the note says the load shares it */
	spec_test_machine_cpus = 1;
	rc = spec_parse_text(&s, text, "c.ini", &cat, SPEC_LENIENT, err, sizeof err);
	spec_test_machine_cpus = 0;
	if (rc)
		fail_msg("%s", err);
	n = spec_cells(&s, &c);
	assert_int_equal(n, 1);
	assert_string_equal(c[0].cpus, "1");
	free(c);
	assert_non_null(strstr(s.notes[1], "only with the load sharing"));
	spec_release(&s);

	/* enough CPUs: no note */
	spec_test_machine_cpus = 64;
	rc = spec_parse_text(&s, "[server]\nengine = epoll\nproto = http\ncpus = 1 2 4\n", "c.ini",
			     &cat, SPEC_LENIENT, err, sizeof err);
	spec_test_machine_cpus = 0;
	assert_int_equal(rc, 0);
	assert_int_equal(s.nnotes, 0);
	spec_release(&s);

	/* a user's spec: more CPUs than the machine's is still an error, all still runs */
	spec_test_machine_cpus = 2;
	rc = spec_parse_text(&s, text, "c.ini", &cat, 0, err, sizeof err);
	spec_test_machine_cpus = 0;
	assert_int_equal(rc, -1);
	if (!strstr(err, "c.ini:4: cpus '4' is more than the 2 CPUs"))
		fail_msg("%s", err);
}

static void test_matrix_product(void **state)
{
	(void)state;
	struct spec s;
	char err[512] = "";
	const char *text = "[experiment]\nrepeat = 2\nduration = 3s\nwarmup = 1s\n"
			   "[server]\nengine = epoll fork\nproto = http\ncpus = 1 \"0-1\"\nworkers = 1 2\n"
			   "[load]\nconnections = 4 16 64\nrate = 1k/s\n";
	if (spec_parse_text(&s, text, "m.ini", &cat, 0, err, sizeof err))
		fail_msg("%s", err);
	assert_string_equal(s.name, "m");
	struct spec_cell *c;
	int n = spec_cells(&s, &c);
	assert_int_equal(n, 2 * 2 * 2 * 3);
	/* every combination exactly once */
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			assert_string_not_equal(c[i].key, c[j].key);
	assert_string_equal(c[0].key, "engine=epoll proto=http cpus=1 workers=1 connections=4 rate=1k/s");
	assert_string_equal(c[1].key, "engine=fork proto=http cpus=1 workers=1 connections=4 rate=1k/s");
	assert_string_equal(c[2].key, "engine=epoll proto=http cpus=1 workers=1 connections=16 rate=1k/s");
	assert_string_equal(c[n - 1].key,
			    "engine=fork proto=http cpus=cpu0-1 workers=2 connections=64 rate=1k/s");
	assert_int_equal(c[n - 1].cpus_count, -1);
	assert_string_equal(c[n - 1].cpus_list, "0-1");
	assert_int_equal(c[n - 1].workers, 2);
	assert_true(c[0].rate_per_s == 1000);
	free(c);
	/* dry run: cells, trials and estimate */
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	spec_print_matrix(&s, f);
	fclose(f);
	assert_non_null(strstr(out, "matrix: 24 cells x 2 repeats = 48 trials"));
	/* 48 x (1s + 3s + 0.1s) = 196.8s */
	assert_non_null(strstr(out, "estimated duration: 197s = 3.3 min"));
	assert_non_null(strstr(out, "   24  engine=fork proto=http cpus=cpu0-1 workers=2 connections=64"));
	assert_non_null(strstr(out, "profiling: off\n"));
	free(out);
	/* cell ids: safe file names, unique, naming the axes that vary */
	n = spec_cells(&s, &c);
	char id[160];
	assert_string_equal(spec_cell_id(c, n, 0, id, sizeof id), "http-epoll-c4-cpus1-workers1");
	assert_string_equal(spec_cell_id(c, n, n - 1, id, sizeof id),
			    "http-fork-c64-cpulist0-1-workers2");
	for (int i = 0; i < n; i++) {
		char a[160], b[160];
		spec_cell_id(c, n, i, a, sizeof a);
		static const char safe[] = "abcdefghijklmnopqrstuvwxyz"
					   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
		assert_int_equal(strspn(a, safe), strlen(a));
		for (int j = 0; j < i; j++)
			assert_string_not_equal(a, spec_cell_id(c, n, j, b, sizeof b));
	}
	free(c);
	spec_release(&s);
}

/* issue 11: handoff and balance vary the gateway's cells only; function is every engine's */
static void test_gateway_axes(void **state)
{
	(void)state;
	struct spec_catalog gcat;
	assert_int_equal(spec_catalog_parse(&gcat, "epoll sink echo http chat\n"
						   "gateway sink echo http chat\n"), 2);
	struct spec s;
	char err[512] = "";
	const char *text = "[experiment]\nrepeat = 1\nduration = 1s\nwarmup = 0s\n"
			   "[server]\nengine = epoll gateway\nproto = http\ncpus = 1\n"
			   "handoff = proxy fdpass\nbalance = rr least-conn\nfunctions = fn\n"
			   "[load]\nconnections = 8\nfunction = hello echo\nrate = 1k/s closed\n"
			   "keepalive = off\n";
	if (spec_parse_text(&s, text, "g.ini", &gcat, 0, err, sizeof err))
		fail_msg("%s", err);
	struct spec_cell *c;
	int n = spec_cells(&s, &c);
	assert_int_equal(n, 2 * (2 + 2 * 2 * 2));
	int closed = 0;
	for (int i = 0; i < n; i++)
		if (strstr(c[i].key, "rate=closed")) {
			closed++;
			assert_null(c[i].rate);
			assert_true(c[i].rate_per_s == 0);
		} else {
			assert_true(c[i].rate_per_s == 1000);
		}
	assert_int_equal(closed, n / 2);
	int epoll = 0, gw = 0;
	for (int i = 0; i < n; i++) {
		for (int j = i + 1; j < n; j++)
			assert_string_not_equal(c[i].key, c[j].key);
		if (!strcmp(c[i].engine, "epoll")) {
			epoll++;
			assert_null(strstr(c[i].key, "handoff"));
			assert_null(strstr(c[i].key, "balance"));
			assert_null(c[i].handoff);
		} else {
			gw++;
			assert_non_null(c[i].handoff);
			assert_non_null(c[i].balance);
			assert_non_null(strstr(c[i].key, "handoff="));
		}
		assert_non_null(c[i].function);
		assert_int_equal(c[i].no_keepalive, 1);
	}
	assert_int_equal(epoll, 4);
	assert_int_equal(gw, 16);
	assert_string_equal(spec_get(&s, "server", "functions")->v[0].text, "fn");
	free(c);
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	spec_print_matrix(&s, f);
	fclose(f);
	assert_non_null(strstr(out, "matrix: 20 cells"));
	free(out);
	spec_release(&s);
	const char *bad[] = {"handoff = splice\n", "balance = random\n"};
	for (int i = 0; i < 2; i++) {
		char t2[256];
		snprintf(t2, sizeof t2, "[server]\nengine = gateway\nproto = http\n%s", bad[i]);
		assert_int_equal(spec_parse_text(&s, t2, "b.ini", &gcat, 0, err, sizeof err), -1);
		assert_non_null(strstr(err, i ? "least-conn" : "fdpass"));
	}
	assert_int_equal(spec_parse_text(&s, "[server]\nengine = epoll\nproto = http\n"
					     "[load]\nfunction = ../x\n", "b.ini", &gcat, 0, err,
					 sizeof err), -1);
	assert_non_null(strstr(err, "bad function"));
}

static void test_profile_key(void **state)
{
	(void)state;
	struct spec s;
	char err[512] = "";
	const char *text = "[experiment]\nrepeat = 3\nduration = 3s\nwarmup = 1s\nprofile = first\n"
			   "[server]\nengine = epoll fork\nproto = http sink\n"
			   "[load]\nconnections = 16\n[load.sink]\nrate = 1k/s 2k/s\n";
	if (spec_parse_text(&s, text, "p.ini", &cat, 0, err, sizeof err))
		fail_msg("%s", err);
	assert_int_equal(s.profile, SPEC_PROFILE_FIRST);
	assert_true(spec_profiled(&s, 0));
	assert_false(spec_profiled(&s, 1));
	struct spec_cell *c;
	int n = spec_cells(&s, &c);
	assert_int_equal(n, 2 + 2 * 2);
	assert_int_equal(spec_profiled_trials(&s, n, 0, n * 3), n);
	assert_int_equal(spec_profiled_trials(&s, n, 2, n * 3), n - 2); /* resumed after 2 */
	assert_int_equal(spec_profiled_trials(&s, n, n, n * 3), 0);
	/* the rate varies among the cells that have one: in their ids, sanitized */
	char id[160];
	assert_string_equal(spec_cell_id(c, n, 0, id, sizeof id), "http-epoll-c16-cpusall");
	assert_string_equal(spec_cell_id(c, n, 3, id, sizeof id), "sink-fork-c16-cpusall-rate1k_s");
	assert_string_equal(spec_cell_id(c, n, 5, id, sizeof id), "sink-fork-c16-cpusall-rate2k_s");
	/* every profiled trial costs SPEC_PROFILE_OVERHEAD_NS in the estimate and the dry run */
	assert_true(spec_estimate_ns(&s, 18, 6) - spec_estimate_ns(&s, 18, 0) ==
		    6 * SPEC_PROFILE_OVERHEAD_NS);
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	spec_print_matrix(&s, f);
	fclose(f);
	assert_non_null(strstr(out, "profiling: first (the first repeat of every cell): 6 of 18 "
				    "trials"));
	char want[128];
	/* 18 x (1s + 3s + trial overhead) + 6 x profile overhead */
	uint64_t est = 18ULL * (4000000000ULL + SPEC_TRIAL_OVERHEAD_NS) + 6 * SPEC_PROFILE_OVERHEAD_NS;
	snprintf(want, sizeof want, "= %.1f min", est / 60e9);
	assert_non_null(strstr(out, want));
	assert_non_null(strstr(out, "profiled: + ~"));
	free(out);
	free(c);
	s.profile = SPEC_PROFILE_ALL; /* run --profile=all */
	assert_true(spec_profiled(&s, 2));
	assert_int_equal(spec_profiled_trials(&s, n, 0, n * 3), n * 3);
	spec_release(&s);
	enum spec_profile p;
	assert_int_equal(spec_profile_parse("all", &p), 0);
	assert_int_equal(p, SPEC_PROFILE_ALL);
	assert_int_equal(spec_profile_parse("off", &p), 0);
	assert_int_equal(p, SPEC_PROFILE_OFF);
	assert_int_equal(spec_profile_parse("yes", &p), -1);
	assert_string_equal(spec_profile_name(SPEC_PROFILE_FIRST), "first");
}

static void expect_error(const char *text, const char *want1, const char *want2);

/* profile = cells:SELECTOR: the first repeat of the matching cells only (one per engine
 * here), counted in the estimate; the terms may be split by spaces or commas; bad terms and
 * a selector that matches nothing are FILE:LINE errors. */
static void test_profile_cells(void **state)
{
	(void)state;
	struct spec s;
	char err[512] = "";
	const char *text = "[experiment]\nrepeat = 2\nduration = 1s\nwarmup = 0s\n"
			   "profile = cells:proto=http connections=64\n"
			   "[server]\nengine = epoll fork thread\nproto = http sink\n"
			   "[load]\nconnections = 1 64\n";
	if (spec_parse_text(&s, text, "p.ini", &cat, 0, err, sizeof err))
		fail_msg("%s", err);
	assert_int_equal(s.profile, SPEC_PROFILE_CELLS);
	assert_string_equal(s.profile_cells, "proto=http connections=64");
	struct spec_cell *c;
	int n = spec_cells(&s, &c);
	assert_int_equal(n, 3 * 2 * 2);
	int sel = 0;
	for (int i = 0; i < n; i++) {
		int want = !strcmp(c[i].proto, "http") && c[i].connections == 64;
		assert_int_equal(spec_cell_selected(&s, &c[i]), want);
		assert_int_equal(spec_profiled_cell(&s, &c[i], 0), want);
		assert_false(spec_profiled_cell(&s, &c[i], 1));
		sel += want;
	}
	assert_int_equal(sel, 3); /* one per engine */
	assert_int_equal(spec_profiled_trials(&s, n, 0, n * 2), 3);
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	spec_print_matrix(&s, f);
	fclose(f);
	assert_non_null(strstr(out, "profiling: cells (the first repeat of the cells with "
				    "proto=http connections=64): 3 of 24 trials"));
	char want[128];
	uint64_t est = 24ULL * (1000000000ULL + SPEC_TRIAL_OVERHEAD_NS) + 3 * SPEC_PROFILE_OVERHEAD_NS;
	snprintf(want, sizeof want, "= %.1f min", est / 60e9);
	assert_non_null(strstr(out, want));
	free(out);
	free(c);
	/* --quick keeps connections 1 and 64 here: still 3 profiled cells, no note */
	spec_quick(&s);
	assert_int_equal(s.nnotes, 0);
	spec_release(&s);
	/* commas, one term */
	if (spec_parse_text(&s, "[experiment]\nprofile = cells:engine=fork,connections=1\n"
				"[server]\nengine = epoll fork\nproto = http\n"
				"[load]\nconnections = 1 4\n", "p.ini", &cat, 0, err, sizeof err))
		fail_msg("%s", err);
	assert_string_equal(s.profile_cells, "engine=fork connections=1");
	n = spec_cells(&s, &c);
	assert_int_equal(spec_profiled_trials(&s, n, 0, n * s.repeat), 1);
	free(c);
	spec_release(&s);
	/* a selector the quick matrix (connections 1 and 16) leaves out: a note says so */
	if (spec_parse_text(&s, "[experiment]\nprofile = cells:connections=4\n"
				"[server]\nengine = epoll\nproto = http\n"
				"[load]\nconnections = 1 4 16\n", "p.ini", &cat, 0, err, sizeof err))
		fail_msg("%s", err);
	spec_quick(&s);
	n = spec_cells(&s, &c);
	assert_int_equal(spec_profiled_trials(&s, n, 0, n * s.repeat), 0);
	assert_int_equal(s.nnotes, 1);
	assert_non_null(strstr(s.notes[0], "profile = cells:connections=4 matches no cell of the "
					   "quick matrix"));
	free(c);
	spec_release(&s);
	expect_error("[experiment]\nprofile = cells:connections=64\n[server]\nengine = fork\n"
		     "proto = http\n[load]\nconnections = 1 4\n",
		     "bad.ini:2: profile = cells:connections=64 matches no cell", NULL);
	expect_error("[experiment]\nprofile = cells:colour=red\n[server]\nengine = fork\n"
		     "proto = http\n", "bad.ini:2: bad profile term 'colour'", NULL);
	expect_error("[experiment]\nprofile = cells:\n[server]\nengine = fork\nproto = http\n",
		     "bad.ini:2: profile 'cells:' names no cell", NULL);
	expect_error("[experiment]\nprofile = first proto=http\n[server]\nengine = fork\n"
		     "proto = http\n", "bad.ini:2: 'profile' takes one value", NULL);
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

static void test_errors(void **state)
{
	(void)state;
	char more[128];
	cpu_set_t set;
	sched_getaffinity(0, sizeof set, &set);
	snprintf(more, sizeof more, "more than the %d CPUs this machine has", CPU_COUNT(&set));

	expect_error("[server]\nengine = fork\nproto = http\ncolour = red\n", "bad.ini:4: unknown key 'colour' in [server]",
		     "allowed: engine, proto, cpus, workers, work_cpu_us");
	expect_error("[experiment]\nprofiling = first\n[server]\nengine = fork\nproto = http\n",
		     "bad.ini:2: unknown key 'profiling' in [experiment]",
		     "allowed: name, question, repeat, warmup, duration, profile");
	expect_error("[servr]\nengine = fork\n", "bad.ini:2: unknown section [servr]",
		     "allowed: experiment, server, load, load.PROTO, hosts");
	expect_error("[server]\nengine = fork coroutine\nproto = http\n",
		     "bad.ini:2: unknown engine 'coroutine'", "allowed: epoll thread fork go nginx");
	expect_error("[server]\nengine = fork\nproto = smtp\n", "bad.ini:3: unknown proto 'smtp'",
		     "allowed: sink echo http chat");
	expect_error("[experiment]\nduration = 10x\n[server]\nengine = fork\nproto = http\n",
		     "bad.ini:2: bad duration '10x'", "ms");
	expect_error("[experiment]\nrepeat = 0\n[server]\nengine = fork\nproto = http\n",
		     "bad.ini:2: bad repeat '0'", "allowed: 1 to");
	expect_error("[server]\nengine = fork\nproto = http\ncpus = 1 4096\n", "bad.ini:4: cpus '4096' is", more);
	expect_error("[server]\nengine = fork\nproto = http\ncpus = 0\n", "bad.ini:4: bad cpus '0'",
		     "quoted CPU list like \"0\"");
	expect_error("[server]\nengine = fork\nproto = http\ncpus = \"1000\"\n", "bad.ini:4: cpus list \"1000\"",
		     "allowed: CPUs 0-");
	expect_error("[server]\nengine = fork nginx\nproto = http sink\n",
		     "bad.ini:2: engine 'nginx' does not speak protocol 'sink'", "allowed for nginx: http");
	expect_error("[server]\nengine = fork\nproto = http\n[load]\nrate = 1k\nbandwidth = 1Mbps\n",
		     "bad.ini:5: 'rate' and 'bandwidth' are both set in [load]", "allowed: rate");
	expect_error("[server]\nengine = fork\nengine = epoll\nproto = http\n",
		     "bad.ini:3: 'engine' is set twice in [server] (first at line 2", NULL);
	expect_error("[server]\nengine = fork\nproto = http\n[hosts]\nserver = ftp:x\n",
		     "bad.ini:5: bad server host 'ftp:x'", "allowed: local, ssh:user@host, netns:NAME");
	expect_error("[server]\nengine = fork\nproto = http\n[hosts]\nload = ssh:-oProxyCommand=x\n",
		     "bad.ini:5: bad load host", "allowed: local");
	expect_error("[server]\nengine = fork\nproto = http\n[load]\nconnections = many\n",
		     "bad.ini:5: bad connections 'many'", NULL);
	expect_error("[server]\nengine = fork\nproto = http\nthis is not ini\n", "bad.ini:4: syntax error",
		     "expected '[section]', 'key = value'");
	expect_error("[server]\nproto = http\n", "[server] has no 'engine'", "engine = fork epoll");
	expect_error("[server]\nengine = fork\nproto = http\n[load.chat]\nconnections = 2\n",
		     "bad.ini:5: [load.chat] is for protocol 'chat'", "allowed: http");
	expect_error("[server]\nengine = fork\nproto = http\n[load.ftp]\nconnections = 2\n",
		     "bad.ini:5: unknown section [load.ftp]", "sink echo http chat");
	expect_error("[experiment]\nrepeat = 1 2\n[server]\nengine = fork\nproto = http\n",
		     "bad.ini:2: 'repeat' takes one value, not a list", NULL);
	expect_error("[experiment]\nname = ../x\n[server]\nengine = fork\nproto = http\n",
		     "bad.ini:2: bad name '../x'", "allowed: letters");
	expect_error("[server]\nengine = fork fork\nproto = http\n", "bad.ini:2: 'engine' lists 'fork' twice", NULL);
	expect_error("[server]\nengine = fork\nproto = http\n[hosts]\nserver_address = localhost\n",
		     "bad.ini:5: bad server_address 'localhost'", "allowed: an IPv4 or IPv6");
	expect_error("engine = fork\n", "bad.ini:1: 'engine' is outside a section", NULL);
	expect_error("[experiment]\nrepeat = 2\nprofile = sometimes\n"
		     "[server]\nengine = fork\nproto = http\n",
		     "bad.ini:3: bad profile 'sometimes'", "allowed: off, first, all");
	expect_error("[experiment]\nprofile = first all\n[server]\nengine = fork\nproto = http\n",
		     "bad.ini:2: 'profile' takes one value, not a list", NULL);
	expect_error("[experiment]\nprofile = yes\n[server]\nengine = fork\nproto = http\n",
		     "bad.ini:2: bad profile 'yes'", NULL);
	/* a user spec naming a missing engine is an error, never a note */
	expect_error("[server]\nengine = coro\nproto = sink\n", "bad.ini:2: unknown engine 'coro'", NULL);
}

static void test_per_proto_load_and_hosts(void **state)
{
	(void)state;
	struct spec s;
	char err[512] = "";
	const char *text = "[server]\nengine = epoll\nproto = sink http  ; two\n"
			   "[load]\nconnections = 2\nrate = 500/s\n"
			   "[load.sink]\nbandwidth = 64KB/s\nconnections = 1\n   3\n"
			   "[hosts]\nserver = netns:a\nload = netns:b\nserver_address = 192.0.2.1\n";
	if (spec_parse_text(&s, text, "p.ini", &cat, 0, err, sizeof err))
		fail_msg("%s", err);
	struct spec_cell *c;
	int n = spec_cells(&s, &c);
	assert_int_equal(n, 3); /* sink x (1, 3) + http x 2 */
	assert_string_equal(c[0].key, "engine=epoll proto=sink cpus=all connections=1 bandwidth=64KB/s");
	assert_string_equal(c[1].key, "engine=epoll proto=sink cpus=all connections=3 bandwidth=64KB/s");
	assert_string_equal(c[2].key, "engine=epoll proto=http cpus=all connections=2 rate=500/s");
	assert_string_equal(s.server_host, "netns:a");
	assert_string_equal(s.load_host, "netns:b");
	assert_string_equal(s.server_address, "192.0.2.1");
	free(c);
	spec_release(&s);
}

/* The matrix size is counted in 64 bits before any int holds it: 4096 cells x 1000000
 * repeats once printed "= -198967296 trials". Over the bounds: -E2BIG with FILE:LINE. At the
 * bounds: accepted, and the count is what spec_cells makes (the lenient skips included). */
static void test_matrix_bounds(void **state)
{
	struct spec s;
	char err[512], text[1024];
	const char *axes = "[load]\nconnections = 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 "
			   "22 23 24 25 26 27 28 29 30 31 32\n"
			   "threads = 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 "
			   "26 27 28 29 30 31 32\n";
	/* 32 x 32 x 4 = 4096 cells, x 1000000 */
	snprintf(text, sizeof text, "[experiment]\nrepeat = 1000000\n[server]\nengine = epoll\n"
		 "proto = http\n%spipeline = 1 2 3 4\n", axes);
	assert_int_equal(spec_parse_text(&s, text, "big.ini", &cat, 0, err, sizeof err), -E2BIG);
	assert_non_null(strstr(err, "big.ini:2: repeat 1000000 x 4096 cells is more than 1000000"));
	/* 32 x 32 x 10 = 10240 cells */
	snprintf(text, sizeof text, "[server]\nengine = epoll\nproto = http\n%s"
		 "pipeline = 1 2 3 4 5 6 7 8 9 10\n", axes);
	assert_int_equal(spec_parse_text(&s, text, "big.ini", &cat, 0, err, sizeof err), -E2BIG);
	assert_non_null(strstr(err, "the matrix has 10240 cells, more than 10000"));
	/* lenient: go does not speak chat, so 3 engines x 2 protos - 1 pair = 5 x 1024 cells */
	snprintf(text, sizeof text, "[experiment]\nrepeat = 195\n[server]\nengine = epoll go fork\n"
		 "proto = http chat\n%s", axes);
	if (spec_parse_text(&s, text, "ok.ini", &cat, SPEC_LENIENT, err, sizeof err))
		fail_msg("%s", err);
	struct spec_cell *c;
	int n = spec_cells(&s, &c);
	assert_int_equal(n, 5 * 1024);
	assert_int_equal(s.repeat, 195); /* 998400 trials: under the bound */
	free(c);
	spec_release(&s);
	snprintf(text, sizeof text, "[experiment]\nrepeat = 196\n[server]\nengine = epoll go fork\n"
		 "proto = http chat\n%s", axes);
	assert_int_equal(spec_parse_text(&s, text, "ok.ini", &cat, SPEC_LENIENT, err, sizeof err),
			 -E2BIG);
	assert_non_null(strstr(err, "repeat 196 x 5120 cells"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_catalog),
		cmocka_unit_test(test_profile_cells),
		cmocka_unit_test(test_bundled_equal_files),
		cmocka_unit_test(test_gateway_axes),
		cmocka_unit_test(test_default_parses_leniently),
		cmocka_unit_test(test_cpus_pruned),
		cmocka_unit_test(test_matrix_product),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_per_proto_load_and_hosts),
		cmocka_unit_test(test_profile_key),
		cmocka_unit_test(test_matrix_bounds),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
