# SPDX-License-Identifier: GPL-2.0-or-later
# The daemons' event loop: a reader's messages once each and in order, and
# a busy reader never keeping the other descriptors waiting; with io_uring
# and without.
ovmc_test(loop SOURCES loop_test.c LIBS ovmc_daemon)
