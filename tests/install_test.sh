#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `cmake --install` into a staging tree (DESTDIR), as a packager does, and
# what a user does next: build a program against it with pkg-config and
# with find_package, run the installed programs, uninstall.
#
# Environment (tests/install.cmake): OVMC_SOURCE_DIR, OVMC_BUILD_DIR,
# OVMC_DEST (the staging tree, filled by the setup test), OVMC_PREFIX and
# the full install dirs OVMC_BINDIR, OVMC_SBINDIR, OVMC_LIBDIR,
# OVMC_INCLUDEDIR, OVMC_DOCDIR, OVMC_MANDIR; OVMC_SAN_FLAGS, the
# sanitizers the library was built with.

# shellcheck disable=SC2016 # the patterns hold literal $ and ${}
src=$OVMC_SOURCE_DIR
dest=$OVMC_DEST

# The staging tree's pkg-config view: its .pc, its paths under DESTDIR.
pc() {
	PKG_CONFIG_SYSROOT_DIR=$dest PKG_CONFIG_LIBDIR=$dest$OVMC_LIBDIR/pkgconfig \
		PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 PKG_CONFIG_ALLOW_SYSTEM_LIBS=1 pkg-config "$@"
}

# resolved_lib PROGRAM [LIBDIR]: where the dynamic linker finds
# libopenvmc for PROGRAM (with LD_LIBRARY_PATH=LIBDIR); empty if nowhere.
resolved_lib() {
	local p
	if [ -n "${2:-}" ]; then
		p=$(LD_LIBRARY_PATH=$2 LD_TRACE_LOADED_OBJECTS=1 "$1" | awk '$1 ~ /^libopenvmc\.so/ { print $3 }')
	else
		p=$(LD_TRACE_LOADED_OBJECTS=1 "$1" | awk '$1 ~ /^libopenvmc\.so/ { print $3 }')
	fi
	if [ -n "$p" ]; then realpath -s "$p"; fi
}

test_setup_installs_into_destdir() {
	rm -rf --one-file-system -- "$dest"
	DESTDIR=$dest cmake --install "$OVMC_BUILD_DIR" >"$dest.log" 2>&1 ||
		{ cat "$dest.log" >&2; fail "cmake --install"; }
	grep -q ldconfig "$dest.log" && fail "ldconfig ran for a DESTDIR install"
	rm -f "$dest.log"
}

test_destdir_tree_holds_library_headers_pc_config_docs() {
	local f
	for f in "$OVMC_LIBDIR/libopenvmc.so.0" "$OVMC_LIBDIR/libopenvmc.so" \
		"$OVMC_LIBDIR/pkgconfig/openvmc.pc" "$OVMC_LIBDIR/cmake/openvmc/openvmcConfig.cmake" \
		"$OVMC_LIBDIR/cmake/openvmc/openvmcConfigVersion.cmake" \
		"$OVMC_INCLUDEDIR/openvmc/ibmvmc.h" "$OVMC_BINDIR/openvmc" "$OVMC_BINDIR/vmcctl" \
		"$OVMC_SBINDIR/openvmc-hvd" "$OVMC_SBINDIR/openvmcd" "$OVMC_MANDIR/man1/vmcctl.1" \
		"$OVMC_MANDIR/man8/openvmcd.8" "$OVMC_DOCDIR/README.md" \
		"$OVMC_DOCDIR/LICENSES/LGPL-2.1-or-later.txt" "$OVMC_DOCDIR/LICENSES/GPL-2.0-or-later.txt"; do
		[ -e "$dest$f" ] || fail "$f not installed"
	done
	for f in vmcctl openvmc openvmcd openvmc-hvd vmc-run; do
		cmp -s "$src/completion/openvmc.bash" "$dest$OVMC_PREFIX/share/bash-completion/completions/$f" ||
			fail "bash completion for $f not installed"
	done
	# Every public header and every document.
	for f in "$src"/include/openvmc/*.h; do
		cmp -s "$f" "$dest$OVMC_INCLUDEDIR/openvmc/${f##*/}" || fail "${f##*/} not installed"
	done
	for f in "$src"/docs/*.md; do
		cmp -s "$f" "$dest$OVMC_DOCDIR/${f##*/}" || fail "docs/${f##*/} not installed"
	done
}

