// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The guest link without QEMU: a real openvmc-hvd started with
 * --guest-socket, and fake spapr-vmc devices (guestdev.c) in this process
 * speaking the device side of docs/guest-link.md over the real socket, with
 * the driver core as the guest's kernel driver on top. Every hypervisor
 * feature is exercised on such a channel: the init handshake and
 * capabilities, an HMC session through the echo backend with the device
 * doing the RDMA in the mapped window, `send` and `restart` on the control
 * socket, SIGKILL and restart of the daemon, the capture; and the link's
 * own rules: DELIVER answered H_DROPPED, a device that never answers, a
 * window too small, and hostile messages, each closing only its own
 * connection, with the daemon's descriptors back where they were.
 *
 * Each daemon lives in a fresh /tmp directory and is killed by pid when the
 * test ends, whatever the outcome; on a failure its log is printed.
 */
#include "fixture.h"
#include "guestdev.h"
#include "harness.h"
#include "platform/xproc_proto.h"

#include <openvmc/capture.h>
#include <openvmc/driver.h>
#include <openvmc/wire.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef HVD_BIN
#error HVD_BIN must name the openvmc-hvd program
#endif
#ifndef VMCCTL_BIN
#error VMCCTL_BIN must name the vmcctl program
#endif
#ifndef SOURCE_DIR
#error SOURCE_DIR must name the source tree (docs/vmcctl-json.md, tests/json_check.py)
#endif

#define GUEST_MEM (4u << 20)
#define SETTLE_MS 10000

struct env {
	struct hvd *h;
	char dir[64]; /* the daemon's, kept for the last cleanup */
	char gsock[100];
	char capture[160];
	struct gdev *g;
	struct ovmc_drv *drv;
	struct ovmc_drv_file *files[2];
};

static uint64_t ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void env_cleanup(void *arg)
{
	struct env *e = arg;

	for (unsigned i = 0; i < 2; i++)
		if (e->files[i])
			ovmc_drv_close(e->drv, e->files[i], ns());
	ovmc_drv_free(e->drv);
	gdev_free(e->g);
}

/* After the daemon stopped (it removes its own socket files). */
static void env_files_cleanup(void *arg)
{
	struct env *e = arg;
	char dir[160];

	if (e->dir[0]) {
		snprintf(dir, sizeof(dir), "%s/guest", e->dir);
		unlink(e->gsock);
		rmdir(dir);
		unlink(e->capture);
		rmdir(e->dir);
	}
	free(e);
}

static void start_hvd(struct env *e, const char *const *extra)
{
	const char *args[16] = {"--guest-socket", e->gsock, "--hmcs", "2"};
	int n = 4;

	for (; extra && *extra && n < 15; extra++)
		args[n++] = *extra;
	args[n] = NULL;
	spawn_hvd(e->h, HVD_BIN, args);
}

/* A daemon's directory and paths, not started. */
static struct env *env_alloc(void)
{
	struct env *e = calloc(1, sizeof(*e));
	struct hvd *h;

	if (!e)
		FAIL("out of memory");
	ovmc_test_defer(env_files_cleanup, e);
	h = new_hvd();
	e->h = h;
	snprintf(e->dir, sizeof(e->dir), "%s", h->d->dir);
	snprintf(e->gsock, sizeof(e->gsock), "%s/guest/vmc.sock", h->d->dir);
	snprintf(e->capture, sizeof(e->capture), "%s/capture.pcapng", h->d->dir);
	ovmc_test_defer(env_cleanup, e);
	return e;
}

static struct env *env_new(const char *const *extra)
{
	struct env *e = env_alloc();

	start_hvd(e, extra);
	return e;
}

/* Device and driver run for up to `ms`, until cond(e, arg) holds. */
static bool run_until(struct env *e, int ms, bool (*cond)(struct env *, const void *),
		      const void *arg)
{
	uint64_t end = now_ms() + (uint64_t)ms;

	for (;;) {
		struct pollfd p[2] = {{.fd = e->g ? e->g->fd : -1, .events = POLLIN},
				      {.fd = e->g ? ovmc_platform_irq_fd(e->g->plat) : -1,
				       .events = POLLIN}};

		if (cond && cond(e, arg))
			return true;
		if (now_ms() >= end)
			return !cond;
		poll(p, 2, 10);
		if (p[0].revents)
			gdev_pump(e->g, 0);
		if (e->drv && p[1].revents) {
			ovmc_platform_irq_ack(e->g->plat);
			ovmc_drv_handle_interrupt(e->drv, ns());
		}
		if (e->drv && ovmc_drv_next_deadline(e->drv) <= ns())
			ovmc_drv_handle_timer(e->drv, ns());
	}
}

