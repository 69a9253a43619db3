// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Hostile peers against each core, in every state (docs/robustness.md has
 * one row per case and the reaction it must get):
 *
 *  - a scripted hostile hypervisor against the driver core: entries put
 *    into the partition's CRQ through the machine's hypervisor end;
 *  - a scripted hostile partition against the hypervisor core: entries
 *    sent with H_SEND_CRQ as the partition.
 *
 * Each case is played in each state where it is wrong. Every one must give
 * no crash (the ASan build runs these too), exactly the protocol error
 * named in the table, counted under its reason and logged once (or no
 * error where the table says so), the reaction in the table (dropped, or
 * answered, or the reset PAPR allows), and afterwards a clean session
 * that echoes. Floods check that the send queues stay within their bound.
 */
#include "harness.h"
#include "sim.h"

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>

/* ---- entries ---- */

static void hmc_entry(uint8_t e[16], uint8_t type, uint8_t status, uint8_t session,
		      uint8_t index, uint16_t id, uint32_t lioba, uint32_t len)
{
	memset(e, 0, 16);
	e[0] = OVMC_CRQ_CMD;
	e[1] = type;
	e[2] = status;
	e[4] = session;
	e[5] = index;
	ovmc_put_be16(e + 6, id);
	if (type == OVMC_MSG_SIGNAL)
		ovmc_put_be32(e + 12, len);
	else
		ovmc_put_be32(e + 12, lioba);
}

static void caps_entry(uint8_t e[16], uint8_t type, uint8_t status)
{
	struct ovmc_caps c = {.status = status, .max_hmcs = 1, .pool_size = 32, .mtu = 4096,
			      .crq_size = 256, .version = OVMC_PROTOCOL_VERSION};
	struct ovmc_entry m;

	ovmc_entry_caps(&m, type, &c);
	CHECK_EQ(ovmc_entry_encode(&m, e), 0);
}

static void init_entry(uint8_t e[16], uint8_t fmt)
{
	memset(e, 0, 16);
	e[0] = OVMC_CRQ_INIT;
	e[1] = fmt;
}

/* ---- a clean session afterwards ---- */

static void echo_once(struct sim *s, struct sim_file *f, const char *what)
{
	char buf[64];
	ssize_t n;

	n = sim_write(s, f, what, strlen(what));
	if (n != (ssize_t)strlen(what))
		FAIL("recovery write of \"%s\": %zd", what, n);
	if (!sim_wait(s, f, POLLIN, 5 * SIM_S))
		FAIL("no echo of \"%s\"", what);
	n = sim_read(s, f, buf, sizeof(buf));
	if (n != (ssize_t)strlen(what) || memcmp(buf, what, (size_t)n) != 0)
		FAIL("echo of \"%s\": %zd bytes", what, n);
}

/* Both sides ready (again), a new session opens and echoes. */
static void clean_session_works(struct sim *s, unsigned seed)
{
	uint8_t id[OVMC_HMC_ID_LEN];
	struct sim_file *f;

	s->hold_hv = s->hold_drv = false;
	sim_advance(s, 2 * SIM_S);
	sim_ready(s);
	sim_make_id(id, 900 + seed);
	f = sim_open_session(s, id);
	echo_once(s, f, "after the hostile entry");
	echo_once(s, f, "and once more");
	sim_close(s, f);
	sim_run(s);
}

/* ======== a hostile hypervisor against the driver core ======== */

enum dstate { D_CRQINIT, D_CAPS, D_READY, D_OPENING, D_OPEN, D_CLOSING, D_STATES };

static const char *const dstate_name[D_STATES] = {"crqinit", "capabilities", "ready",
						  "opening",	"open",	  "closing"};

struct dctx {
	struct sim *s;
	enum dstate st;
	struct sim_file *f; /* the file of the session, if any */
	bool hv_core;	    /* a hypervisor core serves the end (else the test holds it) */
	uint8_t session;    /* the driver's session number on index 0 */
	uint16_t pool;
	uint32_t mtu;
	uint64_t window;    /* the hypervisor's window as the driver sees it */
};

static void drain_hv_end(struct sim *s)
{
	uint8_t e[16];

	while (ovmc_vmc_hv_receive(s->vmc, e) == 1)
		;
}

static struct dctx *drv_in_state(enum dstate st)
{
	struct dctx *c = calloc(1, sizeof(*c));
	struct sim_opts o;
	struct ovmc_drv_slot_info si;
	uint8_t id[OVMC_HMC_ID_LEN], e[16];

	if (!c)
		FAIL("out of memory");
	c->st = st;
	sim_opts_default(&o);
	o.no_hv = st == D_CRQINIT || st == D_CAPS;
	c->s = sim_new(&o);
	ovmc_test_defer(free, c);
	c->pool = o.drv.pool_size;
	c->mtu = o.drv.max_mtu;
	c->window = ovmc_hv_memory_required(&o.hv);
	if (o.no_hv) {
		sim_run(c->s);
		CHECK_EQ(ovmc_drv_state(c->s->drv), OVMC_DRV_CRQINIT);
		/* The test is the hypervisor: its end is open, nobody serves it. */
		CHECK_EQ(ovmc_vmc_hv_register(c->s->vmc), OVMC_H_SUCCESS);
		if (st == D_CAPS) {
			init_entry(e, OVMC_INIT_REQUEST);
			CHECK_EQ(ovmc_vmc_hv_send(c->s->vmc, e), OVMC_H_SUCCESS);
			sim_run(c->s);
			CHECK_EQ(ovmc_drv_state(c->s->drv), OVMC_DRV_CAPABILITIES);
		}
		drain_hv_end(c->s);
		return c;
	}
	c->hv_core = true;
	sim_ready(c->s);
	sim_make_id(id, 1);
	if (st == D_OPENING) {
		c->s->hold_hv = true;
		c->f = sim_open(c->s);
		CHECK_EQ(sim_sethmcid(c->s, c->f, id), 0);
		sim_run(c->s);
	} else if (st == D_OPEN || st == D_CLOSING) {
		c->f = sim_open_session(c->s, id);
	}
	if (st == D_CLOSING) {
		c->s->hold_hv = true;
		sim_close(c->s, c->f);
		c->f = NULL;
		sim_run(c->s);
	}
	CHECK_EQ(ovmc_drv_slot_info(c->s->drv, 0, &si), 0);
	c->session = si.session;
	CHECK_EQ(si.state, st == D_READY     ? OVMC_SLOT_FREE
			   : st == D_OPENING ? OVMC_SLOT_OPENING
			   : st == D_OPEN    ? OVMC_SLOT_READY
					     : OVMC_SLOT_CLOSING);
	return c;
}

/* After the case: whatever the state, the channel comes back and works. */
static void drv_recovers(struct dctx *c, unsigned seed)
{
	struct sim *s = c->s;

	s->hold_hv = false;
	sim_run(s);
	if (!c->hv_core) {
		/* The scripted hypervisor goes; a real one takes the end. */
		ovmc_vmc_hv_free(s->vmc, OVMC_EVENT_PARTNER_FAILED);
		sim_run(s);
		sim_attach_hv(s);
		s->o.no_hv = false;
	}
	if (c->f) {
		sim_close(s, c->f);
		c->f = NULL;
	}
	clean_session_works(s, seed);
}

