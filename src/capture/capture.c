// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * pcapng capture of channel traffic (docs/capture.md). Blocks are written
 * in host byte order, as pcapng allows (the section header's byte-order
 * magic tells readers); the records inside are big-endian.
 */
#include <openvmc/capture.h>
#include <openvmc/platform.h>
#include <openvmc/wire.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define BT_SHB 0x0A0D0D0Au
#define BT_IDB 0x00000001u
#define BT_EPB 0x00000006u
#define BYTE_ORDER_MAGIC 0x1A2B3C4Du
#define OPT_END 0
#define OPT_SHB_USERAPPL 4
#define OPT_IF_NAME 2
#define OPT_IF_TSRESOL 9

#define REC_MAGIC0 0x4F /* 'O' */
#define REC_MAGIC1 0x56 /* 'V' */
#define REC_VERSION 1
#define REC_HDR 8
#define REC_RDMA_HDR 28 /* length, src liobn, src ioba, dst liobn, dst ioba */

struct ovmc_capture {
	int fd;
	uint8_t side;
	uint64_t written, failed;
	int error;
};

static size_t pad4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

/* Append a pcapng option (code, length, value padded to 4). */
static size_t put_option(uint8_t *p, uint16_t code, const void *val, uint16_t len)
{
	memcpy(p, &code, 2);
	memcpy(p + 2, &len, 2);
	memset(p + 4, 0, pad4(len));
	if (len)
		memcpy(p + 4, val, len);
	return 4 + pad4(len);
}

