/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The guest link, hypervisor side: QEMU pseries guests whose spapr-vmc
 * device connects to a Unix SOCK_STREAM socket become partitions of the
 * machine, next to the cross-process platform's (xproc.h). The device
 * keeps the guest's CRQ and executes H_COPY_RDMA in guest memory; the
 * machine keeps the hypervisor end, and its hypervisor window is a sealed
 * memfd shared with the device. Protocol, bounds and counters:
 * docs/guest-link.md.
 *
 * Single-threaded, like the machine. A DELIVER (an entry for the guest's
 * CRQ) waits for the device's answer, at most `deliver_timeout_ms`; a
 * device that misses it, breaks the protocol or goes away loses its
 * partition (removed as failed) and its connection.
 */
#ifndef OPENVMC_GUEST_H
#define OPENVMC_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <openvmc/common.h>
#include <openvmc/machine.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ovmc_guest_server;

#define OVMC_GUEST_DEFAULT_TIMEOUT_MS 1000u

struct ovmc_guest_server_config {
	/* Its directory is created 0700 if missing, and removed again (when
	 * empty) by ovmc_guest_server_free() or a failed start. */
	const char *socket_path;
	struct ovmc_machine *machine;
	/* The hypervisor window a guest must offer (HELLO's hv_window_size):
	 * what the hypervisor core's buffers need. Smaller: -ENOSPC. */
	size_t min_hv_window;
	size_t max_window;	   /* largest window accepted, either kind; 0: 1 GiB */
	unsigned hv_queue_entries; /* the hypervisor end's queue; 0: the machine's 256 */
	unsigned max_clients;	   /* connections at once; 0: 64 */
	unsigned max_pending;	   /* connections without HELLO yet; 0: 16 */
	unsigned hello_timeout_ms; /* 0: 3000 */
	unsigned deliver_timeout_ms; /* 0: OVMC_GUEST_DEFAULT_TIMEOUT_MS */
	ovmc_log_fn log;
	void *log_user;
};

/*
 * Listen, with the socket checks of the cross-process server
 * (docs/xproc.md, "Checks"): -EEXIST (a live server there, or not a
 * socket), -EPERM (directory not ours alone), -ENOTDIR, -EINVAL,
 * -ENAMETOOLONG, -ENOMEM, or the -errno of a socket call.
 */
OVMC_API int ovmc_guest_server_new(const struct ovmc_guest_server_config *cfg,
				   struct ovmc_guest_server **out);
/* One fd (epoll) for the owner's loop. */
OVMC_API int ovmc_guest_server_fd(struct ovmc_guest_server *srv);
/* Accept, read and act on what the devices sent, expire silent
 * connections. Never blocks. */
OVMC_API void ovmc_guest_server_dispatch(struct ovmc_guest_server *srv);
/*
 * After each pass of the owner's loop, once the hypervisor cores ran:
 * send the credits they freed, act on messages that arrived while a
 * DELIVER waited, close the connections that failed meanwhile. Never
 * blocks long: a send waits at most the deliver timeout.
 */
OVMC_API void ovmc_guest_server_flush(struct ovmc_guest_server *srv);
/* Open connections (with a partition or not yet). */
OVMC_API unsigned ovmc_guest_server_clients(const struct ovmc_guest_server *srv);

struct ovmc_guest_server_stats {
	uint64_t accepted;
	uint64_t refused;	 /* peer credentials, too many, out of memory */
	uint64_t hello_timeouts; /* and pending connections closed for newcomers */
	uint64_t hello_refused;	 /* a well-formed HELLO answered with an error */
	uint64_t protocol_errors;
	uint64_t delivers;
	uint64_t deliver_timeouts;
	uint64_t deliver_dropped; /* H_DROPPED answers */
	uint64_t deliver_closed;  /* H_CLOSED answers */
	uint64_t sends;
	uint64_t sends_stale; /* an older epoch's: dropped */
	uint64_t credits;     /* entries credited back */
	uint64_t rdma_reports;
	uint64_t disconnects; /* connections with a partition that ended */
};
OVMC_API void ovmc_guest_server_stats(const struct ovmc_guest_server *srv,
				      struct ovmc_guest_server_stats *out);
/* One guest, as its device and its connection stand. */
struct ovmc_guest_info {
	unsigned partition;
	int pid; /* QEMU's */
	uint32_t unit_address, liobn_local, hv_liobn;
	uint32_t epoch;
	bool hv_open;
	unsigned credit;      /* SENDs the device may still make in this epoch */
	unsigned crq_entries; /* of the guest's CRQ, 0 while it has none */
	uint64_t sends, sends_stale, delivers, deliver_dropped, deliver_closed, rdma_reports,
		credits;
};
/* The `index`th guest with a partition (0, 1, ...): 0, or -ENOENT past the last. */
OVMC_API int ovmc_guest_server_guest(const struct ovmc_guest_server *srv, unsigned index,
				     struct ovmc_guest_info *out);
/* Counters, then one line per guest (partition, pid, names, epoch, credit,
 * its own counters). */
OVMC_API void ovmc_guest_server_status(const struct ovmc_guest_server *srv, FILE *out);
/* Close every connection (partitions removed as deregistered) and remove
 * the socket file if it is still ours. NULL is ignored. */
OVMC_API void ovmc_guest_server_free(struct ovmc_guest_server *srv);

#ifdef __cplusplus
}
#endif
#endif
