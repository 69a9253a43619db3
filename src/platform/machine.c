// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The emulated PAPR machine: hcall semantics, CRQ delivery and RDMA checks
 * for client partitions and the hypervisor end of their VMC connections.
 */
#include <openvmc/machine.h>
#include <openvmc/wire.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define DEFAULT_HV_WINDOW (16u << 20)
#define DEFAULT_HV_QUEUE 256u
#define UNIT_BASE 0x71000000u
#define LIOBN_LOCAL_BASE 0x10000000u
#define LIOBN_REMOTE_BASE 0x20000000u
#define DRC_BASE 0x90000000u
/* A remote CRQ: whole pages, at most 16 MiB (the entries of one page). */
#define CRQ_PAGE_ENTRIES (OVMC_PAGE_SIZE / OVMC_CRQ_ENTRY_SIZE)
#define REMOTE_CRQ_MAX_ENTRIES ((16u << 20) / OVMC_CRQ_ENTRY_SIZE)

struct ovmc_vmc {
	struct ovmc_part *part;
	struct ovmc_vmc_node node;
	void *user;

	/* The partition's CRQ, in partition memory. */
	bool p_registered;
	bool p_irq_enabled;
	uint64_t p_ioba;
	uint32_t p_entries;
	uint32_t p_next; /* where the platform writes next */
	uint32_t p_tail; /* oldest slot that may still be unconsumed */

	/* The hypervisor end's queue. */
	bool hv_registered;
	uint8_t (*hv_q)[OVMC_CRQ_ENTRY_SIZE];
	unsigned hv_cap, hv_head, hv_count;
	uint32_t epoch;
	/* Remote partitions: which queued entries the device paid a credit
	 * for, and the credits to give back. */
	bool *hv_q_credit;
	unsigned credit_due;

	void *hv_mem;
	size_t hv_mem_size;
	size_t hv_map_size; /* with the link page of a shared window */
	int hv_memfd;	    /* a shared window's, else -1 */
	uint32_t *link;	    /* in the link page, NULL if not shared */
	/* Shared windows: what the hypervisor core last wrote for the
	 * partition to copy out (ovmc_vmc_hv_wrote()), oldest replaced first. */
	struct hv_snapshot {
		uint64_t offset;
		uint32_t len;
		uint32_t cap;
		uint8_t *data;
	} snap[OVMC_VMC_SNAPSHOTS];
	unsigned snap_next;
};

struct ovmc_part {
	struct ovmc_machine *m;
	struct ovmc_part *next;
	unsigned id;
	struct ovmc_part_config cfg;
	struct ovmc_part_remote remote; /* deliver == NULL: a local partition */
	struct ovmc_vmc *vmc;
};

struct ovmc_machine {
	struct ovmc_machine_hooks hooks;
	ovmc_trace_fn trace;
	void *trace_arg;
	struct ovmc_part *parts;
	unsigned next_id;
	struct ovmc_machine_stats stats;
};

int ovmc_machine_new(const struct ovmc_machine_hooks *hooks, struct ovmc_machine **out)
{
	struct ovmc_machine *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	if (hooks)
		m->hooks = *hooks;
	m->next_id = 1;
	*out = m;
	return 0;
}

void ovmc_machine_free(struct ovmc_machine *m)
{
	if (!m)
		return;
	while (m->parts)
		ovmc_machine_remove_partition(m, m->parts, false);
	free(m);
}

void ovmc_machine_set_trace(struct ovmc_machine *m, ovmc_trace_fn fn, void *arg)
{
	m->trace = fn;
	m->trace_arg = arg;
}

void ovmc_machine_stats(const struct ovmc_machine *m, struct ovmc_machine_stats *out)
{
	*out = m->stats;
}

static void trace_entry(struct ovmc_machine *m, enum ovmc_trace_kind kind, unsigned id,
			const uint8_t *entry)
{
	if (m->trace) {
		struct ovmc_trace_event ev = {.kind = kind, .partition = id, .entry = entry};

		m->trace(m->trace_arg, &ev);
	}
}

static bool is_remote(const struct ovmc_part *p)
{
	return p->remote.deliver != NULL;
}

