/* ready: the ready-line contract between a server and whoever started it.
 *
 * A server prints exactly one line to stdout, and flushes it, once it accepts connections:
 *
 *   listening on HOST:PORT engine=E proto=P pid=PID
 *
 * HOST:PORT is net_format's form ("127.0.0.1:7000", "[::1]:7000"; the bound address, which may
 * be 0.0.0.0); E and P are names without spaces; PID is the root of the server's process tree
 * (the pid to monitor). This file is the only place in C that formats or parses the line:
 * `ctxlab serve` (engine_ready), the go engine's relay, the runner (lab/launch.c). The Python
 * test helpers (tests/integration/ctxlabtest.py, READY_RE) mirror ready_parse; the unit test
 * tests/unit/test_core_ready.c pins both to the same examples.
 *
 * Pure functions, thread-safe.
 */
#ifndef CTXLAB_CORE_READY_H
#define CTXLAB_CORE_READY_H

#include <stddef.h>
#include <sys/types.h>

#define READY_PREFIX "listening on "

struct ready {
	char addr[96];   /* "HOST:PORT" as printed */
	char host[80];   /* HOST without brackets ("::1", "0.0.0.0") */
	int port;
	char engine[64];
	char proto[64];
	pid_t pid;
};

/* Formats the ready line (no newline) into buf. Returns the length it needed (as snprintf),
 * or -EINVAL when a name is empty or holds a space. */
int ready_format(char *buf, size_t len, const char *addr, const char *engine, const char *proto,
		 pid_t pid);

/* Parses a line (a trailing '\n' is allowed). 0 and *r filled; -EINVAL when the line is not a
 * ready line (another message); -ERANGE when a field is too long. Lenient on what a peer may
 * leave out: a line with only "listening on HOST:PORT" parses with engine/proto "" and pid 0
 * (outside peers such as load_testsrv print no more); the fields present must be well formed. */
int ready_parse(const char *line, struct ready *r);

/* 1 when line starts with READY_PREFIX (a line that is meant to be the ready line). */
int ready_is_ready_line(const char *line);

#endif
