// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Device tests: the real `openvmc` program serving its device file through
 * FUSE, driven by devclient (an application that uses only the device ABI)
 * and by the control socket. Every errno is the one PROTOCOL.md 5.4 gives
 * for the Linux driver.
 *
 * Each test starts its own daemon in a fresh directory under /tmp and
 * always cleans up (daemon killed by pid, mount detached, files removed),
 * whatever the outcome. Needs root and /dev/fuse, like the daemon itself;
 * on a failure the daemon's log is printed.
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef OPENVMC_BIN
#error OPENVMC_BIN must name the openvmc program
#endif
#ifndef DEVCLIENT_BIN
#error DEVCLIENT_BIN must name the devclient program
#endif

#define READY_TIMEOUT_MS 10000
#define CLIENT_TIMEOUT_MS 60000
#define STOP_TIMEOUT_MS 5000
#define OUT_MAX 65536

struct daemon {
	char dir[64];
	char path[128]; /* the device file */
	char ctl[96];
	char log[96];
	pid_t pid;
	bool in_dir;     /* the device lives in dir (not --device elsewhere) */
	bool dev_absent; /* --device path did not exist before the test */
};

struct client {
	pid_t pid;
	int out; /* its stdout */
	int in;  /* its stdin */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(int ms)
{
	poll(NULL, 0, ms);
}

/* Is `path` a mount point (a live or a stale FUSE mount)? */
static bool mounted(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[4096];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char mp[4096];

		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && strcmp(mp, path) == 0)
			found = true;
	}
	fclose(f);
	return found;
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 || errno != ENOENT;
}

/* Wait for a child until `ms` pass; returns its wait status, or -1. */
static int wait_child(pid_t pid, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		if (r < 0 || now_ms() >= end)
			return -1;
		sleep_ms(5);
	}
}

static void print_log(const struct daemon *d)
{
	char buf[8192];
	FILE *f = fopen(d->log, "r");
	size_t n;

	if (!f)
		return;
	fprintf(stderr, "---- daemon log %s ----\n", d->log);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, stderr);
	fprintf(stderr, "---- end of log ----\n");
	fclose(f);
}

static void stop_daemon(struct daemon *d, int sig)
{
	if (d->pid <= 0)
		return;
	kill(d->pid, sig);
	if (wait_child(d->pid, STOP_TIMEOUT_MS) < 0) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, NULL, 0);
	}
	d->pid = 0;
}

/* Always runs: leave no daemon, mount, file or directory behind. */
static void daemon_cleanup(void *arg)
{
	struct daemon *d = arg;

	stop_daemon(d, SIGTERM);
	for (int i = 0; i < 8 && mounted(d->path); i++)
		umount2(d->path, MNT_DETACH);
	if (d->in_dir || d->dev_absent)
		unlink(d->path);
	unlink(d->ctl);
	print_log(d);
	unlink(d->log);
	rmdir(d->dir);
	free(d);
}

static size_t log_size(const struct daemon *d)
{
	struct stat st;

	return stat(d->log, &st) == 0 ? (size_t)st.st_size : 0;
}

/* Does the log contain `what` after byte `from`? */
static bool log_has(const struct daemon *d, size_t from, const char *what)
{
	FILE *f = fopen(d->log, "r");
	char *buf;
	size_t n;
	bool found;

	if (!f)
		return false;
	buf = calloc(1, 1 << 20);
	if (!buf) {
		fclose(f);
		return false;
	}
	fseek(f, (long)from, SEEK_SET);
	n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = '\0';
	found = strstr(buf, what) != NULL;
	free(buf);
	fclose(f);
	return found;
}

