# SPDX-License-Identifier: GPL-2.0-or-later
# The documentation's commands (tests/docs_test.py): every block of README.md
# and of the man pages' EXAMPLES is marked run, file or skip, always checked;
# the run blocks run as written, one test per page, where the docs' "build"
# is this build (the plain build of scripts/test.sh, not build-asan or a
# package build).
# python3 is a build dependency only for the tests (debian/control <!nocheck>).
find_program(OVMC_PYTHON3 python3)
if(NOT OVMC_PYTHON3)
  message(STATUS "python3 not found: no docs tests")
  return()
endif()
# By name, found in PATH when the test runs: as another user (scripts/nofuse.sh
# runs the suite as nobody) the python3 found here may be out of reach.
set(docs_test ${CMAKE_CURRENT_SOURCE_DIR}/docs_test.py)
add_test(NAME docs.every_block_is_marked
  COMMAND python3 ${docs_test} markers ${PROJECT_SOURCE_DIR})
set_tests_properties(docs.every_block_is_marked PROPERTIES LABELS docs)
file(GLOB man_pages RELATIVE ${PROJECT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/man/*.[1-8])
if(PROJECT_BINARY_DIR STREQUAL "${PROJECT_SOURCE_DIR}/build")
  foreach(page README.md ${man_pages})
    string(REGEX REPLACE "[^A-Za-z0-9]+" "_" id "${page}")
    # needs.sh: root and /dev/fuse (label fuse), or a one-line skip.
    add_test(NAME docs.${id}_runs_as_written
      COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/needs.sh
        python3 ${docs_test} run ${PROJECT_SOURCE_DIR} ${page})
    set_tests_properties(docs.${id}_runs_as_written PROPERTIES TIMEOUT 900
      LABELS "docs;fuse" SKIP_RETURN_CODE 77)
  endforeach()
endif()
