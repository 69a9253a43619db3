#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The conventions of docs/options.md, held by the five programs of the
# build tree: one meaning per short option, one --version format, exit
# status 2 for every kind of usage error.
#
# Environment: OVMC_SOURCE_DIR, OVMC_BUILD_DIR.

src=$OVMC_SOURCE_DIR
PATH=$OVMC_BUILD_DIR/src/tools:$OVMC_BUILD_DIR/src/daemon:$OVMC_BUILD_DIR/src/preload:$PATH
# Every --help there is: the programs and each vmcctl command.
helps=(openvmc openvmcd openvmc-hvd vmc-run "vmcctl" "vmcctl query" "vmcctl request-vmc"
	"vmcctl open" "vmcctl pipe" "vmcctl status" "vmcctl ctl" "vmcctl hv" "vmcctl hv send"
	"vmcctl hv restart" "vmcctl hv sessions" "vmcctl trace")

# "-X --long" for each row of the table in docs/options.md.
table() {
	# shellcheck disable=SC2016 # the backquotes of markdown
	sed -nE 's/^\| `(-[A-Za-z])` \| `(--[a-z-]+)` \|.*/\1 \2/p' "$src/docs/options.md"
}

# "-X --long" for each "  -X, --long" line of a --help text on stdin.
help_pairs() {
	sed -nE 's/^ +(-[A-Za-z0-9]), (--[a-z0-9-]+).*/\1 \2/p'
}

test_table_lists_each_letter_once() {
	local dup
	[ "$(table | wc -l)" -ge 20 ] || fail "docs/options.md: table not found"
	dup=$(table | awk '{ print $1 }' | sort | uniq -d)
	[ -z "$dup" ] || fail "docs/options.md: letters given twice: $dup"
	dup=$(table | awk '{ print $2 }' | sort | uniq -d)
	[ -z "$dup" ] || fail "docs/options.md: long options given twice: $dup"
}

test_every_help_gives_each_letter_the_meaning_of_the_table() {
	local h pair want used=""
	for h in "${helps[@]}"; do
		# shellcheck disable=SC2086 # a program and its commands
		while read -r pair; do
			want=$(table | awk -v s="${pair% *}" '$1 == s { print $0 }')
			[ -n "$want" ] || fail "$h --help: ${pair% *} is not in docs/options.md"
			[ "$want" = "$pair" ] || fail "$h --help: ${pair% *} is ${pair#* }, docs/options.md: $want"
			used+="${pair% *} "
		done < <($h --help | help_pairs)
	done
	# And no row that no program has.
	while read -r pair; do
		[[ " $used" == *" ${pair% *} "* ]] || fail "docs/options.md: no program takes ${pair% *}"
	done < <(table)
}

# A letter the help does not list is refused as an invalid option: the
# short forms given up are really gone, and none is hidden.
test_every_program_refuses_the_letters_its_help_does_not_list() {
	local h l listed out rc
	for h in "${helps[@]}"; do
		# shellcheck disable=SC2086
		listed=$($h --help | sed -nE 's/^ +-([A-Za-z0-9]),.*/\1/p' | tr -d '\n')
		for l in {a..z} {A..Z}; do
			[[ $listed == *"$l"* ]] && continue
			rc=0
			# No timeout(1) for 800 runs: ctest's bounds the test.
			# shellcheck disable=SC2086
			out=$($h "-$l" 2>&1 </dev/null) || rc=$?
			[ "$rc" -eq 2 ] || fail "$h -$l: exit $rc, not 2: $out"
			[[ $out == *"invalid option"* ]] || fail "$h -$l: not refused as invalid: $out"
		done
	done
}

