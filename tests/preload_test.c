// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The channel without root or FUSE: `openvmc --no-device` and the pair
 * `openvmcd --no-device` + `openvmc-hvd` serve only their session socket,
 * and unmodified programs (devclient, preloadclient, a Python script) run
 * under vmc-run, as an unprivileged user: when the test runs as root, every
 * client drops to uid PEER_UID in group PEER_GID (no such user needs to
 * exist) and the daemon allows that group (--mode 0660 --group PEER_GID).
 * Needs neither root nor /dev/fuse: these tests always run.
 */
#include "abi_checks.h"
#include "fixture.h"
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#if !defined(OPENVMC_BIN) || !defined(OPENVMCD_BIN) || !defined(HVD_BIN) ||                  \
	!defined(VMC_RUN_BIN) || !defined(PRELOADCLIENT_BIN) || !defined(STATIC_BIN) ||      \
	!defined(OVMC_TEST_DATA)
#error the programs under test must be named
#endif

#define PEER_UID 4243
#define PEER_GID 4242
#define STRANGER_UID 4244
#define STRANGER_GID 4244
#define MAX_ARGS 24

static bool root(void)
{
	return geteuid() == 0;
}

/* The daemon's arguments: the permissions the peer needs, then `extra`. */
static const char *const *with_perms(const char **args, const char *const *extra)
{
	int n = 0;

	if (root()) {
		args[n++] = "--mode";
		args[n++] = "0660";
		args[n++] = "--group";
		args[n++] = "4242";
	}
	for (; extra && *extra && n < MAX_ARGS - 1; extra++)
		args[n++] = *extra;
	args[n] = NULL;
	return args;
}

/* Clients from now on: under vmc-run for d, as the peer when we are root. */
static void via_preload(struct daemon *d)
{
	static const char *prefix[8];
	const char *asan = getenv("ASAN_OPTIONS");
	char opts[512];

	prefix[0] = VMC_RUN_BIN;
	prefix[1] = "--device";
	prefix[2] = d->path;
	prefix[3] = "--socket";
	prefix[4] = d->sock;
	prefix[5] = NULL;
	clients_via(prefix);
	if (root()) {
		/* The peer must reach the socket in the test's private directory. */
		if (chmod(d->dir, 0755) != 0)
			FAIL("chmod %s: %s", d->dir, strerror(errno));
		clients_as(true, PEER_UID, PEER_GID);
	}
	/* A sanitized client gets the (plain) preload library first. */
	snprintf(opts, sizeof(opts), "%s%sverify_asan_link_order=0", asan ? asan : "",
		 asan ? ":" : "");
	setenv("ASAN_OPTIONS", opts, 1);
}

/* openvmc with no device file, `extra` arguments. */
static struct daemon *single(const char *const *extra)
{
	const char *args[MAX_ARGS];
	struct daemon *d = new_daemon(NULL);

	d->sock_only = true;
	spawn_prog(d, OPENVMC_BIN, with_perms(args, extra));
	via_preload(d);
	return d;
}

struct pair {
	struct hvd *h;
	struct daemon *d;
};

/* openvmc-hvd, and openvmcd with no device file; both with `extra`. */
static struct pair daemons(const char *const *extra)
{
	const char *args[MAX_ARGS], *more[MAX_ARGS] = {"--foreground", "--retry-ms", "50"};
	struct pair p = {.h = new_hvd(), .d = new_daemon(NULL)};
	int n = 3;

	spawn_hvd(p.h, HVD_BIN, extra);
	more[n++] = "--socket";
	more[n++] = p.h->sock;
	for (; extra && *extra && n < MAX_ARGS - 1; extra++)
		more[n++] = *extra;
	more[n] = NULL;
	p.d->sock_only = true;
	spawn_prog(p.d, OPENVMCD_BIN, with_perms(args, more));
	via_preload(p.d);
	return p;
}

static void run_prog(const char *prog, const char *const *args, char *out, size_t size)
{
	struct client *c = client_spawn_prog(prog, args);
	int code;

	client_read(c, out, size, CLIENT_TIMEOUT_MS);
	code = client_wait(c, 5000);
	if (code != 0)
		FAIL("%s %s exited %d; output:\n%s", prog, args[0], code, out);
}

#define PRELOADCLIENT(buf, ...)                                                              \
	run_prog(PRELOADCLIENT_BIN, (const char *const[]){__VA_ARGS__, NULL}, (buf), sizeof(buf))

/* ---- the device-ABI checks of the FUSE device, unchanged ---- */

