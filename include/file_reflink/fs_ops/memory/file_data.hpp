// SPDX-License-Identifier: BSL-1.0
//! \file
//! MemoryFsOps internals: new and removed names, file sizes, writes, holes
//! and the copy (clone, copy_file_range or sparse copy, as LinuxFsOps makes
//! it), defined after the class in `memory.hpp`, which includes this file
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

inline result<copy_result> MemoryFsOps::do_copy(const Call& c, const dir_handle& src_dir, const path& src, const dir_handle& dst_dir,
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
      detail::progress_meter meter(opts.progress, total);
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
    detail::progress_meter meter(opts.progress, total);
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

}  // namespace file_reflink
