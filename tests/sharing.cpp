// SPDX-License-Identifier: BSL-1.0
// Pools shared by several pool objects (each one stands for a process: its
// own open of the lock file, its own registrations): per-volume locks and
// their wait policy, the catalog, adoption of a pool that something else
// made, a volume's state, and configuration changes. The same with real
// processes is tests/multiprocess.
#include "multiprocess/model.hpp"
#include "multiprocess/workload.hpp"
#include "pool_support.hpp"

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

using namespace file_reflink;
using namespace file_reflink::test;
using namespace std::chrono_literals;

namespace {

//! Holds an operation in the middle: the pool's log callback blocks at the
//! first message that mentions `needle` once armed, until released. The
//! operation then holds its volume's lock, as a long copy would.
struct gate {
  std::mutex mu;
  std::condition_variable cv;
  std::string needle;
  bool armed = false, reached = false, open = false;

  void arm(std::string n) {
    std::lock_guard<std::mutex> lk(mu);
    needle = std::move(n);
    armed = true;
    reached = open = false;
  }
  void on_log(const std::string& m) {
    std::unique_lock<std::mutex> lk(mu);
    if (!armed || m.find(needle) == std::string::npos) return;
    armed = false;
    reached = true;
    cv.notify_all();
    cv.wait(lk, [&] { return open; });
  }
  bool wait_reached() {
    std::unique_lock<std::mutex> lk(mu);
    return cv.wait_for(lk, 20s, [&] { return reached; });
  }
  void release() {
    std::lock_guard<std::mutex> lk(mu);
    open = true;
    cv.notify_all();
  }
};

//! Another pool object on `env`'s directory, as another process would open it.
template <class Fx>
typename pool_env<Fx>::pool_type other_pool(pool_env<Fx>& env, std::optional<std::chrono::milliseconds> timeout,
                                            bool catalog = false, gate* g = nullptr) {
  pool_config c = pool_env<Fx>::config_for(env.fx, env.dir, 1, Fx::reflinks, env.log_mu, env.log);
  c.lock_timeout = timeout;
  c.catalog = catalog;
  if (g) c.log = [g](log_level, const std::string& m) { g->on_log(m); };
  return typename pool_env<Fx>::pool_type(c, env.fx.ops);
}

template <class T>
double ms_since(T start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

// ---- locks ---------------------------------------------------------------------

FILE_REFLINK_FIXTURE_TEST("sharing: an operation holds its volume against other pool objects, not the others") {
  pool_env<Fx> env(fx);
  env.origin("vm/a");
  env.origin("vm/b");
  gate g;
  auto holder = other_pool(env, std::nullopt, false, &g);
  auto busy = other_pool(env, 0ms);
  auto ha = REQUIRE_VALUE(holder.init_volume(volume_config::origin("vm/a", MiB)));
  auto ba = REQUIRE_VALUE(busy.init_volume(volume_config::origin("vm/a", MiB)));
  auto bb = REQUIRE_VALUE(busy.init_volume(volume_config::origin("vm/b", MiB)));

  g.arm("vm/a");
  auto running = std::async(std::launch::async, [&] { return ha.start(); });
  REQUIRE(g.wait_reached());
  // vm/a is held: changes and queries of it are refused at once, by name.
  for (auto r : {ba.start(), ba.stop(), ba.resize(2 * MiB)}) {
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::volume_busy);
    CHECK(r.error().message().find("'vm/a'") != std::string::npos);
  }
  CHECK_ERR(ba.revisions(), errc::volume_busy);
  CHECK_ERR(ba.size(), errc::volume_busy);
  CHECK_ERR(ba.is_running(), errc::volume_busy);
  // vm/b is not: its start, stop and queries go ahead, quickly.
  for (int i = 0; i < 3; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    REQUIRE_OK(bb.start());
    REQUIRE_OK(bb.stop());
    (void)REQUIRE_VALUE(bb.revisions());
    (void)REQUIRE_VALUE(bb.state());
    MESSAGE("start+stop+revisions+state of vm/b while vm/a is held: " << ms_since(t0) << " ms");
  }
  // The pool-level operations that never wait skip it.
  auto rep = REQUIRE_VALUE(busy.recover());
  CHECK(rep.busy == std::vector<std::string>{"vm/a"});
  g.release();
  REQUIRE_OK(running.get());
  // Released: the other object gets it now.
  CHECK(REQUIRE_VALUE(ba.state()) == volume_status::dirty);
  REQUIRE_OK(ba.stop());
  CHECK(REQUIRE_VALUE(ha.state()) == volume_status::stopped);
}

FILE_REFLINK_FIXTURE_TEST("sharing: the wait policy waits forever, up to a duration, or not at all") {
  pool_env<Fx> env(fx);
  env.origin("vm/a");
  gate g;
  auto holder = other_pool(env, std::nullopt, false, &g);
  auto ha = REQUIRE_VALUE(holder.init_volume(volume_config::origin("vm/a", MiB)));
  auto bounded = other_pool(env, 300ms);
  auto patient = other_pool(env, std::nullopt);
  auto va = REQUIRE_VALUE(bounded.init_volume(volume_config::origin("vm/a", MiB)));
  auto pa = REQUIRE_VALUE(patient.init_volume(volume_config::origin("vm/a", MiB)));

  g.arm("vm/a");
  auto running = std::async(std::launch::async, [&] { return ha.start(); });
  REQUIRE(g.wait_reached());
  auto t0 = std::chrono::steady_clock::now();
  auto r = va.stop();
  const double waited = ms_since(t0);
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::volume_busy);
  CHECK(r.error().message().find("'vm/a'") != std::string::npos);
  CHECK(r.error().message().find("waited") != std::string::npos);
  CHECK(waited >= 290);
  MESSAGE("a 300 ms policy gave up after " << waited << " ms");
  // The patient one waits until the holder is done, then works.
  auto waiting = std::async(std::launch::async, [&] { return pa.stop(); });
  CHECK(waiting.wait_for(200ms) == std::future_status::timeout);
  g.release();
  REQUIRE_OK(running.get());
  REQUIRE_OK(waiting.get());
  CHECK(REQUIRE_VALUE(pa.state()) == volume_status::stopped);
  CHECK(REQUIRE_VALUE(pa.revisions()).size() == 1);
}

