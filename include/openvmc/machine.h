/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The emulated PAPR machine, seen from the hypervisor: client partitions
 * with their memory, their VMC devices and the hypervisor's end of each
 * VMC's CRQ connection. This is the one implementation of the platform's
 * semantics (hcall checks, CRQ delivery, RDMA window checks); the
 * in-process and cross-process platforms only carry calls to it.
 *
 * Single-threaded: every function here must be called from one thread.
 * Partition memory may be shared with another process that runs the
 * partition; CRQ headers are published with release/acquire ordering.
 */
#ifndef OPENVMC_MACHINE_H
#define OPENVMC_MACHINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openvmc/common.h>
#include <openvmc/platform.h>
#include <openvmc/trace.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ovmc_machine;
struct ovmc_part;
struct ovmc_vmc;


struct ovmc_machine_hooks {
	/* A VMC came into existence (configured present, or H_REQUEST_VMC). */
	void (*vmc_created)(void *arg, struct ovmc_vmc *vmc);
	/* Entries wait in the hypervisor end's queue, or it saw a transport event. */
	void (*vmc_pending)(void *arg, struct ovmc_vmc *vmc);
	/* The VMC is about to be destroyed with its partition. */
	void (*vmc_destroyed)(void *arg, struct ovmc_vmc *vmc);
	/* A remote partition registered its CRQ while the hypervisor end was
	 * open (ovmc_part_remote_crq()): a guest's device that reconnected,
	 * whose driver may wait for the hypervisor's INIT. Must not send. */
	void (*vmc_partner_registered)(void *arg, struct ovmc_vmc *vmc);
	void *arg;
};

OVMC_API int ovmc_machine_new(const struct ovmc_machine_hooks *hooks, struct ovmc_machine **out);
/* Frees the machine and every partition still attached. */
OVMC_API void ovmc_machine_free(struct ovmc_machine *m);
OVMC_API void ovmc_machine_set_trace(struct ovmc_machine *m, ovmc_trace_fn fn, void *arg);

/*
 * A partition whose CRQ and DMA window are outside this process: a QEMU
 * guest, whose device writes the CRQ and executes H_COPY_RDMA itself
 * (docs/guest-link.md). The machine keeps the hypervisor end, checks and
 * executes the hcalls the owner forwards (H_SEND_CRQ), and hands every
 * entry for the partition to `deliver`. Its hypervisor window is a sealed
 * memfd (ovmc_vmc_hv_memfd()) the owner shares with the device.
 */
struct ovmc_part_remote {
	/* Write an entry into the partition's CRQ: H_SUCCESS, H_DROPPED (its
	 * queue is full) or H_CLOSED (no CRQ, or the partition is out of
	 * reach). May block for as long as the owner's deadline. */
	long (*deliver)(void *arg, const uint8_t entry[16]);
	/* The hypervisor end opened (a new epoch; `credit` entries of its
	 * queue are free) or closed. */
	void (*hv_state)(void *arg, bool open, uint32_t epoch, unsigned credit);
	void *arg;
	/* The device's own names, as in the partition's device tree. */
	uint32_t unit_address;
	uint32_t liobn_local;
	uint32_t liobn_remote;
};

struct ovmc_part_config {
	/* Partition memory as the hypervisor reaches it. Owned by the caller;
	 * must outlive the partition. NULL for a remote partition, whose
	 * `mem_size` is then the size of its DMA window. */
	void *mem;
	size_t mem_size;
	/* Raise the partition's CRQ interrupt. Called only while enabled. */
	void (*raise_irq)(void *arg);
	void *irq_arg;
	/* Does the partition have a VMC before H_REQUEST_VMC? */
	bool vmc_present;
	/* H_REQUEST_VMC answer: H_SUCCESS creates the VMC; any other H_* code is
	 * returned as is (to exercise a driver's error paths). */
	long request_vmc_rc;
	uint32_t drc_index;             /* 0: derived from the partition id */
	size_t hv_window_size;          /* hypervisor buffer window per VMC */
	unsigned hv_queue_entries;      /* entries in the hypervisor end's queue */
	/* NULL: the partition is in `mem`. Else a remote partition (copied;
	 * it always has a VMC). */
	const struct ovmc_part_remote *remote;
	/* The hypervisor window is a memfd (ovmc_vmc_hv_memfd()) the owner
	 * lends to the partition's process, which executes the copies out of
	 * it and reports them (ovmc_part_remote_rdma()). Always so for a
	 * remote partition. */
	bool share_hv_window;
};

