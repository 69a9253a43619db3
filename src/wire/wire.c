// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * CRQ entry codec. Every VMC message type is described once in msg_layouts[]
 * by the set of fields it carries; decode, encode, the reserved-byte check
 * and the printer all derive their behaviour from that one description so
 * they cannot disagree about a layout.
 */
#include <openvmc/wire.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Byte offsets inside an entry (docs/protocol.md 1.2, 4.2). */
enum {
	OFF_HEADER = 0,
	OFF_TYPE = 1,
	OFF_STATUS = 2,
	/* HMC interface messages */
	OFF_OWNER = 3,
	OFF_SESSION = 4,
	OFF_INDEX = 5,
	OFF_BUFFER_ID = 6,
	OFF_SIGNAL_PAD = 8,
	OFF_LIOBA = 12,
	OFF_MSG_LEN = 12,
	/* administrative messages */
	OFF_MAX_HMCS = 5,
	OFF_POOL_SIZE = 6,
	OFF_MTU = 8,
	OFF_CRQ_SIZE = 12,
	OFF_VERSION = 14,
};

/* Fields a message type carries; everything else in bytes 2..15 is reserved. */
enum {
	F_CAPS = 1u << 0, /* administrative layout: max_hmcs..version */
	F_STATUS = 1u << 1,
	F_OWNER = 1u << 2,
	F_SESSION = 1u << 3,
	F_INDEX = 1u << 4,
	F_BUFFER_ID = 1u << 5,
	F_LIOBA = 1u << 6,
	F_MSG_LEN = 1u << 7,
};

#define F_SLOT (F_SESSION | F_INDEX)
#define ANY_STATUS 0xFF

/* Masks of entry bytes, bit n standing for byte n. */
#define BYTES(off, n) ((uint16_t)(((1u << (n)) - 1) << (off)))
#define HEADER_BYTES BYTES(OFF_HEADER, 2)
#define SIGNAL_PAD_BYTES BYTES(OFF_SIGNAL_PAD, 4)

struct msg_layout {
	uint8_t type;
	uint8_t fields;
	uint8_t status_max; /* highest status accepted when F_STATUS is set */
	const char *name;
};

static const struct msg_layout msg_layouts[] = {
	{OVMC_MSG_CAP, F_CAPS, 0, "CAP"},
	{OVMC_MSG_CAP_RESP, F_CAPS | F_STATUS, OVMC_CAP_BAD_VERSION, "CAP_RESP"},
	{OVMC_MSG_OPEN, F_SLOT | F_BUFFER_ID, 0, "OPEN"},
	/* Linux reads any non-zero status as failure, so no value is out of range. */
	{OVMC_MSG_OPEN_RESP, F_STATUS | F_SLOT | F_BUFFER_ID, ANY_STATUS, "OPEN_RESP"},
	{OVMC_MSG_CLOSE, F_SLOT, 0, "CLOSE"},
	{OVMC_MSG_CLOSE_RESP, F_STATUS | F_SLOT, ANY_STATUS, "CLOSE_RESP"},
	{OVMC_MSG_ADD_BUF, F_OWNER | F_SLOT | F_BUFFER_ID | F_LIOBA, 0, "ADD_BUF"},
	{OVMC_MSG_ADD_BUF_RESP, F_STATUS | F_SLOT | F_BUFFER_ID, OVMC_BUF_INTERFACE_FAILURE,
	 "ADD_BUF_RESP"},
	{OVMC_MSG_REM_BUF, F_SLOT, 0, "REM_BUF"},
	{OVMC_MSG_REM_BUF_RESP, F_STATUS | F_SLOT | F_BUFFER_ID, OVMC_BUF_NO_BUFFER,
	 "REM_BUF_RESP"},
	{OVMC_MSG_SIGNAL, F_SLOT | F_BUFFER_ID | F_MSG_LEN, 0, "SIGNAL"},
};

static const struct msg_layout *find_layout(uint8_t type)
{
	for (size_t i = 0; i < sizeof(msg_layouts) / sizeof(msg_layouts[0]); i++) {
		if (msg_layouts[i].type == type)
			return &msg_layouts[i];
	}
	return NULL;
}

