// SPDX-License-Identifier: BSL-1.0
//! \file
//! `MemoryFsOps`: an in-memory filesystem with real copy-on-write, so that
//! code built on `file_reflink` can be tested without root, btrfs or loop
//! devices. It behaves like LinuxFsOps on btrfs, XFS or ext4 (errno for
//! errno, timestamps, sizes, allocation and sharing; `mount_options::btrfs()`,
//! `xfs()`, `ext4()`), keeps a worst-case durable state for crash tests, and
//! can fail chosen calls. tests/differential holds it to that, call by call,
//! against the real filesystems.
//!
//! Where it knowingly differs from them, and why:
//! - btrfs keeps the data of a file of up to 2 KiB inside its metadata
//!   (inline): FIEMAP says physical 0 and a clone copies those bytes. The
//!   mock shares them like any block; no image is that small.
//! - btrfs flags a whole on-disk extent shared when any part of it is used
//!   elsewhere (a clone cut short, one block rewritten in one of two
//!   clones), and makes one extent of the writes one writeback flushes. The
//!   mock flags exactly the shared blocks, as XFS does; what it flags shared
//!   btrfs flags too.
//! - btrfs's punch_hole of a range without data moves the times, and may
//!   write a zeroed block at a partial end of the range, depending on the
//!   extent maps it cached on earlier calls, reads included. The mock
//!   follows the maps btrfs makes as a file grows (see `in_first_hole`).
//! - XFS preallocates past the end of a growing file and around a block it
//!   copies (speculative preallocation, the COW extent size hint), and ext4
//!   counts the blocks of its extent tree: st_blocks (and, past the end of
//!   file, FIEMAP) show more than the data until the filesystem trims it.
//!   The mock allocates only the data's blocks.
//! - What a filesystem finishes in the background (XFS inactivates an
//!   unlinked inode later, btrfs drops extent references at its commit)
//!   is done at once: the mock shows the settled state.
//! - A directory's size and allocation are each filesystem's own (btrfs:
//!   bytes of names, XFS: its short form, ext4: blocks); the mock says one
//!   block. ext4's FIEMAP of a directory maps one block, however large.
//! - A write that runs out of space fails whole and changes nothing (the
//!   kernel may write a part first). No modes, owners or permissions: the
//!   tests run as root. Physical addresses are made up, unique per block.
#pragma once

#include <file_reflink/detail/memory_extents.hpp>
#include <file_reflink/detail/memory_handles.hpp>
#include <file_reflink/detail/memory_state.hpp>
#include <file_reflink/detail/memory_types.hpp>
#include <file_reflink/error.hpp>
#include <file_reflink/fs_types.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace file_reflink {

//! The in-memory policy. A cheap copyable handle: copies share one
//! filesystem tree (a root filesystem on "/" plus whatever `mount` adds).
//! Thread-safe: one mutex guards the whole state.
//!
//! Durability follows the worst case a real filesystem allows: a name is
//! durable once its directory is fsynced, data once its file is; `crash()`
//! keeps only that. Test-inspection functions (`read_file`, `write_file`,
//! `tree`, ...) are not contract calls: they are never counted, failed by
//! injection or stopped by a power loss, and they see the live state.
//!
//! There is no working directory: a relative path given to `open_dir`,
//! `stat_path` or a test function counts from "/".
class MemoryFsOps {
  using State = detail::memfs::State;
  using Inode = detail::memfs::Inode;
  using InodePtr = detail::memfs::InodePtr;
  using Filesystem = detail::memfs::Filesystem;
  using kind = detail::memfs::kind;

public:
  //! An open directory, like a held fd (see `detail::memfs::dir_handle`).
  using dir_handle = detail::memfs::dir_handle;

  //! A fresh filesystem with "/" as its root (reflinks, 1 TiB).
  MemoryFsOps() : s_(std::make_shared<State>()) {}

