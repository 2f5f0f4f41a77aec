// SPDX-License-Identifier: BSL-1.0
//! \file
//! The state behind `MemoryFsOps`: inodes, filesystems and their mounts, the
//! durable (worst case after a power loss) view of every directory and file,
//! name resolution, and the bookkeeping of calls and injected faults.
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

//! Why `name` is not in `dir`, as the kernel's lookup says it: a removed
//! directory has no names (ENOENT), a name longer than NAME_MAX cannot
//! exist (ENAMETOOLONG), anything else is ENOENT.
inline int missing(const Inode& dir, std::string_view name) noexcept {
  if (dead(dir)) return ENOENT;
  return name.size() > name_max ? ENAMETOOLONG : ENOENT;
}

//! `locate_beneath` for a path of plain names, walked in place: no part
//! list, no stack, one reference taken at the end. -1 when `rel` is not
//! such a path (the general walk handles it).
inline int walk_plain(const InodePtr& base, std::string_view rel, InodePtr& dir, std::string_view& name) {
  if (!plain_path(rel)) return -1;
  // openat2 takes the directory part as one string: PATH_MAX counts it all.
  const std::size_t last_slash = rel.rfind('/');
  if (last_slash != std::string_view::npos && last_slash + 1 >= path_max) return ENAMETOOLONG;
  const InodePtr* cur = &base;
  std::size_t i = 0;
  for (;;) {
    const std::size_t j = rel.find('/', i);
    if (j == std::string_view::npos) {
      dir = *cur;
      name = rel.substr(i);
      return 0;
    }
    const Inode& d = **cur;
    const std::string_view part = rel.substr(i, j - i);
    auto it = d.dir->entries.find(part);
    if (it == d.dir->entries.end()) return missing(d, part);
    if (it->second->type == kind::symlink) return ELOOP;
    if (it->second->type != kind::directory) return ENOTDIR;
    cur = &it->second;
    while ((*cur)->type == kind::directory && (*cur)->dir->mounted) cur = &(*cur)->dir->mounted->root;
    i = j + 1;
  }
}

//! Resolve all of `rel` but its last name beneath `base`, as LinuxFsOps
//! does with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) on the text
//! before the last name: a directory part of PATH_MAX bytes or more is
//! ENAMETOOLONG, a symlink met on the way ELOOP, a name too long for a
//! directory ENAMETOOLONG where it is looked up. `name` is empty when `rel`
//! names a directory itself ("", "a/.."); then `dir` is that directory.
inline int locate_beneath(const InodePtr& base, std::string_view rel, InodePtr& dir, std::string_view& name) {
  if (!rel.empty() && rel.find('/') == std::string_view::npos && rel != "." && rel != "..") {
    dir = base;  // the common case, one plain name: nothing to walk
    name = rel;
    return 0;
  }
  if (int err = walk_plain(base, rel, dir, name); err != -1) return err;
  std::vector<std::string_view> parts;
  parts.reserve(8);
  if (int err = split_beneath(rel, parts)) return err;
  std::size_t n = parts.size();
  name = std::string_view();
  std::size_t dir_len = rel.size();
  if (n > 0 && parts.back() != "..") {
    name = parts[--n];
    dir_len = static_cast<std::size_t>(name.data() - rel.data());
  }
  if (n > 0 && dir_len >= path_max) return ENAMETOOLONG;
  std::vector<InodePtr> stack;
  stack.reserve(n + 1);
  stack.push_back(base);
  for (std::size_t k = 0; k < n; ++k) {
    if (parts[k] == "..") {
      stack.pop_back();  // split_beneath let no ".." climb above base
      continue;
    }
    const Inode& cur = *stack.back();
    auto it = cur.dir->entries.find(parts[k]);
    if (it == cur.dir->entries.end()) return missing(cur, parts[k]);
    if (it->second->type == kind::symlink) return ELOOP;
    if (it->second->type != kind::directory) return ENOTDIR;
    stack.push_back(through_mounts(it->second));
  }
  dir = std::move(stack.back());
  return 0;
}

//! Resolve all of `rel` beneath `base` for an operation that opens it
//! (O_NOFOLLOW): a symlink anywhere gives ELOOP; mounts are followed.
inline int open_beneath(const InodePtr& base, std::string_view rel, InodePtr& out) {
  InodePtr dir;
  std::string_view name;
  if (int err = locate_beneath(base, rel, dir, name)) return err;
  if (name.empty()) {
    out = std::move(dir);
    return 0;
  }
  auto it = dir->dir->entries.find(name);
  if (it == dir->dir->entries.end()) return missing(*dir, name);
  if (it->second->type == kind::symlink) return ELOOP;
  out = through_mounts(it->second);
  return 0;
}

