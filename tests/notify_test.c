// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Readiness notification (src/daemon/notify.c): the three programs, started
 * as systemd starts a Type=notify service (with $NOTIFY_SOCKET), send
 * READY=1 from their main process only once they serve, and STOPPING=1
 * when told to stop. The test plays the service manager's socket.
 */
#include "fixture.h"
#include "harness.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

struct manager {
	char dir[64];
	struct sockaddr_un sa;
	int fd;
};

static void manager_cleanup(void *arg)
{
	struct manager *m = arg;

	unsetenv("NOTIFY_SOCKET");
	if (m->fd >= 0)
		close(m->fd);
	if (m->sa.sun_path[0])
		unlink(m->sa.sun_path);
	rmdir(m->dir);
	free(m);
}

/* The notification socket, named in $NOTIFY_SOCKET for the programs the
 * test starts: a path, or an abstract name ("@..."). */
static struct manager *manager_new(bool abstract)
{
	struct manager *m = calloc(1, sizeof(*m));
	char env[sizeof(m->sa.sun_path) + 1];
	socklen_t len;
	int on = 1;

	if (!m)
		FAIL("out of memory");
	m->fd = -1;
	strcpy(m->dir, "/tmp/ovmc-notify-XXXXXX");
	if (!mkdtemp(m->dir)) {
		free(m);
		FAIL("mkdtemp: %s", strerror(errno));
	}
	ovmc_test_defer(manager_cleanup, m);
	m->sa.sun_family = AF_UNIX;
	if (abstract) {
		snprintf(m->sa.sun_path + 1, sizeof(m->sa.sun_path) - 1, "%s", m->dir);
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(m->dir));
		snprintf(env, sizeof(env), "@%s", m->dir);
	} else {
		snprintf(m->sa.sun_path, sizeof(m->sa.sun_path), "%s/notify", m->dir);
		len = sizeof(m->sa);
		snprintf(env, sizeof(env), "%s", m->sa.sun_path);
	}
	m->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (m->fd < 0 || bind(m->fd, (struct sockaddr *)&m->sa, len) < 0 ||
	    setsockopt(m->fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) < 0)
		FAIL("notify socket: %s", strerror(errno));
	if (abstract)
		m->sa.sun_path[0] = '\0';
	setenv("NOTIFY_SOCKET", env, 1);
	return m;
}

/*
 * The next message, within READY_TIMEOUT_MS, into `buf`; FAILs if none
 * comes, or if `from` (the program's main process) is not its sender, as
 * systemd's NotifyAccess=main requires.
 */
static void manager_recv(struct manager *m, pid_t from, char *buf, size_t size)
{
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(struct ucred))];
	} c;
	struct iovec iov = {buf, size - 1};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = &c,
			     .msg_controllen = sizeof(c)};
	struct pollfd p = {.fd = m->fd, .events = POLLIN};
	struct ucred cred;
	ssize_t n;

	if (poll(&p, 1, READY_TIMEOUT_MS) != 1)
		FAIL("no notification within %d ms", READY_TIMEOUT_MS);
	n = recvmsg(m->fd, &msg, MSG_DONTWAIT);
	if (n < 0)
		FAIL("recvmsg: %s", strerror(errno));
	buf[n] = '\0';
	if (!CMSG_FIRSTHDR(&msg) || CMSG_FIRSTHDR(&msg)->cmsg_type != SCM_CREDENTIALS)
		FAIL("no sender credentials");
	memcpy(&cred, CMSG_DATA(CMSG_FIRSTHDR(&msg)), sizeof(cred));
	if (cred.pid != from)
		FAIL("\"%s\" sent by pid %d, not by the main process %d", buf, (int)cred.pid,
		     (int)from);
}

