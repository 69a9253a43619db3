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
#include "abi_checks.h"
#include "fixture.h"
#include "harness.h"

#include <openvmc/common.h>
#include <openvmc/ibmvmc.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef OPENVMC_BIN
#error OPENVMC_BIN must name the openvmc program
#endif

static void spawn(struct daemon *d, const char *const *extra)
{
	spawn_prog(d, OPENVMC_BIN, extra);
}

/* Did the mount on `path` go away by itself (within a generous bound)? */
/* The kernel ends a dead daemon's connection once its last reference to
 * the FUSE fd goes; an io_uring's go after the process, asynchronously. */
static bool connection_dead_soon(const char *path)
{
	struct statfs sfs;

	for (uint64_t end = now_ms() + STOP_TIMEOUT_MS; now_ms() < end; sleep_ms(10))
		if (statfs(path, &sfs) != 0 && errno == ENOTCONN)
			return true;
	return false;
}

static bool unmounted_soon(const char *path)
{
	for (uint64_t end = now_ms() + STOP_TIMEOUT_MS; mounted(path); sleep_ms(10))
		if (now_ms() > end)
			return false;
	return true;
}

/* openvmc serving dir/ibmvmc, started with `extra` arguments. */
static struct daemon *start(const char *const *extra)
{
	struct daemon *d = new_daemon(NULL);

