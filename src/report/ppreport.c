#include "report/ppreport.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/svg.h"

int ppreport_is(const struct trials *t)
{
	for (int r = 0; r < t->nrec; r++) {
		const char *k = json_string_value(json_object_get(t->rec[r].json, "kind"));
		if (k && !strcmp(k, "pingpong"))
			return 1;
	}
	return 0;
}

static void cell_flags2(const struct trials *t, int ci, int *switched, int *blocked,
			int *checked, int *disturbed);

/* Trials of cell ci: how many had the no-switch check fail, how many system-CPU
 * interference; *checked = how many ran the check. */
static void cell_flags(const struct trials *t, int ci, int *switched, int *checked,
		       int *disturbed)
{
	int blocked;
	cell_flags2(t, ci, switched, &blocked, checked, disturbed);
}

static void cell_flags2(const struct trials *t, int ci, int *switched, int *blocked,
			int *checked, int *disturbed)
{
	*switched = *blocked = *checked = *disturbed = 0;
	for (int r = 0; r < t->nrec; r++) {
		if (t->rec_cell[r] != ci || !t->rec[r].ok)
			continue;
		const json_t *j = t->rec[r].json;
		const char *sc = json_string_value(json_object_get(j, "switch_check"));
		if (sc) {
			(*checked)++;
			*switched += strcmp(sc, "ok") != 0;
			*blocked += !strcmp(sc, "blocked");
		}
		*disturbed += json_is_true(record_path(j, "system_cpu.interference"));
	}
}

/* The cell whose parameters equal c's except mode = mode; -1 when none. */
static int twin(const struct trials *t, const struct trials_cell *c, const char *mode)
{
	for (int i = 0; i < t->ncells; i++) {
		const struct trials_cell *d = &t->cells[i];
		const char *m = trials_cell_param(d, "mode");
		if (!m || strcmp(m, mode) || d->nparams != c->nparams)
			continue;
		int same = 1;
		for (int k = 0; k < c->nparams && same; k++) {
			if (!strcmp(c->pk[k], "mode"))
				continue;
			const char *v = trials_cell_param(d, c->pk[k]);
			same = v && !strcmp(v, c->pv[k]);
		}
		if (same)
			return i;
	}
	return -1;
}

/* "cpus=1 pin=same pairs=4": the parameters other than mode */
static void others(const struct trials_cell *c, struct buf *b)
{
	int first = 1;
	for (int k = 0; k < c->nparams; k++) {
		if (!strcmp(c->pk[k], "mode"))
			continue;
		buf_appendf(b, "%s%s=%s", first ? "" : " ", c->pk[k], c->pv[k]);
		first = 0;
	}
}

static const char *const mode_pairs[][3] = {
	{"coro-unix", "unix-thread", "async (coro-unix) vs blocking (unix-thread)"},
	{"unix-inline", "unix-thread", "the same syscalls without switches (unix-inline) vs "
				       "blocking (unix-thread)"},
	{"coro", "futex-thread", "a user-space switch (coro) vs a kernel one (futex-thread)"},
};

