// SPDX-License-Identifier: GPL-2.0-or-later
#include "loop.h"

#include "log.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#ifdef OVMC_HAVE_LIBURING
#include <liburing.h>
#endif

#define COMPONENT "loop"
#define MAX_IDLE 8
/* Rounds of the idle hooks per pass while they kick each other; beyond,
 * the descriptors get their turn first (the timer fires at once). */
#define MAX_IDLE_ROUNDS 16
#define MAX_EVENTS 32
/* epoll tags of the loop's own fds; watches carry pointers, never 1 or 2. */
#define TIMER_TAG 1u
#define SIGNAL_TAG 2u
/* Reads per pass of a reader served through epoll: others get a turn. */
#define READER_BATCH 64
/* io_uring: direct reads in a row before the epoll set gets its turn. */
#define DIRECT_READS 16
/* Only the epoll set's poll, the reader's read and a cancel are ever queued. */
#define URING_ENTRIES 4
/* io_uring user_data tags. */
#define URING_EPOLL 1u
#define URING_READ 2u
#define URING_CANCEL 3u

struct watch {
	int fd;
	ovmc_loop_fd_fn fn;
	void *arg;
	struct watch *next;
};

struct reader {
	int fd;
	void *buf;
	size_t size;
	ovmc_loop_read_fn fn;
	void *arg;
	bool polled;	/* served through epoll: the loop has no io_uring, or the
			 * kernel would not read this fd asynchronously */
	bool in_flight; /* io_uring: a read submitted, its completion not seen */
};

struct ovmc_loop {
	int epfd, tfd, sigfd;
	bool (*prewait)(void *arg);
	void *prewait_arg;
	bool has_reader;
	struct reader reader;
	bool uring_on;
	bool epoll_armed; /* io_uring: the poll on epfd is queued */
	unsigned direct_reads; /* io_uring: passes in a row that read directly */
#ifdef OVMC_HAVE_LIBURING
	struct io_uring ring;
#endif
	bool stop;
	int signal;
	struct watch *watches;
	struct {
		ovmc_loop_idle_fn fn;
		void *arg;
	} idle[MAX_IDLE];
	int n_idle;
	bool kicked;
	uint64_t armed;
};

uint64_t ovmc_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* io_uring if the kernel gives it (a container's seccomp filter may not). */
static void uring_start(struct ovmc_loop *l)
{
#ifdef OVMC_HAVE_LIBURING
	const char *env = getenv("OPENVMC_IO_URING");
	int rc;

	if (env && !strcmp(env, "0")) {
		ovmc_log(OVMC_LOG_DEBUG, COMPONENT, "OPENVMC_IO_URING=0: waiting in epoll");
		return;
	}
	/* Completions run only when we wait for them: one that comes while
	 * the loop's thread blocks elsewhere (an hcall's reply) does not wake
	 * it for nothing. Older kernels have no such flags. */
	rc = io_uring_queue_init(URING_ENTRIES, &l->ring,
				 IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
	if (rc == -EINVAL)
		rc = io_uring_queue_init(URING_ENTRIES, &l->ring, 0);
	if (rc) {
		ovmc_log(OVMC_LOG_DEBUG, COMPONENT, "no io_uring (%s): waiting in epoll",
			 strerror(-rc));
		return;
	}
	/* A child (the device's watchdog, a backend before exec) must not
	 * keep the ring, and with it the device's read, alive. */
	rc = io_uring_ring_dontfork(&l->ring);
	if (rc)
		ovmc_log(OVMC_LOG_DEBUG, COMPONENT, "io_uring: children keep the ring: %s",
			 strerror(-rc));
	l->uring_on = true;
#else
	(void)l;
#endif
}

int ovmc_loop_new(struct ovmc_loop **out)
{
	struct ovmc_loop *l = calloc(1, sizeof(*l));
	struct epoll_event ev = {.events = EPOLLIN};
	sigset_t set;
	int rc;

	if (!l)
		return -ENOMEM;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	l->armed = UINT64_MAX;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	l->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (l->epfd < 0 || l->tfd < 0 || l->sigfd < 0)
		goto fail;
	ev.data.u64 = TIMER_TAG;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->tfd, &ev))
		goto fail;
	ev.data.u64 = SIGNAL_TAG;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->sigfd, &ev))
		goto fail;
	uring_start(l);
	*out = l;
	return 0;
