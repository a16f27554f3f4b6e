/* ctxlab pingpong: context-switch micro-benchmarks. Option parsing and output only: the
 * measuring is src/bench/pingpong.c. */
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bench/pingpong.h"
#include "cmd/cmd.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/outfile.h"
#include "core/units.h"

static const char usage[] =
	"usage: ctxlab pingpong [options]\n"
	"\n"
	"Context-switch micro-benchmarks: two sides hand a message back and forth, through the\n"
	"kernel (processes, threads: pipes, a socketpair, a futex) or in user space (coroutines).\n"
	"Per mode: ns per round trip and per switch, context switches per round trip (getrusage:\n"
	"ground truth), CPU user/system per round trip. Figures are defined in docs/metrics.md.\n"
	"\n"
	"modes:\n"
	"  pipe-proc     two processes, two pipes, like 'perf bench sched pipe'\n"
	"  pipe-thread   two threads, two pipes\n"
	"  unix-thread   two threads, an AF_UNIX socketpair, blocking\n"
	"  unix-inline   one thread writes and reads both ends of a socketpair: the same syscalls\n"
	"                as unix-thread without any switch (the baseline)\n"
	"  futex-thread  two threads handing a token with futex wait/wake\n"
	"  coro          two coroutines handing a buffer over through a tiny run queue: the\n"
	"                waiting side switches straight to the peer (one user-space switch)\n"
	"  coro-unix     coroutines doing nonblocking socketpair ping-pong on an event loop: the\n"
	"                async version of unix-thread\n"
	"\n";

#define MAX_REPEAT 100

struct mode_out {
	enum pingpong_mode mode;
	uint64_t rounds;
	int n;
	struct pingpong_result r[MAX_REPEAT];
	double rt_ns[MAX_REPEAT];
	double mean, sd, min, max; /* ns per round trip */
	double vol, invol, usr, sys; /* per round trip, means over repeats */
	uint64_t would_block;
	uint64_t handoffs_direct, handoffs_via_loop; /* coro modes, summed over repeats */
};

struct popts {
	struct pingpong_opts po;
	int modes[PINGPONG_NMODES];
	int nmodes;
	uint64_t rounds, duration_ns;
	int repeat;
	const char *json;
	int quiet;
};

static int parse_modes(const char *list, struct popts *p, char *err, size_t errlen)
{
	if (!strcmp(list, "all")) {
		for (int i = 0; i < PINGPONG_NMODES; i++)
			p->modes[i] = i;
		p->nmodes = PINGPONG_NMODES;
		return 0;
	}
	p->nmodes = 0;
	const char *s = list;
	while (*s) {
		const char *e = strchr(s, ',');
		size_t len = e ? (size_t)(e - s) : strlen(s);
		char name[32];
		if (len == 0 || len >= sizeof name)
			return errbuf(err, errlen, "a list of modes like pipe-thread,coro or all");
		memcpy(name, s, len);
		name[len] = 0;
		int m = pingpong_mode_parse(name);
		if (m < 0)
			return errbuf(err, errlen, "unknown mode '%s' (use pipe-proc, pipe-thread, "
				      "unix-thread, unix-inline, futex-thread, coro, coro-unix or all)",
				      name);
		int dup = 0;
		for (int i = 0; i < p->nmodes; i++)
			dup |= p->modes[i] == m;
		if (!dup)
			p->modes[p->nmodes++] = m;
		s += len;
		if (*s == ',')
			s++;
	}
	if (!p->nmodes)
		return errbuf(err, errlen, "empty mode list (e.g. --mode pipe-thread,coro)");
	return 0;
}

static struct popts pp = {
	.po = {.pin = PINGPONG_PIN_SAME, .pairs = 1, .msg_bytes = 1, .stride_bytes = 64},
	.duration_ns = NS_PER_S,
	.repeat = 3,
};

static int opt_mode(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	return parse_modes(arg, o->value, err, errlen);
}

/* a count (size = 0) or a size in bytes within [lo, hi] */
static int ranged(int size, const char *arg, uint64_t lo, uint64_t hi, const char *why,
		  uint64_t *v, char *err, size_t errlen)
{
	int r = size ? units_parse_size_bytes(arg, v, err, errlen)
		     : units_parse_count(arg, v, err, errlen);
	if (r < 0)
		return -1;
	if (*v < lo || *v > hi)
		return errbuf(err, errlen, "%s", why);
	return 0;
}

