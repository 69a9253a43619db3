// SPDX-License-Identifier: GPL-2.0-or-later
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

extern const struct ovmc_test __start_ovmc_tests[] __attribute__((weak));
extern const struct ovmc_test __stop_ovmc_tests[] __attribute__((weak));

static jmp_buf test_jump;
static int test_failed;

struct deferred {
	void (*fn)(void *);
	void *arg;
};

#define MAX_DEFERRED 4096
static struct deferred deferred[MAX_DEFERRED];
static int n_deferred;

void ovmc_test_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	test_failed = 1;
	longjmp(test_jump, 1);
}

void ovmc_test_fail_later(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	test_failed = 1;
}

void ovmc_test_defer(void (*fn)(void *), void *arg)
{
	if (n_deferred == MAX_DEFERRED) {
		fprintf(stderr, "too many deferred cleanups\n");
		abort();
	}
	deferred[n_deferred++] = (struct deferred){fn, arg};
}

bool ovmc_test_failed(void)
{
	return test_failed != 0;
}

void ovmc_test_die_with_parent(pid_t parent)
{
	/* Only async-signal-safe calls: the test may have threads. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
		_exit(127);
}

pid_t ovmc_test_fork(void)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid == 0)
		ovmc_test_die_with_parent(parent);
	return pid;
}

uint64_t ovmc_test_rand(uint64_t *state)
{
	uint64_t x = *state ? *state : 0x9E3779B97F4A7C15ull;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1Dull;
}

void ovmc_test_skip(const char *why)
{
	const char *ci = getenv("CI");

	fflush(stdout);
	if (ci && strcmp(ci, "true") == 0) {
		printf("FAIL: %s (CI=true runs every test)\n", why);
		exit(1);
	}
	printf("SKIP: %s\n", why);
	exit(77);
}

/* /dev/fuse as the FUSE driver's node (10:229) that this process can open. */
static bool fuse_usable(char *why, size_t size)
{
	struct stat st;
	int fd;

	if (stat("/dev/fuse", &st) != 0) {
		snprintf(why, size, "needs /dev/fuse (%s)", strerror(errno));
		return false;
	}
	if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != 10 || minor(st.st_rdev) != 229) {
		snprintf(why, size, "needs /dev/fuse (it is not the FUSE device 10:229 here)");
		return false;
	}
	fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, size, "needs /dev/fuse (open: %s)", strerror(errno));
		return false;
	}
	close(fd);
	return true;
}

/*
 * What the test needs and the machine may lack: OVMC_TEST_NEEDS, words
 * "root" and "fuse", set by tests/CMakeLists.txt from the test's labels.
 */
static void check_needs(void)
{
	const char *needs = getenv("OVMC_TEST_NEEDS");
	char why[160];

	if (!needs)
		return;
	if (strstr(needs, "root") && geteuid() != 0) {
		snprintf(why, sizeof(why), "needs root (running as uid %u)", (unsigned)geteuid());
		ovmc_test_skip(why);
	}
	if (strstr(needs, "fuse") && !fuse_usable(why, sizeof(why)))
		ovmc_test_skip(why);
}

static int run_one(const struct ovmc_test *t)
{
	test_failed = 0;
	n_deferred = 0;
	if (setjmp(test_jump) == 0)
		t->fn();
	while (n_deferred > 0) {
		struct deferred d = deferred[--n_deferred];

		d.fn(d.arg);
	}
	printf("%s %s\n", test_failed ? "FAIL" : "ok  ", t->name);
	fflush(stdout);
	return test_failed;
}

int main(int argc, char **argv)
{
	int passed = 0, failed = 0, matched = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	check_needs();
	for (const struct ovmc_test *t = __start_ovmc_tests; t < __stop_ovmc_tests; t++) {
		if (argc > 1 && strcmp(argv[1], t->name) != 0)
			continue;
		matched++;
		if (run_one(t))
			failed++;
		else
			passed++;
	}
	if (argc > 1 && !matched) {
		fprintf(stderr, "no test named %s\n", argv[1]);
		return 2;
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