  // ---- the contract (see fs_ops.hpp) ----
  //
  // Each operation takes the steps LinuxFsOps takes (the directory part
  // resolved as openat2 does, then the system calls on the last name), and
  // each step fails with the errno the kernel gives first: a name is looked
  // up before its type is checked, a file that LinuxFsOps creates and then
  // removes again on failure leaves its directory's mtime and ctime moved.

  //! mkdir -p when `create`; each new directory is made durable in its parent.
  result<opened_dir<dir_handle>> open_dir(const path& abs, bool create) const noexcept;

  //! stat, following symlinks: what a pool compares to notice a lost mount.
  result<file_stat> stat_path(const path& abs) const noexcept;

  //! rmdir, then the parent is fsynced: the removal is durable at once.
  result<void> remove_dir(const path& abs) const noexcept;

  //! The absolute path of `rel` (lexical): for messages and for a VM to attach.
  result<path> path_of(const dir_handle& h, const path& rel) const noexcept {
    return detail::exception_boundary<result<path>>(
        [&] { return "path_of '" + rel.string() + "'"; },
        [&]() -> result<path> { return rel.empty() ? h.path_ : h.path_ / rel; });
  }

  result<void> mkdir(const dir_handle& h, const path& rel) const noexcept;

  result<void> rmdir(const dir_handle& h, const path& rel) const noexcept;

  //! A sparse regular file of `size` (mode 0600); no data block is allocated.
  //! As LinuxFsOps: open (O_CREAT, and O_EXCL or O_TRUNC), then ftruncate; a
  //! size the filesystem refuses removes a new exclusive file again, and
  //! leaves an emptied or new file in truncate mode.
  result<void> create(const dir_handle& h, const path& rel, std::uint64_t size, create_mode mode) const noexcept;

  //! Read at an offset; short only at end of file. As pread(2): no call at
  //! all for 0 bytes, then the offset checks, then EISDIR for a directory.
  result<std::size_t> read(const dir_handle& h, const path& rel, std::uint64_t offset, void* buf,
                           std::size_t len) const noexcept;

  //! Write all bytes; a write into shared blocks copies only the blocks it
  //! touches. As pwrite(2): nothing for 0 bytes; a write that reaches the
  //! filesystem's largest file size writes what fits, then fails with EFBIG.
  result<void> write(const dir_handle& h, const path& rel, std::uint64_t offset, const void* data,
                     std::size_t len) const noexcept;

  //! Truncate or extend sparsely (ftruncate: the times move even when the
  //! size stays).
  result<void> resize(const dir_handle& h, const path& rel, std::uint64_t size) const noexcept;

  //! Deallocate whole blocks of the range, zero the partial ones; size
  //! unchanged. As fallocate(2): EINVAL for a negative offset or length,
  //! EFBIG past the largest file size; the times move, except on btrfs when
  //! the range lies in a hole (see `in_first_hole`).
  result<void> punch_hole(const dir_handle& h, const path& rel, std::uint64_t offset, std::uint64_t len) const noexcept;

  //! rename(2): replaces `to`; a directory only replaces an empty directory.
  //! The kernel's order: EXDEV, the source looked up, the target looked up,
  //! a directory moved below itself (EINVAL) or over its own ancestor
  //! (ENOTEMPTY), the same inode (nothing to do), the types, the target's
  //! entries (ENOTEMPTY; XFS says EEXIST).
  result<void> rename(const dir_handle& h, const path& from, const path& to) const noexcept;

  //! A hard link (never to a directory); `EEXIST` if `to` exists. The
  //! kernel's order: both directories (LinuxFsOps opens them first), the
  //! source looked up, the target looked up, EXDEV, EPERM for a directory.
  result<void> link(const dir_handle& h, const path& from, const path& to) const noexcept;

  //! unlink(2) of a file or symlink (never followed); a directory gives EISDIR.
  result<void> remove(const dir_handle& h, const path& rel) const noexcept;

  //! A file: its content becomes durable (not its name). A directory
  //! (`""` is the handle's own): its entries become durable.
  result<void> fsync(const dir_handle& h, const path& rel) const noexcept;

