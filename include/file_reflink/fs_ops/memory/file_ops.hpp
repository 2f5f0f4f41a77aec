// SPDX-License-Identifier: BSL-1.0
//! \file
//! MemoryFsOps: the contract's operations on directories, files, their
//! data and extents, defined after the class in `memory.hpp`, which
//! includes this file at its end.
#pragma once

#include <file_reflink/fs_ops/memory.hpp>

namespace file_reflink {

inline result<opened_dir<MemoryFsOps::dir_handle>> MemoryFsOps::open_dir(const path& abs, bool create) const noexcept {
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

inline result<file_stat> MemoryFsOps::stat_path(const path& abs) const noexcept {
  const Call c(fs_op::stat_path, "stat_path", &abs);
  return run<file_stat>(c, [&]() -> result<file_stat> {
    auto r = s_->resolve_absolute(abs.native(), true, detail::memfs::mkdir_durability::none);
    if (r.err) return fail(c, r.err);
    return make_stat(*r.node);
  });
}

inline result<void> MemoryFsOps::remove_dir(const path& abs) const noexcept {
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

inline result<void> MemoryFsOps::mkdir(const dir_handle& h, const path& rel) const noexcept {
  const Call c(fs_op::mkdir, "mkdir", &h, &rel);
  return run<void>(c, [&]() -> result<void> {
    Slot s;
    if (int err = find_slot(h, rel, s)) return fail(c, err);
    if (int err = may_create(s)) return fail(c, err);
    s_->make_dir_in(*s.parent, s.name);
    return success();
  });
}

inline result<void> MemoryFsOps::rmdir(const dir_handle& h, const path& rel) const noexcept {
  const Call c(fs_op::rmdir, "rmdir", &h, &rel);
  return run<void>(c, [&]() -> result<void> {
    Slot s;
    if (int err = find_slot(h, rel, s)) return fail(c, err);
    if (int err = remove_directory(*s.parent, s.name, s.node)) return fail(c, err);
    return success();
  });
}

inline result<void> MemoryFsOps::create(const dir_handle& h, const path& rel, std::uint64_t size, create_mode mode) const noexcept {
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

inline result<std::size_t> MemoryFsOps::read(const dir_handle& h, const path& rel, std::uint64_t offset, void* buf,
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

inline result<void> MemoryFsOps::write(const dir_handle& h, const path& rel, std::uint64_t offset, const void* data,
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

inline result<void> MemoryFsOps::resize(const dir_handle& h, const path& rel, std::uint64_t size) const noexcept {
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

inline result<void> MemoryFsOps::punch_hole(const dir_handle& h, const path& rel, std::uint64_t offset, std::uint64_t len) const noexcept {
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

inline result<void> MemoryFsOps::fsync(const dir_handle& h, const path& rel) const noexcept {
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

inline result<file_stat> MemoryFsOps::stat(const dir_handle& h, const path& rel) const noexcept {
  const Call c(fs_op::stat, "stat", &h, &rel);
  return run<file_stat>(c, [&]() -> result<file_stat> {
    Slot s;
    if (int err = locate(h, rel, s)) return fail(c, err);
    if (!s.node) return fail(c, detail::memfs::missing(*s.parent, s.name));
    return make_stat(*detail::memfs::through_mounts(s.node));
  });
}

inline result<void> MemoryFsOps::set_mtime(const dir_handle& h, const path& rel, file_time mtime) const noexcept {
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

inline result<std::vector<dir_entry>> MemoryFsOps::list(const dir_handle& h, const path& rel) const noexcept {
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

inline result<fs_space> MemoryFsOps::statvfs(const dir_handle& h) const noexcept {
  const Call c(fs_op::statvfs, "statvfs", &h, nullptr);
  return run<fs_space>(c, [&]() -> result<fs_space> {
    if (!h.dir_) return fail(c, EBADF);
    fs_space sp;
    sp.size = h.fs_->capacity;
    sp.free = sp.available = h.fs_->free_bytes();
    return sp;
  });
}

inline result<std::vector<extent>> MemoryFsOps::extents(const dir_handle& h, const path& rel) const noexcept {
  return data_extents(Call(fs_op::extents, "extents", &h, &rel), h, rel, true);
}

inline result<std::vector<extent>> MemoryFsOps::storage_extents(const dir_handle& h, const path& rel) const noexcept {
  return data_extents(Call(fs_op::storage_extents, "storage_extents", &h, &rel), h, rel, false);
}

inline result<std::vector<extent>> MemoryFsOps::data_extents(const Call& c, const dir_handle& h, const path& rel,
                                                            bool shared_flags) const noexcept {
  return run<std::vector<extent>>(c, [&]() -> result<std::vector<extent>> {
    InodePtr n;
    if (int err = open_node(h, rel, n)) return fail(c, err);
    if (n->type == kind::directory) {
      if (n->fs->quirks != fs_quirks::ext4) return fail(c, EOPNOTSUPP);
      // One block of entries, somewhere no file's data is.
      return std::vector<extent>{extent{0, (std::uint64_t(1) << 62) + n->ino * detail::memfs::block_size,
                                        detail::memfs::block_size, false}};
    }
    return detail::memfs::report_extents(
        n->file->view(), shared_flags ? s_->other_live_files(*n->fs, n.get()) : std::vector<const detail::memfs::ExtentList*>());
  });
}

inline result<std::vector<segment>> MemoryFsOps::data_segments(const dir_handle& h, const path& rel,
                                                               std::uint64_t limit) const noexcept {
  const Call c(fs_op::data_segments, "data_segments", &h, &rel);
  return run<std::vector<segment>>(c, [&]() -> result<std::vector<segment>> {
    InodePtr n;
    if (int err = open_file(h, rel, n)) return fail(c, err);
    std::vector<segment> out;
    for (const auto& s : detail::memfs::data_segments(n->file->view(), std::min(limit, n->file->size)))
      out.push_back(segment{s.begin, s.end - s.begin});
    return out;
  });
}

inline result<void> MemoryFsOps::clone(const dir_handle& src_dir, const path& src, const dir_handle& dst_dir,
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

inline result<std::uint64_t> MemoryFsOps::copy_range(const dir_handle& src_dir, const path& src, const dir_handle& dst_dir,
                                                     const path& dst, std::uint64_t offset, std::uint64_t len) const noexcept {
  const Call c(fs_op::copy_range, "copy_range", &src_dir, &src, &dst_dir, &dst);
  return run<std::uint64_t>(c, [&]() -> result<std::uint64_t> {
    InodePtr sn, dn;
    if (int err = open_node(src_dir, src, sn)) return fail(c, err);
    if (int err = open_file(dst_dir, dst, dn)) return fail(c, err);
    if (sn->type == kind::directory) return fail(c, EISDIR);
    if (sn->fs != dn->fs) return fail(c, EXDEV);  // as since Linux 5.19
    if (sn == dn) return fail(c, EINVAL);
    if (offset > detail::memfs::max_file_size || len > detail::memfs::max_file_size - offset) return fail(c, EINVAL);
    const std::uint64_t src_size = sn->file->size;
    if (offset >= src_size || len == 0) return std::uint64_t{0};
    const std::uint64_t want = std::min(len, src_size - offset);
    if (offset + want > dn->fs->max_file_size) return fail(c, EFBIG);
    // btrfs and XFS remap whole blocks first; what is left (a cut tail) is
    // copied, as the kernel's splice fallback does on ext4 for all of it.
    std::uint64_t got = dn->fs->reflink ? remap_range(*dn, *sn, offset, want) : 0;
    if (got == 0) {
      std::vector<char> buffer(static_cast<std::size_t>(want));
      detail::memfs::read_bytes(sn->file->view(), offset, buffer.data(), buffer.size());
      if (int err = write_file_bytes(*dn, offset, buffer.data(), want)) return fail(c, err);
      got = want;
    }
    dn->file->dirty = true;
    detail::memfs::touch(*dn, s_->now());
    return got;
  });
}

inline result<void> MemoryFsOps::advise_willneed(const dir_handle& h, const path& rel, std::uint64_t offset,
                                                 std::uint64_t len) const noexcept {
  const Call c(fs_op::advise_willneed, "advise_willneed", &h, &rel);
  return run<void>(c, [&]() -> result<void> {
    (void)len;  // any length: the kernel stops at the file's end
    if (offset > detail::memfs::max_file_size) return fail(c, EINVAL);
    InodePtr n;
    if (int err = open_file(h, rel, n)) return fail(c, err);
    return success();
  });
}

inline result<unsigned> MemoryFsOps::notify_resize(const dir_handle& h, const path& rel) const noexcept {
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

}  // namespace file_reflink
