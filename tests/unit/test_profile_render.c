/* profile rendering: folded parsing/merging/writing, per-function totals, the flame graph SVG
 * (structure, escaping, zoom/search script, differential colours) and the pprof encoding
 * (decoded back here with a minimal protobuf reader, and through zlib). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "core/buf.h"
#include "profile/flamesvg.h"
#include "profile/folded.h"
#include "profile/pprof.h"

static const char sample_text[] = "burn;main;burn_a 70\n"
				  "burn;main;burn_b 30\n"
				  "\n"
				  "# a comment\n"
				  "burn;main;burn_a 5\n"
				  "burn;main;rec;rec;rec 4\r\n"
				  "burn;main;read;sys_read_[k] 1\n";

static void parse(struct folded *f, const char *text)
{
	char err[256];
	folded_init(f);
	int r = folded_parse(f, text, strlen(text), err, sizeof err);
	assert_true(r > 0);
}

static const struct folded_entry *find(const struct folded *f, const char *stack)
{
	for (size_t i = 0; i < f->n; i++)
		if (!strcmp(f->e[i].stack, stack))
			return &f->e[i];
	return NULL;
}

static void test_parse_merge(void **state)
{
	(void)state;
	struct folded f;
	parse(&f, sample_text);
	assert_int_equal(f.n, 4);
	assert_int_equal(f.total, 110);
	assert_int_equal(find(&f, "burn;main;burn_a")->count, 75);
	assert_int_equal(find(&f, "burn;main;rec;rec;rec")->count, 4);
	folded_sort(&f);
	assert_string_equal(f.e[0].stack, "burn;main;burn_a");
	/* the index still works after sorting */
	assert_int_equal(folded_add(&f, "burn;main;burn_b", 16, 2, 0), 0);
	assert_int_equal(f.n, 4);
	assert_int_equal(find(&f, "burn;main;burn_b")->count, 32);

	/* write and read back: same entries, same total */
	char *mem = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&mem, &len);
	assert_int_equal(folded_write(&f, m), 0);
	fclose(m);
	struct folded g;
	parse(&g, mem);
	assert_int_equal(g.n, f.n);
	assert_int_equal(g.total, f.total);
	for (size_t i = 0; i < f.n; i++)
		assert_int_equal(find(&g, f.e[i].stack)->count, f.e[i].count);
	free(mem);
	folded_release(&g);
	folded_release(&f);
}

static void test_parse_errors(void **state)
{
	(void)state;
	struct folded f;
	char err[256];
	folded_init(&f);
	assert_int_equal(folded_parse(&f, "a;b;c\n", 6, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "line 1"));
	assert_int_equal(folded_parse(&f, "a;b 1\na;b x7\n", 13, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "line 2"));
	assert_non_null(strstr(err, "x7"));
	folded_release(&f);
	/* fractional counts (flamegraph.pl accepts them) keep the integer part */
	folded_init(&f);
	assert_int_equal(folded_parse(&f, "a b 2.5\n", 8, err, sizeof err), 1);
	assert_int_equal(find(&f, "a b")->count, 2); /* a space inside a frame name is kept */
	folded_release(&f);
}

static void test_functions(void **state)
{
	(void)state;
	struct folded f;
	parse(&f, sample_text);
	size_t n;
	struct folded_fn *fns = folded_functions(&f, 1, &n);
	assert_non_null(fns);
	assert_string_equal(fns[0].name, "burn_a");
	assert_int_equal(fns[0].self, 75);
	assert_int_equal(fns[0].total, 75);
	int saw_main = 0, saw_rec = 0, saw_root = 0;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(fns[i].name, "main")) {
			saw_main = 1;
			assert_int_equal(fns[i].self, 0);
			assert_int_equal(fns[i].total, 110);
		}
		if (!strcmp(fns[i].name, "rec")) {
			saw_rec = 1; /* recursion counted once per stack */
			assert_int_equal(fns[i].self, 4);
			assert_int_equal(fns[i].total, 4);
		}
		saw_root |= !strcmp(fns[i].name, "burn");
	}
	assert_true(saw_main && saw_rec && !saw_root);
	folded_fns_free(fns, n);
	folded_release(&f);
}

