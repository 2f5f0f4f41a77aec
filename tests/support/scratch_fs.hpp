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

#include "image_fs.hpp"
#include "private_mounts.hpp"

#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

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

  // The destructor of dir_ (at exit) unmounts and removes it all.
  ~ScratchState() = default;

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
    if (std::string why = dir_.make("/tmp", "file_reflink_tests."); !why.empty()) {
      ns_error_ = "cannot run (" + why + ")";
      return ns_error_;
    }
    std::string other = dir_.path() + "/other";
    if (::mkdir(other.c_str(), 0755) != 0 ||
        ::mount("file_reflink_tests", other.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=256m,mode=0755") != 0) {
      ns_error_ = "cannot run (" + errno_text("mount tmpfs " + other, errno) + ")";
      ::rmdir(other.c_str());
      return ns_error_;
    }
    dir_.mounted(other);
    other_ = other;
    return "";
  }

  std::string make_fs(scratch_kind kind, std::string& mount_point) {
    std::string why = make_image_fs(dir_, to_string(kind), std::uint64_t(512) << 20, {}, [](const LoopDevice&) {},
                                    mount_point);
    return why.empty() ? "" : "cannot run (" + why + ")";
  }

  bool ns_done_ = false;
  std::string ns_error_;
  private_mount_dir dir_;
  std::string other_;
  std::string fs_[3];
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
