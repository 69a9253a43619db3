#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# What vmcctl prints of the messages it receives, on a terminal (a pty of
# script(1)) and into a pipe, from the real openvmc (echo backend) served
# on its session socket only: no root, no FUSE.
#
# Environment: OVMC_SOURCE_DIR, OVMC_BUILD_DIR.

PATH=$OVMC_BUILD_DIR/src/tools:$OVMC_BUILD_DIR/src/daemon:$PATH

# channel: openvmc in $d/vmc, stopped when the test ends; $sock is its
# session socket, ready for sessions.
channel() {
	scratch d
	openvmc --no-device --control "$d/ctl" "$d/vmc" >"$d/openvmc.log" 2>&1 &
	defer "kill -KILL $! 2>/dev/null; wait $! 2>/dev/null"
	sock=$d/vmc/ibmvmc.sock
	local i
	for ((i = 0; i < 1000; i++)); do
		[ -S "$d/ctl" ] && break
		sleep 0.01
	done
	[ -S "$d/ctl" ] || fail "openvmc did not start: $(cat "$d/openvmc.log")"
	check vmcctl --socket "$sock" query --wait-ready=10000 >/dev/null
}

# on_tty CMD...: CMD's output on a terminal, as the terminal shows it (the
# pty's CR of each line break dropped); CMD's own stdin is /dev/null.
on_tty() {
	local q
	printf -v q '%q ' "$@"
	script -qec "$q </dev/null" /dev/null </dev/null | tr -d '\r'
	return "${PIPESTATUS[0]}"
}

# expect_out WHAT GOT WANT
expect_out() {
	[ "$2" = "$3" ] || fail "$1: got [$2], not [$3]"
}

test_messages_are_one_line_each_on_a_terminal() {
	local d sock out
	channel
	out=$(on_tty vmcctl --socket "$sock" open -i t -M hello -M world) || fail "exit $?: $out"
	expect_out "two messages" "$out" $'hello\nworld'
	# A message's own line break is the line's; UTF-8 text is text.
	out=$(on_tty vmcctl --socket "$sock" open -i t --hex-in -M 6f6e650a -M 68c3a9) || fail "exit $?"
	expect_out "line break and UTF-8" "$out" $'one\nh\xc3\xa9'
}

test_binary_messages_are_a_hex_dump_on_a_terminal() {
	local d sock out want
	channel
	out=$(on_tty vmcctl --socket "$sock" open -i t --hex-in -M 00ff4142 -M 1b5b324a -M 414243) ||
		fail "exit $?: $out"
	# The terminal never gets the escape sequence (ESC [ 2 J clears it).
	[[ $out != *$'\x1b'* ]] || fail "an escape byte reached the terminal: $out"
	want="00000000  00 ff 41 42                                       |..AB|
00000000  1b 5b 32 4a                                       |.[2J|
ABC"
	expect_out "dump" "$out" "$want"
	# 17 bytes: two lines, offsets in hex.
	out=$(on_tty vmcctl --socket "$sock" open -i t --hex-in -M 000102030405060708090a0b0c0d0e0f10) ||
		fail "exit $?"
	want="00000000  00 01 02 03 04 05 06 07  08 09 0a 0b 0c 0d 0e 0f  |................|
00000010  10                                                |.|"
	expect_out "two dump lines" "$out" "$want"
}

test_a_pipe_gets_the_bytes_as_they_are() {
	local d sock
	channel
	vmcctl --socket "$sock" open -i t -M hello -M world >"$d/out" || fail "exit $?"
	printf 'helloworld' | cmp - "$d/out" || fail "not the raw bytes: $(od -c "$d/out")"
	vmcctl --socket "$sock" open -i t --hex-in -M 00ff0a1b >"$d/out" || fail "exit $?"
	printf '\000\377\n\033' | cmp - "$d/out" || fail "not the raw bytes: $(od -c "$d/out")"
	# pipe: one line per message.
	printf 'one\ntwo\n' | vmcctl --socket "$sock" pipe -i t --linger 300 >"$d/out" || fail "exit $?"
	printf 'one\ntwo\n' | cmp - "$d/out" || fail "pipe: $(od -c "$d/out")"
}

test_each_format_on_request_on_a_terminal_and_in_a_pipe() {
	local d sock out
	channel
	out=$(vmcctl --socket "$sock" open -i t --text --hex-in -M 5c0a00ff41 -M 68c3a9) || fail "exit $?"
	expect_out "--text" "$out" $'\\\\\\n\\x00\\xffA\nh\xc3\xa9'
	out=$(vmcctl --socket "$sock" open -i t --hex -M hi -M yo) || fail "exit $?"
	expect_out "--hex" "$out" $'6869\n796f'
	out=$(vmcctl --socket "$sock" open -i t --format=dump -M hi) || fail "exit $?"
	expect_out "--format=dump" "$out" "00000000  68 69                                             |hi|"
	out=$(vmcctl --socket "$sock" open -i t --format=auto -M hello -M world) || fail "exit $?"
	expect_out "auto in a pipe" "$out" "helloworld"
	out=$(on_tty vmcctl --socket "$sock" open -i t --raw -M hello -M world) || fail "exit $?"
	expect_out "--raw on a terminal" "$out" "helloworld"
	out=$(on_tty vmcctl --socket "$sock" open -i t --format=hex -M hi) || fail "exit $?"
	expect_out "--format=hex on a terminal" "$out" "6869"
	# The last one given wins.
	out=$(vmcctl --socket "$sock" open -i t --hex --text -M hi) || fail "exit $?"
	expect_out "--hex --text" "$out" "hi"
	# pipe: readable on a terminal too, its input read from a pipe.
	out=$(script -qec "printf '00ff\\n6869\\n' | vmcctl --socket $sock pipe -i t --linger 300 --hex --format=auto" /dev/null </dev/null | tr -d '\r')
	expect_out "pipe --hex --format=auto on a terminal" "$out" \
		$'00000000  00 ff                                             |..|\nhi'
	local rc=0
	vmcctl --socket "$sock" open -i t --format=pretty -M hi 2>"$d/err" || rc=$?
	[ "$rc" -eq 2 ] || fail "--format=pretty: exit $rc, not 2"
	grep -q "unknown format 'pretty'" "$d/err" || fail "--format=pretty: $(cat "$d/err")"
}

# shellcheck source=tests/harness.sh
. "$(dirname "$0")/harness.sh"
