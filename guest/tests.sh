#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# The guest tests, run by /init inside the guest against the kernel's
# ibmvmc driver, the device-ABI checks and the router client of the FUSE
# tests (tests/devclient.c --linux, tests/routerclient.c). Each result is
# one console line for scripts/qemu.sh:
#   @@ovmc plan N | ok NAME | fail NAME: WHY | note NAME: TEXT | out NAME: LINE
#   @@ovmc host STEP ARGS...   (the host does STEP and answers "reply RC")
#   @@ovmc end
# ovmc.vmc=0 on the command line: QEMU has no VMC device (only the module
# is checked).
DEV=/dev/ibmvmc
KO=/lib/ibmvmc.ko
vmc=1
for arg in $(cat /proc/cmdline); do
	case $arg in ovmc.vmc=*) vmc=${arg#ovmc.vmc=} ;; esac
done

say() { echo "@@ovmc $*"; }
why() { echo "WHY: $*" >>"$log"; }

# Ask the host to do something; its answer is the return code.
host() {
	local line
	say host "$@"
	while read -r -t 120 line; do
		case $line in
		reply\ *) return "${line#reply }" ;;
		esac
	done
	why "no answer from the host to '$*'"
	return 1
}

# dc OUT SCENARIO ARGS...: devclient against the kernel driver.
dc() {
	local out=$1
	shift
	timeout 120 devclient --linux "$@" >"$out" 2>&1
}

has() { # FILE TEXT
	grep -qF -e "$2" "$1" || { why "no '$2' in ${1##*/}"; return 1; }
}

# A devclient started in the background ($bg_pid, output $bg_out), once it
# printed `ready_line`.
bg_start() { # OUT READY_LINE SCENARIO ARGS...
	bg_out=$1 ready=$2
	shift 2
	devclient --linux "$@" >"$bg_out" 2>&1 &
	bg_pid=$!
	for _ in $(seq 200); do
		grep -qx "$ready" "$bg_out" && return 0
		kill -0 "$bg_pid" 2>/dev/null || break
		sleep 0.05
	done
	why "devclient $1 did not print '$ready'"
	return 1
}

# The background client is blocked in the driver's read().
in_read() { # PID
	for _ in $(seq 200); do
		[ "$(cat "/proc/$1/wchan" 2>/dev/null)" = ibmvmc_read ] && return 0
		sleep 0.05
	done
	why "process $1 never blocked in ibmvmc_read (wchan $(cat "/proc/$1/wchan" 2>/dev/null))"
	return 1
}

bg_wait() { # seconds: the background client's exit status
	local n=$(($1 * 20)) rc
	while [ "$n" -gt 0 ] && kill -0 "$bg_pid" 2>/dev/null; do
		sleep 0.05
		n=$((n - 1))
	done
	if kill -0 "$bg_pid" 2>/dev/null; then
		kill -KILL "$bg_pid"
		why "devclient still running after $1 s"
	fi
	wait "$bg_pid"
	rc=$?
	bg_pid=
	return $rc
}

ready() { dc "$1" wait-ready "$DEV" && has "$1" ready; }

dmesg_mark() { dmesg | wc -l; }
dmesg_since() { dmesg | tail -n +"$(($1 + 1))"; }

# ---- the tests, in the order they run ----

t_module_loads_and_creates_dev_ibmvmc_0600() {
	insmod "$KO" || { why "insmod failed"; return 1; }
	[ -c "$DEV" ] || { why "$DEV is not a character device"; return 1; }
	[ "$(stat -c %a "$DEV")" = 600 ] || { why "mode $(stat -c %a "$DEV")"; return 1; }
}

t_query_without_a_vmc_device_reports_state_0() {
	dc "$o" query "$DEV" && has "$o" "have_vmc 0 state 0 drc 0x00000000"
}

