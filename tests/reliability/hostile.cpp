// SPDX-License-Identifier: BSL-1.0
// Hostile input at the pool's boundary: symlinks and hard links planted in
// the pool (a volume directory, a dirty image, a precache, a revision, a
// clean image pointing outside the pool or at another volume's image), and
// files the library did not write. Every volume operation then runs on the
// volume; files outside the pool and the other volume's image must keep
// their bytes and mtimes, nothing may appear outside the pool, and the
// foreign files must still be there, listed by scan. On MemoryFsOps and on
// a real btrfs.
#include "../pool_support.hpp"
#include "report.hpp"

#include <functional>

using namespace file_reflink;
using namespace file_reflink::test;
using file_reflink::reliability::figures;
using file_reflink::reliability::ledger;

namespace {

using hostile_fixtures = std::tuple<memory_fixture, btrfs_fixture>;

const std::string V = "vm/v";
const std::string W = "other/w";

//! Files outside the pool, and the neighbour's image: what no operation on
//! the hostile volume may touch.
template <class Fx>
struct guarded {
  Fx& fx;
  std::string base;
  std::map<std::string, std::pair<std::string, file_time>> files;  // rel to root -> bytes, mtime
  std::set<std::string> outside_names;

  guarded(Fx& f, std::string b) : fx(f), base(std::move(b)) {}
  void add(const std::string& rel) {
    files[rel] = {read_all(fx, fx.dir(), path(rel)), stat_of(fx, fx.dir(), path(rel)).mtime};
  }
  //! Everything under the fixture's root that is not this case's pool.
  std::set<std::string> outside() {
    std::set<std::string> out;
    for (auto& n : names(fx, fx.dir()))
      if (n.rfind(base + "/pool", 0) != 0 || (n.size() > base.size() + 5 && n[base.size() + 5] != '/')) out.insert(n);
    return out;
  }
  void snapshot_outside() { outside_names = outside(); }
  //! What changed, or "".
  std::string changes() {
    std::string out;
    for (auto& [rel, v] : files) {
      auto st = fx.ops.stat(fx.dir(), path(rel));
      if (!st) {
        out += rel + " is gone; ";
        continue;
      }
      if (read_all(fx, fx.dir(), path(rel)) != v.first) out += rel + " bytes changed; ";
      if (st.value().mtime != v.second) out += rel + " mtime changed; ";
    }
    if (outside() != outside_names) out += "names outside the pool changed; ";
    return out;
  }
};

//! Every volume operation, in an order that reaches each: results are
//! ignored (refusing is right); the VM writes into whatever start left.
template <class Env, class Vol>
std::size_t run_everything(Env& env, Vol& v, Vol& src) {
  std::size_t n = 0;
  auto go = [&](auto&& r) {
    ++n;
    (void)r;
  };
  go(v.verify());
  bool started = static_cast<bool>(v.start());
  ++n;
  // The VM writes into what start handed it, if start succeeded.
  if (auto st = env.fx.ops.stat(env.h, env.dirty(V)); st && n && started)
    (void)env.fx.ops.write(env.h, env.dirty(V), 0, "VM data", 7);
  go(v.is_dirty());
  go(v.block_device());
  go(v.resize(2 * MiB));
  go(v.discard(0, 4 * KiB));
  go(v.stop());
  go(v.revisions());
  go(v.keep_revision(5, "gold"));
  go(v.revert());
  go(v.revert(std::uint64_t(5)));
  go(v.drop_revision(std::uint64_t(5)));
  go(v.sparsify());
  go(v.space());
  go(v.usage());
  go(v.size());
  go(v.export_());
  go(v.import_volume(src));
  go(v.import_data(MiB));
  go(v.import_data_end(false));
  go(v.start());
  go(v.stop());
  go(env.pool.scan());
  go(env.pool.recover());
  go(v.remove());
  go(v.create());
  go(v.start());
  go(v.stop());
  return n;
}

//! One planted trap, in a directory of its own under the fixture's root:
//! a pool with the template, the neighbour W (in "other/") and V (its kind
//! from `cfg`, committed once when it keeps data); then `plant` changes
//! names in the pool (paths relative to the root, given the case's base);
//! then every operation runs on V.
template <class Fx>
void trap(Fx& fx, const std::string& what, const volume_config& cfg,
          const std::function<void(pool_env<Fx>&, const std::string& base)>& plant) {
  static int cases = 0;
  const std::string base = "case" + std::to_string(++cases);
  CAPTURE(what);
  REQUIRE_OK(fx.ops.mkdir(fx.dir(), path(base)));
  REQUIRE_OK(fx.ops.mkdir(fx.dir(), path(base + "/outside")));
  make_file(fx, fx.dir(), path(base + "/outside/secret.img"), MiB, {{0, pattern(8 * KiB, 7)}});
  make_file(fx, fx.dir(), path(base + "/outside/v.img"), MiB, {{0, pattern(8 * KiB, 8)}});
  pool_env<Fx> env(fx, 2, fx.root / base / "pool");
  auto src = env.origin("tpl/root");
  env.commit_data(src, 0, pattern(4 * KiB, 1));
  auto w = env.origin(W);
  env.commit_data(w, 0, pattern(4 * KiB, 2));
  auto v = env.add(cfg);
  if (cfg.kind() == volume_kind::origin) {
    REQUIRE_OK(v.create());
    env.commit_data(v, 0, pattern(4 * KiB, 3));
  } else if (cfg.kind() == volume_kind::origin_snapshot) {
    env.commit_data(v, 0, pattern(4 * KiB, 3));
  }
  plant(env, base);
  guarded<Fx> g(fx, base);
  g.add(base + "/outside/secret.img");
  g.add(base + "/outside/v.img");
  g.add(base + "/pool/" + W + ".img");
  g.snapshot_outside();
  figures f;
  f.inputs = run_everything(env, v, src);
  std::string changed = g.changes();
  CHECK_MESSAGE(changed.empty(), what << ": " << changed);
  if (!changed.empty()) ++f.violations;
  ledger::get().add("hostile input", std::string("planted links (") + Fx::name + ")", f);
}

//! Replace `link_rel` (if present) by a symlink to `target_rel` (both
//! relative to the root; the link holds the absolute target).
template <class Fx>
void parent_dir(Fx& fx, const std::string& rel) {
  (void)fx.ops.mkdir(fx.dir(), path(rel).parent_path());
}

template <class Fx>
void plant_symlink(Fx& fx, const std::string& target_rel, const std::string& link_rel) {
  parent_dir(fx, link_rel);
  (void)fx.ops.remove(fx.dir(), path(link_rel));
  fx.symlink(fx.root / target_rel, fx.root / link_rel);
}

//! Replace `link_rel` (if present) by a hard link to `target_rel`.
template <class Fx>
void plant_hardlink(Fx& fx, const std::string& target_rel, const std::string& link_rel) {
  parent_dir(fx, link_rel);
  (void)fx.ops.remove(fx.dir(), path(link_rel));
  REQUIRE_OK(fx.ops.link(fx.dir(), path(target_rel), path(link_rel)));
}

const std::vector<volume_config>& every_kind() {
  static const std::vector<volume_config> kinds = {
      volume_config::origin(V, MiB), volume_config::volatile_volume(V, MiB), volume_config::snapshot(V, "tpl/root"),
      volume_config::origin_snapshot(V, "tpl/root")};
  return kinds;
}

}  // namespace

