// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Layer-2 tests through the real device file: the `openvmc` program with
 * each backend (router, exec, socket over Unix and TCP, replay of a
 * capture), driven by applications that use only the device ABI
 * (routerclient, devclient), plus messages the hypervisor sends on its own
 * while the application is blocked in read() or busy writing.
 *
 * Every test starts its own daemon in a fresh directory under /tmp and
 * always cleans up (daemon and clients killed by pid, server thread
 * joined, mount detached, files removed), whatever the outcome. Needs root
 * and /dev/fuse; on a failure the daemon's log is printed.
 */
#include "fixture.h"
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef OPENVMC_BIN
#error OPENVMC_BIN must name the openvmc program
#endif
#ifndef ROUTERCLIENT_BIN
#error ROUTERCLIENT_BIN must name the routerclient program
#endif
#ifndef OVMC_TEST_DATA
#error OVMC_TEST_DATA must name tests/data
#endif

#define UPPER_PEER OVMC_TEST_DATA "/upper_peer.py"
/* routerclient sends one request above the router's 4096 bytes. */
#define ROUTER_MTU "8192"
#define STR_(x) #x
#define STR(x) STR_(x)
#define FLOOD_WRITES 500
#define FLOOD_ASYNC 100
/* What devclient flood prints when every message came once and in order. */
#define FLOOD_DONE STR(FLOOD_WRITES) " echoes and " STR(FLOOD_ASYNC) " async messages, each once"
#define ROUTER_RUN_OUT (1 << 16)
/* The default MTU: devclient "upper" goes up to it. */
#define SERVER_MSG_MAX 4096

/* ---- helpers ---- */

static void unlink_path(void *path)
{
	unlink(path);
	free(path);
}

/* `name` in the daemon's directory, removed when the test ends (before the
 * directory itself: cleanups run in reverse order). */
static char *dir_file(const struct daemon *d, const char *name)
{
	char *path = malloc(sizeof(d->dir) + 32);

	if (!path)
		FAIL("out of memory");
	snprintf(path, sizeof(d->dir) + 32, "%s/%s", d->dir, name);
	ovmc_test_defer(unlink_path, path);
	return path;
}

static void to_hex(const void *data, size_t len, char *out)
{
	const uint8_t *p = data;

	for (size_t i = 0; i < len; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
	out[2 * len] = '\0';
}

/* Wait until the client prints "got " + the message in hex. */
static void expect_got(struct client *c, const char *text)
{
	char line[600];

	strcpy(line, "got ");
	to_hex(text, strlen(text), line + 4);
	client_expect(c, line, CLIENT_TIMEOUT_MS);
}

/*
 * Wait until `pid` sleeps inside read() on `fd`: whatever the hypervisor
 * sends next reaches a reader that is already blocked, without guessing
 * how long that takes. /proc/PID/syscall names the syscall a sleeping task
 * is in ("running" otherwise).
 */
static void wait_blocked_in_read(pid_t pid, int fd)
{
	char path[64], line[256] = "";

	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
	for (uint64_t end = now_ms() + READY_TIMEOUT_MS; now_ms() < end; sleep_ms(5)) {
		FILE *f = fopen(path, "r");
		long nr;
		unsigned long arg0;

		if (!f)
			FAIL("%s: %s", path, strerror(errno));
		if (!fgets(line, sizeof(line), f))
			line[0] = '\0';
		fclose(f);
		if (sscanf(line, "%ld 0x%lx", &nr, &arg0) == 2 && nr == SYS_read &&
		    arg0 == (unsigned long)fd)
			return;
	}
	FAIL("client %d never blocked in read(%d); last %s", (int)pid, fd, line);
}

/* devclient "listen": its device fd from "open fd N". */
static int listening_fd(struct client *c)
{
	char buf[64];
	size_t len = 0;
	int fd;

	client_expect(c, "open fd ", READY_TIMEOUT_MS);
	while (len + 1 < sizeof(buf) && read(c->out, buf + len, 1) == 1 && buf[len] != '\n')
		len++;
	buf[len] = '\0';
	if (sscanf(buf, "%d", &fd) != 1)
		FAIL("devclient listen printed \"open fd %s\"", buf);
	return fd;
}

/* Run routerclient to the end; FAIL unless it exits 0. */
static void run_router_client(const struct daemon *d, const char *id, bool dump, char *out,
			      size_t size)
{
	struct client *c = client_spawn_prog(ROUTERCLIENT_BIN,
					     dump ? ARGS(d->path, id, "dump") : ARGS(d->path, id));
	int code;

	client_read(c, out, size, CLIENT_TIMEOUT_MS);
	code = client_wait(c, 5000);
	if (code != 0)
		FAIL("routerclient exited %d; output:\n%s", code, out);
}

/* Stop the daemon as a service manager would. Every test ends with this:
 * a clean exit has status 0, which a sanitizer's report would change. */
static void finish(struct daemon *d)
{
	int status;

	kill(d->pid, SIGTERM);
	status = wait_child(d->pid, STOP_TIMEOUT_MS);
	if (status < 0)
		FAIL("openvmc still running %d ms after SIGTERM", STOP_TIMEOUT_MS);
	d->pid = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		FAIL("openvmc ended with wait status 0x%x after SIGTERM", status);
}

static struct daemon *start(const char *const *extra)
{
	struct daemon *d = new_daemon(NULL);

	spawn_prog(d, OPENVMC_BIN, extra);
	return d;
}

/* ---- a hypervisor server for the socket backend ---- */

/*
 * Speaks docs/framing.md like tests/data/upper_peer.py: a greeting at OPEN,
 * each MESSAGE answered in upper case. Runs in a thread of the test; the
 * test may also push unsolicited messages (server_send_locked).
 */
struct server {
	int lfd, conn, stop[2];
	pthread_t thread;
	pthread_mutex_t lock; /* conn writes and everything below */
	unsigned opens, messages, closes, bad_frames, connections;
	uint16_t part;
	uint8_t index, session;
	size_t have;
	uint8_t buf[70000];
};

static void write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* the hypervisor dropped us: it will say so in its log */
		p += n;
		len -= (size_t)n;
	}
}

