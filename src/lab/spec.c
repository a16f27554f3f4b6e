#include "lab/spec.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/units.h"
#include "lab/record.h"

#define PROTOS "sink echo http chat"
/* `ctxlab pingpong` modes and placements (src/bench/pingpong.h), for [pingpong] */
#define PP_MODES "pipe-proc pipe-thread unix-thread unix-inline futex-thread coro coro-unix"
#define PP_PINS "same split none"

enum vtype { V_NAME, V_TEXT, V_COUNT, V_DURATION, V_ENGINE, V_PROTO, V_CPUS, V_BANDWIDTH, V_RATE,
	     V_SIZE, V_HOST, V_HOSTS, V_ADDR, V_PROFILE, V_SEED, V_PRECISION, V_METRIC, V_KIND, V_PPMODE,
	     V_PPPIN, V_PPSIZE, V_HANDOFF, V_BALANCE, V_FUNCTION, V_ONOFF, V_ALLOC };

struct keydef {
	const char *section, *name;
	enum vtype type;
	int list;       /* may be a list (an axis) */
	uint64_t min;   /* counts: smallest allowed */
};

static const struct keydef keydefs[] = {
	{"experiment", "name", V_NAME, 0, 0},
	{"experiment", "question", V_TEXT, 0, 0},
	{"experiment", "repeat", V_COUNT, 0, 1},
	{"experiment", "warmup", V_DURATION, 0, 0},
	{"experiment", "duration", V_DURATION, 0, 1},
	{"experiment", "profile", V_PROFILE, 0, 0},
	{"experiment", "seed", V_SEED, 0, 0},
	{"experiment", "precision", V_PRECISION, 0, 0},
	{"experiment", "max_repeat", V_COUNT, 0, 1},
	{"experiment", "budget", V_DURATION, 0, 1},
	{"server", "engine", V_ENGINE, 1, 0},
	{"server", "proto", V_PROTO, 1, 0},
	{"server", "cpus", V_CPUS, 1, 0},
	{"server", "workers", V_COUNT, 1, 1},
	{"server", "work_cpu_us", V_COUNT, 1, 0},
	{"server", "handoff", V_HANDOFF, 1, 0},
	{"server", "balance", V_BALANCE, 1, 0},
	{"server", "functions", V_TEXT, 0, 0},
	{"load", "connections", V_COUNT, 1, 1},
	{"load", "threads", V_COUNT, 1, 1},
	{"load", "pipeline", V_COUNT, 1, 1},
	{"load", "bandwidth", V_BANDWIDTH, 1, 0},
	{"load", "rate", V_RATE, 1, 0},
	{"load", "size", V_SIZE, 1, 0},
	{"load", "function", V_FUNCTION, 1, 0},
	{"load", "keepalive", V_ONOFF, 1, 0},
	{"hosts", "server", V_HOST, 0, 0},
	{"hosts", "load", V_HOSTS, 0, 0},
	{"hosts", "server_address", V_ADDR, 0, 0},
	/* [answer.ID]: checked as a whole by check_answers */
	{"answer", "question", V_TEXT, 0, 0},
	{"answer", "metric", V_METRIC, 0, 0},
	{"answer", "compare", V_TEXT, 0, 0},
	{"answer", "grow", V_TEXT, 0, 0},
	{"answer", "where", V_TEXT, 0, 0},
	{"answer", "say", V_TEXT, 0, 0},
	{"answer", "needs_cpus", V_COUNT, 0, 1},
	{"experiment", "kind", V_KIND, 0, 0},
	{"experiment", "timeline", V_TEXT, 0, 0},
	{"experiment", "alloc", V_ALLOC, 0, 0},
	{"pingpong", "cpus", V_CPUS, 1, 0},
	{"pingpong", "mode", V_PPMODE, 1, 0},
	{"pingpong", "pairs", V_COUNT, 1, 1},
	{"pingpong", "size", V_SIZE, 1, 0},
	{"pingpong", "working_set", V_PPSIZE, 1, 0},
	{"pingpong", "stride", V_SIZE, 1, 0},
	{"pingpong", "pin", V_PPPIN, 1, 0},
};
#define NKEYDEFS (sizeof keydefs / sizeof keydefs[0])

/* the axes in display order (cell keys, CSV columns) */
static const char *const display_order[][2] = {
	{"server", "engine"}, {"server", "proto"},   {"server", "cpus"},      {"server", "workers"},
	{"server", "work_cpu_us"}, {"load", "connections"}, {"load", "threads"}, {"load", "pipeline"},
	{"load", "bandwidth"}, {"load", "rate"},     {"load", "size"},
	{"server", "handoff"}, {"server", "balance"}, {"load", "function"}, {"load", "keepalive"},
};
#define NDISPLAY (sizeof display_order / sizeof display_order[0])
/* kind = pingpong: its axes in display order (mode varies fastest) */
static const char *const pp_order[] = {"mode", "cpus", "pin", "pairs", "size", "working_set",
				       "stride"};
#define NPP (sizeof pp_order / sizeof pp_order[0])

/* ---- catalog ---- */

int spec_catalog_parse(struct spec_catalog *cat, const char *text)
{
	memset(cat, 0, sizeof(*cat));
	const char *p = text;
	while (p && *p && cat->n < SPEC_MAX_ENGINES) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		char line[256];
		if (n >= sizeof line)
			n = sizeof line - 1;
		memcpy(line, p, n);
		line[n] = 0;
		char *s = line;
		while (isspace((unsigned char)*s))
			s++;
		char *sp = s;
		while (*sp && !isspace((unsigned char)*sp))
			sp++;
		if (sp > s && (size_t)(sp - s) < sizeof cat->name[0]) {
			memcpy(cat->name[cat->n], s, sp - s);
			cat->name[cat->n][sp - s] = 0;
			while (isspace((unsigned char)*sp))
				sp++;
			snprintf(cat->protos[cat->n], sizeof cat->protos[0], "%.127s", sp);
			size_t l = strlen(cat->protos[cat->n]);
			while (l && isspace((unsigned char)cat->protos[cat->n][l - 1]))
				cat->protos[cat->n][--l] = 0;
			cat->n++;
		}
		p = nl ? nl + 1 : NULL;
	}
	return cat->n;
}

static int word_in(const char *word, const char *list)
{
	size_t n = strlen(word);
	for (const char *p = list; p && *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		const char *e = p;
		while (*e && *e != ' ' && *e != ',')
			e++;
		if ((size_t)(e - p) == n && !strncmp(p, word, n))
			return 1;
		p = e;
	}
	return 0;
}

static int catalog_find(const struct spec_catalog *cat, const char *engine)
{
	for (int i = 0; cat && i < cat->n; i++)
		if (!strcmp(cat->name[i], engine))
			return i;
	return -1;
}

int spec_catalog_speaks(const struct spec_catalog *cat, const char *engine, const char *proto)
{
	int i = catalog_find(cat, engine);
	return i >= 0 && word_in(proto, cat->protos[i]);
}

static void catalog_names(const struct spec_catalog *cat, char *buf, size_t len)
{
	size_t o = 0;
	buf[0] = 0;
	for (int i = 0; cat && i < cat->n && o < len; i++)
		o += snprintf(buf + o, len - o, "%s%s", i ? " " : "", cat->name[i]);
}

/* ---- parsing ---- */

struct pstate {
	struct spec *s;
	const struct spec_catalog *cat;
	int flags;
	const char *text;   /* reader position */
	int line;           /* current line number */
	int line_indented;  /* the current line starts with blank space (a continuation) */
	int line_too_long;
	struct spec_key *last;
	char *err;
	size_t errlen;
	int failed;
	int too_big;        /* failed because the matrix is over SPEC_MAX_CELLS / _TRIALS */
};

static int fail(struct pstate *ps, int line, const char *fmt, ...) CTXLAB_PRINTF(3, 4);
static int fail(struct pstate *ps, int line, const char *fmt, ...)
{
	if (ps->failed)
		return 0;
	ps->failed = 1;
	int n = snprintf(ps->err, ps->errlen, "%s:%d: ", ps->s->file, line);
	if (n < 0 || (size_t)n >= ps->errlen)
		return 0;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ps->err + n, ps->errlen - n, fmt, ap);
	va_end(ap);
	return 0;
}

static char *reader(char *str, int num, void *stream)
{
	struct pstate *ps = stream;
	if (!*ps->text)
		return NULL;
	int i = 0;
	while (i < num - 1 && ps->text[i] && ps->text[i] != '\n')
		i++;
	int nl = ps->text[i] == '\n';
	if (!nl && ps->text[i] && i == num - 1)
		ps->line_too_long = ps->line_too_long ? ps->line_too_long : ps->line + 1;
	if (nl && i < num - 1)
		i++;
	memcpy(str, ps->text, i);
	str[i] = 0;
	ps->line_indented = i > 0 && (str[0] == ' ' || str[0] == '\t');
	ps->text += i;
	ps->line++;
	return str;
}

static const struct keydef *keydef_find(const char *section, const char *name)
{
	for (size_t i = 0; i < NKEYDEFS; i++)
		if (!strcmp(keydefs[i].section, section) && !strcmp(keydefs[i].name, name))
			return &keydefs[i];
	return NULL;
}

static void allowed_keys(const char *section, char *buf, size_t len)
{
	size_t o = 0;
	buf[0] = 0;
	for (size_t i = 0; i < NKEYDEFS && o < len; i++)
		if (!strcmp(keydefs[i].section, section))
			o += snprintf(buf + o, len - o, "%s%s", o ? ", " : "", keydefs[i].name);
}

