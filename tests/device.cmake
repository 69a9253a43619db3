# SPDX-License-Identifier: GPL-2.0-or-later
# The device front-end end to end: the openvmc program serving its FUSE
# file, exercised by devclient (device ABI only) and the control socket.
# Needs root and /dev/fuse.
find_package(Threads REQUIRED)
add_executable(devclient devclient.c)
target_include_directories(devclient PRIVATE ${PROJECT_SOURCE_DIR}/include)
target_link_libraries(devclient PRIVATE Threads::Threads)

ovmc_test(device SOURCES device_test.c abi_checks.c fixture.c LIBS Threads::Threads LABELS fuse)
target_compile_definitions(device_test PRIVATE
  OVMC_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
  OPENVMC_BIN="$<TARGET_FILE:openvmc_run>"
  DEVCLIENT_BIN="$<TARGET_FILE:devclient>")
if(URING_FOUND)
  target_compile_definitions(device_test PRIVATE OVMC_HAVE_LIBURING)
endif()
add_dependencies(device_test openvmc_run devclient)
# The same tests with the loop's epoll wait, as where io_uring is refused.
file(STRINGS device_test.c device_tests REGEX "^TEST\\(([A-Za-z0-9_]+)\\)")
foreach(line ${device_tests})
  string(REGEX REPLACE "^TEST\\(([A-Za-z0-9_]+)\\).*" "\\1" name "${line}")
  add_test(NAME device-epoll.${name} COMMAND device_test ${name})
  set_tests_properties(device-epoll.${name} PROPERTIES TIMEOUT 120
    LABELS "device-epoll;fuse" SKIP_RETURN_CODE 77 ENVIRONMENT "OPENVMC_IO_URING=0")
endforeach()
# /dev/ibmvmc is one path for the whole machine.
set_tests_properties(device.device_at_dev_ibmvmc device-epoll.device_at_dev_ibmvmc
  PROPERTIES RESOURCE_LOCK dev_ibmvmc)