/* A MESSAGE frame on the last session opened; call with the lock held. */
static void server_send_locked(struct server *s, const void *data, size_t len)
{
	uint8_t frame[12 + SERVER_MSG_MAX];

	if (s->conn < 0 || len > SERVER_MSG_MAX)
		return;
	memset(frame, 0, 12);
	frame[0] = (uint8_t)((8 + len) >> 24);
	frame[1] = (uint8_t)((8 + len) >> 16);
	frame[2] = (uint8_t)((8 + len) >> 8);
	frame[3] = (uint8_t)(8 + len);
	frame[4] = 2;
	frame[6] = (uint8_t)(s->part >> 8);
	frame[7] = (uint8_t)s->part;
	frame[8] = s->index;
	frame[9] = s->session;
	memcpy(frame + 12, data, len);
	write_all(s->conn, frame, 12 + len);
}

static void server_frame(struct server *s, const uint8_t *f, size_t len)
{
	uint8_t out[SERVER_MSG_MAX];
	size_t n = len - 12;

	if (f[5] || f[10] || f[11]) {
		s->bad_frames++;
		return;
	}
	s->part = (uint16_t)(f[6] << 8 | f[7]);
	s->index = f[8];
	s->session = f[9];
	switch (f[4]) {
	case 1: {
		size_t id = n < 32 ? n : 32;
		int k = snprintf((char *)out, sizeof(out), "welcome ");

		while (id > 0 && f[12 + id - 1] == 0)
			id--;
		memcpy(out + k, f + 12, id);
		s->opens++;
		server_send_locked(s, out, (size_t)k + id);
		break;
	}
	case 2:
		s->messages++;
		if (n > sizeof(out)) {
			s->bad_frames++;
			break;
		}
		for (size_t i = 0; i < n; i++)
			out[i] = (uint8_t)(f[12 + i] >= 'a' && f[12 + i] <= 'z' ? f[12 + i] - 32
										: f[12 + i]);
		server_send_locked(s, out, n);
		break;
	case 3:
		s->closes++;
		break;
	default:
		s->bad_frames++;
	}
}

static void server_read(struct server *s)
{
	ssize_t n = read(s->conn, s->buf + s->have, sizeof(s->buf) - s->have);
	size_t off = 0;

	if (n <= 0) {
		close(s->conn);
		s->conn = -1;
		s->have = 0;
		return;
	}
	s->have += (size_t)n;
	while (s->have - off >= 12) {
		const uint8_t *f = s->buf + off;
		size_t len =
			4 + ((size_t)f[0] << 24 | (size_t)f[1] << 16 | (size_t)f[2] << 8 | f[3]);

		if (len < 12 || len > sizeof(s->buf)) {
			s->bad_frames++;
			close(s->conn);
			s->conn = -1;
			s->have = 0;
			return;
		}
		if (s->have - off < len)
			break;
		server_frame(s, f, len);
		off += len;
	}
	memmove(s->buf, s->buf + off, s->have - off);
	s->have -= off;
}

