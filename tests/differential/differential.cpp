// SPDX-License-Identifier: BSL-1.0
// The differential test of the two policies: random sequences of contract
// calls run on MemoryFsOps and on LinuxFsOps over a real btrfs, XFS and
// ext4, side by side from the same starting tree, and every result and the
// whole tree after every call are compared (see harness.hpp). The real
// filesystem is the judge: where the two disagree, the mock is wrong.
//
// One test per filesystem, "differential: random sequences <btrfs>" (and
// <xfs>, <ext4>); each prints its counts. As root it makes its loop-mounted
// filesystems in a private mount namespace; without root it exits with 77
// (skipped). The environment steers it:
//
//   FILE_REFLINK_DIFF_SEQUENCES=N   sequences per filesystem (default 3400:
//                                   over 10,000 in all, a few minutes in CI);
//                                   a soak is a large N
//   FILE_REFLINK_DIFF_FIRST_SEED=S  the seed of the first sequence (default 1);
//                                   sequence i has seed S + i
//   FILE_REFLINK_DIFF_SEED=S        replay the one sequence of seed S, print
//                                   each call and both sides' results
//   FILE_REFLINK_DIFF_CALLS=N       calls per sequence (default 20)
//   FILE_REFLINK_DIFF_KEEP_GOING=1  report every divergence, not only the first
//
// A divergence prints its seed, the sequence shrunk (calls and planted
// files removed while the sides still disagree) and what each side said:
//
//   FILE_REFLINK_DIFF_SEED=1234 build/tests/differential/file_reflink_differential -tc='*<ext4>'
//
// The fixed sequences of the divergences found so far are in regressions.cpp.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "harness.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

using namespace file_reflink;
using namespace file_reflink::differential;

namespace {

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  return std::strtoull(v, nullptr, 10);
}

void random_sequences(scratch_kind kind) {
  run_config cfg = config_for(kind);
  const char* fs = test::to_string(kind);
  const std::uint64_t calls_per = env_number("FILE_REFLINK_DIFF_CALLS", 20);
  const bool keep_going = env_number("FILE_REFLINK_DIFF_KEEP_GOING", 0) != 0;
  const char* one = std::getenv("FILE_REFLINK_DIFF_SEED");
  const bool replay = one && *one;
  const std::uint64_t first = replay ? std::strtoull(one, nullptr, 10) : env_number("FILE_REFLINK_DIFF_FIRST_SEED", 1);
  const std::uint64_t n = replay ? 1 : env_number("FILE_REFLINK_DIFF_SEQUENCES", 3400);

  counts tally;
  const auto t0 = std::chrono::steady_clock::now();
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::uint64_t seed = first + i;
    generator g(seed);
    const std::vector<plant> tree = g.start_tree(cfg.paths.run);
    const std::vector<call> calls = g.sequence(static_cast<std::size_t>(calls_per));
    // One sequence in eight resolves names with the component walk that
    // kernels without openat2 get.
    cfg.component_walk = seed % 8 == 7;
    std::vector<std::string> trace;
    divergence d = run_once(cfg, tree, calls, &tally, replay ? &trace : nullptr);
    if (replay) {
      std::printf("seed %llu on %s%s:\n", static_cast<unsigned long long>(seed), fs,
                  cfg.component_walk ? " (component walk)" : "");
      for (const plant& p : tree) std::printf("  %s\n", to_string(p).c_str());
      for (const auto& line : trace) std::printf("  %s\n", line.c_str());
    }
    if (!d.found) continue;
    const shrunk s = shrink(cfg, tree, calls, d);
    FAIL_CHECK(report(cfg, seed, s));
    if (!keep_going) break;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("differential %s: %llu sequences, %llu calls (%llu succeeded), %llu comparisons, %llu divergences, %.1f s\n",
              fs, static_cast<unsigned long long>(tally.sequences), static_cast<unsigned long long>(tally.calls),
              static_cast<unsigned long long>(tally.succeeded), static_cast<unsigned long long>(tally.comparisons),
              static_cast<unsigned long long>(tally.divergences), secs);
  std::fflush(stdout);
  CHECK(tally.divergences == 0);
}

}  // namespace

TEST_CASE("differential: random sequences <btrfs>") { random_sequences(scratch_kind::btrfs); }
TEST_CASE("differential: random sequences <xfs>") { random_sequences(scratch_kind::xfs); }
TEST_CASE("differential: random sequences <ext4>") { random_sequences(scratch_kind::ext4); }
