// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The Wireshark dissector (dissector/openvmc.lua) as tshark runs it: expert
 * info for every protocol error it knows (records crafted here, since the
 * programs never write them), names of VMC status values, and the command
 * router as its own protocol, on captures crafted here and on one the
 * library writes for a router-backed channel.
 */
#include "harness.h"
#include "sim.h"
#include "tshark.h"

#include <openvmc/capture.h>
#include <openvmc/router.h>

#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

struct cap {
	char dir[64];
	char path[96];
	char other[96]; /* a second capture in dir, or empty */
	FILE *f;
};

static void cap_remove(void *arg)
{
	struct cap *c = arg;

	if (c->f)
		fclose(c->f);
	unlink(c->path);
	if (c->other[0])
		unlink(c->other);
	rmdir(c->dir);
	free(c);
}

static void put_block(struct cap *c, uint32_t type, const void *body, size_t len)
{
	static const uint8_t pad[4];
	uint32_t total = (uint32_t)(12 + ((len + 3) & ~(size_t)3));

	CHECK(fwrite(&type, 4, 1, c->f) == 1 && fwrite(&total, 4, 1, c->f) == 1);
	CHECK(len == 0 || fwrite(body, len, 1, c->f) == 1);
	CHECK((len & 3) == 0 || fwrite(pad, 4 - (len & 3), 1, c->f) == 1);
	CHECK(fwrite(&total, 4, 1, c->f) == 1);
}

/* A pcapng file in the writer's byte order: section, one USER0 interface. */
static struct cap *cap_new(void)
{
	struct cap *c = calloc(1, sizeof(*c));
	uint8_t shb[16] = {0}, idb[8] = {0};
	uint32_t magic = 0x1A2B3C4D;
	uint16_t one = 1, link = OVMC_CAPTURE_LINKTYPE;

	CHECK(c);
	strcpy(c->dir, "/tmp/ovmc-dissector-XXXXXX");
	CHECK(mkdtemp(c->dir));
	snprintf(c->path, sizeof(c->path), "%s/crafted.pcapng", c->dir);
	ovmc_test_defer(cap_remove, c);
	c->f = fopen(c->path, "wb");
	CHECK(c->f);
	memcpy(shb, &magic, 4);
	memcpy(shb + 4, &one, 2);          /* version 1.0 */
	memset(shb + 8, 0xFF, 8);          /* section length unknown */
	put_block(c, 0x0A0D0D0A, shb, sizeof(shb));
	memcpy(idb, &link, 2);
	put_block(c, 1, idb, sizeof(idb));
	return c;
}

/* One record, as it is: the tests choose every byte. */
static void cap_record(struct cap *c, const uint8_t *rec, size_t len)
{
	uint8_t epb[20 + 8192] = {0};
	uint32_t n = (uint32_t)len;

	CHECK(len <= 8192);
	memcpy(epb + 12, &n, 4); /* captured */
	memcpy(epb + 16, &n, 4); /* original */
	memcpy(epb + 20, rec, len);
	put_block(c, 6, epb, 20 + len);
}

/* The file stays open until the test ends: scripts/test.sh's sweep of
 * /tmp/ovmc-* (another run's, maybe) leaves what a process holds. */
static const char *cap_done(struct cap *c)
{
	CHECK(fflush(c->f) == 0);
	return c->path;
}

/* The 8-byte record header: magic, version, kind, direction, side, partition 1. */
static size_t rec_header(uint8_t *r, uint8_t version, uint8_t kind, uint8_t dir)
{
	r[0] = 0x4F;
	r[1] = 0x56;
	r[2] = version;
	r[3] = kind;
	r[4] = dir;
	r[5] = 0;
	ovmc_put_be16(r + 6, 1);
	return 8;
}

/* A CRQ entry record: header byte, type byte, status, then bytes 3..15 zero
 * but for the session/index/buffer of the HMC messages. */
