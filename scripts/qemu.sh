#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The Linux ibmvmc driver in a real kernel: Debian's ppc64el kernel booted
# in QEMU's pseries machine (TCG), its ibmvmc module talking to openvmc-hvd
# through QEMU's spapr-vmc device. Fetches what it needs from Debian's
# archive into a cache, builds QEMU, the module, the guest programs and an
# initramfs, then runs the guest tests (or a shell). See docs/qemu.md.
set -euo pipefail

version=0.1.0
top=$(cd "$(dirname "$0")/.." && pwd)
cache=${OPENVMC_CACHE:-/var/cache/openvmc}
builddir=${OPENVMC_BUILD:-$top/build}
mode=test
kernel_file= module_file=
timeout_s=${OPENVMC_GUEST_TIMEOUT:-600}
keep=0

usage() {
	cat <<EOF
usage: scripts/qemu.sh [OPTION]...
Boot Debian's ppc64el kernel in QEMU with the ibmvmc module and openvmc-hvd
behind QEMU's spapr-vmc device, and run the guest tests.

  --shell          an interactive guest shell with the channel up instead
                   of the tests (exit the shell to stop everything)
  --kernel FILE    boot this vmlinux instead of Debian's
  --module FILE    load this ibmvmc.ko instead of the one built here
  --prepare        fetch and build only
  --timeout SEC    kill a guest run that takes longer (default $timeout_s)
  --keep           keep the run directory (console log, captures, logs)
  -h, --help       this text
  --version        the version

Environment: OPENVMC_CACHE (downloads and builds, default /var/cache/openvmc),
OPENVMC_BUILD (openvmc's build directory, default build/: openvmc-hvd and
vmcctl come from there; built if missing).
Prints one line per guest test and ends with "N passed, N failed"; exits 0
when nothing failed, 1 otherwise, 2 for bad usage, 77 when something needed
cannot be had (outside CI).
EOF
}

while [ $# -gt 0 ]; do
	case $1 in
	--shell) mode=shell ;;
	--prepare) mode=prepare ;;
	--kernel) kernel_file=$(realpath "${2:?--kernel needs a file}"); shift ;;
	--module) module_file=$(realpath "${2:?--module needs a file}"); shift ;;
	--timeout) timeout_s=${2:?--timeout needs seconds}; shift ;;
	--keep) keep=1 ;;
	-h | --help) usage; exit 0 ;;
	--version) echo "qemu.sh (openvmc) $version"; exit 0 ;;
	*) echo "qemu.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
	esac
	shift
done
for f in "$kernel_file" "$module_file"; do
	[ -z "$f" ] || [ -f "$f" ] || { echo "qemu.sh: $f: no such file" >&2; exit 2; }
done

say() { echo "qemu.sh: $*" >&2; }
die() { say "$*"; exit 1; }
# Something needed is missing: a failure in CI, a skip elsewhere.
unavailable() {
	if [ "${CI:-}" = true ]; then
		say "cannot run the guest tests: $*"
		exit 1
	fi
	say "skipping the guest tests: $*"
	exit 77
}
sha() { sha256sum "$@" | cut -c1-16; }
sha_of_text() { printf '%s' "$1" | sha256sum | cut -c1-16; }

# ---- fetching, from the Debian archive the system's apt uses ----

apt_dir=$cache/apt
apt_conf=$apt_dir/apt.conf
apt_get() { apt-get -c "$apt_conf" -q -o APT::Sandbox::User=root "$@"; }
apt_cache() { apt-cache -c "$apt_conf" "$@"; }

