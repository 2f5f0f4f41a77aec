// SPDX-License-Identifier: BSL-1.0
//! \file
//! `file-reflink volume send`, `volume receive` and `volume changes`: a
//! volume's committed image as a stream (doc/stream-format.md) to a file or
//! a pipe, that stream applied to a volume of another pool, and the ranges
//! in which two images of a volume differ. `send ... | receive ...` (through
//! ssh too) copies a volume to another pool, whole or since a revision both
//! hold.
#include "commands.hpp"
#include "errors.hpp"
#include "output.hpp"
#include "sizes.hpp"
#include "transfer.hpp"

#include <boost/filesystem/operations.hpp>

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>

namespace file_reflink::cli {

namespace {

//! An image of the volume as the command line names it: "committed", a
//! revision number, or a label.
result<image_ref> image_argument(const std::string& what, const std::string& text) {
  if (text == "committed") return image_ref::committed();
  if (!text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    std::uint64_t n = 0;
    auto [stop, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || stop != text.data() + text.size())
      return failure(usage_error(what + " '" + text + "' is not a revision number"));
    return image_ref::revision(n);
  }
  if (text.empty()) return failure(usage_error(what + " is empty: give a revision number or label"));
  return image_ref::labelled(text);
}

result<volume_type> open_volume_of(PoolSession& s, const volume_args& a) {
  FILE_REFLINK_TRYV(layout::validate_vid(a.vid));  // a malformed vid is a usage error, not a missing volume
  return s.volume(a.vid);
}

//! write(2) all of it; a signal is a cancel.
result<void> write_all(int fd, const void* data, std::size_t len, const std::string& name) {
  const char* p = static_cast<const char*>(data);
  std::size_t done = 0;
  while (done < len) {
    if (interrupted()) return failure(errc::cancelled, "write " + name);
    ssize_t w = ::write(fd, p + done, len - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno_failure(errno, "write " + name);
    }
    done += static_cast<std::size_t>(w);
  }
  return success();
}

//! The library's error for operation `op` ("send volume 'v'") said with
//! the file or pipe it worked on (`op_with`: "send volume 'v' to 'FILE'").
error naming(const error& e, const std::string& op, const std::string& op_with) {
  std::string m = e.message();
  const auto at = m.find(op);
  if (at == std::string::npos)
    m = op_with + ": " + m;
  else
    m.replace(at, op.size(), op_with);
  return error(e.code(), m);
}

//! Print the JSON result on `out` (stderr when the stream is on stdout).
void print_json_to(std::FILE* out, const json& j) {
  std::string text = j.dump(2, ' ', false, json::error_handler_t::replace);
  std::fprintf(out, "%s\n", text.c_str());
}

}  // namespace

// ---- send ----------------------------------------------------------------------

result<void> volume_send(const volume_args& a, const common_options& o) {
  const std::string file = a.operand1.empty() ? "-" : a.operand1;
  std::optional<image_ref> since;
  if (a.since) {
    FILE_REFLINK_TRY(since, image_argument("--since", *a.since));
  }
  FILE_REFLINK_TRY(auto session, PoolSession::open(a.dir, o));
  FILE_REFLINK_TRY(auto v, open_volume_of(session, a));
  const std::string target = file == "-" ? "standard output" : q(file);
  const std::string what = "send volume " + q(a.vid) + " to " + target;

  // Where the stream goes: standard output; an existing device or pipe; or
  // a regular FILE, written beside its final name and renamed over it only
  // once complete, so that a failed or cancelled send leaves no FILE.
  Fd out;
  std::string tmp;
  path final_path;
  struct Unlink {
    const std::string& p;
    ~Unlink() {
      if (!p.empty()) ::unlink(p.c_str());
    }
  } guard{tmp};
  if (file == "-") {
    out.fd = STDOUT_FILENO;
  } else {
    struct stat dst;
    const bool dst_exists = ::stat(file.c_str(), &dst) == 0;
    if (dst_exists && S_ISDIR(dst.st_mode)) return errno_failure(EISDIR, what);
    if (dst_exists && S_ISREG(dst.st_mode) && !a.force)
      return failure(refusal(EEXIST, what + ": " + target + " exists; --force overwrites it"));
    if (dst_exists && !S_ISREG(dst.st_mode)) {
      out.fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
      if (out.fd < 0) return errno_failure(errno, "open " + target);
    } else {
      final_path = boost::filesystem::absolute(path(file));
      std::string name =
          (final_path.parent_path() / ("." + final_path.filename().string() + ".send~XXXXXX")).string();
      int fd = ::mkostemp(name.data(), O_CLOEXEC);
      if (fd < 0) return errno_failure(errno, "create " + q(name));
      out.fd = fd;
      tmp = name;
      mode_t mask = ::umask(0);
      ::umask(mask);
      if (::fchmod(out.fd, 0666 & ~mask) != 0) return errno_failure(errno, "chmod " + q(tmp));
    }
  }
  const std::string out_name = tmp.empty() ? target : q(tmp);

  ProgressBar& bar = session.progress();
  const std::string label = "send " + a.vid;
  auto sent = v.send(
      [&](const void* data, std::size_t len) { return write_all(out.fd, data, len, out_name); }, since,
      [&](std::uint64_t done, std::uint64_t total) { return bar.update(label, done, total); });
  bar.finish();
  if (!sent) return failure(naming(sent.error(), "send volume " + q(a.vid), what));

  if (!tmp.empty()) {
    if (interrupted()) return failure(errc::cancelled, what);  // a signal after the last write: no FILE
    while (::fsync(out.fd) != 0)
      if (errno != EINTR) return errno_failure(errno, "fsync " + q(tmp));
    if (int err = out.close_checked()) return errno_failure(err, "close " + q(tmp));
    // Without --force, a FILE that appeared meanwhile is not replaced either.
    int renamed = a.force ? ::rename(tmp.c_str(), final_path.c_str())
                          : ::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, final_path.c_str(), RENAME_NOREPLACE);
    bool linked = false;
    if (renamed != 0 && !a.force && (errno == EINVAL || errno == ENOSYS)) {
      // A filesystem without RENAME_NOREPLACE: a hard link fails on an existing name too.
      renamed = ::link(tmp.c_str(), final_path.c_str());
      linked = renamed == 0;
    }
    if (renamed != 0) {
      if (errno == EEXIST) return failure(refusal(EEXIST, what + ": " + target + " exists; --force overwrites it"));
      return errno_failure(errno, "rename " + q(tmp) + " -> " + q(final_path.string()));
    }
    if (!linked) tmp.clear();  // renamed: nothing left to remove (a link's temporary name goes with the guard)
  } else if (int err = out.close_checked()) {
    return errno_failure(err, "close " + target);
  }

