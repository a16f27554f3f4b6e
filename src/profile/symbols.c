#include "profile/symbols.h"

#include <elfutils/libdwfl.h>
#include <gelf.h>
#include <libelf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct ksym {
	uint64_t addr;
	uint64_t off; /* of its name in kblob */
};

struct image {
	uint64_t hash;
	char *maps;
	Dwfl *dwfl; /* NULL when reporting failed */
};

#define MAX_NOSYM 32

struct namecache {
	const struct image *im;
	uint64_t addr;
	char *name; /* NULL = empty slot */
};

struct symbols {
	struct image *img;
	size_t nimg, capimg;
	char *nosym[MAX_NOSYM]; /* binaries with an address and no symbol for it */
	int nnosym;
	struct namecache *nc;   /* (image, address) -> name: libdwfl's lookup scans the symbol
				 * table at every call */
	size_t nnc, capnc;
	const char *last_maps;  /* image_get's last answer */
	struct image *last;
	struct ksym *ks;
	size_t nks;
	int ks_loaded, ks_hidden;
	char *kblob;            /* the names, NUL-terminated */
	size_t kblob_len;
	void *kmap;             /* ks and kblob lie in this mapping of the cache's table */
	size_t kmap_len;
};

/* The symbol cache (symbols_cache_dir): one directory for every struct symbols of this
 * process (libdwfl's callbacks have no pointer of ours), and what it served. */
static char cache_dir[1024];
static struct symbols_cache_stats cstats;

/* ---- the files a process maps ---------------------------------------------------------
 *
 * /proc/PID/maps names files by paths that mean something in the namespace of whoever reads
 * maps only when the file is reachable from the reader's root: a process in another mount
 * namespace (a container) names its own files, which the host may not have, or has as other
 * files. Opening those paths here would symbolise against the wrong ELF, and let the target
 * make a root process open any host path. So while the process is alive (at its maps
 * snapshot) every file it maps is opened through /proc/PID/map_files/START-END (the very
 * file mapped, even deleted or replaced since) and kept open, one descriptor per file (by
 * the device and inode maps gives: forked children share them), so that it can still be read
 * after the process exits. find_elf opens a module from there; only a process that shares
 * our root and mount namespace may fall back to its path (a snapshot of any other starts with
 * the line FOREIGN_TAG). */

#define FOREIGN_TAG "ctxlab-foreign-root\n"
#define MAX_FILES 512

struct mapped_file {
	unsigned long long ino;
	char dev[16]; /* "fd:01", as maps prints it */
	int fd;       /* O_RDONLY */
};

static struct mapped_file files[MAX_FILES];
static int nfiles;

void symbols_files_release(void)
{
	for (int i = 0; i < nfiles; i++)
		close(files[i].fd);
	nfiles = 0;
}

static const struct mapped_file *file_find(const char *dev, unsigned long long ino)
{
	for (int i = 0; i < nfiles; i++)
		if (files[i].ino == ino && !strcmp(files[i].dev, dev))
			return &files[i];
	return NULL;
}

/* One maps line: its range, permissions, device, inode and path (pointing into the line,
 * up to the newline). 0 when the line has no path. */
struct maps_line {
	unsigned long long lo, hi, ino;
	char perms[8], dev[16];
	const char *path;
	size_t pathlen;
};

static int maps_parse_line(const char *p, struct maps_line *m)
{
	unsigned long long off;
	int pos = 0;
	if (sscanf(p, "%llx-%llx %7s %llx %15s %llu %n", &m->lo, &m->hi, m->perms, &off, m->dev,
		   &m->ino, &pos) < 6 || pos <= 0)
		return 0;
	m->path = p + pos;
	const char *nl = strchr(m->path, '\n');
	m->pathlen = nl ? (size_t)(nl - m->path) : strlen(m->path);
	if (!m->pathlen || m->path[0] != '/' || m->ino == 0)
		return 0;
	return 1;
}