fail:
	rc = -errno;
	ovmc_loop_free(l);
	return rc;
}

void ovmc_loop_free(struct ovmc_loop *l)
{
	if (!l)
		return;
	/* The daemon is going: what the log held back is said now. */
	ovmc_log_flush();
	ovmc_loop_del_reader(l);
#ifdef OVMC_HAVE_LIBURING
	if (l->uring_on)
		io_uring_queue_exit(&l->ring);
#endif
	while (l->watches) {
		struct watch *w = l->watches;

		l->watches = w->next;
		free(w);
	}
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->tfd >= 0)
		close(l->tfd);
	if (l->sigfd >= 0)
		close(l->sigfd);
	free(l);
}

int ovmc_loop_add(struct ovmc_loop *l, int fd, ovmc_loop_fd_fn fn, void *arg)
{
	return ovmc_loop_add_events(l, fd, EPOLLIN, fn, arg);
}

int ovmc_loop_add_events(struct ovmc_loop *l, int fd, uint32_t events, ovmc_loop_fd_fn fn,
			 void *arg)
{
	struct watch *w = calloc(1, sizeof(*w));
	struct epoll_event ev = {.events = events, .data.ptr = w};

	if (!w)
		return -ENOMEM;
	w->fd = fd;
	w->fn = fn;
	w->arg = arg;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		int rc = -errno;

		free(w);
		return rc;
	}
	w->next = l->watches;
	l->watches = w;
	return 0;
}

int ovmc_loop_del(struct ovmc_loop *l, int fd)
{
	for (struct watch **pw = &l->watches; *pw; pw = &(*pw)->next) {
		if ((*pw)->fd == fd) {
			struct watch *w = *pw;

			*pw = w->next;
			epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
			/* May run inside a callback: the batch re-checks
			 * membership before each call. */
			free(w);
			return 0;
		}
	}
	return -ENOENT;
}

int ovmc_loop_add_idle(struct ovmc_loop *l, ovmc_loop_idle_fn fn, void *arg)
{
	if (l->n_idle == MAX_IDLE)
		return -ENOSPC;
	l->idle[l->n_idle].fn = fn;
	l->idle[l->n_idle].arg = arg;
	l->n_idle++;
	return 0;
}

void ovmc_loop_set_prewait(struct ovmc_loop *l, bool (*fn)(void *arg), void *arg)
{
	l->prewait = fn;
	l->prewait_arg = arg;
}

void ovmc_loop_kick(struct ovmc_loop *l)
{
	l->kicked = true;
}

void ovmc_loop_stop(struct ovmc_loop *l)
{
	l->stop = true;
}

int ovmc_loop_signal(const struct ovmc_loop *l)
{
	return l->signal;
}

static bool watched(const struct ovmc_loop *l, const struct watch *w)
{
	for (const struct watch *x = l->watches; x; x = x->next)
		if (x == w)
			return true;
	return false;
}

