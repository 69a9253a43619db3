// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Hypervisor core, sending: entries to the partition go out in order,
 * never more outstanding than half the queue it advertised; the rest wait
 * in the core's queue and a timer retries.
 */
#include "hv_core.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
	if (hv->flooded) {
		hv->stats.send_lost++;
		return -ENOBUFS;
	}
	if (hv->tx_count >= hv->cfg.tx_queue_limit) {
		hv->flooded = true;
		hv->stats.send_lost++;
		hv->reset_at = hv->now;
		hv_proto_err(hv, &hv->stats.err_flood,
			     "the partition does not read its queue: %u answers wait (bound %u); "
			     "resetting the channel",
			     hv->tx_count, hv->cfg.tx_queue_limit);
		return -ENOBUFS;
	}
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
	if (hv->tx_count > hv->stats.send_queue_peak)
		hv->stats.send_queue_peak = hv->tx_count;
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

void hv_tx_flush(struct ovmc_hv *hv)
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

void hv_tx_drop_all(struct ovmc_hv *hv)
{
	hv->tx_count = hv->tx_head = 0;
	hv->tx_retry_at = OVMC_TIME_NEVER;
}

/* Queue order is kept: nothing overtakes an entry already waiting. */
int hv_tx(struct ovmc_hv *hv, const struct ovmc_entry *m)
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

int hv_tx_init(struct ovmc_hv *hv, enum ovmc_init_format fmt)
{
	struct ovmc_entry m;

	ovmc_entry_init(&m, fmt);
	return hv_tx(hv, &m);
}

int hv_tx_hmc(struct ovmc_hv *hv, enum ovmc_msg_type type, uint8_t status, uint8_t session,
	      uint8_t index, uint16_t buffer_id)
{
	struct ovmc_hmc_msg h = {
		.status = status, .session = session, .index = index, .buffer_id = buffer_id};
	struct ovmc_entry m;

	ovmc_entry_hmc(&m, type, &h);
	return hv_tx(hv, &m);
}
