# SPDX-License-Identifier: GPL-2.0-or-later
# Installation into a staging tree: one test installs (fixture set-up), the
# others read the tree (install.*, and the systemd units in systemd.*), and
# uninstalling it is the clean-up.
set(dest ${PROJECT_BINARY_DIR}/install-test)
# A program linking a sanitized library is built with the sanitizers too.
set(san "")
if(OVMC_SANITIZE)
  set(san "-fsanitize=address,undefined")
endif()
set(tree_env
  OVMC_DEST=${dest} OVMC_PREFIX=${CMAKE_INSTALL_PREFIX} OVMC_SAN_FLAGS=${san}
  OVMC_BINDIR=${CMAKE_INSTALL_FULL_BINDIR} OVMC_SBINDIR=${CMAKE_INSTALL_FULL_SBINDIR}
  OVMC_LIBDIR=${CMAKE_INSTALL_FULL_LIBDIR} OVMC_INCLUDEDIR=${CMAKE_INSTALL_FULL_INCLUDEDIR}
  OVMC_DOCDIR=${CMAKE_INSTALL_FULL_DOCDIR} OVMC_MANDIR=${CMAKE_INSTALL_FULL_MANDIR})
ovmc_sh_test(install TIMEOUT 300 ENV ${tree_env})
ovmc_sh_test(systemd ENV ${tree_env})
set_tests_properties(systemd.hvd_as_unprivileged_user_serves_a_root_openvmcd PROPERTIES
  LABELS "systemd;fuse")

set_tests_properties(install.setup_installs_into_destdir PROPERTIES FIXTURES_SETUP install_tree)
set_tests_properties(install.uninstall_removes_every_installed_file PROPERTIES
  FIXTURES_CLEANUP install_tree)
foreach(t install.destdir_tree_holds_library_headers_pc_config_docs
    install.pc_file_is_valid_with_absolute_paths install.pkgconfig_build_against_destdir_runs
    install.find_package_build_against_destdir_runs install.installed_programs_run_from_destdir_tree
    systemd.units_pass_systemd_analyze_verify systemd.units_expose_4_or_less_in_systemd_analyze_security
    systemd.units_notify_readiness_and_order_driver_after_hypervisor
    systemd.environment_files_define_what_the_units_use
    systemd.udev_rule_tags_the_cuse_device_the_daemons_create)
  set_tests_properties(${t} PROPERTIES FIXTURES_REQUIRED install_tree)
endforeach()
# Both set-up and clean-up write the build's install_manifest.txt.
set_tests_properties(install.setup_installs_into_destdir install.uninstall_removes_every_installed_file
  PROPERTIES RESOURCE_LOCK install_manifest)
