// SPDX-License-Identifier: BSL-1.0
//! \file
//! The ranges in which two files may differ: from their extent maps (where
//! both map a byte to the same storage, or neither maps it, it is the same),
//! then, where they share no storage at all, by comparing their data in the
//! ranges the maps could not vouch for. Used by `Volume::changed_ranges` and
//! `Volume::send`.
#pragma once

#include <file_reflink/changes.hpp>
#include <file_reflink/error.hpp>
#include <file_reflink/fs_types.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

namespace file_reflink {
namespace detail {

//! Appends ranges in ascending order, joining those that touch or overlap.
class range_builder {
public:
  void add(std::uint64_t begin, std::uint64_t end) {
    if (begin >= end) return;
    if (!out_.empty()) {
      byte_range& last = out_.back();
      if (begin <= last.offset + last.length) {
        last.length = std::max(last.offset + last.length, end) - last.offset;
        return;
      }
    }
    out_.push_back(byte_range{begin, end - begin});
  }
  std::vector<byte_range> take() { return std::move(out_); }

private:
  std::vector<byte_range> out_;
};

//! A file's extents cut to its size, in logical order.
inline std::vector<extent> extents_within(std::vector<extent> ex, std::uint64_t size) {
  const auto by_offset = [](const extent& a, const extent& b) { return a.logical < b.logical; };
  if (!std::is_sorted(ex.begin(), ex.end(), by_offset)) std::sort(ex.begin(), ex.end(), by_offset);
  std::vector<extent> out;
  out.reserve(ex.size());
  for (extent e : ex) {
    if (e.length == 0 || e.logical >= size) continue;
    e.length = std::min(e.length, size - e.logical);
    out.push_back(e);
  }
  return out;
}

//! Whether some exact extent of `a` and some exact extent of `b` use the
//! same storage (their physical ranges overlap).
inline bool share_storage(const std::vector<extent>& a, const std::vector<extent>& b) {
  auto physical = [](const std::vector<extent>& ex) {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> r;
    for (const extent& e : ex)
      if (e.exact) r.emplace_back(e.physical, e.physical + e.length);
    std::sort(r.begin(), r.end());
    return r;
  };
  const auto pa = physical(a), pb = physical(b);
  std::size_t i = 0, j = 0;
  while (i < pa.size() && j < pb.size()) {
    if (pa[i].first < pb[j].second && pb[j].first < pa[i].second) return true;
    if (pa[i].second <= pb[j].second)
      ++i;
    else
      ++j;
  }
  return false;
}

//! The ranges of [0, max(size_a, size_b)) that the extent maps cannot prove
//! equal: a byte is the same where neither file maps it (a hole, or past
//! the end: zeros) or where both map it, exactly, to one physical address.
//! `a` and `b` come from `extents_within`. Linear in the extents.
//! `same_storage`, if given, is set when some byte is vouched for by one
//! storage address (the files share storage).
inline std::vector<byte_range> extent_map_changes(const std::vector<extent>& a, const std::vector<extent>& b,
                                                  std::uint64_t end, bool* same_storage = nullptr) {
  range_builder out;
  std::size_t i = 0, j = 0;
  std::uint64_t pos = 0;
  while (pos < end) {
    while (i < a.size() && a[i].logical + a[i].length <= pos) ++i;
    while (j < b.size() && b[j].logical + b[j].length <= pos) ++j;
    const extent* ea = i < a.size() && a[i].logical <= pos ? &a[i] : nullptr;
    const extent* eb = j < b.size() && b[j].logical <= pos ? &b[j] : nullptr;
    const std::uint64_t next_a = ea ? ea->logical + ea->length : (i < a.size() ? a[i].logical : end);
    const std::uint64_t next_b = eb ? eb->logical + eb->length : (j < b.size() ? b[j].logical : end);
    const std::uint64_t next = std::min({next_a, next_b, end});
    if (!ea && !eb) {
      // A hole in both, or past both ends: zeros on either side.
    } else if (ea && eb && ea->exact && eb->exact &&
               ea->physical + (pos - ea->logical) == eb->physical + (pos - eb->logical)) {
      // One storage for both: the same bytes.
      if (same_storage) *same_storage = true;
    } else {
      out.add(pos, next);
    }
    pos = next;
  }
  return out.take();
}

//! Block size of a data comparison: a range it reports starts and ends on
//! such a boundary (or at an image's end).
inline constexpr std::uint64_t compare_block = 4096;
//! Bytes read from each file per step of a data comparison.
inline constexpr std::size_t compare_chunk = 1024 * 1024;

//! Compare the data of two files in `candidates` (sorted), reporting the
//! 4 KiB blocks that differ. `read_a` and `read_b` are
//! `result<std::size_t>(std::uint64_t offset, void* buf, std::size_t len)`;
//! bytes past a file's end (`size_a`, `size_b`) count as zeros.
//! `progress(done, total)` sees the bytes compared and may cancel.
template <class ReadA, class ReadB>
result<std::vector<byte_range>> compare_data(const std::vector<byte_range>& candidates, std::uint64_t size_a,
                                             std::uint64_t size_b, ReadA&& read_a, ReadB&& read_b,
                                             const progress_callback& progress) {
  std::uint64_t total = 0, done = 0;
  for (const auto& r : candidates) total += r.length;
  std::unique_ptr<char[]> buf_a(new char[compare_chunk]), buf_b(new char[compare_chunk]);
  // Fill `buf` with `len` bytes at `offset`, zeros past `size`.
  auto fill = [](auto& read, std::uint64_t size, std::uint64_t offset, char* buf, std::size_t len) -> result<void> {
    std::size_t got = 0;
    while (got < len && offset + got < size) {
      const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(len - got, size - (offset + got)));
      FILE_REFLINK_TRY(std::size_t n, read(offset + got, buf + got, want));
      if (n == 0) break;  // shorter than its size said: the rest reads as zeros
      got += n;
    }
    if (got < len) std::memset(buf + got, 0, len - got);
    return success();
  };
  range_builder out;
  if (progress && !progress(0, total)) return failure(errc::cancelled, "data comparison");
  for (const auto& r : candidates) {
    std::uint64_t pos = r.offset;
    const std::uint64_t end = r.offset + r.length;
    while (pos < end) {
      const auto len = static_cast<std::size_t>(std::min<std::uint64_t>(compare_chunk, end - pos));
      FILE_REFLINK_TRYV(fill(read_a, size_a, pos, buf_a.get(), len));
      FILE_REFLINK_TRYV(fill(read_b, size_b, pos, buf_b.get(), len));
      // Blocks aligned to the file, the first and last cut to the range.
      std::uint64_t b = pos;
      while (b < pos + len) {
        const std::uint64_t e = std::min(pos + len, (b / compare_block + 1) * compare_block);
        const std::size_t at = static_cast<std::size_t>(b - pos);
        if (std::memcmp(buf_a.get() + at, buf_b.get() + at, static_cast<std::size_t>(e - b)) != 0) out.add(b, e);
        b = e;
      }
      pos += len;
      done += len;
      if (progress && !progress(done, total)) return failure(errc::cancelled, "data comparison");
    }
  }
  return out.take();
}

}  // namespace detail
}  // namespace file_reflink
