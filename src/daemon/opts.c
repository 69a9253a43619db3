// SPDX-License-Identifier: GPL-2.0-or-later
#include "opts.h"

#include "log.h"

#include <openvmc/platform.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *prog = "openvmc";
static int ready_fd = -1;

void opts_program(const char *argv0)
{
	const char *slash = strrchr(argv0, '/');

	prog = slash ? slash + 1 : argv0;
}

int opts_usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help'.\n", prog);
	return 2;
}

bool opts_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || end == s || *end || *s == '-' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

bool opts_mode(const char *s, mode_t *out)
{
	unsigned long v;

	errno = 0;
	v = strtoul(s, NULL, 8);
	if (errno || !*s || s[strspn(s, "01234567")] || v > 07777)
		return false;
	*out = (mode_t)v;
	return true;
}

bool opts_group(const char *s, gid_t *out)
{
	unsigned long v;
	struct group *g;

	if (opts_uint(s, 0, UINT_MAX - 1, &v)) {
		*out = (gid_t)v;
		return true;
	}
	g = getgrnam(s);
	if (!g)
		return false;
	*out = g->gr_gid;
	return true;
}

static bool rc_is(long rc, const char *want)
{
	const char *name = ovmc_hcall_rc_name(rc);

	return strcmp(name, "H_?") != 0 && strcasecmp(name + 2, want) == 0;
}

bool opts_hcall_rc(const char *s, long *out)
{
	const char *want = strncasecmp(s, "H_", 2) == 0 ? s + 2 : s;
	char *end;
	long v;

	for (long rc = -64; rc <= 64; rc++) {
		if (rc_is(rc, want)) {
			*out = rc;
			return true;
		}
	}
	for (long rc = OVMC_H_LONG_BUSY_ORDER_1_MSEC; rc <= OVMC_H_LONG_BUSY_ORDER_100_SEC; rc++) {
		if (rc_is(rc, want)) {
			*out = rc;
			return true;
		}
	}
	errno = 0;
	v = strtol(s, &end, 0);
	if (errno || end == s || *end)
		return false;
	*out = v;
	return true;
}

int opts_make_dirs(const char *dir, mode_t mode, struct opts_dirs *d)
{
	char *path = strdup(dir);
	int rc = 0;

	if (!path)
		return -ENOMEM;
	for (char *p = path + 1;; p++) {
		bool last = *p == '\0';

		if (*p != '/' && !last)
			continue;
		*p = '\0';
		if (mkdir(path, mode) == 0) {
			if (d->n < OPTS_MAX_CREATED_DIRS)
				d->created[d->n++] = strdup(path);
		} else if (errno != EEXIST) {
			rc = -errno;
			fprintf(stderr, "%s: cannot create %s: %s\n", prog, path, strerror(errno));
			break;
		}
		if (last)
			break;
		*p = '/';
	}
	free(path);
	return rc;
}

void opts_remove_dirs(struct opts_dirs *d)
{
	while (d->n > 0) {
		char *dir = d->created[--d->n];

		/* Only if empty: the user may have put things there meanwhile. */
		rmdir(dir);
		free(dir);
	}
}

int opts_daemonize(void)
{
	int p[2], null_fd, status;
	pid_t pid;
	char c;

	if (pipe2(p, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		close(p[1]);
		/* Readiness byte, or EOF when the child died first. */
		if (read(p[0], &c, 1) == 1)
			_exit(0);
		if (waitpid(pid, &status, 0) == pid && WIFEXITED(status))
			_exit(WEXITSTATUS(status) ? WEXITSTATUS(status) : 1);
		_exit(1);
	}
	close(p[0]);
	ready_fd = p[1];
	setsid();
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null_fd >= 0) {
		dup2(null_fd, STDIN_FILENO);
		dup2(null_fd, STDOUT_FILENO);
		dup2(null_fd, STDERR_FILENO);
		if (null_fd > STDERR_FILENO)
			close(null_fd);
	}
	ovmc_log_use_syslog();
	return 0;
}

void opts_daemon_ready(const char *pidfile)
{
	if (pidfile) {
		FILE *f = fopen(pidfile, "w");
		bool bad = !f;

		/* Closed even when the write failed: no stream is left behind. */
		if (f)
			bad = (fprintf(f, "%d\n", (int)getpid()) < 0) | (fclose(f) != 0);
		if (bad)
			ovmc_log(OVMC_LOG_WARN, "main", "cannot write %s: %s", pidfile,
				 strerror(errno));
	}
	if (ready_fd >= 0) {
		if (write(ready_fd, "", 1) != 1)
			ovmc_log(OVMC_LOG_WARN, "main", "cannot tell the parent: %s",
				 strerror(errno));
		close(ready_fd);
		ready_fd = -1;
	}
}
