// SPDX-License-Identifier: BSL-1.0
// The library's copy (file_reflink::detail::copy_file) over the contract's operations, on
// every fixture: the primitives it is made of (data_segments, copy_range),
// a policy without the optional operations (copy_range, notify_resize),
// every step's error reported with the step named, and no destination left
// by a failure or a cancel.
#include "pool_support.hpp"

#include <file_reflink/testing.hpp>

#include <cerrno>
#include <string>
#include <utility>
#include <vector>

using namespace file_reflink;
using namespace file_reflink::test;

namespace {

//! `Ops` without its optional operations: a policy as a filesystem without
//! copy_file_range and loop devices would have it.
template <class Ops>
struct bare_ops : Ops {
  bare_ops() = default;
  explicit bare_ops(Ops ops) : Ops(std::move(ops)) {}
  void copy_range() = delete;
  void notify_resize() = delete;
  void advise_willneed() = delete;
  void storage_extents() = delete;
};

//! 64 KiB at 0 and 4 KiB at 1 MiB of a 2 MiB file, fsynced; its bytes.
template <class Fx>
std::string make_two_segments(Fx& fx, const path& rel) {
  const std::string head = pattern(64 * KiB, 1), tail = pattern(4 * KiB, 2);
  make_file(fx, fx.dir(), rel, 2 * MiB, {{0, head}, {MiB, tail}});
  std::string whole(2 * MiB, '\0');
  whole.replace(0, head.size(), head);
  whole.replace(MiB, tail.size(), tail);
  return whole;
}

copy_options without_clone() {
  copy_options o;
  o.try_clone = false;
  return o;
}

}  // namespace

FILE_REFLINK_FIXTURE_TEST("copy: data_segments says where the data is, below a limit") {
  make_two_segments(fx, "src");
  auto all = REQUIRE_VALUE(fx.ops.data_segments(fx.dir(), "src", 2 * MiB));
  REQUIRE(all.size() == 2);
  CHECK(all[0].offset == 0);
  CHECK(all[0].length == 64 * KiB);
  CHECK(all[1].offset == MiB);
  CHECK(all[1].length == 4 * KiB);
  auto cut = REQUIRE_VALUE(fx.ops.data_segments(fx.dir(), "src", 32 * KiB));
  REQUIRE(cut.size() == 1);
  CHECK(cut[0].offset == 0);
  CHECK(cut[0].length == 32 * KiB);
  CHECK(REQUIRE_VALUE(fx.ops.data_segments(fx.dir(), "src", 0)).empty());
  REQUIRE_OK(fx.ops.create(fx.dir(), "hole", MiB, create_mode::exclusive));
  CHECK(REQUIRE_VALUE(fx.ops.data_segments(fx.dir(), "hole", MiB)).empty());
  REQUIRE_OK(fx.ops.mkdir(fx.dir(), "d"));
  CHECK_ERR(fx.ops.data_segments(fx.dir(), "d", MiB), std::errc::is_a_directory);
  CHECK_ERR(fx.ops.data_segments(fx.dir(), "missing", MiB), std::errc::no_such_file_or_directory);
}

FILE_REFLINK_FIXTURE_TEST("copy: copy_range copies a range into an existing file") {
  const std::string whole = make_two_segments(fx, "src");
  REQUIRE_OK(fx.ops.create(fx.dir(), "dst", 2 * MiB, create_mode::exclusive));
  std::uint64_t done = 0;
  while (done < 64 * KiB) {
    const std::uint64_t n = REQUIRE_VALUE(fx.ops.copy_range(fx.dir(), "src", fx.dir(), "dst", done, 64 * KiB - done));
    REQUIRE(n > 0);
    done += n;
  }
  CHECK(read_at(fx, fx.dir(), "dst", 0, 64 * KiB) == whole.substr(0, 64 * KiB));
  CHECK(read_at(fx, fx.dir(), "dst", MiB, 4 * KiB) == std::string(4 * KiB, '\0'));
  // Past the source's end: nothing.
  CHECK(REQUIRE_VALUE(fx.ops.copy_range(fx.dir(), "src", fx.dir(), "dst", 2 * MiB, 4 * KiB)) == 0u);
  // Into a file that is not there, or onto another filesystem (Linux 5.19+).
  CHECK_ERR(fx.ops.copy_range(fx.dir(), "src", fx.dir(), "missing", 0, 4 * KiB), std::errc::no_such_file_or_directory);
  REQUIRE_OK(fx.ops.create(fx.other_dir(), "there", 2 * MiB, create_mode::exclusive));
  CHECK_ERR(fx.ops.copy_range(fx.dir(), "src", fx.other_dir(), "there", 0, 4 * KiB), std::errc::cross_device_link);
  CHECK(stat_of(fx, fx.dir(), "dst").size == 2 * MiB);
}

