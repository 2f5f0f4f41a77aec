// SPDX-License-Identifier: BSL-1.0
//! \file
//! The benchmark's filesystems: btrfs, XFS (reflink=1) and ext4, each on a
//! sparse image on a loop device, mounted in a private mount namespace of
//! this process, as the test rig makes them (tests/support/scratch_fs.hpp),
//! but larger (the volumes' images are 1 GiB each) and with the loop device in
//! direct-I/O mode where the images' filesystem allows it, so that the loop
//! filesystem's page cache is the only one: a cold read is a read from the
//! disk, not from the page cache of the file the loop device sits on.
//! Everything vanishes with the process.
#pragma once

#include "../support/loop_device.hpp"
#include "../support/private_mounts.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

extern char** environ;

namespace file_reflink::bench {

class scratch_mounts {
public:
  scratch_mounts() = default;
  scratch_mounts(const scratch_mounts&) = delete;
  scratch_mounts& operator=(const scratch_mounts&) = delete;
  ~scratch_mounts() {
    for (auto it = mounted_.rbegin(); it != mounted_.rend(); ++it) {
      if (::umount2(it->c_str(), 0) != 0) ::umount2(it->c_str(), MNT_DETACH);
      ::rmdir(it->c_str());
    }
    if (!temp_.empty()) ::rmdir(temp_.c_str());
  }

  //! The private namespace and the temporary directory under `base`; ""
  //! or why not.
  std::string enter(const std::string& base) {
    if (::unshare(CLONE_NEWNS) != 0)
      return std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno) + (errno == EPERM ? " (needs root)" : "");
    remove_stale_dirs(base);
    std::string tmpl = base + "/file_reflink_bench." + std::to_string(::getpid()) + ".XXXXXX";
    if (!::mkdtemp(tmpl.data())) return "mkdtemp " + tmpl + ": " + std::strerror(errno);
    temp_ = tmpl;
    bool bound = false;
    std::string why = test::make_mounts_private(temp_, bound);
    if (bound) mounted_.push_back(temp_);
    return why;
  }

  //! Make and mount a filesystem of type `type` ("btrfs", "xfs", "ext4") on
  //! an image of `size` bytes; its mount point, or "" and `why`. `quiet`:
  //! ext4's inode tables and journal are written now, not by a background
  //! thread during the measurements (slower to make, and to remove: the
  //! image's blocks are freed, and discarded, when it is unmounted).
  std::string make(const std::string& type, std::uint64_t size, bool quiet, std::string& why) {
    const std::string image = temp_ + "/" + type + ".img";
    const std::string mnt = temp_ + "/" + type;
    {
      const int fd = ::open(image.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd < 0) return fail(why, image, "create " + image + ": " + std::strerror(errno));
      const int rc = ::ftruncate(fd, static_cast<off_t>(size));
      const int err = errno;
      ::close(fd);
      if (rc != 0) return fail(why, image, "truncate " + image + ": " + std::strerror(err));
    }
    std::vector<std::string> mkfs;
    if (type == "btrfs") mkfs = {"mkfs.btrfs", "-q", "-f", image};
    else if (type == "xfs") mkfs = {"mkfs.xfs", "-q", "-f", "-m", "reflink=1", image};
    else if (quiet) mkfs = {"mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", image};
    else mkfs = {"mkfs.ext4", "-q", "-F", image};
    if (std::string e = run(mkfs); !e.empty()) return fail(why, image, e);
    const int fd = ::open(image.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return fail(why, image, "open " + image + ": " + std::strerror(errno));
    test::LoopDevice loop;
    std::string e = loop.attach(fd);
    ::close(fd);
    if (!e.empty()) return fail(why, image, e);
    direct_io_ = ::ioctl(loop.fd(), LOOP_SET_DIRECT_IO, 1UL) == 0 && direct_io_;
    if (::mkdir(mnt.c_str(), 0755) != 0) return fail(why, image, "mkdir " + mnt + ": " + std::strerror(errno));
    if (::mount(loop.path().c_str(), mnt.c_str(), type.c_str(), 0, nullptr) != 0) {
      const int err = errno;
      ::rmdir(mnt.c_str());
      return fail(why, image, "mount " + type + " " + loop.path() + ": " + std::strerror(err));
    }
    mounted_.push_back(mnt);
    loop.release();  // autoclear: detached when unmounted
    ::unlink(image.c_str());
    return mnt;
  }

  //! Every loop device took direct I/O.
  bool direct_io() const noexcept { return direct_io_; }
  //! Where the images are.
  const std::string& dir() const noexcept { return temp_; }

private:
  static std::string fail(std::string& why, const std::string& image, const std::string& what) {
    ::unlink(image.c_str());
    why = what;
    return "";
  }

  //! Empty directories that a killed benchmark left (its mounts went with it).
  static void remove_stale_dirs(const std::string& base) {
    const std::string prefix = "file_reflink_bench.";
    DIR* tmp = ::opendir(base.c_str());
    if (!tmp) return;
    while (const dirent* e = ::readdir(tmp)) {
      const std::string name = e->d_name;
      if (name.compare(0, prefix.size(), prefix) != 0) continue;
      const long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
      if (pid <= 0 || ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
      const std::string dir = base + "/" + name;
      for (const char* sub : {"btrfs", "xfs", "ext4"}) ::rmdir((dir + "/" + sub).c_str());
      ::rmdir(dir.c_str());
    }
    ::closedir(tmp);
  }

  //! Run a program with its output thrown away; "" or what failed.
  static std::string run(const std::vector<std::string>& argv) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = 0;
    const int err = ::posix_spawnp(&pid, argv[0].c_str(), &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (err != 0) return argv[0] + ": " + std::strerror(err);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
      if (errno != EINTR) return "waitpid: " + std::string(std::strerror(errno));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
    return argv[0] + (WIFEXITED(status) ? " exited with " + std::to_string(WEXITSTATUS(status))
                                        : " killed by signal " + std::to_string(WTERMSIG(status)));
  }

  std::string temp_;
  std::vector<std::string> mounted_;
  bool direct_io_ = true;
};

}  // namespace file_reflink::bench
