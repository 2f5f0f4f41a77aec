// SPDX-License-Identifier: BSL-1.0
//! \file
//! The operations of the filesystem-operations contract, listed once.
//!
//! `FILE_REFLINK_FS_OPERATIONS(X)` calls `X(name, return type, (parameters))`
//! for each required operation, in the contract's order, and
//! `FILE_REFLINK_FS_OPTIONAL_OPERATIONS(X)` for each optional one. The parameters are written
//! as a policy declares them, with `dir_handle` and `lock_file` standing for
//! the policy's own types; every operation is a `noexcept` member function.
//! Everything that has to know the whole contract is generated from this
//! list: the `fs_op` enum and its names below, the traits, `is_fs_ops_v`, the
//! `FsOps` concept and the diagnostics of `fs_ops.hpp`, and the decorators
//! of `testing.hpp`. What each operation does is documented in `fs_ops.hpp`.
#pragma once

#include <cstddef>
#include <cstdint>

// clang-format off
#define FILE_REFLINK_FS_OPERATIONS(X)                                                                  \
  X(open_dir, result<opened_dir<dir_handle>>, (const path& abs, bool create))                          \
  X(stat_path, result<file_stat>, (const path& abs))                                                   \
  X(remove_dir, result<void>, (const path& abs))                                                       \
  X(path_of, result<path>, (const dir_handle& dir, const path& rel))                                   \
  X(mkdir, result<void>, (const dir_handle& dir, const path& rel))                                     \
  X(rmdir, result<void>, (const dir_handle& dir, const path& rel))                                     \
  X(create, result<void>, (const dir_handle& dir, const path& rel, std::uint64_t size, create_mode mode)) \
  X(read, result<std::size_t>, (const dir_handle& dir, const path& rel, std::uint64_t offset, void* buf, std::size_t len)) \
  X(write, result<void>, (const dir_handle& dir, const path& rel, std::uint64_t offset, const void* data, std::size_t len)) \
  X(resize, result<void>, (const dir_handle& dir, const path& rel, std::uint64_t size))                \
  X(punch_hole, result<void>, (const dir_handle& dir, const path& rel, std::uint64_t offset, std::uint64_t len)) \
  X(rename, result<void>, (const dir_handle& dir, const path& from, const path& to))                   \
  X(link, result<void>, (const dir_handle& dir, const path& from, const path& to))                     \
  X(remove, result<void>, (const dir_handle& dir, const path& rel))                                    \
  X(fsync, result<void>, (const dir_handle& dir, const path& rel))                                     \
  X(stat, result<file_stat>, (const dir_handle& dir, const path& rel))                                 \
  X(set_mtime, result<void>, (const dir_handle& dir, const path& rel, file_time mtime))                \
  X(list, result<std::vector<dir_entry>>, (const dir_handle& dir, const path& rel))                    \
  X(statvfs, result<fs_space>, (const dir_handle& dir))                                                \
  X(extents, result<std::vector<extent>>, (const dir_handle& dir, const path& rel))                    \
  X(data_segments, result<std::vector<segment>>, (const dir_handle& dir, const path& rel, std::uint64_t limit)) \
  X(clone, result<void>, (const dir_handle& src_dir, const path& src, const dir_handle& dst_dir, const path& dst)) \
  X(probe_reflink, result<bool>, (const dir_handle& dir))                                              \
  X(open_lock, result<lock_file>, (const dir_handle& dir, const path& rel))                            \
  X(lock, result<bool>, (const lock_file& file, std::uint64_t offset, lock_mode mode, bool wait))      \
  X(unlock, result<void>, (const lock_file& file, std::uint64_t offset))

//! The operations a policy may lack, in the same form: a filesystem without
//! them still works (the library detects them, with `has_<op>_v`, and does
//! without). A decorator of `testing.hpp` has them all, and answers
//! `std::errc::operation_not_supported` where its inner policy lacks one.
#define FILE_REFLINK_FS_OPTIONAL_OPERATIONS(X)                                                         \
  X(copy_range, result<std::uint64_t>, (const dir_handle& src_dir, const path& src, const dir_handle& dst_dir, const path& dst, std::uint64_t offset, std::uint64_t len)) \
  X(notify_resize, result<unsigned>, (const dir_handle& dir, const path& rel))                         \
  X(advise_willneed, result<void>, (const dir_handle& dir, const path& rel, std::uint64_t offset, std::uint64_t len)) \
  X(storage_extents, result<std::vector<extent>>, (const dir_handle& dir, const path& rel))

//! Every operation: the required ones, then the optional ones.
#define FILE_REFLINK_FS_ALL_OPERATIONS(X) FILE_REFLINK_FS_OPERATIONS(X) FILE_REFLINK_FS_OPTIONAL_OPERATIONS(X)
// clang-format on

namespace file_reflink {

//! One value per contract operation (the optional ones last), in the
//! contract's order: for counting
//! calls, failing a chosen one, or recording the sequence an operation made.
enum class fs_op : std::uint8_t {
#define FILE_REFLINK_FS_OP_ENUM_(name, ret, params) name,
  FILE_REFLINK_FS_ALL_OPERATIONS(FILE_REFLINK_FS_OP_ENUM_)
#undef FILE_REFLINK_FS_OP_ENUM_
};

//! How many values `fs_op` has (for per-operation tables).
inline constexpr std::size_t fs_op_count = 0
#define FILE_REFLINK_FS_OP_COUNT_(name, ret, params) +1
    FILE_REFLINK_FS_ALL_OPERATIONS(FILE_REFLINK_FS_OP_COUNT_)
#undef FILE_REFLINK_FS_OP_COUNT_
    ;

//! The contract name of an operation ("open_dir", "clone", ...).
inline const char* to_string(fs_op op) noexcept {
  switch (op) {
#define FILE_REFLINK_FS_OP_NAME_(name, ret, params) \
  case fs_op::name: return #name;
    FILE_REFLINK_FS_ALL_OPERATIONS(FILE_REFLINK_FS_OP_NAME_)
#undef FILE_REFLINK_FS_OP_NAME_
  }
  return "unknown";
}

}  // namespace file_reflink
