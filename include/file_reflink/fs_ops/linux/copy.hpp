// SPDX-License-Identifier: BSL-1.0
//! \file
//! LinuxFsOps internals: the two ways of moving data segments (`copy_file_range`, or a buffer in this process).
#pragma once

#include <file_reflink/detail/progress_meter.hpp>
#include <file_reflink/fs_ops/linux/segments.hpp>

namespace file_reflink {
namespace detail {
namespace linux_impl {

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

}  // namespace linux_impl
}  // namespace detail
}  // namespace file_reflink