FILE_REFLINK_FIXTURE_TEST("copy: advise_willneed takes a hint for a file's bytes, and refuses what is no file") {
  make_two_segments(fx, "src");
  REQUIRE_OK(fx.ops.advise_willneed(fx.dir(), "src", 0, 64 * KiB));
  REQUIRE_OK(fx.ops.advise_willneed(fx.dir(), "src", MiB, 16 * MiB));  // past the end: the kernel stops there
  CHECK_ERR(fx.ops.advise_willneed(fx.dir(), "missing", 0, 4 * KiB), std::errc::no_such_file_or_directory);
  REQUIRE_OK(fx.ops.mkdir(fx.dir(), "d"));
  CHECK_ERR(fx.ops.advise_willneed(fx.dir(), "d", 0, 4 * KiB), std::errc::is_a_directory);
}

FILE_REFLINK_FIXTURE_TEST("copy: the copy asks ahead for the source's data only, and a refused hint changes nothing") {
  const std::string whole = make_two_segments(fx, "src");
  copy_options buffered = without_clone();
  buffered.try_copy_file_range = false;
  {
    counting_fs_ops<typename Fx::ops_type> ops(fx.ops);
    auto r = REQUIRE_VALUE(file_reflink::detail::copy_file(ops, fx.dir(), "src", fx.dir(), "dst", buffered));
    CHECK(r.method == copy_method::sparse_copy);
    // One hint per data segment (both lie within one window), none for the hole.
    CHECK(ops.counts()[fs_op::advise_willneed] == 2);
    CHECK(read_all(fx, fx.dir(), "dst") == whole);
    REQUIRE_OK(fx.ops.remove(fx.dir(), "dst"));
  }
  {
    faulty_fs_ops<typename Fx::ops_type> ops(fx.ops);
    ops.faults().fail_always(fs_op::advise_willneed, EIO);
    auto r = REQUIRE_VALUE(file_reflink::detail::copy_file(ops, fx.dir(), "src", fx.dir(), "dst", buffered));
    CHECK(r.method == copy_method::sparse_copy);
    CHECK(r.bytes == 68 * KiB);
    CHECK(read_all(fx, fx.dir(), "dst") == whole);
  }
}

FILE_REFLINK_FIXTURE_TEST("copy: a policy without copy_range copies by reads and writes, holes kept") {
  using ops_type = bare_ops<typename Fx::ops_type>;
  static_assert(is_fs_ops_v<ops_type>);
  static_assert(!has_copy_range_v<ops_type> && !has_notify_resize_v<ops_type> && !has_advise_willneed_v<ops_type> &&
                !has_storage_extents_v<ops_type>);
  const ops_type ops(fx.ops);
  const std::string whole = make_two_segments(fx, "src");
  auto r = REQUIRE_VALUE(file_reflink::detail::copy_file(ops, fx.dir(), "src", fx.dir(), "dst", without_clone()));
  CHECK(r.method == copy_method::sparse_copy);
  CHECK(r.bytes == 68 * KiB);
  CHECK(read_all(fx, fx.dir(), "dst") == whole);
  CHECK(stat_of(fx, fx.dir(), "dst").allocated <= 68 * KiB + 64 * KiB);
  // Its loop devices are told nothing, and that is no error.
  CHECK(REQUIRE_VALUE(file_reflink::detail::notify_resize(ops, fx.dir(), "dst")) == 0u);
}

FILE_REFLINK_FIXTURE_TEST("copy: a pool over a policy that lacks copy_range and notify_resize works") {
  // The decorator has every operation; its inner policy lacks the optional
  // ones, which it answers with operation_not_supported.
  using ops_type = forwarding_fs_ops<bare_ops<typename Fx::ops_type>>;
  ops_type ops{bare_ops<typename Fx::ops_type>(fx.ops)};
  auto missing = ops.copy_range(fx.dir(), "a", fx.dir(), "b", 0, 1);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code() == std::errc::operation_not_supported);
  CHECK(missing.error().message().find("copy_range") != std::string::npos);
  CHECK(REQUIRE_VALUE(file_reflink::detail::notify_resize(ops, fx.dir(), "a")) == 0u);

  pool_config c;
  c.name = "bare";
  c.dir_path = fx.root / "pool";
  c.setup_check = Fx::reflinks;
  Pool<ops_type> pool(c, ops);
  REQUIRE_OK(pool.setup());
  auto vol = REQUIRE_VALUE(pool.init_volume(volume_config::origin("vm/private", MiB)));
  REQUIRE_OK(vol.create());
  const std::string data = pattern(64 * KiB, 9);
  REQUIRE_OK(vol.start());
  auto h = fx.open(fx.root / "pool");
  write_bytes(fx, h, "vm/private-dirty.img", 0, data);
  REQUIRE_OK(vol.stop());
  REQUIRE_OK(vol.resize(2 * MiB));
  REQUIRE_OK(vol.start());
  CHECK(stat_of(fx, h, "vm/private-dirty.img").size == 2 * MiB);
  CHECK(read_at(fx, h, "vm/private-dirty.img", 0, data.size()) == data);
  // A running volume grows too: no loop device can be told, and none is.
  REQUIRE_OK(vol.resize(3 * MiB));
  CHECK(stat_of(fx, h, "vm/private-dirty.img").size == 3 * MiB);
  REQUIRE_OK(vol.stop());
  CHECK(stat_of(fx, h, "vm/private.img").size == 3 * MiB);
  CHECK(read_at(fx, h, "vm/private.img", 0, data.size()) == data);
  auto copy = REQUIRE_VALUE(pool.init_volume(volume_config::origin("vm/copy", 2 * MiB)));
  REQUIRE_OK(copy.create());
  CHECK(REQUIRE_VALUE(copy.import_volume(vol)) == (Fx::reflinks ? copy_method::clone : copy_method::sparse_copy));
  REQUIRE_OK(copy.start());
  CHECK(read_at(fx, h, "vm/copy-dirty.img", 0, data.size()) == data);
  REQUIRE_OK(copy.stop());

  // The policy itself, with no decorator: the optional operations are not
  // there at all, and a running volume's resize compiles and works.
  using bare_type = bare_ops<typename Fx::ops_type>;
  c.name = "bare2";
  c.dir_path = fx.root / "pool2";
  Pool<bare_type> bare_pool(c, bare_type(fx.ops));
  REQUIRE_OK(bare_pool.setup());
  auto v2 = REQUIRE_VALUE(bare_pool.init_volume(volume_config::origin("vm/root", MiB)));
  REQUIRE_OK(v2.create());
  REQUIRE_OK(v2.start());
  REQUIRE_OK(v2.resize(2 * MiB));
  auto h2 = fx.open(fx.root / "pool2");
  CHECK(stat_of(fx, h2, "vm/root-dirty.img").size == 2 * MiB);
  REQUIRE_OK(v2.stop());
  CHECK(stat_of(fx, h2, "vm/root.img").size == 2 * MiB);
}

