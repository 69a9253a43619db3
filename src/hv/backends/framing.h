/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The frame format spoken between the "exec" and "socket" backends and a
 * program playing the hypervisor's layer 2 (docs/framing.md):
 *
 *   off size field
 *    0   4   length of the rest of the frame, big-endian (8 .. 8 + 65536)
 *    4   1   type: 1 OPEN, 2 MESSAGE, 3 CLOSE
 *    5   1   flags (0)
 *    6   2   partition id, big-endian
 *    8   1   HMC index
 *    9   1   session number
 *   10   2   reserved (0)
 *   12   -   payload: the HMC id (OPEN, 32 bytes), the message (MESSAGE,
 *            at least one byte), nothing (CLOSE)
 *
 * Three pieces, none of which knows about sessions or the cores: a one-shot
 * encoder, an incremental decoder over a byte stream, and an output buffer
 * that writes what a non-blocking fd takes and keeps the rest.
 *
 * Errors are negative: the frame codes below, or -errno.
 */
#ifndef OVMC_BACKENDS_FRAMING_H
#define OVMC_BACKENDS_FRAMING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openvmc/wire.h>

#define OVMC_FRAME_HDR_LEN 12u	      /* bytes before the payload */
#define OVMC_FRAME_LEN_FIELD 4u	      /* the length field itself */
#define OVMC_FRAME_MAX_PAYLOAD 65536u /* the largest MTU a core negotiates */
#define OVMC_FRAME_MIN_LEN (OVMC_FRAME_HDR_LEN - OVMC_FRAME_LEN_FIELD)
#define OVMC_FRAME_MAX_LEN (OVMC_FRAME_MIN_LEN + OVMC_FRAME_MAX_PAYLOAD)

/* Byte offsets inside the header. */
enum ovmc_frame_offset {
	OVMC_FRAME_OFF_LEN = 0,	      /* 4 bytes */
	OVMC_FRAME_OFF_TYPE = 4,      /* 1 byte */
	OVMC_FRAME_OFF_FLAGS = 5,     /* 1 byte */
	OVMC_FRAME_OFF_PARTITION = 6, /* 2 bytes */
	OVMC_FRAME_OFF_INDEX = 8,     /* 1 byte */
	OVMC_FRAME_OFF_SESSION = 9,   /* 1 byte */
	OVMC_FRAME_OFF_RESERVED = 10, /* 2 bytes */
};

enum ovmc_frame_type {
	OVMC_FRAME_OPEN = 1,	/* hypervisor -> program; payload: the HMC id */
	OVMC_FRAME_MESSAGE = 2, /* both ways; payload: one layer-2 message */
	OVMC_FRAME_CLOSE = 3,	/* hypervisor -> program; no payload */
};

/* Frame error codes (library error space, next to OVMC_ERR_* and the
 * router's -110x codes). */
enum ovmc_frame_error {
	OVMC_FRAME_ERR_LENGTH = -1201,	  /* length field below 8 or above 8 + 65536 */
	OVMC_FRAME_ERR_TYPE = -1202,	  /* type not OPEN, MESSAGE or CLOSE */
	OVMC_FRAME_ERR_FLAGS = -1203,	  /* flags byte not 0 */
	OVMC_FRAME_ERR_RESERVED = -1204,  /* bytes 10-11 not 0 */
	OVMC_FRAME_ERR_PAYLOAD = -1205,	  /* payload size wrong for the type */
	OVMC_FRAME_ERR_TRUNCATED = -1206, /* fewer bytes than the frame needs */
};

/* A decoded frame, or one to encode. `payload` is borrowed. */
struct ovmc_frame {
	uint8_t type; /* enum ovmc_frame_type */
	uint16_t partition;
	uint8_t index;
	uint8_t session;
	const uint8_t *payload;
	size_t len;
};

/* Name of a frame error code; falls back to ovmc_strerror(). Never NULL. */
const char *ovmc_frame_strerror(int err);
/* "OPEN", "MESSAGE", "CLOSE" or "unknown". */
const char *ovmc_frame_type_name(uint8_t type);

/* Whether `len` payload bytes fit a frame of `type`: 0 or
 * OVMC_FRAME_ERR_TYPE / OVMC_FRAME_ERR_PAYLOAD. */
