/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Logging for the programs: one line per event on stderr,
 * "<time> <program>[<pid>] <level> <component>: <text>", filtered by level.
 */
#ifndef OVMC_DAEMON_LOG_H
#define OVMC_DAEMON_LOG_H

#include <openvmc/common.h>

void ovmc_log_setup(const char *program, enum ovmc_log_level level);
enum ovmc_log_level ovmc_log_get_level(void);

/* An ovmc_log_fn for the cores: `user` is the component name (a string). */
void ovmc_log_sink(void *user, enum ovmc_log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/* From now on write to syslog (daemon facility) instead of stderr. */
void ovmc_log_use_syslog(void);

/* One readable line for a trace event (component "crq", level info). */
struct ovmc_trace_event;
void ovmc_log_trace_event(const struct ovmc_trace_event *ev);

void ovmc_log(enum ovmc_log_level level, const char *component, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
