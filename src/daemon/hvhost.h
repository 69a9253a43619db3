/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The hypervisor host: the emulated machine (machine.h) with a hypervisor
 * core (hv.h) for each VMC that comes into existence, all sharing one
 * layer-2 backend, run from the event loop. Partitions are added by the
 * owner on hvhost_machine() (in-process or cross-process platforms).
 */
#ifndef OVMC_HVHOST_H
#define OVMC_HVHOST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <openvmc/hv.h>
#include <openvmc/machine.h>

#include "loop.h"

struct hvhost;

struct hvhost_config {
	struct ovmc_hv_config hv; /* for every core */
	const char *backend;      /* specification (backend.h); NULL: "echo" */
	bool trace;               /* one log line per CRQ entry and RDMA ("crq") */
	const char *capture;      /* pcapng file of every CRQ entry and RDMA, or NULL */
};

/*
 * Create the machine and the backend. Errors are logged. Returns 0,
 * -EINVAL (unknown backend), -ENOMEM, or the backend's or loop's error.
 */
int hvhost_new(struct ovmc_loop *loop, const struct hvhost_config *cfg, struct hvhost **out);
/*
 * Free the machine (partitions still attached go with it: destroy
 * in-process platforms first) and the backend. Only once the loop no
 * longer runs. NULL is ignored.
 */
void hvhost_free(struct hvhost *h);
struct ovmc_machine *hvhost_machine(struct hvhost *h);

/*
 * Queue an unsolicited message on the open session at HMC `index` of the
 * VMC of `partition`, or with partition 0 of the one VMC that has a session
 * open there. Returns 0, -ENODEV (no VMC yet), -ENOENT (no VMC of that
 * partition), -ENOTCONN (no open session there), -ENOTUNIQ (partition 0
 * and sessions at `index` on several VMCs), -EMSGSIZE, -ENOBUFS
 * (ovmc_hv_send()).
 */
int hvhost_send(struct hvhost *h, unsigned partition, unsigned index, const void *data,
		size_t len);
/* ovmc_hv_restart() on every VMC; `event` is the transport event code. */
void hvhost_restart(struct hvhost *h, uint8_t event);
/*
 * Also pass every trace event of the machine to `fn` (one listener; NULL
 * removes it), whatever --trace and --capture say. Called from inside the
 * machine's hcalls: `fn` must not call back into the host.
 */
void hvhost_set_tracer(struct hvhost *h, ovmc_trace_fn fn, void *arg);
/* One line per HMC index of every VMC: the open session, its number and id (hex). */
void hvhost_sessions(struct hvhost *h, FILE *out);
/* Machine counters and, per VMC, state, negotiated values, sessions, pools,
 * counters; then what the status hook adds. */
void hvhost_status(struct hvhost *h, FILE *out);
/* The same as the member "hypervisor" of a JSON object (docs/vmcctl-json.md). */
struct json;
void hvhost_status_json(struct hvhost *h, struct json *j);
/* What the owner (the guest link) adds to hvhost_status(), as lines, and to
 * hvhost_status_json(), as members of "hypervisor"; NULL: nothing. */
struct hvhost_status_hook {
	void (*text)(void *arg, FILE *out);
	void (*json)(void *arg, struct json *j);
	void *arg;
};
void hvhost_set_status_hook(struct hvhost *h, const struct hvhost_status_hook *hook);

#endif
