/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The PAPR platform as a VIO client partition sees it: hypervisor calls
 * with their PAPR numbers, argument order and return codes, the
 * partition's own memory (reached by the platform through the first DMA
 * window), the VMC device-tree node, and the CRQ interrupt.
 *
 * This is a seam: code that knows nothing of openvmc's cores (the Linux
 * driver compiled in user space against a kernel shim, for instance) can
 * run on it. Two implementations exist: in-process (ovmc_inproc_*) and
 * cross-process (ovmc_xproc_*); both execute the same platform model.
 *
 * Memory model: the first window (liobn_local) maps the partition memory
 * one to one, so an I/O address in it is an offset into the memory that
 * ovmc_platform_memory() returns. CRQ pages and DMA buffers must live there.
 */
#ifndef OPENVMC_PLATFORM_H
#define OPENVMC_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

#include <openvmc/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Hypervisor call numbers (PAPR / Linux hvcall.h). */
#define OVMC_H_REG_CRQ 0xFCul
#define OVMC_H_FREE_CRQ 0x100ul
#define OVMC_H_VIO_SIGNAL 0x104ul
#define OVMC_H_SEND_CRQ 0x108ul
#define OVMC_H_COPY_RDMA 0x110ul
#define OVMC_H_ENABLE_CRQ 0x2B0ul
#define OVMC_H_REQUEST_VMC 0x360ul

/* Hypervisor call return codes (PAPR). */
#define OVMC_H_SUCCESS 0L
#define OVMC_H_BUSY 1L
#define OVMC_H_CLOSED 2L
#define OVMC_H_NOT_AVAILABLE 3L
#define OVMC_H_CONSTRAINED 4L
#define OVMC_H_PARTIAL 5L
#define OVMC_H_IN_PROGRESS 14L
#define OVMC_H_LONG_BUSY_ORDER_1_MSEC 9900L
#define OVMC_H_LONG_BUSY_ORDER_100_SEC 9905L
#define OVMC_H_HARDWARE (-1L)
#define OVMC_H_FUNCTION (-2L)
#define OVMC_H_PRIVILEGE (-3L)
#define OVMC_H_PARAMETER (-4L)
#define OVMC_H_NOT_FOUND (-7L)
#define OVMC_H_NO_MEM (-9L)
#define OVMC_H_AUTHORITY (-10L)
#define OVMC_H_PERMISSION (-11L)
#define OVMC_H_DROPPED (-12L)
#define OVMC_H_SOURCE_PARM (-13L)
#define OVMC_H_DEST_PARM (-14L)
#define OVMC_H_REMOTE_PARM (-15L)
#define OVMC_H_RESOURCE (-16L)

#define OVMC_H_IS_LONG_BUSY(rc)                                                             \
	((rc) >= OVMC_H_LONG_BUSY_ORDER_1_MSEC && (rc) <= OVMC_H_LONG_BUSY_ORDER_100_SEC)

/* Number of return registers (R4..R12) an hcall may fill. */
#define OVMC_HCALL_RETS 9
/* H_VIO_SIGNAL modes for the first (CRQ) interrupt. */
#define OVMC_VIO_IRQ_DISABLE 0ul
#define OVMC_VIO_IRQ_ENABLE 1ul
/* ibm,max-virtual-dma-size: largest H_COPY_RDMA length. */
#define OVMC_MAX_RDMA_LEN (128u * 1024u)
#define OVMC_PAGE_SIZE 4096u

/* Name of an H_* return code ("H_DROPPED"); "H_?" if unknown. */
OVMC_API const char *ovmc_hcall_rc_name(long rc);
/* Name of an hcall opcode ("H_SEND_CRQ"); "H_?" if unknown. */
OVMC_API const char *ovmc_hcall_name(unsigned long opcode);

/* The VMC device-tree node ("ibm,vmc") as the partition sees it. */
struct ovmc_vmc_node {
	uint32_t unit_address; /* reg */
	uint32_t drc_index;    /* ibm,my-drc-index */
	uint32_t liobn_local;  /* ibm,my-dma-window triple 1: partition memory */
	uint64_t window_local;
	uint32_t liobn_remote; /* triple 2: the hypervisor's buffers */
	uint64_t window_remote;
};

