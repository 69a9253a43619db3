// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The client library (openvmc/client.h) in process, against `openvmc
 * --no-device`, and the session socket's defences against hostile peers:
 * garbage, silence, oversized records, stolen files, too many connections.
 * Needs neither root nor /dev/fuse.
 */
#include "fixture.h"
#include "harness.h"
#include "sess_proto.h"

#include <openvmc/client.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef OPENVMC_BIN
#error OPENVMC_BIN must name the openvmc program
#endif

static struct daemon *single(const char *const *extra)
{
	struct daemon *d = new_daemon(NULL);

	d->sock_only = true;
	spawn_prog(d, OPENVMC_BIN, extra);
	return d;
}

static void client_cleanup(void *arg)
{
	ovmc_client_free(arg);
}

static struct ovmc_client *client_of(const struct daemon *d)
{
	struct ovmc_client *c;

	CHECK_EQ(ovmc_client_new(d->sock, &c), 0);
	ovmc_test_defer(client_cleanup, c);
	return c;
}

static void wait_ready(struct ovmc_client *c)
{
	struct ovmc_client_query q = {0};

	for (uint64_t end = now_ms() + READY_TIMEOUT_MS; q.state != 3; sleep_ms(10)) {
		CHECK_EQ(ovmc_client_query(c, &q), 0);
		if (now_ms() > end)
			FAIL("not ready: state %d", q.state);
	}
	CHECK_EQ(q.have_vmc, 1);
}

/* A file with its HMC id set, the open completed (proven by an echo). */
static int session(struct ovmc_client *c, const char *id_text)
{
	uint8_t id[OVMC_CLIENT_HMC_ID_LEN] = {0};
	char buf[16];
	int fd, rc;

	memcpy(id, id_text, strlen(id_text));
	wait_ready(c);
	fd = ovmc_client_open(c, O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK_EQ(ovmc_client_set_hmc_id(c, fd, id), 0);
	for (int i = 0; (rc = (int)ovmc_client_write(c, fd, "open", 4)) == -EBUSY; i++) {
		CHECK(i < 10000);
		sleep_ms(1);
	}
	CHECK_EQ(rc, 4);
	CHECK_EQ(ovmc_client_read(c, fd, buf, sizeof(buf)), 4);
	CHECK_MEM(buf, "open", 4);
	return fd;
}

static int raw_connect(const struct daemon *d)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%.100s", d->sock);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		FAIL("connect %s: %s", d->sock, strerror(errno));
	return fd;
}

/* The daemon closed this connection (within `ms`). */
static bool closed_by_daemon(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char buf[128];

	while (poll(&p, 1, ms) == 1) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n <= 0)
			return n == 0 || errno == ECONNRESET;
	}
	return false;
}

static void send_with_fd(int fd, const void *buf, size_t len, int pass)
{
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl = {0};
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};

	if (pass >= 0) {
		struct cmsghdr *cm;

		m.msg_control = ctl.b;
		m.msg_controllen = sizeof(ctl.b);
		cm = CMSG_FIRSTHDR(&m);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &pass, sizeof(int));
	}
	CHECK(sendmsg(fd, &m, MSG_NOSIGNAL) == (ssize_t)len);
}

/* ---- the API ---- */

TEST(api_round_trip_poll_and_a_truncated_read_counted)
{
	struct daemon *d = single(NULL);
	struct ovmc_client *c = client_of(d);
	int fd = session(c, "API");
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char big[100], small[10];

	CHECK_EQ(poll(&p, 1, 100), 0);
	memset(big, 'x', sizeof(big));
	CHECK_EQ(ovmc_client_write(c, fd, big, sizeof(big)), sizeof(big));
	CHECK_EQ(poll(&p, 1, 5000), 1);
	CHECK(p.revents & POLLIN);
	CHECK_EQ(ovmc_client_read(c, fd, small, sizeof(small)), sizeof(small));
	CHECK_EQ(poll(&p, 1, 100), 0);
	ctl_wait(d, "status", "truncated-reads 1 truncated-bytes 90 ", 5000);
	CHECK(ovmc_client_owns(c, fd));
	CHECK(!ovmc_client_owns(c, STDIN_FILENO));
	close(fd);
	ctl_wait(d, "status", "0 open files", 5000);
}

TEST(api_errors_as_the_device)
{
	struct daemon *d = single(NULL);
	struct ovmc_client *c = client_of(d);
	uint8_t id[OVMC_CLIENT_HMC_ID_LEN] = "ERRORS";
	struct pollfd p = {.events = POLLIN};
	char buf[4097];
	int fd, nb;

	wait_ready(c);
	fd = ovmc_client_open(c, 0);
	CHECK(fd >= 0);
	CHECK_EQ(ovmc_client_read(c, fd, buf, 16), -EIO);
	CHECK_EQ(ovmc_client_write(c, fd, buf, 16), -EIO);
	CHECK_EQ(ovmc_client_write(c, fd, buf, 0), -EIO);
	CHECK_EQ(ovmc_client_read(c, fd, buf, 0), 0);
	CHECK_EQ(ovmc_client_read(c, fd, buf, 4097), -EINVAL);
	CHECK_EQ(ovmc_client_set_hmc_id(c, fd, NULL), -EFAULT);
	CHECK_EQ(ovmc_client_set_hmc_id(c, fd, id), 0);
	CHECK_EQ(ovmc_client_set_hmc_id(c, fd, id), -EIO);
	close(fd);
	fd = session(c, "ERRORS2");
	nb = ovmc_client_open(c, O_NONBLOCK);
	CHECK(nb >= 0);
	CHECK_EQ(ovmc_client_read(c, nb, buf, 16), -EIO);
	CHECK_EQ(ovmc_client_set_hmc_id(c, nb, id), -EBUSY); /* one HMC connection */
	close(nb);
	CHECK_EQ(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	CHECK_EQ(ovmc_client_read(c, fd, buf, 16), -EAGAIN);
	CHECK_EQ(ovmc_client_write(c, fd, NULL, 16), -EFAULT);
	CHECK_EQ(ovmc_client_write(c, fd, "kept", 4), 4);
	p.fd = fd;
	CHECK_EQ(poll(&p, 1, 5000), 1);
	CHECK_EQ(ovmc_client_read(c, fd, NULL, 16), -EFAULT);
	CHECK_EQ(ovmc_client_read(c, fd, buf, 16), 4);
	CHECK_MEM(buf, "kept", 4);
	close(fd);
}

TEST(api_open_enoent_without_a_socket_enxio_without_a_daemon)
{
	struct daemon *d = new_daemon(NULL);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct ovmc_client *c;
	char longer[200];
	int s;

	CHECK_EQ(ovmc_client_new("", &c), -EINVAL);
	memset(longer, 'a', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	CHECK_EQ(ovmc_client_new(longer, &c), -ENAMETOOLONG);
	c = client_of(d);
	CHECK_EQ(ovmc_client_open(c, 0), -ENOENT);
	/* A socket nobody listens on: a daemon that died. */
	s = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%.100s", d->sock);
	CHECK_EQ(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(s);
	CHECK_EQ(ovmc_client_open(c, 0), -ENXIO);
}

TEST(api_forked_child_uses_the_same_file_on_its_own_connection)
{
	struct daemon *d = single(NULL);
	struct ovmc_client *c = client_of(d);
	int fd = session(c, "FORK");
	char buf[32];
	int status;
	pid_t pid = ovmc_test_fork();

	if (pid == 0) {
		struct ovmc_client_query q;

		_exit(ovmc_client_query(c, &q) != 0 || q.state != 3 ||
		      ovmc_client_write(c, fd, "child", 5) != 5);
	}
	CHECK(pid > 0);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK_EQ(ovmc_client_read(c, fd, buf, sizeof(buf)), 5);
	CHECK_MEM(buf, "child", 5);
	ctl_wait(d, "status", "control 2 ", 5000);
	close(fd);
}

/* ---- the daemon's side ---- */

TEST(socket_mode_follows_the_mode_option_and_sigterm_removes_it)
{
	struct daemon *d = single(ARGS("--mode", "0640"));
	struct stat st;

	CHECK_EQ(stat(d->sock, &st), 0);
	CHECK(S_ISSOCK(st.st_mode));
	CHECK_EQ(st.st_mode & 07777, 0640);
	CHECK_EQ(st.st_uid, geteuid());
	stop_daemon(d, SIGTERM);
	CHECK(!exists(d->sock));
}

TEST(stale_socket_replaced_one_served_by_another_daemon_refused)
{
	struct daemon *d = new_daemon(NULL);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int s = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	size_t from;
	int status;
	pid_t pid;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%.100s", d->sock);
	CHECK_EQ(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(s);
	d->sock_only = true;
	spawn_prog(d, OPENVMC_BIN, NULL);
	CHECK(log_has(d, 0, "replaced the stale socket"));
	from = log_size(d);
	pid = ovmc_test_fork();
	if (pid == 0) {
		int fd = open(d->log, O_WRONLY | O_APPEND | O_CLOEXEC);

		if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
			_exit(127);
		execl(OPENVMC_BIN, OPENVMC_BIN, "--no-device", d->dir, (char *)NULL);
		_exit(127);
	}
	status = wait_child(pid, STOP_TIMEOUT_MS);
	CHECK(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 1);
	CHECK(log_has(d, from, "is served by another daemon"));
	CHECK(exists(d->sock));
}

TEST(garbage_and_oversized_records_drop_the_connection_counted_and_logged)
{
	struct daemon *d = single(NULL);
	struct ovmc_sess_req hello = {.hdr = OVMC_SESS_HDR(OVMC_SESS_HELLO_CTL)};
	static char big[OVMC_SESS_MAX_REQ + 64];
	int fd = raw_connect(d);
	char junk[5] = "junk";

	CHECK(send(fd, junk, sizeof(junk), 0) == sizeof(junk));
	CHECK(closed_by_daemon(fd, 5000));
	close(fd);
	fd = raw_connect(d);
	CHECK(send(fd, &hello, sizeof(hello), 0) == sizeof(hello));
	CHECK(recv(fd, big, sizeof(struct ovmc_sess_reply), 0) ==
	      (ssize_t)sizeof(struct ovmc_sess_reply));
	memcpy(big, &hello, sizeof(hello));
	CHECK(send(fd, big, sizeof(big), 0) == sizeof(big));
	CHECK(closed_by_daemon(fd, 5000));
	close(fd);
	ctl_wait(d, "status", "protocol-errors 2 ", 5000);
	/* One line a second: the second error is counted, its line held back. */
	CHECK(log_has(d, 0, "no valid HELLO"));
}

TEST(silent_connection_dropped_after_its_deadline)
{
	struct daemon *d = single(NULL);
	int fd = raw_connect(d);

	CHECK(closed_by_daemon(fd, 15000));
	close(fd);
	ctl_wait(d, "status", "timed-out 1 ", 5000);
	CHECK(log_has(d, 0, "said nothing"));
}

TEST(file_claimed_twice_or_without_its_socket_refused)
{
	struct daemon *d = single(NULL);
	struct ovmc_client *c = client_of(d);
	struct ovmc_sess_req hello = {.hdr = OVMC_SESS_HDR(OVMC_SESS_HELLO_DATA)};
	int file = ovmc_client_open(c, 0);
	char junk[8];
	int fd;

	CHECK(file >= 0);
	fd = raw_connect(d);
	send_with_fd(fd, &hello, sizeof(hello), -1);
	CHECK(closed_by_daemon(fd, 5000));
	close(fd);
	/* Another connection naming a file that already has one. */
	fd = raw_connect(d);
	send_with_fd(fd, &hello, sizeof(hello), file);
	CHECK(closed_by_daemon(fd, 5000));
	close(fd);
	CHECK(log_has(d, 0, "HELLO_DATA without its socket"));
	ctl_wait(d, "status", "protocol-errors 2 ", 5000);
	ctl_wait(d, "status", "1 open file\n", 5000);
	/* The file kept its own connection. */
	CHECK_EQ(ovmc_client_read(c, file, junk, sizeof(junk)), -EIO);
	close(file);
}

TEST(acknowledgement_of_nothing_drops_the_file)
{
	struct daemon *d = single(NULL);
	struct ovmc_client *c = client_of(d);
	struct ovmc_sess_ack ack = {.hdr = OVMC_SESS_HDR(OVMC_SESS_ACK), .taken = 1, .len = 1};
	int fd = session(c, "ACK");
	char buf[8];

	CHECK(send(fd, &ack, sizeof(ack), 0) == sizeof(ack));
	/* The file is gone: the reader sees its end, as after a reset. */
	CHECK_EQ(ovmc_client_read(c, fd, buf, sizeof(buf)), -EBADFD);
	CHECK(log_has(d, 0, "acknowledgement of nothing"));
	close(fd);
}

#define FLOOD 300

TEST(connections_beyond_the_limit_refused_then_served_again)
{
	struct daemon *d = single(NULL);
	struct ovmc_client *c = client_of(d);
	int fds[FLOOD], fd;

	for (int i = 0; i < FLOOD; i++)
		fds[i] = raw_connect(d);
	ctl_wait(d, "status", "refused-full ", 5000);
	ctl_wait(d, "status", "256 connections", 5000);
	CHECK(log_has(d, 0, "connections open (the limit)"));
	for (int i = 0; i < FLOOD; i++)
		close(fds[i]);
	ctl_wait(d, "status", " 0 connections", 5000);
	wait_ready(c);
	fd = ovmc_client_open(c, 0);
	CHECK(fd >= 0);
	close(fd);
}