__attribute__((noinline)) static char *render(const struct folded *a, const struct folded *b, struct flamesvg_opts *o)
{
	char *mem = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&mem, &len);
	int r = b ? flamesvg_write_diff(a, b, o, m) : flamesvg_write(a, o, m);
	fclose(m);
	assert_int_equal(r, 0);
	return mem;
}

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static void test_svg(void **state)
{
	(void)state;
	struct folded f;
	parse(&f, sample_text);
	assert_int_equal(folded_add(&f, "burn;main;tmpl<a&b>\"q\"", 22, 10, 0), 0);
	folded_sort(&f);
	struct flamesvg_opts o = {.title = "T<1>"};
	char *svg = render(&f, NULL, &o);
	/* frames: all, burn, main, burn_a, burn_b, rec x3, read, sys_read_[k], tmpl = 11 */
	assert_int_equal(count(svg, "<g class=\"f\""), 11);
	assert_int_equal(count(svg, "<title>"), 11);
	assert_int_equal(count(svg, "<rect x="), 11 + 1 /* background */);
	assert_non_null(strstr(svg, "<title>all (120 samples, 100.00%)</title>"));
	assert_non_null(strstr(svg, "<title>burn_a (75 samples, 62.50%)</title>"));
	assert_non_null(strstr(svg, "tmpl&lt;a&amp;b&gt;&quot;q&quot;"));
	assert_null(strstr(svg, "tmpl<a"));
	assert_non_null(strstr(svg, "T&lt;1&gt;"));
	assert_non_null(strstr(svg, "function zoom("));
	assert_non_null(strstr(svg, "function search("));
	assert_non_null(strstr(svg, "<![CDATA["));
	assert_non_null(strstr(svg, "</svg>\n"));
	/* widths: burn_a is 75/120 of the 1180 px between the paddings */
	assert_non_null(strstr(svg, "data-w=\"737.50\" data-d=\"3\" data-n=\"burn_a\""));
	free(svg);

	/* frames below the minimum width are left out */
	struct flamesvg_opts narrow = {.min_width_px = 100};
	svg = render(&f, NULL, &narrow);
	assert_null(strstr(svg, "data-n=\"sys_read_[k]\""));
	assert_non_null(strstr(svg, "data-n=\"burn_a\""));
	free(svg);

	struct folded empty;
	folded_init(&empty);
	char *mem = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&mem, &len);
	assert_int_equal(flamesvg_write(&empty, &o, m), -ENODATA);
	fclose(m);
	free(mem);
	folded_release(&f);
}

/* Names that reach a folded stack are the target's to choose (comm from PERF_RECORD_COMM,
 * function names): ';' would split a frame, '\n' a line, a tab or space + digits the count.
 * The writer's escaping keeps one stack one line: written and read back, the same stacks. */
static void test_frame_escape(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	assert_int_equal(folded_append_frame(&b, "evil;comm\nx 5\ty\r\001z"), 0);
	buf_append(&b, ";", 1);
	assert_int_equal(folded_append_frame(&b, "f;g"), 0);
	assert_int_equal((int)buf_used(&b), (int)strlen("evil:comm x 5 y ?z;f:g"));
	assert_memory_equal(buf_head(&b), "evil:comm x 5 y ?z;f:g", buf_used(&b));
	struct folded f, g;
	folded_init(&f);
	assert_int_equal(folded_add(&f, buf_head(&b), buf_used(&b), 7, 0), 0);
	/* a NUL inside a stack is refused (entries are C strings) */
	assert_int_equal(folded_add(&f, "a\0b", 3, 1, 0), -EINVAL);
	char *mem = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&mem, &len);
	assert_int_equal(folded_write(&f, m), 0);
	fclose(m);
	assert_string_equal(mem, "evil:comm x 5 y ?z;f:g 7\n");
	parse(&g, mem);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.e[0].stack, "evil:comm x 5 y ?z;f:g");
	assert_int_equal(g.e[0].count, 7);
	free(mem);
	buf_free(&b);
	folded_release(&f);
	folded_release(&g);
}

