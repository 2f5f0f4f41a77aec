// SPDX-License-Identifier: BSL-1.0
// Revisions: rotation and pruning, revert, pins (keep/unkeep/drop), and the
// file names a Qubes driver sharing the pool expects.
#include "pool_support.hpp"

#include <regex>

using namespace file_reflink;
using namespace file_reflink::test;

namespace {
const std::string V = "appvms/work/private";

template <class Env>
std::string revision_file(Env& env, std::uint64_t n) {
  auto revs = env.pool.get_volume(V).value().revisions().value();
  return V + ".img." + std::to_string(n) + "@" + at(revs, n).timestamp;
}
}  // namespace

FILE_REFLINK_FIXTURE_TEST("revisions: rotate and prune exactly, oldest first") {
  pool_env<Fx> env(fx, 2);
  auto v = env.origin(V);
  std::vector<std::string> data;
  for (int i = 0; i < 5; ++i) {
    data.push_back(pattern(4 * KiB, 100 + i));
    env.commit_data(v, 0, data.back());
  }
  // Commits: 1 <- zeros, 2 <- d0, 3 <- d1, 4 <- d2, 5 <- d3; keep 2.
  auto revs = REQUIRE_VALUE(v.revisions());
  std::vector<std::uint64_t> numbers;
  for (auto& [n, r] : revs) numbers.push_back(n);
  CHECK(numbers == std::vector<std::uint64_t>{4, 5});
  CHECK(env.read(path(revision_file(env, 4)), 0, 4 * KiB) == data[2]);
  CHECK(env.read(path(revision_file(env, 5)), 0, 4 * KiB) == data[3]);
  CHECK(env.read(env.clean(V), 0, 4 * KiB) == data[4]);
  // The names are those a Qubes driver globs for.
  std::regex qubes_revision(R"(appvms/work/private\.img\.[0-9]+@[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)");
  std::size_t matching = 0;
  for (const auto& n : env.files()) matching += std::regex_match(n, qubes_revision);
  CHECK(matching == 2);
}

FILE_REFLINK_FIXTURE_TEST("revisions: revisions_to_keep 0 keeps none, the volume's setting beats the pool's") {
  pool_env<Fx> env(fx, 3);
  auto cfg = volume_config::origin(V, MiB);
  cfg.revisions_to_keep = 0;
  auto v = env.add(cfg);
  REQUIRE_OK(v.create());
  env.commit_data(v, 0, pattern(4 * KiB, 1));
  env.commit_data(v, 0, pattern(4 * KiB, 2));
  CHECK(REQUIRE_VALUE(v.revisions()).empty());
  CHECK(temporaries(env.files()).empty());
  auto w = env.origin("vm/other");
  CHECK(w.config().revisions_to_keep == 3);
}

FILE_REFLINK_FIXTURE_TEST("revisions: revert brings back the bytes and keeps the current image as a revision") {
  pool_env<Fx> env(fx, 3);
  auto v = env.origin(V);
  std::string a = pattern(8 * KiB, 1), b = pattern(8 * KiB, 2), c = pattern(8 * KiB, 3);
  env.commit_data(v, 0, a);  // rev 1 = zeros
  env.commit_data(v, 0, b);  // rev 2 = a
  env.commit_data(v, 0, c);  // rev 3 = b
  REQUIRE_OK(v.revert(2));
  CHECK(env.read(env.clean(V), 0, a.size()) == a);
  auto revs = REQUIRE_VALUE(v.revisions());
  CHECK(revs.count(2) == 0);  // consumed
  REQUIRE(revs.count(4) == 1);
  CHECK(env.read(path(revision_file(env, 4)), 0, c.size()) == c);
  // The precache follows the new clean image.
  CHECK(env.st(env.precache(V)).mtime == env.st(env.clean(V)).mtime);
  CHECK(env.read(env.precache(V)) == env.read(env.clean(V)));
  // Default: the newest revision.
  REQUIRE_OK(v.revert());
  CHECK(env.read(env.clean(V), 0, c.size()) == c);
  REQUIRE_OK(v.start());
  CHECK(env.read(env.dirty(V), 0, c.size()) == c);
  REQUIRE_OK(v.stop());
  CHECK(temporaries(env.files()).empty());
}

