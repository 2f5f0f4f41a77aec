// SPDX-License-Identifier: BSL-1.0
//! \file
//! `LinuxFsOps`: the filesystem policy on real system calls (`FICLONE`,
//! `copy_file_range`, `SEEK_DATA`/`SEEK_HOLE`, `FIEMAP`, `openat2`, ...).
//! The only header of the library that includes <linux/...>.
//!
//! Every name inside a `dir_handle` is resolved beneath the handle's open
//! directory and never through a symlink: the directory part with `openat2`
//! (`RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`), or, where the kernel lacks it,
//! a walk that opens one component at a time with `O_NOFOLLOW`; the last
//! name with `O_NOFOLLOW` or an `*at` call that does not follow it. So a
//! symlink planted in a pool cannot redirect a write outside it.
#pragma once

#include <file_reflink/detail/posix.hpp>
#include <file_reflink/detail/unique_fd.hpp>
#include <file_reflink/error.hpp>
#include <file_reflink/fs_ops.hpp>
#include <file_reflink/layout.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <linux/falloc.h>
#include <linux/fiemap.h>
#include <linux/loop.h>
#include <linux/openat2.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace file_reflink {

namespace detail {
namespace linux_impl {

// FICLONE and FS_IOC_FIEMAP live in <linux/fs.h>, which clashes with
// <sys/mount.h> on some glibc 2.36 builds; their definitions, spelled out.
constexpr unsigned long ioc_ficlone = _IOW(0x94, 9, int);
constexpr unsigned long ioc_fiemap = _IOWR('f', 11, struct fiemap);
#ifdef FICLONE
static_assert(ioc_ficlone == FICLONE, "FICLONE differs from <linux/fs.h>");
#endif
#ifdef FS_IOC_FIEMAP
static_assert(ioc_fiemap == FS_IOC_FIEMAP, "FS_IOC_FIEMAP differs from <linux/fs.h>");
#endif

//! What `errno_failure` makes: converts to any `result<T>`.
using failure_t = decltype(errno_failure(0, std::string()));

//! Bytes moved per `copy_file_range` call and the read/write buffer of the
//! in-process copy: large enough for full-speed I/O, small enough that
//! progress is reported (and a cancel noticed) often.
constexpr std::size_t copy_chunk = std::size_t(4) << 20;
//! Extents fetched per `FS_IOC_FIEMAP` call.
constexpr std::uint32_t fiemap_batch = 512;
//! How far ahead of the copy the source's data is asked for
//! (`POSIX_FADV_WILLNEED`). A sparse image is read a data segment at a time,
//! each too short for the kernel's own readahead to keep the disk busy;
//! asking ahead keeps many reads in flight. A cold 1 GiB image holding
//! 102 MiB in 64 KiB segments copied in 0.25-0.3x the time of
//! `cp --sparse=always` with it, in 0.9-1.1x without it.
constexpr std::uint64_t readahead_window = std::uint64_t(64) << 20;

//! What a `dir_handle` shares between its copies.
struct dir_state {
  dir_state(unique_fd f, path p) noexcept : fd(std::move(f)), abs(std::move(p)) {}
  unique_fd fd;                          //!< the directory, O_RDONLY | O_DIRECTORY
  path abs;                              //!< the absolute path it was opened as
  std::atomic<bool> no_reflinks{false};  //!< a clone here failed with EOPNOTSUPP (or the probe failed)
};

//! The switch between `openat2` and the component walk, read once from
//! FILE_REFLINK_NO_OPENAT2 and turned off for good when the kernel says ENOSYS.
inline std::atomic<bool>& openat2_enabled() noexcept {
  static std::atomic<bool> enabled{[] {
    const char* v = std::getenv("FILE_REFLINK_NO_OPENAT2");
    return !(v && std::strcmp(v, "1") == 0);
  }()};
  return enabled;
}

//! `openat` that never follows `name` itself. Where `O_DIRECTORY` meets a
//! symlink the kernel says ENOTDIR; what stands there is a symlink, and the
//! contract says ELOOP for that.
inline int openat_nofollow(int dir, const char* name, int flags, mode_t mode, unique_fd& out) noexcept {
  const int fd = retry_eintr(::openat, dir, name, flags | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd >= 0) {
    out.reset(fd);
    return 0;
  }
  const int err = errno;
  struct stat st;
  if (err == ENOTDIR && (flags & O_DIRECTORY) && ::fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
      S_ISLNK(st.st_mode))
    return ELOOP;
  return err;
}

//! Cuts `rel` at '/' into its names, dropping empty and "." ones. An
//! absolute path, or a ".." that climbs above the start, is EXDEV, as
//! `RESOLVE_BENEATH` says; a ".." that stays inside is kept.
inline int split_beneath(const std::string& rel, std::vector<std::string_view>& parts) {
  if (!rel.empty() && rel.front() == '/') return EXDEV;
  int depth = 0;
  std::size_t begin = 0;
  while (begin <= rel.size()) {
    std::size_t end = rel.find('/', begin);
    if (end == std::string::npos) end = rel.size();
    const std::string_view part(rel.data() + begin, end - begin);
    begin = end + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (depth == 0) return EXDEV;
      --depth;
    } else {
      ++depth;
    }
    parts.push_back(part);
  }
  return 0;
}

//! Opens the directory made of the first `n` of `parts` (spelled `text`)
//! beneath `base`, never through a symlink; `out` stays empty when that is
//! `base` itself.
inline int open_dir_beneath(int base, const std::string& text, const std::vector<std::string_view>& parts,
                            std::size_t n, unique_fd& out) {
  if (n == 0) return 0;
  if (openat2_enabled().load(std::memory_order_relaxed)) {
    struct open_how how;
    std::memset(&how, 0, sizeof how);
    how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    const long fd = retry_eintr(::syscall, SYS_openat2, base, text.c_str(), &how, sizeof how);
    if (fd >= 0) {
      out.reset(static_cast<int>(fd));
      return 0;
    }
    const int err = errno;
    if (err == ENOSYS)
      openat2_enabled().store(false);  // an older kernel: walk from now on
    else if (err != EPERM)             // EPERM: a seccomp filter that does not know openat2
      return err;
  }
  // The walk: one component at a time, each opened O_NOFOLLOW beneath the
  // last; ".." returns to the directory we came from, never above `base`.
  // openat2 takes the text in one string: one of PATH_MAX bytes or more is
  // ENAMETOOLONG there, so it is here, whatever the kernel.
  if (text.size() >= PATH_MAX) return ENAMETOOLONG;
  std::vector<unique_fd> opened;
  opened.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (parts[i] == "..") {
      opened.pop_back();  // split_beneath let no ".." climb above base
      continue;
    }
    const std::string name(parts[i]);
    unique_fd fd;
    if (int err = openat_nofollow(opened.empty() ? base : opened.back().get(), name.c_str(),
                                  O_PATH | O_DIRECTORY, 0, fd))
      return err;
    opened.push_back(std::move(fd));
  }
  if (!opened.empty()) out = std::move(opened.back());
  return 0;
}

//! Where a relative path leads: a directory opened beneath the handle, and
//! a plain last name in it. An empty name is the directory itself ("",
//! "a/..").
struct location {
  unique_fd owned;  //!< the directory, unless it is the handle's own
  int dir = -1;     //!< the directory to use with the *at calls
  std::string name;
};