FILE_REFLINK_FIXTURE_TEST("sharing: an open import keeps other pool objects away from its volume until it ends") {
  pool_env<Fx> env(fx);
  env.origin("vm/a");
  auto a = other_pool(env, std::nullopt);
  auto b = other_pool(env, 0ms);
  auto va = REQUIRE_VALUE(a.init_volume(volume_config::origin("vm/a", MiB)));
  auto vb = REQUIRE_VALUE(b.init_volume(volume_config::origin("vm/a", MiB)));
  auto where = REQUIRE_VALUE(va.import_data(MiB));
  CHECK(where == env.dir / "vm/a-import.img");
  CHECK_ERR(vb.start(), errc::volume_busy);
  CHECK_ERR(vb.import_data(MiB), errc::volume_busy);
  CHECK_ERR(vb.revisions(), errc::volume_busy);
  auto rep = REQUIRE_VALUE(b.recover());  // does not take the open import for an interrupted one
  CHECK(rep.busy == std::vector<std::string>{"vm/a"});
  CHECK(rep.removed.empty());
  CHECK(env.has(env.import("vm/a")));
  // Its own pool object goes on with it meanwhile.
  CHECK(REQUIRE_VALUE(va.revisions()).empty());
  write_bytes(fx, env.h, env.import("vm/a"), 0, "imported");
  REQUIRE_OK(va.import_data_end(true));
  CHECK(REQUIRE_VALUE(vb.revisions()).size() == 1);
  REQUIRE_OK(vb.start());
  CHECK(env.read(env.dirty("vm/a"), 0, 8) == "imported");
  REQUIRE_OK(vb.stop());
  // A dropped import and a removed volume release it too.
  (void)REQUIRE_VALUE(va.import_data(MiB));
  REQUIRE_OK(va.import_data_end(false));
  (void)REQUIRE_VALUE(vb.size());
  (void)REQUIRE_VALUE(va.import_data(MiB));
  REQUIRE_OK(va.remove(true));
  CHECK_ERR(vb.start(), errc::image_not_found);
}

