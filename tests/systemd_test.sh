#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The installed systemd units, checked offline (PID 1 need not be
# systemd): `systemd-analyze verify` clean, `systemd-analyze security`
# exposure 4.0 or lower, readiness and ordering as documented; and what
# their hardening relies on: the hypervisor daemon serving as an
# unprivileged user, a root openvmcd attaching to it.
#
# Environment: as install_test.sh (the tree the install fixture made).

# shellcheck disable=SC2016 # the patterns hold literal $ and ${}
src=$OVMC_SOURCE_DIR
dest=$OVMC_DEST
units=(openvmc-hvd openvmcd)

unit_file() {
	local f
	f=$(find "$dest" -name "$1.service" -path '*/systemd/system/*' | head -1)
	[ -n "$f" ] || fail "$1.service not installed"
	printf '%s\n' "$f"
}

# Copies of the installed units whose programs are those of the staging
# tree (verify checks that ExecStart= is executable), in directory $1.
staged_units() {
	local u
	for u in "${units[@]}"; do
		sed -e "s|=$OVMC_SBINDIR/|=$dest$OVMC_SBINDIR/|" "$(unit_file "$u")" >"$1/$u.service"
	done
}

test_units_pass_systemd_analyze_verify() {
	local d out u
	command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed"
	scratch d
	staged_units "$d"
	# Documentation=man:... is checked against the installed pages (by
	# man(1): build machines may have none).
	local man=()
	command -v man >/dev/null || man=(--man=no)
	out=$(MANPATH=$dest$OVMC_MANDIR systemd-analyze verify "${man[@]}" "$d/openvmc-hvd.service" \
		"$d/openvmcd.service" 2>&1) || fail "verify: $out"
	for u in openvmc-hvd openvmcd; do
		[ -f "$dest$OVMC_MANDIR/man8/$u.8" ] || fail "$u(8), which the unit cites, is not installed"
	done
	[ -z "$out" ] || fail "verify warns: $out"
}

test_units_expose_4_or_less_in_systemd_analyze_security() {
	local d u level
	command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed"
	scratch d
	staged_units "$d"
	for u in "${units[@]}"; do
		# --threshold is on the 0-100 scale of the 0.0-10.0 level shown.
		systemd-analyze security --offline=true --threshold=40 "$d/$u.service" >"$d/$u.txt" 2>&1 ||
			fail "$u: $(grep -F 'Overall exposure' "$d/$u.txt")"
		level=$(sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p' "$d/$u.txt")
		[ -n "$level" ] || fail "$u: no exposure level in $(cat "$d/$u.txt")"
		echo "$u: exposure $level"
	done
}

test_units_notify_readiness_and_order_driver_after_hypervisor() {
	local hvd drv
	hvd=$(unit_file openvmc-hvd)
	drv=$(unit_file openvmcd)
	for f in "$hvd" "$drv"; do
		grep -qx 'Type=notify' "$f" || fail "$f is not Type=notify"
		grep -q '^RuntimeDirectory=' "$f" || fail "$f has no RuntimeDirectory="
		grep -q '^EnvironmentFile=-' "$f" || fail "$f has no optional EnvironmentFile="
		grep -q -- '--foreground' "$f" || fail "$f: a forking daemon is not its main process"
	done
	grep -qx 'After=openvmc-hvd.service' "$drv" || fail "openvmcd is not ordered after openvmc-hvd"
	grep -qx 'Wants=openvmc-hvd.service' "$drv" || fail "openvmcd does not pull in openvmc-hvd"
	grep -qx 'DynamicUser=yes' "$hvd" || fail "openvmc-hvd runs as root"
	# Both agree on the hypervisor's socket, in the hypervisor's directory.
	grep -q -- "--socket /run/$(sed -n 's/^RuntimeDirectory=//p' "$hvd")/hv.sock " "$hvd" ||
		fail "openvmc-hvd's socket is not in its RuntimeDirectory"
	[ "$(grep -o -- '--socket [^ ]*' "$hvd")" = "$(grep -o -- '--socket [^ ]*' "$drv")" ] ||
		fail "the units name different hypervisor sockets"
	grep -q -- "--control /run/$(sed -n 's/^RuntimeDirectory=//p' "$drv")/" "$drv" ||
		fail "openvmcd's control socket is not in its RuntimeDirectory"
}

# Every variable ExecStart= uses has a default (Environment=) and is in
# the installed environment file, which is VAR=value lines only.
test_environment_files_define_what_the_units_use() {
	local u unit env var
	for u in "${units[@]}"; do
		unit=$(unit_file "$u")
		env=$(sed -n 's/^EnvironmentFile=-//p' "$unit")
		[ -f "$dest$env" ] || fail "$u: $env not installed"
		if grep -v '^#' "$dest$env" | grep -v '^$' | grep -qvE '^[A-Z_]+=("[^"]*"|[^ "]*)$'; then
			fail "$env: not VAR=value: $(grep -v '^#' "$dest$env" | grep -v '^$')"
		fi
		for var in $(grep '^ExecStart=' "$unit" | grep -oE '\$\{?[A-Z_]+' | tr -d '${' | sort -u); do
			grep -q "^$var=" "$dest$env" || fail "$u: \$$var is not in $env"
			case $var in
			*_OPTIONS) ;; # empty is the default: no word at all ($VAR, not ${VAR})
			*) grep -q "^Environment=$var=" "$unit" || fail "$u: \$$var has no default" ;;
			esac
		done
	done
}

