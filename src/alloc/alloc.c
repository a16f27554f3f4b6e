#include "alloc/alloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "profile/symbols.h"

static const char *const kind_names[ALLOCREC_NALLOC_KINDS] = {
	"?", "malloc", "calloc", "realloc", "memalign", "posix_memalign", "aligned_alloc",
	"valloc", "pvalloc"};

const char *alloc_kind_name(int kind)
{
	return kind > 0 && kind < ALLOCREC_NALLOC_KINDS ? kind_names[kind] : "?";
}

static int errf(char *err, size_t errlen, int r, const char *fmt, const char *arg)
{
	snprintf(err, errlen, fmt, arg, strerror(-r));
	return r;
}

/* one rec.PID.N, mapped */
struct image {
	void *map;
	size_t len;
	struct allocrec_hdr hdr;
	char *maps; /* NULL when maps.PID.N is missing */
};

/* one recorded event (pointer into an image's map) */
struct ev {
	const struct allocrec *r;
	uint32_t img;
	uint32_t stack;  /* allocations: stack id */
	double w;        /* allocations: weight */
	uint64_t end_ts; /* allocations: ts of the matching free, UINT64_MAX if none */
};

struct stack {
	uint32_t img;
	uint32_t depth;
	const uint64_t *frames;
	double a_obj, a_bytes, i_obj, i_bytes, p_obj, p_bytes;
};

struct stacks {
	struct stack *s;
	size_t n, cap;
	uint32_t *slots; /* id + 1 */
	size_t nslots;
};

static uint64_t stack_hash(uint32_t img, const uint64_t *fr, uint32_t d)
{
	uint64_t h = 1469598103934665603ULL ^ img;
	for (uint32_t i = 0; i < d; i++)
		h = (h ^ fr[i]) * 1099511628211ULL;
	return h ^ (h >> 29);
}

static int64_t stack_id(struct stacks *t, uint32_t img, const uint64_t *fr, uint32_t d)
{
	if ((t->n + 1) * 2 > t->nslots) {
		size_t ns = t->nslots ? t->nslots * 2 : 1024;
		uint32_t *sl = calloc(ns, sizeof(*sl));
		if (!sl)
			return -1;
		for (size_t i = 0; i < t->n; i++) {
			size_t j = stack_hash(t->s[i].img, t->s[i].frames, t->s[i].depth) & (ns - 1);
			while (sl[j])
				j = (j + 1) & (ns - 1);
			sl[j] = (uint32_t)(i + 1);
		}
		free(t->slots);
		t->slots = sl;
		t->nslots = ns;
	}
	size_t j = stack_hash(img, fr, d) & (t->nslots - 1);
	while (t->slots[j]) {
		const struct stack *s = &t->s[t->slots[j] - 1];
		if (s->img == img && s->depth == d && !memcmp(s->frames, fr, d * sizeof(*fr)))
			return t->slots[j] - 1;
		j = (j + 1) & (t->nslots - 1);
	}
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 1024;
		struct stack *ns = realloc(t->s, cap * sizeof(*ns));
		if (!ns)
			return -1;
		t->s = ns;
		t->cap = cap;
	}
	t->s[t->n] = (struct stack){.img = img, .depth = d, .frames = fr};
	t->slots[j] = (uint32_t)(t->n + 1);
	return (int64_t)t->n++;
}

/* live blocks of one image: address -> event index (open addressing, deletion by
 * backward shift) */
struct live {
	uint64_t *key;
	uint32_t *val;
	size_t n, nslots;
};

static size_t live_slot(uint64_t a, size_t mask) { return (size_t)((a >> 4) * 0x9E3779B97F4A7C15ull >> 17) & mask; }

static int live_put(struct live *l, uint64_t a, uint32_t v)
{
	if ((l->n + 1) * 2 > l->nslots) {
		size_t ns = l->nslots ? l->nslots * 2 : 4096;
		uint64_t *k = calloc(ns, sizeof(*k));
		uint32_t *vv = calloc(ns, sizeof(*vv));
		if (!k || !vv) {
			free(k);
			free(vv);
			return -ENOMEM;
		}
		for (size_t i = 0; i < l->nslots; i++)
			if (l->key[i]) {
				size_t j = live_slot(l->key[i], ns - 1);
				while (k[j])
					j = (j + 1) & (ns - 1);
				k[j] = l->key[i];
				vv[j] = l->val[i];
			}
		free(l->key);
		free(l->val);
		l->key = k;
		l->val = vv;
		l->nslots = ns;
	}
	size_t m = l->nslots - 1, j = live_slot(a, m);
	while (l->key[j] && l->key[j] != a)
		j = (j + 1) & m;
	if (!l->key[j])
		l->n++;
	l->key[j] = a;
	l->val[j] = v;
	return 0;
}