static int valid_host(const char *v)
{
	if (!strcmp(v, "local"))
		return 1;
	if (!strncmp(v, "netns:", 6)) {
		const char *n = v + 6;
		if (!*n || !strcmp(n, ".") || !strcmp(n, ".."))
			return 0;
		for (; *n; n++)
			if (!isalnum((unsigned char)*n) && !strchr("_.-", *n))
				return 0;
		return 1;
	}
	if (!strncmp(v, "ssh:", 4)) {
		const char *h = v + 4;
		if (!*h || *h == '-') /* never an ssh option */
			return 0;
		for (; *h; h++)
			if (!isalnum((unsigned char)*h) && !strchr("_.-@:[]", *h))
				return 0;
		return 1;
	}
	return 0;
}

/* profile = cells:TERM... (the first value) or a further TERM of it: 1 when val is one
 * (checked: each TERM is KEY=VALUE with KEY a [server] or [load] key), 0 when not. */
static int profile_cells_terms(struct pstate *ps, const struct spec_value *val)
{
	const char *v = val->text;
	const struct spec_key *k = spec_get(ps->s, "experiment", "profile");
	int first = k && val == &k->v[0];
	if (first && strncmp(v, "cells:", 6))
		return 0;
	if (!first && (!k || strncmp(k->v[0].text, "cells:", 6)))
		return 0;
	char buf[256];
	snprintf(buf, sizeof buf, "%s", first ? v + 6 : v);
	int nterms = 0;
	for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(t, '=');
		if (eq)
			*eq = 0;
		if (!eq || !eq[1] || (!keydef_find("server", t) && !keydef_find("load", t))) {
			fail(ps, ps->line, "bad profile term '%s' in '%s' (allowed: KEY=VALUE with KEY "
			     "a [server] or [load] key, e.g. profile = cells:proto=http "
			     "connections=64)", t, v);
			return 1;
		}
		nterms++;
	}
	if (!nterms)
		fail(ps, ps->line, "profile 'cells:' names no cell (e.g. profile = cells:proto=http "
		     "connections=64)");
	return 1;
}

static int check_value(struct pstate *ps, const struct keydef *kd, const char *section,
		       struct spec_value *val)
{
	char e[256];
	const char *v = val->text;
	uint64_t u;
	double d;
	cpu_set_t set;
	switch (kd->type) {
	case V_NAME:
		for (const char *p = v; *p; p++)
			if (!isalnum((unsigned char)*p) && !strchr("_.-", *p))
				return fail(ps, ps->line, "bad name '%s' (allowed: letters, digits, '_', '.', '-'; "
					    "it names the results directory)", v);
		return 1;
	case V_TEXT:
		return 1;
	case V_METRIC:
		if (spec_metric_find(v) < 0) {
			char names[1024];
			size_t o = 0;
			for (int m = 0; m < RECORD_NMETRICS && o < sizeof names; m++)
				o += snprintf(names + o, sizeof names - o, "%s%s", m ? ", " : "",
					      record_metrics[m].id);
			return fail(ps, ps->line, "unknown metric '%s' (allowed: %s, or their "
				    "record paths such as server_cpu.us_per_request)", v, names);
		}
		return 1;
	case V_HANDOFF:
		if (strcmp(v, "proxy") && strcmp(v, "fdpass"))
			return fail(ps, ps->line, "bad handoff '%s' (allowed: proxy, fdpass)", v);
		return 1;
	case V_BALANCE:
		if (strcmp(v, "rr") && strcmp(v, "least-conn"))
			return fail(ps, ps->line, "bad balance '%s' (allowed: rr, least-conn)", v);
		return 1;
	case V_ONOFF:
		if (strcmp(v, "on") && strcmp(v, "off"))
			return fail(ps, ps->line, "bad %s '%s' (allowed: on, off)", kd->name, v);
		return 1;
	case V_FUNCTION:
		for (const char *p = v; *p; p++)
			if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && !strchr("_-", *p))
				return fail(ps, ps->line, "bad function '%s' (a name of [a-z0-9_-]: "
					    "the load asks for /api/NAME)", v);
		return 1;
	case V_COUNT:
		if (units_parse_count(v, &u, e, sizeof e) < 0)
			return fail(ps, ps->line, "bad %s '%s': %s", kd->name, v, e);
		if (u < kd->min || u > 1000000)
			return fail(ps, ps->line, "bad %s '%s' (allowed: %llu to 1000000)", kd->name, v,
				    (unsigned long long)kd->min);
		return 1;
	case V_DURATION:
		if (units_parse_duration_ns(v, &u, e, sizeof e) < 0)
			return fail(ps, ps->line, "bad %s '%s': %s", kd->name, v, e);
		if (kd->min && !u)
			return fail(ps, ps->line, "bad %s '%s' (allowed: a duration above 0, e.g. 10s)",
				    kd->name, v);
		return 1;
	case V_BANDWIDTH:
		if (units_parse_bandwidth_bps(v, &d, e, sizeof e) < 0)
			return fail(ps, ps->line, "bad bandwidth '%s': %s", v, e);
		if (!(d > 0))
			return fail(ps, ps->line, "bad bandwidth '%s' (allowed: a rate per connection "
				    "above 0, e.g. 1Mbps, 64KB/s)", v);
		return 1;
	case V_RATE:
		if (!strcmp(v, "closed")) /* a closed-loop cell beside open-loop ones (saturation) */
			return 1;
		if (units_parse_rate_per_s(v, &d, e, sizeof e) < 0)
			return fail(ps, ps->line, "bad rate '%s': %s", v, e);
		if (!(d > 0))
			return fail(ps, ps->line, "bad rate '%s' (allowed: requests per second above 0, "
				    "e.g. 5000/s, 10k/s)", v);
		return 1;
	case V_SIZE:
		if (units_parse_size_bytes(v, &u, e, sizeof e) < 0 || !u)
			return fail(ps, ps->line, "bad size '%s' (allowed: a message size above 0, e.g. "
				    "128, 1k, 64KiB)", v);
		return 1;
	case V_PROTO:
		if (!word_in(v, PROTOS))
			return fail(ps, ps->line, "unknown proto '%s' (allowed: %s)", v, PROTOS);
		return 1;
	case V_ENGINE: {
		if (catalog_find(ps->cat, v) >= 0)
			return 1;
		char names[512];
		catalog_names(ps->cat, names, sizeof names);
		if (ps->flags & SPEC_LENIENT) {
			if (ps->s->nnotes < SPEC_MAX_NOTES)
				snprintf(ps->s->notes[ps->s->nnotes++], sizeof ps->s->notes[0],
					 "engine '%s' does not exist in this build: dropped from the "
					 "default experiment",
					 v);
			val->text[0] = 0; /* dropped */
			return 1;
		}
		return fail(ps, ps->line, "unknown engine '%s' (allowed: %s)", v, names);
	}
	case V_CPUS: {
		int m = ps->s->machine_cpus;
		if (val->quoted) {
			if (units_parse_cpulist(v, &set, e, sizeof e) < 0)
				return fail(ps, ps->line, "bad cpus list \"%s\": %s", v, e);
			cpu_set_t mine;
			CPU_ZERO(&mine);
			if (sched_getaffinity(0, sizeof mine, &mine) == 0)
				for (int c = 0; c < CPU_SETSIZE; c++)
					if (CPU_ISSET(c, &set) && !CPU_ISSET(c, &mine))
						return fail(ps, ps->line, "cpus list \"%s\" names CPU %d, "
							    "which this machine does not let ctxlab use "
							    "(allowed: CPUs 0-%d)", v, c, m - 1);
			size_t l = strlen(v);
			char *t = malloc(l + 4);
			if (!t)
				return fail(ps, ps->line, "out of memory");
			memcpy(t, "cpu", 3);
			memcpy(t + 3, v, l + 1);
			free(val->text);
			val->text = t;
			return 1;
		}
		if (!strcmp(v, "all"))
			return 1;
		if (units_parse_count(v, &u, e, sizeof e) < 0 || u < 1)
			return fail(ps, ps->line, "bad cpus '%s' (allowed: a count 1..%d, all, or a quoted "
				    "CPU list like \"0\" or \"0-1\")", v, m);
		if ((int)u > m && !(ps->flags & SPEC_LENIENT)) /* lenient: prune_cpus drops it */
			return fail(ps, ps->line, "cpus '%s' is more than the %d CPUs this machine has "
				    "(allowed: 1..%d, all, or a quoted CPU list like \"0-1\")", v, m, m);
		return 1;
	}
	case V_HOST:
		if (!valid_host(v))
			return fail(ps, ps->line, "bad %s host '%s' (allowed: local, ssh:user@host, "
				    "netns:NAME)", kd->name, v);
		return 1;
	case V_HOSTS: { /* H1, H2, ...: several load hosts */
		char one[256];
		for (const char *p = v;;) {
			const char *comma = strchr(p, ',');
			size_t n = comma ? (size_t)(comma - p) : strlen(p);
			while (n && isspace((unsigned char)*p))
				p++, n--;
			while (n && isspace((unsigned char)p[n - 1]))
				n--;
			snprintf(one, sizeof one, "%.*s", (int)(n < sizeof one ? n : sizeof one - 1), p);
			if (!n || n >= sizeof one || !valid_host(one))
				return fail(ps, ps->line, "bad %s host '%s' in '%s' (allowed: local, "
					    "ssh:user@host, netns:NAME; several load hosts: H1, H2, ...)",
					    kd->name, one, v);
			if (!comma)
				return 1;
			p = comma + 1;
		}
	}
	case V_PROFILE: {
		enum spec_profile pr;
		if (profile_cells_terms(ps, val))
			return !ps->failed;
		if (spec_profile_parse(v, &pr) < 0 || pr == SPEC_PROFILE_CELLS)
			return fail(ps, ps->line, "bad profile '%s' (allowed: %s; first = the "
				    "first repeat of every cell)", v, SPEC_PROFILE_VALUES);
		return 1;
	}
	case V_SEED:
		if (spec_seed_parse(v, &u) < 0)
			return fail(ps, ps->line, "bad seed '%s' (allowed: a whole number 0 to "
				    "18446744073709551615)", v);
		return 1;
	case V_PRECISION:
		if (spec_precision_parse(v, &d) < 0)
			return fail(ps, ps->line, "bad precision '%s' (allowed: a percentage above 0 "
				    "and at most 100, e.g. 5%%, or off)", v);
		return 1;
	case V_KIND:
		if (strcmp(v, "serve") && strcmp(v, "pingpong"))
			return fail(ps, ps->line, "bad kind '%s' (allowed: serve, pingpong)", v);
		return 1;
	case V_ALLOC:
		if (strcmp(v, "off") && strcmp(v, "on") && strcmp(v, "exact"))
			return fail(ps, ps->line, "bad alloc '%s' (allowed: off, on (sampled), exact)", v);
		return 1;
	case V_PPMODE:
		if (!word_in(v, PP_MODES))
			return fail(ps, ps->line, "unknown pingpong mode '%s' (allowed: %s)", v, PP_MODES);
		return 1;
	case V_PPPIN:
		if (!word_in(v, PP_PINS))
			return fail(ps, ps->line, "bad pin '%s' (allowed: %s)", v, PP_PINS);
		return 1;
	case V_PPSIZE:
		if (units_parse_size_bytes(v, &u, e, sizeof e) < 0 || u > (1ULL << 34))
			return fail(ps, ps->line, "bad working_set '%s' (allowed: 0 to 16GiB, e.g. 0, "
				    "64KiB, 8MiB)", v);
		return 1;
	case V_ADDR: {
		unsigned char b[16];
		if (inet_pton(AF_INET, v, b) != 1 && inet_pton(AF_INET6, v, b) != 1)
			return fail(ps, ps->line, "bad server_address '%s' (allowed: an IPv4 or IPv6 "
				    "address literal, e.g. 127.0.0.1)", v);
		return 1;
	}
	}
	return 1;
}

