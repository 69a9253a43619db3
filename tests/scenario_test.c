// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Whole-channel scenarios: the driver core and the hypervisor core wired
 * together through the emulated machine (tests/sim.h), driven with a
 * virtual clock. Expectations come from the header contracts (driver.h,
 * hv.h) and docs/protocol.md (sections 1, 4 and 5.4 for the errno values).
 */
#include "harness.h"
#include "sim.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>

static void free_cb(void *p)
{
	free(p);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		FAIL("out of memory");
	ovmc_test_defer(free_cb, p);
	return p;
}

/* Test message `i` of a stream: its length (1..mtu) and deterministic bytes. */
static size_t gen_msg(uint64_t seed, unsigned i, uint8_t *buf, uint32_t mtu)
{
	uint64_t st = seed * 0x9E3779B97F4A7C15ull + i + 1;
	size_t len;

	if (i % 50 == 49)
		len = mtu;
	else if (i % 50 == 0)
		len = 1 + i / 50 % 3;
	else
		len = 1 + (size_t)(i * 613u) % mtu;
	for (size_t k = 0; k < len; k++)
		buf[k] = (uint8_t)(ovmc_test_rand(&st) >> 56);
	return len;
}

static void slot_info(struct sim *s, unsigned index, struct ovmc_drv_slot_info *out)
{
	CHECK_EQ(ovmc_drv_slot_info(s->drv, index, out), 0);
}

static void pool_info(struct sim *s, unsigned index, struct ovmc_hv_pool_info *out)
{
	CHECK_EQ(ovmc_hv_pool_info(s->hv, index, out), 0);
}

static struct ovmc_drv_stats drv_stats(struct sim *s)
{
	struct ovmc_drv_stats st;

	ovmc_drv_stats(s->drv, &st);
	return st;
}

static struct ovmc_hv_stats hv_stats(struct sim *s)
{
	struct ovmc_hv_stats st;

	ovmc_hv_stats(s->hv, &st);
	return st;
}

/* HMC index of the session the backend opened with this id. */
static unsigned index_of_id(struct sim *s, const uint8_t id[OVMC_HMC_ID_LEN])
{
	for (size_t i = s->be.open_log.n; i-- > 0;) {
		if (memcmp(s->be.open_log.v[i].data, id, OVMC_HMC_ID_LEN) == 0)
			return s->be.open_log.v[i].index;
	}
	FAIL("no open with that HMC id reached the backend");
}

/* Write a short text message and expect it written whole. */
static void write_str(struct sim *s, struct sim_file *f, const char *str)
{
	size_t len = strlen(str);

	CHECK_EQ(sim_write(s, f, str, len), (ssize_t)len);
}

/* Read one message and expect exactly `str`. */
static void read_str(struct sim *s, struct sim_file *f, const char *str)
{
	uint8_t buf[256];
	ssize_t n = sim_read(s, f, buf, sizeof(buf));

	if (n < 0)
		FAIL("read gave %zd (%s), expected \"%s\"", n, ovmc_strerror((int)n), str);
	CHECK_EQ(n, (ssize_t)strlen(str));
	CHECK_MEM(buf, str, (size_t)n);
}

/* Read one message, letting virtual time pass (up to 5 s) until it arrives. */
static void read_str_wait(struct sim *s, struct sim_file *f, const char *str)
{
	if (!sim_wait(s, f, POLLIN | POLLHUP, 5 * SIM_S))
		FAIL("nothing to read within 5 s, expected \"%s\"", str);
	read_str(s, f, str);
}

/* A write and its echo come back byte for byte. */
static void round_trip(struct sim *s, struct sim_file *f, const char *str)
{
	write_str(s, f, str);
	sim_run(s);
	read_str(s, f, str);
}

/* ---- channel bring-up ---- */

static void check_bring_up(struct sim *s)
{
	struct ovmc_drv_slot_info si;
	struct ovmc_query q;
	const uint8_t *add;

	sim_ready(s);
	ovmc_drv_query(s->drv, &q);
	CHECK_EQ(q.have_vmc, 1);
	CHECK_EQ(q.state, OVMC_DRV_READY);
	CHECK_EQ(sim_count(&s->to_hv, OVMC_CRQ_CMD, OVMC_MSG_CAP), 1);
	CHECK_EQ(sim_count(&s->to_part, OVMC_CRQ_CMD, OVMC_MSG_CAP_RESP), 1);
	/* the index got its seed buffer: owner "partition", session 0 */
	CHECK(sim_count(&s->to_part, OVMC_CRQ_CMD, OVMC_MSG_ADD_BUF) >= 1);
	add = sim_last(&s->to_part, OVMC_CRQ_CMD, OVMC_MSG_ADD_BUF);
	CHECK_EQ(add[3], OVMC_OWNER_PARTITION);
	CHECK_EQ(add[4], 0);
	CHECK_EQ(add[5], 0);
	slot_info(s, 0, &si);
	CHECK_EQ(si.state, OVMC_SLOT_FREE);
	CHECK(si.buffers >= 1);
	CHECK(si.free >= 1);
	CHECK_EQ(s->lost_wakeups, 0);
	CHECK_EQ(drv_stats(s).protocol_errors, 0);
	CHECK_EQ(hv_stats(s).protocol_errors, 0);
}

TEST(init_driver_first)
{
	struct sim_opts o;
	struct sim *s;

	sim_opts_default(&o);
	o.hv_first = false;
	s = sim_new(&o);
	check_bring_up(s);
	/* The driver's INIT found no partner; the hypervisor's INIT was
	 * answered with INIT COMPLETE. */
	CHECK_EQ(sim_count(&s->to_part, OVMC_CRQ_INIT, OVMC_INIT_REQUEST), 1);
	CHECK_EQ(sim_count(&s->to_hv, OVMC_CRQ_INIT, OVMC_INIT_COMPLETE), 1);
	CHECK_EQ(sim_count(&s->to_hv, OVMC_CRQ_INIT, OVMC_INIT_REQUEST), 0);
	CHECK(s->state_changes >= 1);
	CHECK_EQ(s->states[s->state_changes - 1], OVMC_DRV_READY);
}

TEST(init_hypervisor_first)
{
	struct sim_opts o;
	struct sim *s;

	sim_opts_default(&o);
	o.hv_first = true;
	s = sim_new(&o);
	check_bring_up(s);
	/* The hypervisor's INIT found no partner; the driver's INIT was
	 * answered with INIT COMPLETE. */
	CHECK_EQ(sim_count(&s->to_hv, OVMC_CRQ_INIT, OVMC_INIT_REQUEST), 1);
	CHECK_EQ(sim_count(&s->to_part, OVMC_CRQ_INIT, OVMC_INIT_COMPLETE), 1);
	CHECK_EQ(sim_count(&s->to_part, OVMC_CRQ_INIT, OVMC_INIT_REQUEST), 0);
}

TEST(init_hypervisor_attached_late_while_driver_retries)
{
	struct sim_opts o;
	struct sim *s;

	sim_opts_default(&o);
	o.no_hv = true;
	s = sim_new(&o);
	sim_advance(s, 5 * SIM_S);
	CHECK_EQ(ovmc_drv_state(s->drv), OVMC_DRV_CRQINIT);
	sim_attach_hv(s);
	check_bring_up(s);
}

TEST(no_start_leaves_both_sides_idle_until_started)
{
	struct sim_opts o;
	struct sim *s;

	sim_opts_default(&o);
	o.no_start = true;
	s = sim_new(&o);
	sim_advance(s, 3 * SIM_S);
	CHECK_EQ(ovmc_drv_state(s->drv), OVMC_DRV_INITIAL);
	CHECK(s->hv == NULL);
	CHECK(!ovmc_vmc_partition_registered(s->vmc));
	CHECK_EQ(s->log.n, 0);
	sim_start(s);
	check_bring_up(s);
}

/* ---- capabilities ---- */

TEST(caps_negotiate_minimum)
{
	struct sim_opts o;
	struct sim *s;
	struct ovmc_drv_negotiated dn;
	struct ovmc_hv_negotiated hn;
	const uint8_t *cap;

	sim_opts_default(&o);
	o.drv.max_hmcs = 2;
	o.drv.pool_size = 32;
	o.drv.max_mtu = 8192;
	o.hv.max_hmcs = 3;
	o.hv.pool_size = 16;
	o.hv.mtu = 4096;
	o.hv.crq_size = 128;
	s = sim_new(&o);
	sim_ready(s);
	ovmc_drv_negotiated(s->drv, &dn);
	ovmc_hv_negotiated(s->hv, &hn);
	CHECK_EQ(dn.max_hmcs, 2);
	CHECK_EQ(dn.pool_size, 16);
	CHECK_EQ(dn.mtu, 4096);
	CHECK_EQ(hn.max_hmcs, 2);
	CHECK_EQ(hn.pool_size, 16);
	CHECK_EQ(hn.mtu, 4096);
	/* each side learns the other's queue size and version */
	CHECK_EQ(dn.hv_crq_size, 128);
	CHECK_EQ(dn.hv_version, OVMC_PROTOCOL_VERSION);
	CHECK_EQ(hn.partner_crq_size, 256); /* one 4 KiB page */
	CHECK_EQ(hn.partner_crq_size, ovmc_vmc_partition_queue_size(s->vmc));
	CHECK_EQ(hn.partner_version, OVMC_PROTOCOL_VERSION);
	/* what the driver put on the wire: its own values */
	cap = sim_last(&s->to_hv, OVMC_CRQ_CMD, OVMC_MSG_CAP);
	CHECK(cap != NULL);
	CHECK_EQ(cap[5], 2);
	CHECK_EQ(ovmc_get_be16(cap + 6), 32);
	CHECK_EQ(ovmc_get_be32(cap + 8), 8192);
	CHECK_EQ(ovmc_get_be16(cap + 12), 256);
	CHECK_EQ(ovmc_get_be16(cap + 14), OVMC_PROTOCOL_VERSION);
	/* both indices got a seed buffer, none beyond */
	struct ovmc_drv_slot_info si;

	slot_info(s, 0, &si);
	CHECK(si.buffers >= 1);
	slot_info(s, 1, &si);
	CHECK(si.buffers >= 1);
	CHECK(ovmc_drv_slot_info(s->drv, 2, &si) != 0);
}

TEST(caps_negotiate_minimum_driver_smaller)
{
	struct sim_opts o;
	struct sim *s;
	struct ovmc_drv_negotiated dn;
	struct ovmc_hv_negotiated hn;

	sim_opts_default(&o);
	o.drv.max_hmcs = 1;
	o.drv.pool_size = 8;
	o.drv.max_mtu = 1024;
	o.hv.max_hmcs = 4;
	o.hv.pool_size = 64;
	o.hv.mtu = 16384;
	s = sim_new(&o);
	sim_ready(s);
	ovmc_drv_negotiated(s->drv, &dn);
	ovmc_hv_negotiated(s->hv, &hn);
	CHECK_EQ(dn.max_hmcs, 1);
	CHECK_EQ(dn.pool_size, 8);
	CHECK_EQ(dn.mtu, 1024);
	CHECK_EQ(hn.max_hmcs, 1);
	CHECK_EQ(hn.pool_size, 8);
	CHECK_EQ(hn.mtu, 1024);
	/* the negotiated MTU bounds writes */
	uint8_t id[OVMC_HMC_ID_LEN];
	uint8_t *buf = xmalloc(2048);
	struct sim_file *f;

	sim_make_id(id, 3);
	f = sim_open_session(s, id);
	memset(buf, 0x42, 2048);
	CHECK_EQ(sim_write(s, f, buf, 1024), 1024);
	CHECK_EQ(sim_write(s, f, buf, 1025), -EIO);
}

