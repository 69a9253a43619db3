# SPDX-License-Identifier: GPL-2.0-or-later
# Faults of the real daemons: a hypervisor that stops answering, silent or
# hostile control and partition clients, and the kill/stop loops with
# descriptors, mappings, mounts and memory counted (fault loops run a
# bounded number of cycles here; scripts/soak.sh runs the long ones).
# Needs root and /dev/fuse. devclient is defined in device.cmake.
ovmc_test(faults SOURCES faults_test.c fixture.c LABELS fuse TIMEOUT 300)
add_executable(floodpart floodpart.c)
target_link_libraries(floodpart PRIVATE openvmc_static)
target_compile_definitions(faults_test PRIVATE
  FLOODPART_BIN="$<TARGET_FILE:floodpart>"
  HVD_BIN="$<TARGET_FILE:openvmc_hvd>"
  OPENVMCD_BIN="$<TARGET_FILE:openvmcd>"
  OPENVMC_BIN="$<TARGET_FILE:openvmc_run>"
  DEVCLIENT_BIN="$<TARGET_FILE:devclient>")
add_dependencies(faults_test openvmc_hvd openvmcd openvmc_run devclient floodpart)
