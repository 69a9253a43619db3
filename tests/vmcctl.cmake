# SPDX-License-Identifier: GPL-2.0-or-later
# vmcctl runs as a separate program; the test drives the built binary.
# Control-socket commands talk to a fake server; the live_* tests start the
# real openvmc (fixture.c, echo backend) and use its device file and
# control socket, so they need root and /dev/fuse (label fuse).
find_package(Threads REQUIRED)
ovmc_test(vmcctl SOURCES vmcctl_test.c fixture.c LIBS Threads::Threads)
target_compile_definitions(vmcctl_test PRIVATE
  VMCCTL_BIN="$<TARGET_FILE:vmcctl>"
  OPENVMC_BIN="$<TARGET_FILE:openvmc_run>"
  DEVCLIENT_BIN="$<TARGET_FILE:devclient>")
add_dependencies(vmcctl_test vmcctl openvmc_run devclient)
file(STRINGS vmcctl_test.c live REGEX "^TEST\\(live_[A-Za-z0-9_]+\\)")
foreach(line ${live})
  string(REGEX REPLACE "^TEST\\(([A-Za-z0-9_]+)\\).*" "\\1" name "${line}")
  set_tests_properties(vmcctl.${name} PROPERTIES LABELS "vmcctl;fuse")
endforeach()
