// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Logging (log.h). Two rules: a log line never blocks the daemon, and a
 * line that repeats cannot flood the log.
 *
 * Never blocking: a pipe or FIFO on stderr is written through a private
 * non-blocking open of it (/proc/self/fd/2: a new open file description,
 * so the flag does not leak to whoever shares stderr), a socket with
 * MSG_DONTWAIT, and syslog through our own non-blocking datagram socket
 * (glibc's syslog() blocks while the log daemon stalls). A line that
 * would block is counted and said before the next one that gets through.
 *
 * Repeats: lines at info and above are keyed by component, level and text
 * with every run of digits taken as one; each key may log `burst` lines per
 * window, the rest are counted and summed up in one line when the window
 * ends. Debug and trace lines, and --trace output, are asked for and pass.
 */
#include "log.h"

#include <stdbool.h>

#include <openvmc/platform.h>
#include <openvmc/trace.h>
#include <openvmc/wire.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 1024
#define RL_SLOTS 64
#define RL_DEFAULT_BURST 5u
#define RL_DEFAULT_WINDOW_NS (10ull * 1000000000ull)
/* What a summary quotes of the lines it stands for. */
#define RL_EXAMPLE 96

enum sink { SINK_WRITE, SINK_NONBLOCK_FD, SINK_SOCKET, SINK_SYSLOG };

struct rl_slot {
	uint64_t key;
	uint64_t window_start;
	unsigned logged;     /* in this window */
	unsigned suppressed; /* in this window */
	enum ovmc_log_level level;
	char component[24];
	char example[RL_EXAMPLE];
};

static const char *prog = "openvmc";
static enum ovmc_log_level max_level = OVMC_LOG_INFO;
static enum sink sink = SINK_WRITE;
static int sink_fd = STDERR_FILENO;
static int syslog_fd = -1;
static uint64_t lines_dropped;
static unsigned rl_burst = RL_DEFAULT_BURST;
static uint64_t rl_window = RL_DEFAULT_WINDOW_NS;
static struct rl_slot rl[RL_SLOTS];
static uint64_t rl_suppressed_total;
/* Slots holding back lines: ovmc_log_tick() has nothing to do without. */
static unsigned rl_holding;
/* No window holding lines back ends before this (it may end later). */
static uint64_t rl_due = UINT64_MAX;
static uint64_t (*clock_fn)(void);
static bool emitting_summary;

static uint64_t now_ns(void)
{
	struct timespec ts;

	if (clock_fn)
		return clock_fn();
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- sinks ---- */

static void close_sink_fd(void)
{
	if (sink == SINK_NONBLOCK_FD && sink_fd != STDERR_FILENO)
		close(sink_fd);
	sink_fd = STDERR_FILENO;
}

/* How to write to what stderr is now without ever blocking on it. */
static void choose_stderr_sink(void)
{
	struct stat st;

	close_sink_fd();
	sink = SINK_WRITE;
	if (fstat(STDERR_FILENO, &st) != 0)
		return;
	if (S_ISSOCK(st.st_mode)) {
		sink = SINK_SOCKET;
	} else if (S_ISFIFO(st.st_mode)) {
		int fd = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_CLOEXEC);

		if (fd >= 0) {
			sink = SINK_NONBLOCK_FD;
			sink_fd = fd;
		}
	}
}

static bool syslog_connect(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX, .sun_path = "/dev/log"};

	if (syslog_fd < 0)
		syslog_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (syslog_fd < 0)
		return false;
	return connect(syslog_fd, (const struct sockaddr *)&sa, sizeof(sa)) == 0;
}

void ovmc_log_use_syslog(void)
{
	close_sink_fd();
	sink = SINK_SYSLOG;
	syslog_connect();
}

void ovmc_log_setup(const char *program, enum ovmc_log_level level)
{
	const char *slash = strrchr(program, '/');

	prog = slash ? slash + 1 : program;
	max_level = level;
	choose_stderr_sink();
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
	snprintf(buf, size, "%s.%03u", hms, (unsigned)(tv.tv_usec / 1000) % 1000u);
}

