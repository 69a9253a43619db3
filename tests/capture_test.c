// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Capture files: what the machine and the driver trace is written as
 * pcapng, reads back record for record, and tshark with the shipped Lua
 * dissector decodes it field by field.
 */
#include "harness.h"
#include "sim.h"
#include "tshark.h"

#include <openvmc/capture.h>
#include <openvmc/router.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct tmpdir {
	char path[64];
};

static void tmpdir_remove(void *arg)
{
	struct tmpdir *t = arg;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->path);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", t->path);
	free(t);
}

static struct tmpdir *tmpdir_new(void)
{
	struct tmpdir *t = calloc(1, sizeof(*t));

	CHECK(t);
	strcpy(t->path, "/tmp/ovmc-capture-XXXXXX");
	CHECK(mkdtemp(t->path));
	ovmc_test_defer(tmpdir_remove, t);
	return t;
}

static void capture_close(void *c)
{
	ovmc_capture_close(c);
}

static void reader_close(void *r)
{
	ovmc_capture_reader_close(r);
}

/* A router request: 32-byte header then data (the echo backend returns it). */
static size_t router_request(uint8_t *buf, uint32_t token, uint16_t opcode, const char *data)
{
	size_t dlen = strlen(data);

	memset(buf, 0, 32);
	buf[0] = 0xDE;
	buf[1] = 0xCA;
	buf[2] = 0xFF;
	buf[3] = 32;
	ovmc_put_be32(buf + 4, (uint32_t)(32 + dlen));
	ovmc_put_be32(buf + 8, token);
	ovmc_put_be16(buf + 12, 0x8000);
	buf[15] = 0x80;
	ovmc_put_be32(buf + 16, (uint32_t)dlen);
	ovmc_put_be16(buf + 20, opcode);
	memcpy(buf + 32, data, dlen);
	return 32 + dlen;
}

TEST(capture_records_read_back_in_order)
{
	struct tmpdir *d = tmpdir_new();
	struct ovmc_capture *c;
	struct ovmc_capture_reader *r;
	struct ovmc_capture_record rec;
	struct sim_opts o;
	struct sim *s;
	struct sim_file *f;
	uint8_t id[OVMC_HMC_ID_LEN], msg[64], back[64];
	char path[128];
	size_t entries = 0, rdma_to_hv = 0, rdma_to_part = 0, i = 0;
	uint64_t written, failed, last_time = 0;
	size_t n;

	snprintf(path, sizeof(path), "%s/hv.pcapng", d->path);
	CHECK_EQ(ovmc_capture_open(path, OVMC_CAPTURE_HYPERVISOR, &c), 0);
	sim_opts_default(&o);
	o.hv_trace = ovmc_capture_trace;
	o.hv_trace_arg = c;
	s = sim_new(&o);
	sim_ready(s);
	sim_make_id(id, 3);
	f = sim_open_session(s, id);
	n = router_request(msg, 0xCAFE0001, 0x0103, "hello, capture");
	CHECK_EQ(sim_write(s, f, msg, n), (ssize_t)n);
	sim_run(s);
	CHECK_EQ(sim_read(s, f, back, sizeof(back)), (ssize_t)n);
	ovmc_capture_counts(c, &written, &failed);
	CHECK_EQ(failed, 0);
	s->o.hv_trace = NULL;
	CHECK_EQ(ovmc_capture_close(c), 0);
	CHECK_EQ(written, s->log.n + s->rdma_ops);

	CHECK_EQ(ovmc_capture_reader_open(path, &r), 0);
	while (ovmc_capture_read(r, &rec) == 1) {
		CHECK(rec.time_ns >= last_time);
		last_time = rec.time_ns;
		CHECK_EQ(rec.side, OVMC_CAPTURE_HYPERVISOR);
		CHECK_EQ(rec.partition, 1);
		if (rec.kind == OVMC_CAPTURE_CRQ) {
			/* Same entries, same order, same direction as the machine delivered. */
			CHECK(i < s->log.n);
			CHECK_EQ(rec.dir, s->log.v[i].dir == SIM_TO_HV ? OVMC_CAPTURE_TO_HV
								      : OVMC_CAPTURE_TO_PARTITION);
			CHECK_MEM(rec.entry, s->log.v[i].e, OVMC_CRQ_ENTRY_SIZE);
			i++;
			entries++;
		} else {
			CHECK_EQ(rec.kind, OVMC_CAPTURE_RDMA);
			if (rec.dir == OVMC_CAPTURE_TO_HV) {
				rdma_to_hv++;
				/* The open's RDMA carries the whole MTU, the HMC id first. */
				if (rdma_to_hv == 1) {
					CHECK_EQ(rec.data_len, 4096);
					CHECK_MEM(rec.data, id, OVMC_HMC_ID_LEN);
				} else {
					CHECK_EQ(rec.data_len, n);
					CHECK_MEM(rec.data, msg, n);
				}
			} else {
				rdma_to_part++;
				CHECK_EQ(rec.data_len, n);
				CHECK_MEM(rec.data, msg, n);
			}
		}
	}
	ovmc_capture_reader_close(r);
	CHECK_EQ(entries, s->log.n);
	CHECK_EQ(rdma_to_hv, 2);
	CHECK_EQ(rdma_to_part, 1);
}

