// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The command router (include/openvmc/router.h): the pure header codec,
 * then the "router" backend behind the real hypervisor core, talked to by
 * the real driver core through the simulation (tests/sim.h) the way an
 * application does: ovmc_drv_write() a request, ovmc_drv_read() the
 * response. Responses are checked byte by byte at the offsets of
 * PROTOCOL.md section 7, independently of the codec under test.
 */
#include "harness.h"
#include "sim.h"

#include <openvmc/backend.h>
#include <openvmc/router.h>

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>

#define HDR OVMC_ROUTER_HDR_LEN
#define ROUTER OVMC_ROUTER_TARGET_ROUTER
#define OP_XCHG OVMC_ROUTER_OP_EXCHANGE_OPS
#define OP_CLOSE OVMC_ROUTER_OP_CLOSE
#define OP_ECHO OVMC_ROUTER_OP_ECHO
#define EXPECT OVMC_ROUTER_FLAG_RESPONSE_EXPECTED

static void free_cb(void *p)
{
	free(p);
}

static void *xmalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);

	if (!p)
		FAIL("out of memory");
	ovmc_test_defer(free_cb, p);
	return p;
}

static uint8_t pattern(unsigned i, size_t k)
{
	return (uint8_t)(i * 31u + k * 7u + 1u);
}

/* ==== header codec ==== */

/* clang-format off */
/* A request: echo, token 0x01020304, response expected, 4 data bytes. */
static const uint8_t golden_request[] = {
	0xDE, 0xCA, 0xFF, 0x20,	/* descriptor, header length 32 */
	0x00, 0x00, 0x00, 0x24,	/* total 36 */
	0x01, 0x02, 0x03, 0x04,	/* correlation token */
	0x80, 0x00, 0x00, 0x80,	/* target router, reserved, flags */
	0x00, 0x00, 0x00, 0x04,	/* data length 4 */
	0x01, 0x03, 0x00, 0x00,	/* opcode echo, rc 0 */
	0x00, 0x00, 0x00, 0x00,	/* reserved */
	0x00, 0x00, 0x00, 0x00,
	0xAA, 0xBB, 0xCC, 0xDD,	/* data */
};

/* A response: DLPAR target, opcode 0x1234, InvalidState, no data. */
static const uint8_t golden_response[] = {
	0xDE, 0xCA, 0xFF, 0x20,	/* descriptor, header length 32 */
	0x00, 0x00, 0x00, 0x20,	/* total 32 */
	0xFE, 0xDC, 0xBA, 0x98,	/* correlation token */
	0x80, 0x02, 0x00, 0x40,	/* target DLPAR, reserved, flags: response */
	0x00, 0x00, 0x00, 0x00,	/* data length 0 */
	0x12, 0x34, 0x80, 0x28,	/* opcode 0x1234, rc InvalidState */
	0x00, 0x00, 0x00, 0x00,	/* reserved */
	0x00, 0x00, 0x00, 0x00,
};
/* clang-format on */

TEST(hdr_encode_request_matches_golden_bytes)
{
	struct ovmc_router_hdr h;
	uint8_t out[HDR];

	ovmc_router_hdr_init(&h, ROUTER, OP_ECHO, 0x01020304, EXPECT, 4);
	CHECK_EQ(h.total_len, 36);
	CHECK_EQ(h.hdr_len, 32);
	memset(out, 0x55, sizeof(out));
	CHECK_EQ(ovmc_router_hdr_encode(&h, out), 0);
	CHECK_MEM(out, golden_request, HDR);
}

TEST(hdr_encode_response_matches_golden_bytes)
{
	struct ovmc_router_hdr h;
	uint8_t out[HDR];

	ovmc_router_hdr_init(&h, OVMC_ROUTER_TARGET_DLPAR, 0x1234, 0xFEDCBA98,
			     OVMC_ROUTER_FLAG_RESPONSE, 0);
	h.rc = OVMC_ROUTER_RC_INVALID_STATE;
	memset(out, 0x55, sizeof(out));
	CHECK_EQ(ovmc_router_hdr_encode(&h, out), 0);
	CHECK_MEM(out, golden_response, HDR);
}

TEST(hdr_decode_golden_bytes_and_round_trip)
{
	struct ovmc_router_hdr h, h2;
	uint8_t out[HDR];

	CHECK_EQ(ovmc_router_hdr_decode(golden_request, sizeof(golden_request), &h), 0);
	CHECK_EQ(h.hdr_len, 32);
	CHECK_EQ(h.total_len, 36);
	CHECK_EQ(h.token, 0x01020304);
	CHECK_EQ(h.target, ROUTER);
	CHECK_EQ(h.flags, EXPECT);
	CHECK_EQ(h.data_len, 4);
	CHECK_EQ(h.opcode, OP_ECHO);
	CHECK_EQ(h.rc, 0);
	CHECK_EQ(ovmc_router_hdr_encode(&h, out), 0);
	CHECK_MEM(out, golden_request, HDR);

	CHECK_EQ(ovmc_router_hdr_decode(golden_response, sizeof(golden_response), &h2), 0);
	CHECK_EQ(h2.target, OVMC_ROUTER_TARGET_DLPAR);
	CHECK_EQ(h2.flags, OVMC_ROUTER_FLAG_RESPONSE);
	CHECK_EQ(h2.opcode, 0x1234);
	CHECK_EQ(h2.rc, 0x8028);
	CHECK_EQ(h2.token, 0xFEDCBA98);
	CHECK_EQ(h2.total_len, 32);
	CHECK_EQ(h2.data_len, 0);

	/* the largest message */
	{
		uint8_t *big = xmalloc(OVMC_ROUTER_MAX_MSG);

		ovmc_router_hdr_init(&h, OVMC_ROUTER_TARGET_VSP, 7, 9, 0, OVMC_ROUTER_MAX_DATA);
		CHECK_EQ(ovmc_router_hdr_encode(&h, big), 0);
		CHECK_EQ(ovmc_router_hdr_decode(big, OVMC_ROUTER_MAX_MSG, &h2), 0);
		CHECK_EQ(h2.total_len, 4096);
		CHECK_EQ(h2.data_len, 4064);
	}
}

TEST(hdr_decode_every_truncation_fails_and_keeps_covered_fields)
{
	for (size_t len = 0; len < HDR; len++) {
		struct ovmc_router_hdr h;
		uint8_t *copy = malloc(len ? len : 1); /* exact size: ASan sees overreads */

		CHECK(copy);
		memcpy(copy, golden_request, len);
		memset(&h, 0x77, sizeof(h));
		if (ovmc_router_hdr_decode(copy, len, &h) != OVMC_ROUTER_ERR_TRUNCATED) {
			free(copy);
			FAIL("length %zu not reported truncated", len);
		}
		free(copy);
		CHECK_EQ(h.hdr_len, len >= 4 ? 32 : 0);
		CHECK_EQ(h.total_len, len >= 8 ? 36 : 0);
		CHECK_EQ(h.token, len >= 12 ? 0x01020304 : 0);
		CHECK_EQ(h.target, len >= 14 ? ROUTER : 0);
		CHECK_EQ(h.flags, len >= 16 ? EXPECT : 0);
		CHECK_EQ(h.data_len, len >= 20 ? 4 : 0);
		CHECK_EQ(h.opcode, len >= 22 ? OP_ECHO : 0);
		CHECK_EQ(h.rc, 0);
	}
	/* a whole header, but the message ends before its data */
	{
		struct ovmc_router_hdr h;

		CHECK_EQ(ovmc_router_hdr_decode(golden_request, 35, &h), OVMC_ROUTER_ERR_TOTAL_LEN);
		CHECK_EQ(h.token, 0x01020304);
	}
}

