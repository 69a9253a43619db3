# SPDX-License-Identifier: GPL-2.0-or-later
# vmcctl runs as a separate program; the test drives the built binary.
# The live_* tests need OVMC_TEST_DEVICE (a live ibmvmc device with the echo
# backend) and pass as "skipped" without it.
find_package(Threads REQUIRED)
ovmc_test(vmcctl SOURCES vmcctl_test.c LIBS Threads::Threads)
target_compile_definitions(vmcctl_test PRIVATE VMCCTL_BIN="$<TARGET_FILE:vmcctl>")
add_dependencies(vmcctl_test vmcctl)