static bool is_shared(const struct ovmc_vmc *v)
{
	return v->hv_memfd >= 0;
}

/*
 * A shared window is mapped by the process that executes the partition's
 * copies out of it, so it is a memfd whose size can never change under
 * anybody's mapping; the link page after it tells that process whether a
 * copy would pass window()'s check.
 */
static void *hv_window_new(struct ovmc_part *p, size_t size, size_t *map_size, int *memfd)
{
	void *mem;
	int fd;

	*memfd = -1;
	*map_size = size;
	if (!is_remote(p) && !p->cfg.share_hv_window) {
		mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		return mem == MAP_FAILED ? NULL : mem;
	}
	size += OVMC_PAGE_SIZE;
	fd = memfd_create("openvmc-hv-window", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return NULL;
	if (ftruncate(fd, (off_t)size) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		close(fd);
		return NULL;
	}
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED) {
		close(fd);
		return NULL;
	}
	*memfd = fd;
	*map_size = size;
	return mem;
}

/* Publish whether the hypervisor window is linked (see window()). */
static void link_update(struct ovmc_vmc *v)
{
	if (v->link)
		__atomic_store_n(v->link, v->p_registered && v->hv_registered ? OVMC_VMC_LINKED : 0u,
				 __ATOMIC_RELEASE);
}

static struct ovmc_vmc *vmc_create(struct ovmc_part *p)
{
	struct ovmc_vmc *v = calloc(1, sizeof(*v));
	size_t hv_size = p->cfg.hv_window_size ? p->cfg.hv_window_size : DEFAULT_HV_WINDOW;

	if (!v)
		return NULL;
	hv_size = (hv_size + OVMC_PAGE_SIZE - 1) & ~(size_t)(OVMC_PAGE_SIZE - 1);
	v->hv_cap = p->cfg.hv_queue_entries ? p->cfg.hv_queue_entries : DEFAULT_HV_QUEUE;
	v->hv_q = calloc(v->hv_cap, OVMC_CRQ_ENTRY_SIZE);
	if (is_remote(p))
		v->hv_q_credit = calloc(v->hv_cap, sizeof(bool));
	v->hv_mem = hv_window_new(p, hv_size, &v->hv_map_size, &v->hv_memfd);
	if (!v->hv_q || !v->hv_mem || (is_remote(p) && !v->hv_q_credit)) {
		if (v->hv_mem)
			munmap(v->hv_mem, v->hv_map_size);
		if (v->hv_memfd >= 0)
			close(v->hv_memfd);
		free(v->hv_q_credit);
		free(v->hv_q);
		free(v);
		return NULL;
	}
	v->hv_mem_size = hv_size;
	if (is_shared(v))
		v->link = (uint32_t *)((uint8_t *)v->hv_mem + hv_size);
	v->part = p;
	v->node.unit_address = UNIT_BASE + p->id;
	v->node.drc_index = p->cfg.drc_index ? p->cfg.drc_index : DRC_BASE + p->id;
	v->node.liobn_local = LIOBN_LOCAL_BASE + p->id;
	v->node.window_local = p->cfg.mem_size;
	v->node.liobn_remote = LIOBN_REMOTE_BASE + p->id;
	v->node.window_remote = hv_size;
	if (is_remote(p)) {
		v->node.unit_address = p->remote.unit_address;
		v->node.liobn_local = p->remote.liobn_local;
		v->node.liobn_remote = p->remote.liobn_remote;
	}
	p->vmc = v;
	if (p->m->hooks.vmc_created)
		p->m->hooks.vmc_created(p->m->hooks.arg, v);
	return v;
}

static void vmc_destroy(struct ovmc_vmc *v)
{
	for (unsigned i = 0; i < OVMC_VMC_SNAPSHOTS; i++)
		free(v->snap[i].data);
	munmap(v->hv_mem, v->hv_map_size);
	if (v->hv_memfd >= 0)
		close(v->hv_memfd);
	free(v->hv_q_credit);
	free(v->hv_q);
	free(v);
}

int ovmc_machine_add_partition(struct ovmc_machine *m, const struct ovmc_part_config *cfg,
			       struct ovmc_part **out)
{
	struct ovmc_part *p;

