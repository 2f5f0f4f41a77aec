// SPDX-License-Identifier: BSL-1.0
//! \file
//! The benchmark's filesystems: btrfs, XFS (reflink=1) and ext4, each on a
//! sparse image on a loop device, mounted in a private mount namespace of
//! this process, made as the test rig makes them (tests/support/image_fs.hpp)
//! but larger (the volumes' images are 1 GiB each) and with the loop device in
//! direct-I/O mode where the images' filesystem allows it, so that the loop
//! filesystem's page cache is the only one: a cold read is a read from the
//! disk, not from the page cache of the file the loop device sits on.
//! Everything vanishes with the process.
#pragma once

#include "../support/image_fs.hpp"
#include "../support/loop_device.hpp"
#include "../support/private_mounts.hpp"

#include <linux/loop.h>
#include <sched.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace file_reflink::bench {

//! The private namespace, its temporary directory and the filesystems in it;
//! the destructor unmounts and removes it all.
class scratch_mounts {
public:
  //! The private namespace and the temporary directory under `base`; ""
  //! or why not.
  std::string enter(const std::string& base) {
    if (::unshare(CLONE_NEWNS) != 0)
      return std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno) + (errno == EPERM ? " (needs root)" : "");
    return dir_.make(base, "file_reflink_bench.");
  }

  //! Make and mount a filesystem of type `type` ("btrfs", "xfs", "ext4") on
  //! an image of `size` bytes; its mount point, or "" and `why`. `quiet`:
  //! ext4's inode tables and journal are written now, not by a background
  //! thread during the measurements (slower to make, and to remove: the
  //! image's blocks are freed, and discarded, when it is unmounted).
  std::string make(const std::string& type, std::uint64_t size, bool quiet, std::string& why) {
    std::vector<std::string> options;
    if (type == "ext4" && quiet) options = {"-E", "lazy_itable_init=0,lazy_journal_init=0"};
    std::string mnt;
    why = test::make_image_fs(
        dir_, type, size, options,
        [&](const test::LoopDevice& loop) {
          direct_io_ = ::ioctl(loop.fd(), LOOP_SET_DIRECT_IO, 1UL) == 0 && direct_io_;
        },
        mnt);
    return why.empty() ? mnt : "";
  }

  //! Every loop device took direct I/O.
  bool direct_io() const noexcept { return direct_io_; }
  //! Where the images are.
  const std::string& dir() const noexcept { return dir_.path(); }

private:
  test::private_mount_dir dir_;
  bool direct_io_ = true;
};

}  // namespace file_reflink::bench
