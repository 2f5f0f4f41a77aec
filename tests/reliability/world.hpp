// SPDX-License-Identifier: BSL-1.0
//! \file
//! The world every crash and fault run starts from: a MemoryFsOps filesystem
//! with a deterministic clock, a pool with three volumes (the source
//! template "tpl/root", the volume under test "vm/v" of one of five kinds,
//! and its neighbour "vm/w" in the same directory), each with committed data
//! and revisions. And what the checks read back: the pool's files with their
//! bytes, sorted into volumes.
#pragma once

#include "../support/patterns.hpp"

#include <file_reflink/fs_ops/memory.hpp>
#include <file_reflink/pool.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace file_reflink::reliability {

using Ops = MemoryFsOps;
using PoolT = Pool<Ops>;
using Vol = Volume<Ops>;
using handle = Ops::dir_handle;

constexpr std::uint64_t KiB = 1024;
constexpr std::uint64_t image_size = 64 * KiB;
inline const path mount_point = "/mnt";
inline const path pool_dir = "/mnt/pool";
inline const std::string src_vid = "tpl/root";
inline const std::string vid = "vm/v";
inline const std::string other_vid = "vm/w";
//! Revisions every volume keeps (except the snapshots-disabled kind).
constexpr int keep = 2;

//! The five kinds a volume under test can be: the four of the README, and
//! an origin with snapshots disabled (revisions_to_keep = -1).
enum class kind_id { volatile_, snapshot, origin, origin_snapshot, origin_nosnap };
inline const std::vector<kind_id> all_kinds = {kind_id::volatile_, kind_id::snapshot, kind_id::origin,
                                               kind_id::origin_snapshot, kind_id::origin_nosnap};

inline const char* kind_name(kind_id k) {
  switch (k) {
    case kind_id::volatile_: return "volatile";
    case kind_id::snapshot: return "snapshot";
    case kind_id::origin: return "origin";
    case kind_id::origin_snapshot: return "origin-snapshot";
    case kind_id::origin_nosnap: return "origin (snapshots disabled)";
  }
  return "?";
}

inline volume_config config_of(kind_id k) {
  switch (k) {
    case kind_id::volatile_: return volume_config::volatile_volume(vid, image_size);
    case kind_id::snapshot: return volume_config::snapshot(vid, src_vid);
    case kind_id::origin: return volume_config::origin(vid, image_size);
    case kind_id::origin_snapshot: return volume_config::origin_snapshot(vid, src_vid);
    case kind_id::origin_nosnap: {
      auto c = volume_config::origin(vid, image_size);
      c.revisions_to_keep = -1;
      return c;
    }
  }
  return {};
}

//! Deterministic, never-zero bytes: a lost or moved block cannot pass.
using test::pattern;

//! A failed result of any type as a `result<void>`, a value as success.
template <class R>
result<void> as_void(R&& r) {
  if (!r) return failure(r.error());
  return success();
}

//! One pool and its filesystem. Rebuilt for every run: a crash run cannot
//! share state with another.
struct world {
  Ops fs;
  std::optional<PoolT> pool;
  std::vector<volume_config> configs;  //!< registered, in order: what a reboot registers again
  kind_id kind = kind_id::origin;
  std::optional<path> exported;
  std::string stream;  //!< a send stream a receive operation applies
  std::vector<std::string> log;

  Vol vol(const std::string& v = vid) { return pool->get_volume(v).value(); }
  handle dir() { return fs.open_dir(pool_dir, false).value().handle; }

  pool_config pool_cfg() {
    pool_config c;
    c.name = "rel";
    c.dir_path = pool_dir;
    c.revisions_to_keep = keep;
    auto sink = std::make_shared<std::vector<std::string>*>(&log);
    c.log = [sink](log_level l, const std::string& m) {
      if (l >= log_level::warning) (*sink)->push_back(std::string(to_string(l)) + ": " + m);
    };
    return c;
  }