static uint16_t used_bytes(const struct msg_layout *l)
{
	uint16_t used = HEADER_BYTES;

	if (l->fields & F_CAPS)
		used |= BYTES(OFF_MAX_HMCS, 1) | BYTES(OFF_POOL_SIZE, 2) | BYTES(OFF_MTU, 4) |
			BYTES(OFF_CRQ_SIZE, 2) | BYTES(OFF_VERSION, 2);
	if (l->fields & F_STATUS)
		used |= BYTES(OFF_STATUS, 1);
	if (l->fields & F_OWNER)
		used |= BYTES(OFF_OWNER, 1);
	if (l->fields & F_SESSION)
		used |= BYTES(OFF_SESSION, 1);
	if (l->fields & F_INDEX)
		used |= BYTES(OFF_INDEX, 1);
	if (l->fields & F_BUFFER_ID)
		used |= BYTES(OFF_BUFFER_ID, 2);
	if (l->fields & F_LIOBA)
		used |= BYTES(OFF_LIOBA, 4);
	if (l->fields & F_MSG_LEN)
		used |= BYTES(OFF_MSG_LEN, 4);
	return used;
}

static int check_reserved(const uint8_t *buf, uint16_t used)
{
	for (unsigned i = 0; i < OVMC_CRQ_ENTRY_SIZE; i++) {
		if (!(used & (1u << i)) && buf[i])
			return OVMC_ERR_RESERVED;
	}
	return 0;
}

static bool init_format_known(uint8_t fmt)
{
	return fmt == OVMC_INIT_REQUEST || fmt == OVMC_INIT_COMPLETE;
}

/*
 * Every row of the LoPAR table up to 0x0A is accepted, the blank ones too:
 * a transport event is always a reset for the VMC, whatever its code, and
 * 0x07/0x08 do occur (vNIC failover).
 */
static bool event_known(uint8_t code)
{
	return code >= OVMC_EVENT_PARTNER_FAILED && code <= OVMC_EVENT_RESUME;
}

/* Range checks shared by decode and encode so that both accept the same values. */
static int check_ranges(const struct msg_layout *l, const struct ovmc_entry *e)
{
	uint8_t status = (l->fields & F_CAPS) ? e->caps.status : e->hmc.status;

	if ((l->fields & F_STATUS) && status > l->status_max)
		return OVMC_ERR_RANGE;
	if ((l->fields & F_OWNER) && e->hmc.owner > OVMC_OWNER_HYPERVISOR)
		return OVMC_ERR_RANGE;
	return 0;
}

static void read_caps(const struct msg_layout *l, const uint8_t *buf, struct ovmc_caps *c)
{
	if (l->fields & F_STATUS)
		c->status = buf[OFF_STATUS];
	c->max_hmcs = buf[OFF_MAX_HMCS];
	c->pool_size = ovmc_get_be16(buf + OFF_POOL_SIZE);
	c->mtu = ovmc_get_be32(buf + OFF_MTU);
	c->crq_size = ovmc_get_be16(buf + OFF_CRQ_SIZE);
	c->version = ovmc_get_be16(buf + OFF_VERSION);
}

static void read_hmc(const struct msg_layout *l, const uint8_t *buf, struct ovmc_hmc_msg *m)
{
	if (l->fields & F_STATUS)
		m->status = buf[OFF_STATUS];
	if (l->fields & F_OWNER)
		m->owner = buf[OFF_OWNER];
	if (l->fields & F_SESSION)
		m->session = buf[OFF_SESSION];
	if (l->fields & F_INDEX)
		m->index = buf[OFF_INDEX];
	if (l->fields & F_BUFFER_ID)
		m->buffer_id = ovmc_get_be16(buf + OFF_BUFFER_ID);
	if (l->fields & F_LIOBA)
		m->lioba = ovmc_get_be32(buf + OFF_LIOBA);
	if (l->fields & F_MSG_LEN)
		m->msg_len = ovmc_get_be32(buf + OFF_MSG_LEN);
}

/* `buf` must be zeroed: bytes of fields the type does not carry are skipped. */
static void write_caps(const struct msg_layout *l, const struct ovmc_caps *c, uint8_t *buf)
{
	if (l->fields & F_STATUS)
		buf[OFF_STATUS] = c->status;
	buf[OFF_MAX_HMCS] = c->max_hmcs;
	ovmc_put_be16(buf + OFF_POOL_SIZE, c->pool_size);
	ovmc_put_be32(buf + OFF_MTU, c->mtu);
	ovmc_put_be16(buf + OFF_CRQ_SIZE, c->crq_size);
	ovmc_put_be16(buf + OFF_VERSION, c->version);
}

