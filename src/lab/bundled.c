#include "lab/bundled.h"

#include <stdio.h>
#include <string.h>

const struct bundled_spec *bundled_find(const char *name)
{
	for (int i = 0; name && i < bundled_count; i++)
		if (!strcmp(bundled_specs[i].name, name))
			return &bundled_specs[i];
	return NULL;
}

char *bundled_names(char *buf, size_t len)
{
	size_t o = 0;
	if (!len)
		return buf;
	buf[0] = 0;
	for (int i = 0; i < bundled_count && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? ", " : "", bundled_specs[i].name);
	return buf;
}