/* Opens every file pid maps that is not open yet (see above). */
static void files_open(pid_t pid, const char *maps)
{
	for (const char *p = maps; *p;) {
		struct maps_line m;
		if (maps_parse_line(p, &m) && !file_find(m.dev, m.ino) && nfiles < MAX_FILES) {
			char path[96];
			snprintf(path, sizeof path, "/proc/%d/map_files/%llx-%llx", (int)pid, m.lo, m.hi);
			/* O_NONBLOCK: a mapped file is a regular file, but never hang on anything else */
			int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
			struct stat st;
			if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
				close(fd);
				fd = -1;
			}
			if (fd >= 0) {
				files[nfiles] = (struct mapped_file){.ino = m.ino, .fd = fd};
				snprintf(files[nfiles].dev, sizeof files[nfiles].dev, "%s", m.dev);
				nfiles++;
			}
		}
		const char *nl = strchr(p, '\n');
		if (!nl)
			break;
		p = nl + 1;
	}
}

/* Whether pid sees the file system we see: the same root directory and mount namespace. */
static int same_root(pid_t pid)
{
	char path[64], ns[64] = "", self_ns[64] = "";
	struct stat st, self;
	snprintf(path, sizeof path, "/proc/%d/root/", (int)pid);
	if (stat(path, &st) < 0 || stat("/", &self) < 0)
		return 0; /* cannot tell: do not trust its paths */
	snprintf(path, sizeof path, "/proc/%d/ns/mnt", (int)pid);
	ssize_t n = readlink(path, ns, sizeof ns - 1);
	ns[n > 0 ? n : 0] = 0;
	n = readlink("/proc/self/ns/mnt", self_ns, sizeof self_ns - 1);
	self_ns[n > 0 ? n : 0] = 0;
	return st.st_dev == self.st_dev && st.st_ino == self.st_ino && !strcmp(ns, self_ns);
}

/* find_elf: the module's file from the files opened at the snapshot (its userdata is the
 * image's maps text: the path gives the device and inode); else, for a process that shares
 * our root, the path itself as libdwfl opens it (also [vdso]); else nothing. */
static int find_elf(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr base,
		    char **file_name, Elf **elfp)
{
	const char *maps = *userdata;
	int foreign = maps && !strncmp(maps, FOREIGN_TAG, strlen(FOREIGN_TAG));
	size_t nl = strlen(name);
	for (const char *p = maps; p && *p && name[0] == '/';) {
		struct maps_line m;
		if (maps_parse_line(p, &m) && m.pathlen == nl && !memcmp(m.path, name, nl)) {
			const struct mapped_file *f = file_find(m.dev, m.ino);
			if (!f)
				break;
			char self[64];
			snprintf(self, sizeof self, "/proc/self/fd/%d", f->fd);
			int fd = open(self, O_RDONLY | O_CLOEXEC); /* a description of its own */
			if (fd < 0)
				break;
			*file_name = strdup(name);
			if (!*file_name) {
				close(fd);
				return -1;
			}
			return fd;
		}
		const char *e = strchr(p, '\n');
		p = e ? e + 1 : NULL;
	}
	if (foreign && name[0] == '/')
		return -1; /* its path means another file here, or none */
	return dwfl_linux_proc_find_elf(mod, userdata, name, base, file_name, elfp);
}

static int set_maps(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr base,
		    void *arg)
{
	*userdata = arg;
	return DWARF_CB_OK;
}

/* A copy of debug file fd at path with every SHF_COMPRESSED section decompressed: 0, or -1
 * (nothing written: no compressed section, a .zdebug one, a .gnu_debugaltlink, an error). */
static int debug_decompressed_copy(int fd, const char *path)
{
	char tmp[1300];
	snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return -1;
	int out = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0)
		return -1;
	int rc = -1, ncomp = 0;
	off_t off = 0;
	while (off < st.st_size) {
		ssize_t n = copy_file_range(fd, &off, out, NULL, (size_t)(st.st_size - off), 0);
		if (n <= 0)
			goto out;
	}
	elf_version(EV_CURRENT);
	Elf *e = elf_begin(out, ELF_C_RDWR, NULL);
	size_t shstrndx;
	if (!e || elf_kind(e) != ELF_K_ELF || elf_getshdrstrndx(e, &shstrndx) < 0)
		goto end;
	for (Elf_Scn *scn = NULL; (scn = elf_nextscn(e, scn));) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh))
			goto end;
		const char *name = elf_strptr(e, shstrndx, sh.sh_name);
		if (name && (!strcmp(name, ".gnu_debugaltlink") || !strncmp(name, ".zdebug", 7)))
			goto end;
		if (!(sh.sh_flags & SHF_COMPRESSED))
			continue;
		if (elf_compress(scn, 0, 0) != 1)
			goto end;
		ncomp++;
	}
	if (ncomp && elf_update(e, ELF_C_WRITE) >= 0)
		rc = 0;
