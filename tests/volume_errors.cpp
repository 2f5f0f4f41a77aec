// SPDX-License-Identifier: BSL-1.0
// Bad input gets a clear error and changes nothing: each case asserts the
// code, that the message names the operation and the volume, and that the
// pool's files (names and bytes) are exactly as before.
#include "pool_support.hpp"

using namespace file_reflink;
using namespace file_reflink::test;

namespace {
const std::string V = "appvms/work/private";
const std::string T = "vm-templates/deb/root";

//! Run `op`, expect `code`, a message that starts with "<what> volume '<vid>'",
//! and an unchanged pool.
template <class Env, class F, class Code>
void refused(Env& env, const std::string& what, const std::string& vid, Code code, F&& op) {
  auto before = env.snapshot();
  auto r = op();
  REQUIRE_MESSAGE(!r, what << " of " << vid << " succeeded");
  MESSAGE(r.error().message());
  CHECK(r.error().code() == code);
  CHECK(r.error().message().rfind(what + " volume '" + vid + "'", 0) == 0);
  CHECK(env.snapshot() == before);
}
}  // namespace

FILE_REFLINK_FIXTURE_TEST("errors: invalid vids are refused before anything happens") {
  pool_env<Fx> env(fx);
  const std::vector<std::string> bad = {
      "",  "/abs",  "a//b",  "a/",  ".",  "..",  "a/../b",  "a/./b",  "../escape",  "~root",  "a~b",  "a@b",
      std::string("nul\0byte", 8),  "x-dirty",  "x-precache",  "x-import",  "vm/x-dirty",  "dir-dirty/../x",
      ".hidden",  "vm/.hidden",  "x.img",  "x.img.1",  "a/b.img", "line\nbreak",  std::string(129, 'n'),
      std::string(256, 'd') + "/x"};
  for (const auto& vid : bad) {
    CAPTURE(vid);
    auto r = env.pool.init_volume(volume_config::origin(vid, MiB));
    CHECK_ERR(r, errc::invalid_vid);
    if (!r) CHECK(r.error() == std::errc::invalid_argument);
  }
  // The source is a vid too.
  CHECK_ERR(env.pool.init_volume(volume_config::snapshot("vm/root", "../etc")), errc::invalid_vid);
  CHECK(env.pool.list_volumes().empty());
  CHECK(env.files().empty());
  // Valid ones, for contrast: nested, 128-byte names, dots inside, and
  // every name the Qubes driver accepts for a VM as a directory.
  for (const std::string& vid :
       std::vector<std::string>{"a", "appvms/work/private", "x.y/z.img2", std::string(128, 'n'), "a-b_c.d",
                                "appvms/sys-import/private", "appvms/work-dirty/private", "x-precache/root",
                                "appvms/backup.img/private", "appvms/a.img.b/root", "vm-templates/t-import/root"})
    REQUIRE_VALUE(env.pool.init_volume(volume_config::origin(vid, MiB)));
}

FILE_REFLINK_FIXTURE_TEST("errors: a vid whose directory is another volume's file is refused, naming both") {
  pool_env<Fx> env(fx);
  auto backup = env.origin("appvms/backup");
  // The directory 'appvms/backup.img' would be the file of 'appvms/backup'.
  auto r = env.pool.init_volume(volume_config::origin("appvms/backup.img/private", MiB));
  REQUIRE_ERR(r, errc::invalid_vid);
  CHECK(r.error().message().find("'appvms/backup.img/private'") != std::string::npos);
  CHECK(r.error().message().find("'appvms/backup'") != std::string::npos);
  // The other way round, and for the running image's name too.
  auto vm = env.origin("appvms/work-dirty.img/private");
  CHECK_ERR(env.pool.init_volume(volume_config::origin("appvms/work", MiB)), errc::invalid_vid);
  // Names that only look alike do not collide: 'work-dirty' is a directory, 'work-dirty.img' a file.
  auto work = REQUIRE_VALUE(env.pool.init_volume(volume_config::origin("appvms/work-dirty/private", MiB)));
  REQUIRE_OK(work.create());
  REQUIRE_OK(vm.create());
  CHECK(env.has(path("appvms/backup.img")));
  CHECK(env.has(path("appvms/work-dirty.img/private.img")));
  CHECK(env.has(path("appvms/work-dirty/private.img")));
}

FILE_REFLINK_FIXTURE_TEST("errors: contradictory configurations are refused") {
  pool_env<Fx> env(fx);
  volume_config no_source = volume_config::origin("vm/a", MiB);
  no_source.snap_on_start = true;
  CHECK_ERR(env.pool.init_volume(no_source), errc::invalid_config);
  volume_config source_only = volume_config::volatile_volume("vm/b", MiB);
  source_only.source = "vm/a";
  CHECK_ERR(env.pool.init_volume(source_only), errc::invalid_config);
  CHECK_ERR(env.pool.init_volume(volume_config::snapshot("vm/c", "vm/c")), errc::invalid_config);
  volume_config bad_keep = volume_config::origin("vm/d", MiB);
  bad_keep.revisions_to_keep = -2;
  CHECK_ERR(env.pool.init_volume(bad_keep), errc::invalid_config);
  CHECK(env.pool.list_volumes().empty());
}

