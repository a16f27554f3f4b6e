/* record: the trial record, one JSON object per line of DIR/trials.jsonl — its one writer and
 * its one reader. `ctxlab run` writes records (record_write), `report`, `compare` and
 * `run --resume` read them (record_parse); nothing else spells the record's keys. The keys are
 * defined in docs/metrics.md, "Trial record" (tests/integration/test_metrics_keys.py checks
 * that every key written here is there).
 *
 * Schema version: every record carries "schema": "MAJOR.MINOR" (RECORD_SCHEMA). A minor
 * version adds keys; a major one changes or removes them. A reader reads every record of its
 * own major version or an older one (a record without "schema" is 1.0: written before the key
 * existed) and refuses a newer major version (-EPROTONOSUPPORT, err says which version and
 * what to do). Keys it does not know are ignored.
 *
 * Who writes what: the monitor's figures ("server_cpu", "ctxsw", "memory") through
 * monitor/monout.h; the load generator's through its own JSON (load/loadout.c), embedded;
 * everything else here. Not thread-safe; the caller owns struct record.
 */
#ifndef CTXLAB_LAB_RECORD_H
#define CTXLAB_LAB_RECORD_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/json.h"
#include "core/procfs.h"
#include "monitor/monitor.h"
#include "monitor/monout.h"

#define RECORD_SCHEMA_MAJOR 1
#define RECORD_SCHEMA_MINOR 4
#define RECORD_SCHEMA "1.4"

/* System calls by name over the window (monitor/syscount.h); write only. */
struct record_syscalls {
	int ok;                  /* 0: reason says why they are unavailable */
	const char *reason;
	int n;                   /* entries of name/count; [0] is the total ("total") */
	const char *const *name;
	const uint64_t *count;
	double window_s;         /* the span the counts cover */
};

/* The server's root process alone (the gateway's front; a one-process engine's whole server),
 * its /proc/PID/stat at the window's start and end; write only. */
struct record_front {
	int ok;
	struct procfs_stat at0, at1;
	double window_s;         /* the span between the two reads */
};

struct record_param {
	const char *key, *value;
};

/* added (issue 14): where a trial's wall time went, phase by phase, in this order (the
 * record's "timing": docs/metrics.md); write only. Each phase's seconds run from the end of
 * the previous phase reached (the first from the trial's start); a phase not reached (the
 * trial failed or has no such phase) is < 0 and not written. */
enum record_phase {
	RECORD_PH_SETUP,    /* placement, the trial's cgroup, alloc's preparation */
	RECORD_PH_SERVER,   /* the server started, until its ready line */
	RECORD_PH_COUNTERS, /* the syscall counters of the server's cgroup opened */
	RECORD_PH_LOAD,     /* the load generators started, until the start barrier */
	RECORD_PH_CONNECT,  /* until every load generator has its connections up */
	RECORD_PH_WARMUP,   /* the warm-up */
	RECORD_PH_WINDOW,   /* the profiler started, the monitor's window */
	RECORD_PH_COLLECT,  /* the load generators' JSON (and the timeline) */
	RECORD_PH_PROFILE,  /* the profiler finishing its files after the load's JSON */
	RECORD_PH_STOP,     /* counters closed, server and load stopped, cgroup removed */
	RECORD_PH_N
};
struct record_timing {
	int ok;
	double phase_s[RECORD_PH_N];
	double profile_after_s;  /* window end -> the profiler's files written (< 0: none) */
	int counters_held;       /* the syscall counters were opened under the run's
				  * syscount_hold (1) or alone (0); -1: none opened */
	int symcache_hits, symcache_misses; /* the profiler's symbol cache (-1: no profiler,
					     * or it printed no such line) */
};

/* System-wide CPU (/proc/stat) of one group of CPUs over the trial's window: percentages of
 * the group's CPU time (averaged over its CPUs), the busy cores (user + nice + system:
 * softirq, irq and steal are apart) and, for the server's group, other_cores = busy cores
 * not used by the server's tree (nor by the load generator when it shared them). */
