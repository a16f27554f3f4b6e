#include "report/allocreport.h"

#include <stdio.h>
#include <string.h>

#include "lab/record.h"
#include "report/svg.h"

static const int cols[] = {RECORD_M_CPU_US_PER_REQUEST, RECORD_M_ALLOC_CALLS_PER_REQUEST,
			   RECORD_M_ALLOC_BYTES_PER_REQUEST};
#define NCOLS ((int)(sizeof cols / sizeof cols[0]))

/* The first "alloc" object among cell i's records (NULL: none). */
static const json_t *cell_alloc(const struct trials *t, int i)
{
	for (int r = 0; r < t->nrec; r++) {
		const json_t *a = json_object_get(t->rec[r].json, "alloc");
		if (t->rec_cell && t->rec_cell[r] == i && json_is_object(a))
			return a;
	}
	return NULL;
}

/* "12.4 [11.9, 13.1]" (n < 6: "12.4 [11.9, 13.1] n=3: range"), or "n/a" */
static void fmt_median(struct buf *b, const struct trials_stat *st)
{
	char m[64], lo[64], hi[64];
	if (!st->n) {
		buf_appendf(b, "n/a");
		return;
	}
	buf_appendf(b, "%s [%s, %s]", svg_fmt_num(st->median, m, sizeof m),
		    svg_fmt_num(st->ci_lo, lo, sizeof lo), svg_fmt_num(st->ci_hi, hi, sizeof hi));
	if (!st->ci_reached)
		buf_appendf(b, " n=%d: range", st->n);
}

/* one row's cells as plain text: params..., the figures, the mode or why none */
static int row(const struct trials *t, int i, struct buf *cell[], int max)
{
	const struct trials_cell *c = &t->cells[i];
	int n = 0;
	for (int k = 0; k < t->npkeys && n < max; k++) {
		const char *v = trials_cell_param(c, t->pkeys[k]);
		buf_appendf(cell[n++], "%s", v ? v : "");
	}
	const json_t *a = cell_alloc(t, i);
	const char *why = json_string_value(json_object_get(a, "unavailable"));
	const char *mode = json_string_value(json_object_get(a, "mode"));
	for (int j = 0; j < NCOLS && n < max; j++) {
		if (j && why && !c->st[cols[j]].n)
			buf_appendf(cell[n++], "n/a");
		else
			fmt_median(cell[n++], &c->st[cols[j]]);
	}
	const char *note = json_string_value(json_object_get(a, "note"));
	if (n < max)
		buf_appendf(cell[n++], "%s%s%s%s%s", mode ? mode : "", why ? ": n/a, " : "",
			    why ? why : "", note ? ": " : "", note ? note : "");
	return n;
}

static int have_alloc(const struct trials *t)
{
	for (int r = 0; r < t->nrec; r++)
		if (json_is_object(json_object_get(t->rec[r].json, "alloc")))
			return 1;
	return 0;
}

static const char *intro =
	"the server's calls to malloc & co. and the bytes it requested over each trial's window, "
	"per request (libctxlab-alloc.so preloaded; exact counters; the Go peer, static: its "
	"runtime's heap allocations instead; the preload adds to the CPU figures: docs/metrics.md, \"Allocations per request\"); median [95% CI] over the ok "
	"trials, the range when n < 6";

#define MAXC 40

int allocreport_md(const struct trials *t, struct buf *out)
{
	if (!have_alloc(t) || t->npkeys + NCOLS + 1 > MAXC)
		return 0;
	buf_appendf(out, "\n## Allocations per request\n\n%s.\n\n|", intro);
	for (int k = 0; k < t->npkeys; k++)
		buf_appendf(out, " %s |", t->pkeys[k]);
	for (int j = 0; j < NCOLS; j++) {
		const char *u = record_metrics[cols[j]].unit;
		buf_appendf(out, " %s%s%s%s |", record_metrics[cols[j]].label, u[0] ? " (" : "", u,
			    u[0] ? ")" : "");
	}
	buf_appendf(out, " interposer |\n|");
	for (int k = 0; k < t->npkeys + NCOLS + 1; k++)
		buf_appendf(out, "---|");
	buf_appendf(out, "\n");
	int rows = 0;
	for (int i = 0; i < t->ncells; i++) {
		if (!cell_alloc(t, i))
			continue;
		struct buf cb[MAXC];
		struct buf *cp[MAXC];
		for (int k = 0; k < MAXC; k++)
			cb[k] = (struct buf)BUF_INIT, cp[k] = &cb[k];
		int n = row(t, i, cp, MAXC);
		buf_appendf(out, "|");
		for (int k = 0; k < n; k++) {
			buf_append(&cb[k], "", 1);
			/* a '|' would split the Markdown cell */
			for (char *s = buf_head(&cb[k]); s && *s; s++)
				if (*s == '|')
					*s = '/';
			buf_appendf(out, " %s |", buf_head(&cb[k]) ? buf_head(&cb[k]) : "");
		}
		buf_appendf(out, "\n");
		for (int k = 0; k < MAXC; k++)
			buf_free(&cb[k]);
		rows++;
	}
	return rows;
}

int allocreport_html(const struct trials *t, struct buf *out)
{
	if (!have_alloc(t) || t->npkeys + NCOLS + 1 > MAXC)
		return 0;
	buf_appendf(out, "<h2>Allocations per request</h2>\n<p>");
	svg_escape(out, intro);
	buf_appendf(out, ".</p>\n<table id=\"alloc\">\n<tr>");
	for (int k = 0; k < t->npkeys; k++) {
		buf_appendf(out, "<th>");
		svg_escape(out, t->pkeys[k]);
		buf_appendf(out, "</th>");
	}
	for (int j = 0; j < NCOLS; j++) {
		const char *u = record_metrics[cols[j]].unit;
		buf_appendf(out, "<th>%s%s%s%s median [95%% CI]</th>", record_metrics[cols[j]].label,
			    u[0] ? " (" : "", u, u[0] ? ")" : "");
	}
	buf_appendf(out, "<th>interposer</th></tr>\n");
	int rows = 0;
	for (int i = 0; i < t->ncells; i++) {
		if (!cell_alloc(t, i))
			continue;
		struct buf cb[MAXC];
		struct buf *cp[MAXC];
		for (int k = 0; k < MAXC; k++)
			cb[k] = (struct buf)BUF_INIT, cp[k] = &cb[k];
		int n = row(t, i, cp, MAXC);
		buf_appendf(out, "<tr>");
		for (int k = 0; k < n; k++) {
			buf_append(&cb[k], "", 1);
			buf_appendf(out, "<td%s>", k < t->npkeys ? " class=\"p\"" : "");
			svg_escape(out, buf_head(&cb[k]) ? buf_head(&cb[k]) : "");
			buf_appendf(out, "</td>");
		}
		buf_appendf(out, "</tr>\n");
		for (int k = 0; k < MAXC; k++)
			buf_free(&cb[k]);
		rows++;
	}
	buf_appendf(out, "</table>\n");
	return rows;
}
