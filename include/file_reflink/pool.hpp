// SPDX-License-Identifier: BSL-1.0
//! \file
//! `Pool<FsOps>`: a directory of volume images. Setup with the reflink
//! check, the registry of volumes, space, and `scan`/`recover` of what is on
//! disk.
#pragma once

#include <file_reflink/config.hpp>
#include <file_reflink/error.hpp>
#include <file_reflink/fs_ops.hpp>
#include <file_reflink/layout.hpp>
#include <file_reflink/volume.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace file_reflink {

//! A pool of volumes in one directory. A cheap handle: copies share the
//! pool. Thread-safe.
//!
//! Nothing touches the disk until an operation needs to: `setup` creates the
//! directory (once, when the pool is made); every other operation opens the
//! existing directory and checks, each time, that it is still the same
//! directory, so a pool whose filesystem is not mounted refuses to work
//! instead of filling the empty mount point.
template <class FsOps>
class Pool {
#if !defined(FILE_REFLINK_SEPARATE_COMPILATION)
  static_assert(detail::check_fs_ops<FsOps>::value, "file_reflink::Pool: FsOps is not a filesystem policy");
#endif
public:
  using fs_ops_type = FsOps;
  using volume_type = Volume<FsOps>;

  //! A pool on `cfg.dir_path`, its files handled through `ops`.
  explicit Pool(pool_config cfg, FsOps ops = FsOps{});

  //! The configuration.
  const pool_config& config() const noexcept;
  const std::string& name() const noexcept;
  const path& dir_path() const noexcept;
  //! The policy (for `MemoryFsOps`, its test API).
  FsOps& fs_ops() noexcept;

  //! Create the pool directory if it is absent (durably), check that a clone
  //! works there, and mark it as a pool. Without reflinks and with
  //! `setup_check` on, remove the directory if setup created it and fail
  //! with `errc::reflink_unsupported`.
  result<void> setup() noexcept;

  //! Register a volume after validating its configuration; nothing on disk
  //! changes (see `Volume::create`). A missing source is reported by
  //! `start`/`verify`, when it matters. With the pool's catalog on, the
  //! volume is written there first; a vid the catalog already has with the
  //! same configuration is simply returned (a program registering its
  //! volumes again after a restart) unless `existing` says `refuse`, with
  //! another one it is `errc::volume_exists` (change it with
  //! `Volume::update`). The check and the write happen under the catalog's
  //! lock: of two processes registering one new vid with `refuse`, one wins.
  result<volume_type> init_volume(volume_config cfg,
                                  existing_volume existing = existing_volume::same_config_ok) noexcept;

  //! The registered volume `vid` (with the catalog on, one that another
  //! process registered since is found too).
  result<volume_type> get_volume(const std::string& vid) const noexcept;

  //! Apply a send stream (doc/stream-format.md) to volume `vid`, as
  //! `Volume::receive` does. Where the pool has no such volume and the
  //! stream is a full one, an origin volume of the stream's image size is
  //! registered (in the catalog, where that is on), created, and given the
  //! image; if the stream then fails, the volume is removed again. An
  //! incremental stream for a volume the pool lacks is refused
  //! (`errc::stream_base_missing`).
  result<receive_result> receive(const std::string& vid, const stream_source& source,
                                 progress_callback progress = nullptr) noexcept;

  //! Every registered volume, ordered by vid (with the catalog on, as the
  //! catalog has them now; a catalog that cannot be read is a warning in
  //! the log, and the volumes known so far are listed).
  std::vector<volume_type> list_volumes() const;

  //! The catalog as it is on disk now: the pool's recorded settings and the
  //! volumes' configurations (empty where the pool has no catalog file).
  //! Readable whether this object keeps the catalog or not.
  result<catalog_contents> read_catalog() const noexcept;