/* Splits a value into words; "double quotes" keep a word together and mark it quoted. */
static int split_values(struct pstate *ps, struct spec_key *k, const char *value, int whole)
{
	const char *p = value;
	if (whole) {
		struct spec_value *v = &k->v[0];
		size_t old = k->n ? strlen(v->text) : 0, add = strlen(value);
		char *t = realloc(k->n ? v->text : NULL, old + add + 2);
		if (!t)
			return fail(ps, ps->line, "out of memory");
		if (old)
			t[old++] = ' ';
		memcpy(t + old, value, add + 1);
		v->text = t;
		k->n = 1;
		return 1;
	}
	while (*p) {
		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		const char *s = p, *e;
		int quoted = *p == '"';
		if (quoted) {
			s = ++p;
			e = strchr(s, '"');
			if (!e)
				return fail(ps, ps->line, "unterminated quote in '%s' (close it: \"0-1\")", value);
			p = e + 1;
		} else {
			while (*p && !isspace((unsigned char)*p))
				p++;
			e = p;
		}
		if (k->n >= SPEC_MAX_VALUES)
			return fail(ps, ps->line, "too many values for '%s' (allowed: at most %d)", k->name,
				    SPEC_MAX_VALUES);
		char *t = strndup(s, e - s);
		if (!t)
			return fail(ps, ps->line, "out of memory");
		k->v[k->n].text = t;
		k->v[k->n].quoted = quoted;
		k->n++;
	}
	return 1;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct pstate *ps = user;
	struct spec *s = ps->s;
	if (ps->failed)
		return 1;
	char allowed[512];
	const char *defsec = section;
	if (!strncmp(section, "load.", 5)) {
		if (!word_in(section + 5, PROTOS))
			return fail(ps, ps->line, "unknown section [%s] (allowed: [load.PROTO] with PROTO "
				    "one of %s)", section, PROTOS);
		defsec = "load";
	}
	if (!strncmp(section, "answer.", 7)) {
		const char *id = section + 7;
		int okid = *id && strlen(section) < sizeof s->keys[0].section;
		for (const char *p = id; *p; p++)
			okid &= isalnum((unsigned char)*p) || *p == '_' || *p == '-';
		if (!okid)
			return fail(ps, ps->line, "bad section [%s] (allowed: [answer.ID], ID of letters, "
				    "digits, '_', '-', at most %zu characters)", section,
				    sizeof s->keys[0].section - 8);
		defsec = "answer";
	}
	if (!*section)
		return fail(ps, ps->line, "'%s' is outside a section (put it under [experiment], "
			    "[server], [load] or [hosts])", name);
	if (strcmp(defsec, "experiment") && strcmp(defsec, "server") && strcmp(defsec, "load") &&
	    strcmp(defsec, "hosts") && strcmp(defsec, "answer") && strcmp(defsec, "pingpong"))
		return fail(ps, ps->line, "unknown section [%s] (allowed: experiment, server, load, "
			    "load.PROTO, hosts, pingpong, answer.ID)", section);
	const struct keydef *kd = keydef_find(defsec, name);
	if (!kd) {
		allowed_keys(defsec, allowed, sizeof allowed);
		return fail(ps, ps->line, "unknown key '%s' in [%s] (allowed: %s)", name, section,
			    allowed);
	}
	struct spec_key *k = NULL;
	for (int i = 0; i < s->nkeys; i++)
		if (!strcmp(s->keys[i].section, section) && !strcmp(s->keys[i].name, name))
			k = &s->keys[i];
	int continuation = k && k == ps->last && ps->line_indented;
	if (k && !continuation)
		return fail(ps, ps->line, "'%s' is set twice in [%s] (first at line %d; give one line, "
			    "a list of values is an axis)", name, section, k->line);
	if (!k) {
		if (s->nkeys >= SPEC_MAX_KEYS)
			return fail(ps, ps->line, "too many keys");
		k = &s->keys[s->nkeys++];
		memset(k, 0, sizeof(*k));
		snprintf(k->section, sizeof k->section, "%s", section);
		snprintf(k->name, sizeof k->name, "%s", name);
		k->line = ps->line;
	}
	ps->last = k;
	if (!*value)
		return fail(ps, ps->line, "'%s' in [%s] has no value", name, section);
	int first = k->n;
	if (!split_values(ps, k, value, kd->type == V_TEXT || kd->type == V_HOSTS))
		return 0;
	if (!kd->list && k->n > 1 && kd->type != V_TEXT &&
	    !(kd->type == V_PROFILE && !strncmp(k->v[0].text, "cells:", 6)))
		return fail(ps, ps->line, "'%s' takes one value, not a list (got %d values)", name, k->n);
	if (kd->type == V_TEXT)
		return 1;
	for (int i = first; i < k->n; i++) {
		for (int j = 0; j < i; j++)
			if (!strcmp(k->v[j].text, k->v[i].text) && k->v[i].text[0])
				return fail(ps, ps->line, "'%s' lists '%s' twice", name, k->v[i].text);
		if (!check_value(ps, kd, section, &k->v[i]))
			return 0;
	}
	return 1;
}

const struct spec_key *spec_get(const struct spec *s, const char *section, const char *name)
{
	for (int i = 0; i < s->nkeys; i++)
		if (!strcmp(s->keys[i].section, section) && !strcmp(s->keys[i].name, name))
			return &s->keys[i];
	return NULL;
}

static const char *single(const struct spec *s, const char *section, const char *name,
			  const char *dflt)
{
	const struct spec_key *k = spec_get(s, section, name);
	return k && k->n ? k->v[0].text : dflt;
}

/* Drops values emptied by lenient checks. */
static void compact_values(struct spec_key *k)
{
	int o = 0;
	for (int i = 0; i < k->n; i++) {
		if (k->v[i].text[0])
			k->v[o++] = k->v[i];
		else
			free(k->v[i].text);
	}
	k->n = o;
}

static int machine_cpus(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) < 0)
		return 1;
	return CPU_COUNT(&set);
}

static uint64_t matrix_cells(const struct spec *s);
static int check_answers(struct pstate *ps);

/* profile = cells:...: s->profile_cells = the terms joined by spaces; a selector that matches
 * no cell of the matrix is an error (it would profile nothing). */
static int finish_profile_cells(struct pstate *ps)
{
	struct spec *s = ps->s;
	const struct spec_key *k = spec_get(s, "experiment", "profile");
	if (!k || !k->n || strncmp(k->v[0].text, "cells:", 6))
		return 1;
	s->profile = SPEC_PROFILE_CELLS;
	size_t o = 0;
	for (int i = 0; i < k->n; i++) {
		const char *v = i ? k->v[i].text : k->v[i].text + 6;
		for (; *v && o + 2 < sizeof s->profile_cells; v++)
			s->profile_cells[o++] = *v == ',' ? ' ' : *v;
		if (o && s->profile_cells[o - 1] != ' ' && o + 2 < sizeof s->profile_cells)
			s->profile_cells[o++] = ' ';
	}
	while (o && s->profile_cells[o - 1] == ' ')
		o--;
	s->profile_cells[o] = 0;
	struct spec_cell *cells;
	int n = spec_cells(s, &cells), hit = 0;
	for (int i = 0; i < n && !hit; i++)
		hit = spec_cell_selected(s, &cells[i]);
	if (n >= 0)
		free(cells);
	if (n > 0 && !hit)
		return fail(ps, k->line, "profile = cells:%s matches no cell of the matrix (each "
			    "KEY=VALUE must be a value of the spec, e.g. connections=64 when 64 is "
			    "among the connections)", s->profile_cells);
	return 1;
}

int spec_test_machine_cpus;

/* How many CPUs a cpus value gives the server on a machine of m CPUs (a list: its size). */
static int cpus_value_count(const struct spec_value *v, int m)
{
	cpu_set_t set;
	uint64_t u;
	char e[128];
	if (!strcmp(v->text, "all"))
		return m;
	if (!strncmp(v->text, "cpu", 3) && units_parse_cpulist(v->text + 3, &set, e, sizeof e) == 0)
		return CPU_COUNT(&set);
	return units_parse_count(v->text, &u, e, sizeof e) == 0 ? (int)u : m;
}