/* Removes a; returns its value + 1, or 0 when a is not live. */
static uint64_t live_take(struct live *l, uint64_t a)
{
	if (!l->nslots)
		return 0;
	size_t m = l->nslots - 1, j = live_slot(a, m);
	while (l->key[j] && l->key[j] != a)
		j = (j + 1) & m;
	if (!l->key[j])
		return 0;
	uint64_t v = (uint64_t)l->val[j] + 1;
	l->key[j] = 0;
	l->n--;
	/* backward-shift the cluster after j */
	size_t i = j;
	for (;;) {
		i = (i + 1) & m;
		if (!l->key[i])
			break;
		size_t h = live_slot(l->key[i], m);
		/* move key[i] into the hole at j unless its home lies cyclically in (j, i] */
		if (((i - h) & m) >= ((i - j) & m)) {
			l->key[j] = l->key[i];
			l->val[j] = l->val[i];
			l->key[i] = 0;
			j = i;
		}
	}
	return v;
}

static void live_clear(struct live *l)
{
	free(l->key);
	free(l->val);
	*l = (struct live){0};
}

static int cmp_seq(const void *a, const void *b)
{
	const struct ev *x = a, *y = b;
	if (x->img != y->img)
		return x->img < y->img ? -1 : 1;
	return x->r->seq < y->r->seq ? -1 : x->r->seq > y->r->seq;
}

struct delta {
	uint64_t ts;
	double d;
};

static int cmp_delta(const void *a, const void *b)
{
	const struct delta *x = a, *y = b;
	return x->ts < y->ts ? -1 : x->ts > y->ts;
}

static char *read_text(const char *path)
{
	struct buf b = BUF_INIT;
	if (buf_read_file(&b, path) || buf_append(&b, "", 1)) {
		buf_free(&b);
		return NULL;
	}
	return (char *)buf_head(&b);
}

/* Reads one rec file into images[*n] and appends its events. */
static int load_image(const char *dir, const char *name, struct image *im, struct ev **evs,
		      size_t *nev, size_t *capev, uint32_t idx, struct alloc_result *r)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size < ALLOCREC_HDR_SIZE) {
		close(fd);
		return -EINVAL;
	}
	im->len = (size_t)st.st_size;
	im->map = mmap(NULL, im->len, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (im->map == MAP_FAILED) {
		im->map = NULL;
		return -errno;
	}
	memcpy(&im->hdr, im->map, sizeof im->hdr);
	if (im->hdr.magic != ALLOCREC_MAGIC || im->hdr.version != 1)
		return -EINVAL;
	im->hdr.comm[sizeof im->hdr.comm - 1] = 0;
	im->hdr.exe[sizeof im->hdr.exe - 1] = 0;
	snprintf(path, sizeof path, "%s/maps.%s", dir, name + 4);
	im->maps = read_text(path);
	uint64_t nch = (im->len - ALLOCREC_HDR_SIZE) / ALLOCREC_CHUNK;
	for (uint64_t c = 0; c < nch; c++) {
		const char *base = (const char *)im->map + ALLOCREC_HDR_SIZE + c * ALLOCREC_CHUNK;
		const struct allocrec_chunkhdr *ch = (const void *)base;
		for (int k = 1; k < ALLOCREC_NALLOC_KINDS; k++) {
			r->calls[k] += ch->calls[k];
			r->calls_total += ch->calls[k];
		}
		r->frees += ch->frees;
		r->bytes_requested += ch->bytes;
		r->dropped += ch->dropped;
		size_t off = ALLOCREC_CHUNKHDR;
		while (off + sizeof(struct allocrec) <= ALLOCREC_CHUNK) {
			const struct allocrec *rec = (const void *)(base + off);
			if (rec->kind == ALLOCREC_END)
				break;
			size_t sz = sizeof(struct allocrec) + (size_t)rec->depth * 8;
			int ok = rec->depth <= ALLOCREC_MAX_DEPTH && off + sz <= ALLOCREC_CHUNK &&
				 ((rec->kind > 0 && rec->kind < ALLOCREC_NALLOC_KINDS) ||
				  rec->kind == ALLOCREC_FREE || rec->kind == ALLOCREC_FREE_REALLOC);
			if (!ok) { /* damaged: the rest of this chunk cannot be trusted */
				r->bad_records++;
				break;
			}
			if (*nev == *capev) {
				size_t cap = *capev ? *capev * 2 : 65536;
				struct ev *n = realloc(*evs, cap * sizeof(*n));
				if (!n)
					return -ENOMEM;
				*evs = n;
				*capev = cap;
			}
			(*evs)[(*nev)++] = (struct ev){.r = rec, .img = idx, .end_ts = UINT64_MAX};
			off += sz;
		}
	}
	return 0;
}