t_channel_becomes_ready() {
	ready "$o" && dc "$o.q" query "$DEV" && has "$o.q" "have_vmc 1 state 3 drc 0x00000000"
}

t_echo_round_trips_every_size_1_to_4096() {
	dc "$o" echo "$DEV" HMC-ECHO 1 4096 && has "$o" "echoed 1..4096"
}

t_sethmcid_then_write_until_the_open_completes() {
	dc "$o" echo "$DEV" HMC-OPEN 1 1 && has "$o" "open complete after " && has "$o" "echoed 1..1"
}

t_nonblocking_read_with_nothing_queued_eagain() {
	dc "$o" nonblock "$DEV" HMC-NONBLOCK && has "$o" "O_NONBLOCK read, nothing queued: EAGAIN"
}

t_poll_reports_pollin_only_while_a_message_is_queued() {
	dc "$o" poll "$DEV" HMC-POLL && has "$o" "poll with nothing queued: timeout" &&
		has "$o" "poll with a message queued: POLLIN" && has "$o" "poll after reading: timeout"
}

t_write_while_another_thread_reads_the_same_fd() {
	dc "$o" threads "$DEV" HMC-THREADS &&
		has "$o" "write completed while the reader was blocked" && has "$o" "reader got the echo"
}

t_blocking_read_with_sa_restart_signals_is_restarted() {
	dc "$o" eintr "$DEV" HMC-EINTR &&
		has "$o" "blocking read, SIGALRM with SA_RESTART: restarted" &&
		has "$o" "a later message is read on the same fd"
}

t_every_buffer_in_flight_ebusy_until_a_read_frees_one() {
	dc "$o" exhaust "$DEV" HMC-EXHAUST &&
		has "$o" "write with every buffer in flight: EBUSY after " &&
		has "$o" "poll after reading one echo: no POLLOUT" && has "$o" "echoes arrived in order"
}

t_zero_lengths_and_a_short_read() {
	dc "$o" lengths "$DEV" HMC-LENGTHS && has "$o" "write of 0 bytes: 0, read of 0 bytes: 0" &&
		has "$o" "read of 10 bytes of a 200-byte message: 10, the rest dropped"
}

t_write_and_read_before_sethmcid_eio() {
	dc "$o" nosession "$DEV" && has "$o" "write before SETHMCID: EIO" &&
		has "$o" "read before SETHMCID: EIO"
}

t_sethmcid_twice_eio() {
	dc "$o" twice "$DEV" HMC-TWICE && has "$o" "second SETHMCID: EIO"
}

t_second_session_with_one_hmc_ebusy() {
	dc "$o" busy "$DEV" HMC-ONE HMC-TWO && has "$o" "SETHMCID on a second fd: EBUSY"
}

t_unknown_ioctl_einval() {
	dc "$o" badioctl "$DEV" && has "$o" "ioctl _IO(0xCC, 3): EINVAL" &&
		has "$o" "ioctl TCGETS-like 0x5401: EINVAL" && has "$o" "foreign QUERY: EINVAL"
}

t_write_above_mtu_eio_read_above_mtu_einval() {
	dc "$o" mtu "$DEV" HMC-MTU 4096 && has "$o" "write of MTU+1: EIO" &&
		has "$o" "read with MTU+1: EINVAL" && has "$o" "MTU round trip ok"
}

t_bad_pointers_efault_and_a_faulting_read_loses_its_message() {
	dc "$o" efault "$DEV" HMC-EFAULT || return 1
	for l in "QUERY into NULL: EFAULT" "REQUESTVMC into NULL: EFAULT" \
		"write from NULL before SETHMCID: EIO" "read into NULL before SETHMCID: EIO" \
		"SETHMCID from NULL: EFAULT" \
		"SETHMCID with the id running into an unmapped page: EFAULT" \
		"SETHMCID after the faulting ones: 0" "write from NULL: EFAULT" \
		"write from an unmapped page: EFAULT" \
		"read into NULL, a message queued: EFAULT" "after the read into NULL: the message is lost" \
		"after the read into an unmapped page: the message is lost" "echo after the faults: ok"; do
		has "$o" "$l" || return 1
	done
}

