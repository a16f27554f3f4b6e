/* host: where a role (server, load) runs, and the argv that runs a command there.
 *
 *   local          the command as is
 *   ssh:user@host  OpenSSH: ssh [$CTXLAB_SSH_OPTIONS] -o BatchMode=yes -o ConnectTimeout=10 -T
 *                  -- user@host 'arg0' 'arg1' ...; CTXLAB_SSH_OPTIONS (whitespace-separated
 *                  words, e.g. "-i KEY -o UserKnownHostsFile=F -p 2222") come first, so that
 *                  they win over ctxlab's defaults (ssh keeps an option's first value); ssh joins the
 *                  remote words into a shell line, so every argument is single-quoted
 *                  (no interpolation on the remote side); the program is looked up in the
 *                  remote PATH
 *   netns:NAME     the command as is, run inside /run/netns/NAME (spawn_opts.netns)
 *
 * Functions return 0 or -1 with err set. Not thread-safe (pure apart from the caller's buffers).
 */
#ifndef CTXLAB_LAB_HOST_H
#define CTXLAB_LAB_HOST_H

#include <stddef.h>

#include "core/buf.h"

enum host_kind { HOST_LOCAL, HOST_SSH, HOST_NETNS };

struct host {
	enum host_kind kind;
	char target[256]; /* ssh: user@host; netns: NAME */
};

#define HOST_MAX_ARGS 64

struct host_cmd {
	const char *argv[HOST_MAX_ARGS + 12]; /* NULL-terminated; points into store and the input */
	struct buf store;
	const char *netns;                   /* for spawn_opts.netns, NULL unless netns */
};

int host_parse(struct host *h, const char *spec, char *err, size_t errlen);
/* Fills cmd to run argv (NULL-terminated, at most HOST_MAX_ARGS) on h. Release cmd with
 * host_cmd_release. `remote_prog` replaces argv[0] on ssh hosts (e.g. "ctxlab" instead of a
 * local path); NULL keeps argv[0]. */
int host_cmd(const struct host *h, const char *const *argv, const char *remote_prog,
	     struct host_cmd *cmd, char *err, size_t errlen);
void host_cmd_release(struct host_cmd *cmd);
/* Appends arg quoted for a POSIX shell: 'it'\''s' */
void host_quote(struct buf *b, const char *arg);
int host_is_local_machine(const struct host *h); /* local or netns: same kernel, pids visible */

/* The ctxlab that roles run on ssh hosts (`ctxlab run --remote-bin PATH`; the default is the
 * local binary's own path). Process-wide; host_remote_bin() is "ctxlab" until it is set. */
void host_set_remote_bin(const char *path);
const char *host_remote_bin(void);

/* Parses "H1, H2, ..." (comma-separated host specs, blanks around commas ignored) into
 * hosts[max]: the count, or -1 with err set (a bad host, none, or more than max). */
int host_parse_list(const char *list, struct host *hosts, int max, char *err, size_t errlen);

#endif
