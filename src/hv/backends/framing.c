// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Frame codec for the exec and socket backends (framing.h): encoder,
 * length-first stream decoder, and a non-blocking output buffer.
 */
#include "framing.h"

#include <openvmc/common.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

/* ---- names ---- */

const char *ovmc_frame_strerror(int err)
{
	switch (err) {
	case OVMC_FRAME_ERR_LENGTH:
		return "frame length out of range";
	case OVMC_FRAME_ERR_TYPE:
		return "unknown frame type";
	case OVMC_FRAME_ERR_FLAGS:
		return "frame flags not zero";
	case OVMC_FRAME_ERR_RESERVED:
		return "frame reserved bytes not zero";
	case OVMC_FRAME_ERR_PAYLOAD:
		return "payload size wrong for the frame type";
	case OVMC_FRAME_ERR_TRUNCATED:
		return "frame truncated";
	}
	return ovmc_strerror(err);
}

const char *ovmc_frame_type_name(uint8_t type)
{
	switch (type) {
	case OVMC_FRAME_OPEN:
		return "OPEN";
	case OVMC_FRAME_MESSAGE:
		return "MESSAGE";
	case OVMC_FRAME_CLOSE:
		return "CLOSE";
	}
	return "unknown";
}

/* ---- encoding and header checks ---- */

int ovmc_frame_check_payload(uint8_t type, size_t len)
{
	switch (type) {
	case OVMC_FRAME_OPEN:
		return len == OVMC_HMC_ID_LEN ? 0 : OVMC_FRAME_ERR_PAYLOAD;
	case OVMC_FRAME_MESSAGE:
		return len >= 1 && len <= OVMC_FRAME_MAX_PAYLOAD ? 0 : OVMC_FRAME_ERR_PAYLOAD;
	case OVMC_FRAME_CLOSE:
		return len == 0 ? 0 : OVMC_FRAME_ERR_PAYLOAD;
	}
	return OVMC_FRAME_ERR_TYPE;
}

int ovmc_frame_encode(const struct ovmc_frame *f, uint8_t *out, size_t size)
{
	int rc = ovmc_frame_check_payload(f->type, f->len);

	if (rc)
		return rc;
	if (size < OVMC_FRAME_HDR_LEN + f->len)
		return -ENOSPC;
	ovmc_put_be32(out + OVMC_FRAME_OFF_LEN, (uint32_t)(OVMC_FRAME_MIN_LEN + f->len));
	out[OVMC_FRAME_OFF_TYPE] = f->type;
	out[OVMC_FRAME_OFF_FLAGS] = 0;
	ovmc_put_be16(out + OVMC_FRAME_OFF_PARTITION, f->partition);
	out[OVMC_FRAME_OFF_INDEX] = f->index;
	out[OVMC_FRAME_OFF_SESSION] = f->session;
	ovmc_put_be16(out + OVMC_FRAME_OFF_RESERVED, 0);
	if (f->len)
		memcpy(out + OVMC_FRAME_HDR_LEN, f->payload, f->len);
	return (int)(OVMC_FRAME_HDR_LEN + f->len);
}

static int check_length(const uint8_t *hdr)
{
	uint32_t len = ovmc_get_be32(hdr + OVMC_FRAME_OFF_LEN);

	return len < OVMC_FRAME_MIN_LEN || len > OVMC_FRAME_MAX_LEN ? OVMC_FRAME_ERR_LENGTH : 0;
}

