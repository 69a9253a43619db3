// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The replay backend ("replay:FILE"): answers from a capture file. Each
 * recorded session is a list of requests and of what the hypervisor sent
 * (responses and unsolicited messages), in order. A live session opened on
 * an HMC index plays the next recorded session of that index: what was sent
 * before the first request goes out at open, and after each request what
 * followed it in the recording. A request that differs from the recorded
 * one is answered all the same, and counted and logged.
 *
 * Only the first partition in the file is used. Message bytes come from the
 * RDMA records, matched to their signal by the buffer's address.
 */
#include "backends.h"

#include <openvmc/capture.h>
#include <openvmc/wire.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct item {
	bool request;
	bool have_data;
	size_t len;
	uint8_t *data;
};

struct rec_session {
	unsigned index;
	struct item *items;
	size_t n, cap;
};

struct live {
	struct rec_session *rs;
	size_t pos;
};

struct replay {
	struct ovmc_backend_env env;
	struct rec_session *sess;
	size_t n_sess, cap_sess;
	unsigned opens[256];
	uint64_t mismatches, unmatched;
};

/* What the parser needs to pair signals with the RDMA that moved their bytes. */
struct buf_addr {
	uint8_t index;
	uint16_t id;
	uint32_t lioba;
};

struct pending {
	uint32_t lioba;
	size_t session; /* index into replay.sess: it moves when the array grows */
	size_t item;
};

struct parser {
	struct replay *r;
	bool have_partition;
	uint16_t partition;
	size_t current[256]; /* 1 + index of the open recorded session, 0: none */
	struct buf_addr *addrs;
	size_t n_addrs, cap_addrs;
	struct pending *pend;
	size_t n_pend, cap_pend;
	/* Latest bytes written into each hypervisor buffer, by address. */
	struct {
		uint32_t lioba;
		uint8_t *data;
		size_t len;
	} *last_in;
	size_t n_in, cap_in;
};

static int grow(void **v, size_t *cap, size_t n, size_t size)
{
	void *p;
	size_t c;

	if (n < *cap)
		return 0;
	c = *cap ? *cap * 2 : 16;
	p = realloc(*v, c * size);
	if (!p)
		return -ENOMEM;
	*v = p;
	*cap = c;
	return 0;
}

static bool lioba_of(const struct parser *p, uint8_t index, uint16_t id, uint32_t *out)
{
	for (size_t i = p->n_addrs; i-- > 0;) {
		if (p->addrs[i].index == index && p->addrs[i].id == id) {
			*out = p->addrs[i].lioba;
			return true;
		}
	}
	return false;
}

static int add_item(struct rec_session *rs, bool request, size_t *at)
{
	if (grow((void **)&rs->items, &rs->cap, rs->n, sizeof(*rs->items)))
		return -ENOMEM;
	rs->items[rs->n] = (struct item){.request = request};
	*at = rs->n++;
	return 0;
}

static int set_data(struct item *it, const uint8_t *data, size_t len)
{
	it->data = malloc(len ? len : 1);
	if (!it->data)
		return -ENOMEM;
	memcpy(it->data, data, len);
	it->len = len;
	it->have_data = true;
	return 0;
}