/* The golden request with one byte changed, decoded at `len`. */
static int decode_with(size_t off, uint8_t val, size_t len)
{
	uint8_t m[sizeof(golden_request) + 8] = {0};
	struct ovmc_router_hdr h;

	memcpy(m, golden_request, sizeof(golden_request));
	m[off] = val;
	return ovmc_router_hdr_decode(m, len, &h);
}

TEST(hdr_decode_each_malformed_field_has_its_own_error)
{
	const size_t n = sizeof(golden_request);

	CHECK_EQ(decode_with(3, 31, n), OVMC_ROUTER_ERR_HDR_LEN);
	CHECK_EQ(decode_with(3, 33, n), OVMC_ROUTER_ERR_HDR_LEN);
	CHECK_EQ(decode_with(3, 0, n), OVMC_ROUTER_ERR_HDR_LEN);
	CHECK_EQ(decode_with(7, 35, n), OVMC_ROUTER_ERR_TOTAL_LEN);
	CHECK_EQ(decode_with(7, 37, n), OVMC_ROUTER_ERR_TOTAL_LEN);
	CHECK_EQ(decode_with(4, 1, n), OVMC_ROUTER_ERR_TOTAL_LEN);
	CHECK_EQ(decode_with(0, 0xDE, n + 1), OVMC_ROUTER_ERR_TOTAL_LEN); /* extra byte */
	CHECK_EQ(decode_with(19, 3, n), OVMC_ROUTER_ERR_DATA_LEN);
	CHECK_EQ(decode_with(19, 5, n), OVMC_ROUTER_ERR_DATA_LEN);
	CHECK_EQ(decode_with(16, 0x80, n), OVMC_ROUTER_ERR_DATA_LEN);
	CHECK_EQ(decode_with(0, 0xDF, n), OVMC_ROUTER_ERR_DESCRIPTOR);
	CHECK_EQ(decode_with(1, 0x00, n), OVMC_ROUTER_ERR_DESCRIPTOR);
	CHECK_EQ(decode_with(2, 0xFE, n), OVMC_ROUTER_ERR_DESCRIPTOR);
	/* flags, reserved bytes, opcode and rc are the receiver's business */
	CHECK_EQ(decode_with(15, 0xFF, n), 0);
	CHECK_EQ(decode_with(14, 0x11, n), 0);
	CHECK_EQ(decode_with(31, 0x11, n), 0);
	CHECK_EQ(decode_with(23, 0x11, n), 0);
	/* size faults come before the descriptor */
	{
		uint8_t m[40];

		memcpy(m, golden_request, 36);
		m[0] = 0;
		m[3] = 40;
		CHECK_EQ(ovmc_router_hdr_decode(m, 36, &(struct ovmc_router_hdr){0}),
			 OVMC_ROUTER_ERR_HDR_LEN);
		CHECK_EQ(ovmc_router_hdr_decode(m, 20, &(struct ovmc_router_hdr){0}),
			 OVMC_ROUTER_ERR_TRUNCATED);
	}
	/* distinct and named */
	{
		const int errs[] = {OVMC_ROUTER_ERR_TRUNCATED, OVMC_ROUTER_ERR_HDR_LEN,
				    OVMC_ROUTER_ERR_TOTAL_LEN, OVMC_ROUTER_ERR_DATA_LEN,
				    OVMC_ROUTER_ERR_TOO_BIG,   OVMC_ROUTER_ERR_DESCRIPTOR};

		for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
			CHECK(strcmp(ovmc_router_strerror(errs[i]), "unknown error") != 0);
			for (size_t j = 0; j < i; j++)
				CHECK(errs[i] != errs[j] && strcmp(ovmc_router_strerror(errs[i]),
								   ovmc_router_strerror(errs[j])));
		}
		CHECK(!strcmp(ovmc_router_strerror(-EINVAL), ovmc_strerror(-EINVAL)));
	}
}

/* Every byte of the golden request set to every other value. */
TEST(hdr_decode_sweep_of_corrupted_bytes)
{
	for (size_t off = 0; off < sizeof(golden_request); off++) {
		int want;

		if (off < 3)
			want = OVMC_ROUTER_ERR_DESCRIPTOR;
		else if (off == 3)
			want = OVMC_ROUTER_ERR_HDR_LEN;
		else if (off < 8)
			want = OVMC_ROUTER_ERR_TOTAL_LEN;
		else if (off >= 16 && off < 20)
			want = OVMC_ROUTER_ERR_DATA_LEN;
		else
			want = 0; /* token, target, flags, opcode, rc, reserved, data */
		for (unsigned v = 0; v < 256; v++) {
			int got;

			if (v == golden_request[off])
				continue;
			got = decode_with(off, (uint8_t)v, sizeof(golden_request));
			if (got != want)
				FAIL("byte %zu = 0x%02x: %d (%s), expected %d", off, v, got,
				     ovmc_router_strerror(got), want);
		}
	}
}

TEST(hdr_decode_total_above_4096_is_too_big)
{
	size_t n = OVMC_ROUTER_MAX_MSG + 1;
	uint8_t *m = xmalloc(n);
	struct ovmc_router_hdr h;

	memcpy(m, golden_request, HDR);
	ovmc_put_be32(m + 4, (uint32_t)n);
	ovmc_put_be32(m + 16, (uint32_t)(n - HDR));
	CHECK_EQ(ovmc_router_hdr_decode(m, n, &h), OVMC_ROUTER_ERR_TOO_BIG);
	CHECK_EQ(h.total_len, n);
	m[0] = 0; /* still a size fault first */
	CHECK_EQ(ovmc_router_hdr_decode(m, n, &h), OVMC_ROUTER_ERR_TOO_BIG);
}

TEST(hdr_encode_refuses_what_decode_rejects)
{
	struct ovmc_router_hdr h;
	uint8_t out[HDR], untouched[HDR];

	memset(out, 0x5A, sizeof(out));
	memcpy(untouched, out, sizeof(out));
	ovmc_router_hdr_init(&h, ROUTER, OP_ECHO, 1, 0, 10);
	h.hdr_len = 31;
	CHECK_EQ(ovmc_router_hdr_encode(&h, out), OVMC_ROUTER_ERR_HDR_LEN);
	ovmc_router_hdr_init(&h, ROUTER, OP_ECHO, 1, 0, 10);
	h.total_len = 31;
	CHECK_EQ(ovmc_router_hdr_encode(&h, out), OVMC_ROUTER_ERR_TOTAL_LEN);
	ovmc_router_hdr_init(&h, ROUTER, OP_ECHO, 1, 0, 10);
	h.data_len = 11;
	CHECK_EQ(ovmc_router_hdr_encode(&h, out), OVMC_ROUTER_ERR_DATA_LEN);
	ovmc_router_hdr_init(&h, ROUTER, OP_ECHO, 1, 0, OVMC_ROUTER_MAX_DATA + 1);
	CHECK_EQ(ovmc_router_hdr_encode(&h, out), OVMC_ROUTER_ERR_TOO_BIG);
	CHECK_MEM(out, untouched, HDR);
}

