# SPDX-License-Identifier: GPL-2.0-or-later
# The default control sockets and vmcctl's search (control_test.sh); root
# for the namespaces.
ovmc_sh_test(control LABELS root)