/* Lenient (a bundled experiment): a cpus value that leaves the load generator no CPU of its own
 * (server CPUs + 1 > the machine's) is left out with a note saying what machine would run it;
 * when none fits, the smallest stays (the load then shares, and the trials say so). */
static void prune_cpus(struct spec *s)
{
	struct spec_key *k = NULL;
	for (int i = 0; i < s->nkeys; i++)
		if (!strcmp(s->keys[i].section, "server") && !strcmp(s->keys[i].name, "cpus"))
			k = &s->keys[i];
	int m = s->machine_cpus;
	if (!k || !k->n)
		return;
	int keep = 0, small = 0, need = 0;
	for (int i = 0; i < k->n; i++) {
		int c = cpus_value_count(&k->v[i], m);
		keep += c + 1 <= m;
		if (c < cpus_value_count(&k->v[small], m))
			small = i;
	}
	if (keep == k->n)
		return;
	char left[128] = "", kept[128] = "";
	size_t lo = 0, ko = 0;
	for (int i = 0; i < k->n; i++) {
		int c = cpus_value_count(&k->v[i], m);
		int fits = c + 1 <= m || (!keep && i == small);
		if (fits) {
			ko += snprintf(kept + ko, ko < sizeof kept ? sizeof kept - ko : 0, "%s%s",
				       ko ? " " : "", k->v[i].text);
			continue;
		}
		lo += snprintf(left + lo, lo < sizeof left ? sizeof left - lo : 0, "%scpus=%s: >= %d",
			       lo ? ", " : "", k->v[i].text, c + 1);
		if (c + 1 > need)
			need = c + 1;
	}
	if (s->nnotes < SPEC_MAX_NOTES)
		snprintf(s->notes[s->nnotes++], sizeof s->notes[0],
			 "cpus left out: a clean trial needs the server's CPUs + 1 CPU for the load "
			 "generator (%.100s CPUs) and this machine lets ctxlab use %d", left, m);
	if (s->nnotes < SPEC_MAX_NOTES)
		snprintf(s->notes[s->nnotes++], sizeof s->notes[0],
			 "the cores question cannot be answered cleanly here: only cpus = %.60s %s; a "
			 "machine with >= %d CPUs runs every cpus value of this experiment",
			 kept, keep ? "runs" : "runs, and only with the load sharing its CPU", need);
	for (int i = 0; i < k->n; i++) {
		int c = cpus_value_count(&k->v[i], m);
		if (!(c + 1 <= m || (!keep && i == small)))
			k->v[i].text[0] = 0;
	}
	compact_values(k);
}

/* kind = pingpong takes [pingpong] (mode required) and no [server] or [load]; kind = serve no
 * [pingpong]. 1, or 0 with the failure set. */
static int finish_kind(struct pstate *ps)
{
	struct spec *s = ps->s;
	for (int i = 0; i < s->nkeys; i++) {
		const struct spec_key *k = &s->keys[i];
		int pp = !strcmp(k->section, "pingpong");
		int srv = !strcmp(k->section, "server") || !strncmp(k->section, "load", 4);
		if (s->pingpong && srv)
			return fail(ps, k->line, "[%s] is for kind = serve, not kind = pingpong (allowed "
				    "for pingpong: [pingpong] cpus, mode, pairs, size, working_set, "
				    "stride, pin)", k->section);
		if (!s->pingpong && pp)
			return fail(ps, k->line, "[pingpong] needs kind = pingpong in [experiment]");
	}
	if (!s->pingpong)
		return 1;
	const struct spec_key *mode = spec_get(s, "pingpong", "mode");
	if (!mode)
		return fail(ps, ps->line, "[pingpong] has no 'mode' (add e.g. 'mode = unix-thread "
			    "coro-unix')");
	const struct spec_key *pin = spec_get(s, "pingpong", "pin");
	const struct spec_key *cpus = spec_get(s, "pingpong", "cpus");
	int split = 0;
	for (int i = 0; pin && i < pin->n; i++)
		split |= !strcmp(pin->v[i].text, "split");
	for (int i = 0; split && i < (cpus ? cpus->n : 0); i++) {
		const char *v = cpus->v[i].text;
		if (!strcmp(v, "1") || (!strncmp(v, "cpu", 3) && !strpbrk(v + 3, "-,")))
			return fail(ps, cpus->line, "pin split needs 2 CPUs, but cpus lists '%s' "
				    "(allowed: 2 CPUs or more with split, or pin = same)", v);
	}
	if (split && s->machine_cpus < 2)
		return fail(ps, pin->line, "pin split needs 2 CPUs; this machine lets ctxlab use 1");
	return 1;
}

static int finish(struct pstate *ps)
{
	struct spec *s = ps->s;
	for (int i = 0; i < s->nkeys; i++)
		compact_values(&s->keys[i]);
	s->pingpong = !strcmp(single(s, "experiment", "kind", "serve"), "pingpong");
	const char *al = single(s, "experiment", "alloc", "off");
	s->alloc = !strcmp(al, "exact") ? SPEC_ALLOC_EXACT : !strcmp(al, "on") ? SPEC_ALLOC_SAMPLED : 0;
	const struct spec_key *tl = spec_get(s, "experiment", "timeline");
	if (tl && tl->n) {
		snprintf(s->timeline, sizeof s->timeline, "%s", tl->v[0].text);
		for (const char *w = s->timeline; *w;) {
			size_t n = strcspn(w, " \t");
			const char *eq = memchr(w, '=', n);
			if (n && (!eq || eq == w || eq == w + n - 1))
				return fail(ps, tl->line, "bad timeline selector '%.*s' (allowed: "
					    "KEY=VALUE words, e.g. 'engine=epoll connections=64': the "
					    "cells whose parameters match them all)", (int)n, w);
			w += n;
			w += strspn(w, " \t");
		}
	}
	if (!finish_kind(ps))
		return 0;
	if (ps->flags & SPEC_LENIENT)
		prune_cpus(s);
	const struct spec_key *eng = spec_get(s, "server", "engine");
	const struct spec_key *pro = spec_get(s, "server", "proto");
	if (!eng && !s->pingpong)
		return fail(ps, ps->line, "[server] has no 'engine' (add e.g. 'engine = fork epoll')");
	if (!pro && !s->pingpong)
		return fail(ps, ps->line, "[server] has no 'proto' (add e.g. 'proto = http')");
	if (eng && !eng->n)
		return fail(ps, eng->line, "none of the engines listed exists in this build");
	/* engine x proto: every pair must be possible */
	for (int i = 0; eng && pro && i < eng->n; i++)
		for (int j = 0; j < pro->n; j++) {
			const char *e = eng->v[i].text, *p = pro->v[j].text;
			if (spec_catalog_speaks(ps->cat, e, p))
				continue;
			if (ps->flags & SPEC_LENIENT) {
				if (s->nnotes < SPEC_MAX_NOTES)
					snprintf(s->notes[s->nnotes++], sizeof s->notes[0],
						 "engine '%s' does not speak '%s': those cells are left out",
						 e, p);
				continue;
			}
			int ci = catalog_find(ps->cat, e);
			return fail(ps, eng->line, "engine '%s' does not speak protocol '%s' (allowed for "
				    "%s: %s; split the experiment or drop one of them)", e, p, e,
				    ci >= 0 ? ps->cat->protos[ci] : "none");
		}
	/* [load.PROTO] for a protocol the experiment does not run is a mistake */
	for (int i = 0; i < s->nkeys; i++) {
		const char *sec = s->keys[i].section;
		if (!strncmp(sec, "load.", 5)) {
			int found = 0;
			for (int j = 0; pro && j < pro->n; j++)
				found |= !strcmp(pro->v[j].text, sec + 5);
			if (!found)
				return fail(ps, s->keys[i].line, "[%s] is for protocol '%s', which [server] "
					    "proto does not list (allowed: %s)", sec, sec + 5,
					    single(s, "server", "proto", ""));
		}
	}
	/* rate and bandwidth in one load section */
	for (int i = 0; i < s->nkeys; i++) {
		if (strncmp(s->keys[i].section, "load", 4) || strcmp(s->keys[i].name, "rate"))
			continue;
		const struct spec_key *bw = spec_get(s, s->keys[i].section, "bandwidth");
		if (bw)
			return fail(ps, s->keys[i].line, "'rate' and 'bandwidth' are both set in [%s] "
				    "(allowed: rate for an open loop, bandwidth per connection, or "
				    "neither for a closed loop)", s->keys[i].section);
	}
	char e[256];
	uint64_t u;
	const char *name = single(s, "experiment", "name", NULL);
	if (name)
		snprintf(s->name, sizeof s->name, "%s", name);
	snprintf(s->question, sizeof s->question, "%s", single(s, "experiment", "question", ""));
	units_parse_count(single(s, "experiment", "repeat", "3"), &u, e, sizeof e);
	/* the matrix size, in 64 bits: a repeat or axes that multiply past any sensible run
	 * are refused here, before an int count wraps (it printed "= -198967296 trials") */
	uint64_t ncells = matrix_cells(s);
	const struct spec_key *rk = spec_get(s, "experiment", "repeat");
	if (ncells > SPEC_MAX_CELLS) {
		ps->too_big = 1;
		return fail(ps, ps->line, "the matrix has %llu cells, more than %d (allowed: at most "
			    "%d cells; list fewer values on the axes or split the experiment)",
			    (unsigned long long)ncells, SPEC_MAX_CELLS, SPEC_MAX_CELLS);
	}
	if (u > SPEC_MAX_TRIALS || (ncells && u * ncells > SPEC_MAX_TRIALS)) {
		ps->too_big = 1;
		return fail(ps, rk ? rk->line : ps->line, "repeat %llu x %llu cells is more than %d "
			    "trials (allowed: repeat x cells <= %d; lower the repeat or split the "
			    "experiment)", (unsigned long long)u, (unsigned long long)ncells,
			    SPEC_MAX_TRIALS, SPEC_MAX_TRIALS);
	}
	s->repeat = (int)u;
	units_parse_duration_ns(single(s, "experiment", "warmup", "2s"), &s->warmup_ns, e, sizeof e);
	units_parse_duration_ns(single(s, "experiment", "duration", "10s"), &s->duration_ns, e,
				sizeof e);
	spec_profile_parse(single(s, "experiment", "profile", "off"), &s->profile);
	if (!finish_profile_cells(ps))
		return 0;
	const char *sd = single(s, "experiment", "seed", NULL);
	s->seed_set = sd && spec_seed_parse(sd, &s->seed) == 0;
	spec_precision_parse(single(s, "experiment", "precision", "5%"), &s->precision);
	s->max_repeat = 3 * s->repeat;
	const char *mr = single(s, "experiment", "max_repeat", NULL);
	if (mr && units_parse_count(mr, &u, e, sizeof e) == 0)
		s->max_repeat = (int)u;
	if (s->max_repeat < s->repeat)
		s->max_repeat = s->repeat;
	if ((uint64_t)s->max_repeat * (ncells ? ncells : 1) > SPEC_MAX_TRIALS)
		s->max_repeat = (int)(SPEC_MAX_TRIALS / (ncells ? ncells : 1));
	s->budget_ns = 0;
	const char *bd = single(s, "experiment", "budget", NULL);
	if (bd)
		units_parse_duration_ns(bd, &s->budget_ns, e, sizeof e);
	snprintf(s->server_host, sizeof s->server_host, "%s", single(s, "hosts", "server", "local"));
	snprintf(s->load_host, sizeof s->load_host, "%s", single(s, "hosts", "load", "local"));
	snprintf(s->server_address, sizeof s->server_address, "%s",
		 single(s, "hosts", "server_address", "127.0.0.1"));
	if (!strncmp(s->server_host, "ssh:", 4) && s->nnotes < SPEC_MAX_NOTES)
		snprintf(s->notes[s->nnotes++], sizeof s->notes[0],
			 "cpus were checked against this machine (%d CPUs), not against '%.100s'",
			 s->machine_cpus, s->server_host);
	return 1;
}

