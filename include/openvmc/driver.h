/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Driver core: the management-partition side of the VMC, what the Linux
 * ibmvmc driver does, as an event-driven state machine over the platform
 * interface (platform.h).
 *
 * It never blocks and never reads a clock. The owner runs the loop: it
 * calls ovmc_drv_handle_interrupt() when the platform's interrupt fd is
 * readable and ovmc_drv_handle_timer() at ovmc_drv_next_deadline().
 *
 * File operations return what the Linux driver returns in the same
 * situation, as negative errno values (docs/protocol.md lists every case
 * and each deliberate difference). "Would block" is -EAGAIN from
 * ovmc_drv_read(); a blocking caller parks and retries when the file's
 * event callback reports readiness.
 *
 * Not thread-safe. Callbacks run inside core calls and must not call back
 * into the core except ovmc_drv_poll().
 */
#ifndef OPENVMC_DRIVER_H
#define OPENVMC_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openvmc/common.h>
#include <openvmc/platform.h>
#include <openvmc/trace.h>
#include <openvmc/wire.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ovmc_drv;
struct ovmc_drv_file;

/* Driver states as QUERY reports them (Linux ibmvmc_states). */
enum ovmc_drv_state {
	OVMC_DRV_SCHED_RESET = -1,
	OVMC_DRV_INITIAL = 0,
	OVMC_DRV_CRQINIT = 1,
	OVMC_DRV_CAPABILITIES = 2,
	OVMC_DRV_READY = 3,
	OVMC_DRV_FAILED = 4,
};

/* HMC connection (slot) states (Linux ibmhmc_states), plus closing. */
enum ovmc_slot_state {
	OVMC_SLOT_FREE = 0,
	OVMC_SLOT_INITIAL = 1,
	OVMC_SLOT_OPENING = 2,
	OVMC_SLOT_READY = 3,
	OVMC_SLOT_FAILED = 4,
	OVMC_SLOT_CLOSING = 5, /* close sent, index reusable after the response */
};

struct ovmc_drv_config {
	uint8_t max_hmcs;   /* 1..255; Linux default and limit 1 and 2 */
	uint16_t pool_size; /* buffers per HMC, 1..1024 (Linux 16..64, default 32) */
	uint32_t max_mtu;   /* 32..65536 (Linux 4096..16384, default 4096) */
	uint16_t version;   /* advertised, OVMC_PROTOCOL_VERSION */
	/* Interval of INIT retries while waiting for the hypervisor (ns); 0: 1 s. */
	uint64_t init_retry_ns;
};

OVMC_API void ovmc_drv_config_default(struct ovmc_drv_config *cfg);
/* Partition memory the driver needs: its CRQ page and every buffer mirror. */
OVMC_API size_t ovmc_drv_memory_required(const struct ovmc_drv_config *cfg);

/* Readiness bits passed to the file callback (poll.h values). */
struct ovmc_drv_callbacks {
	/* A file's readiness changed (data arrived, session failed, buffer
	 * freed). `events` is what ovmc_drv_poll() would return now. */
	void (*file_event)(void *user, struct ovmc_drv_file *f, unsigned events);
	/* The driver state changed. */
	void (*state_changed)(void *user, enum ovmc_drv_state state);
	ovmc_log_fn log;
	/* Optional: every entry sent (TO_HV) or taken from the CRQ
	 * (TO_PARTITION) and every successful RDMA, for capture files. */
	ovmc_trace_fn trace;
};

/*
 * Create a driver on `plat` (not owned). Its memory must be at least
 * ovmc_drv_memory_required(). Returns 0, -EINVAL (configuration or
 * platform memory too small), -ENOMEM.
 */
OVMC_API int ovmc_drv_new(const struct ovmc_drv_config *cfg, struct ovmc_platform *plat,
			  const struct ovmc_drv_callbacks *cbs, void *user, struct ovmc_drv **out);
/* Free the driver: its CRQ is freed (the hypervisor sees it). Open files
 * must be closed first. */
OVMC_API void ovmc_drv_free(struct ovmc_drv *d);
/* The most verbose level passed to the log callback (default: info). */
OVMC_API void ovmc_drv_set_log_level(struct ovmc_drv *d, enum ovmc_log_level level);
/* Whether the trace callback is called (default: on when there is one).
 * Off, a message costs no trace event at all. */
