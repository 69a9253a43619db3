// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * devclient: an application of the kind written for Linux's /dev/ibmvmc,
 * used by the device tests (device_test.c, daemons_test.c, l2dev_test.c)
 * against openvmc's device file. It touches the device only through open,
 * ioctl, read, write, poll and close (plus two threads for two scenarios,
 * a timer signal for one and deliberately bad pointers for another), so it
 * would run unchanged against the kernel driver.
 *
 *   devclient [--linux] SCENARIO PATH [ARGS]
 *
 * Each scenario checks one behaviour of the ABI (PROTOCOL.md 5.4), prints
 * what it saw on stdout and exits 0 when everything matched, 1 with a
 * message on stderr otherwise, 2 for bad usage. An ID argument is text
 * (padded with NULs to 32 bytes) or "hex:" and 64 hex digits. --linux
 * expects the kernel driver where openvmc deliberately differs from it
 * (docs/linux-differences.md): the guest tests run it against ibmvmc.ko.
 */
#include <openvmc/ibmvmc.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <unistd.h>

#define READY_STATE 3
#define WAIT_READY_MS 10000
#define BUSY_RETRY_MS 10000

/* QUERY in the other encoding: generic and powerpc differ (PROTOCOL.md 5.3). */
#define FOREIGN_QUERY (VMC_IOCTL_QUERY == 0x800CCC01u ? 0x400CCC01u : 0x800CCC01u)

static const char *scenario = "devclient";
static bool linux_driver;

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "devclient %s: ", scenario);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

static const char *ename(int err)
{
	const char *n = strerrorname_np(err);

	return n ? n : "E?";
}

static void sleep_ms(int ms)
{
	poll(NULL, 0, ms);
}

/* Expect a call (its result passed in, errno still set) to have failed with `want`. */
static int expect_errno(const char *what, long rc, int want)
{
	int err = errno;

	if (rc >= 0)
		return fail("%s: succeeded (%ld), expected %s", what, rc, ename(want));
	if (err != want)
		return fail("%s: %s, expected %s", what, ename(err), ename(want));
	printf("%s: %s\n", what, ename(err));
	return 0;
}

static int parse_id(const char *s, uint8_t id[HMC_ID_LEN])
{
	memset(id, 0, HMC_ID_LEN);
	if (strncmp(s, "hex:", 4) == 0) {
		s += 4;
		if (strlen(s) != 2 * HMC_ID_LEN)
			return -1;
		for (int i = 0; i < HMC_ID_LEN; i++) {
			unsigned v;

			if (sscanf(s + 2 * i, "%2x", &v) != 1)
				return -1;
			id[i] = (uint8_t)v;
		}
		return 0;
	}
	if (strlen(s) > HMC_ID_LEN)
		return -1;
	memcpy(id, s, strlen(s));
	return 0;
}

static int open_dev(const char *path, int flags)
{
	int fd = open(path, flags);

	if (fd < 0)
		fail("open %s: %s", path, strerror(errno));
	return fd;
}

static int query(int fd, struct ibmvmc_query_struct *q)
{
	return ioctl(fd, VMC_IOCTL_QUERY, q);
}

static int wait_ready(int fd)
{
	struct ibmvmc_query_struct q;

	for (int ms = 0; ms < WAIT_READY_MS; ms += 10) {
		if (query(fd, &q) != 0)
			return fail("QUERY: %s", strerror(errno));
		if (q.state == READY_STATE)
			return 0;
		sleep_ms(10);
	}
	return fail("the channel did not become ready (state %d)", q.state);
}

/*
 * SETHMCID with the id placed across a page boundary: the daemon must
 * fetch all 32 bytes from two pages.
 */
static int set_id(int fd, const uint8_t id[HMC_ID_LEN])
{
	static uint8_t pages[2 * 4096] __attribute__((aligned(4096)));
	uint8_t *p = pages + 4096 - HMC_ID_LEN / 2;

	memcpy(p, id, HMC_ID_LEN);
	return ioctl(fd, VMC_IOCTL_SETHMCID, p);
}

/* Write one message; EBUSY (open not complete, no free buffer) is retried. */
static ssize_t write_msg(int fd, const void *buf, size_t len, unsigned *busy)
{
	for (int ms = 0;; ms++) {
		ssize_t n = write(fd, buf, len);

		if (n >= 0 || errno != EBUSY || ms == BUSY_RETRY_MS)
			return n;
		if (busy)
			(*busy)++;
		sleep_ms(1);
	}
}

/* open + wait for READY + SETHMCID. Returns the fd or -1. */
static int open_session(const char *path, const char *id_arg, int flags)
{
	uint8_t id[HMC_ID_LEN];
	int fd;

	if (parse_id(id_arg, id)) {
		fail("bad id \"%s\"", id_arg);
		return -1;
	}
	fd = open_dev(path, flags);
	if (fd < 0)
		return -1;
	if (wait_ready(fd)) {
		close(fd);
		return -1;
	}
	/* Right after another session closed, its connection may still be
	 * closing (EBUSY) or waiting for its first buffer (ENOBUFS). */
	for (int ms = 0; set_id(fd, id) != 0; ms += 5) {
		if ((errno != EBUSY && errno != ENOBUFS) || ms >= BUSY_RETRY_MS) {
			fail("SETHMCID: %s", ename(errno));
			close(fd);
			return -1;
		}
		sleep_ms(5);
	}
	return fd;
}

static void fill(uint8_t *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed * 131u + len * 7u + i * 13u + (i >> 8));
}