static void errno_cases(const struct daemon *d)
{
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
	CLIENT_OUT(out, "lengths", d->path, "HMC-LENGTHS");
	CHECK(strstr(out, "write of 0 bytes: 0, read of 0 bytes: 0"));
	CHECK(strstr(out, "read of 10 bytes of a 200-byte message: 10, the rest dropped"));
	CLIENT_OUT(out, "requestvmc", d->path);
	CHECK(strstr(out, "requestvmc 0 drc 0x"));
}

TEST(openvmc_echo_every_size_1_to_4096)
{
	abi_echo_sizes(single(NULL));
}

TEST(openvmc_sethmcid_then_write_until_the_open_completes)
{
	abi_open_then_write(single(NULL));
}

TEST(openvmc_nonblocking_read_with_nothing_queued_eagain)
{
	abi_nonblock_eagain(single(NULL));
}

TEST(openvmc_poll_pollin_only_while_a_message_is_queued)
{
	abi_poll_pollin(single(NULL));
}

TEST(openvmc_blocking_read_completes_when_the_hypervisor_sends)
{
	struct daemon *d = single(NULL);

	abi_blocking_read_gets_hv_message(d, d);
}

TEST(openvmc_two_applications_on_two_sessions_isolated)
{
	struct daemon *d = single(ARGS("--hmcs", "2"));

	abi_two_sessions(d, d);
}

TEST(openvmc_write_while_another_thread_reads_the_same_fd)
{
	abi_threads(single(NULL));
}

TEST(openvmc_bad_pointers_efault_and_nothing_lost)
{
	abi_efault(single(NULL));
}

TEST(openvmc_errno_cases_as_the_device)
{
	errno_cases(single(NULL));
}

TEST(openvmc_sethmcid_without_a_vmc_eagain)
{
	char out[512];

	CLIENT_OUT(out, "notready", single(ARGS("--no-vmc"))->path, "HMC-NOTREADY");
	CHECK(strstr(out, "SETHMCID before the channel is ready: EAGAIN"));
}

TEST(pair_echo_every_size_1_to_4096)
{
	abi_echo_sizes(daemons(NULL).d);
}

TEST(pair_sethmcid_then_write_until_the_open_completes)
{
	abi_open_then_write(daemons(NULL).d);
}

TEST(pair_nonblocking_read_with_nothing_queued_eagain)
{
	abi_nonblock_eagain(daemons(NULL).d);
}

TEST(pair_poll_pollin_only_while_a_message_is_queued)
{
	abi_poll_pollin(daemons(NULL).d);
}

TEST(pair_blocking_read_completes_when_the_hypervisor_sends)
{
	struct pair p = daemons(NULL);

	abi_blocking_read_gets_hv_message(p.d, p.h->d);
}

TEST(pair_two_applications_on_two_sessions_isolated)
{
	struct pair p = daemons(ARGS("--hmcs", "2"));

	abi_two_sessions(p.d, p.h->d);
}

TEST(pair_write_while_another_thread_reads_the_same_fd)
{
	abi_threads(daemons(NULL).d);
}

TEST(pair_bad_pointers_efault_and_nothing_lost)
{
	abi_efault(daemons(NULL).d);
}

TEST(pair_errno_cases_as_the_device)
{
	errno_cases(daemons(NULL).d);
}

/* ---- what only a character device gives ---- */

TEST(ioctl_1_and_fionread_einval_vfs_ioctls_as_dev_null_shows)
{
	struct daemon *d = single(NULL);
	char out[4096];

	PRELOADCLIENT(out, "ioctls", d->path);
	CHECK(strstr(out, "ioctl(fd, 1, id): EINVAL"));
	CHECK(strstr(out, "FIONREAD: EINVAL"));
	CHECK(strstr(out, "FIBMAP: EINVAL"));
	CHECK(strstr(out, "TCGETS: EINVAL"));
	CHECK(strstr(out, "FIGETBSZ: 0 as a character device"));
	CHECK(strstr(out, "FIOQSIZE: ENOTTY as a character device"));
}

TEST(poll_select_epoll_readiness)
{
	char out[1024];

	PRELOADCLIENT(out, "poll", single(NULL)->path, "HMC-POLL");
	CHECK(strstr(out, "nothing queued: poll, select and epoll time out"));
	CHECK(strstr(out, "a message queued: POLLIN, select readable, EPOLLIN"));
	CHECK(strstr(out, "after the read: nothing"));
}

TEST(o_nonblock_fionbio_fioclex_fioasync_on_the_descriptor)
{
	char out[1024];

	PRELOADCLIENT(out, "nonblock", single(NULL)->path, "HMC-NB");
	CHECK(strstr(out, "read after F_SETFL O_NONBLOCK: EAGAIN"));
	CHECK(strstr(out, "read after FIONBIO 1: EAGAIN"));
	CHECK(strstr(out, "FIONBIO from NULL: EFAULT"));
	CHECK(strstr(out, "FIONBIO, FIOCLEX and FIONCLEX act on the descriptor"));
	CHECK(strstr(out, "FIOASYNC sets O_ASYNC"));
}