TEST_CASE("sharing: two pool objects, 400 random operations each, match a sequential model<memory>") {
  // The multi-process test's workload and model (tests/multiprocess), with
  // threads for processes: MemoryFsOps lives in one process, and each Pool
  // object is an open of the lock file of its own.
  using ops_type = mp::ticket_ops<MemoryFsOps>;
  memory_fixture fx;
  std::uint64_t counter = 0;
  mp::ticket_counter = &counter;
  pool_config c;
  c.name = "shared";
  c.dir_path = fx.root / "pool";
  c.catalog = true;
  c.revisions_to_keep = mp::keep;
  ops_type ops;
  static_cast<MemoryFsOps&>(ops) = fx.ops;
  Pool<ops_type> maker(c, ops);
  REQUIRE_OK(maker.setup());
  for (const char* vid : {"shared/s", "p1/own", "p2/own"}) {
    auto v = REQUIRE_VALUE(maker.init_volume(volume_config::origin(vid, MiB)));
    REQUIRE_OK(v.create());
  }
  auto h = fx.open(c.dir_path);
  struct memory_io {
    memory_fixture& fx;
    MemoryFsOps::dir_handle h;
    void write_marker(const std::string& rel, const std::string& marker) { write_bytes(fx, h, path(rel), 0, marker); }
    std::string first_bytes(const std::string& rel) {
      std::string s = read_at(fx, h, path(rel), 0, mp::marker_size);
      for (char& ch : s)
        if (ch == '\0') ch = '.';
      return s;
    }
  };
  Pool<ops_type> p1(c, ops), p2(c, ops);
  memory_io io1{fx, h}, io2{fx, h};
  std::vector<std::string> l1, l2;
  std::thread t1([&] { l1 = mp::workload(p1, 1, 20261202u, 400, io1); });
  std::thread t2([&] { l2 = mp::workload(p2, 2, 20261203u, 400, io2); });
  t1.join();
  t2.join();
  auto r = mp::replay(l1, l2);
  CHECK(r.failed == 0);
  CHECK(r.shared_ops + r.own_ops[0] + r.own_ops[1] >= 600);
  MESSAGE("shared/s: " << r.shared_ops << " operations; p1/own: " << r.own_ops[0] << ", p2/own: " << r.own_ops[1]);
  struct files_env {
    memory_fixture& fx;
    MemoryFsOps::dir_handle h;
    std::string read(const path& rel, std::uint64_t off, std::size_t n) { return read_at(fx, h, rel, off, n); }
    static path clean(const std::string& vid) { return path(vid + ".img"); }
  } env{fx, h};
  mp::check_files(env, maker, r);
  mp::ticket_counter = nullptr;
}

// ---- the catalog ------------------------------------------------------------------

FILE_REFLINK_FIXTURE_TEST("catalog: what one pool object registers, changes or removes, another sees") {
  pool_env<Fx> env(fx);
  auto a = other_pool(env, std::nullopt, true);
  auto b = other_pool(env, std::nullopt, true);
  volume_config c = volume_config::origin("appvms/work/private", MiB);
  c.revisions_to_keep = 2;
  auto va = REQUIRE_VALUE(a.init_volume(c));
  REQUIRE_OK(va.create());
  CHECK(env.read(path(std::string(layout::catalog_name))).rfind("file_reflink catalog 1\n", 0) == 0);

  // b never called init_volume: the catalog tells it.
  auto vb = REQUIRE_VALUE(b.get_volume("appvms/work/private"));
  CHECK(vb.config().revisions_to_keep == 2);
  CHECK(b.list_volumes().size() == 1);
  // Registering it again with the same configuration (a restart) is fine;
  // with another, refused.
  (void)REQUIRE_VALUE(b.init_volume(c));
  volume_config other = c;
  other.revisions_to_keep = 5;
  CHECK_ERR(b.init_volume(other), errc::volume_exists);

  // a changes its retention to 0: b's next commit follows it.
  volume_update u;
  u.revisions_to_keep = 0;
  REQUIRE_OK(va.update(u));
  CHECK(va.config().revisions_to_keep == 0);
  env.commit_data(vb, 0, "first");
  CHECK(REQUIRE_VALUE(vb.revisions()).empty());
  CHECK(vb.config().revisions_to_keep == 0);

  // A restart sees the same.
  auto c2 = other_pool(env, std::nullopt, true);
  auto vc = REQUIRE_VALUE(c2.get_volume("appvms/work/private"));
  CHECK(vc.config().revisions_to_keep == 0);

  // a removes it: b's handle refuses, and b no longer lists it.
  REQUIRE_OK(va.remove());
  CHECK_ERR(vb.start(), errc::volume_removed);
  CHECK_ERR(b.get_volume("appvms/work/private"), errc::volume_not_found);
  CHECK(b.list_volumes().empty());
  CHECK_FALSE(env.has(env.clean("appvms/work/private")));
  // Its vid is free again.
  (void)REQUIRE_VALUE(b.init_volume(volume_config::volatile_volume("appvms/work/private", MiB)));
  CHECK(REQUIRE_VALUE(a.get_volume("appvms/work/private")).kind() == volume_kind::volatile_);
}