/* Hostile folded input (issue 9): a 400,000-frame stack is cut at FLAMESVG_MAX_DEPTH with a
 * marker frame (rendering recursed once per frame and overflowed the stack); names that are
 * not UTF-8 or are cut in a narrow frame never leave half a sequence in the SVG. */
static int utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		int n = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 ? 1 : (*p & 0xf0) == 0xe0 ? 2
			: (*p & 0xf8) == 0xf0 ? 3 : -1;
		if (n < 0 || (n == 1 && *p < 0xc2))
			return 0;
		p++;
		for (int i = 0; i < n; i++, p++)
			if ((*p & 0xc0) != 0x80)
				return 0;
	}
	return 1;
}

static void test_svg_hostile(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	buf_appendf(&b, "root");
	for (int i = 0; i < 400000; i++)
		buf_appendf(&b, ";f%d", i);
	buf_appendf(&b, " 3\n");
	struct folded f;
	char err[256];
	folded_init(&f);
	assert_int_equal(folded_parse(&f, buf_head(&b), buf_used(&b), err, sizeof err), 1);
	char *svg = render(&f, NULL, NULL);
	assert_int_equal(count(svg, "<g class=\"f\""), 1 + FLAMESVG_MAX_DEPTH + 1);
	assert_non_null(strstr(svg, "data-d=\"1025\" data-n=\"" FLAMESVG_TRUNCATED "\""));
	assert_null(strstr(svg, "data-n=\"f1023\"")); /* root is frame 1: f1022 is the last */
	assert_non_null(strstr(svg, "data-n=\"f1022\""));
	free(svg);
	folded_release(&f);
	buf_free(&b);

	/* a wide frame and a narrow one whose name is 2-, 3- and 4-byte characters, and names
	 * with bytes that are not UTF-8 (a lone continuation, a cut sequence, a surrogate,
	 * U+FFFF, 0xff) */
	static const char text[] = "main;wide 100000\n"
				   "main;\xc3\xa9\xc3\xa9\xe2\x82\xac\xe2\x82\xac\xf0\x9f\x94\xa5"
				   "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
				   "\xc3\xa9\xc3\xa9 700\n"
				   "main;bad\x80x;cut\xe2\x82 50000\n"
				   "main;sur\xed\xa0\x80;ff\xef\xbf\xbf;b\xff 50000\n";
	for (int width = 200; width <= 2000; width += 7) {
		folded_init(&f);
		assert_int_equal(folded_parse(&f, text, strlen(text), err, sizeof err), 4);
		struct flamesvg_opts o = {.width_px = width};
		svg = render(&f, NULL, &o);
		if (!utf8_valid(svg))
			fail_msg("width %d: the SVG is not UTF-8", width);
		assert_null(strstr(svg, "\xed\xa0\x80"));
		assert_null(strstr(svg, "\xef\xbf\xbf"));
		free(svg);
		folded_release(&f);
	}
}

static void test_svg_diff(void **state)
{
	(void)state;
	struct folded a, b;
	parse(&a, "p;main;grow 10\np;main;shrink 90\np;main;same 100\n");
	parse(&b, "p;main;grow 180\np;main;shrink 20\np;main;same 200\n"); /* 2x as long */
	folded_sort(&a);
	folded_sort(&b);
	struct flamesvg_opts o = {.normalize = 1};
	char *svg = render(&a, &b, &o);
	/* normalized: A scaled x2; grow +160 (the largest change: full red), shrink -160 (full
	 * blue), same unchanged */
	const char *g = strstr(svg, "data-n=\"grow\"");
	const char *s = strstr(svg, "data-n=\"shrink\"");
	const char *u = strstr(svg, "data-n=\"same\"");
	assert_non_null(g);
	assert_non_null(s);
	assert_non_null(u);
	assert_non_null(strstr(g, "fill=\"rgb(255,55,55)\""));
	assert_true(strstr(g, "fill=\"rgb(255,55,55)\"") < strstr(g, "</g>"));
	assert_true(strstr(s, "fill=\"rgb(55,55,255)\"") < strstr(s, "</g>"));
	assert_true(strstr(u, "fill=\"rgb(250,250,250)\"") < strstr(u, "</g>"));
	assert_non_null(strstr(svg, "grow (B 180 samples, 45.00%; A 20; delta +160, +40.00%)"));
	free(svg);
	/* without normalization "same" grew by 100 */
	o.normalize = 0;
	svg = render(&a, &b, &o);
	assert_non_null(strstr(svg, "same (B 200 samples, 50.00%; A 100; delta +100, +25.00%)"));
	free(svg);
	folded_release(&a);
	folded_release(&b);
}

