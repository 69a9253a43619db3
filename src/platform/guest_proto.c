// SPDX-License-Identifier: LGPL-2.1-or-later
/* The guest link's messages, checked without I/O (guest_proto.h). */
#include "guest_proto.h"

#include <string.h>

static const struct {
	const char *name;
	int len;
	enum gl_side to; /* who receives it */
} types[GL_TYPE_COUNT] = {
	[GL_HELLO] = {"HELLO", sizeof(struct gl_hello), GL_AT_HV},
	[GL_WELCOME] = {"WELCOME", sizeof(struct gl_welcome), GL_AT_DEVICE},
	[GL_CRQ_REG] = {"CRQ_REG", sizeof(struct gl_crq_reg), GL_AT_HV},
	[GL_CRQ_FREE] = {"CRQ_FREE", 0, GL_AT_HV},
	[GL_SEND] = {"SEND", sizeof(struct gl_send), GL_AT_HV},
	[GL_RDMA] = {"RDMA", sizeof(struct gl_rdma), GL_AT_HV},
	[GL_HV_STATE] = {"HV_STATE", sizeof(struct gl_hv_state), GL_AT_DEVICE},
	[GL_CREDIT] = {"CREDIT", sizeof(struct gl_credit), GL_AT_DEVICE},
	[GL_DELIVER] = {"DELIVER", sizeof(struct gl_deliver), GL_AT_DEVICE},
	[GL_DELIVER_RC] = {"DELIVER_RC", sizeof(struct gl_deliver_rc), GL_AT_HV},
};

static const char *const errors[GL_ERR_COUNT] = {
	[GL_OK] = "ok",
	[GL_ERR_MAGIC] = "bad magic",
	[GL_ERR_VERSION] = "unsupported version",
	[GL_ERR_TYPE] = "unknown type",
	[GL_ERR_LENGTH] = "wrong length",
	[GL_ERR_STATE] = "not allowed now",
	[GL_ERR_RESERVED] = "reserved field not zero",
};

const char *gl_error_name(enum gl_error e)
{
	return (unsigned)e < GL_ERR_COUNT ? errors[e] : "?";
}

const char *gl_type_name(unsigned type)
{
	return type < GL_TYPE_COUNT && types[type].name ? types[type].name : "?";
}

int gl_body_len(unsigned type)
{
	return type < GL_TYPE_COUNT && types[type].name ? types[type].len : -1;
}

static bool reserved_clear(const struct gl_msg *m)
{
	bool seq_used = m->h.type == GL_DELIVER || m->h.type == GL_DELIVER_RC;

	if (!seq_used && m->h.seq)
		return false;
	switch (m->h.type) {
	case GL_WELCOME:
		return m->b.welcome.reserved == 0;
	case GL_CRQ_REG:
		return m->b.crq_reg.reserved == 0;
	case GL_SEND:
		return m->b.send.reserved == 0;
	case GL_HV_STATE:
		return m->b.hv_state.reserved == 0;
	default:
		return true;
	}
}

enum gl_error gl_decode(const void *buf, size_t len, enum gl_side side, enum gl_state state,
			struct gl_msg *out, size_t *used)
{
	struct gl_hdr h;
	int body;

	*used = 0;
	if (len < sizeof(h))
		return GL_OK;
	memcpy(&h, buf, sizeof(h));
	if (h.magic != GL_MAGIC)
		return GL_ERR_MAGIC;
	if (h.version != GL_VERSION)
		return GL_ERR_VERSION;
	body = gl_body_len(h.type);
	if (body < 0 || types[h.type].to != side)
		return GL_ERR_TYPE;
	if (h.len != (uint32_t)body)
		return GL_ERR_LENGTH;
	/* The first message each way is HELLO / WELCOME, and only the first. */
	if ((state == GL_AWAIT_HELLO) != (h.type == GL_HELLO || h.type == GL_WELCOME))
		return GL_ERR_STATE;
	if (len < sizeof(h) + (size_t)body)
		return GL_OK;
	memset(out, 0, sizeof(*out));
	out->h = h;
	memcpy(&out->b, (const unsigned char *)buf + sizeof(h), (size_t)body);
	if (!reserved_clear(out))
		return GL_ERR_RESERVED;
	*used = sizeof(h) + (size_t)body;
	return GL_OK;
}

size_t gl_encode(void *buf, enum gl_type type, uint32_t seq, const void *body)
{
	struct gl_hdr h = {.magic = GL_MAGIC, .version = GL_VERSION, .type = (uint16_t)type};
	int blen = gl_body_len(type);

	h.len = blen > 0 ? (uint32_t)blen : 0;
	h.seq = seq;
	memcpy(buf, &h, sizeof(h));
	if (h.len)
		memcpy((unsigned char *)buf + sizeof(h), body, h.len);
	return sizeof(h) + h.len;
}
