# SPDX-License-Identifier: GPL-2.0-or-later
# What `cmake --install` puts where, included by the top CMakeLists.txt after
# every program directory: the library with its headers, pkg-config file and
# CMake package, the programs' RUNPATH, documentation, data files, and the
# `uninstall` target.

include(CMakePackageConfigHelpers)

set(OVMC_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/openvmc CACHE STRING
    "Where find_package(openvmc) looks (relative to the prefix)")
set(OVMC_WIRESHARK_LUA_DIR ${CMAKE_INSTALL_LIBDIR}/wireshark/plugins CACHE STRING
    "Wireshark's global Lua plugin folder (tshark -G folders); relative to the prefix")
option(OVMC_INSTALL_LDCONFIG "Run ldconfig after installing into the running system" ON)

# ---- RUNPATH: none where the dynamic linker looks anyway (Debian policy);
# relative to the program elsewhere, so that a prefix or a DESTDIR tree
# works as it lies, before any ldconfig.
set(ovmc_system_libdir FALSE)
foreach(d ${CMAKE_C_IMPLICIT_LINK_DIRECTORIES} ${CMAKE_PLATFORM_IMPLICIT_LINK_DIRECTORIES})
  if(d STREQUAL CMAKE_INSTALL_FULL_LIBDIR)
    set(ovmc_system_libdir TRUE)
  endif()
endforeach()
if(NOT ovmc_system_libdir)
  file(RELATIVE_PATH ovmc_bin_to_lib ${CMAKE_INSTALL_FULL_BINDIR} ${CMAKE_INSTALL_FULL_LIBDIR})
  file(RELATIVE_PATH ovmc_sbin_to_lib ${CMAKE_INSTALL_FULL_SBINDIR} ${CMAKE_INSTALL_FULL_LIBDIR})
endif()

# Every installed program that links anything gets the RUNPATH (vmcctl
# links nothing); the build tree keeps CMake's absolute build RPATH.
function(ovmc_set_runpath dir)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  foreach(t ${targets})
    get_target_property(type ${t} TYPE)
    get_target_property(libs ${t} LINK_LIBRARIES)
    if(type STREQUAL "EXECUTABLE" AND libs)
      if(ovmc_system_libdir)
        set_target_properties(${t} PROPERTIES INSTALL_RPATH "")
      else()
        # bin and sbin are siblings under the prefix as a rule; both are
        # listed for the day they are not.
        set_target_properties(${t} PROPERTIES INSTALL_RPATH
          "\$ORIGIN/${ovmc_bin_to_lib};\$ORIGIN/${ovmc_sbin_to_lib}")
      endif()
    endif()
  endforeach()
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(s ${subdirs})
    if(NOT s MATCHES "/tests$")
      ovmc_set_runpath(${s})
    endif()
  endforeach()
endfunction()
ovmc_set_runpath(${PROJECT_SOURCE_DIR})

# ---- the library
install(TARGETS openvmc EXPORT openvmcTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/openvmc DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# pkg-config: paths under the prefix stay relative to ${prefix}, so that
# `pkg-config --define-prefix` and sysroots work; others are kept absolute.
foreach(kind LIBDIR INCLUDEDIR)
  file(RELATIVE_PATH rel ${CMAKE_INSTALL_PREFIX} ${CMAKE_INSTALL_FULL_${kind}})
  if(rel MATCHES "^\\.\\./" OR IS_ABSOLUTE "${rel}")
    set(OVMC_PC_${kind} ${CMAKE_INSTALL_FULL_${kind}})
  else()
    set(OVMC_PC_${kind} "\${prefix}/${rel}")
  endif()
endforeach()
configure_file(packaging/openvmc.pc.in openvmc.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/openvmc.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# find_package(openvmc): the imported target openvmc::openvmc.
install(EXPORT openvmcTargets NAMESPACE openvmc:: DESTINATION ${OVMC_CMAKE_DIR})
configure_package_config_file(packaging/openvmcConfig.cmake.in
  ${PROJECT_BINARY_DIR}/openvmcConfig.cmake INSTALL_DESTINATION ${OVMC_CMAKE_DIR})
# 0.x: a new minor version may break the API.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/openvmcConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/openvmcConfig.cmake
  ${PROJECT_BINARY_DIR}/openvmcConfigVersion.cmake DESTINATION ${OVMC_CMAKE_DIR})

# ---- documentation and data
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR} FILES_MATCHING PATTERN "*.md")
install(DIRECTORY LICENSES DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES dissector/openvmc.lua DESTINATION ${OVMC_WIRESHARK_LUA_DIR})

