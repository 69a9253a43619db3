// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The driver core driven by a hostile hypervisor, interleaved with file
 * operations. The channel is the simulation's (tests/sim.h): a real
 * hypervisor core serves the partition, and the input also puts entries
 * of its own into the partition's CRQ in the hypervisor's name, holds the
 * real core back (it does not read its queue), resets the channel, and
 * opens, writes, reads and closes files.
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
	bool core; /* a hypervisor core serves the end */
};

static const uint8_t hv_types[] = {OVMC_MSG_CAP_RESP, OVMC_MSG_OPEN_RESP, OVMC_MSG_CLOSE_RESP,
				   OVMC_MSG_ADD_BUF,  OVMC_MSG_REM_BUF,	  OVMC_MSG_SIGNAL};

static void inject(struct run *r, struct fuzz_in *in, uint8_t how)
{
	struct ovmc_drv_slot_info si;
	uint8_t e[OVMC_CRQ_ENTRY_SIZE];

	fuzz_bytes(in, e, sizeof(e));
	if (how == 1) {
		/* Mostly right: a message type it may get, the session it has. */
		e[0] = OVMC_CRQ_CMD;
		e[1] = hv_types[e[1] % sizeof(hv_types)];
		e[5] %= 3;
		if (ovmc_drv_slot_info(r->s->drv, e[5] % r->s->o.drv.max_hmcs, &si) == 0 &&
		    (e[4] & 1))
			e[4] = si.session;
		e[6] = 0;
		e[7] %= FUZZ_POOL + 2;
		if (e[1] == OVMC_MSG_SIGNAL)
			e[12] = e[13] = 0;
	} else if (how == 2) {
		e[0] = OVMC_CRQ_INIT;
		e[1] = 1 + e[1] % 2;
		memset(e + 2, 0, sizeof(e) - 2);
	}
	ovmc_vmc_hv_send(r->s->vmc, e);
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
		memset(buf, 'w', len);
		if (r->f[k])
			sim_write(s, r->f[k], buf, len);
		break;
	case 3:
		len = fuzz_u16(in) % sizeof(buf);
		if (r->f[k])
			sim_read(s, r->f[k], buf, len);
		break;
	case 4:
		if (r->f[k]) {
			sim_close(s, r->f[k]);
			r->f[k] = NULL;
		}
		break;
	default:
		if (r->f[k])
			sim_poll(s, r->f[k]);
		break;
	}
}

static void reset_channel(struct run *r, uint8_t event)
{
	event = event & 1 ? OVMC_EVENT_PARTNER_FAILED : OVMC_EVENT_PARTNER_DEREGISTERED;
	if (r->core) {
		ovmc_hv_restart(r->s->hv, event, r->s->now);
	} else {
		ovmc_vmc_hv_free(r->s->vmc, event);
		ovmc_vmc_hv_register(r->s->vmc);
	}
}

static void check_counters(struct sim *s)
{
	struct ovmc_drv_stats st;
	struct ovmc_drv_config dc;

	ovmc_drv_stats(s->drv, &st);
	dc = s->o.drv;
	FUZZ_CHECK(st.protocol_errors == st.err_decode + st.err_state + st.err_direction +
						 st.err_session + st.err_buffer + st.err_length +
						 st.err_flood);
	FUZZ_CHECK(st.send_queue_peak <= dc.max_hmcs * (2u * dc.pool_size + 4u) + 64u);
}

/* Whatever happened, a reset brings the channel back and a session works. */
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
	if (r->core) {
		ovmc_hv_restart(s->hv, OVMC_EVENT_PARTNER_FAILED, s->now);
	} else {
		ovmc_vmc_hv_free(s->vmc, OVMC_EVENT_PARTNER_FAILED);
		sim_run(s);
		s->o.no_hv = false;
		sim_attach_hv(s);
	}
	sim_advance(s, 3 * SIM_S);
	sim_ready(s);
	sim_make_id(id, 77);
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
	r.core = !o.no_hv;
	if (r.core) {
		sim_ready(r.s);
		if (mode == 1) {
			uint8_t id[OVMC_HMC_ID_LEN];

			sim_make_id(id, 1);
			r.f[0] = sim_open_session(r.s, id);
		}
	} else {
		sim_run(r.s);
		ovmc_vmc_hv_register(r.s->vmc);
	}
	for (unsigned i = 0; i < MAX_OPS && in.n; i++) {
		uint8_t op = fuzz_u8(&in);

		switch (op % 12) {
		case 0:
		case 1:
		case 2:
			inject(&r, &in, op % 3);
			break;
		case 3:
			sim_run(r.s);
			break;
		case 4:
			r.s->hold_hv = r.core && !r.s->hold_hv;
			break;
		case 5:
		case 6:
		case 7:
		case 8:
			file_op(&r, &in, (uint8_t)(fuzz_u8(&in) % 6));
			break;
		case 9:
			sim_advance(r.s, (uint64_t)fuzz_u8(&in) * 10 * SIM_MS);
			break;
		case 10:
			reset_channel(&r, fuzz_u8(&in));
			break;
		default:
			file_op(&r, &in, 5);
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
