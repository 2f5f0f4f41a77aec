// SPDX-License-Identifier: BSL-1.0
// Model-based random test of whole pools: seeded sequences of steps over
// several volumes of one pool (every kind, sources and chains, revisions,
// pins, imports, resizes, discards, removals, restarts with changed
// configurations, clock jumps, and a Qubes driver working on the same
// directory), each step checked against a reference model (model.hpp). A
// disagreement is shrunk to a minimal sequence, printed as C++ to paste into
// a doctest test case; regressions.cpp keeps those of fixed defects.
//
// Run by ctest (labels memory, btrfs, xfs, ext4), or directly, e.g.
//   file_reflink_model -tc='model: random sequences from seed 0<memory>'
// CI runs 4 x 2500 sequences of 50 steps on MemoryFsOps and 2 x 100 on each
// of btrfs, XFS and ext4, and prints the counts of sequences, steps and checks.
// Environment:
//   FILE_REFLINK_MODEL_SEQUENCES=N  sequences per test case (the soak mode)
//   FILE_REFLINK_MODEL_STEPS=N      steps per sequence (default 50)
//   FILE_REFLINK_MODEL_SEED=S       run only seed S in the selected case: a
//                                   failure prints this replay line
//   FILE_REFLINK_MODEL_FIRST_SEED=S add S to every case's first seed, to soak
//                                   other seeds than CI's
//   FILE_REFLINK_MODEL_FAILURES=N   go on after a failure, up to N (default 1)
//   FILE_REFLINK_MODEL_OFF=a,b,...  what the generator leaves out: the step
//                                   families restart, recover, clock, mtime,
//                                   create, init, start, stop, write, revert,
//                                   pins, drop, resize, discard, sparsify,
//                                   import, remove, qubes (the other program),
//                                   temp (crash leftovers); "odd_names" (plain
//                                   VM names only), "keep_change" (restarts keep
//                                   every revisions_to_keep), "snapdis" (no
//                                   volume with snapshots disabled), "chains"
//                                   (sources are templates only); and the check
//                                   "revisions_list". For showing a defect that
//                                   another one would otherwise mask.
// Soak (a million sequences over seeds CI does not run):
//   FILE_REFLINK_MODEL_SEQUENCES=250000 FILE_REFLINK_MODEL_FIRST_SEED=500000 file_reflink_model -tc='*<memory>'
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "generator.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <tuple>

namespace file_reflink::model_test {
namespace {

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 10) : fallback;
}

//! Run `count` sequences from `first_seed` (or the seeds the environment
//! asks for) on fixture `Fx`, print the totals, and fail the test case with
//! the shrunk report of each failure.
template <class Fx>
void run_range(std::uint64_t first_seed, std::uint64_t count) {
  const std::string case_name = "model: random sequences from seed " + std::to_string(first_seed) + "<" + Fx::name + ">";
  const std::size_t nsteps = static_cast<std::size_t>(env_number("FILE_REFLINK_MODEL_STEPS", 50));
  const switches sw = switches::parse(std::getenv("FILE_REFLINK_MODEL_OFF"));
  const std::uint64_t max_failures = env_number("FILE_REFLINK_MODEL_FAILURES", 1);
  count = env_number("FILE_REFLINK_MODEL_SEQUENCES", count);
  first_seed += env_number("FILE_REFLINK_MODEL_FIRST_SEED", 0);
  if (const char* one = std::getenv("FILE_REFLINK_MODEL_SEED"); one && *one) {
    first_seed = std::strtoull(one, nullptr, 10);
    count = 1;
  }
  tally t;
  const auto t0 = std::chrono::steady_clock::now();
  for (std::uint64_t i = 0; i < count && t.failures < max_failures; ++i) {
    const std::string report = run_seed<Fx>(first_seed + i, nsteps, sw, t, case_name);
    if (!report.empty()) FAIL_CHECK(report);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("model %s, seeds %llu-%llu: %llu sequences, %llu steps, %llu checks, %llu failing, %.1f s\n", Fx::name,
              static_cast<unsigned long long>(first_seed),
              static_cast<unsigned long long>(first_seed + (count ? count - 1 : 0)),
              static_cast<unsigned long long>(t.sequences), static_cast<unsigned long long>(t.steps),
              static_cast<unsigned long long>(t.checks), static_cast<unsigned long long>(t.failures), secs);
  std::fflush(stdout);
  CHECK(t.failures == 0);
}

using memory_only = std::tuple<test::memory_fixture>;
using btrfs_only = std::tuple<test::btrfs_fixture>;
using xfs_only = std::tuple<test::xfs_fixture>;
using ext4_only = std::tuple<test::ext4_fixture>;

// The fixture a case receives only proves the filesystem can be made (or
// skips the case); every sequence makes its own.
FILE_REFLINK_FIXTURE_TEST_ON("model: random sequences from seed 0", memory_only) { run_range<Fx>(0, 2500); }
FILE_REFLINK_FIXTURE_TEST_ON("model: random sequences from seed 1000000", memory_only) { run_range<Fx>(1000000, 2500); }
FILE_REFLINK_FIXTURE_TEST_ON("model: random sequences from seed 2000000", memory_only) { run_range<Fx>(2000000, 2500); }
FILE_REFLINK_FIXTURE_TEST_ON("model: random sequences from seed 3000000", memory_only) { run_range<Fx>(3000000, 2500); }
FILE_REFLINK_FIXTURE_TEST_ON("model: random sequences from seed 10000000", btrfs_only) { run_range<Fx>(10000000, 100); }
FILE_REFLINK_FIXTURE_TEST_ON("model: random sequences from seed 11000000", btrfs_only) { run_range<Fx>(11000000, 100); }
FILE_REFLINK_FIXTURE_TEST_ON("model: random sequences from seed 20000000", xfs_only) { run_range<Fx>(20000000, 100); }
FILE_REFLINK_FIXTURE_TEST_ON("model: random sequences from seed 21000000", xfs_only) { run_range<Fx>(21000000, 100); }
FILE_REFLINK_FIXTURE_TEST_ON("model: random sequences from seed 30000000", ext4_only) { run_range<Fx>(30000000, 100); }
FILE_REFLINK_FIXTURE_TEST_ON("model: random sequences from seed 31000000", ext4_only) { run_range<Fx>(31000000, 100); }

}  // namespace
}  // namespace file_reflink::model_test