static bool drv_ready(struct env *e, const void *arg)
{
	(void)arg;
	return ovmc_drv_state(e->drv) == OVMC_DRV_READY;
}

static void attach(struct env *e)
{
	struct ovmc_drv_config dc;
	struct ovmc_drv_callbacks cb = {0};

	e->g = gdev_new(e->gsock, GUEST_MEM);
	CHECK_EQ(gdev_connect(e->g), 0);
	CHECK(e->g->partition > 0);
	CHECK(e->g->hv_open);
	ovmc_drv_config_default(&dc);
	dc.max_hmcs = 2;
	dc.init_retry_ns = 50000000u;
	CHECK(ovmc_drv_memory_required(&dc) <= GUEST_MEM);
	CHECK_EQ(ovmc_drv_new(&dc, e->g->plat, &cb, e, &e->drv), 0);
	CHECK_EQ(ovmc_drv_start(e->drv, ns()), 0);
	if (!run_until(e, SETTLE_MS, drv_ready, NULL))
		FAIL("driver not ready: %s", ovmc_drv_state_name(ovmc_drv_state(e->drv)));
}

static bool writable(struct env *e, const void *arg)
{
	const struct ovmc_drv_file *f = arg;

	return (ovmc_drv_poll(e->drv, (struct ovmc_drv_file *)f) & POLLOUT) != 0;
}

static bool hmcid_set(struct env *e, const void *arg)
{
	const void *const *a = arg;
	int rc = ovmc_drv_sethmcid(e->drv, (struct ovmc_drv_file *)a[0], a[1], ns());

	if (rc && rc != -ENOBUFS)
		FAIL("sethmcid: %s", strerror(-rc));
	return rc == 0;
}

static struct ovmc_drv_file *open_session(struct env *e, unsigned slot, const char *id)
{
	uint8_t hmc[OVMC_HMC_ID_LEN] = {0};
	struct ovmc_drv_file *f;

	memcpy(hmc, id, strlen(id));
	CHECK_EQ(ovmc_drv_open(e->drv, &f), 0);
	e->files[slot] = f;
	/* -ENOBUFS until the hypervisor lent the connection its buffers. */
	if (!run_until(e, SETTLE_MS, hmcid_set, (const void *[]){f, hmc}))
		FAIL("session %s: sethmcid never succeeded", id);
	if (!run_until(e, SETTLE_MS, writable, f))
		FAIL("session %s did not open", id);
	return f;
}

static bool readable(struct env *e, const void *arg)
{
	const struct ovmc_drv_file *f = arg;

	return (ovmc_drv_poll(e->drv, (struct ovmc_drv_file *)f) & POLLIN) != 0;
}

static ssize_t read_msg(struct env *e, struct ovmc_drv_file *f, void *buf, size_t size)
{
	if (!run_until(e, SETTLE_MS, readable, f))
		FAIL("no message arrived");
	return ovmc_drv_read(e->drv, f, buf, size, ns());
}

/* Messages of 1..n bytes, each byte its length, echoed byte for byte. */
static void echo(struct env *e, struct ovmc_drv_file *f, unsigned n)
{
	for (unsigned i = 1; i <= n; i++) {
		uint8_t out[256], in[4096];
		ssize_t r;

		memset(out, (int)i, i);
		if (!run_until(e, SETTLE_MS, writable, f))
			FAIL("message %u: no buffer to write", i);
		CHECK_EQ(ovmc_drv_write(e->drv, f, out, i, ns()), i);
		r = read_msg(e, f, in, sizeof(in));
		CHECK_EQ(r, i);
		CHECK_MEM(in, out, i);
	}
}

/* A vmcctl run; the device keeps answering meanwhile (a restart DELIVERs). */
struct job {
	pid_t pid;
	int out;
	char buf[OUT_MAX];
	size_t len;
	int status;
};

static bool job_done(struct env *e, const void *arg)
{
	struct job *j = (struct job *)arg;
	ssize_t n;

	(void)e;
	while ((n = read(j->out, j->buf + j->len, sizeof(j->buf) - 1 - j->len)) > 0)
		j->len += (size_t)n;
	if (n != 0)
		return false;
	j->buf[j->len] = '\0';
	CHECK(waitpid(j->pid, &j->status, 0) == j->pid);
	close(j->out);
	return true;
}

