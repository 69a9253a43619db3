# SPDX-License-Identifier: GPL-2.0-or-later
ovmc_test(router SOURCES router_test.c sim.c)
