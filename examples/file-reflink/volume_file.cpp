// SPDX-License-Identifier: BSL-1.0
#include "volume_file.hpp"

#include "errors.hpp"
#include "progress.hpp"
#include "sizes.hpp"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace file_reflink::cli {

namespace {

using json = nlohmann::ordered_json;

std::string q(const path& p) { return "'" + p.string() + "'"; }

error bad_file(const path& file, const std::string& why) {
  return error(std::make_error_code(std::errc::bad_message), "read " + q(file) + ": " + why);
}

volume_kind kind_from(const std::string& s, bool& ok) {
  ok = true;
  if (s == "origin") return volume_kind::origin;
  if (s == "volatile") return volume_kind::volatile_;
  if (s == "snapshot") return volume_kind::snapshot;
  if (s == "origin-snapshot") return volume_kind::origin_snapshot;
  ok = false;
  return volume_kind::origin;
}

json volume_to_json(const volume_config& c) {
  json j;
  j["kind"] = to_string(c.kind());
  j["size"] = c.size;
  j["rw"] = c.rw;
  if (c.source) j["source"] = *c.source;
  if (c.revisions_to_keep) j["revisions_to_keep"] = *c.revisions_to_keep;
  if (c.ephemeral) j["ephemeral"] = true;
  if (!c.name.empty() && c.name != path(c.vid).filename().string()) j["name"] = c.name;
  return j;
}

//! One volume, tolerant of what a person may have written by hand (a size
//! as "10G", a missing "rw"); the library validates the rest at init_volume.
result<volume_config> volume_from_json(const path& file, const std::string& vid, const json& j) {
  auto bad = [&](const std::string& why) { return failure(bad_file(file, "volume '" + vid + "': " + why)); };
  if (!j.is_object()) return bad("not an object");
  volume_config c;
  c.vid = vid;
  bool ok = false;
  volume_kind kind = kind_from(j.value("kind", std::string("origin")), ok);
  if (!ok) return bad("kind must be origin, volatile, snapshot or origin-snapshot");
  c.save_on_stop = kind == volume_kind::origin || kind == volume_kind::origin_snapshot;
  c.snap_on_start = kind == volume_kind::snapshot || kind == volume_kind::origin_snapshot;
  if (auto it = j.find("size"); it != j.end()) {
    if (it->is_number_unsigned()) {
      c.size = it->get<std::uint64_t>();
    } else if (it->is_string()) {
      auto s = parse_size(it->get<std::string>());
      if (!s) return bad("size " + it->dump() + " is not a size");
      c.size = *s;
    } else {
      return bad("size must be a number of bytes or a size like \"10G\"");
    }
  }
  if (auto it = j.find("rw"); it != j.end()) {
    if (!it->is_boolean()) return bad("rw must be true or false");
    c.rw = it->get<bool>();
  }
  if (auto it = j.find("source"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) return bad("source must be a vid");
    c.source = it->get<std::string>();
  }
  if (auto it = j.find("revisions_to_keep"); it != j.end() && !it->is_null()) {
    if (!it->is_number_integer()) return bad("revisions_to_keep must be an integer");
    c.revisions_to_keep = it->get<int>();
  }
  if (auto it = j.find("ephemeral"); it != j.end()) {
    if (!it->is_boolean()) return bad("ephemeral must be true or false");
    c.ephemeral = it->get<bool>();
  }
  if (auto it = j.find("name"); it != j.end()) {
    if (!it->is_string()) return bad("name must be a string");
    c.name = it->get<std::string>();
  }
  return c;
}

//! write(2) all of it, through EINTR.
int write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return 0;
}

//! The whole file into `text`; 0 or the errno.
int read_all(const path& file, std::string& text) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return err;
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return 0;
}

int fsync_retry(int fd) {
  while (::fsync(fd) != 0)
    if (errno != EINTR) return errno;
  return 0;
}

}  // namespace