test_udev_rule_tags_the_cuse_device_the_daemons_create() {
	local rule
	rule=$(find "$dest" -name '70-openvmc.rules' -path '*/udev/rules.d/*' | head -1)
	[ -n "$rule" ] || fail "udev rule not installed"
	grep -qE '^SUBSYSTEM=="cuse", KERNEL=="ibmvmc", TAG\+="systemd"$' "$rule" || fail "$(cat "$rule")"
	# The name the programs give a CUSE device without --device.
	grep -q '"ibmvmc"' "$src/src/daemon/opts.c" || fail "the programs' CUSE name changed"
	grep -qE 'MODE|GROUP|OWNER' <(grep -v '^#' "$rule") && fail "the rule fights --mode/--group"
	true
}

# wait_for_log FILE TEXT: until a daemon logged TEXT (20 s at most).
wait_for_log() {
	for _ in $(seq 400); do
		grep -qF -- "$2" "$1" && return 0
		sleep 0.05
	done
	fail "no \"$2\" in $1: $(cat "$1")"
}

# DynamicUser=: openvmc-hvd serves as a user without privileges, and the
# root openvmcd (CAP_DAC_OVERRIDE) attaches through its private directory.
test_hvd_as_unprivileged_user_serves_a_root_openvmcd() {
	local d hvd drv
	scratch d
	# What RuntimeDirectory= makes for the dynamic user.
	chmod 0711 "$d"
	install -d -o nobody -g nogroup -m 0700 "$d/hv"
	# The program and its library where nobody can read them (the build
	# tree may be in a private directory).
	install -d -m 0755 "$d/bin"
	cp "$OVMC_BUILD_DIR/src/daemon/openvmc-hvd" "$OVMC_BUILD_DIR"/libopenvmc.so.0 "$d/bin/"
	setpriv --reuid=nobody --regid=nogroup --clear-groups env LD_LIBRARY_PATH="$d/bin" "$d/bin/openvmc-hvd" \
		--foreground --socket "$d/hv/hv.sock" --control "$d/hv/hv.ctl" 2>"$d/hvd.log" &
	hvd=$!
	defer "kill $hvd 2>/dev/null; wait $hvd 2>/dev/null"
	"$OVMC_BUILD_DIR/src/daemon/openvmcd" --foreground --socket "$d/hv/hv.sock" \
		--control "$d/drv.ctl" "$d/dev" 2>"$d/drv.log" &
	drv=$!
	defer "kill $drv 2>/dev/null; wait $drv 2>/dev/null"
	wait_for_log "$d/drv.log" "device ready at"
	OPENVMC_DEVICE=$d/dev/ibmvmc "$OVMC_BUILD_DIR/src/tools/vmcctl" query --wait-ready=20000 \
		>"$d/query" 2>&1 || { cat "$d/hvd.log" "$d/drv.log" >&2; fail "$(cat "$d/query")"; }
	[ "$(stat -c %U "$d/hv")" = nobody ] || fail "socket directory owned by $(stat -c %U "$d/hv")"
	grep -q "attached to the hypervisor" "$d/drv.log" || fail "openvmcd: $(cat "$d/drv.log")"
	kill -TERM "$drv"
	wait "$drv" || fail "openvmcd did not stop cleanly"
	kill -TERM "$hvd"
	wait "$hvd" || fail "openvmc-hvd did not stop cleanly"
}

# shellcheck source=tests/harness.sh
. "$(dirname "$0")/harness.sh"
