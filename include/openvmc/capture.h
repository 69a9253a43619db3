/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Capture files: every CRQ entry and every RDMA transfer, with time,
 * direction, partition and bytes, in pcapng (link type USER0, 147), so
 * Wireshark/tshark can read them with dissector/openvmc.lua. Record format:
 * docs/capture.md. Also read back (the replay backend does).
 */
#ifndef OPENVMC_CAPTURE_H
#define OPENVMC_CAPTURE_H

#include <stddef.h>
#include <stdint.h>

#include <openvmc/common.h>
#include <openvmc/trace.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OVMC_CAPTURE_LINKTYPE 147 /* LINKTYPE_USER0 */

enum ovmc_capture_side {
	OVMC_CAPTURE_HYPERVISOR = 0, /* written by the machine's trace */
	OVMC_CAPTURE_PARTITION = 1,  /* written by the driver's trace */
};

enum ovmc_capture_kind {
	OVMC_CAPTURE_CRQ = 1,
	OVMC_CAPTURE_RDMA = 2,
};

enum ovmc_capture_dir {
	OVMC_CAPTURE_TO_HV = 0,
	OVMC_CAPTURE_TO_PARTITION = 1,
};

struct ovmc_capture;

/*
 * Create (truncate) `path` and write the file header. Returns 0 or -errno.
 * Each record is written with one write() as it happens, so a file
 * survives its writer being killed.
 */
OVMC_API int ovmc_capture_open(const char *path, enum ovmc_capture_side side,
			       struct ovmc_capture **out);
/*
 * Record one trace event stamped with the current real time. CRQ entries
 * and RDMA transfers are written; other kinds are ignored (0). Returns 0 or
 * -errno; after an error the capture stays usable.
 */
OVMC_API int ovmc_capture_event(struct ovmc_capture *c, const struct ovmc_trace_event *ev);
/* ovmc_capture_event() as an ovmc_trace_fn (arg is the capture). */
OVMC_API void ovmc_capture_trace(void *capture, const struct ovmc_trace_event *ev);
/* Records written and records that failed. */
OVMC_API void ovmc_capture_counts(const struct ovmc_capture *c, uint64_t *written,
				  uint64_t *failed);
/* Close the file; returns 0 or the first write error seen. */
OVMC_API int ovmc_capture_close(struct ovmc_capture *c);

/* One record read back. Pointers are valid until the next read. */
struct ovmc_capture_record {
	uint64_t time_ns; /* since the epoch */
	uint8_t kind;     /* enum ovmc_capture_kind */
	uint8_t dir;      /* enum ovmc_capture_dir */
	uint8_t side;     /* enum ovmc_capture_side */
	uint16_t partition;
	const uint8_t *entry; /* CRQ: 16 bytes */
	/* RDMA */
	uint32_t src_liobn, dst_liobn;
	uint64_t src_ioba, dst_ioba;
	const uint8_t *data;
	size_t data_len;
};

struct ovmc_capture_reader;

/* Returns 0, -errno, or -EPROTO when the file is not an openvmc pcapng. */
OVMC_API int ovmc_capture_reader_open(const char *path, struct ovmc_capture_reader **out);
/* 1 and the next record, 0 at the end, -EPROTO for a damaged file. */
OVMC_API int ovmc_capture_read(struct ovmc_capture_reader *r, struct ovmc_capture_record *rec);
OVMC_API void ovmc_capture_reader_close(struct ovmc_capture_reader *r);

#ifdef __cplusplus
}
#endif
#endif
