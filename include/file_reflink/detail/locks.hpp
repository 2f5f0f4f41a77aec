// SPDX-License-Identifier: BSL-1.0
//! \file
//! How long a pool waits for a lock, which byte of the pool's lock file
//! stands for a volume, and a volume's lock within this process.
#pragma once

#include <file_reflink/config.hpp>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string_view>

namespace file_reflink {
namespace detail {

//! When a wait for a lock gives up (empty: never).
using deadline = std::optional<std::chrono::steady_clock::time_point>;

//! The deadline of a wait that starts now, under the pool's policy.
inline deadline deadline_of(const pool_config& cfg) {
  if (!cfg.lock_timeout) return std::nullopt;
  return std::chrono::steady_clock::now() + *cfg.lock_timeout;
}

//! The byte of the pool's lock file that stands for a volume: 1 and 62 bits
//! of a hash (FNV-1a) of its vid, so that two processes find the same byte
//! without a table (byte 0 is the pool's own: its catalog). Two vids sharing
//! a byte would only wait for each other.
inline std::uint64_t lock_byte(std::string_view vid) noexcept {
  std::uint64_t h = 1469598103934665603ull;
  for (char c : vid) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return 1 + (h & ((std::uint64_t(1) << 62) - 1));
}
inline constexpr std::uint64_t pool_lock_byte = 0;

//! A volume's lock in this process: shared by queries, exclusive by changes.
struct local_lock {
  std::unique_lock<std::shared_timed_mutex> exclusive;
  std::shared_lock<std::shared_timed_mutex> shared;
};

//! Take `m` in `mode` before `until` (or however long it takes); false when
//! the deadline passed first.
inline bool lock_local(std::shared_timed_mutex& m, lock_mode mode, const deadline& until, local_lock& out) {
  if (mode == lock_mode::exclusive) {
    out.exclusive = std::unique_lock<std::shared_timed_mutex>(m, std::defer_lock);
    if (!until) return out.exclusive.lock(), true;
    return out.exclusive.try_lock_until(*until);
  }
  out.shared = std::shared_lock<std::shared_timed_mutex>(m, std::defer_lock);
  if (!until) return out.shared.lock(), true;
  return out.shared.try_lock_until(*until);
}

}  // namespace detail
}  // namespace file_reflink