//! What an absolute path names, symlinks followed as the kernel does.
struct AbsLookup {
  int err = 0;
  InodePtr node;        //!< what the path names (mounts followed), when found
  InodePtr entry;       //!< the last component's own inode (not through mounts)
  InodePtr parent;      //!< the directory holding the last component
  std::string name;     //!< the last component ("" when the path ends at a directory by "/", "." or "..")
  bool created = false; //!< with mkdir -p: the last component was made
};

//! Durability of the directories that `resolve_absolute` makes.
enum class mkdir_durability : std::uint8_t {
  none,         //!< do not create missing directories
  fsync_parent, //!< fsync each parent after its mkdir (open_dir: the whole parent becomes durable)
  entry_only,   //!< only the new entry becomes durable (test setup: nothing else is disturbed)
};

//! A fault armed by `fail_calls`: calls of `op` naming a path that contains `needle`.
struct PathFault {
  fs_op op;
  std::string needle;
  int err;
  int times;  //!< -1: forever
};

//! A fault armed by `fail_nth_call`: the call with this sequence number.
struct NthFault {
  std::uint64_t seq;
  int err;
};

using observer_fn = std::function<void(fs_op, const std::string&)>;

//! Everything a `MemoryFsOps` handle and its copies share, behind one mutex
//! (recursive: a progress callback may call back into the filesystem).
struct State {
  mutable std::recursive_mutex mutex;
  std::function<file_time()> clock;
  std::uint64_t next_dev = 42;
  std::uint64_t next_physical = 1ull << 20;
  std::vector<std::weak_ptr<Filesystem>> filesystems;
  std::shared_ptr<Filesystem> root_fs;

  std::uint64_t seq = 0;    //!< contract calls ever made (never reset)
  std::uint64_t calls = 0;  //!< since creation or reset_counts
  std::array<std::uint64_t, fs_op_count> op_calls{};
  std::optional<std::uint64_t> power_off_at;  //!< power is lost once `seq` reaches this
  std::vector<NthFault> nth_faults;
  std::vector<PathFault> path_faults;
  std::atomic<bool> has_observer{false};
  std::shared_ptr<const observer_fn> observer;

  std::map<int, LoopDevice> loops;
  int next_loop = 0;

  //! Byte locks of lock files: (inode, offset) -> holders, each an open
  //! (a `lock_file` and its copies). Waiters sleep on `lock_cv` (its own
  //! mutex: a waiter must not hold the filesystem's) until `lock_generation`
  //! moves.
  struct lock_holders {
    std::set<const void*> shared;
    const void* exclusive = nullptr;
  };
  std::map<std::pair<const Inode*, std::uint64_t>, lock_holders> locks;
  std::mutex lock_mu;
  std::condition_variable lock_cv;
  std::uint64_t lock_generation = 0;

  //! Some lock was released: wake the waiters.
  void locks_released() {
    {
      std::lock_guard<std::mutex> lk(lock_mu);
      ++lock_generation;
    }
    lock_cv.notify_all();
  }

  State() { root_fs = make_fs(mount_options{}); }

  file_time now() const { return clock ? clock() : real_now(); }

  bool powered_off() const noexcept { return power_off_at && seq >= *power_off_at; }

  std::shared_ptr<Filesystem> make_fs(const mount_options& o) {
    auto fs = std::make_shared<Filesystem>();
    fs->dev = next_dev++;
    fs->capacity = o.capacity;
    fs->reflink = o.reflink;
    fs->max_file_size = std::min<std::uint64_t>(o.max_file_size, max_file_size);
    fs->time_min = std::min(o.time_min, o.time_max);
    fs->time_max = o.time_max;
    fs->quirks = o.quirks;
    fs->root = make_inode(*fs, kind::directory);
    fs->root->nlink = 2;
    fs->root->dir->undo.clear();
    std::size_t w = 0;
    for (auto& f : filesystems)
      if (!f.expired()) filesystems[w++] = std::move(f);
    filesystems.resize(w);
    filesystems.push_back(fs);
    return fs;
  }

