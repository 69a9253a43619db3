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

static void spawn(struct daemon *d, const char *const *extra)
{
	spawn_prog(d, OPENVMC_BIN, extra);
}

/* Did the mount on `path` go away by itself (within a generous bound)? */
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
	/* auto_unmount: the fusermount3 watchdog takes the mount away. */
	CHECK(unmounted_soon(d->path));
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
