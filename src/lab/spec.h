/* spec: experiment specs (INI, read with libinih) and their matrix of cells.
 *
 *   [experiment] name, question, repeat, warmup, duration, profile (off | first | all |
 *                cells:SELECTOR: which trials `ctxlab run` profiles into flame graphs; first =
 *                the first repeat of every cell; cells:KEY=VALUE... = the first repeat of the
 *                cells whose parameters have every KEY=VALUE, e.g. `profile = cells:proto=http
 *                connections=64`, one cell per engine; terms separated by spaces or commas,
 *                matching no cell is an error), seed (the trial order's; default: drawn by the runner),
 *                precision (N% | off, default 5%: target 95% CI half-width of each cell's
 *                decisive figure relative to its median), max_repeat (default 3 x repeat),
 *                budget (the whole run's wall time; default 1.5 x the fixed rounds' estimate)
 *   [server]     engine, proto, cpus, workers, work_cpu_us, handoff, balance (gateway only:
 *                other engines' cells leave them out), functions (a directory: serve
 *                --functions)
 *   [load]       connections, threads, pipeline, bandwidth, rate (or `closed`: a closed-loop
 *                cell among open-loop ones), size, function (http: the load asks for /api/NAME),
 *                keepalive (on | off: load --no-keepalive, a connection per request)
 *   [load.PROTO] the same keys, for cells of protocol PROTO only (they replace [load]'s;
 *                setting rate or bandwidth there also drops [load]'s rate and bandwidth)
 *   [hosts]      server, load (local | ssh:user@host | netns:NAME; load may be a list
 *                "H1, H2, ...": several load hosts, kept as written), server_address
 *   [answer.ID]  question, metric, compare | grow, where, say, needs_cpus: a question the report
 *                answers from the cells (docs/metrics.md, "Answers"); checked here, computed by
 *                report/answers.c
 *   [experiment] kind = serve (default: a server under load, the sections above) or pingpong
 *                (each trial runs `ctxlab pingpong` on the cell's CPUs; no [server], [load])
 *   [experiment] timeline = KEY=VALUE ...: the cells (all words match their parameters) whose
 *                first repeat is also recorded per interval (latency, server CPU, switches)
 *   [experiment] alloc = off (default) | on | exact: the server role runs with the allocation
 *                interposer preloaded (libctxlab-alloc.so, alloc/alloc.h; on = sampled at its
 *                default mean, exact = every call recorded) and each trial's record gets
 *                "alloc": allocation calls and bytes requested per request over the measured
 *                window (exact counters in both modes; the mode only changes the overhead), or
 *                "unavailable" with the reason (an ssh server); the Go peer (static) is not
 *                preloaded: its runtime's own counters instead (peers/go/memstats.go)
 *   [pingpong]   cpus, mode, pairs, size, working_set, stride, pin: pingpong's options, each
 *                an axis (cells: mode fastest; key "mode=M cpus=C pin=P pairs=N size=S
 *                working_set=W stride=B")
 *
 * Every value is a space-separated list; a list of more than one value is a matrix axis and
 * the matrix is the product of the axes. `cpus` values: a number N (the first N CPUs), `all`,
 * or a quoted CPU list ("0", "0-1"). Unknown sections or keys, bad values and impossible
 * combinations (an engine that does not speak a protocol, more CPUs than the machine has)
 * are errors "FILE:LINE: ... (allowed: ...)", found before anything runs.
 *
 * Engines come from a catalog (what `ctxlab serve --list-engines` prints). With
 * SPEC_LENIENT (a bundled experiment, lab/bundled.h), engines missing from the catalog and
 * engine/protocol pairs that cannot run are dropped with a note instead, and so are cpus values
 * that would leave the load generator no CPU of its own (server CPUs + 1 > the machine's: `all`
 * always), with notes saying which, why, and how many CPUs would run them all; when no value
 * fits, the smallest stays (its trials then warn that the load shares the server's CPUs).
 *
 * Cells are numbered with the engine varying fastest; a run goes in rounds (repeat r of every
 * cell before repeat r + 1), each round in the seeded random order spec_round_order gives.
 * Not thread-safe; the caller owns struct spec (spec_release frees its values).
 * Parsers return 0, or -1 with err filled.
 */
