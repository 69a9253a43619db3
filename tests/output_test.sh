#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# What vmcctl prints of the messages it receives, on a terminal (a pty of
# script(1)) and into a pipe, from the real openvmc (echo backend) served
# on its session socket only: no root, no FUSE.
#
# Environment: OVMC_SOURCE_DIR, OVMC_BUILD_DIR.

PATH=$OVMC_BUILD_DIR/src/tools:$OVMC_BUILD_DIR/src/daemon:$PATH

# channel [BACKEND]: openvmc in $d/vmc (echo backend by default), stopped
# when the test ends; $sock is its session socket, ready for sessions.
channel() {
	scratch d
	openvmc --no-device --backend "${1:-echo}" --control "$d/ctl" "$d/vmc" >"$d/openvmc.log" 2>&1 &
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
	script -qec true /dev/null </dev/null >/dev/null 2>&1 || skip "script(1) gets no pty here"
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

test_router_replies_are_a_hex_dump_on_a_terminal() {
	local d sock out want
	channel router
	# Exchange ops (docs/router.md): header only, token 1, the router target.
	out=$(on_tty vmcctl --socket "$sock" open -i t --hex-in \
		-M decaff2000000020000000018000008000000000000100000000000000000000) || fail "exit $?: $out"
	want="00000000  de ca ff 20 00 00 00 20  00 00 00 01 80 00 00 40  |... ... .......@|
00000010  00 00 00 00 00 01 00 00  00 00 00 00 00 00 00 00  |................|"
	expect_out "the router's answer" "$out" "$want"
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

# valid NAME... : standard input holds documents of those schemas of
# docs/vmcctl-json.md (tests/json_check.py); prints the name of each.
valid() {
	python3 "$OVMC_SOURCE_DIR/tests/json_check.py" "$OVMC_SOURCE_DIR/docs/vmcctl-json.md" "$@"
}

test_the_schema_check_refuses_what_the_schema_does_not_say() {
	valid query <<<'{"have_vmc":true,"state":"ready","state_code":3,"drc_index":0}' >/dev/null ||
		fail "a valid query document refused"
	! valid query <<<'{"have_vmc":true,"state":"ready","state_code":3,"drc_index":0,"x":1}' 2>/dev/null ||
		fail "an unknown member passed"
	! valid query <<<'{"have_vmc":true,"state":"ready","state_code":3}' 2>/dev/null ||
		fail "a missing member passed"
	! valid query <<<'{"have_vmc":1,"state":"ready","state_code":3,"drc_index":0}' 2>/dev/null ||
		fail "a number for a boolean passed"
	! valid message <<<'{"message":{"length":1,"hex":"00","text":null}' 2>/dev/null ||
		fail "broken JSON passed"
}

test_status_json_of_openvmc_matches_the_schema_and_the_text() {
	local d sock out
	channel
	check vmcctl --socket "$sock" open -i json-test -M hello >/dev/null
	vmcctl status -c "$d/ctl" --json >"$d/status.json" || fail "exit $?"
	[ "$(wc -l <"$d/status.json")" -eq 1 ] || fail "not one line: $(cat "$d/status.json")"
	[ "$(valid status <"$d/status.json")" = status ] || fail "not the schema"
	vmcctl status -c "$d/ctl" >"$d/status.txt" || fail "exit $?"
	# The same status as the text, the same as the control line's.
	vmcctl ctl -c "$d/ctl" status json | valid status >/dev/null || fail "status json"
	python3 - "$d/status.json" "$d/status.txt" <<'EOF2' || fail "JSON and text disagree: $(cat "$d/status.json" "$d/status.txt")"
import json, re, sys
j = json.load(open(sys.argv[1]))
t = open(sys.argv[2]).read()
assert j["program"] == "openvmc", j["program"]
drv, hv = j["driver"], j["hypervisor"]
assert f"driver: state {drv['state']} ({drv['state_code']})" in t
assert drv["state"] == "ready" and "negotiated" in drv and "device" not in drv
s = drv["stats"]
assert s["messages_in"] == 1 and s["bytes_in"] == 5, s
assert (f"messages-in {s['messages_in']} messages-out {s['messages_out']} "
        f"bytes-in {s['bytes_in']} bytes-out {s['bytes_out']}") in t
assert drv["session_socket"]["path"].endswith("/vmc/ibmvmc.sock")
assert hv["backend"] == "echo" and f"backend: {hv['backend']}" in t
assert len(hv["partitions"]) == 1 and hv["partitions"][0]["state"] in t
EOF2
}

test_status_json_of_the_two_daemons_matches_the_schema() {
	local d i
	scratch d
	openvmc-hvd --foreground --socket "$d/hv/hv.sock" --control "$d/hv.ctl" >"$d/hvd.log" 2>&1 &
	defer "kill -KILL $! 2>/dev/null; wait $! 2>/dev/null"
	for ((i = 0; i < 1000; i++)); do [ -S "$d/hv.ctl" ] && break; sleep 0.01; done
	openvmcd --foreground --no-device --socket "$d/hv/hv.sock" --control "$d/drv.ctl" "$d/vmc" >"$d/drv.log" 2>&1 &
	defer "kill -KILL $! 2>/dev/null; wait $! 2>/dev/null"
	for ((i = 0; i < 1000; i++)); do [ -S "$d/drv.ctl" ] && break; sleep 0.01; done
	check vmcctl --socket "$d/vmc/ibmvmc.sock" query --wait-ready=10000 >/dev/null
	vmcctl status -c "$d/hv.ctl" --json >"$d/hv.json" || fail "exit $?: $(cat "$d/hvd.log")"
	valid status <"$d/hv.json" >/dev/null || fail "openvmc-hvd: not the schema"
	vmcctl status -c "$d/drv.ctl" --json >"$d/drv.json" || fail "exit $?: $(cat "$d/drv.log")"
	valid status <"$d/drv.json" >/dev/null || fail "openvmcd: not the schema"
	python3 - "$d/hv.json" "$d/drv.json" <<'EOF2' || fail "$(cat "$d/hv.json" "$d/drv.json")"
import json, sys
hv, drv = (json.load(open(f)) for f in sys.argv[1:])
assert hv["program"] == "openvmc-hvd" and "driver" not in hv and "hypervisor" in hv
assert drv["program"] == "openvmcd" and "hypervisor" not in drv and drv["driver"]["state"] == "ready"
assert hv["hypervisor"]["partitions"][0]["state"] == "ready"
EOF2
}

test_query_json_matches_the_schema() {
	local d sock out
	channel
	out=$(vmcctl --socket "$sock" query --json) || fail "exit $?"
	[ "$(valid query <<<"$out")" = query ] || fail "not the schema: $out"
	python3 -c 'import json, sys; q = json.loads(sys.argv[1]); assert q["state"] == "ready" and q["state_code"] == 3 and q["have_vmc"] is True' "$out" ||
		fail "not ready: $out"
}

test_open_json_prints_a_line_per_message_and_the_stats() {
	local d sock
	channel
	vmcctl --socket "$sock" open -i t --hex-in -M 6869 -M 00ff -M 220a --json --stats >"$d/out" 2>"$d/err" ||
		fail "exit $?: $(cat "$d/err")"
	[ ! -s "$d/err" ] || fail "stderr: $(cat "$d/err")"
	[ "$(valid message stats <"$d/out" | tr '\n' ' ')" = "message message message stats " ] ||
		fail "not 3 messages and the stats: $(cat "$d/out")"
	python3 - "$d/out" <<'EOF2' || fail "$(cat "$d/out")"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
m = [l["message"] for l in lines[:3]]
assert [x["hex"] for x in m] == ["6869", "00ff", "220a"]
assert [x["text"] for x in m] == ["hi", None, "\"\n"]
st = lines[3]["stats"]
assert st["sent"] == 3 and st["received"] == 3 and st["received_bytes"] == 6, st
EOF2
	# pipe too, and --format=json is the same.
	printf 'one\n' | vmcctl --socket "$sock" pipe -i t --linger 300 --format=json >"$d/out" || fail "exit $?"
	[ "$(valid message <"$d/out")" = message ] || fail "pipe: $(cat "$d/out")"
}

# shellcheck source=tests/harness.sh
. "$(dirname "$0")/harness.sh"
