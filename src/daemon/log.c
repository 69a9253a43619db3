// SPDX-License-Identifier: GPL-2.0-or-later
#include "log.h"

#include <stdbool.h>

#include <openvmc/platform.h>
#include <openvmc/trace.h>
#include <openvmc/wire.h>

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "openvmc";
static enum ovmc_log_level max_level = OVMC_LOG_INFO;
static bool use_syslog;

void ovmc_log_use_syslog(void)
{
	openlog(prog, LOG_PID, LOG_DAEMON);
	use_syslog = true;
}

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
	if (use_syslog) {
		static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG, LOG_DEBUG};

		n = snprintf(line, sizeof(line), "%s: ", user ? (const char *)user : "main");
		if (n > 0 && (size_t)n < sizeof(line))
			vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
		syslog(prio[level], "%s", line);
		return;
	}
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

void ovmc_log_trace_event(const struct ovmc_trace_event *ev)
{
	char line[160];

	switch (ev->kind) {
	case OVMC_TRACE_TO_HV:
		ovmc_entry_format(ev->entry, line, sizeof(line));
		ovmc_log(OVMC_LOG_INFO, "crq", "partition %u -> hv: %s", ev->partition, line);
		break;
	case OVMC_TRACE_TO_PARTITION:
		ovmc_entry_format(ev->entry, line, sizeof(line));
		ovmc_log(OVMC_LOG_INFO, "crq", "hv -> partition %u: %s", ev->partition, line);
		break;
	case OVMC_TRACE_RDMA:
		ovmc_log(OVMC_LOG_INFO, "crq",
			 "partition %u: RDMA %zu bytes %s (liobn 0x%llx ioba 0x%llx -> liobn "
			 "0x%llx ioba 0x%llx)",
			 ev->partition, ev->data_len,
			 ev->to_hv ? "partition -> hv" : "hv -> partition",
			 (unsigned long long)ev->args[1], (unsigned long long)ev->args[2],
			 (unsigned long long)ev->args[3], (unsigned long long)ev->args[4]);
		break;
	case OVMC_TRACE_HCALL:
		ovmc_log(OVMC_LOG_DEBUG, "crq", "partition %u: %s -> %s", ev->partition,
			 ovmc_hcall_name(ev->opcode), ovmc_hcall_rc_name(ev->rc));
		break;
	}
}
