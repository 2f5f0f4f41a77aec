// SPDX-License-Identifier: BSL-1.0
// resize (running and stopped, loop devices told), discard and sparsify.
#include "pool_support.hpp"
#include "support/loop_device.hpp"

#include <fcntl.h>
#include <unistd.h>

using namespace file_reflink;
using namespace file_reflink::test;

namespace {
const std::string V = "appvms/work/private";
}

FILE_REFLINK_FIXTURE_TEST("resize: a stopped origin grows its committed image and keeps its bytes") {
  pool_env<Fx> env(fx);
  auto v = env.origin(V, MiB);
  std::string data = pattern(64 * KiB, 1);
  env.commit_data(v, MiB - data.size(), data);
  auto revs_before = REQUIRE_VALUE(v.revisions());
  REQUIRE_OK(v.resize(3 * MiB));
  CHECK(env.st(env.clean(V)).size == 3 * MiB);
  CHECK(env.read(env.clean(V), MiB - data.size(), data.size()) == data);
  CHECK(env.read(env.clean(V), MiB, MiB) == std::string(MiB, '\0'));
  CHECK(REQUIRE_VALUE(v.size()) == 3 * MiB);
  CHECK(REQUIRE_VALUE(v.revisions()).size() == revs_before.size());  // same bytes: no revision
  // The precache follows, so the next start is still one rename.
  CHECK(env.st(env.precache(V)).size == 3 * MiB);
  REQUIRE_OK(v.start());
  CHECK(env.st(env.dirty(V)).size == 3 * MiB);
  REQUIRE_OK(v.stop());
  CHECK(temporaries(env.files()).empty());
}

FILE_REFLINK_FIXTURE_TEST("resize: a running volume grows its dirty image, loop devices learn the size") {
  pool_env<Fx> env(fx);
  auto v = env.origin(V, MiB);
  REQUIRE_OK(v.start());
  std::string data = pattern(8 * KiB, 2);
  env.vm_write(V, 0, data);
  path dirty_abs = env.dir / (V + "-dirty.img");
  if constexpr (Fx::real) {
    int fd = ::open(dirty_abs.c_str(), O_RDWR | O_CLOEXEC);
    REQUIRE(fd >= 0);
    LoopDevice loop;
    std::string why = loop.attach(fd);
    ::close(fd);
    REQUIRE_MESSAGE(why.empty(), why);
    CHECK(loop.size() == MiB);
    REQUIRE_OK(v.resize(4 * MiB));
    CHECK(loop.size() == 4 * MiB);
  } else {
    int id = REQUIRE_VALUE(fx.ops.attach_loop(dirty_abs));
    CHECK(fx.ops.loop_capacity(id) == MiB);
    REQUIRE_OK(v.resize(4 * MiB));
    CHECK(fx.ops.loop_capacity(id) == 4 * MiB);
    fx.ops.detach_loop(id);
  }
  CHECK(env.st(env.dirty(V)).size == 4 * MiB);
  CHECK(REQUIRE_VALUE(v.size()) == 4 * MiB);
  CHECK(env.st(env.clean(V)).size == MiB);  // the committed image waits for stop
  REQUIRE_OK(v.stop());
  CHECK(env.st(env.clean(V)).size == 4 * MiB);
  CHECK(env.read(env.clean(V), 0, data.size()) == data);
}

FILE_REFLINK_FIXTURE_TEST("resize: shrinking and read-only volumes are refused and nothing changes") {
  pool_env<Fx> env(fx);
  auto v = env.origin(V, 2 * MiB);
  auto cfg = volume_config::origin("vm/ro", MiB);
  cfg.rw = false;
  auto ro = env.add(cfg);
  REQUIRE_OK(ro.create());
  auto snap = env.snapshot();
  {
    auto r = v.resize(MiB);
    REQUIRE_ERR(r, errc::shrink_refused);
    CHECK(r.error() == std::errc::invalid_argument);
    CHECK(r.error().message().find("resize volume '" + V + "'") == 0);
  }
  CHECK_ERR(ro.resize(4 * MiB), errc::read_only);
  CHECK(env.snapshot() == snap);
  REQUIRE_OK(v.start());
  CHECK_ERR(v.resize(MiB), errc::shrink_refused);
  REQUIRE_OK(v.resize(2 * MiB));  // the same size is fine
  REQUIRE_OK(v.stop());
}

FILE_REFLINK_FIXTURE_TEST("discard: punches a hole in the running image, or in a new committed one") {
  pool_env<Fx> env(fx);
  auto v = env.origin(V, MiB);
  std::string data = pattern(256 * KiB, 3);
  env.commit_data(v, 0, data);
  // Stopped: a new committed image without the range; the old one is a revision.
  auto before = env.st(env.clean(V)).allocated;
  REQUIRE_OK(v.discard(64 * KiB, 128 * KiB));
  CHECK(env.read(env.clean(V), 64 * KiB, 128 * KiB) == std::string(128 * KiB, '\0'));
  CHECK(env.read(env.clean(V), 0, 64 * KiB) == data.substr(0, 64 * KiB));
  CHECK(env.read(env.clean(V), 192 * KiB, 64 * KiB) == data.substr(192 * KiB));
  CHECK(env.st(env.clean(V)).allocated + 128 * KiB <= before + 4 * KiB);
  REQUIRE_OK(v.revert());
  CHECK(env.read(env.clean(V), 0, data.size()) == data);
  // Running: the dirty image.
  REQUIRE_OK(v.start());
  REQUIRE_OK(v.discard(0, 64 * KiB));
  CHECK(env.read(env.dirty(V), 0, 64 * KiB) == std::string(64 * KiB, '\0'));
  CHECK(env.read(env.clean(V), 0, 64 * KiB) == data.substr(0, 64 * KiB));
  CHECK_ERR(v.discard(MiB - 4096, 8192), errc::out_of_range);
  REQUIRE_OK(v.stop());
  auto vol = env.add(volume_config::volatile_volume("vm/volatile", MiB));
  CHECK_ERR(vol.discard(0, 4096), errc::volume_not_running);
}