/* What a case expects in a state. */
struct expect {
	size_t reason; /* offsetof(struct ovmc_drv_stats, err_...), or 0: no protocol error */
	bool reset;    /* the driver resets the channel (a transport or CRQ reset) */
	uint8_t answer; /* the response type the driver must send, 0 for none */
	uint8_t answer_status;
};

#define DRV_REASON(f) offsetof(struct ovmc_drv_stats, f)

struct dcase {
	const char *name;
	/* Build the entry; return false if the case is not wrong in this state. */
	bool (*make)(const struct dctx *c, uint8_t e[16], struct expect *x);
};

static bool is_ready(const struct dctx *c)
{
	return c->st >= D_READY;
}

/* Interface messages before READY are dropped as out of state. */
static bool iface(const struct dctx *c, struct expect *x)
{
	if (is_ready(c))
		return false;
	*x = (struct expect){.reason = DRV_REASON(err_state)};
	return true;
}

static bool d_bad_header(const struct dctx *c, uint8_t e[16], struct expect *x)
{
	hmc_entry(e, OVMC_MSG_SIGNAL, 0, c->session, 0, 0, 0, 8);
	e[0] = 0x90;
	*x = (struct expect){.reason = DRV_REASON(err_decode)};
	return true;
}

static bool d_unknown_type(const struct dctx *c, uint8_t e[16], struct expect *x)
{
	hmc_entry(e, 0x77, 0, c->session, 0, 0, 0, 0);
	*x = (struct expect){.reason = DRV_REASON(err_decode)};
	return true;
}

static bool d_unknown_init(const struct dctx *c, uint8_t e[16], struct expect *x)
{
	(void)c;
	init_entry(e, 0x09);
	*x = (struct expect){.reason = DRV_REASON(err_decode)};
	return true;
}

static bool d_reserved_bytes(const struct dctx *c, uint8_t e[16], struct expect *x)
{
	hmc_entry(e, OVMC_MSG_CLOSE_RESP, 0, c->session, 0, 0, 0, 0);
	e[3] = 0x5a;
	*x = (struct expect){.reason = DRV_REASON(err_decode)};
	return true;
}

static bool d_partition_type(const struct dctx *c, uint8_t e[16], struct expect *x)
{
	hmc_entry(e, OVMC_MSG_OPEN, 0, c->session, 0, 0, 0, 0);
	*x = (struct expect){.reason = DRV_REASON(err_direction)};
	return true;
}

static bool d_caps_twice(const struct dctx *c, uint8_t e[16], struct expect *x)
{
	if (c->st == D_CAPS)
		return false; /* the one it waits for */
	caps_entry(e, OVMC_MSG_CAP_RESP, OVMC_CAP_OK);
	*x = (struct expect){.reason = DRV_REASON(err_state)};
	return true;
}

static bool d_open_resp_unasked(const struct dctx *c, uint8_t e[16], struct expect *x)
{
	if (c->st == D_OPENING)
		return false;
	hmc_entry(e, OVMC_MSG_OPEN_RESP, 0, c->session, 0, 0, 0, 0);
	if (iface(c, x))
		return true;
	/* Closing: an open answered after its close is ignored by design. */
	*x = (struct expect){.reason = c->st == D_CLOSING ? 0 : DRV_REASON(err_state)};
	return true;
}

static bool d_open_resp_bad_index(const struct dctx *c, uint8_t e[16], struct expect *x)
{
	hmc_entry(e, OVMC_MSG_OPEN_RESP, 0, c->session, 200, 0, 0, 0);
	if (iface(c, x))
		return true;
	/* Linux resets the CRQ on a response for an unknown index. */
	*x = (struct expect){.reason = DRV_REASON(err_session), .reset = true};
	return true;
}

static bool d_close_resp_unasked(const struct dctx *c, uint8_t e[16], struct expect *x)
{
	if (c->st == D_CLOSING)
		return false;
	hmc_entry(e, OVMC_MSG_CLOSE_RESP, 0, c->session, 0, 0, 0, 0);
	if (iface(c, x))
		return true;
	*x = (struct expect){.reason = DRV_REASON(err_state)};
	return true;
}

static bool d_close_resp_failed(const struct dctx *c, uint8_t e[16], struct expect *x)
{
	hmc_entry(e, OVMC_MSG_CLOSE_RESP, 1, c->session, 0, 0, 0, 0);
	if (iface(c, x))
		return true;
	*x = (struct expect){.reset = true};
	return true;
}

static bool d_wrong_session(const struct dctx *c, uint8_t e[16], struct expect *x)
{
	hmc_entry(e, OVMC_MSG_SIGNAL, 0, (uint8_t)(c->session + 7), 0, (uint16_t)(c->pool - 1),
		  0, 8);
	if (iface(c, x))
		return true;
	*x = (struct expect){.reason = DRV_REASON(err_session)};
	return true;
}

static bool d_signal_bad_index(const struct dctx *c, uint8_t e[16], struct expect *x)
{
	hmc_entry(e, OVMC_MSG_SIGNAL, 0, c->session, 9, 0, 0, 8);
	if (iface(c, x))
		return true;
	*x = (struct expect){.reason = DRV_REASON(err_session)};
	return true;
}

/* On a slot without an open session the state check comes first. */
static bool signal_case(const struct dctx *c, uint8_t e[16], struct expect *x, uint16_t id,
			uint32_t len, size_t reason)
{
	hmc_entry(e, OVMC_MSG_SIGNAL, 0, c->session, 0, id, 0, len);
	if (iface(c, x))
		return true;
	*x = (struct expect){.reason = c->st == D_READY ? DRV_REASON(err_state) : reason};
	return true;
}

static bool d_signal_id_out_of_range(const struct dctx *c, uint8_t e[16], struct expect *x)
{
	return signal_case(c, e, x, c->pool, 8, DRV_REASON(err_buffer));
}

static bool d_signal_id_invalid(const struct dctx *c, uint8_t e[16], struct expect *x)
{
	return signal_case(c, e, x, OVMC_INVALID_BUFFER_ID, 8, DRV_REASON(err_buffer));
}

static bool d_signal_partition_buffer(const struct dctx *c, uint8_t e[16], struct expect *x)
{
	/* Buffer 0 is the partition's in every state (its first buffer). */
	return signal_case(c, e, x, 0, 8, DRV_REASON(err_buffer));
}

static bool d_signal_len_0(const struct dctx *c, uint8_t e[16], struct expect *x)
{
	if (c->st == D_OPENING)
		return false; /* the hypervisor owns no buffer yet */
	return signal_case(c, e, x, (uint16_t)(c->pool - 1), 0,
			   c->st == D_OPEN || c->st == D_CLOSING ? DRV_REASON(err_length)
								 : DRV_REASON(err_buffer));
}

