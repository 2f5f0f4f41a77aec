// SPDX-License-Identifier: BSL-1.0
//! \file
//! LinuxFsOps: the operations that make, size, date and list files,
//! defined after the class in `linux.hpp`, which includes this file at its
//! end.
#pragma once

#include <file_reflink/fs_ops/linux.hpp>

namespace file_reflink {

FILE_REFLINK_DECL result<void> LinuxFsOps::create(const dir_handle& h, const path& rel, std::uint64_t size,
                                                  create_mode mode) const noexcept {
  return detail::exception_boundary<result<void>>(
      [&] { return what("create", h, rel); },
      [&]() -> result<void> {
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
      });
}

FILE_REFLINK_DECL result<void> LinuxFsOps::resize(const dir_handle& h, const path& rel,
                                                  std::uint64_t size) const noexcept {
  return detail::exception_boundary<result<void>>(
      [&] { return what("resize", h, rel); },
      [&]() -> result<void> {
        detail::unique_fd fd;
        if (int err = detail::linux_impl::open_beneath(h.state_.get(), rel, O_WRONLY, fd))
          return fail(err, "resize", h, rel);
        if (detail::retry_eintr(::ftruncate, fd.get(), static_cast<off_t>(size)) < 0)
          return fail(errno, "resize", h, rel);
        return success();
      });
}

FILE_REFLINK_DECL result<void> LinuxFsOps::set_mtime(const dir_handle& h, const path& rel,
                                                     file_time mtime) const noexcept {
  return detail::exception_boundary<result<void>>(
      [&] { return what("set_mtime", h, rel); },
      [&]() -> result<void> {
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
        } else if (detail::retry_eintr(::utimensat, loc.dir, loc.name.c_str(),
                                       static_cast<const struct timespec*>(times), AT_SYMLINK_NOFOLLOW) < 0) {
          return fail(errno, "set_mtime", h, rel);
        }
        return success();
      });
}

FILE_REFLINK_DECL result<std::vector<dir_entry>> LinuxFsOps::list(const dir_handle& h, const path& rel) const noexcept {
  return detail::exception_boundary<result<std::vector<dir_entry>>>(
      [&] { return what("list", h, rel); },
      [&]() -> result<std::vector<dir_entry>> {
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
            case DT_REG:
              type = file_type::regular;
              break;
            case DT_DIR:
              type = file_type::directory;
              break;
            case DT_LNK:
              type = file_type::symlink;
              break;
            case DT_UNKNOWN: {  // some filesystems do not say: ask the inode
              struct stat st;
              if (::fstatat(::dirfd(dir.get()), ent->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT) continue;  // removed since readdir saw it
                return fail(errno, "list", h, rel);
              }
              type = type_of(st.st_mode);
              break;
            }
            default:
              break;
          }
          entries.push_back(dir_entry{std::string(name), type});
        }
        std::sort(entries.begin(), entries.end(),
                  [](const dir_entry& a, const dir_entry& b) { return a.name < b.name; });
        return entries;
      });
}

}  // namespace file_reflink
