// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The two-daemon setup: the real openvmc-hvd (the emulated hypervisor) and
 * the real openvmcd (the driver serving its device file through FUSE) in
 * separate processes, attached over the cross-process platform
 * (docs/xproc.md). Applications are devclient runs (device ABI only) and
 * the errnos are those of the Linux driver, as in device_test.c; what only
 * two processes can show is tested here: either daemon going away and
 * coming back, the socket's access checks, daemon mode and capture.
 *
 * Every daemon lives in its own fresh directory under /tmp and is always
 * cleaned up (killed by pid, mount detached, files removed) whatever the
 * outcome; on a failure the logs are printed. Needs root and /dev/fuse.
 */
#include "abi_checks.h"
#include "fixture.h"
#include "harness.h"

#include <openvmc/capture.h>
#include <openvmc/xproc.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef HVD_BIN
#error HVD_BIN must name the openvmc-hvd program
#endif
#ifndef OPENVMCD_BIN
#error OPENVMCD_BIN must name the openvmcd program
#endif

#define NOBODY 65534
/* Short, so that re-attachment is quick (the default 500 ms is used once). */
#define RETRY_MS "50"
#define REATTACH_MS 10000

/* Files a test adds to a daemon's directory, removed once it is stopped. */
struct extra_files {
	struct daemon *d;
	char path[4][160];
	unsigned n;
};

static void start_hvd(struct hvd *h, const char *const *extra)
{
	spawn_hvd(h, HVD_BIN, extra);
}

static struct hvd *hvd(const char *const *extra)
{
	struct hvd *h = new_hvd();

	start_hvd(h, extra);
	return h;
}

/* (Re)start openvmcd in the foreground on d's device, attached to h. */
static void start_drv(struct daemon *d, const struct hvd *h, const char *const *extra)
{
	const char *args[28] = {"--foreground", "--socket", h->sock, "--retry-ms", RETRY_MS};
	int n = 5;

	for (; extra && *extra && n < 27; extra++)
		args[n++] = *extra;
	args[n] = NULL;
	spawn_prog(d, OPENVMCD_BIN, args);
}

static struct daemon *drv(const struct hvd *h, const char *const *extra)
{
	struct daemon *d = new_daemon(NULL);

	start_drv(d, h, extra);
	return d;
}

/* Both daemons with their defaults; the driver's daemon. */
static struct daemon *pair(void)
{
	return drv(hvd(NULL), NULL);
}

static void extra_cleanup(void *arg)
{
	struct extra_files *x = arg;

	stop_daemon(x->d, SIGTERM);
	for (unsigned i = 0; i < x->n; i++)
		unlink(x->path[i]);
	free(x);
}

/* Name a file in d's directory, removed when the test ends. */
static const char *extra_file(struct extra_files **xp, struct daemon *d, const char *name)
{
	struct extra_files *x = *xp;

	if (!x) {
		x = calloc(1, sizeof(*x));
		if (!x)
			FAIL("out of memory");
		x->d = d;
		ovmc_test_defer(extra_cleanup, x);
		*xp = x;
	}
	if (x->n == sizeof(x->path) / sizeof(x->path[0]))
		FAIL("too many extra files");
	snprintf(x->path[x->n], sizeof(x->path[0]), "%s/%s", d->dir, name);
	return x->path[x->n++];
}

static void wait_log(const struct daemon *d, size_t from, const char *what, int ms)
{
	for (uint64_t end = now_ms() + (uint64_t)ms; !log_has(d, from, what); sleep_ms(10))
		if (now_ms() > end)
			FAIL("\"%s\" not in %s within %d ms", what, d->log, ms);
}

