// SPDX-License-Identifier: BSL-1.0
//! \file
//! The inodes behind `MemoryFsOps`: directories, files, filesystems and
//! loop devices, the durable (worst case after a power loss) view of every
//! directory and file, and the rules for names and paths.
#pragma once

#include <file_reflink/detail/path_rules.hpp>
#include <file_reflink/detail/memory_extents.hpp>
#include <file_reflink/detail/memory_types.hpp>
#include <file_reflink/fs_types.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <set>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

namespace file_reflink {
namespace detail {
namespace memfs {

enum class kind : std::uint8_t { regular, directory, symlink };

struct Filesystem;
struct Inode;
using InodePtr = std::shared_ptr<Inode>;
//! Names to inodes; `std::less<>` so a `string_view` finds a name without a copy.
using Entries = std::map<std::string, InodePtr, std::less<>>;

//! A directory: its live entries, and for each name changed since the last
//! fsync what that name durably was (null: durably absent). Keeping only the
//! changes makes fsync and crash cost the changes, not the directory's size.
struct DirData {
  Entries entries;
  Entries undo;
  std::shared_ptr<Filesystem> mounted;  //!< a filesystem mounted over this directory
};

inline const ExtentList& empty_extents() noexcept {
  static const ExtentList none;
  return none;
}

//! A regular file: live content, and the content an fsync last made durable.
//! Extent lists are shared copy-on-write between clones and the durable
//! state, so a clone or an fsync costs a pointer copy; the first change
//! after one copies the list (never the data).
struct FileData {
  std::uint64_t size = 0;
  std::shared_ptr<ExtentList> extents;  //!< null: no data
  std::uint64_t durable_size = 0;
  std::shared_ptr<ExtentList> durable_extents;
  file_time durable_mtime;
  file_time durable_ctime;
  bool dirty = false;  //!< live differs from durable
  mutable bool allocated_known = false;  //!< `allocated_cache` is that of the live list
  mutable std::uint64_t allocated_cache = 0;

  const ExtentList& view() const noexcept { return extents ? *extents : empty_extents(); }

  //! What the live list occupies (`st_blocks * 512`), added up once per
  //! version of the list: every stat of a 200-extent image would walk it.
  std::uint64_t allocated() const noexcept {
    if (!allocated_known) allocated_cache = allocated_bytes(view());
    allocated_known = true;
    return allocated_cache;
  }

  //! Replace the live list (a clone, a truncation to nothing, a crash).
  void set_extents(std::shared_ptr<ExtentList> list) noexcept {
    extents = std::move(list);
    allocated_known = false;
  }

  //! The live list, made this file's own first. Call it before planning a
  //! write: only then does a chunk's use count tell who else holds it.
  ExtentList& edit() {
    allocated_known = false;  // the caller is about to change it
    if (!extents)
      extents = std::make_shared<ExtentList>();
    else if (extents.use_count() > 1)
      extents = std::make_shared<ExtentList>(*extents);
    return *extents;
  }
};

struct Inode {
  Inode(kind k, Filesystem* owner, std::uint64_t number, file_time now)
      : type(k), fs(owner), ino(number), mtime(now), ctime(now) {
    if (k == kind::directory) dir = std::make_unique<DirData>();
    if (k == kind::regular) {
      file = std::make_unique<FileData>();
      file->durable_mtime = now;
      file->durable_ctime = now;
    }
  }
  kind type;
  std::uint32_t nlink = 0;
  Filesystem* fs;  //!< every holder of an inode also holds its filesystem
  std::uint64_t ino;
  file_time mtime;
  file_time ctime;
  std::unique_ptr<DirData> dir;
  std::unique_ptr<FileData> file;
  std::unique_ptr<std::string> link;  //!< a symlink's target (kept apart: images are most inodes)

  //! A symlink's target ("" for anything else).
  const std::string& target() const noexcept {
    static const std::string none;
    return link ? *link : none;
  }
};

//! One mounted (or lazily unmounted) filesystem. `used` is declared first so
//! it outlives the tree below `root`, whose chunks uncharge it as they go.
struct Filesystem : std::enable_shared_from_this<Filesystem> {
  std::atomic<std::uint64_t> used{0};
  std::uint64_t dev = 0;
  std::uint64_t capacity = 0;
  std::uint64_t next_ino = 256;
  bool reflink = true;
  std::uint64_t max_file_size = 0;
  std::int64_t time_min = INT64_MIN;
  std::int64_t time_max = INT64_MAX;
  fs_quirks quirks = fs_quirks::xfs;
  InodePtr root;

