// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Hypervisor core, inbound: entries from the partition, decoded, checked
 * against the channel's and the session's state, one handler per message
 * type the partition may send.
 */
#include "hv_core.h"

#include <string.h>

static void partner_lost(struct ovmc_hv *hv, uint8_t code)
{
	if (hv->state == OVMC_HV_READY)
		hv->stats.resets++;
	hv_log(hv, OVMC_LOG_INFO, "partition %s (event 0x%02x): sessions closed, waiting for INIT",
	       ovmc_event_name(code), code);
	hv_reset_all(hv);
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
		hv_reset_all(hv);
		hv->state = OVMC_HV_LINK_UP;
		hv_tx_init(hv, OVMC_INIT_COMPLETE);
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
	hv_tx(hv, &m);
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
	hv_reset_all(hv);
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
		hv_add_buffer(hv, &hv->slots[i], 0, 0, OVMC_OWNER_PARTITION);
}

/* Index in range; NULL (and counted) otherwise. */
static struct ovmc_hv_session *slot_of(struct ovmc_hv *hv, const struct ovmc_entry *m)
{
	if (m->hmc.index >= hv->neg.max_hmcs) {
		hv_proto_err(hv, &hv->stats.err_session, "%s for HMC index %u (only %u negotiated)",
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
		hv_proto_err(hv, &hv->stats.err_session, "%s for session %u on index %u (%s %u)",
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
	hv_end_session(hv, s);
	hv_forget_index(s);
	hv_tx_hmc(hv, OVMC_MSG_OPEN_RESP, 1, h->session, h->index, h->buffer_id);
	hv_add_buffer(hv, s, 0, 0, OVMC_OWNER_PARTITION);
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
		hv_proto_err(hv, &hv->stats.err_session, "OPEN with session 0");
		refuse_open(hv, s, h);
		return;
	}
	if (s->open) {
		hv_proto_err(hv, &hv->stats.err_state, "OPEN on index %u, session %u is open",
			     h->index, s->number);
		refuse_open(hv, s, h);
		return;
	}
	if (h->buffer_id >= hv->neg.pool_size || s->bufs[h->buffer_id].state != BUF_PARTITION) {
		hv_proto_err(hv, &hv->stats.err_buffer,
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
			hv_add_buffer(hv, s, id, s->number, OVMC_OWNER_HYPERVISOR);
			given++;
		} else {
			hv_add_buffer(hv, s, id, s->number, OVMC_OWNER_PARTITION);
		}
	}
	hv_tx_hmc(hv, OVMC_MSG_OPEN_RESP, 0, h->session, h->index, h->buffer_id);
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
		hv_proto_err(hv, &hv->stats.err_session,
			     "CLOSE of session %u, %u is open on index %u", h->session, s->number,
			     h->index);
		hv_tx_hmc(hv, OVMC_MSG_CLOSE_RESP, 1, h->session, h->index, 0);
		return;
	}
	if (!s->open)
		hv_proto_err(hv, &hv->stats.err_session,
			     "CLOSE of session %u, none open on index %u", h->session, h->index);
	hv_end_session(hv, s);
	hv_forget_index(s);
	hv_tx_hmc(hv, OVMC_MSG_CLOSE_RESP, 0, h->session, h->index, 0);
	/* The partition forgets every buffer of the index; give it a new one. */
	hv_add_buffer(hv, s, 0, 0, OVMC_OWNER_PARTITION);
}

static void handle_add_buf_resp(struct ovmc_hv *hv, const struct ovmc_entry *m)
{
	const struct ovmc_hmc_msg *h = &m->hmc;
	struct ovmc_hv_session *s = slot_of(hv, m);
	struct hv_buf *b;

	if (!s)
		return;
	if (h->buffer_id >= hv->neg.pool_size) {
		hv_proto_err(hv, &hv->stats.err_buffer, "ADD_BUF_RESP for buffer %u (pool %u)",
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
		hv_buf_to_free(s, h->buffer_id);
		hv_flush_backlog(hv, s);
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
		hv_proto_err(hv, &hv->stats.err_state, "REM_BUF_RESP without a pending removal");
		return;
	}
	reclaim = s->remove_for_reclaim;
	s->remove_pending = s->remove_for_reclaim = false;
	if (h->status == OVMC_BUF_SUCCESS) {
		if (h->buffer_id >= hv->neg.pool_size ||
		    s->bufs[h->buffer_id].state != BUF_PARTITION) {
			hv_proto_err(hv, &hv->stats.err_buffer,
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
			hv_add_buffer(hv, s, h->buffer_id, s->number, OVMC_OWNER_HYPERVISOR);
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
		hv_proto_err(hv, &hv->stats.err_buffer,
			     "SIGNAL with buffer %u the partition does not own", id);
		return;
	}
	/* The signal hands the buffer over whatever it carries. */
	s->n_partition--;
	if (h->msg_len == 0 || h->msg_len > hv->neg.mtu) {
		hv_proto_err(hv, &hv->stats.err_length, "SIGNAL of %u bytes (mtu %u)", h->msg_len,
			     hv->neg.mtu);
		hv_buf_to_free(s, id);
		hv_flush_backlog(hv, s);
		return;
	}
	hv->stats.messages_in++;
	hv->stats.bytes_in += h->msg_len;
	s->bufs[id].state = BUF_HV_BUSY;
	if (hv->be && hv->be->message)
		hv->be->message(hv->be_arg, s, buf_mem(hv, s->index, id), h->msg_len);
	if (s->bufs[id].state == BUF_HV_BUSY)
		hv_buf_to_free(s, id);
	hv_flush_backlog(hv, s);
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
	/* Gave up on this partner: the reset comes at the next timer. */
	if (hv->flooded)
		return 0;
	rc = ovmc_entry_decode(entry, OVMC_CRQ_ENTRY_SIZE, OVMC_DECODE_SIGNAL_PAD, &m);
	if (rc) {
		hv_proto_err(hv, &hv->stats.err_decode, "undecodable entry: %s", ovmc_strerror(rc));
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
		hv_proto_err(hv, &hv->stats.err_direction, "%s is never sent by a partition",
			     ovmc_msg_type_name(m.type));
		goto out;
	}
	if (hv->state == OVMC_HV_STOPPED ||
	    (m.type != OVMC_MSG_CAP && hv->state != OVMC_HV_READY)) {
		hv_proto_err(hv, &hv->stats.err_state, "%s in state %s", ovmc_msg_type_name(m.type),
			     ovmc_hv_state_name(hv->state));
		goto out;
	}
	fn(hv, &m);
out:
	hv_tx_flush(hv);
	return 0;
}