static int on_entry(struct parser *p, const struct ovmc_capture_record *rec)
{
	struct ovmc_entry m;
	const struct ovmc_hmc_msg *h = &m.hmc;
	struct rec_session *rs;
	uint32_t lioba;
	size_t at;

	if (ovmc_entry_decode(rec->entry, OVMC_CRQ_ENTRY_SIZE,
			      OVMC_DECODE_SIGNAL_PAD, &m) || m.header != OVMC_CRQ_CMD)
		return 0;
	switch (m.type) {
	case OVMC_MSG_ADD_BUF:
		if (grow((void **)&p->addrs, &p->cap_addrs, p->n_addrs, sizeof(*p->addrs)))
			return -ENOMEM;
		p->addrs[p->n_addrs++] =
			(struct buf_addr){.index = h->index, .id = h->buffer_id, .lioba = h->lioba};
		return 0;
	case OVMC_MSG_OPEN:
		if (grow((void **)&p->r->sess, &p->r->cap_sess, p->r->n_sess, sizeof(*p->r->sess)))
			return -ENOMEM;
		p->r->sess[p->r->n_sess++] = (struct rec_session){.index = h->index};
		p->current[h->index] = p->r->n_sess;
		return 0;
	case OVMC_MSG_CLOSE:
		p->current[h->index] = 0;
		return 0;
	case OVMC_MSG_SIGNAL:
		break;
	default:
		return 0;
	}
	if (!p->current[h->index] || !lioba_of(p, h->index, h->buffer_id, &lioba))
		return 0;
	rs = &p->r->sess[p->current[h->index] - 1];
	if (rec->dir == OVMC_CAPTURE_TO_HV) {
		/* The partition copied the request in just before signalling. */
		for (size_t i = 0; i < p->n_in; i++) {
			if (p->last_in[i].lioba == lioba && p->last_in[i].len == h->msg_len) {
				if (add_item(rs, true, &at))
					return -ENOMEM;
				return set_data(&rs->items[at], p->last_in[i].data, h->msg_len);
			}
		}
		return 0;
	}
	if (add_item(rs, false, &at) ||
	    grow((void **)&p->pend, &p->cap_pend, p->n_pend, sizeof(*p->pend)))
		return -ENOMEM;
	p->pend[p->n_pend++] = (struct pending){
		.lioba = lioba, .session = (size_t)(rs - p->r->sess), .item = at};
	return 0;
}

static int on_rdma(struct parser *p, const struct ovmc_capture_record *rec)
{
	if (rec->dir == OVMC_CAPTURE_TO_HV) {
		size_t i;

		for (i = 0; i < p->n_in && p->last_in[i].lioba != (uint32_t)rec->dst_ioba; i++)
			;
		if (i == p->n_in) {
			if (grow((void **)&p->last_in, &p->cap_in, p->n_in, sizeof(*p->last_in)))
				return -ENOMEM;
			p->last_in[p->n_in++].data = NULL;
		}
		free(p->last_in[i].data);
		p->last_in[i].lioba = (uint32_t)rec->dst_ioba;
		p->last_in[i].len = rec->data_len;
		p->last_in[i].data = malloc(rec->data_len ? rec->data_len : 1);
		if (!p->last_in[i].data)
			return -ENOMEM;
		memcpy(p->last_in[i].data, rec->data, rec->data_len);
		return 0;
	}
	/* A message out of the hypervisor: the oldest signal naming this buffer. */
	for (size_t i = 0; i < p->n_pend; i++) {
		if (p->pend[i].lioba == (uint32_t)rec->src_ioba) {
			struct rec_session *rs = &p->r->sess[p->pend[i].session];
			int rc = set_data(&rs->items[p->pend[i].item], rec->data, rec->data_len);

			memmove(&p->pend[i], &p->pend[i + 1], (p->n_pend - i - 1) * sizeof(*p->pend));
			p->n_pend--;
			return rc;
		}
	}
	return 0;
}

static void drop_incomplete(struct replay *r)
{
	for (size_t s = 0; s < r->n_sess; s++) {
		struct rec_session *rs = &r->sess[s];
		size_t out = 0;

		for (size_t i = 0; i < rs->n; i++) {
			if (rs->items[i].have_data)
				rs->items[out++] = rs->items[i];
		}
		rs->n = out;
	}
}

static void replay_free(struct replay *r)
{
	for (size_t s = 0; s < r->n_sess; s++) {
		for (size_t i = 0; i < r->sess[s].n; i++)
			free(r->sess[s].items[i].data);
		free(r->sess[s].items);
	}
	free(r->sess);
	free(r);
}

static int load(struct replay *r, const char *path)
{
	struct parser p = {.r = r};
	struct ovmc_capture_reader *rd;
	struct ovmc_capture_record rec;
	int rc = ovmc_capture_reader_open(path, &rd);

	if (rc)
		return rc;
	while ((rc = ovmc_capture_read(rd, &rec)) == 1) {
		if (!p.have_partition) {
			p.have_partition = true;
			p.partition = rec.partition;
		}
		if (rec.partition != p.partition)
			continue;
		rc = rec.kind == OVMC_CAPTURE_CRQ ? on_entry(&p, &rec) : on_rdma(&p, &rec);
		if (rc)
			break;
	}
	ovmc_capture_reader_close(rd);
	for (size_t i = 0; i < p.n_in; i++)
		free(p.last_in[i].data);
	free(p.last_in);
	free(p.addrs);
	free(p.pend);
	drop_incomplete(r);
	return rc < 0 ? rc : 0;
}

