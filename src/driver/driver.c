// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Driver core: the management-partition end of the VMC (docs/protocol.md,
 * "Driver"). Where the Linux driver is weak this one differs on purpose:
 * per-file wake-ups, O(1) buffer selection, no silent loss, replies that
 * keep the hypervisor from waiting forever; docs/linux-differences.md lists
 * every case. This file: creation, states, CRQ registration, resets and
 * timers; driver_impl.h says where the rest is.
 */
#include "driver_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void drv_log(struct ovmc_drv *d, enum ovmc_log_level level, const char *fmt, ...)
{
	va_list ap;

	if (!d->cbs.log || level > d->log_level)
		return;
	va_start(ap, fmt);
	d->cbs.log(d->user, level, fmt, ap);
	va_end(ap);
}

void drv_proto_err(struct ovmc_drv *d, uint64_t *reason, const char *fmt, ...)
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

void drv_set_state(struct ovmc_drv *d, enum ovmc_drv_state st)
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
	d->tracing = d->cbs.trace != NULL;
	d->mem = ovmc_platform_memory(plat, &mem_size);
	d->tx_retry_at = d->init_retry_at = d->reset_at = OVMC_TIME_NEVER;
	/* Every index opening with a full pool at once, and some. */
	d->tx_limit = cfg->max_hmcs * (2u * cfg->pool_size + 4u) + 64u;
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

void ovmc_drv_set_tracing(struct ovmc_drv *d, bool on)
{
	d->tracing = on && d->cbs.trace;
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
	d->tx_retry_at = d->reset_at = OVMC_TIME_NEVER;
	d->flooded = false;
	drv_set_state(d, OVMC_DRV_CRQINIT);
	drv_send_init(d, OVMC_INIT_REQUEST);
	d->init_retry_at = d->now + d->cfg.init_retry_ns;
}

void drv_transport_reset(struct ovmc_drv *d, uint8_t code)
{
	d->stats.resets++;
	drv_log(d, OVMC_LOG_WARN, "hypervisor %s (event 0x%02x): connections reset",
		ovmc_event_name(code), code);
	drv_return_all_slots(d);
	begin_init(d);
}

void drv_reset(struct ovmc_drv *d, const char *why)
{
	long rc;

	d->stats.resets++;
	drv_log(d, OVMC_LOG_WARN, "resetting the CRQ: %s", why);
	drv_return_all_slots(d);
	drv_set_state(d, OVMC_DRV_SCHED_RESET);
	if (d->crq_registered) {
		ovmc_h_free_crq(d->plat, d->node.unit_address);
		d->crq_registered = false;
	}
	rc = crq_register(d);
	if (rc != OVMC_H_SUCCESS) {
		drv_set_state(d, OVMC_DRV_FAILED);
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
		drv_set_state(d, OVMC_DRV_FAILED);
		return rc;
	}
	if (d->node.window_local < ovmc_drv_memory_required(&d->cfg)) {
		drv_log(d, OVMC_LOG_ERROR, "DMA window of %llu bytes, %zu needed",
			(unsigned long long)d->node.window_local,
			ovmc_drv_memory_required(&d->cfg));
		drv_set_state(d, OVMC_DRV_FAILED);
		return -EINVAL;
	}
	if (!d->drc_index)
		d->drc_index = d->node.drc_index;
	if (crq_register(d) != OVMC_H_SUCCESS) {
		drv_set_state(d, OVMC_DRV_FAILED);
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
	drv_return_all_slots(d);
	d->crq_registered = false;
	d->tx_count = d->tx_head = 0;
	d->tx_retry_at = d->init_retry_at = d->reset_at = OVMC_TIME_NEVER;
	d->flooded = false;
	memset(&d->neg, 0, sizeof(d->neg));
	drv_set_state(d, OVMC_DRV_INITIAL);
}

void drv_flood_reset(struct ovmc_drv *d)
{
	if (!d->flooded)
		return;
	/* What PAPR lets a partition do: free the CRQ and register it anew. */
	drv_reset(d, "the hypervisor does not read its queue");
	/* A failed re-registration leaves nothing to send on. */
	d->flooded = false;
	d->reset_at = OVMC_TIME_NEVER;
}

void ovmc_drv_handle_timer(struct ovmc_drv *d, uint64_t now)
{
	d->now = now;
	if (now >= d->reset_at)
		drv_flood_reset(d);
	if (now >= d->tx_retry_at) {
		d->tx_retry_at = OVMC_TIME_NEVER;
		drv_tx_flush(d);
	}
	if (now >= d->init_retry_at) {
		d->init_retry_at = OVMC_TIME_NEVER;
		if (d->state == OVMC_DRV_CRQINIT) {
			drv_send_init(d, OVMC_INIT_REQUEST);
			d->init_retry_at = now + d->cfg.init_retry_ns;
		}
	}
}

uint64_t ovmc_drv_next_deadline(const struct ovmc_drv *d)
{
	uint64_t t = d->tx_retry_at < d->init_retry_at ? d->tx_retry_at : d->init_retry_at;

	return d->reset_at < t ? d->reset_at : t;
}
