/* go: the outside peer Go net/http (peers/go, binary ctxlab-peer-go) run as an engine.
 *
 * The peer is found at cfg->peer_bin, else $CTXLAB_GO_PEER, else ctxlab-peer-go next to
 * /proc/self/exe. It is started through core/spawn (argv only; its tree dies with ctxlab)
 * with the options mapped to its flags; --workers N sets GOMAXPROCS=N. Its ready line is read
 * (10 s at most) and relayed through engine_ready (engine=go, this process's pid: the root of
 * the server tree). A stop is forwarded as SIGTERM with the usual grace, and the tree reaped.
 */
#include "engine/engine.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/ready.h"
#include "core/spawn.h"

#define GO_READY_TIMEOUT_NS (10 * NS_PER_S)

static int find_peer(const struct engine_cfg *cfg, char *path, size_t len)
{
	const char *p = cfg->peer_bin;
	if (!p || !*p)
		p = getenv("CTXLAB_GO_PEER");
	if (p && *p) {
		snprintf(path, len, "%s", p);
	} else {
		char self[PATH_MAX - 32];
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n <= 0)
			return -errno;
		self[n] = 0;
		char *slash = strrchr(self, '/');
		if (slash)
			*slash = 0;
		snprintf(path, len, "%s/ctxlab-peer-go", self);
	}
	return access(path, X_OK) ? -errno : 0;
}

/* Waits for a stop request while watching the child's stdout; returns 0 on a stop, 1 when the
 * peer ended by itself. */
static int go_wait(struct spawn_child *child)
{
	struct pollfd pf[2] = {{engine_stop_fd(), POLLIN, 0}, {child->stdout_fd, POLLIN, 0}};
	char sink[512];
	while (!engine_stop_requested()) {
		int r = poll(pf, pf[1].fd >= 0 ? 2 : 1, pf[1].fd >= 0 ? -1 : 200);
		if (r < 0 && errno != EINTR)
			return 1;
		if (pf[0].revents)
			return 0;
		if (pf[1].fd >= 0 && pf[1].revents) {
			ssize_t n = read(pf[1].fd, sink, sizeof(sink));
			if (n <= 0)
				pf[1].fd = -1; /* stdout closed: the peer is (nearly) gone */
		}
		if (pf[1].fd < 0 && spawn_wait(child, 0) == 0)
			return 1;
	}
	return 0;
}

static int go_run(const struct engine_cfg *cfg)
{
	char peer[PATH_MAX];
	int r = find_peer(cfg, peer, sizeof(peer));
	if (r < 0) {
		error("go peer '%s' is not there or not executable: %s (run scripts/setup.sh to "
		      "install golang-go and rebuild, or pass --peer-bin / set CTXLAB_GO_PEER)",
		      peer, strerror(-r));
		return 2;
	}
	char listen[128], cpu[32], mem[32], stride[32], outbuf[32], procs[32];
	net_format(&cfg->listen, listen, sizeof(listen));
	snprintf(cpu, sizeof(cpu), "%" PRIu64, cfg->pcfg.work_cpu_us);
	snprintf(mem, sizeof(mem), "%" PRIu64, cfg->pcfg.work_mem_bytes);
	snprintf(stride, sizeof(stride), "%" PRIu64, cfg->pcfg.work_stride_bytes);
	const char *argv[16];
	int a = 0;
	argv[a++] = peer;
	argv[a++] = "-listen";
	argv[a++] = listen;
	argv[a++] = "-proto";
	argv[a++] = cfg->proto->name;
	argv[a++] = "-work-cpu-us";
	argv[a++] = cpu;
	argv[a++] = "-work-mem";
	argv[a++] = mem;
	if (cfg->pcfg.work_stride_bytes) {
		argv[a++] = "-work-stride";
		argv[a++] = stride;
	}
	if (cfg->pcfg.max_outbuf) {
		snprintf(outbuf, sizeof(outbuf), "%zu", cfg->pcfg.max_outbuf);
		argv[a++] = "-max-outbuf";
		argv[a++] = outbuf;
	}
	argv[a] = NULL;
	const char *env[2] = {NULL, NULL};
	if (cfg->workers > 0) {
		snprintf(procs, sizeof(procs), "GOMAXPROCS=%d", cfg->workers);
		env[0] = procs;
	}
	struct spawn_opts o = {.argv = argv, .env = env, .capture_stdout = 1, .stdin_null = 1,
			       .stderr_fd = -1};
	struct spawn_child child;
	memset(&child, 0, sizeof(child));
	r = spawn_start(&o, &child);
	if (r < 0) {
		error("cannot start the go peer '%s': %s (run scripts/setup.sh)", peer, strerror(-r));
		return 1;
	}
	char line[512];
	r = spawn_read_line(&child, line, sizeof(line), GO_READY_TIMEOUT_NS);
	struct net_addr bound;
	char err[256];
	struct ready rl;
	if (r != 1 || ready_parse(line, &rl) < 0 || net_parse(rl.addr, &bound, err, sizeof(err)) < 0) {
		if (r == 1)
			error("the go peer '%s' printed '%s' instead of its ready line", peer, line);
		else
			error("the go peer '%s' did not get ready: %s (see its message above)", peer,
			      r == 0 ? "it exited" : strerror(-r));
		spawn_stop(&child, ENGINE_STOP_GRACE_NS);
		return 1;
	}
	engine_ready(cfg, &bound);
	int ended = go_wait(&child);
	r = spawn_stop(&child, ENGINE_STOP_GRACE_NS);
	if (ended) {
		error("the go peer exited by itself (status %d)", child.status);
		return 1;
	}
	return r == 0 ? 0 : 1;
}

const struct engine engine_go = {
	.name = "go",
	.summary = "outside peer: Go net/http (ctxlab-peer-go, a goroutine per connection)",
	.needs = PROTO_CAP_PEER,
	.run = go_run,
};