int ppreport_findings(const struct trials *t, struct buf *out)
{
	int count = 0;
	const int m = RECORD_M_PP_NS_PER_RT;
	for (size_t p = 0; p < sizeof mode_pairs / sizeof mode_pairs[0]; p++) {
		for (int i = 0; i < t->ncells; i++) {
			const struct trials_cell *c = &t->cells[i];
			const char *mode = trials_cell_param(c, "mode");
			if (!mode || strcmp(mode, mode_pairs[p][0]))
				continue;
			int b = twin(t, c, mode_pairs[p][1]);
			if (b < 0 || !c->st[m].n || !t->cells[b].st[m].n)
				continue;
			char x[64], y[64], lo[64], hi[64];
			buf_appendf(out, "%s [", mode_pairs[p][2]);
			others(c, out);
			buf_appendf(out, "]: %s ns vs %s ns per round trip, ",
				    svg_fmt_num(c->st[m].median, x, sizeof x),
				    svg_fmt_num(t->cells[b].st[m].median, y, sizeof y));
			struct trials_ratio r;
			int rc = trials_ratio_ci(t, b, i, m, &r);
			if (rc == 0 && r.reached)
				buf_appendf(out, "%.2f× [%s, %s] (95%% CI)", r.ratio,
					    svg_fmt_num(r.lo, lo, sizeof lo),
					    svg_fmt_num(r.hi, hi, sizeof hi));
			else if (rc == 0)
				buf_appendf(out, "%.2f× (n=%d vs %d: too few trials for a 95%% CI)",
					    r.ratio, r.nb, r.na);
			else
				buf_appendf(out, "%.2f× (no CI)",
					    c->st[m].median / t->cells[b].st[m].median);
			/* CPU per round trip: not inflated by waiting behind other work */
			const int mc = RECORD_M_PP_CPU_NS_PER_RT;
			if (c->st[mc].n && t->cells[b].st[mc].n) {
				buf_appendf(out, "; CPU per round trip %s ns vs %s ns, ",
					    svg_fmt_num(c->st[mc].median, x, sizeof x),
					    svg_fmt_num(t->cells[b].st[mc].median, y, sizeof y));
				rc = trials_ratio_ci(t, b, i, mc, &r);
				if (rc == 0 && r.reached)
					buf_appendf(out, "%.2f× [%s, %s]", r.ratio,
						    svg_fmt_num(r.lo, lo, sizeof lo),
						    svg_fmt_num(r.hi, hi, sizeof hi));
				else if (rc == 0)
					buf_appendf(out, "%.2f× (too few trials for a CI)", r.ratio);
				else
					buf_appendf(out, "%.2f× (no CI)", c->st[mc].median /
								t->cells[b].st[mc].median);
			}
			int sw, ck, dis;
			cell_flags(t, i, &sw, &ck, &dis);
			if (sw)
				buf_appendf(out, "; %s failed its no-switch check in %d of %d trials",
					    mode_pairs[p][0], sw, ck);
			buf_appendf(out, ".\n");
			count++;
		}
	}
	int cells_sw = 0, trials_sw = 0, trials_dis = 0;
	const char *first = NULL;
	for (int i = 0; i < t->ncells; i++) {
		int sw, ck, dis;
		cell_flags(t, i, &sw, &ck, &dis);
		if (sw && !first)
			first = t->cells[i].key;
		cells_sw += sw > 0;
		trials_sw += sw;
		trials_dis += dis;
	}
	if (cells_sw) {
		buf_appendf(out, "no-switch check FAILED in %d cell(s) (%d trials; e.g. %s): their "
				 "in-process mode made a kernel switch per %.0f round trips or more "
				 "(blocked: voluntary switches, it waited in the kernel; preempted: "
				 "involuntary ones, other work took its CPU), so their time is not "
				 "switch-free (flagged in the table).\n",
			    cells_sw, trials_sw, first, 1 / RECORD_PP_SWITCH_MAX);
		count++;
	}
	if (trials_dis) {
		buf_appendf(out, "%d trial(s) ran while something else took their CPUs "
				 "(system_cpu.interference; flagged in the table): rerun on a quiet "
				 "machine before trusting them.\n", trials_dis);
		count++;
	}
	return count;
}

static const int cols[] = {RECORD_M_PP_NS_PER_RT, RECORD_M_PP_CPU_NS_PER_RT,
			   RECORD_M_PP_VCSW_PER_RT,
			   RECORD_M_PP_IVCSW_PER_RT, RECORD_M_PP_USER_NS_PER_RT,
			   RECORD_M_PP_SYS_NS_PER_RT};
#define NCOLS ((int)(sizeof cols / sizeof cols[0]))

static void cell_text(struct buf *out, const char *s, int html, const char *cls)
{
	if (html) {
		buf_appendf(out, "<td%s%s%s>", cls ? " class=\"" : "", cls ? cls : "", cls ? "\"" : "");
		svg_escape(out, s);
		buf_appendf(out, "</td>");
	} else {
		buf_appendf(out, " %s |", s);
	}
}