int spec_parse_text(struct spec *s, const char *text, const char *file,
		    const struct spec_catalog *cat, int flags, char *err, size_t errlen)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->file, sizeof s->file, "%s", file);
	/* default name: the file's base name without .ini */
	const char *base = strrchr(file, '/');
	base = base ? base + 1 : file;
	snprintf(s->name, sizeof s->name, "%s", base);
	char *dot = strrchr(s->name, '.');
	if (dot && dot != s->name)
		*dot = 0;
	s->machine_cpus = spec_test_machine_cpus > 0 ? spec_test_machine_cpus : machine_cpus();
	struct pstate ps = {.s = s, .cat = cat, .flags = flags, .text = text, .err = err,
			    .errlen = errlen};
	int rc = ini_parse_stream(reader, &ps, handler, &ps);
	if (!ps.failed && ps.line_too_long)
		fail(&ps, ps.line_too_long, "line too long (split a long value over indented lines)");
	if (!ps.failed && rc > 0)
		fail(&ps, rc, "syntax error (expected '[section]', 'key = value' or a '; comment')");
	if (!ps.failed && rc < 0)
		fail(&ps, 0, "cannot parse (out of memory)");
	if (!ps.failed)
		finish(&ps);
	if (!ps.failed)
		check_answers(&ps);
	if (ps.failed) {
		spec_release(s);
		return ps.too_big ? -E2BIG : -1;
	}
	return 0;
}

void spec_release(struct spec *s)
{
	for (int i = 0; i < s->nkeys; i++)
		for (int j = 0; j < s->keys[i].n; j++)
			free(s->keys[i].v[j].text);
	s->nkeys = 0;
}

/* ---- the matrix ---- */

/* The effective load key for a protocol: [load.PROTO] first, then [load]. */
static const struct spec_key *load_key(const struct spec *s, const char *proto, const char *name)
{
	char sec[32];
	snprintf(sec, sizeof sec, "load.%s", proto);
	const struct spec_key *k = spec_get(s, sec, name);
	if (k)
		return k;
	if ((!strcmp(name, "rate") || !strcmp(name, "bandwidth")) &&
	    (spec_get(s, sec, "rate") || spec_get(s, sec, "bandwidth")))
		return NULL;
	return spec_get(s, "load", name);
}

static const struct spec_key *axis_key(const struct spec *s, const char *proto, int d)
{
	if (!strcmp(display_order[d][0], "load"))
		return load_key(s, proto, display_order[d][1]);
	return spec_get(s, "server", display_order[d][1]);
}

/* An axis that only the gateway engine has: other engines' cells leave it out. */
static int gateway_only(size_t d)
{
	return !strcmp(display_order[d][1], "handoff") || !strcmp(display_order[d][1], "balance");
}

static const char *default_of(const char *name)
{
	if (!strcmp(name, "cpus"))
		return "all";
	if (!strcmp(name, "connections"))
		return "16";
	return NULL;
}

static void fill_cell(struct spec_cell *c)
{
	char e[128];
	uint64_t u;
	for (int i = 0; i < c->nparams; i++) {
		const char *k = c->p[i].key, *v = c->p[i].value;
		if (!strcmp(k, "engine"))
			c->engine = v;
		else if (!strcmp(k, "proto"))
			c->proto = v;
		else if (!strcmp(k, "cpus")) {
			c->cpus = v;
			if (!strncmp(v, "cpu", 3)) {
				c->cpus_count = -1;
				snprintf(c->cpus_list, sizeof c->cpus_list, "%s", v + 3);
			} else if (!strcmp(v, "all")) {
				c->cpus_count = 0;
			} else {
				units_parse_count(v, &u, e, sizeof e);
				c->cpus_count = (int)u;
			}
		} else if (!strcmp(k, "workers") && units_parse_count(v, &u, e, sizeof e) == 0)
			c->workers = (int)u;
		else if (!strcmp(k, "work_cpu_us") && units_parse_count(v, &u, e, sizeof e) == 0)
			c->work_cpu_us = u;
		else if (!strcmp(k, "handoff"))
			c->handoff = v;
		else if (!strcmp(k, "balance"))
			c->balance = v;
		else if (!strcmp(k, "function"))
			c->function = v;
		else if (!strcmp(k, "keepalive"))
			c->no_keepalive = !strcmp(v, "off");
		else if (!strcmp(k, "connections") && units_parse_count(v, &u, e, sizeof e) == 0)
			c->connections = (int)u;
		else if (!strcmp(k, "threads") && units_parse_count(v, &u, e, sizeof e) == 0)
			c->threads = (int)u;
		else if (!strcmp(k, "pipeline") && units_parse_count(v, &u, e, sizeof e) == 0)
			c->pipeline = (int)u;
		else if (!strcmp(k, "bandwidth")) {
			c->bandwidth = v;
			units_parse_bandwidth_bps(v, &c->bandwidth_bps, e, sizeof e);
		} else if (!strcmp(k, "rate") && !strcmp(v, "closed")) {
			c->rate = NULL; /* closed loop, named in the key */
		} else if (!strcmp(k, "rate")) {
			c->rate = v;
			units_parse_rate_per_s(v, &c->rate_per_s, e, sizeof e);
		} else if (!strcmp(k, "size")) {
			c->size = v;
			units_parse_size_bytes(v, &c->size_bytes, e, sizeof e);
		}
	}
}

int spec_timeline_match(const struct spec *s, const struct spec_cell *c)
{
	if (!s->timeline[0])
		return 0;
	for (const char *w = s->timeline; *w;) {
		size_t n = strcspn(w, " \t");
		const char *eq = memchr(w, '=', n);
		if (!eq)
			return 0;
		size_t kl = (size_t)(eq - w), vl = n - kl - 1;
		int ok = 0;
		for (int i = 0; i < c->nparams && !ok; i++)
			ok = strlen(c->p[i].key) == kl && !strncmp(c->p[i].key, w, kl) &&
			     strlen(c->p[i].value) == vl && !strncmp(c->p[i].value, eq + 1, vl);
		if (!ok)
			return 0;
		w += n;
		w += strspn(w, " \t");
	}
	return 1;
}

static const char *pp_default(const char *name)
{
	if (!strcmp(name, "cpus"))
		return "all";
	if (!strcmp(name, "pin"))
		return "same";
	if (!strcmp(name, "pairs") || !strcmp(name, "size"))
		return "1";
	if (!strcmp(name, "working_set"))
		return "0";
	if (!strcmp(name, "stride"))
		return "64";
	return NULL;
}

/* kind = pingpong: the product of the [pingpong] axes, mode fastest. */
static int pp_cells(const struct spec *s, struct spec_cell **cellsp)
{
	const struct spec_key *ax[NPP];
	int idx[NPP], cnt[NPP];
	uint64_t total = 1;
	for (size_t d = 0; d < NPP; d++) {
		ax[d] = spec_get(s, "pingpong", pp_order[d]);
		idx[d] = 0;
		cnt[d] = ax[d] && ax[d]->n ? ax[d]->n : 1;
		total *= (uint64_t)cnt[d];
	}
	struct spec_cell *cells = total <= SPEC_MAX_CELLS ? calloc(total, sizeof *cells) : NULL;
	*cellsp = cells;
	if (!cells)
		return 0;
	int n = 0;
	for (;;) {
		struct spec_cell *c = &cells[n];
		c->index = n;
		size_t o = 0;
		char e[128];
		uint64_t u;
		for (size_t d = 0; d < NPP; d++) {
			const char *v = ax[d] ? ax[d]->v[idx[d]].text : pp_default(pp_order[d]);
			c->p[c->nparams].key = pp_order[d];
			c->p[c->nparams].value = v;
			c->nparams++;
			o += snprintf(c->key + o, o < sizeof c->key ? sizeof c->key - o : 0, "%s%s=%s",
				      o ? " " : "", pp_order[d], v);
		}
		fill_cell(c); /* cpus, size */
		c->engine = "pingpong";
		for (int i = 0; i < c->nparams; i++) {
			const char *k = c->p[i].key, *v = c->p[i].value;
			if (!strcmp(k, "mode"))
				c->mode = v;
			else if (!strcmp(k, "pin"))
				c->pin = v;
			else if (!strcmp(k, "pairs") && units_parse_count(v, &u, e, sizeof e) == 0)
				c->pairs = (int)u;
			else if (!strcmp(k, "working_set") &&
				 units_parse_size_bytes(v, &u, e, sizeof e) == 0)
				c->working_set_bytes = u;
			else if (!strcmp(k, "stride") && units_parse_size_bytes(v, &u, e, sizeof e) == 0)
				c->stride_bytes = u;
		}
		n++;
		size_t k;
		for (k = 0; k < NPP; k++) {
			size_t d = k == 0 ? 0 : NPP - k;
			if (++idx[d] < cnt[d])
				break;
			idx[d] = 0;
		}
		if (k == NPP)
			break;
	}
	return n;
}