  //! lstat: a symlink is reported, not followed.
  result<file_stat> stat(const dir_handle& h, const path& rel) const noexcept;

  //! Set the modification time (of a symlink itself, never its target), as
  //! the filesystem stores it (see `mount_options::time_min`); nanoseconds
  //! out of range are EINVAL before the name is looked up.
  result<void> set_mtime(const dir_handle& h, const path& rel, file_time mtime) const noexcept;

  //! The entries of a directory (sorted by name), without `.` and `..`.
  result<std::vector<dir_entry>> list(const dir_handle& h, const path& rel) const noexcept;

  //! Capacity, and what chunks alive on the filesystem leave free.
  result<fs_space> statvfs(const dir_handle& h) const noexcept;

  //! The data extents; `shared` exactly where another live file of the
  //! same filesystem uses the same storage (a scan of that filesystem). A
  //! directory: EOPNOTSUPP, as btrfs and XFS say; ext4 maps its block.
  result<std::vector<extent>> extents(const dir_handle& h, const path& rel) const noexcept;

  //! The data segments below `limit` (SEEK_DATA/SEEK_HOLE): the extents,
  //! contiguous ones merged. A directory: EISDIR.
  result<std::vector<segment>> data_segments(const dir_handle& h, const path& rel, std::uint64_t limit) const noexcept;

  //! FICLONE into a new file (exclusive, 0600): O(extents), no fallback.
  //! As LinuxFsOps: the source opened, the destination created, then the
  //! ioctl (EXDEV, EISDIR, EOPNOTSUPP), and a failed one removed again.
  result<void> clone(const dir_handle& src_dir, const path& src, const dir_handle& dst_dir,
                     const path& dst) const noexcept;

  //! copy_file_range(2) of up to `len` bytes at `offset` into the existing
  //! `dst`: between two filesystems EXDEV; where reflinks work, whole blocks
  //! shared (the source's partial last block only into the destination's
  //! last block), else (and for a cut tail) the bytes written. Returns the
  //! bytes copied, 0 at the source's end.
  result<std::uint64_t> copy_range(const dir_handle& src_dir, const path& src, const dir_handle& dst_dir,
                                   const path& dst, std::uint64_t offset, std::uint64_t len) const noexcept;

  //! LOOP_SET_CAPACITY on every attached loop device backed by the file.
  //! The name is lstat'ed: a symlink or a directory backs no device (0).
  result<unsigned> notify_resize(const dir_handle& h, const path& rel) const noexcept;

  //! The read-ahead hint: no page cache here, so only what the kernel checks
  //! (the name opens for reading: ENOENT, EISDIR, a symlink ELOOP).
  result<void> advise_willneed(const dir_handle& h, const path& rel, std::uint64_t offset,
                               std::uint64_t len) const noexcept;

  //! The data extents as `extents` gives them, without the scan of the
  //! filesystem the shared flag takes (always false).
  result<std::vector<extent>> storage_extents(const dir_handle& h, const path& rel) const noexcept;

  //! Whether a clone works here; false (and the handle remembers it) on a
  //! filesystem mounted with `reflink = false`. The probe's O_TMPFILE works
  //! in a removed directory on btrfs and XFS; ext4 makes no inode there (EPERM).
  result<bool> probe_reflink(const dir_handle& h) const noexcept;

  // ---- lock files ----

  //! An open lock file, as `LinuxFsOps`'s: its byte locks belong to this
  //! open (see `detail::memfs::lock_file`).
  using lock_file = detail::memfs::lock_file;

  //! Opens (creating it, 0600) the lock file `rel`; a new open, whose locks
  //! are its own.
  result<lock_file> open_lock(const dir_handle& h, const path& rel) const noexcept;

  //! Locks the byte at `offset` against every other open: with `wait`,
  //! until it is granted, else false at once. A lock already held by this
  //! open is converted (shared to exclusive, or back), as fcntl does.
  result<bool> lock(const lock_file& f, std::uint64_t offset, lock_mode mode, bool wait) const noexcept;