/* Send `len` bytes and check the echo byte for byte. */
static int round_trip(int fd, size_t len, unsigned seed, unsigned *busy)
{
	static uint8_t out[65536], in[65536];
	ssize_t n;

	fill(out, len, seed);
	n = write_msg(fd, out, len, busy);
	if (n != (ssize_t)len)
		return fail("write of %zu bytes: %s", len, n < 0 ? ename(errno) : "short");
	memset(in, 0, len);
	n = read(fd, in, len);
	if (n != (ssize_t)len)
		return fail("read of %zu bytes: %s (%zd)", len, n < 0 ? ename(errno) : "short", n);
	if (memcmp(in, out, len) != 0)
		return fail("echo of %zu bytes differs", len);
	return 0;
}

static unsigned seed_of(const char *id_arg)
{
	unsigned s = 0;

	for (const char *p = id_arg; *p; p++)
		s = s * 31u + (unsigned char)*p;
	return s;
}

/* ---- scenarios ---- */

static int do_query(const char *path, char **args)
{
	struct ibmvmc_query_struct q;
	int fd = open_dev(path, O_RDWR);

	(void)args;
	if (fd < 0)
		return 1;
	if (query(fd, &q) != 0)
		return fail("QUERY: %s", ename(errno));
	printf("have_vmc %d state %d drc 0x%08x\n", q.have_vmc, q.state, (unsigned)q.vmc_drc_index);
	close(fd);
	return 0;
}

static int do_wait_ready(const char *path, char **args)
{
	int fd = open_dev(path, O_RDWR);
	int rc;

	(void)args;
	if (fd < 0)
		return 1;
	rc = wait_ready(fd);
	if (!rc)
		printf("ready\n");
	close(fd);
	return rc;
}

static int do_requestvmc(const char *path, char **args)
{
	uint32_t drc = 0;
	int fd = open_dev(path, O_RDWR);

	(void)args;
	if (fd < 0)
		return 1;
	if (ioctl(fd, VMC_IOCTL_REQUESTVMC, &drc) != 0) {
		printf("requestvmc %s\n", ename(errno));
		close(fd);
		return 1;
	}
	printf("requestvmc 0 drc 0x%08x\n", drc);
	close(fd);
	return 0;
}

/* ID FROM TO: open, then echo every size FROM..TO. */
static int do_echo(const char *path, char **args)
{
	unsigned busy = 0, seed = seed_of(args[0]);
	long from = atol(args[1]), to = atol(args[2]);
	int fd = open_session(path, args[0], O_RDWR);

	if (fd < 0)
		return 1;
	if (from < 1 || to < from || to > 65536)
		return fail("bad sizes %ld..%ld", from, to);
	for (long len = from; len <= to; len++) {
		if (round_trip(fd, (size_t)len, seed, &busy))
			return 1;
		if (len == from)
			printf("open complete after %u EBUSY\n", busy);
	}
	printf("echoed %ld..%ld\n", from, to);
	close(fd);
	return 0;
}

static int do_nosession(const char *path, char **args)
{
	char buf[16] = "x";
	int fd = open_dev(path, O_RDWR);
	int rc = 0;

	(void)args;
	if (fd < 0)
		return 1;
	rc |= expect_errno("write before SETHMCID", write(fd, buf, 1), EIO);
	rc |= expect_errno("read before SETHMCID", read(fd, buf, sizeof(buf)), EIO);
	close(fd);
	return rc;
}

static int do_twice(const char *path, char **args)
{
	uint8_t id[HMC_ID_LEN];
	int fd = open_session(path, args[0], O_RDWR);
	int rc;

	if (fd < 0)
		return 1;
	parse_id(args[0], id);
	rc = expect_errno("second SETHMCID", set_id(fd, id), EIO);
	close(fd);
	return rc;
}

/* ID: SETHMCID from a process the daemon cannot see (another pid namespace). */
static int do_foreign(const char *path, char **args)
{
	uint8_t id[HMC_ID_LEN];
	int fd = open_dev(path, O_RDWR);
	int rc;

	if (fd < 0)
		return 1;
	if (parse_id(args[0], id) || wait_ready(fd))
		return 1;
	rc = expect_errno("SETHMCID from another pid namespace", set_id(fd, id), EFAULT);
	close(fd);
	return rc;
}

/* ID1 ID2: a second session while the only HMC connection is in use. */
static int do_busy(const char *path, char **args)
{
	uint8_t id[HMC_ID_LEN];
	int fd1 = open_session(path, args[0], O_RDWR);
	int fd2, rc;

	if (fd1 < 0)
		return 1;
	if (parse_id(args[1], id))
		return fail("bad id");
	fd2 = open_dev(path, O_RDWR);
	if (fd2 < 0)
		return 1;
	rc = expect_errno("SETHMCID on a second fd", set_id(fd2, id), EBUSY);
	close(fd2);
	close(fd1);
	return rc;
}