end:
	if (e)
		elf_end(e);
out:
	close(out);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -1;
	if (rc)
		unlink(tmp);
	return rc;
}

/* find_debuginfo: libdwfl's standard search, through the cache when there is one: a module's
 * separate debug file with compressed sections is served as its decompressed copy
 * (BUILDID.debug), made the first time. */
static int find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname,
			  GElf_Addr base, const char *file_name, const char *debuglink_file,
			  GElf_Word debuglink_crc, char **debuginfo_file_name)
{
	const unsigned char *bits = NULL;
	GElf_Addr vaddr;
	int nb = cache_dir[0] ? dwfl_module_build_id(mod, &bits, &vaddr) : 0;
	char path[1200] = "";
	if (nb > 0 && nb <= 64) {
		int o = snprintf(path, sizeof path, "%s/", cache_dir);
		for (int i = 0; i < nb && o + 3 < (int)sizeof path; i++)
			o += snprintf(path + o, sizeof path - (size_t)o, "%02x", bits[i]);
		snprintf(path + o, sizeof path - (size_t)o, ".debug");
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			*debuginfo_file_name = strdup(path);
			cstats.debug_hits++;
			return fd;
		}
	}
	int fd = dwfl_standard_find_debuginfo(mod, userdata, modname, base, file_name,
					      debuglink_file, debuglink_crc, debuginfo_file_name);
	if (fd < 0 || !path[0] || debug_decompressed_copy(fd, path) < 0)
		return fd;
	int cfd = open(path, O_RDONLY | O_CLOEXEC);
	if (cfd < 0)
		return fd;
	close(fd);
	free(*debuginfo_file_name);
	*debuginfo_file_name = strdup(path);
	cstats.debug_misses++;
	return cfd;
}

static const Dwfl_Callbacks proc_callbacks = {
	.find_elf = find_elf,
	.find_debuginfo = find_debuginfo,
};

void symbols_cache_dir(const char *dir)
{
	snprintf(cache_dir, sizeof cache_dir, "%s", dir ? dir : "");
}

static int fill_module(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr base,
		       void *arg)
{
	(void)userdata, (void)name, (void)base, (void)arg;
	Dwarf_Addr bias;
	dwfl_module_getdwarf(mod, &bias); /* finds its debug file: find_debuginfo caches it */
	return DWARF_CB_OK;
}

static struct image *image_find(struct symbols *s, const char *maps);

int symbols_cache_fill(pid_t pid)
{
	struct symbols *s = symbols_new();
	if (!s)
		return -ENOMEM;
	symbols_kernel(s, 0);
	size_t len;
	char *maps = symbols_snapshot_maps(pid, &len);
	int rc = maps ? 0 : -ESRCH;
	struct image *im = maps ? image_find(s, maps) : NULL;
	if (im && im->dwfl)
		dwfl_getmodules(im->dwfl, fill_module, NULL, 0);
	symbols_free(s);
	free(maps);
	symbols_files_release();
	return rc;
}

void symbols_cache_stats(struct symbols_cache_stats *st)
{
	*st = cstats;
}

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
	for (size_t i = 0; i < s->capnc; i++)
		free(s->nc[i].name);
	free(s->nc);
	for (int i = 0; i < s->nnosym; i++)
		free(s->nosym[i]);
	if (s->kmap) {
		munmap(s->kmap, s->kmap_len);
	} else {
		free(s->ks);
		free(s->kblob);
	}
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
		files_open(pid, b);
		if (!same_root(pid)) { /* its paths are not ours: say so on a first line */
			size_t tl = strlen(FOREIGN_TAG);
			char *nb = malloc(n + tl + 1);
			if (!nb) {
				free(b);
				errno = ENOMEM;
				return NULL;
			}
			memcpy(nb, FOREIGN_TAG, tl);
			memcpy(nb + tl, b, n + 1);
			free(b);
			b = nb;
			*len = n + tl;
		}
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

