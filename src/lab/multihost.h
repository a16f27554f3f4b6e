/* multihost: what a trial needs when its roles run on several or remote hosts:
 *
 *   multihost_share     how connections (and the open-loop rate) are split over N load hosts
 *   multihost_probe     one round trip to a host: its kernel, CPU model, cores and the version
 *                       of the ctxlab there (host_remote_bin on ssh hosts), compared with ours
 *   multihost_merge     the documents of N `ctxlab load --json-hist` runs, merged exactly into
 *                       one document of the same shape: counters summed, the latency
 *                       histograms merged slot by slot (never averaged percentiles), plus
 *                       "load_hosts": one object per host (host, requests, client_cpu_s, rate,
 *                       requests_per_s, messages_sent, unfinished, errors, connections,
 *                       duration_s, start_wall_ns)
 *
 * Each host measures its latency against its own clock (send and answer on the same host): no
 * time is ever compared across hosts. Not thread-safe; functions return 0 or -1 with err set
 * unless said otherwise.
 */
#ifndef CTXLAB_LAB_MULTIHOST_H
#define CTXLAB_LAB_MULTIHOST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "lab/host.h"

#define MULTIHOST_MAX 16

/* Host i's share of total when split over n hosts: total / n, the first total % n hosts one
 * more (the shares sum to total). */
uint64_t multihost_share(uint64_t total, int n, int i);

struct multihost_info {
	char host[256];          /* the spec, e.g. "ssh:root@10.0.0.2" */
	char kernel[128], cpu_model[160], version[128];
	int cores;
	char error[512];         /* "" when the host answered with our version */
};

/* Probes h (named spec) at most timeout_ns: fills *out, with out->error set (and -1 returned)
 * when the host cannot be reached, has no ctxlab at bin (the local binary on local and netns
 * hosts; host_remote_bin() on ssh hosts), or another version than local_version (the first
 * line `ctxlab --version` prints here). */
int multihost_probe(const struct host *h, const char *spec, const char *bin,
		    const char *local_version, uint64_t timeout_ns, struct multihost_info *out);

/* Merges docs[0..n) (load JSON with "latency_hist"/"latency_uncorrected_hist") of hosts
 * names[i], given rates[i] (each host's open-loop rate, 0 = closed loop; load_hosts[].rate
 * is the rate each document's config reports, rates[i] when it has none). A new document
 * (json_decref it), or NULL with err set. */
json_t *multihost_merge(json_t *const *docs, const char *const *names, const double *rates,
			int n, char *err, size_t errlen);

#endif
