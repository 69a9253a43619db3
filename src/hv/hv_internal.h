/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Between the hypervisor core and its binding to the emulated machine. */
#ifndef OVMC_HV_INTERNAL_H
#define OVMC_HV_INTERNAL_H

#include <openvmc/hv.h>

/*
 * The machine VMC a core serves, set by ovmc_hv_attach(); NULL otherwise.
 * ovmc_hv_free() calls `unbind` on it last.
 */
void ovmc_hv_bind(struct ovmc_hv *hv, struct ovmc_vmc *vmc, void (*unbind)(struct ovmc_vmc *));
struct ovmc_vmc *ovmc_hv_binding(const struct ovmc_hv *hv);

#endif
