/* proto: the protocol table and the shared configuration defaults. */
#include "proto/proto.h"

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

const char *proto_names(void) { return "sink echo http chat"; }

void proto_cfg_defaults(struct proto_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->max_request_line = 8192;
	cfg->max_headers = 100;
	cfg->max_header_bytes = 16384;
	cfg->max_body = 1024 * 1024;
	cfg->max_line = 64 * 1024;
	cfg->max_outbuf = 1024 * 1024;
	cfg->max_rooms = PROTO_DEFAULT_MAX_ROOMS;
	cfg->work_max_cpu_us = PROTO_DEFAULT_WORK_MAX_CPU_US;
	cfg->work_max_mem_bytes = PROTO_DEFAULT_WORK_MAX_MEM_BYTES;
}
