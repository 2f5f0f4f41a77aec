// SPDX-License-Identifier: BSL-1.0
// file_reflink_bench: the latency of each volume operation on btrfs, XFS and
// ext4 loop filesystems and on MemoryFsOps, beside its floor (the same
// system calls issued bare, in the same run, on the same kind of files), the
// Qubes driver's sequence for start and stop, the fallback copy against
// `cp --sparse=always`, and 32 volumes started at once from 2 threads.
//
//   file_reflink_bench [--short] [--only btrfs,xfs,ext4,memory,command] [--iterations N]
//
// --short is the CI mode: a few iterations, the ~200-extent image only, a
// smaller copy. It fails (exit 1) only when something is broken: an
// operation fails, a floor sequence fails or ends otherwise than the
// operation did, a copy loses its holes. It exits 77 when it cannot make
// its loop filesystems (after printing the memory part).
//
// How one sample of an operation is taken: three pools hold the same
// volumes: A (ours), C (recording) and T (floor). The operation runs on C
// through a recording policy (untimed); its recorded calls are replayed bare
// on T (timed: the floor); the operation runs on A (timed: ours). C and T
// stay identical (T only ever sees C's calls, names included); A goes
// through the same operations. The filesystem is synced (syncfs) before
// each timed part, so each starts from a clean journal.

#include "../support/patterns.hpp"
#include "mounts.hpp"
#include "qubes.hpp"
#include "recording.hpp"
#include "replay.hpp"

#include <file_reflink/file_reflink.hpp>
#include <file_reflink/testing.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace fr = file_reflink;
using namespace file_reflink::bench;

namespace {

constexpr std::uint64_t KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;
using clk = std::chrono::steady_clock;

double us_between(clk::time_point a, clk::time_point b) { return std::chrono::duration<double, std::micro>(b - a).count(); }

//! CPU time of this process, in microseconds: what a loop costs whatever
//! else the machine runs.
double cpu_us() {
  struct timespec ts;
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

void print_table(std::ostream& out);

//! A progress line on stderr, with the seconds since the start.
void progress(const std::string& what) {
  static const clk::time_point start = clk::now();
  std::fprintf(stderr, "file_reflink_bench: %6.1f s: %s\n", us_between(start, clk::now()) / 1e6, what.c_str());
}

[[noreturn]] void broken(const std::string& what) {
  print_table(std::cout);  // what was measured so far
  std::cout.flush();
  std::fprintf(stderr, "file_reflink_bench: BROKEN: %s\n", what.c_str());
  std::exit(1);  // runs the destructor of main's static scratch_mounts: nothing stays mounted
}

template <class R>
void check(const R& r, const std::string& what) {
  if (!r) broken(what + ": " + r.error().message());
}

void check_replay(const replay_error& e, const std::string& what) {
  if (e)
    broken(what + ": the floor's call " + std::to_string(e.index) + " (" + e.what + ") returned " +
           (e.now ? std::strerror(e.now) : "success") + ", the operation's " +
           (e.recorded > 0 ? std::strerror(e.recorded) : e.recorded < 0 ? "a library error" : "success"));
}

// ---------------------------------------------------------------------------
// The table

struct row {
  std::string fs, image, op;
  std::string vs = "floor";           //!< what the second column is: "floor" or "cp"
  std::vector<double> ours, other;    //!< microseconds
  std::vector<double> qubes;          //!< the Qubes driver's sequence, where there is one
  std::optional<std::size_t> fsyncs;  //!< fsyncs the operation issued
  std::optional<int> qubes_fsyncs;
  std::string note;
};

std::vector<std::unique_ptr<row>> table;

row& row_of(const std::string& fs, const std::string& image, const std::string& op, const std::string& vs = "floor") {
  for (auto& r : table)
    if (r->fs == fs && r->image == image && r->op == op) return *r;
  table.push_back(std::make_unique<row>());
  row& r = *table.back();
  r.fs = fs;
  r.image = image;
  r.op = op;
  r.vs = vs;
  return r;
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const std::size_t i = static_cast<std::size_t>(pos);
  if (i + 1 >= v.size()) return v.back();
  return v[i] + (v[i + 1] - v[i]) * (pos - static_cast<double>(i));
}

std::string fmt_time(double us) {
  char buf[32];
  if (us < 1000) std::snprintf(buf, sizeof buf, "%.1f us", us);
  else if (us < 100000) std::snprintf(buf, sizeof buf, "%.2f ms", us / 1000);
  else std::snprintf(buf, sizeof buf, "%.0f ms", us / 1000);
  return buf;
}

//! The ratio to the floor (or to cp): the median of each sample's ratio.
//! Each sample times ours and the other back to back, so a slow moment of
//! the machine (other processes' CPU or I/O) weighs on both sides of a
//! ratio; the ratio of the two medians would mix samples from different
//! moments.
double ratio(const row& r) {
  std::vector<double> q;
  for (std::size_t i = 0; i < r.ours.size() && i < r.other.size(); ++i)
    if (r.other[i] > 0) q.push_back(r.ours[i] / r.other[i]);
  return quantile(q, 0.5);
}

void print_table(std::ostream& out) {
  out << "| filesystem | image | operation | ours median (p90) | floor or cp median (p90) | ratio | fsyncs | "
         "Qubes sequence median (fsyncs) | note |\n";
  out << "|---|---|---|---|---|---|---|---|---|\n";
  for (auto& rp : table) {
    const row& r = *rp;
    out << "| " << r.fs << " | " << r.image << " | " << r.op << " | ";
    if (!r.ours.empty()) out << fmt_time(quantile(r.ours, 0.5)) << " (" << fmt_time(quantile(r.ours, 0.9)) << ")";
    out << " | ";
    if (!r.other.empty())
      out << (r.vs == "floor" ? "" : r.vs + " ") << fmt_time(quantile(r.other, 0.5)) << " ("
          << fmt_time(quantile(r.other, 0.9)) << ")";
    out << " | ";
    if (!r.ours.empty() && !r.other.empty()) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.2fx %s", ratio(r), r.vs.c_str());
      out << buf;
    }
    out << " | " << (r.fsyncs ? std::to_string(*r.fsyncs) : "") << " | ";
    if (!r.qubes.empty())
      out << fmt_time(quantile(r.qubes, 0.5)) << " (" << (r.qubes_fsyncs ? std::to_string(*r.qubes_fsyncs) : "?")
          << ")";
    out << " | " << r.note << " |\n";
  }
}

//! FILE_REFLINK_BENCH_CALLS=1: print the calls each operation made (once).
bool dump_calls() {
  static const bool on = [] {
    const char* v = std::getenv("FILE_REFLINK_BENCH_CALLS");
    return v && std::string(v) == "1";
  }();
  return on;
}

void dump(const std::string& what, const recording& calls) {
  std::fprintf(stderr, "%s: %zu calls\n", what.c_str(), calls.size());
  for (const call& c : calls)
    std::fprintf(stderr, "  %-13s %s%s%s%s\n", fr::to_string(c.op), c.a.string().c_str(), c.b.empty() ? "" : " -> ",
                 c.b.string().c_str(), c.err ? (std::string(" = ") + (c.err > 0 ? std::strerror(c.err) : "error")).c_str() : "");
}

// ---------------------------------------------------------------------------
// Pools: ours (A), the recorder (C) and the floor (T)

template <class Ops>
struct side {
  fr::Pool<Ops> pool;
  std::map<std::string, fr::Volume<Ops>> vols;
  typename Ops::dir_handle dir;
  side(fr::pool_config cfg, Ops ops) : pool(std::move(cfg), std::move(ops)) {}
  fr::Volume<Ops>& v(const std::string& vid) { return vols.at(vid); }
  const typename Ops::dir_handle& handle() const { return dir; }
};

template <class Ops, class Replayer>
struct trio {
  side<Ops> ours;
  side<RecordingFsOps<Ops>> rec;
  Replayer floor;
  std::function<void()> settle;

  trio(fr::pool_config a, fr::pool_config c, Ops ops, Replayer&& r, std::function<void()> s)
      : ours(std::move(a), ops), rec(std::move(c), RecordingFsOps<Ops>(ops)), floor(std::move(r)), settle(std::move(s)) {}

