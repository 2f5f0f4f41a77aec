// SPDX-License-Identifier: BSL-1.0
//! \file
//! `file-reflink pool init|info|du|scan|recover`.
#include "commands.hpp"
#include "du.hpp"
#include "errors.hpp"
#include "output.hpp"
#include "sizes.hpp"

#include <sys/stat.h>

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
  const std::string what = "pool init '" + dir.string() + "'";
  if (a.revisions_to_keep && *a.revisions_to_keep < -1)
    return failure(usage_error("--revisions-to-keep must be -1 (snapshots disabled), 0 or more"));
  auto already = [&] {
    return failure(error(std::make_error_code(std::errc::file_exists),
                         what + ": it is a file-reflink pool already (it has " +
                             (dir / volume_file_name).string() + ")"));
  };
  // Refuse before setup touches anything; checked again under the lock.
  if (struct stat st; ::stat((dir / volume_file_name).c_str(), &st) == 0) return already();

  ProgressBar bar(false);
  // Its warning that copies will be full copies is shown here, once.
  pool_config cfg = pool_config_for(dir, o, bar, true);
  cfg.revisions_to_keep = a.revisions_to_keep.value_or(1);
  cfg.setup_check = !a.no_setup_check;
  pool_type pool(cfg);
  if (auto r = pool.setup(); !r) {
    // The library names its option; say the command's.
    if (r.error() == errc::reflink_unsupported)
      return failure(error(r.error().code(), r.error().message() + " (--no-setup-check)"));
    return failure(r.error());
  }
  FILE_REFLINK_TRY(auto lock, PoolLock::acquire(dir, lock_mode::exclusive, o.quiet));
  FILE_REFLINK_TRY(auto file, read_volume_file(dir));
  if (file.exists) return already();
  file.pool.revisions_to_keep = cfg.revisions_to_keep;
  file.pool.setup_check = cfg.setup_check;
  return write_volume_file(dir, file);
}

result<void> pool_info(const std::string& dir, const common_options& o) {
  FILE_REFLINK_TRY(auto s, PoolSession::open(dir, lock_mode::shared, o));
  FILE_REFLINK_TRY(auto size, s.pool().size());
  FILE_REFLINK_TRY(auto used, s.pool().usage());
  FILE_REFLINK_TRY(bool reflinks, s.pool().reflinks_supported());
  const VolumeFile& f = s.file();
  path file = s.dir() / volume_file_name;
  if (o.json) {
    print_json(json{{"name", s.pool().name()},
                    {"directory", s.dir().string()},
                    {"filesystem", {{"size", size}, {"used", used}}},
                    {"reflinks", reflinks},
                    {"revisions_to_keep", f.pool.revisions_to_keep},
                    {"setup_check", f.pool.setup_check},
                    {"volume_file", f.exists ? json(file.string()) : json(nullptr)},
                    {"volumes", f.volumes.size()}});
    return success();
  }
  print_fields({
      {"pool", s.pool().name()},
      {"directory", s.dir().string()},
      {"filesystem", format_size(used) + " of " + format_size(size) + " used (" + percent(used, size) + ")"},
      {"reflinks", reflinks ? "yes: snapshots and commits are instant clones"
                            : "no: every volume copy is a full copy (slow, and it takes space)"},
      {"revisions to keep", std::to_string(f.pool.revisions_to_keep) + " (the default of its volumes)"},
      {"setup check", yes_no(f.pool.setup_check)},
      {"volumes", std::to_string(f.volumes.size()) +
                      (f.exists ? " (in " + file.string() + ")" : " (no volume file: not made by pool init)")},
  });
  return success();
}

