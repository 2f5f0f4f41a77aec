// SPDX-License-Identifier: BSL-1.0
//! \file
//! `unique_fd`: sole owner of a file descriptor, closed when it goes, so an
//! early return on an error path never leaks a descriptor.
#pragma once

#include <unistd.h>

#include <utility>

namespace file_reflink {
namespace detail {

//! Owns one file descriptor (or none, -1) and closes it on destruction.
//! Move-only: two owners would close the descriptor twice.
class unique_fd {
public:
  unique_fd() noexcept = default;
  //! Takes ownership of `fd`; -1 (what a failed open returns) owns nothing.
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& other) noexcept : fd_(other.release()) {}
  unique_fd& operator=(unique_fd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }

  //! The descriptor, still owned here.
  int get() const noexcept { return fd_; }
  //! Whether a descriptor is owned.
  explicit operator bool() const noexcept { return fd_ >= 0; }

  //! Gives the descriptor up without closing it (to `fdopendir`, say).
  int release() noexcept { return std::exchange(fd_, -1); }

  //! Closes the owned descriptor and takes `fd` instead. `close` is not
  //! retried on EINTR: Linux has released the descriptor by then, and a
  //! retry could close one that another thread just opened.
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

private:
  int fd_ = -1;
};

}  // namespace detail
}  // namespace file_reflink
