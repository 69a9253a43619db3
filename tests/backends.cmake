# SPDX-License-Identifier: GPL-2.0-or-later
# The exec and socket backends and their frame codec.
find_package(Threads REQUIRED)
ovmc_test(backends SOURCES backends_test.c sim.c LIBS Threads::Threads)
target_compile_definitions(backends_test PRIVATE
  OVMC_TEST_DATA="${CMAKE_CURRENT_SOURCE_DIR}/data")
