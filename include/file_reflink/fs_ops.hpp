// SPDX-License-Identifier: BSL-1.0
//! \file
//! What a filesystem-operations policy provides: one trait per operation,
//! `is_fs_ops_v`, the `FsOps` concept where the compiler has concepts, and
//! the check `Pool` and `Volume` make. All of them are generated from the one
//! list of operations in `fs_op.hpp`; the value types the operations
//! exchange are in `fs_types.hpp`.
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
//! | `result<path> path_of(H, P rel)` | the absolute path of `rel`, for messages and for a VM to attach |
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
//! | `result<std::vector<segment>> data_segments(H, P, uint64_t limit)` | the file's data segments below `limit` (`SEEK_DATA`/`SEEK_HOLE`): what a sparse copy moves |
//! | `result<void> clone(H src, P, H dst, P)` | a new file (exclusive, 0600) sharing all extents of `src`; no fallback |
//! | `result<bool> probe_reflink(H)` | whether a clone works in the handle's directory |
//! | `result<lock_file> open_lock(H, P rel)` | open (creating it, 0600) the file whose bytes are locks: a new open file description, whose locks are its own and die with it or its process |
//! | `result<bool> lock(const lock_file&, uint64_t offset, lock_mode, bool wait)` | lock one byte, shared or exclusive, against every other `lock_file` (in any process, on any host of a shared filesystem that enforces record locks); waits, or says false at once |
//! | `result<void> unlock(const lock_file&, uint64_t offset)` | release that byte's lock |
//!
//! Optional operations: a policy may lack them, and `has_<op>_v` says
//! whether it has them; the library does without (a policy or a decorator
//! may also answer `std::errc::operation_not_supported`).
//!
//! | operation | what it does | without it |
//! |---|---|---|
//! | `result<uint64_t> copy_range(H src, P, H dst, P, uint64_t off, uint64_t len)` | `copy_file_range` of up to `len` bytes at `off` in both files, into an existing file; returns the bytes copied (0 at the source's end) | the copy reads and writes |
//! | `result<unsigned> notify_resize(H, P)` | tell every loop device backed by the file about its new size; returns how many | no loop device is told |
//! | `result<void> advise_willneed(H, P, uint64_t off, uint64_t len)` | a hint: the copy will read these bytes soon (`POSIX_FADV_WILLNEED`), so the reads of a cold image are in flight together | each read waits for its own I/O |
//! | `result<std::vector<extent>> storage_extents(H, P)` | the file's data extents as `extents` gives them (logical, physical, length, `exact`), without looking up the shared flag (always false): where the map can be read faster without it (btrfs), `changed_ranges` reads it so | `extents` |
//!
//! Copying is the library's (`detail::copy_file`, written once over these
//! operations): clone, else `copy_range` per data segment, else reads and
//! writes of the data segments only; holes stay holes; one progress meter;
//! a failed or cancelled copy removes its destination. The handle
//! remembers a filesystem found without reflinks (`no_reflinks()`,
//! `set_no_reflinks()`), so later copies skip the clone and the fallback is
//! noticed once.
#pragma once

#include <file_reflink/error.hpp>
#include <file_reflink/fs_op.hpp>
#include <file_reflink/fs_types.hpp>

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