static void vmcctl(struct env *e, const char *const *args, char *out, size_t size)
{
	const char *argv[16] = {VMCCTL_BIN};
	struct job *j = calloc(1, sizeof(*j));
	int n = 1;

	if (!j)
		FAIL("out of memory");
	for (; *args && n < 15; args++)
		argv[n++] = *args;
	j->pid = spawn_piped(argv, true, &j->out, NULL);
	fcntl(j->out, F_SETFL, fcntl(j->out, F_GETFL) | O_NONBLOCK);
	if (!run_until(e, SETTLE_MS, job_done, j))
		FAIL("vmcctl %s did not finish", argv[1]);
	if (!WIFEXITED(j->status) || WEXITSTATUS(j->status) != 0)
		FAIL("vmcctl %s %s: %s", argv[1], argv[2], j->buf);
	snprintf(out, size, "%s", j->buf);
	free(j);
}

static void status(struct env *e, char *out, size_t size)
{
	vmcctl(e, ARGS("status", "-c", e->h->d->ctl), out, size);
}

/* The number after `key` in the first line containing `line`. */
static unsigned long long counter(const char *text, const char *line, const char *key)
{
	const char *l = strstr(text, line), *k;

	if (!l)
		FAIL("no \"%s\" in:\n%s", line, text);
	k = strstr(l, key);
	if (!k)
		FAIL("no \"%s\" after \"%s\" in:\n%s", key, line, text);
	return strtoull(k + strlen(key), NULL, 10);
}

/* The JSON status of a daemon with a guest: its schema (docs/vmcctl-json.md). */
static void check_json_status(struct env *e, const char *want)
{
	const char *argv[] = {"/usr/bin/env", "python3", SOURCE_DIR "/tests/json_check.py",
			      SOURCE_DIR "/docs/vmcctl-json.md", "status", NULL};
	char json[OUT_MAX], verdict[4096];
	size_t n = 0;
	int in, out;
	pid_t pid;
	ssize_t r;

	vmcctl(e, ARGS("status", "--json", "-c", e->h->d->ctl), json, sizeof(json));
	if (!strstr(json, want))
		FAIL("no %s in %s", want, json);
	pid = spawn_piped(argv, true, &out, &in);
	CHECK(write(in, json, strlen(json)) == (ssize_t)strlen(json));
	close(in);
	while (n < sizeof(verdict) - 1 && (r = read(out, verdict + n, sizeof(verdict) - 1 - n)) > 0)
		n += (size_t)r;
	verdict[n] = '\0';
	close(out);
	if (wait_child(pid, 10000) != 0)
		FAIL("status --json does not match the schema: %s\n%s", verdict, json);
}

TEST(handshake_echo)
{
	struct env *e = env_new(NULL);
	struct ovmc_drv_negotiated neg;
	struct ovmc_drv_file *f;
	char out[OUT_MAX];

	attach(e);
	ovmc_drv_negotiated(e->drv, &neg);
	CHECK_EQ(neg.max_hmcs, 2);
	CHECK_EQ(neg.hv_crq_size, e->g->queue_entries);
	f = open_session(e, 0, "guest-hmc");
	echo(e, f, 100);
	status(e, out, sizeof(out));
	CHECK(strstr(out, "state ready"));
	CHECK(counter(out, "guest: partition", "rdma-reports ") >= 200);
	CHECK(counter(out, "guest: partition", "sends ") >= 100);
	CHECK(counter(out, "guest-link:", "protocol-errors ") == 0);
	CHECK(counter(out, "machine:", " rdma ") >= 200);
	CHECK(counter(out, "machine:", "rdma-bytes ") >= 2 * 5050);
	/* The hypervisor end consumed what the device sent: credit came back. */
	CHECK(e->g->credits > 0);
	CHECK(e->g->credit <= e->g->queue_entries);
	check_json_status(e, "\"guests\":[{\"partition\":1,");
}

TEST(two_hmcs_and_two_guests)
{
	struct env *e = env_new(NULL);
	struct ovmc_drv_file *a, *b;
	struct gdev *g2;

	attach(e);
	a = open_session(e, 0, "hmc-a");
	b = open_session(e, 1, "hmc-b");
	echo(e, a, 10);
	echo(e, b, 10);
	/* A second guest at once: its own partition and WELCOME. */
	g2 = gdev_new(e->gsock, GUEST_MEM);
	CHECK_EQ(gdev_connect(g2), 0);
	CHECK(g2->partition != e->g->partition);
	echo(e, a, 5);
	gdev_free(g2);
	echo(e, b, 5);
}