static bool d_signal_len_over_mtu(const struct dctx *c, uint8_t e[16], struct expect *x)
{
	if (c->st == D_OPENING)
		return false;
	return signal_case(c, e, x, (uint16_t)(c->pool - 1), c->mtu + 1,
			   c->st == D_OPEN || c->st == D_CLOSING ? DRV_REASON(err_length)
								 : DRV_REASON(err_buffer));
}

static bool add_buf_case(const struct dctx *c, uint8_t e[16], struct expect *x, uint8_t session,
			 uint8_t index, uint16_t id, uint32_t lioba, size_t reason, uint8_t status)
{
	hmc_entry(e, OVMC_MSG_ADD_BUF, 0, session, index, id, lioba, 0);
	if (iface(c, x))
		return true;
	*x = (struct expect){.reason = reason, .answer = OVMC_MSG_ADD_BUF_RESP,
			     .answer_status = status};
	return true;
}

static bool d_add_buf_out_of_range(const struct dctx *c, uint8_t e[16], struct expect *x)
{
	return add_buf_case(c, e, x, c->session, 0, c->pool, 0, DRV_REASON(err_buffer),
			    OVMC_BUF_INVALID_BUFFER_ID);
}

static bool d_add_buf_twice(const struct dctx *c, uint8_t e[16], struct expect *x)
{
	/* Buffer 0 exists in every ready state. */
	return add_buf_case(c, e, x, c->session, 0, 0, 0, DRV_REASON(err_buffer),
			    OVMC_BUF_INVALID_BUFFER_ID);
}

static bool d_add_buf_outside_window(const struct dctx *c, uint8_t e[16], struct expect *x)
{
	if (c->st == D_OPEN || c->st == D_CLOSING)
		return false; /* no absent id left: covered by add_buf_twice */
	return add_buf_case(c, e, x, c->session, 0, 5, (uint32_t)c->window - 16,
			    DRV_REASON(err_buffer), OVMC_BUF_INVALID_BUFFER_ID);
}

static bool d_add_buf_wrapping(const struct dctx *c, uint8_t e[16], struct expect *x)
{
	if (c->st == D_OPEN || c->st == D_CLOSING)
		return false;
	return add_buf_case(c, e, x, c->session, 0, 6, 0xFFFFFFF0u, DRV_REASON(err_buffer),
			    OVMC_BUF_INVALID_BUFFER_ID);
}

static bool d_add_buf_bad_index(const struct dctx *c, uint8_t e[16], struct expect *x)
{
	return add_buf_case(c, e, x, c->session, 200, 1, 0, DRV_REASON(err_session),
			    OVMC_BUF_INVALID_HMC_INDEX);
}

static bool d_add_buf_wrong_session(const struct dctx *c, uint8_t e[16], struct expect *x)
{
	return add_buf_case(c, e, x, (uint8_t)(c->session + 7), 0, 1, 0, DRV_REASON(err_session),
			    OVMC_BUF_CLOSED_HMC);
}

static bool d_rem_buf_last(const struct dctx *c, uint8_t e[16], struct expect *x)
{
	/* With a session open the partition has spares: a legal removal. */
	if (c->st == D_OPEN || c->st == D_CLOSING)
		return false;
	hmc_entry(e, OVMC_MSG_REM_BUF, 0, c->session, 0, 0, 0, 0);
	if (iface(c, x))
		return true;
	*x = (struct expect){.answer = OVMC_MSG_REM_BUF_RESP, .answer_status = OVMC_BUF_NO_BUFFER};
	return true;
}

static bool d_rem_buf_bad_index(const struct dctx *c, uint8_t e[16], struct expect *x)
{
	hmc_entry(e, OVMC_MSG_REM_BUF, 0, c->session, 200, 0, 0, 0);
	if (iface(c, x))
		return true;
	*x = (struct expect){.reason = DRV_REASON(err_session), .answer = OVMC_MSG_REM_BUF_RESP,
			     .answer_status = OVMC_BUF_INVALID_HMC_INDEX};
	return true;
}

static bool d_init_request_again(const struct dctx *c, uint8_t e[16], struct expect *x)
{
	(void)c;
	init_entry(e, OVMC_INIT_REQUEST);
	/* A hypervisor restart the driver did not hear of: a reset, no error. */
	*x = (struct expect){.reset = c->st != D_CRQINIT};
	return true;
}

static const struct dcase dcases[] = {
	{"bad_header", d_bad_header},
	{"unknown_type", d_unknown_type},
	{"unknown_init_format", d_unknown_init},
	{"reserved_bytes_set", d_reserved_bytes},
	{"partition_only_type", d_partition_type},
	{"capabilities_twice", d_caps_twice},
	{"open_response_unasked", d_open_resp_unasked},
	{"open_response_bad_index", d_open_resp_bad_index},
	{"close_response_unasked", d_close_resp_unasked},
	{"close_response_failed", d_close_resp_failed},
	{"signal_wrong_session", d_wrong_session},
	{"signal_bad_index", d_signal_bad_index},
	{"signal_buffer_out_of_range", d_signal_id_out_of_range},
	{"signal_buffer_invalid_id", d_signal_id_invalid},
	{"signal_buffer_the_partition_owns", d_signal_partition_buffer},
	{"signal_length_0", d_signal_len_0},
	{"signal_length_above_mtu", d_signal_len_over_mtu},
	{"add_buffer_out_of_range", d_add_buf_out_of_range},
	{"add_buffer_twice", d_add_buf_twice},
	{"add_buffer_outside_the_window", d_add_buf_outside_window},
	{"add_buffer_wrapping_the_window", d_add_buf_wrapping},
	{"add_buffer_bad_index", d_add_buf_bad_index},
	{"add_buffer_wrong_session", d_add_buf_wrong_session},
	{"remove_last_buffer", d_rem_buf_last},
	{"remove_buffer_bad_index", d_rem_buf_bad_index},
	{"init_request_while_up", d_init_request_again},
};

static uint64_t stat_at(const struct ovmc_drv_stats *st, size_t off)
{
	uint64_t v;

	memcpy(&v, (const char *)st + off, sizeof(v));
	return v;
}

