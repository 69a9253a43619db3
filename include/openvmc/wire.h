/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * openvmc wire format: the 16-byte CRQ entries of the PAPR transport and
 * the VMC layer-1 messages carried in them (docs/protocol.md).
 *
 * Pure functions: no allocation, no I/O, no global state. Every multi-byte
 * field is big-endian on the wire whatever the host.
 */
#ifndef OPENVMC_WIRE_H
#define OPENVMC_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <openvmc/common.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OVMC_CRQ_ENTRY_SIZE 16
#define OVMC_HMC_ID_LEN 32
#define OVMC_INVALID_BUFFER_ID 0xFFFFu
#define OVMC_PROTOCOL_VERSION 0x0101u

/* CRQ header byte (entry byte 0). */
enum ovmc_crq_header {
	OVMC_CRQ_FREE = 0x00,
	OVMC_CRQ_CMD = 0x80,
	OVMC_CRQ_INIT = 0xC0,
	OVMC_CRQ_TRANSPORT = 0xFF,
};

/* Format byte of an initialization entry (header 0xC0). */
enum ovmc_init_format {
	OVMC_INIT_REQUEST = 0x01,
	OVMC_INIT_COMPLETE = 0x02,
};

/* Event code of a transport event (header 0xFF). */
enum ovmc_transport_event {
	OVMC_EVENT_PARTNER_FAILED = 0x01,
	OVMC_EVENT_PARTNER_DEREGISTERED = 0x02,
	OVMC_EVENT_PARTNER_TERMINATED = 0x04,
	OVMC_EVENT_PARTNER_SUSPENDED = 0x06,
	OVMC_EVENT_PREPARE_SUSPEND = 0x09,
	OVMC_EVENT_RESUME = 0x0A,
};

/* VMC message type (byte 1 of a 0x80 entry). */
enum ovmc_msg_type {
	OVMC_MSG_CAP = 0x01,
	OVMC_MSG_CAP_RESP = 0x81,
	OVMC_MSG_OPEN = 0x02,
	OVMC_MSG_OPEN_RESP = 0x82,
	OVMC_MSG_CLOSE = 0x03,
	OVMC_MSG_CLOSE_RESP = 0x83,
	OVMC_MSG_ADD_BUF = 0x04,
	OVMC_MSG_ADD_BUF_RESP = 0x84,
	OVMC_MSG_REM_BUF = 0x05,
	OVMC_MSG_REM_BUF_RESP = 0x85,
	OVMC_MSG_SIGNAL = 0x06,
};

/* Capabilities response status (LoPAR and Linux agree). */
enum ovmc_cap_status {
	OVMC_CAP_OK = 0,
	OVMC_CAP_FAILURE = 1,
	OVMC_CAP_BAD_VERSION = 2,
};

/*
 * Add/remove buffer response status, Linux driver numbering: that is what a
 * real hypervisor interoperates with (LoPAR numbers these differently; see
 * docs/protocol.md).
 */
enum ovmc_buf_status {
	OVMC_BUF_SUCCESS = 0,
	OVMC_BUF_INVALID_HMC_INDEX = 1,
	OVMC_BUF_INVALID_BUFFER_ID = 2,
	OVMC_BUF_CLOSED_HMC = 3,
	OVMC_BUF_INTERFACE_FAILURE = 4,
	OVMC_BUF_NO_BUFFER = 5,
};

/* Add Buffer byte 3: who may use the buffer to send. */
enum ovmc_buf_owner {
	OVMC_OWNER_PARTITION = 0, /* "alpha": the management partition sends with it */
	OVMC_OWNER_HYPERVISOR = 1,
};

/* Administrative message (CAP, CAP_RESP). */
struct ovmc_caps {
	uint8_t status; /* CAP_RESP only; 0 in CAP */
	uint8_t max_hmcs;
	uint16_t pool_size;
	uint32_t mtu;
	uint16_t crq_size;
	uint16_t version;
};

/* HMC interface message (every other 0x80 type). Unused fields are 0. */
struct ovmc_hmc_msg {
	uint8_t status;    /* responses */
	uint8_t owner;     /* ADD_BUF */
	uint8_t session;   /* HMC session number */
	uint8_t index;     /* HMC index */
	uint16_t buffer_id;
	uint32_t lioba;    /* ADD_BUF: buffer address in the hypervisor window */
	uint32_t msg_len;  /* SIGNAL */
};

