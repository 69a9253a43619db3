# SPDX-License-Identifier: GPL-2.0-or-later
# The two-daemon setup end to end: the real openvmc-hvd (hypervisor) and
# openvmcd (driver serving its FUSE file) attached over the cross-process
# platform, exercised by devclient and both control sockets. Needs root
# (FUSE, dropping to another uid) and /dev/fuse. devclient is defined in
# device.cmake.
ovmc_test(daemons SOURCES daemons_test.c abi_checks.c fixture.c LABELS fuse)
target_compile_definitions(daemons_test PRIVATE
  HVD_BIN="$<TARGET_FILE:openvmc_hvd>"
  OPENVMCD_BIN="$<TARGET_FILE:openvmcd>"
  DEVCLIENT_BIN="$<TARGET_FILE:devclient>")
add_dependencies(daemons_test openvmc_hvd openvmcd devclient)
