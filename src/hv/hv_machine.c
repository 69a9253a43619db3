// SPDX-License-Identifier: LGPL-2.1-or-later
/* Binding of a hypervisor core to a VMC of the emulated machine. */
#include "hv_internal.h"

#include <openvmc/machine.h>

static long vmc_send(void *user, const uint8_t entry[OVMC_CRQ_ENTRY_SIZE])
{
	return ovmc_vmc_hv_send(user, entry);
}

static unsigned vmc_outstanding(void *user)
{
	return ovmc_vmc_hv_outstanding(user);
}

static void vmc_reset(void *user, uint64_t now)
{
	/* Partner failed: the partition resets as after a hypervisor crash. */
	ovmc_hv_restart(ovmc_vmc_user(user), OVMC_EVENT_PARTNER_FAILED, now);
}

static const struct ovmc_hv_ops vmc_ops = {
	.send_crq = vmc_send,
	.partner_outstanding = vmc_outstanding,
	.reset = vmc_reset,
};

static void vmc_unbind(struct ovmc_vmc *vmc)
{
	ovmc_vmc_hv_free(vmc, OVMC_EVENT_PARTNER_DEREGISTERED);
	ovmc_vmc_set_user(vmc, NULL);
}

int ovmc_hv_attach(struct ovmc_vmc *vmc, const struct ovmc_hv_config *cfg, ovmc_log_fn log,
		   void *log_user, uint64_t now, struct ovmc_hv **out)
{
	size_t size;
	void *mem = ovmc_vmc_hv_memory(vmc, &size);
	struct ovmc_hv *hv;
	int rc = ovmc_hv_new(cfg, &vmc_ops, vmc, mem, size, &hv);

	if (rc)
		return rc;
	if (log)
		ovmc_hv_set_log(hv, log, log_user, OVMC_LOG_INFO);
	ovmc_hv_bind(hv, vmc, vmc_unbind);
	ovmc_hv_set_id(hv, ovmc_part_id(ovmc_vmc_part(vmc)));
	ovmc_vmc_set_user(vmc, hv);
	ovmc_vmc_hv_register(vmc);
	ovmc_hv_start(hv, now);
	*out = hv;
	return 0;
}

unsigned ovmc_hv_poll(struct ovmc_hv *hv, uint64_t now)
{
	struct ovmc_vmc *vmc = ovmc_hv_binding(hv);
	uint8_t e[OVMC_CRQ_ENTRY_SIZE];
	unsigned n = 0;

	while (vmc && ovmc_vmc_hv_receive(vmc, e)) {
		ovmc_hv_handle_entry(hv, e, now);
		n++;
	}
	return n;
}

void ovmc_hv_restart(struct ovmc_hv *hv, uint8_t event, uint64_t now)
{
	struct ovmc_vmc *vmc = ovmc_hv_binding(hv);

	if (!vmc)
		return;
	ovmc_hv_stop(hv);
	ovmc_vmc_hv_free(vmc, event);
	ovmc_vmc_hv_register(vmc);
	ovmc_hv_start(hv, now);
}
