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
#include <file_reflink/detail/memory_state.hpp>
#include <file_reflink/detail/memory_types.hpp>
#include <file_reflink/error.hpp>
#include <file_reflink/fs_ops.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
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
  //! An open directory, like a held fd: it keeps the directory (and its
  //! filesystem) alive even after the directory is removed or unmounted.
  //! Use it only with the `MemoryFsOps` (or a copy of it) that opened it.
  class dir_handle {
  public:
    dir_handle() = default;
    //! The absolute path the directory was opened as (messages, `path_of`).
    const path& abs_path() const noexcept { return path_; }
    //! Whether a copy or `probe_reflink` through this handle (or a copy of
    //! it) found its filesystem without reflinks: remembered per opened
    //! directory, as LinuxFsOps does.
    bool no_reflinks() const noexcept { return no_reflinks_ && no_reflinks_->load(); }

  private:
    friend class MemoryFsOps;
    std::shared_ptr<Filesystem> fs_;  // declared before dir_, so it outlives it
    InodePtr dir_;
    path path_;
    std::shared_ptr<std::atomic<bool>> no_reflinks_;
  };

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
  result<opened_dir<dir_handle>> open_dir(const path& abs, bool create) const noexcept {
    const Call c(fs_op::open_dir, "open_dir", &abs);
    return run<opened_dir<dir_handle>>(c, [&]() -> result<opened_dir<dir_handle>> {
      std::string text = abs.native();
      if (text.empty() || text.front() != '/') text.insert(0, "/");  // no working directory here: "/"
      while (text.size() > 1 && text.back() == '/') text.pop_back();
      auto r = s_->resolve_absolute(text, true,
                                    create ? detail::memfs::mkdir_durability::fsync_parent
                                           : detail::memfs::mkdir_durability::none);
      if (r.err) return fail(c, r.err);
      if (r.node->type != kind::directory) return fail(c, ENOTDIR);
      dir_handle h;
      h.fs_ = r.node->fs->shared_from_this();
      h.dir_ = r.node;
      h.path_ = text;
      h.no_reflinks_ = std::make_shared<std::atomic<bool>>(false);
      return opened_dir<dir_handle>{std::move(h), r.created};
    });
  }

  //! stat, following symlinks: what a pool compares to notice a lost mount.
  result<file_stat> stat_path(const path& abs) const noexcept {
    const Call c(fs_op::stat_path, "stat_path", &abs);
    return run<file_stat>(c, [&]() -> result<file_stat> {
      auto r = s_->resolve_absolute(abs.native(), true, detail::memfs::mkdir_durability::none);
      if (r.err) return fail(c, r.err);
      return make_stat(*r.node);
    });
  }

  //! rmdir, then the parent is fsynced: the removal is durable at once.
  result<void> remove_dir(const path& abs) const noexcept {
    const Call c(fs_op::remove_dir, "remove_dir", &abs);
    return run<void>(c, [&]() -> result<void> {
      // The last name, lexically, as rmdir(2) sees it: "." or ".." is EINVAL.
      std::string_view text = abs.native();
      while (text.size() > 1 && text.back() == '/') text.remove_suffix(1);
      const std::string_view last = text.substr(text.rfind('/') == std::string_view::npos ? 0 : text.rfind('/') + 1);
      if (last.empty() || last == "." || last == "..") return fail(c, EINVAL);
      auto r = s_->resolve_absolute(text, false, detail::memfs::mkdir_durability::none);
      if (r.err) return fail(c, r.err);
      if (int err = remove_directory(*r.parent, r.name, r.entry)) return fail(c, err);
      detail::memfs::fsync_dir(*r.parent);
      return success();
    });
  }

  //! The absolute path of `rel` (lexical): for messages and for a VM to attach.
  path path_of(const dir_handle& h, const path& rel) const noexcept {
    try {
      return rel.empty() ? h.path_ : h.path_ / rel;
    } catch (...) {
      return path();
    }
  }

  result<void> mkdir(const dir_handle& h, const path& rel) const noexcept {
    const Call c(fs_op::mkdir, "mkdir", &h, &rel);
    return run<void>(c, [&]() -> result<void> {
      Slot s;
      if (int err = find_slot(h, rel, s)) return fail(c, err);
      if (int err = may_create(s)) return fail(c, err);
      s_->make_dir_in(*s.parent, s.name);
      return success();
    });
  }

  result<void> rmdir(const dir_handle& h, const path& rel) const noexcept {
    const Call c(fs_op::rmdir, "rmdir", &h, &rel);
    return run<void>(c, [&]() -> result<void> {
      Slot s;
      if (int err = find_slot(h, rel, s)) return fail(c, err);
      if (int err = remove_directory(*s.parent, s.name, s.node)) return fail(c, err);
      return success();
    });
  }

  //! A sparse regular file of `size` (mode 0600); no data block is allocated.
  //! As LinuxFsOps: open (O_CREAT, and O_EXCL or O_TRUNC), then ftruncate; a
  //! size the filesystem refuses removes a new exclusive file again, and
  //! leaves an emptied or new file in truncate mode.
  result<void> create(const dir_handle& h, const path& rel, std::uint64_t size, create_mode mode) const noexcept {
    const Call c(fs_op::create, "create", &h, &rel);
    return run<void>(c, [&]() -> result<void> {
      Slot s;
      if (int err = locate(h, rel, s)) return fail(c, err);
      const bool exclusive = mode == create_mode::exclusive;
      const file_time now = s_->now();
      InodePtr n;
      bool made = false;
      if (s.node) {
        if (exclusive) return fail(c, EEXIST);
        if (s.node->type == kind::symlink) return fail(c, ELOOP);
        n = detail::memfs::through_mounts(s.node);
        if (n->type == kind::directory) return fail(c, EISDIR);
        set_size(*n, 0);  // O_TRUNC: never fails, never allocates
        n->file->dirty = true;
      } else {
        if (int err = detail::memfs::missing(*s.parent, s.name); err != ENOENT || detail::memfs::dead(*s.parent))
          return fail(c, err);
        n = new_file(*s.parent->fs);
        link_new(*s.parent, s.name, n);
        made = true;
      }
      // A new file's times are its creation's; an emptied one's move once.
      if (!made) detail::memfs::touch(*n, now);
      int err = truncate_check(*n, size);
      if (!err) err = set_size(*n, size);
      if (err) {
        if (made && exclusive) unlink_new(*s.parent, s.name, *n);
        return fail(c, err);
      }
      n->file->dirty = n->file->dirty || size != 0;
      return success();
    });
  }

  //! Read at an offset; short only at end of file. As pread(2): no call at
  //! all for 0 bytes, then the offset checks, then EISDIR for a directory.
  result<std::size_t> read(const dir_handle& h, const path& rel, std::uint64_t offset, void* buf,
                           std::size_t len) const noexcept {
    const Call c(fs_op::read, "read", &h, &rel);
    return run<std::size_t>(c, [&]() -> result<std::size_t> {
      InodePtr n;
      if (int err = open_node(h, rel, n)) return fail(c, err);
      if (len == 0) return std::size_t{0};
      if (offset > detail::memfs::max_file_size || len > detail::memfs::max_file_size - offset)
        return fail(c, EINVAL);  // a negative offset, or offset + count past the largest loff_t
      if (n->type == kind::directory) return fail(c, EISDIR);
      const auto& f = *n->file;
      if (offset >= f.size) return std::size_t{0};
      if (!buf) return fail(c, EFAULT);
      const std::size_t got = static_cast<std::size_t>(std::min<std::uint64_t>(len, f.size - offset));
      detail::memfs::read_bytes(f.view(), offset, static_cast<char*>(buf), got);
      return got;
    });
  }

  //! Write all bytes; a write into shared blocks copies only the blocks it
  //! touches. As pwrite(2): nothing for 0 bytes; a write that reaches the
  //! filesystem's largest file size writes what fits, then fails with EFBIG.
  result<void> write(const dir_handle& h, const path& rel, std::uint64_t offset, const void* data,
                     std::size_t len) const noexcept {
    const Call c(fs_op::write, "write", &h, &rel);
    return run<void>(c, [&]() -> result<void> {
      InodePtr n;
      if (int err = open_file(h, rel, n)) return fail(c, err);
      if (len == 0) return success();
      if (offset > detail::memfs::max_file_size || len > detail::memfs::max_file_size - offset)
        return fail(c, EINVAL);  // a negative offset, or offset + count past the largest loff_t
      const std::uint64_t max = n->fs->max_file_size;
      if (offset >= max) return fail(c, EFBIG);
      if (!data) return fail(c, EFAULT);
      const std::uint64_t fits = std::min<std::uint64_t>(len, max - offset);
      if (int err = write_file_bytes(*n, offset, static_cast<const char*>(data), fits)) return fail(c, err);
      if (fits < len) return fail(c, EFBIG);
      return success();
    });
  }

  //! Truncate or extend sparsely (ftruncate: the times move even when the
  //! size stays).
  result<void> resize(const dir_handle& h, const path& rel, std::uint64_t size) const noexcept {
    const Call c(fs_op::resize, "resize", &h, &rel);
    return run<void>(c, [&]() -> result<void> {
      InodePtr n;
      if (int err = open_file(h, rel, n)) return fail(c, err);
      if (int err = truncate_check(*n, size)) return fail(c, err);
      if (int err = set_size(*n, size)) return fail(c, err);
      detail::memfs::touch(*n, s_->now());
      n->file->dirty = true;
      return success();
    });
  }

  //! Deallocate whole blocks of the range, zero the partial ones; size
  //! unchanged. As fallocate(2): EINVAL for a negative offset or length,
  //! EFBIG past the largest file size; the times move, except on btrfs when
  //! the range lies in a hole (see `in_first_hole`).
  result<void> punch_hole(const dir_handle& h, const path& rel, std::uint64_t offset, std::uint64_t len) const noexcept {
    const Call c(fs_op::punch_hole, "punch_hole", &h, &rel);
    return run<void>(c, [&]() -> result<void> {
      InodePtr n;
      if (int err = open_file(h, rel, n)) return fail(c, err);
      if (len == 0) return success();  // fallocate would say EINVAL; nothing to do
      if (offset > detail::memfs::max_file_size || len > detail::memfs::max_file_size) return fail(c, EINVAL);
      if (len > n->fs->max_file_size - std::min(offset, n->fs->max_file_size)) return fail(c, EFBIG);
      std::uint64_t end = offset + len;
      const bool in_hole = in_first_hole(*n->file, offset, len);
      // ext4 takes a range past the end of file to the end of its page.
      if (n->fs->quirks == fs_quirks::ext4 && end > n->file->size)
        end = std::max(end, detail::memfs::block_down(n->file->size) + detail::memfs::block_size);
      if (int err = punch(*n, offset, end)) return fail(c, err);
      if (n->fs->quirks != fs_quirks::btrfs || !in_hole) {
        detail::memfs::touch(*n, s_->now());
        n->file->dirty = true;
      }
      return success();
    });
  }

  //! rename(2): replaces `to`; a directory only replaces an empty directory.
  //! The kernel's order: EXDEV, the source looked up, the target looked up,
  //! a directory moved below itself (EINVAL) or over its own ancestor
  //! (ENOTEMPTY), the same inode (nothing to do), the types, the target's
  //! entries (ENOTEMPTY; XFS says EEXIST).
  result<void> rename(const dir_handle& h, const path& from, const path& to) const noexcept {
    const Call c(fs_op::rename, "rename", &h, &from, &h, &to);
    return run<void>(c, [&]() -> result<void> {
      Slot a, b;
      if (int err = find_slot(h, from, a)) return fail(c, err);
      if (int err = find_slot(h, to, b)) return fail(c, err);
      if (a.parent->fs != b.parent->fs) return fail(c, EXDEV);
      if (!a.node) return fail(c, detail::memfs::missing(*a.parent, a.name));
      if (!b.node && (detail::memfs::dead(*b.parent) || b.name.size() > detail::memfs::name_max))
        return fail(c, detail::memfs::missing(*b.parent, b.name));
      const InodePtr src = a.node;
      const InodePtr dst = b.node;
      const bool src_dir = src->type == kind::directory;
      if (src_dir && contains(*src, b.parent.get())) return fail(c, EINVAL);
      if (dst && dst->type == kind::directory && contains(*dst, a.parent.get())) return fail(c, ENOTEMPTY);
      if (src == dst) return success();
      if (dst) {
        const bool dst_dir = dst->type == kind::directory;
        if (src_dir && !dst_dir) return fail(c, ENOTDIR);
        if (!src_dir && dst_dir) return fail(c, EISDIR);
      }
      if ((src_dir && src->dir->mounted) || (dst && dst->type == kind::directory && dst->dir->mounted))
        return fail(c, EBUSY);
      if (dst && dst->type == kind::directory && !dst->dir->entries.empty())
        return fail(c, b.parent->fs->quirks == fs_quirks::xfs ? EEXIST : ENOTEMPTY);
      // Every allocation before the first change, so that running out of
      // memory fails the call with nothing changed, as rename(2) either
      // happens or not: the durable records of both names, and the new
      // name's slot (filled below, after the old name is gone).
      detail::memfs::remember(*a.parent->dir, a.name);
      detail::memfs::remember(*b.parent->dir, b.name);
      if (!dst) b.parent->dir->entries.emplace(std::string(b.name), nullptr);
      const file_time now = s_->now();
      if (dst) {
        if (dst->type == kind::directory) {
          dst->nlink = 0;
          --b.parent->nlink;
        } else {
          --dst->nlink;
        }
        detail::memfs::touch_ctime(*dst, now);
      }
      detail::memfs::erase_entry(*a.parent, a.name);
      detail::memfs::set_entry(*b.parent, b.name, src);
      if (src_dir && a.parent != b.parent) {
        --a.parent->nlink;
        ++b.parent->nlink;
      }
      detail::memfs::touch(*a.parent, now);
      if (b.parent != a.parent) detail::memfs::touch(*b.parent, now);
      detail::memfs::touch_ctime(*src, now);
      return success();
    });
  }

  //! A hard link (never to a directory); `EEXIST` if `to` exists. The
  //! kernel's order: both directories (LinuxFsOps opens them first), the
  //! source looked up, the target looked up, EXDEV, EPERM for a directory.
  result<void> link(const dir_handle& h, const path& from, const path& to) const noexcept {
    const Call c(fs_op::link, "link", &h, &from, &h, &to);
    return run<void>(c, [&]() -> result<void> {
      Slot a, b;
      if (int err = find_slot(h, from, a)) return fail(c, err);
      if (int err = find_slot(h, to, b)) return fail(c, err);
      if (!a.node) return fail(c, detail::memfs::missing(*a.parent, a.name));
      if (int err = may_create(b)) return fail(c, err);
      if (a.parent->fs != b.parent->fs) return fail(c, EXDEV);
      if (a.node->type == kind::directory) return fail(c, EPERM);
      const file_time now = s_->now();
      detail::memfs::set_entry(*b.parent, b.name, a.node);
      ++a.node->nlink;
      detail::memfs::touch_ctime(*a.node, now);
      detail::memfs::touch(*b.parent, now);
      return success();
    });
  }

  //! unlink(2) of a file or symlink (never followed); a directory gives EISDIR.
  result<void> remove(const dir_handle& h, const path& rel) const noexcept {
    const Call c(fs_op::remove, "remove", &h, &rel);
    return run<void>(c, [&]() -> result<void> {
      Slot s;
      if (int err = find_slot(h, rel, s)) return fail(c, err);
      if (!s.node) return fail(c, detail::memfs::missing(*s.parent, s.name));
      if (s.node->type == kind::directory) return fail(c, EISDIR);
      const file_time now = s_->now();
      detail::memfs::erase_entry(*s.parent, s.name);
      --s.node->nlink;
      detail::memfs::touch_ctime(*s.node, now);
      detail::memfs::touch(*s.parent, now);
      return success();
    });
  }

  //! A file: its content becomes durable (not its name). A directory
  //! (`""` is the handle's own): its entries become durable.
  result<void> fsync(const dir_handle& h, const path& rel) const noexcept {
    const Call c(fs_op::fsync, "fsync", &h, &rel);
    return run<void>(c, [&]() -> result<void> {
      InodePtr n;
      if (int err = open_node(h, rel, n)) return fail(c, err);
      if (n->type == kind::directory)
        detail::memfs::fsync_dir(*n);
      else
        detail::memfs::fsync_file(*n);
      return success();
    });
  }

  //! lstat: a symlink is reported, not followed.
  result<file_stat> stat(const dir_handle& h, const path& rel) const noexcept {
    const Call c(fs_op::stat, "stat", &h, &rel);
    return run<file_stat>(c, [&]() -> result<file_stat> {
      Slot s;
      if (int err = locate(h, rel, s)) return fail(c, err);
      if (!s.node) return fail(c, detail::memfs::missing(*s.parent, s.name));
      return make_stat(*detail::memfs::through_mounts(s.node));
    });
  }

  //! Set the modification time (of a symlink itself, never its target), as
  //! the filesystem stores it (see `mount_options::time_min`); nanoseconds
  //! out of range are EINVAL before the name is looked up.
  result<void> set_mtime(const dir_handle& h, const path& rel, file_time mtime) const noexcept {
    const Call c(fs_op::set_mtime, "set_mtime", &h, &rel);
    return run<void>(c, [&]() -> result<void> {
      Slot s;
      if (int err = locate(h, rel, s)) return fail(c, err);
      if (mtime.nsec >= 1000000000u) return fail(c, EINVAL);
      if (!s.node) return fail(c, detail::memfs::missing(*s.parent, s.name));
      InodePtr n = detail::memfs::through_mounts(s.node);
      n->mtime = n->fs->clamp(mtime);
      detail::memfs::touch_ctime(*n, s_->now());
      if (n->file) n->file->dirty = true;
      return success();
    });
  }

  //! The entries of a directory (sorted by name), without `.` and `..`.
  result<std::vector<dir_entry>> list(const dir_handle& h, const path& rel) const noexcept {
    const Call c(fs_op::list, "list", &h, &rel);
    return run<std::vector<dir_entry>>(c, [&]() -> result<std::vector<dir_entry>> {
      InodePtr n;
      if (int err = open_node(h, rel, n)) return fail(c, err);
      if (n->type != kind::directory) return fail(c, ENOTDIR);
      std::vector<dir_entry> out;
      out.reserve(n->dir->entries.size());
      for (const auto& e : n->dir->entries) out.push_back({e.first, type_of(*e.second)});
      return out;
    });
  }

  //! Capacity, and what chunks alive on the filesystem leave free.
  result<fs_space> statvfs(const dir_handle& h) const noexcept {
    const Call c(fs_op::statvfs, "statvfs", &h, nullptr);
    return run<fs_space>(c, [&]() -> result<fs_space> {
      if (!h.dir_) return fail(c, EBADF);
      fs_space sp;
      sp.size = h.fs_->capacity;
      sp.free = sp.available = h.fs_->free_bytes();
      return sp;
    });
  }

  //! The data extents; `shared` exactly where another live file of the
  //! same filesystem uses the same storage (a scan of that filesystem). A
  //! directory: EOPNOTSUPP, as btrfs and XFS say; ext4 maps its block.
  result<std::vector<extent>> extents(const dir_handle& h, const path& rel) const noexcept {
    const Call c(fs_op::extents, "extents", &h, &rel);
    return run<std::vector<extent>>(c, [&]() -> result<std::vector<extent>> {
      InodePtr n;
      if (int err = open_node(h, rel, n)) return fail(c, err);
      if (n->type == kind::directory) {
        if (n->fs->quirks != fs_quirks::ext4) return fail(c, EOPNOTSUPP);
        // One block of entries, somewhere no file's data is.
        return std::vector<extent>{extent{0, (std::uint64_t(1) << 62) + n->ino * detail::memfs::block_size,
                                          detail::memfs::block_size, false}};
      }
      return detail::memfs::report_extents(n->file->view(), s_->other_live_files(*n->fs, n.get()));
    });
  }

  //! FICLONE into a new file (exclusive, 0600): O(extents), no fallback.
  //! As LinuxFsOps: the source opened, the destination created, then the
  //! ioctl (EXDEV, EISDIR, EOPNOTSUPP), and a failed one removed again.
  result<void> clone(const dir_handle& src_dir, const path& src, const dir_handle& dst_dir,
                     const path& dst) const noexcept {
    const Call c(fs_op::clone, "clone", &src_dir, &src, &dst_dir, &dst);
    return run<void>(c, [&]() -> result<void> {
      InodePtr sn;
      if (int err = open_node(src_dir, src, sn)) return fail(c, err);
      Slot d;
      if (int err = locate(dst_dir, dst, d)) return fail(c, err);
      if (int err = may_create(d)) return fail(c, err);
      const auto undo = [&](int err) {
        detail::memfs::touch(*d.parent, s_->now());  // made, then removed
        return fail(c, err);
      };
      if (sn->fs != d.parent->fs) return undo(EXDEV);
      if (sn->type == kind::directory) return undo(EISDIR);
      if (!d.parent->fs->reflink) return undo(EOPNOTSUPP);
      InodePtr n = new_file(*d.parent->fs);
      n->file->set_extents(sn->file->extents);
      n->file->size = sn->file->size;
      n->file->dirty = true;
      link_new(*d.parent, d.name, std::move(n));
      return success();
    });
  }

  //! Clone, else copy_file_range, else a sparse copy, as `LinuxFsOps` does;
  //! holes stay holes and a failed or cancelled copy leaves no destination.
  result<copy_result> copy(const dir_handle& src_dir, const path& src, const dir_handle& dst_dir, const path& dst,
                           const copy_options& opts) const noexcept {
    const Call c(fs_op::copy, "copy", &src_dir, &src, &dst_dir, &dst);
    return run<copy_result>(c, [&]() -> result<copy_result> { return do_copy(c, src_dir, src, dst_dir, dst, opts); });
  }

  //! LOOP_SET_CAPACITY on every attached loop device backed by the file.
  //! The name is lstat'ed: a symlink or a directory backs no device (0).
  result<unsigned> notify_resize(const dir_handle& h, const path& rel) const noexcept {
    const Call c(fs_op::notify_resize, "notify_resize", &h, &rel);
    return run<unsigned>(c, [&]() -> result<unsigned> {
      Slot s;
      if (int err = locate(h, rel, s)) return fail(c, err);
      if (!s.node) return fail(c, detail::memfs::missing(*s.parent, s.name));
      const InodePtr n = detail::memfs::through_mounts(s.node);
      unsigned told = 0;
      for (auto& l : s_->loops) {
        if (l.second.inode != n) continue;
        l.second.capacity = loop_size(*n);
        ++told;
      }
      return told;
    });
  }

  //! Whether a clone works here; false (and the handle remembers it) on a
  //! filesystem mounted with `reflink = false`. The probe's O_TMPFILE works
  //! in a removed directory on btrfs and XFS; ext4 makes no inode there (EPERM).
  result<bool> probe_reflink(const dir_handle& h) const noexcept {
    const Call c(fs_op::probe_reflink, "probe_reflink", &h, nullptr);
    return run<bool>(c, [&]() -> result<bool> {
      if (!h.dir_) return fail(c, EBADF);
      if (detail::memfs::dead(*h.dir_) && h.fs_->quirks == fs_quirks::ext4) return fail(c, EPERM);
      // The Linux probe writes a few KiB into a temporary file first.
      if (h.fs_->free_bytes() < detail::memfs::block_size) return fail(c, ENOSPC);
      if (!h.fs_->reflink) {
        h.no_reflinks_->store(true);
        return false;
      }
      return true;
    });
  }

  // ---- lock files ----

  //! An open lock file, as `LinuxFsOps`'s: its byte locks belong to this
  //! open (shared by the handle's copies) and are released when the last
  //! copy goes, as when a process dies, or at `crash()`.
  class lock_file {
  public:
    lock_file() = default;

  private:
    friend class MemoryFsOps;
    //! The open itself: its identity owns the locks; it releases them.
    struct open_file {
      std::weak_ptr<State> state;
      InodePtr inode;
      std::set<std::uint64_t> held;
      ~open_file() {
        auto s = state.lock();
        if (!s || held.empty()) return;
        {
          std::lock_guard<std::recursive_mutex> lock(s->mutex);
          for (std::uint64_t off : held) {
            auto it = s->locks.find({inode.get(), off});
            if (it == s->locks.end()) continue;
            it->second.shared.erase(this);
            if (it->second.exclusive == this) it->second.exclusive = nullptr;
            if (!it->second.exclusive && it->second.shared.empty()) s->locks.erase(it);
          }
        }
        s->locks_released();
      }
    };
    std::shared_ptr<open_file> open_;
    path abs_;
  };

  //! Opens (creating it, 0600) the lock file `rel`; a new open, whose locks
  //! are its own.
  result<lock_file> open_lock(const dir_handle& h, const path& rel) const noexcept {
    const Call c(fs_op::open_lock, "open_lock", &h, &rel);
    return run<lock_file>(c, [&]() -> result<lock_file> {
      Slot s;
      if (int err = locate(h, rel, s)) return fail(c, err);
      InodePtr n = s.node ? detail::memfs::through_mounts(s.node) : nullptr;
      if (n && n->type == kind::symlink) return fail(c, ELOOP);
      if (n && n->type != kind::regular) return fail(c, EISDIR);
      if (!n) {
        if (s.parent->nlink == 0) return fail(c, ENOENT);
        n = new_file(*s.parent->fs);
        link_new(*s.parent, s.name, n);
      }
      lock_file f;
      f.open_ = std::make_shared<lock_file::open_file>();
      f.open_->state = s_;
      f.open_->inode = n;
      f.abs_ = path_of(h, rel);
      return f;
    });
  }

  //! Locks the byte at `offset` against every other open: with `wait`,
  //! until it is granted, else false at once. A lock already held by this
  //! open is converted (shared to exclusive, or back), as fcntl does.
  result<bool> lock(const lock_file& f, std::uint64_t offset, lock_mode mode, bool wait) const noexcept {
    const Call c(fs_op::lock, "lock", &f.abs_);
    for (;;) {
      std::uint64_t generation = 0;
      {
        std::lock_guard<std::mutex> lk(s_->lock_mu);
        generation = s_->lock_generation;
      }
      auto got = run<bool>(c, [&]() -> result<bool> {
        if (!f.open_) return fail(c, EBADF);
        const void* me = f.open_.get();
        auto& e = s_->locks[{f.open_->inode.get(), offset}];
        const bool others_shared = e.shared.size() > (e.shared.count(me) ? 1u : 0u);
        const bool other_exclusive = e.exclusive && e.exclusive != me;
        if (other_exclusive || (mode == lock_mode::exclusive && others_shared)) {
          if (!e.exclusive && e.shared.empty()) s_->locks.erase({f.open_->inode.get(), offset});
          return false;
        }
        f.open_->held.insert(offset);
        if (mode == lock_mode::exclusive) {
          e.shared.erase(me);
          e.exclusive = me;
        } else {
          if (e.exclusive == me) e.exclusive = nullptr;
          e.shared.insert(me);
        }
        return true;
      });
      if (!got || got.value() || !wait) return got;
      std::unique_lock<std::mutex> lk(s_->lock_mu);
      s_->lock_cv.wait(lk, [&] { return s_->lock_generation != generation; });
    }
  }

  //! Releases this open's lock on the byte at `offset`.
  result<void> unlock(const lock_file& f, std::uint64_t offset) const noexcept {
    const Call c(fs_op::unlock, "unlock", &f.abs_);
    auto r = run<void>(c, [&]() -> result<void> {
      if (!f.open_) return fail(c, EBADF);
      const void* me = f.open_.get();
      f.open_->held.erase(offset);
      auto it = s_->locks.find({f.open_->inode.get(), offset});
      if (it == s_->locks.end()) return success();
      it->second.shared.erase(me);
      if (it->second.exclusive == me) it->second.exclusive = nullptr;
      if (!it->second.exclusive && it->second.shared.empty()) s_->locks.erase(it);
      return success();
    });
    if (r) s_->locks_released();
    return r;
  }

  // ---- mounts ----

  //! Mount a new empty filesystem on `abs_dir` (made with mkdir -p, durably,
  //! if missing). Not a contract call.
  result<void> mount(const path& abs_dir, mount_options opts = {}) const noexcept {
    return locked<void>("mount", abs_dir, [&]() -> result<void> {
      auto r = s_->resolve_absolute(abs_dir.native(), true, detail::memfs::mkdir_durability::entry_only);
      if (r.err) return api_fail("mount", abs_dir, r.err);
      if (r.node->type != kind::directory) return api_fail("mount", abs_dir, ENOTDIR);
      r.node->dir->mounted = s_->make_fs(opts);
      return success();
    });
  }

  //! Lazy unmount of the topmost filesystem on `abs_dir`: the directory
  //! shows what was beneath again; handles opened inside keep working.
  result<void> unmount(const path& abs_dir) const noexcept {
    return locked<void>("unmount", abs_dir, [&]() -> result<void> {
      auto r = s_->resolve_absolute(abs_dir.native(), true, detail::memfs::mkdir_durability::none);
      if (r.err) return api_fail("unmount", abs_dir, r.err);
      InodePtr x = r.name.empty() ? s_->root_fs->root : r.entry;
      if (x->type != kind::directory || !x->dir->mounted) return api_fail("unmount", abs_dir, EINVAL);
      while (x->dir->mounted->root->dir->mounted) x = x->dir->mounted->root;
      x->dir->mounted.reset();
      return success();
    });
  }

  // ---- power loss ----

  //! Power loss and power on: every filesystem keeps only its durable state
  //! (names from fsynced directories, contents from fsynced files). Mounts stay.
  void crash() const {
    std::lock_guard<std::recursive_mutex> lock(s_->mutex);
    s_->crash();
  }

  //! After `n` more contract calls complete, every call fails with EIO and
  //! changes nothing until `crash()` (n = 0: the very next call).
  void power_off_after(std::uint64_t n) const {
    std::lock_guard<std::recursive_mutex> lock(s_->mutex);
    s_->power_off_at = s_->seq + n;
  }

  //! Whether power is lost (calls fail with EIO until `crash()`).
  bool powered_off() const {
    std::lock_guard<std::recursive_mutex> lock(s_->mutex);
    return s_->powered_off();
  }

  // ---- counting and fault injection ----

  //! Contract calls (every one but path_of) since creation or `reset_counts`.
  std::uint64_t call_count() const {
    std::lock_guard<std::recursive_mutex> lock(s_->mutex);
    return s_->calls;
  }
  //! Calls of one operation since creation or `reset_counts`.
  std::uint64_t op_count(fs_op op) const {
    std::lock_guard<std::recursive_mutex> lock(s_->mutex);
    return s_->op_calls[static_cast<std::size_t>(op)];
  }
  //! Start counting afresh (say, after a test's setup).
  void reset_counts() const {
    std::lock_guard<std::recursive_mutex> lock(s_->mutex);
    s_->calls = 0;
    s_->op_calls.fill(0);
  }

  //! The n-th contract call from now (1 = the next one) fails with `err`
  //! and changes nothing.
  void fail_nth_call(std::uint64_t n, int err) const {
    std::lock_guard<std::recursive_mutex> lock(s_->mutex);
    s_->nth_faults.push_back({s_->seq + std::max<std::uint64_t>(n, 1), err});
  }

  //! Calls of `op` where an absolute path involved contains `path_substring`
  //! fail with `err` and change nothing: `times` times, or forever with -1.
  void fail_calls(fs_op op, std::string path_substring, int err, int times = -1) const {
    if (times == 0) return;
    std::lock_guard<std::recursive_mutex> lock(s_->mutex);
    s_->path_faults.push_back({op, std::move(path_substring), err, times});
  }

  //! Disarm `fail_nth_call` and `fail_calls` (not a power loss).
  void clear_faults() const {
    std::lock_guard<std::recursive_mutex> lock(s_->mutex);
    s_->nth_faults.clear();
    s_->path_faults.clear();
  }

  //! Called before every contract call runs, OUTSIDE the lock (so it may call
  //! back into this filesystem), with the operation and its absolute path;
  //! two-path operations pass "<src> -> <dst>". Empty function: none.
  void set_call_observer(std::function<void(fs_op, const std::string&)> observer) const {
    std::lock_guard<std::recursive_mutex> lock(s_->mutex);
    s_->has_observer.store(static_cast<bool>(observer));
    s_->observer = observer ? std::make_shared<const detail::memfs::observer_fn>(std::move(observer)) : nullptr;
  }

  // ---- test inspection (absolute paths, live state, never counted or failed) ----

  //! The whole content of a file (symlinks followed).
  result<std::string> read_file(const path& abs) const {
    return locked<std::string>("read_file", abs, [&]() -> result<std::string> {
      auto r = s_->resolve_absolute(abs.native(), true, detail::memfs::mkdir_durability::none);
      if (r.err) return api_fail("read_file", abs, r.err);
      if (r.node->type != kind::regular) return api_fail("read_file", abs, EISDIR);
      const auto& f = *r.node->file;
      std::string out(static_cast<std::size_t>(f.size), '\0');
      detail::memfs::read_bytes(f.view(), 0, out.data(), out.size());
      return out;
    });
  }

  //! Write bytes into a file, creating it (0600) if missing, or failing with
  //! ENOENT when `missing` says the caller expects it to exist. Setup, not
  //! code under test: the data and the name are durable at once.
  result<void> write_file(const path& abs, std::string_view data, std::uint64_t offset = 0,
                          missing_file missing = missing_file::create) const {
    return locked<void>("write_file", abs, [&]() -> result<void> {
      auto r = s_->resolve_absolute(abs.native(), true, detail::memfs::mkdir_durability::none);
      InodePtr n = r.node;
      if (r.err) {
        if (r.err != ENOENT || !r.parent || r.name.empty() || missing == missing_file::fail)
          return api_fail("write_file", abs, r.err);
        n = new_file(*r.parent->fs);
        link_new(*r.parent, r.name, n);
        detail::memfs::make_entry_durable(*r.parent->dir, r.name);
      }
      if (n->type != kind::regular) return api_fail("write_file", abs, EISDIR);
      if (!data.empty()) {
        if (offset > detail::memfs::max_file_size || data.size() > detail::memfs::max_file_size - offset) return api_fail("write_file", abs, EFBIG);
        if (int err = write_file_bytes(*n, offset, data.data(), data.size())) return api_fail("write_file", abs, err);
      }
      detail::memfs::fsync_file(*n);
      return success();
    });
  }

  //! A symlink at `abs_link` pointing to `target` (durable at once).
  result<void> symlink(const path& target, const path& abs_link) const {
    return locked<void>("symlink", abs_link, [&]() -> result<void> {
      auto r = s_->resolve_absolute(abs_link.native(), false, detail::memfs::mkdir_durability::none);
      if (r.err == 0) return api_fail("symlink", abs_link, EEXIST);
      if (r.err != ENOENT || !r.parent || r.name.empty()) return api_fail("symlink", abs_link, r.err);
      if (r.parent->nlink == 0) return api_fail("symlink", abs_link, ENOENT);
      InodePtr n = s_->make_inode(*r.parent->fs, kind::symlink);
      n->nlink = 1;
      n->link = std::make_unique<std::string>(target.native());
      link_new(*r.parent, r.name, std::move(n));
      detail::memfs::make_entry_durable(*r.parent->dir, r.name);
      return success();
    });
  }

  //! lstat of `abs`: symlinks on the way are followed, the last name is
  //! reported as it is (a symlink as a symlink).
  result<file_stat> lstat(const path& abs) const {
    return locked<file_stat>("lstat", abs, [&]() -> result<file_stat> {
      auto r = s_->resolve_absolute(abs.native(), false, detail::memfs::mkdir_durability::none);
      if (r.err) return api_fail("lstat", abs, r.err);
      return make_stat(*r.node);
    });
  }

  //! A hard link `abs_to` of what `abs_from` names (a symlink is linked
  //! itself), durable at once; EEXIST, EXDEV and EPERM as link(2) says them.
  result<void> link(const path& abs_from, const path& abs_to) const {
    return locked<void>("link", abs_to, [&]() -> result<void> {
      auto a = s_->resolve_absolute(abs_from.native(), false, detail::memfs::mkdir_durability::none);
      if (a.err) return api_fail("link", abs_from, a.err);
      auto b = s_->resolve_absolute(abs_to.native(), false, detail::memfs::mkdir_durability::none);
      if (b.err == 0) return api_fail("link", abs_to, EEXIST);
      if (b.err != ENOENT || !b.parent || b.name.empty()) return api_fail("link", abs_to, b.err);
      if (a.entry->type == kind::directory) return api_fail("link", abs_from, EPERM);
      if (a.entry->fs != b.parent->fs) return api_fail("link", abs_to, EXDEV);
      if (b.parent->nlink == 0) return api_fail("link", abs_to, ENOENT);
      detail::memfs::set_entry(*b.parent, b.name, a.entry);
      ++a.entry->nlink;
      detail::memfs::touch_ctime(*a.entry, s_->now());
      detail::memfs::touch(*b.parent, s_->now());
      detail::memfs::make_entry_durable(*b.parent->dir, b.name);
      return success();
    });
  }

  //! truncate(2) of the file `abs` (symlinks followed): a new end, sparse
  //! when it grows; durable at once.
  result<void> truncate(const path& abs, std::uint64_t size) const {
    return locked<void>("truncate", abs, [&]() -> result<void> {
      auto r = s_->resolve_absolute(abs.native(), true, detail::memfs::mkdir_durability::none);
      if (r.err) return api_fail("truncate", abs, r.err);
      if (r.node->type != kind::regular) return api_fail("truncate", abs, EISDIR);
      if (int err = truncate_check(*r.node, size)) return api_fail("truncate", abs, err);
      if (int err = set_size(*r.node, size)) return api_fail("truncate", abs, err);
      detail::memfs::touch(*r.node, s_->now());
      r.node->file->dirty = true;
      detail::memfs::fsync_file(*r.node);
      return success();
    });
  }

  //! Set the modification time of what `abs` names (symlinks followed, as
  //! `touch -d` does), within what its filesystem can store; durable at once.
  result<void> set_mtime(const path& abs, file_time mtime) const {
    return locked<void>("set_mtime", abs, [&]() -> result<void> {
      auto r = s_->resolve_absolute(abs.native(), true, detail::memfs::mkdir_durability::none);
      if (r.err) return api_fail("set_mtime", abs, r.err);
      if (mtime.nsec >= 1000000000u) return api_fail("set_mtime", abs, EINVAL);
      r.node->mtime = r.node->fs->clamp(mtime);
      detail::memfs::touch_ctime(*r.node, s_->now());
      if (r.node->file) {
        r.node->file->dirty = true;
        detail::memfs::fsync_file(*r.node);
      }
      return success();
    });
  }

  //! Whether something is at `abs` (lstat: a dangling symlink exists).
  bool exists(const path& abs) const {
    std::lock_guard<std::recursive_mutex> lock(s_->mutex);
    return s_->resolve_absolute(abs.native(), false, detail::memfs::mkdir_durability::none).err == 0;
  }

  //! One sorted line per entry below `abs`, for a failing test to print:
  //! "vm/private.img file size=1048576 alloc=4096 nlink=1", "vm dir",
  //! "x symlink -> /etc".
  std::vector<std::string> tree(const path& abs = "/") const {
    std::lock_guard<std::recursive_mutex> lock(s_->mutex);
    std::vector<std::string> lines;
    auto r = s_->resolve_absolute(abs.native(), true, detail::memfs::mkdir_durability::none);
    if (r.err || r.node->type != kind::directory) return lines;
    std::vector<std::pair<std::string, InodePtr>> todo{{std::string(), r.node}};
    while (!todo.empty()) {
      auto [prefix, d] = std::move(todo.back());
      todo.pop_back();
      for (const auto& e : d->dir->entries) {
        const std::string name = prefix.empty() ? e.first : prefix + "/" + e.first;
        const InodePtr n = detail::memfs::through_mounts(e.second);
        switch (n->type) {
          case kind::directory:
            lines.push_back(name + " dir");
            todo.emplace_back(name, n);
            break;
          case kind::symlink: lines.push_back(name + " symlink -> " + n->target()); break;
          case kind::regular:
            lines.push_back(name + " file size=" + std::to_string(n->file->size) +
                            " alloc=" + std::to_string(detail::memfs::allocated_bytes(n->file->view())) +
                            " nlink=" + std::to_string(n->nlink));
            break;
        }
      }
    }
    std::sort(lines.begin(), lines.end());
    return lines;
  }

  //! Whether the two files (symlinks followed) share some storage.
  bool shares_extent(const path& a, const path& b) const {
    std::lock_guard<std::recursive_mutex> lock(s_->mutex);
    auto ra = s_->resolve_absolute(a.native(), true, detail::memfs::mkdir_durability::none);
    auto rb = s_->resolve_absolute(b.native(), true, detail::memfs::mkdir_durability::none);
    if (ra.err || rb.err || ra.node->type != kind::regular || rb.node->type != kind::regular) return false;
    return detail::memfs::share_storage(ra.node->file->view(), rb.node->file->view());
  }

  //! The clock every timestamp comes from.
  file_time now() const {
    std::lock_guard<std::recursive_mutex> lock(s_->mutex);
    return s_->now();
  }
  //! Replace the clock (an empty function: real time again). Any time of
  //! any year, before 1970 and after 2262 too.
  void set_clock(std::function<file_time()> clock) const {
    std::lock_guard<std::recursive_mutex> lock(s_->mutex);
    s_->clock = std::move(clock);
  }

  //! losetup: a loop device on the file, whose capacity is the file's size
  //! (in whole 512-byte sectors) until `notify_resize` updates it.
  result<int> attach_loop(const path& abs_file) const {
    return locked<int>("attach_loop", abs_file, [&]() -> result<int> {
      auto r = s_->resolve_absolute(abs_file.native(), true, detail::memfs::mkdir_durability::none);
      if (r.err) return api_fail("attach_loop", abs_file, r.err);
      if (r.node->type != kind::regular) return api_fail("attach_loop", abs_file, EISDIR);
      const int id = s_->next_loop++;
      s_->loops[id] = detail::memfs::LoopDevice{r.node->fs->shared_from_this(), r.node, loop_size(*r.node)};
      return id;
    });
  }
  //! The capacity a loop device believes its file has (0: no such device).
  std::uint64_t loop_capacity(int id) const {
    std::lock_guard<std::recursive_mutex> lock(s_->mutex);
    auto it = s_->loops.find(id);
    return it == s_->loops.end() ? 0 : it->second.capacity;
  }
  //! losetup -d: the device lets go of its file.
  void detach_loop(int id) const {
    std::lock_guard<std::recursive_mutex> lock(s_->mutex);
    s_->loops.erase(id);
  }

  //! Approximate heap use of the model (inodes, names, extents, chunk bytes).
  std::size_t memory_bytes() const {
    std::lock_guard<std::recursive_mutex> lock(s_->mutex);
    return s_->memory_bytes();
  }

