# SPDX-License-Identifier: GPL-2.0-or-later
# The live trace of the control socket and `vmcctl trace`, against the real
# openvmc, openvmc-hvd and openvmcd. Needs root and /dev/fuse. devclient is
# defined in device.cmake.
ovmc_test(trace SOURCES trace_test.c fixture.c LABELS fuse)
target_compile_definitions(trace_test PRIVATE
  OPENVMC_BIN="$<TARGET_FILE:openvmc_run>"
  HVD_BIN="$<TARGET_FILE:openvmc_hvd>"
  OPENVMCD_BIN="$<TARGET_FILE:openvmcd>"
  DEVCLIENT_BIN="$<TARGET_FILE:devclient>"
  VMCCTL_BIN="$<TARGET_FILE:vmcctl>")
add_dependencies(trace_test openvmc_run openvmc_hvd openvmcd devclient vmcctl)
