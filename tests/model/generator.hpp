// SPDX-License-Identifier: BSL-1.0
//! \file
//! The seeded generator of step sequences over several volumes of one pool,
//! and the runner: run a sequence, and when the library and the model
//! disagree, shrink it (chunks of steps, then single steps, removed while a
//! failure of the same kind remains) and print the minimal sequence as C++.
//!
//! A step is a closure over a world; its parameters are fixed when it is
//! generated (from the model's state at that point), so a sequence replays
//! the same way, and any subsequence still runs.
#pragma once

#include "world.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace file_reflink::model_test {

//! What the generator leaves out (FILE_REFLINK_MODEL_OFF): a step family, or
//! "odd_names" (only plain VM names), "keep_change" (restarts keep every
//! revisions_to_keep), "snapdis" (no volume with snapshots disabled),
//! "chains" (sources are origins only); and the check "revisions_list".
struct switches {
  std::set<std::string> off;
  bool on(const std::string& what) const { return !off.count(what); }
  static switches parse(const char* text) {
    switches s;
    std::string t = text ? text : "";
    for (std::size_t start = 0; start <= t.size();) {
      std::size_t comma = t.find(',', start);
      if (comma == std::string::npos) comma = t.size();
      if (comma > start) s.off.insert(t.substr(start, comma - start));
      start = comma + 1;
    }
    return s;
  }
  std::string text() const {
    std::string out;
    for (auto& x : off) out += (out.empty() ? "" : ",") + x;
    return out;
  }
};

//! A deterministic source of numbers: the same seed gives the same sequence
//! with every compiler and standard library.
class rng {
public:
  explicit rng(std::uint64_t seed) : s_(seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull) {}
  std::uint64_t next() {
    // splitmix64
    std::uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  std::uint64_t below(std::uint64_t n) { return n ? next() % n : 0; }
  bool chance(unsigned percent) { return below(100) < percent; }
  template <class T>
  const T& pick(const std::vector<T>& v) {
    return v[static_cast<std::size_t>(below(v.size()))];
  }

private:
  std::uint64_t s_;
};

//! One volume the sequence may register: its vid and the role it plays.
struct plan {
  std::string vid;
  volume_kind kind = volume_kind::origin;
  std::string source;
  std::uint64_t size = 8192;
};

template <class Fx>
class generator {
public:
  using world_type = world<Fx>;
  using step = std::function<void(world_type&)>;

  generator(std::uint64_t seed, const switches& sw) : r_(seed), sw_(sw) { make_catalog(); }

  //! The pool's revisions_to_keep for this sequence.
  int pool_keep() { return pool_keep_; }

  //! The next step, chosen from the world's current state.
  step next(const world_type& w) {
    const pool_model& m = w.model();
    const unsigned roll = static_cast<unsigned>(r_.below(1000));
    if (roll < 15 && sw_.on("restart")) return restart(m);
    if (roll < 25 && sw_.on("recover")) return [](world_type& x) { x.recover(); };
    if (roll < 45 && Fx::real == false && sw_.on("clock")) {
      const std::int64_t sec = interesting_time();
      const auto nsec = static_cast<std::uint32_t>(r_.below(1000000000));
      static const std::vector<std::int64_t> advances{0, 0, 300000000, 1000000000, 1000000000, 86400000000000};
      const std::int64_t adv = r_.pick(advances);
      return [sec, nsec, adv](world_type& x) { x.clock(sec, nsec, adv); };
    }
    // A volume: mostly a registered one.
    std::vector<const plan*> reg, unreg;
    for (auto& p : catalog_) (w.registered(p.vid) ? reg : unreg).push_back(&p);
    const plan& p = reg.empty() || (!unreg.empty() && r_.chance(reg.size() < 3 ? 35 : 8)) ? *r_.pick(unreg.empty() ? reg : unreg)
                                                                                          : *r_.pick(reg);
    if (!w.registered(p.vid)) return init(p);
    return volume_step(p, m, *m.find(p.vid));
  }

private:
  // ---- the vids of this sequence ---------------------------------------------

