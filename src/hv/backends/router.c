// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The router backend: the command router payload protocol (router.h).
 *
 * Layout: the pure header codec first, then the backend. A request goes
 * through one validation ladder (router_answer) that yields a return code
 * and the response data; router_message builds the response header from
 * what the request carried and delivers it in order (deliver/flush).
 */
#include "backends.h"

#include <openvmc/router.h>
#include <openvmc/wire.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ---- header codec ---- */

void ovmc_router_hdr_init(struct ovmc_router_hdr *h, uint16_t target, uint16_t opcode,
			  uint32_t token, uint8_t flags, uint32_t data_len)
{
	*h = (struct ovmc_router_hdr){
		.hdr_len = OVMC_ROUTER_HDR_LEN,
		.total_len = OVMC_ROUTER_HDR_LEN + data_len,
		.token = token,
		.target = target,
		.flags = flags,
		.data_len = data_len,
		.opcode = opcode,
	};
}

/* Whether a field of `size` bytes at `off` lies within `len` bytes. */
static bool covers(size_t len, size_t off, size_t size)
{
	return len >= off + size;
}

int ovmc_router_hdr_decode(const uint8_t *msg, size_t len, struct ovmc_router_hdr *out)
{
	*out = (struct ovmc_router_hdr){0};
	/* Every field the bytes hold, so that a reply to anything can echo them. */
	if (covers(len, OVMC_ROUTER_OFF_HDR_LEN, 1))
		out->hdr_len = msg[OVMC_ROUTER_OFF_HDR_LEN];
	if (covers(len, OVMC_ROUTER_OFF_TOTAL_LEN, 4))
		out->total_len = ovmc_get_be32(msg + OVMC_ROUTER_OFF_TOTAL_LEN);
	if (covers(len, OVMC_ROUTER_OFF_TOKEN, 4))
		out->token = ovmc_get_be32(msg + OVMC_ROUTER_OFF_TOKEN);
	if (covers(len, OVMC_ROUTER_OFF_TARGET, 2))
		out->target = ovmc_get_be16(msg + OVMC_ROUTER_OFF_TARGET);
	if (covers(len, OVMC_ROUTER_OFF_FLAGS, 1))
		out->flags = msg[OVMC_ROUTER_OFF_FLAGS];
	if (covers(len, OVMC_ROUTER_OFF_DATA_LEN, 4))
		out->data_len = ovmc_get_be32(msg + OVMC_ROUTER_OFF_DATA_LEN);
	if (covers(len, OVMC_ROUTER_OFF_OPCODE, 2))
		out->opcode = ovmc_get_be16(msg + OVMC_ROUTER_OFF_OPCODE);
	if (covers(len, OVMC_ROUTER_OFF_RC, 2))
		out->rc = ovmc_get_be16(msg + OVMC_ROUTER_OFF_RC);

	if (len < OVMC_ROUTER_HDR_LEN)
		return OVMC_ROUTER_ERR_TRUNCATED;
	if (out->hdr_len != OVMC_ROUTER_HDR_LEN)
		return OVMC_ROUTER_ERR_HDR_LEN;
	if (out->total_len != len)
		return OVMC_ROUTER_ERR_TOTAL_LEN;
	if (out->data_len != out->total_len - OVMC_ROUTER_HDR_LEN)
		return OVMC_ROUTER_ERR_DATA_LEN;
	if (out->total_len > OVMC_ROUTER_MAX_MSG)
		return OVMC_ROUTER_ERR_TOO_BIG;
	if (msg[OVMC_ROUTER_OFF_DESC] != OVMC_ROUTER_DESC0 ||
	    msg[OVMC_ROUTER_OFF_DESC + 1] != OVMC_ROUTER_DESC1 ||
	    msg[OVMC_ROUTER_OFF_DESC + 2] != OVMC_ROUTER_DESC2)
		return OVMC_ROUTER_ERR_DESCRIPTOR;
	return 0;
}

