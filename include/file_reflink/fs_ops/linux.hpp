// SPDX-License-Identifier: BSL-1.0
//! \file
//! `LinuxFsOps`: the filesystem policy on real system calls (`FICLONE`,
//! `copy_file_range`, `SEEK_DATA`/`SEEK_HOLE`, `FIEMAP`, `openat2`, ...).
//! The only header of the library that includes <linux/...>.
//!
//! Every name inside a `dir_handle` is resolved beneath the handle's open
//! directory and never through a symlink: the directory part with `openat2`
//! (`RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`), or, where the kernel lacks it,
//! a walk that opens one component at a time with `O_NOFOLLOW`; the last
//! name with `O_NOFOLLOW` or an `*at` call that does not follow it. So a
//! symlink planted in a pool cannot redirect a write outside it.
#pragma once

#include <file_reflink/detail/decl.hpp>
#include <file_reflink/error.hpp>
#include <file_reflink/fs_ops/linux/resolve.hpp>
#include <file_reflink/fs_ops/linux/btrfs_map.hpp>
#include <file_reflink/fs_ops/linux/segments.hpp>
#include <file_reflink/fs_ops/linux/syscalls.hpp>
#include <file_reflink/fs_types.hpp>
#include <file_reflink/layout.hpp>

namespace file_reflink {

//! The production policy: real system calls on Linux. Stateless (every bit
//! of state lives in the `dir_handle`), so a `Pool<LinuxFsOps>` pays nothing
//! for holding it.
class LinuxFsOps {
public:
  //! An open directory, shared by its copies: the descriptor every name is
  //! resolved beneath, the absolute path it was opened as (for messages
  //! and `path_of`), and whether a clone was found not to work there.
  class dir_handle {
  public:
    //! No directory: every operation on it fails with EBADF.
    dir_handle() noexcept = default;

    //! The directory's descriptor, for callers that need one more system
    //! call (-1 for no directory). Still owned by the handle.
    int native_handle() const noexcept { return state_ ? state_->fd.get() : -1; }
    //! The absolute path the directory was opened as.
    const path& dir_path() const noexcept {
      static const path none;
      return state_ ? state_->abs : none;
    }
    //! A copy into this directory (or `probe_reflink`) found its filesystem
    //! without reflinks; later copies go straight to the fallback.
    bool no_reflinks() const noexcept { return state_ && state_->no_reflinks.load(); }
    //! Remember that the filesystem has no reflinks (shared by the handle's
    //! copies). True for the call that set it, so the fallback is noticed once.
    bool set_no_reflinks() const noexcept { return state_ && !state_->no_reflinks.exchange(true); }
    //! Whether a directory is held.
    explicit operator bool() const noexcept { return static_cast<bool>(state_); }

  private:
    friend class LinuxFsOps;
    explicit dir_handle(std::shared_ptr<detail::linux_impl::dir_state> s) noexcept : state_(std::move(s)) {}
    std::shared_ptr<detail::linux_impl::dir_state> state_;
  };

  //! Testing knob: false makes every later call resolve names with the
  //! `O_NOFOLLOW` walk instead of `openat2`, as on a kernel older than 5.6,
  //! so tests can run both. FILE_REFLINK_NO_OPENAT2=1 in the environment
  //! starts a process with it off. Process-wide.
  static void set_use_openat2(bool use) noexcept { detail::linux_impl::openat2_enabled().store(use); }
  //! Whether names are resolved with `openat2` (false on an old kernel or
  //! after `set_use_openat2(false)`).
  static bool use_openat2() noexcept { return detail::linux_impl::openat2_enabled().load(); }

  //! Testing knob: false makes `storage_extents` map every file with
  //! FIEMAP, as for a process without CAP_SYS_ADMIN, which may not search
  //! btrfs's tree. Process-wide.
  static void set_use_btrfs_tree_search(bool use) noexcept {
    detail::linux_impl::btrfs_tree_search_enabled().store(use);
  }

  //! Opens the directory `abs` (following symlinks: the administrator chose
  //! that path). With `create`, makes it and its missing parents, each one
  //! fsynced into its parent so that it survives a crash.
  result<opened_dir<dir_handle>> open_dir(const path& abs, bool create) const noexcept;

  //! stat of an absolute path, following symlinks: a pool compares its
  //! directory's identity with it to notice an unmounted filesystem.
  result<file_stat> stat_path(const path& abs) const noexcept;

  //! Removes the empty directory `abs`, then fsyncs its parent: the removal
  //! is not durable until the parent is.
  result<void> remove_dir(const path& abs) const noexcept;

  //! The handle's absolute path joined with `rel`, lexically.
  result<path> path_of(const dir_handle& h, const path& rel) const noexcept;

  //! Makes one directory, mode 0755 (less the umask).
  result<void> mkdir(const dir_handle& h, const path& rel) const noexcept;