static void crq(struct cap *c, uint8_t dir, uint8_t hdr, uint8_t type, uint8_t status)
{
	uint8_t r[24] = {0};

	rec_header(r, 1, OVMC_CAPTURE_CRQ, dir);
	r[8] = hdr;
	r[9] = type;
	r[10] = status;
	if (hdr == 0x80 && (type & 0x7F) != 0x01)
		r[12] = 1; /* session */
	if (type == 0x81)
		ovmc_put_be16(r + 22, 0x0101);
	cap_record(c, r, sizeof(r));
}

/* An RDMA record whose length field says `len` and that holds `data`. */
static void rdma(struct cap *c, uint8_t dir, uint32_t len, const uint8_t *data, size_t n)
{
	uint8_t r[36 + 4096] = {0};

	CHECK(n <= 4096);
	rec_header(r, 1, OVMC_CAPTURE_RDMA, dir);
	ovmc_put_be32(r + 8, len);
	ovmc_put_be32(r + 12, 0x10000001);
	ovmc_put_be32(r + 24, 0x20000001);
	memcpy(r + 36, data, n);
	cap_record(c, r, 36 + n);
}

/* A router message: well-formed header for `dlen` data bytes. */
static size_t router_msg(uint8_t *m, uint32_t token, uint16_t op, uint8_t flags, uint16_t rc,
			 const char *data)
{
	size_t dlen = strlen(data);

	memset(m, 0, 32);
	m[0] = 0xDE;
	m[1] = 0xCA;
	m[2] = 0xFF;
	m[3] = 32;
	ovmc_put_be32(m + 4, (uint32_t)(32 + dlen));
	ovmc_put_be32(m + 8, token);
	ovmc_put_be16(m + 12, OVMC_ROUTER_TARGET_ROUTER);
	m[15] = flags;
	ovmc_put_be32(m + 16, (uint32_t)dlen);
	ovmc_put_be16(m + 20, op);
	ovmc_put_be16(m + 22, rc);
	memcpy(m + 32, data, dlen);
	return 32 + dlen;
}

#define TSHARK(file, ...) ovmc_tshark(OVMC_SOURCE_DIR, (file), (const char *const[]){__VA_ARGS__, NULL})

/* The frame numbers a display filter selects, as "1,4,5". */
static void frames(const char *file, const char *filter, char *buf, size_t size)
{
	char *out = TSHARK(file, "-Y", filter, "-T", "fields", "-e", "frame.number");
	size_t n = 0;

	buf[0] = '\0';
	for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? "," : "", l);
	free(out);
}

static void expect_frames(const char *file, const char *filter, const char *want)
{
	char got[256];

	frames(file, filter, got, sizeof(got));
	if (strcmp(got, want) != 0)
		FAIL("filter \"%s\" selects frames [%s], not [%s]", filter, got, want);
}

/* The expert messages of one frame, '|'-separated as tshark prints them. */
static void expect_message(const char *file, int frame, const char *what)
{
	char filter[32], *out;

	snprintf(filter, sizeof(filter), "frame.number == %d", frame);
	out = TSHARK(file, "-Y", filter, "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=|",
		     "-e", "_ws.expert.message");
	if (!strstr(out, what)) {
		char copy[512];

		snprintf(copy, sizeof(copy), "%s", out);
		free(out);
		FAIL("frame %d: expert info \"%s\" has no \"%s\"", frame, copy, what);
	}
	free(out);
}

TEST(router_return_codes_other_than_good_are_expert_info)
{
	struct cap *c = cap_new();
	uint8_t m[64];
	const char *file;

	rdma(c, 1, 32, m, router_msg(m, 1, OVMC_ROUTER_OP_ECHO, 0x40, 0x8001, ""));
	rdma(c, 1, 32, m, router_msg(m, 2, OVMC_ROUTER_OP_ECHO, 0x40, 0x0000, ""));
	/* A request's return code field is not an answer. */
	rdma(c, 0, 32, m, router_msg(m, 3, OVMC_ROUTER_OP_ECHO, 0x80, 0x8006, ""));
	rdma(c, 1, 32, m, router_msg(m, 4, OVMC_ROUTER_OP_CLOSE, 0x40, 0x8028, ""));
	file = cap_done(c);
	expect_frames(file, "openvmc.router.expert.rc", "1,4");
	expect_message(file, 1, "Router return code 0x8001 (invalid opcode)");
	expect_message(file, 4, "0x8028 (invalid state)");
	expect_frames(file, "_ws.expert", "1,4");
}

