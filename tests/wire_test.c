// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Tests of the CRQ entry codec. The golden byte arrays and the reserved-byte
 * tables below are written from the published layouts (docs/protocol.md 1.3-1.5,
 * 4.1-4.5), not derived from the implementation, so a layout mistake in
 * wire.c cannot hide behind a matching mistake here.
 */
#include "harness.h"

#include <openvmc/wire.h>

#include <stdbool.h>
#include <stdlib.h>

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const uint8_t msg_types[] = {
	OVMC_MSG_CAP,	  OVMC_MSG_CAP_RESP,	 OVMC_MSG_OPEN,	    OVMC_MSG_OPEN_RESP,
	OVMC_MSG_CLOSE,	  OVMC_MSG_CLOSE_RESP,	 OVMC_MSG_ADD_BUF,  OVMC_MSG_ADD_BUF_RESP,
	OVMC_MSG_REM_BUF, OVMC_MSG_REM_BUF_RESP, OVMC_MSG_SIGNAL,
};

/* Reserved byte positions of each 0x80 type, from the tables of docs/protocol.md 4.2. */
static const struct {
	uint8_t type;
	uint8_t n;
	uint8_t pos[14];
} reserved_bytes[] = {
	{OVMC_MSG_CAP, 3, {2, 3, 4}},
	{OVMC_MSG_CAP_RESP, 2, {3, 4}},
	{OVMC_MSG_OPEN, 10, {2, 3, 8, 9, 10, 11, 12, 13, 14, 15}},
	{OVMC_MSG_OPEN_RESP, 9, {3, 8, 9, 10, 11, 12, 13, 14, 15}},
	{OVMC_MSG_CLOSE, 12, {2, 3, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}},
	{OVMC_MSG_CLOSE_RESP, 11, {3, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}},
	{OVMC_MSG_ADD_BUF, 5, {2, 8, 9, 10, 11}},
	{OVMC_MSG_ADD_BUF_RESP, 9, {3, 8, 9, 10, 11, 12, 13, 14, 15}},
	{OVMC_MSG_REM_BUF, 12, {2, 3, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}},
	{OVMC_MSG_REM_BUF_RESP, 9, {3, 8, 9, 10, 11, 12, 13, 14, 15}},
	{OVMC_MSG_SIGNAL, 6, {2, 3, 8, 9, 10, 11}},
};

static bool is_reserved(unsigned idx, unsigned pos)
{
	for (unsigned i = 0; i < reserved_bytes[idx].n; i++) {
		if (reserved_bytes[idx].pos[i] == pos)
			return true;
	}
	return false;
}

static bool is_caps_type(uint8_t type)
{
	return type == OVMC_MSG_CAP || type == OVMC_MSG_CAP_RESP;
}

/* A valid entry of the given 0x80 type with every payload byte zero. */
static void zero_cmd(uint8_t e[OVMC_CRQ_ENTRY_SIZE], uint8_t type)
{
	memset(e, 0, OVMC_CRQ_ENTRY_SIZE);
	e[0] = OVMC_CRQ_CMD;
	e[1] = type;
}

static void transport_entry(struct ovmc_entry *e, uint8_t code)
{
	memset(e, 0, sizeof(*e));
	e->header = OVMC_CRQ_TRANSPORT;
	e->type = code;
}

/* Field by field: the union has padding, so memcmp would compare garbage. */
static void check_same_entry(const struct ovmc_entry *got, const struct ovmc_entry *want)
{
	CHECK_EQ(got->header, want->header);
	CHECK_EQ(got->type, want->type);
	if (want->header == OVMC_CRQ_CMD && is_caps_type(want->type)) {
		CHECK_EQ(got->caps.status, want->caps.status);
		CHECK_EQ(got->caps.max_hmcs, want->caps.max_hmcs);
		CHECK_EQ(got->caps.pool_size, want->caps.pool_size);
		CHECK_EQ(got->caps.mtu, want->caps.mtu);
		CHECK_EQ(got->caps.crq_size, want->caps.crq_size);
		CHECK_EQ(got->caps.version, want->caps.version);
		return;
	}
	CHECK_EQ(got->hmc.status, want->hmc.status);
	CHECK_EQ(got->hmc.owner, want->hmc.owner);
	CHECK_EQ(got->hmc.session, want->hmc.session);
	CHECK_EQ(got->hmc.index, want->hmc.index);
	CHECK_EQ(got->hmc.buffer_id, want->hmc.buffer_id);
	CHECK_EQ(got->hmc.lioba, want->hmc.lioba);
	CHECK_EQ(got->hmc.msg_len, want->hmc.msg_len);
}

/* Encoding `want` gives exactly `bytes`, and decoding `bytes` gives exactly `want`. */
static void check_golden(const uint8_t bytes[OVMC_CRQ_ENTRY_SIZE], const struct ovmc_entry *want)
{
	uint8_t enc[OVMC_CRQ_ENTRY_SIZE];
	struct ovmc_entry dec;

	memset(enc, 0xA5, sizeof(enc));
	CHECK_EQ(ovmc_entry_encode(want, enc), 0);
	CHECK_MEM(enc, bytes, OVMC_CRQ_ENTRY_SIZE);
	CHECK_EQ(ovmc_entry_decode(bytes, OVMC_CRQ_ENTRY_SIZE, 0, &dec), 0);
	check_same_entry(&dec, want);
}

