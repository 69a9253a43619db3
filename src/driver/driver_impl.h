/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Inside the driver core: its state and the functions its files share.
 * Only src/driver/ includes this; everything else goes through
 * <openvmc/driver.h>.
 *
 *   driver.c    creation, states, CRQ registration, resets, timers
 *   tx.c        sending in order behind a full hypervisor queue, RDMA
 *   slots.c     HMC connections, their buffers and read queues, file events
 *   dispatch.c  entries from the hypervisor, one handler per message type
 *   file.c      the file operations of the device
 *
 * Partition memory layout: the CRQ page at I/O address 0, then one mirror
 * of max_mtu bytes per (HMC index, buffer id) at a fixed place, so a
 * buffer never needs an allocation.
 */
#ifndef OVMC_DRIVER_IMPL_H
#define OVMC_DRIVER_IMPL_H

#include <openvmc/driver.h>

#include <stdarg.h>

#define NS_PER_MS 1000000ull
#define TX_RETRY_NS (1 * NS_PER_MS)
#define DEFAULT_INIT_RETRY_NS (1000 * NS_PER_MS)
#define CRQ_IOBA 0u
#define CRQ_BYTES OVMC_PAGE_SIZE
#define MIN_MTU 32u
#define HCALL_BUSY_TRIES 3

enum buf_state {
	DB_ABSENT,
	DB_FREE, /* ours, free for a write */
	DB_BUSY, /* ours, carrying the HMC id or waiting for read() */
	DB_HV,	 /* the hypervisor's */
};

struct drv_buf {
	uint8_t state;
	uint32_t lioba;
	uint32_t msg_len;
};

struct drv_slot {
	unsigned index;
	int state; /* enum ovmc_slot_state */
	uint8_t session;
	struct ovmc_drv_file *file;
	uint8_t hmc_id[OVMC_HMC_ID_LEN];
	uint16_t open_buf;

	struct drv_buf *bufs;
	uint16_t *free_ids; /* stack of DB_FREE ids */
	unsigned n_free, n_valid, n_hv;
	uint16_t *rq; /* read queue: ids of DB_BUSY buffers, in arrival order */
	unsigned rq_head, rq_count;
};

/* A message kept for a file whose connection was reset under it. */
struct orphan {
	struct orphan *next;
	size_t len;
	uint8_t data[];
};

struct ovmc_drv_file {
	struct ovmc_drv *d;
	struct drv_slot *slot;
	bool reset; /* its connection ended under it (Linux: session invalid) */
	struct orphan *orphans, *orphans_tail;
	unsigned last_events;
	void *user;
};

struct ovmc_drv {
	struct ovmc_drv_config cfg;
	struct ovmc_platform *plat;
	struct ovmc_drv_callbacks cbs;
	void *user;
	enum ovmc_log_level log_level;
	bool tracing; /* cbs.trace is called (ovmc_drv_set_tracing()) */

	enum ovmc_drv_state state;
	struct ovmc_vmc_node node;
	bool crq_registered;
	uint8_t *mem;
	uint32_t crq_entries, crq_cur;
	uint32_t drc_index;
	struct ovmc_drv_negotiated neg;
	struct drv_slot *slots; /* cfg.max_hmcs */

	uint8_t (*txq)[OVMC_CRQ_ENTRY_SIZE];
	unsigned tx_cap, tx_head, tx_count;
	unsigned tx_limit;
	/* The hypervisor met tx_limit: nothing is handled or queued until the
	 * CRQ is reset (at the end of the current call, or at reset_at). */
	bool flooded;
	uint64_t reset_at;

	uint64_t now;
	uint64_t tx_retry_at;
	uint64_t init_retry_at;
	struct ovmc_drv_stats stats;
};

static inline uint64_t mirror_ioba(const struct ovmc_drv *d, unsigned index, unsigned id)
{
	return CRQ_BYTES + ((uint64_t)index * d->cfg.pool_size + id) * d->cfg.max_mtu;
}

static inline uint8_t *mirror(const struct ovmc_drv *d, unsigned index, unsigned id)
{
	return d->mem + mirror_ioba(d, index, id);
}

/* driver.c */
void drv_log(struct ovmc_drv *d, enum ovmc_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Count a protocol error under `reason` and log it. */
void drv_proto_err(struct ovmc_drv *d, uint64_t *reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void drv_set_state(struct ovmc_drv *d, enum ovmc_drv_state st);
/* Transport event: the partner is gone or restarted; wait for its INIT. */
void drv_transport_reset(struct ovmc_drv *d, uint8_t code);
/* Protocol failure: deregister and register again, then INIT. */
void drv_reset(struct ovmc_drv *d, const char *why);
/* The reset of a flooded driver, from the top of a core call; else nothing. */
void drv_flood_reset(struct ovmc_drv *d);

/* tx.c */
void drv_trace_entry(struct ovmc_drv *d, enum ovmc_trace_kind kind,
		     const uint8_t e[OVMC_CRQ_ENTRY_SIZE]);
/* H_COPY_RDMA, traced with the bytes that moved when it succeeds. */
long drv_rdma(struct ovmc_drv *d, uint64_t len, uint64_t src_liobn, uint64_t src_ioba,
	      uint64_t dst_liobn, uint64_t dst_ioba);
void drv_tx_flush(struct ovmc_drv *d);
/* 0 (sent or queued behind a full hypervisor queue), or -EIO when the
 * platform refused it (partner gone). */
int drv_tx_hmc(struct ovmc_drv *d, enum ovmc_msg_type type, const struct ovmc_hmc_msg *h);
/*
 * drv_rdma(), then, only if it succeeded, drv_tx_hmc() into *sent, as one
 * platform call when nothing waits to be sent before (ovmc_hcall_pair():
 * one round trip to another process instead of two). Returns the
 * H_COPY_RDMA code.
 */
long drv_rdma_tx_hmc(struct ovmc_drv *d, uint64_t len, uint64_t src_liobn, uint64_t src_ioba,
		     uint64_t dst_liobn, uint64_t dst_ioba, enum ovmc_msg_type type,
		     const struct ovmc_hmc_msg *h, int *sent);
int drv_tx_resp(struct ovmc_drv *d, enum ovmc_msg_type type, uint8_t status, uint8_t session,
		uint8_t index, uint16_t buffer_id);
void drv_send_init(struct ovmc_drv *d, enum ovmc_init_format fmt);
void drv_send_caps(struct ovmc_drv *d);

/* slots.c */
unsigned drv_file_events(const struct ovmc_drv *d, const struct ovmc_drv_file *f);
/* Tell the owner when the file's readiness changed; `f` may be NULL. */
void drv_file_update(struct ovmc_drv *d, struct ovmc_drv_file *f);
void drv_buf_free(struct drv_slot *s, unsigned id);
/* The oldest message waiting for read(), or -1. */
int drv_rq_pop(struct drv_slot *s, struct ovmc_drv *d);
/* Unread messages of a connection nobody reads any more; returns how many. */
unsigned drv_discard_queue(struct ovmc_drv *d, struct drv_slot *s);
void drv_forget_buffers(struct ovmc_drv *d, struct drv_slot *s);
/* Give the slot back. Its file (if any) keeps the messages already
 * delivered, then sees EBADFD / EIO / POLLHUP as in Linux. */
void drv_return_slot(struct ovmc_drv *d, struct drv_slot *s);
void drv_return_all_slots(struct ovmc_drv *d);

#endif
