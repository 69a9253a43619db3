/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Hypervisor core: the VMC server end, an event-driven state machine.
 *
 * It never does I/O and never reads a clock: entries from the partition,
 * timer expiries and backend requests come in as calls with the current
 * time; entries to the partition go out through the ops table. The owner
 * runs the event loop and calls ovmc_hv_next_deadline() to arm its timer.
 *
 * Buffers live in the hypervisor window given at creation: buffer `id` of
 * HMC index `idx` is at ((idx * pool) + id) * mtu with the negotiated
 * pool size and MTU.
 *
 * Not thread-safe; backend callbacks run inside core calls and may call
 * ovmc_hv_send() and ovmc_hv_remove_buffer() (not ovmc_hv_free()).
 */
#ifndef OPENVMC_HV_H
#define OPENVMC_HV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openvmc/common.h>
#include <openvmc/wire.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ovmc_hv;
struct ovmc_hv_session;
struct ovmc_vmc;

struct ovmc_hv_config {
	uint8_t max_hmcs;      /* HMC connections offered (1..255) */
	uint16_t pool_size;    /* buffers per HMC index (1..1024) */
	uint32_t mtu;          /* largest message (32..65536) */
	uint16_t crq_size;     /* entries of the hypervisor's queue, advertised */
	uint16_t version;      /* OVMC_PROTOCOL_VERSION */
	/* Of each session's pool, how many buffers the hypervisor keeps for its
	 * own messages at open; 0 means pool/2. The rest (with the index's
	 * initial buffer) go to the partition. */
	uint16_t hv_buffers;
	/* Messages a session may queue while no buffer is free; 0: 1024. */
	unsigned backlog_limit;
	/* Entries that may wait for room in the partition's queue; 0: what
	 * every index opening with a full pool at once needs, plus one queue
	 * (max_hmcs * (2 * pool_size + 4) + crq_size). A partition that sends
	 * requests and never reads the answers meets this bound: a protocol
	 * error (err_flood), then the channel is reset. */
	unsigned tx_queue_limit;
};

/* Defaults: 1 HMC, pool 32, MTU 4096, queue 256, version 0x0101. */
OVMC_API void ovmc_hv_config_default(struct ovmc_hv_config *cfg);
/* Bytes of hypervisor window the configuration needs. */
OVMC_API size_t ovmc_hv_memory_required(const struct ovmc_hv_config *cfg);

struct ovmc_hv_ops {
	/* Deliver an entry into the partition's CRQ: an H_* code (H_SUCCESS,
	 * H_CLOSED, H_DROPPED). */
	long (*send_crq)(void *user, const uint8_t entry[OVMC_CRQ_ENTRY_SIZE]);
	/* Entries the partition has not consumed yet (for flow control). */
	unsigned (*partner_outstanding)(void *user);
	/* Optional: the core gave up on the partner (err_flood). Close the
	 * hypervisor end and open it again, so the partner sees a transport
	 * event, and restart the core (ovmc_hv_stop(), ovmc_hv_start()).
	 * Called from ovmc_hv_handle_timer() only. Without it the core forgets
	 * everything and sends INIT on the same end. */
	void (*reset)(void *user, uint64_t now);
};

/*
 * Layer-2 backend: what the hypervisor does with HMC messages. Every
 * callback is optional. `data` is valid during the call only.
 */
struct ovmc_backend_ops {
	const char *name;
	/* A session opened. Return 0 to accept, negative to refuse (the open
	 * response then carries a failure status). */
	int (*open)(void *b, struct ovmc_hv_session *s, const uint8_t hmc_id[OVMC_HMC_ID_LEN]);
	/* A message from the management application. */
	void (*message)(void *b, struct ovmc_hv_session *s, const uint8_t *data, size_t len);
	/* The session is gone (closed, or the partition reset or vanished).
	 * The session pointer is invalid after this returns. */
	void (*close)(void *b, struct ovmc_hv_session *s);
	/* Buffers became free after ovmc_hv_send() returned -ENOBUFS. */
	void (*writable)(void *b, struct ovmc_hv_session *s);
};

