# SPDX-License-Identifier: GPL-2.0-or-later
# The one board openvmc's guest tests need, for a --without-default-devices
# QEMU: configs/devices/ppc64-softmmu/openvmc.mak in the QEMU tree.
# spapr.c links usb_bus_find, and QEMU aborts at start without the
# spapr-nvdimm parent type, so USB and NVDIMM cannot be left out. The VMC
# device's Kconfig says default y (depends on PSERIES), as upstream would
# have it, but --without-default-devices ignores every default: say it here.
CONFIG_PSERIES=y
CONFIG_SPAPR_VMC=y
CONFIG_USB=y
CONFIG_NVDIMM=y
