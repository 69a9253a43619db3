/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Device-ABI checks that both setups run: openvmc alone (device_test.c)
 * and openvmcd with openvmc-hvd (daemons_test.c). `d` serves the device
 * and answers `status`; `hv` answers the hypervisor's commands (sessions,
 * send): the same daemon for openvmc. Each FAILs the test on a mismatch.
 */
#ifndef OVMC_TEST_ABI_CHECKS_H
#define OVMC_TEST_ABI_CHECKS_H

#include "fixture.h"

/* devclient "recv" once it is parked in a blocking read on HMC index 0. */
struct client *blocked_reader(const struct daemon *d, const struct daemon *hv, const char *id);

void abi_echo_sizes(const struct daemon *d);
void abi_open_then_write(const struct daemon *d);
void abi_nonblock_eagain(const struct daemon *d);
void abi_poll_pollin(const struct daemon *d);
void abi_blocking_read_gets_hv_message(const struct daemon *d, const struct daemon *hv);
/* Needs both sides started with --hmcs 2. */
void abi_two_sessions(const struct daemon *d, const struct daemon *hv);
void abi_threads(const struct daemon *d);
void abi_efault(const struct daemon *d);
void abi_eintr(const struct daemon *d);
void abi_exhaust_ebusy(const struct daemon *d);
void abi_mode_0600(const struct daemon *d);

#endif
