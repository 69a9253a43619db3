// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Driver core: the management-partition end of the VMC (docs/protocol.md,
 * "Driver"). Where the Linux driver is weak this one differs on purpose:
 * per-file wake-ups, O(1) buffer selection, no silent loss, replies that
 * keep the hypervisor from waiting forever; docs/linux-differences.md lists
 * every case.
 *
 * Partition memory layout: the CRQ page at I/O address 0, then one mirror
 * of max_mtu bytes per (HMC index, buffer id) at a fixed place, so a
 * buffer never needs an allocation.
 */
#include <openvmc/driver.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_MS 1000000ull
#define TX_RETRY_NS (1 * NS_PER_MS)
#define DEFAULT_INIT_RETRY_NS (1000 * NS_PER_MS)
#define CRQ_IOBA 0u
#define CRQ_BYTES OVMC_PAGE_SIZE
#define MIN_MTU 32u
#define HCALL_BUSY_TRIES 3

enum buf_state {
	DB_ABSENT,
	DB_FREE, /* ours, free for a write */
	DB_BUSY, /* ours, carrying the HMC id or waiting for read() */
	DB_HV,   /* the hypervisor's */
};

struct drv_buf {
	uint8_t state;
	uint32_t lioba;
	uint32_t msg_len;
};

struct drv_slot {
	unsigned index;
	int state; /* enum ovmc_slot_state */
	uint8_t session;
	struct ovmc_drv_file *file;
	uint8_t hmc_id[OVMC_HMC_ID_LEN];
	uint16_t open_buf;

	struct drv_buf *bufs;
	uint16_t *free_ids; /* stack of DB_FREE ids */
	unsigned n_free, n_valid, n_hv;
	uint16_t *rq; /* read queue: ids of DB_BUSY buffers, in arrival order */
	unsigned rq_head, rq_count;
};

/* A message kept for a file whose connection was reset under it. */
struct orphan {
	struct orphan *next;
	size_t len;
	uint8_t data[];
};

struct ovmc_drv_file {
	struct ovmc_drv *d;
	struct drv_slot *slot;
	bool reset; /* its connection ended under it (Linux: session invalid) */
	struct orphan *orphans, *orphans_tail;
	unsigned last_events;
	void *user;
};

struct ovmc_drv {
	struct ovmc_drv_config cfg;
	struct ovmc_platform *plat;
	struct ovmc_drv_callbacks cbs;
	void *user;
	enum ovmc_log_level log_level;

	enum ovmc_drv_state state;
	struct ovmc_vmc_node node;
	bool crq_registered;
	uint8_t *mem;
	uint32_t crq_entries, crq_cur;
	uint32_t drc_index;
	struct ovmc_drv_negotiated neg;
	struct drv_slot *slots; /* cfg.max_hmcs */

	uint8_t (*txq)[OVMC_CRQ_ENTRY_SIZE];
	unsigned tx_cap, tx_head, tx_count;

	uint64_t now;
	uint64_t tx_retry_at;
	uint64_t init_retry_at;
	struct ovmc_drv_stats stats;
};

