/* spawn_helper: a known child program for the spawn tests.
 *
 *   spawn_helper affinity          prints "cpus 0,1" (its sched_getaffinity)
 *   spawn_helper lines N MS        prints "line 0".."line N-1", MS ms apart
 *   spawn_helper partial           prints "hel", 300 ms later "lo\nworld" (no final newline)
 *   spawn_helper exit CODE         exits with CODE
 *   spawn_helper env NAME          prints the value of NAME (or "(unset)")
 *   spawn_helper cwd               prints its working directory
 *   spawn_helper stdin             prints "stdin N": bytes read from stdin until EOF
 *   spawn_helper stderr TEXT       writes TEXT to stderr
 *   spawn_helper netns             prints the inode link of /proc/self/ns/net
 *   spawn_helper ignore-term       ignores SIGTERM, prints "ready", sleeps (30 s at most)
 *   spawn_helper tree stay|exit    starts a child, a grandchild and a great-grandchild that
 *                                  setsid()s away from the group (its parent exits), prints
 *                                  "pids CHILD GRANDCHILD ESCAPED", then sleeps or exits 0
 * Every sleeper ends by itself after 30 s, so a failing test leaves nothing forever.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0)
		;
}

static _Noreturn void linger(void)
{
	sleep_ms(30000);
	_exit(0);
}

static int tree(int stay)
{
	int p[2];
	if (pipe(p) < 0)
		return 2;
	pid_t c1 = fork();
	if (c1 == 0)
		linger();
	pid_t c2 = fork();
	if (c2 == 0) {
		pid_t g = fork();
		if (g == 0) {
			setsid(); /* away from the keeper's process group */
			pid_t gg = fork();
			if (gg == 0) {
				pid_t me = getpid();
				if (write(p[1], &me, sizeof(me)) != sizeof(me))
					_exit(2);
				linger();
			}
			_exit(0); /* the great-grandchild is orphaned: reparented to the subreaper */
		}
		waitpid(g, NULL, 0);
		/* g is reaped, so the tree is settled: tell the top (0 = settled) */
		pid_t zero = 0;
		if (write(p[1], &zero, sizeof(zero)) != sizeof(zero))
			_exit(2);
		linger();
	}
	pid_t esc = 0;
	for (int i = 0; i < 2; i++) {
		pid_t v;
		if (read(p[0], &v, sizeof(v)) != sizeof(v))
			return 2;
		if (v)
			esc = v;
	}
	printf("pids %d %d %d\n", (int)c1, (int)c2, (int)esc);
	fflush(stdout);
	if (stay)
		linger();
	return 0; /* leaves c1, c2 and esc behind */
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(mode, "affinity")) {
		cpu_set_t s;
		if (sched_getaffinity(0, sizeof(s), &s) < 0)
			return 2;
		printf("cpus");
		const char *sep = " ";
		for (int i = 0; i < CPU_SETSIZE; i++) {
			if (CPU_ISSET(i, &s)) {
				printf("%s%d", sep, i);
				sep = ",";
			}
		}
		printf("\n");
		return 0;
	}
	if (!strcmp(mode, "lines") && argc > 3) {
		int n = atoi(argv[2]);
		long ms = atol(argv[3]);
		for (int i = 0; i < n; i++) {
			if (i && ms)
				sleep_ms(ms);
			printf("line %d\n", i);
		}
		return 0;
	}
	if (!strcmp(mode, "partial")) {
		printf("hel");
		fflush(stdout);
		sleep_ms(300);
		printf("lo\nworld");
		fflush(stdout);
		return 0;
	}
	if (!strcmp(mode, "exit") && argc > 2)
		return atoi(argv[2]);
	if (!strcmp(mode, "env") && argc > 2) {
		const char *v = getenv(argv[2]);
		printf("%s\n", v ? v : "(unset)");
		return 0;
	}
	if (!strcmp(mode, "cwd")) {
		char buf[4096];
		if (!getcwd(buf, sizeof(buf)))
			return 2;
		printf("%s\n", buf);
		return 0;
	}
	if (!strcmp(mode, "stdin")) {
		char buf[256];
		long total = 0;
		ssize_t n;
		while ((n = read(0, buf, sizeof(buf))) > 0)
			total += n;
		printf("stdin %ld\n", n < 0 ? -1L : total);
		return 0;
	}
	if (!strcmp(mode, "stderr") && argc > 2) {
		fprintf(stderr, "%s\n", argv[2]);
		return 0;
	}
	if (!strcmp(mode, "netns")) {
		char buf[128];
		ssize_t n = readlink("/proc/self/ns/net", buf, sizeof(buf) - 1);
		if (n < 0)
			return 2;
		buf[n] = 0;
		printf("%s\n", buf);
		return 0;
	}
	if (!strcmp(mode, "ignore-term")) {
		signal(SIGTERM, SIG_IGN);
		printf("ready\n");
		linger();
	}
	if (!strcmp(mode, "tree") && argc > 2)
		return tree(!strcmp(argv[2], "stay"));
	fprintf(stderr, "spawn_helper: unknown mode '%s'\n", mode);
	return 2;
}
