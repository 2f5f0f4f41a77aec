// SPDX-License-Identifier: BSL-1.0
//! \file
//! What a filesystem-operations policy provides, said once: the value types
//! its operations exchange, one trait per operation, `is_fs_ops_v`, and the
//! `FsOps` concept where the compiler has concepts.
//!
//! A policy is a small copyable object (`LinuxFsOps` is empty; `MemoryFsOps`
//! is a handle to a shared in-memory filesystem). Its operations work on
//! paths relative to an open directory, its `dir_handle`: a pool opens its
//! directory once and every name inside it is resolved beneath that handle,
//! never through a symlink. Every operation is `noexcept` and returns a
//! `result`; a failed system call comes back as its errno, untouched, in the
//! system category, with a message that names the operation and the path(s).
//!
//! The operations, with `H = const dir_handle&` and `P = const path&` (a
//! path relative to the handle's directory, made of plain names):
//!
//! | operation | what it does |
//! |---|---|
//! | `result<opened_dir<dir_handle>> open_dir(P abs, bool create)` | open a directory by absolute path, creating it and its missing parents (durably) when `create` |
//! | `result<file_stat> stat_path(P abs)` | stat an absolute path (following symlinks): the identity of a pool directory |
//! | `result<void> remove_dir(P abs)` | remove an empty directory by absolute path, durably |
//! | `path path_of(H, P rel)` | the absolute path of `rel`, for messages and for a VM to attach |
//! | `result<void> mkdir(H, P)` / `rmdir(H, P)` | make or remove one directory (mode 0755) |
//! | `result<void> create(H, P, uint64_t size, create_mode)` | a new sparse regular file of `size`, mode 0600 |
//! | `result<size_t> read(H, P, uint64_t off, void*, size_t)` | read at an offset; short only at end of file |
//! | `result<void> write(H, P, uint64_t off, const void*, size_t)` | write all bytes at an offset |
//! | `result<void> resize(H, P, uint64_t size)` | truncate or extend (sparsely) |
//! | `result<void> punch_hole(H, P, uint64_t off, uint64_t len)` | deallocate a range; size unchanged |
//! | `result<void> rename(H, P from, P to)` | rename, replacing `to` if it exists |
//! | `result<void> link(H, P from, P to)` | a hard link; `EEXIST` if `to` exists |
//! | `result<void> remove(H, P)` | unlink a file or symlink (never follows it) |
//! | `result<void> fsync(H, P)` | flush a file's data and metadata, or a directory's entries (`""` is the handle's directory) |
//! | `result<file_stat> stat(H, P)` | lstat: a symlink is reported, not followed |
//! | `result<void> set_mtime(H, P, file_time)` | set the modification time |
//! | `result<std::vector<dir_entry>> list(H, P)` | the entries of a directory, without `.` and `..` |
//! | `result<fs_space> statvfs(H)` | size and free space of the handle's filesystem |
//! | `result<std::vector<extent>> extents(H, P)` | the file's data extents, with the shared flag |
//! | `result<void> clone(H src, P, H dst, P)` | a new file (exclusive, 0600) sharing all extents of `src`; no fallback |
//! | `result<copy_result> copy(H src, P, H dst, P, const copy_options&)` | a new file (exclusive, 0600) with `src`'s bytes: clone, else `copy_file_range`, else a sparse copy; holes stay holes |
//! | `result<unsigned> notify_resize(H, P)` | tell every loop device backed by the file about its new size; returns how many |
//! | `result<bool> probe_reflink(H)` | whether a clone works in the handle's directory |
//! | `result<lock_file> open_lock(H, P rel)` | open (creating it, 0600) the file whose bytes are locks: a new open file description, whose locks are its own and die with it or its process |
//! | `result<bool> lock(const lock_file&, uint64_t offset, lock_mode, bool wait)` | lock one byte, shared or exclusive, against every other `lock_file` (in any process, on any host of a shared filesystem that enforces record locks); waits, or says false at once |
//! | `result<void> unlock(const lock_file&, uint64_t offset)` | release that byte's lock |
#pragma once

