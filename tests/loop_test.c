// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The daemons' event loop (src/daemon/loop.h) with a reader that always
 * has the next message waiting, as the device has when everything shares
 * one CPU: each message is handed over once and in order, and a watched
 * descriptor that becomes ready is served within a bounded number of
 * reads. Both ways of waiting: io_uring (where the kernel gives it) and
 * epoll (OPENVMC_IO_URING=0).
 */
#include "harness.h"

#include "loop.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define MESSAGES 200
/* The loop's promise: at most this many reads before others get a turn. */
#define READS_PER_TURN 64

struct run {
	struct ovmc_loop *loop;
	int sv[2];
	int efd;
	uint32_t buf;
	unsigned got;
	bool out_of_order;
	int error;
	int watch_seen_after; /* reads made before the watch ran, -1: never */
};

static void on_read(void *arg, ssize_t n)
{
	struct run *r = arg;

	if (n != (ssize_t)sizeof(r->buf)) {
		r->error = n < 0 ? (int)-n : EPROTO;
		ovmc_loop_stop(r->loop);
		return;
	}
	if (r->buf != r->got)
		r->out_of_order = true;
	if (++r->got == MESSAGES)
		ovmc_loop_stop(r->loop);
}

static void on_event(void *arg, int fd, uint32_t events)
{
	struct run *r = arg;
	uint64_t v;

	(void)events;
	if (read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v) && r->watch_seen_after < 0)
		r->watch_seen_after = (int)r->got;
}

static void cleanup(void *arg)
{
	struct run *r = arg;

	ovmc_loop_free(r->loop);
	close(r->sv[0]);
	close(r->sv[1]);
	close(r->efd);
	free(r);
}

/* MESSAGES numbered messages waiting, the eventfd already ready, then run. */
static struct run *run_loop(bool uring)
{
	struct run *r = calloc(1, sizeof(*r));

	if (!r)
		FAIL("out of memory");
	r->watch_seen_after = -1;
	if (uring)
		unsetenv("OPENVMC_IO_URING");
	else
		setenv("OPENVMC_IO_URING", "0", 1);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, r->sv))
		FAIL("socketpair: %s", strerror(errno));
	r->efd = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->efd < 0)
		FAIL("eventfd: %s", strerror(errno));
	CHECK_EQ(ovmc_loop_new(&r->loop), 0);
	ovmc_test_defer(cleanup, r);
	for (uint32_t i = 0; i < MESSAGES; i++)
		if (write(r->sv[0], &i, sizeof(i)) != (ssize_t)sizeof(i))
			FAIL("write %u: %s", i, strerror(errno));
	CHECK_EQ(ovmc_loop_add(r->loop, r->efd, on_event, r), 0);
	CHECK_EQ(ovmc_loop_add_reader(r->loop, r->sv[1], &r->buf, sizeof(r->buf), on_read, r), 0);
	CHECK_EQ(ovmc_loop_run(r->loop), 0);
	CHECK_EQ(r->error, 0);
	return r;
}

static void every_message_once_in_order(bool uring)
{
	struct run *r = run_loop(uring);
	uint32_t more;

	CHECK_EQ(r->got, MESSAGES);
	CHECK(!r->out_of_order);
	/* Nothing read beyond what was handed over. */
	CHECK(read(r->sv[1], &more, sizeof(more)) < 0 && errno == EAGAIN);
}

static void busy_reader_lets_others_in(bool uring)
{
	struct run *r = run_loop(uring);

	CHECK(r->watch_seen_after >= 0);
	CHECK(r->watch_seen_after <= READS_PER_TURN);
}

TEST(io_uring_reader_gets_every_message_once_in_order)
{
	every_message_once_in_order(true);
}

TEST(epoll_reader_gets_every_message_once_in_order)
{
	every_message_once_in_order(false);
}

TEST(io_uring_busy_reader_lets_a_ready_descriptor_in_within_64_reads)
{
	busy_reader_lets_others_in(true);
}

TEST(epoll_busy_reader_lets_a_ready_descriptor_in_within_64_reads)
{
	busy_reader_lets_others_in(false);
}
