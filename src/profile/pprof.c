#include "profile/pprof.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "core/outfile.h"

/* profile.proto field numbers */
enum {
	PROFILE_SAMPLE_TYPE = 1,
	PROFILE_SAMPLE = 2,
	PROFILE_MAPPING = 3,
	PROFILE_LOCATION = 4,
	PROFILE_FUNCTION = 5,
	PROFILE_STRING_TABLE = 6,
	PROFILE_TIME_NANOS = 9,
	PROFILE_DURATION_NANOS = 10,
	PROFILE_PERIOD_TYPE = 11,
	PROFILE_PERIOD = 12,
	PROFILE_COMMENT = 13,
	PROFILE_DEFAULT_SAMPLE_TYPE = 14,
	VALUETYPE_TYPE = 1,
	VALUETYPE_UNIT = 2,
	SAMPLE_LOCATION_ID = 1,
	SAMPLE_VALUE = 2,
	MAPPING_ID = 1,
	MAPPING_MEMORY_START = 2,
	MAPPING_MEMORY_LIMIT = 3,
	MAPPING_FILE_OFFSET = 4,
	MAPPING_FILENAME = 5,
	MAPPING_BUILD_ID = 6,
	MAPPING_HAS_FUNCTIONS = 7,
	MAPPING_HAS_FILENAMES = 8,
	MAPPING_HAS_LINE_NUMBERS = 9,
	LOCATION_ADDRESS = 3,
	LINE_LINE = 2,
	LOCATION_ID = 1,
	LOCATION_MAPPING_ID = 2,
	LOCATION_LINE = 4,
	LINE_FUNCTION_ID = 1,
	FUNCTION_ID = 1,
	FUNCTION_NAME = 2,
	FUNCTION_SYSTEM_NAME = 3,
	FUNCTION_FILENAME = 4,
};

enum { WT_VARINT = 0, WT_LEN = 2 };

static int put_varint(struct buf *b, uint64_t v)
{
	unsigned char tmp[10];
	int n = 0;
	do {
		tmp[n] = (unsigned char)(v & 0x7f);
		v >>= 7;
		if (v)
			tmp[n] |= 0x80;
		n++;
	} while (v);
	return buf_append(b, tmp, (size_t)n);
}

static int put_key(struct buf *b, int field, int wt)
{
	return put_varint(b, ((uint64_t)field << 3) | (uint64_t)wt);
}

static int put_uint(struct buf *b, int field, uint64_t v)
{
	return put_key(b, field, WT_VARINT) || put_varint(b, v) ? -ENOMEM : 0;
}

static int put_bytes(struct buf *b, int field, const void *p, size_t n)
{
	return put_key(b, field, WT_LEN) || put_varint(b, n) || buf_append(b, p, n) ? -ENOMEM : 0;
}

static int put_msg(struct buf *b, int field, const struct buf *m)
{
	return put_bytes(b, field, buf_head(m), buf_used(m));
}

/* ---- string table ------------------------------------------------------------------ */

struct strtab {
	char **s;
	size_t n, cap;
	uint32_t *slots;
	size_t nslots;
};

static uint64_t hash_str(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	return h;
}

static int64_t strtab_id(struct strtab *t, const char *s, size_t len)
{
	if ((t->n + 1) * 2 > t->nslots) {
		size_t ns = t->nslots ? t->nslots * 2 : 256;
		uint32_t *sl = calloc(ns, sizeof(*sl));
		if (!sl)
			return -1;
		for (size_t i = 0; i < t->n; i++) {
			size_t j = hash_str(t->s[i], strlen(t->s[i])) & (ns - 1);
			while (sl[j])
				j = (j + 1) & (ns - 1);
			sl[j] = (uint32_t)(i + 1);
		}
		free(t->slots);
		t->slots = sl;
		t->nslots = ns;
	}
	size_t j = hash_str(s, len) & (t->nslots - 1);
	while (t->slots[j]) {
		const char *k = t->s[t->slots[j] - 1];
		if (!strncmp(k, s, len) && !k[len])
			return t->slots[j] - 1;
		j = (j + 1) & (t->nslots - 1);
	}
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 256;
		char **ns = realloc(t->s, cap * sizeof(*ns));
		if (!ns)
			return -1;
		t->s = ns;
		t->cap = cap;
	}
	char *k = strndup(s, len);
	if (!k)
		return -1;
	t->s[t->n] = k;
	t->slots[j] = (uint32_t)(t->n + 1);
	return (int64_t)t->n++;
}

static int64_t strtab_cid(struct strtab *t, const char *s) { return strtab_id(t, s, strlen(s)); }

static void strtab_free(struct strtab *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->s[i]);
	free(t->s);
	free(t->slots);
}