/* Returns whether the case is wrong in that state (and was played). */
static bool run_dcase(const struct dcase *dc, enum dstate st, unsigned seed)
{
	struct dctx *c = drv_in_state(st);
	struct sim *s = c->s;
	struct ovmc_drv_stats before, after;
	struct expect x;
	uint8_t e[16];
	size_t answers_before;
	unsigned proto_lines;

	if (!dc->make(c, e, &x))
		return false;
	ovmc_drv_stats(s->drv, &before);
	proto_lines = s->drv_proto_lines;
	answers_before = x.answer ? sim_count(&s->to_hv, OVMC_CRQ_CMD, x.answer) : 0;
	/* The hypervisor core must not see what the test sends in its name. */
	s->hold_hv = true;
	if (ovmc_vmc_hv_send(s->vmc, e) != OVMC_H_SUCCESS)
		FAIL("%s in %s: the machine refused the entry", dc->name, dstate_name[st]);
	sim_run(s);
	ovmc_drv_stats(s->drv, &after);
	if (after.protocol_errors != before.protocol_errors + (x.reason ? 1 : 0))
		FAIL("%s in %s: protocol errors %llu -> %llu", dc->name, dstate_name[st],
		     (unsigned long long)before.protocol_errors,
		     (unsigned long long)after.protocol_errors);
	if (x.reason && stat_at(&after, x.reason) != stat_at(&before, x.reason) + 1)
		FAIL("%s in %s: not counted under the expected reason", dc->name, dstate_name[st]);
	if (s->drv_proto_lines != proto_lines + (x.reason ? 1u : 0u))
		FAIL("%s in %s: %u protocol error lines logged", dc->name, dstate_name[st],
		     s->drv_proto_lines - proto_lines);
	if (after.resets != before.resets + (x.reset ? 1 : 0))
		FAIL("%s in %s: %llu resets, expected %d", dc->name, dstate_name[st],
		     (unsigned long long)(after.resets - before.resets), x.reset);
	if (x.answer) {
		const uint8_t *a = sim_last(&s->to_hv, OVMC_CRQ_CMD, x.answer);

		if (sim_count(&s->to_hv, OVMC_CRQ_CMD, x.answer) != answers_before + 1 || !a)
			FAIL("%s in %s: no %s", dc->name, dstate_name[st],
			     ovmc_msg_type_name(x.answer));
		CHECK_EQ(a[2], x.answer_status);
	}
	if (!x.reset && is_ready(c) && ovmc_drv_state(s->drv) != OVMC_DRV_READY)
		FAIL("%s in %s: the driver left ready", dc->name, dstate_name[st]);
	drv_recovers(c, seed);
	return true;
}

/* Every case in every state where it is wrong. */
static void dcase_everywhere(unsigned idx, const char *name)
{
	unsigned played = 0;

	CHECK(strcmp(dcases[idx].name, name) == 0);
	for (int st = 0; st < D_STATES; st++)
		played += run_dcase(&dcases[idx], (enum dstate)st, idx * 10 + (unsigned)st);
	CHECK(played >= 3);
}

TEST(hostile_hv_bad_header_in_every_state)
{
	dcase_everywhere(0, "bad_header");
}

TEST(hostile_hv_unknown_type_in_every_state)
{
	dcase_everywhere(1, "unknown_type");
}

TEST(hostile_hv_unknown_init_format_in_every_state)
{
	dcase_everywhere(2, "unknown_init_format");
}

TEST(hostile_hv_reserved_bytes_set_in_every_state)
{
	dcase_everywhere(3, "reserved_bytes_set");
}

TEST(hostile_hv_partition_only_type_in_every_state)
{
	dcase_everywhere(4, "partition_only_type");
}

TEST(hostile_hv_capabilities_twice_in_every_state)
{
	dcase_everywhere(5, "capabilities_twice");
}

TEST(hostile_hv_open_response_unasked_in_every_state)
{
	dcase_everywhere(6, "open_response_unasked");
}

TEST(hostile_hv_open_response_bad_index_in_every_state)
{
	dcase_everywhere(7, "open_response_bad_index");
}

TEST(hostile_hv_close_response_unasked_in_every_state)
{
	dcase_everywhere(8, "close_response_unasked");
}

TEST(hostile_hv_close_response_failed_in_every_state)
{
	dcase_everywhere(9, "close_response_failed");
}

TEST(hostile_hv_signal_wrong_session_in_every_state)
{
	dcase_everywhere(10, "signal_wrong_session");
}

TEST(hostile_hv_signal_bad_index_in_every_state)
{
	dcase_everywhere(11, "signal_bad_index");
}

TEST(hostile_hv_signal_buffer_out_of_range_in_every_state)
{
	dcase_everywhere(12, "signal_buffer_out_of_range");
}

TEST(hostile_hv_signal_buffer_invalid_id_in_every_state)
{
	dcase_everywhere(13, "signal_buffer_invalid_id");
}

TEST(hostile_hv_signal_buffer_the_partition_owns_in_every_state)
{
	dcase_everywhere(14, "signal_buffer_the_partition_owns");
}

TEST(hostile_hv_signal_length_0_in_every_state)
{
	dcase_everywhere(15, "signal_length_0");
}

TEST(hostile_hv_signal_length_above_mtu_in_every_state)
{
	dcase_everywhere(16, "signal_length_above_mtu");
}

TEST(hostile_hv_add_buffer_out_of_range_in_every_state)
{
	dcase_everywhere(17, "add_buffer_out_of_range");
}

TEST(hostile_hv_add_buffer_twice_in_every_state)
{
	dcase_everywhere(18, "add_buffer_twice");
}

TEST(hostile_hv_add_buffer_outside_the_window_in_every_state)
{
	dcase_everywhere(19, "add_buffer_outside_the_window");
}

TEST(hostile_hv_add_buffer_wrapping_the_window_in_every_state)
{
	dcase_everywhere(20, "add_buffer_wrapping_the_window");
}

TEST(hostile_hv_add_buffer_bad_index_in_every_state)
{
	dcase_everywhere(21, "add_buffer_bad_index");
}

TEST(hostile_hv_add_buffer_wrong_session_in_every_state)
{
	dcase_everywhere(22, "add_buffer_wrong_session");
}

TEST(hostile_hv_remove_last_buffer_in_every_state)
{
	dcase_everywhere(23, "remove_last_buffer");
}

TEST(hostile_hv_remove_buffer_bad_index_in_every_state)
{
	dcase_everywhere(24, "remove_buffer_bad_index");
}

TEST(hostile_hv_init_request_while_up_in_every_state)
{
	dcase_everywhere(25, "init_request_while_up");
}


TEST(hostile_hv_cases_are_all_registered)
{
	CHECK_EQ(sizeof(dcases) / sizeof(dcases[0]), 26);
}

TEST(hostile_hv_transport_events_in_every_state_reset_cleanly)
{
	static const uint8_t events[] = {OVMC_EVENT_PARTNER_FAILED,
					 OVMC_EVENT_PARTNER_DEREGISTERED};

	for (int st = 0; st < D_STATES; st++) {
		for (unsigned i = 0; i < sizeof(events); i++) {
			struct dctx *c = drv_in_state((enum dstate)st);
			struct ovmc_drv_stats before, after;

			ovmc_drv_stats(c->s->drv, &before);
			if (c->hv_core) {
				c->s->hold_hv = false;
				ovmc_hv_restart(c->s->hv, events[i], c->s->now);
			} else {
				ovmc_vmc_hv_free(c->s->vmc, events[i]);
				CHECK_EQ(ovmc_vmc_hv_register(c->s->vmc), OVMC_H_SUCCESS);
			}
			sim_run(c->s);
			ovmc_drv_stats(c->s->drv, &after);
			CHECK_EQ(after.protocol_errors, before.protocol_errors);
			CHECK_EQ(after.resets, before.resets + 1);
			drv_recovers(c, 500 + (unsigned)st * 2 + i);
		}
	}
}

