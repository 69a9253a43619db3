// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vmcctl tests: the built program is run with fork/exec and its exit code,
 * stdout and stderr are checked.
 *  - control-socket commands talk to a fake server thread that records the
 *    request line and answers with a canned reply;
 *  - device commands are checked for argument handling and the error paths
 *    that need no device;
 *  - the end-to-end tests (live_*) start the real openvmc (echo backend,
 *    fixture.c) and run vmcctl against its device file and control socket.
 */
#include "fixture.h"
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openvmc/common.h>

#ifndef VMCCTL_BIN
#error "VMCCTL_BIN must name the vmcctl program"
#endif
#ifndef OPENVMC_BIN
#error "OPENVMC_BIN must name the openvmc program"
#endif

extern char **environ;

/* ---- running vmcctl ------------------------------------------------------- */

struct run {
	int status; /* exit code, or 128 + signal */
	char *out, *err;
	size_t out_len, err_len;
};

struct growbuf {
	char *p;
	size_t len, cap;
};

static void grow_append(struct growbuf *g, const char *p, size_t n)
{
	if (g->len + n + 1 > g->cap) {
		size_t cap = g->cap ? g->cap : 1024;

		while (cap < g->len + n + 1)
			cap *= 2;
		char *np = realloc(g->p, cap);

		if (!np)
			FAIL("out of memory");
		g->p = np;
		g->cap = cap;
	}
	memcpy(g->p + g->len, p, n);
	g->len += n;
	g->p[g->len] = '\0';
}

static void free_run(void *arg)
{
	struct run *r = arg;

	free(r->out);
	free(r->err);
	free(r);
}

/* Environment for the child: ours without OPENVMC_*, plus the given entries. */
static char **child_env(const char *const *extra)
{
	size_t n = 0, m = 0, k = 0;

	while (environ[n])
		n++;
	while (extra && extra[m])
		m++;
	char **env = calloc(n + m + 1, sizeof(*env));

	if (!env)
		FAIL("out of memory");
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "OPENVMC_", 8) != 0)
			env[k++] = environ[i];
	for (size_t i = 0; i < m; i++)
		env[k++] = (char *)extra[i];
	env[k] = NULL;
	return env;
}

/*
 * Run vmcctl with args (NULL-terminated argv without argv[0]), feeding input
 * (may be NULL: empty stdin) and extra environment entries (NULL-terminated,
 * may be NULL). The result is freed when the test ends.
 */
static struct run *run_env(const char *input, const char *const *env, const char *const *args)
{
	struct run *r = calloc(1, sizeof(*r));
	const char *argv[64];
	size_t argc = 0;
	int in[2], out[2], err[2];

	if (!r)
		FAIL("out of memory");
	ovmc_test_defer(free_run, r);
	argv[argc++] = VMCCTL_BIN;
	for (size_t i = 0; args[i]; i++) {
		if (argc + 1 >= sizeof(argv) / sizeof(argv[0]))
			FAIL("too many arguments");
		argv[argc++] = args[i];
	}
	argv[argc] = NULL;

	char **envp = child_env(env);

	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
		FAIL("pipe: %s", strerror(errno));
	fflush(stdout);
	fflush(stderr);
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (pid == 0) {
		ovmc_test_die_with_parent(parent);
		if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0)
			_exit(126);
		execve(VMCCTL_BIN, (char *const *)argv, envp);
		_exit(127);
	}
	free(envp);
	close(in[0]);
	close(out[1]);
	close(err[1]);

	struct growbuf gout = {0}, gerr = {0};
	size_t in_len = input ? strlen(input) : 0, in_off = 0;
	int in_fd = in[1];
	int64_t deadline = (int64_t)now_ms() + 30000;
	bool out_open = true, err_open = true;

	signal(SIGPIPE, SIG_IGN);
	if (in_len == 0) {
		close(in_fd);
		in_fd = -1;
	} else {
		fcntl(in_fd, F_SETFL, O_NONBLOCK);
	}
	while (out_open || err_open) {
		struct pollfd p[3] = {
			{.fd = out_open ? out[0] : -1, .events = POLLIN},
			{.fd = err_open ? err[0] : -1, .events = POLLIN},
			{.fd = in_fd, .events = POLLOUT},
		};
		int64_t left = deadline - (int64_t)now_ms();

		if (left <= 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			FAIL("vmcctl did not finish within 30 s");
		}
		int n = poll(p, 3, (int)left);

		if (n < 0 && errno != EINTR)
			FAIL("poll: %s", strerror(errno));
		for (int i = 0; i < 2 && n > 0; i++) {
			if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			char buf[4096];
			ssize_t k = read(p[i].fd, buf, sizeof(buf));

			if (k > 0)
				grow_append(i == 0 ? &gout : &gerr, buf, (size_t)k);
			else if (k == 0 || errno != EINTR) {
				if (i == 0)
					out_open = false;
				else
					err_open = false;
			}
		}
		if (in_fd >= 0 && n > 0 && (p[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t k = write(in_fd, input + in_off, in_len - in_off);

			if (k > 0)
				in_off += (size_t)k;
			if ((k < 0 && errno != EAGAIN && errno != EINTR) || in_off == in_len) {
				close(in_fd);
				in_fd = -1;
			}
		}
	}
	if (in_fd >= 0)
		close(in_fd);
	close(out[0]);
	close(err[0]);

	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			FAIL("waitpid: %s", strerror(errno));
	r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	grow_append(&gout, "", 0);
	grow_append(&gerr, "", 0);
	r->out = gout.p;
	r->out_len = gout.len;
	r->err = gerr.p;
	r->err_len = gerr.len;
	return r;
}

#define RUN(...) run_env(NULL, NULL, ARGS(__VA_ARGS__))

#define CHECK_STATUS(r, code)                                                                      \
	do {                                                                                       \
		if ((r)->status != (code))                                                         \
			FAIL("exit status %d, expected %d; stdout: [%s] stderr: [%s]",             \
			     (r)->status, (code), (r)->out, (r)->err);                             \
	} while (0)

#define CHECK_HAS(text, needle)                                                                    \
	do {                                                                                       \
		if (!strstr((text), (needle)))                                                     \
			FAIL("[%s] does not contain [%s]", (text), (needle));                      \
	} while (0)

#define CHECK_STR(text, expected)                                                                  \
	do {                                                                                       \
		if (strcmp((text), (expected)) != 0)                                               \
			FAIL("[%s] != [%s]", (text), (expected));                                  \
	} while (0)

/* ---- fake control server -------------------------------------------------- */

struct fake_server {
	char dir[64];
	char path[128];
	int lfd;
	int stop[2];
	pthread_t thread;
	bool running;
	/* behaviour */
	const char *reply;
	size_t chunk;  /* send the reply in pieces of this size, 0: at once */
	bool no_reply; /* accept, read the request, never answer */
	int delay_ms;  /* pause after accept, before reading */
	bool early;    /* answer after the first bytes, without reading the rest */
	/* results */
	struct growbuf request;
	int connections;
};

/* Wait for fd or the stop pipe; true when fd is ready. */
static bool server_wait(struct fake_server *s, int fd, short events)
{
	struct pollfd p[2] = {{.fd = fd, .events = events}, {.fd = s->stop[0], .events = POLLIN}};

	for (;;) {
		int n = poll(p, 2, 20000);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || (p[1].revents & POLLIN))
			return false;
		return true;
	}
}

