// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Driver core, inbound: entries taken from the CRQ, decoded, checked
 * against the driver's and the connection's state, one handler per
 * message type.
 */
#include "driver_impl.h"

#include <string.h>

static void handle_init(struct ovmc_drv *d, const struct ovmc_entry *m)
{
	if (m->type == OVMC_INIT_REQUEST) {
		if (d->state != OVMC_DRV_CRQINIT) {
			/* The hypervisor restarted without us seeing an event. */
			d->stats.resets++;
			drv_log(d, OVMC_LOG_WARN, "hypervisor re-initialised: connections reset");
			drv_return_all_slots(d);
			drv_set_state(d, OVMC_DRV_CRQINIT);
		}
		drv_send_init(d, OVMC_INIT_COMPLETE);
		drv_send_caps(d);
		return;
	}
	if (d->state == OVMC_DRV_CRQINIT)
		drv_send_caps(d);
}

static void handle_caps_resp(struct ovmc_drv *d, const struct ovmc_entry *m)
{
	const struct ovmc_caps *c = &m->caps;

	if (d->state != OVMC_DRV_CAPABILITIES) {
		drv_proto_err(d, &d->stats.err_state, "CAP_RESP in state %s",
			      ovmc_drv_state_name(d->state));
		return;
	}
	d->init_retry_at = OVMC_TIME_NEVER;
	if (c->status != OVMC_CAP_OK) {
		drv_log(d, OVMC_LOG_ERROR, "hypervisor refused our capabilities (status %u%s)",
			c->status, c->status == OVMC_CAP_BAD_VERSION ? ": version" : "");
		drv_set_state(d, OVMC_DRV_FAILED);
		return;
	}
	if ((c->version >> 8) != (d->cfg.version >> 8)) {
		drv_log(d, OVMC_LOG_ERROR, "hypervisor VMC version 0x%04x incompatible with 0x%04x",
			c->version, d->cfg.version);
		drv_set_state(d, OVMC_DRV_FAILED);
		return;
	}
	if (!c->max_hmcs || !c->pool_size || c->mtu < MIN_MTU || c->crq_size < 2) {
		drv_log(d, OVMC_LOG_ERROR,
			"hypervisor capabilities unusable (hmcs %u pool %u mtu %u crq %u)",
			c->max_hmcs, c->pool_size, c->mtu, c->crq_size);
		drv_set_state(d, OVMC_DRV_FAILED);
		return;
	}
	d->neg.max_hmcs = c->max_hmcs < d->cfg.max_hmcs ? c->max_hmcs : d->cfg.max_hmcs;
	d->neg.pool_size = c->pool_size < d->cfg.pool_size ? c->pool_size : d->cfg.pool_size;
	d->neg.mtu = c->mtu < d->cfg.max_mtu ? c->mtu : d->cfg.max_mtu;
	d->neg.hv_crq_size = c->crq_size;
	d->neg.hv_version = c->version;
	drv_log(d, OVMC_LOG_INFO, "channel ready: hmcs %u, pool %u, mtu %u", d->neg.max_hmcs,
		d->neg.pool_size, d->neg.mtu);
	drv_set_state(d, OVMC_DRV_READY);
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
		drv_proto_err(d, &d->stats.err_session, "%s for HMC index %u (%u negotiated)",
			      ovmc_msg_type_name(m->type), h->index, d->neg.max_hmcs);
		return NULL;
	}
	s = &d->slots[h->index];
	if ((h->session == 0 && allow_zero) || h->session == s->session)
		return s;
	drv_proto_err(d, &d->stats.err_session, "%s for session %u, index %u is at %u",
		      ovmc_msg_type_name(m->type), h->session, h->index, s->session);
	return NULL;
}

