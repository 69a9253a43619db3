#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The test command: install dependencies, build twice (plain, and with
# AddressSanitizer + UndefinedBehaviorSanitizer), run the whole suite in
# both (the plain build's also without FUSE and without root:
# scripts/nofuse.sh), run every fuzz target for a short time (a clang
# build), build and try the Debian packages (scripts/packages.sh), and end
# with one line "N passed, N failed" (after a line "N skipped" if tests
# could not run here).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
scripts/deps.sh || exit 1
jobs=$(nproc)
total_pass=0 total_fail=0 total_skip=0

# What a test left behind, because it has a bug or because its process died
# before its cleanups ran: processes running a program of the build dir
# (ours: nothing else runs from there), FUSE mounts under /tmp/ovmc-* whose
# daemon is gone (stat fails at once, ENOTCONN), and /tmp/ovmc-* entries
# nothing uses. A mount, file or socket still in use is another run's and
# stays; so does an idle entry changed in the last minute, which may be a
# concurrent run's test between its mkdtemp and its first socket or mount.
sweep() { # build dir, when
	local dir when=$2 p exe mp e
	local -a cleaned=()
	dir=$(realpath -m "$1")
	for p in /proc/[0-9]*; do
		exe=$(readlink "$p/exe" 2>/dev/null) || continue
		case $exe in
		"$dir"/*) kill -KILL "${p#/proc/}" 2>/dev/null && cleaned+=("process ${p#/proc/} $exe") ;;
		esac
	done
	# Time for the killed daemons' unmounting watchdogs (openvmc-umount).
	[ ${#cleaned[@]} -eq 0 ] || sleep 1
	while read -r mp; do
		mp=$(printf '%b' "$mp") # mountinfo escapes blanks as octal
		if ! timeout 2 stat "$mp" >/dev/null 2>&1; then
			umount -l "$mp" && cleaned+=("mount $mp")
		fi
	done < <(awk '{ for (i = 7; $i != "-"; i++); if ($(i + 1) ~ /^fuse/ && $5 ~ /^\/tmp\/ovmc-/) print $5 }' /proc/self/mountinfo)
	local used
	used=$({
		awk '{ print $5 }' /proc/self/mountinfo
		awk 'NR > 1 { print $8 }' /proc/net/unix
		for p in /proc/[0-9]*; do readlink "$p/cwd" "$p"/fd/* 2>/dev/null; done
	} | grep '^/tmp/ovmc-' | sort -u)
	for e in /tmp/ovmc-*; do
		[ -e "$e" ] || [ -L "$e" ] || continue
		[ -n "$(find "$e" -maxdepth 0 -mmin +1 2>/dev/null)" ] || continue
		if ! grep -qxF -e "$e" <<<"$used" && ! grep -qF -e "$e/" <<<"$used"; then
			rm -rf --one-file-system -- "$e" && cleaned+=("$e")
		fi
	done
	if [ ${#cleaned[@]} -gt 0 ]; then
		echo "warning: $when: cleaned up what tests left behind (a test bug):" \
			"${cleaned[*]}"
	fi
}

run_suite() { # name, build dir, cmake args...
	local name=$1 dir=$2
	shift 2
	echo "=== $name build ==="
	cmake -S . -B "$dir" -DOVMC_WERROR=ON "$@" >/dev/null || return 1
	cmake --build "$dir" -j"$jobs" >/dev/null || { cmake --build "$dir" 2>&1 | tail -40; return 1; }
	echo "=== $name tests ==="
	sweep "$dir" "before the $name tests"
	(cd "$dir" && ctest --output-on-failure -j"$jobs" 2>&1) | tee "$dir/ctest.log"
	sweep "$dir" "after the $name tests"
	local pass fail skip
	pass=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .* Passed' "$dir/ctest.log")
	# Exit 77: the machine lacks what the test needs (FUSE, root; never
	# with CI=true, where such a test fails instead).
	skip=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .*\*\*\*Skipped' "$dir/ctest.log")
	fail=$(grep -E '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .*(\*\*\*|Failed|Not Run|Timeout)' "$dir/ctest.log" |
		grep -cv '\*\*\*Skipped')
	total_pass=$((total_pass + pass))
	total_fail=$((total_fail + fail))
	total_skip=$((total_skip + skip))
}
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# The real kernel driver under QEMU (scripts/qemu.sh), against the plain
# build's openvmc-hvd: each guest test is one result. Exit 77 means it
# cannot run here (never in CI: there it fails instead); it said why.
run_guest() {
	local log=build/guest.log rc line
	if [ -n "${OVMC_SKIP_GUEST:-}" ]; then
		if [ "${CI:-}" = true ]; then
			echo "guest tests: OVMC_SKIP_GUEST is set, but CI=true runs everything"
			total_fail=$((total_fail + 1))
		else
			echo "guest tests: skipped (OVMC_SKIP_GUEST is set)"
		fi
		return
	fi
	echo "=== guest tests (Debian's kernel and ibmvmc.ko under QEMU) ==="
	OPENVMC_BUILD=$top/build scripts/qemu.sh 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	[ "$rc" -eq 77 ] && return 0
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
	if [ -z "$line" ]; then
		echo "guest tests: scripts/qemu.sh exited $rc without results"
		total_fail=$((total_fail + 1))
		return
	fi
	total_pass=$((total_pass + ${line%% *}))
	line=${line#*, }
	total_fail=$((total_fail + ${line%% *}))
}
run_suite plain build || total_fail=$((total_fail + 1))
# The suite where FUSE or root is missing (scripts/nofuse.sh): the fuse
# and root tests skip by name, the others pass; with CI=true they fail.
echo "=== without FUSE or root ==="
if scripts/nofuse.sh --build build >build/nofuse.log 2>&1; then
	grep '^nofuse: ' build/nofuse.log
	total_pass=$((total_pass + 1))
else
	tail -40 build/nofuse.log
	total_fail=$((total_fail + 1))
fi
run_suite sanitized build-asan -DOVMC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug || total_fail=$((total_fail + 1))
# Every fuzz target for a short fixed time (fuzz/CMakeLists.txt), one test each.
run_suite fuzz build-fuzz -DCMAKE_C_COMPILER=clang -DOVMC_FUZZ=ON -DOVMC_BUILD_TESTS=OFF \
	-DOVMC_FUZZ_SECONDS=20 || total_fail=$((total_fail + 1))
# The Debian packages: built (without their own run of the suite, which
# just ran twice), lintian, installed, the demo from the installed programs.
echo "=== packages ==="
mkdir -p build
if scripts/packages.sh >build/packages.log 2>&1; then
	grep "^packages: " build/packages.log
	total_pass=$((total_pass + 1))
else
	tail -40 build/packages.log
	echo "packages: FAILED (whole log: build/packages.log)"
	total_fail=$((total_fail + 1))
fi
run_guest
# A line of its own: CI reads the last line.
[ "$total_skip" -eq 0 ] || echo "$total_skip skipped"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
