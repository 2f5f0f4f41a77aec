// SPDX-License-Identifier: BSL-1.0
//! \file
//! The catalog's format: the pool's settings and every volume's
//! configuration, as text. Versioned and line-based, so that an operator can
//! read it and a future version can add keys (a reader ignores keys it does
//! not know, and refuses a format of a newer major version):
//!
//!     file_reflink catalog 1
//!     pool revisions_to_keep 2
//!     pool setup_check 1
//!     volume appvms/work/private
//!     name private
//!     size 2147483648
//!     ...
//!     end
//!
//! A value is the rest of its line; no value can hold a line break (vids,
//! names and sources have no control characters). Pure functions: the pool
//! reads and writes the file through its policy.
#pragma once

#include <file_reflink/config.hpp>
#include <file_reflink/detail/decl.hpp>
#include <file_reflink/error.hpp>
#include <file_reflink/layout.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace file_reflink {

//! What a catalog holds: the pool's own settings (as its maker chose them,
//! for tools that open the pool later) and the volumes' configurations.
struct catalog_contents {
  std::optional<int> revisions_to_keep;  //!< the pool's default, if recorded
  std::optional<bool> setup_check;       //!< false: made without reflinks on purpose
  std::map<std::string, volume_config> volumes;  //!< by vid
};

namespace detail {

inline constexpr std::string_view catalog_magic = "file_reflink catalog ";
inline constexpr int catalog_version = 1;

//! Whether a value can be stored on one line.
FILE_REFLINK_DECL bool catalog_safe(std::string_view v);

FILE_REFLINK_DECL std::string format_catalog(const catalog_contents& c);

//! Whether two configurations would be written alike.
FILE_REFLINK_DECL bool same_config(const volume_config& a, const volume_config& b);

//! An unsigned integer of the catalog (a size), or nothing.
FILE_REFLINK_DECL std::optional<std::uint64_t> catalog_uint(std::string_view v);

//! An integer of the catalog, or nothing.
FILE_REFLINK_DECL std::optional<std::int64_t> catalog_int(std::string_view v);

//! The catalog in `text`, or `errc::catalog_invalid` saying which line is wrong.
FILE_REFLINK_DECL result<catalog_contents> parse_catalog(std::string_view text);

}  // namespace detail
}  // namespace file_reflink

#if !defined(FILE_REFLINK_SEPARATE_COMPILATION)
#include <file_reflink/impl/catalog.ipp>
#endif