TEST(caps_incompatible_major_version_fails)
{
	struct sim_opts o;
	struct sim *s;
	struct ovmc_query q;
	struct sim_file *f;
	uint8_t id[OVMC_HMC_ID_LEN];

	sim_opts_default(&o);
	o.hv.version = 0x0201;
	s = sim_new(&o);
	sim_run(s);
	CHECK_EQ(ovmc_drv_state(s->drv), OVMC_DRV_FAILED);
	ovmc_drv_query(s->drv, &q);
	CHECK_EQ(q.state, 4);
	CHECK_EQ(q.have_vmc, 1);
	sim_make_id(id, 1);
	f = sim_open(s);
	CHECK_EQ(sim_sethmcid(s, f, id), -EIO);
	CHECK_EQ(sim_write(s, f, "x", 1), -EIO);
	/* time passing changes nothing: failed is permanent until a reset */
	sim_advance(s, 10 * SIM_S);
	CHECK_EQ(ovmc_drv_state(s->drv), OVMC_DRV_FAILED);
	CHECK_EQ(sim_sethmcid(s, f, id), -EIO);
	CHECK_EQ(s->be.opens, 0);
}

TEST(caps_incompatible_driver_version_fails_both_sides)
{
	struct sim_opts o;
	struct sim *s;
	const uint8_t *resp;
	struct sim_file *f;
	uint8_t id[OVMC_HMC_ID_LEN];

	sim_opts_default(&o);
	o.drv.version = 0x0201;
	s = sim_new(&o);
	sim_run(s);
	CHECK_EQ(ovmc_hv_state(s->hv), OVMC_HV_FAILED);
	resp = sim_last(&s->to_part, OVMC_CRQ_CMD, OVMC_MSG_CAP_RESP);
	CHECK(resp != NULL);
	CHECK_EQ(resp[2], OVMC_CAP_BAD_VERSION);
	CHECK_EQ(ovmc_drv_state(s->drv), OVMC_DRV_FAILED);
	/* no buffers were offered to an incompatible partner */
	CHECK_EQ(sim_count(&s->to_part, OVMC_CRQ_CMD, OVMC_MSG_ADD_BUF), 0);
	sim_make_id(id, 1);
	f = sim_open(s);
	CHECK_EQ(sim_sethmcid(s, f, id), -EIO);
	sim_advance(s, 10 * SIM_S);
	CHECK_EQ(ovmc_hv_state(s->hv), OVMC_HV_FAILED);
	CHECK_EQ(ovmc_drv_state(s->drv), OVMC_DRV_FAILED);
}

TEST(caps_minor_version_difference_is_compatible)
{
	struct sim_opts o;
	struct sim *s;
	struct ovmc_drv_negotiated dn;

	sim_opts_default(&o);
	o.hv.version = 0x0107;
	s = sim_new(&o);
	sim_ready(s);
	ovmc_drv_negotiated(s->drv, &dn);
	CHECK_EQ(dn.hv_version, 0x0107);
}

/* ---- sessions ---- */

TEST(open_delivers_exact_hmc_id)
{
	struct sim *s = sim_new(NULL);
	struct ovmc_hv_session *hs;
	struct ovmc_drv_slot_info si;
	uint8_t id[OVMC_HMC_ID_LEN];

	for (unsigned i = 0; i < OVMC_HMC_ID_LEN; i++)
		id[i] = (uint8_t)(0xE0 + i); /* all distinct, no NUL anywhere */
	sim_ready(s);
	sim_open_session(s, id);
	CHECK_EQ(s->be.opens, 1);
	CHECK_EQ(s->be.open_log.v[0].len, OVMC_HMC_ID_LEN);
	CHECK_MEM(s->be.open_log.v[0].data, id, OVMC_HMC_ID_LEN);
	CHECK_EQ(s->be.open_log.v[0].session, 1);
	CHECK_EQ(s->be.open_log.v[0].index, 0);
	hs = sim_session(s, 0);
	CHECK_MEM(ovmc_hv_session_hmc_id(hs), id, OVMC_HMC_ID_LEN);
	CHECK_EQ(ovmc_hv_session_number(hs), 1);
	CHECK_EQ(ovmc_hv_session_index(hs), 0);
	CHECK(ovmc_hv_session_hv(hs) == s->hv);
	slot_info(s, 0, &si);
	CHECK_EQ(si.state, OVMC_SLOT_READY);
	CHECK_EQ(si.session, 1);
	CHECK(si.has_file);
	CHECK_MEM(si.hmc_id, id, OVMC_HMC_ID_LEN);
	/* the OPEN on the wire names session 1, index 0 */
	const uint8_t *open = sim_last(&s->to_hv, OVMC_CRQ_CMD, OVMC_MSG_OPEN);

	CHECK(open != NULL);
	CHECK_EQ(open[4], 1);
	CHECK_EQ(open[5], 0);
	CHECK_EQ(hv_stats(s).sessions_opened, 1);
}

static bool read_next(struct sim *s, struct sim_file *f, uint8_t *rbuf, uint8_t *want, uint32_t mtu,
		      uint64_t seed, unsigned *nread)
{
	ssize_t n = sim_read(s, f, rbuf, mtu);
	size_t len;

	if (n == -EAGAIN)
		return false;
	len = gen_msg(seed, *nread, want, mtu);
	if (n != (ssize_t)len)
		FAIL("read %u: got %zd, expected %zu bytes", *nread, n, len);
	if (memcmp(rbuf, want, len) != 0)
		FAIL("read %u: content differs", *nread);
	(*nread)++;
	return true;
}

TEST(thousand_messages_each_way_1_to_mtu)
{
	const unsigned total = 1000;
	const uint64_t seed = 77;
	struct sim *s = sim_new(NULL);
	struct sim_file *f;
	uint8_t id[OVMC_HMC_ID_LEN];
	uint8_t *wbuf, *rbuf, *want;
	unsigned nread = 0, busy = 0;
	uint32_t mtu;
	bool saw_mtu = false, saw_one = false;

	sim_ready(s);
	sim_make_id(id, 1);
	f = sim_open_session(s, id);
	mtu = sim_mtu(s);
	CHECK_EQ(mtu, 4096);
	wbuf = xmalloc(mtu);
	rbuf = xmalloc(mtu);
	want = xmalloc(mtu);
	for (unsigned i = 0; i < total; i++) {
		size_t len = gen_msg(seed, i, wbuf, mtu);
		ssize_t r;

		saw_mtu |= len == mtu;
		saw_one |= len == 1;
		while ((r = sim_write(s, f, wbuf, len)) == -EBUSY) {
			busy++;
			sim_run(s);
			if (!read_next(s, f, rbuf, want, mtu, seed, &nread))
				FAIL("write %u: -EBUSY with nothing to read", i);
		}
		CHECK_EQ(r, (ssize_t)len);
		/* let a few pile up before reading, then catch up partly */
		if (i % 7 == 6) {
			sim_run(s);
			for (unsigned k = 0; k < 5; k++)
				read_next(s, f, rbuf, want, mtu, seed, &nread);
		}
	}
	while (nread < total) {
		sim_run(s);
		if (!read_next(s, f, rbuf, want, mtu, seed, &nread))
			FAIL("only %u of %u echoes arrived", nread, total);
	}
	CHECK_EQ(sim_read(s, f, rbuf, mtu), -EAGAIN);
	CHECK(saw_mtu && saw_one);
	/* the backend got exactly what was written, in order */
	CHECK_EQ(s->be.msgs.n, total);
	for (unsigned i = 0; i < total; i++) {
		size_t len = gen_msg(seed, i, want, mtu);

		CHECK_EQ(s->be.msgs.v[i].len, len);
		CHECK_MEM(s->be.msgs.v[i].data, want, len);
		CHECK_EQ(s->be.msgs.v[i].session, 1);
	}
	CHECK_EQ(s->be.echo_errors, 0);
	CHECK_EQ(drv_stats(s).messages_out, total);
	CHECK_EQ(drv_stats(s).messages_in, total);
	CHECK_EQ(hv_stats(s).messages_in, total);
	CHECK_EQ(hv_stats(s).messages_out, total);
	CHECK_EQ(drv_stats(s).protocol_errors, 0);
	CHECK_EQ(hv_stats(s).protocol_errors, 0);
	CHECK_EQ(drv_stats(s).truncated_reads, 0);
	CHECK_EQ(s->lost_wakeups, 0);
}

TEST(write_mtu_plus_one_refused)
{
	struct sim *s = sim_new(NULL);
	struct sim_file *f;
	struct ovmc_drv_slot_info before, after;
	uint8_t id[OVMC_HMC_ID_LEN];
	uint8_t *buf;
	uint32_t mtu;

	sim_ready(s);
	sim_make_id(id, 1);
	f = sim_open_session(s, id);
	mtu = sim_mtu(s);
	buf = xmalloc(mtu + 1);
	memset(buf, 0xAB, mtu + 1);
	slot_info(s, 0, &before);
	CHECK_EQ(sim_write(s, f, buf, mtu + 1), -EIO);
	CHECK_EQ(sim_write(s, f, buf, (size_t)mtu * 4), -EIO);
	sim_run(s);
	CHECK_EQ(s->be.msgs.n, 0);
	CHECK_EQ(hv_stats(s).messages_in, 0);
	slot_info(s, 0, &after);
	CHECK_EQ(after.free, before.free);
	CHECK_EQ(sim_read(s, f, buf, mtu + 1), -EINVAL);
	/* a read of exactly the MTU is fine (nothing queued) */
	CHECK_EQ(sim_read(s, f, buf, mtu), -EAGAIN);
	/* the session still works */
	round_trip(s, f, "after refusal");
}

TEST(read_shorter_than_message_truncates_and_counts)
{
	struct sim *s = sim_new(NULL);
	struct sim_file *f;
	uint8_t id[OVMC_HMC_ID_LEN], buf[16];

	sim_ready(s);
	sim_make_id(id, 1);
	f = sim_open_session(s, id);
	write_str(s, f, "0123456789abcdef-tail");
	write_str(s, f, "next");
	sim_run(s);
	CHECK_EQ(sim_read(s, f, buf, 10), 10);
	CHECK_MEM(buf, "0123456789", 10);
	/* the rest of that message is gone; the next read gets the next one */
	read_str(s, f, "next");
	CHECK_EQ(drv_stats(s).truncated_reads, 1);
	CHECK_EQ(drv_stats(s).truncated_bytes, 11);
	CHECK_EQ(sim_read(s, f, buf, 0), 0);
}

