/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Cross-process platform: a partition in one process, the machine (and the
 * hypervisor) in another. Same semantics as the in-process platform
 * (platform.h, machine.h); only the transport differs:
 *
 *  - partition memory is a sealed memfd the client creates and the server
 *    maps shared, so the hypervisor writes CRQ entries straight into the
 *    partition's queue and H_COPY_RDMA copies between the two mappings;
 *  - the CRQ interrupt is an eventfd the client passes to the server;
 *  - hcalls travel as request/reply messages on a Unix SOCK_SEQPACKET
 *    socket in a private (0700) directory; the server checks the peer's
 *    credentials. A vanished client is seen at once (the socket closes): its
 *    partition is removed as failed.
 *
 * The message format is private to this module (docs/xproc.md).
 */
#ifndef OPENVMC_XPROC_H
#define OPENVMC_XPROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openvmc/machine.h>
#include <openvmc/platform.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- client (the partition's process) ---- */

/*
 * Attach to the hypervisor listening at `socket_path` with `mem_size`
 * bytes of partition memory (rounded up to a page). The handle owns the
 * memory (a sealed memfd), the interrupt eventfd and the socket;
 * ovmc_platform_destroy() detaches (the hypervisor end sees the partner
 * deregister, 0xFF02; a process that dies instead gives partner failed,
 * 0xFF01). hcalls block until the server answers.
 * Returns 0, -ENOENT / -ECONNREFUSED (no hypervisor there), -EACCES
 * (refused by the server: peer credentials, or no access to the socket),
 * -EINVAL / -EPERM / -EBADF (the server refused the memory or interrupt,
 * see docs/xproc.md), -EPROTO (protocol or version mismatch),
 * -ENAMETOOLONG, -ENOMEM.
 */
OVMC_API int ovmc_xproc_connect(const char *socket_path, size_t mem_size,
				struct ovmc_platform **out);
/*
 * The same platform, not attached yet: memory and interrupt fd exist, the
 * platform is dead (hcalls answer H_HARDWARE) until ovmc_xproc_reconnect()
 * succeeds. For a partition that must exist before its hypervisor does.
 * Returns 0, -EINVAL, -ENOMEM or the -errno of memfd/mmap/eventfd.
 */
OVMC_API int ovmc_xproc_new(const char *socket_path, size_t mem_size,
			    struct ovmc_platform **out);
/*
 * The control socket, for the owner's event loop: it becomes readable
 * (EOF/HUP) when the hypervisor goes away. Then ovmc_platform_alive()
 * returns 0 and every hcall answers H_HARDWARE (ovmc_platform_vmc_node()
 * -ENOTCONN) until a reconnect. The descriptor stays open, and readable,
 * while dead: take it out of the loop. -1 after a failed reconnect,
 * -EINVAL if `p` is not a cross-process platform.
 */
OVMC_API int ovmc_xproc_fd(struct ovmc_platform *p);
/*
 * Check the control socket after it became readable; returns alive (1/0).
 * The server never speaks outside an hcall, so anything readable there
 * (end of stream, or data) means the platform is dead.
 */
OVMC_API int ovmc_xproc_check(struct ovmc_platform *p);
/*
 * Attach again (same memory, same interrupt fd, new partition on the
 * server side: register the CRQ again). Closes the old connection first,
 * so a live server drops the old partition as failed. Returns as
 * ovmc_xproc_connect(); on failure the platform stays dead and this may be
 * retried. The control fd changes.
 */
OVMC_API int ovmc_xproc_reconnect(struct ovmc_platform *p);

/* ---- server (the hypervisor's process) ---- */

struct ovmc_xproc_server;

struct ovmc_xproc_server_config {
	const char *socket_path; /* its directory is created 0700 if missing */
	struct ovmc_machine *machine;
	/* Partition settings for every client (see struct ovmc_part_config). */
	bool vmc_present;
	long request_vmc_rc;
	uint32_t drc_index;
	size_t hv_window_size;
	unsigned hv_queue_entries;
	size_t max_mem_size; /* largest partition memory accepted; 0: 1 GiB */
	ovmc_log_fn log;
	void *log_user;
};

/*
 * Listen. Refuses (-EEXIST) when another live server owns the socket (or
 * the path is not a socket), removes a stale socket file, and refuses
 * (-EPERM) a socket directory that is not ours or that other users can
 * enter (mode & 077). Also -EINVAL, -ENAMETOOLONG, -ENOTDIR, -ENOMEM,
 * or the -errno of a failed socket call.
 */
OVMC_API int ovmc_xproc_server_new(const struct ovmc_xproc_server_config *cfg,
				   struct ovmc_xproc_server **out);
/* One fd (epoll) for the owner's loop: readable when any connection needs service. */
OVMC_API int ovmc_xproc_server_fd(struct ovmc_xproc_server *srv);
/*
 * Accept, answer hcalls, notice departures. Never blocks. Machine hooks run
 * inside (hcalls, partition removal); they must not call the server.
 * A malformed message or a refused ATTACH drops its connection (logged
 * through cfg.log), removing the partition as failed.
 */
OVMC_API void ovmc_xproc_server_dispatch(struct ovmc_xproc_server *srv);
/* Open connections (attached or not yet). */
OVMC_API unsigned ovmc_xproc_server_clients(const struct ovmc_xproc_server *srv);
/*
 * Close every connection (their partitions are removed as deregistered),
 * remove the socket file if it is still ours.
 */
OVMC_API void ovmc_xproc_server_free(struct ovmc_xproc_server *srv);

#ifdef __cplusplus
}
#endif
#endif
