// SPDX-License-Identifier: BSL-1.0
//! \file
//! A command's view of a pool: the lock held, the volume file read, and a
//! `Pool<LinuxFsOps>` with every volume of the file registered. Each command
//! opens one, acts through the library's public API, and saves the file if
//! it changed a volume's config.
#pragma once

#include "progress.hpp"
#include "volume_file.hpp"

#include <file_reflink/file_reflink.hpp>

#include <memory>
#include <string>

namespace file_reflink::cli {

//! Options every command understands.
struct common_options {
  bool json = false;     //!< read commands: JSON on stdout instead of text
  bool quiet = false;    //!< no progress bar, no warnings, no "waiting for the lock"
  bool verbose = false;  //!< every file operation of the library on stderr
};

using pool_type = Pool<LinuxFsOps>;
using volume_type = Volume<LinuxFsOps>;

//! An absolute, normal form of a pool directory given on the command line.
path pool_path(const std::string& dir);

//! The library's log and progress, routed to stderr and the progress bar.
//! Shared by the pool a session opens and the one `pool init` sets up.
//! `setup_check` false: the pool was made without reflinks on purpose.
pool_config pool_config_for(const path& dir, const common_options& opts, ProgressBar& bar, bool setup_check);

class PoolSession {
public:
  //! Open the pool in `dir` (it must be one: made by `pool init` or by the
  //! Qubes driver), take its lock, read its volume file, register its volumes.
  static result<PoolSession> open(const std::string& dir, lock_mode mode, const common_options& opts);

  pool_type& pool() noexcept { return pool_; }
  VolumeFile& file() noexcept { return file_; }
  const path& dir() const noexcept { return dir_; }
  const common_options& options() const noexcept { return opts_; }
  ProgressBar& progress() noexcept { return *bar_; }

  //! The registered volume `vid`, or `errc::volume_not_found` naming the file.
  result<volume_type> volume(const std::string& vid);

  //! Write the volume file (the session holds the exclusive lock).
  result<void> save() { return write_volume_file(dir_, file_); }

private:
  PoolSession(path dir, common_options opts, std::unique_ptr<ProgressBar> bar, pool_type pool)
      : dir_(std::move(dir)), opts_(opts), bar_(std::move(bar)), pool_(std::move(pool)) {}

  path dir_;
  common_options opts_;
  std::unique_ptr<ProgressBar> bar_;  // the pool's callbacks point at it: it must not move
  pool_type pool_;
  PoolLock lock_;
  VolumeFile file_;
};

//! Space of whole volumes (see `volume_distinct_space`): what removing each
//! of `vols` would free, and what it shares with another volume of the
//! pool; `total` over them all, each byte once. From the extent maps of
//! every file of each volume, through the pool's policy.
result<std::vector<space_usage>> whole_volume_space(PoolSession& s, const std::vector<volume_type>& vols,
                                                   space_usage& total);

}  // namespace file_reflink::cli