  //! Removes one empty directory.
  result<void> rmdir(const dir_handle& h, const path& rel) const noexcept;

  //! The mode of a new file: see `create`.
  static mode_t file_mode_of(const path& rel) noexcept;

  //! A sparse regular file of `size`, mode 0600 (an image is nobody else's
  //! business); 0644 (less the umask) for the pool's own metadata at its
  //! top (names with the reserved prefix: marker, catalog), which holds no
  //! VM data and which a user who may read the pool reads to list it. A new
  //! file that cannot be sized is removed again.
  result<void> create(const dir_handle& h, const path& rel, std::uint64_t size, create_mode mode) const noexcept;

  //! Reads up to `len` bytes at `offset`; fewer only at the end of the file.
  result<std::size_t> read(const dir_handle& h, const path& rel, std::uint64_t offset, void* buf, std::size_t len) const noexcept;

  //! Writes all `len` bytes at `offset` (beyond the end leaves a hole).
  result<void> write(const dir_handle& h, const path& rel, std::uint64_t offset, const void* data, std::size_t len) const noexcept;

  //! Truncates or extends (sparsely) to `size`.
  result<void> resize(const dir_handle& h, const path& rel, std::uint64_t size) const noexcept;

  //! Deallocates a range (it reads as zeros after); the size stays.
  result<void> punch_hole(const dir_handle& h, const path& rel, std::uint64_t offset, std::uint64_t len) const noexcept;

  //! Renames `from` to `to`, replacing `to`; a symlink is renamed, not followed.
  result<void> rename(const dir_handle& h, const path& from, const path& to) const noexcept;

  //! A hard link `to` of `from` (EEXIST if `to` exists; a symlink is linked
  //! itself, not its target).
  result<void> link(const dir_handle& h, const path& from, const path& to) const noexcept;

  //! Unlinks a file or a symlink (never what it points to); EISDIR for a
  //! directory.
  result<void> remove(const dir_handle& h, const path& rel) const noexcept;

  //! Flushes a file's data and metadata, or a directory's entries ("" is
  //! the handle's directory): what makes a rename or a new name durable.
  result<void> fsync(const dir_handle& h, const path& rel) const noexcept;

  //! lstat: a symlink is reported as one, not followed.
  result<file_stat> stat(const dir_handle& h, const path& rel) const noexcept;

  //! Sets the modification time (ns since the epoch) and leaves the access
  //! time alone; a symlink's own time, if it is one.
  result<void> set_mtime(const dir_handle& h, const path& rel, file_time mtime) const noexcept;

  //! The entries of a directory, without "." and "..", sorted by name.
  result<std::vector<dir_entry>> list(const dir_handle& h, const path& rel) const noexcept;

  //! Size and free space of the filesystem that holds the handle's directory.
  result<fs_space> statvfs(const dir_handle& h) const noexcept;

  //! The file's data extents as the filesystem maps them (FIEMAP, after a
  //! sync so delayed allocations show), each with its shared flag, none
  //! merged. Unwritten (preallocated) extents read as zeros and are not
  //! data, as SEEK_DATA and a copy count them: XFS leaves some inside a file
  //! that grew over its speculative preallocation.
  result<std::vector<extent>> extents(const dir_handle& h, const path& rel) const noexcept;

  //! The data segments of the file below `limit` (SEEK_DATA/SEEK_HOLE),
  //! what a sparse copy moves; all of it where the filesystem has no
  //! SEEK_DATA. A directory: EISDIR.
  result<std::vector<segment>> data_segments(const dir_handle& h, const path& rel, std::uint64_t limit) const noexcept;

  //! A new file `dst` (exclusive, 0600) sharing every extent of `src`
  //! (FICLONE). No fallback: the library's copy falls back. A failed
  //! clone leaves no `dst`.
  result<void> clone(const dir_handle& src_h, const path& src, const dir_handle& dst_h, const path& dst) const
      noexcept;

  //! One `copy_file_range` of up to `len` bytes at `offset` in both files
  //! (`dst` exists): in the kernel, which may share the blocks (btrfs, XFS)
  //! or copy them on an NFS server. Returns the bytes copied: fewer than
  //! `len` when the call stops early, 0 at the source's end.
  result<std::uint64_t> copy_range(const dir_handle& src_h, const path& src, const dir_handle& dst_h, const path& dst,
                                   std::uint64_t offset, std::uint64_t len) const noexcept;

  //! Tells every loop device backed by the file that its size changed
  //! (LOOP_SET_CAPACITY), so a running VM sees a resized disk. Returns how
  //! many were told; none attached is 0, not an error.
  result<unsigned> notify_resize(const dir_handle& h, const path& rel) const noexcept;

