/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Messages of the guest link between QEMU's spapr-vmc device and
 * openvmc-hvd (docs/guest-link.md): fixed-size structs in host byte order
 * on a byte stream, a 16-byte header with the body's length. The decoder
 * here does no I/O: it finds the next whole message in a buffer and checks
 * it against the protocol (magic, version, type, direction, length,
 * reserved fields) and the receiver's state, so the socket code and a
 * fuzzer drive the same checks.
 */
#ifndef OVMC_GUEST_PROTO_H
#define OVMC_GUEST_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "OVMG" when the first four bytes are read in order on a little-endian host. */
#define GL_MAGIC 0x474d564fu
#define GL_VERSION 1u
#define GL_ENTRY_SIZE 16u

enum gl_type {
	GL_HELLO = 1,	   /* D -> H */
	GL_WELCOME = 2,	   /* H -> D, one descriptor with status 0 */
	GL_CRQ_REG = 3,	   /* D -> H */
	GL_CRQ_FREE = 4,   /* D -> H */
	GL_SEND = 5,	   /* D -> H */
	GL_RDMA = 6,	   /* D -> H */
	GL_HV_STATE = 7,   /* H -> D */
	GL_CREDIT = 8,	   /* H -> D */
	GL_DELIVER = 9,	   /* H -> D, sequence number set */
	GL_DELIVER_RC = 10, /* D -> H, the DELIVER's sequence number */
	GL_TYPE_COUNT,
};

struct gl_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint32_t len; /* of the body */
	uint32_t seq; /* DELIVER and DELIVER_RC; otherwise 0 */
};

struct gl_hello {
	uint32_t unit_address;
	uint32_t liobn_local;
	uint32_t drc_index;
	uint32_t hv_liobn;
	uint64_t local_window_size;
	uint64_t hv_window_size;
};

struct gl_welcome {
	int32_t status; /* 0 or -errno */
	uint32_t partition_id;
	uint32_t hv_queue_entries;
	uint32_t hv_open;
	uint32_t epoch;
	uint32_t reserved;
};

struct gl_crq_reg {
	uint32_t queue_entries;
	uint32_t reserved;
};

struct gl_send {
	uint32_t epoch;
	uint32_t reserved;
	uint8_t entry[GL_ENTRY_SIZE];
};

struct gl_rdma {
	int64_t rc;
	uint64_t len;
	uint64_t src_liobn;
	uint64_t src_ioba;
	uint64_t dst_liobn;
	uint64_t dst_ioba;
};

struct gl_hv_state {
	uint32_t hv_open;
	uint32_t epoch;
	uint32_t credit;
	uint32_t reserved;
};

struct gl_credit {
	uint32_t epoch;
	uint32_t n;
};

struct gl_deliver {
	uint8_t entry[GL_ENTRY_SIZE];
};

struct gl_deliver_rc {
	int64_t rc;
};

_Static_assert(sizeof(struct gl_hdr) == 16, "guest link header layout");
_Static_assert(sizeof(struct gl_hello) == 32, "HELLO layout");
_Static_assert(sizeof(struct gl_welcome) == 24, "WELCOME layout");
_Static_assert(sizeof(struct gl_crq_reg) == 8, "CRQ_REG layout");
_Static_assert(sizeof(struct gl_send) == 24, "SEND layout");
_Static_assert(sizeof(struct gl_rdma) == 48, "RDMA layout");
_Static_assert(sizeof(struct gl_hv_state) == 16, "HV_STATE layout");
_Static_assert(sizeof(struct gl_credit) == 8, "CREDIT layout");
_Static_assert(sizeof(struct gl_deliver) == 16, "DELIVER layout");
_Static_assert(sizeof(struct gl_deliver_rc) == 8, "DELIVER_RC layout");

/* A decoded message, header and body. */
struct gl_msg {
	struct gl_hdr h;
	union {
		struct gl_hello hello;
		struct gl_welcome welcome;
		struct gl_crq_reg crq_reg;
		struct gl_send send;
		struct gl_rdma rdma;
		struct gl_hv_state hv_state;
		struct gl_credit credit;
		struct gl_deliver deliver;
		struct gl_deliver_rc deliver_rc;
		unsigned char raw[48];
	} b;
};

/* The longest message on the link. */
#define GL_MAX_MSG (sizeof(struct gl_hdr) + sizeof(struct gl_rdma))

/* Who receives: the daemon (messages from the device) or the device. */
enum gl_side {
	GL_AT_HV,
	GL_AT_DEVICE,
};

/* What a receiver has seen so far on its connection. */
enum gl_state {
	GL_AWAIT_HELLO,	  /* H: nothing yet; D: HELLO sent, WELCOME not seen */
	GL_ATTACHED,	  /* after HELLO / WELCOME */
};

/* Why a message was refused; each is counted on its own. */
enum gl_error {
	GL_OK = 0,
	GL_ERR_MAGIC,
	GL_ERR_VERSION,
	GL_ERR_TYPE,	  /* unknown, or not for this side */
	GL_ERR_LENGTH,	  /* not the type's */
	GL_ERR_STATE,	  /* HELLO twice, anything before it */
	GL_ERR_RESERVED,  /* a reserved field or an unused sequence number not 0 */
	GL_ERR_COUNT,
};

const char *gl_error_name(enum gl_error e);
const char *gl_type_name(unsigned type);
/* The body length of `type`, or -1 for an unknown type. */
int gl_body_len(unsigned type);

/*
 * Look at the front of buf[0..len): *used = 0 when no whole message is
 * there yet (a header that is already wrong is refused at once, before its
 * body arrives, so a bad length is never waited for); otherwise the
 * message's size and GL_OK with *out filled, or the error (the connection
 * is then beyond repair: a stream cannot be resynchronised).
 */
enum gl_error gl_decode(const void *buf, size_t len, enum gl_side side, enum gl_state state,
			struct gl_msg *out, size_t *used);

/* Header and body of a message of `type` into buf (GL_MAX_MSG bytes);
 * returns its size. `body` has the type's length. */
size_t gl_encode(void *buf, enum gl_type type, uint32_t seq, const void *body);

#endif