  void make_catalog() {
    const bool odd = sw_.on("odd_names");
    std::vector<std::string> templates{"tpl", "deb12"}, vms{"work", "personal", "sys-net", "d1"};
    // "appvms/backup" has the file "appvms/backup.img", the directory of
    // the VM "backup.img": one of the two is refused at init_volume. The pair
    // comes last and is no source of another volume.
    const bool pair = r_.chance(20);
    if (odd) {
      templates.push_back("sys-import");
      for (const char* n : {"sys-import", "work-dirty", "x-precache", "a.img.b"}) vms.push_back(n);
      if (!pair) vms.push_back("backup.img");
    }
    static const std::vector<std::uint64_t> sizes{4096, 8192, 6144, 12288, 5000};
    const std::vector<int> keeps{1, 1, 0, 3, -1};
    pool_keep_ = sw_.on("snapdis") ? keeps[static_cast<std::size_t>(r_.below(keeps.size()))]
                                   : keeps[static_cast<std::size_t>(r_.below(keeps.size() - 1))];
    std::vector<std::string> roots;
    const std::size_t ntpl = 1 + r_.below(2);
    for (std::size_t i = 0; i < ntpl; ++i) {
      std::string t = r_.pick(templates);
      templates.erase(std::find(templates.begin(), templates.end(), t));
      add({"vm-templates/" + t + "/root", volume_kind::origin, "", r_.pick(sizes)});
      roots.push_back("vm-templates/" + t + "/root");
    }
    const std::size_t nvm = 1 + r_.below(3);
    for (std::size_t i = 0; i < nvm; ++i) {
      std::string v = r_.pick(vms);
      vms.erase(std::find(vms.begin(), vms.end(), v));
      const std::string d = "appvms/" + v + "/";
      if (r_.chance(75)) add({d + "private", volume_kind::origin, "", r_.pick(sizes)});
      if (r_.chance(75)) {
        // The root: a snapshot of a template, or an origin-snapshot of a
        // template or of another root that is one (a chain).
        const unsigned k = static_cast<unsigned>(r_.below(100));
        std::string src = r_.pick(roots);
        if (k >= 85 && sw_.on("chains")) src = r_.pick(all_saving());
        add({d + "root", k < 50 ? volume_kind::snapshot : volume_kind::origin_snapshot, src, r_.pick(sizes)});
        if (k >= 50) roots.push_back(d + "root");
      }
      if (r_.chance(40)) add({d + "volatile", volume_kind::volatile_, "", r_.pick(sizes)});
    }
    if (pair) {
      add({"appvms/backup", volume_kind::origin, "", r_.pick(sizes)});
      if (odd) add({"appvms/backup.img/private", volume_kind::origin, "", r_.pick(sizes)});
    }
    if (odd && r_.chance(10)) add({r_.chance(50) ? "appvms/sys-import" : "appvms/x-precache", volume_kind::origin, "", 4096});
  }
  void add(plan p) { catalog_.push_back(std::move(p)); }
  std::vector<std::string> all_saving() const {
    std::vector<std::string> out;
    for (auto& p : catalog_)
      if (saves(p.kind)) out.push_back(p.vid);
    return out;
  }

  // ---- parameters -------------------------------------------------------------

  std::optional<int> some_keep(bool origin) {
    const unsigned k = static_cast<unsigned>(r_.below(100));
    if (k < 30) return std::nullopt;
    if (k < 45 && origin && sw_.on("snapdis")) return -1;
    if (k < 60) return 0;
    if (k < 85) return 1;
    return 3;
  }

