// SPDX-License-Identifier: GPL-2.0-or-later
#include "loop.h"

#include "log.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_IDLE 8
/* Rounds of the idle hooks per pass while they kick each other; beyond,
 * the descriptors get their turn first (the timer fires at once). */
#define MAX_IDLE_ROUNDS 16
#define MAX_EVENTS 32
/* epoll tags of the loop's own fds; watches carry pointers, never 1 or 2. */
#define TIMER_TAG 1u
#define SIGNAL_TAG 2u

struct watch {
	int fd;
	ovmc_loop_fd_fn fn;
	void *arg;
	struct watch *next;
};

struct ovmc_loop {
	int epfd, tfd, sigfd;
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
	struct watch *w = calloc(1, sizeof(*w));
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = w};

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

int ovmc_loop_run(struct ovmc_loop *l)
{
	struct epoll_event evs[MAX_EVENTS];

	run_idle(l);
	while (!l->stop) {
		int n = epoll_wait(l->epfd, evs, MAX_EVENTS, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
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
		if (!l->stop)
			run_idle(l);
	}
	return 0;
}
