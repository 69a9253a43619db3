#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Install the Debian packages openvmc needs to build, test and run.
# Does nothing when they are all present; needs root otherwise.
set -euo pipefail
# dpkg-dev, debhelper, lintian: the Debian packages (scripts/packages.sh);
# systemd: systemd-analyze for the unit tests; socat: the control protocol by
# hand, as openvmc(1) shows it (tests/docs_test.py runs it).
# scripts/qemu.sh: cross compiler and libc for the guest programs and the
# module, QEMU's build dependencies, its firmware, the initramfs tools.
# clang and its runtime: the fuzz targets (fuzz/); valgrind: scripts/soak.sh --long.
# gnuplot-nox: the benchmark's plot (bench/plot.sh, scripts/bench.sh).
pkgs=(build-essential cmake pkg-config libfuse3-dev liburing-dev fuse3 tshark python3
	dpkg-dev debhelper lintian systemd socat
	gcc-powerpc64le-linux-gnu libc6-dev-ppc64el-cross ninja-build meson libglib2.0-dev
	libpixman-1-dev libfdt-dev zlib1g-dev flex bison qemu-system-data cpio xz-utils
	patch bc kmod
	clang libclang-rt-14-dev valgrind gnuplot-nox)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "openvmc: installing ${missing[*]}" >&2
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends "${missing[@]}"