#ifndef CTXLAB_LAB_SPEC_H
#define CTXLAB_LAB_SPEC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SPEC_MAX_VALUES 32
#define SPEC_MAX_KEYS 160
#define SPEC_MAX_NOTES 16
#define SPEC_MAX_ENGINES 32
#define SPEC_MAX_PARAMS 16
/* The largest matrix a spec may ask for (cells, and cells x repeat); more is refused. */
#define SPEC_MAX_CELLS 10000
#define SPEC_MAX_TRIALS 1000000

struct spec_catalog {
	int n;
	char name[SPEC_MAX_ENGINES][32];
	char protos[SPEC_MAX_ENGINES][128]; /* space-separated */
};

struct spec_value {
	char *text;
	int quoted;
};

struct spec_key {
	char section[32];
	char name[32];
	int line;
	int n;
	struct spec_value v[SPEC_MAX_VALUES];
};

enum spec_profile { SPEC_PROFILE_OFF, SPEC_PROFILE_FIRST, SPEC_PROFILE_ALL, SPEC_PROFILE_CELLS };
#define SPEC_PROFILE_VALUES "off, first, all, cells:KEY=VALUE..."

struct spec {
	char file[512];         /* the name used in messages */
	char name[64];
	char question[1024];
	int repeat;
	uint64_t warmup_ns, duration_ns;
	enum spec_profile profile; /* [experiment] profile, or `run --profile` */
	char profile_cells[256]; /* profile = cells:...: the terms, "key=value key=value" */
	char server_host[256], load_host[256];
	char server_address[64]; /* where the server listens and the load connects; default 127.0.0.1 */
	int nkeys;
	struct spec_key keys[SPEC_MAX_KEYS];
	int nnotes;
	char notes[SPEC_MAX_NOTES][256];
	int machine_cpus;       /* CPUs this process may use (validation of cpus) */
	int quick;              /* spec_quick applied */
	uint64_t seed;          /* [experiment] seed, or drawn / read back by the caller */
	int seed_set;           /* the spec gave a seed */
	double precision;       /* target relative CI half-width (0.05); 0 = off */
	int max_repeat;         /* >= repeat; repeats a cell may get by precision */
	uint64_t budget_ns;     /* [experiment] budget, 0 = default (spec_budget_ns) */
	int pingpong;           /* [experiment] kind = pingpong */
	char timeline[256];     /* [experiment] timeline: "KEY=VALUE ..." ("" = none) */
	int alloc;              /* [experiment] alloc: 0 = off, SPEC_ALLOC_SAMPLED, SPEC_ALLOC_EXACT */
};

#define SPEC_ALLOC_SAMPLED 1
#define SPEC_ALLOC_EXACT 2

#define SPEC_LENIENT 1
/* Tests only: > 0 replaces the CPU count of this machine in spec_parse_text. */
extern int spec_test_machine_cpus;

struct spec_param {
	const char *key, *value;
};