  //! Releases this open's lock on the byte at `offset`.
  result<void> unlock(const lock_file& f, std::uint64_t offset) const noexcept;

  // ---- mounts ----

  //! Mount a new empty filesystem on `abs_dir` (made with mkdir -p, durably,
  //! if missing). Not a contract call.
  result<void> mount(const path& abs_dir, mount_options opts = {}) const noexcept;

  //! Lazy unmount of the topmost filesystem on `abs_dir`: the directory
  //! shows what was beneath again; handles opened inside keep working.
  result<void> unmount(const path& abs_dir) const noexcept;

  // ---- power loss ----

  //! Power loss and power on: every filesystem keeps only its durable state
  //! (names from fsynced directories, contents from fsynced files). Mounts stay.
  void crash() const;

  //! After `n` more contract calls complete, every call fails with EIO and
  //! changes nothing until `crash()` (n = 0: the very next call).
  void power_off_after(std::uint64_t n) const;

  //! Whether power is lost (calls fail with EIO until `crash()`).
  bool powered_off() const;

  // ---- counting and fault injection ----

  //! Contract calls (every one but path_of) since creation or `reset_counts`.
  std::uint64_t call_count() const;
  //! Calls of one operation since creation or `reset_counts`.
  std::uint64_t op_count(fs_op op) const;
  //! Start counting afresh (say, after a test's setup).
  void reset_counts() const;

  //! The n-th contract call from now (1 = the next one) fails with `err`
  //! and changes nothing.
  void fail_nth_call(std::uint64_t n, int err) const;

  //! Calls of `op` where an absolute path involved contains `path_substring`
  //! fail with `err` and change nothing: `times` times, or forever with -1.
  void fail_calls(fs_op op, std::string path_substring, int err, int times = -1) const;

  //! Disarm `fail_nth_call` and `fail_calls` (not a power loss).
  void clear_faults() const;

  //! Called before every contract call runs, OUTSIDE the lock (so it may call
  //! back into this filesystem), with the operation and its absolute path;
  //! two-path operations pass "<src> -> <dst>". Empty function: none.
  void set_call_observer(std::function<void(fs_op, const std::string&)> observer) const;

  // ---- test inspection (absolute paths, live state, never counted or failed) ----

  //! The whole content of a file (symlinks followed).
  result<std::string> read_file(const path& abs) const;

  //! Write bytes into a file, creating it (0600) if missing, or failing with
  //! ENOENT when `missing` says the caller expects it to exist. Setup, not
  //! code under test: the data and the name are durable at once.
  result<void> write_file(const path& abs, std::string_view data, std::uint64_t offset = 0,
                          missing_file missing = missing_file::create) const;

  //! A symlink at `abs_link` pointing to `target` (durable at once).
  result<void> symlink(const path& target, const path& abs_link) const;

  //! lstat of `abs`: symlinks on the way are followed, the last name is
  //! reported as it is (a symlink as a symlink).
  result<file_stat> lstat(const path& abs) const;

  //! A hard link `abs_to` of what `abs_from` names (a symlink is linked
  //! itself), durable at once; EEXIST, EXDEV and EPERM as link(2) says them.
  result<void> link(const path& abs_from, const path& abs_to) const;

  //! truncate(2) of the file `abs` (symlinks followed): a new end, sparse
  //! when it grows; durable at once.
  result<void> truncate(const path& abs, std::uint64_t size) const;

  //! Set the modification time of what `abs` names (symlinks followed, as
  //! `touch -d` does), within what its filesystem can store; durable at once.
  result<void> set_mtime(const path& abs, file_time mtime) const;

  //! Whether something is at `abs` (lstat: a dangling symlink exists).
  bool exists(const path& abs) const;

  //! One sorted line per entry below `abs`, for a failing test to print:
  //! "vm/private.img file size=1048576 alloc=4096 nlink=1", "vm dir",
  //! "x symlink -> /etc".
  std::vector<std::string> tree(const path& abs = "/") const;