/*
 * Create a core. `mem`/`mem_size` is the hypervisor buffer window and
 * `liobn` its name; the core does not own them. Returns 0, -EINVAL for a
 * bad configuration, -ENOMEM.
 */
OVMC_API int ovmc_hv_new(const struct ovmc_hv_config *cfg, const struct ovmc_hv_ops *ops,
			 void *ops_user, void *mem, size_t mem_size, struct ovmc_hv **out);
/* Free the core; open sessions are closed towards the backend first. */
OVMC_API void ovmc_hv_free(struct ovmc_hv *hv);
OVMC_API void ovmc_hv_set_backend(struct ovmc_hv *hv, const struct ovmc_backend_ops *ops,
				  void *b);
/* A number naming the partition this core serves, for backends that serve
 * several cores (ovmc_hv_attach() sets the machine's partition id). */
OVMC_API void ovmc_hv_set_id(struct ovmc_hv *hv, unsigned id);
OVMC_API unsigned ovmc_hv_id(const struct ovmc_hv *hv);
/* Log sink and the most verbose level passed to it (default: info). */
OVMC_API void ovmc_hv_set_log(struct ovmc_hv *hv, ovmc_log_fn fn, void *user,
			      enum ovmc_log_level level);

/*
 * The hypervisor end was (re)registered: forget all state and send INIT.
 * An H_CLOSED answer is normal (partner not up yet; its INIT will come).
 */
OVMC_API void ovmc_hv_start(struct ovmc_hv *hv, uint64_t now);
/*
 * The hypervisor end is going away: close every session towards the
 * backend and forget the partner. The owner frees the end afterwards.
 */
OVMC_API void ovmc_hv_stop(struct ovmc_hv *hv);

/*
 * One entry taken from the hypervisor end's queue. Malformed or
 * out-of-state entries are counted and logged, never fatal. Returns 0, or
 * -ENOMEM if the core could not record what it must send.
 */
OVMC_API int ovmc_hv_handle_entry(struct ovmc_hv *hv, const uint8_t entry[OVMC_CRQ_ENTRY_SIZE],
				  uint64_t now);
OVMC_API void ovmc_hv_handle_timer(struct ovmc_hv *hv, uint64_t now);
/* Absolute time of the next timer, OVMC_TIME_NEVER if none. */
OVMC_API uint64_t ovmc_hv_next_deadline(const struct ovmc_hv *hv);

enum ovmc_hv_state {
	OVMC_HV_STOPPED,    /* not started */
	OVMC_HV_WAIT_INIT,  /* INIT sent or awaited */
	OVMC_HV_LINK_UP,    /* init handshake done, awaiting capabilities */
	OVMC_HV_READY,      /* capabilities exchanged */
	OVMC_HV_FAILED,     /* incompatible partner; waits for a new INIT */
};
OVMC_API enum ovmc_hv_state ovmc_hv_state(const struct ovmc_hv *hv);
OVMC_API const char *ovmc_hv_state_name(enum ovmc_hv_state st);

/* Negotiated values (valid in READY). */
struct ovmc_hv_negotiated {
	uint8_t max_hmcs;
	uint16_t pool_size;
	uint32_t mtu;
	uint16_t partner_crq_size;
	uint16_t partner_version;
};
OVMC_API void ovmc_hv_negotiated(const struct ovmc_hv *hv, struct ovmc_hv_negotiated *out);

/* ---- sessions ---- */

/* The open session on `index`, or NULL. */
OVMC_API struct ovmc_hv_session *ovmc_hv_session_at(struct ovmc_hv *hv, unsigned index);
OVMC_API unsigned ovmc_hv_session_index(const struct ovmc_hv_session *s);
OVMC_API uint8_t ovmc_hv_session_number(const struct ovmc_hv_session *s);
OVMC_API const uint8_t *ovmc_hv_session_hmc_id(const struct ovmc_hv_session *s);
OVMC_API struct ovmc_hv *ovmc_hv_session_hv(const struct ovmc_hv_session *s);
/* Backend's per-session pointer (NULL at open). */
OVMC_API void ovmc_hv_session_set_user(struct ovmc_hv_session *s, void *user);
OVMC_API void *ovmc_hv_session_user(const struct ovmc_hv_session *s);