#define RANGED_OPT(fn, size, lo, hi, why, type)                                               \
	static int fn(const struct opt *o, const char *arg, char *err, size_t errlen)          \
	{                                                                                      \
		uint64_t v;                                                                    \
		if (ranged((size), arg, (lo), (hi), (why), &v, err, errlen) < 0)               \
			return -1;                                                             \
		*(type *)o->value = (type)v;                                                   \
		return 0;                                                                      \
	}
RANGED_OPT(opt_rounds, 0, 1, UINT64_MAX, "at least 1", uint64_t)
RANGED_OPT(opt_pairs, 0, 1, PINGPONG_MAX_PAIRS, "1..256", int)
RANGED_OPT(opt_size, 1, 1, PINGPONG_MAX_MSG_BYTES, "1 byte..16MiB", size_t)
RANGED_OPT(opt_ws, 1, 0, 1ULL << 34, "at most 16GiB", size_t)
RANGED_OPT(opt_stride, 1, 1, UINT64_MAX, "at least 1 byte", size_t)
RANGED_OPT(opt_repeat, 0, 1, MAX_REPEAT, "1..100", int)
_Static_assert(PINGPONG_MAX_PAIRS == 256 && MAX_REPEAT == 100, "update the messages above");

static int opt_duration(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	if (units_parse_duration_ns(arg, o->value, err, errlen) < 0)
		return -1;
	if (*(uint64_t *)o->value < NS_PER_MS)
		return errbuf(err, errlen, "at least 1ms");
	return 0;
}

static int opt_pin(const struct opt *o, const char *arg, char *err, size_t errlen)
{
	int pin = pingpong_pin_parse(arg);
	if (pin < 0)
		return errbuf(err, errlen, "use same, split or none");
	*(enum pingpong_pin *)o->value = (enum pingpong_pin)pin;
	return 0;
}

static const struct opt options[] = {
	OPT_GROUP("options:"),
	OPT_CALLBACK('m', "mode", &pp, "LIST", "comma-separated modes, or all (default all)",
		     opt_mode),
	OPT_CALLBACK('n', "rounds", &pp.rounds, "N",
		     "round trips per pair per repeat (default: sized to --duration)", opt_rounds),
	OPT_CALLBACK('d', "duration", &pp.duration_ns, "DUR",
		     "target time of one repeat when -n is not given (default 1s)", opt_duration),
	OPT_CALLBACK(0, "pin", &pp.po.pin, "same|split|none",
		     "both sides on one CPU / on two CPUs / no affinity (default same)", opt_pin),
	OPT_CALLBACK(0, "pairs", &pp.po.pairs, "N",
		     "independent pairs running concurrently (default 1)", opt_pairs),
	OPT_CALLBACK(0, "size", &pp.po.msg_bytes, "BYTES", "message size (default 1)", opt_size),
	OPT_CALLBACK(0, "working-set", &pp.po.ws_bytes, "SIZE",
		     "each side touches SIZE bytes between messages (default 0)", opt_ws),
	OPT_CALLBACK(0, "stride", &pp.po.stride_bytes, "BYTES",
		     "touch every BYTES-th byte of the working set (default 64)", opt_stride),
	OPT_CALLBACK('r', "repeat", &pp.repeat, "R",
		     "measured repeats per mode (default 3): mean, stddev, min", opt_repeat),
	OPT_STRING(0, "json", &pp.json, "FILE|-",
		   "write the results as JSON (- = stdout, the table goes to stderr)"),
	OPT_FLAG('q', "quiet", &pp.quiet, "no table"),
	OPT_END(),
};

extern const struct cmd_info cmd_info_pingpong;

static int parse_args(int argc, char **argv, struct popts *p)
{
	char err[256];
	parse_modes("all", &pp, err, sizeof err);
	int n = cmd_parse_options(&cmd_info_pingpong, argc, argv, 0, NULL);
	if (n < 0)
		return -1;
	if (n > 0)
		return error("unexpected argument '%s' (see 'ctxlab pingpong --help')", argv[0]);
	log_set_quiet(pp.quiet); /* -q: info() says nothing */
	*p = pp;
	return 0;
}

