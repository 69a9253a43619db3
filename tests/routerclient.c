// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * routerclient: an application speaking the command router protocol
 * (include/openvmc/router.h) to the hypervisor through the device file,
 * used by l2dev_test.c against `openvmc --backend router`. Like devclient it
 * touches the device only through open, ioctl, read, write, poll and close,
 * and it encodes the router header itself (no library), so it would run
 * unchanged against the kernel driver and a real hypervisor's router.
 *
 *   routerclient PATH ID [dump]
 *
 * One router session: requests in the wrong state, exchange ops, 100
 * echoes of 1..100 bytes, every malformed and refused kind of request,
 * close, requests after close. Every response is checked field by field
 * (all 32 header bytes and the data); a request must never go unanswered.
 * Prints one line per check; with "dump" also every response in hex, in
 * the order read, so that two runs can be compared byte for byte. Exit 0
 * when everything matched, 1 otherwise, 2 for bad usage.
 *
 * Needs an MTU above 4096 (openvmc --mtu 8192): one request is too big for
 * the router but not for the channel.
 */
#include <openvmc/ibmvmc.h>
#include <openvmc/router.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define READY_STATE 3
#define WAIT_READY_MS 10000
#define BUSY_RETRY_MS 10000
#define ECHOES 100
#define ECHO_BATCH 10
#define REQ_FLAGS OVMC_ROUTER_FLAG_RESPONSE_EXPECTED
/* Big enough for the oversized request; the channel's MTU must be too. */
#define MSG_MAX 8192
/* A response arriving after this long counts as never sent. */
#define ANSWER_MS 20000
/* Nothing may be left unread at the end; a late extra shows up within this. */
#define QUIET_MS 300

