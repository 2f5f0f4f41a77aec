// SPDX-License-Identifier: BSL-1.0
//! \file
//! LinuxFsOps internals: a file's data segments (`SEEK_DATA`/`SEEK_HOLE`)
//! and the FIEMAP loop.
#pragma once

#include <file_reflink/fs_ops/linux/syscalls.hpp>

namespace file_reflink {
namespace detail {
namespace linux_impl {

using file_reflink::segment;

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

//! The FIEMAP loop, written once: calls `f(extent, start)` for each extent
//! the kernel maps in [0, limit), `start` being where the batch holding it
//! began, fetching `fiemap_batch` extents per call (with FIEMAP_FLAG_SYNC
//! when `sync`, so delayed allocations show). Returns the ioctl's errno, or 0.
template <class F>
int for_each_fiemap_extent(int fd, std::uint64_t limit, bool sync, F&& f) {
  // struct fiemap ends in a flexible array: one buffer, 8-byte aligned.
  const std::size_t bytes = sizeof(struct fiemap) + fiemap_batch * sizeof(struct fiemap_extent);
  std::vector<std::uint64_t> buffer((bytes + 7) / 8);
  auto* map = reinterpret_cast<struct fiemap*>(buffer.data());
  std::uint64_t pos = 0;
  while (pos < limit) {
    std::memset(map, 0, sizeof *map);
    map->fm_start = pos;
    map->fm_length = limit - pos;
    map->fm_flags = sync ? FIEMAP_FLAG_SYNC : 0;
    map->fm_extent_count = fiemap_batch;
    if (retry_eintr(::ioctl, fd, ioc_fiemap, map) < 0) return errno;
    if (map->fm_mapped_extents == 0) break;
    bool last = false;
    for (std::uint32_t i = 0; i < map->fm_mapped_extents; ++i) {
      const struct fiemap_extent& e = map->fm_extents[i];
      last = last || (e.fe_flags & FIEMAP_EXTENT_LAST);
      f(e, pos);
    }
    const struct fiemap_extent& tail = map->fm_extents[map->fm_mapped_extents - 1];
    const std::uint64_t next = tail.fe_logical + tail.fe_length;
    if (last || next <= pos) break;
    pos = next;
  }
  return 0;
}

}  // namespace linux_impl
}  // namespace detail
}  // namespace file_reflink
