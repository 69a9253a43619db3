#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The daemons' default control sockets and vmcctl's search for them. Each
# test runs in private mount and pid namespaces with an empty /run, so the
# defaults under /run are its own, and whatever it starts ends with it.
# Only the session socket is served (--no-device): no FUSE needed.
bin=${OVMC_BUILD_DIR:?}/src
openvmc=$bin/daemon/openvmc
vmcctl=$bin/tools/vmcctl

# in_private_run SCRIPT: bash SCRIPT with /run and /tmp empty and private;
# it has up() (wait for a socket) and the programs in $openvmc, $vmcctl.
in_private_run() {
	unshare --mount --pid --fork --mount-proc --kill-child \
		env openvmc="$openvmc" vmcctl="$vmcctl" bash -euo pipefail -c '
		mount -t tmpfs control-test /run
		mount -t tmpfs control-test /tmp
		up() { # PATH PID LOG: until PATH is a socket, while PID runs
			local i
			for i in $(seq 1000); do
				[ -S "$1" ] && return 0
				kill -0 "$2" 2>/dev/null || { cat "$3"; echo "FAIL: exited before $1" >&2; exit 1; }
				sleep 0.01
			done
			echo "FAIL: no $1" >&2; exit 1
		}
		stop() { kill -TERM "$1"; wait "$1"; }
		'"$1"
}

test_openvmc_listens_at_its_default_and_vmcctl_finds_it() {
	in_private_run '
		"$openvmc" --no-device /tmp/a 2>/tmp/log & a=$!
		up /run/openvmc/openvmc.ctl $a /tmp/log
		"$vmcctl" status | grep "^driver: state" >/dev/null
		"$vmcctl" hv sessions | grep "index 0" >/dev/null
		stop $a
		[ ! -e /run/openvmc ] || { echo "FAIL: /run/openvmc left behind" >&2; exit 1; }'
}

test_a_second_openvmc_warns_and_runs_without_a_control_socket() {
	in_private_run '
		"$openvmc" --no-device /tmp/a 2>/tmp/a.log & a=$!
		up /run/openvmc/openvmc.ctl $a /tmp/a.log
		"$openvmc" --no-device /tmp/b 2>/tmp/b.log & b=$!
		up /tmp/b/ibmvmc.sock $b /tmp/b.log
		# The control socket comes after the session socket: wait for its line.
		for i in $(seq 1000); do
			grep -q "no control socket: the default /run/openvmc/openvmc.ctl: another daemon listens there" /tmp/b.log && break
			[ $i = 1000 ] && { cat /tmp/b.log; echo "FAIL: no warning" >&2; exit 1; }
			sleep 0.01
		done
		"$vmcctl" --socket /tmp/b/ibmvmc.sock query --wait-ready >/dev/null
		stop $b
		"$vmcctl" status >/dev/null   # still the first one
		stop $a'
}

test_control_none_listens_nowhere() {
	in_private_run '
		"$openvmc" --control none --no-device /tmp/a 2>/tmp/log & a=$!
		up /tmp/a/ibmvmc.sock $a /tmp/log
		[ ! -e /run/openvmc ] || { echo "FAIL: /run/openvmc made" >&2; exit 1; }
		stop $a'
}

test_vmcctl_without_a_daemon_names_the_defaults_it_tried() {
	in_private_run '
		rc=0; "$vmcctl" status 2>/tmp/err || rc=$?
		[ $rc = 2 ] || { echo "FAIL: exit $rc" >&2; exit 1; }
		grep -q "/run/openvmc/openvmc.ctl, /run/openvmcd/drv.ctl, /run/openvmc/hv.ctl" /tmp/err
		rc=0; "$vmcctl" hv sessions 2>/tmp/err || rc=$?
		[ $rc = 2 ] && grep -q "OPENVMC_HV_CONTROL" /tmp/err'
}

test_vmcctl_on_a_packet_socket_says_it_is_not_a_control_socket() {
	in_private_run '
		"$openvmc" --no-device /tmp/a 2>/tmp/log & a=$!
		up /tmp/a/ibmvmc.sock $a /tmp/log
		rc=0; "$vmcctl" hv send -c /tmp/a/ibmvmc.sock --index 0 hi 2>/tmp/err || rc=$?
		[ $rc = 1 ] || { echo "FAIL: exit $rc" >&2; exit 1; }
		grep -q "not a control socket but a packet socket" /tmp/err || { cat /tmp/err; exit 1; }
		stop $a'
}

