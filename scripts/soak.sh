#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Soak the channel: sequence-numbered messages through the device file,
# two sessions at once, lock-step and pipelined, through openvmc (one
# process) and through the daemon pair (openvmcd + openvmc-hvd). The
# checker (tests/soakclient.c) counts lost, duplicated, reordered and
# corrupted messages: all must be 0. EBUSY is back-pressure, counted.
#
#   scripts/soak.sh [--short | --long | --valgrind] [--build DIR] [--count N]
#
#   --short  5,000 messages per session and mode (the suite runs this)
#   --long   1,000,000 per session and mode; then the fault loops of
#            tests/faults_test.c with 100 cycles each, and a loop of
#            hypervisor kills with openvmcd under valgrind
#   --valgrind  only the loop of hypervisor kills under valgrind
#   --build  the build directory (default: build)
#
# Needs root and /dev/fuse. Cleans up what it started, also on failure.
# The last line is "soak: passed" or "soak: FAILED".
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
mode=short build=$top/build count=
while [ $# -gt 0 ]; do
	case $1 in
	--short) mode=short ;;
	--long) mode=long ;;
	--valgrind) mode=valgrind ;;
	--build) build=$(realpath "$2"); shift ;;
	--count) count=$2; shift ;;
	-h | --help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "soak.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
	esac
	shift
done
# As a test of the suite (label fuse): skip where FUSE or root is missing.
# shellcheck source=tests/needs.sh
. "$top/tests/needs.sh"
ovmc_check_needs
[ -n "$count" ] || { [ $mode = long ] && count=1000000 || count=5000; }
[ $mode != valgrind ] || count=0
bin=$build/src/daemon
client=$build/tests/soakclient
vmcctl=$build/src/tools/vmcctl
for f in "$bin/openvmc" "$bin/openvmcd" "$bin/openvmc-hvd" "$client" "$vmcctl"; do
	[ -x "$f" ] || { echo "soak.sh: $f missing: build first (cmake --build $build)" >&2; exit 2; }
done

dir=$(mktemp -d /tmp/ovmc-soak-XXXXXX)
pids=()
failed=0

cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill -CONT "$p" 2>/dev/null
		kill -TERM "$p" 2>/dev/null
	done
	for p in "${pids[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	pids=()
	mountpoint -q "$dir/dev/ibmvmc" 2>/dev/null && umount -l "$dir/dev/ibmvmc"
	[ $failed -eq 0 ] || { for l in "$dir"/*.log; do [ -f "$l" ] && { echo "---- $l"; tail -30 "$l"; }; done; }
	rm -rf --one-file-system "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Wait until `what` appears in `log`, at most `secs`.
wait_for() { # log what secs
	local end=$((SECONDS + $3))
	until grep -qF -- "$2" "$1" 2>/dev/null; do
		[ $SECONDS -lt $end ] || { echo "soak: no \"$2\" in $1 within $3 s" >&2; return 1; }
		sleep 0.05
	done
}

# Wait until the control socket's status shows `what`, at most `secs`.
ctl_wait() { # socket what secs
	local end=$((SECONDS + $3))
	until "$vmcctl" status -c "$1" 2>/dev/null | grep -qF -- "$2"; do
		[ $SECONDS -lt $end ] || { echo "soak: status of $1 never showed \"$2\"" >&2; return 1; }
		sleep 0.1
	done
}

start() { # log, command...
	local log=$1
	shift
	"$@" >>"$log" 2>&1 &
	pids+=($!)
}

stop_all() {
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	pids=()
}

# Two sessions at once in each mode; every checker must pass.
soak_device() { # label
	local m k rc out
	for m in lockstep pipelined; do
		local cps=()
		for k in A B; do
			"$client" "$dir/dev/ibmvmc" "SOAK-$1-$m-$k" "$count" "$m" >"$dir/client-$k.out" 2>&1 &
			cps+=($!)
		done
		for k in 0 1; do
			wait "${cps[$k]}"
			rc=$?
			out=$(tail -1 "$dir/client-$([ $k = 0 ] && echo A || echo B).out")
			echo "$1: $out"
			[ $rc -eq 0 ] || failed=1
		done
	done
}

if [ $mode != valgrind ]; then
	echo "soak: $count messages per session and mode ($mode)"
	start "$dir/openvmc.log" "$bin/openvmc" --hmcs 2 --control "$dir/ctl" "$dir/dev"
	wait_for "$dir/openvmc.log" "device ready at" 10 || failed=1
	[ $failed -eq 0 ] && soak_device openvmc
	stop_all

	start "$dir/hvd.log" "$bin/openvmc-hvd" --foreground --hmcs 2 --socket "$dir/hv/sock" \
		--control "$dir/hv.ctl"
	wait_for "$dir/hvd.log" "hypervisor ready at" 10 || failed=1
	start "$dir/openvmcd.log" "$bin/openvmcd" --foreground --hmcs 2 --socket "$dir/hv/sock" \
		--control "$dir/drv.ctl" "$dir/dev"
	wait_for "$dir/openvmcd.log" "attached to the hypervisor" 10 || failed=1
	[ $failed -eq 0 ] && soak_device daemons
	stop_all
fi

if [ $mode = long ] && [ $failed -eq 0 ]; then
	echo "soak: fault loops, 100 cycles each"
	for t in hvd_killed_under_traffic_again_and_again_openvmcd_reattaches_and_holds_nothing_more \
		openvmcd_killed_under_traffic_again_and_again_the_hypervisor_holds_nothing_more \
		hvd_stopped_and_continued_again_and_again_openvmcd_never_waits_and_holds_nothing_more; do
		OVMC_FAULT_CYCLES=100 "$build/tests/faults_test" "$t" 2>&1 |
			grep -E '^(ok|FAIL|[a-z-]+ after [0-9]+ cycles)' || failed=1
		[ "${PIPESTATUS[0]}" -eq 0 ] || failed=1
	done
fi

if { [ $mode = long ] || [ $mode = valgrind ]; } && [ $failed -eq 0 ]; then
	echo "soak: 20 hypervisor kills with openvmcd under valgrind"
	"$top/scripts/deps.sh" || failed=1
	start "$dir/hvd.log" "$bin/openvmc-hvd" --foreground --socket "$dir/hv/sock"
	wait_for "$dir/hvd.log" "hypervisor ready at" 10 || failed=1
	hvd=${pids[-1]}
	valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
		--log-file="$dir/valgrind.log" "$bin/openvmcd" --foreground --retry-ms 50 \
		--socket "$dir/hv/sock" --control "$dir/drv.ctl" "$dir/dev" >>"$dir/openvmcd.log" 2>&1 &
	vg=$!
	wait_for "$dir/openvmcd.log" "attached to the hypervisor" 120 || failed=1
	for i in $(seq 20); do
		[ $failed -eq 0 ] || break
		"$client" "$dir/dev/ibmvmc" "SOAK-VG-$i" 200 lockstep >/dev/null || failed=1
		kill -KILL "$hvd"
		wait "$hvd" 2>/dev/null
		pids=()
		# The status, not the log: repeated log lines are rate-limited.
		ctl_wait "$dir/drv.ctl" "platform lost" 30 || failed=1
		start "$dir/hvd.log" "$bin/openvmc-hvd" --foreground --socket "$dir/hv/sock"
		hvd=${pids[-1]}
		ctl_wait "$dir/drv.ctl" "driver: state ready" 60 || failed=1
	done
	"$client" "$dir/dev/ibmvmc" "SOAK-VG-END" 200 lockstep >/dev/null || failed=1
	kill -TERM "$vg"
	wait "$vg"
	rc=$?
	echo "valgrind: openvmcd exit $rc after 20 hypervisor kills," \
		"$(wc -l <"$dir/valgrind.log" 2>/dev/null || echo 0) lines of valgrind reports"
	[ $rc -eq 0 ] || { failed=1; cat "$dir/valgrind.log"; }
	stop_all
fi

if [ $failed -eq 0 ]; then
	echo "soak: passed"
else
	echo "soak: FAILED"
	exit 1
fi
