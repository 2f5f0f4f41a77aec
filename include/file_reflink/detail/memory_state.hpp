// SPDX-License-Identifier: BSL-1.0
//! \file
//! The state behind `MemoryFsOps`: its filesystems and their mounts (the
//! inodes are in `memory_inodes.hpp`, name resolution in
//! `memory_resolve.hpp`), absolute paths, and the bookkeeping of calls,
//! locks and injected faults.
#pragma once

#include <file_reflink/detail/memory_inodes.hpp>
#include <file_reflink/detail/memory_resolve.hpp>

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
