// SPDX-License-Identifier: BSL-1.0
//! \file
//! LinuxFsOps: the operations on extents and data (FIEMAP, data segments,
//! FICLONE, copy_file_range, loop devices, the reflink probe), defined after the class in
//! `linux.hpp`, which includes this file at its end.
#pragma once

#include <file_reflink/fs_ops/linux.hpp>

namespace file_reflink {

namespace detail {
namespace linux_impl {
//! The data extents FIEMAP maps in `fd` (unwritten ones left out), each
//! with its shared flag when `shared_flags`. Returns 0 or the errno.
inline int fiemap_data_extents(int fd, bool shared_flags, std::vector<extent>& out) {
  return for_each_fiemap_extent(fd, FIEMAP_MAX_OFFSET, true, [&](const struct fiemap_extent& e, std::uint64_t) {
    if (e.fe_flags & FIEMAP_EXTENT_UNWRITTEN) return;
    constexpr std::uint32_t inexact = FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC | FIEMAP_EXTENT_ENCODED |
                                      FIEMAP_EXTENT_DATA_ENCRYPTED | FIEMAP_EXTENT_NOT_ALIGNED |
                                      FIEMAP_EXTENT_DATA_INLINE | FIEMAP_EXTENT_DATA_TAIL;
    out.push_back(extent{e.fe_logical, e.fe_physical, e.fe_length,
                         shared_flags && (e.fe_flags & FIEMAP_EXTENT_SHARED) != 0, (e.fe_flags & inexact) == 0});
  });
}
}  // namespace linux_impl
}  // namespace detail

FILE_REFLINK_DECL result<std::vector<extent>> LinuxFsOps::extents(const dir_handle& h, const path& rel) const noexcept {
  return detail::exception_boundary<result<std::vector<extent>>>(
      [&] { return what("extents", h, rel); },
      [&]() -> result<std::vector<extent>> {
        using namespace detail::linux_impl;
        detail::unique_fd fd;
        if (int err = open_beneath(h.state_.get(), rel, O_RDONLY, fd)) return fail(err, "extents", h, rel);
        std::vector<extent> out;
        if (int err = fiemap_data_extents(fd.get(), true, out)) return fail(err, "extents", h, rel);
        return out;
      });
}

FILE_REFLINK_DECL result<std::vector<extent>> LinuxFsOps::storage_extents(const dir_handle& h,
                                                                          const path& rel) const noexcept {
  return detail::exception_boundary<result<std::vector<extent>>>(
      [&] { return what("storage_extents", h, rel); },
      [&]() -> result<std::vector<extent>> {
        using namespace detail::linux_impl;
        detail::unique_fd fd;
        if (int err = open_beneath(h.state_.get(), rel, O_RDONLY, fd)) return fail(err, "storage_extents", h, rel);
        std::vector<extent> out;
        int err = 0;
        if (!btrfs_storage_extents(fd.get(), err, out)) err = fiemap_data_extents(fd.get(), false, out);
        if (err) return fail(err, "storage_extents", h, rel);
        return out;
      });
}

FILE_REFLINK_DECL result<void> LinuxFsOps::clone(const dir_handle& src_h, const path& src, const dir_handle& dst_h,
                                                 const path& dst) const noexcept {
  return detail::exception_boundary<result<void>>(
      [&] { return what("clone", src_h, src, dst_h, dst); },
      [&]() -> result<void> {
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
      });
}

FILE_REFLINK_DECL result<std::vector<segment>> LinuxFsOps::data_segments(const dir_handle& h, const path& rel,
                                                                         std::uint64_t limit) const noexcept {
  return detail::exception_boundary<result<std::vector<segment>>>(
      [&] { return what("data_segments", h, rel); },
      [&]() -> result<std::vector<segment>> {
        using namespace detail::linux_impl;
        detail::unique_fd fd;
        if (int err = open_beneath(h.state_.get(), rel, O_RDONLY, fd)) return fail(err, "data_segments", h, rel);
        struct stat st;
        if (::fstat(fd.get(), &st) < 0) return fail(errno, "data_segments", h, rel);
        if (S_ISDIR(st.st_mode)) return fail(EISDIR, "data_segments", h, rel);
        std::vector<segment> out;
        if (int err = detail::linux_impl::data_segments(fd.get(), limit, out))
          return fail(err, "data_segments", h, rel);
        return out;
      });
}

FILE_REFLINK_DECL result<std::uint64_t> LinuxFsOps::copy_range(const dir_handle& src_h, const path& src,
                                                               const dir_handle& dst_h, const path& dst,
                                                               std::uint64_t offset, std::uint64_t len) const noexcept {
  return detail::exception_boundary<result<std::uint64_t>>(
      [&] { return what("copy_range", src_h, src, dst_h, dst); },
      [&]() -> result<std::uint64_t> {
        using namespace detail::linux_impl;
        const auto failed = [&](int err) { return fail(err, "copy_range", src_h, src, dst_h, dst); };
        detail::unique_fd in, out;
        if (int err = open_beneath(src_h.state_.get(), src, O_RDONLY, in)) return failed(err);
        if (int err = open_beneath(dst_h.state_.get(), dst, O_WRONLY, out)) return failed(err);
        if (offset > static_cast<std::uint64_t>(std::numeric_limits<loff_t>::max())) return failed(EINVAL);
        loff_t off_in = static_cast<loff_t>(offset);
        loff_t off_out = off_in;
        const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(len, std::uint64_t(1) << 30));
        const ssize_t n = detail::retry_eintr(::copy_file_range, in.get(), &off_in, out.get(), &off_out, want, 0u);
        if (n < 0) return failed(errno);
        return static_cast<std::uint64_t>(n);
      });
}

FILE_REFLINK_DECL result<void> LinuxFsOps::advise_willneed(const dir_handle& h, const path& rel, std::uint64_t offset,
                                                          std::uint64_t len) const noexcept {
  return detail::exception_boundary<result<void>>(
      [&] { return what("advise_willneed", h, rel); },
      [&]() -> result<void> {
        constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<off_t>::max());
        if (offset > max) return fail(EINVAL, "advise_willneed", h, rel);
        detail::unique_fd fd;
        if (int err = detail::linux_impl::open_beneath(h.state_.get(), rel, O_RDONLY, fd))
          return fail(err, "advise_willneed", h, rel);
        struct stat st;
        if (::fstat(fd.get(), &st) < 0) return fail(errno, "advise_willneed", h, rel);
        if (S_ISDIR(st.st_mode)) return fail(EISDIR, "advise_willneed", h, rel);
        const int err = ::posix_fadvise(fd.get(), static_cast<off_t>(offset),
                                        static_cast<off_t>(std::min(len, max - offset)), POSIX_FADV_WILLNEED);
        if (err) return fail(err, "advise_willneed", h, rel);
        return success();
      });
}

FILE_REFLINK_DECL result<unsigned> LinuxFsOps::notify_resize(const dir_handle& h, const path& rel) const noexcept {
  return detail::exception_boundary<result<unsigned>>(
      [&] { return what("notify_resize", h, rel); },
      [&]() -> result<unsigned> {
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
          if (backing.size() >= deleted.size() &&
              std::string_view(backing).substr(backing.size() - deleted.size()) == deleted)
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
      });
}

FILE_REFLINK_DECL result<bool> LinuxFsOps::probe_reflink(const dir_handle& h) const noexcept {
  return detail::exception_boundary<result<bool>>("probe_reflink", [&]() -> result<bool> {
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
  });
}

}  // namespace file_reflink
