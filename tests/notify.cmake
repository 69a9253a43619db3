# SPDX-License-Identifier: GPL-2.0-or-later
# Readiness notification of the three programs (systemd's NOTIFY_SOCKET).
ovmc_test(notify SOURCES notify_test.c fixture.c)
target_compile_definitions(notify_test PRIVATE
  OPENVMC_BIN="$<TARGET_FILE:openvmc_run>"
  HVD_BIN="$<TARGET_FILE:openvmc_hvd>"
  OPENVMCD_BIN="$<TARGET_FILE:openvmcd>"
  DEVCLIENT_BIN="$<TARGET_FILE:devclient>")
add_dependencies(notify_test openvmc_run openvmc_hvd openvmcd devclient)
foreach(t openvmcd_notifies_ready_with_its_device_mounted openvmc_notifies_ready_with_its_device_mounted)
  set_tests_properties(notify.${t} PROPERTIES LABELS "notify;fuse")
endforeach()