  RecordingFsOps<Ops>& recorder() { return rec.pool.fs_ops(); }

  //! Run `f` on ours, and recorded on C then replayed on T; untimed.
  template <class F>
  void both(const std::string& what, F f) {
    check(f(ours), what + " (ours)");
    recorder().begin();
    auto r = f(rec);
    recording calls = recorder().end();
    check(r, what + " (recorded)");
    floor.prepare(calls);
    check_replay(floor.run(calls), what + " (floor)");
  }

  //! Record `f` on C only: what the operation would issue.
  template <class F>
  recording record(const std::string& what, F f) {
    recorder().begin();
    auto r = f(rec);
    recording calls = recorder().end();
    check(r, what + " (recorded)");
    return calls;
  }

  //! One sample of `f`: ours and its floor, in alternating order. An
  //! operation that changes nothing can be `repeat`ed within the sample
  //! (the sample is the mean): a single call of a few microseconds is
  //! below what one timing resolves well.
  //! An operation that writes nothing (`writes` false) is timed without the
  //! sync before it: there is no journal to start clean, and the sync would
  //! only leave the CPU caches cold for whichever side runs first.
  template <class F>
  void measure(row& rw, F f, int repeat = 1, bool writes = true) {
    const std::string what = rw.fs + " " + rw.image + " " + rw.op;
    recording calls = record(what, f);
    floor.prepare(calls);
    rw.fsyncs = count(calls, fr::fs_op::fsync);
    if (dump_calls() && rw.ours.empty()) dump(what, calls);
    auto run_floor = [&] {
      if (writes) settle();
      replay_error e;
      const auto t0 = clk::now();
      for (int i = 0; i < repeat && !e; ++i) e = floor.run(calls);
      const auto t1 = clk::now();
      check_replay(e, what);
      rw.other.push_back(us_between(t0, t1) / repeat);
    };
    auto run_ours = [&] {
      if (writes) settle();
      const auto t0 = clk::now();
      auto r = f(ours);
      for (int i = 1; i < repeat && r; ++i) r = f(ours);
      const auto t1 = clk::now();
      check(r, what);
      rw.ours.push_back(us_between(t0, t1) / repeat);
    };
    if (rw.ours.size() % 2 == 0) {
      run_floor();
      run_ours();
    } else {
      run_ours();
      run_floor();
    }
  }
};

// ---------------------------------------------------------------------------
// Images

//! The bytes every image chunk holds (never zero: no copy can skip them).
const std::vector<char>& chunk_bytes() {
  static const std::vector<char> bytes = [] {
    std::vector<char> b(64 * MiB);
    fr::test::fill_pattern(b.data(), b.data() + b.size(), 2463534242u);
    return b;
  }();
  return bytes;
}

//! Write `n` chunks of 4 KiB spread evenly over `size` bytes of `rel`.
template <class S>
fr::result<void> write_chunks(S& s, const fr::path& rel, std::uint64_t size, std::uint64_t n) {
  const std::uint64_t step = (size / n) & ~(4 * KiB - 1);
  for (std::uint64_t i = 0; i < n; ++i)
    FILE_REFLINK_TRYV(s.pool.fs_ops().write(s.handle(), rel, i * step, chunk_bytes().data() + (i % 1024) * 4 * KiB, 4 * KiB));
  return fr::success();
}

//! A template image of 1 GiB with `extents` 4 KiB chunks, imported into `vid`.
template <class S>
fr::result<void> import_image(S& s, const std::string& vid, std::uint64_t extents) {
  auto& v = s.v(vid);
  FILE_REFLINK_TRYV(v.import_data(GiB));
  FILE_REFLINK_TRYV(write_chunks(s, fr::path(vid + "-import.img"), GiB, extents));
  return v.import_data_end(true);
}

// ---------------------------------------------------------------------------
// The workload on one filesystem

struct options {
  bool short_mode = false;
  int iterations = 0;  // 0: the mode's default
  std::vector<std::string> only;
  bool wants(const std::string& fs) const {
    return only.empty() || std::find(only.begin(), only.end(), fs) != only.end();
  }
};

//! What the Qubes sequences run on: absolute directories of T.
struct qubes_env {
  bool on = false;
  std::string root;  // T's pool directory
};

template <class Ops, class Replayer>
void run_volume_ops(trio<Ops, Replayer>& t, const std::string& fs, std::uint64_t extents, int iterations,
                    bool first_image, const qubes_env& q) {
  const std::string K = extents >= 1000 ? std::to_string(extents / 1000) + "k" : std::to_string(extents);
  const std::string image = "1 GiB, " + (extents >= 1000 ? std::to_string(extents / 1000) + "k" : "~" + K) + " extents";
  const std::string tmpl = "tmpl/t" + K + "/root", origin = "appvms/o" + K + "/private",
                    snap = "appvms/s" + K + "/root", os = "appvms/os" + K + "/root", vol = "appvms/v" + K + "/volatile",
                    imp = "appvms/i" + K + "/private", qo = "appvms/q" + K + "/private",
                    qs = "appvms/qs" + K + "/root", qv = "appvms/qv" + K + "/volatile";
  auto add = [&](const fr::volume_config& c) {
    t.ours.vols.emplace(c.vid, t.ours.pool.init_volume(c).value());
    t.rec.vols.emplace(c.vid, t.rec.pool.init_volume(c).value());
  };
  add(fr::volume_config::origin(tmpl, GiB));
  add(fr::volume_config::origin(origin, GiB));
  add(fr::volume_config::snapshot(snap, tmpl));
  add(fr::volume_config::origin_snapshot(os, tmpl));
  add(fr::volume_config::volatile_volume(vol, GiB));
  add(fr::volume_config::origin(imp, GiB));
  add(fr::volume_config::origin(qo, GiB));
  t.both("create " + tmpl, [&](auto& s) { return s.v(tmpl).create(); });
  t.both("image " + tmpl, [&](auto& s) { return import_image(s, tmpl, extents); });
  for (const std::string& vid : {origin, imp, qo}) {
    t.both("create " + vid, [&](auto& s) { return s.v(vid).create(); });
    t.both("import " + vid, [&](auto& s) -> fr::result<void> {
      FILE_REFLINK_TRYV(s.v(vid).import_volume(s.v(tmpl)));
      return fr::success();
    });
  }
  // One commit first: the origin has a precache and a revision, as in use.
  for (const std::string& vid : {origin, qo}) {
    t.both("start " + vid, [&](auto& s) { return s.v(vid).start(); });
    t.both("stop " + vid, [&](auto& s) { return s.v(vid).stop(); });
  }
  qubes::volume q_origin{q.root + "/appvms/q" + K, "private"};
  qubes::volume q_snap{q.root + "/appvms/qs" + K, "root"};
  qubes::volume q_vol{q.root + "/appvms/qv" + K, "volatile"};
  qubes::volume q_tmpl{q.root + "/tmpl/t" + K, "root"};
  if (q.on) {
    ::mkdir(q_snap.dir.c_str(), 0755);
    ::mkdir(q_vol.dir.c_str(), 0755);
  }
  auto qubes_sample = [&](row& rw, auto seq) {
    if (!q.on) return;
    t.settle();
    const auto t0 = clk::now();
    const int syncs = seq();
    const auto t1 = clk::now();
    if (syncs < 0) broken(rw.fs + " " + rw.op + ": the Qubes sequence failed: " + std::strerror(errno));
    rw.qubes.push_back(us_between(t0, t1));
    rw.qubes_fsyncs = syncs;
  };

  std::uint64_t size = GiB;
  for (int i = 0; i < iterations; ++i) {
    if (q.on) {
      // References for the floors: one FICLONE of the template; two renames
      // and the fsync of their directory (what makes a name durable).
      row& fc = row_of(fs, image, "reference: FICLONE of the template alone");
      row& fd = row_of(fs, image, "reference: 2 renames + fsync of the directory");
      const std::string src = q_tmpl.clean(), dst = q_tmpl.dir + "/reference-clone";
      const int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
      const int out = ::open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      t.settle();
      const auto t0 = clk::now();
      const int r = ::ioctl(out, fr::detail::linux_impl::ioc_ficlone, in);
      const auto t1 = clk::now();
      const int err = errno;
      ::close(in);
      ::close(out);
      ::unlink(dst.c_str());
      if (r == 0) fc.ours.push_back(us_between(t0, t1));
      else if (err != EOPNOTSUPP) broken(fs + ": FICLONE: " + std::strerror(err));
      else fc.note = "no reflinks";
      const int dfd = ::open(q_tmpl.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      const std::string moved_name = q_tmpl.clean() + "~reference";
      t.settle();
      const auto t2 = clk::now();
      const bool renamed = ::rename(src.c_str(), moved_name.c_str()) == 0 && ::rename(moved_name.c_str(), src.c_str()) == 0;
      ::fsync(dfd);
      const auto t3 = clk::now();
      ::close(dfd);
      if (!renamed) broken(fs + ": rename " + src + ": " + std::strerror(errno));
      fd.ours.push_back(us_between(t2, t3));
    }
    if (first_image) {
      row& vs = row_of(fs, "-", "volatile start");
      t.measure(vs, [&](auto& s) { return s.v(vol).start(); });
      qubes_sample(vs, [&] { return qubes::volatile_start(q_vol, GiB); });
      row& ve = row_of(fs, "-", "volatile stop");
      t.measure(ve, [&](auto& s) { return s.v(vol).stop(); });
      qubes_sample(ve, [&] { return qubes::volatile_stop(q_vol); });
    }
    row& ss = row_of(fs, image, "snapshot start");
    t.measure(ss, [&](auto& s) { return s.v(snap).start(); });
    qubes_sample(ss, [&] { return qubes::snapshot_start(q_snap, q_tmpl); });
    t.measure(row_of(fs, image, "is_outdated"), [&](auto& s) { return s.v(snap).is_outdated(); }, 10, false);
    row& se = row_of(fs, image, "snapshot stop");
    t.measure(se, [&](auto& s) { return s.v(snap).stop(); });
    qubes_sample(se, [&] { return qubes::snapshot_stop(q_snap); });

    row& os_ = row_of(fs, image, "origin start");
    t.measure(os_, [&](auto& s) { return s.v(origin).start(); });
    qubes_sample(os_, [&] { return qubes::origin_start(q_origin); });
    row& oe = row_of(fs, image, "origin stop (commit, 1 revision kept)");
    t.measure(oe, [&](auto& s) { return s.v(origin).stop(); });
    qubes_sample(oe, [&] { return qubes::origin_stop(q_origin, 1); });

    t.measure(row_of(fs, image, "origin-snapshot start"), [&](auto& s) { return s.v(os).start(); });
    t.measure(row_of(fs, image, "origin-snapshot stop"), [&](auto& s) { return s.v(os).stop(); });

    t.measure(row_of(fs, image, "revisions"), [&](auto& s) { return s.v(origin).revisions(); }, 10, false);
    t.measure(row_of(fs, image, "revert"), [&](auto& s) { return s.v(origin).revert(); });
    size += MiB;
    t.measure(row_of(fs, image, "resize (+1 MiB, stopped)"), [&](auto& s) { return s.v(origin).resize(size); });

    // Space: the first call on a new pool walks every extent map; a repeated
    // call finds them cached.
    t.measure(row_of(fs, image, "space (first call: FIEMAP walks)"), [&](auto& s) -> fr::result<fr::volume_space> {
      using pool_t = std::decay_t<decltype(s.pool)>;
      pool_t fresh(s.pool.config(), s.pool.fs_ops());
      FILE_REFLINK_TRY(auto v, fresh.init_volume(s.v(origin).config()));
      return v.space();
    });
    t.both("space warm-up", [&](auto& s) { return s.v(origin).space(); });
    t.measure(row_of(fs, image, "space (repeated: cached)"), [&](auto& s) { return s.v(origin).space(); }, 10, false);

    if (first_image) {
      t.measure(row_of(fs, "-", "import_data + 64 MiB + import_data_end"), [&](auto& s) -> fr::result<void> {
        auto& v = s.v(imp);
        FILE_REFLINK_TRYV(v.import_data(GiB));
        FILE_REFLINK_TRYV(
            s.pool.fs_ops().write(s.handle(), fr::path(imp + "-import.img"), 0, chunk_bytes().data(), 64 * MiB));
        return v.import_data_end(true);
      });
    }
  }
}

//! 32 snapshot volumes started at once from 2 threads, against their 32
//! floors replayed from 2 threads.
template <class Ops, class Replayer, class MakeReplayer>
void run_parallel_starts(trio<Ops, Replayer>& t, const std::string& fs, int iterations, MakeReplayer make_replayer) {
  constexpr int n = 32;
  std::vector<std::string> vids;
  for (int i = 0; i < n; ++i) {
    vids.push_back("appvms/disp" + std::to_string(i) + "/root");
    auto c = fr::volume_config::snapshot(vids.back(), "tmpl/t200/root");
    t.ours.vols.emplace(c.vid, t.ours.pool.init_volume(c).value());
    t.rec.vols.emplace(c.vid, t.rec.pool.init_volume(c).value());
  }
  // Once first: the volumes' directories exist from then on, as in use.
  for (auto& vid : vids) {
    t.both("start " + vid, [&](auto& s) { return s.v(vid).start(); });
    t.both("stop " + vid, [&](auto& s) { return s.v(vid).stop(); });
  }
  row& rw = row_of(fs, "1 GiB, ~200 extents", "32 snapshot starts, 2 threads (wall)");
  for (int it = 0; it < iterations; ++it) {
    std::vector<recording> calls;
    for (auto& vid : vids) calls.push_back(t.record("start " + vid, [&](auto& s) { return s.v(vid).start(); }));
    std::size_t syncs = 0;
    for (auto& c : calls) syncs += count(c, fr::fs_op::fsync);
    rw.fsyncs = syncs;
    Replayer r1 = make_replayer(), r2 = make_replayer();
    for (int i = 0; i < n; ++i) (i % 2 ? r2 : r1).prepare(calls[static_cast<std::size_t>(i)]);
    t.settle();
    {
      replay_error e1, e2;
      const auto t0 = clk::now();
      std::thread a([&] {
        for (int i = 0; i < n && !e1; i += 2) e1 = r1.run(calls[static_cast<std::size_t>(i)]);
      });
      std::thread b([&] {
        for (int i = 1; i < n && !e2; i += 2) e2 = r2.run(calls[static_cast<std::size_t>(i)]);
      });
      a.join();
      b.join();
      const auto t1 = clk::now();
      check_replay(e1, fs + " parallel starts");
      check_replay(e2, fs + " parallel starts");
      rw.other.push_back(us_between(t0, t1));
    }
    t.settle();
    {
      std::string err1, err2;
      const auto t0 = clk::now();
      std::thread a([&] {
        for (int i = 0; i < n && err1.empty(); i += 2)
          if (auto r = t.ours.v(vids[static_cast<std::size_t>(i)]).start(); !r) err1 = r.error().message();
      });
      std::thread b([&] {
        for (int i = 1; i < n && err2.empty(); i += 2)
          if (auto r = t.ours.v(vids[static_cast<std::size_t>(i)]).start(); !r) err2 = r.error().message();
      });
      a.join();
      b.join();
      const auto t1 = clk::now();
      if (!err1.empty() || !err2.empty()) broken(fs + " parallel starts: " + err1 + err2);
      rw.ours.push_back(us_between(t0, t1));
    }
    for (auto& vid : vids) t.both("stop " + vid, [&](auto& s) { return s.v(vid).stop(); });
  }
}

fr::pool_config config_of(const std::string& dir, bool reflinks);

//! Locks: volume B's start and stop while another Pool object (another
//! process, as far as the locks go) holds volume A in the middle of an
//! operation (a long copy, such as an export to a slow pipe), against the
//! same with nothing held. A ratio near 1 says B never waits for A.
void run_held_neighbour(const std::string& fs, const std::string& dir, bool reflinks, int iterations) {
  std::mutex mu;
  std::condition_variable cv;
  bool armed = false, reached = false, open = false;
  fr::pool_config hc = config_of(dir, reflinks);
  hc.log = [&](fr::log_level, const std::string& m) {
    std::unique_lock<std::mutex> lk(mu);
    if (!armed || m.find("vm/a") == std::string::npos) return;
    armed = false;
    reached = true;
    cv.notify_all();
    cv.wait(lk, [&] { return open; });
  };
  fr::Pool<fr::LinuxFsOps> holder(hc), pool(config_of(dir, reflinks));
  check(pool.setup(), fs + " held: setup");
  auto a = pool.init_volume(fr::volume_config::origin("vm/a", 64 << 20));
  auto b = pool.init_volume(fr::volume_config::origin("vm/b", 64 << 20));
  check(a, fs + " held");
  check(b, fs + " held");
  check(a.value().create(), fs + " held: create");
  check(b.value().create(), fs + " held: create");
  auto ha = holder.init_volume(fr::volume_config::origin("vm/a", 64 << 20));
  check(ha, fs + " held");
  row& r = row_of(fs, "64 MiB", "start+stop of B while another Pool holds A", "unheld");
  auto start_stop = [&] {
    const auto t0 = clk::now();
    check(b.value().start(), fs + " held: start B");
    check(b.value().stop(), fs + " held: stop B");
    return us_between(t0, clk::now());
  };
  (void)start_stop();
  for (int it = 0; it < iterations; ++it) {
    {
      std::lock_guard<std::mutex> lk(mu);
      armed = true;
      reached = open = false;
    }
    std::thread t([&] { check(ha.value().start(), fs + " held: start A"); });
    {
      std::unique_lock<std::mutex> lk(mu);
      cv.wait(lk, [&] { return reached; });
    }
    r.ours.push_back(start_stop());
    {
      std::lock_guard<std::mutex> lk(mu);
      open = true;
      cv.notify_all();
    }
    t.join();
    check(ha.value().stop(), fs + " held: stop A");
    r.other.push_back(start_stop());
  }
  r.note = "A's lock held by another Pool object for the whole measurement";
}

fr::pool_config config_of(const std::string& dir, bool reflinks) {
  fr::pool_config c;
  c.name = "bench";
  c.dir_path = dir;
  c.revisions_to_keep = 1;
  c.setup_check = reflinks;
  return c;
}

void sync_fs(int fd) {
  if (fd >= 0) ::syncfs(fd);
}

//! The whole workload on one Linux filesystem mounted at `mnt`.
void run_linux(const std::string& fs, const std::string& mnt, const options& o) {
  progress(fs);
  const bool reflinks = fs != "ext4";
  const std::string a = mnt + "/a", c = mnt + "/c", t_dir = mnt + "/t";
  const int mfd = ::open(mnt.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  trio<fr::LinuxFsOps, linux_replayer> t(config_of(a, reflinks), config_of(c, reflinks), fr::LinuxFsOps{},
                                         linux_replayer(c, t_dir), [mfd] { sync_fs(mfd); });
  t.both("setup", [](auto& s) { return s.pool.setup(); });
  t.ours.dir = t.ours.pool.fs_ops().open_dir(a, false).value().handle;
  t.rec.dir = t.rec.pool.fs_ops().inner().open_dir(c, false).value().handle;
  const int iterations = o.iterations ? o.iterations : o.short_mode ? 3 : 21;
  qubes_env q{true, t_dir};
  run_volume_ops(t, fs, 200, iterations, true, q);
  if (!o.short_mode) run_volume_ops(t, fs, 10000, std::max(3, iterations / 4), false, q);
  progress(fs + ": 32 starts");
  run_parallel_starts(t, fs, o.short_mode ? 1 : 5, [&] { return linux_replayer(c, t_dir); });
  progress(fs + ": a neighbour held");
  run_held_neighbour(fs, mnt + "/l", reflinks, iterations);
  ::close(mfd);
}

// ---------------------------------------------------------------------------
// The fallback copy against cp --sparse=always

void drop_cache(const std::string& p) {
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

void fsync_file(const std::string& p) {
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) broken("open " + p + ": " + std::strerror(errno));
  ::fsync(fd);
  ::close(fd);
}

std::uint64_t allocated(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_blocks) * 512 : 0;
}

//! Where a file holds data (SEEK_DATA/SEEK_HOLE), to compare two copies' holes.
std::vector<std::pair<std::uint64_t, std::uint64_t>> data_map(const std::string& p) {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) broken("open " + p + ": " + std::strerror(errno));
  std::vector<fr::detail::linux_impl::segment> segments;
  struct stat st;
  ::fstat(fd, &st);
  if (fr::detail::linux_impl::data_segments(fd, static_cast<std::uint64_t>(st.st_size), segments))
    broken("SEEK_DATA " + p + ": " + std::strerror(errno));
  ::close(fd);
  for (const auto& s : segments) {
    if (!out.empty() && out.back().second == s.offset)
      out.back().second += s.length;
    else
      out.emplace_back(s.offset, s.offset + s.length);
  }
  return out;
}

//! A source image: `size` bytes, 64 KiB of data every 640 KiB (a tenth).
void make_copy_source(const std::string& p, std::uint64_t size) {
  const int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(size)) < 0) broken("create " + p + ": " + std::strerror(errno));
  for (std::uint64_t off = 0; off + 64 * KiB <= size; off += 640 * KiB)
    if (fr::detail::pwrite_full(fd, chunk_bytes().data() + (off / (640 * KiB) % 512) * 64 * KiB, 64 * KiB, off))
      broken("write " + p);
  ::fsync(fd);
  ::close(fd);
}

