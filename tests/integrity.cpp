// SPDX-License-Identifier: BSL-1.0
// Integrity: no revision changes, vanishes or is confused. Each test guards
// one way it could happen: an inode shared between a revision and an image a
// VM writes, a planted hard link, a pin paired with another revision of the
// same number, a revert that prunes, snapshots disabled keeping what the
// Qubes driver drops, stamps of any year, Qubes VM names, a lock-order
// deadlock, a call that could terminate the process, and remove of a
// running volume or of a source.
#include "pool_support.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <thread>

using namespace file_reflink;
using namespace file_reflink::test;

namespace {

//! The numbers, stamps and labels of `revisions()`, in order: "1@STAMP[a,b]".
template <class Vol>
std::vector<std::string> listing(Vol& v) {
  std::vector<std::string> out;
  const auto revs = REQUIRE_VALUE(v.revisions());
  for (auto& [n, r] : revs) {
    std::string s = std::to_string(n) + "@" + r.timestamp;
    if (!r.labels.empty()) {
      s += "[";
      for (std::size_t i = 0; i < r.labels.size(); ++i) s += (i ? "," : "") + r.labels[i];
      s += "]";
    }
    out.push_back(s);
  }
  return out;
}

//! Just the numbers.
template <class Vol>
std::vector<std::uint64_t> numbers(Vol& v) {
  std::vector<std::uint64_t> out;
  const auto revs = REQUIRE_VALUE(v.revisions());
  for (auto& [n, r] : revs) out.push_back(n);
  return out;
}

//! The file of revision `n` (the one revision with that number).
template <class Env, class Vol>
path revision_file(Env& env, Vol& v, std::uint64_t n) {
  (void)env;
  return path(v.vid() + ".img." + std::to_string(n) + "@" + at(REQUIRE_VALUE(v.revisions()), n).timestamp);
}

//! Another process's Pool on the same directory: a restart, with its own
//! pool default for revisions_to_keep.
template <class Fx>
typename pool_env<Fx>::pool_type reopen(pool_env<Fx>& env, int revisions_to_keep) {
  return typename pool_env<Fx>::pool_type(
      pool_env<Fx>::config_for(env.fx, env.dir, revisions_to_keep, Fx::reflinks, env.log_mu, env.log), env.fx.ops);
}

}  // namespace

// ---- 1. a revision never shares an inode that a running image gets ------------

FILE_REFLINK_FIXTURE_TEST("integrity: an origin-snapshot's revision keeps its bytes when its source with snapshots disabled runs") {
  pool_env<Fx> env(fx, 1);
  volume_config tc = volume_config::origin("vm-templates/t/root", MiB);
  tc.revisions_to_keep = -1;
  auto t = env.add(tc);
  REQUIRE_OK(t.create());
  env.commit_data(t, 0, std::string(4 * KiB, 'A'));
  auto d = env.add(volume_config::origin_snapshot("appvms/d/root", "vm-templates/t/root"));
  env.commit_data(d, 0, std::string(4 * KiB, 'C'));  // D's revision 1: what it started from, T's AAAA
  REQUIRE(numbers(d) == std::vector<std::uint64_t>{1});
  const path rev = revision_file(env, d, 1);
  CHECK(env.read(rev, 0, 4 * KiB) == std::string(4 * KiB, 'A'));
  CHECK(env.st(rev).ino != env.st(env.clean("vm-templates/t/root")).ino);
  // T's start makes its committed image the running one; its VM writes.
  REQUIRE_OK(t.start());
  env.vm_write("vm-templates/t/root", 0, std::string(4 * KiB, 'B'));
  CHECK(env.read(rev, 0, 4 * KiB) == std::string(4 * KiB, 'A'));
  REQUIRE_OK(t.stop());
  CHECK(env.read(rev, 0, 4 * KiB) == std::string(4 * KiB, 'A'));
  REQUIRE_OK(d.revert(1));
  CHECK(env.read(env.clean("appvms/d/root"), 0, 4 * KiB) == std::string(4 * KiB, 'A'));
}