int spec_cells(const struct spec *s, struct spec_cell **cellsp)
{
	if (s->pingpong)
		return pp_cells(s, cellsp);
	const struct spec_key *pro = spec_get(s, "server", "proto");
	const struct spec_key *eng = spec_get(s, "server", "engine");
	int cap = 64, n = 0;
	struct spec_cell *cells = malloc(cap * sizeof(*cells));
	if (!cells || !pro || !eng) {
		free(cells);
		*cellsp = NULL;
		return 0;
	}
	/* a pair that cannot run was an error, or (lenient) a note naming it: skip those */
	for (int pi = 0; pi < pro->n; pi++) {
		const char *proto = pro->v[pi].text;
		/* nesting order: cpus, workers, work_cpu_us, load axes ..., engine fastest */
		const struct spec_key *ax[NDISPLAY];
		const char *dflt[NDISPLAY];
		int idx[NDISPLAY], cnt[NDISPLAY];
		for (size_t d = 0; d < NDISPLAY; d++) {
			ax[d] = d == 1 ? NULL : axis_key(s, proto, (int)d);
			dflt[d] = default_of(display_order[d][1]);
			idx[d] = 0;
			cnt[d] = d == 1 ? 1 : ax[d] ? ax[d]->n : 1;
		}
		for (;;) {
			const char *engine = eng->v[idx[0]].text;
			char note[256];
			snprintf(note, sizeof note, "engine '%s' does not speak '%s': those cells are left out",
				 engine, proto);
			int skip = 0;
			for (int i = 0; i < s->nnotes; i++)
				skip |= !strcmp(s->notes[i], note);
			/* gateway-only axes (handoff, balance) are not varied for other engines */
			for (size_t d = 2; d < NDISPLAY; d++)
				skip |= gateway_only(d) && idx[d] > 0 && strcmp(engine, "gateway");
			if (!skip) {
				if (n == cap) {
					cap *= 2;
					struct spec_cell *nc = realloc(cells, cap * sizeof(*cells));
					if (!nc) {
						free(cells);
						*cellsp = NULL;
						return 0;
					}
					cells = nc;
				}
				struct spec_cell *c = &cells[n];
				memset(c, 0, sizeof(*c));
				c->index = n;
				size_t o = 0;
				for (size_t d = 0; d < NDISPLAY; d++) {
					const char *v = d == 1 ? proto : ax[d] ? ax[d]->v[idx[d]].text : dflt[d];
					if (!v || (gateway_only(d) && strcmp(engine, "gateway")))
						continue;
					c->p[c->nparams].key = display_order[d][1];
					c->p[c->nparams].value = v;
					c->nparams++;
					o += snprintf(c->key + o, o < sizeof c->key ? sizeof c->key - o : 0,
						      "%s%s=%s", o ? " " : "", display_order[d][1], v);
				}
				fill_cell(c);
				n++;
			}
			/* odometer: engine fastest, then the last axis, ..., cpus slowest */
			size_t k;
			for (k = 0; k < NDISPLAY; k++) {
				size_t d = k == 0 ? 0 : NDISPLAY - k;
				if (++idx[d] < cnt[d])
					break;
				idx[d] = 0;
			}
			if (k == NDISPLAY)
				break;
		}
	}
	*cellsp = cells;
	return n;
}

/* How many cells spec_cells makes, counted without making them (64 bits: at most 32 values
 * on each of 11 axes, 2^55, times 32 protocols fits). */
static uint64_t matrix_cells(const struct spec *s)
{
	const struct spec_key *pro = spec_get(s, "server", "proto");
	const struct spec_key *eng = spec_get(s, "server", "engine");
	uint64_t total = 0;
	if (s->pingpong) {
		total = 1;
		for (size_t d = 0; d < NPP; d++) {
			const struct spec_key *k = spec_get(s, "pingpong", pp_order[d]);
			total *= k && k->n ? (uint64_t)k->n : 1;
		}
		return total;
	}
	for (int pi = 0; pro && eng && pi < pro->n; pi++) {
		const char *proto = pro->v[pi].text;
		uint64_t cells = 1, gw = 1;
		for (size_t d = 2; d < NDISPLAY; d++) {
			const struct spec_key *k = axis_key(s, proto, (int)d);
			uint64_t m = k && k->n ? (uint64_t)k->n : 1;
			if (gateway_only(d))
				gw *= m;
			else
				cells *= m;
		}
		for (int ei = 0; ei < eng->n; ei++) {
			char note[256];
			int skip = 0;
			snprintf(note, sizeof note, "engine '%s' does not speak '%s': those cells are left out",
				 eng->v[ei].text, proto);
			for (int i = 0; i < s->nnotes; i++)
				skip |= !strcmp(s->notes[i], note);
			if (!skip)
				total += cells * (strcmp(eng->v[ei].text, "gateway") ? 1 : gw);
		}
	}
	return total;
}

int spec_drop_engine(struct spec *s, const char *engine, const char *why)
{
	for (int i = 0; i < s->nkeys; i++) {
		struct spec_key *k = &s->keys[i];
		if (strcmp(k->section, "server") || strcmp(k->name, "engine"))
			continue;
		for (int j = 0; j < k->n; j++) {
			if (strcmp(k->v[j].text, engine))
				continue;
			if (s->nnotes < SPEC_MAX_NOTES)
				snprintf(s->notes[s->nnotes++], sizeof s->notes[0], "engine '%s' %.200s",
					 engine, why);
			k->v[j].text[0] = 0;
			compact_values(k);
			return 0;
		}
	}
	return -1;
}

/* After spec_quick: a profile = cells: selector that no cell of the reduced matrix matches
 * profiles nothing; a note says so (the run goes on). */
static void quick_profile_note(struct spec *s)
{
	if (s->profile != SPEC_PROFILE_CELLS || s->nnotes >= SPEC_MAX_NOTES)
		return;
	struct spec_cell *cells;
	int n = spec_cells(s, &cells), hit = 0;
	for (int i = 0; i < n && !hit; i++)
		hit = spec_cell_selected(s, &cells[i]);
	if (n >= 0)
		free(cells);
	if (n > 0 && !hit)
		snprintf(s->notes[s->nnotes++], sizeof s->notes[0],
			 "profile = cells:%.120s matches no cell of the quick matrix: nothing is "
			 "profiled", s->profile_cells);
}

void spec_quick(struct spec *s)
{
	s->quick = 1;
	s->repeat = 1;
	s->precision = 0; /* quick: one fixed round, no extra rounds */
	s->max_repeat = 1;
	if (s->warmup_ns > 200 * 1000000ULL)
		s->warmup_ns = 200 * 1000000ULL;
	if (s->duration_ns > 500 * 1000000ULL)
		s->duration_ns = 500 * 1000000ULL;
	for (int i = 0; i < s->nkeys; i++) {
		struct spec_key *k = &s->keys[i];
		if (strcmp(k->name, "connections") || k->n <= 2)
			continue;
		int lo = 0, hi = 0;
		uint64_t a, b;
		char e[64];
		for (int j = 0; j < k->n; j++) {
			units_parse_count(k->v[j].text, &a, e, sizeof e);
			units_parse_count(k->v[lo].text, &b, e, sizeof e);
			if (a < b)
				lo = j;
			units_parse_count(k->v[hi].text, &b, e, sizeof e);
			if (a > b)
				hi = j;
		}
		struct spec_value vlo = k->v[lo], vhi = k->v[hi];
		for (int j = 0; j < k->n; j++)
			if (j != lo && j != hi)
				free(k->v[j].text);
		k->v[0] = vlo;
		k->v[1] = vhi;
		k->n = 2;
	}
	quick_profile_note(s);
}

int spec_profile_parse(const char *text, enum spec_profile *p)
{
	static const char *const names[] = {"off", "first", "all", "cells"};
	for (int i = 0; i < 4; i++)
		if (!strcmp(text, names[i])) {
			*p = (enum spec_profile)i;
			return 0;
		}
	return -1;
}

const char *spec_profile_name(enum spec_profile p)
{
	return p == SPEC_PROFILE_ALL ? "all" : p == SPEC_PROFILE_FIRST ? "first"
	       : p == SPEC_PROFILE_CELLS ? "cells" : "off";
}

int spec_profiled(const struct spec *s, int repeat)
{
	return s->profile == SPEC_PROFILE_ALL ||
	       ((s->profile == SPEC_PROFILE_FIRST || s->profile == SPEC_PROFILE_CELLS) &&
		repeat == 0);
}

int spec_cell_selected(const struct spec *s, const struct spec_cell *c)
{
	if (s->profile != SPEC_PROFILE_CELLS)
		return 1;
	const char *p = s->profile_cells;
	if (!*p)
		return 0;
	while (*p) {
		size_t len = strcspn(p, " ");
		const char *eq = memchr(p, '=', len);
		int ok = 0;
		for (int j = 0; eq && j < c->nparams && !ok; j++)
			ok = strlen(c->p[j].key) == (size_t)(eq - p) &&
			     !strncmp(c->p[j].key, p, (size_t)(eq - p)) &&
			     strlen(c->p[j].value) == len - (size_t)(eq - p) - 1 &&
			     !strncmp(c->p[j].value, eq + 1, len - (size_t)(eq - p) - 1);
		if (!ok)
			return 0;
		p += len;
		while (*p == ' ')
			p++;
	}
	return 1;
}

