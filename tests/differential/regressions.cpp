// SPDX-License-Identifier: BSL-1.0
// The fixed sequences of the divergences the differential test found, each
// shrunk to a few calls and run on both sides on every real filesystem, as
// the random sequences are. The mock's answer for each is also pinned down
// without root in tests/memory_fs.cpp.
#include "harness.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

using namespace file_reflink;
using namespace file_reflink::differential;

namespace {

//! One regression: a starting tree and calls, run on both sides.
struct regression {
  const char* name;
  std::vector<plant> tree;
  std::vector<call> calls;
};

plant dir(const std::string& p) {
  plant x;
  x.kind = plant::dir;
  x.path = p;
  return x;
}
plant file(const std::string& p, std::uint64_t len, std::uint64_t off = 0) {
  plant x;
  x.kind = plant::file;
  x.path = p;
  x.length = len;
  x.offset = off;
  return x;
}
plant truncated(const std::string& p, std::uint64_t size) {
  plant x;
  x.kind = plant::truncate;
  x.path = p;
  x.length = size;
  return x;
}
plant symlink(const std::string& p, const std::string& target) {
  plant x;
  x.kind = plant::symlink;
  x.path = p;
  x.target = target;
  return x;
}
call make(op kind, std::string p1, std::string p2 = "", std::uint64_t a = 0, std::uint64_t b = 0) {
  call c;
  c.kind = kind;
  c.p1 = std::move(p1);
  c.p2 = std::move(p2);
  c.a = a;
  c.b = b;
  c.data = 7;
  return c;
}
call on(call c, int h1, int h2 = 0) {
  c.h1 = h1;
  c.h2 = h2;
  return c;
}
call with_time(call c, file_time t) {
  c.t = t;
  return c;
}
call flagged(call c) {  // open_dir: create; create: truncate
  c.flag = true;
  return c;
}
call copy_of(std::string from, std::string to, std::optional<std::uint64_t> size = std::nullopt, bool clone = true,
             progress_mode progress = progress_mode::none, unsigned stop_at = 0) {
  call c = make(op::copy, std::move(from), std::move(to));
  c.has_size = size.has_value();
  c.size = size.value_or(0);
  c.try_clone = clone;
  c.progress = progress;
  c.stop_at = stop_at;
  return c;
}

const std::string n256(256, 'm');
const std::string n255(255, 'n');

std::string beyond_path_max() {
  std::string p;
  for (int i = 0; i < 17; ++i) p += n255 + "/";
  return p + "f";
}

constexpr std::uint64_t max_i64 = static_cast<std::uint64_t>(INT64_MAX);

const std::vector<regression>& regressions() {
  static const std::vector<regression> all = {
      {"a name longer than NAME_MAX is ENAMETOOLONG where the kernel looks it up",
       {file("a", 10), dir("d")},
       {make(op::create, n256), make(op::write, n256, "", 0, 10), make(op::mkdir, "d/" + n256),
        make(op::link, "a", n256), make(op::rename, "a", n256), make(op::remove, n256), make(op::stat, n256 + "/a"),
        make(op::open_dir, n256), make(op::remove_dir, "d/" + n256)}},
      {"a directory part of PATH_MAX bytes is ENAMETOOLONG",
       {dir("d")},
       {make(op::create, beyond_path_max()), make(op::stat, beyond_path_max()), make(op::list, beyond_path_max() + "/")}},
      {"link opens both directories before it looks the source up",
       {file("b", 10), symlink("L3", "missing")},
       {make(op::link, "c", "b/h"), make(op::link, "c", "../x"), make(op::link, "c", ""), make(op::link, "c", "L3/b"),
        make(op::link, "b", "."), make(op::link, "c", n256)}},
      {"rename: the source, the target, a directory into itself or over its ancestor, then the types",
       {dir("d"), dir("d/e"), file("d/f", 10), dir("e"), file("e/x", 10), dir("g")},
       {make(op::rename, "d/f", "d"), make(op::rename, "d", "d/e/x"), make(op::rename, "d/e", "d"),
        make(op::rename, "missing", "b/c"), make(op::rename, "g", "e"), make(op::rename, "d/f", "e"),
        make(op::rename, "g", "d/f"), make(op::rename, "g", "d/e")}},
      {"set_mtime checks the nanoseconds before the name, and stores what the filesystem can",
       {file("a", 10), dir("d")},
       {with_time(make(op::set_mtime, "missing"), file_time{5000000000, 1000000000}),
        with_time(make(op::set_mtime, "a"), file_time{INT64_MAX, 999999999}),
        with_time(make(op::set_mtime, "a"), file_time{std::int64_t(INT32_MIN) - 1, 5}),
        with_time(make(op::set_mtime, "d"), file_time{253402300799, 999999999}),
        with_time(make(op::set_mtime, ""), file_time{INT32_MIN, 5}),
        with_time(make(op::set_mtime, "a"), file_time{15032385536, 9})}},
      {"read of nothing is no call; a directory's read checks the offset first",
       {file("a", 10), dir("d")},
       {make(op::read, "", "", UINT64_MAX, 0), make(op::read, "d", "", 0, 10), make(op::read, "d", "", max_i64 - 4096, 8192),
        make(op::read, "a", "", UINT64_MAX, 0), make(op::read, "a", "", max_i64, 1)}},
      {"a write stops at the largest file size, then says EFBIG",
       {file("a", 10)},
       {make(op::write, "a", "", ext4_max_file - 1, 5000), make(op::write, "a", "", UINT64_MAX, 0),
        make(op::write, "a", "", max_i64 - 1, 2), make(op::write, "a", "", ext4_max_file, 10)}},
      {"sizes past the largest file: EFBIG; lengths past loff_t: EINVAL",
       {file("a", 5000)},
       {make(op::resize, "a", "", std::uint64_t(1) << 44), make(op::create, "f", "", std::uint64_t(1) << 44),
        make(op::punch_hole, "a", "", 512, max_i64 - 4096), make(op::punch_hole, "a", "", 0, std::uint64_t(1) << 63),
        make(op::resize, "a", "", std::uint64_t(1) << 63)}},
      {"create opens (and makes) the file before it sizes it",
       {dir("d"), file("b", 100)},
       {make(op::create, "d", "", UINT64_MAX), make(op::create, "f", "", UINT64_MAX),
        flagged(make(op::create, "g", "", UINT64_MAX)), flagged(make(op::create, "b", "", UINT64_MAX))}},
      {"a clone or copy that fails after making its destination moves the directory's times",
       {file("a", 5000), dir("d")},
       {make(op::clone, "d", "x"), on(make(op::clone, "a", "x"), 0, 2), make(op::clone, "a", "z"),
        copy_of("a", "y", std::nullopt, true, progress_mode::cancel, 1),
        copy_of("a", "w", UINT64_MAX), copy_of("a", "v", std::uint64_t(1) << 44, false)}},
      {"punch_hole of a range in a hole (btrfs leaves the times), past the end, and over data",
       {file("a", 4096), truncated("a", 20000)},
       {make(op::punch_hole, "a", "", 8192, 4096), make(op::punch_hole, "a", "", 65536, 4096),
        make(op::punch_hole, "a", "", 8192, 100), make(op::punch_hole, "a", "", 100, 200)}},
      {"a file that grows from inside a block: btrfs rewrites the block, a clone's last block is copied",
       {file("a", 5000), truncated("b", 4000)},
       {make(op::clone, "a", "c"), make(op::resize, "c", "", 20000), make(op::resize, "b", "", 10000),
        make(op::write, "b", "", 16384, 10), copy_of("a", "g", 30000)}},
      {"a file that shrinks inside a block: btrfs keeps its last block shared, XFS copies it",
       {file("a", 8192)},
       {make(op::clone, "a", "c"), make(op::resize, "c", "", 2048), copy_of("a", "s", 2048),
        make(op::punch_hole, "c", "", 3000, 100)}},
      {"a resize to the size a file has: XFS zeroes its end block again, copying a shared one",
       {file("a", 10), file("b", 12289)},
       {make(op::clone, "a", "c"), make(op::resize, "a", "", 10), make(op::clone, "b", "d"),
        make(op::resize, "d", "", 12289)}},
      {"ext4 punches a range past the end of file to the end of its block",
       {file("a", 5000), file("b", 8192)},
       {make(op::punch_hole, "a", "", 100, 5000), make(op::punch_hole, "b", "", 4100, 10000)}},
      {"extents of a directory: ext4 maps its block, btrfs and XFS say EOPNOTSUPP",
       {dir("d"), dir("d/e")},
       {make(op::extents, ""), make(op::extents, "d"), on(make(op::extents, ""), 2)}},
      {"open_dir never makes a directory where a symlink leads; created counts the last name",
       {dir("d"), file("a", 10), symlink("L3", "missing"), symlink("L2", "d")},
       {flagged(make(op::open_dir, "L3/x")), flagged(make(op::open_dir, "d/new/.")), flagged(make(op::open_dir, "L2/n2")),
        make(op::stat_path, "a/"), make(op::stat_path, "L2/"), make(op::stat_path, "/..")}},
      {"notify_resize looks at the name itself: a symlink or a directory backs no device",
       {dir("d"), file("a", 10), symlink("L1", "a")},
       {make(op::notify_resize, "L1"), make(op::notify_resize, "d"), make(op::notify_resize, "")}},
      {"a filesystem without reflinks is remembered per handle",
       {dir("d"), file("a", 5000)},
       {copy_of("a", "x"), on(copy_of("a", "y"), 0, 1), copy_of("a", "z"), on(make(op::probe_reflink, ""), 1)}},
      {"probe_reflink in a removed directory",
       {dir("d")},
       {make(op::rmdir, "d"), on(make(op::probe_reflink, ""), 1), on(make(op::create, "f"), 1)}},
      {"copy_file_range clones no partial last block into a longer file, and reports each piece",
       {file("a", 12289), file("b", 4095)},
       {copy_of("a", "c", std::uint64_t(1) << 20, false, progress_mode::record),
        copy_of("b", "d", 10000, false, progress_mode::record), copy_of("a", "e", std::nullopt, false, progress_mode::record),
        copy_of("a", "f", 5000, false, progress_mode::record)}},
      {"extents leave out what XFS preallocated past a file's end and then found inside it",
       {file("b", 1, 1068576), file("b", 4095, 1134113), truncated("b", 2196118)},
       {make(op::extents, "b"), make(op::resize, "b", "", 4000000), make(op::extents, "b")}},
  };
  return all;
}

void run_regressions(scratch_kind kind) {
  const run_config cfg = config_for(kind);
  for (const regression& r : regressions()) {
    for (const bool walk : {false, true}) {
      run_config c = cfg;
      c.component_walk = walk;
      const divergence d = run_once(c, r.tree, r.calls, nullptr);
      std::string text;
      if (d.found) text = std::string(r.name) + (walk ? " (component walk)" : "") + ":\n" + report(c, 0, shrunk{r.tree, r.calls, d});
      CHECK_MESSAGE(!d.found, text);
    }
  }
}

}  // namespace

TEST_CASE("differential: regressions <btrfs>") { run_regressions(scratch_kind::btrfs); }
TEST_CASE("differential: regressions <xfs>") { run_regressions(scratch_kind::xfs); }
TEST_CASE("differential: regressions <ext4>") { run_regressions(scratch_kind::ext4); }
