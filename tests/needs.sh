# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
# The shell side of harness.c's check of OVMC_TEST_NEEDS (words "root" and
# "fuse", set by tests/CMakeLists.txt from a test's labels), for
# tests/harness.sh, scripts/soak.sh and (run as a program) other commands. ovmc_skip WHY prints one line and
# exits 77 (the runner's skip code), or fails with CI=true, where every
# test must run.

ovmc_skip() {
	if [ "${CI:-}" = true ]; then
		echo "FAIL: $* (CI=true runs every test)" >&2
		exit 1
	fi
	echo "SKIP: $*" >&2
	exit 77
}

ovmc_check_needs() {
	local needs=" ${OVMC_TEST_NEEDS:-} " fd
	case $needs in
	*" root "*) [ "$(id -u)" -eq 0 ] || ovmc_skip "needs root (running as uid $(id -u))" ;;
	esac
	case $needs in
	*" fuse "*)
		[ -e /dev/fuse ] || ovmc_skip "needs /dev/fuse (No such file or directory)"
		[ "$(stat -L -c '%F %t:%T' /dev/fuse)" = "character special file a:e5" ] ||
			ovmc_skip "needs /dev/fuse (it is not the FUSE device 10:229 here)"
		{ exec {fd}<>/dev/fuse; } 2>/dev/null || ovmc_skip "needs /dev/fuse (cannot open it)"
		exec {fd}>&-
		;;
	esac
}

# As a program, `bash tests/needs.sh COMMAND...` checks, then runs COMMAND:
# for tests whose command is not a harness (tests/bench.cmake).
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	ovmc_check_needs
	exec "$@"
fi
