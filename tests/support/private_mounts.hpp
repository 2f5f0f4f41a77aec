// SPDX-License-Identifier: BSL-1.0
//! \file
//! Private mounts for the test rig and the benchmark: after
//! `unshare(CLONE_NEWNS)`, nothing this process mounts propagates out, and
//! it all vanishes with the process.
#pragma once

#include <dirent.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

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

//! A process killed with SIGKILL leaves its empty mount points behind (the
//! mounts, the loop devices and the images go with it): remove the
//! directories `base`/`prefix`<pid>.* of processes that are gone, with their
//! mount points and a leftover mkfs.log. rmdir only, so nothing else is lost.
inline void remove_stale_dirs(const std::string& base, const std::string& prefix) {
  DIR* tmp = ::opendir(base.c_str());
  if (!tmp) return;
  while (const dirent* e = ::readdir(tmp)) {
    const std::string name = e->d_name;
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
    if (pid <= 0 || ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    const std::string dir = base + "/" + name;
    for (const char* sub : {"btrfs", "xfs", "ext4", "other"}) ::rmdir((dir + "/" + sub).c_str());
    ::unlink((dir + "/mkfs.log").c_str());
    ::rmdir(dir.c_str());
  }
  ::closedir(tmp);
}

//! This process's temporary directory in its private mount namespace, and
//! what is mounted in it. The destructor unmounts it all, the last mount
//! first (detaching a mount that is still busy), and removes the mount points
//! and the directory, whatever failed before.
class private_mount_dir {
public:
  private_mount_dir() = default;
  private_mount_dir(const private_mount_dir&) = delete;
  private_mount_dir& operator=(const private_mount_dir&) = delete;
  ~private_mount_dir() {
    for (auto it = mounted_.rbegin(); it != mounted_.rend(); ++it) {
      if (::umount2(it->c_str(), 0) != 0) ::umount2(it->c_str(), MNT_DETACH);
      ::rmdir(it->c_str());
    }
    if (!temp_.empty()) ::rmdir(temp_.c_str());
  }

  //! After `unshare(CLONE_NEWNS)`: the directory `base`/`prefix`<pid>.XXXXXX
  //! (those that killed processes left removed first), with the mounts made
  //! private. Returns "" or what failed.
  std::string make(const std::string& base, const std::string& prefix) {
    remove_stale_dirs(base, prefix);
    std::string tmpl = base + "/" + prefix + std::to_string(::getpid()) + ".XXXXXX";
    if (!::mkdtemp(tmpl.data())) {
      const int err = errno;
      return "mkdtemp " + tmpl + ": " + std::strerror(err);
    }
    temp_ = tmpl;
    bool bound = false;
    std::string why = make_mounts_private(temp_, bound);
    if (bound) mounted_.push_back(temp_);
    return why;
  }

  //! Record a mount on `mount_point` (a directory below `path()`), to be
  //! unmounted before those recorded earlier.
  void mounted(const std::string& mount_point) { mounted_.push_back(mount_point); }

  //! The directory; "" before `make`.
  const std::string& path() const noexcept { return temp_; }

private:
  std::string temp_;
  std::vector<std::string> mounted_;
};

}  // namespace file_reflink::test