# The system's Debian sources (deb822 or one-line) for its release, with
# deb-src and both architectures, in a private apt configuration: the
# system's own sources, lists and state are never touched.
apt_setup() {
	local code lists
	code=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	[ -n "$code" ] || die "no VERSION_CODENAME in /etc/os-release"
	mkdir -p "$apt_dir"/{sources.list.d,lists/partial,cache/archives/partial,state}
	: >"$apt_dir/status"
	cat >"$apt_conf" <<EOF
Dir::State "$apt_dir/state";
Dir::State::Lists "$apt_dir/lists";
Dir::State::status "$apt_dir/status";
Dir::Cache "$apt_dir/cache";
Dir::Cache::pkgcache "$apt_dir/cache/pkgcache.bin";
Dir::Cache::srcpkgcache "$apt_dir/cache/srcpkgcache.bin";
Dir::Etc::SourceList "/dev/null";
Dir::Etc::SourceParts "$apt_dir/sources.list.d";
APT::Architectures { "amd64"; "ppc64el"; };
EOF
	{
		for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
			[ -f "$f" ] || continue
			awk -v code="$code" '
			$1 == "deb" {
				opts = ""; i = 2
				if ($2 ~ /^\[/) {
					for (; i <= NF; i++) { opts = opts " " $i; if ($i ~ /\]$/) break }
					i++
				}
				if ($(i + 1) !~ ("^" code "(-|$)")) next
				printf "Types: deb deb-src\nURIs: %s\nSuites: %s\nComponents:", $i, $(i + 1)
				for (j = i + 2; j <= NF; j++) printf " %s", $j
				printf "\n"
				if (match(opts, /signed-by=[^] ]+/))
					printf "Signed-By: %s\n", substr(opts, RSTART + 10, RLENGTH - 10)
				printf "Architectures: amd64 ppc64el\n\n"
			}' "$f"
		done
		for f in /etc/apt/sources.list.d/*.sources; do
			[ -f "$f" ] || continue
			awk -v code="$code" '
			BEGIN { RS = ""; FS = "\n" }
			{
				keep = 0; out = ""
				for (i = 1; i <= NF; i++) {
					if ($i ~ /^#/ || $i ~ /^Architectures:/) continue
					if ($i ~ /^Types:/) { out = out "Types: deb deb-src\n"; continue }
					if ($i ~ /^Enabled: *no/) keep = -1
					if ($i ~ /^Suites:/ && $i ~ ("[ \t]" code "(-|[ \t]|$)") && keep == 0) keep = 1
					out = out $i "\n"
				}
				if (keep == 1) printf "%sArchitectures: amd64 ppc64el\n\n", out
			}' "$f"
		done
	} >"$apt_dir/sources.list.d/openvmc.sources.new"
	[ -s "$apt_dir/sources.list.d/openvmc.sources.new" ] ||
		unavailable "no Debian $code sources in the system's apt configuration"
	mv "$apt_dir/sources.list.d/openvmc.sources.new" "$apt_dir/sources.list.d/openvmc.sources"
	# The lists only choose the newest versions; a day old is new enough.
	lists=$(find "$apt_dir/lists" -maxdepth 1 -name '*InRelease' -mmin -1440 | head -1)
	if [ -z "$lists" ]; then
		say "updating the package lists (private to $apt_dir)"
		apt_get update >"$apt_dir/update.log" 2>&1 ||
			unavailable "apt-get update failed (see $apt_dir/update.log)"
	fi
}

# The candidate version of a package, or nothing.
candidate() {
	apt_cache policy "$1" 2>/dev/null | awk '/Candidate:/ { if ($2 != "(none)") print $2 }'
}

# Download PKG=VERSION into $cache/debs unless a file with its hash is
# there; prints the file's path.
fetch_deb() {
	local uri file size hash path
	read -r uri file size hash < <(apt_get download --print-uris "$1" 2>/dev/null) ||
		unavailable "$1 is not in the archive"
	path=$cache/debs/$file
	# A file checked once has its hash beside it.
	if [ -f "$path" ] && [ "$(cat "$path.hash" 2>/dev/null)" = "$hash" ]; then
		echo "$path"
		return
	fi
	if [ ! -f "$path" ] || [ "SHA256:$(sha256sum <"$path" | cut -d' ' -f1)" != "$hash" ]; then
		say "downloading $file ($((size / 1048576)) MiB)"
		mkdir -p "$cache/debs/partial"
		(cd "$cache/debs/partial" && apt_get download "$1" >/dev/null) ||
			unavailable "downloading $1 failed"
		mv "$cache/debs/partial/$file" "$path"
		[ "SHA256:$(sha256sum <"$path" | cut -d' ' -f1)" = "$hash" ] ||
			die "$file: the download does not have the archive's SHA256"
	fi
	echo "$hash" >"$path.hash"
	echo "$path"
}

declare -A deb
fetch_all() {
	local meta kver abi src_ver
	meta=$(apt_cache show --no-all-versions linux-image-powerpc64le:ppc64el 2>/dev/null |
		sed -n 's/^Depends: .*\(linux-image-\(6\.1\.0-[0-9]*\)-powerpc64le\) (= \([^)]*\)).*/\2 \3/p')
	[ -n "$meta" ] || unavailable "no linux-image-powerpc64le for ppc64el in the archive"
	read -r abi kver <<<"$meta"
	# The newest source of the same upstream version; the Debian revision
	# may differ (the module is built from it, not the image).
	src_ver=$(candidate linux-source-6.1)
	if [ "${src_ver%-*}" != "${kver%-*}" ]; then
		if apt_cache madison linux-source-6.1 | awk '{ print $3 }' | grep -qxF "$kver"; then
			src_ver=$kver
		else
			die "linux-source-6.1 is ${src_ver:-missing} but the newest kernel image" \
				"linux-image-$abi-powerpc64le is $kver: the module would not match the kernel"
		fi
	fi
	kernel_abi=$abi kernel_ver=$kver source_ver=$src_ver
	deb[image]=$(fetch_deb "linux-image-$abi-powerpc64le:ppc64el=$kver")
	deb[headers]=$(fetch_deb "linux-headers-$abi-powerpc64le:ppc64el=$kver")
	deb[common]=$(fetch_deb "linux-headers-$abi-common=$kver")
	deb[kbuild]=$(fetch_deb "linux-kbuild-6.1:amd64=$kver")
	deb[source]=$(fetch_deb "linux-source-6.1=$src_ver")
	deb[busybox]=$(fetch_deb "busybox-static:ppc64el=$(candidate busybox-static:ppc64el)")
}

