// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The wire decoders: CRQ entries (wire.h) and the exec/socket backend
 * frames (framing.h). Every input either decodes to something that
 * encodes back to the same bytes, or is refused with an error; the stream
 * decoder, fed the same bytes in random pieces, finds the same frames as
 * the one-shot parser.
 */
#include "fuzz.h"

#include "hv/backends/framing.h"

#include <openvmc/wire.h>

#include <stdio.h>

static void entries(const uint8_t *data, size_t size)
{
	static const unsigned flags[] = {0, OVMC_DECODE_SIGNAL_PAD, OVMC_DECODE_LENIENT};
	char line[256];

	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		struct ovmc_entry m, m2;
		uint8_t out[OVMC_CRQ_ENTRY_SIZE], out2[OVMC_CRQ_ENTRY_SIZE];
		int rc = ovmc_entry_decode(data, size, flags[i], &m);

		if (rc)
			continue;
		FUZZ_CHECK(size >= OVMC_CRQ_ENTRY_SIZE);
		FUZZ_CHECK(ovmc_entry_encode(&m, out) == 0);
		/* Strict decoding accepts only what encoding writes (PAPR leaves
		 * bytes 2..15 of a transport event unspecified). */
		if (flags[i] == 0 && data[0] != OVMC_CRQ_TRANSPORT)
			FUZZ_CHECK(memcmp(out, data, OVMC_CRQ_ENTRY_SIZE) == 0);
		if (flags[i] == 0 && data[0] == OVMC_CRQ_TRANSPORT)
			FUZZ_CHECK(memcmp(out, data, 2) == 0);
		FUZZ_CHECK(ovmc_entry_decode(out, sizeof(out), 0, &m2) == 0);
		FUZZ_CHECK(ovmc_entry_encode(&m2, out2) == 0);
		FUZZ_CHECK(memcmp(out, out2, sizeof(out)) == 0);
	}
	if (size >= OVMC_CRQ_ENTRY_SIZE) {
		uint64_t hi, lo;
		uint8_t back[OVMC_CRQ_ENTRY_SIZE];
		int n = ovmc_entry_format(data, line, sizeof(line));

		FUZZ_CHECK(n >= 0 && strlen(line) < sizeof(line));
		ovmc_entry_to_words(data, &hi, &lo);
		ovmc_entry_from_words(hi, lo, back);
		FUZZ_CHECK(memcmp(back, data, sizeof(back)) == 0);
		FUZZ_CHECK(ovmc_msg_type_name(data[1]) && ovmc_event_name(data[1]));
	}
}

static void frames(const uint8_t *data, size_t size)
{
	struct ovmc_frame_decoder d;
	size_t off = 0, pos = 0, step = 1;

	ovmc_frame_decoder_init(&d);
	while (pos < size) {
		struct ovmc_frame f, g;
		size_t used = 0, chunk = step < size - pos ? step : size - pos;
		int rc = ovmc_frame_decode(&d, data + pos, chunk, &used, &f);

		FUZZ_CHECK(used <= chunk);
		pos += used;
		step = step * 3 % 17 + 1;
		if (rc < 0)
			break;
		if (rc == 0)
			continue;
		/* The same frame where the one-shot parser finds it. */
		{
			int n = ovmc_frame_parse(data + off, size - off, &g);
			uint8_t enc[OVMC_FRAME_HDR_LEN + OVMC_FRAME_MAX_PAYLOAD];

			FUZZ_CHECK(n > 0 && (size_t)n == pos - off);
			FUZZ_CHECK(g.type == f.type && g.len == f.len && g.index == f.index &&
				   g.session == f.session && g.partition == f.partition);
			FUZZ_CHECK(f.len == 0 || memcmp(g.payload, f.payload, f.len) == 0);
			FUZZ_CHECK(ovmc_frame_encode(&f, enc, sizeof(enc)) == n);
			FUZZ_CHECK(memcmp(enc, data + off, (size_t)n) == 0);
		}
		off = pos;
	}
	ovmc_frame_decoder_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	entries(data, size);
	frames(data, size);
	return 0;
}