  const send_result& r = sent.value();
  if (o.json) {
    json j{{"vid", a.vid},
           {"file", file},
           {"incremental", r.incremental},
           {"base", a.since ? json(*a.since) : json(nullptr)},
           {"size", r.image_size},
           {"bytes", r.stream_bytes},
           {"data_bytes", r.data_bytes},
           {"hole_bytes", r.hole_bytes},
           {"records", r.records}};
    // The stream on standard output: the result goes to stderr.
    print_json_to(file == "-" ? stderr : stdout, j);
  } else if (!o.quiet && file != "-") {
    std::printf("%s: sent %s to %s: %s of data, %s of holes, %s in all (%llu records)\n", a.vid.c_str(),
                r.incremental ? ("the changes since " + *a.since).c_str() : "the whole image", file.c_str(),
                format_size(r.data_bytes).c_str(), format_size(r.hole_bytes).c_str(),
                size_and_bytes(r.stream_bytes).c_str(), static_cast<unsigned long long>(r.records));
  }
  return success();
}

// ---- receive -------------------------------------------------------------------

result<void> volume_receive(const volume_args& a, const common_options& o) {
  const std::string file = a.operand1.empty() ? "-" : a.operand1;
  const std::string source_name = file == "-" ? "standard input" : q(file);
  FILE_REFLINK_TRYV(layout::validate_vid(a.vid));
  FILE_REFLINK_TRY(auto session, PoolSession::open(a.dir, o));
  const std::string what = "receive volume " + q(a.vid) + " from " + source_name;

  Fd in;
  if (file == "-") {
    in.fd = STDIN_FILENO;
  } else {
    in.fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (in.fd < 0) return errno_failure(errno, "open " + source_name);
  }
  struct stat st;
  if (::fstat(in.fd, &st) != 0) return errno_failure(errno, "stat " + source_name);
  if (S_ISDIR(st.st_mode)) return errno_failure(EISDIR, what);

  // Whether the pool has the volume, and its revisions, to report what the
  // receive made.
  bool created = false;
  revision_map before;
  if (auto v = session.pool().get_volume(a.vid)) {
    FILE_REFLINK_TRY(before, v.value().revisions());
  } else if (v.error() == errc::volume_not_found) {
    created = true;
  } else {
    return failure(v.error());
  }

  stream_source source = [&](void* buf, std::size_t len) -> result<std::size_t> {
    for (;;) {
      if (interrupted()) return failure(errc::cancelled, "read " + source_name);
      ssize_t n = ::read(in.fd, buf, len);
      if (n >= 0) return static_cast<std::size_t>(n);
      if (errno != EINTR) return errno_failure(errno, "read " + source_name);
    }
  };
  ProgressBar& bar = session.progress();
  const std::string label = "receive " + a.vid;
  auto received = session.pool().receive(a.vid, source, [&](std::uint64_t done, std::uint64_t total) {
    return bar.update(label, done, total);
  });
  bar.finish();
  if (!received) return failure(naming(received.error(), "receive volume " + q(a.vid), what));
  const receive_result& r = received.value();

  FILE_REFLINK_TRY(auto v, session.volume(a.vid));
  FILE_REFLINK_TRY(auto after, v.revisions());
  revision_change c = compare_revisions(before, after);
  if (o.json) {
    json j{{"vid", a.vid},
           {"file", file},
           {"created", created},
           {"incremental", r.incremental},
           {"base", r.base.empty() ? json(nullptr) : json(r.base)},
           {"size", r.image_size},
           {"data_bytes", r.data_bytes},
           {"hole_bytes", r.hole_bytes},
           {"records", r.records}};
    add_to_json(j, c);
    print_json(j);
  } else if (!o.quiet) {
    // r.base: "the committed image" or "revision N (STAMP)".
    std::string applied = !r.incremental                     ? "a whole image"
                          : r.base.rfind("revision", 0) == 0 ? "changes, applied to its " + r.base
                                                             : "changes, applied to " + r.base;
    std::printf("%s: %sreceived %s: %s, %s of data; %s\n", a.vid.c_str(),
                created ? "created (an origin volume), " : "", applied.c_str(), size_and_bytes(r.image_size).c_str(),
                format_size(r.data_bytes).c_str(), describe(c, "the previous committed image").c_str());
  }
  return success();
}

