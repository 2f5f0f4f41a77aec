// SPDX-License-Identifier: BSL-1.0
//! \file
//! The handles of `MemoryFsOps` (an open directory, an open lock file) and
//! what one of its calls names (`Call`, `Slot`): `MemoryFsOps::dir_handle`
//! and `MemoryFsOps::lock_file` are these types.
#pragma once

#include <file_reflink/detail/memory_state.hpp>
#include <file_reflink/fs_op.hpp>
#include <file_reflink/fs_types.hpp>

#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

namespace file_reflink {

class MemoryFsOps;

namespace detail {
namespace memfs {

//! An open directory, like a held fd: it keeps the directory (and its
//! filesystem) alive even after the directory is removed or unmounted.
//! Use it only with the `MemoryFsOps` (or a copy of it) that opened it.
class dir_handle {
public:
  dir_handle() = default;
  //! The absolute path the directory was opened as (messages, `path_of`).
  const path& dir_path() const noexcept { return path_; }
  //! Whether a copy or `probe_reflink` through this handle (or a copy of
  //! it) found its filesystem without reflinks: remembered per opened
  //! directory, as LinuxFsOps does.
  bool no_reflinks() const noexcept { return no_reflinks_ && no_reflinks_->load(); }
  //! Remember that the filesystem has no reflinks; true for the call that
  //! set it, so the fallback is noticed once.
  bool set_no_reflinks() const noexcept { return no_reflinks_ && !no_reflinks_->exchange(true); }

private:
  friend class file_reflink::MemoryFsOps;
  std::shared_ptr<Filesystem> fs_;  // declared before dir_, so it outlives it
  InodePtr dir_;
  path path_;
  std::shared_ptr<std::atomic<bool>> no_reflinks_;
};

//! An open lock file, as `LinuxFsOps`'s: its byte locks belong to this
//! open (shared by the handle's copies) and are released when the last
//! copy goes, as when a process dies, or at `crash()`.
class lock_file {
public:
  lock_file() = default;

private:
  friend class file_reflink::MemoryFsOps;
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
    return (rel == nullptr || rel->empty()) ? h.dir_path().string() : (h.dir_path() / *rel).string();
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

}  // namespace memfs
}  // namespace detail
}  // namespace file_reflink
