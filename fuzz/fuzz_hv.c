// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The hypervisor core driven by a hostile partition. The channel is the
 * simulation's (tests/sim.h): a real driver core is the partition, and the
 * input also sends entries of its own with H_SEND_CRQ in the partition's
 * name, holds the driver back (it does not read its CRQ), has the backend
 * send unsolicited messages, resets the channel, and uses files.
 *
 * After every input: the counters add up, the send queue stayed within its
 * bound, and after a reset a clean session opens and echoes.
 */
#include "fuzz.h"

#include "harness.h"
#include "sim.h"

#include <openvmc/wire.h>

#include <poll.h>
#include <stdlib.h>

#define MAX_FILES 4
#define MAX_OPS 200
#define FUZZ_POOL 8
#define FUZZ_MTU 512

struct run {
	struct sim *s;
	struct sim_file *f[MAX_FILES];
	uint64_t unit;
};

static const uint8_t part_types[] = {OVMC_MSG_CAP,	    OVMC_MSG_OPEN,	   OVMC_MSG_CLOSE,
				     OVMC_MSG_ADD_BUF_RESP, OVMC_MSG_REM_BUF_RESP, OVMC_MSG_SIGNAL};

static void inject(struct run *r, struct fuzz_in *in, uint8_t how)
{
	uint8_t e[OVMC_CRQ_ENTRY_SIZE];
	uint64_t hi, lo;

	fuzz_bytes(in, e, sizeof(e));
	if (how == 1) {
		struct ovmc_hv_session *hs;

		e[0] = OVMC_CRQ_CMD;
		e[1] = part_types[e[1] % sizeof(part_types)];
		e[5] %= 3;
		hs = r->s->hv ? ovmc_hv_session_at(r->s->hv, e[5]) : NULL;
		if (hs && (e[4] & 1))
			e[4] = ovmc_hv_session_number(hs);
		e[6] = 0;
		e[7] %= FUZZ_POOL + 2;
		if (e[1] == OVMC_MSG_SIGNAL)
			e[8] = e[9] = e[10] = e[11] = e[12] = e[13] = 0;
		if (e[1] == OVMC_MSG_CAP) {
			/* Plausible: hmcs 1..3, pool 1..64, MTU 4096, a queue, v1.1. */
			e[2] = e[3] = e[4] = 0;
			e[5] = (uint8_t)(1 + e[5] % 3);
			e[6] = 0;
			e[7] = (uint8_t)(1 + e[7] % 64);
			e[8] = e[9] = e[11] = e[12] = 0;
			e[10] = 0x10;
			e[13] |= 2;
			e[14] = e[15] = 0x01;
		}
	} else if (how == 2) {
		e[0] = OVMC_CRQ_INIT;
		e[1] = 1 + e[1] % 2;
		memset(e + 2, 0, sizeof(e) - 2);
	}
	ovmc_entry_to_words(e, &hi, &lo);
	ovmc_h_send_crq(r->s->plat, r->unit, hi, lo);
}

static void file_op(struct run *r, struct fuzz_in *in, uint8_t op)
{
	struct sim *s = r->s;
	uint8_t buf[FUZZ_MTU + 2], id[OVMC_HMC_ID_LEN];
	unsigned k = fuzz_u8(in) % MAX_FILES;
	size_t len;

	switch (op) {
	case 0:
		if (!r->f[k])
			r->f[k] = sim_open(s);
		break;
	case 1:
		if (r->f[k]) {
			sim_make_id(id, fuzz_u8(in));
			sim_sethmcid(s, r->f[k], id);
		}
		break;
	case 2:
		len = fuzz_u16(in) % sizeof(buf);
		memset(buf, 'p', len);
		if (r->f[k])
			sim_write(s, r->f[k], buf, len);
		break;
	case 3:
		len = fuzz_u16(in) % sizeof(buf);
		if (r->f[k])
			sim_read(s, r->f[k], buf, len);
		break;
	default:
		if (r->f[k]) {
			sim_close(s, r->f[k]);
			r->f[k] = NULL;
		}
		break;
	}
}

