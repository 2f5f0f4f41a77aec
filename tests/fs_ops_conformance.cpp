// SPDX-License-Identifier: BSL-1.0
// The policy contract (fs_ops.hpp), tested once and run on every fixture:
// the in-memory policy and the Linux policy on btrfs, XFS and ext4. Where a
// filesystem legitimately differs (reflinks or not) the test says which
// answer each gives; everything else must be identical, errno for errno.
#include "fixtures.hpp"

#include <file_reflink/detail/changed_ranges.hpp>

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <sys/types.h>

#include <atomic>
#include <cstring>
#include <map>
#include <string>
#include <vector>

using namespace file_reflink;
using namespace file_reflink::test;

namespace {

//! Resolve names with the component walk instead of openat2 while alive
//! (Linux only; the memory policy has one way).
template <class Fx>
class ComponentWalk {
public:
  ComponentWalk() {
    if constexpr (Fx::real) {
      was_ = LinuxFsOps::use_openat2();
      LinuxFsOps::set_use_openat2(false);
    }
  }
  ~ComponentWalk() {
    if constexpr (Fx::real) LinuxFsOps::set_use_openat2(was_);
  }
  ComponentWalk(const ComponentWalk&) = delete;
  ComponentWalk& operator=(const ComponentWalk&) = delete;

private:
  bool was_ = true;
};

//! The mode bits of a file on a real filesystem (stat reports no mode).
[[maybe_unused]] inline unsigned mode_of(const path& abs) {
  struct ::stat st {};
  REQUIRE_MESSAGE(::lstat(abs.c_str(), &st) == 0, "lstat '" << abs.string() << "': " << std::string(std::strerror(errno)));
  return st.st_mode & 07777;
}

[[maybe_unused]] inline unsigned current_umask() {
  const mode_t m = ::umask(0);
  ::umask(m);
  return m;
}

inline bool all_zero(const std::string& s) {
  return s.find_first_not_of('\0') == std::string::npos;
}

//! What a filesystem may allocate beyond the data written (metadata blocks,
//! rounding): holes are "kept" when the copy allocates no more than this on top.
constexpr std::uint64_t slack = 64 * KiB;

//! A 4 MiB file with 256 KiB of data at 0 and 256 KiB at 1 MiB, rest holes.
template <class Fx, class H>
std::string make_sparse_source(Fx& fx, const H& h, const path& rel) {
  const std::string a = pattern(256 * KiB, 11), b = pattern(256 * KiB, 12);
  make_file(fx, h, rel, 4 * MiB, {{0, a}, {1 * MiB, b}});
  std::string whole(4 * MiB, '\0');
  whole.replace(0, a.size(), a);
  whole.replace(1 * MiB, b.size(), b);
  return whole;
}
constexpr std::uint64_t sparse_source_data = 512 * KiB;

//! Records progress calls.
struct ProgressLog {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> calls;
  progress_callback callback(bool answer = true) {
    return [this, answer](std::uint64_t done, std::uint64_t total) {
      calls.emplace_back(done, total);
      return answer;
    };
  }
};

}  // namespace

// ---------------------------------------------------------------------------
// open_dir, stat_path, remove_dir: the absolute-path operations

FILE_REFLINK_FIXTURE_TEST("fs_ops: open_dir creates missing directories and says whether it did") {
  auto made = REQUIRE_VALUE(fx.ops.open_dir(fx.root / "a/b/c", true));
  CHECK(made.created);
  CHECK(names(fx, fx.dir()) == std::set<std::string>{"a", "a/b", "a/b/c"});
  CHECK(stat_of(fx, fx.dir(), "a/b/c").type == file_type::directory);

  auto again = REQUIRE_VALUE(fx.ops.open_dir(fx.root / "a/b/c", true));
  CHECK_FALSE(again.created);
  auto existing = REQUIRE_VALUE(fx.ops.open_dir(fx.root / "a", false));
  CHECK_FALSE(existing.created);
  auto leaf_only = REQUIRE_VALUE(fx.ops.open_dir(fx.root / "a/x", true));
  CHECK(leaf_only.created);

  // The handle is the directory: names made through it appear there.
  REQUIRE_OK(fx.ops.create(made.handle, "f", 10, create_mode::exclusive));
  CHECK(stat_of(fx, fx.dir(), "a/b/c/f").size == 10);
  CHECK(stat_of(fx, again.handle, "f").size == 10);
  if constexpr (Fx::real) CHECK(mode_of(fx.root / "a/b") == (0755u & ~current_umask()));
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: open_dir of a missing directory or of a file fails") {
  CHECK_ERR(fx.ops.open_dir(fx.root / "missing", false), std::errc::no_such_file_or_directory);
  CHECK_ERR(fx.ops.open_dir(fx.root / "missing/deeper", false), std::errc::no_such_file_or_directory);
  CHECK_FALSE(exists(fx, fx.dir(), "missing"));
  make_file(fx, fx.dir(), "file", 0);
  CHECK_ERR(fx.ops.open_dir(fx.root / "file", false), std::errc::not_a_directory);
  CHECK_ERR(fx.ops.open_dir(fx.root / "file", true), std::errc::not_a_directory);
  CHECK_ERR(fx.ops.open_dir(fx.root / "file/sub", true), std::errc::not_a_directory);
  CHECK(names(fx, fx.dir()) == std::set<std::string>{"file"});
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: open_dir and stat_path follow a symlink the administrator chose") {
  REQUIRE_OK(fx.ops.mkdir(fx.dir(), "real"));
  make_file(fx, fx.dir(), "real/f", 3);
  fx.symlink("real", fx.root / "alias");
  auto o = REQUIRE_VALUE(fx.ops.open_dir(fx.root / "alias", false));
  CHECK_FALSE(o.created);
  CHECK(names(fx, o.handle) == std::set<std::string>{"f"});
  auto via_link = REQUIRE_VALUE(fx.ops.stat_path(fx.root / "alias"));
  CHECK(via_link.type == file_type::directory);
  CHECK(via_link.ino == stat_of(fx, fx.dir(), "real").ino);
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: stat_path gives the identity of a directory") {
  auto s = REQUIRE_VALUE(fx.ops.stat_path(fx.root));
  auto own = stat_of(fx, fx.dir(), "");
  CHECK(s.type == file_type::directory);
  CHECK(s.ino == own.ino);
  CHECK(s.dev == own.dev);
  auto other = REQUIRE_VALUE(fx.ops.stat_path(fx.other_root));
  CHECK(other.dev != s.dev);
  make_file(fx, fx.dir(), "a", 5);
  auto f = REQUIRE_VALUE(fx.ops.stat_path(fx.root / "a"));
  CHECK(f.type == file_type::regular);
  CHECK(f.size == 5);
  CHECK_ERR(fx.ops.stat_path(fx.root / "missing"), std::errc::no_such_file_or_directory);
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: remove_dir removes an empty directory only") {
  REQUIRE_OK(fx.ops.mkdir(fx.dir(), "d"));
  REQUIRE_OK(fx.ops.remove_dir(fx.root / "d"));
  CHECK_FALSE(exists(fx, fx.dir(), "d"));
  REQUIRE_OK(fx.ops.mkdir(fx.dir(), "e"));
  make_file(fx, fx.dir(), "e/f", 1);
  CHECK_ERR(fx.ops.remove_dir(fx.root / "e"), std::errc::directory_not_empty);
  CHECK(exists(fx, fx.dir(), "e/f"));
  CHECK_ERR(fx.ops.remove_dir(fx.root / "missing"), std::errc::no_such_file_or_directory);
  CHECK_ERR(fx.ops.remove_dir(fx.root / "e/f"), std::errc::not_a_directory);
}

// ---------------------------------------------------------------------------
// create, read, write

