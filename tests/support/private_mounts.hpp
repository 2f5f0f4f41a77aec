// SPDX-License-Identifier: BSL-1.0
//! \file
//! Private mounts for the test rig and the benchmark: after
//! `unshare(CLONE_NEWNS)`, nothing this process mounts propagates out, and
//! it all vanishes with the process.
#pragma once

#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace file_reflink::test {

//! Make the mounts of this (unshared) mount namespace private: "/"
//! recursively. In a chroot "/" is no mount point (EINVAL): then `dir`,
//! below which everything will be mounted, becomes a private mount (a bind
//! of itself) and `bound` is set, so the caller unmounts it last.
//! Returns "" or what failed, with the OS reason.
inline std::string make_mounts_private(const std::string& dir, bool& bound) {
  bound = false;
  if (::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0) return "";
  if (errno != EINVAL) return std::string("mount --make-rprivate /: ") + std::strerror(errno);
  if (::mount(dir.c_str(), dir.c_str(), nullptr, MS_BIND, nullptr) != 0)
    return "mount --bind " + dir + ": " + std::strerror(errno);
  bound = true;
  if (::mount("none", dir.c_str(), nullptr, MS_PRIVATE, nullptr) != 0)
    return "mount --make-private " + dir + ": " + std::strerror(errno);
  return "";
}

}  // namespace file_reflink::test