/* The backend speaks up on a session of the hypervisor, unasked. */
static void backend_send(struct run *r, struct fuzz_in *in)
{
	struct ovmc_hv_session *hs;
	uint8_t buf[FUZZ_MTU + 2];
	size_t len = fuzz_u16(in) % sizeof(buf);

	hs = ovmc_hv_session_at(r->s->hv, fuzz_u8(in) % 3);
	memset(buf, 'h', len);
	if (hs)
		ovmc_hv_send(hs, buf, len);
}

static void check_counters(struct sim *s)
{
	struct ovmc_hv_stats st;
	struct ovmc_hv_config hc = s->o.hv;

	ovmc_hv_stats(s->hv, &st);
	FUZZ_CHECK(st.protocol_errors == st.err_decode + st.err_state + st.err_direction +
						 st.err_session + st.err_buffer + st.err_length +
						 st.err_flood);
	FUZZ_CHECK(st.send_queue_peak <=
		   hc.max_hmcs * (2u * hc.pool_size + 4u) + (unsigned)hc.crq_size);
}

static void recover(struct run *r)
{
	struct sim *s = r->s;
	struct sim_file *f;
	uint8_t id[OVMC_HMC_ID_LEN];
	char buf[64];

	for (unsigned k = 0; k < MAX_FILES; k++)
		if (r->f[k])
			sim_close(s, r->f[k]);
	s->hold_hv = s->hold_drv = false;
	ovmc_hv_restart(s->hv, OVMC_EVENT_PARTNER_FAILED, s->now);
	sim_advance(s, 3 * SIM_S);
	sim_ready(s);
	sim_make_id(id, 78);
	f = sim_open_session(s, id);
	FUZZ_CHECK(sim_write(s, f, "recovered", 9) == 9);
	FUZZ_CHECK(sim_wait(s, f, POLLIN, 5 * SIM_S));
	FUZZ_CHECK(sim_read(s, f, buf, sizeof(buf)) == 9 && memcmp(buf, "recovered", 9) == 0);
	sim_close(s, f);
	sim_run(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	struct ovmc_vmc_node node;
	struct sim_opts o;
	struct run r = {0};
	uint8_t mode = fuzz_u8(&in) % 3;

	sim_opts_default(&o);
	/* Small pools and messages: the same paths at many more inputs a second. */
	o.drv.max_hmcs = o.hv.max_hmcs = 2;
	o.drv.pool_size = o.hv.pool_size = FUZZ_POOL;
	o.drv.max_mtu = o.hv.mtu = FUZZ_MTU;
	o.mem_slack = 0;
	o.no_hv = mode == 2;
	r.s = sim_new(&o);
	if (ovmc_platform_vmc_node(r.s->plat, &node))
		fuzz_fail("no VMC node");
	r.unit = node.unit_address;
	if (mode == 2) {
		/* The hypervisor waits for INIT; the input speaks for the partition. */
		sim_run(r.s);
		r.s->hold_drv = true;
		r.s->o.no_hv = false;
		sim_attach_hv(r.s);
	} else {
		sim_ready(r.s);
	}
	if (mode == 1) {
		uint8_t id[OVMC_HMC_ID_LEN];

		sim_make_id(id, 2);
		r.f[0] = sim_open_session(r.s, id);
	}
	for (unsigned i = 0; i < MAX_OPS && in.n; i++) {
		uint8_t op = fuzz_u8(&in);

		switch (op % 11) {
		case 0:
		case 1:
		case 2:
			inject(&r, &in, op % 3);
			break;
		case 3:
			sim_run(r.s);
			break;
		case 4:
			r.s->hold_drv = !r.s->hold_drv;
			break;
		case 5:
		case 6:
		case 7:
			file_op(&r, &in, (uint8_t)(fuzz_u8(&in) % 5));
			break;
		case 8:
			sim_advance(r.s, (uint64_t)fuzz_u8(&in) * 10 * SIM_MS);
			break;
		case 9:
			backend_send(&r, &in);
			break;
		default:
			ovmc_hv_restart(r.s->hv, fuzz_u8(&in) & 1 ? OVMC_EVENT_PARTNER_FAILED
								  : OVMC_EVENT_PARTNER_DEREGISTERED,
					r.s->now);
			break;
		}
	}
	sim_run(r.s);
	check_counters(r.s);
	recover(&r);
	check_counters(r.s);
	fuzz_cleanup();
	return 0;
}