FILE_REFLINK_FIXTURE_TEST("fs_ops: create exclusive makes a sparse file that allocates nothing") {
  REQUIRE_OK(fx.ops.create(fx.dir(), "disk.img", 1 * GiB, create_mode::exclusive));
  auto st = stat_of(fx, fx.dir(), "disk.img");
  CHECK(st.type == file_type::regular);
  CHECK(st.size == 1 * GiB);
  CHECK(st.allocated == 0);
  CHECK(st.nlink == 1);
  CHECK(all_zero(read_at(fx, fx.dir(), "disk.img", 512 * MiB, 64 * KiB)));
  CHECK(extents_of(fx, fx.dir(), "disk.img").empty());
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: create exclusive refuses an existing name and keeps its data") {
  make_file(fx, fx.dir(), "a", 0, {{0, "keep me"}});
  CHECK_ERR(fx.ops.create(fx.dir(), "a", 100, create_mode::exclusive), std::errc::file_exists);
  CHECK(read_all(fx, fx.dir(), "a") == "keep me");
  REQUIRE_OK(fx.ops.mkdir(fx.dir(), "d"));
  CHECK_ERR(fx.ops.create(fx.dir(), "d", 0, create_mode::exclusive), std::errc::file_exists);
  CHECK(stat_of(fx, fx.dir(), "d").type == file_type::directory);
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: create truncate empties an existing file and sizes it") {
  make_file(fx, fx.dir(), "a", 0, {{0, pattern(256 * KiB)}});
  const auto ino = stat_of(fx, fx.dir(), "a").ino;
  REQUIRE_OK(fx.ops.create(fx.dir(), "a", 100 * KiB, create_mode::truncate));
  REQUIRE_OK(fx.ops.fsync(fx.dir(), "a"));
  auto st = stat_of(fx, fx.dir(), "a");
  CHECK(st.size == 100 * KiB);
  CHECK(st.ino == ino);
  CHECK(st.allocated == 0);
  CHECK(all_zero(read_all(fx, fx.dir(), "a")));
  // And makes a missing one.
  REQUIRE_OK(fx.ops.create(fx.dir(), "b", 7, create_mode::truncate));
  CHECK(stat_of(fx, fx.dir(), "b").size == 7);
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: create makes files private (mode 0600) and needs its directory") {
  REQUIRE_OK(fx.ops.create(fx.dir(), "a", 0, create_mode::exclusive));
  REQUIRE_OK(fx.ops.create(fx.dir(), "t", 0, create_mode::truncate));
  if constexpr (Fx::real) {
    CHECK(mode_of(fx.root / "a") == 0600u);
    CHECK(mode_of(fx.root / "t") == 0600u);
  }
  CHECK_ERR(fx.ops.create(fx.dir(), "nodir/a", 0, create_mode::exclusive), std::errc::no_such_file_or_directory);
  CHECK_ERR(fx.ops.create(fx.dir(), "a/b", 0, create_mode::exclusive), std::errc::not_a_directory);
  REQUIRE_OK(fx.ops.mkdir(fx.dir(), "sub"));
  REQUIRE_OK(fx.ops.create(fx.dir(), "sub/a", 10, create_mode::exclusive));
  CHECK(names(fx, fx.dir()) == std::set<std::string>{"a", "t", "sub", "sub/a"});
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: a 1 TiB sparse file costs nothing and takes data at its end") {
  const std::uint64_t tib = 1024 * GiB;
  REQUIRE_OK(fx.ops.create(fx.dir(), "huge", tib, create_mode::exclusive));
  CHECK(allocated(fx, fx.dir(), "huge") == 0);
  const std::string tail = pattern(4 * KiB, 3);
  write_bytes(fx, fx.dir(), "huge", tib - tail.size(), tail);
  REQUIRE_OK(fx.ops.fsync(fx.dir(), "huge"));
  auto st = stat_of(fx, fx.dir(), "huge");
  CHECK(st.size == tib);
  CHECK(st.allocated >= tail.size());
  CHECK(st.allocated <= tail.size() + slack);
  CHECK(read_at(fx, fx.dir(), "huge", tib - tail.size(), 2 * tail.size()) == tail);
  auto data = logical_ranges(extents_of(fx, fx.dir(), "huge"));
  CHECK(overlap(data, {{tib - tail.size(), tib}}) == tail.size());
  CHECK(overlap(data, {{0, tib - 1 * MiB}}) == 0);
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: write and read at offsets") {
  REQUIRE_OK(fx.ops.create(fx.dir(), "a", 0, create_mode::exclusive));
  write_bytes(fx, fx.dir(), "a", 0, "hello");
  write_bytes(fx, fx.dir(), "a", 10000, "world");
  CHECK(stat_of(fx, fx.dir(), "a").size == 10005);
  CHECK(read_at(fx, fx.dir(), "a", 0, 5) == "hello");
  CHECK(read_at(fx, fx.dir(), "a", 10000, 5) == "world");
  CHECK(all_zero(read_at(fx, fx.dir(), "a", 5, 9995)));
  write_bytes(fx, fx.dir(), "a", 1, "XY");
  CHECK(read_at(fx, fx.dir(), "a", 0, 5) == "hXYlo");

  // A large unaligned write comes back intact.
  const std::string big = pattern(3 * MiB + 123, 7);
  write_bytes(fx, fx.dir(), "a", 4097, big);
  CHECK(read_at(fx, fx.dir(), "a", 4097, big.size()) == big);
  CHECK(stat_of(fx, fx.dir(), "a").size == 4097 + big.size());
  // An empty write changes nothing.
  REQUIRE_OK(fx.ops.write(fx.dir(), "a", 0, "", 0));
  CHECK(stat_of(fx, fx.dir(), "a").size == 4097 + big.size());
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: read is short only at end of file") {
  const std::string data = pattern(100);
  make_file(fx, fx.dir(), "a", 0, {{0, data}});
  std::string buf(1000, '\0');
  CHECK(REQUIRE_VALUE(fx.ops.read(fx.dir(), "a", 90, buf.data(), buf.size())) == 10);
  CHECK(buf.substr(0, 10) == data.substr(90));
  CHECK(REQUIRE_VALUE(fx.ops.read(fx.dir(), "a", 100, buf.data(), buf.size())) == 0);
  CHECK(REQUIRE_VALUE(fx.ops.read(fx.dir(), "a", 1 * GiB, buf.data(), buf.size())) == 0);
  CHECK(REQUIRE_VALUE(fx.ops.read(fx.dir(), "a", 0, buf.data(), 0)) == 0);
  // A read across a hole inside the file is full length.
  make_file(fx, fx.dir(), "sparse", 8 * MiB, {{8 * MiB - 4, "tail"}});
  std::string big(8 * MiB, 'x');
  CHECK(REQUIRE_VALUE(fx.ops.read(fx.dir(), "sparse", 0, big.data(), big.size())) == big.size());
  CHECK(big.substr(big.size() - 4) == "tail");
  CHECK(all_zero(big.substr(0, big.size() - 4)));
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: a write beyond end of file extends it with a hole") {
  const std::string head = pattern(4 * KiB, 1), tail = pattern(4 * KiB, 2);
  make_file(fx, fx.dir(), "a", 0, {{0, head}});
  write_bytes(fx, fx.dir(), "a", 8 * MiB, tail);
  REQUIRE_OK(fx.ops.fsync(fx.dir(), "a"));
  auto st = stat_of(fx, fx.dir(), "a");
  CHECK(st.size == 8 * MiB + tail.size());
  CHECK(st.allocated <= head.size() + tail.size() + slack);
  CHECK(all_zero(read_at(fx, fx.dir(), "a", head.size(), 8 * MiB - head.size())));
  CHECK(read_at(fx, fx.dir(), "a", 8 * MiB, tail.size()) == tail);
  CHECK(read_at(fx, fx.dir(), "a", 0, head.size()) == head);
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: read and write refuse a missing file and a directory") {
  char buf[8] = {};
  CHECK_ERR(fx.ops.read(fx.dir(), "missing", 0, buf, sizeof buf), std::errc::no_such_file_or_directory);
  CHECK_ERR(fx.ops.write(fx.dir(), "missing", 0, "x", 1), std::errc::no_such_file_or_directory);
  CHECK_FALSE(exists(fx, fx.dir(), "missing"));
  REQUIRE_OK(fx.ops.mkdir(fx.dir(), "d"));
  CHECK_ERR(fx.ops.read(fx.dir(), "d", 0, buf, sizeof buf), std::errc::is_a_directory);
  CHECK_ERR(fx.ops.write(fx.dir(), "d", 0, "x", 1), std::errc::is_a_directory);
  CHECK_ERR(fx.ops.resize(fx.dir(), "missing", 10), std::errc::no_such_file_or_directory);
  CHECK_ERR(fx.ops.punch_hole(fx.dir(), "missing", 0, 10), std::errc::no_such_file_or_directory);
}

// ---------------------------------------------------------------------------
// resize, punch_hole

FILE_REFLINK_FIXTURE_TEST("fs_ops: resize grows a file sparsely") {
  const std::string data = pattern(64 * KiB);
  make_file(fx, fx.dir(), "a", 0, {{0, data}});
  const auto before = allocated(fx, fx.dir(), "a");
  REQUIRE_OK(fx.ops.resize(fx.dir(), "a", 16 * MiB));
  REQUIRE_OK(fx.ops.fsync(fx.dir(), "a"));
  auto st = stat_of(fx, fx.dir(), "a");
  CHECK(st.size == 16 * MiB);
  CHECK(st.allocated <= before);
  CHECK(read_at(fx, fx.dir(), "a", 0, data.size()) == data);
  CHECK(all_zero(read_at(fx, fx.dir(), "a", data.size(), 16 * MiB)));
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: resize shrinks a file and drops what was beyond") {
  const std::string data = pattern(1 * MiB);
  make_file(fx, fx.dir(), "a", 0, {{0, data}});
  REQUIRE_OK(fx.ops.resize(fx.dir(), "a", 4096 + 10));
  REQUIRE_OK(fx.ops.fsync(fx.dir(), "a"));
  auto st = stat_of(fx, fx.dir(), "a");
  CHECK(st.size == 4106);
  CHECK(st.allocated <= 8 * KiB + slack);
  CHECK(read_all(fx, fx.dir(), "a") == data.substr(0, 4106));
  REQUIRE_OK(fx.ops.resize(fx.dir(), "a", 1 * MiB));
  CHECK(all_zero(read_at(fx, fx.dir(), "a", 4106, 1 * MiB)));
  REQUIRE_OK(fx.ops.resize(fx.dir(), "a", 0));
  CHECK(stat_of(fx, fx.dir(), "a").size == 0);
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: punch_hole zeroes a range, frees it and keeps the size") {
  const std::string data = pattern(1 * MiB);
  make_file(fx, fx.dir(), "a", 0, {{0, data}});
  const auto before = allocated(fx, fx.dir(), "a");
  CHECK(before >= 1 * MiB);
  REQUIRE_OK(fx.ops.punch_hole(fx.dir(), "a", 256 * KiB, 512 * KiB));
  REQUIRE_OK(fx.ops.fsync(fx.dir(), "a"));
  auto st = stat_of(fx, fx.dir(), "a");
  CHECK(st.size == 1 * MiB);
  CHECK(st.allocated <= before - 512 * KiB);
  auto now = read_all(fx, fx.dir(), "a");
  CHECK(now.substr(0, 256 * KiB) == data.substr(0, 256 * KiB));
  CHECK(all_zero(now.substr(256 * KiB, 512 * KiB)));
  CHECK(now.substr(768 * KiB) == data.substr(768 * KiB));
  CHECK(overlap(logical_ranges(extents_of(fx, fx.dir(), "a")), {{256 * KiB, 768 * KiB}}) == 0);
  // Beyond the end: nothing to free, and the size stays.
  REQUIRE_OK(fx.ops.punch_hole(fx.dir(), "a", 2 * MiB, 1 * MiB));
  CHECK(stat_of(fx, fx.dir(), "a").size == 1 * MiB);
}

