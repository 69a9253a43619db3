/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The command router: a layer-2 payload protocol carried in VMC messages
 * (docs/router.md; IBM's only public sample of that layer).
 *
 * Every message starts with a 32-byte big-endian header, then the data:
 *
 *   off size field
 *    0   3   descriptor DE CA FF
 *    3   1   header length (32)
 *    4   4   total message length (header + data), at most 4096
 *    8   4   correlation token
 *   12   2   target (0x8000 the router itself, 0x8001.. other categories)
 *   14   1   reserved
 *   15   1   flags (0x80 response expected, 0x40 this is a response)
 *   16   4   data length (total - 32)
 *   20   2   opcode
 *   22   2   return code (responses)
 *   24   8   reserved
 *
 * This header offers a pure codec of that header (no allocation, no I/O)
 * and the "router" backend (ovmc_backend_new("router", ...)), which answers
 * the router's own opcodes and hands requests for other targets to
 * pluggable handlers (struct ovmc_router_target).
 */
#ifndef OPENVMC_ROUTER_H
#define OPENVMC_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include <openvmc/backend.h>
#include <openvmc/common.h>
#include <openvmc/hv.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- header layout ---- */

#define OVMC_ROUTER_DESC0 0xDEu
#define OVMC_ROUTER_DESC1 0xCAu
#define OVMC_ROUTER_DESC2 0xFFu
#define OVMC_ROUTER_HDR_LEN 32u
#define OVMC_ROUTER_MAX_MSG 4096u
#define OVMC_ROUTER_MAX_DATA (OVMC_ROUTER_MAX_MSG - OVMC_ROUTER_HDR_LEN)

/* Byte offsets inside the header. */
enum ovmc_router_offset {
	OVMC_ROUTER_OFF_DESC = 0,	/* 3 bytes */
	OVMC_ROUTER_OFF_HDR_LEN = 3,	/* 1 byte */
	OVMC_ROUTER_OFF_TOTAL_LEN = 4,	/* 4 bytes */
	OVMC_ROUTER_OFF_TOKEN = 8,	/* 4 bytes */
	OVMC_ROUTER_OFF_TARGET = 12,	/* 2 bytes */
	OVMC_ROUTER_OFF_RESERVED1 = 14, /* 1 byte */
	OVMC_ROUTER_OFF_FLAGS = 15,	/* 1 byte */
	OVMC_ROUTER_OFF_DATA_LEN = 16,	/* 4 bytes */
	OVMC_ROUTER_OFF_OPCODE = 20,	/* 2 bytes */
	OVMC_ROUTER_OFF_RC = 22,	/* 2 bytes */
	OVMC_ROUTER_OFF_RESERVED2 = 24, /* 8 bytes */
};
#define OVMC_ROUTER_RESERVED2_LEN 8u

/* Flags (byte 15). */
enum ovmc_router_flag {
	OVMC_ROUTER_FLAG_RESPONSE_EXPECTED = 0x80,
	OVMC_ROUTER_FLAG_RESPONSE = 0x40,
};

/* Targets (bytes 12-13). */
enum ovmc_router_target_id {
	OVMC_ROUTER_TARGET_ROUTER = 0x8000,
	OVMC_ROUTER_TARGET_LPAR_CONFIG = 0x8001,
	OVMC_ROUTER_TARGET_DLPAR = 0x8002,
	OVMC_ROUTER_TARGET_VSP = 0x8003,
	OVMC_ROUTER_TARGET_CUOD_AP = 0x8004,
	OVMC_ROUTER_TARGET_CONC_MAINT = 0x8005, /* concurrent maintenance */
	OVMC_ROUTER_TARGET_UNNAMED_8006 = 0x8006,
	OVMC_ROUTER_TARGET_UNNAMED_8007 = 0x8007,
};

/* Opcodes of the router itself (target 0x8000). */
enum ovmc_router_opcode {
	OVMC_ROUTER_OP_EXCHANGE_OPS = 0x0001, /* opens the router session */
	OVMC_ROUTER_OP_CLOSE = 0x0002,
	OVMC_ROUTER_OP_ECHO = 0x0103,
};

/* Return codes (bytes 22-23 of a response). */
enum ovmc_router_rc {
	OVMC_ROUTER_RC_GOOD = 0x0000,
	OVMC_ROUTER_RC_INVALID_OPCODE = 0x8001,
	OVMC_ROUTER_RC_INVALID_DATA = 0x8003,
	OVMC_ROUTER_RC_GENERIC_ERROR = 0x8006,
	OVMC_ROUTER_RC_CANCELLED = 0x8007,
	OVMC_ROUTER_RC_BUFFER_NOT_AVAILABLE = 0x8020,
	OVMC_ROUTER_RC_INVALID_HMC_INDEX = 0x8021,
	OVMC_ROUTER_RC_INVALID_SIZE = 0x8022,
	OVMC_ROUTER_RC_INVALID_TARGET = 0x8023,
	OVMC_ROUTER_RC_INVALID_CATEGORY = 0x8024,
	OVMC_ROUTER_RC_HMC_DEAD = 0x8025,
	OVMC_ROUTER_RC_PATH_CLOSED = 0x8026,
	OVMC_ROUTER_RC_BIND_EVENT_FAILED = 0x8027,
	OVMC_ROUTER_RC_INVALID_STATE = 0x8028,
	OVMC_ROUTER_RC_SESSION_MISMATCH = 0x8029,
	OVMC_ROUTER_RC_INVALID_HMC_INSTANCE = 0x802A,
	OVMC_ROUTER_RC_HMC_ALREADY_OPEN = 0x802B,
	OVMC_ROUTER_RC_INVALID_BUFFER_ID = 0x802C,
	OVMC_ROUTER_RC_INVALID_RESPONSE = 0x802D,
	OVMC_ROUTER_RC_INVALID_SYNC_REQUEST = 0x802E,
};

/*
 * Codec errors. They extend the library's error space (common.h) below
 * its own codes; ovmc_router_strerror() names them and every other code.
 */
enum ovmc_router_error {
	OVMC_ROUTER_ERR_TRUNCATED = -1101,  /* fewer than 32 bytes */
	OVMC_ROUTER_ERR_HDR_LEN = -1102,    /* header length byte is not 32 */
	OVMC_ROUTER_ERR_TOTAL_LEN = -1103,  /* total length is not the message's size */
	OVMC_ROUTER_ERR_DATA_LEN = -1104,   /* data length is not total - 32 */
	OVMC_ROUTER_ERR_TOO_BIG = -1105,    /* total length above 4096 */
	OVMC_ROUTER_ERR_DESCRIPTOR = -1106, /* descriptor is not DE CA FF */
};

/* ---- header codec ---- */

/* A decoded header. Reserved bytes are not represented (written as zero). */
struct ovmc_router_hdr {
	uint8_t hdr_len;    /* OVMC_ROUTER_HDR_LEN */
	uint32_t total_len; /* header + data */
	uint32_t token;	    /* correlation token, echoed by the response */
	uint16_t target;    /* enum ovmc_router_target_id */
	uint8_t flags;	    /* enum ovmc_router_flag */
	uint32_t data_len;
	uint16_t opcode;
	uint16_t rc; /* enum ovmc_router_rc; 0 in requests */
};

/*
 * Fill a well-formed header: header length 32, total 32 + data_len,
 * return code 0.
 */
OVMC_API void ovmc_router_hdr_init(struct ovmc_router_hdr *h, uint16_t target, uint16_t opcode,
				   uint32_t token, uint8_t flags, uint32_t data_len);

/*
 * Decode the header of the whole message `msg` of `len` bytes (header and
 * data: the total length must match `len`). Never reads past `len`; does
 * not look at the flags, the opcode or the reserved bytes (a receiver's
 * business). Checks, in this order, returning the first fault:
 *   OVMC_ROUTER_ERR_TRUNCATED   len < 32
 *   OVMC_ROUTER_ERR_HDR_LEN     byte 3 is not 32
 *   OVMC_ROUTER_ERR_TOTAL_LEN   total length != len
 *   OVMC_ROUTER_ERR_DATA_LEN    data length != total length - 32
 *   OVMC_ROUTER_ERR_TOO_BIG     total length > 4096
 *   OVMC_ROUTER_ERR_DESCRIPTOR  bytes 0-2 are not DE CA FF
 * Returns 0 or one of those. Whatever the result, `*out` holds every field
 * that lies entirely within `len` bytes and zero for the others (so a
 * reply to a short message can still echo what it carried).
 */
OVMC_API int ovmc_router_hdr_decode(const uint8_t *msg, size_t len, struct ovmc_router_hdr *out);

/*
 * Encode `*h` into exactly 32 bytes at `out` (descriptor included,
 * reserved bytes zero). Refuses a header decode would reject whatever the
 * message: OVMC_ROUTER_ERR_HDR_LEN (hdr_len != 32),
 * OVMC_ROUTER_ERR_TOTAL_LEN (total < 32), OVMC_ROUTER_ERR_DATA_LEN,
 * OVMC_ROUTER_ERR_TOO_BIG; `out` is then untouched. Returns 0 otherwise.
 */
OVMC_API int ovmc_router_hdr_encode(const struct ovmc_router_hdr *h,
				    uint8_t out[OVMC_ROUTER_HDR_LEN]);

/* Printable names; "unknown" (never NULL) for values not listed above. */
OVMC_API const char *ovmc_router_target_name(uint16_t target);
OVMC_API const char *ovmc_router_rc_name(uint16_t rc);
/* Name of an opcode of the router itself (target 0x8000). */
OVMC_API const char *ovmc_router_opcode_name(uint16_t opcode);
/* ovmc_strerror() that also knows enum ovmc_router_error. Never NULL. */
OVMC_API const char *ovmc_router_strerror(int err);

/* ---- the router backend ---- */

/*
 * Specification "router" (no arguments; "router:<anything>" is -EINVAL).
 *
 * Every message received on a VMC session gets exactly one response, also
 * when its 0x80 flag (response expected) is clear: a silent request would
 * leave the application unable to tell a lost message from a slow one.
 * The response keeps token, target and opcode, has flags 0x40, an exact
 * header and total length, and zero reserved bytes. Checks, first fault
 * wins:
 *   1. size: fewer than 32 bytes, header length, total length, data length
 *      or total above 4096 (ovmc_router_hdr_decode())  -> INVALID_SIZE
 *   2. descriptor not DE CA FF                          -> INVALID_DATA
 *   3. flag 0x40 set in a request                       -> INVALID_DATA
 *   4. target neither 0x8000 nor registered             -> INVALID_TARGET
 *   5. router opcode unknown                            -> INVALID_OPCODE
 *   6. state: anything after CLOSE, EXCHANGE_OPS twice, any other router
 *      opcode (or a target without BEFORE_OPEN) before EXCHANGE_OPS
 *                                                       -> INVALID_STATE
 * then EXCHANGE_OPS and CLOSE answer GOOD without data, ECHO answers GOOD
 * with the request's data, and other targets answer what their handler
 * says. Reserved bytes and unknown flag bits of requests are ignored.
 * When a message is too short to hold the token, target or opcode, the
 * response carries zero in that field.
 *
 * Responses are sent with ovmc_hv_send(). When it refuses with -ENOBUFS
 * (or -ENOMEM) the response waits in a per-session queue, in order, and
 * later responses queue behind it; the queue is retried on the `writable`
 * callback and before each new request. Queued responses are dropped only
 * when the VMC session goes away.
 */

/*
 * State of the router session of one VMC session. Each VMC session starts
 * NOT_OPEN; EXCHANGE_OPS opens it; CLOSE closes it for good (a new router
 * session needs a new VMC session).
 */
enum ovmc_router_state {
	OVMC_ROUTER_NOT_OPEN = 0,
	OVMC_ROUTER_OPEN = 1,
	OVMC_ROUTER_CLOSED = 2,
};

/*
 * One request handed to a target's handler. Opaque; valid only during the
 * handler call, as are the pointers its accessors return.
 */
struct ovmc_router_call;

OVMC_API const struct ovmc_router_hdr *ovmc_router_call_hdr(const struct ovmc_router_call *c);
OVMC_API uint16_t ovmc_router_call_opcode(const struct ovmc_router_call *c);
/* The request's data (after the header) and its length; NULL when empty. */
OVMC_API const uint8_t *ovmc_router_call_data(const struct ovmc_router_call *c, size_t *len);
/* The router-session state of the VMC session the request came on. */
OVMC_API enum ovmc_router_state ovmc_router_call_state(const struct ovmc_router_call *c);
/* The VMC session (for its HMC id, index or hypervisor). */
OVMC_API struct ovmc_hv_session *ovmc_router_call_session(const struct ovmc_router_call *c);
/* Most data a response may carry: min(4096, negotiated MTU) - 32. */
OVMC_API size_t ovmc_router_call_reply_max(const struct ovmc_router_call *c);
/*
 * Set the response's data (copied; replaces what an earlier call set).
 * Returns 0, or -EMSGSIZE when `len` exceeds ovmc_router_call_reply_max()
 * (the data set before is kept).
 */
OVMC_API int ovmc_router_call_reply(struct ovmc_router_call *c, const void *data, size_t len);

/* Target flags. */
enum {
	/*
	 * Also hand over requests that arrive before EXCHANGE_OPS (the call's
	 * state is then OVMC_ROUTER_NOT_OPEN). Without it the router answers
	 * those with INVALID_STATE itself. Requests after CLOSE always get
	 * INVALID_STATE.
	 */
	OVMC_ROUTER_TARGET_BEFORE_OPEN = 1u << 0,
};

/*
 * A category of messages other than the router's own (target != 0x8000).
 * The router has already validated the header, the direction flag, the
 * target and the state when it calls `request`.
 *
 * `request` returns the response's return code (0x0000..0xFFFF, any value:
 * enum ovmc_router_rc or the category's own), and sets the response's data
 * with ovmc_router_call_reply() (none by default). A negative or larger
 * value means the handler failed: the response is then GENERIC_ERROR
 * without data. Exactly one response goes back per request whatever the
 * handler does; the handler must not send on the session itself (that
 * would overtake queued responses). It may call ovmc_router_add_target().
 */
struct ovmc_router_target {
	uint16_t id;	  /* any value but OVMC_ROUTER_TARGET_ROUTER */
	const char *name; /* for logs; may be NULL */
	unsigned flags;	  /* OVMC_ROUTER_TARGET_* */
	int (*request)(void *arg, struct ovmc_router_call *call);
	void *arg;
};

/*
 * Register a target with a backend made by ovmc_backend_new("router", ...).
 * `*t` is copied; `name` and `arg` are not owned and must stay valid until
 * ovmc_backend_free(). May be called at any time, also from a handler.
 * Returns 0, -EINVAL (not a router backend, `t` or `t->request` NULL, or
 * id 0x8000), -EEXIST (that id is registered already), -ENOMEM.
 */
OVMC_API int ovmc_router_add_target(struct ovmc_backend *router,
				    const struct ovmc_router_target *t);

/* Counters of one router backend, all sessions together. */
struct ovmc_router_stats {
	uint64_t requests;  /* messages received */
	uint64_t responses; /* responses accepted by ovmc_hv_send() */
	uint64_t errors;    /* responses with a return code other than GOOD */
	uint64_t deferred;  /* responses the router had to queue (-ENOBUFS, -ENOMEM) */
	uint64_t queued;    /* responses waiting in the router's queues now */
	uint64_t dropped;   /* responses never sent: session gone, out of memory, or
			     * beyond OVMC_ROUTER_MAX_QUEUED */
	uint64_t overflows; /* of `dropped`: beyond OVMC_ROUTER_MAX_QUEUED */
};

/* Responses the router keeps per session while the core's backlog is full. */
#define OVMC_ROUTER_MAX_QUEUED 1024u

/* Returns 0, or -EINVAL if `router` is not a router backend. */
OVMC_API int ovmc_router_stats(const struct ovmc_backend *router, struct ovmc_router_stats *out);

#ifdef __cplusplus
}
#endif
#endif