/* The exit status of a command run to its end with its output in d's log. */
static int run_cmd(const struct daemon *d, const char *const *argv, int ms)
{
	pid_t pid = ovmc_test_fork();
	int status;

	if (pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (pid == 0) {
		int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

		if (fd < 0 || dup2(fd, STDERR_FILENO) < 0 || dup2(fd, STDOUT_FILENO) < 0)
			_exit(127);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	status = wait_child(pid, ms);
	if (status < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		FAIL("%s still running after %d ms", argv[0], ms);
	}
	return status;
}

/* The pid a daemon wrote to its pid file, or 0. */
static pid_t read_pidfile(const char *path)
{
	FILE *f = fopen(path, "r");
	int pid = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%d", &pid) != 1 || pid < 0)
		pid = 0;
	fclose(f);
	return pid;
}

/*
 * A backgrounded daemon is reparented when its starting parent exits; as
 * subreaper the test gets it, so stop_daemon() can wait for it.
 */
static void adopt_orphans(void)
{
	CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
}

/* Run `fn` as uid/gid nobody in a child; returns its exit code. */
static int as_nobody(int (*fn)(const struct hvd *), const struct hvd *h)
{
	pid_t pid = ovmc_test_fork();
	int status;

	if (pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (pid == 0) {
		pid_t parent = getppid();

		if (setgroups(0, NULL) || setresgid(NOBODY, NOBODY, NOBODY) ||
		    setresuid(NOBODY, NOBODY, NOBODY)) {
			perror("dropping to nobody");
			_exit(100);
		}
		/* A change of uid cleared the parent-death signal. */
		ovmc_test_die_with_parent(parent);
		_exit(fn(h));
	}
	status = wait_child(pid, CLIENT_TIMEOUT_MS);
	if (status < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		FAIL("the unprivileged child hung");
	}
	CHECK(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* A blocked reader on d's device; returns once its read() is parked in the daemon. */

/* ---- the programs themselves ---- */

TEST(help_and_version_of_both_programs)
{
	static const struct {
		const char *bin, *version, *usage, *option;
	} progs[] = {
		{HVD_BIN, "openvmc-hvd (openvmc) " OVMC_VERSION_STRING "\n",
		 "Usage: openvmc-hvd [options]", "--socket PATH"},
		{OPENVMCD_BIN, "openvmcd (openvmc) " OVMC_VERSION_STRING "\n",
		 "Usage: openvmcd [options] DIR", "--retry-ms"},
	};

	for (size_t p = 0; p < sizeof(progs) / sizeof(progs[0]); p++) {
		for (int i = 0; i < 2; i++) {
			char out[8192];
			size_t len = 0;
			int fds[2], status;
			pid_t pid;
			ssize_t n;

			CHECK(pipe2(fds, O_CLOEXEC) == 0);
			pid = ovmc_test_fork();
			CHECK(pid >= 0);
			if (pid == 0) {
				dup2(fds[1], STDOUT_FILENO);
				execl(progs[p].bin, progs[p].bin, i ? "--version" : "--help",
				      (char *)NULL);
				_exit(127);
			}
			close(fds[1]);
			while (len + 1 < sizeof(out) &&
			       (n = read(fds[0], out + len, sizeof(out) - 1 - len)) > 0)
				len += (size_t)n;
			close(fds[0]);
			out[len] = '\0';
			status = wait_child(pid, 5000);
			CHECK(status >= 0 && WIFEXITED(status));
			CHECK_EQ(WEXITSTATUS(status), 0);
			if (i) {
				CHECK(strcmp(out, progs[p].version) == 0);
			} else {
				CHECK(strncmp(out, progs[p].usage, strlen(progs[p].usage)) == 0);
				CHECK(strstr(out, progs[p].option));
				CHECK(strstr(out, "--pidfile") && strstr(out, "--capture"));
			}
		}
	}
}

/* ---- the device ABI across the two daemons ---- */

TEST(echo_round_trips_every_size_1_to_4096)
{
	abi_echo_sizes(pair());
}

TEST(sethmcid_then_write_until_the_open_completes)
{
	abi_open_then_write(pair());
}

TEST(nonblocking_read_with_nothing_queued_eagain)
{
	abi_nonblock_eagain(pair());
}

TEST(poll_reports_pollin_only_while_a_message_is_queued)
{
	abi_poll_pollin(pair());
}

TEST(blocking_read_completes_when_the_hypervisor_sends)
{
	struct hvd *h = hvd(NULL);
	struct daemon *d = drv(h, NULL);

	abi_blocking_read_gets_hv_message(d, h->d);
}

TEST(two_applications_on_two_sessions_isolated)
{
	struct hvd *h = hvd(ARGS("--hmcs", "2"));
	struct daemon *d = drv(h, ARGS("--hmcs", "2"));

	abi_two_sessions(d, h->d);
}

TEST(client_killed_while_blocked_in_read_closes_its_session)
{
	struct hvd *h = hvd(NULL);
	struct daemon *d = drv(h, NULL);
	struct client *c = blocked_reader(d, h->d, "HMC-KILLED");
	char out[4096];

	kill(c->pid, SIGKILL);
	/* Not stuck in D state: the daemon answered the interrupt. */
	CHECK(wait_child(c->pid, 5000) >= 0);
	c->pid = 0;
	ctl_wait(h->d, "sessions", "partition 1 index 0: closed", 5000);
	ctl(h->d, "status", out, sizeof(out));
	CHECK(strstr(out, "sessions-opened 1 sessions-closed 1 "));
	CLIENT("echo", d->path, "HMC-AFTER", "1", "16");
}

TEST(write_while_another_thread_reads_the_same_fd)
{
	abi_threads(pair());
}

TEST(errno_cases_of_the_single_daemon_also_hold)
{
	struct hvd *h = hvd(ARGS("--hmcs", "1"));
	struct daemon *d = drv(h, ARGS("--hmcs", "1"));
	char out[1024];

	CLIENT_OUT(out, "mtu", d->path, "HMC-MTU", "4096");
	CHECK(strstr(out, "write of MTU+1: EIO"));
	CHECK(strstr(out, "read with MTU+1: EINVAL"));
	CHECK(strstr(out, "MTU round trip ok"));
	CLIENT_OUT(out, "nosession", d->path);
	CHECK(strstr(out, "write before SETHMCID: EIO"));
	CHECK(strstr(out, "read before SETHMCID: EIO"));
	CLIENT_OUT(out, "twice", d->path, "HMC-TWICE");
	CHECK(strstr(out, "second SETHMCID: EIO"));
	CLIENT_OUT(out, "busy", d->path, "HMC-ONE", "HMC-TWO");
	CHECK(strstr(out, "SETHMCID on a second fd: EBUSY"));
	CLIENT_OUT(out, "badioctl", d->path);
	CHECK(strstr(out, "ioctl _IO(0xCC, 3): EINVAL"));
	CHECK(strstr(out, "ioctl _IOR(0xCC, 0x7f, int): EINVAL"));
	CHECK(strstr(out, "ioctl TCGETS-like 0x5401: EINVAL"));
	CHECK(strstr(out, "foreign QUERY: state 3"));
}

TEST(bad_pointers_efault_and_nothing_lost)
{
	abi_efault(pair());
}

TEST(blocking_read_interrupted_by_a_restartable_signal_eintr)
{
	abi_eintr(pair());
}

TEST(every_buffer_in_flight_ebusy_until_a_read_frees_one)
{
	abi_exhaust_ebusy(pair());
}

TEST(device_file_mode_defaults_to_0600)
{
	abi_mode_0600(pair());
}

/* ---- the hypervisor going away under a connected driver ---- */

TEST(pollout_when_open_then_pollhup_ebadfd_eio_after_openvmc_hvd_restarts)
{
	struct hvd *h = hvd(NULL);
	struct daemon *d = drv(h, NULL);
	struct client *c = SPAWN("hup", d->path, "HMC-HUP");
	size_t from = log_size(d);

	client_expect(c, "poll after the open: POLLOUT POLLWRNORM\nopen\n", READY_TIMEOUT_MS);
	stop_daemon(h->d, SIGTERM);
	client_expect(c, "poll after the reset: POLLHUP\n", 5000);
	start_hvd(h, NULL);
	wait_log(d, from, "re-attached to the hypervisor at", REATTACH_MS);
	ctl_wait(d, "status", "driver: state ready (3), drc", REATTACH_MS);
	close(c->in);
	c->in = -1;
	client_expect(c, "read after the hypervisor restarted: EBADFD", 5000);
	client_expect(c, "write after the hypervisor restarted: EIO", 5000);
	client_expect(c, "poll after the restart: POLLHUP\n", 5000);
	CHECK_EQ(client_wait(c, 5000), 0);
}

/*
 * Stop the hypervisor daemon with `sig` under a blocked reader, start it
 * again on the same socket: the reader hears EBADFD, openvmcd attaches
 * again by itself and a new session echoes.
 */
static void hvd_restart_under_a_reader(int sig)
{
	struct hvd *h = hvd(NULL);
	struct daemon *d = drv(h, NULL);
	struct client *c = blocked_reader(d, h->d, "HMC-HV-GONE");
	size_t hv_from, drv_from = log_size(d);
	char out[512];

	stop_daemon(h->d, sig);
	client_expect(c, "read EBADFD", 5000);
	CHECK_EQ(client_wait(c, 5000), 1);
	wait_log(d, drv_from, "gone; connections reset, re-attaching", 5000);
	/* Still serving, with no channel: the state a probe starts from. */
	ctl_wait(d, "status", "driver: state initial (0), platform lost", 5000);
	CHECK(mounted(d->path));
	CLIENT_OUT(out, "query", d->path);
	CHECK(strstr(out, "state 0 "));
	CHECK_EQ(sig == SIGKILL, exists(h->sock));

	hv_from = log_size(h->d);
	start_hvd(h, NULL);
	if (sig == SIGKILL)
		CHECK(log_has(h->d, hv_from, "removing stale socket"));
	wait_log(d, drv_from, "re-attached to the hypervisor at", REATTACH_MS);
	ctl_wait(d, "status", "driver: state ready (3), drc", REATTACH_MS);
	CLIENT_OUT(out, "echo", d->path, "HMC-AFTER-RESTART", "1", "64");
	CHECK(strstr(out, "echoed 1..64"));
	ctl(h->d, "status", out, sizeof(out));
	CHECK(strstr(out, "hv: partition 1 state ready"));
}

TEST(hvd_sigterm_gives_a_blocked_reader_ebadfd_and_openvmcd_reattaches)
{
	hvd_restart_under_a_reader(SIGTERM);
}

TEST(hvd_sigkill_gives_a_blocked_reader_ebadfd_and_openvmcd_reattaches)
{
	hvd_restart_under_a_reader(SIGKILL);
}

TEST(hv_control_restart_gives_a_blocked_reader_ebadfd)
{
	struct hvd *h = hvd(NULL);
	struct daemon *d = drv(h, NULL);
	struct client *c = blocked_reader(d, h->d, "HMC-HV-RESET");
	char out[512];

	ctl(h->d, "restart", out, sizeof(out));
	CHECK(strncmp(out, "ok\n", 3) == 0);
	client_expect(c, "read EBADFD", 5000);
	CHECK_EQ(client_wait(c, 5000), 1);
	/* An in-band reset: the same partition, no re-attachment. */
	CLIENT("echo", d->path, "HMC-AFTER-RESET", "1", "16");
	CHECK(!log_has(d, 0, "re-attached"));
}

TEST(five_hvd_restarts_leak_no_descriptor_in_openvmcd)
{
	struct hvd *h = hvd(NULL);
	struct daemon *d = drv(h, NULL);
	int fds;

	CLIENT("echo", d->path, "HMC-FDS", "1", "8");
	fds = fd_count(d->pid);
	for (int i = 0; i < 5; i++) {
		size_t from = log_size(d);
		char id[32];

		stop_daemon(h->d, i % 2 ? SIGKILL : SIGTERM);
		wait_log(d, from, "connections reset, re-attaching", 5000);
		start_hvd(h, NULL);
		wait_log(d, from, "re-attached to the hypervisor at", REATTACH_MS);
		snprintf(id, sizeof(id), "HMC-FDS-%d", i);
		CLIENT("echo", d->path, id, "1", "8");
		if (fd_count(d->pid) != fds)
			FAIL("openvmcd had %d descriptors, %d after restart %d", fds,
			     fd_count(d->pid), i + 1);
	}
}

/* ---- the driver going away ---- */

TEST(openvmcd_sigkill_seen_at_once_and_a_new_openvmcd_attaches)
{
	struct hvd *h = hvd(NULL);
	struct daemon *d = drv(h, NULL);
	struct client *c = SPAWN("session", d->path, "HMC-DRV-KILLED");
	size_t from;
	char out[4096];

	client_expect(c, "open", READY_TIMEOUT_MS);
	ctl_wait(h->d, "sessions", "partition 1 index 0: open", 5000);
	from = log_size(h->d);
	kill(d->pid, SIGKILL);
	CHECK(wait_child(d->pid, STOP_TIMEOUT_MS) >= 0);
	d->pid = 0;
	/* The daemon's watchdog child (openvmc-umount) takes the mount away. */
	for (uint64_t end = now_ms() + STOP_TIMEOUT_MS; mounted(d->path); sleep_ms(10))
		if (now_ms() > end)
			FAIL("%s still mounted after openvmcd was killed", d->path);
	/* The socket closed with the process: partner failed, at once. */
	wait_log(h->d, from, "xproc: partition 1: peer gone", 5000);
	ctl(h->d, "sessions", out, sizeof(out));
	CHECK(strcmp(out, "ok\nno VMC\n") == 0);
	ctl(h->d, "status", out, sizeof(out));
	CHECK(!strstr(out, "hv: partition"));

	/* On the same path: the dead instance's mount and sockets are replaced. */
	start_drv(d, h, NULL);
	CLIENT_OUT(out, "echo", d->path, "HMC-NEW-DRIVER", "1", "32");
	CHECK(strstr(out, "echoed 1..32"));
	ctl(h->d, "status", out, sizeof(out));
	CHECK(strstr(out, "hv: partition 2 state ready"));
	CHECK(!strstr(out, "hv: partition 1 "));
}

TEST(five_openvmcd_restarts_leak_no_descriptor_in_hvd)
{
	struct hvd *h = hvd(NULL);
	struct daemon *d = drv(h, NULL);
	int fds;

	CLIENT("echo", d->path, "HMC-HV-FDS", "1", "8");
	fds = fd_count(h->d->pid);
	for (int i = 0; i < 5; i++) {
		size_t from = log_size(h->d);
		char id[32], gone[64];

		/* Killed (partner failed) and stopped (deregistered) in turn. */
		stop_daemon(d, i % 2 ? SIGTERM : SIGKILL);
		snprintf(gone, sizeof(gone), "xproc: partition %d%s", i + 1,
			 i % 2 ? " detached" : ": peer gone");
		wait_log(h->d, from, gone, 5000);
		ctl_wait(h->d, "sessions", "no VMC", 5000);
		start_drv(d, h, NULL);
		snprintf(id, sizeof(id), "HMC-HV-FDS-%d", i);
		CLIENT("echo", d->path, id, "1", "8");
		if (fd_count(h->d->pid) != fds)
			FAIL("openvmc-hvd had %d descriptors, %d after restart %d", fds,
			     fd_count(h->d->pid), i + 1);
	}
}

TEST(openvmcd_started_first_waits_for_the_hypervisor)
{
	struct hvd *h = new_hvd();
	struct daemon *d = new_daemon(NULL);
	const char *argv[] = {OPENVMCD_BIN, "--foreground", "--socket", h->sock, "--retry-ms",
			      RETRY_MS, "--control", d->ctl, d->dir, NULL};
	char ready[192], out[512];

	snprintf(ready, sizeof(ready), "device ready at %s", d->path);
	spawn_argv(d, argv, ready);
	wait_log(d, 0, "not there", REATTACH_MS);
	/* Served meanwhile, like a kernel driver without its VMC yet. */
	CHECK(mounted(d->path));
	ctl_wait(d, "status", "platform lost", 5000);
	CLIENT_OUT(out, "query", d->path);
	CHECK(strstr(out, "have_vmc 0 state 0"));
	CLIENT_OUT(out, "nosession", d->path);
	CHECK(strstr(out, "write before SETHMCID: EIO"));
	CHECK(waitpid(d->pid, NULL, WNOHANG) == 0);
	start_hvd(h, NULL);
	wait_log(d, 0, "attached to the hypervisor at", REATTACH_MS);
	CLIENT("wait-ready", d->path);
	CLIENT_OUT(out, "query", d->path);
	CHECK(strstr(out, "have_vmc 1 state 3 drc 0x9"));
	CLIENT_OUT(out, "echo", d->path, "HMC-LATE-HV", "1", "32");
	CHECK(strstr(out, "echoed 1..32"));
}

TEST(openvmcd_waiting_for_the_hypervisor_stops_on_sigterm)
{
	struct hvd *h = new_hvd();
	struct daemon *d = new_daemon(NULL);
	const char *argv[] = {OPENVMCD_BIN, "--foreground", "--socket", h->sock, "--control",
			      d->ctl, d->dir, NULL};
	pid_t pid;
	int status;

	spawn_argv(d, argv, "not there");
	CHECK(mounted(d->path));
	pid = d->pid;
	kill(pid, SIGTERM);
	status = wait_child(pid, STOP_TIMEOUT_MS);
	CHECK(status >= 0);
	d->pid = 0;
	CHECK(WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), 0);
	CHECK(!exists(d->path));
	CHECK(!exists(d->ctl));
}

/* ---- who may attach ---- */

/* connect() to the socket as the caller; 0 or errno. */
static int connect_errno(const struct hvd *h)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	int err = 0;

	if (fd < 0 || strlen(h->sock) >= sizeof(sa.sun_path))
		return EINVAL;
	memcpy(sa.sun_path, h->sock, strlen(h->sock));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		err = errno;
	close(fd);
	return err;
}

static int attach_refused(const struct hvd *h)
{
	struct ovmc_platform *p = NULL;
	int rc = ovmc_xproc_connect(h->sock, 1 << 17, &p);

	if (rc != -EACCES) {
		fprintf(stderr, "ovmc_xproc_connect as nobody: %d, expected -EACCES\n", rc);
		return 103;
	}
	return 0;
}

static int connect_refused(const struct hvd *h)
{
	int err = connect_errno(h);

	if (err != EACCES) {
		fprintf(stderr, "connect as nobody: %s, expected EACCES\n", strerrorname_np(err));
		return 102;
	}
	return attach_refused(h);
}

TEST(socket_directory_private_and_other_users_cannot_connect)
{
	struct hvd *h = hvd(NULL);
	struct stat st;

	CHECK(stat(h->sockdir, &st) == 0);
	CHECK(S_ISDIR(st.st_mode));
	CHECK_EQ(st.st_mode & 07777, 0700);
	CHECK_EQ(st.st_uid, geteuid());
	CHECK_EQ(as_nobody(connect_refused, h), 0);
	/* Turned away by the directory: the server never saw the attempt. */
	CHECK(!log_has(h->d, 0, "refused"));
	/* Root still attaches. */
	CLIENT("echo", drv(h, NULL)->path, "HMC-ROOT", "1", "8");
}

/* The socket is reachable, yet attaching is refused. */
static int reach_but_refused(const struct hvd *h)
{
	int err = connect_errno(h);

	if (err) {
		fprintf(stderr, "connect as nobody: %s, expected success\n", strerrorname_np(err));
		return 104;
	}
	return attach_refused(h);
}

/* Past the directory (opened up by hand), the peer credentials still say no. */
TEST(peer_of_another_uid_refused_by_its_credentials)
{
	struct hvd *h = hvd(NULL);
	size_t from = log_size(h->d);
	char refused[64], out[1024];

	CHECK(chmod(h->d->dir, 0711) == 0);
	CHECK(chmod(h->sockdir, 0711) == 0);
	CHECK(chmod(h->sock, 0777) == 0);
	CHECK_EQ(as_nobody(reach_but_refused, h), 0);
	snprintf(refused, sizeof(refused), "of uid %d refused", NOBODY);
	wait_log(h->d, from, refused, 5000);
	ctl(h->d, "status", out, sizeof(out));
	CHECK(strstr(out, "machine: hcalls 0 "));
	CLIENT("echo", drv(h, NULL)->path, "HMC-ROOT", "1", "8");
}

/* ---- daemon mode ---- */

TEST(hvd_daemon_mode_ready_on_return_and_clean_on_sigterm)
{
	struct hvd *h = new_hvd();
	struct extra_files *x = NULL;
	const char *pidfile = extra_file(&x, h->d, "hvd.pid");
	const char *argv[] = {HVD_BIN, "--socket", h->sock, "--control", h->d->ctl,
			      "--pidfile", pidfile, NULL};
	char out[1024];
	int status;

	adopt_orphans();
	status = run_cmd(h->d, argv, READY_TIMEOUT_MS);
	/* Known before any check, so that the cleanup can stop it. */
	h->d->pid = read_pidfile(pidfile);
	CHECK(WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), 0);
	/* Ready the moment the command returns: nothing to wait for. */
	CHECK(exists(h->sock));
	CHECK(exists(h->d->ctl));
	CHECK(h->d->pid > 0 && kill(h->d->pid, 0) == 0);
	CHECK(waitpid(h->d->pid, NULL, WNOHANG) == 0); /* adopted, still running */
	ctl(h->d, "status", out, sizeof(out));
	CHECK(strncmp(out, "ok\nmachine:", 11) == 0);
	CLIENT("echo", drv(h, NULL)->path, "HMC-DAEMON-HV", "1", "16");

	kill(h->d->pid, SIGTERM);
	status = wait_child(h->d->pid, STOP_TIMEOUT_MS);
	CHECK(status >= 0);
	h->d->pid = 0;
	CHECK(WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), 0);
	CHECK(!exists(h->sock));
	CHECK(!exists(h->d->ctl));
	CHECK(!exists(pidfile));
}

TEST(openvmcd_daemon_mode_ready_on_return_and_clean_on_sigterm)
{
	struct hvd *h = hvd(NULL);
	struct daemon *d = new_daemon(NULL);
	struct extra_files *x = NULL;
	const char *pidfile = extra_file(&x, d, "openvmcd.pid");
	const char *argv[] = {OPENVMCD_BIN, "--socket", h->sock, "--control", d->ctl,
			      "--pidfile", pidfile, d->dir, NULL};
	char out[512];
	int status;

	adopt_orphans();
	status = run_cmd(d, argv, READY_TIMEOUT_MS);
	d->pid = read_pidfile(pidfile);
	CHECK(WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), 0);
	CHECK(mounted(d->path));
	CHECK(exists(d->ctl));
	CHECK(d->pid > 0 && kill(d->pid, 0) == 0);
	CHECK(waitpid(d->pid, NULL, WNOHANG) == 0);
	CLIENT_OUT(out, "echo", d->path, "HMC-DAEMON-DRV", "1", "16");
	CHECK(strstr(out, "echoed 1..16"));

	kill(d->pid, SIGTERM);
	status = wait_child(d->pid, STOP_TIMEOUT_MS);
	CHECK(status >= 0);
	d->pid = 0;
	CHECK(WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), 0);
	CHECK(!mounted(d->path));
	CHECK(!exists(d->path));
	CHECK(!exists(d->ctl));
	CHECK(!exists(pidfile));
	/* It detached cleanly: the hypervisor saw a deregistration. */
	wait_log(h->d, 0, "xproc: partition 1 detached", 5000);
}

