/* opt: table-driven option parsing and help rows (see opt.h). */
#include "core/opt.h"

#include <string.h>

#include "core/log.h"
#include "core/units.h"

static int has_value(const struct opt *o)
{
	switch (o->type) {
	case OPT_T_STRING:
	case OPT_T_DURATION:
	case OPT_T_SIZE:
	case OPT_T_COUNT:
		return 1;
	case OPT_T_CALLBACK:
		return o->argh != NULL;
	default:
		return 0;
	}
}

static int parsed(const struct opt *o)
{
	return o->type != OPT_T_GROUP && o->type != OPT_T_DOC;
}

/* name: "--long" or "-s", for messages */
static void opt_name(const struct opt *o, int as_long, char *buf, size_t len)
{
	if (as_long || !o->short_name)
		snprintf(buf, len, "--%s", o->long_name ? o->long_name : "?");
	else
		snprintf(buf, len, "-%c", o->short_name);
}

/* Stores arg (NULL: none given) into o. 0 or -1 with err filled. */
static int store(const struct opt *o, int as_long, const char *arg, char *err, size_t errlen)
{
	char why[256] = "";
	int r = 0;
	switch (o->type) {
	case OPT_T_FLAG:
		*(int *)o->value = 1;
		return 0;
	case OPT_T_STRING:
		*(const char **)o->value = arg;
		return 0;
	case OPT_T_DURATION:
		r = units_parse_duration_ns(arg, o->value, why, sizeof why);
		break;
	case OPT_T_SIZE:
		r = units_parse_size_bytes(arg, o->value, why, sizeof why);
		break;
	case OPT_T_COUNT:
		r = units_parse_count(arg, o->value, why, sizeof why);
		break;
	case OPT_T_CALLBACK:
		r = o->cb(o, arg, why, sizeof why);
		break;
	default:
		return 0;
	}
	if (r < 0) {
		char name[80];
		opt_name(o, as_long, name, sizeof name);
		if (arg)
			return errbuf(err, errlen, "bad value '%s' for %s: %s", arg, name, why);
		return errbuf(err, errlen, "bad %s: %s", name, why);
	}
	return 0;
}

static const struct opt *find_long(const struct opt *opts, const char *name, size_t len)
{
	for (const struct opt *o = opts; o->type != OPT_T_END; o++)
		if (parsed(o) && o->long_name && strlen(o->long_name) == len &&
		    !memcmp(o->long_name, name, len))
			return o;
	return NULL;
}

static const struct opt *find_short(const struct opt *opts, int c)
{
	for (const struct opt *o = opts; o->type != OPT_T_END; o++)
		if (parsed(o) && o->short_name == c)
			return o;
	return NULL;
}

/* --name, --name=V, --name V. Returns how many extra argv entries it used (0 or 1) or -1. */
static int parse_long(const struct opt *opts, int argc, char **argv, int i, char *err,
		      size_t errlen)
{
	const char *a = argv[i] + 2, *eq = strchr(a, '=');
	size_t len = eq ? (size_t)(eq - a) : strlen(a);
	const struct opt *o = find_long(opts, a, len);
	if (!o)
		return errbuf(err, errlen, "unknown option '--%.*s'", (int)len, a);
	const char *val = eq ? eq + 1 : NULL;
	if (!has_value(o)) {
		if (val)
			return errbuf(err, errlen, "option '--%s' takes no value", o->long_name);
		return store(o, 1, NULL, err, errlen) < 0 ? -1 : 0;
	}
	if (val || (o->flags & OPT_OPTARG))
		return store(o, 1, val, err, errlen) < 0 ? -1 : 0;
	if (i + 1 >= argc)
		return errbuf(err, errlen, "option '--%s' needs a value", o->long_name);
	return store(o, 1, argv[i + 1], err, errlen) < 0 ? -1 : 1;
}

