// SPDX-License-Identifier: BSL-1.0
//! \file
//! The floor of an operation: the contract calls it made (recording.hpp),
//! issued again in another pool directory holding the same files, with
//! nothing around them. On Linux each call becomes the system calls
//! `LinuxFsOps` makes for it (the same `openat2` of the directory part, the
//! same `*at` call, `FICLONE`, the same copy loops), written out bare: no
//! result types, no messages, no logging, no pool. On the memory policy the
//! floor is the policy calls themselves, made directly.
//!
//! Each call must end as it ended when recorded (success, or the same
//! errno): a floor that diverged from the operation would measure something
//! else, so a mismatch is reported and the benchmark fails.
#pragma once

#include "recording.hpp"

#include <file_reflink/fs_ops/linux.hpp>
#include <file_reflink/fs_ops/memory.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/openat2.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace file_reflink::bench {

//! Where a replay went wrong: the call, and what it returned then and now.
struct replay_error {
  std::size_t index = 0;
  fs_op op = fs_op::stat;
  std::string what;
  int recorded = 0;
  int now = 0;
  explicit operator bool() const noexcept { return !what.empty(); }
};

//! `from` + the rest of `p`, where `p` starts with `from`.
inline std::string moved(const std::string& p, const std::string& from, const std::string& to) {
  if (p.compare(0, from.size(), from) == 0 && (p.size() == from.size() || p[from.size()] == '/'))
    return to + p.substr(from.size());
  return p;
}

//! Call `dir` with each directory the recording names.
template <class Dir>
void open_dirs(const recording& r, Dir&& dir) {
  for (const call& c : r) {
    if (!c.dir1.empty()) dir(c.dir1);
    if (!c.dir2.empty()) dir(c.dir2);
  }
}

//! Issue every call of `r` through `one` (the call's errno, 0 on success);
//! the first one that ends otherwise than recorded.
template <class One>
replay_error replay_calls(const recording& r, One&& one) {
  for (std::size_t i = 0; i < r.size(); ++i) {
    const call& c = r[i];
    const int err = one(c);
    const int expected = c.err < 0 ? err : c.err;  // a library condition: any outcome
    if ((err == 0) != (expected == 0) || (err != 0 && err != expected)) {
      replay_error e;
      e.index = i;
      e.op = c.op;
      e.what = std::string(to_string(c.op)) + " '" + c.a.string() + "'" + (c.b.empty() ? "" : " -> '" + c.b.string() + "'");
      e.recorded = c.err;
      e.now = err;
      return e;
    }
  }
  return {};
}

//! Replays recordings made in pool directory `from` as bare system calls in
//! pool directory `to`.
class linux_replayer {
public:
  linux_replayer(std::string from, std::string to) : from_(std::move(from)), to_(std::move(to)) {}
  ~linux_replayer() {
    for (auto& d : dirs_) ::close(d.second);
  }
  linux_replayer(linux_replayer&& o) noexcept
      : from_(std::move(o.from_)), to_(std::move(o.to_)), dirs_(std::move(o.dirs_)) {
    o.dirs_.clear();
  }
  linux_replayer(const linux_replayer&) = delete;
  linux_replayer& operator=(const linux_replayer&) = delete;
  linux_replayer& operator=(linux_replayer&&) = delete;

  //! Open the directories the recording names (outside any timing).
  void prepare(const recording& r) {
    open_dirs(r, [this](const std::string& d) { (void)dir(d); });
  }

  //! Issue every call; the first one that ends otherwise than recorded.
  replay_error run(const recording& r) {
    return replay_calls(r, [this](const call& c) { return one(c); });
  }

private:
  //! The directory fd standing in for the recorded handle's directory.
  int dir(const std::string& recorded) {
    auto it = dirs_.find(recorded);
    if (it != dirs_.end()) return it->second;
    const std::string p = moved(recorded, from_, to_);
    const int fd = ::open(p.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) dirs_.emplace(recorded, fd);  // a directory that does not exist yet is tried again
    return fd;
  }

  using unique_fd_t = file_reflink::detail::unique_fd;