int ovmc_router_hdr_encode(const struct ovmc_router_hdr *h, uint8_t out[OVMC_ROUTER_HDR_LEN])
{
	if (h->hdr_len != OVMC_ROUTER_HDR_LEN)
		return OVMC_ROUTER_ERR_HDR_LEN;
	if (h->total_len < OVMC_ROUTER_HDR_LEN)
		return OVMC_ROUTER_ERR_TOTAL_LEN;
	if (h->data_len != h->total_len - OVMC_ROUTER_HDR_LEN)
		return OVMC_ROUTER_ERR_DATA_LEN;
	if (h->total_len > OVMC_ROUTER_MAX_MSG)
		return OVMC_ROUTER_ERR_TOO_BIG;
	memset(out, 0, OVMC_ROUTER_HDR_LEN);
	out[OVMC_ROUTER_OFF_DESC] = OVMC_ROUTER_DESC0;
	out[OVMC_ROUTER_OFF_DESC + 1] = OVMC_ROUTER_DESC1;
	out[OVMC_ROUTER_OFF_DESC + 2] = OVMC_ROUTER_DESC2;
	out[OVMC_ROUTER_OFF_HDR_LEN] = OVMC_ROUTER_HDR_LEN;
	ovmc_put_be32(out + OVMC_ROUTER_OFF_TOTAL_LEN, h->total_len);
	ovmc_put_be32(out + OVMC_ROUTER_OFF_TOKEN, h->token);
	ovmc_put_be16(out + OVMC_ROUTER_OFF_TARGET, h->target);
	out[OVMC_ROUTER_OFF_FLAGS] = h->flags;
	ovmc_put_be32(out + OVMC_ROUTER_OFF_DATA_LEN, h->data_len);
	ovmc_put_be16(out + OVMC_ROUTER_OFF_OPCODE, h->opcode);
	ovmc_put_be16(out + OVMC_ROUTER_OFF_RC, h->rc);
	return 0;
}

/* ---- names ---- */

const char *ovmc_router_target_name(uint16_t target)
{
	switch (target) {
	case OVMC_ROUTER_TARGET_ROUTER:
		return "router";
	case OVMC_ROUTER_TARGET_LPAR_CONFIG:
		return "LPAR config";
	case OVMC_ROUTER_TARGET_DLPAR:
		return "DLPAR";
	case OVMC_ROUTER_TARGET_VSP:
		return "VSP";
	case OVMC_ROUTER_TARGET_CUOD_AP:
		return "CUoD/AP";
	case OVMC_ROUTER_TARGET_CONC_MAINT:
		return "concurrent maintenance";
	case OVMC_ROUTER_TARGET_UNNAMED_8006:
		return "target 0x8006";
	case OVMC_ROUTER_TARGET_UNNAMED_8007:
		return "target 0x8007";
	}
	return "unknown";
}

const char *ovmc_router_rc_name(uint16_t rc)
{
	switch (rc) {
	case OVMC_ROUTER_RC_GOOD:
		return "Good";
	case OVMC_ROUTER_RC_INVALID_OPCODE:
		return "InvalidOpcode";
	case OVMC_ROUTER_RC_INVALID_DATA:
		return "InvalidData";
	case OVMC_ROUTER_RC_GENERIC_ERROR:
		return "GenericError";
	case OVMC_ROUTER_RC_CANCELLED:
		return "Cancelled";
	case OVMC_ROUTER_RC_BUFFER_NOT_AVAILABLE:
		return "BufferNotAvailable";
	case OVMC_ROUTER_RC_INVALID_HMC_INDEX:
		return "InvalidHmcIndex";
	case OVMC_ROUTER_RC_INVALID_SIZE:
		return "InvalidSize";
	case OVMC_ROUTER_RC_INVALID_TARGET:
		return "InvalidTarget";
	case OVMC_ROUTER_RC_INVALID_CATEGORY:
		return "InvalidCategory";
	case OVMC_ROUTER_RC_HMC_DEAD:
		return "HmcDead";
	case OVMC_ROUTER_RC_PATH_CLOSED:
		return "PathClosed";
	case OVMC_ROUTER_RC_BIND_EVENT_FAILED:
		return "BindEventFailed";
	case OVMC_ROUTER_RC_INVALID_STATE:
		return "InvalidState";
	case OVMC_ROUTER_RC_SESSION_MISMATCH:
		return "SessionMismatch";
	case OVMC_ROUTER_RC_INVALID_HMC_INSTANCE:
		return "InvalidHmcInstance";
	case OVMC_ROUTER_RC_HMC_ALREADY_OPEN:
		return "HmcAlreadyOpen";
	case OVMC_ROUTER_RC_INVALID_BUFFER_ID:
		return "InvalidBufferId";
	case OVMC_ROUTER_RC_INVALID_RESPONSE:
		return "InvalidResponse";
	case OVMC_ROUTER_RC_INVALID_SYNC_REQUEST:
		return "InvalidSyncRequest";
	}
	return "unknown";
}

