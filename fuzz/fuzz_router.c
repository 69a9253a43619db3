// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The router backend's parser: every message the input holds goes to the
 * router on an open session, either straight to the backend or through
 * the device file (driver, CRQ, hypervisor core), and its header through
 * the header codec. Responses are read as they come. Afterwards a new
 * session opens the router (exchange ops) and an echo comes back GOOD.
 */
#include "fuzz.h"

#include "harness.h"
#include "sim.h"

#include <openvmc/backend.h>
#include <openvmc/router.h>

#include <poll.h>
#include <stdlib.h>

#define MAX_MSGS 64

static void backend_free_cb(void *arg)
{
	ovmc_backend_free(arg);
	free(arg);
}

static void drain(struct sim *s, struct sim_file *f)
{
	uint8_t buf[4096];

	sim_run(s);
	while (sim_poll(s, f) & POLLIN) {
		ssize_t n = sim_read(s, f, buf, sizeof(buf));
		struct ovmc_router_hdr h;

		FUZZ_CHECK(n > 0);
		/* What the router sends is well formed. */
		FUZZ_CHECK(ovmc_router_hdr_decode(buf, (size_t)n, &h) == 0);
		FUZZ_CHECK(h.flags & OVMC_ROUTER_FLAG_RESPONSE);
		sim_run(s);
	}
}

/* A request, and its response: the return code. */
static uint16_t call(struct sim *s, struct sim_file *f, uint16_t opcode, uint32_t token,
		     const char *data)
{
	uint8_t msg[OVMC_ROUTER_HDR_LEN + 64], buf[4096];
	size_t dlen = strlen(data);
	struct ovmc_router_hdr h;
	ssize_t n;

	ovmc_router_hdr_init(&h, OVMC_ROUTER_TARGET_ROUTER, opcode, token,
			     OVMC_ROUTER_FLAG_RESPONSE_EXPECTED, (uint32_t)dlen);
	FUZZ_CHECK(ovmc_router_hdr_encode(&h, msg) == 0);
	memcpy(msg + OVMC_ROUTER_HDR_LEN, data, dlen);
	FUZZ_CHECK(sim_write(s, f, msg, OVMC_ROUTER_HDR_LEN + dlen) ==
		   (ssize_t)(OVMC_ROUTER_HDR_LEN + dlen));
	FUZZ_CHECK(sim_wait(s, f, POLLIN, 5 * SIM_S));
	n = sim_read(s, f, buf, sizeof(buf));
	FUZZ_CHECK(n >= (ssize_t)OVMC_ROUTER_HDR_LEN);
	FUZZ_CHECK(ovmc_router_hdr_decode(buf, (size_t)n, &h) == 0);
	FUZZ_CHECK(h.token == token);
	if (h.rc == OVMC_ROUTER_RC_GOOD && opcode == OVMC_ROUTER_OP_ECHO)
		FUZZ_CHECK(h.data_len == dlen &&
			   memcmp(buf + OVMC_ROUTER_HDR_LEN, data, dlen) == 0);
	return h.rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	struct ovmc_backend *b = calloc(1, sizeof(*b));
	struct ovmc_hv_session *hs;
	struct sim_opts o;
	struct sim_file *f;
	struct sim *s;
	uint8_t id[OVMC_HMC_ID_LEN];

	if (!b || ovmc_backend_new("router", NULL, b))
		fuzz_fail("router backend");
	/* Deferred before the simulation: freed after it. */
	ovmc_test_defer(backend_free_cb, b);
	sim_opts_default(&o);
	o.drv.pool_size = o.hv.pool_size = 8;
	o.backend = b->ops;
	o.backend_arg = b->arg;
	s = sim_new(&o);
	sim_ready(s);
	sim_make_id(id, 3);
	f = sim_open_session(s, id);
	for (unsigned i = 0; i < MAX_MSGS && in.n; i++) {
		uint8_t how = fuzz_u8(&in), msg[4096];
		size_t len = fuzz_u16(&in) % (sizeof(msg) + 1);
		struct ovmc_router_hdr h;

		fuzz_bytes(&in, msg, len);
		if (how & 2) {
			/* Mostly a real header: the parser's deeper paths. */
			msg[0] = OVMC_ROUTER_DESC0;
			msg[1] = OVMC_ROUTER_DESC1;
			msg[2] = OVMC_ROUTER_DESC2;
			msg[3] = OVMC_ROUTER_HDR_LEN;
			if (len >= OVMC_ROUTER_HDR_LEN && (how & 4)) {
				ovmc_put_be32(msg + OVMC_ROUTER_OFF_TOTAL_LEN, (uint32_t)len);
				ovmc_put_be32(msg + OVMC_ROUTER_OFF_DATA_LEN,
					      (uint32_t)(len - OVMC_ROUTER_HDR_LEN));
			}
		}
		if (ovmc_router_hdr_decode(msg, len, &h) == 0) {
			uint8_t hdr[OVMC_ROUTER_HDR_LEN];
			struct ovmc_router_hdr h2;

			FUZZ_CHECK(ovmc_router_hdr_encode(&h, hdr) == 0);
			/* The header alone decodes only when there is no data. */
			if (ovmc_router_hdr_decode(hdr, sizeof(hdr), &h2) == 0)
				FUZZ_CHECK(h2.total_len == h.total_len && h2.token == h.token &&
					   h2.target == h.target && h2.flags == h.flags &&
					   h2.data_len == h.data_len && h2.opcode == h.opcode &&
					   h2.rc == h.rc);
		}
		hs = ovmc_hv_session_at(s->hv, 0);
		if ((how & 1) && len > 0 && len <= sim_mtu(s))
			sim_write(s, f, msg, len);
		else if (hs)
			b->ops->message(b->arg, hs, msg, len);
		if (how & 8)
			drain(s, f);
	}
	drain(s, f);
	sim_close(s, f);
	sim_run(s);
	/* A clean session: the router opens and echoes. */
	sim_make_id(id, 4);
	f = sim_open_session(s, id);
	FUZZ_CHECK(call(s, f, OVMC_ROUTER_OP_EXCHANGE_OPS, 0x101, "") == OVMC_ROUTER_RC_GOOD);
	FUZZ_CHECK(call(s, f, OVMC_ROUTER_OP_ECHO, 0x102, "still parsing") == OVMC_ROUTER_RC_GOOD);
	sim_close(s, f);
	sim_run(s);
	fuzz_cleanup();
	return 0;
}