	if (cfg->remote ? !cfg->remote->deliver || !cfg->mem_size || cfg->mem
			: !cfg->mem || cfg->mem_size < OVMC_PAGE_SIZE)
		return -EINVAL;
	/* An ADD_BUF carries a 32-bit LIOBA. */
	if (cfg->hv_window_size > UINT32_MAX)
		return -ERANGE;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->m = m;
	p->id = m->next_id++;
	p->cfg = *cfg;
	p->cfg.remote = NULL;
	if (cfg->remote)
		p->remote = *cfg->remote;
	p->next = m->parts;
	m->parts = p;
	if ((cfg->vmc_present || cfg->remote) && !vmc_create(p)) {
		m->parts = p->next;
		free(p);
		return -ENOMEM;
	}
	*out = p;
	return 0;
}

/* `credit`: a remote partition's device paid for this entry. */
static void hv_queue_push(struct ovmc_vmc *v, const uint8_t e[16], bool overwrite_last,
			  bool credit)
{
	unsigned slot;

	if (v->hv_count == v->hv_cap) {
		if (!overwrite_last)
			return;
		slot = (v->hv_head + v->hv_count - 1) % v->hv_cap;
	} else {
		slot = (v->hv_head + v->hv_count) % v->hv_cap;
		v->hv_count++;
	}
	memcpy(v->hv_q[slot], e, OVMC_CRQ_ENTRY_SIZE);
	if (v->hv_q_credit) {
		/* An overwritten entry is gone: its credit comes back. */
		if (v->hv_q_credit[slot] && v->hv_count == v->hv_cap && overwrite_last)
			v->credit_due++;
		v->hv_q_credit[slot] = credit;
	}
	v->part->m->stats.entries_to_hv++;
	trace_entry(v->part->m, OVMC_TRACE_TO_HV, v->part->id, e);
	if (v->part->m->hooks.vmc_pending)
		v->part->m->hooks.vmc_pending(v->part->m->hooks.arg, v);
}

static void transport_event(uint8_t e[16], uint8_t code)
{
	memset(e, 0, OVMC_CRQ_ENTRY_SIZE);
	e[0] = OVMC_CRQ_TRANSPORT;
	e[1] = code;
}

void ovmc_machine_remove_partition(struct ovmc_machine *m, struct ovmc_part *p, bool failed)
{
	struct ovmc_part **pp;

	for (pp = &m->parts; *pp && *pp != p; pp = &(*pp)->next)
		;
	if (!*pp)
		return;
	*pp = p->next;
	if (p->vmc) {
		struct ovmc_vmc *v = p->vmc;

		if (v->hv_registered && v->p_registered) {
			uint8_t e[16];

			transport_event(e, failed ? OVMC_EVENT_PARTNER_FAILED
						  : OVMC_EVENT_PARTNER_DEREGISTERED);
			v->p_registered = false;
			hv_queue_push(v, e, true, false);
		}
		v->p_registered = false;
		/* The device's process may still map the window. */
		link_update(v);
		if (m->hooks.vmc_destroyed)
			m->hooks.vmc_destroyed(m->hooks.arg, v);
		vmc_destroy(v);
	}
	free(p);
}

unsigned ovmc_part_id(const struct ovmc_part *p)
{
	return p->id;
}

struct ovmc_vmc *ovmc_part_vmc(struct ovmc_part *p)
{
	return p->vmc;
}

int ovmc_part_vmc_node(struct ovmc_part *p, struct ovmc_vmc_node *out)
{
	if (!p->vmc)
		return -ENODEV;
	*out = p->vmc->node;
	return 0;
}

/* ---- the partition's CRQ ---- */

