/* symbols: address -> function name, for the profiler.
 *
 * User addresses are resolved with libdwfl (elfutils) against a snapshot of the process's
 * /proc/PID/maps taken while it was alive (so processes that exited before symbolization
 * still resolve): the snapshot is reported with dwfl_linux_proc_maps_report. The ELF files
 * it names are opened, at the snapshot, through /proc/PID/map_files (the very file mapped,
 * in the process's own mount namespace: right for containers and chroots, and for files
 * replaced or deleted since) and kept open until symbols_files_release; a process that
 * shares our root and mount namespace may fall back to the path in maps, any other never
 * (its paths name other files here). One Dwfl is kept per distinct maps text (forked
 * children with the same maps share it), so lookups are cached per process image.
 * Kernel addresses are resolved from /proc/kallsyms (read once; text symbols only).
 *
 * Names that cannot be resolved: "module+0xOFFSET" when the address is inside a known
 * mapping (module = file basename), else "[unknown]" (kernel: "[kernel]" when kallsyms
 * hides addresses).
 *
 * Not thread-safe. Returned names point into storage owned by `struct symbols`, valid until
 * symbols_free; or into the caller's buf for module+offset names.
 */
#ifndef CTXLAB_PROFILE_SYMBOLS_H
#define CTXLAB_PROFILE_SYMBOLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct symbols;

struct symbols *symbols_new(void);
void symbols_free(struct symbols *s);

/* Reads /proc/PID/maps into a malloc'd NUL-terminated string (*len bytes); NULL with errno
 * when the process is gone or unreadable. Opens (once per file, at most 512 files) the files
 * it maps, for symbols_user. */
char *symbols_snapshot_maps(pid_t pid, size_t *len);
/* Closes the files symbols_snapshot_maps opened (after symbolizing: later lookups of those
 * snapshots fall back as for a file that could not be opened). */
void symbols_files_release(void);
/* 1 when addr lies in an executable mapping of the maps text, else 0. */
int symbols_maps_covers(const char *maps, uint64_t addr);

/* Resolves a user address in the process image described by maps (a snapshot). */
const char *symbols_user(struct symbols *s, const char *maps, uint64_t addr, char *buf,
			 size_t len);
const char *symbols_kernel(struct symbols *s, uint64_t addr);

/* The basename of the file mapped at addr in the maps text into name; 1, or 0 when no
 * file is mapped there. */
int symbols_module_of(const char *maps, uint64_t addr, char *name, size_t len);

/* The maps line holding addr: its range, file offset and path (into path), and the build id
 * (hex, "" when none) of the module there. 1, or 0 when no file is mapped at addr. */
int symbols_mapping(struct symbols *s, const char *maps, uint64_t addr, uint64_t *lo,
		    uint64_t *hi, uint64_t *off, char *path, size_t plen, char *bid, size_t blen);

/* The libdwfl session of a maps snapshot (modules reported, ELF files found as above), for
 * the unwinder (unwind.h); NULL when the snapshot could not be reported. Owned by s. */
struct Dwfl;
struct Dwfl *symbols_dwfl(struct symbols *s, const char *maps);

/* Source position of a user address: file (basename kept with its directory as the debug
 * info gives it) and line, from the module's DWARF line table (a -g build, or its separate
 * debug file). 1 found, 0 not. file points into libdwfl's storage, valid until symbols_free. */
int symbols_srcline(struct symbols *s, const char *maps, uint64_t addr, const char **file,
		    int *line);

/* Names of the binaries (basenames) met by symbols_user with no symbol for an address
 * (no symbol table, no debug file): up to max, into names (each valid until symbols_free).
 * The count. */
int symbols_unresolved_modules(struct symbols *s, const char **names, int max);

/* ---- the symbol cache (one directory, shared by every process that is given it) ----
 *
 * What costs most in symbolizing a short profile is not the lookups but what precedes them:
 * reading and sorting /proc/kallsyms (~120,000 text symbols) and, for a module whose debug
 * information is in a separate file with compressed sections (Debian's -dbgsym/-dbg packages:
 * libc's), inflating every one of those sections when libdw opens it. With a cache directory
 * set, both are done once and kept there for the next process:
 *  - the kernel's sorted text symbols, as a binary table, under a key of the boot
 *    (/proc/sys/kernel/random/boot_id), the loaded modules and their addresses
 *    (/proc/modules) and the euid: a module loaded or unloaded makes a new key. (A BPF
 *    program loaded since is not in a cached table: addresses in it take the symbol before;
 *    keep a cache to one run.)
 *  - each such debug file, by its build id (BUILDID.debug): a copy with its sections
 *    decompressed (libelf), which libdw then maps as it is. A file that refers to a
 *    supplementary one (.gnu_debugaltlink) or has GNU .zdebug sections is not copied.
 * Files are written under a name of their own and renamed into place, so concurrent
 * processes never read a partial one. The directory must exist and belong to the caller
 * (the runner makes a private one per run); "" or NULL turns the cache off. */
void symbols_cache_dir(const char *dir);
struct symbols_cache_stats {
	unsigned kernel_hits, kernel_misses; /* the kernel's table read from / written to it */
	unsigned debug_hits, debug_misses;   /* decompressed debug files read / written */
};
/* Fills the cache (symbols_cache_dir, which must be set) with what symbolizing process pid's
 * image needs: the kernel's table and the decompressed debug files of the modules it maps that
 * have separate ones with compressed sections. For a caller about to profile processes of the
 * same binaries (the runner, for its servers: the same ctxlab and libraries as itself), so that
 * no profile pays for making them. 0, or -errno (nothing to read pid's maps from). */
int symbols_cache_fill(pid_t pid);
/* What the cache served in this process so far. */
void symbols_cache_stats(struct symbols_cache_stats *st);

#endif