// ---- changes -------------------------------------------------------------------

result<void> volume_changes(const volume_args& a, const common_options& o) {
  const std::string from_text = a.operand1;
  const std::string to_text = a.operand2.empty() ? "committed" : a.operand2;
  FILE_REFLINK_TRY(auto from, image_argument("FROM", from_text));
  FILE_REFLINK_TRY(auto to, image_argument("TO", to_text));
  FILE_REFLINK_TRY(auto session, PoolSession::open(a.dir, o));
  FILE_REFLINK_TRY(auto v, open_volume_of(session, a));
  ProgressBar& bar = session.progress();
  const std::string label = "compare " + a.vid;
  auto found = v.changed_ranges(from, to, [&](std::uint64_t done, std::uint64_t total) {
    return bar.update(label, done, total);
  });
  bar.finish();
  if (!found) return failure(found.error());
  const changed_ranges_result& r = found.value();
  if (o.json) {
    json ranges = json::array();
    for (const byte_range& b : r.ranges) ranges.push_back({{"offset", b.offset}, {"length", b.length}});
    print_json(json{{"vid", a.vid},
                    {"from", from_text},
                    {"to", to_text},
                    {"method", to_string(r.method)},
                    {"from_size", r.from_size},
                    {"to_size", r.to_size},
                    {"ranges", ranges},
                    {"bytes", r.bytes()}});
    return success();
  }
  auto size_cell = [](std::uint64_t n) { return format_size(n) + " (" + std::to_string(n) + ")"; };
  if (!r.ranges.empty()) {
    Table t({">OFFSET", ">LENGTH"});
    for (const byte_range& b : r.ranges) t.add({size_cell(b.offset), size_cell(b.length)});
    t.print();
  }
  const std::size_t n = r.ranges.size();
  std::printf("%s: %s to %s: %zu %s, %s; found by %s\n", a.vid.c_str(), from_text.c_str(), to_text.c_str(), n,
              n == 1 ? "range" : "ranges", size_and_bytes(r.bytes()).c_str(),
              r.method == change_method::extent_map ? "the extent maps (no data read)" : "comparing the data");
  if (r.from_size != r.to_size)
    std::printf("%s: the size changed from %s to %s\n", a.vid.c_str(), size_and_bytes(r.from_size).c_str(),
                size_and_bytes(r.to_size).c_str());
  return success();
}

}  // namespace file_reflink::cli