TEST(partition_side_capture_matches_hypervisor_side)
{
	char hv_path[128], part_path[128];
	struct ovmc_capture_reader *a, *b;
	struct ovmc_capture_record ra, rb;
	struct ovmc_capture *c;
	struct tmpdir *d = tmpdir_new();
	struct sim_opts o;
	struct sim *s;
	struct sim_file *f;
	uint8_t id[OVMC_HMC_ID_LEN], msg[64], back[64];
	struct ovmc_capture *hv;
	size_t n, records = 0;

	snprintf(hv_path, sizeof(hv_path), "%s/hv.pcapng", d->path);
	snprintf(part_path, sizeof(part_path), "%s/part.pcapng", d->path);
	CHECK_EQ(ovmc_capture_open(hv_path, OVMC_CAPTURE_HYPERVISOR, &hv), 0);
	CHECK_EQ(ovmc_capture_open(part_path, OVMC_CAPTURE_PARTITION, &c), 0);
	sim_opts_default(&o);
	/* One file per side: the machine writes one, the driver the other. */
	o.hv_trace = ovmc_capture_trace;
	o.hv_trace_arg = hv;
	o.drv_trace = ovmc_capture_trace;
	o.drv_trace_arg = c;
	s = sim_new(&o);
	sim_ready(s);
	sim_make_id(id, 9);
	f = sim_open_session(s, id);
	n = router_request(msg, 42, 0x0103, "both sides");
	CHECK_EQ(sim_write(s, f, msg, n), (ssize_t)n);
	sim_run(s);
	CHECK_EQ(sim_read(s, f, back, sizeof(back)), (ssize_t)n);
	s->o.hv_trace = NULL;
	s->o.drv_trace = NULL;
	CHECK_EQ(ovmc_capture_close(hv), 0);
	CHECK_EQ(ovmc_capture_close(c), 0);

	/* With one partition, each direction's records are the same sequence
	 * on both sides (the interleaving of the two directions differs: the
	 * machine stamps delivery, the driver stamps consumption). */
	for (uint8_t dir = 0; dir < 2; dir++) {
		for (uint8_t kind = OVMC_CAPTURE_CRQ; kind <= OVMC_CAPTURE_RDMA; kind++) {
			CHECK_EQ(ovmc_capture_reader_open(hv_path, &a), 0);
			ovmc_test_defer(reader_close, a);
			CHECK_EQ(ovmc_capture_reader_open(part_path, &b), 0);
			ovmc_test_defer(reader_close, b);
			for (;;) {
				int x, y;

				while ((x = ovmc_capture_read(a, &ra)) == 1 &&
				       (ra.dir != dir || ra.kind != kind))
					;
				while ((y = ovmc_capture_read(b, &rb)) == 1 &&
				       (rb.dir != dir || rb.kind != kind))
					;
				CHECK_EQ(x, y);
				if (x != 1)
					break;
				records++;
				CHECK_EQ(rb.side, OVMC_CAPTURE_PARTITION);
				if (kind == OVMC_CAPTURE_CRQ) {
					CHECK_MEM(ra.entry, rb.entry, OVMC_CRQ_ENTRY_SIZE);
				} else {
					CHECK_EQ(ra.data_len, rb.data_len);
					CHECK_MEM(ra.data, rb.data, ra.data_len);
					CHECK_EQ(ra.src_liobn, rb.src_liobn);
					CHECK_EQ(ra.dst_ioba, rb.dst_ioba);
				}
			}
		}
	}
	CHECK(records > 40);
}

/* Run tshark with the dissector; returns its stdout (caller frees). */
static char *tshark(const char *file, const char *const *fields, size_t nfields)
{
	const char *args[48] = {"-T", "fields", "-E", "separator=,"};
	size_t n = 4;

	for (size_t i = 0; i < nfields && n + 2 < 48; i++) {
		args[n++] = "-e";
		args[n++] = fields[i];
	}
	args[n] = NULL;
	return ovmc_tshark(OVMC_SOURCE_DIR, file, args);
}

