// SPDX-License-Identifier: BSL-1.0
//! \file
//! Real filesystems for the tests: a btrfs, an XFS (with reflinks) and an
//! ext4, each made once per test process on a sparse image attached to a
//! loop device, plus a tmpfs as "another filesystem". Everything is mounted
//! in a private mount namespace of this process, so it all vanishes with the
//! process, even on SIGKILL. Where that cannot be done (not root, no loop
//! devices, no mkfs, a kernel without the filesystem) the process says why on
//! one line and exits with 77, which ctest reports as skipped.
#pragma once

#include "loop_device.hpp"
#include "private_mounts.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace file_reflink::test {

//! Which real filesystem a fixture runs on.
enum class scratch_kind { btrfs, xfs, ext4 };

inline const char* to_string(scratch_kind k) noexcept {
  switch (k) {
    case scratch_kind::btrfs: return "btrfs";
    case scratch_kind::xfs: return "xfs";
    case scratch_kind::ext4: return "ext4";
  }
  return "?";
}

namespace detail {

inline std::string errno_text(const std::string& what, int err) { return what + ": " + std::strerror(err); }

//! The per-process state: the private namespace, the temporary directory and
//! what is mounted in it. Its destructor (at exit) unmounts and removes it all.
class ScratchState {
public:
  ScratchState(const ScratchState&) = delete;
  ScratchState& operator=(const ScratchState&) = delete;

  static ScratchState& get() {
    static ScratchState state;
    return state;
  }

  //! The mount point of `kind`, made at first use; exits with 77 on failure.
  const std::string& mount_point(scratch_kind kind) {
    auto& fs = fs_[static_cast<int>(kind)];
    if (fs.empty()) {
      std::string why = ensure_namespace();
      if (why.empty()) why = make_fs(kind, fs);
      if (!why.empty()) skip(kind, why);
    }
    return fs;
  }

  //! The tmpfs that plays "another filesystem" for EXDEV cases.
  const std::string& other_mount(scratch_kind kind) {
    mount_point(kind);
    return other_;
  }

  ~ScratchState() {
    for (auto it = mounted_.rbegin(); it != mounted_.rend(); ++it) {
      if (::umount2(it->c_str(), 0) != 0) ::umount2(it->c_str(), MNT_DETACH);
      ::rmdir(it->c_str());
    }
    if (!temp_.empty()) ::rmdir(temp_.c_str());
  }

private:
  ScratchState() = default;

  [[noreturn]] static void skip(scratch_kind kind, const std::string& why) {
    std::fprintf(stderr, "skipped: %s fixture %s\n", to_string(kind), why.c_str());
    std::fflush(stderr);
    std::exit(77);
  }

