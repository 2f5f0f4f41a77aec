// SPDX-License-Identifier: BSL-1.0
//! \file
//! The small public vocabulary of `MemoryFsOps` that its internals need too:
//! the names of the contract operations (for fault injection and call
//! observation) and the options of a simulated mount.
#pragma once

#include <cstddef>
#include <cstdint>

namespace file_reflink {

//! One value per contract operation, so a test can count calls, fail a
//! chosen one, or record the sequence an operation made.
enum class fs_op : std::uint8_t {
  open_dir,
  stat_path,
  remove_dir,
  mkdir,
  rmdir,
  create,
  read,
  write,
  resize,
  punch_hole,
  rename,
  link,
  remove,
  fsync,
  stat,
  set_mtime,
  list,
  statvfs,
  extents,
  clone,
  copy,
  notify_resize,
  probe_reflink,
};

//! How many values `fs_op` has (for per-operation tables).
inline constexpr std::size_t fs_op_count = static_cast<std::size_t>(fs_op::probe_reflink) + 1;

//! The contract name of an operation ("open_dir", "clone", ...), as a
//! failing test prints it.
inline const char* to_string(fs_op op) noexcept {
  switch (op) {
    case fs_op::open_dir: return "open_dir";
    case fs_op::stat_path: return "stat_path";
    case fs_op::remove_dir: return "remove_dir";
    case fs_op::mkdir: return "mkdir";
    case fs_op::rmdir: return "rmdir";
    case fs_op::create: return "create";
    case fs_op::read: return "read";
    case fs_op::write: return "write";
    case fs_op::resize: return "resize";
    case fs_op::punch_hole: return "punch_hole";
    case fs_op::rename: return "rename";
    case fs_op::link: return "link";
    case fs_op::remove: return "remove";
    case fs_op::fsync: return "fsync";
    case fs_op::stat: return "stat";
    case fs_op::set_mtime: return "set_mtime";
    case fs_op::list: return "list";
    case fs_op::statvfs: return "statvfs";
    case fs_op::extents: return "extents";
    case fs_op::clone: return "clone";
    case fs_op::copy: return "copy";
    case fs_op::notify_resize: return "notify_resize";
    case fs_op::probe_reflink: return "probe_reflink";
  }
  return "unknown";
}

//! A new in-memory filesystem mounted with `MemoryFsOps::mount`: an
//! XFS/btrfs-like one by default, ext4-like (no clones) with `reflink = false`.
struct mount_options {
  //! Whether files can share extents; false makes clone fail with EOPNOTSUPP.
  bool reflink = true;
  //! Bytes of data the filesystem holds before writes fail with ENOSPC.
  std::uint64_t capacity = 1ull << 40;
};

}  // namespace file_reflink