const char *ovmc_router_strerror(int err)
{
	switch (err) {
	case OVMC_ROUTER_ERR_TRUNCATED:
		return "router message shorter than its header";
	case OVMC_ROUTER_ERR_HDR_LEN:
		return "router header length is not 32";
	case OVMC_ROUTER_ERR_TOTAL_LEN:
		return "router total length differs from the message size";
	case OVMC_ROUTER_ERR_DATA_LEN:
		return "router data length differs from total length - 32";
	case OVMC_ROUTER_ERR_TOO_BIG:
		return "router message above 4096 bytes";
	case OVMC_ROUTER_ERR_DESCRIPTOR:
		return "router descriptor is not DE CA FF";
	}
	return ovmc_strerror(err);
}

/* ---- the backend: state ---- */

/* A response that ovmc_hv_send() could not take yet. */
struct pending {
	struct pending *next;
	size_t len;
	uint8_t msg[];
};

/* Per VMC session (ovmc_hv_session_set_user). */
struct router_sess {
	enum ovmc_router_state state;
	struct pending *head, *tail;
	unsigned n_pending;
};

struct router {
	struct ovmc_backend_env env;
	struct ovmc_router_target *targets;
	size_t n_targets, cap_targets;
	struct ovmc_router_stats stats;
};

struct ovmc_router_call {
	struct ovmc_hv_session *session;
	const struct ovmc_router_hdr *req;
	const uint8_t *data;
	size_t data_len;
	enum ovmc_router_state state;
	uint8_t *reply; /* OVMC_ROUTER_MAX_DATA bytes */
	size_t reply_len, reply_max;
};

static const struct ovmc_backend_ops router_ops;

#define rlog(r, level, ...) ovmc_backend_log(&(r)->env, (level), "router: " __VA_ARGS__)

/* ---- the router's own opcodes: a state-gated table ---- */

#define IN(st) (1u << (st))

struct router_op {
	uint16_t opcode;
	const char *name;
	unsigned states; /* IN(state) of the states it is allowed in */
	void (*run)(struct router_sess *rs, struct ovmc_router_call *c);
};

static void op_exchange_ops(struct router_sess *rs, struct ovmc_router_call *c)
{
	(void)c;
	rs->state = OVMC_ROUTER_OPEN;
}

static void op_close(struct router_sess *rs, struct ovmc_router_call *c)
{
	(void)c;
	rs->state = OVMC_ROUTER_CLOSED;
}

static void op_echo(struct router_sess *rs, struct ovmc_router_call *c)
{
	(void)rs;
	/* The request came through the same channel, so its data fits. */
	if (c->data_len)
		memcpy(c->reply, c->data, c->data_len);
	c->reply_len = c->data_len;
}

static const struct router_op router_ops_table[] = {
	{OVMC_ROUTER_OP_EXCHANGE_OPS, "ExchangeOps", IN(OVMC_ROUTER_NOT_OPEN), op_exchange_ops},
	{OVMC_ROUTER_OP_CLOSE, "Close", IN(OVMC_ROUTER_OPEN), op_close},
	{OVMC_ROUTER_OP_ECHO, "Echo", IN(OVMC_ROUTER_OPEN), op_echo},
};