/* The twelve header bytes, length already checked: fill `out` but payload. */
static int check_header(const uint8_t *hdr, struct ovmc_frame *out)
{
	size_t len = ovmc_get_be32(hdr + OVMC_FRAME_OFF_LEN) - OVMC_FRAME_MIN_LEN;
	uint8_t type = hdr[OVMC_FRAME_OFF_TYPE];

	if (type != OVMC_FRAME_OPEN && type != OVMC_FRAME_MESSAGE && type != OVMC_FRAME_CLOSE)
		return OVMC_FRAME_ERR_TYPE;
	if (hdr[OVMC_FRAME_OFF_FLAGS])
		return OVMC_FRAME_ERR_FLAGS;
	if (ovmc_get_be16(hdr + OVMC_FRAME_OFF_RESERVED))
		return OVMC_FRAME_ERR_RESERVED;
	if (ovmc_frame_check_payload(type, len))
		return OVMC_FRAME_ERR_PAYLOAD;
	*out = (struct ovmc_frame){
		.type = type,
		.partition = ovmc_get_be16(hdr + OVMC_FRAME_OFF_PARTITION),
		.index = hdr[OVMC_FRAME_OFF_INDEX],
		.session = hdr[OVMC_FRAME_OFF_SESSION],
		.len = len,
	};
	return 0;
}

int ovmc_frame_parse(const uint8_t *buf, size_t len, struct ovmc_frame *out)
{
	struct ovmc_frame f;
	int rc;

	if (len < OVMC_FRAME_LEN_FIELD)
		return OVMC_FRAME_ERR_TRUNCATED;
	rc = check_length(buf);
	if (rc)
		return rc;
	if (len < OVMC_FRAME_HDR_LEN)
		return OVMC_FRAME_ERR_TRUNCATED;
	rc = check_header(buf, &f);
	if (rc)
		return rc;
	if (len - OVMC_FRAME_HDR_LEN < f.len)
		return OVMC_FRAME_ERR_TRUNCATED;
	f.payload = buf + OVMC_FRAME_HDR_LEN;
	*out = f;
	return (int)(OVMC_FRAME_HDR_LEN + f.len);
}

/* ---- stream decoder ---- */

void ovmc_frame_decoder_init(struct ovmc_frame_decoder *d)
{
	memset(d, 0, sizeof(*d));
}

void ovmc_frame_decoder_reset(struct ovmc_frame_decoder *d)
{
	d->have = 0;
	d->need = 0;
	d->error = 0;
}

void ovmc_frame_decoder_free(struct ovmc_frame_decoder *d)
{
	free(d->payload);
	memset(d, 0, sizeof(*d));
}

static size_t take(struct ovmc_frame_decoder *d, size_t upto, const uint8_t *data, size_t avail)
{
	size_t n = upto - d->have;

	if (n > avail)
		n = avail;
	memcpy(d->hdr + d->have, data, n);
	d->have += n;
	return n;
}

int ovmc_frame_decode(struct ovmc_frame_decoder *d, const uint8_t *data, size_t len, size_t *used,
		      struct ovmc_frame *out)
{
	size_t pos = 0, got, n;
	struct ovmc_frame f;
	int rc;

	*used = 0;
	if (d->error)
		return d->error;
	if (d->have < OVMC_FRAME_LEN_FIELD) {
		pos += take(d, OVMC_FRAME_LEN_FIELD, data, len);
		*used = pos;
		if (d->have < OVMC_FRAME_LEN_FIELD)
			return 0;
		rc = check_length(d->hdr);
		if (rc)
			return d->error = rc;
	}
	if (d->have < OVMC_FRAME_HDR_LEN) {
		pos += take(d, OVMC_FRAME_HDR_LEN, data + pos, len - pos);
		*used = pos;
		if (d->have < OVMC_FRAME_HDR_LEN)
			return 0;
		rc = check_header(d->hdr, &f);
		if (rc)
			return d->error = rc;
		d->need = f.len;
	}
	if (d->cap < d->need) {
		uint8_t *p = realloc(d->payload, d->need);

		if (!p)
			return -ENOMEM;
		d->payload = p;
		d->cap = d->need;
	}
	got = d->have - OVMC_FRAME_HDR_LEN;
	n = d->need - got;
	if (n > len - pos)
		n = len - pos;
	if (n)
		memcpy(d->payload + got, data + pos, n);
	pos += n;
	d->have += n;
	*used = pos;
	if (d->have < OVMC_FRAME_HDR_LEN + d->need)
		return 0;
	check_header(d->hdr, out);
	out->payload = d->payload;
	d->have = 0;
	d->need = 0;
	d->frames++;
	return 1;
}