TEST(golden_init_matches_published_bytes)
{
	static const uint8_t bytes[] = {0xC0, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
					0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
	struct ovmc_entry e;
	uint64_t hi, lo;

	ovmc_entry_init(&e, OVMC_INIT_REQUEST);
	check_golden(bytes, &e);
	ovmc_entry_to_words(bytes, &hi, &lo);
	CHECK_EQ(hi, 0xC001000000000000ull);
	CHECK_EQ(lo, 0);
}

TEST(golden_init_complete_matches_published_bytes)
{
	static const uint8_t bytes[] = {0xC0, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
					0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
	struct ovmc_entry e;
	uint64_t hi, lo;

	ovmc_entry_init(&e, OVMC_INIT_COMPLETE);
	check_golden(bytes, &e);
	ovmc_entry_to_words(bytes, &hi, &lo);
	CHECK_EQ(hi, 0xC002000000000000ull);
	CHECK_EQ(lo, 0);
}

TEST(golden_transport_partner_failed_matches_published_bytes)
{
	static const uint8_t bytes[] = {0xFF, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
					0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
	struct ovmc_entry e;
	uint64_t hi, lo;

	transport_entry(&e, OVMC_EVENT_PARTNER_FAILED);
	check_golden(bytes, &e);
	ovmc_entry_to_words(bytes, &hi, &lo);
	CHECK_EQ(hi, 0xFF01000000000000ull);
	CHECK_EQ(lo, 0);
}

TEST(golden_transport_partner_deregistered_matches_published_bytes)
{
	static const uint8_t bytes[] = {0xFF, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
					0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
	struct ovmc_entry e;

	transport_entry(&e, OVMC_EVENT_PARTNER_DEREGISTERED);
	check_golden(bytes, &e);
}

TEST(golden_transport_resume_matches_published_bytes)
{
	static const uint8_t bytes[] = {0xFF, 0x0A, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
					0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
	struct ovmc_entry e;

	transport_entry(&e, OVMC_EVENT_RESUME);
	check_golden(bytes, &e);
}

TEST(golden_transport_partner_terminated_matches_published_bytes)
{
	static const uint8_t bytes[] = {0xFF, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
					0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
	struct ovmc_entry e;

	transport_entry(&e, OVMC_EVENT_PARTNER_TERMINATED);
	check_golden(bytes, &e);
}

TEST(golden_transport_partner_suspended_matches_published_bytes)
{
	static const uint8_t bytes[] = {0xFF, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
					0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
	struct ovmc_entry e;
	uint64_t hi, lo;

	transport_entry(&e, OVMC_EVENT_PARTNER_SUSPENDED);
	check_golden(bytes, &e);
	ovmc_entry_to_words(bytes, &hi, &lo);
	CHECK_EQ(hi, 0xFF06000000000000ull);
	CHECK_EQ(lo, 0);
}

TEST(golden_transport_prepare_suspend_matches_published_bytes)
{
	static const uint8_t bytes[] = {0xFF, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
					0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
	struct ovmc_entry e;

	transport_entry(&e, OVMC_EVENT_PREPARE_SUSPEND);
	check_golden(bytes, &e);
}

/* The blank rows of the LoPAR table are accepted too (0x07/0x08 occur). */
TEST(golden_transport_reserved_codes_round_trip)
{
	static const uint8_t bytes[][OVMC_CRQ_ENTRY_SIZE] = {
		{0xFF, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		 0x00, 0x00},
		{0xFF, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		 0x00, 0x00},
		{0xFF, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		 0x00, 0x00},
		{0xFF, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		 0x00, 0x00},
	};
	static const uint8_t codes[] = {0x03, 0x05, 0x07, 0x08};
	struct ovmc_entry e;

	for (size_t i = 0; i < N_ELEMS(codes); i++) {
		transport_entry(&e, codes[i]);
		check_golden(bytes[i], &e);
	}
}

TEST(golden_cap_matches_published_bytes)
{
	static const uint8_t bytes[] = {0x80, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x40,
					0x00, 0x00, 0x40, 0x00, 0x01, 0x00, 0x01, 0x01};
	const struct ovmc_caps caps = {
		.max_hmcs = 2, .pool_size = 0x0040, .mtu = 0x00004000, .crq_size = 0x0100,
		.version = 0x0101};
	struct ovmc_entry e;

	ovmc_entry_caps(&e, OVMC_MSG_CAP, &caps);
	check_golden(bytes, &e);
}

TEST(golden_cap_resp_matches_published_bytes)
{
	static const uint8_t bytes[] = {0x80, 0x81, 0x02, 0x00, 0x00, 0x01, 0x01, 0x20,
					0x0A, 0x0B, 0x0C, 0x0D, 0x12, 0x34, 0x02, 0x01};
	const struct ovmc_caps caps = {.status = OVMC_CAP_BAD_VERSION,
				       .max_hmcs = 1,
				       .pool_size = 0x0120,
				       .mtu = 0x0A0B0C0D,
				       .crq_size = 0x1234,
				       .version = 0x0201};
	struct ovmc_entry e;

	ovmc_entry_caps(&e, OVMC_MSG_CAP_RESP, &caps);
	check_golden(bytes, &e);
}

TEST(golden_open_matches_published_bytes)
{
	static const uint8_t bytes[] = {0x80, 0x02, 0x00, 0x00, 0x07, 0x01, 0x01, 0x02,
					0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
	const struct ovmc_hmc_msg m = {.session = 7, .index = 1, .buffer_id = 0x0102};
	struct ovmc_entry e;

	ovmc_entry_hmc(&e, OVMC_MSG_OPEN, &m);
	check_golden(bytes, &e);
}

TEST(golden_open_resp_matches_published_bytes)
{
	static const uint8_t bytes[] = {0x80, 0x82, 0x05, 0x00, 0x07, 0x01, 0x01, 0x02,
					0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
	const struct ovmc_hmc_msg m = {.status = 5, .session = 7, .index = 1, .buffer_id = 0x0102};
	struct ovmc_entry e;

	ovmc_entry_hmc(&e, OVMC_MSG_OPEN_RESP, &m);
	check_golden(bytes, &e);
}

TEST(golden_close_matches_published_bytes)
{
	static const uint8_t bytes[] = {0x80, 0x03, 0x00, 0x00, 0xFE, 0x01, 0x00, 0x00,
					0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
	const struct ovmc_hmc_msg m = {.session = 0xFE, .index = 1};
	struct ovmc_entry e;

	ovmc_entry_hmc(&e, OVMC_MSG_CLOSE, &m);
	check_golden(bytes, &e);
}

TEST(golden_close_resp_matches_published_bytes)
{
	static const uint8_t bytes[] = {0x80, 0x83, 0x01, 0x00, 0xFE, 0x01, 0x00, 0x00,
					0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
	const struct ovmc_hmc_msg m = {.status = 1, .session = 0xFE, .index = 1};
	struct ovmc_entry e;

	ovmc_entry_hmc(&e, OVMC_MSG_CLOSE_RESP, &m);
	check_golden(bytes, &e);
}

TEST(golden_add_buf_matches_published_bytes)
{
	static const uint8_t bytes[] = {0x80, 0x04, 0x00, 0x01, 0x03, 0x00, 0x00, 0x3F,
					0x00, 0x00, 0x00, 0x00, 0x12, 0x34, 0x56, 0x78};
	const struct ovmc_hmc_msg m = {.owner = OVMC_OWNER_HYPERVISOR,
				       .session = 3,
				       .buffer_id = 0x003F,
				       .lioba = 0x12345678};
	struct ovmc_entry e;

	ovmc_entry_hmc(&e, OVMC_MSG_ADD_BUF, &m);
	check_golden(bytes, &e);
}

TEST(golden_add_buf_resp_matches_published_bytes)
{
	static const uint8_t bytes[] = {0x80, 0x84, 0x04, 0x00, 0x03, 0x01, 0x01, 0x02,
					0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
	const struct ovmc_hmc_msg m = {.status = OVMC_BUF_INTERFACE_FAILURE,
				       .session = 3,
				       .index = 1,
				       .buffer_id = 0x0102};
	struct ovmc_entry e;

	ovmc_entry_hmc(&e, OVMC_MSG_ADD_BUF_RESP, &m);
	check_golden(bytes, &e);
}

TEST(golden_rem_buf_matches_published_bytes)
{
	static const uint8_t bytes[] = {0x80, 0x05, 0x00, 0x00, 0x09, 0x01, 0x00, 0x00,
					0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
	const struct ovmc_hmc_msg m = {.session = 9, .index = 1};
	struct ovmc_entry e;

	ovmc_entry_hmc(&e, OVMC_MSG_REM_BUF, &m);
	check_golden(bytes, &e);
}

TEST(golden_rem_buf_resp_matches_published_bytes)
{
	static const uint8_t bytes[] = {0x80, 0x85, 0x05, 0x00, 0x09, 0x01, 0xFF, 0xFF,
					0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
	const struct ovmc_hmc_msg m = {.status = OVMC_BUF_NO_BUFFER,
				       .session = 9,
				       .index = 1,
				       .buffer_id = OVMC_INVALID_BUFFER_ID};
	struct ovmc_entry e;

	ovmc_entry_hmc(&e, OVMC_MSG_REM_BUF_RESP, &m);
	check_golden(bytes, &e);
}

TEST(golden_signal_matches_published_bytes)
{
	static const uint8_t bytes[] = {0x80, 0x06, 0x00, 0x00, 0x01, 0x00, 0x01, 0x02,
					0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03};
	const struct ovmc_hmc_msg m = {.session = 1, .buffer_id = 0x0102, .msg_len = 0x00010203};
	struct ovmc_entry e;

	ovmc_entry_hmc(&e, OVMC_MSG_SIGNAL, &m);
	check_golden(bytes, &e);
}

TEST(words_conversion_matches_register_layout)
{
	static const uint8_t bytes[] = {0x80, 0x06, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
					0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0xFF};
	uint8_t back[OVMC_CRQ_ENTRY_SIZE];
	uint64_t hi, lo;

	ovmc_entry_to_words(bytes, &hi, &lo);
	CHECK_EQ(hi, 0x8006020304050607ull);
	CHECK(lo == 0x08090A0B0C0D0EFFull);
	ovmc_entry_from_words(0x8006020304050607ull, 0x08090A0B0C0D0EFFull, back);
	CHECK_MEM(back, bytes, sizeof(bytes));
	ovmc_entry_from_words(0xC001000000000000ull, 0, back);
	CHECK_EQ(back[0], 0xC0);
	CHECK_EQ(back[1], 0x01);
}

/* A random entry of the given kind, in range where the protocol has ranges. */
static void random_entry(struct ovmc_entry *e, uint8_t header, uint8_t type, uint64_t *rng)
{
	uint8_t raw[sizeof(*e)];

	for (size_t i = 0; i < sizeof(raw); i++)
		raw[i] = (uint8_t)ovmc_test_rand(rng);
	/* Garbage in fields the type does not carry: encode must drop it. */
	memcpy(e, raw, sizeof(*e));
	e->header = header;
	e->type = type;
	if (type == OVMC_MSG_CAP_RESP)
		e->caps.status %= 3;
	else if (type == OVMC_MSG_ADD_BUF_RESP)
		e->hmc.status %= 5;
	else if (type == OVMC_MSG_REM_BUF_RESP)
		e->hmc.status %= 6;
	e->hmc.owner &= 1;
}

static void check_round_trip(const struct ovmc_entry *e)
{
	uint8_t first[OVMC_CRQ_ENTRY_SIZE], second[OVMC_CRQ_ENTRY_SIZE];
	struct ovmc_entry dec;

	CHECK_EQ(ovmc_entry_encode(e, first), 0);
	CHECK_EQ(ovmc_entry_decode(first, sizeof(first), 0, &dec), 0);
	CHECK_EQ(ovmc_entry_encode(&dec, second), 0);
	CHECK_MEM(first, second, sizeof(first));
}

TEST(round_trip_every_type_gives_identical_bytes)
{
	uint64_t rng = 0x5EED0001;
	struct ovmc_entry e;

	for (int iter = 0; iter < 1000; iter++) {
		for (unsigned i = 0; i < N_ELEMS(msg_types); i++) {
			random_entry(&e, OVMC_CRQ_CMD, msg_types[i], &rng);
			check_round_trip(&e);
		}
		random_entry(&e, OVMC_CRQ_INIT, OVMC_INIT_REQUEST, &rng);
		check_round_trip(&e);
		random_entry(&e, OVMC_CRQ_INIT, OVMC_INIT_COMPLETE, &rng);
		check_round_trip(&e);
		for (uint8_t code = 0x01; code <= 0x0A; code++) {
			random_entry(&e, OVMC_CRQ_TRANSPORT, code, &rng);
			check_round_trip(&e);
		}
	}
}

TEST(decode_of_encoded_entry_keeps_carried_fields)
{
	uint64_t rng = 0x5EED0002;
	struct ovmc_entry e, dec;
	uint8_t buf[OVMC_CRQ_ENTRY_SIZE];

	for (int iter = 0; iter < 1000; iter++) {
		random_entry(&e, OVMC_CRQ_CMD, OVMC_MSG_ADD_BUF, &rng);
		CHECK_EQ(ovmc_entry_encode(&e, buf), 0);
		CHECK_EQ(ovmc_entry_decode(buf, sizeof(buf), 0, &dec), 0);
		CHECK_EQ(dec.hmc.owner, e.hmc.owner);
		CHECK_EQ(dec.hmc.session, e.hmc.session);
		CHECK_EQ(dec.hmc.index, e.hmc.index);
		CHECK_EQ(dec.hmc.buffer_id, e.hmc.buffer_id);
		CHECK_EQ(dec.hmc.lioba, e.hmc.lioba);
		CHECK_EQ(dec.hmc.status, 0);
		CHECK_EQ(dec.hmc.msg_len, 0);

		random_entry(&e, OVMC_CRQ_CMD, OVMC_MSG_CAP_RESP, &rng);
		CHECK_EQ(ovmc_entry_encode(&e, buf), 0);
		CHECK_EQ(ovmc_entry_decode(buf, sizeof(buf), 0, &dec), 0);
		check_same_entry(&dec, &e);
	}
}

TEST(encode_accepts_every_entry_decode_accepts)
{
	uint64_t rng = 0x5EED0003;
	static const uint8_t headers[] = {OVMC_CRQ_CMD, OVMC_CRQ_INIT, OVMC_CRQ_TRANSPORT};
	uint8_t raw[OVMC_CRQ_ENTRY_SIZE], enc[OVMC_CRQ_ENTRY_SIZE];
	struct ovmc_entry dec, again;
	int accepted = 0;

	for (int iter = 0; iter < 200000; iter++) {
		for (size_t i = 0; i < sizeof(raw); i++)
			raw[i] = (uint8_t)ovmc_test_rand(&rng);
		raw[0] = headers[raw[0] % N_ELEMS(headers)];
		/* Bias byte 1 and the status/owner bytes toward valid values. */
		if (raw[0] == OVMC_CRQ_CMD)
			raw[1] = msg_types[raw[1] % N_ELEMS(msg_types)];
		else
			raw[1] &= 0x0F;
		raw[2] &= 0x07;
		raw[3] &= 0x03;
		if (ovmc_entry_decode(raw, sizeof(raw), OVMC_DECODE_LENIENT, &dec) != 0)
			continue;
		accepted++;
		CHECK_EQ(ovmc_entry_encode(&dec, enc), 0);
		CHECK_EQ(ovmc_entry_decode(enc, sizeof(enc), 0, &again), 0);
		check_same_entry(&again, &dec);
	}
	CHECK(accepted > 10000);
}

static void decode_prefix(const uint8_t *entry, size_t len)
{
	/* Exactly `len` bytes on the heap so that ASan reports any read past them. */
	uint8_t *p = malloc(len);
	struct ovmc_entry out;
	int rc;

	/* malloc(0) may legally return NULL; decode must not touch it then either. */
	CHECK(p || len == 0);
	if (p)
		memcpy(p, entry, len);
	memset(&out, 0x5A, sizeof(out));
	rc = ovmc_entry_decode(p, len, 0, &out);
	free(p);
	CHECK_EQ(rc, OVMC_ERR_TRUNCATED);
	CHECK_EQ(out.header, len >= 1 ? entry[0] : 0);
	CHECK_EQ(out.type, len >= 2 ? entry[1] : 0);
}

TEST(decode_truncated_entry_fails)
{
	static const uint8_t signal[] = {0x80, 0x06, 0x00, 0x00, 0x01, 0x00, 0x01, 0x02,
					 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03};
	static const uint8_t bad[] = {0x13, 0xEE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
				      0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};

	for (size_t len = 0; len < OVMC_CRQ_ENTRY_SIZE; len++) {
		decode_prefix(signal, len);
		/* Truncation is reported before anything about the content. */
		decode_prefix(bad, len);
	}
}

TEST(decode_empty_slot_fails)
{
	uint8_t e[OVMC_CRQ_ENTRY_SIZE] = {0};
	struct ovmc_entry out;

	CHECK_EQ(ovmc_entry_decode(e, sizeof(e), 0, &out), OVMC_ERR_EMPTY);
	/* The other bytes of a free slot are undefined, so they change nothing. */
	memset(e + 1, 0xFF, sizeof(e) - 1);
	CHECK_EQ(ovmc_entry_decode(e, sizeof(e), OVMC_DECODE_LENIENT, &out), OVMC_ERR_EMPTY);
}

TEST(decode_reserved_header_values_fail)
{
	uint8_t e[OVMC_CRQ_ENTRY_SIZE];
	struct ovmc_entry out;
	int swept = 0;

	for (unsigned h = 0x01; h <= 0xFE; h++) {
		if (h == OVMC_CRQ_CMD || h == OVMC_CRQ_INIT)
			continue;
		zero_cmd(e, OVMC_MSG_SIGNAL);
		e[0] = (uint8_t)h;
		CHECK_EQ(ovmc_entry_decode(e, sizeof(e), OVMC_DECODE_LENIENT, &out),
			 OVMC_ERR_BAD_HEADER);
		CHECK_EQ(out.header, h);
		swept++;
	}
	CHECK_EQ(swept, 0x7F + 0x3F + 0x3E);
}

TEST(decode_unknown_init_format_fails)
{
	uint8_t e[OVMC_CRQ_ENTRY_SIZE] = {OVMC_CRQ_INIT};
	struct ovmc_entry out;

	for (unsigned f = 0; f <= 0xFF; f++) {
		e[1] = (uint8_t)f;
		if (f == OVMC_INIT_REQUEST || f == OVMC_INIT_COMPLETE) {
			CHECK_EQ(ovmc_entry_decode(e, sizeof(e), 0, &out), 0);
			continue;
		}
		CHECK_EQ(ovmc_entry_decode(e, sizeof(e), 0, &out), OVMC_ERR_BAD_TYPE);
		CHECK_EQ(out.type, f);
	}
}

TEST(decode_accepts_exactly_the_known_vmc_types)
{
	uint8_t e[OVMC_CRQ_ENTRY_SIZE];
	struct ovmc_entry out;
	int accepted = 0;

	for (unsigned t = 0; t <= 0xFF; t++) {
		bool known = memchr(msg_types, (int)t, sizeof(msg_types)) != NULL;
		int rc;

		zero_cmd(e, (uint8_t)t);
		rc = ovmc_entry_decode(e, sizeof(e), 0, &out);
		if (known) {
			CHECK_EQ(rc, 0);
			accepted++;
		} else {
			CHECK_EQ(rc, OVMC_ERR_BAD_TYPE);
		}
	}
	CHECK_EQ(accepted, 11);
}

TEST(decode_transport_accepts_only_events_1_to_0x0a)
{
	uint8_t e[OVMC_CRQ_ENTRY_SIZE] = {OVMC_CRQ_TRANSPORT};
	struct ovmc_entry out;

	for (unsigned c = 0; c <= 0xFF; c++) {
		e[1] = (uint8_t)c;
		CHECK_EQ(ovmc_entry_decode(e, sizeof(e), 0, &out),
			 c >= 0x01 && c <= 0x0A ? 0 : OVMC_ERR_BAD_TYPE);
		CHECK_EQ(out.type, c);
	}
}

TEST(decode_transport_ignores_unspecified_bytes)
{
	uint8_t e[OVMC_CRQ_ENTRY_SIZE];
	struct ovmc_entry out;

	memset(e, 0xEE, sizeof(e));
	e[0] = OVMC_CRQ_TRANSPORT;
	e[1] = OVMC_EVENT_PARTNER_FAILED;
	CHECK_EQ(ovmc_entry_decode(e, sizeof(e), 0, &out), 0);
	CHECK_EQ(out.header, OVMC_CRQ_TRANSPORT);
	CHECK_EQ(out.type, OVMC_EVENT_PARTNER_FAILED);
}

TEST(decode_init_with_nonzero_payload_fails)
{
	uint8_t e[OVMC_CRQ_ENTRY_SIZE];
	struct ovmc_entry out;

	for (unsigned pos = 2; pos < OVMC_CRQ_ENTRY_SIZE; pos++) {
		memset(e, 0, sizeof(e));
		e[0] = OVMC_CRQ_INIT;
		e[1] = OVMC_INIT_COMPLETE;
		e[pos] = 0x01;
		CHECK_EQ(ovmc_entry_decode(e, sizeof(e), 0, &out), OVMC_ERR_RESERVED);
		CHECK_EQ(ovmc_entry_decode(e, sizeof(e), OVMC_DECODE_SIGNAL_PAD, &out),
			 OVMC_ERR_RESERVED);
		CHECK_EQ(ovmc_entry_decode(e, sizeof(e), OVMC_DECODE_LENIENT, &out), 0);
		CHECK_EQ(out.type, OVMC_INIT_COMPLETE);
	}
}

TEST(decode_nonzero_reserved_byte_fails_for_every_type)
{
	static const uint8_t values[] = {0x01, 0x80, 0xFF};
	uint8_t e[OVMC_CRQ_ENTRY_SIZE];
	struct ovmc_entry out;

	CHECK_EQ(N_ELEMS(reserved_bytes), N_ELEMS(msg_types));
	for (unsigned i = 0; i < N_ELEMS(reserved_bytes); i++) {
		for (unsigned pos = 2; pos < OVMC_CRQ_ENTRY_SIZE; pos++) {
			for (unsigned v = 0; v < N_ELEMS(values); v++) {
				int rc;

				zero_cmd(e, reserved_bytes[i].type);
				e[pos] = values[v];
				rc = ovmc_entry_decode(e, sizeof(e), 0, &out);
				if (is_reserved(i, pos)) {
					if (rc != OVMC_ERR_RESERVED)
						FAIL("type 0x%02x byte %u = 0x%02x: rc %d",
						     e[1], pos, values[v], rc);
				} else if (rc == OVMC_ERR_RESERVED) {
					FAIL("type 0x%02x byte %u is not reserved", e[1], pos);
				}
			}
		}
	}
}

TEST(decode_lenient_accepts_reserved_bytes_and_drops_them)
{
	uint8_t e[OVMC_CRQ_ENTRY_SIZE];
	struct ovmc_entry out, want;

	for (unsigned i = 0; i < N_ELEMS(reserved_bytes); i++) {
		zero_cmd(e, reserved_bytes[i].type);
		for (unsigned k = 0; k < reserved_bytes[i].n; k++)
			e[reserved_bytes[i].pos[k]] = 0xFF;
		CHECK_EQ(ovmc_entry_decode(e, sizeof(e), 0, &out), OVMC_ERR_RESERVED);
		CHECK_EQ(ovmc_entry_decode(e, sizeof(e), OVMC_DECODE_LENIENT, &out), 0);
		/* The struct holds only what the type carries; all of it is zero here. */
		memset(&want, 0, sizeof(want));
		want.header = OVMC_CRQ_CMD;
		want.type = reserved_bytes[i].type;
		check_same_entry(&out, &want);
	}
}

TEST(decode_signal_pad_bytes_accepted_only_with_flag)
{
	static const uint8_t linux_signal[] = {0x80, 0x06, 0x00, 0x00, 0x02, 0x01, 0x00, 0x05,
					       0xDE, 0xAD, 0xBE, 0xEF, 0x00, 0x00, 0x10, 0x00};
	uint8_t e[OVMC_CRQ_ENTRY_SIZE];
	struct ovmc_entry out;

	CHECK_EQ(ovmc_entry_decode(linux_signal, 16, 0, &out), OVMC_ERR_RESERVED);
	CHECK_EQ(ovmc_entry_decode(linux_signal, 16, OVMC_DECODE_SIGNAL_PAD, &out), 0);
	CHECK_EQ(out.hmc.session, 2);
	CHECK_EQ(out.hmc.index, 1);
	CHECK_EQ(out.hmc.buffer_id, 5);
	CHECK_EQ(out.hmc.msg_len, 0x1000);
	CHECK_EQ(out.hmc.lioba, 0);

	/* The flag excuses bytes 8..11 of a SIGNAL and no other reserved byte. */
	for (unsigned i = 0; i < N_ELEMS(reserved_bytes); i++) {
		for (unsigned k = 0; k < reserved_bytes[i].n; k++) {
			unsigned pos = reserved_bytes[i].pos[k];
			bool pad = reserved_bytes[i].type == OVMC_MSG_SIGNAL && pos >= 8 &&
				   pos <= 11;

			zero_cmd(e, reserved_bytes[i].type);
			e[pos] = 0x5C;
			if (ovmc_entry_decode(e, sizeof(e), OVMC_DECODE_SIGNAL_PAD, &out) !=
			    (pad ? 0 : OVMC_ERR_RESERVED))
				FAIL("type 0x%02x byte %u with SIGNAL_PAD", e[1], pos);
		}
	}
}

/* Highest accepted status per type; 0xFF means every value; -1 means no status field. */
static int status_max(uint8_t type)
{
	switch (type) {
	case OVMC_MSG_CAP_RESP:
		return 2;
	case OVMC_MSG_OPEN_RESP:
	case OVMC_MSG_CLOSE_RESP:
		return 0xFF;
	case OVMC_MSG_ADD_BUF_RESP:
		return 4;
	case OVMC_MSG_REM_BUF_RESP:
		return 5;
	}
	return -1;
}

TEST(decode_out_of_range_status_fails)
{
	uint8_t e[OVMC_CRQ_ENTRY_SIZE];
	struct ovmc_entry out;

	for (unsigned i = 0; i < N_ELEMS(msg_types); i++) {
		int max = status_max(msg_types[i]);

		if (max < 0)
			continue;
		for (int s = 0; s <= 0xFF; s++) {
			int want = s <= max ? 0 : OVMC_ERR_RANGE;

			zero_cmd(e, msg_types[i]);
			e[2] = (uint8_t)s;
			CHECK_EQ(ovmc_entry_decode(e, sizeof(e), 0, &out), want);
			/* Leniency is about reserved bytes, never about ranges. */
			CHECK_EQ(ovmc_entry_decode(e, sizeof(e), OVMC_DECODE_LENIENT, &out), want);
		}
	}
}

TEST(decode_out_of_range_owner_fails)
{
	uint8_t e[OVMC_CRQ_ENTRY_SIZE];
	struct ovmc_entry out;

	for (unsigned o = 0; o <= 0xFF; o++) {
		int want = o <= OVMC_OWNER_HYPERVISOR ? 0 : OVMC_ERR_RANGE;

		zero_cmd(e, OVMC_MSG_ADD_BUF);
		e[3] = (uint8_t)o;
		CHECK_EQ(ovmc_entry_decode(e, sizeof(e), 0, &out), want);
		CHECK_EQ(ovmc_entry_decode(e, sizeof(e), OVMC_DECODE_LENIENT, &out), want);
	}
}

TEST(decode_reports_faults_in_documented_order)
{
	uint8_t e[OVMC_CRQ_ENTRY_SIZE];
	struct ovmc_entry out;

	/* Bad type beats reserved bytes. */
	memset(e, 0xFF, sizeof(e));
	e[0] = OVMC_CRQ_CMD;
	e[1] = 0x07;
	CHECK_EQ(ovmc_entry_decode(e, sizeof(e), 0, &out), OVMC_ERR_BAD_TYPE);
	e[0] = OVMC_CRQ_INIT;
	CHECK_EQ(ovmc_entry_decode(e, sizeof(e), 0, &out), OVMC_ERR_BAD_TYPE);

	/* Reserved bytes beat ranges. */
	zero_cmd(e, OVMC_MSG_ADD_BUF_RESP);
	e[2] = 0xFF;
	e[3] = 0x01;
	CHECK_EQ(ovmc_entry_decode(e, sizeof(e), 0, &out), OVMC_ERR_RESERVED);
	CHECK_EQ(ovmc_entry_decode(e, sizeof(e), OVMC_DECODE_LENIENT, &out), OVMC_ERR_RANGE);

	/* CAP has no status: its byte 2 is reserved, not out of range. */
	zero_cmd(e, OVMC_MSG_CAP);
	e[2] = 0x09;
	CHECK_EQ(ovmc_entry_decode(e, sizeof(e), 0, &out), OVMC_ERR_RESERVED);
	CHECK_EQ(ovmc_entry_decode(e, sizeof(e), OVMC_DECODE_LENIENT, &out), 0);
	CHECK_EQ(out.caps.status, 0);
}

TEST(encode_out_of_range_status_fails)
{
	struct ovmc_entry e;
	uint8_t buf[OVMC_CRQ_ENTRY_SIZE];

	for (unsigned i = 0; i < N_ELEMS(msg_types); i++) {
		int max = status_max(msg_types[i]);

		if (max < 0)
			continue;
		for (int s = 0; s <= 0xFF; s++) {
			memset(&e, 0, sizeof(e));
			e.header = OVMC_CRQ_CMD;
			e.type = msg_types[i];
			if (is_caps_type(e.type))
				e.caps.status = (uint8_t)s;
			else
				e.hmc.status = (uint8_t)s;
			CHECK_EQ(ovmc_entry_encode(&e, buf), s <= max ? 0 : OVMC_ERR_RANGE);
		}
	}
}

TEST(encode_out_of_range_owner_fails)
{
	struct ovmc_hmc_msg m = {0};
	struct ovmc_entry e;
	uint8_t buf[OVMC_CRQ_ENTRY_SIZE];

	for (unsigned o = 0; o <= 0xFF; o++) {
		m.owner = (uint8_t)o;
		ovmc_entry_hmc(&e, OVMC_MSG_ADD_BUF, &m);
		CHECK_EQ(ovmc_entry_encode(&e, buf), o <= 1 ? 0 : OVMC_ERR_RANGE);
	}
}

TEST(encode_unknown_header_fails)
{
	struct ovmc_entry e;
	uint8_t buf[OVMC_CRQ_ENTRY_SIZE];

	for (unsigned h = 0; h <= 0xFF; h++) {
		if (h == OVMC_CRQ_CMD || h == OVMC_CRQ_INIT || h == OVMC_CRQ_TRANSPORT)
			continue;
		memset(&e, 0, sizeof(e));
		e.header = (uint8_t)h;
		e.type = 0x01;
		CHECK_EQ(ovmc_entry_encode(&e, buf), OVMC_ERR_BAD_HEADER);
	}
}

TEST(encode_unknown_type_fails)
{
	struct ovmc_entry e;
	uint8_t buf[OVMC_CRQ_ENTRY_SIZE];

	for (unsigned t = 0; t <= 0xFF; t++) {
		bool known = memchr(msg_types, (int)t, sizeof(msg_types)) != NULL;

		memset(&e, 0, sizeof(e));
		e.header = OVMC_CRQ_CMD;
		e.type = (uint8_t)t;
		CHECK_EQ(ovmc_entry_encode(&e, buf), known ? 0 : OVMC_ERR_BAD_TYPE);
		e.header = OVMC_CRQ_INIT;
		CHECK_EQ(ovmc_entry_encode(&e, buf), t == 1 || t == 2 ? 0 : OVMC_ERR_BAD_TYPE);
		e.header = OVMC_CRQ_TRANSPORT;
		CHECK_EQ(ovmc_entry_encode(&e, buf),
			 t >= 0x01 && t <= 0x0A ? 0 : OVMC_ERR_BAD_TYPE);
	}
}

TEST(encode_writes_zero_in_reserved_and_unused_positions)
{
	uint8_t buf[OVMC_CRQ_ENTRY_SIZE];
	struct ovmc_entry e;

	for (unsigned i = 0; i < N_ELEMS(reserved_bytes); i++) {
		memset(&e, 0xFF, sizeof(e));
		e.header = OVMC_CRQ_CMD;
		e.type = reserved_bytes[i].type;
		if (status_max(e.type) >= 0) {
			e.caps.status = 0;
			e.hmc.status = 0;
		}
		if (e.type == OVMC_MSG_ADD_BUF)
			e.hmc.owner = OVMC_OWNER_HYPERVISOR;
		memset(buf, 0xA5, sizeof(buf));
		CHECK_EQ(ovmc_entry_encode(&e, buf), 0);
		for (unsigned k = 0; k < reserved_bytes[i].n; k++) {
			if (buf[reserved_bytes[i].pos[k]] != 0)
				FAIL("type 0x%02x byte %u not zero", e.type,
				     reserved_bytes[i].pos[k]);
		}
	}

	/* Init and transport entries carry nothing past byte 1. */
	memset(&e, 0xFF, sizeof(e));
	e.header = OVMC_CRQ_INIT;
	e.type = OVMC_INIT_REQUEST;
	memset(buf, 0xA5, sizeof(buf));
	CHECK_EQ(ovmc_entry_encode(&e, buf), 0);
	for (unsigned pos = 2; pos < OVMC_CRQ_ENTRY_SIZE; pos++)
		CHECK_EQ(buf[pos], 0);
	e.header = OVMC_CRQ_TRANSPORT;
	e.type = OVMC_EVENT_PARTNER_SUSPENDED;
	memset(buf, 0xA5, sizeof(buf));
	CHECK_EQ(ovmc_entry_encode(&e, buf), 0);
	for (unsigned pos = 2; pos < OVMC_CRQ_ENTRY_SIZE; pos++)
		CHECK_EQ(buf[pos], 0);
}

TEST(constructors_clear_every_other_field)
{
	const struct ovmc_caps caps = {.max_hmcs = 1, .pool_size = 2, .mtu = 3, .crq_size = 4,
				       .version = 5};
	const struct ovmc_hmc_msg m = {.session = 1, .index = 2, .buffer_id = 3};
	struct ovmc_entry e;

	memset(&e, 0xFF, sizeof(e));
	ovmc_entry_init(&e, OVMC_INIT_COMPLETE);
	CHECK_EQ(e.header, OVMC_CRQ_INIT);
	CHECK_EQ(e.type, OVMC_INIT_COMPLETE);
	CHECK_EQ(e.hmc.status, 0);
	CHECK_EQ(e.hmc.msg_len, 0);

	memset(&e, 0xFF, sizeof(e));
	ovmc_entry_caps(&e, OVMC_MSG_CAP, &caps);
	CHECK_EQ(e.header, OVMC_CRQ_CMD);
	CHECK_EQ(e.type, OVMC_MSG_CAP);
	CHECK_EQ(e.caps.status, 0);
	CHECK_EQ(e.caps.mtu, 3);
	CHECK_EQ(e.caps.version, 5);
	CHECK_EQ(e.hmc.msg_len, 0);

	memset(&e, 0xFF, sizeof(e));
	ovmc_entry_hmc(&e, OVMC_MSG_OPEN, &m);
	CHECK_EQ(e.header, OVMC_CRQ_CMD);
	CHECK_EQ(e.type, OVMC_MSG_OPEN);
	CHECK_EQ(e.hmc.session, 1);
	CHECK_EQ(e.hmc.index, 2);
	CHECK_EQ(e.hmc.buffer_id, 3);
	CHECK_EQ(e.hmc.owner, 0);
	CHECK_EQ(e.hmc.lioba, 0);
}

TEST(type_and_event_names_cover_known_codes)
{
	static const char *const names[] = {
		"CAP",		"CAP_RESP",	"OPEN",	      "OPEN_RESP",
		"CLOSE",	"CLOSE_RESP",	"ADD_BUF",    "ADD_BUF_RESP",
		"REM_BUF",	"REM_BUF_RESP", "SIGNAL",
	};

	for (unsigned i = 0; i < N_ELEMS(msg_types); i++)
		CHECK(strcmp(ovmc_msg_type_name(msg_types[i]), names[i]) == 0);
	CHECK(strcmp(ovmc_msg_type_name(0x00), "unknown") == 0);
	CHECK(strcmp(ovmc_msg_type_name(0x07), "unknown") == 0);
	CHECK(strcmp(ovmc_msg_type_name(0xFF), "unknown") == 0);

	CHECK(strcmp(ovmc_event_name(0x01), "partner-failed") == 0);
	CHECK(strcmp(ovmc_event_name(0x02), "partner-deregistered") == 0);
	CHECK(strcmp(ovmc_event_name(0x04), "partner-terminated") == 0);
	CHECK(strcmp(ovmc_event_name(0x06), "partner-suspended") == 0);
	CHECK(strcmp(ovmc_event_name(0x09), "prepare-suspend") == 0);
	CHECK(strcmp(ovmc_event_name(0x0A), "resume") == 0);
	CHECK(strcmp(ovmc_event_name(0x03), "reserved") == 0);
	CHECK(strcmp(ovmc_event_name(0x08), "reserved") == 0);
	CHECK(strcmp(ovmc_event_name(0x00), "unknown") == 0);
	CHECK(strcmp(ovmc_event_name(0x0B), "unknown") == 0);
}

static void check_format(const uint8_t e[OVMC_CRQ_ENTRY_SIZE], const char *want)
{
	char buf[160];
	int n = ovmc_entry_format(e, buf, sizeof(buf));

	if (strcmp(buf, want) != 0)
		FAIL("format: got \"%s\", want \"%s\"", buf, want);
	CHECK_EQ(n, strlen(want));
}

TEST(format_renders_valid_entries)
{
	static const uint8_t init[16] = {0xC0, 0x01};
	static const uint8_t init_complete[16] = {0xC0, 0x02};
	static const uint8_t transport[16] = {0xFF, 0x02, 0x12, 0x34};
	static const uint8_t reserved_event[16] = {0xFF, 0x08};
	static const uint8_t cap[16] = {0x80, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x20,
					0x00, 0x00, 0x10, 0x00, 0x01, 0x00, 0x01, 0x01};
	static const uint8_t cap_resp[16] = {0x80, 0x81, 0x02, 0x00, 0x00, 0x02, 0x00, 0x40,
					     0x00, 0x00, 0x40, 0x00, 0x00, 0x10, 0x01, 0x02};
	static const uint8_t signal[16] = {0x80, 0x06, 0x00, 0x00, 0x01, 0x00, 0x00, 0x03,
					   0xDE, 0xAD, 0xBE, 0xEF, 0x00, 0x00, 0x00, 0x78};
	static const uint8_t add_buf[16] = {0x80, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
					    0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00};
	static const uint8_t add_buf_resp[16] = {0x80, 0x84, 0x02, 0x00, 0x04, 0x01, 0x00, 0x1F};
	static const uint8_t rem_buf_resp[16] = {0x80, 0x85, 0x05, 0x00, 0x04, 0x01, 0xFF, 0xFF};
	static const uint8_t close[16] = {0x80, 0x03, 0x00, 0x00, 0x05, 0x01};

	check_format(init, "INIT");
	check_format(init_complete, "INIT_COMPLETE");
	check_format(transport, "TRANSPORT partner-deregistered (0x02)");
	check_format(reserved_event, "TRANSPORT reserved (0x08)");
	check_format(cap, "CAP hmcs=1 pool=32 mtu=4096 crq=256 ver=0x0101");
	check_format(cap_resp, "CAP_RESP status=2 hmcs=2 pool=64 mtu=16384 crq=16 ver=0x0102");
	check_format(signal, "SIGNAL sn=1 idx=0 buf=3 len=120");
	check_format(add_buf, "ADD_BUF sn=0 idx=0 buf=0 owner=0 lioba=0x00010000");
	check_format(add_buf_resp, "ADD_BUF_RESP status=2 sn=4 idx=1 buf=31");
	check_format(rem_buf_resp, "REM_BUF_RESP status=5 sn=4 idx=1 buf=65535");
	check_format(close, "CLOSE sn=5 idx=1");
}

TEST(format_renders_invalid_entry_with_error_and_bytes)
{
	static const uint8_t bad_init[16] = {0xC0, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
					     0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xAB};
	static const uint8_t bad_owner[16] = {0x80, 0x04, 0x00, 0x02};
	char want[160];

	snprintf(want, sizeof(want),
		 "INVALID (%s) c0 03 00 00 00 00 00 00 00 00 00 00 00 00 00 ab",
		 ovmc_strerror(OVMC_ERR_BAD_TYPE));
	check_format(bad_init, want);
	snprintf(want, sizeof(want),
		 "INVALID (%s) 80 04 00 02 00 00 00 00 00 00 00 00 00 00 00 00",
		 ovmc_strerror(OVMC_ERR_RANGE));
	check_format(bad_owner, want);
}

TEST(format_truncates_safely_and_returns_full_length)
{
	static const uint8_t entries[][16] = {
		{0x80, 0x04, 0x00, 0x01, 0x03, 0x00, 0x00, 0x3F, 0, 0, 0, 0, 0x12, 0x34, 0x56,
		 0x78},
		{0x13, 0x37},
	};
	char full[160];
	char canary = 'x';

	for (unsigned i = 0; i < N_ELEMS(entries); i++) {
		int len = ovmc_entry_format(entries[i], full, sizeof(full));

		CHECK(len > 0 && (size_t)len < sizeof(full));
		CHECK_EQ(ovmc_entry_format(entries[i], NULL, 0), len);
		CHECK_EQ(ovmc_entry_format(entries[i], &canary, 0), len);
		CHECK_EQ(canary, 'x');
		for (size_t size = 1; size <= (size_t)len + 1; size++) {
			/* Exactly `size` bytes on the heap: ASan catches any overflow. */
			char *p = malloc(size);
			int n;
			bool prefix;

			CHECK(p);
			n = ovmc_entry_format(entries[i], p, size);
			prefix = strlen(p) == size - 1 && strncmp(p, full, size - 1) == 0;
			free(p);
			CHECK_EQ(n, len);
			CHECK(prefix);
		}
	}
}