/*
 * A decoded CRQ entry. `header` selects the member: OVMC_CRQ_INIT uses only
 * `type` (the init format), OVMC_CRQ_TRANSPORT uses `type` (the event code),
 * OVMC_CRQ_CMD uses `type` (enum ovmc_msg_type) and `caps` for CAP/CAP_RESP,
 * `hmc` for the others.
 */
struct ovmc_entry {
	uint8_t header;
	uint8_t type;
	union {
		struct ovmc_caps caps;
		struct ovmc_hmc_msg hmc;
	};
};

/* Decode flags. */
enum {
	/*
	 * Accept non-zero bytes 8..11 of a SIGNAL. The Linux driver never
	 * initialises them; a hypervisor talking to it needs this.
	 */
	OVMC_DECODE_SIGNAL_PAD = 1u << 0,
	/* Accept any non-zero reserved byte (report nothing). */
	OVMC_DECODE_LENIENT = 1u << 1,
};

/*
 * Decode `len` bytes at `buf` into `*out`. Never reads past `len`.
 * Returns 0, or:
 *   OVMC_ERR_TRUNCATED  len < 16
 *   OVMC_ERR_EMPTY      header byte 0x00
 *   OVMC_ERR_BAD_HEADER header byte not 0x80/0xC0/0xFF
 *   OVMC_ERR_BAD_TYPE   unknown init format, transport event or message type
 *   OVMC_ERR_RESERVED   a reserved byte is not zero (see flags)
 *   OVMC_ERR_RANGE      a field outside its range (status, owner flag)
 * On error `*out` holds at least header and type when len >= 2.
 */
OVMC_API int ovmc_entry_decode(const uint8_t *buf, size_t len, unsigned flags,
			       struct ovmc_entry *out);

/*
 * Encode `*in` into exactly 16 bytes at `out`; reserved bytes are written
 * as zero. Returns 0, or OVMC_ERR_BAD_HEADER / OVMC_ERR_BAD_TYPE /
 * OVMC_ERR_RANGE for an entry that decode would reject.
 */
OVMC_API int ovmc_entry_encode(const struct ovmc_entry *in, uint8_t out[OVMC_CRQ_ENTRY_SIZE]);

/* Constructors for the common entries (fill every field). */
OVMC_API void ovmc_entry_init(struct ovmc_entry *e, enum ovmc_init_format fmt);
OVMC_API void ovmc_entry_caps(struct ovmc_entry *e, enum ovmc_msg_type type,
			      const struct ovmc_caps *caps);
OVMC_API void ovmc_entry_hmc(struct ovmc_entry *e, enum ovmc_msg_type type,
			     const struct ovmc_hmc_msg *msg);

/*
 * Register form used by H_SEND_CRQ: byte 0 of the entry is bits 63..56 of
 * `hi`, byte 8 is bits 63..56 of `lo`.
 */
OVMC_API void ovmc_entry_to_words(const uint8_t e[OVMC_CRQ_ENTRY_SIZE], uint64_t *hi,
				  uint64_t *lo);
OVMC_API void ovmc_entry_from_words(uint64_t hi, uint64_t lo, uint8_t e[OVMC_CRQ_ENTRY_SIZE]);

/* Printable name of a VMC message type, of a transport event code; "unknown" otherwise. */
OVMC_API const char *ovmc_msg_type_name(uint8_t type);
OVMC_API const char *ovmc_event_name(uint8_t code);

/*
 * One-line readable rendering of a raw 16-byte entry (decoded when valid,
 * with the error otherwise) into `buf`. Returns the length snprintf would
 * have written.
 */
OVMC_API int ovmc_entry_format(const uint8_t e[OVMC_CRQ_ENTRY_SIZE], char *buf, size_t size);

/* Big-endian helpers; shared by the cores and the router backend. */
static inline uint16_t ovmc_get_be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t ovmc_get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint64_t ovmc_get_be64(const uint8_t *p)
{
	return ((uint64_t)ovmc_get_be32(p) << 32) | ovmc_get_be32(p + 4);
}

static inline void ovmc_put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void ovmc_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void ovmc_put_be64(uint8_t *p, uint64_t v)
{
	ovmc_put_be32(p, (uint32_t)(v >> 32));
	ovmc_put_be32(p + 4, (uint32_t)v);
}

#ifdef __cplusplus
}
#endif
#endif
