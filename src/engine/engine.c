/* engine: the registry of engines, stop handling and the ready line. */
#include "engine/engine.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/log.h"
#include "core/ready.h"

extern const struct engine engine_fork;
extern const struct engine engine_prefork;
extern const struct engine engine_thread;
extern const struct engine engine_epoll;
extern const struct engine engine_coro;
extern const struct engine engine_uring;
extern const struct engine engine_gateway;
extern const struct engine engine_go;
extern const struct engine engine_nginx;

/* in the order --list-engines prints them */
static const struct engine *const engines[] = {
	&engine_fork, &engine_prefork, &engine_thread, &engine_epoll, &engine_coro,
	&engine_uring, &engine_gateway, &engine_go, &engine_nginx,
};
#define NENGINES (sizeof(engines) / sizeof(engines[0]))

const struct engine *engine_find(const char *name)
{
	for (size_t i = 0; i < NENGINES; i++)
		if (!strcmp(engines[i]->name, name))
			return engines[i];
	return NULL;
}

static char names_buf[256];
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

static void names_fill(void)
{
	size_t off = 0;
	for (size_t i = 0; i < NENGINES; i++) {
		int n = snprintf(names_buf + off, sizeof(names_buf) - off, "%s%s", off ? " " : "",
				 engines[i]->name);
		if (n < 0 || (size_t)n >= sizeof(names_buf) - off)
			break;
		off += (size_t)n;
	}
}

const char *engine_names(void)
{
	pthread_once(&names_once, names_fill);
	return names_buf;
}

int engine_speaks(const struct engine *e, const struct proto *p)
{
	return p && (p->caps & e->needs) == e->needs;
}

char *engine_protos(const struct engine *e, char *buf, size_t len)
{
	size_t off = 0;
	if (len)
		buf[0] = 0;
	for (size_t i = 0; proto_at(i); i++) {
		const struct proto *p = proto_at(i);
		if (!engine_speaks(e, p))
			continue;
		int n = snprintf(buf + off, len - off, "%s%s", off ? " " : "", p->name);
		if (n < 0 || (size_t)n >= len - off) {
			buf[off] = 0; /* whole names only */
			break;
		}
		off += (size_t)n;
	}
	return buf;
}

/* ---- stop handling ------------------------------------------------------------------- */

static volatile sig_atomic_t stop_flag;
static int stop_efd = -1;
static pthread_mutex_t stop_mu = PTHREAD_MUTEX_INITIALIZER;

/* Created before any signal handler can run: serve calls engine_stop_fd() during setup, and
 * the constructor covers every other user. */
__attribute__((constructor)) static void stop_init(void)
{
	if (stop_efd < 0)
		stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

void engine_request_stop(void)
{
	int saved = errno;
	stop_flag = 1;
	if (stop_efd >= 0) {
		uint64_t one = 1;
		ssize_t w = write(stop_efd, &one, sizeof(one));
		(void)w;
	}
	errno = saved;
}

int engine_stop_requested(void) { return stop_flag != 0; }

int engine_stop_fd(void)
{
	pthread_mutex_lock(&stop_mu);
	if (stop_efd < 0)
		stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int fd = stop_efd;
	pthread_mutex_unlock(&stop_mu);
	return fd;
}

void engine_stop_reset(void)
{
	/* the inherited eventfd is shared with the parent: a stop of one must not stop the other */
	int old = stop_efd;
	stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (old >= 0)
		close(old);
	stop_flag = 0;
}

/* ---- set-up errors ------------------------------------------------------------------- */

static pthread_mutex_t fail_mu = PTHREAD_MUTEX_INITIALIZER;

int engine_fail(const struct engine_cfg *cfg, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!cfg || !cfg->err || !cfg->errlen)
		return error("%s", msg);
	pthread_mutex_lock(&fail_mu);
	if (!cfg->err[0])
		snprintf(cfg->err, cfg->errlen, "%s", msg);
	pthread_mutex_unlock(&fail_mu);
	return -1;
}

/* ---- ready line ---------------------------------------------------------------------- */

static pthread_mutex_t ready_mu = PTHREAD_MUTEX_INITIALIZER;
static int ready_done;

void engine_ready(const struct engine_cfg *cfg, const struct net_addr *bound)
{
	char addr[128];
	pthread_mutex_lock(&ready_mu);
	if (!ready_done) {
		ready_done = 1;
		char line[256];
		net_format(bound, addr, sizeof(addr));
		if (ready_format(line, sizeof(line), addr, cfg->engine_name,
				 cfg->proto ? cfg->proto->name : "?", getpid()) > 0) {
			fprintf(stdout, "%s\n", line);
			fflush(stdout);
		}
	}
	pthread_mutex_unlock(&ready_mu);
}
