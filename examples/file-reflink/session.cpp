// SPDX-License-Identifier: BSL-1.0
#include "session.hpp"

#include "du.hpp"
#include "errors.hpp"

#include <boost/filesystem/operations.hpp>

#include <sys/stat.h>

#include <cerrno>
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

result<PoolSession> PoolSession::open(const std::string& dir_arg, lock_mode mode, const common_options& opts) {
  path dir = pool_path(dir_arg);
  auto bar = std::make_unique<ProgressBar>(!opts.quiet && ProgressBar::stderr_is_terminal());
  pool_config probe_cfg = pool_config_for(dir, opts, *bar, true);
  // The usual mistake first, said in the command's words.
  if (struct stat st; ::stat(dir.c_str(), &st) != 0)
    return errno_failure(errno, "pool '" + dir.string() + "' (make one with: file-reflink pool init DIR)");
  {
    // Is it a pool? The library's own check: the directory exists and is
    // marked, or is a pool the Qubes driver filled; an empty mount point is
    // refused. statvfs is the cheapest operation that makes that check.
    pool_type probe(probe_cfg);
    if (auto r = probe.size(); !r) return failure(r.error());
  }
  FILE_REFLINK_TRY(auto lock, PoolLock::acquire(dir, mode, opts.quiet));
  FILE_REFLINK_TRY(auto file, read_volume_file(dir));
  pool_config cfg = pool_config_for(dir, opts, *bar, file.pool.setup_check);
  cfg.revisions_to_keep = file.pool.revisions_to_keep;
  PoolSession s(dir, opts, std::move(bar), pool_type(cfg));
  s.lock_ = std::move(lock);
  for (auto& [vid, c] : file.volumes) {
    // A config the library refuses is the file's fault, not the arguments'.
    if (auto r = s.pool_.init_volume(c); !r)
      return failure(error(std::make_error_code(std::errc::bad_message),
                           "volume file '" + (dir / volume_file_name).string() + "': " + r.error().message()));
  }
  s.file_ = std::move(file);
  return s;
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

result<std::vector<space_usage>> whole_volume_space(PoolSession& s, const std::vector<volume_type>& vols,
                                                   space_usage& total) {
  FILE_REFLINK_TRY(auto opened, s.pool().fs_ops().open_dir(s.dir(), false));
  std::vector<std::vector<device_range>> ranges;
  for (auto& vol : vols) {
    FILE_REFLINK_TRY(auto r, device_ranges(s.pool(), opened.handle, vol.vid()));
    ranges.push_back(std::move(r));
  }
  return volume_distinct_space(ranges, total);
}

result<volume_type> PoolSession::volume(const std::string& vid) {
  if (!file_.volumes.count(vid))
    return failure(errc::volume_not_found, "volume '" + vid + "' in pool '" + dir_.string() + "'");
  return pool_.get_volume(vid);
}

}  // namespace file_reflink::cli
