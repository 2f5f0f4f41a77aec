// SPDX-License-Identifier: BSL-1.0
// Real filesystems on their worst day. A btrfs and an ext4 loop filesystem
// (and MemoryFsOps alike) filled to the brim: start, stop with a revision,
// import and resize each succeed or fail with ENOSPC leaving every file as
// it was; after space is freed the same operations succeed. And a pool
// whose filesystem is unmounted under it: every operation fails clearly and
// nothing is created on the filesystem below.
#include "../pool_support.hpp"
#include "report.hpp"

#include <sys/mount.h>

#include <functional>

using namespace file_reflink;
using namespace file_reflink::test;
using file_reflink::reliability::figures;
using file_reflink::reliability::ledger;

namespace {

using full_fixtures = std::tuple<memory_fixture, btrfs_fixture, ext4_fixture>;

//! An operation on a full filesystem: it succeeds, or it fails with ENOSPC
//! (EDQUOT, EFBIG count too) and leaves the pool's files exactly as they
//! were. Returns "ok", "ENOSPC" or what went wrong.
template <class Env, class F>
std::string on_full_disk(Env& env, const std::string& what, F&& op, figures& f) {
  auto before = env.snapshot();
  auto r = op();
  ++f.faults;
  if (r) {
    ++f.faults_after_commit;
    CHECK(temporaries(env.files()).empty());
    return "ok";
  }
  INFO(what << ": " << r.error().message());
  bool space = r.error() == std::errc::no_space_on_device;
  CHECK_MESSAGE(space, what << " failed with something else than ENOSPC: " << r.error().message());
  CHECK_MESSAGE(r.error().message().find(what + " volume") == 0, r.error().message());
  auto after = env.snapshot();
  bool same = after == before;
  CHECK_MESSAGE(same, what << " failed and changed the pool's files");
  if (!space || !same) ++f.violations;
  return "ENOSPC";
}

}  // namespace

FILE_REFLINK_FIXTURE_TEST_ON("full disk: start, stop, import and resize fail cleanly, then work once space is freed",
                             full_fixtures) {
  pool_env<Fx> env(fx, 2);
  const std::string data = pattern(2 * MiB, 5);
  auto a = env.origin("vm/a", 8 * MiB);
  env.commit_data(a, 0, data);
  auto b = env.origin("vm/b", 8 * MiB);
  // A running VM with new data, about to be committed.
  REQUIRE_OK(a.start());
  const std::string vm_data = pattern(MiB, 6);
  env.vm_write("vm/a", 4 * MiB, vm_data);
  REQUIRE_OK(fx.ops.fsync(env.h, env.dirty("vm/a")));
  // b's precache goes, so that its start must copy.
  REQUIRE_OK(fx.ops.remove(env.h, env.precache("vm/b")));

  fx.fill_to(0);
  fx.sync();
  figures f;
  std::string line = std::string(Fx::name) + " full:";
  line += " stop=" + on_full_disk(env, "stop", [&] { return a.stop(); }, f);
  line += " start=" + on_full_disk(env, "start", [&] { return b.start(); }, f);
  if (REQUIRE_VALUE(b.is_dirty())) REQUIRE_OK(b.stop());
  line += " import_volume=" + on_full_disk(env, "import_volume", [&] { return b.import_volume(a); }, f);
  line += " resize=" + on_full_disk(env, "resize", [&] { return a.resize(64 * MiB); }, f);
  line += " import_data=" + on_full_disk(env, "import_data", [&] {
    auto p = b.import_data(8 * MiB);
    if (!p) return result<void>(failure(p.error()));
    std::string chunk = pattern(MiB, 7);
    auto w = fx.ops.write(env.h, env.import("vm/b"), 0, chunk.data(), chunk.size());
    if (!w) {
      // The importer hit the full disk: it gives up, as a caller would.
      REQUIRE_OK(b.import_data_end(false));
      return result<void>(failure(w.error().context("import_data volume 'vm/b'")));
    }
    return b.import_data_end(true);
  }, f);
  MESSAGE(line);
  // Nothing was lost: a's committed image is the old data or the VM's.
  std::string a_clean = env.read(env.clean("vm/a"));
  bool a_ok = a_clean.substr(0, data.size()) == data &&
              (a_clean.substr(4 * MiB, vm_data.size()) == vm_data || env.has(env.dirty("vm/a")));
  CHECK_MESSAGE(a_ok, "vm/a lost data on the full filesystem");
  if (!a_ok) ++f.violations;

  // Space again: every one of them works.
  fx.unfill();
  fx.sync();
  if (REQUIRE_VALUE(a.is_dirty())) REQUIRE_OK(a.stop());
  CHECK(env.read(env.clean("vm/a"), 4 * MiB, vm_data.size()) == vm_data);
  CHECK(REQUIRE_VALUE(a.revisions()).size() >= 1);
  REQUIRE_OK(b.start());
  REQUIRE_OK(b.stop());
  REQUIRE_OK(b.import_volume(a));
  CHECK(env.read(env.clean("vm/b"), 0, data.size()) == data);
  REQUIRE_OK(a.resize(64 * MiB));
  CHECK(REQUIRE_VALUE(a.size()) == 64 * MiB);
  REQUIRE_OK(b.import_data(8 * MiB));
  REQUIRE_OK(b.import_data_end(true));
  CHECK(temporaries(env.files()).empty());
  auto rep = REQUIRE_VALUE(env.pool.recover());
  CHECK(rep.removed.empty());
  ledger::get().add("real filesystems", std::string("full disk (") + Fx::name + ")", f);
}

