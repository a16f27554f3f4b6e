/* client: the table of load-side protocols (see client.h). */
#include "load/client.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

extern const struct load_client load_client_http;
extern const struct load_client load_client_echo;
extern const struct load_client load_client_sink;
extern const struct load_client load_client_chat;

/* in the order of `ctxlab load --help` */
static const struct load_client *const clients[] = {
	&load_client_http,
	&load_client_echo,
	&load_client_sink,
	&load_client_chat,
};
#define NCLIENTS (sizeof(clients) / sizeof(clients[0]))

const struct load_client *load_client_find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < NCLIENTS; i++)
		if (!strcmp(clients[i]->name, name))
			return clients[i];
	return NULL;
}

const struct load_client *load_client_at(size_t i) { return i < NCLIENTS ? clients[i] : NULL; }

static char names_buf[256];
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

static void names_fill(void)
{
	size_t off = 0;
	for (size_t i = 0; i < NCLIENTS; i++) {
		const char *sep = i == 0 ? "" : i + 1 == NCLIENTS ? " or " : ", ";
		int n = snprintf(names_buf + off, sizeof(names_buf) - off, "%s%s", sep,
				 clients[i]->name);
		if (n < 0 || (size_t)n >= sizeof(names_buf) - off)
			break;
		off += (size_t)n;
	}
}

const char *load_client_names(void)
{
	pthread_once(&names_once, names_fill);
	return names_buf;
}

int load_client_target(const char *proto, const char *address, char *out, size_t len)
{
	const struct load_client *c = load_client_find(proto);
	if (!c)
		return -ENOENT;
	int n = c->scheme ? snprintf(out, len, "%s%s/", c->scheme, address)
			  : snprintf(out, len, "%s", address);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}