/* More entries than the partition's queue holds, none read meanwhile. */
TEST(hostile_hv_floods_beyond_the_queue_are_dropped_by_the_platform)
{
	for (int st = 0; st < D_STATES; st++) {
		struct dctx *c = drv_in_state((enum dstate)st);
		struct sim *s = c->s;
		struct ovmc_drv_stats before, after;
		unsigned sent = 0, dropped = 0;
		uint8_t e[16];

		ovmc_drv_stats(s->drv, &before);
		s->hold_hv = s->hold_drv = true;
		d_bad_header(c, e, &(struct expect){0});
		for (unsigned i = 0; i < 1000; i++) {
			long rc = ovmc_vmc_hv_send(s->vmc, e);

			if (rc == OVMC_H_SUCCESS)
				sent++;
			else if (rc == OVMC_H_DROPPED)
				dropped++;
			else
				FAIL("H_SEND of the flood: %ld", rc);
		}
		CHECK(sent <= 256 && dropped >= 1000 - 256);
		s->hold_drv = false;
		sim_run(s);
		ovmc_drv_stats(s->drv, &after);
		CHECK_EQ(after.err_decode, before.err_decode + sent);
		CHECK_EQ(after.resets, before.resets);
		drv_recovers(c, 600 + (unsigned)st);
	}
}

/*
 * The flood: a hypervisor that asks (Add Buffer for a bad index)
 * and never reads its queue. The answers meet the send bound: one counted
 * protocol error, the CRQ reset, memory bounded, and the channel back once
 * the hypervisor reads again.
 */
TEST(hostile_hv_that_never_reads_meets_the_send_bound_and_a_crq_reset)
{
	for (int st = D_READY; st < D_STATES; st++) {
		struct dctx *c = drv_in_state((enum dstate)st);
		struct sim *s = c->s;
		struct ovmc_drv_stats before, after;
		struct ovmc_drv_config dc;
		unsigned bound;
		uint8_t e[16];

		ovmc_drv_config_default(&dc);
		bound = dc.max_hmcs * (2u * dc.pool_size + 4u) + 64u;
		ovmc_drv_stats(s->drv, &before);
		s->hold_hv = true;
		hmc_entry(e, OVMC_MSG_ADD_BUF, 0, 0, 200, 1, 0, 0);
		for (unsigned i = 0; i < 200000; i++) {
			long rc = ovmc_vmc_hv_send(s->vmc, e);

			if (rc == OVMC_H_DROPPED) {
				sim_run(s);
				rc = ovmc_vmc_hv_send(s->vmc, e);
			}
			CHECK(rc == OVMC_H_SUCCESS || rc == OVMC_H_DROPPED);
			if (i % 256 == 255)
				sim_run(s);
		}
		sim_run(s);
		ovmc_drv_stats(s->drv, &after);
		CHECK_EQ(after.err_flood, before.err_flood + 1);
		CHECK(after.send_queue_peak <= bound);
		CHECK(after.resets >= before.resets + 1);
		/* After the reset the entries are out of state: no more answers. */
		CHECK(after.err_state > before.err_state);
		drv_recovers(c, 700 + (unsigned)st);
		ovmc_drv_stats(s->drv, &after);
		CHECK_EQ(after.err_flood, before.err_flood + 1);
	}
}

/* ======== a hostile partition against the hypervisor core ======== */

enum hstate { H_WAIT_INIT, H_LINK_UP, H_READY, H_OPEN, H_STATES };

static const char *const hstate_name[H_STATES] = {"wait-init", "link-up", "ready", "open"};

struct hctx {
	struct sim *s;
	enum hstate st;
	struct sim_file *f;
	uint8_t session; /* the hypervisor's session number on index 0 (or a guess) */
	uint16_t pool;
	uint32_t mtu;
	uint16_t part_id; /* a buffer the partition owns */
	uint16_t hv_id;	  /* a buffer the hypervisor owns */
	uint64_t unit;
};

static long send_as_partition(struct hctx *c, const uint8_t e[16])
{
	uint64_t hi, lo;

	ovmc_entry_to_words(e, &hi, &lo);
	return ovmc_h_send_crq(c->s->plat, c->unit, hi, lo);
}

static struct hctx *hv_in_state(enum hstate st)
{
	struct hctx *c = calloc(1, sizeof(*c));
	struct ovmc_vmc_node node;
	struct sim_opts o;
	uint8_t id[OVMC_HMC_ID_LEN];

	if (!c)
		FAIL("out of memory");
	ovmc_test_defer(free, c);
	c->st = st;
	sim_opts_default(&o);
	o.no_hv = st < H_READY;
	c->s = sim_new(&o);
	c->pool = o.hv.pool_size;
	c->mtu = o.hv.mtu;
	CHECK_EQ(ovmc_platform_vmc_node(c->s->plat, &node), 0);
	c->unit = node.unit_address;
	/* The pool is split: the hypervisor keeps the highest ids (hv.c). */
	c->part_id = 1;
	c->hv_id = (uint16_t)(c->pool - 1);
	c->session = 1;
	if (st < H_READY) {
		/* The driver registered its CRQ and sent INIT (nobody heard it);
		 * the test speaks for the partition from now on. */
		sim_run(c->s);
		c->s->hold_drv = true;
		c->s->o.no_hv = false;
		sim_attach_hv(c->s);
		sim_run(c->s);
		CHECK_EQ(ovmc_hv_state(c->s->hv), OVMC_HV_WAIT_INIT);
		if (st == H_LINK_UP) {
			uint8_t e[16];

			init_entry(e, OVMC_INIT_COMPLETE);
			CHECK_EQ(send_as_partition(c, e), OVMC_H_SUCCESS);
			sim_run(c->s);
			CHECK_EQ(ovmc_hv_state(c->s->hv), OVMC_HV_LINK_UP);
		}
		return c;
	}
	sim_ready(c->s);
	if (st == H_OPEN) {
		sim_make_id(id, 2);
		c->f = sim_open_session(c->s, id);
		c->session = ovmc_hv_session_number(sim_session(c->s, 0));
	}
	return c;
}

static void hv_recovers(struct hctx *c, bool restart, unsigned seed)
{
	struct sim *s = c->s;

	s->hold_drv = false;
	if (restart) {
		/* The partition side is out of step by the test's doing: start over. */
		ovmc_hv_restart(s->hv, OVMC_EVENT_PARTNER_FAILED, s->now);
	}
	sim_run(s);
	if (c->f) {
		sim_close(s, c->f);
		c->f = NULL;
	}
	clean_session_works(s, seed);
}

struct hexpect {
	size_t reason; /* offsetof(struct ovmc_hv_stats, err_...), 0: none */
	long platform_rc; /* what H_SEND_CRQ answers (H_SUCCESS, or the refusal) */
	bool sessions_reset; /* the hypervisor closes its sessions (no error) */
	uint8_t answer;
	uint8_t answer_status;
	bool partner_resync; /* the partition (driver) must start over after it */
};

#define HV_REASON(f) offsetof(struct ovmc_hv_stats, f)

struct hcase {
	const char *name;
	bool (*make)(const struct hctx *c, uint8_t e[16], struct hexpect *x);
};

static bool h_iface(const struct hctx *c, struct hexpect *x)
{
	if (c->st >= H_READY)
		return false;
	*x = (struct hexpect){.reason = HV_REASON(err_state)};
	return true;
}

