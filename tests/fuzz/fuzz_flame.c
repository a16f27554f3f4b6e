/* libFuzzer target for the flame graph renderer (src/profile/flamesvg.c) on folded stacks that
 * others wrote. The input is split at its first NUL byte, or else in the middle of a line
 * (chosen from its first byte): A and B; B is rendered as a flame graph and A, B as a
 * differential one, with a width and minimum frame width taken from the input. Invariants:
 * rendering returns 0 or -ENODATA (nothing to draw); the SVG is well-formed UTF-8 with no
 * control characters but tab and newline, starts with the XML declaration and ends with
 * "</svg>\n"; no stack is drawn deeper than FLAMESVG_MAX_DEPTH + 1 (a 400,000-frame line
 * overflowed the C stack, issue 9). The SVG goes to memory, never to a file. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile/flamesvg.h"
#include "profile/folded.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_svg(const char *s, size_t n)
{
	if (n < 40 || strncmp(s, "<?xml ", 6) || strcmp(s + n - 7, "</svg>\n") || strlen(s) != n)
		abort();
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	while (p < end) {
		unsigned char c = *p;
		int k = c < 0x80 ? 0 : c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2
			: c >= 0xf0 && c <= 0xf4 ? 3 : -1;
		if (k < 0 || (c < 0x20 && c != '\n' && c != '\t'))
			abort();
		if (end - p <= k)
			abort();
		for (int i = 1; i <= k; i++)
			if ((p[i] & 0xc0) != 0x80)
				abort();
		if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f) ||
		    (c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))
			abort(); /* overlong, surrogate, beyond U+10FFFF */
		p += k + 1;
	}
	/* depth: data-d="N" never above the limit + the marker */
	for (const char *q = s; (q = strstr(q, "data-d=\"")); q += 8)
		if (atoi(q + 8) > FLAMESVG_MAX_DEPTH + 1)
			abort();
}

static void render(const struct folded *a, const struct folded *b, struct flamesvg_opts *o)
{
	char *mem = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&mem, &len);
	if (!m)
		abort();
	int r = a ? flamesvg_write_diff(a, b, o, m) : flamesvg_write(b, o, m);
	fclose(m);
	if (r == 0)
		check_svg(mem, len);
	else if (r != -ENODATA)
		abort();
	free(mem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	const char *in = (const char *)data + 1;
	size_t n = size - 1, split;
	const char *z = memchr(in, 0, n);
	if (z) {
		split = (size_t)(z - in);
	} else {
		split = n * data[0] / 255;
		const char *nl = memchr(in + split, '\n', n - split);
		split = nl ? (size_t)(nl - in) : n;
	}
	struct folded a, b;
	char err[256];
	folded_init(&a);
	folded_init(&b);
	if (folded_parse(&a, in, split, err, sizeof err) < 0)
		folded_release(&a);
	size_t boff = split + (split < n);
	if (folded_parse(&b, in + boff, n - boff, err, sizeof err) < 0)
		goto out;
	struct flamesvg_opts o = {.title = "fuzz \xc3\xa9", .subtitle = in[0] == '#' ? in : NULL,
				  .width_px = 100 + (data[0] & 0x3f) * 30,
				  .min_width_px = (data[0] >> 6) * 0.5, .normalize = data[0] & 1};
	char sub[64];
	if (o.subtitle) {
		snprintf(sub, sizeof sub, "%.*s", (int)(split < 63 ? split : 63), in);
		o.subtitle = sub;
	}
	render(NULL, &b, &o);
	render(&a, &b, &o);
out:
	folded_release(&a);
	folded_release(&b);
	return 0;
}