static bool has_line(const char *msg, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = msg; (p = strstr(p, line)); p += n)
		if ((p == msg || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
			return true;
	return false;
}

/* Nothing more arrives while the program runs on (checked when the
 * program is stopped: the next message must be STOPPING=1). */
static void expect_stopping(struct manager *m, struct daemon *d)
{
	char msg[512];
	pid_t pid = d->pid;

	kill(pid, SIGTERM);
	manager_recv(m, pid, msg, sizeof(msg));
	if (strcmp(msg, "STOPPING=1") != 0)
		FAIL("after SIGTERM: \"%s\"", msg);
	CHECK_EQ(wait_child(pid, STOP_TIMEOUT_MS), 0);
	d->pid = 0;
}

static bool can_connect(const char *path, int type)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	bool ok;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	memcpy(sa.sun_path, path, strlen(path));
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static void hvd_ready(bool abstract)
{
	struct manager *m = manager_new(abstract);
	struct hvd *h = new_hvd();
	char msg[512];

	/* Started without waiting for its log: the notification is the signal. */
	spawn_argv(h->d, ARGS(HVD_BIN, "--foreground", "--socket", h->sock, "--control", h->d->ctl),
		   "");
	manager_recv(m, h->d->pid, msg, sizeof(msg));
	if (!has_line(msg, "READY=1"))
		FAIL("first message \"%s\"", msg);
	CHECK(strstr(msg, "STATUS=hypervisor ready at ") != NULL);
	/* Ready means serving: both sockets accept at once. */
	CHECK(can_connect(h->sock, SOCK_SEQPACKET));
	CHECK(can_connect(h->d->ctl, SOCK_STREAM) || can_connect(h->d->ctl, SOCK_SEQPACKET));
	expect_stopping(m, h->d);
}

TEST(hvd_notifies_ready_once_both_sockets_listen_then_stopping)
{
	hvd_ready(false);
}

TEST(hvd_notifies_an_abstract_socket_address)
{
	hvd_ready(true);
}

TEST(hvd_with_an_unusable_notify_socket_warns_and_serves)
{
	struct hvd *h = new_hvd();

	setenv("NOTIFY_SOCKET", "relative/notify", 1);
	spawn_hvd(h, HVD_BIN, NULL);
	unsetenv("NOTIFY_SOCKET");
	for (uint64_t end = now_ms() + READY_TIMEOUT_MS;
	     !log_has(h->d, 0, "cannot tell the service manager at relative/notify");)
		if (now_ms() > end)
			FAIL("no warning about the notify socket");
		else
			sleep_ms(10);
	CHECK(can_connect(h->sock, SOCK_SEQPACKET));
}

static void remove_file(void *path)
{
	char tmp[160];

	if (!path)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", (char *)path);
	unlink(tmp);
	unlink(path);
	free(path);
}

/* The programs a daemon starts cannot speak for it: an exec: backend,
 * started before READY, sees no $NOTIFY_SOCKET. */
TEST(hvd_backend_program_does_not_inherit_notify_socket)
{
	struct manager *m = manager_new(false);
	struct hvd *h = new_hvd();
	char msg[512], backend[512], env[128], buf[8192];
	FILE *f;
	size_t n;

	snprintf(env, sizeof(env), "%s/backend-env", m->dir);
	snprintf(backend, sizeof(backend), "exec:env > %s.tmp && mv %s.tmp %s && exec cat >/dev/null",
		 env, env, env);
	ovmc_test_defer(remove_file, strdup(env));
	spawn_argv(h->d, ARGS(HVD_BIN, "--foreground", "--socket", h->sock, "--control", h->d->ctl,
			      "--backend", backend),
		   "");
	manager_recv(m, h->d->pid, msg, sizeof(msg));
	CHECK(has_line(msg, "READY=1"));
	for (uint64_t end = now_ms() + READY_TIMEOUT_MS; !exists(env);)
		if (now_ms() > end)
			FAIL("the backend program did not run");
		else
			sleep_ms(10);
	f = fopen(env, "r");
	CHECK(f != NULL);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	CHECK(strstr(buf, "PATH=") != NULL);
	if (strstr(buf, "NOTIFY_SOCKET="))
		FAIL("the backend inherited $NOTIFY_SOCKET");
	expect_stopping(m, h->d);
}

/* openvmcd serves its device from the start, before any hypervisor. */
TEST(openvmcd_notifies_ready_with_its_device_mounted)
{
	struct manager *m = manager_new(false);
	struct daemon *d = new_daemon(NULL);
	char msg[512], sock[128];

	snprintf(sock, sizeof(sock), "%s/hv/sock", d->dir);
	spawn_argv(d, ARGS(OPENVMCD_BIN, "--foreground", "--socket", sock, "--control", d->ctl, d->dir),
		   "");
	manager_recv(m, d->pid, msg, sizeof(msg));
	CHECK(has_line(msg, "READY=1"));
	CHECK(mounted(d->path));
	CHECK(strstr(msg, d->path) != NULL);
	expect_stopping(m, d);
	CHECK(!mounted(d->path));
}

TEST(openvmc_notifies_ready_with_its_device_mounted)
{
	struct manager *m = manager_new(false);
	struct daemon *d = new_daemon(NULL);
	char msg[512];

	spawn_argv(d, ARGS(OPENVMC_BIN, "--control", d->ctl, d->dir), "");
	manager_recv(m, d->pid, msg, sizeof(msg));
	CHECK(has_line(msg, "READY=1"));
	CHECK(mounted(d->path));
	CHECK(can_connect(d->ctl, SOCK_STREAM) || can_connect(d->ctl, SOCK_SEQPACKET));
	expect_stopping(m, d);
}