/* Per request: each side's counts x (period / its requests). A: 100 requests, B: 50, period
 * 1 ms (1e6 ns): A' work 300000 ns/req, io 100000; B' work 400000 (+33.3%), io 40000 (-60%),
 * newf 60000 (new). B has fewer samples of work than A, but costs more per request: red,
 * where the share normalisation would see almost no change. */
static void test_svg_diff_per_request(void **state)
{
	(void)state;
	struct folded a, b;
	parse(&a, "p;main;work 30\np;main;io 10\n");
	parse(&b, "p;main;work 20\np;main;io 2\np;main;newf 3\n");
	folded_sort(&a);
	folded_sort(&b);
	struct flamesvg_opts o = {.normalize = 1, .ns_per_count_a = 1e6 / 100,
				  .ns_per_count_b = 1e6 / 50};
	char *svg = render(&a, &b, &o);
	assert_non_null(strstr(svg, "work (A 300000.0 ns/req, B 400000.0 ns/req, +33.3%)"));
	assert_non_null(strstr(svg, "io (A 100000.0 ns/req, B 40000.0 ns/req, -60.0%)"));
	assert_non_null(strstr(svg, "newf (A 0.0 ns/req, B 60000.0 ns/req, new)"));
	assert_non_null(strstr(svg, "all (A 400000.0 ns/req, B 500000.0 ns/req, +25.0%)"));
	/* largest |delta| below the root: work and main, +100000: full red; io -60000: 0.6 */
	const char *w = strstr(svg, "data-n=\"work\"");
	const char *i = strstr(svg, "data-n=\"io\"");
	assert_non_null(w);
	assert_non_null(i);
	assert_true(strstr(w, "fill=\"rgb(255,55,55)\"") < strstr(w, "</g>"));
	assert_true(strstr(i, "fill=\"rgb(135,135,255)\"") < strstr(i, "</g>"));
	/* B costs more: B spans the whole width (1180 px) */
	assert_non_null(strstr(svg, "data-n=\"all\"><title>"));
	assert_non_null(strstr(svg, "data-x=\"0.00\" data-w=\"1180.00\" data-d=\"0\""));
	free(svg);
	/* B at 100 requests: 250000 ns/req, cheaper than A: root 1180 x 250000/400000 = 737.5 */
	o.ns_per_count_b = 1e6 / 100;
	svg = render(&a, &b, &o);
	assert_non_null(strstr(svg, "data-x=\"0.00\" data-w=\"737.50\" data-d=\"0\""));
	assert_non_null(strstr(svg, "all (A 400000.0 ns/req, B 250000.0 ns/req, -37.5%)"));
	/* work 200000 vs 300000: -100000, the largest change: full blue */
	w = strstr(svg, "data-n=\"work\"");
	assert_true(strstr(w, "fill=\"rgb(55,55,255)\"") < strstr(w, "</g>"));
	free(svg);
	folded_release(&a);
	folded_release(&b);
}

/* ---- a minimal protobuf reader for the pprof check ---- */

struct pb {
	const unsigned char *p, *end;
};