static int do_badioctl(const char *path, char **args)
{
	struct ibmvmc_query_struct q, q2;
	int arg = 0;
	int fd = open_dev(path, O_RDWR);
	int rc = 0;

	(void)args;
	if (fd < 0)
		return 1;
	rc |= expect_errno("ioctl _IO(0xCC, 3)", ioctl(fd, _IO(VMC_BASE, 0x03)), EINVAL);
	rc |= expect_errno("ioctl _IOR(0xCC, 0x7f, int)", ioctl(fd, _IOR(VMC_BASE, 0x7f, int), &arg), EINVAL);
	rc |= expect_errno("ioctl TCGETS-like 0x5401", ioctl(fd, 0x5401, &arg), EINVAL);
	/* The other architecture's QUERY number works the same; not on Linux. */
	if (linux_driver)
		rc |= expect_errno("foreign QUERY", ioctl(fd, FOREIGN_QUERY, &q2), EINVAL);
	else if (query(fd, &q) != 0 || ioctl(fd, FOREIGN_QUERY, &q2) != 0)
		rc |= fail("QUERY: %s", ename(errno));
	else if (memcmp(&q, &q2, sizeof(q)) != 0)
		rc |= fail("foreign QUERY differs: state %d vs %d", q2.state, q.state);
	else
		printf("foreign QUERY: state %d\n", q2.state);
	close(fd);
	return rc;
}

/* ID MTU */
static int do_mtu(const char *path, char **args)
{
	size_t mtu = (size_t)atol(args[1]);
	uint8_t *buf = calloc(1, mtu + 1);
	int fd = open_session(path, args[0], O_RDWR);
	int rc = 0;

	if (fd < 0 || !buf || mtu < 1)
		return 1;
	if (round_trip(fd, 1, 1, NULL))
		return 1;
	rc |= expect_errno("write of MTU+1", write(fd, buf, mtu + 1), EIO);
	rc |= expect_errno("read with MTU+1", read(fd, buf, mtu + 1), EINVAL);
	rc |= round_trip(fd, mtu, 2, NULL);
	if (!rc)
		printf("MTU round trip ok\n");
	free(buf);
	close(fd);
	return rc;
}

static int do_nonblock(const char *path, char **args)
{
	char buf[64];
	int fd = open_session(path, args[0], O_RDWR | O_NONBLOCK);
	int rc;

	if (fd < 0)
		return 1;
	rc = expect_errno("O_NONBLOCK read, nothing queued", read(fd, buf, sizeof(buf)), EAGAIN);
	close(fd);
	return rc;
}

static int do_poll(const char *path, char **args)
{
	int fd = open_session(path, args[0], O_RDWR);
	struct pollfd p = {.events = POLLIN};
	char buf[64];
	int n;

	if (fd < 0)
		return 1;
	p.fd = fd;
	/* Open completed and nothing queued: no POLLIN. */
	if (write_msg(fd, "first", 5, NULL) != 5 || read(fd, buf, sizeof(buf)) != 5)
		return fail("first round trip: %s", ename(errno));
	n = poll(&p, 1, 300);
	if (n != 0)
		return fail("poll with nothing queued: %d (revents 0x%x), expected a timeout", n,
			    p.revents);
	printf("poll with nothing queued: timeout\n");
	if (write_msg(fd, "second", 6, NULL) != 6)
		return fail("write: %s", ename(errno));
	n = poll(&p, 1, 5000);
	if (n != 1 || !(p.revents & POLLIN))
		return fail("poll with a message queued: %d (revents 0x%x)", n, p.revents);
	printf("poll with a message queued: POLLIN\n");
	if (read(fd, buf, sizeof(buf)) != 6)
		return fail("read: %s", ename(errno));
	n = poll(&p, 1, 200);
	if (n != 0)
		return fail("poll after reading: %d (revents 0x%x)", n, p.revents);
	printf("poll after reading: timeout\n");
	close(fd);
	return 0;
}

/* Print "open", then block in read() until a message comes (or forever). */
static int do_recv(const char *path, char **args)
{
	uint8_t buf[4096];
	int fd = open_session(path, args[0], O_RDWR);
	ssize_t n;

	if (fd < 0)
		return 1;
	printf("open\n");
	fflush(stdout);
	n = read(fd, buf, sizeof(buf));
	if (n < 0) {
		printf("read %s\n", ename(errno));
		return fail("read: %s", ename(errno));
	}
	printf("got ");
	for (ssize_t i = 0; i < n; i++)
		printf("%02x", buf[i]);
	printf("\n");
	close(fd);
	return 0;
}

/* Open the session (proven by one echo), print "open", wait for stdin EOF. */
static int do_session(const char *path, char **args)
{
	char c;
	int fd = open_session(path, args[0], O_RDWR);

	if (fd < 0 || round_trip(fd, 8, 3, NULL))
		return 1;
	printf("open\n");
	fflush(stdout);
	while (read(STDIN_FILENO, &c, 1) > 0)
		;
	close(fd);
	return 0;
}

struct reader {
	int fd;
	ssize_t n;
	int err;
	uint8_t buf[256];
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;

	r->n = read(r->fd, r->buf, sizeof(r->buf));
	r->err = errno;
	return NULL;
}

/* One thread blocked in read() while another writes on the same fd. */
static int do_threads(const char *path, char **args)
{
	static const char msg[] = "written while another thread reads";
	struct reader r = {0};
	pthread_t t;
	int fd = open_session(path, args[0], O_RDWR);

	if (fd < 0 || round_trip(fd, 4, 4, NULL))
		return 1;
	r.fd = fd;
	if (pthread_create(&t, NULL, reader_main, &r))
		return fail("pthread_create");
	sleep_ms(300); /* let the reader block first */
	if (write_msg(fd, msg, sizeof(msg), NULL) != (ssize_t)sizeof(msg))
		return fail("write while a read blocks: %s", ename(errno));
	printf("write completed while the reader was blocked\n");
	pthread_join(t, NULL);
	if (r.n != (ssize_t)sizeof(msg) || memcmp(r.buf, msg, sizeof(msg)) != 0)
		return fail("reader got %zd bytes (%s)", r.n, r.n < 0 ? ename(r.err) : "data");
	printf("reader got the echo\n");
	close(fd);
	return 0;
}

