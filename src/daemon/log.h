/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Logging for the programs: one line per event on stderr,
 * "<time> <program>[<pid>] <level> <component>: <text>", filtered by level,
 * or to syslog in daemon mode.
 *
 * Never blocks: a line the sink cannot take at once (a pipe nobody reads,
 * a stalled log daemon) is dropped and counted, and the count is logged
 * before the next line that gets through. Repeated lines at info and above
 * (same component, level and text but for numbers) are rate-limited: a few
 * per window, then one line with the count of the rest when the window
 * ends. Debug, trace and --trace lines are never limited.
 */
#ifndef OVMC_DAEMON_LOG_H
#define OVMC_DAEMON_LOG_H

#include <stddef.h>

#include <openvmc/common.h>

void ovmc_log_setup(const char *program, enum ovmc_log_level level);
enum ovmc_log_level ovmc_log_get_level(void);

/* An ovmc_log_fn for the cores: `user` is the component name (a string). */
void ovmc_log_sink(void *user, enum ovmc_log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/* The local time as the log lines start with: "HH:MM:SS.mmm". */
#define OVMC_LOG_STAMP_MAX 32
void ovmc_log_stamp(char *buf, size_t size);

/* From now on write to syslog (daemon facility) instead of stderr. */
void ovmc_log_use_syslog(void);

/*
 * Say what the rate limiter held back in windows that have ended; returns
 * when the next window with held-back lines ends (CLOCK_MONOTONIC ns, or
 * UINT64_MAX). The event loop calls it after every batch.
 */
uint64_t ovmc_log_tick(void);
/* Say every held-back count now (at exit). */
void ovmc_log_flush(void);
/* Lines held back by the rate limiter, and dropped by a full sink, so far. */
uint64_t ovmc_log_suppressed(void);
uint64_t ovmc_log_dropped(void);
/* Lines per key and window (default 5 per 10 s); 0 ns: the default window. */
void ovmc_log_set_rate_limit(unsigned burst, uint64_t window_ns);
/* For tests: the clock of the rate limiter (NULL: CLOCK_MONOTONIC). */
void ovmc_log_set_clock(uint64_t (*now_ns)(void));

struct ovmc_trace_event;

/* Room for any line ovmc_trace_format() writes. */
#define OVMC_TRACE_LINE_MAX 256
/*
 * The readable text of a trace event, without a newline: what --trace logs
 * and the control socket's "trace" streams. snprintf semantics.
 */
int ovmc_trace_format(const struct ovmc_trace_event *ev, char *buf, size_t size);
/* Log ovmc_trace_format()'s line (component "crq"; level info, hcalls debug). */
void ovmc_log_trace_event(const struct ovmc_trace_event *ev);

void ovmc_log(enum ovmc_log_level level, const char *component, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
