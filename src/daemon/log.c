// SPDX-License-Identifier: GPL-2.0-or-later
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "openvmc";
static enum ovmc_log_level max_level = OVMC_LOG_INFO;

void ovmc_log_setup(const char *program, enum ovmc_log_level level)
{
	const char *slash = strrchr(program, '/');

	prog = slash ? slash + 1 : program;
	max_level = level;
}

enum ovmc_log_level ovmc_log_get_level(void)
{
	return max_level;
}

void ovmc_log_sink(void *user, enum ovmc_log_level level, const char *fmt, va_list ap)
{
	char line[1024], stamp[32];
	struct timeval tv;
	struct tm tm;
	int n;

	if (level > max_level)
		return;
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "%s.%03ld %s[%d] %s %s: ", stamp,
		     (long)(tv.tv_usec / 1000), prog, (int)getpid(), ovmc_log_level_name(level),
		     user ? (const char *)user : "main");
	if (n > 0 && (size_t)n < sizeof(line))
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	/* One write per line keeps lines whole when processes share stderr. */
	n = (int)strlen(line);
	if ((size_t)n >= sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	line[n] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n + 1) < 0)
		return;
}

void ovmc_log(enum ovmc_log_level level, const char *component, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ovmc_log_sink((void *)component, level, fmt, ap);
	va_end(ap);
}
