// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The live trace: the control socket's "trace" command and `vmcctl trace`
 * against the real programs. openvmc traces both ends of its channel (the
 * machine's view as "hv", the driver's as "driver"), openvmc-hvd and
 * openvmcd each their own. Checked: the lines an echo exchange gives, one
 * per CRQ entry and RDMA on each side, with their session, HMC index and
 * lengths; several clients at once; a client that never reads costs lines
 * (counted), not the channel; a client that goes is freed.
 *
 * Daemons and clients are cleaned up whatever the outcome (fixture.c).
 * Needs root and /dev/fuse.
 */
#include "fixture.h"
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef OPENVMC_BIN
#error OPENVMC_BIN must name the openvmc program
#endif
#ifndef HVD_BIN
#error HVD_BIN must name the openvmc-hvd program
#endif
#ifndef OPENVMCD_BIN
#error OPENVMCD_BIN must name the openvmcd program
#endif
#ifndef VMCCTL_BIN
#error VMCCTL_BIN must name the vmcctl program
#endif

/* Far more than any test's trace; reading stops there. */
#define TRACE_MAX (8u << 20)

/* A vmcctl run in the background (its stdout and stderr), or a raw trace
 * connection (no pid); what it gave so far in buf. */
struct reader {
	pid_t pid;
	int out;
	char *buf;
	size_t len;
	bool eof;
};

static void reader_cleanup(void *arg)
{
	struct reader *v = arg;

	if (v->pid > 0) {
		kill(v->pid, SIGKILL);
		waitpid(v->pid, NULL, 0);
	}
	if (v->out >= 0)
		close(v->out);
	free(v->buf);
	free(v);
}

static struct reader *reader_new(void)
{
	struct reader *v = calloc(1, sizeof(*v));

	if (!v)
		FAIL("out of memory");
	v->out = -1;
	ovmc_test_defer(reader_cleanup, v);
	v->buf = malloc(TRACE_MAX + 1);
	if (!v->buf)
		FAIL("out of memory");
	v->buf[0] = '\0';
	return v;
}

static struct reader *vmcctl_spawn(const char *const *args)
{
	const char *argv[16] = {VMCCTL_BIN};
	struct reader *v = reader_new();
	int n = 1;