static struct image *image_find(struct symbols *s, const char *maps);

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct image *image_get(struct symbols *s, const char *maps)
{
	/* the last one asked for, by the text's address (snapshots stay put while in use) */
	if (s->last && s->last_maps == maps) /* (image_find, which may move img, resets it) */
		return s->last;
	struct image *im = image_find(s, maps);
	s->last_maps = maps;
	s->last = im;
	return im;
}

static struct image *image_find(struct symbols *s, const char *maps)
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
	const char *text = im->maps;
	if (!strncmp(text, FOREIGN_TAG, strlen(FOREIGN_TAG)))
		text += strlen(FOREIGN_TAG);
	FILE *f = fmemopen((void *)text, strlen(text), "r");
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
	/* before any ELF is looked for: find_elf finds each module's file through the text */
	dwfl_getmodules(d, set_maps, im->maps, 0);
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
		const char *eol = strchr(p, '\n');
		if (sscanf(p, "%llx-%llx %7s %llx %*s %*s %n", &lo, &hi, perms, &foff, &pos) >= 4 &&
		    addr >= lo && addr < hi && pos > 0) {
			if (eol && p + pos > eol)
				return 0; /* no path: the blanks ran into the next line */
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

static size_t nc_slot(const struct image *im, uint64_t addr, size_t cap)
{
	uint64_t h = ((uint64_t)(uintptr_t)im * 0x9e3779b97f4a7c15ULL) ^ (addr * 0xff51afd7ed558ccdULL);
	return (size_t)(h ^ (h >> 31)) & (cap - 1);
}

/* The cached name of (im, addr), or NULL. */
static const char *nc_get(struct symbols *s, const struct image *im, uint64_t addr)
{
	if (!s->capnc)
		return NULL;
	for (size_t j = nc_slot(im, addr, s->capnc); s->nc[j].name; j = (j + 1) & (s->capnc - 1))
		if (s->nc[j].im == im && s->nc[j].addr == addr)
			return s->nc[j].name;
	return NULL;
}

static const char *nc_put(struct symbols *s, const struct image *im, uint64_t addr,
			  const char *name)
{
	if ((s->nnc + 1) * 2 > s->capnc) {
		size_t cap = s->capnc ? s->capnc * 2 : 4096;
		struct namecache *n = calloc(cap, sizeof(*n));
		if (!n)
			return name;
		for (size_t i = 0; i < s->capnc; i++) {
			if (!s->nc[i].name)
				continue;
			size_t j = nc_slot(s->nc[i].im, s->nc[i].addr, cap);
			while (n[j].name)
				j = (j + 1) & (cap - 1);
			n[j] = s->nc[i];
		}
		free(s->nc);
		s->nc = n;
		s->capnc = cap;
	}
	char *c = strdup(name);
	if (!c)
		return name;
	size_t j = nc_slot(im, addr, s->capnc);
	while (s->nc[j].name)
		j = (j + 1) & (s->capnc - 1);
	s->nc[j] = (struct namecache){im, addr, c};
	s->nnc++;
	return c;
}

static const char *user_name(struct symbols *s, const char *maps, uint64_t addr, char *buf,
			     size_t len);

const char *symbols_user(struct symbols *s, const char *maps, uint64_t addr, char *buf,
			 size_t len)
{
	struct image *im = maps ? image_get(s, maps) : NULL;
	/* image_get may move s->img: the key is the image's index, kept as a pointer-sized id */
	const struct image *key = im ? (const struct image *)(uintptr_t)(im - s->img + 1) : NULL;
	const char *c = key ? nc_get(s, key, addr) : NULL;
	if (c)
		return c;
	const char *name = user_name(s, maps, addr, buf, len);
	return key ? nc_put(s, key, addr, name) : name;
}

static const char *user_name(struct symbols *s, const char *maps, uint64_t addr, char *buf,
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
		int known = mod[0] == '[' || !strncmp(mod, "memfd:", 6); /* [heap], [stack]... */
		for (int i = 0; !known && i < s->nnosym; i++)
			known = !strcmp(s->nosym[i], mod);
		if (!known && s->nnosym < MAX_NOSYM && (s->nosym[s->nnosym] = strdup(mod)))
			s->nnosym++;
		return buf;
	}
	return "[unknown]";
}

int symbols_module_of(const char *maps, uint64_t addr, char *name, size_t len)
{
	uint64_t off;
	if (!maps)
		return 0;
	if (!strncmp(maps, FOREIGN_TAG, strlen(FOREIGN_TAG)))
		maps += strlen(FOREIGN_TAG);
	return maps_module(maps, addr, name, len, &off);
}

