/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The control socket: a Unix stream socket (mode 0600) taking one request
 * line per connection. The reply starts with "ok" or
 * "error <ERRNONAME>: <text>", body lines follow, then the server closes
 * the connection. Commands:
 *
 *   status                        both hosts' status, whichever exist here
 *   sessions                      hypervisor: each HMC index and its session
 *   send <hmc-index> <hex>        hypervisor: queue an unsolicited message
 *   restart [failed|deregistered] hypervisor: restart every VMC
 *   trace                         keep the connection: one line per CRQ
 *                                 entry and RDMA, "<time> hv|driver: <text>",
 *                                 until the client goes
 *   help
 *
 * Who may do what (SO_PEERCRED, SO_PEERGROUPS): root, the daemon's own uid
 * and members of the configured group may use every command; any other
 * peer the socket's mode lets in only the read-only ones (status,
 * sessions, trace, help): send and restart answer "error EACCES".
 *
 * Never blocks the loop: connections are non-blocking, requests bounded,
 * a client must send its request within 2 s and take its reply within
 * 10 s. At most 16 connections: a newcomer closes the oldest one that has
 * not sent its request yet, so silent clients cannot lock out a real one.
 * A trace client that reads too slowly loses lines (counted: "... N trace
 * lines dropped"), never stalls the channel.
 */
#ifndef OVMC_CTL_H
#define OVMC_CTL_H

#include <stdbool.h>
#include <sys/types.h>

#include "drvhost.h"
#include "hvhost.h"
#include "loop.h"

struct ctl;

/* What the commands act on; either may be NULL. Not owned. */
struct ctl_targets {
	struct hvhost *hv;
	struct drvhost *drv;
	/* With use_group: members of `group` may use every command, and the
	 * socket is made group `group`, mode 0660. */
	bool use_group;
	gid_t group;
};

/*
 * Listen at `path`. A stale socket there (nobody accepting) is replaced;
 * a live one gives -EADDRINUSE, another kind of file -EEXIST. Errors are
 * logged. Returns 0 or a negative errno.
 */
int ctl_new(struct ovmc_loop *loop, const char *path, const struct ctl_targets *targets,
	    struct ctl **out);
/*
 * Run one request as a connection from a peer that may (`admin`) or may
 * not change things would, without a socket: the whole reply, malloc'ed,
 * in *reply (free() it). "trace" needs a connection and is refused. For
 * tests and fuzzing. Returns 0 or -ENOMEM.
 */
int ctl_request(struct ctl *c, const char *line, size_t len, bool admin, char **reply,
		size_t *reply_len);

/* Close every connection and remove the socket. Only once the loop no
 * longer runs, and before the targets are freed. NULL is ignored. */
void ctl_free(struct ctl *c);

#endif