	spawn(d, extra);
	return d;
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
		pid = ovmc_test_fork();
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
			CHECK(strcmp(out, "openvmc (openvmc) " OVMC_VERSION_STRING "\n") == 0);
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

/*
 * devclient retries only EBUSY and fails on any other errno, so every
 * failed write before the first success was EBUSY. How many there are is
 * up to the race between the hypervisor's answer and the first write
 * (mostly none), so only the count's presence is checked;
 * every_buffer_in_flight_ebusy_until_a_read_frees_one gets EBUSY for sure.
 */
TEST(sethmcid_then_write_until_the_open_completes)
{
	abi_open_then_write(start(NULL));
}

TEST(echo_round_trips_every_size_1_to_4096)
{
	abi_echo_sizes(start(NULL));
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

TEST(sethmcid_before_the_channel_is_ready_eagain)
{
	struct daemon *d = start(ARGS("--no-vmc"));
	char out[512];

	CLIENT_OUT(out, "notready", d->path, "HMC-EARLY");
	CHECK(strstr(out, "SETHMCID before the channel is ready: EAGAIN"));
}

TEST(bad_pointers_efault_and_nothing_lost)
{
	abi_efault(start(NULL));
}

TEST(blocking_read_interrupted_by_a_restartable_signal_eintr)
{
	abi_eintr(start(NULL));
}

TEST(zero_lengths_and_a_short_read)
{
	struct daemon *d = start(NULL);
	char out[8192];

	CLIENT_OUT(out, "lengths", d->path, "HMC-LENGTHS");
	CHECK(strstr(out, "write of 0 bytes: 0, read of 0 bytes: 0"));
	CHECK(strstr(out, "read of 10 bytes of a 200-byte message: 10, the rest dropped"));
	ctl(d, "status", out, sizeof(out));
	CHECK(strstr(out, "truncated-reads 1 truncated-bytes 190 "));
}

TEST(every_buffer_in_flight_ebusy_until_a_read_frees_one)
{
	abi_exhaust_ebusy(start(NULL));
}

TEST(nonblocking_read_with_nothing_queued_eagain)
{
	abi_nonblock_eagain(start(NULL));
}

TEST(poll_reports_pollin_only_while_a_message_is_queued)
{
	abi_poll_pollin(start(NULL));
}

TEST(blocking_read_completes_when_the_hypervisor_sends)
{
	struct daemon *d = start(NULL);

	abi_blocking_read_gets_hv_message(d, d);
}

TEST(pollout_when_open_then_pollhup_ebadfd_eio_after_a_hypervisor_restart)
{
	struct daemon *d = start(NULL);
	struct client *c = SPAWN("hup", d->path, "HMC-HUP");
	char out[512];

	client_expect(c, "poll after the open: POLLOUT POLLWRNORM\nopen\n", READY_TIMEOUT_MS);
	ctl(d, "restart", out, sizeof(out));
	CHECK(strncmp(out, "ok\n", 3) == 0);
	client_expect(c, "poll after the reset: POLLHUP\n", 5000);
	ctl_wait(d, "status", "driver: state ready", 5000);
	close(c->in);
	c->in = -1;
	client_expect(c, "read after the hypervisor restarted: EBADFD", 5000);
	client_expect(c, "write after the hypervisor restarted: EIO", 5000);
	client_expect(c, "poll after the restart: POLLHUP\n", 5000);
	CHECK_EQ(client_wait(c, 5000), 0);
}

TEST(requestvmc_hcall_errors_map_to_errno)
{
	static const struct {
		const char *rc, *want;
	} cases[] = {
		{"H_FUNCTION", "EPERM"},  {"H_NOT_AVAILABLE", "EPERM"},
		{"H_RESOURCE", "ENODEV"}, {"H_PARAMETER", "EINVAL"},
		{"H_HARDWARE", "EIO"},	  {"H_BUSY", "EBUSY"},
		{"-99", "EIO"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct daemon *d = start(ARGS("--no-vmc", "--request-vmc-rc", cases[i].rc));
		struct client *c = SPAWN("requestvmc", d->path);
		char out[512], want[64];

		client_read(c, out, sizeof(out), CLIENT_TIMEOUT_MS);
		CHECK_EQ(client_wait(c, 5000), 1);
		snprintf(want, sizeof(want), "requestvmc %s\n", cases[i].want);
		if (!strstr(out, want))
			FAIL("H_REQUEST_VMC answering %s: \"%s\", expected \"%s\"", cases[i].rc,
			     out, want);
		stop_daemon(d, SIGTERM);
	}
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

	abi_two_sessions(d, d);
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
	abi_threads(start(NULL));
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

/* The first child of `pid`, 0 if none. */
static pid_t first_child(pid_t pid)
{
	char path[64];
	FILE *f;
	int child = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%d", &child) != 1)
		child = 0;
	fclose(f);
	return child;
}

/*
 * A daemon in its own pid namespace sees callers from outside as pid 0, so
 * process_vm_readv() cannot fetch the id: EFAULT, and the log says why.
 * unshare(1) ignores SIGTERM while it waits; if the test fails, its
 * --kill-child takes the daemon along when the cleanup kills it.
 */
TEST(sethmcid_from_another_pid_namespace_efault_with_a_clear_log)
{
	struct daemon *d = new_daemon(NULL);
	const char *argv[] = {"/usr/bin/unshare", "--pid", "--fork", "--kill-child=SIGTERM",
			      OPENVMC_BIN, d->dir, "--control", d->ctl, NULL};
	char ready[160], out[512];
	int status;

	snprintf(ready, sizeof(ready), "device ready at %s", d->path);
	spawn_argv(d, argv, ready);
	CLIENT_OUT(out, "foreign", d->path, "HMC-NS");
	CHECK(strstr(out, "SETHMCID from another pid namespace: EFAULT"));
	CHECK(log_has(d, 0, "the caller is in another pid namespace"));
	/* The refused open reserved nothing. */
	ctl_wait(d, "sessions", "index 0: closed", 5000);
	CHECK(kill(first_child(d->pid), SIGTERM) == 0);
	status = wait_child(d->pid, STOP_TIMEOUT_MS);
	CHECK(status >= 0);
	d->pid = 0;
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(!mounted(d->path));
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
	pid_t pid = ovmc_test_fork();
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

TEST(device_file_mode_defaults_to_0600)
{
	abi_mode_0600(start(NULL));
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
	pid = ovmc_test_fork();
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
	/* The daemon's watchdog child takes the mount away. */
	CHECK(unmounted_soon(d->path));
	/* The killed daemon's control socket is stale now: replaced. */
	CHECK(exists(d->ctl));
	spawn(d, NULL);
	CLIENT("echo", d->path, "HMC-RESTART", "1", "32");
	ctl_wait(d, "status", "driver: state ready", 5000);
}

/* The live watchdog children of `parent` (they unmount when it dies). */
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
		    ppid == parent && strcmp(comm, "openvmc-umount") == 0 && state != 'Z')
			out[n++] = pid;
		fclose(f);
	}
	closedir(proc);
	return n;
}

/* What the daemon's loop should wait with: io_uring when built with it,
 * allowed here (no seccomp filter refusing it) and not turned off. */
static const char *expected_backend(void)
{
#ifdef OVMC_HAVE_LIBURING
	const char *env = getenv("OPENVMC_IO_URING");
	unsigned char params[120] = {0}; /* struct io_uring_params */
	long fd;

	if (env && !strcmp(env, "0"))
		return "epoll";
	fd = syscall(__NR_io_uring_setup, 1, params);
	if (fd < 0)
		return "epoll";
	close((int)fd);
	return "io_uring";
#else
	return "epoll";
#endif
}

TEST(requests_are_read_through_the_loops_wait)
{
	struct daemon *d = start((const char *const[]){"--log-level", "debug", NULL});
	char want[64];

	CLIENT("wait-ready", d->path);
	snprintf(want, sizeof(want), "device requests through %s", expected_backend());
	CHECK(log_has(d, 0, want));
	/* Both ways carry the ABI: this suite also runs as device-epoll. */
	CLIENT("echo", d->path, "HMC-WAIT", "20", "4096");
}

TEST(stale_mount_is_detached_at_start)
{
	struct daemon *d = start(NULL);
	pid_t kids[16];
	int n;
	size_t from;

	CLIENT("wait-ready", d->path);
	/* Without its watchdog (openvmc-umount, a child of the daemon), a
	 * killed daemon leaves a dead mount behind. */
	n = watchdogs(d->pid, kids, 16);
	CHECK_EQ(n, 1);
	/* Pending SIGKILL: it never runs again, so it cannot unmount. */
	kill(kids[0], SIGKILL);
	kill(d->pid, SIGKILL);
	CHECK(wait_child(d->pid, STOP_TIMEOUT_MS) >= 0);
	d->pid = 0;
	CHECK(mounted(d->path));
	/* Dead: statfs() asks the filesystem (stat() may answer from a cache). */
	CHECK(connection_dead_soon(d->path));
	from = log_size(d);
	spawn(d, NULL);
	CHECK(log_has(d, from, "detached a stale mount"));
	CLIENT("echo", d->path, "HMC-STALE", "1", "32");
}

/* ---- the FUSE file as a device node ---- */

#define OPENER_MAX_ERRNOS 8

/* What the opener thread saw, by outcome. */
struct opener {
	const char *path;
	atomic_bool stop;
	atomic_ulong device;
	unsigned long absent, errnos[OPENER_MAX_ERRNOS][2], plain;
	char plain_what[128];
	pthread_t thread;
	bool joined;
};

static void opener_count_errno(struct opener *o, int err)
{
	for (int i = 0; i < OPENER_MAX_ERRNOS; i++) {
		if (o->errnos[i][1] == 0 || o->errnos[i][0] == (unsigned long)err) {
			o->errnos[i][0] = (unsigned long)err;
			o->errnos[i][1]++;
			return;
		}
	}
	o->plain++; /* more kinds of failure than expected: report it */
	snprintf(o->plain_what, sizeof(o->plain_what), "too many errnos, last %s",
		 strerrorname_np(err));
}

static void *opener_run(void *arg)
{
	struct opener *o = arg;

	while (!atomic_load(&o->stop)) {
		int fd = open(o->path, O_RDWR | O_CLOEXEC);
		struct statfs sfs;
		struct stat st;

		if (fd < 0) {
			if (errno == ENOENT)
				o->absent++;
			else
				opener_count_errno(o, errno);
			continue;
		}
		/* The device is the FUSE file (whose connection may have ended
		 * since: the daemon stopped); anything else is the window. */
		if (fstatfs(fd, &sfs) == 0 ? sfs.f_type == 0x65735546
					   : errno == ENOTCONN || errno == ECONNABORTED) {
			atomic_fetch_add(&o->device, 1);
		} else {
			o->plain++;
			if (fstat(fd, &st) == 0)
				snprintf(o->plain_what, sizeof(o->plain_what),
					 "mode 0%o size %lld", (unsigned)st.st_mode,
					 (long long)st.st_size);
		}
		close(fd);
	}
	return NULL;
}

static void opener_join(struct opener *o)
{
	if (o->joined)
		return;
	atomic_store(&o->stop, true);
	pthread_join(o->thread, NULL);
	o->joined = true;
}

/* Deferred: the thread stops before its memory goes, passed or not. */
static void opener_free(void *arg)
{
	opener_join(arg);
	free(arg);
}

/*
 * The start-up window: while openvmc creates its path and mounts over it
 * (and while it unmounts and removes it), an application opening the path
 * gets ENOENT, ENXIO (the placeholder node), or the device; never a plain
 * file. ECONNABORTED/ENOTCONN are an open caught by a stopping daemon.
 */
TEST(open_in_a_loop_while_openvmc_starts_and_stops_never_gets_a_plain_file)
{
	struct daemon *d = new_daemon(NULL);
	struct opener *o = calloc(1, sizeof(*o));
	char seen[512] = "";
	size_t n = 0;

	CHECK(o);
	o->path = d->path;
	if (pthread_create(&o->thread, NULL, opener_run, o) != 0) {
		free(o);
		FAIL("pthread_create failed");
	}
	ovmc_test_defer(opener_free, o);
	for (int i = 0; i < 20; i++) {
		unsigned long before = atomic_load(&o->device);

		spawn(d, NULL);
		/* Each daemon is opened at least once before it stops. */
		for (uint64_t end = now_ms() + READY_TIMEOUT_MS; atomic_load(&o->device) == before;
		     sleep_ms(1))
			if (now_ms() > end)
				FAIL("the opener never got the device of start %d", i + 1);
		stop_daemon(d, SIGTERM);
	}
	opener_join(o);
	for (int i = 0; i < OPENER_MAX_ERRNOS && o->errnos[i][1]; i++) {
		int err = (int)o->errnos[i][0];

		n += (size_t)snprintf(seen + n, sizeof(seen) - n, " %s %lu", strerrorname_np(err),
				      o->errnos[i][1]);
		if (err != ENXIO && err != ECONNABORTED && err != ENOTCONN)
			FAIL("an open failed with %s:%s", strerrorname_np(err), seen);
	}
	printf("opens: device %lu, ENOENT %lu,%s, plain %lu\n", atomic_load(&o->device),
	       o->absent, seen, o->plain);
	if (o->plain)
		FAIL("%lu opens got a plain file (%s)", o->plain, o->plain_what);
}

/*
 * Between daemons (here: after a SIGKILL) the path is the placeholder, a
 * character device 0:1 of mode 0 that no driver serves: ENXIO (EACCES
 * for other users).
 */
TEST(placeholder_is_a_mode_0_node_without_driver_enxio)
{
	struct daemon *d = start(NULL);
	struct stat st;
	int fd;

	kill(d->pid, SIGKILL);
	CHECK(wait_child(d->pid, STOP_TIMEOUT_MS) >= 0);
	d->pid = 0;
	CHECK(unmounted_soon(d->path));
	CHECK(lstat(d->path, &st) == 0);
	CHECK(S_ISCHR(st.st_mode));
	CHECK_EQ(st.st_mode & 07777, 0);
	CHECK_EQ(major(st.st_rdev), 0);
	CHECK_EQ(minor(st.st_rdev), 1);
	fd = open(d->path, O_RDWR);
	CHECK_EQ(fd, -1);
	CHECK_EQ(errno, ENXIO);
	/* The next daemon takes it again, and removes it when it stops. */
	spawn(d, NULL);
	CLIENT("echo", d->path, "HMC-AGAIN", "1", "16");
	stop_daemon(d, SIGTERM);
	CHECK(!exists(d->path));
}

/* The device's "writes N" counter from the control socket. */
static unsigned long long dev_counter(const struct daemon *d, const char *name)
{
	char out[8192], key[32];
	const char *p;

	ctl(d, "status", out, sizeof(out));
	snprintf(key, sizeof(key), " %s ", name);
	p = strstr(out, "  opens ");
	if (!p || !(p = strstr(p, key)))
		FAIL("no device counter %s in the status:\n%s", name, out);
	return strtoull(p + strlen(key), NULL, 10);
}

/*
 * Linux gives EIO (the HMC id is checked first), but the FUSE kernel
 * answers a write of 0 bytes with 0 itself: openvmc never sees it.
 * docs/device-abi.md says so; the session socket gives EIO.
 */
TEST(zero_byte_write_before_sethmcid_is_answered_0_by_the_kernel)
{
	struct daemon *d = start(NULL);
	unsigned long long before;
	char buf[1] = {0};
	int fd;

	CLIENT("wait-ready", d->path);
	fd = open(d->path, O_RDWR | O_CLOEXEC);
	CHECK(fd >= 0);
	before = dev_counter(d, "writes");
	CHECK_EQ(write(fd, buf, 0), 0);
	CHECK_EQ(dev_counter(d, "writes"), before);
	/* One byte reaches the driver, which checks the HMC id first. */
	CHECK_EQ(write(fd, buf, 1), -1);
	CHECK_EQ(errno, EIO);
	CHECK_EQ(dev_counter(d, "writes"), before + 1);
	close(fd);
}

TEST(chmod_chown_utimes_change_the_file_truncate_einval)
{
	struct daemon *d = start(NULL);
	struct timespec times[2] = {{.tv_sec = 1000}, {.tv_sec = 2000}};
	struct stat st;
	int fd, fd2;
	pid_t pid;

	CHECK(chmod(d->path, 0644) == 0);
	CHECK(stat(d->path, &st) == 0);
	CHECK_EQ(st.st_mode, S_IFREG | 0644);
	fd = open(d->path, O_RDWR | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK(fchmod(fd, 0640) == 0);
	CHECK(fchown(fd, 4243, 4244) == 0);
	CHECK(stat(d->path, &st) == 0);
	CHECK_EQ(st.st_mode, S_IFREG | 0640);
	CHECK_EQ(st.st_uid, 4243);
	CHECK_EQ(st.st_gid, 4244);
	CHECK(utimensat(AT_FDCWD, d->path, times, 0) == 0);
	CHECK(stat(d->path, &st) == 0);
	CHECK_EQ(st.st_atim.tv_sec, 1000);
	CHECK_EQ(st.st_mtim.tv_sec, 2000);
	/* A character device: truncate and ftruncate EINVAL, O_TRUNC ignored. */
	CHECK_EQ(truncate(d->path, 0), -1);
	CHECK_EQ(errno, EINVAL);
	CHECK_EQ(ftruncate(fd, 0), -1);
	CHECK_EQ(errno, EINVAL);
	fd2 = open(d->path, O_RDWR | O_TRUNC | O_CLOEXEC);
	CHECK(fd2 >= 0);
	close(fd2);
	close(fd);
	/* The kernel checks the caller's right: the owner is 4243 now. */
	CHECK(chmod(d->dir, 0755) == 0);
	pid = ovmc_test_fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		if (setgroups(0, NULL) || setgid(4245) || setuid(4245))
			_exit(2);
		_exit(chmod(d->path, 0666) == -1 && errno == EPERM ? 0 : 1);
	}
	CHECK_EQ(wait_child(pid, 5000), 0);
	CHECK(stat(d->path, &st) == 0);
	CHECK_EQ(st.st_mode, S_IFREG | 0640);
}

/* An HMC id for SETHMCID: 32 bytes. */
static void set_hmc_id(int fd, const char *name)
{
	unsigned char id[HMC_ID_LEN] = {0};

	memcpy(id, name, strlen(name));
	if (ioctl(fd, VMC_IOCTL_SETHMCID, id) != 0)
		FAIL("SETHMCID: %s", strerror(errno));
}

/*
 * After SIGKILL of the daemon (docs/device-abi.md): a read blocked at the
 * time gets ECONNABORTED; later read, write, ioctl ENOTCONN; poll POLLERR;
 * close ENOTCONN; a new open ENXIO (the placeholder, once the watchdog
 * unmounted).
 */
TEST(sigkill_of_the_daemon_errnos_of_open_files_and_new_opens)
{
	struct daemon *d = start(NULL);
	struct ibmvmc_query_struct q;
	struct pollfd p = {.events = POLLIN | POLLOUT};
	char buf[64];
	int fd, status;
	pid_t reader;

	CLIENT("wait-ready", d->path);
	fd = open(d->path, O_RDWR | O_CLOEXEC);
	CHECK(fd >= 0);
	set_hmc_id(fd, "HMC-SIGKILL");
	ctl_wait(d, "sessions", "index 0: open", 5000);
	reader = ovmc_test_fork();
	CHECK(reader >= 0);
	if (reader == 0) {
		ssize_t n = read(fd, buf, sizeof(buf));

		_exit(n < 0 ? errno : 255);
	}
	/* Parked in the daemon, not only in the kernel. */
	ctl_wait(d, "status", "parked reads 1,", 5000);
	kill(d->pid, SIGKILL);
	CHECK(wait_child(d->pid, STOP_TIMEOUT_MS) >= 0);
	d->pid = 0;
	status = wait_child(reader, 5000);
	CHECK(status >= 0 && WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), ECONNABORTED);
	CHECK_EQ(read(fd, buf, sizeof(buf)), -1);
	CHECK_EQ(errno, ENOTCONN);
	CHECK_EQ(write(fd, buf, 1), -1);
	CHECK_EQ(errno, ENOTCONN);
	CHECK_EQ(ioctl(fd, VMC_IOCTL_QUERY, &q), -1);
	CHECK_EQ(errno, ENOTCONN);
	p.fd = fd;
	CHECK_EQ(poll(&p, 1, 0), 1);
	CHECK_EQ(p.revents, POLLERR);
	CHECK(unmounted_soon(d->path));
	CHECK_EQ(open(d->path, O_RDWR), -1);
	CHECK_EQ(errno, ENXIO);
	/* The descriptor still names the dead connection. */
	CHECK_EQ(read(fd, buf, sizeof(buf)), -1);
	CHECK_EQ(errno, ENOTCONN);
	CHECK_EQ(close(fd), -1);
	CHECK_EQ(errno, ENOTCONN);
}

/*
 * The ioctl numbers the VFS answers for a regular file, as the table of
 * docs/device-abi.md lists them: each is asked of the FUSE file with the
 * argument the table names, and both the answer and whether it reached
 * openvmc (its ioctl counter) must be the table's, so the docs cannot
 * drift from what the kernel does.
 */
struct vfs_row {
	unsigned long nr;
	char name[32];
	char answer[16]; /* "0" or an errno name */
	bool reaches;
};

/* `tok` in backticks: the n-th one of `s`, or false. */
static bool backticked(const char *s, int n, char *out, size_t size)
{
	for (const char *p = s; (p = strchr(p, '`')); ) {
		const char *end = strchr(p + 1, '`');
		size_t len;

		if (!end)
			return false;
		if (n-- == 0) {
			len = (size_t)(end - p - 1);
			if (len >= size)
				return false;
			memcpy(out, p + 1, len);
			out[len] = '\0';
			return true;
		}
		p = end + 1;
	}
	return false;
}

static bool kernel_at_least(int major_v, int minor_v)
{
	struct utsname u;
	int ma = 0, mi = 0;

	return uname(&u) == 0 && sscanf(u.release, "%d.%d", &ma, &mi) == 2 &&
	       (ma > major_v || (ma == major_v && mi >= minor_v));
}

static int vfs_rows(struct vfs_row *rows, int max)
{
	FILE *f = fopen(OVMC_SOURCE_DIR "/docs/device-abi.md", "r");
	char line[1024];
	int n = 0;

	if (!f)
		FAIL("cannot read docs/device-abi.md: %s", strerror(errno));
	while (n < max && fgets(line, sizeof(line), f)) {
		char *col[7] = {0}, *save = NULL, *c, num[16];
		int k = 0;
		/* Rows marked "(6.8)" are answered by the VFS since Linux 6.8;
		 * before, they reach the daemon (second answer). */
		bool old = strstr(line, "(6.8)") && !kernel_at_least(6, 8);

		if (strncmp(line, "| `0x", 5) != 0)
			continue;
		for (c = strtok_r(line, "|", &save); c && k < 7; c = strtok_r(NULL, "|", &save))
			col[k++] = c;
		if (k < 5 || !backticked(col[0], 0, num, sizeof(num)) ||
		    !backticked(col[3], old ? 1 : 0, rows[n].answer, sizeof(rows[n].answer)))
			FAIL("docs/device-abi.md: bad row %s", line);
		rows[n].nr = strtoul(num, NULL, 16);
		sscanf(col[1], " %31s", rows[n].name);
		rows[n].reaches = strstr(col[4], "yes") && (!strstr(col[4], "(6.8)") || old);
		n++;
	}
	fclose(f);
	return n;
}

TEST(vfs_ioctls_answer_what_docs_device_abi_lists)
{
	struct daemon *d = start(NULL);
	struct vfs_row rows[40];
	int n = vfs_rows(rows, 40), fd, bad = 0;

	CHECK(n >= 25);
	fd = open(d->path, O_RDWR | O_CLOEXEC);
	CHECK(fd >= 0);
	for (int i = 0; i < n; i++) {
		uint64_t arg[32] = {0}; /* 256 zeroed bytes */
		unsigned long long before = dev_counter(d, "ioctls");
		unsigned long a = (unsigned long)arg;
		char got[16];
		int rc, err;
		bool reached;

		/* The two that name a descriptor name none (-1). */
		if (!strcmp(rows[i].name, "FICLONE"))
			a = (unsigned long)-1;
		if (!strcmp(rows[i].name, "FICLONERANGE"))
			arg[0] = (uint64_t)-1;
		rc = ioctl(fd, rows[i].nr, a);
		err = errno;
		reached = dev_counter(d, "ioctls") != before;
		snprintf(got, sizeof(got), "%s", rc == 0 ? "0" : strerrorname_np(err));
		if (strcmp(got, rows[i].answer) != 0 || reached != rows[i].reaches) {
			fprintf(stderr, "%s (0x%lx): %s, %s openvmc; the docs say %s, %s\n",
				rows[i].name, rows[i].nr, got, reached ? "reached" : "not seen by",
				rows[i].answer, rows[i].reaches ? "reaches it" : "does not reach it");
			bad++;
		}
	}
	close(fd);
	CHECK_EQ(bad, 0);
}
