// SPDX-License-Identifier: BSL-1.0
// Allocation failure: every volume operation, on every kind, runs with one
// of its memory allocations failing (std::bad_alloc), once, or from then on
// as when memory is exhausted. No operation may terminate the process (an
// exception escaping a noexcept function, or a message built outside its
// try, would): each returns, with ENOMEM or with success where the failed
// allocation came after its commit point, and what it leaves is what a
// crash at that point may leave: after recover() each volume is as before
// or as after, and the volume starts and stops.
//
// This executable replaces the global operator new for it; it fails nothing
// unless a test arms it, on its own thread.
#include "sweep.hpp"

#include <cstdlib>
#include <new>

namespace {

//! Armed state of this thread: the allocation that fails, counted from 1
//! after `arm`; `sticky` makes every later one fail too.
struct alloc_faults {
  std::uint64_t seen = 0;
  std::uint64_t fail_at = 0;  // 0: not armed
  bool sticky = false;
  bool counting = false;
};
thread_local alloc_faults faults;

void* allocate(std::size_t n) {
  alloc_faults& f = faults;
  if (f.counting || f.fail_at) {
    ++f.seen;
    if (f.fail_at && (f.seen == f.fail_at || (f.sticky && f.seen > f.fail_at))) throw std::bad_alloc();
  }
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}

}  // namespace

void* operator new(std::size_t n) { return allocate(n); }
void* operator new[](std::size_t n) { return allocate(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return allocate(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return allocate(n);
  } catch (...) {
    return nullptr;
  }
}
// The replaced operator new above allocates with malloc, so free is the
// matching release; GCC cannot see through the replacement where it inlines
// a new/delete pair (a TSan build warns, and -Werror stops it).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

using namespace file_reflink;
using namespace file_reflink::reliability;

namespace {

//! Allocations made by `f`, counted on this thread.
template <class F>
std::uint64_t allocations_of(F&& f) {
  faults = alloc_faults{};
  faults.counting = true;
  f();
  const std::uint64_t n = faults.seen;
  faults = alloc_faults{};
  return n;
}

//! Points sampled per operation and kind (FILE_REFLINK_ALLOC_POINTS, for
//! the sanitizer runs that can afford fewer).
std::uint64_t points_per_run() {
  if (report_mode()) return 48;
  const char* e = std::getenv("FILE_REFLINK_ALLOC_POINTS");
  const long n = e ? std::atol(e) : 24;
  return n > 0 ? static_cast<std::uint64_t>(n) : 24;
}

}  // namespace

TEST_CASE("allocation failure: no operation terminates, each fails with ENOMEM or leaves a valid state<memory>") {
  figures total;
  std::vector<std::string> reports;
  std::uint64_t enomem = 0, succeeded = 0, harness = 0;
  const std::uint64_t points = points_per_run();
  for (const operation& op : operations()) {
    for (kind_id kind : all_kinds) {
      auto ref = make_world(kind, op.fresh);
      if (!op.prep(*ref)) continue;
      pool_files before = capture(*ref);
      result<void> done = success();
      const std::uint64_t n = allocations_of([&] { done = op.run(*ref); });
      if (!done || n == 0) continue;  // refused for this kind: the fault sweep covers refusals
      pool_files after = capture(*ref);
      image_set images;
      add_images(images, before);
      add_images(images, after);
      const std::uint64_t stride = std::max<std::uint64_t>(1, n / points);
      for (std::uint64_t k = 1; k <= n; k += stride) {
        for (bool sticky : {false, true}) {
          auto w = make_world(kind, op.fresh);
          REQUIRE(op.prep(*w));
          std::string where = op.name + " on " + kind_name(kind) + ", allocation " + std::to_string(k) + " of " +
                              std::to_string(n) + (sticky ? " and every later one" : "") + " failing";
          result<void> r = success();
          faults = alloc_faults{};
          faults.fail_at = k;
          faults.sticky = sticky;
          try {
            r = op.run(*w);
          } catch (...) {
            // The test's own code around the call (a std::function, the
            // `.value()` of a lookup that said ENOMEM) may throw; the
            // library never does, and never terminates.
            faults = alloc_faults{};
            ++harness;
            continue;
          }
          faults = alloc_faults{};
          ++total.faults;
          std::vector<std::string> bad;
          if (r) {
            ++succeeded;
          } else if (r.error() == std::errc::not_enough_memory) {
            ++enomem;
          } else {
            bad.push_back("failed with another error: " + r.error().message());
          }
          // A failure leaves nothing open in this Pool object (recover keeps
          // an import this process has open); after a success, recover
          // runs as the next process would.
          if (r) w->reboot();
          // A failed import_data_end leaves the import open, its file as it
          // was, for the caller to end again: this caller drops it.
          if (!r && op.word == "import_data_end") {
            auto again = w->vol().import_data_end(false);
            if (!again) bad.push_back("the import could not be ended after the failure: " + again.error().message());
          }
          (void)w->pool->recover();
          pool_files rec = capture(*w);
          auto b = check_recovered(rec, before, after, images, kind, op);
          bad.insert(bad.end(), b.begin(), b.end());
          // The same Pool object works on (a removed volume is registered
          // again, as a new process would).
          if (!w->pool->get_volume(vid)) w->reboot();
          auto c = check_restart(*w, rec, images, false);
          bad.insert(bad.end(), c.begin(), c.end());
          if (!bad.empty()) {
            total.violations += bad.size();
            if (reports.size() < 5) {
              std::string text = where + ":\n";
              for (auto& x : bad) text += "  - " + x + "\n";
              reports.push_back(text + "  files:\n" + tree_text(*w));
            }
          }
        }
      }
    }
  }
  total.faults_after_commit = succeeded;
  ledger::get().add("hostile input", "allocation failure: every operation, every kind", total);
  MESSAGE("allocation failures injected: " << total.faults << " (" << enomem << " ENOMEM, " << succeeded
                                            << " succeeded anyway, " << harness << " in the test's own code)");
  for (auto& r : reports) MESSAGE(r);
  CHECK(total.violations == 0);
  CHECK(total.faults > 1000);
}
