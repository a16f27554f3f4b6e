/* libFuzzer target for the readers of a results directory that someone else may hand you:
 * env.json and trials.jsonl (src/report/trials.c) and everything the report and compare
 * compute from them (src/report/report.c, compare.c): findings, the CSV, Markdown and HTML
 * reports. The input's first line is env.json, the rest trials.jsonl. Nothing is read from or
 * written to disk: the directory is a path that does not exist (flame links are checked
 * against it and found missing). Invariants: no crash or leak; the HTML links nothing but
 * relative flame/... paths (an href never holds ':'). A trials.jsonl with 100 engines
 * overflowed a stack array in the findings (issue 9). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "report/compare.h"
#include "report/report.h"
#include "report/trials.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_links(const struct buf *html)
{
	const char *p = html->data, *end = html->data + html->len;
	while (p && (p = memmem(p, (size_t)(end - p), "href=\"", 6))) {
		p += 6;
		const char *q = memchr(p, '"', (size_t)(end - p));
		if (!q || memchr(p, ':', (size_t)(q - p)))
			abort();
		p = q;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t envlen = nl ? (size_t)(nl - data) : size;
	char *jsonl = malloc(size + 1);
	if (!jsonl)
		abort();
	size_t jl = nl ? size - envlen - 1 : 0;
	memcpy(jsonl, nl ? (const char *)nl + 1 : "", jl);
	jsonl[jl] = 0;
	struct trials t;
	char err[256];
	if (trials_load_text(&t, jsonl, err, sizeof err) < 0)
		abort();
	json_error_t je;
	t.env = json_loadb((const char *)data, envlen, 0, &je); /* NULL when not JSON: absent */
	t.dir = strdup("/nonexistent/ctxlab-fuzz");
	if (!t.dir)
		abort();
	struct buf out = BUF_INIT;
	report_findings(&t, &out);
	buf_clear(&out);
	report_csv(&t, &out);
	buf_clear(&out);
	report_md(&t, &out);
	buf_clear(&out);
	report_html(&t, &out);
	check_links(&out);
	buf_clear(&out);
	/* compare: the set against itself, and two engines of it */
	compare_trials(&t, "a", &t, "b", NULL, NULL, &out, err, sizeof err);
	buf_clear(&out);
	if (t.ncells >= 2) {
		const char *ea = trials_cell_param(&t.cells[0], "engine");
		const char *eb = trials_cell_param(&t.cells[t.ncells - 1], "engine");
		if (ea && eb)
			compare_trials(&t, "dir", &t, "dir", ea, eb, &out, err, sizeof err);
	}
	buf_free(&out);
	trials_release(&t);
	free(jsonl);
	return 0;
}