TEST(names_cover_targets_return_codes_and_opcodes)
{
	static const uint16_t rcs[] = {0x0000, 0x8001, 0x8003, 0x8006, 0x8007, 0x8020, 0x8021,
				       0x8022, 0x8023, 0x8024, 0x8025, 0x8026, 0x8027, 0x8028,
				       0x8029, 0x802A, 0x802B, 0x802C, 0x802D, 0x802E};

	for (uint16_t t = 0x8000; t <= 0x8007; t++)
		CHECK(strcmp(ovmc_router_target_name(t), "unknown") != 0);
	CHECK(!strcmp(ovmc_router_target_name(0x8008), "unknown"));
	CHECK(!strcmp(ovmc_router_target_name(OVMC_ROUTER_TARGET_LPAR_CONFIG), "LPAR config"));
	for (size_t i = 0; i < sizeof(rcs) / sizeof(rcs[0]); i++)
		CHECK(strcmp(ovmc_router_rc_name(rcs[i]), "unknown") != 0);
	CHECK(!strcmp(ovmc_router_rc_name(0x8002), "unknown"));
	CHECK(!strcmp(ovmc_router_rc_name(OVMC_ROUTER_RC_INVALID_STATE), "InvalidState"));
	CHECK(!strcmp(ovmc_router_opcode_name(OP_XCHG), "ExchangeOps"));
	CHECK(!strcmp(ovmc_router_opcode_name(OP_CLOSE), "Close"));
	CHECK(!strcmp(ovmc_router_opcode_name(OP_ECHO), "Echo"));
	CHECK(!strcmp(ovmc_router_opcode_name(3), "unknown"));
}

/* ==== the backend through the simulation ==== */

struct rt {
	struct sim *s;
	struct ovmc_backend *b;
	struct sim_file *f;
	uint32_t next_token;
	uint8_t *resp; /* MTU bytes */
	size_t resp_len;
	unsigned logs;
};

static void backend_free_cb(void *p)
{
	struct ovmc_backend *b = p;

	ovmc_backend_free(b);
	free(b);
}

static void backend_only_free_cb(void *p)
{
	ovmc_backend_free(p);
}

/* Render every log line, so the format arguments run under the sanitizers. */
static void __attribute__((format(printf, 3, 0)))
count_log(void *user, enum ovmc_log_level level, const char *fmt, va_list ap)
{
	struct rt *t = user;
	char line[512];

	(void)level;
	vsnprintf(line, sizeof(line), fmt, ap);
	if (getenv("OVMC_TEST_LOG"))
		fprintf(stderr, "[router] %s\n", line);
	t->logs++;
}

/* A router behind the hypervisor core, both sides ready, no session yet. */
static struct rt *router_sim(const struct sim_opts *opts)
{
	struct rt *t = xmalloc(sizeof(*t));
	struct ovmc_backend_env env = {.log = count_log, .log_user = t};
	struct sim_opts o;

	if (opts)
		o = *opts;
	else
		sim_opts_default(&o);
	t->b = calloc(1, sizeof(*t->b));
	CHECK(t->b);
	CHECK_EQ(ovmc_backend_new("router", &env, t->b), 0);
	/* deferred before the simulation: freed after it (LIFO) */
	ovmc_test_defer(backend_free_cb, t->b);
	o.backend = t->b->ops;
	o.backend_arg = t->b->arg;
	t->s = sim_new(&o);
	sim_ready(t->s);
	t->resp = xmalloc(sim_mtu(t->s));
	t->next_token = 0x10000;
	return t;
}

static struct sim_file *open_session(struct rt *t, unsigned seed)
{
	uint8_t id[OVMC_HMC_ID_LEN];

	sim_make_id(id, seed);
	return sim_open_session(t->s, id);
}

/* A router with one VMC session open (t->f). */
static struct rt *router_session(const struct sim_opts *opts)
{
	struct rt *t = router_sim(opts);

	t->f = open_session(t, 1);
	return t;
}

static struct ovmc_router_stats rstats(struct rt *t)
{
	struct ovmc_router_stats st;

	CHECK_EQ(ovmc_router_stats(t->b, &st), 0);
	return st;
}

static size_t mkreq(uint8_t *buf, uint16_t target, uint16_t opcode, uint32_t token, uint8_t flags,
		    const void *data, size_t dlen)
{
	struct ovmc_router_hdr h;

	ovmc_router_hdr_init(&h, target, opcode, token, flags, (uint32_t)dlen);
	CHECK_EQ(ovmc_router_hdr_encode(&h, buf), 0);
	if (dlen)
		memcpy(buf + HDR, data, dlen);
	return HDR + dlen;
}

/* write() as an application would, pumping while the driver says busy. */
static void app_write(struct rt *t, struct sim_file *f, const uint8_t *msg, size_t len)
{
	for (unsigned tries = 0;; tries++) {
		ssize_t n = sim_write(t->s, f, msg, len);

		if (n == (ssize_t)len)
			return;
		if (n != -EBUSY || tries == 100)
			FAIL("write of %zu bytes: %zd", len, n);
		sim_advance(t->s, SIM_MS);
	}
}

/* Wait for and read() the next message into t->resp. */
static size_t app_read(struct rt *t, struct sim_file *f)
{
	ssize_t n;

	if (!sim_wait(t->s, f, POLLIN, 5 * SIM_S))
		FAIL("no response arrived");
	n = sim_read(t->s, f, t->resp, sim_mtu(t->s));
	if (n <= 0)
		FAIL("read: %zd", n);
	t->resp_len = (size_t)n;
	return (size_t)n;
}

static void expect_nothing_more(struct rt *t, struct sim_file *f)
{
	sim_advance(t->s, SIM_S);
	CHECK_EQ(sim_read(t->s, f, t->resp, sim_mtu(t->s)), -EAGAIN);
}

/*
 * What is wrong with response `r` of `n` bytes (NULL if nothing): every
 * header field at its offset, then the data.
 */
static const char *resp_problem(const uint8_t *r, size_t n, uint32_t token, uint16_t target,
				uint16_t opcode, uint16_t rc, const void *data, size_t dlen)
{
	static char why[256];

#define WRONG(...) (snprintf(why, sizeof(why), __VA_ARGS__), why)
	if (n != HDR + dlen)
		return WRONG("%zu bytes, expected %zu", n, HDR + dlen);
	if (r[0] != 0xDE || r[1] != 0xCA || r[2] != 0xFF)
		return WRONG("descriptor %02x %02x %02x", r[0], r[1], r[2]);
	if (r[3] != 32)
		return WRONG("header length %u", r[3]);
	if (ovmc_get_be32(r + 4) != n)
		return WRONG("total length %u for %zu bytes", ovmc_get_be32(r + 4), n);
	if (ovmc_get_be32(r + 8) != token)
		return WRONG("token 0x%08x, expected 0x%08x", ovmc_get_be32(r + 8), token);
	if (ovmc_get_be16(r + 12) != target)
		return WRONG("target 0x%04x, expected 0x%04x", ovmc_get_be16(r + 12), target);
	if (r[14] != 0)
		return WRONG("reserved byte 14 is 0x%02x", r[14]);
	if (r[15] != 0x40)
		return WRONG("flags 0x%02x", r[15]);
	if (ovmc_get_be32(r + 16) != dlen)
		return WRONG("data length %u, expected %zu", ovmc_get_be32(r + 16), dlen);
	if (ovmc_get_be16(r + 20) != opcode)
		return WRONG("opcode 0x%04x, expected 0x%04x", ovmc_get_be16(r + 20), opcode);
	if (ovmc_get_be16(r + 22) != rc)
		return WRONG("return code 0x%04x (%s), expected 0x%04x (%s)", ovmc_get_be16(r + 22),
			     ovmc_router_rc_name(ovmc_get_be16(r + 22)), rc,
			     ovmc_router_rc_name(rc));
	for (unsigned i = 24; i < 32; i++) {
		if (r[i])
			return WRONG("reserved byte %u is 0x%02x", i, r[i]);
	}
	if (dlen && memcmp(r + HDR, data, dlen) != 0)
		return WRONG("data differs");
	return NULL;
#undef WRONG
}

#define CHECK_RESP(t, token, target, opcode, rc, data, dlen)                                       \
	do {                                                                                       \
		const char *why_ = resp_problem((t)->resp, (t)->resp_len, (token), (target),       \
						(opcode), (rc), (data), (dlen));                   \
		if (why_)                                                                          \
			FAIL("response: %s", why_);                                                \
	} while (0)