  //! `posix_fadvise(POSIX_FADV_WILLNEED)` of `len` bytes at `offset`: the
  //! kernel starts reading them, and the pages stay cached for the reads
  //! that follow (the copy asks for its data segments ahead of itself).
  result<void> advise_willneed(const dir_handle& h, const path& rel, std::uint64_t offset,
                               std::uint64_t len) const noexcept;

  //! The file's data extents as `extents` gives them (unwritten ones left
  //! out, inline and encoded ones not `exact`), without the shared flag
  //! (false), after a flush. On btrfs, for a process with CAP_SYS_ADMIN,
  //! read from the subvolume's tree (`BTRFS_IOC_TREE_SEARCH_V2`), physically
  //! adjacent extents joined: several times faster than FIEMAP, which looks
  //! up every extent's sharing. Elsewhere, FIEMAP.
  result<std::vector<extent>> storage_extents(const dir_handle& h, const path& rel) const noexcept;

  //! Whether a clone works in the handle's directory: clones a small
  //! non-empty temporary file, and leaves nothing behind. False (and the
  //! handle remembers it) on EOPNOTSUPP, EINVAL, EXDEV or ENOTTY.
  result<bool> probe_reflink(const dir_handle& h) const noexcept;

  //! An open lock file: its descriptor, shared by the handle's copies and
  //! closed with the last one. The locks are open file description locks
  //! (F_OFD_SETLK): they belong to this open, not to the process, so two
  //! opens in one process exclude each other too, and they are released when
  //! it is closed or its process dies, however it dies. On NFS (v4) they are
  //! the protocol's byte-range locks, which the server enforces between hosts.
  class lock_file {
  public:
    lock_file() noexcept = default;
    //! The descriptor (-1 for none). Still owned by the handle.
    int native_handle() const noexcept { return fd_ ? fd_->get() : -1; }
    //! Whether it was opened only for reading (a read-only pool): it takes
    //! shared locks only.
    bool read_only() const noexcept { return read_only_; }

  private:
    friend class LinuxFsOps;
    std::shared_ptr<detail::unique_fd> fd_;
    path abs_;
    bool read_only_ = false;
  };

  //! Opens (creating it, 0644 less the umask: a reader takes shared locks
  //! through a read-only open) the lock file `rel`, never through a symlink;
  //! where it cannot be opened for writing (a pool the caller may only read),
  //! opens it read-only.
  result<lock_file> open_lock(const dir_handle& h, const path& rel) const noexcept;

  //! Locks the byte at `offset`; with `wait`, until it is granted (EINTR is
  //! retried), else false at once when another open holds a conflicting lock.
  result<bool> lock(const lock_file& f, std::uint64_t offset, lock_mode mode, bool wait) const noexcept;

  //! Releases the lock on the byte at `offset`.
  result<void> unlock(const lock_file& f, std::uint64_t offset) const noexcept;

private:
  //! `locate` for operations on a last name itself (mkdir, rename, ...):
  //! the directory alone (an empty name) is EINVAL there.
  static int named(const dir_handle& h, const path& rel, detail::linux_impl::location& loc);

  //! mkdir -p from "/", each new directory fsynced into its parent; says
  //! whether the last one was made.
  static int make_dirs(const std::string& abs, detail::unique_fd& out, bool& created);

  //! Where `rel` is, for messages: the handle's path joined with it.
  static path abs_of(const dir_handle& h, const path& rel) { return h.state_ ? h.state_->abs / rel : rel; }
  //! "<op> '<abs path>': <OS reason>", the errno untouched.
  static detail::linux_impl::failure_t fail(int err, const char* op, const dir_handle& h, const path& rel);
  //! "<op> '<abs path>'", for a message made at once (an escaping exception).
  static std::string what(const char* op, const dir_handle& h, const path& rel);
  //! "<op> '<abs src>' -> '<abs dst>': <OS reason>".
  static std::string what(const char* op, const dir_handle& h1, const path& rel1, const dir_handle& h2,
                          const path& rel2);
  static detail::linux_impl::failure_t fail(int err, const char* op, const dir_handle& h1, const path& rel1,
                                            const dir_handle& h2, const path& rel2);
};

static_assert(std::is_empty<LinuxFsOps>::value, "LinuxFsOps keeps its state in dir_handle");

}  // namespace file_reflink

// The operations, defined after the class: here header-only, in the one
// source file that includes <file_reflink/impl/src.hpp> otherwise.
#if !defined(FILE_REFLINK_SEPARATE_COMPILATION)
#include <file_reflink/fs_ops/linux/data_ops.hpp>
#include <file_reflink/fs_ops/linux/dir_ops.hpp>
#include <file_reflink/fs_ops/linux/file_ops.hpp>
#endif

// Separately compiled: see <file_reflink/detail/extern_templates.hpp>.
#if defined(FILE_REFLINK_SEPARATE_COMPILATION)
#define FILE_REFLINK_DETAIL_HAVE_LINUX_FS_OPS
#include <file_reflink/detail/extern_templates.hpp>
#endif