struct record_syscpu {
	const char *cpus;
	int ncpus;
	double user, system, softirq, steal, idle, iowait;
	double busy_cores, other_cores;
};
/* A trial whose server CPUs were taken by something else: other_cores above
 * RECORD_OTHER_CPU_MAX of the group's CPUs, or steal above RECORD_STEAL_MAX_PCT. */
#define RECORD_OTHER_CPU_MAX 0.10
#define RECORD_STEAL_MAX_PCT 5.0
/* 1 when g shows interference (why[len] says what), else 0. Pure. */
int record_syscpu_interference(const struct record_syscpu *g, char *why, size_t len);

/* One trial. Writing: the caller fills it (pointers to its own strings). Reading: the strings
 * point into r->json (valid until record_release). */
struct record {
	int schema_major, schema_minor;   /* read: 1.0 when absent */
	int trial, of, repeat;            /* read: repeat -1 when absent */
	const char *cell;                 /* the cell key; read: NULL when absent */
	int cell_index;                   /* the cell's 0-based number in the matrix (the
					   * --dry-run listing); read: -1 when absent (< 1.2) */
	int nparams;
	struct record_param *params;      /* in the cell's order */
	int ok;                           /* status "ok"; else "failed" with reason */
	const char *reason;
	int profiled;
	const char *flame_dir;            /* write: "flame/ID"; read: the "flame" path or NULL */
	uint64_t start_wall_ns;
	double warmup_s, duration_s;
	const char *server_host, *load_host, *server_address;
	const char *server_cpus, *load_cpus;
	int server_ncpus, load_ncpus, shared;
	/* the monitor's figures over the window (write only; read them with record_metric) */
	int have_mon;
	const char *accounting, *accounting_reason;
	double window_s;
	const struct monitor_sample *total;
	const struct monitor_peak *peak;
	const struct record_syscalls *syscalls; /* may be NULL: not written */
	const struct record_front *front;       /* may be NULL: not written */
	/* the load generator's document (load --json), embedded by its own keys; write only */
	const json_t *load;
	int nwarn;
	const char *const *warnings;
	/* added (issue 11): system-wide CPU of the server's and the load's CPUs over the window */
	int have_syscpu;
	struct record_syscpu sys_server, sys_load;
	int interference;                 /* record_syscpu_interference of sys_server */
	const char *syscpu_reason;        /* !have_syscpu: why (written as system_cpu.unavailable) */
	/* kind = pingpong: "pingpong" (NULL = serve), pingpong's JSON of its one mode (embedded
	 * as "pingpong"), and the automatic no-switch check of the in-process modes: "ok",
	 * "blocked", "preempted" (record_pp_switch_check) or NULL (switches by design) */
	const char *kind;
	const json_t *pingpong;
	const char *switch_check;
	const char *timeline;             /* "timeline/ID.json" ([experiment] timeline), or NULL */
	/* [experiment] alloc (issue 13): "alloc" in the record. alloc_mode NULL = none; else
	 * "sampled" or "exact" with, when alloc_reason is NULL, the interposer's exact counters'
	 * rates over the window (per second of it; per request = / requests_per_s), else
	 * "unavailable": alloc_reason */
	const char *alloc_mode, *alloc_reason;
	const char *alloc_note;           /* mode "go-runtime": what the figures are (no frees) */
	double alloc_calls_per_s, alloc_bytes_per_s, alloc_frees_per_s;
	const struct record_timing *timing; /* NULL: not written */
	/* read: the whole record */
	json_t *json;
};

/* The load generator's figures a record is computed from (load's keys are load's: read here
 * only to derive the record's throughput). */
struct record_load_figs {
	double duration_s, requests, bytes, requests_per_s, bytes_per_s;
};
void record_load_figs(const json_t *load, struct record_load_figs *f);

/* Writes r as one JSON object (no newline) into w. */
void record_write(struct jw *w, const struct record *r);

/* Parses one line into r (record_release it, also after an error). 0; -EINVAL when the line is
 * not a JSON object; -EPROTONOSUPPORT when its schema's major version is newer than this
 * reader's (err says so). */
int record_parse(const char *line, size_t len, struct record *r, char *err, size_t errlen);
void record_release(struct record *r);