  //! The directory part of `rel` opened beneath `base` as LinuxFsOps opens
  //! it (openat2, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), and the last name
  //! (the tail of `rel` itself: no copy).
  struct where {
    int owned = -1;
    int dir = -1;
    const char* name = "";
    where() = default;
    where(const where&) = delete;
    where& operator=(const where&) = delete;
    ~where() {
      if (owned >= 0) ::close(owned);
    }
  };
  static int resolve(int base, const path& rel, where& w) {
    const std::string& text = rel.native();
    const std::size_t slash = text.rfind('/');
    if (slash == std::string::npos) {
      w.dir = base;
      w.name = text.c_str();
      return 0;
    }
    char dir_text[512];
    if (slash + 2 > sizeof dir_text) return ENAMETOOLONG;
    std::memcpy(dir_text, text.data(), slash + 1);
    dir_text[slash + 1] = '\0';
    struct open_how how;
    std::memset(&how, 0, sizeof how);
    how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    const long fd = ::syscall(SYS_openat2, base, dir_text, &how, sizeof how);
    if (fd < 0) return errno;
    w.owned = w.dir = static_cast<int>(fd);
    w.name = text.c_str() + slash + 1;
    return 0;
  }
  static int open_at(const where& w, int flags, unique_fd_t& out, mode_t mode = 0) {
    const int fd = ::openat(w.dir, *w.name ? w.name : ".", flags | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) return errno;
    out.reset(fd);
    return 0;
  }