/* ---- functions (= locations): frame name -> id ------------------------------------- */

struct fntab {
	int mapping;       /* 1: locations refer to mapping 1 */
	int64_t *name_sid; /* per string id: function id, 0 = none (grown with the string table) */
	size_t cap;
	uint64_t nfn;
	struct buf fns, locs; /* encoded Function and Location messages, appended as made */
};

static const char ksuffix[] = "_[k]";

static int64_t fn_id(struct fntab *ft, struct strtab *st, const char *frame, size_t len)
{
	int64_t sid = strtab_id(st, frame, len);
	if (sid < 0)
		return -1;
	if ((size_t)sid >= ft->cap) {
		size_t cap = ft->cap ? ft->cap : 256;
		while (cap <= (size_t)sid)
			cap *= 2;
		int64_t *n = realloc(ft->name_sid, cap * sizeof(*n));
		if (!n)
			return -1;
		memset(n + ft->cap, 0, (cap - ft->cap) * sizeof(*n));
		ft->name_sid = n;
		ft->cap = cap;
	}
	if (ft->name_sid[sid])
		return ft->name_sid[sid];
	uint64_t id = ++ft->nfn;
	ft->name_sid[sid] = (int64_t)id;
	size_t kl = sizeof(ksuffix) - 1;
	int kernel = len > kl && !memcmp(frame + len - kl, ksuffix, kl);
	int64_t name = kernel ? strtab_id(st, frame, len - kl) : sid;
	int64_t file = kernel ? strtab_cid(st, "[kernel.kallsyms]") : 0;
	if (name < 0 || file < 0)
		return -1;
	struct buf m = BUF_INIT, line = BUF_INIT;
	int r = put_uint(&m, FUNCTION_ID, id) || put_uint(&m, FUNCTION_NAME, (uint64_t)name) ||
		put_uint(&m, FUNCTION_SYSTEM_NAME, (uint64_t)name) ||
		(file && put_uint(&m, FUNCTION_FILENAME, (uint64_t)file)) ||
		put_msg(&ft->fns, PROFILE_FUNCTION, &m);
	buf_clear(&m);
	r = r || put_uint(&line, LINE_FUNCTION_ID, id) || put_uint(&m, LOCATION_ID, id) ||
	    (ft->mapping && put_uint(&m, LOCATION_MAPPING_ID, 1)) || put_msg(&m, LOCATION_LINE, &line) || put_msg(&ft->locs, PROFILE_LOCATION, &m);
	buf_free(&m);
	buf_free(&line);
	return r ? -1 : (int64_t)id;
}

/* The location of loctab entry idx (made on first use: one Location, its Function by
 * (name, file)); lids caches the ids per entry. */
static int64_t loc_id(struct fntab *ft, struct strtab *st, const struct pprof_loctab *lt,
		      uint64_t *lids, size_t idx)
{
	if (idx >= lt->nlocs)
		return -1;
	if (lids[idx])
		return (int64_t)lids[idx];
	const struct pprof_loc *l = &lt->locs[idx];
	const char *file = l->file ? l->file : "";
	size_t nl = strlen(l->func), fl = strlen(file);
	char *key = malloc(nl + fl + 2);
	if (!key)
		return -1;
	memcpy(key, l->func, nl);
	key[nl] = 0x1f; /* never in a frame name (folded_append_frame) */
	memcpy(key + nl + 1, file, fl + 1);
	int64_t sid = strtab_cid(st, key), name = strtab_cid(st, l->func), fid = strtab_cid(st, file);
	free(key);
	if (sid < 0 || name < 0 || fid < 0)
		return -1;
	if ((size_t)sid >= ft->cap) {
		size_t cap = ft->cap ? ft->cap : 256;
		while (cap <= (size_t)sid)
			cap *= 2;
		int64_t *n = realloc(ft->name_sid, cap * sizeof(*n));
		if (!n)
			return -1;
		memset(n + ft->cap, 0, (cap - ft->cap) * sizeof(*n));
		ft->name_sid = n;
		ft->cap = cap;
	}
	struct buf m = BUF_INIT, line = BUF_INIT;
	int r = 0;
	if (!ft->name_sid[sid]) {
		ft->name_sid[sid] = (int64_t)++ft->nfn;
		r = put_uint(&m, FUNCTION_ID, (uint64_t)ft->name_sid[sid]) ||
		    put_uint(&m, FUNCTION_NAME, (uint64_t)name) ||
		    put_uint(&m, FUNCTION_SYSTEM_NAME, (uint64_t)name) ||
		    (fid && put_uint(&m, FUNCTION_FILENAME, (uint64_t)fid)) ||
		    put_msg(&ft->fns, PROFILE_FUNCTION, &m);
		buf_clear(&m);
	}
	uint64_t id = ++ft->nfn;
	r = r || put_uint(&line, LINE_FUNCTION_ID, (uint64_t)ft->name_sid[sid]) ||
	    (l->line > 0 && put_uint(&line, LINE_LINE, (uint64_t)l->line)) ||
	    put_uint(&m, LOCATION_ID, id) ||
	    (l->map >= 0 && (size_t)l->map < lt->nmaps &&
	     put_uint(&m, LOCATION_MAPPING_ID, (uint64_t)l->map + 1)) ||
	    (l->addr && put_uint(&m, LOCATION_ADDRESS, l->addr)) ||
	    put_msg(&m, LOCATION_LINE, &line) || put_msg(&ft->locs, PROFILE_LOCATION, &m);
	buf_free(&m);
	buf_free(&line);
	lids[idx] = id;
	return r ? -1 : (int64_t)id;
}

