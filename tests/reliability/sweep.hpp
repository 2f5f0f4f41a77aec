// SPDX-License-Identifier: BSL-1.0
//! \file
//! The crash sweep and the fault sweep of one operation on one volume kind.
//!
//! Crash sweep. The operation runs once to count its policy calls (n). Then,
//! for each call k, it runs again in a fresh world and power is lost just
//! before call k, and again just after it (MemoryFsOps `power_off_after`),
//! under two durability models:
//!  - strict: MemoryFsOps `crash()`: every name change not followed by an
//!    fsync of its directory is lost, and every file's data not fsynced;
//!  - ordered: every name change made so far is kept, in order (a journal
//!    that committed it all), while unflushed file data is still lost: the
//!    ext4-without-auto_da_alloc case of a renamed file whose data never
//!    reached the disk.
//! A reboot follows (a new Pool object, the same volumes registered, then
//! `recover()`), and the invariants of SPEC.md "Durability and crash rules"
//! are checked on what survived: each volume's committed (and running)
//! image is exactly as before the operation or exactly as after it, every
//! revision the policy keeps is there with its bytes, no revision holds
//! bytes that no image ever had, a precache that would be taken holds the
//! committed bytes, and nothing `recover` should remove is left. Then the
//! volume is started and stopped as a VM manager would: it must work, commit
//! the right bytes under a revision number above every other, and keep the
//! revisions the policy keeps. Each such recovery is itself crashed at each
//! of its calls, and recovered again.
//!
//! Fault sweep. For each call k of the operation and each of ENOSPC, EIO and
//! EPERM, the operation runs in a fresh world with call k failing. It must
//! either fail with that errno, a message that names the operation and the
//! volume, and the pool's files exactly as before (names and bytes), or
//! succeed, when the failed call came after its commit point (refreshing the
//! precache, pruning, dropping a temporary), with a valid after-state. Then
//! the same operation, run again, and a start and stop of the volume work.
#pragma once

