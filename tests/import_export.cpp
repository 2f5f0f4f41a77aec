// SPDX-License-Identifier: BSL-1.0
// export, import_data and import_volume: within a pool, between two pools on
// one filesystem, and from another filesystem; progress and cancellation.
#include "pool_support.hpp"

using namespace file_reflink;
using namespace file_reflink::test;

namespace {
const std::string V = "appvms/work/private";
}

FILE_REFLINK_FIXTURE_TEST("import: import_data commits the written file as a new revision, or vanishes") {
  pool_env<Fx> env(fx);
  auto v = env.origin(V);
  std::string data = pattern(32 * KiB, 1);
  path p = REQUIRE_VALUE(v.import_data(2 * MiB));
  CHECK(p == env.dir / (V + "-import.img"));
  CHECK(env.st(env.import(V)).size == 2 * MiB);
  CHECK(env.st(env.import(V)).allocated == 0);
  write_bytes(fx, env.h, env.import(V), MiB, data);
  CHECK_ERR(v.import_data(MiB), errc::import_in_progress);
  REQUIRE_OK(v.import_data_end(true));
  CHECK_FALSE(env.has(env.import(V)));
  CHECK(env.read(env.clean(V), MiB, data.size()) == data);
  CHECK(REQUIRE_VALUE(v.size()) == 2 * MiB);
  CHECK(REQUIRE_VALUE(v.revisions()).size() == 1);
  CHECK(env.read(env.precache(V)) == env.read(env.clean(V)));

  auto snap = env.snapshot();
  REQUIRE_VALUE(v.import_data(MiB));
  write_bytes(fx, env.h, env.import(V), 0, pattern(4 * KiB, 2));
  REQUIRE_OK(v.import_data_end(false));
  CHECK(env.snapshot() == snap);
  CHECK_ERR(v.import_data_end(true), errc::no_import_in_progress);
}

FILE_REFLINK_FIXTURE_TEST("import: import_volume within a pool clones where it can") {
  pool_env<Fx> env(fx);
  auto src = env.origin("vm-templates/a/root", 2 * MiB);
  std::string data = pattern(128 * KiB, 3);
  env.commit_data(src, 64 * KiB, data);
  auto dst = env.origin(V);
  auto method = REQUIRE_VALUE(dst.import_volume(src));
  CHECK(method == (Fx::reflinks ? copy_method::clone : copy_method::copy_file_range));
  CHECK(env.read(env.clean(V)) == env.read(env.clean("vm-templates/a/root")));
  CHECK(REQUIRE_VALUE(dst.size()) == 2 * MiB);
  if constexpr (Fx::reflinks)
    CHECK(shared_bytes(fx, env.h, env.clean(V), env.h, env.clean("vm-templates/a/root")) >= data.size());
  CHECK(temporaries(env.files()).empty());
}

FILE_REFLINK_FIXTURE_TEST("import: import_volume from another pool on the same and on another filesystem") {
  pool_env<Fx> a(fx, 1, fx.root / "pool-a");
  pool_env<Fx> b(fx, 1, fx.root / "pool-b");
  pool_env<Fx> far(fx, 1, fx.other_root / "pool-far", false);
  auto src = a.origin("vm/root", MiB);
  std::string data = pattern(64 * KiB, 4);
  a.commit_data(src, 0, data);
  // Same filesystem, another pool.
  auto dst = b.origin("vm/copy");
  auto m1 = REQUIRE_VALUE(dst.import_volume(src));
  CHECK(m1 == (Fx::reflinks ? copy_method::clone : copy_method::copy_file_range));
  CHECK(b.read(b.clean("vm/copy"), 0, data.size()) == data);
  // Another filesystem: no clone; a sparse copy that keeps holes.
  auto remote = far.origin("vm/copy");
  auto m2 = REQUIRE_VALUE(remote.import_volume(src));
  CHECK(m2 != copy_method::clone);
  CHECK(far.read(far.clean("vm/copy")) == a.read(a.clean("vm/root")));
  CHECK(far.st(far.clean("vm/copy")).allocated <= a.st(a.clean("vm/root")).allocated + 64 * KiB);
  // ... and back.
  auto back = a.origin("vm/back");
  REQUIRE_VALUE(back.import_volume(remote));
  CHECK(a.read(a.clean("vm/back"), 0, data.size()) == data);
}

