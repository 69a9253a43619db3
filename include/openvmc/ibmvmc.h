/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The /dev/ibmvmc user ABI, identical to the Linux ibmvmc driver's (which
 * ships no uapi header): include this instead of copying the definitions.
 * Values and semantics: docs/device-abi.md.
 */
#ifndef OPENVMC_IBMVMC_H
#define OPENVMC_IBMVMC_H

#include <stdint.h>
#include <sys/ioctl.h>

#define HMC_ID_LEN 32

struct ibmvmc_query_struct {
	int have_vmc;
	int state;
	int vmc_drc_index;
};

#define VMC_BASE 0xCC
/* The size field says sizeof(pointer), yet 32 bytes are read (as in Linux). */
#define VMC_IOCTL_SETHMCID _IOW(VMC_BASE, 0x00, unsigned char *)
#define VMC_IOCTL_QUERY _IOR(VMC_BASE, 0x01, struct ibmvmc_query_struct)
#define VMC_IOCTL_REQUESTVMC _IOR(VMC_BASE, 0x02, uint32_t)

#endif