  //! Times a filesystem has trouble with, and ordinary ones.
  std::int64_t interesting_time() {
    switch (r_.below(14)) {
      case 0: return -1 - static_cast<std::int64_t>(r_.below(2000000000));           // before 1970
      case 1: return INT32_MIN - static_cast<std::int64_t>(r_.below(3));              // 1901: the 32-bit edge
      case 2: return INT32_MAX + static_cast<std::int64_t>(r_.below(3));              // 2038
      case 3: return 9223372036 + static_cast<std::int64_t>(r_.below(1000000000));    // after 2262 (ns overflow)
      case 4: return 17179869184 + static_cast<std::int64_t>(r_.below(1000000000));   // 2514 and on
      case 5: return first_stamp_second + static_cast<std::int64_t>(r_.below(1000000));  // year 0000
      case 6: return first_stamp_second - 1 - static_cast<std::int64_t>(r_.below(1000000000000));  // before year 0
      case 7: return last_stamp_second - static_cast<std::int64_t>(r_.below(1000000));   // year 9999
      case 8: return last_stamp_second + 1 + static_cast<std::int64_t>(r_.below(1000000000000));  // beyond 9999
      case 9: return r_.chance(50) ? INT64_MAX / 2 : INT64_MIN / 2;
      case 10: return r_.chance(50) ? 0 : -1;
      default: return 1709294400 + static_cast<std::int64_t>(r_.below(100000000));  // 2024 and on
    }
  }

  static std::vector<std::string> labels() { return {"gold", "base", "v1.2", "pre-upgrade", "x+y"}; }
  std::string some_label(const volume& v) {
    std::vector<std::string> have;
    for (auto& rv : v.revs)
      for (auto& l : rv.labels) have.push_back(l);
    const unsigned k = static_cast<unsigned>(r_.below(100));
    if (k < 60 && !have.empty()) return r_.pick(have);
    if (k < 95) return r_.pick(labels());
    static const std::vector<std::string> bad{"12", "-x", "a b", "", ".hidden", "a/b"};
    return r_.pick(bad);
  }
  std::uint64_t some_number(const volume& v) {
    if (!v.revs.empty() && r_.chance(85)) return v.revs[static_cast<std::size_t>(r_.below(v.revs.size()))].n;
    return r_.chance(50) ? pool_model::next_number(v) : r_.below(3);
  }
  //! A range inside `size` bytes (now and then one that reaches beyond).
  std::pair<std::uint64_t, std::uint64_t> some_range(std::uint64_t size, std::uint64_t max_len, bool may_exceed) {
    if (may_exceed && r_.chance(8)) return {r_.below(size + 1), size + 1 + r_.below(4096)};
    if (r_.chance(30) && size >= 4096) {
      const std::uint64_t blocks = size / 4096;
      const std::uint64_t b = r_.below(blocks);
      return {b * 4096, std::min<std::uint64_t>(4096 * (1 + r_.below(blocks - b)), size - b * 4096)};
    }
    const std::uint64_t off = r_.below(size);
    const std::uint64_t len = 1 + r_.below(std::min<std::uint64_t>(max_len, size - off));
    return {off, len};
  }
  std::uint32_t seed32() { return static_cast<std::uint32_t>(r_.next()); }

  // ---- steps ------------------------------------------------------------------------

  step restart(const pool_model& m) {
    int pk = m.pool_keep;
    std::vector<std::pair<std::string, std::optional<int>>> keeps;
    if (sw_.on("keep_change")) {
      if (r_.chance(25)) pk = sw_.on("snapdis") ? r_.pick(std::vector<int>{1, 0, 3, -1}) : r_.pick(std::vector<int>{1, 0, 3});
      for (auto& [vid, v] : m.vols)
        if (v.reg && saves(v.reg->kind) && r_.chance(v.reg->kind == volume_kind::origin ? 35 : 15))
          keeps.emplace_back(vid, some_keep(v.reg->kind == volume_kind::origin));
    }
    return [pk, keeps](world_type& x) { x.restart(pk, keeps); };
  }

  step init(const plan& p) {
    plan q = p;
    if (r_.chance(12)) {
      // Now and then another kind, or another source.
      static const std::vector<volume_kind> kinds{volume_kind::origin, volume_kind::snapshot,
                                                  volume_kind::origin_snapshot, volume_kind::volatile_};
      q.kind = r_.pick(kinds);
      if (snaps(q.kind)) {
        std::vector<std::string> others;
        // Not a vid of the colliding pair: one of them is refused, and a
        // source path through the other's file is no case of interest.
        for (auto& c : catalog_)
          if (c.vid != q.vid && c.vid.compare(0, 13, "appvms/backup") != 0) others.push_back(c.vid);
        if (others.empty()) q.kind = volume_kind::origin;
        else q.source = r_.pick(others);
      }
    }
    const std::optional<int> keep = some_keep(q.kind == volume_kind::origin);
    const bool rw = !r_.chance(8);
    return [q, keep, rw](world_type& x) { x.init(q.vid, q.kind, q.size, q.source, keep, rw); };
  }

