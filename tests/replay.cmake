# SPDX-License-Identifier: GPL-2.0-or-later
ovmc_test(replay SOURCES replay_test.c sim.c)