TEST(hv_send)
{
	struct env *e = env_new(NULL);
	struct ovmc_drv_file *f;
	char out[OUT_MAX], in[64];

	attach(e);
	f = open_session(e, 0, "hmc");
	vmcctl(e, ARGS("hv", "-c", e->h->d->ctl, "send", "--index", "0", "--hex", "68656c6c6f"),
	       out, sizeof(out));
	CHECK_EQ(read_msg(e, f, in, sizeof(in)), 5);
	CHECK_MEM(in, "hello", 5);
}

static bool reset_seen(struct env *e, const void *arg)
{
	const struct ovmc_drv_file *f = arg;

	return ovmc_drv_write(e->drv, (struct ovmc_drv_file *)f, "x", 1, ns()) == -EIO;
}

TEST(hv_restart)
{
	struct env *e = env_new(NULL);
	struct ovmc_drv_file *f;
	char out[OUT_MAX];
	uint32_t epoch;
	unsigned states;

	attach(e);
	f = open_session(e, 0, "hmc");
	echo(e, f, 3);
	epoch = e->g->epoch;
	states = e->g->hv_states;
	vmcctl(e, ARGS("hv", "-c", e->h->d->ctl, "restart", "--failed"), out, sizeof(out));
	/* Closed, then open with a new epoch and the whole queue as credit. */
	run_until(e, 500, NULL, NULL);
	CHECK(e->g->hv_states >= states + 2);
	CHECK_EQ(e->g->epoch, epoch + 1);
	CHECK(e->g->hv_open);
	if (!run_until(e, SETTLE_MS, reset_seen, f))
		FAIL("the session survived a hypervisor restart");
	ovmc_drv_close(e->drv, f, ns());
	e->files[0] = NULL;
	if (!run_until(e, SETTLE_MS, drv_ready, NULL))
		FAIL("driver not ready again");
	f = open_session(e, 0, "hmc2");
	echo(e, f, 20);
	status(e, out, sizeof(out));
	CHECK(counter(out, "guest: partition", "epoch ") == epoch + 1);
}

TEST(deliver_dropped_then_retried)
{
	struct env *e = env_new(NULL);
	struct ovmc_drv_file *f;
	char out[OUT_MAX];

	attach(e);
	/* The guest's queue "full" three times: the core retries each. */
	e->g->drop_next = 3;
	f = open_session(e, 0, "hmc");
	echo(e, f, 10);
	CHECK_EQ(e->g->dropped, 3);
	status(e, out, sizeof(out));
	CHECK_EQ(counter(out, "guest-link:", "deliver-dropped "), 3);
	CHECK_EQ(counter(out, "machine:", "dropped-full "), 3);
}

TEST(silent_device_times_out)
{
	struct env *e = env_new(ARGS("--guest-timeout-ms", "300"));
	struct gdev *mute = gdev_new(e->gsock, GUEST_MEM);
	struct gl_crq_reg r = {.queue_entries = 256};
	struct gl_send init = {.entry = {0xC0, 0x01}};
	unsigned char buf[GL_MAX_MSG];
	char out[OUT_MAX];
	size_t from = log_size(e->h->d);
	uint64_t t0;

	ovmc_test_defer((void (*)(void *))gdev_free, mute);
	mute->answer = GDEV_SILENT;
	CHECK_EQ(gdev_connect(mute), 0);
	/* A CRQ and INIT: the hypervisor core's INIT_COMPLETE then waits. */
	gdev_raw(mute, buf, gl_encode(buf, GL_CRQ_REG, 0, &r));
	init.epoch = mute->epoch;
	gdev_raw(mute, buf, gl_encode(buf, GL_SEND, 0, &init));
	t0 = now_ms();
	CHECK(gdev_wait_closed(mute, 5000));
	CHECK(now_ms() - t0 >= 250);
	CHECK(mute->delivers >= 1);
	CHECK(log_has(e->h->d, from, "no answer to DELIVER within 300 ms"));
	/* The daemon serves the next guest as if nothing happened. */
	attach(e);
	echo(e, open_session(e, 0, "hmc"), 10);
	status(e, out, sizeof(out));
	CHECK_EQ(counter(out, "guest-link:", "deliver-timeouts "), 1);
	CHECK_EQ(counter(out, "guest-link:", "disconnects "), 1);
}

