// SPDX-License-Identifier: BSL-1.0
//! \file
//! `file-reflink volume ...`: each command opens the pool and acts on one
//! volume through the library, which locks that volume (shared to read,
//! exclusive to change) for each operation and keeps its config in the
//! pool's catalog.
#include "commands.hpp"
#include "errors.hpp"
#include "output.hpp"
#include "sizes.hpp"
#include "transfer.hpp"

#include <sys/stat.h>
#include <boost/filesystem/operations.hpp>

#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>

namespace file_reflink::cli {

namespace {

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

result<std::uint64_t> revision_number(const std::string& text) {
  std::uint64_t n = 0;
  const char* end = text.data() + text.size();
  auto [stop, ec] = std::from_chars(text.data(), end, n);
  if (!all_digits(text) || ec != std::errc() || stop != end)
    return failure(usage_error("revision '" + text + "' is not a revision number"));
  return n;
}

//! What list and info show of a volume: names and sizes, never an extent
//! map, so that a pool of large images lists at once, and a user who may
//! only read the pool can list it.
struct volume_facts {
  volume_config cfg;
  std::uint64_t size = 0;
  volume_status state = volume_status::stopped;
  bool outdated = false;
  std::optional<path> image;  //!< the image to attach, while running
  revision_map revisions;
  bool busy = false;  //!< list: another command held it past --wait; only its config is known

