// SPDX-License-Identifier: LGPL-2.1-or-later
/* The echo backend: every message goes back on its session, unchanged. */
#include "backends.h"

#include <openvmc/hv.h>

static void echo_message(void *b, struct ovmc_hv_session *s, const uint8_t *data, size_t len)
{
	/* The core keeps order and holds what it cannot send yet; only a
	 * full backlog refuses, and that is the core's to count. */
	ovmc_hv_send(s, data, len);
}

static const struct ovmc_backend_ops echo_ops = {
	.name = "echo",
	.message = echo_message,
};

int ovmc_backend_echo_new(const char *args, const struct ovmc_backend_env *env,
			  struct ovmc_backend *out)
{
	(void)args;
	(void)env;
	*out = (struct ovmc_backend){.ops = &echo_ops};
	return 0;
}
