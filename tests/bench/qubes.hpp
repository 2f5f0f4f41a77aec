// SPDX-License-Identifier: BSL-1.0
//! \file
//! The Qubes OS file-reflink driver's sequences (reflink.py), as bare system
//! calls on absolute paths, the way its Python makes them: every rename,
//! link and remove followed by an fsync of the directory, every new file
//! written to a temporary, fsynced and renamed into place. They are what
//! this library's reduced sequences are compared with. Each returns the
//! fsyncs it issued, or -1 on failure (errno set).
#pragma once

#include <file_reflink/detail/copy.hpp>
#include <file_reflink/fs_ops/linux.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <string>

extern char** environ;

namespace file_reflink::bench::qubes {

//! The files of one volume: "<dir>/<base>.img" and the rest.
struct volume {
  std::string dir;   //!< absolute
  std::string base;  //!< the vid's last component
  std::string clean() const { return dir + "/" + base + ".img"; }
  std::string dirty() const { return dir + "/" + base + "-dirty.img"; }
  std::string precache() const { return dir + "/" + base + "-precache.img"; }
};

namespace detail {

//! `cp --sparse=always src dst`: the driver's copy where FICLONE fails.
inline int run_cp(const std::string& src, const std::string& dst) {
  const char* argv[] = {"cp", "--sparse=always", src.c_str(), dst.c_str(), nullptr};
  pid_t pid = 0;
  if (::posix_spawnp(&pid, "cp", nullptr, nullptr, const_cast<char* const*>(argv), environ) != 0) return -1;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

inline int fsync_path(const std::string& p, int flags = O_RDONLY) {
  const int fd = ::open(p.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return -1;
  const int r = ::fsync(fd);
  ::close(fd);
  return r;
}
//! _fsync_dir
inline int fsync_dir(const std::string& dir) { return fsync_path(dir, O_RDONLY | O_DIRECTORY); }

//! _rename_file: rename, then fsync the directory.
inline int rename_file(const std::string& dir, const std::string& from, const std::string& to, int& syncs) {
  if (::rename(from.c_str(), to.c_str()) < 0) return -1;
  ++syncs;
  return fsync_dir(dir);
}

//! _remove_file: unlink, then fsync the directory; a missing file is fine.
inline int remove_file(const std::string& dir, const std::string& p, int& syncs) {
  if (::unlink(p.c_str()) < 0) return errno == ENOENT ? 0 : -1;
  ++syncs;
  return fsync_dir(dir);
}

//! A NamedTemporaryFile beside `dst` (mkstemp).
inline int temp_file(const std::string& dst, std::string& name) {
  name = dst + "~XXXXXX";
  return ::mkstemp(name.data());
}

//! _copy_file: FICLONE into a temporary (with the source's mtime when
//! asked), fsync it, rename it into place, fsync the directory.
inline int copy_file(const std::string& dir, const std::string& src, const std::string& dst, bool copy_mtime,
                     int& syncs) {
  struct stat st;
  if (::stat(src.c_str(), &st) < 0) return -1;  // getsize, for the log line
  std::string tmp;
  const int out = temp_file(dst, tmp);
  if (out < 0) return -1;
  const int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  int r = in < 0 ? -1 : ::ioctl(out, file_reflink::detail::linux_impl::ioc_ficlone, in);
  if (r < 0 && in >= 0 && (errno == EOPNOTSUPP || errno == EXDEV || errno == EINVAL)) r = run_cp(src, tmp);
  if (r == 0 && copy_mtime) {
    struct stat s2;
    ::fstat(in, &s2);
    struct timespec times[2] = {s2.st_mtim, s2.st_mtim};
    r = ::futimens(out, times);
  }
  if (in >= 0) ::close(in);
  if (r == 0) {
    r = ::fsync(out);
    ++syncs;
  }
  ::close(out);
  if (r == 0) r = rename_file(dir, tmp, dst, syncs);
  if (r != 0) ::unlink(tmp.c_str());
  return r;
}

//! The revisions on disk: number -> file (the driver's glob).
inline std::map<unsigned long, std::string> revisions(const volume& v) {
  std::map<unsigned long, std::string> out;
  DIR* d = ::opendir(v.dir.c_str());
  if (!d) return out;
  const std::string prefix = v.base + ".img.";
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.compare(0, prefix.size(), prefix) != 0 || name.find('@') == std::string::npos) continue;
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".pin") == 0) continue;
    out[std::strtoul(name.c_str() + prefix.size(), nullptr, 10)] = v.dir + "/" + name;
  }
  ::closedir(d);
  return out;
}

