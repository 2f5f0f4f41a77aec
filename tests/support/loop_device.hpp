// SPDX-License-Identifier: BSL-1.0
//! \file
//! A loop device attached to a file through ioctls, without losetup: the
//! scratch filesystems live on one, and the notify_resize tests need a real
//! one to tell about a new size.
#pragma once

#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/mount.h>  // BLKGETSIZE64; <linux/fs.h> clashes with it on glibc 2.36
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <chrono>

namespace file_reflink::test {

//! An attached loop device. It is attached with `LO_FLAGS_AUTOCLEAR`, so it
//! detaches itself when its last user closes it: a killed test leaves no
//! device behind.
class LoopDevice {
public:
  LoopDevice() = default;
  LoopDevice(const LoopDevice&) = delete;
  LoopDevice& operator=(const LoopDevice&) = delete;
  ~LoopDevice() { close(); }

  //! Attach `backing_fd`; returns "" or what failed ("LOOP_CONFIGURE /dev/loop3: ...").
  std::string attach(int backing_fd) {
    close();
    int ctl = ::open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    if (ctl < 0) return "open /dev/loop-control: " + std::string(std::strerror(errno));
    std::string why;
    // Another process may take the device that LOOP_CTL_GET_FREE offered us
    // before we configure it (EBUSY): ask again.
    for (int attempt = 0; attempt < 64; ++attempt) {
      int n = ::ioctl(ctl, LOOP_CTL_GET_FREE);
      if (n < 0) {
        why = "LOOP_CTL_GET_FREE: " + std::string(std::strerror(errno));
        break;
      }
      std::string dev = "/dev/loop" + std::to_string(n);
      int fd = ::open(dev.c_str(), O_RDWR | O_CLOEXEC);
      if (fd < 0) {
        int err = errno;
        why = "open " + dev + ": " + std::strerror(err);
        if (err == ENOENT || err == EBUSY) {  // the node is still being made, or taken
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
          continue;
        }
        break;
      }
      int err = configure(fd, backing_fd);
      if (err == 0) {
        fd_ = fd;
        number_ = n;
        path_ = dev;
        ::close(ctl);
        return "";
      }
      ::close(fd);
      why = "attach " + dev + ": " + std::strerror(err);
      if (err != EBUSY) break;
    }
    ::close(ctl);
    return why;
  }

  //! Close our descriptor: the device detaches once nobody else holds it.
  void close() noexcept {
    if (fd_ >= 0) {
      ::ioctl(fd_, LOOP_CLR_FD, 0);  // detach now if nothing else holds it
      ::close(fd_);
    }
    fd_ = -1;
    number_ = -1;
    path_.clear();
  }

  //! Close our descriptor but keep the device attached while a mount uses it.
  void release() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  //! The size the kernel believes the device has (BLKGETSIZE64).
  std::uint64_t size() const noexcept {
    std::uint64_t bytes = 0;
    if (fd_ < 0 || ::ioctl(fd_, BLKGETSIZE64, &bytes) != 0) return 0;
    return bytes;
  }

  const std::string& path() const noexcept { return path_; }
  int number() const noexcept { return number_; }
  int fd() const noexcept { return fd_; }

private:
  static int configure(int fd, int backing_fd) noexcept {
    loop_config config{};
    config.fd = static_cast<std::uint32_t>(backing_fd);
    config.info.lo_flags = LO_FLAGS_AUTOCLEAR;
    if (::ioctl(fd, LOOP_CONFIGURE, &config) == 0) return 0;
    int err = errno;
    if (err != EINVAL && err != ENOTTY) return err;
    // A kernel older than 5.8: the two-step way.
    if (::ioctl(fd, LOOP_SET_FD, backing_fd) != 0) return errno;
    loop_info64 info{};
    info.lo_flags = LO_FLAGS_AUTOCLEAR;
    if (::ioctl(fd, LOOP_SET_STATUS64, &info) != 0) {
      err = errno;
      ::ioctl(fd, LOOP_CLR_FD, 0);
      return err;
    }
    return 0;
  }

  int fd_ = -1;
  int number_ = -1;
  std::string path_;
};

}  // namespace file_reflink::test