static void handle_add_buf(struct ovmc_drv *d, const struct ovmc_entry *m)
{
	const struct ovmc_hmc_msg *h = &m->hmc;
	struct drv_slot *s;
	struct drv_buf *b;

	if (h->index >= d->neg.max_hmcs) {
		drv_proto_err(d, &d->stats.err_session, "ADD_BUF for HMC index %u", h->index);
		drv_tx_resp(d, OVMC_MSG_ADD_BUF_RESP, OVMC_BUF_INVALID_HMC_INDEX, h->session,
			    h->index, h->buffer_id);
		return;
	}
	s = slot_for(d, m, true);
	if (!s) {
		/* Linux drops this silently; an answer keeps the hypervisor going. */
		drv_tx_resp(d, OVMC_MSG_ADD_BUF_RESP, OVMC_BUF_CLOSED_HMC, h->session, h->index,
			    h->buffer_id);
		return;
	}
	if (h->buffer_id >= d->neg.pool_size || s->bufs[h->buffer_id].state != DB_ABSENT ||
	    (uint64_t)h->lioba + d->neg.mtu > d->node.window_remote) {
		drv_proto_err(d, &d->stats.err_buffer, "ADD_BUF of buffer %u (pool %u, %s)",
			      h->buffer_id, d->neg.pool_size,
			      h->buffer_id < d->neg.pool_size && s->bufs[h->buffer_id].state
				      ? "already present"
				      : "out of range");
		drv_tx_resp(d, OVMC_MSG_ADD_BUF_RESP, OVMC_BUF_INVALID_BUFFER_ID, h->session,
			    h->index, h->buffer_id);
		return;
	}
	b = &s->bufs[h->buffer_id];
	b->lioba = h->lioba;
	s->n_valid++;
	if (h->owner == OVMC_OWNER_HYPERVISOR) {
		b->state = DB_HV;
		s->n_hv++;
	} else {
		drv_buf_free(s, h->buffer_id);
	}
	drv_tx_resp(d, OVMC_MSG_ADD_BUF_RESP, OVMC_BUF_SUCCESS, h->session, h->index, h->buffer_id);
	drv_file_update(d, s->file);
}

static void handle_rem_buf(struct ovmc_drv *d, const struct ovmc_entry *m)
{
	const struct ovmc_hmc_msg *h = &m->hmc;
	struct drv_slot *s;
	unsigned id;

	if (h->index >= d->neg.max_hmcs) {
		drv_proto_err(d, &d->stats.err_session, "REM_BUF for HMC index %u", h->index);
		drv_tx_resp(d, OVMC_MSG_REM_BUF_RESP, OVMC_BUF_INVALID_HMC_INDEX, h->session,
			    h->index, 0);
		return;
	}
	s = slot_for(d, m, true);
	/* Never the last buffer we own: without one we could not send at all. */
	if (!s || !s->n_free || s->n_valid - s->n_hv < 2) {
		drv_tx_resp(d, OVMC_MSG_REM_BUF_RESP, OVMC_BUF_NO_BUFFER, h->session, h->index,
			    OVMC_INVALID_BUFFER_ID);
		return;
	}
	id = s->free_ids[--s->n_free];
	s->bufs[id].state = DB_ABSENT;
	s->n_valid--;
	drv_tx_resp(d, OVMC_MSG_REM_BUF_RESP, OVMC_BUF_SUCCESS, h->session, h->index, (uint16_t)id);
	drv_file_update(d, s->file);
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
		drv_proto_err(d, &d->stats.err_state, "SIGNAL on index %u in slot state %s",
			      h->index, ovmc_slot_state_name(s->state));
		return;
	}
	if (h->buffer_id >= d->neg.pool_size || s->bufs[h->buffer_id].state != DB_HV) {
		drv_proto_err(d, &d->stats.err_buffer,
			      "SIGNAL with buffer %u we do not expect from it", h->buffer_id);
		return;
	}
	b = &s->bufs[h->buffer_id];
	/* From here the buffer is ours, whatever happens to the message. */
	s->n_hv--;
	if (h->msg_len == 0 || h->msg_len > d->neg.mtu) {
		drv_proto_err(d, &d->stats.err_length, "SIGNAL of %u bytes (mtu %u)", h->msg_len,
			      d->neg.mtu);
		drv_buf_free(s, h->buffer_id);
		drv_file_update(d, s->file);
		return;
	}
	if (!s->file) {
		d->stats.discarded_msgs++;
		drv_log(d, OVMC_LOG_INFO, "message on closing HMC index %u discarded (%u bytes)",
			s->index, h->msg_len);
		drv_buf_free(s, h->buffer_id);
		return;
	}
	rc = drv_rdma(d, h->msg_len, d->node.liobn_remote, b->lioba, d->node.liobn_local,
		      mirror_ioba(d, s->index, h->buffer_id));
	if (rc != OVMC_H_SUCCESS) {
		d->stats.lost_rdma++;
		drv_log(d, OVMC_LOG_ERROR, "message of %u bytes lost: H_COPY_RDMA %s", h->msg_len,
			ovmc_hcall_rc_name(rc));
		drv_buf_free(s, h->buffer_id);
		drv_file_update(d, s->file);
		return;
	}
	b->state = DB_BUSY;
	b->msg_len = h->msg_len;
	s->rq[(s->rq_head + s->rq_count) % d->cfg.pool_size] = h->buffer_id;
	s->rq_count++;
	d->stats.messages_in++;
	d->stats.bytes_in += h->msg_len;
	drv_file_update(d, s->file);
}

