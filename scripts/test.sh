#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The test command: install dependencies, build twice (plain, and with
# AddressSanitizer + UndefinedBehaviorSanitizer), run the whole suite in
# both, and end with one line "N passed, N failed".
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/deps.sh || exit 1
jobs=$(nproc)
total_pass=0 total_fail=0
run_suite() { # name, build dir, cmake args...
	local name=$1 dir=$2
	shift 2
	echo "=== $name build ==="
	cmake -S . -B "$dir" -DOVMC_WERROR=ON "$@" >/dev/null || return 1
	cmake --build "$dir" -j"$jobs" >/dev/null || { cmake --build "$dir" 2>&1 | tail -40; return 1; }
	echo "=== $name tests ==="
	(cd "$dir" && ctest --output-on-failure -j"$jobs" 2>&1) | tee "$dir/ctest.log"
	local pass fail
	pass=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .* Passed' "$dir/ctest.log")
	fail=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .*(\*\*\*|Failed|Not Run|Timeout)' "$dir/ctest.log")
	total_pass=$((total_pass + pass))
	total_fail=$((total_fail + fail))
}
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run_suite plain build || total_fail=$((total_fail + 1))
run_suite sanitized build-asan -DOVMC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug || total_fail=$((total_fail + 1))
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
