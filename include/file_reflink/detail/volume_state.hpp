// SPDX-License-Identifier: BSL-1.0
//! \file
//! One registered volume's mutable state (its lock, its size, its
//! configuration), and the check of a volume's configuration.
#pragma once

#include <file_reflink/config.hpp>
#include <file_reflink/detail/catalog.hpp>
#include <file_reflink/detail/no_throw.hpp>
#include <file_reflink/error.hpp>
#include <file_reflink/layout.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <utility>

namespace file_reflink {
namespace detail {

//! A volume's configuration, checked as `init_volume` and `update` check it.
inline result<void> validate_config(const volume_config& cfg, const pool_config& pool) {
  FILE_REFLINK_TRYV(layout::validate_vid(cfg.vid));
  if (cfg.snap_on_start && !cfg.source) return failure(errc::invalid_config, "snap_on_start needs a source volume");
  if (cfg.source && !cfg.snap_on_start)
    return failure(errc::invalid_config, "source " + q(*cfg.source) + " is given but snap_on_start is off");
  if (cfg.source) {
    if (auto r = layout::validate_vid(*cfg.source); !r) return failure(std::move(r).error().context("source"));
    if (*cfg.source == cfg.vid) return failure(errc::invalid_config, "a volume cannot be its own source");
  }
  if (cfg.revisions_to_keep && *cfg.revisions_to_keep < -1)
    return failure(errc::invalid_config, "revisions_to_keep must be -1 (snapshots disabled), 0 or more, not " +
                                             std::to_string(*cfg.revisions_to_keep));
  if (!cfg.revisions_to_keep && pool.revisions_to_keep < -1)
    return failure(errc::invalid_config, "the pool's revisions_to_keep must be -1, 0 or more");
  if (!catalog_safe(cfg.name)) return failure(errc::invalid_config, "the name holds a line break or a NUL");
  return success();
}

//! The mutable part of one registered volume, behind its own lock: each
//! operation on a volume excludes the others that change it (queries share
//! it), on that volume only.
struct volume_state {
  explicit volume_state(volume_config c)
      : vid(c.vid), name(c.name), paths(layout::paths_of(c.vid)), size(c.size),
        cfg_(std::make_shared<const volume_config>(std::move(c))) {}
  std::shared_timed_mutex mu;
  const std::string vid;
  const std::string name;
  const layout::volume_paths paths;
  std::uint64_t size;       //!< configured size; resize and a volatile stop update it
  bool removed = false;
  bool importing = false;
  std::multiset<std::string> exports;

  //! The configuration (revisions_to_keep resolved): a snapshot of it, for
  //! anyone; it changes only under `mu` held exclusively (an update).
  std::shared_ptr<const volume_config> config() const {
    std::lock_guard<std::mutex> lk(cfg_mu_);
    return cfg_;
  }
  //! The configuration, for an operation that holds `mu` (shared or not).
  const volume_config& held_config() const noexcept { return *cfg_; }
  //! Replace it; the caller holds `mu` exclusively.
  void set_config(volume_config c) {
    auto next = std::make_shared<const volume_config>(std::move(c));
    std::lock_guard<std::mutex> lk(cfg_mu_);
    cfg_ = std::move(next);
  }

private:
  mutable std::mutex cfg_mu_;
  std::shared_ptr<const volume_config> cfg_;
};

}  // namespace detail
}  // namespace file_reflink