FILE_REFLINK_FIXTURE_TEST("catalog: a damaged or newer catalog is refused, never guessed at") {
  pool_env<Fx> env(fx);
  auto a = other_pool(env, std::nullopt, true);
  REQUIRE_OK(a.init_volume(volume_config::origin("vm/a", MiB)));
  const path cat{std::string(layout::catalog_name)};
  const std::string good = env.read(cat);
  auto damage = [&](const std::string& text) {
    REQUIRE_OK(fx.ops.remove(env.h, cat));
    make_file(fx, env.h, cat, 0, {{0, text}});
  };
  for (const std::string& text : {good.substr(0, good.size() - 3), std::string("not a catalog\n"),
                                  std::string("file_reflink catalog 2\n"), good + "volume vm/b\nsize x\nend\n"}) {
    damage(text);
    auto b = other_pool(env, std::nullopt, true);
    auto r = b.get_volume("vm/a");
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::catalog_invalid);
    CHECK(r.error().message().find(std::string(layout::catalog_name)) != std::string::npos);
    CHECK_ERR(b.init_volume(volume_config::origin("vm/c", MiB)), errc::catalog_invalid);
    CHECK(env.read(cat) == text);  // never rewritten over
  }
  damage(good);
  auto b = other_pool(env, std::nullopt, true);
  (void)REQUIRE_VALUE(b.get_volume("vm/a"));
}

TEST_CASE("catalog: the format keeps every configuration and odd vid, and ignores keys it does not know") {
  catalog_contents c;
  c.revisions_to_keep = -1;
  c.setup_check = false;
  for (const char* vid : {"vm/a", "appvms/my-vm.2/private", "x", "disp1234/volatile", "a/b/c/d"}) {
    volume_config v = volume_config::snapshot(vid, "tpl/root", 7);
    v.name = std::string("n ") + vid;
    v.rw = false;
    v.ephemeral = true;
    c.volumes.emplace(vid, v);
  }
  volume_config o = volume_config::origin("tpl/root", 18446744073709551615ull);
  o.revisions_to_keep = 2147483647;
  c.volumes.emplace(o.vid, o);
  auto back = REQUIRE_VALUE(file_reflink::detail::parse_catalog(file_reflink::detail::format_catalog(c)));
  CHECK(back.revisions_to_keep == -1);
  CHECK(back.setup_check == false);
  REQUIRE(back.volumes.size() == c.volumes.size());
  for (auto& [vid, v] : c.volumes) CHECK(file_reflink::detail::same_config(back.volumes.at(vid), v));
  // Keys of a later version are ignored; a later major version is refused.
  auto later = REQUIRE_VALUE(
      file_reflink::detail::parse_catalog("file_reflink catalog 1\npool colour blue\nvolume vm/a\nsize 5\ncolour red\nend\n"));
  CHECK(later.volumes.at("vm/a").size == 5);
  CHECK_ERR(file_reflink::detail::parse_catalog("file_reflink catalog 2\n"), errc::catalog_invalid);
  CHECK_ERR(file_reflink::detail::parse_catalog("file_reflink catalog 1\nvolume ../x\nend\n"), errc::catalog_invalid);
  CHECK_ERR(file_reflink::detail::parse_catalog("file_reflink catalog 1\nvolume vm/a\nend\nvolume vm/a\nend\n"), errc::catalog_invalid);
  CHECK_ERR(file_reflink::detail::parse_catalog("file_reflink catalog 1\nvolume vm/a\nsize 5"), errc::catalog_invalid);
  CHECK_ERR(file_reflink::detail::parse_catalog(""), errc::catalog_invalid);
}

// ---- adoption ------------------------------------------------------------------------

