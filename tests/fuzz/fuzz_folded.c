/* libFuzzer target for the folded-stack reader (src/profile/folded.c), which reads files that
 * others write (`ctxlab flame FILE`, stackcollapse-*.pl output). The input is the folded text
 * (any bytes). Invariants: folded_parse returns the merged line count or -EINVAL with
 * "line N: ..." in err; written back (folded_write) and parsed again, the same entries and the
 * same total; the index finds every entry after sorting. Per-function totals and the pprof
 * encoding run on every parsed set. No file is touched. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "profile/folded.h"
#include "profile/pprof.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct folded f, g;
	char err[256];
	folded_init(&f);
	folded_init(&g);
	int r = folded_parse(&f, (const char *)data, size, err, sizeof err);
	if (r < 0) {
		if (r != -EINVAL || strncmp(err, "line ", 5))
			abort();
		goto out;
	}
	size_t nonzero = 0;
	for (size_t i = 0; i < f.n; i++)
		nonzero += f.e[i].count != 0;
	char *mem = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&mem, &len);
	if (!m || folded_write(&f, m) != 0)
		abort();
	fclose(m);
	if (folded_parse(&g, mem, len, err, sizeof err) < 0 || g.n != nonzero || g.total != f.total)
		abort();
	free(mem);
	folded_sort(&f);
	size_t n0 = f.n;
	for (size_t i = 0; i < n0; i++) /* the index still finds every entry after sorting */
		if (folded_add(&f, f.e[i].stack, strlen(f.e[i].stack), 0, 0) || f.n != n0)
			abort();
	size_t nfn;
	struct folded_fn *fns = folded_functions(&f, size && (data[0] & 1), &nfn);
	folded_fns_free(fns, nfn);
	struct pprof_desc d = {.nvalues = 1, .type = {"samples"}, .unit = {"count"}};
	const struct folded *sets[1] = {&f};
	int vc[1] = {0}, vn[1] = {-1};
	struct buf pb = BUF_INIT;
	pprof_encode(&d, sets, vc, vn, 1, &pb);
	buf_free(&pb);
out:
	folded_release(&f);
	folded_release(&g);
	return 0;
}