namespace {

using unmount_fixtures = std::tuple<memory_fixture, btrfs_fixture>;

//! Mount a small filesystem of its own on `abs` (a tmpfs on Linux, in the
//! test process's private mount namespace; a mount without reflinks in
//! memory), and unmount it lazily, as `umount -l` does under a busy pool.
template <class Fx>
void mount_small(Fx& fx, const path& abs) {
  if constexpr (is_memory<Fx>) {
    mount_options mo;
    mo.reflink = false;
    mo.capacity = 64 * MiB;
    REQUIRE_OK(fx.ops.mount(abs, mo));
  } else {
    REQUIRE_MESSAGE(::mount("file_reflink_unmount", abs.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=64m") == 0,
                    "mount tmpfs " << abs.string() << ": " << std::strerror(errno));
  }
}
template <class Fx>
void unmount(Fx& fx, const path& abs) {
  if constexpr (is_memory<Fx>) {
    REQUIRE_OK(fx.ops.unmount(abs));
  } else {
    (void)fx;
    REQUIRE_MESSAGE(::umount2(abs.c_str(), MNT_DETACH) == 0, "umount " << abs.string() << ": " << std::strerror(errno));
  }
}

}  // namespace

FILE_REFLINK_FIXTURE_TEST_ON("unmounted: a pool whose filesystem is unmounted under it refuses and creates nothing below",
                             unmount_fixtures) {
  figures f;
  for (bool pool_is_mount_point : {true, false}) {
    CAPTURE(pool_is_mount_point);
    const std::string mnt = pool_is_mount_point ? "m1" : "m2";
    REQUIRE_OK(fx.ops.mkdir(fx.dir(), path(mnt)));
    mount_small(fx, fx.root / mnt);
    path dir = pool_is_mount_point ? fx.root / mnt : fx.root / mnt / "pool";
    pool_env<Fx> env(fx, 2, dir, false);
    auto a = env.origin("vm/a", MiB);
    env.commit_data(a, 0, pattern(4 * KiB, 1));
    auto s = env.add(volume_config::snapshot("vm/s", "vm/a"));
    auto v = env.add(volume_config::volatile_volume("vm/t", MiB));
    REQUIRE_OK(a.start());
    unmount(fx, fx.root / mnt);
    CHECK(names(fx, fx.dir(), path(mnt)).empty());

    // The pool object that was working, and a new one (a new process).
    pool_config cfg = env.pool.config();
    Pool<typename Fx::ops_type> fresh(cfg, fx.ops);
    auto expect_refused = [&](const std::string& what, auto&& r) {
      ++f.inputs;
      bool ok = !r && (r.error() == errc::pool_directory_replaced || r.error() == errc::pool_not_set_up);
      if (!r) INFO(what << ": " << r.error().message());
      CHECK_MESSAGE(ok, what << " did not refuse with pool_directory_replaced or pool_not_set_up");
      if (!ok) ++f.violations;
    };
    expect_refused("stop", a.stop());
    expect_refused("start", a.start());
    expect_refused("verify", a.verify());
    expect_refused("create", a.create());
    expect_refused("resize", a.resize(2 * MiB));
    expect_refused("revisions", a.revisions());
    expect_refused("import_data", a.import_data(MiB));
    expect_refused("snapshot start", s.start());
    expect_refused("volatile start", v.start());
    expect_refused("remove", a.remove());
    expect_refused("scan", env.pool.scan());
    expect_refused("recover", env.pool.recover());
    expect_refused("usage", env.pool.usage());
    expect_refused("new pool: init_volume + create",
                   fresh.init_volume(volume_config::origin("vm/a", MiB)).value().create());
    expect_refused("new pool: scan", fresh.scan());
    expect_refused("new pool: recover", fresh.recover());
    auto below = names(fx, fx.dir(), path(mnt));
    CHECK_MESSAGE(below.empty(), "files were created on the filesystem below the mount point");
    if (!below.empty()) ++f.violations;
  }
  ledger::get().add("real filesystems", std::string("unmounted pool (") + Fx::name + ")", f);
}