/*
 * One request with a fresh token on `f`; checks the whole response, whose
 * data must be `rdata` (rdlen bytes).
 */
static void call_on(struct rt *t, struct sim_file *f, uint16_t target, uint16_t opcode,
		    uint8_t flags, const void *data, size_t dlen, uint16_t rc, const void *rdata,
		    size_t rdlen, int line)
{
	uint8_t *req = malloc(HDR + dlen);
	uint32_t token = t->next_token++;
	const char *why;

	CHECK(req);
	mkreq(req, target, opcode, token, flags, data, dlen);
	app_write(t, f, req, HDR + dlen);
	free(req);
	app_read(t, f);
	why = resp_problem(t->resp, t->resp_len, token, target, opcode, rc, rdata, rdlen);
	if (why)
		ovmc_test_fail(__FILE__, line, "target 0x%04x opcode 0x%04x: %s", target, opcode,
			       why);
}

/* A request without data, answered without data. */
#define EXPECT_RC(t, target, opcode, rc)                                                           \
	call_on((t), (t)->f, (target), (opcode), EXPECT, NULL, 0, (rc), NULL, 0, __LINE__)
#define EXPECT_ECHO(t, data, dlen)                                                                 \
	call_on((t), (t)->f, ROUTER, OP_ECHO, EXPECT, (data), (dlen), 0, (data), (dlen), __LINE__)

/* Send raw bytes, read the response into t->resp. */
static void raw(struct rt *t, const uint8_t *msg, size_t len)
{
	app_write(t, t->f, msg, len);
	app_read(t, t->f);
}

TEST(echo_session_100_requests_every_field_checked)
{
	struct rt *t = router_session(NULL);
	uint8_t req[HDR + 100], data[100];
	struct ovmc_router_stats st;

	raw(t, req, mkreq(req, ROUTER, OP_XCHG, 0xC0FFEE01, EXPECT, NULL, 0));
	CHECK_RESP(t, 0xC0FFEE01, ROUTER, OP_XCHG, 0, NULL, 0);
	for (unsigned i = 1; i <= 100; i++) {
		uint32_t token = 0xA5000000u + i * 0x10001u;

		for (size_t k = 0; k < i; k++)
			data[k] = pattern(i, k);
		raw(t, req, mkreq(req, ROUTER, OP_ECHO, token, EXPECT, data, i));
		CHECK_EQ(t->resp_len, HDR + i);
		CHECK_RESP(t, token, ROUTER, OP_ECHO, 0, data, i);
	}
	raw(t, req, mkreq(req, ROUTER, OP_CLOSE, 0xC0FFEE02, EXPECT, NULL, 0));
	CHECK_RESP(t, 0xC0FFEE02, ROUTER, OP_CLOSE, 0, NULL, 0);
	expect_nothing_more(t, t->f);

	st = rstats(t);
	CHECK_EQ(st.requests, 102);
	CHECK_EQ(st.responses, 102);
	CHECK_EQ(st.errors, 0);
	CHECK_EQ(st.dropped, 0);
	CHECK_EQ(st.queued, 0);
}

TEST(echo_of_the_largest_message_returns_every_byte)
{
	struct rt *t = router_session(NULL);
	uint8_t *data = xmalloc(OVMC_ROUTER_MAX_DATA);

	for (size_t k = 0; k < OVMC_ROUTER_MAX_DATA; k++)
		data[k] = pattern(7, k);
	EXPECT_RC(t, ROUTER, OP_XCHG, 0);
	EXPECT_ECHO(t, data, OVMC_ROUTER_MAX_DATA);
	EXPECT_ECHO(t, NULL, 0); /* and of none */
}

TEST(requests_before_exchange_ops_get_invalid_state)
{
	struct rt *t = router_session(NULL);

	call_on(t, t->f, ROUTER, OP_ECHO, EXPECT, "abc", 3, OVMC_ROUTER_RC_INVALID_STATE, NULL, 0,
		__LINE__);
	EXPECT_RC(t, ROUTER, OP_CLOSE, OVMC_ROUTER_RC_INVALID_STATE);
	/* nothing changed: the session opens normally afterwards */
	EXPECT_RC(t, ROUTER, OP_XCHG, 0);
	EXPECT_ECHO(t, "abc", 3);
	CHECK_EQ(rstats(t).errors, 2);
}

TEST(requests_after_close_get_invalid_state)
{
	struct rt *t = router_session(NULL);

	EXPECT_RC(t, ROUTER, OP_XCHG, 0);
	EXPECT_RC(t, ROUTER, OP_CLOSE, 0);
	call_on(t, t->f, ROUTER, OP_ECHO, EXPECT, "x", 1, OVMC_ROUTER_RC_INVALID_STATE, NULL, 0,
		__LINE__);
	EXPECT_RC(t, ROUTER, OP_XCHG, OVMC_ROUTER_RC_INVALID_STATE);
	EXPECT_RC(t, ROUTER, OP_CLOSE, OVMC_ROUTER_RC_INVALID_STATE);
	/* the ladder: target and opcode faults are still reported as such */
	EXPECT_RC(t, ROUTER, 0x0003, OVMC_ROUTER_RC_INVALID_OPCODE);
	EXPECT_RC(t, OVMC_ROUTER_TARGET_VSP, 1, OVMC_ROUTER_RC_INVALID_TARGET);
	/* a new VMC session starts a new router session */
	sim_close(t->s, t->f);
	sim_run(t->s);
	t->f = open_session(t, 2);
	EXPECT_RC(t, ROUTER, OP_CLOSE, OVMC_ROUTER_RC_INVALID_STATE);
	EXPECT_RC(t, ROUTER, OP_XCHG, 0);
	EXPECT_ECHO(t, "again", 5);
}

TEST(exchange_ops_twice_gets_invalid_state_and_keeps_the_session)
{
	struct rt *t = router_session(NULL);

	EXPECT_RC(t, ROUTER, OP_XCHG, 0);
	EXPECT_RC(t, ROUTER, OP_XCHG, OVMC_ROUTER_RC_INVALID_STATE);
	EXPECT_ECHO(t, "still open", 10);
	EXPECT_RC(t, ROUTER, OP_CLOSE, 0);
}

TEST(unknown_router_opcode_gets_invalid_opcode)
{
	static const uint16_t ops[] = {0x0000, 0x0003, 0x0100, 0x0102, 0x0104, 0x0203, 0xFFFF};
	struct rt *t = router_session(NULL);

	/* opcode before state: unknown before exchange ops too */
	EXPECT_RC(t, ROUTER, 0x0104, OVMC_ROUTER_RC_INVALID_OPCODE);
	EXPECT_RC(t, ROUTER, OP_XCHG, 0);
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		call_on(t, t->f, ROUTER, ops[i], EXPECT, "data", 4, OVMC_ROUTER_RC_INVALID_OPCODE,
			NULL, 0, __LINE__);
	EXPECT_ECHO(t, "ok", 2);
}

TEST(unknown_target_gets_invalid_target)
{
	static const uint16_t targets[] = {0x0000, 0x7FFF, 0x8001, 0x8002, 0x8003, 0x8004,
					   0x8005, 0x8006, 0x8007, 0x8008, 0xFFFF};
	struct rt *t = router_session(NULL);

	/* target before state */
	EXPECT_RC(t, OVMC_ROUTER_TARGET_LPAR_CONFIG, 1, OVMC_ROUTER_RC_INVALID_TARGET);
	EXPECT_RC(t, ROUTER, OP_XCHG, 0);
	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++)
		call_on(t, t->f, targets[i], OP_ECHO, EXPECT, "data", 4,
			OVMC_ROUTER_RC_INVALID_TARGET, NULL, 0, __LINE__);
	EXPECT_ECHO(t, "ok", 2);
}