static bool h_bad_header(const struct hctx *c, uint8_t e[16], struct hexpect *x)
{
	hmc_entry(e, OVMC_MSG_SIGNAL, 0, c->session, 0, c->part_id, 0, 8);
	e[0] = 0x90;
	*x = (struct hexpect){.reason = HV_REASON(err_decode)};
	return true;
}

static bool h_transport_header(const struct hctx *c, uint8_t e[16], struct hexpect *x)
{
	(void)c;
	memset(e, 0, 16);
	e[0] = OVMC_CRQ_TRANSPORT;
	e[1] = OVMC_EVENT_PARTNER_FAILED;
	/* Only the platform writes transport events. */
	*x = (struct hexpect){.platform_rc = OVMC_H_PARAMETER};
	return true;
}

static bool h_free_header(const struct hctx *c, uint8_t e[16], struct hexpect *x)
{
	hmc_entry(e, OVMC_MSG_CLOSE, 0, c->session, 0, 0, 0, 0);
	e[0] = OVMC_CRQ_FREE;
	*x = (struct hexpect){.platform_rc = OVMC_H_PARAMETER};
	return true;
}

static bool h_unknown_type(const struct hctx *c, uint8_t e[16], struct hexpect *x)
{
	hmc_entry(e, 0x77, 0, c->session, 0, 0, 0, 0);
	*x = (struct hexpect){.reason = HV_REASON(err_decode)};
	return true;
}

static bool h_unknown_init(const struct hctx *c, uint8_t e[16], struct hexpect *x)
{
	(void)c;
	init_entry(e, 0x09);
	*x = (struct hexpect){.reason = HV_REASON(err_decode)};
	return true;
}

static bool hv_only(const struct hctx *c, uint8_t e[16], struct hexpect *x, uint8_t type)
{
	if (type == OVMC_MSG_CAP_RESP)
		caps_entry(e, type, OVMC_CAP_OK);
	else
		hmc_entry(e, type, 0, c->session, 0, 0, 0, 0);
	*x = (struct hexpect){.reason = HV_REASON(err_direction)};
	return true;
}

static bool h_cap_resp(const struct hctx *c, uint8_t e[16], struct hexpect *x)
{
	return hv_only(c, e, x, OVMC_MSG_CAP_RESP);
}

static bool h_open_resp(const struct hctx *c, uint8_t e[16], struct hexpect *x)
{
	return hv_only(c, e, x, OVMC_MSG_OPEN_RESP);
}

static bool h_close_resp(const struct hctx *c, uint8_t e[16], struct hexpect *x)
{
	return hv_only(c, e, x, OVMC_MSG_CLOSE_RESP);
}

static bool h_add_buf(const struct hctx *c, uint8_t e[16], struct hexpect *x)
{
	return hv_only(c, e, x, OVMC_MSG_ADD_BUF);
}

static bool h_rem_buf(const struct hctx *c, uint8_t e[16], struct hexpect *x)
{
	return hv_only(c, e, x, OVMC_MSG_REM_BUF);
}

static bool h_caps_twice(const struct hctx *c, uint8_t e[16], struct hexpect *x)
{
	if (c->st < H_READY)
		return false; /* the first one */
	caps_entry(e, OVMC_MSG_CAP, 0);
	/* Renegotiation: the sessions go, the answer comes; the driver that
	 * did not send it is out of step and starts over. */
	*x = (struct hexpect){.sessions_reset = c->st == H_OPEN, .answer = OVMC_MSG_CAP_RESP,
			      .partner_resync = true};
	return true;
}

static bool h_open_bad_index(const struct hctx *c, uint8_t e[16], struct hexpect *x)
{
	hmc_entry(e, OVMC_MSG_OPEN, 0, 2, 7, c->part_id, 0, 0);
	if (h_iface(c, x))
		return true;
	*x = (struct hexpect){.reason = HV_REASON(err_session)};
	return true;
}

static bool h_open_session_0(const struct hctx *c, uint8_t e[16], struct hexpect *x)
{
	hmc_entry(e, OVMC_MSG_OPEN, 0, 0, 0, c->part_id, 0, 0);
	if (h_iface(c, x))
		return true;
	*x = (struct hexpect){.reason = HV_REASON(err_session), .answer = OVMC_MSG_OPEN_RESP,
			      .answer_status = 1, .sessions_reset = c->st == H_OPEN,
			      .partner_resync = true};
	return true;
}

static bool h_open_unowned_buffer(const struct hctx *c, uint8_t e[16], struct hexpect *x)
{
	hmc_entry(e, OVMC_MSG_OPEN, 0, (uint8_t)(c->session + 1), 0, c->hv_id, 0, 0);
	if (h_iface(c, x))
		return true;
	*x = (struct hexpect){.reason = c->st == H_OPEN ? HV_REASON(err_state)
							: HV_REASON(err_buffer),
			      .answer = OVMC_MSG_OPEN_RESP, .answer_status = 1,
			      .sessions_reset = c->st == H_OPEN, .partner_resync = true};
	return true;
}

static bool h_close_wrong_session(const struct hctx *c, uint8_t e[16], struct hexpect *x)
{
	if (c->st != H_OPEN && c->st >= H_READY)
		return false; /* none open: close_none_open */
	hmc_entry(e, OVMC_MSG_CLOSE, 0, (uint8_t)(c->session + 3), 0, 0, 0, 0);
	if (h_iface(c, x))
		return true;
	*x = (struct hexpect){.reason = HV_REASON(err_session), .answer = OVMC_MSG_CLOSE_RESP,
			      .answer_status = 1};
	return true;
}

static bool h_close_none_open(const struct hctx *c, uint8_t e[16], struct hexpect *x)
{
	if (c->st == H_OPEN)
		return false;
	hmc_entry(e, OVMC_MSG_CLOSE, 0, 1, 0, 0, 0, 0);
	if (h_iface(c, x))
		return true;
	*x = (struct hexpect){.reason = HV_REASON(err_session), .answer = OVMC_MSG_CLOSE_RESP,
			      .answer_status = 0, .partner_resync = true};
	return true;
}

static bool h_add_buf_resp_out_of_range(const struct hctx *c, uint8_t e[16], struct hexpect *x)
{
	hmc_entry(e, OVMC_MSG_ADD_BUF_RESP, 0, c->session, 0, c->pool, 0, 0);
	if (h_iface(c, x))
		return true;
	*x = (struct hexpect){.reason = HV_REASON(err_buffer)};
	return true;
}

static bool h_add_buf_resp_bad_index(const struct hctx *c, uint8_t e[16], struct hexpect *x)
{
	hmc_entry(e, OVMC_MSG_ADD_BUF_RESP, 0, c->session, 9, 0, 0, 0);
	if (h_iface(c, x))
		return true;
	*x = (struct hexpect){.reason = HV_REASON(err_session)};
	return true;
}