  //! Whether the two files (symlinks followed) share some storage.
  bool shares_extent(const path& a, const path& b) const;

  //! The clock every timestamp comes from.
  file_time now() const;
  //! Replace the clock (an empty function: real time again). Any time of
  //! any year, before 1970 and after 2262 too.
  void set_clock(std::function<file_time()> clock) const;

  //! losetup: a loop device on the file, whose capacity is the file's size
  //! (in whole 512-byte sectors) until `notify_resize` updates it.
  result<int> attach_loop(const path& abs_file) const;
  //! The capacity a loop device believes its file has (0: no such device).
  std::uint64_t loop_capacity(int id) const;
  //! losetup -d: the device lets go of its file.
  void detach_loop(int id) const;

  //! Approximate heap use of the model (inodes, names, extents, chunk bytes).
  std::size_t memory_bytes() const;

private:
  using Call = detail::memfs::Call;
  using Slot = detail::memfs::Slot;

  //! What a failed call returns before it becomes a `result`.
  using failure_t = decltype(errno_failure(0, std::string()));

  //! "<op> '<path>': <reason>", as LinuxFsOps says it; the message is made
  //! only when asked for (a stat of a missing name is a common call: a
  //! stopped volume has no dirty image).
  static failure_t fail(const Call& c, int err);

  //! Count the call, then apply a power loss or an armed fault. Returns the
  //! errno the call must fail with, 0 to run it.
  int admit(const Call& c) const;

  //! The body of `extents` and `storage_extents`: the shared flag only
  //! with `shared_flags`.
  result<std::vector<extent>> data_extents(const Call& c, const dir_handle& h, const path& rel,
                                           bool shared_flags) const noexcept;

  //! Run one contract call: observer, lock, admission, body; no exception escapes.
  template <class T, class F>
  result<T> run(const Call& c, F&& body) const noexcept;

  //! Run a test-inspection function under the lock; no exception escapes.
  template <class T, class F>
  result<T> locked(const char* what, const path& abs, F&& body) const noexcept;

  //! "<what> '<abs>': <reason>" for a test-inspection function.
  static failure_t api_fail(const char* what, const path& abs, int err);

  //! Resolve for an operation that opens the path (O_NOFOLLOW): a symlink
  //! anywhere gives ELOOP; "" and "a/.." are directories themselves.
  static int open_node(const dir_handle& h, const path& rel, InodePtr& out);

  //! `open_node` for data operations: a directory gives EISDIR.
  static int open_file(const dir_handle& h, const path& rel, InodePtr& out);

  //! Where `rel` leads: its directory and last name, and what is there now
  //! (mounts not followed). An empty name is the directory itself.
  static int locate(const dir_handle& h, const path& rel, Slot& s);

  //! `locate` for operations on a name itself (mkdir, rename, ...): a path
  //! that names a directory alone is EINVAL there.
  static int find_slot(const dir_handle& h, const path& rel, Slot& s);

  static file_type type_of(const Inode& n) noexcept;

  static file_stat make_stat(const Inode& n);

  //! What a loop device sees of its file: whole 512-byte sectors.
  static std::uint64_t loop_size(const Inode& n) noexcept { return n.file->size & ~std::uint64_t{511}; }

  //! Whether `target` is `d` or lies below it (a directory cannot move into itself).
  static bool contains(const Inode& d, const Inode* target);

  //! rmdir of `node` (the entry `name` in `parent`, mounts not followed).
  int remove_directory(Inode& parent, std::string_view name, const InodePtr& node) const;

  //! Whether a new name can go in a slot, as the kernel's exclusive lookup
  //! says: EEXIST for anything there (a symlink, the directory itself),
  //! ENOENT in a removed directory, ENAMETOOLONG past NAME_MAX.
  static int may_create(const Slot& s) noexcept;

  InodePtr new_file(Filesystem& fs) const;

