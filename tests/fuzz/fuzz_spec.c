/* libFuzzer target for the experiment spec reader (src/lab/spec.c: INI via libinih, values,
 * axes, per-protocol [load.PROTO] sections, the matrix bound). The input is the spec text; its
 * first byte picks strict or SPEC_LENIENT parsing. On success the matrix is expanded, printed
 * (into memory), shortened with spec_quick and given cell ids, as `ctxlab run --dry-run` and
 * the runner do. Invariants: a parse returns 0, -1 or -E2BIG, with a message "FILE:LINE: ..."
 * on failure; the cells are at most SPEC_MAX_CELLS and repeat x cells at most SPEC_MAX_TRIALS;
 * every cell id is a safe file name, unique among the cells. The engine catalog is fixed
 * (what `ctxlab serve --list-engines` prints), so the target is deterministic. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lab/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char catalog[] = "fork sink echo http chat work\n"
			      "thread sink echo http chat work\n"
			      "epoll sink echo http chat work\n"
			      "coro sink echo http chat work\n"
			      "go sink echo http\n"
			      "nginx http\n";

static void check_ids(const struct spec_cell *cells, int n)
{
	if (n > 64)
		n = 64; /* spec_cell_id is quadratic: the first cells show the same paths */
	char (*ids)[256] = malloc((size_t)(n ? n : 1) * sizeof *ids);
	if (!ids)
		abort();
	for (int i = 0; i < n; i++) {
		spec_cell_id(cells, n, i, ids[i], sizeof ids[i]);
		if (!ids[i][0] || !strcmp(ids[i], ".") || !strcmp(ids[i], ".."))
			abort();
		for (const char *p = ids[i]; *p; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			      (*p >= '0' && *p <= '9') || strchr("._-", *p)))
				abort();
		for (int j = 0; j < i; j++)
			if (!strcmp(ids[i], ids[j]))
				abort();
	}
	free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct spec_catalog cat;
	static int have_cat;
	if (!have_cat) {
		if (spec_catalog_parse(&cat, catalog) != 6)
			abort();
		have_cat = 1;
	}
	if (size == 0)
		return 0;
	int flags = data[0] & 1 ? SPEC_LENIENT : 0;
	char *text = malloc(size);
	if (!text)
		abort();
	memcpy(text, data + 1, size - 1);
	text[size - 1] = 0;
	struct spec *s = calloc(1, sizeof *s); /* large: not on the stack */
	char err[1024];
	err[0] = 0;
	int r = spec_parse_text(s, text, "fuzz.ini", &cat, flags, err, sizeof err);
	if (r < 0) {
		if ((r != -1 && r != -E2BIG) || strncmp(err, "fuzz.ini:", 9))
			abort();
		goto out;
	}
	if (r != 0)
		abort();
	struct spec_cell *cells;
	int n = spec_cells(s, &cells);
	if (n < 0 || n > SPEC_MAX_CELLS || (int64_t)n * s->repeat > SPEC_MAX_TRIALS || s->repeat < 1)
		abort();
	check_ids(cells, n);
	free(cells);
	char *mem = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&mem, &len);
	if (!m)
		abort();
	spec_print_matrix(s, m);
	fclose(m);
	/* the matrix line: the counts as computed, never negative (an int once wrapped) */
	const char *ml = NULL; /* the last one: the question is free text */
	for (const char *q = mem; (q = strstr(q, "\nmatrix: ")); q++)
		ml = q;
	long long mc, mr, mt;
	if (!ml || sscanf(ml, "\nmatrix: %lld cells x %lld repeats = %lld trials", &mc, &mr, &mt) != 3 ||
	    mc != n || mr != s->repeat || mt != mc * mr)
		abort();
	free(mem);
	spec_quick(s);
	n = spec_cells(s, &cells);
	check_ids(cells, n);
	free(cells);
	spec_release(s);
out:
	free(s);
	free(text);
	return 0;
}