/* Start openvmc; `extra` is a NULL-terminated list of more arguments. */
static void spawn(struct daemon *d, const char *const *extra)
{
	const char *argv[32];
	size_t from = log_size(d);
	int n = 0;
	char ready[160];

	argv[n++] = OPENVMC_BIN;
	if (d->in_dir) {
		argv[n++] = d->dir;
	} else {
		argv[n++] = "--device";
		argv[n++] = d->path;
	}
	argv[n++] = "--control";
	argv[n++] = d->ctl;
	for (; extra && *extra && n < 30; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;

	d->pid = fork();
	if (d->pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (d->pid == 0) {
		int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

		if (fd < 0 || dup2(fd, STDERR_FILENO) < 0 || dup2(fd, STDOUT_FILENO) < 0)
			_exit(127);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	snprintf(ready, sizeof(ready), "device ready at %s", d->path);
	for (uint64_t end = now_ms() + READY_TIMEOUT_MS; !log_has(d, from, ready);) {
		int status;

		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			d->pid = 0;
			FAIL("openvmc exited (status 0x%x) before the device was ready", status);
		}
		if (now_ms() > end)
			FAIL("no \"%s\" within %d ms", ready, READY_TIMEOUT_MS);
		sleep_ms(10);
	}
	if (!mounted(d->path))
		FAIL("%s is not a mount point after the ready line", d->path);
}

static struct daemon *new_daemon(const char *device)
{
	struct daemon *d = calloc(1, sizeof(*d));

	if (!d)
		FAIL("out of memory");
	strcpy(d->dir, "/tmp/ovmc-dev-XXXXXX");
	if (!mkdtemp(d->dir)) {
		free(d);
		FAIL("mkdtemp: %s", strerror(errno));
	}
	ovmc_test_defer(daemon_cleanup, d);
	d->in_dir = device == NULL;
	snprintf(d->path, sizeof(d->path), "%s/ibmvmc", d->dir);
	if (device) {
		snprintf(d->path, sizeof(d->path), "%s", device);
		d->dev_absent = !exists(device);
	}
	snprintf(d->ctl, sizeof(d->ctl), "%s/ctl", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/log", d->dir);
	return d;
}

/* A daemon serving dir/ibmvmc, started with `extra` arguments. */
static struct daemon *start(const char *const *extra)
{
	struct daemon *d = new_daemon(NULL);

	spawn(d, extra);
	return d;
}

/* ---- devclient ---- */

static void client_kill(void *arg)
{
	struct client *c = arg;

	if (c->pid > 0) {
		kill(c->pid, SIGKILL);
		waitpid(c->pid, NULL, 0);
	}
	if (c->out >= 0)
		close(c->out);
	if (c->in >= 0)
		close(c->in);
	free(c);
}

/* Start devclient in the background with pipes on stdin and stdout. */
static struct client *client_spawn(const char *const *args)
{
	const char *argv[16];
	struct client *c = calloc(1, sizeof(*c));
	int out[2], in[2], n = 0;

	if (!c)
		FAIL("out of memory");
	c->out = c->in = -1;
	ovmc_test_defer(client_kill, c);
	argv[n++] = DEVCLIENT_BIN;
	for (; *args && n < 15; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	if (pipe2(out, O_CLOEXEC) || pipe2(in, O_CLOEXEC))
		FAIL("pipe: %s", strerror(errno));
	c->pid = fork();
	if (c->pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (c->pid == 0) {
		if (dup2(out[1], STDOUT_FILENO) < 0 || dup2(in[0], STDIN_FILENO) < 0)
			_exit(127);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(out[1]);
	close(in[0]);
	c->out = out[0];
	c->in = in[1];
	return c;
}

/* Read the client's stdout into buf until EOF or `ms`; returns the length. */
static size_t client_read(struct client *c, char *buf, size_t size, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;
	size_t len = 0;

	while (len + 1 < size) {
		struct pollfd p = {.fd = c->out, .events = POLLIN};
		int left = (int)(end - now_ms());
		ssize_t n;

		if (left <= 0 || poll(&p, 1, left) != 1)
			break;
		n = read(c->out, buf + len, size - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return len;
}

/* Wait until the client printed a line containing `what`. */
static void client_expect(struct client *c, const char *what, int ms)
{
	char buf[4096];
	size_t len = 0;
	uint64_t end = now_ms() + (uint64_t)ms;

	while (len + 1 < sizeof(buf)) {
		struct pollfd p = {.fd = c->out, .events = POLLIN};
		int left = (int)(end - now_ms());
		ssize_t n;

		if (left <= 0 || poll(&p, 1, left) != 1)
			break;
		n = read(c->out, buf + len, 1);
		if (n <= 0)
			break;
		len++;
		buf[len] = '\0';
		if (strstr(buf, what))
			return;
	}
	buf[len] = '\0';
	FAIL("devclient did not print \"%s\" (got \"%s\")", what, buf);
}

/* Wait for the client to exit; returns its exit code (FAIL on a timeout or signal). */
static int client_wait(struct client *c, int ms)
{
	int status = wait_child(c->pid, ms);

	if (status < 0)
		FAIL("devclient still running after %d ms", ms);
	c->pid = 0;
	if (!WIFEXITED(status))
		FAIL("devclient died (status 0x%x)", status);
	return WEXITSTATUS(status);
}

/* Run devclient to the end; its stdout in `out`; FAIL unless it exits 0. */
static void run_client(const char *const *args, char *out, size_t size)
{
	struct client *c = client_spawn(args);
	static char scratch[OUT_MAX];
	int code;

	if (!out) {
		out = scratch;
		size = sizeof(scratch);
	}
	client_read(c, out, size, CLIENT_TIMEOUT_MS);
	code = client_wait(c, 1000);
	if (code != 0)
		FAIL("devclient %s exited %d; output:\n%s", args[0], code, out);
}

#define CLIENT(...) run_client((const char *const[]){__VA_ARGS__, NULL}, NULL, 0)
#define CLIENT_OUT(buf, ...)                                                                \
	run_client((const char *const[]){__VA_ARGS__, NULL}, (buf), sizeof(buf))
#define SPAWN(...) client_spawn((const char *const[]){__VA_ARGS__, NULL})
#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- control socket ---- */

/* One request; the whole reply in `out`. */
static void ctl(const struct daemon *d, const char *request, char *out, size_t size)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	size_t len = 0;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", d->ctl);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		FAIL("control socket %s: %s", d->ctl, strerror(errno));
	if (write(fd, request, strlen(request)) < 0 || write(fd, "\n", 1) != 1)
		FAIL("control write: %s", strerror(errno));
	for (uint64_t end = now_ms() + 5000; len + 1 < size;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, (int)(end - now_ms())) != 1)
			FAIL("control reply to \"%s\" timed out", request);
		n = read(fd, out + len, size - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	out[len] = '\0';
	close(fd);
}

/* Poll a control command until its reply contains `what`. */
static void ctl_wait(const struct daemon *d, const char *request, const char *what, int ms)
{
	static char out[OUT_MAX];

	for (uint64_t end = now_ms() + (uint64_t)ms;; sleep_ms(10)) {
		ctl(d, request, out, sizeof(out));
		if (strstr(out, what))
			return;
		if (now_ms() > end)
			FAIL("\"%s\" never showed \"%s\"; last reply:\n%s", request, what, out);
	}
}

/* ---- tests ---- */

TEST(help_and_version_exit_0)
{
	char out[8192];
	int status;

	for (int i = 0; i < 2; i++) {
		int p[2];
		pid_t pid;
		ssize_t n;

		CHECK(pipe2(p, O_CLOEXEC) == 0);
		pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			dup2(p[1], STDOUT_FILENO);
			execl(OPENVMC_BIN, OPENVMC_BIN, i ? "--version" : "--help", (char *)NULL);
			_exit(127);
		}
		close(p[1]);
		n = read(p[0], out, sizeof(out) - 1);
		close(p[0]);
		status = wait_child(pid, 5000);
		CHECK(status >= 0 && WIFEXITED(status));
		CHECK_EQ(WEXITSTATUS(status), 0);
		CHECK(n > 0);
		out[n] = '\0';
		if (i)
			CHECK(strcmp(out, "openvmc 0.1.0\n") == 0);
		else
			CHECK(strstr(out, "Usage: openvmc") && strstr(out, "--device"));
	}
}

TEST(query_before_and_after_ready)
{
	struct daemon *d = start(ARGS("--no-vmc"));
	char out[512];

	/* Without a VMC the driver stays INITIAL. */
	CLIENT_OUT(out, "query", d->path);
	CHECK(strstr(out, "have_vmc 0 state 0 drc 0x00000000"));
	CLIENT("requestvmc", d->path);
	CLIENT("wait-ready", d->path);
	CLIENT_OUT(out, "query", d->path);
	CHECK(strstr(out, "have_vmc 1 state 3 drc 0x9"));
}

TEST(query_reports_ready_with_a_vmc_present)
{
	struct daemon *d = start(NULL);
	char out[512];

	CLIENT("wait-ready", d->path);
	CLIENT_OUT(out, "query", d->path);
	CHECK(strstr(out, "have_vmc 1 state 3 drc 0x9"));
}

TEST(sethmcid_then_write_until_the_open_completes)
{
	struct daemon *d = start(NULL);
	char out[512];

	CLIENT_OUT(out, "echo", d->path, "HMC-OPEN", "1", "1");
	CHECK(strstr(out, "open complete after"));
	CHECK(strstr(out, "echoed 1..1"));
}

TEST(echo_round_trips_every_size_1_to_4096)
{
	struct daemon *d = start(NULL);
	char out[512];

	CLIENT_OUT(out, "echo", d->path, "HMC-ECHO", "1", "4096");
	CHECK(strstr(out, "echoed 1..4096"));
}

TEST(write_above_mtu_eio_read_above_mtu_einval)
{
	struct daemon *d = start(NULL);
	char out[512];

	CLIENT_OUT(out, "mtu", d->path, "HMC-MTU", "4096");
	CHECK(strstr(out, "write of MTU+1: EIO"));
	CHECK(strstr(out, "read with MTU+1: EINVAL"));
}

TEST(smaller_mtu_is_negotiated_and_enforced)
{
	struct daemon *d = start(ARGS("--mtu", "512"));
	char out[512];

	CLIENT_OUT(out, "mtu", d->path, "HMC-MTU", "512");
	CHECK(strstr(out, "MTU round trip ok"));
}

TEST(write_and_read_before_sethmcid_eio)
{
	struct daemon *d = start(NULL);
	char out[512];

	CLIENT("wait-ready", d->path);
	CLIENT_OUT(out, "nosession", d->path);
	CHECK(strstr(out, "write before SETHMCID: EIO"));
	CHECK(strstr(out, "read before SETHMCID: EIO"));
}

TEST(sethmcid_twice_eio)
{
	struct daemon *d = start(NULL);
	char out[512];

	CLIENT_OUT(out, "twice", d->path, "HMC-TWICE");
	CHECK(strstr(out, "second SETHMCID: EIO"));
}

TEST(second_session_with_one_hmc_ebusy)
{
	struct daemon *d = start(ARGS("--hmcs", "1"));
	char out[512];

	CLIENT_OUT(out, "busy", d->path, "HMC-ONE", "HMC-TWO");
	CHECK(strstr(out, "SETHMCID on a second fd: EBUSY"));
}

TEST(unknown_ioctl_einval)
{
	struct daemon *d = start(NULL);
	char out[1024];

	CLIENT("wait-ready", d->path);
	CLIENT_OUT(out, "badioctl", d->path);
	CHECK(strstr(out, "ioctl _IO(0xCC, 3): EINVAL"));
	CHECK(strstr(out, "foreign QUERY: state 3"));
}

TEST(nonblocking_read_with_nothing_queued_eagain)
{
	struct daemon *d = start(NULL);
	char out[512];

	CLIENT_OUT(out, "nonblock", d->path, "HMC-NONBLOCK");
	CHECK(strstr(out, "O_NONBLOCK read, nothing queued: EAGAIN"));
}

TEST(poll_reports_pollin_only_while_a_message_is_queued)
{
	struct daemon *d = start(NULL);
	char out[1024];

	CLIENT_OUT(out, "poll", d->path, "HMC-POLL");
	CHECK(strstr(out, "poll with a message queued: POLLIN"));
}

TEST(blocking_read_completes_when_the_hypervisor_sends)
{
	struct daemon *d = start(NULL);
	struct client *c = SPAWN("recv", d->path, "HMC-RECV");
	char out[512];

	client_expect(c, "open", READY_TIMEOUT_MS);
	ctl_wait(d, "sessions", "index 0: open", 5000);
	sleep_ms(300); /* the reader is parked in read() by now */
	ctl(d, "send 0 68656c6c6f2066726f6d20687621", out, sizeof(out));
	CHECK(strncmp(out, "ok\n", 3) == 0);
	client_expect(c, "got 68656c6c6f2066726f6d20687621", 5000);
	CHECK_EQ(client_wait(c, 5000), 0);
}

TEST(control_send_errors)
{
	struct daemon *d = start(NULL);
	char out[512];

	CLIENT("wait-ready", d->path);
	ctl(d, "send 0 41", out, sizeof(out));
	CHECK(strncmp(out, "error ENOTCONN:", 15) == 0);
	ctl(d, "send 0 4", out, sizeof(out));
	CHECK(strncmp(out, "error EINVAL:", 13) == 0);
	ctl(d, "frobnicate", out, sizeof(out));
	CHECK(strncmp(out, "error EINVAL:", 13) == 0);
}

TEST(two_applications_on_two_sessions_isolated)
{
	struct daemon *d = start(ARGS("--hmcs", "2"));
	struct client *a = SPAWN("session", d->path, "APPLICATION-A");
	struct client *b = SPAWN("session", d->path, "APPLICATION-B");
	struct client *ea, *eb;
	char out[4096];

	client_expect(a, "open", READY_TIMEOUT_MS);
	client_expect(b, "open", READY_TIMEOUT_MS);
	ctl(d, "sessions", out, sizeof(out));
	CHECK(strstr(out, "index 0: open") && strstr(out, "index 1: open"));
	CHECK(strstr(out, "\"APPLICATION-A\"") && strstr(out, "\"APPLICATION-B\""));
	close(a->in);
	a->in = -1;
	close(b->in);
	b->in = -1;
	CHECK_EQ(client_wait(a, 5000), 0);
	CHECK_EQ(client_wait(b, 5000), 0);

	/* Both at once, each checking that it gets only its own echoes. */
	ctl_wait(d, "sessions", "index 0: closed\npartition 1 index 1: closed", 5000);
	ea = SPAWN("echo", d->path, "ECHO-A", "1", "1500");
	eb = SPAWN("echo", d->path, "ECHO-B", "1", "1500");
	client_read(ea, out, sizeof(out), CLIENT_TIMEOUT_MS);
	CHECK(strstr(out, "echoed 1..1500"));
	CHECK_EQ(client_wait(ea, 5000), 0);
	client_read(eb, out, sizeof(out), CLIENT_TIMEOUT_MS);
	CHECK(strstr(out, "echoed 1..1500"));
	CHECK_EQ(client_wait(eb, 5000), 0);
}

TEST(client_killed_while_blocked_in_read)
{
	struct daemon *d = start(NULL);
	struct client *c = SPAWN("recv", d->path, "HMC-KILLED");
	char out[8192];

	client_expect(c, "open", READY_TIMEOUT_MS);
	ctl_wait(d, "sessions", "index 0: open", 5000);
	sleep_ms(300);
	kill(c->pid, SIGKILL);
	/* Not stuck in D state: the daemon answered the interrupt. */
	CHECK(wait_child(c->pid, 5000) >= 0);
	c->pid = 0;
	ctl_wait(d, "sessions", "index 0: closed", 5000);
	ctl(d, "status", out, sizeof(out));
	CHECK(strstr(out, "sessions-closed 1"));
	/* The connection is usable again. */
	CLIENT("echo", d->path, "HMC-AFTER", "1", "16");
}

TEST(write_while_another_thread_reads_the_same_fd)
{
	struct daemon *d = start(NULL);
	char out[512];

	CLIENT_OUT(out, "threads", d->path, "HMC-THREADS");
	CHECK(strstr(out, "reader got the echo"));
}

TEST(no_vmc_until_requestvmc)
{
	struct daemon *d = start(ARGS("--no-vmc"));
	char out[512];

	CLIENT_OUT(out, "query", d->path);
	CHECK(strstr(out, "have_vmc 0 state 0"));
	CLIENT_OUT(out, "requestvmc", d->path);
	CHECK(strstr(out, "requestvmc 0 drc 0x9"));
	CLIENT("wait-ready", d->path);
	CLIENT_OUT(out, "echo", d->path, "HMC-LATE", "1", "64");
	CHECK(strstr(out, "echoed 1..64"));
}

TEST(requestvmc_refused_by_the_hypervisor_eperm)
{
	struct daemon *d = start(ARGS("--no-vmc", "--request-vmc-rc", "H_AUTHORITY"));
	struct client *c = SPAWN("requestvmc", d->path);
	char out[512];

	client_read(c, out, sizeof(out), CLIENT_TIMEOUT_MS);
	CHECK_EQ(client_wait(c, 5000), 1);
	CHECK(strstr(out, "requestvmc EPERM"));
}

TEST(sethmcid_32_byte_id_without_nul_arrives_whole)
{
	static const char hex[] = "c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdd"
				  "dedfe0";
	struct daemon *d = start(NULL);
	struct client *c;
	char arg[80], out[4096];

	CHECK_EQ(strlen(hex), 64);
	snprintf(arg, sizeof(arg), "hex:%s", hex);
	c = SPAWN("session", d->path, arg);
	client_expect(c, "open", READY_TIMEOUT_MS);
	ctl(d, "sessions", out, sizeof(out));
	CHECK(strstr(out, hex));
	close(c->in);
	c->in = -1;
	CHECK_EQ(client_wait(c, 5000), 0);
}

TEST(device_at_dev_ibmvmc)
{
	struct daemon *d;
	char out[512];

	if (exists("/dev/ibmvmc"))
		FAIL("/dev/ibmvmc exists on this machine; left alone, test not run");
	d = new_daemon("/dev/ibmvmc");
	spawn(d, NULL);
	CLIENT_OUT(out, "echo", "/dev/ibmvmc", "HMC-DEV", "1", "256");
	CHECK(strstr(out, "echoed 1..256"));
	stop_daemon(d, SIGTERM);
	CHECK(!mounted("/dev/ibmvmc"));
	CHECK(!exists("/dev/ibmvmc"));
}

TEST(sigterm_removes_mount_file_and_socket)
{
	struct daemon *d = start(NULL);
	struct client *c = SPAWN("recv", d->path, "HMC-SIGTERM");
	pid_t pid = d->pid;
	int status;

	/* Even with an application blocked in read(): it hears EIO. */
	client_expect(c, "open", READY_TIMEOUT_MS);
	ctl_wait(d, "sessions", "index 0: open", 5000);
	sleep_ms(200);
	kill(pid, SIGTERM);
	status = wait_child(pid, STOP_TIMEOUT_MS);
	d->pid = 0;
	CHECK(status >= 0 && WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), 0);
	client_expect(c, "read EIO", 5000);
	CHECK_EQ(client_wait(c, 5000), 1);
	CHECK(!mounted(d->path));
	CHECK(!exists(d->path));
	CHECK(!exists(d->ctl));
}

TEST(hypervisor_restart_gives_a_blocked_reader_ebadfd)
{
	struct daemon *d = start(NULL);
	struct client *c = SPAWN("recv", d->path, "HMC-RESET");
	char out[512];

	client_expect(c, "open", READY_TIMEOUT_MS);
	ctl_wait(d, "sessions", "index 0: open", 5000);
	sleep_ms(200);
	ctl(d, "restart", out, sizeof(out));
	CHECK(strncmp(out, "ok\n", 3) == 0);
	client_expect(c, "read EBADFD", 5000);
	CHECK_EQ(client_wait(c, 5000), 1);
	/* The channel comes back and takes new sessions. */
	CLIENT("echo", d->path, "HMC-AFTER-RESET", "1", "16");
}

TEST(second_daemon_on_a_served_path_refused)
{
	struct daemon *d = start(NULL);
	size_t from = log_size(d);
	pid_t pid = fork();
	int status;

	CHECK(pid >= 0);
	if (pid == 0) {
		int fd = open(d->log, O_WRONLY | O_APPEND | O_CLOEXEC);

		if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
			_exit(127);
		execl(OPENVMC_BIN, OPENVMC_BIN, d->dir, (char *)NULL);
		_exit(127);
	}
	status = wait_child(pid, STOP_TIMEOUT_MS);
	if (status < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		FAIL("a second openvmc on %s kept running", d->path);
	}
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);
	CHECK(log_has(d, from, "already a mount point"));
	CLIENT("echo", d->path, "HMC-FIRST", "1", "8");
}

TEST(mode_and_group_are_applied)
{
	struct daemon *d = start(ARGS("--mode", "0640", "--group", "4242"));
	struct stat st;

	CHECK(stat(d->path, &st) == 0);
	CHECK(S_ISREG(st.st_mode));
	CHECK_EQ(st.st_mode & 07777, 0640);
	CHECK_EQ(st.st_gid, 4242);
	CHECK_EQ(st.st_uid, geteuid());
}

/* CUSE cannot be tried where the kernel lacks it: then it must fail cleanly. */
TEST(cuse_mode_without_dev_cuse_fails_cleanly)
{
	struct daemon *d = new_daemon(NULL);
	pid_t pid;
	int status;

	if (exists("/dev/cuse"))
		FAIL("/dev/cuse exists here: this test covers only its absence");
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

		if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
			_exit(127);
		execl(OPENVMC_BIN, OPENVMC_BIN, "--cuse", "--device", "/dev/ovmc-cuse-test",
		      (char *)NULL);
		_exit(127);
	}
	status = wait_child(pid, STOP_TIMEOUT_MS);
	if (status < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		FAIL("openvmc --cuse kept running without /dev/cuse");
	}
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);
	CHECK(log_has(d, 0, "CUSE is not available"));
	CHECK(!exists("/dev/ovmc-cuse-test"));
}

TEST(sigkill_then_restart_on_the_same_path)
{
	struct daemon *d = start(NULL);

	CLIENT("wait-ready", d->path);
	kill(d->pid, SIGKILL);
	CHECK(wait_child(d->pid, STOP_TIMEOUT_MS) >= 0);
	d->pid = 0;
	/* The killed daemon's control socket is stale now: replaced. */
	CHECK(exists(d->ctl));
	spawn(d, NULL);
	CLIENT("echo", d->path, "HMC-RESTART", "1", "32");
	ctl_wait(d, "status", "driver: state ready", 5000);
}

/* The live fusermount3 children of `parent` (the auto_unmount watchdog). */
static int watchdogs(pid_t parent, pid_t *out, int max)
{
	DIR *proc = opendir("/proc");
	struct dirent *e;
	int n = 0;

	if (!proc)
		return 0;
	while (n < max && (e = readdir(proc))) {
		char path[300], comm[64];
		int pid, ppid;
		char state;
		FILE *f;

		if (sscanf(e->d_name, "%d", &pid) != 1)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fscanf(f, "%*d (%63[^)]) %c %d", comm, &state, &ppid) == 3 &&
		    ppid == parent && strcmp(comm, "fusermount3") == 0 && state != 'Z')
			out[n++] = pid;
		fclose(f);
	}
	closedir(proc);
	return n;
}

TEST(stale_mount_is_detached_at_start)
{
	struct daemon *d = start(NULL);
	pid_t kids[16];
	int n;
	size_t from;
	struct statfs sfs;

	CLIENT("wait-ready", d->path);
	/* Without its auto_unmount watchdog (fusermount3, a child of the
	 * daemon), a killed daemon leaves a dead mount behind. */
	n = watchdogs(d->pid, kids, 16);
	CHECK_EQ(n, 1);
	/* Pending SIGKILL: it never runs again, so it cannot unmount. */
	kill(kids[0], SIGKILL);
	kill(d->pid, SIGKILL);
	CHECK(wait_child(d->pid, STOP_TIMEOUT_MS) >= 0);
	d->pid = 0;
	CHECK(mounted(d->path));
	/* Dead: statfs() asks the filesystem (stat() may answer from a cache). */
	CHECK(statfs(d->path, &sfs) != 0 && errno == ENOTCONN);
	from = log_size(d);
	spawn(d, NULL);
	CHECK(log_has(d, from, "detached a stale mount"));
	CLIENT("echo", d->path, "HMC-STALE", "1", "32");
}
