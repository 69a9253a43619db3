// SPDX-License-Identifier: LGPL-2.1-or-later
#include <openvmc/common.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *ovmc_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case OVMC_ERR_TRUNCATED:
		return "entry truncated";
	case OVMC_ERR_BAD_HEADER:
		return "invalid CRQ header byte";
	case OVMC_ERR_EMPTY:
		return "empty CRQ slot";
	case OVMC_ERR_BAD_TYPE:
		return "unknown entry type";
	case OVMC_ERR_RESERVED:
		return "reserved field not zero";
	case OVMC_ERR_RANGE:
		return "field out of range";
	case OVMC_ERR_HCALL:
		return "hypervisor call failed";
	case OVMC_ERR_PROTOCOL:
		return "protocol violation by the partner";
	case OVMC_ERR_VERSION:
		return "incompatible capabilities";
	}
	if (err < 0 && err > OVMC_ERR_BASE)
		return strerror(-err);
	return "unknown error";
}

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};

const char *ovmc_log_level_name(enum ovmc_log_level level)
{
	if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0]))
		return NULL;
	return level_names[level];
}

int ovmc_log_level_parse(const char *s, enum ovmc_log_level *out)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(s, level_names[i]) == 0 || (s[0] == (char)('0' + i) && !s[1])) {
			*out = (enum ovmc_log_level)i;
			return 0;
		}
	}
	if (strcmp(s, "warning") == 0) {
		*out = OVMC_LOG_WARN;
		return 0;
	}
	return -EINVAL;
}