FILE_REFLINK_FIXTURE_TEST("integrity: a commit links its old image into the revision only when no other name can write it") {
  pool_env<Fx> env(fx, 2);
  const std::string V = "appvms/work/private";
  auto v = env.origin(V);
  env.commit_data(v, 0, pattern(4 * KiB, 1));
  // Nothing else names the old image: the revision is that inode (a link, no data moved).
  auto old = env.st(env.clean(V));
  env.commit_data(v, 0, pattern(4 * KiB, 2));
  CHECK(env.st(revision_file(env, v, 2)).ino == old.ino);
  // A running snapshot's clean name links it too: still a link, and that
  // name keeps its bytes.
  auto s = env.add(volume_config::snapshot("appvms/disp/private", V));
  REQUIRE_OK(s.start());
  old = env.st(env.clean(V));
  REQUIRE(env.st(env.clean("appvms/disp/private")).ino == old.ino);
  env.commit_data(v, 0, pattern(4 * KiB, 3));
  CHECK(env.st(revision_file(env, v, 3)).ino == old.ino);
  CHECK(env.read(env.clean("appvms/disp/private"), 0, 4 * KiB) == pattern(4 * KiB, 2));
  REQUIRE_OK(s.stop());
  // A name nobody registered (here: a hard link beside the pool) makes it a
  // clone, and writing through that name leaves the revision as it was.
  old = env.st(env.clean(V));
  REQUIRE_OK(fx.ops.link(env.h, env.clean(V), path("elsewhere.img")));
  env.commit_data(v, 0, pattern(4 * KiB, 4));
  const path rev = revision_file(env, v, 4);
  CHECK(env.st(rev).ino != old.ino);
  write_bytes(fx, env.h, path("elsewhere.img"), 0, std::string(4 * KiB, 'X'));
  CHECK(env.read(rev, 0, 4 * KiB) == pattern(4 * KiB, 3));
  CHECK(temporaries(env.files()).empty());
}

// ---- 2. a planted hard link is never written through ---------------------------

FILE_REFLINK_FIXTURE_TEST("integrity: snapshots disabled never renames, grows or punches an image that another name shares") {
  pool_env<Fx> env(fx, 1);
  const std::string V = "appvms/work/private";
  volume_config c = volume_config::origin(V, MiB);
  c.revisions_to_keep = -1;
  auto v = env.add(c);
  REQUIRE_OK(v.create());
  env.commit_data(v, 0, pattern(8 * KiB, 1));
  // V.img replaced by a hard link to a file outside the pool.
  const std::string outside = pattern(8 * KiB, 9);
  make_file(fx, fx.dir(), "outside.img", MiB, {{0, outside}});
  REQUIRE_OK(fx.ops.remove(env.h, env.clean(V)));
  REQUIRE_OK(fx.ops.link(fx.dir(), "outside.img", path("pool") / env.clean(V)));
  auto untouched = [&] {
    CHECK(read_all(fx, fx.dir(), "outside.img").substr(0, 8 * KiB) == outside);
    CHECK(stat_of(fx, fx.dir(), "outside.img").size == MiB);
  };
  // Stopped: resize, discard and sparsify work on a copy.
  REQUIRE_OK(v.resize(2 * MiB));
  untouched();
  REQUIRE_OK(v.discard(0, 4 * KiB));
  untouched();
  (void)REQUIRE_VALUE(v.sparsify());
  untouched();
  // Relink, then start: the VM gets a copy of its own.
  REQUIRE_OK(fx.ops.remove(env.h, env.clean(V)));
  REQUIRE_OK(fx.ops.link(fx.dir(), "outside.img", path("pool") / env.clean(V)));
  REQUIRE_OK(v.start());
  CHECK(env.st(env.dirty(V)).nlink == 1);
  CHECK(env.read(env.dirty(V), 0, 8 * KiB) == outside);
  REQUIRE_OK(v.resize(4 * MiB));
  REQUIRE_OK(v.discard(0, 4 * KiB));
  env.vm_write(V, 4 * KiB, std::string(4 * KiB, 'V'));
  untouched();
  REQUIRE_OK(v.stop());
  untouched();
  CHECK(env.st(env.clean(V)).size == 4 * MiB);
  CHECK(temporaries(env.files()).empty());
}

// ---- 3. a pin belongs to its revision by number and stamp ---------------------

