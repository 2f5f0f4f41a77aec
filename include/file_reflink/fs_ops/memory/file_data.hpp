// SPDX-License-Identifier: BSL-1.0
//! \file
//! MemoryFsOps internals: new and removed names, file sizes, writes, holes
//! and the remap of a range copy, defined after the class in `memory.hpp`, which includes this file
//! at its end.
#pragma once

#include <file_reflink/fs_ops/memory.hpp>

namespace file_reflink {

inline int MemoryFsOps::remove_directory(Inode& parent, std::string_view name, const InodePtr& node) const {
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

inline MemoryFsOps::InodePtr MemoryFsOps::new_file(Filesystem& fs) const {
  InodePtr n = s_->make_inode(fs, kind::regular);
  n->nlink = 1;
  return n;
}

inline void MemoryFsOps::link_new(Inode& parent, std::string_view name, InodePtr n) const {
  if (n->type == kind::directory) ++parent.nlink;
  detail::memfs::set_entry(parent, name, std::move(n));
  detail::memfs::touch(parent, s_->now());
}

inline void MemoryFsOps::unlink_new(Inode& parent, std::string_view name, Inode& n) const {
  detail::memfs::erase_entry(parent, name);
  n.nlink = 0;
  detail::memfs::touch(parent, s_->now());
}

inline int MemoryFsOps::write_file_bytes(Inode& n, std::uint64_t offset, const char* data, std::uint64_t len) const {
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

inline void MemoryFsOps::grow(Inode& n, std::uint64_t size, bool check_only, std::uint64_t& need) const {
  auto& f = *n.file;
  const std::uint64_t old = f.size;
  if (size <= old) return;
  if (old % detail::memfs::block_size != 0)
    zero_partial(n, old, detail::memfs::block_up(old), check_only, need, n.fs->quirks == fs_quirks::btrfs);
  if (!check_only) f.size = size;
}

inline int MemoryFsOps::set_size(Inode& n, std::uint64_t size) const {
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

inline bool MemoryFsOps::in_first_hole(const detail::memfs::FileData& f, std::uint64_t off, std::uint64_t len) noexcept {
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

inline int MemoryFsOps::punch(Inode& n, std::uint64_t off, std::uint64_t end) const {
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

inline std::uint64_t MemoryFsOps::remap_range(Inode& dn, const Inode& sn, std::uint64_t off, std::uint64_t len) const {
  using namespace detail::memfs;
  const FileData& sf = *sn.file;
  FileData& df = *dn.file;
  const std::uint64_t src_size = sf.size;
  // Whole blocks; the source's partial last block only into the
  // destination's last block (never inside its end of file).
  std::uint64_t got = 0, to = 0;
  if (off % block_size != 0) return 0;
  if (off + len == src_size && df.size == src_size) {
    got = len;
    to = block_up(src_size);
  } else {
    got = block_down(len);
    to = off + got;
  }
  if (got == 0) return 0;
  ExtentList pieces;
  for (const Extent& e : sf.view()) {
    if (e.end() <= off) continue;
    if (e.logical >= to) break;
    Extent p = e;
    if (p.logical < off) {
      p.offset += off - p.logical;
      p.length -= off - p.logical;
      p.logical = off;
    }
    if (p.end() > to) p.length = to - p.logical;
    pieces.push_back(std::move(p));
  }
  splice(df.edit(), off, to, std::move(pieces));
  df.size = std::max(df.size, off + got);
  return got;
}

}  // namespace file_reflink
