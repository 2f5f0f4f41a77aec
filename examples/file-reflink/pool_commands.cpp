// SPDX-License-Identifier: BSL-1.0
//! \file
//! `file-reflink pool init|info|du|scan|recover|adopt`.
#include "commands.hpp"
#include "du.hpp"
#include "errors.hpp"
#include "output.hpp"
#include "sizes.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>

namespace file_reflink::cli {

namespace {

std::string yes_no(bool b) { return b ? "yes" : "no"; }

std::string percent(std::uint64_t part, std::uint64_t whole) {
  if (!whole) return "0%";
  return std::to_string(static_cast<int>(static_cast<double>(part) * 100 / static_cast<double>(whole) + 0.5)) + "%";
}

}  // namespace

result<void> pool_init(const pool_init_args& a, const common_options& o) {
  path dir = pool_path(a.dir);
  const std::string what = "'" + dir.string() + "'";
  if (a.revisions_to_keep && *a.revisions_to_keep < -1)
    return failure(usage_error("--revisions-to-keep must be -1 (snapshots disabled), 0 or more"));
  const path catalog = dir / std::string(layout::catalog_name);
  auto already = [&](const path& file) {
    return failure(error(std::make_error_code(std::errc::file_exists),
                         what + ": it is a file-reflink pool already (it has " + file.string() + ")"));
  };
  // Refuse before setup touches anything. (A volume file of an earlier
  // version is converted by the next command that opens the pool.)
  for (const path& file : {catalog, dir / volume_file_name})
    if (struct stat st; ::stat(file.c_str(), &st) == 0) return already(file);

  ProgressBar bar(false);
  // Its warning that copies will be full copies is shown here, once.
  pool_config cfg = pool_config_for(dir, o, bar, true);
  cfg.revisions_to_keep = a.revisions_to_keep.value_or(1);
  cfg.setup_check = !a.no_setup_check;
  pool_type pool(cfg);
  if (auto r = pool.setup(); !r) {
    // The library names its option; say the command's.
    if (r.error() == errc::reflink_unsupported)
      return failure(error(r.error().code(), dir.string() +
                                                 " does not support reflinks: --no-setup-check makes a pool "
                                                 "without them (every copy a full copy)"));
    return failure(r.error());
  }
  // Setup records the settings in the catalog, unless it records some
  // already: another pool init got there first, with its own.
  FILE_REFLINK_TRY(auto recorded, pool.read_catalog());
  if (recorded.revisions_to_keep != cfg.revisions_to_keep || recorded.setup_check != cfg.setup_check)
    return already(catalog);
  if (o.json) {
    FILE_REFLINK_TRY(bool reflinks, pool.reflinks_supported());
    print_json(json{{"pool", pool.name()},
                    {"directory", dir.string()},
                    {"reflinks", reflinks},
                    {"revisions_to_keep", cfg.revisions_to_keep},
                    {"setup_check", cfg.setup_check},
                    {"catalog", catalog.string()}});
  }
  return success();
}

result<void> pool_info(const std::string& dir, const common_options& o) {
  FILE_REFLINK_TRY(auto s, PoolSession::open(dir, o));
  FILE_REFLINK_TRY(auto size, s.pool().size());
  FILE_REFLINK_TRY(auto used, s.pool().usage());
  FILE_REFLINK_TRY(bool reflinks, s.pool().reflinks_supported());
  const pool_settings& p = s.settings();
  const path catalog = s.dir() / std::string(layout::catalog_name);
  struct stat st;
  const bool has_catalog = ::stat(catalog.c_str(), &st) == 0;
  const std::size_t volumes = s.pool().list_volumes().size();
  if (o.json) {
    print_json(json{{"pool", s.pool().name()},
                    {"directory", s.dir().string()},
                    {"filesystem", {{"size", size}, {"used", used}}},
                    {"reflinks", reflinks},
                    {"revisions_to_keep", p.revisions_to_keep},
                    {"setup_check", p.setup_check},
                    {"catalog", has_catalog ? json(catalog.string()) : json(nullptr)},
                    {"volumes", volumes}});
    return success();
  }
  print_fields({
      {"pool", s.pool().name()},
      {"directory", s.dir().string()},
      {"filesystem", format_size(used) + " of " + format_size(size) + " used (" + percent(used, size) + ")"},
      {"reflinks", reflinks ? "yes: snapshots and commits are instant clones"
                            : "no: every volume copy is a full copy (slow, and it takes space)"},
      {"revisions to keep", std::to_string(p.revisions_to_keep) + " (the default of its volumes)"},
      {"setup check", yes_no(p.setup_check)},
      {"volumes", std::to_string(volumes) + (has_catalog ? " (in " + catalog.string() + ")"
                                                         : " (no catalog: not made by pool init; pool adopt "
                                                           "registers the volumes found on disk)")},
  });
  return success();
}

result<void> pool_du(const std::string& dir, const common_options& o) {
  FILE_REFLINK_TRY(auto s, PoolSession::open(dir, o));
  struct measured {
    volume_type vol;
    bool in_catalog;
  };
  std::vector<measured> vols;
  for (auto& v : s.pool().list_volumes()) vols.push_back({v, true});
  // Volumes on disk that the catalog does not describe (another tool's)
  // take space too: registered, to measure them, in a pool object that
  // keeps no catalog, so that nothing is registered for good.
  pool_config cfg = pool_config_for(s.dir(), o, s.progress(), s.settings().setup_check);
  cfg.catalog = false;
  pool_type unregistered(cfg);
  FILE_REFLINK_TRY(auto report, s.pool().scan());
  for (auto& v : report.volumes)
    if (!v.registered)
      if (auto r = unregistered.init_volume(volume_config::origin(v.vid, 0))) vols.push_back({r.value(), false});
  std::sort(vols.begin(), vols.end(), [](const measured& a, const measured& b) { return a.vol.vid() < b.vol.vid(); });
  std::vector<std::string> vids;
  for (auto& m : vols) vids.push_back(m.vol.vid());
  space_usage total;
  std::vector<std::vector<volume_file_space>> files;
  FILE_REFLINK_TRY(auto whole, whole_volume_space(s, vids, total, &files));

  // Under each volume's line, every file its line counts: the volume's
  // bytes are the union of its files' (the file lines overlap where the
  // files share, so they add up to at least the volume's allocated bytes).
  std::vector<du_row> rows;
  json jvols = json::array();
  for (std::size_t i = 0; i < vols.size(); ++i) {
    auto& vol = vols[i].vol;
    FILE_REFLINK_TRY(auto revs, vol.revisions());
    json jfiles = json::array();
    rows.push_back({vol.vid() + (vols[i].in_catalog ? "" : " (not in the catalog)"), 0, whole[i]});
    for (const volume_file_space& f : files[i]) {
      std::string label = f.label;
      std::string timestamp;
      if (f.kind == layout::file_kind::revision || f.kind == layout::file_kind::pin) {
        if (auto it = revs.find(f.revision); it != revs.end()) timestamp = it->second.timestamp;
      }
      if (f.kind == layout::file_kind::revision && !timestamp.empty()) {
        // "2026-11-27T13:25:19Z" as "2026-11-27 13:25": enough to tell them apart.
        if (timestamp.size() >= 16) label += ", " + timestamp.substr(0, 10) + " " + timestamp.substr(11, 5);
        if (auto it = revs.find(f.revision); !it->second.labels.empty())
          label += " [" + join(it->second.labels, ", ") + "]";
      }
      if (f.hard_link) label += " (hard link)";
      rows.push_back({label, 1, f.usage});
      json jf{{"file", f.path}, {"kind", f.label}, {"hard_link", f.hard_link}};
      if (f.kind == layout::file_kind::revision || f.kind == layout::file_kind::pin) jf["revision"] = f.revision;
      jf.update(to_json(f.usage));
      jfiles.push_back(std::move(jf));
    }
    json jv{{"vid", vol.vid()}, {"in_catalog", vols[i].in_catalog}};
    jv.update(to_json(whole[i]));
    jv["files"] = std::move(jfiles);
    jvols.push_back(std::move(jv));
  }
  FILE_REFLINK_TRY(auto fs_size, s.pool().size());
  FILE_REFLINK_TRY(auto fs_used, s.pool().usage());
  if (o.json) {
    print_json(json{{"volumes", std::move(jvols)},
                    {"total", to_json(total)},
                    {"filesystem", {{"size", fs_size}, {"used", fs_used}}}});
    return success();
  }
  std::printf("pool '%s' in %s: filesystem %s of %s used\n", s.pool().name().c_str(), s.dir().c_str(),
              format_size(fs_used).c_str(), format_size(fs_size).c_str());
  if (rows.empty()) {
    std::printf("no volumes\n");
    return success();
  }
  for (auto& line : draw_du(rows, total, locale_is_utf8(), 30)) std::printf("%s\n", line.c_str());
  return success();
}

result<void> pool_scan(const std::string& dir, const common_options& o) {
  FILE_REFLINK_TRY(auto s, PoolSession::open(dir, o));
  (void)s.pool().list_volumes();  // registers what the catalog has: scan tells those apart
  FILE_REFLINK_TRY(auto report, s.pool().scan());
  if (o.json) {
    print_json(to_json(report));
    return success();
  }
  Table t({"VID", "IN CATALOG", "COMMITTED IMAGE", "RUNNING IMAGE", "IMPORT", "PRECACHE", ">REVISIONS", "NOTES"});
  for (auto& v : report.volumes)
    t.add({v.vid, yes_no(v.registered), yes_no(v.clean), yes_no(v.dirty), yes_no(v.import), to_string(v.precache),
           std::to_string(v.revisions.size()), join(scan_notes(v), "; ")});
  if (report.volumes.empty())
    std::printf("no volumes on disk\n");
  else
    t.print();
  for (auto& f : report.foreign) std::printf("foreign: %s (%s)\n", f.relative.generic_string().c_str(), f.reason.c_str());
  return success();
}

result<void> pool_recover(const std::string& dir, const common_options& o) {
  FILE_REFLINK_TRY(auto s, PoolSession::open(dir, o));
  // Registered volumes: recover knows their kind (a snapshot's running
  // image is no crashed VM's data).
  (void)s.pool().list_volumes();
  FILE_REFLINK_TRY(auto report, s.pool().recover());
  if (o.json) {
    print_json(to_json(report));
    return success();
  }
  for (auto& p : report.removed) std::printf("removed: %s\n", p.generic_string().c_str());
  for (auto& v : report.dirty)
    std::printf("running (or left by a crashed VM; its image is kept: volume stop commits it): %s\n", v.c_str());
  for (auto& v : report.stale_precache) std::printf("stale precache (replaced at its next start): %s\n", v.c_str());
  for (auto& v : report.busy) std::printf("busy, left alone (another command works on it): %s\n", v.c_str());
  for (auto& f : report.foreign) std::printf("foreign, left alone: %s (%s)\n", f.relative.generic_string().c_str(), f.reason.c_str());
  if (report.removed.empty() && report.dirty.empty() && report.stale_precache.empty() && report.busy.empty() &&
      report.foreign.empty())
    std::printf("nothing to recover\n");
  return success();
}

result<void> pool_adopt(const std::string& dir, const common_options& o) {
  FILE_REFLINK_TRY(auto s, PoolSession::open(dir, o, true));
  FILE_REFLINK_TRY(auto report, s.pool().adopt());
  if (o.json) {
    json registered = json::array(), skipped = json::array();
    for (auto& a : report.registered)
      registered.push_back(json{{"vid", a.config.vid},
                                {"kind", to_string(a.config.kind())},
                                {"size", a.config.size},
                                {"rw", a.config.rw},
                                {"revisions_to_keep", a.config.revisions_to_keep.value_or(0)},
                                {"state", state_word(a.state)},
                                {"revisions", a.revisions}});
    for (auto& [vid, why] : report.skipped) skipped.push_back(json{{"vid", vid}, {"reason", why}});
    print_json(json{{"registered", std::move(registered)}, {"skipped", std::move(skipped)}});
    return success();
  }
  if (report.registered.empty()) {
    std::printf("no volume to adopt: every volume on disk is in the catalog\n");
  } else {
    std::printf("adopted into the catalog:\n");
    Table t({"VID", "KIND", ">SIZE", "RW", ">REVISIONS TO KEEP", "STATE", ">REVISIONS"});
    for (auto& a : report.registered)
      t.add({a.config.vid, to_string(a.config.kind()), format_size(a.config.size), yes_no(a.config.rw),
             std::to_string(a.config.revisions_to_keep.value_or(0)), state_word(a.state), std::to_string(a.revisions)});
    t.print();
  }
  for (auto& [vid, why] : report.skipped) std::printf("skipped: %s (%s)\n", vid.c_str(), why.c_str());
  return success();
}

}  // namespace file_reflink::cli
