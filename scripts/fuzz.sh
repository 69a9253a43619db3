#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Run a fuzz target (fuzz/) for a while, niced, on its seed corpus and on
# what earlier runs found.
#
#   scripts/fuzz.sh [--fast] TARGET|all [SECONDS] [LIBFUZZER-OPTIONS...]
#
# --fast: fuzz a build without ASan and UBSan (2-3 times the executions a
# second), then replay the whole corpus once through the sanitized build.
# TARGET: wire, drv, hv, router, pcapng, ctl, guest, xproc (all: each in turn).
# SECONDS: default 60. Options go to libFuzzer as they are, for example
# -runs=10000000 (then SECONDS is only an upper bound) or -jobs=1.
# Builds build-fuzz/ (or $OVMC_FUZZ_BUILD) with clang first (-DOVMC_FUZZ=ON). New inputs
# go to build-fuzz/fuzz/corpus/TARGET, crashes to
# build-fuzz/fuzz/crashes/TARGET/; the last lines are libFuzzer's stats.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
targets=(wire drv hv router pcapng ctl guest xproc)
usage() { sed -n '3,15p' "$0" | sed 's/^# \{0,1\}//'; }
fast=''
[ "${1:-}" != --fast ] || { fast=--fast; shift; }
[ $# -ge 1 ] || { usage; exit 2; }
case $1 in -h | --help) usage; exit 0 ;; esac
target=$1
secs=${2:-60}
shift $(($# >= 2 ? 2 : 1))
if [ "$target" = all ]; then
	for t in "${targets[@]}"; do "$0" $fast "$t" "$secs" "$@"; done
	exit 0
fi
printf '%s\n' "${targets[@]}" | grep -qx -- "$target" ||
	{ echo "fuzz.sh: no target \"$target\" (${targets[*]})" >&2; exit 2; }
b=${OVMC_FUZZ_BUILD:-$top/build-fuzz}
"$top/scripts/deps.sh"
build() { # DIR SANITIZERS
	if [ ! -f "$1/CMakeCache.txt" ]; then
		cmake -S "$top" -B "$1" -DCMAKE_C_COMPILER=clang -DOVMC_FUZZ=ON \
			-DOVMC_FUZZ_SANITIZERS="$2" -DOVMC_BUILD_TESTS=OFF \
			-DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	fi
	cmake --build "$1" --target "fuzz_$target" -j"$(nproc)" >/dev/null
}
build "$b" address,undefined
mkdir -p "$b/fuzz/corpus/$target" "$b/fuzz/crashes/$target"
cd "$b/fuzz/crashes/$target"
run() { # BINARY OPTIONS...
	local bin=$1
	shift
	nice -n 10 "$bin" -print_final_stats=1 -timeout=20 -rss_limit_mb=2048 \
		-artifact_prefix="$b/fuzz/crashes/$target/" "$@" \
		"$b/fuzz/corpus/$target" "$top/fuzz/corpus/$target"
}
if [ -z "$fast" ]; then
	run "$b/fuzz/fuzz_$target" -max_total_time="$secs" "$@"
	exit
fi
build "$b-fast" ''
run "$b-fast/fuzz/fuzz_$target" -max_total_time="$secs" "$@"
echo "fuzz.sh: replaying the corpus through the sanitized build"
run "$b/fuzz/fuzz_$target" -runs=0