/* ---- output buffer ---- */

struct ovmc_outbuf_chunk {
	struct ovmc_outbuf_chunk *next;
	size_t len;
	uint8_t data[];
};

/* iovecs handed to one write. */
#define OUTBUF_IOV 64

void ovmc_outbuf_init(struct ovmc_outbuf *ob, size_t limit, bool socket)
{
	memset(ob, 0, sizeof(*ob));
	ob->limit = limit;
	ob->socket = socket;
}

int ovmc_outbuf_put(struct ovmc_outbuf *ob, const struct ovmc_frame *f)
{
	size_t size = OVMC_FRAME_HDR_LEN + f->len;
	struct ovmc_outbuf_chunk *c;
	int rc = ovmc_frame_check_payload(f->type, f->len);

	if (rc)
		return rc;
	if (ob->bytes && (ob->bytes > ob->limit || size > ob->limit - ob->bytes)) {
		ob->overflows++;
		return -ENOBUFS;
	}
	c = malloc(sizeof(*c) + size);
	if (!c)
		return -ENOMEM;
	c->next = NULL;
	c->len = size;
	ovmc_frame_encode(f, c->data, size);
	if (ob->tail)
		ob->tail->next = c;
	else
		ob->head = c;
	ob->tail = c;
	ob->bytes += size;
	ob->frames++;
	return 0;
}

/* writev() on a pipe with SIGPIPE held back (and swallowed if raised). */
static ssize_t pipe_writev(int fd, const struct iovec *iov, int n)
{
	sigset_t pipe_set, old, pending;
	bool was_pending;
	ssize_t r;
	int err;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigpending(&pending);
	was_pending = sigismember(&pending, SIGPIPE) == 1;
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	r = writev(fd, iov, n);
	err = errno;
	if (r < 0 && err == EPIPE && !was_pending) {
		static const struct timespec zero;

		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = err;
	return r;
}

static void consume(struct ovmc_outbuf *ob, size_t n)
{
	ob->bytes -= n;
	while (n) {
		struct ovmc_outbuf_chunk *c = ob->head;
		size_t left = c->len - ob->head_off;

		if (n < left) {
			ob->head_off += n;
			return;
		}
		n -= left;
		ob->head = c->next;
		if (!ob->head)
			ob->tail = NULL;
		ob->head_off = 0;
		ob->frames--;
		ob->written++;
		free(c);
	}
}

int ovmc_outbuf_flush(struct ovmc_outbuf *ob, int fd)
{
	while (ob->head) {
		struct iovec iov[OUTBUF_IOV];
		struct ovmc_outbuf_chunk *c = ob->head;
		size_t total = 0;
		int n = 0;
		ssize_t r;

		for (; c && n < OUTBUF_IOV; c = c->next, n++) {
			size_t off = n == 0 ? ob->head_off : 0;

			iov[n].iov_base = c->data + off;
			iov[n].iov_len = c->len - off;
			total += c->len - off;
		}
		if (ob->socket) {
			struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};

			r = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		} else {
			r = pipe_writev(fd, iov, n);
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -errno;
		}
		consume(ob, (size_t)r);
		if ((size_t)r < total)
			return 0; /* the fd is full; poll for EPOLLOUT */
	}
	return 0;
}

size_t ovmc_outbuf_pending(const struct ovmc_outbuf *ob)
{
	return ob->frames;
}

size_t ovmc_outbuf_discard(struct ovmc_outbuf *ob)
{
	size_t lost = ob->frames;

	while (ob->head) {
		struct ovmc_outbuf_chunk *c = ob->head;

		ob->head = c->next;
		free(c);
	}
	ob->tail = NULL;
	ob->head_off = 0;
	ob->bytes = 0;
	ob->frames = 0;
	return lost;
}

void ovmc_outbuf_free(struct ovmc_outbuf *ob)
{
	ovmc_outbuf_discard(ob);
}