test_hv_send_without_a_session_says_how_one_opens_and_wait_waits_for_it() {
	in_private_run '
		"$openvmc" --no-device /tmp/a 2>/tmp/log & a=$!
		up /run/openvmc/openvmc.ctl $a /tmp/log
		rc=0; "$vmcctl" hv send --index 0 hi 2>/tmp/err || rc=$?
		[ $rc = 1 ] && grep -q "ENOTCONN: no open session at index 0: an application opens one" /tmp/err ||
			{ cat /tmp/err; echo "FAIL: exit $rc" >&2; exit 1; }
		"$vmcctl" --socket /tmp/a/ibmvmc.sock open --hmc-id x --expect 1 >/tmp/out & c=$!
		"$vmcctl" hv send --wait --index 0 hi >/dev/null
		wait $c
		grep -q "^hi" /tmp/out
		stop $a'
}

test_hv_send_finds_the_partition_with_the_session_or_the_one_named() {
	in_private_run '
		hvd=$(dirname "$openvmc")/openvmc-hvd drvd=$(dirname "$openvmc")/openvmcd
		"$hvd" --foreground --socket /tmp/hv/sock 2>/tmp/hv.log & h=$!
		up /run/openvmc/hv.ctl $h /tmp/hv.log
		"$drvd" --foreground --socket /tmp/hv/sock --control none --no-device /tmp/p1 2>/tmp/p1.log & p1=$!
		up /tmp/p1/ibmvmc.sock $p1 /tmp/p1.log
		"$drvd" --foreground --socket /tmp/hv/sock --control none --no-device /tmp/p2 2>/tmp/p2.log & p2=$!
		up /tmp/p2/ibmvmc.sock $p2 /tmp/p2.log
		"$vmcctl" --socket /tmp/p1/ibmvmc.sock query --wait-ready >/dev/null
		"$vmcctl" --socket /tmp/p2/ibmvmc.sock query --wait-ready >/dev/null
		# Only the second partition has a session at index 0: it gets the message.
		"$vmcctl" --socket /tmp/p2/ibmvmc.sock open --hmc-id two --expect 1 >/tmp/out2 & c2=$!
		"$vmcctl" hv send --wait --index 0 to-two >/dev/null
		wait $c2
		grep -q "^to-two" /tmp/out2 || { cat /tmp/out2; echo "FAIL: not delivered" >&2; exit 1; }
		# Sessions at index 0 on both: ambiguous until one is named.
		"$vmcctl" --socket /tmp/p1/ibmvmc.sock open --hmc-id one --expect 1 >/tmp/out1 & c1=$!
		"$vmcctl" --socket /tmp/p2/ibmvmc.sock open --hmc-id two --expect 1 >/tmp/out2 & c2=$!
		for i in $(seq 500); do
			[ "$("$vmcctl" hv sessions | grep -c "index 0: open")" = 2 ] && break
			[ $i = 500 ] && { "$vmcctl" hv sessions; echo "FAIL: sessions" >&2; exit 1; }
			sleep 0.01
		done
		rc=0; "$vmcctl" hv send --index 0 x 2>/tmp/err || rc=$?
		[ $rc = 1 ] && grep -q "ENOTUNIQ" /tmp/err || { cat /tmp/err; echo "FAIL: exit $rc" >&2; exit 1; }
		part=$("$vmcctl" hv sessions | grep "index 0: open.*\"one\"" | cut -d" " -f2)
		"$vmcctl" hv send --partition "$part" --index 0 to-one >/dev/null
		wait $c1
		grep -q "^to-one" /tmp/out1 || { cat /tmp/out1; echo "FAIL: not delivered" >&2; exit 1; }
		rc=0; "$vmcctl" hv send --partition 99 --index 0 x 2>/tmp/err || rc=$?
		[ $rc = 1 ] && grep -q "ENOENT: no VMC of partition 99" /tmp/err || { cat /tmp/err; exit 1; }
		kill $c2 2>/dev/null || true
		stop $p1; stop $p2; stop $h'
}

. "$(dirname "$0")/harness.sh"
