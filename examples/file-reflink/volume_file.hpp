// SPDX-License-Identifier: BSL-1.0
//! \file
//! What the command remembers between runs: the pool's settings and every
//! volume's config, in one JSON file at the top of the pool, and the lock
//! that keeps two invocations from losing each other's changes.
//!
//! Both names start with ".file-reflink", a prefix the library reserves for
//! tools: `Pool::scan` skips them, no vid can start with a dot, and a Qubes
//! driver sharing the pool only ever looks at its own volumes' image names.
#pragma once

#include <file_reflink/config.hpp>
#include <file_reflink/error.hpp>

#include <map>
#include <string>

namespace file_reflink::cli {

//! The volume configs, next to the images they describe.
inline constexpr const char* volume_file_name = ".file-reflink-volumes.json";
//! flock(2)ed: shared by commands that read, exclusive by those that change.
inline constexpr const char* lock_file_name = ".file-reflink.lock";

//! The pool's own settings, as `pool init` chose them.
struct pool_settings {
  int revisions_to_keep = 1;  //!< the default of its volumes
  bool setup_check = true;    //!< false: made on a filesystem without reflinks, on purpose
};

//! The whole file. A pool without it (one the Qubes driver made) has the
//! default settings and no volumes yet.
struct VolumeFile {
  bool exists = false;
  pool_settings pool;
  std::map<std::string, volume_config> volumes;  //!< by vid
};

//! The file of the pool in `dir`; defaults when it does not exist yet.
result<VolumeFile> read_volume_file(const path& dir);

//! Replace the file atomically: a temporary beside it, fsynced, renamed over
//! it, and the directory fsynced, so a crash leaves the old file or the new
//! one, never half of one. Call it holding the exclusive lock.
result<void> write_volume_file(const path& dir, const VolumeFile& file);

enum class lock_mode { shared, exclusive };

//! A held flock on the pool's lock file, released when destroyed (or when
//! the process ends, however it ends).
class PoolLock {
public:
  PoolLock() = default;
  PoolLock(PoolLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  PoolLock& operator=(PoolLock&& o) noexcept;
  PoolLock(const PoolLock&) = delete;
  PoolLock& operator=(const PoolLock&) = delete;
  ~PoolLock();

  //! Take the lock of the pool in `dir`, waiting while another command
  //! holds it (saying so on stderr unless `quiet`); Ctrl-C while waiting
  //! gives `errc::cancelled`.
  static result<PoolLock> acquire(const path& dir, lock_mode mode, bool quiet);

private:
  explicit PoolLock(int fd) noexcept : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace file_reflink::cli
