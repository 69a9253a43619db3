# SPDX-License-Identifier: GPL-2.0-or-later
# The short soak (scripts/soak.sh --short): sequence-numbered messages on two
# sessions, lock-step and pipelined, through openvmc and through the daemon
# pair, none lost, duplicated, reordered or corrupted. Needs root and
# /dev/fuse. The long run is `scripts/soak.sh --long` (docs/robustness.md).
find_package(Threads REQUIRED)
add_executable(soakclient soakclient.c)
target_include_directories(soakclient PRIVATE ${PROJECT_SOURCE_DIR}/include)
target_link_libraries(soakclient PRIVATE Threads::Threads)
add_test(NAME soak.short COMMAND ${PROJECT_SOURCE_DIR}/scripts/soak.sh --short
         --build ${CMAKE_BINARY_DIR})
set_tests_properties(soak.short PROPERTIES TIMEOUT 600 LABELS "soak;fuse"
                     PASS_REGULAR_EXPRESSION "soak: passed")
add_dependencies(soakclient openvmc_run openvmcd openvmc_hvd vmcctl)