FILE_REFLINK_FIXTURE_TEST("import: a cancelled import leaves nothing behind") {
  pool_env<Fx> a(fx, 1, fx.root / "pool-a");
  pool_env<Fx> far(fx, 1, fx.other_root / "pool-far", false);
  auto src = a.origin("vm/root", 8 * MiB);
  REQUIRE_OK(src.start());
  for (int i = 0; i < 4; ++i) a.vm_write("vm/root", i * 2 * MiB, pattern(MiB, 10 + i));
  REQUIRE_OK(src.stop());
  auto dst = far.origin("vm/copy");
  auto snap = far.snapshot();
  std::uint64_t calls = 0, last_total = 0;
  auto r = dst.import_volume(src, [&](std::uint64_t, std::uint64_t total) {
    ++calls;
    last_total = total;
    return false;  // the user pressed Ctrl-C
  });
  REQUIRE_ERR(r, errc::cancelled);
  CHECK(calls == 1);
  CHECK(last_total >= 4 * MiB);
  CHECK(far.snapshot() == snap);
  // Without cancelling, the progress reaches the total.
  std::uint64_t done_at_end = 0, total_at_end = 1;
  REQUIRE_VALUE(dst.import_volume(src, [&](std::uint64_t done, std::uint64_t total) {
    done_at_end = done;
    total_at_end = total;
    return true;
  }));
  CHECK(done_at_end == total_at_end);
  CHECK(far.read(far.clean("vm/copy")) == a.read(a.clean("vm/root")));
}

FILE_REFLINK_FIXTURE_TEST("export: the committed image's path, refused without save_on_stop") {
  pool_env<Fx> env(fx);
  auto v = env.origin(V);
  std::string data = pattern(16 * KiB, 5);
  env.commit_data(v, 0, data);
  path p = REQUIRE_VALUE(v.export_());
  CHECK(p == env.dir / (V + ".img"));
  REQUIRE_OK(v.export_end(p));
  CHECK_ERR(v.export_end(p), errc::not_exported);
  auto s = env.add(volume_config::volatile_volume("vm/volatile", MiB));
  CHECK_ERR(s.export_(), errc::not_save_on_stop);
  CHECK_ERR(s.import_data(MiB), errc::not_save_on_stop);
  CHECK_ERR(v.import_volume(s), errc::not_save_on_stop);
  CHECK_ERR(s.import_volume(v), errc::not_save_on_stop);
  CHECK_ERR(v.import_volume(v), errc::invalid_config);
}

FILE_REFLINK_FIXTURE_TEST("import: refused while the volume is running") {
  pool_env<Fx> env(fx);
  auto v = env.origin(V);
  auto w = env.origin("vm/other");
  REQUIRE_OK(v.start());
  auto snap = env.snapshot();
  CHECK_ERR(v.import_data(MiB), errc::volume_dirty);
  CHECK_ERR(v.import_volume(w), errc::volume_dirty);
  CHECK(env.snapshot() == snap);
  REQUIRE_OK(v.stop());
}