// ---------------------------------------------------------------------------
// rename, link, remove, mkdir, rmdir

FILE_REFLINK_FIXTURE_TEST("fs_ops: rename gives a file a new name and keeps its inode") {
  const std::string data = pattern(10 * KiB);
  make_file(fx, fx.dir(), "a", 0, {{0, data}});
  const auto ino = stat_of(fx, fx.dir(), "a").ino;
  REQUIRE_OK(fx.ops.rename(fx.dir(), "a", "b"));
  CHECK(names(fx, fx.dir()) == std::set<std::string>{"b"});
  CHECK(read_all(fx, fx.dir(), "b") == data);
  CHECK(stat_of(fx, fx.dir(), "b").ino == ino);
  REQUIRE_OK(fx.ops.mkdir(fx.dir(), "d"));
  REQUIRE_OK(fx.ops.rename(fx.dir(), "b", "d/c"));
  CHECK(names(fx, fx.dir()) == std::set<std::string>{"d", "d/c"});
  REQUIRE_OK(fx.ops.rename(fx.dir(), "d", "e"));
  CHECK(names(fx, fx.dir()) == std::set<std::string>{"e", "e/c"});
  CHECK(read_all(fx, fx.dir(), "e/c") == data);
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: rename replaces the target") {
  const std::string a = pattern(10 * KiB, 1), b = pattern(20 * KiB, 2);
  make_file(fx, fx.dir(), "a", 0, {{0, a}});
  make_file(fx, fx.dir(), "b", 0, {{0, b}});
  const auto ino = stat_of(fx, fx.dir(), "a").ino;
  REQUIRE_OK(fx.ops.rename(fx.dir(), "a", "b"));
  CHECK(names(fx, fx.dir()) == std::set<std::string>{"b"});
  auto st = stat_of(fx, fx.dir(), "b");
  CHECK(st.ino == ino);
  CHECK(st.nlink == 1);
  CHECK(read_all(fx, fx.dir(), "b") == a);
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: rename of a missing source or into a missing directory fails") {
  make_file(fx, fx.dir(), "a", 1);
  CHECK_ERR(fx.ops.rename(fx.dir(), "missing", "x"), std::errc::no_such_file_or_directory);
  CHECK_ERR(fx.ops.rename(fx.dir(), "a", "nodir/x"), std::errc::no_such_file_or_directory);
  REQUIRE_OK(fx.ops.mkdir(fx.dir(), "d"));
  make_file(fx, fx.dir(), "d/f", 1);
  CHECK_ERR(fx.ops.rename(fx.dir(), "a", "d"), std::errc::is_a_directory);
  CHECK_ERR(fx.ops.rename(fx.dir(), "d", "a"), std::errc::not_a_directory);
  CHECK(names(fx, fx.dir()) == std::set<std::string>{"a", "d", "d/f"});
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: link makes a second name for the same inode") {
  make_file(fx, fx.dir(), "a", 0, {{0, "first"}});
  REQUIRE_OK(fx.ops.link(fx.dir(), "a", "b"));
  auto sa = stat_of(fx, fx.dir(), "a"), sb = stat_of(fx, fx.dir(), "b");
  CHECK(sa.ino == sb.ino);
  CHECK(sa.nlink == 2);
  CHECK(sb.nlink == 2);
  write_bytes(fx, fx.dir(), "b", 0, "FIRST");
  CHECK(read_all(fx, fx.dir(), "a") == "FIRST");
  REQUIRE_OK(fx.ops.remove(fx.dir(), "a"));
  CHECK(stat_of(fx, fx.dir(), "b").nlink == 1);
  CHECK(read_all(fx, fx.dir(), "b") == "FIRST");
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: link refuses an existing target, a missing source and a directory") {
  make_file(fx, fx.dir(), "a", 0, {{0, "a"}});
  make_file(fx, fx.dir(), "b", 0, {{0, "b"}});
  CHECK_ERR(fx.ops.link(fx.dir(), "a", "b"), std::errc::file_exists);
  CHECK(read_all(fx, fx.dir(), "b") == "b");
  CHECK(stat_of(fx, fx.dir(), "a").nlink == 1);
  CHECK_ERR(fx.ops.link(fx.dir(), "missing", "c"), std::errc::no_such_file_or_directory);
  CHECK_ERR(fx.ops.link(fx.dir(), "a", "nodir/c"), std::errc::no_such_file_or_directory);
  REQUIRE_OK(fx.ops.mkdir(fx.dir(), "d"));
  CHECK_ERR(fx.ops.link(fx.dir(), "d", "e"), std::errc::operation_not_permitted);
  CHECK(names(fx, fx.dir()) == std::set<std::string>{"a", "b", "d"});
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: remove unlinks a file and refuses a directory") {
  make_file(fx, fx.dir(), "a", 1);
  REQUIRE_OK(fx.ops.remove(fx.dir(), "a"));
  CHECK_FALSE(exists(fx, fx.dir(), "a"));
  CHECK_ERR(fx.ops.remove(fx.dir(), "a"), std::errc::no_such_file_or_directory);
  REQUIRE_OK(fx.ops.mkdir(fx.dir(), "d"));
  CHECK_ERR(fx.ops.remove(fx.dir(), "d"), std::errc::is_a_directory);
  CHECK(stat_of(fx, fx.dir(), "d").type == file_type::directory);
  CHECK_ERR(fx.ops.remove(fx.dir(), "d/x"), std::errc::no_such_file_or_directory);
  CHECK_ERR(fx.ops.remove(fx.dir(), "nodir/x"), std::errc::no_such_file_or_directory);
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: mkdir and rmdir") {
  REQUIRE_OK(fx.ops.mkdir(fx.dir(), "d"));
  CHECK(stat_of(fx, fx.dir(), "d").type == file_type::directory);
  if constexpr (Fx::real) CHECK(mode_of(fx.root / "d") == (0755u & ~current_umask()));
  CHECK_ERR(fx.ops.mkdir(fx.dir(), "d"), std::errc::file_exists);
  CHECK_ERR(fx.ops.mkdir(fx.dir(), "x/y"), std::errc::no_such_file_or_directory);
  REQUIRE_OK(fx.ops.mkdir(fx.dir(), "d/e"));
  CHECK_ERR(fx.ops.rmdir(fx.dir(), "d"), std::errc::directory_not_empty);
  REQUIRE_OK(fx.ops.rmdir(fx.dir(), "d/e"));
  REQUIRE_OK(fx.ops.rmdir(fx.dir(), "d"));
  CHECK_ERR(fx.ops.rmdir(fx.dir(), "d"), std::errc::no_such_file_or_directory);
  make_file(fx, fx.dir(), "f", 0);
  CHECK_ERR(fx.ops.rmdir(fx.dir(), "f"), std::errc::not_a_directory);
  CHECK_ERR(fx.ops.mkdir(fx.dir(), "f"), std::errc::file_exists);
  CHECK(names(fx, fx.dir()) == std::set<std::string>{"f"});
}

// ---------------------------------------------------------------------------
// fsync, stat, set_mtime, list, statvfs

