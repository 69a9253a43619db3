# SPDX-License-Identifier: GPL-2.0-or-later
# What vmcctl prints: readable on a terminal, raw into a pipe, each format
# on request, JSON (output_test.sh, the real openvmc on its session socket).
ovmc_sh_test(output)
