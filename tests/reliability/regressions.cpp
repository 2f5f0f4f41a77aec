// SPDX-License-Identifier: BSL-1.0
// Small regression tests for library bugs the sweeps found, where the sweep
// alone would only say "refused" (the table's kinds column).
#include "sweep.hpp"

using namespace file_reflink::reliability;

TEST_CASE("regression: a stopped origin-snapshot reports its committed image's size, and discard works<memory>") {
  auto w = make_world(kind_id::origin_snapshot, false);
  auto size = w->vol().size();
  REQUIRE(size);
  CHECK(size.value() == image_size);
  auto r = w->vol().discard(8 * KiB, 8 * KiB);
  CHECK_MESSAGE(r, (r ? std::string() : r.error().message()));
}