FILE_REFLINK_FIXTURE_TEST_ON("hostile: planted symlinks are refused or ignored, never followed", hostile_fixtures) {
  for (const auto& cfg : every_kind()) {
    CAPTURE(to_string(cfg.kind()));
    trap<Fx>(fx, "the volume directory is a symlink out of the pool", cfg, [&](auto&, const std::string& b) {
      (void)fx.ops.rename(fx.dir(), path(b + "/pool/vm"), path(b + "/pool/moved"));
      plant_symlink(fx, b + "/outside", b + "/pool/vm");
    });
    trap<Fx>(fx, "the dirty image is a symlink out of the pool", cfg, [&](auto&, const std::string& b) {
      plant_symlink(fx, b + "/outside/secret.img", b + "/pool/vm/v-dirty.img");
    });
    trap<Fx>(fx, "the precache is a symlink out of the pool", cfg, [&](auto&, const std::string& b) {
      plant_symlink(fx, b + "/outside/secret.img", b + "/pool/vm/v-precache.img");
    });
    trap<Fx>(fx, "a revision is a symlink out of the pool", cfg, [&](auto&, const std::string& b) {
      plant_symlink(fx, b + "/outside/secret.img", b + "/pool/vm/v.img.5@2024-01-01T00:00:00Z");
    });
    trap<Fx>(fx, "a pin is a symlink out of the pool", cfg, [&](auto&, const std::string& b) {
      plant_symlink(fx, b + "/outside/secret.img", b + "/pool/vm/v.img.5@2024-01-01T00:00:00Z.gold.pin");
    });
    trap<Fx>(fx, "the clean image is a symlink to another volume's image", cfg, [&](auto&, const std::string& b) {
      plant_symlink(fx, b + "/pool/" + W + ".img", b + "/pool/vm/v.img");
    });
    trap<Fx>(fx, "the source's clean image is a symlink out of the pool", cfg, [&](auto&, const std::string& b) {
      REQUIRE_OK(fx.ops.rename(fx.dir(), path(b + "/pool/tpl/root.img"), path(b + "/pool/tpl/kept")));
      plant_symlink(fx, b + "/outside/secret.img", b + "/pool/tpl/root.img");
    });
  }
}