static void *server_main(void *arg)
{
	struct fake_server *s = arg;

	if (!server_wait(s, s->lfd, POLLIN))
		return NULL;
	int c = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);

	if (c < 0)
		return NULL;
	s->connections++;
	if (s->delay_ms) {
		struct timespec ts = {s->delay_ms / 1000, (long)(s->delay_ms % 1000) * 1000000};

		nanosleep(&ts, NULL);
	}
	/* Record the request up to and including its newline. */
	while (!memchr(s->request.p ? s->request.p : "", '\n', s->request.len)) {
		char buf[65536];

		if (!server_wait(s, c, POLLIN))
			goto out;
		ssize_t n = read(c, buf, sizeof(buf));

		if (n <= 0)
			goto out;
		grow_append(&s->request, buf, (size_t)n);
		if (s->early)
			break;
	}
	if (s->no_reply) {
		/* Hold the connection until the client gives up. */
		char buf[256];

		while (server_wait(s, c, POLLIN) && read(c, buf, sizeof(buf)) > 0)
			;
		goto out;
	}
	size_t len = strlen(s->reply), off = 0;

	while (off < len) {
		size_t n = s->chunk && s->chunk < len - off ? s->chunk : len - off;
		ssize_t w = send(c, s->reply + off, n, MSG_NOSIGNAL);

		if (w <= 0)
			break;
		off += (size_t)w;
		if (s->chunk) {
			struct timespec ts = {0, 2000000};

			nanosleep(&ts, NULL);
		}
	}
out:
	close(c);
	return NULL;
}

static void server_cleanup(void *arg)
{
	struct fake_server *s = arg;

	if (s->running) {
		if (write(s->stop[1], "x", 1) < 0)
			perror("stop server");
		pthread_join(s->thread, NULL);
	}
	close(s->stop[0]);
	close(s->stop[1]);
	close(s->lfd);
	unlink(s->path);
	rmdir(s->dir);
	free(s->request.p);
	free(s);
}

/* A listening fake server; start it with server_start after setting behaviour. */
static struct fake_server *server_new(const char *reply)
{
	struct fake_server *s = calloc(1, sizeof(*s));
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	if (!s)
		FAIL("out of memory");
	s->reply = reply;
	snprintf(s->dir, sizeof(s->dir), "/tmp/vmcctl-test-XXXXXX");
	if (!mkdtemp(s->dir))
		FAIL("mkdtemp: %s", strerror(errno));
	snprintf(s->path, sizeof(s->path), "%s/control", s->dir);
	if (pipe2(s->stop, O_CLOEXEC) < 0)
		FAIL("pipe: %s", strerror(errno));
	s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ovmc_test_defer(server_cleanup, s);
	if (s->lfd < 0)
		FAIL("socket: %s", strerror(errno));
	memcpy(sa.sun_path, s->path, strlen(s->path) + 1);
	if (bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s->lfd, 4) < 0)
		FAIL("bind/listen %s: %s", s->path, strerror(errno));
	return s;
}

static void server_start(struct fake_server *s)
{
	if (pthread_create(&s->thread, NULL, server_main, s) != 0)
		FAIL("pthread_create failed");
	s->running = true;
}

/* Wait for the server thread to finish its connection. */
static void server_finish(struct fake_server *s)
{
	pthread_join(s->thread, NULL);
	s->running = false;
}

static struct fake_server *serve(const char *reply)
{
	struct fake_server *s = server_new(reply);

	server_start(s);
	return s;
}

/* ---- program-level behaviour ---------------------------------------------- */