/* `buf` must be zeroed, as for write_caps(). */
static void write_hmc(const struct msg_layout *l, const struct ovmc_hmc_msg *m, uint8_t *buf)
{
	if (l->fields & F_STATUS)
		buf[OFF_STATUS] = m->status;
	if (l->fields & F_OWNER)
		buf[OFF_OWNER] = m->owner;
	if (l->fields & F_SESSION)
		buf[OFF_SESSION] = m->session;
	if (l->fields & F_INDEX)
		buf[OFF_INDEX] = m->index;
	if (l->fields & F_BUFFER_ID)
		ovmc_put_be16(buf + OFF_BUFFER_ID, m->buffer_id);
	if (l->fields & F_LIOBA)
		ovmc_put_be32(buf + OFF_LIOBA, m->lioba);
	if (l->fields & F_MSG_LEN)
		ovmc_put_be32(buf + OFF_MSG_LEN, m->msg_len);
}

static int decode_cmd(const uint8_t *buf, unsigned flags, struct ovmc_entry *out)
{
	const struct msg_layout *l = find_layout(out->type);
	int err;

	if (!l)
		return OVMC_ERR_BAD_TYPE;
	if (l->fields & F_CAPS)
		read_caps(l, buf, &out->caps);
	else
		read_hmc(l, buf, &out->hmc);
	if (!(flags & OVMC_DECODE_LENIENT)) {
		uint16_t used = used_bytes(l);

		if (l->type == OVMC_MSG_SIGNAL && (flags & OVMC_DECODE_SIGNAL_PAD))
			used |= SIGNAL_PAD_BYTES;
		err = check_reserved(buf, used);
		if (err)
			return err;
	}
	return check_ranges(l, out);
}

int ovmc_entry_decode(const uint8_t *buf, size_t len, unsigned flags, struct ovmc_entry *out)
{
	memset(out, 0, sizeof(*out));
	if (len > OFF_HEADER)
		out->header = buf[OFF_HEADER];
	if (len > OFF_TYPE)
		out->type = buf[OFF_TYPE];
	if (len < OVMC_CRQ_ENTRY_SIZE)
		return OVMC_ERR_TRUNCATED;

	switch (out->header) {
	case OVMC_CRQ_FREE:
		return OVMC_ERR_EMPTY;
	case OVMC_CRQ_INIT:
		if (!init_format_known(out->type))
			return OVMC_ERR_BAD_TYPE;
		if (flags & OVMC_DECODE_LENIENT)
			return 0;
		return check_reserved(buf, HEADER_BYTES);
	case OVMC_CRQ_TRANSPORT:
		/* PAPR leaves bytes 2..15 unspecified: nothing to check there. */
		return event_known(out->type) ? 0 : OVMC_ERR_BAD_TYPE;
	case OVMC_CRQ_CMD:
		return decode_cmd(buf, flags, out);
	default:
		return OVMC_ERR_BAD_HEADER;
	}
}

int ovmc_entry_encode(const struct ovmc_entry *in, uint8_t out[OVMC_CRQ_ENTRY_SIZE])
{
	const struct msg_layout *l = NULL;
	int err;

	/* Validate everything before the first write so a failed call leaves `out` alone. */
	switch (in->header) {
	case OVMC_CRQ_INIT:
		if (!init_format_known(in->type))
			return OVMC_ERR_BAD_TYPE;
		break;
	case OVMC_CRQ_TRANSPORT:
		if (!event_known(in->type))
			return OVMC_ERR_BAD_TYPE;
		break;
	case OVMC_CRQ_CMD:
		l = find_layout(in->type);
		if (!l)
			return OVMC_ERR_BAD_TYPE;
		err = check_ranges(l, in);
		if (err)
			return err;
		break;
	default:
		return OVMC_ERR_BAD_HEADER;
	}

	memset(out, 0, OVMC_CRQ_ENTRY_SIZE);
	out[OFF_HEADER] = in->header;
	out[OFF_TYPE] = in->type;
	if (!l)
		return 0;
	if (l->fields & F_CAPS)
		write_caps(l, &in->caps, out);
	else
		write_hmc(l, &in->hmc, out);
	return 0;
}

void ovmc_entry_init(struct ovmc_entry *e, enum ovmc_init_format fmt)
{
	memset(e, 0, sizeof(*e));
	e->header = OVMC_CRQ_INIT;
	e->type = (uint8_t)fmt;
}

void ovmc_entry_caps(struct ovmc_entry *e, enum ovmc_msg_type type, const struct ovmc_caps *caps)
{
	memset(e, 0, sizeof(*e));
	e->header = OVMC_CRQ_CMD;
	e->type = (uint8_t)type;
	e->caps = *caps;
}

void ovmc_entry_hmc(struct ovmc_entry *e, enum ovmc_msg_type type, const struct ovmc_hmc_msg *msg)
{
	memset(e, 0, sizeof(*e));
	e->header = OVMC_CRQ_CMD;
	e->type = (uint8_t)type;
	e->hmc = *msg;
}