long ovmc_part_remote_crq(struct ovmc_part *p, unsigned entries)
{
	struct ovmc_vmc *v = p->vmc;
	uint64_t a[5] = {0};
	long rc;

	if (!is_remote(p) || !v)
		return OVMC_H_PARAMETER;
	a[0] = v->node.unit_address;
	a[2] = (uint64_t)entries * OVMC_CRQ_ENTRY_SIZE;
	if (entries == 0) {
		rc = OVMC_H_SUCCESS;
		if (v->p_registered) {
			v->p_registered = false;
			link_update(v);
			if (v->hv_registered) {
				uint8_t e[16];

				transport_event(e, OVMC_EVENT_PARTNER_DEREGISTERED);
				hv_queue_push(v, e, true, false);
			}
		}
	} else if (entries % CRQ_PAGE_ENTRIES || entries > REMOTE_CRQ_MAX_ENTRIES) {
		rc = OVMC_H_PARAMETER;
	} else if (v->p_registered) {
		rc = OVMC_H_RESOURCE;
	} else {
		v->p_registered = true;
		v->p_entries = entries;
		link_update(v);
		rc = v->hv_registered ? OVMC_H_SUCCESS : OVMC_H_CLOSED;
		if (rc == OVMC_H_SUCCESS && p->m->hooks.vmc_partner_registered)
			p->m->hooks.vmc_partner_registered(p->m->hooks.arg, v);
	}
	/* Traced as the hcall the guest made, as far as we know its arguments. */
	p->m->stats.hcalls++;
	if (rc != OVMC_H_SUCCESS && rc != OVMC_H_CLOSED)
		p->m->stats.hcall_errors++;
	if (p->m->trace) {
		struct ovmc_trace_event ev = {.kind = OVMC_TRACE_HCALL,
					      .partition = p->id,
					      .opcode = entries ? OVMC_H_REG_CRQ : OVMC_H_FREE_CRQ,
					      .rc = rc};

		memcpy(ev.args, a, sizeof(ev.args));
		p->m->trace(p->m->trace_arg, &ev);
	}
	return rc;
}

static uint8_t *p_slot(struct ovmc_vmc *v, uint32_t i)
{
	return (uint8_t *)v->part->cfg.mem + v->p_ioba + (uint64_t)i * OVMC_CRQ_ENTRY_SIZE;
}

static uint8_t load_header(const uint8_t *slot)
{
	return __atomic_load_n(slot, __ATOMIC_ACQUIRE);
}

static void raise_irq(struct ovmc_vmc *v)
{
	if (v->p_irq_enabled && v->part->cfg.raise_irq)
		v->part->cfg.raise_irq(v->part->cfg.irq_arg);
}

/*
 * PAPR enqueue: the platform only ever writes a free slot; the second half
 * goes first and the header byte last, so a consumer that sees the header
 * sees the whole entry.
 */
static long deliver_to_partition(struct ovmc_vmc *v, const uint8_t e[16], bool overwrite_last)
{
	uint8_t *slot;
	bool advance = true;

	if (is_remote(v->part)) {
		long rc = v->part->remote.deliver(v->part->remote.arg, e);

		if (rc == OVMC_H_DROPPED)
			v->part->m->stats.dropped_full++;
		if (rc != OVMC_H_SUCCESS)
			return rc;
		v->part->m->stats.entries_to_partition++;
		trace_entry(v->part->m, OVMC_TRACE_TO_PARTITION, v->part->id, e);
		return rc;
	}
	slot = p_slot(v, v->p_next);
	if (load_header(slot) != OVMC_CRQ_FREE) {
		if (!overwrite_last) {
			v->part->m->stats.dropped_full++;
			return OVMC_H_DROPPED;
		}
		slot = p_slot(v, (v->p_next + v->p_entries - 1) % v->p_entries);
		advance = false;
	}
	memcpy(slot + 8, e + 8, 8);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	memcpy(slot + 1, e + 1, 7);
	__atomic_store_n(slot, e[0], __ATOMIC_RELEASE);
	if (advance)
		v->p_next = (v->p_next + 1) % v->p_entries;
	v->part->m->stats.entries_to_partition++;
	trace_entry(v->part->m, OVMC_TRACE_TO_PARTITION, v->part->id, e);
	raise_irq(v);
	return OVMC_H_SUCCESS;
}

