/* client_sink: a fixed message sent, nothing comes back; a message counts once queued. */
#include "load/client.h"

#include <errno.h>

#include "core/log.h"
#include "load/client_line.h"
#include "load/load.h"

static int sink_check(const struct load_cfg *cfg, char *err, size_t errlen)
{
	if (cfg->requests && cfg->rate_per_s <= 0 && cfg->bandwidth_bps <= 0) {
		errbuf(err, errlen, "an unpaced sink runs for a duration: use -d (or -n with --rate)");
		return -EINVAL;
	}
	return 0;
}

const struct load_client load_client_sink = {
	.name = "sink",
	.summary = "a fixed message sent, nothing read back",
	.flags = LOAD_C_SENDONLY,
	.unit = "message",
	.answers = "messages",
	.check = sink_check,
	.frame = client_line_frame,
};
