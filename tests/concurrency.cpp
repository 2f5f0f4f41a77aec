// SPDX-License-Identifier: BSL-1.0
// Many threads, many volumes, random operations on one pool. Each origin
// volume has an owner thread that changes it (so the test knows what it
// must hold at the end); every thread also reads every volume, starts and
// stops snapshots of any of them, and imports from them; each also removes
// and re-creates a scratch volume of its own, and tries to destroy the pool
// (refused: volumes have files) while the others work. Run under
// ThreadSanitizer in CI.
#include "pool_support.hpp"

#include <atomic>
#include <random>
#include <thread>

using namespace file_reflink;
using namespace file_reflink::test;

FILE_REFLINK_FIXTURE_TEST("concurrency: threads x volumes x random operations keep every volume consistent") {
  constexpr int threads = 4;
  constexpr int owned = 2;
  const int rounds = Fx::real ? 12 : 150;
  pool_env<Fx> env(fx, 2);
  using volume_t = typename pool_env<Fx>::volume_type;

  std::vector<volume_t> origins;
  std::vector<std::string> committed;  // what each origin's clean image starts with
  for (int t = 0; t < threads; ++t)
    for (int i = 0; i < owned; ++i) {
      origins.push_back(env.origin("vm" + std::to_string(t) + "/private" + std::to_string(i), 256 * KiB));
      committed.push_back(std::string(4 * KiB, '\0'));
    }
  std::vector<volume_t> snapshots;
  for (int t = 0; t < threads; ++t)
    snapshots.push_back(env.add(volume_config::snapshot("disp" + std::to_string(t) + "/root", origins[t * owned].vid())));
  std::vector<volume_t> scratch;
  for (int t = 0; t < threads; ++t) scratch.push_back(env.origin("tmp" + std::to_string(t) + "/scratch", 64 * KiB));

  std::atomic<int> unexpected{0};
  std::mutex report_mu;
  std::vector<std::string> reports;
  auto bad = [&](const std::string& what, const error& e) {
    ++unexpected;
    std::lock_guard<std::mutex> lk(report_mu);
    reports.push_back(what + ": " + e.message());
  };

  auto worker = [&](int t) {
    std::mt19937 rng(1234 + t);
    auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
    for (int round = 0; round < rounds; ++round) {
      int mine = t * owned + pick(owned);
      volume_t& v = origins[mine];
      switch (pick(8)) {
        case 0:
        case 1: {  // a VM session on an owned volume
          if (auto r = v.start(); !r) { bad("start", r.error()); break; }
          std::string data = pattern(4 * KiB, static_cast<std::uint32_t>(t * 100000 + round));
          auto w = env.fx.ops.write(env.h, path(v.vid() + "-dirty.img"), 0, data.data(), data.size());
          if (!w) { bad("write", w.error()); break; }
          if (auto r = v.stop(); !r) { bad("stop", r.error()); break; }
          committed[mine] = data;
          break;
        }
        case 2: {  // revert an owned volume to its newest revision, then back
          auto revs = v.revisions();
          if (!revs) { bad("revisions", revs.error()); break; }
          if (revs.value().empty()) break;
          if (auto r = v.revert(); !r) { bad("revert", r.error()); break; }
          if (auto r = v.revert(); !r) { bad("revert back", r.error()); break; }
          break;
        }
        case 3: {  // a disposable snapshot of anybody's volume
          volume_t& s = snapshots[t];
          if (auto r = s.start(); !r) { bad("snapshot start", r.error()); break; }
          (void)s.is_outdated();
          if (auto r = s.stop(); !r) bad("snapshot stop", r.error());
          break;
        }
        case 4: {  // read anybody's state
          volume_t& o = origins[pick(static_cast<int>(origins.size()))];
          if (auto r = o.revisions(); !r) bad("revisions", r.error());
          if (auto r = o.size(); !r) bad("size", r.error());
          if (auto r = o.is_dirty(); !r) bad("is_dirty", r.error());
          if (auto r = o.space(); !r) bad("space", r.error());
          break;
        }
        case 5: {  // scan the whole pool meanwhile
          if (auto r = env.pool.scan(); !r) bad("scan", r.error());
          break;
        }
        case 6: {  // remove the scratch volume (running or not) and make it again
          volume_t& sv = scratch[t];
          if (pick(2) == 0)
            if (auto r = sv.start(); !r) { bad("scratch start", r.error()); break; }
          if (auto r = sv.remove(true); !r) { bad("scratch remove", r.error()); break; }
          auto again = env.pool.init_volume(volume_config::origin(sv.vid(), 64 * KiB));
          if (!again) { bad("scratch init_volume", again.error()); break; }
          sv = again.value();
          if (auto r = sv.create(); !r) bad("scratch create", r.error());
          break;
        }
        case 7: {  // destroy is refused while volumes have files, and blocks nobody for long
          auto r = env.pool.destroy();
          if (r)
            ++unexpected;
          else if (r.error() != std::errc::directory_not_empty)
            bad("destroy", r.error());
          break;
        }
      }
    }
  };
  std::vector<std::thread> pool_threads;
  for (int t = 0; t < threads; ++t) pool_threads.emplace_back(worker, t);
  for (auto& th : pool_threads) th.join();

  for (auto& r : reports) MESSAGE(r);
  CHECK(unexpected == 0);
  for (std::size_t i = 0; i < origins.size(); ++i) {
    CAPTURE(origins[i].vid());
    CHECK(env.read(env.clean(origins[i].vid()), 0, 4 * KiB) == committed[i]);
    CHECK_FALSE(REQUIRE_VALUE(origins[i].is_dirty()));
    CHECK(REQUIRE_VALUE(origins[i].revisions()).size() <= 2);
  }
  for (auto& sv : scratch) CHECK(env.has(env.clean(sv.vid())));
  CHECK(temporaries(env.files()).empty());
  auto rep = REQUIRE_VALUE(env.pool.recover());
  CHECK(rep.removed.empty());
  CHECK(rep.dirty.empty());
  CHECK(rep.foreign.empty());
}