static void *server_main(void *arg)
{
	struct server *s = arg;

	for (;;) {
		struct pollfd p[3] = {{.fd = s->stop[0], .events = POLLIN},
				      {.fd = s->lfd, .events = POLLIN},
				      {.fd = s->conn, .events = POLLIN}};

		if (poll(p, 3, -1) < 0 && errno != EINTR)
			return NULL;
		if (p[0].revents)
			return NULL;
		pthread_mutex_lock(&s->lock);
		if (p[1].revents & POLLIN) {
			int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC), one = 1;

			if (fd >= 0) {
				/* Small answers at once, not after a delayed ACK (TCP). */
				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
				if (s->conn >= 0)
					close(s->conn);
				s->conn = fd;
				s->have = 0;
				s->connections++;
			}
		} else if (p[2].revents) {
			server_read(s);
		}
		pthread_mutex_unlock(&s->lock);
	}
}

static void server_stop(void *arg)
{
	struct server *s = arg;

	if (write(s->stop[1], "x", 1) == 1)
		pthread_join(s->thread, NULL);
	close(s->stop[0]);
	close(s->stop[1]);
	close(s->lfd);
	if (s->conn >= 0)
		close(s->conn);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* Listening on `lfd` already; serves until the test ends. */
static struct server *server_start(int lfd)
{
	struct server *s = calloc(1, sizeof(*s));

	if (!s)
		FAIL("out of memory");
	s->lfd = lfd;
	s->conn = -1;
	pthread_mutex_init(&s->lock, NULL);
	if (pipe2(s->stop, O_CLOEXEC))
		FAIL("pipe: %s", strerror(errno));
	if (pthread_create(&s->thread, NULL, server_main, s))
		FAIL("pthread_create failed");
	ovmc_test_defer(server_stop, s);
	return s;
}

static struct server *unix_server(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 4))
		FAIL("unix server %s: %s", path, strerror(errno));
	return server_start(fd);
}

/* A loopback TCP server on a free port, returned in *port. */
static struct server *tcp_server(unsigned *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 4) ||
	    getsockname(fd, (struct sockaddr *)&sa, &len))
		FAIL("tcp server: %s", strerror(errno));
	*port = ntohs(sa.sin_port);
	return server_start(fd);
}

/* Counters snapshot once `closes` reached `want` (the session's CLOSE came). */
static void server_wait_closes(struct server *s, unsigned want, struct server *snap)
{
	for (uint64_t end = now_ms() + READY_TIMEOUT_MS;; sleep_ms(5)) {
		pthread_mutex_lock(&s->lock);
		snap->opens = s->opens;
		snap->messages = s->messages;
		snap->closes = s->closes;
		snap->bad_frames = s->bad_frames;
		snap->connections = s->connections;
		pthread_mutex_unlock(&s->lock);
		if (snap->closes >= want)
			return;
		if (now_ms() > end)
			FAIL("the server saw %u CLOSE frames, expected %u", snap->closes, want);
	}
}

/* devclient "upper" against a server: 200 answers in order, and the frames
 * the server saw match the session. */
static void upper_through_server(const struct daemon *d, struct server *s)
{
	struct server seen;
	char out[4096];

	CLIENT_OUT(out, "upper", d->path, "HMC-SOCKET", "200");
	CHECK(strstr(out, "greeting \"welcome HMC-SOCKET\""));
	CHECK(strstr(out, "upper-cased 200 messages in order"));
	server_wait_closes(s, 1, &seen);
	CHECK_EQ(seen.connections, 1);
	CHECK_EQ(seen.opens, 1);
	CHECK_EQ(seen.messages, 200);
	CHECK_EQ(seen.closes, 1);
	CHECK_EQ(seen.bad_frames, 0);
}

/* ---- router ---- */

