// SPDX-License-Identifier: BSL-1.0
//! \file
//! The definitions of `Pool<FsOps>`'s member functions, declared in
//! `<file_reflink/pool.hpp>` (those that read the pool's directory, `scan`,
//! `recover` and `adopt`, are in `impl/pool/scan.ipp`, included here). That
//! header includes this file, unless FILE_REFLINK_SEPARATE_COMPILATION is
//! defined: then one source file of the program includes
//! `<file_reflink/impl/src.hpp>`, which includes this file and instantiates
//! `Pool` for `LinuxFsOps` and `MemoryFsOps` (a program with a policy of its
//! own includes this file where it uses that policy).
#pragma once

#include <file_reflink/detail/pool_core.hpp>
#include <file_reflink/impl/pool/receive.ipp>
#include <file_reflink/impl/pool/scan.ipp>
#include <file_reflink/pool.hpp>

namespace file_reflink {

template <class FsOps>
Pool<FsOps>::Pool(pool_config cfg, FsOps ops)
    : core_(std::make_shared<core_type>(normalized(std::move(cfg)), std::move(ops))) {
#if defined(FILE_REFLINK_SEPARATE_COMPILATION)
  // Separately compiled, the class does not check its policy (a translation
  // unit that only names Pool<LinuxFsOps> pays nothing): its definitions do.
  static_assert(detail::check_fs_ops<FsOps>::value, "file_reflink::Pool: FsOps is not a filesystem policy");
#endif
}

template <class FsOps>
const pool_config& Pool<FsOps>::config() const noexcept {
  return core_->cfg;
}

template <class FsOps>
const std::string& Pool<FsOps>::name() const noexcept {
  return core_->cfg.name;
}

template <class FsOps>
const path& Pool<FsOps>::dir_path() const noexcept {
  return core_->cfg.dir_path;
}

template <class FsOps>
FsOps& Pool<FsOps>::fs_ops() noexcept {
  return core_->ops;
}

template <class FsOps>
result<void> Pool<FsOps>::validate(const volume_config& cfg) const {
  return detail::validate_config(cfg, core_->cfg);
}

template <class FsOps>
template <class F>
result<std::uint64_t> Pool<FsOps>::space(const char* op, F&& pick) noexcept {
  const auto what_of = [&] { return std::string(op) + " of pool " + detail::q(name()); };
  return detail::no_throw<result<std::uint64_t>>(what_of, [&]() -> result<std::uint64_t> {
    const std::string what = what_of();
    FILE_REFLINK_TRY_CTX(auto h, what, core_->dir());
    FILE_REFLINK_TRY_CTX(auto s, what, core_->statvfs(h));
    return pick(s);
  });
}

template <class FsOps>
auto Pool<FsOps>::setup() noexcept -> result<void> {
  const auto what_of = [&] { return "setup pool " + detail::q(name()); };
  return detail::no_throw<result<void>>(what_of, [&]() -> result<void> {
    const std::string what = what_of();
    auto opened = core_->open_dir(dir_path(), true);
    if (!opened) return failure(std::move(opened).error().context(what));
    auto h = opened.value().handle;
    bool created = opened.value().created;
    detail::undo_stack undo;
    if (created) undo.push([&] { (void)core_->remove_dir(dir_path(), false); });
    if (created) core_->log(log_level::info, "Created directory: " + detail::q(dir_path()));
    auto ok = core_->probe_reflink(h);
    if (!ok) return failure(std::move(ok).error().context(what));
    if (!ok.value() && !core_->cfg.setup_check) {
      // Forced: say once what that costs. The probe taught the handle, so
      // the copies that follow do not try (and warn) again.
      core_->warn_no_reflinks(h);
    } else if (!ok.value()) {
      undo.run();
      return failure(error(make_error_code(errc::reflink_unsupported),
                           what + ": the filesystem of " + detail::q(dir_path()) +
                               " does not support reflinks, so every volume copy would be a full copy (slow, "
                               "and it takes space); pass setup_check=false to use that fallback anyway"));
    }
    if (auto r = write_marker(h); !r) return failure(std::move(r).error().context(what));
    undo.commit();
    if (auto r = core_->adopt(h); !r) return failure(std::move(r).error().context(what));
    if (core_->cfg.catalog) {
      // The pool's settings, for the tools that open it later.
      std::lock_guard<std::mutex> lk(core_->catalog_mu);
      auto r = [&]() -> result<void> {
        FILE_REFLINK_TRY(auto held, core_->take_catalog(h, lock_mode::exclusive));
        FILE_REFLINK_TRY(auto c, core_->read_catalog(h));
        if (c.revisions_to_keep && c.setup_check) return success();
        if (!c.revisions_to_keep) c.revisions_to_keep = core_->cfg.revisions_to_keep;
        if (!c.setup_check) c.setup_check = core_->cfg.setup_check;
        return core_->write_catalog(h, c);
      }();
      if (!r) return failure(std::move(r).error().context(what));
    }
    return success();
  });
}

template <class FsOps>
auto Pool<FsOps>::init_volume(volume_config cfg, existing_volume existing) noexcept -> result<volume_type> {
  const auto what_of = [&] { return "init_volume " + detail::q(cfg.vid); };
  return detail::no_throw<result<volume_type>>(what_of, [&]() -> result<volume_type> {
    const std::string what = what_of();
    if (auto r = validate(cfg); !r) return failure(std::move(r).error().context(what));
    if (cfg.name.empty()) cfg.name = layout::paths_of(cfg.vid).base;
    if (!cfg.revisions_to_keep) cfg.revisions_to_keep = core_->cfg.revisions_to_keep;
    if (!core_->cfg.catalog) {
      std::lock_guard<std::mutex> lk(core_->mu);
      FILE_REFLINK_TRY_CTX(auto v, what, register_locked(std::move(cfg)));
      return v;
    }
    std::lock_guard<std::mutex> cl(core_->catalog_mu);
    FILE_REFLINK_TRY_CTX(auto h, what, core_->dir());
    FILE_REFLINK_TRY_CTX(auto held, what, core_->take_catalog(h, lock_mode::exclusive));
    FILE_REFLINK_TRY_CTX(auto c, what, core_->read_catalog(h));
    FILE_REFLINK_TRYV_CTX(what, apply_catalog(c));
    if (auto it = c.volumes.find(cfg.vid); it != c.volumes.end()) {
      if (!detail::same_config(it->second, cfg))
        return failure(errc::volume_exists, what + ": the pool's catalog has it with another configuration "
                                                   "(change it with update)");
      if (existing == existing_volume::refuse)
        return failure(errc::volume_exists, what + ": the pool's catalog has it already");
      std::lock_guard<std::mutex> lk(core_->mu);
      return volume_type(core_, core_->volumes.at(cfg.vid));
    }
    {
      std::lock_guard<std::mutex> lk(core_->mu);
      if (core_->volumes.count(cfg.vid)) return failure(errc::volume_exists, what);
      for (auto& [other, st] : core_->volumes)
        if (auto col = layout::vid_collision(cfg.vid, other)) return failure(errc::invalid_vid, what + ": " + *col);
    }
    c.volumes.emplace(cfg.vid, cfg);
    FILE_REFLINK_TRYV_CTX(what, core_->write_catalog(h, c));
    std::lock_guard<std::mutex> lk(core_->mu);
    FILE_REFLINK_TRY_CTX(auto v, what, register_locked(std::move(cfg)));
    return v;
  });
}

template <class FsOps>
auto Pool<FsOps>::get_volume(const std::string& vid) const noexcept -> result<volume_type> {
  const auto what_of = [&] { return "get_volume " + detail::q(vid); };
  return detail::no_throw<result<volume_type>>(what_of, [&]() -> result<volume_type> {
    const std::string what = what_of();
    FILE_REFLINK_TRYV_CTX(what, sync_catalog());
    std::lock_guard<std::mutex> lk(core_->mu);
    auto it = core_->volumes.find(vid);
    if (it == core_->volumes.end()) return failure(errc::volume_not_found, what);
    return volume_type(core_, it->second);
  });
}

template <class FsOps>
auto Pool<FsOps>::list_volumes() const -> std::vector<volume_type> {
  if (auto r = sync_catalog(); !r) core_->log(log_level::warning, "list_volumes: " + r.error().message());
  std::lock_guard<std::mutex> lk(core_->mu);
  std::vector<volume_type> out;
  out.reserve(core_->volumes.size());
  for (auto& [vid, st] : core_->volumes) out.push_back(volume_type(core_, st));
  return out;
}

template <class FsOps>
auto Pool<FsOps>::read_catalog() const noexcept -> result<catalog_contents> {
  const auto what_of = [&] { return "read_catalog of pool " + detail::q(name()); };
  return detail::no_throw<result<catalog_contents>>(what_of, [&]() -> result<catalog_contents> {
    const std::string what = what_of();
    FILE_REFLINK_TRY_CTX(auto h, what, core_->dir());
    FILE_REFLINK_TRY_CTX(auto held, what, core_->take_catalog(h, lock_mode::shared));
    FILE_REFLINK_TRY_CTX(auto c, what, core_->read_catalog(h));
    return c;
  });
}

template <class FsOps>
auto Pool<FsOps>::destroy() noexcept -> result<void> {
  const auto what_of = [&] { return "destroy pool " + detail::q(name()); };
  return detail::no_throw<result<void>>(what_of, [&]() -> result<void> {
    const std::string what = what_of();
    std::vector<std::shared_ptr<detail::volume_state>> states;
    {
      std::lock_guard<std::mutex> lk(core_->mu);
      for (auto& [vid, st] : core_->volumes) states.push_back(st);  // by vid
    }
    const detail::deadline until = detail::deadline_of(core_->cfg);
    const auto start = std::chrono::steady_clock::now();
    std::vector<detail::local_lock> held(states.size());
    for (std::size_t i = 0; i < states.size(); ++i)
      if (!detail::lock_local(states[i]->mu, lock_mode::exclusive, until, held[i]))
        return failure(core_type::busy("volume " + detail::q(states[i]->vid),
                                       std::chrono::steady_clock::now() - start)
                           .context(what));
    auto h = core_->dir();
    if (!h) return failure(std::move(h).error().context(what));
    std::vector<typename core_type::held_lock> bytes;
    for (auto& st : states) {
      auto b = core_->take(h.value(), detail::lock_byte(st->vid), lock_mode::exclusive, until,
                           [&] { return "volume " + detail::q(st->vid); });
      if (!b) return failure(std::move(b).error().context(what));
      bytes.push_back(std::move(b).value());
    }
    auto report = scan_dir(h.value());
    if (!report) return failure(std::move(report).error().context(what));
    std::size_t with_files = 0;
    for (auto& v : report.value().volumes)
      if (v.clean || v.dirty || v.import || v.precache != precache_state::none || !v.revisions.empty() ||
          !v.orphan_pins.empty())
        ++with_files;
    if (with_files)
      return failure(error(std::make_error_code(std::errc::directory_not_empty),
                           what + ": " + std::to_string(with_files) +
                               " volume(s) still have files in it: remove them first"));
    // The catalog (no volume of it has files) and the lock file go too
    // (the locks held on it here go with it): a process that opens the
    // pool again makes a new one.
    for (std::string_view name : {layout::catalog_name, layout::lock_file_name})
      if (auto r = core_->remove_file(h.value(), path(std::string(name))); !r)
        return failure(std::move(r).error().context(what));
    auto r = core_->remove_file(h.value(), path(std::string(layout::pool_marker)));
    if (!r) return failure(std::move(r).error().context(what));
    (void)core_->sync_dir(h.value(), path());
    (void)core_->remove_dir(dir_path());
    for (auto& st : states) st->removed = true;  // each under its own lock, held
    {
      std::lock_guard<std::mutex> lk(core_->mu);
      for (auto& st : states) {
        auto it = core_->volumes.find(st->vid);
        if (it != core_->volumes.end() && it->second == st) core_->volumes.erase(it);
      }
    }
    core_->forget_dir();
    return success();
  });
}

template <class FsOps>
auto Pool<FsOps>::size() noexcept -> result<std::uint64_t> {
  return space("size", [](const fs_space& s) { return s.size; });
}

template <class FsOps>
auto Pool<FsOps>::usage() noexcept -> result<std::uint64_t> {
  return space("usage", [](const fs_space& s) { return s.size - std::min(s.size, s.free); });
}

template <class FsOps>
auto Pool<FsOps>::reflinks_supported() noexcept -> result<bool> {
  const auto what_of = [&] { return "reflinks_supported pool " + detail::q(name()); };
  return detail::no_throw<result<bool>>(what_of, [&]() -> result<bool> {
    const std::string what = what_of();
    FILE_REFLINK_TRY_CTX(auto h, what, core_->dir());
    FILE_REFLINK_TRY_CTX(bool ok, what, core_->probe_reflink(h));
    return ok;
  });
}

template <class FsOps>
auto Pool<FsOps>::register_locked(volume_config cfg) -> result<volume_type> {
  if (core_->volumes.count(cfg.vid)) return failure(errc::volume_exists, "");
  for (auto& [other, st] : core_->volumes)
    if (auto c = layout::vid_collision(cfg.vid, other)) return failure(errc::invalid_vid, *c);
  auto st = std::make_shared<detail::volume_state>(std::move(cfg));
  core_->volumes.emplace(st->vid, st);
  return volume_type(core_, st);
}

template <class FsOps>
auto Pool<FsOps>::apply_catalog(const catalog_contents& c) const -> result<bool> {
  bool whole = true;
  std::lock_guard<std::mutex> lk(core_->mu);
  for (auto& [vid, vc] : c.volumes) {
    auto it = core_->volumes.find(vid);
    if (it == core_->volumes.end()) {
      if (auto r = detail::validate_config(vc, core_->cfg); !r) {
        core_->log(log_level::warning, "The pool's catalog has an invalid volume " + detail::q(vid) + ": " +
                                           r.error().message());
        continue;
      }
      auto st = std::make_shared<detail::volume_state>(vc);
      core_->volumes.emplace(vid, st);
      continue;
    }
    auto& st = it->second;
    volume_config now = *st->config();
    // Its size: read only under its lock.
    std::unique_lock<std::shared_timed_mutex> vl(st->mu, std::try_to_lock);
    if (!vl) {
      whole = false;
      continue;
    }
    now.size = st->size;
    if (!detail::same_config(now, vc)) {
      st->size = vc.size;
      st->set_config(vc);
    }
  }
  for (auto it = core_->volumes.begin(); it != core_->volumes.end();) {
    if (c.volumes.count(it->first)) {
      ++it;
      continue;
    }
    std::unique_lock<std::shared_timed_mutex> vl(it->second->mu, std::try_to_lock);
    if (!vl) {
      whole = false;
      ++it;
      continue;
    }
    it->second->removed = true;
    vl.unlock();
    it = core_->volumes.erase(it);
  }
  return whole;
}

template <class FsOps>
auto Pool<FsOps>::sync_catalog() const -> result<void> {
  if (!core_->cfg.catalog) return success();
  std::lock_guard<std::mutex> cl(core_->catalog_mu);
  FILE_REFLINK_TRY(auto h, core_->dir());
  FILE_REFLINK_TRY(auto held, core_->take_catalog(h, lock_mode::shared));
  FILE_REFLINK_TRY(auto text, core_->read_catalog_text(h));
  held.release();
  if (!text) return success();
  auto c = detail::parse_catalog(*text);
  if (!c) return failure(std::move(c).error().context(core_->abs(h, path(std::string(layout::catalog_name)))));
  FILE_REFLINK_TRY(bool whole, apply_catalog(c.value()));
  if (whole) core_->catalog_applied(std::move(*text));
  return success();
}

template <class FsOps>
auto Pool<FsOps>::write_marker(const handle& h) -> result<void> {
  const path marker{std::string(layout::pool_marker)};
  FILE_REFLINK_TRY(auto st, core_->stat_if(h, marker));
  if (st) return success();
  static constexpr char text[] = "file_reflink pool: do not remove (it tells this pool from an empty mount point)\n";
  path tmp = layout::temp_name(marker);
  FILE_REFLINK_TRYV(core_->write_new_file(h, tmp, std::string_view(text, sizeof text - 1)));
  detail::undo_stack undo;
  undo.push([&] { core_->remove_quietly(h, tmp); });
  FILE_REFLINK_TRYV(core_->rename_file(h, tmp, marker));
  FILE_REFLINK_TRYV(core_->sync_dir(h, path()));
  undo.commit();
  return success();
}

}  // namespace file_reflink