OVMC_API void ovmc_drv_set_tracing(struct ovmc_drv *d, bool on);

/*
 * Probe: look for the VMC node; if there is one, register the CRQ, enable
 * its interrupt and send INIT. Without a VMC the driver stays INITIAL
 * until ovmc_drv_request_vmc() creates one. Returns 0 or a negative code
 * for a platform failure (state FAILED).
 */
OVMC_API int ovmc_drv_start(struct ovmc_drv *d, uint64_t now);
/*
 * The platform is gone (the hypervisor process died). Forget the CRQ
 * without hcalls and return every connection: files see what a transport
 * event gives them (EBADFD, EIO, POLLHUP). State becomes INITIAL; call
 * ovmc_drv_start() when the platform is back.
 */
OVMC_API void ovmc_drv_platform_lost(struct ovmc_drv *d, uint64_t now);
/* Drain the CRQ (call when the interrupt fd is readable). Returns the
 * number of entries handled. */
OVMC_API unsigned ovmc_drv_handle_interrupt(struct ovmc_drv *d, uint64_t now);
/*
 * Whether an entry waits in the CRQ (or a reset is due), without a system
 * call: an owner that just ran the hypervisor (in the same process, or
 * after an hcall) calls ovmc_drv_handle_interrupt() at once instead of
 * waiting for the interrupt fd to wake it.
 */
OVMC_API bool ovmc_drv_crq_pending(const struct ovmc_drv *d);
OVMC_API void ovmc_drv_handle_timer(struct ovmc_drv *d, uint64_t now);
OVMC_API uint64_t ovmc_drv_next_deadline(const struct ovmc_drv *d);
OVMC_API enum ovmc_drv_state ovmc_drv_state(const struct ovmc_drv *d);
OVMC_API const char *ovmc_drv_state_name(int state);
OVMC_API const char *ovmc_slot_state_name(int state);

/* Negotiated values (valid in READY). */
struct ovmc_drv_negotiated {
	uint8_t max_hmcs;
	uint16_t pool_size;
	uint32_t mtu;
	uint16_t hv_crq_size;
	uint16_t hv_version;
};
OVMC_API void ovmc_drv_negotiated(const struct ovmc_drv *d, struct ovmc_drv_negotiated *out);

/* ---- file operations (one ovmc_drv_file per open file description) ---- */

/* open(): always succeeds but for -ENOMEM. */
OVMC_API int ovmc_drv_open(struct ovmc_drv *d, struct ovmc_drv_file **out);
OVMC_API void ovmc_drv_file_set_user(struct ovmc_drv_file *f, void *user);
OVMC_API void *ovmc_drv_file_user(const struct ovmc_drv_file *f);

/*
 * VMC_IOCTL_SETHMCID: reserve an HMC connection and send the open.
 * 0 (the open completes later: writes get -EBUSY until then), -EIO
 * (driver failed, called twice, RDMA or send failure), -EAGAIN (driver not
 * ready), -ENOBUFS (a free connection has no buffer yet), -EBUSY (every
 * connection in use).
 */
OVMC_API int ovmc_drv_sethmcid(struct ovmc_drv *d, struct ovmc_drv_file *f,
			       const uint8_t hmc_id[OVMC_HMC_ID_LEN], uint64_t now);

/*
 * write(): one message. Returns len, 0 for len 0, -EIO (no connection,
 * connection reset or failed, len above the MTU, RDMA or send failure),
 * -EBUSY (open not complete, or no free buffer: retry later).
 */
OVMC_API ssize_t ovmc_drv_write(struct ovmc_drv *d, struct ovmc_drv_file *f, const void *buf,
				size_t len, uint64_t now);

/*
 * read(): one message into buf. Returns the bytes copied (a longer message
 * is truncated, as in Linux; each truncation is counted and logged), 0 for
 * len 0, -EINVAL (len above the MTU), -EIO (no connection), -EBADFD (the
 * connection was reset and nothing is queued), -EAGAIN (nothing queued:
 * would block).
 */
OVMC_API ssize_t ovmc_drv_read(struct ovmc_drv *d, struct ovmc_drv_file *f, void *buf,
			       size_t len, uint64_t now);