/* A client partition's handle on the platform. Opaque. */
struct ovmc_platform;

/*
 * Make a hypervisor call as this partition. `args` are R4.. in PAPR order,
 * `rets` (may be NULL) receives R4.. on return. Returns the H_* code.
 * H_FUNCTION for an unknown opcode. Not reentrant for one platform handle.
 */
OVMC_API long ovmc_hcall(struct ovmc_platform *p, unsigned long opcode, const uint64_t *args,
			 unsigned nargs, uint64_t *rets);

/* One hcall of a pair (ovmc_hcall_pair()). */
struct ovmc_hcall_req {
	unsigned long opcode;
	uint64_t args[5];
	unsigned nargs; /* at most 5 */
};

/*
 * Two hcalls where the second is made only if the first returned
 * H_SUCCESS: exactly what two ovmc_hcall() in turn that stop at a failure
 * do (no return registers), but a cross-process platform carries both in
 * one round trip. rcs[0] receives the first's H_* code, rcs[1] the
 * second's, or rcs[0] again when the second was not made.
 */
OVMC_API void ovmc_hcall_pair(struct ovmc_platform *p, const struct ovmc_hcall_req req[2],
			      long rcs[2]);

/* Typed wrappers, argument order as PAPR. */
OVMC_API long ovmc_h_reg_crq(struct ovmc_platform *p, uint64_t unit, uint64_t ioba,
			     uint64_t len);
OVMC_API long ovmc_h_free_crq(struct ovmc_platform *p, uint64_t unit);
OVMC_API long ovmc_h_send_crq(struct ovmc_platform *p, uint64_t unit, uint64_t hi, uint64_t lo);
OVMC_API long ovmc_h_copy_rdma(struct ovmc_platform *p, uint64_t len, uint64_t src_liobn,
			       uint64_t src_ioba, uint64_t dst_liobn, uint64_t dst_ioba);
OVMC_API long ovmc_h_vio_signal(struct ovmc_platform *p, uint64_t unit, uint64_t mode);
OVMC_API long ovmc_h_enable_crq(struct ovmc_platform *p, uint64_t unit);
OVMC_API long ovmc_h_request_vmc(struct ovmc_platform *p, uint32_t *drc_index);

/*
 * The VMC node of this partition. Returns 0, -ENODEV while the partition
 * has no VMC (see H_REQUEST_VMC), or -ENOTCONN if the platform is gone.
 */
OVMC_API int ovmc_platform_vmc_node(struct ovmc_platform *p, struct ovmc_vmc_node *out);

/* Partition memory (first window, ioba == offset). Owned by the platform. */
OVMC_API void *ovmc_platform_memory(struct ovmc_platform *p, size_t *size);

/*
 * File descriptor that becomes readable when the CRQ interrupt fires.
 * Owned by the platform. ovmc_platform_irq_ack() consumes the pending
 * interrupt (the EOI) and returns 1 if there was one, else 0; entries may
 * still be waiting either way, so poll the queue after acknowledging. An
 * in-process platform is raised and acknowledged from one thread.
 */
OVMC_API int ovmc_platform_irq_fd(struct ovmc_platform *p);
OVMC_API int ovmc_platform_irq_ack(struct ovmc_platform *p);
/*
 * The owner saw the interrupt descriptor readable: the next acknowledgement
 * reads it. Needed where the platform counts on its owner for that
 * (ovmc_xproc_set_irq_scan()); harmless everywhere else.
 */
OVMC_API void ovmc_platform_irq_fired(struct ovmc_platform *p);

/*
 * Whether the platform is still reachable. A cross-process platform whose
 * hypervisor went away answers every hcall with H_HARDWARE and reports 0
 * here; the caller then destroys it and attaches again.
 */
OVMC_API int ovmc_platform_alive(struct ovmc_platform *p);

/* Detach and free. Registered CRQs are freed first (the partner sees it). */
OVMC_API void ovmc_platform_destroy(struct ovmc_platform *p);

#ifdef __cplusplus
}
#endif
#endif