/* The peer scripts of the layer-2 tests answer in upper case (ASCII). */
static void upper(uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (buf[i] >= 'a' && buf[i] <= 'z')
			buf[i] = (uint8_t)(buf[i] - 'a' + 'A');
	}
}

/* Reads ask for the default MTU: Linux refuses a count above the MTU. */
#define READ_MAX 4096

/* Read one message and compare it with `want`. */
static int expect_msg(int fd, const void *want, size_t len, const char *what)
{
	static uint8_t in[READ_MAX];
	ssize_t n = read(fd, in, sizeof(in));

	if (n < 0)
		return fail("read of %s: %s", what, ename(errno));
	if ((size_t)n != len || memcmp(in, want, len) != 0)
		return fail("%s: got %zd bytes \"%.*s\", expected %zu \"%.*s\"", what, n, (int)n,
			    (const char *)in, len, (int)len, (const char *)want);
	return 0;
}

/* The id as the peer scripts quote it in their greeting. */
static size_t greeting(const char *id_arg, char *out, size_t size)
{
	uint8_t id[HMC_ID_LEN];
	size_t n;

	parse_id(id_arg, id);
	for (n = HMC_ID_LEN; n > 0 && id[n - 1] == 0; n--)
		;
	return (size_t)snprintf(out, size, "welcome %.*s", (int)n, (const char *)id);
}

#define UPPER_BATCH 10

/*
 * ID COUNT: the greeting first, then COUNT lower-case messages of 1..4096
 * bytes (the default MTU first), written UPPER_BATCH at a time before
 * reading the answers, so the order is checked and not only the content.
 */
static int do_upper(const char *path, char **args)
{
	static const char text[] = "abcdefghijklmnopqrstuvwxyz0123456789 -";
	static uint8_t sent[UPPER_BATCH][READ_MAX];
	size_t lens[UPPER_BATCH];
	long count = atol(args[1]);
	char hello[64];
	size_t hello_len = greeting(args[0], hello, sizeof(hello));
	int fd = open_session(path, args[0], O_RDWR);

	if (fd < 0)
		return 1;
	if (count < 1)
		return fail("bad count %ld", count);
	if (expect_msg(fd, hello, hello_len, "greeting"))
		return 1;
	printf("greeting \"%s\"\n", hello);
	for (long base = 0; base < count; base += UPPER_BATCH) {
		int batch = count - base < UPPER_BATCH ? (int)(count - base) : UPPER_BATCH;

		for (int k = 0; k < batch; k++) {
			unsigned i = (unsigned)(base + k);
			size_t len = i == 0 ? READ_MAX : 1 + (i * 397u) % READ_MAX;

			for (size_t j = 0; j < len; j++)
				sent[k][j] = (uint8_t)text[(i + j) % (sizeof(text) - 1)];
			lens[k] = len;
			if (write_msg(fd, sent[k], len, NULL) != (ssize_t)len)
				return fail("write of message %u: %s", i, ename(errno));
		}
		for (int k = 0; k < batch; k++) {
			char what[32];

			upper(sent[k], lens[k]);
			snprintf(what, sizeof(what), "answer %ld", base + k);
			if (expect_msg(fd, sent[k], lens[k], what))
				return 1;
		}
	}
	printf("upper-cased %ld messages in order\n", count);
	close(fd);
	return 0;
}

/*
 * ID N: open, print "open fd N", then block in read() for N messages,
 * printing each in hex. The test watches the process sit in read() on that
 * fd before it makes the hypervisor send.
 */
static int do_listen(const char *path, char **args)
{
	static uint8_t buf[READ_MAX];
	long count = atol(args[1]);
	int fd = open_session(path, args[0], O_RDWR);

	if (fd < 0)
		return 1;
	printf("open fd %d\n", fd);
	for (long i = 0; i < count; i++) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0) {
			printf("read %s\n", ename(errno));
			return fail("read: %s", ename(errno));
		}
		printf("got ");
		for (ssize_t k = 0; k < n; k++)
			printf("%02x", buf[k]);
		printf("\n");
	}
	close(fd);
	return 0;
}

#define FLOOD_STALL_MS 30000

struct flood {
	int fd;
	long writes;
	unsigned busy;
	int err;
	atomic_long async_seen; /* by the reader */
	bool gate;		/* wait for an async message half way */
};

static size_t flood_msg(uint8_t *buf, long i)
{
	size_t len = 16 + (size_t)(i * 53) % 1000;
	int head = snprintf((char *)buf, 32, "echo %06ld:", i);

	fill(buf + head, len - (size_t)head, (unsigned)i);
	return len;
}

/* Back to back; EBUSY (no free buffer yet) is retried, as on Linux. */
static void *flood_writer(void *arg)
{
	struct flood *f = arg;
	uint8_t buf[1100];

	for (long i = 0; i < f->writes; i++) {
		size_t len = flood_msg(buf, i);

		/* However fast the writes, one async message lands in their midst. */
		for (int ms = 0; f->gate && i == f->writes / 2 && !atomic_load(&f->async_seen);
		     ms++) {
			if (ms == FLOOD_STALL_MS) {
				f->err = ETIMEDOUT;
				return NULL;
			}
			sleep_ms(1);
		}

		if (write_msg(f->fd, buf, len, &f->busy) != (ssize_t)len) {
			f->err = errno;
			return NULL;
		}
	}
	return NULL;
}

