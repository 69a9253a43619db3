/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Inside the hypervisor core: its state and the functions its files
 * share. Only the core's own files include this.
 *
 *   hv.c           creation, configuration, start and stop, timers
 *   hv_tx.c        entries to the partition, in order, under its credit
 *   hv_session.c   buffers of each HMC index, sessions, outbound messages
 *   hv_dispatch.c  entries from the partition, one handler per type
 */
#ifndef OVMC_HV_CORE_H
#define OVMC_HV_CORE_H

#include "hv_internal.h"

#include <stdarg.h>

#define NS_PER_MS 1000000ull
#define TX_RETRY_NS (1 * NS_PER_MS)
#define RECLAIM_MIN_NS (1 * NS_PER_MS)
#define RECLAIM_MAX_NS (1000 * NS_PER_MS)
#define DEFAULT_BACKLOG 1024u
#define MIN_MTU 32u

enum buf_state {
	BUF_ABSENT,
	BUF_ADDING,    /* Add Buffer sent, response awaited */
	BUF_PARTITION, /* the partition owns it */
	BUF_HV_FREE,   /* ours, free to carry a message */
	BUF_HV_BUSY,   /* ours, its message is with the backend right now */
};

struct hv_buf {
	uint8_t state;
	uint8_t add_owner;   /* BUF_ADDING: the owner the add names */
	uint8_t add_session; /* BUF_ADDING: session the add was sent with */
};

struct backlog_msg {
	struct backlog_msg *next;
	size_t len;
	uint8_t data[];
};

/* One HMC index: its buffers, and the session open on it (if any). */
struct ovmc_hv_session {
	struct ovmc_hv *hv;
	unsigned index;
	bool open;
	uint8_t number;
	uint8_t hmc_id[OVMC_HMC_ID_LEN];
	void *user;

	struct hv_buf *bufs;
	uint16_t *free_ids; /* stack of BUF_HV_FREE ids */
	unsigned n_free;
	unsigned n_partition;
	unsigned n_adding_hv; /* adds in flight that will give us a buffer */
	bool remove_pending;
	bool remove_for_reclaim;

	struct backlog_msg *bl_head, *bl_tail;
	unsigned bl_count;
	bool want_writable;
};

struct ovmc_hv {
	struct ovmc_hv_config cfg;
	struct ovmc_hv_ops ops;
	void *ops_user;
	uint8_t *mem;
	size_t mem_size;
	struct ovmc_vmc *binding;
	void (*unbind)(struct ovmc_vmc *vmc);
	unsigned id;

	ovmc_log_fn log;
	void *log_user;
	enum ovmc_log_level log_level;

	const struct ovmc_backend_ops *be;
	void *be_arg;

	enum ovmc_hv_state state;
	struct ovmc_hv_negotiated neg;
	struct ovmc_hv_session *slots; /* cfg.max_hmcs */

	/* Entries waiting for room in the partition's queue, in order. */
	uint8_t (*txq)[OVMC_CRQ_ENTRY_SIZE];
	unsigned tx_cap, tx_head, tx_count;

	/* The partner met tx_queue_limit: nothing is handled or queued until
	 * the reset at reset_at. */
	bool flooded;
	uint64_t reset_at;

	uint64_t now;
	uint64_t tx_retry_at;
	uint64_t reclaim_at;
	uint64_t reclaim_delay;
	struct ovmc_hv_stats stats;
};

static inline uint32_t buf_lioba(const struct ovmc_hv *hv, unsigned index, unsigned id)
{
	return (uint32_t)(((size_t)index * hv->neg.pool_size + id) * hv->neg.mtu);
}

static inline uint8_t *buf_mem(const struct ovmc_hv *hv, unsigned index, unsigned id)
{
	return hv->mem + buf_lioba(hv, index, id);
}

/* hv.c */
void hv_log(struct ovmc_hv *hv, enum ovmc_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Count one protocol error under `reason` and log why. */
void hv_proto_err(struct ovmc_hv *hv, uint64_t *reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* hv_tx.c: 0 (sent or queued in order), or a negative code. */
int hv_tx(struct ovmc_hv *hv, const struct ovmc_entry *m);
int hv_tx_init(struct ovmc_hv *hv, enum ovmc_init_format fmt);
int hv_tx_hmc(struct ovmc_hv *hv, enum ovmc_msg_type type, uint8_t status, uint8_t session,
	      uint8_t index, uint16_t buffer_id);
void hv_tx_flush(struct ovmc_hv *hv);
void hv_tx_drop_all(struct ovmc_hv *hv);

/* hv_session.c */
void hv_buf_to_free(struct ovmc_hv_session *s, unsigned id);
int hv_add_buffer(struct ovmc_hv *hv, struct ovmc_hv_session *s, unsigned id, uint8_t session,
		  uint8_t owner);
/* Forget every buffer of the index and any session on it. */
void hv_forget_index(struct ovmc_hv_session *s);
void hv_end_session(struct ovmc_hv *hv, struct ovmc_hv_session *s);
void hv_reset_all(struct ovmc_hv *hv);
/* Without a free buffer the hypervisor cannot send: ask the partition to
 * give one back (it picks an idle one) and add it again as ours. */
void hv_try_reclaim(struct ovmc_hv *hv, struct ovmc_hv_session *s);
void hv_flush_backlog(struct ovmc_hv *hv, struct ovmc_hv_session *s);

#endif