  InodePtr make_inode(Filesystem& fs, kind k) { return std::make_shared<Inode>(k, &fs, fs.next_ino++, fs.clamp(now())); }

  Allocator allocator(Filesystem& fs) noexcept { return {&fs.used, &next_physical}; }

  //! mkdir of `name` in `parent` (mode 0755); not durable by itself.
  InodePtr make_dir_in(Inode& parent, std::string_view name) {
    InodePtr d = make_inode(*parent.fs, kind::directory);
    d->nlink = 2;
    set_entry(parent, name, d);
    ++parent.nlink;
    touch(parent, now());
    return d;
  }

  //! Resolve an absolute path (a relative one counts from "/"), following
  //! symlinks on the way and, with `follow_last`, at the end; with `mk`,
  //! missing directories are made on the way (mkdir -p), never where a
  //! symlink leads: like LinuxFsOps's walk, a dangling one is ENOENT.
  AbsLookup resolve_absolute(std::string_view abs, bool follow_last, mkdir_durability mk) {
    AbsLookup r;
    if (abs.empty()) {
      r.err = ENOENT;
      return r;
    }
    if (abs.size() >= path_max) {
      r.err = ENAMETOOLONG;
      return r;
    }
    // Components still to walk, the next one last; an empty string marks
    // the end of a symlink's target.
    std::vector<std::string> todo;
    std::vector<std::string_view> parts;
    auto push = [&](std::string_view p) {
      parts.clear();
      split_components(p, parts);
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) todo.emplace_back(*it);
    };
    // A trailing slash asks for a directory, as a trailing "." does (and
    // follows a symlink that ends the path).
    if (abs.size() > 1 && abs.back() == '/') todo.emplace_back(".");
    push(abs);
    std::vector<InodePtr> stack{through_mounts(root_fs->root)};
    int links = 0;
    int in_link = 0;  // symlink targets being walked: nothing is made there
    bool made_last = false;  // the last name walked (not ".") was made here
    while (!todo.empty()) {
      std::string c = std::move(todo.back());
      todo.pop_back();
      if (c.empty()) {
        --in_link;
        continue;
      }
      bool is_last = true;
      for (auto it = todo.rbegin(); it != todo.rend(); ++it)
        if (!it->empty()) {
          is_last = false;
          break;
        }
      if (c == ".") continue;
      made_last = false;
      if (c == "..") {
        if (stack.size() > 1) stack.pop_back();
        continue;
      }
      Inode& cur = *stack.back();
      auto it = cur.dir->entries.find(c);
      if (it == cur.dir->entries.end()) {
        r.err = missing(cur, c);
        if (mk == mkdir_durability::none || in_link > 0 || r.err != ENOENT || dead(cur)) {
          if (is_last) {
            r.parent = stack.back();
            r.name = std::move(c);
          }
          return r;
        }
        r.err = 0;
        InodePtr d = make_dir_in(cur, c);
        if (mk == mkdir_durability::fsync_parent)
          fsync_dir(cur);
        else
          make_entry_durable(*cur.dir, c);
        made_last = true;
        stack.push_back(std::move(d));
        continue;
      }
      InodePtr n = it->second;
      if (n->type == kind::symlink && (!is_last || follow_last)) {
        if (++links > 40 || n->target().empty()) {
          r.err = n->target().empty() ? ENOENT : ELOOP;
          return r;
        }
        if (n->target().front() == '/') stack.resize(1);
        todo.emplace_back();
        ++in_link;
        push(n->target());
        continue;
      }
      if (is_last) {
        r.parent = stack.back();
        r.name = std::move(c);
        r.entry = n;
        r.node = through_mounts(std::move(n));
        return r;
      }
      if (n->type != kind::directory) {
        r.err = ENOTDIR;
        return r;
      }
      stack.push_back(through_mounts(std::move(n)));
    }
    // The path ended at a directory ("/", ".", "..", or made by mkdir -p).
    r.created = made_last;
    r.node = stack.back();
    r.entry = r.node;
    r.parent = stack.size() > 1 ? stack[stack.size() - 2] : stack.back();
    return r;
  }

  //! The regular files of `fs` that are live (linked somewhere, or backing
  //! a loop device), except `self`: whose extents decide `shared`.
  std::vector<const ExtentList*> other_live_files(Filesystem& fs, const Inode* self) const {
    std::vector<const ExtentList*> out;
    std::unordered_set<const Inode*> seen{self};
    std::vector<const Inode*> dirs{fs.root.get()};
    while (!dirs.empty()) {
      const Inode* d = dirs.back();
      dirs.pop_back();
      for (const auto& e : d->dir->entries) {
        const Inode* c = e.second.get();
        if (c->type == kind::directory)
          dirs.push_back(c);
        else if (c->type == kind::regular && seen.insert(c).second)
          out.push_back(&c->file->view());
      }
    }
    for (const auto& l : loops)
      if (l.second.inode->fs == &fs && seen.insert(l.second.inode.get()).second)
        out.push_back(&l.second.inode->file->view());
    return out;
  }

  //! Power loss: every filesystem keeps only what was durable; link counts
  //! are recounted and whatever is no longer reachable is freed.
  void crash() {
    // Power lost: every process is gone, and its locks with it.
    locks.clear();
    locks_released();
    for (const auto& weak : filesystems) {
      auto fs = weak.lock();
      if (!fs) continue;
      std::unordered_set<Inode*> seen;
      std::vector<Inode*> reached;
      restore_dir(fs->root.get(), seen, reached);
      for (Inode* n : reached) n->nlink = n->type == kind::directory ? 2 : 0;
      for (Inode* n : reached) {
        if (n->type != kind::directory) continue;
        for (auto& e : n->dir->entries) {
          if (e.second->type == kind::directory)
            ++n->nlink;
          else
            ++e.second->nlink;
        }
      }
    }
    power_off_at.reset();
  }

  //! Approximate heap use: inodes, names, extent lists and chunk bytes.
  std::size_t memory_bytes() const {
    constexpr std::size_t node_overhead = 48;  // a std::map node, or a shared_ptr control block
    std::size_t total = 0;
    std::unordered_set<const Inode*> seen;
    std::unordered_set<const Chunk*> chunks;
    std::unordered_set<const ExtentList*> lists;
    auto count_extents = [&](const std::shared_ptr<ExtentList>& p) {
      if (!p || !lists.insert(p.get()).second) return;
      const ExtentList& v = *p;
      total += sizeof(ExtentList) + node_overhead + v.capacity() * sizeof(Extent);
      for (const Extent& e : v)
        if (chunks.insert(e.chunk.get()).second) total += sizeof(Chunk) + node_overhead + e.chunk->length();
    };
    std::vector<const Inode*> todo;
    for (const auto& weak : filesystems)
      if (auto fs = weak.lock()) {
        total += sizeof(Filesystem) + node_overhead;
        todo.push_back(fs->root.get());
      }
    for (const auto& l : loops) todo.push_back(l.second.inode.get());
    while (!todo.empty()) {
      const Inode* n = todo.back();
      todo.pop_back();
      if (!n || !seen.insert(n).second) continue;
      total += sizeof(Inode) + node_overhead;
      if (n->link) total += sizeof(std::string) + (n->link->capacity() > 15 ? n->link->capacity() + 1 : 0);
      if (n->file) {
        total += sizeof(FileData);
        count_extents(n->file->extents);
        count_extents(n->file->durable_extents);
      }
      if (n->dir) {
        total += sizeof(DirData);
        for (const Entries* m : {&n->dir->entries, &n->dir->undo})
          for (const auto& e : *m) {
            total += sizeof(std::string) + sizeof(InodePtr) + node_overhead;
            if (e.first.capacity() > 15) total += e.first.capacity() + 1;
            todo.push_back(e.second.get());
          }
      }
    }
    return total;
  }

private:
  static void restore_dir(Inode* d, std::unordered_set<Inode*>& seen, std::vector<Inode*>& reached) {
    if (!seen.insert(d).second) return;
    reached.push_back(d);
    DirData& dd = *d->dir;
    for (auto& u : dd.undo) {
      if (u.second)
        dd.entries[u.first] = u.second;
      else
        dd.entries.erase(u.first);
    }
    dd.undo.clear();
    for (auto& e : dd.entries) {
      Inode* c = e.second.get();
      if (c->type == kind::directory) {
        restore_dir(c, seen, reached);
      } else if (seen.insert(c).second) {
        reached.push_back(c);
        if (c->type == kind::regular) {
          FileData& f = *c->file;
          f.size = f.durable_size;
          f.set_extents(f.durable_extents);
          c->mtime = f.durable_mtime;
          c->ctime = f.durable_ctime;
          f.dirty = false;
        }
      }
    }
  }
};

}  // namespace memfs
}  // namespace detail
}  // namespace file_reflink
