// SPDX-License-Identifier: BSL-1.0
#include "session.hpp"

#include "du.hpp"
#include "errors.hpp"

#include <boost/filesystem/operations.hpp>

#include <algorithm>

#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <tuple>

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
      print_note("waiting for " + what + " (another command holds it)...");
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

bool file_exists(const path& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

//! Whether `dir` is a pool: it carries the marker that pool init writes, the
//! catalog, or the volume file of an earlier version of the command; or it
//! holds volumes the way the Qubes driver lays them out (a committed image,
//! a running image or a revision: what pool adopt registers).
result<bool> is_pool(pool_type& probe, const path& dir, bool& empty) {
  empty = false;
  for (std::string_view name : {layout::pool_marker, layout::catalog_name})
    if (file_exists(dir / std::string(name))) return true;
  if (file_exists(dir / volume_file_name)) return true;
  auto report = probe.scan();
  if (!report) {
    // An empty directory: the library refuses it as a pool (an unmounted
    // filesystem's mount point), which is what it is not.
    if (report.error() == errc::pool_not_set_up) {
      empty = true;
      return false;
    }
    return failure(report.error());
  }
  // A directory above a pool holds that pool's volume files too: they are
  // the other pool's, and make this one no pool.
  auto in_marked_pool = [&](const std::string& vid) {
    path at = dir;
    const path rel(vid);
    for (auto it = rel.begin(); it != rel.end() && std::next(it) != rel.end(); ++it) {
      at /= *it;
      for (std::string_view name : {layout::pool_marker, layout::catalog_name})
        if (file_exists(at / std::string(name))) return true;
      if (file_exists(at / volume_file_name)) return true;
    }
    return false;
  };
  for (const volume_scan& v : report.value().volumes)
    if ((v.clean || v.dirty || !v.revisions.empty()) && !in_marked_pool(v.vid)) return true;
  return false;
}

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
    print_note("converted " + old_file.string() + " (" + std::to_string(file.volumes.size()) +
               " volume(s)) into the catalog " + (dir / std::string(layout::catalog_name)).string() +
               "; the old file is now " + (dir / converted_volume_file_name).string());
  return success();
}

}  // namespace