static void arm(struct ovmc_loop *l, uint64_t deadline)
{
	struct itimerspec its = {0};

	if (deadline == l->armed)
		return;
	l->armed = deadline;
	if (deadline != UINT64_MAX) {
		/* 0 would disarm: a deadline already past fires in 1 ns. */
		its.it_value.tv_sec = (time_t)(deadline / 1000000000ull);
		its.it_value.tv_nsec = (long)(deadline % 1000000000ull);
		if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
			its.it_value.tv_nsec = 1;
	}
	timerfd_settime(l->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void run_idle(struct ovmc_loop *l)
{
	/* The log's held-back counts are due at the end of their window. */
	uint64_t next = ovmc_log_tick();
	int round = 0;

	do {
		l->kicked = false;
		for (int i = 0; i < l->n_idle; i++) {
			uint64_t d = l->idle[i].fn(l->idle[i].arg, ovmc_now_ns());

			if (d < next)
				next = d;
		}
	} while (l->kicked && !l->stop && ++round < MAX_IDLE_ROUNDS);
	if (l->kicked) {
		l->kicked = false;
		next = 0;
	}
	arm(l, next);
}

/* Wait for the epoll set at most `timeout` ms and call what is ready. */
static int epoll_pass(struct ovmc_loop *l, int timeout)
{
	struct epoll_event evs[MAX_EVENTS];
	int n;

	if (timeout && l->prewait && l->prewait(l->prewait_arg))
		return 0;
	n = epoll_wait(l->epfd, evs, MAX_EVENTS, timeout);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n && !l->stop; i++) {
		if (evs[i].data.u64 == TIMER_TAG) {
			uint64_t exp;

			if (read(l->tfd, &exp, sizeof(exp)) < 0)
				continue;
			l->armed = UINT64_MAX;
		} else if (evs[i].data.u64 == SIGNAL_TAG) {
			struct signalfd_siginfo si;

			if (read(l->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				l->signal = (int)si.ssi_signo;
				l->stop = true;
			}
		} else {
			struct watch *w = evs[i].data.ptr;

			if (watched(l, w))
				w->fn(w->arg, w->fd, evs[i].events);
		}
	}
	return 0;
}

/* A reader served through epoll: read until the fd is empty (or a batch). */
static void reader_ready(void *arg, int fd, uint32_t events)
{
	struct ovmc_loop *l = arg;

	(void)events;
	for (int i = 0; i < READER_BATCH && l->has_reader && !l->stop; i++) {
		ssize_t n = read(fd, l->reader.buf, l->reader.size);

		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0 && errno == EINTR)
			continue;
		l->reader.fn(l->reader.arg, n < 0 ? -errno : n);
	}
}

static int reader_poll(struct ovmc_loop *l)
{
	l->reader.polled = true;
	return ovmc_loop_add(l, l->reader.fd, reader_ready, l);
}

int ovmc_loop_add_reader(struct ovmc_loop *l, int fd, void *buf, size_t size,
			 ovmc_loop_read_fn fn, void *arg)
{
	int rc = 0;

	if (l->has_reader)
		return -EBUSY;
	l->reader = (struct reader){.fd = fd, .buf = buf, .size = size, .fn = fn, .arg = arg};
	if (!l->uring_on)
		rc = reader_poll(l);
	if (rc == 0)
		l->has_reader = true;
	return rc;
}

const char *ovmc_loop_backend(const struct ovmc_loop *l)
{
	return l->uring_on && !l->reader.polled ? "io_uring" : "epoll";
}

#ifdef OVMC_HAVE_LIBURING
static struct io_uring_sqe *uring_sqe(struct ovmc_loop *l, uint64_t tag)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);

	/* Never more than URING_ENTRIES queued: the ring cannot be full. */
	if (sqe)
		io_uring_sqe_set_data64(sqe, tag);
	return sqe;
}

/* A completion's effect on what is in flight; the read's result, if it is one. */
static bool uring_seen(struct ovmc_loop *l, const struct io_uring_cqe *cqe, int *read_res)
{
	switch (io_uring_cqe_get_data64(cqe)) {
	case URING_EPOLL:
		l->epoll_armed = false;
		return false;
	case URING_READ:
		l->reader.in_flight = false;
		*read_res = cqe->res;
		return true;
	default: /* the cancel's own completion */
		return false;
	}
}

/* Take every completion there is; true if the read's was one (*read_res). */
static bool uring_drain(struct ovmc_loop *l, int *read_res)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	bool got_read = false;

	io_uring_for_each_cqe(&l->ring, head, cqe) {
		got_read |= uring_seen(l, cqe, read_res);
		n++;
	}
	io_uring_cq_advance(&l->ring, n);
	return got_read;
}

