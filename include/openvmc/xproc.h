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
 *  - the connection is a Unix SOCK_SEQPACKET socket in a private (0700)
 *    directory; the server checks the peer's credentials. A vanished
 *    client is seen at once (the socket closes): its partition is removed
 *    as failed. Every round trip has a deadline: a server that does not
 *    answer in time is treated as gone;
 *  - hcalls travel as request/reply messages, through a mailbox (a sealed
 *    memfd page the client lends, with an eventfd doorbell; the reply is
 *    awaited on a futex there) or, without one, on the socket.
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
 * memory (a sealed memfd), the interrupt eventfd, the socket and the
 * mailbox;
 * ovmc_platform_destroy() detaches (the hypervisor end sees the partner
 * deregister, 0xFF02; a process that dies instead gives partner failed,
 * 0xFF01). hcalls block until the server answers, at most the timeout
 * (ovmc_xproc_set_timeout()).
 * Returns 0, -ENOENT / -ECONNREFUSED (no hypervisor there), -EAGAIN (one
 * there, not accepting: its backlog is full), -ETIMEDOUT (one there, not
 * answering within the timeout), -ECONNRESET (it closed the connection
 * unanswered: going down), -EACCES (refused by the server: peer
 * credentials, or no access to the socket), -EINVAL / -EPERM / -EBADF
 * (the server refused the memory, interrupt or mailbox, see docs/xproc.md),
 * -EPROTO (protocol or version mismatch), -ENAMETOOLONG, -ENOMEM.
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
 * (EOF/HUP) when the hypervisor goes away or missed a deadline. Then
 * ovmc_platform_alive() returns 0 and every hcall answers H_HARDWARE
 * (ovmc_platform_vmc_node() -ENOTCONN) until a reconnect. The descriptor
 * stays open, and readable, while dead: take it out of the loop. While an
 * attachment started by ovmc_xproc_reconnect_start() waits, the new
 * connection (readable when the answer is there). -1 after a failed
 * attachment, -EINVAL if `p` is not a cross-process platform.
 */
OVMC_API int ovmc_xproc_fd(struct ovmc_platform *p);
/*
 * Check the control socket after it became readable; returns alive (1/0).
 * The server never speaks outside an hcall, so anything readable there
 * (end of stream, or data) means the platform is dead.
 */
OVMC_API int ovmc_xproc_check(struct ovmc_platform *p);
/*
 * Copies out of the hypervisor window (H_COPY_RDMA from its LIOBN into
 * partition memory) are made in this process, once the server has lent
 * the window with the VMC node (ovmc_platform_vmc_node()), and reported to
 * the server afterwards: in the same system call as the next hcall, or
 * when 16 are held, or by ovmc_xproc_flush(). The server counts and traces
 * a copy when its report arrives. ovmc_xproc_held() is how many are held;
 * ovmc_xproc_flush() sends them now and returns 0, -ENOTCONN (dead: what
 * was held is dropped) or -EINVAL. An owner that may go quiet with reports
 * held flushes them within a bound it chooses (openvmcd: 10 ms).
 */
OVMC_API unsigned ovmc_xproc_held(struct ovmc_platform *p);
/*
 * A server that defers its replies (cfg.defer_replies) tells the client in
 * an hcall's reply that it raised the partition's interrupt meanwhile,
 * instead of writing the eventfd. By default the client then makes the
 * eventfd readable itself before the hcall returns. An owner that looks
 * at the CRQ after its hcalls anyway (openvmcd's loop does, after every
 * pass) sets `scan` and saves that system call; it must then also call
 * ovmc_platform_irq_fired() when it sees the interrupt descriptor
 * readable, since acknowledging reads the eventfd only after that.
 * Returns 0 or -EINVAL.
 */
OVMC_API int ovmc_xproc_set_irq_scan(struct ovmc_platform *p, bool scan);
OVMC_API int ovmc_xproc_flush(struct ovmc_platform *p);
/*
 * The hcalls (and the reports sent alone) go through a mailbox: a page of
 * shared memory and an eventfd doorbell lent with ATTACH, the answer
 * awaited on a futex there; cheaper than a socket message each way
 * (docs/xproc.md). The socket still carries the rest and tells of a
 * server that goes away (noticed within 20 ms while an hcall waits).
 * `use` false: the next attachment offers none, every hcall goes on the
 * socket (the default is true). Returns 0 or -EINVAL.
 */
OVMC_API int ovmc_xproc_set_mailbox(struct ovmc_platform *p, bool use);
/* 1 while attached with a mailbox, else 0. */
OVMC_API int ovmc_xproc_has_mailbox(struct ovmc_platform *p);
/*
 * Posted pairs (docs/xproc.md): with `post`, an ovmc_hcall_pair() of an
 * H_COPY_RDMA from partition memory into the hypervisor window and the
 * H_SEND_CRQ that signals it (the pair that sends a message) answers
 * H_SUCCESS at once, without a round trip, whenever the machine would
 * answer it so and a server made with cfg.posting grants the room; the
 * server executes it before anything else this partition asks. The owner
 * must then call ovmc_xproc_kick() before it waits for anything, or the
 * server may not run them. Off by default. Returns 0 or -EINVAL.
 */
OVMC_API int ovmc_xproc_set_posting(struct ovmc_platform *p, bool post);
/*
 * Have the server run the pairs posted that it has not run yet: a round
 * trip (SYNC) with the deadline of every hcall, which brings back an
 * interrupt they raised. 1 if there were any, else 0.
 */
OVMC_API int ovmc_xproc_kick(struct ovmc_platform *p);
/*
 * Attach again (same memory, same interrupt fd, new partition on the
 * server side: register the CRQ again). Closes the old connection first,
 * so a live server drops the old partition as failed. Returns as
 * ovmc_xproc_connect(); on failure the platform stays dead and this may be
 * retried. The control fd changes. Waits at most the timeout for the
 * answer (-ETIMEDOUT).
 */
