// SPDX-License-Identifier: BSL-1.0
//! \file
//! LinuxFsOps: the operations on extents and data (FIEMAP, FICLONE, the
//! copy, loop devices, the reflink probe), defined after the class in
//! `linux.hpp`, which includes this file at its end.
#pragma once

#include <file_reflink/fs_ops/linux.hpp>

namespace file_reflink {

FILE_REFLINK_DECL result<std::vector<extent>> LinuxFsOps::extents(const dir_handle& h, const path& rel) const noexcept try {
  using namespace detail::linux_impl;
  detail::unique_fd fd;
  if (int err = open_beneath(h.state_.get(), rel, O_RDONLY, fd)) return fail(err, "extents", h, rel);
  std::vector<extent> out;
  const int err = for_each_fiemap_extent(fd.get(), FIEMAP_MAX_OFFSET, true, [&](const struct fiemap_extent& e, std::uint64_t) {
    if (e.fe_flags & FIEMAP_EXTENT_UNWRITTEN) return;
    out.push_back(extent{e.fe_logical, e.fe_physical, e.fe_length, (e.fe_flags & FIEMAP_EXTENT_SHARED) != 0});
  });
  if (err) return fail(err, "extents", h, rel);
  return out;
} catch (const std::exception&) {
  return errno_failure_nothrow(ENOMEM, "extents");
}

FILE_REFLINK_DECL result<void> LinuxFsOps::clone(const dir_handle& src_h, const path& src, const dir_handle& dst_h, const path& dst) const
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

FILE_REFLINK_DECL result<copy_result> LinuxFsOps::copy(const dir_handle& src_h, const path& src, const dir_handle& dst_h, const path& dst,
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
      detail::progress_meter meter(opts.progress, total);
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
  detail::progress_meter meter(opts.progress, total);
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

FILE_REFLINK_DECL result<unsigned> LinuxFsOps::notify_resize(const dir_handle& h, const path& rel) const noexcept try {
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

FILE_REFLINK_DECL result<bool> LinuxFsOps::probe_reflink(const dir_handle& h) const noexcept try {
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

}  // namespace file_reflink
