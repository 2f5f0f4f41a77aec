// SPDX-License-Identifier: BSL-1.0
//! \file
//! A pool on a fixture's filesystem, with what tests need around it: a
//! handle of the pool directory to play the VM with (write into the dirty
//! image, read the clean one), the captured log, and snapshots of the file
//! tree to prove an operation changed nothing.
#pragma once

#include "fixtures.hpp"

#include <file_reflink/pool.hpp>

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace doctest {
//! Failed comparisons of file sets print the files.
template <>
struct StringMaker<std::set<std::string>> {
  static String convert(const std::set<std::string>& s) {
    std::string out = "{";
    for (const auto& x : s) out += (out.size() > 1 ? ", " : "") + x;
    return (out + "}").c_str();
  }
};
//! ... and snapshots print their names and sizes.
template <>
struct StringMaker<std::map<std::string, std::string>> {
  static String convert(const std::map<std::string, std::string>& m) {
    std::string out = "{";
    for (const auto& [k, v] : m) out += (out.size() > 1 ? ", " : "") + k + " (" + std::to_string(v.size()) + " bytes)";
    return (out + "}").c_str();
  }
};
}  // namespace doctest

namespace file_reflink::test {

template <class Fx>
struct pool_env {
  using ops_type = typename Fx::ops_type;
  using pool_type = Pool<ops_type>;
  using volume_type = Volume<ops_type>;
  using handle = typename ops_type::dir_handle;

  Fx& fx;
  path dir;
  std::shared_ptr<std::mutex> log_mu = std::make_shared<std::mutex>();
  std::shared_ptr<std::vector<std::pair<log_level, std::string>>> log =
      std::make_shared<std::vector<std::pair<log_level, std::string>>>();
  pool_type pool;
  handle h;

  static pool_config config_for(Fx& fx, const path& dir, int revisions_to_keep, bool setup_check,
                                std::shared_ptr<std::mutex> mu,
                                std::shared_ptr<std::vector<std::pair<log_level, std::string>>> log) {
    pool_config c;
    c.name = "test";
    c.dir_path = dir;
    c.revisions_to_keep = revisions_to_keep;
    c.setup_check = setup_check;
    c.log = [mu, log](log_level l, const std::string& m) {
      std::lock_guard<std::mutex> lk(*mu);
      log->emplace_back(l, m);
    };
    (void)fx;
    return c;
  }

  //! A pool in `where` (default: root/pool). Where the filesystem has no
  //! reflinks (ext4; other_root is tmpfs on Linux) setup_check must be off.
  explicit pool_env(Fx& f, int revisions_to_keep = 1, path where = path(), bool setup_check = Fx::reflinks)
      : fx(f),
        dir(where.empty() ? f.root / "pool" : where),
        pool(config_for(f, dir, revisions_to_keep, setup_check, log_mu, log), f.ops),
        h(setup_and_open()) {}

  handle setup_and_open() {
    REQUIRE_OK(pool.setup());
    return fx.open(dir);
  }

  volume_type add(volume_config c) { return REQUIRE_VALUE(pool.init_volume(std::move(c))); }

  //! An origin volume, created.
  volume_type origin(const std::string& vid, std::uint64_t size = MiB) {
    auto v = add(volume_config::origin(vid, size));
    REQUIRE_OK(v.create());
    return v;
  }

  static path clean(const std::string& vid) { return path(vid + ".img"); }
  static path dirty(const std::string& vid) { return path(vid + "-dirty.img"); }
  static path precache(const std::string& vid) { return path(vid + "-precache.img"); }
  static path import(const std::string& vid) { return path(vid + "-import.img"); }

  //! Play the VM: write into the running image.
  void vm_write(const std::string& vid, std::uint64_t offset, std::string_view data) {
    write_bytes(fx, h, dirty(vid), offset, data);
  }
  std::string read(const path& rel) { return read_all(fx, h, rel); }
  std::string read(const path& rel, std::uint64_t offset, std::size_t len) { return read_at(fx, h, rel, offset, len); }
  bool has(const path& rel) { return exists(fx, h, rel); }
  file_stat st(const path& rel) { return stat_of(fx, h, rel); }
  //! The pool's files, without its own metadata at the top (the marker,
  //! the lock file, the catalog: names with the reserved prefix).
  std::set<std::string> files() {
    auto all = names(fx, h);
    for (auto it = all.begin(); it != all.end();)
      it = it->find('/') == std::string::npos && it->rfind(std::string(layout::reserved_prefix), 0) == 0 ? all.erase(it)
                                                                                                       : std::next(it);
    return all;
  }

  //! Start, write `data` at `offset`, stop: one commit with this content.
  void commit_data(volume_type& v, std::uint64_t offset, std::string_view data) {
    REQUIRE_OK(v.start());
    vm_write(v.vid(), offset, data);
    REQUIRE_OK(v.stop());
  }

  //! Every name and its bytes: the whole pool, for "nothing changed".
  std::map<std::string, std::string> snapshot() {
    std::map<std::string, std::string> out;
    for (const auto& n : files()) {
      auto s = REQUIRE_VALUE(fx.ops.stat(h, path(n)));
      out[n] = s.type == file_type::regular ? read(path(n)) : std::string("<") + std::to_string(int(s.type)) + ">";
    }
    return out;
  }

  //! Log lines containing `needle`.
  std::size_t logged(const std::string& needle, std::optional<log_level> level = std::nullopt) {
    std::lock_guard<std::mutex> lk(*log_mu);
    std::size_t n = 0;
    for (auto& [l, m] : *log)
      if (m.find(needle) != std::string::npos && (!level || *level == l)) ++n;
    return n;
  }
  void clear_log() {
    std::lock_guard<std::mutex> lk(*log_mu);
    log->clear();
  }
};

//! The one entry numbered `n` of a revision multimap (`revisions()`,
//! `space().revisions`, a scan's revisions); the test stops unless there is
//! exactly one.
template <class Multimap>
const typename Multimap::mapped_type& at(const Multimap& m, std::uint64_t n) {
  REQUIRE_MESSAGE(m.count(n) == 1, "revision " << n << " appears " << m.count(n) << " times");
  return m.find(n)->second;
}

//! The names that look like temporary files ("...~random").
inline std::vector<std::string> temporaries(const std::set<std::string>& names) {
  std::vector<std::string> out;
  for (const auto& n : names)
    if (n.find('~') != std::string::npos) out.push_back(n);
  return out;
}

}  // namespace file_reflink::test
