// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The exec and socket backends: the frame codec on its own (golden bytes,
 * every malformed header, a stream split at every offset, the output
 * buffer against a real pipe), then both backends end to end through the
 * simulation with the real driver and hypervisor cores, talking to a
 * Python script (exec) or to a server thread in this file (socket).
 *
 * The backends are polled like an owner's loop would: whenever their fd is
 * readable, dispatch() runs, between rounds of sim_advance().
 */
#include "harness.h"
#include "sim.h"

#include "hv/backends/framing.h"
#include "hv/backends/peer.h"

#include <openvmc/backend.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PEER_SCRIPT "python3 " OVMC_TEST_DATA "/reverse_peer.py"
/* Real time a test waits for the other process before failing. */
#define WAIT_MS 20000

/* ---- helpers: captured log ---- */

struct logbuf {
	char **lines;
	size_t n, cap;
	bool echo;
};

static struct logbuf test_log;

static void __attribute__((format(printf, 3, 0)))
log_sink(void *user, enum ovmc_log_level level, const char *fmt, va_list ap)
{
	struct logbuf *lb = user;
	char line[512];

	vsnprintf(line, sizeof(line), fmt, ap);
	if (lb->echo)
		fprintf(stderr, "[backend %s] %s\n", ovmc_log_level_name(level), line);
	if (lb->n == lb->cap) {
		size_t cap = lb->cap ? lb->cap * 2 : 64;
		char **v = realloc(lb->lines, cap * sizeof(*v));

		if (!v)
			abort();
		lb->lines = v;
		lb->cap = cap;
	}
	lb->lines[lb->n] = strdup(line);
	if (!lb->lines[lb->n])
		abort();
	lb->n++;
}

static void log_clear(void *arg)
{
	struct logbuf *lb = arg;

	for (size_t i = 0; i < lb->n; i++)
		free(lb->lines[i]);
	free(lb->lines);
	*lb = (struct logbuf){0};
}

/* A fresh captured log for this test. */
static struct ovmc_backend_env log_env(void)
{
	log_clear(&test_log);
	test_log.echo = getenv("OVMC_TEST_LOG") && *getenv("OVMC_TEST_LOG");
	ovmc_test_defer(log_clear, &test_log);
	return (struct ovmc_backend_env){.log = log_sink, .log_user = &test_log};
}

/* Log lines containing `needle`. */
static size_t log_count(const char *needle)
{
	size_t n = 0;

	for (size_t i = 0; i < test_log.n; i++)
		n += strstr(test_log.lines[i], needle) != NULL;
	return n;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- framing: encoder ---- */

static const uint8_t hmc_id[OVMC_HMC_ID_LEN] = "0123456789ABCDEFGHIJKLMNOPQRSTUV";

TEST(encode_open_message_close_golden_bytes)
{
	uint8_t out[128];
	static const uint8_t open_hdr[] = {0x00, 0x00, 0x00, 0x28, 0x01, 0x00,
					   0x12, 0x34, 0x05, 0x07, 0x00, 0x00};
	static const uint8_t msg[] = {0x00, 0x00, 0x00, 0x0b, 0x02, 0x00, 0xff, 0xfe,
				      0xfe, 0x80, 0x00, 0x00, 'a',  'b',  'c'};
	static const uint8_t close_[] = {0x00, 0x00, 0x00, 0x08, 0x03, 0x00,
					 0x00, 0x01, 0x00, 0x01, 0x00, 0x00};
	struct ovmc_frame f = {.type = OVMC_FRAME_OPEN,
			       .partition = 0x1234,
			       .index = 5,
			       .session = 7,
			       .payload = hmc_id,
			       .len = OVMC_HMC_ID_LEN};

	CHECK_EQ(ovmc_frame_encode(&f, out, sizeof(out)), 44);
	CHECK_MEM(out, open_hdr, sizeof(open_hdr));
	CHECK_MEM(out + 12, hmc_id, OVMC_HMC_ID_LEN);

	f = (struct ovmc_frame){.type = OVMC_FRAME_MESSAGE,
				.partition = 0xfffe,
				.index = 0xfe,
				.session = 0x80,
				.payload = (const uint8_t *)"abc",
				.len = 3};
	CHECK_EQ(ovmc_frame_encode(&f, out, sizeof(out)), (int)sizeof(msg));
	CHECK_MEM(out, msg, sizeof(msg));

	f = (struct ovmc_frame){.type = OVMC_FRAME_CLOSE, .partition = 1, .index = 0, .session = 1};
	CHECK_EQ(ovmc_frame_encode(&f, out, sizeof(out)), (int)sizeof(close_));
	CHECK_MEM(out, close_, sizeof(close_));
}

TEST(encode_refuses_what_decode_would_refuse)
{
	static uint8_t big[OVMC_FRAME_MAX_PAYLOAD + 1];
	uint8_t out[64];
	struct ovmc_frame f = {.type = 0, .payload = big, .len = 1};

	CHECK_EQ(ovmc_frame_encode(&f, out, sizeof(out)), OVMC_FRAME_ERR_TYPE);
	f.type = 4;
	CHECK_EQ(ovmc_frame_encode(&f, out, sizeof(out)), OVMC_FRAME_ERR_TYPE);
	f.type = OVMC_FRAME_MESSAGE;
	f.len = 0;
	CHECK_EQ(ovmc_frame_encode(&f, out, sizeof(out)), OVMC_FRAME_ERR_PAYLOAD);
	f.len = sizeof(big);
	CHECK_EQ(ovmc_frame_encode(&f, out, sizeof(out)), OVMC_FRAME_ERR_PAYLOAD);
	f.type = OVMC_FRAME_OPEN;
	f.len = OVMC_HMC_ID_LEN - 1;
	CHECK_EQ(ovmc_frame_encode(&f, out, sizeof(out)), OVMC_FRAME_ERR_PAYLOAD);
	f.type = OVMC_FRAME_CLOSE;
	f.len = 1;
	CHECK_EQ(ovmc_frame_encode(&f, out, sizeof(out)), OVMC_FRAME_ERR_PAYLOAD);
	f.type = OVMC_FRAME_MESSAGE;
	f.len = 60;
	CHECK_EQ(ovmc_frame_encode(&f, out, sizeof(out)), -ENOSPC);
	f.len = 52;
	CHECK_EQ(ovmc_frame_encode(&f, out, sizeof(out)), 64);
}

/* ---- framing: decoder ---- */

static void decoder_free(void *d)
{
	ovmc_frame_decoder_free(d);
}

static struct ovmc_frame_decoder *new_decoder(void)
{
	struct ovmc_frame_decoder *d = calloc(1, sizeof(*d));

	CHECK(d);
	ovmc_frame_decoder_init(d);
	ovmc_test_defer(free, d);
	ovmc_test_defer(decoder_free, d);
	return d;
}

/* A valid header of `type` with `payload_len` payload bytes. */
static void make_header(uint8_t h[OVMC_FRAME_HDR_LEN], uint8_t type, uint32_t payload_len)
{
	memset(h, 0, OVMC_FRAME_HDR_LEN);
	ovmc_put_be32(h, payload_len + 8);
	h[4] = type;
	ovmc_put_be16(h + 6, 3);
	h[8] = 1;
	h[9] = 2;
}

/* Feed `len` bytes of a malformed frame; expect `err`, sticky. */
static void expect_decode_error(const uint8_t *buf, size_t len, size_t fault_at, int err)
{
	struct ovmc_frame_decoder *d = new_decoder();
	struct ovmc_frame f;
	size_t used;
	struct ovmc_frame g;

	CHECK_EQ(ovmc_frame_decode(d, buf, len, &used, &f), err);
	CHECK_EQ(used, fault_at);
	CHECK_EQ(ovmc_frame_decode(d, buf, len, &used, &f), err); /* sticky */
	CHECK_EQ(used, 0);
	CHECK_EQ(ovmc_frame_parse(buf, len, &g), err);
	ovmc_frame_decoder_reset(d);
	CHECK_EQ(d->error, 0);
}

TEST(decode_bad_length_fails_after_four_bytes)
{
	uint8_t h[OVMC_FRAME_HDR_LEN];
	static const uint32_t bad[] = {0, 1, 7, OVMC_FRAME_MAX_LEN + 1, 0x7fffffff, 0xffffffff};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		make_header(h, OVMC_FRAME_MESSAGE, 1);
		ovmc_put_be32(h, bad[i]);
		/* Only the length field: the fault shows without the rest. */
		expect_decode_error(h, 4, 4, OVMC_FRAME_ERR_LENGTH);
		expect_decode_error(h, sizeof(h), 4, OVMC_FRAME_ERR_LENGTH);
	}
	/* Nothing was allocated for a length that was never believed. */
	{
		struct ovmc_frame_decoder *d = new_decoder();
		struct ovmc_frame f;
		size_t used;

		ovmc_put_be32(h, 0xffffffff);
		CHECK_EQ(ovmc_frame_decode(d, h, 4, &used, &f), OVMC_FRAME_ERR_LENGTH);
		CHECK_EQ(d->cap, 0);
	}
}