/* What ovmc_drv_read_to() handed over, and how often. */
struct grabbed {
	unsigned calls;
	size_t len;
	uint8_t data[256];
	struct sim *s;
	unsigned free_during; /* the slot's free buffers while it was handed over */
};

static void grab(void *user, const void *data, size_t len)
{
	struct grabbed *g = user;
	struct ovmc_drv_slot_info si;

	g->calls++;
	g->len = len;
	memcpy(g->data, data, len < sizeof(g->data) ? len : sizeof(g->data));
	slot_info(g->s, 0, &si);
	g->free_during = si.free;
}

TEST(read_to_hands_each_message_over_once_then_takes_the_buffer_back)
{
	struct sim *s = sim_new(NULL);
	struct sim_file *f;
	struct grabbed g = {.s = s};
	struct ovmc_drv_slot_info before, after;
	uint8_t id[OVMC_HMC_ID_LEN];
	uint32_t mtu;

	sim_ready(s);
	mtu = sim_mtu(s);
	sim_make_id(id, 1);
	f = sim_open_session(s, id);
	write_str(s, f, "first");
	write_str(s, f, "second-message");
	sim_run(s);
	slot_info(s, 0, &before);
	CHECK_EQ(before.queued, 2);
	CHECK_EQ(ovmc_drv_read_to(s->drv, f->f, 256, grab, &g, s->now), 5);
	CHECK_EQ(g.calls, 1);
	CHECK_EQ(g.len, 5);
	CHECK_MEM(g.data, "first", 5);
	/* Handed over from its buffer, which was still the message's then. */
	CHECK_EQ(g.free_during, before.free);
	slot_info(s, 0, &after);
	CHECK_EQ(after.queued, 1);
	CHECK_EQ(after.free, before.free + 1);
	/* A shorter read truncates and counts as read() does. */
	CHECK_EQ(ovmc_drv_read_to(s->drv, f->f, 6, grab, &g, s->now), 6);
	CHECK_EQ(g.calls, 2);
	CHECK_EQ(g.len, 6);
	CHECK_MEM(g.data, "second", 6);
	CHECK_EQ(drv_stats(s).truncated_reads, 1);
	CHECK_EQ(drv_stats(s).truncated_bytes, 8);
	/* Nothing read: fn is not called. */
	CHECK_EQ(ovmc_drv_read_to(s->drv, f->f, 256, grab, &g, s->now), -EAGAIN);
	CHECK_EQ(ovmc_drv_read_to(s->drv, f->f, 0, grab, &g, s->now), 0);
	CHECK_EQ(ovmc_drv_read_to(s->drv, f->f, mtu + 1, grab, &g, s->now), -EINVAL);
	CHECK_EQ(ovmc_drv_read_to(s->drv, f->f, 256, NULL, NULL, s->now), -EINVAL);
	CHECK_EQ(g.calls, 2);
	/* The session goes on. */
	round_trip(s, f, "after read_to");
}

TEST(read_to_after_a_reset_hands_over_what_had_arrived)
{
	struct sim *s = sim_new(NULL);
	struct sim_file *f;
	struct grabbed g = {.s = s};
	uint8_t id[OVMC_HMC_ID_LEN];

	sim_ready(s);
	sim_make_id(id, 1);
	f = sim_open_session(s, id);
	write_str(s, f, "kept");
	sim_run(s);
	ovmc_hv_restart(s->hv, OVMC_EVENT_PARTNER_FAILED, s->now);
	sim_run(s);
	CHECK_EQ(ovmc_drv_read_to(s->drv, f->f, 256, grab, &g, s->now), 4);
	CHECK_EQ(g.calls, 1);
	CHECK_MEM(g.data, "kept", 4);
	CHECK_EQ(ovmc_drv_read_to(s->drv, f->f, 256, grab, &g, s->now), -EBADFD);
	CHECK_EQ(g.calls, 1);
	sim_close(s, f);
}

static void send_async(struct sim *s, unsigned index, unsigned first, unsigned n)
{
	for (unsigned i = first; i < first + n; i++) {
		char msg[32];

		snprintf(msg, sizeof(msg), "async-%u", i);
		CHECK_EQ(sim_backend_send(s, index, msg, strlen(msg)), 0);
	}
}

static void read_async(struct sim *s, struct sim_file *f, unsigned first, unsigned n)
{
	for (unsigned i = first; i < first + n; i++) {
		char msg[32];

		snprintf(msg, sizeof(msg), "async-%u", i);
		read_str_wait(s, f, msg);
	}
}

/* The ABI cannot hand over what a closing file never read: counted and logged. */
TEST(close_with_unread_messages_counts_and_logs_them)
{
	struct sim_opts o;
	struct sim *s;
	struct sim_file *f;
	uint8_t id[OVMC_HMC_ID_LEN];

	sim_opts_default(&o);
	o.echo = false;
	s = sim_new(&o);
	sim_ready(s);
	sim_make_id(id, 1);
	f = sim_open_session(s, id);
	send_async(s, 0, 0, 3);
	sim_run(s);
	read_async(s, f, 0, 1);
	CHECK_EQ(drv_stats(s).discarded_msgs, 0);
	sim_close(s, f);
	sim_run(s);
	CHECK_EQ(drv_stats(s).discarded_msgs, 2);
	CHECK(strstr(s->drv_said, "file closed with 2 unread messages: discarded"));
	CHECK_EQ(drv_stats(s).protocol_errors, 0);
}

TEST(async_messages_while_idle)
{
	struct sim_opts o;
	struct sim *s;
	struct sim_file *f;
	struct ovmc_hv_pool_info pi;
	struct ovmc_drv_slot_info si;
	uint8_t id[OVMC_HMC_ID_LEN];
	unsigned share, idle, n, next = 0;

	sim_opts_default(&o);
	o.echo = false;
	s = sim_new(&o);
	sim_ready(s);
	sim_make_id(id, 1);
	f = sim_open_session(s, id);
	CHECK(!(sim_poll(s, f) & POLLIN));

	/* a few while the application does nothing */
	send_async(s, 0, next, 5);
	sim_run(s);
	CHECK(sim_poll(s, f) & POLLIN);
	CHECK(f->events > 0);
	CHECK(f->last_events & POLLIN);
	slot_info(s, 0, &si);
	CHECK_EQ(si.queued, 5);
	read_async(s, f, next, 5);
	next += 5;
	CHECK_EQ(sim_read(s, f, (uint8_t[8]){0}, 8), -EAGAIN);
	CHECK(!(sim_poll(s, f) & POLLIN));

	/* more than the hypervisor's own buffers: it must reclaim idle ones */
	sim_run(s);
	pool_info(s, 0, &pi);
	slot_info(s, 0, &si);
	share = pi.hv_free;
	idle = si.free;
	CHECK(share >= 1);
	CHECK(idle >= 2);
	n = share + (idle - 1 < 4 ? idle - 1 : 4);
	send_async(s, 0, next, n);
	sim_advance(s, 5 * SIM_S); /* reclaiming may wait for a timer */
	slot_info(s, 0, &si);
	CHECK_EQ(si.queued, n);
	CHECK(hv_stats(s).buffers_reclaimed >= 1);
	CHECK(sim_poll(s, f) & POLLIN);
	read_async(s, f, next, n);
	next += n;

	/* far more than the whole pool: delivered as the application reads */
	n = 3u * o.hv.pool_size;
	send_async(s, 0, next, n);
	read_async(s, f, next, n);
	next += n;
	CHECK_EQ(sim_read(s, f, (uint8_t[8]){0}, 8), -EAGAIN);
	pool_info(s, 0, &pi);
	CHECK_EQ(pi.backlog, 0);
	CHECK_EQ(hv_stats(s).messages_out, next);
	CHECK_EQ(drv_stats(s).discarded_msgs, 0);
	CHECK_EQ(drv_stats(s).protocol_errors, 0);
	CHECK_EQ(hv_stats(s).protocol_errors, 0);
	/* the partition can still write after all that reclaiming */
	write_str(s, f, "still writable");
	sim_run(s);
	CHECK_EQ(s->be.msgs.n, 1);
	CHECK_MEM(s->be.msgs.v[0].data, "still writable", 14);
}

TEST(hv_send_refuses_bad_lengths_and_closed_sessions)
{
	struct sim *s = sim_new(NULL);
	struct sim_file *f;
	struct ovmc_hv_session *hs;
	uint8_t id[OVMC_HMC_ID_LEN];
	uint8_t *big;
	uint32_t mtu;

	sim_ready(s);
	sim_make_id(id, 1);
	f = sim_open_session(s, id);
	hs = sim_session(s, 0);
	mtu = sim_mtu(s);
	big = xmalloc(mtu + 1);
	memset(big, 1, mtu + 1);
	CHECK_EQ(ovmc_hv_send(hs, big, 0), -EMSGSIZE);
	CHECK_EQ(ovmc_hv_send(hs, big, mtu + 1), -EMSGSIZE);
	CHECK_EQ(ovmc_hv_send(hs, big, mtu), 0);
	sim_run(s);
	CHECK_EQ(sim_read(s, f, big, mtu), (ssize_t)mtu);
	CHECK_EQ(sim_read(s, f, big, mtu), -EAGAIN);
}

TEST(two_sessions_isolated)
{
	struct sim_opts o;
	struct sim *s;
	struct sim_file *a, *b;
	uint8_t ida[OVMC_HMC_ID_LEN], idb[OVMC_HMC_ID_LEN];
	unsigned xa, xb;
	char msg[32];

	sim_opts_default(&o);
	o.drv.max_hmcs = 2;
	o.hv.max_hmcs = 2;
	s = sim_new(&o);
	sim_ready(s);
	sim_make_id(ida, 10);
	sim_make_id(idb, 11);
	a = sim_open_session(s, ida);
	b = sim_open_session(s, idb);
	xa = index_of_id(s, ida);
	xb = index_of_id(s, idb);
	CHECK(xa != xb);
	CHECK(xa < 2 && xb < 2);
	CHECK_MEM(ovmc_hv_session_hmc_id(sim_session(s, xa)), ida, OVMC_HMC_ID_LEN);
	CHECK_MEM(ovmc_hv_session_hmc_id(sim_session(s, xb)), idb, OVMC_HMC_ID_LEN);

	for (unsigned i = 0; i < 10; i++) {
		snprintf(msg, sizeof(msg), "A-%u", i);
		write_str(s, a, msg);
		snprintf(msg, sizeof(msg), "B-%u", i);
		write_str(s, b, msg);
	}
	sim_run(s);
	for (unsigned i = 0; i < 10; i++) {
		snprintf(msg, sizeof(msg), "A-%u", i);
		read_str(s, a, msg);
	}
	CHECK_EQ(sim_read(s, a, msg, sizeof(msg)), -EAGAIN);
	for (unsigned i = 0; i < 10; i++) {
		snprintf(msg, sizeof(msg), "B-%u", i);
		read_str(s, b, msg);
	}
	CHECK_EQ(sim_read(s, b, msg, sizeof(msg)), -EAGAIN);
	/* the backend saw each message on its own session */
	CHECK_EQ(s->be.msgs.n, 20);
	for (size_t i = 0; i < s->be.msgs.n; i++) {
		const struct sim_msg *m = &s->be.msgs.v[i];

		CHECK_EQ(m->index, m->data[0] == 'A' ? xa : xb);
	}

	/* asynchronous traffic to B only */
	sim_clear_msgs(s);
	CHECK_EQ(sim_backend_send(s, xb, "only-B", 6), 0);
	sim_run(s);
	CHECK(!(sim_poll(s, a) & POLLIN));
	CHECK(sim_poll(s, b) & POLLIN);
	CHECK_EQ(sim_read(s, a, msg, sizeof(msg)), -EAGAIN);
	read_str(s, b, "only-B");

	/* closing A leaves B working */
	sim_close(s, a);
	sim_run(s);
	CHECK_EQ(s->be.closes, 1);
	CHECK_EQ(s->be.close_log.v[0].index, xa);
	CHECK(ovmc_hv_session_at(s->hv, xa) == NULL);
	CHECK(ovmc_hv_session_at(s->hv, xb) != NULL);
	round_trip(s, b, "B after A closed");
	CHECK_EQ(hv_stats(s).sessions_closed, 1);
}

