# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
# The shell counterpart of harness.c, for tests that are command lines
# (installation, packages, units, completion). A test script defines
# functions test_NAME (the name states behaviour and condition) and sources
# this file last. `script NAME` runs one test in a subshell; with no
# argument every test runs, and the last line is "N passed, N failed".
# CMake registers each test_NAME as the CTest test MODULE.NAME
# (ovmc_sh_test in tests/CMakeLists.txt). A test skips with `skip WHY`
# (exit 77) only where the machine lacks what it needs; with CI=true that
# fails instead. Tests labelled fuse or root are checked before they run
# (tests/needs.sh).

# shellcheck source=tests/needs.sh
. "$(dirname "${BASH_SOURCE[0]}")/needs.sh"

# Leave the current test with a failure.
fail() {
	echo "FAIL: $*" >&2
	exit 1
}

skip() {
	ovmc_skip "$@"
}

# Run a cleanup when the current test ends, passed or failed (LIFO).
ovmc_deferred=()
defer() {
	ovmc_deferred=("$*" "${ovmc_deferred[@]}")
}
ovmc_run_deferred() {
	local c
	for c in "${ovmc_deferred[@]}"; do eval "$c" || true; done
}

# scratch VAR: a private directory in VAR, removed when the test ends.
# (Not $(scratch): the clean-up would be deferred in the subshell.)
# The test holds it open, so that scripts/test.sh's sweep of /tmp/ovmc-*
# (another run's, maybe) leaves it.
scratch() {
	local ovmc_dir ovmc_fd
	ovmc_dir=$(mktemp -d "/tmp/ovmc-${OVMC_SH_MODULE:-sh}.XXXXXX") || fail "mktemp"
	exec {ovmc_fd}<"$ovmc_dir"
	defer "exec $ovmc_fd<&-; rm -rf --one-file-system -- '$ovmc_dir'"
	printf -v "$1" '%s' "$ovmc_dir"
}

# check COMMAND...: fail with the command line when it fails.
check() {
	"$@" || fail "$* (exit $?)"
}

ovmc_sh_main() {
	local names=() n rc pass=0 failed=0
	ovmc_check_needs
	if [ $# -gt 0 ]; then
		names=("$@")
	else
		mapfile -t names < <(declare -F | awk '$3 ~ /^test_/ { sub(/^test_/, "", $3); print $3 }')
	fi
	for n in "${names[@]}"; do
		declare -F "test_$n" >/dev/null || { echo "no test $n" >&2; return 2; }
		(
			set -euo pipefail
			trap ovmc_run_deferred EXIT
			"test_$n"
		)
		rc=$?
		case $rc in
		0) pass=$((pass + 1)) ;;
		77) [ $# -eq 1 ] && return 77 ;;
		*) failed=$((failed + 1)); echo "test $n failed" >&2 ;;
		esac
	done
	echo "$pass passed, $failed failed"
	[ "$failed" -eq 0 ]
}
ovmc_sh_main "$@"
