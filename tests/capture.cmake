# SPDX-License-Identifier: GPL-2.0-or-later
ovmc_test(capture SOURCES capture_test.c sim.c tshark.c)
target_compile_definitions(capture_test PRIVATE OVMC_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
