// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Driver core, file operations: what open, ioctl, read, write, poll and
 * release of the device do, with the Linux driver's errno values
 * (docs/device-abi.md).
 */
#include "driver_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
	rc = drv_rdma(d, d->neg.mtu, d->node.liobn_local, mirror_ioba(d, s->index, id),
		      d->node.liobn_remote, s->bufs[id].lioba);
	if (rc != OVMC_H_SUCCESS) {
		drv_log(d, OVMC_LOG_ERROR, "HMC id transfer failed: H_COPY_RDMA %s",
			ovmc_hcall_rc_name(rc));
		drv_buf_free(s, id);
		return -EIO;
	}
	h = (struct ovmc_hmc_msg){
		.session = s->session, .index = (uint8_t)s->index, .buffer_id = (uint16_t)id};
	if (drv_tx_hmc(d, OVMC_MSG_OPEN, &h)) {
		drv_buf_free(s, id);
		return -EIO;
	}
	s->state = OVMC_SLOT_OPENING;
	s->file = f;
	f->slot = s;
	f->last_events = drv_file_events(d, f);
	return 0;
}

ssize_t ovmc_drv_write(struct ovmc_drv *d, struct ovmc_drv_file *f, const void *buf, size_t len,
		       uint64_t now)
{
	struct drv_slot *s = f->slot;
	struct ovmc_hmc_msg h;
	unsigned id;
	long rc;
	int sent = -EIO;

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
	h = (struct ovmc_hmc_msg){
		.session = s->session,
		.index = (uint8_t)s->index,
		.buffer_id = (uint16_t)id,
		.msg_len = (uint32_t)len,
	};
	rc = drv_rdma_tx_hmc(d, len, d->node.liobn_local, mirror_ioba(d, s->index, id),
			     d->node.liobn_remote, s->bufs[id].lioba, OVMC_MSG_SIGNAL, &h, &sent);
	if (rc != OVMC_H_SUCCESS) {
		drv_log(d, OVMC_LOG_ERROR, "write of %zu bytes failed: H_COPY_RDMA %s", len,
			ovmc_hcall_rc_name(rc));
		return -EIO;
	}
	if (sent)
		return -EIO;
	s->n_free--;
	s->bufs[id].state = DB_HV;
	s->n_hv++;
	d->stats.messages_out++;
	d->stats.bytes_out += len;
	drv_file_update(d, f);
	return (ssize_t)len;
}

static void copy_to(void *user, const void *data, size_t len)
{
	memcpy(user, data, len);
}

ssize_t ovmc_drv_read(struct ovmc_drv *d, struct ovmc_drv_file *f, void *buf, size_t len,
		      uint64_t now)
{
	return ovmc_drv_read_to(d, f, len, copy_to, buf, now);
}

ssize_t ovmc_drv_read_to(struct ovmc_drv *d, struct ovmc_drv_file *f, size_t len,
			 ovmc_drv_read_fn fn, void *user, uint64_t now)
{
	uint32_t mtu = d->state == OVMC_DRV_READY ? d->neg.mtu : d->cfg.max_mtu;
	struct drv_slot *s = f->slot;
	const uint8_t *src;
	size_t msg_len, n;
	int id = -1;

	d->now = now;
	if (!fn)
		return -EINVAL;
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
		fn(user, o->data, n);
		msg_len = o->len;
		free(o);
	} else if (s && (id = drv_rq_pop(s, d)) >= 0) {
		msg_len = s->bufs[id].msg_len;
		src = mirror(d, s->index, (unsigned)id);
		n = len < msg_len ? len : msg_len;
		fn(user, src, n);
		drv_buf_free(s, (unsigned)id);
	} else {
		return f->reset ? -EBADFD : -EAGAIN;
	}
	if (n < msg_len) {
		d->stats.truncated_reads++;
		d->stats.truncated_bytes += msg_len - n;
		drv_log(d, OVMC_LOG_WARN, "read of %zu bytes truncated a %zu-byte message", len,
			msg_len);
	}
	drv_file_update(d, f);
	return (ssize_t)n;
}

unsigned ovmc_drv_poll(struct ovmc_drv *d, struct ovmc_drv_file *f)
{
	f->last_events = drv_file_events(d, f);
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
		drv_log(d, OVMC_LOG_ERROR, "H_REQUEST_VMC failed: %s (%ld)", ovmc_hcall_rc_name(rc),
			rc);
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
		unread = drv_discard_queue(d, s);
		if (drv_tx_hmc(d, OVMC_MSG_CLOSE, &h) == 0) {
			s->state = OVMC_SLOT_CLOSING;
		} else {
			/* Nobody to tell: the index is free at once. */
			drv_forget_buffers(d, s);
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
