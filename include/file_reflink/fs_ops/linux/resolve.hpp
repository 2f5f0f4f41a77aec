// SPDX-License-Identifier: BSL-1.0
//! \file
//! LinuxFsOps internals: path resolution beneath an open directory, never
//! through a symlink (`openat2`, or a walk one component at a time), and the
//! probe file of the reflink check.
#pragma once

#include <file_reflink/detail/path_rules.hpp>
#include <file_reflink/fs_ops/linux/syscalls.hpp>

namespace file_reflink {
namespace detail {
namespace linux_impl {

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

}  // namespace linux_impl
}  // namespace detail
}  // namespace file_reflink