static void uring_read_done(struct ovmc_loop *l, int res)
{
	if (!l->has_reader || res == -EINTR || res == -ECANCELED)
		return;
	if (res == -EAGAIN) {
		/* This fd's reads cannot wait in io_uring (O_NONBLOCK without
		 * FMODE_NOWAIT): take it through epoll from now on. */
		int rc = reader_poll(l);

		ovmc_log(OVMC_LOG_DEBUG, COMPONENT, "fd %d: no asynchronous reads; through epoll",
			 l->reader.fd);
		if (rc) {
			ovmc_log(OVMC_LOG_ERROR, COMPONENT, "fd %d: cannot watch: %s", l->reader.fd,
				 strerror(-rc));
			l->reader.fn(l->reader.arg, rc);
		}
		return;
	}
	l->reader.fn(l->reader.arg, res);
}

/* One wait of the loop in io_uring: for the reader's read or the epoll set. */
static int uring_pass(struct ovmc_loop *l)
{
	struct io_uring_sqe *sqe;
	int read_res = 0, rc;

	/*
	 * A plain read first. On one CPU the request is usually there already:
	 * our last reply woke the application, which ran and asked again before
	 * we came back. Such a read costs less than a submission, its poll and
	 * its completion. Only when nothing waits does the read go to io_uring.
	 * The epoll set's completion runs only inside io_uring_enter, so after
	 * DIRECT_READS direct reads one pass goes through it anyway.
	 */
	if (!l->reader.in_flight && l->direct_reads < DIRECT_READS) {
		ssize_t n = read(l->reader.fd, l->reader.buf, l->reader.size);

		if (n >= 0 || (errno != EAGAIN && errno != EINTR)) {
			l->direct_reads++;
			l->reader.fn(l->reader.arg, n < 0 ? -errno : n);
			return 0;
		}
	}
	l->direct_reads = 0;
	if (l->prewait && l->prewait(l->prewait_arg))
		return 0;
	if (!l->epoll_armed && (sqe = uring_sqe(l, URING_EPOLL))) {
		io_uring_prep_poll_add(sqe, l->epfd, POLLIN);
		l->epoll_armed = true;
	}
	if (!l->reader.in_flight && (sqe = uring_sqe(l, URING_READ))) {
		io_uring_prep_read(sqe, l->reader.fd, l->reader.buf, (unsigned)l->reader.size, 0);
		l->reader.in_flight = true;
	}
	/* One call: submit the next read, wait for it or the epoll set. */
	rc = io_uring_submit_and_wait(&l->ring, 1);
	if (rc < 0 && rc != -EINTR)
		return rc;
	if (uring_drain(l, &read_res))
		uring_read_done(l, read_res);
	/* The poll completed: the epoll set has work. */
	if (!l->epoll_armed && !l->stop)
		return epoll_pass(l, 0);
	return 0;
}
#endif

void ovmc_loop_del_reader(struct ovmc_loop *l)
{
	if (!l->has_reader)
		return;
	l->has_reader = false;
	if (l->reader.polled)
		ovmc_loop_del(l, l->reader.fd);
#ifdef OVMC_HAVE_LIBURING
	if (l->reader.in_flight) {
		struct io_uring_sqe *sqe = uring_sqe(l, URING_CANCEL);

		/* The buffer may go once this returns: wait for the read's end. */
		if (sqe)
			io_uring_prep_cancel64(sqe, URING_READ, 0);
		while (l->reader.in_flight) {
			int res, rc = io_uring_submit_and_wait(&l->ring, 1);

			if (rc < 0 && rc != -EINTR)
				break;
			uring_drain(l, &res);
		}
	}
#endif
}

/* Block until something is ready and handle it. */
static int wait_pass(struct ovmc_loop *l)
{
#ifdef OVMC_HAVE_LIBURING
	/* Without a reader to read, io_uring would only add a call to each
	 * epoll wake-up. */
	if (l->has_reader && !l->reader.polled)
		return uring_pass(l);
#endif
	return epoll_pass(l, -1);
}

int ovmc_loop_run(struct ovmc_loop *l)
{
	run_idle(l);
	while (!l->stop) {
		int rc = wait_pass(l);

		if (rc)
			return rc;
		if (!l->stop)
			run_idle(l);
	}
	return 0;
}