FILE_REFLINK_FIXTURE_TEST("integrity: a pin reaches its own bytes when the Qubes driver reused its number") {
  pool_env<Fx> env(fx, 2);
  const std::string V = "appvms/work/private";
  auto v = env.origin(V);
  env.commit_data(v, 0, pattern(4 * KiB, 1));
  env.commit_data(v, 0, pattern(4 * KiB, 2));
  REQUIRE_OK(v.keep_revision(2, "gold"));  // revision 2 holds pattern 1
  const std::string gold = env.read(revision_file(env, v, 2));
  // The Qubes driver's remove: every revision file, the clean image, the
  // precache; its glob never matches a pin, which stays.
  for (const auto& n : env.files())
    if (n.rfind(V, 0) == 0 && n.find(".pin") == std::string::npos) REQUIRE_OK(fx.ops.remove(env.h, path(n)));
  // Its create and commits: numbers from 1 again, other stamps, other bytes.
  make_file(fx, env.h, env.clean(V), MiB, {{0, pattern(4 * KiB, 7)}});
  make_file(fx, env.h, path(V + ".img.1@2030-01-01T00:00:00Z"), MiB, {{0, pattern(4 * KiB, 5)}});
  make_file(fx, env.h, path(V + ".img.2@2030-01-02T00:00:00Z"), MiB, {{0, pattern(4 * KiB, 6)}});
  auto revs = REQUIRE_VALUE(v.revisions());
  CHECK(revs.count(2) == 2);
  const std::string pinned = "2@" + revs.lower_bound(2)->second.timestamp + "[gold]";
  CHECK(listing(v) == std::vector<std::string>{"1@2030-01-01T00:00:00Z", pinned, "2@2030-01-02T00:00:00Z"});
  // The number names the revision file, the label the pinned bytes.
  REQUIRE_OK(v.revert("gold"));
  CHECK(env.read(env.clean(V)) == gold);
  REQUIRE_OK(v.revert(2));
  CHECK(env.read(env.clean(V), 0, 4 * KiB) == pattern(4 * KiB, 6));
  // New numbers continue after every revision file and pin: 3, then 4.
  CHECK(numbers(v) == std::vector<std::uint64_t>{1, 2, 3, 4});
  // Dropping by label takes the pinned revision only.
  REQUIRE_OK(v.drop_revision("gold"));
  CHECK(numbers(v) == std::vector<std::uint64_t>{1, 3, 4});
}

FILE_REFLINK_FIXTURE_TEST("integrity: a number that names two pinned revisions is ambiguous, and nothing changes") {
  pool_env<Fx> env(fx, 2);
  const std::string V = "appvms/work/private";
  auto v = env.origin(V);
  make_file(fx, env.h, path(V + ".img.1@2020-01-01T00:00:00Z.a.pin"), MiB, {{0, pattern(4 * KiB, 1)}});
  make_file(fx, env.h, path(V + ".img.1@2021-01-01T00:00:00Z.b.pin"), MiB, {{0, pattern(4 * KiB, 2)}});
  const auto before = env.snapshot();
  auto r = v.revert(1);
  REQUIRE_ERR(r, errc::revision_ambiguous);
  CHECK(r.error().message().find("[a]") != std::string::npos);
  CHECK(r.error().message().find("[b]") != std::string::npos);
  CHECK_ERR(v.drop_revision(1), errc::revision_ambiguous);
  CHECK_ERR(v.keep_revision(1, "c"), errc::revision_ambiguous);
  CHECK(env.snapshot() == before);
  REQUIRE_OK(v.revert("b"));
  CHECK(env.read(env.clean(V), 0, 4 * KiB) == pattern(4 * KiB, 2));
}

// ---- 4. a revert never removes a revision ----------------------------------------

FILE_REFLINK_FIXTURE_TEST("integrity: revert keeps every revision, with more on disk than revisions_to_keep") {
  pool_env<Fx> env(fx, 3);
  const std::string V = "appvms/work/private";
  auto v = env.origin(V);
  for (std::uint32_t i = 1; i <= 5; ++i) env.commit_data(v, 0, pattern(4 * KiB, i));
  REQUIRE(numbers(v) == std::vector<std::uint64_t>{3, 4, 5});
  const std::string three = env.read(revision_file(env, v, 3));
  // Retention lowered to 1, as a restart with another setting does.
  auto pool = reopen(env, 1);
  auto w = REQUIRE_VALUE(pool.init_volume(volume_config::origin(V, MiB)));
  REQUIRE_OK(w.revert(3));
  CHECK(env.read(env.clean(V)) == three);
  CHECK(numbers(w) == std::vector<std::uint64_t>{4, 5, 6});
  // The next commit prunes, as a commit does.
  env.commit_data(w, 0, pattern(4 * KiB, 9));
  CHECK(numbers(w) == std::vector<std::uint64_t>{7});
}