/* ---- capture ---- */

#define MAX_ENTRIES 4096

/* One side's capture: its CRQ entries per direction, in order. */
struct capture_log {
	unsigned records, rdma, wrong_side;
	unsigned n[2]; /* by enum ovmc_capture_dir */
	uint8_t entry[2][MAX_ENTRIES][16];
};

static void read_capture(const char *path, enum ovmc_capture_side side, struct capture_log *l)
{
	static const uint8_t shb[4] = {0x0a, 0x0d, 0x0d, 0x0a};
	struct ovmc_capture_reader *r;
	struct ovmc_capture_record rec;
	uint8_t head[4];
	FILE *f = fopen(path, "rb");
	size_t got;
	int rc;

	if (!f)
		FAIL("capture %s: %s", path, strerror(errno));
	got = fread(head, 1, sizeof(head), f);
	fclose(f);
	CHECK_EQ(got, sizeof(head));
	CHECK_MEM(head, shb, sizeof(shb));
	memset(l, 0, sizeof(*l));
	CHECK_EQ(ovmc_capture_reader_open(path, &r), 0);
	while ((rc = ovmc_capture_read(r, &rec)) == 1) {
		l->records++;
		if (rec.side != side)
			l->wrong_side++;
		if (rec.kind == OVMC_CAPTURE_RDMA) {
			l->rdma++;
		} else if (rec.kind == OVMC_CAPTURE_CRQ && rec.dir <= OVMC_CAPTURE_TO_PARTITION &&
			   l->n[rec.dir] < MAX_ENTRIES) {
			memcpy(l->entry[rec.dir][l->n[rec.dir]++], rec.entry, 16);
		}
	}
	ovmc_capture_reader_close(r);
	CHECK_EQ(rc, 0);
}

