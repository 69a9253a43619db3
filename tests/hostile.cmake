# SPDX-License-Identifier: GPL-2.0-or-later
# Hostile peers against both cores, every case in every state
# (docs/robustness.md).
ovmc_test(hostile SOURCES hostile_test.c sim.c)
