// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Driver core, sending: entries go out in order; while the hypervisor's
 * queue is full they wait in the core's queue and a timer retries.
 */
#include "driver_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void drv_trace_entry(struct ovmc_drv *d, enum ovmc_trace_kind kind,
		     const uint8_t e[OVMC_CRQ_ENTRY_SIZE])
{
	if (d->tracing) {
		struct ovmc_trace_event ev = {.kind = kind, .entry = e};

		d->cbs.trace(d->user, &ev);
	}
}

/* After an H_COPY_RDMA with these arguments answered rc: the trace. */
static void rdma_done(struct ovmc_drv *d, long rc, uint64_t len, uint64_t src_liobn,
		      uint64_t src_ioba, uint64_t dst_liobn, uint64_t dst_ioba)
{
	if (rc == OVMC_H_SUCCESS && d->tracing) {
		bool to_hv = dst_liobn == d->node.liobn_remote;
		struct ovmc_trace_event ev = {
			.kind = OVMC_TRACE_RDMA,
			.opcode = OVMC_H_COPY_RDMA,
			.args = {len, src_liobn, src_ioba, dst_liobn, dst_ioba},
			.data = d->mem + (to_hv ? src_ioba : dst_ioba),
			.data_len = len,
			.to_hv = to_hv,
		};

		d->cbs.trace(d->user, &ev);
	}
}

long drv_rdma(struct ovmc_drv *d, uint64_t len, uint64_t src_liobn, uint64_t src_ioba,
	      uint64_t dst_liobn, uint64_t dst_ioba)
{
	long rc = ovmc_h_copy_rdma(d->plat, len, src_liobn, src_ioba, dst_liobn, dst_ioba);

	rdma_done(d, rc, len, src_liobn, src_ioba, dst_liobn, dst_ioba);
	return rc;
}

/* ---- sending ---- */

/* 0, or -ENOBUFS: the hypervisor does not read, the CRQ will be reset. */
static int txq_push(struct ovmc_drv *d, const uint8_t e[OVMC_CRQ_ENTRY_SIZE])
{
	if (d->flooded) {
		d->stats.send_failed++;
		return -ENOBUFS;
	}
	if (d->tx_count >= d->tx_limit) {
		d->flooded = true;
		d->stats.send_failed++;
		d->reset_at = d->now;
		drv_proto_err(d, &d->stats.err_flood,
			      "the hypervisor does not read its queue: %u entries wait (bound %u)",
			      d->tx_count, d->tx_limit);
		return -ENOBUFS;
	}
	if (d->tx_count == d->tx_cap) {
		unsigned cap = d->tx_cap ? d->tx_cap * 2 : 64;
		uint8_t(*q)[OVMC_CRQ_ENTRY_SIZE] = malloc((size_t)cap * OVMC_CRQ_ENTRY_SIZE);

		if (!q) {
			/* Only reachable without memory: say so, the entry is gone. */
			d->stats.send_failed++;
			drv_log(d, OVMC_LOG_ERROR, "out of memory: outbound entry lost");
			return -ENOMEM;
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
	if (d->tx_count > d->stats.send_queue_peak)
		d->stats.send_queue_peak = d->tx_count;
	if (d->tx_retry_at == OVMC_TIME_NEVER)
		d->tx_retry_at = d->now + TX_RETRY_NS;
	return 0;
}

static void send_done(struct ovmc_drv *d, long rc, const uint8_t e[OVMC_CRQ_ENTRY_SIZE])
{
	if (rc == OVMC_H_SUCCESS) {
		d->stats.entries_out++;
		drv_trace_entry(d, OVMC_TRACE_TO_HV, e);
	}
}

static long send_raw(struct ovmc_drv *d, const uint8_t e[OVMC_CRQ_ENTRY_SIZE])
{
	uint64_t hi, lo;
	long rc;

	ovmc_entry_to_words(e, &hi, &lo);
	rc = ovmc_h_send_crq(d->plat, d->node.unit_address, hi, lo);
	send_done(d, rc, e);
	return rc;
}

void drv_tx_flush(struct ovmc_drv *d)
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
			drv_log(d, OVMC_LOG_WARN, "queued entry refused: %s",
				ovmc_hcall_rc_name(rc));
		}
		d->tx_head = (d->tx_head + 1) % d->tx_cap;
		d->tx_count--;
	}
	d->tx_retry_at = OVMC_TIME_NEVER;
}

/*
 * Send in order; a full hypervisor queue holds the entry back. Returns 0
 * (sent or queued) or -EIO when the platform refused it (partner gone) or
 * the hypervisor left too many waiting (flooded).
 */