FILE_REFLINK_FIXTURE_TEST_ON("hostile: planted hard links never make a VM write into another file", hostile_fixtures) {
  for (const auto& cfg : every_kind()) {
    CAPTURE(to_string(cfg.kind()));
    trap<Fx>(fx, "the precache is a hard link to a file outside the pool", cfg, [&](auto&, const std::string& b) {
      plant_hardlink(fx, b + "/outside/secret.img", b + "/pool/vm/v-precache.img");
    });
    trap<Fx>(fx, "the precache is a hard link to another volume's image", cfg, [&](auto&, const std::string& b) {
      plant_hardlink(fx, b + "/pool/" + W + ".img", b + "/pool/vm/v-precache.img");
    });
    trap<Fx>(fx, "the dirty image is a hard link to another volume's image", cfg, [&](auto&, const std::string& b) {
      plant_hardlink(fx, b + "/pool/" + W + ".img", b + "/pool/vm/v-dirty.img");
    });
    trap<Fx>(fx, "the dirty image is a hard link to a file outside the pool", cfg, [&](auto&, const std::string& b) {
      plant_hardlink(fx, b + "/outside/secret.img", b + "/pool/vm/v-dirty.img");
    });
    trap<Fx>(fx, "the import file is a hard link to a file outside the pool", cfg, [&](auto&, const std::string& b) {
      plant_hardlink(fx, b + "/outside/secret.img", b + "/pool/vm/v-import.img");
    });
  }
}

FILE_REFLINK_FIXTURE_TEST_ON("hostile: a forged precache hard link is never renamed into place", hostile_fixtures) {
  // The direct case, without the whole run: V is an origin with data, its
  // precache replaced by a hard link to W's image with V's mtime and size.
  pool_env<Fx> env(fx, 2);
  auto w = env.origin(W);
  env.commit_data(w, 0, pattern(4 * KiB, 2));
  auto v = env.origin(V);
  env.commit_data(v, 0, pattern(4 * KiB, 3));
  std::string w_bytes = env.read(env.clean(W));
  REQUIRE_OK(fx.ops.remove(env.h, env.precache(V)));
  REQUIRE_OK(fx.ops.link(env.h, env.clean(W), env.precache(V)));
  auto clean = env.st(env.clean(V));
  REQUIRE_OK(fx.ops.set_mtime(env.h, env.precache(V), clean.mtime));
  REQUIRE_OK(v.start());
  CHECK(env.st(env.dirty(V)).nlink == 1);
  env.vm_write(V, 0, pattern(4 * KiB, 5));
  REQUIRE_OK(v.stop());
  CHECK(env.read(env.clean(W)) == w_bytes);
  CHECK(env.read(env.clean(V), 0, 4 * KiB) == pattern(4 * KiB, 5));
}

