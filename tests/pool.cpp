// SPDX-License-Identifier: BSL-1.0
// Pool: setup and its reflink check, the registry, space, destroy, scan and
// recover, and a pool directory that vanished or was replaced.
#include "pool_support.hpp"

#include <algorithm>

using namespace file_reflink;
using namespace file_reflink::test;

namespace {
template <class Fx>
Pool<typename Fx::ops_type> bare_pool(Fx& fx, const path& dir, bool setup_check) {
  pool_config c;
  c.name = "bare";
  c.dir_path = dir;
  c.setup_check = setup_check;
  return Pool<typename Fx::ops_type>(c, fx.ops);
}

bool has_vid(const scan_report& r, const std::string& vid) {
  return std::any_of(r.volumes.begin(), r.volumes.end(), [&](const volume_scan& v) { return v.vid == vid; });
}
const volume_scan& scanned(const scan_report& r, const std::string& vid) {
  for (auto& v : r.volumes)
    if (v.vid == vid) return v;
  FAIL("no volume " << vid << " in the scan");
  throw 0;
}
}  // namespace

FILE_REFLINK_FIXTURE_TEST("pool: setup creates the directory durably and marks it as a pool") {
  auto pool = bare_pool(fx, fx.root / "a" / "b", true);
  if constexpr (Fx::reflinks) {
    REQUIRE_OK(pool.setup());
    auto h = fx.open(fx.root / "a" / "b");
    CHECK(names(fx, h) == std::set<std::string>{".file-reflink-pool"});
    REQUIRE_OK(pool.setup());  // again: nothing changes
    CHECK(names(fx, h) == std::set<std::string>{".file-reflink-pool"});
    CHECK(REQUIRE_VALUE(pool.reflinks_supported()));
  } else {
    // ext4: refused, and the directory setup made is gone again.
    auto r = pool.setup();
    REQUIRE_ERR(r, errc::reflink_unsupported);
    CHECK(r.error() == std::errc::operation_not_supported);
    const std::string& m = r.error().message();
    MESSAGE(m);
    CHECK(m.find("does not support reflinks") != std::string::npos);
    CHECK(m.find("full copy") != std::string::npos);
    CHECK(m.find("setup_check=false") != std::string::npos);
    CHECK_FALSE(exists(fx, fx.dir(), "a/b"));
    // An existing directory is left in place.
    REQUIRE_OK(fx.ops.mkdir(fx.dir(), "kept"));
    REQUIRE_ERR(bare_pool(fx, fx.root / "kept", true).setup(), errc::reflink_unsupported);
    CHECK(exists(fx, fx.dir(), "kept"));
    // setup_check=false forces the fallback.
    auto forced = bare_pool(fx, fx.root / "a" / "b", false);
    REQUIRE_OK(forced.setup());
    CHECK_FALSE(REQUIRE_VALUE(forced.reflinks_supported()));
  }
}

TEST_CASE("pool: setup on an in-memory filesystem without reflinks is refused") {
  MemoryFsOps ops;
  mount_options ext4_like;
  ext4_like.reflink = false;
  REQUIRE_OK(ops.mount("/ext4", ext4_like));
  pool_config c;
  c.dir_path = "/ext4/pool";
  Pool<MemoryFsOps> pool(c, ops);
  REQUIRE_ERR(pool.setup(), errc::reflink_unsupported);
  CHECK_FALSE(ops.exists("/ext4/pool"));
  c.setup_check = false;
  std::vector<std::string> warnings;
  c.log = [&](log_level l, const std::string& m) {
    if (l == log_level::warning) warnings.push_back(m);
  };
  Pool<MemoryFsOps> forced(c, ops);
  REQUIRE_OK(forced.setup());
  auto v = REQUIRE_VALUE(forced.init_volume(volume_config::origin("vm/private", 1 << 20)));
  REQUIRE_OK(v.create());
  REQUIRE_OK(v.start());
  REQUIRE_OK(v.stop());
  REQUIRE_OK(v.start());
  REQUIRE_OK(v.stop());
  // The fallback is announced once, not at every copy.
  std::size_t fallback_warnings = std::count_if(warnings.begin(), warnings.end(), [](const std::string& m) {
    return m.find("does not support reflinks") != std::string::npos;
  });
  CHECK(fallback_warnings == 1);
}

FILE_REFLINK_FIXTURE_TEST("pool: init_volume validates, get_volume and list_volumes find what was registered") {
  pool_env<Fx> env(fx);
  auto a = env.add(volume_config::origin("vm/a", MiB));
  auto b = env.add(volume_config::snapshot("vm/b", "vm/a"));
  CHECK(a.kind() == volume_kind::origin);
  CHECK(b.kind() == volume_kind::snapshot);
  CHECK(REQUIRE_VALUE(env.pool.get_volume("vm/a")) == a);
  auto all = env.pool.list_volumes();
  REQUIRE(all.size() == 2);
  CHECK(all[0].vid() == "vm/a");
  CHECK(all[1].vid() == "vm/b");
  auto r = env.pool.get_volume("vm/none");
  REQUIRE_ERR(r, errc::volume_not_found);
  CHECK(r.error() == std::errc::no_such_file_or_directory);
  CHECK_ERR(env.pool.init_volume(volume_config::origin("vm/a", MiB)), errc::volume_exists);
  CHECK(env.files() == std::set<std::string>{});  // registering writes nothing
}