# QEMU's Debian source package, unpacked once per .dsc.
qemu_source() {
	local uri file size hash dir
	read -r uri file size hash < <(apt_get source --print-uris qemu 2>/dev/null | grep "\.dsc'") ||
		unavailable "no qemu source package in the archive"
	dir=$cache/qemu/src-$(sha_of_text "$hash")
	if [ ! -f "$dir/.complete" ]; then
		say "downloading and unpacking QEMU's source package ($file)"
		rm -rf "$dir" "$dir.dl"
		mkdir -p "$dir.dl"
		(cd "$dir.dl" && apt_get source --download-only qemu >/dev/null 2>&1) ||
			unavailable "downloading QEMU's source failed"
		mkdir -p "$dir"
		dpkg-source --no-check --no-copy -x "$dir.dl/$file" "$dir/tree" >/dev/null
		rm -rf "$dir.dl"
		touch "$dir/.complete"
	fi
	qemu_pristine=$dir/tree
	qemu_src_key=$hash
}

# ---- building ----

qemu_configure_args=(--target-list=ppc64-softmmu --without-default-features
	--without-default-devices --with-devices-ppc64=openvmc --enable-fdt=system
	--disable-docs)

# The files of qemu/ (and our device config) laid over the pristine tree.
# Only files whose content changes are rewritten, so ninja rebuilds only
# what they touch; a file dropped from qemu/ goes back to pristine.
qemu_overlay() { # tree
	local tree=$1 stage f p want
	local -a files=()
	stage=$(mktemp -d "${TMPDIR:-/tmp}/ovmc-qemu-stage.XXXXXX")
	mkdir -p "$stage/configs/devices/ppc64-softmmu"
	cp "$top/guest/qemu-devices.mak" "$stage/configs/devices/ppc64-softmmu/openvmc.mak"
	files+=(configs/devices/ppc64-softmmu/openvmc.mak)
	for f in "$top"/qemu/hw/ppc/*.c; do
		[ -f "$f" ] || continue
		mkdir -p "$stage/hw/ppc"
		cp "$f" "$stage/hw/ppc/"
		files+=("hw/ppc/${f##*/}")
	done
	for p in "$top"/qemu/patches/*.patch; do
		[ -f "$p" ] || continue
		while read -r f; do
			files+=("$f")
			if [ ! -e "$stage/$f" ] && [ -f "$qemu_pristine/$f" ]; then
				mkdir -p "$stage/$(dirname "$f")"
				cp "$qemu_pristine/$f" "$stage/$f"
			fi
		done < <(sed -n 's|^+++ b/\([^[:space:]]*\).*|\1|p' "$p")
		patch -s -p1 -d "$stage" --no-backup-if-mismatch -f <"$p" ||
			{ rm -rf "$stage"; die "qemu/patches/${p##*/} does not apply to QEMU's source"; }
	done
	[ -f "$tree/.openvmc-overlay" ] && mapfile -t -O ${#files[@]} files <"$tree/.openvmc-overlay"
	for f in $(printf '%s\n' "${files[@]}" | sort -u); do
		want=
		if [ -f "$stage/$f" ]; then want=$stage/$f; elif [ -f "$qemu_pristine/$f" ]; then want=$qemu_pristine/$f; fi
		if [ -z "$want" ]; then
			rm -f "$tree/$f"
		elif ! cmp -s "$want" "$tree/$f"; then
			mkdir -p "$(dirname "$tree/$f")"
			cp "$want" "$tree/$f"
			say "QEMU source: $f changed"
		fi
	done
	(cd "$stage" && find . -type f | sed 's|^\./||' | sort) >"$tree/.openvmc-overlay"
	rm -rf "$stage"
}