static const struct router_op *find_op(uint16_t opcode)
{
	for (size_t i = 0; i < sizeof(router_ops_table) / sizeof(router_ops_table[0]); i++) {
		if (router_ops_table[i].opcode == opcode)
			return &router_ops_table[i];
	}
	return NULL;
}

const char *ovmc_router_opcode_name(uint16_t opcode)
{
	const struct router_op *op = find_op(opcode);

	return op ? op->name : "unknown";
}

static const struct ovmc_router_target *find_target(const struct router *r, uint16_t id)
{
	for (size_t i = 0; i < r->n_targets; i++) {
		if (r->targets[i].id == id)
			return &r->targets[i];
	}
	return NULL;
}

/* ---- the call API ---- */

const struct ovmc_router_hdr *ovmc_router_call_hdr(const struct ovmc_router_call *c)
{
	return c->req;
}

uint16_t ovmc_router_call_opcode(const struct ovmc_router_call *c)
{
	return c->req->opcode;
}

const uint8_t *ovmc_router_call_data(const struct ovmc_router_call *c, size_t *len)
{
	*len = c->data_len;
	return c->data_len ? c->data : NULL;
}

enum ovmc_router_state ovmc_router_call_state(const struct ovmc_router_call *c)
{
	return c->state;
}

struct ovmc_hv_session *ovmc_router_call_session(const struct ovmc_router_call *c)
{
	return c->session;
}

size_t ovmc_router_call_reply_max(const struct ovmc_router_call *c)
{
	return c->reply_max;
}

int ovmc_router_call_reply(struct ovmc_router_call *c, const void *data, size_t len)
{
	if (len > c->reply_max)
		return -EMSGSIZE;
	if (len)
		memcpy(c->reply, data, len);
	c->reply_len = len;
	return 0;
}

/* ---- the validation ladder ---- */

static uint16_t call_target(const struct ovmc_router_target *t, struct ovmc_router_call *c)
{
	int rc = t->request(t->arg, c);

	if (rc < 0 || rc > 0xFFFF) {
		c->reply_len = 0;
		return OVMC_ROUTER_RC_GENERIC_ERROR;
	}
	return (uint16_t)rc;
}

/*
 * The return code for one message, with the response data left in
 * c->reply. `*req` (c->req) is filled by the decode whatever its result.
 */
static uint16_t router_answer(struct router *r, struct router_sess *rs, const uint8_t *msg,
			      size_t len, struct ovmc_router_hdr *req, struct ovmc_router_call *c)
{
	const struct ovmc_router_target *t;
	struct ovmc_router_target copy;
	const struct router_op *op;
	int err = ovmc_router_hdr_decode(msg, len, req);

	if (err == OVMC_ROUTER_ERR_DESCRIPTOR)
		return OVMC_ROUTER_RC_INVALID_DATA;
	if (err)
		return OVMC_ROUTER_RC_INVALID_SIZE;
	if (req->flags & OVMC_ROUTER_FLAG_RESPONSE)
		return OVMC_ROUTER_RC_INVALID_DATA;
	c->data = msg + OVMC_ROUTER_HDR_LEN;
	c->data_len = req->data_len;
	c->state = rs->state;

	if (req->target == OVMC_ROUTER_TARGET_ROUTER) {
		op = find_op(req->opcode);
		if (!op)
			return OVMC_ROUTER_RC_INVALID_OPCODE;
		if (!(op->states & IN(rs->state)))
			return OVMC_ROUTER_RC_INVALID_STATE;
		op->run(rs, c);
		return OVMC_ROUTER_RC_GOOD;
	}

	t = find_target(r, req->target);
	if (!t)
		return OVMC_ROUTER_RC_INVALID_TARGET;
	if (rs->state == OVMC_ROUTER_CLOSED ||
	    (rs->state == OVMC_ROUTER_NOT_OPEN && !(t->flags & OVMC_ROUTER_TARGET_BEFORE_OPEN)))
		return OVMC_ROUTER_RC_INVALID_STATE;
	copy = *t; /* the handler may add targets (and move the table) */
	return call_target(&copy, c);
}

