/* ctxlab stack: dumps every thread's call stack of a running process (or of a whole process
 * tree with --all), eu-stack style. Option parsing and printing only: the dump is
 * src/profile/stack.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/spawn.h"
#include "profile/stack.h"

static const char usage[] =
	"usage: ctxlab stack (--pid PID [--all] | --cgroup PATH)\n"
	"\n"
	"Prints the call stack of every thread of a running process, leaf first, with the\n"
	"profiler's unwinder (libdwfl over .eh_frame/.debug_frame: right for programs built\n"
	"without frame pointers) and symbols (file:line where debug info is found: the binary,\n"
	"/usr/lib/debug/.build-id, or debuginfod when DEBUGINFOD_URLS is set).\n"
	"\n"
	"What it stops, and for how long: one thread at a time, with ptrace (PTRACE_ATTACH,\n"
	"a SIGSTOP), only while that thread's registers and stack are read; the other threads\n"
	"run on. The stop of each thread is measured and printed; measured on a 2-core VM\n"
	"at load average 10-20: 0.4 ms for a one-thread program blocked in pause(), 4-30 ms\n"
	"per thread of nginx under load (mostly waiting for the thread to be scheduled to\n"
	"take the stop). Nothing is written to the process. Needs root (or the same user with\n"
	"kernel.yama.ptrace_scope=0); a thread already traced (a debugger, strace) is\n"
	"reported and skipped.\n"
	"\n"
	"For ctxlab's coro engine (any program with its coroutine registry) it also prints\n"
	"each suspended coroutine's stack, unwound from the registers its last switch saved,\n"
	"read from /proc/PID/mem after the threads, without stopping anything (best effort:\n"
	"a coroutine resumed meanwhile may show a stale stack).\n"
	"\n";

static pid_t pid;
static int all;
static const char *cgroup;

static const struct opt options[] = {
	OPT_GROUP("options:"),
	OPT_CALLBACK('p', "pid", &pid, "PID", "the process to dump", cmd_opt_pid),
	OPT_FLAG('a', "all", &all, "also every descendant process of PID (the whole tree)"),
	OPT_STRING('G', "cgroup", &cgroup, "PATH",
		   "every process of a cgroup directory (its cgroup.procs)"),
	OPT_END(),
};

extern const struct cmd_info cmd_info_stack;

#define MAX_PROCS 4096

static int cmd_stack(int argc, char **argv)
{
	int nops = cmd_parse_options(&cmd_info_stack, argc, argv, 0, NULL);
	if (nops < 0)
		return 2;
	if (nops > 0)
		return cmd_usage_error("unexpected argument '%s' (see 'ctxlab stack --help')",
				       argv[0]);
	if (!pid == !cgroup)
		return cmd_usage_error("pass one of --pid PID or --cgroup PATH (see 'ctxlab stack "
				       "--help')");
	pid_t *pids = malloc(MAX_PROCS * sizeof(*pids));
	if (!pids)
		return error("out of memory"), 1;
	int n = 0;
	if (pid)
		pids[n++] = pid;
	if (cgroup) {
		char path[4200];
		snprintf(path, sizeof path, "%s/cgroup.procs", cgroup);
		FILE *f = fopen(path, "re");
		if (!f) {
			int e = errno;
			free(pids);
			return error("cannot open '%s': %s (pass a cgroup directory, e.g. "
				     "/sys/fs/cgroup/NAME)", path, strerror(e)), 1;
		}
		int v;
		while (n < MAX_PROCS && fscanf(f, "%d", &v) == 1)
			if (v > 0)
				pids[n++] = v;
		fclose(f);
		if (!n) {
			free(pids);
			return error("cgroup '%s' has no process", cgroup), 1;
		}
	}
	if (all) {
		int nd = spawn_descendants(pid, pids + 1, MAX_PROCS - 1);
		n += nd > 0 ? (nd < MAX_PROCS - 1 ? nd : MAX_PROCS - 1) : 0;
	}
	struct stack_result res = {0};
	int rc = 0;
	for (int i = 0; i < n; i++) {
		struct buf out = BUF_INIT;
		char err[512];
		int r = stack_dump(pids[i], &out, &res, err, sizeof err);
		if (buf_used(&out))
			fwrite(buf_head(&out), 1, buf_used(&out), stdout);
		buf_free(&out);
		if (r) {
			error("%s", err);
			rc = 1;
		}
		if (i + 1 < n)
			putchar('\n');
	}
	fflush(stdout);
	if (res.threads)
		printf("stack: %d thread%s dumped%s, each stopped at most %.3f ms (%.3f ms in all)"
		       "%s\n", res.threads, res.threads == 1 ? "" : "s",
		       res.failed ? " (some not)" : "", (double)res.max_stop_ns / 1e6,
		       (double)res.total_stop_ns / 1e6, res.coroutines ? "; coroutines not stopped" : "");
	free(pids);
	return rc || !res.threads ? 1 : 0;
}

const struct cmd_info cmd_info_stack = {"stack", cmd_stack,
					"dump every thread's call stack of a running process",
					usage, options, NULL};