TEST(signal_interrupts_a_blocking_read_eintr_unless_sa_restart)
{
	char out[1024];

	PRELOADCLIENT(out, "eintr", single(NULL)->path, "HMC-EINTR");
	CHECK(strstr(out, "blocking read, SIGALRM without SA_RESTART: EINTR"));
	CHECK(strstr(out, "blocking read, SIGALRM with SA_RESTART: restarted through"));
}

TEST(fork_child_and_parent_share_the_open_file)
{
	char out[1024];

	PRELOADCLIENT(out, "fork", single(NULL)->path, "HMC-FORK");
	CHECK(strstr(out, "the parent read what the child wrote"));
	CHECK(strstr(out, "the child read what the parent wrote"));
}

TEST(dup_dup2_dup3_fcntl_dupfd_copies_share_the_file)
{
	char out[1024];

	PRELOADCLIENT(out, "dup", single(NULL)->path, "HMC-DUP");
	CHECK(strstr(out, "each copy writes the same file"));
	CHECK(strstr(out, "the last copy still works"));
}

TEST(exec_keeps_the_file_and_closes_o_cloexec)
{
	char out[1024];

	PRELOADCLIENT(out, "exec", single(NULL)->path, "HMC-EXEC");
	CHECK(strstr(out, "after exec: the O_CLOEXEC file is closed"));
	CHECK(strstr(out, "after exec: the inherited file is the same session"));
}

TEST(open_variants_and_stdio_reach_the_device)
{
	char out[1024];

	PRELOADCLIENT(out, "opens", single(NULL)->path);
	CHECK(strstr(out, "open, open64, openat (dirfd and cwd), a path with ./: the device"));
	CHECK(strstr(out, "open O_CREAT|O_EXCL: EEXIST"));
	CHECK(strstr(out, "open O_DIRECTORY: ENOTDIR"));
	CHECK(strstr(out, "fopen, fileno + ioctl, fwrite + fflush, fread, fclose"));
}

TEST(stat_variants_show_a_misc_character_device_with_the_daemons_mode)
{
	struct daemon *d = single(NULL);
	char out[1024], want[128];

	PRELOADCLIENT(out, "stat", d->path);
	snprintf(want, sizeof(want), "character device 10:242 mode %s uid %u gid %u",
		 root() ? "0660" : "0600", (unsigned)geteuid(),
		 root() ? PEER_GID : (unsigned)getegid());
	CHECK(strstr(out, want));
	CHECK(strstr(out, "access R_OK|W_OK: 0"));
}

TEST(reset_delivers_the_messages_first_then_ebadfd_pollhup_eio)
{
	struct daemon *d = single(NULL);
	struct client *c = client_spawn_prog(PRELOADCLIENT_BIN, ARGS("reset", d->path, "HMC-R"));
	char out[1024];

	client_expect(c, "open", READY_TIMEOUT_MS);
	ctl(d, "send 0 6f6e65", out, sizeof(out));
	CHECK(strncmp(out, "ok", 2) == 0);
	ctl(d, "send 0 74776f", out, sizeof(out));
	CHECK(strncmp(out, "ok", 2) == 0);
	/* Both must be in the driver's queue before the reset. */
	ctl_wait(d, "status", "queued 1", 5000);
	ctl(d, "restart", out, sizeof(out));
	CHECK(strncmp(out, "ok", 2) == 0);
	close(c->in);
	c->in = -1;
	client_read(c, out, sizeof(out), CLIENT_TIMEOUT_MS);
	CHECK_EQ(client_wait(c, 5000), 0);
	CHECK(strstr(out, "the messages from before the reset: read"));
	CHECK(strstr(out, "after the reset: POLLHUP"));
	CHECK(strstr(out, "read after the reset: EBADFD\nread again: EBADFD"));
	CHECK(strstr(out, "write after the reset: EIO"));
}

TEST(daemon_killed_under_a_blocked_reader_eio_then_open_enxio)
{
	struct daemon *d = single(NULL);
	struct client *c = client_spawn_prog(PRELOADCLIENT_BIN, ARGS("died", d->path, "HMC-D"));
	char out[1024];

	client_expect(c, "open", READY_TIMEOUT_MS);
	wait_in_syscall(c->pid, SYS_recvmsg, 5000);
	stop_daemon(d, SIGKILL);
	client_read(c, out, sizeof(out), CLIENT_TIMEOUT_MS);
	CHECK_EQ(client_wait(c, 5000), 0);
	CHECK(strstr(out, "blocked read when the daemon dies: EIO"));
	CHECK(strstr(out, "write after the daemon died: EIO"));
	CHECK(strstr(out, "open after the daemon died: ENXIO"));
}

