/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Constructors of the built-in backends, dispatched by backend.c. */
#ifndef OVMC_BACKENDS_H
#define OVMC_BACKENDS_H

#include <openvmc/backend.h>

/*
 * `args`: what follows "name:" in the specification, or NULL. `env` is
 * never NULL here (an empty one stands in).
 */
int ovmc_backend_echo_new(const char *args, const struct ovmc_backend_env *env,
			  struct ovmc_backend *out);

int ovmc_backend_replay_new(const char *args, const struct ovmc_backend_env *env,
			    struct ovmc_backend *out);

/* The command router (router.h); takes no arguments. */
int ovmc_backend_router_new(const char *args, const struct ovmc_backend_env *env,
			    struct ovmc_backend *out);

/* A program speaking frames on stdin/stdout (exec.c): args is the command. */
int ovmc_backend_exec_new(const char *args, const struct ovmc_backend_env *env,
			  struct ovmc_backend *out);

/* A server speaking frames over a Unix or loopback TCP socket (socket.c):
 * args is PATH or tcp:HOST:PORT. */
int ovmc_backend_socket_new(const char *args, const struct ovmc_backend_env *env,
			    struct ovmc_backend *out);

/* Log through env (no-op without a sink). */
void ovmc_backend_log(const struct ovmc_backend_env *env, enum ovmc_log_level level,
		      const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
