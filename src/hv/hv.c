// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Hypervisor core: the VMC server end (docs/protocol.md, "Hypervisor").
 *
 * Buffer ownership is the heart of it. Every buffer of an HMC index is in
 * exactly one state; a signal moves a buffer from its sender to its
 * receiver. The partition only ever sees buffers it was told about with
 * Add Buffer, and the hypervisor only sends with buffers it owns.
 */
#include "hv_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_MS 1000000ull
#define TX_RETRY_NS (1 * NS_PER_MS)
#define RECLAIM_MIN_NS (1 * NS_PER_MS)
#define RECLAIM_MAX_NS (1000 * NS_PER_MS)
#define DEFAULT_BACKLOG 1024u
#define MIN_MTU 32u

enum buf_state {
	BUF_ABSENT,
	BUF_ADDING,    /* Add Buffer sent, response awaited */
	BUF_PARTITION, /* the partition owns it */
	BUF_HV_FREE,   /* ours, free to carry a message */
	BUF_HV_BUSY,   /* ours, its message is with the backend right now */
};

struct hv_buf {
	uint8_t state;
	uint8_t add_owner;   /* BUF_ADDING: the owner the add names */
	uint8_t add_session; /* BUF_ADDING: session the add was sent with */
};

struct backlog_msg {
	struct backlog_msg *next;
	size_t len;
	uint8_t data[];
};

/* One HMC index: its buffers, and the session open on it (if any). */
struct ovmc_hv_session {
	struct ovmc_hv *hv;
	unsigned index;
	bool open;
	uint8_t number;
	uint8_t hmc_id[OVMC_HMC_ID_LEN];
	void *user;

	struct hv_buf *bufs;
	uint16_t *free_ids; /* stack of BUF_HV_FREE ids */
	unsigned n_free;
	unsigned n_partition;
	unsigned n_adding_hv; /* adds in flight that will give us a buffer */
	bool remove_pending;
	bool remove_for_reclaim;

	struct backlog_msg *bl_head, *bl_tail;
	unsigned bl_count;
	bool want_writable;
};

struct ovmc_hv {
	struct ovmc_hv_config cfg;
	struct ovmc_hv_ops ops;
	void *ops_user;
	uint8_t *mem;
	size_t mem_size;
	struct ovmc_vmc *binding;
	void (*unbind)(struct ovmc_vmc *vmc);
	unsigned id;

	ovmc_log_fn log;
	void *log_user;
	enum ovmc_log_level log_level;

	const struct ovmc_backend_ops *be;
	void *be_arg;

	enum ovmc_hv_state state;
	struct ovmc_hv_negotiated neg;
	struct ovmc_hv_session *slots; /* cfg.max_hmcs */

	/* Entries waiting for room in the partition's queue, in order. */
	uint8_t (*txq)[OVMC_CRQ_ENTRY_SIZE];
	unsigned tx_cap, tx_head, tx_count;

	uint64_t now;
	uint64_t tx_retry_at;
	uint64_t reclaim_at;
	uint64_t reclaim_delay;
	struct ovmc_hv_stats stats;
};

