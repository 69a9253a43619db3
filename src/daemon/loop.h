/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The daemons' event loop: one thread, epoll over file descriptors, one
 * timerfd armed at the earliest deadline the owner reports, and
 * SIGINT/SIGTERM through a signalfd. Idle means blocked in one wait: no
 * periodic wake-ups. It also wakes when the log has rate-limited lines to
 * sum up (ovmc_log_tick()).
 *
 * Where the kernel allows io_uring (built with liburing, not refused by a
 * seccomp filter, not turned off with OPENVMC_IO_URING=0), the loop blocks
 * in io_uring_enter instead of epoll_wait, with the epoll set as one of
 * its polls and a reader's read (ovmc_loop_add_reader()) as another: the
 * call that submits the next read is the one that waits for it, so a
 * request costs its read and its reply and nothing else. Before it, the
 * reader is read once directly, which is cheaper when a request is
 * already there (as it mostly is when everything shares one CPU); after
 * 16 such reads in a row the loop waits in io_uring_enter all the same, so
 * the epoll set's descriptors are never left behind a busy reader. A loop
 * without a reader waits in epoll_wait alone.
 */
#ifndef OVMC_LOOP_H
#define OVMC_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct ovmc_loop;

/* Called when `fd` is ready; `events` are epoll bits. */
typedef void (*ovmc_loop_fd_fn)(void *arg, int fd, uint32_t events);
/*
 * Called after every batch of events and timer expiry: do pending work and
 * return the next absolute deadline (CLOCK_MONOTONIC ns), or UINT64_MAX.
 */
typedef uint64_t (*ovmc_loop_idle_fn)(void *arg, uint64_t now);

/* Block SIGINT/SIGTERM/SIGPIPE (ignored) and create the loop. */
int ovmc_loop_new(struct ovmc_loop **out);
/* Also says what the log held back (ovmc_log_flush()). */
void ovmc_loop_free(struct ovmc_loop *l);
/* Watch fd for EPOLLIN (and errors). Returns 0 or -errno. */
int ovmc_loop_add(struct ovmc_loop *l, int fd, ovmc_loop_fd_fn fn, void *arg);
/* The same for other epoll `events` (errors and hang-ups are always watched). */
int ovmc_loop_add_events(struct ovmc_loop *l, int fd, uint32_t events, ovmc_loop_fd_fn fn,
			 void *arg);
int ovmc_loop_del(struct ovmc_loop *l, int fd);
/*
 * Called with what one read of a reader's fd into its buffer returned: a
 * byte count, 0 at end of file, or a negative errno other than -EAGAIN
 * and -EINTR (the loop reads again).
 */
typedef void (*ovmc_loop_read_fn)(void *arg, ssize_t n);
/*
 * Read `fd` (non-blocking) into `buf` over and over, one read per call of
 * `fn`, until ovmc_loop_del_reader(): through io_uring where the loop has
 * it, else when epoll says it is readable (at most 64 reads per pass).
 * `buf` must stay valid until then. One reader per loop: -EBUSY, or
 * -ENOMEM, or the -errno of watching fd.
 */
int ovmc_loop_add_reader(struct ovmc_loop *l, int fd, void *buf, size_t size,
			 ovmc_loop_read_fn fn, void *arg);
/* Stop reading: a read in flight is cancelled before this returns. */
void ovmc_loop_del_reader(struct ovmc_loop *l);
/* "io_uring" or "epoll": how the reader's reads are made (or would be). */
const char *ovmc_loop_backend(const struct ovmc_loop *l);
/* Add an idle hook (up to 8); all run after each batch, in the order added. */
int ovmc_loop_add_idle(struct ovmc_loop *l, ovmc_loop_idle_fn fn, void *arg);
/*
 * Work is waiting for an idle hook (made by another hook, or by a callback
 * for a hook): the hooks run again before the loop blocks, in the same
 * pass, with no wake-up through a descriptor. Only from the loop's thread.
 */
void ovmc_loop_kick(struct ovmc_loop *l);
/*
 * Called each time the loop is about to block (not before a pass that
 * finds work without blocking): true if it started work that may need
 * the idle hooks, which then run first. One per loop; NULL to remove.
 */
void ovmc_loop_set_prewait(struct ovmc_loop *l, bool (*fn)(void *arg), void *arg);
/* Run until ovmc_loop_stop() or SIGINT/SIGTERM. Returns 0 or -errno. */
int ovmc_loop_run(struct ovmc_loop *l);
void ovmc_loop_stop(struct ovmc_loop *l);
/* The signal that stopped the loop, 0 if none. */
int ovmc_loop_signal(const struct ovmc_loop *l);

uint64_t ovmc_now_ns(void);

#endif