  //! A new process: a new Pool object over the same filesystem, the same
  //! volumes registered, nothing remembered (an import in progress or an
  //! export is forgotten, as a crashed process forgets them).
  void reboot() {
    pool.reset();
    pool.emplace(pool_cfg(), fs);
    for (auto& c : configs) REQUIRE(pool->init_volume(c));
    exported.reset();
  }

  //! Play a VM session: start, write (data, a zero block, data), flush as a
  //! VM does, stop.
  result<void> session(const std::string& v, std::uint32_t seed) {
    Vol x = vol(v);
    FILE_REFLINK_TRYV(x.start());
    FILE_REFLINK_TRYV(vm_write(v, seed));
    return x.stop();
  }

  //! What a VM writes into a running image, flushed.
  result<void> vm_write(const std::string& v, std::uint32_t seed) {
    handle h = dir();
    path dirty = path(v + "-dirty.img");
    std::string a = pattern(4 * KiB, seed), zero(4 * KiB, '\0'), b = pattern(4 * KiB, seed + 1000);
    FILE_REFLINK_TRYV(fs.write(h, dirty, 0, a.data(), a.size()));
    FILE_REFLINK_TRYV(fs.write(h, dirty, 4 * KiB, zero.data(), zero.size()));
    FILE_REFLINK_TRYV(fs.write(h, dirty, 12 * KiB, b.data(), b.size()));
    return fs.fsync(h, dirty);
  }
};

//! A world for `kind`: the template with two commits, the neighbour with
//! one, and the volume under test registered (and, unless `fresh`, created
//! and committed twice when it keeps data).
inline std::unique_ptr<world> make_world(kind_id kind, bool fresh) {
  auto w = std::make_unique<world>();
  w->kind = kind;
  // One millisecond per reading: mtimes differ, stamps are reproducible.
  auto t = std::make_shared<std::int64_t>(1700000000LL * 1000000000LL);
  w->fs.set_clock([t] { return file_time::from_ns(*t += 1000000); });
  mount_options mo;
  mo.capacity = 256 * 1024 * KiB;
  REQUIRE(w->fs.mount(mount_point, mo));
  w->pool.emplace(w->pool_cfg(), w->fs);
  REQUIRE(w->pool->setup());
  auto add = [&](volume_config c) {
    w->configs.push_back(c);
    REQUIRE(w->pool->init_volume(c));
  };
  add(volume_config::origin(src_vid, image_size));
  REQUIRE(w->vol(src_vid).create());
  REQUIRE(w->session(src_vid, 1));
  REQUIRE(w->session(src_vid, 2));
  add(volume_config::origin(other_vid, image_size));
  REQUIRE(w->vol(other_vid).create());
  REQUIRE(w->session(other_vid, 3));
  add(config_of(kind));
  if (!fresh) {
    if (kind == kind_id::origin || kind == kind_id::origin_nosnap) REQUIRE(w->vol().create());
    if (kind == kind_id::origin || kind == kind_id::origin_nosnap || kind == kind_id::origin_snapshot) {
      auto r1 = w->session(vid, 11);
      REQUIRE_MESSAGE(r1, r1.error().message());
      auto r2 = w->session(vid, 12);
      REQUIRE_MESSAGE(r2, r2.error().message());
    }
  }
  w->log.clear();
  return w;
}

// ---------------------------------------------------------------------------
// What is on disk

struct file_rec {
  bool regular = false;
  std::string bytes;
  file_time mtime;
  std::uint64_t nlink = 0;
};

//! Every name under the pool directory (relative), with the bytes of each
//! regular file; directories as names alone. Read through the policy, so it
//! must not run while a crash is armed.
struct pool_files {
  std::map<std::string, file_rec> files;
  std::set<std::string> dirs;
  bool operator==(const pool_files& o) const {
    if (dirs != o.dirs || files.size() != o.files.size()) return false;
    for (auto a = files.begin(), b = o.files.begin(); a != files.end(); ++a, ++b)
      if (a->first != b->first || a->second.regular != b->second.regular || a->second.bytes != b->second.bytes)
        return false;
    return true;
  }
};