build_qemu() {
	local key dir log
	key=$(sha_of_text "$qemu_src_key ${qemu_configure_args[*]}")
	dir=$cache/qemu/build-$key
	log=$dir/build.log
	if [ ! -f "$dir/.tree-complete" ]; then
		rm -rf "$dir"
		mkdir -p "$dir"
		cp -a "$qemu_pristine" "$dir/src"
		touch "$dir/.tree-complete"
	fi
	qemu_overlay "$dir/src"
	if [ ! -f "$dir/build/build.ninja" ]; then
		say "configuring QEMU (ppc64-softmmu, pseries only)"
		rm -rf "$dir/build"
		mkdir -p "$dir/build"
		(cd "$dir/build" && ../src/configure "${qemu_configure_args[@]}") >"$log" 2>&1 ||
			{ tail -30 "$log" >&2; die "QEMU's configure failed (log: $log)"; }
	fi
	qemu_bin=$dir/build/qemu-system-ppc64
	[ -x "$qemu_bin" ] || say "building QEMU (minutes; log: $log)"
	ninja -C "$dir/build" -j"$(nproc)" qemu-system-ppc64 >>"$log" 2>&1 ||
		{ tail -40 "$log" >&2; die "building QEMU failed (log: $log)"; }
}

# Debian's kernel image, headers and kbuild tools, unpacked once per version.
kernel_tree() {
	local dir=$cache/kernel/$kernel_ver
	if [ ! -f "$dir/.complete" ]; then
		say "unpacking Debian's kernel $kernel_abi ($kernel_ver)"
		rm -rf "$dir"
		mkdir -p "$dir/root"
		for d in image headers common kbuild; do
			dpkg-deb -x "${deb[$d]}" "$dir/root"
		done
		# The headers' Makefile includes the common tree by absolute path.
		sed -i "s|^include /usr/src/|include $dir/root/usr/src/|" \
			"$dir/root/usr/src/linux-headers-$kernel_abi-powerpc64le/Makefile"
		touch "$dir/.complete"
	fi
	kernel_root=$dir/root
	vmlinux=$dir/root/boot/vmlinux-$kernel_abi-powerpc64le
	[ -f "$vmlinux" ] || die "no vmlinux in ${deb[image]}"
}

