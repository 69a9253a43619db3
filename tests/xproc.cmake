# SPDX-License-Identifier: GPL-2.0-or-later
find_package(Threads REQUIRED)
ovmc_test(xproc SOURCES xproc_test.c LIBS Threads::Threads)
# A peer of another uid needs CAP_SETUID.
set_tests_properties(xproc.client_of_other_uid_is_refused PROPERTIES LABELS "xproc;root")