/* ---- ordered delivery ---- */

static bool retry_later(int rc)
{
	return rc == -ENOBUFS || rc == -ENOMEM;
}

static void pending_pop(struct router *r, struct router_sess *rs)
{
	struct pending *p = rs->head;

	rs->head = p->next;
	if (!rs->head)
		rs->tail = NULL;
	rs->n_pending--;
	r->stats.queued--;
	free(p);
}

/* Send queued responses, in order, until the core refuses. */
static void flush(struct router *r, struct ovmc_hv_session *s, struct router_sess *rs)
{
	while (rs->head) {
		int rc = ovmc_hv_send(s, rs->head->msg, rs->head->len);

		if (retry_later(rc))
			return;
		if (rc == 0) {
			r->stats.responses++;
		} else {
			r->stats.dropped++;
			rlog(r, OVMC_LOG_WARN, "queued response of %zu bytes dropped: %s",
			     rs->head->len, ovmc_strerror(rc));
		}
		pending_pop(r, rs);
	}
}

static void deliver(struct router *r, struct ovmc_hv_session *s, struct router_sess *rs,
		    const uint8_t *msg, size_t len)
{
	struct pending *p;
	int rc;

	if (!rs->head) {
		rc = ovmc_hv_send(s, msg, len);
		if (rc == 0) {
			r->stats.responses++;
			return;
		}
		if (!retry_later(rc)) {
			r->stats.dropped++;
			rlog(r, OVMC_LOG_WARN, "response of %zu bytes dropped: %s", len,
			     ovmc_strerror(rc));
			return;
		}
	}
	/* A partition that asks without reading meets this bound (the core's
	 * backlog is full already): answers beyond it are dropped, counted. */
	if (rs->n_pending >= OVMC_ROUTER_MAX_QUEUED) {
		r->stats.dropped++;
		r->stats.overflows++;
		rlog(r, OVMC_LOG_WARN, "response of %zu bytes dropped: %u wait already", len,
		     rs->n_pending);
		return;
	}
	/* Behind earlier responses, or refused for now: keep it in order. */
	p = malloc(sizeof(*p) + len);
	if (!p) {
		r->stats.dropped++;
		rlog(r, OVMC_LOG_ERROR, "response of %zu bytes dropped: out of memory", len);
		return;
	}
	p->next = NULL;
	p->len = len;
	memcpy(p->msg, msg, len);
	if (rs->tail)
		rs->tail->next = p;
	else
		rs->head = p;
	rs->tail = p;
	rs->n_pending++;
	r->stats.deferred++;
	r->stats.queued++;
}

/* ---- backend callbacks ---- */

static struct router_sess *sess_of(struct ovmc_hv_session *s)
{
	struct router_sess *rs = ovmc_hv_session_user(s);

	if (!rs) {
		/* Sessions that opened before this backend was installed. */
		rs = calloc(1, sizeof(*rs));
		if (rs)
			ovmc_hv_session_set_user(s, rs);
	}
	return rs;
}

static int router_open(void *b, struct ovmc_hv_session *s, const uint8_t hmc_id[OVMC_HMC_ID_LEN])
{
	(void)b;
	(void)hmc_id;
	return sess_of(s) ? 0 : -ENOMEM;
}

static void router_close(void *b, struct ovmc_hv_session *s)
{
	struct router *r = b;
	struct router_sess *rs = ovmc_hv_session_user(s);

	if (!rs)
		return;
	while (rs->head) {
		r->stats.dropped++;
		pending_pop(r, rs);
	}
	free(rs);
	ovmc_hv_session_set_user(s, NULL);
}

static void router_writable(void *b, struct ovmc_hv_session *s)
{
	struct router_sess *rs = ovmc_hv_session_user(s);

	if (rs)
		flush(b, s, rs);
}