/* -f, -fg (flags), -oV, -o V. Returns how many extra argv entries it used (0 or 1) or -1. */
static int parse_short(const struct opt *opts, int argc, char **argv, int i, char *err,
		       size_t errlen)
{
	for (const char *p = argv[i] + 1; *p; p++) {
		const struct opt *o = find_short(opts, (unsigned char)*p);
		if (!o)
			return errbuf(err, errlen, "unknown option '-%c'", *p);
		if (!has_value(o) || (o->flags & OPT_OPTARG)) {
			if (store(o, 0, NULL, err, errlen) < 0)
				return -1;
			continue;
		}
		if (p[1])
			return store(o, 0, p + 1, err, errlen) < 0 ? -1 : 0;
		if (i + 1 >= argc)
			return errbuf(err, errlen, "option '-%c' needs a value", *p);
		return store(o, 0, argv[i + 1], err, errlen) < 0 ? -1 : 1;
	}
	return 0;
}

int opt_parse(const struct opt *opts, int argc, char **argv, int flags, int *dashdash,
	      char *err, size_t errlen)
{
	int n = 0, dd = -1, i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			i++;
			dd = n;
			break;
		}
		int used;
		if (a[0] == '-' && a[1] == '-')
			used = parse_long(opts, argc, argv, i, err, errlen);
		else if (a[0] == '-' && a[1])
			used = parse_short(opts, argc, argv, i, err, errlen);
		else if (flags & OPT_STOP_AT_OPERAND)
			break;
		else {
			argv[n++] = argv[i];
			continue;
		}
		if (used < 0)
			return -1;
		i += used;
	}
	for (; i < argc; i++)
		argv[n++] = argv[i];
	argv[n] = NULL;
	if (dashdash)
		*dashdash = dd;
	return n;
}

/* "-s, --long ARG", "--long[=ARG]", "-s ARG" */
static int spec(const struct opt *o, char *buf, size_t len)
{
	if (o->type == OPT_T_DOC)
		return snprintf(buf, len, "%s", o->long_name);
	int n = 0;
	if (o->short_name && o->long_name)
		n = snprintf(buf, len, "-%c, --%s", o->short_name, o->long_name);
	else if (o->short_name)
		n = snprintf(buf, len, "-%c", o->short_name);
	else
		n = snprintf(buf, len, "--%s", o->long_name);
	if (n < 0 || (size_t)n >= len)
		return n;
	if (has_value(o))
		n += snprintf(buf + n, len - (size_t)n, (o->flags & OPT_OPTARG) ? "[=%s]" : " %s",
			      o->argh);
	return n;
}

#define OPT_HELP_COL_MAX 26

void opt_usage(FILE *f, const struct opt *opts)
{
	char buf[128];
	int width = 0;
	for (const struct opt *o = opts; o->type != OPT_T_END; o++) {
		if (o->type == OPT_T_GROUP || (o->flags & OPT_HIDDEN))
			continue;
		int n = spec(o, buf, sizeof buf);
		if (n > width && n <= OPT_HELP_COL_MAX)
			width = n;
	}
	for (const struct opt *o = opts; o->type != OPT_T_END; o++) {
		if (o->flags & OPT_HIDDEN)
			continue;
		if (o->type == OPT_T_GROUP) {
			fprintf(f, "%s%s\n", o == opts ? "" : "\n", o->long_name);
			continue;
		}
		int n = spec(o, buf, sizeof buf);
		fprintf(f, "  %s", buf);
		const char *h = o->help ? o->help : "";
		int pad = n <= width ? width - n + 2 : 2;
		for (int first = 1; *h || first; first = 0) {
			const char *nl = strchr(h, '\n');
			int len = nl ? (int)(nl - h) : (int)strlen(h);
			if (first && !len)
				fputc('\n', f);
			else if (first)
				fprintf(f, "%*s%.*s\n", pad, "", len, h);
			else
				fprintf(f, "  %*s%.*s\n", width + 2, "", len, h);
			h += len + (nl != NULL);
			if (!nl)
				break;
		}
	}
}