FILE_REFLINK_FIXTURE_TEST("integrity: reverting to a pinned revision prunes nothing") {
  pool_env<Fx> env(fx, 1);
  const std::string V = "appvms/work/private";
  auto v = env.origin(V);
  env.commit_data(v, 0, pattern(4 * KiB, 1));
  REQUIRE_OK(v.keep_revision(1, "base"));
  env.commit_data(v, 0, pattern(4 * KiB, 2));
  REQUIRE(numbers(v) == std::vector<std::uint64_t>{1, 2});
  REQUIRE_OK(v.revert("base"));
  CHECK(numbers(v) == std::vector<std::uint64_t>{1, 2, 3});
  CHECK(listing(v)[0].find("[base]") != std::string::npos);
  // revisions_to_keep 0: the current image still becomes a revision.
  volume_config c = volume_config::origin("vm/zero", MiB);
  c.revisions_to_keep = 0;
  auto z = env.add(c);
  REQUIRE_OK(z.create());
  make_file(fx, env.h, path("vm/zero.img.1@2020-01-01T00:00:00Z"), MiB, {{0, pattern(4 * KiB, 3)}});
  REQUIRE_OK(z.revert(1));
  CHECK(numbers(z) == std::vector<std::uint64_t>{2});
  CHECK(env.read(env.clean("vm/zero"), 0, 4 * KiB) == pattern(4 * KiB, 3));
}

// ---- 5. snapshots disabled drops what the Qubes driver drops -------------------

FILE_REFLINK_FIXTURE_TEST("integrity: a start with snapshots disabled removes the precache and every unpinned revision") {
  pool_env<Fx> env(fx, 3);
  const std::string V = "appvms/work/private";
  auto v = env.origin(V);
  for (std::uint32_t i = 1; i <= 3; ++i) env.commit_data(v, 0, pattern(4 * KiB, i));
  REQUIRE(numbers(v) == std::vector<std::uint64_t>{1, 2, 3});
  REQUIRE_OK(v.keep_revision(2, "keep"));
  REQUIRE(env.has(env.precache(V)));
  const std::string pinned = env.read(revision_file(env, v, 2));
  auto pool = reopen(env, -1);
  auto w = REQUIRE_VALUE(pool.init_volume(volume_config::origin(V, MiB)));
  REQUIRE(w.snapshots_disabled());
  REQUIRE_OK(w.start());
  const std::string stamp2 = at(REQUIRE_VALUE(w.revisions()), 2).timestamp;
  CHECK(env.files() == std::set<std::string>{"appvms", "appvms/work", V + "-dirty.img", V + ".img.2@" + stamp2,
                                             V + ".img.2@" + stamp2 + ".keep.pin"});
  CHECK(env.read(revision_file(env, w, 2)) == pinned);
  REQUIRE_OK(w.stop());
  CHECK(env.read(env.clean(V), 0, 4 * KiB) == pattern(4 * KiB, 3));
}

// ---- 6. stamps of any year ---------------------------------------------------------

FILE_REFLINK_FIXTURE_TEST("integrity: revisions of images with mtimes before 1970 and after 2262 are listed and numbered on") {
  pool_env<Fx> env(fx, 5);
  const std::string V = "appvms/work/private";
  auto v = env.origin(V);
  // Each commit supersedes a clean image whose mtime was set first; the
  // filesystem may clamp it (XFS and ext4 keep 1901-2446 or so), so the
  // expected stamp comes from the mtime it kept.
  const std::vector<file_time> times = {file_time{-300000000, 5}, file_time{-1, 999999999},
                                        file_time{10413792000, 0}, file_time{253402300799, 0}};
  std::vector<std::string> expected;
  for (std::size_t i = 0; i < times.size(); ++i) {
    REQUIRE_OK(fx.ops.set_mtime(env.h, env.clean(V), times[i]));
    const file_time kept = env.st(env.clean(V)).mtime;
    expected.push_back(std::to_string(i + 1) + "@" + layout::format_timestamp(kept.sec));
    env.commit_data(v, 0, pattern(4 * KiB, static_cast<std::uint32_t>(i + 1)));
  }
  CHECK(listing(v) == expected);
  if (!Fx::real) {
    CHECK(expected[0] == "1@1960-06-29T18:40:00Z");
    CHECK(expected[1] == "2@1969-12-31T23:59:59Z");
    CHECK(expected[2] == "3@2300-01-01T00:00:00Z");
    CHECK(expected[3] == "4@9999-12-31T23:59:59Z");
  }
  const auto revs = REQUIRE_VALUE(v.revisions());
  for (auto& [n, r] : revs) CHECK(layout::format_timestamp(r.time) == r.timestamp);
  // Every revision is pruned in its turn and none is numbered twice.
  env.commit_data(v, 0, pattern(4 * KiB, 8));
  env.commit_data(v, 0, pattern(4 * KiB, 9));
  CHECK(numbers(v) == std::vector<std::uint64_t>{2, 3, 4, 5, 6});
}

