// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The daemons' log (src/daemon/log.h): a sink that cannot take a line
 * never blocks the caller (the line is counted and the count said later),
 * and repeated lines are rate-limited with the count of what was held
 * back. The rate limiter runs on a fake clock here.
 */
#include "harness.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#define WINDOW_NS 1000000000ull

static uint64_t fake_now;

static uint64_t fake_clock(void)
{
	return fake_now;
}

struct captured {
	int saved_stderr;
	int rd;
};

static void restore(void *arg)
{
	struct captured *c = arg;

	dup2(c->saved_stderr, STDERR_FILENO);
	close(c->saved_stderr);
	close(c->rd);
	ovmc_log_set_clock(NULL);
	free(c);
}

/* stderr on a pipe of `size` bytes that this test reads (non-blocking). */
static struct captured *capture(int size)
{
	struct captured *c = calloc(1, sizeof(*c));
	int p[2];

	if (!c || pipe2(p, O_CLOEXEC) < 0)
		FAIL("pipe: %s", strerror(errno));
	if (size && fcntl(p[1], F_SETPIPE_SZ, size) < 0)
		FAIL("F_SETPIPE_SZ: %s", strerror(errno));
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	c->saved_stderr = dup(STDERR_FILENO);
	dup2(p[1], STDERR_FILENO);
	close(p[1]);
	c->rd = p[0];
	ovmc_test_defer(restore, c);
	fake_now = 1000 * WINDOW_NS;
	ovmc_log_set_clock(fake_clock);
	ovmc_log_set_rate_limit(5, WINDOW_NS);
	/* After the redirection: the sink is chosen for what stderr is now. */
	ovmc_log_setup("logtest", OVMC_LOG_INFO);
	return c;
}