void run_copy(const std::string& label, const std::string& src_dir, const std::string& dst_dir, std::uint64_t size,
              int iterations, int sync_fd_a, int sync_fd_b) {
  progress("copy, " + label);
  const std::string src = src_dir + "/copy-source.img";
  make_copy_source(src, size);
  char image[64];
  std::snprintf(image, sizeof image, "%llu MiB, %llu MiB data", static_cast<unsigned long long>(size / MiB),
                static_cast<unsigned long long>(size / 10 / MiB));
  row& rw = row_of(label, image, "fallback copy + fsync, cold", "cp");
  fr::LinuxFsOps ops;
  auto sh = ops.open_dir(src_dir, false);
  auto dh = ops.open_dir(dst_dir, false);
  check(sh, "open " + src_dir);
  check(dh, "open " + dst_dir);
  const std::string ours = dst_dir + "/copy-ours.img", theirs = dst_dir + "/copy-cp.img";
  std::string method;
  for (int i = 0; i < iterations; ++i) {
    auto settle = [&](const std::string& dst) {
      ::unlink(dst.c_str());
      sync_fs(sync_fd_a);
      sync_fs(sync_fd_b);
      drop_cache(src);
    };
    auto run_ours = [&] {
      settle(ours);
      const auto t0 = clk::now();
      auto r = fr::detail::copy_file(ops, sh.value().handle, "copy-source.img", dh.value().handle, "copy-ours.img",
                                     fr::copy_options{});
      check(r, label + " copy");
      fsync_file(ours);
      const auto t1 = clk::now();
      method = fr::to_string(r.value().method);
      rw.ours.push_back(us_between(t0, t1));
    };
    auto run_cp = [&] {
      settle(theirs);
      const auto t0 = clk::now();
      const char* argv[] = {"cp", "--sparse=always", src.c_str(), theirs.c_str(), nullptr};
      pid_t pid = 0;
      int status = 0;
      if (::posix_spawnp(&pid, "cp", nullptr, nullptr, const_cast<char* const*>(argv), environ) != 0 ||
          ::waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        broken(label + ": cp --sparse=always failed");
      fsync_file(theirs);
      const auto t1 = clk::now();
      rw.other.push_back(us_between(t0, t1));
    };
    if (i % 2 == 0) {
      run_ours();
      run_cp();
    } else {
      run_cp();
      run_ours();
    }
    // Holes kept: data exactly where cp --sparse=always puts it. (st_blocks
    // also counts ext4's extent tree blocks, which differ by a few KiB.)
    if (data_map(ours) != data_map(theirs)) broken(label + ": the copy's data and holes differ from cp's");
    const std::uint64_t a = allocated(ours), b = allocated(theirs);
    char note[200];
    std::snprintf(note, sizeof note, "via %s; same data segments as cp; allocated %.2f MiB, cp %.2f MiB",
                  method.c_str(), static_cast<double>(a) / MiB, static_cast<double>(b) / MiB);
    rw.note = note;
  }
  ::unlink(ours.c_str());
  ::unlink(theirs.c_str());
  ::unlink(src.c_str());
}

// ---------------------------------------------------------------------------
// changed_ranges, send and receive (btrfs)

//! Median of `f()`'s time in microseconds over `n` runs.
template <class F>
double median_us(int n, F&& f) {
  std::vector<double> t;
  for (int i = 0; i < n; ++i) {
    const auto t0 = clk::now();
    f();
    t.push_back(us_between(t0, clk::now()));
  }
  return quantile(t, 0.5);
}

//! Written to the sink: a count, and the bytes to `fd` if it is open.
struct counting_sink {
  std::uint64_t bytes = 0;
  int fd = -1;
  std::string* keep = nullptr;
  fr::stream_sink sink() {
    return [this](const void* d, std::size_t n) -> fr::result<void> {
      bytes += n;
      if (keep) keep->append(static_cast<const char*>(d), n);
      for (std::size_t done = 0; fd >= 0 && done < n;) {
        const ssize_t w = ::write(fd, static_cast<const char*>(d) + done, n - done);
        if (w < 0) return fr::errno_failure(errno, "write", "/dev/null");
        done += static_cast<std::size_t>(w);
      }
      return fr::success();
    };
  }
};

fr::stream_source source_of(const std::string& s) {
  auto pos = std::make_shared<std::size_t>(0);
  return [&s, pos](void* buf, std::size_t len) -> fr::result<std::size_t> {
    const std::size_t n = std::min(len, s.size() - *pos);
    std::memcpy(buf, s.data() + *pos, n);
    *pos += n;
    return n;
  };
}

//! The figures of `Volume::changed_ranges`, `send` and `receive` on one
//! filesystem (btrfs in the full run), printed as their own table.
void run_send_receive(const std::string& fs, const std::string& mnt, const options& o) {
  progress(fs + ": changed_ranges, send, receive");
  const int n = o.iterations ? o.iterations : o.short_mode ? 2 : 7;
  const std::string pa = mnt + "/sr-a", pb = mnt + "/sr-b";
  // --short runs on a small filesystem, beside the other measurements.
  const std::uint64_t image = o.short_mode ? 256 * MiB : GiB;
  const int mfd = ::open(mnt.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  fr::Pool<fr::LinuxFsOps> a(config_of(pa, true)), b(config_of(pb, true));
  check(a.setup(), "setup " + pa);
  check(b.setup(), "setup " + pb);
  fr::LinuxFsOps ops;
  auto ha = ops.open_dir(pa, false);
  check(ha, "open " + pa);
  const auto& h = ha.value().handle;
  auto made = a.init_volume(fr::volume_config::origin("bench/x", image));
  check(made, "init bench/x");
  auto x = made.value();
  check(x.create(), "create bench/x");
  // 1 GiB in 10,000 extents: 100 KiB of data every 104 KiB (--short: 256 MiB, 2,500).
  const std::uint64_t step = 104 * KiB, extent = 100 * KiB, extents = o.short_mode ? 2500 : 10000;
  check(x.import_data(image), "import bench/x");
  for (std::uint64_t i = 0; i < extents; ++i)
    check(ops.write(h, "bench/x-import.img", i * step, chunk_bytes().data() + (i % 600) * extent, extent),
          "write bench/x");
  check(x.import_data_end(true), "commit bench/x");
  // The receiver holds this image.
  {
    std::string full;
    counting_sink c{0, -1, &full};
    check(x.send(c.sink()), "send bench/x");
    check(b.receive("bench/x", source_of(full)), "receive bench/x");
  }
  // 1% changed in 100 places.
  const std::uint64_t piece = 104 * KiB, places = 100;
  check(x.start(), "start bench/x");
  for (std::uint64_t i = 0; i < places; ++i)
    check(ops.write(h, "bench/x-dirty.img", i * (image / places) + 12 * KiB, chunk_bytes().data() + i * piece, piece),
          "write bench/x-dirty");
  check(x.stop(), "stop bench/x");
  const std::uint64_t changed = piece * places;
  auto revs = x.revisions();
  check(revs, "revisions");
  const auto rev = revs.value().rbegin();
  const fr::path rev_file = "bench/x.img." + std::to_string(rev->first) + "@" + rev->second.timestamp;
  const fr::image_ref base = fr::image_ref::revision(rev->first);
  sync_fs(mfd);

  fr::changed_ranges_result ch;
  const double t_changed = median_us(n, [&] {
    auto r = x.changed_ranges(base);
    check(r, "changed_ranges");
    ch = r.value();
  });
  // The maps changed_ranges reads (storage_extents: on btrfs as root, the
  // subvolume's tree), and the same maps through FIEMAP.
  const double t_maps = median_us(n, [&] {
    check(ops.storage_extents(h, rev_file), "storage extents of the revision");
    check(ops.storage_extents(h, "bench/x.img"), "storage extents of the image");
  });
  // changed_ranges as a process without CAP_SYS_ADMIN runs it (FIEMAP).
  fr::LinuxFsOps::set_use_btrfs_tree_search(false);
  const double t_changed_fiemap = median_us(n, [&] { check(x.changed_ranges(base), "changed_ranges"); });
  fr::LinuxFsOps::set_use_btrfs_tree_search(true);
  const double t_fiemap = median_us(n, [&] {
    check(ops.extents(h, rev_file), "extents of the revision");
    check(ops.extents(h, "bench/x.img"), "extents of the image");
  });
  auto compare = [&] {
    auto rd = [&](const fr::path& f) {
      return [&ops, &h, f](std::uint64_t off, void* buf, std::size_t len) { return ops.read(h, f, off, buf, len); };
    };
    auto r = fr::detail::compare_data({fr::byte_range{0, image}}, image, image, rd(rev_file), rd("bench/x.img"), nullptr);
    check(r, "data comparison");
  };
  const double t_compare = median_us(o.short_mode ? 1 : 3, compare);
  std::vector<double> cold;
  for (int i = 0; i < (o.short_mode ? 1 : 3); ++i) {
    drop_cache(pa + "/" + rev_file.string());
    drop_cache(pa + "/bench/x.img");
    const auto t0 = clk::now();
    compare();
    cold.push_back(us_between(t0, clk::now()));
  }
  const double t_compare_cold = quantile(cold, 0.5);
  if (ch.method != fr::change_method::extent_map) broken("changed_ranges on " + fs + " compared data");

  counting_sink inc;
  check(x.send(inc.sink(), base), "incremental send");

  // Incremental against full send + receive, through a buffer in memory.
  auto y = b.get_volume("bench/x");
  check(y, "receiver bench/x");
  // Each increment applies to the base: from the second on, the receiver
  // reverts to it first (the increment before made it a revision).
  std::vector<double> incs;
  for (int i = 0; i < n; ++i) {
    if (i > 0) check(y.value().revert(), "receiver revert");
    std::string s;
    counting_sink c{0, -1, &s};
    const auto t0 = clk::now();
    check(x.send(c.sink(), base), "incremental send");
    auto r = y.value().receive(source_of(s));
    const auto t1 = clk::now();
    check(r, "incremental receive");
    incs.push_back(us_between(t0, t1));
  }
  const double t_inc_sr = quantile(incs, 0.5);
  const double t_full = median_us(n, [&] {
    std::string s;
    counting_sink c{0, -1, &s};
    check(x.send(c.sink()), "full send");
    check(y.value().receive(source_of(s)), "full receive");
  });

  // 102 MiB of data in 1 GiB: its full stream, and sending it to /dev/null
  // against cp --sparse=always of the image to a tmpfs.
  auto made_z = a.init_volume(fr::volume_config::origin("bench/z", image));
  check(made_z, "init bench/z");
  auto z = made_z.value();
  check(z.create(), "create bench/z");
  check(z.import_data(image), "import bench/z");
  std::uint64_t z_data = 0;
  for (std::uint64_t off = 0; off + 64 * KiB <= image; off += 640 * KiB) {
    check(ops.write(h, "bench/z-import.img", off, chunk_bytes().data() + (off / (640 * KiB) % 512) * 64 * KiB, 64 * KiB),
          "write bench/z");
    z_data += 64 * KiB;
  }
  check(z.import_data_end(true), "commit bench/z");
  counting_sink zfull;
  check(z.send(zfull.sink()), "full send bench/z");
  const std::string z_clean = pa + "/bench/z.img";
  const std::string shm = "/dev/shm/file_reflink_bench_cp.img";
  std::vector<double> ours, cp;
  for (int i = 0; i < n; ++i) {
    drop_cache(z_clean);
    const int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    counting_sink c{0, null_fd, nullptr};
    auto t0 = clk::now();
    check(z.send(c.sink()), "send to /dev/null");
    ours.push_back(us_between(t0, clk::now()));
    ::close(null_fd);
    ::unlink(shm.c_str());
    drop_cache(z_clean);
    t0 = clk::now();
    const char* argv[] = {"cp", "--sparse=always", z_clean.c_str(), shm.c_str(), nullptr};
    pid_t pid = 0;
    int status = 0;
    if (::posix_spawnp(&pid, "cp", nullptr, nullptr, const_cast<char* const*>(argv), environ) != 0 ||
        ::waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
      broken("cp --sparse=always to /dev/shm failed");
    cp.push_back(us_between(t0, clk::now()));
    ::unlink(shm.c_str());
  }
  const double t_send_null = quantile(ours, 0.5), t_cp = quantile(cp, 0.5);
  ::close(mfd);

  auto mib = [](std::uint64_t v) { return static_cast<double>(v) / MiB; };
  std::printf("\nchanged_ranges, send, receive on %s (medians of %d runs%s)\n\n", fs.c_str(), n,
              o.short_mode ? "; --short: images of 256 MiB where the rows say 1 GiB, 2,500 extents" : "");
  std::printf("| figure | measured | target |\n|---|---|---|\n");
  std::printf("| changed_ranges, 1 GiB of data in 10k extents, 1%% changed in 100 places (%s, %zu ranges, %.2f MiB) | %s; reading both extent maps (storage_extents) %s: %.2fx; both maps through FIEMAP %s: %.2fx | <= 2x the extent maps |\n",
              fr::to_string(ch.method), ch.ranges.size(), mib(ch.bytes()), fmt_time(t_changed).c_str(),
              fmt_time(t_maps).c_str(), t_changed / t_maps, fmt_time(t_fiemap).c_str(), t_changed / t_fiemap);
  std::printf("| the same, against comparing the data (2 GiB read, in the page cache) | %s: changed_ranges %.0fx faster | >= 50x |\n",
              fmt_time(t_compare).c_str(), t_compare / t_changed);
  std::printf("| the same, the maps through FIEMAP (a process without CAP_SYS_ADMIN) | changed_ranges %s: %.0fx faster than the cached comparison | (information) |\n",
              fmt_time(t_changed_fiemap).c_str(), t_compare / t_changed_fiemap);
  std::printf("| the same, against comparing the data read from the disk | %s: changed_ranges %.0fx faster | >= 50x |\n",
              fmt_time(t_compare_cold).c_str(), t_compare_cold / t_changed);
  std::printf("| incremental stream, %.2f MiB changed | %.2f MiB: %.4fx the changed bytes (+%.1f KiB) | <= 1.05x + 64 KiB |\n",
              mib(changed), mib(inc.bytes), static_cast<double>(inc.bytes) / static_cast<double>(changed),
              (static_cast<double>(inc.bytes) - static_cast<double>(changed)) / KiB);
  std::printf("| full stream, 1 GiB holding %.1f MiB of data | %.2f MiB: %.4fx the data (+%.1f KiB) | <= 1.01x + 64 KiB |\n",
              mib(z_data), mib(zfull.bytes), static_cast<double>(zfull.bytes) / static_cast<double>(z_data),
              (static_cast<double>(zfull.bytes) - static_cast<double>(z_data)) / KiB);
  std::printf("| incremental send + receive against full send + receive (the 10k-extent image), through memory, with the commit's fsyncs | %s against %s: %.1f%% | <= 10%% |\n",
              fmt_time(t_inc_sr).c_str(), fmt_time(t_full).c_str(), 100.0 * t_inc_sr / t_full);
  std::printf("| full send of the 102 MiB image to /dev/null, cold, against cp --sparse=always to tmpfs | %s (%.0f MiB/s) against %s (%.0f MiB/s): %.2fx cp's throughput | >= 0.8x |\n",
              fmt_time(t_send_null).c_str(), mib(z_data) / (t_send_null / 1e6), fmt_time(t_cp).c_str(),
              mib(z_data) / (t_cp / 1e6), t_cp / t_send_null);
  std::fflush(stdout);
}

// ---------------------------------------------------------------------------
// MemoryFsOps

void run_memory(const options& o) {
  progress("memory");
  fr::MemoryFsOps fs;
  trio<fr::MemoryFsOps, memory_replayer> t(config_of("/bench/a", true), config_of("/bench/c", true), fs,
                                          memory_replayer(fs, "/bench/c", "/bench/t"), [] {});
  t.both("setup", [](auto& s) { return s.pool.setup(); });
  t.ours.dir = fs.open_dir("/bench/a", false).value().handle;
  t.rec.dir = fs.open_dir("/bench/c", false).value().handle;
  const int iterations = o.iterations ? o.iterations : o.short_mode ? 5 : 51;
  run_volume_ops(t, "memory", 200, iterations, true, qubes_env{});
  if (!o.short_mode) run_volume_ops(t, "memory", 10000, std::max(3, iterations / 2), false, qubes_env{});
  run_parallel_starts(t, "memory", o.short_mode ? 2 : 11, [&] { return memory_replayer(fs, "/bench/c", "/bench/t"); });

  progress("memory: targets");
  // The targets of the memory policy itself.
  {
    fr::MemoryFsOps m;
    fr::Pool<fr::MemoryFsOps> pool(config_of("/pool", true), m);
    check(pool.setup(), "memory setup");
    auto v = pool.init_volume(fr::volume_config::origin("appvms/work/private", GiB)).value();
    check(v.create(), "memory create");
    check(v.start(), "memory start");
    auto h = m.open_dir("/pool", false).value().handle;
    for (int i = 0; i < 200; ++i)
      check(m.write(h, "appvms/work/private-dirty.img", static_cast<std::uint64_t>(i) * 5 * MiB, chunk_bytes().data(), 4 * KiB),
            "memory write");
    check(v.stop(), "memory stop");
    const int cycles = o.short_mode ? 2000 : 50000;
    row& rw = row_of("memory", "1 GiB, ~200 extents", "origin start+stop cycle (target: >= 100000/s)");
    std::vector<double> cpu;
    for (int round = 0; round < (o.short_mode ? 3 : 9); ++round) {
      const double c0 = cpu_us();
      const auto t0 = clk::now();
      for (int i = 0; i < cycles; ++i) {
        check(v.start(), "memory cycle start");
        check(v.stop(), "memory cycle stop");
      }
      const auto t1 = clk::now();
      cpu.push_back((cpu_us() - c0) / cycles);
      rw.ours.push_back(us_between(t0, t1) / cycles);
    }
    char note[160];
    std::snprintf(note, sizeof note, "%.0f cycles/s of CPU time (median %.2f us, best %.2f us); %.0f/s wall",
                  1e6 / quantile(cpu, 0.5), quantile(cpu, 0.5), quantile(cpu, 0), 1e6 / quantile(rw.ours, 0.5));
    rw.note = note;
  }
  {
    fr::MemoryFsOps m;
    auto h = m.open_dir("/", false).value().handle;
    check(m.create(h, "big", 1ull << 40, fr::create_mode::exclusive), "memory create 1 TiB");
    for (std::uint64_t i = 0; i < 1000; ++i)
      check(m.write(h, "big", i << 30, chunk_bytes().data(), 4 * KiB), "memory write 1 TiB");
    row& rw = row_of("memory", "1 TiB, 1000 extents", "clone (target: < 50 us)");
    for (int i = 0; i < 101; ++i) {
      const auto t0 = clk::now();
      check(m.clone(h, "big", h, "big-clone"), "memory clone");
      const auto t1 = clk::now();
      rw.ours.push_back(us_between(t0, t1));
      check(m.remove(h, "big-clone"), "memory remove");
    }
  }
  // Memory per volume, two ways: an origin volume alone in its directory
  // (its clean image, precache and one revision), and a Qubes VM's three
  // volumes sharing one (a stopped snapshot or volatile volume has no file).
  for (bool qubes_vm : {false, true}) {
    fr::MemoryFsOps m;
    fr::Pool<fr::MemoryFsOps> pool(config_of("/pool", true), m);
    check(pool.setup(), "memory setup");
    auto tmpl = pool.init_volume(fr::volume_config::origin("vm-templates/debian/root", GiB)).value();
    check(tmpl.create(), "memory create template");
    const int n = o.short_mode ? 200 : 2000;
    const std::size_t before = m.memory_bytes();
    int volumes = 0;
    for (int i = 0; i < n; ++i) {
      const std::string dir = "appvms/vm" + std::to_string(i) + "/";
      auto v = pool.init_volume(fr::volume_config::origin(dir + "private", GiB)).value();
      check(v.create(), "memory create");
      check(v.start(), "memory start");
      check(v.stop(), "memory stop");
      ++volumes;
      if (qubes_vm) {
        auto root = pool.init_volume(fr::volume_config::snapshot(dir + "root", "vm-templates/debian/root")).value();
        auto vol = pool.init_volume(fr::volume_config::volatile_volume(dir + "volatile", GiB)).value();
        for (auto* x : {&root, &vol}) {
          check(x->start(), "memory start");
          check(x->stop(), "memory stop");
        }
        volumes += 2;
      }
    }
    const std::size_t after = m.memory_bytes();
    row& rw = row_of("memory", "1 GiB, no data",
                     qubes_vm ? "memory per volume, Qubes VM layout (target: <= 1 KiB)"
                              : "memory per origin volume alone in its directory (target: <= 1 KiB)");
    char note[200];
    std::snprintf(note, sizeof note, "%.0f bytes (MemoryFsOps::memory_bytes over %d volumes)%s",
                  static_cast<double>(after - before) / volumes, volumes,
                  qubes_vm ? ": private (origin), root (snapshot), volatile per VM directory"
                           : ": its directory, clean image, precache, 1 revision, unflushed names");
    rw.note = note;
  }
}

// ---------------------------------------------------------------------------

std::string first_line_of(const std::string& file, const std::string& key) {
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);)
    if (line.compare(0, key.size(), key) == 0) return line;
  return "";
}

//! The device and filesystem that hold `where` (where the loop images live).
std::string disk_of(const std::string& where) {
  std::ifstream in("/proc/mounts");
  std::string best_dir, best;
  for (std::string dev, dir, type, rest; in >> dev >> dir >> type && std::getline(in, rest);) {
    const bool covers = dir == "/" || (where.compare(0, dir.size(), dir) == 0 &&
                                       (where.size() == dir.size() || where[dir.size()] == '/'));
    if (covers && dir.size() >= best_dir.size() && type != "rootfs") {
      best_dir = dir;
      best = dev + ", " + type;
    }
  }
  return best;
}

void describe_machine(std::ostream& out, const std::string& images, bool direct_io) {
  struct utsname u;
  ::uname(&u);
  std::string cpu = first_line_of("/proc/cpuinfo", "model name");
  if (auto p = cpu.find(':'); p != std::string::npos) cpu = cpu.substr(p + 2);
  std::string mem = first_line_of("/proc/meminfo", "MemTotal");
  double load[3] = {0, 0, 0};
  ::getloadavg(load, 3);
  out << "machine: " << cpu << ", " << std::thread::hardware_concurrency() << " CPUs; " << mem << "; kernel "
      << u.release << "; loop images in " << (images.empty() ? "-" : images) << " (" << disk_of(images)
      << "; loop " << (direct_io ? "direct I/O" : "buffered")
      << "); load "
      << load[0] << " " << load[1] << " " << load[2] << "\n";
}

// ---------------------------------------------------------------------------
// The command's start-up: what a volume start costs through file-reflink
// beyond the library's own work, beside /bin/true and `file-reflink --help`.

#ifdef FILE_REFLINK_COMMAND
std::string command_table;  // printed after the main table

struct process_time {
  double wall_us = 0, cpu_us = 0;
};

//! Run `argv` (stdout and stderr to /dev/null); its wall time and the CPU
//! time it used (user and system, from the kernel's accounting).
process_time run_process(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  ::posix_spawn_file_actions_init(&fa);
  ::posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  ::posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  const auto t0 = clk::now();
  pid_t pid = -1;
  if (::posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ) != 0) {
    std::fprintf(stderr, "cannot run %s\n", argv[0]);
    std::exit(1);
  }
  ::posix_spawn_file_actions_destroy(&fa);
  int status = 0;
  struct rusage ru {};
  while (::wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
  }
  const auto t1 = clk::now();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "%s %s failed (status %d)\n", argv[0], args.size() > 1 ? argv[1] : "", status);
    std::exit(1);
  }
  auto us = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) * 1e6 + static_cast<double>(tv.tv_usec); };
  return {us_between(t0, t1), us(ru.ru_utime) + us(ru.ru_stime)};
}