TEST(every_buffer_in_flight_ebusy_until_a_read_frees_one)
{
	char out[1024];

	PRELOADCLIENT(out, "exhaust", single(NULL)->path, "HMC-EXHAUST");
	CHECK(strstr(out, "write with every buffer in flight: EBUSY after "));
	CHECK(strstr(out, "after reading one echo the write goes through"));
	CHECK(strstr(out, "echoes arrived in order"));
}

TEST(python_program_works_unchanged)
{
	struct daemon *d = single(NULL);
	char out[1024];

	run_prog("/usr/bin/python3", ARGS(OVMC_TEST_DATA "/vmc_app.py", d->path, "PYTHON"), out,
		 sizeof(out));
	CHECK(strstr(out, "character device: True"));
	CHECK(strstr(out, "state 3"));
	CHECK(strstr(out, "reply hello from python"));
	CHECK(strstr(out, "ioctl 1: EINVAL"));
}

/* ---- who may connect ---- */

TEST(peer_outside_the_uid_and_group_refused_with_a_log_line)
{
	struct daemon *d;
	size_t from;
	int code;

	if (!root())
		ovmc_test_skip("needs root to run a client as another uid");
	/* Even with the socket open to all, the credentials decide. */
	d = single(ARGS("--mode", "0666"));
	clients_as(true, STRANGER_UID, STRANGER_GID);
	from = log_size(d);
	code = client_wait(SPAWN("query", d->path), CLIENT_TIMEOUT_MS);
	CHECK_EQ(code, 1);
	CHECK(log_has(d, from, "refused a connection from pid"));
	CHECK(log_has(d, from, "(uid 4244 gid 4244)"));
	ctl_wait(d, "status", "refused-credentials 1 ", 5000);
}

TEST(peer_in_the_group_as_a_supplementary_group_allowed)
{
	struct daemon *d;
	char out[512];

	if (!root())
		ovmc_test_skip("needs root to run a client as another uid");
	d = single(NULL);
	clients_as(true, STRANGER_UID, STRANGER_GID);
	clients_group(PEER_GID);
	CLIENT_OUT(out, "query", d->path);
	CHECK(strstr(out, "state 3"));
}

/* ---- vmc-run ---- */

TEST(vmc_run_refuses_a_static_program_and_says_why)
{
	char out[1024];
	int fd;
	pid_t pid = spawn_piped(ARGS(VMC_RUN_BIN, STATIC_BIN), true, &fd, NULL);
	size_t len = 0;
	ssize_t n;
	int status = wait_child(pid, CLIENT_TIMEOUT_MS);

	while (len + 1 < sizeof(out) && (n = read(fd, out + len, sizeof(out) - 1 - len)) > 0)
		len += (size_t)n;
	out[len] = '\0';
	close(fd);
	CHECK(status >= 0 && WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), 126);
	CHECK(strstr(out, "is statically linked"));
	CHECK(strstr(out, "LD_PRELOAD cannot reach it"));
}

TEST(vmc_run_help_version_and_a_missing_program)
{
	char out[4096];
	int fd, status;
	size_t len;
	ssize_t n;
	struct {
		const char *const *argv;
		int code;
		const char *want;
	} cases[] = {
		{ARGS(VMC_RUN_BIN, "--help"), 0, "Usage: vmc-run [options] PROGRAM"},
		{ARGS(VMC_RUN_BIN, "--version"), 0, "vmc-run (openvmc) 0."},
		{ARGS(VMC_RUN_BIN), 2, "no PROGRAM given"},
		{ARGS(VMC_RUN_BIN, "--device", "relative", "true"), 2, "absolute path"},
		{ARGS(VMC_RUN_BIN, "no-such-program-here"), 127, "command not found"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		pid_t pid = spawn_piped(cases[i].argv, true, &fd, NULL);

		status = wait_child(pid, CLIENT_TIMEOUT_MS);
		len = 0;
		while (len + 1 < sizeof(out) && (n = read(fd, out + len, sizeof(out) - 1 - len)) > 0)
			len += (size_t)n;
		out[len] = '\0';
		close(fd);
		CHECK(status >= 0 && WIFEXITED(status));
		if (WEXITSTATUS(status) != cases[i].code || !strstr(out, cases[i].want))
			FAIL("case %zu: exit %d, output \"%s\"", i, WEXITSTATUS(status), out);
	}
}