# drivers/misc/ibmvmc.[ch] of Debian's linux-source, built as a module
# against the headers (Module.symvers and vermagic of Debian's kernel).
build_module() {
	local key dir src kdir want got
	key=$(sha_of_text "$source_ver $kernel_ver $(sha "$top/guest/Kbuild")")
	dir=$cache/module/$key
	if [ ! -f "$dir/ibmvmc.ko" ]; then
		src=$cache/linux-source/$source_ver
		if [ ! -f "$src/ibmvmc.c" ]; then
			say "extracting drivers/misc/ibmvmc.[ch] from linux-source-6.1 $source_ver"
			mkdir -p "$src.tmp"
			dpkg-deb --fsys-tarfile "${deb[source]}" |
				tar -xO ./usr/src/linux-source-6.1.tar.xz |
				tar -xJ -C "$src.tmp" --strip-components=3 \
					linux-source-6.1/drivers/misc/ibmvmc.c linux-source-6.1/drivers/misc/ibmvmc.h
			mv "$src.tmp" "$src"
		fi
		say "building ibmvmc.ko for $kernel_abi-powerpc64le"
		rm -rf "$dir"
		mkdir -p "$dir"
		cp "$src/ibmvmc.c" "$src/ibmvmc.h" "$top/guest/Kbuild" "$dir/"
		kdir=$kernel_root/usr/src/linux-headers-$kernel_abi-powerpc64le
		make -C "$kdir" M="$dir" ARCH=powerpc CROSS_COMPILE=powerpc64le-linux-gnu- \
			-j"$(nproc)" modules >"$dir/build.log" 2>&1 ||
			{ tail -30 "$dir/build.log" >&2; rm -f "$dir/ibmvmc.ko"; die "building ibmvmc.ko failed"; }
	fi
	module=$dir/ibmvmc.ko
	want=$(find "$kernel_root/lib/modules/$kernel_abi-powerpc64le/kernel/drivers/misc" -name '*.ko' | head -1)
	if [ -n "$want" ]; then
		want=$(modinfo -F vermagic "$want") got=$(modinfo -F vermagic "$module")
		[ "$want" = "$got" ] || die "ibmvmc.ko vermagic '$got' differs from the kernel's '$want'"
	fi
}

# The programs the guest runs, static for ppc64le with Debian's cross libc.
guest_programs() {
	local srcs=(tests/devclient.c tests/routerclient.c) key dir s
	local cflags=(-std=gnu17 -O2 -static -Wall -Wextra -D_GNU_SOURCE -I"$top/include")
	key=$(cd "$top" && sha_of_text "${cflags[*]} $(sha "${srcs[@]}" include/openvmc/*.h)")
	dir=$cache/guest-bin/$key
	if [ ! -f "$dir/.complete" ]; then
		say "cross-compiling the guest programs"
		rm -rf "$dir"
		mkdir -p "$dir"
		for s in "${srcs[@]}"; do
			powerpc64le-linux-gnu-gcc "${cflags[@]}" -o "$dir/$(basename "$s" .c)" "$top/$s" -pthread ||
				die "cross-compiling $s failed"
		done
		touch "$dir/.complete"
	fi
	guest_bin=$dir
}

prepare() {
	local t0=$SECONDS
	mkdir -p "$cache"
	exec 9>"$cache/lock"
	if ! flock -n 9; then
		say "waiting for another qemu.sh using $cache"
		flock 9
	fi
	command -v powerpc64le-linux-gnu-gcc >/dev/null ||
		unavailable "powerpc64le-linux-gnu-gcc is missing (scripts/deps.sh installs it)"
	apt_setup
	fetch_all
	qemu_source
	build_qemu
	kernel_tree
	[ -n "$module_file" ] || build_module
	[ -z "$module_file" ] || module=$module_file
	[ -z "$kernel_file" ] || vmlinux=$kernel_file
	guest_programs
	flock -u 9
	say "ready in $((SECONDS - t0)) s: kernel $kernel_abi ($kernel_ver), QEMU $qemu_bin"
}

# ---- running ----

run= hvd_pid= guest_pid= fake_pid= hvd_runs=0
cleanup() {
	local rc=$?
	[ -z "$guest_pid" ] || kill -KILL "$guest_pid" 2>/dev/null || true
	[ -z "$fake_pid" ] || kill -KILL "$fake_pid" 2>/dev/null || true
	stop_hvd
	if [ -n "$run" ]; then
		if [ "$keep" = 1 ] || { [ "$mode" = test ] && [ "$rc" != 0 ]; }; then
			say "run directory kept: $run"
		else
			rm -rf "$run"
		fi
	fi
}

stop_hvd() {
	[ -n "$hvd_pid" ] || return 0
	kill -TERM "$hvd_pid" 2>/dev/null || true
	for _ in $(seq 50); do
		kill -0 "$hvd_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$hvd_pid" 2>/dev/null || true
	wait "$hvd_pid" 2>/dev/null || true
	hvd_pid=
}