TEST(bad_descriptor_gets_invalid_data)
{
	struct rt *t = router_session(NULL);
	uint8_t req[HDR + 4];

	EXPECT_RC(t, ROUTER, OP_XCHG, 0);
	for (unsigned i = 0; i < 3; i++) {
		mkreq(req, ROUTER, OP_ECHO, 0x0D0D0000 + i, EXPECT, "abcd", 4);
		req[i] ^= 0x01;
		raw(t, req, sizeof(req));
		CHECK_RESP(t, 0x0D0D0000 + i, ROUTER, OP_ECHO, OVMC_ROUTER_RC_INVALID_DATA, NULL,
			   0);
	}
	memset(req, 0, 3);
	raw(t, req, sizeof(req));
	CHECK_RESP(t, 0x0D0D0002, ROUTER, OP_ECHO, OVMC_ROUTER_RC_INVALID_DATA, NULL, 0);
	EXPECT_ECHO(t, "ok", 2);
}

TEST(short_message_gets_invalid_size_with_uncovered_fields_zero)
{
	static const size_t lens[] = {1, 3, 4, 8, 11, 12, 13, 14, 15, 20, 21, 22, 23, 31};
	struct rt *t = router_session(NULL);
	uint8_t req[HDR];

	EXPECT_RC(t, ROUTER, OP_XCHG, 0);
	mkreq(req, OVMC_ROUTER_TARGET_DLPAR, 0x0ABC, 0x11223344, EXPECT, NULL, 0);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t n = lens[i];

		raw(t, req, n);
		CHECK_EQ(t->resp_len, HDR);
		CHECK_RESP(t, n >= 12 ? 0x11223344 : 0, n >= 14 ? OVMC_ROUTER_TARGET_DLPAR : 0,
			   n >= 22 ? 0x0ABC : 0, OVMC_ROUTER_RC_INVALID_SIZE, NULL, 0);
	}
	/* short and with a wrong descriptor: size first */
	req[0] = 0;
	raw(t, req, 16);
	CHECK_RESP(t, 0x11223344, OVMC_ROUTER_TARGET_DLPAR, 0, OVMC_ROUTER_RC_INVALID_SIZE, NULL,
		   0);
	EXPECT_ECHO(t, "ok", 2);
	CHECK_EQ(rstats(t).dropped, 0);
}

TEST(disagreeing_length_fields_get_invalid_size)
{
	struct rt *t = router_session(NULL);
	uint8_t req[HDR + 8];
	const uint32_t tok = 0x5151;

	EXPECT_RC(t, ROUTER, OP_XCHG, 0);
	/* header length */
	for (unsigned v = 0; v < 3; v++) {
		static const uint8_t bad[] = {0, 31, 33};

		mkreq(req, ROUTER, OP_ECHO, tok, EXPECT, "12345678", 8);
		req[3] = bad[v];
		raw(t, req, sizeof(req));
		CHECK_RESP(t, tok, ROUTER, OP_ECHO, OVMC_ROUTER_RC_INVALID_SIZE, NULL, 0);
	}
	/* total length: above, below the bytes received, zero, huge */
	for (unsigned v = 0; v < 4; v++) {
		static const uint32_t bad[] = {HDR + 9, HDR + 7, 0, 0xFFFFFFFFu};

		mkreq(req, ROUTER, OP_ECHO, tok, EXPECT, "12345678", 8);
		ovmc_put_be32(req + 4, bad[v]);
		raw(t, req, sizeof(req));
		CHECK_RESP(t, tok, ROUTER, OP_ECHO, OVMC_ROUTER_RC_INVALID_SIZE, NULL, 0);
	}
	/* total agrees with the bytes, data length does not */
	for (unsigned v = 0; v < 3; v++) {
		static const uint32_t bad[] = {7, 9, HDR + 8};

		mkreq(req, ROUTER, OP_ECHO, tok, EXPECT, "12345678", 8);
		ovmc_put_be32(req + 16, bad[v]);
		raw(t, req, sizeof(req));
		CHECK_RESP(t, tok, ROUTER, OP_ECHO, OVMC_ROUTER_RC_INVALID_SIZE, NULL, 0);
	}
	/* both lengths consistent with each other but not with the bytes */
	mkreq(req, ROUTER, OP_ECHO, tok, EXPECT, "12345678", 8);
	ovmc_put_be32(req + 4, HDR + 4);
	ovmc_put_be32(req + 16, 4);
	raw(t, req, sizeof(req));
	CHECK_RESP(t, tok, ROUTER, OP_ECHO, OVMC_ROUTER_RC_INVALID_SIZE, NULL, 0);
	/* a size fault hides a bad descriptor */
	req[1] = 0;
	raw(t, req, sizeof(req));
	CHECK_RESP(t, tok, ROUTER, OP_ECHO, OVMC_ROUTER_RC_INVALID_SIZE, NULL, 0);
	EXPECT_ECHO(t, "ok", 2);
}

TEST(message_above_4096_gets_invalid_size)
{
	struct sim_opts o;
	struct rt *t;
	const size_t sizes[] = {OVMC_ROUTER_MAX_MSG + 1, 5000, 8192};
	uint8_t *req;

	/* a channel whose MTU lets such a message through */
	sim_opts_default(&o);
	o.drv.max_mtu = 8192;
	o.hv.mtu = 8192;
	t = router_session(&o);
	CHECK_EQ(sim_mtu(t->s), 8192);
	req = xmalloc(8192);
	EXPECT_RC(t, ROUTER, OP_XCHG, 0);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];

		memset(req, 0x33, n);
		mkreq(req, ROUTER, OP_ECHO, 0x4097, EXPECT, NULL, 0);
		ovmc_put_be32(req + 4, (uint32_t)n);
		ovmc_put_be32(req + 16, (uint32_t)(n - HDR));
		raw(t, req, n);
		CHECK_RESP(t, 0x4097, ROUTER, OP_ECHO, OVMC_ROUTER_RC_INVALID_SIZE, NULL, 0);
	}
	/* exactly 4096 is fine */
	{
		uint8_t *data = xmalloc(OVMC_ROUTER_MAX_DATA);

		memset(data, 0x44, OVMC_ROUTER_MAX_DATA);
		EXPECT_ECHO(t, data, OVMC_ROUTER_MAX_DATA);
	}
}

TEST(request_with_response_flag_gets_invalid_data)
{
	struct rt *t = router_session(NULL);

	/* flag before state */
	call_on(t, t->f, ROUTER, OP_XCHG, OVMC_ROUTER_FLAG_RESPONSE, NULL, 0,
		OVMC_ROUTER_RC_INVALID_DATA, NULL, 0, __LINE__);
	EXPECT_RC(t, ROUTER, OP_XCHG, 0);
	call_on(t, t->f, ROUTER, OP_ECHO, OVMC_ROUTER_FLAG_RESPONSE, "r", 1,
		OVMC_ROUTER_RC_INVALID_DATA, NULL, 0, __LINE__);
	call_on(t, t->f, ROUTER, OP_ECHO, OVMC_ROUTER_FLAG_RESPONSE | EXPECT, "r", 1,
		OVMC_ROUTER_RC_INVALID_DATA, NULL, 0, __LINE__);
	/* flag before target */
	call_on(t, t->f, 0x1234, OP_ECHO, OVMC_ROUTER_FLAG_RESPONSE, NULL, 0,
		OVMC_ROUTER_RC_INVALID_DATA, NULL, 0, __LINE__);
	EXPECT_ECHO(t, "ok", 2);
}

