// SPDX-License-Identifier: LGPL-2.1-or-later
/* In-process platform: the partition's hcalls are direct calls into the machine. */
#include "platform_impl.h"

#include <openvmc/machine.h>

#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

struct inproc {
	struct ovmc_platform base;
	struct ovmc_machine *m;
	struct ovmc_part *part;
};

static long inproc_hcall(struct ovmc_platform *p, unsigned long opcode, const uint64_t *args,
			 unsigned nargs, uint64_t *rets)
{
	return ovmc_part_hcall(((struct inproc *)p)->part, opcode, args, nargs, rets);
}

static int inproc_vmc_node(struct ovmc_platform *p, struct ovmc_vmc_node *out)
{
	return ovmc_part_vmc_node(((struct inproc *)p)->part, out);
}

static void inproc_destroy(struct ovmc_platform *p)
{
	struct inproc *ip = (struct inproc *)p;

	ovmc_machine_remove_partition(ip->m, ip->part, false);
	munmap(p->mem, p->mem_size);
	close(p->irq_fd);
	free(ip);
}

static const struct ovmc_platform_ops inproc_ops = {
	.hcall = inproc_hcall,
	.vmc_node = inproc_vmc_node,
	.destroy = inproc_destroy,
};

/* While the eventfd is readable, a further entry needs no write: the
 * handler woken by the first one scans the whole queue after its ack. */
static void inproc_raise(void *arg)
{
	struct ovmc_platform *p = arg;
	uint64_t one = 1;
	ssize_t n;

	if (__atomic_exchange_n(&p->irq_latched, true, __ATOMIC_SEQ_CST))
		return;
	n = write(p->irq_fd, &one, sizeof(one));
	(void)n; /* an eventfd at its maximum is still readable: nothing is lost */
}

int ovmc_inproc_new(struct ovmc_machine *m, const struct ovmc_inproc_config *cfg,
		    struct ovmc_platform **out)
{
	struct inproc *ip = calloc(1, sizeof(*ip));
	struct ovmc_part_config pc = {0};
	size_t size = (cfg->mem_size + OVMC_PAGE_SIZE - 1) & ~(size_t)(OVMC_PAGE_SIZE - 1);
	int rc;

	if (!ip)
		return -ENOMEM;
	ip->base.ops = &inproc_ops;
	ip->m = m;
	ip->base.irq_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (ip->base.irq_fd < 0) {
		rc = -errno;
		free(ip);
		return rc;
	}
	ip->base.mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ip->base.mem == MAP_FAILED) {
		rc = -errno;
		close(ip->base.irq_fd);
		free(ip);
		return rc;
	}
	ip->base.mem_size = size;
	pc.mem = ip->base.mem;
	pc.mem_size = size;
	ip->base.irq_polled = cfg->irq_polled;
	ip->base.irq_latch_used = !cfg->irq_polled;
	pc.raise_irq = cfg->irq_polled ? NULL : inproc_raise;
	pc.irq_arg = &ip->base;
	pc.vmc_present = cfg->vmc_present;
	pc.request_vmc_rc = cfg->request_vmc_rc;
	pc.drc_index = cfg->drc_index;
	pc.hv_window_size = cfg->hv_window_size;
	pc.hv_queue_entries = cfg->hv_queue_entries;
	rc = ovmc_machine_add_partition(m, &pc, &ip->part);
	if (rc) {
		munmap(ip->base.mem, size);
		close(ip->base.irq_fd);
		free(ip);
		return rc;
	}
	*out = &ip->base;
	return 0;
}

struct ovmc_part *ovmc_inproc_part(struct ovmc_platform *p)
{
	return ((struct inproc *)p)->part;
}