int spec_profiled_cell(const struct spec *s, const struct spec_cell *c, int repeat)
{
	return spec_profiled(s, repeat) && spec_cell_selected(s, c);
}

int spec_profiled_trials(const struct spec *s, int ncells, int from, int ntrials)
{
	struct spec_cell *cells = NULL;
	int nc = 0, n = 0;
	if (s->profile == SPEC_PROFILE_CELLS && (nc = spec_cells(s, &cells)) != ncells) {
		if (nc >= 0)
			free(cells);
		return 0;
	}
	for (int k = from < 0 ? 0 : from; ncells > 0 && k < ntrials; k++)
		n += cells ? spec_profiled_cell(s, &cells[k % ncells], k / ncells)
			   : spec_profiled(s, k / ncells);
	free(cells);
	return n;
}

/* Appends "PREFIX" + value to out with every character outside [A-Za-z0-9._-] as '_'. */
static size_t id_part(char *out, size_t len, size_t o, const char *prefix, const char *value)
{
	if (o && o + 1 < len)
		out[o++] = '-';
	for (const char *p = prefix; *p && o + 1 < len; p++)
		out[o++] = *p;
	for (const char *p = value; *p && o + 1 < len; p++)
		out[o++] = isalnum((unsigned char)*p) || strchr("._-", *p) ? *p : '_';
	out[o < len ? o : len - 1] = 0;
	return o;
}

static const char *cell_param(const struct spec_cell *c, const char *key)
{
	for (int i = 0; i < c->nparams; i++)
		if (!strcmp(c->p[i].key, key))
			return c->p[i].value;
	return NULL;
}

/* The id without the uniqueness suffix. */
static void cell_id_base(const struct spec_cell *cells, int n, int i, char *out, size_t len)
{
	const struct spec_cell *c = &cells[i];
	size_t o = 0;
	out[0] = 0;
	if (c->mode) /* kind = pingpong: "pingpong-coro-unix-cpus1-pairs4" */
		o = id_part(out, len, o, "", "pingpong");
	else
		o = id_part(out, len, o, "", c->proto ? c->proto : "any");
	o = id_part(out, len, o, "", c->mode ? c->mode : c->engine ? c->engine : "any");
	const char *conn = cell_param(c, "connections");
	if (conn)
		o = id_part(out, len, o, "c", conn);
	if (c->cpus) {
		if (c->cpus_count < 0)
			o = id_part(out, len, o, "cpulist", c->cpus_list);
		else
			o = id_part(out, len, o, "cpus", c->cpus);
	}
	for (int k = 0; k < c->nparams; k++) {
		const char *key = c->p[k].key, *v = c->p[k].value;
		if (!strcmp(key, "proto") || !strcmp(key, "engine") || !strcmp(key, "mode") ||
		    !strcmp(key, "connections") || !strcmp(key, "cpus"))
			continue;
		/* a key only some protocols have (their [load.PROTO]) varies when its values do */
		int varies = 0;
		for (int j = 0; j < n && !varies; j++) {
			const char *w = cell_param(&cells[j], key);
			varies = w && strcmp(w, v);
		}
		if (varies)
			o = id_part(out, len, o, key, v);
	}
}

char *spec_cell_id(const struct spec_cell *cells, int n, int i, char *out, size_t len)
{
	if (!len)
		return out;
	cell_id_base(cells, n, i, out, len);
	/* sanitizing could map two values to one name: then the later cells get "-N" */
	char other[512];
	size_t olen = len < sizeof other ? len : sizeof other;
	int dup = 0;
	for (int j = 0; j < i && !dup; j++) {
		cell_id_base(cells, n, j, other, olen);
		dup = !strcmp(other, out);
	}
	if (dup) {
		size_t l = strlen(out);
		if (l + 12 > len)
			l = len > 12 ? len - 12 : 0;
		snprintf(out + l, len - l, "-%d", i + 1);
	}
	return out;
}