TEST(request_without_response_expected_flag_is_answered_too)
{
	struct rt *t = router_session(NULL);

	call_on(t, t->f, ROUTER, OP_XCHG, 0, NULL, 0, 0, NULL, 0, __LINE__);
	call_on(t, t->f, ROUTER, OP_ECHO, 0, "quiet", 5, 0, "quiet", 5, __LINE__);
	/* other flag bits and reserved bytes are ignored */
	call_on(t, t->f, ROUTER, OP_ECHO, 0x3F, "odd", 3, 0, "odd", 3, __LINE__);
	{
		uint8_t req[HDR + 2];

		mkreq(req, ROUTER, OP_ECHO, 0x999, EXPECT, "hi", 2);
		req[14] = 0xEE;
		memset(req + 24, 0xEE, 8);
		req[22] = 0x12; /* a return code in a request */
		raw(t, req, sizeof(req));
		CHECK_RESP(t, 0x999, ROUTER, OP_ECHO, 0, "hi", 2);
	}
	call_on(t, t->f, ROUTER, OP_CLOSE, 0, NULL, 0, 0, NULL, 0, __LINE__);
}

TEST(router_state_is_per_vmc_session)
{
	struct sim_opts o;
	struct rt *t;
	struct sim_file *g;

	sim_opts_default(&o);
	o.drv.max_hmcs = 2;
	o.hv.max_hmcs = 2;
	t = router_session(&o);
	g = open_session(t, 2);
	EXPECT_RC(t, ROUTER, OP_XCHG, 0);
	call_on(t, g, ROUTER, OP_ECHO, EXPECT, "g", 1, OVMC_ROUTER_RC_INVALID_STATE, NULL, 0,
		__LINE__);
	EXPECT_ECHO(t, "f", 1);
	EXPECT_RC(t, ROUTER, OP_CLOSE, 0);
	call_on(t, g, ROUTER, OP_XCHG, EXPECT, NULL, 0, 0, NULL, 0, __LINE__);
	call_on(t, g, ROUTER, OP_ECHO, EXPECT, "g", 1, 0, "g", 1, __LINE__);
	EXPECT_RC(t, ROUTER, OP_ECHO, OVMC_ROUTER_RC_INVALID_STATE);
}

/* ---- pluggable targets ---- */

struct seen {
	unsigned calls;
	uint16_t opcode;
	uint32_t token;
	enum ovmc_router_state state;
	size_t len;
	uint8_t data[64];
	bool had_session;
	size_t reply_max;
	int big_reply_rc, max_reply_rc;
	int add_rc;
	struct ovmc_backend *router;
};

static int lpar_handler(void *arg, struct ovmc_router_call *c)
{
	struct seen *sn = arg;
	const uint8_t *d = ovmc_router_call_data(c, &sn->len);
	uint8_t rev[64];

	sn->calls++;
	sn->opcode = ovmc_router_call_opcode(c);
	sn->token = ovmc_router_call_hdr(c)->token;
	sn->state = ovmc_router_call_state(c);
	sn->had_session = ovmc_router_call_session(c) != NULL &&
			  ovmc_hv_session_hmc_id(ovmc_router_call_session(c)) != NULL;
	sn->reply_max = ovmc_router_call_reply_max(c);
	if (sn->len <= sizeof(sn->data) && sn->len)
		memcpy(sn->data, d, sn->len);
	switch (sn->opcode) {
	case 0x0010: /* good, data reversed */
		for (size_t i = 0; i < sn->len && i < sizeof(rev); i++)
			rev[i] = d[sn->len - 1 - i];
		return ovmc_router_call_reply(c, rev, sn->len) ? -EIO : OVMC_ROUTER_RC_GOOD;
	case 0x0011: /* the category's own failure, with data */
		ovmc_router_call_reply(c, "nope", 4);
		return OVMC_ROUTER_RC_INVALID_CATEGORY;
	case 0x0012: /* the handler fails: its data is dropped */
		ovmc_router_call_reply(c, "lost", 4);
		return -EIO;
	case 0x0013: { /* the largest reply */
		uint8_t *big = calloc(1, sn->reply_max + 1);

		if (!big)
			return -ENOMEM;
		memset(big, 0x7E, sn->reply_max + 1);
		ovmc_router_call_reply(c, "keep", 4);
		sn->big_reply_rc = ovmc_router_call_reply(c, big, sn->reply_max + 1);
		sn->max_reply_rc = ovmc_router_call_reply(c, big, sn->reply_max);
		free(big);
		return 0x1234; /* any code at all */
	}
	case 0x0014: /* out of range */
		return 0x10000;
	case 0x0015: { /* registers more targets while running */
		for (uint16_t id = 0x9000; id < 0x9010; id++) {
			struct ovmc_router_target nt = {
				.id = id, .request = lpar_handler, .arg = sn};
			int rc = ovmc_router_add_target(sn->router, &nt);

			if (rc)
				sn->add_rc = rc;
		}
		return 0;
	}
	}
	return OVMC_ROUTER_RC_INVALID_OPCODE;
}

TEST(registered_target_receives_requests)
{
	struct rt *t = router_session(NULL);
	struct seen *sn = xmalloc(sizeof(*sn));
	struct ovmc_router_target lpar = {
		.id = OVMC_ROUTER_TARGET_LPAR_CONFIG,
		.name = "test LPAR config",
		.request = lpar_handler,
		.arg = sn,
	};
	const uint16_t L = OVMC_ROUTER_TARGET_LPAR_CONFIG;

	sn->router = t->b;
	CHECK_EQ(ovmc_router_add_target(t->b, &lpar), 0);

	/* not before exchange ops (the target did not ask to) */
	call_on(t, t->f, L, 0x0010, EXPECT, "abc", 3, OVMC_ROUTER_RC_INVALID_STATE, NULL, 0,
		__LINE__);
	CHECK_EQ(sn->calls, 0);
	EXPECT_RC(t, ROUTER, OP_XCHG, 0);

	call_on(t, t->f, L, 0x0010, EXPECT, "abc", 3, 0, "cba", 3, __LINE__);
	CHECK_EQ(sn->calls, 1);
	CHECK_EQ(sn->opcode, 0x0010);
	CHECK_EQ(sn->token, t->next_token - 1);
	CHECK_EQ(sn->state, OVMC_ROUTER_OPEN);
	CHECK_EQ(sn->len, 3);
	CHECK_MEM(sn->data, "abc", 3);
	CHECK(sn->had_session);
	CHECK_EQ(sn->reply_max, OVMC_ROUTER_MAX_DATA);

	call_on(t, t->f, L, 0x0010, EXPECT, NULL, 0, 0, NULL, 0, __LINE__);
	CHECK_EQ(sn->len, 0);
	call_on(t, t->f, L, 0x0011, EXPECT, "q", 1, OVMC_ROUTER_RC_INVALID_CATEGORY, "nope", 4,
		__LINE__);
	call_on(t, t->f, L, 0x0012, EXPECT, "q", 1, OVMC_ROUTER_RC_GENERIC_ERROR, NULL, 0,
		__LINE__);
	call_on(t, t->f, L, 0x0014, EXPECT, NULL, 0, OVMC_ROUTER_RC_GENERIC_ERROR, NULL, 0,
		__LINE__);
	call_on(t, t->f, L, 0x00FF, EXPECT, NULL, 0, OVMC_ROUTER_RC_INVALID_OPCODE, NULL, 0,
		__LINE__);
	{
		uint8_t *big = xmalloc(OVMC_ROUTER_MAX_DATA);

		memset(big, 0x7E, OVMC_ROUTER_MAX_DATA);
		call_on(t, t->f, L, 0x0013, EXPECT, NULL, 0, 0x1234, big, OVMC_ROUTER_MAX_DATA,
			__LINE__);
		CHECK_EQ(sn->big_reply_rc, -EMSGSIZE);
		CHECK_EQ(sn->max_reply_rc, 0);
	}
	/* a handler adding targets (the table grows under it) */
	call_on(t, t->f, L, 0x0015, EXPECT, NULL, 0, 0, NULL, 0, __LINE__);
	CHECK_EQ(sn->add_rc, 0);
	call_on(t, t->f, 0x900F, 0x0010, EXPECT, "xy", 2, 0, "yx", 2, __LINE__);
	/* the router's own opcodes are untouched */
	EXPECT_ECHO(t, "router", 6);

	/* nor after close */
	EXPECT_RC(t, ROUTER, OP_CLOSE, 0);
	{
		unsigned calls = sn->calls;

		call_on(t, t->f, L, 0x0010, EXPECT, "abc", 3, OVMC_ROUTER_RC_INVALID_STATE, NULL, 0,
			__LINE__);
		CHECK_EQ(sn->calls, calls);
	}
	CHECK_EQ(rstats(t).dropped, 0);
}

