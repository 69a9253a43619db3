# SPDX-License-Identifier: GPL-2.0-or-later
find_package(Threads REQUIRED)
ovmc_test(xproc SOURCES xproc_test.c LIBS Threads::Threads)