TEST_CASE("integrity: stamps round-trip for every year 0000-9999, clamp outside, and reject impossible dates") {
  using namespace file_reflink::layout;
  std::uint64_t x = 88172645463325252ull;
  for (int i = 0; i < 200000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const std::int64_t t = min_stamp_seconds + static_cast<std::int64_t>(x % static_cast<std::uint64_t>(
                                                                            max_stamp_seconds - min_stamp_seconds + 1));
    const std::string s = format_timestamp(t);
    REQUIRE(s.size() == 20);
    REQUIRE(parse_timestamp(s) == t);
  }
  CHECK(format_timestamp(min_stamp_seconds) == "0000-01-01T00:00:00Z");
  CHECK(format_timestamp(max_stamp_seconds) == "9999-12-31T23:59:59Z");
  CHECK(format_timestamp(min_stamp_seconds - 1) == "0000-01-01T00:00:00Z");
  CHECK(format_timestamp(INT64_MIN) == "0000-01-01T00:00:00Z");
  CHECK(format_timestamp(INT64_MAX) == "9999-12-31T23:59:59Z");
  CHECK(!stamp_in_range(max_stamp_seconds + 1));
  CHECK(format_timestamp(-1) == "1969-12-31T23:59:59Z");
  CHECK(format_timestamp(951782400) == "2000-02-29T00:00:00Z");
  for (const char* bad : {"2024-02-30T00:00:00Z", "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z",
                          "2024-04-31T00:00:00Z", "2024-01-01T00:00:60Z", "2024-00-10T00:00:00Z",
                          "2024-13-01T00:00:00Z", "2024-01-01T24:00:00Z", "2024-01-00T00:00:00Z"})
    CHECK_MESSAGE(!parse_timestamp(bad), bad);
  CHECK(parse_timestamp("2000-02-29T00:00:00Z") == 951782400);
  CHECK(parse_timestamp("0000-02-29T00:00:00Z"));  // year 0 is a leap year (proleptic Gregorian)
}

// ---- 7. Qubes VM names ------------------------------------------------------------------

FILE_REFLINK_FIXTURE_TEST("integrity: VM directories with names the Qubes driver accepts work and are scanned as volumes") {
  pool_env<Fx> env(fx, 1);
  const std::vector<std::string> vids = {"appvms/sys-import/private", "appvms/work-dirty/private",
                                         "appvms/x-precache/private", "appvms/backup.img/private",
                                         "appvms/a.img.b/private", "vm-templates/t-dirty/root"};
  std::uint32_t seed = 1;
  for (const auto& vid : vids) {
    auto v = env.origin(vid);
    env.commit_data(v, 0, pattern(4 * KiB, seed));
    env.commit_data(v, 0, pattern(4 * KiB, seed + 100));
    CHECK(env.read(env.clean(vid), 0, 4 * KiB) == pattern(4 * KiB, seed + 100));
    CHECK(numbers(v) == std::vector<std::uint64_t>{2});
    ++seed;
  }
  auto report = REQUIRE_VALUE(env.pool.scan());
  CHECK(report.foreign.empty());
  std::set<std::string> found;
  for (auto& s : report.volumes)
    if (s.clean) found.insert(s.vid);
  CHECK(found == std::set<std::string>(vids.begin(), vids.end()));
  auto snap = env.add(volume_config::snapshot("appvms/sys-import/root", "vm-templates/t-dirty/root"));
  REQUIRE_OK(snap.start());
  CHECK(env.read(env.dirty("appvms/sys-import/root"), 0, 4 * KiB) == pattern(4 * KiB, 106));
  REQUIRE_OK(snap.stop());
  REQUIRE_OK(snap.remove());
  for (const auto& vid : vids) REQUIRE_OK(REQUIRE_VALUE(env.pool.get_volume(vid)).remove());
  CHECK(env.files() == std::set<std::string>{"appvms", "vm-templates"});
}

// ---- 8. one lock order: destroy and remove -----------------------------------------