  //! Register every volume that `scan()` finds on disk and that is neither
  //! registered nor in the catalog, with a configuration inferred from its
  //! files (README, "Adopting a pool"): an origin, rw, of its image's size,
  //! keeping the pool's revisions_to_keep or as many unpinned revisions as
  //! it has on disk if that is more (the retention that kept them); one with a
  //! running image and nothing else, an origin with snapshots disabled (its
  //! stop keeps that image). A volume with only an import, a precache or
  //! temporaries is skipped and reported. With the catalog on, the adopted
  //! volumes are written there. Change what the inference got wrong with
  //! `Volume::update`.
  result<adopt_report> adopt() noexcept;

  //! Forget the pool: refused while any volume has files in it; otherwise
  //! remove the pool marker and the directory (if nothing else is in it).
  //! It waits for the operations running on registered volumes, and holds
  //! their locks while it works, so none starts meanwhile. Locks are taken
  //! in one order everywhere: a volume's before the pool's, and volumes by
  //! vid; the pool's lock is never held while waiting for a volume's.
  result<void> destroy() noexcept;

  //! Total bytes of the filesystem under the pool directory.
  result<std::uint64_t> size() noexcept;

  //! Bytes in use on that filesystem (by anything, like `df`).
  result<std::uint64_t> usage() noexcept;

  //! Whether a clone works in the pool directory now.
  result<bool> reflinks_supported() noexcept;

  //! The volumes present on disk and their state, and the files that belong
  //! to no volume. Reads only.
  result<scan_report> scan() noexcept;

  //! Remove incomplete temporary files and interrupted imports; report
  //! dirty volumes, stale precaches and foreign files. Never deletes
  //! committed data. Each volume is cleaned under its lock, so another
  //! process's operation in progress keeps its temporaries: a volume whose
  //! lock is held (by this process or another) is left alone, and reported
  //! as busy; recover never waits.
  result<recover_report> recover() noexcept;

private:
  using core_type = detail::pool_core<FsOps>;
  using handle = typename FsOps::dir_handle;

  static pool_config normalized(pool_config cfg) {
    if (cfg.name.empty()) cfg.name = cfg.dir_path.filename().string();
    return cfg;
  }

  result<void> validate(const volume_config& cfg) const;

  //! Register `cfg` (validated, resolved); the caller holds `core_->mu`.
  result<volume_type> register_locked(volume_config cfg);

  //! Make this object's registrations what catalog `c` says: its volumes
  //! registered, changed ones changed, those it lacks (removed by another
  //! process) forgotten. A volume that an operation of this object holds
  //! keeps its configuration until its next operation (which reads its
  //! entry itself). The caller holds `core_->catalog_mu`; true: all applied.
  result<bool> apply_catalog(const catalog_contents& c) const;

  //! With the catalog on: bring this object's registrations up to date.
  result<void> sync_catalog() const;

  //! A figure of the pool's filesystem (`pick` chooses it from `statvfs`).
  template <class F>
  result<std::uint64_t> space(const char* op, F&& pick) noexcept;

  //! The marker tells a pool from an empty mount point. Written durably,
  //! once: a temporary, flushed, renamed, and the directory flushed.
  result<void> write_marker(const handle& h);

  //! Walk the pool directory (never following a symlink) and sort every
  //! name into a volume's files or the foreign ones.
  result<scan_report> scan_dir(const handle& h);

  std::shared_ptr<core_type> core_;
};

}  // namespace file_reflink

// The member functions' definitions: here (header-only, the default), or in
// the one source file that includes <file_reflink/impl/src.hpp>.
#if !defined(FILE_REFLINK_SEPARATE_COMPILATION)
#include <file_reflink/impl/pool.ipp>
#endif

// Separately compiled: the instantiations for the shipped policies that this
// file and theirs, included in either order, make known are in the library.
#if defined(FILE_REFLINK_SEPARATE_COMPILATION)
#define FILE_REFLINK_DETAIL_HAVE_POOL
#include <file_reflink/detail/extern_templates.hpp>
#endif
