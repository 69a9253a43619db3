/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Session-socket front-end: the driver core's files served over a Unix
 * SOCK_SEQPACKET socket instead of (or beside) the device file, for the
 * client library (include/openvmc/client.h) and the preload library. No
 * FUSE and no root needed. Protocol: docs/session.md.
 *
 * One data connection is one open file (one ovmc_drv_file): each message
 * the driver delivers is pushed onto it as one record, at most one record
 * ahead of the reader, who acknowledges it. Requests that need an answer
 * (SETHMCID, write, ioctls, the checks a read makes first) come on control
 * connections and name their file by passing its descriptor.
 *
 * Every peer's credentials are checked before anything is read: root, the
 * daemon's uid, or a member of the configured group. Connections, the
 * silence of a new connection, record sizes and each connection's output
 * are bounded; bad input is logged (rate-limited), counted and dropped.
 *
 * Single-threaded, in the owner's loop (the front-end adds its own fds).
 * Like the device front-end, the owner forwards the driver's file_event
 * callback (ovmc_sock_file_event), calls ovmc_sock_flush() after the driver
 * calls it makes itself, and runs ovmc_sock_timer() from its idle hook.
 */
#ifndef OVMC_SOCK_H
#define OVMC_SOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <openvmc/driver.h>

#include "loop.h"

struct ovmc_sock;

struct ovmc_sock_config {
	const char *path; /* the socket to create */
	mode_t mode;      /* permission bits of the socket, and of the device stat() shows */
	gid_t gid;        /* the group allowed besides root and the daemon's uid */
	bool set_gid;
	uint32_t max_mtu;     /* the driver's configured MTU (its read limit while not ready) */
	unsigned max_conns;   /* 0: 256 */
	unsigned hello_ms;    /* a new connection says who it is within this; 0: 5000 */
	/* Optional: have the platform run what a write posted (drvhost's
	 * kick). A reader here waits in its own process, out of sight, so
	 * every write is followed by one. */
	bool (*kick)(void *arg);
	void *kick_arg;
};

/*
 * Create the socket (a stale one left by a killed daemon is replaced; a
 * live one or another kind of file is refused) and serve it. Errors are
 * logged. Returns 0, -EINVAL, -ENAMETOOLONG, -EADDRINUSE (another daemon
 * serves it), -EEXIST (not a socket), -ENOMEM or the -errno of the socket
 * calls, chmod or chown.
 */
int ovmc_sock_new(struct ovmc_loop *loop, const struct ovmc_sock_config *cfg,
		  struct ovmc_drv *drv, struct ovmc_sock **out);
/*
 * From the driver's file_event callback. Returns false if `f` is not one
 * of this front-end's files. Never calls into the driver.
 */
bool ovmc_sock_file_event(struct ovmc_sock *s, struct ovmc_drv_file *f, unsigned events);
/* Push the messages that became readable. Call outside driver callbacks. */
void ovmc_sock_flush(struct ovmc_sock *s);
/* Expire silent connections; returns the next deadline (or OVMC_TIME_NEVER). */
uint64_t ovmc_sock_timer(struct ovmc_sock *s, uint64_t now);
const char *ovmc_sock_path(const struct ovmc_sock *s);
/* Connections and counters, as text lines. */
void ovmc_sock_status(const struct ovmc_sock *s, FILE *out);
/* The same as the member "session_socket" of a JSON object (docs/vmcctl-json.md). */
struct json;
void ovmc_sock_status_json(const struct ovmc_sock *s, struct json *j);
/* Close every connection (their files on the driver), remove the socket. NULL is ignored. */
void ovmc_sock_free(struct ovmc_sock *s);

#endif
