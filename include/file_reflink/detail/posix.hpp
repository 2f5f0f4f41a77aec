// SPDX-License-Identifier: BSL-1.0
//! \file
//! Small POSIX helpers: EINTR retry, whole-buffer positional reads and
//! writes, and an unlink that undoes a half-made file on any early exit.
//! They report an errno value (0 for success), so callers can build the
//! message that names their own operation and paths.
#pragma once

#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

namespace file_reflink {
namespace detail {

//! Calls `f(args...)` again while it fails with EINTR: a signal handled by
//! the embedding program must not turn into a failed operation.
template <class F, class... Args>
auto retry_eintr(F f, Args... args) noexcept -> decltype(f(args...)) {
  decltype(f(args...)) r;
  do {
    r = f(args...);
  } while (r == -1 && errno == EINTR);
  return r;
}

//! Reads `len` bytes at `offset`, or fewer only where the file ends;
//! `done` says how many arrived. Returns 0 or the errno.
inline int pread_full(int fd, void* buf, std::size_t len, std::uint64_t offset, std::size_t& done) noexcept {
  done = 0;
  auto* p = static_cast<char*>(buf);
  while (done < len) {
    const ssize_t n = retry_eintr(::pread, fd, p + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0) return errno;
    if (n == 0) break;  // end of file
    done += static_cast<std::size_t>(n);
  }
  return 0;
}

//! Writes all `len` bytes at `offset` (a short write is continued, not
//! reported). Returns 0 or the errno.
inline int pwrite_full(int fd, const void* buf, std::size_t len, std::uint64_t offset) noexcept {
  const auto* p = static_cast<const char*>(buf);
  std::size_t done = 0;
  while (done < len) {
    const ssize_t n = retry_eintr(::pwrite, fd, p + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0) return errno;
    if (n == 0) return EIO;  // no progress and no error: do not spin
    done += static_cast<std::size_t>(n);
  }
  return 0;
}

//! Unlinks a file this operation created unless `dismiss()` is called: a
//! failed or cancelled copy must leave no destination behind, whichever
//! way it leaves the function.
class unlink_guard {
public:
  //! Guards `name` in the directory `dir_fd`; `armed` false guards nothing
  //! (a file that existed before the operation is not ours to remove).
  unlink_guard(int dir_fd, std::string name, bool armed = true) noexcept
      : dir_fd_(dir_fd), name_(std::move(name)), armed_(armed) {}
  unlink_guard(const unlink_guard&) = delete;
  unlink_guard& operator=(const unlink_guard&) = delete;
  ~unlink_guard() {
    if (armed_) retry_eintr(::unlinkat, dir_fd_, name_.c_str(), 0);
  }
  //! The file is complete: keep it.
  void dismiss() noexcept { armed_ = false; }

private:
  int dir_fd_;
  std::string name_;
  bool armed_;
};

}  // namespace detail
}  // namespace file_reflink
