// SPDX-License-Identifier: BSL-1.0
//! \file
//! The value types that a filesystem-operations policy's operations take and
//! return: paths, stats, extents, copy options and results, lock modes. The
//! contract itself (which operations a policy has) is `fs_ops.hpp`; a
//! policy's internals include only this header.
#pragma once

#include <boost/filesystem/path.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace file_reflink {

//! Paths are Boost.Filesystem paths.
using path = boost::filesystem::path;

//! What `stat` found at a name.
enum class file_type : std::uint8_t { regular, directory, symlink, other };

//! A timestamp as a filesystem keeps it: whole seconds since the epoch
//! (negative before 1970) and nanoseconds in [0, 1e9). Two fields, not one
//! count of nanoseconds: a signed 64-bit count ends in 2262 and begins in
//! 1677, and a file may carry any mtime of years 0000-9999.
struct file_time {
  std::int64_t sec = 0;
  std::uint32_t nsec = 0;

  //! A time given in nanoseconds since the epoch (any int64 value).
  static constexpr file_time from_ns(std::int64_t ns) noexcept {
    std::int64_t s = ns / 1000000000;
    std::int64_t n = ns % 1000000000;
    if (n < 0) {
      n += 1000000000;
      --s;
    }
    return file_time{s, static_cast<std::uint32_t>(n)};
  }
  //! One nanosecond later (the same at the end of time).
  constexpr file_time next() const noexcept {
    if (nsec + 1 < 1000000000u) return file_time{sec, nsec + 1};
    if (sec == INT64_MAX) return *this;
    return file_time{sec + 1, 0};
  }
  friend constexpr bool operator==(const file_time& a, const file_time& b) noexcept {
    return a.sec == b.sec && a.nsec == b.nsec;
  }
  friend constexpr bool operator!=(const file_time& a, const file_time& b) noexcept { return !(a == b); }
  friend constexpr bool operator<(const file_time& a, const file_time& b) noexcept {
    return a.sec < b.sec || (a.sec == b.sec && a.nsec < b.nsec);
  }
  friend constexpr bool operator>(const file_time& a, const file_time& b) noexcept { return b < a; }
  friend constexpr bool operator<=(const file_time& a, const file_time& b) noexcept { return !(b < a); }
  friend constexpr bool operator>=(const file_time& a, const file_time& b) noexcept { return !(a < b); }
};

//! A stat. `allocated` is what the file occupies (`st_blocks * 512`);
//! `ctime` changes on any change to the file, which makes (`dev`, `ino`,
//! `ctime`) a cache key for its extent map.
struct file_stat {
  file_type type = file_type::other;
  std::uint64_t size = 0;
  std::uint64_t allocated = 0;
  file_time mtime;
  file_time ctime;
  std::uint64_t ino = 0;
  std::uint64_t dev = 0;
  std::uint64_t nlink = 0;
};

//! One name in a directory.
struct dir_entry {
  std::string name;
  file_type type = file_type::other;
};

//! Size and free space of a filesystem, in bytes.
struct fs_space {
  std::uint64_t size = 0;       //!< total
  std::uint64_t free = 0;       //!< free, including what only root may use
  std::uint64_t available = 0;  //!< free for an unprivileged user
};

//! One data extent of a file. `physical` is where it lives on the device:
//! two files share storage where their physical ranges overlap. `shared`
//! is the filesystem's own flag (`FIEMAP_EXTENT_SHARED`). `exact` is false
//! where the address does not name the bytes alone (FIEMAP flags the extent
//! UNKNOWN, DELALLOC, ENCODED, DATA_ENCRYPTED, NOT_ALIGNED, DATA_INLINE or
//! DATA_TAIL: a compressed extent's parts all report its start, an inline
//! one reports 0): two such extents at one address need not hold the same
//! bytes.
struct extent {
  std::uint64_t logical = 0;
  std::uint64_t physical = 0;
  std::uint64_t length = 0;
  bool shared = false;
  bool exact = true;
};

//! One data segment of a file: a range between holes, as
//! `SEEK_DATA`/`SEEK_HOLE` find it.
struct segment {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

//! How a copy was made.
enum class copy_method : std::uint8_t {
  none,             //!< nothing to copy (an empty source or a copy to size 0)
  clone,            //!< `FICLONE`: extents shared, no data moved
  copy_file_range,  //!< in the kernel, per data segment (may clone, or copy on an NFS server)
  sparse_copy,      //!< `SEEK_DATA`/`SEEK_HOLE` with reads and writes in this process
};

//! A short name for a copy method ("clone", "copy_file_range", ...).
inline const char* to_string(copy_method m) noexcept {
  switch (m) {
    case copy_method::none: return "none";
    case copy_method::clone: return "clone";
    case copy_method::copy_file_range: return "copy_file_range";
    case copy_method::sparse_copy: return "sparse_copy";
  }
  return "unknown";
}

//! Called as a long copy goes on, with bytes done and bytes in all; return
//! false to cancel the copy (it then fails with `errc::cancelled` and leaves
//! no destination behind).
using progress_callback = std::function<bool(std::uint64_t done, std::uint64_t total)>;

//! How the library's copy (clone, range copy, sparse copy) copies.
struct copy_options {
  //! Resize the destination to this size: a larger size adds a hole at the
  //! end, a smaller one copies only what fits, 0 copies nothing.
  std::optional<std::uint64_t> size;
  //! Optional progress report and cancellation point.
  progress_callback progress;
  //! Try `FICLONE` first (tests and benchmarks turn it off to time a fallback).
  bool try_clone = true;
  //! Try `copy_file_range` (the policy's `copy_range`, where it has one)
  //! before the in-process copy.
  bool try_copy_file_range = true;
};

//! What a copy did.
struct copy_result {
  copy_method method = copy_method::none;
  //! Bytes of data cloned or copied (holes excluded).
  std::uint64_t bytes = 0;
  //! This copy is the one that found the destination's filesystem without
  //! reflinks; later copies skip the clone attempt. A caller logs the fallback
  //! once, when this is set.
  bool reflink_unsupported_noticed = false;
};

//! How `create` treats an existing file.
enum class create_mode : std::uint8_t {
  exclusive,  //!< fail with `EEXIST`
  truncate,   //!< empty it, then size it
};

//! A lock: shared (readers) or exclusive (writers).
enum class lock_mode : std::uint8_t { shared, exclusive };

//! What `open_dir` returns: the handle, and whether the directory was made.
template <class Handle>
struct opened_dir {
  Handle handle;
  bool created = false;
};

}  // namespace file_reflink