void ppreport_table(const struct trials *t, struct buf *out, int html)
{
	buf_appendf(out, html ? "<table id=\"pingpong\">\n<tr>" : "|");
	for (int k = 0; k < t->npkeys; k++) {
		if (html) {
			buf_appendf(out, "<th>");
			svg_escape(out, t->pkeys[k]);
			buf_appendf(out, "</th>");
		} else {
			buf_appendf(out, " %s |", t->pkeys[k]);
		}
	}
	for (int i = 0; i < NCOLS; i++) {
		const struct record_metric_info *mi = &record_metrics[cols[i]];
		buf_appendf(out, html ? "<th>%s%s%s%s median [95%% CI]</th>"
				      : " %s%s%s%s median [95%% CI] |",
			    mi->label, mi->unit[0] ? " (" : "", mi->unit, mi->unit[0] ? ")" : "");
	}
	buf_appendf(out, html ? "<th>no-switch check</th><th>CPUs disturbed</th><th>ok/trials</th>"
				"</tr>\n"
			      : " no-switch check | CPUs disturbed | ok/trials |\n|");
	if (!html) {
		for (int k = 0; k < t->npkeys + NCOLS + 3; k++)
			buf_appendf(out, "---|");
		buf_appendf(out, "\n");
	}
	for (int i = 0; i < t->ncells; i++) {
		const struct trials_cell *c = &t->cells[i];
		buf_appendf(out, html ? "<tr>" : "|");
		for (int k = 0; k < t->npkeys; k++) {
			const char *v = trials_cell_param(c, t->pkeys[k]);
			cell_text(out, v ? v : "", html, "p");
		}
		for (int j = 0; j < NCOLS; j++) {
			const struct trials_stat *st = &c->st[cols[j]];
			char a[64], lo[64], hi[64], txt[256];
			if (!st->n)
				snprintf(txt, sizeof txt, "n/a");
			else
				snprintf(txt, sizeof txt, "%s [%s, %s]%s",
					 svg_fmt_num(st->median, a, sizeof a),
					 svg_fmt_num(st->ci_lo, lo, sizeof lo),
					 svg_fmt_num(st->ci_hi, hi, sizeof hi),
					 st->ci_reached ? "" : " (range)");
			cell_text(out, txt, html, "ci");
		}
		int sw, bl, ck, dis;
		cell_flags2(t, i, &sw, &bl, &ck, &dis);
		char txt[96];
		if (!ck)
			snprintf(txt, sizeof txt, "n/a (switches by design)");
		else if (sw)
			snprintf(txt, sizeof txt, "FAILED in %d of %d (blocked %d, preempted %d)", sw,
				 ck, bl, sw - bl);
		else
			snprintf(txt, sizeof txt, "ok (%d of %d)", ck, ck);
		cell_text(out, txt, html, sw ? "warn" : NULL);
		snprintf(txt, sizeof txt, dis ? "DISTURBED in %d of %d" : "no (%d of %d)", dis, c->nok);
		cell_text(out, txt, html, dis ? "warn" : NULL);
		snprintf(txt, sizeof txt, "%d/%d", c->nok, c->ntrials);
		cell_text(out, txt, html, c->nfailed ? "warn" : NULL);
		buf_appendf(out, html ? "</tr>\n" : "\n");
	}
	if (html)
		buf_appendf(out, "</table>\n");
}

/* ---- charts: time per round trip over pairs, one line per mode, one chart per panel ---- */

static int add_str(const char **v, int n, int max, const char *s)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(v[i], s))
			return n;
	if (n < max)
		v[n++] = s;
	return n;
}

/* the cell's panel: every parameter but mode and pairs */
static void panel_of(const struct trials_cell *c, char *out, size_t len)
{
	size_t o = 0;
	out[0] = 0;
	for (int k = 0; k < c->nparams && o < len; k++) {
		if (!strcmp(c->pk[k], "mode") || !strcmp(c->pk[k], "pairs"))
			continue;
		o += (size_t)snprintf(out + o, len - o, "%s%s=%s", o ? " " : "", c->pk[k], c->pv[k]);
	}
}