TEST(hello_refused)
{
	struct env *e = env_new(NULL);
	struct gdev *g = gdev_new(e->gsock, GUEST_MEM);
	size_t from = log_size(e->h->d);

	ovmc_test_defer((void (*)(void *))gdev_free, g);
	g->hello.hv_window_size = OVMC_PAGE_SIZE;
	CHECK_EQ(gdev_connect(g), -ENOSPC);
	CHECK(log_has(e->h->d, from, "the buffers need"));
	g->hello.hv_window_size = 16u << 20;
	g->hello.hv_liobn = g->hello.liobn_local;
	CHECK_EQ(gdev_connect(g), -EINVAL);
	g->hello.hv_liobn = g->hello.liobn_local + 1;
	g->hello.local_window_size = 0;
	CHECK_EQ(gdev_connect(g), -EINVAL);
	g->hello.local_window_size = GUEST_MEM;
	CHECK_EQ(gdev_connect(g), 0);
}

/* One hostile stream: sent after HELLO (or instead of it), the daemon must close. */
struct hostile {
	const char *name;
	bool hello_first;
	unsigned char msg[64];
	size_t len;
	int fd; /* a descriptor sent with it, or -1 */
};

static size_t put(unsigned char *buf, uint32_t magic, uint16_t version, uint16_t type,
		  uint32_t len, uint32_t seq, size_t body)
{
	struct gl_hdr h = {magic, version, type, len, seq};

	memcpy(buf, &h, sizeof(h));
	memset(buf + sizeof(h), 0, body);
	return sizeof(h) + body;
}

static void send_with_fd(int sock, const void *buf, size_t len, int fd)
{
	CHECK_EQ(ovmc_xp_send(sock, buf, len, 0, &fd, 1), 0);
}