result<VolumeFile> read_volume_file(const path& dir) {
  path file = dir / volume_file_name;
  VolumeFile out;
  std::string text;
  if (int err = read_all(file, text)) {
    if (err == ENOENT) return out;
    return errno_failure(err, "read " + q(file));
  }
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return failure(bad_file(file, "not valid JSON"));
  if (!j.is_object()) return failure(bad_file(file, "not a JSON object"));
  out.exists = true;
  if (auto it = j.find("pool"); it != j.end()) {
    if (!it->is_object()) return failure(bad_file(file, "\"pool\" is not an object"));
    auto r = it->find("revisions_to_keep");
    if (r != it->end()) {
      if (!r->is_number_integer()) return failure(bad_file(file, "pool revisions_to_keep must be an integer"));
      out.pool.revisions_to_keep = r->get<int>();
    }
    auto s = it->find("setup_check");
    if (s != it->end()) {
      if (!s->is_boolean()) return failure(bad_file(file, "pool setup_check must be true or false"));
      out.pool.setup_check = s->get<bool>();
    }
  }
  if (auto it = j.find("volumes"); it != j.end()) {
    if (!it->is_object()) return failure(bad_file(file, "\"volumes\" is not an object (vid: config)"));
    for (auto& [vid, v] : it->items()) {
      FILE_REFLINK_TRY(auto c, volume_from_json(file, vid, v));
      out.volumes.emplace(vid, std::move(c));
    }
  }
  return out;
}

result<void> write_volume_file(const path& dir, const VolumeFile& file) {
  json j;
  j["about"] =
      "Volumes of this pool for the file-reflink command. Rewritten atomically under .file-reflink.lock; "
      "edit it only when no file-reflink command runs.";
  j["format"] = 1;
  j["pool"] = {{"revisions_to_keep", file.pool.revisions_to_keep}, {"setup_check", file.pool.setup_check}};
  json vols = json::object();
  for (auto& [vid, c] : file.volumes) vols[vid] = volume_to_json(c);
  j["volumes"] = std::move(vols);
  std::string text = j.dump(2) + "\n";

  path target = dir / volume_file_name;
  std::string tmp = (dir / (std::string(volume_file_name) + "~XXXXXX")).string();
  int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) return errno_failure(errno, "create " + q(tmp));
  auto fail = [&](int err, const std::string& what) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return errno_failure(err, what);
  };
  if (::fchmod(fd, 0644) != 0) return fail(errno, "chmod " + q(tmp));
  if (int err = write_all(fd, text.data(), text.size())) return fail(err, "write " + q(tmp));
  // The new file's bytes are durable before its name replaces the old one.
  if (int err = fsync_retry(fd)) return fail(err, "fsync " + q(tmp));
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return errno_failure(err, "close " + q(tmp));
  }
  if (::rename(tmp.c_str(), target.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return errno_failure(err, "rename " + q(tmp) + " -> " + q(target));
  }
  // The rename is not durable until its directory is.
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return errno_failure(errno, "open " + q(dir));
  int err = fsync_retry(dfd);
  ::close(dfd);
  if (err) return errno_failure(err, "fsync " + q(dir));
  return success();
}

PoolLock& PoolLock::operator=(PoolLock&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

PoolLock::~PoolLock() {
  if (fd_ >= 0) ::close(fd_);
}

result<PoolLock> PoolLock::acquire(const path& dir, lock_mode mode, bool quiet) {
  path file = dir / lock_file_name;
  int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0 && mode == lock_mode::shared && (errno == EACCES || errno == EROFS)) {
    // A reader without write access to the pool still locks an existing file.
    fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT) return PoolLock();  // nobody ever wrote: nothing to wait for
  }
  if (fd < 0) return errno_failure(errno, "open " + q(file));
  PoolLock lock(fd);
  int op = mode == lock_mode::exclusive ? LOCK_EX : LOCK_SH;
  if (::flock(fd, op | LOCK_NB) == 0) return lock;
  if (errno != EWOULDBLOCK) return errno_failure(errno, "flock " + q(file));
  if (!quiet) {
    std::fprintf(stderr, "file-reflink: waiting for another file-reflink command on %s to finish...\n",
                 dir.c_str());
    std::fflush(stderr);
  }
  while (::flock(fd, op) != 0) {
    if (errno != EINTR) return errno_failure(errno, "flock " + q(file));
    if (interrupted()) return failure(errc::cancelled, "wait for the lock " + q(file));
  }
  return lock;
}

}  // namespace file_reflink::cli