  //! A timestamp as this filesystem stores it (the kernel's `timestamp_truncate`).
  file_time clamp(file_time t) const noexcept {
    if (t.sec <= time_min) return file_time{time_min, 0};
    if (t.sec >= time_max) return file_time{time_max, 0};
    return t;
  }

  std::uint64_t free_bytes() const noexcept {
    const std::uint64_t u = used.load(std::memory_order_relaxed);
    return u >= capacity ? 0 : capacity - u;
  }
};

inline void touch(Inode& n, file_time now) noexcept {
  n.mtime = n.fs->clamp(now);
  n.ctime = std::max(n.mtime, n.ctime.next());
}
inline void touch_ctime(Inode& n, file_time now) noexcept { n.ctime = std::max(n.fs->clamp(now), n.ctime.next()); }

//! A simulated loop device: it holds its backing inode, like the kernel's.
struct LoopDevice {
  std::shared_ptr<Filesystem> fs;
  InodePtr inode;
  std::uint64_t capacity = 0;
};

inline file_time real_now() noexcept {
  using namespace std::chrono;
  return file_time::from_ns(duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count());
}

//! The modification and change time after a change: ctime also moves on by
//! at least a nanosecond, so (dev, ino, ctime) stays a valid cache key even
//! with a frozen clock.
inline void touch(Inode& n, file_time now) noexcept;
inline void touch_ctime(Inode& n, file_time now) noexcept;

//! Follow mounts stacked on a directory to the topmost filesystem's root.
inline InodePtr through_mounts(InodePtr n) {
  while (n->type == kind::directory && n->dir->mounted) n = n->dir->mounted->root;
  return n;
}

//! Remember what `name` durably is before its first change since the last fsync.
inline void remember(DirData& d, std::string_view name) {
  if (d.undo.find(name) != d.undo.end()) return;
  auto it = d.entries.find(name);
  d.undo.emplace(std::string(name), it == d.entries.end() ? nullptr : it->second);
}

//! Make one name's live entry durable (a targeted fsync, for test setup).
inline void make_entry_durable(DirData& d, std::string_view name) {
  auto it = d.undo.find(name);
  if (it != d.undo.end()) d.undo.erase(it);
}

inline void set_entry(Inode& dir, std::string_view name, InodePtr node) {
  remember(*dir.dir, name);
  auto it = dir.dir->entries.find(name);
  if (it != dir.dir->entries.end())
    it->second = std::move(node);
  else
    dir.dir->entries.emplace(std::string(name), std::move(node));
}

inline void erase_entry(Inode& dir, std::string_view name) {
  remember(*dir.dir, name);
  auto it = dir.dir->entries.find(name);
  if (it != dir.dir->entries.end()) dir.dir->entries.erase(it);
}

//! fsync of a directory: its durable entries become its live ones.
inline void fsync_dir(Inode& dir) noexcept { dir.dir->undo.clear(); }

//! fsync of a file: its durable content becomes its live content.
inline void fsync_file(Inode& f) {
  FileData& d = *f.file;
  if (!d.dirty) return;
  d.durable_extents = d.extents;
  d.durable_size = d.size;
  d.durable_mtime = f.mtime;
  d.durable_ctime = f.ctime;
  d.dirty = false;
}

//! The non-empty components of a relative path.
inline void split_components(std::string_view p, std::vector<std::string_view>& out) {
  std::size_t i = 0;
  while (i < p.size()) {
    std::size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    if (j > i) out.push_back(p.substr(i, j - i));
    i = j + 1;
  }
}

//! Whether `rel` is made of plain names only ("vm/work/private.img": no
//! empty, "." or ".." part, not absolute).
inline bool plain_path(std::string_view rel) noexcept {
  if (rel.empty() || rel.front() == '/') return false;
  std::size_t i = 0;
  for (;;) {
    const std::size_t j = rel.find('/', i);
    const std::string_view part = rel.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i);
    if (part.empty() || part == "." || part == "..") return false;
    if (j == std::string_view::npos) return true;
    i = j + 1;
  }
}

//! The longest name a directory holds and the longest path the kernel
//! takes in one string (with its NUL), as on Linux.
inline constexpr std::size_t name_max = 255;
inline constexpr std::size_t path_max = 4096;

//! A directory removed while something still holds it (as IS_DEADDIR).
inline bool dead(const Inode& dir) noexcept { return dir.nlink == 0; }

}  // namespace memfs
}  // namespace detail
}  // namespace file_reflink