TEST(router_answers_every_request_with_every_header_field)
{
	struct daemon *d = start(ARGS("--backend", "router", "--mtu", ROUTER_MTU));
	static char out[ROUTER_RUN_OUT];
	static const char *const lines[] = {
		"query: have_vmc 1 state 3",
		"echo before ExchangeOps: rc 0x8028",
		"close before ExchangeOps: rc 0x8028",
		"ExchangeOps: rc 0x0000",
		"ExchangeOps again: rc 0x8028",
		"echo 1..100 bytes: rc 0x0000, data intact",
		"echo without flag 0x80: rc 0x0000",
		"16-byte message: rc 0x8022",
		"1-byte message: rc 0x8022",
		"header length 31: rc 0x8022",
		"total length beyond the message: rc 0x8022",
		"data length not total - 32: rc 0x8022",
		"4097-byte message: rc 0x8022",
		"descriptor DE CB FF: rc 0x8003",
		"response flag in a request: rc 0x8003",
		"unknown opcode 0x0777: rc 0x8001",
		"target 0x9000: rc 0x8023",
		"unregistered target 0x8001: rc 0x8023",
		"Close: rc 0x0000",
		"echo after Close: rc 0x8028",
		"ExchangeOps after Close: rc 0x8028",
		"Close after Close: rc 0x8028",
		"every request answered once, nothing else",
	};

	run_router_client(d, "HMC-ROUTER", false, out, sizeof(out));
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		if (!strstr(out, lines[i]))
			FAIL("routerclient did not print \"%s\"; output:\n%s", lines[i], out);
	}
	/* A new VMC session starts a new router session (not CLOSED). */
	run_router_client(d, "HMC-ROUTER-2", false, out, sizeof(out));
	CHECK(strstr(out, "ExchangeOps: rc 0x0000"));
	finish(d);
}

/* ---- exec ---- */

TEST(exec_script_answers_200_messages_in_order_after_its_greeting)
{
	struct daemon *d = start(ARGS("--backend", "exec:exec python3 " UPPER_PEER));
	char out[4096];

	CLIENT_OUT(out, "upper", d->path, "HMC-EXEC", "200");
	CHECK(strstr(out, "greeting \"welcome HMC-EXEC\""));
	CHECK(strstr(out, "upper-cased 200 messages in order"));
	/* The script keeps serving new sessions. */
	CLIENT_OUT(out, "upper", d->path, "HMC-EXEC-2", "10");
	CHECK(strstr(out, "upper-cased 10 messages in order"));
	finish(d);
}