inline pool_files capture(world& w) {
  pool_files out;
  handle h = w.dir();
  std::vector<path> todo{path()};
  while (!todo.empty()) {
    path d = todo.back();
    todo.pop_back();
    auto entries = w.fs.list(h, d);
    REQUIRE_MESSAGE(entries, entries.error().message());
    for (auto& e : entries.value()) {
      path rel = d.empty() ? path(e.name) : d / e.name;
      if (e.type == file_type::directory) {
        out.dirs.insert(rel.generic_string());
        todo.push_back(rel);
        continue;
      }
      file_rec r;
      auto st = w.fs.stat(h, rel);
      REQUIRE_MESSAGE(st, st.error().message());
      r.mtime = st.value().mtime;
      r.nlink = st.value().nlink;
      if (e.type == file_type::regular) {
        r.regular = true;
        r.bytes.resize(static_cast<std::size_t>(st.value().size));
        if (!r.bytes.empty()) {
          auto n = w.fs.read(h, rel, 0, r.bytes.data(), r.bytes.size());
          REQUIRE_MESSAGE(n, n.error().message());
        }
      }
      out.files.emplace(rel.generic_string(), std::move(r));
    }
  }
  return out;
}

//! One volume's files, by role.
struct vol_view {
  std::optional<std::string> clean, dirty, precache, import;
  std::optional<file_time> clean_mtime, precache_mtime;
  std::map<std::uint64_t, std::string> revisions;  //!< N -> bytes (of the revision file, or its pin)
  std::map<std::string, std::uint64_t> pins;       //!< label -> N
  std::vector<std::string> temporaries;
  //! The precache would be taken at the next start (same mtime and size).
  bool precache_current() const {
    return precache && clean && precache_mtime == clean_mtime && precache->size() == clean->size();
  }
};

inline vol_view view_of(const pool_files& pf, const std::string& v) {
  vol_view out;
  layout::volume_paths p = layout::paths_of(v);
  std::string prefix = p.dir.empty() ? std::string() : p.dir.generic_string() + "/";
  for (auto& [name, rec] : pf.files) {
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    std::string leaf = name.substr(prefix.size());
    if (leaf.find('/') != std::string::npos) continue;
    layout::name_info info = layout::classify(leaf);
    if (info.base != p.base || !rec.regular) continue;
    switch (info.kind) {
      case layout::file_kind::clean: out.clean = rec.bytes, out.clean_mtime = rec.mtime; break;
      case layout::file_kind::dirty: out.dirty = rec.bytes; break;
      case layout::file_kind::precache: out.precache = rec.bytes, out.precache_mtime = rec.mtime; break;
      case layout::file_kind::import: out.import = rec.bytes; break;
      case layout::file_kind::revision: out.revisions[info.revision] = rec.bytes; break;
      case layout::file_kind::pin:
        out.pins[info.label] = info.revision;
        out.revisions.emplace(info.revision, rec.bytes);
        break;
      case layout::file_kind::temporary: out.temporaries.push_back(name); break;
      case layout::file_kind::foreign: break;
    }
  }
  return out;
}

//! "vm/v.img file size=... nlink=..." lines of the whole pool, for a report.
inline std::string tree_text(world& w) {
  std::string out;
  for (auto& l : w.fs.tree(pool_dir)) out += "    " + l + "\n";
  return out;
}

//! Short description of bytes for messages: size and a hash.
inline std::string describe(const std::optional<std::string>& b) {
  if (!b) return "absent";
  return std::to_string(b->size()) + " bytes #" + std::to_string(std::hash<std::string>{}(*b) % 100000);
}

}  // namespace file_reflink::reliability
