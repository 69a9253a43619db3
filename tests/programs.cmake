# SPDX-License-Identifier: GPL-2.0-or-later
# The command-line conventions of the five programs (docs/options.md):
# short options, --version, usage errors (programs_test.sh).
ovmc_sh_test(programs)
