// SPDX-License-Identifier: BSL-1.0
//! \file
//! File contents of `MemoryFsOps`: a sorted list of block-aligned extents,
//! each a window on an immutable, reference-counted chunk of bytes. A clone
//! copies the list and shares the chunks; a write allocates new chunks for
//! the blocks it touches unless the chunk is referenced by that extent alone.
#pragma once

#include <file_reflink/fs_types.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

namespace file_reflink {
namespace detail {
namespace memfs {

//! Allocation unit: what `st_blocks` and FIEMAP see on XFS and btrfs.
inline constexpr std::uint64_t block_size = 4096;
//! Largest chunk one allocation makes: bounds what a partly overwritten or
//! punched chunk keeps alive (a chunk is freed only when nothing uses any of it).
inline constexpr std::uint64_t max_chunk_bytes = 1u << 20;
//! Largest file size and offset, as on Linux (`loff_t`).
inline constexpr std::uint64_t max_file_size = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

constexpr std::uint64_t block_down(std::uint64_t v) noexcept { return v & ~(block_size - 1); }
constexpr std::uint64_t block_up(std::uint64_t v) noexcept { return (v + block_size - 1) & ~(block_size - 1); }

//! Bytes of storage, charged to a filesystem's `used` counter while alive, so
//! a chunk shared by many files is counted once. Its bytes never change once
//! a second reference exists (see `plan_write`).
class Chunk {
public:
  Chunk(std::atomic<std::uint64_t>& used, std::uint64_t physical, std::uint64_t length)
      : used_(&used), physical_(physical), length_(length), bytes_(new char[length]) {
    used_->fetch_add(length_, std::memory_order_relaxed);
  }
  ~Chunk() { used_->fetch_sub(length_, std::memory_order_relaxed); }
  Chunk(const Chunk&) = delete;
  Chunk& operator=(const Chunk&) = delete;

  char* data() noexcept { return bytes_.get(); }
  const char* data() const noexcept { return bytes_.get(); }
  //! The fake device address of the first byte: unique per chunk, so two
  //! files' extents overlap physically exactly when they share storage.
  std::uint64_t physical() const noexcept { return physical_; }
  std::uint64_t length() const noexcept { return length_; }

private:
  std::atomic<std::uint64_t>* used_;
  std::uint64_t physical_;
  std::uint64_t length_;
  std::unique_ptr<char[]> bytes_;
};

//! File bytes [logical, logical + length) are chunk bytes [offset, offset + length).
struct Extent {
  std::uint64_t logical = 0;
  std::uint64_t length = 0;
  std::uint64_t offset = 0;
  std::shared_ptr<Chunk> chunk;

  std::uint64_t end() const noexcept { return logical + length; }
};

//! Sorted by `logical`, non-overlapping, block-aligned; the gaps are holes.
using ExtentList = std::vector<Extent>;

//! Where new chunks come from: the filesystem they are charged to and the
//! next free fake device address.
struct Allocator {
  std::atomic<std::uint64_t>* used;
  std::uint64_t* next_physical;