unsigned ovmc_vmc_hv_outstanding(const struct ovmc_vmc *cv)
{
	struct ovmc_vmc *v = (struct ovmc_vmc *)cv;

	/* A remote CRQ is out of sight: its device answers H_DROPPED when full. */
	if (!v->p_registered || is_remote(v->part))
		return 0;
	/* The partition consumes in order: skip what it has freed since. */
	while (v->p_tail != v->p_next && load_header(p_slot(v, v->p_tail)) == OVMC_CRQ_FREE)
		v->p_tail = (v->p_tail + 1) % v->p_entries;
	if (v->p_tail == v->p_next)
		return load_header(p_slot(v, v->p_next)) != OVMC_CRQ_FREE ? v->p_entries : 0;
	return (v->p_next + v->p_entries - v->p_tail) % v->p_entries;
}

unsigned ovmc_vmc_partition_queue_size(const struct ovmc_vmc *v)
{
	return v->p_registered ? v->p_entries : 0;
}

/* ---- the hypervisor end ---- */

struct ovmc_part *ovmc_vmc_part(struct ovmc_vmc *v)
{
	return v->part;
}

void ovmc_vmc_set_user(struct ovmc_vmc *v, void *user)
{
	v->user = user;
}

void *ovmc_vmc_user(const struct ovmc_vmc *v)
{
	return v->user;
}

bool ovmc_vmc_hv_registered(const struct ovmc_vmc *v)
{
	return v->hv_registered;
}

bool ovmc_vmc_partition_registered(const struct ovmc_vmc *v)
{
	return v->p_registered;
}

long ovmc_vmc_hv_register(struct ovmc_vmc *v)
{
	if (v->hv_registered)
		return OVMC_H_RESOURCE;
	v->hv_registered = true;
	v->hv_head = v->hv_count = 0;
	v->epoch++;
	v->credit_due = 0;
	link_update(v);
	if (v->part->remote.hv_state)
		v->part->remote.hv_state(v->part->remote.arg, true, v->epoch, v->hv_cap);
	return v->p_registered ? OVMC_H_SUCCESS : OVMC_H_CLOSED;
}

long ovmc_vmc_hv_free(struct ovmc_vmc *v, uint8_t event)
{
	if (!v->hv_registered)
		return OVMC_H_SUCCESS;
	v->hv_registered = false;
	v->hv_head = v->hv_count = 0;
	v->credit_due = 0;
	link_update(v);
	if (v->p_registered) {
		uint8_t e[16];

		transport_event(e, event);
		deliver_to_partition(v, e, true);
	}
	if (v->part->remote.hv_state)
		v->part->remote.hv_state(v->part->remote.arg, false, v->epoch, 0);
	return OVMC_H_SUCCESS;
}

long ovmc_vmc_hv_send(struct ovmc_vmc *v, const uint8_t entry[16])
{
	if (!(entry[0] & 0x80) || entry[0] == OVMC_CRQ_TRANSPORT)
		return OVMC_H_PARAMETER;
	if (!v->hv_registered || !v->p_registered)
		return OVMC_H_CLOSED;
	return deliver_to_partition(v, entry, false);
}

int ovmc_vmc_hv_receive(struct ovmc_vmc *v, uint8_t entry[16])
{
	if (!v->hv_count)
		return 0;
	memcpy(entry, v->hv_q[v->hv_head], OVMC_CRQ_ENTRY_SIZE);
	if (v->hv_q_credit && v->hv_q_credit[v->hv_head]) {
		v->hv_q_credit[v->hv_head] = false;
		v->credit_due++;
	}
	v->hv_head = (v->hv_head + 1) % v->hv_cap;
	v->hv_count--;
	return 1;
}

void *ovmc_vmc_hv_memory(struct ovmc_vmc *v, size_t *size)
{
	if (size)
		*size = v->hv_mem_size;
	return v->hv_mem;
}

uint32_t ovmc_vmc_hv_liobn(const struct ovmc_vmc *v)
{
	return v->node.liobn_remote;
}

int ovmc_vmc_hv_memfd(const struct ovmc_vmc *v)
{
	return v->hv_memfd;
}

unsigned ovmc_vmc_hv_room(const struct ovmc_vmc *v)
{
	return v->hv_cap - v->hv_count;
}

uint32_t ovmc_vmc_hv_epoch(const struct ovmc_vmc *v)
{
	return v->epoch;
}

unsigned ovmc_vmc_hv_take_credit(struct ovmc_vmc *v)
{
	unsigned n = v->credit_due;

	v->credit_due = 0;
	return n;
}

