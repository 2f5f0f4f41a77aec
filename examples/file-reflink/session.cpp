// SPDX-License-Identifier: BSL-1.0
#include "session.hpp"

#include "du.hpp"
#include "errors.hpp"

#include <boost/filesystem/operations.hpp>

#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstdio>

namespace file_reflink::cli {

path pool_path(const std::string& dir) {
  path p = boost::filesystem::absolute(path(dir)).lexically_normal();
  // "/pool/" and "/pool/." name the pool "/pool", not "/pool/.".
  while (p.has_parent_path() && (p.filename() == "." || p.filename().empty())) p = p.parent_path();
  return p;
}

pool_config pool_config_for(const path& dir, const common_options& opts, ProgressBar& bar, bool setup_check) {
  pool_config cfg;
  cfg.name = dir.filename().string();
  cfg.dir_path = dir;
  cfg.setup_check = setup_check;
  cfg.catalog = true;
  cfg.lock_timeout = opts.lock_timeout;
  // Say once what a wait is for, and let Ctrl-C end it (the operation then
  // changes nothing).
  cfg.lock_wait = [quiet = opts.quiet, b = &bar](const std::string& what, std::chrono::milliseconds waited) {
    if (interrupted()) return false;
    if (waited.count() == 0 && !quiet) {
      b->finish();
      std::fprintf(stderr, "file-reflink: waiting for %s (another command holds it)...\n", what.c_str());
    }
    return true;
  };
  bool quiet = opts.quiet, verbose = opts.verbose;
  ProgressBar* b = &bar;
  cfg.log = [quiet, verbose, b, fallback_accepted = !setup_check](log_level level, const std::string& message) {
    // On a pool made with --no-setup-check the operator was told once, at
    // pool init, that copies are full copies: every later command saying it
    // again is noise. (The log has no event kinds: the text tells.)
    if (fallback_accepted && !verbose && message.find("does not support reflinks") != std::string::npos) return;
    if (verbose || (level >= log_level::warning && !quiet)) {
      b->finish();  // a message never lands in the middle of a bar
      if (level >= log_level::warning)
        print_warning(message);
      else
        std::fprintf(stderr, "file-reflink: %s: %s\n", to_string(level), message.c_str());
    }
  };
  cfg.progress = [b](const std::string& vid, std::uint64_t done, std::uint64_t total) {
    return b->update("copy " + vid, done, total);
  };
  return cfg;
}

namespace {

//! Put the volume file of an earlier version of the command into the
//! catalog: its settings (recorded by setup, which changes nothing else on
//! an existing pool and keeps settings the catalog already has) and its
//! volumes, then rename it aside. Idempotent, so it takes no lock of its
//! own: two commands converting at once register the same configs (the
//! second registration is a no-op), and a crash before the rename only
//! means converting again. A volume the catalog already has with another
//! config was changed since an interrupted conversion: the catalog's wins.
result<void> convert_volume_file(const path& dir, const common_options& opts, ProgressBar& bar) {
  FILE_REFLINK_TRY(auto file, read_volume_file(dir));
  if (!file.exists) return success();
  const path old_file = dir / volume_file_name;
  auto context = [&](const error& e) {
    return failure(e.context("convert " + old_file.string() + " into the catalog " +
                             (dir / std::string(layout::catalog_name)).string()));
  };
  pool_config cfg = pool_config_for(dir, opts, bar, file.pool.setup_check);
  cfg.revisions_to_keep = file.pool.revisions_to_keep;
  pool_type pool(cfg);
  if (auto r = pool.setup(); !r) return context(r.error());
  for (auto& [vid, c] : file.volumes) {
    auto r = pool.init_volume(c);
    if (!r && r.error() == errc::volume_exists) {
      if (!opts.quiet)
        print_warning("volume '" + vid + "' of " + old_file.string() +
                      " differs from the catalog's, which was changed since: the catalog's is kept");
      continue;
    }
    if (!r) return context(r.error());
  }
  if (auto r = retire_volume_file(dir); !r) return context(r.error());
  if (!opts.quiet)
    std::fprintf(stderr, "file-reflink: converted %s (%zu volume(s)) into the catalog %s; the old file is now %s\n",
                 old_file.c_str(), file.volumes.size(), (dir / std::string(layout::catalog_name)).c_str(),
                 (dir / converted_volume_file_name).c_str());
  return success();
}

}  // namespace

result<PoolSession> PoolSession::open(const std::string& dir_arg, const common_options& opts) {
  path dir = pool_path(dir_arg);
  auto bar = std::make_unique<ProgressBar>(!opts.quiet && ProgressBar::stderr_is_terminal());
  // The usual mistake first, said in the command's words.
  if (struct stat st; ::stat(dir.c_str(), &st) != 0)
    return errno_failure(errno, "pool '" + dir.string() + "' (make one with: file-reflink pool init DIR)");
  catalog_contents recorded;
  {
    // Is it a pool? The library's own check: the directory exists and is
    // marked, or is a pool the Qubes driver filled; an empty mount point is
    // refused. statvfs is the cheapest operation that makes that check.
    // This first pool object registers nothing: it reads the settings that
    // the real one is configured with.
    pool_type probe(pool_config_for(dir, opts, *bar, true));
    if (auto r = probe.size(); !r) return failure(r.error());
    FILE_REFLINK_TRYV(convert_volume_file(dir, opts, *bar));
    FILE_REFLINK_TRY(recorded, probe.read_catalog());
  }
  pool_settings settings;
  settings.revisions_to_keep = recorded.revisions_to_keep.value_or(settings.revisions_to_keep);
  settings.setup_check = recorded.setup_check.value_or(settings.setup_check);
  pool_config cfg = pool_config_for(dir, opts, *bar, settings.setup_check);
  cfg.revisions_to_keep = settings.revisions_to_keep;
  return PoolSession(dir, opts, std::move(bar), pool_type(cfg), settings);
}

//! Where on the device each file of `vol` keeps its data: every name of the
//! volume in its directory (images, revisions, pins, temporaries), through
//! the policy's extent map.
static result<std::vector<device_range>> device_ranges(pool_type& pool, const LinuxFsOps::dir_handle& h,
                                                const std::string& vid) {
  layout::volume_paths p = layout::paths_of(vid);
  std::vector<device_range> out;
  auto entries = pool.fs_ops().list(h, p.dir);
  if (!entries) {
    if (entries.error() == std::errc::no_such_file_or_directory) return out;  // no files yet
    return failure(entries.error());
  }
  for (const dir_entry& e : entries.value()) {
    if (e.type != file_type::regular) continue;
    layout::name_info info = layout::classify(e.name);
    if (info.kind == layout::file_kind::foreign || info.base != p.base) continue;
    auto ext = pool.fs_ops().extents(h, p.dir / e.name);
    if (!ext) {
      if (ext.error() == std::errc::no_such_file_or_directory) continue;  // gone meanwhile
      return failure(ext.error());
    }
    for (const extent& x : ext.value())
      if (x.physical != 0)  // an inline or unplaced extent has no place to share
        out.push_back({x.physical, x.physical + x.length});
  }
  return out;
}

result<std::vector<space_usage>> whole_volume_space(PoolSession& s, const std::vector<std::string>& vids,
                                                   space_usage& total) {
  FILE_REFLINK_TRY(auto opened, s.pool().fs_ops().open_dir(s.dir(), false));
  std::vector<std::vector<device_range>> ranges;
  for (auto& vid : vids) {
    FILE_REFLINK_TRY(auto r, device_ranges(s.pool(), opened.handle, vid));
    ranges.push_back(std::move(r));
  }
  return volume_distinct_space(ranges, total);
}

result<volume_type> PoolSession::volume(const std::string& vid) {
  auto v = pool_.get_volume(vid);
  if (!v && v.error() == errc::volume_not_found)
    return failure(errc::volume_not_found, "volume '" + vid + "' in pool '" + dir_.string() + "'");
  return v;
}

}  // namespace file_reflink::cli
