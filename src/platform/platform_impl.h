/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What every implementation of struct ovmc_platform provides. */
#ifndef OVMC_PLATFORM_IMPL_H
#define OVMC_PLATFORM_IMPL_H

#include <openvmc/platform.h>

#include <stdbool.h>

struct ovmc_platform_ops {
	long (*hcall)(struct ovmc_platform *p, unsigned long opcode, const uint64_t *args,
		      unsigned nargs, uint64_t *rets);
	int (*vmc_node)(struct ovmc_platform *p, struct ovmc_vmc_node *out);
	int (*alive)(struct ovmc_platform *p);
	/* Optional: ovmc_hcall_pair() in one step; without it, two hcalls. */
	void (*hcall_pair)(struct ovmc_platform *p, const struct ovmc_hcall_req req[2],
			   long rcs[2]);
	void (*destroy)(struct ovmc_platform *p);
};

struct ovmc_platform {
	const struct ovmc_platform_ops *ops;
	void *mem;
	size_t mem_size;
	int irq_fd; /* eventfd */
	bool irq_polled; /* never written: nothing to acknowledge */
	/* In-process raiser (one thread drives machine and driver): the latch
	 * says whether the eventfd is readable, so most raises and acks need
	 * no syscall. */
	bool irq_latch_used;
	bool irq_latched;
};

#endif