TEST(both_daemons_capture_to_pcapng)
{
	static struct capture_log hl, dl;
	struct hvd *h = new_hvd();
	struct extra_files *hx = NULL, *dx = NULL;
	const char *hv_cap = extra_file(&hx, h->d, "hv.pcapng");
	struct daemon *d;
	const char *drv_cap;
	unsigned k = 0;
	char out[512];

	start_hvd(h, ARGS("--capture", hv_cap));
	d = new_daemon(NULL);
	drv_cap = extra_file(&dx, d, "drv.pcapng");
	start_drv(d, h, ARGS("--capture", drv_cap));
	CLIENT_OUT(out, "echo", d->path, "HMC-CAPTURE", "1", "100");
	CHECK(strstr(out, "echoed 1..100"));
	stop_daemon(d, SIGTERM);
	stop_daemon(h->d, SIGTERM);

	read_capture(hv_cap, OVMC_CAPTURE_HYPERVISOR, &hl);
	read_capture(drv_cap, OVMC_CAPTURE_PARTITION, &dl);
	CHECK_EQ(hl.wrong_side, 0);
	CHECK_EQ(dl.wrong_side, 0);
	/* 100 messages each way: a CRQ entry and an RDMA transfer each. */
	CHECK(hl.rdma >= 200);
	CHECK(dl.n[OVMC_CAPTURE_TO_HV] >= 100 && dl.n[OVMC_CAPTURE_TO_PARTITION] >= 100);
	/*
	 * One exchange seen from both ends. The hypervisor saw everything the
	 * partition sent, in order, plus the platform's transport events
	 * (0xFF) on its own queue; the partition saw what the hypervisor sent
	 * up to its shutdown.
	 */
	for (unsigned i = 0; i < hl.n[OVMC_CAPTURE_TO_HV]; i++) {
		const uint8_t *e = hl.entry[OVMC_CAPTURE_TO_HV][i];

		if (e[0] == 0xff)
			continue;
		CHECK(k < dl.n[OVMC_CAPTURE_TO_HV]);
		CHECK_MEM(e, dl.entry[OVMC_CAPTURE_TO_HV][k], 16);
		k++;
	}
	CHECK_EQ(k, dl.n[OVMC_CAPTURE_TO_HV]);
	CHECK(dl.n[OVMC_CAPTURE_TO_PARTITION] <= hl.n[OVMC_CAPTURE_TO_PARTITION]);
	CHECK_MEM(dl.entry[OVMC_CAPTURE_TO_PARTITION], hl.entry[OVMC_CAPTURE_TO_PARTITION],
		  16 * dl.n[OVMC_CAPTURE_TO_PARTITION]);
}
