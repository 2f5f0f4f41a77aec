// SPDX-License-Identifier: BSL-1.0
//! \file
//! The fixtures every behaviour test runs on: the in-memory policy, and the
//! Linux policy on a real btrfs, XFS and ext4. A test is written once with
//! `FILE_REFLINK_FIXTURE_TEST("...")` and runs on all four; its name ends in
//! "<memory>", "<btrfs>", "<xfs>" or "<ext4>", which is how ctest labels it.
//!
//! Each fixture instance gives the test:
//! - `ops`: the policy (a fresh in-memory filesystem, or `LinuxFsOps{}`);
//! - `root`: a fresh, empty, absolute directory on the filesystem under test,
//!   and `dir()`, a handle of it;
//! - `other_root` / `other_dir()`: an empty directory on another filesystem,
//!   one without reflinks on every fixture (a tmpfs, or an in-memory mount
//!   made with `reflink = false`), for EXDEV and cross-filesystem copies;
//! - `symlink(target, abs_link)`, `fill_to(free_left)` / `unfill()`;
//! - `Fx::reflinks`, `Fx::real`, `Fx::name`.
#pragma once

#include "support/patterns.hpp"
#include "support/ranges.hpp"
#include "support/scratch_fs.hpp"

#include <file_reflink/fs_ops.hpp>
#include <file_reflink/fs_ops/linux.hpp>
#include <file_reflink/fs_ops/memory.hpp>
#include <file_reflink/testing.hpp>

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

namespace file_reflink::test {

constexpr std::uint64_t KiB = 1024;
constexpr std::uint64_t MiB = 1024 * KiB;
constexpr std::uint64_t GiB = 1024 * MiB;

//! The message of a failed result, or "ok": for assertion messages.
template <class R>
std::string message_of(const R& r) {
  return r ? std::string("ok") : r.error().message();
}

//! Fail the test (REQUIRE level) at the caller's line, printing the error.
template <class R>
decltype(auto) require_ok(R&& r, const char* expr, const char* file, int line) {
  // doctest prints a `const char*` as an address: hand it strings.
  if (!r) ADD_FAIL_AT(file, line, (std::string(expr) + " failed: " + r.error().message()));
  if constexpr (!std::is_void_v<typename std::decay_t<R>::value_type>)
    return std::move(r).value();
}

}  // namespace file_reflink::test

