#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The run command: install dependencies, build, start the emulated channel
# (openvmc: hypervisor + driver in one process, device file through FUSE),
# exchange messages with the echo backend through the device using vmcctl,
# push an unsolicited hypervisor message, show the CRQ traffic and stop.
# Needs root (FUSE mount). Leaves nothing behind, also when a step fails.
# OVMC_PROGRAMS=installed runs the installed programs instead of building.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/deps.sh
if [ "${OVMC_PROGRAMS:-build}" = installed ]; then
	# The installed programs (scripts/packages.sh runs the demo so).
	openvmc=$(command -v openvmc) && vmcctl=$(command -v vmcctl) ||
		{ echo "openvmc and vmcctl are not installed" >&2; exit 1; }
	echo "== using the installed $openvmc and $vmcctl"
else
	echo "== building (build/)"
	cmake -S . -B build >/dev/null
	cmake --build build -j"$(nproc)" >/dev/null
	openvmc=build/src/daemon/openvmc
	vmcctl=build/src/tools/vmcctl
fi
work=$(mktemp -d /tmp/openvmc-demo.XXXXXX)
dev=$work/run/ibmvmc
log=$work/openvmc.log
pid=
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	if grep -qs " $dev " /proc/self/mountinfo; then umount -l "$dev" || true; fi
	rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }

step "starting openvmc: $dev (control socket $work/ctl)"
"$openvmc" --trace --control "$work/ctl" "$work/run" 2>"$log" &
pid=$!
for _ in $(seq 100); do
	grep -q "device ready at" "$log" && break
	kill -0 "$pid" 2>/dev/null || { cat "$log"; exit 1; }
	sleep 0.1
done
grep -q "device ready at" "$log" || { cat "$log"; echo "openvmc did not start" >&2; exit 1; }
export OPENVMC_DEVICE=$dev OPENVMC_CONTROL=$work/ctl OPENVMC_HV_CONTROL=$work/ctl

step "vmcctl query --wait-ready   (VMC_IOCTL_QUERY until the channel is up)"
"$vmcctl" query --wait-ready

step "vmcctl open: HMC id 'demo-hmc', two messages out, the echo backend answers"
"$vmcctl" open --hmc-id demo-hmc --message $'hello, hypervisor\n' --message $'layer 2 is opaque\n' --stats

step "an application waits while the hypervisor pushes an unsolicited message"
"$vmcctl" open --hmc-id demo-async --message $'waiting for events\n' --expect 2 --timeout 10000 \
	>"$work/async.out" &
client=$!
for _ in $(seq 100); do
	"$vmcctl" hv sessions | grep -q "index 0: open" && break
	sleep 0.05
done
"$vmcctl" hv send --index 0 $'event: partition state changed\n'
wait "$client"
sed 's/^/  received: /' "$work/async.out"

step "vmcctl status"
"$vmcctl" status

step "what happened on the channel (openvmc --trace; runs of buffer-pool entries folded)"
# Drop the "time prog[pid] info crq:" prefix; fold the pool seeding.
sed -n 's/^\([0-9:.]*\) [^ ]* info crq: /\1 /p' "$log" | awk '
	function flush() {
		if (n) print first
		if (n > 1) print "             ... and " n - 1 " more " kind
		n = 0
	}
	{ k = ($0 ~ / ADD_BUF_RESP /) ? "ADD_BUF_RESP" : ($0 ~ / ADD_BUF /) ? "ADD_BUF" : "" }
	k != kind { flush(); kind = k }
	k != "" { if (!n++) first = $0; next }
	{ print }
	END { flush() }'

step "stopping openvmc (SIGTERM)"
kill -TERM "$pid"
wait "$pid" && echo "openvmc exited cleanly; device unmounted"
pid=