  std::string ensure_namespace() {
    if (ns_done_) return ns_error_;
    ns_done_ = true;
    if (::unshare(CLONE_NEWNS) != 0) {
      int err = errno;
      ns_error_ = (err == EPERM ? "needs root (" : "cannot run (") + errno_text("unshare", err) + ")";
      return ns_error_;
    }
    remove_stale_dirs();
    std::string tmpl = "/tmp/file_reflink_tests." + std::to_string(::getpid()) + ".XXXXXX";
    if (!::mkdtemp(tmpl.data())) {
      ns_error_ = "cannot run (" + errno_text("mkdtemp " + tmpl, errno) + ")";
      return ns_error_;
    }
    temp_ = tmpl;
    bool bound = false;
    std::string why = make_mounts_private(temp_, bound);
    if (bound) mounted_.push_back(temp_);
    if (!why.empty()) {
      ns_error_ = "cannot run (" + why + ")";
      return ns_error_;
    }
    std::string other = temp_ + "/other";
    if (::mkdir(other.c_str(), 0755) != 0 ||
        ::mount("file_reflink_tests", other.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=256m,mode=0755") != 0) {
      ns_error_ = "cannot run (" + errno_text("mount tmpfs " + other, errno) + ")";
      ::rmdir(other.c_str());
      return ns_error_;
    }
    mounted_.push_back(other);
    other_ = other;
    return "";
  }

  //! A test process killed with SIGKILL leaves its empty mount points
  //! behind (the mounts, the loop devices and the images go with it): remove
  //! those of processes that are gone. rmdir only, so nothing else is lost.
  static void remove_stale_dirs() {
    const std::string prefix = "file_reflink_tests.";
    DIR* tmp = ::opendir("/tmp");
    if (!tmp) return;
    while (const dirent* e = ::readdir(tmp)) {
      const std::string name = e->d_name;
      if (name.compare(0, prefix.size(), prefix) != 0) continue;
      const long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
      if (pid <= 0 || ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
      const std::string dir = "/tmp/" + name;
      for (const char* sub : {"btrfs", "xfs", "ext4", "other"}) ::rmdir((dir + "/" + sub).c_str());
      ::unlink((dir + "/mkfs.log").c_str());
      ::rmdir(dir.c_str());
    }
    ::closedir(tmp);
  }

  static std::string find_program(const std::string& name) {
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

  //! Run a program quietly; "" or why it failed, with the start of its output.
  std::string run(const std::vector<std::string>& argv) {
    std::string program = find_program(argv[0]);
    if (program.empty()) return argv[0] + " not found";
    std::string log = temp_ + "/mkfs.log";
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

  std::string make_fs(scratch_kind kind, std::string& mount_point) {
    const std::string name = to_string(kind);
    const std::string image = temp_ + "/" + name + ".img";
    const std::string mnt = temp_ + "/" + name;
    auto fail = [&](const std::string& why) {
      ::unlink(image.c_str());
      return "cannot run (" + why + ")";
    };
    {
      int fd = ::open(image.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd < 0) return fail(errno_text("create " + image, errno));
      int rc = ::ftruncate(fd, off_t(512) << 20);
      int err = errno;
      ::close(fd);
      if (rc != 0) return fail(errno_text("truncate " + image, err));
    }
    std::vector<std::string> mkfs;
    switch (kind) {
      case scratch_kind::btrfs: mkfs = {"mkfs.btrfs", "-q", "-f", image}; break;
      case scratch_kind::xfs: mkfs = {"mkfs.xfs", "-q", "-f", "-m", "reflink=1", image}; break;
      case scratch_kind::ext4: mkfs = {"mkfs.ext4", "-q", "-F", image}; break;
    }
    if (std::string why = run(mkfs); !why.empty()) return fail(why);

    int fd = ::open(image.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return fail(errno_text("open " + image, errno));
    LoopDevice loop;
    std::string why = loop.attach(fd);
    ::close(fd);
    if (!why.empty()) return fail(why);
    if (::mkdir(mnt.c_str(), 0755) != 0) return fail(errno_text("mkdir " + mnt, errno));
    if (::mount(loop.path().c_str(), mnt.c_str(), name.c_str(), 0, nullptr) != 0) {
      int err = errno;
      ::rmdir(mnt.c_str());
      if (err == ENODEV) return fail("the kernel lacks " + name + ": " + errno_text("mount", err));
      return fail(errno_text("mount " + loop.path() + " on " + mnt, err));
    }
    mounted_.push_back(mnt);
    // The mount holds the device now; it detaches itself (autoclear) once the
    // filesystem is unmounted, and the unlinked image is freed with it.
    loop.release();
    ::unlink(image.c_str());
    mount_point = mnt;
    return "";
  }

  bool ns_done_ = false;
  std::string ns_error_;
  std::string temp_;
  std::string other_;
  std::string fs_[3];
  std::vector<std::string> mounted_;
};

}  // namespace detail

//! The mount point of a scratch filesystem of `kind` (made at first use in
//! this process, or the process exits with 77 saying why).
inline const std::string& scratch_mount(scratch_kind kind) { return detail::ScratchState::get().mount_point(kind); }

//! A tmpfs: a filesystem other than every scratch filesystem.
inline const std::string& scratch_other_mount(scratch_kind kind) {
  return detail::ScratchState::get().other_mount(kind);
}

}  // namespace file_reflink::test
