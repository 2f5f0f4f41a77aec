// SPDX-License-Identifier: BSL-1.0
//! \file
//! LinuxFsOps internals: the system headers, the ioctl numbers and tuning
//! constants, and the conversions of what the kernel reports to the
//! contract's value types.
#pragma once

#include <file_reflink/detail/posix.hpp>
#include <file_reflink/detail/unique_fd.hpp>
#include <file_reflink/error.hpp>
#include <file_reflink/fs_types.hpp>
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
#include <limits>
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

//! Extents fetched per `FS_IOC_FIEMAP` call.
constexpr std::uint32_t fiemap_batch = 512;
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
}  // namespace file_reflink
