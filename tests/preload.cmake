# SPDX-License-Identifier: GPL-2.0-or-later
# The channel without root or FUSE: openvmc and openvmcd serving only their
# session socket; devclient, preloadclient and a Python script run
# unchanged under vmc-run (the preload library). Needs neither root nor
# /dev/fuse (as root, the clients drop to another uid). devclient is
# defined in device.cmake.
find_package(Threads REQUIRED)
add_executable(preloadclient preloadclient.c)
target_include_directories(preloadclient PRIVATE ${PROJECT_SOURCE_DIR}/include)
target_link_libraries(preloadclient PRIVATE Threads::Threads)
add_executable(static_hello static_hello.c)
target_compile_options(static_hello PRIVATE -fno-sanitize=all)
target_link_options(static_hello PRIVATE -static -fno-sanitize=all)

ovmc_test(preload SOURCES preload_test.c abi_checks.c fixture.c)
target_compile_definitions(preload_test PRIVATE
  OPENVMC_BIN="$<TARGET_FILE:openvmc_run>"
  OPENVMCD_BIN="$<TARGET_FILE:openvmcd>"
  HVD_BIN="$<TARGET_FILE:openvmc_hvd>"
  VMC_RUN_BIN="$<TARGET_FILE:vmc_run>"
  DEVCLIENT_BIN="$<TARGET_FILE:devclient>"
  PRELOADCLIENT_BIN="$<TARGET_FILE:preloadclient>"
  STATIC_BIN="$<TARGET_FILE:static_hello>"
  OVMC_TEST_DATA="${CMAKE_CURRENT_SOURCE_DIR}/data")
# Clients as another uid: only root can start them.
set_tests_properties(preload.peer_outside_the_uid_and_group_refused_with_a_log_line
  preload.peer_in_the_group_as_a_supplementary_group_allowed PROPERTIES LABELS "preload;root")
add_dependencies(preload_test openvmc_run openvmcd openvmc_hvd vmc_run openvmc_preload
  devclient preloadclient static_hello)