t_requestvmc_returns_the_drc_index_query_then_shows_it() {
	local drc
	dc "$o" requestvmc "$DEV" || return 1
	drc=$(sed -n 's/^requestvmc 0 drc \(0x[0-9a-f]*\)$/\1/p' "$o")
	[ -n "$drc" ] || { why "no DRC index"; return 1; }
	dc "$o.q" query "$DEV" && has "$o.q" "have_vmc 1 state 3 drc $drc"
}

t_blocking_read_gets_a_message_sent_with_vmcctl_hv_send() {
	bg_start "$o" open recv "$DEV" HMC-RECV && in_read "$bg_pid" || return 1
	host hv-send 0 68656c6c6f2066726f6d20687621 || { why "vmcctl hv send failed"; return 1; }
	bg_wait 30 && has "$o" "got 68656c6c6f2066726f6d20687621"
}

# The driver's reset path: the blocked reader gets EBADFD, the kernel logs
# the reset, and a new session opens once the hypervisor is back.
reset_seen() { # dmesg mark
	dmesg_since "$1" >"$o.dmesg"
	has "$o.dmesg" "CRQ recv: virtual adapter failed - resetting." &&
		has "$o.dmesg" "Reset to initial state."
}

t_hv_restart_resets_an_open_session_and_a_new_one_works() {
	local mark
	bg_start "$o" open recv "$DEV" HMC-RESTART && in_read "$bg_pid" || return 1
	mark=$(dmesg_mark)
	host hv-restart || { why "vmcctl hv restart failed"; return 1; }
	bg_wait 30
	has "$o" "read EBADFD" && reset_seen "$mark" && ready "$o.r" &&
		dc "$o.e" echo "$DEV" HMC-AFTER-RESTART 1 64 && has "$o.e" "echoed 1..64"
}

t_module_reloads_with_max_hmcs_2_and_max_mtu_8192() {
	rmmod ibmvmc || { why "rmmod failed"; return 1; }
	insmod "$KO" max_hmcs=2 max_mtu=8192 || { why "insmod max_hmcs=2 failed"; return 1; }
	[ "$(cat /sys/module/ibmvmc/parameters/max_hmcs)" = 2 ] || { why "max_hmcs not 2"; return 1; }
	ready "$o"
}

t_two_hmc_connections_with_max_hmcs_2() {
	local a b
	mkfifo /tmp/a.in /tmp/b.in
	devclient --linux session "$DEV" APPLICATION-A <>/tmp/a.in >"$o.a" 2>&1 &
	a=$!
	devclient --linux session "$DEV" APPLICATION-B <>/tmp/b.in >"$o.b" 2>&1 &
	b=$!
	for _ in $(seq 200); do
		grep -qx open "$o.a" && grep -qx open "$o.b" && break
		sleep 0.05
	done
	host hv-sessions-2 APPLICATION-A APPLICATION-B || why "the hypervisor does not list both"
	rc=$?
	kill "$a" "$b"
	wait "$a" "$b"
	rm -f /tmp/a.in /tmp/b.in
	[ $rc = 0 ] && has "$o.a" open && has "$o.b" open || return 1
	# Both at once, each getting only its own echoes.
	dc "$o.ea" echo "$DEV" ECHO-A 1 1500 &
	a=$!
	dc "$o.eb" echo "$DEV" ECHO-B 1 1500 &
	b=$!
	wait "$a" && wait "$b" && has "$o.ea" "echoed 1..1500" && has "$o.eb" "echoed 1..1500"
}

t_negotiated_mtu_8192_enforced() {
	dc "$o" mtu "$DEV" HMC-MTU-8K 8192 && has "$o" "write of MTU+1: EIO" &&
		has "$o" "MTU round trip ok"
}

