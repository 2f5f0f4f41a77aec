// SPDX-License-Identifier: BSL-1.0
//! \file
//! The types of `Volume::changed_ranges`, `Volume::send` and
//! `Volume::receive`: which image of a volume, the ranges in which two
//! images may differ, and the two ends of a stream (doc/stream-format.md).
#pragma once

#include <file_reflink/error.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace file_reflink {

//! One image of a volume: the committed image, or a revision by number or
//! by label (a number names a revision as `revert` takes it).
struct image_ref {
  enum class by : std::uint8_t { committed, number, label } how = by::committed;
  std::uint64_t number = 0;
  std::string label;

  static image_ref committed() { return image_ref{}; }
  static image_ref revision(std::uint64_t n) { return image_ref{by::number, n, {}}; }
  static image_ref labelled(std::string l) { return image_ref{by::label, 0, std::move(l)}; }
};

//! A range of bytes of an image.
struct byte_range {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  friend bool operator==(const byte_range& a, const byte_range& b) noexcept {
    return a.offset == b.offset && a.length == b.length;
  }
  friend bool operator!=(const byte_range& a, const byte_range& b) noexcept { return !(a == b); }
};

//! How `changed_ranges` found the ranges.
enum class change_method : std::uint8_t {
  //! The two files' extent maps: a range both map to the same storage, or
  //! that is a hole in both, is unchanged. No data was read.
  extent_map,
  //! The files share no storage (a filesystem without reflinks, a copy, an
  //! image received from elsewhere): the data was compared, in 4 KiB
  //! blocks, where the extent maps could not tell.
  data_comparison,
};

//! A short name: "extent_map" or "data_comparison".
inline const char* to_string(change_method m) noexcept {
  return m == change_method::extent_map ? "extent_map" : "data_comparison";
}

//! What `changed_ranges` found: the ranges in which the two images may
//! differ (sorted, neither overlapping nor touching; bytes past an image's
//! end count as zeros, so a grown image's new hole is no change), the
//! method, and the two sizes.
struct changed_ranges_result {
  std::vector<byte_range> ranges;
  change_method method = change_method::extent_map;
  std::uint64_t from_size = 0;
  std::uint64_t to_size = 0;
  //! The sum of the ranges' lengths.
  std::uint64_t bytes() const noexcept {
    std::uint64_t n = 0;
    for (const auto& r : ranges) n += r.length;
    return n;
  }
};

//! Where `send` writes a stream: called with each piece in order; an error
//! it returns ends the send with that error.
using stream_sink = std::function<result<void>(const void* data, std::size_t len)>;

//! Where `receive` reads a stream: fills up to `len` bytes of `buf` and
//! returns how many; 0 means the stream ended.
using stream_source = std::function<result<std::size_t>(void* buf, std::size_t len)>;

//! What `send` wrote.
struct send_result {
  bool incremental = false;
  std::uint64_t image_size = 0;
  std::uint64_t data_bytes = 0;    //!< payload of the data records
  std::uint64_t hole_bytes = 0;    //!< length of the hole records
  std::uint64_t stream_bytes = 0;  //!< everything written to the sink
  std::uint64_t records = 0;       //!< data and hole records (the trailer excluded)
};

//! What `receive` applied.
struct receive_result {
  bool incremental = false;
  std::uint64_t image_size = 0;
  std::uint64_t data_bytes = 0;
  std::uint64_t hole_bytes = 0;
  std::uint64_t records = 0;
  //! The receiver's image the increments were applied to: empty for a full
  //! stream, "committed" or "revision N (STAMP)".
  std::string base;
};

}  // namespace file_reflink