TEST(second_session_with_one_hmc_gets_ebusy)
{
	struct sim *s = sim_new(NULL);
	struct sim_file *a, *b;
	uint8_t ida[OVMC_HMC_ID_LEN], idb[OVMC_HMC_ID_LEN];

	sim_ready(s);
	sim_make_id(ida, 1);
	sim_make_id(idb, 2);
	a = sim_open_session(s, ida);
	b = sim_open(s);
	CHECK_EQ(sim_sethmcid(s, b, idb), -EBUSY);
	sim_run(s);
	CHECK_EQ(s->be.opens, 1);
	CHECK_EQ(sim_write(s, b, "x", 1), -EIO);
	round_trip(s, a, "first still fine");
	/* once the first is closed, the refused file may try again */
	sim_close(s, a);
	sim_run(s);
	CHECK_EQ(sim_sethmcid(s, b, idb), 0);
	sim_run(s);
	CHECK_EQ(s->be.opens, 2);
	CHECK_MEM(s->be.open_log.v[1].data, idb, OVMC_HMC_ID_LEN);
	round_trip(s, b, "second now open");
}

TEST(close_and_reopen_new_session_number)
{
	struct sim *s = sim_new(NULL);
	struct sim_file *f;
	struct ovmc_drv_slot_info si;
	uint8_t id1[OVMC_HMC_ID_LEN], id2[OVMC_HMC_ID_LEN];

	sim_ready(s);
	sim_make_id(id1, 1);
	sim_make_id(id2, 2);
	f = sim_open_session(s, id1);
	round_trip(s, f, "one");
	sim_close(s, f);
	sim_run(s);
	CHECK_EQ(s->be.closes, 1);
	CHECK_EQ(s->be.close_log.v[0].session, 1);
	CHECK_EQ(sim_count(&s->to_hv, OVMC_CRQ_CMD, OVMC_MSG_CLOSE), 1);
	CHECK_EQ(sim_count(&s->to_part, OVMC_CRQ_CMD, OVMC_MSG_CLOSE_RESP), 1);
	slot_info(s, 0, &si);
	CHECK_EQ(si.state, OVMC_SLOT_FREE);
	CHECK(!si.has_file);
	CHECK(si.buffers >= 1); /* re-seeded after the close */
	f = sim_open_session(s, id2);
	CHECK_EQ(s->be.opens, 2);
	CHECK_EQ(s->be.open_log.v[1].session, 2);
	CHECK_MEM(s->be.open_log.v[1].data, id2, OVMC_HMC_ID_LEN);
	CHECK_EQ(ovmc_hv_session_number(sim_session(s, 0)), 2);
	round_trip(s, f, "two");
	/* the first session's message went to the backend as session 1 */
	CHECK_EQ(s->be.msgs.v[0].session, 1);
	CHECK_EQ(s->be.msgs.v[1].session, 2);
}

TEST(session_numbers_wrap_254_to_1)
{
	struct sim *s = sim_new(NULL);

	sim_ready(s);
	for (unsigned k = 1; k <= 260; k++) {
		uint8_t id[OVMC_HMC_ID_LEN];
		struct sim_file *f;
		unsigned want = (k - 1) % 254 + 1;

		sim_make_id(id, k);
		f = sim_open_session(s, id);
		CHECK_EQ(s->be.opens, k);
		CHECK_EQ(s->be.open_log.v[k - 1].session, want);
		CHECK_MEM(s->be.open_log.v[k - 1].data, id, OVMC_HMC_ID_LEN);
		CHECK_EQ(ovmc_hv_session_number(sim_session(s, 0)), want);
		if (k % 50 == 0 || k >= 253)
			round_trip(s, f, "ping");
		sim_close(s, f);
		sim_run(s);
		CHECK_EQ(s->be.closes, k);
	}
	CHECK_EQ(drv_stats(s).protocol_errors, 0);
	CHECK_EQ(hv_stats(s).protocol_errors, 0);
}

/* ---- the errno table of SETHMCID, read and write ---- */

TEST(sethmcid_before_ready_returns_eagain)
{
	struct sim_opts o;
	struct sim *s;
	struct sim_file *f;
	uint8_t id[OVMC_HMC_ID_LEN];

	sim_opts_default(&o);
	o.no_hv = true;
	s = sim_new(&o);
	sim_run(s);
	CHECK(ovmc_drv_state(s->drv) != OVMC_DRV_READY);
	sim_make_id(id, 1);
	f = sim_open(s);
	CHECK_EQ(sim_sethmcid(s, f, id), -EAGAIN);
	/* the refusal reserved nothing: the same file opens once ready */
	sim_attach_hv(s);
	sim_ready(s);
	CHECK_EQ(sim_sethmcid(s, f, id), 0);
	sim_run(s);
	CHECK_EQ(s->be.opens, 1);
	round_trip(s, f, "late but fine");
}

TEST(sethmcid_twice_on_one_file_returns_eio)
{
	struct sim *s = sim_new(NULL);
	struct sim_file *f, *g;
	uint8_t id[OVMC_HMC_ID_LEN];

	sim_ready(s);
	sim_make_id(id, 1);
	f = sim_open_session(s, id);
	CHECK_EQ(sim_sethmcid(s, f, id), -EIO);
	sim_run(s);
	CHECK_EQ(s->be.opens, 1);
	round_trip(s, f, "unharmed");
	/* also while the first open is still in flight */
	sim_close(s, f);
	sim_run(s);
	g = sim_open(s);
	CHECK_EQ(sim_sethmcid(s, g, id), 0);
	CHECK_EQ(sim_sethmcid(s, g, id), -EIO);
	sim_run(s);
	CHECK_EQ(s->be.opens, 2);
	round_trip(s, g, "still one session");
}

TEST(write_before_sethmcid_returns_eio)
{
	struct sim *s = sim_new(NULL);
	struct sim_file *f;

	sim_ready(s);
	f = sim_open(s);
	CHECK_EQ(sim_write(s, f, "hello", 5), -EIO);
	sim_run(s);
	CHECK_EQ(s->be.msgs.n, 0);
}

TEST(read_before_sethmcid_returns_eio)
{
	struct sim *s = sim_new(NULL);
	struct sim_file *f;
	uint8_t buf[64];

	sim_ready(s);
	f = sim_open(s);
	CHECK_EQ(sim_read(s, f, buf, sizeof(buf)), -EIO);
	CHECK(!(sim_poll(s, f) & POLLIN));
}

TEST(write_while_opening_returns_ebusy)
{
	struct sim *s = sim_new(NULL);
	struct sim_file *f;
	uint8_t id[OVMC_HMC_ID_LEN];
	struct ovmc_drv_slot_info si;

	sim_ready(s);
	sim_make_id(id, 1);
	f = sim_open(s);
	CHECK_EQ(sim_sethmcid(s, f, id), 0);
	slot_info(s, 0, &si);
	CHECK_EQ(si.state, OVMC_SLOT_OPENING);
	CHECK_EQ(sim_write(s, f, "early", 5), -EBUSY);
	CHECK(!(sim_poll(s, f) & POLLOUT));
	sim_run(s);
	CHECK(sim_poll(s, f) & POLLOUT);
	round_trip(s, f, "now");
	CHECK_EQ(s->be.msgs.n, 1);
}

TEST(write_zero_bytes_returns_zero_and_consumes_nothing)
{
	struct sim *s = sim_new(NULL);
	struct sim_file *f;
	struct ovmc_drv_slot_info before, after;
	uint8_t id[OVMC_HMC_ID_LEN], buf[4];

	sim_ready(s);
	sim_make_id(id, 1);
	f = sim_open_session(s, id);
	slot_info(s, 0, &before);
	for (unsigned i = 0; i < before.free + 3; i++)
		CHECK_EQ(sim_write(s, f, "", 0), 0);
	slot_info(s, 0, &after);
	CHECK_EQ(after.free, before.free);
	CHECK_EQ(after.buffers, before.buffers);
	sim_run(s);
	CHECK_EQ(s->be.msgs.n, 0);
	CHECK_EQ(sim_read(s, f, buf, 0), 0);
	CHECK_EQ(drv_stats(s).messages_out, 0);
	round_trip(s, f, "real");
}

TEST(read_empty_queue_returns_eagain)
{
	struct sim *s = sim_new(NULL);
	struct sim_file *f;
	uint8_t id[OVMC_HMC_ID_LEN], buf[64];

	sim_ready(s);
	sim_make_id(id, 1);
	f = sim_open_session(s, id);
	CHECK_EQ(sim_read(s, f, buf, sizeof(buf)), -EAGAIN);
	CHECK(!(sim_poll(s, f) & (POLLIN | POLLHUP)));
}

/* ---- buffers ---- */

