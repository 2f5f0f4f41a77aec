// SPDX-License-Identifier: BSL-1.0
// The four volume kinds through create, start, stop: which files exist, what
// bytes they hold, which extents they share. Run on every fixture.
#include "pool_support.hpp"

using namespace file_reflink;
using namespace file_reflink::test;

namespace {
const std::string V = "appvms/work/private";
const std::string T = "vm-templates/deb/root";
}  // namespace

FILE_REFLINK_FIXTURE_TEST("volume: origin create writes a sparse clean image and its precache") {
  pool_env<Fx> env(fx);
  auto v = env.origin(V, 4 * MiB);
  CHECK(env.files() == std::set<std::string>{"appvms", "appvms/work", "appvms/work/private.img",
                                             "appvms/work/private-precache.img"});
  auto clean = env.st(env.clean(V));
  CHECK(clean.size == 4 * MiB);
  CHECK(clean.allocated == 0);
  CHECK(env.read(env.clean(V)) == std::string(4 * MiB, '\0'));
  auto pre = env.st(env.precache(V));
  CHECK(pre.size == clean.size);
  CHECK(pre.mtime == clean.mtime);
  CHECK(pre.ino != clean.ino);
  CHECK(REQUIRE_VALUE(v.size()) == 4 * MiB);
  CHECK(REQUIRE_VALUE(v.usage()) == 0);
  REQUIRE_OK(v.verify());
}

FILE_REFLINK_FIXTURE_TEST("volume: origin keeps what the VM wrote, and the old image as a revision") {
  pool_env<Fx> env(fx);
  auto v = env.origin(V);
  std::string data = pattern(64 * KiB, 7);
  REQUIRE_OK(v.start());
  CHECK(REQUIRE_VALUE(v.is_dirty()));
  CHECK_FALSE(env.has(env.precache(V)));  // the precache became the running image
  env.vm_write(V, 128 * KiB, data);
  // The committed image does not see a running VM's writes.
  CHECK(env.read(env.clean(V), 128 * KiB, data.size()) == std::string(data.size(), '\0'));
  auto before = env.st(env.clean(V));
  REQUIRE_OK(v.stop());
  CHECK_FALSE(REQUIRE_VALUE(v.is_dirty()));
  CHECK_FALSE(env.has(env.dirty(V)));
  CHECK(env.read(env.clean(V), 128 * KiB, data.size()) == data);
  auto revs = REQUIRE_VALUE(v.revisions());
  REQUIRE(revs.size() == 1);
  CHECK(revs.begin()->first == 1);
  CHECK(revs.begin()->second.timestamp == layout::format_timestamp(before.mtime.sec));
  path rev = path(V + ".img.1@" + revs.begin()->second.timestamp);
  CHECK(env.read(rev) == std::string(MiB, '\0'));
  // The precache is back, matching the new clean image.
  auto clean = env.st(env.clean(V)), pre = env.st(env.precache(V));
  CHECK(pre.mtime == clean.mtime);
  CHECK(pre.size == clean.size);
  CHECK(env.read(env.precache(V)) == env.read(env.clean(V)));
  CHECK(temporaries(env.files()).empty());
}

FILE_REFLINK_FIXTURE_TEST("volume: a started origin image shares every extent with its clean image") {
  pool_env<Fx> env(fx);
  auto v = env.origin(V, 2 * MiB);
  env.commit_data(v, 0, pattern(256 * KiB, 1));
  env.commit_data(v, MiB, pattern(256 * KiB, 2));
  for (bool via_precache : {true, false}) {
    CAPTURE(via_precache);
    if (!via_precache) REQUIRE_OK(fx.ops.remove(env.h, env.precache(V)));
    REQUIRE_OK(v.start());
    auto clean_ext = extents_of(fx, env.h, env.clean(V));
    auto dirty_ext = extents_of(fx, env.h, env.dirty(V));
    std::uint64_t data = total(logical_ranges(clean_ext));
    CHECK(data >= 512 * KiB);
    CHECK(env.read(env.dirty(V)) == env.read(env.clean(V)));
    std::uint64_t shared = overlap(physical_ranges(clean_ext), physical_ranges(dirty_ext));
    if constexpr (Fx::reflinks) {
      CHECK(shared == data);
      for (const auto& e : dirty_ext) CHECK(e.shared);
    } else {
      // ext4: a full sparse copy with the same bytes, holes kept.
      CHECK(shared == 0);
      CHECK(total(logical_ranges(dirty_ext)) <= data + 64 * KiB);
    }
    REQUIRE_OK(v.stop());
  }
}