void run_command_startup(const std::string& where, bool reflinks, const options& o) {
  progress("command start-up in " + where);
  // FILE_REFLINK_BENCH_COMMAND: another build of the command, to compare.
  const char* other = std::getenv("FILE_REFLINK_BENCH_COMMAND");
  const std::string cmd = other && *other ? other : FILE_REFLINK_COMMAND;
  const std::string dir = where + "/command-pool", vid = "vm/private";
  std::vector<std::string> init{cmd, "pool", "init", dir, "--quiet"};
  if (!reflinks) init.push_back("--no-setup-check");
  run_process(init);
  run_process({cmd, "volume", "create", dir, vid, "--size", "64M"});
  fr::pool_config cfg = config_of(dir, reflinks);
  cfg.catalog = true;
  // What a command must do too: a new Pool object for each operation, which
  // reads the volume's config from the catalog.
  auto library = [&](bool start) {
    fr::Pool<fr::LinuxFsOps> pool(cfg);
    auto v = pool.get_volume(vid);
    check(v, "library: get_volume");
    if (start)
      check(v.value().start(), "library: start");
    else
      check(v.value().stop(), "library: stop");
  };
  const int iterations = o.iterations ? o.iterations : o.short_mode ? 5 : 41;
  std::vector<double> wall[4], cpu[4];
  // A start alone, through the command and through the library.
  std::vector<double> start_wall[2];
  const char* names[4] = {"/bin/true", "file-reflink --help", "file-reflink volume start + stop",
                          "the library: start + stop in-process"};
  for (int i = 0; i < iterations; ++i) {
    // In turn, so that a drift of the machine's speed touches all four.
    process_time t = run_process({"/bin/true"});
    wall[0].push_back(t.wall_us), cpu[0].push_back(t.cpu_us);
    t = run_process({cmd, "--help"});
    wall[1].push_back(t.wall_us), cpu[1].push_back(t.cpu_us);
    process_time a = run_process({cmd, "volume", "start", dir, vid}), b = run_process({cmd, "volume", "stop", dir, vid});
    wall[2].push_back(a.wall_us + b.wall_us), cpu[2].push_back(a.cpu_us + b.cpu_us);
    start_wall[0].push_back(a.wall_us);
    const double c0 = cpu_us();
    const auto t0 = clk::now();
    library(true);
    const auto t1 = clk::now();
    library(false);
    wall[3].push_back(us_between(t0, clk::now())), cpu[3].push_back(cpu_us() - c0);
    start_wall[1].push_back(us_between(t0, t1));
  }
  run_process({cmd, "volume", "remove", dir, vid});
  std::ostringstream out;
  out << "command start-up (" << cmd << " in " << where << ", an origin volume of 64 MiB, medians of " << iterations
      << " runs, in turn)\n";
  char line[200];
  std::snprintf(line, sizeof line, "  %-46s %10s %10s\n", "", "wall", "cpu");
  out << line;
  for (int k = 0; k < 4; ++k) {
    std::snprintf(line, sizeof line, "  %-46s %10s %10s\n", names[k], fmt_time(quantile(wall[k], 0.5)).c_str(),
                  fmt_time(quantile(cpu[k], 0.5)).c_str());
    out << line;
  }
  auto diff = [&](int a, int b, std::vector<double>* v) {
    std::vector<double> d;
    for (std::size_t i = 0; i < v[a].size(); ++i) d.push_back(v[a][i] - v[b][i]);
    return fmt_time(quantile(d, 0.5));
  };
  std::snprintf(line, sizeof line, "  %-46s %10s %10s\n", "--help beyond /bin/true", diff(1, 0, wall).c_str(),
                diff(1, 0, cpu).c_str());
  out << line;
  std::snprintf(line, sizeof line, "  %-46s %10s %10s\n", "start + stop: the command beyond the library",
                diff(2, 3, wall).c_str(), diff(2, 3, cpu).c_str());
  out << line;
  std::snprintf(line, sizeof line, "  %-46s %10s %10s\n", "  per command (start, or stop)",
                fmt_time((quantile(wall[2], 0.5) - quantile(wall[3], 0.5)) / 2).c_str(),
                fmt_time((quantile(cpu[2], 0.5) - quantile(cpu[3], 0.5)) / 2).c_str());
  out << line;
  // What no program can avoid here is a process: the command's own cost is
  // what it takes beyond a bare process and the library's work.
  {
    std::vector<double> own;
    for (std::size_t i = 0; i < wall[2].size(); ++i) own.push_back((wall[2][i] - wall[3][i]) / 2 - wall[0][i]);
    std::snprintf(line, sizeof line, "  %-46s %10s\n", "  per command, beyond /bin/true and the library",
                  fmt_time(quantile(own, 0.5)).c_str());
    out << line;
    std::vector<double> start_beyond;
    for (std::size_t i = 0; i < start_wall[0].size(); ++i) start_beyond.push_back(start_wall[0][i] - start_wall[1][i]);
    std::snprintf(line, sizeof line, "  %-46s %10s\n", "a start: file-reflink volume start",
                  fmt_time(quantile(start_wall[0], 0.5)).c_str());
    out << line;
    std::snprintf(line, sizeof line, "  %-46s %10s\n", "a start: the library in-process",
                  fmt_time(quantile(start_wall[1], 0.5)).c_str());
    out << line;
    std::snprintf(line, sizeof line, "  %-46s %10s\n", "a start: the command beyond the library",
                  fmt_time(quantile(start_beyond, 0.5)).c_str());
    out << line;
  }
  command_table = out.str();
}
#endif

}  // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--short") {
      o.short_mode = true;
    } else if (a == "--only" && i + 1 < argc) {
      std::stringstream ss(argv[++i]);
      for (std::string x; std::getline(ss, x, ',');) o.only.push_back(x);
    } else if (a == "--iterations" && i + 1 < argc) {
      o.iterations = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--short] [--only btrfs,xfs,ext4,memory,command,send] [--iterations N]\n",
                   argv[0]);
      return 2;
    }
  }
  // mkfs lives in sbin.
  std::string path_env = std::getenv("PATH") ? std::getenv("PATH") : "";
  ::setenv("PATH", (path_env + ":/usr/sbin:/sbin:/usr/bin:/bin").c_str(), 1);

  if (o.wants("memory")) run_memory(o);

  std::string skipped;
  // Static: its destructor (unmount, remove the directories) runs at exit too.
  static scratch_mounts mounts;
  std::map<std::string, std::string> mnt;
  const bool want_linux = o.wants("btrfs") || o.wants("xfs") || o.wants("ext4") || o.wants("send");
  if (want_linux) {
    // The full run puts the images on the disk (/tmp); the short one in
    // memory where it can (/dev/shm): it only checks that nothing is broken,
    // and freeing disk images costs tens of seconds where /tmp discards.
    struct statvfs shm {};
    const bool in_memory = o.short_mode && ::statvfs("/dev/shm", &shm) == 0 &&
                           static_cast<std::uint64_t>(shm.f_bavail) * shm.f_frsize > 4 * GiB;
    if (std::string why = mounts.enter(in_memory ? "/dev/shm" : "/tmp"); !why.empty()) {
      skipped = "cannot make loop filesystems: " + why;
    } else {
      // ext4 is the destination of the copy from btrfs too.
      for (const char* fs : {"ext4", "btrfs", "xfs"}) {
        // The send section runs on btrfs, and on XFS too in the full run.
        if (!o.wants(fs) && !(std::string(fs) == "ext4" && o.wants("btrfs")) &&
            !(std::string(fs) == "btrfs" && o.wants("send")) &&
            !(std::string(fs) == "xfs" && o.wants("send") && !o.short_mode))
          continue;
        std::string why2;
        std::string m = mounts.make(fs, o.short_mode ? 2 * GiB : 6 * GiB, !o.short_mode, why2);
        if (m.empty()) {
          skipped += std::string(skipped.empty() ? "" : "; ") + fs + ": " + why2;
          continue;
        }
        mnt[fs] = m;
      }
    }
  }
  for (const char* fs : {"btrfs", "xfs", "ext4"})
    if (o.wants(fs) && mnt.count(fs)) run_linux(fs, mnt[fs], o);
  if (o.wants("send") && mnt.count("btrfs")) run_send_receive("btrfs", mnt["btrfs"], o);
  if (o.wants("send") && !o.short_mode && mnt.count("xfs")) run_send_receive("xfs", mnt["xfs"], o);

  if (mnt.count("ext4")) {
    const std::uint64_t size = o.short_mode ? 256 * MiB : GiB;
    const int iterations = o.short_mode ? 2 : 7;
    const std::string e4 = mnt["ext4"] + "/copies";
    ::mkdir(e4.c_str(), 0755);
    const int fd_e4 = ::open(mnt["ext4"].c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (o.wants("ext4")) run_copy("ext4 to ext4", e4, e4, size, iterations, fd_e4, -1);
    if (mnt.count("btrfs") && o.wants("btrfs")) {
      const std::string b = mnt["btrfs"] + "/copies";
      ::mkdir(b.c_str(), 0755);
      const int fd_b = ::open(mnt["btrfs"].c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      run_copy("btrfs to ext4", b, e4, size, iterations, fd_b, fd_e4);
      ::close(fd_b);
    }
    ::close(fd_e4);
  }

#ifdef FILE_REFLINK_COMMAND
  if (o.wants("command")) {
    // On btrfs when it is mounted (reflinks, as a VM host has them), else in
    // a temporary directory.
    std::string where = mnt.count("btrfs") ? mnt["btrfs"] : "";
    char tmpl[] = "/var/tmp/file-reflink-bench.XXXXXX";
    const bool own = where.empty() && ::mkdtemp(tmpl) != nullptr;
    if (own) where = tmpl;
    if (!where.empty()) run_command_startup(where, mnt.count("btrfs") > 0, o);
    if (own) std::filesystem::remove_all(tmpl);
  }
#endif

  std::cout << "\nfile_reflink_bench" << (o.short_mode ? " --short" : "") << "\n";
  describe_machine(std::cout, mounts.dir(), mounts.direct_io());
  std::cout << "\n";
  print_table(std::cout);
#ifdef FILE_REFLINK_COMMAND
  std::cout << "\n" << command_table;
#endif
  std::cout.flush();
  if (!skipped.empty()) {
    std::fprintf(stderr, "skipped: %s\n", skipped.c_str());
    if (want_linux && mnt.empty()) return 77;
  }
  return 0;
}