/* Split a tshark line at its commas into at most n fields. */
static void split_fields(char *line, char **v, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		v[k] = line;
		line = strchr(line, ',');
		if (!line) {
			while (++k < n)
				v[k] = "";
			return;
		}
		*line++ = 0;
	}
}

struct trace_count {
	unsigned entries, rdma;
};

static void count_trace(void *arg, const struct ovmc_trace_event *ev)
{
	struct trace_count *c = arg;

	if (ev->kind == OVMC_TRACE_RDMA)
		c->rdma++;
	else
		c->entries++;
}

/* One message out and its echo back; what the driver traced meanwhile. */
static struct trace_count echo_traced(struct sim *s, struct sim_file *f, struct trace_count *c)
{
	struct trace_count before = *c;
	uint8_t msg[64], back[64];
	size_t n = router_request(msg, 7, 0x0103, "traced?");

	CHECK_EQ(sim_write(s, f, msg, n), (ssize_t)n);
	sim_run(s);
	CHECK_EQ(sim_read(s, f, back, sizeof(back)), (ssize_t)n);
	return (struct trace_count){c->entries - before.entries, c->rdma - before.rdma};
}

/* Off, the driver builds no event at all; back on, every one again. */
TEST(driver_tracing_can_be_switched_off_and_on)
{
	struct trace_count c = {0}, d;
	struct sim_opts o;
	struct sim *s;
	struct sim_file *f;
	uint8_t id[OVMC_HMC_ID_LEN];

	sim_opts_default(&o);
	o.drv_trace = count_trace;
	o.drv_trace_arg = &c;
	s = sim_new(&o);
	sim_ready(s);
	sim_make_id(id, 3);
	f = sim_open_session(s, id);
	d = echo_traced(s, f, &c);
	/* The signal out, the signal in; the copy out, the copy in. */
	CHECK_EQ(d.entries, 2u);
	CHECK_EQ(d.rdma, 2u);
	ovmc_drv_set_tracing(s->drv, false);
	d = echo_traced(s, f, &c);
	CHECK_EQ(d.entries, 0u);
	CHECK_EQ(d.rdma, 0u);
	ovmc_drv_set_tracing(s->drv, true);
	d = echo_traced(s, f, &c);
	CHECK_EQ(d.entries, 2u);
	CHECK_EQ(d.rdma, 2u);
	/* The closes at the end are traced too, after c is gone. */
	s->o.drv_trace = NULL;
}

TEST(tshark_dissector_decodes_capture)
{
	static const char *const fields[] = {
		"openvmc.kind",	       "openvmc.dir",	       "openvmc.crq.header",
		"openvmc.crq.format",  "openvmc.vmc.type",     "openvmc.vmc.session",
		"openvmc.vmc.index",   "openvmc.vmc.buffer",   "openvmc.vmc.msglen",
		"openvmc.cap.mtu",     "openvmc.cap.version",  "openvmc.rdma.len",
		"openvmc.router.token", "openvmc.router.opcode", "openvmc.router.target",
		"openvmc.router.datalen",
	};
	struct tmpdir *d = tmpdir_new();
	struct ovmc_capture *c;
	struct sim_opts o;
	struct sim *s;
	struct sim_file *f;
	uint8_t id[OVMC_HMC_ID_LEN], msg[64], back[64];
	char path[128], *out, *line, *save = NULL;
	size_t n, lines = 0, signals = 0, routers = 0, caps = 0, inits = 0;
	uint64_t written, failed;

	snprintf(path, sizeof(path), "%s/cap.pcapng", d->path);
	CHECK_EQ(ovmc_capture_open(path, OVMC_CAPTURE_HYPERVISOR, &c), 0);
	ovmc_test_defer(capture_close, c);
	sim_opts_default(&o);
	o.hv_trace = ovmc_capture_trace;
	o.hv_trace_arg = c;
	s = sim_new(&o);
	sim_ready(s);
	sim_make_id(id, 5);
	f = sim_open_session(s, id);
	for (uint32_t i = 0; i < 2; i++) {
		n = router_request(msg, 0xABCD0000 + i, 0x0103, "tshark");
		CHECK_EQ(sim_write(s, f, msg, n), (ssize_t)n);
		sim_run(s);
		CHECK_EQ(sim_read(s, f, back, sizeof(back)), (ssize_t)n);
	}
	ovmc_capture_counts(c, &written, &failed);

	out = tshark(path, fields, sizeof(fields) / sizeof(fields[0]));
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *v[16];

		split_fields(line, v, 16);
		lines++;
		if (!strcmp(v[0], "1") && !strcmp(v[2], "0xc0") && !strcmp(v[3], "0x01"))
			inits++;
		if (!strcmp(v[0], "1") && !strcmp(v[4], "0x01")) {
			caps++;
			CHECK(!strcmp(v[1], "0")); /* partition -> hypervisor */
			CHECK(!strcmp(v[9], "4096"));
			CHECK(!strcmp(v[10], "0x0101"));
		}
		if (!strcmp(v[0], "1") && !strcmp(v[4], "0x06")) {
			signals++;
			CHECK(!strcmp(v[5], "1"));
			CHECK(!strcmp(v[6], "0"));
			CHECK_EQ(atoi(v[8]), (int)n);
		}
		if (*v[12]) {
			routers++;
			CHECK(!strcmp(v[0], "2"));
			CHECK_EQ(strtoul(v[12], NULL, 16) & 0xFFFF0000u, 0xABCD0000u);
			CHECK(!strcmp(v[13], "0x0103"));
			CHECK(!strcmp(v[14], "0x8000"));
			CHECK(!strcmp(v[15], "6"));
			CHECK_EQ(atoi(v[11]), (int)n);
		}
	}
	free(out);
	CHECK_EQ(lines, written);
	CHECK_EQ(inits, 1);
	CHECK_EQ(caps, 1);
	CHECK_EQ(signals, 4);  /* two requests, two echoes */
	CHECK_EQ(routers, 4);  /* their RDMA payloads */
}

