# SPDX-License-Identifier: GPL-2.0-or-later
# Installation into a staging tree: one test installs (fixture set-up), the
# others read the tree, and uninstalling it is the clean-up.
set(dest ${PROJECT_BINARY_DIR}/install-test)
# A program linking a sanitized library is built with the sanitizers too.
set(san "")
if(OVMC_SANITIZE)
  set(san "-fsanitize=address,undefined")
endif()
ovmc_sh_test(install TIMEOUT 300 ENV
  OVMC_DEST=${dest} OVMC_PREFIX=${CMAKE_INSTALL_PREFIX} OVMC_SAN_FLAGS=${san}
  OVMC_BINDIR=${CMAKE_INSTALL_FULL_BINDIR} OVMC_SBINDIR=${CMAKE_INSTALL_FULL_SBINDIR}
  OVMC_LIBDIR=${CMAKE_INSTALL_FULL_LIBDIR} OVMC_INCLUDEDIR=${CMAKE_INSTALL_FULL_INCLUDEDIR}
  OVMC_DOCDIR=${CMAKE_INSTALL_FULL_DOCDIR} OVMC_MANDIR=${CMAKE_INSTALL_FULL_MANDIR})
set_tests_properties(install.setup_installs_into_destdir PROPERTIES FIXTURES_SETUP install_tree)
set_tests_properties(install.uninstall_removes_every_installed_file PROPERTIES
  FIXTURES_CLEANUP install_tree)
foreach(t destdir_tree_holds_library_headers_pc_config_docs pc_file_is_valid_with_absolute_paths
    pkgconfig_build_against_destdir_runs find_package_build_against_destdir_runs
    installed_programs_run_from_destdir_tree)
  set_tests_properties(install.${t} PROPERTIES FIXTURES_REQUIRED install_tree)
endforeach()
# Both set-up and clean-up write the build's install_manifest.txt.
set_tests_properties(install.setup_installs_into_destdir install.uninstall_removes_every_installed_file
  PROPERTIES RESOURCE_LOCK install_manifest)