static void summarize(struct mode_out *m)
{
	double sum = 0, vol = 0, invol = 0, usr = 0, sys = 0;
	m->min = INFINITY;
	m->max = 0;
	m->would_block = 0;
	m->handoffs_direct = m->handoffs_via_loop = 0;
	for (int i = 0; i < m->n; i++) {
		const struct pingpong_result *r = &m->r[i];
		double rt = (double)r->round_trips;
		m->rt_ns[i] = (double)r->elapsed_ns / rt;
		sum += m->rt_ns[i];
		m->min = fmin(m->min, m->rt_ns[i]);
		m->max = fmax(m->max, m->rt_ns[i]);
		vol += (double)r->ctxsw_vol / rt;
		invol += (double)r->ctxsw_invol / rt;
		usr += (double)r->user_ns / rt;
		sys += (double)r->sys_ns / rt;
		m->would_block += r->would_block;
		m->handoffs_direct += r->handoffs_direct;
		m->handoffs_via_loop += r->handoffs_via_loop;
	}
	m->mean = sum / m->n;
	double ss = 0;
	for (int i = 0; i < m->n; i++)
		ss += (m->rt_ns[i] - m->mean) * (m->rt_ns[i] - m->mean);
	m->sd = m->n > 1 ? sqrt(ss / (m->n - 1)) : 0;
	m->vol = vol / m->n;
	m->invol = invol / m->n;
	m->usr = usr / m->n;
	m->sys = sys / m->n;
}

static double per_switch(const struct mode_out *m, double v)
{
	return pingpong_mode_switches(m->mode) ? v / 2 : NAN;
}

static void print_row(FILE *f, const struct mode_out *m)
{
	char sw[32];
	double s = per_switch(m, m->mean);
	if (isnan(s))
		snprintf(sw, sizeof sw, "n/a");
	else
		snprintf(sw, sizeof sw, "%.1f", s);
	fprintf(f, "%-12s %9llu %10.1f %8.1f %10.1f %10s %8.2f %8.2f %9.1f %9.1f  %s%s\n",
		pingpong_mode_name(m->mode), (unsigned long long)m->rounds, m->mean, m->sd, m->min,
		sw, m->vol, m->invol, m->usr, m->sys, m->r[0].placement,
		m->r[0].affinity_ok ? "" : " (affinity NOT applied)");
}

static const struct mode_out *find_mode(const struct mode_out *out, int n, enum pingpong_mode m)
{
	for (int i = 0; i < n; i++)
		if (out[i].mode == m && out[i].n > 0)
			return &out[i];
	return NULL;
}

static void json_stat(struct jw *w, const char *k, double mean, double sd, double min, double max)
{
	jw_key(w, k);
	jw_obj(w);
	jw_kdouble(w, "mean", mean);
	jw_kdouble(w, "stddev", sd);
	jw_kdouble(w, "min", min);
	jw_kdouble(w, "max", max);
	jw_end(w);
}

struct ratios {
	double kernel_coro, kernel_coro_mean;       /* pipe-thread ÷ coro */
	double async_blocking, async_blocking_mean; /* coro-unix ÷ unix-thread */
};