TEST(decode_bad_type_flags_reserved_payload_fail_distinctly)
{
	uint8_t h[OVMC_FRAME_HDR_LEN + 40] = {0};
	static const uint8_t bad_types[] = {0, 4, 0x81, 0xff};

	for (size_t i = 0; i < sizeof(bad_types); i++) {
		make_header(h, bad_types[i], 1);
		expect_decode_error(h, sizeof(h), OVMC_FRAME_HDR_LEN, OVMC_FRAME_ERR_TYPE);
	}
	for (unsigned fl = 1; fl < 256; fl <<= 1) {
		make_header(h, OVMC_FRAME_MESSAGE, 1);
		h[5] = (uint8_t)fl;
		expect_decode_error(h, sizeof(h), OVMC_FRAME_HDR_LEN, OVMC_FRAME_ERR_FLAGS);
	}
	for (unsigned at = 10; at < 12; at++) {
		make_header(h, OVMC_FRAME_MESSAGE, 1);
		h[at] = 0x01;
		expect_decode_error(h, sizeof(h), OVMC_FRAME_HDR_LEN, OVMC_FRAME_ERR_RESERVED);
	}
	/* Payload sizes a type never has. */
	make_header(h, OVMC_FRAME_OPEN, 0);
	expect_decode_error(h, sizeof(h), OVMC_FRAME_HDR_LEN, OVMC_FRAME_ERR_PAYLOAD);
	make_header(h, OVMC_FRAME_OPEN, OVMC_HMC_ID_LEN - 1);
	expect_decode_error(h, sizeof(h), OVMC_FRAME_HDR_LEN, OVMC_FRAME_ERR_PAYLOAD);
	make_header(h, OVMC_FRAME_OPEN, OVMC_HMC_ID_LEN + 1);
	expect_decode_error(h, sizeof(h), OVMC_FRAME_HDR_LEN, OVMC_FRAME_ERR_PAYLOAD);
	make_header(h, OVMC_FRAME_CLOSE, 1);
	expect_decode_error(h, sizeof(h), OVMC_FRAME_HDR_LEN, OVMC_FRAME_ERR_PAYLOAD);
	make_header(h, OVMC_FRAME_MESSAGE, 0);
	expect_decode_error(h, sizeof(h), OVMC_FRAME_HDR_LEN, OVMC_FRAME_ERR_PAYLOAD);
	/* Type is checked before flags, flags before reserved. */
	make_header(h, 9, 1);
	h[5] = 1;
	h[10] = 1;
	expect_decode_error(h, sizeof(h), OVMC_FRAME_HDR_LEN, OVMC_FRAME_ERR_TYPE);
	make_header(h, OVMC_FRAME_MESSAGE, 1);
	h[5] = 1;
	h[10] = 1;
	expect_decode_error(h, sizeof(h), OVMC_FRAME_HDR_LEN, OVMC_FRAME_ERR_FLAGS);
	CHECK(strcmp(ovmc_frame_strerror(OVMC_FRAME_ERR_FLAGS),
		     ovmc_frame_strerror(OVMC_FRAME_ERR_RESERVED)));
}

TEST(parse_every_truncation_fails)
{
	uint8_t buf[OVMC_FRAME_HDR_LEN + 5];
	struct ovmc_frame f = {.type = OVMC_FRAME_MESSAGE,
			       .partition = 9,
			       .index = 1,
			       .session = 4,
			       .payload = (const uint8_t *)"hello",
			       .len = 5};
	struct ovmc_frame g;

	CHECK_EQ(ovmc_frame_encode(&f, buf, sizeof(buf)), (int)sizeof(buf));
	for (size_t n = 0; n < sizeof(buf); n++)
		CHECK_EQ(ovmc_frame_parse(buf, n, &g), OVMC_FRAME_ERR_TRUNCATED);
	CHECK_EQ(ovmc_frame_parse(buf, sizeof(buf), &g), (int)sizeof(buf));
	CHECK_EQ(g.type, OVMC_FRAME_MESSAGE);
	CHECK_EQ(g.partition, 9);
	CHECK_EQ(g.index, 1);
	CHECK_EQ(g.session, 4);
	CHECK_EQ(g.len, 5);
	CHECK_MEM(g.payload, "hello", 5);
}

/* A stream of frames of every type and a spread of sizes. */
struct stream {
	uint8_t *bytes;
	size_t len;
	struct ovmc_frame frames[16];
	uint8_t *payloads[16];
	size_t n;
};

static void stream_free(void *arg)
{
	struct stream *st = arg;

	for (size_t i = 0; i < st->n; i++)
		free(st->payloads[i]);
	free(st->bytes);
	free(st);
}