int alloc_read_dir(const char *dir, struct alloc_result *r, char *err, size_t errlen)
{
	memset(r, 0, sizeof *r);
	folded_init(&r->alloc);
	folded_init(&r->inuse);
	folded_init(&r->peak);
	DIR *d = opendir(dir);
	if (!d)
		return errf(err, errlen, -errno, "cannot open '%s': %s", dir);
	struct image *imgs = NULL;
	size_t nimg = 0, capimg = 0, nev = 0, capev = 0;
	struct ev *evs = NULL;
	struct delta *dl = NULL;
	struct stacks st = {0};
	struct live live = {0};
	struct symbols *sy = NULL;
	struct buf sb = BUF_INIT;
	int rc = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "rec.", 4) || strstr(de->d_name, ".tmp"))
			continue;
		if (nimg == capimg) {
			size_t cap = capimg ? capimg * 2 : 16;
			struct image *n = realloc(imgs, cap * sizeof(*n));
			if (!n) {
				rc = -ENOMEM;
				break;
			}
			imgs = n;
			capimg = cap;
		}
		imgs[nimg] = (struct image){0};
		int e = load_image(dir, de->d_name, &imgs[nimg], &evs, &nev, &capev, (uint32_t)nimg, r);
		nimg++;
		if (e == -ENOMEM) {
			rc = e;
			break;
		}
		if (e) { /* not ours, or empty: skip it */
			if (imgs[nimg - 1].map)
				munmap(imgs[nimg - 1].map, imgs[nimg - 1].len);
			free(imgs[nimg - 1].maps);
			nimg--;
		}
	}
	closedir(d);
	if (rc) {
		snprintf(err, errlen, "reading '%s': %s", dir, strerror(-rc));
		goto out;
	}
	if (!nimg) {
		rc = -ENOENT;
		snprintf(err, errlen, "no allocation records in '%s'", dir);
		goto out;
	}
	/* the command is the image that started first */
	size_t first = 0;
	uint64_t t0 = UINT64_MAX;
	for (size_t i = 0; i < nimg; i++) {
		const struct allocrec_hdr *h = &imgs[i].hdr;
		if (h->start_ts && h->start_ts < imgs[first].hdr.start_ts)
			first = i;
		if (h->start_ts && h->start_ts < t0)
			t0 = h->start_ts;
		r->sample_mean = h->sample_mean;
	}
	r->images = (int)nimg;
	snprintf(r->comm, sizeof r->comm, "%s", imgs[first].hdr.comm);
	snprintf(r->exe, sizeof r->exe, "%s", imgs[first].hdr.exe);
	r->records = nev;
	if (nev)
		qsort(evs, nev, sizeof(*evs), cmp_seq);
	dl = malloc((nev ? 2 * nev : 1) * sizeof(*dl)); /* a duplicate adds one */
	if (!dl) {
		rc = -ENOMEM;
		goto nomem;
	}
	size_t ndl = 0;
	double mean = (double)r->sample_mean;
	for (size_t i = 0; i < nev; i++) {
		struct ev *e = &evs[i];
		if (i && e->img != evs[i - 1].img)
			live_clear(&live);
		const struct allocrec *rec = e->r;
		if (rec->kind < ALLOCREC_NALLOC_KINDS) {
			int64_t sid = stack_id(&st, e->img, rec->frames, rec->depth);
			if (sid < 0) {
				rc = -ENOMEM;
				goto nomem;
			}
			double s = (double)rec->size;
			e->stack = (uint32_t)sid;
			e->w = mean > 0 && s > 0 ? 1.0 / (1.0 - exp(-s / mean)) : 1.0;
			st.s[sid].a_obj += e->w;
			st.s[sid].a_bytes += s * e->w;
			r->recorded[rec->kind]++;
			uint64_t dup = live_take(&live, rec->addr);
			if (dup) { /* allocated again with no free seen (a record lost): end it here */
				struct ev *a = &evs[dup - 1];
				a->end_ts = rec->ts;
				dl[ndl++] = (struct delta){rec->ts, -(double)a->r->size * a->w};
				r->bad_records++;
			}
			if (live_put(&live, rec->addr, (uint32_t)i)) {
				rc = -ENOMEM;
				goto nomem;
			}
			dl[ndl++] = (struct delta){rec->ts, s * e->w};
		} else {
			uint64_t v = live_take(&live, rec->addr);
			if (!v) {
				r->unmatched_frees++;
				continue;
			}
			struct ev *a = &evs[v - 1];
			a->end_ts = rec->ts;
			dl[ndl++] = (struct delta){rec->ts, -(double)a->r->size * a->w};
		}
	}
	live_clear(&live);
	/* the curve and its peak */
	if (ndl)
		qsort(dl, ndl, sizeof(*dl), cmp_delta);
	double cur = 0, peak = 0;
	uint64_t peak_ts = 0, tlast = ndl ? dl[ndl - 1].ts : t0;
	for (size_t i = 0; i < ndl; i++) {
		cur += dl[i].d;
		if (cur > peak * (1 + 1e-12) && cur > 0) {
			peak = cur;
			peak_ts = dl[i].ts;
		}
	}
	if (t0 == UINT64_MAX)
		t0 = ndl ? dl[0].ts : 0;
	r->peak_bytes = peak;
	r->peak_t_ns = peak_ts > t0 ? peak_ts - t0 : 0;
	r->duration_ns = tlast > t0 ? tlast - t0 : 0;
	r->curve = calloc(ALLOC_CURVE_MAX + 2, sizeof(*r->curve));
	if (!r->curve) {
		rc = -ENOMEM;
		goto nomem;
	}
	if (ndl <= ALLOC_CURVE_MAX) {
		cur = 0;
		for (size_t i = 0; i < ndl; i++) {
			cur += dl[i].d;
			r->curve[r->ncurve++] = (struct alloc_point){dl[i].ts - t0, cur};
		}
	} else { /* one point per bucket of time: the bucket's highest, in time order */
		int nb = ALLOC_CURVE_MAX - 1;
		double span = (double)(tlast - t0) + 1;
		cur = 0;
		size_t i = 0;
		for (int b = 0; b < nb && i < ndl; b++) {
			uint64_t end = t0 + (uint64_t)(span * (b + 1) / nb);
			double hi = -1;
			uint64_t hits = 0;
			for (; i < ndl && (dl[i].ts <= end || b == nb - 1); i++) {
				cur += dl[i].d;
				if (cur > hi) {
					hi = cur;
					hits = dl[i].ts;
				}
			}
			if (hi >= 0)
				r->curve[r->ncurve++] = (struct alloc_point){hits - t0, hi};
		}
		if (r->ncurve && cur != r->curve[r->ncurve - 1].inuse) /* where it ends */
			r->curve[r->ncurve++] = (struct alloc_point){tlast - t0, cur};
	}
	/* in use at the end, and at the peak */
	for (size_t i = 0; i < nev; i++) {
		const struct ev *e = &evs[i];
		if (e->r->kind >= ALLOCREC_NALLOC_KINDS)
			continue;
		double s = (double)e->r->size;
		struct stack *sk = &st.s[e->stack];
		if (e->end_ts == UINT64_MAX) {
			sk->i_obj += e->w;
			sk->i_bytes += s * e->w;
		}
		if (peak > 0 && e->r->ts <= peak_ts && e->end_ts > peak_ts) {
			sk->p_obj += e->w;
			sk->p_bytes += s * e->w;
		}
	}
	/* symbolize each stack once */
	sy = symbols_new();
	if (!sy) {
		rc = -ENOMEM;
		goto nomem;
	}
	for (size_t i = 0; i < st.n; i++) {
		struct stack *sk = &st.s[i];
		r->alloc_objects += sk->a_obj;
		r->alloc_bytes += sk->a_bytes;
		r->inuse_objects += sk->i_obj;
		r->inuse_bytes += sk->i_bytes;
		r->peak_objects += sk->p_obj;
		const struct image *im = &imgs[sk->img];
		buf_clear(&sb);
		if (folded_append_frame(&sb, im->hdr.comm[0] ? im->hdr.comm : "[unknown]")) {
			rc = -ENOMEM;
			goto nomem;
		}
		for (uint32_t f = sk->depth; f-- > 0;) {
			char tmp[512];
			const char *name = im->maps ? symbols_user(sy, im->maps, sk->frames[f] - 1, tmp,
								   sizeof tmp)
						    : "[unknown]";
			if (buf_append(&sb, ";", 1) || folded_append_frame(&sb, name)) {
				rc = -ENOMEM;
				goto nomem;
			}
		}
		const char *str = (const char *)buf_head(&sb);
		size_t len = buf_used(&sb);
		if ((sk->a_bytes > 0 || sk->a_obj > 0) &&
		    folded_add(&r->alloc, str, len, (uint64_t)llround(sk->a_bytes),
			       (uint64_t)llround(sk->a_obj)))
			rc = -ENOMEM;
		if (sk->i_obj > 0 && folded_add(&r->inuse, str, len, (uint64_t)llround(sk->i_bytes),
						(uint64_t)llround(sk->i_obj)))
			rc = -ENOMEM;
		if (sk->p_obj > 0 && folded_add(&r->peak, str, len, (uint64_t)llround(sk->p_bytes),
						(uint64_t)llround(sk->p_obj)))
			rc = -ENOMEM;
		if (rc)
			goto nomem;
	}
	goto out;
