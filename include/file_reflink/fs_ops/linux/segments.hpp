// SPDX-License-Identifier: BSL-1.0
//! \file
//! LinuxFsOps internals: a file's data segments (`SEEK_DATA`/`SEEK_HOLE`),
//! its mapped bytes (the FIEMAP loop) and the read-ahead of a copy.
#pragma once

#include <file_reflink/fs_ops/linux/syscalls.hpp>

namespace file_reflink {
namespace detail {
namespace linux_impl {

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

//! Bytes of data below `limit`, from the extent map (FIEMAP, a batch of
//! extents per call). After a clone this stands in for the SEEK_DATA/SEEK_HOLE
//! walk, two system calls per data segment: on btrfs that walk took longer
//! than the clone of a 200-extent image itself. Unwritten (preallocated)
//! extents read as zeros and are not data, as SEEK_DATA says. Returns the
//! errno; EOPNOTSUPP where the filesystem has no FIEMAP.
inline int mapped_data_bytes(int fd, std::uint64_t limit, std::uint64_t& out) {
  out = 0;
  return for_each_fiemap_extent(fd, limit, false, [&](const struct fiemap_extent& e, std::uint64_t pos) {
    if (e.fe_flags & FIEMAP_EXTENT_UNWRITTEN) return;
    const std::uint64_t a = std::max<std::uint64_t>(e.fe_logical, pos);
    const std::uint64_t b = std::min<std::uint64_t>(e.fe_logical + e.fe_length, limit);
    if (b > a) out += b - a;
  });
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

}  // namespace linux_impl
}  // namespace detail
}  // namespace file_reflink
