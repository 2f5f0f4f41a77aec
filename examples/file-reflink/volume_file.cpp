// SPDX-License-Identifier: BSL-1.0
#include "volume_file.hpp"

#include "sizes.hpp"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

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

result<void> retire_volume_file(const path& dir) {
  path from = dir / volume_file_name, to = dir / converted_volume_file_name;
  if (::rename(from.c_str(), to.c_str()) != 0) {
    if (errno == ENOENT) return success();
    return errno_failure(errno, "rename " + q(from) + " -> " + q(to));
  }
  // Not durable until its directory is: a crash that brings the file back
  // only makes the next command convert it again (converting is idempotent).
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return errno_failure(errno, "open " + q(dir));
  int err = fsync_retry(dfd);
  ::close(dfd);
  if (err) return errno_failure(err, "fsync " + q(dir));
  return success();
}

}  // namespace file_reflink::cli