int ovmc_frame_check_payload(uint8_t type, size_t len);

/*
 * Encode `f` into `out` (OVMC_FRAME_HDR_LEN + f->len bytes). Returns the
 * bytes written, OVMC_FRAME_ERR_TYPE / OVMC_FRAME_ERR_PAYLOAD for a frame
 * the decoder would refuse, or -ENOSPC if `size` is too small.
 */
int ovmc_frame_encode(const struct ovmc_frame *f, uint8_t *out, size_t size);

/*
 * Decode one complete frame at the start of `buf`. Returns the bytes it
 * spans, OVMC_FRAME_ERR_TRUNCATED if `len` does not hold all of it, or the
 * error of its header (as the stream decoder reports it).
 */
int ovmc_frame_parse(const uint8_t *buf, size_t len, struct ovmc_frame *out);

/*
 * Incremental decoder. The length field is checked as soon as its four
 * bytes are in, the rest of the header when its twelve bytes are in; the
 * payload buffer grows only to a checked length. An error is sticky until
 * ovmc_frame_decoder_reset(): a stream that broke once cannot be trusted
 * to be in step again.
 */
struct ovmc_frame_decoder {
	uint8_t hdr[OVMC_FRAME_HDR_LEN];
	size_t have;	  /* bytes of the current frame received */
	size_t need;	  /* payload bytes of the current frame (once known) */
	uint8_t *payload; /* grows to the largest payload seen */
	size_t cap;
	int error;	 /* sticky, 0 if none */
	uint64_t frames; /* frames decoded */
};

void ovmc_frame_decoder_init(struct ovmc_frame_decoder *d);
/* Forget a partial frame and a sticky error (new stream); keeps memory. */
void ovmc_frame_decoder_reset(struct ovmc_frame_decoder *d);
void ovmc_frame_decoder_free(struct ovmc_frame_decoder *d);

/*
 * Consume bytes of `data` until one frame is complete. *used is set to the
 * bytes consumed. Returns 1 (a frame in *out; its payload valid until the
 * next call), 0 (all bytes consumed, the frame is not complete), or a
 * negative error: an OVMC_FRAME_ERR_* code (sticky; *used then covers the
 * bytes that made the fault visible) or -ENOMEM (not sticky: call again).
 */
int ovmc_frame_decode(struct ovmc_frame_decoder *d, const uint8_t *data, size_t len, size_t *used,
		      struct ovmc_frame *out);

/*
 * Output buffer: whole frames queued in order, written to a non-blocking
 * fd as far as it takes them. Never blocks and never raises SIGPIPE.
 */
struct ovmc_outbuf_chunk;
struct ovmc_outbuf {
	struct ovmc_outbuf_chunk *head, *tail;
	size_t head_off;    /* bytes of the head chunk already written */
	size_t bytes;	    /* bytes not yet written */
	size_t frames;	    /* frames not completely written */
	size_t limit;	    /* most bytes it holds */
	bool socket;	    /* fd is a socket: send(MSG_NOSIGNAL) */
	uint64_t overflows; /* frames refused for the limit */
	uint64_t written;   /* frames completely written */
};

/* `limit`: bytes it may hold (at least one largest frame is always taken
 * by an empty buffer). */
void ovmc_outbuf_init(struct ovmc_outbuf *ob, size_t limit, bool socket);
/*
 * Queue one frame, whole or not at all. Returns 0, -ENOBUFS (the limit
 * would be exceeded: counted in `overflows`; the caller drops and logs),
 * -ENOMEM, or the encoder's error.
 */
int ovmc_outbuf_put(struct ovmc_outbuf *ob, const struct ovmc_frame *f);
/*
 * Write queued bytes to `fd` until it would block or all are out.
 * Returns 0 (check ovmc_outbuf_pending()) or -errno of a write that
 * failed (-EPIPE: the reader is gone); what was not written stays.
 */
int ovmc_outbuf_flush(struct ovmc_outbuf *ob, int fd);
/* Frames not completely written. */
size_t ovmc_outbuf_pending(const struct ovmc_outbuf *ob);
/* Forget what is queued (a broken connection); returns the frames lost. */
size_t ovmc_outbuf_discard(struct ovmc_outbuf *ob);
void ovmc_outbuf_free(struct ovmc_outbuf *ob);

#endif