/* ---- hcalls ---- */

static long h_reg_crq(struct ovmc_part *p, const uint64_t *a)
{
	struct ovmc_vmc *v = p->vmc;
	uint64_t ioba = a[1], len = a[2];

	if (!v || a[0] != v->node.unit_address)
		return OVMC_H_PARAMETER;
	if (ioba % OVMC_PAGE_SIZE || len % OVMC_PAGE_SIZE || len == 0 ||
	    ioba > p->cfg.mem_size || len > p->cfg.mem_size - ioba)
		return OVMC_H_PARAMETER;
	if (v->p_registered)
		return OVMC_H_RESOURCE;
	v->p_registered = true;
	v->p_irq_enabled = false;
	v->p_ioba = ioba;
	v->p_entries = (uint32_t)(len / OVMC_CRQ_ENTRY_SIZE);
	v->p_next = v->p_tail = 0;
	link_update(v);
	return v->hv_registered ? OVMC_H_SUCCESS : OVMC_H_CLOSED;
}

static long h_free_crq(struct ovmc_part *p, const uint64_t *a)
{
	struct ovmc_vmc *v = p->vmc;

	if (!v || a[0] != v->node.unit_address)
		return OVMC_H_PARAMETER;
	if (!v->p_registered)
		return OVMC_H_SUCCESS;
	v->p_registered = false;
	v->p_irq_enabled = false;
	link_update(v);
	if (v->hv_registered) {
		uint8_t e[16];

		transport_event(e, OVMC_EVENT_PARTNER_DEREGISTERED);
		hv_queue_push(v, e, true, false);
	}
	return OVMC_H_SUCCESS;
}

static long send_crq(struct ovmc_part *p, struct ovmc_vmc *v, const uint64_t *a)
{
	uint8_t e[16];

	ovmc_entry_from_words(a[1], a[2], e);
	if (!(e[0] & 0x80) || e[0] == OVMC_CRQ_TRANSPORT)
		return OVMC_H_PARAMETER;
	if (!v->p_registered || !v->hv_registered)
		return OVMC_H_CLOSED;
	if (v->hv_count == v->hv_cap) {
		p->m->stats.dropped_full++;
		return OVMC_H_DROPPED;
	}
	hv_queue_push(v, e, false, is_remote(p));
	return OVMC_H_SUCCESS;
}

static long h_send_crq(struct ovmc_part *p, const uint64_t *a)
{
	struct ovmc_vmc *v = p->vmc;
	long rc;

	if (!v || a[0] != v->node.unit_address)
		return OVMC_H_PARAMETER;
	rc = send_crq(p, v, a);
	/* The device paid a credit for an entry that never got a slot. */
	if (rc != OVMC_H_SUCCESS && is_remote(p))
		v->credit_due++;
	return rc;
}

static long h_vio_signal(struct ovmc_part *p, const uint64_t *a)
{
	struct ovmc_vmc *v = p->vmc;

	if (!v || a[0] != v->node.unit_address)
		return OVMC_H_PARAMETER;
	if (a[1] != OVMC_VIO_IRQ_ENABLE && a[1] != OVMC_VIO_IRQ_DISABLE)
		return OVMC_H_PARAMETER;
	v->p_irq_enabled = a[1] == OVMC_VIO_IRQ_ENABLE;
	/* Edge-triggered: an entry that arrived while disabled must not be
	 * lost, so enabling with work queued fires at once. */
	if (v->p_irq_enabled && v->p_registered && ovmc_vmc_hv_outstanding(v))
		raise_irq(v);
	return OVMC_H_SUCCESS;
}

static long h_enable_crq(struct ovmc_part *p, const uint64_t *a)
{
	if (!p->vmc || a[0] != p->vmc->node.unit_address)
		return OVMC_H_PARAMETER;
	return OVMC_H_SUCCESS;
}

/*
 * Resolve (liobn, ioba, len) to memory. The local pane is the partition's
 * memory; the remote pane is linked only while both ends are registered.
 */