//! Resolves all of `rel` but its last name beneath the handle.
inline int locate(const dir_state* s, const path& rel, location& loc) {
  if (!s) return EBADF;  // a default-constructed handle
  const std::string& text = rel.native();
  std::vector<std::string_view> parts;
  if (int err = split_beneath(text, parts)) return err;
  // The last name is split off unless it is ".." (then all of it is a directory).
  std::size_t n_dir = parts.size();
  std::size_t dir_len = text.size();
  if (!parts.empty() && parts.back() != "..") {
    --n_dir;
    loc.name.assign(parts.back());
    dir_len = static_cast<std::size_t>(parts.back().data() - text.data());
  }
  const std::string dir_text(text, 0, dir_len);
  if (int err = open_dir_beneath(s->fd.get(), dir_text, parts, n_dir, loc.owned)) return err;
  loc.dir = loc.owned ? loc.owned.get() : s->fd.get();
  return 0;
}

//! Opens the last name of `loc` (the directory itself when it has none).
inline int open_at(const location& loc, int flags, mode_t mode, unique_fd& out) noexcept {
  return openat_nofollow(loc.dir, loc.name.empty() ? "." : loc.name.c_str(), flags, mode, out);
}

//! lstat of the last name of `loc` (the directory itself when it has none).
inline int stat_at(const location& loc, struct stat& st) noexcept {
  const int r = loc.name.empty() ? ::fstat(loc.dir, &st)
                                 : ::fstatat(loc.dir, loc.name.c_str(), &st, AT_SYMLINK_NOFOLLOW);
  return r < 0 ? errno : 0;
}

//! Opens `rel` beneath the handle without following any symlink.
inline int open_beneath(const dir_state* s, const path& rel, int flags, unique_fd& out) {
  location loc;
  if (int err = locate(s, rel, loc)) return err;
  return open_at(loc, flags, 0, out);
}

//! A timestamp as the contract reports it (any year the kernel keeps).
inline file_time to_file_time(const struct timespec& t) noexcept {
  return file_time{static_cast<std::int64_t>(t.tv_sec), static_cast<std::uint32_t>(t.tv_nsec)};
}

//! The contract's file type of a `st_mode`.
inline file_type type_of(mode_t mode) noexcept {
  if (S_ISREG(mode)) return file_type::regular;
  if (S_ISDIR(mode)) return file_type::directory;
  if (S_ISLNK(mode)) return file_type::symlink;
  return file_type::other;
}

//! A `struct stat` as the contract reports it (`allocated` in bytes).
inline file_stat to_file_stat(const struct stat& st) noexcept {
  file_stat s;
  s.type = type_of(st.st_mode);
  s.size = static_cast<std::uint64_t>(st.st_size);
  s.allocated = static_cast<std::uint64_t>(st.st_blocks) * 512;
  s.mtime = to_file_time(st.st_mtim);
  s.ctime = to_file_time(st.st_ctim);
  s.ino = st.st_ino;
  s.dev = st.st_dev;
  s.nlink = st.st_nlink;
  return s;
}

//! One data segment of a file (a range between holes).
struct segment {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

//! The data segments of `fd` below `limit`, found with SEEK_DATA/SEEK_HOLE.
inline int data_segments(int fd, std::uint64_t limit, std::vector<segment>& out) {
  std::uint64_t pos = 0;
  while (pos < limit) {
    const off_t data = ::lseek(fd, static_cast<off_t>(pos), SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // only a hole from here to the end
      if (errno == EINVAL && pos == 0) {  // no SEEK_DATA here: all of it is data
        out.push_back({0, limit});
        break;
      }
      return errno;
    }
    if (static_cast<std::uint64_t>(data) >= limit) break;
    const off_t hole = ::lseek(fd, data, SEEK_HOLE);
    if (hole < 0) return errno;
    const std::uint64_t end = std::min<std::uint64_t>(static_cast<std::uint64_t>(hole), limit);
    out.push_back({static_cast<std::uint64_t>(data), end - static_cast<std::uint64_t>(data)});
    pos = end;
  }
  return 0;
}

//! Bytes of data below `limit`, from the extent map (FIEMAP, a batch of
//! extents per call). After a clone this stands in for the SEEK_DATA/SEEK_HOLE
//! walk, two system calls per data segment: on btrfs that walk took longer
//! than the clone of a 200-extent image itself. Unwritten (preallocated)
//! extents read as zeros and are not data, as SEEK_DATA says. Returns the
//! errno; EOPNOTSUPP where the filesystem has no FIEMAP.
inline int mapped_data_bytes(int fd, std::uint64_t limit, std::uint64_t& out) {
  const std::size_t bytes = sizeof(struct fiemap) + fiemap_batch * sizeof(struct fiemap_extent);
  std::vector<std::uint64_t> buffer((bytes + 7) / 8);  // struct fiemap wants 8-byte alignment
  auto* map = reinterpret_cast<struct fiemap*>(buffer.data());
  out = 0;
  std::uint64_t pos = 0;
  while (pos < limit) {
    std::memset(map, 0, sizeof *map);
    map->fm_start = pos;
    map->fm_length = limit - pos;
    map->fm_extent_count = fiemap_batch;
    if (retry_eintr(::ioctl, fd, ioc_fiemap, map) < 0) return errno;
    if (map->fm_mapped_extents == 0) break;
    bool last = false;
    for (std::uint32_t i = 0; i < map->fm_mapped_extents; ++i) {
      const struct fiemap_extent& e = map->fm_extents[i];
      last = last || (e.fe_flags & FIEMAP_EXTENT_LAST);
      if (e.fe_flags & FIEMAP_EXTENT_UNWRITTEN) continue;
      const std::uint64_t a = std::max<std::uint64_t>(e.fe_logical, pos);
      const std::uint64_t b = std::min<std::uint64_t>(e.fe_logical + e.fe_length, limit);
      if (b > a) out += b - a;
    }
    const struct fiemap_extent& tail = map->fm_extents[map->fm_mapped_extents - 1];
    const std::uint64_t next = tail.fe_logical + tail.fe_length;
    if (last || next <= pos) break;
    pos = next;
  }
  return 0;
}

//! Asks the kernel for the source's data segments up to `readahead_window`
//! ahead of the copy, one segment at a time (never a hole: a hole read ahead
//! would fill the page cache with zeros).
class read_ahead {
public:
  read_ahead(int fd, const std::vector<segment>& segments) noexcept : fd_(fd), segments_(segments) {}

