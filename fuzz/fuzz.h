/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the fuzz targets share: reading an input as a stream of small
 * decisions, and the stand-in for the test harness (tests/harness.h) that
 * lets them use the channel simulation (tests/sim.h). A FAIL() in the
 * simulation or a check below is a finding: it prints why and aborts, so
 * libFuzzer keeps the input.
 */
#ifndef OVMC_FUZZ_H
#define OVMC_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
	uint8_t v = 0;

	if (in->n) {
		v = *in->p++;
		in->n--;
	}
	return v;
}

static inline uint16_t fuzz_u16(struct fuzz_in *in)
{
	uint16_t hi = fuzz_u8(in);

	return (uint16_t)(hi << 8 | fuzz_u8(in));
}

/* Up to `len` bytes into buf (zero-filled beyond the input's end). */
static inline void fuzz_bytes(struct fuzz_in *in, uint8_t *buf, size_t len)
{
	size_t k = len < in->n ? len : in->n;

	memcpy(buf, in->p, k);
	memset(buf + k, 0, len - k);
	in->p += k;
	in->n -= k;
}

/* Run and forget the cleanups the simulation registered for this input. */
void fuzz_cleanup(void);
/* Abort with a message: the input broke a promise. */
_Noreturn void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define FUZZ_CHECK(cond)                                                                    \
	do {                                                                                \
		if (!(cond))                                                                \
			fuzz_fail("%s:%d: %s", __FILE__, __LINE__, #cond);                  \
	} while (0)

#endif