OVMC_API int ovmc_machine_add_partition(struct ovmc_machine *m, const struct ovmc_part_config *cfg,
					struct ovmc_part **out);
/*
 * Remove a partition. `failed` selects the transport event the hypervisor
 * end sees: partner failed (0x01) rather than partner deregistered (0x02).
 */
OVMC_API void ovmc_machine_remove_partition(struct ovmc_machine *m, struct ovmc_part *p,
					    bool failed);

OVMC_API unsigned ovmc_part_id(const struct ovmc_part *p);
/* Execute an hcall as partition `p` (see ovmc_hcall()). */
OVMC_API long ovmc_part_hcall(struct ovmc_part *p, unsigned long opcode, const uint64_t *args,
			      unsigned nargs, uint64_t *rets);
OVMC_API int ovmc_part_vmc_node(struct ovmc_part *p, struct ovmc_vmc_node *out);
/* The partition's VMC, or NULL while it has none. */
OVMC_API struct ovmc_vmc *ovmc_part_vmc(struct ovmc_part *p);

/*
 * A remote partition registered a CRQ of `entries` entries (0: freed it,
 * or its machine was reset), as H_REG_CRQ / H_FREE_CRQ would. Returns
 * their H_* codes: H_SUCCESS, H_CLOSED (registered, hypervisor end not
 * open), H_RESOURCE (already registered), H_PARAMETER (not a remote
 * partition, or `entries` not a whole number of pages up to 16 MiB).
 */
OVMC_API long ovmc_part_remote_crq(struct ovmc_part *p, unsigned entries);
/*
 * A partition with a shared window (a remote one's device, or the process
 * of a partition made with `share_hv_window`) executed an H_COPY_RDMA
 * with result `rc`
 * (args as the hcall's: len, source LIOBN and I/O address, destination
 * LIOBN and I/O address): counted and traced like one the machine
 * executes, the payload taken from the hypervisor window (for a copy out
 * of it, from what ovmc_vmc_hv_wrote() kept, if it covers the range: by
 * the time the report arrives the partition may have reused the buffer).
 * Returns 0, or
 * -EINVAL for a success that cannot be one (not between the partition's
 * window and the hypervisor window, or outside them), or for a partition
 * whose window is not shared: nothing is counted.
 */
OVMC_API int ovmc_part_remote_rdma(struct ovmc_part *p, long rc, const uint64_t args[5]);

/* ---- the hypervisor's end of a VMC connection ---- */

OVMC_API struct ovmc_part *ovmc_vmc_part(struct ovmc_vmc *v);
/* Per-VMC pointer for the hypervisor core that serves it. */
OVMC_API void ovmc_vmc_set_user(struct ovmc_vmc *v, void *user);
OVMC_API void *ovmc_vmc_user(const struct ovmc_vmc *v);

/*
 * Open the hypervisor end. Returns H_SUCCESS when the partition's CRQ is
 * registered, H_CLOSED when it is not yet (the end is open all the same),
 * H_RESOURCE if already open.
 */
OVMC_API long ovmc_vmc_hv_register(struct ovmc_vmc *v);
/*
 * Close the hypervisor end: queued entries are discarded and the partition
 * receives transport event `event` (0x02 deregistered, 0x01 failed).
 */
OVMC_API long ovmc_vmc_hv_free(struct ovmc_vmc *v, uint8_t event);
OVMC_API bool ovmc_vmc_hv_registered(const struct ovmc_vmc *v);
OVMC_API bool ovmc_vmc_partition_registered(const struct ovmc_vmc *v);

/*
 * Deliver an entry into the partition's CRQ (PAPR order: bytes 8..15,
 * barrier, then bytes 0..7) and raise its interrupt if enabled. Returns
 * H_SUCCESS, H_PARAMETER (header not valid for sending), H_CLOSED (either
 * end not registered), or H_DROPPED (the partition's queue is full).
 */
