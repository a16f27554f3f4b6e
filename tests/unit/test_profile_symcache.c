/* The symbol cache (profile/symbols.h, symbols_cache_dir): what a cached lookup answers must be
 * what an uncached one answers, and the second struct symbols given the directory must take
 * the cached path (the stats say which path ran), for
 * - the kernel: every text symbol's own address, and an address inside it, from /proc/kallsyms
 *   (root: addresses visible), resolved without a cache, then with the cache written (a miss),
 *   then read (a hit);
 * - a separate debug file with compressed sections (libc6-dbg's, when installed): file:line of
 *   addresses in libc, through a decompressed copy made once, then reused.
 * Each part is skipped (with the reason) where this machine cannot show it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "profile/symbols.h"

static char dir[64];

static void rm_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		char p[512];
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

#define NK 2000

static void test_kernel(void **state)
{
	(void)state;
	/* every 60th text symbol of kallsyms: its address and the one after it */
	FILE *f = fopen("/proc/kallsyms", "r");
	if (!f)
		skip();
	static uint64_t addr[NK];
	int n = 0, line = 0;
	char buf[512];
	while (n < NK && fgets(buf, sizeof buf, f)) {
		unsigned long long a;
		char type;
		if (sscanf(buf, "%llx %c", &a, &type) != 2 || (type != 't' && type != 'T'))
			continue;
		if (line++ % 60 == 0 && a) {
			addr[n++] = a;
			if (n < NK)
				addr[n++] = a + 1;
		}
	}
	fclose(f);
	if (n < 100) {
		print_message("kernel addresses hidden here (not root?): skipped\n");
		skip();
	}
	snprintf(dir, sizeof dir, "/tmp/ctxlab-symcache-XXXXXX");
	assert_non_null(mkdtemp(dir));
	struct symbols_cache_stats st0, st1, st2;
	symbols_cache_dir(NULL);
	struct symbols *plain = symbols_new();
	symbols_cache_dir(dir);
	symbols_cache_stats(&st0);
	struct symbols *first = symbols_new();
	/* the first lookup loads the table */
	const char *x = symbols_kernel(first, addr[0]);
	(void)x;
	symbols_cache_stats(&st1);
	assert_int_equal(st1.kernel_misses, st0.kernel_misses + 1); /* parsed, then written */
	struct symbols *second = symbols_new();
	(void)symbols_kernel(second, addr[0]);
	symbols_cache_stats(&st2);
	assert_int_equal(st2.kernel_hits, st1.kernel_hits + 1);   /* read from the cache */
	assert_int_equal(st2.kernel_misses, st1.kernel_misses);
	int differ = 0;
	for (int i = 0; i < n; i++) {
		symbols_cache_dir(NULL);
		const char *a = symbols_kernel(plain, addr[i]);
		const char *b = symbols_kernel(first, addr[i]);
		const char *c = symbols_kernel(second, addr[i]);
		if (strcmp(a, b) || strcmp(a, c)) {
			if (differ++ < 5)
				print_message("0x%llx: %s / %s / %s\n", (unsigned long long)addr[i], a, b,
					      c);
		}
	}
	print_message("%d kernel addresses, %d differ\n", n, differ);
	assert_int_equal(differ, 0);
	symbols_free(plain);
	symbols_free(first);
	symbols_free(second);
	symbols_cache_dir(NULL);
	rm_dir();
}

static void test_debug_file(void **state)
{
	(void)state;
	size_t len;
	char *maps = symbols_snapshot_maps(getpid(), &len);
	assert_non_null(maps);
	/* addresses in libc's code: functions this test links, and a few bytes into them */
	uint64_t fn[] = {(uint64_t)(uintptr_t)&fopen, (uint64_t)(uintptr_t)&qsort,
			 (uint64_t)(uintptr_t)&strtod, (uint64_t)(uintptr_t)&opendir};
	enum { NA = 4 * 16 };
	uint64_t addr[NA];
	for (int i = 0; i < NA; i++)
		addr[i] = fn[i / 16] + (uint64_t)(i % 16) * 7;
	char mod[64];
	if (!symbols_module_of(maps, addr[0], mod, sizeof mod) || strncmp(mod, "libc", 4)) {
		print_message("fopen is not in libc here (%s): skipped\n", mod);
		free(maps);
		skip();
	}
	const char *file;
	int ln;
	symbols_cache_dir(NULL);
	struct symbols *plain = symbols_new();
	if (!symbols_srcline(plain, maps, addr[0], &file, &ln)) {
		print_message("no line table for libc here (install libc6-dbg): skipped\n");
		symbols_free(plain);
		free(maps);
		skip();
	}
	snprintf(dir, sizeof dir, "/tmp/ctxlab-symcache-XXXXXX");
	assert_non_null(mkdtemp(dir));
	symbols_cache_dir(dir);
	struct symbols_cache_stats st0, st1, st2;
	symbols_cache_stats(&st0);
	struct symbols *first = symbols_new();
	const char *f1;
	int l1;
	assert_true(symbols_srcline(first, maps, addr[0], &f1, &l1));
	symbols_cache_stats(&st1);
	if (st1.debug_misses == st0.debug_misses) {
		print_message("libc's debug information has no compressed section here: nothing to "
			      "cache, skipped\n");
		symbols_free(plain);
		symbols_free(first);
		free(maps);
		symbols_cache_dir(NULL);
		rm_dir();
		skip();
	}
	assert_int_equal(st1.debug_misses, st0.debug_misses + 1); /* the copy made */
	struct symbols *second = symbols_new();
	assert_true(symbols_srcline(second, maps, addr[0], &f1, &l1));
	symbols_cache_stats(&st2);
	assert_int_equal(st2.debug_hits, st1.debug_hits + 1);     /* and reused */
	assert_int_equal(st2.debug_misses, st1.debug_misses);
	int differ = 0, found = 0;
	for (int i = 0; i < NA; i++) {
		const char *fa = NULL, *fb = NULL, *fc = NULL;
		int la = 0, lb = 0, lc = 0;
		int a = symbols_srcline(plain, maps, addr[i], &fa, &la);
		int b = symbols_srcline(first, maps, addr[i], &fb, &lb);
		int c = symbols_srcline(second, maps, addr[i], &fc, &lc);
		char n1[256], n2[256], n3[256];
		const char *s1 = symbols_user(plain, maps, addr[i], n1, sizeof n1);
		const char *s2 = symbols_user(first, maps, addr[i], n2, sizeof n2);
		const char *s3 = symbols_user(second, maps, addr[i], n3, sizeof n3);
		found += a;
		if (a != b || a != c || (a && (strcmp(fa, fb) || strcmp(fa, fc) || la != lb ||
					       la != lc)) || strcmp(s1, s2) || strcmp(s1, s3)) {
			if (differ++ < 5)
				print_message("0x%llx: %s:%d %s / %s:%d %s\n", (unsigned long long)addr[i],
					      a ? fa : "-", la, s1, b ? fb : "-", lb, s2);
		}
	}
	print_message("%d libc addresses, %d with a line, %d differ\n", NA, found, differ);
	assert_true(found > NA / 2);
	assert_int_equal(differ, 0);
	symbols_free(plain);
	symbols_free(first);
	symbols_free(second);
	symbols_files_release();
	free(maps);
	symbols_cache_dir(NULL);
	rm_dir();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kernel),
		cmocka_unit_test(test_debug_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