FILE_REFLINK_FIXTURE_TEST("adopt: a pool of Qubes-layout files is registered, and its volumes work") {
  pool_env<Fx> env(fx, 1);
  // What the Qubes driver leaves: a clean image with two revisions (numbers
  // with a gap), a pin, a precache; a volume running with snapshots disabled;
  // an interrupted import alone.
  REQUIRE_OK(fx.ops.mkdir(env.h, path("vm1")));
  REQUIRE_OK(fx.ops.mkdir(env.h, path("vm2")));
  REQUIRE_OK(fx.ops.mkdir(env.h, path("vm3")));
  const std::string clean = pattern(64 * KiB, 1), r3 = pattern(64 * KiB, 3), r5 = pattern(64 * KiB, 5);
  make_file(fx, env.h, path("vm1/private.img"), 64 * KiB, {{0, clean}});
  make_file(fx, env.h, path("vm1/private.img.3@2024-01-02T03:04:05Z"), 64 * KiB, {{0, r3}});
  make_file(fx, env.h, path("vm1/private.img.5@2024-02-03T04:05:06Z"), 64 * KiB, {{0, r5}});
  make_file(fx, env.h, path("vm1/private-precache.img"), 64 * KiB, {{0, clean}});
  make_file(fx, env.h, path("vm2/root-dirty.img"), 128 * KiB, {{0, "running"}});
  make_file(fx, env.h, path("vm3/volatile-import.img"), 4 * KiB);

  auto rep = REQUIRE_VALUE(env.pool.adopt());
  REQUIRE(rep.registered.size() == 2);
  const auto& a1 = rep.registered[0];
  CHECK(a1.config.vid == "vm1/private");
  CHECK(a1.config.kind() == volume_kind::origin);
  CHECK(a1.config.size == 64 * KiB);
  CHECK(a1.config.revisions_to_keep == 2);  // the retention that kept its revisions
  CHECK(a1.revisions == 2);
  CHECK(a1.state == volume_status::stopped);
  const auto& a2 = rep.registered[1];
  CHECK(a2.config.vid == "vm2/root");
  CHECK(a2.config.revisions_to_keep == -1);
  CHECK(a2.config.size == 128 * KiB);
  CHECK(a2.state == volume_status::dirty);
  REQUIRE(rep.skipped.size() == 1);
  CHECK(rep.skipped[0].first == "vm3/volatile");
  // Twice: nothing new.
  CHECK(REQUIRE_VALUE(env.pool.adopt()).registered.empty());

  auto v1 = REQUIRE_VALUE(env.pool.get_volume("vm1/private"));
  CHECK(REQUIRE_VALUE(v1.state()) == volume_status::stopped);
  CHECK_ERR(v1.block_device(), errc::volume_not_running);
  REQUIRE_OK(v1.start());
  env.vm_write("vm1/private", 0, "new data");
  REQUIRE_OK(v1.stop());
  // The numbering continues after the highest number on disk; 2 kept.
  auto revs = REQUIRE_VALUE(v1.revisions());
  REQUIRE(revs.size() == 2);
  CHECK(revs.begin()->first == 5);
  CHECK(std::next(revs.begin())->first == 6);
  CHECK(env.read(path("vm1/private.img.6@" + std::next(revs.begin())->second.timestamp)) == clean);
  REQUIRE_OK(v1.revert(5));
  CHECK(env.read(path("vm1/private.img")) == r5);

  auto v2 = REQUIRE_VALUE(env.pool.get_volume("vm2/root"));
  CHECK(REQUIRE_VALUE(v2.is_running()));
  REQUIRE_OK(v2.stop());
  CHECK(env.read(path("vm2/root.img"), 0, 7) == "running");
  CHECK_FALSE(env.has(path("vm2/root-dirty.img")));
}

FILE_REFLINK_FIXTURE_TEST("adopt: with the catalog on, adopted volumes are written there for every process") {
  pool_env<Fx> env(fx);
  REQUIRE_OK(fx.ops.mkdir(env.h, path("vm1")));
  make_file(fx, env.h, path("vm1/private.img"), 64 * KiB, {{0, "data"}});
  auto a = other_pool(env, std::nullopt, true);
  REQUIRE_OK(a.init_volume(volume_config::volatile_volume("vm1/volatile", MiB)));
  auto rep = REQUIRE_VALUE(a.adopt());
  REQUIRE(rep.registered.size() == 1);  // the registered volatile volume is not adopted again
  auto b = other_pool(env, std::nullopt, true);
  CHECK(b.list_volumes().size() == 2);
  CHECK(REQUIRE_VALUE(b.get_volume("vm1/private")).kind() == volume_kind::origin);
  CHECK(REQUIRE_VALUE(b.adopt()).registered.empty());
}

// ---- state and configuration ----------------------------------------------------------

