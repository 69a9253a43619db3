/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Where the programs meet by default: the hypervisor daemon's partitions
 * socket and each daemon's control socket, under the runtime directories
 * of the systemd units (packaging/systemd). vmcctl looks for the control
 * sockets at the same paths.
 */
#ifndef OVMC_DEFAULTS_H
#define OVMC_DEFAULTS_H

#define OVMC_DEFAULT_HV_SOCKET "/run/openvmc/hv.sock"
#define OVMC_DEFAULT_CTL_OPENVMC "/run/openvmc/openvmc.ctl"
#define OVMC_DEFAULT_CTL_HVD "/run/openvmc/hv.ctl"
#define OVMC_DEFAULT_CTL_OPENVMCD "/run/openvmcd/drv.ctl"

#endif