# openvmc-hvd for the guest, its capture numbered by start.
start_hvd() { # backend
	hvd_runs=$((hvd_runs + 1))
	rm -f "$run/hv.ctl" "$run/guest/vmc.sock"
	"$hvd_bin" --foreground --socket "$run/hv/sock" --guest-socket "$run/guest/vmc.sock" \
		--control "$run/hv.ctl" --capture "$run/capture-$hvd_runs.pcapng" \
		--hmcs 2 --mtu 8192 --backend "$1" >>"$run/hvd.log" 2>&1 &
	hvd_pid=$!
	for _ in $(seq 100); do
		[ -S "$run/guest/vmc.sock" ] && [ -S "$run/hv.ctl" ] && return 0
		kill -0 "$hvd_pid" 2>/dev/null || break
		sleep 0.1
	done
	tail -5 "$run/hvd.log" >&2
	say "openvmc-hvd did not start (log: $run/hvd.log)"
	return 1
}

openvmc_programs() {
	hvd_bin=$builddir/src/daemon/openvmc-hvd
	vmcctl_bin=$builddir/src/tools/vmcctl
	if [ ! -x "$hvd_bin" ] || [ ! -x "$vmcctl_bin" ]; then
		say "building openvmc in $builddir"
		cmake -S "$top" -B "$builddir" >/dev/null && cmake --build "$builddir" -j"$(nproc)" >/dev/null ||
			die "building openvmc failed"
	fi
	# The channel needs QEMU's spapr-vmc device and the daemon's guest socket.
	local dev=0 sock=0
	"$qemu_bin" -M pseries -device help 2>/dev/null | grep -q '"spapr-vmc"' && dev=1
	"$hvd_bin" --help 2>&1 | grep -q -- --guest-socket && sock=1
	vmc=$((dev & sock)) qemu_vmc=$dev
	if [ "$dev" = 0 ]; then
		say "QEMU has no spapr-vmc device: only the module is tested, not the channel"
	elif [ "$sock" = 0 ]; then
		say "$hvd_bin has no --guest-socket: only the module is tested, not the channel"
	fi
}

initramfs() {
	local d=$run/initramfs
	mkdir -p "$d"/{bin,lib,proc,sys,dev,tmp,run,root}
	dpkg-deb --fsys-tarfile "${deb[busybox]}" | tar -xO ./bin/busybox >"$d/bin/busybox"
	chmod 755 "$d/bin/busybox"
	install -m 755 "$top/guest/init" "$d/init"
	install -m 755 "$top/guest/tests.sh" "$d/tests.sh"
	install -m 644 "$module" "$d/lib/ibmvmc.ko"
	install -m 755 "$guest_bin/devclient" "$guest_bin/routerclient" "$d/bin/"
	(cd "$d" && find . | cpio -o -H newc -R 0:0 --quiet) | gzip -1 >"$run/initramfs.gz"
}

qemu_args() { # mode
	guest_args=(-M pseries,x-vof=on -cpu power9 -m 1G -smp 1 -nodefaults -display none
		-L /usr/share/qemu -kernel "$vmlinux" -initrd "$run/initramfs.gz" -no-reboot
		-append "console=hvc0 loglevel=3 ovmc.mode=$1 ovmc.vmc=$vmc")
	# The console: this script's pipes for the tests, the terminal (with
	# QEMU's monitor on Ctrl-A C) for a shell.
	if [ "$1" = test ]; then
		guest_args+=(-chardev stdio,id=con,signal=off -serial chardev:con -monitor none)
	else
		guest_args+=(-serial mon:stdio)
	fi
	if [ "$vmc" = 1 ]; then
		guest_args+=(-chardev "socket,id=vmc0,path=$run/guest/vmc.sock,reconnect=1"
			-device spapr-vmc,chardev=vmc0)
	fi
}