#include "operations.hpp"
#include "report.hpp"
#include "world.hpp"

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace file_reflink::reliability {

enum class durability { strict, ordered };
inline const char* to_string(durability d) { return d == durability::strict ? "strict" : "ordered"; }

//! Make every directory entry under the pool durable (not file data): the
//! "ordered" model's journal commit. Through the policy, so the observer
//! must ignore these calls.
inline void flush_names(world& w) {
  auto h = w.fs.open_dir(pool_dir, false);
  if (!h) return;
  std::vector<path> todo{path()};
  while (!todo.empty()) {
    path d = todo.back();
    todo.pop_back();
    (void)w.fs.fsync(h.value().handle, d);
    auto entries = w.fs.list(h.value().handle, d);
    if (!entries) continue;
    for (auto& e : entries.value())
      if (e.type == file_type::directory) todo.push_back(d.empty() ? path(e.name) : d / e.name);
  }
}

//! Lose power just before the `at`-th policy call from now (1: the next).
inline void arm_crash_before(world& w, std::uint64_t at, durability model) {
  auto count = std::make_shared<std::uint64_t>(0);
  auto busy = std::make_shared<bool>(false);
  world* wp = &w;
  w.fs.set_call_observer([wp, count, busy, at, model](fs_op, const std::string&) {
    if (*busy) return;
    if (++*count != at) return;
    *busy = true;
    if (model == durability::ordered) flush_names(*wp);
    wp->fs.power_off_after(0);
    *busy = false;
  });
}

//! Lose power now, keeping what the model keeps; then reboot.
inline void crash_and_reboot(world& w, durability model) {
  w.fs.set_call_observer({});
  if (model == durability::ordered && !w.fs.powered_off()) flush_names(w);
  w.fs.crash();
  w.reboot();
}

inline bool saves(kind_id k) { return k == kind_id::origin || k == kind_id::origin_snapshot || k == kind_id::origin_nosnap; }

//! Every bytes value an image of this world legitimately had.
using image_set = std::set<std::string>;

inline void add_images(image_set& s, const pool_files& pf) {
  for (auto& [n, r] : pf.files)
    if (r.regular) s.insert(r.bytes);
}

//! `r` holds exactly the committed state `x` of volume `v`: its images, and
//! every revision and pin of `x` (more revisions are allowed: a pruning or
//! a drop that a crash undid).
inline bool same_volume(const vol_view& r, const vol_view& x, std::string& why) {
  std::ostringstream o;
  if (r.clean != x.clean) o << "clean is " << describe(r.clean) << ", not " << describe(x.clean) << "; ";
  if (r.dirty != x.dirty) o << "dirty is " << describe(r.dirty) << ", not " << describe(x.dirty) << "; ";
  for (auto& [n, bytes] : x.revisions) {
    auto it = r.revisions.find(n);
    if (it == r.revisions.end())
      o << "revision " << n << " is missing; ";
    else if (it->second != bytes)
      o << "revision " << n << " is " << describe(it->second) << ", not " << describe(bytes) << "; ";
  }
  for (auto& [label, n] : x.pins) {
    auto it = r.pins.find(label);
    if (it == r.pins.end() || it->second != n) o << "pin " << label << " of revision " << n << " is missing; ";
  }
  why = o.str();
  return why.empty();
}


//! Checks that hold for any volume in any state the pool is left in.
inline void check_sane(const pool_files& pf, const image_set& images, kind_id kind, std::vector<std::string>& bad,
                       bool after_recover) {
  for (const std::string& v : {src_vid, other_vid, vid}) {
    vol_view x = view_of(pf, v);
    // A kept image (committed, or running with its data kept) holds bytes
    // that some image had: never an image whose data was lost.
    if (v != vid || saves(kind)) {
      if (x.clean && !images.count(*x.clean)) bad.push_back(v + ": the committed image holds bytes no image had (" + describe(x.clean) + ")");
      if (x.dirty && !images.count(*x.dirty)) bad.push_back(v + ": the running image holds bytes no image had (" + describe(x.dirty) + ")");
    }
    for (auto& [n, bytes] : x.revisions)
      if (!images.count(bytes)) bad.push_back(v + ": revision " + std::to_string(n) + " holds bytes no image had (" + describe(bytes) + ")");
    if (x.precache_current() && x.precache != x.clean)
      bad.push_back(v + ": the precache has the clean image's mtime and size but not its bytes: the next start would run on " + describe(x.precache));
    if (after_recover && !x.temporaries.empty()) bad.push_back(v + ": temporary " + x.temporaries.front() + " left after recover");
    if (after_recover && x.import) bad.push_back(v + ": an import file is left after recover");
  }
  for (auto& [name, rec] : pf.files) {
    // The pool's own metadata at the top: marker, lock file, catalog.
    if (name.find('/') == std::string::npos && name.rfind(std::string(layout::reserved_prefix), 0) == 0) continue;
    layout::name_info info = layout::classify(path(name).filename().string());
    std::string d = path(name).parent_path().generic_string();
    std::string owner = (d.empty() ? std::string() : d + "/") + info.base;
    if (info.kind == layout::file_kind::foreign || (owner != src_vid && owner != other_vid && owner != vid))
      bad.push_back("a file that belongs to no volume: " + name);
  }
}

//! After a crash and `recover()`: is each volume as before or as after?
//! Every file of `r` is a file of `x` with the same bytes: what a crash in
//! the middle of removing the volume's files may leave (a removal of many
//! names cannot be one atomic step; each survivor is intact).
inline bool subset_of(const vol_view& r, const vol_view& x) {
  if (r.clean && r.clean != x.clean) return false;
  if (r.dirty && r.dirty != x.dirty) return false;
  for (auto& [n, bytes] : r.revisions) {
    auto it = x.revisions.find(n);
    if (it == x.revisions.end() || it->second != bytes) return false;
  }
  for (auto& [label, n] : r.pins)
    if (!x.pins.count(label) || x.pins.at(label) != n) return false;
  return true;
}

//! After a crash and `recover()`: is each volume as before or as after?
//! Two outcomes are allowed beyond those, and documented: remove (and create
//! over leftovers, which removes them first) may leave some of the old files,
//! each intact; the start of an origin-snapshot may have replaced the
//! committed image by the source's (what that start takes anyway) before
//! its running image became durable.
inline std::vector<std::string> check_recovered(const pool_files& r, const pool_files& before, const pool_files& after,
                                                const image_set& images, kind_id kind, const operation& op) {
  std::vector<std::string> bad;
  for (const std::string& v : {src_vid, other_vid}) {
    std::string why;
    if (!same_volume(view_of(r, v), view_of(before, v), why)) bad.push_back(v + " changed: " + why);
  }
  if (saves(kind)) {
    std::string why_b, why_a;
    bool b = same_volume(view_of(r, vid), view_of(before, vid), why_b);
    bool a = same_volume(view_of(r, vid), view_of(after, vid), why_a);
    if (!b && !a && (op.word == "remove" || op.word == "create") && subset_of(view_of(r, vid), view_of(before, vid)))
      a = true;
    if (!b && !a && kind == kind_id::origin_snapshot && op.word == "start") {
      vol_view mid = view_of(before, vid);
      mid.clean = view_of(after, vid).clean;
      std::string why_m;
      a = same_volume(view_of(r, vid), mid, why_m);
    }
    if (!b && !a) bad.push_back(vid + " is neither as before (" + why_b + ") nor as after (" + why_a + ")");
  }
  check_sane(r, images, kind, bad, true);
  return bad;
}

//! Start and stop the volume under test, as a VM manager does after a
//! reboot, and check what that committed. `r` is what the crash left.
inline std::vector<std::string> check_restart(world& w, const pool_files& r, const image_set& images, bool check_revisions) {
  std::vector<std::string> bad;
  vol_view rv = view_of(r, vid), sv = view_of(r, src_vid);
  bool has_image = rv.clean || rv.dirty;
  bool can_start = !(w.kind == kind_id::origin || w.kind == kind_id::origin_nosnap) || has_image;
  auto started = w.vol().start();
  if (!started) {
    if (can_start) bad.push_back("start after the crash failed: " + started.error().message());
    return bad;
  }
  if (!can_start) bad.push_back("start after the crash succeeded without an image");
  auto stopped = w.vol().stop();
  if (!stopped) {
    bad.push_back("stop after the crash failed: " + stopped.error().message());
    return bad;
  }
  pool_files f = capture(w);
  check_sane(f, images, w.kind, bad, true);
  if (!saves(w.kind)) return bad;
  vol_view fv = view_of(f, vid);
  std::optional<std::string> expect = rv.dirty ? rv.dirty : w.kind == kind_id::origin_snapshot ? sv.clean : rv.clean;
  if (fv.clean != expect)
    bad.push_back("after start and stop the committed image is " + describe(fv.clean) + ", not " + describe(expect));
  if (!check_revisions || w.kind == kind_id::origin_nosnap) return bad;
  // The new revision is numbered above all others; pinned revisions and the
  // newest keep-1 unpinned ones of what the crash left are still there.
  std::uint64_t top = rv.revisions.empty() ? 0 : rv.revisions.rbegin()->first;
  // origin-snapshot: start replaced the committed image by the source's.
  std::optional<std::string> superseded = w.kind == kind_id::origin_snapshot && !rv.dirty ? sv.clean : rv.clean;
  if (superseded) {
    if (fv.revisions.empty() || fv.revisions.rbegin()->first <= top)
      bad.push_back("the commit after the crash made no revision above " + std::to_string(top));
    else if (fv.revisions.rbegin()->second != *superseded)
      bad.push_back("the newest revision does not hold the image committed before it");
  }
  std::set<std::uint64_t> pinned;
  for (auto& [l, n] : rv.pins) pinned.insert(n);
  int unpinned_kept = 0;
  for (auto it = rv.revisions.rbegin(); it != rv.revisions.rend(); ++it) {
    bool must = pinned.count(it->first) || unpinned_kept < keep - 1;
    if (!pinned.count(it->first)) ++unpinned_kept;
    if (!must) continue;
    auto f_it = fv.revisions.find(it->first);
    if (f_it == fv.revisions.end() || f_it->second != it->second)
      bad.push_back("revision " + std::to_string(it->first) + ", which the policy keeps, is gone after the restart");
  }
  return bad;
}

//! Whether the tests sample the second-crash sweep (every `n`-th point) to
//! stay quick under sanitizers: FILE_REFLINK_SECOND_CRASH_EVERY=n.
inline std::uint64_t second_crash_stride() {
  if (report_mode()) return 1;
  const char* e = std::getenv("FILE_REFLINK_SECOND_CRASH_EVERY");
  long n = e ? std::atol(e) : 1;
  return n > 1 ? static_cast<std::uint64_t>(n) : 1;
}

//! What one sweep found: figures, and the first few violations in full.
struct sweep_outcome {
  figures fig;
  std::vector<std::string> reports;
  void violation(const std::string& where, const std::vector<std::string>& bad, world& w) {
    if (bad.empty()) return;
    fig.violations += bad.size();
    if (reports.size() >= 5) return;
    std::string text = where + ":\n";
    for (auto& b : bad) text += "  - " + b + "\n";
    text += "  files:\n" + tree_text(w);
    reports.push_back(text);
  }
};

//! The recovery a VM manager runs after a reboot: recover, then start and
//! stop the volume. Errors are collected by the caller's checks.
inline void recovery(world& w) {
  (void)w.pool->recover();
  (void)w.vol().start();
  (void)w.vol().stop();
}

//! Crash sweep of `op` on `kind`.
inline sweep_outcome crash_sweep(const operation& op, kind_id kind) {
  sweep_outcome out;
  // The reference run: the calls, and the states before and after.
  auto ref = make_world(kind, op.fresh);
  if (!op.prep(*ref)) return out;  // the operation needs what this kind has not got
  pool_files before = capture(*ref);
  ref->fs.reset_counts();
  auto done = op.run(*ref);
  const std::uint64_t n = ref->fs.call_count();
  pool_files after = capture(*ref);
  image_set images;
  add_images(images, before);
  add_images(images, after);
  if (!done) {
    // Refused for this kind: it must have changed nothing.
    if (!(after == before)) out.violation(op.name + " on " + kind_name(kind) + " was refused but changed files",
                                          {done.error().message()}, *ref);
    return out;
  }
  out.fig.kinds = 1;
  out.fig.calls = n;
  const std::uint64_t stride = second_crash_stride();

  auto crashed = [&](std::uint64_t k, bool after_call, durability model) {
    auto w = make_world(kind, op.fresh);
    REQUIRE(op.prep(*w));
    w->fs.reset_counts();
    if (after_call && model == durability::strict)
      w->fs.power_off_after(k);
    else
      arm_crash_before(*w, after_call ? k + 1 : k, model);
    (void)op.run(*w);
    crash_and_reboot(*w, model);
    return w;
  };

  for (durability model : {durability::strict, durability::ordered}) {
    for (std::uint64_t k = 1; k <= n; ++k) {
      for (bool after_call : {false, true}) {
        std::string where = op.name + " on " + kind_name(kind) + ", power lost " + (after_call ? "after" : "before") +
                            " call " + std::to_string(k) + " of " + std::to_string(n) + " (" + to_string(model) + ")";
        auto w = crashed(k, after_call, model);
        ++out.fig.crash_points;
        (void)w->pool->recover();
        pool_files r = capture(*w);
        std::vector<std::string> bad = check_recovered(r, before, after, images, kind, op);
        // Once the operation has returned, its result is durable.
        std::string why;
        if (k == n && after_call && op.durable && saves(kind) && !same_volume(view_of(r, vid), view_of(after, vid), why))
          bad.push_back(vid + ": the operation had returned, but a crash undid it: " + why);
        out.violation(where, bad, *w);
        out.violation(where + ", then start and stop", check_restart(*w, r, images, true), *w);

        // A second crash, during that recovery: at each of its calls.
        if (after_call) continue;
        auto dry = crashed(k, false, model);
        dry->fs.reset_counts();
        recovery(*dry);
        const std::uint64_t m = dry->fs.call_count();
        for (std::uint64_t j = 1; j <= m + 1; j += stride) {
          auto w2 = crashed(k, false, model);
          pool_files r1 = capture(*w2);
          w2->fs.reset_counts();
          arm_crash_before(*w2, j, durability::strict);
          recovery(*w2);
          crash_and_reboot(*w2, durability::strict);
          ++out.fig.second_crashes;
          (void)w2->pool->recover();
          pool_files r2 = capture(*w2);
          std::vector<std::string> bad;
          check_sane(r2, images, kind, bad, true);
          // The committed image is still one the first crash left (or the
          // running image it left, committed).
          vol_view v1 = view_of(r1, vid), v2 = view_of(r2, vid);
          if (saves(kind) && v2.clean != v1.clean && v2.dirty != v1.dirty && v2.clean != v1.dirty &&
              !(kind == kind_id::origin_snapshot && v2.clean == view_of(r1, src_vid).clean))
            bad.push_back("the second crash left " + describe(v2.clean) + " committed, not " + describe(v1.clean) +
                          " nor " + describe(v1.dirty));
          std::vector<std::string> again = check_restart(*w2, r2, images, false);
          bad.insert(bad.end(), again.begin(), again.end());
          out.violation(where + ", then power lost again before call " + std::to_string(j) + " of " +
                            std::to_string(m) + " of the recovery",
                        bad, *w2);
        }
      }
    }
  }
  return out;
}

//! The pool's files compared for "exactly as before": names and bytes.
inline std::string difference(const pool_files& a, const pool_files& b) {
  std::string out;
  for (auto& [n, r] : a.files) {
    auto it = b.files.find(n);
    if (it == b.files.end())
      out += n + " is gone; ";
    else if (it->second.bytes != r.bytes)
      out += n + " changed; ";
  }
  for (auto& [n, r] : b.files)
    if (!a.files.count(n)) out += n + " appeared; ";
  if (a.dirs != b.dirs) out += "directories differ; ";
  return out;
}

//! `got` is a valid outcome of a successful operation whose reference run
//! left `after`: the same files, except that a precache may be missing (its
//! refresh failed), a revision may remain that pruning did not remove, and,
//! when `temps_ok` (a warning said so), a temporary whose removal after the
//! commit point failed.
inline std::string valid_after(const pool_files& got, const pool_files& after, bool temps_ok = false) {
  std::string out;
  auto ignorable = [temps_ok](const std::string& n, bool extra) {
    if (!n.empty() && n.back() == '~') return extra && temps_ok;  // a temporary, its random part stripped
    layout::name_info info = layout::classify(path(n).filename().string());
    return info.kind == layout::file_kind::precache ||
           (extra && info.kind == layout::file_kind::revision);
  };
  auto strip = [](const std::string& n) -> std::string {
    // Temporary names differ from run to run; compare their final names.
    auto t = n.find('~');
    return t == std::string::npos ? n : n.substr(0, t) + "~";
  };
  std::map<std::string, std::string> g, a;
  for (auto& [n, r] : got.files) g[strip(n)] = r.bytes;
  for (auto& [n, r] : after.files) a[strip(n)] = r.bytes;
  for (auto& [n, bytes] : a) {
    auto it = g.find(n);
    if (it == g.end()) {
      if (!ignorable(n, false)) out += n + " is missing; ";
    } else if (it->second != bytes && !ignorable(n, false)) {
      out += n + " differs; ";
    }
  }
  for (auto& [n, bytes] : g)
    if (!a.count(n) && !ignorable(n, true)) out += n + " is extra; ";
  if (got.dirs != after.dirs) out += "directories differ; ";
  return out;
}

//! Fault sweep of `op` on `kind`.
inline sweep_outcome fault_sweep(const operation& op, kind_id kind) {
  sweep_outcome out;
  auto ref = make_world(kind, op.fresh);
  if (!op.prep(*ref)) return out;
  ref->fs.reset_counts();
  auto done = op.run(*ref);
  const std::uint64_t n = ref->fs.call_count();
  if (!done) return out;
  pool_files after = capture(*ref);
  auto cycle = [](world& w) -> result<void> {
    auto v = w.pool->get_volume(vid);
    if (!v) return success();  // removed: nothing to start
    FILE_REFLINK_TRYV(v.value().start());
    return v.value().stop();
  };
  bool cycle_works = static_cast<bool>(cycle(*ref));
  out.fig.kinds = 1;
  out.fig.calls = n;
  const std::string prefix = op.word + " volume '" + vid + "'";
  for (std::uint64_t k = 1; k <= n; ++k) {
    for (int err : {ENOSPC, EIO, EPERM}) {
      auto w = make_world(kind, op.fresh);
      REQUIRE(op.prep(*w));
      pool_files before = capture(*w);
      w->fs.reset_counts();
      w->fs.fail_nth_call(k, err);
      auto r = op.run(*w);
      w->fs.clear_faults();
      ++out.fig.faults;
      std::string where = op.name + " on " + kind_name(kind) + ", call " + std::to_string(k) + " of " +
                          std::to_string(n) + " failed with " + std::error_code(err, std::system_category()).message();
      std::vector<std::string> bad;
      pool_files got = capture(*w);
      if (!r) {
        if (r.error().code() != std::error_code(err, std::system_category()))
          bad.push_back("the error's code is " + r.error().code().message() + ": " + r.error().message());
        if (r.error().message().rfind(prefix, 0) != 0)
          bad.push_back("the message does not start with \"" + prefix + "\": " + r.error().message());
        // create removes leftovers first: past that removal's commit point a
        // failure leaves some of the old files (each intact) or none.
        std::string d = difference(before, got);
        if (!d.empty() && op.word == "create") {
          bool others_same = true;
          for (const std::string& v : {src_vid, other_vid}) {
            std::string why;
            others_same = others_same && same_volume(view_of(got, v), view_of(before, v), why);
          }
          vol_view gv = view_of(got, vid);
          if (others_same && gv.temporaries.empty() && subset_of(gv, view_of(before, vid))) d.clear();
        }
        // A discard in the only image of a snapshots-disabled volume cannot
        // be undone: when its flush fails, the range is zeroed already and
        // the error says the discard may not be durable.
        if (!d.empty() && op.word == "discard" && kind == kind_id::origin_nosnap && difference(after, got).empty())
          d.clear();
        if (!d.empty()) bad.push_back("the files changed: " + d);
        // The next operation works: the same one, again.
        auto again = op.run(*w);
        if (!again)
          bad.push_back("the operation failed again without a fault: " + again.error().message());
        else if (std::string d = valid_after(capture(*w), after); !d.empty())
          bad.push_back("run again, it left " + d);
      } else {
        ++out.fig.faults_after_commit;
        bool warned = false;
        for (auto& l : w->log) warned = warned || l.find("Could not remove temporary file") != std::string::npos;
        if (std::string d = valid_after(got, after, warned); !d.empty()) bad.push_back("it succeeded but left " + d);
      }
      if (cycle_works) {
        auto t = cycle(*w);
        if (!t) bad.push_back("start and stop afterwards failed: " + t.error().message());
      }
      out.violation(where, bad, *w);
    }
  }
  return out;
}

//! Run a sweep over every kind, record it, and fail the test on a violation.
//! The table's section for both sweeps: one row per operation.
inline const char* operations_section = "volume operations, every kind (MemoryFsOps)";

template <class Sweep>
void sweep_all_kinds(const std::string& which, const operation& op, Sweep&& sweep) {
  figures total;
  std::vector<std::string> reports;
  for (kind_id k : all_kinds) {
    sweep_outcome o = sweep(op, k);
    total.kinds += o.fig.kinds;
    total.calls += o.fig.calls;
    total.crash_points += o.fig.crash_points;
    total.second_crashes += o.fig.second_crashes;
    total.faults += o.fig.faults;
    total.faults_after_commit += o.fig.faults_after_commit;
    total.violations += o.fig.violations;
    reports.insert(reports.end(), o.reports.begin(), o.reports.end());
  }
  // Kinds and calls are counted by the crash sweep; the fault sweep adds its faults.
  if (which != "crash sweep") total.kinds = total.calls = 0;
  ledger::get().add(operations_section, op.name, total);
  for (auto& r : reports) MESSAGE(r);
  CHECK_MESSAGE(total.violations == 0, op.name << ": " << total.violations << " violation(s)");
  // A sweep that crashed or failed nothing proved nothing: an operation
  // refused on every kind (a broken prep, a refusal added by mistake) would
  // otherwise pass with an empty row.
  if (which == "crash sweep")
    CHECK_MESSAGE(total.crash_points > 0, op.name << ": no kind ran it, so no crash point was swept");
  else
    CHECK_MESSAGE(total.faults > 0, op.name << ": no kind ran it, so no fault was injected");
}

}  // namespace file_reflink::reliability
