/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The driver host: a driver core (driver.h) on a platform, its front-ends
 * (the device file, src/dev; the session socket, src/sock) and their place
 * in the event loop. The platform's interrupt fd
 * drives ovmc_drv_handle_interrupt(), the device fd drives the FUSE/CUSE
 * requests, an idle hook runs the driver's timers. Open files survive the
 * platform going away and coming back (drvhost_platform_lost/back).
 */
#ifndef OVMC_DRVHOST_H
#define OVMC_DRVHOST_H

#include <stdio.h>

#include <openvmc/driver.h>
#include <openvmc/platform.h>

#include "dev.h"
#include "loop.h"
#include "sock.h"

struct drvhost;

struct drvhost_config {
	struct ovmc_drv_config drv;
	struct ovmc_dev_config dev;
	bool no_device;             /* serve no device file (no FUSE) */
	struct ovmc_sock_config sock; /* sock.path NULL: no session socket */
	bool trace;          /* one log line per CRQ entry and RDMA, as the driver sees them */
	const char *capture; /* pcapng file of the driver's side, or NULL */
	/* The platform is not attached yet: serve the device with the driver
	 * in its initial state until drvhost_platform_back(). */
	bool detached;
	/* Optional: have the platform run what was posted (the cross-process
	 * one's ovmc_xproc_kick()); true if it did. Called when a reader
	 * of the device would otherwise wait, and after every write on the
	 * session socket. */
	bool (*kick)(void *arg);
	void *kick_arg;
};

/*
 * Create the driver on `plat` (not owned; it must outlive the host or be
 * declared lost first), start it (probe, INIT) unless cfg->detached, and
 * serve the device and the session socket.
 * Errors are logged. Returns 0, or the negative code of ovmc_drv_new(),
 * ovmc_drv_start(), ovmc_dev_new(), ovmc_sock_new(), the capture file or
 * the loop.
 */
int drvhost_new(struct ovmc_loop *loop, struct ovmc_platform *plat,
		const struct drvhost_config *cfg, struct drvhost **out);

/*
 * Unmount the device, close the session socket (closing their files), free
 * the driver. Only once the
 * loop no longer runs: its idle hook cannot be removed. NULL is ignored.
 */
void drvhost_free(struct drvhost *h);

/*
 * The platform went away (hypervisor process gone or not answering; `why`
 * says which, for the status): files see a reset (EBADFD, EIO, POLLHUP)
 * but stay open; the interrupt fd is no longer watched. The platform may
 * be destroyed after this returns.
 */
void drvhost_platform_lost(struct drvhost *h, const char *why);
/*
 * The platform is back: the same platform object, reconnected (the driver
 * is bound to its memory). Probes again. Returns 0, -EINVAL for another
 * platform object, -EALREADY if not lost, or what ovmc_drv_start() returned.
 */
int drvhost_platform_back(struct drvhost *h, struct ovmc_platform *plat);

/*
 * Also pass every trace event of the driver to `fn` (one listener; NULL
 * removes it), whatever --trace and --capture say. Called from inside the
 * driver: `fn` must not call back into the host.
 */
void drvhost_set_tracer(struct drvhost *h, ovmc_trace_fn fn, void *arg);

/* Driver state, negotiated values, slots, counters and the device, as text. */
void drvhost_status(struct drvhost *h, FILE *out);
/* The same as the member "driver" of a JSON object (docs/vmcctl-json.md). */
struct json;
void drvhost_status_json(struct drvhost *h, struct json *j);

#endif