TEST(remove_buffer_gives_one_back)
{
	struct sim_opts o;
	struct sim *s;
	struct sim_file *f;
	struct ovmc_hv_session *hs;
	struct ovmc_drv_slot_info si0, si;
	struct ovmc_hv_pool_info pi0, pi;
	uint8_t id[OVMC_HMC_ID_LEN];
	unsigned removed = 0;
	int rc;

	sim_opts_default(&o);
	o.echo = false;
	s = sim_new(&o);
	sim_ready(s);
	sim_make_id(id, 1);
	f = sim_open_session(s, id);
	hs = sim_session(s, 0);
	slot_info(s, 0, &si0);
	pool_info(s, 0, &pi0);
	/* both sides agree on what the partition holds */
	CHECK_EQ(si0.buffers - si0.hv_owned, pi0.partition_owned);
	CHECK_EQ(si0.free, pi0.partition_owned);
	CHECK(pi0.partition_owned >= 2);

	CHECK_EQ(ovmc_hv_remove_buffer(hs), 0);
	/* one removal at a time */
	CHECK_EQ(ovmc_hv_remove_buffer(hs), -EBUSY);
	sim_run(s);
	CHECK_EQ(sim_count(&s->to_part, OVMC_CRQ_CMD, OVMC_MSG_REM_BUF), 1);
	CHECK_EQ(sim_count(&s->to_hv, OVMC_CRQ_CMD, OVMC_MSG_REM_BUF_RESP), 1);
	CHECK_EQ(sim_last(&s->to_hv, OVMC_CRQ_CMD, OVMC_MSG_REM_BUF_RESP)[2], OVMC_BUF_SUCCESS);
	slot_info(s, 0, &si);
	pool_info(s, 0, &pi);
	CHECK_EQ(pi.partition_owned, pi0.partition_owned - 1);
	CHECK_EQ(si.free, si0.free - 1);
	CHECK_EQ(si.buffers - si.hv_owned, pi.partition_owned);
	CHECK_EQ(pi.pending, 0);
	removed++;

	/* down to the last one, which the hypervisor never asks for */
	while ((rc = ovmc_hv_remove_buffer(hs)) == 0) {
		sim_run(s);
		removed++;
		CHECK(removed < 2000);
	}
	CHECK_EQ(rc, -EBUSY);
	pool_info(s, 0, &pi);
	slot_info(s, 0, &si);
	CHECK_EQ(pi.partition_owned, 1);
	CHECK_EQ(si.free, 1);
	CHECK_EQ(removed, pi0.partition_owned - 1);
	CHECK_EQ(drv_stats(s).protocol_errors, 0);
	CHECK_EQ(hv_stats(s).protocol_errors, 0);
	/* with one buffer the session still works, one message at a time */
	write_str(s, f, "last buffer");
	CHECK_EQ(sim_write(s, f, "no more", 7), -EBUSY);
	sim_run(s);
	CHECK_EQ(s->be.msgs.n, 1);
	CHECK_EQ(sim_backend_send(s, 0, "reply", 5), 0);
	sim_run(s);
	read_str(s, f, "reply");
	write_str(s, f, "again");
}

TEST(buffer_exhaustion_ebusy_loses_nothing)
{
	const unsigned total = 200;
	struct sim_opts o;
	struct sim *s;
	struct sim_file *f;
	struct ovmc_drv_slot_info si;
	uint8_t id[OVMC_HMC_ID_LEN];
	char msg[32];
	unsigned written = 0, replied = 0, nread = 0, first_busy = 0;
	ssize_t r;

	sim_opts_default(&o);
	o.echo = false;
	s = sim_new(&o);
	sim_ready(s);
	sim_make_id(id, 1);
	f = sim_open_session(s, id);
	slot_info(s, 0, &si);
	CHECK(si.free >= 1);

	/* phase 1: write until the partition runs out of buffers */
	for (;;) {
		snprintf(msg, sizeof(msg), "m-%u", written);
		r = sim_write(s, f, msg, strlen(msg));
		if (r == -EBUSY)
			break;
		CHECK_EQ(r, (ssize_t)strlen(msg));
		written++;
		CHECK(written <= 4096);
	}
	first_busy = written;
	CHECK_EQ(first_busy, si.free);
	CHECK(!(sim_poll(s, f) & POLLOUT));
	/* no reply, no buffer: still busy after everything settled */
	sim_run(s);
	CHECK_EQ(sim_write(s, f, msg, strlen(msg)), -EBUSY);
	CHECK_EQ(s->be.msgs.n, written);

	/* phase 2: the backend answers what it got; the application reads the
	 * answers, which frees buffers for the next writes */
	for (unsigned guard = 0; written < total; guard++) {
		if (guard == 100000)
			FAIL("no progress: %u written, %u replied, %u read", written, replied,
			     nread);
		while (replied < s->be.msgs.n) {
			snprintf(msg, sizeof(msg), "r-%u", replied);
			CHECK_EQ(sim_backend_send(s, 0, msg, strlen(msg)), 0);
			replied++;
		}
		sim_run(s);
		for (;;) {
			char want[32], got[32];
			ssize_t n = sim_read(s, f, got, sizeof(got));

			if (n == -EAGAIN)
				break;
			snprintf(want, sizeof(want), "r-%u", nread);
			CHECK_EQ(n, (ssize_t)strlen(want));
			CHECK_MEM(got, want, (size_t)n);
			nread++;
		}
		snprintf(msg, sizeof(msg), "m-%u", written);
		r = sim_write(s, f, msg, strlen(msg));
		if (r == -EBUSY) {
			/* busy only while answers are still on their way */
			if (replied == nread && replied == s->be.msgs.n)
				FAIL("-EBUSY with every answer read (%u written)", written);
			continue;
		}
		CHECK_EQ(r, (ssize_t)strlen(msg));
		written++;
		sim_run(s);
	}
	sim_run(s);
	CHECK_EQ(s->be.msgs.n, total);
	for (unsigned i = 0; i < total; i++) {
		snprintf(msg, sizeof(msg), "m-%u", i);
		CHECK_EQ(s->be.msgs.v[i].len, strlen(msg));
		CHECK_MEM(s->be.msgs.v[i].data, msg, strlen(msg));
	}
	CHECK_EQ(drv_stats(s).send_failed, 0);
	CHECK_EQ(drv_stats(s).protocol_errors, 0);
	CHECK_EQ(hv_stats(s).protocol_errors, 0);
}

/* ---- flow control ---- */

TEST(hv_keeps_partition_queue_at_most_half_full)
{
	struct sim_opts o;
	struct sim *s;
	struct sim_file *f;
	uint8_t id[OVMC_HMC_ID_LEN];
	unsigned qsize, n;

	sim_opts_default(&o);
	o.echo = false;
	o.drv.pool_size = 512;
	o.hv.pool_size = 512;
	o.hv.hv_buffers = 400;
	s = sim_new(&o);
	sim_ready(s);
	sim_make_id(id, 1);
	f = sim_open_session(s, id);
	qsize = ovmc_vmc_partition_queue_size(s->vmc);
	CHECK_EQ(qsize, 256);
	/* 300 messages with the driver not draining its queue at all */
	n = 300;
	send_async(s, 0, 0, n);
	CHECK(ovmc_vmc_hv_outstanding(s->vmc) <= qsize / 2);
	CHECK(hv_stats(s).send_deferred > 0);
	/* as the driver drains, the rest follows, in order */
	sim_run(s);
	read_async(s, f, 0, n);
	/* never more than half the queue, at any delivery (machine trace) */
	CHECK(s->max_outstanding <= qsize / 2);
	CHECK(s->max_outstanding >= 2);
	CHECK_EQ(drv_stats(s).protocol_errors, 0);
}

TEST(driver_write_burst_into_small_hv_queue_loses_nothing)
{
	struct sim_opts o;
	struct sim *s;
	struct sim_file *f;
	uint8_t id[OVMC_HMC_ID_LEN];
	char msg[32];
	unsigned written = 0;

	sim_opts_default(&o);
	o.echo = false;
	o.hv.crq_size = 16;
	o.drv.pool_size = 64;
	o.hv.pool_size = 64;
	o.hv.hv_buffers = 4;
	s = sim_new(&o);
	sim_ready(s);
	sim_make_id(id, 1);
	f = sim_open_session(s, id);
	/* the hypervisor core does not run between these writes: its queue
	 * (16 entries) fills up; the driver holds back what does not fit */
	for (; written < 40; written++) {
		snprintf(msg, sizeof(msg), "burst-%u", written);
		CHECK_EQ(sim_write(s, f, msg, strlen(msg)), (ssize_t)strlen(msg));
	}
	CHECK(drv_stats(s).send_deferred > 0);
	sim_advance(s, 5 * SIM_S);
	CHECK_EQ(s->be.msgs.n, written);
	for (unsigned i = 0; i < written; i++) {
		snprintf(msg, sizeof(msg), "burst-%u", i);
		CHECK_EQ(s->be.msgs.v[i].len, strlen(msg));
		CHECK_MEM(s->be.msgs.v[i].data, msg, strlen(msg));
	}
	CHECK_EQ(drv_stats(s).send_failed, 0);
}

/* ---- resets ---- */

static void partner_reset_case(uint8_t event)
{
	struct sim *s = sim_new(NULL);
	struct sim_file *f, *g;
	uint8_t id[OVMC_HMC_ID_LEN], id2[OVMC_HMC_ID_LEN], buf[64];
	unsigned ev, nread = 0;
	ssize_t n;

	sim_ready(s);
	sim_make_id(id, 1);
	sim_make_id(id2, 2);
	f = sim_open_session(s, id);
	/* traffic in flight: five echoed and unread, two read, two more
	 * written and not yet seen by the hypervisor */
	for (unsigned i = 0; i < 5; i++)
		write_str(s, f, "queued");
	sim_run(s);
	read_str(s, f, "queued");
	read_str(s, f, "queued");
	write_str(s, f, "in flight 1");
	write_str(s, f, "in flight 2");

	ovmc_hv_restart(s->hv, event, s->now);
	sim_run(s);
	/* the old connection is gone */
	CHECK_EQ(s->be.closes, 1);
	CHECK_EQ(s->be.close_log.v[0].session, 1);
	CHECK_EQ(sim_write(s, f, "x", 1), -EIO);
	ev = sim_poll(s, f);
	CHECK(ev & POLLHUP);
	CHECK(f->events > 0);
	CHECK(f->last_events & POLLHUP);
	/* Messages that had arrived may still be read (driver.h: -EBADFD once
	 * nothing is queued; Linux discards them), then -EBADFD for good. The
	 * in-flight ones never come back. */
	while ((n = sim_read(s, f, buf, sizeof(buf))) > 0) {
		CHECK_EQ(n, 6);
		CHECK_MEM(buf, "queued", 6);
		nread++;
		CHECK(nread <= 3);
	}
	CHECK_EQ(n, -EBADFD);
	CHECK_EQ(sim_read(s, f, buf, sizeof(buf)), -EBADFD);
	CHECK(!(sim_poll(s, f) & POLLIN));
	CHECK(drv_stats(s).resets >= 1);

	/* recovered without any help from the application */
	CHECK_EQ(ovmc_drv_state(s->drv), OVMC_DRV_READY);
	CHECK_EQ(ovmc_hv_state(s->hv), OVMC_HV_READY);
	g = sim_open_session(s, id2);
	CHECK_EQ(s->be.opens, 2);
	CHECK_MEM(s->be.open_log.v[1].data, id2, OVMC_HMC_ID_LEN);
	CHECK(s->be.open_log.v[1].session != 0 && s->be.open_log.v[1].session != 0xFF);
	sim_clear_msgs(s);
	round_trip(s, g, "after the reset");
	CHECK_EQ(s->be.msgs.n, 1);
	/* the stale file stays dead, and cannot reach the new session */
	CHECK_EQ(sim_write(s, f, "stale", 5), -EIO);
	CHECK_EQ(sim_read(s, f, buf, sizeof(buf)), -EBADFD);
	sim_run(s);
	CHECK_EQ(s->be.msgs.n, 1);
	CHECK_EQ(s->lost_wakeups, 0);
	/* what was never read is accounted for once the file is closed */
	sim_close(s, f);
	CHECK_EQ(drv_stats(s).discarded_msgs, 3 - nread);
}