int ppreport_charts(const struct trials *t, struct buf *out)
{
	enum { MAXV = 32 };
	const char *modes[MAXV], *pairs[MAXV];
	static char panels[MAXV][256];
	int nm = 0, np = 0, npan = 0, drawn = 0;
	for (int i = 0; i < t->ncells; i++) {
		const struct trials_cell *c = &t->cells[i];
		const char *m = trials_cell_param(c, "mode"), *p = trials_cell_param(c, "pairs");
		if (!m || !p)
			continue;
		nm = add_str(modes, nm, MAXV, m);
		np = add_str(pairs, np, MAXV, p);
		char key[256];
		panel_of(c, key, sizeof key);
		int found = 0;
		for (int k = 0; k < npan && !found; k++)
			found = !strcmp(panels[k], key);
		if (!found && npan < MAXV)
			snprintf(panels[npan++], sizeof panels[0], "%s", key);
	}
	/* pairs in numeric order */
	for (int a = 1; a < np; a++)
		for (int b = a; b > 0 && atof(pairs[b]) < atof(pairs[b - 1]); b--) {
			const char *x = pairs[b];
			pairs[b] = pairs[b - 1];
			pairs[b - 1] = x;
		}
	if (!nm || !np)
		return 0;
	const int m = RECORD_M_PP_NS_PER_RT;
	buf_appendf(out, "<h2>Time per round trip</h2>\n<p>Median over the repeats of each cell "
			 "(elapsed time of the timed run ÷ round trips, all pairs); error bars: the "
			 "95%% CI of the median (the range when n &lt; 6). One chart per placement and "
			 "working set; a cell whose no-switch check failed says so in its hover text."
			 "</p>\n<div class=\"charts\">\n");
	for (int pi = 0; pi < npan; pi++) {
		struct svg_point *pts = calloc(MAXV * MAXV, sizeof *pts);
		char (*tips)[200] = calloc(MAXV * MAXV, sizeof *tips);
		if (!pts || !tips) {
			free(pts);
			free(tips);
			continue;
		}
		for (int i = 0; i < t->ncells; i++) {
			const struct trials_cell *c = &t->cells[i];
			const char *mo = trials_cell_param(c, "mode"), *pa = trials_cell_param(c, "pairs");
			char key[256];
			panel_of(c, key, sizeof key);
			if (!mo || !pa || strcmp(key, panels[pi]) || !c->st[m].n)
				continue;
			int si = -1, xi = -1;
			for (int k = 0; k < nm; k++)
				si = !strcmp(modes[k], mo) ? k : si;
			for (int k = 0; k < np; k++)
				xi = !strcmp(pairs[k], pa) ? k : xi;
			if (si < 0 || xi < 0)
				continue;
			int sw, bl, ck, dis;
			cell_flags2(t, i, &sw, &bl, &ck, &dis);
			char a[64], lo[64], hi[64];
			snprintf(tips[si * np + xi], sizeof tips[0], "%s, %s pairs: %s ns [%s, %s], n=%d%s%s",
				 mo, pa, svg_fmt_num(c->st[m].median, a, sizeof a),
				 svg_fmt_num(c->st[m].ci_lo, lo, sizeof lo),
				 svg_fmt_num(c->st[m].ci_hi, hi, sizeof hi), c->st[m].n,
				 sw ? "; no-switch check FAILED" : "", dis ? "; CPUs disturbed" : "");
			pts[si * np + xi] = (struct svg_point){1, c->st[m].median, c->st[m].ci_lo,
							      c->st[m].ci_hi, tips[si * np + xi]};
		}
		char id[64], title[320];
		snprintf(id, sizeof id, "pingpong-%d", pi);
		snprintf(title, sizeof title, "time per round trip — %s", panels[pi]);
		struct svg_chart ch = {id, title, "ns per round trip", "pairs", np, pairs, nm, modes,
				       pts};
		buf_appendf(out, "<figure data-metric=\"pp_ns_per_round_trip\">\n");
		drawn += svg_line_chart(out, &ch) > 0;
		buf_appendf(out, "</figure>\n");
		free(pts);
		free(tips);
	}
	buf_appendf(out, "</div>\n");
	return drawn;
}