namespace file_reflink {

namespace detail {
template <class...>
using void_t = void;
template <class O>
using handle_of = typename O::dir_handle;
template <class O>
using lock_file_of = typename O::lock_file;

//! Stands for a type the policy fails to name, so that the other checks can
//! still be made (and each missing piece reported on its own).
struct missing_policy_type {};
template <class O, class = void>
struct handle_or_missing {
  using type = missing_policy_type;
};
template <class O>
struct handle_or_missing<O, void_t<handle_of<O>>> {
  using type = handle_of<O>;
};
template <class O, class = void>
struct lock_file_or_missing {
  using type = missing_policy_type;
};
template <class O>
struct lock_file_or_missing<O, void_t<lock_file_of<O>>> {
  using type = lock_file_of<O>;
};

//! The signature each operation must have for policy `O`, as a function
//! type named like the operation: `contract_of<O>::rename` is
//! `result<void>(const O::dir_handle&, const path&, const path&)`.
template <class O>
struct contract_of {
  using dir_handle = typename handle_or_missing<O>::type;
  using lock_file = typename lock_file_or_missing<O>::type;
#define FILE_REFLINK_FS_OP_SIGNATURE_(name, ret, params) using name = ret params;
  FILE_REFLINK_FS_ALL_OPERATIONS(FILE_REFLINK_FS_OP_SIGNATURE_)
#undef FILE_REFLINK_FS_OP_SIGNATURE_
};
}  // namespace detail

//! The policy names a copyable `dir_handle` type: an open directory.
namespace detail {
template <class O, class = void>
struct has_dir_handle_impl : std::false_type {};
template <class O>
struct has_dir_handle_impl<O, void_t<handle_of<O>>>
    : std::bool_constant<std::is_copy_constructible<handle_of<O>>::value> {};
}  // namespace detail
template <class O>
struct has_dir_handle : detail::has_dir_handle_impl<O> {};
template <class O>
inline constexpr bool has_dir_handle_v = has_dir_handle<O>::value;

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

// One trait per operation, optional ones included: `has_<op><O>` is true
// when `O` has the operation as a member callable with the listed
// arguments, returning exactly the listed type, and noexcept.
#define FILE_REFLINK_FS_OP_TRAIT_(name, ret, params)                                                \
  namespace detail {                                                                              \
  template <class O, class Sig, class = void>                                                     \
  struct has_##name##_impl : std::false_type {};                                                  \
  template <class O, class R, class... A>                                                         \
  struct has_##name##_impl<O, R(A...), void_t<decltype(std::declval<O&>().name(std::declval<A>()...))>> \
      : std::bool_constant<std::is_same<decltype(std::declval<O&>().name(std::declval<A>()...)), R>::value && \
                           noexcept(std::declval<O&>().name(std::declval<A>()...))> {};          \
  }                                                                                               \
  template <class O>                                                                              \
  struct has_##name : detail::has_##name##_impl<O, typename detail::contract_of<O>::name> {};     \
  template <class O>                                                                              \
  inline constexpr bool has_##name##_v = has_##name<O>::value;
FILE_REFLINK_FS_ALL_OPERATIONS(FILE_REFLINK_FS_OP_TRAIT_)
#undef FILE_REFLINK_FS_OP_TRAIT_

//! True when `O` provides every required operation of the contract (the
//! optional ones are detected where they are used).
template <class O>
inline constexpr bool is_fs_ops_v = std::is_copy_constructible<O>::value && has_dir_handle_v<O> &&
                                    has_lock_file_v<O>
#define FILE_REFLINK_FS_OP_AND_(name, ret, params) &&has_##name##_v<O>
                                    FILE_REFLINK_FS_OPERATIONS(FILE_REFLINK_FS_OP_AND_)
#undef FILE_REFLINK_FS_OP_AND_
    ;

//! The trait as a type.
template <class O>
struct is_fs_ops : std::bool_constant<is_fs_ops_v<O>> {};

#if defined(__cpp_concepts) && __cpp_concepts >= 201907L
//! One concept per requirement, so that a compiler that rejects a policy
//! names the requirement it misses (`fs_ops_provides_rename`, ...).
template <class O>
concept fs_ops_copyable = std::is_copy_constructible<O>::value;
template <class O>
concept fs_ops_names_dir_handle = has_dir_handle_v<O>;
template <class O>
concept fs_ops_names_lock_file = has_lock_file_v<O>;
#define FILE_REFLINK_FS_OP_CONCEPT_(name, ret, params) \
  template <class O>                                   \
  concept fs_ops_provides_##name = has_##name##_v<O>;
FILE_REFLINK_FS_OPERATIONS(FILE_REFLINK_FS_OP_CONCEPT_)
#undef FILE_REFLINK_FS_OP_CONCEPT_

//! The policy contract as a concept (C++20): the conjunction of the
//! requirements above.
template <class O>
concept FsOps = fs_ops_copyable<O> && fs_ops_names_dir_handle<O> && fs_ops_names_lock_file<O>
#define FILE_REFLINK_FS_OP_CONJUNCTION_(name, ret, params) &&fs_ops_provides_##name<O>
    FILE_REFLINK_FS_OPERATIONS(FILE_REFLINK_FS_OP_CONJUNCTION_)
#undef FILE_REFLINK_FS_OP_CONJUNCTION_
    ;
#endif

namespace detail {
//! Instantiated by `Pool` and `Volume`: one static_assert per requirement, so
//! a policy that lacks an operation is told which, and with which signature.
template <class O>
struct check_fs_ops {
  static_assert(std::is_copy_constructible<O>::value, "file_reflink: an FsOps policy must be copyable");
  static_assert(has_dir_handle_v<O>,
                "file_reflink: the FsOps policy lacks `using dir_handle = ...;` (a copyable open-directory handle)");
  static_assert(has_lock_file_v<O>,
                "file_reflink: the FsOps policy lacks `using lock_file = ...;` (a copyable handle of an open lock file)");
#define FILE_REFLINK_FS_OP_ASSERT_(name, ret, params) \
  static_assert(has_##name##_v<O>, "file_reflink: the FsOps policy lacks " #name ": " #ret " " #name #params " noexcept");
  FILE_REFLINK_FS_OPERATIONS(FILE_REFLINK_FS_OP_ASSERT_)
#undef FILE_REFLINK_FS_OP_ASSERT_
  static constexpr bool value = true;
};
}  // namespace detail

}  // namespace file_reflink