TEST(partner_reset_mid_traffic)
{
	partner_reset_case(OVMC_EVENT_PARTNER_FAILED);
}

TEST(partner_deregistered_mid_traffic)
{
	partner_reset_case(OVMC_EVENT_PARTNER_DEREGISTERED);
}

TEST(reset_with_waiting_file_then_close_is_clean)
{
	struct sim *s = sim_new(NULL);
	struct sim_file *f;
	uint8_t id[OVMC_HMC_ID_LEN];

	sim_ready(s);
	sim_make_id(id, 1);
	f = sim_open_session(s, id);
	ovmc_hv_restart(s->hv, OVMC_EVENT_PARTNER_FAILED, s->now);
	sim_run(s);
	/* closing a reset file sends nothing and does not disturb the new link */
	sim_close(s, f);
	sim_run(s);
	CHECK_EQ(ovmc_drv_state(s->drv), OVMC_DRV_READY);
	CHECK_EQ(sim_count(&s->to_hv, OVMC_CRQ_CMD, OVMC_MSG_CLOSE), 0);
	f = sim_open_session(s, id);
	round_trip(s, f, "fine");
}

/* ---- H_REQUEST_VMC ---- */

TEST(request_vmc_creates_channel)
{
	struct sim_opts o;
	struct sim *s;
	struct ovmc_query q;
	struct ovmc_vmc_node node;
	struct sim_file *f;
	uint8_t id[OVMC_HMC_ID_LEN];
	uint32_t drc = 0;

	sim_opts_default(&o);
	o.vmc_absent = true;
	s = sim_new(&o);
	sim_run(s);
	ovmc_drv_query(s->drv, &q);
	CHECK_EQ(q.have_vmc, 0);
	CHECK_EQ(q.state, 0);
	CHECK_EQ(ovmc_drv_state(s->drv), OVMC_DRV_INITIAL);
	CHECK_EQ(s->vmcs_created, 0);
	sim_make_id(id, 1);
	f = sim_open(s);
	CHECK_EQ(sim_sethmcid(s, f, id), -EAGAIN);

	CHECK_EQ(ovmc_drv_request_vmc(s->drv, &drc, s->now), 0);
	CHECK_EQ(s->vmcs_created, 1);
	CHECK_EQ(ovmc_platform_vmc_node(s->plat, &node), 0);
	CHECK_EQ(drc, node.drc_index);
	sim_ready(s); /* the sim attached a hypervisor core to the new VMC */
	ovmc_drv_query(s->drv, &q);
	CHECK_EQ(q.have_vmc, 1);
	CHECK_EQ(q.state, OVMC_DRV_READY);
	CHECK_EQ((uint32_t)q.vmc_drc_index, drc);
	CHECK_EQ(sim_sethmcid(s, f, id), 0);
	sim_run(s);
	round_trip(s, f, "over the requested channel");
}

TEST(request_vmc_errno_mapping)
{
	static const struct {
		long rc;
		int err;
	} map[] = {
		{OVMC_H_FUNCTION, -EPERM},	{OVMC_H_AUTHORITY, -EPERM},
		{OVMC_H_NOT_AVAILABLE, -EPERM}, {OVMC_H_HARDWARE, -EIO},
		{OVMC_H_RESOURCE, -ENODEV},	{OVMC_H_PARAMETER, -EINVAL},
		{OVMC_H_PRIVILEGE, -EIO}, /* unknown to Linux: -EIO here */
	};

	for (unsigned i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		struct sim_opts o;
		struct sim *s;
		struct ovmc_query q;
		uint32_t drc = 0;
		int rc;

		sim_opts_default(&o);
		o.vmc_absent = true;
		o.request_vmc_rc = map[i].rc;
		s = sim_new(&o);
		sim_run(s);
		rc = ovmc_drv_request_vmc(s->drv, &drc, s->now);
		if (rc != map[i].err)
			FAIL("H_REQUEST_VMC %s: got %d, expected %d", ovmc_hcall_rc_name(map[i].rc),
			     rc, map[i].err);
		sim_run(s);
		CHECK_EQ(s->vmcs_created, 0);
		ovmc_drv_query(s->drv, &q);
		CHECK_EQ(q.have_vmc, 0);
		CHECK_EQ(q.state, OVMC_DRV_INITIAL);
	}
}

/* ---- hostile peers ---- */

/* Log positions of injected entries, which the wire replay must ignore. */
struct skips {
	size_t pos[64];
	size_t n;
};

static bool skipped(const struct skips *sk, size_t i)
{
	for (size_t k = 0; k < sk->n; k++) {
		if (sk->pos[k] == i)
			return true;
	}
	return false;
}

/*
 * Owner of each buffer of HMC index 0 as the wire shows it: 'P'
 * (partition), 'H' (hypervisor) or 0 (absent). Replays ADD_BUF, SIGNAL,
 * REM_BUF_RESP and CLOSE_RESP in delivery order, leaving out injections.
 */
static void wire_owners(struct sim *s, const struct skips *sk, char *own, unsigned pool)
{
	memset(own, 0, pool);
	for (size_t i = 0; i < s->log.n; i++) {
		const uint8_t *e = s->log.v[i].e;
		bool to_part = s->log.v[i].dir == SIM_TO_PART;
		unsigned id = ovmc_get_be16(e + 6);

		if (skipped(sk, i) || e[0] != OVMC_CRQ_CMD || e[5] != 0)
			continue;
		if (e[1] == OVMC_MSG_CLOSE_RESP && to_part) {
			memset(own, 0, pool);
			continue;
		}
		if (id >= pool)
			continue;
		if (e[1] == OVMC_MSG_ADD_BUF && to_part)
			own[id] = e[3] == OVMC_OWNER_PARTITION ? 'P' : 'H';
		else if (e[1] == OVMC_MSG_SIGNAL)
			own[id] = to_part ? 'P' : 'H';
		else if (e[1] == OVMC_MSG_REM_BUF_RESP && !to_part && e[2] == OVMC_BUF_SUCCESS)
			own[id] = 0;
	}
}

/* The n-th (from 0) buffer of index 0 the wire shows as owned by `who`. */
static uint16_t owned_id(struct sim *s, const struct skips *sk, char who, unsigned nth,
			 unsigned pool)
{
	char *own = xmalloc(pool);

	wire_owners(s, sk, own, pool);
	for (unsigned id = 0; id < pool; id++) {
		if (own[id] == who && nth-- == 0)
			return (uint16_t)id;
	}
	FAIL("no buffer #%u owned by %c on index 0", nth, who);
}

/* Negotiated pool size. */
static unsigned o_pool(struct sim *s)
{
	struct ovmc_drv_negotiated n;

	ovmc_drv_negotiated(s->drv, &n);
	return n.pool_size;
}

static void raw_hmc(uint8_t e[16], uint8_t type, uint8_t session, uint8_t index, uint16_t id,
		    uint32_t last)
{
	memset(e, 0, 16);
	e[0] = OVMC_CRQ_CMD;
	e[1] = type;
	e[4] = session;
	e[5] = index;
	ovmc_put_be16(e + 6, id);
	ovmc_put_be32(e + 12, last);
}

static void raw_caps_resp(uint8_t e[16])
{
	struct ovmc_entry ent;
	struct ovmc_caps caps = {.status = 0,
				 .max_hmcs = 1,
				 .pool_size = 1,
				 .mtu = 64,
				 .crq_size = 1,
				 .version = OVMC_PROTOCOL_VERSION};

	ovmc_entry_caps(&ent, OVMC_MSG_CAP_RESP, &caps);
	CHECK_EQ(ovmc_entry_encode(&ent, e), 0);
}

#define DRV_ERR(field) ((long long)drv_stats(s).field)

/* Inject into the partition's CRQ as the hypervisor; expect one protocol error. */
static void inject_to_driver(struct sim *s, struct skips *sk, const uint8_t e[16], const char *what)
{
	struct ovmc_drv_stats before = drv_stats(s), after;

	CHECK(sk->n < 64);
	sk->pos[sk->n++] = s->log.n;
	CHECK_EQ(ovmc_vmc_hv_send(s->vmc, e), OVMC_H_SUCCESS);
	sim_run(s);
	after = drv_stats(s);
	if (after.protocol_errors != before.protocol_errors + 1)
		FAIL("%s: driver protocol_errors %llu -> %llu, expected +1", what,
		     (unsigned long long)before.protocol_errors,
		     (unsigned long long)after.protocol_errors);
	if (ovmc_drv_state(s->drv) != OVMC_DRV_READY)
		FAIL("%s: driver left ready (%s)", what,
		     ovmc_drv_state_name(ovmc_drv_state(s->drv)));
}

static void check_drv_error_sum(struct sim *s)
{
	struct ovmc_drv_stats st = drv_stats(s);

	CHECK_EQ(st.protocol_errors, st.err_decode + st.err_state + st.err_direction +
					     st.err_session + st.err_buffer + st.err_length +
					     st.err_flood);
}

/*
 * ENOBUFS: a free HMC connection whose buffer has not come yet. The
 * hypervisor core sends the close response and the new buffer together, so
 * the test plays the close response itself and lets only the driver run.
 */
TEST(sethmcid_while_the_free_connection_has_no_buffer_enobufs)
{
	struct sim *s = sim_new(NULL);
	struct sim_file *f, *g;
	struct ovmc_drv_slot_info si;
	uint8_t id[OVMC_HMC_ID_LEN], e[16];
	uint8_t sn;

	sim_ready(s);
	sim_make_id(id, 1);
	f = sim_open_session(s, id);
	sn = ovmc_hv_session_number(sim_session(s, 0));
	sim_close(s, f);
	raw_hmc(e, OVMC_MSG_CLOSE_RESP, sn, 0, 0, 0);
	CHECK_EQ(ovmc_vmc_hv_send(s->vmc, e), OVMC_H_SUCCESS);
	ovmc_platform_irq_ack(s->plat);
	ovmc_drv_handle_interrupt(s->drv, s->now);
	slot_info(s, 0, &si);
	CHECK_EQ(si.state, OVMC_SLOT_FREE);
	CHECK_EQ(si.free, 0);

	g = sim_open(s);
	CHECK_EQ(sim_sethmcid(s, g, id), -ENOBUFS);
	/* Nothing was reserved: once the buffer comes, the same file opens. */
	sim_run(s);
	slot_info(s, 0, &si);
	CHECK_EQ(si.free, 1);
	CHECK_EQ(sim_sethmcid(s, g, id), 0);
	sim_run(s);
	round_trip(s, g, "after ENOBUFS");
}

