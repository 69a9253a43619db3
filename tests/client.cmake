# SPDX-License-Identifier: GPL-2.0-or-later
# The client library in process against `openvmc --no-device`, and the
# session socket's defences. Needs neither root nor /dev/fuse. devclient
# (named by the fixture) is defined in device.cmake.
ovmc_test(client SOURCES client_test.c fixture.c)
target_include_directories(client_test PRIVATE ${PROJECT_SOURCE_DIR}/src/client)
target_compile_definitions(client_test PRIVATE
  OPENVMC_BIN="$<TARGET_FILE:openvmc_run>"
  DEVCLIENT_BIN="$<TARGET_FILE:devclient>")
add_dependencies(client_test openvmc_run devclient)