TEST(nonzero_vmc_status_is_expert_info_and_every_status_has_its_name)
{
	static const struct {
		uint8_t type, status;
		const char *name;
	} v[] = {
		{0x81, 2, "invalid version"},  {0x84, 2, "invalid buffer id"}, {0x85, 5, "no buffer"},
		{0x82, 1, "failure"},          {0x84, 4, "interface failure"}, {0x81, 1, "failure"},
		{0x83, 0, "success"},          {0x84, 0, "success"},          {0x85, 1, "invalid HMC index"},
	};
	struct cap *c = cap_new();
	const char *file;
	char *out, *save = NULL, *line;
	size_t i = 0;

	for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++)
		crq(c, k & 1, 0x80, v[k].type, v[k].status);
	file = cap_done(c);
	expect_frames(file, "openvmc.expert.vmc_status", "1,2,3,4,5,6,9");
	expect_message(file, 2, "ADD_BUF_RESP status 2 (invalid buffer id)");
	expect_frames(file, "openvmc.vmc.status_name == \"no buffer\"", "3");
	out = TSHARK(file, "-T", "fields", "-e", "openvmc.vmc.status_name");
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save), i++)
		if (i >= sizeof(v) / sizeof(v[0]) || strcmp(line, v[i].name) != 0)
			FAIL("frame %zu: status name \"%s\", not \"%s\"", i + 1, line,
			     i < sizeof(v) / sizeof(v[0]) ? v[i].name : "(none)");
	free(out);
	CHECK_EQ(i, sizeof(v) / sizeof(v[0]));
	/* The names are in the Info column and the tree too. */
	out = TSHARK(file, "-Y", "frame.number == 1", "-V");
	CHECK(strstr(out, "Status: 2 (invalid version)") != NULL);
	free(out);
}

TEST(bad_crq_headers_and_unknown_types_are_expert_info)
{
	struct cap *c = cap_new();
	const char *file;

	crq(c, 0, 0x42, 0x01, 0);  /* no such header byte */
	crq(c, 1, 0x00, 0x00, 0);  /* a free slot */
	crq(c, 0, 0x80, 0x77, 0);  /* unknown VMC message type */
	crq(c, 1, 0xC0, 0x09, 0);  /* unknown init format */
	crq(c, 1, 0xFF, 0x33, 0);  /* unknown transport event */
	crq(c, 1, 0xFF, 0x01, 0);  /* partner failed: a note, no error */
	crq(c, 0, 0xC0, 0x01, 0);  /* INIT: nothing to say */
	file = cap_done(c);
	expect_frames(file, "openvmc.expert.crq_header", "1,2");
	expect_message(file, 1, "CRQ header byte 0x42");
	expect_message(file, 2, "a free slot");
	expect_frames(file, "openvmc.expert.crq_type", "3,4,5");
	expect_message(file, 3, "Unknown VMC message type 0x77");
	expect_frames(file, "openvmc.expert.transport", "6");
	expect_message(file, 6, "partner failed");
	expect_frames(file, "_ws.expert.severity == error", "1,2,3,4,5");
}

TEST(rdma_length_disagreeing_with_the_data_is_expert_info)
{
	struct cap *c = cap_new();
	uint8_t data[64] = "0123456789";
	const char *file;

	rdma(c, 0, 100, data, 10);
	rdma(c, 1, 10, data, 10);
	rdma(c, 0, 0, data, 4);
	file = cap_done(c);
	expect_frames(file, "openvmc.expert.rdma_length", "1,3");
	expect_message(file, 1, "RDMA length 100, but the record holds 10 bytes of data");
	expect_frames(file, "_ws.expert", "1,3");
}