test_every_program_prints_the_one_version_format() {
	local h p o out want
	want=$(sed -n 's/^project(openvmc VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
	[ -n "$want" ] || fail "no version in CMakeLists.txt"
	for h in "${helps[@]}"; do
		p=${h%% *}
		for o in --version -V; do
			# shellcheck disable=SC2086
			out=$($h $o) || fail "$h $o: exit $?"
			[ "$out" = "$p (openvmc) $want" ] || fail "$h $o: \"$out\", not \"$p (openvmc) $want\""
		done
	done
}

# usage CMD...: CMD exits 2, says why and points to --help, starts nothing.
usage() {
	local out rc=0
	out=$(timeout 10 "$@" 2>&1 </dev/null) || rc=$?
	[ "$rc" -eq 2 ] || fail "$*: exit $rc, not 2: $out"
	grep -q "Try '.*--help'" <<<"$out" || fail "$*: no --help hint: $out"
}

test_usage_errors_exit_2_in_every_program() {
	local d p
	scratch d
	for p in openvmc openvmcd openvmc-hvd; do
		usage "$p" --no-such-option "$d/dev"
		usage "$p" "$d/dev" --log-level
		usage "$p" --log-level loud "$d/dev"
		usage "$p" --hmcs 0 "$d/dev"
		usage "$p" --mtu many "$d/dev"
		usage "$p" "$d/dev" "$d/other"
	done
	usage openvmc --backend nope "$d/dev"
	usage openvmc-hvd --backend exec:
	usage openvmc-hvd --backend router:x
	usage openvmc --mode 999 "$d/dev"
	usage openvmcd --retry-ms 0 "$d/dev"
	usage openvmcd --hcall-timeout-ms x "$d/dev"
	usage openvmcd
	usage vmcctl
	usage vmcctl --no-such-option query
	usage vmcctl nope
	usage vmcctl query --wait-ready=soon
	usage vmcctl open
	usage vmcctl open --hmc-id
	usage vmcctl open --hmc-id t --timeout x
	usage vmcctl open --hmc-id t --count 0 -M a
	usage vmcctl pipe --hmc-id t --linger -1
	usage vmcctl status --timeout
	usage vmcctl status extra
	usage vmcctl hv send --index 300 x
	usage vmcctl hv restart --now
	usage vmcctl trace --count 0
	usage vmcctl ctl
	usage vmc-run
	usage vmc-run --no-such-option true
	usage vmc-run --socket
	usage vmc-run --device relative true
	# Nothing was made for a device that was refused.
	[ -z "$(ls -A "$d")" ] || fail "a refused command line left $(ls -A "$d")"
}

# start VAR PROGRAM ARGS...: PROGRAM in the background, its pid in VAR,
# killed when the test ends; its output in $d/PROGRAM.log.
start() {
	local var=$1
	shift
	"$@" >"$d/${1##*/}.log" 2>&1 &
	printf -v "$var" '%s' $!
	defer "kill -KILL $! 2>/dev/null; wait $! 2>/dev/null"
}

# until_there PATH: wait (at most 10 s) for PATH to exist.
until_there() {
	local i
	for ((i = 0; i < 1000; i++)); do
		[ -e "$1" ] && return 0
		sleep 0.01
	done
	fail "$1 did not appear: $(cat "$d"/*.log)"
}

# stop PID: SIGTERM, and the clean exit status 0.
stop() {
	local rc=0
	kill -TERM "$1"
	wait "$1" || rc=$?
	[ "$rc" -eq 0 ] || fail "exit $rc after SIGTERM: $(cat "$d"/*.log)"
}

# fails CMD...: CMD starts, fails with exit 1 (not a usage error).
fails() {
	local rc=0
	timeout 20 "$@" >"$d/failed.log" 2>&1 </dev/null || rc=$?
	[ "$rc" -eq 1 ] || fail "$*: exit $rc, not 1: $(cat "$d/failed.log")"
}

test_a_failed_start_removes_the_directories_the_daemon_made() {
	local d
	scratch d
	# Each fails after it made its directories: the control socket's
	# directory, or the replay file, is not there.
	fails openvmc-hvd --foreground --socket "$d/hv/hv.sock" --control "$d/none/hv.ctl"
	[ ! -e "$d/hv" ] || fail "openvmc-hvd left $d/hv"
	grep -q "listening on $d/hv/hv.sock" "$d/failed.log" || fail "no socket was made: $(cat "$d/failed.log")"
	fails openvmc --no-device --control "$d/openvmc.ctl" --backend "replay:$d/none.pcapng" "$d/one/two"
	[ ! -e "$d/one" ] || fail "openvmc left $d/one"
	fails openvmcd --foreground --no-device --socket "$d/none.sock" --control "$d/none/drv.ctl" "$d/three/four"
	[ ! -e "$d/three" ] || fail "openvmcd left $d/three"
}

test_a_clean_stop_removes_the_directories_the_daemons_made() {
	local d hv drv one
	scratch d
	start hv openvmc-hvd --foreground --socket "$d/hv/hv.sock" --control "$d/hv/hv.ctl"
	until_there "$d/hv/hv.ctl"
	start drv openvmcd --foreground --no-device --socket "$d/hv/hv.sock" --control "$d/drv/run/drv.ctl" "$d/drv/run"
	until_there "$d/drv/run/drv.ctl"
	start one openvmc --no-device --control "$d/one/two/ctl" "$d/one/two"
	until_there "$d/one/two/ctl"
	stop "$one"
	stop "$drv"
	stop "$hv"
	local left
	left=$(find "$d" -mindepth 1 ! -name '*.log')
	[ -z "$left" ] || fail "left after a clean stop: $left"
}

test_a_socket_directory_open_to_others_is_refused_with_what_to_do() {
	local d
	scratch d
	mkdir -m 0755 "$d/open"
	fails openvmc-hvd --foreground --socket "$d/open/hv.sock" --control "$d/hv.ctl"
	grep -qF "directory $d/open is mode 0755" "$d/failed.log" || fail "no reason: $(cat "$d/failed.log")"
	grep -qF "chmod 0700 $d/open" "$d/failed.log" || fail "no remedy: $(cat "$d/failed.log")"
	[ -d "$d/open" ] || fail "the user's directory was removed"
	# And the remedy works.
	chmod 0700 "$d/open"
	local hv
	start hv openvmc-hvd --foreground --socket "$d/open/hv.sock" --control "$d/hv.ctl"
	until_there "$d/open/hv.sock"
	stop "$hv"
	[ -d "$d/open" ] || fail "the user's directory was removed at the stop"
}

# Each man page's SEE ALSO names the four other programs and the
# conventions' document.
test_every_man_page_sees_all_the_other_programs() {
	local page p see
	for page in openvmc.1 openvmcd.8 openvmc-hvd.8 vmcctl.1 vmc-run.1; do
		see=$(sed -n '/^\.SH SEE ALSO/,/^\.SH/p' "$src/man/$page" | sed 's/\\-/-/g')
		[ -n "$see" ] || fail "$page: no SEE ALSO"
		for p in openvmc.1 openvmcd.8 openvmc-hvd.8 vmcctl.1 vmc-run.1; do
			[ "$p" = "$page" ] && continue
			grep -qF ".BR ${p%.*} (${p##*.})" <<<"$see" || fail "$page: SEE ALSO lacks ${p%.*}(${p##*.})"
		done
		grep -q "options.md" <<<"$see" || fail "$page: SEE ALSO lacks options.md"
	done
}

# shellcheck source=tests/harness.sh
. "$(dirname "$0")/harness.sh"