# What the guest asks the host to do during the tests (tests.sh "host").
host_step() {
	local out
	case $1 in
	hv-send) "$vmcctl_bin" hv -c "$run/hv.ctl" send --index "$2" --hex "$3" >&2 ;;
	hv-restart) "$vmcctl_bin" hv -c "$run/hv.ctl" restart >&2 ;;
	hv-sessions-2)
		out=$("$vmcctl_bin" hv -c "$run/hv.ctl" sessions) || return 1
		echo "$out" >"$run/sessions.txt"
		grep -q "index 0: open" <<<"$out" && grep -q "index 1: open" <<<"$out" &&
			grep -qF "\"$2\"" <<<"$out" && grep -qF "\"$3\"" <<<"$out"
		;;
	hv-kill)
		kill -KILL "$hvd_pid" && wait "$hvd_pid" 2>/dev/null
		hvd_pid=
		;;
	hv-start) start_hvd "$2" ;;
	*) say "unknown host step '$1'"; return 1 ;;
	esac
}

pass=0 fail=0
result() { # ok|FAIL name [why]
	if [ "$1" = ok ]; then
		pass=$((pass + 1))
		echo "ok $2"
	else
		fail=$((fail + 1))
		echo "FAIL $2${3:+: $3}"
	fi
}

# The capture of the router phase, decoded by the project's dissector.
check_capture() {
	local cap=$run/capture-$hvd_runs.pcapng lua=$top/dissector/openvmc.lua out
	if ! command -v tshark >/dev/null; then
		result FAIL capture_of_the_guest_channel_decodes_with_the_dissector "tshark missing"
		return
	fi
	out=$(tshark -X "lua_script:$lua" -r "$cap" -T fields -E separator=' ' \
		-e openvmc.vmc.type -e openvmc.router.opcode -e openvmc.router.flags -e openvmc.router.rc \
		2>"$run/tshark.err") || true
	echo "$out" >"$run/capture.txt"
	# Capabilities both ways, ExchangeOps answered Good, 100 echo responses.
	if grep -q '^0x01 ' <<<"$out" && grep -q '^0x81 *$' <<<"$out" &&
		grep -q ' 0x0001 0x40 0x0000$' <<<"$out" &&
		[ "$(grep -c ' 0x0103 0x40 0x0000$' <<<"$out")" -ge 100 ]; then
		result ok capture_of_the_guest_channel_decodes_with_the_dissector
	else
		result FAIL capture_of_the_guest_channel_decodes_with_the_dissector \
			"missing capabilities, ExchangeOps or echoes in $cap (see $run/capture.txt)"
	fi
}

# QEMU's device against a hypervisor that breaks each rule of the guest
# link once (guest/hostile-hv.py): the link must close each time, QEMU
# must live on and reconnect, and a good hypervisor must keep the link.
check_hostile_hypervisor() {
	local name=device_closes_the_link_on_each_bad_message_and_lives_on out alive=0 rc=0
	python3 "$top/guest/hostile-hv.py" "$run/hostile.sock" >"$run/hostile.txt" 2>&1 &
	fake_pid=$!
	for _ in $(seq 100); do
		[ -S "$run/hostile.sock" ] && break
		sleep 0.05
	done
	# Paused vCPUs (-S): only the device and its chardev run.
	"$qemu_run" -M pseries,x-vof=on -cpu power9 -m 256M -nodefaults -display none -S \
		-L /usr/share/qemu -kernel "$vmlinux" -serial null -monitor none \
		-chardev "socket,id=vmc0,path=$run/hostile.sock,reconnect=1" \
		-device spapr-vmc,chardev=vmc0 2>"$run/hostile-qemu.err" &
	guest_pid=$!
	wait "$fake_pid" || rc=$?
	fake_pid=
	kill -0 "$guest_pid" 2>/dev/null && alive=1
	kill -KILL "$guest_pid" 2>/dev/null || true
	wait "$guest_pid" 2>/dev/null || true
	guest_pid=
	out=$(grep -c '^ok ' "$run/hostile.txt" || true)
	if [ "$rc" = 0 ] && [ "$alive" = 1 ]; then
		result ok "$name"
		echo "  $out cases, $(grep -c 'closing the link' "$run/hostile-qemu.err" || true) links closed by QEMU" >&2
	elif [ "$alive" = 0 ]; then
		result FAIL "$name" "QEMU died: $(tail -1 "$run/hostile-qemu.err")"
	else
		result FAIL "$name" "$(grep -v '^ok ' "$run/hostile.txt" | head -1)"
	fi
}