FILE_REFLINK_FIXTURE_TEST("volume: a stale precache is removed with a warning and start clones") {
  pool_env<Fx> env(fx);
  auto v = env.origin(V);
  env.commit_data(v, 0, pattern(8 * KiB, 3));
  // Make the precache stale: another size (as if a crash cut it short).
  REQUIRE_OK(fx.ops.resize(env.h, env.precache(V), 4096));
  env.clear_log();
  REQUIRE_OK(v.start());
  CHECK(env.logged("Removed stale file", log_level::warning) == 1);
  CHECK_FALSE(env.has(env.precache(V)));
  CHECK(env.read(env.dirty(V)) == env.read(env.clean(V)));
  REQUIRE_OK(v.stop());
  CHECK(env.has(env.precache(V)));
}

FILE_REFLINK_FIXTURE_TEST("volume: a dirty volume is left alone by start and committed by stop") {
  pool_env<Fx> env(fx);
  auto v = env.origin(V);
  REQUIRE_OK(v.start());
  std::string data = pattern(4 * KiB, 4);
  env.vm_write(V, 0, data);
  auto dirty_ino = env.st(env.dirty(V)).ino;
  // A VM manager that lost track (crash) starts it again: the data is kept.
  REQUIRE_OK(v.start());
  CHECK(env.st(env.dirty(V)).ino == dirty_ino);
  CHECK(env.read(env.dirty(V), 0, data.size()) == data);
  REQUIRE_OK(v.stop());
  CHECK(env.read(env.clean(V), 0, data.size()) == data);
  // Stop of a stopped volume does nothing.
  auto snap = env.snapshot();
  REQUIRE_OK(v.stop());
  CHECK(env.snapshot() == snap);
}

FILE_REFLINK_FIXTURE_TEST("volume: volatile gets a fresh sparse image at each start") {
  pool_env<Fx> env(fx);
  auto v = env.add(volume_config::volatile_volume("appvms/work/volatile", 3 * MiB));
  REQUIRE_OK(v.create());
  CHECK(env.files() == std::set<std::string>{});
  REQUIRE_OK(v.verify());
  REQUIRE_OK(v.start());
  path d = env.dirty("appvms/work/volatile");
  CHECK(env.st(d).size == 3 * MiB);
  CHECK(env.st(d).allocated == 0);
  CHECK_FALSE(REQUIRE_VALUE(v.is_dirty()));  // not save_on_stop: never "dirty"
  env.vm_write("appvms/work/volatile", 0, pattern(8 * KiB, 5));
  REQUIRE_OK(v.stop());
  CHECK_FALSE(env.has(d));
  CHECK_FALSE(env.has(env.clean("appvms/work/volatile")));
  REQUIRE_OK(v.start());
  CHECK(env.read(d) == std::string(3 * MiB, '\0'));
  REQUIRE_OK(v.stop());
}

FILE_REFLINK_FIXTURE_TEST("volume: a volatile volume keeps a size changed while running") {
  pool_env<Fx> env(fx);
  auto v = env.add(volume_config::volatile_volume("vm/volatile", MiB));
  REQUIRE_OK(v.start());
  REQUIRE_OK(v.resize(2 * MiB));
  CHECK(env.st(env.dirty("vm/volatile")).size == 2 * MiB);
  REQUIRE_OK(v.stop());
  CHECK(REQUIRE_VALUE(v.size()) == 2 * MiB);
  REQUIRE_OK(v.start());
  CHECK(env.st(env.dirty("vm/volatile")).size == 2 * MiB);
  REQUIRE_OK(v.stop());
}