TEST(unknown_record_versions_kinds_and_sizes_are_expert_info)
{
	struct cap *c = cap_new();
	uint8_t r[64] = {0};
	const char *file;

	rec_header(r, 2, OVMC_CAPTURE_CRQ, 0);
	cap_record(c, r, 24);
	rec_header(r, 1, 9, 0);
	cap_record(c, r, 24);
	rec_header(r, 1, OVMC_CAPTURE_CRQ, 0);
	r[8] = 0xC0;
	r[9] = 0x01;
	cap_record(c, r, 20); /* a CRQ record is 24 bytes */
	cap_record(c, r, 28);
	memset(r + 8, 0, 16);
	rec_header(r, 1, OVMC_CAPTURE_RDMA, 1);
	cap_record(c, r, 30); /* shorter than the RDMA header */
	rec_header(r, 1, OVMC_CAPTURE_CRQ, 7);
	r[8] = 0xC0;
	r[9] = 0x01;
	cap_record(c, r, 24); /* no such direction */
	cap_record(c, r, 6);  /* the record header cut short */
	file = cap_done(c);
	expect_frames(file, "openvmc.expert.record_version", "1");
	expect_message(file, 1, "Record version 2");
	expect_frames(file, "openvmc.expert.record_kind", "2");
	expect_frames(file, "openvmc.expert.record_length", "3,4,5,7");
	expect_message(file, 3, "CRQ record of 20 bytes");
	expect_message(file, 5, "RDMA record of 30 bytes");
	expect_frames(file, "openvmc.expert.record_field", "6");
	expect_message(file, 6, "Unknown direction 7");
}

TEST(router_header_faults_are_expert_info)
{
	struct cap *c = cap_new();
	uint8_t m[64];
	size_t n;
	const char *file;

	n = router_msg(m, 1, OVMC_ROUTER_OP_ECHO, 0x80, 0, "abcd");
	m[3] = 16;
	rdma(c, 0, (uint32_t)n, m, n); /* header length */
	n = router_msg(m, 2, OVMC_ROUTER_OP_ECHO, 0x80, 0, "abcd");
	ovmc_put_be32(m + 4, 40);
	rdma(c, 0, (uint32_t)n, m, n); /* total length */
	n = router_msg(m, 3, OVMC_ROUTER_OP_ECHO, 0x80, 0, "abcd");
	ovmc_put_be32(m + 16, 9);
	rdma(c, 0, (uint32_t)n, m, n); /* data length */
	rdma(c, 0, 12, m, 12);         /* cut short */
	n = router_msg(m, 5, OVMC_ROUTER_OP_ECHO, 0x80, 0, "abcd");
	rdma(c, 0, (uint32_t)n, m, n); /* well formed */
	file = cap_done(c);
	expect_frames(file, "openvmc.router.expert.header", "1,2,3,4");
	expect_message(file, 1, "Header length 16, not 32");
	expect_message(file, 2, "Total length 40, but the message has 36 bytes");
	expect_message(file, 3, "Data length 9");
	expect_message(file, 4, "Router message of 12 bytes");
	expect_frames(file, "openvmc.router", "1,2,3,4,5");
}

/* Router requests in RDMA data, other data, a CRQ entry: the router is a
 * protocol of its own, beside openvmc in the tree. */
