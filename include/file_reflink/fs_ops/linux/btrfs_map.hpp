// SPDX-License-Identifier: BSL-1.0
//! \file
//! LinuxFsOps internals: a btrfs file's extent map read from the
//! subvolume's tree (`BTRFS_IOC_TREE_SEARCH_V2`), the file extent items
//! themselves, for `storage_extents`. FIEMAP gives the same addresses but
//! looks up, for every extent, whether another file shares it; the tree
//! holds only what `storage_extents` asks for, and reads several times
//! faster. The search needs CAP_SYS_ADMIN: without it, or on another
//! filesystem, the caller maps the file with FIEMAP.
#pragma once

#include <file_reflink/fs_ops/linux/syscalls.hpp>

#include <endian.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <linux/btrfs.h>
#include <linux/btrfs_tree.h>
#include <linux/magic.h>

namespace file_reflink {
namespace detail {
namespace linux_impl {

//! Testing knob of `storage_extents`: off, every file is mapped with FIEMAP,
//! as for a caller without CAP_SYS_ADMIN.
inline std::atomic<bool>& btrfs_tree_search_enabled() noexcept {
  static std::atomic<bool> enabled{true};
  return enabled;
}

//! Set once a search was refused for want of CAP_SYS_ADMIN: the process
//! maps with FIEMAP from then on, without a flush and a refused call first.
inline std::atomic<bool>& btrfs_tree_search_refused() noexcept {
  static std::atomic<bool> refused{false};
  return refused;
}

//! Little-endian fields of an item, read without alignment.
inline std::uint64_t le64_at(const char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return le64toh(v);
}
inline std::uint16_t le16_at(const char* p) noexcept {
  std::uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return le16toh(v);
}

//! Offsets in `struct btrfs_file_extent_item` (packed, on-disk layout).
struct file_extent_layout {
  static constexpr std::size_t ram_bytes = 8;
  static constexpr std::size_t compression = 16;
  static constexpr std::size_t encryption = 17;
  static constexpr std::size_t other_encoding = 18;
  static constexpr std::size_t type = 20;
  static constexpr std::size_t inline_data = 21;  //!< an inline item ends here and holds its data
  static constexpr std::size_t disk_bytenr = 21;
  static constexpr std::size_t offset = 37;
  static constexpr std::size_t num_bytes = 45;
  static constexpr std::size_t size = 53;
};
static_assert(file_extent_layout::size == sizeof(struct btrfs_file_extent_item),
              "btrfs_file_extent_item's layout differs");

//! One file extent item as an `extent` (false: no data, a hole or a
//! preallocated range, which reads as zeros). Addresses as FIEMAP gives
//! them: an uncompressed extent's bytes at `disk_bytenr + offset`; an
//! inline, compressed or encoded one is not `exact`.
inline bool extent_of_item(std::uint64_t file_offset, const char* item, std::size_t len, extent& out) noexcept {
  using L = file_extent_layout;
  if (len < L::inline_data) return false;
  const unsigned char type = static_cast<unsigned char>(item[L::type]);
  const bool encoded = item[L::compression] != 0 || item[L::encryption] != 0 || le16_at(item + L::other_encoding) != 0;
  if (type == BTRFS_FILE_EXTENT_INLINE) {
    // In the tree beside the metadata: FIEMAP says physical 0, one block.
    const std::uint64_t bytes = le64_at(item + L::ram_bytes);
    out = extent{file_offset, 0, (bytes + 4095) / 4096 * 4096, false, false};
    return bytes != 0;
  }
  if (type != BTRFS_FILE_EXTENT_REG || len < L::size) return false;  // prealloc: unwritten
  const std::uint64_t bytenr = le64_at(item + L::disk_bytenr);
  const std::uint64_t num = le64_at(item + L::num_bytes);
  if (bytenr == 0 || num == 0) return false;  // a hole
  out = extent{file_offset, encoded ? bytenr : bytenr + le64_at(item + L::offset), num, false, !encoded};
  return true;
}

//! The data extents of the btrfs file `fd` (inode `ino`), in logical order,
//! from its subvolume's tree; physically adjacent ones joined. Returns 0, or
//! the errno of the search (EPERM without CAP_SYS_ADMIN).
inline int btrfs_file_extents(int fd, std::uint64_t ino, std::vector<extent>& out) {
  // The search copies whole items into the buffer: 64 KiB holds ~770.
  constexpr std::size_t buf_bytes = 64 * 1024;
  std::vector<std::uint64_t> storage((sizeof(struct btrfs_ioctl_search_args_v2) + buf_bytes + 7) / 8);
  auto* args = reinterpret_cast<struct btrfs_ioctl_search_args_v2*>(storage.data());
  const char* const buf = reinterpret_cast<const char*>(storage.data()) + sizeof(struct btrfs_ioctl_search_args_v2);
  std::uint64_t from = 0;
  for (;;) {
    std::memset(args, 0, sizeof *args);
    struct btrfs_ioctl_search_key& key = args->key;
    key.tree_id = 0;  // the subvolume of `fd`
    key.min_objectid = key.max_objectid = ino;
    key.min_type = key.max_type = BTRFS_EXTENT_DATA_KEY;
    key.min_offset = from;
    key.max_offset = std::numeric_limits<std::uint64_t>::max();
    key.max_transid = std::numeric_limits<std::uint64_t>::max();
    key.nr_items = std::numeric_limits<std::uint32_t>::max();
    args->buf_size = buf_bytes;
    if (retry_eintr(::ioctl, fd, BTRFS_IOC_TREE_SEARCH_V2, args) < 0) return errno;
    if (key.nr_items == 0) return 0;
    std::size_t pos = 0;
    std::uint64_t last = from;
    for (std::uint32_t i = 0; i < key.nr_items; ++i) {
      if (pos + sizeof(struct btrfs_ioctl_search_header) > buf_bytes) return EIO;
      struct btrfs_ioctl_search_header hdr;
      std::memcpy(&hdr, buf + pos, sizeof hdr);
      pos += sizeof hdr;
      if (pos + hdr.len > buf_bytes) return EIO;
      last = hdr.offset;
      extent e;
      if (hdr.objectid == ino && hdr.type == BTRFS_EXTENT_DATA_KEY && extent_of_item(hdr.offset, buf + pos, hdr.len, e)) {
        extent* prev = out.empty() ? nullptr : &out.back();
        if (prev && prev->exact && e.exact && prev->logical + prev->length == e.logical &&
            prev->physical + prev->length == e.physical)
          prev->length += e.length;
        else
          out.push_back(e);
      }
      pos += hdr.len;
    }
    if (last == std::numeric_limits<std::uint64_t>::max()) return 0;
    from = last + 1;
  }
}

//! `storage_extents` on btrfs, when the tree can be searched: flushes the
//! file first (fdatasync: written-back data only enters the tree once its
//! ordered extent completes; a clean file costs next to nothing), then maps
//! it. Returns false when the caller should use FIEMAP instead: another
//! filesystem, not a regular file, a flush or a search refused (EPERM,
//! ENOTTY).
inline bool btrfs_storage_extents(int fd, int& err, std::vector<extent>& out) {
  err = 0;
  if (!btrfs_tree_search_enabled().load(std::memory_order_relaxed) ||
      btrfs_tree_search_refused().load(std::memory_order_relaxed))
    return false;
  struct statfs sfs;
  if (::fstatfs(fd, &sfs) < 0 || static_cast<unsigned long>(sfs.f_type) != BTRFS_SUPER_MAGIC) return false;
  struct stat st;
  if (::fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) return false;
  // A flush refused (a read-only mount says EROFS) leaves the map to
  // FIEMAP, whose own flush is what a read-only file needs.
  if (retry_eintr(::fdatasync, fd) < 0) return false;
  std::vector<extent> found;
  const int e = btrfs_file_extents(fd, static_cast<std::uint64_t>(st.st_ino), found);
  if (e == EPERM || e == EACCES) btrfs_tree_search_refused().store(true, std::memory_order_relaxed);
  if (e == EPERM || e == EACCES || e == ENOTTY || e == EOPNOTSUPP || e == EINVAL) return false;
  err = e;
  if (!e) out = std::move(found);
  return true;
}

}  // namespace linux_impl
}  // namespace detail
}  // namespace file_reflink
