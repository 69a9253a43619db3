/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tshark with the source tree's dissector (dissector/openvmc.lua), for the
 * tests that check it.
 */
#ifndef OVMC_TEST_TSHARK_H
#define OVMC_TEST_TSHARK_H

/*
 * Run `tshark -X lua_script:SOURCE/dissector/openvmc.lua -r file args...`
 * and return its standard output (the caller frees it). FAILs the test
 * when tshark fails, and when an installed openvmc dissector shadows the
 * source's (the installed copy loads first and the source's stands
 * aside). While scripts/packages.sh has the packages installed, it waits
 * for their removal (a shared lock on the lock file it holds).
 */
char *ovmc_tshark(const char *source_dir, const char *file, const char *const *args);

#endif