TEST(target_may_take_requests_before_exchange_ops)
{
	struct rt *t = router_session(NULL);
	struct seen *sn = xmalloc(sizeof(*sn));
	struct ovmc_router_target vsp = {
		.id = OVMC_ROUTER_TARGET_VSP,
		.flags = OVMC_ROUTER_TARGET_BEFORE_OPEN,
		.request = lpar_handler,
		.arg = sn,
	};

	CHECK_EQ(ovmc_router_add_target(t->b, &vsp), 0);
	call_on(t, t->f, OVMC_ROUTER_TARGET_VSP, 0x0010, EXPECT, "12", 2, 0, "21", 2, __LINE__);
	CHECK_EQ(sn->state, OVMC_ROUTER_NOT_OPEN);
	EXPECT_RC(t, ROUTER, OP_XCHG, 0);
	call_on(t, t->f, OVMC_ROUTER_TARGET_VSP, 0x0010, EXPECT, "12", 2, 0, "21", 2, __LINE__);
	CHECK_EQ(sn->state, OVMC_ROUTER_OPEN);
	EXPECT_RC(t, ROUTER, OP_CLOSE, 0);
	call_on(t, t->f, OVMC_ROUTER_TARGET_VSP, 0x0010, EXPECT, "12", 2,
		OVMC_ROUTER_RC_INVALID_STATE, NULL, 0, __LINE__);
	CHECK_EQ(sn->calls, 2);
}

TEST(reply_max_follows_a_smaller_mtu)
{
	struct sim_opts o;
	struct rt *t;
	struct seen *sn;
	struct ovmc_router_target lpar = {.id = OVMC_ROUTER_TARGET_LPAR_CONFIG,
					  .request = lpar_handler};
	uint8_t big[1024 - HDR];

	sim_opts_default(&o);
	o.drv.max_mtu = 1024;
	t = router_session(&o);
	sn = xmalloc(sizeof(*sn));
	lpar.arg = sn;
	CHECK_EQ(ovmc_router_add_target(t->b, &lpar), 0);
	EXPECT_RC(t, ROUTER, OP_XCHG, 0);
	memset(big, 0x7E, sizeof(big));
	call_on(t, t->f, OVMC_ROUTER_TARGET_LPAR_CONFIG, 0x0013, EXPECT, NULL, 0, 0x1234, big,
		sizeof(big), __LINE__);
	CHECK_EQ(sn->reply_max, 1024 - HDR);
	CHECK_EQ(sn->big_reply_rc, -EMSGSIZE);
}

TEST(add_target_errors)
{
	struct ovmc_backend r, echo;
	struct ovmc_router_stats st;
	struct ovmc_router_target tg = {.id = OVMC_ROUTER_TARGET_DLPAR, .request = lpar_handler};

	CHECK_EQ(ovmc_backend_new("router", NULL, &r), 0);
	ovmc_test_defer(backend_only_free_cb, &r);
	CHECK_EQ(ovmc_backend_new("echo", NULL, &echo), 0);
	ovmc_test_defer(backend_only_free_cb, &echo);

	CHECK_EQ(ovmc_router_add_target(&r, &tg), 0);
	CHECK_EQ(ovmc_router_add_target(&r, &tg), -EEXIST);
	CHECK_EQ(ovmc_router_add_target(&echo, &tg), -EINVAL);
	CHECK_EQ(ovmc_router_add_target(NULL, &tg), -EINVAL);
	CHECK_EQ(ovmc_router_add_target(&r, NULL), -EINVAL);
	tg.id = ROUTER;
	CHECK_EQ(ovmc_router_add_target(&r, &tg), -EINVAL);
	tg.id = OVMC_ROUTER_TARGET_CUOD_AP;
	tg.request = NULL;
	CHECK_EQ(ovmc_router_add_target(&r, &tg), -EINVAL);
	CHECK_EQ(ovmc_router_stats(&echo, &st), -EINVAL);
	CHECK_EQ(ovmc_router_stats(&r, &st), 0);
	CHECK_EQ(st.requests, 0);
}

TEST(factory_knows_router_and_refuses_arguments)
{
	struct ovmc_backend b;

	CHECK_EQ(ovmc_backend_new("router:x", NULL, &b), -EINVAL);
	CHECK_EQ(ovmc_backend_new("router", NULL, &b), 0);
	CHECK(!strcmp(b.ops->name, "router"));
	CHECK(b.ops->open && b.ops->message && b.ops->close && b.ops->writable);
	ovmc_backend_free(&b);
}

/* ---- bursts and back-pressure ---- */

/*
 * Write `n` echo requests as fast as the driver takes them; when it is
 * busy, let the channel run and read whatever came back, as a poll loop
 * would. Every response must come in order. Returns how many requests
 * were written before the channel first ran.
 */
static unsigned burst(struct rt *t, unsigned n, uint32_t first_token)
{
	uint8_t req[HDR + 64], data[64];
	unsigned written = 0, got = 0, before_pump = 0, idle = 0;
	bool pumped = false;

	while (got < n) {
		unsigned progress = 0;

		while (written < n) {
			size_t dlen = 1 + written % 64;
			ssize_t w;

			for (size_t k = 0; k < dlen; k++)
				data[k] = pattern(written, k);
			mkreq(req, ROUTER, OP_ECHO, first_token + written, EXPECT, data, dlen);
			w = sim_write(t->s, t->f, req, HDR + dlen);
			if (w == -EBUSY)
				break;
			if (w != (ssize_t)(HDR + dlen))
				FAIL("write %u: %zd", written, w);
			written++;
			progress++;
			if (!pumped)
				before_pump++;
		}
		sim_run(t->s);
		pumped = true;
		for (;;) {
			size_t dlen = 1 + got % 64;
			ssize_t r = sim_read(t->s, t->f, t->resp, sim_mtu(t->s));
			const char *why;

			if (r == -EAGAIN)
				break;
			if (r <= 0 || got >= written)
				FAIL("read %u of %u written: %zd", got, written, r);
			t->resp_len = (size_t)r;
			for (size_t k = 0; k < dlen; k++)
				data[k] = pattern(got, k);
			why = resp_problem(t->resp, t->resp_len, first_token + got, ROUTER, OP_ECHO,
					   0, data, dlen);
			if (why)
				FAIL("response %u: %s", got, why);
			got++;
			progress++;
		}
		if (!progress) {
			if (++idle == 100)
				FAIL("stuck: %u written, %u read", written, got);
			sim_advance(t->s, SIM_MS);
		} else {
			idle = 0;
		}
	}
	return before_pump;
}

