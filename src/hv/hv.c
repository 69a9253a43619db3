// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Hypervisor core: the VMC server end (docs/protocol.md, "Hypervisor").
 *
 * Buffer ownership is the heart of it. Every buffer of an HMC index is in
 * exactly one state; a signal moves a buffer from its sender to its
 * receiver. The partition only ever sees buffers it was told about with
 * Add Buffer, and the hypervisor only sends with buffers it owns.
 *
 * This file: creation, configuration, start and stop, timers; hv_core.h
 * says where the rest is.
 */
#include "hv_core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hv_log(struct ovmc_hv *hv, enum ovmc_log_level level, const char *fmt, ...)
{
	va_list ap;

	if (!hv->log || level > hv->log_level)
		return;
	va_start(ap, fmt);
	hv->log(hv->log_user, level, fmt, ap);
	va_end(ap);
}

void hv_proto_err(struct ovmc_hv *hv, uint64_t *reason, const char *fmt, ...)
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
	if (!hv->cfg.tx_queue_limit)
		hv->cfg.tx_queue_limit =
			cfg->max_hmcs * (2u * cfg->pool_size + 4u) + (unsigned)cfg->crq_size;
	hv->ops = *ops;
	hv->ops_user = ops_user;
	hv->mem = mem;
	hv->mem_size = mem_size;
	hv->log_level = OVMC_LOG_INFO;
	hv->tx_retry_at = hv->reclaim_at = hv->reset_at = OVMC_TIME_NEVER;
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

void ovmc_hv_free(struct ovmc_hv *hv)
{
	if (!hv)
		return;
	if (hv->slots) {
		hv_reset_all(hv);
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

void ovmc_hv_start(struct ovmc_hv *hv, uint64_t now)
{
	struct ovmc_entry m;
	uint8_t e[OVMC_CRQ_ENTRY_SIZE];

	hv->now = now;
	hv_reset_all(hv);
	hv->state = OVMC_HV_WAIT_INIT;
	ovmc_entry_init(&m, OVMC_INIT_REQUEST);
	ovmc_entry_encode(&m, e);
	/* H_CLOSED is no failure: the partition's INIT comes when it registers. */
	if (hv->ops.send_crq(hv->ops_user, e) == 0)
		hv->stats.entries_out++;
}

void ovmc_hv_stop(struct ovmc_hv *hv)
{
	hv_reset_all(hv);
	hv->state = OVMC_HV_STOPPED;
}

/* The partner flooded us: the reset PAPR gives the hypervisor end. */
static void flood_reset(struct ovmc_hv *hv, uint64_t now)
{
	hv->stats.resets++;
	if (hv->ops.reset) {
		hv->ops.reset(hv->ops_user, now);
		return;
	}
	ovmc_hv_start(hv, now);
}

void ovmc_hv_handle_timer(struct ovmc_hv *hv, uint64_t now)
{
	hv->now = now;
	if (now >= hv->reset_at) {
		/* Last thing: the reset may restart the whole core. */
		flood_reset(hv, now);
		return;
	}
	if (now >= hv->tx_retry_at) {
		hv->tx_retry_at = OVMC_TIME_NEVER;
		hv_tx_flush(hv);
	}
	if (now >= hv->reclaim_at) {
		hv->reclaim_at = OVMC_TIME_NEVER;
		for (unsigned i = 0; i < hv->neg.max_hmcs; i++)
			hv_try_reclaim(hv, &hv->slots[i]);
		hv_tx_flush(hv);
	}
}

uint64_t ovmc_hv_next_deadline(const struct ovmc_hv *hv)
{
	uint64_t d = hv->tx_retry_at < hv->reclaim_at ? hv->tx_retry_at : hv->reclaim_at;

	return hv->reset_at < d ? hv->reset_at : d;
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
