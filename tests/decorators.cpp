// SPDX-License-Identifier: BSL-1.0
// The decorators of <file_reflink/testing.hpp> over every policy: a pool on
// counting_fs_ops sees every call it makes counted, a pool on faulty_fs_ops
// gets the injected error back (with the operation and volume named) and
// loses nothing, and the embedder's policy of examples/wrapped_policy.hpp
// runs a whole volume life on each filesystem.
#include "../examples/wrapped_policy.hpp"
#include "pool_support.hpp"

#include <algorithm>
#include <cerrno>

using namespace file_reflink;
using namespace file_reflink::test;

namespace {

//! A pool of policy `Ops` (built over the fixture's) in root/pool.
template <class Ops, class Fx>
Pool<Ops> pool_over(Fx& fx, Ops ops) {
  pool_config c;
  c.name = "decorated";
  c.dir_path = fx.root / "pool";
  c.setup_check = Fx::reflinks;
  return Pool<Ops>(c, std::move(ops));
}

}  // namespace

FILE_REFLINK_FIXTURE_TEST("decorators: counting_fs_ops counts each call of a pool, shared by its copies") {
  using ops_type = counting_fs_ops<typename Fx::ops_type>;
  ops_type ops(fx.ops);
  auto pool = pool_over(fx, ops);
  REQUIRE_OK(pool.setup());
  CHECK(ops.counts()[fs_op::open_dir] >= 1);

  auto vol = REQUIRE_VALUE(pool.init_volume(volume_config::origin("vm/private", MiB)));
  REQUIRE_OK(vol.create());
  REQUIRE_OK(vol.start());
  REQUIRE_OK(vol.stop());
  // One lock file per pool, opened once, whatever the operations.
  CHECK(ops.counts()[fs_op::open_lock] == 1);
  ops.reset_counts();
  CHECK(ops.counts().total() == 0);
  REQUIRE_OK(vol.start());
  REQUIRE_OK(vol.stop());
  // A start makes the running image from the clean one (a clone, or a copy
  // without reflinks) and a stop renames it into place, durably.
  CHECK(ops.counts()[fs_op::clone] + ops.counts()[fs_op::create] >= 1);
  CHECK(ops.counts()[fs_op::rename] >= 1);
  CHECK(ops.counts()[fs_op::fsync] >= 1);
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < fs_op_count; ++i) sum += ops.counts()[static_cast<fs_op>(i)];
  CHECK(sum == ops.counts().total());
  // The pool's copy of the policy counts into the same table.
  CHECK(pool.fs_ops().counts().total() == ops.counts().total());

  // A query changes no name.
  ops.reset_counts();
  CHECK(REQUIRE_VALUE(vol.state()) == volume_status::stopped);
  CHECK(ops.counts()[fs_op::rename] == 0);
  CHECK(ops.counts()[fs_op::remove] == 0);
  CHECK(ops.counts()[fs_op::create] == 0);
}

FILE_REFLINK_FIXTURE_TEST("decorators: changed_ranges maps with storage_extents, and with extents where a policy has none") {
  using ops_type = counting_fs_ops<typename Fx::ops_type>;
  ops_type ops(fx.ops);
  auto pool = pool_over(fx, ops);
  REQUIRE_OK(pool.setup());
  auto vol = REQUIRE_VALUE(pool.init_volume(volume_config::origin("vm/private", MiB)));
  REQUIRE_OK(vol.create());
  auto h = fx.open(fx.root / "pool");
  REQUIRE_OK(vol.start());
  write_bytes(fx, h, "vm/private-dirty.img", 0, pattern(256 * KiB, 1));
  REQUIRE_OK(vol.stop());
  REQUIRE_OK(vol.start());
  write_bytes(fx, h, "vm/private-dirty.img", 128 * KiB, pattern(8 * KiB, 2));
  REQUIRE_OK(vol.stop());
  const std::uint64_t rev = REQUIRE_VALUE(vol.revisions()).rbegin()->first;
  ops.reset_counts();
  const auto ch = REQUIRE_VALUE(vol.changed_ranges(image_ref::revision(rev)));
  CHECK(ops.counts()[fs_op::storage_extents] == 2);
  CHECK(ops.counts()[fs_op::extents] == 0);
  REQUIRE_FALSE(ch.ranges.empty());
  CHECK(ch.ranges.front().offset <= 128 * KiB);
  CHECK(ch.ranges.back().offset + ch.ranges.back().length >= 136 * KiB);
  CHECK(ch.method == (Fx::reflinks ? change_method::extent_map : change_method::data_comparison));

  // A decorator over a policy without the operation answers EOPNOTSUPP:
  // the maps come from extents, and the answer is the same.
  using faulty_type = faulty_fs_ops<typename Fx::ops_type>;
  faulty_type faulty(fx.ops);
  auto other = pool_over(fx, faulty);
  auto same = REQUIRE_VALUE(other.init_volume(volume_config::origin("vm/private", MiB)));
  faulty.faults().fail_always(fs_op::storage_extents, EOPNOTSUPP);
  const auto again = REQUIRE_VALUE(same.changed_ranges(image_ref::revision(rev)));
  CHECK(faulty.faults().injected() == 2);
  CHECK(again.ranges == ch.ranges);
  CHECK(again.method == ch.method);
  // Any other failure of the map is the operation's error.
  faulty.faults().fail_always(fs_op::storage_extents, EIO);
  CHECK_ERR(same.changed_ranges(image_ref::revision(rev)), std::errc::io_error);
}

