// SPDX-License-Identifier: BSL-1.0
//! \file
//! The small public vocabulary of `MemoryFsOps` that its internals need too:
//! the options of a simulated mount (and `fs_op`, the names of the contract
//! operations, for fault injection and call observation).
#pragma once

#include <file_reflink/fs_op.hpp>

#include <cstddef>
#include <cstdint>

namespace file_reflink {

//! What `MemoryFsOps::write_file` does when the file is missing.
enum class missing_file : std::uint8_t {
  create,  //!< make it (0600): setup that plants a new file
  fail,    //!< fail with ENOENT: the caller expects the file to exist
};

//! Whose behaviour a simulated filesystem copies where Linux filesystems
//! differ from each other (beyond reflinks, sizes and times, which have
//! options of their own).
enum class fs_quirks : std::uint8_t {
  //! XFS: a directory has 2 + subdirectories links; punch_hole always
  //! updates mtime and ctime; a file that grows or shrinks inside a block
  //! rewrites that block's tail with zeros where it holds data (a shared
  //! block is copied); rename over a non-empty directory says EEXIST;
  //! FIEMAP of a directory says EOPNOTSUPP.
  xfs,
  //! btrfs: every directory says 1 link; punch_hole changes the times only
  //! when its range meets data; a file that grows from inside a block
  //! rewrites that block with zeros past the old end, allocating it even
  //! where it was a hole, and a file that shrinks leaves its last block as
  //! it is (still shared with a clone); rename over a non-empty directory
  //! says ENOTEMPTY; FIEMAP of a directory says EOPNOTSUPP.
  btrfs,
  //! ext4: as XFS, but rename over a non-empty directory says ENOTEMPTY,
  //! FIEMAP of a directory maps its block, punch_hole past the end of file
  //! frees the whole last block, and no file can be made in a removed
  //! directory even with O_TMPFILE (EPERM).
  ext4,
};

//! A new in-memory filesystem mounted with `MemoryFsOps::mount`: an
//! XFS-like one with reflinks by default; `btrfs()`, `xfs()` and `ext4()`
//! copy those filesystems as mkfs makes them with 4 KiB blocks.
struct mount_options {
  //! Whether files can share extents; false makes clone fail with EOPNOTSUPP.
  bool reflink = true;
  //! Bytes of data the filesystem holds before writes fail with ENOSPC.
  std::uint64_t capacity = 1ull << 40;
  //! Largest file size (the kernel's `s_maxbytes`): a resize beyond it fails
  //! with EFBIG and a write stops there. ext4 with 4 KiB blocks: 16 TiB - 4 KiB.
  std::uint64_t max_file_size = static_cast<std::uint64_t>(INT64_MAX);
  //! The seconds a timestamp can hold: the kernel clamps a time outside the
  //! range to its nearest end (nanoseconds 0 there). btrfs keeps any time.
  std::int64_t time_min = INT64_MIN;
  std::int64_t time_max = INT64_MAX;
  //! Whose behaviour it copies where filesystems differ (see `fs_quirks`).
  fs_quirks quirks = fs_quirks::xfs;

  //! Like btrfs: reflinks, any file size and any time.
  static mount_options btrfs() noexcept {
    mount_options o;
    o.quirks = fs_quirks::btrfs;
    return o;
  }
  //! Like XFS made with reflink=1 (and bigtime, mkfs's default): times from
  //! 1901-12-13 to 2486-07-02.
  static mount_options xfs() noexcept {
    mount_options o;
    o.time_min = INT32_MIN;
    o.time_max = 16299260424;
    return o;
  }
  //! Like ext4 with 4 KiB blocks and 256-byte inodes: no reflinks, files up
  //! to 16 TiB - 4 KiB, times from 1901-12-13 to 2446-05-10.
  static mount_options ext4() noexcept {
    mount_options o;
    o.reflink = false;
    o.max_file_size = (std::uint64_t(1) << 44) - 4096;
    o.time_min = INT32_MIN;
    o.time_max = 15032385535;
    o.quirks = fs_quirks::ext4;
    return o;
  }
};

}  // namespace file_reflink