static void drv_log(struct ovmc_drv *d, enum ovmc_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void drv_log(struct ovmc_drv *d, enum ovmc_log_level level, const char *fmt, ...)
{
	va_list ap;

	if (!d->cbs.log || level > d->log_level)
		return;
	va_start(ap, fmt);
	d->cbs.log(d->user, level, fmt, ap);
	va_end(ap);
}

static void proto_err(struct ovmc_drv *d, uint64_t *reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void proto_err(struct ovmc_drv *d, uint64_t *reason, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	(*reason)++;
	d->stats.protocol_errors++;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	drv_log(d, OVMC_LOG_WARN, "protocol error: %s", msg);
}

void ovmc_drv_config_default(struct ovmc_drv_config *cfg)
{
	*cfg = (struct ovmc_drv_config){
		.max_hmcs = 1,
		.pool_size = 32,
		.max_mtu = 4096,
		.version = OVMC_PROTOCOL_VERSION,
	};
}

size_t ovmc_drv_memory_required(const struct ovmc_drv_config *cfg)
{
	return CRQ_BYTES + (size_t)cfg->max_hmcs * cfg->pool_size * cfg->max_mtu;
}

static uint64_t mirror_ioba(const struct ovmc_drv *d, unsigned index, unsigned id)
{
	return CRQ_BYTES + ((uint64_t)index * d->cfg.pool_size + id) * d->cfg.max_mtu;
}

static uint8_t *mirror(const struct ovmc_drv *d, unsigned index, unsigned id)
{
	return d->mem + mirror_ioba(d, index, id);
}

static void set_state(struct ovmc_drv *d, enum ovmc_drv_state st)
{
	if (d->state == st)
		return;
	drv_log(d, OVMC_LOG_DEBUG, "state %s -> %s", ovmc_drv_state_name(d->state),
		ovmc_drv_state_name(st));
	d->state = st;
	if (d->cbs.state_changed)
		d->cbs.state_changed(d->user, st);
}

int ovmc_drv_new(const struct ovmc_drv_config *cfg, struct ovmc_platform *plat,
		 const struct ovmc_drv_callbacks *cbs, void *user, struct ovmc_drv **out)
{
	struct ovmc_drv *d;
	size_t mem_size;

	if (!cfg->max_hmcs || !cfg->pool_size || cfg->pool_size > 1024 || cfg->max_mtu < MIN_MTU ||
	    cfg->max_mtu > 65536)
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->cfg = *cfg;
	if (!d->cfg.init_retry_ns)
		d->cfg.init_retry_ns = DEFAULT_INIT_RETRY_NS;
	d->plat = plat;
	if (cbs)
		d->cbs = *cbs;
	d->user = user;
	d->log_level = OVMC_LOG_INFO;
	d->mem = ovmc_platform_memory(plat, &mem_size);
	d->tx_retry_at = d->init_retry_at = OVMC_TIME_NEVER;
	if (mem_size < ovmc_drv_memory_required(cfg)) {
		free(d);
		return -EINVAL;
	}
	d->slots = calloc(cfg->max_hmcs, sizeof(*d->slots));
	if (!d->slots)
		goto nomem;
	for (unsigned i = 0; i < cfg->max_hmcs; i++) {
		struct drv_slot *s = &d->slots[i];

		s->index = i;
		s->bufs = calloc(cfg->pool_size, sizeof(*s->bufs));
		s->free_ids = calloc(cfg->pool_size, sizeof(*s->free_ids));
		s->rq = calloc(cfg->pool_size, sizeof(*s->rq));
		if (!s->bufs || !s->free_ids || !s->rq)
			goto nomem;
	}
	*out = d;
	return 0;
nomem:
	ovmc_drv_free(d);
	return -ENOMEM;
}

void ovmc_drv_free(struct ovmc_drv *d)
{
	if (!d)
		return;
	if (d->crq_registered)
		ovmc_h_free_crq(d->plat, d->node.unit_address);
	if (d->slots) {
		for (unsigned i = 0; i < d->cfg.max_hmcs; i++) {
			free(d->slots[i].bufs);
			free(d->slots[i].free_ids);
			free(d->slots[i].rq);
		}
	}
	free(d->slots);
	free(d->txq);
	free(d);
}

void ovmc_drv_set_log_level(struct ovmc_drv *d, enum ovmc_log_level level)
{
	d->log_level = level;
}

enum ovmc_drv_state ovmc_drv_state(const struct ovmc_drv *d)
{
	return d->state;
}

const char *ovmc_drv_state_name(int state)
{
	switch (state) {
	case OVMC_DRV_SCHED_RESET: return "sched-reset";
	case OVMC_DRV_INITIAL: return "initial";
	case OVMC_DRV_CRQINIT: return "crqinit";
	case OVMC_DRV_CAPABILITIES: return "capabilities";
	case OVMC_DRV_READY: return "ready";
	case OVMC_DRV_FAILED: return "failed";
	}
	return "unknown";
}

const char *ovmc_slot_state_name(int state)
{
	static const char *const names[] = {"free", "initial", "opening", "ready", "failed",
					    "closing"};

	return (unsigned)state < sizeof(names) / sizeof(names[0]) ? names[state] : "unknown";
}

void ovmc_drv_negotiated(const struct ovmc_drv *d, struct ovmc_drv_negotiated *out)
{
	*out = d->neg;
}

void ovmc_drv_stats(const struct ovmc_drv *d, struct ovmc_drv_stats *out)
{
	*out = d->stats;
}

/* ---- tracing ---- */

static void trace_entry(struct ovmc_drv *d, enum ovmc_trace_kind kind,
			const uint8_t e[OVMC_CRQ_ENTRY_SIZE])
{
	struct ovmc_trace_event ev = {.kind = kind, .entry = e};

	if (d->cbs.trace)
		d->cbs.trace(d->user, &ev);
}

/* H_COPY_RDMA, traced with the bytes that moved when it succeeds. */
static long rdma(struct ovmc_drv *d, uint64_t len, uint64_t src_liobn, uint64_t src_ioba,
		 uint64_t dst_liobn, uint64_t dst_ioba)
{
	long rc = ovmc_h_copy_rdma(d->plat, len, src_liobn, src_ioba, dst_liobn, dst_ioba);
	bool to_hv = dst_liobn == d->node.liobn_remote;
	struct ovmc_trace_event ev = {
		.kind = OVMC_TRACE_RDMA,
		.opcode = OVMC_H_COPY_RDMA,
		.args = {len, src_liobn, src_ioba, dst_liobn, dst_ioba},
		.data = d->mem + (to_hv ? src_ioba : dst_ioba),
		.data_len = len,
		.to_hv = to_hv,
	};

	if (rc == OVMC_H_SUCCESS && d->cbs.trace)
		d->cbs.trace(d->user, &ev);
	return rc;
}

/* ---- sending ---- */

static void txq_push(struct ovmc_drv *d, const uint8_t e[OVMC_CRQ_ENTRY_SIZE])
{
	if (d->tx_count == d->tx_cap) {
		unsigned cap = d->tx_cap ? d->tx_cap * 2 : 64;
		uint8_t(*q)[OVMC_CRQ_ENTRY_SIZE] = malloc((size_t)cap * OVMC_CRQ_ENTRY_SIZE);

		if (!q) {
			/* Only reachable without memory: say so, the entry is gone. */
			d->stats.send_failed++;
			drv_log(d, OVMC_LOG_ERROR, "out of memory: outbound entry lost");
			return;
		}
		for (unsigned i = 0; i < d->tx_count; i++)
			memcpy(q[i], d->txq[(d->tx_head + i) % d->tx_cap], OVMC_CRQ_ENTRY_SIZE);
		free(d->txq);
		d->txq = q;
		d->tx_cap = cap;
		d->tx_head = 0;
	}
	memcpy(d->txq[(d->tx_head + d->tx_count) % d->tx_cap], e, OVMC_CRQ_ENTRY_SIZE);
	d->tx_count++;
	d->stats.send_deferred++;
	if (d->tx_retry_at == OVMC_TIME_NEVER)
		d->tx_retry_at = d->now + TX_RETRY_NS;
}

static long send_raw(struct ovmc_drv *d, const uint8_t e[OVMC_CRQ_ENTRY_SIZE])
{
	uint64_t hi, lo;
	long rc;

	ovmc_entry_to_words(e, &hi, &lo);
	rc = ovmc_h_send_crq(d->plat, d->node.unit_address, hi, lo);
	if (rc == OVMC_H_SUCCESS) {
		d->stats.entries_out++;
		trace_entry(d, OVMC_TRACE_TO_HV, e);
	}
	return rc;
}

static void tx_flush(struct ovmc_drv *d)
{
	while (d->tx_count) {
		long rc = send_raw(d, d->txq[d->tx_head]);

		if (rc == OVMC_H_DROPPED) {
			if (d->tx_retry_at == OVMC_TIME_NEVER)
				d->tx_retry_at = d->now + TX_RETRY_NS;
			return;
		}
		if (rc != OVMC_H_SUCCESS) {
			d->stats.send_failed++;
			drv_log(d, OVMC_LOG_WARN, "queued entry refused: %s", ovmc_hcall_rc_name(rc));
		}
		d->tx_head = (d->tx_head + 1) % d->tx_cap;
		d->tx_count--;
	}
	d->tx_retry_at = OVMC_TIME_NEVER;
}

/*
 * Send in order; a full hypervisor queue holds the entry back. Returns 0
 * (sent or queued) or -EIO when the platform refused it (partner gone).
 */
static int tx(struct ovmc_drv *d, const struct ovmc_entry *m)
{
	uint8_t e[OVMC_CRQ_ENTRY_SIZE];
	long rc;

	if (ovmc_entry_encode(m, e))
		return -EIO;
	if (d->log_level >= OVMC_LOG_TRACE) {
		char line[128];

		ovmc_entry_format(e, line, sizeof(line));
		drv_log(d, OVMC_LOG_TRACE, "partition -> hv: %s", line);
	}
	if (d->tx_count) {
		txq_push(d, e);
		return 0;
	}
	rc = send_raw(d, e);
	if (rc == OVMC_H_SUCCESS)
		return 0;
	if (rc == OVMC_H_DROPPED) {
		txq_push(d, e);
		return 0;
	}
	d->stats.send_failed++;
	drv_log(d, rc == OVMC_H_CLOSED ? OVMC_LOG_DEBUG : OVMC_LOG_WARN, "send refused: %s",
		ovmc_hcall_rc_name(rc));
	return -EIO;
}

static int tx_hmc(struct ovmc_drv *d, enum ovmc_msg_type type, const struct ovmc_hmc_msg *h)
{
	struct ovmc_entry m;

	ovmc_entry_hmc(&m, type, h);
	return tx(d, &m);
}

static int tx_resp(struct ovmc_drv *d, enum ovmc_msg_type type, uint8_t status, uint8_t session,
		   uint8_t index, uint16_t buffer_id)
{
	struct ovmc_hmc_msg h = {
		.status = status, .session = session, .index = index, .buffer_id = buffer_id};

	return tx_hmc(d, type, &h);
}

static void send_init(struct ovmc_drv *d, enum ovmc_init_format fmt)
{
	struct ovmc_entry m;
	uint8_t e[OVMC_CRQ_ENTRY_SIZE];

	ovmc_entry_init(&m, fmt);
	ovmc_entry_encode(&m, e);
	/* H_CLOSED: the hypervisor end is not up; its INIT will come. */
	send_raw(d, e);
}

static void send_caps(struct ovmc_drv *d)
{
	struct ovmc_caps c = {
		.max_hmcs = d->cfg.max_hmcs,
		.pool_size = d->cfg.pool_size,
		.mtu = d->cfg.max_mtu,
		.crq_size = (uint16_t)d->crq_entries,
		.version = d->cfg.version,
	};
	struct ovmc_entry m;

	ovmc_entry_caps(&m, OVMC_MSG_CAP, &c);
	if (tx(d, &m) == 0)
		set_state(d, OVMC_DRV_CAPABILITIES);
}

/* ---- files and slots ---- */

static unsigned file_events(const struct ovmc_drv *d, const struct ovmc_drv_file *f)
{
	unsigned ev = 0;
	const struct drv_slot *s = f->slot;

	if (f->orphans || (s && s->rq_count))
		ev |= POLLIN | POLLRDNORM;
	if (s && s->state == OVMC_SLOT_READY && s->n_free)
		ev |= POLLOUT | POLLWRNORM;
	if (f->reset)
		ev |= POLLHUP;
	(void)d;
	return ev;
}

static void file_update(struct ovmc_drv *d, struct ovmc_drv_file *f)
{
	unsigned ev;

	if (!f)
		return;
	ev = file_events(d, f);
	if (ev == f->last_events)
		return;
	f->last_events = ev;
	if (d->cbs.file_event)
		d->cbs.file_event(d->user, f, ev);
}

static void buf_free(struct drv_slot *s, unsigned id)
{
	s->bufs[id].state = DB_FREE;
	s->free_ids[s->n_free++] = (uint16_t)id;
}

static int rq_pop(struct drv_slot *s, struct ovmc_drv *d)
{
	int id;

	if (!s->rq_count)
		return -1;
	id = s->rq[s->rq_head];
	s->rq_head = (s->rq_head + 1) % d->cfg.pool_size;
	s->rq_count--;
	return id;
}

/* Keep what was delivered before a reset readable by the file. */
static void orphan_queue(struct ovmc_drv *d, struct ovmc_drv_file *f, struct drv_slot *s)
{
	int id;

	while ((id = rq_pop(s, d)) >= 0) {
		size_t len = s->bufs[id].msg_len;
		struct orphan *o = malloc(sizeof(*o) + len);

		if (!o) {
			d->stats.discarded_msgs++;
			drv_log(d, OVMC_LOG_ERROR, "out of memory: message discarded at reset");
			continue;
		}
		o->next = NULL;
		o->len = len;
		memcpy(o->data, mirror(d, s->index, (unsigned)id), len);
		if (f->orphans_tail)
			f->orphans_tail->next = o;
		else
			f->orphans = o;
		f->orphans_tail = o;
	}
}

/* Unread messages of a connection nobody reads any more; returns how many. */
static unsigned discard_queue(struct ovmc_drv *d, struct drv_slot *s)
{
	unsigned n = 0;
	int id;

	while ((id = rq_pop(s, d)) >= 0) {
		d->stats.discarded_msgs++;
		n++;
		if (s->bufs[id].state == DB_BUSY)
			buf_free(s, (unsigned)id);
	}
	return n;
}

static void forget_buffers(struct ovmc_drv *d, struct drv_slot *s)
{
	memset(s->bufs, 0, d->cfg.pool_size * sizeof(*s->bufs));
	s->n_free = s->n_valid = s->n_hv = 0;
	s->rq_head = s->rq_count = 0;
}

/*
 * Give the slot back. Its file (if any) keeps the messages already
 * delivered, then sees EBADFD / EIO / POLLHUP as in Linux.
 */
static void return_slot(struct ovmc_drv *d, struct drv_slot *s)
{
	struct ovmc_drv_file *f = s->file;

	if (f) {
		orphan_queue(d, f, s);
		f->slot = NULL;
		f->reset = true;
	} else {
		unsigned n = discard_queue(d, s);

		if (n)
			drv_log(d, OVMC_LOG_INFO, "%u unread messages of closed HMC index %u discarded",
				n, s->index);
	}
	s->file = NULL;
	forget_buffers(d, s);
	s->state = OVMC_SLOT_FREE;
	file_update(d, f);
}

static void return_all_slots(struct ovmc_drv *d)
{
	for (unsigned i = 0; i < d->cfg.max_hmcs; i++)
		return_slot(d, &d->slots[i]);
}

/* ---- CRQ registration and resets ---- */

static long crq_register(struct ovmc_drv *d)
{
	long rc;

	memset(d->mem + CRQ_IOBA, 0, CRQ_BYTES);
	d->crq_cur = 0;
	d->crq_entries = CRQ_BYTES / OVMC_CRQ_ENTRY_SIZE;
	rc = ovmc_h_reg_crq(d->plat, d->node.unit_address, CRQ_IOBA, CRQ_BYTES);
	if (rc == OVMC_H_RESOURCE) {
		/* Left registered by an earlier instance: free it and retry once. */
		ovmc_h_free_crq(d->plat, d->node.unit_address);
		rc = ovmc_h_reg_crq(d->plat, d->node.unit_address, CRQ_IOBA, CRQ_BYTES);
	}
	if (rc != OVMC_H_SUCCESS && rc != OVMC_H_CLOSED) {
		drv_log(d, OVMC_LOG_ERROR, "H_REG_CRQ failed: %s", ovmc_hcall_rc_name(rc));
		return rc;
	}
	d->crq_registered = true;
	rc = ovmc_h_vio_signal(d->plat, d->node.unit_address, OVMC_VIO_IRQ_ENABLE);
	if (rc != OVMC_H_SUCCESS) {
		drv_log(d, OVMC_LOG_ERROR, "H_VIO_SIGNAL failed: %s", ovmc_hcall_rc_name(rc));
		return rc;
	}
	return OVMC_H_SUCCESS;
}

static void begin_init(struct ovmc_drv *d)
{
	memset(&d->neg, 0, sizeof(d->neg));
	d->tx_count = d->tx_head = 0;
	d->tx_retry_at = OVMC_TIME_NEVER;
	set_state(d, OVMC_DRV_CRQINIT);
	send_init(d, OVMC_INIT_REQUEST);
	d->init_retry_at = d->now + d->cfg.init_retry_ns;
}

/* Transport event: the partner is gone or restarted; wait for its INIT. */
static void transport_reset(struct ovmc_drv *d, uint8_t code)
{
	d->stats.resets++;
	drv_log(d, OVMC_LOG_WARN, "hypervisor %s (event 0x%02x): connections reset",
		ovmc_event_name(code), code);
	return_all_slots(d);
	begin_init(d);
}

/* Protocol failure: deregister and register again, then INIT. */
static void driver_reset(struct ovmc_drv *d, const char *why)
{
	long rc;

	d->stats.resets++;
	drv_log(d, OVMC_LOG_WARN, "resetting the CRQ: %s", why);
	return_all_slots(d);
	set_state(d, OVMC_DRV_SCHED_RESET);
	if (d->crq_registered) {
		ovmc_h_free_crq(d->plat, d->node.unit_address);
		d->crq_registered = false;
	}
	rc = crq_register(d);
	if (rc != OVMC_H_SUCCESS) {
		set_state(d, OVMC_DRV_FAILED);
		return;
	}
	begin_init(d);
}

int ovmc_drv_start(struct ovmc_drv *d, uint64_t now)
{
	int rc;

	d->now = now;
	rc = ovmc_platform_vmc_node(d->plat, &d->node);
	if (rc == -ENODEV) {
		drv_log(d, OVMC_LOG_INFO, "no VMC device yet (request one with REQUESTVMC)");
		return 0;
	}
	if (rc) {
		set_state(d, OVMC_DRV_FAILED);
		return rc;
	}
	if (d->node.window_local < ovmc_drv_memory_required(&d->cfg)) {
		drv_log(d, OVMC_LOG_ERROR, "DMA window of %llu bytes, %zu needed",
			(unsigned long long)d->node.window_local,
			ovmc_drv_memory_required(&d->cfg));
		set_state(d, OVMC_DRV_FAILED);
		return -EINVAL;
	}
	if (!d->drc_index)
		d->drc_index = d->node.drc_index;
	if (crq_register(d) != OVMC_H_SUCCESS) {
		set_state(d, OVMC_DRV_FAILED);
		return OVMC_ERR_HCALL;
	}
	drv_log(d, OVMC_LOG_INFO, "VMC unit 0x%x registered, %u queue entries",
		d->node.unit_address, d->crq_entries);
	begin_init(d);
	return 0;
}

void ovmc_drv_platform_lost(struct ovmc_drv *d, uint64_t now)
{
	d->now = now;
	d->stats.resets++;
	drv_log(d, OVMC_LOG_WARN, "platform lost: connections reset");
	return_all_slots(d);
	d->crq_registered = false;
	d->tx_count = d->tx_head = 0;
	d->tx_retry_at = d->init_retry_at = OVMC_TIME_NEVER;
	memset(&d->neg, 0, sizeof(d->neg));
	set_state(d, OVMC_DRV_INITIAL);
}

/* ---- inbound entries ---- */

static void handle_init(struct ovmc_drv *d, const struct ovmc_entry *m)
{
	if (m->type == OVMC_INIT_REQUEST) {
		if (d->state != OVMC_DRV_CRQINIT) {
			/* The hypervisor restarted without us seeing an event. */
			d->stats.resets++;
			drv_log(d, OVMC_LOG_WARN, "hypervisor re-initialised: connections reset");
			return_all_slots(d);
			set_state(d, OVMC_DRV_CRQINIT);
		}
		send_init(d, OVMC_INIT_COMPLETE);
		send_caps(d);
		return;
	}
	if (d->state == OVMC_DRV_CRQINIT)
		send_caps(d);
}

static void handle_caps_resp(struct ovmc_drv *d, const struct ovmc_entry *m)
{
	const struct ovmc_caps *c = &m->caps;

	if (d->state != OVMC_DRV_CAPABILITIES) {
		proto_err(d, &d->stats.err_state, "CAP_RESP in state %s",
			  ovmc_drv_state_name(d->state));
		return;
	}
	d->init_retry_at = OVMC_TIME_NEVER;
	if (c->status != OVMC_CAP_OK) {
		drv_log(d, OVMC_LOG_ERROR, "hypervisor refused our capabilities (status %u%s)",
			c->status, c->status == OVMC_CAP_BAD_VERSION ? ": version" : "");
		set_state(d, OVMC_DRV_FAILED);
		return;
	}
	if ((c->version >> 8) != (d->cfg.version >> 8)) {
		drv_log(d, OVMC_LOG_ERROR, "hypervisor VMC version 0x%04x incompatible with 0x%04x",
			c->version, d->cfg.version);
		set_state(d, OVMC_DRV_FAILED);
		return;
	}
	if (!c->max_hmcs || !c->pool_size || c->mtu < MIN_MTU || c->crq_size < 2) {
		drv_log(d, OVMC_LOG_ERROR,
			"hypervisor capabilities unusable (hmcs %u pool %u mtu %u crq %u)",
			c->max_hmcs, c->pool_size, c->mtu, c->crq_size);
		set_state(d, OVMC_DRV_FAILED);
		return;
	}
	d->neg.max_hmcs = c->max_hmcs < d->cfg.max_hmcs ? c->max_hmcs : d->cfg.max_hmcs;
	d->neg.pool_size = c->pool_size < d->cfg.pool_size ? c->pool_size : d->cfg.pool_size;
	d->neg.mtu = c->mtu < d->cfg.max_mtu ? c->mtu : d->cfg.max_mtu;
	d->neg.hv_crq_size = c->crq_size;
	d->neg.hv_version = c->version;
	drv_log(d, OVMC_LOG_INFO, "channel ready: hmcs %u, pool %u, mtu %u", d->neg.max_hmcs,
		d->neg.pool_size, d->neg.mtu);
	set_state(d, OVMC_DRV_READY);
}

/*
 * The slot an HMC message names, if its index is negotiated and its
 * session is current. Session 0 is accepted where the hypervisor uses it
 * before any open (add and remove buffer), as in Linux.
 */
static struct drv_slot *slot_for(struct ovmc_drv *d, const struct ovmc_entry *m, bool allow_zero)
{
	const struct ovmc_hmc_msg *h = &m->hmc;
	struct drv_slot *s;

	if (h->index >= d->neg.max_hmcs) {
		proto_err(d, &d->stats.err_session, "%s for HMC index %u (%u negotiated)",
			  ovmc_msg_type_name(m->type), h->index, d->neg.max_hmcs);
		return NULL;
	}
	s = &d->slots[h->index];
	if ((h->session == 0 && allow_zero) || h->session == s->session)
		return s;
	proto_err(d, &d->stats.err_session, "%s for session %u, index %u is at %u",
		  ovmc_msg_type_name(m->type), h->session, h->index, s->session);
	return NULL;
}

static void handle_add_buf(struct ovmc_drv *d, const struct ovmc_entry *m)
{
	const struct ovmc_hmc_msg *h = &m->hmc;
	struct drv_slot *s;
	struct drv_buf *b;

	if (h->index >= d->neg.max_hmcs) {
		proto_err(d, &d->stats.err_session, "ADD_BUF for HMC index %u", h->index);
		tx_resp(d, OVMC_MSG_ADD_BUF_RESP, OVMC_BUF_INVALID_HMC_INDEX, h->session, h->index,
			h->buffer_id);
		return;
	}
	s = slot_for(d, m, true);
	if (!s) {
		/* Linux drops this silently; an answer keeps the hypervisor going. */
		tx_resp(d, OVMC_MSG_ADD_BUF_RESP, OVMC_BUF_CLOSED_HMC, h->session, h->index,
			h->buffer_id);
		return;
	}
	if (h->buffer_id >= d->neg.pool_size || s->bufs[h->buffer_id].state != DB_ABSENT ||
	    (uint64_t)h->lioba + d->neg.mtu > d->node.window_remote) {
		proto_err(d, &d->stats.err_buffer, "ADD_BUF of buffer %u (pool %u, %s)",
			  h->buffer_id, d->neg.pool_size,
			  h->buffer_id < d->neg.pool_size && s->bufs[h->buffer_id].state
				  ? "already present"
				  : "out of range");
		tx_resp(d, OVMC_MSG_ADD_BUF_RESP, OVMC_BUF_INVALID_BUFFER_ID, h->session, h->index,
			h->buffer_id);
		return;
	}
	b = &s->bufs[h->buffer_id];
	b->lioba = h->lioba;
	s->n_valid++;
	if (h->owner == OVMC_OWNER_HYPERVISOR) {
		b->state = DB_HV;
		s->n_hv++;
	} else {
		buf_free(s, h->buffer_id);
	}
	tx_resp(d, OVMC_MSG_ADD_BUF_RESP, OVMC_BUF_SUCCESS, h->session, h->index, h->buffer_id);
	file_update(d, s->file);
}

static void handle_rem_buf(struct ovmc_drv *d, const struct ovmc_entry *m)
{
	const struct ovmc_hmc_msg *h = &m->hmc;
	struct drv_slot *s;
	unsigned id;

	if (h->index >= d->neg.max_hmcs) {
		proto_err(d, &d->stats.err_session, "REM_BUF for HMC index %u", h->index);
		tx_resp(d, OVMC_MSG_REM_BUF_RESP, OVMC_BUF_INVALID_HMC_INDEX, h->session, h->index,
			0);
		return;
	}
	s = slot_for(d, m, true);
	/* Never the last buffer we own: without one we could not send at all. */
	if (!s || !s->n_free || s->n_valid - s->n_hv < 2) {
		tx_resp(d, OVMC_MSG_REM_BUF_RESP, OVMC_BUF_NO_BUFFER, h->session, h->index,
			OVMC_INVALID_BUFFER_ID);
		return;
	}
	id = s->free_ids[--s->n_free];
	s->bufs[id].state = DB_ABSENT;
	s->n_valid--;
	tx_resp(d, OVMC_MSG_REM_BUF_RESP, OVMC_BUF_SUCCESS, h->session, h->index, (uint16_t)id);
	file_update(d, s->file);
}

static void handle_signal(struct ovmc_drv *d, const struct ovmc_entry *m)
{
	const struct ovmc_hmc_msg *h = &m->hmc;
	struct drv_slot *s = slot_for(d, m, false);
	struct drv_buf *b;
	long rc;

	if (!s)
		return;
	if (s->state != OVMC_SLOT_READY && s->state != OVMC_SLOT_OPENING &&
	    s->state != OVMC_SLOT_CLOSING) {
		proto_err(d, &d->stats.err_state, "SIGNAL on index %u in slot state %s", h->index,
			  ovmc_slot_state_name(s->state));
		return;
	}
	if (h->buffer_id >= d->neg.pool_size || s->bufs[h->buffer_id].state != DB_HV) {
		proto_err(d, &d->stats.err_buffer, "SIGNAL with buffer %u we do not expect from it",
			  h->buffer_id);
		return;
	}
	b = &s->bufs[h->buffer_id];
	/* From here the buffer is ours, whatever happens to the message. */
	s->n_hv--;
	if (h->msg_len == 0 || h->msg_len > d->neg.mtu) {
		proto_err(d, &d->stats.err_length, "SIGNAL of %u bytes (mtu %u)", h->msg_len,
			  d->neg.mtu);
		buf_free(s, h->buffer_id);
		file_update(d, s->file);
		return;
	}
	if (!s->file) {
		d->stats.discarded_msgs++;
		drv_log(d, OVMC_LOG_INFO, "message on closing HMC index %u discarded (%u bytes)",
			s->index, h->msg_len);
		buf_free(s, h->buffer_id);
		return;
	}
	rc = rdma(d, h->msg_len, d->node.liobn_remote, b->lioba,
			      d->node.liobn_local, mirror_ioba(d, s->index, h->buffer_id));
	if (rc != OVMC_H_SUCCESS) {
		d->stats.lost_rdma++;
		drv_log(d, OVMC_LOG_ERROR, "message of %u bytes lost: H_COPY_RDMA %s", h->msg_len,
			ovmc_hcall_rc_name(rc));
		buf_free(s, h->buffer_id);
		file_update(d, s->file);
		return;
	}
	b->state = DB_BUSY;
	b->msg_len = h->msg_len;
	s->rq[(s->rq_head + s->rq_count) % d->cfg.pool_size] = h->buffer_id;
	s->rq_count++;
	d->stats.messages_in++;
	d->stats.bytes_in += h->msg_len;
	file_update(d, s->file);
}

static void handle_open_resp(struct ovmc_drv *d, const struct ovmc_entry *m)
{
	const struct ovmc_hmc_msg *h = &m->hmc;
	struct drv_slot *s;

	if (h->index >= d->neg.max_hmcs) {
		proto_err(d, &d->stats.err_session, "OPEN_RESP for HMC index %u", h->index);
		driver_reset(d, "open response for an unknown HMC index");
		return;
	}
	s = slot_for(d, m, false);
	if (!s)
		return;
	if (s->state == OVMC_SLOT_CLOSING)
		return; /* closed before the open completed; the close answers */
	if (s->state != OVMC_SLOT_OPENING) {
		proto_err(d, &d->stats.err_state, "OPEN_RESP on index %u in slot state %s",
			  h->index, ovmc_slot_state_name(s->state));
		return;
	}
	if (h->status != 0) {
		drv_log(d, OVMC_LOG_WARN, "hypervisor refused the open on index %u (status %u)",
			s->index, h->status);
		return_slot(d, s);
		return;
	}
	if (h->buffer_id >= d->neg.pool_size) {
		proto_err(d, &d->stats.err_buffer, "OPEN_RESP returns buffer %u", h->buffer_id);
		s->state = OVMC_SLOT_FAILED;
		file_update(d, s->file);
		return;
	}
	if (s->bufs[s->open_buf].state == DB_BUSY)
		buf_free(s, s->open_buf);
	s->state = OVMC_SLOT_READY;
	drv_log(d, OVMC_LOG_INFO, "session %u open on HMC index %u", s->session, s->index);
	file_update(d, s->file);
}

static void handle_close_resp(struct ovmc_drv *d, const struct ovmc_entry *m)
{
	const struct ovmc_hmc_msg *h = &m->hmc;
	struct drv_slot *s;

	if (h->index >= d->neg.max_hmcs) {
		proto_err(d, &d->stats.err_session, "CLOSE_RESP for HMC index %u", h->index);
		driver_reset(d, "close response for an unknown HMC index");
		return;
	}
	s = slot_for(d, m, false);
	if (!s)
		return;
	if (h->status != 0) {
		driver_reset(d, "hypervisor failed an interface close");
		return;
	}
	if (s->state != OVMC_SLOT_CLOSING) {
		proto_err(d, &d->stats.err_state, "CLOSE_RESP on index %u in slot state %s",
			  h->index, ovmc_slot_state_name(s->state));
		return;
	}
	return_slot(d, s);
	drv_log(d, OVMC_LOG_DEBUG, "HMC index %u free again", s->index);
}

typedef void (*msg_handler)(struct ovmc_drv *d, const struct ovmc_entry *m);

static void handle_entry(struct ovmc_drv *d, const uint8_t e[OVMC_CRQ_ENTRY_SIZE])
{
	struct ovmc_entry m;
	msg_handler fn = NULL;
	int rc;

	d->stats.entries_in++;
	if (d->log_level >= OVMC_LOG_TRACE) {
		char line[128];

		ovmc_entry_format(e, line, sizeof(line));
		drv_log(d, OVMC_LOG_TRACE, "hv -> partition: %s", line);
	}
	/* Only the platform writes 0xFF entries; every code means a reset. */
	if (e[0] == OVMC_CRQ_TRANSPORT) {
		transport_reset(d, e[1]);
		return;
	}
	rc = ovmc_entry_decode(e, OVMC_CRQ_ENTRY_SIZE, 0, &m);
	if (rc) {
		proto_err(d, &d->stats.err_decode, "undecodable entry: %s", ovmc_strerror(rc));
		return;
	}
	if (m.header == OVMC_CRQ_INIT) {
		handle_init(d, &m);
		return;
	}
	switch (m.type) {
	case OVMC_MSG_CAP_RESP:
		handle_caps_resp(d, &m);
		return;
	case OVMC_MSG_OPEN_RESP:
		fn = handle_open_resp;
		break;
	case OVMC_MSG_CLOSE_RESP:
		fn = handle_close_resp;
		break;
	case OVMC_MSG_ADD_BUF:
		fn = handle_add_buf;
		break;
	case OVMC_MSG_REM_BUF:
		fn = handle_rem_buf;
		break;
	case OVMC_MSG_SIGNAL:
		fn = handle_signal;
		break;
	default:
		proto_err(d, &d->stats.err_direction, "%s is never sent by the hypervisor",
			  ovmc_msg_type_name(m.type));
		return;
	}
	/* Interface messages before capabilities are dropped (LoPAR). */
	if (d->state != OVMC_DRV_READY) {
		proto_err(d, &d->stats.err_state, "%s in state %s", ovmc_msg_type_name(m.type),
			  ovmc_drv_state_name(d->state));
		return;
	}
	fn(d, &m);
}

unsigned ovmc_drv_handle_interrupt(struct ovmc_drv *d, uint64_t now)
{
	unsigned n = 0;

	d->now = now;
	ovmc_platform_irq_ack(d->plat);
	while (d->crq_registered) {
		uint8_t *slot = d->mem + CRQ_IOBA + (size_t)d->crq_cur * OVMC_CRQ_ENTRY_SIZE;
		uint8_t e[OVMC_CRQ_ENTRY_SIZE];

		if (!(__atomic_load_n(slot, __ATOMIC_ACQUIRE) & 0x80))
			break;
		memcpy(e, slot, sizeof(e));
		/* Our reads of the entry complete before the slot is handed back. */
		__atomic_store_n(slot, 0, __ATOMIC_RELEASE);
		d->crq_cur = (d->crq_cur + 1) % d->crq_entries;
		trace_entry(d, OVMC_TRACE_TO_PARTITION, e);
		handle_entry(d, e);
		n++;
	}
	tx_flush(d);
	return n;
}

void ovmc_drv_handle_timer(struct ovmc_drv *d, uint64_t now)
{
	d->now = now;
	if (now >= d->tx_retry_at) {
		d->tx_retry_at = OVMC_TIME_NEVER;
		tx_flush(d);
	}
	if (now >= d->init_retry_at) {
		d->init_retry_at = OVMC_TIME_NEVER;
		if (d->state == OVMC_DRV_CRQINIT) {
			send_init(d, OVMC_INIT_REQUEST);
			d->init_retry_at = now + d->cfg.init_retry_ns;
		}
	}
}

uint64_t ovmc_drv_next_deadline(const struct ovmc_drv *d)
{
	return d->tx_retry_at < d->init_retry_at ? d->tx_retry_at : d->init_retry_at;
}

/* ---- file operations ---- */

int ovmc_drv_open(struct ovmc_drv *d, struct ovmc_drv_file **out)
{
	struct ovmc_drv_file *f = calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	f->d = d;
	*out = f;
	return 0;
}

void ovmc_drv_file_set_user(struct ovmc_drv_file *f, void *user)
{
	f->user = user;
}

void *ovmc_drv_file_user(const struct ovmc_drv_file *f)
{
	return f->user;
}

int ovmc_drv_sethmcid(struct ovmc_drv *d, struct ovmc_drv_file *f,
		      const uint8_t hmc_id[OVMC_HMC_ID_LEN], uint64_t now)
{
	struct drv_slot *s = NULL;
	struct ovmc_hmc_msg h;
	bool any_free = false;
	unsigned id;
	long rc;

	d->now = now;
	if (d->state == OVMC_DRV_FAILED)
		return -EIO;
	if (d->state < OVMC_DRV_READY)
		return -EAGAIN;
	if (f->slot || f->reset)
		return -EIO;
	for (unsigned i = 0; i < d->neg.max_hmcs && !s; i++) {
		if (d->slots[i].state != OVMC_SLOT_FREE)
			continue;
		any_free = true;
		if (d->slots[i].n_free)
			s = &d->slots[i];
	}
	if (!s)
		return any_free ? -ENOBUFS : -EBUSY;

	s->session = (uint8_t)(s->session + 1);
	if (s->session == 0xFF)
		s->session = 1;
	id = s->free_ids[--s->n_free];
	s->bufs[id].state = DB_BUSY;
	s->open_buf = (uint16_t)id;
	memcpy(s->hmc_id, hmc_id, OVMC_HMC_ID_LEN);
	/* The whole MTU goes over, as in Linux: no stale bytes after the id. */
	memcpy(mirror(d, s->index, id), hmc_id, OVMC_HMC_ID_LEN);
	memset(mirror(d, s->index, id) + OVMC_HMC_ID_LEN, 0, d->neg.mtu - OVMC_HMC_ID_LEN);
	rc = rdma(d, d->neg.mtu, d->node.liobn_local,
			      mirror_ioba(d, s->index, id), d->node.liobn_remote,
			      s->bufs[id].lioba);
	if (rc != OVMC_H_SUCCESS) {
		drv_log(d, OVMC_LOG_ERROR, "HMC id transfer failed: H_COPY_RDMA %s",
			ovmc_hcall_rc_name(rc));
		buf_free(s, id);
		return -EIO;
	}
	h = (struct ovmc_hmc_msg){
		.session = s->session, .index = (uint8_t)s->index, .buffer_id = (uint16_t)id};
	if (tx_hmc(d, OVMC_MSG_OPEN, &h)) {
		buf_free(s, id);
		return -EIO;
	}
	s->state = OVMC_SLOT_OPENING;
	s->file = f;
	f->slot = s;
	f->last_events = file_events(d, f);
	return 0;
}

ssize_t ovmc_drv_write(struct ovmc_drv *d, struct ovmc_drv_file *f, const void *buf, size_t len,
		       uint64_t now)
{
	struct drv_slot *s = f->slot;
	struct ovmc_hmc_msg h;
	unsigned id;
	long rc;

	d->now = now;
	if (!s || s->state == OVMC_SLOT_FREE)
		return -EIO;
	if (len > d->neg.mtu)
		return -EIO;
	if (s->state == OVMC_SLOT_OPENING)
		return -EBUSY;
	if (s->state != OVMC_SLOT_READY)
		return -EIO;
	if (len == 0)
		return 0;
	if (!s->n_free)
		return -EBUSY;
	id = s->free_ids[s->n_free - 1];
	memcpy(mirror(d, s->index, id), buf, len);
	rc = rdma(d, len, d->node.liobn_local, mirror_ioba(d, s->index, id),
			      d->node.liobn_remote, s->bufs[id].lioba);
	if (rc != OVMC_H_SUCCESS) {
		drv_log(d, OVMC_LOG_ERROR, "write of %zu bytes failed: H_COPY_RDMA %s", len,
			ovmc_hcall_rc_name(rc));
		return -EIO;
	}
	h = (struct ovmc_hmc_msg){
		.session = s->session,
		.index = (uint8_t)s->index,
		.buffer_id = (uint16_t)id,
		.msg_len = (uint32_t)len,
	};
	if (tx_hmc(d, OVMC_MSG_SIGNAL, &h))
		return -EIO;
	s->n_free--;
	s->bufs[id].state = DB_HV;
	s->n_hv++;
	d->stats.messages_out++;
	d->stats.bytes_out += len;
	file_update(d, f);
	return (ssize_t)len;
}

ssize_t ovmc_drv_read(struct ovmc_drv *d, struct ovmc_drv_file *f, void *buf, size_t len,
		      uint64_t now)
{
	uint32_t mtu = d->state == OVMC_DRV_READY ? d->neg.mtu : d->cfg.max_mtu;
	struct drv_slot *s = f->slot;
	const uint8_t *src;
	size_t msg_len, n;
	int id = -1;

	d->now = now;
	if (len == 0)
		return 0;
	if (len > mtu)
		return -EINVAL;
	if (!s && !f->reset)
		return -EIO;
	if (f->orphans) {
		struct orphan *o = f->orphans;

		f->orphans = o->next;
		if (!f->orphans)
			f->orphans_tail = NULL;
		n = len < o->len ? len : o->len;
		memcpy(buf, o->data, n);
		msg_len = o->len;
		free(o);
	} else if (s && (id = rq_pop(s, d)) >= 0) {
		msg_len = s->bufs[id].msg_len;
		src = mirror(d, s->index, (unsigned)id);
		n = len < msg_len ? len : msg_len;
		memcpy(buf, src, n);
		buf_free(s, (unsigned)id);
	} else {
		return f->reset ? -EBADFD : -EAGAIN;
	}
	if (n < msg_len) {
		d->stats.truncated_reads++;
		d->stats.truncated_bytes += msg_len - n;
		drv_log(d, OVMC_LOG_WARN, "read of %zu bytes truncated a %zu-byte message", len,
			msg_len);
	}
	file_update(d, f);
	return (ssize_t)n;
}

unsigned ovmc_drv_poll(struct ovmc_drv *d, struct ovmc_drv_file *f)
{
	f->last_events = file_events(d, f);
	return f->last_events;
}

void ovmc_drv_query(const struct ovmc_drv *d, struct ovmc_query *out)
{
	out->have_vmc = d->state > OVMC_DRV_INITIAL;
	out->state = d->state;
	out->vmc_drc_index = (int32_t)d->drc_index;
}

int ovmc_drv_request_vmc(struct ovmc_drv *d, uint32_t *drc_index, uint64_t now)
{
	uint32_t drc = 0;
	long rc = OVMC_H_BUSY;

	d->now = now;
	for (int i = 0; i < HCALL_BUSY_TRIES && (rc == OVMC_H_BUSY || OVMC_H_IS_LONG_BUSY(rc)); i++)
		rc = ovmc_h_request_vmc(d->plat, &drc);
	switch (rc) {
	case OVMC_H_SUCCESS:
		break;
	case OVMC_H_FUNCTION:
	case OVMC_H_AUTHORITY:
	case OVMC_H_NOT_AVAILABLE:
		return -EPERM;
	case OVMC_H_RESOURCE:
		return -ENODEV;
	case OVMC_H_PARAMETER:
		return -EINVAL;
	case OVMC_H_BUSY:
		return -EBUSY;
	default:
		if (OVMC_H_IS_LONG_BUSY(rc))
			return -EBUSY;
		drv_log(d, OVMC_LOG_ERROR, "H_REQUEST_VMC failed: %s (%ld)",
			ovmc_hcall_rc_name(rc), rc);
		return -EIO;
	}
	d->drc_index = drc;
	*drc_index = drc;
	drv_log(d, OVMC_LOG_INFO, "VMC granted, DRC index 0x%08x", drc);
	if (d->state == OVMC_DRV_INITIAL)
		return ovmc_drv_start(d, now);
	return 0;
}

void ovmc_drv_close(struct ovmc_drv *d, struct ovmc_drv_file *f, uint64_t now)
{
	struct drv_slot *s = f->slot;
	unsigned unread = 0;

	d->now = now;
	if (s) {
		struct ovmc_hmc_msg h = {.session = s->session, .index = (uint8_t)s->index};

		s->file = NULL;
		unread = discard_queue(d, s);
		if (tx_hmc(d, OVMC_MSG_CLOSE, &h) == 0) {
			s->state = OVMC_SLOT_CLOSING;
		} else {
			/* Nobody to tell: the index is free at once. */
			forget_buffers(d, s);
			s->state = OVMC_SLOT_FREE;
		}
	}
	while (f->orphans) {
		struct orphan *o = f->orphans;

		f->orphans = o->next;
		d->stats.discarded_msgs++;
		unread++;
		free(o);
	}
	/* The ABI has no way to hand them over: counted, and said. */
	if (unread)
		drv_log(d, OVMC_LOG_INFO, "file closed with %u unread messages: discarded", unread);
	free(f);
}

int ovmc_drv_slot_info(const struct ovmc_drv *d, unsigned index, struct ovmc_drv_slot_info *out)
{
	const struct drv_slot *s;

	if (index >= d->cfg.max_hmcs)
		return -EINVAL;
	s = &d->slots[index];
	*out = (struct ovmc_drv_slot_info){
		.state = s->state,
		.session = s->session,
		.has_file = s->file != NULL,
		.buffers = s->n_valid,
		.free = s->n_free,
		.hv_owned = s->n_hv,
		.queued = s->rq_count,
	};
	memcpy(out->hmc_id, s->hmc_id, OVMC_HMC_ID_LEN);
	return 0;
}
