// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The guest link's decoder (src/platform/guest_proto.c), as both ends run
 * it on a byte stream: byte 0 picks the receiving side, byte 1 how the rest
 * is cut into reads. Whatever arrives, the decoder either waits for more,
 * refuses (and the stream ends there, as the connection would), or returns
 * a message that encodes back to exactly the bytes it came from; it never
 * reads beyond what it was given, and a message it accepts in pieces it
 * accepts whole.
 */
#include "fuzz.h"

#include "platform/guest_proto.h"

static void stream(const uint8_t *data, size_t size, enum gl_side side, unsigned chunk)
{
	enum gl_state state = GL_AWAIT_HELLO;
	size_t have = 0, off = 0;

	while (off < size) {
		struct gl_msg m;
		size_t used;
		enum gl_error e;

		/* What arrived so far: `chunk` more bytes per read. */
		have = have + chunk < size ? have + chunk : size;
		for (;;) {
			unsigned char out[GL_MAX_MSG];

			e = gl_decode(data + off, have - off, side, state, &m, &used);
			if (e != GL_OK)
				return;
			if (!used)
				break;
			FUZZ_CHECK(used <= have - off && used <= GL_MAX_MSG);
			FUZZ_CHECK(used == sizeof(struct gl_hdr) + (size_t)gl_body_len(m.h.type));
			FUZZ_CHECK(gl_encode(out, m.h.type, m.h.seq, &m.b) == used);
			FUZZ_CHECK(memcmp(out, data + off, used) == 0);
			if (m.h.type == GL_HELLO || m.h.type == GL_WELCOME)
				state = GL_ATTACHED;
			off += used;
		}
		if (have == size)
			break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	enum gl_side side = fuzz_u8(&in) & 1 ? GL_AT_DEVICE : GL_AT_HV;
	unsigned chunk = fuzz_u8(&in) % 64u + 1u;

	stream(in.p, in.n, side, chunk);
	/* All at once must find the same: nothing depends on how reads cut. */
	stream(in.p, in.n, side, (unsigned)in.n + 1u);
	return 0;
}
