/* proto: the protocol table and the shared configuration defaults. */
#include "proto/proto.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* Each protocol file exports its table entry (sink.c: sink_proto, ...). */
extern const struct proto sink_proto;
extern const struct proto echo_proto;
extern const struct proto http_proto;
extern const struct proto chat_proto;

static const struct proto *const protos[] = {
	&sink_proto,
	&echo_proto,
	&http_proto,
	&chat_proto,
};

const struct proto *proto_find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++)
		if (!strcmp(protos[i]->name, name))
			return protos[i];
	return NULL;
}

#define NPROTOS (sizeof(protos) / sizeof(protos[0]))

const struct proto *proto_at(size_t i) { return i < NPROTOS ? protos[i] : NULL; }

static char names_buf[256];
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

static void names_fill(void)
{
	size_t off = 0;
	for (size_t i = 0; i < NPROTOS; i++) {
		int n = snprintf(names_buf + off, sizeof(names_buf) - off, "%s%s", off ? " " : "",
				 protos[i]->name);
		if (n < 0 || (size_t)n >= sizeof(names_buf) - off)
			break;
		off += (size_t)n;
	}
}

const char *proto_names(void)
{
	pthread_once(&names_once, names_fill);
	return names_buf;
}

void proto_cfg_defaults(struct proto_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->max_request_line = PROTO_DEFAULT_MAX_REQUEST_LINE;
	cfg->max_headers = PROTO_DEFAULT_MAX_HEADERS;
	cfg->max_header_bytes = PROTO_DEFAULT_MAX_HEADER_BYTES;
	cfg->max_body = PROTO_DEFAULT_MAX_BODY;
	cfg->max_line = PROTO_DEFAULT_MAX_LINE;
	cfg->max_outbuf = PROTO_DEFAULT_MAX_OUTBUF;
	cfg->max_rooms = PROTO_DEFAULT_MAX_ROOMS;
	cfg->work_max_cpu_us = PROTO_DEFAULT_WORK_MAX_CPU_US;
	cfg->work_max_mem_bytes = PROTO_DEFAULT_WORK_MAX_MEM_BYTES;
}