nomem:
	snprintf(err, errlen, "reading '%s': %s", dir, strerror(-rc));
out:
	symbols_free(sy);
	buf_free(&sb);
	live_clear(&live);
	free(st.s);
	free(st.slots);
	free(dl);
	free(evs);
	for (size_t i = 0; i < nimg; i++) {
		if (imgs[i].map)
			munmap(imgs[i].map, imgs[i].len);
		free(imgs[i].maps);
	}
	free(imgs);
	return rc;
}

void alloc_result_release(struct alloc_result *r)
{
	folded_release(&r->alloc);
	folded_release(&r->inuse);
	folded_release(&r->peak);
	free(r->curve);
	r->curve = NULL;
	r->ncurve = 0;
}

int alloc_curve_tsv(const struct alloc_result *r, FILE *out)
{
	fprintf(out, "# t_ns\tinuse_bytes%s\n", r->sample_mean ? " (estimated: sampled)" : "");
	for (size_t i = 0; i < r->ncurve; i++)
		fprintf(out, "%llu\t%.0f\n", (unsigned long long)r->curve[i].t_ns, r->curve[i].inuse);
	return ferror(out) ? -EIO : 0;
}

int alloc_counters_read(const char *dir, struct alloc_counters *c)
{
	memset(c, 0, sizeof *c);
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "rec.", 4) || strstr(de->d_name, ".tmp"))
			continue;
		char path[4200];
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			continue;
		struct allocrec_hdr h;
		struct stat st;
		if (pread(fd, &h, sizeof h, 0) == (ssize_t)sizeof h && h.magic == ALLOCREC_MAGIC &&
		    fstat(fd, &st) == 0) {
			c->images++;
			uint64_t nch = st.st_size > ALLOCREC_HDR_SIZE
					       ? ((uint64_t)st.st_size - ALLOCREC_HDR_SIZE) / ALLOCREC_CHUNK
					       : 0;
			for (uint64_t k = 0; k < nch; k++) {
				struct allocrec_chunkhdr ch;
				if (pread(fd, &ch, sizeof ch,
					  (off_t)(ALLOCREC_HDR_SIZE + k * ALLOCREC_CHUNK)) != (ssize_t)sizeof ch)
					break;
				for (int i = 1; i < ALLOCREC_NALLOC_KINDS; i++)
					c->calls += ch.calls[i];
				c->bytes += ch.bytes;
				c->frees += ch.frees;
			}
		}
		close(fd);
	}
	closedir(d);
	return c->images ? 0 : -ENOENT;
}

int alloc_lib_path(const char *exe, char *out, size_t len)
{
	char dir[2048];
	if (exe) {
		snprintf(dir, sizeof dir, "%s", exe);
	} else {
		ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
		if (n <= 0)
			return -1;
		dir[n] = 0;
	}
	char *slash = strrchr(dir, '/');
	if (!slash)
		return -1;
	*slash = 0;
	snprintf(out, len, "%s/libctxlab-alloc.so", dir);
	if (access(out, R_OK) == 0)
		return 0;
	snprintf(out, len, "%s/../lib/ctxlab/libctxlab-alloc.so", dir);
	return access(out, R_OK) == 0 ? 0 : -1;
}

void alloc_dir_remove(const char *dir)
{
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			char p[4400];
			snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
			unlink(p);
		}
		closedir(d);
	}
	rmdir(dir);
}