static bool h_rem_buf_resp_unasked(const struct hctx *c, uint8_t e[16], struct hexpect *x)
{
	if (c->st != H_OPEN && c->st >= H_READY)
		return false; /* without a session: rem_buf_resp_wrong_session */
	hmc_entry(e, OVMC_MSG_REM_BUF_RESP, 0, c->session, 0, c->part_id, 0, 0);
	if (h_iface(c, x))
		return true;
	*x = (struct hexpect){.reason = HV_REASON(err_state)};
	return true;
}

static bool h_rem_buf_resp_wrong_session(const struct hctx *c, uint8_t e[16], struct hexpect *x)
{
	hmc_entry(e, OVMC_MSG_REM_BUF_RESP, 0, (uint8_t)(c->session + 5), 0, c->part_id, 0, 0);
	if (h_iface(c, x))
		return true;
	*x = (struct hexpect){.reason = HV_REASON(err_session)};
	return true;
}

static bool h_signal(const struct hctx *c, uint8_t e[16], struct hexpect *x, uint8_t session,
		     uint8_t index, uint16_t id, uint32_t len, size_t reason)
{
	hmc_entry(e, OVMC_MSG_SIGNAL, 0, session, index, id, 0, len);
	if (h_iface(c, x))
		return true;
	/* Without an open session the session check comes first. */
	*x = (struct hexpect){.reason = c->st == H_OPEN ? reason : HV_REASON(err_session),
			      .partner_resync = reason == HV_REASON(err_length)};
	return true;
}

static bool h_signal_wrong_session(const struct hctx *c, uint8_t e[16], struct hexpect *x)
{
	return h_signal(c, e, x, (uint8_t)(c->session + 9), 0, c->part_id, 8,
			HV_REASON(err_session));
}

static bool h_signal_bad_index(const struct hctx *c, uint8_t e[16], struct hexpect *x)
{
	return h_signal(c, e, x, c->session, 9, c->part_id, 8, HV_REASON(err_session));
}

static bool h_signal_out_of_range(const struct hctx *c, uint8_t e[16], struct hexpect *x)
{
	return h_signal(c, e, x, c->session, 0, c->pool, 8, HV_REASON(err_buffer));
}

static bool h_signal_hv_buffer(const struct hctx *c, uint8_t e[16], struct hexpect *x)
{
	return h_signal(c, e, x, c->session, 0, c->hv_id, 8, HV_REASON(err_buffer));
}

static bool h_signal_len_0(const struct hctx *c, uint8_t e[16], struct hexpect *x)
{
	return h_signal(c, e, x, c->session, 0, c->part_id, 0, HV_REASON(err_length));
}

static bool h_signal_len_over_mtu(const struct hctx *c, uint8_t e[16], struct hexpect *x)
{
	return h_signal(c, e, x, c->session, 0, c->part_id, c->mtu + 1, HV_REASON(err_length));
}

static const struct hcase hcases[] = {
	{"bad_header", h_bad_header},
	{"transport_header", h_transport_header},
	{"free_header", h_free_header},
	{"unknown_type", h_unknown_type},
	{"unknown_init_format", h_unknown_init},
	{"capabilities_response", h_cap_resp},
	{"open_response", h_open_resp},
	{"close_response", h_close_resp},
	{"add_buffer", h_add_buf},
	{"remove_buffer", h_rem_buf},
	{"capabilities_twice", h_caps_twice},
	{"open_bad_index", h_open_bad_index},
	{"open_session_0", h_open_session_0},
	{"open_with_a_buffer_it_does_not_own", h_open_unowned_buffer},
	{"close_wrong_session", h_close_wrong_session},
	{"close_none_open", h_close_none_open},
	{"add_buffer_response_out_of_range", h_add_buf_resp_out_of_range},
	{"add_buffer_response_bad_index", h_add_buf_resp_bad_index},
	{"remove_buffer_response_unasked", h_rem_buf_resp_unasked},
	{"remove_buffer_response_wrong_session", h_rem_buf_resp_wrong_session},
	{"signal_wrong_session", h_signal_wrong_session},
	{"signal_bad_index", h_signal_bad_index},
	{"signal_buffer_out_of_range", h_signal_out_of_range},
	{"signal_buffer_the_hypervisor_owns", h_signal_hv_buffer},
	{"signal_length_0", h_signal_len_0},
	{"signal_length_above_mtu", h_signal_len_over_mtu},
};

static uint64_t hstat_at(const struct ovmc_hv_stats *st, size_t off)
{
	uint64_t v;

	memcpy(&v, (const char *)st + off, sizeof(v));
	return v;
}

static bool run_hcase(const struct hcase *hc, enum hstate st, unsigned seed)
{
	struct hctx *c = hv_in_state(st);
	struct sim *s = c->s;
	struct ovmc_hv_stats before, after;
	struct hexpect x;
	uint8_t e[16];
	size_t answers_before;
	unsigned proto_lines, closes;
	long rc;

	if (!hc->make(c, e, &x))
		return false;
	ovmc_hv_stats(s->hv, &before);
	proto_lines = s->hv_proto_lines;
	closes = s->be.closes;
	answers_before = x.answer ? sim_count(&s->to_part, OVMC_CRQ_CMD, x.answer) : 0;
	/* The driver must not answer what the test sent in its name. */
	s->hold_drv = true;
	rc = send_as_partition(c, e);
	if (rc != x.platform_rc)
		FAIL("%s in %s: H_SEND_CRQ %ld, expected %ld", hc->name, hstate_name[st], rc,
		     x.platform_rc);
	sim_run(s);
	ovmc_hv_stats(s->hv, &after);
	if (after.protocol_errors != before.protocol_errors + (x.reason ? 1 : 0))
		FAIL("%s in %s: protocol errors %llu -> %llu", hc->name, hstate_name[st],
		     (unsigned long long)before.protocol_errors,
		     (unsigned long long)after.protocol_errors);
	if (x.reason && hstat_at(&after, x.reason) != hstat_at(&before, x.reason) + 1)
		FAIL("%s in %s: not counted under the expected reason", hc->name, hstate_name[st]);
	if (s->hv_proto_lines != proto_lines + (x.reason ? 1u : 0u))
		FAIL("%s in %s: %u protocol error lines logged", hc->name, hstate_name[st],
		     s->hv_proto_lines - proto_lines);
	if (x.answer) {
		const uint8_t *a = sim_last(&s->to_part, OVMC_CRQ_CMD, x.answer);

		if (sim_count(&s->to_part, OVMC_CRQ_CMD, x.answer) != answers_before + 1 || !a)
			FAIL("%s in %s: no %s", hc->name, hstate_name[st],
			     ovmc_msg_type_name(x.answer));
		if (x.answer != OVMC_MSG_CAP_RESP)
			CHECK_EQ(a[2], x.answer_status);
	}
	if (st == H_OPEN && !x.sessions_reset && s->be.closes != closes)
		FAIL("%s in %s: the session was closed", hc->name, hstate_name[st]);
	if (x.sessions_reset && s->be.closes != closes + 1)
		FAIL("%s in %s: the session was not closed", hc->name, hstate_name[st]);
	if (st >= H_READY && ovmc_hv_state(s->hv) != OVMC_HV_READY)
		FAIL("%s in %s: the hypervisor left ready (%s)", hc->name, hstate_name[st],
		     ovmc_hv_state_name(ovmc_hv_state(s->hv)));
	hv_recovers(c, x.partner_resync, seed);
	return true;
}

