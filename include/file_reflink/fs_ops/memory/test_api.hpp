// SPDX-License-Identifier: BSL-1.0
//! \file
//! MemoryFsOps: the test API (mounts, crashes, faults, counts, files by
//! absolute path, loop devices, memory use), defined after the class in
//! `memory.hpp`, which includes this file at its end.
#pragma once

#include <file_reflink/fs_ops/memory.hpp>

namespace file_reflink {

inline result<void> MemoryFsOps::unmount(const path& abs_dir) const noexcept {
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

inline void MemoryFsOps::crash() const {
  std::lock_guard<std::recursive_mutex> lock(s_->mutex);
  s_->crash();
}

inline void MemoryFsOps::power_off_after(std::uint64_t n) const {
  std::lock_guard<std::recursive_mutex> lock(s_->mutex);
  s_->power_off_at = s_->seq + n;
}

inline bool MemoryFsOps::powered_off() const {
  std::lock_guard<std::recursive_mutex> lock(s_->mutex);
  return s_->powered_off();
}

inline std::uint64_t MemoryFsOps::call_count() const {
  std::lock_guard<std::recursive_mutex> lock(s_->mutex);
  return s_->calls;
}

inline std::uint64_t MemoryFsOps::op_count(fs_op op) const {
  std::lock_guard<std::recursive_mutex> lock(s_->mutex);
  return s_->op_calls[static_cast<std::size_t>(op)];
}

inline void MemoryFsOps::reset_counts() const {
  std::lock_guard<std::recursive_mutex> lock(s_->mutex);
  s_->calls = 0;
  s_->op_calls.fill(0);
}

inline void MemoryFsOps::fail_nth_call(std::uint64_t n, int err) const {
  std::lock_guard<std::recursive_mutex> lock(s_->mutex);
  s_->nth_faults.push_back({s_->seq + std::max<std::uint64_t>(n, 1), err});
}

inline void MemoryFsOps::clear_faults() const {
  std::lock_guard<std::recursive_mutex> lock(s_->mutex);
  s_->nth_faults.clear();
  s_->path_faults.clear();
}

inline void MemoryFsOps::set_call_observer(std::function<void(fs_op, const std::string&)> observer) const {
  std::lock_guard<std::recursive_mutex> lock(s_->mutex);
  s_->has_observer.store(static_cast<bool>(observer));
  s_->observer = observer ? std::make_shared<const detail::memfs::observer_fn>(std::move(observer)) : nullptr;
}

inline result<std::string> MemoryFsOps::read_file(const path& abs) const {
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

inline result<void> MemoryFsOps::symlink(const path& target, const path& abs_link) const {
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

inline result<file_stat> MemoryFsOps::lstat(const path& abs) const {
  return locked<file_stat>("lstat", abs, [&]() -> result<file_stat> {
    auto r = s_->resolve_absolute(abs.native(), false, detail::memfs::mkdir_durability::none);
    if (r.err) return api_fail("lstat", abs, r.err);
    return make_stat(*r.node);
  });
}

inline result<void> MemoryFsOps::truncate(const path& abs, std::uint64_t size) const {
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

inline bool MemoryFsOps::exists(const path& abs) const {
  std::lock_guard<std::recursive_mutex> lock(s_->mutex);
  return s_->resolve_absolute(abs.native(), false, detail::memfs::mkdir_durability::none).err == 0;
}

inline bool MemoryFsOps::shares_extent(const path& a, const path& b) const {
  std::lock_guard<std::recursive_mutex> lock(s_->mutex);
  auto ra = s_->resolve_absolute(a.native(), true, detail::memfs::mkdir_durability::none);
  auto rb = s_->resolve_absolute(b.native(), true, detail::memfs::mkdir_durability::none);
  if (ra.err || rb.err || ra.node->type != kind::regular || rb.node->type != kind::regular) return false;
  return detail::memfs::share_storage(ra.node->file->view(), rb.node->file->view());
}

inline file_time MemoryFsOps::now() const {
  std::lock_guard<std::recursive_mutex> lock(s_->mutex);
  return s_->now();
}

inline void MemoryFsOps::set_clock(std::function<file_time()> clock) const {
  std::lock_guard<std::recursive_mutex> lock(s_->mutex);
  s_->clock = std::move(clock);
}

inline result<int> MemoryFsOps::attach_loop(const path& abs_file) const {
  return locked<int>("attach_loop", abs_file, [&]() -> result<int> {
    auto r = s_->resolve_absolute(abs_file.native(), true, detail::memfs::mkdir_durability::none);
    if (r.err) return api_fail("attach_loop", abs_file, r.err);
    if (r.node->type != kind::regular) return api_fail("attach_loop", abs_file, EISDIR);
    const int id = s_->next_loop++;
    s_->loops[id] = detail::memfs::LoopDevice{r.node->fs->shared_from_this(), r.node, loop_size(*r.node)};
    return id;
  });
}

inline std::uint64_t MemoryFsOps::loop_capacity(int id) const {
  std::lock_guard<std::recursive_mutex> lock(s_->mutex);
  auto it = s_->loops.find(id);
  return it == s_->loops.end() ? 0 : it->second.capacity;
}

inline void MemoryFsOps::detach_loop(int id) const {
  std::lock_guard<std::recursive_mutex> lock(s_->mutex);
  s_->loops.erase(id);
}

inline std::size_t MemoryFsOps::memory_bytes() const {
  std::lock_guard<std::recursive_mutex> lock(s_->mutex);
  return s_->memory_bytes();
}

inline result<void> MemoryFsOps::mount(const path& abs_dir, mount_options opts) const noexcept {
  return locked<void>("mount", abs_dir, [&]() -> result<void> {
    auto r = s_->resolve_absolute(abs_dir.native(), true, detail::memfs::mkdir_durability::entry_only);
    if (r.err) return api_fail("mount", abs_dir, r.err);
    if (r.node->type != kind::directory) return api_fail("mount", abs_dir, ENOTDIR);
    r.node->dir->mounted = s_->make_fs(opts);
    return success();
  });
}

inline void MemoryFsOps::fail_calls(fs_op op, std::string path_substring, int err, int times) const {
  if (times == 0) return;
  std::lock_guard<std::recursive_mutex> lock(s_->mutex);
  s_->path_faults.push_back({op, std::move(path_substring), err, times});
}

inline result<void> MemoryFsOps::link(const path& abs_from, const path& abs_to) const {
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

inline result<void> MemoryFsOps::set_mtime(const path& abs, file_time mtime) const {
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

inline std::vector<std::string> MemoryFsOps::tree(const path& abs) const {
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

inline result<void> MemoryFsOps::write_file(const path& abs, std::string_view data, std::uint64_t offset,
                                            missing_file missing) const {
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

}  // namespace file_reflink