static void backend_free(void *b)
{
	ovmc_backend_free(b);
	free(b);
}

/*
 * The router backend answers, so the capture holds responses: tshark must
 * show their flags and return codes (good and an error) with the request's
 * token and opcode.
 */
TEST(tshark_dissector_decodes_router_responses)
{
	static const char *const fields[] = {
		"openvmc.kind",
		"openvmc.dir",
		"openvmc.router.token",
		"openvmc.router.opcode",
		"openvmc.router.target",
		"openvmc.router.flags",
		"openvmc.router.flags.expect",
		"openvmc.router.flags.response",
		"openvmc.router.rc",
	};
	static const struct {
		uint32_t token;
		uint16_t opcode, rc;
		const char *data;
	} calls[] = {
		{0x5EED0001, OVMC_ROUTER_OP_EXCHANGE_OPS, OVMC_ROUTER_RC_GOOD, ""},
		{0x5EED0002, OVMC_ROUTER_OP_ECHO, OVMC_ROUTER_RC_GOOD, "tshark"},
		{0x5EED0003, 0x0003, OVMC_ROUTER_RC_INVALID_OPCODE, ""},
	};
	enum { NCALLS = sizeof(calls) / sizeof(calls[0]) };
	struct tmpdir *d = tmpdir_new();
	struct ovmc_backend *b = calloc(1, sizeof(*b));
	struct ovmc_capture *c;
	struct sim_opts o;
	struct sim *s;
	struct sim_file *f;
	uint8_t id[OVMC_HMC_ID_LEN], msg[64], back[64];
	char path[128], *out, *line, *save = NULL;
	size_t requests[NCALLS] = {0}, responses[NCALLS] = {0};

	CHECK(b);
	CHECK_EQ(ovmc_backend_new("router", NULL, b), 0);
	/* Deferred before the simulation, so freed after it. */
	ovmc_test_defer(backend_free, b);
	snprintf(path, sizeof(path), "%s/router.pcapng", d->path);
	CHECK_EQ(ovmc_capture_open(path, OVMC_CAPTURE_HYPERVISOR, &c), 0);
	ovmc_test_defer(capture_close, c);
	sim_opts_default(&o);
	o.backend = b->ops;
	o.backend_arg = b->arg;
	o.hv_trace = ovmc_capture_trace;
	o.hv_trace_arg = c;
	s = sim_new(&o);
	sim_ready(s);
	sim_make_id(id, 7);
	f = sim_open_session(s, id);
	for (size_t i = 0; i < NCALLS; i++) {
		size_t n = router_request(msg, calls[i].token, calls[i].opcode, calls[i].data);
		ssize_t got;

		CHECK_EQ(sim_write(s, f, msg, n), (ssize_t)n);
		CHECK(sim_wait(s, f, POLLIN, 5 * SIM_S));
		got = sim_read(s, f, back, sizeof(back));
		CHECK(got >= 32);
		/* What tshark must show, as the router itself wrote it. */
		CHECK_EQ(back[15], OVMC_ROUTER_FLAG_RESPONSE);
		CHECK_EQ(ovmc_get_be16(back + 22), calls[i].rc);
	}

	out = tshark(path, fields, sizeof(fields) / sizeof(fields[0]));
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *v[9];
		size_t i;
		uint32_t token;

		split_fields(line, v, 9);
		if (!*v[2])
			continue; /* not a router message */
		token = (uint32_t)strtoul(v[2], NULL, 16);
		for (i = 0; i < NCALLS && calls[i].token != token; i++)
			;
		if (i == NCALLS)
			FAIL("router token %s was never sent", v[2]);
		CHECK(!strcmp(v[0], "2"));
		CHECK_EQ(strtoul(v[3], NULL, 16), calls[i].opcode);
		CHECK(!strcmp(v[4], "0x8000"));
		if (!strcmp(v[1], "0")) { /* partition -> hypervisor: the request */
			requests[i]++;
			CHECK(!strcmp(v[5], "0x80"));
			CHECK(!strcmp(v[6], "1"));
			CHECK(!strcmp(v[7], "0"));
			CHECK(!strcmp(v[8], "0x0000"));
		} else {
			responses[i]++;
			CHECK(!strcmp(v[1], "1"));
			CHECK(!strcmp(v[5], "0x40"));
			CHECK(!strcmp(v[6], "0"));
			CHECK(!strcmp(v[7], "1"));
			CHECK_EQ(strtoul(v[8], NULL, 16), calls[i].rc);
		}
	}
	free(out);
	for (size_t i = 0; i < NCALLS; i++) {
		CHECK_EQ(requests[i], 1);
		CHECK_EQ(responses[i], 1);
	}
}

