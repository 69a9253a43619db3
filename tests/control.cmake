# SPDX-License-Identifier: GPL-2.0-or-later
# The default control sockets and vmcctl's search (control_test.sh).
ovmc_sh_test(control)