FILE_REFLINK_FIXTURE_TEST("integrity: destroy waits for a slow remove and neither deadlocks") {
  auto entered = std::make_shared<std::promise<void>>();
  auto slow = std::make_shared<std::atomic<bool>>(true);
  pool_env<Fx> env(fx, 1);
  auto v = env.origin("vm/a");
  // The log callback runs inside the operation, with its lock held.
  pool_config cfg = pool_env<Fx>::config_for(fx, env.dir, 1, Fx::reflinks, env.log_mu, env.log);
  auto first = std::make_shared<std::atomic<bool>>(true);
  cfg.log = [entered, slow, first](log_level, const std::string& m) {
    if (m.find("Removed file") == std::string::npos || !slow->load()) return;
    if (first->exchange(false)) entered->set_value();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  };
  typename pool_env<Fx>::pool_type pool(cfg, fx.ops);
  auto w = REQUIRE_VALUE(pool.init_volume(volume_config::origin("vm/a", MiB)));
  auto removing = std::async(std::launch::async, [&] { return w.remove(); });
  entered->get_future().wait();
  auto destroying = std::async(std::launch::async, [&] { return pool.destroy(); });
  // A deadlock would leave both threads blocked for good: say so and end
  // the process, since neither future could ever be joined.
  if (removing.wait_for(std::chrono::seconds(30)) != std::future_status::ready ||
      destroying.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    std::fprintf(stderr, "integrity: destroy and remove deadlocked (neither returned within 30 s)\n");
    std::fflush(stderr);
    std::_Exit(1);
  }
  slow->store(false);
  REQUIRE_OK(removing.get());
  // Destroy ran after the remove: nothing was left, so it removed the pool.
  REQUIRE_OK(destroying.get());
  CHECK(!exists(fx, fx.dir(), env.dir.filename()));
  (void)v;
}

// ---- 9. no public call terminates the process ----------------------------------------

FILE_REFLINK_FIXTURE_TEST("integrity: revision 0 is a number, never a null pointer") {
  pool_env<Fx> env(fx, 1);
  auto v = env.origin("vm/a");
  env.commit_data(v, 0, pattern(4 * KiB, 1));
  auto r = v.revert(0);
  REQUIRE_ERR(r, errc::revision_not_found);
  CHECK(r.error().message().find("the volume has revision 1") != std::string::npos);
  CHECK_ERR(v.drop_revision(0), errc::revision_not_found);
  CHECK_ERR(v.keep_revision(0, "x"), errc::revision_not_found);
  CHECK_ERR(v.revert(std::string("no-such-label")), errc::revision_not_found);
  CHECK_ERR(v.revert(""), errc::invalid_revision_label);
}

// ---- 11. remove refuses a running volume and a source ---------------------------------

FILE_REFLINK_FIXTURE_TEST("integrity: remove refuses a running volume of every kind and a source, unless forced") {
  pool_env<Fx> env(fx, 1);
  auto t = env.origin("vm-templates/t/root");
  env.commit_data(t, 0, pattern(4 * KiB, 1));
  std::vector<typename pool_env<Fx>::volume_type> running = {
      env.origin("appvms/a/private"), env.add(volume_config::volatile_volume("appvms/a/volatile", MiB)),
      env.add(volume_config::snapshot("appvms/a/root", "vm-templates/t/root")),
      env.add(volume_config::origin_snapshot("appvms/b/root", "vm-templates/t/root"))};
  for (auto& v : running) REQUIRE_OK(v.start());
  env.vm_write("appvms/a/private", 0, pattern(4 * KiB, 2));
  const auto before = env.snapshot();
  for (auto& v : running) {
    CAPTURE(v.vid());
    auto r = v.remove();
    REQUIRE_ERR(r, errc::volume_running);
    CHECK(r.error() == std::errc::device_or_resource_busy);
    CHECK(r.error().message().find("remove volume '" + v.vid() + "'") == 0);
    CHECK(r.error().message().find("force") != std::string::npos);
  }
  // The template: registered volumes start from it.
  auto r = t.remove();
  REQUIRE_ERR(r, errc::source_in_use);
  CHECK(r.error().message().find("'appvms/a/root'") != std::string::npos);
  CHECK(r.error().message().find("'appvms/b/root'") != std::string::npos);
  CHECK(env.snapshot() == before);
  REQUIRE_VALUE(env.pool.get_volume("vm-templates/t/root"));
  // Forced, each goes with all its files.
  for (auto& v : running) REQUIRE_OK(v.remove(true));
  REQUIRE_OK(t.remove(true));
  CHECK(env.files() == std::set<std::string>{"appvms", "vm-templates"});
  CHECK(env.pool.list_volumes().empty());
}
