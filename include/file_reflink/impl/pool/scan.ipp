// SPDX-License-Identifier: BSL-1.0
//! \file
//! `Pool<FsOps>`'s `scan`, `recover` and `adopt`: what the pool's directory
//! holds, read without trusting it. Included by `<file_reflink/impl/pool.ipp>`
//! only.
#pragma once

#include <file_reflink/pool.hpp>

namespace file_reflink {

template <class FsOps>
auto Pool<FsOps>::adopt() noexcept -> result<adopt_report> {
  const auto what_of = [&] { return "adopt pool " + detail::q(name()); };
  return detail::no_throw<result<adopt_report>>(what_of, [&]() -> result<adopt_report> {
    const std::string what = what_of();
    FILE_REFLINK_TRY_CTX(auto h, what, core_->dir());
    std::unique_lock<std::mutex> cl(core_->catalog_mu, std::defer_lock);
    std::optional<typename core_type::held_lock> held;
    catalog_contents c;
    if (core_->cfg.catalog) {
      cl.lock();
      FILE_REFLINK_TRY_CTX(auto l, what, core_->take_catalog(h, lock_mode::exclusive));
      held = std::move(l);
      FILE_REFLINK_TRY_CTX(auto cc, what, core_->read_catalog(h));
      c = std::move(cc);
      FILE_REFLINK_TRYV_CTX(what, apply_catalog(c));
    }
    FILE_REFLINK_TRY_CTX(auto report, what, scan_dir(h));
    adopt_report out;
    std::vector<volume_config> found;
    for (const volume_scan& v : report.volumes) {
      if (v.registered || c.volumes.count(v.vid)) continue;
      if (!v.clean && !v.dirty && v.revisions.empty()) {
        out.skipped.push_back({v.vid, v.import ? "only an interrupted import (recover removes it)"
                                               : "no committed image, running image or revision"});
        continue;
      }
      const layout::volume_paths p = layout::paths_of(v.vid);
      volume_config vc = volume_config::origin(v.vid, 0);
      vc.name = p.base;
      std::size_t unpinned = 0;
      for (auto& [n, info] : v.revisions)
        if (info.labels.empty()) ++unpinned;
      int keep = core_->cfg.revisions_to_keep < 0 ? 1 : core_->cfg.revisions_to_keep;
      if (static_cast<std::size_t>(keep) < unpinned) keep = static_cast<int>(std::min<std::size_t>(unpinned, INT32_MAX));
      vc.revisions_to_keep = keep;
      if (!v.clean && v.revisions.empty()) vc.revisions_to_keep = -1;  // a running image is all it has
      std::optional<file_stat> img;
      std::vector<path> candidates;
      if (v.dirty) candidates.push_back(p.dirty());
      if (v.clean) candidates.push_back(p.clean());
      if (!v.revisions.empty()) {
        auto last = std::prev(v.revisions.end());
        candidates.push_back(p.revision(last->first, last->second.timestamp));
      }
      for (const path& rel : candidates) {
        if (img) break;
        FILE_REFLINK_TRY_CTX(img, what, core_->stat_if(h, rel));
      }
      vc.size = img ? img->size : 0;
      if (auto r = validate(vc); !r) {
        out.skipped.push_back({v.vid, r.error().message()});
        continue;
      }
      bool collides = false;
      {
        std::lock_guard<std::mutex> lk(core_->mu);
        for (auto& [other, st] : core_->volumes)
          if (layout::vid_collision(vc.vid, other)) collides = true;
      }
      if (collides) {
        out.skipped.push_back({v.vid, "its files collide with a registered volume's"});
        continue;
      }
      adopted_volume a;
      a.config = vc;
      a.state = !v.dirty ? volume_status::stopped : volume_status::dirty;
      a.revisions = v.revisions.size();
      out.registered.push_back(std::move(a));
      found.push_back(std::move(vc));
    }
    if (core_->cfg.catalog && !found.empty()) {
      for (auto& vc : found) c.volumes.emplace(vc.vid, vc);
      FILE_REFLINK_TRYV_CTX(what, core_->write_catalog(h, c));
    }
    std::lock_guard<std::mutex> lk(core_->mu);
    for (auto& vc : found)
      if (!core_->volumes.count(vc.vid)) (void)register_locked(std::move(vc));
    return out;
  });
}

template <class FsOps>
auto Pool<FsOps>::scan() noexcept -> result<scan_report> {
  const auto what_of = [&] { return "scan pool " + detail::q(name()); };
  return detail::no_throw<result<scan_report>>(what_of, [&]() -> result<scan_report> {
    const std::string what = what_of();
    FILE_REFLINK_TRY_CTX(auto h, what, core_->dir());
    FILE_REFLINK_TRY_CTX(auto report, what, scan_dir(h));
    return report;
  });
}

template <class FsOps>
auto Pool<FsOps>::recover() noexcept -> result<recover_report> {
  const auto what_of = [&] { return "recover pool " + detail::q(name()); };
  return detail::no_throw<result<recover_report>>(what_of, [&]() -> result<recover_report> {
    const std::string what = what_of();
    FILE_REFLINK_TRY_CTX(auto h, what, core_->dir());
    FILE_REFLINK_TRY_CTX(auto report, what, scan_dir(h));
    recover_report out;
    out.foreign = report.foreign;
    for (auto& v : report.volumes) {
      std::shared_ptr<detail::volume_state> st;
      {
        std::lock_guard<std::mutex> lk(core_->mu);
        auto it = core_->volumes.find(v.vid);
        if (it != core_->volumes.end()) st = it->second;
      }
      detail::local_lock local;
      const detail::deadline now = std::chrono::steady_clock::now();
      if (st && !detail::lock_local(st->mu, lock_mode::exclusive, now, local)) {
        out.busy.push_back(v.vid);
        continue;
      }
      auto held = core_->take(h, detail::lock_byte(v.vid), lock_mode::exclusive, now,
                              [&] { return "volume " + detail::q(v.vid); });
      if (!held) {
        if (held.error() != errc::volume_busy) return failure(std::move(held).error().context(what));
        out.busy.push_back(v.vid);
        continue;
      }
      layout::volume_paths p = layout::paths_of(v.vid);
      bool removed_any = false;
      for (auto& t : v.temporary) {
        FILE_REFLINK_TRY_CTX(bool r, what, core_->remove_file(h, t));
        if (r) out.removed.push_back(t), removed_any = true;
      }
      if (v.import && !(st && st->importing)) {
        FILE_REFLINK_TRY_CTX(bool r, what, core_->remove_file(h, p.import()));
        if (r) out.removed.push_back(p.import()), removed_any = true;
      }
      // Cleaning up is not urgent, but a recovery that a crash undoes
      // would report the same garbage again: make it stick.
      if (removed_any) FILE_REFLINK_TRYV_CTX(what, core_->sync_dir(h, p.dir));
      if (v.dirty && (!st || st->config()->save_on_stop)) out.dirty.push_back(v.vid);
      if (v.precache == precache_state::stale) out.stale_precache.push_back(v.vid);
    }
    return out;
  });
}

template <class FsOps>
auto Pool<FsOps>::scan_dir(const handle& h) -> result<scan_report> {
  std::map<std::string, volume_scan> vols;
  // vid -> (N, stamp) -> the revision: a revision is its number and stamp.
  std::map<std::string, std::map<std::pair<std::uint64_t, std::string>, revision_info>> revs;
  std::map<std::string, std::set<std::pair<std::uint64_t, std::string>>> files;  // revisions with a file of their own
  scan_report out;
  std::vector<path> todo{path()};
  while (!todo.empty()) {
    path dir = todo.back();
    todo.pop_back();
    FILE_REFLINK_TRY(auto entries, core_->list_if(h, dir));
    for (const dir_entry& e : entries) {
      path rel = dir / e.name;
      if (dir.empty() && layout::detail::starts_with(e.name, layout::reserved_prefix)) continue;
      if (e.type == file_type::directory) {
        if (layout::dir_component_problem(e.name))
          out.foreign.push_back({rel, e.type, "directory whose name no vid can have"});
        else
          todo.push_back(rel);
        continue;
      }
      if (e.type != file_type::regular) {
        out.foreign.push_back({rel, e.type, e.type == file_type::symlink ? "symlink (never followed)" : "not a regular file"});
        continue;
      }
      layout::name_info info = layout::classify(e.name);
      if (info.kind == layout::file_kind::foreign) {
        out.foreign.push_back({rel, e.type, "not a volume file name"});
        continue;
      }
      std::string vid = (dir / info.base).generic_string();
      volume_scan& v = vols[vid];
      v.vid = vid;
      switch (info.kind) {
        case layout::file_kind::clean: v.clean = true; break;
        case layout::file_kind::dirty: v.dirty = true; break;
        case layout::file_kind::precache: v.precache = precache_state::current; break;
        case layout::file_kind::import: v.import = true; break;
        case layout::file_kind::revision:
        case layout::file_kind::pin: {
          revision_info& r = revs[vid][{info.revision, info.stamp}];
          r.number = info.revision;
          r.timestamp = info.stamp;
          r.time = layout::parse_timestamp(info.stamp).value_or(0);
          if (info.kind == layout::file_kind::pin)
            r.labels.push_back(info.label);
          else
            files[vid].insert({info.revision, info.stamp});
          break;
        }
        case layout::file_kind::temporary: v.temporary.push_back(rel); break;
        case layout::file_kind::foreign: break;
      }
    }
  }
  // Orphan pins: a pin whose revision file is gone (its data lives on in
  // the pin). Precaches: current only if they match the clean image.
  for (auto& [vid, v] : vols) {
    layout::volume_paths p = layout::paths_of(vid);
    for (auto& [key, r] : revs[vid]) {
      std::sort(r.labels.begin(), r.labels.end());
      if (!files[vid].count(key))
        for (auto& l : r.labels) v.orphan_pins.push_back(l);
      v.revisions.emplace_hint(v.revisions.end(), key.first, std::move(r));
    }
    if (v.precache != precache_state::none) {
      FILE_REFLINK_TRY(auto clean, core_->stat_if(h, p.clean()));
      FILE_REFLINK_TRY(auto pre, core_->stat_if(h, p.precache()));
      bool current = clean && pre && clean->mtime == pre->mtime && clean->size == pre->size;
      v.precache = current ? precache_state::current : precache_state::stale;
    }
  }
  {
    std::lock_guard<std::mutex> lk(core_->mu);
    for (auto& [vid, st] : core_->volumes) {
      volume_scan& v = vols[vid];
      v.vid = vid;
      v.registered = true;
    }
  }
  for (auto& [vid, v] : vols) out.volumes.push_back(std::move(v));
  std::sort(out.foreign.begin(), out.foreign.end(),
            [](const foreign_file& a, const foreign_file& b) { return a.relative < b.relative; });
  return out;
}

}  // namespace file_reflink