test_pc_file_is_valid_with_absolute_paths() {
	check pc --validate openvmc
	[ "$(pc --modversion openvmc)" = "$(sed -n 's/^project(openvmc VERSION \([0-9.]*\).*/\1/p' \
		"$src/CMakeLists.txt")" ] || fail "version differs from the project's"
	# Without a sysroot the paths are the final, absolute ones.
	[ "$(PKG_CONFIG_LIBDIR=$dest$OVMC_LIBDIR/pkgconfig pkg-config --variable=libdir openvmc)" = \
		"$OVMC_LIBDIR" ] || fail "libdir is not $OVMC_LIBDIR"
	[ "$(PKG_CONFIG_LIBDIR=$dest$OVMC_LIBDIR/pkgconfig pkg-config --variable=includedir openvmc)" = \
		"$OVMC_INCLUDEDIR" ] || fail "includedir is not $OVMC_INCLUDEDIR"
}

test_pkgconfig_build_against_destdir_runs() {
	local d lib
	scratch d
	local cflags libs
	read -ra cflags <<<"$(pc --cflags openvmc)"
	read -ra libs <<<"$(pc --libs openvmc)"
	[ "${cflags[*]}" = "-I$dest$OVMC_INCLUDEDIR" ] || fail "cflags: ${cflags[*]}"
	[ "${libs[*]}" = "-L$dest$OVMC_LIBDIR -lopenvmc" ] || fail "libs: ${libs[*]}"
	# shellcheck disable=SC2086 # OVMC_SAN_FLAGS: none, or several flags
	check cc -std=c11 -Wall -Wextra -pedantic -Werror -o "$d/example" "$src/tests/install/example.c" \
		"${cflags[@]}" "${libs[@]}" $OVMC_SAN_FLAGS
	lib=$(resolved_lib "$d/example" "$dest$OVMC_LIBDIR")
	[ "$lib" = "$dest$OVMC_LIBDIR/libopenvmc.so.0" ] || fail "example found libopenvmc at '$lib'"
	LD_LIBRARY_PATH=$dest$OVMC_LIBDIR "$d/example" >"$d/out" || fail "example failed"
	grep -q "^router: Echo token 0x1234" "$d/out" || fail "example printed: $(cat "$d/out")"
}

test_find_package_build_against_destdir_runs() {
	local d lib
	scratch d
	cmake -S "$src/tests/install" -B "$d" -DCMAKE_PREFIX_PATH="$dest$OVMC_PREFIX" \
		-DCMAKE_C_FLAGS="-Wall -Wextra -pedantic -Werror $OVMC_SAN_FLAGS" >"$d/log" 2>&1 ||
		{ cat "$d/log" >&2; fail "configure"; }
	grep -q "openvmc_DIR:PATH=$dest$OVMC_LIBDIR/cmake/openvmc" "$d/CMakeCache.txt" ||
		fail "find_package found another openvmc: $(grep openvmc_DIR "$d/CMakeCache.txt")"
	cmake --build "$d" >"$d/log" 2>&1 || { cat "$d/log" >&2; fail "build"; }
	grep -q 'INTERFACE_COMPILE_FEATURES "c_std_11"' "$dest$OVMC_LIBDIR/cmake/openvmc/openvmcTargets.cmake" ||
		fail "openvmc::openvmc does not request C11"
	lib=$(resolved_lib "$d/example")
	[ "$lib" = "$dest$OVMC_LIBDIR/libopenvmc.so.0" ] || fail "example found libopenvmc at '$lib'"
	"$d/example" | grep -q "^router: Echo token 0x1234" || fail "example failed"
}

test_installed_programs_run_from_destdir_tree() {
	local d p lib libdir='' env=() pid
	scratch d
	# A system libdir gets no RUNPATH (the packager's ldconfig makes it
	# work); elsewhere the programs find their library relative to
	# themselves.
	if readelf -d "$dest$OVMC_SBINDIR/openvmc-hvd" | grep -q RUNPATH; then
		readelf -d "$dest$OVMC_SBINDIR/openvmc-hvd" | grep -qF "[\$ORIGIN/" ||
			fail "RUNPATH not relative: $(readelf -d "$dest$OVMC_SBINDIR/openvmc-hvd" | grep RUNPATH)"
	else
		libdir=$dest$OVMC_LIBDIR
		env=(env "LD_LIBRARY_PATH=$libdir")
	fi
	for p in "$OVMC_BINDIR/openvmc" "$OVMC_SBINDIR/openvmc-hvd" "$OVMC_SBINDIR/openvmcd"; do
		lib=$(resolved_lib "$dest$p" "$libdir")
		[ "$lib" = "$dest$OVMC_LIBDIR/libopenvmc.so.0" ] || fail "$p found libopenvmc at '$lib'"
		"${env[@]}" "$dest$p" --version | grep -q "0\.[0-9]" || fail "$p --version"
	done
	readelf -d "$dest$OVMC_BINDIR/vmcctl" | grep -q RUNPATH && fail "vmcctl has a RUNPATH it needs not"
	# The installed hypervisor daemon serves; the installed vmcctl asks it.
	"${env[@]}" "$dest$OVMC_SBINDIR/openvmc-hvd" --foreground --socket "$d/hv.sock" \
		--control "$d/hv.ctl" 2>"$d/log" &
	pid=$!
	defer "kill $pid 2>/dev/null; wait $pid 2>/dev/null"
	for _ in $(seq 100); do
		[ -S "$d/hv.ctl" ] && break
		sleep 0.05
	done
	"$dest$OVMC_BINDIR/vmcctl" status -c "$d/hv.ctl" >"$d/status" ||
		{ cat "$d/log" >&2; fail "vmcctl status"; }
	grep -q "^backend: echo" "$d/status" || fail "status: $(cat "$d/status")"
	kill -TERM "$pid"
	wait "$pid" || fail "openvmc-hvd did not stop cleanly"
}