static void handle_open_resp(struct ovmc_drv *d, const struct ovmc_entry *m)
{
	const struct ovmc_hmc_msg *h = &m->hmc;
	struct drv_slot *s;

	if (h->index >= d->neg.max_hmcs) {
		drv_proto_err(d, &d->stats.err_session, "OPEN_RESP for HMC index %u", h->index);
		drv_reset(d, "open response for an unknown HMC index");
		return;
	}
	s = slot_for(d, m, false);
	if (!s)
		return;
	if (s->state == OVMC_SLOT_CLOSING)
		return; /* closed before the open completed; the close answers */
	if (s->state != OVMC_SLOT_OPENING) {
		drv_proto_err(d, &d->stats.err_state, "OPEN_RESP on index %u in slot state %s",
			      h->index, ovmc_slot_state_name(s->state));
		return;
	}
	if (h->status != 0) {
		drv_log(d, OVMC_LOG_WARN, "hypervisor refused the open on index %u (status %u)",
			s->index, h->status);
		drv_return_slot(d, s);
		return;
	}
	if (h->buffer_id >= d->neg.pool_size) {
		drv_proto_err(d, &d->stats.err_buffer, "OPEN_RESP returns buffer %u", h->buffer_id);
		s->state = OVMC_SLOT_FAILED;
		drv_file_update(d, s->file);
		return;
	}
	if (s->bufs[s->open_buf].state == DB_BUSY)
		drv_buf_free(s, s->open_buf);
	s->state = OVMC_SLOT_READY;
	drv_log(d, OVMC_LOG_INFO, "session %u open on HMC index %u", s->session, s->index);
	drv_file_update(d, s->file);
}

static void handle_close_resp(struct ovmc_drv *d, const struct ovmc_entry *m)
{
	const struct ovmc_hmc_msg *h = &m->hmc;
	struct drv_slot *s;

	if (h->index >= d->neg.max_hmcs) {
		drv_proto_err(d, &d->stats.err_session, "CLOSE_RESP for HMC index %u", h->index);
		drv_reset(d, "close response for an unknown HMC index");
		return;
	}
	s = slot_for(d, m, false);
	if (!s)
		return;
	if (h->status != 0) {
		drv_reset(d, "hypervisor failed an interface close");
		return;
	}
	if (s->state != OVMC_SLOT_CLOSING) {
		drv_proto_err(d, &d->stats.err_state, "CLOSE_RESP on index %u in slot state %s",
			      h->index, ovmc_slot_state_name(s->state));
		return;
	}
	drv_return_slot(d, s);
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
		drv_transport_reset(d, e[1]);
		return;
	}
	rc = ovmc_entry_decode(e, OVMC_CRQ_ENTRY_SIZE, 0, &m);
	if (rc) {
		drv_proto_err(d, &d->stats.err_decode, "undecodable entry: %s", ovmc_strerror(rc));
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
		drv_proto_err(d, &d->stats.err_direction, "%s is never sent by the hypervisor",
			      ovmc_msg_type_name(m.type));
		return;
	}
	/* Interface messages before capabilities are dropped (LoPAR). */
	if (d->state != OVMC_DRV_READY) {
		drv_proto_err(d, &d->stats.err_state, "%s in state %s", ovmc_msg_type_name(m.type),
			      ovmc_drv_state_name(d->state));
		return;
	}
	fn(d, &m);
}

bool ovmc_drv_crq_pending(const struct ovmc_drv *d)
{
	const uint8_t *slot;

	if (!d->crq_registered)
		return false;
	/* A flooded driver's reset comes with the next interrupt handling. */
	if (d->flooded)
		return true;
	slot = d->mem + CRQ_IOBA + (size_t)d->crq_cur * OVMC_CRQ_ENTRY_SIZE;
	return __atomic_load_n(slot, __ATOMIC_ACQUIRE) & 0x80;
}

unsigned ovmc_drv_handle_interrupt(struct ovmc_drv *d, uint64_t now)
{
	unsigned n = 0;

	d->now = now;
	ovmc_platform_irq_ack(d->plat);
	/* Flooded: the rest of the queue goes with the reset below. */
	while (d->crq_registered && !d->flooded) {
		uint8_t *slot = d->mem + CRQ_IOBA + (size_t)d->crq_cur * OVMC_CRQ_ENTRY_SIZE;
		uint8_t e[OVMC_CRQ_ENTRY_SIZE];

		if (!(__atomic_load_n(slot, __ATOMIC_ACQUIRE) & 0x80))
			break;
		memcpy(e, slot, sizeof(e));
		/* Our reads of the entry complete before the slot is handed back. */
		__atomic_store_n(slot, 0, __ATOMIC_RELEASE);
		d->crq_cur = (d->crq_cur + 1) % d->crq_entries;
		drv_trace_entry(d, OVMC_TRACE_TO_PARTITION, e);
		handle_entry(d, e);
		n++;
	}
	drv_flood_reset(d);
	drv_tx_flush(d);
	return n;
}
