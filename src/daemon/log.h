/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Logging for the programs: one line per event on stderr,
 * "<time> <program>[<pid>] <level> <component>: <text>", filtered by level.
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
