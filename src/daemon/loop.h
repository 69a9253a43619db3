/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The daemons' event loop: one thread, epoll over file descriptors, one
 * timerfd armed at the earliest deadline the owner reports, and
 * SIGINT/SIGTERM through a signalfd. Idle means blocked in epoll_wait: no
 * periodic wake-ups. It also wakes when the log has rate-limited lines to
 * sum up (ovmc_log_tick()).
 */
#ifndef OVMC_LOOP_H
#define OVMC_LOOP_H

#include <stdbool.h>
#include <stdint.h>

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
int ovmc_loop_del(struct ovmc_loop *l, int fd);
/* Add an idle hook (up to 8); all run after each batch, in the order added. */
int ovmc_loop_add_idle(struct ovmc_loop *l, ovmc_loop_idle_fn fn, void *arg);
/*
 * Work is waiting for an idle hook (made by another hook, or by a callback
 * for a hook): the hooks run again before the loop blocks, in the same
 * pass, with no wake-up through a descriptor. Only from the loop's thread.
 */
void ovmc_loop_kick(struct ovmc_loop *l);
/* Run until ovmc_loop_stop() or SIGINT/SIGTERM. Returns 0 or -errno. */
int ovmc_loop_run(struct ovmc_loop *l);
void ovmc_loop_stop(struct ovmc_loop *l);
/* The signal that stopped the loop, 0 if none. */
int ovmc_loop_signal(const struct ovmc_loop *l);

uint64_t ovmc_now_ns(void);

#endif
