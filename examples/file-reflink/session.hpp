// SPDX-License-Identifier: BSL-1.0
//! \file
//! A command's view of a pool: a `Pool<LinuxFsOps>` that keeps its volumes
//! in the library's catalog, with the pool's settings as the catalog
//! records them. Each command opens one and acts through the library's
//! public API; the library locks each volume an operation works on, in this
//! process and against every other, so the command holds no lock of its own.
#pragma once

#include "du.hpp"
#include "progress.hpp"
#include "volume_file.hpp"

#include <file_reflink/file_reflink.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace file_reflink::cli {

//! Options every command understands.
struct common_options {
  bool json = false;     //!< JSON on stdout instead of text; errors as JSON on stderr
  bool quiet = false;    //!< no progress bar, no warnings, no notes
  bool verbose = false;  //!< every file operation of the library on stderr
  //! How long an operation waits for a volume (or the catalog) that another
  //! command holds: empty as long as it takes, zero not at all (--no-wait),
  //! else up to that (--wait SECONDS).
  std::optional<std::chrono::milliseconds> lock_timeout;
};

using pool_type = Pool<LinuxFsOps>;
using volume_type = Volume<LinuxFsOps>;

//! An absolute, normal form of a pool directory given on the command line.
path pool_path(const std::string& dir);

//! A pool with the catalog on and the options' wait policy; the library's
//! log and progress routed to stderr and the progress bar. Shared by the
//! pool a session opens and the one `pool init` sets up. `setup_check`
//! false: the pool was made without reflinks on purpose.
pool_config pool_config_for(const path& dir, const common_options& opts, ProgressBar& bar, bool setup_check);

class PoolSession {
public:
  //! Open the pool in `dir` (it must be one: made by `pool init` or by the
  //! Qubes driver; `unmarked_ok`: any directory the library accepts, for
  //! `pool adopt`), converting the volume file of an earlier version of the
  //! command into the catalog first if it has one, with the settings the
  //! catalog records (the defaults where it records none).
  static result<PoolSession> open(const std::string& dir, const common_options& opts, bool unmarked_ok = false);

  pool_type& pool() noexcept { return pool_; }
  const path& dir() const noexcept { return dir_; }
  const common_options& options() const noexcept { return opts_; }
  ProgressBar& progress() noexcept { return *bar_; }
  //! The settings the catalog records (`pool init` records them).
  const pool_settings& settings() const noexcept { return settings_; }

  //! The registered volume `vid`, or `errc::volume_not_found` naming the pool.
  result<volume_type> volume(const std::string& vid);

private:
  PoolSession(path dir, common_options opts, std::unique_ptr<ProgressBar> bar, pool_type pool, pool_settings s)
      : dir_(std::move(dir)), opts_(opts), bar_(std::move(bar)), pool_(std::move(pool)), settings_(s) {}

  path dir_;
  common_options opts_;
  std::unique_ptr<ProgressBar> bar_;  // the pool's callbacks point at it: it must not move
  pool_type pool_;
  pool_settings settings_;
};

//! Space of whole volumes (see `volume_distinct_space`): what removing each
//! of `vids` would free, and what it shares with another of them; `total`
//! over them all, each byte once. From the extent maps of every file of
//! each volume, through the pool's policy.
//! With `files`: every file of each volume (what its line counts: every
//! name in its directory, the hard links too), each measured against every
//! other file of the pool.
result<std::vector<space_usage>> whole_volume_space(PoolSession& s, const std::vector<std::string>& vids,
                                                   space_usage& total,
                                                   std::vector<std::vector<volume_file_space>>* files = nullptr);

}  // namespace file_reflink::cli