int symbols_mapping(struct symbols *s, const char *maps, uint64_t addr, uint64_t *lo,
		    uint64_t *hi, uint64_t *off, char *path, size_t plen, char *bid, size_t blen)
{
	const char *text = maps;
	if (!text)
		return 0;
	if (!strncmp(text, FOREIGN_TAG, strlen(FOREIGN_TAG)))
		text += strlen(FOREIGN_TAG);
	for (const char *p = text; *p;) {
		unsigned long long l, h, o;
		char perms[8];
		int pos = 0;
		const char *eol = strchr(p, '\n');
		size_t ll = eol ? (size_t)(eol - p) : strlen(p);
		if (sscanf(p, "%llx-%llx %7s %llx %*s %*s %n", &l, &h, perms, &o, &pos) >= 4 &&
		    addr >= l && addr < h && pos > 0 && (size_t)pos < ll && p[pos] == '/') {
			*lo = l, *hi = h, *off = o;
			snprintf(path, plen, "%.*s", (int)(ll - (size_t)pos), p + pos);
			bid[0] = 0;
			struct image *im = image_get(s, maps);
			Dwfl_Module *mod = im && im->dwfl ? dwfl_addrmodule(im->dwfl, addr) : NULL;
			const unsigned char *bits;
			GElf_Addr va;
			int n = mod ? dwfl_module_build_id(mod, &bits, &va) : 0;
			for (int i = 0; i < n && (size_t)(2 * i + 2) < blen; i++)
				snprintf(bid + 2 * i, 3, "%02x", bits[i]);
			return 1;
		}
		if (!eol)
			break;
		p = eol + 1;
	}
	return 0;
}

int symbols_unresolved_modules(struct symbols *s, const char **names, int max)
{
	int n = 0;
	for (int i = 0; i < s->nnosym && n < max; i++)
		names[n++] = s->nosym[i];
	return n;
}

struct Dwfl *symbols_dwfl(struct symbols *s, const char *maps)
{
	struct image *im = maps ? image_get(s, maps) : NULL;
	return im ? im->dwfl : NULL;
}

int symbols_srcline(struct symbols *s, const char *maps, uint64_t addr, const char **file,
		    int *line)
{
	struct image *im = maps ? image_get(s, maps) : NULL;
	Dwfl_Module *mod = im && im->dwfl ? dwfl_addrmodule(im->dwfl, addr) : NULL;
	Dwfl_Line *l = mod ? dwfl_module_getsrc(mod, addr) : NULL;
	int ln = 0;
	const char *f = l ? dwfl_lineinfo(l, NULL, &ln, NULL, NULL, NULL) : NULL;
	if (!f || ln <= 0)
		return 0;
	*file = f;
	*line = ln;
	return 1;
}