run_tests() {
	local line planned= seen=0 ended=0 left rc
	coproc GUEST { exec "$qemu_run" "${guest_args[@]}" 2>"$run/qemu.err"; }
	guest_pid=$GUEST_PID
	exec 7<&"${GUEST[0]}" 8>&"${GUEST[1]}"
	local deadline=$((SECONDS + timeout_s))
	while :; do
		left=$((deadline - SECONDS))
		if [ "$left" -le 0 ]; then
			result FAIL "guest_finished_within_${timeout_s}_s" "killed"
			break
		fi
		IFS= read -r -t "$left" line <&7 || { [ $? -gt 128 ] && continue; break; }
		line=${line%$'\r'}
		printf '%s\n' "$line" >>"$run/console.log"
		case $line in *"@@ovmc "*) line=${line#*@@ovmc } ;; *) continue ;; esac
		case $line in
		"plan "*) planned=${line#plan } ;;
		"ok "*) seen=$((seen + 1)); result ok "${line#ok }" ;;
		"fail "*)
			seen=$((seen + 1))
			line=${line#fail }
			result FAIL "${line%%: *}" "${line#*: }"
			;;
		"out "* | "note "*) echo "  ${line#* }" >&2 ;;
		"dmesg "*) echo "${line#dmesg }" >>"$run/dmesg.txt" ;;
		"host "*)
			rc=0
			# shellcheck disable=SC2086 # the guest's words
			host_step ${line#host } || rc=$?
			printf 'reply %d\n' "$rc" >&8
			;;
		end) ended=1 ;;
		esac
	done
	exec 7<&- 8>&-
	# A guest that ended powers off; one that hung is killed.
	for _ in $(seq 50); do
		kill -0 "$guest_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$guest_pid" 2>/dev/null || true
	wait "$guest_pid" 2>/dev/null || true
	guest_pid=
	if [ -z "$planned" ]; then
		tail -20 "$run/console.log" "$run/qemu.err" >&2 2>/dev/null || true
		result FAIL guest_boots_and_runs_the_tests "no test plan on the console (see $run/console.log)"
	else
		while [ "$seen" -lt "$planned" ]; do
			seen=$((seen + 1))
			result FAIL "guest_test_$seen" "did not run (the guest stopped or hung)"
		done
		[ "$ended" = 1 ] || tail -20 "$run/console.log" >&2
	fi
	stop_hvd
	[ "$vmc" = 0 ] || check_capture
}

prepare
[ "$mode" = prepare ] && exit 0
openvmc_programs
trap cleanup EXIT
trap 'exit 130' INT TERM
# Not /tmp/ovmc-*: test.sh sweeps those that no process uses, and a guest
# run holds no file open in its directory. Leftovers of a killed run go here.
for d in "${TMPDIR:-/tmp}"/openvmc-guest.*; do
	[ -f "$d/pid" ] && ! kill -0 "$(cat "$d/pid")" 2>/dev/null && rm -rf "$d"
done
run=$(mktemp -d "${TMPDIR:-/tmp}/openvmc-guest.XXXXXX")
echo $$ >"$run/pid"
mkdir -m 700 "$run/hv" "$run/guest"
# A private copy: another run may rebuild QEMU under us.
cp "$qemu_bin" "$run/qemu-system-ppc64"
qemu_run=$run/qemu-system-ppc64
initramfs
qemu_args "$mode"
if [ "$vmc" = 1 ]; then
	start_hvd "${OPENVMC_GUEST_BACKEND:-echo}" || exit 1
fi
if [ "$mode" = shell ]; then
	[ "$vmc" = 0 ] || say "hypervisor control: $vmcctl_bin hv -c $run/hv.ctl sessions|send|restart"
	say "booting; Ctrl-A X quits QEMU"
	"$qemu_run" "${guest_args[@]}"
	exit 0
fi
t0=$SECONDS
[ "$qemu_vmc" = 0 ] || check_hostile_hypervisor
say "booting the guest ($kernel_abi, QEMU pseries, TCG)"
run_tests
say "guest run took $((SECONDS - t0)) s"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
