// SPDX-License-Identifier: BSL-1.0
//! \file
//! A filesystem made on a sparse image, attached to a loop device and
//! mounted in a `private_mount_dir`: the scratch filesystems of the tests
//! (scratch_fs.hpp) and the benchmark's (tests/bench/mounts.hpp).
#pragma once

#include "loop_device.hpp"
#include "private_mounts.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace file_reflink::test {

namespace detail {

inline std::string errno_text(const std::string& what, int err) { return what + ": " + std::strerror(err); }

}  // namespace detail

//! Where program `name` is: on PATH, else in the sbin and bin directories
//! (mkfs lives in sbin); "" if nowhere.
inline std::string find_program(const std::string& name) {
  std::string dirs = std::getenv("PATH") ? std::getenv("PATH") : "";
  dirs += ":/usr/sbin:/sbin:/usr/bin:/bin";
  std::stringstream ss(dirs);
  for (std::string dir; std::getline(ss, dir, ':');) {
    if (dir.empty()) continue;
    std::string p = dir + "/" + name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

//! Run a program quietly, its output in the file `log` (removed after);
//! "" or why it failed, with the start of its output.
inline std::string run_program(const std::vector<std::string>& argv, const std::string& log) {
  using detail::errno_text;
  std::string program = find_program(argv[0]);
  if (program.empty()) return argv[0] + " not found";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int err = ::posix_spawn(&pid, program.c_str(), &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) return errno_text(program, err);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return errno_text("waitpid " + argv[0], errno);
  }
  std::string first;
  {
    std::ifstream in(log);
    std::getline(in, first);
  }
  ::unlink(log.c_str());
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  std::string how = WIFEXITED(status) ? "exited with " + std::to_string(WEXITSTATUS(status))
                                      : "killed by signal " + std::to_string(WTERMSIG(status));
  return argv[0] + " " + how + (first.empty() ? "" : ": " + first);
}

//! Make a filesystem of `type` ("btrfs", "xfs" with reflinks, "ext4", with
//! `mkfs_options` added) on a new sparse image of `size` bytes in `dir`,
//! attach it to a loop device, call `on_loop(device)`, and mount it on
//! `dir`/`type`, recorded in `dir` (unmounted with it). The mount then holds
//! the device: it detaches itself (autoclear) once the filesystem is
//! unmounted, and the image, unlinked already, is freed with it. Returns ""
//! and sets `mount_point`, or returns what failed, leaving no image, device
//! or mount behind.
template <class OnLoop>
std::string make_image_fs(private_mount_dir& dir, const std::string& type, std::uint64_t size,
                          const std::vector<std::string>& mkfs_options, OnLoop&& on_loop, std::string& mount_point) {
  using detail::errno_text;
  const std::string image = dir.path() + "/" + type + ".img";
  const std::string mnt = dir.path() + "/" + type;
  auto fail = [&](const std::string& why) {
    ::unlink(image.c_str());
    return why;
  };
  std::vector<std::string> mkfs;
  if (type == "btrfs") mkfs = {"mkfs.btrfs", "-q", "-f"};
  else if (type == "xfs") mkfs = {"mkfs.xfs", "-q", "-f", "-m", "reflink=1"};
  else if (type == "ext4") mkfs = {"mkfs.ext4", "-q", "-F"};
  else return "no mkfs for " + type;
  mkfs.insert(mkfs.end(), mkfs_options.begin(), mkfs_options.end());
  mkfs.push_back(image);
  {
    int fd = ::open(image.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return fail(errno_text("create " + image, errno));
    int rc = ::ftruncate(fd, static_cast<off_t>(size));
    int err = errno;
    ::close(fd);
    if (rc != 0) return fail(errno_text("truncate " + image, err));
  }
  if (std::string why = run_program(mkfs, dir.path() + "/mkfs.log"); !why.empty()) return fail(why);

  int fd = ::open(image.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return fail(errno_text("open " + image, errno));
  LoopDevice loop;
  std::string why = loop.attach(fd);
  ::close(fd);
  if (!why.empty()) return fail(why);
  on_loop(loop);
  if (::mkdir(mnt.c_str(), 0755) != 0) return fail(errno_text("mkdir " + mnt, errno));
  if (::mount(loop.path().c_str(), mnt.c_str(), type.c_str(), 0, nullptr) != 0) {
    int err = errno;
    ::rmdir(mnt.c_str());
    if (err == ENODEV) return fail("the kernel lacks " + type + ": " + errno_text("mount", err));
    return fail(errno_text("mount " + loop.path() + " on " + mnt, err));
  }
  dir.mounted(mnt);
  loop.release();  // the mount holds the device now
  ::unlink(image.c_str());
  mount_point = mnt;
  return "";
}

}  // namespace file_reflink::test