result<PoolSession> PoolSession::open(const std::string& dir_arg, const common_options& opts, bool unmarked_ok) {
  path dir = pool_path(dir_arg);
  auto bar = std::make_unique<ProgressBar>(!opts.quiet && !opts.json && ProgressBar::stderr_is_terminal());
  // The usual mistakes first, said in the command's words: nothing there,
  // a file, a directory that is no pool.
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOENT)
      return failure(error(std::make_error_code(std::errc::no_such_file_or_directory),
                           "pool '" + dir.string() + "' does not exist (pool init makes one)"));
    return errno_failure(err, "pool '" + dir.string() + "'");
  }
  if (!S_ISDIR(st.st_mode))
    return failure(error(std::make_error_code(std::errc::not_a_directory),
                         "'" + dir.string() + "' is not a directory: a pool is one (pool init makes one)"));
  pool_type probe(pool_config_for(dir, opts, *bar, true));
  if (!unmarked_ok) {
    bool empty = false;
    FILE_REFLINK_TRY(bool marked, is_pool(probe, dir, empty));
    if (!marked) return failure(not_a_pool_error(dir.string(), empty));
  }
  catalog_contents recorded;
  {
    // The library's own check as well: an empty mount point is refused.
    // statvfs is the cheapest operation that makes that check. The probe
    // registers nothing: it reads the settings that the real pool object
    // is configured with.
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

namespace {

//! What a file of a volume is, in the words `pool du` shows.
std::string file_label(const layout::name_info& info, const dir_entry& e) {
  switch (info.kind) {
    case layout::file_kind::clean: return "committed image";
    case layout::file_kind::dirty: return "running image";
    case layout::file_kind::precache: return "precache";
    case layout::file_kind::import: return "import in progress";
    case layout::file_kind::revision: return "revision " + std::to_string(info.revision);
    case layout::file_kind::pin:
      return "pin " + info.label + " of revision " + std::to_string(info.revision);
    case layout::file_kind::temporary: return "incomplete temporary file " + e.name;
    case layout::file_kind::foreign: break;
  }
  return e.name;
}

}  // namespace

//! Every file of `vid` in its directory (images, revisions, pins,
//! temporaries, and the names that share an inode with another file, which
//! the volume's own space report does not list), with where on the device
//! it keeps its data, through the policy's extent map.
static result<std::vector<volume_file_space>> files_of(pool_type& pool, const LinuxFsOps::dir_handle& h,
                                                     const std::string& vid) {
  layout::volume_paths p = layout::paths_of(vid);
  std::vector<volume_file_space> out;
  auto entries = pool.fs_ops().list(h, p.dir);
  if (!entries) {
    if (entries.error() == std::errc::no_such_file_or_directory) return out;  // no files yet
    return failure(entries.error());
  }
  for (const dir_entry& e : entries.value()) {
    if (e.type != file_type::regular) continue;
    layout::name_info info = layout::classify(e.name);
    if (info.kind == layout::file_kind::foreign || info.base != p.base) continue;
    auto st = pool.fs_ops().stat(h, p.dir / e.name);
    auto ext = pool.fs_ops().extents(h, p.dir / e.name);
    if (!st || !ext) {
      const error& err = !st ? st.error() : ext.error();
      if (err == std::errc::no_such_file_or_directory) continue;  // gone meanwhile
      return failure(err);
    }
    volume_file_space f;
    f.path = (p.dir / e.name).generic_string();
    f.kind = info.kind;
    f.revision = info.revision;
    f.label = file_label(info, e);
    f.hard_link = st.value().nlink > 1;
    for (const extent& x : ext.value())
      if (x.physical != 0)  // an inline or unplaced extent has no place to share
        f.ranges.push_back({x.physical, x.physical + x.length});
    out.push_back(std::move(f));
  }
  std::sort(out.begin(), out.end(), [](const volume_file_space& a, const volume_file_space& b) {
    return std::make_tuple(static_cast<int>(a.kind), a.revision, a.path) <
           std::make_tuple(static_cast<int>(b.kind), b.revision, b.path);
  });
  return out;
}

result<std::vector<space_usage>> whole_volume_space(PoolSession& s, const std::vector<std::string>& vids,
                                                   space_usage& total,
                                                   std::vector<std::vector<volume_file_space>>* files) {
  FILE_REFLINK_TRY(auto opened, s.pool().fs_ops().open_dir(s.dir(), false));
  std::vector<std::vector<device_range>> ranges;
  std::vector<std::vector<volume_file_space>> all;
  for (auto& vid : vids) {
    FILE_REFLINK_TRY(auto fs, files_of(s.pool(), opened.handle, vid));
    std::vector<device_range> r;
    for (auto& f : fs) r.insert(r.end(), f.ranges.begin(), f.ranges.end());
    ranges.push_back(std::move(r));
    all.push_back(std::move(fs));
  }
  auto out = volume_distinct_space(ranges, total);
  if (files) {
    // Each file against every other file of the pool: exclusive bytes are
    // what no other name references.
    std::vector<std::vector<device_range>> per_file;
    for (auto& fs : all)
      for (auto& f : fs) per_file.push_back(f.ranges);
    space_usage unused;
    auto usage = volume_distinct_space(per_file, unused);
    std::size_t i = 0;
    for (auto& fs : all)
      for (auto& f : fs) f.usage = usage[i++];
    *files = std::move(all);
  }
  return out;
}

result<volume_type> PoolSession::volume(const std::string& vid) {
  auto v = pool_.get_volume(vid);
  if (!v && v.error() == errc::volume_not_found)
    return failure(errc::volume_not_found, "volume '" + vid + "' in pool '" + dir_.string() + "'");
  return v;
}

}  // namespace file_reflink::cli