FILE_REFLINK_FIXTURE_TEST("fs_ops: fsync a file, a directory and the handle's own directory") {
  make_file(fx, fx.dir(), "a", 0, {{0, "data"}});
  REQUIRE_OK(fx.ops.fsync(fx.dir(), "a"));
  REQUIRE_OK(fx.ops.mkdir(fx.dir(), "d"));
  REQUIRE_OK(fx.ops.fsync(fx.dir(), "d"));
  REQUIRE_OK(fx.ops.fsync(fx.dir(), ""));
  auto d = fx.open(fx.root / "d");
  REQUIRE_OK(fx.ops.fsync(d, ""));
  CHECK_ERR(fx.ops.fsync(fx.dir(), "missing"), std::errc::no_such_file_or_directory);
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: stat reports type, size, allocation and identity") {
  make_file(fx, fx.dir(), "a", 1 * MiB, {{0, pattern(64 * KiB)}});
  make_file(fx, fx.dir(), "b", 0);
  REQUIRE_OK(fx.ops.mkdir(fx.dir(), "d"));
  auto a = stat_of(fx, fx.dir(), "a");
  auto b = stat_of(fx, fx.dir(), "b");
  auto d = stat_of(fx, fx.dir(), "d");
  auto self = stat_of(fx, fx.dir(), "");
  CHECK(a.type == file_type::regular);
  CHECK(a.size == 1 * MiB);
  CHECK(a.allocated >= 64 * KiB);
  CHECK(a.allocated <= 64 * KiB + slack);
  CHECK(a.nlink == 1);
  CHECK(a.ino != 0);
  CHECK(a.ino != b.ino);
  CHECK(a.dev == self.dev);
  CHECK(a.dev == d.dev);
  CHECK(a.mtime.sec > 0);
  CHECK(a.ctime.sec > 0);
  CHECK(b.size == 0);
  CHECK(b.allocated == 0);
  CHECK(d.type == file_type::directory);
  CHECK(d.nlink >= 1);
  CHECK(self.type == file_type::directory);
  CHECK(self.ino == REQUIRE_VALUE(fx.ops.stat_path(fx.root)).ino);
  make_file(fx, fx.other_dir(), "c", 0);
  CHECK(stat_of(fx, fx.other_dir(), "c").dev != a.dev);
  CHECK_ERR(fx.ops.stat(fx.dir(), "missing"), std::errc::no_such_file_or_directory);
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: mtime and ctime change on write and resize") {
  const file_time old = file_time::from_ns(1'000'000'000'000'000'000);  // 2001
  make_file(fx, fx.dir(), "a", 0, {{0, "x"}});
  REQUIRE_OK(fx.ops.set_mtime(fx.dir(), "a", old));
  const auto ctime0 = stat_of(fx, fx.dir(), "a").ctime;
  REQUIRE(stat_of(fx, fx.dir(), "a").mtime == old);
  write_bytes(fx, fx.dir(), "a", 0, "y");
  auto st = stat_of(fx, fx.dir(), "a");
  CHECK(st.mtime > old);
  CHECK(st.ctime >= ctime0);
  REQUIRE_OK(fx.ops.set_mtime(fx.dir(), "a", old));
  REQUIRE_OK(fx.ops.resize(fx.dir(), "a", 1 * MiB));
  CHECK(stat_of(fx, fx.dir(), "a").mtime > old);
  REQUIRE_OK(fx.ops.set_mtime(fx.dir(), "a", old));
  REQUIRE_OK(fx.ops.create(fx.dir(), "a", 0, create_mode::truncate));
  CHECK(stat_of(fx, fx.dir(), "a").mtime > old);
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: set_mtime is read back to the nanosecond") {
  make_file(fx, fx.dir(), "a", 0);
  for (std::int64_t t : {std::int64_t(1'700'000'000'123'456'789), std::int64_t(946'684'800'000'000'001),
                         std::int64_t(1'234'567'890'999'999'999)}) {
    REQUIRE_OK(fx.ops.set_mtime(fx.dir(), "a", file_time::from_ns(t)));
    CHECK(stat_of(fx, fx.dir(), "a").mtime == file_time::from_ns(t));
  }
  REQUIRE_OK(fx.ops.mkdir(fx.dir(), "d"));
  REQUIRE_OK(fx.ops.set_mtime(fx.dir(), "d", file_time::from_ns(1'600'000'000'000'000'007)));
  CHECK(stat_of(fx, fx.dir(), "d").mtime == file_time::from_ns(1'600'000'000'000'000'007));
  // The size and the data are not touched.
  CHECK(stat_of(fx, fx.dir(), "a").size == 0);
  CHECK_ERR(fx.ops.set_mtime(fx.dir(), "missing", file_time{1, 0}), std::errc::no_such_file_or_directory);
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: list gives names and types without . and ..") {
  CHECK(REQUIRE_VALUE(fx.ops.list(fx.dir(), "")).empty());
  make_file(fx, fx.dir(), "a", 0);
  make_file(fx, fx.dir(), "b", 10);
  REQUIRE_OK(fx.ops.mkdir(fx.dir(), "d"));
  make_file(fx, fx.dir(), "d/x", 0);
  fx.symlink("a", fx.root / "s");
  auto entries = REQUIRE_VALUE(fx.ops.list(fx.dir(), ""));
  std::map<std::string, file_type> got;
  for (const auto& e : entries) CHECK(got.emplace(e.name, e.type).second);
  CHECK(got == std::map<std::string, file_type>{{"a", file_type::regular},
                                                {"b", file_type::regular},
                                                {"d", file_type::directory},
                                                {"s", file_type::symlink}});
  auto sub = REQUIRE_VALUE(fx.ops.list(fx.dir(), "d"));
  REQUIRE(sub.size() == 1);
  CHECK(sub[0].name == "x");
  CHECK(sub[0].type == file_type::regular);
  CHECK_ERR(fx.ops.list(fx.dir(), "a"), std::errc::not_a_directory);
  CHECK_ERR(fx.ops.list(fx.dir(), "missing"), std::errc::no_such_file_or_directory);
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: statvfs reports size and free space, and free drops with data") {
  auto before = REQUIRE_VALUE(fx.ops.statvfs(fx.dir()));
  CHECK(before.size >= 100 * MiB);
  CHECK(before.free <= before.size);
  CHECK(before.available <= before.free);
  CHECK(before.free >= 32 * MiB);
  make_file(fx, fx.dir(), "a", 0, {{0, pattern(16 * MiB)}});
  REQUIRE_OK(fx.ops.fsync(fx.dir(), ""));
  fx.sync();  // btrfs counts the space at its next commit
  auto after = REQUIRE_VALUE(fx.ops.statvfs(fx.dir()));
  INFO("free before " << before.free << ", after " << after.free);
  CHECK(after.size == before.size);
  CHECK(after.free < before.free);
  CHECK(before.free - after.free >= 8 * MiB);
}

// ---------------------------------------------------------------------------
// extents and sharing

FILE_REFLINK_FIXTURE_TEST("fs_ops: extents find the data and leave out the holes") {
  REQUIRE_OK(fx.ops.create(fx.dir(), "a", 4 * MiB, create_mode::exclusive));
  CHECK(extents_of(fx, fx.dir(), "a").empty());
  write_bytes(fx, fx.dir(), "a", 2 * MiB, pattern(64 * KiB, 1));
  write_bytes(fx, fx.dir(), "a", 0, pattern(64 * KiB, 2));
  REQUIRE_OK(fx.ops.fsync(fx.dir(), "a"));
  auto ex = extents_of(fx, fx.dir(), "a");
  REQUIRE_FALSE(ex.empty());
  for (const auto& e : ex) {
    INFO("extent logical " << e.logical << " physical " << e.physical << " length " << e.length);
    CHECK(e.length > 0);
    CHECK_FALSE(e.shared);
  }
  auto data = logical_ranges(ex);
  CHECK(overlap(data, {{0, 64 * KiB}, {2 * MiB, 2 * MiB + 64 * KiB}}) == 128 * KiB);
  CHECK(overlap(data, {{64 * KiB, 2 * MiB}, {2 * MiB + 64 * KiB, 4 * MiB}}) == 0);
  CHECK(total(physical_ranges(ex)) == total(data));  // no two extents on the same storage
  CHECK_ERR(fx.ops.extents(fx.dir(), "missing"), std::errc::no_such_file_or_directory);
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: after a clone every extent of both files is shared") {
  const std::string whole = make_sparse_source(fx, fx.dir(), "src");
  if constexpr (!Fx::reflinks) {
    // No clone here; a copy must share nothing.
    auto r = REQUIRE_VALUE(file_reflink::detail::copy_file(fx.ops, fx.dir(), "src", fx.dir(), "dst", copy_options{}));
    CHECK(r.method == copy_method::copy_file_range);
    CHECK(shared_bytes(fx, fx.dir(), "src", fx.dir(), "dst") == 0);
    for (const auto& e : extents_of(fx, fx.dir(), "dst")) CHECK_FALSE(e.shared);
    for (const auto& e : extents_of(fx, fx.dir(), "src")) CHECK_FALSE(e.shared);
    CHECK(read_all(fx, fx.dir(), "dst") == whole);
  } else {
    REQUIRE_OK(fx.ops.clone(fx.dir(), "src", fx.dir(), "dst"));
    auto src = extents_of(fx, fx.dir(), "src"), dst = extents_of(fx, fx.dir(), "dst");
    REQUIRE_FALSE(src.empty());
    REQUIRE_FALSE(dst.empty());
    for (const auto& e : src) CHECK(e.shared);
    for (const auto& e : dst) CHECK(e.shared);
    CHECK(total(logical_ranges(dst)) == sparse_source_data);
    CHECK(merged(logical_ranges(dst)) == merged(logical_ranges(src)));
    CHECK(shared_bytes(fx, fx.dir(), "src", fx.dir(), "dst") == sparse_source_data);
  }
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: a block written into a clone stops being shared and the rest stays") {
  const std::string whole = make_sparse_source(fx, fx.dir(), "src");
  if constexpr (!Fx::reflinks) {
    CHECK_ERR(fx.ops.clone(fx.dir(), "src", fx.dir(), "dst"), std::errc::operation_not_supported);
  } else {
    REQUIRE_OK(fx.ops.clone(fx.dir(), "src", fx.dir(), "dst"));
    const std::string block = pattern(4 * KiB, 99);
    write_bytes(fx, fx.dir(), "dst", 0, block);
    REQUIRE_OK(fx.ops.fsync(fx.dir(), "dst"));
    auto dst = extents_of(fx, fx.dir(), "dst");
    ranges unshared, shared;
    for (const auto& e : dst) (e.shared ? shared : unshared).emplace_back(e.logical, e.logical + e.length);
    INFO("dst extents: " << dst.size());
    CHECK(overlap(unshared, {{0, 4 * KiB}}) == 4 * KiB);
    CHECK(overlap(shared, {{0, 4 * KiB}}) == 0);
    CHECK(overlap(shared, {{4 * KiB, 256 * KiB}, {1 * MiB, 1 * MiB + 256 * KiB}}) == sparse_source_data - 4 * KiB);
    CHECK(shared_bytes(fx, fx.dir(), "src", fx.dir(), "dst") == sparse_source_data - 4 * KiB);
    CHECK(read_at(fx, fx.dir(), "dst", 0, block.size()) == block);
    CHECK(read_all(fx, fx.dir(), "src") == whole);
    CHECK(read_at(fx, fx.dir(), "dst", 4 * KiB, whole.size()) == whole.substr(4 * KiB));
  }
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: storage_extents map the data to the addresses extents give, without the shared flag") {
  const std::string whole = make_sparse_source(fx, fx.dir(), "src");
  if constexpr (Fx::reflinks) {
    REQUIRE_OK(fx.ops.clone(fx.dir(), "src", fx.dir(), "dst"));
  } else {
    REQUIRE_VALUE(file_reflink::detail::copy_file(fx.ops, fx.dir(), "src", fx.dir(), "dst", copy_options{}));
  }
  // Not flushed: the map says where the data will be once written back.
  write_bytes(fx, fx.dir(), "dst", 0, pattern(4 * KiB, 98));
  REQUIRE_OK(fx.ops.punch_hole(fx.dir(), "dst", MiB, 64 * KiB));
  write_bytes(fx, fx.dir(), "dst", 3 * MiB, pattern(8 * KiB, 97));
  const auto check_file = [&](const path& name) {
    INFO("file " << name.string());
    auto st = REQUIRE_VALUE(fx.ops.storage_extents(fx.dir(), name));
    for (const auto& e : st) CHECK_FALSE(e.shared);
    auto ex = extents_of(fx, fx.dir(), name);
    CHECK(storage_text(st) == storage_text(ex));
    CHECK(merged(logical_ranges(st)) == merged(logical_ranges(ex)));
    return st;
  };
  const auto src = check_file("src");
  const auto dst = check_file("dst");
  CHECK(overlap(logical_ranges(dst), {{0, 4 * KiB}, {3 * MiB, 3 * MiB + 8 * KiB}}) == 12 * KiB);
  CHECK(overlap(logical_ranges(dst), {{MiB, MiB + 64 * KiB}}) == 0);
  // Where dst was written it no longer maps to src's storage.
  CHECK(overlap(physical_ranges(src), physical_ranges(file_reflink::detail::extents_within(dst, 4 * KiB))) == 0);
  if constexpr (Fx::real) {
    // The path a process without CAP_SYS_ADMIN takes (FIEMAP on btrfs too).
    LinuxFsOps::set_use_btrfs_tree_search(false);
    auto fallback = fx.ops.storage_extents(fx.dir(), "dst");
    LinuxFsOps::set_use_btrfs_tree_search(true);
    REQUIRE_OK(fallback);
    CHECK(storage_text(fallback.value()) == storage_text(dst));
  }
  CHECK_ERR(fx.ops.storage_extents(fx.dir(), "missing"), std::errc::no_such_file_or_directory);
  REQUIRE_OK(fx.ops.mkdir(fx.dir(), "d"));
  auto dir_map = fx.ops.storage_extents(fx.dir(), "d");
  auto dir_ex = fx.ops.extents(fx.dir(), "d");
  CHECK(static_cast<bool>(dir_map) == static_cast<bool>(dir_ex));
  if (!dir_map && !dir_ex) CHECK(dir_map.error().code() == dir_ex.error().code());
  CHECK(read_all(fx, fx.dir(), "src") == whole);
}

// ---------------------------------------------------------------------------
// clone

FILE_REFLINK_FIXTURE_TEST("fs_ops: clone makes an equal file sharing all data, or says EOPNOTSUPP") {
  const std::string whole = make_sparse_source(fx, fx.dir(), "src");
  auto r = fx.ops.clone(fx.dir(), "src", fx.dir(), "dst");
  if constexpr (Fx::reflinks) {
    REQUIRE_OK(r);
    auto st = stat_of(fx, fx.dir(), "dst");
    CHECK(st.size == 4 * MiB);
    CHECK(st.nlink == 1);
    CHECK(st.ino != stat_of(fx, fx.dir(), "src").ino);
    CHECK(read_all(fx, fx.dir(), "dst") == whole);
    CHECK(shared_bytes(fx, fx.dir(), "src", fx.dir(), "dst") == sparse_source_data);
    if constexpr (Fx::real) CHECK(mode_of(fx.root / "dst") == 0600u);
    // The clone is a separate file: writing to it leaves the source alone.
    write_bytes(fx, fx.dir(), "dst", 100, "changed");
    CHECK(read_all(fx, fx.dir(), "src") == whole);
    // Into a subdirectory through another handle.
    REQUIRE_OK(fx.ops.mkdir(fx.dir(), "sub"));
    auto sub = fx.open(fx.root / "sub");
    REQUIRE_OK(fx.ops.clone(fx.dir(), "src", sub, "copy"));
    CHECK(read_all(fx, sub, "copy") == whole);
  } else {
    REQUIRE(!r);
    INFO(r.error().message());
    CHECK(r.error().code() == std::errc::operation_not_supported);
    CHECK_FALSE(exists(fx, fx.dir(), "dst"));
  }
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: clone refuses an existing destination and a missing source") {
  make_file(fx, fx.dir(), "src", 0, {{0, pattern(8 * KiB)}});
  make_file(fx, fx.dir(), "dst", 0, {{0, "mine"}});
  CHECK_ERR(fx.ops.clone(fx.dir(), "src", fx.dir(), "dst"), std::errc::file_exists);
  CHECK(read_all(fx, fx.dir(), "dst") == "mine");
  CHECK_ERR(fx.ops.clone(fx.dir(), "missing", fx.dir(), "new"), std::errc::no_such_file_or_directory);
  CHECK_FALSE(exists(fx, fx.dir(), "new"));
  CHECK(names(fx, fx.dir()) == std::set<std::string>{"src", "dst"});
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: clone across filesystems fails with EXDEV and leaves nothing") {
  make_file(fx, fx.dir(), "src", 0, {{0, pattern(8 * KiB)}});
  CHECK_ERR(fx.ops.clone(fx.dir(), "src", fx.other_dir(), "dst"), std::errc::cross_device_link);
  CHECK(names(fx, fx.other_dir()).empty());
  make_file(fx, fx.other_dir(), "back", 0, {{0, pattern(8 * KiB)}});
  CHECK_ERR(fx.ops.clone(fx.other_dir(), "back", fx.dir(), "dst"), std::errc::cross_device_link);
  CHECK(names(fx, fx.dir()) == std::set<std::string>{"src"});
}

// ---------------------------------------------------------------------------
// copy

FILE_REFLINK_FIXTURE_TEST("fs_ops: copy clones on a reflink filesystem and uses copy_file_range elsewhere") {
  const std::string whole = make_sparse_source(fx, fx.dir(), "src");
  auto r = REQUIRE_VALUE(file_reflink::detail::copy_file(fx.ops, fx.dir(), "src", fx.dir(), "dst", copy_options{}));
  CHECK(read_all(fx, fx.dir(), "dst") == whole);
  CHECK(r.bytes == sparse_source_data);
  if constexpr (Fx::real) CHECK(mode_of(fx.root / "dst") == 0600u);
  if constexpr (Fx::reflinks) {
    CHECK(r.method == copy_method::clone);
    CHECK_FALSE(r.reflink_unsupported_noticed);
    CHECK(shared_bytes(fx, fx.dir(), "src", fx.dir(), "dst") == sparse_source_data);
  } else {
    CHECK(r.method == copy_method::copy_file_range);
    CHECK(r.reflink_unsupported_noticed);
    CHECK(shared_bytes(fx, fx.dir(), "src", fx.dir(), "dst") == 0);
    CHECK(allocated(fx, fx.dir(), "dst") <= allocated(fx, fx.dir(), "src") + slack);
  }
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: a filesystem without reflinks is noticed by the first copy only") {
  make_file(fx, fx.dir(), "src", 0, {{0, pattern(64 * KiB)}});
  auto first = REQUIRE_VALUE(file_reflink::detail::copy_file(fx.ops, fx.dir(), "src", fx.dir(), "a", copy_options{}));
  auto second = REQUIRE_VALUE(file_reflink::detail::copy_file(fx.ops, fx.dir(), "src", fx.dir(), "b", copy_options{}));
  CHECK(first.reflink_unsupported_noticed == !Fx::reflinks);
  CHECK_FALSE(second.reflink_unsupported_noticed);
  CHECK(second.method == (Fx::reflinks ? copy_method::clone : copy_method::copy_file_range));
  CHECK(read_all(fx, fx.dir(), "b") == read_all(fx, fx.dir(), "src"));
  // A copy of the handle shares what it learnt.
  auto handle_copy = fx.dir();
  auto third = REQUIRE_VALUE(file_reflink::detail::copy_file(fx.ops, fx.dir(), "src", handle_copy, "c", copy_options{}));
  CHECK_FALSE(third.reflink_unsupported_noticed);
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: copy without clone copies per data segment and keeps holes") {
  const std::string whole = make_sparse_source(fx, fx.dir(), "src");
  copy_options opts;
  opts.try_clone = false;
  auto r = REQUIRE_VALUE(file_reflink::detail::copy_file(fx.ops, fx.dir(), "src", fx.dir(), "dst", opts));
  CHECK(r.method == copy_method::copy_file_range);
  CHECK(r.bytes == sparse_source_data);
  CHECK_FALSE(r.reflink_unsupported_noticed);
  CHECK(read_all(fx, fx.dir(), "dst") == whole);
  CHECK(stat_of(fx, fx.dir(), "dst").size == 4 * MiB);
  CHECK(allocated(fx, fx.dir(), "dst") <= allocated(fx, fx.dir(), "src") + slack);
  CHECK(overlap(logical_ranges(extents_of(fx, fx.dir(), "dst")), {{256 * KiB, 1 * MiB}, {1280 * KiB, 4 * MiB}}) == 0);
  // Within one filesystem that has reflinks the kernel's copy_file_range
  // remaps (clones) the extents; without reflinks it copies them.
  CHECK(shared_bytes(fx, fx.dir(), "src", fx.dir(), "dst") == (Fx::reflinks ? sparse_source_data : 0));
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: the in-process sparse copy keeps holes and shares nothing") {
  const std::string whole = make_sparse_source(fx, fx.dir(), "src");
  copy_options opts;
  opts.try_clone = false;
  opts.try_copy_file_range = false;
  auto r = REQUIRE_VALUE(file_reflink::detail::copy_file(fx.ops, fx.dir(), "src", fx.dir(), "dst", opts));
  CHECK(r.method == copy_method::sparse_copy);
  CHECK(r.bytes == sparse_source_data);
  CHECK(read_all(fx, fx.dir(), "dst") == whole);
  CHECK(allocated(fx, fx.dir(), "dst") <= allocated(fx, fx.dir(), "src") + slack);
  CHECK(shared_bytes(fx, fx.dir(), "src", fx.dir(), "dst") == 0);
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: copy across filesystems keeps bytes and holes, both ways") {
  const std::string whole = make_sparse_source(fx, fx.dir(), "src");
  auto there = REQUIRE_VALUE(file_reflink::detail::copy_file(fx.ops, fx.dir(), "src", fx.other_dir(), "dst", copy_options{}));
  INFO("method there: " << std::string(to_string(there.method)));
  CHECK((there.method == copy_method::sparse_copy || there.method == copy_method::copy_file_range));
  CHECK(there.bytes == sparse_source_data);
  CHECK(read_all(fx, fx.other_dir(), "dst") == whole);
  CHECK(allocated(fx, fx.other_dir(), "dst") <= allocated(fx, fx.dir(), "src") + slack);

  auto back = REQUIRE_VALUE(file_reflink::detail::copy_file(fx.ops, fx.other_dir(), "dst", fx.dir(), "back", copy_options{}));
  INFO("method back: " << std::string(to_string(back.method)));
  CHECK((back.method == copy_method::sparse_copy || back.method == copy_method::copy_file_range));
  CHECK(read_all(fx, fx.dir(), "back") == whole);
  CHECK(allocated(fx, fx.dir(), "back") <= allocated(fx, fx.dir(), "src") + slack);
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: copy to a larger size adds a hole at the end") {
  const std::string whole = make_sparse_source(fx, fx.dir(), "src");
  for (bool clone : {true, false}) {
    CAPTURE(clone);
    copy_options opts;
    opts.size = 16 * MiB;
    opts.try_clone = clone;
    const path dst = clone ? "grown-clone" : "grown-copy";
    REQUIRE_OK(file_reflink::detail::copy_file(fx.ops, fx.dir(), "src", fx.dir(), dst, opts));
    CHECK(stat_of(fx, fx.dir(), dst).size == 16 * MiB);
    CHECK(read_at(fx, fx.dir(), dst, 0, whole.size()) == whole);
    CHECK(all_zero(read_at(fx, fx.dir(), dst, whole.size(), 12 * MiB)));
    CHECK(allocated(fx, fx.dir(), dst) <= allocated(fx, fx.dir(), "src") + slack);
  }
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: copy to a smaller size copies only what fits") {
  const std::string whole = make_sparse_source(fx, fx.dir(), "src");
  const std::uint64_t size = 1 * MiB + 100 * KiB + 7;  // inside the second data segment
  for (bool clone : {true, false}) {
    CAPTURE(clone);
    copy_options opts;
    opts.size = size;
    opts.try_clone = clone;
    const path dst = clone ? "short-clone" : "short-copy";
    auto r = REQUIRE_VALUE(file_reflink::detail::copy_file(fx.ops, fx.dir(), "src", fx.dir(), dst, opts));
    CHECK(stat_of(fx, fx.dir(), dst).size == size);
    CHECK(read_all(fx, fx.dir(), dst) == whole.substr(0, size));
    if (!clone) CHECK(r.bytes == 256 * KiB + 100 * KiB + 7);
    // The bytes beyond the end are really gone: growing shows zeros.
    REQUIRE_OK(fx.ops.resize(fx.dir(), dst, 4 * MiB));
    CHECK(all_zero(read_at(fx, fx.dir(), dst, size, 4 * MiB)));
  }
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: copy to size 0 and copy of an empty file copy nothing") {
  make_sparse_source(fx, fx.dir(), "src");
  copy_options zero;
  zero.size = 0;
  auto r = REQUIRE_VALUE(file_reflink::detail::copy_file(fx.ops, fx.dir(), "src", fx.dir(), "zero", zero));
  CHECK(r.method == copy_method::none);
  CHECK(r.bytes == 0);
  CHECK(stat_of(fx, fx.dir(), "zero").size == 0);

  make_file(fx, fx.dir(), "empty", 0);
  auto e = REQUIRE_VALUE(file_reflink::detail::copy_file(fx.ops, fx.dir(), "empty", fx.dir(), "empty-copy", copy_options{}));
  CHECK(e.method == copy_method::none);
  CHECK(e.bytes == 0);
  CHECK(stat_of(fx, fx.dir(), "empty-copy").size == 0);

  // A file that is all hole: any method, no data, same size.
  make_file(fx, fx.dir(), "hole", 8 * MiB);
  auto h = REQUIRE_VALUE(file_reflink::detail::copy_file(fx.ops, fx.dir(), "hole", fx.dir(), "hole-copy", copy_options{}));
  CHECK(h.bytes == 0);
  CHECK(stat_of(fx, fx.dir(), "hole-copy").size == 8 * MiB);
  CHECK(allocated(fx, fx.dir(), "hole-copy") == 0);
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: copy reports progress up to done == total") {
  make_file(fx, fx.dir(), "src", 16 * MiB, {{0, pattern(3 * MiB, 1)}, {8 * MiB, pattern(3 * MiB, 2)}});
  // 0: clone first (the default), 1: copy_file_range, 2: the in-process copy.
  for (int mode = 0; mode < 3; ++mode) {
    CAPTURE(mode);
    ProgressLog log;
    copy_options opts;
    opts.try_clone = mode == 0;
    opts.try_copy_file_range = mode != 2;
    opts.progress = log.callback();
    const path dst = "copy" + std::to_string(mode);
    auto r = REQUIRE_VALUE(file_reflink::detail::copy_file(fx.ops, fx.dir(), "src", fx.dir(), dst, opts));
    REQUIRE_FALSE(log.calls.empty());
    CHECK(log.calls.back().first == log.calls.back().second);
    CHECK(log.calls.back().second == 6 * MiB);
    CHECK(r.bytes == 6 * MiB);
    for (std::size_t i = 0; i < log.calls.size(); ++i) {
      CHECK(log.calls[i].first <= log.calls[i].second);
      CHECK(log.calls[i].second == log.calls.back().second);
      if (i > 0) CHECK(log.calls[i].first >= log.calls[i - 1].first);
    }
    // 6 MiB of data moved a chunk at a time: reported more than once.
    if (mode != 0) CHECK(log.calls.size() >= 2);
    CHECK(read_all(fx, fx.dir(), dst) == read_all(fx, fx.dir(), "src"));
  }
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: a cancelled copy fails with errc::cancelled and leaves nothing") {
  make_file(fx, fx.dir(), "src", 16 * MiB, {{0, pattern(6 * MiB, 1)}});
  for (bool clone : {true, false}) {
    CAPTURE(clone);
    ProgressLog log;
    copy_options opts;
    opts.try_clone = clone;
    opts.progress = log.callback(false);
    auto r = file_reflink::detail::copy_file(fx.ops, fx.dir(), "src", fx.dir(), "dst", opts);
    REQUIRE(!r);
    INFO(r.error().message());
    CHECK(r.error().code() == errc::cancelled);
    CHECK(r.error().code() == std::errc::operation_canceled);
    CHECK(r.error().message().find("cancelled") != std::string::npos);
    CHECK(log.calls.size() == 1);
    CHECK_FALSE(exists(fx, fx.dir(), "dst"));
  }
  // Cancelled across filesystems too.
  copy_options opts;
  opts.progress = [](std::uint64_t, std::uint64_t) { return false; };
  CHECK_ERR(file_reflink::detail::copy_file(fx.ops, fx.dir(), "src", fx.other_dir(), "dst", opts), errc::cancelled);
  CHECK(names(fx, fx.other_dir()).empty());
  CHECK(names(fx, fx.dir()) == std::set<std::string>{"src"});
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: copy refuses an existing destination and a missing source") {
  make_file(fx, fx.dir(), "src", 0, {{0, pattern(8 * KiB)}});
  make_file(fx, fx.dir(), "dst", 0, {{0, "mine"}});
  CHECK_ERR(file_reflink::detail::copy_file(fx.ops, fx.dir(), "src", fx.dir(), "dst", copy_options{}), std::errc::file_exists);
  CHECK(read_all(fx, fx.dir(), "dst") == "mine");
  CHECK_ERR(file_reflink::detail::copy_file(fx.ops, fx.dir(), "missing", fx.dir(), "new", copy_options{}),
            std::errc::no_such_file_or_directory);
  CHECK_ERR(file_reflink::detail::copy_file(fx.ops, fx.dir(), "src", fx.dir(), "nodir/new", copy_options{}),
            std::errc::no_such_file_or_directory);
  CHECK(names(fx, fx.dir()) == std::set<std::string>{"src", "dst"});
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: a copy that runs out of space fails and leaves nothing") {
  make_file(fx, fx.dir(), "src", 0, {{0, pattern(8 * MiB)}});
  fx.fill_to(512 * KiB);
  copy_options opts;
  opts.try_clone = false;
  if constexpr (!Fx::reflinks) {
    // copy_file_range really copies here (on btrfs and XFS it shares, and needs no space).
    CHECK_ERR(file_reflink::detail::copy_file(fx.ops, fx.dir(), "src", fx.dir(), "dst", opts), std::errc::no_space_on_device);
    CHECK_FALSE(exists(fx, fx.dir(), "dst"));
  }
  opts.try_copy_file_range = false;
  CHECK_ERR(file_reflink::detail::copy_file(fx.ops, fx.dir(), "src", fx.dir(), "dst", opts), std::errc::no_space_on_device);
  CHECK_FALSE(exists(fx, fx.dir(), "dst"));
  CHECK(names(fx, fx.dir()) == std::set<std::string>{"src"});
  fx.unfill();
}

// ---------------------------------------------------------------------------
// notify_resize, probe_reflink, path_of, handles

FILE_REFLINK_FIXTURE_TEST("fs_ops: notify_resize tells no one when no loop device uses the file") {
  make_file(fx, fx.dir(), "a", 1 * MiB);
  CHECK(REQUIRE_VALUE(fx.ops.notify_resize(fx.dir(), "a")) == 0u);
  REQUIRE_OK(fx.ops.resize(fx.dir(), "a", 2 * MiB));
  CHECK(REQUIRE_VALUE(fx.ops.notify_resize(fx.dir(), "a")) == 0u);
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: notify_resize tells the loop device backed by the file its new size") {
  make_file(fx, fx.dir(), "disk.img", 1 * MiB);
  if constexpr (Fx::real) {
    const path abs = fx.root / "disk.img";
    int fd = ::open(abs.c_str(), O_RDWR | O_CLOEXEC);
    REQUIRE_MESSAGE(fd >= 0, "open '" << abs.string() << "': " << std::string(std::strerror(errno)));
    LoopDevice loop;
    const std::string why = loop.attach(fd);
    ::close(fd);
    REQUIRE_MESSAGE(why.empty(), why);
    CHECK(loop.size() == 1 * MiB);
    REQUIRE_OK(fx.ops.resize(fx.dir(), "disk.img", 3 * MiB));
    CHECK(loop.size() == 1 * MiB);  // the kernel does not know yet
    CHECK(REQUIRE_VALUE(fx.ops.notify_resize(fx.dir(), "disk.img")) == 1u);
    CHECK(loop.size() == 3 * MiB);
    loop.close();
  } else {
    const int id = REQUIRE_VALUE(fx.ops.attach_loop(fx.root / "disk.img"));
    CHECK(fx.ops.loop_capacity(id) == 1 * MiB);
    REQUIRE_OK(fx.ops.resize(fx.dir(), "disk.img", 3 * MiB));
    CHECK(fx.ops.loop_capacity(id) == 1 * MiB);
    CHECK(REQUIRE_VALUE(fx.ops.notify_resize(fx.dir(), "disk.img")) == 1u);
    CHECK(fx.ops.loop_capacity(id) == 3 * MiB);
    fx.ops.detach_loop(id);
  }
  CHECK(REQUIRE_VALUE(fx.ops.notify_resize(fx.dir(), "disk.img")) == 0u);
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: probe_reflink says whether clones work and leaves nothing behind") {
  CHECK(REQUIRE_VALUE(fx.ops.probe_reflink(fx.dir())) == Fx::reflinks);
  CHECK(names(fx, fx.dir()).empty());
  make_file(fx, fx.dir(), "a", 0);
  CHECK(REQUIRE_VALUE(fx.ops.probe_reflink(fx.dir())) == Fx::reflinks);
  CHECK(names(fx, fx.dir()) == std::set<std::string>{"a"});
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: path_of joins the handle's path and the name") {
  CHECK(REQUIRE_VALUE(fx.ops.path_of(fx.dir(), "a.img")) == fx.root / "a.img");
  CHECK(REQUIRE_VALUE(fx.ops.path_of(fx.dir(), "vm/private.img")) == fx.root / "vm" / "private.img");
  auto sub = REQUIRE_VALUE(fx.ops.open_dir(fx.root / "vm", true)).handle;
  CHECK(REQUIRE_VALUE(fx.ops.path_of(sub, "root.img")) == fx.root / "vm" / "root.img");
  CHECK(REQUIRE_VALUE(fx.ops.path_of(fx.other_dir(), "x")) == fx.other_root / "x");
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: a handle follows its directory through a rename, like an open fd") {
  REQUIRE_OK(fx.ops.mkdir(fx.dir(), "d"));
  auto d = fx.open(fx.root / "d");
  REQUIRE_OK(fx.ops.rename(fx.dir(), "d", "e"));
  REQUIRE_OK(fx.ops.create(d, "x", 1, create_mode::exclusive));
  CHECK(names(fx, fx.dir()) == std::set<std::string>{"e", "e/x"});
  // A removed directory takes no new names.
  REQUIRE_OK(fx.ops.mkdir(fx.dir(), "z"));
  auto z = fx.open(fx.root / "z");
  REQUIRE_OK(fx.ops.rmdir(fx.dir(), "z"));
  CHECK_ERR(fx.ops.create(z, "y", 1, create_mode::exclusive), std::errc::no_such_file_or_directory);
  CHECK(REQUIRE_VALUE(fx.ops.list(z, "")).empty());
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: handles are copies of one open directory") {
  auto copy = fx.dir();
  auto moved = std::move(copy);
  REQUIRE_OK(fx.ops.create(moved, "a", 3, create_mode::exclusive));
  CHECK(stat_of(fx, fx.dir(), "a").size == 3);
  CHECK(REQUIRE_VALUE(fx.ops.path_of(moved, "a")) == fx.root / "a");
  // A policy object is a value; a copy of it works on the same filesystem.
  auto ops2 = fx.ops;
  CHECK(REQUIRE_VALUE(ops2.stat(fx.dir(), "a")).size == 3);
}

// ---------------------------------------------------------------------------
// Symlinks and escapes: nothing resolves through a symlink or out of the handle

namespace {

//! A tree with symlinks in it, and a directory outside root with a secret.
template <class Fx>
struct Trap {
  path outside;
  explicit Trap(Fx& fx) {
    outside = fx.root.parent_path() / (fx.root.filename().string() + ".outside");
    auto out = fx.open(outside, true);
    make_file(fx, out, "secret", 0, {{0, "secret"}});
    REQUIRE_OK(fx.ops.mkdir(fx.dir(), "dir"));
    make_file(fx, fx.dir(), "dir/f", 0, {{0, "inside"}});
    make_file(fx, fx.dir(), "file", 0, {{0, "file data"}});
    fx.symlink("dir", fx.root / "ldir");
    fx.symlink("file", fx.root / "lfile");
    fx.symlink(outside, fx.root / "lout");
    fx.symlink(outside / "secret", fx.root / "lsecret");
  }
  //! The tree inside root and the world outside are as they were.
  void check_untouched(Fx& fx) {
    auto out = fx.open(outside);
    CHECK(names(fx, out) == std::set<std::string>{"secret"});  // "absent" was never made
    CHECK(read_all(fx, out, "secret") == "secret");
    CHECK(names(fx, fx.dir()) == std::set<std::string>{"dir", "dir/f", "file", "ldir", "lfile", "lout", "lsecret"});
    CHECK(read_all(fx, fx.dir(), "dir/f") == "inside");
    CHECK(read_all(fx, fx.dir(), "file") == "file data");
    REQUIRE_OK(fx.ops.remove(out, "secret"));
    REQUIRE_OK(fx.ops.remove_dir(outside));
  }
};

//! Every operation that names `rel` (as its source, destination or only
//! path) must fail with `code` and change nothing.
template <class Fx>
void check_every_op_refuses(Fx& fx, const path& rel, std::errc code) {
  INFO("path: " << rel.string());
  const auto& h = fx.dir();
  char buf[16];
  copy_options opts;
  CHECK_ERR(fx.ops.create(h, rel, 0, create_mode::exclusive), code);
  CHECK_ERR(fx.ops.create(h, rel, 0, create_mode::truncate), code);
  CHECK_ERR(fx.ops.read(h, rel, 0, buf, sizeof buf), code);
  CHECK_ERR(fx.ops.write(h, rel, 0, "pwned", 5), code);
  CHECK_ERR(fx.ops.resize(h, rel, 0), code);
  CHECK_ERR(fx.ops.punch_hole(h, rel, 0, 4096), code);
  CHECK_ERR(fx.ops.fsync(h, rel), code);
  CHECK_ERR(fx.ops.stat(h, rel), code);
  CHECK_ERR(fx.ops.set_mtime(h, rel, file_time{1, 0}), code);
  CHECK_ERR(fx.ops.extents(h, rel), code);
  CHECK_ERR(fx.ops.remove(h, rel), code);
  CHECK_ERR(fx.ops.rename(h, rel, "renamed"), code);
  CHECK_ERR(fx.ops.rename(h, "file", rel), code);
  CHECK_ERR(fx.ops.link(h, rel, "linked"), code);
  CHECK_ERR(fx.ops.link(h, "file", rel), code);
  CHECK_ERR(fx.ops.clone(h, rel, h, "cloned"), code);
  CHECK_ERR(fx.ops.clone(h, "file", h, rel), code);
  CHECK_ERR(file_reflink::detail::copy_file(fx.ops, h, rel, h, "copied", opts), code);
  CHECK_ERR(file_reflink::detail::copy_file(fx.ops, h, "file", h, rel, opts), code);
  CHECK_ERR(fx.ops.data_segments(h, rel, 4096), code);
  CHECK_ERR(fx.ops.copy_range(h, rel, h, "file", 0, 5), code);
  CHECK_ERR(fx.ops.copy_range(h, "file", h, rel, 0, 5), code);
  CHECK_ERR(fx.ops.notify_resize(h, rel), code);
}

//! Directory operations on a path that goes through `rel` as a directory.
template <class Fx>
void check_dir_ops_refuse(Fx& fx, const path& rel, std::errc code) {
  INFO("path: " << rel.string());
  const auto& h = fx.dir();
  CHECK_ERR(fx.ops.list(h, rel), code);
  CHECK_ERR(fx.ops.mkdir(h, rel / "newdir"), code);
  CHECK_ERR(fx.ops.rmdir(h, rel / "newdir"), code);
  CHECK_ERR(fx.ops.list(h, rel / "."), code);
}

template <class Fx>
void symlink_components_refused(Fx& fx) {
  Trap<Fx> trap(fx);
  check_every_op_refuses(fx, "ldir/f", std::errc::too_many_symbolic_link_levels);
  check_every_op_refuses(fx, "lout/secret", std::errc::too_many_symbolic_link_levels);
  check_dir_ops_refuse(fx, "ldir", std::errc::too_many_symbolic_link_levels);
  check_dir_ops_refuse(fx, "lout", std::errc::too_many_symbolic_link_levels);
  trap.check_untouched(fx);
}

template <class Fx>
void symlink_last_component_refused(Fx& fx) {
  Trap<Fx> trap(fx);
  const auto& h = fx.dir();
  for (const char* name : {"lfile", "lsecret"}) {
    INFO("name: " << std::string(name));
    const path rel = name;
    char buf[16];
    constexpr auto eloop = std::errc::too_many_symbolic_link_levels;
    CHECK_ERR(fx.ops.read(h, rel, 0, buf, sizeof buf), eloop);
    CHECK_ERR(fx.ops.write(h, rel, 0, "pwned", 5), eloop);
    CHECK_ERR(fx.ops.create(h, rel, 0, create_mode::truncate), eloop);
    CHECK_ERR(fx.ops.resize(h, rel, 0), eloop);
    CHECK_ERR(fx.ops.punch_hole(h, rel, 0, 4096), eloop);
    CHECK_ERR(fx.ops.fsync(h, rel), eloop);
    CHECK_ERR(fx.ops.extents(h, rel), eloop);
    CHECK_ERR(fx.ops.clone(h, rel, h, "cloned"), eloop);
    CHECK_ERR(file_reflink::detail::copy_file(fx.ops, h, rel, h, "copied", copy_options{}), eloop);
    CHECK_ERR(fx.ops.data_segments(h, rel, 4096), eloop);
    CHECK_ERR(fx.ops.copy_range(h, rel, h, "file", 0, 5), eloop);
    CHECK_ERR(fx.ops.copy_range(h, "file", h, rel, 0, 5), eloop);
    // Exclusive creation finds the name taken, as O_CREAT|O_EXCL does.
    CHECK_ERR(fx.ops.create(h, rel, 0, create_mode::exclusive), std::errc::file_exists);
    CHECK_ERR(fx.ops.clone(h, "file", h, rel), std::errc::file_exists);
    CHECK_ERR(file_reflink::detail::copy_file(fx.ops, h, "file", h, rel, copy_options{}), std::errc::file_exists);
  }
  CHECK_ERR(fx.ops.list(h, "ldir"), std::errc::too_many_symbolic_link_levels);
  CHECK_ERR(fx.ops.list(h, "lout"), std::errc::too_many_symbolic_link_levels);
  CHECK_ERR(fx.ops.fsync(h, "ldir"), std::errc::too_many_symbolic_link_levels);
  trap.check_untouched(fx);
}

template <class Fx>
void escapes_refused(Fx& fx) {
  Trap<Fx> trap(fx);
  const std::string leaf = trap.outside.filename().string();
  constexpr auto exdev = std::errc::cross_device_link;
  check_every_op_refuses(fx, trap.outside / "secret", exdev);
  check_every_op_refuses(fx, trap.outside / "absent", exdev);
  check_every_op_refuses(fx, path("..") / leaf / "secret", exdev);
  check_every_op_refuses(fx, path("dir/../..") / leaf / "secret", exdev);
  check_dir_ops_refuse(fx, trap.outside, exdev);
  check_dir_ops_refuse(fx, path("..") / leaf, exdev);
  CHECK_ERR(fx.ops.list(fx.dir(), ".."), exdev);
  CHECK_ERR(fx.ops.fsync(fx.dir(), ".."), exdev);
  CHECK_ERR(fx.ops.list(fx.dir(), "/"), exdev);
  trap.check_untouched(fx);
}

}  // namespace

FILE_REFLINK_FIXTURE_TEST("fs_ops: a symlink as a directory component is refused with ELOOP") {
  symlink_components_refused(fx);
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: a symlink as a directory component is refused with ELOOP (component walk)") {
  ComponentWalk<Fx> walk;
  symlink_components_refused(fx);
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: a symlink as the name of an opened file is refused with ELOOP") {
  symlink_last_component_refused(fx);
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: a symlink as the name of an opened file is refused with ELOOP (component walk)") {
  ComponentWalk<Fx> walk;
  symlink_last_component_refused(fx);
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: absolute paths and .. escapes fail with EXDEV and touch nothing outside") {
  escapes_refused(fx);
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: absolute paths and .. escapes fail with EXDEV (component walk)") {
  ComponentWalk<Fx> walk;
  escapes_refused(fx);
}

FILE_REFLINK_FIXTURE_TEST("fs_ops: stat, remove, rename and link act on a symlink itself") {
  Trap<Fx> trap(fx);
  auto st = stat_of(fx, fx.dir(), "lfile");
  CHECK(st.type == file_type::symlink);
  CHECK(stat_of(fx, fx.dir(), "ldir").type == file_type::symlink);
  CHECK(stat_of(fx, fx.dir(), "lsecret").type == file_type::symlink);

  // set_mtime sets the link's own time, not its target's.
  const auto target_mtime = stat_of(fx, fx.dir(), "file").mtime;
  REQUIRE_OK(fx.ops.set_mtime(fx.dir(), "lfile", file_time{1'500'000'000, 0}));
  CHECK(stat_of(fx, fx.dir(), "lfile").mtime == file_time{1'500'000'000, 0});
  CHECK(stat_of(fx, fx.dir(), "file").mtime == target_mtime);

  // link makes a second name for the link, not for its target.
  REQUIRE_OK(fx.ops.link(fx.dir(), "lfile", "lfile2"));
  CHECK(stat_of(fx, fx.dir(), "lfile2").type == file_type::symlink);
  CHECK(stat_of(fx, fx.dir(), "lfile2").ino == st.ino);
  CHECK(stat_of(fx, fx.dir(), "file").nlink == 1);
  REQUIRE_OK(fx.ops.remove(fx.dir(), "lfile2"));

  // rename moves the link; remove removes it; the targets stay.
  REQUIRE_OK(fx.ops.rename(fx.dir(), "lsecret", "moved"));
  CHECK(stat_of(fx, fx.dir(), "moved").type == file_type::symlink);
  REQUIRE_OK(fx.ops.remove(fx.dir(), "moved"));
  REQUIRE_OK(fx.ops.remove(fx.dir(), "lfile"));
  REQUIRE_OK(fx.ops.remove(fx.dir(), "ldir"));
  REQUIRE_OK(fx.ops.remove(fx.dir(), "lout"));
  CHECK(names(fx, fx.dir()) == std::set<std::string>{"dir", "dir/f", "file"});
  CHECK(read_all(fx, fx.dir(), "file") == "file data");
  auto out = fx.open(trap.outside);
  CHECK(read_all(fx, out, "secret") == "secret");
  // A symlink named as the target of a rename is replaced, not followed.
  fx.symlink(trap.outside / "secret", fx.root / "lsecret");
  REQUIRE_OK(fx.ops.rename(fx.dir(), "file", "lsecret"));
  CHECK(stat_of(fx, fx.dir(), "lsecret").type == file_type::regular);
  CHECK(read_all(fx, out, "secret") == "secret");
  REQUIRE_OK(fx.ops.remove(out, "secret"));
  REQUIRE_OK(fx.ops.remove_dir(trap.outside));
}