TEST(hostile_messages)
{
	/* A small hypervisor queue, so a flood beyond it comes in one read. */
	struct env *e = env_new(ARGS("--hv-crq", "16"));
	struct hostile cases[12];
	unsigned n = 0, closed = 0;
	int before, after;
	char out[OUT_MAX];

	memset(cases, 0, sizeof(cases));
#define CASE(nm, hello, ...)                                                                \
	do {                                                                                \
		cases[n].name = nm;                                                         \
		cases[n].hello_first = hello;                                               \
		cases[n].fd = -1;                                                           \
		cases[n].len = put(cases[n].msg, __VA_ARGS__);                              \
		n++;                                                                        \
	} while (0)
	CASE("bad magic", false, 0x12345678, GL_VERSION, GL_HELLO, 32, 0, 32);
	CASE("bad version", false, GL_MAGIC, 2, GL_HELLO, 32, 0, 32);
	CASE("unknown type", true, GL_MAGIC, GL_VERSION, 99, 0, 0, 0);
	CASE("wrong direction", true, GL_MAGIC, GL_VERSION, GL_DELIVER, 16, 1, 16);
	CASE("wrong length", true, GL_MAGIC, GL_VERSION, GL_SEND, 4000000000u, 0, 0);
	CASE("SEND before HELLO", false, GL_MAGIC, GL_VERSION, GL_SEND, 24, 0, 24);
	CASE("HELLO twice", true, GL_MAGIC, GL_VERSION, GL_HELLO, 32, 0, 32);
	CASE("DELIVER_RC unasked", true, GL_MAGIC, GL_VERSION, GL_DELIVER_RC, 8, 7, 8);
	CASE("sequence number on SEND", true, GL_MAGIC, GL_VERSION, GL_SEND, 24, 5, 24);
	CASE("descriptor on CRQ_FREE", true, GL_MAGIC, GL_VERSION, GL_CRQ_FREE, 0, 0, 0);
	cases[n - 1].fd = 0;
	CASE("SEND of a future epoch", true, GL_MAGIC, GL_VERSION, GL_SEND, 24, 0, 24);
	cases[n - 1].msg[16] = 200;
#undef CASE
	/* Warm up: the daemon's first guest allocates what it keeps. */
	{
		struct gdev *g = gdev_new(e->gsock, GUEST_MEM);

		CHECK_EQ(gdev_connect(g), 0);
		gdev_free(g);
		run_until(e, 100, NULL, NULL);
	}
	before = fd_count(e->h->d->pid);
	for (unsigned i = 0; i < n; i++) {
		struct gdev *g = gdev_new(e->gsock, GUEST_MEM);
		size_t from = log_size(e->h->d);

		if (cases[i].hello_first) {
			CHECK_EQ(gdev_connect(g), 0);
		} else {
			struct sockaddr_un sa = {.sun_family = AF_UNIX};

			snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", e->gsock);
			g->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
			CHECK(connect(g->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
		}
		if (cases[i].fd >= 0)
			send_with_fd(g->fd, cases[i].msg, cases[i].len, cases[i].fd);
		else
			gdev_raw(g, cases[i].msg, cases[i].len);
		if (!gdev_wait_closed(g, 3000))
			FAIL("%s: the daemon kept the connection", cases[i].name);
		closed++;
		if (!log_has(e->h->d, from, "protocol error"))
			FAIL("%s: not logged as a protocol error", cases[i].name);
		gdev_free(g);
	}
	/* A flood: SENDs beyond the credit the daemon gave. */
	{
		struct gdev *g = gdev_new(e->gsock, GUEST_MEM);
		struct gl_send s = {0};
		unsigned char buf[GL_MAX_MSG];
		size_t from = log_size(e->h->d);
		unsigned sent = 0;

		CHECK_EQ(gdev_connect(g), 0);
		s.epoch = g->epoch;
		s.entry[0] = 0x80;
		s.entry[1] = 0x05;
		static unsigned char flood[64 * GL_MAX_MSG];
		size_t len = 0;

		CHECK_EQ(g->queue_entries, 16);
		for (; sent < 4 * g->queue_entries; sent++)
			len += gl_encode(flood + len, GL_SEND, 0, &s);
		CHECK(send(g->fd, flood, len, MSG_NOSIGNAL) == (ssize_t)len);
		(void)buf;
		CHECK(gdev_wait_closed(g, 3000));
		CHECK(log_has(e->h->d, from, "beyond its credit"));
		gdev_free(g);
		closed++;
	}
	status(e, out, sizeof(out));
	CHECK_EQ(counter(out, "guest-link:", "protocol-errors "), closed);
	CHECK_EQ(counter(out, "guest-link:", "connections "), 0);
	after = fd_count(e->h->d->pid);
	CHECK_EQ(after, before);
	/* And the daemon is fine. */
	attach(e);
	echo(e, open_session(e, 0, "hmc"), 5);
}

static bool init_seen(struct env *e, const void *arg)
{
	(void)arg;
	return e->g->inits > 0;
}

/*
 * The Linux driver keeps its CRQ through a link failure and waits for the
 * partner's INIT: a device that comes back with a CRQ (CRQ_REG right after
 * WELCOME) gets the hypervisor's INIT, though the guest sends nothing.
 */
TEST(crq_kept_through_a_reconnect_gets_init)
{
	struct env *e = env_new(NULL);
	char out[OUT_MAX];

	e->g = gdev_new(e->gsock, GUEST_MEM);
	e->g->crq = true;
	e->g->crq_ioba = 0;
	e->g->crq_entries = OVMC_PAGE_SIZE / OVMC_CRQ_ENTRY_SIZE;
	CHECK_EQ(gdev_connect(e->g), 0);
	if (!run_until(e, SETTLE_MS, init_seen, NULL))
		FAIL("no INIT for a CRQ registered before HELLO");
	CHECK_EQ(e->g->inits, 1);
	status(e, out, sizeof(out));
	CHECK(strstr(out, "state wait-init"));
	CHECK_EQ(counter(out, "guest: partition", "crq "), OVMC_PAGE_SIZE / OVMC_CRQ_ENTRY_SIZE);
}

TEST(sigkill_and_restart)
{
	struct env *e = env_new(NULL);
	struct ovmc_drv_file *f;
	unsigned drops;

	attach(e);
	f = open_session(e, 0, "hmc");
	echo(e, f, 3);
	drops = e->g->link_drops;
	stop_daemon(e->h->d, SIGKILL);
	/* The device sees the link drop: partner failed into the guest's CRQ. */
	run_until(e, 1000, NULL, NULL);
	CHECK_EQ(e->g->link_drops, drops + 1);
	CHECK(e->g->fd < 0);
	if (!run_until(e, SETTLE_MS, reset_seen, f))
		FAIL("the session survived the hypervisor's death");
	ovmc_drv_close(e->drv, f, ns());
	e->files[0] = NULL;
	start_hvd(e, NULL);
	/* QEMU's reconnect: HELLO again, then CRQ_REG for the CRQ it has. */
	CHECK_EQ(gdev_connect(e->g), 0);
	if (!run_until(e, SETTLE_MS, drv_ready, NULL))
		FAIL("driver not ready after the restart");
	echo(e, open_session(e, 0, "hmc2"), 10);
}

TEST(capture_of_a_guest_channel)
{
	struct env *e = env_alloc();
	struct ovmc_capture_reader *r;
	struct ovmc_capture_record rec;
	unsigned crq = 0, rdma = 0, rdma_100 = 0;
	int rc;

	start_hvd(e, ARGS("--capture", e->capture, "--trace"));
	attach(e);
	echo(e, open_session(e, 0, "hmc"), 100);
	ovmc_drv_close(e->drv, e->files[0], ns());
	e->files[0] = NULL;
	run_until(e, 200, NULL, NULL);
	stop_daemon(e->h->d, SIGTERM);
	run_until(e, 200, NULL, NULL);
	CHECK(e->g->fd < 0);
	CHECK_EQ(ovmc_capture_reader_open(e->capture, &r), 0);
	while ((rc = ovmc_capture_read(r, &rec)) == 1) {
		if (rec.kind == OVMC_CAPTURE_CRQ)
			crq++;
		if (rec.kind != OVMC_CAPTURE_RDMA)
			continue;
		rdma++;
		if (rec.data_len == 100) {
			for (size_t i = 0; i < 100; i++)
				CHECK_EQ(rec.data[i], 100);
			rdma_100++;
		}
	}
	ovmc_capture_reader_close(r);
	CHECK_EQ(rc, 0);
	CHECK(crq >= 200);
	CHECK(rdma >= 200);
	/* The message of 100 bytes, both ways, payload from the hv window. */
	CHECK_EQ(rdma_100, 2);
}

static int raw_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		FAIL("connect %s: %s", path, strerror(errno));
	return fd;
}

/* Closed by the daemon within `ms`: end of stream (whatever it said first). */
static bool closed_within(int fd, int ms)
{
	char buf[256];
	uint64_t end = now_ms() + (uint64_t)ms;

	while (now_ms() < end) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, 20) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true;
	}
	return false;
}

