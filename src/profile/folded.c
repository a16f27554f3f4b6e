#include "profile/folded.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"

static uint64_t hash_bytes(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

void folded_init(struct folded *f) { memset(f, 0, sizeof(*f)); }

void folded_release(struct folded *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->e[i].stack);
	free(f->e);
	free(f->slots);
	folded_init(f);
}

static int rehash(struct folded *f, size_t nslots)
{
	uint32_t *s = calloc(nslots, sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < f->n; i++) {
		const char *k = f->e[i].stack;
		size_t j = hash_bytes(k, strlen(k)) & (nslots - 1);
		while (s[j])
			j = (j + 1) & (nslots - 1);
		s[j] = (uint32_t)(i + 1);
	}
	free(f->slots);
	f->slots = s;
	f->nslots = nslots;
	return 0;
}

int folded_add(struct folded *f, const char *stack, size_t len, uint64_t count, uint64_t ns)
{
	if (memchr(stack, 0, len))
		return -EINVAL; /* stored as a C string: the lookup below relies on it */
	if (f->n >= UINT32_MAX - 1)
		return -ENOSPC;
	if ((f->n + 1) * 2 > f->nslots) {
		int r = rehash(f, f->nslots ? f->nslots * 2 : 256);
		if (r)
			return r;
	}
	size_t j = hash_bytes(stack, len) & (f->nslots - 1);
	while (f->slots[j]) {
		struct folded_entry *e = &f->e[f->slots[j] - 1];
		if (!strncmp(e->stack, stack, len) && e->stack[len] == 0) {
			e->count += count;
			e->ns += ns;
			f->total += count;
			f->total_ns += ns;
			return 0;
		}
		j = (j + 1) & (f->nslots - 1);
	}
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 64;
		struct folded_entry *ne = realloc(f->e, cap * sizeof(*ne));
		if (!ne)
			return -ENOMEM;
		f->e = ne;
		f->cap = cap;
	}
	char *k = malloc(len + 1);
	if (!k)
		return -ENOMEM;
	memcpy(k, stack, len);
	k[len] = 0;
	f->e[f->n] = (struct folded_entry){k, count, ns};
	f->n++;
	f->slots[j] = (uint32_t)f->n;
	f->total += count;
	f->total_ns += ns;
	return 0;
}

int folded_parse(struct folded *f, const char *text, size_t len, char *err, size_t errlen)
{
	size_t lineno = 0;
	int merged = 0;
	const char *p = text, *end = text + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		lineno++;
		const char *q = le;
		if (q > p && q[-1] == '\r')
			q--;
		while (q > p && (q[-1] == ' ' || q[-1] == '\t'))
			q--;
		if (q == p || *p == '#') {
			p = nl ? nl + 1 : end;
			continue;
		}
		if (memchr(p, 0, (size_t)(q - p))) {
			errbuf(err, errlen, "line %zu: NUL byte (folded stacks are text)", lineno);
			return -EINVAL;
		}
		const char *sp = q;
		while (sp > p && sp[-1] != ' ' && sp[-1] != '\t')
			sp--;
		if (sp == p || sp == q) {
			errbuf(err, errlen, "line %zu: no count after the last space (expected "
				 "'frame;frame COUNT')", lineno);
			return -EINVAL;
		}
		uint64_t c = 0;
		for (const char *d = sp; d < q; d++) {
			/* flamegraph.pl accepts fractional counts; keep the integer part */
			if (*d == '.') {
				for (d++; d < q && *d >= '0' && *d <= '9'; d++)
					;
				if (d != q)
					goto bad;
				break;
			}
			if (*d < '0' || *d > '9' || c > (UINT64_MAX - 9) / 10)
				goto bad;
			c = c * 10 + (uint64_t)(*d - '0');
		}
		const char *se = sp;
		while (se > p && (se[-1] == ' ' || se[-1] == '\t'))
			se--;
		if (se == p)
			goto bad;
		int r = folded_add(f, p, (size_t)(se - p), c, 0);
		if (r)
			return r;
		merged++;
		p = nl ? nl + 1 : end;
		continue;
	bad:
		errbuf(err, errlen, "line %zu: bad count '%.*s' (expected a non-negative integer "
			 "after the last space)", lineno, (int)(q - sp), sp);
		return -EINVAL;
	}
	return merged;
}

int folded_read_file(struct folded *f, const char *path, char *err, size_t errlen)
{
	int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : 0;
	if (fd < 0) {
		int e = errno;
		errbuf(err, errlen, "cannot open '%s': %s", path, strerror(e));
		return -e;
	}
	size_t len = 0, cap = 1 << 16;
	char *b = malloc(cap);
	int r = 0;
	if (!b) {
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		if (len == cap) {
			char *nb = realloc(b, cap * 2);
			if (!nb) {
				r = -ENOMEM;
				goto out;
			}
			b = nb;
			cap *= 2;
		}
		ssize_t n = read(fd, b + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			errbuf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	r = folded_parse(f, b, len, err, errlen);
	if (r == -EINVAL) {
		char tmp[256];
		snprintf(tmp, sizeof tmp, "%s", err);
		errbuf(err, errlen, "'%s' %s", path, tmp);
	}
out:
	free(b);
	if (fd > 0)
		close(fd);
	return r < 0 ? r : 0;
}

int folded_append_frame(struct buf *b, const char *name)
{
	for (const char *c = name; *c; c++) {
		char ch = *c;
		if (ch == ';')
			ch = ':';
		else if (ch == '\n' || ch == '\r' || ch == '\t')
			ch = ' ';
		else if ((unsigned char)ch < 0x20)
			ch = '?';
		if (buf_append(b, &ch, 1))
			return -ENOMEM;
	}
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct folded_entry *)a)->stack,
		      ((const struct folded_entry *)b)->stack);
}

