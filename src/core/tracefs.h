/* tracefs: tracepoint ids for perf_event_open(PERF_TYPE_TRACEPOINT).
 *
 * Looks under /sys/kernel/tracing/events, then /sys/kernel/debug/tracing/events. When neither
 * has the event, the caller is root and tracefs is simply not mounted (a common default on
 * VMs and containers), it mounts tracefs on /sys/kernel/tracing — as perf's libapi does — or
 * debugfs on /sys/kernel/debug, once per process, and looks again. CTXLAB_NO_TRACEFS_MOUNT=1
 * turns the mount off (the tests use it to exercise the "unavailable" path).
 * Thread-safe only if the first call is made before threads start (it caches nothing else). */
#ifndef CTXLAB_CORE_TRACEFS_H
#define CTXLAB_CORE_TRACEFS_H
#include <stddef.h>

/* The id of "group/name" (e.g. "sched/sched_switch"), or -errno with a reason that says what
 * to do in reason[len] (may be NULL). */
long tracefs_event_id(const char *event, char *reason, size_t len);

#endif
