# SPDX-License-Identifier: GPL-2.0-or-later
# The guest link (docs/guest-link.md) without QEMU: the real openvmc-hvd
# with --guest-socket and fake spapr-vmc devices in the test process, the
# driver core playing the guest's kernel driver. Only the test of a peer of
# another uid needs root.
ovmc_test(guestlink SOURCES guestlink_test.c guestdev.c fixture.c)
target_compile_definitions(guestlink_test PRIVATE
  HVD_BIN="$<TARGET_FILE:openvmc_hvd>"
  VMCCTL_BIN="$<TARGET_FILE:vmcctl>"
  DEVCLIENT_BIN="$<TARGET_FILE:devclient>"
  SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(guestlink_test openvmc_hvd vmcctl devclient)
# Connecting as another uid takes root (CAP_SETUID).
set_tests_properties(guestlink.device_of_other_uid_is_refused PROPERTIES LABELS "guestlink;root")