TEST(help_and_version_of_program_and_every_command)
{
	static const char *const cmds[][2] = {
		{NULL, NULL},	{"query", NULL},   {"request-vmc", NULL}, {"open", NULL},
		{"pipe", NULL}, {"status", NULL},  {"hv", NULL},	  {"ctl", NULL},
		{"hv", "send"}, {"hv", "restart"}, {"hv", "sessions"},	  {"trace", NULL},
	};

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		const char *args[4];
		size_t n = 0;

		if (cmds[i][0])
			args[n++] = cmds[i][0];
		if (cmds[i][1])
			args[n++] = cmds[i][1];
		args[n] = "--help";
		args[n + 1] = NULL;
		struct run *r = run_env(NULL, NULL, args);

		CHECK_STATUS(r, 0);
		CHECK_HAS(r->out, "Usage: vmcctl");
		CHECK_EQ(r->err_len, 0);

		args[n] = "--version";
		r = run_env(NULL, NULL, args);
		CHECK_STATUS(r, 0);
		CHECK_HAS(r->out, OVMC_VERSION_STRING);
		CHECK_HAS(r->out, "vmcctl");
	}
	struct run *r = RUN("-h");

	CHECK_STATUS(r, 0);
	CHECK_HAS(r->out, "Exit status");
	r = RUN("-V");
	CHECK_STATUS(r, 0);
	CHECK_STR(r->out, "vmcctl (openvmc) " OVMC_VERSION_STRING "\n");
}

TEST(no_command_is_usage_error)
{
	struct run *r = run_env(NULL, NULL, (const char *const[]){NULL});

	CHECK_STATUS(r, 2);
	CHECK_HAS(r->err, "no command given");
	CHECK_HAS(r->err, "Try 'vmcctl --help'");
	CHECK_EQ(r->out_len, 0);
}

TEST(unknown_command_or_option_is_usage_error)
{
	struct run *r = RUN("frobnicate");

	CHECK_STATUS(r, 2);
	CHECK_HAS(r->err, "vmcctl: unknown command 'frobnicate'");
	r = RUN("--bogus", "query");
	CHECK_STATUS(r, 2);
	CHECK_HAS(r->err, "invalid option '--bogus'");
	r = RUN("query", "-z");
	CHECK_STATUS(r, 2);
	CHECK_HAS(r->err, "vmcctl: query: invalid option '-z'");
	r = RUN("open", "--hmc-id", "x", "--timeout");
	CHECK_STATUS(r, 2);
	CHECK_HAS(r->err, "needs an argument");
	r = RUN("open", "--hmc-id", "x", "--timeout", "soon");
	CHECK_STATUS(r, 2);
	r = RUN("query", "extra");
	CHECK_STATUS(r, 2);
	r = RUN("hv", "reboot", "-c", "/nonexistent");
	CHECK_STATUS(r, 2);
	r = RUN("hv", "sessions", "--failed", "-c", "/nonexistent");
	CHECK_STATUS(r, 2);
}

/* ---- device commands without a device -------------------------------------- */

TEST(missing_device_fails_with_enoent)
{
	static const char *const cmds[][4] = {
		{"query", NULL},
		{"query", "--wait-ready=100", NULL},
		{"request-vmc", NULL},
		{"open", "--hmc-id", "test", NULL},
		{"pipe", "--hmc-id", "test", NULL},
	};

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		const char *args[8] = {"-d", "/nonexistent/ibmvmc"};

		for (size_t j = 0; j < 4 && cmds[i][j]; j++)
			args[2 + j] = cmds[i][j];
		struct run *r = run_env(NULL, NULL, args);

		CHECK_STATUS(r, 1);
		CHECK_HAS(r->err, "vmcctl: ");
		CHECK_HAS(r->err, "/nonexistent/ibmvmc: No such file or directory");
		CHECK_EQ(r->out_len, 0);
	}
}

TEST(device_comes_from_environment_then_option)
{
	struct run *r = run_env(NULL, ARGS("OPENVMC_DEVICE=/nonexistent/from-env"), ARGS("query"));

	CHECK_STATUS(r, 1);
	CHECK_HAS(r->err, "/nonexistent/from-env: No such file or directory");

	/* -d wins over the environment, before or after the command. */
	r = run_env(NULL, ARGS("OPENVMC_DEVICE=/nonexistent/from-env"),
		    ARGS("-d", "/nonexistent/a", "query"));
	CHECK_HAS(r->err, "/nonexistent/a:");
	r = run_env(NULL, ARGS("OPENVMC_DEVICE=/nonexistent/from-env"),
		    ARGS("query", "--device", "/nonexistent/b"));
	CHECK_HAS(r->err, "/nonexistent/b:");
}

TEST(device_that_is_not_ibmvmc_fails)
{
	struct run *r = RUN("-d", "/dev/null", "query");

	CHECK_STATUS(r, 1);
	CHECK_HAS(r->err, "Inappropriate ioctl for device");
	CHECK_EQ(r->out_len, 0);

	r = RUN("-d", "/dev/null", "request-vmc");
	CHECK_STATUS(r, 1);
	CHECK_HAS(r->err, "request-vmc");

	r = RUN("-d", "/dev/null", "open", "--hmc-id", "test", "--message", "hello");
	CHECK_STATUS(r, 1);
	CHECK_HAS(r->err, "VMC_IOCTL_SETHMCID");
}