FILE_REFLINK_FIXTURE_TEST("errors: a missing source fails start and verify, naming the image") {
  pool_env<Fx> env(fx);
  auto s = env.add(volume_config::snapshot("vm/root", T));
  refused(env, "start", "vm/root", errc::source_not_found, [&] { return s.start(); });
  refused(env, "verify", "vm/root", errc::source_not_found, [&] { return s.verify(); });
  auto r = s.verify();
  CHECK(r.error().message().find((env.dir / (T + ".img")).string()) != std::string::npos);
  CHECK(r.error() == std::errc::no_such_file_or_directory);
  // An origin that was never created.
  auto o = env.add(volume_config::origin(V, MiB));
  refused(env, "verify", V, errc::image_not_found, [&] { return o.verify(); });
  refused(env, "start", V, errc::image_not_found, [&] { return o.start(); });
}

FILE_REFLINK_FIXTURE_TEST("errors: a source running with snapshots disabled cannot be snapshotted") {
  pool_env<Fx> env(fx);
  auto cfg = volume_config::origin(T, MiB);
  cfg.revisions_to_keep = -1;
  auto t = env.add(cfg);
  REQUIRE_OK(t.create());
  REQUIRE_OK(t.start());
  auto s = env.add(volume_config::snapshot("vm/root", T));
  refused(env, "start", "vm/root", errc::source_not_found, [&] { return s.start(); });
  auto r = s.start();
  CHECK(r.error().message().find("snapshots disabled") != std::string::npos);
  REQUIRE_OK(t.stop());
  REQUIRE_OK(s.start());
  REQUIRE_OK(s.stop());
}

FILE_REFLINK_FIXTURE_TEST("errors: revert while dirty, unknown revisions, shrink, read-only resize") {
  pool_env<Fx> env(fx);
  auto v = env.origin(V, 2 * MiB);
  env.commit_data(v, 0, pattern(4 * KiB, 1));
  refused(env, "revert", V, errc::revision_not_found, [&] { return v.revert(42); });
  refused(env, "resize", V, errc::shrink_refused, [&] { return v.resize(MiB); });
  auto ro_cfg = volume_config::origin("vm/ro", MiB);
  ro_cfg.rw = false;
  auto ro = env.add(ro_cfg);
  REQUIRE_OK(ro.create());
  refused(env, "resize", "vm/ro", errc::read_only, [&] { return ro.resize(2 * MiB); });
  refused(env, "discard", "vm/ro", errc::read_only, [&] { return ro.discard(0, 4096); });
  REQUIRE_OK(v.start());
  refused(env, "revert", V, errc::volume_dirty, [&] { return v.revert(); });
  refused(env, "import_data", V, errc::volume_dirty, [&] { return v.import_data(MiB); });
  refused(env, "sparsify", V, errc::volume_dirty, [&] { return v.sparsify(); });
  REQUIRE_OK(v.stop());
}

FILE_REFLINK_FIXTURE_TEST("errors: export and import need save_on_stop") {
  pool_env<Fx> env(fx);
  auto o = env.origin(V);
  auto vol = env.add(volume_config::volatile_volume("vm/volatile", MiB));
  refused(env, "export", "vm/volatile", errc::not_save_on_stop, [&] { return vol.export_(); });
  refused(env, "import_data", "vm/volatile", errc::not_save_on_stop, [&] { return vol.import_data(MiB); });
  refused(env, "import_volume", "vm/volatile", errc::not_save_on_stop, [&] { return vol.import_volume(o); });
  refused(env, "import_volume", V, errc::not_save_on_stop, [&] { return o.import_volume(vol); });
  refused(env, "import_data_end", V, errc::no_import_in_progress, [&] { return o.import_data_end(true); });
  refused(env, "export_end", V, errc::not_exported, [&] { return o.export_end("/nowhere"); });
}

FILE_REFLINK_FIXTURE_TEST("errors: every operation on a removed volume says so") {
  pool_env<Fx> env(fx);
  auto v = env.origin(V);
  auto keep = env.origin("vm/other");
  REQUIRE_OK(v.remove());
  refused(env, "start", V, errc::volume_removed, [&] { return v.start(); });
  refused(env, "stop", V, errc::volume_removed, [&] { return v.stop(); });
  refused(env, "create", V, errc::volume_removed, [&] { return v.create(); });
  refused(env, "revisions", V, errc::volume_removed, [&] { return v.revisions(); });
  refused(env, "resize", V, errc::volume_removed, [&] { return v.resize(4 * MiB); });
  refused(env, "import_data", V, errc::volume_removed, [&] { return v.import_data(MiB); });
  refused(env, "remove", V, errc::volume_removed, [&] { return v.remove(); });
  // A new volume with that vid is a new volume.
  auto again = REQUIRE_VALUE(env.pool.init_volume(volume_config::origin(V, MiB)));
  REQUIRE_OK(again.create());
  CHECK_ERR(v.start(), errc::volume_removed);
}

FILE_REFLINK_FIXTURE_TEST("errors: a symlink planted as an image is refused, never followed") {
  pool_env<Fx> env(fx);
  auto v = env.origin(V);
  // Something outside the pool that must stay as it is.
  REQUIRE_OK(fx.ops.create(fx.dir(), "outside.img", 0, create_mode::exclusive));
  write_bytes(fx, fx.dir(), "outside.img", 0, "precious");
  fx.symlink(fx.root / "outside.img", env.dir / (V + "-dirty.img"));
  refused(env, "start", V, errc::unexpected_file_type, [&] { return v.start(); });
  refused(env, "stop", V, errc::unexpected_file_type, [&] { return v.stop(); });
  refused(env, "resize", V, errc::unexpected_file_type, [&] { return v.resize(4 * MiB); });
  CHECK(read_all(fx, fx.dir(), "outside.img") == "precious");
  CHECK(stat_of(fx, fx.dir(), "outside.img").size == 8);
}
