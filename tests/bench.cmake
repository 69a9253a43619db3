# SPDX-License-Identifier: GPL-2.0-or-later
# The benchmark is not run by the test command; this only checks that it
# works end to end (every path, both modes, the report) with a few round
# trips. It asserts no timing.
if(TARGET ovmc-bench)
  # It mounts FUSE files: label fuse, checked by tests/needs.sh.
  # Its daemons must keep off the default control sockets under /run (the
  # machine's own daemons' place): where none of those directories exists
  # before, none may exist after.
  add_test(NAME bench.smoke COMMAND bash -c [=[
    dirs="/run/openvmc /run/openvmcd"
    had=no; for d in $dirs; do [ -e "$d" ] && had=yes; done
    bash "$0" "$@" || exit
    [ $had = yes ] && exit 0
    for d in $dirs; do [ -e "$d" ] && { echo "FAIL: the benchmark left $d" >&2; exit 1; }; done
    exit 0]=] ${CMAKE_CURRENT_SOURCE_DIR}/needs.sh
    $<TARGET_FILE:ovmc-bench> --iters 20 --idle-ms 50 --mode both --csv /dev/null --json /dev/null)
  set_tests_properties(bench.smoke PROPERTIES TIMEOUT 120 SKIP_RETURN_CODE 77 LABELS "bench;fuse")
  add_test(NAME bench.version COMMAND $<TARGET_FILE:ovmc-bench> --version)
  set_tests_properties(bench.version PROPERTIES TIMEOUT 10 LABELS "bench"
    PASS_REGULAR_EXPRESSION "^ovmc-bench \\(openvmc\\) ${PROJECT_VERSION}\n$")
endif()