void ovmc_entry_to_words(const uint8_t e[OVMC_CRQ_ENTRY_SIZE], uint64_t *hi, uint64_t *lo)
{
	*hi = ovmc_get_be64(e);
	*lo = ovmc_get_be64(e + 8);
}

void ovmc_entry_from_words(uint64_t hi, uint64_t lo, uint8_t e[OVMC_CRQ_ENTRY_SIZE])
{
	ovmc_put_be64(e, hi);
	ovmc_put_be64(e + 8, lo);
}

const char *ovmc_msg_type_name(uint8_t type)
{
	const struct msg_layout *l = find_layout(type);

	return l ? l->name : "unknown";
}

const char *ovmc_event_name(uint8_t code)
{
	switch (code) {
	case OVMC_EVENT_PARTNER_FAILED:
		return "partner-failed";
	case OVMC_EVENT_PARTNER_DEREGISTERED:
		return "partner-deregistered";
	case OVMC_EVENT_PARTNER_TERMINATED:
		return "partner-terminated";
	case OVMC_EVENT_PARTNER_SUSPENDED:
		return "partner-suspended";
	case OVMC_EVENT_PREPARE_SUSPEND:
		return "prepare-suspend";
	case OVMC_EVENT_RESUME:
		return "resume";
	}
	return event_known(code) ? "reserved" : "unknown";
}

/* Appends with snprintf semantics: `len` keeps counting once `buf` is full. */
struct line {
	char *buf;
	size_t size;
	int len; /* negative once an append failed */
};

static void __attribute__((format(printf, 2, 3))) line_add(struct line *ln, const char *fmt, ...)
{
	char *dst = NULL;
	size_t room = 0;
	va_list ap;
	int n;

	if (ln->len < 0)
		return;
	if ((size_t)ln->len < ln->size) {
		dst = ln->buf + ln->len;
		room = ln->size - (size_t)ln->len;
	}
	va_start(ap, fmt);
	n = vsnprintf(dst, room, fmt, ap);
	va_end(ap);
	ln->len = n < 0 ? n : ln->len + n;
}

static void format_caps(struct line *ln, const struct msg_layout *l, const struct ovmc_caps *c)
{
	if (l->fields & F_STATUS)
		line_add(ln, " status=%u", c->status);
	line_add(ln, " hmcs=%u pool=%u mtu=%u crq=%u ver=0x%04x", c->max_hmcs, c->pool_size, c->mtu,
		 c->crq_size, c->version);
}

static void format_hmc(struct line *ln, const struct msg_layout *l, const struct ovmc_hmc_msg *m)
{
	if (l->fields & F_STATUS)
		line_add(ln, " status=%u", m->status);
	line_add(ln, " sn=%u idx=%u", m->session, m->index);
	if (l->fields & F_BUFFER_ID)
		line_add(ln, " buf=%u", m->buffer_id);
	if (l->fields & F_OWNER)
		line_add(ln, " owner=%u", m->owner);
	if (l->fields & F_LIOBA)
		line_add(ln, " lioba=0x%08x", m->lioba);
	if (l->fields & F_MSG_LEN)
		line_add(ln, " len=%u", m->msg_len);
}

int ovmc_entry_format(const uint8_t e[OVMC_CRQ_ENTRY_SIZE], char *buf, size_t size)
{
	struct line ln = {buf, size, 0};
	const struct msg_layout *l;
	struct ovmc_entry d;
	/* Entries from a real Linux driver carry SIGNAL padding; that is not worth flagging. */
	int err = ovmc_entry_decode(e, OVMC_CRQ_ENTRY_SIZE, OVMC_DECODE_SIGNAL_PAD, &d);

	if (err) {
		line_add(&ln, "INVALID (%s)", ovmc_strerror(err));
		for (unsigned i = 0; i < OVMC_CRQ_ENTRY_SIZE; i++)
			line_add(&ln, " %02x", e[i]);
		return ln.len;
	}

	switch (d.header) {
	case OVMC_CRQ_INIT:
		line_add(&ln, "%s", d.type == OVMC_INIT_REQUEST ? "INIT" : "INIT_COMPLETE");
		break;
	case OVMC_CRQ_TRANSPORT:
		line_add(&ln, "TRANSPORT %s (0x%02x)", ovmc_event_name(d.type), d.type);
		break;
	default:
		l = find_layout(d.type);
		line_add(&ln, "%s", l->name);
		if (l->fields & F_CAPS)
			format_caps(&ln, l, &d.caps);
		else
			format_hmc(&ln, l, &d.hmc);
		break;
	}
	return ln.len;
}