FILE_REFLINK_FIXTURE_TEST("import: import_file clones a file of the pool's filesystem, keeps its holes, commits") {
  pool_env<Fx> env(fx, 3);
  auto v = env.origin(V, MiB);
  const std::string old = pattern(16 * KiB, 40);
  env.commit_data(v, 0, old);
  const std::size_t revs_before = REQUIRE_VALUE(v.revisions()).size();
  // A file beside the pool, on its filesystem: data, a hole, data.
  const std::string a = pattern(128 * KiB, 41), b = pattern(64 * KiB, 42);
  make_file(fx, fx.dir(), path("source.img"), 4 * MiB, {{0, a}, {3 * MiB, b}});
  auto method = REQUIRE_VALUE(v.import_file(fx.root / "source.img"));
  CHECK(method == (Fx::reflinks ? copy_method::clone : copy_method::copy_file_range));
  CHECK(env.read(env.clean(V)) == read_all(fx, fx.dir(), path("source.img")));
  CHECK(REQUIRE_VALUE(v.size()) == 4 * MiB);
  // The hole stays a hole: no more is allocated than the source's data.
  CHECK(env.st(env.clean(V)).allocated <= stat_of(fx, fx.dir(), path("source.img")).allocated);
  CHECK(env.st(env.clean(V)).allocated < 2 * MiB);
  if constexpr (Fx::reflinks)
    CHECK(shared_bytes(fx, env.h, env.clean(V), fx.dir(), path("source.img")) >= a.size() + b.size());
  // The old image is a revision, as at stop.
  CHECK(REQUIRE_VALUE(v.revisions()).size() == revs_before + 1);
  CHECK_FALSE(env.has(env.import(V)));
  CHECK(temporaries(env.files()).empty());
  REQUIRE_OK(v.revert());
  CHECK(env.read(env.clean(V), 0, old.size()) == old);
  CHECK(REQUIRE_VALUE(v.size()) == MiB);
}

FILE_REFLINK_FIXTURE_TEST("import: import_file from another filesystem copies its data segments only") {
  pool_env<Fx> env(fx);
  auto v = env.origin(V, MiB);
  const std::string a = pattern(64 * KiB, 43);
  make_file(fx, fx.other_dir(), path("far.img"), 8 * MiB, {{5 * MiB, a}});
  auto method = REQUIRE_VALUE(v.import_file(fx.other_root / "far.img"));
  CHECK(method != copy_method::clone);
  CHECK(env.read(env.clean(V)) == read_all(fx, fx.other_dir(), path("far.img")));
  CHECK(env.st(env.clean(V)).allocated <= a.size() + 64 * KiB);
  CHECK(REQUIRE_VALUE(v.size()) == 8 * MiB);
}

FILE_REFLINK_FIXTURE_TEST("import: a failed or cancelled import_file leaves the volume as it was") {
  pool_env<Fx> env(fx);
  auto v = env.origin(V, MiB);
  env.commit_data(v, 0, pattern(8 * KiB, 44));
  make_file(fx, fx.other_dir(), path("far.img"), 4 * MiB, {{0, pattern(MiB, 45)}, {2 * MiB, pattern(MiB, 46)}});
  make_file(fx, fx.dir(), path("near.img"), 4 * MiB, {{0, pattern(MiB, 47)}});
  REQUIRE_OK(fx.ops.mkdir(fx.dir(), path("a-directory")));
  auto snap = env.snapshot();
  const std::size_t revs = REQUIRE_VALUE(v.revisions()).size();
  for (const path& from : {fx.other_root / "far.img", fx.root / "near.img"}) {
    std::uint64_t calls = 0;
    auto r = v.import_file(from, [&](std::uint64_t, std::uint64_t) {
      ++calls;
      return false;  // cancelled at the first report
    });
    CHECK_ERR(r, errc::cancelled);
    CHECK(calls >= 1);
    CHECK(env.snapshot() == snap);
  }
  CHECK_ERR(v.import_file(fx.root / "missing.img"), std::errc::no_such_file_or_directory);
  CHECK_ERR(v.import_file(fx.root / "a-directory"), std::errc::is_a_directory);
  CHECK_ERR(v.import_file(path("relative.img")), std::errc::invalid_argument);
  CHECK(env.snapshot() == snap);
  CHECK(REQUIRE_VALUE(v.revisions()).size() == revs);
  // Refused while running, and for a volume that keeps no data.
  REQUIRE_OK(v.start());
  auto running = env.snapshot();
  CHECK_ERR(v.import_file(fx.root / "near.img"), errc::volume_dirty);
  CHECK(env.snapshot() == running);
  REQUIRE_OK(v.stop());
  auto s = env.add(volume_config::volatile_volume("vm/volatile", MiB));
  CHECK_ERR(s.import_file(fx.root / "near.img"), errc::not_save_on_stop);
}