  struct choice {
    unsigned weight;
    std::function<step()> make;
  };

  step volume_step(const plan& p, const pool_model& m, const volume& v) {
    const std::string vid = p.vid;
    const config& c = *v.reg;
    const bool running = v.dirty != nullptr, stopped = !running;
    const bool saving = saves(c.kind);
    std::vector<choice> cs;
    auto add = [&](const char* family, unsigned weight, std::function<step()> make) {
      if (weight && sw_.on(family)) cs.push_back({weight, std::move(make)});
    };
    add("create", c.kind == volume_kind::origin && !v.clean && stopped ? 40 : 1,
        [&] { return step([vid](world_type& x) { x.create(vid); }); });
    add("init", 1, [&] { return init(p); });
    add("start", stopped ? 22 : 3, [&] { return step([vid](world_type& x) { x.start(vid); }); });
    add("stop", running ? 22 : 2, [&] { return step([vid](world_type& x) { x.stop(vid); }); });
    if (running)
      add("write", 28, [&] {
        auto [off, len] = some_range(v.dirty->size(), 2048, false);
        const std::uint32_t s = seed32();
        return step([vid, off = off, len = len, s](world_type& x) { x.vm_write(vid, off, len, s); });
      });
    add("revert", stopped && !v.revs.empty() ? 9 : 1, [&] {
      const unsigned k = static_cast<unsigned>(r_.below(100));
      if (k < 25) return step([vid](world_type& x) { x.revert(vid); });
      if (k < 70) {
        const std::uint64_t n = some_number(v);
        return step([vid, n](world_type& x) { x.revert_number(vid, n); });
      }
      const std::string l = some_label(v);
      return step([vid, l](world_type& x) { x.revert_label(vid, l); });
    });
    add("pins", !v.revs.empty() ? 7 : 1, [&] {
      const std::uint64_t n = some_number(v);
      const std::string l = some_label(v);
      return step([vid, n, l](world_type& x) { x.keep_revision(vid, n, l); });
    });
    add("pins", 3, [&] {
      const std::string l = some_label(v);
      return step([vid, l](world_type& x) { x.unkeep_revision(vid, l); });
    });
    add("drop", !v.revs.empty() ? 3 : 1, [&] {
      if (r_.chance(60)) {
        const std::uint64_t n = some_number(v);
        return step([vid, n](world_type& x) { x.drop_number(vid, n); });
      }
      const std::string l = some_label(v);
      return step([vid, l](world_type& x) { x.drop_label(vid, l); });
    });
    add("resize", 4, [&] {
      const std::uint64_t cur = m.current_size(v);
      static const std::vector<std::uint64_t> grow{0, 512, 4096, 1000, 8192};
      const std::uint64_t to = r_.chance(15) && cur >= 512 ? cur - 512 : cur + r_.pick(grow);
      return step([vid, to](world_type& x) { x.resize(vid, to); });
    });
    add("discard", 4, [&] {
      const std::uint64_t cur = m.current_size(v);
      auto [off, len] = r_.chance(5) ? std::pair<std::uint64_t, std::uint64_t>{r_.below(cur + 1), 0}
                                     : some_range(std::max<std::uint64_t>(cur, 1), cur, true);
      return step([vid, off = off, len = len](world_type& x) { x.discard(vid, off, len); });
    });
    add("sparsify", 2, [&] { return step([vid](world_type& x) { x.sparsify(vid); }); });
    add("import", saving && !v.importing && stopped ? 4 : 1, [&] {
      static const std::vector<std::uint64_t> sizes{4096, 8192, 6144, 0, 10000};
      const std::uint64_t s = r_.pick(sizes);
      return step([vid, s](world_type& x) { x.import_data(vid, s); });
    });
    if (v.importing && v.import && !v.import->empty())
      add("import", 14, [&] {
        auto [off, len] = some_range(v.import->size(), 2048, false);
        const std::uint32_t s = seed32();
        return step([vid, off = off, len = len, s](world_type& x) { x.import_write(vid, off, len, s); });
      });
    add("import", v.importing ? 9 : 1, [&] {
      const bool ok = r_.chance(75);
      return step([vid, ok](world_type& x) { x.import_end(vid, ok); });
    });
    add("import", saving && stopped ? 3 : 1, [&] {
      std::vector<std::string> others;
      for (auto& [o, ov] : m.vols)
        if (o != vid && ov.reg) others.push_back(o);
      const std::string src = others.empty() ? vid : r_.pick(others);
      return step([vid, src](world_type& x) { x.import_volume(vid, src); });
    });
    add("backup", saving && v.clean ? 4 : 1, [&] { return step([vid](world_type& x) { x.backup(vid); }); });
    add("remove", 3, [&] {
      const bool force = r_.chance(30);
      return step([vid, force](world_type& x) { x.remove(vid, force); });
    });
    add("mtime", v.clean ? 2 : 0, [&] {
      const std::int64_t sec = interesting_time();
      const auto ns = static_cast<std::uint32_t>(r_.below(1000000000));
      return step([vid, sec, ns](world_type& x) { x.set_clean_mtime(vid, sec, ns); });
    });
    add("mtime", running ? 2 : 0, [&] {
      const std::int64_t sec = interesting_time();
      const auto ns = static_cast<std::uint32_t>(r_.below(1000000000));
      return step([vid, sec, ns](world_type& x) { x.set_dirty_mtime(vid, sec, ns); });
    });
    if (stopped && !v.importing) {
      add("qubes", 2, [&] { return step([vid](world_type& x) { x.qubes_remove(vid); }); });
      add("qubes", 2, [&] { return step([vid](world_type& x) { x.qubes_create(vid); }); });
      if (v.clean && !v.clean->empty())
        add("qubes", 5, [&] {
          static const std::vector<int> keeps{0, 1, 1, 2, 3};
          const int k = r_.pick(keeps);
          auto [off, len] = some_range(v.clean->size(), 2048, false);
          const std::uint32_t s = seed32();
          return step([vid, k, off = off, len = len, s](world_type& x) { x.qubes_commit(vid, k, off, len, s); });
        });
      if (v.clean)
        add("qubes", 3, [&] {
          std::uint64_t n = 0;
          std::vector<std::uint64_t> files;
          for (auto& rv : v.revs)
            if (rv.file) files.push_back(rv.n);
          if (!files.empty() && r_.chance(60)) n = r_.pick(files);
          static const std::vector<int> keeps{0, 1, 2};
          const int k = r_.pick(keeps);
          return step([vid, n, k](world_type& x) { x.qubes_revert(vid, n, k); });
        });
      add("temp", 2, [&] {
        static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        std::string suffix;
        for (int i = 0; i < 8; ++i) suffix += alphabet[r_.below(sizeof alphabet - 1)];
        const bool dirty = r_.chance(30);
        return step([vid, dirty, suffix](world_type& x) { x.plant_temp(vid, dirty, suffix); });
      });
    }
    unsigned total = 0;
    for (auto& ch : cs) total += ch.weight;
    unsigned at = static_cast<unsigned>(r_.below(total));
    for (auto& ch : cs) {
      if (at < ch.weight) return ch.make();
      at -= ch.weight;
    }
    return [vid](world_type& x) { x.start(vid); };
  }

