// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Shared fixture of the tests that run the real programs: daemons started
 * in a fresh directory under /tmp and always cleaned up (killed by pid,
 * mount detached, files removed; if the test process itself dies, its
 * daemons and clients die with it), devclient runs, control-socket requests.
 */
#include "fixture.h"

#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef DEVCLIENT_BIN
#error DEVCLIENT_BIN must name the devclient program
#endif

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void sleep_ms(int ms)
{
	poll(NULL, 0, ms);
}

/* Is `path` a mount point (a live or a stale FUSE mount)? */
bool mounted(const char *path)
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

bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 || errno != ENOENT;
}

/* Wait for a child until `ms` pass; returns its wait status, or -1. */
int wait_child(pid_t pid, int ms)
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

void print_log(const struct daemon *d)
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

void stop_daemon(struct daemon *d, int sig)
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
	/* A daemon of the sanitized build that leaked or misbehaved said so in
	 * its log, at the latest when it exited: that fails the test. */
	if (log_has(d, 0, "LeakSanitizer") || log_has(d, 0, "AddressSanitizer") ||
	    log_has(d, 0, "runtime error:"))
		ovmc_test_fail_later(__FILE__, __LINE__, "sanitizer report in %s", d->log);
	for (int i = 0; i < 8 && mounted(d->path); i++)
		umount2(d->path, MNT_DETACH);
	if (d->in_dir || d->dev_absent)
		unlink(d->path);
	unlink(d->sock);
	unlink(d->ctl);
	if (ovmc_test_failed())
		print_log(d);
	unlink(d->log);
	rmdir(d->dir);
	free(d);
}

size_t log_size(const struct daemon *d)
{
	struct stat st;

	return stat(d->log, &st) == 0 ? (size_t)st.st_size : 0;
}

/* Does the log contain `what` after byte `from`? */
bool log_has(const struct daemon *d, size_t from, const char *what)
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

/* Start argv[0] with its output in the log; wait for `ready` in the log. */
void spawn_argv(struct daemon *d, const char *const *argv, const char *ready)
{
	size_t from = log_size(d);
	pid_t parent = getpid();

	d->pid = fork();
	if (d->pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (d->pid == 0) {
		int fd;

		ovmc_test_die_with_parent(parent);
		fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd < 0 || dup2(fd, STDERR_FILENO) < 0 || dup2(fd, STDOUT_FILENO) < 0)
			_exit(127);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	for (uint64_t end = now_ms() + READY_TIMEOUT_MS; !log_has(d, from, ready);) {
		int status;

		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			d->pid = 0;
			FAIL("%s exited (status 0x%x) before \"%s\"", argv[0], status, ready);
		}
		if (now_ms() > end)
			FAIL("no \"%s\" within %d ms", ready, READY_TIMEOUT_MS);
		sleep_ms(10);
	}
}

/*
 * The programs announce the device (or session socket) before their
 * control socket listens: tests use both at once, so wait for it too.
 */
static void wait_listening(const struct daemon *d)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", d->ctl);
	for (uint64_t end = now_ms() + READY_TIMEOUT_MS;; sleep_ms(5)) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int rc = fd < 0 ? -1 : connect(fd, (struct sockaddr *)&sa, sizeof(sa));

		if (fd >= 0)
			close(fd);
		if (rc == 0)
			return;
		if (now_ms() > end)
			FAIL("no control socket listening at %s within %d ms", d->ctl,
			     READY_TIMEOUT_MS);
	}
}