TEST(request_burst_beyond_hypervisor_buffers_loses_nothing)
{
	struct sim_opts o;
	struct rt *t;
	struct ovmc_hv_pool_info pi;
	struct ovmc_router_stats st;
	unsigned before_pump;

	sim_opts_default(&o);
	o.hv.hv_buffers = 4; /* few for the hypervisor, many for the partition */
	t = router_session(&o);
	CHECK_EQ(ovmc_hv_pool_info(t->s->hv, 0, &pi), 0);
	CHECK(pi.hv_free <= 4);
	EXPECT_RC(t, ROUTER, OP_XCHG, 0);
	before_pump = burst(t, 500, 0x100000);
	CHECK(before_pump > pi.hv_free);
	EXPECT_RC(t, ROUTER, OP_CLOSE, 0);
	expect_nothing_more(t, t->f);
	st = rstats(t);
	CHECK_EQ(st.requests, 502);
	CHECK_EQ(st.responses, 502);
	CHECK_EQ(st.dropped, 0);
	CHECK_EQ(st.queued, 0);
}

/*
 * The core's backlog is full when requests arrive (the hypervisor side
 * already queued unsolicited messages): ovmc_hv_send() says -ENOBUFS, the
 * router queues and resends on `writable`. Everything arrives, in order.
 */
TEST(full_core_backlog_defers_responses_in_order)
{
	struct sim_opts o;
	struct rt *t;
	struct ovmc_router_stats st;
	struct ovmc_hv_session *hs;
	uint8_t req[HDR + 16], data[16];
	unsigned unsolicited = 0;
	const unsigned n = 20;

	sim_opts_default(&o);
	o.hv.hv_buffers = 2;
	o.hv.backlog_limit = 2;
	t = router_session(&o);
	EXPECT_RC(t, ROUTER, OP_XCHG, 0);
	hs = sim_session(t->s, 0);

	/* fill the hypervisor's buffers and the core's backlog, no pumping */
	for (;;) {
		uint8_t u[8] = {'u', 'n', 's', 'o', 'l', 0, 0, 0};
		int rc;

		u[7] = (uint8_t)unsolicited;
		rc = ovmc_hv_send(hs, u, sizeof(u));
		if (rc == -ENOBUFS)
			break;
		CHECK_EQ(rc, 0);
		CHECK(++unsolicited < 100);
	}
	/* requests written while the core is full */
	for (unsigned i = 0; i < n; i++) {
		for (size_t k = 0; k < sizeof(data); k++)
			data[k] = pattern(i, k);
		mkreq(req, ROUTER, OP_ECHO, 0xB000 + i, EXPECT, data, sizeof(data));
		CHECK_EQ(sim_write(t->s, t->f, req, sizeof(req)), (ssize_t)sizeof(req));
	}
	sim_run(t->s);
	st = rstats(t);
	CHECK(st.deferred >= 1);

	for (unsigned i = 0; i < unsolicited; i++) {
		app_read(t, t->f);
		CHECK_EQ(t->resp_len, 8);
		CHECK_EQ(t->resp[7], i);
	}
	for (unsigned i = 0; i < n; i++) {
		app_read(t, t->f);
		for (size_t k = 0; k < sizeof(data); k++)
			data[k] = pattern(i, k);
		CHECK_RESP(t, 0xB000 + i, ROUTER, OP_ECHO, 0, data, sizeof(data));
	}
	EXPECT_RC(t, ROUTER, OP_CLOSE, 0);
	expect_nothing_more(t, t->f);
	st = rstats(t);
	CHECK_EQ(st.responses, n + 2);
	CHECK_EQ(st.dropped, 0);
	CHECK_EQ(st.queued, 0);
}

/*
 * Responses still queued when the VMC session goes away are freed and
 * counted. The core frees a buffer after every request, which drains the
 * router's queue at once; to keep responses queued, the test calls the
 * backend's message callback itself while the core's backlog is full.
 */
TEST(queued_responses_are_dropped_with_their_session)
{
	struct sim_opts o;
	struct rt *t;
	struct ovmc_router_stats st;
	struct ovmc_hv_session *hs;
	uint8_t req[HDR + 4];

	sim_opts_default(&o);
	o.hv.hv_buffers = 2;
	o.hv.backlog_limit = 1;
	t = router_session(&o);
	EXPECT_RC(t, ROUTER, OP_XCHG, 0);
	hs = sim_session(t->s, 0);
	for (unsigned i = 0; ovmc_hv_send(hs, "fill", 4) == 0; i++)
		CHECK(i < 100);
	for (uint32_t i = 0; i < 3; i++) {
		mkreq(req, ROUTER, OP_ECHO, i, EXPECT, "abcd", 4);
		t->b->ops->message(t->b->arg, hs, req, sizeof(req));
	}
	st = rstats(t);
	CHECK_EQ(st.requests, 4);
	CHECK_EQ(st.deferred, 3);
	CHECK_EQ(st.queued, 3);
	sim_close(t->s, t->f);
	sim_run(t->s);
	st = rstats(t);
	CHECK_EQ(st.queued, 0);
	CHECK_EQ(st.dropped, 3);
	CHECK_EQ(st.responses, 1);
}

/* The same queue, drained by `writable` once the partition reads. */
TEST(queued_responses_follow_earlier_messages_when_room_returns)
{
	struct sim_opts o;
	struct rt *t;
	struct ovmc_router_stats st;
	struct ovmc_hv_session *hs;
	uint8_t req[HDR + 4];
	unsigned fills = 0;

	sim_opts_default(&o);
	o.hv.hv_buffers = 2;
	o.hv.backlog_limit = 1;
	t = router_session(&o);
	EXPECT_RC(t, ROUTER, OP_XCHG, 0);
	hs = sim_session(t->s, 0);
	while (ovmc_hv_send(hs, "fill", 4) == 0)
		CHECK(++fills < 100);
	for (uint32_t i = 0; i < 3; i++) {
		mkreq(req, ROUTER, OP_ECHO, 0xE0 + i, EXPECT, "abcd", 4);
		t->b->ops->message(t->b->arg, hs, req, sizeof(req));
	}
	CHECK_EQ(rstats(t).queued, 3);
	for (unsigned i = 0; i < fills; i++) {
		app_read(t, t->f);
		CHECK_EQ(t->resp_len, 4);
		CHECK_MEM(t->resp, "fill", 4);
	}
	for (uint32_t i = 0; i < 3; i++) {
		app_read(t, t->f);
		CHECK_RESP(t, 0xE0 + i, ROUTER, OP_ECHO, 0, "abcd", 4);
	}
	/* and a request now goes behind nothing */
	EXPECT_ECHO(t, "done", 4);
	expect_nothing_more(t, t->f);
	st = rstats(t);
	CHECK_EQ(st.queued, 0);
	CHECK_EQ(st.dropped, 0);
	CHECK_EQ(st.responses, 5);
}

/* A partition that asks and never reads: the router's queue stops at its bound. */
TEST(queued_responses_stop_at_their_bound_and_the_rest_are_counted)
{
	struct sim_opts o;
	struct rt *t;
	struct ovmc_router_stats st;
	struct ovmc_hv_session *hs;
	uint8_t req[HDR + 4];

	sim_opts_default(&o);
	o.hv.hv_buffers = 2;
	o.hv.backlog_limit = 1;
	t = router_session(&o);
	EXPECT_RC(t, ROUTER, OP_XCHG, 0);
	hs = sim_session(t->s, 0);
	for (unsigned i = 0; ovmc_hv_send(hs, "fill", 4) == 0; i++)
		CHECK(i < 100);
	for (uint32_t i = 0; i < OVMC_ROUTER_MAX_QUEUED + 500; i++) {
		mkreq(req, ROUTER, OP_ECHO, i, EXPECT, "abcd", 4);
		t->b->ops->message(t->b->arg, hs, req, sizeof(req));
	}
	st = rstats(t);
	CHECK_EQ(st.queued, OVMC_ROUTER_MAX_QUEUED);
	CHECK_EQ(st.overflows, 500);
	CHECK_EQ(st.dropped, 500);
	sim_close(t->s, t->f);
	sim_run(t->s);
	CHECK_EQ(rstats(t).queued, 0);
}