FILE_REFLINK_FIXTURE_TEST("pool: size and usage come from the filesystem") {
  pool_env<Fx> env(fx);
  auto size = REQUIRE_VALUE(env.pool.size());
  auto used = REQUIRE_VALUE(env.pool.usage());
  auto s = REQUIRE_VALUE(fx.ops.statvfs(env.h));
  CHECK(size == s.size);
  CHECK(used <= size);
  auto v = env.origin("vm/a", 8 * MiB);
  REQUIRE_OK(v.start());
  env.vm_write("vm/a", 0, pattern(4 * MiB, 1));
  REQUIRE_OK(fx.ops.fsync(env.h, "vm/a-dirty.img"));
  CHECK(REQUIRE_VALUE(env.pool.usage()) >= used + 3 * MiB);
  REQUIRE_OK(v.stop());
}

FILE_REFLINK_FIXTURE_TEST("pool: destroy is refused while volumes have files, then removes the pool") {
  pool_env<Fx> env(fx);
  auto v = env.origin("vm/a");
  auto r = env.pool.destroy();
  REQUIRE_ERR(r, std::errc::directory_not_empty);
  CHECK(r.error().message().find("remove them first") != std::string::npos);
  REQUIRE_OK(v.remove());
  REQUIRE_OK(env.pool.destroy());
  CHECK_FALSE(exists(fx, fx.dir(), "pool"));
  // Not set up any more: operations say so instead of recreating it.
  CHECK_ERR(env.pool.scan(), errc::pool_not_set_up);
}

FILE_REFLINK_FIXTURE_TEST("pool: scan sorts what is on disk into volumes and foreign files") {
  pool_env<Fx> env(fx);
  auto v = env.origin("appvms/work/private");
  env.commit_data(v, 0, pattern(4 * KiB, 1));
  REQUIRE_OK(v.keep_revision(1, "base"));
  auto w = env.origin("appvms/work/root");
  REQUIRE_OK(w.start());
  make_file(fx, env.h, "appvms/work/private.img~a1b2c3d4", 10);   // interrupted write
  make_file(fx, env.h, "appvms/work/foo.img.bar", 10);            // nobody's
  make_file(fx, env.h, "appvms/work/private.img.2@2018-13-45T99:00:00Z", 10);  // bad stamp
  make_file(fx, env.h, "notes.txt", 3);
  fx.symlink("/etc/passwd", env.dir / "appvms/work/evil-dirty.img");
  auto r = REQUIRE_VALUE(env.pool.scan());
  const auto& p = scanned(r, "appvms/work/private");
  CHECK(p.registered);
  CHECK(p.clean);
  CHECK_FALSE(p.dirty);
  CHECK(p.precache == precache_state::current);
  REQUIRE(p.revisions.size() == 1);
  CHECK(at(p.revisions, 1).labels == std::vector<std::string>{"base"});
  CHECK(p.temporary == std::vector<path>{"appvms/work/private.img~a1b2c3d4"});
  const auto& q = scanned(r, "appvms/work/root");
  CHECK(q.dirty);
  std::set<std::string> foreign;
  for (auto& f : r.foreign) foreign.insert(f.relative.string());
  CHECK(foreign == std::set<std::string>{"appvms/work/evil-dirty.img", "appvms/work/foo.img.bar",
                                         "appvms/work/private.img.2@2018-13-45T99:00:00Z", "notes.txt"});
  CHECK_FALSE(has_vid(r, "appvms/work/evil"));
  REQUIRE_OK(w.stop());
}

FILE_REFLINK_FIXTURE_TEST("pool: recover removes incomplete files, reports the rest, deletes no committed data") {
  pool_env<Fx> env(fx);
  auto v = env.origin("appvms/work/private");
  env.commit_data(v, 0, pattern(4 * KiB, 1));
  auto w = env.origin("appvms/other/private");
  REQUIRE_OK(w.start());  // a "crashed" VM
  make_file(fx, env.h, "appvms/work/private-dirty.img~Xy12Zw34", 10);
  make_file(fx, env.h, "appvms/work/private.img.5@2020-01-01T00:00:00Z~qqqqqqqq", 10);
  make_file(fx, env.h, "appvms/work/private-import.img", 10);
  make_file(fx, env.h, "appvms/work/foo.img.bar", 10);
  // A stale precache for the other volume.
  REQUIRE_OK(w.stop());
  REQUIRE_OK(fx.ops.set_mtime(env.h, "appvms/other/private-precache.img", file_time{1, 0}));
  REQUIRE_OK(w.start());
  // Unregistered volumes' garbage is found too (another process's crash).
  REQUIRE_OK(fx.ops.mkdir(env.h, "vm"));
  make_file(fx, env.h, "vm/unknown-precache.img~abcdefgh", 10);
  auto before_clean = env.read(env.clean("appvms/work/private"));
  auto revs = REQUIRE_VALUE(v.revisions());
  auto rep = REQUIRE_VALUE(env.pool.recover());
  std::set<std::string> removed;
  for (auto& p : rep.removed) removed.insert(p.string());
  CHECK(removed == std::set<std::string>{"appvms/work/private-dirty.img~Xy12Zw34",
                                         "appvms/work/private.img.5@2020-01-01T00:00:00Z~qqqqqqqq",
                                         "appvms/work/private-import.img", "vm/unknown-precache.img~abcdefgh"});
  CHECK(rep.dirty == std::vector<std::string>{"appvms/other/private"});
  CHECK(rep.foreign.size() == 1);
  CHECK(env.has("appvms/work/foo.img.bar"));
  CHECK(env.read(env.clean("appvms/work/private")) == before_clean);
  CHECK(REQUIRE_VALUE(v.revisions()).size() == revs.size());
  CHECK(env.has(env.dirty("appvms/other/private")));
  REQUIRE_OK(w.stop());
  // The stale precache: reported by a recover while stopped.
  REQUIRE_OK(fx.ops.set_mtime(env.h, "appvms/other/private-precache.img", file_time{1, 0}));
  rep = REQUIRE_VALUE(env.pool.recover());
  CHECK(rep.stale_precache == std::vector<std::string>{"appvms/other/private"});
  CHECK(rep.removed.empty());
}