static void hcase_everywhere(unsigned idx, const char *name)
{
	unsigned played = 0;

	CHECK(strcmp(hcases[idx].name, name) == 0);
	for (int st = 0; st < H_STATES; st++)
		played += run_hcase(&hcases[idx], (enum hstate)st, idx * 10 + (unsigned)st);
	CHECK(played >= 2);
}

TEST(hostile_partition_bad_header_in_every_state)
{
	hcase_everywhere(0, "bad_header");
}

TEST(hostile_partition_transport_header_in_every_state)
{
	hcase_everywhere(1, "transport_header");
}

TEST(hostile_partition_free_header_in_every_state)
{
	hcase_everywhere(2, "free_header");
}

TEST(hostile_partition_unknown_type_in_every_state)
{
	hcase_everywhere(3, "unknown_type");
}

TEST(hostile_partition_unknown_init_format_in_every_state)
{
	hcase_everywhere(4, "unknown_init_format");
}

TEST(hostile_partition_capabilities_response_in_every_state)
{
	hcase_everywhere(5, "capabilities_response");
}

TEST(hostile_partition_open_response_in_every_state)
{
	hcase_everywhere(6, "open_response");
}

TEST(hostile_partition_close_response_in_every_state)
{
	hcase_everywhere(7, "close_response");
}

TEST(hostile_partition_add_buffer_in_every_state)
{
	hcase_everywhere(8, "add_buffer");
}

TEST(hostile_partition_remove_buffer_in_every_state)
{
	hcase_everywhere(9, "remove_buffer");
}

TEST(hostile_partition_capabilities_twice_in_every_state)
{
	hcase_everywhere(10, "capabilities_twice");
}

TEST(hostile_partition_open_bad_index_in_every_state)
{
	hcase_everywhere(11, "open_bad_index");
}

TEST(hostile_partition_open_session_0_in_every_state)
{
	hcase_everywhere(12, "open_session_0");
}

TEST(hostile_partition_open_with_a_buffer_it_does_not_own_in_every_state)
{
	hcase_everywhere(13, "open_with_a_buffer_it_does_not_own");
}

TEST(hostile_partition_close_wrong_session_in_every_state)
{
	hcase_everywhere(14, "close_wrong_session");
}

TEST(hostile_partition_close_none_open_in_every_state)
{
	hcase_everywhere(15, "close_none_open");
}

TEST(hostile_partition_add_buffer_response_out_of_range_in_every_state)
{
	hcase_everywhere(16, "add_buffer_response_out_of_range");
}

TEST(hostile_partition_add_buffer_response_bad_index_in_every_state)
{
	hcase_everywhere(17, "add_buffer_response_bad_index");
}

TEST(hostile_partition_remove_buffer_response_unasked_in_every_state)
{
	hcase_everywhere(18, "remove_buffer_response_unasked");
}

TEST(hostile_partition_remove_buffer_response_wrong_session_in_every_state)
{
	hcase_everywhere(19, "remove_buffer_response_wrong_session");
}

TEST(hostile_partition_signal_wrong_session_in_every_state)
{
	hcase_everywhere(20, "signal_wrong_session");
}

TEST(hostile_partition_signal_bad_index_in_every_state)
{
	hcase_everywhere(21, "signal_bad_index");
}

TEST(hostile_partition_signal_buffer_out_of_range_in_every_state)
{
	hcase_everywhere(22, "signal_buffer_out_of_range");
}

TEST(hostile_partition_signal_buffer_the_hypervisor_owns_in_every_state)
{
	hcase_everywhere(23, "signal_buffer_the_hypervisor_owns");
}

TEST(hostile_partition_signal_length_0_in_every_state)
{
	hcase_everywhere(24, "signal_length_0");
}

TEST(hostile_partition_signal_length_above_mtu_in_every_state)
{
	hcase_everywhere(25, "signal_length_above_mtu");
}


TEST(hostile_partition_cases_are_all_registered)
{
	CHECK_EQ(sizeof(hcases) / sizeof(hcases[0]), 26);
}

TEST(hostile_partition_floods_beyond_the_queue_are_dropped_by_the_platform)
{
	for (int st = 0; st < H_STATES; st++) {
		struct hctx *c = hv_in_state((enum hstate)st);
		struct sim *s = c->s;
		struct ovmc_hv_stats before, after;
		unsigned sent = 0;
		uint8_t e[16];

		ovmc_hv_stats(s->hv, &before);
		s->hold_hv = s->hold_drv = true;
		h_bad_header(c, e, &(struct hexpect){0});
		for (unsigned i = 0; i < 1000; i++) {
			long rc = send_as_partition(c, e);

			CHECK(rc == OVMC_H_SUCCESS || rc == OVMC_H_DROPPED);
			sent += rc == OVMC_H_SUCCESS;
		}
		CHECK(sent <= 256);
		s->hold_hv = false;
		sim_run(s);
		ovmc_hv_stats(s->hv, &after);
		CHECK_EQ(after.err_decode, before.err_decode + sent);
		hv_recovers(c, false, 800 + (unsigned)st);
	}
}

/*
 * The flood: CLOSE after CLOSE from a partition that never reads
 * its queue. Before the bound the answers piled up without limit (+8.4 MB
 * after 200,000); now: one counted protocol error, the hypervisor end
 * reset (the partition sees partner failed), the queue never above its
 * bound, and the channel back once the partition reads again.
 */
TEST(hostile_partition_that_never_reads_meets_the_send_bound_and_a_reset)
{
	for (int st = H_READY; st < H_STATES; st++) {
		struct hctx *c = hv_in_state((enum hstate)st);
		struct sim *s = c->s;
		struct ovmc_hv_stats before, after;
		struct ovmc_hv_config hc;
		unsigned bound;
		uint8_t e[16];

		ovmc_hv_config_default(&hc);
		bound = hc.max_hmcs * (2u * hc.pool_size + 4u) + hc.crq_size;
		ovmc_hv_stats(s->hv, &before);
		s->hold_drv = true;
		hmc_entry(e, OVMC_MSG_CLOSE, 0, c->session, 0, 0, 0, 0);
		for (unsigned i = 0; i < 200000; i++) {
			long rc = send_as_partition(c, e);

			if (rc == OVMC_H_DROPPED) {
				sim_run(s);
				rc = send_as_partition(c, e);
			}
			CHECK(rc == OVMC_H_SUCCESS || rc == OVMC_H_DROPPED);
		}
		sim_run(s);
		ovmc_hv_stats(s->hv, &after);
		CHECK_EQ(after.err_flood, before.err_flood + 1);
		CHECK(after.send_queue_peak <= bound);
		CHECK(after.resets >= before.resets + 1);
		hv_recovers(c, false, 900 + (unsigned)st);
		ovmc_hv_stats(s->hv, &after);
		CHECK_EQ(after.err_flood, before.err_flood + 1);
	}
}