OVMC_API long ovmc_vmc_hv_send(struct ovmc_vmc *v, const uint8_t entry[16]);
/* Take the next entry from the hypervisor end's queue: 1, or 0 if empty. */
OVMC_API int ovmc_vmc_hv_receive(struct ovmc_vmc *v, uint8_t entry[16]);
/* Entries in the partition's CRQ that it has not consumed yet. */
OVMC_API unsigned ovmc_vmc_hv_outstanding(const struct ovmc_vmc *v);
/* Entries in the partition's CRQ (0 while not registered). */
OVMC_API unsigned ovmc_vmc_partition_queue_size(const struct ovmc_vmc *v);
/* The hypervisor's buffer window (second pane of the partition). */
OVMC_API void *ovmc_vmc_hv_memory(struct ovmc_vmc *v, size_t *size);
/*
 * The hypervisor core wrote [offset, offset + len) of its window for the
 * partition to copy out. Copies out of a shared window are reported after
 * the fact, so for those the machine keeps a copy of what was written (the
 * last OVMC_VMC_SNAPSHOTS writes, each at most OVMC_MAX_RDMA_LEN bytes) for
 * the trace of the copy; for other partitions this does nothing.
 */
#define OVMC_VMC_SNAPSHOTS 64
OVMC_API void ovmc_vmc_hv_wrote(struct ovmc_vmc *v, size_t offset, size_t len);
OVMC_API uint32_t ovmc_vmc_hv_liobn(const struct ovmc_vmc *v);
/*
 * A shared hypervisor window as a memfd sealed against resizing (owned by
 * the machine), -1 for any other. It holds the window, then one page whose
 * first 32-bit word (host byte order) is OVMC_VMC_LINKED while both ends
 * are registered, 0 otherwise: what the machine checks before a copy
 * touches the window, for a process that executes such copies itself.
 */
#define OVMC_VMC_LINKED 1u
OVMC_API int ovmc_vmc_hv_memfd(const struct ovmc_vmc *v);
/* How many times the hypervisor end has opened (0: never). */
OVMC_API uint32_t ovmc_vmc_hv_epoch(const struct ovmc_vmc *v);
/* Free entries in the hypervisor end's queue: what H_SEND_CRQ can still fill. */
OVMC_API unsigned ovmc_vmc_hv_room(const struct ovmc_vmc *v);
/*
 * Remote partitions: entries of the current epoch forwarded with
 * H_SEND_CRQ that have left the hypervisor end's queue (consumed, or
 * refused) since the last call; the device may send that many more.
 */
OVMC_API unsigned ovmc_vmc_hv_take_credit(struct ovmc_vmc *v);

struct ovmc_machine_stats {
	uint64_t hcalls;
	uint64_t hcall_errors;
	uint64_t entries_to_hv;
	uint64_t entries_to_partition;
	uint64_t dropped_full;    /* H_DROPPED answers */
	uint64_t rdma_ops;
	uint64_t rdma_bytes;
	uint64_t rdma_rejected;
};
OVMC_API void ovmc_machine_stats(const struct ovmc_machine *m, struct ovmc_machine_stats *out);

/* ---- in-process platform: a partition in this process ---- */

struct ovmc_inproc_config {
	size_t mem_size;     /* partition memory; rounded up to a page */
	bool vmc_present;
	long request_vmc_rc; /* see ovmc_part_config */
	uint32_t drc_index;
	size_t hv_window_size;
	unsigned hv_queue_entries;
	/* The owner runs the machine in its own loop and drains the CRQ after
	 * every pass that may have filled it (ovmc_drv_crq_pending()): the
	 * interrupt fd is then never written, which saves two system calls
	 * per message. */
	bool irq_polled;
};

/*
 * Create a partition on `m` and return its client handle. The handle owns
 * the partition memory and an eventfd for the interrupt;
 * ovmc_platform_destroy() removes the partition from the machine.
 */
OVMC_API int ovmc_inproc_new(struct ovmc_machine *m, const struct ovmc_inproc_config *cfg,
			     struct ovmc_platform **out);
/* The machine-side partition behind an in-process handle. */
OVMC_API struct ovmc_part *ovmc_inproc_part(struct ovmc_platform *p);

#ifdef __cplusplus
}
#endif
#endif
