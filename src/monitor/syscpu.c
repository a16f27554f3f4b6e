#include "monitor/syscpu.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* /proc/stat "cpu" columns: user nice system idle iowait irq softirq steal guest guest_nice */
static int parse(struct syscpu *s, uint64_t *out)
{
	ssize_t n = pread(s->fd, s->buf, s->buflen - 1, 0);
	if (n < 0)
		return -errno;
	s->buf[n] = 0;
	memset(out, 0, sizeof(uint64_t) * (size_t)(1 + s->maxcpus) * SYSCPU_N);
	int ncpu = 0;
	char *p = s->buf;
	while (*p == 'c' && p[1] == 'p' && p[2] == 'u') {
		p += 3;
		int row = 0;
		if (*p >= '0' && *p <= '9') {
			int c = 0;
			while (*p >= '0' && *p <= '9')
				c = c * 10 + (*p++ - '0');
			row = 1 + c;
			if (c + 1 > ncpu)
				ncpu = c + 1;
		}
		uint64_t v[10] = {0};
		for (int i = 0; i < 10; i++) {
			while (*p == ' ')
				p++;
			while (*p >= '0' && *p <= '9')
				v[i] = v[i] * 10 + (uint64_t)(*p++ - '0');
		}
		if (row <= s->maxcpus) {
			uint64_t *o = out + (size_t)row * SYSCPU_N;
			/* guest time is already included in user (top does the same) */
			o[SYSCPU_US] = v[0], o[SYSCPU_NI] = v[1], o[SYSCPU_SY] = v[2];
			o[SYSCPU_ID] = v[3], o[SYSCPU_WA] = v[4], o[SYSCPU_HI] = v[5];
			o[SYSCPU_SI] = v[6], o[SYSCPU_ST] = v[7];
		}
		while (*p && *p != '\n')
			p++;
		if (*p)
			p++;
	}
	s->ncpus = ncpu < s->maxcpus ? ncpu : s->maxcpus;
	return 0;
}

int syscpu_open(struct syscpu *s)
{
	memset(s, 0, sizeof *s);
	long conf = sysconf(_SC_NPROCESSORS_CONF);
	s->maxcpus = conf > 0 ? (int)conf : 1;
	s->buflen = 4096 + 256 * (unsigned)s->maxcpus;
	s->fd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
	if (s->fd < 0)
		return -errno;
	size_t rows = (size_t)(1 + s->maxcpus) * SYSCPU_N;
	s->prev = calloc(rows, sizeof(uint64_t));
	s->cur = calloc(rows, sizeof(uint64_t));
	s->buf = malloc(s->buflen);
	if (!s->prev || !s->cur || !s->buf) {
		syscpu_close(s);
		return -ENOMEM;
	}
	return parse(s, s->prev);
}

int syscpu_read(struct syscpu *s, double *pct)
{
	int r = parse(s, s->cur);
	if (r)
		return r;
	for (int row = 0; row <= s->maxcpus; row++) {
		uint64_t *c = s->cur + (size_t)row * SYSCPU_N, *p = s->prev + (size_t)row * SYSCPU_N;
		double *o = pct + (size_t)row * SYSCPU_N;
		uint64_t d[SYSCPU_N], tot = 0;
		for (int i = 0; i < SYSCPU_N; i++) {
			/* counters can step back on CPU hotplug: treat as no time */
			d[i] = c[i] >= p[i] ? c[i] - p[i] : 0;
			tot += d[i];
		}
		for (int i = 0; i < SYSCPU_N; i++)
			o[i] = tot ? 100.0 * (double)d[i] / (double)tot : 0.0;
	}
	uint64_t *t = s->prev;
	s->prev = s->cur, s->cur = t;
	return 0;
}

void syscpu_close(struct syscpu *s)
{
	if (s->fd > 0)
		close(s->fd);
	free(s->prev), free(s->cur), free(s->buf);
	memset(s, 0, sizeof *s);
	s->fd = -1;
}