TEST(malformed_entries_from_hypervisor_counted_and_survived)
{
	struct sim *s = sim_new(NULL);
	struct skips *sk = xmalloc(sizeof(*sk));
	struct sim_file *f;
	struct ovmc_drv_slot_info si0, si;
	struct ovmc_drv_negotiated neg;
	uint8_t id[OVMC_HMC_ID_LEN], e[16];
	uint8_t sn;
	uint16_t pid;
	long long before;

	sk->n = 0;
	sim_ready(s);
	sim_make_id(id, 1);
	f = sim_open_session(s, id);
	sn = ovmc_hv_session_number(sim_session(s, 0));
	ovmc_drv_negotiated(s->drv, &neg);
	pid = owned_id(s, sk, 'P', 0, neg.pool_size);
	slot_info(s, 0, &si0);

	/* entries the driver must drop without any change of state */
	raw_hmc(e, 0x77, sn, 0, 0, 0);
	before = DRV_ERR(err_decode);
	inject_to_driver(s, sk, e, "unknown type");
	CHECK_EQ(DRV_ERR(err_decode), before + 1);

	raw_hmc(e, OVMC_MSG_SIGNAL, sn, 0, pid, 8);
	e[0] = 0x90; /* bit 7 set, but not 0x80, 0xC0 or 0xFF */
	before = DRV_ERR(err_decode);
	inject_to_driver(s, sk, e, "bad header");
	CHECK_EQ(DRV_ERR(err_decode), before + 1);

	memset(e, 0, 16);
	e[0] = OVMC_CRQ_INIT;
	e[1] = 0x09;
	inject_to_driver(s, sk, e, "unknown init format");

	raw_hmc(e, OVMC_MSG_SIGNAL, sn, 0, pid, 8);
	before = DRV_ERR(err_buffer);
	inject_to_driver(s, sk, e, "signal on a buffer the partition owns");
	CHECK_EQ(DRV_ERR(err_buffer), before + 1);

	raw_hmc(e, OVMC_MSG_SIGNAL, sn, 0, neg.pool_size, 8);
	before = DRV_ERR(err_buffer);
	inject_to_driver(s, sk, e, "signal id >= pool");
	CHECK_EQ(DRV_ERR(err_buffer), before + 1);

	raw_hmc(e, OVMC_MSG_ADD_BUF, sn, 0, neg.pool_size, 0);
	before = DRV_ERR(err_buffer);
	inject_to_driver(s, sk, e, "add buffer id >= pool");
	CHECK_EQ(DRV_ERR(err_buffer), before + 1);

	raw_hmc(e, OVMC_MSG_OPEN, sn, 0, 0, 0);
	before = DRV_ERR(err_direction);
	inject_to_driver(s, sk, e, "OPEN towards the partition");
	CHECK_EQ(DRV_ERR(err_direction), before + 1);

	raw_caps_resp(e);
	before = DRV_ERR(err_state);
	inject_to_driver(s, sk, e, "CAP_RESP while ready");
	CHECK_EQ(DRV_ERR(err_state), before + 1);
	{
		struct ovmc_drv_negotiated n2;

		ovmc_drv_negotiated(s->drv, &n2);
		CHECK_EQ(n2.mtu, neg.mtu); /* not renegotiated */
	}

	/* nothing changed hands, nothing was queued; the session works */
	slot_info(s, 0, &si);
	CHECK_EQ(si.free, si0.free);
	CHECK_EQ(si.hv_owned, si0.hv_owned);
	CHECK_EQ(si.queued, 0);
	CHECK_EQ(si.state, OVMC_SLOT_READY);
	CHECK_EQ(drv_stats(s).messages_in, 0);
	check_drv_error_sum(s);
	for (unsigned i = 0; i < 5; i++)
		round_trip(s, f, "still alive");
	CHECK_EQ(s->be.msgs.n, 5);

	/* bad lengths on buffers the hypervisor does own */
	raw_hmc(e, OVMC_MSG_SIGNAL, sn, 0, owned_id(s, sk, 'H', 0, neg.pool_size), neg.mtu + 1);
	before = DRV_ERR(err_length);
	inject_to_driver(s, sk, e, "signal len > mtu");
	CHECK_EQ(DRV_ERR(err_length), before + 1);
	raw_hmc(e, OVMC_MSG_SIGNAL, sn, 0, owned_id(s, sk, 'H', 1, neg.pool_size), 0);
	before = DRV_ERR(err_length);
	inject_to_driver(s, sk, e, "signal len 0");
	CHECK_EQ(DRV_ERR(err_length), before + 1);
	CHECK_EQ(drv_stats(s).messages_in, 5);
	CHECK_EQ(drv_stats(s).lost_rdma, 0);
	check_drv_error_sum(s);
	/* the buffers those named may now be out of step with the hypervisor
	 * core (it never sent them); a fresh session starts clean */
	sim_close(s, f);
	sim_run(s);
	f = sim_open_session(s, id);
	for (unsigned i = 0; i < 5; i++)
		round_trip(s, f, "new session");
	CHECK_EQ(ovmc_drv_state(s->drv), OVMC_DRV_READY);
}

#define HV_ERR(field) ((long long)hv_stats(s).field)

/* Send as the partition (H_SEND_CRQ); expect one hv protocol error. */
static void inject_to_hv(struct sim *s, struct skips *sk, const uint8_t e[16], const char *what)
{
	struct ovmc_vmc_node node;
	struct ovmc_hv_stats before = hv_stats(s), after;
	uint64_t drv_resets = drv_stats(s).resets;
	unsigned closes = s->be.closes;

	CHECK(sk->n < 64);
	CHECK_EQ(ovmc_platform_vmc_node(s->plat, &node), 0);
	sk->pos[sk->n++] = s->log.n;
	CHECK_EQ(
		ovmc_h_send_crq(s->plat, node.unit_address, ovmc_get_be64(e), ovmc_get_be64(e + 8)),
		OVMC_H_SUCCESS);
	sim_run(s);
	after = hv_stats(s);
	if (after.protocol_errors != before.protocol_errors + 1)
		FAIL("%s: hv protocol_errors %llu -> %llu, expected +1", what,
		     (unsigned long long)before.protocol_errors,
		     (unsigned long long)after.protocol_errors);
	if (ovmc_hv_state(s->hv) != OVMC_HV_READY)
		FAIL("%s: hypervisor left ready (%s)", what,
		     ovmc_hv_state_name(ovmc_hv_state(s->hv)));
	if (ovmc_drv_state(s->drv) != OVMC_DRV_READY || drv_stats(s).resets != drv_resets ||
	    s->be.closes != closes)
		FAIL("%s: the hypervisor's answer reset the channel (driver %s, %llu resets, "
		     "%u closes)",
		     what, ovmc_drv_state_name(ovmc_drv_state(s->drv)),
		     (unsigned long long)(drv_stats(s).resets - drv_resets), s->be.closes - closes);
}

static void check_hv_error_sum(struct sim *s)
{
	struct ovmc_hv_stats st = hv_stats(s);

	CHECK_EQ(st.protocol_errors, st.err_decode + st.err_state + st.err_direction +
					     st.err_session + st.err_buffer + st.err_length +
					     st.err_flood);
}

TEST(malformed_entries_from_partition_counted_and_survived)
{
	struct sim *s = sim_new(NULL);
	struct skips *sk = xmalloc(sizeof(*sk));
	struct sim_file *f;
	struct ovmc_hv_pool_info pi0, pi;
	struct ovmc_hv_negotiated neg;
	uint8_t id[OVMC_HMC_ID_LEN], e[16];
	uint8_t sn;
	uint16_t pid, nid;
	long long before;
	char *own;

	sk->n = 0;
	sim_ready(s);
	sim_make_id(id, 1);
	f = sim_open_session(s, id);
	sn = ovmc_hv_session_number(sim_session(s, 0));
	ovmc_hv_negotiated(s->hv, &neg);
	pid = owned_id(s, sk, 'P', 0, neg.pool_size);
	own = xmalloc(neg.pool_size);
	wire_owners(s, sk, own, neg.pool_size);
	for (nid = 0; nid < neg.pool_size && own[nid] == 'P'; nid++)
		;
	CHECK(nid < neg.pool_size);
	pool_info(s, 0, &pi0);

	/* entries the hypervisor must drop without any change of state */
	raw_hmc(e, 0x77, sn, 0, 0, 0);
	before = HV_ERR(err_decode);
	inject_to_hv(s, sk, e, "unknown type");
	CHECK_EQ(HV_ERR(err_decode), before + 1);

	memset(e, 0, 16);
	e[0] = OVMC_CRQ_INIT;
	e[1] = 0x09;
	before = HV_ERR(err_decode);
	inject_to_hv(s, sk, e, "unknown init format");
	CHECK_EQ(HV_ERR(err_decode), before + 1);

	raw_caps_resp(e);
	before = HV_ERR(err_direction);
	inject_to_hv(s, sk, e, "CAP_RESP towards the hypervisor");
	CHECK_EQ(HV_ERR(err_direction), before + 1);

	raw_hmc(e, OVMC_MSG_SIGNAL, (uint8_t)(sn + 1), 0, pid, 8);
	before = HV_ERR(err_session);
	inject_to_hv(s, sk, e, "signal with a wrong session");
	CHECK_EQ(HV_ERR(err_session), before + 1);

	raw_hmc(e, OVMC_MSG_SIGNAL, sn, 5, pid, 8);
	before = HV_ERR(err_session);
	inject_to_hv(s, sk, e, "signal with an index beyond max");
	CHECK_EQ(HV_ERR(err_session), before + 1);

	raw_hmc(e, OVMC_MSG_SIGNAL, sn, 0, neg.pool_size, 8);
	before = HV_ERR(err_buffer);
	inject_to_hv(s, sk, e, "signal id >= pool");
	CHECK_EQ(HV_ERR(err_buffer), before + 1);

	raw_hmc(e, OVMC_MSG_SIGNAL, sn, 0, nid, 8);
	before = HV_ERR(err_buffer);
	inject_to_hv(s, sk, e, "signal on a buffer the partition does not own");
	CHECK_EQ(HV_ERR(err_buffer), before + 1);

	/* nothing reached the backend, nothing changed hands; the session works */
	CHECK_EQ(s->be.msgs.n, 0);
	CHECK_EQ(s->be.opens, 1);
	CHECK_EQ(s->be.closes, 0);
	pool_info(s, 0, &pi);
	CHECK_EQ(pi.partition_owned, pi0.partition_owned);
	CHECK_EQ(pi.hv_free, pi0.hv_free);
	CHECK_EQ(hv_stats(s).messages_in, 0);
	check_hv_error_sum(s);
	for (unsigned i = 0; i < 5; i++)
		round_trip(s, f, "still alive");
	CHECK_EQ(s->be.msgs.n, 5);

	/* bad lengths on buffers the partition does own */
	raw_hmc(e, OVMC_MSG_SIGNAL, sn, 0, owned_id(s, sk, 'P', 0, neg.pool_size), 0);
	before = HV_ERR(err_length);
	inject_to_hv(s, sk, e, "signal len 0");
	CHECK_EQ(HV_ERR(err_length), before + 1);
	raw_hmc(e, OVMC_MSG_SIGNAL, sn, 0, owned_id(s, sk, 'P', 1, neg.pool_size), neg.mtu + 1);
	before = HV_ERR(err_length);
	inject_to_hv(s, sk, e, "signal len > mtu");
	CHECK_EQ(HV_ERR(err_length), before + 1);
	CHECK_EQ(s->be.msgs.n, 5);
	check_hv_error_sum(s);
	/* a fresh session starts clean */
	sim_close(s, f);
	sim_run(s);
	f = sim_open_session(s, id);
	for (unsigned i = 0; i < 5; i++)
		round_trip(s, f, "new session");
	CHECK_EQ(s->be.msgs.n, 10);
}

