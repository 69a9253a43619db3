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

void ovmc_log_stamp(char *buf, size_t size)
{
	struct timeval tv;
	struct tm tm;
	char hms[16];

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(hms, sizeof(hms), "%H:%M:%S", &tm);
	snprintf(buf, size, "%s.%03ld", hms, (long)(tv.tv_usec / 1000));
}

void ovmc_log_sink(void *user, enum ovmc_log_level level, const char *fmt, va_list ap)
{
	char line[1024], stamp[OVMC_LOG_STAMP_MAX];
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
	ovmc_log_stamp(stamp, sizeof(stamp));
	n = snprintf(line, sizeof(line), "%s %s[%d] %s %s: ", stamp, prog, (int)getpid(),
		     ovmc_log_level_name(level), user ? (const char *)user : "main");
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

int ovmc_trace_format(const struct ovmc_trace_event *ev, char *buf, size_t size)
{
	char entry[160], part[24] = "partition";

	/* The driver does not know its partition id (0): no number then. */
	if (ev->partition)
		snprintf(part, sizeof(part), "partition %u", ev->partition);
	switch (ev->kind) {
	case OVMC_TRACE_TO_HV:
		ovmc_entry_format(ev->entry, entry, sizeof(entry));
		return snprintf(buf, size, "%s -> hv: %s", part, entry);
	case OVMC_TRACE_TO_PARTITION:
		ovmc_entry_format(ev->entry, entry, sizeof(entry));
		return snprintf(buf, size, "hv -> %s: %s", part, entry);
	case OVMC_TRACE_RDMA:
		return snprintf(buf, size,
				"%s: RDMA %zu bytes %s (liobn 0x%llx ioba 0x%llx -> liobn 0x%llx "
				"ioba 0x%llx)",
				part, ev->data_len,
				ev->to_hv ? "partition -> hv" : "hv -> partition",
				(unsigned long long)ev->args[1], (unsigned long long)ev->args[2],
				(unsigned long long)ev->args[3], (unsigned long long)ev->args[4]);
	case OVMC_TRACE_HCALL:
		return snprintf(buf, size, "%s: %s -> %s", part, ovmc_hcall_name(ev->opcode),
				ovmc_hcall_rc_name(ev->rc));
	}
	return snprintf(buf, size, "unknown trace event %d", (int)ev->kind);
}

void ovmc_log_trace_event(const struct ovmc_trace_event *ev)
{
	char line[OVMC_TRACE_LINE_MAX];

	/* Every hcall would drown the channel's traffic: those only at debug. */
	if (ev->kind == OVMC_TRACE_HCALL && max_level < OVMC_LOG_DEBUG)
		return; /* not worth formatting */
	ovmc_trace_format(ev, line, sizeof(line));
	ovmc_log(ev->kind == OVMC_TRACE_HCALL ? OVMC_LOG_DEBUG : OVMC_LOG_INFO, "crq", "%s", line);
}