# bash completion, one file per program name as bash-completion looks it up.
set(OVMC_BASH_COMPLETION_DIR ${CMAKE_INSTALL_DATADIR}/bash-completion/completions CACHE STRING
    "bash-completion's folder (relative to the prefix)")
foreach(prog vmcctl openvmc openvmcd openvmc-hvd vmc-run)
  install(FILES completion/openvmc.bash DESTINATION ${OVMC_BASH_COMPLETION_DIR} RENAME ${prog})
endforeach()

# ---- systemd units (not enabled), their environment files, the udev rule
# of the CUSE device. For the prefix /usr, where systemd itself says; else
# under the prefix, where systemd and udev also look (/usr/local/lib/...).
set(ovmc_unitdir ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
set(ovmc_udevdir ${CMAKE_INSTALL_PREFIX}/lib/udev/rules.d)
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  pkg_get_variable(ovmc_sd_unitdir systemd systemdsystemunitdir)
  pkg_get_variable(ovmc_udev udev udevdir)
  if(ovmc_sd_unitdir)
    set(ovmc_unitdir ${ovmc_sd_unitdir})
  endif()
  if(ovmc_udev)
    set(ovmc_udevdir ${ovmc_udev}/rules.d)
  endif()
endif()
set(OVMC_SYSTEMD_UNIT_DIR ${ovmc_unitdir} CACHE PATH "systemd system unit folder")
set(OVMC_UDEV_RULES_DIR ${ovmc_udevdir} CACHE PATH "udev rules folder")
set(OVMC_ENV_DIR ${CMAKE_INSTALL_FULL_SYSCONFDIR}/default CACHE PATH
    "Folder of the units' EnvironmentFile= (Debian: /etc/default)")
foreach(unit openvmc-hvd openvmcd)
  configure_file(packaging/systemd/${unit}.service.in ${unit}.service @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/${unit}.service DESTINATION ${OVMC_SYSTEMD_UNIT_DIR})
  install(FILES packaging/default/${unit} DESTINATION ${OVMC_ENV_DIR})
endforeach()
install(FILES packaging/udev/70-openvmc.rules DESTINATION ${OVMC_UDEV_RULES_DIR})

# ---- last: the dynamic linker's cache, when installing into this system
# (not into a DESTDIR staging tree, where packaging tools run it later).
find_program(OVMC_LDCONFIG ldconfig PATHS /sbin /usr/sbin)
if(OVMC_INSTALL_LDCONFIG AND OVMC_LDCONFIG)
  install(CODE "
    if(\"\$ENV{DESTDIR}\" STREQUAL \"\")
      execute_process(COMMAND \"${OVMC_LDCONFIG}\" RESULT_VARIABLE ovmc_rc ERROR_QUIET)
      if(NOT ovmc_rc EQUAL 0)
        message(WARNING \"ldconfig failed: run it as root so that programs find libopenvmc\")
      endif()
    endif()")
endif()

configure_file(packaging/uninstall.cmake.in uninstall.cmake @ONLY)
add_custom_target(uninstall COMMAND ${CMAKE_COMMAND} -P ${PROJECT_BINARY_DIR}/uninstall.cmake
  COMMENT "Removing what install_manifest.txt lists")
