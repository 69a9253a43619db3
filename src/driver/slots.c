// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Driver core, HMC connections (slots): their buffers, their read queues,
 * what a file keeps when its connection ends, and the readiness a file
 * reports.
 */
#include "driver_impl.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>

unsigned drv_file_events(const struct ovmc_drv *d, const struct ovmc_drv_file *f)
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

void drv_file_update(struct ovmc_drv *d, struct ovmc_drv_file *f)
{
	unsigned ev;

	if (!f)
		return;
	ev = drv_file_events(d, f);
	if (ev == f->last_events)
		return;
	f->last_events = ev;
	if (d->cbs.file_event)
		d->cbs.file_event(d->user, f, ev);
}

void drv_buf_free(struct drv_slot *s, unsigned id)
{
	s->bufs[id].state = DB_FREE;
	s->free_ids[s->n_free++] = (uint16_t)id;
}

int drv_rq_pop(struct drv_slot *s, struct ovmc_drv *d)
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

	while ((id = drv_rq_pop(s, d)) >= 0) {
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

unsigned drv_discard_queue(struct ovmc_drv *d, struct drv_slot *s)
{
	unsigned n = 0;
	int id;

	while ((id = drv_rq_pop(s, d)) >= 0) {
		d->stats.discarded_msgs++;
		n++;
		if (s->bufs[id].state == DB_BUSY)
			drv_buf_free(s, (unsigned)id);
	}
	return n;
}

void drv_forget_buffers(struct ovmc_drv *d, struct drv_slot *s)
{
	memset(s->bufs, 0, d->cfg.pool_size * sizeof(*s->bufs));
	s->n_free = s->n_valid = s->n_hv = 0;
	s->rq_head = s->rq_count = 0;
}

void drv_return_slot(struct ovmc_drv *d, struct drv_slot *s)
{
	struct ovmc_drv_file *f = s->file;

	if (f) {
		orphan_queue(d, f, s);
		f->slot = NULL;
		f->reset = true;
	} else {
		unsigned n = drv_discard_queue(d, s);

		if (n)
			drv_log(d, OVMC_LOG_INFO,
				"%u unread messages of closed HMC index %u discarded", n, s->index);
	}
	s->file = NULL;
	drv_forget_buffers(d, s);
	s->state = OVMC_SLOT_FREE;
	drv_file_update(d, f);
}

void drv_return_all_slots(struct ovmc_drv *d)
{
	for (unsigned i = 0; i < d->cfg.max_hmcs; i++)
		drv_return_slot(d, &d->slots[i]);
}
