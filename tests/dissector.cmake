# SPDX-License-Identifier: GPL-2.0-or-later
# The Wireshark dissector run by tshark on crafted and written captures.
ovmc_test(dissector SOURCES dissector_test.c sim.c tshark.c)
target_compile_definitions(dissector_test PRIVATE OVMC_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/dissector/openvmc.lua)
