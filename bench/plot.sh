#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Plot ovmc-bench's CSV: median round trip against message size, one line
# per path and floor, pinned and unpinned side by side.
#   bench/plot.sh RESULTS.csv PREFIX   writes PREFIX.png and PREFIX.svg
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 RESULTS.csv PREFIX" >&2; exit 2; }
csv=$1 prefix=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
paths="memcpy socketpair bare-fuse core openvmc daemons"
modes=$(awk -F, 'NR > 1 && $3 == "rtt" { print $1 }' "$csv" | sort -u)
[ -n "$modes" ] || { echo "$csv: no round-trip figures" >&2; exit 1; }
for m in $modes; do
	for p in $paths; do
		awk -F, -v m="$m" -v p="$p" '$1 == m && $2 == p && $3 == "rtt" { print $4, $5 }' \
			"$csv" >"$tmp/$m-$p.dat"
	done
done
n=$(echo "$modes" | wc -w)
plots() { # mode
	local m=$1 sep='' p
	printf 'set title "%s"\nplot ' "$m"
	for p in $paths; do
		[ -s "$tmp/$m-$p.dat" ] || continue
		printf '%s"%s" using 1:2 with linespoints title "%s"' "$sep" "$tmp/$m-$p.dat" "$p"
		sep=', '
	done
	printf '\n'
}
script() { # terminal, output
	printf 'set terminal %s\nset output "%s"\n' "$1" "$2"
	cat <<'GP'
set logscale x 2
set logscale y 10
set xlabel "message size (bytes)"
set ylabel "median round trip (us)"
set xtics ("32" 32, "256" 256, "4096" 4096, "16384" 16384)
set key bottom right
set xrange [24:24000]
set grid
GP
	printf 'set multiplot layout 1,%d\n' "$n"
	for m in $modes; do plots "$m"; done
	printf 'unset multiplot\n'
}
w=$((560 * n))
script "pngcairo size $w,420" "$prefix.png" | gnuplot
script "svg size $w,420" "$prefix.svg" | gnuplot
