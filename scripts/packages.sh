#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The Debian packages, end to end: build libopenvmc0, libopenvmc-dev and
# openvmc from a copy of the tree (dpkg-buildpackage -us -uc -b), check
# them with lintian (no error), install them, run the demo with the
# installed programs, check that tshark decodes an installed program's
# capture with the installed dissector and no -X, and remove them again.
#
#   scripts/packages.sh [--check]   (--check: also run the test suite in
#                                    the package build, dh_auto_test)
#
# scripts/test.sh calls it after the suite has run, so by default the
# package build skips its own test run (DEB_BUILD_OPTIONS=nocheck). Needs
# root (dpkg -i); leaves nothing installed that was not installed before,
# and nothing in the source tree. Packages and logs stay in
# $OVMC_PACKAGES_OUT when that is set.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
check=
[ "${1:-}" = --check ] && check=1
scripts/deps.sh
pkgs=(openvmc libopenvmc-dev libopenvmc0)
version=$(dpkg-parsechangelog -l debian/changelog -S Version)
work=$(mktemp -d /tmp/openvmc-packages.XXXXXX)
installed=()
pid=
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	if [ -n "${cap:-}" ] && grep -qs " $cap/run/ibmvmc " /proc/self/mountinfo; then
		umount -l "$cap/run/ibmvmc" || true
	fi
	if [ ${#installed[@]} -gt 0 ]; then
		echo "== removing the packages"
		dpkg --purge "${installed[@]}" >/dev/null || echo "warning: dpkg --purge failed" >&2
	fi
	if [ -n "${OVMC_PACKAGES_OUT:-}" ]; then
		mkdir -p "$OVMC_PACKAGES_OUT"
		cp "$work"/*.deb "$work"/*.log "$OVMC_PACKAGES_OUT"/ 2>/dev/null || true
	fi
	rm -rf --one-file-system "$work"
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }

step "copying the tree ($work/openvmc-$version)"
mkdir "$work/openvmc-$version"
if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# What git knows or would add: no build dirs, no leftovers.
	git -C "$top" ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
		tar --null -T - -cf - | tar -xf - -C "$work/openvmc-$version"
else
	tar --exclude='./build*' --exclude=./debian/tmp -cf - . | tar -xf - -C "$work/openvmc-$version"
fi

step "dpkg-buildpackage -us -uc -b${check:- (nocheck: the suite ran already)}"
opts="parallel=$(nproc)"
[ -n "$check" ] || opts="$opts nocheck"
(cd "$work/openvmc-$version" && DEB_BUILD_OPTIONS=$opts dpkg-buildpackage -us -uc -b) \
	>"$work/build.log" 2>&1 || { tail -60 "$work/build.log"; echo "package build failed" >&2; exit 1; }
ls "$work"/*.deb | sed 's|.*/|  |'

step "lintian"
changes=$(ls "$work"/*.changes)
lintian --fail-on error --display-info "$changes" >"$work/lintian.log" 2>&1 || {
	cat "$work/lintian.log"
	echo "lintian reports errors" >&2
	exit 1
}
sed 's/^/  /' "$work/lintian.log"

# One run at a time on a machine: the packages are system-wide.
exec 9>/run/lock/openvmc-packages.lock
flock -w 600 9 || { echo "another packages.sh holds the lock" >&2; exit 1; }
for p in "${pkgs[@]}"; do
	if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		echo "$p is installed already: it is replaced, and stays installed" >&2
	else
		installed+=("$p")
	fi
done

step "installing"
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends \
	"$work"/libopenvmc0_*.deb "$work"/libopenvmc-dev_*.deb "$work"/openvmc_*.deb >"$work/install.log" 2>&1 ||
	{ cat "$work/install.log"; exit 1; }
dpkg -L openvmc | grep -E '^/usr/s?bin/|wireshark|systemd/system/|bash-completion' | sed 's/^/  /'

step "the demo, with the installed programs"
OVMC_PROGRAMS=installed scripts/demo.sh

step "tshark reads an installed program's capture with the installed dissector (no -X)"
cap=$work/cap
mkdir "$cap"
/usr/bin/openvmc --capture "$cap/vmc.pcapng" --control "$cap/ctl" "$cap/run" 2>"$cap/log" &
pid=$!
OPENVMC_DEVICE=$cap/run/ibmvmc
export OPENVMC_DEVICE
for _ in $(seq 100); do grep -q "device ready at" "$cap/log" && break; sleep 0.1; done
/usr/bin/vmcctl query --wait-ready >/dev/null
/usr/bin/vmcctl open --hmc-id packages --message hello >/dev/null
kill -TERM "$pid"
wait "$pid"
pid=
tshark -r "$cap/vmc.pcapng" -Y 'openvmc.vmc.type == 0x06' -T fields -e openvmc.vmc.msglen \
	>"$cap/fields" 2>"$cap/tshark.err" || { cat "$cap/tshark.err"; exit 1; }
[ "$(sort -u "$cap/fields")" = 5 ] || {
	cat "$cap/tshark.err"
	echo "tshark without -X did not decode the capture: $(cat "$cap/fields")" >&2
	exit 1
}
echo "  tshark: $(wc -l <"$cap/fields") SIGNAL entries of 5 bytes decoded"
echo
echo "packages: built, lintian clean of errors, installed, demo ran, dissector loaded"