TEST(hmc_id_length_is_checked)
{
	/* 33 bytes: usage error before the device is touched. */
	struct run *r = RUN("-d", "/nonexistent/x", "open", "--hmc-id",
			    "123456789012345678901234567890123", "--message", "a");

	CHECK_STATUS(r, 2);
	CHECK_HAS(r->err, "longer than 32");

	/* 32 bytes are accepted (then the missing device fails). */
	r = RUN("-d", "/nonexistent/x", "open", "--hmc-id", "12345678901234567890123456789012",
		"--message", "a");
	CHECK_STATUS(r, 1);

	r = RUN("-d", "/nonexistent/x", "pipe", "--hmc-id", "123456789012345678901234567890123");
	CHECK_STATUS(r, 2);

	r = RUN("-d", "/nonexistent/x", "open", "--hmc-id", "");
	CHECK_STATUS(r, 2);

	/* Hex id: exactly 32 bytes. */
	r = RUN("-d", "/nonexistent/x", "open", "--hmc-id-hex", "00112233");
	CHECK_STATUS(r, 2);
	CHECK_HAS(r->err, "exactly 32 bytes");
	r = RUN("-d", "/nonexistent/x", "open", "--hmc-id-hex",
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20");
	CHECK_STATUS(r, 2);
	r = RUN("-d", "/nonexistent/x", "open", "--hmc-id-hex",
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
	CHECK_STATUS(r, 1);
	r = RUN("-d", "/nonexistent/x", "open", "--hmc-id-hex",
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g");
	CHECK_STATUS(r, 2);
	CHECK_HAS(r->err, "not a hex digit");

	/* Both forms, or none. */
	r = RUN("-d", "/nonexistent/x", "open", "--hmc-id", "a", "--hmc-id", "b");
	CHECK_STATUS(r, 2);
	r = RUN("-d", "/nonexistent/x", "open", "--message", "a");
	CHECK_STATUS(r, 2);
	CHECK_HAS(r->err, "HMC id is required");
	r = RUN("-d", "/nonexistent/x", "pipe");
	CHECK_STATUS(r, 2);
}

TEST(bad_hex_message_is_usage_error)
{
	struct run *r = RUN("-d", "/nonexistent/x", "open", "--hmc-id", "t", "--hex-in",
			    "--message", "abc");

	CHECK_STATUS(r, 2);
	CHECK_HAS(r->err, "odd number of digits");

	r = RUN("-d", "/nonexistent/x", "open", "--hmc-id", "t", "--hex-in", "--message", "zz");
	CHECK_STATUS(r, 2);
	CHECK_HAS(r->err, "'z' at offset 0 is not a hex digit");

	/* A digit pair may not be split by whitespace. */
	r = RUN("-d", "/nonexistent/x", "open", "--hmc-id", "t", "--hex-in", "--message", "6 8");
	CHECK_STATUS(r, 2);

	/* Whitespace between pairs is fine (then the missing device fails). */
	r = RUN("-d", "/nonexistent/x", "open", "--hmc-id", "t", "--hex-in", "--message",
		"68 65\n");
	CHECK_STATUS(r, 1);

	/* Hex from stdin. */
	r = run_env("6g", NULL,
		    ARGS("-d", "/nonexistent/x", "open", "--hmc-id", "t", "--hex-in", "--stdin"));
	CHECK_STATUS(r, 2);
	CHECK_HAS(r->err, "not a hex digit");
}

TEST(message_checks_before_the_device)
{
	/* Empty messages would leak a driver buffer: refused. */
	struct run *r = RUN("-d", "/nonexistent/x", "open", "--hmc-id", "t", "--message", "");

	CHECK_STATUS(r, 2);
	CHECK_HAS(r->err, "empty");
	r = run_env(NULL, NULL, ARGS("-d", "/nonexistent/x", "open", "--hmc-id", "t", "--stdin"));
	CHECK_STATUS(r, 2);

	/* Longer than the MTU. */
	r = RUN("-d", "/nonexistent/x", "open", "--hmc-id", "t", "--mtu", "4", "--message",
		"hello");
	CHECK_STATUS(r, 2);
	CHECK_HAS(r->err, "longer than the MTU");

	/* Missing file: an I/O failure, not a usage error. */
	r = RUN("-d", "/nonexistent/x", "open", "--hmc-id", "t", "--file", "/nonexistent/msg");
	CHECK_STATUS(r, 1);
	CHECK_HAS(r->err, "/nonexistent/msg: No such file or directory");

	r = RUN("-d", "/nonexistent/x", "open", "--hmc-id", "t", "--stdin", "--stdin");
	CHECK_STATUS(r, 2);
	r = RUN("-d", "/nonexistent/x", "open", "--hmc-id", "t", "--count", "0", "-M", "a");
	CHECK_STATUS(r, 2);
	r = RUN("-d", "/nonexistent/x", "open", "--hmc-id", "t", "--mtu", "0");
	CHECK_STATUS(r, 2);
	r = RUN("-d", "/nonexistent/x", "query", "--wait-ready=-1");
	CHECK_STATUS(r, 2);
	r = RUN("-d", "/nonexistent/x", "pipe", "--hmc-id", "t", "--linger", "x");
	CHECK_STATUS(r, 2);
}

/* ---- control-socket commands ---------------------------------------------- */

TEST(hv_send_sends_hex_line)
{
	struct fake_server *s = serve("ok\n");
	struct run *r = RUN("hv", "send", "-c", s->path, "--index", "0", "hello");

	server_finish(s);
	CHECK_STATUS(r, 0);
	CHECK_STR(s->request.p, "send 0 68656c6c6f\n");
	CHECK_EQ(s->connections, 1);
	CHECK_EQ(r->out_len, 0);
	CHECK_EQ(r->err_len, 0);
}

TEST(hv_send_hex_message_and_options_before_subcommand)
{
	struct fake_server *s = serve("ok\n");
	struct run *r = RUN("hv", "--control", s->path, "send", "--index", "1", "--hex", "0A 0b");

	server_finish(s);
	CHECK_STATUS(r, 0);
	CHECK_STR(s->request.p, "send 1 0a0b\n");
}

TEST(hv_send_argument_errors)
{
	struct run *r = RUN("hv", "send", "-c", "/nonexistent/s", "hello");

	CHECK_STATUS(r, 2);
	CHECK_HAS(r->err, "--index");
	r = RUN("hv", "send", "-c", "/nonexistent/s", "--index", "255", "hello");
	CHECK_STATUS(r, 2);
	r = RUN("hv", "send", "-c", "/nonexistent/s", "--index", "0", "--hex", "abc");
	CHECK_STATUS(r, 2);
	CHECK_HAS(r->err, "odd number of digits");
	r = RUN("hv", "send", "-c", "/nonexistent/s", "--index", "0", "--hex", "ab", "text");
	CHECK_STATUS(r, 2);
	r = RUN("hv", "send", "-c", "/nonexistent/s", "--index", "0");
	CHECK_STATUS(r, 2);
	r = RUN("hv", "send", "-c", "/nonexistent/s", "--index", "0", "");
	CHECK_STATUS(r, 2);
	r = RUN("hv", "send", "--index", "0", "x");
	CHECK_STATUS(r, 2);
	CHECK_HAS(r->err, "OPENVMC_HV_CONTROL");
}

TEST(hv_send_large_message_survives_partial_writes)
{
	/* The line (twice LEN) is larger than a socket buffer and the server
	 * starts reading late: the client must loop on send. LEN stays below
	 * the kernel's limit for one argument (128 KiB). */
	enum { LEN = 120000 };
	char *msg = malloc(LEN + 1);
	char *expect = malloc(2 * LEN + 16);

	if (!msg || !expect)
		FAIL("out of memory");
	for (size_t i = 0; i < LEN; i++)
		msg[i] = (char)('a' + i % 26);
	msg[LEN] = '\0';
	int n = snprintf(expect, 16, "send 0 ");

	for (size_t i = 0; i < LEN; i++)
		n += snprintf(expect + n, 3, "%02x", (unsigned char)msg[i]);
	expect[n++] = '\n';
	expect[n] = '\0';

	struct fake_server *s = server_new("ok\n");

	s->delay_ms = 300;
	server_start(s);
	struct run *r = run_env(NULL, NULL, ARGS("hv", "send", "-c", s->path, "--index", "0", msg));

	server_finish(s);
	bool same = s->request.len == (size_t)n && memcmp(s->request.p, expect, (size_t)n) == 0;

	free(msg);
	free(expect);
	CHECK_STATUS(r, 0);
	CHECK(same);
}

TEST(reply_before_the_whole_request_is_read)
{
	/* The server refuses an overlong line after its first bytes and closes. */
	enum { LEN = 120000 };
	char *msg = malloc(LEN + 1);

	if (!msg)
		FAIL("out of memory");
	memset(msg, 'x', LEN);
	msg[LEN] = '\0';
	struct fake_server *s = server_new("error E2BIG: line too long\n");

	s->early = true;
	server_start(s);
	struct run *r = run_env(NULL, NULL, ARGS("hv", "send", "-c", s->path, "--index", "0", msg));

	free(msg);
	server_finish(s);
	CHECK_STATUS(r, 1);
	CHECK_HAS(r->err, "vmcctl: send: E2BIG: line too long");
}

TEST(hv_restart_and_sessions_lines)
{
	struct fake_server *s = serve("ok\n");
	struct run *r = RUN("hv", "restart", "-c", s->path);

	server_finish(s);
	CHECK_STATUS(r, 0);
	/* The control protocol's default. */
	CHECK_STR(s->request.p, "restart failed\n");

	s = serve("ok\n");
	r = RUN("hv", "restart", "--failed", "-c", s->path);
	server_finish(s);
	CHECK_STATUS(r, 0);
	CHECK_STR(s->request.p, "restart failed\n");

	s = serve("ok\n");
	r = RUN("hv", "restart", "--deregistered", "-c", s->path);
	server_finish(s);
	CHECK_STATUS(r, 0);
	CHECK_STR(s->request.p, "restart deregistered\n");

	r = RUN("hv", "restart", "--failed", "--deregistered", "-c", "/nonexistent");
	CHECK_STATUS(r, 2);

	s = serve("ok\n0 ready hmc=test\n");
	r = run_env(NULL, (const char *const[]){NULL}, ARGS("hv", "sessions", "-c", s->path));
	server_finish(s);
	CHECK_STATUS(r, 0);
	CHECK_STR(s->request.p, "sessions\n");
	CHECK_STR(r->out, "0 ready hmc=test\n");
}

TEST(hv_socket_from_environment)
{
	struct fake_server *s = serve("ok\n");
	char env[160];

	snprintf(env, sizeof(env), "OPENVMC_HV_CONTROL=%s", s->path);
	struct run *r = run_env(NULL, ARGS(env), ARGS("hv", "sessions"));

	server_finish(s);
	CHECK_STATUS(r, 0);
	CHECK_STR(s->request.p, "sessions\n");
}

TEST(status_prints_body_on_ok)
{
	struct fake_server *s = serve("ok\nstate: ready (3)\nsessions: 1\n");
	struct run *r = RUN("status", "-c", s->path);

	server_finish(s);
	CHECK_STATUS(r, 0);
	CHECK_STR(s->request.p, "status\n");
	CHECK_STR(r->out, "state: ready (3)\nsessions: 1\n");
	CHECK_EQ(r->err_len, 0);
}

TEST(status_socket_from_environment)
{
	struct fake_server *s = serve("ok\nfine\n");
	char env[160];

	snprintf(env, sizeof(env), "OPENVMC_CONTROL=%s", s->path);
	struct run *r = run_env(NULL, ARGS(env), ARGS("status"));

	server_finish(s);
	CHECK_STATUS(r, 0);
	CHECK_STR(r->out, "fine\n");

	r = RUN("status");
	CHECK_STATUS(r, 2);
	CHECK_HAS(r->err, "OPENVMC_CONTROL");
}

TEST(status_error_reply_exits_1)
{
	struct fake_server *s = serve("error ENOTCONN: not attached to a hypervisor\n");
	struct run *r = RUN("status", "--control", s->path);

	server_finish(s);
	CHECK_STATUS(r, 1);
	CHECK_STR(s->request.p, "status\n");
	CHECK_HAS(r->err, "ENOTCONN: not attached to a hypervisor");
	CHECK_HAS(r->err, "vmcctl: status: ");
	CHECK_EQ(r->out_len, 0);
}

TEST(error_reply_body_goes_to_stderr)
{
	struct fake_server *s = serve("error ENOTCONN: no session at index 0\ndetail line\n");
	struct run *r = RUN("hv", "send", "-c", s->path, "--index", "0", "hello");

	server_finish(s);
	CHECK_STATUS(r, 1);
	CHECK_HAS(r->err, "ENOTCONN: no session at index 0");
	CHECK_HAS(r->err, "detail line");
	CHECK_EQ(r->out_len, 0);
}

TEST(reply_in_small_pieces_is_assembled)
{
	struct fake_server *s = server_new("ok\nline one\nline two\nlast without newline");

	s->chunk = 3;
	server_start(s);
	struct run *r = RUN("status", "-c", s->path);

	server_finish(s);
	CHECK_STATUS(r, 0);
	CHECK_STR(r->out, "line one\nline two\nlast without newline\n");
}

TEST(malformed_or_empty_reply_fails)
{
	struct fake_server *s = serve("hello\n");
	struct run *r = RUN("status", "-c", s->path);

	server_finish(s);
	CHECK_STATUS(r, 1);
	CHECK_HAS(r->err, "malformed reply");

	s = serve("");
	r = RUN("status", "-c", s->path);
	server_finish(s);
	CHECK_STATUS(r, 1);
	CHECK_HAS(r->err, "empty reply");

	s = serve("okay\n");
	r = RUN("status", "-c", s->path);
	server_finish(s);
	CHECK_STATUS(r, 1);
}

TEST(no_reply_times_out_with_exit_3)
{
	struct fake_server *s = server_new(NULL);

	s->no_reply = true;
	server_start(s);
	int64_t t0 = (int64_t)now_ms();
	struct run *r = RUN("status", "-c", s->path, "--timeout", "200");
	int64_t elapsed = (int64_t)now_ms() - t0;

	server_finish(s);
	CHECK_STATUS(r, 3);
	CHECK_HAS(r->err, "timed out");
	CHECK(elapsed < 10000);
}

TEST(ctl_sends_words_joined)
{
	struct fake_server *s = serve("ok\nx\n");
	struct run *r = RUN("ctl", "-c", s->path, "trace", "level", "-1");

	server_finish(s);
	CHECK_STATUS(r, 0);
	CHECK_STR(s->request.p, "trace level -1\n");
	CHECK_STR(r->out, "x\n");

	r = RUN("ctl", "-c", s->path);
	CHECK_STATUS(r, 2);
	r = RUN("ctl", "-c", s->path, "two\nlines");
	CHECK_STATUS(r, 2);
}

TEST(connect_to_missing_socket_fails)
{
	struct run *r = RUN("status", "-c", "/nonexistent/control");

	CHECK_STATUS(r, 1);
	CHECK_HAS(r->err, "/nonexistent/control: No such file or directory");

	char longpath[200];

	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	r = RUN("status", "-c", longpath);
	CHECK_STATUS(r, 1);
	CHECK_HAS(r->err, "File name too long");
}

/* ---- trace against the fake server ---------------------------------------- */

TEST(trace_prints_lines_until_the_server_closes)
{
	struct fake_server *s = serve("ok\n12:00:00.000 hv: one\n12:00:00.001 driver: two\n");
	struct run *r = RUN("trace", "-c", s->path);

	server_finish(s);
	CHECK_STATUS(r, 0);
	CHECK_STR(s->request.p, "trace\n");
	CHECK_STR(r->out, "12:00:00.000 hv: one\n12:00:00.001 driver: two\n");
	CHECK_EQ(r->err_len, 0);

	/* A last line without its newline still counts. */
	s = serve("ok\nfirst\nlast");
	r = RUN("trace", "-c", s->path);
	server_finish(s);
	CHECK_STATUS(r, 0);
	CHECK_STR(r->out, "first\nlast\n");
}

TEST(trace_count_stops_early_or_fails_short)
{
	struct fake_server *s = server_new("ok\none\ntwo\nthree\n");
	struct run *r;

	s->chunk = 4;
	server_start(s);
	r = RUN("trace", "--count", "2", "--control", s->path);
	server_finish(s);
	CHECK_STATUS(r, 0);
	CHECK_STR(r->out, "one\ntwo\n");

	s = serve("ok\none\ntwo\n");
	r = RUN("trace", "--count", "3", "-c", s->path);
	server_finish(s);
	CHECK_STATUS(r, 1);
	CHECK_STR(r->out, "one\ntwo\n");
	CHECK_HAS(r->err, "after 2 of 3 lines");
}

TEST(trace_error_reply_and_bad_arguments)
{
	struct fake_server *s = serve("error EBUSY: already 8 trace clients\n");
	struct run *r = RUN("trace", "-c", s->path);

	server_finish(s);
	CHECK_STATUS(r, 1);
	CHECK_HAS(r->err, "vmcctl: trace: EBUSY: already 8 trace clients");
	CHECK_EQ(r->out_len, 0);

	s = serve("hello\n");
	r = RUN("trace", "-c", s->path);
	server_finish(s);
	CHECK_STATUS(r, 1);
	CHECK_HAS(r->err, "malformed reply");

	r = RUN("trace", "-c", "/nonexistent/s", "--count", "x");
	CHECK_STATUS(r, 2);
	r = RUN("trace", "-c", "/nonexistent/s", "extra");
	CHECK_STATUS(r, 2);
	r = RUN("trace");
	CHECK_STATUS(r, 2);
	CHECK_HAS(r->err, "OPENVMC_CONTROL");
}

TEST(trace_without_a_reply_times_out)
{
	struct fake_server *s = server_new(NULL);
	struct run *r;

	s->no_reply = true;
	server_start(s);
	r = RUN("trace", "-c", s->path, "--timeout", "200");
	server_finish(s);
	CHECK_STATUS(r, 3);
	CHECK_HAS(r->err, "timed out");
}

/* ---- live: the real openvmc (echo backend) ---------------------------------- */

/* openvmc serving a fresh dir/ibmvmc with a control socket, stopped when the test ends. */
static struct daemon *live_daemon(void)
{
	struct daemon *d = new_daemon(NULL);

	spawn_prog(d, OPENVMC_BIN, NULL);
	return d;
}

/* vmcctl in the background, its stdout (and stderr) on a pipe. */
struct bg {
	pid_t pid;
	int out;
};

static void bg_cleanup(void *arg)
{
	struct bg *b = arg;

	if (b->pid > 0) {
		kill(b->pid, SIGKILL);
		waitpid(b->pid, NULL, 0);
	}
	if (b->out >= 0)
		close(b->out);
	free(b);
}

static struct bg *bg_spawn(const char *const *args)
{
	const char *argv[16] = {VMCCTL_BIN};
	struct bg *b = calloc(1, sizeof(*b));
	int n = 1;

	if (!b)
		FAIL("out of memory");
	b->out = -1;
	ovmc_test_defer(bg_cleanup, b);
	for (; *args && n < 15; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	b->pid = spawn_piped(argv, true, &b->out, NULL);
	return b;
}

/* All it printed until it exits; its exit code (FAIL if it does not end). */
static int bg_finish(struct bg *b, char *out, size_t size, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;
	size_t len = 0;
	int status;

	for (;;) {
		struct pollfd p = {.fd = b->out, .events = POLLIN};
		int left = (int)(end - now_ms());
		ssize_t n;

		if (left <= 0 || poll(&p, 1, left) != 1)
			FAIL("vmcctl still running after %d ms; printed \"%.*s\"", ms, (int)len,
			     out);
		n = read(b->out, out + len, size - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len + 1 == size)
			FAIL("vmcctl printed more than %zu bytes", size);
	}
	out[len] = '\0';
	status = wait_child(b->pid, ms);
	if (status < 0)
		FAIL("vmcctl still running after %d ms", ms);
	b->pid = 0;
	if (!WIFEXITED(status))
		FAIL("vmcctl died (status 0x%x)", status);
	return WEXITSTATUS(status);
}

TEST(live_query_wait_ready)
{
	struct daemon *d = live_daemon();
	struct run *r = RUN("-d", d->path, "query", "--wait-ready=10000");

	CHECK_STATUS(r, 0);
	CHECK_HAS(r->out, "have_vmc: yes\n");
	CHECK_HAS(r->out, "state: ready (3)\n");
	CHECK_HAS(r->out, "drc_index: 0x");
}

TEST(live_open_echoes_message)
{
	struct daemon *d = live_daemon();
	struct run *r = RUN("-d", d->path, "open", "--hmc-id", "test", "--message", "hello",
			    "--expect", "1");

	CHECK_STATUS(r, 0);
	CHECK_EQ(r->out_len, 5);
	CHECK_MEM(r->out, "hello", 5);
}

TEST(live_open_hex_output)
{
	struct daemon *d = live_daemon();
	struct run *r = RUN("-d", d->path, "open", "--hmc-id", "test", "--message", "hello",
			    "--message", "world", "--hex");

	CHECK_STATUS(r, 0);
	CHECK_STR(r->out, "68656c6c6f\n776f726c64\n");

	r = RUN("-d", d->path, "open", "--hmc-id", "test", "--hex-in", "--message", "00ff10",
		"--hex", "--count", "50", "--stats");
	CHECK_STATUS(r, 0);
	CHECK_EQ(r->out_len, 50 * 7);
	CHECK_HAS(r->err, "stats: sent 50 messages");
}

TEST(live_pipe_echoes_lines)
{
	struct daemon *d = live_daemon();
	struct run *r =
		run_env("one\ntwo\nthree\n", NULL, ARGS("-d", d->path, "pipe", "--hmc-id", "test"));

	CHECK_STATUS(r, 0);
	CHECK_STR(r->out, "one\ntwo\nthree\n");

	r = run_env("6869\n0a0b\n", NULL, ARGS("-d", d->path, "pipe", "--hmc-id", "test", "--hex"));
	CHECK_STATUS(r, 0);
	CHECK_STR(r->out, "6869\n0a0b\n");
}

TEST(live_status_of_the_daemon)
{
	struct daemon *d = live_daemon();
	struct run *r = RUN("-d", d->path, "query", "--wait-ready=10000");

	CHECK_STATUS(r, 0);
	r = RUN("-d", d->path, "open", "--hmc-id", "test", "--message", "hello");
	CHECK_STATUS(r, 0);
	r = RUN("status", "--control", d->ctl);
	CHECK_STATUS(r, 0);
	CHECK_EQ(r->err_len, 0);
	CHECK_HAS(r->out, "driver: state ready (3)");
	CHECK_HAS(r->out, "hv: partition 1 state ");
	CHECK_HAS(r->out, "messages-in 1 messages-out 1 bytes-in 5 bytes-out 5");
	CHECK_HAS(r->out, "backend: echo\n");

	/* Also from the environment. */
	char env[160];

	snprintf(env, sizeof(env), "OPENVMC_CONTROL=%s", d->ctl);
	r = run_env(NULL, ARGS(env), ARGS("status"));
	CHECK_STATUS(r, 0);
	CHECK_HAS(r->out, "driver: state ready (3)");
}

TEST(live_hv_restart_default_is_the_control_protocols)
{
	struct daemon *d = live_daemon();
	struct run *r = RUN("-d", d->path, "query", "--wait-ready=10000");
	struct run *plain, *ours;

	CHECK_STATUS(r, 0);
	ours = RUN("hv", "restart", "-c", d->ctl);
	CHECK_STATUS(ours, 0);
	r = RUN("-d", d->path, "query", "--wait-ready=10000");
	CHECK_STATUS(r, 0);
	plain = RUN("ctl", "-c", d->ctl, "restart");
	CHECK_STATUS(plain, 0);
	CHECK_HAS(plain->out, "restarted");
	CHECK_STR(ours->out, plain->out);
}

TEST(live_hv_send_reaches_a_blocked_open)
{
	struct daemon *d = live_daemon();
	struct bg *app = bg_spawn(ARGS("-d", d->path, "open", "--hmc-id", "blocked", "--expect",
				       "1", "--timeout", "30000"));
	char out[256];
	struct run *r;

	/* Sends nothing: once its session is open it waits in read. */
	ctl_wait(d, "sessions", "index 0: open", READY_TIMEOUT_MS);
	r = RUN("hv", "sessions", "-c", d->ctl);
	CHECK_STATUS(r, 0);
	CHECK_HAS(r->out, "\"blocked\"");
	r = RUN("hv", "send", "-c", d->ctl, "--index", "0", "hello from the hypervisor");
	CHECK_STATUS(r, 0);
	CHECK_EQ(bg_finish(app, out, sizeof(out), 10000), 0);
	CHECK_STR(out, "hello from the hypervisor");

	/* No session any more: the hypervisor refuses. */
	ctl_wait(d, "sessions", "index 0: closed", 5000);
	r = RUN("hv", "send", "-c", d->ctl, "--index", "0", "late");
	CHECK_STATUS(r, 1);
	CHECK_HAS(r->err, "ENOTCONN");
}

/* ---- through the session socket: no device file, no FUSE, no root ---- */

static struct daemon *socket_daemon(void)
{
	struct daemon *d = new_daemon(NULL);

	d->sock_only = true;
	spawn_prog(d, OPENVMC_BIN, NULL);
	return d;
}

TEST(socket_option_reaches_a_daemon_without_a_device_file)
{
	struct daemon *d = socket_daemon();
	struct run *r = RUN("--socket", d->sock, "query", "--wait-ready");

	CHECK_STATUS(r, 0);
	CHECK_HAS(r->out, "state: ready (3)");
	r = RUN("--socket", d->sock, "open", "--hmc-id", "test", "--message", "hello", "--expect",
		"1");
	CHECK_STATUS(r, 0);
	CHECK_EQ(r->out_len, 5);
	CHECK_MEM(r->out, "hello", 5);
	r = run_env("one\ntwo\n", NULL, ARGS("--socket", d->sock, "pipe", "--hmc-id", "test"));
	CHECK_STATUS(r, 0);
	CHECK_STR(r->out, "one\ntwo\n");
}

TEST(missing_device_file_falls_back_to_its_session_socket)
{
	struct daemon *d = socket_daemon();
	struct run *r = RUN("-d", d->path, "open", "--hmc-id", "test", "--message", "fallback");

	CHECK(!exists(d->path));
	CHECK_STATUS(r, 0);
	CHECK_MEM(r->out, "fallback", 8);
	stop_daemon(d, SIGKILL);
	r = RUN("--socket", d->sock, "query");
	CHECK_STATUS(r, 1);
	CHECK_HAS(r->err, "open session socket");
}
