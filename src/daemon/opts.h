/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the programs share around their command lines: number, group and
 * hcall-code parsing, usage errors, directory creation, running in the
 * background.
 */
#ifndef OVMC_OPTS_H
#define OVMC_OPTS_H

#include <stdbool.h>
#include <sys/types.h>

/* Name used in messages ("openvmcd"); set once at start. */
void opts_program(const char *argv0);

/* Print "<prog>: <message>" and the --help hint; returns 2 (the exit status). */
int opts_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

bool opts_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out);
/* Octal permission bits up to 07777. */
bool opts_mode(const char *s, mode_t *out);
/* A group name or number. */
bool opts_group(const char *s, gid_t *out);
/* "H_AUTHORITY", "authority" or a number. */
bool opts_hcall_rc(const char *s, long *out);

#define OPTS_MAX_CREATED_DIRS 32
/* mkdir -p, remembering what it created (for opts_remove_dirs()). */
struct opts_dirs {
	char *created[OPTS_MAX_CREATED_DIRS];
	unsigned n;
};
int opts_make_dirs(const char *dir, mode_t mode, struct opts_dirs *d);
/* Remove what opts_make_dirs() created, deepest first, only if empty. */
void opts_remove_dirs(struct opts_dirs *d);

/*
 * Go to the background: fork, new session, stdio to /dev/null, logging to
 * syslog. The parent waits until opts_daemon_ready() (exit 0) or the
 * child's exit (its status). Returns 0 in the child, negative errno.
 */
int opts_daemonize(void);
/* Tell the waiting parent set-up succeeded; write `pidfile` if not NULL. */
void opts_daemon_ready(const char *pidfile);

#endif