static int write_json(const struct popts *p, const struct mode_out *out, int n,
		      const struct ratios *rt)
{
	struct jw w;
	jw_init(&w);
	struct utsname u;
	uname(&u);
	jw_obj(&w);
	jw_kstr(&w, "tool", "ctxlab pingpong");
	jw_kstr(&w, "version", CTXLAB_VERSION);
	jw_kstr(&w, "kernel", u.release);
	jw_kint(&w, "online_cpus", sysconf(_SC_NPROCESSORS_ONLN));
	jw_kstr(&w, "pin", pingpong_pin_name(p->po.pin));
	jw_kint(&w, "pairs", p->po.pairs);
	jw_kuint(&w, "msg_bytes", p->po.msg_bytes);
	jw_kuint(&w, "working_set_bytes", p->po.ws_bytes);
	jw_kuint(&w, "stride_bytes", p->po.stride_bytes);
	jw_kint(&w, "repeat", p->repeat);
	jw_key(&w, "modes");
	jw_arr(&w);
	for (int i = 0; i < n; i++) {
		const struct mode_out *m = &out[i];
		jw_obj(&w);
		jw_kstr(&w, "mode", pingpong_mode_name(m->mode));
		jw_kuint(&w, "rounds_per_pair", m->rounds);
		jw_kuint(&w, "round_trips", m->r[0].round_trips);
		jw_kstr(&w, "placement", m->r[0].placement);
		jw_kint(&w, "cpu_a", m->r[0].cpu_a);
		jw_kint(&w, "cpu_b", m->r[0].cpu_b);
		jw_kbool(&w, "affinity_ok", m->r[0].affinity_ok);
		jw_kint(&w, "tasks", m->r[0].threads);
		json_stat(&w, "ns_per_round_trip", m->mean, m->sd, m->min, m->max);
		if (pingpong_mode_switches(m->mode))
			json_stat(&w, "ns_per_switch", m->mean / 2, m->sd / 2, m->min / 2, m->max / 2);
		else {
			jw_key(&w, "ns_per_switch");
			jw_null(&w);
		}
		jw_kdouble(&w, "ctxsw_vol_per_round_trip", m->vol);
		jw_kdouble(&w, "ctxsw_invol_per_round_trip", m->invol);
		jw_kdouble(&w, "user_ns_per_round_trip", m->usr);
		jw_kdouble(&w, "sys_ns_per_round_trip", m->sys);
		jw_kuint(&w, "would_block", m->would_block);
		if (m->mode == PINGPONG_CORO || m->mode == PINGPONG_CORO_UNIX) {
			jw_kuint(&w, "handoffs_direct", m->handoffs_direct);
			jw_kuint(&w, "handoffs_via_loop", m->handoffs_via_loop);
		}
		jw_key(&w, "repeats");
		jw_arr(&w);
		for (int k = 0; k < m->n; k++) {
			const struct pingpong_result *r = &m->r[k];
			jw_obj(&w);
			jw_kuint(&w, "elapsed_ns", r->elapsed_ns);
			jw_kuint(&w, "messages", r->messages);
			jw_kuint(&w, "ctxsw_vol", r->ctxsw_vol);
			jw_kuint(&w, "ctxsw_invol", r->ctxsw_invol);
			jw_kuint(&w, "user_ns", r->user_ns);
			jw_kuint(&w, "sys_ns", r->sys_ns);
			jw_end(&w);
		}
		jw_end(&w);
		jw_end(&w);
	}
	jw_end(&w);
	jw_kdouble(&w, "kernel_vs_coro_switch_ratio", rt->kernel_coro);
	jw_kdouble(&w, "kernel_vs_coro_switch_ratio_of_means", rt->kernel_coro_mean);
	jw_kdouble(&w, "async_vs_blocking_ratio", rt->async_blocking);
	jw_kdouble(&w, "async_vs_blocking_ratio_of_means", rt->async_blocking_mean);
	jw_end(&w);
	int rc = 0;
	if (w.oom) {
		rc = error("out of memory writing JSON");
	} else if (!strcmp(p->json, "-")) {
		fwrite(w.buf, 1, w.len, stdout);
		fputc('\n', stdout);
		fflush(stdout);
	} else {
		char *text = malloc(w.len + 1);
		if (!text) {
			rc = error("out of memory writing JSON");
		} else {
			memcpy(text, w.buf, w.len);
			text[w.len] = '\n';
			int e = outfile_write(p->json, text, w.len + 1, OUTFILE_NAMED);
			if (e)
				rc = error("cannot write '%s': %s (check the directory exists)", p->json,
					   outfile_strerror(e));
			free(text);
		}
	}
	jw_release(&w);
	return rc;
}