  int one(const call& c) {
    namespace li = file_reflink::detail::linux_impl;
    switch (c.op) {
      case fs_op::open_dir: {
        auto r = LinuxFsOps{}.open_dir(moved(c.a.string(), from_, to_), c.create);
        return r ? 0 : r.error().code().value();
      }
      case fs_op::stat_path: {
        struct stat st;
        return ::stat(moved(c.a.string(), from_, to_).c_str(), &st) < 0 ? errno : 0;
      }
      case fs_op::remove_dir: {
        auto r = LinuxFsOps{}.remove_dir(moved(c.a.string(), from_, to_));
        return r ? 0 : r.error().code().value();
      }
      case fs_op::stat: {
        where w;
        if (int e = resolve(dir(c.dir1), c.a, w)) return e;
        struct stat st;
        const int r = *w.name ? ::fstatat(w.dir, w.name, &st, AT_SYMLINK_NOFOLLOW) : ::fstat(w.dir, &st);
        return r < 0 ? errno : 0;
      }
      case fs_op::list: {
        where w;
        if (int e = resolve(dir(c.dir1), c.a, w)) return e;
        unique_fd_t fd;
        if (int e = open_at(w, O_RDONLY | O_DIRECTORY, fd)) return e;
        DIR* d = ::fdopendir(fd.get());
        if (!d) return errno;
        fd.release();
        while (::readdir(d)) {
        }
        ::closedir(d);
        return 0;
      }
      case fs_op::rename:
      case fs_op::link: {
        where a, b;
        if (int e = resolve(dir(c.dir1), c.a, a)) return e;
        if (int e = resolve(dir(c.dir2.empty() ? c.dir1 : c.dir2), c.b, b)) return e;
        const int r = c.op == fs_op::rename ? ::renameat(a.dir, a.name, b.dir, b.name)
                                            : ::linkat(a.dir, a.name, b.dir, b.name, 0);
        return r < 0 ? errno : 0;
      }
      case fs_op::remove:
      case fs_op::rmdir: {
        where w;
        if (int e = resolve(dir(c.dir1), c.a, w)) return e;
        return ::unlinkat(w.dir, w.name, c.op == fs_op::rmdir ? AT_REMOVEDIR : 0) < 0 ? errno : 0;
      }
      case fs_op::mkdir: {
        where w;
        if (int e = resolve(dir(c.dir1), c.a, w)) return e;
        return ::mkdirat(w.dir, w.name, 0755) < 0 ? errno : 0;
      }
      case fs_op::fsync: {
        where w;
        if (int e = resolve(dir(c.dir1), c.a, w)) return e;
        unique_fd_t fd;
        if (int e = open_at(w, O_RDONLY, fd)) return e;
        return ::fsync(fd.get()) < 0 ? errno : 0;
      }
      case fs_op::create: {
        where w;
        if (int e = resolve(dir(c.dir1), c.a, w)) return e;
        unique_fd_t fd;
        const int flags = O_WRONLY | O_CREAT | (c.mode == create_mode::exclusive ? O_EXCL : O_TRUNC);
        if (int e = open_at(w, flags, fd, 0600)) return e;
        return ::ftruncate(fd.get(), static_cast<off_t>(c.x)) < 0 ? errno : 0;
      }
      case fs_op::read:
      case fs_op::write:
      case fs_op::resize:
      case fs_op::punch_hole: {
        where w;
        if (int e = resolve(dir(c.dir1), c.a, w)) return e;
        unique_fd_t fd;
        if (int e = open_at(w, c.op == fs_op::read ? O_RDONLY : O_WRONLY, fd)) return e;
        if (c.op == fs_op::resize) return ::ftruncate(fd.get(), static_cast<off_t>(c.x)) < 0 ? errno : 0;
        if (c.op == fs_op::punch_hole)
          return c.y == 0 ? 0
                          : ::fallocate(fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(c.x),
                                        static_cast<off_t>(c.y)) < 0
                                ? errno
                                : 0;
        if (c.op == fs_op::write) return file_reflink::detail::pwrite_full(fd.get(), c.data, c.y, c.x);
        buffer_.resize(c.y);
        std::size_t got = 0;
        return file_reflink::detail::pread_full(fd.get(), buffer_.data(), c.y, c.x, got);
      }
      case fs_op::set_mtime: {
        where w;
        if (int e = resolve(dir(c.dir1), c.a, w)) return e;
        struct timespec times[2];
        times[0].tv_sec = 0;
        times[0].tv_nsec = UTIME_OMIT;
        times[1].tv_sec = static_cast<time_t>(c.t.sec);
        times[1].tv_nsec = static_cast<long>(c.t.nsec);
        return ::utimensat(w.dir, w.name, times, AT_SYMLINK_NOFOLLOW) < 0 ? errno : 0;
      }
      case fs_op::statvfs: {
        struct ::statvfs vfs;
        return ::fstatvfs(dir(c.dir1), &vfs) < 0 ? errno : 0;
      }
      case fs_op::extents: {
        where w;
        if (int e = resolve(dir(c.dir1), c.a, w)) return e;
        unique_fd_t fd;
        if (int e = open_at(w, O_RDONLY, fd)) return e;
        return walk_extents(fd.get());
      }
      case fs_op::storage_extents: {
        where w;
        if (int e = resolve(dir(c.dir1), c.a, w)) return e;
        unique_fd_t fd;
        if (int e = open_at(w, O_RDONLY, fd)) return e;
        std::vector<extent> found;
        int err = 0;
        if (!li::btrfs_storage_extents(fd.get(), err, found)) err = li::fiemap_data_extents(fd.get(), false, found);
        return err;
      }
      case fs_op::clone: {
        where a, b;
        if (int e = resolve(dir(c.dir1), c.a, a)) return e;
        unique_fd_t in, out;
        if (int e = open_at(a, O_RDONLY, in)) return e;
        if (int e = resolve(dir(c.dir2), c.b, b)) return e;
        if (int e = open_at(b, O_WRONLY | O_CREAT | O_EXCL, out, 0600)) return e;
        if (::ioctl(out.get(), li::ioc_ficlone, in.get()) < 0) {
          const int e = errno;
          ::unlinkat(b.dir, b.name, 0);
          return e;
        }
        return 0;
      }
      case fs_op::data_segments: {
        where w;
        if (int e = resolve(dir(c.dir1), c.a, w)) return e;
        unique_fd_t fd;
        if (int e = open_at(w, O_RDONLY, fd)) return e;
        std::vector<li::segment> segments;
        return li::data_segments(fd.get(), c.x, segments);
      }
      case fs_op::copy_range: {
        where a, b;
        if (int e = resolve(dir(c.dir1), c.a, a)) return e;
        if (int e = resolve(dir(c.dir2), c.b, b)) return e;
        unique_fd_t in, out;
        if (int e = open_at(a, O_RDONLY, in)) return e;
        if (int e = open_at(b, O_WRONLY, out)) return e;
        loff_t off_in = static_cast<loff_t>(c.x), off_out = off_in;
        return ::copy_file_range(in.get(), &off_in, out.get(), &off_out, c.y, 0u) < 0 ? errno : 0;
      }
      case fs_op::advise_willneed: {
        where w;
        if (int e = resolve(dir(c.dir1), c.a, w)) return e;
        unique_fd_t fd;
        if (int e = open_at(w, O_RDONLY, fd)) return e;
        return ::posix_fadvise(fd.get(), static_cast<off_t>(c.x), static_cast<off_t>(c.y), POSIX_FADV_WILLNEED);
      }
      case fs_op::notify_resize:
      case fs_op::probe_reflink: {
        // Rare, and not on any timed path: the policy's own code.
        auto h = LinuxFsOps{}.open_dir(moved(c.dir1, from_, to_), false);
        if (!h) return h.error().code().value();
        if (c.op == fs_op::probe_reflink) {
          auto r = LinuxFsOps{}.probe_reflink(h.value().handle);
          return r ? 0 : r.error().code().value();
        }
        auto r = LinuxFsOps{}.notify_resize(h.value().handle, c.a);
        return r ? 0 : r.error().code().value();
      }
      case fs_op::path_of:
      case fs_op::open_lock:
      case fs_op::lock:
      case fs_op::unlock: return EINVAL;  // never recorded (see RecordingFsOps)
    }
    return EINVAL;
  }

  static int walk_extents(int fd) {
    namespace li = file_reflink::detail::linux_impl;
    return li::for_each_fiemap_extent(fd, FIEMAP_MAX_OFFSET, true, [](const struct fiemap_extent&, std::uint64_t) {});
  }