struct spec_cell {
	int index;
	char key[512];          /* "engine=fork proto=sink cpus=1 connections=4 bandwidth=1Mbps" */
	int nparams;
	struct spec_param p[SPEC_MAX_PARAMS];
	/* typed values */
	const char *engine, *proto;
	const char *cpus;       /* as written: "1", "all", or "cpu0-1" for a list */
	int cpus_count;         /* N for a count, 0 for all, -1 for a list */
	char cpus_list[64];     /* the list when cpus_count is -1 */
	int workers;            /* 0 = engine default */
	uint64_t work_cpu_us;
	const char *handoff, *balance; /* gateway only; NULL = the engine's default */
	const char *function;   /* http: the load asks for /api/NAME; NULL = / */
	int no_keepalive;       /* keepalive = off: a new connection per request */
	int connections, threads, pipeline; /* threads, pipeline: 0 = load default */
	double bandwidth_bps, rate_per_s;   /* 0 = not set (closed loop when both are 0) */
	uint64_t size_bytes;    /* 0 = load default */
	const char *bandwidth, *rate, *size; /* as written, NULL when not set */
	/* kind = pingpong (engine is "pingpong", proto NULL); size_bytes is the message size */
	const char *mode, *pin;
	int pairs;
	uint64_t working_set_bytes, stride_bytes;
};

/* Parses "NAME PROTO PROTO..." lines. Returns the number of engines. */
int spec_catalog_parse(struct spec_catalog *cat, const char *text);
int spec_catalog_speaks(const struct spec_catalog *cat, const char *engine, const char *proto);

/* Parse errors return -1 with err "FILE:LINE: ..."; a matrix of more than SPEC_MAX_CELLS cells
 * or SPEC_MAX_TRIALS trials (cells x repeat, counted in 64 bits) returns -E2BIG, err filled. */
int spec_parse_text(struct spec *s, const char *text, const char *file,
		    const struct spec_catalog *cat, int flags, char *err, size_t errlen);
void spec_release(struct spec *s);

/* The values of [section] key, NULL when absent. */
const struct spec_key *spec_get(const struct spec *s, const char *section, const char *name);

/* The matrix: *cells gets a malloc'd array (free it); returns the count. Strings in the cells
 * point into s. */
int spec_cells(const struct spec *s, struct spec_cell **cells);

/* Removes an engine from the matrix and adds the note "engine 'E' ...: WHY" (the default
 * experiment drops engines that cannot start here). 0, or -1 when it is not in the spec. */
int spec_drop_engine(struct spec *s, const char *engine, const char *why);

/* The short version for tests (`--quick`): repeat 1, warm-up <= 200ms, duration <= 500ms,
 * connections reduced to its smallest and largest value. */
void spec_quick(struct spec *s);

/* [experiment] timeline = KEY=VALUE ...: 1 when cell c's parameters match every word (the
 * runner records the first repeat of such a cell per interval: DIR/timeline/ID.json), else 0
 * (also when no timeline is asked for). */
int spec_timeline_match(const struct spec *s, const struct spec_cell *c);

/* "off", "first", "all", "cells" -> 0 and *p set; anything else -> -1 (the selector of
 * cells:... is the spec's, s->profile_cells). */
int spec_profile_parse(const char *text, enum spec_profile *p);
const char *spec_profile_name(enum spec_profile p);
/* Whether the trials of (0-based) repeat r are profiled. */
int spec_profiled(const struct spec *s, int repeat);
/* Whether cell c is profiled in repeat r: spec_profiled, and with cells:SELECTOR c matches. */
int spec_profiled_cell(const struct spec *s, const struct spec_cell *c, int repeat);
/* Whether cell c has every key=value term of s->profile_cells (1 when there is none). */
int spec_cell_selected(const struct spec *s, const struct spec_cell *c);
/* How many of the trials numbered [from, ntrials) are profiled (trial k is repeat k / ncells,
 * of the cell k % ncells of spec_cells). */
int spec_profiled_trials(const struct spec *s, int ncells, int from, int ntrials);

/* A name for cell i of cells[0..n) that is a safe file name (letters, digits, '.', '_', '-')
 * and unique among the n cells: proto, engine, connections and cpus, then every other
 * parameter whose value differs between cells ("http-epoll-c64-cpus1",
 * "sink-fork-c4-cpus1-bandwidth1Mbps"). Returns out. */
char *spec_cell_id(const struct spec_cell *cells, int n, int i, char *out, size_t len);

