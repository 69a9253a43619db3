/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Layer-2 backends: what the emulated hypervisor answers. A backend is a
 * set of callbacks (struct ovmc_backend_ops, hv.h) with its state; one
 * instance may serve the sessions of several hypervisor cores.
 */
#ifndef OPENVMC_BACKEND_H
#define OPENVMC_BACKEND_H

#include <stdint.h>

#include <openvmc/hv.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ovmc_backend {
	const struct ovmc_backend_ops *ops;
	void *arg;
	/* Optional: an fd the owner's loop watches, and what to do when it is
	 * readable (backends that talk to other processes). -1 if none. */
	int (*fd)(void *arg);
	void (*dispatch)(void *arg, uint64_t now);
	void (*destroy)(void *arg);
};

/* What a backend may use from its owner. */
struct ovmc_backend_env {
	ovmc_log_fn log; /* NULL: discard */
	void *log_user;
};

/*
 * Create a backend from a specification "name[:args]". Known: "echo"
 * (every message back on its session), "router" (openvmc/router.h),
 * "exec:COMMAND" and "socket:PATH" / "socket:tcp:HOST:PORT" (the framing
 * of docs/framing.md), "replay:FILE" (a capture, openvmc/capture.h).
 * `env` may be NULL and is copied.
 * Returns 0, -EINVAL for an unknown or malformed specification, -ENOMEM,
 * or what the backend's own set-up returned (-errno).
 */
OVMC_API int ovmc_backend_new(const char *spec, const struct ovmc_backend_env *env,
			      struct ovmc_backend *out);
OVMC_API void ovmc_backend_free(struct ovmc_backend *b);

#ifdef __cplusplus
}
#endif
#endif