  std::string from_, to_;
  std::map<std::string, int> dirs_;
  std::vector<char> buffer_;
};

//! Replays recordings made in directory `from` of a MemoryFsOps filesystem
//! as direct policy calls in directory `to` of the same filesystem.
class memory_replayer {
public:
  memory_replayer(MemoryFsOps ops, std::string from, std::string to)
      : ops_(std::move(ops)), from_(std::move(from)), to_(std::move(to)) {}

  //! Open the directories the recording names (outside any timing).
  void prepare(const recording& r) {
    open_dirs(r, [this](const std::string& d) { (void)dir(d); });
  }

  //! Issue every call; the first one that ends otherwise than recorded.
  replay_error run(const recording& r) {
    return replay_calls(r, [this](const call& c) { return one(c); });
  }

private:
  const MemoryFsOps::dir_handle& dir(const std::string& recorded) {
    auto it = dirs_.find(recorded);
    if (it != dirs_.end()) return it->second;
    auto h = ops_.open_dir(moved(recorded, from_, to_), false);
    if (!h) return none_;  // a directory that does not exist yet is tried again
    return dirs_.emplace(recorded, h.value().handle).first->second;
  }
  template <class R>
  static int code(const R& r) {
    if (r) return 0;
    const std::error_code& ec = r.error().code();
    return ec.category() == std::system_category() ? ec.value() : -1;
  }

  int one(const call& c) {
    switch (c.op) {
      case fs_op::open_dir: return code(ops_.open_dir(moved(c.a.string(), from_, to_), c.create));
      case fs_op::stat_path: return code(ops_.stat_path(moved(c.a.string(), from_, to_)));
      case fs_op::remove_dir: return code(ops_.remove_dir(moved(c.a.string(), from_, to_)));
      case fs_op::mkdir: return code(ops_.mkdir(dir(c.dir1), c.a));
      case fs_op::rmdir: return code(ops_.rmdir(dir(c.dir1), c.a));
      case fs_op::create: return code(ops_.create(dir(c.dir1), c.a, c.x, c.mode));
      case fs_op::read:
        buffer_.resize(c.y);
        return code(ops_.read(dir(c.dir1), c.a, c.x, buffer_.data(), c.y));
      case fs_op::write: return code(ops_.write(dir(c.dir1), c.a, c.x, c.data, c.y));
      case fs_op::resize: return code(ops_.resize(dir(c.dir1), c.a, c.x));
      case fs_op::punch_hole: return code(ops_.punch_hole(dir(c.dir1), c.a, c.x, c.y));
      case fs_op::rename: return code(ops_.rename(dir(c.dir1), c.a, c.b));
      case fs_op::link: return code(ops_.link(dir(c.dir1), c.a, c.b));
      case fs_op::remove: return code(ops_.remove(dir(c.dir1), c.a));
      case fs_op::fsync: return code(ops_.fsync(dir(c.dir1), c.a));
      case fs_op::stat: return code(ops_.stat(dir(c.dir1), c.a));
      case fs_op::set_mtime: return code(ops_.set_mtime(dir(c.dir1), c.a, c.t));
      case fs_op::list: return code(ops_.list(dir(c.dir1), c.a));
      case fs_op::statvfs: return code(ops_.statvfs(dir(c.dir1)));
      case fs_op::extents: return code(ops_.extents(dir(c.dir1), c.a));
      case fs_op::storage_extents: return code(ops_.storage_extents(dir(c.dir1), c.a));
      case fs_op::clone: return code(ops_.clone(dir(c.dir1), c.a, dir(c.dir2), c.b));
      case fs_op::data_segments: return code(ops_.data_segments(dir(c.dir1), c.a, c.x));
      case fs_op::copy_range: return code(ops_.copy_range(dir(c.dir1), c.a, dir(c.dir2), c.b, c.x, c.y));
      case fs_op::notify_resize: return code(ops_.notify_resize(dir(c.dir1), c.a));
      case fs_op::advise_willneed: return code(ops_.advise_willneed(dir(c.dir1), c.a, c.x, c.y));
      case fs_op::probe_reflink: return code(ops_.probe_reflink(dir(c.dir1)));
      case fs_op::path_of:
      case fs_op::open_lock:
      case fs_op::lock:
      case fs_op::unlock: return EINVAL;  // never recorded (see RecordingFsOps)
    }
    return EINVAL;
  }

  MemoryFsOps ops_;
  std::string from_, to_;
  std::map<std::string, MemoryFsOps::dir_handle> dirs_;
  MemoryFsOps::dir_handle none_;
  std::vector<char> buffer_;
};

}  // namespace file_reflink::bench
