#include "core/lifeline.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t grace;

int lifeline_wait_go(void)
{
	/* unbuffered write: the run reads this line before it writes "go" */
	static const char line[] = LIFELINE_WAITING "\n";
	if (write(STDOUT_FILENO, line, sizeof line - 1) != (ssize_t)(sizeof line - 1))
		return -EIO;
	char got[16];
	size_t n = 0;
	for (;;) {
		char c;
		ssize_t r = read(STDIN_FILENO, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -EPIPE;
		if (c == '\n')
			break;
		if (n < sizeof got - 1)
			got[n++] = c;
	}
	got[n] = 0;
	return strcmp(got, "go") ? -EPROTO : 0;
}

static void *watch(void *arg)
{
	(void)arg;
	char b[256];
	for (;;) {
		ssize_t r = read(STDIN_FILENO, b, sizeof b);
		if (r > 0 || (r < 0 && errno == EINTR))
			continue;
		break;
	}
	kill(getpid(), SIGTERM);
	struct timespec ts = {(time_t)(grace / 1000000000ULL), (long)(grace % 1000000000ULL)};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	/* still here: the graceful stop did not end it */
	if (getpgrp() == getpid())
		kill(0, SIGKILL);
	kill(getpid(), SIGKILL);
	return NULL;
}

int lifeline_start(uint64_t grace_ns)
{
	grace = grace_ns;
	pthread_t t;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	/* the thread takes no signal: the role's handlers run on its own threads */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&t, &a, watch, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&a);
	return -rc;
}
