// SPDX-License-Identifier: BSL-1.0
// Space accounting: `space()` walks each file's extents once per version of
// the file, and a pool operation that changes sharing makes it walk again.
#include "pool_support.hpp"

using namespace file_reflink;
using namespace file_reflink::test;

namespace {
const std::string V = "appvms/work/private";

bool same(const space_usage& a, const space_usage& b) {
  return a.allocated == b.allocated && a.shared == b.shared && a.exclusive == b.exclusive;
}
}  // namespace

FILE_REFLINK_FIXTURE_TEST("space: a repeated call answers the same, and a commit's new sharing shows at once") {
  pool_env<Fx> env(fx, 1);
  auto v = env.origin(V);
  env.commit_data(v, 0, pattern(256 * KiB, 7));
  auto first = REQUIRE_VALUE(v.space());
  auto again = REQUIRE_VALUE(v.space());
  REQUIRE(first.clean);
  REQUIRE(again.clean);
  CHECK(same(*first.clean, *again.clean));
  CHECK(same(first.total, again.total));
  if constexpr (Fx::reflinks) CHECK(first.clean->shared >= 256 * KiB);  // the precache is its clone

  // The next commit replaces every block the clean image had: the old image
  // is now revision 2, exclusive of the new clean image and its precache.
  env.commit_data(v, 0, pattern(256 * KiB, 8));
  auto after = REQUIRE_VALUE(v.space());
  REQUIRE(after.clean);
  REQUIRE(after.revisions.count(2) == 1);
  const space_usage& rev = at(after.revisions, 2);
  CHECK(rev.exclusive + rev.shared >= 256 * KiB);
  if constexpr (is_memory<Fx>) CHECK(rev.shared == 0);
  if constexpr (Fx::reflinks) CHECK(after.clean->shared >= 256 * KiB);
}

TEST_CASE("space: the extent map of an unchanged file is walked once <memory>") {
  memory_fixture fx;
  pool_env<memory_fixture> env(fx, 1);
  auto v = env.origin(V);
  env.commit_data(v, 0, pattern(64 * KiB, 3));
  REQUIRE_OK(v.space());
  fx.ops.reset_counts();
  REQUIRE_OK(v.space());
  CHECK(fx.ops.op_count(fs_op::extents) == 0);

  // A start clones: sharing may have changed, so everything is walked again.
  REQUIRE_OK(v.start());
  fx.ops.reset_counts();
  auto running = REQUIRE_VALUE(v.space());
  CHECK(fx.ops.op_count(fs_op::extents) >= 2);  // dirty, clean, revision
  REQUIRE(running.dirty);
  CHECK(running.dirty->shared == 64 * KiB);
  REQUIRE_OK(v.stop());
}
