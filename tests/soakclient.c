// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * soakclient: COUNT sequence-numbered messages through one session of the
 * device (echo backend), every one checked on its way back. Device ABI
 * only, like any application of the kernel driver.
 *
 *   soakclient PATH ID COUNT lockstep|pipelined
 *
 * lockstep: write one, read it back. pipelined: a writer thread writes as
 * fast as the channel takes (EBUSY is back-pressure: counted, retried
 * when poll says POLLOUT) while a reader thread reads on the same fd.
 * Each message carries its sequence number, length and a checksum; the
 * checker counts lost, duplicated, reordered and corrupted messages. Exit 0
 * iff all four are 0; the last line says everything:
 *
 *   soak pipelined ID: messages N lost 0 duplicated 0 reordered 0 corrupted 0 ebusy B ...
 */
#include <openvmc/ibmvmc.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define HDR 16u
#define MAX_MSG 4096u
#define READ_TIMEOUT_MS 30000

struct soak {
	int fd;
	uint64_t count;
	/* checker */
	uint8_t *seen; /* one bit per sequence number */
	uint64_t received, duplicated, reordered, corrupted, max_seen;
	bool any;
	/* writer */
	uint64_t ebusy;
	int write_err;
	int read_err;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* FNV-1a: enough to see a flipped or moved byte. */
static uint32_t checksum(const uint8_t *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/* Message `seq`: its length and bytes (a function of seq alone). */
static size_t make_msg(uint64_t seq, uint8_t *buf)
{
	size_t len = HDR + (size_t)((seq * 2654435761u) % (MAX_MSG - HDR + 1));
	uint64_t st = seq * 0x9E3779B97F4A7C15ull + 1;

	for (size_t i = HDR; i < len; i++) {
		st ^= st << 13;
		st ^= st >> 7;
		st ^= st << 17;
		buf[i] = (uint8_t)st;
	}
	put64(buf, seq);
	put32(buf + 8, (uint32_t)len);
	put32(buf + 12, checksum(buf + HDR, len - HDR));
	return len;
}

static void check_msg(struct soak *s, const uint8_t *buf, ssize_t n)
{
	uint64_t seq;

	s->received++;
	if (n < (ssize_t)HDR || get32(buf + 8) != (uint32_t)n ||
	    get32(buf + 12) != checksum(buf + HDR, (size_t)n - HDR) ||
	    (seq = get64(buf)) >= s->count) {
		s->corrupted++;
		return;
	}
	{
		uint8_t want[MAX_MSG];

		if (make_msg(seq, want) != (size_t)n || memcmp(want, buf, (size_t)n) != 0) {
			s->corrupted++;
			return;
		}
	}
	if (s->seen[seq / 8] & (1u << (seq % 8))) {
		s->duplicated++;
		return;
	}
	s->seen[seq / 8] |= (uint8_t)(1u << (seq % 8));
	if (s->any && seq < s->max_seen)
		s->reordered++;
	if (!s->any || seq > s->max_seen)
		s->max_seen = seq;
	s->any = true;
}

/* One message out; EBUSY waits for POLLOUT. Returns 0 or the errno. */
static int send_msg(struct soak *s, uint64_t seq)
{
	uint8_t buf[MAX_MSG];
	size_t len = make_msg(seq, buf);

	for (;;) {
		ssize_t n = write(s->fd, buf, len);
		struct pollfd p = {.fd = s->fd, .events = POLLOUT};

		if (n == (ssize_t)len)
			return 0;
		if (n >= 0)
			return EMSGSIZE;
		if (errno == EINTR)
			continue;
		if (errno != EBUSY)
			return errno;
		s->ebusy++;
		poll(&p, 1, 100);
	}
}

static int recv_msg(struct soak *s)
{
	uint8_t buf[MAX_MSG];
	struct pollfd p = {.fd = s->fd, .events = POLLIN};
	ssize_t n;

	if (poll(&p, 1, READ_TIMEOUT_MS) != 1)
		return ETIMEDOUT;
	n = read(s->fd, buf, sizeof(buf));
	if (n < 0)
		return errno == EAGAIN ? 0 : errno;
	check_msg(s, buf, n);
	return 0;
}

static void *writer_main(void *arg)
{
	struct soak *s = arg;

	for (uint64_t seq = 0; seq < s->count && !s->write_err; seq++)
		s->write_err = send_msg(s, seq);
	return NULL;
}

static int open_session(const char *path, const char *id_arg)
{
	unsigned char id[HMC_ID_LEN] = {0};
	struct ibmvmc_query_struct q;
	int fd = open(path, O_RDWR);

	if (fd < 0) {
		perror(path);
		return -1;
	}
	memcpy(id, id_arg, strnlen(id_arg, sizeof(id)));
	for (int ms = 0; ioctl(fd, VMC_IOCTL_QUERY, &q) == 0 && q.state != 3; ms += 10) {
		if (ms > 10000) {
			fprintf(stderr, "soakclient: channel not ready\n");
			return -1;
		}
		usleep(10000);
	}
	for (int ms = 0; ioctl(fd, VMC_IOCTL_SETHMCID, id) != 0; ms += 5) {
		if ((errno != EBUSY && errno != ENOBUFS) || ms > 10000) {
			perror("SETHMCID");
			return -1;
		}
		usleep(5000);
	}
	return fd;
}

int main(int argc, char **argv)
{
	struct soak s = {0};
	bool pipelined;
	uint64_t t0, lost;
	double secs;
	int rc = 0;

	if (argc != 5 || (strcmp(argv[4], "lockstep") && strcmp(argv[4], "pipelined"))) {
		fprintf(stderr, "Usage: soakclient PATH ID COUNT lockstep|pipelined\n");
		return 2;
	}
	s.count = strtoull(argv[3], NULL, 0);
	pipelined = strcmp(argv[4], "pipelined") == 0;
	s.seen = calloc(s.count / 8 + 1, 1);
	if (!s.seen || !s.count)
		return 2;
	s.fd = open_session(argv[1], argv[2]);
	if (s.fd < 0)
		return 1;
	t0 = now_ns();
	if (pipelined) {
		pthread_t w;

		if (pthread_create(&w, NULL, writer_main, &s))
			return 1;
		while (s.received < s.count && !s.read_err)
			s.read_err = recv_msg(&s);
		pthread_join(w, NULL);
	} else {
		for (uint64_t seq = 0; seq < s.count && !rc; seq++) {
			s.write_err = send_msg(&s, seq);
			if (!s.write_err)
				s.read_err = recv_msg(&s);
			rc = s.write_err || s.read_err;
		}
	}
	secs = (double)(now_ns() - t0) / 1e9;
	lost = s.count - (s.received - s.duplicated - s.corrupted);
	printf("soak %s %s: messages %llu lost %llu duplicated %llu reordered %llu corrupted %llu "
	       "ebusy %llu in %.1f s (%.0f msg/s)%s%s%s%s\n",
	       argv[4], argv[2], (unsigned long long)s.count, (unsigned long long)lost,
	       (unsigned long long)s.duplicated, (unsigned long long)s.reordered,
	       (unsigned long long)s.corrupted, (unsigned long long)s.ebusy, secs,
	       secs > 0 ? (double)s.count / secs : 0.0, s.write_err ? " write: " : "",
	       s.write_err ? strerror(s.write_err) : "", s.read_err ? " read: " : "",
	       s.read_err ? strerror(s.read_err) : "");
	close(s.fd);
	free(s.seen);
	return lost || s.duplicated || s.reordered || s.corrupted || s.write_err || s.read_err;
}