t_hvd_sigkill_resets_sethmcid_eagain_until_it_is_back() {
	local mark
	bg_start "$o" open recv "$DEV" HMC-KILL && in_read "$bg_pid" || return 1
	mark=$(dmesg_mark)
	host hv-kill || { why "killing openvmc-hvd failed"; return 1; }
	bg_wait 30
	has "$o" "read EBADFD" && reset_seen "$mark" || return 1
	dc "$o.n" notready "$DEV" HMC-EARLY && has "$o.n" "SETHMCID before the channel is ready: EAGAIN"
}

t_hvd_restarted_with_the_router_backend_channel_ready_again() {
	host hv-start router || { why "restarting openvmc-hvd failed"; return 1; }
	ready "$o"
}

t_router_client_exchange_ops_100_echoes_close() {
	timeout 300 routerclient "$DEV" ROUTER-GUEST >"$o" 2>&1 &&
		has "$o" "ExchangeOps: rc 0x0000" && has "$o" "echo 1..100 bytes: rc 0x0000, data intact" &&
		has "$o" "Close: rc 0x0000" && has "$o" "every request answered once, nothing else"
}

t_kernel_log_has_no_oops_or_warning() {
	dmesg >"$o"
	# WARN() and BUG() lines, not the boot's "WARNING: nvram corruption".
	if grep -E "Oops|BUG:|WARNING: CPU|Call Trace|Kernel panic" "$o" >"$o.bad"; then
		why "kernel log: $(head -3 "$o.bad" | tr '\n' ' ')"
		return 1
	fi
}

if [ "$vmc" = 1 ]; then
	tests="module_loads_and_creates_dev_ibmvmc_0600 channel_becomes_ready
	echo_round_trips_every_size_1_to_4096 sethmcid_then_write_until_the_open_completes
	nonblocking_read_with_nothing_queued_eagain poll_reports_pollin_only_while_a_message_is_queued
	write_while_another_thread_reads_the_same_fd blocking_read_with_sa_restart_signals_is_restarted
	every_buffer_in_flight_ebusy_until_a_read_frees_one zero_lengths_and_a_short_read
	write_and_read_before_sethmcid_eio sethmcid_twice_eio second_session_with_one_hmc_ebusy
	unknown_ioctl_einval write_above_mtu_eio_read_above_mtu_einval
	bad_pointers_efault_and_a_faulting_read_loses_its_message
	requestvmc_returns_the_drc_index_query_then_shows_it
	blocking_read_gets_a_message_sent_with_vmcctl_hv_send
	hv_restart_resets_an_open_session_and_a_new_one_works
	module_reloads_with_max_hmcs_2_and_max_mtu_8192 two_hmc_connections_with_max_hmcs_2
	negotiated_mtu_8192_enforced hvd_sigkill_resets_sethmcid_eagain_until_it_is_back
	hvd_restarted_with_the_router_backend_channel_ready_again
	router_client_exchange_ops_100_echoes_close kernel_log_has_no_oops_or_warning"
else
	tests="module_loads_and_creates_dev_ibmvmc_0600 query_without_a_vmc_device_reports_state_0
	kernel_log_has_no_oops_or_warning"
fi

set -- $tests
say plan $#
for t in $tests; do
	log=/tmp/$t.log o=/tmp/$t.out bg_pid=
	: >"$log"
	if "t_$t"; then
		say ok "$t"
	else
		say fail "$t: $(grep '^WHY: ' "$log" | head -1 | cut -c6-)"
		for f in "$o"*; do
			[ -f "$f" ] && sed "s|^|@@ovmc out $t: ${f##*/}: |" "$f" | head -40
		done
		[ -z "$bg_pid" ] || kill -KILL "$bg_pid" 2>/dev/null
	fi
done
dmesg | grep -i ibmvmc | sed 's/^/@@ovmc dmesg /'
say end