static size_t reply_max(struct ovmc_hv_session *s)
{
	struct ovmc_hv_negotiated neg;
	size_t max = OVMC_ROUTER_MAX_MSG;

	ovmc_hv_negotiated(ovmc_hv_session_hv(s), &neg);
	if (neg.mtu < max)
		max = neg.mtu;
	return max > OVMC_ROUTER_HDR_LEN ? max - OVMC_ROUTER_HDR_LEN : 0;
}

static void router_message(void *b, struct ovmc_hv_session *s, const uint8_t *msg, size_t len)
{
	struct router *r = b;
	struct router_sess *rs = sess_of(s);
	uint8_t out[OVMC_ROUTER_MAX_MSG];
	struct ovmc_router_hdr req, resp;
	struct ovmc_router_call c = {
		.session = s,
		.req = &req,
		.reply = out + OVMC_ROUTER_HDR_LEN,
		.reply_max = reply_max(s),
	};
	uint16_t rc;

	r->stats.requests++;
	if (rs) {
		flush(r, s, rs); /* anything still queued goes first */
		rc = router_answer(r, rs, msg, len, &req, &c);
	} else {
		/* No memory for the session's state: answer without touching it. */
		ovmc_router_hdr_decode(msg, len, &req);
		rc = OVMC_ROUTER_RC_GENERIC_ERROR;
	}
	if (rc != OVMC_ROUTER_RC_GOOD) {
		r->stats.errors++;
		rlog(r, OVMC_LOG_DEBUG,
		     "%zu-byte request, token 0x%08x, target 0x%04x (%s), opcode 0x%04x: %s", len,
		     req.token, req.target, ovmc_router_target_name(req.target), req.opcode,
		     ovmc_router_rc_name(rc));
	}
	ovmc_router_hdr_init(&resp, req.target, req.opcode, req.token, OVMC_ROUTER_FLAG_RESPONSE,
			     (uint32_t)c.reply_len);
	resp.rc = rc;
	/* reply_len <= reply_max keeps the response within 4096 and the MTU. */
	ovmc_router_hdr_encode(&resp, out);
	if (rs) {
		deliver(r, s, rs, out, OVMC_ROUTER_HDR_LEN + c.reply_len);
	} else if (ovmc_hv_send(s, out, OVMC_ROUTER_HDR_LEN) == 0) {
		r->stats.responses++;
	} else {
		r->stats.dropped++;
	}
}

static const struct ovmc_backend_ops router_ops = {
	.name = "router",
	.open = router_open,
	.message = router_message,
	.close = router_close,
	.writable = router_writable,
};

/* ---- life cycle and registration ---- */

static void router_destroy(void *arg)
{
	struct router *r = arg;

	free(r->targets);
	free(r);
}

int ovmc_backend_router_new(const char *args, const struct ovmc_backend_env *env,
			    struct ovmc_backend *out)
{
	struct router *r;

	if (args && *args)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->env = *env;
	*out = (struct ovmc_backend){.ops = &router_ops, .arg = r, .destroy = router_destroy};
	return 0;
}

static struct router *router_of(const struct ovmc_backend *b)
{
	return b && b->ops == &router_ops ? b->arg : NULL;
}

int ovmc_router_add_target(struct ovmc_backend *router, const struct ovmc_router_target *t)
{
	struct router *r = router_of(router);

	if (!r || !t || !t->request || t->id == OVMC_ROUTER_TARGET_ROUTER)
		return -EINVAL;
	if (find_target(r, t->id))
		return -EEXIST;
	if (r->n_targets == r->cap_targets) {
		size_t cap = r->cap_targets ? r->cap_targets * 2 : 8;
		struct ovmc_router_target *v = realloc(r->targets, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		r->targets = v;
		r->cap_targets = cap;
	}
	r->targets[r->n_targets++] = *t;
	rlog(r, OVMC_LOG_DEBUG, "target 0x%04x (%s) registered", t->id,
	     t->name ? t->name : ovmc_router_target_name(t->id));
	return 0;
}

int ovmc_router_stats(const struct ovmc_backend *router, struct ovmc_router_stats *out)
{
	const struct router *r = router_of(router);

	if (!r)
		return -EINVAL;
	*out = r->stats;
	return 0;
}
