// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Hypervisor core, sessions: the buffers of each HMC index and who owns
 * them, the session open on it, and the messages it sends to the
 * partition (at once, or in its backlog until a buffer is free).
 */
#include "hv_core.h"

#include <openvmc/machine.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- buffers ---- */

void hv_buf_to_free(struct ovmc_hv_session *s, unsigned id)
{
	s->bufs[id].state = BUF_HV_FREE;
	s->free_ids[s->n_free++] = (uint16_t)id;
}

int hv_add_buffer(struct ovmc_hv *hv, struct ovmc_hv_session *s, unsigned id, uint8_t session,
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
	return hv_tx(hv, &m);
}

void hv_forget_index(struct ovmc_hv_session *s)
{
	memset(s->bufs, 0, s->hv->cfg.pool_size * sizeof(*s->bufs));
	s->n_free = s->n_partition = s->n_adding_hv = 0;
	s->remove_pending = s->remove_for_reclaim = false;
	free_backlog(s);
	s->want_writable = false;
}

void hv_end_session(struct ovmc_hv *hv, struct ovmc_hv_session *s)
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

void hv_reset_all(struct ovmc_hv *hv)
{
	for (unsigned i = 0; i < hv->cfg.max_hmcs; i++) {
		hv_end_session(hv, &hv->slots[i]);
		hv_forget_index(&hv->slots[i]);
	}
	hv_tx_drop_all(hv);
	hv->flooded = false;
	hv->reset_at = OVMC_TIME_NEVER;
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
	if (hv->binding)
		ovmc_vmc_hv_wrote(hv->binding, buf_lioba(hv, s->index, id), len);
	s->bufs[id].state = BUF_PARTITION;
	s->n_partition++;
	hv->stats.messages_out++;
	hv->stats.bytes_out += len;
	ovmc_entry_hmc(&m, OVMC_MSG_SIGNAL, &h);
	hv_tx(hv, &m);
}

void hv_try_reclaim(struct ovmc_hv *hv, struct ovmc_hv_session *s)
{
	if (!s->open || !s->bl_count || s->n_free || s->n_adding_hv || s->remove_pending ||
	    s->n_partition < 2)
		return;
	s->remove_pending = s->remove_for_reclaim = true;
	hv_tx_hmc(hv, OVMC_MSG_REM_BUF, 0, s->number, (uint8_t)s->index, 0);
}

void hv_flush_backlog(struct ovmc_hv *hv, struct ovmc_hv_session *s)
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
		hv_try_reclaim(hv, s);
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
	hv_try_reclaim(hv, s);
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
	return hv_tx_hmc(s->hv, OVMC_MSG_REM_BUF, 0, s->number, (uint8_t)s->index, 0);
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
