// SPDX-License-Identifier: BSL-1.0
//! \file
//! Sizes as people write them: "10G", "512M", "1.5T", "4096". Binary units
//! (K = 1024), as qvm-volume, truncate and ls -h use them; "KB", "MB"... are
//! the decimal ones, as in coreutils.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace file_reflink::cli {

//! Bytes for "10G", "1.5T", "512M", "4096", "4KiB", "1GB" (decimal), or
//! nothing when the text is not a size or does not fit in 64 bits. A
//! fraction that is not a whole number of bytes is rounded up.
std::optional<std::uint64_t> parse_size(std::string_view text);

//! The short form a person would write back: "0", "812B", "4K", "1.5G",
//! "400M" (one decimal below 10, none above: a picture, not an amount; the
//! JSON output gives exact bytes).
std::string format_size(std::uint64_t bytes);

}  // namespace file_reflink::cli