static int cmp_ksym(const void *a, const void *b)
{
	const struct ksym *x = a, *y = b;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* ---- the kernel's symbols, and their cache -------------------------------------------- */

#define KCACHE_MAGIC "CTXKSYM1"
struct kcache_head {
	char magic[8];
	uint64_t nks, blob_len;
	uint32_t hidden, pad;
};

/* What identifies this kernel's symbol table: the boot (KASLR), the modules loaded and at
 * which addresses, and who reads it (kptr_restrict shows zeros to some). FNV-1a. */
static uint64_t kernel_key(void)
{
	uint64_t h = 1469598103934665603ULL;
	char buf[8192];
	const char *from[] = {"/proc/sys/kernel/random/boot_id", "/proc/modules"};
	for (int i = 0; i < 2; i++) {
		int fd = open(from[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t n;
		while ((n = read(fd, buf, sizeof buf)) > 0)
			for (ssize_t k = 0; k < n; k++)
				h = (h ^ (unsigned char)buf[k]) * 1099511628211ULL;
		close(fd);
	}
	return (h ^ (uint64_t)geteuid()) * 1099511628211ULL;
}

static int kcache_path(char *path, size_t len)
{
	if (!cache_dir[0])
		return 0;
	snprintf(path, len, "%s/kallsyms-%016llx", cache_dir, (unsigned long long)kernel_key());
	return 1;
}

/* Maps a table kcache_save wrote (read-only; only the pages a lookup touches are read): 1,
 * or 0 (none, or not one of ours: parsed afresh). */
static int kcache_load(struct symbols *s, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	struct stat st;
	void *m = MAP_FAILED;
	if (fstat(fd, &st) == 0 && (size_t)st.st_size > sizeof(struct kcache_head))
		m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return 0;
	struct kcache_head h;
	memcpy(&h, m, sizeof h);
	size_t kb = h.nks * sizeof(struct ksym);
	/* the blob ends with a NUL (kcache_save writes whole names), so no name runs out */
	if (memcmp(h.magic, KCACHE_MAGIC, 8) || h.nks >= (1u << 28) || h.blob_len >= (1u << 30) ||
	    (uint64_t)st.st_size != sizeof h + kb + h.blob_len || !h.blob_len ||
	    ((const char *)m)[st.st_size - 1]) {
		munmap(m, (size_t)st.st_size);
		return 0;
	}
	s->kmap = m;
	s->kmap_len = (size_t)st.st_size;
	s->ks = (struct ksym *)(void *)((char *)m + sizeof h);
	s->kblob = (char *)m + sizeof h + kb;
	s->nks = h.nks;
	s->kblob_len = h.blob_len;
	s->ks_hidden = (int)h.hidden;
	return 1;
}

/* Writes the parsed table for the next process (a file of its own, renamed into place). */
static void kcache_save(const struct symbols *s, const char *path)
{
	char tmp[1200];
	snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	struct kcache_head h = {.nks = s->nks, .blob_len = s->kblob_len,
				.hidden = (uint32_t)s->ks_hidden};
	memcpy(h.magic, KCACHE_MAGIC, 8);
	size_t kb = s->nks * sizeof(struct ksym);
	int ok = write(fd, &h, sizeof h) == (ssize_t)sizeof h &&
		 write(fd, s->ks, kb) == (ssize_t)kb &&
		 write(fd, s->kblob, s->kblob_len) == (ssize_t)s->kblob_len;
	close(fd);
	if (!ok || rename(tmp, path) < 0)
		unlink(tmp);
}

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
		: c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* /proc/kallsyms: "ADDR TYPE NAME[\t[MODULE]]" per line; the text symbols (t, T, w, W). */
static void kallsyms_parse(struct symbols *s)
{
	FILE *f = fopen("/proc/kallsyms", "re");
	if (!f)
		return;
	char line[512];
	size_t cap = 0, bcap = 0;
	int nonzero = 0;
	while (fgets(line, sizeof line, f)) {
		const char *p = line;
		uint64_t a = 0;
		int d;
		while ((d = hexval((unsigned char)*p)) >= 0)
			a = a << 4 | (uint64_t)d, p++;
		if (p == line || *p != ' ')
			continue;
		char type = p[1];
		if ((type != 't' && type != 'T' && type != 'w' && type != 'W') || p[2] != ' ')
			continue;
		const char *name = p + 3;
		size_t nl = strcspn(name, " \t\n");
		if (!nl)
			continue;
		if (nl > 255)
			nl = 255;
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
		if (s->kblob_len + nl + 1 > bcap) {
			size_t nc = bcap ? bcap * 2 : (size_t)1 << 20;
			char *n = realloc(s->kblob, nc);
			if (!n)
				break;
			s->kblob = n;
			bcap = nc;
		}
		memcpy(s->kblob + s->kblob_len, name, nl);
		s->kblob[s->kblob_len + nl] = 0;
		s->ks[s->nks++] = (struct ksym){a, s->kblob_len};
		s->kblob_len += nl + 1;
	}
	fclose(f);
	s->ks_hidden = !nonzero;
	if (s->nks > 1)
		qsort(s->ks, s->nks, sizeof(*s->ks), cmp_ksym);
}

static void kallsyms_load(struct symbols *s)
{
	s->ks_loaded = 1;
	char path[1100];
	int cached = kcache_path(path, sizeof path);
	if (cached && kcache_load(s, path)) {
		cstats.kernel_hits++;
		return;
	}
	kallsyms_parse(s);
	if (cached && s->nks) {
		cstats.kernel_misses++;
		kcache_save(s, path);
	}
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
	if (s->ks[lo].addr > addr || s->ks[lo].off >= s->kblob_len)
		return "[unknown]";
	return s->kblob + s->ks[lo].off;
}
