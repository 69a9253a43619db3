#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The benchmark (docs/performance.md): install what is missing, make a
# release build in build-bench/, run ovmc-bench once (pinned to CPU 0 and
# unpinned, every path next to its floor), keep its CSV and JSON in
# build-bench/ and plot latency against size (PNG and SVG). Needs root
# (FUSE mounts). Options go to ovmc-bench (--quick, --mode, --iters, ...);
# --csv FILE / --json FILE also copy the results there, --plot PREFIX
# writes PREFIX.png and PREFIX.svg (default build-bench/bench).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/deps.sh
out=build-bench
csv='' json='' plot=$out/bench
args=()
while [ $# -gt 0 ]; do
	case $1 in
	--csv) csv=$2; shift 2 ;;
	--json) json=$2; shift 2 ;;
	--plot) plot=$2; shift 2 ;;
	*) args+=("$1"); shift ;;
	esac
done
cmake -S . -B "$out" -DCMAKE_BUILD_TYPE=Release -DOVMC_WERROR=ON -DOVMC_BUILD_TESTS=OFF >/dev/null
cmake --build "$out" -j"$(nproc)" >/dev/null
"$out/bench/ovmc-bench" --bin-dir "$out/src/daemon" --csv "$out/bench.csv" \
	--json "$out/bench.json" ${args[@]+"${args[@]}"}
[ -z "$csv" ] || cp "$out/bench.csv" "$csv"
[ -z "$json" ] || cp "$out/bench.json" "$json"
bench/plot.sh "$out/bench.csv" "$plot"
echo "results: $out/bench.csv $out/bench.json; plot: $plot.png $plot.svg"
