/* syscpu: the system-wide CPU breakdown of /proc/stat, like top's "%Cpu(s)" line
 * (the monitor's; also lab/runner.c's, for a trial's system_cpu per CPU group over its window). Percentages of the interval between two reads, per CPU and overall.
 * Keeps /proc/stat open and re-reads it with pread. Not thread-safe. 0 / -errno. */
#ifndef CTXLAB_MONITOR_SYSCPU_H
#define CTXLAB_MONITOR_SYSCPU_H

#include <stdint.h>

enum { SYSCPU_US, SYSCPU_SY, SYSCPU_NI, SYSCPU_ID, SYSCPU_WA, SYSCPU_HI, SYSCPU_SI, SYSCPU_ST,
       SYSCPU_N };

struct syscpu {
	int fd;
	int ncpus;            /* CPUs listed in /proc/stat (online) */
	int maxcpus;          /* capacity of the arrays */
	uint64_t *prev;       /* [(1 + maxcpus) * SYSCPU_N] ticks at the last read; row 0 = all */
	uint64_t *cur;
	char *buf;
	unsigned buflen;
};

int syscpu_open(struct syscpu *s);
/* Reads /proc/stat and writes percentages of the interval since the previous read into
 * pct[(1 + maxcpus) * SYSCPU_N] (row 0 = all CPUs, row 1+i = cpu i). Percentages of an
 * empty interval are 0. */
int syscpu_read(struct syscpu *s, double *pct);
void syscpu_close(struct syscpu *s);

#endif
