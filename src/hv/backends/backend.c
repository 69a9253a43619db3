// SPDX-License-Identifier: LGPL-2.1-or-later
#include "backends.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

static const struct {
	const char *name;
	int (*create)(const char *args, const struct ovmc_backend_env *env,
		      struct ovmc_backend *out);
} kinds[] = {
	{"echo", ovmc_backend_echo_new},
	{"replay", ovmc_backend_replay_new},
	{"router", ovmc_backend_router_new},
	{"exec", ovmc_backend_exec_new},
	{"socket", ovmc_backend_socket_new},
};

int ovmc_backend_new(const char *spec, const struct ovmc_backend_env *env,
		     struct ovmc_backend *out)
{
	static const struct ovmc_backend_env none;
	const char *colon = strchr(spec, ':');
	size_t n = colon ? (size_t)(colon - spec) : strlen(spec);

	for (unsigned i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (strlen(kinds[i].name) == n && strncmp(spec, kinds[i].name, n) == 0)
			return kinds[i].create(colon ? colon + 1 : NULL, env ? env : &none, out);
	}
	return -EINVAL;
}

void ovmc_backend_free(struct ovmc_backend *b)
{
	if (b && b->destroy)
		b->destroy(b->arg);
}

void ovmc_backend_log(const struct ovmc_backend_env *env, enum ovmc_log_level level,
		      const char *fmt, ...)
{
	va_list ap;

	if (!env->log)
		return;
	va_start(ap, fmt);
	env->log(env->log_user, level, fmt, ap);
	va_end(ap);
}