static uint64_t pb_varint(struct pb *b)
{
	uint64_t v = 0;
	for (int s = 0; b->p < b->end && s < 64; s += 7) {
		unsigned char c = *b->p++;
		v |= (uint64_t)(c & 0x7f) << s;
		if (!(c & 0x80))
			return v;
	}
	fail_msg("truncated varint");
	return 0;
}

static void test_pprof(void **state)
{
	(void)state;
	struct folded f;
	parse(&f, sample_text);
	for (size_t i = 0; i < f.n; i++)
		f.e[i].ns = f.e[i].count * 1000;
	struct pprof_desc d = {.nvalues = 2,
			       .type = {"samples", "cpu"},
			       .unit = {"count", "nanoseconds"},
			       .default_type = "cpu",
			       .period_type = "cpu",
			       .period_unit = "nanoseconds",
			       .period = 1000,
			       .duration_nanos = 5};
	const struct folded *sets[1] = {&f};
	int vc[1] = {0}, vn[1] = {1};
	struct buf out = BUF_INIT;
	assert_int_equal(pprof_encode(&d, sets, vc, vn, 1, &out), 0);

	/* decode the top level: strings, samples (and their value sums), functions */
	char *strs[64] = {0};
	int nstr = 0, nsamples = 0, nfunc = 0, nloc = 0;
	uint64_t sum0 = 0, sum1 = 0, max_depth = 0;
	struct pb b = {(const unsigned char *)buf_head(&out),
		       (const unsigned char *)buf_head(&out) + buf_used(&out)};
	while (b.p < b.end) {
		uint64_t key = pb_varint(&b);
		int field = (int)(key >> 3), wt = (int)(key & 7);
		if (wt == 0) {
			pb_varint(&b);
			continue;
		}
		assert_int_equal(wt, 2);
		uint64_t len = pb_varint(&b);
		assert_true(len <= (uint64_t)(b.end - b.p));
		struct pb sub = {b.p, b.p + len};
		if (field == 6) {
			assert_true(nstr < 64);
			/* not strndup: the bytes are not NUL-terminated (ASan strict_string_checks) */
			char *str = malloc(len + 1);
			assert_non_null(str);
			memcpy(str, b.p, len);
			str[len] = 0;
			strs[nstr++] = str;
		} else if (field == 2) {
			nsamples++;
			while (sub.p < sub.end) {
				uint64_t k = pb_varint(&sub), l = pb_varint(&sub);
				struct pb packed = {sub.p, sub.p + l};
				int idx = 0;
				uint64_t depth = 0;
				while (packed.p < packed.end) {
					uint64_t v = pb_varint(&packed);
					if ((k >> 3) == 2)
						*(idx++ == 0 ? &sum0 : &sum1) += v;
					else
						depth++;
				}
				if (depth > max_depth)
					max_depth = depth;
				sub.p += l;
			}
		} else if (field == 5) {
			nfunc++;
		} else if (field == 4) {
			nloc++;
		}
		b.p += len;
	}
	assert_int_equal(nsamples, 4);
	assert_int_equal(sum0, 110);
	assert_int_equal(sum1, 110000);
	assert_int_equal(max_depth, 5); /* burn;main;rec;rec;rec */
	/* burn main burn_a burn_b rec read sys_read = 7 functions, one location each */
	assert_int_equal(nfunc, 7);
	assert_int_equal(nloc, 7);
	assert_string_equal(strs[0], "");
	int saw_a = 0, saw_k = 0, saw_kfile = 0;
	for (int i = 0; i < nstr; i++) {
		saw_a |= !strcmp(strs[i], "burn_a");
		saw_k |= !strcmp(strs[i], "sys_read");
		saw_kfile |= !strcmp(strs[i], "[kernel.kallsyms]");
		free(strs[i]);
	}
	assert_true(saw_a && saw_k && saw_kfile);

	/* gzip round trip */
	char path[] = "/tmp/ctxlab-test-pprof-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(pprof_write_gz(buf_head(&out), buf_used(&out), path), 0);
	gzFile g = gzopen(path, "rb");
	assert_non_null(g);
	char *back = malloc(buf_used(&out) + 16);
	int n = gzread(g, back, (unsigned)buf_used(&out) + 16);
	gzclose(g);
	assert_int_equal(n, (int)buf_used(&out));
	assert_memory_equal(back, buf_head(&out), buf_used(&out));
	free(back);
	unlink(path);
	buf_free(&out);
	folded_release(&f);
}