  //! The copy is at `pos`: keep the next window asked for. Asks again only
  //! when half of it is used, so a file of small segments costs one call
  //! per segment, not one per chunk.
  void at(std::uint64_t pos) noexcept {
    if (asked_ > pos + readahead_window / 2 || next_ >= segments_.size()) return;
    const std::uint64_t horizon = pos + readahead_window;
    while (next_ < segments_.size() && segments_[next_].offset < horizon) {
      const segment& seg = segments_[next_];
      const std::uint64_t from = std::max(seg.offset, asked_);
      const std::uint64_t to = std::min(seg.offset + seg.length, horizon);
      if (to > from)
        ::posix_fadvise(fd_, static_cast<off_t>(from), static_cast<off_t>(to - from), POSIX_FADV_WILLNEED);
      asked_ = std::max(asked_, to);
      if (seg.offset + seg.length > horizon) break;
      ++next_;
    }
  }

private:
  int fd_;
  const std::vector<segment>& segments_;
  std::size_t next_ = 0;     //!< the first segment not wholly asked for
  std::uint64_t asked_ = 0;  //!< asked for up to here
};

//! Counts the bytes a copy has moved and tells the caller's callback: after
//! each chunk, and once at the end unless the last report already said it.
class progress_meter {
public:
  progress_meter(const progress_callback& callback, std::uint64_t total) noexcept
      : callback_(callback), total_(total) {}

  //! `n` more bytes are done; false when the callback asks to stop.
  bool advance(std::uint64_t n) {
    done_ += n;
    return report();
  }
  //! The last report; false when the callback asks to stop.
  bool finish() { return reported_ && last_ == done_ ? true : report(); }

  std::uint64_t done() const noexcept { return done_; }
  //! The callback said stop (or threw, which is taken the same way).
  bool cancelled() const noexcept { return cancelled_; }

private:
  bool report() {
    if (!callback_) return true;
    reported_ = true;
    last_ = done_;
    bool go_on = false;
    try {
      go_on = callback_(done_, total_);
    } catch (...) {
      go_on = false;
    }
    cancelled_ = !go_on;
    return go_on;
  }

  const progress_callback& callback_;
  std::uint64_t total_;
  std::uint64_t done_ = 0;
  std::uint64_t last_ = 0;
  bool reported_ = false;
  bool cancelled_ = false;
};

//! Copies the segments in the kernel with `copy_file_range`.
inline int copy_segments_in_kernel(int in, int out, const std::vector<segment>& segments, progress_meter& meter) {
  read_ahead ahead(in, segments);
  for (const segment& seg : segments) {
    loff_t off_in = static_cast<loff_t>(seg.offset);
    loff_t off_out = off_in;
    std::uint64_t left = seg.length;
    while (left > 0) {
      ahead.at(static_cast<std::uint64_t>(off_in));
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(left, copy_chunk));
      const ssize_t n = retry_eintr(::copy_file_range, in, &off_in, out, &off_out, want, 0u);
      if (n < 0) return errno;
      if (n == 0) return 0;  // the source got shorter while we copied
      left -= static_cast<std::uint64_t>(n);
      if (!meter.advance(static_cast<std::uint64_t>(n))) return ECANCELED;
    }
  }
  return 0;
}

//! Copies the segments through a buffer in this process: the last resort,
//! and still sparse, since only data segments are read and written.
inline int copy_segments_buffered(int in, int out, const std::vector<segment>& segments, progress_meter& meter) {
  if (segments.empty()) return 0;
  const std::unique_ptr<char[]> buffer(new char[copy_chunk]);
  ::posix_fadvise(in, 0, 0, POSIX_FADV_SEQUENTIAL);  // only a hint
  read_ahead ahead(in, segments);
  for (const segment& seg : segments) {
    std::uint64_t offset = seg.offset;
    std::uint64_t left = seg.length;
    while (left > 0) {
      ahead.at(offset);
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(left, copy_chunk));
      std::size_t got = 0;
      if (int err = pread_full(in, buffer.get(), want, offset, got)) return err;
      if (got == 0) return 0;  // the source got shorter while we copied
      if (int err = pwrite_full(out, buffer.get(), got, offset)) return err;
      offset += got;
      left -= got;
      if (!meter.advance(got)) return ECANCELED;
    }
  }
  return 0;
}

//! A fresh, unlinked file in `dir` for the reflink probe: O_TMPFILE, or a
//! named file removed at once where the filesystem has no O_TMPFILE.
inline int probe_file(int dir, unique_fd& out) {
  int err = openat_nofollow(dir, ".", O_TMPFILE | O_RDWR, 0600, out);
  if (err != EOPNOTSUPP && err != EISDIR && err != EINVAL) return err;
  for (int attempt = 0; attempt < 16; ++attempt) {
    std::uint64_t r = 0;
    if (::getrandom(&r, sizeof r, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof r)) {
      struct timespec now;
      ::clock_gettime(CLOCK_MONOTONIC, &now);
      r = (static_cast<std::uint64_t>(now.tv_sec) * 1000000000u + static_cast<std::uint64_t>(now.tv_nsec)) ^ (static_cast<std::uint64_t>(::getpid()) << 32) ^
          static_cast<std::uint64_t>(attempt);
    }
    char hex[17];
    for (int i = 0; i < 16; ++i) hex[i] = "0123456789abcdef"[(r >> (4 * i)) & 0xf];
    hex[16] = '\0';
    const std::string name = std::string(".file-reflink-probe~") + hex;
    err = openat_nofollow(dir, name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600, out);
    if (err == EEXIST) continue;
    if (err) return err;
    if (retry_eintr(::unlinkat, dir, name.c_str(), 0) < 0) {
      err = errno;
      out.reset();
      return err;
    }
    return 0;
  }
  return EEXIST;
}

//! Reads a small sysfs attribute into `out`, without its trailing newline.
inline int read_small_file(const char* file, std::string& out) {
  unique_fd fd(retry_eintr(::open, file, O_RDONLY | O_CLOEXEC));
  if (!fd) return errno;
  out.resize(PATH_MAX + 64);
  std::size_t got = 0;
  if (int err = pread_full(fd.get(), &out[0], out.size(), 0, got)) return err;
  out.resize(got);
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return 0;
}

//! Closes a `DIR` stream (and with it its descriptor).
struct dir_closer {
  void operator()(DIR* d) const noexcept { ::closedir(d); }
};
using dir_stream = std::unique_ptr<DIR, dir_closer>;

}  // namespace linux_impl
}  // namespace detail

//! The production policy: real system calls on Linux. Stateless (every bit
//! of state lives in the `dir_handle`), so a `Pool<LinuxFsOps>` pays nothing
//! for holding it.
class LinuxFsOps {
public:
  //! An open directory, shared by its copies: the descriptor every name is
  //! resolved beneath, the absolute path it was opened as (for messages
  //! and `path_of`), and whether a clone was found not to work there.
  class dir_handle {
  public:
    //! No directory: every operation on it fails with EBADF.
    dir_handle() noexcept = default;

    //! The directory's descriptor, for callers that need one more system
    //! call (-1 for no directory). Still owned by the handle.
    int native_handle() const noexcept { return state_ ? state_->fd.get() : -1; }
    //! The absolute path the directory was opened as.
    const path& dir_path() const noexcept {
      static const path none;
      return state_ ? state_->abs : none;
    }
    //! A copy into this directory found its filesystem without reflinks;
    //! later copies go straight to the fallback.
    bool reflinks_unsupported() const noexcept { return state_ && state_->no_reflinks.load(); }
    //! Whether a directory is held.
    explicit operator bool() const noexcept { return static_cast<bool>(state_); }

  private:
    friend class LinuxFsOps;
    explicit dir_handle(std::shared_ptr<detail::linux_impl::dir_state> s) noexcept : state_(std::move(s)) {}
    std::shared_ptr<detail::linux_impl::dir_state> state_;
  };