result<void> pool_du(const std::string& dir, const common_options& o) {
  FILE_REFLINK_TRY(auto s, PoolSession::open(dir, lock_mode::shared, o));
  // Volumes on disk that the volume file does not describe (another tool's)
  // take space too: registered in this process only, to measure them.
  FILE_REFLINK_TRY(auto report, s.pool().scan());
  for (auto& v : report.volumes)
    if (!v.registered) (void)s.pool().init_volume(volume_config::origin(v.vid, 0));
  auto vols = s.pool().list_volumes();
  space_usage total;
  FILE_REFLINK_TRY(auto whole, whole_volume_space(s, vols, total));

  std::vector<du_row> rows;
  json jvols = json::array();
  for (std::size_t i = 0; i < vols.size(); ++i) {
    auto& vol = vols[i];
    FILE_REFLINK_TRY(auto sp, vol.space());
    FILE_REFLINK_TRY(auto revs, vol.revisions());
    bool described = s.file().volumes.count(vol.vid()) > 0;
    jvols.push_back(json{{"vid", vol.vid()},
                         {"in_volume_file", described},
                         {"volume", to_json(whole[i])},
                         {"files", to_json(sp)}});
    rows.push_back({vol.vid() + (described ? "" : " (not in the volume file)"), 0, whole[i]});
    if (sp.dirty) rows.push_back({"running image", 1, *sp.dirty});
    if (sp.clean) rows.push_back({"committed image", 1, *sp.clean});
    if (sp.precache) rows.push_back({"precache", 1, *sp.precache});
    for (auto& [n, u] : sp.revisions) {
      std::string label = "revision " + std::to_string(n);
      if (auto it = revs.find(n); it != revs.end()) {
        // "2026-11-27T13:25:19Z" as "2026-11-27 13:25": enough to tell them apart.
        const std::string& t = it->second.timestamp;
        if (t.size() >= 16) label += ", " + t.substr(0, 10) + " " + t.substr(11, 5);
        if (!it->second.labels.empty()) label += " [" + join(it->second.labels, ", ") + "]";
      }
      rows.push_back({label, 1, u});
    }
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
  FILE_REFLINK_TRY(auto s, PoolSession::open(dir, lock_mode::shared, o));
  FILE_REFLINK_TRY(auto report, s.pool().scan());
  if (o.json) {
    print_json(to_json(report));
    return success();
  }
  Table t({"VID", "IN FILE", "IMAGE", "RUNNING", "IMPORT", "PRECACHE", ">REVISIONS", "NOTES"});
  for (auto& v : report.volumes) {
    std::vector<std::string> notes;
    if (!v.orphan_pins.empty()) notes.push_back("pins without their revision: " + join(v.orphan_pins, ", "));
    if (!v.temporary.empty()) notes.push_back(std::to_string(v.temporary.size()) + " incomplete temporary file(s)");
    if (v.import) notes.push_back("an interrupted import");
    t.add({v.vid, yes_no(v.registered), yes_no(v.clean), yes_no(v.dirty), yes_no(v.import), to_string(v.precache),
           std::to_string(v.revisions.size()), join(notes, "; ")});
  }
  if (report.volumes.empty())
    std::printf("no volumes on disk\n");
  else
    t.print();
  for (auto& f : report.foreign) std::printf("foreign: %s (%s)\n", f.relative.generic_string().c_str(), f.reason.c_str());
  return success();
}

result<void> pool_recover(const std::string& dir, const common_options& o) {
  FILE_REFLINK_TRY(auto s, PoolSession::open(dir, lock_mode::exclusive, o));
  FILE_REFLINK_TRY(auto report, s.pool().recover());
  if (o.json) {
    print_json(to_json(report));
    return success();
  }
  for (auto& p : report.removed) std::printf("removed: %s\n", p.generic_string().c_str());
  for (auto& v : report.dirty) std::printf("running or crashed (its image is kept; stop it to commit): %s\n", v.c_str());
  for (auto& v : report.stale_precache) std::printf("stale precache (replaced at its next start): %s\n", v.c_str());
  for (auto& f : report.foreign) std::printf("foreign, left alone: %s (%s)\n", f.relative.generic_string().c_str(), f.reason.c_str());
  if (report.removed.empty() && report.dirty.empty() && report.stale_precache.empty() && report.foreign.empty())
    std::printf("nothing to recover\n");
  return success();
}

}  // namespace file_reflink::cli