FILE_REFLINK_FIXTURE_TEST("pool: a pool directory that was replaced is refused, and nothing is written there") {
  pool_env<Fx> env(fx);
  auto v = env.origin("vm/a");
  // As if the filesystem was unmounted: another, empty directory at the path.
  REQUIRE_OK(fx.ops.rename(fx.dir(), "pool", "pool-away"));
  REQUIRE_OK(fx.ops.mkdir(fx.dir(), "pool"));
  auto r = v.start();
  REQUIRE_ERR(r, errc::pool_directory_replaced);
  CHECK(r.error().message().find("start volume 'vm/a'") == 0);
  CHECK(r.error().message().find("pool directory") != std::string::npos);
  CHECK_ERR(env.pool.scan(), errc::pool_directory_replaced);
  auto vol = env.add(volume_config::volatile_volume("vm/volatile", MiB));
  CHECK_ERR(vol.start(), errc::pool_directory_replaced);
  CHECK(names(fx, fx.dir(), "pool").empty());
  // A fresh pool object on the empty directory refuses it too: no marker.
  pool_config c;
  c.dir_path = env.dir;
  Pool<typename Fx::ops_type> fresh(c, fx.ops);
  auto x = REQUIRE_VALUE(fresh.init_volume(volume_config::volatile_volume("vm/volatile", MiB)));
  CHECK_ERR(x.start(), errc::pool_not_set_up);
  CHECK(names(fx, fx.dir(), "pool").empty());
  // The directory vanished entirely.
  REQUIRE_OK(fx.ops.rmdir(fx.dir(), "pool"));
  CHECK_ERR(v.stop(), errc::pool_directory_replaced);
  CHECK_FALSE(exists(fx, fx.dir(), "pool"));
}

TEST_CASE("pool: a pool whose in-memory filesystem is unmounted refuses to work on the mount point") {
  MemoryFsOps ops;
  REQUIRE_OK(ops.mount("/mnt/data"));
  pool_config c;
  c.dir_path = "/mnt/data";
  Pool<MemoryFsOps> pool(c, ops);
  REQUIRE_OK(pool.setup());
  auto v = REQUIRE_VALUE(pool.init_volume(volume_config::origin("vm/private", 1 << 20)));
  REQUIRE_OK(v.create());
  REQUIRE_OK(ops.unmount("/mnt/data"));
  REQUIRE_ERR(v.start(), errc::pool_directory_replaced);
  CHECK(ops.tree("/mnt/data").empty());
  Pool<MemoryFsOps> after_reboot(c, ops);
  auto w = REQUIRE_VALUE(after_reboot.init_volume(volume_config::volatile_volume("vm/volatile", 1 << 20)));
  REQUIRE_ERR(w.start(), errc::pool_not_set_up);
  CHECK(ops.tree("/mnt/data").empty());
}

FILE_REFLINK_FIXTURE_TEST("pool: ephemeral settings are recorded and reported") {
  pool_config c;
  c.dir_path = fx.root / "p";
  c.ephemeral_volatile = true;
  c.setup_check = Fx::reflinks;
  Pool<typename Fx::ops_type> pool(c, fx.ops);
  REQUIRE_OK(pool.setup());
  CHECK(pool.config().ephemeral_volatile);
  auto vol = REQUIRE_VALUE(pool.init_volume(volume_config::volatile_volume("vm/volatile", MiB)));
  auto ori = REQUIRE_VALUE(pool.init_volume(volume_config::origin("vm/private", MiB)));
  auto cfg = volume_config::origin("vm/eph", MiB);
  cfg.ephemeral = true;
  auto eph = REQUIRE_VALUE(pool.init_volume(cfg));
  CHECK(vol.ephemeral());
  CHECK_FALSE(ori.ephemeral());
  CHECK(eph.ephemeral());
}