static struct stream *make_stream(const size_t *sizes, size_t n)
{
	struct stream *st = calloc(1, sizeof(*st));
	uint64_t rnd = 77;

	CHECK(st && n <= 16);
	ovmc_test_defer(stream_free, st);
	for (size_t i = 0; i < n; i++) {
		struct ovmc_frame *f = &st->frames[i];
		uint8_t type = sizes[i] == 0			      ? OVMC_FRAME_CLOSE
			       : sizes[i] == OVMC_HMC_ID_LEN && i % 2 ? OVMC_FRAME_OPEN
								      : OVMC_FRAME_MESSAGE;
		int w;

		st->payloads[i] = malloc(sizes[i] + 1);
		CHECK(st->payloads[i]);
		for (size_t k = 0; k < sizes[i]; k++)
			st->payloads[i][k] = (uint8_t)ovmc_test_rand(&rnd);
		*f = (struct ovmc_frame){.type = type,
					 .partition = (uint16_t)(i * 257),
					 .index = (uint8_t)i,
					 .session = (uint8_t)(i + 1),
					 .payload = st->payloads[i],
					 .len = sizes[i]};
		st->bytes = realloc(st->bytes, st->len + OVMC_FRAME_HDR_LEN + sizes[i]);
		CHECK(st->bytes);
		w = ovmc_frame_encode(f, st->bytes + st->len, OVMC_FRAME_HDR_LEN + sizes[i]);
		CHECK_EQ(w, (int)(OVMC_FRAME_HDR_LEN + sizes[i]));
		st->len += (size_t)w;
		st->n++;
	}
	return st;
}

/* Decode `st` fed in the chunks `cuts` delimits; check every frame. */
static void decode_chunks(const struct stream *st, const size_t *cuts, size_t ncuts)
{
	struct ovmc_frame_decoder d;
	size_t got = 0, start = 0;

	ovmc_frame_decoder_init(&d);
	for (size_t c = 0; c <= ncuts; c++) {
		size_t end = c < ncuts ? cuts[c] : st->len, pos = start;

		while (pos < end) {
			struct ovmc_frame f;
			size_t used;
			int rc = ovmc_frame_decode(&d, st->bytes + pos, end - pos, &used, &f);

			if (rc < 0) {
				ovmc_frame_decoder_free(&d);
				FAIL("decode error %d at %zu", rc, pos);
			}
			pos += used;
			if (rc == 1) {
				const struct ovmc_frame *e = &st->frames[got];

				if (got >= st->n || f.type != e->type ||
				    f.partition != e->partition || f.index != e->index ||
				    f.session != e->session || f.len != e->len ||
				    (f.len && memcmp(f.payload, e->payload, f.len))) {
					ovmc_frame_decoder_free(&d);
					FAIL("frame %zu differs (cuts %zu..)", got,
					     ncuts ? cuts[0] : 0);
				}
				got++;
			} else if (pos != end) {
				ovmc_frame_decoder_free(&d);
				FAIL("need-more did not consume everything");
			}
		}
		start = end;
	}
	ovmc_frame_decoder_free(&d);
	CHECK_EQ(got, st->n);
}

TEST(decode_stream_split_at_every_offset_is_identical)
{
	static const size_t sizes[] = {OVMC_HMC_ID_LEN, 1, 0, 200, OVMC_HMC_ID_LEN, 2, 513, 0, 31};
	struct stream *st = make_stream(sizes, sizeof(sizes) / sizeof(sizes[0]));
	size_t cut[2];

	decode_chunks(st, NULL, 0);
	for (size_t a = 0; a <= st->len; a++)
		decode_chunks(st, &a, 1);
	/* Two cuts, every pair within the first frames. */
	for (cut[0] = 0; cut[0] <= 60; cut[0]++)
		for (cut[1] = cut[0]; cut[1] <= 120; cut[1]++)
			decode_chunks(st, cut, 2);
}

TEST(decode_one_byte_at_a_time_and_largest_frame)
{
	static const size_t sizes[] = {OVMC_FRAME_MAX_PAYLOAD, 0, 1, OVMC_FRAME_MAX_PAYLOAD};
	struct stream *st = make_stream(sizes, 4);
	size_t *cuts = malloc(st->len * sizeof(*cuts));
	uint64_t rnd = 5;
	size_t n = 0;

	CHECK(cuts);
	ovmc_test_defer(free, cuts);
	for (size_t i = 1; i < st->len; i++)
		cuts[n++] = i;
	decode_chunks(st, cuts, n);
	/* Random chunk sizes. */
	n = 0;
	for (size_t at = 0; at < st->len;) {
		at += 1 + ovmc_test_rand(&rnd) % 5000;
		if (at < st->len)
			cuts[n++] = at;
	}
	decode_chunks(st, cuts, n);
}

TEST(decode_error_mid_stream_after_good_frames)
{
	static const size_t sizes[] = {3, 0};
	struct stream *st = make_stream(sizes, 2);
	uint8_t buf[256];
	struct ovmc_frame_decoder *d = new_decoder();
	struct ovmc_frame f;
	size_t used, pos = 0;

	memcpy(buf, st->bytes, st->len);
	make_header(buf + st->len, OVMC_FRAME_MESSAGE, 4);
	buf[st->len + 5] = 0x40; /* flags */
	CHECK_EQ(ovmc_frame_decode(d, buf, st->len + 16, &used, &f), 1);
	pos += used;
	CHECK_EQ(ovmc_frame_decode(d, buf + pos, st->len + 16 - pos, &used, &f), 1);
	pos += used;
	CHECK_EQ(pos, st->len);
	CHECK_EQ(ovmc_frame_decode(d, buf + pos, 16, &used, &f), OVMC_FRAME_ERR_FLAGS);
	CHECK_EQ(d->frames, 2);
}

/* ---- framing: output buffer ---- */