FILE_REFLINK_FIXTURE_TEST("copy: the error of each step is reported with the step named, and no destination stays") {
  using ops_type = faulty_fs_ops<typename Fx::ops_type>;
  ops_type ops(fx.ops);
  const std::string whole = make_two_segments(fx, "src");
  struct step {
    fs_op op;
    copy_options opts;
  };
  std::vector<step> steps;
  copy_options plain, by_range = without_clone(), buffered = without_clone();
  buffered.try_copy_file_range = false;
  steps.push_back({fs_op::stat, plain});
  steps.push_back({fs_op::clone, plain});
  steps.push_back({fs_op::create, by_range});
  steps.push_back({fs_op::data_segments, by_range});
  steps.push_back({fs_op::copy_range, by_range});
  steps.push_back({fs_op::read, buffered});
  steps.push_back({fs_op::write, buffered});
  if constexpr (Fx::reflinks) {
    copy_options larger;
    larger.size = 4 * MiB;
    steps.push_back({fs_op::extents, plain});
    steps.push_back({fs_op::resize, larger});
  }
  for (const step& s : steps) {
    CAPTURE(to_string(s.op));
    ops.faults().clear();
    ops.faults().fail(s.op, EIO);
    auto r = file_reflink::detail::copy_file(ops, fx.dir(), "src", fx.dir(), "dst", s.opts);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == std::errc::io_error);
    const std::string msg = r.error().message();
    CAPTURE(msg);
    CHECK(msg.find(std::string(to_string(s.op)) + " ") == 0);
    CHECK(msg.find("(injected)") != std::string::npos);
    CHECK_FALSE(exists(fx, fx.dir(), "dst"));
  }
  ops.faults().clear();
  // And then it works, on the handle the failures went through.
  REQUIRE_OK(file_reflink::detail::copy_file(ops, fx.dir(), "src", fx.dir(), "dst", copy_options{}));
  CHECK(read_all(fx, fx.dir(), "dst") == whole);
}

FILE_REFLINK_FIXTURE_TEST("copy: a cancel at any report of any method leaves no destination") {
  const std::string whole = make_two_segments(fx, "src");
  copy_options plain, by_range = without_clone(), buffered = without_clone();
  buffered.try_copy_file_range = false;
  std::vector<copy_options> ways{plain, by_range, buffered};
  for (std::size_t w = 0; w < ways.size(); ++w) {
    for (unsigned stop_at = 1; stop_at <= 3; ++stop_at) {
      CAPTURE(w);
      CAPTURE(stop_at);
      copy_options o = ways[w];
      unsigned calls = 0;
      o.progress = [&](std::uint64_t, std::uint64_t) { return ++calls < stop_at; };
      auto r = file_reflink::detail::copy_file(fx.ops, fx.dir(), "src", fx.dir(), "dst", o);
      if (calls < stop_at) {  // fewer reports than that: it finished
        REQUIRE(r);
        CHECK(read_all(fx, fx.dir(), "dst") == whole);
        REQUIRE_OK(fx.ops.remove(fx.dir(), "dst"));
        continue;
      }
      CHECK_ERR(std::move(r), errc::cancelled);
      CHECK_FALSE(exists(fx, fx.dir(), "dst"));
    }
  }
}
