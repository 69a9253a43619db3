# SPDX-License-Identifier: GPL-2.0-or-later
# The daemons' log: never blocking on its sink, repeated lines rate-limited.
ovmc_test(log SOURCES log_test.c LIBS ovmc_daemon)
