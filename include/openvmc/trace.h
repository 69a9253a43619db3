/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Trace events: what crossed the channel, as the machine (hypervisor side)
 * or the driver (partition side) saw it. Feeds readable logs and capture
 * files (capture.h).
 */
#ifndef OPENVMC_TRACE_H
#define OPENVMC_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openvmc/common.h>

#ifdef __cplusplus
extern "C" {
#endif

enum ovmc_trace_kind {
	OVMC_TRACE_TO_HV,        /* a CRQ entry from the partition to the hypervisor */
	OVMC_TRACE_TO_PARTITION, /* a CRQ entry from the hypervisor to the partition */
	OVMC_TRACE_RDMA,         /* an H_COPY_RDMA that succeeded */
	OVMC_TRACE_HCALL,        /* any hcall and its result (machine only) */
};

struct ovmc_trace_event {
	enum ovmc_trace_kind kind;
	unsigned partition; /* partition id; 0 when the tracer does not know it */
	/* TO_HV / TO_PARTITION: the 16 bytes; NULL otherwise */
	const uint8_t *entry;
	/* HCALL: opcode, args, rc. RDMA: args are len, src liobn/ioba, dst liobn/ioba */
	unsigned long opcode;
	uint64_t args[5];
	long rc;
	/* RDMA: the bytes copied (valid during the callback only), and whether
	 * they went into the hypervisor's window */
	const uint8_t *data;
	size_t data_len;
	bool to_hv;
};

typedef void (*ovmc_trace_fn)(void *arg, const struct ovmc_trace_event *ev);

#ifdef __cplusplus
}
#endif
#endif