static int write_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t w = writev(fd, iov, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

static int write_headers(int fd, enum ovmc_capture_side side)
{
	uint8_t shb[64], idb[64];
	const char *app = "openvmc " OVMC_VERSION_STRING;
	const char *ifname = side == OVMC_CAPTURE_HYPERVISOR ? "vmc-hypervisor" : "vmc-partition";
	uint32_t u32;
	uint16_t u16;
	int64_t section_len = -1;
	uint8_t tsresol = 9; /* nanoseconds */
	size_t n = 0;
	struct iovec iov[2];

	u32 = BT_SHB;
	memcpy(shb + n, &u32, 4);
	n += 8; /* length filled below */
	u32 = BYTE_ORDER_MAGIC;
	memcpy(shb + n, &u32, 4);
	n += 4;
	u16 = 1;
	memcpy(shb + n, &u16, 2);
	u16 = 0;
	memcpy(shb + n + 2, &u16, 2);
	n += 4;
	memcpy(shb + n, &section_len, 8);
	n += 8;
	n += put_option(shb + n, OPT_SHB_USERAPPL, app, (uint16_t)strlen(app));
	n += put_option(shb + n, OPT_END, NULL, 0);
	u32 = (uint32_t)(n + 4);
	memcpy(shb + 4, &u32, 4);
	memcpy(shb + n, &u32, 4);
	n += 4;
	iov[0] = (struct iovec){shb, n};

	n = 0;
	u32 = BT_IDB;
	memcpy(idb, &u32, 4);
	n = 8;
	u16 = OVMC_CAPTURE_LINKTYPE;
	memcpy(idb + n, &u16, 2);
	u16 = 0;
	memcpy(idb + n + 2, &u16, 2);
	u32 = 0; /* no snap length limit */
	memcpy(idb + n + 4, &u32, 4);
	n += 8;
	n += put_option(idb + n, OPT_IF_NAME, ifname, (uint16_t)strlen(ifname));
	n += put_option(idb + n, OPT_IF_TSRESOL, &tsresol, 1);
	n += put_option(idb + n, OPT_END, NULL, 0);
	u32 = (uint32_t)(n + 4);
	memcpy(idb + 4, &u32, 4);
	memcpy(idb + n, &u32, 4);
	n += 4;
	iov[1] = (struct iovec){idb, n};
	return write_all(fd, iov, 2);
}

int ovmc_capture_open(const char *path, enum ovmc_capture_side side, struct ovmc_capture **out)
{
	struct ovmc_capture *c = calloc(1, sizeof(*c));
	int rc;

	if (!c)
		return -ENOMEM;
	c->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (c->fd < 0) {
		rc = -errno;
		free(c);
		return rc;
	}
	c->side = (uint8_t)side;
	rc = write_headers(c->fd, side);
	if (rc) {
		close(c->fd);
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

int ovmc_capture_event(struct ovmc_capture *c, const struct ovmc_trace_event *ev)
{
	uint8_t head[28 + REC_HDR + REC_RDMA_HDR], tail[8] = {0};
	struct timespec ts;
	uint64_t t;
	size_t rec_len, body_len, n = 0;
	const uint8_t *body;
	uint32_t u32;
	struct iovec iov[3];
	int rc;

	if (ev->kind == OVMC_TRACE_TO_HV || ev->kind == OVMC_TRACE_TO_PARTITION) {
		body = ev->entry;
		body_len = OVMC_CRQ_ENTRY_SIZE;
		rec_len = REC_HDR + body_len;
	} else if (ev->kind == OVMC_TRACE_RDMA) {
		body = ev->data;
		body_len = ev->data_len;
		rec_len = REC_HDR + REC_RDMA_HDR + body_len;
	} else {
		return 0;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	t = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;

	u32 = BT_EPB;
	memcpy(head, &u32, 4);
	u32 = (uint32_t)(32 + pad4(rec_len));
	memcpy(head + 4, &u32, 4);
	memcpy(tail + (pad4(rec_len) - rec_len), &u32, 4);
	u32 = 0;
	memcpy(head + 8, &u32, 4);
	u32 = (uint32_t)(t >> 32);
	memcpy(head + 12, &u32, 4);
	u32 = (uint32_t)t;
	memcpy(head + 16, &u32, 4);
	u32 = (uint32_t)rec_len;
	memcpy(head + 20, &u32, 4);
	memcpy(head + 24, &u32, 4);
	n = 28;

	head[n] = REC_MAGIC0;
	head[n + 1] = REC_MAGIC1;
	head[n + 2] = REC_VERSION;
	head[n + 3] = ev->kind == OVMC_TRACE_RDMA ? OVMC_CAPTURE_RDMA : OVMC_CAPTURE_CRQ;
	head[n + 4] = (ev->kind == OVMC_TRACE_TO_HV || (ev->kind == OVMC_TRACE_RDMA && ev->to_hv))
			      ? OVMC_CAPTURE_TO_HV
			      : OVMC_CAPTURE_TO_PARTITION;
	head[n + 5] = c->side;
	ovmc_put_be16(head + n + 6, (uint16_t)ev->partition);
	n += REC_HDR;
	if (ev->kind == OVMC_TRACE_RDMA) {
		ovmc_put_be32(head + n, (uint32_t)ev->args[0]);
		ovmc_put_be32(head + n + 4, (uint32_t)ev->args[1]);
		ovmc_put_be64(head + n + 8, ev->args[2]);
		ovmc_put_be32(head + n + 16, (uint32_t)ev->args[3]);
		ovmc_put_be64(head + n + 20, ev->args[4]);
		n += REC_RDMA_HDR;
	}
	iov[0] = (struct iovec){head, n};
	iov[1] = (struct iovec){(void *)body, body_len};
	iov[2] = (struct iovec){tail, pad4(rec_len) - rec_len + 4};
	rc = write_all(c->fd, iov, 3);
	if (rc) {
		c->failed++;
		if (!c->error)
			c->error = rc;
		return rc;
	}
	c->written++;
	return 0;
}

void ovmc_capture_trace(void *capture, const struct ovmc_trace_event *ev)
{
	ovmc_capture_event(capture, ev);
}

void ovmc_capture_counts(const struct ovmc_capture *c, uint64_t *written, uint64_t *failed)
{
	*written = c->written;
	*failed = c->failed;
}

int ovmc_capture_close(struct ovmc_capture *c)
{
	int rc;

	if (!c)
		return 0;
	rc = c->error;
	if (close(c->fd) && !rc)
		rc = -errno;
	free(c);
	return rc;
}

/* ---- reading ---- */

struct ovmc_capture_reader {
	uint8_t *buf;
	size_t len, pos;
	bool swap;
	uint64_t ts_unit_ns; /* of interface 0 */
	uint64_t ts_div;     /* for resolutions finer than 1 ns */
};

static uint32_t rd32(const struct ovmc_capture_reader *r, const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return r->swap ? __builtin_bswap32(v) : v;
}

static uint16_t rd16(const struct ovmc_capture_reader *r, const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return r->swap ? __builtin_bswap16(v) : v;
}

int ovmc_capture_reader_open(const char *path, struct ovmc_capture_reader **out)
{
	struct ovmc_capture_reader *r;
	struct stat st;
	uint32_t magic;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || st.st_size < 28) {
		rc = st.st_size < 28 ? -EPROTO : -errno;
		close(fd);
		return rc;
	}
	r = calloc(1, sizeof(*r));
	if (r)
		r->buf = malloc((size_t)st.st_size);
	if (!r || !r->buf) {
		free(r);
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, r->buf + got, (size_t)st.st_size - got);

		if (n <= 0) {
			rc = n < 0 ? -errno : -EPROTO;
			close(fd);
			ovmc_capture_reader_close(r);
			return rc;
		}
		got += (size_t)n;
	}
	close(fd);
	r->len = got;
	memcpy(&magic, r->buf + 8, 4);
	if (magic == __builtin_bswap32(BYTE_ORDER_MAGIC))
		r->swap = true;
	else if (magic != BYTE_ORDER_MAGIC)
		goto bad;
	if (rd32(r, r->buf) != BT_SHB)
		goto bad;
	r->ts_unit_ns = 1000; /* pcapng default: microseconds */
	r->ts_div = 1;
	*out = r;
	return 0;
bad:
	ovmc_capture_reader_close(r);
	return -EPROTO;
}

/* Interface description: the link type must be ours; note the resolution. */
static int parse_idb(struct ovmc_capture_reader *r, const uint8_t *b, size_t len)
{
	size_t off = 16;

	if (len < 20 || rd16(r, b + 8) != OVMC_CAPTURE_LINKTYPE)
		return -EPROTO;
	while (off + 4 <= len - 4) {
		uint16_t code = rd16(r, b + off), olen = rd16(r, b + off + 2);

		if (code == OPT_END || off + 4 + olen > len - 4)
			break;
		if (code == OPT_IF_TSRESOL && olen >= 1) {
			uint8_t v = b[off + 4];

			/* Only decimal resolutions; 10^-9 and coarser in ns. */
			if (v & 0x80 || v > 18)
				return -EPROTO;
			r->ts_unit_ns = 1;
			r->ts_div = 1;
			for (uint8_t i = v; i < 9; i++)
				r->ts_unit_ns *= 10;
			for (uint8_t i = 9; i < v; i++)
				r->ts_div *= 10;
		}
		off += 4 + pad4(olen);
	}
	return 0;
}

static int parse_record(struct ovmc_capture_reader *r, const uint8_t *b, size_t len,
			struct ovmc_capture_record *rec)
{
	uint64_t ts = ((uint64_t)rd32(r, b + 12) << 32) | rd32(r, b + 16);
	size_t cap = rd32(r, b + 20);
	const uint8_t *p = b + 28;

	if (cap > len - 32 || cap < REC_HDR || p[0] != REC_MAGIC0 || p[1] != REC_MAGIC1 ||
	    p[2] != REC_VERSION || p[4] > OVMC_CAPTURE_TO_PARTITION)
		return -EPROTO;
	memset(rec, 0, sizeof(*rec));
	rec->time_ns = ts * r->ts_unit_ns / r->ts_div;
	rec->kind = p[3];
	rec->dir = p[4];
	rec->side = p[5];
	rec->partition = ovmc_get_be16(p + 6);
	if (rec->kind == OVMC_CAPTURE_CRQ) {
		if (cap != REC_HDR + OVMC_CRQ_ENTRY_SIZE)
			return -EPROTO;
		rec->entry = p + REC_HDR;
		return 0;
	}
	if (rec->kind != OVMC_CAPTURE_RDMA || cap < REC_HDR + REC_RDMA_HDR)
		return -EPROTO;
	p += REC_HDR;
	rec->data_len = ovmc_get_be32(p);
	rec->src_liobn = ovmc_get_be32(p + 4);
	rec->src_ioba = ovmc_get_be64(p + 8);
	rec->dst_liobn = ovmc_get_be32(p + 16);
	rec->dst_ioba = ovmc_get_be64(p + 20);
	if (rec->data_len != cap - REC_HDR - REC_RDMA_HDR)
		return -EPROTO;
	rec->data = p + REC_RDMA_HDR;
	return 0;
}

int ovmc_capture_read(struct ovmc_capture_reader *r, struct ovmc_capture_record *rec)
{
	while (r->pos < r->len) {
		const uint8_t *b = r->buf + r->pos;
		uint32_t type, len;
		int rc;

		if (r->len - r->pos < 12)
			return -EPROTO;
		type = rd32(r, b);
		len = rd32(r, b + 4);
		if (len < 12 || len % 4 || len > r->len - r->pos || rd32(r, b + len - 4) != len)
			return -EPROTO;
		r->pos += len;
		if (type == BT_IDB) {
			rc = parse_idb(r, b, len);
			if (rc)
				return rc;
		} else if (type == BT_EPB) {
			if (len < 32)
				return -EPROTO;
			rc = parse_record(r, b, len, rec);
			return rc ? rc : 1;
		}
	}
	return 0;
}

void ovmc_capture_reader_close(struct ovmc_capture_reader *r)
{
	if (!r)
		return;
	free(r->buf);
	free(r);
}