//! _remove_incomplete_images: the glob for temporaries (none to remove here).
inline void remove_incomplete(const volume& v) {
  DIR* d = ::opendir(v.dir.c_str());
  if (!d) return;
  while (::readdir(d)) {
  }
  ::closedir(d);
}

}  // namespace detail

//! start of an origin volume: the precache renamed into place (4.1).
inline int origin_start(const volume& v) {
  int syncs = 0;
  detail::remove_incomplete(v);
  struct stat st;
  if (::stat(v.dirty().c_str(), &st) == 0) return 0;  // is_dirty
  if (::stat(v.precache().c_str(), &st) == 0) {
    if (detail::rename_file(v.dir, v.precache(), v.dirty(), syncs) < 0) return -1;
  } else if (detail::copy_file(v.dir, v.clean(), v.dirty(), false, syncs) < 0) {
    return -1;
  }
  return syncs;
}

//! stop of an origin volume: _commit with a revision, then the precache.
inline int origin_stop(const volume& v, unsigned keep) {
  int syncs = 0;
  struct stat st;
  if (::stat(v.dirty().c_str(), &st) < 0) return -1;
  // _add_revision: a clone of the clean image, stamped with its ctime.
  if (::stat(v.clean().c_str(), &st) < 0) return -1;
  auto revs = detail::revisions(v);
  const unsigned long next = revs.empty() ? 1 : revs.rbegin()->first + 1;
  char stamp[32];
  std::time_t t = st.st_ctim.tv_sec;
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
  const std::string rev = v.clean() + "." + std::to_string(next) + "@" + stamp;
  if (detail::copy_file(v.dir, v.clean(), rev, false, syncs) < 0) return -1;
  // _prune_revisions
  revs = detail::revisions(v);
  while (revs.size() > keep) {
    if (detail::remove_file(v.dir, revs.begin()->second, syncs) < 0) return -1;
    revs.erase(revs.begin());
  }
  // _fsync_path(dirty), _rename_file(dirty, clean)
  if (detail::fsync_path(v.dirty()) < 0) return -1;
  ++syncs;
  if (detail::rename_file(v.dir, v.dirty(), v.clean(), syncs) < 0) return -1;
  // _update_precache
  if (detail::remove_file(v.dir, v.precache(), syncs) < 0) return -1;
  if (detail::copy_file(v.dir, v.clean(), v.precache(), true, syncs) < 0) return -1;
  return syncs;
}

//! start of a snapshot volume (4.0): the source's clean image copied to
//! its own clean name, then to the dirty one, each a durable copy.
inline int snapshot_start(const volume& v, const volume& source) {
  int syncs = 0;
  detail::remove_incomplete(v);
  if (detail::copy_file(v.dir, source.clean(), v.clean(), false, syncs) < 0) return -1;
  if (detail::copy_file(v.dir, v.clean(), v.dirty(), false, syncs) < 0) return -1;
  return syncs;
}

//! stop of a snapshot volume: both images removed, each durably.
inline int snapshot_stop(const volume& v) {
  int syncs = 0;
  if (detail::remove_file(v.dir, v.dirty(), syncs) < 0) return -1;
  if (detail::remove_file(v.dir, v.clean(), syncs) < 0) return -1;
  return syncs;
}

//! start of a volatile volume: _create_sparse_file through _replace_file.
inline int volatile_start(const volume& v, std::uint64_t size) {
  int syncs = 0;
  detail::remove_incomplete(v);
  std::string tmp;
  const int fd = detail::temp_file(v.dirty(), tmp);
  if (fd < 0) return -1;
  int r = ::ftruncate(fd, static_cast<off_t>(size));
  if (r == 0) {
    r = ::fsync(fd);
    ++syncs;
  }
  ::close(fd);
  if (r == 0) r = detail::rename_file(v.dir, tmp, v.dirty(), syncs);
  if (r != 0) ::unlink(tmp.c_str());
  return r < 0 ? -1 : syncs;
}

//! stop of a volatile volume: the dirty image removed durably.
inline int volatile_stop(const volume& v) {
  int syncs = 0;
  if (detail::remove_file(v.dir, v.dirty(), syncs) < 0) return -1;
  return syncs;
}

}  // namespace file_reflink::bench::qubes