static uint8_t *window(struct ovmc_part *p, uint64_t liobn, uint64_t ioba, uint64_t len)
{
	struct ovmc_vmc *v = p->vmc;
	uint8_t *base;
	uint64_t size;

	if (!v)
		return NULL;
	if (liobn == v->node.liobn_local) {
		base = p->cfg.mem;
		size = p->cfg.mem_size;
	} else if (liobn == v->node.liobn_remote && v->p_registered && v->hv_registered) {
		base = v->hv_mem;
		size = v->hv_mem_size;
	} else {
		return NULL;
	}
	if (ioba > size || len > size - ioba)
		return NULL;
	return base + ioba;
}

static bool in_window(uint64_t ioba, uint64_t len, uint64_t size)
{
	return ioba <= size && len <= size - ioba;
}

void ovmc_vmc_hv_wrote(struct ovmc_vmc *v, size_t offset, size_t len)
{
	struct hv_snapshot *sn = NULL;

	if (!is_shared(v) || !len || len > OVMC_MAX_RDMA_LEN ||
	    !in_window(offset, len, v->hv_mem_size))
		return;
	for (unsigned i = 0; i < OVMC_VMC_SNAPSHOTS && !sn; i++)
		if (v->snap[i].len && v->snap[i].offset == offset)
			sn = &v->snap[i];
	if (!sn)
		sn = &v->snap[v->snap_next++ % OVMC_VMC_SNAPSHOTS];
	if (sn->cap < len) {
		uint8_t *d = realloc(sn->data, len);

		if (!d) {
			sn->len = 0; /* the trace falls back to the window */
			return;
		}
		sn->data = d;
		sn->cap = (uint32_t)len;
	}
	memcpy(sn->data, (uint8_t *)v->hv_mem + offset, len);
	sn->offset = offset;
	sn->len = (uint32_t)len;
}

/* What the hypervisor wrote at [ioba, ioba + len), if a snapshot holds it. */
static const uint8_t *hv_snapshot_of(const struct ovmc_vmc *v, uint64_t ioba, uint64_t len)
{
	for (unsigned i = 0; i < OVMC_VMC_SNAPSHOTS; i++) {
		const struct hv_snapshot *sn = &v->snap[i];

		if (sn->len && ioba >= sn->offset && len <= sn->len &&
		    ioba - sn->offset <= sn->len - len)
			return sn->data + (ioba - sn->offset);
	}
	return NULL;
}

int ovmc_part_remote_rdma(struct ovmc_part *p, long rc, const uint64_t args[5])
{
	struct ovmc_vmc *v = p->vmc;
	uint64_t len = args[0];
	bool to_hv;
	uint64_t p_liobn, p_ioba, h_liobn, h_ioba;

	if (!v || !is_shared(v))
		return -EINVAL;
	to_hv = args[3] == v->node.liobn_remote;
	p_liobn = to_hv ? args[1] : args[3];
	p_ioba = to_hv ? args[2] : args[4];
	h_liobn = to_hv ? args[3] : args[1];
	h_ioba = to_hv ? args[4] : args[2];
	if (rc == OVMC_H_SUCCESS &&
	    (len > OVMC_MAX_RDMA_LEN || p_liobn != v->node.liobn_local ||
	     h_liobn != v->node.liobn_remote || !in_window(h_ioba, len, v->hv_mem_size) ||
	     !in_window(p_ioba, len, p->cfg.mem_size)))
		return -EINVAL;
	p->m->stats.hcalls++;
	if (rc == OVMC_H_SUCCESS) {
		p->m->stats.rdma_ops++;
		p->m->stats.rdma_bytes += len;
	} else {
		p->m->stats.hcall_errors++;
		p->m->stats.rdma_rejected++;
	}
	if (p->m->trace) {
		struct ovmc_trace_event ev = {.kind = OVMC_TRACE_RDMA, .partition = p->id};

		memcpy(ev.args, args, sizeof(ev.args));
		ev.opcode = OVMC_H_COPY_RDMA;
		if (rc == OVMC_H_SUCCESS) {
			const uint8_t *kept = to_hv ? NULL : hv_snapshot_of(v, h_ioba, len);

			ev.data = kept ? kept : (const uint8_t *)v->hv_mem + h_ioba;
			ev.data_len = len;
			ev.to_hv = to_hv;
			p->m->trace(p->m->trace_arg, &ev);
		}
		ev = (struct ovmc_trace_event){.kind = OVMC_TRACE_HCALL,
					       .partition = p->id,
					       .opcode = OVMC_H_COPY_RDMA,
					       .rc = rc};
		memcpy(ev.args, args, sizeof(ev.args));
		p->m->trace(p->m->trace_arg, &ev);
	}
	return 0;
}