test_headers_need_c11_and_say_so() {
	local h name out
	for h in "$src"/include/openvmc/*.h; do
		name=openvmc/${h##*/}
		echo "#include <$name>" | cc -std=c11 -Wall -Wextra -pedantic-errors -Werror \
			-I"$src/include" -x c -c - -o /dev/null || fail "$name alone in C11"
		echo "#include <$name>" | c++ -std=c++11 -Wall -Wextra -pedantic-errors -Werror \
			-I"$src/include" -x c++ -c - -o /dev/null || fail "$name in C++11"
		if [ "$name" = openvmc/ibmvmc.h ]; then
			echo "#include <$name>" | cc -std=c99 -pedantic-errors -Werror -I"$src/include" \
				-x c -c - -o /dev/null || fail "$name in C99"
		else
			out=$(echo "#include <$name>" | cc -std=c99 -I"$src/include" -x c -c - \
				-o /dev/null 2>&1) && fail "$name compiles in C99"
			grep -q "openvmc headers need C11" <<<"$out" || fail "$name in C99: $out"
		fi
	done
}

test_headers_cite_only_documents_that_exist() {
	local doc
	grep -ho 'docs/[A-Za-z0-9_.-]*\.md' "$src"/include/openvmc/*.h | sort -u | while read -r doc; do
		[ -f "$src/$doc" ] || fail "a header cites $doc, which does not exist"
	done
	grep -n '[A-Z]\{4,\}\.md' "$src"/include/openvmc/*.h && fail "a header cites a document outside docs/"
	true
}

test_pc_and_runpath_follow_the_configured_dirs() {
	local d
	scratch d
	# Configure only: an absolute libdir outside the prefix, and /usr.
	cmake -S "$src" -B "$d/abs" -DOVMC_BUILD_TESTS=OFF -DCMAKE_INSTALL_PREFIX=/opt/ovmc \
		-DCMAKE_INSTALL_LIBDIR=/srv/ovmc/lib64 >"$d/log" 2>&1 || { cat "$d/log" >&2; fail "configure"; }
	grep -qx 'libdir=/srv/ovmc/lib64' "$d/abs/openvmc.pc" || fail "$(grep libdir= "$d/abs/openvmc.pc")"
	grep -qx 'includedir=${prefix}/include' "$d/abs/openvmc.pc" || fail "includedir"
	grep -qF 'NEW_RPATH "\$ORIGIN/../../../srv/ovmc/lib64"' "$d/abs/src/daemon/cmake_install.cmake" ||
		fail "no relative RUNPATH to /srv/ovmc/lib64"
	cmake -S "$src" -B "$d/usr" -DOVMC_BUILD_TESTS=OFF -DCMAKE_INSTALL_PREFIX=/usr \
		>"$d/log" 2>&1 || { cat "$d/log" >&2; fail "configure"; }
	grep -q 'RPATH' "$d/usr/src/daemon/cmake_install.cmake" || fail "no RPATH handling at all"
	grep -qF 'NEW_RPATH "\$ORIGIN' "$d/usr/src/daemon/cmake_install.cmake" &&
		fail "a RUNPATH for the system libdir"
	true
}

test_uninstall_removes_every_installed_file() {
	local left
	[ -f "$OVMC_BUILD_DIR/install_manifest.txt" ] || fail "no install_manifest.txt"
	DESTDIR=$dest cmake --build "$OVMC_BUILD_DIR" --target uninstall >/dev/null ||
		fail "uninstall target"
	left=$(find "$dest" -not -type d)
	[ -z "$left" ] || fail "left after uninstall: $left"
	find "$dest" -type d -name '*openvmc*' | grep -q . && fail "project directories left"
	rm -rf --one-file-system -- "$dest"
}

# shellcheck source=tests/harness.sh
. "$(dirname "$0")/harness.sh"