/* One whole line to the sink; false if it would have blocked. */
static bool sink_write(const char *line, size_t len)
{
	ssize_t n;

	switch (sink) {
	case SINK_SOCKET:
		n = send(sink_fd, line, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		break;
	case SINK_SYSLOG:
		n = send(syslog_fd, line, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		/* The log daemon restarted: its socket is a new one. */
		if (n < 0 && (errno == ECONNREFUSED || errno == ENOTCONN) && syslog_connect())
			n = send(syslog_fd, line, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		break;
	default:
		n = write(sink_fd, line, len);
		break;
	}
	return n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
}

/* Format one line for the sink: stderr's form, or syslog's. */
static size_t format_line(char *line, size_t size, enum ovmc_log_level level,
			  const char *component, const char *text)
{
	int n;

	if (sink == SINK_SYSLOG) {
		static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG, LOG_DEBUG};
		char stamp[32];
		time_t t = time(NULL);
		struct tm tm;

		localtime_r(&t, &tm);
		strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
		n = snprintf(line, size, "<%d>%s %s[%d]: %s: %s", LOG_DAEMON | prio[level], stamp,
			     prog, (int)getpid(), component, text);
	} else {
		char stamp[OVMC_LOG_STAMP_MAX];

		ovmc_log_stamp(stamp, sizeof(stamp));
		n = snprintf(line, size, "%s %s[%d] %s %s: %s\n", stamp, prog, (int)getpid(),
			     ovmc_log_level_name(level), component, text);
	}
	if (n < 0)
		return 0;
	if ((size_t)n >= size) {
		n = (int)size - 1;
		if (sink != SINK_SYSLOG)
			line[n - 1] = '\n';
	}
	return (size_t)n;
}

static void emit(enum ovmc_log_level level, const char *component, const char *text)
{
	char line[LINE_MAX_BYTES];
	size_t len;

	if (lines_dropped) {
		char note[96];

		snprintf(note, sizeof(note), "%llu log lines dropped: the log was not being read",
			 (unsigned long long)lines_dropped);
		len = format_line(line, sizeof(line), OVMC_LOG_WARN, "log", note);
		if (!sink_write(line, len)) {
			lines_dropped++;
			return;
		}
		lines_dropped = 0;
	}
	len = format_line(line, sizeof(line), level, component, text);
	if (!sink_write(line, len))
		lines_dropped++;
}

/* ---- repeats ---- */

/* FNV-1a over what makes two lines "the same": numbers do not count. */
static uint64_t line_key(enum ovmc_log_level level, const char *component, const char *text)
{
	uint64_t h = 0xcbf29ce484222325ull;
	bool in_digits = false;

	h = (h ^ (uint64_t)level) * 0x100000001b3ull;
	for (const char *p = component; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
	h = (h ^ 0xff) * 0x100000001b3ull;
	for (const char *p = text; *p; p++) {
		if (isdigit((unsigned char)*p)) {
			if (in_digits)
				continue;
			in_digits = true;
			h = (h ^ '#') * 0x100000001b3ull;
			continue;
		}
		in_digits = false;
		h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
	}
	return h ? h : 1;
}

static void summarize(struct rl_slot *s)
{
	char text[RL_EXAMPLE + 96];

	if (!s->suppressed)
		return;
	snprintf(text, sizeof(text), "%u more lines like \"%s\" in %llu s (suppressed)",
		 s->suppressed, s->example,
		 (unsigned long long)((rl_window + 999999999ull) / 1000000000ull));
	s->suppressed = 0;
	rl_holding--;
	emitting_summary = true;
	emit(s->level, s->component, text);
	emitting_summary = false;
}

/* Windows that ended: their summaries go out, their slots are free. */
static void expire(uint64_t now)
{
	for (unsigned i = 0; i < RL_SLOTS; i++) {
		struct rl_slot *s = &rl[i];

		if (s->key && now - s->window_start >= rl_window) {
			summarize(s);
			s->key = 0;
		}
	}
}

/* Whether this line may go out now (else it is counted). */
static bool rate_allows(enum ovmc_log_level level, const char *component, const char *text)
{
	uint64_t key = line_key(level, component, text), now = now_ns();
	struct rl_slot *s = NULL, *oldest = &rl[0];

	expire(now);
	for (unsigned i = 0; i < RL_SLOTS; i++) {
		if (rl[i].key == key) {
			s = &rl[i];
			break;
		}
		if (!rl[i].key || (oldest->key && rl[i].window_start < oldest->window_start))
			oldest = &rl[i];
	}
	if (!s) {
		/* Full: the oldest window closes early, its count said. */
		s = oldest;
		summarize(s);
		*s = (struct rl_slot){.key = key, .window_start = now, .level = level};
		snprintf(s->component, sizeof(s->component), "%s", component);
	}
	if (s->logged < rl_burst) {
		s->logged++;
		return true;
	}
	if (s->suppressed++ == 0) {
		rl_holding++;
		if (s->window_start + rl_window < rl_due)
			rl_due = s->window_start + rl_window;
	}
	rl_suppressed_total++;
	/* Cut short: a summary quotes the start of what it stands for. */
	memcpy(s->example, text, strnlen(text, sizeof(s->example) - 1));
	s->example[strnlen(text, sizeof(s->example) - 1)] = '\0';
	return false;
}

uint64_t ovmc_log_tick(void)
{
	uint64_t now;

	/* Called on every pass of the loop: mostly nothing is held back, and
	 * after a burst (63 sessions opening) the slots are looked at only
	 * when a window ends, not on every pass of its 10 s. */
	if (!rl_holding)
		return UINT64_MAX;
	now = now_ns();
	if (now < rl_due)
		return rl_due;
	expire(now);
	rl_due = UINT64_MAX;
	for (unsigned i = 0; i < RL_SLOTS; i++)
		if (rl[i].key && rl[i].suppressed && rl[i].window_start + rl_window < rl_due)
			rl_due = rl[i].window_start + rl_window;
	return rl_due;
}

uint64_t ovmc_log_suppressed(void)
{
	return rl_suppressed_total;
}

uint64_t ovmc_log_dropped(void)
{
	return lines_dropped;
}

void ovmc_log_set_rate_limit(unsigned burst, uint64_t window_ns)
{
	rl_burst = burst;
	rl_window = window_ns ? window_ns : RL_DEFAULT_WINDOW_NS;
	memset(rl, 0, sizeof(rl));
	rl_holding = 0;
	rl_due = UINT64_MAX;
}

void ovmc_log_set_clock(uint64_t (*fn)(void))
{
	clock_fn = fn;
}

void ovmc_log_flush(void)
{
	for (unsigned i = 0; i < RL_SLOTS; i++) {
		summarize(&rl[i]);
		rl[i].key = 0;
	}
}

/* ---- entry points ---- */

static void log_text(enum ovmc_log_level level, const char *component, const char *fmt,
		     va_list ap, bool limited) __attribute__((format(printf, 3, 0)));

static void log_text(enum ovmc_log_level level, const char *component, const char *fmt,
		     va_list ap, bool limited)
{
	char text[LINE_MAX_BYTES];

	if (level > max_level)
		return;
	vsnprintf(text, sizeof(text), fmt, ap);
	if (limited && level <= OVMC_LOG_INFO && !emitting_summary &&
	    !rate_allows(level, component, text))
		return;
	emit(level, component, text);
}

void ovmc_log_sink(void *user, enum ovmc_log_level level, const char *fmt, va_list ap)
{
	log_text(level, user ? (const char *)user : "main", fmt, ap, true);
}

void ovmc_log(enum ovmc_log_level level, const char *component, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_text(level, component, fmt, ap, true);
	va_end(ap);
}

static void __attribute__((format(printf, 3, 4)))
log_unlimited(enum ovmc_log_level level, const char *component, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_text(level, component, fmt, ap, false);
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
	/* Asked for with --trace: every line, never rate-limited. */
	log_unlimited(ev->kind == OVMC_TRACE_HCALL ? OVMC_LOG_DEBUG : OVMC_LOG_INFO, "crq", "%s",
		      line);
}