/*
 * ID WRITES ASYNC: print "open", then write WRITES echo requests from one
 * thread while this one reads. Besides their echoes, ASYNC messages
 * "async NNNNNN" (sent by the test through the control socket meanwhile)
 * must arrive: each exactly once, in order per source. Half way the writer
 * waits for the first of them, so they surely meet a write stream. A final
 * marker's echo proves nothing else was queued behind them.
 */
static int do_flood(const char *path, char **args)
{
	static const char marker[] = "end of flood";
	static uint8_t in[READ_MAX + 1];
	uint8_t want[1100];
	struct flood f = {.writes = atol(args[1])};
	long asyncs = atol(args[2]), echoes = 0, async_seen = 0, async_early = 0;
	pthread_t t;

	f.fd = open_session(path, args[0], O_RDWR);
	if (f.fd < 0)
		return 1;
	if (f.writes < 1 || asyncs < 0)
		return fail("bad counts");
	f.gate = asyncs > 0;
	printf("open\n");
	fflush(stdout);
	if (pthread_create(&t, NULL, flood_writer, &f))
		return fail("pthread_create");
	while (echoes < f.writes || async_seen < asyncs) {
		struct pollfd p = {.fd = f.fd, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, FLOOD_STALL_MS) != 1)
			return fail("stalled after %ld echoes and %ld async messages", echoes,
				    async_seen);
		n = read(f.fd, in, READ_MAX);
		if (n < 0)
			return fail("read: %s", ename(errno));
		in[n] = 0;
		if (n == 12 && strncmp((char *)in, "async ", 6) == 0) {
			if (atol((char *)in + 6) != async_seen)
				return fail("got \"%s\", expected async %06ld", in, async_seen);
			async_seen++;
			async_early += echoes < f.writes;
			atomic_store(&f.async_seen, async_seen);
			continue;
		}
		if (echoes >= f.writes)
			return fail("extra %zd-byte message after every echo", n);
		if ((size_t)n != flood_msg(want, echoes) || memcmp(in, want, (size_t)n) != 0)
			return fail("message of %zd bytes \"%.12s\" is not echo %06ld", n, in,
				    echoes);
		echoes++;
	}
	pthread_join(t, NULL);
	if (f.err)
		return fail("write: %s", ename(f.err));
	if (write_msg(f.fd, marker, sizeof(marker), NULL) != (ssize_t)sizeof(marker) ||
	    expect_msg(f.fd, marker, sizeof(marker), "the marker"))
		return 1;
	printf("%ld echoes and %ld async messages, each once and in order\n", echoes, async_seen);
	printf("%ld async messages before the last echo, %u EBUSY\n", async_early, f.busy);
	close(f.fd);
	return 0;
}

/* ---- bad pointers, signals, poll events ---- */

/*
 * Two pages with the second unmapped: the returned address is the first
 * byte of the hole, so `hole - k` has k readable bytes and no more.
 */
static uint8_t *page_hole(void)
{
	long page = sysconf(_SC_PAGESIZE);
	uint8_t *p = mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (munmap(p + page, (size_t)page) != 0)
		return NULL;
	return p + page;
}

/* NULL, hidden from the compiler, which rightly objects to read(fd, NULL, n). */
static void *volatile null_ptr;

/* Wait until a message is queued on fd. */
static int wait_pollin(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	if (poll(&p, 1, BUSY_RETRY_MS) != 1 || !(p.revents & POLLIN))
		return fail("no message arrived (revents 0x%x)", p.revents);
	return 0;
}

/*
 * A read into `bad` fails with EFAULT and leaves the queued message alone;
 * Linux takes the message off its queue before the copy fails.
 */
static int read_fault_keeps(int fd, void *bad, const char *what)
{
	static const char msg[] = "kept through a faulting read";
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char label[96];
	int rc;

	if (write_msg(fd, msg, sizeof(msg), NULL) != (ssize_t)sizeof(msg))
		return fail("write: %s", ename(errno));
	if (wait_pollin(fd))
		return 1;
	snprintf(label, sizeof(label), "read into %s, a message queued", what);
	rc = expect_errno(label, read(fd, bad, 64), EFAULT);
	if (linux_driver) {
		if (poll(&p, 1, 0) != 0)
			return fail("after the faulting read: revents 0x%x, expected the message gone",
				    p.revents);
		printf("after the read into %s: the message is lost\n", what);
		return rc;
	}
	if (poll(&p, 1, 0) != 1 || !(p.revents & POLLIN))
		return fail("after the faulting read: revents 0x%x, the message is gone",
			    p.revents);
	printf("after the read into %s: still POLLIN\n", what);
	rc |= expect_msg(fd, msg, sizeof(msg), "the kept message");
	if (!rc)
		printf("the message read after the fault is whole\n");
	return rc;
}

/*
 * ID: every call given a pointer it cannot use gets EFAULT, costs nothing
 * (the same fd then opens its session, a queued message survives a
 * faulting read) and the channel keeps working.
 */