  std::shared_ptr<Chunk> make(std::uint64_t length) const {
    auto chunk = std::make_shared<Chunk>(*used, *next_physical, length);
    *next_physical += length;
    return chunk;
  }
};

//! Index of the first extent that ends after `pos` (extents end in order).
inline std::size_t first_ending_after(const ExtentList& v, std::uint64_t pos) noexcept {
  auto it = std::upper_bound(v.begin(), v.end(), pos,
                             [](std::uint64_t p, const Extent& e) { return p < e.end(); });
  return static_cast<std::size_t>(it - v.begin());
}

//! What the file occupies: `st_blocks * 512`.
inline std::uint64_t allocated_bytes(const ExtentList& v) noexcept {
  std::uint64_t sum = 0;
  for (const Extent& e : v) sum += e.length;
  return sum;
}

//! Copy file bytes [off, off + len) out; holes read as zeros.
inline void read_bytes(const ExtentList& v, std::uint64_t off, char* out, std::size_t len) noexcept {
  const std::uint64_t end = off + len;
  std::uint64_t pos = off;
  for (std::size_t i = first_ending_after(v, off); i < v.size() && v[i].logical < end; ++i) {
    const Extent& e = v[i];
    const std::uint64_t a = std::max(pos, e.logical);
    const std::uint64_t b = std::min(end, e.end());
    if (a > pos) std::memset(out + (pos - off), 0, a - pos);
    std::memcpy(out + (a - off), e.chunk->data() + e.offset + (a - e.logical), b - a);
    pos = b;
  }
  if (pos < end) std::memset(out + (pos - off), 0, end - pos);
}

//! Whether any block of [a, b) holds data.
inline bool is_mapped(const ExtentList& v, std::uint64_t a, std::uint64_t b) noexcept {
  const std::size_t i = first_ending_after(v, a);
  return i < v.size() && v[i].logical < b;
}

inline bool continues(const Extent& a, const Extent& b) noexcept {
  return a.chunk == b.chunk && a.end() == b.logical && a.offset + a.length == b.offset;
}

//! Merge neighbours in [lo, hi] that continue each other in one chunk, so
//! the list stays as short as the sharing allows.
inline void merge_around(ExtentList& v, std::size_t lo, std::size_t hi) {
  std::size_t k = lo;
  while (k + 1 < v.size() && k < hi) {
    if (continues(v[k], v[k + 1])) {
      v[k].length += v[k + 1].length;
      v.erase(v.begin() + static_cast<std::ptrdiff_t>(k + 1));
      --hi;
    } else {
      ++k;
    }
  }
}

//! Map the block range [a, b) to `pieces` (sorted, inside [a, b)) instead of
//! what it had: extents crossing a or b are split, the rest dropped. Work is
//! proportional to the extents after `a`, so appending stays cheap.
inline void splice(ExtentList& v, std::uint64_t a, std::uint64_t b, ExtentList pieces) {
  const std::size_t i = first_ending_after(v, a);
  std::size_t j = i;
  while (j < v.size() && v[j].logical < b) ++j;
  ExtentList repl;
  repl.reserve(pieces.size() + 2);
  if (i < j && v[i].logical < a) {
    Extent left = v[i];
    left.length = a - left.logical;
    repl.push_back(std::move(left));
  }
  for (Extent& p : pieces) repl.push_back(std::move(p));
  if (i < j && v[j - 1].end() > b) {
    Extent right = v[j - 1];
    right.offset += b - right.logical;
    right.length = right.end() - b;
    right.logical = b;
    repl.push_back(std::move(right));
  }
  const std::size_t old_n = j - i;
  const std::size_t common = std::min(old_n, repl.size());
  for (std::size_t k = 0; k < common; ++k) v[i + k] = std::move(repl[k]);
  if (repl.size() < old_n) {
    v.erase(v.begin() + static_cast<std::ptrdiff_t>(i + common), v.begin() + static_cast<std::ptrdiff_t>(j));
  } else if (repl.size() > old_n) {
    v.insert(v.begin() + static_cast<std::ptrdiff_t>(j), std::make_move_iterator(repl.begin() + static_cast<std::ptrdiff_t>(common)),
             std::make_move_iterator(repl.end()));
  }
  merge_around(v, i == 0 ? 0 : i - 1, i + repl.size());
}

//! One stretch of a planned write: blocks of one extent, or a hole.
struct WriteRun {
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
  std::size_t extent = 0;  //!< index in the list when not a hole
  bool in_place = false;   //!< the chunk has no other reference: overwrite it
};

//! Split the blocks of [off, off + len) into runs. Only a chunk referenced by
//! this one extent (no clone, no durable copy, no other extent) is written in
//! place; everything else gets new blocks, so a write into a shared extent
//! copies only the blocks it touches.
inline std::vector<WriteRun> plan_write(const ExtentList& v, std::uint64_t off, std::uint64_t len) {
  std::vector<WriteRun> runs;
  const std::uint64_t a = block_down(off);
  const std::uint64_t b = block_up(off + len);
  std::uint64_t pos = a;
  for (std::size_t i = first_ending_after(v, a); i < v.size() && v[i].logical < b; ++i) {
    if (v[i].logical > pos) runs.push_back({pos, v[i].logical, 0, false});
    const std::uint64_t s = std::max(pos, v[i].logical);
    const std::uint64_t e = std::min(b, v[i].end());
    runs.push_back({s, e, i, v[i].chunk.use_count() == 1});
    pos = e;
  }
  if (pos < b) runs.push_back({pos, b, 0, false});
  return runs;
}

//! Bytes of new storage a planned write needs (checked against free space
//! before anything changes).
inline std::uint64_t new_bytes(const std::vector<WriteRun>& runs) noexcept {
  std::uint64_t n = 0;
  for (const WriteRun& r : runs)
    if (!r.in_place) n += r.end - r.begin;
  return n;
}

//! Carry out a write planned by `plan_write` on the same list.
inline void write_bytes(ExtentList& v, std::uint64_t off, const char* data, std::uint64_t len,
                        const std::vector<WriteRun>& runs, const Allocator& alloc) {
  const std::uint64_t end = off + len;
  ExtentList pieces;
  std::size_t k = 0;
  while (k < runs.size()) {
    if (runs[k].in_place) {
      const WriteRun& r = runs[k];
      Extent& e = v[r.extent];
      const std::uint64_t ws = std::max(off, r.begin);
      const std::uint64_t we = std::min(end, r.end);
      std::memcpy(e.chunk->data() + e.offset + (ws - e.logical), data + (ws - off), we - ws);
      Extent keep = e;
      keep.offset += r.begin - e.logical;
      keep.logical = r.begin;
      keep.length = r.end - r.begin;
      pieces.push_back(std::move(keep));
      ++k;
      continue;
    }
    const std::uint64_t s = runs[k].begin;
    std::uint64_t t = s;
    while (k < runs.size() && !runs[k].in_place) t = runs[k++].end;
    for (std::uint64_t c = s; c < t; c += max_chunk_bytes) {
      const std::uint64_t cl = std::min<std::uint64_t>(max_chunk_bytes, t - c);
      auto chunk = alloc.make(cl);
      char* p = chunk->data();
      // Edge blocks keep their old bytes where the write does not reach.
      if (c < off) read_bytes(v, c, p, std::min(off, c + cl) - c);
      if (c + cl > end) {
        const std::uint64_t from = std::max(c, end);
        read_bytes(v, from, p + (from - c), c + cl - from);
      }
      const std::uint64_t ws = std::max(off, c);
      const std::uint64_t we = std::min(end, c + cl);
      if (ws < we) std::memcpy(p + (ws - c), data + (ws - off), we - ws);
      pieces.push_back({c, cl, 0, std::move(chunk)});
    }
  }
  splice(v, block_down(off), block_up(end), std::move(pieces));
}

//! Drop every block from `from` (block-aligned) on.
inline void cut_from(ExtentList& v, std::uint64_t from) {
  splice(v, from, std::numeric_limits<std::uint64_t>::max(), {});
}

//! The extents below `limit` (block-aligned), sharing their chunks: a clone.
inline ExtentList share_below(const ExtentList& v, std::uint64_t limit) {
  ExtentList out;
  out.reserve(v.size());
  for (const Extent& e : v) {
    if (e.logical >= limit) break;
    out.push_back(e);
    if (out.back().end() > limit) out.back().length = limit - out.back().logical;
  }
  return out;
}

//! A data segment as SEEK_DATA/SEEK_HOLE report it: [begin, end).
struct Segment {
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
};

//! The data segments below `limit` (the file size, or less): contiguous
//! extents merged, the last one cut at `limit`.
inline std::vector<Segment> data_segments(const ExtentList& v, std::uint64_t limit) {
  std::vector<Segment> out;
  for (const Extent& e : v) {
    if (e.logical >= limit) break;
    const std::uint64_t end = std::min(limit, e.end());
    if (!out.empty() && out.back().end == e.logical)
      out.back().end = end;
    else
      out.push_back({e.logical, end});
  }
  return out;
}

using ChunkRanges = std::unordered_map<const Chunk*, std::vector<std::pair<std::uint64_t, std::uint64_t>>>;

//! For the chunks `mine` uses: the chunk byte ranges that `others` use,
//! sorted and merged.
inline ChunkRanges ranges_used_by(const ExtentList& mine, const std::vector<const ExtentList*>& others) {
  ChunkRanges ranges;
  for (const Extent& e : mine) ranges[e.chunk.get()];
  for (const ExtentList* list : others)
    for (const Extent& e : *list) {
      auto it = ranges.find(e.chunk.get());
      if (it != ranges.end()) it->second.emplace_back(e.offset, e.offset + e.length);
    }
  for (auto& kv : ranges) {
    auto& r = kv.second;
    std::sort(r.begin(), r.end());
    std::size_t w = 0;
    for (std::size_t k = 0; k < r.size(); ++k) {
      if (w > 0 && r[k].first <= r[w - 1].second)
        r[w - 1].second = std::max(r[w - 1].second, r[k].second);
      else
        r[w++] = r[k];
    }
    r.resize(w);
  }
  return ranges;
}

//! The FIEMAP view of `mine`: `shared` exactly where another file uses the
//! same chunk bytes (split where sharing starts or stops, as XFS does), and
//! physically contiguous neighbours with the same flag merged.
inline std::vector<extent> report_extents(const ExtentList& mine, const std::vector<const ExtentList*>& others) {
  ChunkRanges ranges = ranges_used_by(mine, others);
  std::vector<extent> out;
  auto emit = [&](const Extent& e, std::uint64_t b, std::uint64_t t, bool shared) {
    if (b >= t) return;
    const std::uint64_t logical = e.logical + (b - e.offset);
    const std::uint64_t physical = e.chunk->physical() + b;
    if (!out.empty() && out.back().shared == shared && out.back().logical + out.back().length == logical &&
        out.back().physical + out.back().length == physical) {
      out.back().length += t - b;
      return;
    }
    out.push_back({logical, physical, t - b, shared});
  };
  for (const Extent& e : mine) {
    const auto& r = ranges[e.chunk.get()];
    std::uint64_t pos = e.offset;
    const std::uint64_t end = e.offset + e.length;
    auto it = std::upper_bound(r.begin(), r.end(), pos,
                               [](std::uint64_t p, const std::pair<std::uint64_t, std::uint64_t>& x) { return p < x.second; });
    for (; it != r.end() && it->first < end; ++it) {
      const std::uint64_t s = std::max(pos, it->first);
      const std::uint64_t t = std::min(end, it->second);
      emit(e, pos, s, false);
      emit(e, s, t, true);
      pos = t;
    }
    emit(e, pos, end, false);
  }
  return out;
}

//! Whether the two lists use some bytes of one chunk.
inline bool share_storage(const ExtentList& a, const ExtentList& b) {
  std::vector<const ExtentList*> others{&b};
  ChunkRanges ranges = ranges_used_by(a, others);
  for (const Extent& e : a) {
    for (const auto& r : ranges[e.chunk.get()])
      if (r.first < e.offset + e.length && e.offset < r.second) return true;
  }
  return false;
}

}  // namespace memfs
}  // namespace detail
}  // namespace file_reflink
