/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Minimal test harness. A test file defines tests with TEST(name); the
 * runner (harness.c) runs one named test (argv[1]) or all of them, and
 * ends with "N passed, N failed". CMake registers every TEST() as its own
 * CTest test, so each runs in a fresh process.
 */
#ifndef OVMC_TEST_HARNESS_H
#define OVMC_TEST_HARNESS_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

struct ovmc_test {
	const char *name;
	void (*fn)(void);
};

#define TEST(name)                                                                          \
	static void test_##name(void);                                                      \
	static const struct ovmc_test ovmc_test_reg_##name                                  \
		__attribute__((used, section("ovmc_tests"), aligned(sizeof(void *)))) = {   \
			#name, test_##name};                                                \
	static void test_##name(void)

/* Record a failure and leave the current test. */
_Noreturn void ovmc_test_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Record a failure from a cleanup, where leaving the test is not possible. */
void ovmc_test_fail_later(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Leave the test process: this machine lacks what the test needs (`why`,
 * one line, e.g. "needs root"). Exit 77, the runner's skip code; with
 * CI=true the test fails instead, since CI must run every test. Tests
 * labelled fuse or root (tests/CMakeLists.txt) are checked before they
 * start: OVMC_TEST_NEEDS.
 */
_Noreturn void ovmc_test_skip(const char *why);

/* Cleanup run when the current test ends, passed or failed (LIFO). */
void ovmc_test_defer(void (*fn)(void *), void *arg);

/* Has the current test failed? Lets a cleanup keep its diagnostics (a
 * daemon's log) for the failures that need them. */
bool ovmc_test_failed(void);

/*
 * First thing a child forked by a test does (before exec, and again after
 * any credential change, which clears it): the child is SIGKILLed when the
 * test process dies, however it dies (SIGKILL, crash, ctest timeout), so
 * that no daemon or client outlives its test; a daemon's FUSE mount then
 * goes with its unmounting watchdog. `parent` is getpid()
 * taken before fork(): if the test died already, the child exits 127.
 * The signal follows the forking *thread*: fork from the test's own thread.
 */
void ovmc_test_die_with_parent(pid_t parent);
/* fork() whose child dies with the test (ovmc_test_die_with_parent). */
pid_t ovmc_test_fork(void);

#define CHECK(cond)                                                                         \
	do {                                                                                \
		if (!(cond))                                                                \
			ovmc_test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);             \
	} while (0)

#define CHECK_EQ(a, b)                                                                      \
	do {                                                                                \
		long long ovmc_a_ = (long long)(a), ovmc_b_ = (long long)(b);               \
		if (ovmc_a_ != ovmc_b_)                                                     \
			ovmc_test_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, \
				       ovmc_a_, ovmc_b_);                                   \
	} while (0)

#define CHECK_MEM(a, b, n)                                                                  \
	do {                                                                                \
		if (memcmp((a), (b), (n)) != 0)                                             \
			ovmc_test_fail(__FILE__, __LINE__, "memory %s != %s (%zu bytes)", #a, \
				       #b, (size_t)(n));                                    \
	} while (0)

#define FAIL(...) ovmc_test_fail(__FILE__, __LINE__, __VA_ARGS__)

/* Deterministic pseudo-random source for tests (xorshift64*). */
uint64_t ovmc_test_rand(uint64_t *state);

#endif