static int do_efault(const char *path, char **args)
{
	uint8_t id[HMC_ID_LEN];
	uint8_t *hole = page_hole();
	int fd = open_dev(path, O_RDWR);
	int rc = 0;

	if (!hole)
		return fail("mmap: %s", strerror(errno));
	if (parse_id(args[0], id))
		return fail("bad id \"%s\"", args[0]);
	if (fd < 0 || wait_ready(fd))
		return 1;
	rc |= expect_errno("QUERY into NULL", ioctl(fd, VMC_IOCTL_QUERY, NULL), EFAULT);
	rc |= expect_errno("QUERY into (void *)1", ioctl(fd, VMC_IOCTL_QUERY, (void *)1), EFAULT);
	rc |= expect_errno("REQUESTVMC into NULL", ioctl(fd, VMC_IOCTL_REQUESTVMC, NULL), EFAULT);
	/* Before SETHMCID: Linux checks the session first, FUSE the buffer. */
	rc |= expect_errno("write from NULL before SETHMCID", write(fd, null_ptr, 16),
			   linux_driver ? EIO : EFAULT);
	rc |= expect_errno("read into NULL before SETHMCID", read(fd, null_ptr, 16),
			   linux_driver ? EIO : EFAULT);
	rc |= expect_errno("SETHMCID from NULL", ioctl(fd, VMC_IOCTL_SETHMCID, NULL), EFAULT);
	/* The kernel copies the first 8 bytes; the daemon finds the rest missing. */
	memcpy(hole - 8, id, 8);
	rc |= expect_errno("SETHMCID with the id running into an unmapped page",
			   ioctl(fd, VMC_IOCTL_SETHMCID, hole - 8), EFAULT);
	if (set_id(fd, id) != 0)
		return fail("SETHMCID after the faulting ones: %s", ename(errno));
	printf("SETHMCID after the faulting ones: 0\n");
	if (round_trip(fd, 1, 5, NULL))
		return 1;
	rc |= expect_errno("write from NULL", write(fd, null_ptr, 16), EFAULT);
	rc |= expect_errno("write from an unmapped page", write(fd, hole, 16), EFAULT);
	rc |= read_fault_keeps(fd, null_ptr, "NULL");
	rc |= read_fault_keeps(fd, hole, "an unmapped page");
	rc |= round_trip(fd, 4096, 6, NULL);
	if (!rc)
		printf("echo after the faults: ok\n");
	close(fd);
	return rc;
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

static const char late_msg[] = "sent after the signals";

/* Once the blocked read has seen a few signals, make something arrive. */
static void *late_writer(void *arg)
{
	int fd = *(int *)arg;

	while (alarms < 3)
		sleep_ms(10);
	if (write_msg(fd, late_msg, sizeof(late_msg), NULL) != (ssize_t)sizeof(late_msg))
		fail("late write: %s", ename(errno));
	return NULL;
}

/*
 * ID: a blocking read with nothing coming, in a process whose SIGALRM
 * handler asks for SA_RESTART. Linux restarts the read (with --linux a
 * thread writes once three signals came, and the restarted read returns
 * the echo); through FUSE it ends with EINTR. The fd is fine afterwards.
 * The timer repeats so that a tick before read() is entered cannot leave
 * it blocked for ever.
 */
static int do_eintr(const char *path, char **args)
{
	struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = SA_RESTART};
	struct itimerval every = {.it_interval = {.tv_usec = 200000},
				  .it_value = {.tv_usec = 200000}};
	struct itimerval off = {0};
	uint8_t buf[64];
	int fd = open_session(path, args[0], O_RDWR);
	pthread_t writer;
	ssize_t n;
	int err;

	if (fd < 0 || round_trip(fd, 8, 7, NULL))
		return 1;
	sigemptyset(&sa.sa_mask);
	if (linux_driver) {
		sigset_t alrm;

		/* The signals go to the reader alone. */
		sigemptyset(&alrm);
		sigaddset(&alrm, SIGALRM);
		pthread_sigmask(SIG_BLOCK, &alrm, NULL);
		if (pthread_create(&writer, NULL, late_writer, &fd))
			return fail("pthread_create");
		pthread_sigmask(SIG_UNBLOCK, &alrm, NULL);
	}
	if (sigaction(SIGALRM, &sa, NULL) != 0 || setitimer(ITIMER_REAL, &every, NULL) != 0)
		return fail("timer: %s", strerror(errno));
	n = read(fd, buf, sizeof(buf));
	err = errno;
	setitimer(ITIMER_REAL, &off, NULL);
	if (!alarms)
		return fail("read returned %zd before any SIGALRM", n);
	if (linux_driver) {
		pthread_join(writer, NULL);
		if (n != (ssize_t)sizeof(late_msg) || memcmp(buf, late_msg, sizeof(late_msg)) != 0)
			return fail("blocking read, SIGALRM with SA_RESTART: %zd (%s), expected the "
				    "late message", n, n < 0 ? ename(err) : "data");
		printf("blocking read, SIGALRM with SA_RESTART: restarted, returned the message "
		       "sent after the signals\n");
	} else {
		errno = err;
		if (expect_errno("blocking read, SIGALRM with SA_RESTART", n, EINTR))
			return 1;
	}
	if (round_trip(fd, 100, 8, NULL))
		return 1;
	printf("a later message is read on the same fd\n");
	close(fd);
	return 0;
}

static void print_events(const char *what, short ev)
{
	printf("%s:%s%s%s%s%s%s\n", what, ev & POLLIN ? " POLLIN" : "",
	       ev & POLLRDNORM ? " POLLRDNORM" : "", ev & POLLOUT ? " POLLOUT" : "",
	       ev & POLLWRNORM ? " POLLWRNORM" : "", ev & POLLHUP ? " POLLHUP" : "",
	       ev ? "" : " none");
}

/*
 * ID: POLLOUT once the open completed; then, after printing "open", wait
 * for POLLHUP (the test restarts the hypervisor), and once stdin ends (the
 * hypervisor is back) check the old fd: EBADFD, EIO, still POLLHUP.
 */
