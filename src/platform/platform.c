// SPDX-License-Identifier: LGPL-2.1-or-later
/* The client-side platform handle: typed hcall wrappers over the ops. */
#include "platform_impl.h"

#include <stdint.h>
#include <unistd.h>

long ovmc_hcall(struct ovmc_platform *p, unsigned long opcode, const uint64_t *args,
		unsigned nargs, uint64_t *rets)
{
	return p->ops->hcall(p, opcode, args, nargs, rets);
}

void ovmc_hcall_pair(struct ovmc_platform *p, const struct ovmc_hcall_req req[2], long rcs[2])
{
	if (p->ops->hcall_pair) {
		p->ops->hcall_pair(p, req, rcs);
		return;
	}
	rcs[0] = ovmc_hcall(p, req[0].opcode, req[0].args, req[0].nargs, NULL);
	rcs[1] = rcs[0] == OVMC_H_SUCCESS
			 ? ovmc_hcall(p, req[1].opcode, req[1].args, req[1].nargs, NULL)
			 : rcs[0];
}

long ovmc_h_reg_crq(struct ovmc_platform *p, uint64_t unit, uint64_t ioba, uint64_t len)
{
	const uint64_t a[] = {unit, ioba, len};

	return ovmc_hcall(p, OVMC_H_REG_CRQ, a, 3, NULL);
}

long ovmc_h_free_crq(struct ovmc_platform *p, uint64_t unit)
{
	return ovmc_hcall(p, OVMC_H_FREE_CRQ, &unit, 1, NULL);
}

long ovmc_h_send_crq(struct ovmc_platform *p, uint64_t unit, uint64_t hi, uint64_t lo)
{
	const uint64_t a[] = {unit, hi, lo};

	return ovmc_hcall(p, OVMC_H_SEND_CRQ, a, 3, NULL);
}

long ovmc_h_copy_rdma(struct ovmc_platform *p, uint64_t len, uint64_t src_liobn,
		      uint64_t src_ioba, uint64_t dst_liobn, uint64_t dst_ioba)
{
	const uint64_t a[] = {len, src_liobn, src_ioba, dst_liobn, dst_ioba};

	return ovmc_hcall(p, OVMC_H_COPY_RDMA, a, 5, NULL);
}

long ovmc_h_vio_signal(struct ovmc_platform *p, uint64_t unit, uint64_t mode)
{
	const uint64_t a[] = {unit, mode};

	return ovmc_hcall(p, OVMC_H_VIO_SIGNAL, a, 2, NULL);
}

long ovmc_h_enable_crq(struct ovmc_platform *p, uint64_t unit)
{
	return ovmc_hcall(p, OVMC_H_ENABLE_CRQ, &unit, 1, NULL);
}

long ovmc_h_request_vmc(struct ovmc_platform *p, uint32_t *drc_index)
{
	uint64_t r[OVMC_HCALL_RETS] = {0};
	long rc = ovmc_hcall(p, OVMC_H_REQUEST_VMC, NULL, 0, r);

	*drc_index = (uint32_t)r[0];
	return rc;
}

int ovmc_platform_vmc_node(struct ovmc_platform *p, struct ovmc_vmc_node *out)
{
	return p->ops->vmc_node(p, out);
}

void *ovmc_platform_memory(struct ovmc_platform *p, size_t *size)
{
	if (size)
		*size = p->mem_size;
	return p->mem;
}

int ovmc_platform_irq_fd(struct ovmc_platform *p)
{
	return p->irq_fd;
}

int ovmc_platform_irq_ack(struct ovmc_platform *p)
{
	uint64_t v;
	ssize_t n;

	if (p->irq_polled || (p->irq_latch_used && !p->irq_latched))
		return 0;
	/* An eventfd without EFD_SEMAPHORE: one read takes the whole count. */
	n = read(p->irq_fd, &v, sizeof(v));
	/* After the read: a raise that still saw the latch set wrote its entry
	 * before this point, so the caller's scan that follows finds it. */
	__atomic_store_n(&p->irq_latched, false, __ATOMIC_SEQ_CST);
	return n == (ssize_t)sizeof(v);
}

void ovmc_platform_irq_fired(struct ovmc_platform *p)
{
	if (p->irq_latch_used)
		__atomic_store_n(&p->irq_latched, true, __ATOMIC_SEQ_CST);
}

int ovmc_platform_alive(struct ovmc_platform *p)
{
	return p->ops->alive ? p->ops->alive(p) : 1;
}

void ovmc_platform_destroy(struct ovmc_platform *p)
{
	if (p)
		p->ops->destroy(p);
}

const char *ovmc_hcall_rc_name(long rc)
{
	switch (rc) {
	case OVMC_H_SUCCESS: return "H_SUCCESS";
	case OVMC_H_BUSY: return "H_BUSY";
	case OVMC_H_CLOSED: return "H_CLOSED";
	case OVMC_H_NOT_AVAILABLE: return "H_NOT_AVAILABLE";
	case OVMC_H_CONSTRAINED: return "H_CONSTRAINED";
	case OVMC_H_PARTIAL: return "H_PARTIAL";
	case OVMC_H_IN_PROGRESS: return "H_IN_PROGRESS";
	case OVMC_H_HARDWARE: return "H_HARDWARE";
	case OVMC_H_FUNCTION: return "H_FUNCTION";
	case OVMC_H_PRIVILEGE: return "H_PRIVILEGE";
	case OVMC_H_PARAMETER: return "H_PARAMETER";
	case OVMC_H_NOT_FOUND: return "H_NOT_FOUND";
	case OVMC_H_NO_MEM: return "H_NO_MEM";
	case OVMC_H_AUTHORITY: return "H_AUTHORITY";
	case OVMC_H_PERMISSION: return "H_PERMISSION";
	case OVMC_H_DROPPED: return "H_DROPPED";
	case OVMC_H_SOURCE_PARM: return "H_SOURCE_PARM";
	case OVMC_H_DEST_PARM: return "H_DEST_PARM";
	case OVMC_H_REMOTE_PARM: return "H_REMOTE_PARM";
	case OVMC_H_RESOURCE: return "H_RESOURCE";
	}
	if (OVMC_H_IS_LONG_BUSY(rc))
		return "H_LONG_BUSY";
	return "H_?";
}

const char *ovmc_hcall_name(unsigned long opcode)
{
	switch (opcode) {
	case OVMC_H_REG_CRQ: return "H_REG_CRQ";
	case OVMC_H_FREE_CRQ: return "H_FREE_CRQ";
	case OVMC_H_VIO_SIGNAL: return "H_VIO_SIGNAL";
	case OVMC_H_SEND_CRQ: return "H_SEND_CRQ";
	case OVMC_H_COPY_RDMA: return "H_COPY_RDMA";
	case OVMC_H_ENABLE_CRQ: return "H_ENABLE_CRQ";
	case OVMC_H_REQUEST_VMC: return "H_REQUEST_VMC";
	}
	return "H_?";
}