private:
  //! One contract call: its operation and the path(s) it names, made
  //! absolute only when a message, an observer or a fault needs them.
  struct Call {
    Call(fs_op o, const char* w, const path* abs) : op(o), word(w), abs_path(abs) {}
    Call(fs_op o, const char* w, const dir_handle* h, const path* rel) : op(o), word(w), h1(h), r1(rel) {}
    Call(fs_op o, const char* w, const dir_handle* a, const path* ra, const dir_handle* b, const path* rb)
        : op(o), word(w), h1(a), r1(ra), h2(b), r2(rb) {}

    fs_op op;
    const char* word;
    const path* abs_path = nullptr;
    const dir_handle* h1 = nullptr;
    const path* r1 = nullptr;
    const dir_handle* h2 = nullptr;
    const path* r2 = nullptr;

    static std::string join(const dir_handle& h, const path* rel) {
      return (rel == nullptr || rel->empty()) ? h.path_.string() : (h.path_ / *rel).string();
    }
    bool two() const noexcept { return h2 != nullptr; }
    std::string first() const { return abs_path ? abs_path->string() : join(*h1, r1); }
    std::string second() const { return join(*h2, r2); }
    //! "<op> '<path>'" or "<op> '<src>' -> '<dst>'".
    std::string what() const {
      const std::string a = first();
      const std::string b = two() ? second() : std::string();
      std::string w;
      w.reserve(std::strlen(word) + a.size() + b.size() + 48);  // room for ": <reason>" too
      w += word;
      w += " '";
      w += a;
      w += '\'';
      if (two()) {
        w += " -> '";
        w += b;
        w += '\'';
      }
      return w;
    }
    std::string observed() const { return two() ? first() + " -> " + second() : first(); }
  };

  //! A name's slot: the directory holding it, the name, and what is there now.
  struct Slot {
    InodePtr parent;
    std::string_view name;
    InodePtr node;
  };

  //! What a failed call returns before it becomes a `result`.
  using failure_t = decltype(errno_failure(0, std::string()));

  //! "<op> '<path>': <reason>", as `errno_failure` makes it, with the
  //! reason looked up once per errno: a stat of a missing name is a common
  //! call (a stopped volume has no dirty image) and its message is built
  //! every time.
  static failure_t fail(const Call& c, int err) {
    std::string what = c.what();
    const std::string& why = reason(err);
    what.reserve(what.size() + 2 + why.size());
    what += ": ";
    what += why;
    return BOOST_OUTCOME_V2_NAMESPACE::failure(error(std::error_code(err, std::system_category()), std::move(what)));
  }

  //! `std::system_category().message(err)`, computed once per errno value.
  static const std::string& reason(int err) {
    static const std::vector<std::string> known = [] {
      std::vector<std::string> v;
      for (int e = 0; e < 160; ++e) v.push_back(std::system_category().message(e));
      return v;
    }();
    if (err >= 0 && static_cast<std::size_t>(err) < known.size()) return known[static_cast<std::size_t>(err)];
    thread_local std::string other;
    other = std::system_category().message(err);
    return other;
  }

  //! Count the call, then apply a power loss or an armed fault. Returns the
  //! errno the call must fail with, 0 to run it.
  int admit(const Call& c) const {
    State& s = *s_;
    ++s.seq;
    ++s.calls;
    ++s.op_calls[static_cast<std::size_t>(c.op)];
    if (s.power_off_at && s.seq > *s.power_off_at) return EIO;
    for (auto it = s.nth_faults.begin(); it != s.nth_faults.end(); ++it)
      if (it->seq == s.seq) {
        const int err = it->err;
        s.nth_faults.erase(it);
        return err;
      }
    if (!s.path_faults.empty()) {
      const std::string a = c.first();
      const std::string b = c.two() ? c.second() : std::string();
      for (auto it = s.path_faults.begin(); it != s.path_faults.end(); ++it) {
        if (it->op != c.op) continue;
        if (a.find(it->needle) == std::string::npos && (!c.two() || b.find(it->needle) == std::string::npos)) continue;
        const int err = it->err;
        if (it->times > 0 && --it->times == 0) s.path_faults.erase(it);
        return err;
      }
    }
    return 0;
  }

  //! Run one contract call: observer, lock, admission, body; no exception escapes.
  template <class T, class F>
  result<T> run(const Call& c, F&& body) const noexcept {
    try {
      if (s_->has_observer.load()) {
        std::shared_ptr<const detail::memfs::observer_fn> obs;
        {
          std::lock_guard<std::recursive_mutex> lock(s_->mutex);
          obs = s_->observer;
        }
        if (obs) {
          try {
            (*obs)(c.op, c.observed());
          } catch (...) {
          }
        }
      }
      std::lock_guard<std::recursive_mutex> lock(s_->mutex);
      if (int err = admit(c)) return fail(c, err);
      return body();
    } catch (const std::bad_alloc&) {
      return errno_failure_nothrow(ENOMEM, [&] { return c.what(); });
    } catch (...) {
      return errno_failure_nothrow(EIO, [&] { return c.what(); });
    }
  }

  //! Run a test-inspection function under the lock; no exception escapes.
  template <class T, class F>
  result<T> locked(const char* what, const path& abs, F&& body) const noexcept {
    try {
      std::lock_guard<std::recursive_mutex> lock(s_->mutex);
      return body();
    } catch (const std::bad_alloc&) {
      return errno_failure_nothrow(ENOMEM, [&] { return std::string(what) + " '" + abs.string() + "'"; });
    } catch (...) {
      return errno_failure_nothrow(EIO, [&] { return std::string(what) + " '" + abs.string() + "'"; });
    }
  }

  //! "<what> '<abs>': <reason>" for a test-inspection function.
  static failure_t api_fail(const char* what, const path& abs, int err) {
    return errno_failure(err, std::string(what) + " '" + abs.string() + "'");
  }

  //! Resolve for an operation that opens the path (O_NOFOLLOW): a symlink
  //! anywhere gives ELOOP; "" and "a/.." are directories themselves.
  static int open_node(const dir_handle& h, const path& rel, InodePtr& out) {
    if (!h.dir_) return EBADF;
    return detail::memfs::open_beneath(h.dir_, rel.native(), out);
  }

  //! `open_node` for data operations: a directory gives EISDIR.
  static int open_file(const dir_handle& h, const path& rel, InodePtr& out) {
    if (int err = open_node(h, rel, out)) return err;
    return out->type == kind::directory ? EISDIR : 0;
  }

  //! Where `rel` leads: its directory and last name, and what is there now
  //! (mounts not followed). An empty name is the directory itself.
  static int locate(const dir_handle& h, const path& rel, Slot& s) {
    if (!h.dir_) return EBADF;
    if (int err = detail::memfs::locate_beneath(h.dir_, rel.native(), s.parent, s.name)) return err;
    if (s.name.empty()) {
      s.node = s.parent;
      return 0;
    }
    auto it = s.parent->dir->entries.find(s.name);
    if (it != s.parent->dir->entries.end()) s.node = it->second;
    return 0;
  }

  //! `locate` for operations on a name itself (mkdir, rename, ...): a path
  //! that names a directory alone is EINVAL there.
  static int find_slot(const dir_handle& h, const path& rel, Slot& s) {
    if (int err = locate(h, rel, s)) return err;
    return s.name.empty() ? EINVAL : 0;
  }

  static file_type type_of(const Inode& n) noexcept {
    switch (n.type) {
      case kind::regular: return file_type::regular;
      case kind::directory: return file_type::directory;
      case kind::symlink: return file_type::symlink;
    }
    return file_type::other;
  }

  static file_stat make_stat(const Inode& n) {
    file_stat st;
    st.type = type_of(n);
    switch (n.type) {
      case kind::regular:
        st.size = n.file->size;
        st.allocated = n.file->allocated();
        break;
      case kind::directory: st.size = detail::memfs::block_size; break;
      case kind::symlink: st.size = n.target().size(); break;
    }
    st.mtime = n.mtime;
    st.ctime = n.ctime;
    st.ino = n.ino;
    st.dev = n.fs->dev;
    st.nlink = n.nlink;
    // btrfs counts no subdirectories: a directory has one link (none once removed).
    if (n.type == kind::directory && n.fs->quirks == fs_quirks::btrfs) st.nlink = std::min<std::uint64_t>(n.nlink, 1);
    return st;
  }

  //! Bytes per copy_file_range call and per read/write of the buffered copy,
  //! as LinuxFsOps moves them (one progress report each).
  static constexpr std::uint64_t copy_chunk = std::uint64_t(4) << 20;

  //! What a loop device sees of its file: whole 512-byte sectors.
  static std::uint64_t loop_size(const Inode& n) noexcept { return n.file->size & ~std::uint64_t{511}; }

  //! Whether `target` is `d` or lies below it (a directory cannot move into itself).
  static bool contains(const Inode& d, const Inode* target) {
    if (&d == target) return true;
    for (const auto& e : d.dir->entries)
      if (e.second->type == kind::directory && contains(*e.second, target)) return true;
    return false;
  }

  //! rmdir of `node` (the entry `name` in `parent`, mounts not followed).
  int remove_directory(Inode& parent, std::string_view name, const InodePtr& node) const {
    if (!node) return detail::memfs::missing(parent, name);
    if (node->type != kind::directory) return ENOTDIR;
    if (node->dir->mounted) return EBUSY;
    if (!node->dir->entries.empty()) return ENOTEMPTY;
    const file_time now = s_->now();
    detail::memfs::erase_entry(parent, name);
    --parent.nlink;
    node->nlink = 0;
    detail::memfs::touch_ctime(*node, now);
    detail::memfs::touch(parent, now);
    return 0;
  }

  //! Whether a new name can go in a slot, as the kernel's exclusive lookup
  //! says: EEXIST for anything there (a symlink, the directory itself),
  //! ENOENT in a removed directory, ENAMETOOLONG past NAME_MAX.
  static int may_create(const Slot& s) noexcept {
    if (s.node) return EEXIST;
    if (detail::memfs::dead(*s.parent)) return ENOENT;
    return s.name.size() > detail::memfs::name_max ? ENAMETOOLONG : 0;
  }

  InodePtr new_file(Filesystem& fs) const {
    InodePtr n = s_->make_inode(fs, kind::regular);
    n->nlink = 1;
    return n;
  }

  //! Give a new inode its name (not durable until the directory is fsynced).
  void link_new(Inode& parent, std::string_view name, InodePtr n) const {
    if (n->type == kind::directory) ++parent.nlink;
    detail::memfs::set_entry(parent, name, std::move(n));
    detail::memfs::touch(parent, s_->now());
  }

  //! Take back a file just made (an unlink after a failed ftruncate).
  void unlink_new(Inode& parent, std::string_view name, Inode& n) const {
    detail::memfs::erase_entry(parent, name);
    n.nlink = 0;
    detail::memfs::touch(parent, s_->now());
  }

  //! What ftruncate(2) refuses: a negative size (EINVAL), growth past the
  //! filesystem's largest file (EFBIG).
  static int truncate_check(const Inode& n, std::uint64_t size) noexcept {
    if (size > detail::memfs::max_file_size) return EINVAL;
    if (size > n.file->size && size > n.fs->max_file_size) return EFBIG;
    return 0;
  }

  //! Write bytes, ENOSPC (and no change) when new blocks do not fit. A write
  //! past the end grows the file first, as the kernel does (see `grow`).
  int write_file_bytes(Inode& n, std::uint64_t offset, const char* data, std::uint64_t len) const {
    auto& f = *n.file;
    std::uint64_t need = 0;
    if (offset > f.size) grow(n, offset, true, need);
    need += detail::memfs::new_bytes(detail::memfs::plan_write(f.edit(), offset, len));
    if (need > n.fs->free_bytes()) return ENOSPC;
    if (offset > f.size) grow(n, offset, false, need);
    auto& list = f.edit();
    const auto runs = detail::memfs::plan_write(list, offset, len);
    detail::memfs::write_bytes(list, offset, data, len, runs, s_->allocator(*n.fs));
    f.size = std::max(f.size, offset + len);
    f.dirty = true;
    detail::memfs::touch(n, s_->now());
    return 0;
  }

  //! Write zeros over bytes [a, b) of one block: only where it holds data,
  //! or (`allocate`) into a new block where it is a hole. A shared block is
  //! copied first, as any write copies it.
  int zero_partial(Inode& n, std::uint64_t a, std::uint64_t b, bool check_only, std::uint64_t& need,
                   bool allocate = false) const {
    auto& f = *n.file;
    if (a >= b) return 0;
    if (!allocate && !detail::memfs::is_mapped(f.view(), detail::memfs::block_down(a), detail::memfs::block_up(b)))
      return 0;
    auto& list = f.edit();
    const auto runs = detail::memfs::plan_write(list, a, b - a);
    if (check_only) {
      need += detail::memfs::new_bytes(runs);
      return 0;
    }
    static const char zeros[detail::memfs::block_size] = {};
    detail::memfs::write_bytes(list, a, zeros, b - a, runs, s_->allocator(*n.fs));
    return 0;
  }

  //! The file grows from inside a block to `size`: the filesystem writes
  //! zeros past the old end of that block. btrfs writes the whole block
  //! anew, allocating it even where it was a hole (btrfs_truncate_block);
  //! XFS and ext4 zero it only where it holds data (iomap_zero_range), which
  //! copies a block shared with a clone. Then the size.
  void grow(Inode& n, std::uint64_t size, bool check_only, std::uint64_t& need) const {
    auto& f = *n.file;
    const std::uint64_t old = f.size;
    if (size <= old) return;
    if (old % detail::memfs::block_size != 0)
      zero_partial(n, old, detail::memfs::block_up(old), check_only, need, n.fs->quirks == fs_quirks::btrfs);
    if (!check_only) f.size = size;
  }

  //! ftruncate: drop the blocks past the new end. The block the new end
  //! cuts keeps its bytes past the end on btrfs (and stays shared with a
  //! clone); XFS and ext4 zero them, even for the size the file has. A
  //! growth: see `grow`.
  int set_size(Inode& n, std::uint64_t size) const {
    auto& f = *n.file;
    std::uint64_t need = 0;
    if (size > f.size) {
      grow(n, size, true, need);
      if (need > n.fs->free_bytes()) return ENOSPC;
      grow(n, size, false, need);
      return 0;
    }
    if (size <= f.size) {
      const bool zero = n.fs->quirks != fs_quirks::btrfs;
      const std::uint64_t tail_end = detail::memfs::block_up(size);
      if (zero) zero_partial(n, size, tail_end, true, need);
      if (need > n.fs->free_bytes()) return ENOSPC;
      if (f.extents) detail::memfs::cut_from(f.edit(), detail::memfs::block_up(size));
      if (zero) zero_partial(n, size, tail_end, false, need);
    }
    f.size = size;
    return 0;
  }

  //! Whether btrfs finds [off, off + len) inside one hole and returns at
  //! once, the times unchanged (btrfs_punch_hole, find_first_non_hole). It
  //! looks up the extent map at the range's first block: inside the file a
  //! hole is mapped whole, up to the next data or the end of file (btrfs
  //! maps it so as the file grows over it); past the end of file the map is
  //! as long as the length rounded up to a block. A range that ends past
  //! that map goes on, and moves the times even where nothing is punched.
  //! (btrfs caches those maps: a hole it never mapped whole, as in a clone,
  //! can be smaller; the mock takes the common case.)
  static bool in_first_hole(const detail::memfs::FileData& f, std::uint64_t off, std::uint64_t len) noexcept {
    using detail::memfs::block_down;
    using detail::memfs::block_up;
    const detail::memfs::ExtentList& v = f.view();
    const std::uint64_t a = block_down(off);
    const std::size_t i = detail::memfs::first_ending_after(v, a);
    if (i < v.size() && v[i].logical <= a) return false;  // data at the first block
    const std::uint64_t next = i < v.size() ? v[i].logical : UINT64_MAX;
    const std::uint64_t eof = block_up(f.size);
    const std::uint64_t map_end = a < eof ? std::min(next, eof) : std::min(next, a + block_up(len));
    return map_end >= off + len;
  }

  //! fallocate(PUNCH_HOLE | KEEP_SIZE) of [off, end): blocks wholly inside
  //! go, partial ones are zeroed and stay allocated (as on XFS and btrfs).
  //! btrfs zeroes up to the end of the last block, past the end of file.
  int punch(Inode& n, std::uint64_t off, std::uint64_t end) const {
    auto& f = *n.file;
    using detail::memfs::block_down;
    using detail::memfs::block_up;
    const std::uint64_t zero_end = n.fs->quirks == fs_quirks::btrfs ? block_up(f.size) : f.size;
    if (off >= zero_end) return 0;
    const std::uint64_t full_a = block_up(off);
    const std::uint64_t full_b = block_down(end);
    // The partial blocks at either end, clipped to the file.
    std::uint64_t head_a = off, head_b = std::min({end, full_a, zero_end});
    std::uint64_t tail_a = std::max(off, full_b), tail_b = std::min(end, zero_end);
    if (full_a > full_b) tail_a = tail_b;  // one block: the head covers it
    if (head_a >= head_b) head_a = head_b;
    std::uint64_t need = 0;
    zero_partial(n, head_a, head_b, true, need);
    zero_partial(n, tail_a, tail_b, true, need);
    if (need > n.fs->free_bytes()) return ENOSPC;
    if (full_a < full_b && f.extents) detail::memfs::splice(f.edit(), full_a, full_b, {});
    zero_partial(n, head_a, head_b, false, need);
    zero_partial(n, tail_a, tail_b, false, need);
    return 0;
  }

  //! Tells a copy's progress callback, as LinuxFsOps does: after each piece,
  //! and once at the end unless the last report already said it all. A
  //! callback that throws stops the copy like one that returns false.
  class ProgressMeter {
  public:
    ProgressMeter(const progress_callback& callback, std::uint64_t total) : callback_(callback), total_(total) {}
    bool advance(std::uint64_t n) {
      done_ += n;
      return report();
    }
    bool finish() { return reported_ && last_ == done_ ? true : report(); }
    std::uint64_t done() const noexcept { return done_; }

  private:
    bool report() {
      if (!callback_) return true;
      reported_ = true;
      last_ = done_;
      try {
        return callback_(done_, total_);
      } catch (...) {
        return false;
      }
    }
    const progress_callback& callback_;
    std::uint64_t total_;
    std::uint64_t done_ = 0;
    std::uint64_t last_ = 0;
    bool reported_ = false;
  };

  //! The copy, as LinuxFsOps makes it: the source opened, the destination
  //! created (exclusive), then FICLONE and an ftruncate to the final size;
  //! or the ftruncate, then copy_file_range per data segment (on btrfs and
  //! XFS a remap of whole blocks, the cut tail of a segment copied), or the
  //! buffered copy. The new file gets its name only once complete; a
  //! failure or cancel leaves none, but its directory's times moved (the
  //! file was made and removed again).
  result<copy_result> do_copy(const Call& c, const dir_handle& src_dir, const path& src, const dir_handle& dst_dir,
                              const path& dst, const copy_options& opts) const {
    using namespace detail::memfs;
    InodePtr sn;
    if (int err = open_node(src_dir, src, sn)) return fail(c, err);
    if (sn->type == kind::directory) return fail(c, EISDIR);
    Slot d;
    if (int err = locate(dst_dir, dst, d)) return fail(c, err);
    if (int err = may_create(d)) return fail(c, err);
    Inode& parent = *d.parent;
    const auto failed = [&](int err) {
      touch(parent, s_->now());
      return fail(c, err);
    };
    const auto cancelled = [&] {
      touch(parent, s_->now());
      return failure(errc::cancelled, c.what());
    };
    Filesystem& dfs = *parent.fs;
    const bool same_fs = sn->fs == &dfs;
    const FileData& sf = *sn->file;
    const std::uint64_t src_size = sf.size;
    const std::uint64_t final_size = opts.size ? *opts.size : src_size;
    const std::uint64_t limit = std::min(final_size, src_size);  // copy only what fits
    InodePtr n = new_file(dfs);
    FileData& nf = *n->file;
    copy_result out;

    if (limit > 0 && opts.try_clone && !dst_dir.no_reflinks_->load()) {
      // FICLONE: EXDEV between two filesystems comes before EOPNOTSUPP.
      const int err = !same_fs ? EXDEV : !dfs.reflink ? EOPNOTSUPP : 0;
      if (err == 0) {
        // The whole file, counted from its extents below the final size.
        nf.set_extents(sf.extents);
        nf.size = src_size;
        std::uint64_t total = 0;
        for (const Extent& e : sf.view()) {
          if (e.logical >= limit) break;
          total += std::min(limit, e.end()) - e.logical;
        }
        ProgressMeter meter(opts.progress, total);
        if (!meter.advance(total)) return cancelled();
        if (final_size != src_size) {
          if (int e = truncate_check(*n, final_size)) return failed(e);
          if (int e = set_size(*n, final_size)) return failed(e);
        }
        if (!meter.finish()) return cancelled();
        out.method = copy_method::clone;
        out.bytes = total;
      } else if (err == EOPNOTSUPP) {
        if (!dst_dir.no_reflinks_->exchange(true)) out.reflink_unsupported_noticed = true;
      }
    }
    if (out.method == copy_method::none) {
      const std::vector<Segment> segs = data_segments(sf.view(), limit);
      std::uint64_t total = 0;
      for (const Segment& s : segs) total += s.end - s.begin;
      ProgressMeter meter(opts.progress, total);
      // The final size before any data (a hole at the end if larger).
      if (int e = truncate_check(*n, final_size)) return failed(e);
      nf.size = final_size;
      // Copy [a, b) of the source into new blocks of the new file.
      std::uint64_t need = 0;
      const auto copy_bytes = [&](std::uint64_t a, std::uint64_t b) {
        auto chunk = s_->allocator(dfs).make(block_up(b - a));
        read_bytes(sf.view(), a, chunk->data(), static_cast<std::size_t>(b - a));
        std::memset(chunk->data() + (b - a), 0, static_cast<std::size_t>(block_up(b - a) - (b - a)));
        splice(nf.edit(), a, block_up(b), {Extent{a, block_up(b - a), 0, std::move(chunk)}});
      };
      // Share [a, b) (block-aligned, or to the source's last block).
      const auto share_blocks = [&](std::uint64_t a, std::uint64_t b) {
        ExtentList pieces;
        for (const Extent& e : sf.view()) {
          if (e.end() <= a) continue;
          if (e.logical >= b) break;
          Extent p = e;
          if (p.logical < a) {
            p.offset += a - p.logical;
            p.length -= a - p.logical;
            p.logical = a;
          }
          if (p.end() > b) p.length = b - p.logical;
          pieces.push_back(std::move(p));
        }
        splice(nf.edit(), a, b, std::move(pieces));
      };
      const bool remap = same_fs && dfs.reflink;
      if (limit > 0 && opts.try_copy_file_range && (same_fs || segs.empty())) {
        // copy_file_range, a call per piece of up to copy_chunk bytes. A remap
        // clones whole blocks, and the source's partial last block only into
        // the destination's last block (never inside its end of file); it
        // comes back short before a tail it cannot clone, which the next
        // call copies.
        for (const Segment& s : segs) need += remap ? 0 : block_up(s.end) - s.begin;
        if (need > dfs.free_bytes()) return failed(ENOSPC);
        for (const Segment& s : segs) {
          for (std::uint64_t pos = s.begin; pos < s.end;) {
            const std::uint64_t want = std::min<std::uint64_t>(copy_chunk, s.end - pos);
            std::uint64_t got = want;
            if (!remap) {
              copy_bytes(pos, pos + want);
            } else if (pos + want == src_size && final_size == src_size) {
              share_blocks(pos, block_up(src_size));
            } else if (block_down(want) > 0) {
              got = block_down(want);
              share_blocks(pos, pos + got);
            } else {
              copy_bytes(pos, pos + want);
            }
            pos += got;
            if (!meter.advance(got)) return cancelled();
          }
        }
        out.method = copy_method::copy_file_range;
      }
      if (limit > 0 && out.method == copy_method::none) {
        for (const Segment& s : segs) need += block_up(s.end) - s.begin;
        if (need > dfs.free_bytes()) return failed(ENOSPC);
        for (const Segment& s : segs)
          for (std::uint64_t pos = s.begin; pos < s.end;) {
            const std::uint64_t len = std::min<std::uint64_t>(copy_chunk, s.end - pos);
            copy_bytes(pos, pos + len);
            pos += len;
            if (!meter.advance(len)) return cancelled();
          }
        out.method = copy_method::sparse_copy;
      }
      if (!meter.finish()) return cancelled();
      out.bytes = meter.done();
    }
    nf.dirty = true;
    n->mtime = n->ctime = dfs.clamp(s_->now());
    link_new(parent, d.name, std::move(n));
    return out;
  }

  std::shared_ptr<State> s_;
};

static_assert(file_reflink::is_fs_ops_v<MemoryFsOps>);

}  // namespace file_reflink

// Separately compiled: see <file_reflink/detail/extern_templates.hpp>.
#if defined(FILE_REFLINK_SEPARATE_COMPILATION)
#define FILE_REFLINK_DETAIL_HAVE_MEMORY_FS_OPS
#include <file_reflink/detail/extern_templates.hpp>
#endif
