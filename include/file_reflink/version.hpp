// SPDX-License-Identifier: BSL-1.0
//! \file
//! The library's version.
#pragma once

//! Major, minor and patch, as in the CMake package version.
#define FILE_REFLINK_VERSION_MAJOR 0
#define FILE_REFLINK_VERSION_MINOR 1
#define FILE_REFLINK_VERSION_PATCH 0

namespace file_reflink {
//! "0.1.0"
inline constexpr const char* version_string = "0.1.0";
}  // namespace file_reflink
