// SPDX-License-Identifier: BSL-1.0
// The reliability executable. Without arguments (or with doctest's) it runs
// its tests. With --report [fuzz executions] it runs every check at full
// depth (the real-filesystem ones only as root) and the fuzz loop, then
// prints the one table of figures (see report.hpp); it exits non-zero when
// any check found a violation.
#define DOCTEST_CONFIG_IMPLEMENT
#include "report.hpp"

#include <doctest/doctest.h>

#include <malloc.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace file_reflink::reliability {
std::uint64_t run_fuzz_loop(std::uint64_t executions);  // fuzz_replay.cpp
}

int main(int argc, char** argv) {
  using namespace file_reflink::reliability;
  // Every run builds and drops a world of a few MiB: keep the heap instead
  // of returning it to the kernel each time (sys time was most of the run).
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  mallopt(M_TOP_PAD, 64 << 20);
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  bool report = argc >= 2 && std::strcmp(argv[1], "--report") == 0;
  if (!report) {
    doctest::Context ctx(argc, argv);
    return ctx.run();
  }
  std::uint64_t fuzz_runs = 200000;
  if (argc >= 3) fuzz_runs = std::strtoull(argv[2], nullptr, 10);
  report_mode() = true;
  auto t0 = std::chrono::steady_clock::now();
  doctest::Context ctx;
  // As root the real-filesystem checks run too (they make loop devices);
  // otherwise the fixture would end the process with 77 (skipped).
  if (::geteuid() != 0) ctx.setOption("test-case", "*<memory>,fuzz replay*");
  ctx.setOption("no-version", true);
  int rc = ctx.run();
  run_fuzz_loop(fuzz_runs);
  // The libFuzzer run that CI makes just before (it stops CI on a finding).
  if (const char* lf = std::getenv("FILE_REFLINK_LIBFUZZER_RUNS"); lf && std::strtoull(lf, nullptr, 10) > 0) {
    figures f;
    f.inputs = std::strtoull(lf, nullptr, 10);
    ledger::get().add("hostile input", "fuzz: libFuzzer (clang, ASan+UBSan)", f);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("\n%s\n(%.0f s%s)\n", ledger::get().table().c_str(), secs,
              ::geteuid() == 0 ? "" : "; not root: the real-filesystem checks did not run");
  if (ledger::get().total_violations() != 0 || rc != 0) return 1;
  return 0;
}