TEST(router_is_its_own_protocol_and_filters_alone)
{
	struct cap *c = cap_new();
	uint8_t m[64], id[32] = "not a router message";
	size_t n = router_msg(m, 0xABCD, OVMC_ROUTER_OP_ECHO, 0x80, 0, "hi");
	const char *file;
	char *out;

	rdma(c, 0, (uint32_t)n, m, n);
	rdma(c, 0, sizeof(id), id, sizeof(id));
	crq(c, 0, 0x80, 0x06, 0);
	file = cap_done(c);
	expect_frames(file, "openvmc.router", "1");
	expect_frames(file, "openvmc && !openvmc.router", "2,3");
	expect_frames(file, "openvmc.router.token == 0xabcd", "1");
	out = TSHARK(file, "-Y", "frame.number == 1", "-V");
	/* Top-level items start at column 0: "openvmc ..." then the router. */
	CHECK(strstr(out, "\nopenvmc RDMA\n") != NULL);
	CHECK(strstr(out, "\nopenvmc command router, echo request, token 0x0000abcd\n") != NULL);
	free(out);
	out = TSHARK(file, "-Y", "openvmc.router", "-T", "fields", "-e", "frame.protocols");
	CHECK(strstr(out, "openvmc:openvmc.router") != NULL);
	free(out);
}

struct writer {
	struct ovmc_capture *w;
};

static void writer_close(void *arg)
{
	struct writer *wr = arg;

	if (wr->w)
		ovmc_capture_close(wr->w);
	free(wr);
}

static void backend_free(void *b)
{
	ovmc_backend_free(b);
	free(b);
}

/*
 * A capture the library writes while the router backend answers a good
 * and a bad request: four router items (two requests, two responses), and
 * the bad answer is the only expert info in the whole channel.
 */
TEST(router_backend_capture_decodes_with_its_error_as_only_expert_info)
{
	struct cap *c = cap_new();
	struct ovmc_backend *b = calloc(1, sizeof(*b));
	struct writer *wr = calloc(1, sizeof(*wr));
	struct sim_opts o;
	struct sim *s;
	struct sim_file *f;
	uint8_t id[OVMC_HMC_ID_LEN], m[64], back[64];
	char path[96], got[64], *out;
	int items = 1;

	CHECK(b && wr);
	cap_done(c);
	CHECK_EQ(ovmc_backend_new("router", NULL, b), 0);
	ovmc_test_defer(backend_free, b);
	snprintf(path, sizeof(path), "%s/router.pcapng", c->dir);
	snprintf(c->other, sizeof(c->other), "%s", path);
	CHECK_EQ(ovmc_capture_open(path, OVMC_CAPTURE_HYPERVISOR, &wr->w), 0);
	ovmc_test_defer(writer_close, wr);
	sim_opts_default(&o);
	o.backend = b->ops;
	o.backend_arg = b->arg;
	o.hv_trace = ovmc_capture_trace;
	o.hv_trace_arg = wr->w;
	s = sim_new(&o);
	sim_ready(s);
	sim_make_id(id, 3);
	f = sim_open_session(s, id);
	for (int i = 0; i < 2; i++) {
		size_t n = router_msg(m, 0x100u + (unsigned)i,
				      i ? 0x0777 : OVMC_ROUTER_OP_EXCHANGE_OPS, 0x80, 0, "");

		CHECK_EQ(sim_write(s, f, m, n), (ssize_t)n);
		CHECK(sim_wait(s, f, POLLIN, 5 * SIM_S));
		CHECK(sim_read(s, f, back, sizeof(back)) >= 32);
	}
	/* Every record is written as it happens: the file is whole while the
	 * simulation, which still traces into it until it is freed, goes on. */
	frames(path, "openvmc.router", got, sizeof(got));
	for (const char *p = got; (p = strchr(p, ',')); p++)
		items++;
	if (!got[0] || items != 4)
		FAIL("router items in frames [%s], not in four", got);
	out = TSHARK(path, "-Y", "openvmc.router", "-T", "fields", "-e", "openvmc.router.token");
	CHECK(strstr(out, "0x00000100") && strstr(out, "0x00000101"));
	free(out);
	out = TSHARK(path, "-Y", "_ws.expert", "-T", "fields", "-e", "openvmc.router.rc",
		     "-e", "_ws.expert.message");
	if (strncmp(out, "0x8001\t", 7) != 0 || strchr(out, '\n') != out + strlen(out) - 1) {
		char copy[512];

		snprintf(copy, sizeof(copy), "%s", out);
		free(out);
		FAIL("expert info of the channel: \"%s\"", copy);
	}
	free(out);
}