  //! Testing knob: false makes every later call resolve names with the
  //! `O_NOFOLLOW` walk instead of `openat2`, as on a kernel older than 5.6,
  //! so tests can run both. FILE_REFLINK_NO_OPENAT2=1 in the environment
  //! starts a process with it off. Process-wide.
  static void set_use_openat2(bool use) noexcept { detail::linux_impl::openat2_enabled().store(use); }
  //! Whether names are resolved with `openat2` (false on an old kernel or
  //! after `set_use_openat2(false)`).
  static bool use_openat2() noexcept { return detail::linux_impl::openat2_enabled().load(); }

  //! Opens the directory `abs` (following symlinks: the administrator chose
  //! that path). With `create`, makes it and its missing parents, each one
  //! fsynced into its parent so that it survives a crash.
  result<opened_dir<dir_handle>> open_dir(const path& abs, bool create) const noexcept try {
    using namespace detail::linux_impl;
    std::string text = abs.native();
    if (text.empty() || text.front() != '/') {  // relative: to the working directory
      char cwd[PATH_MAX];
      if (!::getcwd(cwd, sizeof cwd)) return errno_failure(errno, "open_dir '" + text + "'");
      text = std::string(cwd) + (text.empty() ? "" : "/" + text);
    }
    while (text.size() > 1 && text.back() == '/') text.pop_back();
    const path dir(text);
    const auto fail = [&](int err) { return errno_failure(err, "open_dir '" + text + "'"); };

    detail::unique_fd fd(detail::retry_eintr(::open, text.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    bool created = false;
    if (!fd) {
      if (errno != ENOENT || !create) return fail(errno);
      if (int err = make_dirs(text, fd, created)) return fail(err);
    }
    auto state = std::make_shared<dir_state>(std::move(fd), dir);
    return opened_dir<dir_handle>{dir_handle(std::move(state)), created};
  } catch (const std::exception&) {
    return errno_failure_nothrow(ENOMEM, "open_dir");
  }

  //! stat of an absolute path, following symlinks: a pool compares its
  //! directory's identity with it to notice an unmounted filesystem.
  result<file_stat> stat_path(const path& abs) const noexcept try {
    struct stat st;
    if (detail::retry_eintr(::stat, abs.c_str(), &st) < 0)
      return errno_failure(errno, "stat_path '" + abs.string() + "'");
    return detail::linux_impl::to_file_stat(st);
  } catch (const std::exception&) {
    return errno_failure_nothrow(ENOMEM, "stat_path");
  }

  //! Removes the empty directory `abs`, then fsyncs its parent: the removal
  //! is not durable until the parent is.
  result<void> remove_dir(const path& abs) const noexcept try {
    std::string text = abs.native();
    while (text.size() > 1 && text.back() == '/') text.pop_back();
    const auto fail = [&](int err) { return errno_failure(err, "remove_dir '" + text + "'"); };
    const std::size_t slash = text.rfind('/');
    const std::string name = slash == std::string::npos ? text : text.substr(slash + 1);
    std::string parent = slash == std::string::npos ? "." : text.substr(0, slash);
    if (parent.empty()) parent = "/";
    if (name.empty() || name == "." || name == "..") return fail(EINVAL);
    detail::unique_fd dir(detail::retry_eintr(::open, parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir) return fail(errno);
    if (detail::retry_eintr(::unlinkat, dir.get(), name.c_str(), AT_REMOVEDIR) < 0) return fail(errno);
    if (detail::retry_eintr(::fsync, dir.get()) < 0) return fail(errno);
    return success();
  } catch (const std::exception&) {
    return errno_failure_nothrow(ENOMEM, "remove_dir");
  }

  //! The handle's absolute path joined with `rel`, lexically.
  path path_of(const dir_handle& h, const path& rel) const noexcept { return abs_of(h, rel); }

  //! Makes one directory, mode 0755 (less the umask).
  result<void> mkdir(const dir_handle& h, const path& rel) const noexcept try {
    detail::linux_impl::location loc;
    if (int err = named(h, rel, loc)) return fail(err, "mkdir", h, rel);
    if (detail::retry_eintr(::mkdirat, loc.dir, loc.name.c_str(), mode_t(0755)) < 0)
      return fail(errno, "mkdir", h, rel);
    return success();
  } catch (const std::exception&) {
    return errno_failure_nothrow(ENOMEM, "mkdir");
  }

  //! Removes one empty directory.
  result<void> rmdir(const dir_handle& h, const path& rel) const noexcept try {
    detail::linux_impl::location loc;
    if (int err = named(h, rel, loc)) return fail(err, "rmdir", h, rel);
    if (detail::retry_eintr(::unlinkat, loc.dir, loc.name.c_str(), AT_REMOVEDIR) < 0)
      return fail(errno, "rmdir", h, rel);
    return success();
  } catch (const std::exception&) {
    return errno_failure_nothrow(ENOMEM, "rmdir");
  }

  //! The mode of a new file: see `create`.
  static mode_t file_mode_of(const path& rel) noexcept {
    const std::string& n = rel.native();
    const std::string_view prefix = layout::reserved_prefix;
    return n.find('/') == std::string::npos && n.compare(0, prefix.size(), prefix) == 0 ? 0644 : 0600;
  }

  //! A sparse regular file of `size`, mode 0600 (an image is nobody else's
  //! business); 0644 (less the umask) for the pool's own metadata at its
  //! top (names with the reserved prefix: marker, catalog), which holds no
  //! VM data and which a user who may read the pool reads to list it. A new
  //! file that cannot be sized is removed again.
  result<void> create(const dir_handle& h, const path& rel, std::uint64_t size, create_mode mode) const noexcept try {
    using namespace detail::linux_impl;
    const bool exclusive = mode == create_mode::exclusive;
    location loc;
    if (int err = locate(h.state_.get(), rel, loc)) return fail(err, "create", h, rel);
    detail::unique_fd fd;
    if (int err = open_at(loc, O_WRONLY | O_CREAT | (exclusive ? O_EXCL : O_TRUNC), file_mode_of(rel), fd))
      return fail(err, "create", h, rel);
    detail::unlink_guard guard(loc.dir, loc.name, exclusive);
    if (detail::retry_eintr(::ftruncate, fd.get(), static_cast<off_t>(size)) < 0)
      return fail(errno, "create", h, rel);
    guard.dismiss();
    return success();
  } catch (const std::exception&) {
    return errno_failure_nothrow(ENOMEM, "create");
  }

  //! Reads up to `len` bytes at `offset`; fewer only at the end of the file.
  result<std::size_t> read(const dir_handle& h, const path& rel, std::uint64_t offset, void* buf,
                           std::size_t len) const noexcept try {
    detail::unique_fd fd;
    if (int err = detail::linux_impl::open_beneath(h.state_.get(), rel, O_RDONLY, fd))
      return fail(err, "read", h, rel);
    std::size_t got = 0;
    if (int err = detail::pread_full(fd.get(), buf, len, offset, got)) return fail(err, "read", h, rel);
    return got;
  } catch (const std::exception&) {
    return errno_failure_nothrow(ENOMEM, "read");
  }

  //! Writes all `len` bytes at `offset` (beyond the end leaves a hole).
  result<void> write(const dir_handle& h, const path& rel, std::uint64_t offset, const void* data,
                     std::size_t len) const noexcept try {
    detail::unique_fd fd;
    if (int err = detail::linux_impl::open_beneath(h.state_.get(), rel, O_WRONLY, fd))
      return fail(err, "write", h, rel);
    if (int err = detail::pwrite_full(fd.get(), data, len, offset)) return fail(err, "write", h, rel);
    return success();
  } catch (const std::exception&) {
    return errno_failure_nothrow(ENOMEM, "write");
  }

  //! Truncates or extends (sparsely) to `size`.
  result<void> resize(const dir_handle& h, const path& rel, std::uint64_t size) const noexcept try {
    detail::unique_fd fd;
    if (int err = detail::linux_impl::open_beneath(h.state_.get(), rel, O_WRONLY, fd))
      return fail(err, "resize", h, rel);
    if (detail::retry_eintr(::ftruncate, fd.get(), static_cast<off_t>(size)) < 0)
      return fail(errno, "resize", h, rel);
    return success();
  } catch (const std::exception&) {
    return errno_failure_nothrow(ENOMEM, "resize");
  }

  //! Deallocates a range (it reads as zeros after); the size stays.
  result<void> punch_hole(const dir_handle& h, const path& rel, std::uint64_t offset, std::uint64_t len) const
      noexcept try {
    detail::unique_fd fd;
    if (int err = detail::linux_impl::open_beneath(h.state_.get(), rel, O_WRONLY, fd))
      return fail(err, "punch_hole", h, rel);
    if (len == 0) return success();  // fallocate would say EINVAL for an empty range
    if (detail::retry_eintr(::fallocate, fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                            static_cast<off_t>(offset), static_cast<off_t>(len)) < 0)
      return fail(errno, "punch_hole", h, rel);
    return success();
  } catch (const std::exception&) {
    return errno_failure_nothrow(ENOMEM, "punch_hole");
  }

  //! Renames `from` to `to`, replacing `to`; a symlink is renamed, not followed.
  result<void> rename(const dir_handle& h, const path& from, const path& to) const noexcept try {
    detail::linux_impl::location a, b;
    int err = named(h, from, a);
    if (!err) err = named(h, to, b);
    if (!err && detail::retry_eintr(::renameat, a.dir, a.name.c_str(), b.dir, b.name.c_str()) < 0) err = errno;
    if (err) return fail(err, "rename", h, from, h, to);
    return success();
  } catch (const std::exception&) {
    return errno_failure_nothrow(ENOMEM, "rename");
  }

  //! A hard link `to` of `from` (EEXIST if `to` exists; a symlink is linked
  //! itself, not its target).
  result<void> link(const dir_handle& h, const path& from, const path& to) const noexcept try {
    detail::linux_impl::location a, b;
    int err = named(h, from, a);
    if (!err) err = named(h, to, b);
    if (!err && detail::retry_eintr(::linkat, a.dir, a.name.c_str(), b.dir, b.name.c_str(), 0) < 0) err = errno;
    if (err) return fail(err, "link", h, from, h, to);
    return success();
  } catch (const std::exception&) {
    return errno_failure_nothrow(ENOMEM, "link");
  }

  //! Unlinks a file or a symlink (never what it points to); EISDIR for a
  //! directory.
  result<void> remove(const dir_handle& h, const path& rel) const noexcept try {
    detail::linux_impl::location loc;
    if (int err = named(h, rel, loc)) return fail(err, "remove", h, rel);
    if (detail::retry_eintr(::unlinkat, loc.dir, loc.name.c_str(), 0) < 0) return fail(errno, "remove", h, rel);
    return success();
  } catch (const std::exception&) {
    return errno_failure_nothrow(ENOMEM, "remove");
  }

  //! Flushes a file's data and metadata, or a directory's entries ("" is
  //! the handle's directory): what makes a rename or a new name durable.
  result<void> fsync(const dir_handle& h, const path& rel) const noexcept try {
    detail::unique_fd fd;
    if (int err = detail::linux_impl::open_beneath(h.state_.get(), rel, O_RDONLY, fd))
      return fail(err, "fsync", h, rel);
    if (detail::retry_eintr(::fsync, fd.get()) < 0) return fail(errno, "fsync", h, rel);
    return success();
  } catch (const std::exception&) {
    return errno_failure_nothrow(ENOMEM, "fsync");
  }

  //! lstat: a symlink is reported as one, not followed.
  result<file_stat> stat(const dir_handle& h, const path& rel) const noexcept try {
    using namespace detail::linux_impl;
    location loc;
    if (int err = locate(h.state_.get(), rel, loc)) return fail(err, "stat", h, rel);
    struct stat st;
    if (int err = stat_at(loc, st)) return fail(err, "stat", h, rel);
    return to_file_stat(st);
  } catch (const std::exception&) {
    return errno_failure_nothrow(ENOMEM, "stat");
  }

  //! Sets the modification time (ns since the epoch) and leaves the access
  //! time alone; a symlink's own time, if it is one.
  result<void> set_mtime(const dir_handle& h, const path& rel, file_time mtime) const noexcept try {
    using namespace detail::linux_impl;
    location loc;
    if (int err = locate(h.state_.get(), rel, loc)) return fail(err, "set_mtime", h, rel);
    struct timespec times[2];
    times[0].tv_sec = 0;
    times[0].tv_nsec = UTIME_OMIT;
    if (mtime.nsec >= 1000000000u) return fail(EINVAL, "set_mtime", h, rel);
    times[1].tv_sec = static_cast<time_t>(mtime.sec);
    times[1].tv_nsec = static_cast<long>(mtime.nsec);
    if (loc.name.empty()) {  // the directory itself: through a descriptor that may change it
      detail::unique_fd fd;
      if (int err = open_at(loc, O_RDONLY | O_DIRECTORY, 0, fd)) return fail(err, "set_mtime", h, rel);
      if (::futimens(fd.get(), times) < 0) return fail(errno, "set_mtime", h, rel);
    } else if (detail::retry_eintr(::utimensat, loc.dir, loc.name.c_str(), static_cast<const struct timespec*>(times),
                                   AT_SYMLINK_NOFOLLOW) < 0) {
      return fail(errno, "set_mtime", h, rel);
    }
    return success();
  } catch (const std::exception&) {
    return errno_failure_nothrow(ENOMEM, "set_mtime");
  }

  //! The entries of a directory, without "." and "..", sorted by name.
  result<std::vector<dir_entry>> list(const dir_handle& h, const path& rel) const noexcept try {
    using namespace detail::linux_impl;
    detail::unique_fd fd;
    if (int err = open_beneath(h.state_.get(), rel, O_RDONLY | O_DIRECTORY, fd)) return fail(err, "list", h, rel);
    const dir_stream dir(::fdopendir(fd.get()));
    if (!dir) return fail(errno, "list", h, rel);
    fd.release();  // the stream owns it now
    std::vector<dir_entry> entries;
    for (;;) {
      errno = 0;
      const struct dirent* ent = ::readdir(dir.get());
      if (!ent) {
        if (errno) return fail(errno, "list", h, rel);
        break;
      }
      const std::string_view name(ent->d_name);
      if (name == "." || name == "..") continue;
      file_type type = file_type::other;
      switch (ent->d_type) {
        case DT_REG: type = file_type::regular; break;
        case DT_DIR: type = file_type::directory; break;
        case DT_LNK: type = file_type::symlink; break;
        case DT_UNKNOWN: {  // some filesystems do not say: ask the inode
          struct stat st;
          if (::fstatat(::dirfd(dir.get()), ent->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT) continue;  // removed since readdir saw it
            return fail(errno, "list", h, rel);
          }
          type = type_of(st.st_mode);
          break;
        }
        default: break;
      }
      entries.push_back(dir_entry{std::string(name), type});
    }
    std::sort(entries.begin(), entries.end(),
              [](const dir_entry& a, const dir_entry& b) { return a.name < b.name; });
    return entries;
  } catch (const std::exception&) {
    return errno_failure_nothrow(ENOMEM, "list");
  }

  //! Size and free space of the filesystem that holds the handle's directory.
  result<fs_space> statvfs(const dir_handle& h) const noexcept try {
    if (!h.state_) return fail(EBADF, "statvfs", h, path());
    struct ::statvfs vfs;
    if (detail::retry_eintr(::fstatvfs, h.state_->fd.get(), &vfs) < 0) return fail(errno, "statvfs", h, path());
    fs_space space;
    space.size = static_cast<std::uint64_t>(vfs.f_blocks) * vfs.f_frsize;
    space.free = static_cast<std::uint64_t>(vfs.f_bfree) * vfs.f_frsize;
    space.available = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    return space;
  } catch (const std::exception&) {
    return errno_failure_nothrow(ENOMEM, "statvfs");
  }

  //! The file's data extents as the filesystem maps them (FIEMAP, after a
  //! sync so delayed allocations show), each with its shared flag, none
  //! merged. Unwritten (preallocated) extents read as zeros and are not
  //! data, as SEEK_DATA and `copy` count them: XFS leaves some inside a file
  //! that grew over its speculative preallocation.
  result<std::vector<extent>> extents(const dir_handle& h, const path& rel) const noexcept try {
    using namespace detail::linux_impl;
    detail::unique_fd fd;
    if (int err = open_beneath(h.state_.get(), rel, O_RDONLY, fd)) return fail(err, "extents", h, rel);
    // struct fiemap ends in a flexible array: one buffer, 8-byte aligned.
    const std::size_t bytes = sizeof(struct fiemap) + fiemap_batch * sizeof(struct fiemap_extent);
    std::vector<std::uint64_t> buffer((bytes + 7) / 8);
    auto* map = reinterpret_cast<struct fiemap*>(buffer.data());
    std::vector<extent> out;
    std::uint64_t pos = 0;
    for (;;) {
      std::memset(map, 0, sizeof *map);
      map->fm_start = pos;
      map->fm_length = FIEMAP_MAX_OFFSET - pos;
      map->fm_flags = FIEMAP_FLAG_SYNC;
      map->fm_extent_count = fiemap_batch;
      if (detail::retry_eintr(::ioctl, fd.get(), ioc_fiemap, map) < 0) return fail(errno, "extents", h, rel);
      if (map->fm_mapped_extents == 0) break;
      bool last = false;
      for (std::uint32_t i = 0; i < map->fm_mapped_extents; ++i) {
        const struct fiemap_extent& e = map->fm_extents[i];
        last = last || (e.fe_flags & FIEMAP_EXTENT_LAST);
        if (e.fe_flags & FIEMAP_EXTENT_UNWRITTEN) continue;
        out.push_back(extent{e.fe_logical, e.fe_physical, e.fe_length, (e.fe_flags & FIEMAP_EXTENT_SHARED) != 0});
      }
      const struct fiemap_extent& tail = map->fm_extents[map->fm_mapped_extents - 1];
      const std::uint64_t next = tail.fe_logical + tail.fe_length;
      if (last || next <= pos) break;
      pos = next;
    }
    return out;
  } catch (const std::exception&) {
    return errno_failure_nothrow(ENOMEM, "extents");
  }

  //! A new file `dst` (exclusive, 0600) sharing every extent of `src`
  //! (FICLONE). No fallback: a caller that wants one uses `copy`. A failed
  //! clone leaves no `dst`.
  result<void> clone(const dir_handle& src_h, const path& src, const dir_handle& dst_h, const path& dst) const
      noexcept try {
    using namespace detail::linux_impl;
    const auto failed = [&](int err) { return fail(err, "clone", src_h, src, dst_h, dst); };
    detail::unique_fd in;
    if (int err = open_beneath(src_h.state_.get(), src, O_RDONLY, in)) return failed(err);
    location loc;
    if (int err = locate(dst_h.state_.get(), dst, loc)) return failed(err);
    detail::unique_fd out;
    if (int err = open_at(loc, O_WRONLY | O_CREAT | O_EXCL, 0600, out)) return failed(err);
    detail::unlink_guard guard(loc.dir, loc.name);
    if (detail::retry_eintr(::ioctl, out.get(), ioc_ficlone, in.get()) < 0) return failed(errno);
    guard.dismiss();
    return success();
  } catch (const std::exception&) {
    return errno_failure_nothrow(ENOMEM, "clone");
  }

  //! A new file `dst` (exclusive, 0600) with `src`'s bytes, holes kept:
  //! FICLONE; on EOPNOTSUPP/EXDEV/EINVAL/EBADF `copy_file_range` per data
  //! segment; where that cannot start (EXDEV, EOPNOTSUPP, EINVAL, ENOSYS,
  //! EBADF), reads and writes in this process. Any other errno is an error,
  //! and no failure or cancel leaves `dst` behind.
  result<copy_result> copy(const dir_handle& src_h, const path& src, const dir_handle& dst_h, const path& dst,
                           const copy_options& opts) const noexcept try {
    using namespace detail::linux_impl;
    const auto failed = [&](int err) { return fail(err, "copy", src_h, src, dst_h, dst); };
    detail::unique_fd in;
    if (int err = open_beneath(src_h.state_.get(), src, O_RDONLY, in)) return failed(err);
    struct stat st;
    if (::fstat(in.get(), &st) < 0) return failed(errno);
    if (S_ISDIR(st.st_mode)) return failed(EISDIR);
    if (!S_ISREG(st.st_mode)) return failed(EINVAL);
    location loc;
    if (int err = locate(dst_h.state_.get(), dst, loc)) return failed(err);
    detail::unique_fd out;
    if (int err = open_at(loc, O_WRONLY | O_CREAT | O_EXCL, 0600, out)) return failed(err);
    detail::unlink_guard guard(loc.dir, loc.name);

    const auto src_size = static_cast<std::uint64_t>(st.st_size);
    const std::uint64_t final_size = opts.size.value_or(src_size);
    const std::uint64_t limit = std::min(src_size, final_size);  // copy only what fits
    const auto cancelled = [&] { return file_reflink::failure(errc::cancelled, what("copy", src_h, src, dst_h, dst)); };
    // The data segments, walked only when needed: a clone counts its bytes
    // from the extent map instead (see mapped_data_bytes).
    std::vector<segment> segments;
    bool have_segments = false;
    const auto find_segments = [&]() -> int {
      if (have_segments) return 0;
      have_segments = true;
      return data_segments(in.get(), limit, segments);
    };

    copy_result res;
    dir_state& dst_state = *dst_h.state_;
    if (limit > 0 && opts.try_clone && !dst_state.no_reflinks.load()) {
      const int err = detail::retry_eintr(::ioctl, out.get(), ioc_ficlone, in.get()) == 0 ? 0 : errno;
      if (err == 0) {
        std::uint64_t total = 0;
        if (int e = mapped_data_bytes(in.get(), limit, total)) {
          if (e != EOPNOTSUPP && e != ENOTTY && e != EINVAL) return failed(e);
          if (int e2 = find_segments()) return failed(e2);
          total = 0;
          for (const segment& seg : segments) total += seg.length;
        }
        progress_meter meter(opts.progress, total);
        if (!meter.advance(total)) return cancelled();
        // A clone has the source's size; only a copy to another size cuts or extends it.
        if (final_size != src_size &&
            detail::retry_eintr(::ftruncate, out.get(), static_cast<off_t>(final_size)) < 0)
          return failed(errno);
        if (!meter.finish()) return cancelled();
        res.method = copy_method::clone;
        res.bytes = total;
        guard.dismiss();
        return res;
      }
      if (err == EOPNOTSUPP) {
        // This filesystem cannot clone. (EXDEV only says: two filesystems;
        // EINVAL can be about these two files, as btrfs says for a nodatacow
        // file and a datacow one: fall back for this copy, remember nothing.)
        if (!dst_state.no_reflinks.exchange(true)) res.reflink_unsupported_noticed = true;
      } else if (err != EXDEV && err != EBADF && err != EINVAL) {
        return failed(err);
      }
    }
    if (int err = find_segments()) return failed(err);
    std::uint64_t total = 0;
    for (const segment& seg : segments) total += seg.length;
    progress_meter meter(opts.progress, total);
    // The final size before any data: a write that extends a file lets XFS
    // preallocate beyond its end, and the next segment's write would leave
    // that preallocation allocated inside what should be a hole.
    if (detail::retry_eintr(::ftruncate, out.get(), static_cast<off_t>(final_size)) < 0) return failed(errno);
    if (limit > 0 && res.method == copy_method::none && opts.try_copy_file_range) {
      const int err = copy_segments_in_kernel(in.get(), out.get(), segments, meter);
      if (meter.cancelled()) return cancelled();
      if (err == 0)
        res.method = copy_method::copy_file_range;
      else if (meter.done() > 0 ||
               (err != EXDEV && err != EOPNOTSUPP && err != EINVAL && err != ENOSYS && err != EBADF))
        return failed(err);
    }
    if (limit > 0 && res.method == copy_method::none) {
      const int err = copy_segments_buffered(in.get(), out.get(), segments, meter);
      if (meter.cancelled()) return cancelled();
      if (err) return failed(err);
      res.method = copy_method::sparse_copy;
    }
    if (!meter.finish()) return cancelled();
    res.bytes = meter.done();
    guard.dismiss();
    return res;
  } catch (const std::exception&) {
    return errno_failure_nothrow(ENOMEM, "copy");
  }

  //! Tells every loop device backed by the file that its size changed
  //! (LOOP_SET_CAPACITY), so a running VM sees a resized disk. Returns how
  //! many were told; none attached is 0, not an error.
  result<unsigned> notify_resize(const dir_handle& h, const path& rel) const noexcept try {
    using namespace detail::linux_impl;
    location loc;
    if (int err = locate(h.state_.get(), rel, loc)) return fail(err, "notify_resize", h, rel);
    struct stat file;
    if (int err = stat_at(loc, file)) return fail(err, "notify_resize", h, rel);

    const dir_stream blocks(::opendir("/sys/block"));
    if (!blocks) {
      if (errno == ENOENT) return 0u;
      return fail(errno, "notify_resize", h, rel);
    }
    unsigned told = 0;
    std::string backing;
    for (;;) {
      errno = 0;
      const struct dirent* ent = ::readdir(blocks.get());
      if (!ent) {
        if (errno) return fail(errno, "notify_resize", h, rel);
        break;
      }
      const std::string dev(ent->d_name);
      if (dev.compare(0, 4, "loop") != 0) continue;
      // Only an attached device has a backing_file; the kernel names it as
      // seen now, with " (deleted)" once it was unlinked.
      if (read_small_file(("/sys/block/" + dev + "/loop/backing_file").c_str(), backing)) continue;
      constexpr std::string_view deleted = " (deleted)";
      if (backing.size() >= deleted.size() && std::string_view(backing).substr(backing.size() - deleted.size()) == deleted)
        backing.resize(backing.size() - deleted.size());
      struct stat st;
      if (::stat(backing.c_str(), &st) < 0 || st.st_dev != file.st_dev || st.st_ino != file.st_ino) continue;
      const std::string node = "/dev/" + dev;
      const auto failed_dev = [&](int err) {
        return errno_failure(err, "notify_resize '" + abs_of(h, rel).string() + "': " + node);
      };
      detail::unique_fd loop(detail::retry_eintr(::open, node.c_str(), O_RDONLY | O_CLOEXEC));
      if (!loop) return failed_dev(errno);
      if (detail::retry_eintr(::ioctl, loop.get(), static_cast<unsigned long>(LOOP_SET_CAPACITY), 0) < 0)
        return failed_dev(errno);
      ++told;
    }
    return told;
  } catch (const std::exception&) {
    return errno_failure_nothrow(ENOMEM, "notify_resize");
  }

  //! Whether a clone works in the handle's directory: clones a small
  //! non-empty temporary file, and leaves nothing behind. False (and the
  //! handle remembers it) on EOPNOTSUPP, EINVAL, EXDEV or ENOTTY.
  result<bool> probe_reflink(const dir_handle& h) const noexcept try {
    using namespace detail::linux_impl;
    const auto failed = [&](int err) { return fail(err, "probe_reflink", h, path()); };
    if (!h.state_) return failed(EBADF);
    const int dir = h.state_->fd.get();
    detail::unique_fd a, b;
    if (int err = probe_file(dir, a)) return failed(err);
    char data[4096];
    for (std::size_t i = 0; i < sizeof data; ++i) data[i] = static_cast<char>('a' + i % 26);
    if (int err = detail::pwrite_full(a.get(), data, sizeof data, 0)) return failed(err);
    if (int err = probe_file(dir, b)) return failed(err);
    if (detail::retry_eintr(::ioctl, b.get(), ioc_ficlone, a.get()) == 0) return true;
    const int err = errno;
    if (err != EOPNOTSUPP && err != EINVAL && err != EXDEV && err != ENOTTY) return failed(err);
    h.state_->no_reflinks.store(true);
    return false;
  } catch (const std::exception&) {
    return errno_failure_nothrow(ENOMEM, "probe_reflink");
  }

  //! An open lock file: its descriptor, shared by the handle's copies and
  //! closed with the last one. The locks are open file description locks
  //! (F_OFD_SETLK): they belong to this open, not to the process, so two
  //! opens in one process exclude each other too, and they are released when
  //! it is closed or its process dies, however it dies. On NFS (v4) they are
  //! the protocol's byte-range locks, which the server enforces between hosts.
  class lock_file {
  public:
    lock_file() noexcept = default;
    //! The descriptor (-1 for none). Still owned by the handle.
    int native_handle() const noexcept { return fd_ ? fd_->get() : -1; }
    //! Whether it was opened only for reading (a read-only pool): it takes
    //! shared locks only.
    bool read_only() const noexcept { return read_only_; }

  private:
    friend class LinuxFsOps;
    std::shared_ptr<detail::unique_fd> fd_;
    path abs_;
    bool read_only_ = false;
  };

  //! Opens (creating it, 0644 less the umask: a reader takes shared locks
  //! through a read-only open) the lock file `rel`, never through a symlink;
  //! where it cannot be opened for writing (a pool the caller may only read),
  //! opens it read-only.
  result<lock_file> open_lock(const dir_handle& h, const path& rel) const noexcept try {
    using namespace detail::linux_impl;
    location loc;
    if (int err = locate(h.state_.get(), rel, loc)) return fail(err, "open_lock", h, rel);
    detail::unique_fd fd;
    lock_file out;
    int err = open_at(loc, O_RDWR | O_CREAT, 0644, fd);
    if (err == EACCES || err == EROFS || err == EPERM) {
      err = open_at(loc, O_RDONLY, 0, fd);
      out.read_only_ = true;
    }
    if (err) return fail(err, "open_lock", h, rel);
    struct stat st;
    if (::fstat(fd.get(), &st) < 0) return fail(errno, "open_lock", h, rel);
    if (!S_ISREG(st.st_mode)) return fail(EINVAL, "open_lock", h, rel);
    out.fd_ = std::make_shared<detail::unique_fd>(std::move(fd));
    out.abs_ = abs_of(h, rel);
    return out;
  } catch (const std::exception&) {
    return errno_failure_nothrow(ENOMEM, "open_lock");
  }

  //! Locks the byte at `offset`; with `wait`, until it is granted (EINTR is
  //! retried), else false at once when another open holds a conflicting lock.
  result<bool> lock(const lock_file& f, std::uint64_t offset, lock_mode mode, bool wait) const noexcept try {
    const auto failed = [&](int err) {
      return errno_failure(err, "lock '" + f.abs_.string() + "' byte " + std::to_string(offset));
    };
    if (!f.fd_ || f.fd_->get() < 0) return failed(EBADF);
    if (offset > static_cast<std::uint64_t>(INT64_MAX)) return failed(EINVAL);
    if (f.read_only_ && mode == lock_mode::exclusive) return failed(EACCES);  // a pool it may only read
    struct flock fl;
    std::memset(&fl, 0, sizeof fl);
    fl.l_type = static_cast<short>(mode == lock_mode::exclusive ? F_WRLCK : F_RDLCK);
    fl.l_whence = SEEK_SET;
    fl.l_start = static_cast<off_t>(offset);
    fl.l_len = 1;
    if (detail::retry_eintr(::fcntl, f.fd_->get(), wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) == 0) return true;
    if (!wait && (errno == EAGAIN || errno == EACCES)) return false;
    return failed(errno);
  } catch (const std::exception&) {
    return errno_failure_nothrow(ENOMEM, "lock");
  }

  //! Releases the lock on the byte at `offset`.
  result<void> unlock(const lock_file& f, std::uint64_t offset) const noexcept try {
    const auto failed = [&](int err) {
      return errno_failure(err, "unlock '" + f.abs_.string() + "' byte " + std::to_string(offset));
    };
    if (!f.fd_ || f.fd_->get() < 0) return failed(EBADF);
    struct flock fl;
    std::memset(&fl, 0, sizeof fl);
    fl.l_type = F_UNLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = static_cast<off_t>(offset);
    fl.l_len = 1;
    if (detail::retry_eintr(::fcntl, f.fd_->get(), F_OFD_SETLK, &fl) < 0) return failed(errno);
    return success();
  } catch (const std::exception&) {
    return errno_failure_nothrow(ENOMEM, "unlock");
  }

private:
  //! `locate` for operations on a last name itself (mkdir, rename, ...):
  //! the directory alone (an empty name) is EINVAL there.
  static int named(const dir_handle& h, const path& rel, detail::linux_impl::location& loc) {
    if (int err = detail::linux_impl::locate(h.state_.get(), rel, loc)) return err;
    return loc.name.empty() ? EINVAL : 0;
  }

  //! mkdir -p from "/", each new directory fsynced into its parent; says
  //! whether the last one was made.
  static int make_dirs(const std::string& abs, detail::unique_fd& out, bool& created) {
    detail::unique_fd cur(detail::retry_eintr(::open, "/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!cur) return errno;
    std::size_t begin = 1;
    while (begin < abs.size()) {
      std::size_t end = abs.find('/', begin);
      if (end == std::string::npos) end = abs.size();
      const std::string name = abs.substr(begin, end - begin);
      begin = end + 1;
      if (name.empty() || name == ".") continue;
      created = false;
      detail::unique_fd next(detail::retry_eintr(::openat, cur.get(), name.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
      if (!next && errno == ENOENT) {
        if (detail::retry_eintr(::mkdirat, cur.get(), name.c_str(), mode_t(0755)) == 0) {
          created = true;
          detail::unique_fd parent(detail::retry_eintr(::openat, cur.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
          if (!parent || detail::retry_eintr(::fsync, parent.get()) < 0) return errno;
        } else if (errno != EEXIST) {  // EEXIST: made by someone else meanwhile
          return errno;
        }
        next.reset(detail::retry_eintr(::openat, cur.get(), name.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
      }
      if (!next) return errno;
      cur = std::move(next);
    }
    out.reset(detail::retry_eintr(::openat, cur.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    return out ? 0 : errno;
  }

  //! Where `rel` is, for messages: the handle's path joined with it.
  static path abs_of(const dir_handle& h, const path& rel) { return h.state_ ? h.state_->abs / rel : rel; }
  //! "<op> '<abs path>': <OS reason>", the errno untouched.
  static detail::linux_impl::failure_t fail(int err, const char* op, const dir_handle& h, const path& rel) {
    return errno_failure(err, std::string(op) + " '" + abs_of(h, rel).string() + "'");
  }
  //! "<op> '<abs src>' -> '<abs dst>': <OS reason>".
  static std::string what(const char* op, const dir_handle& h1, const path& rel1, const dir_handle& h2,
                          const path& rel2) {
    return std::string(op) + " '" + abs_of(h1, rel1).string() + "' -> '" + abs_of(h2, rel2).string() + "'";
  }
  static detail::linux_impl::failure_t fail(int err, const char* op, const dir_handle& h1, const path& rel1,
                                            const dir_handle& h2, const path& rel2) {
    return errno_failure(err, what(op, h1, rel1, h2, rel2));
  }
};

static_assert(std::is_empty<LinuxFsOps>::value, "LinuxFsOps keeps its state in dir_handle");
static_assert(file_reflink::is_fs_ops_v<LinuxFsOps>);

}  // namespace file_reflink

// Separately compiled: see <file_reflink/detail/extern_templates.hpp>.
#if defined(FILE_REFLINK_SEPARATE_COMPILATION)
#define FILE_REFLINK_DETAIL_HAVE_LINUX_FS_OPS
#include <file_reflink/detail/extern_templates.hpp>
#endif