static long h_copy_rdma(struct ovmc_part *p, const uint64_t *a)
{
	uint64_t len = a[0];
	uint8_t *src, *dst;

	if (len > OVMC_MAX_RDMA_LEN) {
		p->m->stats.rdma_rejected++;
		return OVMC_H_PARAMETER;
	}
	src = window(p, a[1], a[2], len);
	if (!src) {
		p->m->stats.rdma_rejected++;
		return OVMC_H_SOURCE_PARM;
	}
	dst = window(p, a[3], a[4], len);
	if (!dst) {
		p->m->stats.rdma_rejected++;
		return OVMC_H_DEST_PARM;
	}
	memmove(dst, src, len);
	p->m->stats.rdma_ops++;
	p->m->stats.rdma_bytes += len;
	if (p->m->trace) {
		struct ovmc_trace_event ev = {.kind = OVMC_TRACE_RDMA,
					      .partition = p->id,
					      .opcode = OVMC_H_COPY_RDMA,
					      .data = dst,
					      .data_len = len,
					      .to_hv = a[3] == p->vmc->node.liobn_remote};

		memcpy(ev.args, a, sizeof(ev.args));
		p->m->trace(p->m->trace_arg, &ev);
	}
	return OVMC_H_SUCCESS;
}

static long h_request_vmc(struct ovmc_part *p, uint64_t *rets)
{
	if (!p->vmc) {
		if (p->cfg.request_vmc_rc != OVMC_H_SUCCESS)
			return p->cfg.request_vmc_rc;
		if (!vmc_create(p))
			return OVMC_H_RESOURCE;
	}
	rets[0] = p->vmc->node.drc_index;
	return OVMC_H_SUCCESS;
}

long ovmc_part_hcall(struct ovmc_part *p, unsigned long opcode, const uint64_t *args,
		     unsigned nargs, uint64_t *rets)
{
	uint64_t a[5] = {0}, r[OVMC_HCALL_RETS] = {0};
	long rc;

	if (args && nargs)
		memcpy(a, args, (nargs < 5 ? nargs : 5) * sizeof(uint64_t));
	/* A remote partition's device does the others itself. */
	switch (is_remote(p) && opcode != OVMC_H_SEND_CRQ && opcode != OVMC_H_ENABLE_CRQ &&
			opcode != OVMC_H_REQUEST_VMC
		? 0
		: opcode) {
	case OVMC_H_REG_CRQ:
		rc = h_reg_crq(p, a);
		break;
	case OVMC_H_FREE_CRQ:
		rc = h_free_crq(p, a);
		break;
	case OVMC_H_SEND_CRQ:
		rc = h_send_crq(p, a);
		break;
	case OVMC_H_VIO_SIGNAL:
		rc = h_vio_signal(p, a);
		break;
	case OVMC_H_ENABLE_CRQ:
		rc = h_enable_crq(p, a);
		break;
	case OVMC_H_COPY_RDMA:
		rc = h_copy_rdma(p, a);
		break;
	case OVMC_H_REQUEST_VMC:
		rc = h_request_vmc(p, r);
		break;
	default:
		rc = OVMC_H_FUNCTION;
		break;
	}
	p->m->stats.hcalls++;
	if (rc != OVMC_H_SUCCESS)
		p->m->stats.hcall_errors++;
	if (rets)
		memcpy(rets, r, sizeof(r));
	if (p->m->trace) {
		struct ovmc_trace_event ev = {
			.kind = OVMC_TRACE_HCALL, .partition = p->id, .opcode = opcode, .rc = rc};

		memcpy(ev.args, a, sizeof(ev.args));
		p->m->trace(p->m->trace_arg, &ev);
	}
	return rc;
}
