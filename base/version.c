/*
 * The program's version. One place holds it: CMakeLists.txt's
 * project(VERSION), passed to this file alone as SL_VERSION_TEXT, so that
 * `shiplog --version`, the `--json` outputs and the replication Hello's
 * software field cannot disagree.
 */
#include "sl_base.h"

#ifndef SL_VERSION_TEXT
#error "SL_VERSION_TEXT comes from CMakeLists.txt (project VERSION)"
#endif

const char *sl_version(void) { return SL_VERSION_TEXT; }

const char *sl_software(void) { return "shiplog " SL_VERSION_TEXT; }