FILE_REFLINK_FIXTURE_TEST("revisions: a pinned revision survives rotation and revert, and can be dropped by label") {
  pool_env<Fx> env(fx, 1);
  auto v = env.origin(V);
  std::string good = pattern(8 * KiB, 5);
  env.commit_data(v, 0, good);
  env.commit_data(v, 0, pattern(8 * KiB, 6));  // rev 2 = good
  REQUIRE_OK(v.keep_revision(2, "known-good"));
  REQUIRE_OK(v.keep_revision(2, "known-good"));  // idempotent
  for (int i = 0; i < 3; ++i) env.commit_data(v, 0, pattern(8 * KiB, 7 + i));
  auto revs = REQUIRE_VALUE(v.revisions());
  REQUIRE(revs.count(2) == 1);
  CHECK(at(revs, 2).labels == std::vector<std::string>{"known-good"});
  CHECK(revs.size() == 2);  // the pinned one and the newest unpinned one
  // The pin is a file another process sees, named so that a Qubes glob
  // ("V.img.*@????-??-??T??:??:??Z") does not take it for a revision.
  std::string pin = revision_file(env, 2) + ".known-good.pin";
  CHECK(env.has(path(pin)));
  CHECK(env.st(path(pin)).ino == env.st(path(revision_file(env, 2))).ino);
  // Revert by label: the pinned revision stays.
  REQUIRE_OK(v.revert("known-good"));
  CHECK(env.read(env.clean(V), 0, good.size()) == good);
  CHECK(REQUIRE_VALUE(v.revisions()).count(2) == 1);
  // Another label for another revision; a label pins one revision only.
  auto newest = REQUIRE_VALUE(v.revisions()).rbegin()->first;
  CHECK_ERR(v.keep_revision(newest, "known-good"), errc::invalid_revision_label);
  REQUIRE_OK(v.keep_revision(newest, "before-upgrade"));
  // unkeep: the revision stays but rotates again.
  REQUIRE_OK(v.unkeep_revision("before-upgrade"));
  CHECK(at(REQUIRE_VALUE(v.revisions()), newest).labels.empty());
  // drop by label removes the revision and its pins.
  REQUIRE_OK(v.drop_revision("known-good"));
  CHECK(REQUIRE_VALUE(v.revisions()).count(2) == 0);
  CHECK_FALSE(env.has(path(pin)));
  CHECK_ERR(v.drop_revision("known-good"), errc::revision_not_found);
}

FILE_REFLINK_FIXTURE_TEST("revisions: drop by number, bad labels and unknown revisions") {
  pool_env<Fx> env(fx, 3);
  auto v = env.origin(V);
  env.commit_data(v, 0, pattern(4 * KiB, 1));
  env.commit_data(v, 0, pattern(4 * KiB, 2));
  auto snap = env.snapshot();
  CHECK_ERR(v.keep_revision(9, "x"), errc::revision_not_found);
  for (const char* bad : {"", "12", ".hidden", "-dash", "a/b", "a@b", "a~b", "a b"})
    CHECK_ERR(v.keep_revision(1, bad), errc::invalid_revision_label);
  CHECK_ERR(v.revert(9), errc::revision_not_found);
  CHECK_ERR(v.revert("nope"), errc::revision_not_found);
  CHECK_ERR(v.drop_revision(9), errc::revision_not_found);
  CHECK(env.snapshot() == snap);
  REQUIRE_OK(v.drop_revision(1));
  auto revs = REQUIRE_VALUE(v.revisions());
  CHECK(revs.size() == 1);
  CHECK(revs.count(2) == 1);
  // Numbers keep increasing after a drop.
  env.commit_data(v, 0, pattern(4 * KiB, 3));
  CHECK(REQUIRE_VALUE(v.revisions()).rbegin()->first == 3);
}

FILE_REFLINK_FIXTURE_TEST("revisions: revert is refused while the volume is running") {
  pool_env<Fx> env(fx);
  auto v = env.origin(V);
  env.commit_data(v, 0, pattern(4 * KiB, 1));
  REQUIRE_OK(v.start());
  auto snap = env.snapshot();
  CHECK_ERR(v.revert(), errc::volume_dirty);
  CHECK(env.snapshot() == snap);
  REQUIRE_OK(v.stop());
}

FILE_REFLINK_FIXTURE_TEST("revisions: a pool written by the Qubes driver is read as it is") {
  pool_env<Fx> env(fx, 2);
  // Lay out files the way the Qubes file-reflink driver leaves them.
  REQUIRE_OK(fx.ops.mkdir(env.h, "appvms"));
  REQUIRE_OK(fx.ops.mkdir(env.h, "appvms/work"));
  std::string cur = pattern(8 * KiB, 1), r1 = pattern(8 * KiB, 2), r2 = pattern(8 * KiB, 3);
  make_file(fx, env.h, path(V + ".img"), MiB, {{0, cur}});
  make_file(fx, env.h, path(V + ".img.3@2018-01-02T03:04:05Z"), MiB, {{0, r1}});
  make_file(fx, env.h, path(V + ".img.7@2018-01-02T04:05:06Z"), MiB, {{0, r2}});
  auto v = env.add(volume_config::origin(V, MiB));
  auto revs = REQUIRE_VALUE(v.revisions());
  REQUIRE(revs.size() == 2);
  CHECK(at(revs, 3).timestamp == "2018-01-02T03:04:05Z");
  CHECK(at(revs, 3).time == 1514862245);
  CHECK(at(revs, 7).timestamp == "2018-01-02T04:05:06Z");
  // No precache: start clones; stop commits revision 8 and prunes 3.
  REQUIRE_OK(v.start());
  CHECK(env.read(env.dirty(V), 0, cur.size()) == cur);
  REQUIRE_OK(v.stop());
  revs = REQUIRE_VALUE(v.revisions());
  std::vector<std::uint64_t> numbers;
  for (auto& [n, r] : revs) numbers.push_back(n);
  CHECK(numbers == std::vector<std::uint64_t>{7, 8});
  REQUIRE_OK(v.revert(7));
  CHECK(env.read(env.clean(V), 0, r2.size()) == r2);
}
