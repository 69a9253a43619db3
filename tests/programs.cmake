# SPDX-License-Identifier: GPL-2.0-or-later
# The command-line conventions of the five programs (docs/options.md):
# short options, --version, usage errors, runtime directories, SEE ALSO
# (programs_test.sh). Some 800 refused command lines: a long timeout for
# the sanitized build on a busy machine.
ovmc_sh_test(programs TIMEOUT 300)