FILE_REFLINK_FIXTURE_TEST("state: stopped, running or dirty for every kind, block_device refuses a stopped volume") {
  pool_env<Fx> env(fx);
  auto o = env.origin("vm/o");
  auto s = env.add(volume_config::snapshot("vm/s", "vm/o"));
  auto vol = env.add(volume_config::volatile_volume("vm/v", MiB));
  auto os = env.add(volume_config::origin_snapshot("vm/os", "vm/o"));
  volume_config d = volume_config::origin("vm/d", MiB);
  d.revisions_to_keep = -1;
  auto dis = env.add(d);
  REQUIRE_OK(dis.create());
  struct row {
    typename pool_env<Fx>::volume_type* v;
    volume_status running;
  };
  for (row r : {row{&o, volume_status::dirty}, row{&s, volume_status::running}, row{&vol, volume_status::running},
                row{&os, volume_status::dirty}, row{&dis, volume_status::dirty}}) {
    auto& v = *r.v;
    CAPTURE(v.vid());
    CHECK(REQUIRE_VALUE(v.state()) == volume_status::stopped);
    CHECK_FALSE(REQUIRE_VALUE(v.is_running()));
    CHECK_ERR(v.block_device(), errc::volume_not_running);
    REQUIRE_OK(v.start());
    CHECK(REQUIRE_VALUE(v.state()) == r.running);
    CHECK(REQUIRE_VALUE(v.is_running()));
    CHECK(REQUIRE_VALUE(v.is_dirty()) == (r.running == volume_status::dirty));
    auto b = REQUIRE_VALUE(v.block_device());
    CHECK(b.device_path == env.dir / (v.vid() + "-dirty.img"));
    REQUIRE_OK(v.stop());
    CHECK(REQUIRE_VALUE(v.state()) == volume_status::stopped);
  }
}

FILE_REFLINK_FIXTURE_TEST("update: validated, refused where unsafe, and what it allows takes effect") {
  pool_env<Fx> env(fx, 2);
  auto o = env.origin("vm/o");
  auto s = env.add(volume_config::snapshot("vm/s", "vm/o"));
  auto t = env.origin("vm/t");
  env.commit_data(o, 0, "one");
  env.commit_data(o, 0, "two");
  CHECK(REQUIRE_VALUE(o.revisions()).size() == 2);

  volume_update bad;
  bad.revisions_to_keep = -2;
  CHECK_ERR(o.update(bad), errc::invalid_config);
  volume_update self;
  self.source = std::optional<std::string>("vm/s");
  CHECK_ERR(s.update(self), errc::invalid_config);  // its own source
  volume_update no_source;
  no_source.source = std::optional<std::string>();
  CHECK_ERR(s.update(no_source), errc::invalid_config);  // snap_on_start needs one
  // Kinds that would drop the committed image and revisions: refused.
  volume_update to_volatile;
  to_volatile.save_on_stop = false;
  CHECK_ERR(o.update(to_volatile), errc::invalid_config);
  volume_update to_os;
  to_os.snap_on_start = true;
  to_os.source = std::optional<std::string>("vm/t");
  CHECK_ERR(o.update(to_os), errc::invalid_config);
  CHECK(o.config().kind() == volume_kind::origin);

  // Running: rw, source, kind and snapshots-disabled changes wait for stop.
  REQUIRE_OK(s.start());
  volume_update ro;
  ro.rw = false;
  CHECK_ERR(s.update(ro), errc::volume_running);
  volume_update src_t;
  src_t.source = std::optional<std::string>("vm/t");
  CHECK_ERR(s.update(src_t), errc::volume_running);
  REQUIRE_OK(s.stop());
  REQUIRE_OK(s.update(src_t));
  REQUIRE_OK(s.update(ro));
  CHECK(s.config().source == "vm/t");
  CHECK_FALSE(s.rw());
  REQUIRE_OK(s.start());
  CHECK(REQUIRE_VALUE(s.block_device()).read_only);
  REQUIRE_OK(s.stop());

  // Retention changes while running, and the next stop prunes to it.
  REQUIRE_OK(o.start());
  volume_update keep1;
  keep1.revisions_to_keep = 1;
  REQUIRE_OK(o.update(keep1));
  volume_update disable;
  disable.revisions_to_keep = -1;
  CHECK_ERR(o.update(disable), errc::volume_running);
  REQUIRE_OK(o.stop());
  CHECK(REQUIRE_VALUE(o.revisions()).size() == 1);
  CHECK(o.config().revisions_to_keep == 1);
  // Nothing changed on disk by a refused update: the catalog is off here,
  // and the pool directory holds no catalog.
  CHECK_FALSE(env.has(path(std::string(layout::catalog_name))));
}