FILE_REFLINK_FIXTURE_TEST("volume: a snapshot sees the template's committed data, not its running changes") {
  pool_env<Fx> env(fx);
  auto t = env.origin(T, 2 * MiB);
  std::string committed = pattern(64 * KiB, 10), running = pattern(64 * KiB, 11);
  env.commit_data(t, 0, committed);
  REQUIRE_OK(t.start());
  env.vm_write(T, 0, running);  // the template runs and changes its image
  auto s = env.add(volume_config::snapshot("appvms/work/root", T));
  REQUIRE_OK(s.create());
  REQUIRE_OK(s.verify());
  REQUIRE_OK(s.start());
  path sd = env.dirty("appvms/work/root");
  CHECK(env.read(sd, 0, committed.size()) == committed);
  CHECK(env.st(sd).size == 2 * MiB);
  // Its clean name is a hard link to the template's clean image.
  CHECK(env.st(env.clean("appvms/work/root")).ino == env.st(env.clean(T)).ino);
  CHECK(env.st(env.clean(T)).nlink >= 2);
  if constexpr (Fx::reflinks) CHECK(shared_bytes(fx, env.h, sd, env.h, env.clean(T)) >= committed.size());
  // Writes to the snapshot do not reach the template.
  env.vm_write("appvms/work/root", 0, pattern(4 * KiB, 12));
  CHECK(env.read(env.clean(T), 0, committed.size()) == committed);
  REQUIRE_OK(s.stop());
  CHECK_FALSE(env.has(sd));
  CHECK_FALSE(env.has(env.clean("appvms/work/root")));
  REQUIRE_OK(t.stop());
  // The next start sees the template's new commit.
  REQUIRE_OK(s.start());
  CHECK(env.read(sd, 0, running.size()) == running);
  REQUIRE_OK(s.stop());
}

FILE_REFLINK_FIXTURE_TEST("volume: is_outdated turns true when the template commits") {
  pool_env<Fx> env(fx);
  auto t = env.origin(T);
  env.commit_data(t, 0, pattern(4 * KiB, 20));
  auto s = env.add(volume_config::snapshot("appvms/a/root", T));
  CHECK_FALSE(REQUIRE_VALUE(s.is_outdated()));
  REQUIRE_OK(s.start());
  CHECK_FALSE(REQUIRE_VALUE(s.is_outdated()));
  env.commit_data(t, 0, pattern(4 * KiB, 21));
  CHECK(REQUIRE_VALUE(s.is_outdated()));
  REQUIRE_OK(s.stop());
  CHECK_FALSE(REQUIRE_VALUE(s.is_outdated()));
  CHECK_FALSE(REQUIRE_VALUE(t.is_outdated()));  // not snap_on_start
}

FILE_REFLINK_FIXTURE_TEST("volume: origin-snapshot starts from the source and commits its own image") {
  pool_env<Fx> env(fx);
  auto t = env.origin(T);
  std::string base = pattern(16 * KiB, 30), mine = pattern(16 * KiB, 31);
  env.commit_data(t, 0, base);
  auto o = env.add(volume_config::origin_snapshot("vm/os", T));
  REQUIRE_OK(o.create());
  REQUIRE_OK(o.start());
  CHECK(env.read(env.dirty("vm/os"), 0, base.size()) == base);
  env.vm_write("vm/os", 64 * KiB, mine);
  CHECK(REQUIRE_VALUE(o.is_dirty()));
  REQUIRE_OK(o.stop());
  CHECK(env.read(env.clean("vm/os"), 64 * KiB, mine.size()) == mine);
  CHECK(env.read(env.clean(T), 64 * KiB, mine.size()) == std::string(mine.size(), '\0'));
  // The source's commit was a revision of nothing of ours: the template is untouched.
  CHECK(env.read(env.clean(T), 0, base.size()) == base);
  REQUIRE_OK(o.export_());
}

FILE_REFLINK_FIXTURE_TEST("volume: snapshots disabled renames the one image in and out") {
  pool_env<Fx> env(fx);
  auto cfg = volume_config::origin(V, MiB);
  cfg.revisions_to_keep = -1;
  auto v = env.add(cfg);
  CHECK(v.snapshots_disabled());
  REQUIRE_OK(v.create());
  CHECK_FALSE(env.has(env.precache(V)));
  auto ino = env.st(env.clean(V)).ino;
  REQUIRE_OK(v.start());
  CHECK_FALSE(env.has(env.clean(V)));
  CHECK(env.st(env.dirty(V)).ino == ino);  // renamed, not cloned
  std::string data = pattern(8 * KiB, 40);
  env.vm_write(V, 4096, data);
  REQUIRE_OK(v.verify());
  REQUIRE_OK(v.stop());
  CHECK(env.st(env.clean(V)).ino == ino);
  CHECK(env.read(env.clean(V), 4096, data.size()) == data);
  CHECK(REQUIRE_VALUE(v.revisions()).empty());
  CHECK(env.files() == std::set<std::string>{"appvms", "appvms/work", "appvms/work/private.img"});
}