int spec_seed_parse(const char *text, uint64_t *seed)
{
	if (!text || !*text)
		return -1;
	uint64_t v = 0;
	for (const char *p = text; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*seed = v;
	return 0;
}

int spec_precision_parse(const char *text, double *precision)
{
	if (!text)
		return -1;
	if (!strcmp(text, "off")) {
		*precision = 0;
		return 0;
	}
	char *end;
	double v = strtod(text, &end);
	if (end == text || strcmp(end, "%") || !(v > 0) || v > 100)
		return -1;
	*precision = v / 100;
	return 0;
}

/* splitmix64: a small, well-mixed generator (the order only needs to be reproducible) */
static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void spec_round_order(uint64_t seed, int round, int ncells, int *perm)
{
	uint64_t x = seed ^ ((uint64_t)(unsigned)round * 0xd1b54a32d192ed03ULL);
	splitmix64(&x);
	for (int i = 0; i < ncells; i++)
		perm[i] = i;
	for (int i = ncells - 1; i > 0; i--) {
		int j = (int)(splitmix64(&x) % (uint64_t)(i + 1));
		int t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
}

uint64_t spec_budget_ns(const struct spec *s, int ncells)
{
	if (s->budget_ns)
		return s->budget_ns;
	return spec_estimate_ns(s, ncells * s->repeat,
				spec_profiled_trials(s, ncells, 0, ncells * s->repeat)) * 3 / 2;
}

uint64_t spec_estimate_ns(const struct spec *s, int ntrials, int nprofiled)
{
	return (uint64_t)ntrials * (s->warmup_ns + s->duration_ns + SPEC_TRIAL_OVERHEAD_NS) +
	       (uint64_t)nprofiled * SPEC_PROFILE_OVERHEAD_NS;
}

/* "the first repeat of the cells with KEY=VALUE...": for --dry-run */
static const char *profile_cells_what(const struct spec *s, char *out, size_t len)
{
	snprintf(out, len, "the first repeat of the cells with %s", s->profile_cells);
	return out;
}

void spec_print_matrix(const struct spec *s, FILE *f)
{
	struct spec_cell *cells;
	int n = spec_cells(s, &cells);
	char a[32], b[32], t[32], o[32];
	fprintf(f, "experiment '%s' (%s)%s\n", s->name, s->file, s->quick ? ", quick" : "");
	if (s->question[0])
		fprintf(f, "question: %s\n", s->question);
	fprintf(f, "hosts: server %s, load %s, server address %s\n", s->server_host, s->load_host,
		s->server_address);
	fprintf(f, "axes:\n");
	for (int i = 0; i < s->nkeys; i++) {
		const struct spec_key *k = &s->keys[i];
		if (strcmp(k->section, "server") && strncmp(k->section, "load", 4) &&
		    strcmp(k->section, "pingpong"))
			continue;
		fprintf(f, "  [%s] %s (%d):", k->section, k->name, k->n);
		for (int j = 0; j < k->n; j++)
			fprintf(f, " %s", k->v[j].text);
		fprintf(f, "\n");
	}
	for (int i = 0; i < s->nnotes; i++)
		fprintf(f, "note: %s\n", s->notes[i]);
	fprintf(f, "cells:\n");
	for (int i = 0; i < n; i++)
		fprintf(f, "  %3d  %s\n", i + 1, cells[i].key);
	fprintf(f, "matrix: %d cells x %d repeats = %d trials\n", n, s->repeat, n * s->repeat);
	fprintf(f, "order (seed %llu): rounds of every cell (repeat r of every cell before repeat "
		   "r+1), shuffled per round; cell numbers as listed above\n",
		(unsigned long long)s->seed);
	int *perm = n > 0 ? malloc((size_t)n * sizeof *perm) : NULL;
	for (int r = 0; perm && r < s->repeat; r++) {
		spec_round_order(s->seed, r, n, perm);
		fprintf(f, "  round %d:", r + 1);
		for (int i = 0; i < n; i++)
			fprintf(f, " %d", perm[i] + 1);
		fprintf(f, "\n");
	}
	free(perm);
	char bu[32];
	if (s->precision > 0 && s->max_repeat > s->repeat)
		fprintf(f, "precision: %.3g%% (95%% CI half-width of each cell's %s, relative to "
			   "its median): up to %d extra "
			   "rounds (max_repeat %d) for the cells that have not reached it, within a "
			   "budget of %s for the whole run\n",
			s->precision * 100,
			s->pingpong ? "time per round trip"
				    : "CPU per request, throughput for saturated cells",
			s->max_repeat - s->repeat, s->max_repeat,
			units_format_duration(spec_budget_ns(s, n), bu, sizeof bu));
	else
		fprintf(f, "precision: off (fixed rounds only%s)\n",
			s->precision > 0 ? ": max_repeat is not above repeat" : "");
	int np = spec_profiled_trials(s, n, 0, n * s->repeat);
	char pc[32], pw[400];
	units_format_duration(SPEC_PROFILE_OVERHEAD_NS, pc, sizeof pc);
	if (s->profile == SPEC_PROFILE_OFF)
		fprintf(f, "profiling: off\n");
	else
		fprintf(f, "profiling: %s (%s): %d of %d trials sampled at 99 Hz into flame/, each "
			   "~%s longer (the profiler writes its flame graph)\n",
			spec_profile_name(s->profile),
			s->profile == SPEC_PROFILE_ALL ? "every trial"
			: s->profile == SPEC_PROFILE_CELLS ? profile_cells_what(s, pw, sizeof pw)
							   : "the first repeat of every cell",
			np, n * s->repeat, pc);
	uint64_t est = spec_estimate_ns(s, n * s->repeat, np);
	fprintf(f, "estimated duration: %s = %.1f min (per trial: %s warm-up + %s measured + ~%s "
		   "start/stop%s%s)\n",
		units_format_duration(est, t, sizeof t), est / 60e9,
		units_format_duration(s->warmup_ns, a, sizeof a),
		units_format_duration(s->duration_ns, b, sizeof b),
		units_format_duration(SPEC_TRIAL_OVERHEAD_NS, o, sizeof o),
		np ? "; profiled: + ~" : "", np ? pc : "");
	free(cells);
}

/* ---- answers ([answer.ID]) ---- */

int spec_metric_find(const char *name)
{
	for (int m = 0; m < RECORD_NMETRICS; m++)
		if (!strcmp(name, record_metrics[m].id) || !strcmp(name, record_metrics[m].path))
			return m;
	return -1;
}

/* The axes a selector may name: a serve spec's, or a pingpong spec's [pingpong] keys. */
static int is_axis_name(const struct spec *s, const char *k, size_t n)
{
	size_t na = s->pingpong ? NPP : NDISPLAY;
	for (size_t d = 0; d < na; d++) {
		const char *a = s->pingpong ? pp_order[d] : display_order[d][1];
		if (strlen(a) == n && !strncmp(a, k, n))
			return 1;
	}
	return 0;
}

static void axis_names(const struct spec *s, char *buf, size_t len)
{
	size_t o = 0, na = s->pingpong ? NPP : NDISPLAY;
	buf[0] = 0;
	for (size_t d = 0; d < na && o < len; d++)
		o += snprintf(buf + o, len - o, "%s%s", d ? ", " : "",
			      s->pingpong ? pp_order[d] : display_order[d][1]);
}

/* One selector "KEY=VALUE[,VALUE...] ..." (from..to): 1, or 0 after fail(). lists: values may
 * be lists, '*', 'min' or 'max' (where); else one literal value per key (compare). keys gets
 * the keys seen, space-separated, for the overlap checks. */
static int check_selector(struct pstate *ps, int line, const char *what, const char *from,
			  const char *to, int lists, char *keys, size_t keylen)
{
	char axes[256];
	const char *p = from;
	int nwords = 0;
	while (p < to) {
		while (p < to && isspace((unsigned char)*p))
			p++;
		if (p >= to)
			break;
		const char *w = p;
		while (p < to && !isspace((unsigned char)*p))
			p++;
		int wl = (int)(p - w);
		const char *eq = memchr(w, '=', (size_t)wl);
		if (!eq || eq == w || eq == p - 1)
			return fail(ps, line, "bad %s '%.*s' (allowed: KEY=VALUE words, e.g. "
				    "engine=fork connections=256)", what, wl, w);
		if (!is_axis_name(ps->s, w, (size_t)(eq - w))) {
			axis_names(ps->s, axes, sizeof axes);
			return fail(ps, line, "unknown axis '%.*s' in %s (allowed: %s)",
				    (int)(eq - w), w, what, axes);
		}
		if (!lists && memchr(eq, ',', (size_t)(p - eq)))
			return fail(ps, line, "%s '%.*s' has several values (allowed: one value per key; "
				    "a list goes in 'where')", what, wl, w);
		char key[40];
		snprintf(key, sizeof key, " %.*s ", (int)(eq - w), w);
		if (strstr(keys, key))
			return fail(ps, line, "axis '%.*s' is named twice in one answer (name it once: "
				    "in compare, grow or where)", (int)(eq - w), w);
		size_t kl = strlen(keys);
		snprintf(keys + kl, keylen - kl, "%.*s ", (int)(eq - w), w);
		if (!kl) {
			memmove(keys + 1, keys, strlen(keys) + 1);
			keys[0] = ' ';
		}
		nwords++;
	}
	if (!nwords)
		return fail(ps, line, "empty %s (allowed: KEY=VALUE words, e.g. engine=fork)", what);
	return 1;
}

/* say: every {NAME} must be ratio, where, from, to or an axis name. */
static int check_say(struct pstate *ps, int line, const char *say)
{
	for (const char *p = strchr(say, '{'); p; p = strchr(p + 1, '{')) {
		const char *e = strchr(p, '}');
		if (!e)
			return fail(ps, line, "unclosed '{' in say (allowed: {ratio}, {where}, {from}, "
				    "{to}, {AXIS})");
		size_t n = (size_t)(e - p - 1);
		const char *nm = p + 1;
		if ((n == 5 && !strncmp(nm, "ratio", 5)) || (n == 5 && !strncmp(nm, "where", 5)) ||
		    (n == 4 && !strncmp(nm, "from", 4)) || (n == 2 && !strncmp(nm, "to", 2)) ||
		    is_axis_name(ps->s, nm, n))
			continue;
		return fail(ps, line, "unknown placeholder '{%.*s}' in say (allowed: {ratio}, {where}, "
			    "{from}, {to}, or an axis such as {engine})", (int)n, nm);
	}
	return 1;
}

int spec_answers(const struct spec *s, struct spec_answer *out, int max)
{
	int n = 0;
	for (int i = 0; i < s->nkeys; i++) {
		const struct spec_key *k = &s->keys[i];
		if (strncmp(k->section, "answer.", 7))
			continue;
		int a = 0;
		while (a < n && strcmp(out[a].id, k->section + 7))
			a++;
		if (a == n) {
			if (n >= max)
				continue;
			memset(&out[n], 0, sizeof out[n]);
			out[n].id = k->section + 7;
			out[n].line = k->line;
			out[n].metric = -1;
			n++;
		}
		struct spec_answer *an = &out[a];
		const char *v = k->n ? k->v[0].text : "";
		if (k->line < an->line)
			an->line = k->line;
		if (!strcmp(k->name, "question"))
			an->question = v;
		else if (!strcmp(k->name, "metric"))
			an->metric = spec_metric_find(v);
		else if (!strcmp(k->name, "compare"))
			an->compare = v;
		else if (!strcmp(k->name, "grow"))
			an->grow = v;
		else if (!strcmp(k->name, "where"))
			an->where = v;
		else if (!strcmp(k->name, "say"))
			an->say = v;
		else if (!strcmp(k->name, "needs_cpus"))
			an->needs_cpus = atoi(v);
	}
	return n;
}

static int check_answers(struct pstate *ps)
{
	struct spec *s = ps->s;
	struct spec_answer a[SPEC_MAX_ANSWERS + 1];
	int n = spec_answers(s, a, SPEC_MAX_ANSWERS + 1);
	if (n > SPEC_MAX_ANSWERS)
		return fail(ps, a[SPEC_MAX_ANSWERS].line, "too many [answer.*] sections (allowed: at "
			    "most %d)", SPEC_MAX_ANSWERS);
	for (int i = 0; i < n; i++) {
		char sec[40], keys[256] = "";
		snprintf(sec, sizeof sec, "answer.%s", a[i].id);
		const struct spec_key *kc = spec_get(s, sec, "compare"), *kg = spec_get(s, sec, "grow"),
				      *kw = spec_get(s, sec, "where"), *ks = spec_get(s, sec, "say");
		if (!a[i].question)
			return fail(ps, a[i].line, "[%s] has no 'question' (add the question it answers, "
				    "one line)", sec);
		if (a[i].metric < 0)
			return fail(ps, a[i].line, "[%s] has no 'metric' (add e.g. 'metric = "
				    "cpu_us_per_request')", sec);
		if (!!kc == !!kg)
			return fail(ps, (kc ? kc : kg ? kg : &(struct spec_key){.line = a[i].line})->line,
				    "[%s] needs one of 'compare' (SELECTOR / SELECTOR: a ratio of medians) "
				    "and 'grow' (AXIS: largest value against smallest), not %s", sec,
				    kc ? "both" : "neither");
		if (kc) {
			const char *slash = strchr(a[i].compare, '/');
			if (!slash || strchr(slash + 1, '/'))
				return fail(ps, kc->line, "bad compare '%s' (allowed: NUMERATOR / "
					    "DENOMINATOR, e.g. engine=fork / engine=epoll)", a[i].compare);
			char knum[256] = "", kden[256] = "";
			if (!check_selector(ps, kc->line, "compare", a[i].compare, slash, 0, knum,
					    sizeof knum) ||
			    !check_selector(ps, kc->line, "compare", slash + 1,
					    slash + strlen(slash), 0, kden, sizeof kden))
				return 0;
			if (strcmp(knum, kden))
				return fail(ps, kc->line, "compare '%s' names different axes on each side "
					    "(allowed: the same axes, different values)", a[i].compare);
			snprintf(keys, sizeof keys, "%s", knum);
		} else {
			const char *g = a[i].grow;
			if (strchr(g, ' ') || !is_axis_name(ps->s, g, strlen(g))) {
				char axes[256];
				axis_names(ps->s, axes, sizeof axes);
				return fail(ps, kg->line, "bad grow '%s' (allowed: one axis: %s)", g, axes);
			}
			snprintf(keys, sizeof keys, " %s ", g);
		}
		if (kw && !check_selector(ps, kw->line, "where", a[i].where,
					  a[i].where + strlen(a[i].where), 1, keys, sizeof keys))
			return 0;
		if (ks && !check_say(ps, ks->line, a[i].say))
			return 0;
	}
	return 1;
}

void spec_print_answers(const struct spec *s, FILE *f)
{
	struct spec_answer a[SPEC_MAX_ANSWERS];
	int n = spec_answers(s, a, SPEC_MAX_ANSWERS);
	if (!n) {
		fprintf(f, "questions: none ([answer.ID] sections state them)\n");
		return;
	}
	fprintf(f, "questions (%d, answered in the report):\n", n);
	for (int i = 0; i < n; i++) {
		fprintf(f, "  %s: %s\n", a[i].id, a[i].question);
		if (a[i].needs_cpus > s->machine_cpus)
			fprintf(f, "    (cannot be answered here: needs >= %d CPUs, this machine has %d)\n",
				a[i].needs_cpus, s->machine_cpus);
	}
}
