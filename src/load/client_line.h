/* client_line: the message framing echo and sink share (a fixed message: --message, or --size
 * bytes of 'x' ending in '\n'). Private to src/load. */
#ifndef CTXLAB_LOAD_CLIENT_LINE_H
#define CTXLAB_LOAD_CLIENT_LINE_H

#include "load/client.h"

int client_line_frame(struct load_cfg *cfg, const struct load_client_opts *o, struct buf *msg,
		      char *note, size_t notelen, char *err, size_t errlen);

#endif