FILE_REFLINK_FIXTURE_TEST("volume: remove deletes every file, revisions and pins included, and its directory") {
  pool_env<Fx> env(fx);
  auto v = env.origin(V);
  auto other = env.origin("appvms/other/private");
  env.commit_data(v, 0, pattern(4 * KiB, 50));
  REQUIRE_OK(v.keep_revision(1, "first"));
  env.commit_data(v, 0, pattern(4 * KiB, 51));
  REQUIRE_OK(v.start());
  // Leftover garbage of this vid goes too.
  make_file(fx, env.h, path(V + ".img~leftover"), 10);
  // Running: refused unless forced, and nothing changes.
  const auto before = env.snapshot();
  CHECK_ERR(v.remove(), errc::volume_running);
  CHECK(env.snapshot() == before);
  REQUIRE_OK(v.remove(true));
  CHECK(env.files() == std::set<std::string>{"appvms", "appvms/other", "appvms/other/private.img",
                                             "appvms/other/private-precache.img"});
  CHECK_ERR(env.pool.get_volume(V), errc::volume_not_found);
  CHECK_ERR(v.start(), errc::volume_removed);
  REQUIRE_OK(other.verify());
}

FILE_REFLINK_FIXTURE_TEST("volume: create removes the leftovers of an earlier volume with that vid") {
  pool_env<Fx> env(fx);
  auto v = env.origin(V);
  env.commit_data(v, 0, pattern(4 * KiB, 60));
  env.commit_data(v, 0, pattern(4 * KiB, 61));
  REQUIRE_OK(v.create());
  CHECK(env.files() == std::set<std::string>{"appvms", "appvms/work", "appvms/work/private.img",
                                             "appvms/work/private-precache.img"});
  CHECK(env.read(env.clean(V)) == std::string(MiB, '\0'));
}

FILE_REFLINK_FIXTURE_TEST("volume: block_device names the dirty image, its mode and the volume") {
  pool_env<Fx> env(fx);
  auto cfg = volume_config::origin(V, MiB);
  cfg.rw = false;
  cfg.name = "private";
  auto v = env.add(cfg);
  REQUIRE_OK(v.create());
  CHECK_ERR(v.block_device(), errc::volume_not_running);  // stopped: nothing to attach
  REQUIRE_OK(v.start());
  auto b = REQUIRE_VALUE(v.block_device());
  CHECK(b.device_path == env.dir / (V + "-dirty.img"));
  CHECK(env.has(path(V + "-dirty.img")));
  CHECK(b.read_only);
  CHECK(b.name == "private");
  auto w = env.add(volume_config::volatile_volume("vm/volatile", MiB));
  CHECK(w.name() == "volatile");
  REQUIRE_OK(w.start());
  CHECK_FALSE(REQUIRE_VALUE(w.block_device()).read_only);
}

FILE_REFLINK_FIXTURE_TEST("volume: every file operation is logged with its paths") {
  pool_env<Fx> env(fx);
  auto v = env.origin(V);
  env.clear_log();
  REQUIRE_OK(v.start());
  CHECK(env.logged("Renamed file: '" + (env.dir / (V + "-precache.img")).string() + "' -> '" +
                   (env.dir / (V + "-dirty.img")).string() + "'") == 1);
  REQUIRE_OK(v.stop());
  CHECK(env.logged("Hardlinked file:") == 1);  // the revision
  CHECK(env.logged("Renamed file:") >= 2);     // dirty over clean, the new precache
  CHECK(env.logged(Fx::reflinks ? "Cloned file:" : "Copied file (") >= 1);
  REQUIRE_OK(v.remove());
  CHECK(env.logged("Removed file:") >= 3);
}