FILE_REFLINK_FIXTURE_TEST_ON("hostile: a dirty image shared with another file is refused at start", hostile_fixtures) {
  pool_env<Fx> env(fx, 2);
  auto w = env.origin(W);
  env.commit_data(w, 0, pattern(4 * KiB, 2));
  auto v = env.origin(V);
  REQUIRE_OK(fx.ops.link(env.h, env.clean(W), env.dirty(V)));
  auto r = v.start();
  REQUIRE_ERR(r, errc::unexpected_file_type);
  MESSAGE(r.error().message());
  CHECK(r.error().message().find("start volume 'vm/v'") == 0);
  // Stop takes such an image back without writing into it.
  REQUIRE_OK(v.stop());
  CHECK(env.read(env.clean(W)) == env.read(env.clean(V)));
  // Snapshots disabled: while a snapshot runs, its clean name links the
  // committed image; the start copies that image instead of renaming it, so
  // the running image has one name and the snapshot's link keeps its bytes.
  volume_config nosnap = volume_config::origin("vm/n", MiB);
  nosnap.revisions_to_keep = -1;
  auto n = env.add(nosnap);
  REQUIRE_OK(n.create());
  env.commit_data(n, 0, pattern(4 * KiB, 6));
  auto s = env.add(volume_config::snapshot("vm/s", "vm/n"));
  REQUIRE_OK(s.start());
  REQUIRE_OK(n.start());
  CHECK(env.st(env.dirty("vm/n")).nlink == 1);
  CHECK(!env.has(env.clean("vm/n")));
  env.vm_write("vm/n", 0, pattern(4 * KiB, 7));
  CHECK(env.read(env.clean("vm/s"), 0, 4 * KiB) == pattern(4 * KiB, 6));
  REQUIRE_OK(n.stop());
  CHECK(env.read(env.clean("vm/n"), 0, 4 * KiB) == pattern(4 * KiB, 7));
  REQUIRE_OK(n.start());
  REQUIRE_OK(n.stop());
  REQUIRE_OK(s.stop());
}

FILE_REFLINK_FIXTURE_TEST_ON("hostile: files the library did not write are foreign, listed, never deleted", hostile_fixtures) {
  pool_env<Fx> env(fx, 2);
  auto v = env.origin("foo");
  env.commit_data(v, 0, pattern(4 * KiB, 1));
  const std::vector<std::string> strays = {
      "foo.img.bar",  "foo.img.3@2024-13-45T00:00:00Z", "foo.img.01@2024-01-01T00:00:00Z", "foo.img.3@2023-02-29T00:00:00Z",
      "foo.img.3@2024-01-01T00:00:00Z.bad label.pin",  "foo.img.bar~x", "foo-dirty.imgx", "README", "foo.img.",
      "foo.img.1@2024-01-01T00:00:00Z.pin"};
  std::map<std::string, std::string> bytes;
  std::uint32_t seed = 10;
  for (auto& s : strays) {
    bytes[s] = pattern(100, seed++);
    make_file(fx, env.h, path(s), 100, {{0, bytes[s]}});
  }
  figures f;
  auto check_all = [&](const char* after) {
    for (auto& entry : bytes) {
      // Not a structured binding: CHECK_MESSAGE captures it in a lambda,
      // which C++17 does not allow for one.
      const std::string& name = entry.first;
      ++f.inputs;
      bool ok = env.has(path(name)) && env.read(path(name)) == entry.second;
      if (!ok) ++f.violations;
      CHECK_MESSAGE(ok, name << " was changed or deleted by " << after);
    }
  };
  auto scan = REQUIRE_VALUE(env.pool.scan());
  std::set<std::string> foreign;
  for (auto& ff : scan.foreign) foreign.insert(ff.relative.generic_string());
  for (auto& s : strays) {
    bool listed = foreign.count(s) == 1;
    if (!listed) ++f.violations;
    CHECK_MESSAGE(listed, s << " is not listed as foreign");
  }
  REQUIRE_OK(v.start());
  REQUIRE_OK(v.stop());
  check_all("start and stop");
  auto rep = REQUIRE_VALUE(env.pool.recover());
  CHECK(rep.foreign.size() == strays.size());
  check_all("recover");
  REQUIRE_OK(v.remove());
  check_all("remove");
  auto again = env.origin("foo");
  check_all("create");
  REQUIRE_OK(again.remove());
  check_all("remove");
  ledger::get().add("hostile input", std::string("foreign files (") + Fx::name + ")", f);
}

FILE_REFLINK_FIXTURE_TEST_ON("hostile: a planted revision 2^64-1 stops commits cleanly", hostile_fixtures) {
  pool_env<Fx> env(fx, 2);
  auto v = env.origin(V);
  env.commit_data(v, 0, pattern(4 * KiB, 1));
  make_file(fx, env.h, "vm/v.img.18446744073709551615@2024-01-01T00:00:00Z", MiB);
  REQUIRE(REQUIRE_VALUE(v.revisions()).count(UINT64_MAX) == 1);
  REQUIRE_OK(v.start());
  auto before = env.snapshot();
  auto r = v.stop();
  REQUIRE_ERR(r, errc::out_of_range);
  CHECK(env.snapshot() == before);
  REQUIRE_OK(v.drop_revision(UINT64_MAX));
  REQUIRE_OK(v.stop());
}