FILE_REFLINK_FIXTURE_TEST("sparsify: zero blocks become holes, the bytes stay") {
  pool_env<Fx> env(fx);
  auto v = env.origin(V, 2 * MiB);
  std::string data = pattern(64 * KiB, 4);
  REQUIRE_OK(v.start());
  env.vm_write(V, 0, data);
  env.vm_write(V, 64 * KiB, std::string(512 * KiB, '\0'));  // zeros written: allocated
  env.vm_write(V, MiB, data);
  REQUIRE_OK(v.stop());
  std::string before = env.read(env.clean(V));
  auto alloc_before = env.st(env.clean(V)).allocated;
  CHECK(alloc_before >= 640 * KiB);
  auto revs = REQUIRE_VALUE(v.revisions());
  std::uint64_t freed = REQUIRE_VALUE(v.sparsify());
  CHECK(freed >= 512 * KiB);
  CHECK(env.read(env.clean(V)) == before);
  CHECK(env.st(env.clean(V)).allocated + 512 * KiB <= alloc_before);
  CHECK(REQUIRE_VALUE(v.revisions()).size() == revs.size());
  CHECK(REQUIRE_VALUE(v.sparsify()) == 0);  // nothing left to punch
  REQUIRE_OK(v.start());
  CHECK_ERR(v.sparsify(), errc::volume_dirty);
  REQUIRE_OK(v.stop());
  CHECK(temporaries(env.files()).empty());
}

FILE_REFLINK_FIXTURE_TEST("shrink: a stopped origin commits a cut clone, the old image stays a revision") {
  pool_env<Fx> env(fx, 0);  // a pool that keeps no revisions: shrink keeps one anyway
  auto v = env.origin(V, 4 * MiB);
  const std::string head = pattern(64 * KiB, 50), tail = pattern(64 * KiB, 51);
  REQUIRE_OK(v.start());
  env.vm_write(V, 0, head);
  env.vm_write(V, 3 * MiB, tail);
  REQUIRE_OK(v.stop());
  const std::size_t revs_before = REQUIRE_VALUE(v.revisions()).size();
  const file_stat before = env.st(env.clean(V));
  REQUIRE_OK(v.shrink(MiB));
  CHECK(env.st(env.clean(V)).size == MiB);
  CHECK(env.st(env.clean(V)).ino != before.ino);  // never cut in place
  CHECK(env.read(env.clean(V), 0, head.size()) == head);
  CHECK(REQUIRE_VALUE(v.size()) == MiB);
  CHECK(REQUIRE_VALUE(v.revisions()).size() == revs_before + 1);
  CHECK(temporaries(env.files()).empty());
  // revert undoes it: the shrink's revision is the newest.
  auto revs = REQUIRE_VALUE(v.revisions());
  REQUIRE_FALSE(revs.empty());
  REQUIRE_OK(v.revert(revs.rbegin()->first));
  CHECK(env.st(env.clean(V)).size == 4 * MiB);
  CHECK(env.read(env.clean(V), 3 * MiB, tail.size()) == tail);
  CHECK(env.read(env.clean(V), 0, head.size()) == head);
  CHECK(REQUIRE_VALUE(v.size()) == 4 * MiB);
  // Shrunk again, the next start runs the smaller image.
  REQUIRE_OK(v.shrink(2 * MiB));
  REQUIRE_OK(v.start());
  CHECK(env.st(env.dirty(V)).size == 2 * MiB);
  CHECK(env.read(env.dirty(V), 0, head.size()) == head);
  REQUIRE_OK(v.stop());
  CHECK(REQUIRE_VALUE(v.size()) == 2 * MiB);
}

FILE_REFLINK_FIXTURE_TEST("shrink: refused while running, to a larger size, and read-only: nothing changes") {
  pool_env<Fx> env(fx);
  auto v = env.origin(V, 2 * MiB);
  env.commit_data(v, 0, pattern(16 * KiB, 52));
  auto snap = env.snapshot();
  CHECK_ERR(v.shrink(4 * MiB), errc::out_of_range);
  CHECK(env.snapshot() == snap);
  REQUIRE_OK(v.start());
  auto running = env.snapshot();
  CHECK_ERR(v.shrink(MiB), errc::volume_dirty);
  CHECK(env.snapshot() == running);
  CHECK_ERR(v.resize(MiB), errc::shrink_refused);
  REQUIRE_OK(v.stop());
  auto ro = env.add(volume_config::origin("vm/ro", 2 * MiB));
  REQUIRE_OK(ro.create());
  volume_update u;
  u.rw = false;
  REQUIRE_OK(ro.update(u));
  CHECK_ERR(ro.shrink(MiB), errc::read_only);
  // The same size: nothing to cut, no revision.
  const std::size_t revs = REQUIRE_VALUE(v.revisions()).size();
  auto stopped = env.snapshot();
  REQUIRE_OK(v.shrink(2 * MiB));
  CHECK(REQUIRE_VALUE(v.revisions()).size() == revs);
  CHECK(env.snapshot() == stopped);
}
