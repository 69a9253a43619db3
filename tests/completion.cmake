# SPDX-License-Identifier: GPL-2.0-or-later
# bash completion of the four programs, asked in bash (completion_test.sh).
ovmc_sh_test(completion)