static void hv_log(struct ovmc_hv *hv, enum ovmc_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void hv_log(struct ovmc_hv *hv, enum ovmc_log_level level, const char *fmt, ...)
{
	va_list ap;

	if (!hv->log || level > hv->log_level)
		return;
	va_start(ap, fmt);
	hv->log(hv->log_user, level, fmt, ap);
	va_end(ap);
}

/* Count one protocol error under `reason` and log why. */
static void proto_err(struct ovmc_hv *hv, uint64_t *reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void proto_err(struct ovmc_hv *hv, uint64_t *reason, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	(*reason)++;
	hv->stats.protocol_errors++;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	hv_log(hv, OVMC_LOG_WARN, "protocol error: %s", msg);
}

void ovmc_hv_config_default(struct ovmc_hv_config *cfg)
{
	*cfg = (struct ovmc_hv_config){
		.max_hmcs = 1,
		.pool_size = 32,
		.mtu = 4096,
		.crq_size = 256,
		.version = OVMC_PROTOCOL_VERSION,
	};
}

size_t ovmc_hv_memory_required(const struct ovmc_hv_config *cfg)
{
	return (size_t)cfg->max_hmcs * cfg->pool_size * cfg->mtu;
}

static bool config_valid(const struct ovmc_hv_config *c)
{
	return c->max_hmcs >= 1 && c->pool_size >= 1 && c->pool_size <= 1024 &&
	       c->mtu >= MIN_MTU && c->mtu <= 65536 && c->crq_size >= 2 &&
	       ovmc_hv_memory_required(c) <= UINT32_MAX;
}

static void free_backlog(struct ovmc_hv_session *s)
{
	while (s->bl_head) {
		struct backlog_msg *m = s->bl_head;

		s->bl_head = m->next;
		free(m);
	}
	s->bl_tail = NULL;
	s->bl_count = 0;
}

int ovmc_hv_new(const struct ovmc_hv_config *cfg, const struct ovmc_hv_ops *ops, void *ops_user,
		void *mem, size_t mem_size, struct ovmc_hv **out)
{
	struct ovmc_hv *hv;

	if (!config_valid(cfg) || !ops || !ops->send_crq || mem_size < ovmc_hv_memory_required(cfg))
		return -EINVAL;
	hv = calloc(1, sizeof(*hv));
	if (!hv)
		return -ENOMEM;
	hv->cfg = *cfg;
	if (!hv->cfg.backlog_limit)
		hv->cfg.backlog_limit = DEFAULT_BACKLOG;
	hv->ops = *ops;
	hv->ops_user = ops_user;
	hv->mem = mem;
	hv->mem_size = mem_size;
	hv->log_level = OVMC_LOG_INFO;
	hv->tx_retry_at = hv->reclaim_at = OVMC_TIME_NEVER;
	hv->reclaim_delay = RECLAIM_MIN_NS;
	hv->slots = calloc(cfg->max_hmcs, sizeof(*hv->slots));
	if (!hv->slots)
		goto nomem;
	for (unsigned i = 0; i < cfg->max_hmcs; i++) {
		struct ovmc_hv_session *s = &hv->slots[i];

		s->hv = hv;
		s->index = i;
		s->bufs = calloc(cfg->pool_size, sizeof(*s->bufs));
		s->free_ids = calloc(cfg->pool_size, sizeof(*s->free_ids));
		if (!s->bufs || !s->free_ids)
			goto nomem;
	}
	*out = hv;
	return 0;
nomem:
	ovmc_hv_free(hv);
	return -ENOMEM;
}

static void reset_all(struct ovmc_hv *hv);

void ovmc_hv_free(struct ovmc_hv *hv)
{
	if (!hv)
		return;
	if (hv->slots) {
		reset_all(hv);
		for (unsigned i = 0; i < hv->cfg.max_hmcs; i++) {
			free(hv->slots[i].bufs);
			free(hv->slots[i].free_ids);
		}
	}
	free(hv->slots);
	free(hv->txq);
	if (hv->binding)
		hv->unbind(hv->binding);
	free(hv);
}

void ovmc_hv_set_backend(struct ovmc_hv *hv, const struct ovmc_backend_ops *ops, void *b)
{
	hv->be = ops;
	hv->be_arg = b;
}

void ovmc_hv_set_id(struct ovmc_hv *hv, unsigned id)
{
	hv->id = id;
}

unsigned ovmc_hv_id(const struct ovmc_hv *hv)
{
	return hv->id;
}

void ovmc_hv_set_log(struct ovmc_hv *hv, ovmc_log_fn fn, void *user, enum ovmc_log_level level)
{
	hv->log = fn;
	hv->log_user = user;
	hv->log_level = level;
}

enum ovmc_hv_state ovmc_hv_state(const struct ovmc_hv *hv)
{
	return hv->state;
}

const char *ovmc_hv_state_name(enum ovmc_hv_state st)
{
	static const char *const names[] = {"stopped", "wait-init", "link-up", "ready", "failed"};

	return (unsigned)st < sizeof(names) / sizeof(names[0]) ? names[st] : "unknown";
}

void ovmc_hv_negotiated(const struct ovmc_hv *hv, struct ovmc_hv_negotiated *out)
{
	*out = hv->neg;
}

void ovmc_hv_stats(const struct ovmc_hv *hv, struct ovmc_hv_stats *out)
{
	*out = hv->stats;
}

/* ---- sending, with flow control ---- */

/* Room left under the partner's limit: half of the queue it advertised. */
static unsigned tx_credit(struct ovmc_hv *hv)
{
	unsigned limit, used;

	if (!hv->neg.partner_crq_size || !hv->ops.partner_outstanding)
		return 1;
	limit = hv->neg.partner_crq_size / 2u;
	used = hv->ops.partner_outstanding(hv->ops_user);
	return used < limit ? limit - used : 0;
}

static int txq_push(struct ovmc_hv *hv, const uint8_t e[OVMC_CRQ_ENTRY_SIZE])
{
	if (hv->tx_count == hv->tx_cap) {
		unsigned cap = hv->tx_cap ? hv->tx_cap * 2 : 64;
		uint8_t(*q)[OVMC_CRQ_ENTRY_SIZE] = malloc((size_t)cap * OVMC_CRQ_ENTRY_SIZE);

		if (!q)
			return -ENOMEM;
		for (unsigned i = 0; i < hv->tx_count; i++)
			memcpy(q[i], hv->txq[(hv->tx_head + i) % hv->tx_cap], OVMC_CRQ_ENTRY_SIZE);
		free(hv->txq);
		hv->txq = q;
		hv->tx_cap = cap;
		hv->tx_head = 0;
	}
	memcpy(hv->txq[(hv->tx_head + hv->tx_count) % hv->tx_cap], e, OVMC_CRQ_ENTRY_SIZE);
	hv->tx_count++;
	hv->stats.send_deferred++;
	if (hv->tx_retry_at == OVMC_TIME_NEVER)
		hv->tx_retry_at = hv->now + TX_RETRY_NS;
	return 0;
}

/* Hand one entry to the platform. 1 sent, 0 retry later, -1 gone for good. */
static int tx_one(struct ovmc_hv *hv, const uint8_t e[OVMC_CRQ_ENTRY_SIZE])
{
	long rc;

	if (!tx_credit(hv))
		return 0;
	rc = hv->ops.send_crq(hv->ops_user, e);
	if (rc == 0) {
		hv->stats.entries_out++;
		return 1;
	}
	if (rc == -12 /* H_DROPPED */)
		return 0;
	hv->stats.send_lost++;
	hv_log(hv, rc == 2 ? OVMC_LOG_DEBUG : OVMC_LOG_WARN,
	       "send refused by the platform (rc %ld): partner queue closed", rc);
	return -1;
}

static void tx_flush(struct ovmc_hv *hv)
{
	while (hv->tx_count) {
		int r = tx_one(hv, hv->txq[hv->tx_head]);

		if (r == 0) {
			if (hv->tx_retry_at == OVMC_TIME_NEVER)
				hv->tx_retry_at = hv->now + TX_RETRY_NS;
			return;
		}
		hv->tx_head = (hv->tx_head + 1) % hv->tx_cap;
		hv->tx_count--;
	}
	hv->tx_retry_at = OVMC_TIME_NEVER;
}

static void tx_drop_all(struct ovmc_hv *hv)
{
	hv->tx_count = hv->tx_head = 0;
	hv->tx_retry_at = OVMC_TIME_NEVER;
}

/* Queue order is kept: nothing overtakes an entry already waiting. */
static int tx(struct ovmc_hv *hv, const struct ovmc_entry *m)
{
	uint8_t e[OVMC_CRQ_ENTRY_SIZE];
	int rc = ovmc_entry_encode(m, e);

	if (rc)
		return rc;
	if (hv->log_level >= OVMC_LOG_TRACE) {
		char line[128];

		ovmc_entry_format(e, line, sizeof(line));
		hv_log(hv, OVMC_LOG_TRACE, "hv -> partition: %s", line);
	}
	if (!hv->tx_count) {
		int r = tx_one(hv, e);

		if (r != 0)
			return 0;
	}
	return txq_push(hv, e);
}

static int tx_init(struct ovmc_hv *hv, enum ovmc_init_format fmt)
{
	struct ovmc_entry m;

	ovmc_entry_init(&m, fmt);
	return tx(hv, &m);
}

static int tx_hmc(struct ovmc_hv *hv, enum ovmc_msg_type type, uint8_t status, uint8_t session,
		  uint8_t index, uint16_t buffer_id)
{
	struct ovmc_hmc_msg h = {
		.status = status, .session = session, .index = index, .buffer_id = buffer_id};
	struct ovmc_entry m;

	ovmc_entry_hmc(&m, type, &h);
	return tx(hv, &m);
}

/* ---- buffers ---- */

static uint32_t buf_lioba(const struct ovmc_hv *hv, unsigned index, unsigned id)
{
	return (uint32_t)(((size_t)index * hv->neg.pool_size + id) * hv->neg.mtu);
}

static uint8_t *buf_mem(const struct ovmc_hv *hv, unsigned index, unsigned id)
{
	return hv->mem + buf_lioba(hv, index, id);
}

static void buf_to_free(struct ovmc_hv_session *s, unsigned id)
{
	s->bufs[id].state = BUF_HV_FREE;
	s->free_ids[s->n_free++] = (uint16_t)id;
}

static int add_buffer(struct ovmc_hv *hv, struct ovmc_hv_session *s, unsigned id, uint8_t session,
		      uint8_t owner)
{
	struct ovmc_hmc_msg h = {
		.owner = owner,
		.session = session,
		.index = (uint8_t)s->index,
		.buffer_id = (uint16_t)id,
		.lioba = buf_lioba(hv, s->index, id),
	};
	struct ovmc_entry m;

	s->bufs[id] = (struct hv_buf){
		.state = BUF_ADDING, .add_owner = owner, .add_session = session};
	if (owner == OVMC_OWNER_HYPERVISOR)
		s->n_adding_hv++;
	ovmc_entry_hmc(&m, OVMC_MSG_ADD_BUF, &h);
	return tx(hv, &m);
}

/* Forget every buffer of the index and any session on it. */
static void forget_index(struct ovmc_hv_session *s)
{
	memset(s->bufs, 0, s->hv->cfg.pool_size * sizeof(*s->bufs));
	s->n_free = s->n_partition = s->n_adding_hv = 0;
	s->remove_pending = s->remove_for_reclaim = false;
	free_backlog(s);
	s->want_writable = false;
}

static void end_session(struct ovmc_hv *hv, struct ovmc_hv_session *s)
{
	if (!s->open)
		return;
	s->open = false;
	hv->stats.sessions_closed++;
	hv_log(hv, OVMC_LOG_INFO, "session %u on HMC index %u closed", s->number, s->index);
	if (hv->be && hv->be->close)
		hv->be->close(hv->be_arg, s);
	s->user = NULL;
}

static void reset_all(struct ovmc_hv *hv)
{
	for (unsigned i = 0; i < hv->cfg.max_hmcs; i++) {
		end_session(hv, &hv->slots[i]);
		forget_index(&hv->slots[i]);
	}
	tx_drop_all(hv);
	hv->reclaim_at = OVMC_TIME_NEVER;
	memset(&hv->neg, 0, sizeof(hv->neg));
}

/* ---- outbound messages on a session ---- */

static void send_now(struct ovmc_hv *hv, struct ovmc_hv_session *s, const void *data, size_t len)
{
	unsigned id = s->free_ids[--s->n_free];
	struct ovmc_hmc_msg h = {
		.session = s->number,
		.index = (uint8_t)s->index,
		.buffer_id = (uint16_t)id,
		.msg_len = (uint32_t)len,
	};
	struct ovmc_entry m;

	memcpy(buf_mem(hv, s->index, id), data, len);
	s->bufs[id].state = BUF_PARTITION;
	s->n_partition++;
	hv->stats.messages_out++;
	hv->stats.bytes_out += len;
	ovmc_entry_hmc(&m, OVMC_MSG_SIGNAL, &h);
	tx(hv, &m);
}

/*
 * Without a free buffer the hypervisor cannot send: ask the partition to
 * give one back (it picks an idle one) and add it again as ours.
 */
static void try_reclaim(struct ovmc_hv *hv, struct ovmc_hv_session *s)
{
	if (!s->open || !s->bl_count || s->n_free || s->n_adding_hv || s->remove_pending ||
	    s->n_partition < 2)
		return;
	s->remove_pending = s->remove_for_reclaim = true;
	tx_hmc(hv, OVMC_MSG_REM_BUF, 0, s->number, (uint8_t)s->index, 0);
}

static void flush_backlog(struct ovmc_hv *hv, struct ovmc_hv_session *s)
{
	while (s->bl_head && s->n_free) {
		struct backlog_msg *m = s->bl_head;

		s->bl_head = m->next;
		if (!s->bl_head)
			s->bl_tail = NULL;
		s->bl_count--;
		send_now(hv, s, m->data, m->len);
		free(m);
	}
	if (s->bl_count)
		try_reclaim(hv, s);
	if (s->want_writable && s->bl_count < hv->cfg.backlog_limit) {
		s->want_writable = false;
		if (hv->be && hv->be->writable)
			hv->be->writable(hv->be_arg, s);
	}
}

int ovmc_hv_send(struct ovmc_hv_session *s, const void *data, size_t len)
{
	struct ovmc_hv *hv = s->hv;
	struct backlog_msg *m;

	if (!s->open)
		return -ENOTCONN;
	if (len == 0 || len > hv->neg.mtu)
		return -EMSGSIZE;
	if (!s->bl_count && s->n_free) {
		send_now(hv, s, data, len);
		return 0;
	}
	if (s->bl_count >= hv->cfg.backlog_limit) {
		s->want_writable = true;
		return -ENOBUFS;
	}
	m = malloc(sizeof(*m) + len);
	if (!m)
		return -ENOMEM;
	m->next = NULL;
	m->len = len;
	memcpy(m->data, data, len);
	if (s->bl_tail)
		s->bl_tail->next = m;
	else
		s->bl_head = m;
	s->bl_tail = m;
	s->bl_count++;
	try_reclaim(hv, s);
	return 0;
}

int ovmc_hv_remove_buffer(struct ovmc_hv_session *s)
{
	if (!s->open)
		return -ENOTCONN;
	if (s->remove_pending || s->n_partition < 2)
		return -EBUSY;
	s->remove_pending = true;
	s->remove_for_reclaim = false;
	return tx_hmc(s->hv, OVMC_MSG_REM_BUF, 0, s->number, (uint8_t)s->index, 0);
}

/* ---- session accessors ---- */

struct ovmc_hv_session *ovmc_hv_session_at(struct ovmc_hv *hv, unsigned index)
{
	if (index >= hv->cfg.max_hmcs || !hv->slots[index].open)
		return NULL;
	return &hv->slots[index];
}

unsigned ovmc_hv_session_index(const struct ovmc_hv_session *s)
{
	return s->index;
}

uint8_t ovmc_hv_session_number(const struct ovmc_hv_session *s)
{
	return s->number;
}

const uint8_t *ovmc_hv_session_hmc_id(const struct ovmc_hv_session *s)
{
	return s->hmc_id;
}

struct ovmc_hv *ovmc_hv_session_hv(const struct ovmc_hv_session *s)
{
	return s->hv;
}

void ovmc_hv_session_set_user(struct ovmc_hv_session *s, void *user)
{
	s->user = user;
}

void *ovmc_hv_session_user(const struct ovmc_hv_session *s)
{
	return s->user;
}

int ovmc_hv_pool_info(const struct ovmc_hv *hv, unsigned index, struct ovmc_hv_pool_info *out)
{
	const struct ovmc_hv_session *s;

	if (index >= hv->cfg.max_hmcs)
		return -EINVAL;
	s = &hv->slots[index];
	memset(out, 0, sizeof(*out));
	for (unsigned id = 0; id < hv->cfg.pool_size; id++) {
		switch (s->bufs[id].state) {
		case BUF_PARTITION:
			out->partition_owned++;
			break;
		case BUF_HV_FREE:
			out->hv_free++;
			break;
		case BUF_ADDING:
			out->pending++;
			break;
		case BUF_HV_BUSY:
			break;
		default:
			out->absent++;
			break;
		}
	}
	out->pending += s->remove_pending;
	out->backlog = s->bl_count;
	return 0;
}

/* ---- inbound entries ---- */

static void partner_lost(struct ovmc_hv *hv, uint8_t code)
{
	if (hv->state == OVMC_HV_READY)
		hv->stats.resets++;
	hv_log(hv, OVMC_LOG_INFO, "partition %s (event 0x%02x): sessions closed, waiting for INIT",
	       ovmc_event_name(code), code);
	reset_all(hv);
	hv->state = OVMC_HV_WAIT_INIT;
}

static void handle_init(struct ovmc_hv *hv, const struct ovmc_entry *m)
{
	if (m->type == OVMC_INIT_REQUEST) {
		/* The partition (re)started its side: whatever we had is stale. */
		if (hv->state == OVMC_HV_READY) {
			hv->stats.resets++;
			hv_log(hv, OVMC_LOG_INFO, "partition re-initialised the channel");
		}
		reset_all(hv);
		hv->state = OVMC_HV_LINK_UP;
		tx_init(hv, OVMC_INIT_COMPLETE);
		return;
	}
	if (hv->state == OVMC_HV_WAIT_INIT) {
		hv->state = OVMC_HV_LINK_UP;
		return;
	}
	/* Both ends sent INIT at once: each answers the other's. Harmless. */
	hv_log(hv, OVMC_LOG_DEBUG, "INIT_COMPLETE in state %s ignored",
	       ovmc_hv_state_name(hv->state));
}

static void send_caps_resp(struct ovmc_hv *hv, uint8_t status)
{
	struct ovmc_caps c = {
		.status = status,
		.max_hmcs = hv->cfg.max_hmcs,
		.pool_size = hv->cfg.pool_size,
		.mtu = hv->cfg.mtu,
		.crq_size = hv->cfg.crq_size,
		.version = hv->cfg.version,
	};
	struct ovmc_entry m;

	ovmc_entry_caps(&m, OVMC_MSG_CAP_RESP, &c);
	tx(hv, &m);
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

/* A capabilities message is also proof the partner's end is up (INIT race). */
static void handle_caps(struct ovmc_hv *hv, const struct ovmc_entry *m)
{
	const struct ovmc_caps *c = &m->caps;

	if (hv->state == OVMC_HV_READY) {
		hv_log(hv, OVMC_LOG_INFO, "capabilities renegotiated: sessions closed");
		hv->stats.resets++;
	}
	reset_all(hv);
	if ((c->version >> 8) != (hv->cfg.version >> 8)) {
		hv_log(hv, OVMC_LOG_ERROR,
		       "partition speaks VMC version 0x%04x, incompatible with ours (0x%04x): "
		       "channel failed",
		       c->version, hv->cfg.version);
		hv->state = OVMC_HV_FAILED;
		send_caps_resp(hv, OVMC_CAP_BAD_VERSION);
		return;
	}
	if (!c->max_hmcs || !c->pool_size || c->mtu < MIN_MTU || c->crq_size < 2) {
		hv_log(hv, OVMC_LOG_ERROR,
		       "partition capabilities unusable (hmcs %u pool %u mtu %u crq %u): "
		       "channel failed",
		       c->max_hmcs, c->pool_size, c->mtu, c->crq_size);
		hv->state = OVMC_HV_FAILED;
		send_caps_resp(hv, OVMC_CAP_FAILURE);
		return;
	}
	hv->neg.max_hmcs = (uint8_t)min_u32(c->max_hmcs, hv->cfg.max_hmcs);
	hv->neg.pool_size = (uint16_t)min_u32(c->pool_size, hv->cfg.pool_size);
	hv->neg.mtu = min_u32(c->mtu, hv->cfg.mtu);
	hv->neg.partner_crq_size = c->crq_size;
	hv->neg.partner_version = c->version;
	hv->state = OVMC_HV_READY;
	hv_log(hv, OVMC_LOG_INFO,
	       "capabilities: hmcs %u, pool %u, mtu %u, partition queue %u entries",
	       hv->neg.max_hmcs, hv->neg.pool_size, hv->neg.mtu, c->crq_size);
	send_caps_resp(hv, OVMC_CAP_OK);
	/* Each index needs one buffer before the partition can open on it. */
	for (unsigned i = 0; i < hv->neg.max_hmcs; i++)
		add_buffer(hv, &hv->slots[i], 0, 0, OVMC_OWNER_PARTITION);
}

/* Index in range; NULL (and counted) otherwise. */
static struct ovmc_hv_session *slot_of(struct ovmc_hv *hv, const struct ovmc_entry *m)
{
	if (m->hmc.index >= hv->neg.max_hmcs) {
		proto_err(hv, &hv->stats.err_session, "%s for HMC index %u (only %u negotiated)",
			  ovmc_msg_type_name(m->type), m->hmc.index, hv->neg.max_hmcs);
		return NULL;
	}
	return &hv->slots[m->hmc.index];
}

/* Index in range and the session open with this number. */
static struct ovmc_hv_session *session_of(struct ovmc_hv *hv, const struct ovmc_entry *m)
{
	struct ovmc_hv_session *s = slot_of(hv, m);

	if (!s)
		return NULL;
	if (!s->open || s->number != m->hmc.session) {
		proto_err(hv, &hv->stats.err_session, "%s for session %u on index %u (%s %u)",
			  ovmc_msg_type_name(m->type), m->hmc.session, m->hmc.index,
			  s->open ? "open is" : "none open, last", s->number);
		return NULL;
	}
	return s;
}

/*
 * A failed open makes the partition forget every buffer of the index (as
 * Linux does), so ours go too and the index gets a new initial buffer.
 */
static void refuse_open(struct ovmc_hv *hv, struct ovmc_hv_session *s, const struct ovmc_hmc_msg *h)
{
	end_session(hv, s);
	forget_index(s);
	tx_hmc(hv, OVMC_MSG_OPEN_RESP, 1, h->session, h->index, h->buffer_id);
	add_buffer(hv, s, 0, 0, OVMC_OWNER_PARTITION);
}

static void handle_open(struct ovmc_hv *hv, const struct ovmc_entry *m)
{
	const struct ovmc_hmc_msg *h = &m->hmc;
	struct ovmc_hv_session *s = slot_of(hv, m);
	unsigned given = 0, share;

	/* An answer naming an index the partition does not have would make it
	 * reset the whole channel: count and drop instead. */
	if (!s)
		return;
	if (h->session == 0) {
		proto_err(hv, &hv->stats.err_session, "OPEN with session 0");
		refuse_open(hv, s, h);
		return;
	}
	if (s->open) {
		proto_err(hv, &hv->stats.err_state, "OPEN on index %u, session %u is open",
			  h->index, s->number);
		refuse_open(hv, s, h);
		return;
	}
	if (h->buffer_id >= hv->neg.pool_size || s->bufs[h->buffer_id].state != BUF_PARTITION) {
		proto_err(hv, &hv->stats.err_buffer,
			  "OPEN names buffer %u the partition does not own", h->buffer_id);
		refuse_open(hv, s, h);
		return;
	}
	memcpy(s->hmc_id, buf_mem(hv, s->index, h->buffer_id), OVMC_HMC_ID_LEN);
	s->open = true;
	s->number = h->session;
	s->user = NULL;
	if (hv->be && hv->be->open && hv->be->open(hv->be_arg, s, s->hmc_id) < 0) {
		s->open = false;
		hv_log(hv, OVMC_LOG_INFO, "backend refused session %u on index %u", s->number,
		       s->index);
		refuse_open(hv, s, h);
		return;
	}
	hv->stats.sessions_opened++;
	hv_log(hv, OVMC_LOG_INFO, "session %u opened on HMC index %u", s->number, s->index);
	/* Fill the pool before answering: the highest ids are ours. */
	share = hv->cfg.hv_buffers ? hv->cfg.hv_buffers : hv->neg.pool_size / 2u;
	if (share >= hv->neg.pool_size)
		share = hv->neg.pool_size - 1u;
	for (unsigned id = hv->neg.pool_size; id-- > 0;) {
		if (s->bufs[id].state != BUF_ABSENT)
			continue;
		if (given < share) {
			add_buffer(hv, s, id, s->number, OVMC_OWNER_HYPERVISOR);
			given++;
		} else {
			add_buffer(hv, s, id, s->number, OVMC_OWNER_PARTITION);
		}
	}
	tx_hmc(hv, OVMC_MSG_OPEN_RESP, 0, h->session, h->index, h->buffer_id);
}

static void handle_close(struct ovmc_hv *hv, const struct ovmc_entry *m)
{
	const struct ovmc_hmc_msg *h = &m->hmc;
	struct ovmc_hv_session *s = slot_of(hv, m);

	if (!s)
		return;
	if (s->open && s->number != h->session) {
		/* Both ends disagree about the index: a failed close makes the
		 * partition reset the channel, which brings them together. */
		proto_err(hv, &hv->stats.err_session, "CLOSE of session %u, %u is open on index %u",
			  h->session, s->number, h->index);
		tx_hmc(hv, OVMC_MSG_CLOSE_RESP, 1, h->session, h->index, 0);
		return;
	}
	if (!s->open)
		proto_err(hv, &hv->stats.err_session, "CLOSE of session %u, none open on index %u",
			  h->session, h->index);
	end_session(hv, s);
	forget_index(s);
	tx_hmc(hv, OVMC_MSG_CLOSE_RESP, 0, h->session, h->index, 0);
	/* The partition forgets every buffer of the index; give it a new one. */
	add_buffer(hv, s, 0, 0, OVMC_OWNER_PARTITION);
}

static void handle_add_buf_resp(struct ovmc_hv *hv, const struct ovmc_entry *m)
{
	const struct ovmc_hmc_msg *h = &m->hmc;
	struct ovmc_hv_session *s = slot_of(hv, m);
	struct hv_buf *b;

	if (!s)
		return;
	if (h->buffer_id >= hv->neg.pool_size) {
		proto_err(hv, &hv->stats.err_buffer, "ADD_BUF_RESP for buffer %u (pool %u)",
			  h->buffer_id, hv->neg.pool_size);
		return;
	}
	b = &s->bufs[h->buffer_id];
	if (b->state != BUF_ADDING || b->add_session != h->session) {
		/* An answer to an add that a close has since cancelled. */
		hv_log(hv, OVMC_LOG_DEBUG, "stale ADD_BUF_RESP for buffer %u of index %u",
		       h->buffer_id, h->index);
		return;
	}
	if (b->add_owner == OVMC_OWNER_HYPERVISOR)
		s->n_adding_hv--;
	if (h->status != OVMC_BUF_SUCCESS) {
		b->state = BUF_ABSENT;
		hv_log(hv, OVMC_LOG_WARN, "partition refused buffer %u of index %u (status %u)",
		       h->buffer_id, h->index, h->status);
		return;
	}
	if (b->add_owner == OVMC_OWNER_HYPERVISOR) {
		buf_to_free(s, h->buffer_id);
		flush_backlog(hv, s);
	} else {
		b->state = BUF_PARTITION;
		s->n_partition++;
	}
}

static void handle_rem_buf_resp(struct ovmc_hv *hv, const struct ovmc_entry *m)
{
	const struct ovmc_hmc_msg *h = &m->hmc;
	struct ovmc_hv_session *s = session_of(hv, m);
	bool reclaim;

	if (!s)
		return;
	if (!s->remove_pending) {
		proto_err(hv, &hv->stats.err_state, "REM_BUF_RESP without a pending removal");
		return;
	}
	reclaim = s->remove_for_reclaim;
	s->remove_pending = s->remove_for_reclaim = false;
	if (h->status == OVMC_BUF_SUCCESS) {
		if (h->buffer_id >= hv->neg.pool_size ||
		    s->bufs[h->buffer_id].state != BUF_PARTITION) {
			proto_err(hv, &hv->stats.err_buffer,
				  "partition gave back buffer %u it does not own", h->buffer_id);
			return;
		}
		s->bufs[h->buffer_id].state = BUF_ABSENT;
		s->n_partition--;
		hv_log(hv, OVMC_LOG_DEBUG, "partition gave back buffer %u of index %u",
		       h->buffer_id, s->index);
		if (reclaim) {
			hv->stats.buffers_reclaimed++;
			hv->reclaim_delay = RECLAIM_MIN_NS;
			add_buffer(hv, s, h->buffer_id, s->number, OVMC_OWNER_HYPERVISOR);
		}
		return;
	}
	hv_log(hv, OVMC_LOG_DEBUG, "partition kept its buffers (status %u)", h->status);
	if (reclaim && s->bl_count) {
		/* It has none idle; ask again later, backing off. */
		uint64_t at = hv->now + hv->reclaim_delay;

		if (at < hv->reclaim_at)
			hv->reclaim_at = at;
		if (hv->reclaim_delay < RECLAIM_MAX_NS)
			hv->reclaim_delay *= 2;
	}
}

static void handle_signal(struct ovmc_hv *hv, const struct ovmc_entry *m)
{
	const struct ovmc_hmc_msg *h = &m->hmc;
	struct ovmc_hv_session *s = session_of(hv, m);
	unsigned id = h->buffer_id;

	if (!s)
		return;
	if (id >= hv->neg.pool_size || s->bufs[id].state != BUF_PARTITION) {
		proto_err(hv, &hv->stats.err_buffer,
			  "SIGNAL with buffer %u the partition does not own", id);
		return;
	}
	/* The signal hands the buffer over whatever it carries. */
	s->n_partition--;
	if (h->msg_len == 0 || h->msg_len > hv->neg.mtu) {
		proto_err(hv, &hv->stats.err_length, "SIGNAL of %u bytes (mtu %u)", h->msg_len,
			  hv->neg.mtu);
		buf_to_free(s, id);
		flush_backlog(hv, s);
		return;
	}
	hv->stats.messages_in++;
	hv->stats.bytes_in += h->msg_len;
	s->bufs[id].state = BUF_HV_BUSY;
	if (hv->be && hv->be->message)
		hv->be->message(hv->be_arg, s, buf_mem(hv, s->index, id), h->msg_len);
	if (s->bufs[id].state == BUF_HV_BUSY)
		buf_to_free(s, id);
	flush_backlog(hv, s);
}

typedef void (*msg_handler)(struct ovmc_hv *hv, const struct ovmc_entry *m);

/* Messages the partition sends; the rest only the hypervisor sends. */
static msg_handler handler_for(uint8_t type)
{
	switch (type) {
	case OVMC_MSG_CAP:
		return handle_caps;
	case OVMC_MSG_OPEN:
		return handle_open;
	case OVMC_MSG_CLOSE:
		return handle_close;
	case OVMC_MSG_ADD_BUF_RESP:
		return handle_add_buf_resp;
	case OVMC_MSG_REM_BUF_RESP:
		return handle_rem_buf_resp;
	case OVMC_MSG_SIGNAL:
		return handle_signal;
	}
	return NULL;
}

int ovmc_hv_handle_entry(struct ovmc_hv *hv, const uint8_t entry[OVMC_CRQ_ENTRY_SIZE],
			 uint64_t now)
{
	struct ovmc_entry m;
	msg_handler fn;
	int rc;

	hv->now = now;
	hv->stats.entries_in++;
	if (hv->log_level >= OVMC_LOG_TRACE) {
		char line[128];

		ovmc_entry_format(entry, line, sizeof(line));
		hv_log(hv, OVMC_LOG_TRACE, "partition -> hv: %s", line);
	}
	/* Only the platform writes 0xFF; any code means the partner is gone. */
	if (entry[0] == OVMC_CRQ_TRANSPORT) {
		partner_lost(hv, entry[1]);
		return 0;
	}
	rc = ovmc_entry_decode(entry, OVMC_CRQ_ENTRY_SIZE, OVMC_DECODE_SIGNAL_PAD, &m);
	if (rc) {
		proto_err(hv, &hv->stats.err_decode, "undecodable entry: %s", ovmc_strerror(rc));
		goto out;
	}
	if (m.header == OVMC_CRQ_INIT) {
		handle_init(hv, &m);
		goto out;
	}
	if (m.type == OVMC_MSG_SIGNAL && ovmc_get_be32(entry + 8))
		hv->stats.reserved_pad++;
	fn = handler_for(m.type);
	if (!fn) {
		proto_err(hv, &hv->stats.err_direction, "%s is never sent by a partition",
			  ovmc_msg_type_name(m.type));
		goto out;
	}
	if (hv->state == OVMC_HV_STOPPED ||
	    (m.type != OVMC_MSG_CAP && hv->state != OVMC_HV_READY)) {
		proto_err(hv, &hv->stats.err_state, "%s in state %s", ovmc_msg_type_name(m.type),
			  ovmc_hv_state_name(hv->state));
		goto out;
	}
	fn(hv, &m);
out:
	tx_flush(hv);
	return 0;
}

void ovmc_hv_start(struct ovmc_hv *hv, uint64_t now)
{
	struct ovmc_entry m;
	uint8_t e[OVMC_CRQ_ENTRY_SIZE];

	hv->now = now;
	reset_all(hv);
	hv->state = OVMC_HV_WAIT_INIT;
	ovmc_entry_init(&m, OVMC_INIT_REQUEST);
	ovmc_entry_encode(&m, e);
	/* H_CLOSED is no failure: the partition's INIT comes when it registers. */
	if (hv->ops.send_crq(hv->ops_user, e) == 0)
		hv->stats.entries_out++;
}

void ovmc_hv_stop(struct ovmc_hv *hv)
{
	reset_all(hv);
	hv->state = OVMC_HV_STOPPED;
}

void ovmc_hv_handle_timer(struct ovmc_hv *hv, uint64_t now)
{
	hv->now = now;
	if (now >= hv->tx_retry_at) {
		hv->tx_retry_at = OVMC_TIME_NEVER;
		tx_flush(hv);
	}
	if (now >= hv->reclaim_at) {
		hv->reclaim_at = OVMC_TIME_NEVER;
		for (unsigned i = 0; i < hv->neg.max_hmcs; i++)
			try_reclaim(hv, &hv->slots[i]);
		tx_flush(hv);
	}
}

uint64_t ovmc_hv_next_deadline(const struct ovmc_hv *hv)
{
	return hv->tx_retry_at < hv->reclaim_at ? hv->tx_retry_at : hv->reclaim_at;
}

void ovmc_hv_bind(struct ovmc_hv *hv, struct ovmc_vmc *vmc, void (*unbind)(struct ovmc_vmc *))
{
	hv->binding = vmc;
	hv->unbind = unbind;
}

struct ovmc_vmc *ovmc_hv_binding(const struct ovmc_hv *hv)
{
	return hv->binding;
}