/*
 * OPEN or CLOSE naming an HMC index beyond the negotiated range: counted
 * and dropped. An answer would have to carry that index, and a driver that
 * gets a response for an unknown index resets the whole CRQ (Linux does,
 * docs/protocol.md 4.7 B and E, 4.8), taking every session down.
 */
TEST(partition_open_or_close_on_bad_index_dropped_without_reply)
{
	struct sim *s = sim_new(NULL);
	struct skips *sk = xmalloc(sizeof(*sk));
	struct sim_file *f;
	uint8_t id[OVMC_HMC_ID_LEN], e[16];
	uint8_t sn;
	uint16_t pid;
	long long before;
	size_t opens_resp, closes_resp;

	sk->n = 0;
	sim_ready(s);
	sim_make_id(id, 1);
	f = sim_open_session(s, id);
	sn = ovmc_hv_session_number(sim_session(s, 0));
	pid = owned_id(s, sk, 'P', 0, o_pool(s));
	opens_resp = sim_count(&s->to_part, OVMC_CRQ_CMD, OVMC_MSG_OPEN_RESP);
	closes_resp = sim_count(&s->to_part, OVMC_CRQ_CMD, OVMC_MSG_CLOSE_RESP);

	raw_hmc(e, OVMC_MSG_CLOSE, sn, 6, 0, 0);
	before = HV_ERR(err_session);
	inject_to_hv(s, sk, e, "close on an index beyond max");
	CHECK_EQ(HV_ERR(err_session), before + 1);

	raw_hmc(e, OVMC_MSG_OPEN, sn, 7, pid, 0);
	before = HV_ERR(err_session);
	inject_to_hv(s, sk, e, "open on an index beyond max");
	CHECK_EQ(HV_ERR(err_session), before + 1);

	CHECK_EQ(sim_count(&s->to_part, OVMC_CRQ_CMD, OVMC_MSG_OPEN_RESP), opens_resp);
	CHECK_EQ(sim_count(&s->to_part, OVMC_CRQ_CMD, OVMC_MSG_CLOSE_RESP), closes_resp);
	round_trip(s, f, "still alive");
}

TEST(backend_refusing_open_fails_the_session)
{
	struct sim *s = sim_new(NULL);
	struct sim_file *f, *g;
	uint8_t id[OVMC_HMC_ID_LEN];
	const uint8_t *resp;

	sim_ready(s);
	s->be.open_rc = -EACCES;
	sim_make_id(id, 1);
	f = sim_open(s);
	CHECK_EQ(sim_sethmcid(s, f, id), 0);
	sim_run(s);
	CHECK_EQ(s->be.opens, 1);
	resp = sim_last(&s->to_part, OVMC_CRQ_CMD, OVMC_MSG_OPEN_RESP);
	CHECK(resp != NULL);
	CHECK(resp[2] != 0);
	CHECK(ovmc_hv_session_at(s->hv, 0) == NULL);
	CHECK_EQ(sim_write(s, f, "x", 1), -EIO);
	/* The index is usable again. The driver forgets the index's buffers
	 * with a failed open (Linux, docs/protocol.md 4.7 B.6), so the
	 * hypervisor has to seed it again, as after a close. */
	s->be.open_rc = 0;
	sim_close(s, f);
	sim_advance(s, 5 * SIM_S);
	g = sim_open_session(s, id);
	round_trip(s, g, "accepted now");
}

/* ---- seeded random traffic (STYLE 9) ---- */

static void fill_bytes(uint64_t seed, unsigned k, uint8_t *buf, size_t len)
{
	uint64_t st = seed * 0x9E3779B97F4A7C15ull + k * 0x100000001B3ull + 1;

	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(ovmc_test_rand(&st) >> 56);
}

/*
 * Random writes, reads, unsolicited messages, pumping and clock jumps, and
 * (optionally) hypervisor restarts. Every read must be the next message the
 * backend sent on the current session, byte for byte; within the last
 * session the backend must have received exactly what was written.
 */
static void soak(uint64_t seed, unsigned steps, bool resets)
{
	struct sim *s = sim_new(NULL);
	struct sim_file *f;
	uint8_t id[OVMC_HMC_ID_LEN];
	uint8_t *buf, *rbuf;
	unsigned *wk;
	size_t *wl;
	size_t nw = 0, rd, msgs_from;
	uint64_t rng = seed;
	unsigned k = 0, restarts = 0;
	uint32_t mtu;

	sim_ready(s);
	sim_make_id(id, (unsigned)seed);
	f = sim_open_session(s, id);
	mtu = sim_mtu(s);
	buf = xmalloc(mtu);
	rbuf = xmalloc(mtu);
	wk = xmalloc(steps * sizeof(*wk));
	wl = xmalloc(steps * sizeof(*wl));
	rd = s->be.sent.n;
	msgs_from = s->be.msgs.n;
	for (unsigned step = 0; step < steps; step++) {
		unsigned r = (unsigned)(ovmc_test_rand(&rng) % 100);
		size_t len;
		ssize_t n;

		if (r < 35) {
			len = ovmc_test_rand(&rng) % 8 == 0 ? mtu : 1 + ovmc_test_rand(&rng) % mtu;
			fill_bytes(seed, k, buf, len);
			n = sim_write(s, f, buf, len);
			if (n == -EBUSY)
				continue;
			if (n != (ssize_t)len)
				FAIL("seed %llu step %u: write gave %zd", (unsigned long long)seed,
				     step, n);
			wk[nw] = k++;
			wl[nw++] = len;
		} else if (r < 45) {
			len = 1 + ovmc_test_rand(&rng) % 200;
			fill_bytes(seed, k++, buf, len);
			CHECK_EQ(sim_backend_send(s, 0, buf, len), 0);
		} else if (r < 75) {
			n = sim_read(s, f, rbuf, mtu);
			if (n == -EAGAIN)
				continue;
			if (n <= 0 || rd >= s->be.sent.n)
				FAIL("seed %llu step %u: read gave %zd with %zu of %zu read",
				     (unsigned long long)seed, step, n, rd, s->be.sent.n);
			if ((size_t)n != s->be.sent.v[rd].len ||
			    memcmp(rbuf, s->be.sent.v[rd].data, (size_t)n) != 0)
				FAIL("seed %llu step %u: read %zu is not the next message sent",
				     (unsigned long long)seed, step, rd);
			rd++;
		} else if (r < 90) {
			sim_run(s);
		} else if (r < 99 || !resets || ovmc_test_rand(&rng) % 3 != 0) {
			sim_advance(s, (ovmc_test_rand(&rng) % 5000) * 1000);
		} else {
			ovmc_hv_restart(s->hv,
					r % 2 ? OVMC_EVENT_PARTNER_FAILED
					      : OVMC_EVENT_PARTNER_DEREGISTERED,
					s->now);
			sim_run(s);
			sim_close(s, f);
			sim_run(s);
			sim_make_id(id, (unsigned)seed * 1000 + ++restarts);
			f = sim_open_session(s, id);
			rd = s->be.sent.n;
			msgs_from = s->be.msgs.n;
			nw = 0;
		}
	}
	/* drain: everything sent arrives, including echoes of writes the
	 * driver was still holding back */
	for (unsigned round = 0;; round++) {
		while (rd < s->be.sent.n) {
			ssize_t n;

			if (!sim_wait(s, f, POLLIN, 5 * SIM_S))
				FAIL("seed %llu: %zu of %zu messages never arrived",
				     (unsigned long long)seed, s->be.sent.n - rd, s->be.sent.n);
			n = sim_read(s, f, rbuf, mtu);
			CHECK_EQ(n, (ssize_t)s->be.sent.v[rd].len);
			CHECK_MEM(rbuf, s->be.sent.v[rd].data, (size_t)n);
			rd++;
		}
		sim_advance(s, SIM_S);
		if (rd == s->be.sent.n)
			break;
		CHECK(round < 100);
	}
	CHECK_EQ(sim_read(s, f, rbuf, mtu), -EAGAIN);
	/* what this session wrote reached the backend once each, in order */
	CHECK_EQ(s->be.msgs.n - msgs_from, nw);
	for (size_t i = 0; i < nw; i++) {
		const struct sim_msg *m = &s->be.msgs.v[msgs_from + i];

		fill_bytes(seed, wk[i], buf, wl[i]);
		CHECK_EQ(m->len, wl[i]);
		CHECK_MEM(m->data, buf, wl[i]);
	}
	if (resets)
		CHECK(restarts >= 1);
	CHECK_EQ(s->be.echo_errors, 0);
	/* A restart can overtake answers already on their way (a REM_BUF_RESP
	 * reaching the restarted core): dropped as out of state, nothing else. */
	CHECK_EQ(drv_stats(s).protocol_errors, drv_stats(s).err_state);
	CHECK_EQ(hv_stats(s).protocol_errors, hv_stats(s).err_state);
	if (!resets) {
		CHECK_EQ(drv_stats(s).protocol_errors, 0);
		CHECK_EQ(hv_stats(s).protocol_errors, 0);
	}
	CHECK_EQ(drv_stats(s).send_failed, 0);
	CHECK_EQ(drv_stats(s).lost_rdma, 0);
	CHECK_EQ(s->lost_wakeups, 0);
}

TEST(random_traffic_keeps_every_message_in_order)
{
	for (uint64_t seed = 1; seed <= 4; seed++)
		soak(seed, 3000, false);
}

TEST(random_traffic_with_hypervisor_restarts)
{
	for (uint64_t seed = 11; seed <= 14; seed++)
		soak(seed, 3000, true);
}

TEST(crq_pending_says_when_an_entry_waits_for_the_driver)
{
	struct sim *s = sim_new(NULL);
	uint8_t id[OVMC_HMC_ID_LEN], buf[64];
	struct sim_file *f;

	sim_ready(s);
	sim_make_id(id, 7);
	f = sim_open_session(s, id);
	sim_run(s);
	CHECK(!ovmc_drv_crq_pending(s->drv));
	/* The hypervisor sends; the driver has not looked at its CRQ yet. */
	CHECK_EQ(sim_backend_send(s, 0, "ping", 4), 0);
	CHECK(ovmc_drv_crq_pending(s->drv));
	CHECK(ovmc_drv_handle_interrupt(s->drv, s->now) > 0);
	CHECK(!ovmc_drv_crq_pending(s->drv));
	sim_run(s);
	CHECK_EQ(sim_read(s, f, buf, sizeof(buf)), 4);
	CHECK_MEM(buf, "ping", 4);
}