/* pprof with a location table: real addresses, lines, a mapping with its build id; one
 * Function per (name, file), one Location per table entry used. */
static void test_pprof_loctab(void **state)
{
	(void)state;
	struct folded f;
	parse(&f, "comm;0;1 3\ncomm;0;2 1\n");
	const struct pprof_loc locs[3] = {
		{0x401005, "main", "/src/a.c", 5, 0},
		{0x401100, "f", "/src/a.c", 10, 0},
		{0x401108, "f", "/src/a.c", 11, 0},
	};
	const struct pprof_map maps[1] = {{0x400000, 0x402000, 0x1000, "/bin/a", "0123abcd", 1, 1}};
	struct pprof_loctab lt = {locs, 3, maps, 1};
	struct pprof_desc d = {.nvalues = 1, .type = {"samples"}, .unit = {"count"}, .loctab = &lt};
	const struct folded *sets[1] = {&f};
	int vc[1] = {0}, vn[1] = {-1};
	struct buf out = BUF_INIT;
	assert_int_equal(pprof_encode(&d, sets, vc, vn, 1, &out), 0);
	int nfunc = 0, nloc = 0, nmap = 0, lines_10 = 0, addr_ok = 0, bid = 0, bid_str = 0;
	struct pb b = {(const unsigned char *)buf_head(&out),
		       (const unsigned char *)buf_head(&out) + buf_used(&out)};
	while (b.p < b.end) {
		uint64_t key = pb_varint(&b);
		if ((key & 7) == 0) {
			pb_varint(&b);
			continue;
		}
		uint64_t len = pb_varint(&b);
		struct pb sub = {b.p, b.p + len};
		int field = (int)(key >> 3);
		if (field == 6 && len == 8 && !memcmp(b.p, "0123abcd", 8))
			bid_str = 1;
		if (field == 5)
			nfunc++;
		if (field == 3) {
			nmap++;
			while (sub.p < sub.end) {
				uint64_t k = pb_varint(&sub), v = pb_varint(&sub);
				if ((k >> 3) == 6 && v)
					bid = 1;
				if ((k >> 3) == 2)
					assert_int_equal(v, 0x400000);
			}
		}
		if (field == 4) {
			nloc++;
			while (sub.p < sub.end) {
				uint64_t k = pb_varint(&sub);
				if ((k & 7) == 0) {
					uint64_t v = pb_varint(&sub);
					addr_ok += (k >> 3) == 3 && (v == 0x401005 || v == 0x401100 ||
								      v == 0x401108);
					continue;
				}
				uint64_t l = pb_varint(&sub);
				struct pb line = {sub.p, sub.p + l};
				while (line.p < line.end) {
					uint64_t lk = pb_varint(&line), lv = pb_varint(&line);
					lines_10 += (lk >> 3) == 2 && lv == 10;
				}
				sub.p += l;
			}
		}
		b.p += len;
	}
	assert_int_equal(nmap, 1);
	assert_true(bid && bid_str);
	assert_int_equal(nloc, 4);   /* comm (name only) + 3 addresses */
	assert_int_equal(nfunc, 3);  /* comm, main, f (one function for two lines) */
	assert_int_equal(addr_ok, 3);
	assert_int_equal(lines_10, 1);
	buf_free(&out);
	folded_release(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_merge), cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_functions),   cmocka_unit_test(test_svg),
		cmocka_unit_test(test_svg_diff),    cmocka_unit_test(test_svg_diff_per_request),    cmocka_unit_test(test_pprof),
		cmocka_unit_test(test_pprof_loctab),
		cmocka_unit_test(test_frame_escape), cmocka_unit_test(test_svg_hostile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