static int cmd_pingpong(int argc, char **argv)
{
	struct popts p = {0};
	if (parse_args(argc, argv, &p))
		return 2;
	FILE *tf = p.json && !strcmp(p.json, "-") ? stderr : stdout;
	int table = !p.quiet;
	struct mode_out *out = calloc((size_t)p.nmodes, sizeof *out);
	if (!out)
		return error("out of memory"), 1;
	char err[256], ws[32], sz[32];
	if (table) {
		units_format_size(p.po.msg_bytes, sz, sizeof sz);
		if (p.po.ws_bytes)
			units_format_size(p.po.ws_bytes, ws, sizeof ws);
		else
			snprintf(ws, sizeof ws, "none");
		fprintf(tf, "# ctxlab pingpong: pin %s, %d pair%s, %s messages, working set %s "
			    "(stride %zu B), %d repeat%s; %s\n",
			pingpong_pin_name(p.po.pin), p.po.pairs, p.po.pairs > 1 ? "s" : "", sz, ws,
			p.po.stride_bytes, p.repeat, p.repeat > 1 ? "s" : "",
			p.rounds ? "fixed rounds" : "rounds sized to the duration");
		fprintf(tf, "%-12s %9s %10s %8s %10s %10s %8s %8s %9s %9s  %s\n", "mode", "rounds",
			"ns/rt", "sd", "min", "ns/switch", "vcsw/rt", "ivcsw/rt", "usr ns/rt",
			"sys ns/rt", "placement");
		fflush(tf);
	}
	int rc = 0, nout = 0;
	for (int i = 0; i < p.nmodes && !rc; i++) {
		struct mode_out *m = &out[nout];
		m->mode = p.modes[i];
		struct pingpong_opts o = p.po;
		o.mode = m->mode;
		/* warm-up (and sizing): excluded from every figure */
		if (p.rounds) {
			o.rounds = p.rounds / 10 < 100 ? (p.rounds < 100 ? p.rounds : 100) : p.rounds / 10;
			struct pingpong_result wr;
			if (pingpong_run(&o, &wr, err, sizeof err) < 0) {
				rc = error("%s", err);
				break;
			}
			o.rounds = p.rounds;
		} else if (pingpong_calibrate(&o, p.duration_ns, &o.rounds, err, sizeof err) < 0) {
			rc = error("%s", err);
			break;
		}
		m->rounds = o.rounds;
		for (int k = 0; k < p.repeat; k++) {
			if (pingpong_run(&o, &m->r[k], err, sizeof err) < 0) {
				rc = error("%s", err);
				break;
			}
			m->n++;
		}
		if (rc)
			break;
		summarize(m);
		nout++;
		if (table) {
			print_row(tf, m);
			fflush(tf);
		}
	}
	/* ratios of the minimum over repeats (the run least disturbed by other work on a shared
	 * CPU), with the ratio of the means beside them */
	struct ratios rt = {NAN, NAN, NAN, NAN};
	const struct mode_out *kt = find_mode(out, nout, PINGPONG_PIPE_THREAD);
	const struct mode_out *co = find_mode(out, nout, PINGPONG_CORO);
	const struct mode_out *ut = find_mode(out, nout, PINGPONG_UNIX_THREAD);
	const struct mode_out *cu = find_mode(out, nout, PINGPONG_CORO_UNIX);
	if (kt && co && co->min > 0 && co->mean > 0) {
		rt.kernel_coro = kt->min / co->min;
		rt.kernel_coro_mean = kt->mean / co->mean;
		if (table)
			fprintf(tf, "kernel switch (pipe-thread, %s) costs %.1f× a coroutine switch "
				    "(min of %d: %.1f ns vs %.1f ns; ratio of means %.1f×)\n",
				p.po.pin == PINGPONG_PIN_SAME    ? "same CPU"
				: p.po.pin == PINGPONG_PIN_SPLIT ? "split CPUs"
								 : "unpinned",
				rt.kernel_coro, p.repeat, kt->min / 2, co->min / 2, rt.kernel_coro_mean);
	}
	if (ut && cu && ut->min > 0 && ut->mean > 0) {
		rt.async_blocking = cu->min / ut->min;
		rt.async_blocking_mean = cu->mean / ut->mean;
		if (table)
			fprintf(tf, "async (coro-unix) takes %.2f× the time of blocking (unix-thread) "
				    "per round trip (min of %d: %.1f ns vs %.1f ns; ratio of means "
				    "%.2f×)\n",
				rt.async_blocking, p.repeat, cu->min, ut->min, rt.async_blocking_mean);
	}
	if (p.json && nout && write_json(&p, out, nout, &rt))
		rc = -1;
	free(out);
	return rc ? 1 : 0;
}

const struct cmd_info cmd_info_pingpong = {
	"pingpong", cmd_pingpong,
	"context-switch micro-benchmarks: kernel vs user-space switching", usage, options, NULL,
};