FILE_REFLINK_FIXTURE_TEST("decorators: faulty_fs_ops fails the chosen call, the pool reports it and loses nothing") {
  using ops_type = faulty_fs_ops<typename Fx::ops_type>;
  ops_type ops(fx.ops);
  auto pool = pool_over(fx, ops);
  REQUIRE_OK(pool.setup());
  auto vol = REQUIRE_VALUE(pool.init_volume(volume_config::origin("vm/private", MiB)));
  REQUIRE_OK(vol.create());
  const std::string data = pattern(64 * KiB, 7);
  REQUIRE_OK(vol.start());
  auto h = fx.open(fx.root / "pool");
  write_bytes(fx, h, "vm/private-dirty.img", 0, data);
  REQUIRE_OK(vol.stop());
  const auto before = names(fx, h);

  // The first rename of the next start fails.
  ops.faults().fail(fs_op::rename, EIO);
  auto r = vol.start();
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == std::errc::io_error);
  const std::string msg = r.error().message();
  INFO(msg);
  CHECK(msg.find("rename") != std::string::npos);
  CHECK(msg.find("(injected)") != std::string::npos);
  CHECK(msg.find("vm/private") != std::string::npos);
  CHECK(ops.faults().injected() == 1);
  CHECK(REQUIRE_VALUE(vol.state()) == volume_status::stopped);
  CHECK(names(fx, h) == before);
  CHECK(read_at(fx, h, "vm/private.img", 0, data.size()) == data);

  CHECK(msg.find("'vm/private") != std::string::npos);  // the path the call was given

  // A flush that fails: the start's first fsync.
  ops.faults().fail(fs_op::fsync, ENOSPC);
  r = vol.start();
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == std::errc::no_space_on_device);
  CHECK(ops.faults().injected() == 2);
  CHECK(REQUIRE_VALUE(vol.state()) == volume_status::stopped);
  CHECK(names(fx, h) == before);

  // A rule for every call until cleared.
  ops.faults().fail_always(fs_op::rename, EIO);
  CHECK_FALSE(vol.start());
  CHECK_FALSE(vol.start());
  CHECK(ops.faults().injected() == 4);
  CHECK(names(fx, h) == before);
  ops.faults().clear();

  // The nth call and the ones after it: the 2nd and 3rd stat from now.
  ops.faults().fail(fs_op::stat, EIO, 2, 2);
  std::vector<bool> ok;
  for (int i = 0; i < 4; ++i) ok.push_back(bool(ops.stat(h, "vm/private.img")));
  CHECK(ok == std::vector<bool>{true, false, false, true});
  CHECK(ops.faults().injected() == 6);

  REQUIRE_OK(vol.start());
  CHECK(read_at(fx, h, "vm/private-dirty.img", 0, data.size()) == data);
  REQUIRE_OK(vol.stop());
  CHECK(read_at(fx, h, "vm/private.img", 0, data.size()) == data);
}

FILE_REFLINK_FIXTURE_TEST("decorators: the embedder's policy of examples/wrapped_policy.hpp runs a volume's life") {
  using ops_type = audited_fs_ops<typename Fx::ops_type>;
  std::vector<std::string> audit;
  ops_type ops;
  ops.inner() = fx.ops;
  ops.audit = [&](const std::string& line) { audit.push_back(line); };
  auto pool = pool_over(fx, ops);
  REQUIRE_OK(pool.setup());
  auto vol = REQUIRE_VALUE(pool.init_volume(volume_config::origin("vm/private", MiB)));
  REQUIRE_OK(vol.create());
  REQUIRE_OK(vol.start());
  audit.clear();
  REQUIRE_OK(vol.stop());
  INFO(audit.size() << " lines");
  // The stop puts the running image in the clean image's place.
  CHECK(std::find(audit.begin(), audit.end(), "rename vm/private-dirty.img -> vm/private.img") != audit.end());
  audit.clear();
  REQUIRE_OK(vol.remove());
  CHECK(std::any_of(audit.begin(), audit.end(),
                    [](const std::string& l) { return l.rfind("remove vm/private.img", 0) == 0; }));
  auto h = fx.open(fx.root / "pool");
  CHECK_FALSE(exists(fx, h, "vm/private.img"));
}