  //! Give a new inode its name (not durable until the directory is fsynced).
  void link_new(Inode& parent, std::string_view name, InodePtr n) const;

  //! Take back a file just made (an unlink after a failed ftruncate).
  void unlink_new(Inode& parent, std::string_view name, Inode& n) const;

  //! What ftruncate(2) refuses: a negative size (EINVAL), growth past the
  //! filesystem's largest file (EFBIG).
  static int truncate_check(const Inode& n, std::uint64_t size) noexcept;

  //! Write bytes, ENOSPC (and no change) when new blocks do not fit. A write
  //! past the end grows the file first, as the kernel does (see `grow`).
  int write_file_bytes(Inode& n, std::uint64_t offset, const char* data, std::uint64_t len) const;

  //! Write zeros over bytes [a, b) of one block: only where it holds data,
  //! or (`allocate`) into a new block where it is a hole. A shared block is
  //! copied first, as any write copies it.
  int zero_partial(Inode& n, std::uint64_t a, std::uint64_t b, bool check_only, std::uint64_t& need,
                   bool allocate = false) const;

  //! The file grows from inside a block to `size`: the filesystem writes
  //! zeros past the old end of that block. btrfs writes the whole block
  //! anew, allocating it even where it was a hole (btrfs_truncate_block);
  //! XFS and ext4 zero it only where it holds data (iomap_zero_range), which
  //! copies a block shared with a clone. Then the size.
  void grow(Inode& n, std::uint64_t size, bool check_only, std::uint64_t& need) const;

  //! ftruncate: drop the blocks past the new end. The block the new end
  //! cuts keeps its bytes past the end on btrfs (and stays shared with a
  //! clone); XFS and ext4 zero them, even for the size the file has. A
  //! growth: see `grow`.
  int set_size(Inode& n, std::uint64_t size) const;

  //! Whether btrfs finds [off, off + len) inside one hole and returns at
  //! once, the times unchanged (btrfs_punch_hole, find_first_non_hole). It
  //! looks up the extent map at the range's first block: inside the file a
  //! hole is mapped whole, up to the next data or the end of file (btrfs
  //! maps it so as the file grows over it); past the end of file the map is
  //! as long as the length rounded up to a block. A range that ends past
  //! that map goes on, and moves the times even where nothing is punched.
  //! (btrfs caches those maps: a hole it never mapped whole, as in a clone,
  //! can be smaller; the mock takes the common case.)
  static bool in_first_hole(const detail::memfs::FileData& f, std::uint64_t off, std::uint64_t len) noexcept;

  //! fallocate(PUNCH_HOLE | KEEP_SIZE) of [off, end): blocks wholly inside
  //! go, partial ones are zeroed and stay allocated (as on XFS and btrfs).
  //! btrfs zeroes up to the end of the last block, past the end of file.
  int punch(Inode& n, std::uint64_t off, std::uint64_t end) const;

  //! The remap a range copy makes where reflinks work: whole blocks of
  //! `sn` from block-aligned `off` shared into `dn` (the last partial block
  //! only into `dn`'s last block, both of the same size); the bytes shared,
  //! 0 when not one block can be.
  std::uint64_t remap_range(Inode& dn, const Inode& sn, std::uint64_t off, std::uint64_t len) const;

  std::shared_ptr<State> s_;
};

}  // namespace file_reflink

// The operations, defined after the class.
#include <file_reflink/fs_ops/memory/calls.hpp>
#include <file_reflink/fs_ops/memory/file_data.hpp>
#include <file_reflink/fs_ops/memory/file_ops.hpp>
#include <file_reflink/fs_ops/memory/name_ops.hpp>
#include <file_reflink/fs_ops/memory/test_api.hpp>

// Separately compiled: see <file_reflink/detail/extern_templates.hpp>.
#if defined(FILE_REFLINK_SEPARATE_COMPILATION)
#define FILE_REFLINK_DETAIL_HAVE_MEMORY_FS_OPS
#include <file_reflink/detail/extern_templates.hpp>
#endif