#include <file_reflink/error.hpp>

#include <boost/filesystem/path.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

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
//! is the filesystem's own flag (`FIEMAP_EXTENT_SHARED`).
struct extent {
  std::uint64_t logical = 0;
  std::uint64_t physical = 0;
  std::uint64_t length = 0;
  bool shared = false;
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

//! How `copy` copies.
struct copy_options {
  //! Resize the destination to this size: a larger size adds a hole at the
  //! end, a smaller one copies only what fits, 0 copies nothing.
  std::optional<std::uint64_t> size;
  //! Optional progress report and cancellation point.
  progress_callback progress;
  //! Try `FICLONE` first (tests and benchmarks turn it off to time a fallback).
  bool try_clone = true;
  //! Try `copy_file_range` before the in-process copy.
  bool try_copy_file_range = true;
};

//! What `copy` did.
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

namespace detail {
template <class...>
using void_t = void;
template <class O>
using handle_of = typename O::dir_handle;
template <class O>
using lock_file_of = typename O::lock_file;
template <class O>
O& ops_ref() noexcept;
template <class T>
T& lvalue() noexcept;
}  // namespace detail

// One trait per operation: `has_<op><O>` is true when `O` provides the
// operation with the expected signature, return type and noexcept.
#define FILE_REFLINK_FS_OP_TRAIT(name, ret, ...)                                              \
  namespace detail {                                                                         \
  template <class O, class = void>                                                           \
  struct has_##name##_impl : std::false_type {};                                             \
  template <class O>                                                                         \
  struct has_##name##_impl<O, void_t<decltype(ops_ref<O>().name(__VA_ARGS__))>>              \
      : std::bool_constant<std::is_same<decltype(ops_ref<O>().name(__VA_ARGS__)), ret>::value && \
                           noexcept(ops_ref<O>().name(__VA_ARGS__))> {};                     \
  }                                                                                          \
  template <class O>                                                                         \
  struct has_##name : detail::has_##name##_impl<O> {};                                       \
  template <class O>                                                                         \
  inline constexpr bool has_##name##_v = has_##name<O>::value;

#define FILE_REFLINK_H_ std::declval<const detail::handle_of<O>&>()
#define FILE_REFLINK_P_ std::declval<const path&>()
#define FILE_REFLINK_U64_ std::declval<std::uint64_t>()

namespace detail {
template <class O, class = void>
struct has_dir_handle_impl : std::false_type {};
template <class O>
struct has_dir_handle_impl<O, void_t<handle_of<O>>>
    : std::bool_constant<std::is_copy_constructible<handle_of<O>>::value> {};
}  // namespace detail
//! The policy names a copyable `lock_file` type: an open lock file.
namespace detail {
template <class O, class = void>
struct has_lock_file_impl : std::false_type {};
template <class O>
struct has_lock_file_impl<O, void_t<lock_file_of<O>>>
    : std::bool_constant<std::is_copy_constructible<lock_file_of<O>>::value> {};
}  // namespace detail
template <class O>
struct has_lock_file : detail::has_lock_file_impl<O> {};
template <class O>
inline constexpr bool has_lock_file_v = has_lock_file<O>::value;

//! The policy names a copyable `dir_handle` type: an open directory.
template <class O>
struct has_dir_handle : detail::has_dir_handle_impl<O> {};
template <class O>
inline constexpr bool has_dir_handle_v = has_dir_handle<O>::value;

FILE_REFLINK_FS_OP_TRAIT(open_dir, result<opened_dir<detail::handle_of<O>>>, FILE_REFLINK_P_, std::declval<bool>())
FILE_REFLINK_FS_OP_TRAIT(stat_path, result<file_stat>, FILE_REFLINK_P_)
FILE_REFLINK_FS_OP_TRAIT(remove_dir, result<void>, FILE_REFLINK_P_)
FILE_REFLINK_FS_OP_TRAIT(path_of, path, FILE_REFLINK_H_, FILE_REFLINK_P_)
FILE_REFLINK_FS_OP_TRAIT(mkdir, result<void>, FILE_REFLINK_H_, FILE_REFLINK_P_)
FILE_REFLINK_FS_OP_TRAIT(rmdir, result<void>, FILE_REFLINK_H_, FILE_REFLINK_P_)
FILE_REFLINK_FS_OP_TRAIT(create, result<void>, FILE_REFLINK_H_, FILE_REFLINK_P_, FILE_REFLINK_U64_,
                         std::declval<create_mode>())
FILE_REFLINK_FS_OP_TRAIT(read, result<std::size_t>, FILE_REFLINK_H_, FILE_REFLINK_P_, FILE_REFLINK_U64_,
                         std::declval<void*>(), std::declval<std::size_t>())
FILE_REFLINK_FS_OP_TRAIT(write, result<void>, FILE_REFLINK_H_, FILE_REFLINK_P_, FILE_REFLINK_U64_,
                         std::declval<const void*>(), std::declval<std::size_t>())
FILE_REFLINK_FS_OP_TRAIT(resize, result<void>, FILE_REFLINK_H_, FILE_REFLINK_P_, FILE_REFLINK_U64_)
FILE_REFLINK_FS_OP_TRAIT(punch_hole, result<void>, FILE_REFLINK_H_, FILE_REFLINK_P_, FILE_REFLINK_U64_,
                         FILE_REFLINK_U64_)
FILE_REFLINK_FS_OP_TRAIT(rename, result<void>, FILE_REFLINK_H_, FILE_REFLINK_P_, FILE_REFLINK_P_)
FILE_REFLINK_FS_OP_TRAIT(link, result<void>, FILE_REFLINK_H_, FILE_REFLINK_P_, FILE_REFLINK_P_)
FILE_REFLINK_FS_OP_TRAIT(remove, result<void>, FILE_REFLINK_H_, FILE_REFLINK_P_)
FILE_REFLINK_FS_OP_TRAIT(fsync, result<void>, FILE_REFLINK_H_, FILE_REFLINK_P_)
FILE_REFLINK_FS_OP_TRAIT(stat, result<file_stat>, FILE_REFLINK_H_, FILE_REFLINK_P_)
FILE_REFLINK_FS_OP_TRAIT(set_mtime, result<void>, FILE_REFLINK_H_, FILE_REFLINK_P_, std::declval<file_time>())
FILE_REFLINK_FS_OP_TRAIT(list, result<std::vector<dir_entry>>, FILE_REFLINK_H_, FILE_REFLINK_P_)
FILE_REFLINK_FS_OP_TRAIT(statvfs, result<fs_space>, FILE_REFLINK_H_)
FILE_REFLINK_FS_OP_TRAIT(extents, result<std::vector<extent>>, FILE_REFLINK_H_, FILE_REFLINK_P_)
FILE_REFLINK_FS_OP_TRAIT(clone, result<void>, FILE_REFLINK_H_, FILE_REFLINK_P_, FILE_REFLINK_H_, FILE_REFLINK_P_)
FILE_REFLINK_FS_OP_TRAIT(copy, result<copy_result>, FILE_REFLINK_H_, FILE_REFLINK_P_, FILE_REFLINK_H_,
                         FILE_REFLINK_P_, std::declval<const copy_options&>())
FILE_REFLINK_FS_OP_TRAIT(notify_resize, result<unsigned>, FILE_REFLINK_H_, FILE_REFLINK_P_)
FILE_REFLINK_FS_OP_TRAIT(probe_reflink, result<bool>, FILE_REFLINK_H_)
FILE_REFLINK_FS_OP_TRAIT(open_lock, result<detail::lock_file_of<O>>, FILE_REFLINK_H_, FILE_REFLINK_P_)
FILE_REFLINK_FS_OP_TRAIT(lock, result<bool>, std::declval<const detail::lock_file_of<O>&>(), FILE_REFLINK_U64_,
                         std::declval<lock_mode>(), std::declval<bool>())
FILE_REFLINK_FS_OP_TRAIT(unlock, result<void>, std::declval<const detail::lock_file_of<O>&>(), FILE_REFLINK_U64_)

#undef FILE_REFLINK_FS_OP_TRAIT
#undef FILE_REFLINK_H_
#undef FILE_REFLINK_P_
#undef FILE_REFLINK_U64_

//! True when `O` provides every operation of the contract.
template <class O>
inline constexpr bool is_fs_ops_v =
    std::is_copy_constructible<O>::value && has_dir_handle_v<O> && has_open_dir_v<O> && has_stat_path_v<O> &&
    has_remove_dir_v<O> && has_path_of_v<O> && has_mkdir_v<O> && has_rmdir_v<O> && has_create_v<O> &&
    has_read_v<O> && has_write_v<O> && has_resize_v<O> && has_punch_hole_v<O> && has_rename_v<O> &&
    has_link_v<O> && has_remove_v<O> && has_fsync_v<O> && has_stat_v<O> && has_set_mtime_v<O> &&
    has_list_v<O> && has_statvfs_v<O> && has_extents_v<O> && has_clone_v<O> && has_copy_v<O> &&
    has_notify_resize_v<O> && has_probe_reflink_v<O> && has_lock_file_v<O> && has_open_lock_v<O> && has_lock_v<O> &&
    has_unlock_v<O>;

//! The trait as a type.
template <class O>
struct is_fs_ops : std::bool_constant<is_fs_ops_v<O>> {};

#if defined(__cpp_concepts) && __cpp_concepts >= 201907L
//! The policy contract as a concept (C++20).
template <class O>
concept FsOps = is_fs_ops_v<O>;
#endif

namespace detail {
//! Instantiated by `Pool` and `Volume`: one static_assert per requirement, so
//! a policy that lacks an operation is told which, and with which signature.
template <class O>
struct check_fs_ops {
  static_assert(std::is_copy_constructible<O>::value, "file_reflink: an FsOps policy must be copyable");
  static_assert(has_dir_handle_v<O>, "file_reflink: the FsOps policy lacks `using dir_handle = ...;` (a copyable open-directory handle)");
  static_assert(has_open_dir_v<O>, "file_reflink: the FsOps policy lacks open_dir: result<opened_dir<dir_handle>> open_dir(const path& abs, bool create) noexcept");
  static_assert(has_stat_path_v<O>, "file_reflink: the FsOps policy lacks stat_path: result<file_stat> stat_path(const path& abs) noexcept");
  static_assert(has_remove_dir_v<O>, "file_reflink: the FsOps policy lacks remove_dir: result<void> remove_dir(const path& abs) noexcept");
  static_assert(has_path_of_v<O>, "file_reflink: the FsOps policy lacks path_of: path path_of(const dir_handle&, const path& rel) noexcept");
  static_assert(has_mkdir_v<O>, "file_reflink: the FsOps policy lacks mkdir: result<void> mkdir(const dir_handle&, const path& rel) noexcept");
  static_assert(has_rmdir_v<O>, "file_reflink: the FsOps policy lacks rmdir: result<void> rmdir(const dir_handle&, const path& rel) noexcept");
  static_assert(has_create_v<O>, "file_reflink: the FsOps policy lacks create: result<void> create(const dir_handle&, const path& rel, std::uint64_t size, create_mode) noexcept");
  static_assert(has_read_v<O>, "file_reflink: the FsOps policy lacks read: result<std::size_t> read(const dir_handle&, const path& rel, std::uint64_t offset, void* buf, std::size_t len) noexcept");
  static_assert(has_write_v<O>, "file_reflink: the FsOps policy lacks write: result<void> write(const dir_handle&, const path& rel, std::uint64_t offset, const void* data, std::size_t len) noexcept");
  static_assert(has_resize_v<O>, "file_reflink: the FsOps policy lacks resize: result<void> resize(const dir_handle&, const path& rel, std::uint64_t size) noexcept");
  static_assert(has_punch_hole_v<O>, "file_reflink: the FsOps policy lacks punch_hole: result<void> punch_hole(const dir_handle&, const path& rel, std::uint64_t offset, std::uint64_t len) noexcept");
  static_assert(has_rename_v<O>, "file_reflink: the FsOps policy lacks rename: result<void> rename(const dir_handle&, const path& from, const path& to) noexcept");
  static_assert(has_link_v<O>, "file_reflink: the FsOps policy lacks link: result<void> link(const dir_handle&, const path& from, const path& to) noexcept");
  static_assert(has_remove_v<O>, "file_reflink: the FsOps policy lacks remove: result<void> remove(const dir_handle&, const path& rel) noexcept");
  static_assert(has_fsync_v<O>, "file_reflink: the FsOps policy lacks fsync: result<void> fsync(const dir_handle&, const path& rel) noexcept");
  static_assert(has_stat_v<O>, "file_reflink: the FsOps policy lacks stat: result<file_stat> stat(const dir_handle&, const path& rel) noexcept");
  static_assert(has_set_mtime_v<O>, "file_reflink: the FsOps policy lacks set_mtime: result<void> set_mtime(const dir_handle&, const path& rel, file_time mtime) noexcept");
  static_assert(has_list_v<O>, "file_reflink: the FsOps policy lacks list: result<std::vector<dir_entry>> list(const dir_handle&, const path& rel) noexcept");
  static_assert(has_statvfs_v<O>, "file_reflink: the FsOps policy lacks statvfs: result<fs_space> statvfs(const dir_handle&) noexcept");
  static_assert(has_extents_v<O>, "file_reflink: the FsOps policy lacks extents: result<std::vector<extent>> extents(const dir_handle&, const path& rel) noexcept");
  static_assert(has_clone_v<O>, "file_reflink: the FsOps policy lacks clone: result<void> clone(const dir_handle& src_dir, const path& src, const dir_handle& dst_dir, const path& dst) noexcept");
  static_assert(has_copy_v<O>, "file_reflink: the FsOps policy lacks copy: result<copy_result> copy(const dir_handle& src_dir, const path& src, const dir_handle& dst_dir, const path& dst, const copy_options&) noexcept");
  static_assert(has_notify_resize_v<O>, "file_reflink: the FsOps policy lacks notify_resize: result<unsigned> notify_resize(const dir_handle&, const path& rel) noexcept");
  static_assert(has_probe_reflink_v<O>, "file_reflink: the FsOps policy lacks probe_reflink: result<bool> probe_reflink(const dir_handle&) noexcept");
  static_assert(has_lock_file_v<O>, "file_reflink: the FsOps policy lacks `using lock_file = ...;` (a copyable handle of an open lock file)");
  static_assert(has_open_lock_v<O>, "file_reflink: the FsOps policy lacks open_lock: result<lock_file> open_lock(const dir_handle&, const path& rel) noexcept");
  static_assert(has_lock_v<O>, "file_reflink: the FsOps policy lacks lock: result<bool> lock(const lock_file&, std::uint64_t offset, lock_mode, bool wait) noexcept");
  static_assert(has_unlock_v<O>, "file_reflink: the FsOps policy lacks unlock: result<void> unlock(const lock_file&, std::uint64_t offset) noexcept");
  static constexpr bool value = true;
};
}  // namespace detail

}  // namespace file_reflink
