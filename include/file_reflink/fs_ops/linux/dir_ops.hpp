// SPDX-License-Identifier: BSL-1.0
//! \file
//! LinuxFsOps: the operations on directories, names, metadata and locks,
//! defined after the class. Header-only, `linux.hpp` includes this file at
//! its end; with FILE_REFLINK_SEPARATE_COMPILATION only
//! `<file_reflink/impl/src.hpp>` does.
#pragma once

#include <file_reflink/fs_ops/linux.hpp>

namespace file_reflink {

FILE_REFLINK_DECL result<opened_dir<LinuxFsOps::dir_handle>> LinuxFsOps::open_dir(const path& abs,
                                                                                  bool create) const noexcept {
  return detail::exception_boundary<result<opened_dir<LinuxFsOps::dir_handle>>>(
      [&] { return std::string("open_dir '") + abs.string() + "'"; },
      [&]() -> result<opened_dir<LinuxFsOps::dir_handle>> {
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
      });
}

FILE_REFLINK_DECL result<file_stat> LinuxFsOps::stat_path(const path& abs) const noexcept {
  return detail::exception_boundary<result<file_stat>>([&] { return std::string("stat_path '") + abs.string() + "'"; },
                                                       [&]() -> result<file_stat> {
                                                         struct stat st;
                                                         if (detail::retry_eintr(::stat, abs.c_str(), &st) < 0)
                                                           return errno_failure(errno,
                                                                                "stat_path '" + abs.string() + "'");
                                                         return detail::linux_impl::to_file_stat(st);
                                                       });
}

FILE_REFLINK_DECL result<void> LinuxFsOps::remove_dir(const path& abs) const noexcept {
  return detail::exception_boundary<result<void>>(
      [&] { return std::string("remove_dir '") + abs.string() + "'"; },
      [&]() -> result<void> {
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
      });
}

FILE_REFLINK_DECL result<path> LinuxFsOps::path_of(const dir_handle& h, const path& rel) const noexcept {
  return detail::exception_boundary<result<path>>([&] { return what("path_of", h, rel); },
                                                  [&]() -> result<path> { return abs_of(h, rel); });
}

FILE_REFLINK_DECL result<void> LinuxFsOps::mkdir(const dir_handle& h, const path& rel) const noexcept {
  return detail::exception_boundary<result<void>>(
      [&] { return what("mkdir", h, rel); },
      [&]() -> result<void> {
        detail::linux_impl::location loc;
        if (int err = named(h, rel, loc)) return fail(err, "mkdir", h, rel);
        if (detail::retry_eintr(::mkdirat, loc.dir, loc.name.c_str(), mode_t(0755)) < 0)
          return fail(errno, "mkdir", h, rel);
        return success();
      });
}

FILE_REFLINK_DECL result<void> LinuxFsOps::rmdir(const dir_handle& h, const path& rel) const noexcept {
  return detail::exception_boundary<result<void>>(
      [&] { return what("rmdir", h, rel); },
      [&]() -> result<void> {
        detail::linux_impl::location loc;
        if (int err = named(h, rel, loc)) return fail(err, "rmdir", h, rel);
        if (detail::retry_eintr(::unlinkat, loc.dir, loc.name.c_str(), AT_REMOVEDIR) < 0)
          return fail(errno, "rmdir", h, rel);
        return success();
      });
}

FILE_REFLINK_DECL mode_t LinuxFsOps::file_mode_of(const path& rel) noexcept {
  const std::string& n = rel.native();
  const std::string_view prefix = layout::reserved_prefix;
  return n.find('/') == std::string::npos && n.compare(0, prefix.size(), prefix) == 0 ? 0644 : 0600;
}

FILE_REFLINK_DECL result<std::size_t> LinuxFsOps::read(const dir_handle& h, const path& rel, std::uint64_t offset,
                                                       void* buf, std::size_t len) const noexcept {
  return detail::exception_boundary<result<std::size_t>>(
      [&] { return what("read", h, rel); },
      [&]() -> result<std::size_t> {
        detail::unique_fd fd;
        if (int err = detail::linux_impl::open_beneath(h.state_.get(), rel, O_RDONLY, fd))
          return fail(err, "read", h, rel);
        std::size_t got = 0;
        if (int err = detail::pread_full(fd.get(), buf, len, offset, got)) return fail(err, "read", h, rel);
        return got;
      });
}

FILE_REFLINK_DECL result<void> LinuxFsOps::write(const dir_handle& h, const path& rel, std::uint64_t offset,
                                                 const void* data, std::size_t len) const noexcept {
  return detail::exception_boundary<result<void>>(
      [&] { return what("write", h, rel); },
      [&]() -> result<void> {
        detail::unique_fd fd;
        if (int err = detail::linux_impl::open_beneath(h.state_.get(), rel, O_WRONLY, fd))
          return fail(err, "write", h, rel);
        if (int err = detail::pwrite_full(fd.get(), data, len, offset)) return fail(err, "write", h, rel);
        return success();
      });
}

FILE_REFLINK_DECL result<void> LinuxFsOps::punch_hole(const dir_handle& h, const path& rel, std::uint64_t offset,
                                                      std::uint64_t len) const noexcept {
  return detail::exception_boundary<result<void>>(
      [&] { return what("punch_hole", h, rel); },
      [&]() -> result<void> {
        detail::unique_fd fd;
        if (int err = detail::linux_impl::open_beneath(h.state_.get(), rel, O_WRONLY, fd))
          return fail(err, "punch_hole", h, rel);
        if (len == 0) return success();  // fallocate would say EINVAL for an empty range
        if (detail::retry_eintr(::fallocate, fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                static_cast<off_t>(offset), static_cast<off_t>(len)) < 0)
          return fail(errno, "punch_hole", h, rel);
        return success();
      });
}

FILE_REFLINK_DECL result<void> LinuxFsOps::rename(const dir_handle& h, const path& from,
                                                  const path& to) const noexcept {
  return detail::exception_boundary<result<void>>(
      [&] { return what("rename", h, from, h, to); },
      [&]() -> result<void> {
        detail::linux_impl::location a, b;
        int err = named(h, from, a);
        if (!err) err = named(h, to, b);
        if (!err && detail::retry_eintr(::renameat, a.dir, a.name.c_str(), b.dir, b.name.c_str()) < 0) err = errno;
        if (err) return fail(err, "rename", h, from, h, to);
        return success();
      });
}

FILE_REFLINK_DECL result<void> LinuxFsOps::link(const dir_handle& h, const path& from, const path& to) const noexcept {
  return detail::exception_boundary<result<void>>(
      [&] { return what("link", h, from, h, to); },
      [&]() -> result<void> {
        detail::linux_impl::location a, b;
        int err = named(h, from, a);
        if (!err) err = named(h, to, b);
        if (!err && detail::retry_eintr(::linkat, a.dir, a.name.c_str(), b.dir, b.name.c_str(), 0) < 0) err = errno;
        if (err) return fail(err, "link", h, from, h, to);
        return success();
      });
}

FILE_REFLINK_DECL result<void> LinuxFsOps::remove(const dir_handle& h, const path& rel) const noexcept {
  return detail::exception_boundary<result<void>>(
      [&] { return what("remove", h, rel); },
      [&]() -> result<void> {
        detail::linux_impl::location loc;
        if (int err = named(h, rel, loc)) return fail(err, "remove", h, rel);
        if (detail::retry_eintr(::unlinkat, loc.dir, loc.name.c_str(), 0) < 0) return fail(errno, "remove", h, rel);
        return success();
      });
}

FILE_REFLINK_DECL result<void> LinuxFsOps::fsync(const dir_handle& h, const path& rel) const noexcept {
  return detail::exception_boundary<result<void>>(
      [&] { return what("fsync", h, rel); },
      [&]() -> result<void> {
        detail::unique_fd fd;
        if (int err = detail::linux_impl::open_beneath(h.state_.get(), rel, O_RDONLY, fd))
          return fail(err, "fsync", h, rel);
        if (detail::retry_eintr(::fsync, fd.get()) < 0) return fail(errno, "fsync", h, rel);
        return success();
      });
}

FILE_REFLINK_DECL result<file_stat> LinuxFsOps::stat(const dir_handle& h, const path& rel) const noexcept {
  return detail::exception_boundary<result<file_stat>>([&] { return what("stat", h, rel); },
                                                       [&]() -> result<file_stat> {
                                                         using namespace detail::linux_impl;
                                                         location loc;
                                                         if (int err = locate(h.state_.get(), rel, loc))
                                                           return fail(err, "stat", h, rel);
                                                         struct stat st;
                                                         if (int err = stat_at(loc, st))
                                                           return fail(err, "stat", h, rel);
                                                         return to_file_stat(st);
                                                       });
}

FILE_REFLINK_DECL result<fs_space> LinuxFsOps::statvfs(const dir_handle& h) const noexcept {
  return detail::exception_boundary<result<fs_space>>("statvfs", [&]() -> result<fs_space> {
    if (!h.state_) return fail(EBADF, "statvfs", h, path());
    struct ::statvfs vfs;
    if (detail::retry_eintr(::fstatvfs, h.state_->fd.get(), &vfs) < 0) return fail(errno, "statvfs", h, path());
    fs_space space;
    space.size = static_cast<std::uint64_t>(vfs.f_blocks) * vfs.f_frsize;
    space.free = static_cast<std::uint64_t>(vfs.f_bfree) * vfs.f_frsize;
    space.available = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    return space;
  });
}

FILE_REFLINK_DECL result<LinuxFsOps::lock_file> LinuxFsOps::open_lock(const dir_handle& h,
                                                                      const path& rel) const noexcept {
  return detail::exception_boundary<result<LinuxFsOps::lock_file>>("open_lock", [&]() -> result<LinuxFsOps::lock_file> {
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
  });
}

FILE_REFLINK_DECL result<bool> LinuxFsOps::lock(const lock_file& f, std::uint64_t offset, lock_mode mode,
                                                bool wait) const noexcept {
  return detail::exception_boundary<result<bool>>("lock", [&]() -> result<bool> {
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
  });
}

FILE_REFLINK_DECL result<void> LinuxFsOps::unlock(const lock_file& f, std::uint64_t offset) const noexcept {
  return detail::exception_boundary<result<void>>("unlock", [&]() -> result<void> {
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
  });
}

FILE_REFLINK_DECL int LinuxFsOps::named(const dir_handle& h, const path& rel, detail::linux_impl::location& loc) {
  if (int err = detail::linux_impl::locate(h.state_.get(), rel, loc)) return err;
  return loc.name.empty() ? EINVAL : 0;
}

FILE_REFLINK_DECL int LinuxFsOps::make_dirs(const std::string& abs, detail::unique_fd& out, bool& created) {
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

FILE_REFLINK_DECL detail::linux_impl::failure_t LinuxFsOps::fail(int err, const char* op, const dir_handle& h,
                                                                 const path& rel) {
  return errno_failure(err, op, abs_of(h, rel).string());
}

FILE_REFLINK_DECL std::string LinuxFsOps::what(const char* op, const dir_handle& h, const path& rel) {
  return std::string(op) + " '" + abs_of(h, rel).string() + "'";
}

FILE_REFLINK_DECL std::string LinuxFsOps::what(const char* op, const dir_handle& h1, const path& rel1,
                                               const dir_handle& h2, const path& rel2) {
  return std::string(op) + " '" + abs_of(h1, rel1).string() + "' -> '" + abs_of(h2, rel2).string() + "'";
}

FILE_REFLINK_DECL detail::linux_impl::failure_t LinuxFsOps::fail(int err, const char* op, const dir_handle& h1,
                                                                 const path& rel1, const dir_handle& h2,
                                                                 const path& rel2) {
  return errno_failure(err, op, abs_of(h1, rel1).string(), abs_of(h2, rel2).string());
}

}  // namespace file_reflink
