#include "lab/host.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

int host_parse(struct host *h, const char *spec, char *err, size_t errlen)
{
	memset(h, 0, sizeof(*h));
	if (!strcmp(spec, "local")) {
		h->kind = HOST_LOCAL;
		return 0;
	}
	if (!strncmp(spec, "ssh:", 4) && spec[4] && spec[4] != '-') {
		h->kind = HOST_SSH;
		snprintf(h->target, sizeof h->target, "%s", spec + 4);
		return 0;
	}
	if (!strncmp(spec, "netns:", 6) && spec[6] && !strchr(spec + 6, '/')) {
		h->kind = HOST_NETNS;
		snprintf(h->target, sizeof h->target, "%s", spec + 6);
		return 0;
	}
	return errbuf(err, errlen, "bad host '%s' (allowed: local, ssh:user@host, netns:NAME)", spec);
}

void host_quote(struct buf *b, const char *arg)
{
	buf_append(b, "'", 1);
	for (const char *p = arg; *p; p++) {
		if (*p == '\'')
			buf_append(b, "'\\''", 4);
		else
			buf_append(b, p, 1);
	}
	buf_append(b, "'", 1);
}

int host_cmd(const struct host *h, const char *const *argv, const char *remote_prog,
	     struct host_cmd *cmd, char *err, size_t errlen)
{
	memset(cmd, 0, sizeof(*cmd));
	int n = 0;
	while (argv[n])
		if (++n > HOST_MAX_ARGS)
			return errbuf(err, errlen, "too many arguments for a host command");
	if (h->kind != HOST_SSH) {
		for (int i = 0; i < n; i++)
			cmd->argv[i] = argv[i];
		cmd->argv[n] = NULL;
		cmd->netns = h->kind == HOST_NETNS ? h->target : NULL;
		return 0;
	}
	/* one remote shell line: every word single-quoted; offsets first, pointers after the
	 * buffer stops moving */
	size_t off[HOST_MAX_ARGS];
	for (int i = 0; i < n; i++) {
		off[i] = cmd->store.len;
		host_quote(&cmd->store, i == 0 && remote_prog ? remote_prog : argv[i]);
		buf_append(&cmd->store, "", 1);
	}
	/* the user's ssh options, split on blanks, copied after the quoted words */
	size_t optoff[32];
	int nopt = 0;
	const char *env = getenv("CTXLAB_SSH_OPTIONS");
	for (const char *p = env ? env : ""; *p;) {
		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		const char *e = p;
		while (*e && !isspace((unsigned char)*e))
			e++;
		if (nopt >= 32)
			return errbuf(err, errlen, "too many words in CTXLAB_SSH_OPTIONS (at most 32)");
		optoff[nopt++] = cmd->store.len;
		buf_append(&cmd->store, p, (size_t)(e - p));
		buf_append(&cmd->store, "", 1);
		p = e;
	}
	if (n + nopt > HOST_MAX_ARGS)
		return errbuf(err, errlen, "too many arguments for a host command");
	int k = 0;
	cmd->argv[k++] = "ssh";
	for (int i = 0; i < nopt; i++)
		cmd->argv[k++] = cmd->store.data + optoff[i];
	cmd->argv[k++] = "-o";
	cmd->argv[k++] = "BatchMode=yes";
	cmd->argv[k++] = "-o";
	cmd->argv[k++] = "ConnectTimeout=10";
	cmd->argv[k++] = "-T";
	cmd->argv[k++] = "--";
	cmd->argv[k++] = h->target;
	for (int i = 0; i < n; i++)
		cmd->argv[k++] = cmd->store.data + off[i];
	cmd->argv[k] = NULL;
	return 0;
}

void host_cmd_release(struct host_cmd *cmd)
{
	buf_free(&cmd->store);
}

int host_is_local_machine(const struct host *h)
{
	return h->kind != HOST_SSH;
}

static char remote_bin[4096] = "ctxlab";

void host_set_remote_bin(const char *path)
{
	snprintf(remote_bin, sizeof remote_bin, "%s", path);
}

const char *host_remote_bin(void)
{
	return remote_bin;
}

int host_parse_list(const char *list, struct host *hosts, int max, char *err, size_t errlen)
{
	int n = 0;
	const char *p = list;
	for (;;) {
		while (isspace((unsigned char)*p))
			p++;
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		while (len && isspace((unsigned char)p[len - 1]))
			len--;
		char one[256];
		if (!len || len >= sizeof one)
			return errbuf(err, errlen, "bad host list '%s' (allowed: H1, H2, ... with each "
				      "local, ssh:user@host or netns:NAME)", list);
		if (n >= max)
			return errbuf(err, errlen, "too many hosts in '%s' (at most %d)", list, max);
		memcpy(one, p, len);
		one[len] = 0;
		if (host_parse(&hosts[n], one, err, errlen) < 0)
			return -1;
		n++;
		if (!e)
			return n;
		p = e + 1;
	}
}
