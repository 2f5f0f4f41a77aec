// SPDX-License-Identifier: BSL-1.0
//! \file
//! A policy that records the contract calls an operation makes and passes
//! them on to a real policy. The benchmark runs each operation once through
//! it (untimed) to learn the sequence of calls the operation issues, counts
//! its fsyncs, and replays that sequence bare (replay.hpp): that is the
//! operation's floor.
#pragma once

#include <file_reflink/fs_ops.hpp>
#include <file_reflink/fs_ops/linux.hpp>
#include <file_reflink/fs_ops/memory.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace file_reflink::bench {

//! One contract call, with everything needed to issue it again elsewhere.
struct call {
  fs_op op = fs_op::stat;
  std::string dir1, dir2;  //!< the handles' directories (absolute), "" for none
  path a, b;               //!< relative paths (absolute for open_dir, stat_path, remove_dir)
  std::uint64_t x = 0;     //!< size, offset
  std::uint64_t y = 0;     //!< length
  file_time t;            //!< mtime
  create_mode mode = create_mode::exclusive;
  bool create = false;     //!< open_dir
  const void* data = nullptr;  //!< write: the bytes, kept in `bytes`
  std::shared_ptr<const std::vector<char>> bytes;
  int err = 0;                 //!< what it returned: 0, the errno, or -1 for a library condition
};

//! The calls of one operation, in order.
using recording = std::vector<call>;

//! How many calls of `op` a recording holds.
inline std::size_t count(const recording& r, fs_op op) {
  std::size_t n = 0;
  for (const call& c : r) n += c.op == op;
  return n;
}

template <class H>
const path& dir_of(const H& h) {
  return h.dir_path();
}

//! `Inner`, recording every call while a recording is open. Copies share
//! the recorder, as a pool's copies of its policy must.
template <class Inner>
class RecordingFsOps {
public:
  using dir_handle = typename Inner::dir_handle;

  explicit RecordingFsOps(Inner inner = Inner{}) : inner_(std::move(inner)), rec_(std::make_shared<state>()) {}

  //! Start recording (what was recorded before is dropped).
  void begin() const {
    rec_->calls.clear();
    rec_->on = true;
  }
  //! Stop recording; the calls since `begin`.
  recording end() const {
    rec_->on = false;
    return std::move(rec_->calls);
  }
  Inner& inner() noexcept { return inner_; }

