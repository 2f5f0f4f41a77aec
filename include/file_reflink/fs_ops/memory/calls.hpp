// SPDX-License-Identifier: BSL-1.0
//! \file
//! MemoryFsOps internals: how a call is admitted (faults, power), resolved
//! (names beneath a handle, as LinuxFsOps resolves them) and reported (its
//! error, its stat), defined after the class in `memory.hpp`, which
//! includes this file at its end.
#pragma once

#include <file_reflink/fs_ops/memory.hpp>

namespace file_reflink {

template <class T, class F>
result<T> MemoryFsOps::run(const Call& c, F&& body) const noexcept {
  return detail::exception_boundary<result<T>>([&] { return c.what(); }, [&]() -> result<T> {
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
          // An observer's exception does not fail the call it watched.
        }
      }
    }
    std::lock_guard<std::recursive_mutex> lock(s_->mutex);
    if (int err = admit(c)) return fail(c, err);
    return body();
  });
}

template <class T, class F>
result<T> MemoryFsOps::locked(const char* what, const path& abs, F&& body) const noexcept {
  return detail::exception_boundary<result<T>>([&] { return std::string(what) + " '" + abs.string() + "'"; },
                                               [&]() -> result<T> {
                                                 std::lock_guard<std::recursive_mutex> lock(s_->mutex);
                                                 return body();
                                               });
}

inline MemoryFsOps::failure_t MemoryFsOps::fail(const Call& c, int err) {
  // The message is made only if somebody asks for it (see `error`).
  const std::error_code code(err, std::system_category());
  if (c.two()) return BOOST_OUTCOME_V2_NAMESPACE::failure(error::of_operation(code, c.word, c.first(), c.second()));
  return BOOST_OUTCOME_V2_NAMESPACE::failure(error::of_operation(code, c.word, c.first()));
}

inline int MemoryFsOps::admit(const Call& c) const {
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

inline MemoryFsOps::failure_t MemoryFsOps::api_fail(const char* what, const path& abs, int err) {
  return errno_failure(err, what, abs.string());
}

inline int MemoryFsOps::open_node(const dir_handle& h, const path& rel, InodePtr& out) {
  if (!h.dir_) return EBADF;
  return detail::memfs::open_beneath(h.dir_, rel.native(), out);
}

inline int MemoryFsOps::open_file(const dir_handle& h, const path& rel, InodePtr& out) {
  if (int err = open_node(h, rel, out)) return err;
  return out->type == kind::directory ? EISDIR : 0;
}

inline int MemoryFsOps::locate(const dir_handle& h, const path& rel, Slot& s) {
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

inline int MemoryFsOps::find_slot(const dir_handle& h, const path& rel, Slot& s) {
  if (int err = locate(h, rel, s)) return err;
  return s.name.empty() ? EINVAL : 0;
}

inline file_type MemoryFsOps::type_of(const Inode& n) noexcept {
  switch (n.type) {
    case kind::regular: return file_type::regular;
    case kind::directory: return file_type::directory;
    case kind::symlink: return file_type::symlink;
  }
  return file_type::other;
}

inline file_stat MemoryFsOps::make_stat(const Inode& n) {
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

inline bool MemoryFsOps::contains(const Inode& d, const Inode* target) {
  if (&d == target) return true;
  for (const auto& e : d.dir->entries)
    if (e.second->type == kind::directory && contains(*e.second, target)) return true;
  return false;
}

inline int MemoryFsOps::may_create(const Slot& s) noexcept {
  if (s.node) return EEXIST;
  if (detail::memfs::dead(*s.parent)) return ENOENT;
  return s.name.size() > detail::memfs::name_max ? ENAMETOOLONG : 0;
}

inline int MemoryFsOps::truncate_check(const Inode& n, std::uint64_t size) noexcept {
  if (size > detail::memfs::max_file_size) return EINVAL;
  if (size > n.file->size && size > n.fs->max_file_size) return EFBIG;
  return 0;
}

inline int MemoryFsOps::zero_partial(Inode& n, std::uint64_t a, std::uint64_t b, bool check_only, std::uint64_t& need,
                                     bool allocate) const {
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

}  // namespace file_reflink