static int put_mappings(struct buf *out, struct strtab *st, const struct pprof_loctab *lt)
{
	struct buf m = BUF_INIT;
	int r = 0;
	for (size_t i = 0; i < lt->nmaps && !r; i++) {
		const struct pprof_map *mp = &lt->maps[i];
		int64_t f = strtab_cid(st, mp->file ? mp->file : "");
		int64_t b = strtab_cid(st, mp->build_id ? mp->build_id : "");
		buf_clear(&m);
		r = f < 0 || b < 0 || put_uint(&m, MAPPING_ID, i + 1) ||
		    put_uint(&m, MAPPING_MEMORY_START, mp->start) ||
		    put_uint(&m, MAPPING_MEMORY_LIMIT, mp->limit) ||
		    put_uint(&m, MAPPING_FILE_OFFSET, mp->offset) ||
		    put_uint(&m, MAPPING_FILENAME, (uint64_t)f) ||
		    (b && put_uint(&m, MAPPING_BUILD_ID, (uint64_t)b)) ||
		    (mp->has_functions && put_uint(&m, MAPPING_HAS_FUNCTIONS, 1)) ||
		    (mp->has_lines && (put_uint(&m, MAPPING_HAS_FILENAMES, 1) ||
				       put_uint(&m, MAPPING_HAS_LINE_NUMBERS, 1))) ||
		    put_msg(out, PROFILE_MAPPING, &m);
	}
	buf_free(&m);
	return r ? -ENOMEM : 0;
}

static int value_type(struct buf *out, struct strtab *st, int field, const char *type,
		      const char *unit)
{
	struct buf m = BUF_INIT;
	int64_t t = strtab_cid(st, type), u = strtab_cid(st, unit);
	int r = t < 0 || u < 0 || put_uint(&m, VALUETYPE_TYPE, (uint64_t)t) ||
		put_uint(&m, VALUETYPE_UNIT, (uint64_t)u) || put_msg(out, field, &m);
	buf_free(&m);
	return r ? -ENOMEM : 0;
}