/* Send what the recording sent until the next request; stop on -ENOBUFS. */
static void play(struct replay *r, struct ovmc_hv_session *s, struct live *l)
{
	while (l->rs && l->pos < l->rs->n && !l->rs->items[l->pos].request) {
		const struct item *it = &l->rs->items[l->pos];
		int rc = ovmc_hv_send(s, it->data, it->len);

		if (rc == -ENOBUFS)
			return;
		if (rc)
			ovmc_backend_log(&r->env, OVMC_LOG_WARN,
					 "replay: recorded message of %zu bytes not sent: %s",
					 it->len, ovmc_strerror(rc));
		l->pos++;
	}
}

static int replay_open(void *b, struct ovmc_hv_session *s, const uint8_t hmc_id[OVMC_HMC_ID_LEN])
{
	struct replay *r = b;
	unsigned index = ovmc_hv_session_index(s);
	struct live *l = calloc(1, sizeof(*l));
	size_t count = 0, want;

	(void)hmc_id;
	if (!l)
		return -ENOMEM;
	for (size_t i = 0; i < r->n_sess; i++)
		count += r->sess[i].index == index;
	if (count) {
		want = r->opens[index % 256]++ % count;
		for (size_t i = 0; i < r->n_sess; i++) {
			if (r->sess[i].index == index && want-- == 0) {
				l->rs = &r->sess[i];
				break;
			}
		}
	} else {
		ovmc_backend_log(&r->env, OVMC_LOG_WARN,
				 "replay: no recorded session on HMC index %u", index);
	}
	ovmc_hv_session_set_user(s, l);
	play(r, s, l);
	return 0;
}

static void replay_message(void *b, struct ovmc_hv_session *s, const uint8_t *data, size_t len)
{
	struct replay *r = b;
	struct live *l = ovmc_hv_session_user(s);
	const struct item *it;

	if (!l || !l->rs || l->pos >= l->rs->n) {
		r->unmatched++;
		ovmc_backend_log(&r->env, OVMC_LOG_WARN,
				 "replay: request of %zu bytes beyond the recording", len);
		return;
	}
	it = &l->rs->items[l->pos++];
	if (it->len != len || memcmp(it->data, data, len)) {
		r->mismatches++;
		ovmc_backend_log(&r->env, OVMC_LOG_WARN,
				 "replay: request %zu differs from the recording (%zu bytes, "
				 "recorded %zu); answering as recorded",
				 l->pos, len, it->len);
	}
	play(r, s, l);
}

static void replay_writable(void *b, struct ovmc_hv_session *s)
{
	struct live *l = ovmc_hv_session_user(s);

	if (l)
		play(b, s, l);
}

static void replay_close(void *b, struct ovmc_hv_session *s)
{
	(void)b;
	free(ovmc_hv_session_user(s));
	ovmc_hv_session_set_user(s, NULL);
}

static void replay_destroy(void *b)
{
	replay_free(b);
}

static const struct ovmc_backend_ops replay_ops = {
	.name = "replay",
	.open = replay_open,
	.message = replay_message,
	.close = replay_close,
	.writable = replay_writable,
};

int ovmc_backend_replay_new(const char *args, const struct ovmc_backend_env *env,
			    struct ovmc_backend *out)
{
	struct replay *r;
	size_t requests = 0;
	int rc;

	if (!args || !*args)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->env = *env;
	rc = load(r, args);
	if (rc) {
		ovmc_backend_log(env, OVMC_LOG_ERROR, "replay: cannot load %s: %s", args,
				 ovmc_strerror(rc));
		replay_free(r);
		return rc;
	}
	for (size_t i = 0; i < r->n_sess; i++)
		for (size_t k = 0; k < r->sess[i].n; k++)
			requests += r->sess[i].items[k].request;
	ovmc_backend_log(env, OVMC_LOG_INFO, "replay: %zu sessions, %zu requests from %s",
			 r->n_sess, requests, args);
	*out = (struct ovmc_backend){.ops = &replay_ops, .arg = r, .destroy = replay_destroy};
	return 0;
}