/* Encode and log an entry to send: 0, or -EIO if it cannot be encoded. */
static int tx_prepare(struct ovmc_drv *d, const struct ovmc_entry *m,
		      uint8_t e[OVMC_CRQ_ENTRY_SIZE])
{
	if (ovmc_entry_encode(m, e))
		return -EIO;
	if (d->log_level >= OVMC_LOG_TRACE) {
		char line[128];

		ovmc_entry_format(e, line, sizeof(line));
		drv_log(d, OVMC_LOG_TRACE, "partition -> hv: %s", line);
	}
	return 0;
}

/* What tx() does once H_SEND_CRQ answered rc. */
static int tx_done(struct ovmc_drv *d, long rc, const uint8_t e[OVMC_CRQ_ENTRY_SIZE])
{
	if (rc == OVMC_H_SUCCESS)
		return 0;
	if (rc == OVMC_H_DROPPED)
		return txq_push(d, e) ? -EIO : 0;
	d->stats.send_failed++;
	drv_log(d, rc == OVMC_H_CLOSED ? OVMC_LOG_DEBUG : OVMC_LOG_WARN, "send refused: %s",
		ovmc_hcall_rc_name(rc));
	return -EIO;
}

static int tx(struct ovmc_drv *d, const struct ovmc_entry *m)
{
	uint8_t e[OVMC_CRQ_ENTRY_SIZE];
	long rc;

	if (tx_prepare(d, m, e))
		return -EIO;
	if (d->tx_count || d->flooded)
		return txq_push(d, e) ? -EIO : 0;
	rc = send_raw(d, e);
	return tx_done(d, rc, e);
}

long drv_rdma_tx_hmc(struct ovmc_drv *d, uint64_t len, uint64_t src_liobn, uint64_t src_ioba,
		     uint64_t dst_liobn, uint64_t dst_ioba, enum ovmc_msg_type type,
		     const struct ovmc_hmc_msg *h, int *sent)
{
	struct ovmc_hcall_req req[2] = {
		{.opcode = OVMC_H_COPY_RDMA,
		 .args = {len, src_liobn, src_ioba, dst_liobn, dst_ioba},
		 .nargs = 5},
		{.opcode = OVMC_H_SEND_CRQ, .args = {d->node.unit_address}, .nargs = 3},
	};
	uint8_t e[OVMC_CRQ_ENTRY_SIZE];
	struct ovmc_entry m;
	long rcs[2];

	ovmc_entry_hmc(&m, type, h);
	/* Entries held back go first: then the message waits behind them. */
	if (d->tx_count || d->flooded || tx_prepare(d, &m, e)) {
		long rc = drv_rdma(d, len, src_liobn, src_ioba, dst_liobn, dst_ioba);

		if (rc == OVMC_H_SUCCESS)
			*sent = tx(d, &m);
		return rc;
	}
	ovmc_entry_to_words(e, &req[1].args[1], &req[1].args[2]);
	ovmc_hcall_pair(d->plat, req, rcs);
	rdma_done(d, rcs[0], len, src_liobn, src_ioba, dst_liobn, dst_ioba);
	if (rcs[0] != OVMC_H_SUCCESS)
		return rcs[0];
	send_done(d, rcs[1], e);
	*sent = tx_done(d, rcs[1], e);
	return OVMC_H_SUCCESS;
}

int drv_tx_hmc(struct ovmc_drv *d, enum ovmc_msg_type type, const struct ovmc_hmc_msg *h)
{
	struct ovmc_entry m;

	ovmc_entry_hmc(&m, type, h);
	return tx(d, &m);
}

int drv_tx_resp(struct ovmc_drv *d, enum ovmc_msg_type type, uint8_t status, uint8_t session,
		uint8_t index, uint16_t buffer_id)
{
	struct ovmc_hmc_msg h = {
		.status = status, .session = session, .index = index, .buffer_id = buffer_id};

	return drv_tx_hmc(d, type, &h);
}

void drv_send_init(struct ovmc_drv *d, enum ovmc_init_format fmt)
{
	struct ovmc_entry m;
	uint8_t e[OVMC_CRQ_ENTRY_SIZE];

	ovmc_entry_init(&m, fmt);
	ovmc_entry_encode(&m, e);
	/* H_CLOSED: the hypervisor end is not up; its INIT will come. */
	send_raw(d, e);
}

void drv_send_caps(struct ovmc_drv *d)
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
		drv_set_state(d, OVMC_DRV_CAPABILITIES);
}
