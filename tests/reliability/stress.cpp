// SPDX-License-Identifier: BSL-1.0
// Threads x volumes x random operations on one pool, for ThreadSanitizer and
// AddressSanitizer with UndefinedBehaviorSanitizer (CI builds this
// executable with each). Every origin volume has an owner thread that
// changes it: VM sessions, resizes, imports from anybody's volume, reverts,
// pins, drops, discards, sparsify, remove and create again; so at the end
// the test knows what each must hold. Every thread also reads every volume,
// runs snapshots of anybody's volume, and scans the pool.
#include "../pool_support.hpp"
#include "report.hpp"

#include <atomic>
#include <random>
#include <thread>

using namespace file_reflink;
using namespace file_reflink::test;

namespace {

template <class Fx>
void stress(Fx& fx, int threads, int owned, int rounds) {
  pool_env<Fx> env(fx, 2);
  using volume_t = typename pool_env<Fx>::volume_type;
  const std::uint64_t size = 256 * KiB;
  std::vector<volume_t> origins;
  std::vector<std::string> committed;  // the first 4 KiB of each origin's committed image
  std::vector<std::uint64_t> sizes;
  for (int t = 0; t < threads; ++t)
    for (int i = 0; i < owned; ++i) {
      origins.push_back(env.origin("vm" + std::to_string(t) + "/private" + std::to_string(i), size));
      committed.push_back(std::string(4 * KiB, '\0'));
      sizes.push_back(size);
    }
  // A handle is replaced when its volume is removed and made again: copies
  // are taken and replaced under the slot's lock.
  std::vector<std::unique_ptr<std::mutex>> slot_mu;
  for (std::size_t i = 0; i < origins.size(); ++i) slot_mu.push_back(std::make_unique<std::mutex>());
  auto handle_of = [&](std::size_t i) {
    std::lock_guard<std::mutex> lk(*slot_mu[i]);
    return origins[i];
  };
  std::vector<volume_t> snapshots, volatiles;
  for (int t = 0; t < threads; ++t) {
    snapshots.push_back(env.add(volume_config::snapshot("disp" + std::to_string(t) + "/root", origins[0].vid())));
    volatiles.push_back(env.add(volume_config::volatile_volume("disp" + std::to_string(t) + "/volatile", size)));
  }

  std::atomic<std::uint64_t> ops{0};
  std::mutex report_mu;
  std::vector<std::string> reports;
  auto bad = [&](const std::string& what, const error& e) {
    std::lock_guard<std::mutex> lk(report_mu);
    reports.push_back(what + ": " + e.message());
  };
#define FILE_REFLINK_STRESS_OK(what, expr)            \
  do {                                                \
    ++ops;                                            \
    if (auto r_ = (expr); !r_) bad(what, r_.error()); \
  } while (0)

  auto worker = [&](int t) {
    std::mt19937 rng(777 + t);
    auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
    for (int round = 0; round < rounds; ++round) {
      const int mine = t * owned + pick(owned);
      volume_t v = handle_of(mine);
      switch (pick(12)) {
        case 0:
        case 1: {  // a VM session
          FILE_REFLINK_STRESS_OK("start", v.start());
          std::string data = pattern(4 * KiB, static_cast<std::uint32_t>(t * 1000003 + round));
          ++ops;
          if (auto w = fx.ops.write(env.h, path(v.vid() + "-dirty.img"), 0, data.data(), data.size()); !w)
            bad("write", w.error());
          FILE_REFLINK_STRESS_OK("stop", v.stop());
          committed[mine] = data;
          break;
        }
        case 2: {  // revert to the newest revision and back
          auto revs = v.revisions();
          if (!revs || revs.value().empty()) break;
          FILE_REFLINK_STRESS_OK("revert", v.revert());
          FILE_REFLINK_STRESS_OK("revert back", v.revert());
          break;
        }
        case 3: {  // pin the newest revision, drop the pin again
          auto revs = v.revisions();
          if (!revs || revs.value().empty()) break;
          std::uint64_t n = revs.value().rbegin()->first;
          FILE_REFLINK_STRESS_OK("keep_revision", v.keep_revision(n, "t" + std::to_string(t)));
          FILE_REFLINK_STRESS_OK(pick(2) ? "unkeep_revision" : "drop_revision",
                                 pick(2) ? v.unkeep_revision("t" + std::to_string(t))
                                         : v.drop_revision("t" + std::to_string(t)));
          break;
        }
        case 4:  // grow
          sizes[mine] += 4 * KiB;
          FILE_REFLINK_STRESS_OK("resize", v.resize(sizes[mine]));
          break;
        case 5: {  // import anybody's volume, then put our data back
          volume_t other = handle_of(pick(static_cast<int>(origins.size())));
          if (other == v) break;
          ++ops;
          auto r = v.import_volume(other);
          if (!r) {
            bad("import_volume", r.error());
            break;
          }
          sizes[mine] = REQUIRE_VALUE(v.size());
          FILE_REFLINK_STRESS_OK("revert after import", v.revert());
          sizes[mine] = REQUIRE_VALUE(v.size());
          break;
        }
        case 6:  // discard beyond the data, sparsify
          FILE_REFLINK_STRESS_OK("discard", v.discard(8 * KiB, 8 * KiB));
          FILE_REFLINK_STRESS_OK("sparsify", v.sparsify());
          break;
        case 7: {  // remove and create again
          FILE_REFLINK_STRESS_OK("remove", v.remove(true));  // the source of running snapshots
          auto again = env.pool.init_volume(volume_config::origin(v.vid(), size));
          if (!again) {
            bad("init_volume", again.error());
            break;
          }
          v = again.value();
          {
            std::lock_guard<std::mutex> lk(*slot_mu[mine]);
            origins[mine] = v;
          }
          FILE_REFLINK_STRESS_OK("create", v.create());
          committed[mine] = std::string(4 * KiB, '\0');
          sizes[mine] = size;
          break;
        }
        case 8: {  // a snapshot of anybody's volume, and a volatile one
          volume_t& s = snapshots[t];
          FILE_REFLINK_STRESS_OK("snapshot start", s.start());
          ++ops;
          (void)s.is_outdated();
          FILE_REFLINK_STRESS_OK("snapshot stop", s.stop());
          FILE_REFLINK_STRESS_OK("volatile start", volatiles[t].start());
          FILE_REFLINK_STRESS_OK("volatile stop", volatiles[t].stop());
          break;
        }
        case 9:
        case 10: {  // read anybody's state (a volume being removed may vanish)
          volume_t o = handle_of(pick(static_cast<int>(origins.size())));
          ops += 4;
          (void)o.revisions();
          (void)o.size();
          (void)o.is_dirty();
          (void)o.space();
          break;
        }
        case 11:
          FILE_REFLINK_STRESS_OK("scan", env.pool.scan());
          break;
      }
    }
  };
  std::vector<std::thread> pool_threads;
  for (int t = 0; t < threads; ++t) pool_threads.emplace_back(worker, t);
  for (auto& th : pool_threads) th.join();
#undef FILE_REFLINK_STRESS_OK

  file_reflink::reliability::figures f;
  f.inputs = ops;
  // A snapshot of a volume being removed at that moment fails: that is the
  // only failure allowed (its source is gone), and it must say so.
  // origins[0] is the snapshots' source; its handle is the current one.
  std::size_t unexpected = 0;
  for (auto& r : reports) {
    const std::string source_clean = "/" + origins[0].vid() + ".img'";
    bool source_gone = r.find("source volume") != std::string::npos ||
                       (r.find(source_clean) != std::string::npos && r.find("No such file or directory") != std::string::npos);
    if (!source_gone) {
      ++unexpected;
      MESSAGE(r);
    }
  }
  CHECK(unexpected == 0);
  for (std::size_t i = 0; i < origins.size(); ++i) {
    CAPTURE(origins[i].vid());
    bool ok = env.read(env.clean(origins[i].vid()), 0, 4 * KiB) == committed[i] &&
              REQUIRE_VALUE(origins[i].size()) == sizes[i] && !REQUIRE_VALUE(origins[i].is_dirty()) &&
              REQUIRE_VALUE(origins[i].revisions()).size() <= 2;
    CHECK(ok);
    if (!ok) ++unexpected;
  }
  CHECK(temporaries(env.files()).empty());
  auto rep = REQUIRE_VALUE(env.pool.recover());
  CHECK(rep.removed.empty());
  CHECK(rep.dirty.empty());
  CHECK(rep.foreign.empty());
  f.violations = unexpected + rep.removed.size() + rep.foreign.size();
  file_reflink::reliability::ledger::get().add("concurrency", std::string("stress: threads x volumes x random operations (") + Fx::name + ")", f);
}

}  // namespace

FILE_REFLINK_FIXTURE_TEST_ON("stress: 6 threads x 18 volumes x random operations on one pool",
                             std::tuple<memory_fixture>) {
  stress(fx, 6, 3, 400);
}

FILE_REFLINK_FIXTURE_TEST_ON("stress: 4 threads x 8 volumes x random operations on one pool", std::tuple<btrfs_fixture>) {
  stress(fx, 4, 2, 40);
}
