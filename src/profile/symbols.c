#include "profile/symbols.h"

#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ksym {
	uint64_t addr;
	char *name;
};

struct image {
	uint64_t hash;
	char *maps;
	Dwfl *dwfl; /* NULL when reporting failed */
};

struct symbols {
	struct image *img;
	size_t nimg, capimg;
	struct ksym *ks;
	size_t nks;
	int ks_loaded, ks_hidden;
};

static const Dwfl_Callbacks proc_callbacks = {
	.find_elf = dwfl_linux_proc_find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
};

struct symbols *symbols_new(void) { return calloc(1, sizeof(struct symbols)); }

void symbols_free(struct symbols *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nimg; i++) {
		if (s->img[i].dwfl)
			dwfl_end(s->img[i].dwfl);
		free(s->img[i].maps);
	}
	free(s->img);
	for (size_t i = 0; i < s->nks; i++)
		free(s->ks[i].name);
	free(s->ks);
	free(s);
}

char *symbols_snapshot_maps(pid_t pid, size_t *len)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t n = 0, cap = 8192;
	char *b = malloc(cap);
	while (b) {
		if (n + 1 >= cap) {
			char *nb = realloc(b, cap * 2);
			if (!nb) {
				free(b);
				b = NULL;
				errno = ENOMEM;
				break;
			}
			b = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, b + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(b);
			b = NULL;
			errno = e;
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (b && n == 0) { /* a zombie or a kernel thread: nothing to symbolize with */
		free(b);
		errno = ESRCH;
		return NULL;
	}
	if (b) {
		b[n] = 0;
		*len = n;
	}
	return b;
}

int symbols_maps_covers(const char *maps, uint64_t addr)
{
	const char *p = maps;
	while (*p) {
		unsigned long long lo, hi;
		char perms[8];
		if (sscanf(p, "%llx-%llx %7s", &lo, &hi, perms) == 3 && addr >= lo && addr < hi &&
		    perms[2] == 'x')
			return 1;
		const char *nl = strchr(p, '\n');
		if (!nl)
			break;
		p = nl + 1;
	}
	return 0;
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct image *image_get(struct symbols *s, const char *maps)
{
	uint64_t h = hash_str(maps);
	for (size_t i = 0; i < s->nimg; i++)
		if (s->img[i].hash == h && !strcmp(s->img[i].maps, maps))
			return &s->img[i];
	if (s->nimg == s->capimg) {
		size_t cap = s->capimg ? s->capimg * 2 : 16;
		struct image *ni = realloc(s->img, cap * sizeof(*ni));
		if (!ni)
			return NULL;
		s->img = ni;
		s->capimg = cap;
	}
	struct image *im = &s->img[s->nimg];
	im->hash = h;
	im->maps = strdup(maps);
	im->dwfl = NULL;
	if (!im->maps)
		return NULL;
	s->nimg++;
	Dwfl *d = dwfl_begin(&proc_callbacks);
	if (!d)
		return im;
	FILE *f = fmemopen((void *)im->maps, strlen(im->maps), "r");
	if (!f) {
		dwfl_end(d);
		return im;
	}
	dwfl_report_begin(d);
	int r = dwfl_linux_proc_maps_report(d, f);
	fclose(f);
	if (dwfl_report_end(d, NULL, NULL) != 0 || r != 0) {
		/* a partial report is still useful: keep what was reported */
		if (r < 0) {
			dwfl_end(d);
			return im;
		}
	}
	im->dwfl = d;
	return im;
}

/* The mapping of addr in the maps text: its path's basename and the offset of addr in the file. */
static int maps_module(const char *maps, uint64_t addr, char *name, size_t len, uint64_t *off)
{
	const char *p = maps;
	while (*p) {
		unsigned long long lo, hi, foff;
		char perms[8];
		int pos = 0;
		if (sscanf(p, "%llx-%llx %7s %llx %*s %*s %n", &lo, &hi, perms, &foff, &pos) >= 4 &&
		    addr >= lo && addr < hi && pos > 0) {
			const char *path = p + pos, *nl = strchr(path, '\n');
			size_t pl = nl ? (size_t)(nl - path) : strlen(path);
			if (!pl)
				return 0;
			const char *base = path;
			for (size_t i = 0; i < pl; i++)
				if (path[i] == '/')
					base = path + i + 1;
			size_t bl = pl - (size_t)(base - path);
			snprintf(name, len, "%.*s", (int)bl, base);
			*off = addr - lo + foff;
			return 1;
		}
		const char *nl = strchr(p, '\n');
		if (!nl)
			break;
		p = nl + 1;
	}
	return 0;
}

const char *symbols_user(struct symbols *s, const char *maps, uint64_t addr, char *buf,
			 size_t len)
{
	struct image *im = maps ? image_get(s, maps) : NULL;
	if (im && im->dwfl) {
		Dwfl_Module *mod = dwfl_addrmodule(im->dwfl, addr);
		if (mod) {
			const char *name = dwfl_module_addrname(mod, addr);
			const char *at = name ? strchr(name, '@') : NULL;
			if (at && at > name) { /* "clock_nanosleep@GLIBC_2.2.5": drop the version */
				snprintf(buf, len, "%.*s", (int)(at - name), name);
				return buf;
			}
			if (name && name[0])
				return name;
		}
	}
	char mod[256];
	uint64_t off;
	if (maps && maps_module(maps, addr, mod, sizeof mod, &off)) {
		snprintf(buf, len, "%s+0x%" PRIx64, mod, off);
		return buf;
	}
	return "[unknown]";
}

static int cmp_ksym(const void *a, const void *b)
{
	const struct ksym *x = a, *y = b;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static void kallsyms_load(struct symbols *s)
{
	s->ks_loaded = 1;
	FILE *f = fopen("/proc/kallsyms", "re");
	if (!f)
		return;
	char line[512];
	size_t cap = 0;
	int nonzero = 0;
	while (fgets(line, sizeof line, f)) {
		unsigned long long a;
		char type;
		char name[256];
		if (sscanf(line, "%llx %c %255s", &a, &type, name) != 3)
			continue;
		if (type != 't' && type != 'T' && type != 'w' && type != 'W')
			continue;
		if (a)
			nonzero = 1;
		if (s->nks == cap) {
			size_t nc = cap ? cap * 2 : 65536;
			struct ksym *n = realloc(s->ks, nc * sizeof(*n));
			if (!n)
				break;
			s->ks = n;
			cap = nc;
		}
		char *nm = strdup(name);
		if (!nm)
			break;
		s->ks[s->nks++] = (struct ksym){a, nm};
	}
	fclose(f);
	s->ks_hidden = !nonzero;
	if (s->nks > 1)
		qsort(s->ks, s->nks, sizeof(*s->ks), cmp_ksym);
}

const char *symbols_kernel(struct symbols *s, uint64_t addr)
{
	if (!s->ks_loaded)
		kallsyms_load(s);
	if (s->ks_hidden || !s->nks)
		return "[kernel]";
	size_t lo = 0, hi = s->nks;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->ks[mid].addr <= addr)
			lo = mid;
		else
			hi = mid;
	}
	if (s->ks[lo].addr > addr)
		return "[unknown]";
	return s->ks[lo].name;
}
