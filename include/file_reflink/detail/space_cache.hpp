// SPDX-License-Identifier: BSL-1.0
//! \file
//! The space accounting cache of a pool: what an extent walk found for a
//! file, so that `space()` on an image with 100k extents is one FIEMAP walk,
//! not one per call (nor one per name: a pin, a revision and a snapshot's
//! clean link can all be the same inode).
#pragma once

#include <file_reflink/config.hpp>
#include <file_reflink/fs_types.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>

namespace file_reflink {
namespace detail {

//! Space of files by (dev, ino, ctime, size). An entry also remembers the
//! pool's generation when its walk began: every pool primitive that can
//! change which extents are shared (a clone, a copy, a remove, a rename
//! over a name, a link, a create) bumps the generation, which retires every
//! entry. A change that the pool does not make and that leaves the file
//! itself untouched (a running VM writing into a clone of this image, which
//! un-shares its blocks) shows after at most `max_age`.
class space_cache {
public:
  //! How long an entry is trusted when nothing the pool did retired it.
  static constexpr std::chrono::seconds max_age{5};
  //! Entries kept at most; past that the cache starts afresh (a pool's
  //! files are far fewer, so this only bounds a pathological pool).
  static constexpr std::size_t max_entries = 4096;

  //! The generation to pass to `find` and `store`: read it before the walk,
  //! so that a change made during the walk retires what the walk found.
  std::uint64_t generation() const noexcept { return generation_.load(std::memory_order_acquire); }

  //! Something that can change sharing happened: forget every entry.
  void bump() noexcept { generation_.fetch_add(1, std::memory_order_acq_rel); }

  //! What an earlier walk found for this very file, if still valid.
  std::optional<space_usage> find(const file_stat& st, std::uint64_t generation) const {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = entries_.find(key_of(st));
    if (it == entries_.end() || it->second.generation != generation ||
        clock::now() - it->second.made > max_age)
      return std::nullopt;
    return it->second.space;
  }

  //! Remember what a walk that began at `generation` found.
  void store(const file_stat& st, std::uint64_t generation, const space_usage& s) {
    std::lock_guard<std::mutex> lk(mu_);
    if (entries_.size() >= max_entries) entries_.clear();
    entries_[key_of(st)] = entry{s, generation, clock::now()};
  }

private:
  using clock = std::chrono::steady_clock;

  //! A file's identity and version: `ctime` moves on any change to the
  //! file's data or size, and a reused inode number comes with a new ctime.
  struct key {
    std::uint64_t dev;
    std::uint64_t ino;
    file_time ctime;
    std::uint64_t size;
    bool operator==(const key& o) const noexcept {
      return dev == o.dev && ino == o.ino && ctime == o.ctime && size == o.size;
    }
  };
  struct key_hash {
    std::size_t operator()(const key& k) const noexcept {
      std::uint64_t h = k.ino * 0x9e3779b97f4a7c15ull;
      h ^= (k.dev + 0x632be59bd9b4e019ull) + (h << 6) + (h >> 2);
      h ^= static_cast<std::uint64_t>(k.ctime.sec) + (h << 6) + (h >> 2);
      h ^= static_cast<std::uint64_t>(k.ctime.nsec) + (h << 6) + (h >> 2);
      h ^= k.size + (h << 6) + (h >> 2);
      return static_cast<std::size_t>(h);
    }
  };
  struct entry {
    space_usage space;
    std::uint64_t generation = 0;
    clock::time_point made;
  };

  static key key_of(const file_stat& st) noexcept { return key{st.dev, st.ino, st.ctime, st.size}; }

  mutable std::mutex mu_;
  std::unordered_map<key, entry, key_hash> entries_;
  std::atomic<std::uint64_t> generation_{0};
};

}  // namespace detail
}  // namespace file_reflink