/* poll() reports only the events asked for (and POLLHUP, POLLERR). */
#define ALL_EVENTS (POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM)

static int do_hup(const char *path, char **args)
{
	struct pollfd p = {.events = ALL_EVENTS};
	char buf[64], c;
	int fd = open_session(path, args[0], O_RDWR);
	int rc = 0;

	if (fd < 0 || round_trip(fd, 8, 9, NULL))
		return 1;
	p.fd = fd;
	if (poll(&p, 1, 0) != 1 || (p.revents & (POLLOUT | POLLWRNORM)) != (POLLOUT | POLLWRNORM))
		return fail("after the open: revents 0x%x, expected POLLOUT|POLLWRNORM", p.revents);
	print_events("poll after the open", p.revents);
	printf("open\n");
	fflush(stdout);
	p.events = POLLIN;
	if (poll(&p, 1, -1) != 1 || !(p.revents & POLLHUP))
		return fail("waiting for the reset: revents 0x%x", p.revents);
	print_events("poll after the reset", p.revents);
	while (read(STDIN_FILENO, &c, 1) > 0)
		;
	rc |= expect_errno("read after the hypervisor restarted", read(fd, buf, sizeof(buf)),
			   EBADFD);
	rc |= expect_errno("write after the hypervisor restarted", write(fd, "x", 1), EIO);
	p.events = ALL_EVENTS;
	if (poll(&p, 1, 0) != 1 || p.revents != POLLHUP)
		return fail("after the restart: revents 0x%x, expected POLLHUP alone", p.revents);
	print_events("poll after the restart", p.revents);
	close(fd);
	return rc;
}

/*
 * ID: EBUSY on demand. Writes without reading hand every buffer of the
 * partition to the hypervisor (the echoes come back in the hypervisor's
 * own), so a write gets EBUSY and poll drops POLLOUT; reading one echo
 * frees a buffer: POLLOUT again and the write goes through. Nothing is lost.
 */
static int do_exhaust(const char *path, char **args)
{
	struct pollfd p = {.events = POLLOUT};
	int fd = open_session(path, args[0], O_RDWR);
	uint8_t msg[32];
	long sent = 0;
	ssize_t n;

	if (fd < 0 || round_trip(fd, 8, 10, NULL))
		return 1;
	p.fd = fd;
	for (;; sent++) {
		if (sent == 4096)
			return fail("4096 writes without a read never got EBUSY");
		fill(msg, sizeof(msg), (unsigned)sent);
		n = write(fd, msg, sizeof(msg));
		if (n < 0)
			break;
		if (n != (ssize_t)sizeof(msg))
			return fail("write %ld: %zd bytes", sent, n);
	}
	if (sent == 0 || errno != EBUSY)
		return fail("write %ld with every buffer in flight: %s, expected EBUSY", sent,
			    ename(errno));
	printf("write with every buffer in flight: EBUSY after %ld writes\n", sent);
	if (poll(&p, 1, 0) != 0)
		return fail("poll with every buffer in flight: revents 0x%x", p.revents);
	printf("poll with every buffer in flight: no POLLOUT\n");
	fill(msg, sizeof(msg), 0);
	if (wait_pollin(fd) || expect_msg(fd, msg, sizeof(msg), "echo 0"))
		return 1;
	/* Linux's poll never reports POLLOUT. */
	if (linux_driver) {
		if (poll(&p, 1, 0) != 0)
			return fail("poll after reading one echo: revents 0x%x", p.revents);
		printf("poll after reading one echo: no POLLOUT (Linux never reports it)\n");
	} else if (poll(&p, 1, 0) != 1 || !(p.revents & POLLOUT)) {
		return fail("poll after reading one echo: revents 0x%x", p.revents);
	} else {
		printf("poll after reading one echo: POLLOUT\n");
	}
	fill(msg, sizeof(msg), (unsigned)sent);
	if (write(fd, msg, sizeof(msg)) != (ssize_t)sizeof(msg))
		return fail("write after POLLOUT: %s", ename(errno));
	for (long i = 1; i <= sent; i++) {
		fill(msg, sizeof(msg), (unsigned)i);
		if (expect_msg(fd, msg, sizeof(msg), "an echo"))
			return 1;
	}
	printf("all %ld echoes arrived in order\n", sent + 1);
	close(fd);
	return 0;
}

/*
 * ID: the lengths the ABI treats specially: 0 on both sides, and a read
 * shorter than the message (truncated as in Linux).
 */
static int do_lengths(const char *path, char **args)
{
	uint8_t out[200], in[200];
	int fd = open_session(path, args[0], O_RDWR);
	struct pollfd p = {.events = POLLIN};
	ssize_t n;

	if (fd < 0 || round_trip(fd, 8, 11, NULL))
		return 1;
	p.fd = fd;
	fill(out, sizeof(out), 12);
	if (write(fd, out, 0) != 0 || read(fd, in, 0) != 0)
		return fail("0-byte write or read: %s", ename(errno));
	printf("write of 0 bytes: 0, read of 0 bytes: 0\n");
	if (write_msg(fd, out, sizeof(out), NULL) != (ssize_t)sizeof(out) || wait_pollin(fd))
		return fail("write: %s", ename(errno));
	n = read(fd, in, 10);
	if (n != 10 || memcmp(in, out, 10) != 0)
		return fail("short read: %zd", n);
	if (poll(&p, 1, 0) != 0)
		return fail("the rest of a truncated message is still queued");
	printf("read of 10 bytes of a 200-byte message: 10, the rest dropped\n");
	if (round_trip(fd, 64, 13, NULL))
		return 1;
	close(fd);
	return 0;
}