void folded_sort(struct folded *f)
{
	if (f->n > 1)
		qsort(f->e, f->n, sizeof(*f->e), cmp_entry);
	if (f->nslots)
		rehash(f, f->nslots); /* same size: cannot need more memory than it had */
}

int folded_write(const struct folded *f, FILE *out)
{
	for (size_t i = 0; i < f->n; i++)
		if (f->e[i].count)
			fprintf(out, "%s %llu\n", f->e[i].stack, (unsigned long long)f->e[i].count);
	return ferror(out) ? -EIO : 0;
}

/* ---- per-function totals -------------------------------------------------------------- */

struct fnmap {
	struct folded_fn *v;
	size_t n, cap;
	uint32_t *slots;
	size_t nslots;
	uint64_t *seen; /* per fn: index of the last stack that counted it in total */
};

static long fn_get(struct fnmap *m, const char *s, size_t len)
{
	if ((m->n + 1) * 2 > m->nslots) {
		size_t ns = m->nslots ? m->nslots * 2 : 256;
		uint32_t *sl = calloc(ns, sizeof(*sl));
		if (!sl)
			return -1;
		for (size_t i = 0; i < m->n; i++) {
			size_t j = hash_bytes(m->v[i].name, strlen(m->v[i].name)) & (ns - 1);
			while (sl[j])
				j = (j + 1) & (ns - 1);
			sl[j] = (uint32_t)(i + 1);
		}
		free(m->slots);
		m->slots = sl;
		m->nslots = ns;
	}
	size_t j = hash_bytes(s, len) & (m->nslots - 1);
	while (m->slots[j]) {
		struct folded_fn *fn = &m->v[m->slots[j] - 1];
		if (!strncmp(fn->name, s, len) && fn->name[len] == 0)
			return (long)(m->slots[j] - 1);
		j = (j + 1) & (m->nslots - 1);
	}
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		struct folded_fn *nv = realloc(m->v, cap * sizeof(*nv));
		uint64_t *nseen = realloc(m->seen, cap * sizeof(*nseen));
		if (nv)
			m->v = nv;
		if (nseen)
			m->seen = nseen;
		if (!nv || !nseen)
			return -1;
		m->cap = cap;
	}
	char *k = strndup(s, len);
	if (!k)
		return -1;
	m->v[m->n] = (struct folded_fn){k, 0, 0};
	m->seen[m->n] = 0;
	m->slots[j] = (uint32_t)(m->n + 1);
	return (long)m->n++;
}

static int cmp_fn(const void *a, const void *b)
{
	const struct folded_fn *x = a, *y = b;
	if (x->self != y->self)
		return x->self < y->self ? 1 : -1;
	if (x->total != y->total)
		return x->total < y->total ? 1 : -1;
	return strcmp(x->name, y->name);
}

struct folded_fn *folded_functions(const struct folded *f, int skip_root, size_t *n)
{
	struct fnmap m = {0};
	*n = 0;
	for (size_t i = 0; i < f->n; i++) {
		const char *s = f->e[i].stack;
		const char *p = s;
		int depth = 0;
		long last = -1;
		for (;;) {
			const char *semi = strchr(p, ';');
			size_t len = semi ? (size_t)(semi - p) : strlen(p);
			if (!(skip_root && depth == 0) && len) {
				long k = fn_get(&m, p, len);
				if (k < 0)
					goto oom;
				if (m.seen[k] != i + 1) {
					m.seen[k] = i + 1;
					m.v[k].total += f->e[i].count;
				}
				last = k;
			}
			depth++;
			if (!semi)
				break;
			p = semi + 1;
		}
		if (last >= 0 && !strchr(p, ';') && (size_t)(p - s) <= strlen(s)) {
			/* the leaf is the last frame; with skip_root a one-frame stack has none */
			if (!(skip_root && depth == 1))
				m.v[last].self += f->e[i].count;
		}
	}
	free(m.slots);
	free(m.seen);
	if (m.n > 1)
		qsort(m.v, m.n, sizeof(*m.v), cmp_fn);
	*n = m.n;
	if (!m.n) {
		free(m.v);
		return NULL;
	}
	return m.v;
oom:
	free(m.slots);
	free(m.seen);
	folded_fns_free(m.v, m.n);
	return NULL;
}

void folded_fns_free(struct folded_fn *fns, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(fns[i].name);
	free(fns);
}