  result<opened_dir<dir_handle>> open_dir(const path& abs, bool create) const noexcept {
    call c = base(fs_op::open_dir);
    if (on()) c.a = abs, c.create = create;
    return done(push(std::move(c)), inner_.open_dir(abs, create));
  }
  result<file_stat> stat_path(const path& abs) const noexcept {
    call c = base(fs_op::stat_path);
    if (on()) c.a = abs;
    return done(push(std::move(c)), inner_.stat_path(abs));
  }
  result<void> remove_dir(const path& abs) const noexcept {
    call c = base(fs_op::remove_dir);
    if (on()) c.a = abs;
    return done(push(std::move(c)), inner_.remove_dir(abs));
  }
  result<path> path_of(const dir_handle& h, const path& rel) const noexcept { return inner_.path_of(h, rel); }
  result<void> mkdir(const dir_handle& h, const path& rel) const noexcept {
    return done(push(one(fs_op::mkdir, h, rel)), inner_.mkdir(h, rel));
  }
  result<void> rmdir(const dir_handle& h, const path& rel) const noexcept {
    return done(push(one(fs_op::rmdir, h, rel)), inner_.rmdir(h, rel));
  }
  result<void> create(const dir_handle& h, const path& rel, std::uint64_t size, create_mode mode) const noexcept {
    call c = one(fs_op::create, h, rel);
    c.x = size;
    c.mode = mode;
    return done(push(std::move(c)), inner_.create(h, rel, size, mode));
  }
  result<std::size_t> read(const dir_handle& h, const path& rel, std::uint64_t off, void* buf,
                           std::size_t len) const noexcept {
    call c = one(fs_op::read, h, rel);
    c.x = off;
    c.y = len;
    return done(push(std::move(c)), inner_.read(h, rel, off, buf, len));
  }
  result<void> write(const dir_handle& h, const path& rel, std::uint64_t off, const void* data,
                     std::size_t len) const noexcept {
    call c = one(fs_op::write, h, rel);
    c.x = off;
    c.y = len;
    if (on()) {
      // The caller's buffer may not outlive the replay (a copy's does not).
      auto kept = std::make_shared<std::vector<char>>(static_cast<const char*>(data), static_cast<const char*>(data) + len);
      c.data = kept->data();
      c.bytes = std::move(kept);
    }
    return done(push(std::move(c)), inner_.write(h, rel, off, data, len));
  }
  result<void> resize(const dir_handle& h, const path& rel, std::uint64_t size) const noexcept {
    call c = one(fs_op::resize, h, rel);
    c.x = size;
    return done(push(std::move(c)), inner_.resize(h, rel, size));
  }
  result<void> punch_hole(const dir_handle& h, const path& rel, std::uint64_t off, std::uint64_t len) const noexcept {
    call c = one(fs_op::punch_hole, h, rel);
    c.x = off;
    c.y = len;
    return done(push(std::move(c)), inner_.punch_hole(h, rel, off, len));
  }
  result<void> rename(const dir_handle& h, const path& from, const path& to) const noexcept {
    return done(push(two(fs_op::rename, h, from, h, to)), inner_.rename(h, from, to));
  }
  result<void> link(const dir_handle& h, const path& from, const path& to) const noexcept {
    return done(push(two(fs_op::link, h, from, h, to)), inner_.link(h, from, to));
  }
  result<void> remove(const dir_handle& h, const path& rel) const noexcept {
    return done(push(one(fs_op::remove, h, rel)), inner_.remove(h, rel));
  }
  result<void> fsync(const dir_handle& h, const path& rel) const noexcept {
    return done(push(one(fs_op::fsync, h, rel)), inner_.fsync(h, rel));
  }
  result<file_stat> stat(const dir_handle& h, const path& rel) const noexcept {
    return done(push(one(fs_op::stat, h, rel)), inner_.stat(h, rel));
  }
  result<void> set_mtime(const dir_handle& h, const path& rel, file_time ns) const noexcept {
    call c = one(fs_op::set_mtime, h, rel);
    c.t = ns;
    return done(push(std::move(c)), inner_.set_mtime(h, rel, ns));
  }
  result<std::vector<dir_entry>> list(const dir_handle& h, const path& rel) const noexcept {
    return done(push(one(fs_op::list, h, rel)), inner_.list(h, rel));
  }
  result<fs_space> statvfs(const dir_handle& h) const noexcept {
    return done(push(one(fs_op::statvfs, h, path())), inner_.statvfs(h));
  }
  result<std::vector<extent>> extents(const dir_handle& h, const path& rel) const noexcept {
    return done(push(one(fs_op::extents, h, rel)), inner_.extents(h, rel));
  }
  result<std::vector<extent>> storage_extents(const dir_handle& h, const path& rel) const noexcept {
    return done(push(one(fs_op::storage_extents, h, rel)), inner_.storage_extents(h, rel));
  }
  result<void> clone(const dir_handle& sh, const path& src, const dir_handle& dh, const path& dst) const noexcept {
    return done(push(two(fs_op::clone, sh, src, dh, dst)), inner_.clone(sh, src, dh, dst));
  }
  result<std::vector<segment>> data_segments(const dir_handle& h, const path& rel, std::uint64_t limit) const noexcept {
    call c = one(fs_op::data_segments, h, rel);
    c.x = limit;
    return done(push(std::move(c)), inner_.data_segments(h, rel, limit));
  }
  result<std::uint64_t> copy_range(const dir_handle& sh, const path& src, const dir_handle& dh, const path& dst,
                                   std::uint64_t off, std::uint64_t len) const noexcept {
    call c = two(fs_op::copy_range, sh, src, dh, dst);
    c.x = off;
    c.y = len;
    return done(push(std::move(c)), inner_.copy_range(sh, src, dh, dst, off, len));
  }
  result<unsigned> notify_resize(const dir_handle& h, const path& rel) const noexcept {
    return done(push(one(fs_op::notify_resize, h, rel)), inner_.notify_resize(h, rel));
  }
  result<void> advise_willneed(const dir_handle& h, const path& rel, std::uint64_t off, std::uint64_t len) const
      noexcept {
    call c = one(fs_op::advise_willneed, h, rel);
    c.x = off;
    c.y = len;
    return done(push(std::move(c)), inner_.advise_willneed(h, rel, off, len));
  }
  result<bool> probe_reflink(const dir_handle& h) const noexcept {
    return done(push(one(fs_op::probe_reflink, h, path())), inner_.probe_reflink(h));
  }
  // The volume locks are not recorded: the floor is the operation's file
  // system calls alone, and ours pays two fcntl(F_OFD_SETLK) more.
  using lock_file = typename Inner::lock_file;
  result<lock_file> open_lock(const dir_handle& h, const path& rel) const noexcept { return inner_.open_lock(h, rel); }
  result<bool> lock(const lock_file& f, std::uint64_t byte, lock_mode mode, bool wait) const noexcept {
    return inner_.lock(f, byte, mode, wait);
  }
  result<void> unlock(const lock_file& f, std::uint64_t byte) const noexcept { return inner_.unlock(f, byte); }

private:
  struct state {
    bool on = false;
    recording calls;
  };

  static constexpr std::size_t none = static_cast<std::size_t>(-1);

  bool on() const noexcept { return rec_->on; }
  static call base(fs_op op) {
    call c;
    c.op = op;
    return c;
  }
  call one(fs_op op, const dir_handle& h, const path& rel) const {
    call c = base(op);
    if (!on()) return c;
    c.dir1 = dir_of(h).string();
    c.a = rel;
    return c;
  }
  call two(fs_op op, const dir_handle& h1, const path& a, const dir_handle& h2, const path& b) const {
    call c = one(op, h1, a);
    if (!on()) return c;
    c.dir2 = dir_of(h2).string();
    c.b = b;
    return c;
  }
  // Recording only fails when memory runs out; the benchmark then dies,
  // which is the right outcome for a benchmark.
  std::size_t push(call c) const noexcept {
    if (!on()) return none;
    rec_->calls.push_back(std::move(c));
    return rec_->calls.size() - 1;
  }
  template <class R>
  R done(std::size_t i, R r) const noexcept {
    if (i != none && i < rec_->calls.size()) {
      const std::error_code& ec = r ? std::error_code() : r.error().code();
      rec_->calls[i].err = r ? 0 : ec.category() == std::system_category() ? ec.value() : -1;
    }
    return r;
  }

  Inner inner_;
  std::shared_ptr<state> rec_;
};

static_assert(is_fs_ops_v<RecordingFsOps<LinuxFsOps>>);
static_assert(is_fs_ops_v<RecordingFsOps<MemoryFsOps>>);

}  // namespace file_reflink::bench
