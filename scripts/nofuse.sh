#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The suite where FUSE or root is missing, as in a container, a CI runner
# without /dev/fuse or an unprivileged shell. Three runs of the built tests:
#
# 1. /dev/fuse hidden (a private mount namespace with /dev/null bound over
#    it): every test runs; each test labelled fuse must be skipped, saying
#    why in one line, and every other test must pass.
# 2. The same with CI=true, the tests labelled fuse: every one must fail
#    (CI has FUSE and must run them all).
# 3. As the user nobody: each test labelled fuse or root must be skipped
#    and every other must pass. The install and systemd tests stay out:
#    they write into the build tree, which belongs to root here. ctest's
#    own Testing directory is a private tmpfs.
#
#   scripts/nofuse.sh [--build DIR]     (needs root, to make the namespaces)
#
# The last line is "nofuse: passed" or "nofuse: FAILED".
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$top/build
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$(realpath "$2"); shift ;;
	-h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "nofuse.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
	esac
	shift
done
[ "$(id -u)" -eq 0 ] || { echo "nofuse.sh: needs root to make the namespaces" >&2; exit 2; }
[ -f "$build/CTestTestfile.cmake" ] || { echo "nofuse.sh: no tests in $build: build first" >&2; exit 2; }
out=$(mktemp -d "$build/nofuse.XXXXXX") || exit 1
trap 'rm -rf -- "$out"' EXIT
failed=0

# The names ctest lists for `ctest -N ARGS...`, sorted.
names() {
	(cd "$build" && ctest -N "$@") | sed -nE 's/^ *Test +#[0-9]+: (.*)$/\1/p' | sort
}
# The names of the tests a ctest log shows with `status` (Passed, ***Skipped ...).
with_status() { # log, status regex
	sed -nE "s/^ *[0-9]+\/[0-9]+ Test +#[0-9]+: ([^ ]+) \.+ *$2 .*/\1/p" "$1" | sort
}
# Run ctest in a private mount namespace, after `setup` there; as `user`
# (or root); the log in $out/NAME.log, the skip reasons in $out/NAME.why.
run() { # name, user, setup, ctest args...
	local name=$1 user=$2 setup=$3 as=()
	shift 3
	[ "$user" = root ] || as=(setpriv --reuid="$user" --regid="$(id -g "$user")" --clear-groups env HOME=/tmp)
	# ctest's own log, with every test's output, is copied out (by root)
	# before the namespace and its mounts go.
	# shellcheck disable=SC2016 # expanded by the inner bash
	unshare -m --propagation private bash -c "$setup"' && cd "$0" && dst=$1 && shift || exit
		"$@"; rc=$?; cp Testing/Temporary/LastTest.log "$dst.last"; exit $rc' "$build" "$out/$name" \
		"${as[@]}" ctest -j2 --output-on-failure "$@" >"$out/$name.log" 2>&1
	# Each skipped test said why in one line.
	grep -h '^SKIP: ' "$out/$name.last" 2>/dev/null | sort | uniq -c >"$out/$name.why"
}
# Compare two sorted name lists; say what differs.
same() { # what, expected file, got file
	if ! cmp -s "$2" "$3"; then
		echo "nofuse: $1 differ from what was expected:"
		diff "$2" "$3" | sed -n 's/^</  missing:/p; s/^>/  extra:/p' | head -20
		failed=1
	fi
}
report() { # name, label
	local log=$out/$1.log
	echo "nofuse: $2: $(with_status "$log" Passed | wc -l) passed," \
		"$(with_status "$log" '\*\*\*Skipped' | wc -l) skipped," \
		"$(with_status "$log" '\*\*\*(Failed|Not Run|Timeout|Exception).*' | wc -l) failed"
	sed 's/^/nofuse:   /' "$out/$1.why"
}

hide='mount --bind /dev/null /dev/fuse'
names -L '^fuse$' >"$out/fuse.names"
names >"$out/all.names"

# 1. /dev/fuse hidden: the fuse tests skip, by name; the rest pass. Runs 1
# and 3 are outside CI even when this script runs in CI (CI=true there).
CI= run hidden root "$hide"
report hidden "/dev/fuse hidden"
with_status "$out/hidden.log" '\*\*\*Skipped' >"$out/hidden.skipped"
same "the skipped tests (/dev/fuse hidden)" "$out/fuse.names" "$out/hidden.skipped"
with_status "$out/hidden.log" Passed >"$out/hidden.passed"
comm -23 "$out/all.names" "$out/fuse.names" >"$out/rest.names"
same "the passed tests (/dev/fuse hidden)" "$out/rest.names" "$out/hidden.passed"

# 2. The same with CI=true: every fuse test fails.
CI=true run ci root "$hide" -L '^fuse$'
report ci "/dev/fuse hidden, CI=true, the fuse tests"
with_status "$out/ci.log" '\*\*\*Failed' >"$out/ci.failed"
same "the failed tests (CI=true)" "$out/fuse.names" "$out/ci.failed"

# 3. As nobody: the fuse and root tests skip; the rest pass.
exclude='^(install|systemd)$'
CI= run nonroot nobody "mount -t tmpfs -o mode=1777 tmpfs '$build/Testing'" -LE "$exclude"
report nonroot "as nobody (install and systemd tests left out)"
names -L '^(fuse|root)$' -LE "$exclude" >"$out/priv.names"
names -LE "$exclude" >"$out/all-nonroot.names"
with_status "$out/nonroot.log" '\*\*\*Skipped' >"$out/nonroot.skipped"
same "the skipped tests (as nobody)" "$out/priv.names" "$out/nonroot.skipped"
with_status "$out/nonroot.log" Passed >"$out/nonroot.passed"
comm -23 "$out/all-nonroot.names" "$out/priv.names" >"$out/rest-nonroot.names"
same "the passed tests (as nobody)" "$out/rest-nonroot.names" "$out/nonroot.passed"

if [ $failed -eq 0 ]; then
	echo "nofuse: passed"
else
	cp "$out"/*.log "$build/" 2>/dev/null
	echo "nofuse: FAILED (logs: $build/hidden.log ci.log nonroot.log)"
	exit 1
fi