//! Require that a result succeeded; on failure print its message and stop the test.
#define REQUIRE_OK(...) ((void)::file_reflink::test::require_ok((__VA_ARGS__), #__VA_ARGS__, __FILE__, __LINE__))
//! Like REQUIRE_OK, and yield the value.
#define REQUIRE_VALUE(...) ::file_reflink::test::require_ok((__VA_ARGS__), #__VA_ARGS__, __FILE__, __LINE__)
//! Check that a result failed with this code (a `std::errc` or `file_reflink::errc`);
//! print what happened otherwise.
#define CHECK_ERR(expr, expected)                                                                    \
  do {                                                                                           \
    auto&& file_reflink_r_ = (expr);                                                             \
    if (file_reflink_r_) {                                                                       \
      FAIL_CHECK(std::string(#expr " succeeded; expected " #expected));                                       \
    } else {                                                                                     \
      INFO(#expr " -> " << file_reflink_r_.error().message());                                   \
      CHECK(file_reflink_r_.error().code() == (expected));                                           \
    }                                                                                            \
  } while (0)
//! Like CHECK_ERR, but stop the test on a mismatch.
#define REQUIRE_ERR(expr, expected)                                                                  \
  do {                                                                                           \
    auto&& file_reflink_r_ = (expr);                                                             \
    if (file_reflink_r_) {                                                                       \
      FAIL(std::string(#expr " succeeded; expected " #expected));                                                 \
    } else {                                                                                     \
      INFO(#expr " -> " << file_reflink_r_.error().message());                                   \
      REQUIRE(file_reflink_r_.error().code() == (expected));                                         \
    }                                                                                            \
  } while (0)

namespace file_reflink::test {

// ---------------------------------------------------------------------------
// Fixtures

//! Common parts: the two directory handles, opened once per instance.
template <class Ops>
struct FixtureBase {
  using ops_type = Ops;
  using dir_handle = typename Ops::dir_handle;

  ops_type ops;
  path root;
  path other_root;

  //! A handle of `root`.
  const dir_handle& dir() const { return *dir_; }
  //! A handle of `other_root`, on another filesystem.
  const dir_handle& other_dir() const { return *other_dir_; }

  //! Open (and create) a directory by absolute path, or fail the test.
  dir_handle open(const path& abs, bool create = false) {
    auto r = ops.open_dir(abs, create);
    if (!r) FAIL("open_dir '" << abs.string() << "' failed: " << r.error().message());
    return r.value().handle;
  }

protected:
  void open_roots() {
    dir_.emplace(open(root, true));
    other_dir_.emplace(open(other_root, true));
  }
  std::optional<dir_handle> dir_;
  std::optional<dir_handle> other_dir_;
};

//! The in-memory policy: a fresh filesystem per instance, with reflinks
//! (btrfs/XFS semantics), of a small capacity so that filling it is cheap.
struct memory_fixture : FixtureBase<MemoryFsOps> {
  static constexpr bool real = false;
  static constexpr bool reflinks = true;
  static constexpr const char* name = "memory";
  //! Filling the filesystem costs this much heap, at most.
  static constexpr std::uint64_t capacity = 128 * MiB;

  memory_fixture() {
    root = "/mnt/scratch/t";
    other_root = "/mnt/other/t";
    file_reflink::mount_options scratch;
    scratch.capacity = capacity;
    REQUIRE_OK(ops.mount("/mnt/scratch", scratch));
    // Like the tmpfs of the real fixtures: another filesystem, without reflinks.
    file_reflink::mount_options other;
    other.reflink = false;
    other.capacity = 256 * MiB;
    REQUIRE_OK(ops.mount("/mnt/other", other));
    open_roots();
  }

  void symlink(const path& target, const path& abs_link) { REQUIRE_OK(ops.symlink(target, abs_link)); }

  //! Fill the filesystem of `root` until at most about `free_left` bytes are
  //! free (a hidden file beside `root`); `unfill` gives the space back.
  void fill_to(std::uint64_t free_left) {
    auto top = open("/mnt/scratch");
    if (!filled_) REQUIRE_OK(ops.create(top, fill_name, 0, create_mode::exclusive));
    filled_ = true;
    auto st = REQUIRE_VALUE(ops.stat(top, fill_name));
    std::uint64_t offset = st.size;
    std::string chunk(4 * MiB, '\x5a');
    std::size_t len = chunk.size();
    while (len >= 4 * KiB) {
      auto space = REQUIRE_VALUE(ops.statvfs(top));
      if (space.free <= free_left) break;
      std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(len, space.free - free_left));
      want -= want % (4 * KiB);
      if (want == 0) break;
      auto r = ops.write(top, fill_name, offset, chunk.data(), want);
      if (r) {
        offset += want;
        continue;
      }
      REQUIRE_MESSAGE(r.error().code() == std::errc::no_space_on_device, r.error().message());
      len /= 2;
    }
  }
  //! Bring the filesystem's space accounting up to date (nothing to do here).
  void sync() {}

  void unfill() {
    if (!filled_) return;
    REQUIRE_OK(ops.remove(open("/mnt/scratch"), fill_name));
    filled_ = false;
  }

  static constexpr const char* fill_name = ".fill";

private:
  bool filled_ = false;
};

//! The Linux policy on a real filesystem of `Kind`, made once per process.
template <scratch_kind Kind, class Ops = LinuxFsOps>
struct linux_fixture : FixtureBase<Ops> {
  using FixtureBase<Ops>::root;
  using FixtureBase<Ops>::other_root;
  static constexpr bool real = true;
  static constexpr bool reflinks = Kind != scratch_kind::ext4;
  static constexpr bool forwarded = !std::is_same<Ops, LinuxFsOps>::value;
  static constexpr const char* name = Kind == scratch_kind::btrfs ? (forwarded ? "btrfs-forwarded" : "btrfs")
                                      : Kind == scratch_kind::xfs ? "xfs"
                                                                  : "ext4";

  linux_fixture() {
    static unsigned instances = 0;
    ++instances;
    const std::string leaf = std::string(forwarded ? "f" : "t") + std::to_string(instances);
    mount_ = scratch_mount(Kind);
    root = path(mount_) / leaf;
    other_root = path(scratch_other_mount(Kind)) / (std::string(name) + "-" + leaf);
    fill_ = path(mount_) / (".fill-" + leaf);
    this->open_roots();
  }

  ~linux_fixture() {
    std::error_code ec;
    ::unlink(fill_.c_str());
    this->dir_.reset();
    this->other_dir_.reset();
    std::filesystem::remove_all(root.string(), ec);
    std::filesystem::remove_all(other_root.string(), ec);
  }

  void symlink(const path& target, const path& abs_link) {
    REQUIRE_MESSAGE(::symlink(target.c_str(), abs_link.c_str()) == 0,
                    "symlink '" << abs_link.string() << "': " << std::string(std::strerror(errno)));
  }

  //! Fill the filesystem until at most about `free_left` bytes are free, with
  //! fallocate (no data written: fast), in a file beside `root`.
  void fill_to(std::uint64_t free_left) {
    int fd = ::open(fill_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    REQUIRE_MESSAGE(fd >= 0, "open '" << fill_.string() << "': " << std::string(std::strerror(errno)));
    struct stat st {};
    ::fstat(fd, &st);
    std::uint64_t offset = static_cast<std::uint64_t>(st.st_size);
    std::uint64_t len = 1ull << 40;
    // Root may use the blocks reserved for it: count f_bfree, not f_bavail,
    // and halve the request until it fits, down to a few blocks.
    while (len >= 16 * KiB) {
      ::syncfs(fd);
      struct statvfs vfs {};
      ::fstatvfs(fd, &vfs);
      std::uint64_t free = std::uint64_t(vfs.f_bfree) * vfs.f_frsize;
      if (free <= free_left) break;
      std::uint64_t want = std::min(len, free - free_left);
      want -= want % (4 * KiB);
      if (want == 0) break;
      if (::fallocate(fd, 0, static_cast<off_t>(offset), static_cast<off_t>(want)) == 0) {
        offset += want;
        continue;
      }
      int err = errno;
      if (err != ENOSPC) {
        ::close(fd);
        FAIL("fallocate '" << fill_.string() << "': " << std::string(std::strerror(err)));
      }
      len = std::min(len, want) / 2;
    }
    ::syncfs(fd);
    ::close(fd);
  }
  //! Bring the filesystem's space accounting up to date: btrfs updates what
  //! statvfs reports only when it commits a transaction.
  void sync() {
    int fd = ::open(mount_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    REQUIRE_MESSAGE(fd >= 0, "open '" << mount_ << "': " << std::string(std::strerror(errno)));
    ::syncfs(fd);
    ::close(fd);
  }

  void unfill() {
    ::unlink(fill_.c_str());
    int fd = ::open(mount_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
      ::syncfs(fd);  // btrfs frees the space at the next commit
      ::close(fd);
    }
  }

private:
  std::string mount_;
  path fill_;
};

using btrfs_fixture = linux_fixture<scratch_kind::btrfs>;
using xfs_fixture = linux_fixture<scratch_kind::xfs>;
using ext4_fixture = linux_fixture<scratch_kind::ext4>;

//! Every fixture a behaviour test runs on.
//! A third policy, written as an embedder writes one: a plain forwarding
//! decorator over LinuxFsOps (`testing.hpp`). The behaviour tests run on it
//! too, on btrfs, when their target defines FILE_REFLINK_TEST_FORWARDED.
struct forwarded_linux_ops : forwarding_fs_ops<LinuxFsOps> {
  using forwarding_fs_ops::forwarding_fs_ops;
};
using forwarded_btrfs_fixture = linux_fixture<scratch_kind::btrfs, forwarded_linux_ops>;

#if defined(FILE_REFLINK_TEST_MEMORY_ONLY)
// A build that runs only the memory cases (CI's second compiler) compiles
// only them.
using all_fixtures = std::tuple<memory_fixture>;
#elif defined(FILE_REFLINK_TEST_FORWARDED)
using all_fixtures = std::tuple<memory_fixture, btrfs_fixture, xfs_fixture, ext4_fixture, forwarded_btrfs_fixture>;
#else
using all_fixtures = std::tuple<memory_fixture, btrfs_fixture, xfs_fixture, ext4_fixture>;
#endif

// ---------------------------------------------------------------------------
// Helpers, through the policy's own operations

//! Write `data` at `offset` of `rel`, or fail the test.
template <class Fx, class H>
void write_bytes(Fx& fx, const H& h, const path& rel, std::uint64_t offset, std::string_view data) {
  REQUIRE_OK(fx.ops.write(h, rel, offset, data.data(), data.size()));
}

//! A new file of `size` with `data` at the given offsets, fsynced.
template <class Fx, class H>
void make_file(Fx& fx, const H& h, const path& rel, std::uint64_t size,
               const std::vector<std::pair<std::uint64_t, std::string>>& data = {}) {
  REQUIRE_OK(fx.ops.create(h, rel, size, create_mode::exclusive));
  for (const auto& [offset, bytes] : data) write_bytes(fx, h, rel, offset, bytes);
  REQUIRE_OK(fx.ops.fsync(h, rel));
}

//! The stat of `rel`, or fail the test.
template <class Fx, class H>
file_stat stat_of(Fx& fx, const H& h, const path& rel) {
  return REQUIRE_VALUE(fx.ops.stat(h, rel));
}

//! The whole content of a file, read through the policy.
template <class Fx, class H>
std::string read_all(Fx& fx, const H& h, const path& rel) {
  auto st = stat_of(fx, h, rel);
  std::string s(static_cast<std::size_t>(st.size), '\0');
  std::size_t done = 0;
  while (done < s.size()) {
    std::size_t n = REQUIRE_VALUE(fx.ops.read(h, rel, done, s.data() + done, s.size() - done));
    if (n == 0) break;
    done += n;
  }
  REQUIRE_MESSAGE(done == s.size(), "read '" << rel.string() << "' ended at " << done << " of " << s.size());
  return s;
}

//! `len` bytes at `offset` (fewer at end of file).
template <class Fx, class H>
std::string read_at(Fx& fx, const H& h, const path& rel, std::uint64_t offset, std::size_t len) {
  std::string s(len, '\0');
  std::size_t n = REQUIRE_VALUE(fx.ops.read(h, rel, offset, s.data(), s.size()));
  s.resize(n);
  return s;
}

//! Whether a name exists (lstat), through the policy; any error other than
//! ENOENT fails the test.
template <class Fx, class H>
bool exists(Fx& fx, const H& h, const path& rel) {
  auto r = fx.ops.stat(h, rel);
  if (r) return true;
  REQUIRE_MESSAGE(r.error().code() == std::errc::no_such_file_or_directory, r.error().message());
  return false;
}

//! Every name below `rel`, recursively, as paths relative to `rel`
//! ("a", "d", "d/b"), so a test can compare whole trees.
template <class Fx, class H>
std::set<std::string> names(Fx& fx, const H& h, const path& rel = path()) {
  std::set<std::string> out;
  std::vector<std::pair<path, path>> todo{{rel, path()}};
  while (!todo.empty()) {
    auto [dir, prefix] = todo.back();
    todo.pop_back();
    auto entries = REQUIRE_VALUE(fx.ops.list(h, dir));
    for (const auto& e : entries) {
      path name = prefix.empty() ? path(e.name) : prefix / e.name;
      out.insert(name.string());
      if (e.type == file_type::directory) todo.emplace_back(dir.empty() ? path(e.name) : dir / e.name, name);
    }
  }
  return out;
}

inline std::uint64_t overlap(const ranges& a, const ranges& b) {
  std::uint64_t total = 0;
  auto ma = merged(a), mb = merged(b);
  std::size_t i = 0, j = 0;
  while (i < ma.size() && j < mb.size()) {
    std::uint64_t lo = std::max(ma[i].first, mb[j].first);
    std::uint64_t hi = std::min(ma[i].second, mb[j].second);
    if (lo < hi) total += hi - lo;
    (ma[i].second < mb[j].second) ? ++i : ++j;
  }
  return total;
}

inline std::uint64_t total(const ranges& r) {
  std::uint64_t t = 0;
  for (const auto& x : merged(r)) t += x.second - x.first;
  return t;
}

//! The extents of a file, or fail the test.
template <class Fx, class H>
std::vector<extent> extents_of(Fx& fx, const H& h, const path& rel) {
  return REQUIRE_VALUE(fx.ops.extents(h, rel));
}

//! The logical ranges that hold data.
inline ranges logical_ranges(const std::vector<extent>& ex) {
  ranges r;
  for (const auto& e : ex) r.emplace_back(e.logical, e.logical + e.length);
  return r;
}

//! The physical ranges a file's data lives in.
inline ranges physical_ranges(const std::vector<extent>& ex) {
  ranges r;
  for (const auto& e : ex) r.emplace_back(e.physical, e.physical + e.length);
  return r;
}

//! Bytes of storage two files share: the overlap of their physical ranges.
template <class Fx, class HA, class HB>
std::uint64_t shared_bytes(Fx& fx, const HA& ha, const path& a, const HB& hb, const path& b) {
  return overlap(physical_ranges(extents_of(fx, ha, a)), physical_ranges(extents_of(fx, hb, b)));
}

//! What a file occupies (st_blocks * 512).
template <class Fx, class H>
std::uint64_t allocated(Fx& fx, const H& h, const path& rel) {
  return stat_of(fx, h, rel).allocated;
}

//! Whether the test runs on a given fixture type.
template <class Fx>
constexpr bool is_memory = std::is_same_v<Fx, memory_fixture>;
template <class Fx>
constexpr bool is_ext4 = std::is_same_v<Fx, ext4_fixture>;

}  // namespace file_reflink::test

TYPE_TO_STRING_AS("memory", file_reflink::test::memory_fixture);
TYPE_TO_STRING_AS("btrfs", file_reflink::test::btrfs_fixture);
TYPE_TO_STRING_AS("xfs", file_reflink::test::xfs_fixture);
TYPE_TO_STRING_AS("ext4", file_reflink::test::ext4_fixture);
TYPE_TO_STRING_AS("btrfs-forwarded", file_reflink::test::forwarded_btrfs_fixture);

//! A behaviour test, written once and run on every fixture in `all_fixtures`:
//! inside the body `Fx` is the fixture type and `fx` a fresh instance.
#define FILE_REFLINK_FIXTURE_TEST(name) \
  FILE_REFLINK_FIXTURE_TEST_ON(name, ::file_reflink::test::all_fixtures)

//! The same, on a chosen std::tuple of fixtures.
#define FILE_REFLINK_FIXTURE_TEST_ON(name, fixtures) \
  FILE_REFLINK_FIXTURE_TEST_IMPL_(name, fixtures, DOCTEST_ANONYMOUS(FILE_REFLINK_FIXTURE_TEST_))

#define FILE_REFLINK_FIXTURE_TEST_IMPL_(name, fixtures, id)                 \
  template <class Fx>                                                      \
  static void DOCTEST_CAT(id, _body)(Fx & fx);                             \
  TEST_CASE_TEMPLATE_DEFINE(name, Fx, id) {                                \
    Fx fx;                                                                 \
    DOCTEST_CAT(id, _body)<Fx>(fx);                                        \
  }                                                                        \
  TEST_CASE_TEMPLATE_APPLY(id, fixtures);                                  \
  template <class Fx>                                                      \
  static void DOCTEST_CAT(id, _body)([[maybe_unused]] Fx & fx)
