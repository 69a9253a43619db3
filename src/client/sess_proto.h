/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The session socket's messages (docs/session.md), shared by the client
 * library (src/client) and the daemon's front-end (src/sock). Both ends run
 * on one host: fixed-size structs in host byte order, one message per
 * SOCK_SEQPACKET record. Decoders check the record length before reading a
 * field.
 */
#ifndef OVMC_SESS_PROTO_H
#define OVMC_SESS_PROTO_H

#include <stdint.h>

#define OVMC_SESS_MAGIC 0x53434d56u /* "VMCS" on a little-endian host */
#define OVMC_SESS_VERSION 1u

/* Largest message payload the driver can carry (its MTU limit). */
#define OVMC_SESS_MAX_MSG 65536u
/* Largest request: a WRITE carrying a whole message. */
#define OVMC_SESS_MAX_REQ (sizeof(struct ovmc_sess_req) + OVMC_SESS_MAX_MSG)

/* The misc-device number stat() shows (major 10, a dynamic minor). */
#define OVMC_SESS_MISC_MAJOR 10u
#define OVMC_SESS_MISC_MINOR 242u

enum ovmc_sess_type {
	/* first record of a connection, client to daemon */
	OVMC_SESS_HELLO_DATA = 1, /* this connection is an open file; carries its own fd */
	OVMC_SESS_HELLO_CTL = 2,  /* this connection carries requests */
	/* requests on a control connection; those naming a file carry its fd */
	OVMC_SESS_SETHMCID = 3,
	OVMC_SESS_WRITE = 4,
	OVMC_SESS_READ_CHECK = 5,
	OVMC_SESS_QUERY = 6,
	OVMC_SESS_REQUESTVMC = 7,
	OVMC_SESS_IOCTL = 8,
	OVMC_SESS_STAT = 9,
	/* data connection, client to daemon: a message was taken */
	OVMC_SESS_ACK = 10,
	/* daemon to client */
	OVMC_SESS_REPLY = 11,
};

struct ovmc_sess_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
};

/*
 * A request (or a HELLO). `arg` is the length for WRITE (the payload
 * follows) and READ_CHECK, the ioctl number for IOCTL; SETHMCID's 32 id
 * bytes follow the struct.
 */
struct ovmc_sess_req {
	struct ovmc_sess_hdr hdr;
	uint32_t arg;
	uint32_t reserved;
};

/* ACK: `taken` bytes of a `len`-byte message went to the reader. */
struct ovmc_sess_ack {
	struct ovmc_sess_hdr hdr;
	uint32_t taken;
	uint32_t len;
};

/*
 * The answer to a HELLO or a request: rc is 0 (or a byte count) or a
 * negative errno. The other fields are filled where they mean something:
 * QUERY (have_vmc, state, drc_index), REQUESTVMC (drc_index), every answer
 * on a file (mtu: the largest read() the driver accepts now), STAT and
 * HELLO (mode, uid, gid, birth).
 */
struct ovmc_sess_reply {
	struct ovmc_sess_hdr hdr;
	int64_t rc;
	int32_t have_vmc;
	int32_t state;
	int32_t drc_index;
	uint32_t mtu;
	uint32_t mode; /* permission bits */
	uint32_t uid;
	uint32_t gid;
	uint32_t reserved;
	int64_t birth_sec; /* CLOCK_REALTIME of the daemon's start */
	int64_t birth_nsec;
};

_Static_assert(sizeof(struct ovmc_sess_hdr) == 8, "header is 8 bytes");
_Static_assert(sizeof(struct ovmc_sess_req) == 16, "request is 16 bytes");
_Static_assert(sizeof(struct ovmc_sess_ack) == 16, "ack is 16 bytes");
_Static_assert(sizeof(struct ovmc_sess_reply) == 64, "reply is 64 bytes");

#define OVMC_SESS_HDR(t)                                                                     \
	((struct ovmc_sess_hdr){.magic = OVMC_SESS_MAGIC, .version = OVMC_SESS_VERSION,      \
				.type = (uint16_t)(t)})

static inline int ovmc_sess_hdr_ok(const struct ovmc_sess_hdr *h, uint16_t type)
{
	return h->magic == OVMC_SESS_MAGIC && h->version == OVMC_SESS_VERSION && h->type == type;
}

#endif