void spawn_prog(struct daemon *d, const char *prog, const char *const *extra)
{
	const char *argv[32];
	int n = 0;
	char ready[160];

	argv[n++] = prog;
	if (d->sock_only)
		argv[n++] = "--no-device";
	if (d->in_dir) {
		argv[n++] = d->dir;
	} else {
		argv[n++] = "--device";
		argv[n++] = d->path;
	}
	argv[n++] = "--control";
	argv[n++] = d->ctl;
	for (; extra && *extra && n < 31; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	if (d->sock_only) {
		snprintf(ready, sizeof(ready), "session socket ready at %s", d->sock);
		spawn_argv(d, argv, ready);
		wait_listening(d);
		return;
	}
	snprintf(ready, sizeof(ready), "device ready at %s", d->path);
	spawn_argv(d, argv, ready);
	if (!mounted(d->path))
		FAIL("%s is not a mount point after the ready line", d->path);
	wait_listening(d);
}

struct daemon *new_daemon(const char *device)
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
	snprintf(d->sock, sizeof(d->sock), "%s.sock", d->path);
	snprintf(d->ctl, sizeof(d->ctl), "%s/ctl", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/log", d->dir);
	return d;
}

static void hvd_cleanup(void *arg)
{
	struct hvd *h = arg;

	/* Stopped first: the socket may not be removed under a live server. */
	stop_daemon(h->d, SIGTERM);
	unlink(h->sock);
	rmdir(h->sockdir);
	free(h);
}

struct hvd *new_hvd(void)
{
	struct hvd *h = calloc(1, sizeof(*h));
	struct daemon *d = new_daemon(NULL);

	if (!h)
		FAIL("out of memory");
	h->d = d;
	snprintf(h->sockdir, sizeof(h->sockdir), "%s/hv", d->dir);
	snprintf(h->sock, sizeof(h->sock), "%s/sock", h->sockdir);
	ovmc_test_defer(hvd_cleanup, h);
	return h;
}

void spawn_hvd(struct hvd *h, const char *bin, const char *const *extra)
{
	const char *argv[32] = {bin, "--foreground", "--socket", h->sock, "--control", h->d->ctl};
	char ready[192];
	int n = 6;

	for (; extra && *extra && n < 31; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	snprintf(ready, sizeof(ready), "hypervisor ready at %s", h->sock);
	spawn_argv(h->d, argv, ready);
}

int fd_count(pid_t pid)
{
	char path[64];
	struct dirent *e;
	DIR *dir;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dir = opendir(path);
	if (!dir)
		FAIL("%s: %s", path, strerror(errno));
	while ((e = readdir(dir)))
		n += e->d_name[0] != '.';
	closedir(dir);
	return n;
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
struct client *client_spawn(const char *const *args)
{
	return client_spawn_prog(DEVCLIENT_BIN, args);
}

static struct {
	const char *const *prefix;
	bool drop;
	uid_t uid;
	gid_t gid;
	gid_t group; /* supplementary, 0: none */
} clients;

void clients_group(gid_t group)
{
	clients.group = group;
}

void clients_via(const char *const *prefix)
{
	clients.prefix = prefix;
}

void clients_as(bool drop, uid_t uid, gid_t gid)
{
	clients.drop = drop;
	clients.uid = uid;
	clients.gid = gid;
}

void wait_in_syscall(pid_t pid, long nr, int ms)
{
	char path[64], line[256] = "";

	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
	for (uint64_t end = now_ms() + (uint64_t)ms;; sleep_ms(10)) {
		FILE *f = fopen(path, "r");

		if (f) {
			if (!fgets(line, sizeof(line), f))
				line[0] = '\0';
			fclose(f);
			if (atol(line) == nr && line[0] != '-')
				return;
		}
		if (now_ms() > end)
			FAIL("pid %d not blocked in syscall %ld (%s: %s)", (int)pid, nr, path, line);
	}
}

pid_t spawn_piped(const char *const *argv, bool with_stderr, int *out, int *in)
{
	int o[2], i[2] = {-1, -1};
	pid_t parent = getpid(), pid;

	if (pipe2(o, O_CLOEXEC) || (in && pipe2(i, O_CLOEXEC)))
		FAIL("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (pid == 0) {
		ovmc_test_die_with_parent(parent);
		if (dup2(o[1], STDOUT_FILENO) < 0 || (with_stderr && dup2(o[1], STDERR_FILENO) < 0) ||
		    (in && dup2(i[0], STDIN_FILENO) < 0))
			_exit(127);
		if (clients.drop &&
		    (setgroups(clients.group ? 1 : 0, &clients.group) != 0 ||
		     setgid(clients.gid) != 0 || setuid(clients.uid) != 0))
			_exit(127);
		if (clients.prefix) {
			const char *full[48];
			int n = 0;

			for (const char *const *p = clients.prefix; *p && n < 32; p++)
				full[n++] = *p;
			for (const char *const *p = argv; *p && n < 47; p++)
				full[n++] = *p;
			full[n] = NULL;
			execv(full[0], (char *const *)full);
			_exit(127);
		}
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(o[1]);
	*out = o[0];
	if (in) {
		close(i[0]);
		*in = i[1];
	}
	return pid;
}

struct client *client_spawn_prog(const char *prog, const char *const *args)
{
	const char *argv[16];
	struct client *c = calloc(1, sizeof(*c));
	int n = 0;

	if (!c)
		FAIL("out of memory");
	c->out = c->in = -1;
	ovmc_test_defer(client_kill, c);
	argv[n++] = prog;
	for (; *args && n < 15; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	c->pid = spawn_piped(argv, false, &c->out, &c->in);
	return c;
}

/* Read the client's stdout into buf until EOF or `ms`; returns the length. */
size_t client_read(struct client *c, char *buf, size_t size, int ms)
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
void client_expect(struct client *c, const char *what, int ms)
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
int client_wait(struct client *c, int ms)
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
void run_client(const char *const *args, char *out, size_t size)
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

/* ---- control socket ---- */

/* One request; the whole reply in `out`. */
void ctl(const struct daemon *d, const char *request, char *out, size_t size)
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
void ctl_wait(const struct daemon *d, const char *request, const char *what, int ms)
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