OVMC_API int ovmc_xproc_reconnect(struct ovmc_platform *p);
/*
 * The same without waiting, for an event loop: connects and sends the
 * request, never blocking (a hypervisor that is stopped simply answers
 * later). Returns -EINPROGRESS: watch ovmc_xproc_fd() for readability and
 * call ovmc_xproc_reconnect_finish(); or at once an error as
 * ovmc_xproc_connect(). A new start abandons an attempt still waiting.
 */
OVMC_API int ovmc_xproc_reconnect_start(struct ovmc_platform *p);
/* After ovmc_xproc_fd() became readable: 0 (attached), -EINPROGRESS (not
 * yet), or an error as ovmc_xproc_connect() (the attempt is over). */
OVMC_API int ovmc_xproc_reconnect_finish(struct ovmc_platform *p);

#define OVMC_XPROC_DEFAULT_TIMEOUT_MS 1000u
#define OVMC_XPROC_MAX_TIMEOUT_MS 3600000u
/*
 * The deadline of every round trip (hcall, node query, blocking attach)
 * in ms, 1..OVMC_XPROC_MAX_TIMEOUT_MS; default OVMC_XPROC_DEFAULT_TIMEOUT_MS.
 * A hypervisor that misses it is treated as gone: that hcall answers
 * H_HARDWARE, the platform is dead, its connection is shut down (so no
 * late answer can arrive, and the server drops the partition as failed
 * when it runs again). Returns 0 or -EINVAL.
 */
OVMC_API int ovmc_xproc_set_timeout(struct ovmc_platform *p, unsigned ms);
/*
 * Why a dead platform died: -ETIMEDOUT (a round trip missed its
 * deadline), -ECONNRESET (the hypervisor went away), -EPROTO (it broke
 * the protocol); 0 while alive or before the first attachment.
 */
OVMC_API int ovmc_xproc_dead_reason(struct ovmc_platform *p);

/* ---- server (the hypervisor's process) ---- */

struct ovmc_xproc_server;
struct ovmc_xproc_conn; /* one connection of a server */

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
	/* Connections at once, attached or not; 0: 64. Beyond, a newcomer is
	 * refused (-EBUSY) unless a connection not attached yet can go. */
	unsigned max_clients;
	/* Connections not attached yet; 0: 16. A newcomer beyond closes the
	 * oldest of them, so silent peers cannot lock out a real one. */
	unsigned max_pending;
	/* How long a connection may take to send ATTACH, in ms; 0: 3000. */
	unsigned attach_timeout_ms;
	/* Answer HCALL and HCALL_PAIR only at ovmc_xproc_server_flush(), which
	 * the owner calls after the rest of its pass (the hypervisor core's
	 * work): an interrupt raised for a partition meanwhile then goes with
	 * its reply, not through its eventfd. */
	bool defer_replies;
	/* Let clients with a mailbox post the pair that sends a message
	 * (ovmc_xproc_set_posting()): the server grants them room in the
	 * hypervisor end's queue at every ovmc_xproc_server_flush(). */
	bool posting;
	/* Optional: the owner watches each connection's descriptors in its
	 * own loop (one epoll level less per message) and calls
	 * ovmc_xproc_server_serve() when one is ready. Called with `add` and
	 * the epoll `events` to watch for when a connection is accepted (its
	 * socket, EPOLLIN) and when it lends a mailbox (its doorbell, EPOLLIN
	 * | EPOLLET); a nonzero -errno refuses the connection or the
	 * attachment. Called without `add` before a descriptor is closed.
	 * Without it, connections are in ovmc_xproc_server_fd()'s set. */
	int (*watch)(void *user, int fd, uint32_t events, struct ovmc_xproc_conn *conn, bool add);
	void *watch_user;
	ovmc_log_fn log;
	void *log_user;
};

/*
 * Listen. Refuses (-EEXIST) when another live server owns the socket (or
 * the path is not a socket), removes a stale socket file, and refuses
 * (-EPERM) a socket directory that is not ours or that other users can
 * enter (mode & 077). A missing directory (the last component only) is
 * made 0700, and ovmc_xproc_server_free() or a failure removes it again
 * when it is empty. Also -EINVAL, -ENAMETOOLONG, -ENOTDIR, -ENOMEM,
 * or the -errno of a failed socket call.
 */
OVMC_API int ovmc_xproc_server_new(const struct ovmc_xproc_server_config *cfg,
				   struct ovmc_xproc_server **out);
/* One fd (epoll) for the owner's loop: readable when any connection needs service. */
OVMC_API int ovmc_xproc_server_fd(struct ovmc_xproc_server *srv);
/*
 * Accept, answer hcalls, notice departures, close connections that did
 * not attach in time (the fd becomes readable at their deadline). Never
 * blocks. Machine hooks run
 * inside (hcalls, partition removal); they must not call the server.
 * A malformed message or a refused ATTACH drops its connection (logged
 * through cfg.log), removing the partition as failed.
 */
OVMC_API void ovmc_xproc_server_dispatch(struct ovmc_xproc_server *srv);
/* With cfg.watch: what dispatch does for one connection that is readable. */
OVMC_API void ovmc_xproc_server_serve(struct ovmc_xproc_conn *conn);
/*
 * With cfg.defer_replies: send the replies of the hcalls dispatched since
 * the last call (a peer that cannot take its reply is dropped). Call it
 * before waiting for events again; the peers wait for these replies.
 */
OVMC_API void ovmc_xproc_server_flush(struct ovmc_xproc_server *srv);
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