static void close_fds(void *arg)
{
	int *fds = arg;

	for (unsigned i = 0; i < 17; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

TEST(silent_connections_bounded_and_expired)
{
	struct env *e = env_new(NULL);
	static int fds[17];
	size_t from = log_size(e->h->d);
	char out[OUT_MAX];

	for (unsigned i = 0; i < 17; i++)
		fds[i] = -1;
	ovmc_test_defer(close_fds, fds);
	for (unsigned i = 0; i < 16; i++)
		fds[i] = raw_connect(e->gsock);
	/* Let the daemon accept them in order, so the first is the oldest. */
	sleep_ms(100);
	fds[16] = raw_connect(e->gsock);
	/* At most 16 without HELLO: the newcomer closes the oldest. */
	CHECK(closed_within(fds[0], 2000));
	CHECK(!closed_within(fds[16], 100));
	/* And none may stay silent beyond the HELLO deadline (3 s). */
	for (unsigned i = 1; i < 17; i++)
		CHECK(closed_within(fds[i], 5000));
	CHECK(log_has(e->h->d, from, "sent no HELLO within 3000 ms"));
	status(e, out, sizeof(out));
	CHECK_EQ(counter(out, "guest-link:", "hello-timeouts "), 17);
	CHECK_EQ(counter(out, "guest-link:", "connections "), 0);
	attach(e);
}

/* Runs as euid 65534 with root's file access, so only the peer
 * credentials can stop it. Exit 0: refused as expected. */
static _Noreturn void foreign_device(const char *path, pid_t parent)
{
	struct gl_hello h = {.unit_address = 1, .liobn_local = 2, .hv_liobn = 3,
			     .local_window_size = GUEST_MEM, .hv_window_size = 16u << 20};
	unsigned char buf[GL_MAX_MSG];
	struct gl_msg m;
	size_t got = 0, used = 0;
	int fd, fds[2];
	unsigned nfds;
	bool trunc;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	if (seteuid(65534) < 0)
		_exit(2);
	setfsuid(0);
	/* Only now: changing credentials clears the parent-death signal. */
	ovmc_test_die_with_parent(parent);
	if (geteuid() != 65534)
		_exit(3);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		_exit(4); /* the socket itself out of reach: the test proves nothing */
	send(fd, buf, gl_encode(buf, GL_HELLO, 0, &h), MSG_NOSIGNAL); /* may fail: hung up */
	while (!used) {
		ssize_t n = ovmc_xp_recv(fd, buf + got, sizeof(buf) - got, 0, fds, 2, &nfds, &trunc);

		if (n <= 0)
			_exit(5);
		if (nfds)
			_exit(6); /* a window: attached */
		got += (size_t)n;
		if (gl_decode(buf, got, GL_AT_DEVICE, GL_AWAIT_HELLO, &m, &used) != GL_OK)
			_exit(7);
	}
	if (m.h.type != GL_WELCOME || m.b.welcome.status != -EACCES)
		_exit(8);
	_exit(recv(fd, buf, sizeof(buf), 0) <= 0 ? 0 : 9);
}

TEST(device_of_other_uid_is_refused)
{
	struct env *e = env_new(NULL);
	size_t from = log_size(e->h->d);
	pid_t parent = getpid(), pid;
	int st;
	char out[OUT_MAX];

	/* A peer of another uid needs CAP_SETUID. The project's CI runs as root. */
	if (geteuid() != 0)
		FAIL("needs root (euid is %u) to connect as another uid", (unsigned)geteuid());
	pid = fork();
	if (pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (pid == 0)
		foreign_device(e->gsock, parent);
	st = wait_child(pid, 10000);
	if (st != 0)
		FAIL("the foreign device: wait status %d (0: refused by its credentials)", st);
	CHECK(log_has(e->h->d, from, "of uid 65534 refused"));
	status(e, out, sizeof(out));
	CHECK_EQ(counter(out, "guest-link:", "refused "), 1);
	CHECK_EQ(counter(out, "guest-link:", "disconnects "), 0);
}

static long rss_kb(pid_t pid)
{
	char path[64], line[256];
	FILE *f;
	long kb = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		FAIL("%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static unsigned maps_of(pid_t pid)
{
	char path[64];
	FILE *f;
	unsigned n = 0;
	int c;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "r");
	if (!f)
		FAIL("%s: %s", path, strerror(errno));
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/* Under AddressSanitizer freed memory sits in its quarantine (200
 * connections of 64 KiB of input buffer each, and more) and its allocator
 * maps as it likes: only runaway growth counts there. */
#ifdef __SANITIZE_ADDRESS__
#define RSS_SLACK_KB (64 * 1024)
#define MAPS_SLACK 16u
#else
#define RSS_SLACK_KB 2048
#define MAPS_SLACK 0u
#endif

TEST(many_guests_and_hostile_peers_leave_nothing_behind)
{
	struct env *e = env_new(NULL);
	unsigned char bad[GL_MAX_MSG];
	int fds0, fds1;
	unsigned maps0, maps1;
	long rss0, rss1;
	size_t bad_len = put(bad, GL_MAGIC, GL_VERSION, GL_SEND, 24, 0, 24);

	/* Warm up, then measure around 100 guests and 100 hostile peers. */
	for (unsigned i = 0; i < 2; i++) {
		struct gdev *g = gdev_new(e->gsock, GUEST_MEM);

		CHECK_EQ(gdev_connect(g), 0);
		gdev_free(g);
	}
	sleep_ms(100);
	fds0 = fd_count(e->h->d->pid);
	maps0 = maps_of(e->h->d->pid);
	rss0 = rss_kb(e->h->d->pid);
	for (unsigned i = 0; i < 100; i++) {
		struct gdev *g = gdev_new(e->gsock, GUEST_MEM);
		int fd;

		CHECK_EQ(gdev_connect(g), 0);
		/* The window is really shared: what the device writes, the daemon has. */
		memset(g->hv, (int)i, 64);
		gdev_free(g);
		fd = raw_connect(e->gsock);
		CHECK(send(fd, bad, bad_len, MSG_NOSIGNAL) == (ssize_t)bad_len);
		CHECK(closed_within(fd, 3000));
		close(fd);
	}
	/* The last departures are seen before we count. */
	for (uint64_t end = now_ms() + 3000; now_ms() < end;) {
		char out[OUT_MAX];

		status(e, out, sizeof(out));
		if (counter(out, "guest-link:", "connections ") == 0)
			break;
	}
	fds1 = fd_count(e->h->d->pid);
	maps1 = maps_of(e->h->d->pid);
	rss1 = rss_kb(e->h->d->pid);
	if (fds1 != fds0 || maps1 > maps0 + MAPS_SLACK || rss1 > rss0 + RSS_SLACK_KB)
		FAIL("after 100 guests and 100 hostile peers: fds %d -> %d, maps %u -> %u, "
		     "rss %ld -> %ld kB",
		     fds0, fds1, maps0, maps1, rss0, rss1);
	fprintf(stderr, "openvmc-hvd after 200 guest connections: fds %d, maps %u, rss %ld -> %ld kB\n",
		fds1, maps1, rss0, rss1);
}
