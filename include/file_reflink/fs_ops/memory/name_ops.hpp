// SPDX-License-Identifier: BSL-1.0
//! \file
//! MemoryFsOps: the operations that change names (rename, link, remove),
//! the reflink probe and the byte locks, defined after the class in
//! `memory.hpp`, which includes this file at its end.
#pragma once

#include <file_reflink/fs_ops/memory.hpp>

namespace file_reflink {

inline result<void> MemoryFsOps::rename(const dir_handle& h, const path& from, const path& to) const noexcept {
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

inline result<void> MemoryFsOps::link(const dir_handle& h, const path& from, const path& to) const noexcept {
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

inline result<void> MemoryFsOps::remove(const dir_handle& h, const path& rel) const noexcept {
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

inline result<bool> MemoryFsOps::probe_reflink(const dir_handle& h) const noexcept {
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

inline result<MemoryFsOps::lock_file> MemoryFsOps::open_lock(const dir_handle& h, const path& rel) const noexcept {
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
    f.abs_ = rel.empty() ? h.path_ : h.path_ / rel;
    return f;
  });
}

inline result<bool> MemoryFsOps::lock(const lock_file& f, std::uint64_t offset, lock_mode mode, bool wait) const noexcept {
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

inline result<void> MemoryFsOps::unlock(const lock_file& f, std::uint64_t offset) const noexcept {
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

}  // namespace file_reflink