/* Where ovmc_drv_read_to() hands a message: valid only during the call. */
typedef void (*ovmc_drv_read_fn)(void *user, const void *data, size_t len);
/*
 * read() without the copy: fn(user, data, n) is called once with the
 * message (or its first len bytes) while it is still in the driver's
 * buffer, which is taken back after fn returns; fn must not call into
 * the driver. Not called when nothing is read (len 0 or an error).
 * Returns what ovmc_drv_read() returns; -EINVAL also for fn NULL.
 */
OVMC_API ssize_t ovmc_drv_read_to(struct ovmc_drv *d, struct ovmc_drv_file *f, size_t len,
				  ovmc_drv_read_fn fn, void *user, uint64_t now);

/*
 * poll(): POLLIN|POLLRDNORM while a message is queued (Linux), and beyond
 * Linux POLLOUT|POLLWRNORM while a write would not get -EBUSY, POLLHUP
 * once the connection was reset or closed by the partner.
 */
OVMC_API unsigned ovmc_drv_poll(struct ovmc_drv *d, struct ovmc_drv_file *f);

/* VMC_IOCTL_QUERY. */
struct ovmc_query {
	int32_t have_vmc;
	int32_t state;
	int32_t vmc_drc_index;
};
OVMC_API void ovmc_drv_query(const struct ovmc_drv *d, struct ovmc_query *out);

/*
 * VMC_IOCTL_REQUESTVMC: H_REQUEST_VMC. 0 and the DRC index, or the Linux
 * mapping: -EPERM (H_FUNCTION, H_AUTHORITY, H_NOT_AVAILABLE), -EIO
 * (H_HARDWARE, and unlike Linux any unknown code), -ENODEV (H_RESOURCE),
 * -EINVAL (H_PARAMETER), -EBUSY (still busy after retries). On success a
 * driver without a VMC probes the new one.
 */
OVMC_API int ovmc_drv_request_vmc(struct ovmc_drv *d, uint32_t *drc_index, uint64_t now);

/*
 * release(): close the file. An open connection sends Interface Close and
 * its index becomes reusable when the response arrives. Always succeeds;
 * `f` is freed.
 */
OVMC_API void ovmc_drv_close(struct ovmc_drv *d, struct ovmc_drv_file *f, uint64_t now);

/* ---- status ---- */

struct ovmc_drv_slot_info {
	int state;           /* enum ovmc_slot_state */
	uint8_t session;
	bool has_file;
	unsigned buffers;    /* valid buffers */
	unsigned free;       /* partition-owned and free */
	unsigned hv_owned;
	unsigned queued;     /* messages waiting for read() */
	uint8_t hmc_id[OVMC_HMC_ID_LEN];
};
/* Returns 0, or -EINVAL for an index beyond the configured max. */
OVMC_API int ovmc_drv_slot_info(const struct ovmc_drv *d, unsigned index,
				struct ovmc_drv_slot_info *out);

struct ovmc_drv_stats {
	uint64_t entries_in;
	uint64_t entries_out;
	uint64_t messages_in;
	uint64_t messages_out;
	uint64_t bytes_in;
	uint64_t bytes_out;
	uint64_t protocol_errors; /* sum of the reasons below */
	uint64_t err_decode;
	uint64_t err_state;
	uint64_t err_direction;
	uint64_t err_session;
	uint64_t err_buffer;
	uint64_t err_length;
	/* Entries beyond the bound of the send queue: the hypervisor does not
	 * read its queue (max_hmcs * (2 * pool_size + 4) + 64 wait at most);
	 * the CRQ is then reset. */
	uint64_t err_flood;
	uint64_t truncated_reads;  /* read() shorter than the message (Linux ABI) */
	uint64_t truncated_bytes;
	uint64_t discarded_msgs;   /* queued but unread when the connection ended */
	uint64_t lost_rdma;        /* inbound message lost: RDMA refused */
	uint64_t send_deferred;    /* held back by a full hypervisor queue */
	uint64_t send_queue_peak;  /* most held back at once */
	uint64_t send_failed;      /* refused by the platform, or beyond the send bound */
	uint64_t resets;
};
OVMC_API void ovmc_drv_stats(const struct ovmc_drv *d, struct ovmc_drv_stats *out);

#ifdef __cplusplus
}
#endif
#endif