  bool running() const { return state != volume_status::stopped; }
  std::string state_text() const { return busy ? "busy" : state_word(state); }
};

result<volume_facts> facts_of(PoolSession& s, volume_type& v) {
  volume_facts f;
  f.cfg = v.config();
  FILE_REFLINK_TRY(f.state, v.state());
  FILE_REFLINK_TRY(f.revisions, v.revisions());
  FILE_REFLINK_TRY(f.outdated, v.is_outdated());
  FILE_REFLINK_TRY(f.size, v.size());
  if (f.running()) {
    // Each query locks the volume on its own: another command may stop it
    // between two of them, and block_device refuses a stopped volume.
    auto dev = v.block_device();
    if (dev)
      f.image = dev.value().device_path;
    else if (dev.error() == errc::volume_not_running)
      f.state = volume_status::stopped;
    else
      return failure(dev.error());
  }
  if (!f.running() && f.cfg.kind() == volume_kind::snapshot && f.cfg.source) {
    // A stopped snapshot has no image: its next start is its source's size.
    if (auto src = s.volume(*f.cfg.source))
      if (auto sz = src.value().size()) f.size = sz.value();
  }
  return f;
}

json facts_json(const volume_facts& f) {
  return json{{"vid", f.cfg.vid},
              {"name", f.cfg.name},
              {"kind", to_string(f.cfg.kind())},
              {"size", f.size},
              {"rw", f.cfg.rw},
              {"source", f.cfg.source ? json(*f.cfg.source) : json(nullptr)},
              {"revisions_to_keep", f.cfg.revisions_to_keep.value_or(0)},
              {"ephemeral", f.cfg.ephemeral},
              {"state", f.state_text()},
              {"running", f.running()},
              {"outdated", f.outdated},
              {"image", f.image ? json(f.image->string()) : json(nullptr)},
              {"revisions", to_json(f.revisions)}};
}

const char* state_help(volume_status s) {
  switch (s) {
    case volume_status::stopped: return "stopped";
    case volume_status::running: return "running (its image is discarded at stop)";
    case volume_status::dirty: return "dirty: running, or left by a crashed VM (its data is committed at stop)";
  }
  return "";
}

const char* kind_help(volume_kind k) {
  switch (k) {
    case volume_kind::origin: return "keeps its data, committed at stop";
    case volume_kind::volatile_: return "a fresh empty image at every start";
    case volume_kind::snapshot: return "a clone of its source at every start, discarded at stop";
    case volume_kind::origin_snapshot: return "a clone of its source at every start, committed at stop";
  }
  return "";
}

//! Open the pool and find the volume: the two steps every command starts with.
struct opened {
  PoolSession session;
  volume_type volume;
};

//! The volume's revisions, to tell what an operation changed in them.
result<revision_map> revisions_of(volume_type& v) { return v.revisions(); }

//! {"vid": ...} and the keys of `rest`.
json volume_result(const std::string& vid, json rest = json::object()) {
  json j{{"vid", vid}};
  j.update(rest);
  return j;
}

result<opened> open_volume(const volume_args& a, const common_options& o) {
  FILE_REFLINK_TRYV(layout::validate_vid(a.vid));  // a malformed vid is a usage error, not a missing volume
  FILE_REFLINK_TRY(auto s, PoolSession::open(a.dir, o));
  FILE_REFLINK_TRY(auto v, s.volume(a.vid));
  return opened{std::move(s), std::move(v)};
}

}  // namespace

result<std::uint64_t> size_argument(const std::string& what, const std::string& text) {
  auto n = parse_size(text);
  if (!n) return failure(usage_error(what + " '" + text + "' is not a size (like 10G, 512M, 1.5T or 4096)"));
  return *n;
}

result<void> volume_create(const volume_create_args& a, const common_options& o) {
  // The arguments first: a usage error changes nothing.
  volume_config c;
  c.vid = a.vid;
  c.rw = !a.read_only;
  c.revisions_to_keep = a.revisions_to_keep;
  bool from_source = a.kind == "snapshot" || a.kind == "origin-snapshot";
  c.snap_on_start = from_source;
  c.save_on_stop = a.kind == "origin" || a.kind == "origin-snapshot";
  const std::string a_kind = (a.kind == "origin" || a.kind == "origin-snapshot" ? "an " : "a ") + a.kind;
  if (from_source && !a.source) return failure(usage_error(a_kind + " volume needs --source VID"));
  if (a.kind == "volatile" && a.source) return failure(usage_error("a volatile volume has no --source"));
  if (from_source) c.source = a.source;
  bool import_source = a.kind == "origin" && a.source.has_value();
  if (a.size) {
    FILE_REFLINK_TRY(c.size, size_argument("--size", *a.size));
  } else if (!from_source && !import_source) {
    return failure(usage_error(a_kind + " volume needs --size SIZE"));
  }
  if (a.revisions_to_keep && *a.revisions_to_keep < -1)
    return failure(usage_error("--revisions-to-keep must be -1 (snapshots disabled), 0 or more"));
  if (auto r = layout::validate_vid(a.vid); !r) return failure(r.error());

  FILE_REFLINK_TRY(auto s, PoolSession::open(a.dir, o));
  const std::string what = "volume '" + a.vid + "'";
  // Registering a config the catalog has already is no error for the
  // library (a program registering its volumes after a restart), but
  // create() below would then wipe the existing volume's files: said early
  // here, and refused under the catalog's lock by init_volume below (two
  // commands creating one vid at once).
  if (auto existing = s.pool().get_volume(a.vid))
    return failure(errc::volume_exists, what + ": the pool's catalog has it already");
  else if (existing.error() != errc::volume_not_found)
    return failure(existing.error());
  std::optional<volume_type> source;
  if (a.source) {
    FILE_REFLINK_TRY(auto src, s.volume(*a.source));
    source = src;
    if (!c.size && import_source) {
      FILE_REFLINK_TRY(c.size, src.size());
    }
  }
  // create() removes whatever files the vid has: never those of a volume
  // that another tool (a Qubes driver sharing the pool) made.
  FILE_REFLINK_TRY(auto report, s.pool().scan());
  for (auto& v : report.volumes)
    if (v.vid == a.vid && (v.clean || v.dirty || !v.revisions.empty()))
      return failure(errc::volume_exists, what + ": the pool has files of that vid that its catalog does not "
                                                 "describe (another tool's volume? pool adopt registers it); "
                                                 "not touching them");

  // The catalog first (init_volume writes it): were this command killed
  // half-way, the volume it names can be removed; files that no config
  // names could not be.
  FILE_REFLINK_TRY(auto vol, s.pool().init_volume(c, existing_volume::refuse));
  auto made = [&]() -> result<void> {
    // A copy of a source is committed by import_volume itself: creating an
    // empty image first would only leave it behind as revision 1.
    if (import_source) {
      FILE_REFLINK_TRYV(vol.import_volume(*source));
    } else {
      FILE_REFLINK_TRYV(vol.create());
    }
    if (from_source) FILE_REFLINK_TRYV(vol.verify());
    return success();
  }();
  if (!made) {
    (void)vol.remove();  // its files and its catalog entry
    return failure(made.error());
  }
  if (o.json) {
    FILE_REFLINK_TRY(auto size, vol.size());
    const volume_config cfg = vol.config();
    print_json(volume_result(a.vid, {{"kind", to_string(cfg.kind())},
                                     {"size", size},
                                     {"rw", cfg.rw},
                                     {"source", cfg.source ? json(*cfg.source) : json(nullptr)},
                                     {"revisions_to_keep", cfg.revisions_to_keep.value_or(0)},
                                     {"state", "stopped"}}));
  }
  return success();
}

result<void> volume_list(const std::string& dir, const common_options& o) {
  FILE_REFLINK_TRY(auto s, PoolSession::open(dir, o));
  json out = json::array();
  Table t({"VID", "KIND", ">SIZE", "STATE", ">REVISIONS", "SOURCE"});
  auto vols = s.pool().list_volumes();
  for (auto& v : vols) {
    auto facts = facts_of(s, v);
    if (!facts && facts.error() == errc::volume_busy) {
      // --wait or --no-wait gave up on this one: the others are worth
      // listing still, and its config is known without its lock.
      if (!o.quiet) print_warning(facts.error().message());
      volume_facts busy;
      busy.cfg = v.config();
      busy.size = busy.cfg.size;
      busy.busy = true;
      facts = busy;
    }
    if (!facts) return failure(facts.error());
    const volume_facts& f = facts.value();
    if (o.json) {
      out.push_back(facts_json(f));
      continue;
    }
    std::string state = f.state_text();
    if (f.running() && f.outdated) state += " (outdated)";
    t.add({f.cfg.vid, to_string(f.cfg.kind()), f.busy ? "-" : format_size(f.size), state,
           f.cfg.save_on_stop && !f.busy ? std::to_string(f.revisions.size()) : "-", f.cfg.source.value_or("")});
  }
  if (o.json)
    print_json(out);
  else if (vols.empty())
    std::printf("no volumes\n");
  else
    t.print();
  return success();
}

result<void> volume_info(const volume_args& a, const common_options& o) {
  FILE_REFLINK_TRY(auto ov, open_volume(a, o));
  FILE_REFLINK_TRY(auto f, facts_of(ov.session, ov.volume));
  FILE_REFLINK_TRY(auto space, ov.volume.space());
  // Its files share with each other: what it holds as a whole, against the
  // other volumes, is what removing it would free.
  std::vector<std::string> vids;
  for (auto& v : ov.session.pool().list_volumes()) vids.push_back(v.vid());
  space_usage total;
  FILE_REFLINK_TRY(auto whole, whole_volume_space(ov.session, vids, total));
  space_usage own;
  for (std::size_t i = 0; i < vids.size(); ++i)
    if (vids[i] == a.vid) own = whole[i];
  if (o.json) {
    json j = facts_json(f);
    j["space"] = to_json(space);
    j["volume_space"] = to_json(own);
    print_json(j);
    return success();
  }
  fields out{{"vid", f.cfg.vid}, {"kind", std::string(to_string(f.cfg.kind())) + ": " + kind_help(f.cfg.kind())}};
  if (f.cfg.source) out.push_back({"source", *f.cfg.source});
  out.push_back({"size", size_and_bytes(f.size) + (f.cfg.rw ? "" : ", read-only")});
  std::string state = state_help(f.state);
  if (f.image) state += ": attach " + f.image->string();
  if (f.running() && f.outdated) state += " (outdated: its source committed since it started)";
  out.push_back({"state", state});
  out.push_back({"space", format_size(own.allocated) + " on disk: " + format_size(own.exclusive) +
                              " its own (freed by removing it), " + format_size(own.shared) +
                              " shared with other volumes"});
  if (f.cfg.save_on_stop) {
    int keep = f.cfg.revisions_to_keep.value_or(0);
    std::string revs = std::to_string(f.revisions.size());
    if (!f.revisions.empty()) revs += ", newest " + f.revisions.rbegin()->second.timestamp;
    revs += keep < 0 ? " (snapshots disabled)" : " (keeps " + std::to_string(keep) + ")";
    out.push_back({"revisions", revs});
  }
  print_fields(out);
  return success();
}

result<void> volume_start(const volume_args& a, const common_options& o) {
  FILE_REFLINK_TRY(auto ov, open_volume(a, o));
  FILE_REFLINK_TRYV(ov.volume.start());
  FILE_REFLINK_TRY(auto dev, ov.volume.block_device());
  if (o.json) {
    FILE_REFLINK_TRY(auto size, ov.volume.size());
    print_json(volume_result(a.vid, {{"image", dev.device_path.string()},
                                     {"read_only", dev.read_only},
                                     {"kind", to_string(ov.volume.config().kind())},
                                     {"size", size},
                                     {"state", "running"}}));
    return success();
  }
  // The one thing a script needs: the image to attach.
  std::printf("%s\n", dev.device_path.c_str());
  return success();
}

result<void> volume_stop(const volume_args& a, const common_options& o) {
  FILE_REFLINK_TRY(auto ov, open_volume(a, o));
  FILE_REFLINK_TRY(auto before, revisions_of(ov.volume));
  const bool keeps = ov.volume.config().save_on_stop;
  FILE_REFLINK_TRYV(ov.volume.stop());
  FILE_REFLINK_TRY(auto after, revisions_of(ov.volume));
  revision_change c = compare_revisions(before, after);
  if (o.json) {
    json j = volume_result(a.vid, {{"committed", keeps}, {"state", "stopped"}});
    add_to_json(j, c);
    print_json(j);
  } else if (!o.quiet) {
    if (keeps)
      std::printf("%s: committed; %s\n", a.vid.c_str(), describe(c, "the previous committed image").c_str());
    else
      std::printf("%s: stopped; its image was discarded\n", a.vid.c_str());
  }
  return success();
}

result<void> volume_revisions(const volume_args& a, const common_options& o) {
  FILE_REFLINK_TRY(auto ov, open_volume(a, o));
  FILE_REFLINK_TRY(auto revs, ov.volume.revisions());
  FILE_REFLINK_TRY(auto sp, ov.volume.space());
  json out = json::array();
  Table t({">NUMBER", "TIMESTAMP", "LABELS", ">ALLOCATED", ">EXCLUSIVE", ">SHARED"});
  for (auto& [n, r] : revs) {
    space_usage u;
    if (auto it = sp.revisions.find(n); it != sp.revisions.end()) u = it->second;
    json j = to_json(r);
    j.update(to_json(u));
    out.push_back(std::move(j));
    t.add({std::to_string(n), r.timestamp, join(r.labels, ","), format_size(u.allocated), format_size(u.exclusive),
           format_size(u.shared)});
  }
  if (o.json)
    print_json(out);
  else if (revs.empty())
    std::printf("no revisions\n");
  else
    t.print();
  return success();
}

result<void> volume_revert(const volume_args& a, const common_options& o) {
  FILE_REFLINK_TRY(auto ov, open_volume(a, o));
  FILE_REFLINK_TRY(auto before, revisions_of(ov.volume));
  // Which revision becomes the committed image, as the list shows it now.
  std::optional<std::uint64_t> chosen;
  if (a.operand1.empty()) {
    if (!before.empty()) chosen = before.rbegin()->first;
    FILE_REFLINK_TRYV(ov.volume.revert());
  } else if (all_digits(a.operand1)) {
    FILE_REFLINK_TRY(auto n, revision_number(a.operand1));
    chosen = n;
    FILE_REFLINK_TRYV(ov.volume.revert(n));
  } else {
    for (auto& [n, r] : before)
      if (std::find(r.labels.begin(), r.labels.end(), a.operand1) != r.labels.end()) chosen = n;
    FILE_REFLINK_TRYV(ov.volume.revert(a.operand1));
  }
  FILE_REFLINK_TRY(auto after, revisions_of(ov.volume));
  revision_change c = compare_revisions(before, after);
  // The chosen revision is no revision of its own any more unless a pin
  // keeps it: that is no pruning.
  if (chosen) c.pruned.erase(std::remove(c.pruned.begin(), c.pruned.end(), *chosen), c.pruned.end());
  if (o.json) {
    json j = volume_result(a.vid, {{"committed_revision", chosen ? json(*chosen) : json(nullptr)}});
    add_to_json(j, c);
    print_json(j);
  } else if (!o.quiet) {
    std::printf("%s: revision %s is the committed image; %s\n", a.vid.c_str(),
                chosen ? std::to_string(*chosen).c_str() : "?", describe(c, "the previous committed image").c_str());
  }
  return success();
}

result<void> volume_keep(const volume_args& a, const common_options& o) {
  FILE_REFLINK_TRY(auto n, revision_number(a.operand1));
  FILE_REFLINK_TRY(auto ov, open_volume(a, o));
  FILE_REFLINK_TRYV(ov.volume.keep_revision(n, a.operand2));
  if (o.json) print_json(volume_result(a.vid, {{"revision", n}, {"label", a.operand2}}));
  return success();
}

result<void> volume_drop(const volume_args& a, const common_options& o) {
  FILE_REFLINK_TRY(auto ov, open_volume(a, o));
  FILE_REFLINK_TRY(auto before, revisions_of(ov.volume));
  if (all_digits(a.operand1)) {
    FILE_REFLINK_TRY(auto n, revision_number(a.operand1));
    FILE_REFLINK_TRYV(ov.volume.drop_revision(n));
  } else {
    FILE_REFLINK_TRYV(ov.volume.drop_revision(a.operand1));
  }
  FILE_REFLINK_TRY(auto after, revisions_of(ov.volume));
  if (o.json) {
    json j = volume_result(a.vid);
    add_to_json(j, compare_revisions(before, after));
    print_json(j);
  }
  return success();
}

result<void> volume_unkeep(const volume_args& a, const common_options& o) {
  FILE_REFLINK_TRY(auto ov, open_volume(a, o));
  FILE_REFLINK_TRYV(ov.volume.unkeep_revision(a.operand1));
  if (o.json) print_json(volume_result(a.vid, {{"label", a.operand1}}));
  return success();
}

result<void> volume_set(const volume_args& a, const common_options& o) {
  // The arguments first: a usage error opens nothing.
  const std::string& key = a.operand1;
  const std::string& value = a.operand2;
  volume_update u;
  if (key == "revisions_to_keep") {
    int n = 0;
    const char* end = value.data() + value.size();
    auto [stop, ec] = std::from_chars(value.data(), end, n);
    if (value.empty() || ec != std::errc() || stop != end || n < -1)
      return failure(usage_error("revisions_to_keep '" + value +
                                 "' must be -1 (snapshots disabled), 0 or more"));
    u.revisions_to_keep = n;
  } else if (key == "rw") {
    if (value == "true" || value == "1" || value == "yes")
      u.rw = true;
    else if (value == "false" || value == "0" || value == "no")
      u.rw = false;
    else
      return failure(usage_error("rw '" + value + "' must be true or false (1 or 0, yes or no)"));
  } else if (key == "source") {
    if (value.empty() || value == "none") {
      u.source = std::optional<std::string>();
    } else {
      FILE_REFLINK_TRYV(layout::validate_vid(value));
      u.source = value;
    }
  } else {
    return failure(usage_error("unknown key '" + key + "' (revisions_to_keep, rw or source)"));
  }
  FILE_REFLINK_TRY(auto ov, open_volume(a, o));
  // As at create: a source must be a volume of the pool. The library only
  // finds out at the next start.
  if (u.source && *u.source) FILE_REFLINK_TRYV(ov.session.volume(**u.source));
  FILE_REFLINK_TRYV(ov.volume.update(u));
  if (o.json) {
    const volume_config cfg = ov.volume.config();
    json v;
    if (key == "revisions_to_keep") v = cfg.revisions_to_keep.value_or(0);
    else if (key == "rw") v = cfg.rw;
    else v = cfg.source ? json(*cfg.source) : json(nullptr);
    print_json(volume_result(a.vid, {{"key", key}, {"value", std::move(v)}}));
  }
  return success();
}

result<void> volume_resize(const volume_args& a, const common_options& o) {
  FILE_REFLINK_TRY(auto size, size_argument("size", a.operand1));
  FILE_REFLINK_TRY(auto ov, open_volume(a, o));
  FILE_REFLINK_TRY(auto current, ov.volume.size());
  if (a.shrink) {
    FILE_REFLINK_TRY(auto before, revisions_of(ov.volume));
    FILE_REFLINK_TRYV(ov.volume.shrink(size));
    FILE_REFLINK_TRY(auto after, revisions_of(ov.volume));
    revision_change c = compare_revisions(before, after);
    if (o.json) {
      json j = volume_result(a.vid, {{"previous_size", current}, {"size", size}});
      add_to_json(j, c);
      print_json(j);
    } else if (!o.quiet) {
      std::printf("%s: shrunk to %s; %s\n", a.vid.c_str(), size_and_bytes(size).c_str(),
                  describe(c, "the previous committed image").c_str());
    }
    return success();
  }
  // A size beyond the whole filesystem is a typo (100T for 100G) that no
  // command could undo: the volume's size only ever grows.
  if (size > current && !a.force) {
    struct statvfs fs;
    if (::statvfs(ov.session.dir().c_str(), &fs) != 0)
      return errno_failure(errno, "statvfs '" + ov.session.dir().string() + "'");
    const std::uint64_t total = static_cast<std::uint64_t>(fs.f_blocks) * fs.f_frsize;
    if (size > total)
      return failure(refusal(EFBIG, "resize volume '" + a.vid + "': " + size_and_bytes(size) +
                                      " is more than the filesystem's size, " + size_and_bytes(total) +
                                      " (the pool '" + ov.session.dir().string() + "'); --force resizes it anyway"));
  }
  auto r = ov.volume.resize(size);
  if (!r && r.error() == errc::shrink_refused)
    return failure(error(r.error().code(), r.error().message() +
                                               " (--shrink makes a stopped volume smaller, keeping its current "
                                               "image as a revision)"));
  FILE_REFLINK_TRYV(std::move(r));
  if (o.json) print_json(volume_result(a.vid, {{"previous_size", current}, {"size", size}}));
  return success();
}

namespace {

//! How an import copied, in words ("cloned": no data moved).
const char* copy_words(const std::string& method) {
  if (method == "clone") return "cloned";
  if (method == "copy_file_range") return "copied in the kernel";
  if (method == "sparse_copy") return "copied";
  if (method == "stream") return "streamed";
  return "nothing to copy";
}

}  // namespace

result<void> volume_import(const volume_args& a, const common_options& o) {
  std::optional<std::uint64_t> size;
  if (a.size) {
    FILE_REFLINK_TRY(size, size_argument("--size", *a.size));
  }
  FILE_REFLINK_TRY(auto ov, open_volume(a, o));
  volume_type& v = ov.volume;
  FILE_REFLINK_TRY(auto src, open_import_source(a.operand1));
  ProgressBar& bar = ov.session.progress();
  std::string label = "import " + v.vid();
  FILE_REFLINK_TRY(auto before, revisions_of(v));
  // What the import made and pruned, and how it copied.
  auto report = [&](std::uint64_t imported, const char* method) -> result<void> {
    FILE_REFLINK_TRY(auto after, revisions_of(v));
    revision_change c = compare_revisions(before, after);
    if (o.verbose)
      std::fprintf(stderr, "file-reflink: imported %s into '%s' by %s\n", src.name.c_str(), v.vid().c_str(), method);
    if (o.json) {
      json j = volume_result(a.vid, {{"file", a.operand1}, {"size", imported}, {"copy", method}});
      add_to_json(j, c);
      print_json(j);
    } else if (!o.quiet) {
      std::printf("%s: imported %s, %s; %s\n", a.vid.c_str(), size_and_bytes(imported).c_str(), copy_words(method),
                  describe(c, "the previous committed image").c_str());
    }
    return success();
  };
  // A regular file (named, or on standard input) of the image's size: the
  // library's copy, a clone where it shares the pool's filesystem.
  if (src.regular && (!size || *size == src.size)) {
    std::optional<path> file;
    if (a.operand1 == "-") {
      file = path_of_regular_input(src);
    } else {
      boost::system::error_code ec;
      path abs = boost::filesystem::canonical(path(a.operand1), ec);
      if (!ec) file = abs;
    }
    if (file) {
      auto method = v.import_file(*file, [&](std::uint64_t done, std::uint64_t total) {
        return bar.update(label, done, total);
      });
      bar.finish();
      if (!method) return failure(method.error().context("import volume '" + v.vid() + "'"));
      return report(src.size, to_string(method.value()));
    }
  }
  if (!size) {
    if (src.seekable) {
      size = src.size;
    } else {
      FILE_REFLINK_TRY(size, v.size());  // a pipe: the volume's size, unless --size says otherwise
    }
  }
  FILE_REFLINK_TRY(auto target, v.import_data(*size));
  auto streamed = stream_into_image(src, target, *size, a.size.has_value(), a.allow_short, [&](std::uint64_t done, std::uint64_t total) {
    return bar.update(label, done, total);
  });
  bar.finish();
  if (!streamed) {
    // Cancelled or failed: the import file goes, the volume is as it was.
    (void)v.import_data_end(false);
    return failure(streamed.error().context("import volume '" + v.vid() + "'"));
  }
  if (auto r = v.import_data_end(true); !r) {
    // The import stays open for a retry, which this process will not make:
    // drop it, so that a failed import leaves nothing behind either.
    (void)v.import_data_end(false);
    return failure(r.error());
  }
  return report(*size, "stream");
}

result<void> volume_export(const volume_args& a, const common_options& o) {
  FILE_REFLINK_TRY(auto ov, open_volume(a, o));
  volume_type& v = ov.volume;
  FILE_REFLINK_TRY(auto image, v.export_());
  std::uint64_t exported = 0;
  if (struct stat st; ::stat(image.c_str(), &st) == 0) exported = static_cast<std::uint64_t>(st.st_size);
  ProgressBar& bar = ov.session.progress();
  std::string label = "export " + v.vid();
  auto streamed = stream_out_of_image(image, a.operand1, a.force, [&](std::uint64_t done, std::uint64_t total) {
    return bar.update(label, done, total);
  });
  bar.finish();
  (void)v.export_end(image);
  if (!streamed) return failure(streamed.error().context("export volume '" + v.vid() + "'"));
  if (o.json) {
    // To standard output the data goes: the result then goes to stderr.
    json j = volume_result(a.vid, {{"file", a.operand1}, {"size", exported}});
    std::string text = j.dump(2, ' ', false, json::error_handler_t::replace);
    std::fprintf(a.operand1 == "-" ? stderr : stdout, "%s\n", text.c_str());
  }
  return success();
}

result<void> volume_discard(const volume_args& a, const common_options& o) {
  FILE_REFLINK_TRY(auto offset, size_argument("offset", a.operand1));
  FILE_REFLINK_TRY(auto length, size_argument("length", a.operand2));
  FILE_REFLINK_TRY(auto ov, open_volume(a, o));
  FILE_REFLINK_TRYV(ov.volume.discard(offset, length));
  if (o.json) print_json(volume_result(a.vid, {{"offset", offset}, {"length", length}}));
  return success();
}

result<void> volume_sparsify(const volume_args& a, const common_options& o) {
  FILE_REFLINK_TRY(auto ov, open_volume(a, o));
  FILE_REFLINK_TRY(auto freed, ov.volume.sparsify());
  if (o.json)
    print_json(volume_result(a.vid, {{"freed", freed}}));
  else if (!o.quiet)
    std::printf("freed %s\n", size_and_bytes(freed).c_str());
  return success();
}

result<void> volume_remove(const volume_args& a, const common_options& o) {
  FILE_REFLINK_TRY(auto ov, open_volume(a, o));
  // The library refuses a running volume (its VM's unsaved data, an attached
  // loop device) and a source of other volumes; --force overrides both (the
  // error message says so).
  FILE_REFLINK_TRYV(ov.volume.remove(a.force));
  if (o.json) print_json(volume_result(a.vid, {{"removed", true}, {"forced", a.force}}));
  return success();
}

}  // namespace file_reflink::cli