/*
 * ID: round trips (echo backend) until one fails, as an application sees a
 * fault of the channel; prints "running" after the first one, then the
 * failed call and its errno. Exit 0 if the errno is one a reset or a gone
 * daemon gives (EBADFD, EIO; ENOTCONN, or ECONNABORTED for a call in flight
 * when the FUSE daemon dies), 1 otherwise.
 */
static int do_churn(const char *path, char **args)
{
	uint8_t out[512], in[512];
	int fd = open_session(path, args[0], O_RDWR);
	long i;
	int err;

	if (fd < 0 || round_trip(fd, 8, 21, NULL))
		return 1;
	printf("running\n");
	fflush(stdout);
	for (i = 0;; i++) {
		size_t len = 1 + (size_t)(i * 37) % sizeof(out);
		ssize_t n;

		fill(out, len, (unsigned)i);
		n = write(fd, out, len);
		if (n < 0 && errno == EBUSY) {
			sleep_ms(1);
			continue;
		}
		if (n != (ssize_t)len) {
			err = errno;
			printf("write %s after %ld round trips\n", n < 0 ? ename(err) : "short", i);
			break;
		}
		n = read(fd, in, sizeof(in));
		if (n < 0) {
			err = errno;
			printf("read %s after %ld round trips\n", ename(err), i);
			break;
		}
		if (n != (ssize_t)len || memcmp(in, out, len) != 0)
			return fail("round trip %ld: %zd bytes back for %zu, or other bytes", i, n,
				    len);
	}
	fflush(stdout);
	close(fd);
	return err == EBADFD || err == EIO || err == ENOTCONN || err == ECONNABORTED ? 0 : 1;
}

/* ID COUNT: COUNT times a 200-byte message read with a 10-byte buffer. */
static int do_shortreads(const char *path, char **args)
{
	uint8_t out[200], in[10];
	long count = atol(args[1]);
	int fd = open_session(path, args[0], O_RDWR);

	if (fd < 0 || round_trip(fd, 8, 11, NULL))
		return 1;
	fill(out, sizeof(out), 14);
	for (long i = 0; i < count; i++) {
		if (write_msg(fd, out, sizeof(out), NULL) != (ssize_t)sizeof(out) ||
		    wait_pollin(fd))
			return fail("write %ld: %s", i, ename(errno));
		if (read(fd, in, sizeof(in)) != (ssize_t)sizeof(in))
			return fail("read %ld: %s", i, ename(errno));
	}
	printf("%ld truncating reads\n", count);
	close(fd);
	return 0;
}

/* ID: SETHMCID while the channel is not up (no VMC). */
static int do_notready(const char *path, char **args)
{
	uint8_t id[HMC_ID_LEN];
	struct ibmvmc_query_struct q = {0};
	int fd = open_dev(path, O_RDWR);
	int rc;

	if (fd < 0 || parse_id(args[0], id))
		return 1;
	if (query(fd, &q) != 0 || q.state == READY_STATE)
		return fail("QUERY: %s, state %d", ename(errno), q.state);
	rc = expect_errno("SETHMCID before the channel is ready", set_id(fd, id), EAGAIN);
	close(fd);
	return rc;
}

static const struct {
	const char *name;
	int nargs;
	const char *usage;
	int (*fn)(const char *path, char **args);
} scenarios[] = {
	{"query", 0, "", do_query},
	{"wait-ready", 0, "", do_wait_ready},
	{"requestvmc", 0, "", do_requestvmc},
	{"echo", 3, "ID FROM TO", do_echo},
	{"nosession", 0, "", do_nosession},
	{"twice", 1, "ID", do_twice},
	{"busy", 2, "ID1 ID2", do_busy},
	{"badioctl", 0, "", do_badioctl},
	{"mtu", 2, "ID MTU", do_mtu},
	{"nonblock", 1, "ID", do_nonblock},
	{"poll", 1, "ID", do_poll},
	{"recv", 1, "ID", do_recv},
	{"session", 1, "ID", do_session},
	{"threads", 1, "ID", do_threads},
	{"upper", 2, "ID COUNT", do_upper},
	{"listen", 2, "ID N", do_listen},
	{"flood", 3, "ID WRITES ASYNC", do_flood},
	{"efault", 1, "ID", do_efault},
	{"foreign", 1, "ID", do_foreign},
	{"eintr", 1, "ID", do_eintr},
	{"hup", 1, "ID", do_hup},
	{"exhaust", 1, "ID", do_exhaust},
	{"lengths", 1, "ID", do_lengths},
	{"shortreads", 2, "ID COUNT", do_shortreads},
	{"churn", 1, "ID", do_churn},
	{"notready", 1, "ID", do_notready},
};

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1 && strcmp(argv[1], "--linux") == 0) {
		linux_driver = true;
		argc--;
		argv++;
	}
	for (size_t i = 0; argc >= 3 && i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		if (strcmp(argv[1], scenarios[i].name) != 0)
			continue;
		if (argc != 3 + scenarios[i].nargs)
			break;
		scenario = argv[1];
		return scenarios[i].fn(argv[2], argv + 3);
	}
	fputs("usage: devclient [--linux] SCENARIO PATH [ARGS]\n", stderr);
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		fprintf(stderr, "  %s PATH %s\n", scenarios[i].name, scenarios[i].usage);
	return 2;
}