static bool dump;
static uint32_t next_token = 0x10000000u;

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail(const char *fmt, ...)
{
	va_list ap;

	fputs("routerclient: ", stderr);
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

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A well-formed request of 32 + `len` bytes in `msg`; returns its size. */
static size_t request(uint8_t *msg, uint16_t target, uint16_t opcode, uint32_t token,
		      const uint8_t *data, size_t len)
{
	memset(msg, 0, OVMC_ROUTER_HDR_LEN);
	msg[0] = OVMC_ROUTER_DESC0;
	msg[1] = OVMC_ROUTER_DESC1;
	msg[2] = OVMC_ROUTER_DESC2;
	msg[OVMC_ROUTER_OFF_HDR_LEN] = OVMC_ROUTER_HDR_LEN;
	put32(msg + OVMC_ROUTER_OFF_TOTAL_LEN, (uint32_t)(OVMC_ROUTER_HDR_LEN + len));
	put32(msg + OVMC_ROUTER_OFF_TOKEN, token);
	put16(msg + OVMC_ROUTER_OFF_TARGET, target);
	msg[OVMC_ROUTER_OFF_FLAGS] = REQ_FLAGS;
	put32(msg + OVMC_ROUTER_OFF_DATA_LEN, (uint32_t)len);
	put16(msg + OVMC_ROUTER_OFF_OPCODE, opcode);
	if (len)
		memcpy(msg + OVMC_ROUTER_HDR_LEN, data, len);
	return OVMC_ROUTER_HDR_LEN + len;
}

/* What a response must carry. */
struct expect {
	const char *what;
	uint32_t token;
	uint16_t target, opcode, rc;
	const uint8_t *data;
	size_t data_len;
};

/* Write one message; EBUSY (open not complete, no free buffer) is retried. */
static int send_msg(int fd, const uint8_t *msg, size_t len, const char *what)
{
	for (int ms = 0;; ms++) {
		ssize_t n = write(fd, msg, len);

		if (n == (ssize_t)len)
			return 0;
		if (n >= 0)
			return fail("%s: short write %zd of %zu", what, n, len);
		if (errno != EBUSY || ms == BUSY_RETRY_MS)
			return fail("%s: write of %zu bytes: %s", what, len, ename(errno));
		sleep_ms(1);
	}
}

/* Read the next response and check every byte of it against `e`. */
static int check_response(int fd, const struct expect *e)
{
	/* No more: Linux refuses a read above the MTU, which may be 4096. */
	static uint8_t in[OVMC_ROUTER_MAX_MSG];
	struct pollfd p = {.fd = fd, .events = POLLIN};
	size_t total = OVMC_ROUTER_HDR_LEN + e->data_len;
	ssize_t n;

	if (poll(&p, 1, ANSWER_MS) != 1)
		return fail("%s: no response", e->what);
	n = read(fd, in, sizeof(in));
	if (n < 0)
		return fail("%s: read: %s", e->what, ename(errno));
	if (dump) {
		printf("response ");
		for (ssize_t i = 0; i < n; i++)
			printf("%02x", in[i]);
		printf("\n");
	}
	if ((size_t)n != total)
		return fail("%s: response of %zd bytes, expected %zu", e->what, n, total);
	if (in[0] != 0xDE || in[1] != 0xCA || in[2] != 0xFF)
		return fail("%s: descriptor %02x %02x %02x", e->what, in[0], in[1], in[2]);
	if (in[3] != 32)
		return fail("%s: header length %u", e->what, in[3]);
	if (get32(in + 4) != total)
		return fail("%s: total length %u, expected %zu", e->what, get32(in + 4), total);
	if (get32(in + 8) != e->token)
		return fail("%s: token 0x%08x, expected 0x%08x", e->what, get32(in + 8), e->token);
	if (get16(in + 12) != e->target)
		return fail("%s: target 0x%04x, expected 0x%04x", e->what, get16(in + 12),
			    e->target);
	if (in[14] != 0)
		return fail("%s: reserved byte 14 is 0x%02x", e->what, in[14]);
	if (in[15] != OVMC_ROUTER_FLAG_RESPONSE)
		return fail("%s: flags 0x%02x, expected 0x40 alone", e->what, in[15]);
	if (get32(in + 16) != e->data_len)
		return fail("%s: data length %u, expected %zu", e->what, get32(in + 16),
			    e->data_len);
	if (get16(in + 20) != e->opcode)
		return fail("%s: opcode 0x%04x, expected 0x%04x", e->what, get16(in + 20),
			    e->opcode);
	if (get16(in + 22) != e->rc)
		return fail("%s: return code 0x%04x, expected 0x%04x", e->what, get16(in + 22),
			    e->rc);
	for (int i = 24; i < 32; i++) {
		if (in[i] != 0)
			return fail("%s: reserved byte %d is 0x%02x", e->what, i, in[i]);
	}
	if (e->data_len && memcmp(in + 32, e->data, e->data_len) != 0)
		return fail("%s: data differs", e->what);
	return 0;
}

/* One well-formed request and its response, with return code `rc`. */
static int call(int fd, const char *what, uint16_t target, uint16_t opcode, uint16_t rc)
{
	static uint8_t msg[OVMC_ROUTER_HDR_LEN];
	struct expect e = {
		.what = what, .token = next_token++, .target = target, .opcode = opcode, .rc = rc};

	request(msg, target, opcode, e.token, NULL, 0);
	if (send_msg(fd, msg, sizeof(msg), what) || check_response(fd, &e))
		return 1;
	printf("%s: rc 0x%04x\n", what, rc);
	return 0;
}

/*
 * A malformed request of `len` bytes: the response keeps whatever token,
 * target and opcode the bytes hold (zero for a field cut off) and carries
 * no data.
 */
static int call_raw(int fd, const char *what, const uint8_t *msg, size_t len, uint16_t rc)
{
	struct expect e = {.what = what, .rc = rc};

	if (len >= 12)
		e.token = get32(msg + 8);
	if (len >= 14)
		e.target = get16(msg + 12);
	if (len >= 22)
		e.opcode = get16(msg + 20);
	if (send_msg(fd, msg, len, what) || check_response(fd, &e))
		return 1;
	printf("%s: rc 0x%04x\n", what, rc);
	return 0;
}

/* Echoes of 1..ECHOES bytes, ECHO_BATCH written before their responses are read. */
static int echoes(int fd)
{
	static uint8_t msg[ECHO_BATCH][OVMC_ROUTER_HDR_LEN + ECHOES];
	static uint8_t data[ECHO_BATCH][ECHOES];

	for (size_t base = 1; base <= ECHOES; base += ECHO_BATCH) {
		struct expect e[ECHO_BATCH];

		for (size_t k = 0; k < ECHO_BATCH && base + k <= ECHOES; k++) {
			size_t len = base + k, total;

			for (size_t i = 0; i < len; i++)
				data[k][i] = (uint8_t)(len * 29u + i * 7u + 1u);
			e[k] = (struct expect){.what = "echo",
					       .token = next_token++,
					       .target = OVMC_ROUTER_TARGET_ROUTER,
					       .opcode = OVMC_ROUTER_OP_ECHO,
					       .data = data[k],
					       .data_len = len};
			total = request(msg[k], OVMC_ROUTER_TARGET_ROUTER, OVMC_ROUTER_OP_ECHO,
					e[k].token, data[k], len);
			if (send_msg(fd, msg[k], total, "echo"))
				return 1;
		}
		for (size_t k = 0; k < ECHO_BATCH && base + k <= ECHOES; k++) {
			if (check_response(fd, &e[k]))
				return fail("echo of %zu bytes failed", base + k);
		}
	}
	printf("echo 1..%d bytes: rc 0x0000, data intact\n", ECHOES);
	return 0;
}

/* Every way a request can be malformed or refused before its opcode runs. */
static int malformed(int fd)
{
	static uint8_t msg[MSG_MAX], big[OVMC_ROUTER_MAX_DATA + 1];
	const uint16_t R = OVMC_ROUTER_TARGET_ROUTER, ECHO = OVMC_ROUTER_OP_ECHO;
	const uint8_t data[4] = {1, 2, 3, 4};
	size_t len;

	request(msg, R, ECHO, next_token++, data, 4);
	if (call_raw(fd, "16-byte message", msg, 16, OVMC_ROUTER_RC_INVALID_SIZE))
		return 1;
	if (call_raw(fd, "1-byte message", msg, 1, OVMC_ROUTER_RC_INVALID_SIZE))
		return 1;

	len = request(msg, R, ECHO, next_token++, data, 4);
	msg[OVMC_ROUTER_OFF_HDR_LEN] = 31;
	if (call_raw(fd, "header length 31", msg, len, OVMC_ROUTER_RC_INVALID_SIZE))
		return 1;

	len = request(msg, R, ECHO, next_token++, data, 4);
	put32(msg + OVMC_ROUTER_OFF_TOTAL_LEN, (uint32_t)len + 1);
	if (call_raw(fd, "total length beyond the message", msg, len, OVMC_ROUTER_RC_INVALID_SIZE))
		return 1;

	len = request(msg, R, ECHO, next_token++, data, 4);
	put32(msg + OVMC_ROUTER_OFF_DATA_LEN, 3);
	if (call_raw(fd, "data length not total - 32", msg, len, OVMC_ROUTER_RC_INVALID_SIZE))
		return 1;

	memset(big, 0x5A, sizeof(big));
	len = request(msg, R, ECHO, next_token++, big, sizeof(big));
	if (call_raw(fd, "4097-byte message", msg, len, OVMC_ROUTER_RC_INVALID_SIZE))
		return 1;

	len = request(msg, R, ECHO, next_token++, data, 4);
	msg[1] = 0xCB;
	if (call_raw(fd, "descriptor DE CB FF", msg, len, OVMC_ROUTER_RC_INVALID_DATA))
		return 1;

	len = request(msg, R, ECHO, next_token++, data, 4);
	msg[OVMC_ROUTER_OFF_FLAGS] = OVMC_ROUTER_FLAG_RESPONSE;
	if (call_raw(fd, "response flag in a request", msg, len, OVMC_ROUTER_RC_INVALID_DATA))
		return 1;

	if (call(fd, "unknown opcode 0x0777", R, 0x0777, OVMC_ROUTER_RC_INVALID_OPCODE))
		return 1;
	if (call(fd, "target 0x9000", 0x9000, ECHO, OVMC_ROUTER_RC_INVALID_TARGET))
		return 1;
	if (call(fd, "unregistered target 0x8001", OVMC_ROUTER_TARGET_LPAR_CONFIG, 0x0001,
		 OVMC_ROUTER_RC_INVALID_TARGET))
		return 1;
	return 0;
}

/* Without the response-expected flag a request is still answered. */
static int unflagged_echo(int fd)
{
	static uint8_t msg[OVMC_ROUTER_HDR_LEN + 3];
	static const uint8_t data[3] = {'a', 'b', 'c'};
	struct expect e = {.what = "echo without flag 0x80",
			   .token = next_token++,
			   .target = OVMC_ROUTER_TARGET_ROUTER,
			   .opcode = OVMC_ROUTER_OP_ECHO,
			   .data = data,
			   .data_len = 3};

	request(msg, e.target, e.opcode, e.token, data, 3);
	msg[OVMC_ROUTER_OFF_FLAGS] = 0;
	if (send_msg(fd, msg, sizeof(msg), e.what) || check_response(fd, &e))
		return 1;
	printf("%s: rc 0x0000\n", e.what);
	return 0;
}

static int open_session(const char *path, const char *id_arg)
{
	struct ibmvmc_query_struct q = {0};
	static uint8_t id[HMC_ID_LEN];
	int fd;

	if (strlen(id_arg) > HMC_ID_LEN) {
		fail("id \"%s\" longer than %d bytes", id_arg, HMC_ID_LEN);
		return -1;
	}
	memcpy(id, id_arg, strlen(id_arg));
	fd = open(path, O_RDWR);
	if (fd < 0) {
		fail("open %s: %s", path, ename(errno));
		return -1;
	}
	for (int ms = 0;; ms += 10) {
		if (ioctl(fd, VMC_IOCTL_QUERY, &q) != 0) {
			fail("QUERY: %s", ename(errno));
			close(fd);
			return -1;
		}
		if (q.state == READY_STATE)
			break;
		if (ms >= WAIT_READY_MS) {
			fail("the channel did not become ready (state %d)", q.state);
			close(fd);
			return -1;
		}
		sleep_ms(10);
	}
	if (!q.have_vmc) {
		fail("QUERY: ready without a VMC");
		close(fd);
		return -1;
	}
	printf("query: have_vmc %d state %d\n", q.have_vmc, q.state);
	/* Right after another session closed its connection may still be closing. */
	for (int ms = 0; ioctl(fd, VMC_IOCTL_SETHMCID, id) != 0; ms += 5) {
		if ((errno != EBUSY && errno != ENOBUFS) || ms >= BUSY_RETRY_MS) {
			fail("SETHMCID: %s", ename(errno));
			close(fd);
			return -1;
		}
		sleep_ms(5);
	}
	return fd;
}

int main(int argc, char **argv)
{
	const uint16_t R = OVMC_ROUTER_TARGET_ROUTER;
	struct pollfd p;
	int fd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "dump") != 0)) {
		fputs("usage: routerclient PATH ID [dump]\n", stderr);
		return 2;
	}
	dump = argc == 4;
	fd = open_session(argv[1], argv[2]);
	if (fd < 0)
		return 1;

	/* The first mismatch ends the run: later responses would only echo it. */
	if (call(fd, "echo before ExchangeOps", R, OVMC_ROUTER_OP_ECHO,
		 OVMC_ROUTER_RC_INVALID_STATE) ||
	    call(fd, "close before ExchangeOps", R, OVMC_ROUTER_OP_CLOSE,
		 OVMC_ROUTER_RC_INVALID_STATE) ||
	    call(fd, "ExchangeOps", R, OVMC_ROUTER_OP_EXCHANGE_OPS, OVMC_ROUTER_RC_GOOD) ||
	    call(fd, "ExchangeOps again", R, OVMC_ROUTER_OP_EXCHANGE_OPS,
		 OVMC_ROUTER_RC_INVALID_STATE) ||
	    echoes(fd) || unflagged_echo(fd) || malformed(fd) ||
	    call(fd, "Close", R, OVMC_ROUTER_OP_CLOSE, OVMC_ROUTER_RC_GOOD) ||
	    call(fd, "echo after Close", R, OVMC_ROUTER_OP_ECHO, OVMC_ROUTER_RC_INVALID_STATE) ||
	    call(fd, "ExchangeOps after Close", R, OVMC_ROUTER_OP_EXCHANGE_OPS,
		 OVMC_ROUTER_RC_INVALID_STATE) ||
	    call(fd, "Close after Close", R, OVMC_ROUTER_OP_CLOSE, OVMC_ROUTER_RC_INVALID_STATE))
		return 1;
	p = (struct pollfd){.fd = fd, .events = POLLIN};
	if (poll(&p, 1, QUIET_MS) != 0)
		return fail("a message beyond the responses (revents 0x%x)", p.revents);
	printf("every request answered once, nothing else\n");
	close(fd);
	return 0;
}