TEST(reader_rejects_damaged_files)
{
	struct tmpdir *d = tmpdir_new();
	struct ovmc_capture *c;
	struct ovmc_capture_reader *r;
	struct ovmc_capture_record rec;
	uint8_t e[OVMC_CRQ_ENTRY_SIZE] = {0xC0, 0x01};
	struct ovmc_trace_event ev = {.kind = OVMC_TRACE_TO_HV, .partition = 1, .entry = e};
	char path[128], cut[140];
	struct stat st;
	uint8_t *buf;
	int fd, rc;

	snprintf(path, sizeof(path), "%s/good.pcapng", d->path);
	snprintf(cut, sizeof(cut), "%s/cut", d->path);
	CHECK_EQ(ovmc_capture_open(path, OVMC_CAPTURE_PARTITION, &c), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(ovmc_capture_event(c, &ev), 0);
	CHECK_EQ(ovmc_capture_close(c), 0);
	CHECK_EQ(stat(path, &st), 0);
	buf = malloc((size_t)st.st_size);
	CHECK(buf);
	fd = open(path, O_RDONLY);
	CHECK_EQ(read(fd, buf, (size_t)st.st_size), st.st_size);
	close(fd);

	/* Every truncation reads cleanly up to the cut, then stops with an error
	 * or at a block boundary; never past the end. */
	for (off_t len = 0; len < st.st_size; len++) {
		int records = 0;

		fd = open(cut, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		CHECK_EQ(write(fd, buf, (size_t)len), len);
		close(fd);
		rc = ovmc_capture_reader_open(cut, &r);
		if (rc) {
			CHECK_EQ(rc, -EPROTO);
			continue;
		}
		while ((rc = ovmc_capture_read(r, &rec)) == 1)
			records++;
		CHECK(rc == 0 || rc == -EPROTO);
		CHECK(records < 3);
		ovmc_capture_reader_close(r);
	}
	/* A corrupted record magic is refused. */
	buf[st.st_size - 4 - 24] ^= 0xFF;
	fd = open(cut, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK_EQ(write(fd, buf, (size_t)st.st_size), st.st_size);
	close(fd);
	free(buf);
	CHECK_EQ(ovmc_capture_reader_open(cut, &r), 0);
	CHECK_EQ(ovmc_capture_read(r, &rec), 1);
	CHECK_EQ(ovmc_capture_read(r, &rec), 1);
	CHECK_EQ(ovmc_capture_read(r, &rec), -EPROTO);
	ovmc_capture_reader_close(r);
}

TEST(capture_open_in_missing_directory_fails)
{
	struct ovmc_capture *c = NULL;

	CHECK_EQ(ovmc_capture_open("/nonexistent-dir/x.pcapng", OVMC_CAPTURE_HYPERVISOR, &c),
		 -ENOENT);
	CHECK(c == NULL);
}
