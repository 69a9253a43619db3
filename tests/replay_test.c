// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Record a session against a scripted hypervisor, replay the capture with
 * the replay backend, and check the application sees the same responses.
 */
#include "harness.h"
#include "sim.h"

#include <openvmc/backend.h>
#include <openvmc/capture.h>

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

/* The hypervisor being recorded: a greeting at open, "re:" + each request,
 * and an extra unsolicited message after requests starting with "two". */
static int scripted_open(void *b, struct ovmc_hv_session *s, const uint8_t id[OVMC_HMC_ID_LEN])
{
	char msg[64];

	(void)b;
	snprintf(msg, sizeof(msg), "welcome %.8s", (const char *)id);
	return ovmc_hv_send(s, msg, strlen(msg)) == 0 ? 0 : -EIO;
}

static void scripted_message(void *b, struct ovmc_hv_session *s, const uint8_t *data, size_t len)
{
	uint8_t out[256];

	(void)b;
	memcpy(out, "re:", 3);
	memcpy(out + 3, data, len);
	CHECK_EQ(ovmc_hv_send(s, out, len + 3), 0);
	if (len >= 3 && !memcmp(data, "two", 3))
		CHECK_EQ(ovmc_hv_send(s, "and another", 11), 0);
}

static const struct ovmc_backend_ops scripted = {
	.name = "scripted",
	.open = scripted_open,
	.message = scripted_message,
};

struct transcript {
	char lines[32][128];
	size_t n;
};

static const char *const requests[] = {"hello", "two things", "status?", "bye"};

/* Open a session, send the requests, collect every message the app reads. */
static void converse(struct sim *s, struct transcript *t, bool alter_second)
{
	uint8_t id[OVMC_HMC_ID_LEN];
	struct sim_file *f;
	char buf[256];
	ssize_t n;

	sim_make_id(id, 11);
	f = sim_open_session(s, id);
	t->n = 0;
	for (size_t i = 0; i <= sizeof(requests) / sizeof(requests[0]); i++) {
		while ((n = sim_read(s, f, buf, sizeof(t->lines[0]) - 1)) > 0) {
			CHECK(t->n < 32);
			buf[n] = 0;
			memcpy(t->lines[t->n++], buf, (size_t)n + 1);
		}
		CHECK_EQ(n, -EAGAIN);
		if (i == sizeof(requests) / sizeof(requests[0]))
			break;
		const char *req = alter_second && i == 1 ? "three things" : requests[i];

		CHECK_EQ(sim_write(s, f, req, strlen(req)), (ssize_t)strlen(req));
		sim_run(s);
	}
	sim_close(s, f);
	sim_run(s);
}

static void capture_close(void *c)
{
	ovmc_capture_close(c);
}

static void remove_file(void *path)
{
	unlink(path);
	free(path);
}

/* Record the scripted conversation; returns the capture's path. */
static char *record(struct transcript *t, enum ovmc_capture_side side)
{
	char *path = strdup("/tmp/ovmc-replay-XXXXXX");
	struct ovmc_capture *c;
	struct sim_opts o;
	struct sim *s;
	int fd;

	CHECK(path);
	fd = mkstemp(path);
	CHECK(fd >= 0);
	close(fd);
	ovmc_test_defer(remove_file, path);
	CHECK_EQ(ovmc_capture_open(path, side, &c), 0);
	ovmc_test_defer(capture_close, c);
	sim_opts_default(&o);
	o.backend = &scripted;
	if (side == OVMC_CAPTURE_HYPERVISOR) {
		o.hv_trace = ovmc_capture_trace;
		o.hv_trace_arg = c;
	} else {
		o.drv_trace = ovmc_capture_trace;
		o.drv_trace_arg = c;
	}
	s = sim_new(&o);
	sim_ready(s);
	converse(s, t, false);
	return path;
}

static void unlink_path(void *path)
{
	unlink(path);
}

static void backend_free(void *b)
{
	ovmc_backend_free(b);
	free(b);
}

static struct sim *replaying(const char *path)
{
	struct ovmc_backend *b = calloc(1, sizeof(*b));
	char spec[128];
	struct sim_opts o;
	struct sim *s;

	CHECK(b);
	snprintf(spec, sizeof(spec), "replay:%s", path);
	CHECK_EQ(ovmc_backend_new(spec, NULL, b), 0);
	ovmc_test_defer(backend_free, b);
	sim_opts_default(&o);
	o.backend = b->ops;
	o.backend_arg = b->arg;
	s = sim_new(&o);
	sim_ready(s);
	return s;
}

static void check_same(const struct transcript *a, const struct transcript *b)
{
	CHECK_EQ(a->n, b->n);
	for (size_t i = 0; i < a->n; i++) {
		if (strcmp(a->lines[i], b->lines[i]))
			FAIL("message %zu: recorded \"%s\", replayed \"%s\"", i, a->lines[i],
			     b->lines[i]);
	}
}

TEST(replay_of_hypervisor_capture_gives_same_responses)
{
	struct transcript rec, rep;
	char *path = record(&rec, OVMC_CAPTURE_HYPERVISOR);

	/* welcome, re:hello, re:two things, and another, re:status?, re:bye */
	CHECK_EQ(rec.n, 6);
	CHECK(!strncmp(rec.lines[0], "welcome ", 8));
	CHECK(!strcmp(rec.lines[3], "and another"));
	converse(replaying(path), &rep, false);
	check_same(&rec, &rep);
}

TEST(replay_of_partition_capture_gives_same_responses)
{
	struct transcript rec, rep;
	char *path = record(&rec, OVMC_CAPTURE_PARTITION);

	converse(replaying(path), &rep, false);
	check_same(&rec, &rep);
}

TEST(replay_answers_as_recorded_when_a_request_differs)
{
	struct transcript rec, rep;
	char *path = record(&rec, OVMC_CAPTURE_HYPERVISOR);

	converse(replaying(path), &rep, true);
	check_same(&rec, &rep);
}

TEST(replay_second_open_plays_the_recording_again)
{
	struct transcript rec, rep1, rep2;
	char *path = record(&rec, OVMC_CAPTURE_HYPERVISOR);
	struct sim *s = replaying(path);

	converse(s, &rep1, false);
	converse(s, &rep2, false);
	check_same(&rec, &rep1);
	check_same(&rec, &rep2);
}

TEST(replay_refuses_missing_and_foreign_files)
{
	struct ovmc_backend b;
	static char path[] = "/tmp/ovmc-replay-bad-XXXXXX";
	char spec[64];
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	CHECK_EQ(write(fd, "not a capture file at all, just text", 36), 36);
	close(fd);
	ovmc_test_defer(unlink_path, path);
	CHECK_EQ(ovmc_backend_new("replay:/nonexistent/file.pcapng", NULL, &b), -ENOENT);
	snprintf(spec, sizeof(spec), "replay:%s", path);
	CHECK_EQ(ovmc_backend_new(spec, NULL, &b), -EPROTO);
	CHECK_EQ(ovmc_backend_new("replay:", NULL, &b), -EINVAL);
}