  rng r_;
  switches sw_;
  std::vector<plan> catalog_;
  int pool_keep_ = 1;
};

// ---------------------------------------------------------------------------
// Running, shrinking, reporting

//! Totals of a run, printed at its end.
struct tally {
  std::uint64_t sequences = 0, steps = 0, checks = 0, failures = 0;
};

//! Replay `steps` in a fresh world on a fresh fixture.
template <class Fx>
struct replay_result {
  bool failed = false;
  std::string failure, signature;
  std::size_t failed_step = 0;
  std::vector<std::string> calls;
  std::uint64_t steps = 0, checks = 0;
};

template <class Fx>
replay_result<Fx> replay(int pool_keep, const check_options& checks,
                         const std::vector<typename generator<Fx>::step>& steps) {
  Fx fx;
  world<Fx> w(fx, pool_keep, checks);
  for (auto& s : steps) {
    if (w.failed()) break;
    s(w);
  }
  replay_result<Fx> out;
  out.failed = w.failed();
  out.failure = w.failure();
  out.signature = w.signature();
  out.failed_step = w.failed_step();
  out.calls = w.calls();
  out.steps = w.steps();
  out.checks = w.checks();
  return out;
}

//! Run one seed; on a failure print it, shrink it, print the minimal
//! sequence as C++, and return the report (empty when it passed).
template <class Fx>
std::string run_seed(std::uint64_t seed, std::size_t nsteps, const switches& sw, tally& t,
                     const std::string& case_name) {
  using gen = generator<Fx>;
  gen g(seed, sw);
  const int pool_keep = g.pool_keep();
  check_options checks;
  checks.revisions_list = sw.on("revisions_list");
  std::vector<typename gen::step> steps;
  std::string failure, signature;
  std::size_t failed_step = 0;
  {
    Fx fx;
    world<Fx> w(fx, pool_keep, checks);
    for (std::size_t i = 0; i < nsteps && !w.failed(); ++i) {
      steps.push_back(g.next(w));
      steps.back()(w);
    }
    ++t.sequences;
    t.steps += w.steps();
    t.checks += w.checks();
    if (!w.failed()) return std::string();
    failure = w.failure();
    signature = w.signature();
    failed_step = w.failed_step();
  }
  ++t.failures;
  std::string report = std::string("model: ") + Fx::name + ", seed " + std::to_string(seed) +
                       (sw.off.empty() ? "" : " (FILE_REFLINK_MODEL_OFF=" + sw.text() + ")") + ": the library and the model disagree at step " +
                       std::to_string(failed_step) + " (" + signature + "):\n  " + failure + "\n" +
                       "  replay: FILE_REFLINK_MODEL_SEED=" + std::to_string(seed) +
                       (sw.off.empty() ? "" : " FILE_REFLINK_MODEL_OFF=" + sw.text()) +
                       (nsteps != 50 ? " FILE_REFLINK_MODEL_STEPS=" + std::to_string(nsteps) : "") +
                       " file_reflink_model -tc='" + case_name + "'\n";
  std::printf("%s", report.c_str());
  std::fflush(stdout);
  // Shrink: drop chunks of steps, halving the chunk, while the same kind of
  // failure remains.
  steps.resize(std::min(steps.size(), failed_step + 1));
  std::size_t attempts = 0;
  for (std::size_t chunk = std::max<std::size_t>(steps.size() / 2, 1);; chunk /= 2) {
    for (std::size_t i = 0; i < steps.size();) {
      auto trial = steps;
      trial.erase(trial.begin() + static_cast<std::ptrdiff_t>(i),
                  trial.begin() + static_cast<std::ptrdiff_t>(std::min(i + chunk, trial.size())));
      ++attempts;
      auto r = replay<Fx>(pool_keep, checks, trial);
      if (r.failed && r.signature == signature) {
        trial.resize(std::min(trial.size(), r.failed_step + 1));
        steps = std::move(trial);
      } else {
        i += chunk;
      }
    }
    if (chunk == 1) break;
  }
  auto last = replay<Fx>(pool_keep, checks, steps);
  if (!last.failed) {
    // Only where the run depends on the real clock (stamps on a real
    // filesystem) can a replay take another path.
    report += "  (the failure did not come back on replay: the sequence below is the shortest that failed)\n";
  }
  std::string code;
  code += "// seed " + std::to_string(seed) + ", shrunk to " + std::to_string(steps.size()) + " steps (" +
          std::to_string(attempts) + " replays): " + last.failure + "\n";
  code += "FILE_REFLINK_FIXTURE_TEST_ON(\"model regression: seed " + std::to_string(seed) + "\", std::tuple<test::" +
          Fx::name + "_fixture>) {\n";
  for (auto& line : last.calls) code += "  " + line + "\n";
  code += "  CHECK_MESSAGE(!w.failed(), w.failure());\n}\n";
  return report + code;
}

}  // namespace file_reflink::model_test