/*
 * Send one message to the management application, solicited or not.
 * It goes out at once when the hypervisor owns a free buffer of the session
 * and the partition's queue has room; otherwise it waits in order in the
 * session's backlog (buffers are reclaimed from the partition when it holds
 * idle ones). Returns 0, -EMSGSIZE (len 0 or above the MTU), -ENOTCONN
 * (session not open), -ENOBUFS (backlog full: wait for `writable`).
 */
OVMC_API int ovmc_hv_send(struct ovmc_hv_session *s, const void *data, size_t len);

/*
 * Ask the partition to give back one of the session's buffers (Remove
 * Buffer). Returns 0, -EBUSY if a removal is already pending or the
 * partition holds fewer than two buffers (never its last one), -ENOTCONN.
 */
OVMC_API int ovmc_hv_remove_buffer(struct ovmc_hv_session *s);

/* Buffer accounting of one HMC index. */
struct ovmc_hv_pool_info {
	unsigned partition_owned; /* owned by the partition */
	unsigned hv_free;         /* owned by the hypervisor, free */
	unsigned pending;         /* add or remove in flight */
	unsigned absent;
	unsigned backlog;         /* messages waiting for a buffer */
};
OVMC_API int ovmc_hv_pool_info(const struct ovmc_hv *hv, unsigned index,
			       struct ovmc_hv_pool_info *out);

struct ovmc_hv_stats {
	uint64_t entries_in;
	uint64_t entries_out;
	uint64_t messages_in;  /* signals from the partition */
	uint64_t messages_out; /* signals to the partition */
	uint64_t bytes_in;
	uint64_t bytes_out;
	uint64_t sessions_opened;
	uint64_t sessions_closed;
	uint64_t protocol_errors; /* sum of the reasons below */
	uint64_t err_decode;      /* malformed entry */
	uint64_t err_state;       /* valid entry, wrong state */
	uint64_t err_direction;   /* a type only the hypervisor sends */
	uint64_t err_session;     /* bad index or session number */
	uint64_t err_buffer;      /* bad buffer id or ownership */
	uint64_t err_length;      /* signal length 0 or above the MTU */
	uint64_t err_flood;       /* answers beyond tx_queue_limit: the partner does not read */
	uint64_t reserved_pad;    /* signals with non-zero bytes 8..11 (Linux) */
	uint64_t send_deferred;   /* entries held back by flow control */
	uint64_t send_queue_peak; /* most entries held back at once */
	uint64_t send_lost;       /* entries the partition's end refused (closed), or
				   * dropped beyond tx_queue_limit before the reset */
	uint64_t buffers_reclaimed;
	uint64_t resets;          /* partner reset or vanished */
};
OVMC_API void ovmc_hv_stats(const struct ovmc_hv *hv, struct ovmc_hv_stats *out);

/* ---- binding to the emulated machine ---- */

/*
 * Create a core serving `vmc` (machine.h): ops deliver through the
 * machine, memory is the VMC's hypervisor window. Registers the
 * hypervisor end and sends INIT. The core is stored as the VMC's user
 * pointer. ovmc_hv_free() on it frees the end with partner-deregistered.
 */
OVMC_API int ovmc_hv_attach(struct ovmc_vmc *vmc, const struct ovmc_hv_config *cfg,
			    ovmc_log_fn log, void *log_user, uint64_t now, struct ovmc_hv **out);
/* Drain the hypervisor end's queue into the core. Returns entries handled. */
OVMC_API unsigned ovmc_hv_poll(struct ovmc_hv *hv, uint64_t now);
/*
 * Simulate a hypervisor restart: free the end (the partition sees
 * partner-failed or deregistered per `event`), forget everything, register
 * again and send INIT.
 */
OVMC_API void ovmc_hv_restart(struct ovmc_hv *hv, uint8_t event, uint64_t now);

#ifdef __cplusplus
}
#endif
#endif