	for (; *args && n < 15; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	v->pid = spawn_piped(argv, true, &v->out, NULL);
	return v;
}

#define VMCCTL(...) vmcctl_spawn((const char *const[]){__VA_ARGS__, NULL})

/* Gather output until it contains `what` (NULL: until EOF) or `ms` pass. */
static bool reader_read(struct reader *v, const char *what, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;

	while (!(what && strstr(v->buf, what))) {
		struct pollfd p = {.fd = v->out, .events = POLLIN};
		int left = (int)(end - now_ms());
		ssize_t n;

		if (v->eof || v->len == TRACE_MAX || left <= 0 || poll(&p, 1, left) != 1)
			return false;
		n = read(v->out, v->buf + v->len, TRACE_MAX - v->len);
		if (n <= 0) {
			v->eof = true;
			return what == NULL;
		}
		v->len += (size_t)n;
		v->buf[v->len] = '\0';
	}
	return true;
}

/* Read to the end and return the exit code; FAIL if it does not end. */
static int vmcctl_finish(struct reader *v, int ms)
{
	int status;

	if (!reader_read(v, NULL, ms))
		FAIL("vmcctl still writing after %d ms; got:\n%s", ms, v->buf);
	status = wait_child(v->pid, ms);
	if (status < 0)
		FAIL("vmcctl still running after %d ms", ms);
	v->pid = 0;
	if (!WIFEXITED(status))
		FAIL("vmcctl died (status 0x%x); output:\n%s", status, v->buf);
	return WEXITSTATUS(status);
}

/* `vmcctl trace -c <socket>` plus `extra`, returning once the daemon streams to it. */
static struct reader *trace_client(const struct daemon *d, const char *const *extra,
				   unsigned clients)
{
	const char *args[12] = {"trace", "--control", d->ctl};
	char want[64];
	int n = 3;

	for (; extra && *extra && n < 11; extra++)
		args[n++] = *extra;
	args[n] = NULL;

	struct reader *v = vmcctl_spawn(args);

	snprintf(want, sizeof(want), "trace-clients %u ", clients);
	ctl_wait(d, "status", want, READY_TIMEOUT_MS);
	return v;
}

static unsigned long long status_value(const struct daemon *d, const char *key)
{
	static char out[OUT_MAX];
	unsigned long long v;
	const char *p;

	ctl(d, "status", out, sizeof(out));
	p = strstr(out, key);
	if (!p || sscanf(p + strlen(key), " %llu", &v) != 1)
		FAIL("no \"%s\" in the status:\n%s", key, out);
	return v;
}

static unsigned count_lines(const char *s)
{
	unsigned n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/*
 * Every line is "HH:MM:SS.mmm <side>: <text>" with a side in `sides`
 * ("hv", "driver"), or, if `notes`, a note of dropped lines. Returns the
 * sum of the notes' counts.
 */
static unsigned long long check_lines(const char *s, const char *const *sides, bool notes)
{
	unsigned long long dropped = 0;

	while (*s) {
		const char *nl = strchr(s, '\n');
		unsigned hh, mm, ss, ms;
		unsigned long long n;
		int at = 0;
		bool ok = false;

		if (!nl)
			FAIL("unterminated line \"%s\"", s);
		if (notes && sscanf(s, "... %llu trace lines dropped%n", &n, &at) == 1 &&
		    s + at == nl) {
			dropped += n;
			ok = n > 0;
		} else if (sscanf(s, "%2u:%2u:%2u.%3u %n", &hh, &mm, &ss, &ms, &at) == 4 &&
			   at == 13) {
			for (const char *const *side = sides; *side && !ok; side++)
				ok = strncmp(s + at, *side, strlen(*side)) == 0 &&
				     strncmp(s + at + strlen(*side), ": ", 2) == 0;
		}
		if (!ok)
			FAIL("not a trace line: \"%.*s\"", (int)(nl - s), s);
		s = nl + 1;
	}
	return dropped;
}

/* Lines: in `text`, the line containing `what` must appear. */
static void expect_line(const char *text, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void expect_line(const char *text, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (!strstr(text, what))
		FAIL("no \"%s\" in the trace:\n%s", what, text);
}

/* The counts of the complete notes of dropped lines so far. */
static unsigned long long notes_sum(const char *s)
{
	unsigned long long sum = 0;

	for (const char *p = s; (p = strstr(p, "\n... ")); p++) {
		unsigned long long n;
		int at = 0;

		if (sscanf(p + 1, "... %llu trace lines dropped%n", &n, &at) == 1 && at &&
		    p[1 + at] == '\n')
			sum += n;
	}
	return sum;
}

static void wait_fd_count(pid_t pid, int want, int ms)
{
	int n = -1;

	for (uint64_t end = now_ms() + (uint64_t)ms; now_ms() < end; sleep_ms(10)) {
		n = fd_count(pid);
		if (n == want)
			return;
	}
	FAIL("the daemon has %d fds, not %d, after %d ms", n, want, ms);
}

/* A raw trace connection of the test's own, which reads only when told. */
static struct reader *raw_trace(const struct daemon *d)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct reader *v = reader_new();

	v->out = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", d->ctl);
	if (v->out < 0 || connect(v->out, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		FAIL("control socket %s: %s", d->ctl, strerror(errno));
	if (write(v->out, "trace\n", 6) != 6)
		FAIL("control write: %s", strerror(errno));
	ctl_wait(d, "status", "trace-clients 1 ", READY_TIMEOUT_MS);
	return v;
}

static struct daemon *start_openvmc(const char *const *extra)
{
	struct daemon *d = new_daemon(NULL);

	spawn_prog(d, OPENVMC_BIN, extra);
	return d;
}

/* The number of CRQ entries and RDMAs the machine has counted so far. */
static unsigned long long machine_traffic(const struct daemon *d)
{
	return status_value(d, "entries-to-hv") + status_value(d, "entries-to-partition") +
	       status_value(d, " rdma ");
}

/* A SIGNAL line starting with `head` (up to "buf=") of `len` bytes? */
static bool has_signal(const char *text, const char *head, unsigned len)
{
	for (const char *p = text; (p = strstr(p, head)); p++) {
		unsigned buf, l;

		if (sscanf(p + strlen(head), "%u len=%u", &buf, &l) == 2 && l == len)
			return true;
	}
	return false;
}

/* ---- tests ---- */

TEST(trace_help)
{
	struct reader *v = VMCCTL("trace", "--help");

	CHECK_EQ(vmcctl_finish(v, 5000), 0);
	CHECK(strstr(v->buf, "Usage: vmcctl trace"));
	CHECK(strstr(v->buf, "--count N"));
	CHECK(strstr(v->buf, "--control PATH"));
	CHECK(strstr(v->buf, "--timeout MS"));

	v = VMCCTL("trace", "--count", "0", "--control", "/nonexistent");
	CHECK_EQ(vmcctl_finish(v, 5000), 2);
	v = VMCCTL("trace", "--control", "/nonexistent/ctl");
	CHECK_EQ(vmcctl_finish(v, 5000), 1);
	CHECK(strstr(v->buf, "No such file or directory"));
}

TEST(trace_count_shows_open_signal_and_rdma_of_an_echo)
{
	static const char *const both[] = {"hv", "driver", NULL};
	struct daemon *d = start_openvmc(NULL);
	unsigned long long before, per_echo;
	const char *last;
	struct reader *v;
	char count[32];

	/* One exchange counts its entries and RDMAs; the same exchange again,
	 * traced, must give one line each on each side, no more, no less. */
	CLIENT("wait-ready", d->path);
	before = machine_traffic(d);
	CLIENT("echo", d->path, "HMC-T", "1", "8");
	per_echo = machine_traffic(d) - before;
	CHECK(per_echo > 0);
	snprintf(count, sizeof(count), "%llu", 2 * per_echo);
	v = trace_client(d, ARGS("--count", count, "--timeout", "30000"), 1);
	CLIENT("echo", d->path, "HMC-T", "1", "8");
	CHECK_EQ(vmcctl_finish(v, CLIENT_TIMEOUT_MS), 0);

	CHECK_EQ(count_lines(v->buf), 2 * per_echo);
	check_lines(v->buf, both, false);
	/* Session 2 (the first exchange had 1) at HMC index 0, both views. */
	expect_line(v->buf, " hv: partition 1 -> hv: OPEN sn=2 idx=0 ");
	expect_line(v->buf, " driver: partition -> hv: OPEN sn=2 idx=0 ");
	expect_line(v->buf, " hv: hv -> partition 1: OPEN_RESP status=0 sn=2 idx=0 ");
	expect_line(v->buf, " driver: hv -> partition: OPEN_RESP status=0 sn=2 idx=0 ");
	for (unsigned len = 1; len <= 8; len++) {
		for (int side = 0; side < 2; side++) {
			const char *part = side ? "partition" : "partition 1";
			const char *who = side ? "driver" : "hv";
			char up[160], down[160];

			snprintf(up, sizeof(up), " %s: %s -> hv: SIGNAL sn=2 idx=0 buf=", who,
				 part);
			snprintf(down, sizeof(down), " %s: hv -> %s: SIGNAL sn=2 idx=0 buf=", who,
				 part);
			if (!has_signal(v->buf, up, len) || !has_signal(v->buf, down, len))
				FAIL("%s: no SIGNAL of %u bytes each way:\n%s", who, len, v->buf);
			expect_line(v->buf, " %s: %s: RDMA %u bytes partition -> hv (", who, part,
				    len);
			expect_line(v->buf, " %s: %s: RDMA %u bytes hv -> partition (", who, part,
				    len);
		}
	}
	expect_line(v->buf, " hv: partition 1 -> hv: CLOSE sn=2 idx=0\n");
	expect_line(v->buf, " driver: hv -> partition: CLOSE_RESP status=0 sn=2 idx=0\n");
	/* The count ended at the exchange's last entry: as the driver saw it,
	 * after the machine. */
	last = v->len > 1 ? memrchr(v->buf, '\n', v->len - 1) : NULL;
	if (!last || strncmp(last + 13, " driver: ", 9) != 0)
		FAIL("the trace does not end with a driver line:\n%s", v->buf);
	/* The OPEN comes before any SIGNAL. */
	CHECK(strstr(v->buf, ": OPEN sn=2") < strstr(v->buf, ": SIGNAL sn=2"));
}

TEST(two_trace_clients_follow_until_the_daemon_stops)
{
	static const char *const both[] = {"hv", "driver", NULL};
	struct daemon *d = start_openvmc(NULL);
	struct reader *a, *b;
	const char *end = " driver: hv -> partition: CLOSE_RESP status=0 sn=1 idx=0\n";

	CLIENT("wait-ready", d->path);
	a = trace_client(d, NULL, 1);
	b = trace_client(d, NULL, 2);
	CLIENT("echo", d->path, "HMC-TWO", "1", "16");
	CHECK(reader_read(a, end, 10000));
	CHECK(reader_read(b, end, 10000));
	/* The daemon stopping is the normal end of a trace. */
	stop_daemon(d, SIGTERM);
	CHECK_EQ(vmcctl_finish(a, 5000), 0);
	CHECK_EQ(vmcctl_finish(b, 5000), 0);
	check_lines(a->buf, both, false);
	CHECK(strcmp(a->buf, b->buf) == 0);
	expect_line(a->buf, " hv: partition 1 -> hv: SIGNAL sn=1 idx=0 buf=");
	expect_line(a->buf, " hv: partition 1: RDMA 16 bytes hv -> partition (");
}

TEST(a_trace_client_that_never_reads_does_not_stall_the_channel)
{
	static const char *const both[] = {"hv", "driver", NULL};
	struct daemon *d = start_openvmc(NULL);
	unsigned long long before, dropped, noted;
	struct reader *v;

	CLIENT("wait-ready", d->path);
	before = machine_traffic(d);
	v = raw_trace(d);
	/* Megabytes of trace lines while the client reads none of them. */
	CLIENT("echo", d->path, "HMC-SLOW", "1", "4096");
	dropped = status_value(d, "trace-dropped");
	CHECK(dropped > 0);
	CHECK_EQ(status_value(d, "trace-clients"), 1);
	/* Every entry and RDMA, on each side, was queued or counted as dropped. */
	CHECK_EQ(status_value(d, "trace-lines") + dropped, 2 * (machine_traffic(d) - before));

	/* Reading at last: what fitted, then the count of what did not (in
	 * more than one note if the buffer had room for a moment). */
	for (uint64_t end = now_ms() + 10000; notes_sum(v->buf) != dropped;) {
		if (now_ms() > end)
			FAIL("notes of %llu dropped lines, not %llu; got %zu bytes",
			     notes_sum(v->buf), dropped, v->len);
		reader_read(v, "never in a trace", 50);
	}
	CHECK(strncmp(v->buf, "ok\n", 3) == 0);
	noted = check_lines(v->buf + 3, both, true);
	CHECK_EQ(noted, dropped);
}

TEST(a_trace_client_that_goes_is_freed)
{
	struct daemon *d = start_openvmc(NULL);
	struct reader *v;
	int base;

	CLIENT("wait-ready", d->path);
	base = fd_count(d->pid);

	/* Idle when killed. */
	v = trace_client(d, NULL, 1);
	CHECK(fd_count(d->pid) > base);
	kill(v->pid, SIGKILL);
	CHECK(wait_child(v->pid, 5000) >= 0);
	v->pid = 0;
	wait_fd_count(d->pid, base, 5000);
	ctl_wait(d, "status", "trace-clients 0 ", 5000);

	/* Gone with lines still waiting for it. */
	v = raw_trace(d);
	CLIENT("echo", d->path, "HMC-GONE", "1", "1024");
	CHECK(status_value(d, "trace-dropped") > 0);
	close(v->out);
	v->out = -1;
	wait_fd_count(d->pid, base, 5000);
	ctl_wait(d, "status", "trace-clients 0 ", 5000);

	/* Still serving, and traces again. */
	v = trace_client(d, ARGS("--count", "1"), 1);
	CLIENT("echo", d->path, "HMC-AGAIN", "1", "1");
	CHECK_EQ(vmcctl_finish(v, 10000), 0);
	CHECK_EQ(count_lines(v->buf), 1);
	wait_fd_count(d->pid, base, 5000);
}

/* The hypervisor daemon's socket directory, made by it. */
TEST(each_daemon_traces_its_own_side)
{
	static const char *const hv_only[] = {"hv", NULL};
	static const char *const drv_only[] = {"driver", NULL};
	struct hvd *hv = new_hvd();
	struct daemon *h = hv->d, *d = new_daemon(NULL);
	struct reader *th, *td;

	spawn_hvd(hv, HVD_BIN, NULL);
	spawn_prog(d, OPENVMCD_BIN, ARGS("--foreground", "--socket", hv->sock, "--retry-ms", "50"));
	CLIENT("wait-ready", d->path);
	th = trace_client(h, NULL, 1);
	td = trace_client(d, NULL, 1);
	CLIENT("echo", d->path, "HMC-TWO-DAEMONS", "1", "4");
	CHECK(reader_read(th, " hv: hv -> partition 1: CLOSE_RESP status=0 sn=1 idx=0\n", 10000));
	CHECK(reader_read(td, " driver: hv -> partition: CLOSE_RESP status=0 sn=1 idx=0\n", 10000));
	/* The driver daemon first: the hypervisor's going would reset it. */
	stop_daemon(d, SIGTERM);
	CHECK_EQ(vmcctl_finish(td, 5000), 0);
	stop_daemon(h, SIGTERM);
	CHECK_EQ(vmcctl_finish(th, 5000), 0);
	check_lines(th->buf, hv_only, false);
	check_lines(td->buf, drv_only, false);
	expect_line(th->buf, " hv: partition 1 -> hv: OPEN sn=1 idx=0 ");
	expect_line(th->buf, " hv: partition 1: RDMA 4 bytes partition -> hv (");
	expect_line(td->buf, " driver: partition -> hv: OPEN sn=1 idx=0 ");
	expect_line(td->buf, " driver: partition: RDMA 4 bytes hv -> partition (");
}