/* Estimated wall time of ntrials trials, nprofiled of them profiled. */
uint64_t spec_estimate_ns(const struct spec *s, int ntrials, int nprofiled);
/* start/stop of server and load per trial, and what the window's neighbours take: measured
 * 1.25-1.3 s on a quiet 2-core machine until 2026-12-05, ~1 s of it the kernel's RCU grace
 * periods at the close of the per-cgroup syscall counters. With the run holding those
 * tracepoints registered (monitor/syscount.h, syscount_hold), 2026-12-05 on the 2-core guest
 * under load (load average 11-37): bench/trial-overhead (7 rounds, epoll/fork/thread http at 64
 * connections, 1 s windows) 0.064 s [0.048, 0.141] per trial against 1.227 s [0.922, 1.258]
 * for the build before; `run --quick` (papaya) median 0.06 s for sink and 0.09 s for http
 * trials (fork at 256 connections 0.24-0.26 s): the server's and the load's start, the load's
 * connect and its JSON. A fan-out (chat) trial takes another ~1.1 s (the room's joins and the
 * 1 s drain of lines in flight) that the estimate leaves out */
#define SPEC_TRIAL_OVERHEAD_NS 100000000ULL
/* a profiled trial waits for the profiler to symbolize and write its flame graph: with the
 * run's symbol cache (filled before the first trial) profiling adds 0.060 s [0.007, 0.100] per
 * profiled trial (0.33 s [0.25, 0.45] before), the window's end to the files written 0.091 s
 * [0.075, 0.104] (bench/trial-overhead, as above) */
#define SPEC_PROFILE_OVERHEAD_NS 100000000ULL /* measured: docs/metrics.md, "Profiled trials" */

/* "N%" (0 < N <= 100) -> N / 100, "off" -> 0; anything else -> -1. */
int spec_precision_parse(const char *text, double *precision);
/* A decimal uint64 -> 0 and *seed; anything else -> -1. */
int spec_seed_parse(const char *text, uint64_t *seed);

/* The order of round `round` (0-based; the trials of that repeat): perm[0..ncells) gets a
 * permutation of the cell indexes, a Fisher-Yates shuffle from splitmix64 seeded by (seed,
 * round). Deterministic: the same seed and round give the same order on every machine. */
void spec_round_order(uint64_t seed, int round, int ncells, int *perm);

/* The whole run's wall-time budget: [experiment] budget, else 1.5 x spec_estimate_ns of the
 * fixed rounds (ncells x repeat trials). */
uint64_t spec_budget_ns(const struct spec *s, int ncells);

/* --dry-run: the axes, the cells, the trial count and the estimated duration. */
void spec_print_matrix(const struct spec *s, FILE *f);

/* ---- answers ([answer.ID] sections; docs/metrics.md, "Answers") ---- */
#define SPEC_MAX_ANSWERS 16
/* One question: strings point into the spec (NULL when the key is absent). */
struct spec_answer {
	const char *id;          /* ID of [answer.ID] */
	int line;                /* its first key's line */
	const char *question;
	int metric;              /* enum record_metric_id, -1 when absent */
	const char *compare;     /* "SELECTOR / SELECTOR", or NULL */
	const char *grow;        /* an axis, or NULL */
	const char *where;       /* "KEY=V[,V...] ..." (V: a value, '*', 'min', 'max'), or NULL */
	const char *say;         /* sentence template, or NULL */
	int needs_cpus;          /* 0: none */
};
/* The [answer.*] sections in file order: fills out[0..max), returns their count. */
int spec_answers(const struct spec *s, struct spec_answer *out, int max);
/* A record metric by id ("cpu_us_per_request") or record path ("server_cpu.us_per_request"):
 * its enum record_metric_id, or -1. */
int spec_metric_find(const char *name);
/* --dry-run: the questions. */
void spec_print_answers(const struct spec *s, FILE *f);

#endif
