// SPDX-License-Identifier: GPL-2.0-or-later
/* The part of tests/harness.h the simulation uses, for fuzz targets (fuzz.h). */
#include "fuzz.h"

#include "harness.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_DEFERRED 256

static struct {
	void (*fn)(void *);
	void *arg;
} deferred[MAX_DEFERRED];
static int n_deferred;

void fuzz_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("FUZZ FINDING: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

void ovmc_test_fail(const char *file, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fuzz_fail("%s:%d: %s", file, line, msg);
}

void ovmc_test_defer(void (*fn)(void *), void *arg)
{
	if (n_deferred == MAX_DEFERRED)
		fuzz_fail("too many deferred cleanups");
	deferred[n_deferred].fn = fn;
	deferred[n_deferred].arg = arg;
	n_deferred++;
}

void fuzz_cleanup(void)
{
	while (n_deferred > 0) {
		n_deferred--;
		deferred[n_deferred].fn(deferred[n_deferred].arg);
	}
}

bool ovmc_test_failed(void)
{
	return false;
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