/* ---- the figures the report aggregates: names and where they are in a record ---- */
enum record_metric_id {
	RECORD_M_CPU_CORES,
	RECORD_M_CPU_USER_CORES,
	RECORD_M_CPU_SYS_CORES,
	RECORD_M_CPU_PEAK_CORES,
	RECORD_M_CPU_US_PER_REQUEST,
	RECORD_M_CPU_MS_PER_MB,
	RECORD_M_CTXSW_PER_S,
	RECORD_M_CTXSW_PER_REQUEST,
	RECORD_M_REQUESTS_PER_S,
	RECORD_M_BYTES_PER_S,
	RECORD_M_P50_US,
	RECORD_M_P99_US,
	RECORD_M_P99_9_US,
	RECORD_M_P99_UNCORRECTED_US,
	RECORD_M_RSS_BYTES,
	RECORD_M_PSS_BYTES,
	RECORD_M_ERRORS,
	/* kind = pingpong */
	RECORD_M_PP_NS_PER_RT,
	RECORD_M_PP_VCSW_PER_RT,
	RECORD_M_PP_IVCSW_PER_RT,
	RECORD_M_PP_USER_NS_PER_RT,
	RECORD_M_PP_SYS_NS_PER_RT,
	RECORD_M_PP_CPU_NS_PER_RT,
	RECORD_M_FRONT_US_PER_REQUEST, /* the root process alone (gateway: the front) */
	RECORD_M_FRONT_SYS_CORES,
	RECORD_M_SYSCALLS_PER_REQUEST,
	/* [experiment] alloc */
	RECORD_M_ALLOC_CALLS_PER_REQUEST,
	RECORD_M_ALLOC_BYTES_PER_REQUEST,
	RECORD_NMETRICS
};

struct record_metric_info {
	const char *id;    /* short name, also the CSV column */
	const char *path;  /* dotted path in the record */
	const char *label; /* human name */
	const char *unit;  /* "cores", "us", "/s" ... */
};
extern const struct record_metric_info record_metrics[RECORD_NMETRICS];

/* A metric of a parsed record: 1 and *v set when present, numeric and finite; else 0. */
int record_metric(const struct record *r, int metric, double *v);

/* ---- the decisive figure (docs/metrics.md, "Precision") ---- */
/* A trial is saturated when its server's CPU (server_cpu.total_cores) is at least
 * RECORD_SATURATED x its CPUs (placement.server_ncpus): then its CPU per request only mirrors
 * its throughput, and throughput is what it decides. 1 or 0 (0 for a failed trial). */
#define RECORD_SATURATED 0.9
int record_saturated(const struct record *r);
/* The metric that decides a cell's precision: RECORD_M_REQUESTS_PER_S when more than half of
 * its nok ok trials are saturated, else RECORD_M_CPU_US_PER_REQUEST. */
int record_decisive_metric(int nsaturated, int nok);
/* The precision of v[0..n) (one value per trial): *rel = the 95% median CI's half-width
 * (hi - lo) / 2 relative to |median| (core/stats.h, stats_median_ci; the full range when n < 6),
 * +inf when n is 0 or the median is 0. Returns 1 when the CI reaches 95% (n >= 6), else 0 (then
 * *rel is the range's, not a 95% CI: never call that target reached). */
int record_precision(const double *v, int n, double *rel);

/* A kernel switch per this many round trips or more fails the no-switch check of an
 * in-process pingpong mode (unix-inline, coro, coro-unix): switches are not part of its round
 * trip (a few from start-up or preemption over millions of round trips stay far below). */
#define RECORD_PP_SWITCH_MAX 0.001
/* 1 when a pingpong mode runs both sides in one thread (no kernel switch expected). */
int record_pp_inprocess(const char *mode);
/* The no-switch check of an in-process mode given its switches per round trip: "blocked"
 * (voluntary switches: it waited in the kernel), "preempted" (involuntary ones only: other
 * work took its CPU), "ok"; NULL for a mode that switches by design. */
const char *record_pp_switch_check(const char *mode, double vol_per_rt, double invol_per_rt);

/* A value by dotted path in a JSON object; NULL when absent. */
json_t *record_path(const json_t *obj, const char *path);

#endif
