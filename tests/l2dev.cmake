# SPDX-License-Identifier: GPL-2.0-or-later
# Layer 2 through the device file: the openvmc program with each backend
# (router, exec, socket, replay), driven by routerclient and devclient
# (device ABI only) and the control socket. Needs root and /dev/fuse.
find_package(Threads REQUIRED)
add_executable(routerclient routerclient.c)
target_include_directories(routerclient PRIVATE ${PROJECT_SOURCE_DIR}/include)

ovmc_test(l2dev SOURCES l2dev_test.c fixture.c LIBS Threads::Threads LABELS fuse)
target_compile_definitions(l2dev_test PRIVATE
  OPENVMC_BIN="$<TARGET_FILE:openvmc_run>"
  DEVCLIENT_BIN="$<TARGET_FILE:devclient>"
  ROUTERCLIENT_BIN="$<TARGET_FILE:routerclient>"
  OVMC_TEST_DATA="${CMAKE_CURRENT_SOURCE_DIR}/data")
add_dependencies(l2dev_test openvmc_run devclient routerclient)