int pprof_encode(const struct pprof_desc *d, const struct folded *const *sets, const int *vc,
		 const int *vn, int nsets, struct buf *out)
{
	struct strtab st = {0};
	struct fntab ft = {0};
	struct buf samples = BUF_INIT, m = BUF_INIT, ids = BUF_INIT, vals = BUF_INIT;
	uint64_t *stackids = NULL, *lids = NULL;
	size_t stackcap = 0;
	const struct pprof_loctab *lt = d->loctab;
	int r = -ENOMEM;
	if (d->nvalues < 1 || d->nvalues > PPROF_MAX_VALUES)
		return -EINVAL;
	if (strtab_cid(&st, "") != 0)
		goto out;
	for (int v = 0; v < d->nvalues; v++)
		if (value_type(out, &st, PROFILE_SAMPLE_TYPE, d->type[v], d->unit[v]))
			goto out;
	if (lt) {
		lids = calloc(lt->nlocs ? lt->nlocs : 1, sizeof(*lids));
		if (!lids || put_mappings(out, &st, lt))
			goto out;
	} else if (d->main_binary) {
		int64_t fid = strtab_cid(&st, d->main_binary);
		if (fid < 0 || put_uint(&m, MAPPING_ID, 1) ||
		    put_uint(&m, MAPPING_FILENAME, (uint64_t)fid) ||
		    put_uint(&m, MAPPING_HAS_FUNCTIONS, 1) || put_msg(out, PROFILE_MAPPING, &m))
			goto out;
		buf_clear(&m);
		ft.mapping = 1;
	}
	for (int s = 0; s < nsets; s++) {
		const struct folded *f = sets[s];
		for (size_t i = 0; i < f->n; i++) {
			const struct folded_entry *e = &f->e[i];
			if (!e->count && !e->ns)
				continue;
			size_t k = 0;
			const char *p = e->stack;
			for (;;) {
				const char *semi = strchr(p, ';');
				size_t len = semi ? (size_t)(semi - p) : strlen(p);
				if (len) {
					int64_t id = lt && k ? loc_id(&ft, &st, lt, lids,
								       strtoull(p, NULL, 10))
							     : fn_id(&ft, &st, p, len);
					if (id < 0)
						goto out;
					if (k == stackcap) {
						size_t cap = stackcap ? stackcap * 2 : 128;
						uint64_t *n = realloc(stackids, cap * sizeof(*n));
						if (!n)
							goto out;
						stackids = n;
						stackcap = cap;
					}
					stackids[k++] = (uint64_t)id;
				}
				if (!semi)
					break;
				p = semi + 1;
			}
			buf_clear(&ids);
			buf_clear(&vals);
			buf_clear(&m);
			for (size_t j = k; j-- > 0;) /* leaf first */
				if (put_varint(&ids, stackids[j]))
					goto out;
			for (int v = 0; v < d->nvalues; v++) {
				uint64_t x = v == vc[s] ? e->count : v == vn[s] ? e->ns : 0;
				if (put_varint(&vals, x))
					goto out;
			}
			if (put_msg(&m, SAMPLE_LOCATION_ID, &ids) || put_msg(&m, SAMPLE_VALUE, &vals) ||
			    put_msg(&samples, PROFILE_SAMPLE, &m))
				goto out;
		}
	}
	if (buf_append(out, buf_head(&samples), buf_used(&samples)) ||
	    buf_append(out, buf_head(&ft.locs), buf_used(&ft.locs)) ||
	    buf_append(out, buf_head(&ft.fns), buf_used(&ft.fns)))
		goto out;
	int64_t period_t = -1, period_u = -1, comment = -1, deftype = -1;
	if (d->period_type && ((period_t = strtab_cid(&st, d->period_type)) < 0 ||
			       (period_u = strtab_cid(&st, d->period_unit)) < 0))
		goto out;
	if (d->comment && (comment = strtab_cid(&st, d->comment)) < 0)
		goto out;
	if (d->default_type && (deftype = strtab_cid(&st, d->default_type)) < 0)
		goto out;
	for (size_t i = 0; i < st.n; i++)
		if (put_bytes(out, PROFILE_STRING_TABLE, st.s[i], strlen(st.s[i])))
			goto out;
	if (d->time_nanos && put_uint(out, PROFILE_TIME_NANOS, (uint64_t)d->time_nanos))
		goto out;
	if (d->duration_nanos && put_uint(out, PROFILE_DURATION_NANOS, (uint64_t)d->duration_nanos))
		goto out;
	if (d->period_type) {
		buf_clear(&m);
		if (put_uint(&m, VALUETYPE_TYPE, (uint64_t)period_t) ||
		    put_uint(&m, VALUETYPE_UNIT, (uint64_t)period_u) ||
		    put_msg(out, PROFILE_PERIOD_TYPE, &m) ||
		    put_uint(out, PROFILE_PERIOD, (uint64_t)d->period))
			goto out;
	}
	if (comment >= 0 && put_uint(out, PROFILE_COMMENT, (uint64_t)comment))
		goto out;
	if (deftype >= 0 && put_uint(out, PROFILE_DEFAULT_SAMPLE_TYPE, (uint64_t)deftype))
		goto out;
	r = 0;
out:
	strtab_free(&st);
	free(ft.name_sid);
	buf_free(&ft.fns);
	buf_free(&ft.locs);
	buf_free(&samples);
	buf_free(&m);
	buf_free(&ids);
	buf_free(&vals);
	free(stackids);
	free(lids);
	return r;
}

int pprof_write_gz(const void *data, size_t len, const char *path)
{
	struct outfile o;
	int r = outfile_open(&o, path, 0);
	if (r)
		return r;
	int fd = dup(o.fd); /* gzclose closes it; the outfile keeps its own */
	gzFile g = fd >= 0 ? gzdopen(fd, "wb9") : NULL;
	if (!g) {
		if (fd >= 0)
			close(fd);
		outfile_abort(&o);
		return -ENOMEM;
	}
	const char *p = data;
	while (len) {
		unsigned chunk = len > (1u << 30) ? (1u << 30) : (unsigned)len;
		int w = gzwrite(g, p, chunk);
		if (w <= 0) {
			gzclose(g);
			outfile_abort(&o);
			return -EIO;
		}
		p += w;
		len -= (size_t)w;
	}
	if (gzclose(g) != Z_OK) {
		outfile_abort(&o);
		return -EIO;
	}
	return outfile_commit(&o);
}