/* Everything logged so far. */
static char *drain(struct captured *c)
{
	static char buf[1 << 20];
	size_t len = 0;
	ssize_t n;

	while (len + 1 < sizeof(buf) && (n = read(c->rd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	return buf;
}

static unsigned count(const char *text, const char *what)
{
	unsigned n = 0;

	for (const char *p = text; (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

TEST(repeated_line_logged_five_times_per_window_then_summed_up)
{
	struct captured *c = capture(0);
	const char *out;

	for (unsigned i = 0; i < 100; i++)
		ovmc_log(OVMC_LOG_WARN, "driver", "read of %u bytes truncated a %u-byte message",
			 i + 1, 4096);
	out = drain(c);
	CHECK_EQ(count(out, "truncated a 4096-byte message"), 5);
	CHECK(strstr(out, "read of 1 bytes truncated"));
	CHECK(strstr(out, "read of 5 bytes truncated"));
	CHECK(!strstr(out, "read of 6 bytes truncated"));
	CHECK_EQ(ovmc_log_suppressed(), 95);
	/* Nothing said before the window ends... */
	fake_now += WINDOW_NS / 2;
	CHECK_EQ(ovmc_log_tick(), 1000 * WINDOW_NS + WINDOW_NS);
	CHECK(!strstr(drain(c), "more lines"));
	/* ...then one line with the count and the last of them. */
	fake_now += WINDOW_NS / 2;
	CHECK_EQ(ovmc_log_tick(), UINT64_MAX);
	out = drain(c);
	CHECK_EQ(count(out, "\n"), 1);
	CHECK(strstr(out, " warn driver: 95 more lines like \"read of 100 bytes truncated a "
			  "4096-byte message\""));
	/* A new window: the line is logged again. */
	ovmc_log(OVMC_LOG_WARN, "driver", "read of %u bytes truncated a %u-byte message", 7, 4096);
	CHECK(strstr(drain(c), "read of 7 bytes truncated"));
}

/* The loop asks on every pass; each answer is the end of the earliest
 * window still holding lines back, one window after the other. */
TEST(held_back_windows_end_one_after_the_other)
{
	struct captured *c = capture(0);
	const char *out;

	for (unsigned i = 0; i < 7; i++)
		ovmc_log(OVMC_LOG_WARN, "hv", "session %u opened", i + 1);
	fake_now += WINDOW_NS / 4;
	for (unsigned i = 0; i < 8; i++)
		ovmc_log(OVMC_LOG_WARN, "driver", "buffer %u returned", i + 1);
	drain(c);
	CHECK_EQ(ovmc_log_tick(), 1000 * WINDOW_NS + WINDOW_NS);
	fake_now += WINDOW_NS / 2;
	CHECK_EQ(ovmc_log_tick(), 1000 * WINDOW_NS + WINDOW_NS);
	CHECK(!strstr(drain(c), "more lines"));
	fake_now = 1000 * WINDOW_NS + WINDOW_NS;
	CHECK_EQ(ovmc_log_tick(), 1000 * WINDOW_NS + WINDOW_NS + WINDOW_NS / 4);
	out = drain(c);
	CHECK(strstr(out, "hv: 2 more lines like \"session 7 opened\""));
	CHECK(!strstr(out, "buffer"));
	fake_now += WINDOW_NS / 4;
	CHECK_EQ(ovmc_log_tick(), UINT64_MAX);
	CHECK(strstr(drain(c), "driver: 3 more lines like \"buffer 8 returned\""));
}

TEST(different_lines_components_and_levels_are_not_held_back)
{
	struct captured *c = capture(0);
	const char *out;

	for (unsigned i = 0; i < 20; i++) {
		ovmc_log(OVMC_LOG_WARN, "driver", "reason %c", 'a' + (char)i);
		ovmc_log(OVMC_LOG_WARN, i % 2 ? "hv" : "control", "the same text");
		ovmc_log(OVMC_LOG_INFO, "hv", "the same text");
	}
	out = drain(c);
	for (unsigned i = 0; i < 20; i++) {
		char want[32];

		snprintf(want, sizeof(want), "reason %c\n", 'a' + (char)i);
		CHECK(strstr(out, want));
	}
	CHECK_EQ(count(out, "warn hv: the same text"), 5);
	CHECK_EQ(count(out, "warn control: the same text"), 5);
	CHECK_EQ(count(out, "info hv: the same text"), 5);
	CHECK_EQ(ovmc_log_suppressed(), 25);
}

TEST(debug_lines_are_never_rate_limited)
{
	struct captured *c = capture(0);

	ovmc_log_setup("logtest", OVMC_LOG_DEBUG);
	for (unsigned i = 0; i < 50; i++)
		ovmc_log(OVMC_LOG_DEBUG, "driver", "state %u", i);
	CHECK_EQ(count(drain(c), "debug driver: state "), 50);
	CHECK_EQ(ovmc_log_suppressed(), 0);
}

TEST(flush_says_every_held_back_count_at_once)
{
	struct captured *c = capture(0);
	const char *out;

	for (unsigned i = 0; i < 8; i++) {
		ovmc_log(OVMC_LOG_ERROR, "a", "first %u", i);
		ovmc_log(OVMC_LOG_ERROR, "b", "second %u", i);
	}
	drain(c);
	ovmc_log_flush();
	out = drain(c);
	CHECK(strstr(out, "error a: 3 more lines like \"first 7\""));
	CHECK(strstr(out, "error b: 3 more lines like \"second 7\""));
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "FAIL a log call blocked on a full pipe\n";

	if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(2);
	_exit(1);
}

TEST(full_pipe_never_blocks_and_the_loss_is_said_once_drained)
{
	struct captured *c = capture(4096);
	const char *out;

	/* A hang would be the bug: turn it into a failure. */
	signal(SIGALRM, on_alarm);
	alarm(20);
	ovmc_log_set_rate_limit(1000000, 0);
	for (unsigned i = 0; i < 2000; i++)
		ovmc_log(OVMC_LOG_INFO, "main", "line %u of a burst nobody reads", i);
	alarm(0);
	CHECK(ovmc_log_dropped() > 0);
	out = drain(c);
	CHECK(strstr(out, "line 0 of a burst"));
	CHECK(!strstr(out, "line 1999 of a burst"));
	ovmc_log(OVMC_LOG_INFO, "main", "after the drain");
	out = drain(c);
	CHECK(strstr(out, " log lines dropped: the log was not being read\n"));
	CHECK(strstr(out, "after the drain"));
	CHECK(strstr(out, "dropped") < strstr(out, "after the drain"));
	CHECK_EQ(ovmc_log_dropped(), 0);
}