static void close_fd(void *arg)
{
	int *fd = arg;

	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void outbuf_free(void *ob)
{
	ovmc_outbuf_free(ob);
}

/* A pipe with both ends non-blocking and a one-page capacity. */
static void small_pipe(int p[2])
{
	CHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	ovmc_test_defer(close_fd, &p[0]);
	ovmc_test_defer(close_fd, &p[1]);
	CHECK(fcntl(p[1], F_SETPIPE_SZ, 4096) >= 4096);
}

TEST(outbuf_writes_what_the_pipe_takes_and_keeps_the_rest)
{
	static int p[2];
	static struct ovmc_outbuf ob;
	static const size_t sizes[] = {1000, 3000, OVMC_HMC_ID_LEN, 0, 5000, 7, 9000};
	struct stream *st = make_stream(sizes, sizeof(sizes) / sizeof(sizes[0]));
	uint8_t *got = malloc(st->len);
	size_t have = 0;
	int rounds = 0;

	CHECK(got);
	ovmc_test_defer(free, got);
	small_pipe(p);
	ovmc_outbuf_init(&ob, 1 << 20, false);
	ovmc_test_defer(outbuf_free, &ob);
	for (size_t i = 0; i < st->n; i++)
		CHECK_EQ(ovmc_outbuf_put(&ob, &st->frames[i]), 0);
	CHECK_EQ(ovmc_outbuf_pending(&ob), st->n);
	while (ovmc_outbuf_pending(&ob)) {
		ssize_t n;

		CHECK_EQ(ovmc_outbuf_flush(&ob, p[1]), 0); /* never blocks */
		while ((n = read(p[0], got + have, st->len - have)) > 0)
			have += (size_t)n;
		CHECK(++rounds < 100);
	}
	CHECK(rounds > 2); /* it really was partial */
	CHECK_EQ(have, st->len);
	CHECK_MEM(got, st->bytes, st->len);
	CHECK_EQ(ob.written, st->n);
	CHECK_EQ(ob.bytes, 0);
}

TEST(outbuf_limit_refuses_whole_frames_and_counts)
{
	static struct ovmc_outbuf ob;
	uint8_t data[600] = {0};
	struct ovmc_frame f = {.type = OVMC_FRAME_MESSAGE, .payload = data, .len = sizeof(data)};

	ovmc_outbuf_init(&ob, 1000, false);
	ovmc_test_defer(outbuf_free, &ob);
	CHECK_EQ(ovmc_outbuf_put(&ob, &f), 0);
	CHECK_EQ(ovmc_outbuf_put(&ob, &f), -ENOBUFS);
	CHECK_EQ(ob.overflows, 1);
	f.len = 1000 - 612 - 12;
	CHECK_EQ(ovmc_outbuf_put(&ob, &f), 0); /* exactly at the limit */
	f.len = 1;
	CHECK_EQ(ovmc_outbuf_put(&ob, &f), -ENOBUFS);
	CHECK_EQ(ob.overflows, 2);
	CHECK_EQ(ovmc_outbuf_pending(&ob), 2);
	CHECK_EQ(ovmc_outbuf_discard(&ob), 2);
	/* An empty buffer takes one frame larger than the limit. */
	f.len = sizeof(data) + 500;
	CHECK(f.len + 12 > 1000);
	uint8_t *big = calloc(1, f.len);
	CHECK(big);
	ovmc_test_defer(free, big);
	f.payload = big;
	CHECK_EQ(ovmc_outbuf_put(&ob, &f), 0);
	f.type = 9;
	CHECK_EQ(ovmc_outbuf_put(&ob, &f), OVMC_FRAME_ERR_TYPE);
}

TEST(outbuf_reader_gone_is_epipe_without_sigpipe)
{
	static int p[2];
	static struct ovmc_outbuf ob;
	struct ovmc_frame f = {.type = OVMC_FRAME_CLOSE};
	sigset_t pending;

	small_pipe(p);
	close(p[0]);
	p[0] = -1;
	ovmc_outbuf_init(&ob, 4096, false);
	ovmc_test_defer(outbuf_free, &ob);
	CHECK_EQ(ovmc_outbuf_put(&ob, &f), 0);
	CHECK_EQ(ovmc_outbuf_flush(&ob, p[1]), -EPIPE); /* and we are still alive */
	CHECK_EQ(ovmc_outbuf_pending(&ob), 1);
	sigpending(&pending);
	CHECK(!sigismember(&pending, SIGPIPE));
}

/* ---- backends through the simulation ---- */

struct rig {
	struct sim *s;
	struct ovmc_backend b;
	bool have_b;
};

static void rig_free_backend(void *arg)
{
	struct rig *r = arg;

	if (r->have_b)
		ovmc_backend_free(&r->b);
	r->have_b = false;
	free(r);
}

/* The exec tests' script needs python3 (scripts/deps.sh must provide it). */
static void need_python(const char *spec)
{
	if (strstr(spec, "python3") && system("command -v python3 >/dev/null 2>&1") != 0)
		FAIL("python3 not found: the exec tests run tests/data/reverse_peer.py");
}

static struct rig *rig_new(const char *spec, const struct sim_opts *opts)
{
	struct ovmc_backend_env env = log_env();
	struct rig *r = calloc(1, sizeof(*r));
	struct sim_opts o;
	int rc;

	CHECK(r);
	need_python(spec);
	ovmc_test_defer(rig_free_backend, r);
	rc = ovmc_backend_new(spec, &env, &r->b);
	if (rc)
		FAIL("ovmc_backend_new(%s): %d (%s)", spec, rc, ovmc_strerror(rc));
	r->have_b = true;
	CHECK(r->b.fd && r->b.dispatch && r->b.fd(r->b.arg) >= 0);
	if (opts)
		o = *opts;
	else
		sim_opts_default(&o);
	o.backend = r->b.ops;
	o.backend_arg = r->b.arg;
	/* sim_new() defers sim_free(), which therefore runs before the backend
	 * is freed: the core closes its sessions towards a live backend. */
	r->s = sim_new(&o);
	sim_ready(r->s);
	return r;
}

static struct ovmc_peer_stats stats(const struct rig *r)
{
	struct ovmc_peer_stats st;

	CHECK_EQ(ovmc_peer_backend_stats(&r->b, &st), 0);
	return st;
}

/* One turn of the owner's loop: cores, then the backend if its fd is ready. */
static void pump(struct rig *r, int timeout_ms)
{
	struct pollfd pfd = {.fd = r->b.fd(r->b.arg), .events = POLLIN};

	sim_advance(r->s, SIM_MS);
	if (poll(&pfd, 1, timeout_ms) > 0)
		r->b.dispatch(r->b.arg, r->s->now);
	sim_advance(r->s, SIM_MS);
}

#define WAIT_UNTIL(r, cond)                                                                        \
	do {                                                                                       \
		uint64_t wait_end_ = now_ms() + WAIT_MS;                                           \
		while (!(cond)) {                                                                  \
			if (now_ms() > wait_end_)                                                  \
				FAIL("timed out waiting for %s", #cond);                           \
			pump(r, 5);                                                                \
		}                                                                                  \
	} while (0)

/* Read one message for the application, pumping until there is one. */
static size_t read_msg(struct rig *r, struct sim_file *f, uint8_t *buf, size_t cap)
{
	uint64_t end = now_ms() + WAIT_MS;
	ssize_t n;

	if (cap > sim_mtu(r->s))
		cap = sim_mtu(r->s);
	while ((n = sim_read(r->s, f, buf, cap)) == -EAGAIN) {
		if (now_ms() > end)
			FAIL("no message for the application");
		pump(r, 5);
	}
	if (n <= 0)
		FAIL("sim_read: %zd", n);
	return (size_t)n;
}

static void expect_msg(struct rig *r, struct sim_file *f, const char *want)
{
	uint8_t buf[OVMC_FRAME_MAX_PAYLOAD];
	size_t n = read_msg(r, f, buf, sizeof(buf));

	if (n != strlen(want) || memcmp(buf, want, n))
		FAIL("application read \"%.*s\", expected \"%s\"", (int)n, (const char *)buf, want);
}

static void write_msg(struct rig *r, struct sim_file *f, const void *data, size_t len)
{
	uint64_t end = now_ms() + WAIT_MS;
	ssize_t n;

	while ((n = sim_write(r->s, f, data, len)) == -EBUSY) {
		if (now_ms() > end)
			FAIL("the application cannot write");
		pump(r, 1);
	}
	CHECK_EQ(n, (ssize_t)len);
	sim_run(r->s);
}

static void expect_greeting(struct rig *r, struct sim_file *f, unsigned index)
{
	char want[96];

	snprintf(want, sizeof(want), "hello partition %u index %u session %u", ovmc_hv_id(r->s->hv),
		 index, ovmc_hv_session_number(sim_session(r->s, index)));
	expect_msg(r, f, want);
}

/* Size and bytes of message `i` of `count` (sizes spread over 1..mtu). */
static size_t message_i(uint8_t *buf, unsigned i, unsigned count, uint32_t mtu, bool reversed)
{
	size_t len = count > 1 ? 1 + (size_t)i * (mtu - 1) / (count - 1) : 1;
	uint64_t seed = 0x5eed + i;

	for (size_t k = 0; k < len; k++)
		buf[reversed ? len - 1 - k : k] = (uint8_t)ovmc_test_rand(&seed);
	return len;
}

/*
 * `count` messages of sizes 1..MTU written as fast as the driver takes them,
 * each answered reversed, all in order.
 */
static void converse(struct rig *r, struct sim_file *f, unsigned count)
{
	uint32_t mtu = sim_mtu(r->s);
	uint8_t *msg = malloc(mtu), *want = malloc(mtu), *got = malloc(mtu);
	uint64_t end = now_ms() + 60000;
	unsigned sent = 0, received = 0;
	ssize_t n;

	CHECK(msg && want && got);
	ovmc_test_defer(free, msg);
	ovmc_test_defer(free, want);
	ovmc_test_defer(free, got);
	while (received < count) {
		if (now_ms() > end)
			FAIL("conversation stuck: %u sent, %u received", sent, received);
		if (sent < count) {
			size_t len = message_i(msg, sent, count, mtu, false);

			n = sim_write(r->s, f, msg, len);
			if (n == (ssize_t)len)
				sent++;
			else if (n != -EBUSY)
				FAIL("sim_write: %zd", n);
		}
		while ((n = sim_read(r->s, f, got, mtu)) > 0) {
			size_t len = message_i(want, received, count, mtu, true);

			if ((size_t)n != len || memcmp(got, want, len))
				FAIL("answer %u: %zd bytes, not the %zu reversed", received, n,
				     len);
			received++;
		}
		if (n != -EAGAIN)
			FAIL("sim_read: %zd", n);
		pump(r, sent < count ? 0 : 5);
	}
}

TEST(exec_greets_then_answers_200_messages_in_order)
{
	struct rig *r = rig_new("exec:" PEER_SCRIPT, NULL);
	uint8_t id[OVMC_HMC_ID_LEN];
	struct sim_file *f;
	struct ovmc_peer_stats st;

	sim_make_id(id, 1);
	f = sim_open_session(r->s, id);
	expect_greeting(r, f, 0);
	converse(r, f, 200);
	st = stats(r);
	CHECK_EQ(st.frames_out, 201); /* OPEN + 200 */
	CHECK_EQ(st.frames_in, 201);
	CHECK_EQ(st.delivered, 201);
	CHECK_EQ(st.dropped + st.stale + st.invalid + st.decode_errors, 0);
	/* The session closes; the script's goodbye comes too late: stale. */
	sim_close(r->s, f);
	sim_run(r->s);
	WAIT_UNTIL(r, stats(r).stale == 1);
	CHECK_EQ(log_count("stale MESSAGE"), 1);
	CHECK_EQ(stats(r).frames_out, 202);
}

TEST(exec_holds_messages_while_the_core_backlog_is_full)
{
	struct sim_opts o;
	struct rig *r;
	uint8_t id[OVMC_HMC_ID_LEN];
	struct sim_file *f;
	struct ovmc_peer_stats st;
	char want[32];

	sim_opts_default(&o);
	o.hv.backlog_limit = 2;
	r = rig_new("exec:" PEER_SCRIPT, &o);
	sim_make_id(id, 2);
	f = sim_open_session(r->s, id);
	expect_greeting(r, f, 0);
	/* 60 answers to one request, none read yet: the hypervisor runs out of
	 * buffers, its backlog fills, and the backend must hold the rest. */
	write_msg(r, f, "burst:60", 8);
	WAIT_UNTIL(r, stats(r).frames_in == 61);
	st = stats(r);
	CHECK(st.held > 0);
	CHECK(st.delivered < 61);
	for (unsigned i = 0; i < 60; i++) {
		snprintf(want, sizeof(want), "burst %u", i);
		expect_msg(r, f, want);
	}
	CHECK_EQ(stats(r).delivered, 61);
	/* And a conversation with the small backlog keeps its order too. */
	converse(r, f, 100);
	st = stats(r);
	CHECK_EQ(st.delivered, 161);
	CHECK_EQ(st.dropped + st.stale + st.undeliverable, 0);
}

TEST(exec_pauses_reading_while_too_much_is_held_then_resumes)
{
	struct sim_opts o;
	struct rig *r;
	uint8_t id[OVMC_HMC_ID_LEN];
	struct sim_file *f;
	struct ovmc_peer *p;
	char want[32];

	sim_opts_default(&o);
	o.hv.backlog_limit = 2;
	r = rig_new("exec:" PEER_SCRIPT, &o);
	p = r->b.arg;
	p->hold_limit = 64;
	sim_make_id(id, 12);
	f = sim_open_session(r->s, id);
	expect_greeting(r, f, 0);
	write_msg(r, f, "burst:60", 8);
	/* (The core may reclaim buffers and take some before we read.) */
	WAIT_UNTIL(r, stats(r).read_pauses >= 1);
	for (unsigned i = 0; i < 60; i++) {
		snprintf(want, sizeof(want), "burst %u", i);
		expect_msg(r, f, want);
	}
	CHECK(!p->paused);
	CHECK_EQ(p->held_bytes, 0);
	CHECK_EQ(stats(r).delivered, 61);
	CHECK_EQ(stats(r).dropped + stats(r).undeliverable, 0);
}

TEST(exec_output_over_its_limit_is_dropped_counted_and_logged)
{
	struct rig *r = rig_new("exec:exec sleep 30", NULL); /* never reads */
	struct ovmc_peer *p = r->b.arg;
	uint8_t id[OVMC_HMC_ID_LEN];
	uint8_t msg[4096] = {1};
	struct sim_file *f;
	struct ovmc_peer_stats st;

	CHECK(fcntl(p->wfd, F_SETPIPE_SZ, 4096) >= 4096);
	p->out.limit = 3 * sizeof(msg);
	sim_make_id(id, 13);
	f = sim_open_session(r->s, id);
	for (int i = 0; i < 8; i++)
		write_msg(r, f, msg, sizeof(msg));
	st = stats(r);
	CHECK(st.overflows >= 4);
	CHECK_EQ(st.dropped, st.overflows);
	CHECK_EQ(st.frames_out + st.dropped, 9);
	CHECK_EQ(p->out.overflows, st.overflows);
	CHECK_EQ(log_count("over its limit"), st.overflows);
	CHECK_EQ(st.disconnects, 0);
}

TEST(exec_stale_session_number_and_index_dropped_and_counted)
{
	struct rig *r = rig_new("exec:" PEER_SCRIPT, NULL);
	uint8_t id[OVMC_HMC_ID_LEN];
	struct sim_file *f;

	sim_make_id(id, 3);
	f = sim_open_session(r->s, id);
	expect_greeting(r, f, 0);
	write_msg(r, f, "stale", 5);
	expect_msg(r, f, "elats");
	CHECK_EQ(stats(r).stale, 2);
	CHECK_EQ(log_count("is open there"), 1);
	CHECK_EQ(log_count("no session open there"), 1);
	write_msg(r, f, "ok", 2);
	expect_msg(r, f, "ko");
}

TEST(exec_program_exit_mid_session_is_logged_counted_and_survived)
{
	struct rig *r = rig_new("exec:" PEER_SCRIPT, NULL);
	uint8_t id[OVMC_HMC_ID_LEN];
	struct sim_file *f, *g;
	struct ovmc_hv_stats hs;
	struct pollfd pfd;
	struct ovmc_peer_stats st;

	sim_make_id(id, 4);
	f = sim_open_session(r->s, id);
	expect_greeting(r, f, 0);
	write_msg(r, f, "exit", 4);
	WAIT_UNTIL(r, stats(r).exits == 1 && stats(r).disconnects == 1);
	st = stats(r);
	CHECK(WIFEXITED(st.exit_status) && WEXITSTATUS(st.exit_status) == 3);
	CHECK_EQ(log_count("exited with status 3"), 1);
	/* Frames to it now: counted, logged once. */
	write_msg(r, f, "anyone?", 7);
	write_msg(r, f, "hello?", 6);
	CHECK_EQ(stats(r).dropped, 2);
	CHECK_EQ(log_count("unreachable"), 1);
	CHECK_EQ(sim_read(r->s, f, id, sizeof(id)), -EAGAIN);
	/* Nothing is left to watch: the fd does not spin. */
	pfd = (struct pollfd){.fd = r->b.fd(r->b.arg), .events = POLLIN};
	CHECK_EQ(poll(&pfd, 1, 50), 0);
	/* Closing the session is dropped too; a new session is refused. */
	sim_close(r->s, f);
	sim_run(r->s);
	CHECK_EQ(stats(r).dropped, 3);
	ovmc_hv_stats(r->s->hv, &hs);
	g = sim_open(r->s);
	sim_make_id(id, 5);
	CHECK_EQ(sim_sethmcid(r->s, g, id), 0);
	sim_run(r->s);
	{
		struct ovmc_hv_stats after;

		ovmc_hv_stats(r->s->hv, &after);
		CHECK_EQ(after.sessions_opened, hs.sessions_opened);
	}
	CHECK_EQ(stats(r).refused_opens, 1);
	CHECK_EQ(stats(r).dropped, 4); /* two messages, the CLOSE, the OPEN */
	CHECK_EQ(log_count("unreachable"), 1);
}

TEST(exec_bad_frame_from_program_breaks_the_stream)
{
	struct rig *r = rig_new("exec:" PEER_SCRIPT, NULL);
	uint8_t id[OVMC_HMC_ID_LEN];
	struct sim_file *f;

	sim_make_id(id, 6);
	f = sim_open_session(r->s, id);
	expect_greeting(r, f, 0);
	write_msg(r, f, "garbage", 7);
	WAIT_UNTIL(r, stats(r).decode_errors == 1);
	CHECK_EQ(log_count("frame flags not zero"), 1);
	/* Its input is closed with the stream: the script ends by itself. */
	WAIT_UNTIL(r, stats(r).exits == 1);
	CHECK(WIFEXITED(stats(r).exit_status) && WEXITSTATUS(stats(r).exit_status) == 0);
}

TEST(exec_missing_command_exit_is_logged)
{
	struct rig *r = rig_new("exec:exec /nonexistent/ovmc-hv-script", NULL);

	WAIT_UNTIL(r, stats(r).exits == 1);
	CHECK_EQ(WEXITSTATUS(stats(r).exit_status), 127);
	CHECK_EQ(log_count("exited with status 127"), 1);
}

TEST(exec_empty_command_refused)
{
	struct ovmc_backend_env env = log_env();
	struct ovmc_backend b;

	CHECK_EQ(ovmc_backend_new("exec", &env, &b), -EINVAL);
	CHECK_EQ(ovmc_backend_new("exec:", &env, &b), -EINVAL);
	CHECK_EQ(log_count("no command"), 2);
}

TEST(exec_destroy_kills_a_program_ignoring_sigterm_and_reaps_it)
{
	struct ovmc_backend_env env = log_env();
	struct ovmc_backend b;
	uint64_t t0;
	int status;

	CHECK_EQ(ovmc_backend_new("exec:trap '' TERM; exec sleep 30", &env, &b), 0);
	/* Let the shell install the trap before it is asked to stop. */
	usleep(200 * 1000);
	t0 = now_ms();
	ovmc_backend_free(&b);
	CHECK(now_ms() - t0 < 5000);
	CHECK_EQ(log_count("ignored SIGTERM"), 1);
	CHECK_EQ(log_count("killed by signal 9"), 1);
	/* Reaped: no child of ours is left, not even a zombie. */
	CHECK_EQ(waitpid(-1, &status, WNOHANG), -1);
	CHECK_EQ(errno, ECHILD);
}

TEST(exec_destroy_terminates_the_program_with_sigterm)
{
	struct ovmc_backend_env env = log_env();
	struct ovmc_backend b;
	int status;

	CHECK_EQ(ovmc_backend_new("exec:exec sleep 30", &env, &b), 0);
	ovmc_backend_free(&b);
	CHECK_EQ(log_count("killed by signal 15"), 1);
	CHECK_EQ(waitpid(-1, &status, WNOHANG), -1);
}

/* ---- a frame server for the socket backend ---- */

struct server {
	bool tcp;
	char dir[64];
	char path[108];
	uint16_t port;
	int lfd;
	int stop[2];
	pthread_t th;
	bool running;
	atomic_uint accepted, ended, opens, closes, messages;
};

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int server_send(int fd, const struct ovmc_frame *f)
{
	uint8_t buf[OVMC_FRAME_HDR_LEN + OVMC_FRAME_MAX_PAYLOAD];
	int n = ovmc_frame_encode(f, buf, sizeof(buf));

	return n < 0 ? -1 : write_all(fd, buf, (size_t)n);
}

/* Answer one frame as the Python script does; -1 to drop the connection. */
static int server_frame(struct server *sv, int fd, const struct ovmc_frame *f)
{
	struct ovmc_frame out = *f;
	uint8_t rev[OVMC_FRAME_MAX_PAYLOAD];
	char hello[96];

	out.type = OVMC_FRAME_MESSAGE;
	switch (f->type) {
	case OVMC_FRAME_OPEN:
		sv->opens++;
		snprintf(hello, sizeof(hello), "hello partition %u index %u session %u",
			 f->partition, f->index, f->session);
		out.payload = (const uint8_t *)hello;
		out.len = strlen(hello);
		return server_send(fd, &out);
	case OVMC_FRAME_CLOSE:
		sv->closes++;
		return 0;
	}
	sv->messages++;
	if (f->len == 4 && !memcmp(f->payload, "drop", 4))
		return -1;
	if (f->len == 5 && !memcmp(f->payload, "stale", 5)) {
		struct ovmc_frame bad = out;

		bad.session ^= 0x80;
		bad.payload = (const uint8_t *)"x";
		bad.len = 1;
		if (server_send(fd, &bad))
			return -1;
	}
	for (size_t i = 0; i < f->len; i++)
		rev[i] = f->payload[f->len - 1 - i];
	out.payload = rev;
	return server_send(fd, &out);
}

/* Serve one connection until it ends, the test stops us, or "drop". */
static void server_conn(struct server *sv, int fd)
{
	struct ovmc_frame_decoder d;
	uint8_t *buf = malloc(1 << 16);

	ovmc_frame_decoder_init(&d);
	while (buf) {
		struct pollfd pfd[2] = {{.fd = fd, .events = POLLIN},
					{.fd = sv->stop[0], .events = POLLIN}};
		ssize_t n;
		size_t pos = 0;

		if (poll(pfd, 2, -1) < 0 || pfd[1].revents)
			break;
		n = read(fd, buf, 1 << 16);
		if (n <= 0)
			break;
		while (pos < (size_t)n) {
			struct ovmc_frame f;
			size_t used;
			int rc = ovmc_frame_decode(&d, buf + pos, (size_t)n - pos, &used, &f);

			pos += used;
			if (rc < 0 || (rc == 1 && server_frame(sv, fd, &f)))
				goto out;
		}
	}
out:
	free(buf);
	ovmc_frame_decoder_free(&d);
	close(fd);
	sv->ended++;
}

static void *server_main(void *arg)
{
	struct server *sv = arg;

	for (;;) {
		struct pollfd pfd[2] = {{.fd = sv->lfd, .events = POLLIN},
					{.fd = sv->stop[0], .events = POLLIN}};
		int fd;

		if (poll(pfd, 2, -1) < 0 || pfd[1].revents)
			return NULL;
		fd = accept4(sv->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		sv->accepted++;
		server_conn(sv, fd);
	}
}

static void server_start(struct server *sv)
{
	int one = 1;

	CHECK_EQ(pipe2(sv->stop, O_CLOEXEC), 0);
	if (sv->tcp) {
		struct sockaddr_in a = {.sin_family = AF_INET,
					.sin_port = htons(sv->port),
					.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t l = sizeof(a);

		sv->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		CHECK(sv->lfd >= 0);
		setsockopt(sv->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		CHECK_EQ(bind(sv->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
		CHECK_EQ(getsockname(sv->lfd, (struct sockaddr *)&a, &l), 0);
		sv->port = ntohs(a.sin_port);
	} else {
		struct sockaddr_un a = {.sun_family = AF_UNIX};

		sv->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		CHECK(sv->lfd >= 0);
		snprintf(a.sun_path, sizeof(a.sun_path), "%s", sv->path);
		CHECK_EQ(bind(sv->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	}
	CHECK_EQ(listen(sv->lfd, 4), 0);
	CHECK_EQ(pthread_create(&sv->th, NULL, server_main, sv), 0);
	sv->running = true;
}

static void server_stop(struct server *sv)
{
	if (!sv->running)
		return;
	sv->running = false;
	CHECK_EQ(write(sv->stop[1], "x", 1), 1);
	pthread_join(sv->th, NULL);
	close(sv->stop[0]);
	close(sv->stop[1]);
	close(sv->lfd);
	if (!sv->tcp)
		unlink(sv->path);
}

static void server_free(void *arg)
{
	struct server *sv = arg;

	if (sv->running) {
		sv->running = false;
		if (write(sv->stop[1], "x", 1) == 1)
			pthread_join(sv->th, NULL);
		close(sv->stop[0]);
		close(sv->stop[1]);
		close(sv->lfd);
	}
	if (!sv->tcp) {
		unlink(sv->path);
		rmdir(sv->dir);
	}
	free(sv);
}

static struct server *server_new(bool tcp)
{
	struct server *sv = calloc(1, sizeof(*sv));

	CHECK(sv);
	sv->tcp = tcp;
	snprintf(sv->dir, sizeof(sv->dir), "/tmp/ovmc-backends-XXXXXX");
	CHECK(mkdtemp(sv->dir));
	snprintf(sv->path, sizeof(sv->path), "%s/hv.sock", sv->dir);
	if (tcp)
		rmdir(sv->dir);
	ovmc_test_defer(server_free, sv);
	server_start(sv);
	return sv;
}

TEST(socket_unix_greets_then_answers_200_messages_in_order)
{
	struct server *sv = server_new(false);
	char spec[160];
	struct rig *r;
	uint8_t id[OVMC_HMC_ID_LEN];
	struct sim_file *f;
	struct ovmc_peer_stats st;

	snprintf(spec, sizeof(spec), "socket:%s", sv->path);
	r = rig_new(spec, NULL);
	sim_make_id(id, 7);
	f = sim_open_session(r->s, id);
	expect_greeting(r, f, 0);
	converse(r, f, 200);
	write_msg(r, f, "stale", 5);
	expect_msg(r, f, "elats");
	st = stats(r);
	CHECK_EQ(st.stale, 1);
	CHECK_EQ(st.delivered, 202);
	CHECK_EQ(st.dropped + st.invalid + st.decode_errors + st.disconnects, 0);
	sim_close(r->s, f);
	sim_run(r->s);
	WAIT_UNTIL(r, sv->closes == 1);
	CHECK_EQ(sv->opens, 1);
	CHECK_EQ(sv->messages, 201);
}

TEST(socket_tcp_loopback_answers_in_order)
{
	struct server *sv = server_new(true);
	char spec[64];
	struct rig *r;
	uint8_t id[OVMC_HMC_ID_LEN];
	struct sim_file *f;

	snprintf(spec, sizeof(spec), "socket:tcp:127.0.0.1:%u", sv->port);
	r = rig_new(spec, NULL);
	sim_make_id(id, 8);
	f = sim_open_session(r->s, id);
	expect_greeting(r, f, 0);
	converse(r, f, 50);
	CHECK_EQ(stats(r).delivered, 51);
	CHECK_EQ(log_count("connected to tcp:127.0.0.1"), 1);
}

TEST(socket_tcp_non_loopback_refused)
{
	struct ovmc_backend_env env = log_env();
	struct ovmc_backend b;
	static const char *const refused[] = {
		"socket:tcp:10.1.2.3:5000", "socket:tcp:0.0.0.0:5000",	 "socket:tcp:192.168.0.1:1",
		"socket:tcp:[::2]:5000",    "socket:tcp:example.com:80", "socket:tcp:128.0.0.1:80",
	};
	static const char *const malformed[] = {
		"socket:tcp:127.0.0.1", "socket:tcp:127.0.0.1:0", "socket:tcp:127.0.0.1:65536",
		"socket:tcp::5000",	"socket:tcp:127.0.0.1:x", "socket",
	};

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		if (ovmc_backend_new(refused[i], &env, &b) != -EPERM)
			FAIL("%s not refused with -EPERM", refused[i]);
	}
	CHECK_EQ(log_count("not a loopback address"), sizeof(refused) / sizeof(refused[0]));
	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		if (ovmc_backend_new(malformed[i], &env, &b) != -EINVAL)
			FAIL("%s not refused with -EINVAL", malformed[i]);
	}
}

TEST(socket_connect_failure_at_creation_returns_errno)
{
	struct ovmc_backend_env env = log_env();
	struct ovmc_backend b;
	char spec[128];
	char dir[] = "/tmp/ovmc-backends-XXXXXX";
	int fd, rc;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);

	CHECK(mkdtemp(dir));
	snprintf(spec, sizeof(spec), "socket:%s/nobody.sock", dir);
	rc = ovmc_backend_new(spec, &env, &b);
	rmdir(dir);
	CHECK_EQ(rc, -ENOENT);
	CHECK_EQ(log_count("cannot connect"), 1);
	/* A loopback port nobody listens on: bound but not listening. */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	CHECK_EQ(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	CHECK_EQ(getsockname(fd, (struct sockaddr *)&a, &l), 0);
	snprintf(spec, sizeof(spec), "socket:tcp:localhost:%u", ntohs(a.sin_port));
	rc = ovmc_backend_new(spec, &env, &b);
	close(fd);
	CHECK_EQ(rc, -ECONNREFUSED);
}

TEST(socket_disconnect_counts_drops_then_reconnects_and_reannounces)
{
	struct server *sv = server_new(false);
	char spec[160];
	struct rig *r;
	uint8_t id[OVMC_HMC_ID_LEN];
	struct sim_file *f;
	struct ovmc_peer_stats st;

	snprintf(spec, sizeof(spec), "socket:%s", sv->path);
	r = rig_new(spec, NULL);
	sim_make_id(id, 9);
	f = sim_open_session(r->s, id);
	expect_greeting(r, f, 0);
	/* The server hangs up. */
	write_msg(r, f, "drop", 4);
	WAIT_UNTIL(r, stats(r).disconnects == 1);
	CHECK_EQ(log_count("closed the stream"), 1);
	/* And is gone: messages meanwhile are dropped, counted, logged once. */
	server_stop(sv);
	write_msg(r, f, "lost one", 8);
	write_msg(r, f, "lost two", 8);
	st = stats(r);
	CHECK_EQ(st.dropped, 2);
	CHECK_EQ(st.reconnects, 0);
	CHECK_EQ(log_count("unreachable"), 1);
	/* It is back: the next message reconnects, the session is announced
	 * again before it. */
	server_start(sv);
	write_msg(r, f, "again", 5);
	expect_greeting(r, f, 0);
	expect_msg(r, f, "niaga");
	st = stats(r);
	CHECK_EQ(st.reconnects, 1);
	CHECK_EQ(st.reannounced, 1);
	CHECK_EQ(st.disconnects, 1);
	CHECK_EQ(sv->accepted, 2);
	CHECK_EQ(sv->opens, 2);
	CHECK_EQ(log_count("2 frame(s) dropped meanwhile"), 1);
	/* Drops are logged again after the next outage. */
	write_msg(r, f, "drop", 4);
	WAIT_UNTIL(r, stats(r).disconnects == 2);
	server_stop(sv);
	write_msg(r, f, "lost three", 10);
	CHECK_EQ(stats(r).dropped, 3);
	CHECK_EQ(log_count("unreachable"), 2);
}

TEST(socket_tcp_reconnects_without_blocking)
{
	struct server *sv = server_new(true);
	char spec[64];
	struct rig *r;
	uint8_t id[OVMC_HMC_ID_LEN];
	struct sim_file *f;

	snprintf(spec, sizeof(spec), "socket:tcp:[::ffff:127.0.0.1]:%u", sv->port);
	r = rig_new(spec, NULL);
	sim_make_id(id, 14);
	f = sim_open_session(r->s, id);
	expect_greeting(r, f, 0);
	write_msg(r, f, "drop", 4);
	WAIT_UNTIL(r, stats(r).disconnects == 1);
	write_msg(r, f, "back", 4);
	expect_greeting(r, f, 0);
	expect_msg(r, f, "kcab");
	CHECK_EQ(stats(r).reconnects, 1);
	CHECK_EQ(stats(r).dropped, 0);
	converse(r, f, 20);
}

/* ---- descriptors ---- */

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	CHECK(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

TEST(backends_leave_no_descriptors_or_children)
{
	struct server *sv = server_new(false);
	struct ovmc_backend_env env = log_env();
	struct ovmc_backend b;
	char spec[160];
	int before = count_fds(), status;

	CHECK_EQ(ovmc_backend_new("exec:" PEER_SCRIPT, &env, &b), 0);
	ovmc_backend_free(&b);
	snprintf(spec, sizeof(spec), "socket:%s", sv->path);
	CHECK_EQ(ovmc_backend_new(spec, &env, &b), 0);
	ovmc_backend_free(&b);
	CHECK_EQ(ovmc_backend_new("socket:tcp:10.0.0.1:1", &env, &b), -EPERM);
	/* The server thread holds its end until it sees ours closed. */
	for (uint64_t end = now_ms() + WAIT_MS; sv->ended < 1; usleep(1000))
		CHECK(now_ms() < end);
	CHECK_EQ(count_fds(), before);
	CHECK_EQ(waitpid(-1, &status, WNOHANG), -1);
}