TEST(exec_script_message_sent_later_unasked_reaches_a_blocked_read)
{
	struct daemon *d = new_daemon(NULL);
	char *trigger = dir_file(d, "later");
	char spec[256];
	struct client *c;
	int fd, tfd;

	snprintf(spec, sizeof(spec), "exec:exec python3 %s %s", UPPER_PEER, trigger);
	spawn_prog(d, OPENVMC_BIN, ARGS("--backend", spec));
	c = SPAWN("listen", d->path, "HMC-LATER", "2");
	fd = listening_fd(c);
	expect_got(c, "welcome HMC-LATER");
	wait_blocked_in_read(c->pid, fd);
	tfd = open(trigger, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	CHECK(tfd >= 0);
	close(tfd);
	expect_got(c, "later");
	CHECK_EQ(client_wait(c, 5000), 0);
	finish(d);
}

/* ---- socket ---- */

TEST(socket_unix_server_round_trips)
{
	struct daemon *d = new_daemon(NULL);
	char *sock = dir_file(d, "hv.sock");
	struct server *s = unix_server(sock);
	char spec[160];

	snprintf(spec, sizeof(spec), "socket:%s", sock);
	spawn_prog(d, OPENVMC_BIN, ARGS("--backend", spec));
	upper_through_server(d, s);
	finish(d);
}

TEST(socket_tcp_loopback_server_round_trips)
{
	struct daemon *d = new_daemon(NULL);
	unsigned port;
	struct server *s = tcp_server(&port);
	char spec[64];

	snprintf(spec, sizeof(spec), "socket:tcp:127.0.0.1:%u", port);
	spawn_prog(d, OPENVMC_BIN, ARGS("--backend", spec));
	upper_through_server(d, s);
	finish(d);
}

TEST(socket_server_message_unasked_reaches_a_blocked_read)
{
	static const char pushed[] = "pushed by the server";
	struct daemon *d = new_daemon(NULL);
	char *sock = dir_file(d, "hv.sock");
	struct server *s = unix_server(sock);
	struct client *c;
	char spec[160];
	int fd;

	snprintf(spec, sizeof(spec), "socket:%s", sock);
	spawn_prog(d, OPENVMC_BIN, ARGS("--backend", spec));
	c = SPAWN("listen", d->path, "HMC-PUSH", "2");
	fd = listening_fd(c);
	expect_got(c, "welcome HMC-PUSH");
	wait_blocked_in_read(c->pid, fd);
	pthread_mutex_lock(&s->lock);
	server_send_locked(s, pushed, strlen(pushed));
	pthread_mutex_unlock(&s->lock);
	expect_got(c, pushed);
	CHECK_EQ(client_wait(c, 5000), 0);
	finish(d);
}

/* ---- replay ---- */

TEST(replay_of_a_captured_router_session_answers_byte_for_byte)
{
	struct daemon *d = new_daemon(NULL);
	char *capture = dir_file(d, "session.pcapng");
	static char recorded[ROUTER_RUN_OUT], replayed[ROUTER_RUN_OUT];
	char spec[160];
	size_t from;
	const char *p = recorded;
	int responses = 0;

	spawn_prog(d, OPENVMC_BIN,
		   ARGS("--backend", "router", "--mtu", ROUTER_MTU, "--capture", capture));
	run_router_client(d, "HMC-REPLAY", true, recorded, sizeof(recorded));
	finish(d);
	while ((p = strstr(p, "\nresponse decaff20"))) {
		responses++;
		p++;
	}
	/* 4 before the echoes, 100 echoes, 1 unflagged, 11 malformed, 4 at the end. */
	CHECK_EQ(responses, 120);

	snprintf(spec, sizeof(spec), "replay:%s", capture);
	from = log_size(d);
	spawn_prog(d, OPENVMC_BIN, ARGS("--backend", spec, "--mtu", ROUTER_MTU));
	CHECK(log_has(d, from, "replay: 1 sessions, 120 requests"));
	run_router_client(d, "HMC-REPLAY", true, replayed, sizeof(replayed));
	if (strcmp(recorded, replayed) != 0)
		FAIL("the replay differs; recorded:\n%s\nreplayed:\n%s", recorded, replayed);
	CHECK(!log_has(d, from, "differs from the recording"));
	CHECK(!log_has(d, from, "beyond the recording"));
	finish(d);
}

/* ---- asynchronous messages ---- */

TEST(control_send_reaches_a_blocked_read_each_time)
{
	struct daemon *d = start(ARGS("--backend", "router"));
	struct client *c = SPAWN("listen", d->path, "HMC-CTL", "3");
	int fd = listening_fd(c);

	for (int i = 0; i < 3; i++) {
		char text[32], req[96], out[256];

		snprintf(text, sizeof(text), "unsolicited %d", i);
		strcpy(req, "send 0 ");
		to_hex(text, strlen(text), req + strlen(req));
		wait_blocked_in_read(c->pid, fd);
		ctl(d, req, out, sizeof(out));
		CHECK(strncmp(out, "ok\n", 3) == 0);
		expect_got(c, text);
	}
	CHECK_EQ(client_wait(c, 5000), 0);
	finish(d);
}

TEST(async_messages_while_the_application_floods_writes)
{
	struct daemon *d = start(NULL);
	struct client *c =
		SPAWN("flood", d->path, "HMC-FLOOD", STR(FLOOD_WRITES), STR(FLOOD_ASYNC));
	char out[4096];
	const char *early;
	unsigned full = 0;
	long overlap = -1;

	client_expect(c, "open", READY_TIMEOUT_MS);
	for (int i = 0; i < FLOOD_ASYNC; i++) {
		char text[16], req[64];

		snprintf(text, sizeof(text), "async %06d", i);
		strcpy(req, "send 0 ");
		to_hex(text, strlen(text), req + strlen(req));
		for (uint64_t end = now_ms() + READY_TIMEOUT_MS;; sleep_ms(1)) {
			ctl(d, req, out, sizeof(out));
			if (strncmp(out, "ok\n", 3) == 0)
				break;
			/* The session's backlog is full: nothing was queued, try again. */
			if (strncmp(out, "error ENOBUFS", 13) != 0 || now_ms() > end)
				FAIL("\"%s\": %s", req, out);
			full++;
		}
	}
	client_read(c, out, sizeof(out), CLIENT_TIMEOUT_MS);
	CHECK_EQ(client_wait(c, 5000), 0);
	if (!strstr(out, FLOOD_DONE))
		FAIL("devclient flood printed:\n%s", out);
	/* Half way the writer waits for the first async message, so it reaches
	 * the reader before the last echo is even written: at least one. */
	early = strstr(out, " async messages before the last echo");
	while (early && early > out && early[-1] != '\n')
		early--;
	if (!early || sscanf(early, "%ld async", &overlap) != 1 || overlap < 1)
		FAIL("no async message arrived while the writes went on:\n%s", out);
	fprintf(stderr, "%scontrol send found the backlog full %u times\n", out, full);
	finish(d);
}
